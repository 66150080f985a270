//! Bookkeeping benchmark: `cargo bench --bench bookkeeping` (add `-- --sizes 10000,100000` to
//! choose the job sizes; the default is 10,000, 100,000 and 1,000,000 rows).
//!
//! A long job must cost the same per row at its millionth row as at its first: the journal's
//! queries, the pacer's budget, the schedule and the progress all run once a row or once a
//! tick, and none may grow with the rows already done. For each size this runs a Customers job
//! from start to end against a `plbulk sandbox` process at an unbounded rate (1,000,000/s), so
//! that nothing waits on the limit and the engine's own work is all there is to see, and
//! prints per-row time and peak memory, then the ratios (targets: cost per row at 1M within
//! 1.5× of 10k; peak at 1M at most 300 MB).
//!
//! The journal is made through the real pipeline (a generated CSV read, validated, planned and
//! journaled by `pipeline::read` and `job::create`), so every row carries the work, cells and
//! dependencies a user's job would. It is made in this process; the job then runs in a child
//! process (this binary again, with `--job`), opening the journal as a resume does, with the
//! progress a terminal-less run prints every five seconds, so the child's peak memory is the
//! job's alone. The sandbox runs as a process of its own and its memory is read apart: it
//! holds every customer the job makes, which is the account's cost, not the job's.

mod support;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plbulk::client::credentials::Source;
use plbulk::client::{Credentials, Settings};
use plbulk::engine::{Existing, Finish};
use plbulk::job::{self, Connection, JobOptions};
use plbulk::journal::Journal;
use plbulk::model::RowState;
use plbulk::progress::Progress;
use plbulk::sandbox::{DEFAULT_KEY, DEFAULT_SECRET};

/// Fast enough that no call ever waits on the limit: what is left is the engine's own cost.
const RATE: &str = "1000000/s";
const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

fn options(dir: &Path) -> JobOptions {
    JobOptions {
        kind: None,
        sandbox: false,
        results: dir.join("results.xlsx"),
        concurrency: 8,
        rate: RATE.parse().unwrap(),
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

/// `--sizes 10000,100000` on the command line, or `PLBULK_BENCH_SIZES`, or all three.
fn sizes() -> Vec<usize> {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("PLBULK_BENCH_SIZES").ok());
    match given {
        Some(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("--sizes: {n:?} is not a number of rows"))
            })
            .collect(),
        None => SIZES.to_vec(),
    }
}

fn write_customers_csv(path: &Path, rows: usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "Company Name,Email,Plan,Contract Months").unwrap();
    for i in 0..rows {
        writeln!(w, "Company {i} Ltd,ops{i}@c{i}.example,pro,12").unwrap();
    }
    w.flush().unwrap();
}

/// A process's high-water mark of resident memory, in MB, read while it still runs.
fn peak_mb_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// What the child reports of its job.
#[derive(Debug, Default)]
struct Measured {
    /// From opening the journal to the engine's start (rows loaded, progress counted).
    start_s: f64,
    /// From opening the journal to the last row's end.
    run_s: f64,
    /// CPU time of the job's process over the run, user and system.
    cpu_s: f64,
    peak_mb: f64,
    /// Progress lines printed while it ran.
    ticks: usize,
}

struct Size {
    rows: usize,
    job: Measured,
    sandbox_mb: f64,
}

/// The sandbox, killed when dropped, so that a failed run leaves nothing listening.
struct SandboxProc(std::process::Child);

impl Drop for SandboxProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sandbox(dir: &Path) -> (SandboxProc, String) {
    let url_file = dir.join("sandbox.url");
    let child = Command::new(env!("CARGO_BIN_EXE_plbulk"))
        .args(["sandbox", "-q", "--listen", "127.0.0.1:0", "--rate", RATE])
        .arg("--url-file")
        .arg(&url_file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start plbulk sandbox");
    let proc = SandboxProc(child);
    let t = Instant::now();
    loop {
        if let Ok(url) = std::fs::read_to_string(&url_file) {
            if url.ends_with('\n') {
                return (proc, url.trim().to_string());
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the sandbox did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn measure(rows: usize) -> Size {
    let dir = tempfile::tempdir().unwrap();
    let (mut sandbox, url) = start_sandbox(dir.path());
    let csv = dir.path().join("customers.csv");
    write_customers_csv(&csv, rows);
    let opts = options(dir.path());
    let journal_path = {
        let plbulk::pipeline::Planned { inputs, plan } =
            plbulk::pipeline::read(std::slice::from_ref(&csv), None, None).plan();
        assert_eq!(inputs.errors(), 0);
        let fp = plbulk::plan::fingerprint(std::slice::from_ref(&csv)).unwrap();
        let (job_ref, _journal) = job::create(
            &dir.path().join("jobs"),
            fp,
            &opts,
            &plan,
            &url,
            DEFAULT_KEY,
        )
        .unwrap();
        job_ref.journal_path()
    };

    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--job")
        .arg(&journal_path)
        .arg(&url)
        // The call budget lives in the data folder: a private one for each run.
        .env("PLBULK_DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the job's process");
    let ticks = {
        let err = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            err.lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("progress:"))
                .count()
        })
    };
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut job = Measured::default();
    for line in out.lines().map_while(Result::ok) {
        let mut f = line.split_whitespace();
        if f.next() != Some("measured") {
            continue;
        }
        let mut num = || f.next().unwrap().parse::<f64>().unwrap();
        job.start_s = num();
        job.run_s = num();
        job.cpu_s = num();
        job.peak_mb = num();
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the job's process failed: {status}");
    job.ticks = ticks.join().unwrap();
    let sandbox_mb = peak_mb_of(sandbox.0.id()).unwrap_or(f64::NAN);
    let _ = sandbox.0.kill();
    Size {
        rows,
        job,
        sandbox_mb,
    }
}

/// The child: runs the job in `journal` against the sandbox at `url` to its end, and prints
/// what it measured on one line.
async fn run_job(journal: PathBuf, url: String) {
    let t0 = Instant::now();
    let cpu0 = support::cpu_seconds().unwrap_or(0.0);
    let job = job::JobRef {
        dir: journal.parent().unwrap().to_path_buf(),
        meta: plbulk::journal::peek(&journal).unwrap(),
    };
    let journal = Arc::new(Journal::open(&journal).unwrap());
    let opts = options(Path::new("."));
    let conn = Connection::open(&opts, Some(&settings(&url)), None)
        .await
        .unwrap();
    // stderr is a pipe: the progress prints a line every five seconds, as in a log.
    let board = plbulk::pipeline::Board::of_journal(&journal).unwrap();
    let progress = Progress::of_board(board, conn.calls.clone(), opts.rate, false);
    let ticker = progress.ticker();
    let start_s = t0.elapsed().as_secs_f64();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let finish = job::execute(
        &job,
        journal.clone(),
        conn.look.clone(),
        &opts,
        stop_rx,
        Arc::new(plbulk::pipeline::Relay(progress.clone())),
    )
    .await
    .unwrap();
    let run_s = t0.elapsed().as_secs_f64();
    let cpu_s = support::cpu_seconds().unwrap_or(f64::NAN) - cpu0;
    ticker.abort();
    progress.finish();
    assert_eq!(finish, Finish::Completed);
    let counts = journal.counts().unwrap();
    assert!(
        counts.iter().all(|(s, _)| *s == RowState::Succeeded),
        "{counts:?}"
    );
    let peak_mb = support::peak_rss_mb().unwrap_or(f64::NAN);
    conn.close().await;
    println!("measured {start_s} {run_s} {cpu_s} {peak_mb}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--job") {
        let journal = PathBuf::from(&args[i + 1]);
        let url = args[i + 2].clone();
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_job(journal, url));
        return;
    }
    let sizes = sizes();
    println!(
        "a Customers job at {RATE}, 8 in flight, against a plbulk sandbox process; the job in a process of its own"
    );
    println!(
        "{:>9}  {:>8}  {:>8}  {:>11}  {:>11}  {:>12}  {:>12}  {:>6}",
        "rows", "start s", "run s", "µs/row", "CPU µs/row", "job peak MB", "sandbox MB", "ticks"
    );
    let mut done: Vec<Size> = Vec::new();
    for rows in sizes {
        let s = measure(rows);
        println!(
            "{:>9}  {:>8.2}  {:>8.1}  {:>11.0}  {:>11.0}  {:>12.1}  {:>12.1}  {:>6}",
            s.rows,
            s.job.start_s,
            s.job.run_s,
            s.job.run_s * 1e6 / rows as f64,
            s.job.cpu_s * 1e6 / rows as f64,
            s.job.peak_mb,
            s.sandbox_mb,
            s.job.ticks
        );
        done.push(s);
    }
    let per_row = |s: &Size| s.job.run_s / s.rows as f64;
    let cpu_per_row = |s: &Size| s.job.cpu_s / s.rows as f64;
    let (Some(small), Some(big)) = (
        done.iter().min_by_key(|s| s.rows),
        done.iter().max_by_key(|s| s.rows),
    ) else {
        return;
    };
    if big.rows > small.rows {
        println!(
            "cost per row, {} rows against {}: {:.2}× wall, {:.2}× the job's CPU (target <= 1.5× for 1,000,000 against 10,000)",
            big.rows,
            small.rows,
            per_row(big) / per_row(small),
            cpu_per_row(big) / cpu_per_row(small)
        );
    }
    println!(
        "peak memory of the {}-row job: {:.1} MB (target <= 300 MB at 1,000,000 rows); the sandbox's, apart: {:.1} MB",
        big.rows, big.job.peak_mb, big.sandbox_mb
    );
}
