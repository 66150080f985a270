//! What an entity held before a row changed or deleted it, kept in the row's journal (under
//! [`BEFORE`]) with the write's intent so that `plbulk undo` can put it back.
//!
//! Read from what the job has listed of the account, which is as the account was when the job
//! first looked (the pre-flight's lists, mostly): a second row changing one entity keeps the
//! values from before the job, and undo puts back the oldest of each field.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{lookup_failed, RowCx, Step};
use crate::journal::BEFORE;

impl RowCx<'_> {
    /// Keeps what `now` holds of the fields `changes` sets, or all of it for a deletion
    /// (`changes` None). Once per row: after a doubt, `now` may hold this row's own write.
    pub(super) fn keep_before<T: Serialize>(&mut self, now: Option<&Value>, changes: Option<&T>) {
        if self.ids.contains_key(BEFORE) {
            return;
        }
        let Some(now) = now.and_then(Value::as_object) else {
            return;
        };
        let before: Map<String, Value> = match changes.map(serde_json::to_value) {
            Some(Ok(Value::Object(fields))) => fields
                .keys()
                .map(|k| (k.clone(), now.get(k).cloned().unwrap_or(Value::Null)))
                .collect(),
            _ => now.clone(),
        };
        self.keep_before_map(before);
    }

    /// Keeps `before` as it is: a number's allocation, which no entity's JSON holds as the
    /// row's change names it.
    pub(super) fn keep_before_map(&mut self, before: Map<String, Value>) {
        if self.ids.contains_key(BEFORE) {
            return;
        }
        self.unsaved
            .insert(BEFORE.into(), Value::Object(before.clone()));
        self.ids.insert(BEFORE.into(), Value::Object(before));
    }

    /// The customer `id` as the job has it listed, or as the API gives it now.
    pub(super) async fn customer_now(&self, id: &str) -> Step<Option<Value>> {
        if self.ids.contains_key(BEFORE) {
            return Ok(None);
        }
        let listed = self
            .e
            .look
            .customers(false)
            .await
            .map_err(|e| lookup_failed("list the account's customers", &e))?;
        if let Some(cu) = listed.into_iter().find(|cu| cu.id == id) {
            return Ok(json(&cu));
        }
        match self.e.client.get_customer(id).await {
            Ok(cu) => Ok(json(&cu)),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(lookup_failed("read the customer", &e)),
        }
    }

    pub(super) async fn user_now(&self, customer: &str, id: &str) -> Step<Option<Value>> {
        if self.ids.contains_key(BEFORE) {
            return Ok(None);
        }
        let all = self
            .e
            .look
            .users(customer, false)
            .await
            .map_err(|e| lookup_failed("list the customer's users", &e))?;
        Ok(all.iter().find(|u| u.id == id).and_then(json))
    }

    pub(super) async fn blocked_now(&self, customer: &str, id: &str) -> Step<Option<Value>> {
        if self.ids.contains_key(BEFORE) {
            return Ok(None);
        }
        let all = self
            .e
            .look
            .blocked(customer, false)
            .await
            .map_err(|e| lookup_failed("list the customer's blocked numbers", &e))?;
        Ok(all.iter().find(|b| b.id == id).and_then(json))
    }

    pub(super) async fn partner_user_now(&self, id: &str) -> Step<Option<Value>> {
        if self.ids.contains_key(BEFORE) {
            return Ok(None);
        }
        let all = self
            .e
            .look
            .partner_users(false)
            .await
            .map_err(|e| lookup_failed("list the partner users", &e))?;
        Ok(all.iter().find(|p| p.id == id).and_then(json))
    }
}

fn json<T: Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}
