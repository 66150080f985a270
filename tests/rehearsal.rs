//! Rehearsals as a partner has them (issue 19, items 4, 5 and 17): one rehearsal account per
//! data folder that every `--sandbox` verb reads or writes, kept after every write so that a
//! killed rehearsal resumes (or is abandoned and undone) on an account that agrees with its
//! journal, held by one process at a time, shown by `sandbox status` and emptied by `sandbox
//! reset`; `--sandbox-fresh` for a run on an empty account of its own. The real binary, each
//! test in a data folder of its own, so no two tests share a rehearsal account.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn go(dir: &Path, args: &[&str]) -> Output {
    run(rehearsing(dir).args(args))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A Customers CSV of `n` companies named after `tag`, written in `dir`.
fn customers(dir: &Path, n: usize, tag: &str) -> PathBuf {
    let mut s = String::from("Ref,Company Name,Email,Plan,Contract Months\n");
    for i in 0..n {
        s.push_str(&format!(
            "C{i},{tag} {i} Ltd,it@{}{i}.example,pro,12\n",
            tag.to_lowercase()
        ));
    }
    let path = dir.join(format!("{tag}.csv"));
    std::fs::write(&path, s).unwrap();
    path
}

fn account_status(dir: &Path) -> Value {
    let out = go(dir, &["sandbox", "status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn account_customers(dir: &Path) -> u64 {
    account_status(dir)["counts"]["customers"].as_u64().unwrap()
}

/// The company names in an account file.
fn companies_in(file: &Path) -> Vec<String> {
    let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let mut names: Vec<String> = v["customers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["companyName"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn job_ids(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("data").join("jobs")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("journal.sqlite").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

fn status_json(dir: &Path, id: &str) -> Value {
    let out = go(dir, &["status", id, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Starts a slow rehearsal of `file` (extra flags: `--sandbox` or `--sandbox-fresh`), waits
/// until `done` of its rows have succeeded, and gives it back running with its job's id.
fn slow_rehearsal(dir: &Path, file: &Path, flags: &[&str], done: u64) -> (Proc, String) {
    let known = job_ids(dir);
    let child = Proc(
        rehearsing(dir)
            .arg("run")
            .arg(file)
            .args(flags)
            .args(["--rate", "4/s", "--timeout", "2s", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the rehearsal sent no write");
        if let Some(id) = job_ids(dir).into_iter().find(|i| !known.contains(i)) {
            let out = go(dir, &["status", &id, "--json"]);
            if out.status.success() {
                let s: Value = serde_json::from_slice(&out.stdout).unwrap();
                if s["outcomes"]["succeeded"].as_u64() >= Some(done) {
                    return (child, id);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn signal(child: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Reported: "a users file naming customers of an earlier rehearsal cannot be rehearsed
/// (customer cus_000001 is neither in this job nor in the account)". Rehearsals share the
/// data folder's account; `--sandbox-fresh` does not see it.
#[test]
fn a_rehearsal_sees_what_an_earlier_one_made_and_a_fresh_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = customers(d, 1, "Acme");
    let out = go(
        d,
        &[
            "run",
            first.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = sheet_rows(&d.join("Acme.results.xlsx"), "Customers");
    let col = results[0]
        .iter()
        .position(|h| h == "Customer ID (result)")
        .unwrap();
    let id = results[1][col].clone();
    assert!(id.starts_with("cus_"), "{results:?}");

    let users = d.join("users.csv");
    std::fs::write(
        &users,
        format!("Customer,First Name,Last Name,Email\n{id},Ann,Lee,ann@acme.example\nAcme 0 Ltd,Bob,Ray,bob@acme.example\n"),
    )
    .unwrap();
    let out = go(
        d,
        &[
            "run",
            users.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("2 succeeded"), "{}", text(&out));
    let s = account_status(d);
    assert_eq!(s["counts"]["customers"], 1, "{s}");
    assert_eq!(s["counts"]["users"], 2, "{s}");

    // One run on an empty account of its own: the shared account's customer is not there,
    // and what the fresh run makes stays out of the shared account.
    let out = go(
        d,
        &[
            "run",
            users.to_str().unwrap(),
            "--sandbox-fresh",
            "--new-job",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stdout(&out).contains("neither in this job nor in the account"),
        "{}",
        text(&out)
    );
    let other = customers(d, 2, "Fresh");
    let out = go(
        d,
        &[
            "run",
            other.to_str().unwrap(),
            "--sandbox-fresh",
            "--rate",
            "100/s",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let fresh = job_ids(d).pop().unwrap();
    assert_eq!(
        companies_in(&d.join("data/jobs").join(&fresh).join("account.json")),
        ["Fresh 0 Ltd", "Fresh 1 Ltd"]
    );
    assert_eq!(account_customers(d), 1, "the shared account is untouched");
    // A resume runs on the account the job began on: --sandbox is not --sandbox-fresh.
    let out = go(
        d,
        &[
            "run",
            other.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(account_customers(d), 3);
}

/// Reported: "`export`, `validate --online`, `check` and `undo` refuse `--sandbox`, although
/// the message after a missing key says 'or rehearse with --sandbox'." Each reads (or, undo,
/// writes) the rehearsal account, and an export of it runs back changing nothing.
#[test]
fn every_verb_on_the_account_takes_sandbox_and_an_export_runs_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = customers(d, 2, "Export");
    let out = go(
        d,
        &[
            "run",
            file.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let made = job_ids(d).pop().unwrap();

    let out = go(d, &["check", "--sandbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("has 2 customers"), "{}", text(&out));

    let users = d.join("users.csv");
    std::fs::write(
        &users,
        "Customer,First Name,Last Name,Email\nExport 1 Ltd,Ann,Lee,ann@export.example\nNobody Ltd,Bob,Ray,bob@export.example\n",
    )
    .unwrap();
    let out = go(
        d,
        &[
            "validate",
            "--online",
            "--sandbox",
            "--no-report",
            "--rate",
            "100/s",
            users.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = stdout(&out);
    assert!(said.contains("\"Nobody Ltd\""), "{}", text(&out));
    assert!(!said.contains("\"Export 1 Ltd\""), "{}", text(&out));

    let exported = d.join("exported.xlsx");
    let out = go(
        d,
        &[
            "export",
            "customers",
            "--sandbox",
            "--rate",
            "100/s",
            "--out",
            exported.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = go(
        d,
        &[
            "run",
            exported.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("2 no change"), "{}", text(&out));
    assert_eq!(account_customers(d), 2);

    // Undo of a rehearsal, with the flag or without: on the account it ran on.
    let out = go(d, &["undo", &made, "--sandbox", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(account_customers(d), 0);

    // Without credentials, a real run's message names the rehearsal as the way on, and it is
    // one.
    let out = go(d, &["export", "customers", "--out", "x.xlsx"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--sandbox"), "{}", text(&out));
}

/// A real job's undo is not rehearsed: `--sandbox` is refused, saying why, and nothing is
/// sent anywhere.
#[test]
fn undo_sandbox_of_a_real_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = StandaloneSandbox::start(d, "100/s", &[]);
    let file = customers(d, 1, "Real");
    let out = run(real
        .plbulk(&d.join("data"))
        .arg("run")
        .arg(&file)
        .args(["--rate", "100/s", "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = job_ids(d).pop().unwrap();
    let sent = real.requests().len();
    let out = run(real
        .plbulk(&d.join("data"))
        .args(["undo", &id, "--sandbox"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not on a rehearsal account") && err.contains(&real.url),
        "{}",
        text(&out)
    );
    assert_eq!(real.requests().len(), sent);
    assert_eq!(real.state()["customers"].as_array().unwrap().len(), 1);
}

/// Reported: "Two Ctrl-C on a rehearsal print 'Quit. Resume with: plbulk resume …'; then
/// resume refuses (its sandbox died with it), the job shows 'running' for ever, `abandon` says
/// undo will reverse it, and undo is refused." Killed by two SIGINTs or by SIGKILL, on the
/// shared account or a fresh one, the job is interrupted, resumes to every row succeeded
/// once, or is abandoned and undone.
#[cfg(unix)]
#[test]
fn a_killed_rehearsal_resumes_or_is_undone_on_its_kept_account() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 12;

    // Two Ctrl-Cs on the shared account, then resume.
    let file = customers(d, n, "Twice");
    let (child, id) = slow_rehearsal(d, &file, &["--sandbox"], 2);
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "-INT");
    let mut child = child;
    let code = child.0.wait().unwrap().code();
    assert_eq!(code, Some(3));
    let state = status_json(d, &id)["state"].clone();
    assert_eq!(state, "interrupted");
    let out = go(d, &["resume", &id, "--rate", "50/s", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = status_json(d, &id);
    assert_eq!(s["outcomes"]["succeeded"], n, "{s}");
    assert_eq!(account_customers(d), n as u64, "each row's customer once");

    // SIGKILL on the shared account: shown interrupted, not running; abandoned, then undone.
    let file = customers(d, n, "Killed");
    let (mut child, id) = slow_rehearsal(d, &file, &["--sandbox"], 3);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(status_json(d, &id)["state"], "interrupted");
    let jobs = stdout(&go(d, &["jobs"]));
    let line = jobs.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(line.contains("interrupted"), "{jobs}");
    let made = account_customers(d) - n as u64;
    let done = status_json(d, &id)["outcomes"]["succeeded"]
        .as_u64()
        .unwrap();
    assert!(
        made == done || made == done + 1,
        "the account holds what the journal says ({done}), and at most the write in doubt: {made}"
    );
    let out = go(d, &["abandon", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Rows whose write was under way when the job was given up are left to review (exit 1),
    // as for any abandoned job; what the job made is removed.
    let out = go(d, &["undo", &id, "-q"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let undo = job_ids(d)
        .into_iter()
        .find(|j| j.ends_with("-undo"))
        .unwrap();
    let u = status_json(d, &undo);
    assert_eq!(u["state"], "finished", "{u}");
    // A row killed after its answer was journaled (the id it made recorded) and before it
    // ended is undone by that record too: one more than the rows that succeeded.
    let undone = u["outcomes"]["succeeded"].as_u64().unwrap();
    assert!(
        undone == done || (undone == done + 1 && made == done + 1),
        "undone {undone}, succeeded {done}, made {made}: {u}"
    );
    assert_eq!(u["outcomes"]["failed"], 0, "{u}");
    assert_eq!(
        account_customers(d),
        n as u64 + made - undone,
        "the undo removed what the killed job recorded, and only that; a write in doubt is left for review"
    );

    // SIGKILL on a fresh account, then resume: its own account, each row once. The shared
    // account keeps what it holds now (with a write in doubt left for review, one more).
    let shared = account_customers(d);
    let file = customers(d, n, "Fresh");
    let (mut child, id) = slow_rehearsal(d, &file, &["--sandbox-fresh"], 3);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let out = go(d, &["resume", &id, "--rate", "50/s", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let names = companies_in(&d.join("data/jobs").join(&id).join("account.json"));
    let mut want: Vec<String> = (0..n).map(|i| format!("Fresh {i} Ltd")).collect();
    want.sort();
    assert_eq!(names, want);
    assert_eq!(
        account_customers(d),
        shared,
        "the shared account is untouched"
    );
}

/// One process at a time on the rehearsal account: a second rehearsal and a reset are refused
/// while a run has it, naming the job; `sandbox status` says who has it; once it is free,
/// `reset` empties it and says what it held.
#[test]
fn the_account_is_one_processs_and_reset_empties_it() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = customers(d, 1, "Kept");
    let out = go(
        d,
        &[
            "run",
            file.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let slow = customers(d, 20, "Slow");
    let (mut child, id) = slow_rehearsal(d, &slow, &["--sandbox"], 1);
    let s = account_status(d);
    assert_eq!(s["in_use"]["job"], id.as_str(), "{s}");
    assert_eq!(s["in_use"]["pid"], child.0.id(), "{s}");
    let out = go(d, &["sandbox", "status"]);
    assert!(
        stdout(&out).contains(&format!("of job {id}")),
        "{}",
        text(&out)
    );

    let other = customers(d, 1, "Second");
    let out = go(
        d,
        &[
            "run",
            other.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for want in [id.as_str(), "--sandbox-fresh", "in use"] {
        assert!(stderr(&out).contains(want), "{want}: {}", text(&out));
    }
    let out = go(d, &["sandbox", "reset"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains(&id), "{}", text(&out));
    assert!(account_status(d)["kept"] == true);

    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let before = account_customers(d);
    assert!(before >= 2, "{before}");
    let out = go(d, &["sandbox", "reset"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!("it held {before} customers")),
        "{}",
        text(&out)
    );
    let s = account_status(d);
    assert_eq!(s["kept"], false, "{s}");
    assert_eq!(s["counts"]["customers"], 0, "{s}");
    assert!(s["in_use"].is_null(), "{s}");
    // The next rehearsal starts on the empty account.
    let out = go(
        d,
        &[
            "run",
            other.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(account_customers(d), 1);
}

/// Issue 19, item 17: the contract does not require a partner user's role. The validator
/// accepts an add without one, a rehearsal makes it, and the standalone sandbox takes a body
/// without `role`.
#[test]
fn a_partner_user_without_a_role_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("partners.csv");
    std::fs::write(
        &file,
        "Action,First Name,Last Name,Email,Role\nadd,Ria,Khan,ria@partner.example,\n",
    )
    .unwrap();
    let out = go(
        d,
        &[
            "validate",
            file.to_str().unwrap(),
            "--kind",
            "partner-users",
            "--no-report",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = go(
        d,
        &[
            "run",
            file.to_str().unwrap(),
            "--kind",
            "partner-users",
            "--sandbox",
            "--rate",
            "100/s",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(account_status(d)["counts"]["partner_users"], 1);

    let sandbox = StandaloneSandbox::start(d, "100/s", &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = rt.block_on(async {
        let http = reqwest::Client::new();
        let auth: Value = http
            .post(format!("{}/auth", sandbox.url))
            .json(&serde_json::json!({"keyID": sandbox.key, "secret": sandbox.secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = auth["access_token"].as_str().unwrap().to_string();
        let resp = http
            .post(format!("{}/partner/users", sandbox.url))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "firstName": "Ria", "lastName": "Khan", "email": "ria@partner.example"
            }))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    assert_eq!(status, 201, "{body}");
}
