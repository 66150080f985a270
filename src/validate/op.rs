//! The validated operation of one row: what its checker found it asks for, in the values the
//! field rules made of its cells (a phone number with its 0 back, a postcode spaced, an action
//! parsed), so nothing after validation reads a cell or runs a rule again.
//!
//! An operation still names what it refers to as the row wrote it (a customer's Ref, company
//! name or id; a user's email): which row of the job or entity of the account that is, is the
//! plan's and the engine's to say.

use crate::contract as c;
use crate::schema::{
    Action, BlockedAction, CustomerAction, NumberAction, PartnerUserAction, UserAction,
};

/// How a Customers row names the customer it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerSel {
    /// Customer ID, as given.
    Id(String),
    /// Company Name, when no id is given: a Ref or name of the job, or the account's.
    Name(String),
}

/// How a row names a user or partner user it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonSel {
    /// User ID or Partner User ID, as given.
    Id(String),
    Email(String),
}

/// What a valid row asks for. `customer: String` is the row's Customer cell (a Ref, a
/// company name or an id), `user: String` its User Email.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    AddCustomer {
        reference: Option<String>,
        new: c::NewCustomer,
    },
    UpdateCustomer {
        customer: CustomerSel,
        changes: c::CustomerChanges,
    },
    DeleteCustomer {
        customer: CustomerSel,
    },
    RegradeContract {
        customer: CustomerSel,
        months: u32,
    },
    UpgradePlan {
        customer: CustomerSel,
    },
    AddUser {
        customer: String,
        new: c::NewUser,
    },
    UpdateUser {
        customer: String,
        user: PersonSel,
        changes: c::UserChanges,
    },
    DeleteUser {
        customer: String,
        user: PersonSel,
    },
    ResendActivation {
        customer: String,
        user: PersonSel,
    },
    ResetPassword {
        customer: String,
        user: PersonSel,
    },
    AddNumber {
        customer: String,
        number: String,
        allocate_to: Option<String>,
    },
    AllocateNumber {
        customer: String,
        number: String,
        user: String,
    },
    DeallocateNumber {
        customer: String,
        number: String,
    },
    AddBlocked {
        customer: String,
        new: c::NewBlockedNumber,
    },
    UpdateBlocked {
        customer: String,
        number: String,
        changes: c::BlockedNumberChanges,
    },
    DeleteBlocked {
        customer: String,
        number: String,
    },
    AddDevice {
        customer: String,
        user: String,
        product: String,
        mac: String,
    },
    /// One line of an order: rows sharing an Order Ref (and, as validation made sure, a
    /// customer and a delivery address) are one order.
    OrderLine {
        customer: String,
        /// The Order Ref of an Orders row; none for a Migration row's device, which joins the
        /// one order of its customer.
        order_ref: Option<String>,
        /// (product as written: an id or "Brand Model", quantity)
        item: (String, u32),
        delivery: Option<c::Address>,
    },
    UserSettings {
        customer: String,
        user: String,
        call: Option<c::CallSettings>,
        schedule: Option<c::ScheduleSettings>,
    },
    AddPartnerUser {
        new: c::NewPartnerUser,
    },
    UpdatePartnerUser {
        partner_user: PersonSel,
        changes: c::PartnerUserChanges,
    },
    DeletePartnerUser {
        partner_user: PersonSel,
    },
}

impl Op {
    /// The sheet action this operation is.
    pub fn action(&self) -> Action {
        match self {
            Op::AddCustomer { .. } => Action::Customer(CustomerAction::Add),
            Op::UpdateCustomer { .. } => Action::Customer(CustomerAction::Update),
            Op::DeleteCustomer { .. } => Action::Customer(CustomerAction::Delete),
            Op::RegradeContract { .. } => Action::Customer(CustomerAction::Regrade),
            Op::UpgradePlan { .. } => Action::Customer(CustomerAction::Upgrade),
            Op::AddUser { .. } => Action::User(UserAction::Add),
            Op::UpdateUser { .. } => Action::User(UserAction::Update),
            Op::DeleteUser { .. } => Action::User(UserAction::Delete),
            Op::ResendActivation { .. } => Action::User(UserAction::ResendActivation),
            Op::ResetPassword { .. } => Action::User(UserAction::ResetPassword),
            Op::AddNumber { .. } => Action::Number(NumberAction::Add),
            Op::AllocateNumber { .. } => Action::Number(NumberAction::Allocate),
            Op::DeallocateNumber { .. } => Action::Number(NumberAction::Deallocate),
            Op::AddBlocked { .. } => Action::Blocked(BlockedAction::Add),
            Op::UpdateBlocked { .. } => Action::Blocked(BlockedAction::Update),
            Op::DeleteBlocked { .. } => Action::Blocked(BlockedAction::Delete),
            Op::AddDevice { .. } => Action::AddDevice,
            Op::OrderLine { .. } => Action::AddOrder,
            Op::UserSettings { .. } => Action::SetUserSettings,
            Op::AddPartnerUser { .. } => Action::PartnerUser(PartnerUserAction::Add),
            Op::UpdatePartnerUser { .. } => Action::PartnerUser(PartnerUserAction::Update),
            Op::DeletePartnerUser { .. } => Action::PartnerUser(PartnerUserAction::Delete),
        }
    }
}

/// What a valid row asks for: one operation, or, for a Migration row, a person's several.
// Nearly every row is `One`, held in place: boxing it would cost an allocation a row.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    One(Op),
    Person(Box<Person>),
}

/// A Migration row: a person, with their customer, user, number and device, each when the
/// row has it. The plan makes each a task of the row.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// How the row's tasks name its customer: its Customer Ref, else its Company Name.
    pub customer: String,
    /// The customer's Customer Ref, when it has one.
    pub reference: Option<String>,
    /// The customer as the first row naming it gives it: the first valid row of a customer
    /// makes it.
    pub new_customer: c::NewCustomer,
    pub user: Option<c::NewUser>,
    /// The person's number, added to the customer's pool and allocated to their user.
    pub number: Option<String>,
    pub device: Option<PersonDevice>,
}

/// A Migration row's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonDevice {
    /// A phone the person has: assigned to their user by its MAC.
    Assigned { product: String, mac: String },
    /// A phone to order: one of the customer's one order, delivered to its address.
    Ordered { product: String },
}
