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

mod before;
mod undo;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::lookup::Known;
use super::{End, Engine, Existing};
use crate::client::{self, ApiError, ApiRequest, ErrorKind, Next, Tries};
use crate::contract::{self as c, natural_key, Operation as O};
use crate::failpoint::{self, Point};
use crate::journal::claims::{Claim, Take};
use crate::journal::{now_ms, Answer, AttemptResult, RowRec};
use crate::model::RowState;
use crate::model::{IdKind, RowIds};
use crate::model::{Sel, Target, Work};

type Step<T> = Result<T, End>;

/// How often a row waiting on another job's claim looks again.
const CLAIM_POLL: Duration = Duration::from_millis(250);

/// How a row ended: its state, and what to say of it.
type Outcome = (RowState, Option<String>);

/// The row did what it stands for, and there is nothing more to say.
const SUCCEEDED: Outcome = (RowState::Succeeded, None);

fn done(state: RowState, detail: impl Into<Option<String>>) -> End {
    End::Final {
        state,
        detail: detail.into(),
        ids: Box::default(),
    }
}

/// A refusal of the row's request. A request the client halted was never sent: the row
/// stays to run.
fn failed(e: &ApiError) -> End {
    if e.is_halted() {
        return End::Interrupted;
    }
    let mut d = e.detail();
    if let Some(s) = e.status {
        d = format!("{d} (HTTP {s})");
    }
    done(RowState::Failed, d)
}

fn lookup_failed(what: &str, e: &ApiError) -> End {
    if e.is_halted() {
        return End::Interrupted;
    }
    done(
        RowState::Failed,
        format!("could not {what}: {}", e.detail()),
    )
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
pub(super) async fn execute(e: &Engine, rec: &RowRec, work: &Work) -> End {
    let answered = if rec.attempts > 0 {
        let id = rec.id;
        match e.journaled(move |j| j.answered_steps(id)).await {
            Ok(steps) => steps.into_iter().collect(),
            Err(j) => return End::Journal(j),
        }
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
    let (mut state, mut detail) = match cx.run(work).await {
        Ok(end) => end,
        Err(End::Final { state, detail, .. }) => (state, detail),
        Err(other) => return other,
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
    End::Final {
        state,
        detail,
        ids: Box::new(cx.unsaved),
    }
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
        _ => {}
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
            .insert(self.rec.id, self.ids.clone());
    }

    fn set(&mut self, k: IdKind, v: &str) {
        if self.id(k).as_deref() == Some(v) {
            return;
        }
        self.unsaved.set(k, v);
        self.remember_id(k, v);
    }

    async fn run(&mut self, work: &Work) -> Step<Outcome> {
        let r = self.dispatch(work).await;
        if let Ok((state, _)) = &r {
            learn(self.e, self.rec.id, work, *state, &self.ids);
        }
        r
    }

    // --- Resolving names ---------------------------------------------------------------------

    fn dep_id(&self, row: i64, key: IdKind) -> Step<String> {
        self.e
            .ids_of(row)
            .get(key)
            .map(str::to_string)
            .ok_or_else(|| {
                // Named as the partner finds it: the plan's own row number is in no file.
                let which = match self.e.journal.row(row) {
                    Ok(rec) => self.e.describe_row(&rec),
                    Err(_) => "the row it needs".to_string(),
                };
                let what = key.noun();
                done(
                    RowState::Failed,
                    format!(
                        "{which}, which this row needs, ended without a {what} ID: see that row in the results"
                    ),
                )
            })
    }

    async fn customer(&mut self, sel: &Sel) -> Step<String> {
        if let Some(id) = self.id(IdKind::Customer) {
            return Ok(id);
        }
        let id = match sel {
            Sel::Row(r) => self.dep_id(*r, IdKind::Customer)?,
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
                                self.e.look.customers(true).await.map_err(|e| {
                                    lookup_failed("list the account's customers", &e)
                                })?;
                                continue;
                            }
                            return Err(done(RowState::Failed, why));
                        }
                        Err(e) => return Err(lookup_failed("list the account's customers", &e)),
                    }
                }
            }
        };
        self.set(IdKind::Customer, &id);
        Ok(id)
    }

    async fn user(&mut self, customer: &str, sel: &Sel) -> Step<String> {
        if let Some(id) = self.id(IdKind::User) {
            return Ok(id);
        }
        let id = match sel {
            Sel::Row(r) => self.dep_id(*r, IdKind::User)?,
            Sel::Id(id) => id.clone(),
            Sel::Email(email) | Sel::Existing(email) => {
                match self.e.look.user_id(customer, email).await {
                    Ok(Some(id)) => id,
                    Ok(None) => {
                        return Err(done(
                            RowState::Failed,
                            format!(
                                "customer {customer} has no user with email {email}: add the user on the Users sheet, or correct the email"
                            ),
                        ))
                    }
                    Err(e) => return Err(lookup_failed("list the customer's users", &e)),
                }
            }
        };
        self.set(IdKind::User, &id);
        Ok(id)
    }

    async fn product(&mut self, value: &str) -> Step<String> {
        match self.e.look.product_id(value).await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(why)) => Err(done(RowState::Failed, why)),
            Err(e) => Err(lookup_failed("list the products", &e)),
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
        r.map_err(|e| lookup_failed("list the customer's numbers", &e))
    }

    // --- Other jobs on the account -------------------------------------------------------------

    /// Takes the claim on what this row is about to make, waiting while another live job
    /// is making it. True when another job has claimed it too (now or lately): what this job
    /// listed of the account may be older than what that job made, so the row looks afresh.
    async fn hold(&self, claim: &Claim<'_>) -> Step<bool> {
        if self.e.look.claims().is_none() {
            return Ok(false);
        }
        let key = claim.key();
        let mut told = false;
        loop {
            let (row, k) = (self.rec.id, key.clone());
            match self.e.claims_call(move |c| c.take(row, &k)).await {
                Some(Take::Mine { contested }) => return Ok(contested),
                // The claims cannot be read: look afresh, as a contested row does.
                None => return Ok(true),
                Some(Take::Wait(other)) => {
                    let what = format!("the same {}", claim.describe());
                    self.wait_on(&mut told, &other, &what).await?
                }
            }
        }
    }

    /// Waits while another live job on the account plans or is making `claim`, which this
    /// row names. True if it waited: what it names may exist now.
    async fn wait_for_maker(&self, claim: Claim<'_>) -> Step<bool> {
        let key = claim.key();
        let mut waited = false;
        loop {
            let k = key.clone();
            let Some(Some(other)) = self.e.claims_call(move |c| c.maker(&k)).await else {
                return Ok(waited);
            };
            let what = format!("the {} this row names", claim.describe());
            self.wait_on(&mut waited, &other, &what).await?;
        }
    }

    /// One wait on another job: said once per row, then a pause before asking again.
    async fn wait_on(
        &self,
        told: &mut bool,
        other: &crate::journal::claims::Other,
        what: &str,
    ) -> Step<()> {
        if !*told {
            *told = true;
            self.e.tell_wait(&format!(
                "{} waits for {other}, which is adding {what}; it goes on when that job's row ends",
                self.e.describe_row(self.rec)
            ));
        }
        self.e
            .client
            .health()
            .sleep(CLAIM_POLL)
            .await
            .map_err(|_| End::Interrupted)
    }

    // --- Sending -----------------------------------------------------------------------------

    /// Sends one write, journaling each attempt, retrying what is safe to retry. An unknown
    /// outcome comes back as `Err(Ok(error))` for a create (the caller reconciles) and is
    /// retried for anything else; a final refusal is `Err(Ok(error))` too, with its kind.
    async fn send(&mut self, step: &str, req: &ApiRequest) -> Result<Bytes, Result<ApiError, End>> {
        let op = req.operation;
        // A create's answer is recorded with the id it made, which the row checks first.
        if !op.is_create() && self.answered.remove(step) {
            return Ok(Bytes::new());
        }
        let mut tries = Tries::default();
        loop {
            let (id, st, name) = (self.rec.id, step.to_string(), op.name());
            let found = std::mem::take(&mut self.unsaved);
            let attempt = self
                .e
                .journaled(move |j| j.begin_attempt_with(id, &st, name, &found))
                .await
                .map_err(|j| Err(End::Journal(j)))?;
            failpoint::hit(Point::Intent, op);
            let result = self.e.client.execute_once(req).await;
            failpoint::hit(Point::Answer, op);
            // What came back, as it came: the journal records the real status and type.
            let (status, content_type, outcome, detail) = match &result {
                Ok(r) => (
                    Some(r.status),
                    r.content_type.clone(),
                    AttemptResult::Ok,
                    None,
                ),
                Err(e) => (
                    e.status,
                    e.content_type.clone(),
                    match e.kind {
                        ErrorKind::Transient => AttemptResult::Transient,
                        ErrorKind::Final => AttemptResult::Final,
                        ErrorKind::OutcomeUnknown => AttemptResult::Unknown,
                        ErrorKind::Halted => AttemptResult::Unsent,
                    },
                    Some(e.detail()),
                ),
            };
            // A create's id is recorded with its answer, in one commit.
            let made = match (&result, IdKind::made_by(op)) {
                (Ok(r), Some(key)) => client::decode::<c::Created>(op, &r.body)
                    .ok()
                    .map(|cr| (key, cr.id)),
                _ => None,
            };
            let settled = match &result {
                Ok(_) => IdKind::made_by(op).is_none() || made.is_some(),
                Err(e) => !e.is_outcome_unknown(),
            };
            let made2 = made.clone();
            self.e
                .journaled(move |j| {
                    j.end_attempt(
                        attempt,
                        id,
                        &Answer {
                            status,
                            content_type: content_type.as_deref(),
                            result: outcome,
                            detail: detail.as_deref(),
                            made: made2.as_ref().map(|(k, v)| (*k, v.as_str())),
                            settled,
                        },
                    )
                })
                .await
                .map_err(|j| Err(End::Journal(j)))?;
            failpoint::hit(Point::Answered, op);
            if let Some((k, v)) = &made {
                self.remember_id(*k, v);
            }
            let err = match result {
                Ok(r) => {
                    self.doubt = !settled;
                    return Ok(r.body);
                }
                Err(e) => e,
            };
            if err.is_outcome_unknown() {
                self.doubt = true;
            }
            if err.is_halted() {
                // Never sent, and recorded so: the row stays to run.
                return Err(Err(End::Interrupted));
            }
            let wait = match tries.after(&self.e.client, &err) {
                Next::GiveUp => return Err(Ok(err)),
                Next::Retry(wait) => wait,
            };
            if self.e.stopping() {
                return Err(Err(End::Interrupted));
            }
            tracing::info!(row = self.rec.id, operation = op.name(), error = %err, "retrying");
            if self.e.client.health().sleep(wait).await.is_err() {
                return Err(Err(End::Interrupted));
            }
        }
    }

    /// Waits until the server must have finished with this row's last request: `settle`
    /// after the latest moment it can have left. The intent is journaled before the pacer's
    /// wait and the token fetch, so it is too early a mark; the answer (a 504, a timeout) came
    /// after the real send, and a request left in flight by a process that died left before
    /// this engine started, and no later than its intent plus the longest hold before a send.
    async fn settle(&self) -> Step<()> {
        let id = self.rec.id;
        let last = self.e.journaled(move |j| j.last_attempt(id)).await?;
        if let Some(last) = last {
            let held = self.e.opts.before_send.as_millis() as i64;
            let left_by = last.answered_ms.unwrap_or_else(|| {
                last.intent_ms
                    .max(self.e.started_ms)
                    .min(last.intent_ms + held)
            });
            let until = left_by + self.e.opts.settle.as_millis() as i64;
            let wait = until - now_ms();
            if wait > 0 {
                self.e
                    .client
                    .health()
                    .sleep(Duration::from_millis(wait as u64))
                    .await
                    .map_err(|_| End::Interrupted)?;
            }
        }
        Ok(())
    }

    /// What a create would make, if the account has one that no other row of the job owns.
    async fn find(&self, what: &Natural<'_>, fresh: bool) -> Result<Option<Found>, ApiError> {
        let look = &self.e.look;
        let row = self.rec.id;
        let free = |key: IdKind| move |id: &str| !self.e.taken(key, id, row);
        Ok(match what {
            Natural::Customer(new) => look
                .find_customer(new, fresh, &free(IdKind::Customer))
                .await?
                .map(|cu| Known {
                    id: cu.id,
                    user: None,
                }),
            Natural::User { customer, email } => {
                if !fresh {
                    if let Some(k) = look.recall(customer, IdKind::User, email) {
                        if free(IdKind::User)(&k.id) {
                            return Ok(Some(k));
                        }
                    }
                }
                look.users(customer, fresh)
                    .await?
                    .into_iter()
                    .filter(|u| free(IdKind::User)(&u.id))
                    .find(|u| natural_key(&u.email) == natural_key(email))
                    .map(|u| Known {
                        id: u.id,
                        user: None,
                    })
            }
            Natural::Number { customer, number } => look
                .numbers(customer, fresh)
                .await?
                .into_iter()
                .filter(|n| free(IdKind::Number)(&n.id))
                .find(|n| n.number == *number)
                .map(|n| Known {
                    id: n.id,
                    user: n.user_id,
                }),
            Natural::Blocked { customer, number } => look
                .blocked(customer, fresh)
                .await?
                .into_iter()
                .filter(|b| free(IdKind::Blocked)(&b.id))
                .find(|b| b.number == *number)
                .map(|b| Known {
                    id: b.id,
                    user: None,
                }),
            Natural::PartnerUser { email } => look
                .partner_users(fresh)
                .await?
                .into_iter()
                .filter(|p| free(IdKind::PartnerUser)(&p.id))
                .find(|p| natural_key(&p.email) == natural_key(email))
                .map(|p| Known {
                    id: p.id,
                    user: None,
                }),
            Natural::Order {
                customer,
                items,
                postcode,
                since,
            } => {
                let mut want = items.to_vec();
                want.sort();
                look.orders(customer, fresh)
                    .await?
                    .into_iter()
                    .filter(|o| free(IdKind::Order)(&o.id) && o.customer_id == *customer)
                    .filter(|o| created_ms(&o.created_at).is_none_or(|t| t >= *since))
                    .filter(|o| {
                        postcode.is_none_or(|p| {
                            squash_postcode(&o.delivery_address.postcode) == squash_postcode(p)
                        })
                    })
                    .find(|o| {
                        let mut got = o.items.clone();
                        got.sort();
                        got == want
                    })
                    .map(|o| Known {
                        id: o.id,
                        user: None,
                    })
            }
        })
    }

    /// Sends a create, making sure it is made once: looks for what a request in doubt may have
    /// made before sending it again. Returns the id and whether this call made it.
    async fn create(&mut self, step: &str, req: &ApiRequest, what: &Natural<'_>) -> Step<Found> {
        let op = req.operation;
        let key = IdKind::made_by(op).expect("a create has an id");
        let mut rounds = 0;
        loop {
            if self.doubt {
                self.settle().await?;
                match self.find(what, true).await {
                    Ok(Some(found)) if self.e.claim(key, &found.id, self.rec.id) => {
                        self.doubt = false;
                        return Ok(found);
                    }
                    // Another row took it between the look and the claim: look again.
                    Ok(Some(_)) => continue,
                    // Not there yet: sent again, still in doubt (a late landing of the first
                    // send may yet show), which a success settles.
                    Ok(None) => {}
                    Err(e) if e.is_halted() => return Err(End::Interrupted),
                    Err(e) if matches!(what, Natural::Order { .. }) => {
                        return Err(done(
                            RowState::NeedsReview,
                            format!(
                                "the order may have been placed (its answer was lost) and the customer's orders could not be listed to check ({}): look in the portal before placing it again",
                                e.detail()
                            ),
                        ));
                    }
                    Err(e) => {
                        return Err(lookup_failed(
                            "check whether an earlier attempt made it (its answer was lost)",
                            &e,
                        ))
                    }
                }
            }
            // As many sends as a transient failure gets: a busy API's 5% of 5xx made three
            // unknowns in a row (each followed by a look that found nothing) a few times a
            // job; five in a row is something wrong that a person should see.
            if rounds >= self.e.client.retry_policy().max_attempts {
                return Err(done(
                    RowState::NeedsReview,
                    format!(
                        "{} was sent {rounds} times without an answer and nothing it would have made was found: check the account before running this row again",
                        op.name()
                    ),
                ));
            }
            rounds += 1;
            match self.send(step, req).await {
                Ok(body) => match client::decode::<c::Created>(op, &body) {
                    Ok(made) => {
                        self.e.claim(key, &made.id, self.rec.id);
                        return Ok(Known {
                            id: made.id,
                            user: None,
                        });
                    }
                    Err(_) => self.doubt = true,
                },
                Err(Ok(e)) if e.is_outcome_unknown() => {}
                Err(Ok(e)) => return Err(failed(&e)),
                Err(Err(end)) => return Err(end),
            }
        }
    }

    /// Makes what a create row stands for, once. The id an earlier run recorded is the
    /// row's. Else, when the account may hold it already (`look_first`: not in a customer
    /// this job made) and nothing is in doubt, one that exists is taken as `--existing` says
    /// (`update` builds the request that changes it to match the row). Else it is created,
    /// and what a lost answer made is found before anything is sent again. Gives the row's
    /// outcome, and the id when this call made it.
    async fn create_once(
        &mut self,
        entity: Entity<'_>,
        look_first: bool,
        update: impl FnOnce(&str) -> ApiRequest,
        create: ApiRequest,
    ) -> Step<(Outcome, Option<String>)> {
        if let Some(id) = self.id(entity.key) {
            return Ok(((RowState::Succeeded, Some(format!("created {id}"))), None));
        }
        let contested = self.hold(&entity.claim).await?;
        if (look_first || contested) && !self.doubt {
            let found = self
                .already(
                    &entity.what,
                    contested,
                    entity.key,
                    entity.label,
                    entity.list_what,
                    update,
                )
                .await?;
            if let Some(outcome) = found {
                return Ok((outcome, None));
            }
        }
        let made = self.create("create", &create, &entity.what).await?;
        self.set(entity.key, &made.id);
        Ok(((RowState::Succeeded, None), Some(made.id)))
    }

    /// Sends a write that is safe to repeat.
    async fn write(&mut self, step: &str, req: &ApiRequest) -> Step<Bytes> {
        match self.send(step, req).await {
            Ok(b) => Ok(b),
            Err(Ok(e)) => Err(failed(&e)),
            Err(Err(end)) => Err(end),
        }
    }

    /// A deletion: after a doubt (its own earlier send, or one journaled by a process that
    /// died), a 404 says the id the row resolved is gone, which is what the row asked for.
    async fn delete(&mut self, step: &str, req: &ApiRequest) -> Step<()> {
        match self.send(step, req).await {
            Ok(_) => Ok(()),
            Err(Ok(e)) if e.status == Some(404) && self.doubt => {
                self.doubt = false;
                Ok(())
            }
            Err(Ok(e)) => Err(failed(&e)),
            Err(Err(end)) => Err(end),
        }
    }

    /// Whether what a create would make is already there; if so, records it and does what
    /// `--existing` says (`update` sends the request `update` builds for its id).
    async fn already(
        &mut self,
        what: &Natural<'_>,
        fresh: bool,
        key: IdKind,
        label: &str,
        list_what: &str,
        update: impl FnOnce(&str) -> ApiRequest,
    ) -> Step<Option<Outcome>> {
        let found = match self.find(what, fresh).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(e) => return Err(lookup_failed(list_what, &e)),
        };
        if !self.e.claim(key, &found.id, self.rec.id) {
            // Another row took it since the look: this row makes its own.
            return Ok(None);
        }
        self.set(key, &found.id);
        Ok(Some(match self.existing(label, &found.id)? {
            Existing::Update => {
                self.write("update", &update(&found.id)).await?;
                (
                    RowState::AlreadyExisted,
                    Some("updated to match this row".into()),
                )
            }
            Existing::Skip | Existing::Fail => (RowState::AlreadyExisted, None),
        }))
    }

    /// What an existing entity means for a create, by the job's `--existing`.
    fn existing(&self, what: &str, id: &str) -> Step<Existing> {
        match self.e.opts.existing {
            Existing::Fail => Err(done(
                RowState::Failed,
                format!("{what} already exists ({id}); run with --existing skip to accept it or --existing update to change it"),
            )),
            other => Ok(other),
        }
    }

    // --- The work ------------------------------------------------------------------------------

    /// Runs the row's work: one method per kind of work, each sharing the row's ways to
    /// create, write and delete.
    async fn dispatch(&mut self, work: &Work) -> Step<Outcome> {
        match work {
            Work::AddCustomer { new } => self.add_customer(new).await,
            Work::UpdateCustomer { customer, changes } => {
                self.update_customer(customer, changes).await
            }
            Work::RegradeContract { customer, months } => {
                self.regrade_contract(customer, months).await
            }
            Work::UpgradePlan { customer } => self.upgrade_plan(customer).await,
            Work::DeleteCustomer { customer } => self.delete_customer(customer).await,
            Work::AddUser { customer, new } => self.add_user(customer, new).await,
            Work::UpdateUser {
                customer,
                user,
                changes,
            } => self.update_user(customer, user, changes).await,
            Work::DeleteUser { customer, user } => self.delete_user(customer, user).await,
            Work::ResendActivation { customer, user } => {
                self.send_email(
                    O::ResendActivation,
                    ApiRequest::resend_activation,
                    customer,
                    user,
                )
                .await
            }
            Work::ResetPassword { customer, user } => {
                self.send_email(
                    O::RequestPasswordReset,
                    ApiRequest::request_password_reset,
                    customer,
                    user,
                )
                .await
            }
            Work::AddNumber {
                customer,
                number,
                allocate_to,
            } => self.add_number(customer, number, allocate_to).await,
            Work::AllocateNumber {
                customer,
                number,
                user,
            } => self.allocate_number(customer, number, user).await,
            Work::DeallocateNumber { customer, number } => {
                self.deallocate_number(customer, number).await
            }
            Work::AddBlocked { customer, new } => self.add_blocked(customer, new).await,
            Work::UpdateBlocked {
                customer,
                number,
                changes,
            } => self.update_blocked(customer, number, changes).await,
            Work::DeleteBlocked { customer, number } => self.delete_blocked(customer, number).await,
            Work::AddDevice {
                customer,
                user,
                product,
                mac,
            } => self.add_device(customer, user, product, mac).await,
            Work::AddOrder {
                customer,
                items,
                delivery,
                order_ref,
            } => self.add_order(customer, items, delivery, order_ref).await,
            Work::UserSettings {
                customer,
                user,
                call,
                schedule,
            } => self.user_settings(customer, user, call, schedule).await,
            Work::AddPartnerUser { new } => self.add_partner_user(new).await,
            Work::UpdatePartnerUser {
                partner_user,
                changes,
            } => self.update_partner_user(partner_user, changes).await,
            Work::DeletePartnerUser { partner_user } => {
                self.delete_partner_user(partner_user).await
            }
            Work::Remove {
                target,
                wrote,
                force,
            } => self.remove(target, wrote, *force).await,
            Work::Restore {
                target,
                wrote,
                before,
                force,
            } => self.restore(target, wrote, before, *force).await,
            Work::Reallocate(r) => self.reallocate(r).await,
        }
    }

    async fn add_customer(&mut self, new: &c::NewCustomer) -> Step<Outcome> {
        let entity = Entity {
            key: IdKind::Customer,
            claim: Claim::Customer {
                company: &new.company_name,
            },
            what: Natural::Customer(new),
            label: "a customer with this name and email",
            list_what: "list the account's customers",
        };
        let req = ApiRequest::add_customer(new);
        let (outcome, made) = self
            .create_once(
                entity,
                true,
                |found: &str| {
                    let changes = c::CustomerChanges {
                        company_name: None,
                        contact_name: new.contact_name.clone(),
                        email: None,
                        phone: new.phone.clone(),
                        address: new.address.clone(),
                    };
                    ApiRequest::update_customer(found, &changes)
                },
                req,
            )
            .await?;
        if let Some(id) = made {
            self.e.look.mark_created(&id);
        }
        Ok(outcome)
    }

    async fn update_customer(
        &mut self,
        customer: &Sel,
        changes: &c::CustomerChanges,
    ) -> Step<Outcome> {
        let id = self.customer(customer).await?;
        self.keep_before(Target::Customer { id: id.clone() }, Some(changes))
            .await?;
        self.write("update", &ApiRequest::update_customer(&id, changes))
            .await?;
        Ok(SUCCEEDED)
    }

    async fn regrade_contract(&mut self, customer: &Sel, months: &u32) -> Step<Outcome> {
        let id = self.customer(customer).await?;
        let body = c::ContractChange {
            contract_months: *months,
        };
        self.keep_before(Target::Customer { id: id.clone() }, Some(&body))
            .await?;
        self.write("regrade", &ApiRequest::regrade_contract(&id, *months))
            .await?;
        Ok(SUCCEEDED)
    }

    async fn upgrade_plan(&mut self, customer: &Sel) -> Step<Outcome> {
        let id = self.customer(customer).await?;
        let req = ApiRequest::upgrade_plan(&id, c::Plan::Pro);
        match self.send("upgrade", &req).await {
            Ok(_) => Ok(SUCCEEDED),
            // Upgrading a customer already on pro is refused (409): after a doubt,
            // that refusal may be our own upgrade. Look.
            Err(Ok(e)) if e.status == Some(409) && self.doubt => {
                match self.e.client.get_customer(&id).await {
                    Ok(cu) if cu.plan == c::Plan::Pro => Ok(SUCCEEDED),
                    Err(ge) if ge.is_halted() => Err(End::Interrupted),
                    _ => Err(failed(&e)),
                }
            }
            Err(Ok(e)) => Err(failed(&e)),
            Err(Err(end)) => Err(end),
        }
    }

    async fn delete_customer(&mut self, customer: &Sel) -> Step<Outcome> {
        let id = self.customer(customer).await?;
        self.keep_before(Target::Customer { id: id.clone() }, None::<&()>)
            .await?;
        self.delete("delete", &ApiRequest::delete_customer(&id))
            .await?;
        Ok(SUCCEEDED)
    }

    async fn add_user(&mut self, customer: &Sel, new: &c::NewUser) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let entity = Entity {
            key: IdKind::User,
            claim: Claim::User {
                customer: &cid,
                email: &new.email,
            },
            what: Natural::User {
                customer: &cid,
                email: &new.email,
            },
            label: "a user with this email",
            list_what: "list the customer's users",
        };
        let req = ApiRequest::add_user(&cid, new);
        let look_first = !self.e.look.is_created(&cid);
        let (outcome, _) = self
            .create_once(
                entity,
                look_first,
                |found: &str| {
                    let changes = c::UserChanges {
                        first_name: Some(new.first_name.clone()),
                        last_name: Some(new.last_name.clone()),
                        email: None,
                        user_type: Some(new.user_type),
                    };
                    ApiRequest::update_user(&cid, found, &changes)
                },
                req,
            )
            .await?;
        Ok(outcome)
    }

    async fn update_user(
        &mut self,
        customer: &Sel,
        user: &Sel,
        changes: &c::UserChanges,
    ) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let uid = self.user(&cid, user).await?;
        let user = Target::User {
            customer: cid.clone(),
            id: uid.clone(),
        };
        self.keep_before(user, Some(changes)).await?;
        let req = ApiRequest::update_user(&cid, &uid, changes);
        self.write("update", &req).await?;
        Ok(SUCCEEDED)
    }

    async fn delete_user(&mut self, customer: &Sel, user: &Sel) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let uid = self.user(&cid, user).await?;
        let user = Target::User {
            customer: cid.clone(),
            id: uid.clone(),
        };
        self.keep_before(user, None::<&()>).await?;
        self.delete("delete", &ApiRequest::delete_user(&cid, &uid))
            .await?;
        Ok(SUCCEEDED)
    }

    /// An activation email or a password reset: one that may have gone out is never sent
    /// again.
    async fn send_email(
        &mut self,
        op: O,
        request: fn(&str, &str) -> ApiRequest,
        customer: &Sel,
        user: &Sel,
    ) -> Step<Outcome> {
        if self.doubt {
            return Ok((
                RowState::NeedsReview,
                Some(format!(
                    "{} was sent and its answer was lost: the email may have gone out; run the row again only if the user did not get it",
                    op.name()
                )),
            ));
        }
        let cid = self.customer(customer).await?;
        let uid = self.user(&cid, user).await?;
        match self.send("send", &request(&cid, &uid)).await {
            Ok(_) => Ok(SUCCEEDED),
            Err(Ok(e)) if e.is_outcome_unknown() => Ok((
                RowState::NeedsReview,
                Some(format!(
                    "{} was sent and its answer was lost: the email may have gone out; run the row again only if the user did not get it",
                    op.name()
                )),
            )),
            Err(Ok(e)) => Err(failed(&e)),
            Err(Err(end)) => Err(end),
        }
    }

    async fn add_number(
        &mut self,
        customer: &Sel,
        number: &str,
        allocate_to: &Option<Sel>,
    ) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let mut already = false;
        let mut current_user = None;
        let nid = match self.id(IdKind::Number) {
            Some(n) => {
                current_user = self
                    .number(&cid, number, false)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|k| k.user);
                n
            }
            None => {
                let what = Natural::Number {
                    customer: &cid,
                    number,
                };
                let contested = self.hold(&Claim::Number { number }).await?;
                let existing = if !self.doubt && (contested || !self.e.look.is_created(&cid)) {
                    self.number(&cid, number, contested).await?
                } else {
                    None
                };
                let found = match existing {
                    Some(k) => {
                        self.existing("the number in this customer", &k.id)?;
                        already = true;
                        current_user = k.user.clone();
                        k
                    }
                    None => {
                        let req = ApiRequest::add_customer_number(&cid, number);
                        self.create("add", &req, &what).await?
                    }
                };
                self.set(IdKind::Number, &found.id);
                if !already {
                    current_user = found.user.clone();
                }
                found.id
            }
        };
        if let Some(user) = allocate_to {
            let uid = self.user(&cid, user).await?;
            self.allocate(&cid, number, &nid, &uid, current_user)
                .await?;
        }
        Ok(if already {
            (RowState::AlreadyExisted, None)
        } else {
            (RowState::Succeeded, None)
        })
    }

    async fn allocate_number(&mut self, customer: &Sel, number: &str, user: &Sel) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let Some(k) = self.number(&cid, number, false).await? else {
            return Err(done(
                RowState::Failed,
                format!("customer {cid} has no number {number}: add it first (Action add)"),
            ));
        };
        self.set(IdKind::Number, &k.id);
        let uid = self.user(&cid, user).await?;
        if self.answered.contains("allocate") {
            // This job's allocation, answered before its process died.
            return Ok(SUCCEEDED);
        }
        let current = if self.doubt { None } else { k.user.clone() };
        if current.as_deref() == Some(uid.as_str()) {
            return Ok((
                RowState::AlreadyExisted,
                Some("already allocated to this user".into()),
            ));
        }
        self.allocate(&cid, number, &k.id, &uid, current).await?;
        Ok(SUCCEEDED)
    }

    async fn deallocate_number(&mut self, customer: &Sel, number: &str) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let Some(k) = self.number(&cid, number, self.doubt).await? else {
            return Err(done(
                RowState::Failed,
                format!("customer {cid} has no number {number}"),
            ));
        };
        self.set(IdKind::Number, &k.id);
        if self.answered.contains("deallocate") {
            // This job's deallocation, answered before its process died.
            return Ok(SUCCEEDED);
        }
        if k.user.is_none() {
            return Ok(if self.doubt {
                (RowState::Succeeded, None)
            } else {
                (
                    RowState::AlreadyExisted,
                    Some("the number was not allocated".into()),
                )
            });
        }
        self.keep_before_map(allocation(k.user.as_deref()));
        self.deallocate(&cid, number, &k.id).await?;
        Ok(SUCCEEDED)
    }

    async fn deallocate(&mut self, cid: &str, number: &str, nid: &str) -> Step<()> {
        let req = ApiRequest::deallocate_number(cid, nid);
        match self.send("deallocate", &req).await {
            Ok(_) => {}
            Err(Ok(e)) if e.status == Some(409) => {
                // Not allocated (any more): a lost answer to our own deallocation.
                match self.number(cid, number, true).await? {
                    Some(n) if n.user.is_none() => {}
                    _ => return Err(failed(&e)),
                }
            }
            Err(Ok(e)) => return Err(failed(&e)),
            Err(Err(end)) => return Err(end),
        }
        self.e
            .look
            .number_changed(
                cid,
                c::Number {
                    id: nid.to_string(),
                    number: number.to_string(),
                    user_id: None,
                },
            )
            .await;
        self.e.look.remember(
            cid,
            IdKind::Number,
            number,
            Known {
                id: nid.to_string(),
                user: None,
            },
        );
        Ok(())
    }

    async fn add_blocked(&mut self, customer: &Sel, new: &c::NewBlockedNumber) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let entity = Entity {
            key: IdKind::Blocked,
            claim: Claim::Blocked {
                customer: &cid,
                number: &new.number,
            },
            what: Natural::Blocked {
                customer: &cid,
                number: &new.number,
            },
            label: "this blocked number",
            list_what: "list the customer's blocked numbers",
        };
        let req = ApiRequest::add_blocked_number(&cid, new);
        let look_first = !self.e.look.is_created(&cid);
        let (outcome, _) = self
            .create_once(
                entity,
                look_first,
                |found: &str| {
                    let changes = c::BlockedNumberChanges {
                        number: None,
                        direction: Some(new.direction),
                        note: new.note.clone(),
                    };
                    ApiRequest::update_blocked_number(&cid, found, &changes)
                },
                req,
            )
            .await?;
        Ok(outcome)
    }

    async fn update_blocked(
        &mut self,
        customer: &Sel,
        number: &str,
        changes: &c::BlockedNumberChanges,
    ) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let bid = self.blocked_id(&cid, number).await?;
        let blocked = Target::Blocked {
            customer: cid.clone(),
            id: bid.clone(),
        };
        self.keep_before(blocked, Some(changes)).await?;
        let req = ApiRequest::update_blocked_number(&cid, &bid, changes);
        self.write("update", &req).await?;
        Ok(SUCCEEDED)
    }

    async fn delete_blocked(&mut self, customer: &Sel, number: &str) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let bid = self.blocked_id(&cid, number).await?;
        let blocked = Target::Blocked {
            customer: cid.clone(),
            id: bid.clone(),
        };
        self.keep_before(blocked, None::<&()>).await?;
        self.delete("delete", &ApiRequest::delete_blocked_number(&cid, &bid))
            .await?;
        self.e.look.forget(&cid, IdKind::Blocked, number);
        Ok(SUCCEEDED)
    }

    async fn add_device(
        &mut self,
        customer: &Sel,
        user: &Sel,
        product: &str,
        mac: &str,
    ) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        if let Some(id) = self.id(IdKind::Device) {
            return Ok((RowState::Succeeded, Some(format!("created {id}"))));
        }
        let uid = self.user(&cid, user).await?;
        let pid = self.product(product).await?;
        let body = c::NewDevice {
            product_id: pid,
            mac_address: mac.to_string(),
        };
        let req = ApiRequest::add_device(&cid, &uid, &body);
        // A MAC is unique in the whole account, so the server itself refuses a second
        // device with it: sending again after a lost answer cannot make two. But the
        // contract lists no devices, so a 409 after a doubt cannot say whether the MAC
        // went to this user (our lost answer) or is someone else's.
        for _ in 0..self.e.client.retry_policy().max_attempts {
            match self.send("create", &req).await {
                Ok(b) => {
                    if let Ok(d) = client::decode::<c::Created>(O::AddUserDevice, &b) {
                        self.set(IdKind::Device, &d.id);
                    }
                    return Ok(SUCCEEDED);
                }
                Err(Ok(e)) if e.is_outcome_unknown() => continue,
                Err(Ok(e)) if e.status == Some(409) && self.doubt => {
                    return Ok((
                        RowState::NeedsReview,
                        Some(format!("an earlier attempt's answer was lost, and the MAC address {mac} is now assigned; the API cannot list devices to say whether to this user: check the user's devices in the portal ({})", e.detail())),
                    ))
                }
                Err(Ok(e)) if e.status == Some(409) => {
                    self.existing(&format!("a device with MAC {mac}"), mac)?;
                    return Ok((RowState::AlreadyExisted, Some(e.detail())));
                }
                Err(Ok(e)) => return Err(failed(&e)),
                Err(Err(end)) => return Err(end),
            }
        }
        Ok((
            RowState::NeedsReview,
            Some("the device was sent several times without an answer: check the user's devices in the portal".into()),
        ))
    }

    async fn add_order(
        &mut self,
        customer: &Sel,
        items: &Vec<(String, u32)>,
        delivery: &Option<c::Address>,
        order_ref: &Option<String>,
    ) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        if let Some(id) = self.id(IdKind::Order) {
            return Ok((RowState::Succeeded, Some(format!("placed {id}"))));
        }
        if let Some(r) = order_ref
            .as_deref()
            .filter(|_| !self.e.look.is_created(&cid))
        {
            let orders = self
                .e
                .look
                .orders(&cid, false)
                .await
                .map_err(|e| lookup_failed("list the customer's orders", &e))?;
            if let Some(o) = orders.iter().find(|o| o.id == r.trim()) {
                let id = o.id.clone();
                self.e.claim(IdKind::Order, &id, self.rec.id);
                self.set(IdKind::Order, &id);
                return Ok((
                    RowState::AlreadyExisted,
                    Some(format!(
                        "the Order Ref is order {id}, which is placed already"
                    )),
                ));
            }
        }
        let mut resolved = Vec::with_capacity(items.len());
        for (product, quantity) in items {
            resolved.push(c::OrderItem {
                product_id: self.product(product).await?,
                quantity: *quantity,
            });
        }
        let id = self.rec.id;
        let first = self
            .e
            .journaled(move |j| j.first_attempt_ms(id, "create"))
            .await?;
        let postcode = delivery.as_ref().map(|a| a.postcode.as_str());
        let contested = self.hold(&Claim::Order { customer: &cid }).await?;
        // Defence in depth: a resumed job lists the customer's orders even for a customer it
        // made, so a journal that lost its tail cannot double an order.
        let fresh = contested || self.e.resumed();
        if !self.doubt && (fresh || !self.e.look.is_created(&cid)) {
            let what = Natural::Order {
                customer: &cid,
                items: &resolved,
                postcode,
                since: now_ms() - c::REPEAT_ORDER_WINDOW_MS,
            };
            match self.find(&what, fresh).await {
                Ok(Some(found)) => {
                    self.existing("an identical order placed in the last 7 days", &found.id)?;
                    self.e.claim(IdKind::Order, &found.id, self.rec.id);
                    self.set(IdKind::Order, &found.id);
                    return Ok((
                        RowState::AlreadyExisted,
                        Some(format!("order {} of the same items was placed in the last 7 days; plbulk does not place it twice (place it in the portal if a second one is wanted)", found.id)),
                    ));
                }
                Ok(None) => {}
                Err(e) => return Err(lookup_failed("list the customer's orders", &e)),
            }
        }
        let what = Natural::Order {
            customer: &cid,
            items: &resolved,
            postcode,
            since: first.unwrap_or_else(now_ms) - c::CLOCK_SKEW_ALLOWANCE_MS,
        };
        let body = c::NewOrder {
            items: resolved.clone(),
            delivery_address: delivery.clone(),
        };
        let req = ApiRequest::add_order(&cid, &body);
        let found = self.create("create", &req, &what).await?;
        self.e.claim(IdKind::Order, &found.id, self.rec.id);
        self.set(IdKind::Order, &found.id);
        Ok(SUCCEEDED)
    }

    async fn user_settings(
        &mut self,
        customer: &Sel,
        user: &Sel,
        call: &Option<c::CallSettings>,
        schedule: &Option<c::ScheduleSettings>,
    ) -> Step<Outcome> {
        let cid = self.customer(customer).await?;
        let uid = self.user(&cid, user).await?;
        if let Some(call) = call {
            let req = ApiRequest::update_call_settings(&cid, &uid, call);
            self.write("call-settings", &req).await?;
        }
        if let Some(s) = schedule {
            let req = ApiRequest::update_schedule_settings(&cid, &uid, s);
            self.write("schedule-settings", &req).await?;
        }
        Ok(SUCCEEDED)
    }

    async fn add_partner_user(&mut self, new: &c::NewPartnerUser) -> Step<Outcome> {
        let entity = Entity {
            key: IdKind::PartnerUser,
            claim: Claim::PartnerUser { email: &new.email },
            what: Natural::PartnerUser { email: &new.email },
            label: "a partner user with this email",
            list_what: "list the partner users",
        };
        let req = ApiRequest::add_partner_user(new);
        let (outcome, _) = self
            .create_once(
                entity,
                true,
                |found: &str| {
                    let changes = c::PartnerUserChanges {
                        first_name: Some(new.first_name.clone()),
                        last_name: Some(new.last_name.clone()),
                        email: None,
                        role: new.role.clone(),
                    };
                    ApiRequest::update_partner_user(found, &changes)
                },
                req,
            )
            .await?;
        Ok(outcome)
    }

    async fn update_partner_user(
        &mut self,
        partner_user: &Sel,
        changes: &c::PartnerUserChanges,
    ) -> Step<Outcome> {
        let pid = self.partner_user(partner_user).await?;
        self.keep_before(Target::PartnerUser { id: pid.clone() }, Some(changes))
            .await?;
        let req = ApiRequest::update_partner_user(&pid, changes);
        self.write("update", &req).await?;
        Ok(SUCCEEDED)
    }

    async fn delete_partner_user(&mut self, partner_user: &Sel) -> Step<Outcome> {
        let pid = self.partner_user(partner_user).await?;
        self.keep_before(Target::PartnerUser { id: pid.clone() }, None::<&()>)
            .await?;
        self.delete("delete", &ApiRequest::delete_partner_user(&pid))
            .await?;
        Ok(SUCCEEDED)
    }

    async fn allocate(
        &mut self,
        cid: &str,
        number: &str,
        nid: &str,
        uid: &str,
        current: Option<String>,
    ) -> Step<()> {
        if current.as_deref() == Some(uid) {
            return Ok(());
        }
        self.keep_before_map(allocation(current.as_deref()));
        let req = ApiRequest::allocate_number(cid, nid, uid);
        match self.send("allocate", &req).await {
            Ok(_) => {}
            Err(Ok(e)) if e.status == Some(409) => {
                // Allocated already: to this user (our own lost answer) is success.
                match self.number(cid, number, true).await? {
                    Some(n) if n.user.as_deref() == Some(uid) => {}
                    _ => return Err(failed(&e)),
                }
            }
            Err(Ok(e)) => return Err(failed(&e)),
            Err(Err(end)) => return Err(end),
        }
        self.e
            .look
            .number_changed(
                cid,
                c::Number {
                    id: nid.to_string(),
                    number: number.to_string(),
                    user_id: Some(uid.to_string()),
                },
            )
            .await;
        self.e.look.remember(
            cid,
            IdKind::Number,
            number,
            Known {
                id: nid.to_string(),
                user: Some(uid.to_string()),
            },
        );
        Ok(())
    }

    async fn blocked_id(&mut self, cid: &str, number: &str) -> Step<String> {
        if let Some(id) = self.id(IdKind::Blocked) {
            return Ok(id);
        }
        match self.e.look.blocked_id(cid, number).await {
            Ok(Some(id)) => {
                self.set(IdKind::Blocked, &id);
                Ok(id)
            }
            Ok(None) => Err(done(
                RowState::Failed,
                format!("customer {cid} has no blocked number {number}"),
            )),
            Err(e) => Err(lookup_failed("list the customer's blocked numbers", &e)),
        }
    }

    async fn partner_user(&mut self, sel: &Sel) -> Step<String> {
        if let Some(id) = self.id(IdKind::PartnerUser) {
            return Ok(id);
        }
        let id = match sel {
            Sel::Id(id) => id.clone(),
            Sel::Row(r) => self.dep_id(*r, IdKind::PartnerUser)?,
            Sel::Email(e) | Sel::Existing(e) => match self.e.look.partner_user_id(e).await {
                Ok(Some(id)) => id,
                Ok(None) => {
                    return Err(done(
                        RowState::Failed,
                        format!("there is no partner user with email {e}"),
                    ))
                }
                Err(err) => return Err(lookup_failed("list the partner users", &err)),
            },
        };
        self.set(IdKind::PartnerUser, &id);
        Ok(id)
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
