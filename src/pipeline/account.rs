//! Steps 4 to 6: the input's lock (and the unfinished job a run goes on with instead), the
//! connection to the account, and the pre-flight checked against it.

use std::path::{Path, PathBuf};

use crate::client::{ApiError, Settings};
use crate::engine::Existing;
use crate::findings::{Finding, Severity};
use crate::job::{self, Account, Connection, Endpoint, InputLock, JobOptions, JobRef};
use crate::journal::Journal;
use crate::pacing::Rate;
use crate::plan::Plan;
use crate::rehearsal::Rehearsal;

use super::{Error, Fingerprint, Planned};

/// Takes the lock on this input against this endpoint, before anything reads or writes the
/// account: a second run of it must not start a job of its own.
pub fn lock_input(
    fingerprint: &Fingerprint,
    endpoint: &Endpoint,
    files: &[PathBuf],
) -> Result<InputLock, Error> {
    Ok(InputLock::acquire(&fingerprint.text, endpoint, files)?)
}

/// The unfinished job of this input that a run with these options goes on with, if any; one
/// begun with other settings refuses the run, naming them.
pub fn resumable(
    root: &Path,
    fingerprint: &Fingerprint,
    endpoint: &Endpoint,
    options: &JobOptions,
) -> Result<Option<JobRef>, Error> {
    Ok(job::resumable(root, &fingerprint.text, endpoint, options)?)
}

/// The unfinished job that will write its results at `path` when it goes on, if any: a new
/// job's results do not take its place.
pub fn results_held_by(root: &Path, path: &Path) -> Option<String> {
    job::list(root)
        .into_iter()
        .filter(|j| j.meta.state.is_open())
        .find(|j| {
            j.options()
                .is_ok_and(|o| crate::outputs::same_file(&o.results, path))
        })
        .map(|j| j.meta.id)
}

/// The connection a new job runs on: `settings`' endpoint and key, or (a rehearsal) the
/// in-process sandbox on the options' account, held for `command`.
pub async fn connect_new(
    options: &JobOptions,
    settings: Option<&Settings>,
    command: &str,
) -> Result<Connection, Error> {
    let account = match &options.rehearsal {
        Some(r) => Some(Account::for_new(r, false, command)?),
        None => None,
    };
    Ok(Connection::open(options, settings, account).await?)
}

/// A connection to read the account outside a job (a validation, an export, a check, a dry
/// run): one request at a time at `rate`; the rehearsal's account as last kept, to read, or
/// `settings`' endpoint.
pub async fn connect_reading(
    rate: Rate,
    rehearsal: Option<Rehearsal>,
    settings: Option<&Settings>,
    command: &str,
) -> Result<Connection, Error> {
    let mut options = JobOptions::reading(rate);
    let account = match rehearsal {
        Some(r) => {
            let account = Account::for_new(&r, true, command)?;
            options.sandbox = true;
            options.rehearsal = Some(r);
            Some(account)
        }
        None => None,
    };
    Ok(Connection::open(&options, settings, account).await?)
}

/// A look at the account (`export`, `validate --online`, `check --sandbox`): the rehearsal
/// account as last kept (`sandbox`), or the settings' endpoint and key.
pub async fn look(rate: Rate, sandbox: bool, base_url: Option<&str>) -> Result<Connection, Error> {
    if sandbox {
        return connect_reading(rate, Some(Rehearsal::Shared), None, "a look").await;
    }
    let settings = Settings::load(base_url).map_err(|e| Error::Refused(e.to_string()))?;
    connect_reading(rate, None, Some(&settings), "a look").await
}

/// A connection to the account `job` ran on: its rehearsal's account, or its endpoint with
/// its key. Credentials for another key are refused, saying what they were for (`to`).
pub async fn connect_job(
    job: &JobRef,
    journal: &Journal,
    options: &JobOptions,
    to: &str,
) -> Result<Connection, Error> {
    if let Some(account) = Account::of_job(job, journal, options)? {
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

/// What the pre-flight found.
pub struct Preflight {
    pub checked: crate::preflight::Checked,
}

/// Checks the plan's rows against the account through `conn` (whose look-ups the engine then
/// starts from). `existing` is what the run does with a create whose entity is there; None
/// (a validation) says each choice.
pub async fn preflight(
    planned: &Planned,
    conn: &Connection,
    existing: Option<Existing>,
) -> Result<Preflight, ApiError> {
    let checked =
        crate::preflight::check(&planned.inputs, &planned.plan, &conn.look, existing).await?;
    Ok(Preflight { checked })
}

impl Preflight {
    pub fn errors(&self) -> usize {
        self.said()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// The errors and warnings: what a run says before it starts (notes are for the report).
    pub fn said(&self) -> impl Iterator<Item = &Finding> + Clone {
        self.checked
            .findings
            .iter()
            .map(|(_, f)| f)
            .filter(|f| f.severity != Severity::Note)
    }

    /// Whether its errors refuse the run: they do unless invalid rows are skipped.
    pub fn refuses(&self, skip_invalid: bool) -> bool {
        self.errors() > 0 && !skip_invalid
    }

    /// Its effect on the plan: see [`crate::preflight::Checked::apply`].
    pub fn apply(&self, plan: &mut Plan) {
        self.checked.apply(plan);
    }
}
