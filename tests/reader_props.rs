//! Property tests that hammer the readers with arbitrary bytes: they may refuse a file, but
//! never panic, and whatever they accept can be validated to the end.

use std::path::Path;

use plbulk::intake;
use plbulk::schema::Kind;
use plbulk::validate::Validator;
use proptest::prelude::*;

fn read_everything(path: &Path, kind: Option<Kind>) {
    let Ok(sheets) = intake::open(path, kind) else {
        return;
    };
    let mut v = Validator::new();
    for mut s in sheets {
        let _ = v.check_sheet(&mut s);
    }
    let _ = v.finish();
}

fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop::sample::select(vec![
        &b","[..],
        b";",
        b"\t",
        b"\"",
        b"\n",
        b"\r\n",
        b"\r",
        b"Company Name",
        b"Email",
        b"Plan",
        b"pro",
        b"hardware",
        b"12",
        b"0161 496 0000",
        b"a@b.co",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"\xe9",
        b"\xc3",
        b"\0",
        b"Customer",
        b"MAC",
        b"80:5E:C0:12:34:56",
        b"=HYPERLINK(1)",
        b" ",
    ]);
    prop::collection::vec(atoms, 0..200).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn csv_reader_never_panics(bytes in csv_like(), kind in prop::option::of(prop::sample::select(Kind::ALL.to_vec()))) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.csv");
        std::fs::write(&p, &bytes).unwrap();
        read_everything(&p, kind);
    }

    #[test]
    fn csv_reader_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.csv");
        std::fs::write(&p, &bytes).unwrap();
        read_everything(&p, Some(Kind::Users));
    }

    #[test]
    fn workbook_reader_never_panics_on_damaged_files(cut in 0usize..10_000, flips in prop::collection::vec((0usize..10_000, any::<u8>()), 0..8)) {
        let good = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quirks.xlsx")).unwrap();
        let mut bytes = good[..cut.min(good.len())].to_vec();
        for (at, b) in flips {
            if let Some(x) = bytes.get_mut(at) {
                *x = b;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.xlsx");
        std::fs::write(&p, &bytes).unwrap();
        read_everything(&p, None);
    }
}

/// The first data row's first cell of a one-column Customers CSV holding `cell`, and whether
/// the reader refused it (an error on that row), through the reader a job uses.
fn read_cell(cell: &[u8]) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.csv");
    let mut bytes = b"Company Name\n".to_vec();
    bytes.extend_from_slice(cell);
    bytes.push(b'\n');
    std::fs::write(&path, &bytes).unwrap();
    let mut sheets = intake::open(&path, Some(Kind::Customers)).unwrap();
    let sheet = &mut sheets[0];
    let mut row = intake::RowBuf::default();
    let mut notes = Vec::new();
    let n = sheet.rows.next_row(&mut row, &mut notes).unwrap().unwrap();
    assert_eq!(n, 2);
    let refused = notes
        .iter()
        .any(|f| f.severity == plbulk::findings::Severity::Error && f.row == Some(2));
    (row.get(0).to_string(), refused)
}

/// Whether `bytes` hold a valid UTF-8 sequence of more than one byte.
fn has_multibyte_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => return !s.is_ascii(),
            Err(e) => {
                if !rest[..e.valid_up_to()].is_ascii() {
                    return true;
                }
                rest = &rest
                    [e.valid_up_to() + e.error_len().unwrap_or(rest.len() - e.valid_up_to())..];
            }
        }
    }
}

/// Bytes of a cell: no delimiter, quote, line break or NUL, so the CSV layer keeps them as
/// they are; high bytes often, so UTF-8 sequences and stray bytes both come up.
fn cell_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => (0x20u8..0x7f).prop_filter("no CSV syntax", |b| !b",;\t\"".contains(b)),
            4 => 0x80u8..=0xff,
            2 => prop::sample::select(vec![0xC3u8, 0xA9, 0xE2, 0x82, 0xAC]),
        ],
        1..24,
    )
    .prop_filter("not blank", |v| v.iter().any(|b| *b != b' '))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Issue 11: any UTF-8 cell reads unchanged.
    #[test]
    fn utf8_reads_unchanged(s in "[^,;\t\"\r\n\u{0}\u{feff}]{1,30}") {
        let (got, refused) = read_cell(s.as_bytes());
        prop_assert!(!refused);
        prop_assert_eq!(got, s);
    }

    /// Issue 11: a cell with a byte that is not UTF-8 is refused, or read as Windows-1252,
    /// and read so only when nothing in the file is valid multi-byte UTF-8.
    #[test]
    fn stray_bytes_are_refused_or_read_as_1252_only_without_utf8(bytes in cell_bytes()) {
        prop_assume!(std::str::from_utf8(&bytes).is_err());
        let (got, refused) = read_cell(&bytes);
        if !refused {
            prop_assert!(!has_multibyte_utf8(&bytes), "read although it has UTF-8 in it: {got:?}");
            let expected = encoding_rs::WINDOWS_1252.decode_without_bom_handling(&bytes).0;
            prop_assert_eq!(got, expected.into_owned());
        } else {
            prop_assert!(
                has_multibyte_utf8(&bytes) || bytes.iter().any(|b| [0x81, 0x8D, 0x8F, 0x90, 0x9D].contains(b)),
                "refused a plain Windows-1252 cell"
            );
        }
    }
}
