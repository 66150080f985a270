//! Intake: from a file on disk to sheets of rows, each row's cells as text the way the user
//! meant them, each sheet knowing its kind and which of its columns is which field.
//!
//! CSV files are streamed (a million-row file is never held in memory); workbooks are read
//! sheet by sheet through calamine. Both hand rows out through one reused [`RowBuf`], so reading
//! a row allocates nothing once the buffer has grown to the widest row. Each file is read once,
//! and digested as it is read ([`digest`]): the digest a job records is that of the bytes whose
//! rows it holds.

mod ahead;
pub mod digest;
pub mod guess;
pub mod mapping;
mod text;
mod workbook;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::findings::{Finding, Severity};
use crate::schema::{Field, Kind, Need};

/// The cells of one row as text, in one buffer.
#[derive(Debug, Default, Clone)]
pub struct RowBuf {
    text: String,
    ends: Vec<usize>,
}

impl RowBuf {
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    pub fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len());
    }

    /// The whole row at once: `text` is every cell's text run together, `ends` where each ends.
    pub(crate) fn set(&mut self, text: &str, ends: impl Iterator<Item = usize>) {
        self.text.clear();
        self.text.push_str(text);
        self.ends.clear();
        self.ends.extend(ends);
    }

    /// Whether each cell ends on a character boundary of the text, as cells set from a whole
    /// record's text must.
    pub(crate) fn ends_on_char_boundaries(&self) -> bool {
        self.ends.iter().all(|&e| self.text.is_char_boundary(e))
    }

    /// Appends to the cell being built; `end_cell` closes it.
    pub(crate) fn text_mut(&mut self) -> &mut String {
        &mut self.text
    }

    pub(crate) fn end_cell(&mut self) {
        self.ends.push(self.text.len());
    }

    /// Cell `i`, or "" past the end of a short row.
    pub fn get(&self, i: usize) -> &str {
        match self.ends.get(i) {
            Some(&end) => {
                let start = if i == 0 { 0 } else { self.ends[i - 1] };
                &self.text[start..end]
            }
            None => "",
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The text of all the row's cells, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The memory the buffer holds, in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// Empties the buffer and gives its memory back if it holds more than `bytes`: one huge
    /// row must not leave every buffer that ever held it that large.
    pub(crate) fn release_beyond(&mut self, bytes: usize) {
        if self.capacity() > bytes {
            *self = RowBuf::default();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// True when every cell is empty or spaces: such rows are ignored.
    pub fn is_blank(&self) -> bool {
        trim(&self.text).is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// `s` without leading and trailing white space, as `str::trim`, but answering at once in the
/// usual case of a cell that starts and ends with a visible ASCII character: the validator trims
/// every cell it reads, and the general search for Unicode white space was a measurable share
/// of validating a large file.
#[inline]
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&z)) if (b'!'..0x7f).contains(&a) && (b'!'..0x7f).contains(&z) => s,
        (None, _) => s,
        _ => s.trim(),
    }
}

/// A source of rows: the body of one sheet, after its header.
pub trait Rows: Send {
    /// Fills `buf` with the next row and returns its row number as Excel shows it; None at the
    /// end. Problems with single cells (an error value, bad encoding) go to `notes`.
    fn next_row(
        &mut self,
        buf: &mut RowBuf,
        notes: &mut Vec<Finding>,
    ) -> Result<Option<u32>, IntakeError>;
}

/// One sheet of input, ready to be read row by row.
pub struct Sheet {
    pub file: Arc<str>,
    /// The sheet's name; for CSV, the kind's sheet name.
    pub name: Arc<str>,
    pub kind: Kind,
    /// Headers as the user wrote them, in the user's order.
    pub headers: Arc<[Arc<str>]>,
    /// Which column holds each field the sheet has.
    pub columns: Vec<(Field, usize)>,
    /// The same, indexed by field: looked up for every cell checked.
    by_field: Vec<Option<usize>>,
    pub header_row: u32,
    pub rows: Box<dyn Rows>,
    /// What was noticed while opening: unknown columns, the encoding used, a guessed kind.
    pub notes: Vec<Finding>,
    /// Read through a mapping file: its headers and rows are the source's, then the columns
    /// the mapping derives.
    pub mapped: Option<Arc<mapping::Shape>>,
}

impl Sheet {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        file: Arc<str>,
        name: Arc<str>,
        kind: Kind,
        headers: Arc<[Arc<str>]>,
        columns: Vec<(Field, usize)>,
        header_row: u32,
        rows: Box<dyn Rows>,
        notes: Vec<Finding>,
    ) -> Sheet {
        let mut by_field = Vec::new();
        for &(f, i) in &columns {
            let at = f as usize;
            if by_field.len() <= at {
                by_field.resize(at + 1, None);
            }
            by_field[at] = Some(i);
        }
        Sheet {
            file,
            name,
            kind,
            headers,
            columns,
            by_field,
            header_row,
            rows,
            notes,
            mapped: None,
        }
    }

    /// A sheet whose columns are found by its headers or, given a mapping, by the mapping.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn shaped(
        file: Arc<str>,
        name: Arc<str>,
        kind: Kind,
        headers: Arc<[Arc<str>]>,
        header_row: u32,
        rows: Box<dyn Rows>,
        mut notes: Vec<Finding>,
        mapping: Option<&Arc<mapping::Mapping>>,
    ) -> Result<Sheet, IntakeError> {
        let Some(m) = mapping else {
            let (columns, more) = map_columns(&file, &name, kind, &headers, header_row)?;
            notes.extend(more);
            return Ok(Sheet::new(
                file, name, kind, headers, columns, header_row, rows, notes,
            ));
        };
        let (shape, more) = m.shape(&file, &name, &headers, header_row)?;
        notes.extend(more);
        let shape = Arc::new(shape);
        let mut sheet = Sheet::new(
            file,
            name,
            m.kind,
            shape.headers.clone(),
            shape.columns.clone(),
            header_row,
            shape.rows(rows),
            notes,
        );
        sheet.mapped = Some(shape);
        Ok(sheet)
    }

    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.by_field.get(field as usize).copied().flatten()
    }

    pub fn finding(
        &self,
        severity: Severity,
        row: Option<u32>,
        column: Option<usize>,
        value: &str,
        message: String,
    ) -> Finding {
        Finding {
            severity,
            file: self.file.clone(),
            sheet: self.name.clone(),
            row,
            column: column.map(|c| c as u32),
            header: column.and_then(|c| self.headers.get(c).cloned()),
            value: value.to_string(),
            message,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    #[error("{0} is a folder: give the spreadsheet files in it (for example {0}/*.xlsx)")]
    IsDirectory(PathBuf),
    #[error("{0} is empty: export or save the sheet again")]
    Empty(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} could not be read as {format} ({detail}): is it damaged, or another kind of file \
         renamed? Open it in Excel or LibreOffice and save it again as .xlsx or .csv"
    )]
    NotSpreadsheet {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error(
        "{0} is not a spreadsheet plbulk reads: use .csv (or .tsv/.txt), .xlsx, .xlsm, .xls or .ods"
    )]
    UnknownFormat(PathBuf),
    #[error("{0} is not text (it holds binary data): is it a spreadsheet saved with the wrong extension?")]
    Binary(PathBuf),
    #[error(
        "{file}: cannot tell which kind of rows it holds from its headers ({headers}); \
         say which with --kind ({kinds})"
    )]
    UnknownKind {
        file: String,
        headers: String,
        kinds: String,
    },
    #[error(
        "{file} [{sheet}]: the {kind} sheet needs the column{s} {missing}; the header row (row {row}) has {found}. \
         Rename the column{s}, or start from the template (plbulk template {cli})",
        s = if missing.contains(',') { "s" } else { "" }
    )]
    MissingColumns {
        file: String,
        sheet: String,
        kind: Kind,
        missing: String,
        found: String,
        row: u32,
        cli: &'static str,
    },
    /// The mapping file does not fit the source it is given with.
    #[error("{0}")]
    Mapping(String),
    #[error("{file}: no sheet plbulk reads ({found}); name the sheets {expected}, or use --kind for a one-sheet file")]
    NoKnownSheets {
        file: String,
        found: String,
        expected: String,
    },
}

/// The name a file is shown by in messages: as the user gave it.
fn display(path: &Path) -> Arc<str> {
    path.display().to_string().into()
}

/// Opens `path` and returns its sheets. `kind` is the user's `--kind`: the kind of a CSV file,
/// or of a one-sheet workbook whose sheet name is not a kind's.
pub fn open(path: &Path, kind: Option<Kind>) -> Result<Vec<Sheet>, IntakeError> {
    open_digested(path, kind).map(|(sheets, _)| sheets)
}

/// [`open`], and the file's digest as its bytes are read: known once every sheet's rows have
/// been read to the end.
pub fn open_digested(
    path: &Path,
    kind: Option<Kind>,
) -> Result<(Vec<Sheet>, digest::Reading), IntakeError> {
    open_mapped(path, kind, None)
}

/// [`open_digested`], through `mapping` when one is given: the sheet is the mapping's kind,
/// and (in a workbook) the sheet the mapping names.
pub fn open_mapped(
    path: &Path,
    kind: Option<Kind>,
    mapping: Option<&Arc<mapping::Mapping>>,
) -> Result<(Vec<Sheet>, digest::Reading), IntakeError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IntakeError::NotFound(path.to_path_buf()),
        _ => IntakeError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })?;
    if meta.is_dir() {
        return Err(IntakeError::IsDirectory(path.to_path_buf()));
    }
    if meta.len() == 0 {
        return Err(IntakeError::Empty(path.to_path_buf()));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some(e) if TEXT.contains(&e) => text::open(path, kind, mapping).map(|(s, r)| (vec![s], r)),
        Some(e) if WORKBOOKS.contains(&e) => workbook::open(path, kind, mapping),
        _ => Err(IntakeError::UnknownFormat(path.to_path_buf())),
    }
}

/// The extensions read as text (CSV, or tab-separated).
pub const TEXT: [&str; 3] = ["csv", "tsv", "txt"];
/// The extensions read as workbooks.
pub const WORKBOOKS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// Whether a file with this extension (any case, no dot) is one plbulk reads.
pub fn readable(ext: &str) -> bool {
    let e = ext.to_ascii_lowercase();
    TEXT.contains(&e.as_str()) || WORKBOOKS.contains(&e.as_str())
}

/// Which column holds each field, and what was noticed on the way.
pub(crate) type ColumnMap = (Vec<(Field, usize)>, Vec<Finding>);

/// Matches a header row to a kind's columns. Unknown headers become one warning; a missing
/// required column is an error naming what was found.
pub(crate) fn map_columns(
    file: &Arc<str>,
    sheet: &Arc<str>,
    kind: Kind,
    headers: &[Arc<str>],
    header_row: u32,
) -> Result<ColumnMap, IntakeError> {
    let mut columns: Vec<(Field, usize)> = Vec::new();
    let mut unknown = Vec::new();
    let mut notes = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if h.trim().is_empty() {
            continue;
        }
        match kind.match_header(h) {
            Some(c) if columns.iter().any(|(f, _)| *f == c.field) => {
                notes.push(Finding {
                    severity: Severity::Warning,
                    file: file.clone(),
                    sheet: sheet.clone(),
                    row: Some(header_row),
                    column: Some(i as u32),
                    header: Some(h.clone()),
                    value: h.to_string(),
                    message: format!(
                        "a second {} column: only the first is read; this one is ignored",
                        c.header
                    ),
                });
            }
            Some(c) => columns.push((c.field, i)),
            None if crate::schema::is_result_header(h) => {}
            None => unknown.push((i, h)),
        }
    }
    // With no header recognised at all, say what the sheet needs even where no single column is
    // required on its own (Customers needs Company Name, Plan and more, but only to add).
    let needed = |c: &&crate::schema::Column| {
        c.need == Need::Required || (columns.is_empty() && c.need != Need::Optional)
    };
    let missing: Vec<&str> = kind
        .columns()
        .iter()
        .filter(needed)
        .filter(|c| !columns.iter().any(|(f, _)| *f == c.field))
        .map(|c| c.header)
        .collect();
    if !missing.is_empty() {
        let found: Vec<String> = headers
            .iter()
            .filter(|h| !h.trim().is_empty())
            .take(20)
            .map(|h| format!("{h:?}"))
            .collect();
        return Err(IntakeError::MissingColumns {
            file: file.to_string(),
            sheet: sheet.to_string(),
            kind,
            missing: missing.join(", "),
            found: if found.is_empty() {
                "no headers".into()
            } else {
                found.join(", ")
            },
            row: header_row,
            cli: kind.cli_name(),
        });
    }
    if let Some(&(first, _)) = unknown.first() {
        let names: Vec<String> = unknown
            .iter()
            .take(10)
            .map(|(_, h)| format!("{h:?}"))
            .collect();
        let more = if unknown.len() > 10 {
            format!(" and {} more", unknown.len() - 10)
        } else {
            String::new()
        };
        notes.push(Finding {
            severity: Severity::Warning,
            file: file.clone(),
            sheet: sheet.clone(),
            row: Some(header_row),
            column: Some(first as u32),
            header: Some(headers[first].clone()),
            value: String::new(),
            message: format!(
                "column{} {}{more} not used by plbulk for {kind}: check for a misspelt header (the template's are {})",
                if unknown.len() > 1 { "s" } else { "" },
                names.join(", "),
                kind.columns().iter().map(|c| c.header).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok((columns, notes))
}

/// The kind a header row fits best: the most matched columns among kinds whose required columns
/// are all there. None when no kind fits or two fit equally.
pub(crate) fn infer_kind(headers: &[Arc<str>]) -> Option<Kind> {
    let mut best: Option<(usize, Kind)> = None;
    let mut tie = false;
    for kind in Kind::ALL {
        let matched: Vec<Field> = headers
            .iter()
            .filter_map(|h| kind.match_header(h))
            .map(|c| c.field)
            .collect();
        let has_required = kind
            .columns()
            .iter()
            .filter(|c| c.need == Need::Required)
            .all(|c| matched.contains(&c.field));
        let exact = headers
            .iter()
            .filter(|h| {
                kind.columns()
                    .iter()
                    .any(|c| crate::schema::squash(c.header) == crate::schema::squash(h))
            })
            .count();
        if !has_required || matched.is_empty() {
            continue;
        }
        if kind == Kind::Migration && !crate::schema::is_one_person_a_row(&matched) {
            continue;
        }
        // Exact headers weigh more than aliases, so a Users file is not read as Partner Users.
        let score = exact * 2 + matched.len();
        match best {
            Some((s, _)) if s > score => {}
            Some((s, _)) if s == score => tie = true,
            _ => {
                best = Some((score, kind));
                tie = false;
            }
        }
    }
    if tie {
        None
    } else {
        best.map(|(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arcs(v: &[&str]) -> Vec<Arc<str>> {
        v.iter().map(|s| Arc::from(*s)).collect()
    }

    #[test]
    fn rowbuf_hands_out_cells_and_blanks_past_the_end() {
        let mut r = RowBuf::default();
        r.push("a");
        r.push("");
        r.push("ccc");
        assert_eq!(
            (r.get(0), r.get(1), r.get(2), r.get(9)),
            ("a", "", "ccc", "")
        );
        assert!(!r.is_blank());
        r.clear();
        r.push("  ");
        assert!(r.is_blank());
    }

    #[test]
    fn trim_agrees_with_the_standard_one() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}x\u{a0}",
            "x\u{2003}",
            "\tq\n",
            "é",
            " é ",
            "~",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn kinds_are_inferred_from_headers() {
        assert_eq!(
            infer_kind(&arcs(&["Company Name", "Email", "Plan", "Contract Months"])),
            Some(Kind::Customers)
        );
        assert_eq!(
            infer_kind(&arcs(&[
                "Customer",
                "First Name",
                "Last Name",
                "Email",
                "Type"
            ])),
            Some(Kind::Users)
        );
        assert_eq!(
            infer_kind(&arcs(&["Customer", "User Email", "Product", "MAC"])),
            Some(Kind::Devices)
        );
        assert_eq!(
            infer_kind(&arcs(&["Customer", "Number", "User Email"])),
            Some(Kind::Numbers)
        );
        assert_eq!(
            infer_kind(&arcs(&["Order Ref", "Customer", "Product", "Qty"])),
            Some(Kind::Orders)
        );
        assert_eq!(infer_kind(&arcs(&["Colour", "Size"])), None);
    }

    #[test]
    fn missing_required_columns_name_what_was_found() {
        let f: Arc<str> = "users.csv".into();
        let s: Arc<str> = "Users".into();
        let Err(e) = map_columns(&f, &s, Kind::Users, &arcs(&["Customer", "Name"]), 1) else {
            panic!()
        };
        let msg = e.to_string();
        assert!(
            msg.contains("needs the column Email") && msg.contains("\"Name\""),
            "{msg}"
        );
    }

    #[test]
    fn unknown_columns_are_one_warning() {
        let f: Arc<str> = "c.csv".into();
        let s: Arc<str> = "Customers".into();
        let headers = arcs(&["Company", "Colour", "Plan", "Shoe Size"]);
        let (cols, notes) = map_columns(&f, &s, Kind::Customers, &headers, 1).unwrap();
        assert_eq!(cols, vec![(Field::CompanyName, 0), (Field::Plan, 2)]);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].message.contains("\"Colour\", \"Shoe Size\""),
            "{}",
            notes[0].message
        );
        assert_eq!(notes[0].column, Some(1));
    }
}
