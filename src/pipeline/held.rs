//! Step 7: the job on disk, created (a run, an undo) or opened to go on (a resume), and held
//! by this process; and the plan of an undo, from the journal of the job it reverses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::job::{self, Connection, InputLock, JobOptions, JobRef};
use crate::journal::{InputFile, JobLock, Journal};
use crate::model::{JobState, RowState};
use crate::pacing::Rate;
use crate::plan::Plan;

use super::{Board, Error};

/// A job on disk that this process holds: nobody else runs it until this is dropped.
pub struct Held {
    pub job: JobRef,
    pub journal: Arc<Journal>,
    /// The options it runs with (a resume's given ones applied).
    pub options: JobOptions,
    _lock: JobLock,
    _input: Option<InputLock>,
}

impl Held {
    pub fn id(&self) -> &str {
        &self.job.meta.id
    }

    /// Rows per state, as the journal has them now.
    pub fn counts(&self) -> Result<Vec<(RowState, u64)>, Error> {
        Ok(self.journal.counts()?)
    }

    /// Each sheet's rows as they stand, for progress.
    pub fn board(&self) -> Result<Board, Error> {
        Ok(Board::of_journal(&self.journal)?)
    }
}

/// Creates the job of `plan` (with its inputs as recorded, none for an undo) and holds it:
/// its journal, its lock, the input's lock (if a run took one) now naming it, and a rehearsal
/// account tied to it.
pub fn create_job(
    root: &Path,
    files: Vec<InputFile>,
    plan: &Plan,
    options: JobOptions,
    conn: &mut Connection,
    input: Option<InputLock>,
) -> Result<Held, Error> {
    let (job, journal) = job::create(root, files, &options, plan, &conn.base_url, &conn.key_id)?;
    // Said as soon as the job has a name: a second run refused meanwhile names it.
    if let Some(l) = &input {
        l.set_job(&job.meta.id);
    }
    let lock = job.lock()?;
    // An undo's account was opened in the name of the job it reverses, and stays so.
    if options.undo_of.is_none() {
        conn.hold_for(&job)?;
    }
    Ok(Held {
        job,
        journal,
        options,
        _lock: lock,
        _input: input,
    })
}

/// What a resume was given that may differ from how its job began; None keeps the job's.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub rate: Option<Rate>,
    pub concurrency: Option<usize>,
    pub results: Option<PathBuf>,
    pub max_outage: Option<Duration>,
    /// Replace a file at the results path that plbulk would keep.
    pub overwrite: bool,
    /// The mapping file the job ran with, where it is now (`--map`): it must be that file as
    /// it was. None: the one the job recorded, checked where it was.
    pub map: Option<PathBuf>,
}

/// A job opened to go on.
pub enum Opened {
    /// It finished already: nothing runs; its results may be written again.
    Finished(Held),
    /// Its rows are to run.
    Ready(Held),
}

/// Opens `job` to resume it with what was `given`: holds it, and refuses one abandoned, one
/// whose results could not be written where they go, one given a mapping file that is not the
/// one it ran with, or one whose inputs (its mapping among them) changed. `input` is the lock
/// a run took on the job's input, held with it.
pub fn open_job(job: JobRef, given: &Given, input: Option<InputLock>) -> Result<Opened, Error> {
    let mut options = job.options()?;
    if let Some(r) = given.rate {
        options.rate = r;
    }
    if let Some(c) = given.concurrency {
        options.concurrency = c.max(1);
    }
    if let Some(p) = &given.results {
        options.results = absolute(p);
    }
    if let Some(d) = given.max_outage {
        options.max_outage_ms = Some(d.as_millis() as u64);
    }
    let lock = job.lock()?;
    let journal = Arc::new(Journal::open(&job.journal_path())?);
    if job.meta.state == JobState::Abandoned {
        return Err(Error::Refused(format!(
            "job {} was abandoned: it does not run again. Run its input as a new job (rows already done are found and recorded as already existed), or undo what it did with plbulk undo {}",
            job.meta.id, job.meta.id
        )));
    }
    // Before the first call: the results go where the job's own are, or are refused.
    let inputs: Vec<&str> = job.meta.inputs.iter().map(|f| f.path.as_str()).collect();
    crate::outputs::results_for_job(&options.results, &job.meta.id, &inputs, given.overwrite)?;
    if let Some(given) = &given.map {
        same_mapping(&job, &options, given)?;
    }
    let finished = job.meta.state == JobState::Finished;
    if !finished {
        let mut meta = job.meta.clone();
        if let (Some(_), Some(rec)) = (&given.map, &options.map) {
            // The mapping given is the job's, as it was (checked above), wherever it is now.
            meta.inputs.retain(|f| Path::new(&f.path) != rec.path);
        }
        if let Some(why) = job::changed_inputs(&meta) {
            return Err(Error::Refused(why));
        }
    }
    let held = Held {
        job,
        journal,
        options,
        _lock: lock,
        _input: input,
    };
    Ok(if finished {
        Opened::Finished(held)
    } else {
        Opened::Ready(held)
    })
}

/// Refuses `--map FILE` on the resume of a job that did not run with that file as it is now:
/// the job's rows were mapped with the text it recorded, and another text reads them another
/// way.
fn same_mapping(job: &JobRef, options: &JobOptions, given: &Path) -> Result<(), Error> {
    let id = &job.meta.id;
    let Some(rec) = &options.map else {
        return Err(Error::Refused(format!(
            "job {id} ran without a mapping file, and --map {} was given: resume it without --map",
            given.display()
        )));
    };
    match std::fs::read(given) {
        Ok(now) if now == rec.text.as_bytes() => Ok(()),
        Ok(_) => Err(Error::Refused(format!(
            "{} is not the mapping job {id} ran with ({}, whose text the job recorded): its rows were mapped with that text. Put that mapping back to resume, or run the export with the new mapping as a new job (rows already done are found and recorded as already existed)",
            given.display(),
            rec.path.display()
        ))),
        Err(e) => Err(Error::Refused(format!(
            "--map {}: the mapping file cannot be read ({e}); job {id} ran with {}",
            given.display(),
            rec.path.display()
        ))),
    }
}

/// The results path from the working directory: the job is resumed from anywhere, and the
/// file need not exist yet.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The options of a job that may be undone, or why it may not.
pub fn undoable(source: &JobRef) -> Result<JobOptions, Error> {
    let was = source.options()?;
    let id = &source.meta.id;
    if let Some(of) = &was.undo_of {
        return Err(Error::Refused(format!(
            "job {id} is the undo of job {of}: an undo is not undone. To do again what {of} did, run its input again"
        )));
    }
    match source.meta.state {
        JobState::Finished | JobState::Abandoned => Ok(was),
        JobState::Running | JobState::Interrupted => Err(Error::Refused(format!(
            "job {id} is not finished: finish it first (plbulk resume {id}), or give it up (plbulk abandon {id}) to undo what it has done so far"
        ))),
    }
}

/// The undo of `source` begun already, if there is one: an unfinished one goes on (it is
/// returned), a finished one is not done again (refused).
pub fn undo_begun(root: &Path, source: &JobRef) -> Result<Option<JobRef>, Error> {
    let id = &source.meta.id;
    let Some(earlier) = job::list(root)
        .into_iter()
        .rev()
        .find(|j| j.options().is_ok_and(|o| o.undo_of.as_deref() == Some(id)))
    else {
        return Ok(None);
    };
    if earlier.meta.state.is_open() {
        return Ok(Some(earlier));
    }
    Err(Error::Refused(format!(
        "job {id} was undone already, by job {} ({}): plbulk status {} shows what it did",
        earlier.meta.id,
        earlier.meta.state.as_str(),
        earlier.meta.id
    )))
}

/// The options of the undo of `source` (which ran with `was`): on the account it ran on, its
/// results at `results`, `rate` and `concurrency` (None: as the job ran), `force` putting back
/// even what was changed since.
pub fn undo_options(
    source: &JobRef,
    was: &JobOptions,
    results: &Path,
    rate: Option<Rate>,
    concurrency: Option<usize>,
    force: bool,
) -> JobOptions {
    let id = &source.meta.id;
    JobOptions {
        kind: None,
        sandbox: was.sandbox,
        results: absolute(results),
        concurrency: concurrency.unwrap_or(was.concurrency),
        rate: rate.unwrap_or(was.rate),
        existing: was.existing,
        skip_invalid: false,
        timeout_ms: was.timeout_ms,
        undo_of: Some(id.clone()),
        force,
        max_outage_ms: was.max_outage_ms,
        // The account the job ran on: a fresh rehearsal's is in that job's folder.
        rehearsal: was.rehearsal.as_ref().map(|r| match r {
            crate::rehearsal::Rehearsal::Fresh => crate::rehearsal::Rehearsal::OfJob(id.clone()),
            other => other.clone(),
        }),
        // An undo reads no file: it reverses what the journal says was done.
        map: None,
        one_shot: false,
    }
}

/// Gives up the unfinished `job`: its pending rows will not run, and it may be undone as far
/// as it went. Refused while it runs (its rows in flight would end in a job said to be given
/// up) and for a job that ended already.
pub fn abandon(job: &JobRef) -> Result<(), Error> {
    let id = &job.meta.id;
    if !job.meta.state.is_open() {
        return Err(Error::Refused(format!(
            "job {id} is {} already: there is nothing to abandon",
            job.meta.state.as_str()
        )));
    }
    let _held = job.lock()?;
    let journal = Journal::open(&job.journal_path())?;
    journal.set_job_state(JobState::Abandoned)?;
    Ok(())
}

/// The plan that reverses `source` (`force`: even what was changed since), with its journal,
/// which the connection to its account is opened from.
pub fn plan_undo(source: &JobRef, force: bool) -> Result<(Journal, crate::undo::UndoPlan), Error> {
    let journal = Journal::open(&source.journal_path())?;
    let up = crate::undo::plan(&journal, force)?;
    Ok((journal, up))
}
