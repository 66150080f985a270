//! Validation before any call: every row of every sheet checked cell by cell and across rows,
//! with findings in words the user can act on in Excel.
//!
//! A [`Validator`] sees the rows of a job one at a time (sheets may come in any order) and
//! keeps only what cross-row checks need: the Refs and company names of Customers rows, and the
//! natural keys that must not repeat (a user email within a customer, a number, a MAC, a
//! blocked number, a partner user's email), as hashes (see `keys`). Repeats and customer
//! references are settled at the end, when every row has been seen; a reference that resolves
//! to nothing in the job must exist in the account, which the online pre-flight checks.

mod blocked;
mod customers;
mod devices;
pub mod fields;
mod keys;
mod migration;
mod numbers;
pub mod op;
mod orders;
mod partner_users;
mod settings;
mod users;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::contract as c;
use crate::findings::{Finding, Findings, Severity};
use crate::intake::{trim, IntakeError, RowBuf, Sheet};
use crate::schema::{Field, Kind, SheetAction};
use keys::{key, pair, First, Key, KeyLog, KeyMap, KeySet};
pub use op::{Op, RowOp};

/// Excel's limit on the characters in one cell.
pub const MAX_CELL_CHARS: usize = 32_767;

/// What a row's check decided, as far as the row itself goes: a repeat of an earlier row's key
/// is settled in [`Validator::finish`], whose findings and counts are the last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// Blank, or the template's example row.
    Ignored,
}

/// Where a row is, for "also on row N" messages: the sheet as its index in the validator's
/// list of sheets, so that a million remembered rows cost eight bytes each.
#[derive(Debug, Clone, Copy, Default)]
struct Loc {
    sheet: u32,
    row: u32,
}

/// Counts for one sheet, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SheetCounts {
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub ignored: u64,
}

struct PendingRef {
    value: String,
    loc: Loc,
    column: usize,
    header: Option<Arc<str>>,
}

/// A row's reference to a customer: every row that names an ambiguous company name is
/// invalid, not only the first.
struct RefUse {
    key: Key,
    loc: Loc,
    column: u32,
    header: Option<Arc<str>>,
    /// Whether the row was valid apart from this.
    row_valid: bool,
}

/// Normal forms of a row's cells, by field; buffers reused from row to row.
#[derive(Debug, Default)]
pub struct Normalized {
    values: Vec<String>,
}

impl Normalized {
    fn slot(&mut self, f: Field) -> &mut String {
        let i = f as usize;
        if self.values.len() <= i {
            self.values.resize(i + 1, String::new());
        }
        &mut self.values[i]
    }

    pub fn get(&self, f: Field) -> &str {
        self.values.get(f as usize).map_or("", String::as_str)
    }

    fn clear(&mut self) {
        for v in &mut self.values {
            v.clear();
        }
    }
}

/// The natural keys that must not repeat within a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unique {
    /// A Customers row's Ref.
    Ref,
    /// The company name of a customer added: a repeat is a warning, and references by name
    /// must find exactly one.
    Name,
    /// A user's email within their customer.
    UserEmail,
    NumberAdded,
    Allocation,
    /// A blocked number within its customer.
    Blocked,
    Mac,
    PartnerEmail,
}

impl Unique {
    const ALL: [Unique; 8] = [
        Unique::Ref,
        Unique::Name,
        Unique::UserEmail,
        Unique::NumberAdded,
        Unique::Allocation,
        Unique::Blocked,
        Unique::Mac,
        Unique::PartnerEmail,
    ];
}

/// A row whose key the filter has seen, maybe: kept with what a finding about it needs.
struct Suspect {
    check: Unique,
    key: Key,
    /// Its place in its log.
    at: usize,
    loc: Loc,
    column: Option<usize>,
    header: Option<Arc<str>>,
    value: String,
    /// What a repeat is, in words ("MAC address … is given twice"); unused for names, whose
    /// message quotes the value. Most are fixed text: a false alarm then costs one allocation.
    what: Cow<'static, str>,
    /// Whether the row was valid apart from this: a repeat makes it invalid, and the counts
    /// must move it.
    row_valid: bool,
}

/// How a note about a customer outside the job ends: the online pre-flight settles it, so
/// where the pre-flight ran, [`settled_online`] drops the note.
const ACCOUNT_CHECK: &str = ": it must exist in the account (checked online before the run)";

/// Whether `f` is an offline note that the online pre-flight has settled (by finding the
/// customer, or by an error of its own on the same cell).
pub fn settled_online(f: &Finding) -> bool {
    f.severity == Severity::Note && f.message.ends_with(ACCOUNT_CHECK)
}

#[derive(Default)]
pub struct Validator {
    findings: Findings,
    /// Per (file, sheet), in the order first seen; a [`Loc`]'s sheet is an index here.
    counts: Vec<(Arc<str>, Arc<str>, Kind, SheetCounts)>,
    /// The sheet of the last row checked, to find its index without a search per row.
    current: Option<(Arc<str>, Arc<str>, u32)>,
    /// Every key that must not repeat, one log per [`Unique`], with where each was.
    logs: [KeyLog<Loc>; Unique::ALL.len()],
    /// Rows whose key may have come before, in the order checked: settled in `finish`.
    suspects: Vec<Suspect>,
    /// The first row naming each customer reference, and every row naming one.
    customer_refs: Vec<PendingRef>,
    customer_ref_seen: KeySet,
    ref_uses: Vec<RefUse>,
    /// Rows valid on their own that a cross-row check made invalid (a repeat, an ambiguous
    /// name), as `sheet << 32 | row`: the final verdict is the row's own unless it is here.
    overruled: KeySet,
    /// Whether rows' operations are wanted (a job), or only their verdicts (a validation).
    build_ops: bool,
    /// Order Ref → (customer, delivery address, first row).
    orders: KeyMap<(Key, Key, Loc)>,
    /// The Migration sheet's customers, by the key of their Customer Ref (or Company Name
    /// without one), as their first row gives them.
    companies: KeyMap<migration::Company>,
    /// A company name's key → the key of the Migration customer it was first given to.
    company_names: KeyMap<Key>,
    norm: Normalized,
    /// (sheet, field) pairs whose missing column has been reported, so it is said once.
    missing_reported: HashMap<(Arc<str>, Arc<str>, Field), ()>,
}

/// The result of validating a whole job.
pub struct Outcome {
    pub findings: Findings,
    /// Per (file, sheet): its kind and row counts, in file and sheet order.
    pub sheets: Vec<(Arc<str>, Arc<str>, Kind, SheetCounts)>,
    overruled: KeySet,
}

impl Outcome {
    /// The rows (file, sheet, row) that were valid on their own but that a check across rows
    /// made invalid: with each row's own verdict, the last word on every row. Unlike the
    /// findings, this is never capped.
    pub fn overruled(&self) -> impl Iterator<Item = (&str, &str, u32)> + '_ {
        self.overruled.iter().map(|&at| {
            let (file, sheet, ..) = &self.sheets[(at >> 32) as usize];
            (&**file, &**sheet, at as u32)
        })
    }
}

impl Validator {
    pub fn new() -> Validator {
        Validator {
            findings: Findings::new(),
            ..Default::default()
        }
    }

    /// A validator that also builds each valid row's [`Op`], for a job.
    pub fn building_ops() -> Validator {
        Validator {
            build_ops: true,
            ..Validator::new()
        }
    }

    /// Validates every row of `sheet`, reading it to the end.
    pub fn check_sheet(&mut self, sheet: &mut Sheet) -> Result<SheetCounts, IntakeError> {
        self.check_sheet_keeping(sheet, |_, _, _, _| {})
    }

    /// As [`Self::check_sheet`], handing each row read, with its row number, verdict and (for
    /// a validator [`Self::building_ops`]) operation, to `keep`: a job keeps its rows, a bare
    /// validation does not. A row that repeats another's key is still Valid here; `finish`
    /// says so with an error on its row, and in [`Outcome::overruled`].
    pub fn check_sheet_keeping(
        &mut self,
        sheet: &mut Sheet,
        mut keep: impl FnMut(u32, &RowBuf, Verdict, Option<RowOp>),
    ) -> Result<SheetCounts, IntakeError> {
        self.findings.extend(sheet.notes.drain(..));
        self.counts_of(sheet);
        let mut row = RowBuf::default();
        let mut notes = Vec::new();
        while let Some(n) = sheet.rows.next_row(&mut row, &mut notes)? {
            let (v, op) = self.check_row_reported(sheet, n, &row, &notes);
            for mut f in notes.drain(..) {
                f.header = f
                    .column
                    .and_then(|c| sheet.headers.get(c as usize).cloned());
                self.findings.push(f);
            }
            self.count(sheet, v);
            keep(n, &row, v, op);
        }
        let counts = self.counts_of(sheet).clone();
        if counts.rows == 0 {
            self.findings.push(sheet.finding(
                Severity::Warning,
                None,
                None,
                "",
                format!(
                    "no rows under the header (row {}): nothing to do on this sheet",
                    sheet.header_row
                ),
            ));
        }
        Ok(counts)
    }

    /// Says which possible repeats were real, naming each one's first row, and moves rows a
    /// repeat made invalid in the counts.
    fn settle_repeats(&mut self, firsts: &[KeyMap<First<Loc>>]) {
        let mut named_twice = KeySet::default();
        for s in std::mem::take(&mut self.suspects) {
            let first = firsts[s.check as usize]
                .get(&s.key)
                .expect("a suspect's key is in its log");
            if first.at >= s.at {
                // The filter's false alarm: this is the key's first row.
                continue;
            }
            let at = self.describe(first.value, s.loc.sheet);
            let (severity, message) = if s.check == Unique::Name {
                if !named_twice.insert(s.key) {
                    // Said at the name's second row; the third adds nothing.
                    continue;
                }
                (
                    Severity::Warning,
                    format!(
                        "{:?} is also added on {at}: this would make two customers with one name",
                        s.value
                    ),
                )
            } else {
                (
                    Severity::Error,
                    format!("{}, also on {at}: remove one of the two", s.what),
                )
            };
            if severity == Severity::Error && s.row_valid {
                self.overrule(s.loc);
            }
            let (file, sheet, ..) = &self.counts[s.loc.sheet as usize];
            self.findings.push(Finding {
                severity,
                file: file.clone(),
                sheet: sheet.clone(),
                row: Some(s.loc.row),
                column: s.column.map(|c| c as u32),
                header: s.header,
                value: s.value,
                message,
            });
        }
    }

    /// Makes a row that was valid on its own invalid, once.
    fn overrule(&mut self, loc: Loc) {
        if self
            .overruled
            .insert((loc.sheet as u64) << 32 | loc.row as u64)
        {
            let c = &mut self.counts[loc.sheet as usize].3;
            c.valid -= 1;
            c.invalid += 1;
        }
    }

    fn sheet_index(&mut self, sheet: &Sheet) -> u32 {
        if let Some((f, s, i)) = &self.current {
            if Arc::ptr_eq(f, &sheet.file) && Arc::ptr_eq(s, &sheet.name) {
                return *i;
            }
        }
        let i = match self
            .counts
            .iter()
            .position(|(f, s, ..)| *f == sheet.file && *s == sheet.name)
        {
            Some(i) => i,
            None => {
                self.counts.push((
                    sheet.file.clone(),
                    sheet.name.clone(),
                    sheet.kind,
                    SheetCounts::default(),
                ));
                self.counts.len() - 1
            }
        } as u32;
        self.current = Some((sheet.file.clone(), sheet.name.clone(), i));
        i
    }

    fn counts_of(&mut self, sheet: &Sheet) -> &mut SheetCounts {
        let i = self.sheet_index(sheet) as usize;
        &mut self.counts[i].3
    }

    /// "row 7", "sheet Users, row 7" or "file.xlsx, sheet Users, row 7", as seen from sheet
    /// `from`.
    fn describe(&self, loc: Loc, from: u32) -> String {
        let (file, sheet, ..) = &self.counts[loc.sheet as usize];
        let (from_file, ..) = &self.counts[from as usize];
        if loc.sheet == from {
            format!("row {}", loc.row)
        } else if file == from_file {
            format!("sheet {sheet}, row {}", loc.row)
        } else {
            format!("{file}, sheet {sheet}, row {}", loc.row)
        }
    }

    fn count(&mut self, sheet: &Sheet, v: Verdict) {
        let c = self.counts_of(sheet);
        match v {
            Verdict::Valid => {
                c.rows += 1;
                c.valid += 1;
            }
            Verdict::Invalid => {
                c.rows += 1;
                c.invalid += 1;
            }
            Verdict::Ignored => c.ignored += 1,
        }
    }

    /// The normal forms of the last row checked.
    pub fn normalized(&self) -> &Normalized {
        &self.norm
    }

    /// Checks one row. Its findings join the job's; its normal forms are in [`Self::normalized`].
    pub fn check_row(&mut self, sheet: &Sheet, row_no: u32, row: &RowBuf) -> Verdict {
        self.check_row_reported(sheet, row_no, row, &[]).0
    }

    /// As [`Self::check_row`], with what the reader reported about the row's cells (an error
    /// value such as #N/A, text that is not UTF-8): an error there makes the row invalid, and
    /// the cell's own rule leaves it alone rather than say it again.
    fn check_row_reported(
        &mut self,
        sheet: &Sheet,
        row_no: u32,
        row: &RowBuf,
        reported: &[Finding],
    ) -> (Verdict, Option<RowOp>) {
        if row.is_blank() {
            return (Verdict::Ignored, None);
        }
        if row_no == sheet.header_row + 1 && is_template_example(sheet, row) {
            self.findings.push(sheet.finding(
                Severity::Note,
                Some(row_no),
                None,
                "",
                "this is the template's example row, unchanged: it was not read".into(),
            ));
            return (Verdict::Ignored, None);
        }
        self.norm.clear();
        let first_suspect = self.suspects.len();
        let first_use = self.ref_uses.len();
        let sheet_index = self.sheet_index(sheet);
        let mut cx = Cx::new(self, sheet, sheet_index, row_no, row, reported);
        let one = |op: Option<Op>| op.map(RowOp::One);
        let op = match sheet.kind {
            Kind::Customers => one(cx.customer()),
            Kind::Users => one(cx.user()),
            Kind::Numbers => one(cx.number()),
            Kind::BlockedNumbers => one(cx.blocked()),
            Kind::Devices => one(cx.device()),
            Kind::Orders => one(cx.order()),
            Kind::UserSettings => one(cx.settings()),
            Kind::PartnerUsers => one(cx.partner_user()),
            Kind::Migration => cx.migration().map(RowOp::Person),
        };
        let v = if cx.errors == 0 {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        debug_assert!(
            !self.build_ops || (v == Verdict::Valid) == op.is_some(),
            "a valid row has its operation, and only a valid row: {sheet_index} {row_no}"
        );
        let valid = v == Verdict::Valid;
        for s in &mut self.suspects[first_suspect..] {
            s.row_valid = valid;
        }
        for u in &mut self.ref_uses[first_use..] {
            u.row_valid = valid;
        }
        (v, op)
    }

    /// Settles repeats and customer references, and returns everything found.
    pub fn finish(mut self) -> Outcome {
        let refs = std::mem::take(&mut self.customer_refs);
        let ref_keys: Vec<Key> = refs.iter().map(|p| key(&[&p.value])).collect();
        // The first place of each key that may repeat, and of each key a reference names: one
        // pass over each log.
        let firsts: Vec<_> = Unique::ALL
            .iter()
            .map(|&check| {
                let mut wanted = KeySet::default();
                for s in self.suspects.iter().filter(|s| s.check == check) {
                    wanted.insert(s.key);
                }
                if matches!(check, Unique::Ref | Unique::Name) {
                    for &k in &ref_keys {
                        wanted.insert(k);
                    }
                }
                self.logs[check as usize].firsts(&wanted)
            })
            .collect();
        self.settle_repeats(&firsts);

        let mut ambiguous: KeyMap<(String, String)> = KeyMap::default();
        for (p, k) in refs.into_iter().zip(ref_keys) {
            if firsts[Unique::Ref as usize].contains_key(&k) {
                continue;
            }
            let (file, sheet, ..) = &self.counts[p.loc.sheet as usize];
            let finding = |severity, message| Finding {
                severity,
                file: file.clone(),
                sheet: sheet.clone(),
                row: Some(p.loc.row),
                column: Some(p.column as u32),
                header: p.header.clone(),
                value: p.value.clone(),
                message,
            };
            match firsts[Unique::Name as usize].get(&k) {
                Some(f) if f.count == 1 => {}
                Some(f) => {
                    let message = format!(
                        "{:?} is the company name of {} Customers rows (the first at {}): give that row a Ref and use it here",
                        p.value.trim(),
                        f.count,
                        self.describe(f.value, p.loc.sheet)
                    );
                    ambiguous.insert(k, (p.value.clone(), message));
                }
                None => self.findings.push(finding(
                    Severity::Note,
                    format!(
                        "customer {:?} is not in this job{ACCOUNT_CHECK}",
                        p.value.trim()
                    ),
                )),
            }
        }
        if !ambiguous.is_empty() {
            for u in std::mem::take(&mut self.ref_uses) {
                let Some((value, message)) = ambiguous.get(&u.key) else {
                    continue;
                };
                let (file, sheet, ..) = &self.counts[u.loc.sheet as usize];
                self.findings.push(Finding {
                    severity: Severity::Error,
                    file: file.clone(),
                    sheet: sheet.clone(),
                    row: Some(u.loc.row),
                    column: Some(u.column),
                    header: u.header,
                    value: value.clone(),
                    message: message.clone(),
                });
                if u.row_valid {
                    self.overrule(u.loc);
                }
            }
        }
        self.findings
            .sort_in(self.counts.iter().map(|(f, s, ..)| (&**f, &**s)));
        Outcome {
            findings: self.findings,
            sheets: self.counts,
            overruled: self.overruled,
        }
    }
}

/// Reads and checks every sheet of every file in turn: `on_sheet` is told of each sheet before
/// its rows, and `on_row` is handed each row checked, with the sheet's place in that order;
/// `on_file` is told, once a file's sheets are read, the digest of the bytes they came from
/// (or why there is none), with the file's place among `files`. Files and sheets that cannot
/// be read, and inputs with no rows at all, become messages beside the outcome; a file that
/// breaks off half way keeps what was read before it. Given a `mapping`, every file is read
/// through it, and a finding about a cell the mapping made is said of the export's own cell.
pub fn check_files(
    mut validator: Validator,
    files: &[std::path::PathBuf],
    kind: Option<Kind>,
    mapping: Option<&Arc<crate::intake::mapping::Mapping>>,
    mut on_sheet: impl FnMut(&Sheet),
    mut on_row: impl FnMut(u32, u32, &RowBuf, Verdict, Option<RowOp>),
    mut on_file: impl FnMut(usize, Result<crate::intake::digest::FileDigest, String>),
) -> (Outcome, Vec<String>) {
    let mut unreadable = Vec::new();
    let mut index = 0;
    let mut mapped = Vec::new();
    for (at, file) in files.iter().enumerate() {
        match crate::intake::open_mapped(file, kind, mapping) {
            Ok((sheets, reading)) => {
                for mut sheet in sheets {
                    if let Some(shape) = &sheet.mapped {
                        mapped.push((sheet.file.clone(), sheet.name.clone(), shape.clone()));
                    }
                    on_sheet(&sheet);
                    let r = validator.check_sheet_keeping(&mut sheet, |row_no, row, v, op| {
                        on_row(index, row_no, row, v, op)
                    });
                    if let Err(e) = r {
                        unreadable.push(e.to_string());
                    }
                    index += 1;
                }
                on_file(at, reading.result());
            }
            Err(e) => {
                on_file(at, Err(e.to_string()));
                unreadable.push(e.to_string());
            }
        }
    }
    let mut outcome = validator.finish();
    // Findings about a mapped sheet's derived cells are said of the export's own cells.
    if !mapped.is_empty() {
        outcome.findings.for_each_mut(|f| {
            if let Some((.., shape)) = mapped
                .iter()
                .find(|(file, sheet, _)| *file == f.file && *sheet == f.sheet)
            {
                shape.explain(f);
            }
        });
    }
    if unreadable.is_empty() && outcome.sheets.iter().all(|(.., c)| c.rows == 0) {
        unreadable.push("no rows to run: every sheet read is empty below its header".to_string());
    }
    (outcome, unreadable)
}

fn is_template_example(sheet: &Sheet, row: &RowBuf) -> bool {
    let mut any = false;
    for &(field, col) in &sheet.columns {
        let example = sheet.kind.column(field).map_or("", |c| c.example);
        if trim(row.get(col)) != example {
            return false;
        }
        any |= !example.is_empty();
    }
    any
}

/// Why a sheet lacks the column of field `f`, which a row needs: the columns it has, and the
/// one among them that is most likely that column misspelt ("Company Nmae").
fn missing_column(sheet: &Sheet, f: Field, header: &str, because: &str) -> String {
    let mapped: Vec<usize> = sheet.columns.iter().map(|&(_, c)| c).collect();
    let found: Vec<String> = sheet
        .headers
        .iter()
        .filter(|h| !h.is_empty())
        .map(|h| format!("{h:?}"))
        .collect();
    let names: Vec<String> = std::iter::once(header)
        .chain(
            sheet
                .kind
                .column(f)
                .map_or(&[][..], |c| c.aliases)
                .iter()
                .copied(),
        )
        .map(|n| n.to_lowercase())
        .collect();
    let nearest = sheet
        .headers
        .iter()
        .enumerate()
        .filter(|(i, h)| !mapped.contains(i) && !h.is_empty())
        .map(|(i, h)| {
            let h = h.to_lowercase();
            let score = names
                .iter()
                .map(|n| strsim::normalized_damerau_levenshtein(&h, n))
                .fold(0.0, f64::max);
            (score, i)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut m = format!("{header} is required{because}, but the sheet has no {header} column. ");
    if found.is_empty() {
        m.push_str("Its header row is empty");
    } else {
        m.push_str(&format!("Its columns are {}", found.join(", ")));
    }
    match nearest {
        Some((_, i)) => m.push_str(&format!(
            "; the nearest is {:?} (column {}): if that is meant to be {header}, correct its spelling",
            sheet.headers[i].as_ref(),
            crate::schema::column_letter(i)
        )),
        None => m.push_str(&format!(
            "; add {} {header} column",
            crate::words::article(header)
        )),
    }
    m.push_str(" (this is said once for the sheet)");
    m
}

/// One row being checked.
struct Cx<'a> {
    v: &'a mut Validator,
    sheet: &'a Sheet,
    sheet_index: u32,
    row_no: u32,
    row: &'a RowBuf,
    /// Each field's cell, trimmed once here rather than at each of the several rules that
    /// read it; blank where the sheet has no such column, or where the cell is too long.
    cells: [&'a str; Field::COUNT],
    /// Fields whose cell's problem is said already (too long, or reported by the reader):
    /// blank to the rules, but not to be called missing. A bit per field.
    said: u64,
    errors: u32,
}

impl<'a> Cx<'a> {
    fn new(
        v: &'a mut Validator,
        sheet: &'a Sheet,
        sheet_index: u32,
        row_no: u32,
        row: &'a RowBuf,
        reported: &[Finding],
    ) -> Cx<'a> {
        let reported = reported.iter().filter(|f| f.severity == Severity::Error);
        let mut cx = Cx {
            v,
            sheet,
            sheet_index,
            row_no,
            row,
            cells: [""; Field::COUNT],
            said: 0,
            // The reader's errors are the row's errors.
            errors: reported.clone().count() as u32,
        };
        for &(f, c) in &sheet.columns {
            if reported.clone().any(|r| r.column == Some(c as u32)) {
                cx.said |= 1 << f as u32;
                continue;
            }
            let s = trim(row.get(c));
            if s.len() > MAX_CELL_CHARS && s.chars().count() > MAX_CELL_CHARS {
                let n = s.chars().count();
                let shown: String = s.chars().take(50).collect();
                cx.err_at(
                    Some(c),
                    &format!("{shown}…"),
                    format!("the cell has {n} characters; a cell holds at most {MAX_CELL_CHARS}"),
                );
                cx.said |= 1 << f as u32;
                continue;
            }
            cx.cells[f as usize] = s;
        }
        cx
    }

    fn col(&self, f: Field) -> Option<usize> {
        self.sheet.column_of(f)
    }

    /// The trimmed cell of field `f`, possibly blank.
    fn cell(&self, f: Field) -> &'a str {
        self.cells[f as usize]
    }

    /// The trimmed cell of field `f`, None when blank or when the sheet lacks the column. The
    /// text borrows the row, not the checker, so checks can go on while it is held.
    fn get(&self, f: Field) -> Option<&'a str> {
        Some(self.cell(f)).filter(|s| !s.is_empty())
    }

    fn err_at(&mut self, col: Option<usize>, value: &str, message: String) {
        self.errors += 1;
        let f = self
            .sheet
            .finding(Severity::Error, Some(self.row_no), col, value, message);
        self.v.findings.push(f);
    }

    fn note_at(&mut self, col: Option<usize>, value: &str, message: String) {
        let f = self
            .sheet
            .finding(Severity::Note, Some(self.row_no), col, value, message);
        self.v.findings.push(f);
    }

    fn warn_at(&mut self, col: Option<usize>, value: &str, message: String) {
        let f = self
            .sheet
            .finding(Severity::Warning, Some(self.row_no), col, value, message);
        self.v.findings.push(f);
    }

    fn header(&self, f: Field) -> &'static str {
        self.sheet.kind.column(f).map_or("?", |c| c.header)
    }

    /// Field `f` is needed `because`; say so if it is blank or its column is missing.
    fn require(&mut self, f: Field, because: &str) -> Option<&'a str> {
        if let Some(v) = self.get(f) {
            return Some(v);
        }
        if self.said & (1 << f as u32) != 0 {
            // Said already, and a blank cell it is not.
            return None;
        }
        let header = self.header(f);
        match self.col(f) {
            Some(c) => self.err_at(Some(c), "", format!("{header} is required{because}")),
            None => {
                self.errors += 1;
                let key = (self.sheet.file.clone(), self.sheet.name.clone(), f);
                if self.v.missing_reported.insert(key, ()).is_none() {
                    // A fact about the header, so it is said on the header row.
                    let message = missing_column(self.sheet, f, header, because);
                    let finding = self.sheet.finding(
                        Severity::Error,
                        Some(self.sheet.header_row),
                        None,
                        "",
                        message,
                    );
                    self.v.findings.push(finding);
                }
            }
        }
        None
    }

    /// Runs a normaliser on field `f` if it has a value, storing the normal form.
    fn normalise(&mut self, f: Field, rule: fn(&str, &mut String) -> Result<(), String>) -> bool {
        let Some(c) = self.col(f) else { return true };
        let raw = self.cell(f);
        if raw.is_empty() {
            return true;
        }
        let mut out = std::mem::take(self.v.norm.slot(f));
        let r = rule(raw, &mut out);
        *self.v.norm.slot(f) = out;
        match r {
            Ok(()) => true,
            Err(m) => {
                self.err_at(Some(c), raw, m);
                false
            }
        }
    }

    /// [`Cx::normalise`] for a phone number or prefix: one that a spreadsheet stored as a number
    /// (and so without its leading 0) is read with its 0 back, and the row says so.
    fn normalise_phone(
        &mut self,
        f: Field,
        rule: fn(&str, &mut String) -> Result<(), String>,
    ) -> bool {
        let ok = self.normalise(f, rule);
        let raw = self.cell(f);
        if ok && fields::lost_leading_zero(raw) {
            self.note_at(
                self.col(f),
                raw,
                format!("{raw} has lost its leading 0 (a spreadsheet stored it as a number): read as 0{raw}; format the column as Text to keep the 0"),
            );
        }
        ok
    }

    fn check(&mut self, f: Field, rule: fn(&str) -> Result<(), String>) {
        if let Some(c) = self.col(f) {
            let raw = self.cell(f);
            if !raw.is_empty() {
                if let Err(m) = rule(raw) {
                    self.err_at(Some(c), raw, m);
                }
            }
        }
    }

    fn choice<T>(&mut self, f: Field, rule: fn(&str) -> Result<T, String>) -> Option<T> {
        let c = self.col(f)?;
        let raw = self.cell(f);
        match rule(raw) {
            Ok(v) => Some(v),
            Err(m) => {
                self.err_at(Some(c), raw, m);
                None
            }
        }
    }

    /// The row's action, from the sheet's table; a cell that names none is an error listing
    /// them.
    fn action<A: SheetAction>(&mut self) -> Option<A> {
        let Some(c) = self.col(Field::Action) else {
            return A::parse("");
        };
        let raw = self.cell(Field::Action);
        if let Some(a) = A::parse(raw) {
            return Some(a);
        }
        self.err_at(
            Some(c),
            raw,
            format!("{raw:?} is not an action here: use {}", A::NAMES.join(", ")),
        );
        None
    }

    fn loc(&self) -> Loc {
        Loc {
            sheet: self.sheet_index,
            row: self.row_no,
        }
    }

    /// Records a natural key. A repeat is an error naming the first row (for a company name,
    /// a warning), said when the job's rows have all been seen.
    /// `what` is only called for a possible repeat, with the row's normal forms.
    fn unique(
        &mut self,
        check: Unique,
        key: Key,
        f: Field,
        what: impl FnOnce(&Normalized) -> Cow<'static, str>,
    ) {
        let loc = self.loc();
        let (at, maybe) = self.v.logs[check as usize].record(key, loc);
        if maybe {
            let column = self.col(f);
            self.v.suspects.push(Suspect {
                check,
                key,
                at,
                loc,
                column,
                header: column.and_then(|c| self.sheet.headers.get(c).cloned()),
                value: self.cell(f).to_string(),
                what: what(&self.v.norm),
                row_valid: true,
            });
        }
    }

    /// Notes the Customer reference for resolution at the end; returns its key.
    fn customer_ref(&mut self) -> Option<Key> {
        let value = self.require(Field::Customer, "")?;
        let k = key(&[value]);
        let column = self.col(Field::Customer).expect("required above");
        let header = self.sheet.headers.get(column).cloned();
        if self.v.customer_ref_seen.insert(k) {
            self.v.customer_refs.push(PendingRef {
                value: value.to_string(),
                loc: self.loc(),
                column,
                header: header.clone(),
            });
        }
        self.v.ref_uses.push(RefUse {
            key: k,
            loc: self.loc(),
            column: column as u32,
            header,
            row_valid: true,
        });
        Some(k)
    }

    /// The user or partner user a row changes: by the id in `id_field` when given, else by
    /// its email.
    fn person(&self, id_field: Field, email: &str) -> op::PersonSel {
        match self.text(id_field) {
            Some(id) => op::PersonSel::Id(id),
            None => op::PersonSel::Email(email.to_string()),
        }
    }

    /// Whether to build the row's operation: for a job, and only when the row is valid.
    fn wants_op(&self) -> bool {
        self.v.build_ops && self.errors == 0
    }

    /// Field `f`'s trimmed cell as owned text, None when blank.
    fn text(&self, f: Field) -> Option<String> {
        self.get(f).map(str::to_string)
    }

    /// Field `f`'s normal form (as a rule made it), None when the cell is blank.
    fn clean(&self, f: Field) -> Option<String> {
        self.get(f)?;
        Some(self.v.norm.get(f).to_string())
    }

    /// The address in fields `[line1, line2, town, county, postcode]`, None when none is
    /// given; its postcode in normal form.
    fn address_of(&self, [line1, line2, town, county, postcode]: [Field; 5]) -> Option<c::Address> {
        Some(c::Address {
            line1: self.text(line1)?,
            line2: self.text(line2),
            town: self.text(town)?,
            county: self.text(county),
            postcode: self.clean(postcode)?,
        })
    }

    fn email_field(&mut self, f: Field) {
        self.check(f, fields::email);
    }

    fn address(
        &mut self,
        line1: Field,
        town: Field,
        postcode: Field,
        others: &[Field],
        because: &str,
    ) -> bool {
        let any = [line1, town, postcode]
            .iter()
            .chain(others)
            .any(|f| self.get(*f).is_some());
        if any {
            self.require(line1, because);
            self.require(town, because);
            if self.require(postcode, because).is_some() {
                self.normalise(postcode, fields::postcode);
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Action, UserAction};

    fn validate_csv(text: &str) -> Outcome {
        validate_as(Kind::Customers, text)
    }

    /// `text` validated as a CSV file of `kind`'s sheet.
    pub(super) fn validate_as(kind: Kind, text: &str) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.csv");
        std::fs::write(&path, text).unwrap();
        let mut v = Validator::new();
        for mut sheet in crate::intake::open(&path, Some(kind)).unwrap() {
            v.check_sheet(&mut sheet).unwrap();
        }
        v.finish()
    }

    fn said(out: &Outcome) -> Vec<(Severity, u32, String)> {
        out.findings
            .items()
            .iter()
            .filter(|f| f.severity != Severity::Note)
            .map(|f| (f.severity, f.row.unwrap_or(0), f.message.clone()))
            .collect()
    }

    #[test]
    fn repeats_name_the_first_row_and_make_their_rows_invalid_once() {
        let out = validate_csv(
            "Ref,Company Name,Email,Plan,Contract Months\n\
             A1,Acme Ltd,a@acme.example,pro,12\n\
             A2,acme ltd,b@acme.example,pro,12\n\
             a1,Bravo,c@b.example,pro,12\n\
             A3,ACME LTD ,d@acme.example,pro,12\n\
             A1,Charlie,not-an-email,pro,12\n",
        );
        let said = said(&out);
        let ref_twice = |row| {
            (
                Severity::Error,
                row,
                "this Ref is used twice, also on row 2: remove one of the two".to_string(),
            )
        };
        assert!(said.contains(&ref_twice(4)), "{said:#?}");
        assert!(said.contains(&ref_twice(6)), "{said:#?}");
        let names: Vec<_> = said.iter().filter(|f| f.2.contains("one name")).collect();
        assert_eq!(names.len(), 1, "said at the second row only: {said:#?}");
        assert_eq!((names[0].0, names[0].1), (Severity::Warning, 3));
        assert_eq!(said.len(), 4, "{said:#?}");
        // Rows 4 and 6 are invalid; row 6 was already, for its email, and counts once.
        let c = &out.sheets[0].3;
        assert_eq!((c.rows, c.valid, c.invalid), (5, 3, 2));
    }

    #[test]
    fn a_large_file_without_repeats_reports_none() {
        // Enough keys that the repeat filter raises false alarms; each must be cleared.
        let mut text = String::from("Ref,Company Name,Email,Plan,Contract Months\n");
        for i in 0..60_000 {
            text.push_str(&format!("R{i},Company {i},c{i}@x.example,pro,12\n"));
        }
        text.push_str("r59999,Company 7,dup@x.example,pro,12\n");
        let out = validate_csv(&text);
        let said = said(&out);
        assert_eq!(said.len(), 2, "{said:#?}");
        assert!(said[0].2.contains("also on row 60001"), "{said:#?}");
        assert!(said[1].2.contains("also added on row 9"), "{said:#?}");
        let c = &out.sheets[0].3;
        assert_eq!((c.valid, c.invalid), (60_000, 1));
    }

    #[test]
    fn actions_match_exactly_or_loosely() {
        let user = |s| Action::parse(Kind::Users, s);
        assert_eq!(user("ADD"), Some(Action::User(UserAction::Add)));
        assert_eq!(
            user("Reset Password"),
            Some(Action::User(UserAction::ResetPassword))
        );
        assert_eq!(user(" "), Some(Action::User(UserAction::Add)));
        assert_eq!(user("remove"), None);
        assert_eq!(Action::parse(Kind::Devices, "Add"), Some(Action::AddDevice));
    }
}
