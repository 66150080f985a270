//! The engine: runs a journaled plan against the API, every row exactly once.
//!
//! It loads the rows from the journal, runs those whose dependencies have succeeded (several at
//! once, so the API's latency hides behind the pacer's spacing, never past it), and skips, with
//! the reason, those whose dependencies did not. Every write goes through `rows`, which
//! journals the intent before sending and reconciles a row in doubt before anything is sent
//! again; which row runs next is `schedule`'s to say. A stop request (the first Ctrl-C) halts
//! the client: requests that have not left are dropped (their rows stay to run), the answers
//! of those in flight are journaled, and no row starts. A refused key or an outage longer
//! than the job allows halts it the same way; an outage shorter than that only holds the
//! requests until the API answers (see [`crate::client::Health`]).
//! Deletions wait until every other row has finished.

mod lookup;
mod rows;
mod schedule;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client::{Client, Halt};
use crate::journal::claims::{self, Claim};
use crate::journal::{Journal, JournalError, RowRec};
use crate::model::{IdKind, RowIds, RowState, SheetRec};

pub use lookup::Lookups;
use schedule::Schedule;

/// What a create does when what it would make already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Existing {
    /// Record it as "already existed", with its id.
    #[default]
    Skip,
    /// Change it to match the row.
    Update,
    /// Fail the row.
    Fail,
}

impl std::fmt::Display for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Existing::Skip => "skip",
            Existing::Update => "update",
            Existing::Fail => "fail",
        })
    }
}

impl std::str::FromStr for Existing {
    type Err = String;
    fn from_str(s: &str) -> Result<Existing, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "skip" => Ok(Existing::Skip),
            "update" => Ok(Existing::Update),
            "fail" => Ok(Existing::Fail),
            _ => Err(format!("{s:?} is not skip, update or fail")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Rows in flight at once.
    pub concurrency: usize,
    pub existing: Existing,
    /// How long after a request whose outcome is unknown before the account is searched for
    /// what it made: by then the server has finished with it (the client's response timeout).
    pub settle: Duration,
    /// The job, as other jobs on the account see its claims (none: it shares no account).
    pub holder: Option<claims::Holder>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            concurrency: 8,
            existing: Existing::Skip,
            settle: Duration::from_secs(30),
            holder: None,
        }
    }
}

/// Told as rows end, for progress and tests.
pub trait Observer: Send + Sync {
    fn row_finished(&self, _sheet: u32, _state: RowState) {}

    /// A row waits for another job on the account, which is making what it would make or
    /// names (`why` says so, naming the job, its file and process).
    fn row_waits(&self, _why: &str) {}
}

impl Observer for () {}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every row has a final state.
    Completed,
    /// Stopped with rows still to run: on request, or because the API refused the key or
    /// did not answer for longer than the job allows.
    Interrupted(Halt),
}

/// What a row's execution came to: a final state, with what to say of it and the ids it found
/// and has not yet written (they go with its final state). A value: a row ending failed or
/// needing review is an ordinary outcome, not an error.
#[derive(Debug)]
pub(crate) struct Ended {
    state: RowState,
    detail: Option<String>,
    ids: RowIds,
}

/// Why a row's execution stopped short of a final state: the only error path of a row.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A stop was asked for (or the client halted): the row stays pending.
    Interrupted,
    /// Nothing more can be recorded, so the job stops.
    Journal(JournalError),
}

impl From<JournalError> for Stop {
    fn from(e: JournalError) -> Stop {
        Stop::Journal(e)
    }
}

pub struct Engine {
    journal: Arc<Journal>,
    client: Client,
    opts: Options,
    look: Arc<Lookups>,
    sheets: Vec<SheetRec>,
    /// Ids each row has made or found, by row id: of the rows left to run and of those they
    /// depend on (`schedule` forgets the others as they end).
    ids: Mutex<HashMap<i64, RowIds>>,
    /// What each row owns (made, or adopted after a doubt or as "already existed"), by kind
    /// of id and id → row: two rows in doubt must never adopt the same entity.
    /// Kept for the whole run, one entry for each thing the job makes, so kept small: a map per
    /// kind of id and the id boxed (24 bytes an entry, not 48).
    claimed: Mutex<HashMap<IdKind, HashMap<Box<str>, i64>>>,
    /// When this engine started: a request left in flight by a process that died went out
    /// before this, so rows reconciling it settle from here.
    started_ms: i64,
    observer: std::sync::OnceLock<Arc<dyn Observer>>,
    /// The job sent requests before this engine started: a resume, whose journal may have
    /// lost its tail (a disk that lied about a write), so an order looks before it is placed.
    resumed: AtomicBool,
}

impl Engine {
    /// `look` is the job's view of the account, shared with the pre-flight: what it listed is
    /// not listed again.
    pub fn new(
        journal: Arc<Journal>,
        look: Arc<Lookups>,
        opts: Options,
    ) -> Result<Engine, JournalError> {
        let sheets = journal.sheets()?;
        Ok(Engine {
            client: look.client().clone(),
            look,
            journal,
            opts,
            sheets,
            ids: Mutex::default(),
            claimed: Mutex::default(),
            started_ms: crate::journal::now_ms(),
            observer: std::sync::OnceLock::new(),
            resumed: AtomicBool::new(false),
        })
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Runs a journal call on the blocking pool: a commit waits for the disk (`synchronous=FULL`),
    /// and a worker thread stuck in fsync would delay the requests whose pacing slot has come,
    /// bunching them at the server.
    pub(crate) async fn journaled<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let j = self.journal.clone();
        match tokio::task::spawn_blocking(move || f(&j)).await {
            Ok(r) => r,
            Err(e) => Err(JournalError::Invalid {
                path: self.journal.path().to_path_buf(),
                message: format!("a journal write did not complete: {e}"),
            }),
        }
    }

    /// Whether the job is stopping: the client is halted (a stop asked for, a refused key,
    /// an outage too long), and sends nothing more.
    fn stopping(&self) -> bool {
        self.client.health().halted().is_some()
    }

    /// Starts no more rows, and drops every request that has not left.
    fn stop_sending(&self, why: Halt) {
        self.client.health().halt(why);
    }

    /// One id `row` has recorded, read where it is kept (a dependant needs one id, not the
    /// row's ids and before-image).
    fn id_of(&self, row: i64, k: IdKind) -> Option<String> {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row)?
            .get(k)
            .map(str::to_string)
    }

    fn ids_of(&self, row: i64) -> RowIds {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row)
            .cloned()
            .unwrap_or_default()
    }

    /// Gives `id` (an id of kind `key`) to `row`, unless another row has it. True when the
    /// row holds it now.
    pub(crate) fn claim(&self, key: IdKind, id: &str, row: i64) -> bool {
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let owners = claimed.entry(key).or_default();
        match owners.get(id) {
            Some(owner) => *owner == row,
            None => {
                owners.insert(id.into(), row);
                true
            }
        }
    }

    /// Whether `id` belongs to a row other than `row`.
    pub(crate) fn taken(&self, key: IdKind, id: &str, row: i64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .and_then(|owners| owners.get(id))
            .is_some_and(|owner| *owner != row)
    }

    pub(crate) fn resumed(&self) -> bool {
        self.resumed.load(Ordering::SeqCst)
    }

    /// Says that a row waits for another job.
    fn tell_wait(&self, why: &str) {
        tracing::info!("{why}");
        if let Some(o) = self.observer.get() {
            o.row_waits(why);
        }
    }

    fn describe_row(&self, rec: &RowRec) -> String {
        let sheet = self
            .sheets
            .get(rec.sheet as usize)
            .map_or("?", |s| s.sheet.as_str());
        crate::model::place(sheet, rec.row_no, rec.task)
    }

    /// Runs every pending row. Returns when all have a final state, or when `stop` turns true
    /// and the rows in flight have finished.
    pub async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        observer: Arc<dyn Observer>,
    ) -> Result<Finish, JournalError> {
        let (sent_before, _, _) = self.journal.attempt_stats()?;
        self.resumed.store(sent_before > 0, Ordering::SeqCst);
        let _ = self.observer.set(observer.clone());
        let mut planned = Vec::new();
        let mut sched = Schedule::load(&self, &mut planned)?;
        self.join_claims(planned).await;
        self.journal
            .set_job_state(crate::model::JobState::Running)?;
        sched.start(&self, &observer)?;

        let mut tasks: JoinSet<(usize, Result<Ended, Stop>)> = JoinSet::new();
        // Which row each task runs: a task that panics returns no index of its own.
        let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut stopped = *stop.borrow();
        if stopped {
            self.stop_sending(Halt::Stopped);
        }
        let mut listening = true;
        loop {
            while !stopped && !self.stopping() && tasks.len() < self.opts.concurrency.max(1) {
                let Some(i) = sched.next() else { break };
                let me = self.clone();
                let id = sched.id(i);
                let task = tasks.spawn(async move {
                    // The row with its work is read when it runs: the schedule keeps no row's
                    // work, or a long job's memory would grow with its rows.
                    let rec = match me.journaled(move |j| j.row(id)).await {
                        Ok(rec) => rec,
                        Err(e) => return (i, Err(Stop::Journal(e))),
                    };
                    let end = match &rec.work {
                        Some(work) => rows::execute(&me, &rec, work).await,
                        // A pending row without work (an invalid row is never pending) cannot
                        // be run: say so rather than stall.
                        None => Ok(Ended {
                            state: RowState::Failed,
                            detail: Some(
                                "this row's planned work could not be read from the journal".into(),
                            ),
                            ids: RowIds::default(),
                        }),
                    };
                    (i, end)
                });
                running.insert(task.id(), i);
            }
            if tasks.is_empty() {
                break;
            }
            tokio::select! {
                joined = tasks.join_next_with_id() => {
                    let Some(joined) = joined else { continue };
                    let (i, end) = match joined {
                        Ok((task, x)) => {
                            running.remove(&task);
                            x
                        }
                        Err(e) => {
                            let Some(i) = running.remove(&e.id()) else { continue };
                            (i, Ok(panicked(sched.id(i), e)))
                        }
                    };
                    match end {
                        Ok(Ended { state, detail, ids }) => {
                            let (id, d) = (sched.id(i), detail.clone());
                            self.journaled(move |j| j.finish_row_with(id, state, d.as_deref(), None, &ids)).await?;
                            self.claims_call(move |c| c.done(id)).await;
                            sched.finished(&self, i, state, detail, &observer)?;
                        }
                        Err(Stop::Interrupted) => {
                            if self.client.health().halted().is_some() {
                                stopped = true;
                            }
                        }
                        Err(Stop::Journal(e)) => {
                            // Nothing more can be recorded, so nothing more may be sent.
                            self.stop_sending(Halt::Stopped);
                            while tasks.join_next().await.is_some() {}
                            return Err(e);
                        }
                    }
                }
                changed = stop.changed(), if !stopped && listening => {
                    match changed {
                        // No one can ask for a stop any more: run on.
                        Err(_) => listening = false,
                        Ok(()) if *stop.borrow() => {
                            stopped = true;
                            self.stop_sending(Halt::Stopped);
                        }
                        Ok(()) => {}
                    }
                }
            }
        }
        self.claims_call(|c| c.leave()).await;
        let halt = self.client.health().halted();
        if sched.pending() && (stopped || halt.is_some()) {
            self.journal
                .set_job_state(crate::model::JobState::Interrupted)?;
            Ok(Finish::Interrupted(halt.unwrap_or(Halt::Stopped)))
        } else {
            sched.fail_stuck(&self.journal)?;
            self.journal
                .set_job_state(crate::model::JobState::Finished)?;
            Ok(Finish::Completed)
        }
    }

    /// Joins the account's claims, publishing what the job's open rows plan to make that
    /// another job may name before it exists: customers and partner users.
    async fn join_claims(&self, planned: Vec<(i64, String)>) {
        let Some(me) = self.opts.holder.clone() else {
            return;
        };
        self.claims_call(move |c| c.join(me, &planned)).await;
    }

    /// What an open row plans to make that another job may name before it exists.
    fn planned_claim(rec: &RowRec) -> Option<String> {
        if rec.state.is_final() {
            return None;
        }
        let claim = match rec.work.as_ref()? {
            crate::model::Work::AddCustomer { new } => Claim::Customer {
                company: &new.company_name,
            },
            crate::model::Work::AddPartnerUser { new } => Claim::PartnerUser { email: &new.email },
            crate::model::Work::UpdateCustomer { .. }
            | crate::model::Work::DeleteCustomer { .. }
            | crate::model::Work::RegradeContract { .. }
            | crate::model::Work::UpgradePlan { .. }
            | crate::model::Work::AddUser { .. }
            | crate::model::Work::UpdateUser { .. }
            | crate::model::Work::DeleteUser { .. }
            | crate::model::Work::ResendActivation { .. }
            | crate::model::Work::ResetPassword { .. }
            | crate::model::Work::AddNumber { .. }
            | crate::model::Work::AllocateNumber { .. }
            | crate::model::Work::DeallocateNumber { .. }
            | crate::model::Work::AddBlocked { .. }
            | crate::model::Work::UpdateBlocked { .. }
            | crate::model::Work::DeleteBlocked { .. }
            | crate::model::Work::AddDevice { .. }
            | crate::model::Work::AddOrder { .. }
            | crate::model::Work::UserSettings { .. }
            | crate::model::Work::UpdatePartnerUser { .. }
            | crate::model::Work::DeletePartnerUser { .. }
            | crate::model::Work::Remove { .. }
            | crate::model::Work::Restore { .. }
            | crate::model::Work::Reallocate(_) => return None,
        };
        Some(claim.key())
    }

    /// Runs a claims call on the blocking pool. A claims file that cannot be used (a full
    /// disk) is said in the log and costs the claims only: the rows still look in the account
    /// before they create, as a job alone on the account does.
    pub(crate) async fn claims_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&claims::Claims) -> Result<T, JournalError> + Send + 'static,
    ) -> Option<T> {
        let c = self.look.claims()?.clone();
        match tokio::task::spawn_blocking(move || f(&c)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!("claims: {e}");
                None
            }
            Err(e) => {
                tracing::warn!("claims: {e}");
                None
            }
        }
    }
}

/// A row whose task panicked fails with the message: a panic in one row must not take the
/// others' work with it, and the job goes on around it.
fn panicked(row: i64, e: tokio::task::JoinError) -> Ended {
    let why = panic_text(e);
    tracing::error!(row, "a row's task failed: {why}");
    Ended {
        state: RowState::Failed,
        detail: Some(format!(
            "plbulk met an internal error on this row ({why}); the other rows went on. Please report it"
        )),
        ids: RowIds::default(),
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}
