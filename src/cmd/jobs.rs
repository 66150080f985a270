//! `plbulk status` and `plbulk jobs`: what the journals say, read without disturbing a job that
//! is running (the journal is in WAL mode, so a reader never blocks it).

use std::time::Duration;

use crate::cli::{JobsArgs, ResultsArgs, ResultsFormat, StatusArgs};
use crate::job::{self, Found, JobRef};
use crate::journal::{self, Journal};
use crate::model::RowState;
use crate::results;

use super::{Error, EXIT_OK};

/// The job named, or the latest unfinished one, or else the latest. One whose journal cannot
/// be read is an error saying so.
fn pick(job_dir: Option<&std::path::Path>, id: Option<&str>) -> Result<JobRef, Error> {
    let root = job::jobs_root(job_dir);
    Ok(match id {
        Some(id) => job::find(&root, Some(id))?,
        None => match job::find(&root, None) {
            Ok(j) => j,
            Err(_) => match job::list_all(&root).pop() {
                Some(Found::Job(j)) => j,
                Some(Found::Unreadable(u)) => return Err(u.error().into()),
                None => {
                    return Err(Error::Refused(format!(
                        "no jobs under {} yet: plbulk run FILE makes one (jobs kept elsewhere are found with --job-dir or PLBULK_JOB_DIR)",
                        root.display()
                    )))
                }
            },
        },
    })
}

pub fn status(args: StatusArgs) -> Result<i32, Error> {
    let found = pick(args.job_dir.as_deref(), args.job.as_deref())?;
    if args.json {
        outln!("{}", super::to_json(&crate::status::of(&found, None)?));
    } else {
        print_status(&found)?;
    }
    Ok(EXIT_OK)
}

/// `plbulk results`: the results of a job, now, from its journal.
pub fn write_results(args: ResultsArgs, quiet: bool) -> Result<i32, Error> {
    let found = pick(args.job_dir.as_deref(), args.job.as_deref())?;
    let out = match args.out {
        Some(p) => p,
        None => found.options()?.results,
    };
    let inputs: Vec<&str> = found.meta.inputs.iter().map(|f| f.path.as_str()).collect();
    let csv = match args.format {
        ResultsFormat::Csv => true,
        ResultsFormat::Xlsx => false,
    };
    if csv {
        // One CSV per sheet, named after `out`; the name itself must not be an input.
        crate::outputs::not_an_input(&out, &inputs, crate::outputs::Output::Results)?;
    } else {
        crate::outputs::results_for_job(&out, &found.meta.id, &inputs, args.overwrite)?;
    }
    let journal = Journal::open(&found.journal_path()).map_err(job::JobError::from)?;
    let written = if csv {
        results::write_csv(&journal, &out).map_err(|e| Error::Io(e.to_string()))?
    } else {
        results::write(&journal, &out, None).map_err(|e| Error::Io(e.to_string()))?;
        vec![out]
    };
    if !quiet {
        for w in written {
            outln!("Results: {}", w.display());
        }
    }
    Ok(EXIT_OK)
}

fn print_status(j: &JobRef) -> Result<(), Error> {
    let journal = Journal::open(&j.journal_path()).map_err(job::JobError::from)?;
    let meta = journal.meta().map_err(job::JobError::from)?;
    let counts = journal.counts().map_err(job::JobError::from)?;
    let (attempts, first, last) = journal.attempt_stats().map_err(job::JobError::from)?;
    let options = j.options()?;
    outln!("Job {}", meta.id);
    let now = j.state_now(meta.state);
    if now.process_ended {
        outln!(
            "  state:    interrupted (its process ended without finishing; plbulk resume {} goes on)",
            meta.id
        );
    } else {
        outln!("  state:    {}", now.state.as_str());
    }
    outln!("  created:  {}", results::time_text(meta.created_at_ms));
    for f in &meta.inputs {
        outln!("  input:    {}", f.path);
    }
    if let Some(of) = &options.undo_of {
        outln!("  undoes:   job {of}");
    }
    outln!(
        "  API:      {}{} (key {})",
        meta.base_url,
        if options.sandbox {
            " (in-process sandbox)"
        } else {
            ""
        },
        meta.key_id
    );
    outln!("  rows:     {}", results::summary_line(&counts));
    for (s, n) in &counts {
        outln!("    {:<16} {n}", s.label());
    }
    outln!("  writes:   {attempts} sent");
    if let (Some(f), Some(l)) = (first, last) {
        outln!(
            "  calls:    first {}, last {}",
            results::time_text(f),
            results::time_text(l)
        );
    }
    let pending = counts
        .iter()
        .find(|(s, _)| *s == RowState::Pending)
        .map_or(0, |(_, n)| *n);
    if pending > 0 {
        let rate = options.rate;
        let secs = pending as f64 / rate.per_second();
        outln!(
            "  left:     {}, about {} at {}",
            crate::words::count(pending, "row"),
            humantime::format_duration(Duration::from_secs(secs.ceil() as u64)),
            rate
        );
        if meta.state.is_open() {
            outln!("  resume:   plbulk resume {}", meta.id);
        }
    }
    outln!("  results:  {}", options.results.display());
    outln!("  journal:  {}", j.journal_path().display());
    Ok(())
}

pub fn list(args: JobsArgs) -> Result<i32, Error> {
    let root = job::jobs_root(args.job_dir.as_deref());
    let all = job::list_all(&root);
    if args.json {
        outln!("{}", super::to_json(&crate::status::list(&all)));
        return Ok(EXIT_OK);
    }
    if all.is_empty() {
        outln!("No jobs under {}.", root.display());
        return Ok(EXIT_OK);
    }
    outln!(
        "{:<24} {:<12} {:<20} {:<12} {:<32} rows",
        "job",
        "state",
        "created",
        "on",
        "input"
    );
    for found in &all {
        let j = match found {
            Found::Job(j) => j,
            Found::Unreadable(u) => {
                let created = match u.created_at_ms() {
                    0 => String::new(),
                    ms => results::time_text(ms),
                };
                outln!(
                    "{:<24} {:<12} {:<20} {:<12} {:<32} {}",
                    u.id,
                    "unreadable",
                    created,
                    "",
                    "",
                    u.message()
                );
                continue;
            }
        };
        let counts = journal::Journal::open(&j.journal_path())
            .and_then(|jr| jr.counts())
            .map(|c| results::summary_line(&c))
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        let (on, input) = match j.options() {
            Ok(o) => (
                if o.sandbox {
                    "rehearsal".to_string()
                } else {
                    crate::status::host_of(&j.meta.base_url).to_string()
                },
                match &o.undo_of {
                    Some(of) => format!("undo of {of}"),
                    None => j
                        .meta
                        .inputs
                        .iter()
                        .map(|f| results::file_name(&f.path))
                        .collect::<Vec<_>>()
                        .join(", "),
                },
            ),
            Err(e) => (String::new(), format!("unreadable options: {e}")),
        };
        outln!(
            "{:<24} {:<12} {:<20} {:<12} {:<32} {counts}",
            j.meta.id,
            j.state_now(j.meta.state).state.as_str(),
            results::time_text(j.meta.created_at_ms),
            on,
            input,
        );
    }
    Ok(EXIT_OK)
}
