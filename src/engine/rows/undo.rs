//! The undo job's work: remove what a job made, put back what it changed, and put a number's
//! allocation back, each only while the entity is as the job left it (or with `--force`).
//!
//! "As the job left it" is judged field by field on the fields the job wrote: a field that
//! holds what the job wrote, or already what it held before, is the job's (or undo's own, after
//! a lost answer); any other value was written by someone since, and undo leaves the entity
//! alone and says so.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ends, go, Outcome, RowCx, Step, SUCCEEDED};
use crate::client::ApiRequest;
use crate::contract::{self as c, same_value, CONTRACT_MONTHS_FIELD};
use crate::model::{IdKind, Reallocation, RowState, Target};

impl RowCx<'_> {
    pub(super) async fn remove(
        &mut self,
        target: &Target,
        wrote: &Map<String, Value>,
        force: bool,
    ) -> Step<Outcome> {
        let Some(now) = step!(self.target_now(target).await) else {
            return go((
                RowState::Succeeded,
                Some(format!("{} was gone already", target.describe())),
            ));
        };
        if !force {
            if let Some(why) = changed_since(&now, wrote, None) {
                return go((
                    RowState::NeedsReview,
                    Some(format!(
                        "{} was changed since the job ({why}): not removed; plbulk undo --force removes it anyway",
                        target.describe()
                    )),
                ));
            }
        }
        let req = match target {
            Target::Customer { id } => ApiRequest::delete_customer(id),
            Target::User { customer, id } => ApiRequest::delete_user(customer, id),
            Target::Blocked { customer, id } => ApiRequest::delete_blocked_number(customer, id),
            Target::PartnerUser { id } => ApiRequest::delete_partner_user(id),
        };
        step!(self.delete("remove", &req).await);
        go(SUCCEEDED)
    }

    pub(super) async fn restore(
        &mut self,
        target: &Target,
        wrote: &Map<String, Value>,
        before: &Map<String, Value>,
        force: bool,
    ) -> Step<Outcome> {
        let Some(now) = step!(self.target_now(target).await) else {
            return ends(
                RowState::Failed,
                format!(
                    "{} no longer exists: there is nothing to put back",
                    target.describe()
                ),
            );
        };
        if !force {
            if let Some(why) = changed_since(&now, wrote, Some(before)) {
                return go((
                    RowState::NeedsReview,
                    Some(format!(
                        "{} was changed since the job ({why}): not put back; plbulk undo --force puts it back anyway",
                        target.describe()
                    )),
                ));
            }
        }
        // What to send: each field the job wrote that does not hold its old value yet. One
        // that was blank before cannot be blanked again: the API's updates only set fields.
        let mut put = Map::new();
        let mut blank = Vec::new();
        for k in wrote.keys() {
            let was = before.get(k).unwrap_or(&Value::Null);
            if same_value(now.get(k).unwrap_or(&Value::Null), was) {
                continue;
            }
            if was.is_null() {
                blank.push(k.as_str());
            } else {
                put.insert(k.clone(), was.clone());
            }
        }
        if put.is_empty() && blank.is_empty() {
            return go((
                RowState::Succeeded,
                Some("already as it was before the job".into()),
            ));
        }
        step!(self.put_back(target, put).await);
        if blank.is_empty() {
            return go(SUCCEEDED);
        }
        go((
            RowState::NeedsReview,
            Some(format!(
                "put back, except {} of {}, which {} blank before the job: the API cannot blank a field, so clear it by hand",
                blank.join(", "),
                target.describe(),
                if blank.len() == 1 { "was" } else { "were" }
            )),
        ))
    }

    async fn put_back(&mut self, target: &Target, mut put: Map<String, Value>) -> Step<()> {
        let req = match target {
            Target::Customer { id } => {
                if let Some(months) = put.remove(CONTRACT_MONTHS_FIELD) {
                    let Some(months) = months.as_u64() else {
                        return unreadable(CONTRACT_MONTHS_FIELD);
                    };
                    let req = ApiRequest::regrade_contract(id, months as u32);
                    step!(self.write("regrade-back", &req).await);
                }
                if put.is_empty() {
                    return go(());
                }
                ApiRequest::update_customer(id, &step!(changes::<c::CustomerChanges>(put)))
            }
            Target::User { customer, id } => {
                ApiRequest::update_user(customer, id, &step!(changes::<c::UserChanges>(put)))
            }
            Target::Blocked { customer, id } => ApiRequest::update_blocked_number(
                customer,
                id,
                &step!(changes::<c::BlockedNumberChanges>(put)),
            ),
            Target::PartnerUser { id } => {
                ApiRequest::update_partner_user(id, &step!(changes::<c::PartnerUserChanges>(put)))
            }
        };
        step!(self.write("restore", &req).await);
        go(())
    }

    pub(super) async fn reallocate(&mut self, r: &Reallocation) -> Step<Outcome> {
        let Reallocation {
            customer,
            number,
            wrote,
            before,
            force,
            note,
        } = r;
        let Some(k) = step!(self.number(customer, number, self.doubt).await) else {
            return ends(
                RowState::Failed,
                format!("customer {customer} has no number {number} any more"),
            );
        };
        self.set(IdKind::Number, &k.id);
        let as_before = k.user == *before;
        if !as_before && k.user != *wrote && !*force {
            let who = |u: &Option<String>| u.clone().unwrap_or_else(|| "no one".into());
            return go((
                RowState::NeedsReview,
                Some(format!(
                    "{number} was reallocated since the job (it is allocated to {}; the job left it with {}): not put back; plbulk undo --force puts it back anyway",
                    who(&k.user),
                    who(wrote)
                )),
            ));
        }
        if !as_before {
            match before {
                Some(uid) => {
                    step!(
                        self.allocate(customer, number, &k.id, uid, k.user.clone())
                            .await
                    )
                }
                None => step!(self.deallocate(customer, number, &k.id).await),
            }
        }
        go((RowState::Succeeded, note.clone()))
    }

    /// The entity as the account has it now (listed fresh after a doubt: the undo's own
    /// write may have landed), or None if it is gone.
    async fn target_now(&self, target: &Target) -> Step<Option<Value>> {
        self.entity_now(target, self.doubt).await
    }
}

fn unreadable<T>(field: &str) -> Step<T> {
    ends(
        RowState::Failed,
        format!("the job's journal holds no usable old value of {field}: put it back by hand"),
    )
}

fn changes<T: DeserializeOwned>(put: Map<String, Value>) -> Step<T> {
    match serde_json::from_value(Value::Object(put)) {
        Ok(changes) => go(changes),
        Err(e) => ends(
            RowState::Failed,
            format!("the job's journal holds old values this version cannot send ({e}): put them back by hand"),
        ),
    }
}

/// The first field the job wrote that now holds neither what it wrote nor what it held
/// before, in words; None when the entity is as the job (or undo) left it.
fn changed_since(
    now: &Value,
    wrote: &Map<String, Value>,
    before: Option<&Map<String, Value>>,
) -> Option<String> {
    let null = Value::Null;
    wrote.iter().find_map(|(k, w)| {
        let n = now.get(k).unwrap_or(&null);
        // A field missing from the before-image was blank.
        let as_before = before.is_some_and(|b| same_value(n, b.get(k).unwrap_or(&null)));
        (!same_value(n, w) && !as_before)
            .then(|| format!("{k} is now {}, the job wrote {}", shown(n), shown(w)))
    })
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "blank".into(),
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_field_is_the_jobs_when_it_holds_what_it_wrote_or_what_it_was() {
        let wrote = map(json!({"contactName": "Ann", "phone": "+441632960000"}));
        let before = map(json!({"contactName": "Bob"}));
        let now = json!({"contactName": "Ann", "phone": "+441632960000", "email": "x@y"});
        assert_eq!(changed_since(&now, &wrote, Some(&before)), None);
        // Half put back already: still undo's to finish.
        let now = json!({"contactName": "Bob", "phone": "+441632960000"});
        assert_eq!(changed_since(&now, &wrote, Some(&before)), None);
        let now = json!({"contactName": "Cy", "phone": "+441632960000"});
        assert_eq!(
            changed_since(&now, &wrote, Some(&before)).as_deref(),
            Some("contactName is now \"Cy\", the job wrote \"Ann\"")
        );
        // A removal compares with what the job made.
        let now = json!({"companyName": "Acme", "address": {"line1": "1 High St", "county": null}});
        let wrote = map(json!({"companyName": "Acme", "address": {"line1": "1 High St"}}));
        assert_eq!(changed_since(&now, &wrote, None), None);
    }
}
