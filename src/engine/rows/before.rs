//! What an entity held before a row changed or deleted it, kept in the row's journal (its
//! [`RowIds::before`](crate::model::RowIds::before)) with the write's intent so that `plbulk undo` can put it back.
//!
//! A before-image is read from what the job has listed of the account, which is as the account
//! was when the job first looked (the pre-flight's lists, mostly): a second row changing one
//! entity keeps the values from before the job, and undo puts back the oldest of each field.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{go, looked, Outcome, RowCx, Step, SUCCEEDED};
use crate::client::ApiRequest;

use crate::model::Target;

impl RowCx<'_> {
    /// Keeps what `target` holds now of the fields `changes` sets, or all of it for a deletion
    /// (`changes` None). Once per row: after a doubt, the entity may hold this row's own write.
    pub(super) async fn keep_before<T: Serialize>(
        &mut self,
        target: Target,
        changes: Option<&T>,
    ) -> Step<()> {
        if self.ids.before.is_some() {
            return go(());
        }
        let Some(Value::Object(now)) = step!(self.entity_now(&target, false).await) else {
            return go(());
        };
        let before: Map<String, Value> = match changes.map(serde_json::to_value) {
            Some(Ok(Value::Object(fields))) => fields
                .keys()
                .map(|k| (k.clone(), now.get(k).cloned().unwrap_or(Value::Null)))
                .collect(),
            _ => now,
        };
        self.keep_before_map(before);
        go(())
    }

    /// Changes `target` with `req`, keeping first what the fields `changes` sets held.
    pub(super) async fn change<T: Serialize>(
        &mut self,
        target: Target,
        changes: &T,
        step: &str,
        req: &ApiRequest,
    ) -> Step<Outcome> {
        step!(self.keep_before(target, Some(changes)).await);
        step!(self.write(step, req).await);
        go(SUCCEEDED)
    }

    /// Deletes `target` with `req`, keeping first the whole of it for undo.
    pub(super) async fn delete_kept(&mut self, target: Target, req: &ApiRequest) -> Step<Outcome> {
        step!(self.keep_before(target, None::<&()>).await);
        step!(self.delete("delete", req).await);
        go(SUCCEEDED)
    }

    /// Keeps `before` as it is: a number's allocation, which no entity's JSON holds as the
    /// row's change names it.
    pub(super) fn keep_before_map(&mut self, before: Map<String, Value>) {
        if self.ids.before.is_some() {
            return;
        }
        self.unsaved.before = Some(before.clone());
        self.ids.before = Some(before);
    }

    /// The entity as the account has it (see [`Lookups::entity`]).
    ///
    /// [`Lookups::entity`]: crate::engine::Lookups::entity
    pub(super) async fn entity_now(&self, target: &Target, fresh: bool) -> Step<Option<Value>> {
        let what = match target {
            Target::Customer { .. } => "read the customer",
            Target::User { .. } => "list the customer's users",
            Target::Blocked { .. } => "list the customer's blocked numbers",
            Target::PartnerUser { .. } => "list the partner users",
        };
        looked(what, self.e.look.entity(target, fresh).await)
    }
}
