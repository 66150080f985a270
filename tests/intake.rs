//! Reading real files as the programs that make them in the wild write them: LibreOffice's
//! XLSX, ODS, XLS and CSV in several encodings (see tests/fixtures/README.md).

use std::path::Path;

use plbulk::findings::Severity;
use plbulk::intake::{self, RowBuf};
use plbulk::schema::{Field, Kind};
use plbulk::validate::{Validator, Verdict};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every row of every sheet: (sheet, row number, cells).
fn read_all(path: &Path, kind: Option<Kind>) -> Vec<(String, u32, Vec<String>)> {
    let mut out = Vec::new();
    for mut sheet in intake::open(path, kind).unwrap() {
        let mut row = RowBuf::default();
        let mut notes = Vec::new();
        while let Some(n) = sheet.rows.next_row(&mut row, &mut notes).unwrap() {
            out.push((
                sheet.name.to_string(),
                n,
                row.iter().map(str::to_string).collect(),
            ));
        }
    }
    out
}

fn cell<'a>(rows: &'a [(String, u32, Vec<String>)], sheet: &str, row: u32, col: usize) -> &'a str {
    rows.iter()
        .find(|(s, n, _)| s == sheet && *n == row)
        .map(|(_, _, c)| c.get(col).map_or("", String::as_str))
        .unwrap_or_else(|| panic!("no row {row} in {sheet}"))
}

#[test]
fn workbooks_read_as_the_user_saw_them() {
    for name in ["quirks.xlsx", "quirks.ods", "quirks.xls"] {
        let rows = read_all(&fixture(name), None);
        // A formula gives its cached value.
        assert_eq!(
            cell(&rows, "Customers", 2, 2),
            "Acme Plumbing Ltd",
            "{name}"
        );
        // A number cell keeps every digit; 12.0 reads as 12.
        assert_eq!(cell(&rows, "Customers", 2, 4), "1632960000", "{name}");
        assert_eq!(cell(&rows, "Customers", 2, 6), "12", "{name}");
        assert_eq!(cell(&rows, "Customers", 3, 2), "Café Zoë Ltd", "{name}");
        assert_eq!(
            cell(&rows, "Customers", 5, 2),
            "Bolt Ltd",
            "{name}: the blank row 4 keeps its number"
        );
        // Times and dates.
        assert_eq!(cell(&rows, "User Settings", 2, 4), "09:00", "{name}");
        assert_eq!(cell(&rows, "User Settings", 2, 5), "17:30", "{name}");
        assert_eq!(cell(&rows, "Blocked Numbers", 2, 3), "2026-01-31", "{name}");
        assert!(
            !rows.iter().any(|(s, ..)| s == "Numbers"),
            "{name}: the hidden sheet is skipped"
        );
    }
}

#[test]
fn workbook_quirks_validate_with_the_right_findings() {
    for name in ["quirks.xlsx", "quirks.xls"] {
        let mut v = Validator::new();
        for mut sheet in intake::open(&fixture(name), None).unwrap() {
            v.check_sheet(&mut sheet).unwrap();
        }
        let out = v.finish();
        let f = out.findings.items();
        assert!(
            f.iter().any(
                |f| f.severity == Severity::Note && f.message.contains("\"Numbers\" is hidden")
            ),
            "{name}: {f:#?}"
        );
        let na = f
            .iter()
            .find(|f| f.message.contains("#N/A"))
            .expect("the error cell is reported");
        assert_eq!(
            (na.sheet.as_ref(), na.row, na.column_letter().as_deref()),
            ("Users", Some(3), Some("D"))
        );
        let on_that_cell: Vec<_> = f
            .iter()
            .filter(|f| &*f.sheet == "Users" && f.row == Some(3) && f.column == na.column)
            .collect();
        assert_eq!(
            on_that_cell.len(),
            1,
            "{name}: said once, not again by the email rule: {on_that_cell:#?}"
        );
        let users = out
            .sheets
            .iter()
            .find(|(_, s, ..)| &**s == "Users")
            .unwrap();
        assert_eq!(
            (users.3.valid, users.3.invalid),
            (1, 1),
            "{name}: the #N/A row is invalid by the reader's error alone"
        );
        let customers = out
            .sheets
            .iter()
            .find(|(_, s, ..)| &**s == "Customers")
            .unwrap();
        assert_eq!(
            (customers.3.valid, customers.3.invalid),
            (3, 0),
            "{name}: Excel's lost 0 is restored"
        );
    }
}

#[test]
fn the_phone_excel_turned_into_a_number_gets_its_zero_back() {
    let path = fixture("quirks.xlsx");
    let mut v = Validator::new();
    let mut sheets = intake::open(&path, None).unwrap();
    let sheet = sheets
        .iter_mut()
        .find(|s| s.kind == Kind::Customers)
        .unwrap();
    let mut row = RowBuf::default();
    let mut notes = Vec::new();
    let n = sheet.rows.next_row(&mut row, &mut notes).unwrap().unwrap();
    assert_eq!(v.check_row(sheet, n, &row), Verdict::Valid);
    assert_eq!(v.normalized().get(Field::Phone), "+441632960000");
    assert_eq!(v.normalized().get(Field::Postcode), "M1 1AE");
}

#[test]
fn csv_in_every_encoding_and_delimiter_reads_the_same() {
    let want = [
        (
            2,
            vec![
                "Café Zoë Ltd",
                "zoe@cafe.example",
                "pro",
                "12",
                "£5 a month",
            ],
        ),
        (
            3,
            vec![
                "Acme, Plumbing & Sons",
                "ops@acme.example",
                "pro",
                "24",
                "line one\nline two",
            ],
        ),
        (
            5,
            vec![
                "Bolt Ltd",
                "bolt@bolt.example",
                "pro",
                "36",
                "after a blank row",
            ],
        ),
    ];
    for name in [
        "libreoffice-utf8.csv",
        "excel-utf8-bom-crlf.csv",
        "semicolon-cp1252.csv",
        "tab-utf16.csv",
    ] {
        let rows = read_all(&fixture(name), None);
        let non_blank: Vec<_> = rows
            .iter()
            .filter(|(_, _, c)| c.iter().any(|x| !x.is_empty()))
            .collect();
        assert_eq!(non_blank.len(), want.len(), "{name}: {rows:?}");
        for ((_, n, cells), (wn, wc)) in non_blank.iter().zip(&want) {
            assert_eq!(
                (*n, cells.iter().map(String::as_str).collect::<Vec<_>>()),
                (*wn, wc.clone()),
                "{name}"
            );
        }
    }
}

#[test]
fn a_csv_kind_is_inferred_and_said() {
    let mut v = Validator::new();
    let mut sheets = intake::open(&fixture("semicolon-cp1252.csv"), None).unwrap();
    assert_eq!(sheets[0].kind, Kind::Customers);
    v.check_sheet(&mut sheets[0]).unwrap();
    let out = v.finish();
    let msgs: Vec<&str> = out
        .findings
        .items()
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("read as Customers rows, from its headers")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("windows-1252")), "{msgs:?}");
}
