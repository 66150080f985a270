//! Steps 1 to 8 for a new job, in their one order: `plbulk run` and the page's Start both call
//! [`begin`], so a job started from either is read, checked, locked, placed and pre-flighted
//! the same way. What differs between them is only what they gather ([`Choices`]) and how they
//! show each step ([`Show`]): the terminal prints, the page renders what [`begin`] returns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::Settings;
use crate::engine::Existing;
use crate::job::{self, Connection, Endpoint, InputLock, JobOptions, JobRef};
use crate::pacing::Rate;
use crate::rehearsal::Rehearsal;
use crate::schema::Kind;

use super::{Error, Fingerprint, Held, Planned, Preflight, Read, Verdict};

/// Longest wait for one response in a new job when nothing says otherwise: `plbulk run`
/// without `--timeout`, and every job started from the page.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a new job is started from: the input and the choices a person made (on the command
/// line or on the page). None keeps the default, or what an unfinished job of this input
/// began with.
#[derive(Debug, Clone)]
pub struct Choices {
    /// Who starts it, as a rehearsal account's lock names its holder: "plbulk run".
    pub command: &'static str,
    /// Where the jobs are.
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    /// What a CSV file holds, when its headers do not say.
    pub kind: Option<Kind>,
    /// The mapping file the files are read through (`--map`).
    pub map: Option<PathBuf>,
    /// A rehearsal's account; None for the account of the settings.
    pub rehearsal: Option<Rehearsal>,
    /// The endpoint asked for (`--base-url`); the settings' otherwise.
    pub base_url: Option<String>,
    /// The results workbook [default: `FIRST-FILE.results.xlsx` beside it].
    pub results: Option<PathBuf>,
    pub overwrite: bool,
    pub concurrency: Option<usize>,
    pub rate: Option<Rate>,
    pub existing: Existing,
    pub skip_invalid: bool,
    /// Start a new job even though this input has an unfinished one.
    pub new_job: bool,
    /// Check the account before any write (the pre-flight).
    pub preflight: bool,
    /// Stop after the plan: the dry run's preview, nothing connected.
    pub dry_run: bool,
    pub timeout: Option<Duration>,
    pub max_outage: Option<Duration>,
}

impl Choices {
    /// The input files and the mapping: what a results file may never replace.
    pub fn inputs(&self) -> Vec<&Path> {
        self.files
            .iter()
            .map(PathBuf::as_path)
            .chain(self.map.as_deref())
            .collect()
    }

    /// The settings the job uses: none for a rehearsal.
    pub fn settings(&self) -> Result<Option<Settings>, Error> {
        if self.rehearsal.is_some() {
            return Ok(None);
        }
        Settings::load(self.base_url.as_deref())
            .map(Some)
            .map_err(|e| Error::Refused(e.to_string()))
    }
}

/// How the steps are shown as they happen, by the verb or the page; each does nothing unless
/// its caller shows it. The order of the calls is the order of the steps.
pub trait Show {
    /// The input read and validated (before the verdict).
    fn read(&mut self, _read: &Read) {}
    /// Where the results go, when it is not where they were asked to go.
    fn note(&mut self, _note: &str) {}
    /// The pre-flight is about to read the account.
    fn checking(&mut self, _conn: &Connection) {}
    /// The pre-flight's answer, and whether it refuses the job.
    fn checked(&mut self, _pre: &Preflight, _planned: &Planned, _refuses: bool) {}
    /// The words of a pre-flight that could not read the account.
    fn unread(&mut self) -> &'static str {
        "the check of the account before the run could not read it; nothing was sent (try again)"
    }
    /// The last word before the job is made, on the plan that runs: an error starts nothing.
    fn confirm(&mut self, _planned: &Planned, _options: &JobOptions) -> Result<(), Error> {
        Ok(())
    }
}

/// Why the input starts no job (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A file or sheet could not be read ([`Show::read`] was shown which).
    Unreadable,
    /// This many errors in the input, and invalid rows are not skipped.
    Invalid(u64),
    /// The pre-flight found this many errors, and invalid rows are not skipped.
    Preflight(usize),
}

/// How [`begin`] ended.
pub enum Begun {
    Refused(Refusal),
    /// `dry_run`: the plan, and nothing connected.
    DryRun(Planned),
    /// The input's unfinished job, to go on with instead, with the input's lock.
    Resume {
        job: JobRef,
        lock: InputLock,
    },
    /// A new job, made and held, with its connection: [`super::start`] runs it. Boxed: it
    /// is far larger than the others, and made once per job.
    Created(Box<Created>),
}

/// A new job made by [`begin`].
pub struct Created {
    pub held: Held,
    pub conn: Connection,
    /// The source rows of its plan (a Migration row is one, however many tasks).
    pub rows: u64,
}

/// Reads the input (through its mapping), checks it, plans it, takes its lock, finds the
/// unfinished job it goes on with or places the results, connects, pre-flights and makes the
/// job: everything before the engine's start, for `plbulk run` and the page alike.
pub async fn begin(choices: &Choices, show: &mut impl Show) -> Result<Begun, Error> {
    if choices.concurrency == Some(0) {
        return Err(Error::Usage("--concurrency must be at least 1".into()));
    }
    let mapping = super::load_mapping(choices.map.as_deref())?;
    let read = super::read(&choices.files, choices.kind, mapping);
    show.read(&read);
    match read.verdict(choices.skip_invalid) {
        Verdict::Go => {}
        Verdict::Unreadable => return Ok(Begun::Refused(Refusal::Unreadable)),
        Verdict::Invalid(n) => return Ok(Begun::Refused(Refusal::Invalid(n))),
    }
    let mut planned = read.plan();
    let fingerprint: Fingerprint = planned.fingerprint()?;
    if choices.dry_run {
        return Ok(Begun::DryRun(planned));
    }
    let settings = choices.settings()?;
    let endpoint = Endpoint::of_settings(settings.as_ref())?;
    // Before anything reads or writes the account: a second run of this input on this
    // endpoint must not start a job of its own.
    let input_lock = super::lock_input(&fingerprint, &endpoint, &choices.files)?;
    let mut options = JobOptions {
        kind: choices.kind,
        sandbox: choices.rehearsal.is_some(),
        results: super::absolute(
            &choices
                .results
                .clone()
                .unwrap_or_else(|| crate::outputs::beside(&choices.files[0], "results.xlsx")),
        ),
        concurrency: choices.concurrency.unwrap_or(super::DEFAULT_CONCURRENCY),
        rate: choices.rate.unwrap_or_default(),
        existing: choices.existing,
        skip_invalid: choices.skip_invalid,
        timeout_ms: choices.timeout.unwrap_or(DEFAULT_TIMEOUT).as_millis() as u64,
        undo_of: None,
        force: false,
        max_outage_ms: choices.max_outage.map(|d| d.as_millis() as u64),
        rehearsal: choices.rehearsal.clone(),
        map: planned.inputs.mapping.as_deref().map(job::MapRecord::of),
        one_shot: false,
    };
    if !choices.new_job {
        if let Some(job) = super::resumable(&choices.root, &fingerprint, &endpoint, &options)? {
            input_lock.set_job(&job.meta.id);
            return Ok(Begun::Resume {
                job,
                lock: input_lock,
            });
        }
    }
    // Before the first call: where the results go, or why they cannot (never over an input,
    // the mapping one of them).
    let chosen = crate::outputs::results_for_new_job(
        &options.results,
        &choices.inputs(),
        super::results_held_by(&choices.root, &options.results),
        choices.overwrite,
        &crate::outputs::stamp_now(),
    )?;
    if let Some(note) = chosen.note() {
        show.note(&note);
    }
    options.results = super::absolute(&chosen.path);
    let mut conn = super::connect_new(&options, settings.as_ref(), choices.command).await?;
    if choices.preflight {
        show.checking(&conn);
        let checked = super::preflight(&planned, &conn, Some(options.existing)).await;
        let pre = match checked {
            Ok(pre) => pre,
            Err(e) => {
                let what = show.unread();
                conn.close().await;
                return Err(Error::reading(what, &e));
            }
        };
        let refuses = pre.refuses(options.skip_invalid);
        show.checked(&pre, &planned, refuses);
        if refuses {
            conn.close().await;
            return Ok(Begun::Refused(Refusal::Preflight(pre.errors())));
        }
        pre.apply(&mut planned.plan);
    }
    if let Err(e) = show.confirm(&planned, &options) {
        conn.close().await;
        return Err(e);
    }
    let rows = planned.plan.source_rows();
    let held = super::create_job(
        &choices.root,
        fingerprint.files,
        &planned.plan,
        options,
        &mut conn,
        Some(input_lock),
    )?;
    Ok(Begun::Created(Box::new(Created { held, conn, rows })))
}
