//! Reconciliation: what a row does when the account may already hold what it would make. A
//! create in doubt looks for its entity by its natural key before sending again; an entity
//! that was there before the job is adopted or refused as `--existing` says; another job on
//! the account making the same thing is waited for, never raced; updates and deletions are
//! repeated and the refusal a repeat can draw is checked against the account.

use super::*;

impl RowCx<'_> {
    // --- Other jobs on the account -------------------------------------------------------------

    /// Takes the claim on what this row is about to make, waiting while another live job
    /// is making it. True when another job has claimed it too (now or lately): what this job
    /// listed of the account may be older than what that job made, so the row looks afresh.
    pub(super) async fn hold(&self, claim: &Claim<'_>) -> Result<bool, Stop> {
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
    pub(super) async fn wait_for_maker(&self, claim: Claim<'_>) -> Result<bool, Stop> {
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
    pub(super) async fn wait_on(
        &self,
        told: &mut bool,
        other: &crate::journal::claims::Other,
        what: &str,
    ) -> Result<(), Stop> {
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
            .map_err(|_| Stop::Interrupted)
    }

    /// What a create would make, if the account has one that no other row of the job owns.
    pub(super) async fn find(
        &self,
        what: &Natural<'_>,
        fresh: bool,
    ) -> Result<Option<Found>, ApiError> {
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
    pub(super) async fn create(
        &mut self,
        step: &str,
        req: &ApiRequest,
        what: &Natural<'_>,
    ) -> Step<Found> {
        let op = req.operation;
        let key = IdKind::made_by(op).expect("a create has an id");
        let mut rounds = 0;
        loop {
            if self.doubt {
                self.settle().await?;
                match self.find(what, true).await {
                    Ok(Some(found)) if self.e.claim(key, &found.id, self.rec.id) => {
                        self.doubt = false;
                        return go(found);
                    }
                    // Another row took it between the look and the claim: look again.
                    Ok(Some(_)) => continue,
                    // Not there yet: sent again, still in doubt (a late landing of the first
                    // send may yet show), which a success settles.
                    Ok(None) => {}
                    Err(e) if e.is_halted() => return Err(Stop::Interrupted),
                    Err(e) if matches!(what, Natural::Order { .. }) => {
                        return ends(
                            RowState::NeedsReview,
                            format!(
                                "the order may have been placed (its answer was lost) and the customer's orders could not be listed to check ({}): look in the portal before placing it again",
                                e.detail()
                            ),
                        );
                    }
                    Err(e) => {
                        return lookup_failed(
                            "check whether an earlier attempt made it (its answer was lost)",
                            &e,
                        )
                    }
                }
            }
            // As many sends as a transient failure gets: a busy API's 5% of 5xx made three
            // unknowns in a row (each followed by a look that found nothing) a few times a
            // job; five in a row is something wrong that a person should see.
            if rounds >= self.e.client.retry_policy().max_attempts {
                return ends(
                    RowState::NeedsReview,
                    format!(
                        "{} was sent {rounds} times without an answer and nothing it would have made was found: check the account before running this row again",
                        op.name()
                    ),
                );
            }
            rounds += 1;
            match self.send(step, req).await? {
                Sent::Answered(body) => match client::decode::<c::Created>(op, &body) {
                    Ok(made) => {
                        self.e.claim(key, &made.id, self.rec.id);
                        return go(Known {
                            id: made.id,
                            user: None,
                        });
                    }
                    Err(_) => self.doubt = true,
                },
                Sent::Refused(e) if e.is_outcome_unknown() => {}
                Sent::Refused(e) => return failed(&e),
            }
        }
    }

    /// Makes what a create row stands for, once. The id an earlier run recorded is the
    /// row's. Else, when the account may hold it already (`look_first`: not in a customer
    /// this job made) and nothing is in doubt, one that exists is taken as `--existing` says
    /// (`update` builds the request that changes it to match the row). Else it is created,
    /// and what a lost answer made is found before anything is sent again. Gives the row's
    /// outcome, and the id when this call made it.
    pub(super) async fn create_once(
        &mut self,
        entity: Entity<'_>,
        look_first: bool,
        update: impl FnOnce(&str) -> ApiRequest,
        create: ApiRequest,
    ) -> Step<(Outcome, Option<String>)> {
        if let Some(id) = self.id(entity.key) {
            return go(((RowState::Succeeded, Some(format!("created {id}"))), None));
        }
        let contested = self.hold(&entity.claim).await?;
        if (look_first || contested) && !self.doubt {
            let found = step!(
                self.already(
                    &entity.what,
                    contested,
                    entity.key,
                    entity.label,
                    entity.list_what,
                    update,
                )
                .await
            );
            if let Some(outcome) = found {
                return go((outcome, None));
            }
        }
        let made = step!(self.create("create", &create, &entity.what).await);
        self.set(entity.key, &made.id);
        go(((RowState::Succeeded, None), Some(made.id)))
    }

    /// Sends a write that is safe to repeat.
    pub(super) async fn write(&mut self, step: &str, req: &ApiRequest) -> Step<Bytes> {
        match self.send(step, req).await? {
            Sent::Answered(b) => go(b),
            Sent::Refused(e) => failed(&e),
        }
    }

    /// A deletion: after a doubt (its own earlier send, or one journaled by a process that
    /// died), a 404 says the id the row resolved is gone, which is what the row asked for.
    pub(super) async fn delete(&mut self, step: &str, req: &ApiRequest) -> Step<()> {
        match self.send(step, req).await? {
            Sent::Answered(_) => go(()),
            Sent::Refused(e) if e.status == Some(404) && self.doubt => {
                self.doubt = false;
                go(())
            }
            Sent::Refused(e) => failed(&e),
        }
    }

    /// Whether what a create would make is already there; if so, records it and does what
    /// `--existing` says (`update` sends the request `update` builds for its id).
    pub(super) async fn already(
        &mut self,
        what: &Natural<'_>,
        fresh: bool,
        key: IdKind,
        label: &str,
        list_what: &str,
        update: impl FnOnce(&str) -> ApiRequest,
    ) -> Step<Option<Outcome>> {
        let Some(found) = step!(looked(list_what, self.find(what, fresh).await)) else {
            return go(None);
        };
        if !self.e.claim(key, &found.id, self.rec.id) {
            // Another row took it since the look: this row makes its own.
            return go(None);
        }
        self.set(key, &found.id);
        go(Some(match step!(self.existing(label, &found.id)) {
            Existing::Update => {
                step!(self.write("update", &update(&found.id)).await);
                (
                    RowState::AlreadyExisted,
                    Some("updated to match this row".into()),
                )
            }
            Existing::Skip | Existing::Fail => (RowState::AlreadyExisted, None),
        }))
    }

    /// What an existing entity means for a create, by the job's `--existing`.
    pub(super) fn existing(&self, what: &str, id: &str) -> Step<Existing> {
        match self.e.opts.existing {
            Existing::Fail => ends(
                RowState::Failed,
                format!("{what} already exists ({id}); run with --existing skip to accept it or --existing update to change it"),
            ),
            other @ (Existing::Skip | Existing::Update) => go(other),
        }
    }
}
