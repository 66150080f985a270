//! How runs and jobs end when something goes wrong under them, and what plbulk says then: an
//! input replaced while a run reads it, a journal that cannot be read, a process that died
//! without finishing, a terminal closed under a run, a temporary file left by a kill. The real
//! binary, on the in-process sandbox or a standalone one over loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A Customers CSV of `n` companies named after `tag`.
fn customers(n: usize, tag: &str) -> String {
    let mut s = String::from("Ref,Company Name,Email,Plan,Contract Months\n");
    for i in 0..n {
        s.push_str(&format!(
            "C{i},{tag} {i} Ltd,it@{}{i}.example,pro,12\n",
            tag.to_lowercase()
        ));
    }
    s
}

fn jobs_dir(dir: &Path) -> PathBuf {
    dir.join("jobs")
}

/// A verb about jobs (`status`, `jobs`, `resume`, …) with the jobs folder of `dir`.
fn about(dir: &Path, args: &[&str]) -> Output {
    run(rehearsing(dir)
        .args(args)
        .arg("--job-dir")
        .arg(jobs_dir(dir)))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ids of the job folders with a journal, oldest first.
fn job_ids(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(jobs_dir(dir)) else {
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

fn status_json(dir: &Path, id: &str) -> Option<Value> {
    let out = about(dir, &["status", id, "--json"]);
    if out.status.code() != Some(0) {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Waits until the one job in `dir` other than `known` has sent a write (so its run is well
/// under way), and returns its id.
fn wait_for_a_write(dir: &Path, known: &[String]) -> String {
    let mut id = None;
    wait_until("the job sent a write", 60, || {
        let Some(new) = job_ids(dir).into_iter().find(|i| !known.contains(i)) else {
            return false;
        };
        id = Some(new.clone());
        status_json(dir, &new).is_some_and(|s| s["writes_sent"].as_u64() >= Some(1))
    });
    id.unwrap()
}

/// Reported: "The input replaced between plbulk's read and its digest: the journal held the
/// old file's rows under the new file's digest, and a later `run` of the new file resumed the
/// old rows (298 customers from the wrong file)."
#[test]
fn a_job_records_the_digest_of_the_bytes_whose_rows_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("customers.csv");
    let (old, new) = (customers(3, "Old"), customers(5, "New"));
    std::fs::write(&input, &old).unwrap();
    let hold = d.join("hold");
    let mut child = Proc(
        rehearsing(d)
            .arg("run")
            .arg(&input)
            .args(["--sandbox", "--rate", "1/s", "-q", "--job-dir"])
            .arg(jobs_dir(d))
            .env(
                plbulk::failpoint::ENV,
                format!("read=wait:{}", hold.display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The run has read the file; replace it (as an editor's save does) before it goes on.
    wait_until("the run read its input", 60, || hold.exists());
    let staged = d.join("customers.csv.new");
    std::fs::write(&staged, &new).unwrap();
    std::fs::rename(&staged, &input).unwrap();
    std::fs::remove_file(&hold).unwrap();
    let first = wait_for_a_write(d, &[]);
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let s = status_json(d, &first).expect("the killed job reads back");
    assert_eq!(s["rows"], 3, "the job holds the old file's rows: {s}");
    let want = plbulk::intake::digest::of_bytes(old.as_bytes());
    assert_eq!(
        s["inputs"][0]["digest"],
        format!("{:016x}", want.hash),
        "the digest recorded is the old file's, whose rows the job holds: {s}"
    );
    assert_eq!(s["inputs"][0]["size"], old.len());

    // The new file is not the job's input: a run of it is a job of its own, with its rows.
    let out = run(rehearsing(d)
        .arg("run")
        .arg(&input)
        .args(["--sandbox", "--rate", "100/s", "--job-dir"])
        .arg(jobs_dir(d)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !stdout(&out).contains("unfinished job"),
        "the new file resumed the old file's job: {}",
        text(&out)
    );
    let ids = job_ids(d);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let second = ids.iter().find(|i| **i != first).unwrap();
    let s = status_json(d, second).unwrap();
    assert_eq!(s["rows"], 5, "{s}");
    assert_eq!(s["outcomes"]["succeeded"], 5, "{s}");
    let want = plbulk::intake::digest::of_bytes(new.as_bytes());
    assert_eq!(s["inputs"][0]["digest"], format!("{:016x}", want.hash));
    // The old job is left as it was.
    assert_eq!(status_json(d, &first).unwrap()["rows"], 3);
}

/// A finished job whose journal.sqlite is damaged: listed as unreadable, and `status`,
/// `resume` and `results` name the file, the error and what to do, rather than "no job".
#[test]
fn a_damaged_journal_is_named_with_its_error_not_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("customers.csv");
    std::fs::write(&input, customers(2, "Acme")).unwrap();
    let out = run(rehearsing(d)
        .arg("run")
        .arg(&input)
        .args(["--sandbox", "--rate", "100/s", "-q", "--job-dir"])
        .arg(jobs_dir(d)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = job_ids(d).pop().unwrap();
    let journal = jobs_dir(d).join(&id).join("journal.sqlite");
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes[..16].copy_from_slice(b"not a journal!!\0");
    std::fs::write(&journal, bytes).unwrap();

    let says_unreadable = |o: &Output, what: &str| {
        let err = stderr(o);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", text(o));
        assert!(!err.contains("no job \""), "{what}: {}", text(o));
        for part in [
            journal.display().to_string().as_str(),
            "cannot be read",
            "not a database",
            "backup",
            &id,
        ] {
            assert!(
                err.contains(part),
                "{what} does not say {part:?}: {}",
                text(o)
            );
        }
    };
    says_unreadable(&about(d, &["status", &id]), "status ID");
    says_unreadable(&about(d, &["status", &id, "--json"]), "status ID --json");
    says_unreadable(&about(d, &["status"]), "status");
    says_unreadable(&about(d, &["resume", &id]), "resume ID");
    says_unreadable(&about(d, &["results", &id]), "results ID");
    let out = about(d, &["resume"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("job {id}'s journal cannot be read")),
        "{}",
        text(&out)
    );

    let out = about(d, &["jobs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with(&id))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("jobs does not list {id}: {}", text(&out)));
    assert!(
        line.contains("unreadable") && line.contains("not a database"),
        "{line}"
    );
    let out = about(d, &["jobs", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = &v["jobs"][0];
    assert_eq!(listed["id"], id.as_str(), "{v}");
    let error = listed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not a database") && error.contains("journal.sqlite"),
        "{v}"
    );
}

/// Starts a job of `n` customers on the in-process sandbox at a rate slow enough to kill it
/// mid-way, waits until it has sent a write, and returns it running with its id.
fn slow_job(d: &Path, n: usize, tag: &str) -> (Proc, String) {
    let input = d.join(format!("{tag}.csv"));
    std::fs::write(&input, customers(n, tag)).unwrap();
    let known = job_ids(d);
    let child = Proc(
        rehearsing(d)
            .arg("run")
            .arg(&input)
            .args(["--sandbox", "--rate", "2/s", "-q", "--job-dir"])
            .arg(jobs_dir(d))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let id = wait_for_a_write(d, &known);
    (child, id)
}

/// Waits for `child` to end, and what it printed.
fn finish(mut child: Proc) -> Output {
    use std::io::Read;
    let status = child.0.wait().unwrap();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut o) = child.0.stdout.take() {
        o.read_to_end(&mut stdout).unwrap();
    }
    if let Some(mut e) = child.0.stderr.take() {
        e.read_to_end(&mut stderr).unwrap();
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A running job killed, and its journal's write-ahead log lost (deleted, or garbled: SQLite
/// then ignores it). The job's record went with it; its folder and lock are there.
#[test]
fn a_journal_whose_wal_is_lost_or_garbled_is_named_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (tag, damage) in [("Deleted", "delete"), ("Garbled", "garble")] {
        let (mut child, id) = slow_job(d, 8, tag);
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        let wal = jobs_dir(d).join(&id).join("journal.sqlite-wal");
        assert!(wal.exists(), "a killed job leaves its WAL");
        if damage == "delete" {
            std::fs::remove_file(&wal).unwrap();
        } else {
            let mut bytes = std::fs::read(&wal).unwrap();
            for b in bytes.iter_mut().take(4096) {
                *b ^= 0xa5;
            }
            std::fs::write(&wal, bytes).unwrap();
        }
        for args in [vec!["status", id.as_str()], vec!["resume", id.as_str()]] {
            let out = about(d, &args);
            let err = stderr(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{damage}, {args:?}: {}",
                text(&out)
            );
            assert!(
                !err.contains("no job \""),
                "{damage}, {args:?}: {}",
                text(&out)
            );
            for part in ["journal.sqlite", "cannot be read", "-wal", "backup"] {
                assert!(
                    err.contains(part),
                    "{damage}, {args:?} does not say {part:?}: {}",
                    text(&out)
                );
            }
        }
        let out = about(d, &["jobs"]);
        assert!(
            stdout(&out)
                .lines()
                .any(|l| l.starts_with(&id) && l.contains("unreadable")),
            "{damage}: {}",
            text(&out)
        );
        // Asking did not make it worse: it is as unreadable as before.
        let out = about(d, &["status", &id]);
        assert!(stderr(&out).contains("cannot be read"), "{}", text(&out));
    }
}

/// Reported: "A job whose process died shows running for ever." Killed, it is interrupted,
/// and a resume goes on; while it runs, `status` says running and the job is not disturbed.
#[test]
fn a_job_whose_process_died_is_interrupted_and_a_running_one_is_left_alone() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sandbox = StandaloneSandbox::start(d, "4/s", &[]);
    let input = d.join("died.csv");
    std::fs::write(&input, customers(12, "Died")).unwrap();
    let start = || {
        Proc(
            sandbox
                .plbulk(&d.join("data"))
                .arg("run")
                .arg(&input)
                .args(["--rate", "4/s", "-q", "--job-dir"])
                .arg(jobs_dir(d))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let mut child = start();
    let id = wait_for_a_write(d, &[]);

    // Running: said so, again and again, and the job goes on undisturbed.
    for _ in 0..10 {
        let out = about(d, &["status", &id]);
        assert!(stdout(&out).contains("state:    running"), "{}", text(&out));
        assert_eq!(status_json(d, &id).unwrap()["state"], "running");
        let out = about(d, &["jobs"]);
        let line = stdout(&out)
            .lines()
            .find(|l| l.starts_with(&id))
            .map(str::to_string)
            .unwrap();
        assert!(line.contains("running"), "{line}");
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let out = about(d, &["status", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!(
            "state:    interrupted (its process ended without finishing; plbulk resume {id} goes on)"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(status_json(d, &id).unwrap()["state"], "interrupted");
    let out = about(d, &["jobs"]);
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with(&id))
        .map(str::to_string)
        .unwrap();
    assert!(line.contains("interrupted"), "{line}");
    let v: Value = serde_json::from_slice(&about(d, &["jobs", "--json"]).stdout).unwrap();
    assert_eq!(v["jobs"][0]["state"], "interrupted", "{v}");

    // Looking at it while a resume takes it never makes the resume refuse.
    let looking = {
        let d = d.to_path_buf();
        let id = id.clone();
        std::thread::spawn(move || {
            for _ in 0..30 {
                about(&d, &["status", &id]);
            }
        })
    };
    let out = run(sandbox
        .plbulk(&d.join("data"))
        .args(["resume", &id, "--rate", "50/s", "-q", "--job-dir"])
        .arg(jobs_dir(d)));
    looking.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = status_json(d, &id).unwrap();
    assert_eq!(s["state"], "finished", "{s}");
    assert_eq!(s["outcomes"]["succeeded"], 12, "{s}");
}

/// Reported: "SIGHUP (a terminal closed) ends plbulk with no message and no results." It
/// stops as Ctrl-C does: results written, the resume line, exit 3; and a second hangup (the
/// shell passing the terminal's on) does not cut the stop short.
#[cfg(unix)]
#[test]
fn a_hangup_stops_the_run_as_ctrl_c_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let results = d.join("Hangup.results.xlsx");
    let (child, id) = slow_job(d, 10, "Hangup");
    let pid = child.0.id().to_string();
    for _ in 0..2 {
        let sent = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
        assert!(sent.success());
    }
    let out = finish(child);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // On stdout, after the results: not the quit's line on stderr, which writes none.
    assert!(
        stdout(&out).contains(&format!("plbulk resume {id}")),
        "{}",
        text(&out)
    );
    let rows = sheet_rows(&results, "Customers");
    let outcome = rows[0].iter().position(|h| h == "Outcome").unwrap();
    let outcomes: Vec<&str> = rows[1..].iter().map(|r| r[outcome].as_str()).collect();
    assert!(outcomes.contains(&"not run"), "{outcomes:?}");
    // A stop drops what has not left: requests waiting for the limit are not sent, and no row
    // fails for it.
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(*o, "not run" | "succeeded")),
        "{outcomes:?}"
    );
    assert_eq!(status_json(d, &id).unwrap()["state"], "interrupted");
}

/// Reported: "A temporary results file left by a kill stays beside the user's files, mode
/// 0644, holding customer data." The next write of the results removes it.
#[test]
fn a_temporary_file_left_by_a_kill_is_removed_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("customers.csv");
    std::fs::write(&input, customers(2, "Temp")).unwrap();
    // As a killed plbulk left them: another process's, and one named before the count.
    let stale = [
        d.join(".customers.results.xlsx.4999999.0.plbulk-tmp"),
        d.join(".customers.results.xlsx.4999998.plbulk-tmp"),
    ];
    for s in &stale {
        std::fs::write(s, "Company Name\nAcme Ltd\n").unwrap();
    }
    let out = run(rehearsing(d)
        .arg("run")
        .arg(&input)
        .args(["--sandbox", "--rate", "100/s", "-q", "--job-dir"])
        .arg(jobs_dir(d)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let results = d.join("customers.results.xlsx");
    assert!(results.exists());
    for s in &stale {
        assert!(!s.exists(), "{} was left", s.display());
    }
    let left: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".plbulk-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&results).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
