//! Jobs on disk: where they live, how one is created from its inputs, found again, checked
//! before a resume, and connected to the API (or to an in-process sandbox) to run.
//!
//! A job is a folder under the jobs root (`--job-dir`, `PLBULK_JOB_DIR`, or `jobs` in the
//! user's data folder) holding its journal and, for a rehearsal on an account of its own
//! (`--sandbox-fresh`), that account ([`crate::rehearsal`]). The per-key call budget is one file in the data folder, shared by
//! every job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientConfig, Credentials, RetryPolicy, Settings};
use crate::engine::{self, Existing};
use crate::journal::budget::SharedBudget;
use crate::journal::{self, JobMeta, Journal};
use crate::model::{JobState, RowState};
use crate::pacing::{Counted, Pacer, Rate};
use crate::plan::{self, Plan};
use crate::rehearsal::{self, Place, Rehearsal};
use crate::sandbox::{Sandbox, SandboxConfig, World, DEFAULT_KEY, DEFAULT_SECRET};
use crate::schema::Kind;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job cannot start or go on as asked; nothing was sent.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error("{0}")]
    Io(String),
}

/// The run's options, as the journal keeps them so that a resume runs as the job began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    /// What a CSV file holds, as `--kind` said; kept by its command-line name.
    #[serde(with = "kind_text")]
    pub kind: Option<Kind>,
    pub sandbox: bool,
    pub results: PathBuf,
    pub concurrency: usize,
    /// Kept as it is written ("100/min"), as journals have always kept it.
    #[serde(with = "rate_text")]
    pub rate: Rate,
    pub existing: Existing,
    pub skip_invalid: bool,
    pub timeout_ms: u64,
    /// For an undo: the job it reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_of: Option<String>,
    /// For an undo: put back even what was changed since the job.
    #[serde(default)]
    pub force: bool,
    /// How long the API may be unreachable before the job stops; None is the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_outage_ms: Option<u64>,
    /// For a rehearsal (`sandbox`), the account it runs on. A journal written before
    /// rehearsals shared an account (issue 19) has `sandbox: true` and no such field: its job
    /// rehearsed on an empty account of its own, kept in its folder, and [`JobRef::options`]
    /// reads it as [`Rehearsal::Fresh`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<Rehearsal>,
    /// The mapping file the inputs were read through (`--map`), and its text as the rows were
    /// mapped with it: its digest is the last of the job's inputs, so a resume with it changed
    /// or gone is refused as for any input, and the to-fix is in the export's own columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<MapRecord>,
    /// A look at the account (a validation, an export, a dry run), not a job: an outage is
    /// reported at once, not waited out. Never journaled.
    #[serde(skip)]
    pub one_shot: bool,
}

/// A job's mapping file, as [`JobOptions::map`] records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapRecord {
    /// Its one name, as the job's inputs name it.
    pub path: PathBuf,
    pub text: String,
}

impl MapRecord {
    pub fn of(m: &crate::intake::mapping::Mapping) -> MapRecord {
        MapRecord {
            path: plan::canonical(m.path()),
            text: m.text().to_string(),
        }
    }
}

impl JobOptions {
    /// Options for reading the account outside a job (`validate --online`, `export`): one
    /// request at a time, paced at `rate`.
    pub fn reading(rate: Rate) -> JobOptions {
        JobOptions {
            kind: None,
            sandbox: false,
            results: PathBuf::new(),
            concurrency: 1,
            rate,
            existing: Existing::Skip,
            skip_invalid: false,
            timeout_ms: 30_000,
            undo_of: None,
            force: false,
            max_outage_ms: None,
            rehearsal: None,
            map: None,
            one_shot: true,
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The client's patience with an outage, as the job was given it.
    pub fn health(&self) -> crate::client::HealthConfig {
        if self.one_shot {
            return crate::client::HealthConfig::OFF;
        }
        let mut h = crate::client::HealthConfig::default();
        if let Some(ms) = self.max_outage_ms {
            h.max_outage = Duration::from_millis(ms);
        }
        h
    }
}

/// A rate in the journal as it is written ("100/min"): one that does not parse is an error,
/// never the default (a job would run at a pace nobody asked for).
mod rate_text {
    use crate::pacing::Rate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(rate: &Rate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(rate)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A kind in the journal by its command-line name; read in any spelling `--kind` took, as
/// journals written before it was typed kept what the user typed.
mod kind_text {
    use crate::schema::Kind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &Option<Kind>, s: S) -> Result<S::Ok, S::Error> {
        match kind {
            Some(k) => s.serialize_some(k.cli_name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Kind>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                Kind::from_name(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("{text:?} is not a kind of row"))
                })
            })
            .transpose()
    }
}

/// The user's data folder for plbulk: `PLBULK_DATA_DIR`, or the platform's.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PLBULK_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    directories::ProjectDirs::from("com", "PhoneLinePlus", "plbulk")
        .map(|p| p.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".plbulk"))
}

/// Where jobs live: the flag, `PLBULK_JOB_DIR`, or `jobs` in the data folder.
pub fn jobs_root(flag: Option<&Path>) -> PathBuf {
    if let Some(f) = flag {
        return f.to_path_buf();
    }
    if let Some(d) = std::env::var_os("PLBULK_JOB_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    data_dir().join("jobs")
}

pub fn budget_path() -> PathBuf {
    data_dir().join("budget.sqlite")
}

/// What the jobs running on this machine are making, per account.
pub fn claims_path() -> PathBuf {
    data_dir().join("claims.sqlite")
}

const JOURNAL_FILE: &str = "journal.sqlite";
const LOCK_FILE: &str = "lock";
/// Under the data folder: one lock per input and endpoint being run. Not under the jobs root,
/// so two runs of one file with different `--job-dir`s still meet.
const INPUT_LOCKS: &str = "running";

/// Where a run sends its calls, as the input lock and the changed-flags check compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An in-process sandbox of the run's own: nothing leaves the machine.
    Sandbox,
    /// The API at this (normalised) base URL, with this key (None: no credentials are set).
    Api {
        base_url: String,
        key_id: Option<String>,
    },
}

impl Endpoint {
    /// The endpoint a job's record names.
    pub fn of_job(job: &JobRef) -> Result<Endpoint, JobError> {
        Ok(if job.options()?.sandbox {
            Endpoint::Sandbox
        } else {
            Endpoint::Api {
                base_url: crate::client::normalize_base_url(&job.meta.base_url)
                    .unwrap_or_else(|_| job.meta.base_url.clone()),
                key_id: Some(job.meta.key_id.clone()),
            }
        })
    }

    /// Where a run with these settings (None: `--sandbox`) sends its calls.
    pub fn of_settings(settings: Option<&Settings>) -> Result<Endpoint, JobError> {
        let Some(s) = settings else {
            return Ok(Endpoint::Sandbox);
        };
        Ok(Endpoint::Api {
            base_url: crate::client::normalize_base_url(&s.base_url)
                .map_err(|e| JobError::Refused(e.to_string()))?,
            key_id: s.credentials.as_ref().map(|(c, _)| c.key_id.clone()),
        })
    }

    /// The endpoint without the key: what an input's lock is taken on.
    fn place(&self) -> &str {
        match self {
            Endpoint::Sandbox => "in-process sandbox",
            Endpoint::Api { base_url, .. } => base_url,
        }
    }
}

/// Held while a `run` of one set of inputs against one endpoint is under way, from before its
/// first call to its end: a second `run` of the same file (a double-click, a cron overlap)
/// would otherwise make a second job and send every row again. Like [`journal::JobLock`], the
/// operating system drops it when the process dies.
pub struct InputLock {
    _lock: journal::JobLock,
    info: PathBuf,
    /// When the lock was taken: what the second run is told, whatever job it names later.
    since_ms: i64,
}

/// Who holds an input's lock, for the message the second run prints.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    since_ms: i64,
    job: Option<String>,
}

impl InputLock {
    /// Takes the lock for these inputs on this endpoint, or refuses naming who has it.
    pub fn acquire(
        fingerprint: &str,
        endpoint: &Endpoint,
        files: &[PathBuf],
    ) -> Result<InputLock, JobError> {
        let dir = data_dir().join(INPUT_LOCKS);
        journal::create_private_dir(&dir)
            .map_err(|e| JobError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let name = format!("{:016x}", fnv1a(&[fingerprint, endpoint.place()]));
        let info = dir.join(format!("{name}.json"));
        let Some(lock) = journal::JobLock::acquire(&dir.join(format!("{name}.lock")))? else {
            let holder: Option<Holder> = std::fs::read(&info)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let who = match holder {
                Some(Holder { pid, since_ms, job }) => format!(
                    "{} (process {pid}, since {})",
                    match job {
                        Some(j) => format!("job {j}"),
                        None => "a run still checking its input".into(),
                    },
                    crate::results::time_text(since_ms)
                ),
                None => "another plbulk process".into(),
            };
            return Err(JobError::Refused(format!(
                "{} is being run against {} already, by {who}; nothing was sent. Wait for it to finish (plbulk status shows it), or stop it with Ctrl-C and run again",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                endpoint.place()
            )));
        };
        let held = InputLock {
            _lock: lock,
            info,
            since_ms: journal::now_ms(),
        };
        held.write(None);
        Ok(held)
    }

    /// Names the job the run now holds the input for.
    pub fn set_job(&self, id: &str) {
        self.write(Some(id));
    }

    fn write(&self, job: Option<&str>) {
        let holder = Holder {
            pid: std::process::id(),
            since_ms: self.since_ms,
            job: job.map(str::to_string),
        };
        // Only the message of a second run reads it: failing to write it loses no work.
        let _ = crate::atomic_write(
            &self.info,
            &serde_json::to_vec(&holder).expect("a holder serialises"),
        );
    }
}

impl Drop for InputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.info);
    }
}

/// A stable 64-bit digest of a few strings (FNV-1a), for a lock's file name: the same in
/// every build, unlike the standard library's hasher.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The unfinished job of these inputs that a `run` with these settings goes on with, if any.
/// One with other settings is not resumed silently: the run is refused, naming what differs
/// and the two ways on.
pub fn resumable(
    root: &Path,
    fingerprint: &str,
    endpoint: &Endpoint,
    options: &JobOptions,
) -> Result<Option<JobRef>, JobError> {
    let mut refused = None;
    for j in unfinished(root, fingerprint) {
        let diff = differences(&j, endpoint, options)?;
        if diff.is_empty() {
            return Ok(Some(j));
        }
        refused.get_or_insert((j, diff));
    }
    let Some((j, diff)) = refused else {
        return Ok(None);
    };
    Err(JobError::Refused(format!(
        "this input has an unfinished job, {} (started {}), that ran with other settings: {}. Nothing was sent. To go on with that job as it began: plbulk resume {}. To start a new job with this run's settings instead: add --new-job (the unfinished job is left as it is)",
        j.meta.id,
        crate::results::time_text(j.meta.created_at_ms),
        diff.join("; "),
        j.meta.id
    )))
}

/// The settings in which a `run` differs from the unfinished job it would resume: resuming
/// silently would send the rest of the rows somewhere, or in a way, the user did not ask for.
pub fn differences(
    job: &JobRef,
    endpoint: &Endpoint,
    options: &JobOptions,
) -> Result<Vec<String>, JobError> {
    let was = job.options()?;
    let then = Endpoint::of_job(job)?;
    let mut out = Vec::new();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    if was.sandbox != options.sandbox {
        out.push(format!(
            "--sandbox (the job: {}; this run: {})",
            yes_no(was.sandbox),
            yes_no(options.sandbox)
        ));
    }
    if was.sandbox && options.sandbox && was.rehearsal != options.rehearsal {
        let what = |r: &Option<Rehearsal>| r.as_ref().map_or_else(String::new, Rehearsal::describe);
        out.push(format!(
            "the account rehearsed on (the job: {}; this run: {})",
            what(&was.rehearsal),
            what(&options.rehearsal)
        ));
    }
    if let (
        Endpoint::Api {
            base_url: b0,
            key_id: k0,
        },
        Endpoint::Api {
            base_url: b1,
            key_id: k1,
        },
    ) = (&then, endpoint)
    {
        if b0 != b1 {
            out.push(format!("the base URL (the job: {b0}; this run: {b1})"));
        }
        let job_key = k0.as_deref().unwrap_or("none");
        match k1 {
            None => out.push(format!(
                "the API key (the job: {job_key}; this run: none is set, {})",
                crate::client::credentials::missing_text()
                    .trim_start_matches("no API credentials: ")
                    .replace(", or rehearse with --sandbox", "")
            )),
            Some(k) if k0.as_deref() != Some(k) => {
                out.push(format!("the API key (the job: {job_key}; this run: {k})"))
            }
            Some(_) => {}
        }
    }
    if was.existing != options.existing {
        out.push(format!(
            "--existing (the job: {}; this run: {})",
            was.existing, options.existing
        ));
    }
    if was.kind != options.kind {
        let k = |k: &Option<Kind>| k.map_or("from the headers", Kind::cli_name);
        out.push(format!(
            "--kind (the job: {}; this run: {})",
            k(&was.kind),
            k(&options.kind)
        ));
    }
    Ok(out)
}

/// A job found on disk.
#[derive(Debug, Clone)]
pub struct JobRef {
    pub dir: PathBuf,
    pub meta: JobMeta,
}

impl JobRef {
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// Holds the job for this process until the lock is dropped; refuses if another process
    /// is running it.
    pub fn lock(&self) -> Result<journal::JobLock, JobError> {
        journal::JobLock::acquire(&self.dir.join(LOCK_FILE))?.ok_or_else(|| {
            JobError::Refused(format!(
                "job {} is running in another plbulk process; wait for it, or stop it (Ctrl-C) and resume",
                self.meta.id
            ))
        })
    }

    pub fn options(&self) -> Result<JobOptions, JobError> {
        let mut o: JobOptions = serde_json::from_value(self.meta.options.clone()).map_err(|e| {
            JobError::Refused(format!(
                "job {} has options this plbulk cannot read ({e}), in its journal {}: nothing was sent for it. A journal is written by plbulk only: restore it from a backup, or run the job's input as a new job",
                self.meta.id,
                self.journal_path().display()
            ))
        })?;
        match (o.sandbox, &o.rehearsal) {
            // Written before rehearsals shared an account: see `JobOptions::rehearsal`.
            (true, None) => o.rehearsal = Some(Rehearsal::Fresh),
            (true, Some(_)) | (false, None) => {}
            (false, Some(_)) => {
                return Err(JobError::Refused(format!(
                    "job {} has options this plbulk cannot read (a rehearsal account for a job that is not a rehearsal)",
                    self.meta.id
                )))
            }
        }
        Ok(o)
    }
}

/// Where a job stands, as `status` and `jobs` tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateNow {
    pub state: JobState,
    /// The journal says running, and no process holds the job: its process ended without
    /// finishing (two Ctrl-Cs, a kill, a full disk). It is interrupted, and a resume goes on.
    pub process_ended: bool,
}

impl JobRef {
    /// The job's state now, from the state its journal records (`recorded`, read just now):
    /// only a running job's lock is looked at, without disturbing the process holding it.
    pub fn state_now(&self, recorded: JobState) -> StateNow {
        let ended = match recorded {
            // A look that fails says nothing: the journal's word stands.
            JobState::Running => {
                journal::JobLock::is_held(&self.dir.join(LOCK_FILE)).is_ok_and(|held| !held)
            }
            JobState::Interrupted | JobState::Finished | JobState::Abandoned => false,
        };
        StateNow {
            state: if ended {
                JobState::Interrupted
            } else {
                recorded
            },
            process_ended: ended,
        }
    }
}

/// A job folder whose journal cannot be read: its WAL lost or damaged, or the file itself.
/// Kept beside the jobs that can be, so that `jobs`, `status` and `resume` say so rather than
/// that there is no such job.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The folder's name, which is the job's id.
    pub id: String,
    pub dir: PathBuf,
    /// What reading it said.
    pub why: String,
}

impl Unreadable {
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// What a command that needs the job stops with: the file, the error, and what to do.
    pub fn error(&self) -> JobError {
        JobError::Journal(journal::JournalError::Invalid {
            path: self.journal_path(),
            message: self.message(),
        })
    }

    /// The same, without the path in front, for `jobs`.
    pub fn message(&self) -> String {
        format!(
            "job {} cannot be read ({}). Nothing is sent for a job whose journal cannot be read: restore {JOURNAL_FILE} (with {JOURNAL_FILE}-wal beside it, if it had one) in {} from a backup to see or resume it; its results file, if one was written, shows its rows as they last stood",
            self.id,
            self.why,
            self.dir.display()
        )
    }

    /// When the job began, from its id (its folder's name begins with the time); 0 if the
    /// name does not say.
    pub fn created_at_ms(&self) -> i64 {
        let stamp: String = self.id.chars().take(15).collect();
        let b = stamp.as_bytes();
        if b.len() < 15 || b[8] != b'-' {
            return 0;
        }
        let text = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        );
        humantime::parse_rfc3339(&text)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A job folder found under the jobs root.
#[derive(Debug, Clone)]
pub enum Found {
    Job(JobRef),
    Unreadable(Unreadable),
}

impl Found {
    pub fn id(&self) -> &str {
        match self {
            Found::Job(j) => &j.meta.id,
            Found::Unreadable(u) => &u.id,
        }
    }

    fn created_at_ms(&self) -> i64 {
        match self {
            Found::Job(j) => j.meta.created_at_ms,
            Found::Unreadable(u) => u.created_at_ms(),
        }
    }
}

/// Every job folder under `root`, oldest first, those whose journal cannot be read among them.
/// Folders without a journal are not jobs, and are passed over.
pub fn list_all(root: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<Found> = entries
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            let path = dir.join(JOURNAL_FILE);
            if !path.is_file() {
                return None;
            }
            let why = match journal::peek(&path) {
                Ok(meta) => return Some(Found::Job(JobRef { dir, meta })),
                // A journal being created holds no job until its first commit, and its
                // process takes the job's lock only after that: not a job yet. With the lock
                // there, the job's record was there, and is lost with the latest writes.
                Err(journal::JournalError::NoJob { .. }) if !dir.join(LOCK_FILE).exists() => {
                    return None
                }
                Err(journal::JournalError::NoJob { .. }) => format!(
                    "the job's record is not in it: its write-ahead log, {JOURNAL_FILE}-wal, which held the job's latest writes, is missing or damaged"
                ),
                Err(journal::JournalError::Sql { source, .. }) => source.to_string(),
                Err(journal::JournalError::Invalid { message, .. }) => message,
                Err(journal::JournalError::Io { source, .. }) => source.to_string(),
            };
            Some(Found::Unreadable(Unreadable {
                id: e.file_name().to_string_lossy().into_owned(),
                dir,
                why,
            }))
        })
        .collect();
    out.sort_by(|a, b| (a.created_at_ms(), a.id()).cmp(&(b.created_at_ms(), b.id())));
    out
}

/// Every job under `root` whose journal can be read, oldest first.
pub fn list(root: &Path) -> Vec<JobRef> {
    list_all(root)
        .into_iter()
        .filter_map(|f| match f {
            Found::Job(j) => Some(j),
            Found::Unreadable(_) => None,
        })
        .collect()
}

/// A job by id (or a unique prefix of one), or, with none given, the latest unfinished job.
/// A job whose journal cannot be read is refused, saying so.
pub fn find(root: &Path, id: Option<&str>) -> Result<JobRef, JobError> {
    let all = list_all(root);
    match id {
        Some(id) => {
            // A whole id is that job, even when another job's id starts with it (two jobs of
            // one file in one second are `…-93e51c` and `…-93e51c-2`).
            let exact: Vec<&Found> = all.iter().filter(|j| j.id() == id).collect();
            let hits: Vec<&Found> = if exact.is_empty() {
                all.iter().filter(|j| j.id().starts_with(id)).collect()
            } else {
                exact
            };
            match hits.as_slice() {
                [Found::Job(one)] => Ok(one.clone()),
                [Found::Unreadable(u)] => Err(u.error()),
                [] => Err(JobError::Refused(format!(
                    "no job {id:?} under {} (plbulk jobs lists them)",
                    root.display()
                ))),
                many => Err(JobError::Refused(format!(
                    "{id:?} matches {} jobs ({}): give more of the id",
                    many.len(),
                    many.iter().map(|j| j.id()).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
        None => {
            let unreadable: Vec<&str> = all
                .iter()
                .filter_map(|f| match f {
                    Found::Job(_) => None,
                    Found::Unreadable(u) => Some(u.id.as_str()),
                })
                .collect();
            all.iter()
                .rev()
                .find_map(|f| match f {
                    Found::Job(j) if j.meta.state.is_open() => Some(j.clone()),
                    Found::Job(_) | Found::Unreadable(_) => None,
                })
                .ok_or_else(|| {
                    JobError::Refused(format!(
                        "no unfinished job under {} (plbulk jobs lists them){}",
                        root.display(),
                        match unreadable.as_slice() {
                            [] => String::new(),
                            [one] => format!(
                                "; job {one}'s journal cannot be read, so whether it finished is not known: plbulk status {one} says why"
                            ),
                            ids => format!(
                                "; the journals of jobs {} cannot be read, so whether they finished is not known: plbulk jobs says why",
                                ids.join(", ")
                            ),
                        }
                    ))
                })
        }
    }
}

/// The unfinished jobs whose inputs are exactly these, latest first.
pub fn unfinished(root: &Path, fingerprint: &str) -> Vec<JobRef> {
    list(root)
        .into_iter()
        .rev()
        .filter(|j| j.meta.state.is_open() && j.meta.fingerprint == fingerprint)
        .collect()
}

/// One string for a set of inputs: each file's digest and size, in order.
pub fn fingerprint_of(files: &[journal::InputFile]) -> String {
    files
        .iter()
        .map(|f| format!("{}:{}", f.hash, f.size))
        .collect::<Vec<_>>()
        .join("+")
}

/// Why a job's inputs no longer match it, if they do not.
pub fn changed_inputs(meta: &JobMeta) -> Option<String> {
    for f in &meta.inputs {
        let path = PathBuf::from(&f.path);
        match plan::fingerprint(std::slice::from_ref(&path)) {
            Ok(now) if now[0].hash == f.hash && now[0].size == f.size => {}
            Ok(_) => {
                return Some(format!(
                    "{} has changed since job {} began: resuming would run rows that no longer match the journal. Put the original back to resume, or run the changed file as a new job (rows already done are found and recorded as already existed)",
                    f.path, meta.id
                ))
            }
            Err(e) => {
                return Some(format!(
                    "{} cannot be read ({e}); job {} needs it to resume",
                    f.path, meta.id
                ))
            }
        }
    }
    None
}

/// A job's id: when it began, and a tag saying what it runs (its input's digest, or "undo").
fn new_id(fingerprint: &str, undo: bool) -> String {
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string();
    let tag: String = if undo {
        "undo".into()
    } else {
        fingerprint
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(6)
            .collect()
    };
    format!("{stamp}-{tag}")
}

/// Creates a job folder and journal for a plan.
pub fn create(
    root: &Path,
    inputs_fp: Vec<journal::InputFile>,
    options: &JobOptions,
    plan: &Plan,
    base_url: &str,
    key_id: &str,
) -> Result<(JobRef, Arc<Journal>), JobError> {
    let fingerprint = fingerprint_of(&inputs_fp);
    let undo = options.undo_of.is_some();
    let mut id = new_id(&fingerprint, undo);
    let mut n = 1;
    while root.join(&id).exists() {
        n += 1;
        id = format!("{}-{n}", new_id(&fingerprint, undo));
    }
    let dir = root.join(&id);
    let journal = Journal::create(&dir.join(JOURNAL_FILE))?;
    let meta = JobMeta {
        id,
        created_at_ms: journal::now_ms(),
        fingerprint,
        inputs: inputs_fp,
        options: serde_json::to_value(options).expect("options serialise"),
        base_url: base_url.to_string(),
        key_id: key_id.to_string(),
        state: JobState::Running,
        started_at_ms: None,
        finished_at_ms: None,
    };
    journal.init(&meta, &plan.sheets, &plan.rows)?;
    Ok((JobRef { dir, meta }, Arc::new(journal)))
}

/// The shared budget's name for one key on one (normalised) endpoint: every job, look-up and
/// check on it spends from the same 100 a minute.
pub fn budget_key(base_url: &str, key_id: &str) -> String {
    format!("{base_url} {key_id}")
}

/// The account a connection to the in-process sandbox works on.
pub enum Account {
    /// Open in this process (its lock held), starting from `World`, and kept after every
    /// write.
    Held(Box<rehearsal::Held>, Box<World>),
    /// An empty account, kept in the job's folder once the job has one (`--sandbox-fresh`).
    Fresh,
    /// The account as last kept, to read: nothing is kept and no lock is taken.
    Copy(Box<World>),
}

impl Account {
    /// The account a new run (`reading`: a look at the account, as `export`, `validate
    /// --online`, `check` or a dry run take) works on. `command` names the process to a
    /// second one that finds the account in use.
    pub fn for_new(r: &Rehearsal, reading: bool, command: &str) -> Result<Account, JobError> {
        Ok(match (r, reading) {
            (Rehearsal::Shared, true) => Account::Copy(Box::new(
                Place::shared().read()?.unwrap_or_else(World::seeded),
            )),
            (Rehearsal::Shared, false) => {
                let place = Place::shared();
                let held = place.open(command, None)?;
                // Read once it is held: what the holder before kept last.
                let world = place.read()?.unwrap_or_else(World::seeded);
                Account::Held(Box::new(held), Box::new(world))
            }
            (Rehearsal::Fresh, true) => Account::Copy(Box::new(World::seeded())),
            (Rehearsal::Fresh, false) => Account::Fresh,
            (Rehearsal::OfJob(id), _) => {
                return Err(JobError::Refused(format!(
                    "job {id}'s account is opened through that job (plbulk resume or undo)"
                )))
            }
        })
    }

    /// The account `job` rehearsed on, opened for this process: its options say which, and
    /// `journal` (the job's) whether it can have been lost.
    pub fn of_job(
        job: &JobRef,
        journal: &Journal,
        options: &JobOptions,
    ) -> Result<Option<Account>, JobError> {
        let Some(r) = options.rehearsal.as_ref().filter(|_| options.sandbox) else {
            return Ok(None);
        };
        let place = match r {
            Rehearsal::Shared => Place::shared(),
            Rehearsal::Fresh => Place::in_folder(&job.dir),
            Rehearsal::OfJob(id) => Place::in_folder(
                &job.dir
                    .parent()
                    .map_or_else(|| PathBuf::from(id), |root| root.join(id)),
            ),
        };
        let command = if options.undo_of.is_some() {
            "plbulk undo"
        } else {
            "plbulk resume"
        };
        let held = place.open(command, Some(&job.meta.id))?;
        let world = match place.read()? {
            Some(w) => w,
            None => {
                let (_, _, last) = journal.attempt_stats()?;
                match place.legacy(&job.meta.id, last)? {
                    Some(w) => w,
                    // Reset since (the shared one), or never written to (nothing was sent).
                    None if *r == Rehearsal::Shared || last.is_none() => World::seeded(),
                    None => {
                        return Err(JobError::Refused(format!(
                            "job {} rehearsed on {}, which is not there any more, so it cannot go on: start the rehearsal again with plbulk run FILE --sandbox-fresh --new-job",
                            job.meta.id,
                            place.describe()
                        )))
                    }
                }
            }
        };
        Ok(Some(Account::Held(Box::new(held), Box::new(world))))
    }
}

/// Where the job's calls go: the API with the user's credentials, or an in-process sandbox.
pub struct Connection {
    pub client: Client,
    /// What the job has listed of the account, cached: the pre-flight fills it, and the engine
    /// starts from it rather than listing the same collections again.
    pub look: Arc<engine::Lookups>,
    pub calls: Arc<Counted>,
    pub base_url: String,
    pub key_id: String,
    sandbox: Option<Sandbox>,
    /// The rehearsal account this process has open, if it has one: held as long as the
    /// connection, so no other process writes to it meanwhile.
    account: Option<rehearsal::Held>,
    /// An empty account to keep in the job's folder once the job has one.
    fresh: bool,
}

impl Connection {
    /// Connects as the options say: to the API, or (`sandbox`) to an in-process sandbox on
    /// `account`.
    pub async fn open(
        options: &JobOptions,
        settings: Option<&Settings>,
        account: Option<Account>,
    ) -> Result<Connection, JobError> {
        let rate = options.rate;
        let mut held = None;
        let mut fresh = false;
        let (base_url, credentials, sandbox) = if options.sandbox {
            let config = SandboxConfig {
                rate,
                ..Default::default()
            };
            let world = match account {
                Some(Account::Held(h, w)) => {
                    held = Some(*h);
                    *w
                }
                Some(Account::Fresh) => {
                    fresh = true;
                    World::seeded()
                }
                Some(Account::Copy(w)) => *w,
                None => return Err(JobError::Refused("a rehearsal needs an account".into())),
            };
            let sb = Sandbox::start_on_world(config, world)
                .await
                .map_err(|e| JobError::Io(format!("cannot start the in-process sandbox: {e}")))?;
            if let Some(h) = &held {
                sb.keep_at(&h.place().file())
                    .map_err(|e| keep_failed(h.place(), &e))?;
            }
            (
                sb.url(),
                Credentials::new(DEFAULT_KEY, DEFAULT_SECRET),
                Some(sb),
            )
        } else {
            let s = settings.ok_or_else(|| JobError::Refused("no settings".into()))?;
            let Some((creds, _)) = &s.credentials else {
                // Every verb that opens a new connection takes --sandbox; a job's resume and
                // undo say what they need in `cmd::run::connect_as`.
                return Err(JobError::Refused(crate::client::credentials::missing_text()));
            };
            (s.base_url.clone(), creds.clone(), None)
        };
        let base_url = crate::client::normalize_base_url(&base_url)
            .map_err(|e| JobError::Refused(e.to_string()))?;
        let key_id = credentials.key_id.clone();
        // The in-process sandbox's budget is its own: it is not the partner's key.
        let budget_key = if options.sandbox {
            format!("sandbox:{base_url}")
        } else {
            budget_key(&base_url, &key_id)
        };
        let budget = SharedBudget::open(&budget_path(), &budget_key, rate)?;
        let calls = Arc::new(Counted::new(Arc::new(budget)));
        let mut config = ClientConfig::new(base_url.clone(), credentials);
        config.timeout = options.timeout();
        config.retry = RetryPolicy::default();
        config.pacer = Some(calls.clone() as Arc<dyn Pacer>);
        config.health = options.health();
        let client = Client::new(config).map_err(|e| JobError::Refused(e.to_string()))?;
        // Jobs on one account share what they are making, whichever key they use; a sandbox
        // in this process is an account of its own.
        let claims = if options.sandbox {
            None
        } else {
            Some(journal::claims::Claims::open(&claims_path(), &base_url)?)
        };
        Ok(Connection {
            look: Arc::new(engine::Lookups::with_claims(client.clone(), claims)),
            client,
            calls,
            base_url,
            key_id,
            sandbox,
            account: held,
            fresh,
        })
    }

    /// Ties the rehearsal account to `job` once it has a folder: names the job to a second
    /// process, and keeps a fresh account in the job's folder from its first write on.
    pub fn hold_for(&mut self, job: &JobRef) -> Result<(), JobError> {
        if let Some(h) = &self.account {
            h.set_job(&job.meta.id);
        } else if let (true, Some(sb)) = (self.fresh, &self.sandbox) {
            let place = Place::in_folder(&job.dir);
            let held = place.open("plbulk run", Some(&job.meta.id))?;
            sb.keep_at(&place.file())
                .map_err(|e| keep_failed(&place, &e))?;
            self.account = Some(held);
        }
        Ok(())
    }

    pub async fn close(self) {
        if let Some(sb) = self.sandbox {
            sb.stop().await;
        }
    }
}

fn keep_failed(place: &Place, e: &std::io::Error) -> JobError {
    JobError::Io(format!(
        "cannot keep {}: {e}; nothing was sent",
        place.describe()
    ))
}

/// Runs the job's engine until it completes or `stop` turns true.
pub async fn execute(
    job: &JobRef,
    journal: Arc<Journal>,
    look: Arc<engine::Lookups>,
    options: &JobOptions,
    stop: tokio::sync::watch::Receiver<bool>,
    observer: Arc<dyn engine::Observer>,
) -> Result<engine::Finish, JobError> {
    let file = job
        .meta
        .inputs
        .first()
        .map(|f| f.path.clone())
        .unwrap_or_else(|| {
            format!(
                "an undo of job {}",
                options.undo_of.as_deref().unwrap_or("?")
            )
        });
    let opts = engine::Options {
        concurrency: options.concurrency,
        existing: options.existing,
        settle: options.timeout() + Duration::from_secs(1),
        holder: Some(journal::claims::Holder {
            job: job.meta.id.clone(),
            pid: std::process::id(),
            file,
            lock: job.dir.join(LOCK_FILE),
        }),
    };
    if let Some(pages) = crate::failpoint::journal_pages() {
        journal.limit_growth(pages)?;
    }
    let engine = Arc::new(engine::Engine::new(journal, look, opts)?);
    Ok(engine.run(stop, observer).await?)
}

/// Whether every row ended well.
pub fn all_succeeded(counts: &[(RowState, u64)]) -> bool {
    counts.iter().all(|(s, n)| *n == 0 || s.is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20: options are typed, and journals written before read unchanged: the rate as
    /// it is written, the kind as the user typed it.
    #[test]
    fn options_read_as_journals_have_kept_them() {
        let old = serde_json::json!({
            "kind": "Blocked Numbers", "sandbox": false, "results": "/r.xlsx",
            "concurrency": 8, "rate": "20/2s", "existing": "skip", "skip_invalid": false,
            "timeout_ms": 30000
        });
        let o: JobOptions = serde_json::from_value(old).unwrap();
        assert_eq!(o.rate, Rate::new(20, Duration::from_secs(2)));
        assert_eq!(o.kind, Some(Kind::BlockedNumbers));
        let back = serde_json::to_value(&o).unwrap();
        assert_eq!(back["rate"], "20/2s");
        assert_eq!(back["kind"], "blocked-numbers");
        let none: JobOptions = serde_json::from_value(serde_json::json!({
            "kind": null, "sandbox": false, "results": "/r.xlsx", "concurrency": 8,
            "rate": "100/min", "existing": "skip", "skip_invalid": false, "timeout_ms": 1
        }))
        .unwrap();
        assert_eq!(none.kind, None);
        for (field, bad) in [("rate", "lots"), ("kind", "phones")] {
            let mut v = back.clone();
            v[field] = bad.into();
            let e = serde_json::from_value::<JobOptions>(v)
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    /// Two jobs of one file begun in one second are `ID` and `ID-2`: `ID` names the first, not
    /// both.
    #[test]
    fn a_whole_id_is_its_job_though_another_starts_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan {
            sheets: Vec::new(),
            rows: Vec::new(),
        };
        let fp = vec![journal::InputFile {
            path: "/nowhere/c.csv".into(),
            size: 1,
            hash: "abcdef0123456789".into(),
        }];
        let opts = JobOptions::reading(Rate::default());
        let (first, _) = create(dir.path(), fp, &opts, &plan, "http://x", "k").unwrap();
        // The job begun in the same second: its folder and its record named `ID-2`.
        let twin = format!("{}-2", first.meta.id);
        std::fs::create_dir(dir.path().join(&twin)).unwrap();
        for f in [JOURNAL_FILE, LOCK_FILE] {
            let from = first.dir.join(f);
            if from.exists() {
                std::fs::copy(&from, dir.path().join(&twin).join(f)).unwrap();
            }
        }
        rusqlite::Connection::open(dir.path().join(&twin).join(JOURNAL_FILE))
            .unwrap()
            .execute("UPDATE job SET id = ?1", [&twin])
            .unwrap();
        assert_eq!(
            find(dir.path(), Some(&first.meta.id)).unwrap().meta.id,
            first.meta.id
        );
        assert_eq!(find(dir.path(), Some(&twin)).unwrap().meta.id, twin);
    }
}
