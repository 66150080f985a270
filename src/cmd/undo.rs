//! `plbulk undo JOB` and `plbulk abandon JOB`: reverse a job as a job of its own (through the
//! [`crate::pipeline`], as any job), and give up an unfinished one so that it can be undone as
//! far as it went.

use crate::cli::{AbandonArgs, UndoArgs};
use crate::job;
use crate::pipeline;
use crate::undo;

use super::run::{drive, print_calls};
use super::{Error, EXIT_OK};

pub async fn run(args: UndoArgs, quiet: bool) -> Result<i32, Error> {
    if args.concurrency == Some(0) {
        return Err(Error::Usage("--concurrency must be at least 1".into()));
    }
    let root = job::jobs_root(args.job_dir.as_deref());
    let source = job::find(&root, Some(&args.job))?;
    let was = pipeline::undoable(&source)?;
    let id = &source.meta.id;
    if args.sandbox && !was.sandbox {
        return Err(Error::Refused(format!(
            "job {id} ran on {} with key {}, not on a rehearsal account: an undo runs on the account its job ran on, so it cannot be rehearsed. To undo it there: plbulk undo {id} (without --sandbox; --dry-run lists what it would do)",
            source.meta.base_url, source.meta.key_id
        )));
    }
    // One undo of a job: an unfinished one goes on, a finished one is not done again.
    if let Some(earlier) = pipeline::undo_begun(&root, &source)? {
        if !quiet {
            outln!(
                "Job {id} has an unfinished undo, {}: resuming it.",
                earlier.meta.id
            );
        }
        return super::run::resume(
            crate::cli::ResumeArgs {
                job: Some(earlier.meta.id.clone()),
                map: None,
                job_dir: args.job_dir.clone(),
                concurrency: args.concurrency,
                rate: args.rate,
                results: args.results.clone(),
                max_outage: None,
                overwrite: args.overwrite,
            },
            quiet,
        )
        .await;
    }

    let (journal, up) = pipeline::plan_undo(&source, args.force)?;
    let rate = args.rate.unwrap_or(was.rate);
    if args.dry_run {
        outln!("Dry run of the undo of job {id}: nothing is sent. It would make, in this order:");
        print_calls(&up.plan, rate);
        print_irreversible(&up);
        return Ok(EXIT_OK);
    }
    // Before asking, and before the first call: the undo's results never replace the job's,
    // nor its inputs.
    let sources: Vec<&str> = source.meta.inputs.iter().map(|f| f.path.as_str()).collect();
    let requested = args
        .results
        .clone()
        .unwrap_or_else(|| was.results.with_extension("undo.xlsx"));
    let results = crate::outputs::results_for_new_job(
        &requested,
        &sources,
        pipeline::results_held_by(&root, &requested),
        args.overwrite,
        &crate::outputs::stamp_now(),
    )?;
    if let (Some(note), false) = (results.note(), quiet) {
        outln!("{note}");
    }
    if !quiet {
        print_irreversible(&up);
    }
    if !args.yes && asks() {
        let on = if was.sandbox {
            "the rehearsal (sandbox) account".to_string()
        } else {
            format!("{} with key {}", source.meta.base_url, source.meta.key_id)
        };
        outln!("The undo of job {id} on {on} will make, in this order:");
        print_calls(&up.plan, rate);
        if !confirm("Start the undo?") {
            outln!("Nothing was sent. (plbulk undo {id} --yes starts without asking.)");
            return Ok(super::EXIT_REFUSED);
        }
    }

    let options = pipeline::undo_options(
        &source,
        &was,
        &results.path,
        Some(rate),
        args.concurrency,
        args.force,
    );
    // On the account the job ran on: its rehearsal's sandbox, or its endpoint with its key.
    let mut conn = pipeline::connect_job(&source, &journal, &options, "undo it").await?;
    let held = pipeline::create_job(&root, Vec::new(), &up.plan, options, &mut conn, None)?;
    if !quiet {
        outln!(
            "Job {} undoes job {id} on {}: {}; journal {}",
            held.id(),
            conn.base_url,
            crate::words::count(up.plan.source_rows(), "row"),
            held.job.journal_path().display()
        );
    }
    drop(up);
    drive(held, conn, quiet, false, args.overwrite).await
}

/// Whether to ask before starting: only someone at a terminal can answer, and a script must
/// not hang on a question nobody sees.
fn asks() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks `question` on the terminal; anything but y or yes is no, as is a closed input.
fn confirm(question: &str) -> bool {
    use std::io::Write;
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    match std::io::stdin().read_line(&mut answer) {
        Ok(0) | Err(_) => false,
        Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
    }
}

fn print_irreversible(up: &undo::UndoPlan) {
    if up.left_alone > 0 {
        outln!(
            "  {} left alone: what they name was in the account before the job.",
            match up.left_alone {
                1 => "1 row is".to_string(),
                n => format!("{n} rows are"),
            }
        );
    }
    if up.irreversible.is_empty() {
        return;
    }
    outln!(
        "  {} be reversed through the API (the results say so on each):",
        match up.irreversible.len() {
            1 => "1 row cannot".to_string(),
            n => format!("{n} rows cannot"),
        }
    );
    for line in up.irreversible.iter().take(20) {
        outln!("    {line}");
    }
    if up.irreversible.len() > 20 {
        outln!("    … and {} more", up.irreversible.len() - 20);
    }
}

pub fn abandon(args: AbandonArgs, quiet: bool) -> Result<i32, Error> {
    let root = job::jobs_root(args.job_dir.as_deref());
    let job = job::find(&root, Some(&args.job))?;
    let id = &job.meta.id;
    pipeline::abandon(&job)?;
    if !quiet {
        outln!(
            "Job {id} is abandoned: its pending rows will not run. plbulk undo {id} reverses what it did."
        );
    }
    Ok(EXIT_OK)
}
