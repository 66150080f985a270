//! The table of actions: for every action a row can take, the facts the stages share about it,
//! in one row each. The plan orders rows by `phase`, the engine records the id an action
//! `makes` and keeps other jobs off it, deletions wait for everything else, and the
//! pre-flight and the engine know which rows name their customer by its own columns. A new
//! action is a new [`Action`] variant, a row here, the [`Work`](crate::model::Work) it plans
//! to, and its send method in the engine: the compiler points at each, and nothing else has
//! to be found by hand.

use crate::contract::Operation;
use crate::model::IdKind;
use crate::schema::{
    Action, BlockedAction, CustomerAction, NumberAction, PartnerUserAction, UserAction,
};

/// What every stage needs to know of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// When its rows run: customers and partner users first (0), deletions last (9, 10).
    pub phase: u8,
    /// The write calls it makes, in order. A number added and allocated makes both; a
    /// settings row makes the calls for the settings it gives.
    pub operations: &'static [Operation],
    /// The kind of id it makes (or, for an entity that existed, adopts): the key its row
    /// records it under. No two rows of a job may own one entity.
    pub makes: Option<IdKind>,
    /// It removes something: it waits until everything else is done.
    pub deletes: bool,
    /// A Customers row's change to a customer, which names the customer by its Customer ID
    /// or Company Name columns, not by a Customer cell.
    pub about_customer: bool,
}

impl Spec {
    const fn new(phase: u8, operations: &'static [Operation]) -> Spec {
        Spec {
            phase,
            operations,
            makes: None,
            deletes: false,
            about_customer: false,
        }
    }

    const fn makes(self, k: IdKind) -> Spec {
        Spec {
            makes: Some(k),
            ..self
        }
    }

    const fn deletes(self) -> Spec {
        Spec {
            deletes: true,
            ..self
        }
    }

    const fn about_customer(self) -> Spec {
        Spec {
            about_customer: true,
            ..self
        }
    }
}

/// The table.
pub fn spec(action: Action) -> Spec {
    use Operation as O;
    use {
        BlockedAction as B, CustomerAction as C, NumberAction as N, PartnerUserAction as P,
        UserAction as U,
    };
    match action {
        Action::Customer(C::Add) => Spec::new(0, &[O::AddCustomer]).makes(IdKind::Customer),
        Action::Customer(C::Update) => Spec::new(0, &[O::UpdateCustomer]).about_customer(),
        Action::Customer(C::Regrade) => Spec::new(0, &[O::RegradeContract]).about_customer(),
        Action::Customer(C::Upgrade) => Spec::new(0, &[O::UpgradePlan]).about_customer(),
        Action::Customer(C::Delete) => Spec::new(10, &[O::DeleteCustomer])
            .deletes()
            .about_customer(),
        Action::PartnerUser(P::Add) => {
            Spec::new(0, &[O::AddPartnerUser]).makes(IdKind::PartnerUser)
        }
        Action::PartnerUser(P::Update) => Spec::new(0, &[O::UpdatePartnerUser]),
        Action::PartnerUser(P::Delete) => Spec::new(9, &[O::DeletePartnerUser]).deletes(),
        Action::User(U::Add) => Spec::new(1, &[O::AddCustomerUser]).makes(IdKind::User),
        Action::User(U::Update) => Spec::new(1, &[O::UpdateCustomerUser]),
        Action::User(U::ResendActivation) => Spec::new(1, &[O::ResendActivation]),
        Action::User(U::ResetPassword) => Spec::new(1, &[O::RequestPasswordReset]),
        Action::User(U::Delete) => Spec::new(9, &[O::DeleteCustomerUser]).deletes(),
        Action::Number(N::Deallocate) => Spec::new(2, &[O::DeallocateNumber]),
        Action::Number(N::Add) => {
            Spec::new(3, &[O::AddCustomerNumber, O::AllocateNumber]).makes(IdKind::Number)
        }
        Action::Number(N::Allocate) => Spec::new(4, &[O::AllocateNumber]),
        Action::Blocked(B::Add) => Spec::new(5, &[O::AddBlockedNumber]).makes(IdKind::Blocked),
        Action::Blocked(B::Update) => Spec::new(5, &[O::UpdateBlockedNumber]),
        Action::Blocked(B::Delete) => Spec::new(9, &[O::DeleteBlockedNumber]).deletes(),
        Action::AddDevice => Spec::new(6, &[O::AddUserDevice]).makes(IdKind::Device),
        Action::SetUserSettings => {
            Spec::new(7, &[O::UpdateCallSettings, O::UpdateScheduleSettings])
        }
        Action::AddOrder => Spec::new(8, &[O::AddCustomerOrder]).makes(IdKind::Order),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Kind;

    /// Every action of every sheet has a row, what it makes is what its first call's answer
    /// gives, and what deletes runs last.
    #[test]
    fn every_action_has_a_row_that_agrees_with_its_calls() {
        for kind in Kind::ALL {
            for name in Action::names(kind) {
                let a = Action::parse(kind, name).unwrap();
                let s = spec(a);
                assert!(!s.operations.is_empty(), "{a:?}");
                assert_eq!(s.makes, IdKind::made_by(s.operations[0]), "{a:?}");
                // A deallocation is a DELETE of an allocation, not of an entity: it runs in
                // its own phase, before numbers are added.
                assert!(
                    !s.deletes || s.operations[0].method() == crate::contract::Method::Delete,
                    "{a:?}"
                );
                assert_eq!(s.deletes, s.phase >= 9, "{a:?}");
            }
        }
    }
}
