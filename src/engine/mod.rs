//! The engine: runs a journaled plan against the API, every row exactly once.
//!
//! It loads the rows from the journal, runs those whose dependencies have succeeded (several at
//! once, so the API's latency hides behind the pacer's spacing, never past it), and skips, with
//! the reason, those whose dependencies did not. Every write goes through [`rows`], which
//! journals the intent before sending and reconciles a row in doubt before anything is sent
//! again. A stop request (the first Ctrl-C) lets the rows in flight finish and starts no more.
//! Deletions wait until every other row has finished.

mod lookup;
mod rows;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::client::Client;
use crate::journal::{Journal, JournalError, RowRec, RowState, SheetRec};
use crate::plan::Work;

pub use lookup::Lookups;

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
    /// Ids each row has made or found, by row id.
    ids: Mutex<HashMap<i64, Map<String, Value>>>,
    /// What each row owns (made, or adopted after a doubt or as "already existed"), by kind
    /// of id and id → row: two rows in doubt must never adopt the same entity.
    claimed: Mutex<HashMap<(&'static str, String), i64>>,
    /// When this engine started: a request left in flight by a process that died went out
    /// before this, so rows reconciling it settle from here.
    started_ms: i64,
    stopping: AtomicBool,
}

struct Rt {
    rec: RowRec,
    work: Option<Work>,
    dependents: Vec<usize>,
    waiting: usize,
    /// The other rows of an order this row carries: they end as it ends.
    members: Vec<usize>,
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
        *claimed.entry((key, id.to_string())).or_insert(row) == row
    }

    /// Whether `id` belongs to a row other than `row`.
    pub(crate) fn taken(&self, key: &'static str, id: &str, row: i64) -> bool {
        self.claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(key, id.to_string()))
            .is_some_and(|owner| *owner != row)
    }

    fn describe_row(&self, rec: &RowRec) -> String {
        let sheet = self
            .sheets
            .get(rec.sheet as usize)
            .map_or("?", |s| s.sheet.as_str());
        format!("{sheet} row {}", rec.row_no)
    }

    /// What the journal says the job made: ids per row, customers created, entities known.
    fn learn(&self, rt: &[Rt]) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        for r in rt {
            if !r.rec.ids.is_empty() {
                ids.insert(r.rec.id, r.rec.ids.clone());
            }
            if r.rec.state.is_success() || r.rec.state == RowState::Pending {
                if let Some(w) = &r.work {
                    rows::learn(self, r.rec.id, w, r.rec.state, &r.rec.ids);
                }
            }
        }
    }

    /// Runs every pending row. Returns when all have a final state, or when `stop` turns true
    /// and the rows in flight have finished.
    pub async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        observer: Arc<dyn Observer>,
    ) -> Result<Finish, JournalError> {
        let recs = self.journal.rows()?;
        let pos: HashMap<i64, usize> = recs.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        let mut rt: Vec<Rt> = recs
            .into_iter()
            .map(|mut rec| Rt {
                // Moved, not copied: the engine reads a row's work from here alone.
                work: rec.work.take(),
                rec,
                dependents: Vec::new(),
                waiting: 0,
                members: Vec::new(),
            })
            .collect();
        for i in 0..rt.len() {
            if let Some(&l) = rt[i].rec.lead.and_then(|l| pos.get(&l)) {
                rt[l].members.push(i);
            }
        }
        self.learn(&rt);
        for i in 0..rt.len() {
            if rt[i].rec.state.is_final() || rt[i].rec.lead.is_some() {
                continue;
            }
            let deps = rt[i].rec.deps.clone();
            for d in deps {
                if let Some(&j) = pos.get(&d) {
                    if !rt[j].rec.state.is_final() {
                        rt[j].dependents.push(i);
                        rt[i].waiting += 1;
                    }
                }
            }
        }
        self.journal
            .set_job_state(crate::journal::JobState::Running)?;

        let mut ready: BTreeSet<usize> = BTreeSet::new();
        let mut deletes: BTreeSet<usize> = BTreeSet::new();
        let mut open_non_deletes = rt
            .iter()
            .filter(|r| {
                !r.rec.state.is_final()
                    && r.rec.lead.is_none()
                    && !r.work.as_ref().is_some_and(Work::is_delete)
            })
            .count();
        // Rows whose dependencies ended badly in an earlier run are skipped now.
        for i in 0..rt.len() {
            if rt[i].rec.state.is_final() || rt[i].rec.lead.is_some() {
                continue;
            }
            if let Some(reason) = self.failed_dependency(&rt, &pos, i) {
                self.skip(&mut rt, i, reason, &mut open_non_deletes, &observer)?;
            } else if rt[i].waiting == 0 {
                self.enqueue(&rt, i, &mut ready, &mut deletes);
            }
        }

        let mut tasks: JoinSet<(usize, End)> = JoinSet::new();
        // Which row each task runs: a task that panics returns no index of its own.
        let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut stopped = *stop.borrow();
        let mut listening = true;
        loop {
            if !stopped {
                if open_non_deletes == 0 {
                    ready.append(&mut deletes);
                }
                while tasks.len() < self.opts.concurrency.max(1) {
                    let Some(i) = ready.pop_first() else { break };
                    let Some(work) = rt[i].work.clone() else {
                        // A pending row without work (an invalid row is never pending) cannot be
                        // run: say so rather than stall.
                        let end = End::Final {
                            state: RowState::Failed,
                            detail: Some(
                                "this row's planned work could not be read from the journal".into(),
                            ),
                            ids: Map::new(),
                        };
                        let task = tasks.spawn(async move { (i, end) });
                        running.insert(task.id(), i);
                        continue;
                    };
                    let me = self.clone();
                    let rec = rt[i].rec.clone();
                    let task = tasks.spawn(async move {
                        let end = rows::execute(&me, &rec, &work).await;
                        (i, end)
                    });
                    running.insert(task.id(), i);
                }
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
                            // A panic in one row must not take the others' work with it: that
                            // row fails with the message, and the job goes on around it.
                            let Some(i) = running.remove(&e.id()) else { continue };
                            let why = panic_text(e);
                            tracing::error!(row = rt[i].rec.id, "a row's task failed: {why}");
                            let end = End::Final {
                                state: RowState::Failed,
                                detail: Some(format!("plbulk met an internal error on this row ({why}); the other rows went on. Please report it")),
                                ids: Map::new(),
                            };
                            (i, end)
                        }
                    };
                    match end {
                        End::Final { state, detail, ids } => {
                            let (id, d) = (rt[i].rec.id, detail.clone());
                            self.journaled(move |j| j.finish_row_with(id, state, d.as_deref(), None, &ids)).await?;
                            self.finished(&mut rt, i, state, detail, &mut open_non_deletes, &mut ready, &mut deletes, &observer)?;
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
        let pending = rt
            .iter()
            .any(|r| !r.rec.state.is_final() && r.rec.lead.is_none());
        if pending && (stopped || self.stopping()) {
            self.journal
                .set_job_state(crate::journal::JobState::Interrupted)?;
            Ok(Finish::Interrupted)
        } else {
            // Rows still pending here depend on each other in a cycle, which the plan does not
            // make; fail them rather than leave the job unfinishable.
            for r in rt.iter_mut() {
                if !r.rec.state.is_final() && r.rec.lead.is_none() {
                    let detail = "it waits on rows that never finished".to_string();
                    self.journal
                        .finish_row(r.rec.id, RowState::Failed, Some(&detail), None)?;
                    r.rec.state = RowState::Failed;
                }
            }
            self.journal
                .set_job_state(crate::journal::JobState::Finished)?;
            Ok(Finish::Completed)
        }
    }

    fn enqueue(
        &self,
        rt: &[Rt],
        i: usize,
        ready: &mut BTreeSet<usize>,
        deletes: &mut BTreeSet<usize>,
    ) {
        if rt[i].work.as_ref().is_some_and(Work::is_delete) {
            deletes.insert(i);
        } else {
            ready.insert(i);
        }
    }

    fn failed_dependency(&self, rt: &[Rt], pos: &HashMap<i64, usize>, i: usize) -> Option<String> {
        for d in &rt[i].rec.deps {
            let Some(&j) = pos.get(d) else { continue };
            let dep = &rt[j].rec;
            if dep.state.is_final() && !dep.state.is_success() {
                return Some(self.dependency_reason(dep, None));
            }
        }
        None
    }

    fn dependency_reason(&self, dep: &RowRec, detail: Option<&str>) -> String {
        let what = match dep.state {
            RowState::Failed => "failed",
            RowState::Skipped => "was skipped",
            RowState::NeedsReview => "needs review",
            RowState::Invalid => "is invalid",
            _ => "did not succeed",
        };
        match detail {
            Some(d) if !d.is_empty() => format!("{} {what}: {d}", self.describe_row(dep)),
            _ => format!("{} {what}", self.describe_row(dep)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finished(
        &self,
        rt: &mut [Rt],
        i: usize,
        state: RowState,
        detail: Option<String>,
        open_non_deletes: &mut usize,
        ready: &mut BTreeSet<usize>,
        deletes: &mut BTreeSet<usize>,
        observer: &Arc<dyn Observer>,
    ) -> Result<(), JournalError> {
        rt[i].rec.state = state;
        if !rt[i].work.as_ref().is_some_and(Work::is_delete) {
            *open_non_deletes = open_non_deletes.saturating_sub(1);
        }
        observer.row_finished(rt[i].rec.sheet, state);
        end_members(rt, i, state, observer);
        let dependents = std::mem::take(&mut rt[i].dependents);
        for j in dependents {
            if rt[j].rec.state.is_final() {
                continue;
            }
            if state.is_success() {
                rt[j].waiting -= 1;
                if rt[j].waiting == 0 {
                    self.enqueue(rt, j, ready, deletes);
                }
            } else {
                let reason = self.dependency_reason(&rt[i].rec, detail.as_deref());
                self.skip(rt, j, reason, open_non_deletes, observer)?;
            }
        }
        Ok(())
    }

    /// Skips row `i`, and everything that waits on it, with the reason.
    fn skip(
        &self,
        rt: &mut [Rt],
        i: usize,
        reason: String,
        open_non_deletes: &mut usize,
        observer: &Arc<dyn Observer>,
    ) -> Result<(), JournalError> {
        let mut stack = vec![(i, reason)];
        while let Some((k, reason)) = stack.pop() {
            if rt[k].rec.state.is_final() {
                continue;
            }
            self.journal
                .finish_row(rt[k].rec.id, RowState::Skipped, Some(&reason), None)?;
            rt[k].rec.state = RowState::Skipped;
            if !rt[k].work.as_ref().is_some_and(Work::is_delete) {
                *open_non_deletes = open_non_deletes.saturating_sub(1);
            }
            observer.row_finished(rt[k].rec.sheet, RowState::Skipped);
            end_members(rt, k, RowState::Skipped, observer);
            let why = self.dependency_reason(&rt[k].rec, None);
            for j in std::mem::take(&mut rt[k].dependents) {
                stack.push((j, why.clone()));
            }
        }
        Ok(())
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

/// The journal ends an order's member rows with its lead; the in-memory view and the progress
/// follow.
fn end_members(rt: &mut [Rt], lead: usize, state: RowState, observer: &Arc<dyn Observer>) {
    for m in std::mem::take(&mut rt[lead].members) {
        rt[m].rec.state = state;
        observer.row_finished(rt[m].rec.sheet, state);
    }
}
