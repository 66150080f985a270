//! Every workbook plbulk writes, read back as Excel reads it (the zip's sheet and style parts):
//! how it prints (A4, one page wide, header rows on every page), column widths, number
//! formats, alignment and colours. What LibreOffice draws from them was looked at by eye; these
//! pin what can be read back.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// plbulk with a data folder and config of the test's own, and no credentials.
fn plbulk(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("PLBULK_DATA_DIR", dir.join("data"))
        .env("PLBULK_JOB_DIR", dir.join("jobs"))
        .env_remove("PLBULK_CONFIG")
        .env_remove("PLBULK_API_KEY")
        .env_remove("PLBULK_API_SECRET")
        .env_remove("PLBULK_BASE_URL")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir);
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success() || o.status.code() == Some(2),
        "{}",
        text(&o)
    );
    o
}

/// A written workbook's parts, by name.
struct Book {
    zip: zip::ZipArchive<std::fs::File>,
}

impl Book {
    fn open(path: &Path) -> Book {
        let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Book {
            zip: zip::ZipArchive::new(f).unwrap(),
        }
    }

    fn part(&mut self, name: &str) -> String {
        let mut s = String::new();
        self.zip
            .by_name(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    /// The sheets' names, in order.
    fn sheet_names(&mut self) -> Vec<String> {
        let wb = self.part("xl/workbook.xml");
        wb.split("<sheet name=\"")
            .skip(1)
            .map(|s| unescape(&s[..s.find('"').unwrap()]))
            .collect()
    }

    /// The XML of the sheet named `name`.
    fn sheet(&mut self, name: &str) -> String {
        let i = self
            .sheet_names()
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no sheet {name}: {:?}", self.sheet_names()));
        self.part(&format!("xl/worksheets/sheet{}.xml", i + 1))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
}

/// Checks that every sheet of `path` prints on A4, one page wide and as many long as it takes,
/// with its header row on every page; returns the workbook for more checks.
fn prints_on_a4(path: &Path) -> Book {
    let mut book = Book::open(path);
    // The rows repeated on every page, as workbook.xml names them.
    let titles = book.part("xl/workbook.xml");
    for name in book.sheet_names() {
        let xml = book.sheet(&name);
        let setup = attrs(&xml, "pageSetup").unwrap_or_else(|| panic!("{name}: no page setup"));
        assert!(
            setup.contains("paperSize=\"9\""),
            "{name} is not on A4: {setup}"
        );
        assert!(setup.contains("fitToHeight=\"0\""), "{name}: {setup}");
        assert!(
            xml.contains("<pageSetUpPr fitToPage=\"1\"/>"),
            "{name} is not fit to one page wide"
        );
        assert!(
            !setup.contains("fitToWidth="),
            "{name}: fitToWidth is 1: {setup}"
        );
        let quoted = if name.contains(' ') {
            format!("'{name}'!")
        } else {
            format!("{name}!")
        };
        if name != "Summary" {
            assert!(
                titles.contains(&format!(
                    "localSheetId=\"{}\">{quoted}",
                    index(&mut book, &name)
                )),
                "{name} repeats no header row: {titles}"
            );
        }
    }
    book
}

fn index(book: &mut Book, name: &str) -> usize {
    book.sheet_names().iter().position(|n| n == name).unwrap()
}

/// The attributes of the first `<tag …>` in `xml`.
fn attrs(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag} "))?;
    let end = start + xml[start..].find('>')?;
    Some(xml[start..end].to_string())
}

/// The width of column `col` (1-based) as `<cols>` sets it.
fn column_width(xml: &str, col: u32) -> f64 {
    let key = format!("<col min=\"{col}\" max=\"{col}\" width=\"");
    let at = xml
        .find(&key)
        .unwrap_or_else(|| panic!("no width for column {col}"))
        + key.len();
    xml[at..at + xml[at..].find('"').unwrap()].parse().unwrap()
}

fn orientation(xml: &str) -> &'static str {
    let setup = attrs(xml, "pageSetup").unwrap();
    if setup.contains("orientation=\"landscape\"") {
        "landscape"
    } else {
        "portrait"
    }
}

/// The validation report printed 9 portrait pages for 11 findings: each sheet now prints on
/// A4, one page wide, the Findings sheet landscape with its long column wrapped.
#[test]
fn the_validation_report_prints_one_a4_page_wide() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.xlsx");
    ok(plbulk(dir.path())
        .arg("validate")
        .arg(root().join("samples/broken.xlsx"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap());
    let mut book = prints_on_a4(&report);
    let findings = book.sheet("Findings");
    assert_eq!(orientation(&findings), "landscape");
    // What to do: wide enough to read, narrow enough that the sheet fits a page at a size
    // one can read; its lines wrap, in rows made tall enough for them.
    let what = column_width(&findings, 8);
    assert!((60.0..=75.0).contains(&what), "{what}");
    let total: f64 = (1..=8).map(|c| column_width(&findings, c)).sum();
    assert!(
        total < 180.0,
        "the Findings sheet is {total} characters wide"
    );
    assert!(
        findings.contains("customHeight=\"1\""),
        "no row is sized for its wrapped text"
    );
}
