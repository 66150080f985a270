//! The sheets a partner fills in: which kinds of row there are, their columns, what each column
//! takes and how headers are recognised.
//!
//! One table serves the readers (matching headers), validation (what is required, what values
//! are allowed), the template generator (drop-downs, input messages, example rows) and the
//! reports (column letters and headers as the user wrote them), so a column is described once.
//! The example values name customer `EXAMPLE`, so real rows never match the example row, which
//! is ignored on import while it is left unchanged.

use std::fmt;

/// A kind of row: one per sheet of the onboarding workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Customers,
    Users,
    Numbers,
    BlockedNumbers,
    Devices,
    Orders,
    UserSettings,
    PartnerUsers,
    /// One row per person, as another provider's export has them: the row stands for its
    /// customer (once per customer), its user, its number and its device or order.
    Migration,
}

/// Whether a column must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    /// Required for some actions or plans; the help text says when.
    Sometimes,
    Optional,
}

/// Every field any sheet has. A sheet's columns are a subset, in the template's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Action,
    Ref,
    CustomerId,
    CompanyName,
    ContactName,
    Email,
    Phone,
    Plan,
    ContractMonths,
    Line1,
    Line2,
    Town,
    County,
    Postcode,
    Customer,
    UserId,
    FirstName,
    LastName,
    UserType,
    Number,
    UserEmail,
    Direction,
    Note,
    Product,
    Mac,
    OrderRef,
    Quantity,
    DeliveryLine1,
    DeliveryLine2,
    DeliveryTown,
    DeliveryCounty,
    DeliveryPostcode,
    RejectAnonymous,
    CallWaiting,
    Voicemail,
    OpenDays,
    OpenTime,
    CloseTime,
    Redirect,
    PartnerUserId,
    Role,
}

impl Field {
    /// How many fields there are: a row's cells can be held in an array indexed by field.
    pub const COUNT: usize = Field::Role as usize + 1;
}

#[derive(Debug)]
pub struct Column {
    pub field: Field,
    pub header: &'static str,
    /// Other headers people write for this column (matched the same loose way).
    pub aliases: &'static [&'static str],
    pub need: Need,
    /// Allowed values, for the drop-down; empty for free text.
    pub values: &'static [&'static str],
    /// What goes here, for the header's input message and the Instructions sheet.
    pub help: &'static str,
    /// The template's example row.
    pub example: &'static str,
}

const fn col(
    field: Field,
    header: &'static str,
    aliases: &'static [&'static str],
    need: Need,
    values: &'static [&'static str],
    help: &'static str,
    example: &'static str,
) -> Column {
    Column {
        field,
        header,
        aliases,
        need,
        values,
        help,
        example,
    }
}

use Field as F;
use Need::{Optional as O, Required as R, Sometimes as S};

const YES_NO: &[&str] = &["yes", "no"];
const CUSTOMER_HELP: &str =
    "The customer: a Ref from the Customers sheet, a customer id, or the exact company name.";

/// The Customer column every sheet but Customers and Partner Users has.
const CUSTOMER: Column = col(
    F::Customer,
    "Customer",
    &["Company", "Company Name", "Customer Ref", "Customer ID"],
    R,
    &[],
    CUSTOMER_HELP,
    "EXAMPLE",
);

const CUSTOMERS: &[Column] = &[
    col(F::Action, "Action", &[], O, CustomerAction::NAMES, "add (blank means add), update, delete, regrade (change Contract Months) or upgrade (Hardware only to Standard).", "add"),
    col(F::Ref, "Ref", &["Reference", "Customer Ref", "Your Ref"], O, &[], "Your own short name for this customer, to refer to it from the other sheets. Must be unique in the job.", "EXAMPLE"),
    col(F::CustomerId, "Customer ID", &["ID", "PL Customer ID"], S, &[], "The PL+ customer id. Required for update, delete, regrade and upgrade unless Company Name finds the customer.", ""),
    col(F::CompanyName, "Company Name", &["Company", "Customer", "Customer Name", "Business Name", "Organisation", "Organization"], S, &[], "The customer's company name. Required for add.", "Acme Plumbing Ltd"),
    col(F::ContactName, "Contact Name", &["Contact", "Main Contact"], O, &[], "Main contact at the customer.", "Priya Shah"),
    col(F::Email, "Email", &["E-mail", "Email Address", "Contact Email"], S, &[], "Contact email. Required when Plan is pro (Standard).", "priya@acme-plumbing.example"),
    col(F::Phone, "Phone", &["Telephone", "Tel", "Mobile", "Phone Number", "Contact Number"], O, &[], "Contact phone number: UK numbers in any usual form, or +country code.", "0161 496 0123"),
    col(F::Plan, "Plan", &["Package", "Product Plan"], S, &["pro", "hardware"], "pro (Standard) or hardware (Hardware only). Required for add.", "pro"),
    col(F::ContractMonths, "Contract Months", &["Contract", "Contract Length", "Months", "Term"], S, &["1", "12", "24", "36"], "1, 12, 24 or 36. Required for add and regrade.", "12"),
    col(F::Line1, "Address Line 1", &["Address", "Address 1", "Street", "Line 1"], S, &[], "First line of the address. Required when Plan is hardware.", "Unit 1"),
    col(F::Line2, "Address Line 2", &["Address 2", "Line 2"], O, &[], "Second line of the address.", "12 Piccadilly"),
    col(F::Town, "Town", &["City", "Town/City", "Post Town"], S, &[], "Town. Required with an address.", "Manchester"),
    col(F::County, "County", &["Region", "State"], O, &[], "County.", "Greater Manchester"),
    col(F::Postcode, "Postcode", &["Post Code", "Postal Code", "Zip", "Zip Code"], S, &[], "UK postcode. Required with an address.", "M1 1AE"),
];

const USERS: &[Column] = &[
    col(
        F::Action,
        "Action",
        &[],
        O,
        UserAction::NAMES,
        "add (blank means add), update, delete, resend-activation or reset-password.",
        "add",
    ),
    CUSTOMER,
    col(
        F::UserId,
        "User ID",
        &["ID", "PL User ID"],
        O,
        &[],
        "The PL+ user id, for update and delete when Email does not find the user.",
        "",
    ),
    col(
        F::FirstName,
        "First Name",
        &["First", "Forename", "Given Name"],
        S,
        &[],
        "Required for add.",
        "Tom",
    ),
    col(
        F::LastName,
        "Last Name",
        &["Last", "Surname", "Family Name"],
        S,
        &[],
        "Required for add.",
        "Baker",
    ),
    col(
        F::Email,
        "Email",
        &["E-mail", "Email Address", "User Email"],
        R,
        &[],
        "The user's email: it identifies the user within the customer.",
        "tom@acme-plumbing.example",
    ),
    col(
        F::UserType,
        "Type",
        &["User Type", "Role", "Access"],
        O,
        &["admin", "standard"],
        "admin or standard (blank means standard).",
        "standard",
    ),
];

const NUMBERS: &[Column] = &[
    col(
        F::Action,
        "Action",
        &[],
        O,
        NumberAction::NAMES,
        "add (to the customer's pool; blank means add), allocate (to a user) or deallocate.",
        "add",
    ),
    CUSTOMER,
    col(
        F::Number,
        "Number",
        &["Phone Number", "DDI", "Telephone Number", "Number To Add"],
        R,
        &[],
        "A UK number in any usual form (0161 496 0000, +44 161 496 0000).",
        "0161 496 0001",
    ),
    col(
        F::UserEmail,
        "User Email",
        &["User", "Allocate To", "Email", "E-mail"],
        S,
        &[],
        "Required for allocate. With add, the number is also allocated to this user.",
        "tom@acme-plumbing.example",
    ),
];

const BLOCKED: &[Column] = &[
    col(
        F::Action,
        "Action",
        &[],
        O,
        BlockedAction::NAMES,
        "add (blank means add), update or delete.",
        "add",
    ),
    CUSTOMER,
    col(
        F::Number,
        "Number",
        &["Blocked Number", "Phone Number", "Prefix"],
        R,
        &[],
        "A full number or a prefix (0870 blocks every 0870 number).",
        "0870",
    ),
    col(
        F::Direction,
        "Direction",
        &["Block", "Calls"],
        O,
        &["inbound", "outbound", "both"],
        "inbound, outbound or both (blank means both).",
        "both",
    ),
    col(
        F::Note,
        "Note",
        &["Notes", "Reason", "Comment"],
        O,
        &[],
        "Why it is blocked (200 characters at most).",
        "Premium rate",
    ),
];

const DEVICES: &[Column] = &[
    CUSTOMER,
    col(
        F::UserEmail,
        "User Email",
        &["User", "Email", "E-mail"],
        R,
        &[],
        "The user the device is for.",
        "tom@acme-plumbing.example",
    ),
    col(
        F::Product,
        "Product",
        &["Model", "Device", "Handset", "Product ID"],
        R,
        &[],
        "A product id, or brand and model as in the catalogue (Yealink T54W).",
        "Yealink T54W",
    ),
    col(
        F::Mac,
        "MAC Address",
        &["MAC", "MAC Addr", "Hardware Address"],
        R,
        &[],
        "The device's MAC address, with or without separators (80:5E:C0:12:34:56).",
        "80:5E:C0:12:34:56",
    ),
];

const ORDERS: &[Column] = &[
    col(
        F::OrderRef,
        "Order Ref",
        &["Order", "Order Reference", "PO", "PO Number"],
        R,
        &[],
        "Rows with the same Order Ref are one order with several items.",
        "EXAMPLE-1",
    ),
    CUSTOMER,
    col(
        F::Product,
        "Product",
        &["Model", "Device", "Handset", "Product ID"],
        R,
        &[],
        "A product id, or brand and model as in the catalogue (Yealink T54W).",
        "Yealink T54W",
    ),
    col(
        F::Quantity,
        "Quantity",
        &["Qty", "Count", "Units"],
        R,
        &[],
        "1 to 100.",
        "2",
    ),
    col(
        F::DeliveryLine1,
        "Delivery Address Line 1",
        &["Delivery Address", "Delivery Line 1", "Ship To"],
        O,
        &[],
        "Blank: deliver to the customer's address.",
        "",
    ),
    col(
        F::DeliveryLine2,
        "Delivery Address Line 2",
        &["Delivery Line 2"],
        O,
        &[],
        "Second line of the delivery address.",
        "",
    ),
    col(
        F::DeliveryTown,
        "Delivery Town",
        &["Delivery City"],
        S,
        &[],
        "Required with a delivery address.",
        "",
    ),
    col(
        F::DeliveryCounty,
        "Delivery County",
        &[],
        O,
        &[],
        "County of the delivery address.",
        "",
    ),
    col(
        F::DeliveryPostcode,
        "Delivery Postcode",
        &["Delivery Post Code", "Delivery Zip"],
        S,
        &[],
        "Required with a delivery address.",
        "",
    ),
];

const SETTINGS: &[Column] = &[
    CUSTOMER,
    col(
        F::UserEmail,
        "User Email",
        &["User", "Email", "E-mail"],
        R,
        &[],
        "The user whose settings these are.",
        "tom@acme-plumbing.example",
    ),
    col(
        F::RejectAnonymous,
        "Reject Anonymous",
        &["Block Anonymous", "Anonymous Call Rejection"],
        O,
        YES_NO,
        "yes or no; blank leaves it unchanged.",
        "yes",
    ),
    col(
        F::CallWaiting,
        "Call Waiting",
        &[],
        O,
        YES_NO,
        "yes or no; blank leaves it unchanged.",
        "no",
    ),
    col(
        F::Voicemail,
        "Voicemail",
        &["Voice Mail"],
        O,
        YES_NO,
        "yes or no; blank leaves it unchanged.",
        "yes",
    ),
    col(
        F::OpenDays,
        "Open Days",
        &["Days", "Opening Days"],
        O,
        &[],
        "Days the line is open: Mon-Fri, Mon,Wed,Fri, Mon-Sat. With Open Time and Close Time.",
        "Mon-Fri",
    ),
    col(
        F::OpenTime,
        "Open Time",
        &["Opens", "Opening Time", "Open"],
        S,
        &[],
        "24-hour time, like 09:00. Required with Open Days.",
        "09:00",
    ),
    col(
        F::CloseTime,
        "Close Time",
        &["Closes", "Closing Time", "Close"],
        S,
        &[],
        "24-hour time after Open Time, like 17:30. Required with Open Days.",
        "17:30",
    ),
    col(
        F::Redirect,
        "Out Of Hours Redirect",
        &["Out of Hours", "Redirect", "Divert To"],
        O,
        &[],
        "Number to send calls to outside the open hours.",
        "07700 900123",
    ),
];

const PARTNER_USERS: &[Column] = &[
    col(
        F::Action,
        "Action",
        &[],
        O,
        PartnerUserAction::NAMES,
        "add (blank means add), update or delete.",
        "add",
    ),
    col(
        F::PartnerUserId,
        "Partner User ID",
        &["ID", "User ID"],
        O,
        &[],
        "The PL+ partner user id, for update and delete when Email does not find the user.",
        "",
    ),
    col(
        F::FirstName,
        "First Name",
        &["First", "Forename", "Given Name"],
        S,
        &[],
        "Required for add.",
        "Sam",
    ),
    col(
        F::LastName,
        "Last Name",
        &["Last", "Surname", "Family Name"],
        S,
        &[],
        "Required for add.",
        "Patel",
    ),
    col(
        F::Email,
        "Email",
        &["E-mail", "Email Address"],
        R,
        &[],
        "The partner user's email: it identifies them.",
        "jane.doe@example.invalid",
    ),
    col(
        F::Role,
        "Role",
        &["Access", "Permission Level"],
        O,
        &[],
        "The partner user's role, as in the portal. Blank: none given.",
        "admin",
    ),
];

/// The Migration sheet: one row per person. Its company columns give the customer on the first
/// row naming it (by Customer Ref, or Company Name without one); later rows may leave them
/// blank, and must agree where they fill them.
const MIGRATION: &[Column] = &[
    col(F::Ref, "Customer Ref", &["Ref", "Account Ref", "Account Number", "Account No", "Account ID", "Customer Number"], O, &[], "Your own short name or account number for the customer. Rows with the same Customer Ref are one customer; without one, rows with the same Company Name are.", "EXAMPLE"),
    col(F::CompanyName, "Company Name", &["Company", "Customer", "Customer Name", "Account Name", "Account", "Business Name", "Organisation", "Organization"], S, &[], "The customer's company name. Required on the first row of each customer.", "Acme Plumbing Ltd"),
    col(F::ContactName, "Contact Name", &["Contact", "Main Contact", "Account Contact"], O, &[], "Main contact at the customer.", "Priya Shah"),
    col(F::Email, "Company Email", &["Contact Email", "Account Email", "Billing Email"], S, &[], "The customer's contact email. Required on the customer's first row when Plan is pro (Standard).", "priya@acme-plumbing.example"),
    col(F::Phone, "Company Phone", &["Contact Phone", "Account Phone", "Main Number", "Telephone"], O, &[], "The customer's contact phone number.", "0161 496 0123"),
    col(F::Plan, "Plan", &["Package", "Product Plan", "Tariff"], S, &["pro", "hardware"], "pro (Standard) or hardware (Hardware only). Required on the customer's first row.", "pro"),
    col(F::ContractMonths, "Contract Months", &["Contract", "Contract Length", "Months", "Term", "Term (months)"], S, &["1", "12", "24", "36"], "1, 12, 24 or 36. Required on the customer's first row.", "12"),
    col(F::Line1, "Address Line 1", &["Address", "Address 1", "Street", "Line 1", "Site Address"], S, &[], "First line of the customer's address. Required when Plan is hardware, and when a device is ordered (it is delivered there).", "Unit 1"),
    col(F::Line2, "Address Line 2", &["Address 2", "Line 2"], O, &[], "Second line of the address.", "12 Piccadilly"),
    col(F::Town, "Town", &["City", "Town/City", "Post Town"], S, &[], "Town. Required with an address.", "Manchester"),
    col(F::County, "County", &["Region", "State"], O, &[], "County.", "Greater Manchester"),
    col(F::Postcode, "Postcode", &["Post Code", "Postal Code", "Zip", "Zip Code"], S, &[], "UK postcode. Required with an address.", "M1 1AE"),
    col(F::FirstName, "First Name", &["First", "Forename", "Given Name"], S, &[], "The person's first name. Required with Last Name and User Email for a row with a user; a hardware-only customer's rows leave all three blank.", "Tom"),
    col(F::LastName, "Last Name", &["Last", "Surname", "Family Name"], S, &[], "The person's last name. Required with First Name and User Email for a row with a user.", "Baker"),
    col(F::UserEmail, "User Email", &["Email", "E-mail", "Email Address", "User E-mail", "Login"], S, &[], "The person's email: it identifies the user. Required with First Name and Last Name for a row with a user. Must not repeat.", "tom@acme-plumbing.example"),
    col(F::UserType, "User Type", &["Type", "Role", "Access", "User Role"], O, &["admin", "standard"], "admin or standard (blank means standard).", "standard"),
    col(F::Number, "Number", &["DDI", "Phone Number", "Direct Dial", "DID", "Telephone Number", "Direct Line"], O, &[], "The person's number: added to the customer's pool and allocated to the user. Must not repeat.", "0161 496 0001"),
    col(F::Product, "Device", &["Handset", "Phone", "Model", "Product", "Device Model", "Handset Model"], O, &[], "The person's phone: a product id, or brand and model as in the catalogue (Yealink T54W). With a MAC Address it is assigned to the user; without one it is ordered (one order per customer, delivered to its address).", "Yealink T54W"),
    col(F::Mac, "MAC Address", &["MAC", "MAC Addr", "Hardware Address", "Handset MAC", "Device MAC"], O, &[], "The MAC address of a phone the person has already. Blank: the Device is ordered. Must not repeat.", "80:5E:C0:12:34:56"),
];

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Customers,
        Kind::Users,
        Kind::Numbers,
        Kind::BlockedNumbers,
        Kind::Devices,
        Kind::Orders,
        Kind::UserSettings,
        Kind::PartnerUsers,
        Kind::Migration,
    ];

    /// The sheet's name in a workbook.
    pub fn sheet_name(self) -> &'static str {
        match self {
            Kind::Customers => "Customers",
            Kind::Users => "Users",
            Kind::Numbers => "Numbers",
            Kind::BlockedNumbers => "Blocked Numbers",
            Kind::Devices => "Devices",
            Kind::Orders => "Orders",
            Kind::UserSettings => "User Settings",
            Kind::PartnerUsers => "Partner Users",
            Kind::Migration => "Migration",
        }
    }

    /// The kind's name on the command line (`--kind`, `plbulk template`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Users => "users",
            Kind::Numbers => "numbers",
            Kind::BlockedNumbers => "blocked-numbers",
            Kind::Devices => "devices",
            Kind::Orders => "orders",
            Kind::UserSettings => "user-settings",
            Kind::PartnerUsers => "partner-users",
            Kind::Migration => "migration",
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::Customers => CUSTOMERS,
            Kind::Users => USERS,
            Kind::Numbers => NUMBERS,
            Kind::BlockedNumbers => BLOCKED,
            Kind::Devices => DEVICES,
            Kind::Orders => ORDERS,
            Kind::UserSettings => SETTINGS,
            Kind::PartnerUsers => PARTNER_USERS,
            Kind::Migration => MIGRATION,
        }
    }

    pub fn column(self, field: Field) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.field == field)
    }

    /// The kind whose sheet name (or CLI name) matches `name`, loosely.
    pub fn from_name(name: &str) -> Option<Kind> {
        let want = squash(name);
        Kind::ALL.into_iter().find(|k| {
            squash(k.sheet_name()) == want
                || squash(k.cli_name()) == want
                || (*k == Kind::BlockedNumbers && want == "blocked")
                || (*k == Kind::UserSettings && want == "settings")
        })
    }

    /// The column a header names, if any.
    pub fn match_header(self, header: &str) -> Option<&'static Column> {
        let h = squash(header);
        if h.is_empty() {
            return None;
        }
        let cols = self.columns();
        cols.iter().find(|c| squash(c.header) == h).or_else(|| {
            cols.iter()
                .find(|c| c.aliases.iter().any(|a| squash(a) == h))
        })
    }
}

/// Whether columns filling `fields` are one person per row, a Migration sheet: they name the
/// company, the person by name with something of their own (email, number or phone), and
/// something a Users sheet cannot hold: the customer's Plan or Contract Months, or a phone.
/// A users export with a DDI is of people in customers that exist (a Users sheet, its numbers
/// a Numbers sheet); a customers export's billing email or account manager alone is not a
/// person. The Migration sheet requires no one column and shares its headers with the
/// others, so without this a users or customers export could read as one.
pub fn is_one_person_a_row(fields: &[Field]) -> bool {
    let has = |fs: &[Field]| fs.iter().any(|f| fields.contains(f));
    has(&[Field::Ref, Field::CompanyName])
        && has(&[Field::FirstName, Field::LastName])
        && has(&[Field::UserEmail, Field::Number, Field::Product, Field::Mac])
        && has(&[
            Field::Plan,
            Field::ContractMonths,
            Field::Product,
            Field::Mac,
        ])
}

/// Every kind's name, as `name` gives it, for messages that list the choices.
pub fn kind_names(name: fn(Kind) -> &'static str) -> String {
    Kind::ALL
        .iter()
        .map(|k| name(*k))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sheet_name())
    }
}

/// A header as matching sees it: lower case, letters and digits only ("E-mail" → "email").
/// Columns plbulk adds to the sheets it writes back (results, to-fix): the outcome and its
/// detail, and the ids made or matched, which end in " (result)".
pub const OUTCOME_HEADERS: [&str; 5] = ["Outcome", "Detail", "HTTP Status", "Attempts", "Finished"];

/// Whether a header is one plbulk wrote, so that a results or to-fix sheet reads back as input
/// without warnings about those columns.
pub fn is_result_header(h: &str) -> bool {
    let h = h.trim();
    OUTCOME_HEADERS.iter().any(|o| o.eq_ignore_ascii_case(h))
        || h.ends_with(" (result)")
        || crate::model::Task::ALL
            .iter()
            .any(|t| t.result_header().eq_ignore_ascii_case(h))
}

pub fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The column letter Excel shows for a 0-based column index: 0 → A, 26 → AA.
pub fn column_letter(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// A sheet's actions: one enum per kind of row, written once here. The table feeds the
/// template's drop-down (`NAMES`), the validator's parsing and its message, and the plan, whose
/// matches on these enums have no catch-all: a new action is a compile error wherever it is not
/// yet handled.
pub trait SheetAction: Copy + 'static {
    /// Every action, the sheet's default (what a blank cell means) first.
    const ALL: &'static [Self];
    /// As the sheet spells them, in the same order.
    const NAMES: &'static [&'static str];

    fn name(self) -> &'static str;

    /// The action a cell names, exactly or loosely ("Reset Password" for reset-password); a
    /// blank cell is the default.
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Self::ALL.first().copied();
        }
        // Most cells spell an action exactly; the loose comparison is for the rest.
        let i = Self::NAMES
            .iter()
            .position(|a| a.eq_ignore_ascii_case(text))
            .or_else(|| Self::NAMES.iter().position(|a| loose_eq(a, text)))?;
        Some(Self::ALL[i])
    }
}

macro_rules! actions {
    ($( $(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum $name { $($variant),* }

            impl SheetAction for $name {
                const ALL: &'static [$name] = &[$($name::$variant),*];
                const NAMES: &'static [&'static str] = &[$($text),*];

                fn name(self) -> &'static str {
                    match self { $($name::$variant => $text),* }
                }
            }
        )*
    };
}

actions! {
    /// What a Customers row does.
    CustomerAction { Add => "add", Update => "update", Delete => "delete", Regrade => "regrade", Upgrade => "upgrade" }
    /// What a Users row does.
    UserAction { Add => "add", Update => "update", Delete => "delete", ResendActivation => "resend-activation", ResetPassword => "reset-password" }
    /// What a Numbers row does.
    NumberAction { Add => "add", Allocate => "allocate", Deallocate => "deallocate" }
    /// What a Blocked Numbers row does.
    BlockedAction { Add => "add", Update => "update", Delete => "delete" }
    /// What a Partner Users row does.
    PartnerUserAction { Add => "add", Update => "update", Delete => "delete" }
}

/// What a row does: its kind's action. Devices, Orders and User Settings rows each do one
/// thing, and their sheets have no Action column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Customer(CustomerAction),
    User(UserAction),
    Number(NumberAction),
    Blocked(BlockedAction),
    PartnerUser(PartnerUserAction),
    AddDevice,
    AddOrder,
    SetUserSettings,
}

impl Action {
    /// The actions a sheet of `kind` takes, as spelt, its default first.
    pub fn names(kind: Kind) -> &'static [&'static str] {
        match kind {
            Kind::Customers => CustomerAction::NAMES,
            Kind::Users => UserAction::NAMES,
            Kind::Numbers => NumberAction::NAMES,
            Kind::BlockedNumbers => BlockedAction::NAMES,
            Kind::PartnerUsers => PartnerUserAction::NAMES,
            Kind::Devices | Kind::Orders | Kind::UserSettings => &["add"],
            // A Migration row has no one action: it stands for several tasks.
            Kind::Migration => &[],
        }
    }

    /// The action of a row of `kind` whose Action cell says `text` (blank or absent: the
    /// default).
    pub fn parse(kind: Kind, text: &str) -> Option<Action> {
        Some(match kind {
            Kind::Customers => Action::Customer(CustomerAction::parse(text)?),
            Kind::Users => Action::User(UserAction::parse(text)?),
            Kind::Numbers => Action::Number(NumberAction::parse(text)?),
            Kind::BlockedNumbers => Action::Blocked(BlockedAction::parse(text)?),
            Kind::PartnerUsers => Action::PartnerUser(PartnerUserAction::parse(text)?),
            Kind::Devices => Action::AddDevice,
            Kind::Orders => Action::AddOrder,
            Kind::UserSettings => Action::SetUserSettings,
            Kind::Migration => return None,
        })
    }

    /// The action a blank Action cell means on a sheet of `kind`; none for a Migration row,
    /// which stands for several.
    pub fn default_of(kind: Kind) -> Option<Action> {
        Action::parse(kind, "")
    }
}

/// Equal ignoring case, spaces and punctuation ("Reset Password" = "reset-password"), without
/// allocating: it runs on every row.
fn loose_eq(a: &str, b: &str) -> bool {
    let mut x = a
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase);
    let mut y = b
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (p, q) if p != q => return false,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_named_person_with_a_company_and_plan_is_a_migration_row() {
        use Field as F;
        let migration = [
            F::CompanyName,
            F::FirstName,
            F::LastName,
            F::Plan,
            F::Number,
        ];
        assert!(is_one_person_a_row(&migration));
        // A customers export: its contact and billing email are not a person.
        let customers = [
            F::Ref,
            F::CompanyName,
            F::ContactName,
            F::UserEmail,
            F::Plan,
        ];
        assert!(!is_one_person_a_row(&customers));
        // Its account manager's name split is not a person either.
        let managed = [
            F::Ref,
            F::CompanyName,
            F::FirstName,
            F::LastName,
            F::Plan,
            F::Phone,
        ];
        assert!(!is_one_person_a_row(&managed));
        // A users export with DDIs: people in customers that already exist.
        let users = [F::Ref, F::FirstName, F::LastName, F::UserEmail, F::Number];
        assert!(!is_one_person_a_row(&users));
        // With their phones it is a migration, plan or none.
        let phones = [F::CompanyName, F::FirstName, F::UserEmail, F::Product];
        assert!(is_one_person_a_row(&phones));
    }

    #[test]
    fn letters_like_excel() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
        assert_eq!(column_letter(16383), "XFD");
    }

    #[test]
    fn headers_match_loosely_and_by_alias() {
        let k = Kind::Customers;
        assert_eq!(
            k.match_header("company_name").unwrap().field,
            Field::CompanyName
        );
        assert_eq!(
            k.match_header(" COMPANY ").unwrap().field,
            Field::CompanyName
        );
        assert_eq!(k.match_header("E-mail").unwrap().field, Field::Email);
        assert_eq!(k.match_header("Mobile").unwrap().field, Field::Phone);
        assert_eq!(Kind::Devices.match_header("MAC").unwrap().field, Field::Mac);
        assert!(k.match_header("Favourite colour").is_none());
    }

    #[test]
    fn no_two_columns_of_a_sheet_claim_the_same_header() {
        for k in Kind::ALL {
            let mut seen = std::collections::HashMap::new();
            for c in k.columns() {
                for h in std::iter::once(&c.header).chain(c.aliases) {
                    if let Some(prev) = seen.insert(squash(h), c.field).filter(|p| *p != c.field) {
                        // An alias may repeat only where an exact header wins first.
                        assert!(
                            k.columns().iter().any(|x| squash(x.header) == squash(h)),
                            "{k}: {h:?} is claimed by {prev:?} and {:?}",
                            c.field
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn sheet_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_name(k.sheet_name()), Some(k));
            assert_eq!(Kind::from_name(k.cli_name()), Some(k));
        }
        assert_eq!(
            Kind::from_name("blocked numbers"),
            Some(Kind::BlockedNumbers)
        );
    }
}
