//! A mapping file: how another system's export becomes one of plbulk's sheets.
//!
//! A partner migrating a customer base starts from someone else's file (a billing system's
//! customer list, the previous provider's users export), in its own columns and its own words.
//! A mapping is a TOML file they keep beside it, review and share: which plbulk sheet the rows
//! become (`kind`), which source column feeds each plbulk column (as is, one part of a full
//! name, or a constant), which source columns are left out on purpose (`ignore`), and how the
//! source's values translate (`[values."Plan"]`, matched trimmed and in any case).
//!
//! It applies at intake, before validation: `Mapping::shape` matches a source header row to
//! the mapping, and the sheet's rows are the source's own cells followed by one cell per
//! derived column (a translated value, a part of a name, a constant). The validator reads the
//! plbulk columns among them; the journal, the results and the to-fix keep only the source's
//! cells, so a partner fixes the file they have and runs it back with the same mapping.
//! [`Shape::explain`] turns a finding about a derived cell into one about the source column it
//! came from, naming the `[values]` table to add a value to.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::digest::{self, FileDigest};
use super::{IntakeError, RowBuf, Rows};
use crate::findings::{Finding, Severity};
use crate::schema::{Field, Kind, Need};

/// Which part of a full name a column takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// All but the last word; after the comma in "Lee, Jordan".
    First,
    /// The last word; before the comma in "Lee, Jordan".
    Last,
}

impl Part {
    fn parse(s: &str) -> Option<Part> {
        match s.trim().to_ascii_lowercase().as_str() {
            "first" => Some(Part::First),
            "last" => Some(Part::Last),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Part::First => "first",
            Part::Last => "last",
        }
    }

    /// This part of `name`. A one-word name is all first name.
    pub fn of(self, name: &str) -> &str {
        let name = name.trim();
        if let Some((last, first)) = name.split_once(',') {
            return match self {
                Part::First => first.trim(),
                Part::Last => last.trim(),
            };
        }
        match name.rsplit_once(char::is_whitespace) {
            Some((first, last)) => match self {
                Part::First => first.trim(),
                Part::Last => last.trim(),
            },
            None => match self {
                Part::First => name,
                Part::Last => "",
            },
        }
    }
}

/// Where a plbulk column's cells come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A source column, by its header.
    Column(String),
    /// One part of a source column holding full names.
    Part { from: String, part: Part },
    /// The same value on every row.
    Constant(String),
}

/// One entry of `[columns]`.
#[derive(Debug, Clone)]
struct Rule {
    field: Field,
    source: Source,
    /// Where it is in the mapping file, for messages.
    line: usize,
}

/// One `[values."…"]` table.
#[derive(Debug, Clone)]
struct Values {
    field: Field,
    /// The table's name as written: what a message tells the partner to add to.
    name: String,
    /// Source value (trimmed, lower case) → plbulk value. An empty plbulk value is one not yet
    /// filled in: the source value passes through.
    entries: HashMap<String, String>,
}

/// A parsed mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    path: PathBuf,
    /// The file as the user named it, for messages.
    name: Arc<str>,
    text: String,
    digest: FileDigest,
    pub kind: Kind,
    /// Which sheet of a workbook to read; None: its only sheet.
    pub sheet: Option<String>,
    ignore: Vec<String>,
    rules: Vec<Rule>,
    values: Vec<Values>,
    /// Not a file but `map init`'s look at an export (`Mapping::probe`): a sheet is chosen
    /// with `--sheet`.
    probe: bool,
}

/// Why a mapping file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read the mapping file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}, line {line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// The file as serde reads it; [`Mapping::parse`] checks it against the kind's columns.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    kind: Spanned<String>,
    #[serde(default)]
    sheet: Option<String>,
    #[serde(default)]
    ignore: Vec<String>,
    #[serde(default)]
    columns: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    #[serde(default)]
    values: BTreeMap<Spanned<String>, BTreeMap<String, Spanned<toml::Value>>>,
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A value of the file as text: strings as they are, numbers and booleans as TOML writes them.
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// A source value as a `[values]` table matches it.
fn value_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The nearest of `names` to `to`, if it is near enough to be a misspelling.
fn nearest<'a>(to: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let to = to.to_lowercase();
    names
        .map(|n| {
            (
                strsim::normalized_damerau_levenshtein(&to, &n.to_lowercase()),
                n,
            )
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

/// "A", "A or B", "A, B or C": choices for a message.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn quoted(items: impl Iterator<Item = impl AsRef<str>>) -> String {
    items
        .map(|s| format!("{:?}", s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Mapping {
    /// Reads and checks the mapping file at `path`.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let bytes = std::fs::read(path).map_err(|source| MappingError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let name = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| MappingError::Invalid {
            line: line_of(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            ),
            file: name.clone(),
            message: "the file is not UTF-8 text: save it again as UTF-8".into(),
        })?;
        let mut m = Mapping::parse(&name, &text)?;
        m.path = path.to_path_buf();
        Ok(m)
    }

    /// Checks the text of a mapping file, `name` being how messages call it.
    pub fn parse(name: &str, text: &str) -> Result<Mapping, MappingError> {
        let invalid = |at: usize, message: String| MappingError::Invalid {
            file: name.to_string(),
            line: line_of(text, at),
            message,
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let what = e.message().trim_end_matches('\n').replace('\n', "; ");
            invalid(
                at,
                format!(
                    "{what}. A mapping file holds kind = \"…\", optionally sheet and ignore, a [columns] table (\"plbulk column\" = \"source column\") and [values.\"plbulk column\"] tables; see README, \"Migrating from another system's export\""
                ),
            )
        })?;
        let kind = Kind::from_name(raw.kind.get_ref()).ok_or_else(|| {
            invalid(
                raw.kind.span().start,
                format!(
                    "kind {:?} is not a sheet plbulk knows: write one of {}",
                    raw.kind.get_ref(),
                    crate::schema::kind_names(Kind::cli_name)
                ),
            )
        })?;
        let column_of = |key: &Spanned<String>| {
            kind.match_header(key.get_ref()).ok_or_else(|| {
                let headers = || kind.columns().iter().map(|c| c.header);
                invalid(
                    key.span().start,
                    format!(
                        "{:?} is not a column of the {kind} sheet{}; its columns are {}",
                        key.get_ref(),
                        nearest(key.get_ref(), headers())
                            .map_or(String::new(), |n| format!(" (did you mean {n:?}?)")),
                        headers().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        };
        let mut rules: Vec<Rule> = Vec::new();
        for (key, value) in &raw.columns {
            let column = column_of(key)?;
            let at = value.span().start;
            let shape_help = || {
                format!(
                    "write {:?} = \"Source Column\", {{ from = \"Name\", part = \"first\" }} (or \"last\"), or {{ value = \"…\" }} for the same value on every row",
                    column.header
                )
            };
            let source = match value.get_ref() {
                toml::Value::String(s) if !s.trim().is_empty() => Source::Column(s.trim().into()),
                toml::Value::Table(t) => {
                    let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
                    keys.sort_unstable();
                    match keys.as_slice() {
                        ["value"] => Source::Constant(
                            scalar(&t["value"]).ok_or_else(|| invalid(at, shape_help()))?,
                        ),
                        ["from", "part"] => {
                            let from = t["from"].as_str().filter(|s| !s.trim().is_empty());
                            let part = t["part"].as_str().and_then(Part::parse);
                            match (from, part) {
                                (Some(from), Some(part)) => Source::Part {
                                    from: from.trim().into(),
                                    part,
                                },
                                (_, None) => {
                                    return Err(invalid(
                                        at,
                                        format!(
                                            "part must be \"first\" or \"last\", not {}",
                                            t["part"]
                                        ),
                                    ))
                                }
                                (None, _) => return Err(invalid(at, shape_help())),
                            }
                        }
                        _ => return Err(invalid(at, shape_help())),
                    }
                }
                _ => return Err(invalid(at, shape_help())),
            };
            if let Some(twice) = rules.iter().find(|r| r.field == column.field) {
                return Err(invalid(
                    key.span().start,
                    format!(
                        "{} is mapped twice (also on line {}): keep one",
                        column.header, twice.line
                    ),
                ));
            }
            rules.push(Rule {
                field: column.field,
                source,
                line: line_of(text, key.span().start),
            });
        }
        let mut values: Vec<Values> = Vec::new();
        for (key, table) in &raw.values {
            let column = column_of(key)?;
            let mut entries = HashMap::new();
            for (from, to) in table {
                let target = scalar(to.get_ref()).ok_or_else(|| {
                    invalid(
                        to.span().start,
                        format!("{from:?} must map to a text value, as {from:?} = \"…\""),
                    )
                })?;
                let target = target.trim();
                let target = if column.values.is_empty() || target.is_empty() {
                    target.to_string()
                } else {
                    match column
                        .values
                        .iter()
                        .find(|v| v.eq_ignore_ascii_case(target))
                    {
                        Some(v) => v.to_string(),
                        None => {
                            return Err(invalid(
                                to.span().start,
                                format!(
                                    "{from:?} = {target:?}: {} takes {}",
                                    column.header,
                                    or_list(column.values)
                                ),
                            ))
                        }
                    }
                };
                entries.insert(value_key(from), target);
            }
            if values.iter().any(|v| v.field == column.field) {
                return Err(invalid(
                    key.span().start,
                    format!("a second [values] table for {}: keep one", column.header),
                ));
            }
            values.push(Values {
                field: column.field,
                name: key.get_ref().clone(),
                entries,
            });
        }
        Ok(Mapping {
            path: PathBuf::from(name),
            name: name.into(),
            text: text.to_string(),
            digest: digest::of_bytes(text.as_bytes()),
            kind,
            sheet: raw.sheet.filter(|s| !s.trim().is_empty()),
            ignore: raw.ignore,
            rules,
            values,
            probe: false,
        })
    }

    /// A mapping of nothing, to read a source's own columns and cells as they are (`map
    /// init`): a Customers sheet needs no column, so any header row fits it.
    pub(crate) fn probe(sheet: Option<String>) -> Mapping {
        Mapping {
            path: PathBuf::new(),
            name: "".into(),
            text: String::new(),
            digest: digest::of_bytes(b""),
            kind: Kind::Customers,
            sheet,
            ignore: Vec::new(),
            rules: Vec::new(),
            values: Vec::new(),
            probe: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text, as read: what a job records.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The digest of [`Self::text`], as a job records an input's.
    pub fn digest(&self) -> FileDigest {
        self.digest
    }

    /// The plbulk value a `[values]` table gives a source value: None where it has no entry,
    /// or one not filled in.
    fn translate(&self, table: usize, value: &str) -> Option<&str> {
        self.values[table]
            .entries
            .get(&value_key(value))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Matches the header row of a source sheet to the mapping: the sheet's headers (the
    /// source's, then one per derived column), which column holds each field, and what was
    /// noticed. A source column the mapping names that is not there, or a required plbulk
    /// column left unmapped, is an error naming the mapping file.
    pub(crate) fn shape(
        self: &Arc<Mapping>,
        file: &Arc<str>,
        sheet: &Arc<str>,
        headers: &[Arc<str>],
        header_row: u32,
    ) -> Result<(Shape, Vec<Finding>), IntakeError> {
        let kind = self.kind;
        let present: Vec<&str> = headers
            .iter()
            .map(|h| &**h)
            .filter(|h| !h.trim().is_empty())
            .collect();
        let find = |name: &str| -> Option<usize> {
            let name = name.trim();
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
                .or_else(|| {
                    let want = crate::schema::squash(name);
                    headers
                        .iter()
                        .position(|h| !want.is_empty() && crate::schema::squash(h) == want)
                })
        };
        let missing_source = |line: usize, column: &str| {
            IntakeError::Mapping(format!(
                "{}, line {line}: {file} [{sheet}] has no column {column:?}{}; its columns are {}. Correct the mapping, or the header",
                self.name,
                nearest(column, present.iter().copied())
                    .map_or(String::new(), |n| format!(" (the nearest is {n:?})")),
                quoted(present.iter())
            ))
        };
        let mut used = vec![false; headers.len()];
        let mut cells: Vec<(Field, How)> = Vec::new();
        for r in &self.rules {
            let how = match &r.source {
                Source::Column(c) => {
                    let at = find(c).ok_or_else(|| missing_source(r.line, c))?;
                    used[at] = true;
                    How::Copy(at)
                }
                Source::Part { from, part } => {
                    let at = find(from).ok_or_else(|| missing_source(r.line, from))?;
                    used[at] = true;
                    How::Part(at, *part)
                }
                Source::Constant(v) => How::Constant(v.clone()),
            };
            cells.push((r.field, how));
        }
        let ignored = |h: &str| {
            self.ignore
                .iter()
                .any(|i| i.trim().eq_ignore_ascii_case(h.trim()))
        };
        // Columns the mapping does not name are read as plbulk reads any sheet: by their
        // headers, so that a source column already called "Email" needs no line.
        for c in kind.columns() {
            if cells.iter().any(|(f, _)| *f == c.field) {
                continue;
            }
            let auto = headers.iter().enumerate().position(|(i, h)| {
                !used[i] && !ignored(h) && kind.match_header(h).is_some_and(|m| m.field == c.field)
            });
            if let Some(at) = auto {
                used[at] = true;
                cells.push((c.field, How::Copy(at)));
            }
        }
        for (f, how) in &mut cells {
            if let (How::Copy(at), Some(t)) =
                (&*how, self.values.iter().position(|v| v.field == *f))
            {
                *how = How::Map(*at, t);
            }
        }
        let missing: Vec<&str> = kind
            .columns()
            .iter()
            .filter(|c| c.need == Need::Required && !cells.iter().any(|(f, _)| *f == c.field))
            .map(|c| c.header)
            .collect();
        if !missing.is_empty() {
            return Err(IntakeError::Mapping(format!(
                "{}: the {kind} sheet needs {}, and no column of {file} [{sheet}] is mapped to {}: add {} under [columns] (the file's columns are {})",
                self.name,
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                missing
                    .iter()
                    .map(|m| format!("{m:?} = \"<its column in the file>\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                quoted(present.iter())
            )));
        }
        let mut notes = Vec::new();
        let note = |severity, column: Option<usize>, message: String| Finding {
            severity,
            file: file.clone(),
            sheet: sheet.clone(),
            row: Some(header_row),
            column: column.map(|c| c as u32),
            header: column.map(|c| headers[c].clone()),
            value: String::new(),
            message,
        };
        let loose: Vec<usize> = (0..headers.len())
            .filter(|&i| {
                !used[i]
                    && !headers[i].trim().is_empty()
                    && !ignored(&headers[i])
                    && !crate::schema::is_result_header(&headers[i])
            })
            .collect();
        if let Some(&first) = loose.first() {
            notes.push(note(
                Severity::Warning,
                Some(first),
                format!(
                    "column{} {} {} neither mapped nor ignored by {}: map {} under [columns], or list {} in ignore",
                    if loose.len() == 1 { "" } else { "s" },
                    quoted(loose.iter().map(|&i| &*headers[i])),
                    if loose.len() == 1 { "is" } else { "are" },
                    self.name,
                    if loose.len() == 1 { "it" } else { "each" },
                    if loose.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
        for v in &self.values {
            if !cells
                .iter()
                .any(|(f, h)| *f == v.field && matches!(h, How::Map(..)))
            {
                notes.push(note(
                    Severity::Warning,
                    None,
                    format!(
                        "{} has a [values.{:?}] table, but no source column is mapped to {:?}: the table is not used",
                        self.name, v.name, v.name
                    ),
                ));
            }
        }
        cells.sort_by_key(|(f, _)| *f);
        let width = headers.len();
        let mut all: Vec<Arc<str>> = headers.to_vec();
        let mut columns = Vec::new();
        let mut derived = Vec::new();
        for (f, how) in cells {
            let header = kind.column(f).map_or("", |c| c.header);
            match how {
                How::Copy(at) => columns.push((f, at)),
                how => {
                    columns.push((f, width + derived.len()));
                    all.push(header.into());
                    derived.push((f, how));
                }
            }
        }
        Ok((
            Shape {
                mapping: self.clone(),
                width,
                headers: all.into(),
                columns,
                derived,
                header_row,
            },
            notes,
        ))
    }
}

/// The sheet of a workbook a mapping reads: the one its `sheet` names, or the workbook's only
/// one.
pub(crate) fn choose_sheet<'a>(
    m: &Mapping,
    file: &str,
    visible: &[&'a str],
) -> Result<&'a str, IntakeError> {
    let listed = || quoted(visible.iter());
    match &m.sheet {
        Some(want) => visible
            .iter()
            .find(|s| s.trim().eq_ignore_ascii_case(want.trim()))
            .copied()
            .ok_or_else(|| {
                IntakeError::Mapping(if m.probe {
                    format!(
                        "--sheet {want:?}: {file} has no such sheet; its sheets are {}",
                        listed()
                    )
                } else {
                    format!(
                        "{}: sheet = {want:?}, but {file} has no such sheet; its sheets are {}",
                        m.name,
                        listed()
                    )
                })
            }),
        None => match visible {
            [one] => Ok(one),
            _ => Err(IntakeError::Mapping(if m.probe {
                format!(
                    "{file} has {} sheets ({}): say which one to read with --sheet",
                    visible.len(),
                    listed()
                )
            } else {
                format!(
                    "{file} has {} sheets ({}): say which one {} maps with sheet = \"…\"",
                    visible.len(),
                    listed(),
                    m.name
                )
            })),
        },
    }
}

/// How a plbulk column's cell is made from a source row.
#[derive(Debug, Clone)]
enum How {
    /// The source cell at this index, as it is.
    Copy(usize),
    /// The source cell at this index, through `[values]` table number `.1`.
    Map(usize, usize),
    /// A part of the full name in the source cell at this index.
    Part(usize, Part),
    Constant(String),
}

/// A source sheet matched to a mapping.
#[derive(Debug)]
pub struct Shape {
    mapping: Arc<Mapping>,
    /// How many of the sheet's columns are the source's own.
    width: usize,
    /// The source's headers, then one per derived column.
    pub(crate) headers: Arc<[Arc<str>]>,
    /// Which column of the mapped row holds each field.
    pub(crate) columns: Vec<(Field, usize)>,
    /// The derived columns, in the order they follow the source's.
    derived: Vec<(Field, How)>,
    header_row: u32,
}

impl Shape {
    /// How many columns of a mapped row are the source's own.
    pub fn source_width(&self) -> usize {
        self.width
    }

    /// Which source column each field comes from (a constant comes from none): where a
    /// finding about a field is marked in the source.
    pub fn source_columns(&self) -> Vec<(Field, usize)> {
        self.columns
            .iter()
            .filter_map(|&(f, at)| match self.derived_at(at) {
                None => Some((f, at)),
                Some(How::Copy(c) | How::Map(c, _) | How::Part(c, _)) => Some((f, *c)),
                Some(How::Constant(_)) => None,
            })
            .collect()
    }

    fn derived_at(&self, column: usize) -> Option<&How> {
        column
            .checked_sub(self.width)
            .and_then(|i| self.derived.get(i))
            .map(|(_, h)| h)
    }

    /// Appends the derived cells to a source row held in `row`. A blank row stays blank, so
    /// that a constant does not turn an empty line into a row.
    fn derive(&self, row: &mut RowBuf, scratch: &mut String) {
        if row.is_blank() {
            return;
        }
        while row.len() < self.width {
            row.push("");
        }
        for (_, how) in &self.derived {
            scratch.clear();
            match how {
                How::Copy(c) => scratch.push_str(row.get(*c)),
                How::Map(c, t) => {
                    let v = row.get(*c);
                    scratch.push_str(self.mapping.translate(*t, v).unwrap_or(v));
                }
                How::Part(c, p) => scratch.push_str(p.of(row.get(*c))),
                How::Constant(v) => scratch.push_str(v),
            }
            row.push(scratch);
        }
    }

    /// The sheet's rows, mapped.
    pub(crate) fn rows(self: &Arc<Shape>, inner: Box<dyn Rows>) -> Box<dyn Rows> {
        Box::new(MappedRows {
            inner,
            shape: self.clone(),
            scratch: String::new(),
        })
    }

    /// Turns a finding about a derived cell into one about the source: its column, header and
    /// value, and what to change in the mapping.
    pub fn explain(&self, f: &mut Finding) {
        let Some(column) = f.column.map(|c| c as usize) else {
            // A column the rows need that the sheet lacks is the mapping's to give.
            if f.row == Some(self.header_row) && f.severity == Severity::Error {
                f.message = format!(
                    "{}; with {}, map a column of the export to it under [columns]",
                    f.message.trim_end_matches('.'),
                    self.mapping.name
                );
            }
            return;
        };
        let Some(i) = column.checked_sub(self.width) else {
            return;
        };
        let Some((field, how)) = self.derived.get(i) else {
            return;
        };
        let plbulk = self.mapping.kind.column(*field).map_or("", |c| c.header);
        let source = |c: usize| self.headers.get(c).cloned();
        let map = &self.mapping.name;
        match how {
            How::Copy(c) => {
                f.column = Some(*c as u32);
                f.header = source(*c);
            }
            How::Map(c, t) => {
                f.column = Some(*c as u32);
                f.header = source(*c);
                let table = &self.mapping.values[*t];
                let v = f.value.trim();
                let choices = self
                    .mapping
                    .kind
                    .column(*field)
                    .map_or(&[][..], |c| c.values);
                // A value passed through that is already a choice is not what the finding is
                // about (a Plan that differs from another row's): no entry would mend it.
                let a_choice = choices.iter().any(|c| c.eq_ignore_ascii_case(v));
                if !v.is_empty() && !a_choice && self.mapping.translate(*t, v).is_none() {
                    let takes = if choices.is_empty() {
                        "a value plbulk takes".to_string()
                    } else {
                        or_list(choices)
                    };
                    f.message = format!(
                        "{}. {v:?} has no entry in [values.{:?}] of {map}: add one there, as {v:?} = \"…\" ({plbulk} takes {takes})",
                        f.message.trim_end_matches('.'),
                        table.name,
                    );
                }
            }
            How::Part(c, p) => {
                f.column = Some(*c as u32);
                f.header = source(*c);
                f.message = format!(
                    "{}: {map} takes {plbulk} from the {} name in {:?} (as in \"Jordan Lee\" or \"Lee, Jordan\")",
                    f.message.trim_end_matches('.'),
                    p.name(),
                    source(*c).as_deref().unwrap_or("")
                );
            }
            How::Constant(v) => {
                f.column = None;
                f.header = None;
                f.message = format!(
                    "{}: {map} sets {plbulk} to {v:?} on every row",
                    f.message.trim_end_matches('.')
                );
            }
        }
    }
}

struct MappedRows {
    inner: Box<dyn Rows>,
    shape: Arc<Shape>,
    scratch: String,
}

impl Rows for MappedRows {
    fn next_row(
        &mut self,
        buf: &mut RowBuf,
        notes: &mut Vec<Finding>,
    ) -> Result<Option<u32>, IntakeError> {
        let n = self.inner.next_row(buf, notes)?;
        if n.is_some() {
            self.shape.derive(buf, &mut self.scratch);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arcs(v: &[&str]) -> Vec<Arc<str>> {
        v.iter().map(|s| Arc::from(*s)).collect()
    }

    const USERS: &str = r#"
kind = "users"
ignore = ["Extension"]

[columns]
"Customer" = "Account Name"
"First Name" = { from = "Name", part = "first" }
"Last Name" = { from = "Name", part = "last" }
"Email" = "E-mail address"
"Type" = "Role"

[values."Type"]
"Administrator" = "admin"
" User " = "standard"
"Guest" = ""
"#;

    #[test]
    fn names_split_into_first_and_last() {
        assert_eq!(Part::First.of("Jordan Lee"), "Jordan");
        assert_eq!(Part::Last.of("Jordan Lee"), "Lee");
        assert_eq!(Part::First.of("Lee, Jordan"), "Jordan");
        assert_eq!(Part::Last.of(" Lee ,  Jordan "), "Lee");
        assert_eq!(Part::First.of("Mary Ann  Smith"), "Mary Ann");
        assert_eq!(Part::Last.of("Mary Ann Smith"), "Smith");
        assert_eq!(Part::First.of("Cher"), "Cher");
        assert_eq!(Part::Last.of("Cher"), "");
    }

    #[test]
    fn a_mapping_maps_rows_and_keeps_the_source_cells_first() {
        let m = Arc::new(Mapping::parse("m.toml", USERS).unwrap());
        assert_eq!(m.kind, Kind::Users);
        let headers = arcs(&[
            "Account Name",
            "Name",
            "Extension",
            "E-mail address",
            "Role",
            "Notes",
        ]);
        let (shape, notes) = m
            .shape(&"u.csv".into(), &"Users".into(), &headers, 1)
            .unwrap();
        // One warning for the one column neither mapped nor ignored.
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0]
                .message
                .contains("\"Notes\" is neither mapped nor ignored by m.toml"),
            "{}",
            notes[0].message
        );
        let mut row = RowBuf::default();
        for c in [
            "Acme",
            "Lee, Jordan",
            "201",
            "jl@acme.example",
            " administrator ",
            "x",
        ] {
            row.push(c);
        }
        shape.derive(&mut row, &mut String::new());
        let cell = |f: Field| {
            let at = shape.columns.iter().find(|(g, _)| *g == f).unwrap().1;
            row.get(at).to_string()
        };
        assert_eq!(row.get(1), "Lee, Jordan", "source cells stay as they are");
        assert_eq!(cell(Field::Customer), "Acme");
        assert_eq!(cell(Field::FirstName), "Jordan");
        assert_eq!(cell(Field::LastName), "Lee");
        assert_eq!(cell(Field::Email), "jl@acme.example");
        assert_eq!(cell(Field::UserType), "admin");
        assert_eq!(
            shape
                .source_columns()
                .iter()
                .find(|(f, _)| *f == Field::FirstName),
            Some(&(Field::FirstName, 1))
        );
        // Unknown and unfilled values pass through to be validated as usual.
        for (given, want) in [("Guest", "Guest"), ("Owner", "Owner"), ("USER", "standard")] {
            let mut row = RowBuf::default();
            for c in ["Acme", "A B", "", "a@b.example", given, ""] {
                row.push(c);
            }
            shape.derive(&mut row, &mut String::new());
            assert_eq!(cell_of(&shape, &row, Field::UserType), want);
        }
        // A blank line stays blank.
        let mut blank = RowBuf::default();
        blank.push(" ");
        shape.derive(&mut blank, &mut String::new());
        assert!(blank.is_blank());
    }

    fn cell_of(shape: &Shape, row: &RowBuf, f: Field) -> String {
        let at = shape.columns.iter().find(|(g, _)| *g == f).unwrap().1;
        row.get(at).to_string()
    }

    #[test]
    fn a_finding_on_a_derived_cell_names_the_source_and_the_table() {
        let m = Arc::new(Mapping::parse("m.toml", USERS).unwrap());
        let headers = arcs(&[
            "Account Name",
            "Name",
            "Extension",
            "E-mail address",
            "Role",
        ]);
        let (shape, _) = m
            .shape(&"u.csv".into(), &"Users".into(), &headers, 1)
            .unwrap();
        let at = shape
            .columns
            .iter()
            .find(|(f, _)| *f == Field::UserType)
            .unwrap()
            .1;
        let mut f = Finding {
            severity: Severity::Error,
            file: "u.csv".into(),
            sheet: "Users".into(),
            row: Some(2),
            column: Some(at as u32),
            header: Some("Type".into()),
            value: "Owner".into(),
            message: "Type must be admin or standard".into(),
        };
        shape.explain(&mut f);
        assert_eq!(f.column, Some(4));
        assert_eq!(f.header.as_deref(), Some("Role"));
        assert!(
            f.message.contains(
                "\"Owner\" has no entry in [values.\"Type\"] of m.toml: add one there, as \"Owner\" = \"…\" (Type takes admin or standard)"
            ),
            "{}",
            f.message
        );

        // A value that is already a choice passes through; a finding about it (it disagrees
        // with another row) is mended in the export, not the mapping.
        let mut f = Finding {
            column: Some(at as u32),
            value: "Admin".into(),
            message: "User Type differs from row 2".into(),
            ..f
        };
        shape.explain(&mut f);
        assert_eq!(f.header.as_deref(), Some("Role"));
        assert_eq!(f.message, "User Type differs from row 2");
    }

    #[test]
    fn a_required_column_left_unmapped_is_an_error_naming_the_mapping() {
        let m = Arc::new(
            Mapping::parse(
                "m.toml",
                "kind = \"users\"\n[columns]\nCustomer = \"Account\"\n",
            )
            .unwrap(),
        );
        let Err(e) = m.shape(
            &"u.csv".into(),
            &"Users".into(),
            &arcs(&["Account", "Name"]),
            1,
        ) else {
            panic!("no Email column mapped")
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("m.toml: the Users sheet needs Email"),
            "{msg}"
        );
        let Err(e) = m.shape(
            &"u.csv".into(),
            &"Users".into(),
            &arcs(&["Acount", "Email"]),
            1,
        ) else {
            panic!("no Account column")
        };
        let msg = e.to_string();
        assert!(msg.contains("m.toml, line 3: u.csv [Users] has no column \"Account\" (the nearest is \"Acount\")"), "{msg}");
    }

    #[test]
    fn a_malformed_mapping_names_its_line_and_what_to_do() {
        let cases = [
            ("kind = \"users\"\n[columns]\nEmail = \n", 3, "A mapping file holds"),
            ("kind = \"migrants\"\n", 1, "is not a sheet plbulk knows"),
            ("kind = \"users\"\n\n[columns]\n\"Emial\" = \"Mail\"\n", 4, "did you mean \"Email\"?"),
            ("kind = \"users\"\n[columns]\n\"First Name\" = { from = \"Name\", part = \"middle\" }\n", 3, "part must be \"first\" or \"last\""),
            ("kind = \"users\"\n[columns]\nEmail = 3\n", 3, "{ value = "),
            ("kind = \"customers\"\n[values.\"Plan\"]\n\"Gold\" = \"platinum\"\n", 3, "Plan takes pro or hardware"),
            ("kind = \"users\"\ncolour = 1\n", 2, "unknown field"),
        ];
        for (text, line, says) in cases {
            let e = Mapping::parse("m.toml", text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("m.toml, line {line}: ")),
                "{text:?}: {e}"
            );
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn value_targets_take_the_columns_own_spelling() {
        let m = Mapping::parse(
            "m.toml",
            "kind = \"customers\"\n[values.\"Contract Months\"]\n\"2 years\" = 24\n[values.plan]\n\"PL Standard\" = \"PRO\"\n",
        )
        .unwrap();
        assert_eq!(m.translate(0, " 2 YEARS"), Some("24"));
        assert_eq!(m.translate(1, "pl standard"), Some("pro"));
        assert_eq!(m.translate(1, "PL Basic"), None);
    }
}
