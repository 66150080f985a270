//! The Numbers sheet: a number added to a customer's pool, allocated to a user or deallocated.

use super::op::Op;
use super::{fields, key, Cx, Unique};
use crate::schema::{Field, NumberAction};

impl Cx<'_> {
    pub(super) fn number(&mut self) -> Option<Op> {
        let action = self.action::<NumberAction>()?;
        let customer = self.customer_ref();
        self.require(Field::Number, "");
        let ok = self.normalise_phone(Field::Number, fields::uk_number);
        let user = if action == NumberAction::Allocate {
            self.require(Field::UserEmail, " to allocate a number")
        } else {
            self.get(Field::UserEmail)
        };
        self.email_field(Field::UserEmail);
        if action == NumberAction::Deallocate {
            if let Some(u) = user {
                let c = self.col(Field::UserEmail);
                self.warn_at(c, u, "deallocate ignores User Email".into());
            }
        }
        let number = self.v.norm.get(Field::Number);
        if ok && !number.is_empty() && customer.is_some() {
            let k = key(&[number]);
            if action == NumberAction::Add {
                self.unique(Unique::NumberAdded, k, Field::Number, |n| {
                    format!("{} is added twice", n.get(Field::Number)).into()
                });
            }
            if user.is_some() && action != NumberAction::Deallocate {
                self.unique(Unique::Allocation, k, Field::Number, |n| {
                    format!("{} is allocated twice", n.get(Field::Number)).into()
                });
            }
        }
        if !self.wants_op() {
            return None;
        }
        let customer = self.text(Field::Customer)?;
        let number = self.clean(Field::Number)?;
        let user = user.map(str::to_string);
        Some(match action {
            NumberAction::Add => Op::AddNumber {
                customer,
                number,
                allocate_to: user,
            },
            NumberAction::Allocate => Op::AllocateNumber {
                customer,
                number,
                user: user?,
            },
            NumberAction::Deallocate => Op::DeallocateNumber { customer, number },
        })
    }
}
