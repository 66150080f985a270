//! What a job would do, before it does it: its write calls in order with their counts and the
//! time they take at the limit, each by its effect on the account (made, changed, deleted,
//! ordered), and whether a person must confirm before it starts. `plbulk run --dry-run`,
//! `plbulk undo` and the page's preview all show this one value, so a terminal and a page
//! cannot describe one job two ways.

use std::time::Duration;

use crate::contract::{Method, Operation};
use crate::model::RowState;
use crate::pacing::Rate;
use crate::plan::Plan;

/// What a write call does to the account, as a partner weighs it before starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Makes something (a customer, a user, a number).
    Create,
    /// Changes something that is there.
    Change,
    /// Removes something (a customer, a user, a number's allocation).
    Delete,
    /// Orders hardware, which is shipped and billed.
    Order,
    /// Sends an email to a person (an activation, a password reset).
    Message,
}

impl Effect {
    pub const ALL: [Effect; 5] = [
        Effect::Create,
        Effect::Change,
        Effect::Delete,
        Effect::Order,
        Effect::Message,
    ];

    /// What `op` does to the account.
    pub fn of(op: Operation) -> Effect {
        if op == Operation::AddCustomerOrder {
            return Effect::Order;
        }
        if matches!(
            op,
            Operation::ResendActivation | Operation::RequestPasswordReset
        ) {
            return Effect::Message;
        }
        match op.method() {
            Method::Delete => Effect::Delete,
            Method::Post if op.is_create() => Effect::Create,
            Method::Post | Method::Put | Method::Get => Effect::Change,
        }
    }

    /// As a heading says it.
    pub fn label(self) -> &'static str {
        match self {
            Effect::Create => "Created",
            Effect::Change => "Changed",
            Effect::Delete => "Deleted",
            Effect::Order => "Ordered (hardware)",
            Effect::Message => "Emails sent",
        }
    }
}

/// A plan's write calls, as a preview shows them.
#[derive(Debug, Clone)]
pub struct Calls {
    /// Calls per operation, in the order they first occur.
    pub each: Vec<(Operation, u64)>,
    /// Write calls in all.
    pub writes: u64,
    /// Rows recorded as invalid and not sent.
    pub invalid: u64,
    pub rate: Rate,
    /// The least time the writes take at `rate`.
    pub at_limit: Duration,
}

impl Calls {
    /// The write calls of `plan`, paced at `rate`.
    pub fn of(plan: &Plan, rate: Rate) -> Calls {
        let each = plan.calls();
        let writes: u64 = each.iter().map(|(_, n)| *n).sum();
        let invalid = plan
            .rows
            .iter()
            .filter(|r| r.state == RowState::Invalid)
            .count() as u64;
        let secs = writes as f64 / rate.per_second();
        Calls {
            each,
            writes,
            invalid,
            rate,
            at_limit: Duration::from_secs(secs.ceil() as u64),
        }
    }

    /// Calls with effect `e`.
    pub fn count(&self, e: Effect) -> u64 {
        self.each
            .iter()
            .filter(|(op, _)| Effect::of(*op) == e)
            .map(|(_, n)| *n)
            .sum()
    }

    /// What a person must confirm before this starts: hardware ordered or anything deleted
    /// cannot be taken back by running the file again. None when there is neither.
    pub fn to_confirm(&self) -> Option<Confirm> {
        let c = Confirm {
            orders: self.count(Effect::Order),
            deletes: self.count(Effect::Delete),
        };
        (c.orders + c.deletes > 0).then_some(c)
    }
}

/// The calls a person confirms before a job starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    pub orders: u64,
    pub deletes: u64,
}

impl Confirm {
    /// "places 2 hardware orders and makes 3 deletions", as the question names them.
    pub fn words(&self) -> String {
        let orders = crate::words::count(self.orders, "hardware order");
        let deletes = crate::words::count(self.deletes, "deletion");
        match (self.orders, self.deletes) {
            (0, _) => format!("makes {deletes}"),
            (_, 0) => format!("places {orders}"),
            _ => format!("places {orders} and makes {deletes}"),
        }
    }
}

/// A value as a change shows it: in plain quotes, and a blank bare, so "(blank)" is not taken
/// for the text typed.
pub fn quoted(v: &str) -> String {
    if v.is_empty() || v == "(blank)" {
        "(blank)".into()
    } else {
        format!("\"{v}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_deletes_are_asked_and_the_rest_is_not() {
        assert_eq!(Effect::of(Operation::AddCustomerOrder), Effect::Order);
        assert_eq!(Effect::of(Operation::DeleteCustomer), Effect::Delete);
        assert_eq!(Effect::of(Operation::DeallocateNumber), Effect::Delete);
        assert_eq!(Effect::of(Operation::AddCustomer), Effect::Create);
        assert_eq!(Effect::of(Operation::UpdateCustomer), Effect::Change);
        assert_eq!(Effect::of(Operation::ResendActivation), Effect::Message);
        let c = Confirm {
            orders: 2,
            deletes: 1,
        };
        assert_eq!(c.words(), "places 2 hardware orders and makes 1 deletion");
        assert_eq!(
            Confirm {
                orders: 0,
                deletes: 3
            }
            .words(),
            "makes 3 deletions"
        );
    }
}
