//! `plbulk undo JOB`: the plan of a job of its own that reverses what JOB did, newest first.
//!
//! Each row JOB ran becomes one of:
//! - the row that carries one entity's undo: what JOB made is removed, what it changed is put
//!   back to its before-image (journaled with each write, see [`RowIds::before`](crate::model::RowIds::before)), a
//!   number's allocation goes back to whom it was allocated before;
//! - a member of another row's undo: a later change to the same entity (the entity is undone
//!   once, from its oldest before-image), or anything inside a customer JOB made (removing the
//!   customer takes its users, numbers and blocked numbers with it);
//! - a row that needs review, with the reason: what the API cannot reverse (orders, devices,
//!   upgrades, deletions, emails, numbers added to a pool that stays, settings it cannot read);
//! - left alone: what already existed before JOB.
//!
//! Removals run last (the engine holds deletions back), so an allocation to a user is put back
//! before the user goes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::journal::{Journal, JournalError, ResultRow, RowRec};
use crate::model::{IdKind, NewRow, Reallocation, RowState, Target, UndoStep, Work};
use crate::plan::Plan;

/// What undo will do, for `--dry-run` and the job's start.
pub struct UndoPlan {
    pub plan: Plan,
    /// Rows whose work undo cannot reverse, as "Orders row 4: why".
    pub irreversible: Vec<String>,
    /// Rows left alone: what already existed before the job.
    pub left_alone: u64,
}

/// One entity's undo, as the rows that touched it build it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Entity(Target),
    Number { customer: String, number: String },
}

enum Piece {
    /// The row made the entity: `wrote` is what it was made with.
    Made(Map<String, Value>),
    /// The row changed the fields in `wrote`; `before` is what they held.
    Changed {
        wrote: Map<String, Value>,
        before: Map<String, Value>,
    },
    /// The row allocated (`wrote` Some) or deallocated a number.
    Allocated {
        wrote: Option<String>,
        before: Option<String>,
        note: Option<String>,
    },
    /// Inside a customer the job made: removed with it.
    Within,
}

/// What becomes of one row of the job.
enum Fate {
    Part(Key, Piece),
    Ends(RowState, String),
    /// Nothing was done: a failed, skipped or invalid row.
    Nothing,
}

/// Plans the undo of the job journaled in `journal`, which the caller has checked may be
/// undone (finished or abandoned, not itself an undo).
pub fn plan(journal: &Journal, force: bool) -> Result<UndoPlan, JournalError> {
    let meta = journal.meta()?;
    let sheets = journal.sheets()?;
    let recs = journal.rows()?;
    let results: HashMap<i64, ResultRow> = journal
        .result_rows()?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let made: HashSet<String> = recs
        .iter()
        .filter(|r| may_have_written(r))
        .filter(|r| matches!(r.work, Some(Work::AddCustomer { .. })))
        .filter_map(|r| id(r, IdKind::Customer))
        .collect();
    // A rehearsal ran on a sandbox account: there is no PL+ to ask, nor a portal to use.
    let rehearsal = serde_json::from_value::<crate::job::JobOptions>(meta.options.clone())
        .is_ok_and(|o| o.sandbox);
    let cx = Cx {
        job: &meta.id,
        made: &made,
        rehearsal,
    };

    // Newest first: the undo runs in reverse.
    let mut fates: Vec<(&RowRec, Fate)> = recs.iter().rev().map(|r| (r, cx.fate(r))).collect();
    // Each entity's rows, newest first; the first Made, or else the newest, carries it.
    let mut groups: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, (_, f)) in fates.iter().enumerate() {
        if let Fate::Part(k, _) = f {
            groups.entry(k.clone()).or_default().push(i);
        }
    }
    let mut carrier: HashMap<Key, usize> = HashMap::new();
    let mut works: HashMap<usize, Work> = HashMap::new();
    for (key, members) in &groups {
        let pieces: Vec<&Piece> = members
            .iter()
            .map(|&i| match &fates[i].1 {
                Fate::Part(_, p) => p,
                Fate::Ends(..) | Fate::Nothing => unreachable!("grouped rows are parts"),
            })
            .collect();
        let lead = members
            .iter()
            .zip(&pieces)
            .find(|(_, p)| matches!(p, Piece::Made(_)))
            .map_or(members[0], |(&i, _)| i);
        carrier.insert(key.clone(), lead);
        works.insert(lead, undo_of(key, &pieces, force));
    }

    let mut plan = Plan {
        sheets,
        rows: Vec::new(),
    };
    let mut irreversible = Vec::new();
    let mut left_alone = 0;
    // The undo's row ids are its positions, so a member's lead is its carrier's position.
    let mut position: HashMap<usize, i64> = HashMap::new();
    let mut kept: Vec<usize> = Vec::new();
    for (i, (_, f)) in fates.iter().enumerate() {
        if !matches!(f, Fate::Nothing) {
            position.insert(i, kept.len() as i64 + 1);
            kept.push(i);
        }
    }
    for &i in &kept {
        let (rec, fate) = &mut fates[i];
        let cells = results
            .get(&rec.id)
            .map(|r| r.cells.clone())
            .unwrap_or_default();
        let mut row = NewRow {
            sheet: rec.sheet,
            row_no: rec.row_no,
            task: rec.task,
            cells,
            work: None,
            deps: Vec::new(),
            lead: None,
            state: RowState::Pending,
            detail: None,
        };
        match std::mem::replace(fate, Fate::Nothing) {
            Fate::Part(key, _) => {
                let lead = carrier[&key];
                if lead == i {
                    row.work = works.remove(&i);
                } else {
                    row.lead = Some(position[&lead]);
                }
            }
            Fate::Ends(state, why) => {
                let sheet = plan
                    .sheets
                    .get(rec.sheet as usize)
                    .map_or("?", |s| s.sheet.as_str());
                match state {
                    RowState::Skipped => left_alone += 1,
                    RowState::Pending
                    | RowState::Succeeded
                    | RowState::AlreadyExisted
                    | RowState::Unchanged
                    | RowState::Failed
                    | RowState::NeedsReview
                    | RowState::Invalid => irreversible.push(format!(
                        "{}: {why}",
                        crate::model::place(sheet, rec.row_no, rec.task)
                    )),
                }
                row.state = state;
                row.detail = Some(why);
            }
            Fate::Nothing => unreachable!("only rows with a fate are kept"),
        }
        plan.rows.push(row);
    }
    Ok(UndoPlan {
        plan,
        irreversible,
        left_alone,
    })
}

/// The one work that undoes an entity, from its rows newest first.
fn undo_of(key: &Key, pieces: &[&Piece], force: bool) -> Work {
    // Oldest first: a later write's value wins in `wrote`; a field's old value is the one the
    // first row to write it saw (a field missing from that before-image was blank).
    let mut wrote = Map::new();
    let mut before = Map::new();
    let mut made = false;
    let (mut alloc_wrote, mut alloc_before, mut note) = (None, None, None);
    for p in pieces.iter().rev() {
        match p {
            Piece::Made(w) => {
                made = true;
                wrote.extend(w.clone());
            }
            Piece::Changed {
                wrote: w,
                before: b,
            } => {
                for (k, v) in w {
                    if !wrote.contains_key(k) {
                        if let Some(old) = b.get(k).filter(|old| !old.is_null()) {
                            before.insert(k.clone(), old.clone());
                        }
                    }
                    wrote.insert(k.clone(), v.clone());
                }
            }
            Piece::Allocated {
                wrote: w,
                before: b,
                note: n,
            } => {
                alloc_before.get_or_insert_with(|| b.clone());
                alloc_wrote = w.clone();
                note = n.clone().or(note);
            }
            Piece::Within => {}
        }
    }
    match key {
        Key::Number { customer, number } => Work::Reallocate(Reallocation {
            customer: customer.clone(),
            number: number.clone(),
            wrote: alloc_wrote,
            before: alloc_before.flatten(),
            force,
            note,
        }),
        Key::Entity(target) if made => Work::Remove {
            target: target.clone(),
            wrote,
            force,
        },
        Key::Entity(target) => Work::Restore {
            target: target.clone(),
            wrote,
            before,
            force,
        },
    }
}

/// Whether the row's writes may have reached the server: it succeeded, or it is a row of an
/// abandoned job that sent something before the job was given up.
fn may_have_written(r: &RowRec) -> bool {
    r.state == RowState::Succeeded || (r.state == RowState::Pending && r.attempts > 0)
}

fn id(r: &RowRec, key: IdKind) -> Option<String> {
    r.ids.get(key).map(str::to_string)
}

fn fields<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(mut m)) => {
            m.retain(|_, v| !v.is_null());
            m
        }
        _ => Map::new(),
    }
}

struct Cx<'a> {
    job: &'a str,
    /// Customers the job made.
    made: &'a HashSet<String>,
    /// The job was a rehearsal: what the API cannot reverse stays in the rehearsal account.
    rehearsal: bool,
}

impl Cx<'_> {
    fn fate(&self, r: &RowRec) -> Fate {
        match r.state {
            RowState::Succeeded => {}
            RowState::AlreadyExisted => {
                return Fate::Ends(
                    RowState::Skipped,
                    format!(
                        "it was in the account before job {}: left alone",
                        self.job
                    ),
                )
            }
            RowState::NeedsReview => {
                return Fate::Ends(
                    RowState::NeedsReview,
                    format!(
                        "it needed review in job {}: what it did is not known, so undo leaves it to you",
                        self.job
                    ),
                )
            }
            // A row of an abandoned job that sent something: its write may have reached the
            // server. What it recorded making is undone like a success; what it may have made
            // without knowing is for the user to check.
            RowState::Pending if may_have_written(r) => {
                let Some(work) = &r.work else {
                    return Fate::Nothing;
                };
                return match self.part(r, work) {
                    Ok(f) => f,
                    Err(_) => Fate::Ends(
                        RowState::NeedsReview,
                        format!(
                            "job {} was given up while this row's write may have reached the server, and it recorded nothing made: check by hand",
                            self.job
                        ),
                    ),
                };
            }
            RowState::Unchanged
            | RowState::Failed
            | RowState::Skipped
            | RowState::Invalid
            | RowState::Pending => return Fate::Nothing,
        }
        if r.lead.is_some() {
            let order = id(r, IdKind::Order).unwrap_or_else(|| "an order".into());
            let what =
                format!("a line of order {order}, which cannot be called back through the API");
            return Fate::Ends(RowState::NeedsReview, self.order_left(what, &order));
        }
        let Some(work) = &r.work else {
            return Fate::Nothing;
        };
        match self.part(r, work) {
            Ok(f) => f,
            Err(why) => Fate::Ends(RowState::NeedsReview, why),
        }
    }

    /// What to do about an order the API cannot call back: ask PL+, or, in a rehearsal, nothing
    /// (it stays in the rehearsal account, and no hardware ships).
    fn order_left(&self, what: String, order: &str) -> String {
        if self.rehearsal {
            format!("{what}; this was a rehearsal, so no hardware ships and there is no PL+ to ask: order {order} stays in the rehearsal account")
        } else {
            format!("{what}; ask PL+ to cancel order {order}")
        }
    }

    fn within(&self, customer: &str) -> bool {
        self.made.contains(customer)
    }

    /// The row's part in the undo, or why it cannot have one.
    fn part(&self, r: &RowRec, work: &Work) -> Result<Fate, String> {
        let need = |key: IdKind| {
            id(r, key).ok_or_else(|| {
                format!(
                    "job {} recorded no {} id for this row: check it by hand",
                    self.job,
                    key.noun()
                )
            })
        };
        let before = || -> Result<Map<String, Value>, String> {
            match &r.ids.before {
                Some(m) => Ok(m.clone()),
                None => Err(format!(
                    "job {} was journaled before plbulk kept what an entity held before it changed it, so what to put back is not known: put it back by hand",
                    self.job
                )),
            }
        };
        let was_allocated = || -> Result<Option<String>, String> {
            Ok(before()?
                .get("userId")
                .and_then(Value::as_str)
                .map(str::to_string))
        };
        let customer_part = |cid: String, piece: Piece| {
            Fate::Part(Key::Entity(Target::Customer { id: cid }), piece)
        };
        let irreversible = |why: String| Ok(Fate::Ends(RowState::NeedsReview, why));
        // A row about an entity of a customer: inside a customer the job made, it goes with
        // the customer; else it is that entity's, which `of` names.
        let entity = |of: &dyn Fn(String) -> Result<Target, String>,
                      piece: &dyn Fn() -> Result<Piece, String>| {
            let cid = need(IdKind::Customer)?;
            Ok::<Fate, String>(if self.within(&cid) {
                customer_part(cid, Piece::Within)
            } else {
                Fate::Part(Key::Entity(of(cid)?), piece()?)
            })
        };
        let user = |cid: String| {
            Ok::<Target, String>(Target::User {
                customer: cid,
                id: need(IdKind::User)?,
            })
        };
        let blocked = |cid: String| {
            Ok::<Target, String>(Target::Blocked {
                customer: cid,
                id: need(IdKind::Blocked)?,
            })
        };
        let changed = |changes: Map<String, Value>| {
            Ok::<Piece, String>(Piece::Changed {
                wrote: changes,
                before: before()?,
            })
        };
        Ok(match work {
            Work::AddCustomer { new } => {
                customer_part(need(IdKind::Customer)?, Piece::Made(fields(new)))
            }
            Work::UpdateCustomer { changes, .. } => {
                let cid = need(IdKind::Customer)?;
                let wrote = fields(changes);
                let piece = if self.within(&cid) {
                    Piece::Changed {
                        wrote,
                        before: Map::new(),
                    }
                } else {
                    Piece::Changed {
                        wrote,
                        before: before()?,
                    }
                };
                customer_part(cid, piece)
            }
            Work::RegradeContract { months, .. } => {
                let cid = need(IdKind::Customer)?;
                let mut wrote = Map::new();
                wrote.insert(
                    crate::contract::CONTRACT_MONTHS_FIELD.into(),
                    (*months).into(),
                );
                let before = if self.within(&cid) {
                    Map::new()
                } else {
                    before()?
                };
                customer_part(cid, Piece::Changed { wrote, before })
            }
            Work::UpgradePlan { .. } => {
                let cid = need(IdKind::Customer)?;
                if self.within(&cid) {
                    customer_part(cid, Piece::Within)
                } else {
                    return irreversible(format!(
                        "customer {cid} was upgraded to pro: the API only upgrades, so it stays on pro"
                    ));
                }
            }
            Work::DeleteCustomer { .. }
            | Work::DeleteUser { .. }
            | Work::DeleteBlocked { .. }
            | Work::DeletePartnerUser { .. } => {
                let was = r
                    .ids
                    .before
                    .as_ref()
                    .map(|b| format!("; it was {}", Value::Object(b.clone())))
                    .unwrap_or_default();
                return irreversible(format!(
                    "deleted: the API cannot bring it back, nor its id; add it again from this row to recreate it{was}"
                ));
            }
            Work::AddUser { new, .. } => entity(&user, &|| Ok(Piece::Made(fields(new))))?,
            Work::UpdateUser { changes, .. } => entity(&user, &|| changed(fields(changes)))?,
            Work::ResendActivation { .. } | Work::ResetPassword { .. } => {
                return irreversible(if self.rehearsal {
                    "this was a rehearsal: the sandbox sent no email, and there is nothing to take back".into()
                } else {
                    "an email was sent: it cannot be unsent".into()
                })
            }
            Work::AddNumber {
                number,
                allocate_to,
                ..
            } => {
                let cid = need(IdKind::Customer)?;
                if self.within(&cid) {
                    customer_part(cid, Piece::Within)
                } else {
                    let pool = format!(
                        "{number} stays in customer {cid}'s pool: the API cannot take a number out of a pool"
                    );
                    match allocate_to {
                        Some(_) => Fate::Part(
                            Key::Number {
                                customer: cid,
                                number: number.clone(),
                            },
                            Piece::Allocated {
                                wrote: Some(need(IdKind::User)?),
                                before: None,
                                note: Some(format!("deallocated; {pool}")),
                            },
                        ),
                        None => return irreversible(pool),
                    }
                }
            }
            Work::AllocateNumber { number, .. } | Work::DeallocateNumber { number, .. } => {
                let cid = need(IdKind::Customer)?;
                if self.within(&cid) {
                    customer_part(cid, Piece::Within)
                } else {
                    // Allocated by the job: to the user it names. Deallocated: to no one.
                    let wrote = if matches!(work, Work::AllocateNumber { .. }) {
                        Some(need(IdKind::User)?)
                    } else {
                        None
                    };
                    Fate::Part(
                        Key::Number {
                            customer: cid,
                            number: number.clone(),
                        },
                        Piece::Allocated {
                            wrote,
                            before: was_allocated()?,
                            note: None,
                        },
                    )
                }
            }
            Work::AddBlocked { new, .. } => entity(&blocked, &|| Ok(Piece::Made(fields(new))))?,
            Work::UpdateBlocked { changes, .. } => entity(&blocked, &|| changed(fields(changes)))?,
            Work::AddDevice { mac, .. } => {
                // Deleting a customer removes its users' devices (the contract's cascade).
                if let Some(cid) = id(r, IdKind::Customer).filter(|c| self.within(c)) {
                    return Ok(customer_part(cid, Piece::Within));
                }
                let device = id(r, IdKind::Device).unwrap_or_else(|| "the device".into());
                let what = format!(
                    "{device} (MAC {mac}) was added: the API has no way to remove a device"
                );
                return irreversible(if self.rehearsal {
                    format!("{what}; this was a rehearsal, so it stays in the rehearsal account (there is no partner portal for it)")
                } else {
                    format!("{what}; remove it in the partner portal")
                });
            }
            Work::AddOrder { .. } => {
                let order = id(r, IdKind::Order).unwrap_or_else(|| "the order".into());
                let what = format!(
                    "order {order} was placed: hardware cannot be called back through the API"
                );
                return irreversible(self.order_left(what, &order));
            }
            Work::UserSettings { .. } => {
                let cid = need(IdKind::Customer)?;
                if self.within(&cid) {
                    customer_part(cid, Piece::Within)
                } else {
                    return irreversible(
                        "the API cannot read a user's settings, so what they were before the job is not known: set them back by hand".into(),
                    );
                }
            }
            Work::AddPartnerUser { new } => Fate::Part(
                Key::Entity(Target::PartnerUser {
                    id: need(IdKind::PartnerUser)?,
                }),
                Piece::Made(fields(new)),
            ),
            Work::UpdatePartnerUser { changes, .. } => Fate::Part(
                Key::Entity(Target::PartnerUser {
                    id: need(IdKind::PartnerUser)?,
                }),
                Piece::Changed {
                    wrote: fields(changes),
                    before: before()?,
                },
            ),
            Work::Remove { .. } | Work::Restore { .. } | Work::Reallocate(_) => {
                return irreversible("a row of an undo: an undo is not undone".into())
            }
        })
    }
}

/// What an undo row that succeeded reversed, for its Detail in the undo's results: the row
/// shows the job's own cells ("add"), and "succeeded" beside them with nothing more read as
/// "added". `work` is the undo row's; `job` the job undone. None for work no undo plans.
pub fn reversed(work: &Work, job: &str) -> Option<String> {
    Some(match work.undo_step()? {
        UndoStep::Remove { target, .. } => {
            format!("reversed the add: {} removed", target.describe())
        }
        UndoStep::Restore { target, wrote, .. } => {
            let fields: Vec<&str> = wrote.keys().map(String::as_str).collect();
            format!(
                "reversed the update: {} put back as it was before job {job} ({})",
                target.describe(),
                fields.join(", ")
            )
        }
        UndoStep::Reallocate(r) => match &r.before {
            Some(user) => format!(
                "reversed the allocation: {} allocated back to user {user}, as before job {job}",
                r.number
            ),
            None => format!(
                "reversed the allocation: {} deallocated, as before job {job}",
                r.number
            ),
        },
    })
}

/// The Detail of a member of another undo row (inside a customer the job made): what its
/// lead reversed took it too.
pub fn reversed_with(lead: &Work, job: &str) -> Option<String> {
    match lead.undo_step()? {
        UndoStep::Remove { target, .. } => Some(format!(
            "reversed the add: removed with {}",
            target.describe()
        )),
        UndoStep::Restore { .. } | UndoStep::Reallocate(_) => {
            reversed(lead, job).map(|why| format!("reversed with the row that carries it: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// Two rows changed one user: undo puts back what was there before the first, and checks
    /// against what the last wrote.
    #[test]
    fn several_changes_to_one_entity_are_undone_once_to_the_oldest_values() {
        let key = Key::Entity(Target::User {
            customer: "cus_1".into(),
            id: "usr_1".into(),
        });
        let newest = Piece::Changed {
            wrote: map(json!({"lastName": "Third", "type": "admin"})),
            before: map(json!({"lastName": "Second", "type": "standard"})),
        };
        let oldest = Piece::Changed {
            // The phone was blank before: its before-image lacks it.
            wrote: map(json!({"lastName": "Second", "phone": "+441632960000"})),
            before: map(json!({"lastName": "First"})),
        };
        match undo_of(&key, &[&newest, &oldest], false) {
            Work::Restore { wrote, before, .. } => {
                assert_eq!(
                    Value::Object(wrote),
                    json!({"lastName": "Third", "type": "admin", "phone": "+441632960000"})
                );
                assert_eq!(
                    Value::Object(before),
                    json!({"lastName": "First", "type": "standard"})
                );
            }
            other => panic!("{other:?}"),
        }
        // An allocation moved twice goes back to its first owner.
        let key = Key::Number {
            customer: "cus_1".into(),
            number: "+441632960001".into(),
        };
        let later = Piece::Allocated {
            wrote: Some("usr_3".into()),
            before: Some("usr_2".into()),
            note: None,
        };
        let first = Piece::Allocated {
            wrote: Some("usr_2".into()),
            before: None,
            note: Some("n".into()),
        };
        match undo_of(&key, &[&later, &first], false) {
            Work::Reallocate(r) => {
                assert_eq!(r.wrote.as_deref(), Some("usr_3"));
                assert_eq!(r.before, None);
                assert_eq!(r.note.as_deref(), Some("n"));
            }
            other => panic!("{other:?}"),
        }
    }
}
