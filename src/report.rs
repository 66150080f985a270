//! The validation report workbook: the input sheets as the user gave them, each bad cell filled
//! red and carrying a comment with what to do, and a Findings sheet listing everything.
//!
//! Every sheet is streamed to the file row by row (rust_xlsxwriter's constant-memory mode): a
//! copy of a million-row input held as cells took over a gigabyte. A sheet that reaches
//! Excel's last row ends with a note saying how many rows were left out, and the caller is told
//! so too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rust_xlsxwriter::{Color, Format, FormatAlign, Note, Workbook, Worksheet, XlsxError};

use crate::findings::{Finding, Findings, Severity};
use crate::intake::{self, IntakeError, RowBuf};
use crate::paper::{self, Orientation};
use crate::schema::Kind;
use crate::sheet_names::SheetNames;

/// Excel's last row, 0-based.
const MAX_ROW: u32 = 1_048_575;
/// Comments beyond this many per sheet make a workbook slow to open; the Findings sheet has all.
const MAX_NOTES_PER_SHEET: usize = 10_000;
/// Rows of an input sheet read ahead to size its columns: a streamed sheet's widths are written
/// before its rows.
const WIDTH_SAMPLE: usize = 1_000;
/// The widest an input sheet's column is made, in characters.
const MAX_WIDTH: usize = 40;

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

/// The formats the report uses, made once.
struct Formats {
    header: Format,
    error: Format,
    warning: Format,
    wrap: Format,
    /// The Findings sheet's cells, at the top of rows made tall for a wrapped message: at the
    /// bottom, a finding's file and row read as the next finding's.
    top: Format,
    /// Row and Column, centred under centred headers: a right-aligned row number beside a
    /// left-aligned column letter read as one ("2 F").
    centre: Format,
    centre_header: Format,
    cut: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xD9E1F2)),
            error: Format::new().set_background_color(Color::RGB(0xF8CBAD)),
            warning: Format::new().set_background_color(Color::RGB(0xFFE699)),
            wrap: Format::new().set_text_wrap().set_align(FormatAlign::Top),
            top: Format::new().set_align(FormatAlign::Top),
            centre: Format::new()
                .set_align(FormatAlign::Top)
                .set_align(FormatAlign::Center),
            centre_header: Format::new()
                .set_bold()
                .set_background_color(Color::RGB(0xD9E1F2))
                .set_align(FormatAlign::Center),
            cut: Format::new()
                .set_bold()
                .set_font_color(Color::RGB(0xC00000)),
        }
    }

    fn severity(&self, s: Severity) -> &Format {
        match s {
            Severity::Error => &self.error,
            Severity::Warning | Severity::Note => &self.warning,
        }
    }

    /// The same, at the top of its row.
    fn severity_top(&self, s: Severity) -> Format {
        self.severity(s).clone().set_align(FormatAlign::Top)
    }
}

/// A list sheet (Findings, Changes): streamed, header row on every printed page, landscape.
fn list_sheet<'a>(
    book: &'a mut Workbook,
    name: &str,
    cols: &[(&str, f64)],
    rows: usize,
    header: &Format,
) -> Result<&'a mut Worksheet, XlsxError> {
    let ws = book.add_worksheet_with_constant_memory()?;
    ws.set_name(name)?;
    for (i, (_, w)) in cols.iter().enumerate() {
        ws.set_column_width(i as u16, *w)?;
    }
    ws.set_freeze_panes(1, 0)?;
    paper::setup(ws, Orientation::Landscape, Some((0, 0)))?;
    ws.autofilter(
        0,
        0,
        rows.clamp(1, MAX_ROW as usize) as u32,
        cols.len() as u16 - 1,
    )?;
    for (i, (h, _)) in cols.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *h, header)?;
    }
    Ok(ws)
}

fn write_changes(
    book: &mut Workbook,
    changes: &[ChangeLine],
    f: &Formats,
) -> Result<(), XlsxError> {
    let cols = [
        ("Sheet", 16.0),
        ("Row", 7.0),
        ("Entity", 34.0),
        ("Field", 18.0),
        ("Now", 36.0),
        ("After", 36.0),
    ];
    let ws = list_sheet(book, CHANGES, &cols, changes.len(), &f.header)?;
    for (i, ch) in changes.iter().enumerate().take(MAX_ROW as usize) {
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
    Ok(())
}

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

/// The Findings sheet's columns and widths: "What to do" wraps, so the sheet prints one
/// landscape page wide at a readable size.
const FINDINGS_COLS: [(&str, f64); 8] = [
    ("Severity", 9.0),
    ("File", 20.0),
    ("Sheet", 14.0),
    ("Row", 7.0),
    ("Column", 8.0),
    ("Header", 16.0),
    ("Value", 20.0),
    ("What to do", 70.0),
];

/// The kept findings in the order a reader looks for them: by file and sheet as first found,
/// then row and column; the order found, within a cell. Cross-row checks (a duplicate) find
/// theirs after the rows that follow.
fn in_row_order(findings: &Findings) -> Vec<&Finding> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for f in findings.items() {
        if !seen.contains(&(&*f.file, &*f.sheet)) {
            seen.push((&*f.file, &*f.sheet));
        }
    }
    let mut items: Vec<&Finding> = findings.items().iter().collect();
    items.sort_by_key(|f| {
        let sheet = seen
            .iter()
            .position(|&(file, s)| *f.file == *file && *f.sheet == *s);
        (sheet, f.row, f.column)
    });
    items
}

fn write_findings(book: &mut Workbook, findings: &Findings, f: &Formats) -> Result<(), XlsxError> {
    let items = in_row_order(findings);
    let ws = list_sheet(book, "Findings", &FINDINGS_COLS, items.len(), &f.header)?;
    for c in [3, 4] {
        ws.write_string_with_format(0, c, FINDINGS_COLS[c as usize].0, &f.centre_header)?;
    }
    let what_width = FINDINGS_COLS[7].1;
    let severities =
        [Severity::Error, Severity::Warning, Severity::Note].map(|s| f.severity_top(s));
    let mut last = 0;
    for (i, x) in items.iter().enumerate().take(MAX_ROW as usize - 1) {
        let r = i as u32 + 1;
        last = r;
        ws.set_row_height(r, paper::wrapped_height(&x.message, what_width))?;
        let severity = &severities[x.severity as usize];
        ws.write_string_with_format(r, 0, x.severity.as_str(), severity)?;
        ws.write_string_with_format(r, 1, &*x.file, &f.top)?;
        ws.write_string_with_format(r, 2, &*x.sheet, &f.top)?;
        if let Some(row) = x.row {
            ws.write_number_with_format(r, 3, row, &f.centre)?;
        }
        let letter = x.column_letter().unwrap_or_default();
        ws.write_string_with_format(r, 4, letter, &f.centre)?;
        ws.write_string_with_format(r, 5, x.header.as_deref().unwrap_or(""), &f.top)?;
        ws.write_string_with_format(r, 6, &x.value, &f.top)?;
        ws.write_string_with_format(r, 7, &x.message, &f.wrap)?;
    }
    if findings.dropped() > 0 {
        ws.write_string_with_format(last + 2, 0, dropped_line(findings), &f.cut)?;
    }
    Ok(())
}

/// What the Findings sheet (and the console) says when more was found than a report keeps.
fn dropped_line(findings: &Findings) -> String {
    format!(
        "… and {} more findings not listed: a report keeps the first {}. Fix these and validate again to see the rest.",
        findings.dropped(),
        findings.items().len()
    )
}

/// Writes the report for `inputs` (each file with the user's --kind, or read through
/// `mapping`: then each sheet is copied in the export's own columns, where its findings are
/// placed) to `path`. Returns, one line each for the console, the sheets cut at Excel's last
/// row.
pub fn write(
    path: &Path,
    inputs: &[(std::path::PathBuf, Option<Kind>)],
    mapping: Option<&std::sync::Arc<intake::mapping::Mapping>>,
    findings: &Findings,
    changes: Option<&[ChangeLine]>,
) -> Result<Vec<String>, ReportError> {
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
    let formats = Formats::new();
    let mut names = SheetNames::new(&["Findings", CHANGES]);
    let mut cuts = Vec::new();

    write_findings(&mut book, findings, &formats)?;
    if let Some(changes) = changes {
        write_changes(&mut book, changes, &formats)?;
    }

    for (file, kind) in inputs {
        let Ok((sheets, _)) = intake::open_mapped(file, *kind, mapping) else {
            continue;
        };
        for sheet in sheets {
            let name = names.take(&sheet.name);
            let cut = copy_sheet(
                &mut book, sheet, &name, &by_cell, findings, &formats, MAX_ROW,
            )?;
            if let Some(cut) = cut {
                cuts.push(cut);
            }
        }
    }
    let bytes = book.save_to_buffer()?;
    crate::atomic_write(path, &bytes).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(cuts)
}

/// Copies an input sheet into the report as `name`, each cell with a finding filled and
/// commented. Returns, when the sheet reaches `last_row` (0-based; Excel's last, but in tests),
/// what was left out.
fn copy_sheet(
    book: &mut Workbook,
    mut sheet: intake::Sheet,
    name: &str,
    by_cell: &HashMap<CellKey, Vec<&Finding>>,
    findings: &Findings,
    f: &Formats,
    last_row: u32,
) -> Result<Option<String>, ReportError> {
    // A mapped sheet's derived cells are plbulk's, not the partner's: not copied.
    let width = sheet
        .mapped
        .as_ref()
        .map_or(sheet.headers.len(), |m| m.source_width());
    let columns = width.min(16_384);
    // Read ahead a little to size the columns: their widths come before the rows in the file.
    let mut ahead: Vec<(u32, Vec<String>)> = Vec::new();
    let mut row = RowBuf::default();
    let mut scratch = Vec::new();
    let mut ended = false;
    while ahead.len() < WIDTH_SAMPLE {
        match sheet.rows.next_row(&mut row, &mut scratch)? {
            Some(n) => ahead.push((n, row.iter().take(width).map(cell_text).collect())),
            None => {
                ended = true;
                break;
            }
        }
        scratch.clear();
    }
    let mut widths: Vec<usize> = sheet
        .headers
        .iter()
        .take(width)
        .map(|h| h.chars().count())
        .collect();
    for (_, cells) in &ahead {
        for (c, v) in cells.iter().enumerate().take(columns) {
            if c >= widths.len() {
                widths.push(0);
            }
            widths[c] = widths[c].max(v.chars().count());
        }
    }

    let ws = book.add_worksheet_with_constant_memory()?;
    ws.set_name(name)?;
    for (c, w) in widths.iter().enumerate().take(16_384) {
        ws.set_column_width(c as u16, ((*w).clamp(6, MAX_WIDTH) + 2) as f64)?;
    }
    let hr = sheet.header_row.saturating_sub(1);
    ws.set_freeze_panes(hr + 1, 0)?;
    let orientation = if widths
        .iter()
        .map(|w| w.clamp(&6, &MAX_WIDTH) + 2)
        .sum::<usize>()
        > 100
    {
        Orientation::Landscape
    } else {
        Orientation::Portrait
    };
    paper::setup(ws, orientation, Some((hr, hr)))?;
    for (c, h) in sheet.headers.iter().enumerate().take(columns) {
        ws.write_string_with_format(hr, c as u16, &**h, &f.header)?;
    }

    let mut copier = Copier {
        file: sheet.file.clone(),
        sheet: sheet.name.clone(),
        by_cell,
        notes: 0,
        formats: f,
    };
    let mut left_out: Option<(u32, u32, u64)> = None;
    let mut put = |ws: &mut Worksheet, n: u32, cells: &mut dyn Iterator<Item = &str>| {
        let r = n.saturating_sub(1);
        if r >= last_row {
            // Excel's last row is kept for the note that says what is missing.
            let (first, _, count) = left_out.unwrap_or((n, n, 0));
            left_out = Some((first, n, count + 1));
            return Ok(());
        }
        copier.row(ws, r, n, cells)
    };
    for (n, cells) in &ahead {
        put(ws, *n, &mut cells.iter().map(String::as_str))?;
    }
    drop(ahead);
    if !ended {
        while let Some(n) = sheet.rows.next_row(&mut row, &mut scratch)? {
            scratch.clear();
            put(ws, n, &mut row.iter().take(width))?;
        }
    }
    let Some((first, last, count)) = left_out else {
        return Ok(None);
    };
    let listed = findings
        .items()
        .iter()
        .any(|x| x.file == sheet.file && x.sheet == sheet.name && x.row >= Some(first));
    let line = format!(
        "Excel stops at row {}: rows {first} to {last} of {} ({count} rows) are not copied to sheet {name} of the report.{} To see them in a sheet, split the file into parts of under a million rows and validate each.",
        last_row + 1,
        crate::findings::place(&sheet.file, &sheet.name),
        if listed {
            " Their findings are on the Findings sheet."
        } else {
            ""
        }
    );
    ws.write_string_with_format(last_row, 0, &line, &f.cut)?;
    Ok(Some(line))
}

fn cell_text(v: &str) -> String {
    v.chars().take(crate::validate::MAX_CELL_CHARS).collect()
}

/// Writes an input sheet's rows, marking the cells that have findings.
struct Copier<'a> {
    file: Arc<str>,
    sheet: Arc<str>,
    by_cell: &'a HashMap<CellKey, Vec<&'a Finding>>,
    notes: usize,
    formats: &'a Formats,
}

impl Copier<'_> {
    /// Row `n` (as Excel numbers it) at 0-based `r`.
    fn row(
        &mut self,
        ws: &mut Worksheet,
        r: u32,
        n: u32,
        cells: &mut dyn Iterator<Item = &str>,
    ) -> Result<(), XlsxError> {
        for (c, text) in cells.enumerate().take(16_384) {
            let key = (self.file.clone(), self.sheet.clone(), n, c as u32);
            match self.by_cell.get(&key) {
                Some(fs) => {
                    let worst = fs
                        .iter()
                        .map(|f| f.severity)
                        .min()
                        .unwrap_or(Severity::Note);
                    ws.write_string_with_format(
                        r,
                        c as u16,
                        cell_text(text),
                        self.formats.severity(worst),
                    )?;
                    if self.notes < MAX_NOTES_PER_SHEET {
                        let msg: Vec<String> = fs
                            .iter()
                            .map(|f| format!("{}: {}", f.severity.as_str(), f.message))
                            .collect();
                        ws.insert_note(
                            r,
                            c as u16,
                            &Note::new(msg.join("\n")).set_author("plbulk"),
                        )?;
                        self.notes += 1;
                    }
                }
                None if !text.is_empty() => {
                    ws.write_string(r, c as u16, cell_text(text))?;
                }
                None => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sheet longer than Excel's last row ends with a note in that row saying which rows are
    /// missing, and the caller is told: it stopped there in silence.
    #[test]
    fn a_sheet_cut_at_the_last_row_says_what_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("long.csv");
        let mut text = String::from("Company Name,Email\n");
        for i in 0..8 {
            text.push_str(&format!("Firm {i},a{i}@x.example\n"));
        }
        std::fs::write(&csv, text).unwrap();
        let sheet = intake::open(&csv, Some(Kind::Customers)).unwrap().remove(0);
        let mut book = Workbook::new();
        let findings = Findings::new();
        // Row 6 (0-based 5) is the last: rows 2 to 5 fit, 6 to 9 do not.
        let cut = copy_sheet(
            &mut book,
            sheet,
            "Customers",
            &HashMap::new(),
            &findings,
            &Formats::new(),
            5,
        )
        .unwrap()
        .expect("the sheet is cut");
        assert!(
            cut.starts_with("Excel stops at row 6: rows 6 to 9 of "),
            "{cut}"
        );
        assert!(cut.contains("(4 rows)"), "{cut}");
        let bytes = book.save_to_buffer().unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
            &mut xml,
        )
        .unwrap();
        assert!(xml.contains("<c r=\"A6\""), "{xml}");
        assert!(xml.contains("Excel stops at row 6"), "{xml}");
        assert!(
            !xml.contains("Firm 4"),
            "row 6 holds the note, not a row: {xml}"
        );
        assert!(xml.contains("Firm 3"), "{xml}");
    }
}
