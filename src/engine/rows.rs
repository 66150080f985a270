//! One row's work: resolve what it names, send its writes, and settle any doubt first.
//!
//! Every write is journaled: the intent before the request, the outcome after. Once a write may
//! have reached the server its outcome is *unknown* unless the answer proves otherwise (see
//! [`crate::client::ErrorKind`]): a dropped connection, a timeout, a 5xx, a killed process. A
//! create in doubt is never simply sent again: its row waits until the server must be done with
//! the first request, then looks for what it would have made by its natural key in a fresh,
//! complete list: found (and not already another row's), it is the row's; not found, the write
//! is sent again. Updates and deletions are safe to repeat and are repeated, and the 404 or 409
//! a repeat can draw after a doubt is checked against the account (deleted is done; already pro
//! is done; allocated to this user is done). An activation email or password reset in doubt, a
//! device whose MAC turns out taken, and an order whose outcome cannot be established are left
//! for a person (needs review), never sent again.
//!
//! A request answered before the process died keeps its answer: a resume does not send a step
//! whose latest answer in the journal was a success.

/// Does a [`Step`]: its value, or else returns from the enclosing step what ended the row
/// (or the stop). `?` for a step, which `?` itself cannot be on stable Rust (its `Try` trait
/// is unstable). Defined before the submodules, which use it.
macro_rules! step {
    ($step:expr) => {
        match $step? {
            $crate::engine::rows::Flow::Go(v) => v,
            $crate::engine::rows::Flow::Ends(outcome) => {
                return Ok($crate::engine::rows::Flow::Ends(outcome))
            }
        }
    };
}

mod attempt;
mod before;
mod kinds;
mod reconcile;
mod undo;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::lookup::Known;
use super::{Ended, Engine, Existing, Stop};
use crate::client::{self, ApiError, ApiRequest, ErrorKind, Next, Tries};
use crate::contract::{self as c, natural_key, Operation as O};
use crate::failpoint::{self, Point};
use crate::journal::claims::{Claim, Take};
use crate::journal::{now_ms, Answer, AttemptResult, RowRec};
use crate::model::{IdKind, RowIds, RowState, Sel, Target, Work};

/// What a step of a row's work came to, when nothing stopped the row: go on with the step's
/// value, or the row ends here in a state (a refusal, an entity that already exists under
/// `--existing fail`, a look-up that failed). Ending is an outcome, a value: only a stop and
/// the journal are errors ([`Stop`]).
pub(super) enum Flow<T> {
    /// The step did its part: the row goes on with this.
    Go(T),
    /// The row ends here, in this state.
    Ends(Outcome),
}

/// A step of a row's work that may end the row.
type Step<T> = Result<Flow<T>, Stop>;

/// What one write came to, when the row goes on: the API's answer, or its refusal with what
/// it proves (a final status, or an outcome left unknown once the retries were spent). A
/// value, not an error: each kind of row decides what a refusal means for it (a 409 after a
/// doubt may be its own earlier write; a 404 on a deletion after one is what it asked for).
pub(super) enum Sent {
    Answered(Bytes),
    Refused(ApiError),
}

/// How often a row waiting on another job's claim looks again.
const CLAIM_POLL: Duration = Duration::from_millis(250);

/// How a row ended: its state, and what to say of it.
type Outcome = (RowState, Option<String>);

/// The row did what it stands for, and there is nothing more to say.
const SUCCEEDED: Outcome = (RowState::Succeeded, None);

/// Goes on with `v`.
fn go<T>(v: T) -> Step<T> {
    Ok(Flow::Go(v))
}

/// The row ends here, in `state`.
fn ends<T>(state: RowState, detail: impl Into<Option<String>>) -> Step<T> {
    Ok(Flow::Ends((state, detail.into())))
}

/// A refusal of the row's request. A request the client halted was never sent: the row
/// stays to run.
fn failed<T>(e: &ApiError) -> Step<T> {
    if e.is_halted() {
        return Err(Stop::Interrupted);
    }
    let mut d = e.detail();
    if let Some(s) = e.status {
        d = format!("{d} (HTTP {s})");
    }
    ends(RowState::Failed, d)
}

/// A look-up in the account that could not be made: the row fails (or stays to run, when the
/// client halted it).
fn lookup_failed<T>(what: &str, e: &ApiError) -> Step<T> {
    if e.is_halted() {
        return Err(Stop::Interrupted);
    }
    ends(
        RowState::Failed,
        format!("could not {what}: {}", e.detail()),
    )
}

/// A look-up's result as a step: what it found, or the row fails for it.
fn looked<T>(what: &str, r: Result<T, ApiError>) -> Step<T> {
    match r {
        Ok(v) => go(v),
        Err(e) => lookup_failed(what, &e),
    }
}

/// What a create would make, to look for it in the account.
enum Natural<'a> {
    Customer(&'a c::NewCustomer),
    User {
        customer: &'a str,
        email: &'a str,
    },
    Number {
        customer: &'a str,
        number: &'a str,
    },
    Blocked {
        customer: &'a str,
        number: &'a str,
    },
    PartnerUser {
        email: &'a str,
    },
    Order {
        customer: &'a str,
        items: &'a [c::OrderItem],
        postcode: Option<&'a str>,
        /// Only orders created after this (ms since the epoch) count.
        since: i64,
    },
}

/// What a create row stands for, for [`RowCx::create_once`].
struct Entity<'a> {
    /// The row's id for it.
    key: IdKind,
    /// What it is to the other jobs on the account.
    claim: Claim<'a>,
    /// How to find it in the account.
    what: Natural<'a>,
    /// How a message names one that exists already.
    label: &'static str,
    /// What listing the account for it is, for a message.
    list_what: &'static str,
}

/// What was found or made: its id, and for a number who it is allocated to.
type Found = Known;

struct RowCx<'a> {
    e: &'a Engine,
    rec: &'a RowRec,
    /// A request of this row may have been applied, and nothing has shown whether it was.
    doubt: bool,
    /// Steps whose success an earlier process journaled before the row could end: not sent
    /// again.
    answered: HashSet<String>,
    ids: RowIds,
    /// Ids found (not made) since the row's last journal write: written with its next intent
    /// or its final state, not in a commit of their own. Lost in a crash, they are found again.
    unsaved: RowIds,
}

/// Runs one row to a final state (or to a stop).
pub(super) async fn execute(e: &Engine, rec: &RowRec, work: &Work) -> Result<Ended, Stop> {
    let answered = if rec.attempts > 0 {
        let id = rec.id;
        e.journaled(move |j| j.answered_steps(id))
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let mut cx = RowCx {
        e,
        rec,
        doubt: rec.doubt,
        answered,
        ids: e.ids_of(rec.id),
        unsaved: RowIds::default(),
    };
    let (mut state, mut detail) = match cx.run(work).await? {
        Flow::Go(outcome) | Flow::Ends(outcome) => outcome,
    };
    if state == RowState::Failed && cx.doubt {
        // A row that may have written never ends failed: a partner reading "failed" does it
        // again, and an order or a customer would be there twice.
        state = RowState::NeedsReview;
        detail = Some(format!(
            "{}; an earlier request of this row may have been applied (its answer was lost): check the account before running the row again",
            detail.as_deref().unwrap_or("it could not be finished")
        ));
    }
    Ok(Ended {
        state,
        detail,
        ids: cx.unsaved,
    })
}

/// Records what a finished (or half-finished) row tells about the account.
pub(super) fn learn(e: &Engine, row: i64, work: &Work, state: RowState, ids: &RowIds) {
    let id = |k: IdKind| ids.get(k).map(str::to_string);
    if let Some(key) = work.made_key() {
        if let Some(own) = id(key) {
            e.claim(key, &own, row);
        }
    }
    let customer = id(IdKind::Customer).unwrap_or_default();
    match work {
        Work::AddCustomer { .. } if state == RowState::Succeeded => {
            if let Some(cid) = id(IdKind::Customer) {
                e.look.mark_created(&cid);
            }
        }
        Work::AddUser { new, .. } => {
            if let Some(u) = id(IdKind::User) {
                e.look.remember(
                    &customer,
                    IdKind::User,
                    &new.email,
                    Known { id: u, user: None },
                );
            }
        }
        Work::AddNumber {
            number,
            allocate_to,
            ..
        } => {
            if let Some(n) = id(IdKind::Number) {
                let user = if state.is_success() && allocate_to.is_some() {
                    id(IdKind::User)
                } else {
                    None
                };
                e.look
                    .remember(&customer, IdKind::Number, number, Known { id: n, user });
            }
        }
        Work::AddBlocked { new, .. } => {
            if let Some(b) = id(IdKind::Blocked) {
                e.look.remember(
                    &customer,
                    IdKind::Blocked,
                    &new.number,
                    Known { id: b, user: None },
                );
            }
        }
        Work::AddPartnerUser { new } => {
            if let Some(p) = id(IdKind::PartnerUser) {
                e.look.remember(
                    "",
                    IdKind::PartnerUser,
                    &new.email,
                    Known { id: p, user: None },
                );
            }
        }
        // A customer that existed already is no new customer's; the rest name nothing that
        // later rows look up by what they wrote.
        Work::AddCustomer { .. }
        | Work::UpdateCustomer { .. }
        | Work::DeleteCustomer { .. }
        | Work::RegradeContract { .. }
        | Work::UpgradePlan { .. }
        | Work::UpdateUser { .. }
        | Work::DeleteUser { .. }
        | Work::ResendActivation { .. }
        | Work::ResetPassword { .. }
        | Work::AllocateNumber { .. }
        | Work::DeallocateNumber { .. }
        | Work::UpdateBlocked { .. }
        | Work::DeleteBlocked { .. }
        | Work::AddDevice { .. }
        | Work::AddOrder { .. }
        | Work::UserSettings { .. }
        | Work::UpdatePartnerUser { .. }
        | Work::DeletePartnerUser { .. }
        | Work::Remove { .. }
        | Work::Restore { .. }
        | Work::Reallocate(_) => {}
    }
}

impl RowCx<'_> {
    fn id(&self, k: IdKind) -> Option<String> {
        self.ids.get(k).map(str::to_string)
    }

    /// Records an id, durably, and shares it with the rows that depend on this one.
    /// Takes an id the journal has already recorded into this row's view and the job's.
    fn remember_id(&mut self, k: IdKind, v: &str) {
        self.ids.set(k, v);
        self.e
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(self.rec.id)
            .or_default()
            .set(k, v);
    }

    fn set(&mut self, k: IdKind, v: &str) {
        if self.ids.get(k) == Some(v) {
            return;
        }
        self.unsaved.set(k, v);
        self.remember_id(k, v);
    }

    /// Runs the row's work, and learns from it when it ran through. A row that a step ended
    /// teaches nothing: what it found may be half its work (a number found, its allocation
    /// refused), and remembering that would overwrite what the job knows of the account.
    async fn run(&mut self, work: &Work) -> Step<Outcome> {
        let r = self.dispatch(work).await;
        if let Ok(Flow::Go((state, _))) = &r {
            learn(self.e, self.rec.id, work, *state, &self.ids);
        }
        r
    }

    // --- Resolving names ---------------------------------------------------------------------

    fn dep_id(&self, row: i64, key: IdKind) -> Step<String> {
        if let Some(id) = self.e.id_of(row, key) {
            return go(id);
        }
        // Named as the partner finds it: the plan's own row number is in no file.
        let which = match self.e.journal.row(row) {
            Ok(rec) => self.e.describe_row(&rec),
            Err(_) => "the row it needs".to_string(),
        };
        let what = key.noun();
        ends(
            RowState::Failed,
            format!(
                "{which}, which this row needs, ended without a {what} ID: see that row in the results"
            ),
        )
    }

    async fn customer(&mut self, sel: &Sel) -> Step<String> {
        if let Some(id) = self.id(IdKind::Customer) {
            return go(id);
        }
        let id = match sel {
            Sel::Row(r) => step!(self.dep_id(*r, IdKind::Customer)),
            Sel::Id(id) => id.clone(),
            Sel::Existing(v) | Sel::Email(v) => {
                // On an account other jobs share, the list this job holds may be older than
                // what they made: listed again once before the row is failed for it.
                let mut relisted = self.e.look.claims().is_none();
                loop {
                    match self.e.look.customer_id(v).await {
                        Ok(Ok(id)) => break id,
                        Ok(Err(why)) => {
                            // Another job on the account may be making it: wait for that,
                            // then look again.
                            let waited =
                                self.wait_for_maker(Claim::Customer { company: v }).await?;
                            if waited || !relisted {
                                relisted = true;
                                let listed = self.e.look.customers(true).await;
                                step!(looked("list the account's customers", listed));
                                continue;
                            }
                            return ends(RowState::Failed, why);
                        }
                        Err(e) => return lookup_failed("list the account's customers", &e),
                    }
                }
            }
        };
        self.set(IdKind::Customer, &id);
        go(id)
    }

    async fn user(&mut self, customer: &str, sel: &Sel) -> Step<String> {
        if let Some(id) = self.id(IdKind::User) {
            return go(id);
        }
        let id = match sel {
            Sel::Row(r) => step!(self.dep_id(*r, IdKind::User)),
            Sel::Id(id) => id.clone(),
            Sel::Email(email) | Sel::Existing(email) => {
                match self.e.look.user_id(customer, email).await {
                    Ok(Some(id)) => id,
                    Ok(None) => {
                        return ends(
                            RowState::Failed,
                            format!(
                                "customer {customer} has no user with email {email}: add the user on the Users sheet, or correct the email"
                            ),
                        )
                    }
                    Err(e) => return lookup_failed("list the customer's users", &e),
                }
            }
        };
        self.set(IdKind::User, &id);
        go(id)
    }

    async fn product(&mut self, value: &str) -> Step<String> {
        match self.e.look.product_id(value).await {
            Ok(Ok(id)) => go(id),
            Ok(Err(why)) => ends(RowState::Failed, why),
            Err(e) => lookup_failed("list the products", &e),
        }
    }

    async fn number(&mut self, customer: &str, number: &str, fresh: bool) -> Step<Option<Known>> {
        let r = if fresh {
            self.e.look.numbers(customer, true).await.map(|all| {
                all.into_iter().find(|n| n.number == number).map(|n| Known {
                    id: n.id,
                    user: n.user_id,
                })
            })
        } else {
            self.e.look.number(customer, number).await
        };
        looked("list the customer's numbers", r)
    }
}

/// A number's allocation as a before-image: who it was allocated to, if anyone.
fn allocation(user: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "userId".into(),
        user.map_or(Value::Null, |u| Value::String(u.to_string())),
    );
    m
}

fn created_ms(s: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(s))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

fn squash_postcode(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_servers_timestamps() {
        let t = created_ms("2026-11-28T10:00:00.123Z").unwrap();
        assert_eq!(t % 1000, 123);
        assert!(created_ms("yesterday").is_none());
    }
}
