//! Results benchmark: `cargo bench --bench results` (add `-- --rows N` for another size).
//!
//! Writes the results workbook of a 100,000-row Customers job from its journal, and, in the
//! same run, the same cells with rust_xlsxwriter bare (one sheet, plain `write_string` and
//! `write_number`, nothing else): target at most 2x, with peak memory under 300 MB. Peak
//! memory is the high-water mark of resident memory while the results are written (reset
//! through /proc/self/clear_refs just before).

mod support;

use std::time::Instant;

use plbulk::journal::{InputFile, JobMeta, Journal};
use plbulk::model::{JobState, NewRow, RowState, SheetRec};

const HEADERS: [&str; 14] = [
    "Action",
    "Ref",
    "Customer ID",
    "Company Name",
    "Contact Name",
    "Email",
    "Phone",
    "Plan",
    "Contract Months",
    "Address Line 1",
    "Address Line 2",
    "Town",
    "County",
    "Postcode",
];

fn cells(i: usize) -> Vec<String> {
    vec![
        "add".into(),
        format!("C{i:07}"),
        String::new(),
        format!("Company {i} Trading Ltd"),
        format!("Contact Person {i}"),
        format!("ops{i}@company{i}.example"),
        format!("+44161496{:04}", i % 1000),
        "pro".into(),
        "12".into(),
        format!("{} High Street", i % 300 + 1),
        format!("Unit {}", i % 9 + 1),
        "Manchester".into(),
        "Greater Manchester".into(),
        "M1 1AE".into(),
    ]
}

fn state(i: usize) -> (RowState, Option<String>) {
    match i % 20 {
        0 => (
            RowState::Failed,
            Some("contractMonths: must be 1, 12, 24 or 36 (HTTP 422)".into()),
        ),
        1 => (
            RowState::Skipped,
            Some("Customers row 7 failed: conflict (HTTP 409)".into()),
        ),
        2 => (RowState::AlreadyExisted, None),
        _ => (RowState::Succeeded, None),
    }
}

fn main() {
    let n: usize = support::rows_arg(100_000);
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(&dir.path().join("journal.sqlite")).unwrap();
    let meta = JobMeta {
        id: "bench".into(),
        created_at_ms: 0,
        fingerprint: "x".into(),
        inputs: vec![InputFile {
            path: "customers.csv".into(),
            size: 0,
            hash: "0".into(),
        }],
        options: serde_json::json!({}),
        base_url: "http://127.0.0.1".into(),
        key_id: "k".into(),
        state: JobState::Finished,
        started_at_ms: None,
        finished_at_ms: None,
    };
    let sheets = [SheetRec {
        idx: 0,
        file: "customers.csv".into(),
        sheet: "Customers".into(),
        kind: "customers".into(),
        headers: HEADERS.iter().map(|h| h.to_string()).collect(),
    }];
    let rows: Vec<NewRow> = (0..n)
        .map(|i| {
            let (state, detail) = state(i);
            NewRow {
                sheet: 0,
                row_no: i as u32 + 2,
                task: None,
                cells: cells(i),
                work: None,
                deps: vec![],
                lead: None,
                state,
                detail,
            }
        })
        .collect();
    journal.init(&meta, &sheets, &rows).unwrap();
    drop(rows);

    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    plbulk::results::write(&journal, &dir.path().join("results.xlsx"), None).unwrap();
    let ours = t.elapsed().as_secs_f64();
    let peak = support::peak_rss_mb();

    // The same cells, bare: as rust_xlsxwriter writes by default, and in its constant-memory
    // mode (which the results use).
    let bare = |constant: bool| {
        let t = Instant::now();
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = if constant {
            wb.add_worksheet_with_constant_memory().unwrap()
        } else {
            wb.add_worksheet()
        };
        for (c, h) in HEADERS
            .iter()
            .chain(["Outcome", "Detail", "HTTP Status", "Attempts", "Finished"].iter())
            .enumerate()
        {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        for i in 0..n {
            let r = i as u32 + 1;
            for (c, v) in cells(i).iter().enumerate() {
                if !v.is_empty() {
                    ws.write_string(r, c as u16, v).unwrap();
                }
            }
            let (state, detail) = state(i);
            ws.write_string(r, 14, state.label()).unwrap();
            if let Some(d) = detail {
                ws.write_string(r, 15, d).unwrap();
            }
        }
        wb.save(dir.path().join("bare.xlsx")).unwrap();
        t.elapsed().as_secs_f64()
    };
    let default_mode = bare(false);
    let constant_mode = bare(true);
    let bare = default_mode.min(constant_mode);
    println!(
        "results of a {n}-row job: {ours:.2} s (journal read, Summary, styled sheet) vs bare rust_xlsxwriter {default_mode:.2} s (default mode) and {constant_mode:.2} s (constant memory): {:.2}x the faster (target <= 2x); peak memory while writing {} (target <= 300 MB)",
        ours / bare,
        peak.map_or("unknown".into(), |p| format!("{p:.0} MB"))
    );
}
