//! The job pipeline: every step from the input files to the results, as plain functions that
//! `plbulk run`, `resume`, `undo` and `validate --online` call in order, and that the local
//! web page ([`crate::ui`]) calls the same way to preview, run, stop, resume, undo and abandon
//! a job. The verbs and the page parse their input and show; what they show comes from what
//! these return and from the [`Event`]s a running job sends its [`Watcher`].
//!
//! The steps, in order:
//!
//! 1. **Read** ([`read`]): every input file read once (through a mapping file, [`load_mapping`],
//!    when `--map` gives one), each row validated, the digest of each file taken from the very
//!    bytes its rows came from, and the mapping's from the text its rows were mapped with.
//! 2. **Validate** ([`Read::verdict`]): whether the input lets a job start (no unreadable
//!    file; no invalid row unless `--skip-invalid`).
//! 3. **Plan** ([`Read::plan`], then [`Planned::fingerprint`]): the rows' work, ordered and
//!    linked; the fingerprint a job and its input lock are known by.
//! 4. **Lock** ([`lock_input`]): no second run of one input against one endpoint; and
//!    ([`resumable`]) the unfinished job of this input a run goes on with instead.
//! 5. **Connect** ([`connect_new`], [`connect_job`], [`look`]): the API with the user's key,
//!    or the in-process sandbox on a rehearsal account.
//! 6. **Pre-flight** ([`preflight`]): what only the account knows, checked before any write;
//!    [`Preflight::apply`] is its effect on the plan (rows made invalid, updates that change
//!    nothing left unsent).
//! 7. **Journal** ([`create_job`] for a new job or an undo, [`open_job`] for a resume): the job
//!    on disk, held by this process ([`Held`]) until it is dropped.
//! 8. **Engine** ([`start`]): the journaled plan run on a task of its own; [`Running::stop`]
//!    asks it to stop as Ctrl-C does; [`Running::wait`] waits for its end.
//! 9. **Results** ([`finish`], or [`write_outputs`] alone): the results workbook and the to-fix
//!    file, where [`crate::outputs`] says, and the job's end as a value ([`Ended`]).
//!
//! A new job takes steps 1 to 7 through one function, [`begin`], for `plbulk run` and the
//! page alike: they differ only in the [`Choices`] they gather and how they [`Show`] the steps.
//!
//! Before step 7, [`Calls`] is what a job would do (the preview of `--dry-run` and of the
//! page), and [`Calls::to_confirm`] says whether a person confirms it first.
//!
//! An undo is a job too: [`undoable`] and [`plan_undo`] make its plan from the journal of the
//! job it reverses, and steps 7 to 9 run it.

use std::fmt;

use crate::client::ApiError;
use crate::job::JobError;

mod account;
mod begin;
mod end;
mod held;
mod input;
mod preview;
mod running;

pub use account::{
    connect_job, connect_new, connect_reading, lock_input, look, preflight, results_held_by,
    resumable, Preflight,
};
pub use begin::{begin, Begun, Choices, Created, Refusal, Show, DEFAULT_TIMEOUT};
pub use end::{finish, write_outputs, Ended, Finished, Outputs};
pub use held::{
    abandon, absolute, create_job, open_job, plan_undo, undo_begun, undo_options, undoable, Given,
    Held, Opened,
};
pub use input::{load_mapping, read, Fingerprint, Planned, Read, Verdict};
pub use preview::{quoted, Calls, Confirm, Effect};
pub use running::{start, Board, Event, Ran, Relay, Running, Stop, Watcher};

/// Requests in flight when a new job is not told otherwise: `plbulk run` without
/// `--concurrency`, and a job started from the page.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// A step's failure, by category: the category tells a user (or a script reading stderr)
/// where to look, and the command line picks its exit code by it.
#[derive(Debug)]
pub enum Error {
    /// Arguments or settings that cannot work.
    Usage(String),
    /// An input file that cannot be read.
    Input(String),
    /// The endpoint could not be reached, or stopped answering.
    Network(String),
    /// The API answered with a refusal the command cannot go past.
    Api(String),
    /// The job's journal cannot be read or written.
    Journal(String),
    /// Writing an output file (report, results) or opening a socket.
    Io(String),
    /// The job cannot start or go on as asked (changed input, unknown job, no credentials).
    Refused(String),
}

impl From<JobError> for Error {
    fn from(e: JobError) -> Error {
        match e {
            JobError::Io(m) => Error::Io(m),
            JobError::Journal(j) => Error::Journal(j.to_string()),
            JobError::Refused(m) => Error::Refused(m),
        }
    }
}

impl From<crate::journal::JournalError> for Error {
    fn from(e: crate::journal::JournalError) -> Error {
        Error::Journal(e.to_string())
    }
}

impl From<crate::outputs::Refused> for Error {
    fn from(e: crate::outputs::Refused) -> Error {
        Error::Refused(e.0)
    }
}

impl Error {
    /// A failed read of the account, `what` saying what it was for: a network fault or the
    /// API's refusal, by what came back.
    pub fn reading(what: &str, e: &ApiError) -> Error {
        let m = format!("{what}: {}", e.detail());
        match e.status {
            // Nothing more was sent: a refused key, a stop, an outage too long.
            _ if e.is_halted() => Error::Refused(m),
            None => Error::Network(m),
            Some(_) => Error::Api(m),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "error: {m}"),
            Error::Input(m) => write!(f, "input error: {m}"),
            Error::Network(m) => write!(f, "network error: {m}"),
            Error::Api(m) => write!(f, "API error: {m}"),
            // The message names the file and what failed; "journal error: journal …" said
            // the word twice, and the shared budget is no journal.
            Error::Journal(m) => write!(f, "error: {m}"),
            Error::Io(m) => write!(f, "error: {m}"),
            Error::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

impl std::error::Error for Error {}
