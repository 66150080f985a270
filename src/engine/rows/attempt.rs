//! One attempt at a write: its intent journaled, the request sent with the client's one retry
//! decision, its answer classified and journaled with what it made, in one commit; and the wait
//! before a row in doubt looks at the account (the server must be done with its request).

use super::*;

impl RowCx<'_> {
    // --- Sending -----------------------------------------------------------------------------

    /// Sends one write, journaling each attempt, retrying what is safe to retry. What the
    /// API said is a value ([`Sent`]) for the caller to judge: its answer, or its refusal
    /// (a final one, or an outcome left unknown once retries are spent, which a create
    /// reconciles); only a stop or the journal ends the row here.
    pub(super) async fn send(&mut self, step: &str, req: &ApiRequest) -> Result<Sent, Stop> {
        let op = req.operation;
        // A create's answer is recorded with the id it made, which the row checks first.
        if !op.is_create() && self.answered.remove(step) {
            return Ok(Sent::Answered(Bytes::new()));
        }
        let mut tries = Tries::default();
        loop {
            let (id, st, name) = (self.rec.id, step.to_string(), op.name());
            let found = std::mem::take(&mut self.unsaved);
            let attempt = self
                .e
                .journaled(move |j| j.begin_attempt_with(id, &st, name, &found))
                .await?;
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
                .await?;
            failpoint::hit(Point::Answered, op);
            if let Some((k, v)) = &made {
                self.remember_id(*k, v);
            }
            let err = match result {
                Ok(r) => {
                    self.doubt = !settled;
                    return Ok(Sent::Answered(r.body));
                }
                Err(e) => e,
            };
            if err.is_outcome_unknown() {
                self.doubt = true;
            }
            if err.is_halted() {
                // Never sent, and recorded so: the row stays to run.
                return Err(Stop::Interrupted);
            }
            let wait = match tries.after(&self.e.client, &err) {
                Next::GiveUp => return Ok(Sent::Refused(err)),
                Next::Retry(wait) => wait,
            };
            if self.e.stopping() {
                return Err(Stop::Interrupted);
            }
            tracing::info!(row = self.rec.id, operation = op.name(), error = %err, "retrying");
            if self.e.client.health().sleep(wait).await.is_err() {
                return Err(Stop::Interrupted);
            }
        }
    }

    /// Waits until the server must have finished with this row's last request: `settle`
    /// after the latest moment it can have left. The intent is journaled before the pacer's
    /// wait and the token fetch, so it is too early a mark; the answer (a 504, a timeout) came
    /// after the real send, and a request left in flight by a process that died left before
    /// this engine started. How long before is not known: the pacer, a shared budget or an
    /// outage may have held it after its intent for as long as the process lived.
    pub(super) async fn settle(&self) -> Result<(), Stop> {
        let id = self.rec.id;
        let last = self.e.journaled(move |j| j.last_attempt(id)).await?;
        if let Some(last) = last {
            let left_by = last
                .answered_ms
                .unwrap_or_else(|| last.intent_ms.max(self.e.started_ms));
            let until = left_by + self.e.opts.settle.as_millis() as i64;
            let wait = until - now_ms();
            if wait > 0 {
                self.e
                    .client
                    .health()
                    .sleep(Duration::from_millis(wait as u64))
                    .await
                    .map_err(|_| Stop::Interrupted)?;
            }
        }
        Ok(())
    }
}
