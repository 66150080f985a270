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
        write!(
            f,
            "{}: {} [{}]",
            self.severity.as_str(),
            self.file,
            self.sheet
        )?;
        if let Some(r) = self.row {
            write!(f, " row {r}")?;
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

    /// Sorts the kept findings by file, sheet, row and column, errors first within a cell.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            (&a.file, &a.sheet, a.row, a.column, a.severity)
                .cmp(&(&b.file, &b.sheet, b.row, b.column, b.severity))
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
            "error: in.xlsx [Users] row 7, column AB (Email): \"tom@\" is not an email address"
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
