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
