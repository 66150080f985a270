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
    assert_eq!(names.len(), 9);
}

#[test]
fn templates_have_drop_downs_input_messages_and_an_example_that_is_ignored() {
    let path = root().join("templates/onboarding.xlsx");
    let book = open_workbook_auto(&path).unwrap();
    let names = book.sheet_names();
    assert_eq!(names[0], "Instructions");
    assert_eq!(names.len(), 9);
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
        "row 2, column F (Email): Email is required: Plan is pro, so Email is required",
        "\"18\" is not a contract length",
        "01632 96000 has 9 digits after the 0; UK numbers have 10",
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
