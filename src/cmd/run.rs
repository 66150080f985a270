//! `plbulk run` and `plbulk resume`: turn flags into job options, then let [`crate::job`] do
//! the work, with Ctrl-C wired to a graceful stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{ResumeArgs, RunArgs};
use crate::client::Settings;
use crate::engine::Finish;
use crate::job::{self, Connection, Endpoint, JobOptions, JobRef};
use crate::journal::Journal;
use crate::model::{JobState, RowState};
use crate::progress::Progress;
use crate::results;

use super::{
    parse_kind, to_json, Error, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_ROWS_FAILED,
};

/// Requests in flight when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 8;

pub async fn run(args: RunArgs, quiet: bool) -> Result<i32, Error> {
    // With --json, stdout holds the one document and nothing else.
    let json = args.json;
    let quiet = quiet || json;
    let kind = args.kind.as_deref().map(parse_kind).transpose()?;
    if args.concurrency == Some(0) {
        return Err(Error::Usage("--concurrency must be at least 1".into()));
    }
    let root = job::jobs_root(args.job_dir.as_deref());
    let (inputs, plan) = job::prepare(&args.files, kind);
    let errors = inputs.errors();
    if !quiet {
        super::validate::print_summary(
            &inputs.outcome.sheets,
            &inputs.outcome.findings,
            errors,
            10,
            &format!(
                "(plbulk validate {} writes a report of them all)",
                args.files
                    .iter()
                    .map(|f| shell_word(f))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
    }
    for e in &inputs.unreadable {
        eprintln!("error: {e}");
    }
    if !inputs.unreadable.is_empty() {
        return Ok(EXIT_REFUSED);
    }
    if errors > 0 && !args.skip_invalid {
        eprintln!(
            "refused: {errors} error{} in the input; nothing was sent. Fix them (plbulk validate {} writes a report with each bad cell marked), or run with --skip-invalid to run the valid rows and record the others as invalid.",
            if errors == 1 { "" } else { "s" },
            args.files
                .iter()
                .map(|f| shell_word(f))
                .collect::<Vec<_>>()
                .join(" ")
        );
        return Ok(EXIT_REFUSED);
    }
    let fp = inputs
        .fingerprint()
        .map_err(|e| Error::Input(e.to_string()))?;
    let fingerprint = job::fingerprint_of(&fp);

    if args.dry_run {
        return dry_run(&inputs, plan, &args, quiet).await;
    }

    let settings = settings_of(&args)?;
    let endpoint = Endpoint::of_settings(settings.as_ref())?;
    // Before anything reads or writes the account: a second run of this input on this
    // endpoint must not start a job of its own.
    let input_lock = job::InputLock::acquire(&fingerprint, &endpoint, &args.files)?;

    let options = JobOptions {
        kind: args.kind.clone(),
        sandbox: rehearsal_of(&args).is_some(),
        results: absolute(
            &args
                .results
                .clone()
                .unwrap_or_else(|| super::beside(&args.files[0], "results.xlsx")),
        ),
        concurrency: args.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        rate: args.rate.unwrap_or_default().to_string(),
        existing: args.existing,
        skip_invalid: args.skip_invalid,
        timeout_ms: args.timeout.as_millis() as u64,
        undo_of: None,
        force: false,
        max_outage_ms: args.max_outage.map(|d| d.as_millis() as u64),
        rehearsal: rehearsal_of(&args),
        one_shot: false,
    };
    if !args.new_job {
        if let Some(existing) = job::resumable(&root, &fingerprint, &endpoint, &options)? {
            if !quiet {
                outln!(
                    "This input has an unfinished job, {} (started {}): resuming it.",
                    existing.meta.id,
                    results::time_text(existing.meta.created_at_ms)
                );
            }
            input_lock.set_job(&existing.meta.id);
            let given = Given {
                rate: args.rate,
                concurrency: args.concurrency,
                results: args.results.clone(),
                max_outage: args.max_outage,
                overwrite: args.overwrite,
            };
            return resume_job(existing, given, quiet, json).await;
        }
    }
    // Before the first call: where the results go, or why they cannot.
    let mut options = options;
    let chosen = crate::outputs::results_for_new_job(
        &options.results,
        &args.files,
        held_by(&root, &options.results),
        args.overwrite,
        &crate::outputs::stamp_now(),
    )?;
    if let Some(note) = chosen.note() {
        say(&note, quiet, json);
    }
    options.results = absolute(&chosen.path);
    let account = match &options.rehearsal {
        Some(r) => Some(job::Account::for_new(r, false, "plbulk run")?),
        None => None,
    };
    let mut conn = Connection::open(&options, settings.as_ref(), account).await?;
    let mut plan = plan;
    if !args.no_preflight {
        match preflight(
            &inputs,
            &mut plan,
            &conn,
            args.existing,
            args.skip_invalid,
            quiet,
        )
        .await
        {
            Ok(Preflight::Go(_)) => {}
            stop => {
                conn.close().await;
                return stop.map(|_| EXIT_REFUSED);
            }
        }
    }
    let (job, journal) = job::create(&root, fp, &options, &plan, &conn.base_url, &conn.key_id)?;
    // Said as soon as the job has a name: a second run refused meanwhile names it.
    input_lock.set_job(&job.meta.id);
    let _held = job.lock()?;
    conn.hold_for(&job)?;
    if !quiet {
        outln!(
            "Job {} on {}{}: {}; journal {}",
            job.meta.id,
            conn.base_url,
            match &options.rehearsal {
                Some(r) => format!(" (in-process sandbox, on {})", r.describe()),
                None => String::new(),
            },
            crate::words::count(plan.rows.len() as u64, "row"),
            job.journal_path().display()
        );
    }
    drive(job, journal, conn, &options, quiet, json, args.overwrite).await
}

/// The unfinished job that will write its results at `path` when it goes on, if any: a new
/// job's results do not take its place.
pub(super) fn held_by(root: &Path, path: &Path) -> Option<String> {
    job::list(root)
        .into_iter()
        .filter(|j| j.meta.state.is_open())
        .find(|j| {
            j.options()
                .is_ok_and(|o| crate::outputs::same_file(&o.results, path))
        })
        .map(|j| j.meta.id)
}

/// A line the user must see even with --json (then on stderr, stdout being the document's);
/// nothing with -q.
fn say(line: &str, quiet: bool, json: bool) {
    if json {
        eprintln!("{line}");
    } else if !quiet {
        outln!("{line}");
    }
}

pub async fn resume(args: ResumeArgs, quiet: bool) -> Result<i32, Error> {
    let root = job::jobs_root(args.job_dir.as_deref());
    let job = job::find(&root, args.job.as_deref())?;
    let given = Given {
        rate: args.rate,
        concurrency: args.concurrency,
        results: args.results,
        max_outage: args.max_outage,
        overwrite: args.overwrite,
    };
    resume_job(job, given, quiet, false).await
}

/// What a resume was given that may differ from how its job began.
struct Given {
    rate: Option<crate::pacing::Rate>,
    concurrency: Option<usize>,
    results: Option<PathBuf>,
    max_outage: Option<std::time::Duration>,
    /// Replace a file at the results path that plbulk would keep.
    overwrite: bool,
}

async fn resume_job(job: JobRef, given: Given, quiet: bool, json: bool) -> Result<i32, Error> {
    let mut options = job.options()?;
    if let Some(r) = given.rate {
        options.rate = r.to_string();
    }
    if let Some(c) = given.concurrency {
        options.concurrency = c.max(1);
    }
    if let Some(p) = given.results {
        options.results = absolute(&p);
    }
    if let Some(d) = given.max_outage {
        options.max_outage_ms = Some(d.as_millis() as u64);
    }
    let _held = job.lock()?;
    let journal = Arc::new(Journal::open(&job.journal_path()).map_err(job::JobError::from)?);
    if job.meta.state == JobState::Abandoned {
        return Err(Error::Refused(format!(
            "job {} was abandoned: it does not run again. Run its input as a new job (rows already done are found and recorded as already existed), or undo what it did with plbulk undo {}",
            job.meta.id, job.meta.id
        )));
    }
    // Before the first call: the results go where the job's own are, or are refused.
    let inputs: Vec<&str> = job.meta.inputs.iter().map(|f| f.path.as_str()).collect();
    crate::outputs::results_for_job(&options.results, &job.meta.id, &inputs, given.overwrite)?;
    if job.meta.state == JobState::Finished {
        let counts = journal.counts().map_err(job::JobError::from)?;
        if !quiet {
            outln!(
                "Job {} finished already: {}.",
                job.meta.id,
                results::summary_line(&counts)
            );
        }
        let code = exit_for(&counts);
        return Ok(
            if results_or_hint(&job, &journal, &options, None, quiet, given.overwrite) {
                code
            } else {
                EXIT_ROWS_FAILED.max(code)
            },
        );
    }
    if let Some(why) = job::changed_inputs(&job.meta) {
        return Err(Error::Refused(why));
    }
    let conn = connect_as(&job, &journal, &options, "resume it").await?;
    if !quiet {
        let counts = journal.counts().map_err(job::JobError::from)?;
        outln!(
            "Resuming job {} on {}: {} so far.",
            job.meta.id,
            match &options.rehearsal {
                Some(r) => format!("the in-process sandbox, on {}", r.describe()),
                None => job.meta.base_url.clone(),
            },
            results::summary_line(&counts)
        );
    }
    drive(job, journal, conn, &options, quiet, json, given.overwrite).await
}

/// The account a run rehearses on, if it is a rehearsal.
fn rehearsal_of(args: &RunArgs) -> Option<crate::rehearsal::Rehearsal> {
    use crate::rehearsal::Rehearsal;
    if args.sandbox_fresh {
        Some(Rehearsal::Fresh)
    } else if args.sandbox {
        Some(Rehearsal::Shared)
    } else {
        None
    }
}

/// The settings a run uses: none for a rehearsal.
fn settings_of(args: &RunArgs) -> Result<Option<Settings>, Error> {
    if rehearsal_of(args).is_some() {
        return Ok(None);
    }
    Settings::load(args.base_url.as_deref())
        .map(Some)
        .map_err(|e| Error::Refused(e.to_string()))
}

/// A connection to the account `job` ran on: its rehearsal's account, or its endpoint with
/// its key. Credentials for another key are refused, saying what they were for (`to`).
pub(super) async fn connect_as(
    job: &JobRef,
    journal: &Journal,
    options: &JobOptions,
    to: &str,
) -> Result<Connection, Error> {
    if let Some(account) = job::Account::of_job(job, journal, options)? {
        return Ok(Connection::open(options, None, Some(account)).await?);
    }
    let settings = Settings::load(Some(job.meta.base_url.as_str()))
        .map_err(|e| Error::Refused(e.to_string()))?;
    if settings.credentials.is_none() {
        // Not "or rehearse": the job ran on the real account, and goes on there or nowhere.
        return Err(Error::Refused(format!(
            "no API credentials: set PLBULK_API_KEY and PLBULK_API_SECRET (or api_key and api_secret in the config file) for key {}, which job {} ran with, to {to}",
            job.meta.key_id, job.meta.id
        )));
    }
    let conn = Connection::open(options, Some(&settings), None).await?;
    if conn.key_id != job.meta.key_id {
        let why = format!(
            "job {} ran with API key {}, and the credentials now set are for key {}: set that key's credentials to {to}",
            job.meta.id, job.meta.key_id, conn.key_id
        );
        conn.close().await;
        return Err(Error::Refused(why));
    }
    Ok(conn)
}

/// Runs the engine with Ctrl-C handling and progress, then writes the results. Every end is
/// said as it is: a job that stopped for any reason (Ctrl-C, a refused key, an outage, a
/// journal that cannot be written) ends interrupted, exit 3, with the line that resumes it.
pub(super) async fn drive(
    job: JobRef,
    journal: Arc<Journal>,
    conn: Connection,
    options: &JobOptions,
    quiet: bool,
    json: bool,
    overwrite: bool,
) -> Result<i32, Error> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let job_id = job.meta.id.clone();
    let signals = tokio::spawn(async move {
        if wait_for_interrupt().await {
            tell("
Stopping: no new rows, and nothing more is sent; the answers of the requests already sent are recorded. Ctrl-C again to quit at once (the job stays resumable).");
            let _ = stop_tx.send(true);
        }
        if wait_for_interrupt().await {
            tell(&format!("Quit. Resume with: plbulk resume {job_id}"));
            std::process::exit(EXIT_INTERRUPTED);
        }
    });

    let progress = progress_for(&journal, &conn, options, quiet)?;
    let ticker = progress.ticker();
    let outages = tell_outages(&conn, progress.clone());
    let finish = job::execute(
        &job,
        journal.clone(),
        &conn,
        options,
        stop_rx,
        progress.clone(),
    )
    .await;
    ticker.abort();
    outages.abort();
    progress.finish();
    signals.abort();
    let calls = conn.calls.total();
    let unreached = conn.calls.unreached();
    conn.close().await;
    let finish = match finish {
        Ok(f) => f,
        Err(e) => return journal_failed(&job, &journal, e),
    };

    let counts = journal.counts().map_err(job::JobError::from)?;
    let results_ok = results_or_hint(&job, &journal, options, Some(calls), quiet, overwrite);
    if json {
        let status = crate::status::of(&job, Some(calls))?;
        outln!("{}", to_json(&status));
    }
    if !quiet {
        let apart = if unreached > 0 {
            format!(
                " ({} could not connect)",
                crate::words::count(unreached, "more attempt")
            )
        } else {
            String::new()
        };
        outln!(
            "{}: {}. Calls made: {calls}{apart}.",
            job.meta.id,
            results::summary_line(&counts)
        );
    }
    let code = match finish {
        Finish::Interrupted(why) => {
            let how = interrupted_text(&why, &job.meta.id);
            // With --json, stdout is the document's alone.
            if json {
                eprintln!("{how}");
            } else {
                outln!("{how}");
            }
            EXIT_INTERRUPTED
        }
        Finish::Completed => exit_for(&counts),
    };
    Ok(if results_ok || code == EXIT_INTERRUPTED {
        code
    } else {
        EXIT_ROWS_FAILED.max(code)
    })
}

/// Why the job stopped, and the way on.
fn interrupted_text(why: &crate::client::Halt, id: &str) -> String {
    use crate::client::Halt;
    match why {
        Halt::Stopped => format!("Interrupted; nothing is lost. Resume with: plbulk resume {id}"),
        Halt::KeyRefused { message } => format!(
            "Stopped: {}. No row failed for it. Check the key in the partner portal and with plbulk check, then resume with: plbulk resume {id}",
            message.trim_start_matches("not sent: ")
        ),
        Halt::Outage { .. } => format!(
            "Stopped: {}. No row failed for it. Resume when the API answers: plbulk resume {id}",
            why.to_string().trim_start_matches("not sent: ")
        ),
    }
}

/// The journal could not be written (a full disk, a failing drive): nothing more was sent
/// once it failed. Said as it is, with the way on, and the job marked interrupted if the
/// journal still takes that.
fn journal_failed(job: &JobRef, journal: &Journal, e: job::JobError) -> Result<i32, Error> {
    let marked = journal.set_job_state(JobState::Interrupted).is_ok();
    eprintln!(
        "error: {e}\nThe job stopped: its journal could not be written, so nothing more was sent. Rows already recorded are safe{}. Free some space (or fix the drive), then resume with: plbulk resume {}",
        if marked {
            ""
        } else {
            " (plbulk status shows the job as interrupted once its process has ended)"
        },
        job.meta.id
    );
    Ok(EXIT_INTERRUPTED)
}

/// Tells the user, as it happens, that the API stopped answering and when it answers again.
fn tell_outages(conn: &Connection, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
    use crate::client::{health::clock, HealthStatus};
    let mut rx = conn.client.health().subscribe();
    tokio::spawn(async move {
        let mut said_every = None;
        while rx.changed().await.is_ok() {
            let status = rx.borrow_and_update().clone();
            match status {
                HealthStatus::Down {
                    since_ms,
                    last_error,
                    probe_every,
                    waiting,
                } => {
                    // Said when it begins and as the wait between tries grows, not per request.
                    if said_every == Some(probe_every) {
                        continue;
                    }
                    said_every = Some(probe_every);
                    progress.println(&format!(
                        "The API has not answered since {} ({last_error}); {} waiting; trying again every {}. plbulk goes on by itself when it answers.",
                        clock(since_ms),
                        crate::words::count(waiting as u64, "request"),
                        humantime::format_duration(probe_every)
                    ));
                }
                HealthStatus::Answering {
                    recovered_from_ms: Some(since),
                } => {
                    said_every = None;
                    let down = Duration::from_millis(
                        (crate::journal::now_ms() - since).max(0) as u64 / 1000 * 1000,
                    );
                    progress.println(&format!(
                        "The API answers again (it did not for {}); carrying on.",
                        humantime::format_duration(down)
                    ));
                }
                HealthStatus::Answering {
                    recovered_from_ms: None,
                }
                | HealthStatus::Halted(_) => {}
            }
        }
    })
}

fn progress_for(
    journal: &Journal,
    conn: &Connection,
    options: &JobOptions,
    quiet: bool,
) -> Result<Arc<Progress>, Error> {
    Progress::of_journal(journal, conn.calls.clone(), options.rate(), quiet)
        .map_err(|e| job::JobError::from(e).into())
}

/// Writes the results; when that fails (a file open in Excel, a full disk), says so with the
/// way to write them elsewhere, and returns false: the job's outcome is safe in its journal.
fn results_or_hint(
    job: &JobRef,
    journal: &Journal,
    options: &JobOptions,
    calls: Option<u64>,
    quiet: bool,
    overwrite: bool,
) -> bool {
    match write_results(&job.dir, journal, options, calls, quiet, overwrite) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "{e}\nThe job's outcome is safe in its journal: write the results elsewhere with plbulk results {} --out OTHER.xlsx",
                job.meta.id
            );
            false
        }
    }
}

fn write_results(
    job_dir: &Path,
    journal: &Journal,
    options: &JobOptions,
    calls: Option<u64>,
    quiet: bool,
    overwrite: bool,
) -> Result<(), Error> {
    results::write(journal, &options.results, calls).map_err(|e| Error::Io(e.to_string()))?;
    if !quiet {
        outln!("Results: {}", options.results.display());
    }
    if options.undo_of.is_some() {
        // An undo's rows are not the user's to fix and run again: its results say what is
        // left to do by hand.
        return Ok(());
    }
    // The partner fixes rows in the to-fix file: one changed since this job wrote it is kept.
    let to_fix = crate::outputs::to_fix(&options.results, job_dir, overwrite);
    let n = results::write_to_fix(journal, &to_fix.path).map_err(|e| Error::Io(e.to_string()))?;
    if n == 0 {
        // An old one of the job's own would list rows that are done now.
        if to_fix.may_remove() {
            let _ = std::fs::remove_file(&to_fix.path);
        }
        crate::outputs::record_written(job_dir, &to_fix.path);
    } else {
        crate::outputs::record_written(job_dir, &to_fix.path);
        if let (Some(kept), false) = (&to_fix.kept, quiet) {
            outln!(
                "{} was changed since this job wrote it (it may hold your fixes), and is kept.",
                kept.display()
            );
        }
        if !quiet {
            outln!(
                "To fix: {} ({} that did not succeed, in the template's columns: fix them and run that file)",
                to_fix.path.display(),
                crate::words::count(n as u64, "row")
            );
        }
    }
    let unrun = journal
        .counts()
        .map_err(job::JobError::from)?
        .iter()
        .find(|(s, _)| *s == RowState::Pending)
        .map_or(0, |(_, n)| *n);
    if unrun > 0 && !quiet {
        let id = journal.meta().map_err(job::JobError::from)?.id;
        outln!(
            "Not run yet: {} (not in the to-fix file: plbulk resume {id} runs them)",
            crate::words::count(unrun, "row")
        );
    }
    Ok(())
}

fn exit_for(counts: &[(RowState, u64)]) -> i32 {
    if job::all_succeeded(counts) {
        EXIT_OK
    } else {
        EXIT_ROWS_FAILED
    }
}

/// Waits for Ctrl-C (or, on Unix, SIGTERM, as a service manager sends, or SIGHUP, as the
/// terminal sends when its window is closed: left to its default, SIGHUP ended plbulk with
/// no message and no results). False if signals cannot be listened for.
async fn wait_for_interrupt() -> bool {
    #[cfg(unix)]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::signal::unix::{signal, SignalKind};
        // A closed terminal hangs up twice (the kernel's SIGHUP, and the shell's passing it
        // on to its jobs as it exits): the second must not turn the graceful stop into a
        // quit before the results are written. Once hung up, a hangup is not asked again.
        static HUNG_UP: AtomicBool = AtomicBool::new(false);
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => return r.is_ok(),
                r = term.recv() => return r.is_some(),
                r = hup.recv() => {
                    if r.is_none() {
                        return false;
                    }
                    if !HUNG_UP.swap(true, Ordering::SeqCst) {
                        return true;
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// A line on stderr that cannot fail: after a SIGHUP the terminal is gone, and `eprintln!`
/// would panic on it, before the stop it announces was asked for.
fn tell(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Pre-flight findings printed before a run goes on; the rest are counted, and `validate
/// --online` reports them all.
const PREFLIGHT_SHOWN: usize = 10;

/// What the pre-flight lets a run do.
enum Preflight {
    /// Go on; what the update rows change, field by field.
    Go(Vec<crate::preflight::Change>),
    /// Refused for its errors, said on stderr.
    Refused,
}

/// The online pre-flight, applied to the plan: its errors make rows invalid (or refuse the
/// run), and update rows that would change nothing end as *no change* without a call. Its
/// findings are printed.
async fn preflight(
    inputs: &crate::plan::Inputs,
    plan: &mut crate::plan::Plan,
    conn: &Connection,
    existing: crate::engine::Existing,
    skip_invalid: bool,
    quiet: bool,
) -> Result<Preflight, Error> {
    let busy = crate::progress::Busy::start(
        "Checking the account before any write (customers, numbers, products, postcodes)",
        conn.calls.clone(),
        quiet,
    );
    let checked = crate::preflight::check(inputs, plan, &conn.look, Some(existing)).await;
    drop(busy);
    let checked = checked
        .map_err(|e| {
            Error::reading(
                "the check of the account before the run could not read it; nothing was sent (try again, or skip the check with --no-preflight)",
                &e,
            )
        })?;
    let errors = checked
        .findings
        .iter()
        .filter(|(_, f)| f.severity == crate::findings::Severity::Error)
        .count();
    if !quiet {
        use crate::findings::Severity;
        let said = checked
            .findings
            .iter()
            .map(|(_, f)| f)
            .filter(|f| f.severity != Severity::Note);
        let warnings = said.clone().count() - errors;
        if errors + warnings > 0 {
            outln!(
                "Pre-flight: {}, {}.",
                crate::words::count(errors as u64, "error"),
                crate::words::count(warnings as u64, "warning")
            );
            super::validate::print_findings(
                said,
                (errors + warnings) as u64,
                PREFLIGHT_SHOWN,
                &format!(
                    "(plbulk validate --online {} writes a report of them all)",
                    inputs
                        .files
                        .iter()
                        .map(|f| shell_word(f))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
        }
    } else {
        // Quiet (or --json, whose stdout is the document's alone): the errors still, on stderr.
        for (_, f) in checked
            .findings
            .iter()
            .filter(|(_, f)| f.severity == crate::findings::Severity::Error)
        {
            eprintln!("  {f}");
        }
    }
    if errors > 0 && !skip_invalid {
        eprintln!(
            "refused: the online pre-flight found {errors} error{}; nothing was written. Fix them, or run with --skip-invalid to run the other rows and record these as invalid.",
            if errors == 1 { "" } else { "s" }
        );
        return Ok(Preflight::Refused);
    }
    for (i, f) in &checked.findings {
        if f.severity == crate::findings::Severity::Error {
            let row = &mut plan.rows[*i];
            row.state = RowState::Invalid;
            row.work = None;
            row.detail = Some(match &f.header {
                Some(h) => format!("{h}: {}", f.message),
                None => f.message.clone(),
            });
        }
    }
    for &i in &checked.unchanged {
        let row = &mut plan.rows[i];
        if row.state == RowState::Pending {
            row.state = RowState::Unchanged;
            row.work = None;
            row.detail = Some("the account holds these values already: not sent".into());
        }
    }
    if !quiet && !checked.unchanged.is_empty() {
        outln!(
            "  {} nothing in the account and will not be sent.",
            match checked.unchanged.len() {
                1 => "1 update row changes".to_string(),
                n => format!("{n} update rows change"),
            }
        );
    }
    Ok(Preflight::Go(checked.changes))
}

/// `--dry-run`: the plan's calls in order, and, read from the account (without a write), each
/// field an update row would change and the rows that would change nothing.
async fn dry_run(
    inputs: &crate::plan::Inputs,
    mut plan: crate::plan::Plan,
    args: &RunArgs,
    quiet: bool,
) -> Result<i32, Error> {
    let rate = args.rate.unwrap_or_default();
    if !args.no_preflight {
        let settings = settings_of(args)?;
        let options = JobOptions::reading(rate);
        let options = JobOptions {
            sandbox: rehearsal_of(args).is_some(),
            rehearsal: rehearsal_of(args),
            ..options
        };
        let account = options
            .rehearsal
            .as_ref()
            .map(|r| job::Account::for_new(r, true, "plbulk run --dry-run"))
            .transpose();
        let opened = match account {
            Ok(account) => Connection::open(&options, settings.as_ref(), account).await,
            Err(e) => Err(e),
        };
        match opened {
            Ok(conn) => {
                let r = preflight(inputs, &mut plan, &conn, args.existing, true, quiet).await;
                conn.close().await;
                if let Preflight::Go(changes) = r? {
                    print_changes(&plan, inputs, &changes);
                }
            }
            Err(e) => outln!(
                "The account's current values are not shown ({e}); the calls below are the plan's."
            ),
        }
    }
    outln!("Dry run: nothing is sent. The job would make, in this order:");
    print_calls(&plan, rate);
    Ok(EXIT_OK)
}

fn print_changes(
    plan: &crate::plan::Plan,
    inputs: &crate::plan::Inputs,
    changes: &[crate::preflight::Change],
) {
    if changes.is_empty() {
        return;
    }
    outln!("Changes the update rows would make, field by field (now → after):");
    for ch in changes.iter().take(50) {
        let row = &plan.rows[ch.row];
        let sheet = &inputs.sheets[row.sheet as usize].name;
        outln!(
            "  {sheet} row {} ({}): {}: {} → {}",
            row.row_no,
            ch.entity,
            ch.field,
            quoted(&ch.now),
            quoted(&ch.after)
        );
    }
    if changes.len() > 50 {
        outln!("  … and {} more", changes.len() - 50);
    }
}

/// A value as a change line shows it: in plain quotes (Debug's escapes read as part of the
/// value), and a blank bare, so "(blank)" is not taken for the text typed.
fn quoted(v: &str) -> String {
    if v.is_empty() || v == "(blank)" {
        "(blank)".into()
    } else {
        format!("\"{v}\"")
    }
}

/// The plan's calls, in order, with the time they take at `rate`.
pub(super) fn print_calls(plan: &crate::plan::Plan, rate: crate::pacing::Rate) {
    let calls = plan.calls();
    let writes: u64 = calls.iter().map(|(_, n)| *n).sum();
    for (op, n) in &calls {
        outln!(
            "  {n:>8}  {:<28} {} {}",
            op.name(),
            op.method().as_str(),
            op.template()
        );
    }
    let invalid = plan
        .rows
        .iter()
        .filter(|r| r.state == RowState::Invalid)
        .count();
    if invalid > 0 {
        outln!(
            "  ({} would be recorded as such and not sent)",
            crate::words::count(invalid as u64, "invalid row")
        );
    }
    // Look-ups: one list of customers, products and partner users at most, and one list per
    // existing customer and collection the rows touch; an estimate, shown as such.
    outln!("  plus authentication and a few look-ups (List calls, at most one per collection).");
    let secs = writes as f64 / rate.per_second();
    outln!(
        "{} at {} {} at least {}.",
        crate::words::count(writes, "write"),
        rate,
        if writes == 1 { "takes" } else { "take" },
        humantime::format_duration(std::time::Duration::from_secs(secs.ceil() as u64))
    );
}

/// The results path from the working directory: the job is resumed from anywhere, and the
/// file need not exist yet.
pub(super) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
