//! The job pipeline as a library, as a caller other than the CLI (the page, to come) drives
//! it: a job read, planned,
//! pre-flighted, journaled and run on a rehearsal account (an in-process sandbox over HTTP on
//! loopback), its events watched, stopped midway with `stop()`, resumed, and its results
//! written; and a journal whose options do not parse refused, naming the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use plbulk::engine::{Existing, Finish};
use plbulk::job::{self, Endpoint, JobOptions};
use plbulk::model::RowState;
use plbulk::pacing::Rate;
use plbulk::pipeline::{self, Ended, Event, Given, Opened, Verdict};
use plbulk::rehearsal::Rehearsal;
use tokio::sync::mpsc;

const ROWS: usize = 24;

/// The data folder (call budget, input locks) of every test here: the pipeline reads it from
/// the environment, once per process.
fn data_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    // Set once, before any test reads it: setting the environment while other threads read it
    // is a race.
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("PLBULK_DATA_DIR", d.path());
        d
    })
    .path()
    .to_path_buf()
}

fn customers_csv(dir: &Path) -> PathBuf {
    let path = dir.join("customers.csv");
    let mut text = String::from("Company Name,Email,Plan,Contract Months\n");
    for i in 0..ROWS {
        text.push_str(&format!("Company {i} Ltd,ops{i}@c{i}.example,pro,12\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A rehearsal on an empty account of the job's own, at `rate`.
fn options(results: &Path, rate: Rate) -> JobOptions {
    JobOptions {
        kind: None,
        sandbox: true,
        results: results.to_path_buf(),
        concurrency: 2,
        rate,
        existing: Existing::Skip,
        skip_invalid: false,
        timeout_ms: 10_000,
        undo_of: None,
        force: false,
        max_outage_ms: None,
        rehearsal: Some(Rehearsal::Fresh),
        map: None,
        one_shot: false,
    }
}

/// Rows finished per state among `events`.
fn finished(events: &[Event]) -> Vec<RowState> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RowFinished { sheet: 0, state } => Some(*state),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_stops_and_resumes_through_the_pipeline() {
    data_dir();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("jobs");
    let csv = customers_csv(dir.path());
    let results = dir.path().join("customers.results.xlsx");

    // Read once, validated, planned; the fingerprint is of the bytes read.
    let read = pipeline::read(std::slice::from_ref(&csv), None, None);
    assert_eq!(read.verdict(false), Verdict::Go);
    let mut planned = read.plan();
    assert_eq!(planned.plan.rows.len(), ROWS);
    let fingerprint = planned.fingerprint().unwrap();
    assert_eq!(fingerprint.files.len(), 1);

    // Slow enough to be stopped midway: 4 calls a second.
    let opts = options(&results, Rate::new(4, Duration::from_secs(1)));
    let lock =
        pipeline::lock_input(&fingerprint, &Endpoint::Sandbox, std::slice::from_ref(&csv)).unwrap();
    // A second run of the same input is refused while this one holds it.
    let again = pipeline::lock_input(&fingerprint, &Endpoint::Sandbox, std::slice::from_ref(&csv));
    assert!(
        matches!(&again, Err(pipeline::Error::Refused(m)) if m.contains("is being run against")),
        "{:?}",
        again.err()
    );
    let mut conn = pipeline::connect_new(&opts, None, "tests/pipeline")
        .await
        .unwrap();
    let pre = pipeline::preflight(&planned, &conn, Some(Existing::Skip))
        .await
        .unwrap();
    assert_eq!(pre.errors(), 0);
    assert!(!pre.refuses(false));
    pre.apply(&mut planned.plan);
    let held = pipeline::create_job(
        &root,
        fingerprint.files.clone(),
        &planned.plan,
        opts,
        &mut conn,
        Some(lock),
    )
    .unwrap();
    let id = held.id().to_string();
    let board = held.board().unwrap();
    assert_eq!(board.sheets.len(), 1);
    assert_eq!(
        (board.sheets[0].total, board.sheets[0].done),
        (ROWS as u64, 0)
    );

    // Run, watching; stop once a few rows are done.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = pipeline::start(held, conn, pipeline::Stop::new(), Arc::new(tx));
    assert_eq!(running.id(), id);
    let mut first = Vec::new();
    while finished(&first).len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("rows finish")
            .expect("the job is running");
        first.push(e);
    }
    running.stop();
    let ran = running.wait().await;
    assert!(ran.calls > 0);
    while let Ok(e) = rx.try_recv() {
        first.push(e);
    }
    let Ended::Ran(done) = pipeline::finish(ran, false).unwrap() else {
        panic!("the journal failed")
    };
    assert_eq!(
        done.finish,
        Finish::Interrupted(plbulk::client::Halt::Stopped)
    );
    let ran_first = finished(&first);
    assert!(ran_first.len() < ROWS, "{} rows ran", ran_first.len());
    assert!(
        ran_first.iter().all(|s| *s == RowState::Succeeded),
        "{ran_first:?}"
    );
    assert_eq!(done.outputs.results.as_deref(), Some(results.as_path()));
    assert!(done.outputs.error.is_none());
    assert_eq!(done.outputs.not_run, (ROWS - ran_first.len()) as u64);
    assert!(results.exists());
    drop(done);

    // Resumed faster; every row runs once in all.
    let found = job::find(&root, Some(&id)).unwrap();
    let given = Given {
        rate: Some(Rate::new(50, Duration::from_secs(1))),
        ..Given::default()
    };
    let Opened::Ready(held) = pipeline::open_job(found, &given, None).unwrap() else {
        panic!("not finished yet")
    };
    assert_eq!(held.options.rate, Rate::new(50, Duration::from_secs(1)));
    let board = held.board().unwrap();
    assert_eq!(board.sheets[0].done, ran_first.len() as u64);
    let conn = pipeline::connect_job(&held.job, &held.journal, &held.options, "resume it")
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = pipeline::start(held, conn, pipeline::Stop::new(), Arc::new(tx));
    let ran = running.wait().await;
    let Ended::Ran(done) = pipeline::finish(ran, false).unwrap() else {
        panic!("the journal failed")
    };
    let mut second = Vec::new();
    while let Ok(e) = rx.try_recv() {
        second.push(e);
    }
    assert_eq!(done.finish, Finish::Completed);
    let ran_second = finished(&second);
    assert_eq!(ran_first.len() + ran_second.len(), ROWS);
    assert!(ran_second.iter().all(|s| *s == RowState::Succeeded));
    assert_eq!(done.counts, vec![(RowState::Succeeded, ROWS as u64)]);
    assert_eq!(done.outputs.not_run, 0);
    assert_eq!(done.outputs.to_fix, None);
    assert!(done.outputs.error.is_none());
    drop(done);

    // A finished job opens as finished: nothing runs.
    let found = job::find(&root, Some(&id)).unwrap();
    assert!(matches!(
        pipeline::open_job(found, &Given::default(), None),
        Ok(Opened::Finished(_))
    ));
}

/// Issue 20: a stored rate that does not parse was read as the default; the job is refused,
/// naming it and its journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_whose_options_do_not_parse_is_refused_naming_the_job() {
    data_dir();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("jobs");
    let csv = customers_csv(dir.path());
    let planned = pipeline::read(std::slice::from_ref(&csv), None, None).plan();
    let fingerprint = planned.fingerprint().unwrap();
    let opts = options(&dir.path().join("r.xlsx"), Rate::default());
    let mut conn = pipeline::connect_new(&opts, None, "tests/pipeline")
        .await
        .unwrap();
    let held = pipeline::create_job(
        &root,
        fingerprint.files,
        &planned.plan,
        opts,
        &mut conn,
        None,
    )
    .unwrap();
    conn.close().await;
    let (id, journal) = (held.id().to_string(), held.job.journal_path());
    drop(held);
    let db = rusqlite::Connection::open(&journal).unwrap();
    let options: String = db
        .query_row("SELECT options FROM job", [], |r| r.get(0))
        .unwrap();
    assert!(options.contains(r#""rate":"100/min""#), "{options}");
    db.execute(
        "UPDATE job SET options = ?1",
        [options.replace(r#""rate":"100/min""#, r#""rate":"lots""#)],
    )
    .unwrap();
    drop(db);
    let found = job::find(&root, Some(&id)).unwrap();
    let e = match pipeline::open_job(found, &Given::default(), None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a rate that does not parse was read"),
    };
    assert!(e.contains(&format!("job {id} has options")), "{e}");
    assert!(e.contains(&journal.display().to_string()), "{e}");
    assert!(e.contains("lots"), "{e}");
}
