//! Which row runs next: the rows of a run with the rows each waits on and each lets run, the
//! rows ready now, and the deletions held back until every other row has ended.
//!
//! A row is ready when every row it depends on has succeeded; when one of them ends any other
//! way, the row and everything waiting on it are skipped with the reason. An order's member
//! rows end as the row that carries the order ends.
//!
//! A job of a million rows runs for days at the API's limit, and its memory must not grow with
//! it: a row is kept here in a few words (where it is, its state, its links), never with its
//! work, which the engine reads from the journal when the row runs. The ids a row made or found
//! stay in the engine's memory only while a row left to run depends on it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{rows, Engine, Observer};
use crate::journal::{Journal, JournalError};
use crate::model::{IdKind, RowState, Task, Work};

/// One row of the run.
struct Rt {
    id: i64,
    sheet: u32,
    row_no: u32,
    /// How many of this row's dependencies have not ended yet.
    waiting: u32,
    /// How many rows left to run depend on this one: while any do, the ids it made or found
    /// are kept for them.
    needed_by: u32,
    state: RowState,
    delete: bool,
    /// It adds a customer: the engine's look-ups remember what it made until it is forgotten.
    adds_customer: bool,
    /// A member of an order another row carries: it ends as that row ends, and never runs.
    member: bool,
    /// One of several tasks of its source row: progress hears of the row when its last task
    /// ends.
    task: Option<Task>,
    /// Most rows wait on nothing and carry no order: they allocate nothing here.
    links: Option<Box<Links>>,
}

/// A row's links to other rows, by position in the schedule.
#[derive(Default)]
struct Links {
    /// The rows it depends on, if it is left to run.
    deps: Vec<u32>,
    /// The rows waiting on it.
    dependents: Vec<u32>,
    /// The other rows of an order it carries: they end as it ends.
    members: Vec<u32>,
}

impl Rt {
    /// Whether the row is left to run: not ended, and not a member of another row's order.
    fn open(&self) -> bool {
        !self.state.is_final() && !self.member
    }

    fn links(&mut self) -> &mut Links {
        self.links.get_or_insert_with(Box::default)
    }

    fn deps(&self) -> &[u32] {
        self.links.as_ref().map_or(&[], |l| &l.deps)
    }
}

pub(super) struct Schedule {
    /// In plan order, which is row id order.
    rt: Vec<Rt>,
    ready: BTreeSet<u32>,
    /// Deletions ready to run once no other row is open.
    deletes: BTreeSet<u32>,
    open_non_deletes: usize,
    /// For each source row of several tasks: how many are yet to end, and the fold of the
    /// states of those that have ([`RowState::fold`]). Empty for today's sheets.
    tasks: HashMap<(u32, u32), (u32, Option<RowState>)>,
}

/// Where the row with id `id` is in `rt`, which is in id order.
fn position(rt: &[Rt], id: i64) -> Option<usize> {
    rt.binary_search_by_key(&id, |r| r.id).ok()
}

impl Schedule {
    /// The journal's rows, linked: each open row to the rows it waits on, each order's lead to
    /// its members. On the way the engine learns what each row made or found (`rows::learn`),
    /// and keeps the ids of the rows left to run and of the rows they depend on.
    /// The journal's rows, linked; `planned` gets what the open rows plan to make that other
    /// jobs on the account may name (see [`Engine::planned_claim`]), read in the same pass.
    pub(super) fn load(
        e: &Engine,
        planned: &mut Vec<(i64, String)>,
    ) -> Result<Schedule, JournalError> {
        let mut rt: Vec<Rt> = Vec::new();
        // Resolved to positions once every row is read: a row may name a later one.
        let mut deps: Vec<(usize, Vec<i64>)> = Vec::new();
        let mut leads: Vec<(usize, i64)> = Vec::new();
        let mut tasks: HashMap<(u32, u32), (u32, Option<RowState>)> = HashMap::new();
        e.journal.each_row(|rec| {
            if rec.task.is_some() {
                let (left, folded) = tasks.entry((rec.sheet, rec.row_no)).or_default();
                if rec.state.is_final() {
                    *folded = RowState::fold(folded.iter().copied().chain([rec.state]));
                } else {
                    *left += 1;
                }
            }
            let i = rt.len();
            if let Some(key) = Engine::planned_claim(&rec) {
                planned.push((rec.id, key));
            }
            if rec.state.is_success() || rec.state == RowState::Pending {
                if let Some(w) = &rec.work {
                    rows::learn(e, rec.id, w, rec.state, &rec.ids);
                }
            }
            let r = Rt {
                id: rec.id,
                sheet: rec.sheet,
                row_no: rec.row_no,
                waiting: 0,
                needed_by: 0,
                state: rec.state,
                delete: rec.work.as_ref().is_some_and(Work::is_delete),
                adds_customer: matches!(rec.work, Some(Work::AddCustomer { .. })),
                member: rec.lead.is_some(),
                task: rec.task,
                links: None,
            };
            if r.open() {
                if !rec.ids.is_empty() {
                    e.ids
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(rec.id, rec.ids);
                }
                if !rec.deps.is_empty() {
                    deps.push((i, rec.deps));
                }
            }
            if let Some(lead) = rec.lead {
                leads.push((i, lead));
            }
            rt.push(r);
        })?;
        for (i, lead) in leads {
            if let Some(l) = position(&rt, lead) {
                rt[l].links().members.push(i as u32);
            }
        }
        for (i, ids) in deps {
            for d in ids {
                let Some(j) = position(&rt, d) else { continue };
                rt[i].links().deps.push(j as u32);
                rt[j].needed_by += 1;
                if !rt[j].state.is_final() {
                    rt[j].links().dependents.push(i as u32);
                    rt[i].waiting += 1;
                }
            }
        }
        // A dependency that succeeded in an earlier run: what it made, for the rows that
        // name it. Read one by one, as few as there are such rows.
        for r in rt
            .iter()
            .filter(|r| r.needed_by > 0 && r.state.is_success())
        {
            let rec = e.journal.row(r.id)?;
            if !rec.ids.is_empty() {
                e.ids
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(rec.id, rec.ids);
            }
        }
        let open_non_deletes = rt.iter().filter(|r| r.open() && !r.delete).count();
        Ok(Schedule {
            rt,
            ready: BTreeSet::new(),
            deletes: BTreeSet::new(),
            open_non_deletes,
            tasks,
        })
    }

    /// The journal id of the row at `i`.
    pub(super) fn id(&self, i: usize) -> i64 {
        self.rt[i].id
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

    /// The next row to run; deletions once no other row is open. Its work is the journal's to
    /// give.
    pub(super) fn next(&mut self) -> Option<usize> {
        if self.open_non_deletes == 0 {
            self.ready.append(&mut self.deletes);
        }
        self.ready.pop_first().map(|i| i as usize)
    }

    /// Whether a row is left that has not ended.
    pub(super) fn pending(&self) -> bool {
        self.rt.iter().any(Rt::open)
    }

    fn enqueue(&mut self, i: usize) {
        if self.rt[i].delete {
            self.deletes.insert(i as u32);
        } else {
            self.ready.insert(i as u32);
        }
    }

    fn failed_dependency(&self, e: &Engine, i: usize) -> Option<String> {
        self.rt[i].deps().iter().find_map(|&d| {
            let dep = &self.rt[d as usize];
            (dep.state.is_final() && !dep.state.is_success())
                .then(|| self.reason(e, d as usize, None))
        })
    }

    /// Why a row waiting on row `dep` (which ended without success) is skipped.
    fn reason(&self, e: &Engine, dep: usize, detail: Option<&str>) -> String {
        let dep = &self.rt[dep];
        let what = match dep.state {
            RowState::Failed => "failed",
            RowState::Skipped => "was skipped",
            RowState::NeedsReview => "needs review",
            RowState::Invalid => "is invalid",
            // A dependency is reported only once it has ended without success.
            RowState::Pending
            | RowState::Succeeded
            | RowState::AlreadyExisted
            | RowState::Unchanged => "did not succeed",
        };
        let sheet = e
            .sheets
            .get(dep.sheet as usize)
            .map_or("?", |s| s.sheet.as_str());
        let place = crate::model::place(sheet, dep.row_no, dep.task);
        match detail {
            Some(d) if !d.is_empty() => format!("{place} {what}: {d}"),
            _ => format!("{place} {what}"),
        }
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
        let dependents = self.ended(e, i, state, observer);
        for j in dependents {
            let j = j as usize;
            if self.rt[j].state.is_final() {
                continue;
            }
            if state.is_success() {
                self.rt[j].waiting -= 1;
                if self.rt[j].waiting == 0 {
                    self.enqueue(j);
                }
            } else {
                let reason = self.reason(e, i, detail.as_deref());
                self.skip(e, j, reason, observer)?;
            }
        }
        Ok(())
    }

    /// Row `i` ends in `state`, with its members; returns the rows that waited on it. What it
    /// and its dependencies made is forgotten once no row left to run depends on them.
    fn ended(
        &mut self,
        e: &Engine,
        i: usize,
        state: RowState,
        observer: &Arc<dyn Observer>,
    ) -> Vec<u32> {
        let r = &mut self.rt[i];
        r.state = state;
        if !r.delete {
            self.open_non_deletes = self.open_non_deletes.saturating_sub(1);
        }
        let links = r.links.take().map(|l| *l).unwrap_or_default();
        self.tell(i, state, observer);
        // The journal ends an order's member rows with its lead; the in-memory view and the
        // progress follow.
        for m in links.members {
            self.rt[m as usize].state = state;
            self.tell(m as usize, state, observer);
        }
        self.forget_if_unneeded(e, i);
        for d in links.deps {
            let d = d as usize;
            self.rt[d].needed_by = self.rt[d].needed_by.saturating_sub(1);
            self.forget_if_unneeded(e, d);
        }
        links.dependents
    }

    /// Tells the observer that the row at `i` ended in `state`: at once for a row of one task;
    /// for one of several tasks, once its source row's last task has ended, in their folded
    /// state, so progress counts source rows as the results show them.
    fn tell(&mut self, i: usize, state: RowState, observer: &Arc<dyn Observer>) {
        let r = &self.rt[i];
        if r.task.is_none() {
            observer.row_finished(r.sheet, state);
            return;
        }
        let at = (r.sheet, r.row_no);
        let Some((left, folded)) = self.tasks.get_mut(&at) else {
            return;
        };
        *left = left.saturating_sub(1);
        *folded = RowState::fold(folded.iter().copied().chain([state]));
        if *left == 0 {
            if let Some(s) = *folded {
                observer.row_finished(at.0, s);
            }
            self.tasks.remove(&at);
        }
    }

    /// Drops the ids of row `i` from the engine's memory once it has ended and no row left to
    /// run depends on it: nothing will read them again in this run. So goes the look-ups'
    /// note of the customer it made.
    fn forget_if_unneeded(&self, e: &Engine, i: usize) {
        let r = &self.rt[i];
        if !r.state.is_final() || r.needed_by > 0 {
            return;
        }
        let ids = e
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&r.id);
        if r.adds_customer {
            if let Some(c) = ids.as_ref().and_then(|m| m.get(IdKind::Customer)) {
                e.look.forget_created(c);
            }
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
            if self.rt[k].state.is_final() {
                continue;
            }
            e.journal
                .finish_row(self.rt[k].id, RowState::Skipped, Some(&reason), None)?;
            let dependents = self.ended(e, k, RowState::Skipped, observer);
            let why = self.reason(e, k, None);
            for j in dependents {
                stack.push((j as usize, why.clone()));
            }
        }
        Ok(())
    }

    /// Rows still open once nothing runs wait on each other in a cycle, which the plan does not
    /// make: they fail rather than leave the job unfinishable.
    pub(super) fn fail_stuck(&mut self, journal: &Journal) -> Result<(), JournalError> {
        for r in self.rt.iter_mut().filter(|r| r.open()) {
            let detail = "it waits on rows that never finished";
            journal.finish_row(r.id, RowState::Failed, Some(detail), None)?;
            r.state = RowState::Failed;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Client, ClientConfig, Credentials};
    use crate::engine::{Lookups, Options};
    use crate::journal::{InputFile, JobMeta};
    use crate::model::Sel;
    use crate::model::{JobState, NewRow, RowIds, SheetRec};

    /// An engine on `rows`; nothing here makes a call, so its client points nowhere.
    fn engine(rows: &[NewRow]) -> Engine {
        let journal = Journal::in_memory().unwrap();
        let meta = JobMeta {
            id: "job-1".into(),
            created_at_ms: 1,
            fingerprint: "fp".into(),
            inputs: vec![InputFile {
                path: "a.csv".into(),
                size: 3,
                hash: "h".into(),
            }],
            options: serde_json::json!({}),
            base_url: "http://127.0.0.1:9".into(),
            key_id: "k".into(),
            state: JobState::Running,
            started_at_ms: None,
            finished_at_ms: None,
        };
        let sheet = SheetRec {
            idx: 0,
            file: "a.csv".into(),
            sheet: "Partner Users".into(),
            kind: "partner-users".into(),
            headers: vec!["Email".into()],
        };
        journal.init(&meta, &[sheet], rows).unwrap();
        let client = Client::new(ClientConfig::new(
            "http://127.0.0.1:9",
            Credentials::new("k", "s"),
        ))
        .unwrap();
        Engine::new(
            Arc::new(journal),
            Arc::new(Lookups::new(client)),
            Options::default(),
        )
        .unwrap()
    }

    fn row(state: RowState, deps: Vec<i64>) -> NewRow {
        NewRow {
            sheet: 0,
            row_no: 2,
            task: None,
            cells: vec!["a@example.com".into()],
            work: Some(Work::DeletePartnerUser {
                partner_user: Sel::Id("pus_1".into()),
            }),
            deps,
            lead: None,
            state,
            detail: None,
        }
    }

    /// What rows.rs records as a row makes or finds something.
    fn made(e: &Engine, row: i64) {
        let mut ids = RowIds::default();
        ids.set(IdKind::PartnerUser, &format!("pus_{row}"));
        e.ids.lock().unwrap().insert(row, ids);
    }

    fn held(e: &Engine) -> Vec<i64> {
        let mut rows: Vec<i64> = e.ids.lock().unwrap().keys().copied().collect();
        rows.sort_unstable();
        rows
    }

    /// Issue: a long job grew in memory with every row it ran. The schedule keeps a row in a few
    /// words, without its work, whatever the job's size.
    #[test]
    fn a_row_costs_the_schedule_a_few_words() {
        assert!(
            std::mem::size_of::<Rt>() <= 48,
            "{}",
            std::mem::size_of::<Rt>()
        );
    }

    /// Issue: a long job grew in memory with every row it ran. The ids a row made are kept
    /// while a row left to run depends on it, and forgotten when it and they have ended.
    #[test]
    fn what_a_row_made_is_kept_only_while_a_row_left_to_run_needs_it() {
        let observer: Arc<dyn Observer> = Arc::new(());
        // Row 2 waits on row 1; row 3 on nothing.
        let e = engine(&[
            row(RowState::Pending, vec![]),
            row(RowState::Pending, vec![1]),
            row(RowState::Pending, vec![]),
        ]);
        let mut s = Schedule::load(&e, &mut Vec::new()).unwrap();
        s.start(&e, &observer).unwrap();
        let first = s.next().unwrap();
        assert_eq!(s.id(first), 1);
        made(&e, 1);
        s.finished(&e, first, RowState::Succeeded, None, &observer)
            .unwrap();
        assert_eq!(held(&e), vec![1], "row 2 is yet to read what row 1 made");
        let second = s.next().unwrap();
        assert_eq!(s.id(second), 2);
        made(&e, 2);
        s.finished(&e, second, RowState::Succeeded, None, &observer)
            .unwrap();
        assert_eq!(held(&e), Vec::<i64>::new());
        let third = s.next().unwrap();
        made(&e, 3);
        s.finished(&e, third, RowState::Failed, None, &observer)
            .unwrap();
        assert_eq!(held(&e), Vec::<i64>::new());
        assert!(s.next().is_none());
        assert!(!s.pending());
    }

    /// A customer the job made stays known as its own (its collections hold only what the
    /// job put there) while a row left to run depends on the row that made it, no longer.
    #[test]
    fn a_made_customer_is_remembered_while_a_row_left_to_run_needs_it() {
        let observer: Arc<dyn Observer> = Arc::new(());
        let mut customer = row(RowState::Pending, vec![]);
        customer.work = Some(Work::AddCustomer {
            new: crate::contract::NewCustomer {
                company_name: "Acme".into(),
                ..Default::default()
            },
        });
        let e = engine(&[customer, row(RowState::Pending, vec![1])]);
        let mut s = Schedule::load(&e, &mut Vec::new()).unwrap();
        s.start(&e, &observer).unwrap();
        let i = s.next().unwrap();
        let mut ids = RowIds::default();
        ids.set(IdKind::Customer, "cus_1");
        e.ids.lock().unwrap().insert(1, ids);
        e.look.mark_created("cus_1");
        s.finished(&e, i, RowState::Succeeded, None, &observer)
            .unwrap();
        assert!(e.look.is_created("cus_1"));
        let j = s.next().unwrap();
        s.finished(&e, j, RowState::Succeeded, None, &observer)
            .unwrap();
        assert!(!e.look.is_created("cus_1"));
        assert_eq!(held(&e), Vec::<i64>::new());
    }

    /// On a resume, what an earlier run's rows made is read for the rows that depend on them,
    /// and for those only.
    #[test]
    fn a_resume_reads_what_the_rows_left_to_run_depend_on() {
        let observer: Arc<dyn Observer> = Arc::new(());
        let e = engine(&[
            row(RowState::Succeeded, vec![]),
            row(RowState::Succeeded, vec![]),
            row(RowState::Pending, vec![1]),
        ]);
        let mut ids = RowIds::default();
        for id in [1, 2] {
            ids.set(IdKind::PartnerUser, &format!("pus_{id}"));
            e.journal.set_ids(id, &ids).unwrap();
        }
        let mut s = Schedule::load(&e, &mut Vec::new()).unwrap();
        assert_eq!(held(&e), vec![1], "row 2 is needed by no row left to run");
        s.start(&e, &observer).unwrap();
        let i = s.next().unwrap();
        assert_eq!(s.id(i), 3);
        s.finished(&e, i, RowState::Succeeded, None, &observer)
            .unwrap();
        assert_eq!(held(&e), Vec::<i64>::new());
    }

    /// A row whose dependency ends badly is skipped with the reason, and nothing is kept for
    /// either.
    #[test]
    fn a_skipped_row_says_why_and_keeps_nothing() {
        let observer: Arc<dyn Observer> = Arc::new(());
        let e = engine(&[
            row(RowState::Pending, vec![]),
            row(RowState::Pending, vec![1]),
        ]);
        let mut s = Schedule::load(&e, &mut Vec::new()).unwrap();
        s.start(&e, &observer).unwrap();
        let i = s.next().unwrap();
        made(&e, 1);
        s.finished(&e, i, RowState::Failed, Some("404".into()), &observer)
            .unwrap();
        assert!(s.next().is_none());
        assert_eq!(held(&e), Vec::<i64>::new());
        let rows = e.journal.result_rows().unwrap();
        assert_eq!(rows[1].state, RowState::Skipped);
        assert_eq!(
            rows[1].detail.as_deref(),
            Some("Partner Users row 2 failed: 404")
        );
    }

    /// What progress is told: (sheet, state) as rows end.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<(u32, RowState)>>);

    impl Observer for Told {
        fn row_finished(&self, sheet: u32, state: RowState) {
            self.0.lock().unwrap().push((sheet, state));
        }
    }

    /// Issue 20: a source row that stands for several tasks is one row to progress: told once,
    /// when its last task ends, in their folded state; a task's dependant on a task of its own
    /// row that failed is skipped, saying which task of which row.
    #[test]
    fn progress_hears_of_a_row_of_tasks_once_its_last_task_ends() {
        let told = Arc::new(Told::default());
        let observer: Arc<dyn Observer> = told.clone();
        let task = |t: crate::model::Task, deps: Vec<i64>| NewRow {
            task: Some(t),
            ..row(RowState::Pending, deps)
        };
        use crate::model::Task as T;
        // Row 2: customer, user (after the customer), number (after the user); then a row of
        // one task.
        let e = engine(&[
            task(T::Customer, vec![]),
            task(T::User, vec![1]),
            task(T::Number, vec![2]),
            NewRow {
                row_no: 3,
                ..row(RowState::Pending, vec![])
            },
        ]);
        let mut s = Schedule::load(&e, &mut Vec::new()).unwrap();
        s.start(&e, &observer).unwrap();
        let first = s.next().unwrap();
        assert_eq!(s.id(first), 1);
        s.finished(&e, first, RowState::Succeeded, None, &observer)
            .unwrap();
        assert!(told.0.lock().unwrap().is_empty(), "row 2 is not done");
        let user = s.next().unwrap();
        assert_eq!(s.id(user), 2);
        s.finished(&e, user, RowState::Failed, Some("409".into()), &observer)
            .unwrap();
        // The number waited on the user: skipped, and with it the row is done, failed.
        assert_eq!(*told.0.lock().unwrap(), [(0, RowState::Failed)]);
        let rows = e.journal.result_rows().unwrap();
        assert_eq!(rows[2].state, RowState::Skipped);
        assert_eq!(
            rows[2].detail.as_deref(),
            Some("Partner Users row 2's user failed: 409")
        );
        let last = s.next().unwrap();
        assert_eq!(s.id(last), 4);
        s.finished(&e, last, RowState::Succeeded, None, &observer)
            .unwrap();
        assert_eq!(
            *told.0.lock().unwrap(),
            [(0, RowState::Failed), (0, RowState::Succeeded)]
        );
    }
}
