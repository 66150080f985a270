//! The Users sheet: a customer's user added, changed or deleted, or sent an email.

use super::op::Op;
use super::{fields, key, pair, Cx, Unique};
use crate::contract as c;
use crate::schema::{Field, UserAction};

impl Cx<'_> {
    pub(super) fn user(&mut self) -> Option<Op> {
        let action = self.action::<UserAction>()?;
        let customer = self.customer_ref();
        let user_type = self.choice(Field::UserType, fields::user_type);
        let email = self.require(Field::Email, " to identify the user");
        self.email_field(Field::Email);
        if action == UserAction::Add {
            self.require(Field::FirstName, " to add a user");
            self.require(Field::LastName, " to add a user");
            if let (Some(c), Some(e)) = (customer, email) {
                self.unique(Unique::UserEmail, pair(c, key(&[e])), Field::Email, |_| {
                    "the same user email is added twice for one customer".into()
                });
            }
        }
        if !self.wants_op() {
            return None;
        }
        let customer = self.text(Field::Customer)?;
        let email = email?.to_string();
        let user = || self.person(Field::UserId, &email);
        Some(match action {
            UserAction::Add => Op::AddUser {
                customer,
                new: c::NewUser {
                    first_name: self.text(Field::FirstName).unwrap_or_default(),
                    last_name: self.text(Field::LastName).unwrap_or_default(),
                    email: email.clone(),
                    user_type: user_type.unwrap_or(c::UserType::Standard),
                },
            },
            UserAction::Update => Op::UpdateUser {
                customer,
                user: user(),
                changes: c::UserChanges {
                    first_name: self.text(Field::FirstName),
                    last_name: self.text(Field::LastName),
                    email: None,
                    // A blank User Type reads as standard for an add; here it changes nothing.
                    user_type: self.get(Field::UserType).and(user_type),
                },
            },
            UserAction::Delete => Op::DeleteUser {
                customer,
                user: user(),
            },
            UserAction::ResendActivation => Op::ResendActivation {
                customer,
                user: user(),
            },
            UserAction::ResetPassword => Op::ResetPassword {
                customer,
                user: user(),
            },
        })
    }
}
