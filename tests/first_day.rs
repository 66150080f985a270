//! A partner's first day, through the real binary: every count printed is of what is printed,
//! every message says what to type, a stopped job's to-fix holds only rows to fix, `--json`
//! keeps stdout to its document, `jobs` says what each job was, and undo asks on a terminal.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn customers_csv(dir: &Path, name: &str, n: usize) -> PathBuf {
    let mut s = String::from("Customer Ref,Company Name,Contact Name,Email,Plan,Contract Months\n");
    for i in 0..n {
        s.push_str(&format!(
            "C{i:04},Firstday {i} Ltd,Sam Lee,sam{i}@firstday{i}.example,pro,12\n"
        ));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// "3 notes" printed one of them: the cell notes (a number that lost its leading 0) were
/// counted and never shown. Every finding the count line counts is printed, up to --show.
#[test]
fn validate_prints_the_notes_it_counts() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("blocked.csv");
    std::fs::write(
        &csv,
        "Customer,Number,Direction\ncus_000001,1632960001,inbound\ncus_000001,1632960002,inbound\ncus_000001,1632960003,inbound\n",
    )
    .unwrap();
    let o = first_time(dir.path())
        .args(["validate", "--kind", "blocked-numbers", "--no-report"])
        .arg(&csv)
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let counted: u64 = out
        .lines()
        .find(|l| l.contains(" note"))
        .and_then(|l| l.split(", ").find(|p| p.contains("note")))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of notes: {out}"));
    assert!(counted >= 3, "{out}");
    assert_eq!(
        out.matches("lost its leading 0").count(),
        3,
        "each cell note is printed: {out}"
    );
}

/// With --no-report there is no report to point at: the rest is said with the way to see it.
#[test]
fn no_report_does_not_point_at_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "Company Name,Email,Plan,Contract Months\nA Ltd,bad,pro,12\nB Ltd,bad,pro,12\nC Ltd,bad,pro,12\n",
    )
    .unwrap();
    let o = first_time(dir.path())
        .args(["validate", "--no-report", "--show", "1"])
        .arg(&csv)
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(out.contains("… and 2 more"), "{out}");
    assert!(!out.contains("in the report"), "{out}");
    assert!(out.contains("--show"), "{out}");
}

/// Flags that do not parse say what to type, in the flag's own terms.
#[test]
fn flags_say_what_to_type() {
    let dir = tempfile::tempdir().unwrap();
    let csv = customers_csv(dir.path(), "customers.csv", 1);
    let err = |args: &[&str]| {
        let o = first_time(dir.path()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = err(&["run", csv.to_str().unwrap(), "--timeout", "abc"]);
    assert!(
        e.contains("not a length of time") && e.contains("30s"),
        "{e}"
    );
    assert!(!e.contains("expected number at 0"), "{e}");
    let e = err(&["run", csv.to_str().unwrap(), "--timeout", "0s"]);
    assert!(e.contains("no time at all"), "{e}");
    let e = err(&["run", csv.to_str().unwrap(), "--rate", "100"]);
    assert!(e.contains("100/min"), "{e}");
    assert!(!e.contains("no '/'"), "{e}");
}

/// A config file named on purpose that is not there is said so; with none set, the message for
/// missing credentials names this machine's config file.
#[test]
fn config_messages_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = customers_csv(dir.path(), "customers.csv", 1);
    let missing = dir.path().join("nowhere/plbulk.toml");
    let o = first_time(dir.path())
        .env("PLBULK_CONFIG", &missing)
        .args(["run", "--no-preflight"])
        .arg(&csv)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(e.contains("does not exist"), "{e}");
    assert!(e.contains(&*missing.to_string_lossy()), "{e}");

    let o = first_time(dir.path())
        .args(["run", "--no-preflight"])
        .arg(&csv)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(e.contains("no API credentials"), "{e}");
    assert!(
        e.contains("config.toml"),
        "names the config file's path: {e}"
    );
}

/// Messages read as English: an article that fits the column, counts that agree.
#[test]
fn messages_are_grammatical() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "Company Name,Email,Plan,Contract Months\nA Ltd,,pro,12\nB Ltd,b@b.example,hardware,12\n",
    )
    .unwrap();
    let o = first_time(dir.path())
        .args(["validate", "--no-report"])
        .arg(&csv)
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("Email is required because Plan is pro"),
        "{out}"
    );
    assert!(out.contains("add an Address Line 1 column"), "{out}");
    assert!(!out.contains("add a Address"), "{out}");

    let one = customers_csv(dir.path(), "one.csv", 1);
    let o = first_time(dir.path())
        .args(["run", "--dry-run", "--no-preflight"])
        .arg(&one)
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.contains("1 write at 100/min takes"), "{out}");
}

/// A one-sheet workbook whose sheet has another name is read as its headers say, as a CSV is.
#[test]
fn a_one_sheet_workbook_is_read_from_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["Sheet1", "Customers - FINAL v3 (Jan)"] {
        let path = dir.path().join("book.xlsx");
        let mut wb = rust_xlsxwriter::Workbook::new();
        write_sheet(
            &mut wb,
            name,
            &["Company Name", "Email", "Plan", "Contract Months"],
            &[vec![
                "One Sheet Ltd".into(),
                "a@one.example".into(),
                "pro".into(),
                "12".into(),
            ]],
        );
        wb.save(&path).unwrap();
        let o = first_time(dir.path())
            .args(["validate", "--no-report"])
            .arg(&path)
            .output()
            .unwrap();
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert!(out.contains("1 row, 1 valid"), "{name}: {out}");
        assert!(out.contains("from its headers"), "{name}: {out}");
    }
}

/// `run --json --skip-invalid` with a pre-flight error: stdout is the JSON document alone, and
/// the error is said on stderr.
#[test]
fn json_stdout_holds_only_the_document() {
    let _g = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "600/s", &[]);
    let csv = dir.path().join("users.csv");
    std::fs::write(
        &csv,
        "Customer,First Name,Last Name,Email\ncus_999999,Ann,Lee,ann@nowhere.example\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let o = sb
        .plbulk(&data)
        .args(["run", "--json", "--skip-invalid", "--rate", "600/s"])
        .arg(&csv)
        .arg("--job-dir")
        .arg(data.join("jobs"))
        .output()
        .unwrap();
    let out = stdout(&o);
    let doc: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", text(&o)));
    assert_eq!(doc["outcomes"]["invalid"], 1, "{doc}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cus_999999"),
        "{}",
        text(&o)
    );
}

/// Stopped part-way, a job's to-fix file holds only rows that ran and did not succeed; the
/// rows not run yet are said with the resume line, not listed as rows to fix.
#[test]
fn a_stopped_jobs_unrun_rows_are_not_to_fix() {
    let _g = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "4/s", &[]);
    let csv = customers_csv(dir.path(), "customers.csv", 30);
    let data = dir.path().join("data");
    let child = sb
        .plbulk(&data)
        .args(["run", "--rate", "4/s", "--no-preflight"])
        .arg(&csv)
        .arg("--job-dir")
        .arg(data.join("jobs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sb.requests().len() < 6 {
        assert!(Instant::now() < deadline, "the job never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let watchdog = {
        let pid = child.id();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        })
    };
    let o = child.wait_with_output().unwrap();
    drop(watchdog);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(out.contains("Not run yet:"), "{out}");
    assert!(out.contains("plbulk resume "), "{out}");
    let to_fix = dir.path().join("customers.to-fix.xlsx");
    assert!(
        !to_fix.exists(),
        "no row failed, so there is nothing to fix: {out}"
    );
    assert!(!out.contains("To fix:"), "{out}");
}

/// `jobs` says which file each job ran, whether it was a rehearsal, and which job an undo
/// reverses.
#[test]
fn jobs_lists_input_rehearsal_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let csv = customers_csv(dir.path(), "mycustomers.csv", 2);
    let o = first_time(dir.path())
        .args(["run", "--sandbox", "--rate", "2000/s", "-q"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = first_time(dir.path()).args(["jobs"]).output().unwrap();
    let out = stdout(&o);
    let id = out
        .lines()
        .find(|l| l.contains("mycustomers.csv"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the input is not listed: {out}"))
        .to_string();
    assert!(
        out.lines()
            .any(|l| l.contains("mycustomers.csv") && l.contains("rehearsal")),
        "{out}"
    );
    let o = first_time(dir.path())
        .args(["undo", &id, "--rate", "2000/s", "-q"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = first_time(dir.path()).args(["jobs"]).output().unwrap();
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.contains(&format!("undo of {id}"))),
        "{out}"
    );
}

/// On a terminal, undo lists what it will do and asks; "n" sends nothing and makes no job.
#[test]
fn undo_asks_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let csv = customers_csv(dir.path(), "asked.csv", 2);
    let o = first_time(dir.path())
        .args(["run", "--sandbox", "--rate", "2000/s", "-q"])
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let jobs = || {
        std::fs::read_dir(dir.path().join("jobs"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count()
    };
    assert_eq!(jobs(), 1);
    let id = std::fs::read_dir(dir.path().join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'))
        .unwrap();
    // `script` gives the command a terminal, and passes our "n" to it.
    let line = format!("{BIN} undo {id} --rate 2000/s");
    let mut child = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env("PLBULK_DATA_DIR", dir.path().join("data"))
        .env("PLBULK_JOB_DIR", dir.path().join("jobs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(b"n\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(out.contains("Start the undo? [y/N]"), "{}", text(&o));
    assert!(out.contains("Nothing was sent"), "{}", text(&o));
    assert_eq!(jobs(), 1, "no undo job was made");
}
