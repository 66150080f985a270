//! The validation report workbook: the input sheets as the user gave them, each bad cell filled
//! red and carrying a comment with what to do, and a Findings sheet listing everything.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rust_xlsxwriter::{Color, Format, Note, Workbook, XlsxError};

use crate::findings::{Finding, Findings, Severity};
use crate::intake::{self, IntakeError, RowBuf};
use crate::schema::Kind;
use crate::sheet_names::SheetNames;

/// Excel's last row, 0-based.
const MAX_ROW: u32 = 1_048_575;
/// Comments beyond this many per sheet make a workbook slow to open; the Findings sheet has all.
const MAX_NOTES_PER_SHEET: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the report: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("cannot write the report {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

type CellKey = (Arc<str>, Arc<str>, u32, u32);

/// The sheet that lists, for an online validation, what each update row would change.
const CHANGES: &str = "Changes";

fn write_changes(
    book: &mut Workbook,
    changes: &[ChangeLine],
    header: &Format,
) -> Result<(), XlsxError> {
    let ws = book.add_worksheet();
    ws.set_name(CHANGES)?;
    let cols = ["Sheet", "Row", "Entity", "Field", "Now", "After"];
    for (i, h) in cols.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *h, header)?;
    }
    for (i, ch) in changes.iter().enumerate().take(MAX_ROW as usize - 1) {
        let r = i as u32 + 1;
        ws.write_string(r, 0, &ch.sheet)?;
        ws.write_number(r, 1, ch.row)?;
        ws.write_string(r, 2, &ch.entity)?;
        ws.write_string(r, 3, &ch.field)?;
        ws.write_string(r, 4, &ch.now)?;
        ws.write_string(r, 5, &ch.after)?;
    }
    if changes.is_empty() {
        ws.write_string(1, 0, "No update row changes anything in the account.")?;
    }
    for (i, w) in [16.0, 7.0, 34.0, 18.0, 40.0, 40.0].iter().enumerate() {
        ws.set_column_width(i as u16, *w)?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.autofilter(0, 0, changes.len().min(MAX_ROW as usize - 1) as u32, 5)?;
    Ok(())
}

/// Writes the report for `inputs` (each file with the user's --kind) to `path`.
/// A field an update row would change, as the Changes sheet lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLine {
    pub sheet: String,
    pub row: u32,
    pub entity: String,
    pub field: String,
    pub now: String,
    pub after: String,
}

pub fn write(
    path: &Path,
    inputs: &[(std::path::PathBuf, Option<Kind>)],
    findings: &Findings,
    changes: Option<&[ChangeLine]>,
) -> Result<(), ReportError> {
    let mut by_cell: HashMap<CellKey, Vec<&Finding>> = HashMap::new();
    for f in findings.items() {
        if let (Some(r), Some(c)) = (f.row, f.column) {
            by_cell
                .entry((f.file.clone(), f.sheet.clone(), r, c))
                .or_default()
                .push(f);
        }
    }
    let mut book = Workbook::new();
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xD9E1F2));
    let error = Format::new().set_background_color(Color::RGB(0xF8CBAD));
    let warning = Format::new().set_background_color(Color::RGB(0xFFE699));
    let mut names = SheetNames::new(&["Findings", CHANGES]);

    let fs = book.add_worksheet();
    fs.set_name("Findings")?;
    let cols = [
        "Severity",
        "File",
        "Sheet",
        "Row",
        "Column",
        "Header",
        "Value",
        "What to do",
    ];
    for (i, h) in cols.iter().enumerate() {
        fs.write_string_with_format(0, i as u16, *h, &header)?;
    }
    for (i, f) in findings.items().iter().enumerate().take(MAX_ROW as usize) {
        let r = i as u32 + 1;
        let fmt = if f.severity == Severity::Error {
            &error
        } else {
            &warning
        };
        fs.write_string_with_format(r, 0, f.severity.as_str(), fmt)?;
        fs.write_string(r, 1, &*f.file)?;
        fs.write_string(r, 2, &*f.sheet)?;
        if let Some(row) = f.row {
            fs.write_number(r, 3, row)?;
        }
        fs.write_string(r, 4, f.column_letter().unwrap_or_default())?;
        fs.write_string(r, 5, f.header.as_deref().unwrap_or(""))?;
        fs.write_string(r, 6, &f.value)?;
        fs.write_string(r, 7, &f.message)?;
    }
    if findings.dropped() > 0 {
        let r = findings.items().len() as u32 + 2;
        fs.write_string(
            r,
            0,
            format!("… and {} more findings not listed", findings.dropped()),
        )?;
    }
    for (i, w) in [9.0, 24.0, 16.0, 7.0, 8.0, 18.0, 24.0, 90.0]
        .iter()
        .enumerate()
    {
        fs.set_column_width(i as u16, *w)?;
    }
    fs.set_freeze_panes(1, 0)?;
    fs.autofilter(0, 0, findings.items().len().min(MAX_ROW as usize) as u32, 7)?;
    if let Some(changes) = changes {
        write_changes(&mut book, changes, &header)?;
    }

    for (file, kind) in inputs {
        let Ok(sheets) = intake::open(file, *kind) else {
            continue;
        };
        for mut sheet in sheets {
            let name = names.take(&sheet.name);
            let ws = book.add_worksheet();
            ws.set_name(&name)?;
            let hr = sheet.header_row.saturating_sub(1);
            for (c, h) in sheet.headers.iter().enumerate().take(16_384) {
                ws.write_string_with_format(hr, c as u16, &**h, &header)?;
            }
            ws.set_freeze_panes(hr + 1, 0)?;
            let mut row = RowBuf::default();
            let mut scratch = Vec::new();
            let mut notes = 0usize;
            while let Some(n) = sheet.rows.next_row(&mut row, &mut scratch)? {
                scratch.clear();
                let r = n.saturating_sub(1);
                if r > MAX_ROW {
                    break;
                }
                for (c, text) in row.iter().enumerate().take(16_384) {
                    let key = (sheet.file.clone(), sheet.name.clone(), n, c as u32);
                    let text: String = text.chars().take(crate::validate::MAX_CELL_CHARS).collect();
                    match by_cell.get(&key) {
                        Some(fs) => {
                            let worst = fs
                                .iter()
                                .map(|f| f.severity)
                                .min()
                                .unwrap_or(Severity::Note);
                            let fmt = if worst == Severity::Error {
                                &error
                            } else {
                                &warning
                            };
                            ws.write_string_with_format(r, c as u16, &text, fmt)?;
                            if notes < MAX_NOTES_PER_SHEET {
                                let msg: Vec<String> = fs
                                    .iter()
                                    .map(|f| format!("{}: {}", f.severity.as_str(), f.message))
                                    .collect();
                                ws.insert_note(
                                    r,
                                    c as u16,
                                    &Note::new(msg.join("\n")).set_author("plbulk"),
                                )?;
                                notes += 1;
                            }
                        }
                        None if !text.is_empty() => {
                            ws.write_string(r, c as u16, &text)?;
                        }
                        None => {}
                    }
                }
            }
            ws.autofit();
        }
    }
    let bytes = book.save_to_buffer()?;
    crate::atomic_write(path, &bytes).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })
}
