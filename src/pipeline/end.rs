//! Step 9: a job's end recorded, and its results and to-fix file written where
//! [`crate::outputs`] says.

use std::path::PathBuf;

use crate::engine::Finish;
use crate::model::{JobState, RowState};

use super::{Error, Held, Ran};

/// How a job ended.
pub enum Ended {
    /// It completed, or stopped resumable; its results were written, or `outputs` says why
    /// not.
    Ran(Finished),
    /// Its journal could not be written (a full disk, a failing drive): nothing more was sent
    /// once it failed. `marked`: the journal took the job's state, interrupted.
    JournalFailed {
        held: Held,
        error: String,
        marked: bool,
    },
}

/// A job that ran to its end or was stopped, with its results written.
pub struct Finished {
    pub held: Held,
    pub finish: Finish,
    pub counts: Vec<(RowState, u64)>,
    pub calls: u64,
    pub unreached: u64,
    pub outputs: Outputs,
}

/// The files a job's end wrote. Written in this order, each only if the one before was:
/// what failed is in `error`.
#[derive(Debug, Default)]
pub struct Outputs {
    /// The results file.
    pub results: Option<PathBuf>,
    /// The to-fix file, with the rows in it (none for an undo, or when every row ended well).
    pub to_fix: Option<(PathBuf, u64)>,
    /// A to-fix file changed since this job wrote it (it may hold the partner's fixes): kept,
    /// and the new one written beside it.
    pub kept: Option<PathBuf>,
    /// Rows not run yet (a stopped job): a resume runs them.
    pub not_run: u64,
    /// Why writing stopped; the job's outcome is safe in its journal.
    pub error: Option<Error>,
}

/// Records the engine's end, and writes the results (`overwrite`: replace a file there that
/// plbulk would keep).
pub fn finish(ran: Ran, overwrite: bool) -> Result<Ended, Error> {
    let Ran {
        held,
        finish,
        calls,
        unreached,
    } = ran;
    let finish = match finish {
        Ok(f) => f,
        Err(e) => {
            let marked = held.journal.set_job_state(JobState::Interrupted).is_ok();
            return Ok(Ended::JournalFailed {
                held,
                error: e.to_string(),
                marked,
            });
        }
    };
    let counts = held.counts()?;
    let outputs = write_outputs(&held, Some(calls), overwrite);
    Ok(Ended::Ran(Finished {
        held,
        finish,
        counts,
        calls,
        unreached,
        outputs,
    }))
}

/// Writes the job's results, and (not for an undo, whose rows are not the user's to fix and
/// run again) its to-fix file; `calls`: those made by this process, for the results' summary.
pub fn write_outputs(held: &Held, calls: Option<u64>, overwrite: bool) -> Outputs {
    let mut out = Outputs::default();
    if let Err(e) = write_into(&mut out, held, calls, overwrite) {
        out.error = Some(e);
    }
    out
}

fn write_into(
    out: &mut Outputs,
    held: &Held,
    calls: Option<u64>,
    overwrite: bool,
) -> Result<(), Error> {
    let (journal, options, dir) = (&held.journal, &held.options, &held.job.dir);
    crate::results::write(journal, &options.results, calls)
        .map_err(|e| Error::Io(e.to_string()))?;
    out.results = Some(options.results.clone());
    if options.undo_of.is_some() {
        return Ok(());
    }
    // The partner fixes rows in the to-fix file: one changed since this job wrote it is kept.
    let to_fix = crate::outputs::to_fix(&options.results, dir, overwrite);
    // A job read through a mapping holds the export's cells: its to-fix is the export's.
    let columns = match &options.map {
        // The job ran through this very text: one that does not parse now is a damaged
        // journal, and a to-fix written without it could not blank the steps done.
        Some(m) => crate::results::FixColumns::Export(std::sync::Arc::new(
            crate::intake::mapping::Mapping::parse(&m.path.display().to_string(), &m.text)
                .map_err(|e| Error::Io(format!("the job's mapping, as it recorded it: {e}")))?,
        )),
        None => crate::results::FixColumns::Template,
    };
    let n = crate::results::write_to_fix(journal, &to_fix.path, columns)
        .map_err(|e| Error::Io(e.to_string()))?;
    if n == 0 {
        // An old one of the job's own would list rows that are done now.
        if to_fix.may_remove() {
            let _ = std::fs::remove_file(&to_fix.path);
        }
    } else {
        out.kept = to_fix.kept.clone();
        out.to_fix = Some((to_fix.path.clone(), n as u64));
    }
    crate::outputs::record_written(dir, &to_fix.path);
    out.not_run = held
        .counts()?
        .iter()
        .find(|(s, _)| *s == RowState::Pending)
        .map_or(0, |(_, n)| *n);
    Ok(())
}
