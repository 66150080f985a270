//! Kill a real plbulk process at random instants, resume it each time, and check the account
//! ends exactly as one clean run would leave it: nothing twice, nothing missing, every row
//! final, the journal sound after every kill, the limit never exceeded, and no secret written.
//!
//! The sandbox meanwhile answers 20% of writes with a gateway's 502/504 after applying them,
//! drops 3% of creates' answers, fails 5% of requests before applying them and lets 2% of
//! writes land after the client's timeout. The job adds a mixed onboarding and changes an
//! account that existed before it: updates, deletes, regrades, allocations, emails, and adds
//! into old customers.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use plbulk::journal::Journal;
use plbulk::model::RowState;
use rand::{Rng, SeedableRng};

/// The limit both the sandbox enforces and the job paces to: slow enough that the job spans
/// the kills, fast enough for a test. A 2 s window gives the pacer 20 ms of slack for a request
/// to reach the server, which a loaded 2-core machine needs.
const RATE: &str = "30/2s";
const RATE_N: usize = 30;
const WINDOW: Duration = Duration::from_secs(2);
const KILLS: usize = 15;
/// The faults of the run, as the sandbox's flags.
const FAULTS: [&str; 16] = [
    "--fail-rate",
    "0.05",
    "--drop-rate",
    "0.03",
    "--gateway-error-rate",
    "0.2",
    "--late-commit-rate",
    "0.02",
    "--late-commit-ms",
    "1500",
    "--latency-ms",
    "5-60",
    "--seed",
    "11",
    "--lost-rate",
    "0.01",
];
const OLD_COMPANIES: usize = 12;

/// The operations whose requests only read: the List calls that reconciling costs.
fn is_list(e: &plbulk::sandbox::LogEntry) -> bool {
    plbulk::contract::Operation::route(&e.method, &e.path)
        .is_some_and(|op| op.method() == plbulk::contract::Method::Get && !op.is_write())
}

/// Runs the job once without a kill, on a sandbox with `faults`: the calls it takes, for the
/// note's figure of what reconciling costs. Only with `PLBULK_CRASH_BASELINE=1`.
fn baseline(dir: &std::path::Path, files: &[&std::path::Path], label: &str, faults: &[&str]) {
    let dir = &dir.join(label);
    std::fs::create_dir_all(dir).unwrap();
    let state = old_account(dir, OLD_COMPANIES);
    let mut flags = vec!["--state", state.to_str().unwrap()];
    flags.extend_from_slice(faults);
    let sandbox = StandaloneSandbox::start(dir, "200/s", &flags);
    let out = run(sandbox
        .plbulk(&dir.join("data"))
        .arg("run")
        .args(files)
        .args(["--rate", "200/s", "--timeout", "1s", "-q"])
        .arg("--job-dir")
        .arg(dir.join("jobs")));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let log = sandbox.requests();
    eprintln!(
        "{label}: {} requests, {} of them List calls",
        log.len(),
        log.iter().filter(|e| is_list(e)).count()
    );
}

#[test]
fn killed_fifteen_times_under_faults_and_resumed_the_account_is_exactly_right() {
    let dir = tempfile::tempdir().unwrap();
    let old = old_account(dir.path(), OLD_COMPANIES);
    let flags = [
        &["--state", old.to_str().unwrap(), "--token-ttl", "20s"][..],
        &FAULTS[..],
    ]
    .concat();
    let sandbox = StandaloneSandbox::start(dir.path(), RATE, &flags);
    let setup_requests = sandbox.requests().len();
    let job = mixed_job(dir.path(), "mixed.xlsx", 24, 0);
    let changes = changes_job(dir.path(), "changes.xlsx", OLD_COMPANIES);
    assert!(job.rows >= 300, "{} rows", job.rows);
    if std::env::var_os("PLBULK_CRASH_BASELINE").is_some() {
        let files = [job.path.as_path(), changes.path.as_path()];
        baseline(dir.path(), &files, "clean", &[]);
        baseline(dir.path(), &files, "faults, no kill", &FAULTS);
    }
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
    while kills < KILLS {
        runs += 1;
        let mut cmd = sandbox.plbulk(&data);
        let started = jobs.exists()
            && std::fs::read_dir(&jobs)
                .unwrap()
                .flatten()
                .any(|e| e.path().join("journal.sqlite").exists());
        // Until a kill has left a job to resume, every try is a run.
        if runs % 2 == 1 || !started {
            cmd.arg("run")
                .arg(&job.path)
                .arg(&changes.path)
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
        // The first run lists the account (the pre-flight, some 40 paced calls) before it
        // makes its job: a kill in there loses nothing and tests nothing new.
        let delay = if started {
            Duration::from_millis(rng.random_range(150..1500))
        } else {
            Duration::from_millis(rng.random_range(4000..6000))
        };
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
            assert!(
                matches!(s.code(), Some(0) | Some(1)),
                "exit {s:?}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            finished = true;
            break;
        }
        p.0.kill().unwrap(); // SIGKILL: no chance to clean up.
        p.0.wait().unwrap();
        kills += 1;
        let made = jobs.exists()
            && std::fs::read_dir(&jobs)
                .unwrap()
                .flatten()
                .any(|e| e.path().join("journal.sqlite").exists());
        if made {
            let j = Journal::open(&journal_path(&jobs)).unwrap();
            assert_eq!(j.integrity_check().unwrap(), "ok", "after kill {kills}");
        }
    }
    assert!(
        kills >= KILLS && !finished,
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
        matches!(out.status.code(), Some(0 | 1)),
        "final resume: {}",
        text(&out)
    );

    let journal = Journal::open(&journal_path(&jobs)).unwrap();
    assert_eq!(journal.integrity_check().unwrap(), "ok");
    let sheets = journal.sheets().unwrap();
    let rows = journal.result_rows().unwrap();
    assert_eq!(rows.len(), job.rows + changes.rows);
    // Every row succeeded, but for what cannot be established after a doubt: a device whose
    // MAC was taken when it was sent again (the contract lists no devices), and an email.
    let mut review = 0;
    for r in &rows {
        let sheet = sheets[r.sheet as usize].sheet.as_str();
        let email_row = sheet == "Users"
            && r.cells
                .iter()
                .any(|c| c == "resend-activation" || c == "reset-password");
        match r.state {
            RowState::Succeeded => {}
            RowState::NeedsReview if sheet == "Devices" || email_row => review += 1,
            other => {
                let cid = r.ids.get(plbulk::model::IdKind::Customer).unwrap_or("-");
                let trail: Vec<String> = sandbox
                    .requests()
                    .iter()
                    .filter(|e| e.path.contains(cid))
                    .map(|e| {
                        format!(
                            "{} {} {} {} {:?} {}",
                            e.t_ms, e.method, e.path, e.status, e.fault, e.dropped
                        )
                    })
                    .collect();
                panic!(
                    "{sheet} row {} ended {other:?}: {:?} {:?}\n{}",
                    r.row_no,
                    r.detail,
                    r.ids,
                    trail.join("\n")
                )
            }
        }
    }

    let account = sandbox.state();
    let expected = job.expected.merged(changes.expected);
    let (state, sizes) = canonical(&account);
    assert_eq!(state.customers, expected.customers);
    assert_eq!(state.users, expected.users);
    assert_eq!(state.numbers, expected.numbers);
    assert_eq!(state.blocked, expected.blocked);
    assert_eq!(state.devices, expected.devices);
    assert_eq!(state.settings, expected.settings);
    assert_eq!(
        state.orders, expected.orders,
        "no order twice, none missing"
    );
    assert_eq!(state.partner_users, expected.partner_users);
    // Sets hide duplicates; the raw counts do not.
    assert_eq!(sizes["customers"], expected.customers.len());
    assert_eq!(sizes["users"], expected.users.len());
    assert_eq!(sizes["numbers"], expected.numbers.len());
    assert_eq!(sizes["blocked"], expected.blocked.len());
    assert_eq!(sizes["devices"], expected.devices.len());
    assert_eq!(sizes["partnerUsers"], expected.partner_users.len());
    // No email went twice; one whose row succeeded went once.
    let sent = account["emails"].as_array().cloned().unwrap_or_default();
    for (user, kind) in &changes.emails {
        let n = sent
            .iter()
            .filter(|e| e["email"] == user.as_str() && e["kind"] == *kind)
            .count();
        assert!(n <= 1, "{kind} to {user} went {n} times");
        let row = rows
            .iter()
            .find(|r| {
                r.cells.iter().any(|c| c == user) && r.cells.iter().any(|c| c.contains(&kind[..5]))
            })
            .unwrap();
        if row.state == RowState::Succeeded {
            assert_eq!(n, 1, "{kind} to {user}: the row succeeded");
        }
    }

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
    for fault in [
        plbulk::sandbox::Injected::Gateway,
        plbulk::sandbox::Injected::Late,
        plbulk::sandbox::Injected::Fail,
    ] {
        assert!(
            log_entries.iter().any(|e| e.fault == Some(fault)),
            "the run met at least one {} fault",
            fault.name()
        );
    }

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
    let job_log = &log_entries[setup_requests..];
    eprintln!(
        "{kills} kills over {runs} runs; {} requests, {} of them List calls; {} gateway faults, {} dropped, {} failed, {} late; {review} rows need review",
        job_log.len(),
        job_log.iter().filter(|e| is_list(e)).count(),
        job_log.iter().filter(|e| e.fault == Some(plbulk::sandbox::Injected::Gateway)).count(),
        job_log.iter().filter(|e| e.dropped).count(),
        job_log.iter().filter(|e| e.fault == Some(plbulk::sandbox::Injected::Fail)).count(),
        job_log.iter().filter(|e| e.fault == Some(plbulk::sandbox::Injected::Late)).count(),
    );
}
