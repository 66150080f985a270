//! Intake benchmark: `cargo bench --bench intake` (add `-- --rows N` for another size).
//!
//! Measures, in one run on one machine, the ratios the project promises:
//! - validating a 1,000,000-row Customers CSV (about 140 MB) against a bare parse of the same
//!   file with the csv crate (`ByteRecord`s): target at most 3x in wall time, with peak memory
//!   under 300 MB; the CPU time of both of plbulk's threads is printed beside it;
//! - validating a 100,000-row Users XLSX against calamine's bare read of it: target at most 1.5x.
//!
//! The files are generated into a temporary folder first. Peak memory is the process's high
//! water mark (VmHWM) after the first CSV validation, before anything else large is done.

mod support;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use calamine::{open_workbook_auto, Reader};
use plbulk::intake;
use plbulk::validate::Validator;

fn write_customers_csv(path: &Path, rows: usize) -> u64 {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    writeln!(w, "Action,Ref,Customer ID,Company Name,Contact Name,Email,Phone,Plan,Contract Months,Address Line 1,Address Line 2,Town,County,Postcode").unwrap();
    for i in 0..rows {
        let hw = i % 5 == 0;
        writeln!(
            w,
            "add,C{i:07},,Company {i} Trading Ltd,Contact Person {i},ops{i}@company{i}.example,0161 496 {:04},{},{},{} High Street,Unit {},Manchester,Greater Manchester,{}",
            i % 1000,
            if hw { "hardware" } else { "pro" },
            [1, 12, 24, 36][i % 4],
            i % 300 + 1,
            i % 9 + 1,
            if i % 3 == 0 { "m11ae" } else { "M1 1AE" },
        )
        .unwrap();
    }
    w.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn write_users_xlsx(path: &Path, rows: u32) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name("Users").unwrap();
    for (c, h) in [
        "Action",
        "Customer",
        "User ID",
        "First Name",
        "Last Name",
        "Email",
        "Type",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for r in 1..=rows {
        let i = r as usize;
        ws.write_string(r, 0, "add").unwrap();
        ws.write_string(r, 1, format!("C{:05}", i / 20)).unwrap();
        ws.write_string(r, 3, format!("First{i}")).unwrap();
        ws.write_string(r, 4, format!("Last{i}")).unwrap();
        ws.write_string(r, 5, format!("user{i}@company{}.example", i / 20))
            .unwrap();
        ws.write_string(r, 6, if i % 10 == 0 { "admin" } else { "standard" })
            .unwrap();
    }
    book.save(path).unwrap();
}

fn best_of<F: FnMut() -> u64>(runs: usize, mut f: F) -> (Duration, u64) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..runs {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed());
    }
    (best, out)
}

fn validate(path: &Path) -> u64 {
    let mut v = Validator::new();
    let mut rows = 0;
    for mut sheet in intake::open(path, None).unwrap() {
        rows += v.check_sheet(&mut sheet).unwrap().rows;
    }
    let out = v.finish();
    assert_eq!(
        out.findings.errors(),
        0,
        "{:?}",
        out.findings.items().first()
    );
    rows
}

fn main() {
    let rows: usize = support::rows_arg(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let csv_path = dir.path().join("customers.csv");
    let bytes = write_customers_csv(&csv_path, rows);
    println!("Customers CSV: {rows} rows, {:.0} MB", bytes as f64 / 1e6);

    // The two are timed in turns, five rounds, and each keeps its best: a machine shared with
    // others slows whole stretches of time, and turns spread that over both.
    let bare_parse = || {
        let mut r = csv::ReaderBuilder::new().from_path(&csv_path).unwrap();
        let mut rec = csv::ByteRecord::new();
        let mut n = 0u64;
        while r.read_byte_record(&mut rec).unwrap() {
            n += 1;
        }
        n
    };
    let (mut bare, mut validated, mut cpu) = (Duration::MAX, Duration::MAX, None::<f64>);
    let mut records = 0;
    let mut peak = None;
    for _ in 0..5 {
        let (b, n) = best_of(1, bare_parse);
        bare = bare.min(b);
        records = n;
        let before = support::cpu_seconds();
        let (v, n) = best_of(1, || validate(&csv_path));
        if let (Some(after), Some(before)) = (support::cpu_seconds(), before) {
            cpu = Some(cpu.map_or(after - before, |c| c.min(after - before)));
        }
        validated = validated.min(v);
        assert_eq!(n as usize, rows);
        peak = peak.or_else(support::peak_rss_mb);
    }
    assert_eq!(records as usize, rows);
    let ratio = validated.as_secs_f64() / bare.as_secs_f64();
    println!(
        "  bare csv parse {:.3} s, plbulk validate {:.3} s: {ratio:.2}x (target <= 3x){}",
        bare.as_secs_f64(),
        validated.as_secs_f64(),
        if ratio <= 3.0 { "" } else { "  MISSED" }
    );
    if let Some(cpu) = cpu {
        // Reading runs on a thread of its own, beside the checks: wall time is what the user
        // waits, CPU time what both threads together spent (the least of the five runs).
        println!(
            "  plbulk validate CPU time {cpu:.2} s on two threads: {:.2}x the bare parse's wall time",
            cpu / bare.as_secs_f64()
        );
    }
    if let Some(p) = peak {
        println!(
            "  peak memory {p:.0} MB (target <= 300 MB){}",
            if p <= 300.0 { "" } else { "  MISSED" }
        );
    }

    let users = (rows / 10) as u32;
    let xlsx_path = dir.path().join("users.xlsx");
    write_users_xlsx(&xlsx_path, users);
    println!(
        "Users XLSX: {users} rows, {:.1} MB",
        std::fs::metadata(&xlsx_path).unwrap().len() as f64 / 1e6
    );
    let (bare, cells) = best_of(3, || {
        let mut book = open_workbook_auto(&xlsx_path).unwrap();
        let range = book.worksheet_range("Users").unwrap();
        range.used_cells().count() as u64
    });
    assert!(cells > 0);
    let (validated, n) = best_of(3, || validate(&xlsx_path));
    assert_eq!(n, users as u64);
    let ratio = validated.as_secs_f64() / bare.as_secs_f64();
    println!(
        "  bare calamine read {:.3} s, plbulk validate {:.3} s: {ratio:.2}x (target <= 1.5x){}",
        bare.as_secs_f64(),
        validated.as_secs_f64(),
        if ratio <= 1.5 { "" } else { "  MISSED" }
    );
}
