//! Kill a real plbulk process at random instants, resume it each time, and check the account
//! ends exactly as one clean run would leave it: nothing twice, nothing missing, every row
//! final, the journal sound after every kill, the limit never exceeded, and no secret written.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use plbulk::journal::{Journal, RowState};
use rand::{Rng, SeedableRng};

/// The limit both the sandbox enforces and the job paces to: slow enough that the job spans
/// the kills, fast enough for a test. A 2 s window gives the pacer 20 ms of slack for a request
/// to reach the server, which a loaded 2-core machine needs.
const RATE: &str = "30/2s";
const RATE_N: usize = 30;
const WINDOW: Duration = Duration::from_secs(2);

#[test]
fn killed_twenty_times_and_resumed_the_account_is_exactly_right() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(
        dir.path(),
        RATE,
        &[
            "--fail-rate",
            "0.05",
            "--drop-rate",
            "0.02",
            "--latency-ms",
            "5-60",
            "--seed",
            "11",
            "--token-ttl",
            "20s",
        ],
    );
    let job = mixed_job(dir.path(), "mixed.xlsx", 24, 0);
    assert!(job.rows >= 300, "{} rows", job.rows);
    let data = dir.path().join("data");
    let jobs = dir.path().join("jobs");
    let results = dir.path().join("mixed.results.xlsx");
    let log = dir.path().join("stderr.log");

    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::env::var("PLBULK_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20261128),
    );
    let mut kills = 0;
    let mut runs = 0;
    let mut finished = false;
    while kills < 20 {
        runs += 1;
        let mut cmd = sandbox.plbulk(&data);
        if runs % 2 == 1 {
            cmd.arg("run")
                .arg(&job.path)
                .args(["--rate", RATE, "--timeout", "1s", "--concurrency", "6"])
                .arg("--results")
                .arg(&results);
        } else {
            cmd.arg("resume");
        }
        cmd.arg("--job-dir").arg(&jobs).arg("-v");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap();
        let mut p = Proc(child);
        let delay = Duration::from_millis(rng.random_range(150..1500));
        let start = Instant::now();
        let mut exited = None;
        while start.elapsed() < delay {
            if let Some(s) = p.0.try_wait().unwrap() {
                exited = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(s) = exited {
            // It finished before the kill: the job is done.
            assert!(matches!(s.code(), Some(0) | Some(1)), "exit {s:?}");
            finished = true;
            break;
        }
        p.0.kill().unwrap(); // SIGKILL: no chance to clean up.
        p.0.wait().unwrap();
        kills += 1;
        if jobs.exists() && std::fs::read_dir(&jobs).unwrap().next().is_some() {
            let j = Journal::open(&journal_path(&jobs)).unwrap();
            assert_eq!(j.integrity_check().unwrap(), "ok", "after kill {kills}");
        }
    }
    assert!(
        kills >= 20 || finished,
        "only {kills} kills before the job finished"
    );
    assert!(
        kills >= 20,
        "the job finished after only {kills} kills: slow it down"
    );

    // Now let it finish.
    let out = run(sandbox
        .plbulk(&data)
        .arg("resume")
        .arg("--job-dir")
        .arg(&jobs)
        .arg("-v"));
    let stderr_final = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        matches!(out.status.code(), Some(0)),
        "final resume: {}",
        text(&out)
    );

    let journal = Journal::open(&journal_path(&jobs)).unwrap();
    assert_eq!(journal.integrity_check().unwrap(), "ok");
    let counts = journal.counts().unwrap();
    assert!(
        counts.iter().all(|(s, _)| *s == RowState::Succeeded),
        "every row succeeded: {counts:?}"
    );
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    assert_eq!(total as usize, job.rows);

    let (state, sizes) = canonical(&sandbox.state());
    assert_eq!(state.customers, job.expected.customers);
    assert_eq!(state.users, job.expected.users);
    assert_eq!(state.numbers, job.expected.numbers);
    assert_eq!(state.blocked, job.expected.blocked);
    assert_eq!(state.devices, job.expected.devices);
    assert_eq!(state.settings, job.expected.settings);
    assert_eq!(
        state.orders, job.expected.orders,
        "no order twice, none missing"
    );
    assert_eq!(state.partner_users, job.expected.partner_users);
    // Sets hide duplicates; the raw counts do not.
    assert_eq!(sizes["customers"], job.expected.customers.len());
    assert_eq!(sizes["users"], job.expected.users.len());
    assert_eq!(sizes["numbers"], job.expected.numbers.len());
    assert_eq!(sizes["blocked"], job.expected.blocked.len());
    assert_eq!(sizes["devices"], job.expected.devices.len());
    assert_eq!(sizes["partnerUsers"], job.expected.partner_users.len());

    // The limit held in every window, across every kill and resume.
    let log_entries = sandbox.requests();
    let limited: Vec<_> = log_entries.iter().filter(|e| e.status == 429).collect();
    assert!(limited.is_empty(), "429s: {limited:?}");
    let busiest = plbulk::sandbox::busiest_window(&log_entries, &sandbox.key, WINDOW);
    assert!(busiest <= RATE_N, "{busiest} calls in one window");
    assert!(
        log_entries.iter().any(|e| e.dropped),
        "the run met at least one dropped answer"
    );

    // No secret and no token anywhere: journal, results, logs.
    let mut files = files_under(&jobs);
    files.extend(files_under(&data));
    files.push(results.clone());
    files.push(log.clone());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(&sandbox.secret),
            "the secret is in {}",
            f.display()
        );
        assert!(!hay.contains("eyJ"), "a JWT is in {}", f.display());
    }
    assert!(!stderr_final.contains(&sandbox.secret));
    eprintln!(
        "{kills} kills over {runs} runs; {} requests",
        log_entries.len()
    );
}
