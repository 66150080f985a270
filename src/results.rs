//! The results workbook: every input row as the user gave it, and what happened to it.
//!
//! Read from the journal alone, so it can be written at the end of a run, on Ctrl-C, or by
//! another process while a job runs. Each input sheet comes back with its own columns and
//! values, then Outcome, Detail, the ids made or matched, the HTTP status, the attempts and
//! the finish time; a Summary sheet comes first. Every value is written as text or a number,
//! never as a formula, and the file is written whole to a temporary name, then renamed.

use std::path::Path;

use rust_xlsxwriter::{
    Chart, ChartFormat, ChartSolidFill, ChartType, Color, ExcelDateTime, Format, FormatBorder,
    Workbook, Worksheet, XlsxError,
};

use crate::contract::natural_key;
use crate::journal::{Journal, JournalError, ResultRow};
use crate::model::IdKind;
use crate::model::RowState;
use crate::schema::Kind;
use crate::sheet_names::SheetNames;

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

fn outcome_color(s: RowState) -> Color {
    match s {
        RowState::Succeeded => Color::RGB(0xC6EFCE),
        RowState::AlreadyExisted | RowState::Unchanged => Color::RGB(0xDDEBF7),
        RowState::Failed | RowState::Invalid => Color::RGB(0xFFC7CE),
        RowState::Skipped | RowState::NeedsReview => Color::RGB(0xFFEB9C),
        RowState::Pending => Color::RGB(0xEDEDED),
    }
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

/// Writes the results of the job in `journal` to `path` (.xlsx).
pub fn write(journal: &Journal, path: &Path, calls: Option<u64>) -> Result<(), ResultsError> {
    let meta = journal.meta()?;
    let sheets = journal.sheets()?;
    let rows = journal.result_rows()?;
    let counts = journal.counts()?;
    let (attempts, first, last) = journal.attempt_stats()?;
    let werr = |e: XlsxError| ResultsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };

    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0x1F4E78))
        .set_font_color(Color::White)
        .set_border_bottom(FormatBorder::Thin);

    // Summary first.
    let ws = wb.add_worksheet();
    ws.set_name(SUMMARY).map_err(werr)?;
    ws.set_column_width(0, 28).map_err(werr)?;
    ws.set_column_width(1, 60).map_err(werr)?;
    let mut r = 0u32;
    let mut line =
        |ws: &mut rust_xlsxwriter::Worksheet, k: &str, v: String| -> Result<(), XlsxError> {
            ws.write_string_with_format(r, 0, k, &bold)?;
            ws.write_string(r, 1, v)?;
            r += 1;
            Ok(())
        };
    line(ws, "Job", meta.id.clone()).map_err(werr)?;
    line(ws, "State", meta.state.as_str().to_string()).map_err(werr)?;
    line(ws, "Base URL", meta.base_url.clone()).map_err(werr)?;
    line(ws, "API key", meta.key_id.clone()).map_err(werr)?;
    for f in &meta.inputs {
        line(ws, "Input", f.path.clone()).map_err(werr)?;
    }
    line(ws, "Created", time_text(meta.created_at_ms)).map_err(werr)?;
    if let Some(f) = first {
        line(ws, "First call", time_text(f)).map_err(werr)?;
    }
    if let Some(l) = last {
        line(ws, "Last call", time_text(l)).map_err(werr)?;
    }
    if let (Some(f), Some(l)) = (first, last) {
        line(
            ws,
            "Duration",
            humantime::format_duration(std::time::Duration::from_secs(
                ((l - f).max(0) / 1000) as u64,
            ))
            .to_string(),
        )
        .map_err(werr)?;
    }
    line(ws, "Writes sent (attempts)", attempts.to_string()).map_err(werr)?;
    if let Some(c) = calls {
        line(ws, "Calls made this run (all)", c.to_string()).map_err(werr)?;
    }
    r += 1;
    let table_header = r;
    ws.write_string_with_format(r, 0, "Sheet", &header)
        .map_err(werr)?;
    let states: Vec<RowState> = RowState::ALL.to_vec();
    for (i, s) in states.iter().enumerate() {
        ws.write_string_with_format(r, 1 + i as u16, s.label(), &header)
            .map_err(werr)?;
        ws.set_column_width(1 + i as u16, 14).map_err(werr)?;
    }
    ws.set_column_width(1, 60).map_err(werr)?;
    r += 1;
    for s in &sheets {
        ws.write_string(r, 0, format!("{} [{}]", file_name(&s.file), s.sheet))
            .map_err(werr)?;
        for (i, st) in states.iter().enumerate() {
            let n = rows
                .iter()
                .filter(|x| x.sheet == s.idx && x.state == *st)
                .count();
            ws.write_number(r, 1 + i as u16, n as f64).map_err(werr)?;
        }
        r += 1;
    }
    ws.write_string_with_format(r, 0, "All sheets", &bold)
        .map_err(werr)?;
    for (i, st) in states.iter().enumerate() {
        let n = counts.iter().find(|(s, _)| s == st).map_or(0, |(_, n)| *n);
        ws.write_number_with_format(r, 1 + i as u16, n as f64, &bold)
            .map_err(werr)?;
    }
    if !sheets.is_empty() {
        let chart = outcomes_chart(&states, table_header, sheets.len() as u32);
        ws.insert_chart(r + 2, 0, &chart).map_err(werr)?;
    }
    print_setup(ws, None).map_err(werr)?;

    let mut names = SheetNames::new(&[SUMMARY]);
    let finished = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    for s in &sheets {
        let ids = id_columns(kind_of(s)?);
        let extra: Vec<&str> = OUTCOME_HEADERS
            .iter()
            .copied()
            .chain(ids.iter().map(|(_, h)| *h))
            .collect();
        let mine: Vec<&ResultRow> = rows.iter().filter(|x| x.sheet == s.idx).collect();
        let user_cols = s.headers.len() as u16;
        // Widths first: a constant-memory sheet is streamed row by row, and its column
        // settings come before the rows in the file.
        let mut widths: Vec<usize> = s
            .headers
            .iter()
            .map(|h| h.chars().count())
            .chain(extra.iter().map(|h| h.chars().count()))
            .collect();
        for row in &mine {
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
        widths[user_cols as usize + 4] = widths[user_cols as usize + 4].max(20);
        let ws = wb.add_worksheet_with_constant_memory().map_err(werr)?;
        ws.set_name(names.take(&s.sheet)).map_err(werr)?;
        for (c, w) in widths.iter().enumerate() {
            ws.set_column_width(c as u16, (*w).clamp(8, 60) as f64 + 2.0)
                .map_err(werr)?;
        }
        ws.set_freeze_panes(1, 0).map_err(werr)?;
        print_setup(ws, Some(0)).map_err(werr)?;
        let last_col = user_cols + extra.len() as u16 - 1;
        ws.autofilter(0, 0, mine.len() as u32, last_col)
            .map_err(werr)?;
        let headers = s
            .headers
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied());
        for (c, h) in headers.enumerate() {
            ws.write_string_with_format(0, c as u16, h, &header)
                .map_err(werr)?;
        }
        for (n, row) in mine.iter().enumerate() {
            write_row(ws, n as u32 + 1, row, user_cols, &ids, &finished).map_err(werr)?;
        }
    }
    let bytes = wb.save_to_buffer().map_err(werr)?;
    crate::atomic_write(path, &bytes).map_err(|e| ResultsError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Printed (or saved as PDF): landscape, one page wide, the header row on every page.
fn print_setup(ws: &mut Worksheet, header_row: Option<u32>) -> Result<(), XlsxError> {
    ws.set_landscape();
    ws.set_print_fit_to_pages(1, 0);
    if let Some(r) = header_row {
        ws.set_repeat_rows(r, r)?;
    }
    Ok(())
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
                    .set_solid_fill(ChartSolidFill::new().set_color(chart_color(*st))),
            );
    }
    chart.x_axis().set_name("Rows");
    chart.set_width(720).set_height(120 + 40 * sheets.min(20));
    chart
}

/// The outcome's colour in a chart: the cells' pastel, made strong enough to read as a bar.
fn chart_color(s: RowState) -> Color {
    match s {
        RowState::Succeeded => Color::RGB(0x63BE7B),
        RowState::AlreadyExisted | RowState::Unchanged => Color::RGB(0x5B9BD5),
        RowState::Failed | RowState::Invalid => Color::RGB(0xE06666),
        RowState::Skipped | RowState::NeedsReview => Color::RGB(0xF1C232),
        RowState::Pending => Color::RGB(0xB7B7B7),
    }
}

fn write_row(
    ws: &mut Worksheet,
    r: u32,
    row: &ResultRow,
    user_cols: u16,
    ids: &[(IdKind, &str)],
    finished: &Format,
) -> Result<(), XlsxError> {
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
    put(ws, user_cols + 1, row.detail.as_deref().unwrap_or(""))?;
    if let Some(s) = row.status {
        ws.write_number(r, user_cols + 2, s as f64)?;
    }
    if row.attempts > 0 {
        ws.write_number(r, user_cols + 3, row.attempts as f64)?;
    }
    if let Some(t) = row.finished_at_ms {
        // A date-time cell (UTC), so the column sorts and filters as one.
        let dt = ExcelDateTime::from_timestamp(t.div_euclid(1000))?;
        ws.write_datetime_with_format(r, user_cols + 4, &dt, finished)?;
    }
    for (k, (key, _)) in ids.iter().enumerate() {
        let v = row.ids.get(*key).unwrap_or("");
        put(ws, user_cols + OUTCOME_HEADERS.len() as u16 + k as u16, v)?;
    }
    Ok(())
}

/// One format per outcome, made once: a format per cell would cost a lookup per row.
fn outcome_format(s: RowState) -> &'static Format {
    static FORMATS: std::sync::OnceLock<Vec<(RowState, Format)>> = std::sync::OnceLock::new();
    let all = FORMATS.get_or_init(|| {
        RowState::ALL
            .iter()
            .map(|s| (*s, Format::new().set_background_color(outcome_color(*s))))
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

/// Writes the rows that did not succeed (failed, skipped, needs review, invalid) in
/// the template's own columns, one sheet per kind, plus Detail: fix the cells in Excel and run
/// the file again. A Customer that named a Ref of this job is written as the customer's id
/// when the job made or found it, since the Customers row it named is not in the file. Writes
/// nothing and returns 0 when every row succeeded.
pub fn write_to_fix(journal: &Journal, path: &Path) -> Result<usize, ResultsError> {
    use crate::schema::{Field, Kind};
    let sheets = journal.sheets()?;
    let rows = journal.result_rows()?;
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
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0x1F4E78))
        .set_font_color(Color::White);
    let mut wb = Workbook::new();
    let mut total = 0;
    for kind in Kind::ALL {
        let of_kind: Vec<&crate::model::SheetRec> = sheets
            .iter()
            .filter(|s| Kind::from_name(&s.kind) == Some(kind))
            .collect();
        let bad: Vec<(&crate::model::SheetRec, &ResultRow)> = of_kind
            .iter()
            .flat_map(|s| {
                rows.iter()
                    .filter(move |r| r.sheet == s.idx && needs_fixing(r.state))
                    .map(move |r| (*s, r))
            })
            .collect();
        if bad.is_empty() {
            continue;
        }
        let ws = wb.add_worksheet();
        ws.set_name(kind.sheet_name()).map_err(werr)?;
        let columns = kind.columns();
        for (c, col) in columns.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, col.header, &header)
                .map_err(werr)?;
            ws.set_column_width(c as u16, (col.header.len().max(12) + 2) as f64)
                .map_err(werr)?;
        }
        let detail_col = columns.len() as u16;
        ws.write_string_with_format(0, detail_col, "Detail", &header)
            .map_err(werr)?;
        ws.set_column_width(detail_col, 80).map_err(werr)?;
        for (n, (s, row)) in bad.iter().enumerate() {
            let r = n as u32 + 1;
            for (c, col) in columns.iter().enumerate() {
                let from = s
                    .headers
                    .iter()
                    .position(|h| kind.match_header(h).is_some_and(|m| m.field == col.field));
                let mut v = from
                    .and_then(|i| row.cells.get(i))
                    .map_or(String::new(), |v| v.clone());
                if col.field == Field::Customer {
                    if let Some(id) = row
                        .ids
                        .get(IdKind::Customer)
                        .or_else(|| customer_ids.get(&natural_key(&v)).map(String::as_str))
                    {
                        v = id.to_string();
                    }
                }
                if !v.is_empty() {
                    ws.write_string(r, c as u16, &v).map_err(werr)?;
                }
            }
            let detail = format!(
                "{}: {} ({} row {})",
                row.state.label(),
                row.detail.as_deref().unwrap_or(""),
                s.sheet,
                row.row_no
            );
            ws.write_string(r, detail_col, detail).map_err(werr)?;
        }
        ws.set_freeze_panes(1, 0).map_err(werr)?;
        total += bad.len();
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
    let rows = journal.result_rows()?;
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
            let mut header: Vec<&str> = s.headers.iter().map(String::as_str).collect();
            header.extend(OUTCOME_HEADERS);
            header.extend(ids.iter().map(|(_, h)| *h));
            w.write_record(&header).map_err(|e| werr(&e))?;
            for row in rows.iter().filter(|x| x.sheet == s.idx) {
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
