//! Every write of the contract as a typed request: the path's ids in the contract's order and
//! the body's type. The client's typed methods send these with retries; the engine sends the
//! same requests once per journaled attempt, so a write is spelt in one place.

use super::ApiRequest;
use crate::contract::{self as c, Operation as O};

impl ApiRequest {
    pub fn add_customer(new: &c::NewCustomer) -> ApiRequest {
        ApiRequest::new(O::AddCustomer, &[]).json(new)
    }

    pub fn update_customer(id: &str, changes: &c::CustomerChanges) -> ApiRequest {
        ApiRequest::new(O::UpdateCustomer, &[id]).json(changes)
    }

    pub fn delete_customer(id: &str) -> ApiRequest {
        ApiRequest::new(O::DeleteCustomer, &[id])
    }

    pub fn regrade_contract(id: &str, months: u32) -> ApiRequest {
        ApiRequest::new(O::RegradeContract, &[id]).json(&c::ContractChange {
            contract_months: months,
        })
    }

    pub fn upgrade_plan(id: &str, plan: c::Plan) -> ApiRequest {
        ApiRequest::new(O::UpgradePlan, &[id]).json(&c::PlanChange { plan })
    }

    pub fn add_customer_number(customer: &str, number: &str) -> ApiRequest {
        ApiRequest::new(O::AddCustomerNumber, &[customer]).json(&c::NewNumber {
            number: number.to_string(),
        })
    }

    pub fn allocate_number(customer: &str, number_id: &str, user_id: &str) -> ApiRequest {
        ApiRequest::new(O::AllocateNumber, &[customer, number_id]).json(&c::Allocation {
            user_id: user_id.to_string(),
        })
    }

    pub fn deallocate_number(customer: &str, number_id: &str) -> ApiRequest {
        ApiRequest::new(O::DeallocateNumber, &[customer, number_id])
    }

    pub fn add_blocked_number(customer: &str, new: &c::NewBlockedNumber) -> ApiRequest {
        ApiRequest::new(O::AddBlockedNumber, &[customer]).json(new)
    }

    pub fn update_blocked_number(
        customer: &str,
        id: &str,
        changes: &c::BlockedNumberChanges,
    ) -> ApiRequest {
        ApiRequest::new(O::UpdateBlockedNumber, &[customer, id]).json(changes)
    }

    pub fn delete_blocked_number(customer: &str, id: &str) -> ApiRequest {
        ApiRequest::new(O::DeleteBlockedNumber, &[customer, id])
    }

    pub fn add_user(customer: &str, new: &c::NewUser) -> ApiRequest {
        ApiRequest::new(O::AddCustomerUser, &[customer]).json(new)
    }

    pub fn update_user(customer: &str, user: &str, changes: &c::UserChanges) -> ApiRequest {
        ApiRequest::new(O::UpdateCustomerUser, &[customer, user]).json(changes)
    }

    pub fn delete_user(customer: &str, user: &str) -> ApiRequest {
        ApiRequest::new(O::DeleteCustomerUser, &[customer, user])
    }

    pub fn resend_activation(customer: &str, user: &str) -> ApiRequest {
        ApiRequest::new(O::ResendActivation, &[customer, user])
    }

    pub fn request_password_reset(customer: &str, user: &str) -> ApiRequest {
        ApiRequest::new(O::RequestPasswordReset, &[customer, user])
    }

    pub fn update_call_settings(customer: &str, user: &str, s: &c::CallSettings) -> ApiRequest {
        ApiRequest::new(O::UpdateCallSettings, &[customer, user]).json(s)
    }

    pub fn update_schedule_settings(
        customer: &str,
        user: &str,
        s: &c::ScheduleSettings,
    ) -> ApiRequest {
        ApiRequest::new(O::UpdateScheduleSettings, &[customer, user]).json(s)
    }

    pub fn add_order(customer: &str, new: &c::NewOrder) -> ApiRequest {
        ApiRequest::new(O::AddCustomerOrder, &[customer]).json(new)
    }

    pub fn add_device(customer: &str, user: &str, new: &c::NewDevice) -> ApiRequest {
        ApiRequest::new(O::AddUserDevice, &[customer, user]).json(new)
    }

    pub fn add_partner_user(new: &c::NewPartnerUser) -> ApiRequest {
        ApiRequest::new(O::AddPartnerUser, &[]).json(new)
    }

    pub fn update_partner_user(id: &str, changes: &c::PartnerUserChanges) -> ApiRequest {
        ApiRequest::new(O::UpdatePartnerUser, &[id]).json(changes)
    }

    pub fn delete_partner_user(id: &str) -> ApiRequest {
        ApiRequest::new(O::DeletePartnerUser, &[id])
    }
}
