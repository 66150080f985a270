//! The results workbook: every input row as the user gave it, and what happened to it.
//!
//! Read from the journal alone, so it can be written at the end of a run, on Ctrl-C, or by
//! another process while a job runs. Each input sheet comes back with its own columns and
//! values, then Outcome, Detail, the ids made or matched, the HTTP status, the attempts and
//! the finish time, and where a sheet's rows stand for several tasks each, a column per task
//! with its own outcome (the row's Outcome folds them); a Summary sheet comes first. Every value is written as text or a number,
//! never as a formula, and the file is written whole to a temporary name, then renamed.

use std::path::Path;

use rust_xlsxwriter::{
    Chart, ChartFormat, ChartSolidFill, ChartType, Color, ExcelDateTime, Format, FormatAlign,
    FormatBorder, Workbook, Worksheet, XlsxError,
};

use crate::contract::natural_key;
use crate::journal::{Journal, JournalError, ResultRow};
use crate::model::{IdKind, RowState, Task};
use crate::paper::{self, Orientation};
use crate::schema::Kind;
use crate::sheet_names::SheetNames;
use crate::templates;

/// The results workbook's first sheet.
const SUMMARY: &str = "Summary";

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write the results workbook {path}: {message}")]
    Write { path: String, message: String },
    #[error("the journal holds {what}, which this version cannot read")]
    Unreadable { what: String },
}

pub use crate::schema::OUTCOME_HEADERS;

/// The id columns a sheet of `kind` can fill: the ids its rows make or resolve. A Users row
/// records its customer and its user; it never makes an order.
pub fn id_columns(kind: Kind) -> Vec<(IdKind, &'static str)> {
    use IdKind as I;
    let keys: &[IdKind] = match kind {
        Kind::Customers => &[I::Customer],
        Kind::Users | Kind::UserSettings => &[I::Customer, I::User],
        Kind::Numbers => &[I::Customer, I::Number, I::User],
        Kind::BlockedNumbers => &[I::Customer, I::Blocked],
        Kind::Devices => &[I::Customer, I::User, I::Device],
        Kind::Orders => &[I::Customer, I::Order],
        Kind::PartnerUsers => &[I::PartnerUser],
        Kind::Migration => &[I::Customer, I::User, I::Number, I::Device, I::Order],
    };
    IdKind::ALL
        .into_iter()
        .filter(|k| keys.contains(k))
        .map(|k| (k, k.result_header()))
        .collect()
}

/// A sheet's kind as the journal holds it; one that does not parse is an error.
fn kind_of(s: &crate::model::SheetRec) -> Result<Kind, ResultsError> {
    Kind::from_name(&s.kind).ok_or_else(|| ResultsError::Unreadable {
        what: format!("the kind {:?} of sheet {}", s.kind, s.sheet),
    })
}

/// An outcome's colours: a pastel for its cells, and the same hue strong enough to read as a
/// bar in the Summary's chart. Each outcome has its own, so no two read as one.
fn outcome_colors(s: RowState) -> (Color, Color) {
    let (cell, bar) = match s {
        RowState::Succeeded => (0xC6EFCE, 0x4E9A3A),
        RowState::AlreadyExisted => (0xDDEBF7, 0x2F6EBA),
        RowState::Unchanged => (0xD4F1EF, 0x2BA8A0),
        RowState::Failed => (0xFFC7CE, 0xC0392B),
        RowState::Skipped => (0xFCE4D6, 0xE67E22),
        RowState::NeedsReview => (0xFFF2CC, 0xF1C40F),
        RowState::Invalid => (0xE4D7F5, 0x8E44AD),
        RowState::Pending => (0xEDEDED, 0x9E9E9E),
    };
    (Color::RGB(cell), Color::RGB(bar))
}

/// A time (ms since the epoch) as RFC 3339 to the second, as every output shows times.
pub fn time_text(ms: i64) -> String {
    // As a person reads a time, not as RFC 3339 writes it ("2026-12-01T09:30:00Z").
    rfc3339(ms).replacen('T', " ", 1).replacen('Z', " UTC", 1)
}

/// A time for machines (JSON): RFC 3339 in UTC, to the second.
pub fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How a job's Summary says what kind of job it was: a rehearsal, an undo.
struct JobKind {
    /// For a rehearsal: the account it ran on, in words.
    rehearsal: Option<String>,
    /// For an undo: the job it reverses.
    undo_of: Option<String>,
}

impl JobKind {
    /// Read from the job's options as journaled; options this version cannot read are a
    /// job of neither kind (the Summary is still written, without the line).
    fn of(meta: &crate::journal::JobMeta) -> JobKind {
        match serde_json::from_value::<crate::job::JobOptions>(meta.options.clone()) {
            Ok(o) => JobKind {
                rehearsal: o.sandbox.then(|| {
                    o.rehearsal
                        .unwrap_or(crate::rehearsal::Rehearsal::Fresh)
                        .describe()
                }),
                undo_of: o.undo_of,
            },
            Err(_) => JobKind {
                rehearsal: None,
                undo_of: None,
            },
        }
    }
}

/// The Summary's number format for times: a date-time cell, in UTC as every output shows.
pub const TIME_FORMAT: &str = "yyyy-mm-dd hh:mm:ss \"UTC\"";

/// A time (ms since the epoch) as an Excel date-time.
fn excel_time(ms: i64) -> Result<ExcelDateTime, XlsxError> {
    ExcelDateTime::from_timestamp(ms.div_euclid(1000))
}

/// Writes the results of the job in `journal` to `path` (.xlsx).
pub fn write(journal: &Journal, path: &Path, calls: Option<u64>) -> Result<(), ResultsError> {
    let meta = journal.meta()?;
    let sheets = journal.sheets()?;
    let kind = JobKind::of(&meta);
    let rows = shown_rows(journal, &kind)?;
    let counts = journal.counts()?;
    let (attempts, first, last) = journal.attempt_stats()?;
    let werr = |e: XlsxError| ResultsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };

    let mut wb = Workbook::new();
    let header = header_format();
    write_summary(
        &mut wb,
        &Summary {
            meta: &meta,
            kind: &kind,
            sheets: &sheets,
            rows: &rows,
            counts: &counts,
            attempts,
            first,
            last,
            calls,
        },
    )
    .map_err(werr)?;

    let mut names = SheetNames::new(&[SUMMARY]);
    let cells = RowFormats {
        finished: Format::new()
            .set_num_format(TIME_FORMAT)
            .set_align(FormatAlign::Left),
        count: Format::new().set_align(FormatAlign::Center),
        wrap: Format::new().set_text_wrap(),
    };
    let centred_header = header_format().set_align(FormatAlign::Center);
    for s in &sheets {
        let ids = id_columns(kind_of(s)?);
        let mine: Vec<&Shown> = rows.iter().filter(|x| x.row.sheet == s.idx).collect();
        let tasks = tasks_of(&mine);
        let task_headers: Vec<String> = tasks.iter().map(|t| t.result_header()).collect();
        let extra: Vec<&str> = OUTCOME_HEADERS
            .iter()
            .copied()
            .chain(ids.iter().map(|(_, h)| *h))
            .chain(task_headers.iter().map(String::as_str))
            .collect();
        let user_cols = s.headers.len() as u16;
        // Widths first: a constant-memory sheet is streamed row by row, and its column
        // settings come before the rows in the file.
        let mut widths: Vec<usize> = s
            .headers
            .iter()
            .map(|h| h.chars().count())
            .chain(extra.iter().map(|h| h.chars().count()))
            .collect();
        for Shown { row, .. } in mine.iter().copied() {
            for (c, v) in row.cells.iter().enumerate().take(user_cols as usize) {
                widths[c] = widths[c].max(v.chars().count().min(60));
            }
            let d = user_cols as usize + 1;
            widths[d] = widths[d].max(
                row.detail
                    .as_deref()
                    .map_or(0, |v| v.chars().count().min(60)),
            );
            for (k, (key, _)) in ids.iter().enumerate() {
                let i = user_cols as usize + OUTCOME_HEADERS.len() + k;
                let v = row.ids.get(*key).map_or(0, str::len);
                widths[i] = widths[i].max(v);
            }
        }
        // "2026-12-01 09:30:00 UTC", with room to spare: a date-time too wide for its column
        // shows as ### in Excel and runs into the next column in LibreOffice.
        widths[user_cols as usize + 4] = widths[user_cols as usize + 4].max(TIME_FORMAT.len());
        // Outcome and each task's: the longest label, so its fill covers it.
        let longest = RowState::ALL.iter().map(|s| s.label().len()).max();
        let task_cols = user_cols as usize + OUTCOME_HEADERS.len() + ids.len();
        for c in std::iter::once(user_cols as usize).chain(task_cols..widths.len()) {
            widths[c] = widths[c].max(longest.unwrap_or(0));
        }
        let ws = wb.add_worksheet_with_constant_memory().map_err(werr)?;
        ws.set_name(names.take(&s.sheet)).map_err(werr)?;
        let width = |w: usize| w.clamp(8, 60) as f64 + 2.0;
        for (c, w) in widths.iter().enumerate() {
            ws.set_column_width(c as u16, width(*w)).map_err(werr)?;
        }
        let detail_width = width(widths[user_cols as usize + 1]);
        ws.set_freeze_panes(1, 0).map_err(werr)?;
        paper::setup(ws, Orientation::Landscape, Some((0, 0))).map_err(werr)?;
        let last_col = user_cols + extra.len() as u16 - 1;
        ws.autofilter(0, 0, mine.len() as u32, last_col)
            .map_err(werr)?;
        let headers = s
            .headers
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied());
        for (c, h) in headers.enumerate() {
            // HTTP Status and Attempts are centred, as their numbers are.
            let counted = c as u16 == user_cols + 2 || c as u16 == user_cols + 3;
            let format = if counted { &centred_header } else { &header };
            ws.write_string_with_format(0, c as u16, h, format)
                .map_err(werr)?;
        }
        for (n, row) in mine.iter().enumerate() {
            let at = Columns {
                user: user_cols,
                ids: &ids,
                tasks: &tasks,
            };
            write_row(ws, n as u32 + 1, row, &at, &cells, detail_width).map_err(werr)?;
        }
    }
    let bytes = wb.save_to_buffer().map_err(werr)?;
    crate::atomic_write(path, &bytes).map_err(|e| ResultsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0x1F4E78))
        .set_font_color(Color::White)
        .set_border_bottom(FormatBorder::Thin)
}

/// What the Summary sheet is made from.
struct Summary<'a> {
    meta: &'a crate::journal::JobMeta,
    kind: &'a JobKind,
    sheets: &'a [crate::model::SheetRec],
    rows: &'a [Shown],
    counts: &'a [(RowState, u64)],
    attempts: u64,
    first: Option<i64>,
    last: Option<i64>,
    calls: Option<u64>,
}

/// A value on the Summary: text, or a time as a date-time cell.
enum Value {
    Text(String),
    Time(i64),
}

/// The width of each outcome's column on the Summary: the longest label ("already existed")
/// with room either side of it.
const COUNT_WIDTH: f64 = 16.0;

/// The Summary: what the job was (a rehearsal, an undo, on which account, from which files),
/// when it ran, then a table of outcomes per sheet and a chart of it. Counts are centred under
/// centred headers: right-aligned in wide columns under left-aligned headers, each count read
/// as the next header's.
fn write_summary(wb: &mut Workbook, x: &Summary) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    let header = header_format();
    let centred_header = header_format().set_align(FormatAlign::Center);
    let count = Format::new().set_align(FormatAlign::Center);
    let total = Format::new().set_bold().set_align(FormatAlign::Center);
    let time = Format::new()
        .set_num_format(TIME_FORMAT)
        .set_align(FormatAlign::Left);
    let warn = Format::new()
        .set_bold()
        .set_font_color(Color::RGB(0xC00000));
    let states = RowState::ALL;
    let last_col = states.len() as u16;

    let ws = wb.add_worksheet();
    ws.set_name(SUMMARY)?;
    let labels = x
        .sheets
        .iter()
        .map(|s| sheet_label(s).chars().count())
        .max()
        .unwrap_or(0);
    ws.set_column_width(0, (labels + 2).clamp(26, 50) as f64)?;
    for i in 0..states.len() {
        ws.set_column_width(1 + i as u16, COUNT_WIDTH)?;
    }
    let mut lines: Vec<(&str, Value)> = Vec::new();
    lines.push(("Job", Value::Text(x.meta.id.clone())));
    if let Some(undone) = &x.kind.undo_of {
        lines.push((
            "Undoes",
            Value::Text(format!(
                "job {undone}: each row below is one of its rows, and Outcome and Detail say what became of what it did"
            )),
        ));
    }
    if let Some(account) = &x.kind.rehearsal {
        lines.push((
            "Rehearsal",
            Value::Text(format!(
                "yes: run on {account}, the in-process sandbox. Nothing was sent to PL+."
            )),
        ));
    }
    lines.push(("State", Value::Text(x.meta.state.as_str().to_string())));
    lines.push(("Base URL", Value::Text(x.meta.base_url.clone())));
    lines.push(("API key", Value::Text(x.meta.key_id.clone())));
    for f in &x.meta.inputs {
        lines.push(("Input", Value::Text(f.path.clone())));
    }
    lines.push(("Created", Value::Time(x.meta.created_at_ms)));
    if let Some(f) = x.first {
        lines.push(("First call", Value::Time(f)));
    }
    if let Some(l) = x.last {
        lines.push(("Last call", Value::Time(l)));
    }
    if let (Some(f), Some(l)) = (x.first, x.last) {
        let took = std::time::Duration::from_secs(((l - f).max(0) / 1000) as u64);
        lines.push((
            "Duration",
            Value::Text(humantime::format_duration(took).to_string()),
        ));
    }
    lines.push((
        "Writes sent (attempts)",
        Value::Text(x.attempts.to_string()),
    ));
    if let Some(c) = x.calls {
        lines.push(("Calls made this run (all)", Value::Text(c.to_string())));
    }
    let mut r = 0u32;
    for (k, v) in &lines {
        let key_format = if *k == "Rehearsal" { &warn } else { &bold };
        ws.write_string_with_format(r, 0, *k, key_format)?;
        // The value spans the table's width: one column's width is a count's, not a path's.
        // The merged range's first cell is then written over, in the range's own format.
        let plain = Format::new();
        let format = match v {
            Value::Time(_) => &time,
            Value::Text(_) if *k == "Rehearsal" => &warn,
            Value::Text(_) => &plain,
        };
        ws.merge_range(r, 1, r, last_col, "", format)?;
        match v {
            Value::Text(t) => ws.write_string_with_format(r, 1, t, format)?,
            Value::Time(ms) => ws.write_datetime_with_format(r, 1, excel_time(*ms)?, format)?,
        };
        r += 1;
    }
    r += 1;
    let table_header = r;
    ws.write_string_with_format(r, 0, "Sheet", &header)?;
    for (i, s) in states.iter().enumerate() {
        ws.write_string_with_format(r, 1 + i as u16, s.label(), &centred_header)?;
    }
    r += 1;
    for s in x.sheets {
        ws.write_string(r, 0, sheet_label(s))?;
        for (i, st) in states.iter().enumerate() {
            let n = x
                .rows
                .iter()
                .filter(|x| x.row.sheet == s.idx && x.row.state == *st)
                .count();
            ws.write_number_with_format(r, 1 + i as u16, n as f64, &count)?;
        }
        r += 1;
    }
    ws.write_string_with_format(r, 0, "All sheets", &bold)?;
    for (i, st) in states.iter().enumerate() {
        let n = x
            .counts
            .iter()
            .find(|(s, _)| s == st)
            .map_or(0, |(_, n)| *n);
        ws.write_number_with_format(r, 1 + i as u16, n as f64, &total)?;
    }
    if !x.sheets.is_empty() {
        let chart = outcomes_chart(&states, table_header, x.sheets.len() as u32);
        ws.insert_chart(r + 2, 0, &chart)?;
    }
    paper::setup(ws, Orientation::Landscape, None)?;
    Ok(())
}

/// `row`, with a Detail saying what it reversed when it is a row of an undo that succeeded
/// and the engine said nothing more (a removal, a put-back).
fn with_detail(
    journal: &Journal,
    kind: &JobKind,
    row: ResultRow,
) -> Result<ResultRow, ResultsError> {
    let Some(job) = &kind.undo_of else {
        return Ok(row);
    };
    if row.state != RowState::Succeeded || row.detail.is_some() {
        return Ok(row);
    }
    let rec = journal.row(row.id)?;
    let detail = match (&rec.work, rec.lead) {
        (Some(work), _) => crate::undo::reversed(work, job),
        (None, Some(lead)) => journal
            .row(lead)?
            .work
            .and_then(|w| crate::undo::reversed_with(&w, job)),
        (None, None) => None,
    };
    Ok(ResultRow { detail, ..row })
}

/// A source row as the results show it. A row of one task is its journal row; a row that
/// stands for several has its tasks folded onto it: its outcome is theirs folded
/// ([`RowState::fold`]), its Detail each task's said by name, its ids all that they made or
/// found, its attempts theirs summed; and each task's own outcome, for a column of its own.
pub struct Shown {
    pub row: ResultRow,
    pub tasks: Vec<(Task, RowState)>,
}

impl Shown {
    /// The tasks of one source row (at least one), folded.
    fn fold(tasks: Vec<ResultRow>) -> Shown {
        let state = RowState::fold(tasks.iter().map(|t| t.state)).unwrap_or(RowState::Pending);
        let detail: Vec<String> = tasks
            .iter()
            .filter_map(|t| {
                let d = t.detail.as_deref().filter(|d| !d.is_empty())?;
                Some(match t.task {
                    Some(k) => format!("{}: {d}", k.label()),
                    None => d.to_string(),
                })
            })
            .collect();
        let mut ids = crate::model::RowIds::default();
        for t in &tasks {
            for (k, v) in t.ids.iter() {
                if ids.get(k).is_none() {
                    ids.set(k, v);
                }
            }
        }
        // The status of the task that gave the row its outcome.
        let status = tasks
            .iter()
            .filter(|t| t.state == state)
            .find_map(|t| t.status)
            .or_else(|| tasks.iter().rev().find_map(|t| t.status));
        let finished_at_ms = if state.is_final() {
            tasks.iter().filter_map(|t| t.finished_at_ms).max()
        } else {
            None
        };
        let shown: Vec<(Task, RowState)> = tasks
            .iter()
            .filter_map(|t| Some((t.task?, t.state)))
            .collect();
        let attempts = tasks.iter().map(|t| t.attempts).sum();
        let first = tasks.into_iter().next().expect("a source row has a task");
        Shown {
            row: ResultRow {
                task: None,
                state,
                detail: (!detail.is_empty()).then(|| detail.join("; ")),
                ids,
                status,
                attempts,
                finished_at_ms,
                ..first
            },
            tasks: shown,
        }
    }
}

/// The job's rows as the results show them, in input order: each source row once, its tasks
/// folded onto it (see [`Shown`]), an undo's rows saying what they reversed.
fn shown_rows(journal: &Journal, kind: &JobKind) -> Result<Vec<Shown>, ResultsError> {
    let mut out = Vec::new();
    // The tasks of the source row being read: the journal gives them one after another.
    let mut tasks: Vec<ResultRow> = Vec::new();
    for row in journal.result_rows()? {
        let row = with_detail(journal, kind, row)?;
        let same = tasks
            .first()
            .is_some_and(|t| (t.sheet, t.row_no) == (row.sheet, row.row_no));
        if !same && !tasks.is_empty() {
            out.push(Shown::fold(std::mem::take(&mut tasks)));
        }
        if row.task.is_some() {
            tasks.push(row);
        } else {
            out.push(Shown {
                row,
                tasks: Vec::new(),
            });
        }
    }
    if !tasks.is_empty() {
        out.push(Shown::fold(tasks));
    }
    Ok(out)
}

/// The tasks a sheet's rows stand for, in [`Task::ALL`]'s order: a column each. None for a
/// sheet whose rows stand for one task each.
fn tasks_of(rows: &[&Shown]) -> Vec<Task> {
    Task::ALL
        .into_iter()
        .filter(|t| rows.iter().any(|r| r.tasks.iter().any(|(x, _)| x == t)))
        .collect()
}

/// A sheet as the Summary names it: "onboarding.xlsx [Customers]".
fn sheet_label(s: &crate::model::SheetRec) -> String {
    format!("{} [{}]", file_name(&s.file), s.sheet)
}

/// Outcomes per sheet as stacked bars, one colour per outcome as the sheets colour them: where
/// the failures are, at a glance. Reads the Summary's table (header at `header_row`, then one
/// row per sheet).
fn outcomes_chart(states: &[RowState], header_row: u32, sheets: u32) -> Chart {
    let mut chart = Chart::new(ChartType::BarStacked);
    chart.title().set_name("Outcomes per sheet");
    let (first, last) = (header_row + 1, header_row + sheets);
    for (i, st) in states.iter().enumerate() {
        let col = 1 + i as u16;
        chart
            .add_series()
            .set_name((SUMMARY, header_row, col))
            .set_categories((SUMMARY, first, 0, last, 0))
            .set_values((SUMMARY, first, col, last, col))
            .set_format(
                ChartFormat::new()
                    .set_solid_fill(ChartSolidFill::new().set_color(outcome_colors(*st).1)),
            );
    }
    chart.x_axis().set_name("Rows");
    chart.set_width(720).set_height(120 + 40 * sheets.min(20));
    chart
}

/// The formats of a results sheet's outcome columns, made once.
struct RowFormats {
    /// Finished: a date-time, left-aligned under its header (right-aligned, it ran into the
    /// id beside it and read as one).
    finished: Format,
    /// HTTP Status and Attempts, centred under centred headers.
    count: Format,
    /// A Detail too long for its column.
    wrap: Format,
}

/// Where a results sheet's columns are: the user's, then [`OUTCOME_HEADERS`], the ids, and
/// a column per task.
struct Columns<'a> {
    user: u16,
    ids: &'a [(IdKind, &'static str)],
    tasks: &'a [Task],
}

fn write_row(
    ws: &mut Worksheet,
    r: u32,
    shown: &Shown,
    at: &Columns,
    f: &RowFormats,
    detail_width: f64,
) -> Result<(), XlsxError> {
    let (row, user_cols, ids) = (&shown.row, at.user, at.ids);
    let put = |ws: &mut rust_xlsxwriter::Worksheet, c: u16, v: &str| -> Result<(), XlsxError> {
        if !v.is_empty() {
            // Text as text, always: a value starting with = or + stays a value.
            ws.write_string(r, c, v)?;
        }
        Ok(())
    };
    for c in 0..user_cols {
        put(ws, c, row.cells.get(c as usize).map_or("", String::as_str))?;
    }
    ws.write_string_with_format(r, user_cols, row.state.label(), outcome_format(row.state))?;
    if let Some(detail) = row.detail.as_deref().filter(|d| !d.is_empty()) {
        // A long Detail wraps in its column, in a row as tall as it: unwrapped, it ran across
        // the empty columns beside it and widened the printed page to many times its width.
        let height = paper::wrapped_height(detail, detail_width);
        if height > paper::wrapped_height("", detail_width) {
            ws.set_row_height(r, height)?;
            ws.write_string_with_format(r, user_cols + 1, detail, &f.wrap)?;
        } else {
            ws.write_string(r, user_cols + 1, detail)?;
        }
    }
    if let Some(s) = row.status {
        ws.write_number_with_format(r, user_cols + 2, s as f64, &f.count)?;
    }
    if row.attempts > 0 {
        ws.write_number_with_format(r, user_cols + 3, row.attempts as f64, &f.count)?;
    }
    if let Some(t) = row.finished_at_ms {
        // A date-time cell (UTC), so the column sorts and filters as one.
        let dt = ExcelDateTime::from_timestamp(t.div_euclid(1000))?;
        ws.write_datetime_with_format(r, user_cols + 4, &dt, &f.finished)?;
    }
    for (k, (key, _)) in ids.iter().enumerate() {
        let v = row.ids.get(*key).unwrap_or("");
        put(ws, user_cols + OUTCOME_HEADERS.len() as u16 + k as u16, v)?;
    }
    let first_task = user_cols + (OUTCOME_HEADERS.len() + ids.len()) as u16;
    for (k, task) in at.tasks.iter().enumerate() {
        // A row that does not stand for this task leaves its cell empty.
        if let Some((_, state)) = shown.tasks.iter().find(|(t, _)| t == task) {
            let c = first_task + k as u16;
            ws.write_string_with_format(r, c, state.label(), outcome_format(*state))?;
        }
    }
    Ok(())
}

/// One format per outcome, made once: a format per cell would cost a lookup per row.
fn outcome_format(s: RowState) -> &'static Format {
    static FORMATS: std::sync::OnceLock<Vec<(RowState, Format)>> = std::sync::OnceLock::new();
    let all = FORMATS.get_or_init(|| {
        RowState::ALL
            .iter()
            .map(|s| (*s, Format::new().set_background_color(outcome_colors(*s).0)))
            .collect()
    });
    &all.iter()
        .find(|(x, _)| *x == s)
        .expect("every state has a format")
        .1
}

/// Where the to-fix workbook goes for a results file: `x.results.xlsx` → `x.to-fix.xlsx`.
pub fn to_fix_path(results: &Path) -> std::path::PathBuf {
    let stem = results
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plbulk".into());
    let base = stem.strip_suffix(".results").unwrap_or(&stem);
    results.with_file_name(format!("{base}.to-fix.xlsx"))
}

/// Whether a row belongs in the to-fix file: it ran, or was refused, and did not succeed. A row
/// not run yet is not the partner's to fix: resuming the job runs it, and running it again from
/// a to-fix beside the unfinished job would make a second job of it.
pub fn needs_fixing(state: RowState) -> bool {
    match state {
        RowState::Failed | RowState::Skipped | RowState::NeedsReview | RowState::Invalid => true,
        RowState::Pending
        | RowState::Succeeded
        | RowState::AlreadyExisted
        | RowState::Unchanged => false,
    }
}

/// The to-fix workbook's Detail column, in characters: its text wraps within it.
const TO_FIX_DETAIL_WIDTH: f64 = 60.0;

/// The company columns of a Migration sheet.
const COMPANY_FIELDS: [crate::schema::Field; 11] = {
    use crate::schema::Field as F;
    [
        F::CompanyName,
        F::ContactName,
        F::Email,
        F::Phone,
        F::Plan,
        F::ContractMonths,
        F::Line1,
        F::Line2,
        F::Town,
        F::County,
        F::Postcode,
    ]
};

/// The rows of a Migration sheet that give their customer (its first row, by Customer Ref or
/// Company Name): a to-fix row run back alone is its customer's first row, so the company
/// columns it left blank are filled in from the row that gave them.
struct Givers<'a> {
    /// (sheet, Ref or name key) → the giving row, and the columns of its company fields.
    first: std::collections::HashMap<(u32, String), (&'a ResultRow, Vec<usize>)>,
    /// Per sheet: the Ref and Company Name columns.
    keys: std::collections::HashMap<u32, (Option<usize>, Option<usize>)>,
}

impl<'a> Givers<'a> {
    fn of(
        kind: Kind,
        rows: &[&'a ResultRow],
        located: &[(u32, Vec<(crate::schema::Field, usize)>)],
    ) -> Givers<'a> {
        use crate::schema::Field;
        let mut g = Givers {
            first: Default::default(),
            keys: Default::default(),
        };
        if kind != Kind::Migration {
            return g;
        }
        for (idx, at) in located {
            let col = |f: Field| at.iter().find(|(g, _)| *g == f).map(|(_, i)| *i);
            let (rf, name) = (col(Field::Ref), col(Field::CompanyName));
            g.keys.insert(*idx, (rf, name));
            let company: Vec<usize> = at
                .iter()
                .filter(|(f, _)| COMPANY_FIELDS.contains(f))
                .map(|(_, i)| *i)
                .collect();
            // Rows are in the sheet's order: the first naming a customer gives it.
            for r in rows.iter().filter(|r| r.sheet == *idx) {
                for k in [rf, name].into_iter().flatten() {
                    if let Some(v) = r.cells.get(k).filter(|v| !v.trim().is_empty()) {
                        g.first
                            .entry((*idx, natural_key(v)))
                            .or_insert((*r, company.clone()));
                    }
                }
            }
        }
        g
    }

    /// The row that gave `row`'s customer, when it is another row.
    fn of_row(&self, row: &ResultRow) -> Option<(&'a ResultRow, &[usize])> {
        let (rf, name) = self.keys.get(&row.sheet)?;
        let cell = |c: &Option<usize>| {
            c.and_then(|c| row.cells.get(c))
                .filter(|v| !v.trim().is_empty())
        };
        let key = cell(rf).or_else(|| cell(name))?;
        let (g, company) = self.first.get(&(row.sheet, natural_key(key)))?;
        (g.row_no != row.row_no).then_some((*g, company.as_slice()))
    }
}

/// The columns a to-fix file's rows are written in.
#[derive(Debug, Clone)]
pub enum FixColumns {
    /// The template's own, one sheet per kind: the job read plbulk's sheets.
    Template,
    /// The export's own, one sheet per sheet read: the job read another system's export
    /// through a mapping file (the one given, to find which of the export's columns is which
    /// field), and its journal holds the export's cells. The file runs back with the same
    /// mapping.
    Export(std::sync::Arc<crate::intake::mapping::Mapping>),
}

/// The cells of a done task that its to-fix row leaves blank, so that running it back does
/// only the tasks not done: above all a phone already ordered, which as a line of a smaller
/// order would not be found as placed, and would ship again. The customer's and the user's
/// cells stay: the other tasks name them, and they are found as already existing.
fn blanked_when_done(task: Task) -> &'static [crate::schema::Field] {
    use crate::schema::Field;
    match task {
        Task::Number => &[Field::Number],
        Task::Device | Task::Order => &[Field::Product, Field::Mac],
        Task::Customer | Task::User => &[],
    }
}

/// A row's done tasks whose cells its to-fix row leaves blank.
fn done_and_blanked(tasks: &[(Task, RowState)]) -> impl Iterator<Item = Task> + '_ {
    tasks
        .iter()
        .filter(|(t, st)| st.is_success() && !blanked_when_done(*t).is_empty())
        .map(|(t, _)| *t)
}

/// Writes the rows that did not succeed (failed, skipped, needs review, invalid) in the
/// columns `layout` says, plus Detail: fix the cells in Excel and run the file again. In the template's
/// columns, a Customer that named a Ref of this job is written as the customer's id when the
/// job made or found it, since the Customers row it named is not in the file. Writes nothing
/// and returns 0 when every row succeeded.
pub fn write_to_fix(
    journal: &Journal,
    path: &Path,
    layout: FixColumns,
) -> Result<usize, ResultsError> {
    use crate::schema::{Field, Kind};
    let sheets = journal.sheets()?;
    let kind = JobKind::of(&journal.meta()?);
    let shown = shown_rows(journal, &kind)?;
    let rows: Vec<&ResultRow> = shown.iter().map(|s| &s.row).collect();
    let tasks_of: std::collections::HashMap<(u32, u32), &[(Task, RowState)]> = shown
        .iter()
        .filter(|s| !s.tasks.is_empty())
        .map(|s| ((s.row.sheet, s.row.row_no), s.tasks.as_slice()))
        .collect();
    let werr = |e: XlsxError| ResultsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // Refs and company names of Customers rows → the customer id they came to.
    let mut customer_ids: std::collections::HashMap<String, String> = Default::default();
    for s in &sheets {
        let Some(Kind::Customers) = Kind::from_name(&s.kind) else {
            continue;
        };
        let col = |f: Field| {
            s.headers.iter().position(|h| {
                Kind::Customers
                    .match_header(h)
                    .is_some_and(|c| c.field == f)
            })
        };
        let (rf, name) = (col(Field::Ref), col(Field::CompanyName));
        for r in rows
            .iter()
            .filter(|r| r.sheet == s.idx && r.state.is_success())
        {
            let Some(id) = r.ids.get(IdKind::Customer) else {
                continue;
            };
            for c in [rf, name].into_iter().flatten() {
                if let Some(v) = r.cells.get(c).filter(|v| !v.trim().is_empty()) {
                    customer_ids.insert(natural_key(v), id.to_string());
                }
            }
        }
    }
    let header = header_format();
    let wrap = Format::new().set_text_wrap().set_align(FormatAlign::Top);
    // Each row's cells at its top: its Detail wraps, and the row is as tall as that.
    let text = templates::text_format().set_align(FormatAlign::Top);
    let plain = Format::new().set_align(FormatAlign::Top);
    let mut wb = Workbook::new();
    let mut total = 0;
    let (mapped, mapping) = match &layout {
        FixColumns::Template => (false, None),
        FixColumns::Export(m) => (true, Some(m)),
    };
    // Where each field's cell is in a sheet's rows: by the template's headers, or by the
    // mapping that read the export (which fitted these headers when the job began: one that
    // does not now is a damaged journal).
    let field_columns =
        |s: &crate::model::SheetRec, kind: Kind| -> Result<Vec<(Field, usize)>, ResultsError> {
            Ok(match mapping {
                Some(m) => {
                    let headers: Vec<std::sync::Arc<str>> =
                        s.headers.iter().map(|h| h.as_str().into()).collect();
                    m.shape(
                        &s.file.as_str().into(),
                        &s.sheet.as_str().into(),
                        &headers,
                        1,
                    )
                    .map_err(|e| ResultsError::Unreadable {
                        what: format!(
                            "sheet {}'s headers, which its mapping no longer fits: {e}",
                            s.sheet
                        ),
                    })?
                    .0
                    .source_columns()
                }
                None => s
                    .headers
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| kind.match_header(h).map(|c| (c.field, i)))
                    .collect(),
            })
        };
    let mut names = SheetNames::new(&[]);
    for kind in Kind::ALL {
        let of_kind: Vec<&crate::model::SheetRec> = sheets
            .iter()
            .filter(|s| Kind::from_name(&s.kind) == Some(kind))
            .collect();
        let groups: Vec<(String, Vec<&crate::model::SheetRec>)> = if mapped {
            of_kind
                .iter()
                .map(|s| (s.sheet.clone(), vec![*s]))
                .collect()
        } else {
            vec![(kind.sheet_name().to_string(), of_kind)]
        };
        for (name, group) in groups {
            let bad: Vec<(&crate::model::SheetRec, &ResultRow)> = group
                .iter()
                .flat_map(|s| {
                    rows.iter()
                        .filter(move |r| r.sheet == s.idx && needs_fixing(r.state))
                        .map(move |r| (*s, *r))
                })
                .collect();
            if bad.is_empty() {
                continue;
            }
            let located: Vec<(u32, Vec<(Field, usize)>)> = group
                .iter()
                .map(|s| Ok((s.idx, field_columns(s, kind)?)))
                .collect::<Result<_, ResultsError>>()?;
            let givers = Givers::of(kind, &rows, &located);
            // Each column: its header, the field it is (the template's), and where each row's
            // cell is.
            let columns: Vec<(&str, Option<Field>, Option<usize>)> = if mapped {
                group[0]
                    .headers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (h.as_str(), None, Some(i)))
                    .collect()
            } else {
                kind.columns()
                    .iter()
                    .map(|c| (c.header, Some(c.field), None))
                    .collect()
            };
            let ws = wb.add_worksheet();
            ws.set_name(names.take(&name)).map_err(werr)?;
            for (c, (h, field, _)) in columns.iter().enumerate() {
                ws.write_string_with_format(0, c as u16, *h, &header)
                    .map_err(werr)?;
                ws.set_column_width(c as u16, (h.len().max(12) + 2) as f64)
                    .map_err(werr)?;
                // As in the template: a phone number typed in again keeps its leading 0.
                if field.is_some_and(templates::is_text_column) {
                    ws.set_column_format(c as u16, &text).map_err(werr)?;
                }
            }
            let detail_col = columns.len() as u16;
            ws.write_string_with_format(0, detail_col, "Detail", &header)
                .map_err(werr)?;
            ws.set_column_width(detail_col, TO_FIX_DETAIL_WIDTH)
                .map_err(werr)?;
            paper::setup(ws, Orientation::Landscape, Some((0, 0))).map_err(werr)?;
            for (n, (s, row)) in bad.iter().enumerate() {
                let r = n as u32 + 1;
                let done: Vec<Task> = tasks_of
                    .get(&(row.sheet, row.row_no))
                    .map_or_else(Vec::new, |t| done_and_blanked(t).collect());
                let blank: Vec<usize> = located
                    .iter()
                    .filter(|(idx, _)| *idx == s.idx)
                    .flat_map(|(_, at)| at)
                    .filter(|(f, _)| done.iter().any(|t| blanked_when_done(*t).contains(f)))
                    .map(|(_, i)| *i)
                    .collect();
                let giver = givers.of_row(row);
                for (c, (_, field, at)) in columns.iter().enumerate() {
                    let from = at.or_else(|| {
                        s.headers.iter().position(|h| {
                            kind.match_header(h)
                                .is_some_and(|m| Some(m.field) == *field)
                        })
                    });
                    let mut v = from
                        .filter(|i| !blank.contains(i))
                        .and_then(|i| row.cells.get(i))
                        .map_or(String::new(), |v| v.clone());
                    if let (true, Some((g, company)), Some(i)) = (v.trim().is_empty(), giver, from)
                    {
                        if company.contains(&i) {
                            v = g.cells.get(i).cloned().unwrap_or_default();
                        }
                    }
                    if *field == Some(Field::Customer) {
                        if let Some(id) = row
                            .ids
                            .get(IdKind::Customer)
                            .or_else(|| customer_ids.get(&natural_key(&v)).map(String::as_str))
                        {
                            v = id.to_string();
                        }
                    }
                    if !v.is_empty() {
                        let format = if field.is_some_and(templates::is_text_column) {
                            &text
                        } else {
                            &plain
                        };
                        ws.write_string_with_format(r, c as u16, &v, format)
                            .map_err(werr)?;
                    }
                }
                let left_blank = if blank.is_empty() {
                    String::new()
                } else {
                    let done: Vec<&str> = done.iter().map(|t| t.label()).collect();
                    format!(
                        ". Done, so left blank here: {} (run back, the row does only what is not done)",
                        done.join(", ")
                    )
                };
                let left_blank = match giver {
                    Some((g, _)) => format!(
                        "{left_blank}. The customer's columns are filled in from row {}, which gives it",
                        g.row_no
                    ),
                    None => left_blank,
                };
                let detail = format!(
                    "{}: {} ({} row {}){left_blank}",
                    row.state.label(),
                    row.detail.as_deref().unwrap_or(""),
                    s.sheet,
                    row.row_no
                );
                ws.set_row_height(r, paper::wrapped_height(&detail, TO_FIX_DETAIL_WIDTH))
                    .map_err(werr)?;
                ws.write_string_with_format(r, detail_col, detail, &wrap)
                    .map_err(werr)?;
            }
            ws.set_freeze_panes(1, 0).map_err(werr)?;
            total += bad.len();
        }
    }
    if total == 0 {
        return Ok(0);
    }
    let bytes = wb.save_to_buffer().map_err(werr)?;
    crate::atomic_write(path, &bytes).map_err(|e| ResultsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(total)
}

/// A value as a CSV cell that a spreadsheet will not run: one starting with =, +, -, @, a tab
/// or a carriage return gets a leading apostrophe, as OWASP advises against formula injection.
pub fn inert(v: &str) -> std::borrow::Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{v}"))
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// Writes the results as one CSV per input sheet (UTF-8 with a BOM, so Excel shows accents
/// right), named `STEM.SHEET.csv` beside `path`. Returns the files written.
pub fn write_csv(journal: &Journal, path: &Path) -> Result<Vec<std::path::PathBuf>, ResultsError> {
    let sheets = journal.sheets()?;
    // An undo's rows say what they reversed, as the workbook's do.
    let kind = JobKind::of(&journal.meta()?);
    let rows = shown_rows(journal, &kind)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into());
    let mut written = Vec::new();
    // The workbook's names, so each CSV is named as its sheet would be.
    let mut names = SheetNames::new(&[SUMMARY]);
    for s in &sheets {
        let ids = id_columns(kind_of(s)?);
        let name: String = names
            .take(&s.sheet)
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let out = path.with_file_name(format!("{stem}.{name}.csv"));
        let werr = |e: &dyn std::fmt::Display| ResultsError::Write {
            path: out.display().to_string(),
            message: e.to_string(),
        };
        let mut buf = b"\xEF\xBB\xBF".to_vec();
        {
            let mut w = csv::Writer::from_writer(&mut buf);
            let mine: Vec<&Shown> = rows.iter().filter(|x| x.row.sheet == s.idx).collect();
            let tasks = tasks_of(&mine);
            let task_headers: Vec<String> = tasks.iter().map(|t| t.result_header()).collect();
            let mut header: Vec<&str> = s.headers.iter().map(String::as_str).collect();
            header.extend(OUTCOME_HEADERS);
            header.extend(ids.iter().map(|(_, h)| *h));
            header.extend(task_headers.iter().map(String::as_str));
            w.write_record(&header).map_err(|e| werr(&e))?;
            for shown in mine {
                let row = &shown.row;
                let mut rec: Vec<String> = (0..s.headers.len())
                    .map(|c| inert(row.cells.get(c).map_or("", String::as_str)).into_owned())
                    .collect();
                rec.push(row.state.label().to_string());
                rec.push(inert(row.detail.as_deref().unwrap_or("")).into_owned());
                rec.push(row.status.map(|x| x.to_string()).unwrap_or_default());
                rec.push(if row.attempts > 0 {
                    row.attempts.to_string()
                } else {
                    String::new()
                });
                rec.push(row.finished_at_ms.map(rfc3339).unwrap_or_default());
                for (key, _) in &ids {
                    let v = row.ids.get(*key).unwrap_or("");
                    rec.push(inert(v).into_owned());
                }
                for task in &tasks {
                    let state = shown.tasks.iter().find(|(t, _)| t == task);
                    rec.push(state.map_or(String::new(), |(_, s)| s.label().to_string()));
                }
                w.write_record(&rec).map_err(|e| werr(&e))?;
            }
            w.flush().map_err(|e| werr(&e))?;
        }
        crate::atomic_write(&out, &buf).map_err(|e| werr(&e))?;
        written.push(out);
    }
    Ok(written)
}

/// The last part of a path as stored in the journal.
pub fn file_name(p: &str) -> String {
    Path::new(p)
        .file_name()
        .map_or_else(|| p.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Counts per outcome, for a one-line summary: "12 succeeded, 1 failed".
pub fn summary_line(counts: &[(RowState, u64)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.label()))
        .collect();
    if parts.is_empty() {
        "no rows".to_string()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_are_made_inert() {
        for v in [
            "=HYPERLINK(\"http://x\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1)",
        ] {
            assert_eq!(inert(v), format!("'{v}"));
        }
        assert_eq!(inert("Acme Ltd"), "Acme Ltd");
        assert_eq!(inert(""), "");
    }
}
