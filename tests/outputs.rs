//! Nothing a partner does loses work (issue 19, items 1 to 3, and 12 and 14 in part), through
//! the real binary: a template, report, results, to-fix or export never replaces a file the
//! partner made, an input is never an output, and a results path that cannot be written is
//! said before the first call, not after the last row.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn go(dir: &Path, args: &[&str]) -> Output {
    first_time(dir).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A customers CSV of `n` rows; `bad` of them (the last) have no Company Name.
fn customers_csv(dir: &Path, name: &str, n: usize, bad: usize) -> PathBuf {
    let mut s = String::from("Customer Ref,Company Name,Contact Name,Email,Plan,Contract Months\n");
    for i in 0..n {
        let company = if i >= n - bad {
            String::new()
        } else {
            format!("Outputs {i} Ltd")
        };
        s.push_str(&format!(
            "C{i:04},{company},Sam Lee,sam{i}@outputs{i}.example,pro,12\n"
        ));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// The job folders under the test's jobs folder: none means nothing was started.
fn jobs(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("jobs")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The job id a Summary sheet names.
fn summary_job(path: &Path) -> String {
    sheet_rows(path, "Summary")
        .into_iter()
        .find(|r| r.first().map(String::as_str) == Some("Job"))
        .and_then(|r| r.get(1).cloned())
        .unwrap_or_else(|| panic!("no Job on the Summary of {}", path.display()))
}

fn files_named(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| pred(n))
        .collect();
    v.sort();
    v
}

/// Item 1: `template users --out .` beside a filled users.xlsx replaced it, exit 0. Now it is
/// refused, naming the file and the way on, and `template all` writes none of its files when
/// one is there; `--overwrite` replaces on purpose.
#[test]
fn a_template_never_replaces_a_file_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let filled = d.join("users.xlsx");
    std::fs::write(&filled, b"the partner's 40 users").unwrap();

    let o = go(d, &["template", "users", "--out", "."]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = stderr(&o);
    assert!(
        e.contains("users.xlsx") && e.contains("--overwrite") && e.contains("--out"),
        "{e}"
    );
    assert_eq!(std::fs::read(&filled).unwrap(), b"the partner's 40 users");

    let o = go(d, &["template", "all", "--out", "."]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(std::fs::read(&filled).unwrap(), b"the partner's 40 users");
    assert_eq!(
        files_named(d, |n| n.ends_with(".xlsx")),
        vec!["users.xlsx"],
        "all checked before any is written"
    );

    let o = go(d, &["template", "all", "--out", ".", "--overwrite"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_ne!(std::fs::read(&filled).unwrap(), b"the partner's 40 users");
    assert!(d.join("onboarding.xlsx").exists());
}

/// Item 2: `run FILE --results FILE` and `validate FILE --report FILE` replaced the input.
/// Refused before anything is sent, even with --overwrite; the input is as it was.
#[test]
fn an_input_is_never_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = customers_csv(d, "customers.csv", 3, 0);
    let before = std::fs::read(&csv).unwrap();
    // The same file under another spelling is the same file.
    std::fs::create_dir(d.join("sub")).unwrap();
    for results in ["customers.csv", "sub/../customers.csv"] {
        for extra in [&[][..], &["--overwrite"][..]] {
            let o = first_time(d)
                .args([
                    "run",
                    "--sandbox",
                    "--rate",
                    "2000/s",
                    "customers.csv",
                    "--results",
                ])
                .arg(results)
                .args(extra)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(2), "{}", text(&o));
            assert!(stderr(&o).contains("input"), "{}", text(&o));
            assert_eq!(std::fs::read(&csv).unwrap(), before);
            assert!(jobs(d).is_empty(), "nothing started: {}", text(&o));
        }
    }
    for extra in [&[][..], &["--overwrite"][..]] {
        let o = first_time(d)
            .args(["validate", "customers.csv", "--report", "customers.csv"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(stderr(&o).contains("input"), "{}", text(&o));
        assert_eq!(std::fs::read(&csv).unwrap(), before);
    }

    // A to-fix file run again with --results beside it: its own to-fix would be the input.
    let o = go(
        d,
        &["run", "--sandbox", "--rate", "2000/s", "customers.csv"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let fixed = d.join("again.to-fix.xlsx");
    std::fs::copy(d.join("customers.results.xlsx"), &fixed).unwrap();
    let fixed_before = std::fs::read(&fixed).unwrap();
    let o = go(
        d,
        &[
            "run",
            "--sandbox",
            "--rate",
            "2000/s",
            "--kind",
            "customers",
            "again.to-fix.xlsx",
            "--results",
            "again.results.xlsx",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("to-fix"), "{}", text(&o));
    assert_eq!(std::fs::read(&fixed).unwrap(), fixed_before);
}

/// Item 3: a results path that cannot be written was found after every row ran. A folder, a
/// missing folder, or a partner's file are refused before the first call: no job is made.
#[test]
fn a_results_path_is_checked_before_the_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    customers_csv(d, "customers.csv", 3, 0);
    std::fs::create_dir(d.join("afolder")).unwrap();
    std::fs::write(d.join("mine.xlsx"), b"partner's workbook").unwrap();
    for (results, says) in [
        ("afolder", "is a folder"),
        ("nowhere/r.xlsx", "does not exist"),
        ("mine.xlsx", "--overwrite"),
    ] {
        let o = go(
            d,
            &[
                "run",
                "--sandbox",
                "--rate",
                "2000/s",
                "customers.csv",
                "--results",
                results,
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let e = stderr(&o);
        assert!(e.contains(results) && e.contains(says), "{e}");
        assert!(jobs(d).is_empty(), "nothing started: {}", text(&o));
    }
    assert_eq!(
        std::fs::read(d.join("mine.xlsx")).unwrap(),
        b"partner's workbook"
    );
    let o = go(
        d,
        &[
            "run",
            "--sandbox",
            "--rate",
            "2000/s",
            "customers.csv",
            "--results",
            "mine.xlsx",
            "--overwrite",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!summary_job(&d.join("mine.xlsx")).is_empty());
}

/// Starts a slow rehearsal of `rows` rows and waits until its job folder exists (its results
/// path was checked by then).
fn slow_run(d: &Path, rows: usize) -> (Running, PathBuf) {
    let csv = customers_csv(d, "slow.csv", rows, 0);
    let child = first_time(d)
        .args(["run", "--sandbox", "--rate", "5/s", "--concurrency", "1"])
        .arg(&csv)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Running(Some(child));
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs(d).is_empty() {
        assert!(Instant::now() < deadline, "the job did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, d.join("slow.results.xlsx"))
}

/// A run in the background, killed if the test fails before it ends.
struct Running(Option<std::process::Child>);

impl Running {
    fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn finish(mut p: Running) -> Output {
    p.0.take().expect("running").wait_with_output().unwrap()
}

/// Item 3, at the end: results that still cannot be written (here a folder put in their place
/// while the job ran, as a file locked by Excel is on Windows) leave the summary, the hint to
/// write them elsewhere, and the job's own exit code; after a Ctrl-C, the resume line too.
#[test]
fn results_that_fail_at_the_end_leave_the_summary_and_the_way_on() {
    let _alone = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, results) = slow_run(d, 8);
    std::fs::create_dir(&results).unwrap();
    let o = finish(p);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(out.contains("8 succeeded"), "the summary: {}", text(&o));
    assert!(
        err.contains("plbulk results ") && err.contains("--out"),
        "{}",
        text(&o)
    );
    let id = jobs(d)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let o = go(d, &["results", &id, "--out", "elsewhere.xlsx"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary_job(&d.join("elsewhere.xlsx")), id);

    // Interrupted: the resume line is said as well.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, results) = slow_run(d, 40);
    std::fs::create_dir(&results).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let killed = Command::new("kill")
        .args(["-INT", &p.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = finish(p);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        stdout(&o).contains("Resume with: plbulk resume"),
        "{}",
        text(&o)
    );
    assert!(stderr(&o).contains("--out"), "{}", text(&o));
}

/// Item 12 (part): a second run of a file replaced the first job's results workbook. The new
/// job's results go beside it under a name of their own, and the run says so; the first
/// job's results and to-fix file stay as they were.
#[test]
fn a_second_job_writes_its_results_beside_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    customers_csv(d, "c.csv", 3, 1);
    let run = || {
        go(
            d,
            &[
                "run",
                "--sandbox",
                "--rate",
                "2000/s",
                "--skip-invalid",
                "c.csv",
            ],
        )
    };
    let o = run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let first = summary_job(&d.join("c.results.xlsx"));
    let first_fix = std::fs::read(d.join("c.to-fix.xlsx")).unwrap();
    // Job ids are to the second; one id the start of another is a matter for `find`.
    std::thread::sleep(Duration::from_millis(1100));

    let o = run();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("holds the results of job {first}")),
        "{out}"
    );
    assert_eq!(summary_job(&d.join("c.results.xlsx")), first);
    assert_eq!(std::fs::read(d.join("c.to-fix.xlsx")).unwrap(), first_fix);
    let beside = files_named(d, |n| n.ends_with(".results.xlsx") && n != "c.results.xlsx");
    assert_eq!(beside.len(), 1, "{beside:?}");
    let second = summary_job(&d.join(&beside[0]));
    assert_ne!(second, first);
    assert!(out.contains(&beside[0]), "the new name is said: {out}");
    let fix = beside[0].replace(".results.xlsx", ".to-fix.xlsx");
    assert!(d.join(&fix).exists(), "its to-fix beside it: {out}");

    // `plbulk results` of the first job rewrites its own workbook, and refuses the second's.
    let o = go(d, &["results", &first]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = go(d, &["results", &first, "--out", &beside[0]]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(summary_job(&d.join(&beside[0])), second);
}

/// The to-fix file is where the partner fixes rows: one changed since the job wrote it is
/// kept when the job writes its results again, and the new one goes beside it.
#[test]
fn a_to_fix_file_the_partner_changed_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    customers_csv(d, "c.csv", 3, 1);
    let o = go(
        d,
        &[
            "run",
            "--sandbox",
            "--rate",
            "2000/s",
            "--skip-invalid",
            "c.csv",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let id = summary_job(&d.join("c.results.xlsx"));
    let to_fix = d.join("c.to-fix.xlsx");

    // Unchanged: the job's own, written again in place.
    let o = go(d, &["resume", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        files_named(d, |n| n.contains("to-fix")),
        vec!["c.to-fix.xlsx"]
    );

    // Changed by the partner (saved from Excel with a fix): kept.
    std::fs::write(&to_fix, b"the partner's fixes").unwrap();
    let o = go(d, &["resume", &id]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read(&to_fix).unwrap(), b"the partner's fixes");
    let out = stdout(&o);
    assert!(out.contains("is kept"), "{out}");
    let others = files_named(d, |n| n.ends_with(".to-fix.xlsx") && n != "c.to-fix.xlsx");
    assert_eq!(others.len(), 1, "{out}");
    assert!(out.contains(&others[0]), "{out}");
}

/// A report plbulk wrote is written again by the next validation; a file of the partner's at
/// --report is kept unless --overwrite.
#[test]
fn a_report_replaces_only_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    customers_csv(d, "c.csv", 2, 0);
    for _ in 0..2 {
        let o = go(d, &["validate", "c.csv"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    std::fs::write(d.join("notes.xlsx"), b"partner's notes").unwrap();
    let o = go(d, &["validate", "c.csv", "--report", "notes.xlsx"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("notes.xlsx"), "{}", text(&o));
    assert_eq!(
        std::fs::read(d.join("notes.xlsx")).unwrap(),
        b"partner's notes"
    );
    let o = go(
        d,
        &["validate", "c.csv", "--report", "notes.xlsx", "--overwrite"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        sheet_rows(&d.join("notes.xlsx"), "Findings")[0][0],
        "Severity"
    );
}

/// Item 14 (part): `export --out x.csv` wrote an XLSX named .csv. It writes a CSV now; another
/// extension is refused naming the ones taken; an export there already is kept.
#[test]
fn an_export_is_written_as_its_name_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    customers_csv(d, "c.csv", 2, 0);
    let o = go(d, &["run", "--sandbox", "--rate", "2000/s", "-q", "c.csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = go(d, &["export", "customers", "--sandbox", "--out", "x.csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bytes = std::fs::read(d.join("x.csv")).unwrap();
    let s = String::from_utf8(bytes).expect("a CSV is text");
    let s = s.strip_prefix('\u{feff}').expect("with a BOM, for Excel");
    assert!(s.starts_with("Action,"), "{s}");
    assert!(s.contains("Outputs 1 Ltd"), "{s}");
    // It runs back: every row an update that changes nothing.
    let o = go(d, &["validate", "x.csv", "--no-report"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = go(d, &["export", "customers", "--sandbox", "--out", "x.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(stderr(&o).contains("--overwrite"), "{}", text(&o));
    let o = go(
        d,
        &[
            "export",
            "customers",
            "--sandbox",
            "--out",
            "x.csv",
            "--overwrite",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let o = go(d, &["export", "customers", "--sandbox", "--out", "x.txt"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let e = stderr(&o);
    assert!(e.contains(".xlsx") && e.contains(".csv"), "{e}");
    assert!(!d.join("x.txt").exists());

    let o = go(d, &["export", "customers", "--sandbox", "--out", "y.xlsx"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(sheet_rows(&d.join("y.xlsx"), "Customers")[0][0], "Action");
}

/// An undo is a job of its own: pointed at the results of the job it reverses, it writes its
/// own beside them and leaves the job's as they were.
#[test]
fn an_undo_never_replaces_the_results_of_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    customers_csv(d, "c.csv", 2, 0);
    let o = go(d, &["run", "--sandbox", "--rate", "2000/s", "-q", "c.csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = summary_job(&d.join("c.results.xlsx"));
    let o = go(
        d,
        &[
            "undo",
            &id,
            "--rate",
            "2000/s",
            "--results",
            "c.results.xlsx",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains("holds the results of job"),
        "{}",
        text(&o)
    );
    assert_eq!(summary_job(&d.join("c.results.xlsx")), id);
    let beside = files_named(d, |n| n.ends_with(".results.xlsx") && n != "c.results.xlsx");
    assert_eq!(beside.len(), 1, "{beside:?}");
    assert_ne!(summary_job(&d.join(&beside[0])), id);
}

/// A job killed before it wrote its results still holds their path: a new job of the same
/// file writes beside it, and the killed job's results go where it always would write them.
#[test]
fn a_new_job_does_not_take_the_results_path_of_an_unfinished_one() {
    let _alone = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (p, results) = slow_run(d, 40);
    std::thread::sleep(Duration::from_millis(400));
    let killed = Command::new("kill")
        .args(["-KILL", &p.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    drop(finish(p));
    assert!(!results.exists());
    let first = jobs(d)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // Job ids are to the second; one id the start of another is a matter for `find`.
    std::thread::sleep(Duration::from_millis(1100));

    let o = go(
        d,
        &[
            "run",
            "--sandbox",
            "--rate",
            "2000/s",
            "--new-job",
            "slow.csv",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains(&format!("job {first}, which has not finished")),
        "{}",
        text(&o)
    );
    assert!(!results.exists());
    // Its results, written now, go where it always would write them.
    let o = go(d, &["results", &first]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(summary_job(&results), first);
}
