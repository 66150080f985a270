//! The Blocked Numbers sheet: a number or prefix a customer blocks, changed or unblocked.

use super::op::Op;
use super::{fields, key, pair, Cx, Unique};
use crate::contract as c;
use crate::schema::{BlockedAction, Field};

/// The longest note the contract takes on a blocked number.
const MAX_NOTE_CHARS: usize = 200;

impl Cx<'_> {
    pub(super) fn blocked(&mut self) -> Option<Op> {
        let action = self.action::<BlockedAction>()?;
        let customer = self.customer_ref();
        self.require(Field::Number, "");
        let ok = self.normalise_phone(Field::Number, fields::block_pattern);
        let direction = self.choice(Field::Direction, fields::direction);
        if let Some(note) = self.get(Field::Note) {
            let n = note.chars().count();
            if n > MAX_NOTE_CHARS {
                let c = self.col(Field::Note);
                let shown: String = note.chars().take(40).collect();
                self.err_at(
                    c,
                    &shown,
                    format!("the note has {n} characters; at most {MAX_NOTE_CHARS}"),
                );
            }
        }
        let number = self.v.norm.get(Field::Number);
        if let (true, BlockedAction::Add, Some(c)) = (ok && !number.is_empty(), action, customer) {
            let k = pair(c, key(&[number]));
            self.unique(Unique::Blocked, k, Field::Number, |n| {
                format!("{} is blocked twice for one customer", n.get(Field::Number)).into()
            });
        }
        if !self.wants_op() {
            return None;
        }
        let customer = self.text(Field::Customer)?;
        let number = self.clean(Field::Number)?;
        Some(match action {
            BlockedAction::Add => Op::AddBlocked {
                customer,
                new: c::NewBlockedNumber {
                    number,
                    direction: direction.unwrap_or(c::Direction::Both),
                    note: self.text(Field::Note),
                },
            },
            BlockedAction::Update => Op::UpdateBlocked {
                customer,
                number,
                changes: c::BlockedNumberChanges {
                    number: None,
                    // A blank Direction reads as both for an add; here it changes nothing.
                    direction: self.get(Field::Direction).and(direction),
                    note: self.text(Field::Note),
                },
            },
            BlockedAction::Delete => Op::DeleteBlocked { customer, number },
        })
    }
}
