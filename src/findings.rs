//! What plbulk found wrong (or worth saying) about an input, located as the user sees it: file,
//! sheet, row number as Excel shows it, column letter and header, and the value.

use std::fmt;
use std::sync::Arc;

use crate::schema::column_letter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The row cannot run as written.
    Error,
    /// The row can run, but probably not as meant.
    Warning,
    /// Worth knowing; nothing to fix.
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub file: Arc<str>,
    /// The sheet's name; for a CSV file, the kind it was read as.
    pub sheet: Arc<str>,
    /// Row as Excel numbers it (the header is usually 1); None for the whole sheet.
    pub row: Option<u32>,
    /// 0-based column index in the user's sheet.
    pub column: Option<u32>,
    /// The column's header as the user wrote it.
    pub header: Option<Arc<str>>,
    pub value: String,
    pub message: String,
}

impl Finding {
    pub fn column_letter(&self) -> Option<String> {
        self.column.map(|c| column_letter(c as usize))
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // In Excel's words: "in.xlsx, sheet Users, row 7, column AB (Email)". A CSV has no
        // sheet (its "sheet" is the kind it was read as), so none is named.
        write!(
            f,
            "{}: {}",
            self.severity.as_str(),
            place(&self.file, &self.sheet)
        )?;
        if let Some(r) = self.row {
            write!(f, ", row {r}")?;
        }
        if let Some(letter) = self.column_letter() {
            write!(f, ", column {letter}")?;
            if let Some(h) = &self.header {
                write!(f, " ({h})")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// A sheet as a partner names it: "big.csv" (a text file has no sheets: its "sheet" is the
/// kind it was read as), or "in.xlsx, sheet Users".
pub fn place(file: &str, sheet: &str) -> String {
    if is_text_file(file) {
        file.to_string()
    } else {
        format!("{file}, sheet {sheet}")
    }
}

/// Whether a file is read as text (CSV, TSV), with no sheets of its own.
fn is_text_file(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| crate::intake::TEXT.contains(&e.to_ascii_lowercase().as_str()))
}

/// Findings of a job, kept up to a limit (a file with a million bad rows must not take a
/// million findings' memory), and counted without one.
#[derive(Debug, Default)]
pub struct Findings {
    items: Vec<Finding>,
    counts: [u64; 3],
    limit: Option<usize>,
}

/// How many findings are kept in memory and in the report by default.
pub const DEFAULT_KEPT: usize = 100_000;

impl Findings {
    pub fn new() -> Findings {
        Findings {
            limit: Some(DEFAULT_KEPT),
            ..Default::default()
        }
    }

    pub fn with_limit(limit: Option<usize>) -> Findings {
        Findings {
            limit,
            ..Default::default()
        }
    }

    pub fn push(&mut self, f: Finding) {
        self.counts[f.severity as usize] += 1;
        if self.limit.is_none_or(|l| self.items.len() < l) {
            self.items.push(f);
        }
    }

    pub fn extend(&mut self, fs: impl IntoIterator<Item = Finding>) {
        for f in fs {
            self.push(f);
        }
    }

    /// Drops the kept findings `drop` picks, uncounting them (a finding dropped unkept, past
    /// the limit, stays counted: it was never seen again to be judged).
    /// Changes each kept finding in place: its place or its words (a mapped sheet's findings
    /// said of the export's own cells), never its severity, which the counts stand on.
    pub fn for_each_mut(&mut self, mut change: impl FnMut(&mut Finding)) {
        for f in &mut self.items {
            let severity = f.severity;
            change(f);
            debug_assert_eq!(f.severity, severity, "a finding's severity is counted");
        }
    }

    pub fn remove_where(&mut self, drop: impl Fn(&Finding) -> bool) {
        let counts = &mut self.counts;
        self.items.retain(|f| {
            let gone = drop(f);
            if gone {
                counts[f.severity as usize] -= 1;
            }
            !gone
        });
    }

    pub fn count(&self, s: Severity) -> u64 {
        self.counts[s as usize]
    }

    pub fn errors(&self) -> u64 {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> u64 {
        self.count(Severity::Warning)
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The findings kept, in the order found.
    pub fn items(&self) -> &[Finding] {
        &self.items
    }

    pub fn dropped(&self) -> u64 {
        self.total() - self.items.len() as u64
    }

    /// Sorts the kept findings by sheet, in `order` (file and sheet as they were read: the
    /// user's own order, not the alphabet's), then row and column, errors first within a cell.
    /// Sheets not in `order` come last, by name.
    pub fn sort_in<'a>(&mut self, order: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let order: Vec<(&str, &str)> = order.into_iter().collect();
        self.items.sort_by_cached_key(|f| {
            let rank = order
                .iter()
                .position(|&(file, sheet)| *f.file == *file && *f.sheet == *sheet)
                .unwrap_or(order.len());
            (
                rank,
                f.file.clone(),
                f.sheet.clone(),
                f.row,
                f.column,
                f.severity,
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(sev: Severity) -> Finding {
        Finding {
            severity: sev,
            file: "in.xlsx".into(),
            sheet: "Users".into(),
            row: Some(7),
            column: Some(27),
            header: Some("Email".into()),
            value: "tom@".into(),
            message: "\"tom@\" is not an email address".into(),
        }
    }

    #[test]
    fn display_names_file_sheet_row_and_column() {
        assert_eq!(
            f(Severity::Error).to_string(),
            "error: in.xlsx, sheet Users, row 7, column AB (Email): \"tom@\" is not an email address"
        );
    }

    #[test]
    fn sorted_in_the_order_the_sheets_were_read() {
        let at = |file: &str, sheet: &str, row, sev| Finding {
            file: file.into(),
            sheet: sheet.into(),
            row: Some(row),
            ..f(sev)
        };
        let mut fs = Findings::new();
        fs.push(at("b.csv", "Users", 9, Severity::Warning));
        fs.push(at("in.xlsx", "Customers", 3, Severity::Error));
        fs.push(at("in.xlsx", "Users", 2, Severity::Warning));
        fs.push(at("in.xlsx", "Users", 2, Severity::Error));
        fs.push(at("a.csv", "Orders", 1, Severity::Error));
        fs.sort_in([
            ("in.xlsx", "Users"),
            ("in.xlsx", "Customers"),
            ("b.csv", "Users"),
        ]);
        let got: Vec<_> = fs
            .items()
            .iter()
            .map(|f| (&*f.file, &*f.sheet, f.row.unwrap(), f.severity))
            .collect();
        assert_eq!(
            got,
            [
                ("in.xlsx", "Users", 2, Severity::Error),
                ("in.xlsx", "Users", 2, Severity::Warning),
                ("in.xlsx", "Customers", 3, Severity::Error),
                ("b.csv", "Users", 9, Severity::Warning),
                ("a.csv", "Orders", 1, Severity::Error),
            ]
        );
    }

    #[test]
    fn keeps_up_to_the_limit_but_counts_all() {
        let mut fs = Findings::with_limit(Some(2));
        for _ in 0..5 {
            fs.push(f(Severity::Error));
        }
        fs.push(f(Severity::Warning));
        assert_eq!(
            (fs.items().len(), fs.errors(), fs.warnings(), fs.dropped()),
            (2, 5, 1, 4)
        );
    }
}
