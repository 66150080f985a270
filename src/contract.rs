//! The PhoneLine+ Partner API as plbulk understands it: every path, method, query parameter,
//! header and JSON field name the client sends and the sandbox serves.
//!
//! The public PL+ overview publishes the operations, the auth exchange and the rate limit; the
//! exact paths and field names sit behind the partner portal. Everything here that the overview
//! does not publish is a working assumption (see `../shared/api/CONTRACT.md`), and this is the
//! only module that spells those names out. The client and the sandbox both build on these types
//! and this table, so meeting the real reference is a change to this one file.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Published: the production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.phonelineplus.com/v1";

/// Published: 100 requests per minute per API key (the auth call assumed to count too).
pub const RATE_LIMIT_PER_MINUTE: u32 = 100;

/// Assumed: how far the server's clock (an order's `createdAt`) may be behind ours when an
/// order in doubt is matched to "an order of the same items created after the first attempt".
pub const CLOCK_SKEW_ALLOWANCE_MS: i64 = 60_000;

/// How far back an identical order (same customer, same items, same delivery postcode) counts as
/// "already placed" when a job is run again: long enough for a re-run after a partial failure,
/// short enough that next month's identical order is not mistaken for this one.
pub const REPEAT_ORDER_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// Assumed: the API matches emails and company names regardless of case and of spaces around
/// them ("Ann@Acme.example " is ann@acme.example). Whatever the engine looks for, the plan
/// orders by and the pre-flight warns of is compared in this one form.
pub fn natural_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Assumed: a field the API leaves out and one it gives as null mean the same, in an object
/// at any depth (an address without a county is one with `"county": null`). What the
/// pre-flight calls a change, and what undo calls changed since, compare values this way.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).all(|k| {
            same_value(
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            )
        }),
        _ => a == b,
    }
}

/// The status a successful call of `op` answers with (for the results: the body is what counts).
pub fn success_status(op: Operation) -> u16 {
    match op.method() {
        Method::Delete => 204,
        Method::Post if op.is_create() => 201,
        Method::Get | Method::Post | Method::Put => 200,
    }
}

/// Whether a success's answer is the contract's: JSON, by its content type and by parsing, or
/// nothing at all where the contract answers nothing (204). Assumed: the API labels its JSON
/// `application/json` (or a `+json` type). Anything else came from something in front of it,
/// or was cut short, and proves nothing.
pub fn is_contract_answer(
    op: Operation,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> bool {
    let json_type = content_type.is_some_and(|t| {
        let media = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        media == "application/json" || media.ends_with("+json")
    });
    if body.iter().all(u8::is_ascii_whitespace) {
        // Nothing is the answer only where the contract answers nothing: a proxy's empty
        // 204 to an update proves no update.
        return status == 204 && success_status(op) == 204 && (content_type.is_none() || json_type);
    }
    json_type && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// Every resource the API creates carries its `id`: all a create's answer is read for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub id: String,
}

pub const RETRY_AFTER_HEADER: &str = "retry-after";

/// Assumed: the paging query parameters and the largest page the server will give.
pub const PAGE_PARAM: &str = "page";
pub const PAGE_SIZE_PARAM: &str = "pageSize";
pub const MAX_PAGE_SIZE: u32 = 100;

/// Assumed: the filter parameters of Lookup Addresses and List Available Numbers.
pub const POSTCODE_PARAM: &str = "postcode";
pub const AREA_CODE_PARAM: &str = "areaCode";

/// Assumed: error codes the server puts in `error.code`.
pub mod codes {
    pub const MALFORMED: &str = "malformed_request";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const VALIDATION: &str = "validation_failed";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const SERVER: &str = "server_error";
    pub const UNAVAILABLE: &str = "service_unavailable";
}

/// HTTP methods the contract uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Whether sending the request twice leaves the account as sending it once. POST is the
    /// only method the contract uses for creates, and creates are what is dangerous to repeat.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }
}

macro_rules! operations {
    ($( $variant:ident => $name:literal, $method:ident, $path:literal; )*) => {
        /// Every operation in the PL+ overview, with its method and path template. Path
        /// parameters are written `{name}`, which is also axum's route syntax.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation { $($variant),* }

        impl Operation {
            pub const ALL: &'static [Operation] = &[$(Operation::$variant),*];

            /// The operation's name in the PL+ overview, for messages and results.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$variant => $name),* }
            }

            pub fn method(self) -> Method {
                match self { $(Operation::$variant => Method::$method),* }
            }

            pub fn template(self) -> &'static str {
                match self { $(Operation::$variant => $path),* }
            }
        }
    };
}

operations! {
    LookupAddresses => "Lookup Addresses", Get, "/addresses";
    GetJwt => "Get JWT", Post, "/auth";
    ListCustomers => "List Customers", Get, "/customers";
    AddCustomer => "Add Customer", Post, "/customers";
    GetCustomer => "Get Customer", Get, "/customers/{customerId}";
    UpdateCustomer => "Update Customer", Put, "/customers/{customerId}";
    DeleteCustomer => "Delete Customer", Delete, "/customers/{customerId}";
    RegradeContract => "Regrade Customer Contract", Put, "/customers/{customerId}/contract";
    UpgradePlan => "Upgrade Customer Plan", Put, "/customers/{customerId}/plan";
    ListCustomerNumbers => "List Customer Numbers", Get, "/customers/{customerId}/numbers";
    AddCustomerNumber => "Add Customer Number", Post, "/customers/{customerId}/numbers";
    GetCustomerNumber => "Get Customer Number", Get, "/customers/{customerId}/numbers/{numberId}";
    AllocateNumber => "Allocate Customer Number", Put, "/customers/{customerId}/numbers/{numberId}/allocation";
    DeallocateNumber => "Deallocate Customer Number", Delete, "/customers/{customerId}/numbers/{numberId}/allocation";
    ListBlockedNumbers => "Get all Blocked Numbers", Get, "/customers/{customerId}/blocked-numbers";
    AddBlockedNumber => "Add a Blocked Number", Post, "/customers/{customerId}/blocked-numbers";
    GetBlockedNumber => "Get a Blocked Number by ID", Get, "/customers/{customerId}/blocked-numbers/{blockedId}";
    UpdateBlockedNumber => "Update a Blocked Number by ID", Put, "/customers/{customerId}/blocked-numbers/{blockedId}";
    DeleteBlockedNumber => "Delete a Blocked Number by ID", Delete, "/customers/{customerId}/blocked-numbers/{blockedId}";
    ListCustomerUsers => "List Customer Users", Get, "/customers/{customerId}/users";
    AddCustomerUser => "Add Customer User", Post, "/customers/{customerId}/users";
    UpdateCustomerUser => "Update Customer User", Put, "/customers/{customerId}/users/{userId}";
    DeleteCustomerUser => "Delete Customer User", Delete, "/customers/{customerId}/users/{userId}";
    ResendActivation => "Resend User Activation Email", Get, "/customers/{customerId}/users/{userId}/activation-email";
    RequestPasswordReset => "Request Password Reset", Post, "/customers/{customerId}/users/{userId}/password-reset";
    UpdateCallSettings => "Update Call Settings", Put, "/customers/{customerId}/users/{userId}/call-settings";
    UpdateScheduleSettings => "Update Schedule Settings", Put, "/customers/{customerId}/users/{userId}/schedule-settings";
    ListCustomerOrders => "List Customer Orders", Get, "/customers/{customerId}/orders";
    AddCustomerOrder => "Add Customer Order", Post, "/customers/{customerId}/orders";
    AddUserDevice => "Add Customer User Device", Post, "/customers/{customerId}/users/{userId}/devices";
    ListAreaCodes => "List Area Codes", Get, "/numbers/area-codes";
    ListAvailableNumbers => "List Available Numbers", Get, "/numbers/available";
    ListPartnerOrders => "List Orders for Partner", Get, "/orders";
    ListProducts => "List Products", Get, "/products";
    GetPartnerSettings => "Get Partner Settings", Get, "/partner/settings";
    UpdatePartnerSettings => "Update Partner Settings", Put, "/partner/settings";
    ListUserPermissions => "List User Permissions", Get, "/partner/user-permissions";
    UpdateUserPermissions => "Update User Permissions", Put, "/partner/user-permissions";
    GetStats => "Get Stats", Get, "/stats";
    ListPartnerUsers => "List Partner Users", Get, "/partner/users";
    AddPartnerUser => "Add Partner User", Post, "/partner/users";
    UpdatePartnerUser => "Update Partner User", Put, "/partner/users/{partnerUserId}";
    DeletePartnerUser => "Delete Partner User", Delete, "/partner/users/{partnerUserId}";
}

impl Operation {
    /// Whether a request whose answer was lost may simply be sent again: its method is
    /// idempotent, and it does not reach a person (an activation email or a password reset
    /// sent twice arrives twice, whatever the method says).
    pub fn is_repeatable(self) -> bool {
        self.method().is_idempotent()
            && !self.is_create()
            && !matches!(
                self,
                Operation::ResendActivation | Operation::RequestPasswordReset
            )
    }

    /// Whether the request can change the account (or reach a person): every method but GET,
    /// the activation email (a GET, as published), and not the token exchange. A failure
    /// answer to one of these is no proof that nothing happened: a gateway answers 502 or 504
    /// while the backend carries on.
    pub fn is_write(self) -> bool {
        match self {
            Operation::GetJwt => false,
            Operation::ResendActivation => true,
            other => other.method() != Method::Get,
        }
    }

    /// The operation a request's method and path are for, matched against the templates
    /// (`{…}` stands for one path segment).
    pub fn route(method: &str, path: &str) -> Option<Operation> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        Operation::ALL.iter().copied().find(|op| {
            let t: Vec<&str> = op.template().split('/').collect();
            op.method().as_str() == method
                && t.len() == segments.len()
                && t.iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
    }

    /// Creates are the operations whose repetition makes a second entity.
    pub fn is_create(self) -> bool {
        matches!(
            self,
            Operation::AddCustomer
                | Operation::AddCustomerNumber
                | Operation::AddBlockedNumber
                | Operation::AddCustomerUser
                | Operation::AddCustomerOrder
                | Operation::AddUserDevice
                | Operation::AddPartnerUser
        )
    }

    /// The concrete path: each `{…}` in the template is replaced, in order, by the next id,
    /// percent-encoded so an id can never change the path's shape.
    pub fn path(self, ids: &[&str]) -> String {
        let template = self.template();
        let mut out = String::with_capacity(template.len() + 32);
        let mut ids = ids.iter();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .unwrap_or(rest.len() - 1);
            let id = ids
                .next()
                .unwrap_or_else(|| panic!("{} needs more path ids than were given", self.name()));
            encode_segment(id, &mut out);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        debug_assert!(
            ids.next().is_none(),
            "{} was given too many ids",
            self.name()
        );
        out
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn encode_segment(id: &str, out: &mut String) {
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Auth (published)

#[derive(Serialize, Deserialize)]
pub struct AuthRequest {
    #[serde(rename = "keyID")]
    pub key_id: String,
    pub secret: String,
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
pub struct AuthResponse {
    pub access_token: String,
    /// Unix seconds.
    pub expires: i64,
}

impl fmt::Debug for AuthResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthResponse")
            .field("access_token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and lists

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub page: u32,
    pub page_size: u32,
    pub total: u64,
}

// ---------------------------------------------------------------------------------------------
// Resources

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// "Standard" in the portal.
    Pro,
    /// "Hardware only" in the portal.
    Hardware,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Pro => "pro",
            Plan::Hardware => "hardware",
        }
    }
}

/// Published: the contract lengths a customer may have.
pub const CONTRACT_MONTHS: [u32; 4] = [1, 12, 24, 36];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub town: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub county: Option<String>,
    pub postcode: String,
}

/// An address from Lookup Addresses: a postal address and its UPRN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookedUpAddress {
    #[serde(flatten)]
    pub address: Address,
    pub uprn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub company_name: String,
    #[serde(default)]
    pub contact_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub plan: Plan,
    pub contract_months: u32,
    #[serde(default)]
    pub address: Option<Address>,
    pub created_at: String,
}

/// Body of Add Customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCustomer {
    pub company_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub plan: Option<Plan>,
    pub contract_months: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Body of Update Customer: only the fields to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// The JSON field of a customer's contract length: changed by Regrade Contract, not Update
/// Customer.
pub const CONTRACT_MONTHS_FIELD: &str = "contractMonths";

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractChange {
    pub contract_months: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanChange {
    pub plan: Plan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    Admin,
    Standard,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub customer_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(rename = "type")]
    pub user_type: UserType,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(rename = "type", default = "default_user_type")]
    pub user_type: UserType,
}

fn default_user_type() -> UserType {
    UserType::Standard
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
}

/// Answer of Resend User Activation Email and Request Password Reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailSent {
    pub user_id: String,
    pub email: String,
    pub sent: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_anonymous: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_waiting: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<bool>,
}

/// Day names as the schedule uses them, Monday first.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSettings {
    pub days: Vec<String>,
    pub open: String,
    pub close: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_hours_redirect: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Number {
    pub id: String,
    pub number: String,
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNumber {
    pub number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    pub user_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
    Both,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Both => "both",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedNumber {
    pub id: String,
    pub number: String,
    pub direction: Direction,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewBlockedNumber {
    pub number: String,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn default_direction() -> Direction {
    Direction::Both
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedNumberChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Received,
    Dispatched,
    Delivered,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub delivery_address: Address,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    pub items: Vec<OrderItem>,
    /// Absent: the customer's own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: String,
    pub brand: String,
    pub model: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub product_id: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDevice {
    pub product_id: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AreaCode {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableNumber {
    pub number: String,
    pub area_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUser {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewPartnerUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    /// The contract lists a partner user's role but does not require one to add them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerUserChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Partner settings: an open object whose PUT merges the keys given.
pub type PartnerSettings = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub id: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionSetting {
    pub id: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionsUpdate {
    pub permissions: Vec<PermissionSetting>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub customers: u64,
    pub users: u64,
    pub numbers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harmless_requests_are_repeatable() {
        assert!(Operation::UpdateCustomer.is_repeatable());
        assert!(Operation::DeleteCustomerUser.is_repeatable());
        assert!(!Operation::AddCustomer.is_repeatable());
        // A GET, but it sends an email to a person.
        assert!(!Operation::ResendActivation.is_repeatable());
        assert!(!Operation::RequestPasswordReset.is_repeatable());
    }

    #[test]
    fn a_request_is_matched_to_its_operation() {
        assert_eq!(
            Operation::route("PUT", "/customers/cus_1/numbers/num_2/allocation"),
            Some(Operation::AllocateNumber)
        );
        assert_eq!(
            Operation::route("DELETE", "/customers/cus_1/numbers/num_2/allocation"),
            Some(Operation::DeallocateNumber)
        );
        assert_eq!(
            Operation::route("POST", "/customers"),
            Some(Operation::AddCustomer)
        );
        assert_eq!(
            Operation::route("GET", "/customers/"),
            Some(Operation::ListCustomers)
        );
        assert_eq!(Operation::route("POST", "/customers/cus_1"), None);
        assert_eq!(Operation::route("GET", "/nowhere"), None);
    }

    #[test]
    fn writes_are_what_can_change_the_account() {
        assert!(Operation::AddCustomer.is_write());
        assert!(Operation::DeleteCustomerUser.is_write());
        assert!(Operation::ResendActivation.is_write());
        assert!(!Operation::ListCustomers.is_write());
        assert!(!Operation::GetJwt.is_write());
    }

    #[test]
    fn path_fills_ids_in_order_and_encodes_them() {
        assert_eq!(
            Operation::AllocateNumber.path(&["cus_1", "num 2/x"]),
            "/customers/cus_1/numbers/num%202%2Fx/allocation"
        );
        assert_eq!(Operation::ListCustomers.path(&[]), "/customers");
    }

    #[test]
    fn every_operation_has_a_unique_method_and_path() {
        let mut seen = std::collections::HashSet::new();
        for op in Operation::ALL {
            assert!(seen.insert((op.method(), op.template())), "{op} repeats");
        }
        assert_eq!(Operation::ALL.len(), 43);
    }

    #[test]
    fn field_names_are_the_assumed_ones() {
        let c = NewCustomer {
            company_name: "Acme".into(),
            plan: Some(Plan::Hardware),
            contract_months: Some(12),
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["companyName"], "Acme");
        assert_eq!(v["plan"], "hardware");
        assert_eq!(v["contractMonths"], 12);
        let a = serde_json::to_value(AuthRequest {
            key_id: "k".into(),
            secret: "s".into(),
        })
        .unwrap();
        assert_eq!(a, serde_json::json!({"keyID": "k", "secret": "s"}));
    }

    #[test]
    fn auth_debug_hides_the_secret_and_token() {
        let a = AuthRequest {
            key_id: "k".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        let r = AuthResponse {
            access_token: "eyJ.abc".into(),
            expires: 1,
        };
        assert!(!format!("{r:?}").contains("eyJ"));
    }
}
