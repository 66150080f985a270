//! Engine benchmark: `cargo bench --bench engine` (add `-- --rows N` for the run/resume size).
//!
//! Measures, in one run on one machine, what the job engine promises:
//! - utilisation: a 1,000-row mixed job against the in-process sandbox with 100-200 ms latency
//!   at a limit of 100 calls per 1 s, 100 in flight: the time from first call to last against
//!   a perfect pacer's for the same calls (target at least 98%), with no 429; also the quietest
//!   and average window (`-- --histogram` adds calls per 250 ms);
//! - calls per row and per write on that job, pre-flight included (look-ups amortised);
//! - from `run` on a 100,000-row Customers CSV to the first API call (target 2 s), and from a
//!   resume of its 100,000-row journal to the first call (target 0.5 s);
//! - journal bookkeeping per row (intent, outcome, ids, final state, each committed with
//!   `synchronous=FULL`), target at most 1 ms.

mod support;

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plbulk::client::credentials::Source;
use plbulk::client::{Credentials, Settings};
use plbulk::engine::{Existing, Finish};
use plbulk::job::{self, Connection, JobOptions};
use plbulk::journal::{Answer, AttemptResult, Journal};
use plbulk::model::RowState;
use plbulk::pacing::Rate;
use plbulk::sandbox::{Latency, Sandbox, SandboxConfig, DEFAULT_KEY, DEFAULT_SECRET};

fn options(dir: &Path, rate: Rate, concurrency: usize) -> JobOptions {
    JobOptions {
        kind: None,
        sandbox: false,
        results: dir.join("results.xlsx"),
        concurrency,
        rate,
        existing: Existing::Skip,
        skip_invalid: false,
        timeout_ms: 30_000,
        undo_of: None,
        force: false,
        max_outage_ms: None,
        rehearsal: None,
        map: None,
        one_shot: false,
    }
}

fn settings(url: &str) -> Settings {
    Settings {
        base_url: url.to_string(),
        credentials: Some((
            Credentials::new(DEFAULT_KEY, DEFAULT_SECRET),
            Source::Environment,
        )),
    }
}

/// Runs a job until it completes, or, with `stop_after_first`, until shortly after its first
/// call. Returns how it finished.
async fn execute(
    job: &job::JobRef,
    journal: Arc<Journal>,
    conn: &Connection,
    opts: &JobOptions,
    sandbox: &Sandbox,
    stop_after_first: bool,
) -> Finish {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let seen = sandbox.requests().len();
    let log = sandbox.url();
    let watcher = tokio::spawn(async move {
        if !stop_after_first {
            return;
        }
        let client = reqwest::Client::new();
        loop {
            let n: Vec<serde_json::Value> = client
                .get(format!("{log}/__sandbox/requests"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if n.len() > seen {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = tx.send(true);
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let f = job::execute(job, journal, conn.look.clone(), opts, rx, Arc::new(()))
        .await
        .unwrap();
    watcher.abort();
    f
}

fn write_customers_csv(path: &Path, rows: usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "Company Name,Email,Plan,Contract Months").unwrap();
    for i in 0..rows {
        writeln!(w, "Company {i} Ltd,ops{i}@c{i}.example,pro,12").unwrap();
    }
    w.flush().unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let big: usize = support::rows_arg(100_000);
    let dir = tempfile::tempdir().unwrap();
    // The call budget lives in the data folder: a private one for the benchmark.
    std::env::set_var("PLBULK_DATA_DIR", dir.path().join("data"));

    // --- Utilisation and calls per row -------------------------------------------------------
    let rate = Rate::new(100, Duration::from_secs(1));
    let sandbox = Sandbox::start(SandboxConfig {
        rate,
        latency: Latency {
            min: Duration::from_millis(100),
            max: Duration::from_millis(200),
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let mixed = common::mixed_job(dir.path(), "mixed.xlsx", 77, 0);
    let opts = options(dir.path(), rate, 100);
    let plbulk::pipeline::Planned { inputs, plan } =
        plbulk::pipeline::read(std::slice::from_ref(&mixed.path), None, None).plan();
    let writes: u64 = plan.calls().iter().map(|(_, n)| n).sum();
    let conn = Connection::open(&opts, Some(&settings(&sandbox.url())), None)
        .await
        .unwrap();
    // The pre-flight is part of a run: its List calls count as calls per write (not in the
    // utilisation, which is about the writes).
    let online = plbulk::preflight::check(&inputs, &plan, &conn.look, None)
        .await
        .unwrap();
    assert!(online
        .findings
        .iter()
        .all(|(_, f)| f.severity != plbulk::findings::Severity::Error));
    let preflight_calls = sandbox.requests().len();
    let fp = plbulk::plan::fingerprint(std::slice::from_ref(&mixed.path)).unwrap();
    let (job_ref, journal) = job::create(
        &dir.path().join("jobs"),
        fp,
        &opts,
        &plan,
        &conn.base_url,
        &conn.key_id,
    )
    .unwrap();
    let started = Instant::now();
    let f = execute(&job_ref, journal.clone(), &conn, &opts, &sandbox, false).await;
    let wall = started.elapsed();
    assert_eq!(f, Finish::Completed);
    let counts = journal.counts().unwrap();
    assert!(
        counts.iter().all(|(s, _)| *s == RowState::Succeeded),
        "{counts:?}"
    );
    let all = sandbox.requests();
    let log = &all[preflight_calls..];
    let limited = all.iter().filter(|e| e.status == 429).count();
    if args.iter().any(|a| a == "--histogram") {
        let t0 = log.iter().map(|e| e.t_ms).min().unwrap();
        let mut per_second = std::collections::BTreeMap::new();
        for e in log {
            *per_second.entry((e.t_ms - t0) / 250).or_insert(0) += 1;
        }
        println!("calls per 250 ms: {per_second:?}");
    }
    let mut times: Vec<u64> = log.iter().map(|e| e.t_ms).collect();
    times.sort_unstable();
    let span_s = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
    let n = rate.count as f64;
    let calls = log.len() as f64;
    // Every window of the limit's length that starts at a call and ends before the last call:
    // the quietest of them says how much of the limit the job used while it had work.
    let w = rate.window.as_millis() as u64;
    let last = times[times.len() - 1];
    let mut quietest = usize::MAX;
    let mut sum = 0usize;
    let mut windows = 0usize;
    let mut end = 0;
    for (i, &t) in times.iter().enumerate() {
        if t + w > last {
            break;
        }
        while end < times.len() && times[end] < t + w {
            end += 1;
        }
        quietest = quietest.min(end - i);
        sum += end - i;
        windows += 1;
    }
    // A perfect pacer sends N at once and then N a (widened) window later, again and again:
    // the job's time from first call to last against that one's is the share of the limit used.
    let ideal_span =
        ((calls as u64 - 1) / rate.count as u64) as f64 * rate.paced_window().as_secs_f64();
    println!(
        "utilisation: {} rows, {} calls in {:.2} s from first to last ({:.1} s wall), where a perfect pacer at the limit takes {:.2} s: {:.1}% of the limit (target >= 98%); quietest {} window {:.0}%, average {:.1}%; {} 429s (target 0)",
        mixed.rows,
        log.len(),
        span_s,
        wall.as_secs_f64(),
        ideal_span,
        100.0 * ideal_span / span_s,
        rate,
        100.0 * quietest as f64 / n,
        100.0 * sum as f64 / windows as f64 / n,
        limited
    );
    println!(
        "calls per row: {:.3} ({} calls, {} of them the pre-flight's, / {} rows); calls per write: {:.3} ({} writes the rows need; numbers added and allocated, and settings, take two)",
        all.len() as f64 / mixed.rows as f64,
        all.len(),
        preflight_calls,
        mixed.rows,
        all.len() as f64 / writes as f64,
        writes
    );
    conn.close().await;
    sandbox.stop().await;

    // --- From run to the first call, and from resume to the first call ---------------------
    let sandbox = Sandbox::start(SandboxConfig {
        rate: Rate::new(1000, Duration::from_secs(1)),
        ..Default::default()
    })
    .await
    .unwrap();
    let sandbox_started = Instant::now();
    let csv = dir.path().join("customers-100k.csv");
    write_customers_csv(&csv, big);
    let opts = options(dir.path(), Rate::new(1000, Duration::from_secs(1)), 8);
    let t0 = Instant::now();
    let plbulk::pipeline::Planned { inputs, plan } =
        plbulk::pipeline::read(std::slice::from_ref(&csv), None, None).plan();
    assert_eq!(inputs.errors(), 0);
    let fp = plbulk::plan::fingerprint(std::slice::from_ref(&csv)).unwrap();
    let conn = Connection::open(&opts, Some(&settings(&sandbox.url())), None)
        .await
        .unwrap();
    let (job_ref, journal) = job::create(
        &dir.path().join("jobs"),
        fp,
        &opts,
        &plan,
        &conn.base_url,
        &conn.key_id,
    )
    .unwrap();
    let prepared = t0.elapsed();
    let f = execute(&job_ref, journal, &conn, &opts, &sandbox, true).await;
    assert!(matches!(f, Finish::Interrupted(_)));
    let first = sandbox.requests().iter().map(|e| e.t_ms).min().unwrap();
    let to_first = Duration::from_millis(first).saturating_sub(t0.duration_since(sandbox_started));
    println!(
        "run to first call: {:.3} s for a {big}-row CSV ({:.3} s reading, validating, planning and journaling) (target <= 2 s)",
        to_first.as_secs_f64(),
        prepared.as_secs_f64()
    );
    conn.close().await;

    let before = sandbox.requests().len();
    let t1 = Instant::now();
    let journal = Arc::new(Journal::open(&job_ref.journal_path()).unwrap());
    let conn = Connection::open(&opts, Some(&settings(&sandbox.url())), None)
        .await
        .unwrap();
    let f = execute(&job_ref, journal.clone(), &conn, &opts, &sandbox, true).await;
    assert!(matches!(f, Finish::Interrupted(_)));
    let first = sandbox.requests()[before..]
        .iter()
        .map(|e| e.t_ms)
        .min()
        .unwrap();
    let to_first = Duration::from_millis(first).saturating_sub(t1.duration_since(sandbox_started));
    println!(
        "resume to first call: {:.3} s for a {big}-row journal (target <= 0.5 s)",
        to_first.as_secs_f64()
    );
    conn.close().await;
    sandbox.stop().await;

    // --- Journal bookkeeping per row -----------------------------------------------------------
    let rows = journal.rows().unwrap();
    let pending: Vec<i64> = rows
        .iter()
        .filter(|r| r.state == RowState::Pending)
        .map(|r| r.id)
        .take(2000)
        .collect();
    let t = Instant::now();
    for id in &pending {
        let a = journal
            .begin_attempt(*id, "create", "Add Customer")
            .unwrap();
        let made = format!("cus_{id}");
        journal
            .end_attempt(
                a,
                *id,
                &Answer {
                    content_type: None,
                    status: Some(201),
                    result: AttemptResult::Ok,
                    detail: None,
                    made: Some((plbulk::model::IdKind::Customer, &made)),
                    settled: true,
                },
            )
            .unwrap();
        journal
            .finish_row(*id, RowState::Succeeded, None, Some(201))
            .unwrap();
    }
    let per_row = t.elapsed().as_secs_f64() * 1000.0 / pending.len() as f64;
    println!(
        "journal bookkeeping: {per_row:.3} ms per row over {} rows (3 commits each: the intent with synchronous=FULL, the answer with the id made and the final state without waiting for the disk) (target <= 1 ms)",
        pending.len()
    );
}
