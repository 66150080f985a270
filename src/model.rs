//! The model: the types every stage of a job shares, from the plan to the results. A row's
//! identity (and, for a row that stands for several tasks, which [`Task`] a journal row is),
//! where it stands ([`RowState`]), the work it stands for ([`Work`], with what it
//! refers to, [`Sel`], and what an undo acts on, [`Target`]), the kinds of id a row records
//! ([`IdKind`]) and the ids and before-image it records ([`RowIds`]), and where a job stands
//! ([`JobState`]). The plan makes them, the journal keeps them, the engine moves them on and
//! the results read them: each of those imports this module, and none of them imports another
//! for its types. Every type here is written to the journal under today's names, so journals
//! written before this module existed read unchanged; a value that does not parse is an
//! error, never a default.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::ToSql;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract as c;
use crate::schema::{
    Action, BlockedAction, CustomerAction, NumberAction, PartnerUserAction, UserAction,
};

/// A kind of id a row records: what it made, found or acted on. The serialised names are the
/// keys of a row's ids in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdKind {
    Customer,
    User,
    Number,
    Blocked,
    Device,
    Order,
    PartnerUser,
}

impl IdKind {
    pub const ALL: [IdKind; 7] = [
        IdKind::Customer,
        IdKind::User,
        IdKind::Number,
        IdKind::Blocked,
        IdKind::Order,
        IdKind::Device,
        IdKind::PartnerUser,
    ];

    /// The kind of id the answer to `op` gives, for a create (every operation is named: a new
    /// one must say whether it makes something).
    pub fn made_by(op: c::Operation) -> Option<IdKind> {
        use c::Operation as O;
        match op {
            O::AddCustomer => Some(IdKind::Customer),
            O::AddCustomerUser => Some(IdKind::User),
            O::AddCustomerNumber => Some(IdKind::Number),
            O::AddBlockedNumber => Some(IdKind::Blocked),
            O::AddCustomerOrder => Some(IdKind::Order),
            O::AddUserDevice => Some(IdKind::Device),
            O::AddPartnerUser => Some(IdKind::PartnerUser),
            O::LookupAddresses
            | O::GetJwt
            | O::ListCustomers
            | O::GetCustomer
            | O::UpdateCustomer
            | O::DeleteCustomer
            | O::RegradeContract
            | O::UpgradePlan
            | O::ListCustomerNumbers
            | O::GetCustomerNumber
            | O::AllocateNumber
            | O::DeallocateNumber
            | O::ListBlockedNumbers
            | O::GetBlockedNumber
            | O::UpdateBlockedNumber
            | O::DeleteBlockedNumber
            | O::ListCustomerUsers
            | O::UpdateCustomerUser
            | O::DeleteCustomerUser
            | O::ResendActivation
            | O::RequestPasswordReset
            | O::UpdateCallSettings
            | O::UpdateScheduleSettings
            | O::ListCustomerOrders
            | O::ListAreaCodes
            | O::ListAvailableNumbers
            | O::ListPartnerOrders
            | O::ListProducts
            | O::GetPartnerSettings
            | O::UpdatePartnerSettings
            | O::ListUserPermissions
            | O::UpdateUserPermissions
            | O::GetStats
            | O::ListPartnerUsers
            | O::UpdatePartnerUser
            | O::DeletePartnerUser => None,
        }
    }

    /// The results' column for ids of this kind: named apart from the templates' own Customer
    /// ID and User ID columns, which hold what the user gave. [`IdKind::ALL`] orders them.
    pub fn result_header(self) -> &'static str {
        match self {
            IdKind::Customer => "Customer ID (result)",
            IdKind::User => "User ID (result)",
            IdKind::Number => "Number ID (result)",
            IdKind::Blocked => "Blocked Number ID (result)",
            IdKind::Device => "Device ID (result)",
            IdKind::Order => "Order ID (result)",
            IdKind::PartnerUser => "Partner User ID (result)",
        }
    }

    /// The entity in words: "partner user".
    pub fn noun(self) -> &'static str {
        match self {
            IdKind::Customer => "customer",
            IdKind::User => "user",
            IdKind::Number => "number",
            IdKind::Blocked => "blocked number",
            IdKind::Device => "device",
            IdKind::Order => "order",
            IdKind::PartnerUser => "partner user",
        }
    }
}

/// The ids a row has made, found or acted on, and the before-image of what it changed: one
/// JSON object in the journal (`{"customer": "cus_1", "user": "usr_2", "before": {…}}`). A key
/// that is not one of these is an error when read back, so a misspelt kind cannot compile,
/// and a journal that holds one is said to be unreadable rather than read as "no id".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowIds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order: Option<String>,
    #[serde(
        default,
        rename = "partnerUser",
        skip_serializing_if = "Option::is_none"
    )]
    partner_user: Option<String>,
    /// What the entity the row changed or deleted held before: the fields its write set (or,
    /// for a deletion, the whole entity), journaled with the write's intent and taken only
    /// once. `plbulk undo` puts them back; a row without it was journaled before plbulk kept
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Map<String, Value>>,
}

impl RowIds {
    fn slot(&self, k: IdKind) -> &Option<String> {
        match k {
            IdKind::Customer => &self.customer,
            IdKind::User => &self.user,
            IdKind::Number => &self.number,
            IdKind::Blocked => &self.blocked,
            IdKind::Device => &self.device,
            IdKind::Order => &self.order,
            IdKind::PartnerUser => &self.partner_user,
        }
    }

    fn slot_mut(&mut self, k: IdKind) -> &mut Option<String> {
        match k {
            IdKind::Customer => &mut self.customer,
            IdKind::User => &mut self.user,
            IdKind::Number => &mut self.number,
            IdKind::Blocked => &mut self.blocked,
            IdKind::Device => &mut self.device,
            IdKind::Order => &mut self.order,
            IdKind::PartnerUser => &mut self.partner_user,
        }
    }

    pub fn get(&self, k: IdKind) -> Option<&str> {
        self.slot(k).as_deref()
    }

    pub fn set(&mut self, k: IdKind, id: &str) {
        *self.slot_mut(k) = Some(id.to_string());
    }

    /// The ids, in [`IdKind::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (IdKind, &str)> {
        IdKind::ALL
            .into_iter()
            .filter_map(|k| Some((k, self.get(k)?)))
    }

    pub fn is_empty(&self) -> bool {
        self.before.is_none() && self.iter().next().is_none()
    }
}

/// Where a row stands. A row is final in every state but `Pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowState {
    Pending,
    Succeeded,
    AlreadyExisted,
    /// An update whose values the account held already (seen by the pre-flight): not sent.
    Unchanged,
    Failed,
    Skipped,
    NeedsReview,
    Invalid,
}

impl RowState {
    pub const ALL: [RowState; 8] = [
        RowState::Succeeded,
        RowState::AlreadyExisted,
        RowState::Unchanged,
        RowState::Failed,
        RowState::Skipped,
        RowState::NeedsReview,
        RowState::Invalid,
        RowState::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Succeeded => "succeeded",
            RowState::AlreadyExisted => "already-existed",
            RowState::Unchanged => "unchanged",
            RowState::Failed => "failed",
            RowState::Skipped => "skipped",
            RowState::NeedsReview => "needs-review",
            RowState::Invalid => "invalid",
        }
    }

    /// As the results sheet and the summaries say it.
    pub fn label(self) -> &'static str {
        match self {
            RowState::Pending => "not run",
            RowState::Succeeded => "succeeded",
            RowState::AlreadyExisted => "already existed",
            RowState::Unchanged => "no change",
            RowState::Failed => "failed",
            RowState::Skipped => "skipped",
            RowState::NeedsReview => "needs review",
            RowState::Invalid => "invalid",
        }
    }

    pub fn parse(s: &str) -> Option<RowState> {
        RowState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        self != RowState::Pending
    }

    /// What the row stood for now exists: dependants may go on.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            RowState::Succeeded | RowState::AlreadyExisted | RowState::Unchanged
        )
    }

    /// How strongly a task's state speaks for its source row, highest first: a row is not
    /// done while any task is to run; of the rest, what asks the partner to act (look at the
    /// account, fix a cell) comes before what needs nothing; and a row that made anything
    /// says so over one that found everything there.
    fn weight(self) -> u8 {
        match self {
            RowState::Pending => 7,
            RowState::NeedsReview => 6,
            RowState::Failed => 5,
            RowState::Skipped => 4,
            RowState::Invalid => 3,
            RowState::Succeeded => 2,
            RowState::AlreadyExisted => 1,
            RowState::Unchanged => 0,
        }
    }

    /// A source row's state from its tasks' states: the one that speaks most strongly for it
    /// (see `RowState::weight`). A row of one task is in its task's state. None for no tasks.
    pub fn fold(states: impl IntoIterator<Item = RowState>) -> Option<RowState> {
        states.into_iter().max_by_key(|s| s.weight())
    }
}

/// One of the tasks a source row stands for, when it stands for several (a person's row of a
/// migration: their customer, their user, their number, their device or order). Each is a
/// row of the journal with its own state, dependencies and outcome; the results fold them
/// back onto their source row, a column per task. A row that stands for one task (every
/// row of today's sheets) names none: its journal row is the source row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    Customer,
    User,
    Number,
    Device,
    Order,
}

impl Task {
    /// In the order a row's tasks run and the results show them.
    pub const ALL: [Task; 5] = [
        Task::Customer,
        Task::User,
        Task::Number,
        Task::Device,
        Task::Order,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::Customer => "customer",
            Task::User => "user",
            Task::Number => "number",
            Task::Device => "device",
            Task::Order => "order",
        }
    }

    pub fn parse(s: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// As a results column and a Detail name it: "Customer".
    pub fn label(self) -> &'static str {
        match self {
            Task::Customer => "Customer",
            Task::User => "User",
            Task::Number => "Number",
            Task::Device => "Device",
            Task::Order => "Order",
        }
    }

    /// The results' column for this task's outcome, marked as plbulk's so a results sheet
    /// read back as input leaves it out.
    pub fn result_header(self) -> String {
        format!("{} (outcome)", self.label())
    }
}

/// Where a row of the journal came from, as messages say it: "Users row 7", and for one of
/// several tasks of its row, "Migration row 7's user".
pub fn place(sheet: &str, row_no: u32, task: Option<Task>) -> String {
    match task {
        None => format!("{sheet} row {row_no}"),
        Some(t) => format!("{sheet} row {row_no}'s {}", t.as_str()),
    }
}

impl ToSql for Task {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Task {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Task::parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown task {s:?}").into()))
    }
}

/// Where the job as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Created or running; a process that died leaves it so.
    Running,
    /// Stopped by the user; resumable.
    Interrupted,
    /// Every row has a final outcome.
    Finished,
    /// Given up by the user (`plbulk abandon`): its pending rows are never run, and it can be
    /// undone as far as it went.
    Abandoned,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Interrupted => "interrupted",
            JobState::Finished => "finished",
            JobState::Abandoned => "abandoned",
        }
    }

    /// Whether the job can still run: a resume or a run of its input goes on with it.
    pub fn is_open(self) -> bool {
        match self {
            JobState::Running | JobState::Interrupted => true,
            JobState::Finished | JobState::Abandoned => false,
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        [
            JobState::Running,
            JobState::Interrupted,
            JobState::Finished,
            JobState::Abandoned,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
    }
}

// States are written to and read from the journal through these, once: a value that does not
// parse is an error (the journal names the row), never a default.

impl ToSql for RowState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for RowState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        RowState::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown row state {s:?}").into()))
    }
}

impl ToSql for JobState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JobState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        JobState::parse(s)
            .ok_or_else(|| FromSqlError::Other(format!("unknown job state {s:?}").into()))
    }
}

/// A sheet of the job's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetRec {
    pub idx: u32,
    pub file: String,
    pub sheet: String,
    pub kind: String,
    pub headers: Vec<String>,
}

/// A row as planned, before it runs.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub sheet: u32,
    pub row_no: u32,
    /// Which of its source row's tasks this is, when the row stands for several.
    pub task: Option<Task>,
    pub cells: Vec<String>,
    /// The work; None for an invalid row.
    pub work: Option<Work>,
    pub deps: Vec<i64>,
    /// For the later rows of a multi-row order: the row that carries the order.
    pub lead: Option<i64>,
    pub state: RowState,
    pub detail: Option<String>,
}

/// What a row refers to: another row of this job, or something in the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sel {
    /// The entity another row of the job made or found (by row id).
    Row(i64),
    /// An id the user gave.
    Id(String),
    /// A customer id or company name, for the engine to resolve (id first).
    Existing(String),
    /// A natural key: a user's or partner user's email.
    Email(String),
}

impl Sel {
    pub fn row(&self) -> Option<i64> {
        match self {
            Sel::Row(r) => Some(*r),
            Sel::Id(_) | Sel::Existing(_) | Sel::Email(_) => None,
        }
    }
}

/// What an undo acts on: an entity a job made or changed, by its ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "of", rename_all = "kebab-case")]
pub enum Target {
    Customer { id: String },
    User { customer: String, id: String },
    Blocked { customer: String, id: String },
    PartnerUser { id: String },
}

impl Target {
    /// The entity in words, for the results: "user usr_12 of customer cus_3".
    pub fn describe(&self) -> String {
        match self {
            Target::Customer { id } => format!("customer {id}"),
            Target::User { customer, id } => format!("user {id} of customer {customer}"),
            Target::Blocked { customer, id } => {
                format!("blocked number {id} of customer {customer}")
            }
            Target::PartnerUser { id } => format!("partner user {id}"),
        }
    }
}

/// The work a row stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Work {
    AddCustomer {
        new: c::NewCustomer,
    },
    UpdateCustomer {
        customer: Sel,
        changes: c::CustomerChanges,
    },
    DeleteCustomer {
        customer: Sel,
    },
    RegradeContract {
        customer: Sel,
        months: u32,
    },
    UpgradePlan {
        customer: Sel,
    },
    AddUser {
        customer: Sel,
        new: c::NewUser,
    },
    UpdateUser {
        customer: Sel,
        user: Sel,
        changes: c::UserChanges,
    },
    DeleteUser {
        customer: Sel,
        user: Sel,
    },
    ResendActivation {
        customer: Sel,
        user: Sel,
    },
    ResetPassword {
        customer: Sel,
        user: Sel,
    },
    AddNumber {
        customer: Sel,
        number: String,
        allocate_to: Option<Sel>,
    },
    AllocateNumber {
        customer: Sel,
        number: String,
        user: Sel,
    },
    DeallocateNumber {
        customer: Sel,
        number: String,
    },
    AddBlocked {
        customer: Sel,
        new: c::NewBlockedNumber,
    },
    UpdateBlocked {
        customer: Sel,
        number: String,
        changes: c::BlockedNumberChanges,
    },
    DeleteBlocked {
        customer: Sel,
        number: String,
    },
    AddDevice {
        customer: Sel,
        user: Sel,
        product: String,
        mac: String,
    },
    AddOrder {
        customer: Sel,
        /// (product as written: an id or "Brand Model", quantity)
        items: Vec<(String, u32)>,
        delivery: Option<c::Address>,
        /// The Order Ref as written. One equal to the id of an order the customer has (an
        /// exported order read back) means that order: it is never placed again.
        #[serde(default)]
        order_ref: Option<String>,
    },
    UserSettings {
        customer: Sel,
        user: Sel,
        call: Option<c::CallSettings>,
        schedule: Option<c::ScheduleSettings>,
    },
    AddPartnerUser {
        new: c::NewPartnerUser,
    },
    UpdatePartnerUser {
        partner_user: Sel,
        changes: c::PartnerUserChanges,
    },
    DeletePartnerUser {
        partner_user: Sel,
    },
    /// Undo: remove what a job made, unless its fields differ from what the job wrote (it was
    /// changed since), or `force`.
    Remove {
        target: Target,
        wrote: Map<String, Value>,
        force: bool,
    },
    /// Undo: put the fields a job changed back to `before`, unless they differ from what the
    /// job wrote, or `force`.
    Restore {
        target: Target,
        wrote: Map<String, Value>,
        before: Map<String, Value>,
        force: bool,
    },
    /// Undo: a number's allocation back as it was.
    Reallocate(Reallocation),
}

/// A number's allocation put back as it was (to `before`, or to no one), unless it is no
/// longer allocated as the job left it (to `wrote`), or `force`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reallocation {
    pub customer: String,
    pub number: String,
    pub wrote: Option<String>,
    pub before: Option<String>,
    pub force: bool,
    /// Said with the outcome: what of the row undo cannot reverse.
    #[serde(default)]
    pub note: Option<String>,
}

/// What a [`Work`] is, from [`Work::split`].
#[derive(Debug, Clone, Copy)]
pub enum Split<'a> {
    Action(Action),
    Undo(UndoStep<'a>),
}

/// An undo's step, borrowed from its [`Work`].
#[derive(Debug, Clone, Copy)]
pub enum UndoStep<'a> {
    Remove {
        target: &'a Target,
        wrote: &'a Map<String, Value>,
        force: bool,
    },
    Restore {
        target: &'a Target,
        wrote: &'a Map<String, Value>,
        before: &'a Map<String, Value>,
        force: bool,
    },
    Reallocate(&'a Reallocation),
}

impl Work {
    /// The write calls this work makes, in order (a number added and allocated makes two).
    pub fn operations(&self) -> Vec<c::Operation> {
        use c::Operation as O;
        let step = match self.split() {
            Split::Action(a) => {
                let all = crate::actions::spec(a).operations.iter().copied();
                // A call the table lists is left out only where the row gives nothing for it.
                return match self {
                    Work::AddNumber { allocate_to, .. } => all
                        .filter(|o| *o != O::AllocateNumber || allocate_to.is_some())
                        .collect(),
                    Work::UserSettings { call, schedule, .. } => all
                        .filter(|o| {
                            (*o != O::UpdateCallSettings || call.is_some())
                                && (*o != O::UpdateScheduleSettings || schedule.is_some())
                        })
                        .collect(),
                    Work::AddCustomer { .. }
                    | Work::UpdateCustomer { .. }
                    | Work::DeleteCustomer { .. }
                    | Work::RegradeContract { .. }
                    | Work::UpgradePlan { .. }
                    | Work::AddUser { .. }
                    | Work::UpdateUser { .. }
                    | Work::DeleteUser { .. }
                    | Work::ResendActivation { .. }
                    | Work::ResetPassword { .. }
                    | Work::AllocateNumber { .. }
                    | Work::DeallocateNumber { .. }
                    | Work::AddBlocked { .. }
                    | Work::UpdateBlocked { .. }
                    | Work::DeleteBlocked { .. }
                    | Work::AddDevice { .. }
                    | Work::AddOrder { .. }
                    | Work::AddPartnerUser { .. }
                    | Work::UpdatePartnerUser { .. }
                    | Work::DeletePartnerUser { .. }
                    | Work::Remove { .. }
                    | Work::Restore { .. }
                    | Work::Reallocate(_) => all.collect(),
                };
            }
            Split::Undo(step) => step,
        };
        match step {
            UndoStep::Remove { target, .. } => vec![match target {
                Target::Customer { .. } => O::DeleteCustomer,
                Target::User { .. } => O::DeleteCustomerUser,
                Target::Blocked { .. } => O::DeleteBlockedNumber,
                Target::PartnerUser { .. } => O::DeletePartnerUser,
            }],
            UndoStep::Restore { target, before, .. } => match target {
                Target::Customer { .. } => {
                    let mut v = Vec::new();
                    if before.keys().any(|k| k != c::CONTRACT_MONTHS_FIELD) {
                        v.push(O::UpdateCustomer);
                    }
                    if before.contains_key(c::CONTRACT_MONTHS_FIELD) {
                        v.push(O::RegradeContract);
                    }
                    v
                }
                Target::User { .. } => vec![O::UpdateCustomerUser],
                Target::Blocked { .. } => vec![O::UpdateBlockedNumber],
                Target::PartnerUser { .. } => vec![O::UpdatePartnerUser],
            },
            UndoStep::Reallocate(Reallocation { before, .. }) => vec![match before {
                Some(_) => O::AllocateNumber,
                None => O::DeallocateNumber,
            }],
        }
    }

    /// The customer this work is about, if any.
    pub fn customer(&self) -> Option<&Sel> {
        match self {
            Work::UpdateCustomer { customer, .. }
            | Work::DeleteCustomer { customer }
            | Work::RegradeContract { customer, .. }
            | Work::UpgradePlan { customer }
            | Work::AddUser { customer, .. }
            | Work::UpdateUser { customer, .. }
            | Work::DeleteUser { customer, .. }
            | Work::ResendActivation { customer, .. }
            | Work::ResetPassword { customer, .. }
            | Work::AddNumber { customer, .. }
            | Work::AllocateNumber { customer, .. }
            | Work::DeallocateNumber { customer, .. }
            | Work::AddBlocked { customer, .. }
            | Work::UpdateBlocked { customer, .. }
            | Work::DeleteBlocked { customer, .. }
            | Work::AddDevice { customer, .. }
            | Work::AddOrder { customer, .. }
            | Work::UserSettings { customer, .. } => Some(customer),
            Work::AddCustomer { .. }
            | Work::AddPartnerUser { .. }
            | Work::UpdatePartnerUser { .. }
            | Work::DeletePartnerUser { .. }
            | Work::Remove { .. }
            | Work::Restore { .. }
            | Work::Reallocate(_) => None,
        }
    }

    /// What the work is: a sheet row's action, as the table of actions knows it, or an undo's
    /// step, which no sheet holds. The one place every variant is told apart: the rest match on
    /// what this returns.
    pub fn split(&self) -> Split<'_> {
        use {
            BlockedAction as B, CustomerAction as C, NumberAction as N, PartnerUserAction as P,
            UserAction as U,
        };
        Split::Action(match self {
            Work::AddCustomer { .. } => Action::Customer(C::Add),
            Work::UpdateCustomer { .. } => Action::Customer(C::Update),
            Work::DeleteCustomer { .. } => Action::Customer(C::Delete),
            Work::RegradeContract { .. } => Action::Customer(C::Regrade),
            Work::UpgradePlan { .. } => Action::Customer(C::Upgrade),
            Work::AddUser { .. } => Action::User(U::Add),
            Work::UpdateUser { .. } => Action::User(U::Update),
            Work::DeleteUser { .. } => Action::User(U::Delete),
            Work::ResendActivation { .. } => Action::User(U::ResendActivation),
            Work::ResetPassword { .. } => Action::User(U::ResetPassword),
            Work::AddNumber { .. } => Action::Number(N::Add),
            Work::AllocateNumber { .. } => Action::Number(N::Allocate),
            Work::DeallocateNumber { .. } => Action::Number(N::Deallocate),
            Work::AddBlocked { .. } => Action::Blocked(B::Add),
            Work::UpdateBlocked { .. } => Action::Blocked(B::Update),
            Work::DeleteBlocked { .. } => Action::Blocked(B::Delete),
            Work::AddDevice { .. } => Action::AddDevice,
            Work::AddOrder { .. } => Action::AddOrder,
            Work::UserSettings { .. } => Action::SetUserSettings,
            Work::AddPartnerUser { .. } => Action::PartnerUser(P::Add),
            Work::UpdatePartnerUser { .. } => Action::PartnerUser(P::Update),
            Work::DeletePartnerUser { .. } => Action::PartnerUser(P::Delete),
            Work::Remove {
                target,
                wrote,
                force,
            } => {
                return Split::Undo(UndoStep::Remove {
                    target,
                    wrote,
                    force: *force,
                })
            }
            Work::Restore {
                target,
                wrote,
                before,
                force,
            } => {
                return Split::Undo(UndoStep::Restore {
                    target,
                    wrote,
                    before,
                    force: *force,
                })
            }
            Work::Reallocate(r) => return Split::Undo(UndoStep::Reallocate(r)),
        })
    }

    /// The row's action; None for an undo's step.
    pub fn action(&self) -> Option<Action> {
        match self.split() {
            Split::Action(a) => Some(a),
            Split::Undo(_) => None,
        }
    }

    /// The undo's step; None for a sheet row's action.
    pub fn undo_step(&self) -> Option<UndoStep<'_>> {
        match self.split() {
            Split::Action(_) => None,
            Split::Undo(step) => Some(step),
        }
    }

    /// The kind of id of what this work makes (or, for an entity that existed, adopts): the
    /// key its row records it under. No two rows of a job may own one entity.
    pub fn made_key(&self) -> Option<IdKind> {
        crate::actions::spec(self.action()?).makes
    }

    /// Whether the work is a Customers row's change to a customer (which names it by Customer
    /// ID or Company Name, not by a Customer cell).
    pub fn is_about_customer(&self) -> bool {
        self.action()
            .is_some_and(|a| crate::actions::spec(a).about_customer)
    }

    /// Whether the work removes something: deletions wait until everything else is done.
    pub fn is_delete(&self) -> bool {
        match self.split() {
            Split::Action(a) => crate::actions::spec(a).deletes,
            Split::Undo(step) => matches!(step, UndoStep::Remove { .. }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20: a source row's outcome from its tasks': not done while one is to run; what
    /// asks the partner to act before what needs nothing; made before found.
    #[test]
    fn a_rows_state_folds_its_tasks_states() {
        use RowState as S;
        let fold = |s: &[RowState]| RowState::fold(s.iter().copied());
        assert_eq!(fold(&[]), None);
        for one in RowState::ALL {
            assert_eq!(fold(&[one]), Some(one), "a row of one task is its task");
        }
        assert_eq!(
            fold(&[S::Succeeded, S::Pending, S::Failed]),
            Some(S::Pending)
        );
        assert_eq!(fold(&[S::Failed, S::NeedsReview]), Some(S::NeedsReview));
        assert_eq!(
            fold(&[S::Succeeded, S::Failed, S::Skipped]),
            Some(S::Failed)
        );
        assert_eq!(fold(&[S::AlreadyExisted, S::Skipped]), Some(S::Skipped));
        assert_eq!(fold(&[S::AlreadyExisted, S::Succeeded]), Some(S::Succeeded));
        assert_eq!(
            fold(&[S::Unchanged, S::AlreadyExisted]),
            Some(S::AlreadyExisted)
        );
        // Every state has its own weight: no two fold as one.
        let mut weights: Vec<u8> = RowState::ALL.iter().map(|s| s.weight()).collect();
        weights.sort_unstable();
        weights.dedup();
        assert_eq!(weights.len(), RowState::ALL.len());
    }

    #[test]
    fn a_task_reads_back_as_written_and_is_placed_by_name() {
        for t in Task::ALL {
            assert_eq!(Task::parse(t.as_str()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert_eq!(Task::parse("Customer"), None);
        assert_eq!(place("Users", 7, None), "Users row 7");
        assert_eq!(
            place("Migration", 7, Some(Task::User)),
            "Migration row 7's user"
        );
        assert!(crate::schema::is_result_header("User (outcome)"));
    }
}
