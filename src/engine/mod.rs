//! The engine: runs a journaled plan against the API, every row exactly once.
//!
//! It loads the rows from the journal, runs those whose dependencies have succeeded (several at
//! once, so the API's latency hides behind the pacer's spacing, never past it), and skips, with
//! the reason, those whose dependencies did not. Every write goes through `rows`, which
//! journals the intent before sending and reconciles a row in doubt before anything is sent
//! again; which row runs next is `schedule`'s to say. A stop request (the first Ctrl-C) lets
//! the rows in flight finish and starts no more.
//! Deletions wait until every other row has finished.

mod lookup;
mod rows;
mod schedule;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::journal::{Journal, JournalError, RowState, SheetRec};

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
}

impl Default for Options {
    fn default() -> Options {
        Options {
            concurrency: 8,
            existing: Existing::Skip,
            settle: Duration::from_secs(30),
        }
    }
}

/// Told as rows end, for progress and tests.
pub trait Observer: Send + Sync {
    fn row_finished(&self, _sheet: u32, _state: RowState) {}
}

impl Observer for () {}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Every row has a final state.
    Completed,
    /// Stopped on request with rows still to run.
    Interrupted,
}

/// How a row's execution ended.
#[derive(Debug)]
pub(crate) enum End {
    Final {
        state: RowState,
        detail: Option<String>,
        /// Ids the row found and has not yet written: they go with its final state.
        ids: Map<String, Value>,
    },
    /// Stopped before it could finish; it stays pending.
    Interrupted,
    Journal(JournalError),
}

impl From<JournalError> for End {
    fn from(e: JournalError) -> End {
        End::Journal(e)
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
    ids: Mutex<HashMap<i64, Map<String, Value>>>,
    /// What each row owns (made, or adopted after a doubt or as "already existed"), by kind
    /// of id and id → row: two rows in doubt must never adopt the same entity.
    /// Kept for the whole run, one entry for each thing the job makes, so kept small: a map per
    /// kind of id and the id boxed (24 bytes an entry, not 48).
    claimed: Mutex<HashMap<&'static str, HashMap<Box<str>, i64>>>,
    /// When this engine started: a request left in flight by a process that died went out
    /// before this, so rows reconciling it settle from here.
    started_ms: i64,
    stopping: AtomicBool,
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
            stopping: AtomicBool::new(false),
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

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn ids_of(&self, row: i64) -> Map<String, Value> {
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&row)
            .cloned()
            .unwrap_or_default()
    }

    /// Gives `id` (an id of kind `key`) to `row`, unless another row has it. True when the
    /// row holds it now.
    pub(crate) fn claim(&self, key: &'static str, id: &str, row: i64) -> bool {
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
    pub(crate) fn taken(&self, key: &'static str, id: &str, row: i64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .and_then(|owners| owners.get(id))
            .is_some_and(|owner| *owner != row)
    }

    /// Runs every pending row. Returns when all have a final state, or when `stop` turns true
    /// and the rows in flight have finished.
    pub async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        observer: Arc<dyn Observer>,
    ) -> Result<Finish, JournalError> {
        let mut sched = Schedule::load(&self)?;
        self.journal
            .set_job_state(crate::journal::JobState::Running)?;
        sched.start(&self, &observer)?;

        let mut tasks: JoinSet<(usize, End)> = JoinSet::new();
        // Which row each task runs: a task that panics returns no index of its own.
        let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut stopped = *stop.borrow();
        let mut listening = true;
        loop {
            while !stopped && tasks.len() < self.opts.concurrency.max(1) {
                let Some(i) = sched.next() else { break };
                let me = self.clone();
                let id = sched.id(i);
                let task = tasks.spawn(async move {
                    // The row with its work is read when it runs: the schedule keeps no row's
                    // work, or a long job's memory would grow with its rows.
                    let rec = match me.journaled(move |j| j.row(id)).await {
                        Ok(rec) => rec,
                        Err(e) => return (i, End::Journal(e)),
                    };
                    let end = match &rec.work {
                        Some(work) => rows::execute(&me, &rec, work).await,
                        // A pending row without work (an invalid row is never pending) cannot
                        // be run: say so rather than stall.
                        None => End::Final {
                            state: RowState::Failed,
                            detail: Some(
                                "this row's planned work could not be read from the journal".into(),
                            ),
                            ids: Map::new(),
                        },
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
                            (i, panicked(sched.id(i), e))
                        }
                    };
                    match end {
                        End::Final { state, detail, ids } => {
                            let (id, d) = (sched.id(i), detail.clone());
                            self.journaled(move |j| j.finish_row_with(id, state, d.as_deref(), None, &ids)).await?;
                            sched.finished(&self, i, state, detail, &observer)?;
                        }
                        End::Interrupted => {}
                        End::Journal(e) => {
                            self.stopping.store(true, Ordering::SeqCst);
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
                            self.stopping.store(true, Ordering::SeqCst);
                        }
                        Ok(()) => {}
                    }
                }
            }
        }
        if sched.pending() && (stopped || self.stopping()) {
            self.journal
                .set_job_state(crate::journal::JobState::Interrupted)?;
            Ok(Finish::Interrupted)
        } else {
            sched.fail_stuck(&self.journal)?;
            self.journal
                .set_job_state(crate::journal::JobState::Finished)?;
            Ok(Finish::Completed)
        }
    }
}

/// A row whose task panicked fails with the message: a panic in one row must not take the
/// others' work with it, and the job goes on around it.
fn panicked(row: i64, e: tokio::task::JoinError) -> End {
    let why = panic_text(e);
    tracing::error!(row, "a row's task failed: {why}");
    End::Final {
        state: RowState::Failed,
        detail: Some(format!(
            "plbulk met an internal error on this row ({why}); the other rows went on. Please report it"
        )),
        ids: Map::new(),
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
