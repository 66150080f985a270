//! The Partner Users sheet: the partner's own staff, added, changed or removed.

use super::op::Op;
use super::{key, Cx, Unique};
use crate::contract as c;
use crate::schema::{Field, PartnerUserAction};

impl Cx<'_> {
    pub(super) fn partner_user(&mut self) -> Option<Op> {
        let action = self.action::<PartnerUserAction>()?;
        let email = self.require(Field::Email, " to identify the partner user");
        self.email_field(Field::Email);
        if action == PartnerUserAction::Add {
            self.require(Field::FirstName, " to add a partner user");
            self.require(Field::LastName, " to add a partner user");
            if let Some(e) = email {
                self.unique(Unique::PartnerEmail, key(&[e]), Field::Email, |_| {
                    "this partner user is added twice".into()
                });
            }
        }
        if !self.wants_op() {
            return None;
        }
        let email = email?.to_string();
        let partner_user = || self.person(Field::PartnerUserId, &email);
        Some(match action {
            PartnerUserAction::Add => Op::AddPartnerUser {
                new: c::NewPartnerUser {
                    first_name: self.text(Field::FirstName).unwrap_or_default(),
                    last_name: self.text(Field::LastName).unwrap_or_default(),
                    email: email.clone(),
                    role: self.text(Field::Role),
                },
            },
            PartnerUserAction::Update => Op::UpdatePartnerUser {
                partner_user: partner_user(),
                changes: c::PartnerUserChanges {
                    first_name: self.text(Field::FirstName),
                    last_name: self.text(Field::LastName),
                    email: None,
                    role: self.text(Field::Role),
                },
            },
            PartnerUserAction::Delete => Op::DeletePartnerUser {
                partner_user: partner_user(),
            },
        })
    }
}
