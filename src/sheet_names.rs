//! Sheet names for the workbooks plbulk writes (results, reports): Excel allows at most 31
//! characters, none of `[]:*?/\`, and no two names equal regardless of case. Inputs may well
//! break all three (two files each with a "Users" sheet), so every input sheet's name goes
//! through here, in the same order wherever the same workbook's names are needed.

/// The characters Excel refuses in a sheet name.
const REFUSED: &str = "[]:*?/\\";
const MAX_CHARS: usize = 31;

/// The names a workbook has handed out so far.
pub struct SheetNames {
    used: Vec<String>,
}

impl SheetNames {
    /// `reserved` are the workbook's own sheets (Summary, Findings): an input sheet of that
    /// name gets another.
    pub fn new(reserved: &[&str]) -> SheetNames {
        SheetNames {
            used: reserved.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// A name for a sheet the user called `want`: as close to it as Excel allows, and unused;
    /// "Users", then "Users (2)".
    pub fn take(&mut self, want: &str) -> String {
        let clean: String = want
            .trim()
            .chars()
            .map(|c| if REFUSED.contains(c) { '_' } else { c })
            .take(MAX_CHARS)
            .collect();
        let base = if clean.is_empty() {
            "Sheet".to_string()
        } else {
            clean
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.used.iter().any(|u| u.eq_ignore_ascii_case(&name)) {
            let suffix = format!(" ({n})");
            let keep = MAX_CHARS - suffix.chars().count();
            name = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
            n += 1;
        }
        self.used.push(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_regardless_of_case_and_fit_excel() {
        let mut names = SheetNames::new(&["Summary"]);
        assert_eq!(names.take("Users"), "Users");
        assert_eq!(names.take("users"), "users (2)");
        assert_eq!(names.take("USERS"), "USERS (3)");
        assert_eq!(names.take("summary"), "summary (2)");
        assert_eq!(names.take("a/b[c]"), "a_b_c_");
        assert_eq!(names.take("  "), "Sheet");
        let long = "x".repeat(40);
        assert_eq!(names.take(&long), "x".repeat(31));
        let again = names.take(&long);
        assert_eq!(again, format!("{} (2)", "x".repeat(27)));
        assert_eq!(again.chars().count(), 31);
    }
}
