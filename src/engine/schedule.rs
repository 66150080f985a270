//! Which row runs next: the rows of a run with the rows each waits on and each lets run, the
//! rows ready now, and the deletions held back until every other row has ended.
//!
//! A row is ready when every row it depends on has succeeded; when one of them ends any other
//! way, the row and everything waiting on it are skipped with the reason. An order's member
//! rows end as the row that carries the order ends.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{Engine, Observer};
use crate::journal::{Journal, JournalError, RowRec, RowState};
use crate::plan::Work;

/// One row of the run.
pub(super) struct Rt {
    pub(super) rec: RowRec,
    pub(super) work: Option<Work>,
    /// The rows waiting on this one.
    dependents: Vec<usize>,
    /// How many of this row's dependencies have not ended yet.
    waiting: usize,
    /// The other rows of an order this row carries: they end as it ends.
    members: Vec<usize>,
}

impl Rt {
    fn is_delete(&self) -> bool {
        self.work.as_ref().is_some_and(Work::is_delete)
    }

    /// Whether the row is left to run: not ended, and not a member of another row's order.
    fn open(&self) -> bool {
        !self.rec.state.is_final() && self.rec.lead.is_none()
    }
}

pub(super) struct Schedule {
    rt: Vec<Rt>,
    /// Row id → index in `rt`.
    pos: HashMap<i64, usize>,
    ready: BTreeSet<usize>,
    /// Deletions ready to run once no other row is open.
    deletes: BTreeSet<usize>,
    open_non_deletes: usize,
}

impl Schedule {
    /// The journal's rows, linked: each open row to the open rows it waits on, each order's
    /// lead to its members.
    pub(super) fn new(recs: Vec<RowRec>) -> Schedule {
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
        for i in 0..rt.len() {
            if !rt[i].open() {
                continue;
            }
            for d in rt[i].rec.deps.clone() {
                if let Some(&j) = pos.get(&d) {
                    if !rt[j].rec.state.is_final() {
                        rt[j].dependents.push(i);
                        rt[i].waiting += 1;
                    }
                }
            }
        }
        let open_non_deletes = rt.iter().filter(|r| r.open() && !r.is_delete()).count();
        Schedule {
            rt,
            pos,
            ready: BTreeSet::new(),
            deletes: BTreeSet::new(),
            open_non_deletes,
        }
    }

    pub(super) fn rows(&self) -> &[Rt] {
        &self.rt
    }

    pub(super) fn rec(&self, i: usize) -> &RowRec {
        &self.rt[i].rec
    }

    /// Skips the rows whose dependencies ended badly in an earlier run, and makes ready those
    /// that wait on nothing.
    pub(super) fn start(
        &mut self,
        e: &Engine,
        observer: &Arc<dyn Observer>,
    ) -> Result<(), JournalError> {
        for i in 0..self.rt.len() {
            if !self.rt[i].open() {
                continue;
            }
            if let Some(reason) = self.failed_dependency(e, i) {
                self.skip(e, i, reason, observer)?;
            } else if self.rt[i].waiting == 0 {
                self.enqueue(i);
            }
        }
        Ok(())
    }

    /// The next row to run and its work; deletions once no other row is open.
    pub(super) fn next(&mut self) -> Option<(usize, Option<Work>)> {
        if self.open_non_deletes == 0 {
            self.ready.append(&mut self.deletes);
        }
        let i = self.ready.pop_first()?;
        Some((i, self.rt[i].work.clone()))
    }

    /// Whether a row is left that has not ended.
    pub(super) fn pending(&self) -> bool {
        self.rt.iter().any(Rt::open)
    }

    fn enqueue(&mut self, i: usize) {
        if self.rt[i].is_delete() {
            self.deletes.insert(i);
        } else {
            self.ready.insert(i);
        }
    }

    fn failed_dependency(&self, e: &Engine, i: usize) -> Option<String> {
        self.rt[i].rec.deps.iter().find_map(|d| {
            let dep = &self.rt[*self.pos.get(d)?].rec;
            (dep.state.is_final() && !dep.state.is_success())
                .then(|| e.dependency_reason(dep, None))
        })
    }

    /// Row `i` has ended (its state journaled): its members end with it, and the rows waiting
    /// on it become ready or are skipped.
    pub(super) fn finished(
        &mut self,
        e: &Engine,
        i: usize,
        state: RowState,
        detail: Option<String>,
        observer: &Arc<dyn Observer>,
    ) -> Result<(), JournalError> {
        self.ended(i, state, observer);
        for j in std::mem::take(&mut self.rt[i].dependents) {
            if self.rt[j].rec.state.is_final() {
                continue;
            }
            if state.is_success() {
                self.rt[j].waiting -= 1;
                if self.rt[j].waiting == 0 {
                    self.enqueue(j);
                }
            } else {
                let reason = e.dependency_reason(&self.rt[i].rec, detail.as_deref());
                self.skip(e, j, reason, observer)?;
            }
        }
        Ok(())
    }

    fn ended(&mut self, i: usize, state: RowState, observer: &Arc<dyn Observer>) {
        self.rt[i].rec.state = state;
        if !self.rt[i].is_delete() {
            self.open_non_deletes = self.open_non_deletes.saturating_sub(1);
        }
        observer.row_finished(self.rt[i].rec.sheet, state);
        // The journal ends an order's member rows with its lead; the in-memory view and the
        // progress follow.
        for m in std::mem::take(&mut self.rt[i].members) {
            self.rt[m].rec.state = state;
            observer.row_finished(self.rt[m].rec.sheet, state);
        }
    }

    /// Skips row `i`, and everything that waits on it, with the reason.
    fn skip(
        &mut self,
        e: &Engine,
        i: usize,
        reason: String,
        observer: &Arc<dyn Observer>,
    ) -> Result<(), JournalError> {
        let mut stack = vec![(i, reason)];
        while let Some((k, reason)) = stack.pop() {
            if self.rt[k].rec.state.is_final() {
                continue;
            }
            e.journal
                .finish_row(self.rt[k].rec.id, RowState::Skipped, Some(&reason), None)?;
            self.ended(k, RowState::Skipped, observer);
            let why = e.dependency_reason(&self.rt[k].rec, None);
            for j in std::mem::take(&mut self.rt[k].dependents) {
                stack.push((j, why.clone()));
            }
        }
        Ok(())
    }

    /// Rows still open once nothing runs wait on each other in a cycle, which the plan does not
    /// make: they fail rather than leave the job unfinishable.
    pub(super) fn fail_stuck(&mut self, journal: &Journal) -> Result<(), JournalError> {
        for r in self.rt.iter_mut().filter(|r| r.open()) {
            let detail = "it waits on rows that never finished";
            journal.finish_row(r.rec.id, RowState::Failed, Some(detail), None)?;
            r.rec.state = RowState::Failed;
        }
        Ok(())
    }
}
