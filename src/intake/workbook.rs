//! Workbooks (XLSX, XLSM, XLSB, XLS, ODS) through calamine, each sheet named for its kind.
//!
//! Cells are turned into the text the user saw, not the text a number formats to by default:
//! 7.0 is "7", 1632960000 stays whole (validation restores a UK number's leading 0), never
//! "1.63296E+09"; a date is 2026-01-31 and a time 09:00; a formula gives its cached value; an
//! error value (#N/A) is reported against its cell. Hidden sheets are skipped with a note.

use std::fmt::Write;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use calamine::{open_workbook_from_rs, Data, Range, Reader, SheetVisible, Sheets};

use super::{display, IntakeError, RowBuf, Rows, Sheet};
use crate::findings::{Finding, Severity};
use crate::schema::Kind;

/// Sheets a template carries that are not data.
const NOT_DATA: &[&str] = &["Instructions", "Findings", "Summary"];

pub(super) fn open(
    path: &Path,
    kind: Option<Kind>,
    mapping: Option<&Arc<super::mapping::Mapping>>,
) -> Result<(Vec<Sheet>, super::digest::Reading), IntakeError> {
    let file = display(path);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("ods") => "an OpenDocument spreadsheet",
        Some("xls") => "an Excel 97-2003 workbook",
        _ => "an Excel workbook",
    };
    let not_spreadsheet = |detail: String| IntakeError::NotSpreadsheet {
        path: path.to_path_buf(),
        format,
        detail,
    };
    // Read whole, once: calamine reads a workbook whole anyway, and the digest is of these
    // very bytes.
    let io_err = |source| IntakeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io_err)?;
    let size = f.metadata().map_err(io_err)?.len();
    let mut bytes = Vec::with_capacity(size as usize);
    f.read_to_end(&mut bytes).map_err(io_err)?;
    let reading = super::digest::Reading::of(&bytes, size);
    let data = Cursor::new(bytes);
    let book = match ext.as_deref() {
        Some("xls") => open_workbook_from_rs(data)
            .map(Sheets::Xls)
            .map_err(calamine::Error::Xls),
        Some("xlsb") => open_workbook_from_rs(data)
            .map(Sheets::Xlsb)
            .map_err(calamine::Error::Xlsb),
        Some("ods") => open_workbook_from_rs(data)
            .map(Sheets::Ods)
            .map_err(calamine::Error::Ods),
        _ => open_workbook_from_rs(data)
            .map(Sheets::Xlsx)
            .map_err(calamine::Error::Xlsx),
    };
    let mut book = book.map_err(|e| not_spreadsheet(e.to_string()))?;
    let metadata = book.sheets_metadata().to_vec();
    let mut notes = Vec::new();
    let note = |severity, sheet: &str, message: String| Finding {
        severity,
        file: file.clone(),
        sheet: sheet.into(),
        row: None,
        column: None,
        header: None,
        value: String::new(),
        message,
    };
    let visible_unknown: Vec<&str> = metadata
        .iter()
        .filter(|s| s.visible == SheetVisible::Visible)
        .filter(|s| {
            Kind::from_name(&s.name).is_none()
                && !NOT_DATA.iter().any(|n| n.eq_ignore_ascii_case(&s.name))
        })
        .map(|s| s.name.as_str())
        .collect();
    let any_known = metadata
        .iter()
        .any(|s| s.visible == SheetVisible::Visible && Kind::from_name(&s.name).is_some());
    let mut chosen: Vec<(String, Option<Kind>)> = Vec::new();
    if let Some(m) = mapping {
        let visible: Vec<&str> = metadata
            .iter()
            .filter(|s| s.visible == SheetVisible::Visible)
            .filter(|s| !NOT_DATA.iter().any(|n| n.eq_ignore_ascii_case(&s.name)))
            .map(|s| s.name.as_str())
            .collect();
        chosen.push((
            super::mapping::choose_sheet(m, &file, &visible)?.to_string(),
            Some(m.kind),
        ));
    }
    for s in metadata.iter().filter(|_| mapping.is_none()) {
        if s.visible != SheetVisible::Visible {
            notes.push(note(
                Severity::Note,
                &s.name,
                format!("sheet {:?} is hidden and was skipped", s.name),
            ));
            continue;
        }
        if NOT_DATA.iter().any(|n| n.eq_ignore_ascii_case(&s.name)) {
            continue;
        }
        let only_sheet = visible_unknown.len() == 1 && !any_known;
        let k = match (Kind::from_name(&s.name), kind) {
            (Some(k), _) => Some(k),
            (None, Some(k)) if visible_unknown.len() == 1 => Some(k),
            // A one-sheet workbook ("Sheet1", "Customers - FINAL v3 (Jan)") is read as its
            // headers say, as a CSV is. Only when it is the one sheet: beside a sheet named
            // for its kind, a sheet of the same headers is more likely an old copy than rows
            // to run.
            (None, None) if only_sheet => None,
            (None, _) => {
                notes.push(note(
                    Severity::Warning,
                    &s.name,
                    format!(
                        "sheet {:?} was skipped: plbulk reads sheets named {}",
                        s.name,
                        crate::schema::kind_names(Kind::sheet_name)
                    ),
                ));
                continue;
            }
        };
        chosen.push((s.name.clone(), k));
    }
    let mut sheets = Vec::new();
    for (name, kind) in chosen {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| not_spreadsheet(format!("sheet {name:?}: {e}")))?;
        let sheet_name: Arc<str> = name.as_str().into();
        let Some((start_row, start_col)) = range.start() else {
            notes.push(note(
                Severity::Note,
                &name,
                format!("sheet {name:?} is empty"),
            ));
            continue;
        };
        let mut rows = SheetRows {
            file: file.clone(),
            sheet: sheet_name.clone(),
            range,
            next: 0,
            start_row,
            start_col,
        };
        let mut header = RowBuf::default();
        let mut scratch = Vec::new();
        let header_row = loop {
            match rows.next_row(&mut header, &mut scratch)? {
                Some(_) if header.is_blank() => continue,
                Some(n) => break n,
                None => break 0,
            }
        };
        if header_row == 0 {
            notes.push(note(
                Severity::Note,
                &name,
                format!("sheet {name:?} is empty"),
            ));
            continue;
        }
        let headers: Arc<[Arc<str>]> = header.iter().map(|h| Arc::from(h.trim())).collect();
        let kind = match kind {
            Some(k) => k,
            None => match super::infer_kind(&headers) {
                Some(k) => {
                    notes.push(note(
                        Severity::Note,
                        &name,
                        format!(
                            "sheet {name:?} read as {k} rows, from its headers (to say so yourself, add --kind {})",
                            k.cli_name()
                        ),
                    ));
                    k
                }
                None => {
                    notes.push(note(
                        Severity::Warning,
                        &name,
                        format!(
                            "sheet {name:?} was skipped: its headers do not say what it holds; name the sheet {}, or use --kind",
                            crate::schema::kind_names(Kind::sheet_name)
                        ),
                    ));
                    continue;
                }
            },
        };
        sheets.push(Sheet::shaped(
            file.clone(),
            sheet_name,
            kind,
            headers,
            header_row,
            Box::new(rows),
            scratch,
            mapping,
        )?);
    }
    if sheets.is_empty() {
        if notes.iter().any(|n| n.message.contains("is empty")) && visible_unknown.is_empty() {
            return Err(IntakeError::Empty(path.to_path_buf()));
        }
        return Err(IntakeError::NoKnownSheets {
            file: file.to_string(),
            found: metadata
                .iter()
                .map(|s| format!("{:?}", s.name))
                .collect::<Vec<_>>()
                .join(", "),
            expected: crate::schema::kind_names(Kind::sheet_name),
        });
    }
    // Workbook-level notes ride on the first sheet read.
    sheets[0].notes.splice(0..0, notes);
    Ok((sheets, reading))
}

struct SheetRows {
    file: Arc<str>,
    sheet: Arc<str>,
    range: Range<Data>,
    next: usize,
    start_row: u32,
    start_col: u32,
}

impl Rows for SheetRows {
    fn next_row(
        &mut self,
        buf: &mut RowBuf,
        notes: &mut Vec<Finding>,
    ) -> Result<Option<u32>, IntakeError> {
        buf.clear();
        let (height, width) = self.range.get_size();
        if self.next >= height {
            return Ok(None);
        }
        let row = self.start_row + self.next as u32 + 1;
        let r = self.next;
        self.next += 1;
        // Columns before the first used one are empty, but they keep their letters.
        for _ in 0..self.start_col {
            buf.push("");
        }
        // Cell by cell, by index: `rows().nth(n)` walks from the top each time.
        for i in 0..width {
            let cell = self.range.get((r, i)).unwrap_or(&Data::Empty);
            if let Err(shown) = cell_text(cell, buf.text_mut()) {
                notes.push(Finding {
                    severity: Severity::Error,
                    file: self.file.clone(),
                    sheet: self.sheet.clone(),
                    row: Some(row),
                    column: Some(self.start_col + i as u32),
                    header: None,
                    value: shown.clone(),
                    message: format!(
                        "the cell shows the error {shown}: fix its formula or type the value"
                    ),
                });
            }
            buf.end_cell();
        }
        Ok(Some(row))
    }
}

/// Appends the text of `cell` to `out`; an error value is appended and also returned.
pub(crate) fn cell_text(cell: &Data, out: &mut String) -> Result<(), String> {
    match cell {
        Data::Empty => {}
        Data::String(s) => out.push_str(s),
        Data::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Data::Float(f) => push_float(*f, out),
        Data::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(dt) => {
            let v = dt.as_f64();
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            if dt.is_duration() || (0.0..1.0).contains(&v) {
                let _ = write!(out, "{h:02}:{mi:02}");
                if s != 0 {
                    let _ = write!(out, ":{s:02}");
                }
            } else if v.fract() == 0.0 {
                let _ = write!(out, "{y:04}-{mo:02}-{d:02}");
            } else {
                let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}");
            }
        }
        Data::DateTimeIso(s) => out.push_str(s),
        Data::DurationIso(s) => push_iso_duration(s, out),
        Data::Error(e) => {
            let shown = e.to_string();
            out.push_str(&shown);
            return Err(shown);
        }
    }
    Ok(())
}

/// A number as a person reads it: whole numbers without ".0", others in full, never in
/// exponent form.
fn push_float(f: f64, out: &mut String) {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{}", f as i64);
    } else {
        // Rust's shortest round-trip form has no exponent: 0.1 + 0.2 shows as Excel shows it,
        // to 15 significant digits.
        let rounded = format!(
            "{:.*}",
            15usize.saturating_sub(f.abs().log10().max(0.0) as usize + 1),
            f
        );
        let trimmed = rounded.trim_end_matches('0').trim_end_matches('.');
        out.push_str(trimmed);
    }
}

/// ODS writes times as durations: PT09H30M00S → 09:30.
fn push_iso_duration(s: &str, out: &mut String) {
    let parse = || -> Option<(u32, u32, u32)> {
        let body = s.strip_prefix("PT")?;
        let (h, rest) = body.split_once('H')?;
        let (m, rest) = rest.split_once('M')?;
        let sec = rest.strip_suffix('S').unwrap_or("0");
        let sec: f64 = sec.parse().ok()?;
        Some((h.parse().ok()?, m.parse().ok()?, sec as u32))
    };
    match parse() {
        Some((h, m, 0)) => {
            let _ = write!(out, "{h:02}:{m:02}");
        }
        Some((h, m, sec)) => {
            let _ = write!(out, "{h:02}:{m:02}:{sec:02}");
        }
        None => out.push_str(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Data) -> String {
        let mut s = String::new();
        let _ = cell_text(&d, &mut s);
        s
    }

    #[test]
    fn numbers_read_as_shown() {
        assert_eq!(text(Data::Float(7.0)), "7");
        assert_eq!(text(Data::Float(1632960000.0)), "1632960000");
        assert_eq!(text(Data::Float(0.1 + 0.2)), "0.3");
        assert_eq!(text(Data::Float(2.5)), "2.5");
        assert_eq!(text(Data::Float(-3.0)), "-3");
        assert_eq!(text(Data::Int(12)), "12");
    }

    #[test]
    fn durations_from_ods() {
        let mut s = String::new();
        push_iso_duration("PT09H30M00S", &mut s);
        assert_eq!(s, "09:30");
    }
}
