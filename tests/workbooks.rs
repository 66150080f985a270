//! Every workbook plbulk writes, read back as Excel reads it (the zip's sheet and style parts):
//! how it prints (A4, one page wide, header rows on every page), column widths, number
//! formats, alignment and colours. What LibreOffice draws from them was looked at by eye; these
//! pin what can be read back.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A run that ended as plbulk ends a run: 0 all done, 1 some rows did not succeed, 2 refused
/// (a validation with errors). Anything else (a crash, a usage error) fails the test.
fn ok(o: Output) -> Output {
    assert!(matches!(o.status.code(), Some(0..=2)), "{}", text(&o));
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

/// Runs the sample `sample` as a rehearsal (`how`: --sandbox or --sandbox-fresh), running the
/// valid rows of a file with errors, with its results at `results`.
fn rehearse(dir: &Path, sample: &str, how: &str, results: &Path) {
    ok(first_time(dir)
        .arg("run")
        .arg(root().join(sample))
        .args([how, "--skip-invalid", "--rate", "6000/min", "--results"])
        .arg(results)
        .output()
        .unwrap());
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
        // The Summary and the Instructions are not lists: they have no header row to repeat.
        if !["Summary", "Instructions"].contains(&name.as_str()) {
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
    ok(first_time(dir.path())
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

/// The style index (`s="N"` / `style="N"`) → the `<xf …>` it names in styles.xml.
fn xf(book: &mut Book, index: usize) -> String {
    let styles = book.part("xl/styles.xml");
    let xfs = &styles[styles.find("<cellXfs").unwrap()..styles.find("</cellXfs>").unwrap()];
    let all: Vec<&str> = xfs.split("<xf ").skip(1).collect();
    all[index].to_string()
}

/// The style of cell `cell` ("B12") in `xml`, as an index into cellXfs (0 when it has none).
fn cell_style(xml: &str, cell: &str) -> usize {
    let at = xml
        .find(&format!("<c r=\"{cell}\""))
        .unwrap_or_else(|| panic!("no cell {cell}"));
    let tag = &xml[at..at + xml[at..].find('>').unwrap()];
    tag.split(" s=\"")
        .nth(1)
        .map_or(0, |s| s[..s.find('"').unwrap()].parse().unwrap())
}

/// The style a `<col>` gives column `col` (1-based).
fn column_style(xml: &str, col: u32) -> Option<usize> {
    xml.split("<col ").skip(1).find_map(|c| {
        let num = |k: &str| -> u32 {
            let at = c.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
            c[at..at + c[at..].find('"').unwrap()].parse().unwrap()
        };
        (num("min") <= col && col <= num("max")).then(|| {
            c.split("style=\"")
                .nth(1)
                .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        })?
    })
}

/// Templates: the Instructions sheet's wrapped lines overlapped (no row heights) and printed 3
/// pages wide, cutting "Needed" off; hover messages said "(see below)"; phone and number
/// columns were General, which drops a leading 0.
#[test]
fn templates_print_one_page_wide_with_text_phone_columns_and_hover_messages_that_stand_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    ok(first_time(dir.path())
        .args(["template", "all", "--out"])
        .arg(&out)
        .output()
        .unwrap());
    let mut book = prints_on_a4(&out.join("onboarding.xlsx"));
    let instructions = book.sheet("Instructions");
    assert_eq!(orientation(&instructions), "landscape");
    // Needed is wide enough for "Sometimes required"; the three columns fit a landscape page.
    assert!(column_width(&instructions, 2) >= "Sometimes required".len() as f64);
    let total: f64 = (1..=3).map(|c| column_width(&instructions, c)).sum();
    assert!(total <= 130.0, "Instructions are {total} characters wide");
    let tall = instructions.matches("customHeight=\"1\"").count();
    assert!(
        tall >= 10,
        "only {tall} rows are sized for their wrapped text"
    );
    for name in book
        .sheet_names()
        .into_iter()
        .filter(|n| n != "Instructions")
    {
        let xml = book.sheet(&name);
        assert!(
            !xml.contains("see below"),
            "{name}: a hover message says (see below)"
        );
    }
    // Text ("@", Excel's format 49) on each phone and number column, and on its example.
    for (sheet, col, cell) in [
        ("Customers", 7, "G2"),
        ("Numbers", 3, "C2"),
        ("Blocked Numbers", 3, "C2"),
        ("User Settings", 9, "I2"),
        ("Devices", 4, "D2"),
    ] {
        let xml = book.sheet(sheet);
        let style = column_style(&xml, col).unwrap_or_else(|| panic!("{sheet}: column {col}"));
        assert!(
            xf(&mut book, style).starts_with("numFmtId=\"49\""),
            "{sheet} {col}"
        );
        let example = cell_style(&xml, cell);
        assert!(
            xf(&mut book, example).starts_with("numFmtId=\"49\""),
            "{sheet} {cell}"
        );
    }
    // And not on a column of words.
    let customers = book.sheet("Customers");
    assert_eq!(column_style(&customers, 4), None, "Company Name is Text");
}

/// The fill colour (`fgColor rgb`) of the style `index`.
fn fill_of(book: &mut Book, index: usize) -> String {
    let xf = xf(book, index);
    let at = xf.find("fillId=\"").unwrap() + 8;
    let fill: usize = xf[at..at + xf[at..].find('"').unwrap()].parse().unwrap();
    let styles = book.part("xl/styles.xml");
    let fills = &styles[styles.find("<fills").unwrap()..styles.find("</fills>").unwrap()];
    let this = fills.split("<fill>").nth(fill + 1).unwrap();
    this.split("rgb=\"")
        .nth(1)
        .map_or(String::new(), |s| s[..s.find('"').unwrap()].to_string())
}

/// The A1 name of a 0-based (row, column).
fn a1(row: usize, col: usize) -> String {
    format!("{}{}", (b'A' + col as u8) as char, row + 1)
}

/// Results of a rehearsal with invalid and skipped rows: the Summary said neither that it was
/// a rehearsal nor when in date-times (its times were text), its counts sat right-aligned under
/// left-aligned headers, its chart gave failed and invalid one red (and skipped and needs
/// review one yellow); the workbook chose Letter paper; Finished ran into the next column.
#[test]
fn a_rehearsals_results_say_so_and_read_right_on_a4() {
    let dir = tempfile::tempdir().unwrap();
    let res = dir.path().join("res.xlsx");
    rehearse(dir.path(), "samples/broken.xlsx", "--sandbox-fresh", &res);
    let mut book = prints_on_a4(&res);
    for name in book.sheet_names() {
        assert_eq!(orientation(&book.sheet(&name)), "landscape", "{name}");
    }

    let summary = sheet_rows(&res, "Summary");
    let line = |key: &str| {
        summary
            .iter()
            .position(|r| r[0] == key)
            .unwrap_or_else(|| panic!("no {key} line: {summary:?}"))
    };
    let rehearsal = &summary[line("Rehearsal")][1];
    assert!(
        rehearsal.contains("an empty account of its own (--sandbox-fresh)")
            && rehearsal.contains("Nothing was sent to PL+"),
        "{rehearsal}"
    );
    // Times are date-time cells in a date format, not text.
    let xml = book.sheet("Summary");
    for key in ["Created", "First call", "Last call"] {
        let Some(row) = summary.iter().position(|r| r[0] == key) else {
            assert_ne!(key, "Created");
            continue;
        };
        let cell = a1(row, 1);
        let at = xml.find(&format!("<c r=\"{cell}\"")).unwrap();
        let tag = &xml[at..at + xml[at..].find("</c>").unwrap()];
        assert!(
            !tag.contains("t=\"s\"") && !tag.contains("t=\"str\""),
            "{key} is text: {tag}"
        );
        let style = xf(&mut book, cell_style(&xml, &cell));
        let id: usize = style["numFmtId=\"".len()..style[10..].find('"').unwrap() + 10]
            .parse()
            .unwrap();
        let styles = book.part("xl/styles.xml");
        assert!(
            styles.contains(&format!(
                "numFmtId=\"{id}\" formatCode=\"yyyy-mm-dd hh:mm:ss"
            )),
            "{key}: format {id}"
        );
    }
    // Each count sits as its header does: both centred.
    let table = line("Sheet");
    for col in 1..=8 {
        let head = xf(&mut book, cell_style(&xml, &a1(table, col)));
        let count = xf(&mut book, cell_style(&xml, &a1(table + 1, col)));
        let total = xf(&mut book, cell_style(&xml, &a1(table + 9, col)));
        for (what, x) in [("header", &head), ("count", &count), ("total", &total)] {
            assert!(
                x.contains("horizontal=\"center\""),
                "{what} of column {col}: {x}"
            );
        }
    }
    // Each outcome its own colour in the chart.
    let chart = book.part("xl/charts/chart1.xml");
    let colours: Vec<&str> = chart
        .split("srgbClr val=\"")
        .skip(1)
        .map(|s| &s[..6])
        .collect();
    let distinct: std::collections::BTreeSet<&str> = colours.iter().copied().collect();
    assert_eq!(colours.len(), 8, "{colours:?}");
    assert_eq!(
        distinct.len(),
        8,
        "two outcomes share a colour: {colours:?}"
    );

    // A sheet's outcome cells: skipped and invalid filled apart, Finished wide enough for its
    // date-time and left-aligned under its header.
    let users = sheet_rows(&res, "Users");
    let outcome = users[0].iter().position(|h| h == "Outcome").unwrap();
    let finished = users[0].iter().position(|h| h == "Finished").unwrap();
    let xml = book.sheet("Users");
    let fill = |book: &mut Book, label: &str| {
        let row = users.iter().position(|r| r[outcome] == label).unwrap();
        fill_of(book, cell_style(&xml, &a1(row, outcome)))
    };
    let (skipped, invalid) = (fill(&mut book, "skipped"), fill(&mut book, "invalid"));
    assert_ne!(skipped, invalid);
    assert!(column_width(&xml, finished as u32 + 1) >= "2026-12-01 09:30:00 UTC".len() as f64);
    assert!(column_width(&xml, outcome as u32 + 1) >= "already existed".len() as f64);
    let done = 1 + users[1..]
        .iter()
        .position(|r| !r[finished].is_empty())
        .expect("a Users row ran");
    let when = xf(&mut book, cell_style(&xml, &a1(done, finished)));
    assert!(when.contains("horizontal=\"left\""), "{when}");

    // The to-fix workbook beside it prints the same way, its Detail wrapped, and a phone
    // number typed into it again keeps its 0.
    let mut to_fix = prints_on_a4(&dir.path().join("res.to-fix.xlsx"));
    let customers = to_fix.sheet("Customers");
    assert_eq!(orientation(&customers), "landscape");
    let style = column_style(&customers, 7).expect("Phone has a column format");
    assert!(xf(&mut to_fix, style).starts_with("numFmtId=\"49\""));
    assert!(
        customers.contains("customHeight=\"1\""),
        "no Detail row is sized to wrap"
    );
}

/// Undo's results showed each row as "add / succeeded" with an empty Detail (read as "added"),
/// the Summary did not name the job undone, and a rehearsal's undo said to ask PL+ to cancel
/// its orders, though a rehearsal has no PL+ to ask.
#[test]
fn an_undos_results_say_what_was_reversed_and_of_which_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rehearse(
        d,
        "samples/onboarding.xlsx",
        "--sandbox-fresh",
        &d.join("res.xlsx"),
    );
    let jobs: Vec<String> = std::fs::read_dir(d.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let [job] = &jobs[..] else {
        panic!("one job: {jobs:?}")
    };
    let undo = d.join("undo.xlsx");
    ok(first_time(d)
        .args(["undo", job, "--yes", "--results"])
        .arg(&undo)
        .output()
        .unwrap());
    let mut book = prints_on_a4(&undo);
    assert!(book.sheet_names().contains(&"Orders".to_string()));

    let summary = sheet_rows(&undo, "Summary");
    let undoes = summary
        .iter()
        .find(|r| r[0] == "Undoes")
        .unwrap_or_else(|| panic!("no Undoes line: {summary:?}"));
    assert!(undoes[1].starts_with(&format!("job {job}")), "{undoes:?}");
    assert!(summary.iter().any(|r| r[0] == "Rehearsal"), "{summary:?}");

    let detail = |sheet: &str| -> Vec<(String, String)> {
        let rows = sheet_rows(&undo, sheet);
        let outcome = rows[0].iter().position(|h| h == "Outcome").unwrap();
        rows[1..]
            .iter()
            .map(|r| (r[outcome].clone(), r[outcome + 1].clone()))
            .collect()
    };
    let customers = detail("Customers");
    assert!(!customers.is_empty());
    for (outcome, why) in &customers {
        assert_eq!(outcome, "succeeded");
        assert!(
            why.starts_with("reversed the add: customer cus_") && why.ends_with(" removed"),
            "{why}"
        );
    }
    // A user inside a customer the job made goes with the customer.
    for (_, why) in detail("Users") {
        assert!(
            why.starts_with("reversed the add: removed with customer cus_"),
            "{why}"
        );
    }
    for (outcome, why) in detail("Orders") {
        assert_eq!(outcome, "needs review");
        assert!(!why.contains("ask PL+"), "{why}");
        assert!(why.contains("stays in the rehearsal account"), "{why}");
    }

    // The same results as CSV say the same.
    let undo_job = std::fs::read_dir(d.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("-undo"))
        .unwrap();
    let csv = d.join("undo.csv");
    ok(first_time(d)
        .args(["results", &undo_job, "--format", "csv", "--out"])
        .arg(&csv)
        .output()
        .unwrap());
    let customers = std::fs::read_to_string(d.join("undo.Customers.csv")).unwrap();
    assert!(
        customers.contains("reversed the add: customer cus_"),
        "{customers}"
    );
}

/// An export is a template to edit and run back: it prints as the others do (a narrow one
/// upright), and its phone columns are Text.
#[test]
fn an_export_prints_on_a4_with_phone_columns_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rehearse(
        d,
        "samples/onboarding.xlsx",
        "--sandbox",
        &d.join("res.xlsx"),
    );
    for what in ["customers", "numbers"] {
        let out = d.join(format!("{what}.xlsx"));
        ok(first_time(d)
            .args(["export", what, "--sandbox", "--out"])
            .arg(&out)
            .output()
            .unwrap());
        let mut book = prints_on_a4(&out);
        let (sheet, phone, wide) = match what {
            "customers" => ("Customers", 7, "landscape"),
            _ => ("Numbers", 3, "portrait"),
        };
        let xml = book.sheet(sheet);
        assert_eq!(orientation(&xml), wide, "{what}");
        let style = column_style(&xml, phone).expect("a column format");
        assert!(
            xf(&mut book, style).starts_with("numFmtId=\"49\""),
            "{what}"
        );
        let first = cell_style(&xml, &a1(1, phone as usize - 1));
        assert!(
            xf(&mut book, first).starts_with("numFmtId=\"49\""),
            "{what}"
        );
    }
}

/// More findings than a report keeps: `--no-report` said "… and N more in the report" (the
/// report lists only the first 100,000), and so did a report that held a fraction of them.
#[test]
fn findings_past_what_is_kept_are_not_promised_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("many.csv");
    let mut text = String::from("Company Name,Email,Plan,Contract Months\n");
    // Three errors a row: 120,000 findings.
    for i in 0..40_000 {
        text.push_str(&format!("Firm {i},nobody{i},gold,7\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let o = ok(first_time(dir.path())
        .args(["validate", "--no-report", "--kind", "customers"])
        .arg(&csv)
        .output()
        .unwrap());
    let out = String::from_utf8_lossy(&o.stdout);
    let more = out
        .lines()
        .find(|l| l.trim_start().starts_with("… and "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(!more.contains("in the report"), "{more}");
    assert!(!more.contains("a report of them all"), "{more}");
    assert!(
        more.contains("prints up to 100000; fix those and validate again for the rest"),
        "{more}"
    );
}
