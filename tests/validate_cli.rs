//! `plbulk validate` and `plbulk template` as a user runs them: the real binary, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calamine::{open_workbook_auto, Reader};

fn plbulk(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plbulk"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn templates_match_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let o = plbulk(
        &["template", "all", "--out", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let committed = std::fs::read(root().join("templates").join(&name)).unwrap_or_else(|_| {
            panic!("templates/{name} is not committed: run plbulk template all --out templates")
        });
        assert!(
            committed == std::fs::read(&p).unwrap(),
            "templates/{name} is stale: run plbulk template all --out templates"
        );
        names.push(name);
    }
    assert_eq!(names.len(), 10);
}

#[test]
fn templates_have_drop_downs_input_messages_and_an_example_that_is_ignored() {
    let path = root().join("templates/onboarding.xlsx");
    let book = open_workbook_auto(&path).unwrap();
    let names = book.sheet_names();
    assert_eq!(names[0], "Instructions");
    assert_eq!(names.len(), 10);
    // The data validations are in the sheet XML: a list on Plan, an input message on headers.
    let file = std::fs::File::open(&path).unwrap();
    let xml = zip_entry(file, "xl/worksheets/sheet2.xml");
    assert!(
        xml.contains("type=\"list\"") && xml.contains("pro,hardware"),
        "drop-down on Plan"
    );
    assert!(
        xml.contains("promptTitle=\"Company Name\""),
        "input message on a header"
    );
    // Validating the untouched template finds nothing to do, and says why.
    let dir = tempfile::tempdir().unwrap();
    let o = plbulk(
        &["validate", path.to_str().unwrap(), "--no-report"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "nothing to run: {}", text(&o));
    assert!(text(&o).contains("no rows to run"), "{}", text(&o));
}

fn zip_entry(file: std::fs::File, name: &str) -> String {
    // calamine depends on zip; read the raw entry through it to look at the validations.
    let mut z = zip::ZipArchive::new(file).unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut z.by_name(name).unwrap(), &mut s).unwrap();
    s
}

#[test]
fn the_broken_sample_reports_every_kind_of_finding_and_a_report_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.xlsx");
    let o = plbulk(
        &[
            "validate",
            root().join("samples/broken.xlsx").to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--show",
            "100",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o);
    for needle in [
        "row 2, column F (Email): Email is required because Plan is pro",
        "\"18\" is not a contract length",
        "01632 96000 has 10 digits; a UK number has 11, starting with 0 (01632 960000)",
        "this Ref is used twice, also on row 2",
        "is a multicast address",
        "the same user email is added twice for one customer",
        "is the company name of 2 Customers rows",
        "Order Ref \"O1\" is for another customer on row 2",
        "Close Time 09:00 is not after Open Time 17:30",
        "Phone",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let mut book = open_workbook_auto(&report).unwrap();
    let findings = book.worksheet_range("Findings").unwrap();
    let header: Vec<String> = findings
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        header,
        [
            "Severity",
            "File",
            "Sheet",
            "Row",
            "Column",
            "Header",
            "Value",
            "What to do"
        ]
    );
    assert!(findings.height() > 30);
    let customers = book.worksheet_range("Customers").unwrap();
    // The input is there as given: row 4 (index 3), Email column F.
    assert_eq!(customers.get_value((3, 5)).unwrap().to_string(), "crown@");
}

#[test]
fn bad_input_gets_a_clear_error_and_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let xlsx = std::fs::read(root().join("tests/fixtures/quirks.xlsx")).unwrap();
    std::fs::write(d.join("truncated.xlsx"), &xlsx[..xlsx.len() / 2]).unwrap();
    std::fs::write(
        d.join("picture.xlsx"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01",
    )
    .unwrap();
    std::fs::write(
        d.join("picture.csv"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01",
    )
    .unwrap();
    std::fs::write(d.join("empty.csv"), b"").unwrap();
    std::fs::write(
        d.join("header-only.csv"),
        b"Company Name,Email,Plan,Contract Months\r\n",
    )
    .unwrap();
    std::fs::write(d.join("notes.txt.doc"), b"hello").unwrap();
    std::fs::create_dir(d.join("folder")).unwrap();
    let mut wide = String::from("Company Name,Email,Plan,Contract Months");
    for i in 0..10_000 {
        wide.push_str(&format!(",Extra {i}"));
    }
    wide.push_str("\nAcme Ltd,ops@acme.example,pro,12\n");
    std::fs::write(d.join("wide.csv"), wide).unwrap();
    let big = format!(
        "Company Name,Email,Plan,Contract Months\n{},ops@acme.example,pro,12\n",
        "x".repeat(1 << 20)
    );
    std::fs::write(d.join("big-cell.csv"), big).unwrap();
    // Valid UTF-8 for more than the part that is sniffed, then a byte that is not.
    let mut late = String::from("Company Name,Email,Plan,Contract Months\n");
    for i in 0..30_000 {
        late.push_str(&format!("Company {i} Ltd,ops{i}@acme.example,pro,12\n"));
    }
    let mut late = late.into_bytes();
    late.extend_from_slice(b"Caf\xe9 Ltd,cafe@acme.example,pro,12\n");
    std::fs::write(d.join("late-bad-utf8.csv"), late).unwrap();

    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "truncated.xlsx",
            &[],
            2,
            "could not be read as an Excel workbook",
        ),
        ("picture.xlsx", &[], 2, "save it again"),
        ("picture.csv", &[], 2, "is not text"),
        ("empty.csv", &[], 2, "is empty"),
        ("header-only.csv", &[], 2, "no rows under the header"),
        ("notes.txt.doc", &[], 2, "is not a spreadsheet plbulk reads"),
        ("folder", &[], 2, "is a folder"),
        ("missing.csv", &[], 2, "no such file"),
        ("wide.csv", &[], 0, "and 9990 more not used by plbulk"),
        (
            "big-cell.csv",
            &[],
            2,
            "the cell has 1048576 characters; a cell holds at most 32767",
        ),
        (
            "late-bad-utf8.csv",
            &[],
            2,
            "row 30002, column A (Company Name): the cell is not valid UTF-8",
        ),
    ];
    for (file, extra, code, needle) in cases {
        let mut args = vec!["validate", file, "--no-report", "--show", "5"];
        args.extend_from_slice(extra);
        let o = plbulk(&args, d);
        let out = text(&o);
        assert!(!out.contains("panicked"), "{file}: {out}");
        assert_eq!(o.status.code(), Some(*code), "{file}: {out}");
        assert!(
            out.contains(needle),
            "{file}: expected {needle:?} in\n{out}"
        );
    }
}

#[test]
fn a_csv_whose_kind_cannot_be_told_asks_for_kind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.csv"), "Colour,Size\nred,9\n").unwrap();
    let o = plbulk(&["validate", "x.csv", "--no-report"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("--kind (customers, users,"),
        "{}",
        text(&o)
    );
    let o = plbulk(
        &["validate", "x.csv", "--kind", "customers", "--no-report"],
        dir.path(),
    );
    assert!(text(&o).contains("needs the column"), "{}", text(&o));
}

fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// The findings sheet of a report, as rows of cells.
fn findings_of(report: &Path) -> Vec<Vec<String>> {
    let mut wb = open_workbook_auto(report).unwrap();
    let range = wb.worksheet_range("Findings").unwrap();
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

/// Issue 11: an onboarding workbook from LibreOffice, as .xlsx, .ods and .xls, whose phone
/// numbers were typed into General cells (the file holds 1632960999, not 01632 960999): every
/// sheet's number gets its 0 back with a note, nothing is refused, and the job runs.
#[test]
fn phone_numbers_a_spreadsheet_stored_as_numbers_get_their_zero_back() {
    for ext in ["xlsx", "ods", "xls"] {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.xlsx");
        let file = fixture(&format!("numbers-as-numbers.{ext}"));
        let o = plbulk(
            &["validate", &file, "--report", report.to_str().unwrap()],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(0), "{ext}: {}", text(&o));
        let notes: Vec<Vec<String>> = findings_of(&report)
            .into_iter()
            .filter(|r| r.iter().any(|c| c.contains("lost its leading 0")))
            .collect();
        let sheets: std::collections::BTreeSet<&str> = notes
            .iter()
            .flat_map(|r| r.iter().map(String::as_str))
            .collect();
        for sheet in ["Blocked Numbers", "Customers", "Numbers", "User Settings"] {
            assert!(
                sheets.contains(sheet),
                "{ext}: no note on {sheet}: {notes:?}"
            );
        }
        assert!(
            notes
                .iter()
                .any(|r| r.iter().any(|c| c.contains("read as 01632960999"))),
            "{ext}: {notes:?}"
        );
    }
    // And it runs: the rehearsal sends every row, the blocked number included.
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.xlsx");
    let o = Command::new(env!("CARGO_BIN_EXE_plbulk"))
        .args([
            "run",
            &fixture("numbers-as-numbers.ods"),
            "--sandbox",
            "--rate",
            "2000/s",
            "-q",
        ])
        .arg("--results")
        .arg(&results)
        .arg("--job-dir")
        .arg(dir.path().join("jobs"))
        .env("PLBULK_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Issue 11: a number shown in scientific notation and saved so has lost its digits; the
/// cell is an error that names it, and says how to fix it.
#[test]
fn a_number_in_scientific_notation_is_an_error_naming_the_cell() {
    let dir = tempfile::tempdir().unwrap();
    let o = plbulk(
        &["validate", &fixture("scientific.csv"), "--no-report"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("row 2, column B (Number): 1.63296E+09")
            && out.contains("scientific notation")
            && out.contains("format the column as Text"),
        "{out}"
    );
}

/// Issue 11: a missing required column is a fact about the header: said on the header row,
/// with the columns found and the one most likely misspelt.
#[test]
fn a_missing_column_is_reported_on_the_header_with_the_nearest_match() {
    let dir = tempfile::tempdir().unwrap();
    let o = plbulk(
        &["validate", &fixture("misspelt-header.xlsx"), "--no-report"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    let line = out
        .lines()
        .find(|l| l.contains("the sheet has no Company Name column"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("sheet Customers, row 1:"),
        "on the header row: {line}"
    );
    assert!(
        line.contains(r#""Company Nmae", "Email", "Plan", "Contract Months""#),
        "names the columns found: {line}"
    );
    assert!(
        line.contains(r#"the nearest is "Company Nmae" (column A)"#),
        "names the nearest: {line}"
    );
    assert_eq!(
        out.matches("the sheet has no Company Name column").count(),
        1,
        "said once: {out}"
    );
}

/// Issue 11: a UTF-8 export with a Windows-1252 line appended was read as Windows-1252, and
/// "José Álvarez Tapas Ltd" would have been created as "JosÃ© Ãlvarez Tapas Ltd". It is read
/// as UTF-8, the stray line's cell is an error naming its bytes, and the terminal says so.
#[test]
fn utf8_with_stray_bytes_is_not_read_as_windows_1252() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.xlsx");
    let o = plbulk(
        &[
            "validate",
            &fixture("mixed-encoding.csv"),
            "--report",
            report.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("read as UTF-8: the file is UTF-8 with bytes of another encoding"),
        "{out}"
    );
    assert!(
        out.contains("row 4, column A (Company Name): the cell is not valid UTF-8 text (it holds the bytes E8 FB E9)"),
        "{out}"
    );
    assert!(!out.contains("JosÃ©"), "{out}");
    let mut wb = open_workbook_auto(&report).unwrap();
    let customers = wb.worksheet_range("Customers").unwrap();
    let names: Vec<String> = customers.rows().skip(1).map(|r| r[0].to_string()).collect();
    assert_eq!(names[0], "José Álvarez Tapas Ltd");
    assert_eq!(names[1], "Zoë's Café Ltd");

    // A Windows-1252 file holding a byte 1252 leaves undefined is not read as either.
    let file = dir.path().join("undefined.csv");
    std::fs::write(
        &file,
        b"Company Name,Email,Plan,Contract Months\nCaf\xe9 \x81 Ltd,a@b.example,pro,12\n",
    )
    .unwrap();
    let o = plbulk(
        &["validate", file.to_str().unwrap(), "--no-report"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("row 2, column A (Company Name): the cell holds the byte 81, which Windows-1252 leaves undefined"),
        "{}",
        text(&o)
    );
}
