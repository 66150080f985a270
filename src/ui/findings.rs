//! A dropped file, checked as `plbulk validate` checks it (the same library call, offline, and
//! through the mapping file dropped with it, as `--map` reads one):
//! counts per sheet, and each finding with its row as the partner's own cells, the bad cell
//! marked and what to do, errors first; the report workbook to download; and the drop zone
//! again, to drop the file once it is fixed in Excel.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use super::layout::{self, Section};
use super::uploads::Upload;
use crate::findings::{Finding, Severity};
use crate::schema::Kind;
use crate::validate::{self, SheetCounts, Validator};

/// Findings shown on the page; the report has them all.
pub const SHOWN: usize = 200;
/// Rows kept while a file is checked, to show the rows of the findings shown. A file with
/// more rows than this shows its later findings without their row (the report has them).
const KEPT_ROWS: usize = 20_000;

/// A sheet of the file, as read.
pub struct SheetView {
    pub name: String,
    pub kind: Kind,
    pub counts: SheetCounts,
}

/// A finding to show, with its row when it was kept.
pub struct Shown {
    pub finding: Finding,
    pub row: Option<Row>,
}

/// A row as the partner wrote it, with its sheet's header row.
pub struct Row {
    pub headers: Arc<[Arc<str>]>,
    /// The header's row number, as Excel numbers it.
    pub header_row: u32,
    pub cells: Vec<String>,
}

/// A sheet as read: its file, name, headers and header row.
type SheetSeen = (Arc<str>, Arc<str>, Arc<[Arc<str>]>, u32);

/// A file checked.
pub struct Checked {
    pub upload: Upload,
    pub sheets: Vec<SheetView>,
    pub errors: u64,
    pub warnings: u64,
    pub notes: u64,
    /// Files and sheets that could not be read, and an input with no rows.
    pub unreadable: Vec<String>,
    /// Said about the whole file: its encoding, the kind a sheet was read as.
    pub about_file: Vec<Finding>,
    /// The first [`SHOWN`] findings on rows, errors first, then warnings, then notes.
    pub shown: Vec<Shown>,
    /// Findings on rows in all.
    pub on_rows: u64,
    /// The report written, or why not.
    /// The report, or why there is none; `Ok` holds a line for each sheet cut at Excel's
    /// last row.
    pub report: Result<Vec<String>, String>,
}

/// Checks `upload` as `plbulk validate` does (`--map` its mapping, when it has one), and
/// writes its report beside it.
pub fn check(upload: Upload) -> Checked {
    let files = vec![upload.path.clone()];
    // A mapping at fault is said as `--map` says it, naming its line; the file is then read
    // as plbulk's own sheets would be, and cannot run.
    let (mapping, bad_mapping) = match crate::pipeline::load_mapping(upload.mapping.as_deref()) {
        Ok(m) => (m, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut sheets: Vec<SheetSeen> = Vec::new();
    let mut rows: HashMap<(u32, u32), Vec<String>> = HashMap::new();
    let (outcome, mut unreadable) = validate::check_files(
        Validator::new(),
        &files,
        None,
        mapping.as_ref(),
        |s| {
            sheets.push((
                s.file.clone(),
                s.name.clone(),
                s.headers.clone(),
                s.header_row,
            ))
        },
        |sheet, row_no, row, _, _| {
            if rows.len() < KEPT_ROWS {
                rows.insert((sheet, row_no), row.iter().map(str::to_string).collect());
            }
        },
        |_, _| {},
    );
    unreadable.extend(bad_mapping);
    let findings = &outcome.findings;
    let errors = findings.errors() + unreadable.len() as u64;
    let about_file: Vec<Finding> = findings
        .items()
        .iter()
        .filter(|f| is_about_file(f))
        .cloned()
        .collect();
    let on_row = || findings.items().iter().filter(|f| !is_about_file(f));
    let mut shown = Vec::new();
    for severity in [Severity::Error, Severity::Warning, Severity::Note] {
        for f in on_row()
            .filter(|f| f.severity == severity)
            .take(SHOWN - shown.len())
        {
            let row = f.row.and_then(|r| {
                let at = sheets
                    .iter()
                    .position(|(file, sheet, ..)| *file == f.file && *sheet == f.sheet)?;
                Some(Row {
                    headers: sheets[at].2.clone(),
                    header_row: sheets[at].3,
                    cells: rows.get(&(at as u32, r))?.clone(),
                })
            });
            shown.push(Shown {
                finding: f.clone(),
                row,
            });
        }
    }
    let report = if outcome.sheets.is_empty() {
        Err("no sheet could be read, so there is no report".to_string())
    } else {
        crate::report::write(
            &upload.report_path(),
            &[(upload.path.clone(), None)],
            mapping.as_ref(),
            findings,
            None,
        )
        .map_err(|e| e.to_string())
    };
    Checked {
        sheets: outcome
            .sheets
            .iter()
            .map(|(_, name, kind, counts)| SheetView {
                name: name.to_string(),
                kind: *kind,
                counts: counts.clone(),
            })
            .collect(),
        errors,
        warnings: findings.warnings(),
        notes: findings.count(Severity::Note),
        unreadable,
        on_rows: findings.total() - about_file.len() as u64,
        about_file,
        shown,
        report,
        upload,
    }
}

/// A note about a whole file or sheet (its encoding, its kind): said once, above the rows'.
fn is_about_file(f: &Finding) -> bool {
    f.severity == Severity::Note && f.row.is_none()
}

/// The upload: kept, checked, and the page of its findings (a redirect to it, so that a
/// reload does not send the file again).
pub async fn upload(State(state): State<Arc<super::State>>, mut multipart: Multipart) -> Response {
    let mode = state.mode();
    let again = |status: StatusCode, message: String| {
        let body = html! {
            p.error role="alert" { (message) }
            (super::start::drop_form())
        };
        (
            status,
            layout::page(mode, Section::Other, "Check a file", body),
        )
            .into_response()
    };
    let (mut got, mut mapping) = (None, None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if matches!(field.name(), Some("file" | "mapping")) => {
                let is_file = field.name() == Some("file");
                let name = field.file_name().unwrap_or("upload").to_string();
                match field.bytes().await {
                    // A form sends an empty part for a picker left empty: no mapping.
                    Ok(b) if !is_file && b.is_empty() && name.is_empty() => {}
                    Ok(b) if is_file => got = Some((name, b)),
                    Ok(b) => mapping = Some((name, b)),
                    Err(e) => {
                        return again(
                            StatusCode::BAD_REQUEST,
                            format!("The file did not arrive whole ({e}): drop it again."),
                        )
                    }
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                return again(
                    StatusCode::BAD_REQUEST,
                    format!("The file did not arrive whole ({e}): drop it again."),
                )
            }
        }
    }
    let Some((name, bytes)) = got else {
        return again(
            StatusCode::BAD_REQUEST,
            "No file came: pick one, then Check this file.".into(),
        );
    };
    let up = match state.uploads.save(
        &name,
        &bytes,
        mapping.as_ref().map(|(n, b)| (n.as_str(), &b[..])),
    ) {
        Ok(u) => u,
        Err(m) => return again(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    let id = up.id.clone();
    match checked(&state, up).await {
        Ok(_) => Redirect::to(&format!("/files/{id}")).into_response(),
        Err(m) => again(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

/// Checks `up` off the async threads (reading a workbook takes a while), and keeps the result.
pub(crate) async fn checked(state: &super::State, up: Upload) -> Result<Arc<Checked>, String> {
    let id = up.id.clone();
    let c = tokio::task::spawn_blocking(move || check(up))
        .await
        .map_err(|e| format!("checking the file failed: {e}"))?;
    let c = Arc::new(c);
    state
        .checked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, c.clone());
    Ok(c)
}

/// The file `id` as checked: kept from its upload, or checked again (after a restart).
pub(crate) async fn find(state: &super::State, id: &str) -> Result<Arc<Checked>, Response> {
    let kept = state
        .checked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .cloned();
    if let Some(c) = kept {
        return Ok(c);
    }
    let mode = state.mode();
    let Some(up) = state.uploads.find(id) else {
        return Err(layout::problem(
            mode,
            StatusCode::NOT_FOUND,
            "No such file",
            "This file is not kept here any more: drop it again on the start page.",
        ));
    };
    checked(state, up)
        .await
        .map_err(|m| layout::problem(mode, StatusCode::INTERNAL_SERVER_ERROR, "Findings", &m))
}

pub async fn page(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let c = match find(&state, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = c.upload.name();
    let body = html! {
        (verdict(&c))
        (super::mapping::card(&c.upload))
        @for u in &c.unreadable { p.error { (u) } }
        @for f in &c.about_file { p.note { (f.message) } }
        @if !c.sheets.is_empty() { (sheets(&c)) }
        @if c.errors == 0 && c.unreadable.is_empty() {
            section.card aria-labelledby="next" {
                h2 #next { "Next: see what the job would do" }
                p { "The account is read (nothing is written) to show what the job would create, change field by field, delete and order, with its calls and the time they take." }
                p { a.button href={ "/files/" (c.upload.id) "/preview" } #preview { "Preview the job" } }
            }
        }
        @if c.errors > 0 && c.unreadable.is_empty() && c.sheets.iter().any(|s| s.counts.valid > 0) {
            section.card aria-labelledby="valid-only" {
                h2 #valid-only { "Or run the valid rows now" }
                p { "The rows with errors are recorded as invalid and not sent; fix them later and run the file again (rows done are found and recorded as already existed)." }
                p { a.button.secondary href={ "/files/" (c.upload.id) "/preview?skip_invalid=yes" } #preview-valid { "Preview the valid rows only" } }
                (layout::cli(&format!("plbulk run --skip-invalid {}", c.upload.words())))
            }
        }
        @match &c.report {
            Ok(cuts) => {
                @for cut in cuts { p.warning { (cut) } }
                p {
                    a.button.secondary href={ "/files/" (c.upload.id) "/report" } download #report {
                        "Download the report workbook"
                    }
                    " "
                    span.muted { "Your sheets with each bad cell coloured and commented, and every finding listed." }
                }
            },
            Err(m) => p.warning { "No report: " (m) },
        }
        @if !c.shown.is_empty() {
            h2 #findings-heading { "Findings" }
            @if c.on_rows > c.shown.len() as u64 {
                p.muted { "The first " (c.shown.len()) " of " (c.on_rows) ", errors first; the report has them all." }
            }
            div #findings {
                @for group in by_row(&c.shown) { (card(&group)) }
            }
        }
        section.card aria-labelledby="again" {
            h2 #again {
                @if c.errors > 0 { "Fixed it in Excel? Drop it again" } @else { "Check another file" }
            }
            (super::start::drop_form())
        }
        (layout::cli(&format!("plbulk validate {}", c.upload.words())))
    };
    layout::page(
        state.mode(),
        Section::Other,
        &format!("Findings: {name}"),
        body,
    )
    .into_response()
}

/// The one line that says whether the file can run.
fn verdict(c: &Checked) -> Markup {
    let counts = format!(
        "{}, {}, {}.",
        crate::words::count(c.errors, "error"),
        crate::words::count(c.warnings, "warning"),
        crate::words::count(c.notes, "note")
    );
    html! {
        @if c.errors == 0 {
            p.ok #verdict role="status" { strong { "No errors: every row can run. " } (counts) }
        } @else {
            p.error #verdict role="status" { strong { "This file cannot run yet: fix the errors below in Excel. " } (counts) }
        }
    }
}

fn sheets(c: &Checked) -> Markup {
    html! {
        div.scroll {
            table #sheets {
                caption.muted { "Rows per sheet" }
                thead {
                    tr {
                        th scope="col" { "Sheet" }
                        th scope="col" { "Read as" }
                        th.num scope="col" { "Rows" }
                        th.num scope="col" { "Valid" }
                        th.num scope="col" { "With errors" }
                        th.num scope="col" { "Ignored" }
                    }
                }
                tbody {
                    @for s in &c.sheets {
                        tr {
                            th scope="row" { (s.name) }
                            td { (s.kind.sheet_name()) }
                            td.num { (s.counts.rows) }
                            td.num { (s.counts.valid) }
                            td.num { (s.counts.invalid) }
                            td.num { (s.counts.ignored) }
                        }
                    }
                }
            }
        }
    }
}

/// The findings shown, a card per row: a row with five findings is shown once, with its five
/// cells marked. Cards come in the order of their first finding (errors first).
fn by_row(shown: &[Shown]) -> Vec<Vec<&Shown>> {
    let mut cards: Vec<Vec<&Shown>> = Vec::new();
    let mut at: HashMap<(&str, &str, u32), usize> = HashMap::new();
    for s in shown {
        let f = &s.finding;
        match f.row {
            Some(r) => {
                let i = *at.entry((&*f.file, &*f.sheet, r)).or_insert_with(|| {
                    cards.push(Vec::new());
                    cards.len() - 1
                });
                cards[i].push(s);
            }
            None => cards.push(vec![s]),
        }
    }
    cards
}

/// Where a column is: its letter and header, as Excel shows them.
fn column_words(f: &Finding) -> Option<String> {
    let letter = f.column_letter()?;
    Some(match &f.header {
        Some(h) => format!("column {letter} ({h})"),
        None => format!("column {letter}"),
    })
}

fn card(group: &[&Shown]) -> Markup {
    let first = &group[0].finding;
    // The card's colour is its worst finding's.
    let worst = group
        .iter()
        .map(|s| s.finding.severity)
        .min()
        .unwrap_or(first.severity);
    let mut heading = format!("Sheet {}", first.sheet);
    if let Some(r) = first.row {
        heading.push_str(&format!(", row {r}"));
    }
    html! {
        article class={ "finding sev-" (worst.as_str()) } data-sheet=(first.sheet) data-row=[first.row] {
            h3 { span.where { (heading) } }
            ul.messages {
                @for s in group {
                    @let f = &s.finding;
                    li class={ "sev-" (f.severity.as_str()) } data-column=[f.column_letter()] {
                        span.sev { (f.severity.as_str()) }
                        @if let Some(c) = column_words(f) { strong { (c) } ": " }
                        (f.message)
                    }
                }
            }
            @if let Some(row) = &group[0].row {
                (row_table(first, group, row))
            }
        }
    }
}

/// The row as the partner's own cells, under their headers and column letters; the cells of
/// its findings marked (in colour, and in words for a screen reader).
fn row_table(f: &Finding, group: &[&Shown], row: &Row) -> Markup {
    let (headers, cells) = (&row.headers, &row.cells);
    let width = headers.len().max(cells.len());
    // Per column, its worst finding.
    let mut bad: HashMap<usize, &Finding> = HashMap::new();
    for s in group {
        if let Some(c) = s.finding.column {
            let e = bad.entry(c as usize).or_insert(&s.finding);
            if s.finding.severity < e.severity {
                *e = &s.finding;
            }
        }
    }
    html! {
        div.scroll tabindex="0" role="region" aria-label={ "Row " (f.row.unwrap_or(0)) " of sheet " (f.sheet) } {
            table.row {
                thead {
                    tr {
                        th.col scope="col" { }
                        @for i in 0..width { th.col scope="col" { (crate::schema::column_letter(i)) } }
                    }
                    tr {
                        th.col scope="row" { (row.header_row) }
                        @for i in 0..width { th scope="col" { (headers.get(i).map(|h| &**h).unwrap_or("")) } }
                    }
                }
                tbody {
                    tr {
                        th.col scope="row" { (f.row.unwrap_or(0)) }
                        @for i in 0..width {
                            @let v = cells.get(i).map(String::as_str).unwrap_or("");
                            @if let Some(b) = bad.get(&i) {
                                td class={ "bad sev-" (b.severity.as_str()) } data-column=(crate::schema::column_letter(i)) aria-invalid="true" title=(b.message) {
                                    span.sr { (b.severity.as_str()) ": " }
                                    (v)
                                }
                            } @else {
                                td { (v) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The report workbook of upload `id`.
pub async fn report(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let c = match find(&state, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let path = c.upload.report_path();
    match std::fs::read(&path) {
        Ok(bytes) => super::start::xlsx(
            &path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes,
        ),
        Err(e) => layout::problem(
            state.mode(),
            StatusCode::NOT_FOUND,
            "Report",
            &format!("The report cannot be read ({e}): drop the file again."),
        ),
    }
}
