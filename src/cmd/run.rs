//! `plbulk run` and `plbulk resume`: flags into job options, the [`crate::pipeline`] called
//! step by step, and what it returns and tells printed; Ctrl-C is its stop.

use std::path::PathBuf;

use crate::cli::{ResumeArgs, RunArgs};
use crate::engine::Finish;
use crate::findings::Severity;
use crate::job;
use crate::model::RowState;
use crate::pipeline::{self, Begun, Choices, Ended, Given, Held, Opened, Outputs, Refusal};
use crate::progress::Progress;
use crate::results;

use super::{to_json, Error, EXIT_INTERRUPTED, EXIT_OK, EXIT_REFUSED, EXIT_ROWS_FAILED};

pub async fn run(args: RunArgs, quiet: bool) -> Result<i32, Error> {
    // With --json, stdout holds the one document and nothing else.
    let json = args.json;
    let quiet = quiet || json;
    let choices = choices_of(&args);
    let mut terminal = Terminal {
        quiet,
        json,
        input: input_words(&args.files, args.map.as_deref()),
        busy: None,
    };
    match pipeline::begin(&choices, &mut terminal).await? {
        Begun::Refused(Refusal::Unreadable) => Ok(EXIT_REFUSED),
        Begun::Refused(Refusal::Invalid(errors)) => {
            eprintln!(
                "refused: {errors} error{} in the input; nothing was sent. Fix them (plbulk validate {} writes a report with each bad cell marked), or run with --skip-invalid to run the valid rows and record the others as invalid.",
                if errors == 1 { "" } else { "s" },
                terminal.input
            );
            Ok(EXIT_REFUSED)
        }
        // Said by `Terminal::checked`, with the findings.
        Begun::Refused(Refusal::Preflight(_)) => Ok(EXIT_REFUSED),
        Begun::DryRun(planned) => dry_run(planned, &choices, quiet).await,
        Begun::Resume { job, lock } => {
            if !quiet {
                outln!(
                    "This input has an unfinished job, {} (started {}): resuming it.",
                    job.meta.id,
                    results::time_text(job.meta.created_at_ms)
                );
            }
            let given = Given {
                rate: args.rate,
                concurrency: args.concurrency,
                results: args.results.clone(),
                max_outage: args.max_outage,
                overwrite: args.overwrite,
                map: args.map.clone(),
            };
            resume_job(job, given, Some(lock), quiet, json).await
        }
        Begun::Created(created) => {
            let pipeline::Created { held, conn, rows } = *created;
            if !quiet {
                outln!(
                    "Job {} on {}{}: {}; journal {}",
                    held.id(),
                    conn.base_url,
                    match &held.options.rehearsal {
                        Some(r) => format!(" (in-process sandbox, on {})", r.describe()),
                        None => String::new(),
                    },
                    crate::words::count(rows, "row"),
                    held.job.journal_path().display()
                );
            }
            drive(held, conn, quiet, json, args.overwrite).await
        }
    }
}

/// The flags as the pipeline's choices: the verb gathers, [`pipeline::begin`] does.
fn choices_of(args: &RunArgs) -> Choices {
    Choices {
        command: "plbulk run",
        root: job::jobs_root(args.job_dir.as_deref()),
        files: args.files.clone(),
        kind: args.kind,
        map: args.map.clone(),
        rehearsal: rehearsal_of(args),
        base_url: args.base_url.clone(),
        results: args.results.clone(),
        overwrite: args.overwrite,
        concurrency: args.concurrency,
        rate: args.rate,
        existing: args.existing,
        skip_invalid: args.skip_invalid,
        new_job: args.new_job,
        preflight: !args.no_preflight,
        dry_run: args.dry_run,
        timeout: args.timeout,
        max_outage: args.max_outage,
    }
}

/// `plbulk run`'s way of showing the steps: on the terminal, nothing with -q, and with
/// --json only what must be seen, on stderr.
struct Terminal {
    quiet: bool,
    json: bool,
    /// The input as one would type it again.
    input: String,
    /// The spinner while the pre-flight reads the account.
    busy: Option<crate::progress::Busy>,
}

impl pipeline::Show for Terminal {
    fn read(&mut self, read: &pipeline::Read) {
        let inputs = &read.inputs;
        if !self.quiet {
            super::validate::print_summary(
                &inputs.outcome.sheets,
                &inputs.outcome.findings,
                read.errors(),
                10,
                &format!(
                    "(plbulk validate {} writes a report of them all)",
                    self.input
                ),
            );
        }
        for e in &inputs.unreadable {
            eprintln!("error: {e}");
        }
    }

    fn note(&mut self, note: &str) {
        say(note, self.quiet, self.json);
    }

    fn checking(&mut self, conn: &crate::job::Connection) {
        self.busy = Some(checking(conn, self.quiet));
    }

    fn checked(&mut self, pre: &pipeline::Preflight, planned: &pipeline::Planned, refuses: bool) {
        self.busy = None;
        show_preflight(pre, planned, refuses, self.quiet);
    }

    fn unread(&mut self) -> &'static str {
        self.busy = None;
        "the check of the account before the run could not read it; nothing was sent (try again, or skip the check with --no-preflight)"
    }
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
        map: args.map,
    };
    resume_job(job, given, None, quiet, false).await
}

async fn resume_job(
    job: job::JobRef,
    given: Given,
    input_lock: Option<job::InputLock>,
    quiet: bool,
    json: bool,
) -> Result<i32, Error> {
    let held = match pipeline::open_job(job, &given, input_lock)? {
        Opened::Ready(held) => held,
        Opened::Finished(held) => {
            let counts = held.counts()?;
            if !quiet {
                outln!(
                    "Job {} finished already: {}.",
                    held.id(),
                    results::summary_line(&counts)
                );
            }
            let code = exit_for(&counts);
            let outputs = pipeline::write_outputs(&held, None, given.overwrite);
            return Ok(if print_outputs(&held, &outputs, quiet) {
                code
            } else {
                EXIT_ROWS_FAILED.max(code)
            });
        }
    };
    let conn = pipeline::connect_job(&held.job, &held.journal, &held.options, "resume it").await?;
    if !quiet {
        let counts = held.counts()?;
        outln!(
            "Resuming job {} on {}: {} so far.",
            held.id(),
            match &held.options.rehearsal {
                Some(r) => format!("the in-process sandbox, on {}", r.describe()),
                None => held.job.meta.base_url.clone(),
            },
            results::summary_line(&counts)
        );
    }
    drive(held, conn, quiet, json, given.overwrite).await
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

/// Runs the job with Ctrl-C as its stop and progress shown, then writes the results. Every
/// end is said as it is: a job that stopped for any reason (Ctrl-C, a refused key, an outage,
/// a journal that cannot be written) ends interrupted, exit 3, with the line that resumes it.
pub(super) async fn drive(
    held: Held,
    conn: crate::job::Connection,
    quiet: bool,
    json: bool,
    overwrite: bool,
) -> Result<i32, Error> {
    let stop = pipeline::Stop::new();
    let signals = {
        let (stop, id) = (stop.clone(), held.id().to_string());
        tokio::spawn(async move {
            if wait_for_interrupt().await {
                tell("\nStopping: no new rows, and nothing more is sent; the answers of the requests already sent are recorded. Ctrl-C again to quit at once (the job stays resumable).");
                stop.stop();
            }
            if wait_for_interrupt().await {
                tell(&format!("Quit. Resume with: plbulk resume {id}"));
                std::process::exit(EXIT_INTERRUPTED);
            }
        })
    };
    let progress = Progress::of_board(held.board()?, conn.calls.clone(), held.options.rate, quiet);
    let ticker = progress.ticker();
    let running = pipeline::start(held, conn, stop, progress.clone());
    let ran = running.wait().await;
    ticker.abort();
    progress.finish();
    signals.abort();
    let done = match pipeline::finish(ran, overwrite)? {
        Ended::Ran(done) => done,
        Ended::JournalFailed {
            held,
            error,
            marked,
        } => {
            eprintln!(
                "error: {error}\nThe job stopped: its journal could not be written, so nothing more was sent. Rows already recorded are safe{}. Free some space (or fix the drive), then resume with: plbulk resume {}",
                if marked {
                    ""
                } else {
                    " (plbulk status shows the job as interrupted once its process has ended)"
                },
                held.id()
            );
            return Ok(EXIT_INTERRUPTED);
        }
    };
    let id = done.held.id();
    let results_ok = print_outputs(&done.held, &done.outputs, quiet);
    if json {
        let status = crate::status::of(&done.held.job, Some(done.calls))?;
        outln!("{}", to_json(&status));
    }
    if !quiet {
        let apart = if done.unreached > 0 {
            format!(
                " ({} could not connect)",
                crate::words::count(done.unreached, "more attempt")
            )
        } else {
            String::new()
        };
        outln!(
            "{id}: {}. Calls made: {}{apart}.",
            results::summary_line(&done.counts),
            done.calls
        );
    }
    let code = match &done.finish {
        Finish::Interrupted(why) => {
            let how = interrupted_text(why, id);
            // With --json, stdout is the document's alone.
            if json {
                eprintln!("{how}");
            } else {
                outln!("{how}");
            }
            EXIT_INTERRUPTED
        }
        Finish::Completed => exit_for(&done.counts),
    };
    Ok(if results_ok || code == EXIT_INTERRUPTED {
        code
    } else {
        EXIT_ROWS_FAILED.max(code)
    })
}

/// Says what the job's end wrote; when writing failed (a file open in Excel, a full disk),
/// says so with the way to write them elsewhere, and returns false: the job's outcome is safe
/// in its journal.
fn print_outputs(held: &Held, out: &Outputs, quiet: bool) -> bool {
    if let (Some(path), false) = (&out.results, quiet) {
        outln!("Results: {}", path.display());
    }
    if let (Some(kept), false) = (&out.kept, quiet) {
        outln!(
            "{} was changed since this job wrote it (it may hold your fixes), and is kept.",
            kept.display()
        );
    }
    if let (Some((path, n)), false) = (&out.to_fix, quiet) {
        outln!(
            "To fix: {} ({} that did not succeed, {})",
            path.display(),
            crate::words::count(*n, "row"),
            match &held.options.map {
                Some(m) => format!(
                    "in the export's own columns: fix them and run that file with --map {}",
                    shell_word(&m.path)
                ),
                None => "in the template's columns: fix them and run that file".into(),
            }
        );
    }
    if out.not_run > 0 && !quiet {
        outln!(
            "Not run yet: {} (not in the to-fix file: plbulk resume {} runs them)",
            crate::words::count(out.not_run, "row"),
            held.id()
        );
    }
    match &out.error {
        None => true,
        Some(e) => {
            eprintln!(
                "{e}\nThe job's outcome is safe in its journal: write the results elsewhere with plbulk results {} --out OTHER.xlsx",
                held.id()
            );
            false
        }
    }
}

/// Pre-flight findings printed before a run goes on; the rest are counted, and `validate
/// --online` reports them all.
const PREFLIGHT_SHOWN: usize = 10;

/// The spinner while the pre-flight reads the account.
fn checking(conn: &crate::job::Connection, quiet: bool) -> crate::progress::Busy {
    crate::progress::Busy::start(
        "Checking the account before any write (customers, numbers, products, postcodes)",
        conn.calls.clone(),
        quiet,
    )
}

/// The online pre-flight's findings printed, and (`refuses`) why the run does not go on, on
/// stderr.
fn show_preflight(
    pre: &pipeline::Preflight,
    planned: &pipeline::Planned,
    refuses: bool,
    quiet: bool,
) {
    let errors = pre.errors();
    if !quiet {
        let warnings = pre.said().count() - errors;
        if errors + warnings > 0 {
            outln!(
                "Pre-flight: {}, {}.",
                crate::words::count(errors as u64, "error"),
                crate::words::count(warnings as u64, "warning")
            );
            super::validate::print_findings(
                pre.said(),
                (errors + warnings) as u64,
                PREFLIGHT_SHOWN,
                &format!(
                    "(plbulk validate --online {} writes a report of them all)",
                    input_words(
                        &planned.inputs.files,
                        planned.inputs.mapping.as_deref().map(|m| m.path())
                    )
                ),
            );
        }
    } else {
        // Quiet (or --json, whose stdout is the document's alone): the errors still, on stderr.
        for f in pre.said().filter(|f| f.severity == Severity::Error) {
            eprintln!("  {f}");
        }
    }
    if refuses {
        eprintln!(
            "refused: the online pre-flight found {errors} error{}; nothing was written. Fix them, or run with --skip-invalid to run the other rows and record these as invalid.",
            if errors == 1 { "" } else { "s" }
        );
        return;
    }
    let unchanged = pre.checked.unchanged.len();
    if !quiet && unchanged > 0 {
        outln!(
            "  {} nothing in the account and will not be sent.",
            match unchanged {
                1 => "1 update row changes".to_string(),
                n => format!("{n} update rows change"),
            }
        );
    }
}

/// `--dry-run`: the plan's calls in order, and, read from the account (without a write), each
/// field an update row would change and the rows that would change nothing.
async fn dry_run(
    mut planned: pipeline::Planned,
    choices: &Choices,
    quiet: bool,
) -> Result<i32, Error> {
    let rate = choices.rate.unwrap_or_default();
    if choices.preflight {
        let settings = choices.settings()?;
        let opened = pipeline::connect_reading(
            rate,
            choices.rehearsal.clone(),
            settings.as_ref(),
            "plbulk run --dry-run",
        )
        .await;
        match opened {
            Ok(conn) => {
                let busy = checking(&conn, quiet);
                let checked = pipeline::preflight(&planned, &conn, Some(choices.existing)).await;
                drop(busy);
                conn.close().await;
                let pre = checked.map_err(|e| {
                    Error::reading(
                        "the check of the account before the run could not read it; nothing was sent (try again, or skip the check with --no-preflight)",
                        &e,
                    )
                })?;
                show_preflight(&pre, &planned, false, quiet);
                pre.apply(&mut planned.plan);
                print_changes(&planned, &pre.checked.changes);
            }
            Err(e) => outln!(
                "The account's current values are not shown ({e}); the calls below are the plan's."
            ),
        }
    }
    outln!("Dry run: nothing is sent. The job would make, in this order:");
    print_calls(&planned.plan, rate);
    print_expansions(&planned.plan);
    Ok(EXIT_OK)
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

fn print_changes(planned: &pipeline::Planned, changes: &[crate::preflight::Change]) {
    let (plan, inputs) = (&planned.plan, &planned.inputs);
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
            pipeline::quoted(&ch.now),
            pipeline::quoted(&ch.after)
        );
    }
    if changes.len() > 50 {
        outln!("  … and {} more", changes.len() - 50);
    }
}

/// The plan's calls, in order, with the time they take at `rate`.
pub(super) fn print_calls(plan: &crate::plan::Plan, rate: crate::pacing::Rate) {
    let calls = pipeline::Calls::of(plan, rate);
    for (op, n) in &calls.each {
        outln!(
            "  {n:>8}  {:<28} {} {}",
            op.name(),
            op.method().as_str(),
            op.template()
        );
    }
    if calls.invalid > 0 {
        outln!(
            "  ({} would be recorded as such and not sent)",
            crate::words::count(calls.invalid, "invalid row")
        );
    }
    // Look-ups: one list of customers, products and partner users at most, and one list per
    // existing customer and collection the rows touch; an estimate, shown as such.
    outln!("  plus authentication and a few look-ups (List calls, at most one per collection).");
    outln!(
        "{} at {} {} at least {}.",
        crate::words::count(calls.writes, "write"),
        rate,
        if calls.writes == 1 { "takes" } else { "take" },
        humantime::format_duration(calls.at_limit)
    );
}

/// What each row of several tasks (a Migration row) makes, rows that make the same together.
fn print_expansions(plan: &crate::plan::Plan) {
    let expansions = plan.expansions();
    if expansions.is_empty() {
        return;
    }
    outln!("Rows of several tasks, by the calls each makes:");
    for e in expansions {
        outln!(
            "  {} {}: {}{}: {}",
            e.sheet,
            e.rows_text(),
            crate::words::count(e.writes(), "write"),
            if e.rows.len() == 1 { "" } else { " each" },
            e.steps().join("; ")
        );
    }
}

fn shell_word(p: &std::path::Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The input files, and the mapping they are read through, as one would type them again.
fn input_words(files: &[PathBuf], map: Option<&std::path::Path>) -> String {
    let mut words: Vec<String> = files.iter().map(|f| shell_word(f)).collect();
    if let Some(m) = map {
        words.push(format!("--map {}", shell_word(m)));
    }
    words.join(" ")
}
