//! The Customers sheet: a customer added, changed, regraded, upgraded or deleted.

use super::op::{CustomerSel, Op};
use super::{fields, key, Cx, Unique};
use crate::contract::{self as c, Plan};
use crate::schema::{CustomerAction, Field, SheetAction};

const ADDRESS: [Field; 5] = [
    Field::Line1,
    Field::Line2,
    Field::Town,
    Field::County,
    Field::Postcode,
];

impl Cx<'_> {
    pub(super) fn customer(&mut self) -> Option<Op> {
        let action = self.action::<CustomerAction>()?;
        // Start fetching the filter blocks of the Ref and the name now, and check the cells
        // while the memory answers.
        let ref_key = self.get(Field::Ref).map(|r| key(&[r]));
        // Only a customer added is kept by name.
        let name_key = match action {
            CustomerAction::Add => self.get(Field::CompanyName).map(|n| key(&[n])),
            CustomerAction::Update
            | CustomerAction::Delete
            | CustomerAction::Regrade
            | CustomerAction::Upgrade => None,
        };
        if let Some(k) = ref_key {
            self.v.logs[Unique::Ref as usize].prefetch(k);
        }
        if let Some(k) = name_key {
            self.v.logs[Unique::Name as usize].prefetch(k);
        }
        self.email_field(Field::Email);
        self.normalise_phone(Field::Phone, fields::phone);
        let plan = match self.get(Field::Plan) {
            Some(_) => self.choice(Field::Plan, fields::plan),
            None => None,
        };
        let months = match self.get(Field::ContractMonths) {
            Some(_) => self.choice(Field::ContractMonths, fields::contract_months),
            None => None,
        };
        let has_address = self.address(
            Field::Line1,
            Field::Town,
            Field::Postcode,
            &[Field::Line2, Field::County],
            ", since part of the address is given",
        );
        if let Some(k) = ref_key {
            self.unique(Unique::Ref, k, Field::Ref, |_| {
                "this Ref is used twice".into()
            });
        }
        match action {
            CustomerAction::Add => self.adding_customer(plan, has_address, name_key),
            CustomerAction::Update
            | CustomerAction::Delete
            | CustomerAction::Regrade
            | CustomerAction::Upgrade => self.changing_customer(action, plan),
        }
        if !self.wants_op() {
            return None;
        }
        let address = self.address_of(ADDRESS);
        let selector = || match self.text(Field::CustomerId) {
            Some(id) => CustomerSel::Id(id),
            None => CustomerSel::Name(self.text(Field::CompanyName).unwrap_or_default()),
        };
        Some(match action {
            CustomerAction::Add => Op::AddCustomer {
                reference: self.text(Field::Ref),
                new: c::NewCustomer {
                    company_name: self.text(Field::CompanyName).unwrap_or_default(),
                    contact_name: self.text(Field::ContactName),
                    email: self.text(Field::Email),
                    phone: self.clean(Field::Phone),
                    plan,
                    contract_months: months,
                    address,
                },
            },
            CustomerAction::Update => Op::UpdateCustomer {
                customer: selector(),
                changes: c::CustomerChanges {
                    // The name is the selector when no id is given.
                    company_name: self
                        .get(Field::CustomerId)
                        .and(self.text(Field::CompanyName)),
                    contact_name: self.text(Field::ContactName),
                    email: self.text(Field::Email),
                    phone: self.clean(Field::Phone),
                    address,
                },
            },
            CustomerAction::Delete => Op::DeleteCustomer {
                customer: selector(),
            },
            CustomerAction::Regrade => Op::RegradeContract {
                customer: selector(),
                months: months?,
            },
            CustomerAction::Upgrade => Op::UpgradePlan {
                customer: selector(),
            },
        })
    }

    pub(super) fn adding_customer(
        &mut self,
        plan: Option<Plan>,
        has_address: bool,
        name: Option<super::Key>,
    ) {
        if let (Some(_), Some(k)) = (self.require(Field::CompanyName, " to add a customer"), name) {
            self.unique(Unique::Name, k, Field::CompanyName, |_| "".into());
        }
        self.require(Field::Plan, " to add a customer (pro or hardware)");
        self.require(
            Field::ContractMonths,
            " to add a customer (1, 12, 24 or 36)",
        );
        match plan {
            Some(Plan::Pro) => {
                self.require(Field::Email, " because Plan is pro");
            }
            Some(Plan::Hardware) if !has_address => {
                for f in [Field::Line1, Field::Town, Field::Postcode] {
                    self.require(
                        f,
                        " because Plan is hardware (the phones are delivered there)",
                    );
                }
            }
            Some(Plan::Hardware) | None => {}
        }
    }

    fn changing_customer(&mut self, action: CustomerAction, plan: Option<Plan>) {
        if self.get(Field::CustomerId).is_none() && self.get(Field::CompanyName).is_none() {
            self.require(
                Field::CustomerId,
                &format!(
                    " to {} a customer (or a Company Name that finds it)",
                    action.name()
                ),
            );
        }
        if action == CustomerAction::Regrade {
            self.require(Field::ContractMonths, " to regrade a contract");
        }
        if action == CustomerAction::Upgrade && plan == Some(Plan::Hardware) {
            let c = self.col(Field::Plan);
            self.err_at(
                c,
                "hardware",
                "upgrade moves a customer to pro (Standard): leave Plan blank or write pro".into(),
            );
        }
    }
}
