//! A job's state as one JSON document, for scripts and monitoring: what `plbulk status --json`,
//! `plbulk jobs --json` and `plbulk run … --json` print. The shape is stable: fields may be
//! added, never renamed or removed without a new `schema` number (README, *JSON output*).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::job::{Found, JobError, JobRef};
use crate::journal::Journal;
use crate::model::{JobState, RowState};
use crate::results::rfc3339;

/// The version of the shapes below.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub schema: u32,
    pub id: String,
    pub state: JobState,
    /// For an undo: the job it reverses.
    pub undo_of: Option<String>,
    pub endpoint: Endpoint,
    pub inputs: Vec<Input>,
    /// Rows per outcome, over every sheet; every outcome is present, zero or not.
    pub outcomes: BTreeMap<&'static str, u64>,
    pub sheets: Vec<SheetStatus>,
    pub rows: u64,
    /// Requests the job's rows sent (writes and their retries), from the journal.
    pub writes_sent: u64,
    /// Every call of the run that printed this, auth and look-ups included; only `run --json`
    /// knows it.
    pub calls: Option<u64>,
    pub created_at: String,
    pub first_call_at: Option<String>,
    pub last_call_at: Option<String>,
    /// Rows still to run, and the time they take at the job's rate.
    pub pending: u64,
    pub seconds_left: u64,
    pub rate: String,
    pub results: String,
    pub journal: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub base_url: String,
    pub key_id: String,
    /// The in-process sandbox of a rehearsal.
    pub sandbox: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub path: String,
    pub size: u64,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SheetStatus {
    pub file: String,
    pub sheet: String,
    pub kind: String,
    pub outcomes: BTreeMap<&'static str, u64>,
}

/// `plbulk jobs --json`: every job, oldest first; one whose journal cannot be read says why.
#[derive(Debug, Clone, Serialize)]
pub struct JobList {
    pub schema: u32,
    pub jobs: Vec<Listed>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Listed {
    Job(Box<JobStatus>),
    Unreadable { id: String, error: String },
}

fn outcomes() -> BTreeMap<&'static str, u64> {
    RowState::ALL.iter().map(|s| (s.as_str(), 0)).collect()
}

/// The state of `job`, from its journal (read beside a running job without disturbing it).
pub fn of(job: &JobRef, calls: Option<u64>) -> Result<JobStatus, JobError> {
    let journal = Journal::open(&job.journal_path())?;
    let meta = journal.meta()?;
    let options = job.options()?;
    let sheets = journal.sheets()?;
    let mut totals = outcomes();
    let mut per_sheet: Vec<SheetStatus> = sheets
        .iter()
        .map(|s| SheetStatus {
            file: s.file.clone(),
            sheet: s.sheet.clone(),
            kind: s.kind.clone(),
            outcomes: outcomes(),
        })
        .collect();
    for (sheet, state, n) in journal.counts_by_sheet()? {
        *totals.entry(state.as_str()).or_default() += n;
        if let Some(s) = per_sheet.get_mut(sheet as usize) {
            *s.outcomes.entry(state.as_str()).or_default() += n;
        }
    }
    let (writes_sent, first, last) = journal.attempt_stats()?;
    let pending = totals[RowState::Pending.as_str()];
    let rate = options.rate;
    Ok(JobStatus {
        schema: SCHEMA,
        id: meta.id.clone(),
        // A job left running by a process that died is interrupted.
        state: job.state_now(meta.state).state,
        undo_of: options.undo_of.clone(),
        endpoint: Endpoint {
            base_url: meta.base_url.clone(),
            key_id: meta.key_id.clone(),
            sandbox: options.sandbox,
        },
        inputs: meta
            .inputs
            .iter()
            .map(|f| Input {
                path: f.path.clone(),
                size: f.size,
                digest: f.hash.clone(),
            })
            .collect(),
        rows: totals.values().sum(),
        outcomes: totals,
        sheets: per_sheet,
        writes_sent,
        calls,
        created_at: rfc3339(meta.created_at_ms),
        first_call_at: first.map(rfc3339),
        last_call_at: last.map(rfc3339),
        pending,
        seconds_left: (pending as f64 / rate.per_second()).ceil() as u64,
        rate: rate.to_string(),
        results: options.results.display().to_string(),
        journal: job.journal_path().display().to_string(),
    })
}

/// Every job under a jobs folder.
/// An endpoint as `jobs` and the page show it: its host, without scheme or path.
pub fn host_of(base_url: &str) -> &str {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

pub fn list(jobs: &[Found]) -> JobList {
    JobList {
        schema: SCHEMA,
        jobs: jobs
            .iter()
            .map(|f| match f {
                Found::Job(j) => match of(j, None) {
                    Ok(s) => Listed::Job(Box::new(s)),
                    Err(e) => Listed::Unreadable {
                        id: j.meta.id.clone(),
                        error: e.to_string(),
                    },
                },
                Found::Unreadable(u) => Listed::Unreadable {
                    id: u.id.clone(),
                    error: u.error().to_string(),
                },
            })
            .collect(),
    }
}
