//! The online pre-flight: what only the account knows, checked with paced List calls before any
//! write, as findings in the same shape (and the same report) as the offline checks.
//!
//! Referenced customers must exist (and a company name must name only one); numbers to add must
//! be in the available pool, or already in their customer; products must be in the catalogue;
//! delivery postcodes must be found by Lookup Addresses. What already exists (a customer, a user
//! email, a blocked number) is a warning that says what `--existing` will do with it. Each
//! collection is listed once, through the job's [`Lookups`], so that the matching is the
//! engine's own and the engine starts with what was listed here; only customers already in the
//! account are listed into.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use std::sync::Arc;

use crate::client::ApiError;
use crate::contract::{natural_key, same_value};
use crate::engine::Lookups;
use crate::findings::{Finding, Severity};
use crate::model::{Sel, Target, Work};
use crate::plan::{Inputs, Plan};
use crate::schema::{Field, Kind};

/// A field an update row would change: the account's value now, and the row's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The row's index in the plan.
    pub row: usize,
    /// "customer cus_12", "user usr_3 of customer cus_12", …
    pub entity: String,
    /// The field as the sheet's column names it ("Contact Name").
    pub field: String,
    pub now: String,
    pub after: String,
}

/// What the pre-flight found: findings, each with the index of its row in the plan, and what
/// each update row would change.
#[derive(Debug, Default)]
pub struct Checked {
    pub findings: Vec<(usize, Finding)>,
    /// Field by field, in plan order.
    pub changes: Vec<Change>,
    /// Update rows whose every value the account holds already: they need not be sent.
    pub unchanged: Vec<usize>,
}

impl Checked {
    /// The pre-flight's effect on the plan: a row with an error is invalid, its finding its
    /// detail, and nothing is sent for it (with `--skip-invalid`; without, the run is refused
    /// before this); an update row that would change nothing ends as *no change*, unsent.
    pub fn apply(&self, plan: &mut Plan) {
        use crate::model::RowState;
        for (i, f) in &self.findings {
            if f.severity == Severity::Error {
                let row = &mut plan.rows[*i];
                row.state = RowState::Invalid;
                row.work = None;
                row.detail = Some(match &f.header {
                    Some(h) => format!("{h}: {}", f.message),
                    None => f.message.clone(),
                });
            }
        }
        for &i in &self.unchanged {
            let row = &mut plan.rows[i];
            if row.state == RowState::Pending {
                row.state = RowState::Unchanged;
                row.work = None;
                row.detail = Some("the account holds these values already: not sent".into());
            }
        }
    }
}

/// Runs every online check over the plan's valid rows.
///
/// `existing` is what the run will do with a create whose entity is there already, so the
/// warning says what will happen; None (a `validate --online`, which runs nothing) says each
/// choice.
pub async fn check(
    inputs: &Inputs,
    plan: &Plan,
    look: &Lookups,
    existing: Option<crate::engine::Existing>,
) -> Result<Checked, ApiError> {
    let mut p = Preflight {
        inputs,
        plan,
        look,
        existing,
        works: plan
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i, r.work.as_ref()?)))
            .collect(),
        existing_of: HashMap::new(),
        out: Vec::new(),
        checked: Checked::default(),
    };
    p.customers().await?;
    p.products().await?;
    p.numbers().await?;
    p.already_held().await?;
    p.postcodes().await?;
    p.devices();
    p.changes().await?;
    p.checked.findings = p.out;
    Ok(p.checked)
}

/// One pre-flight: the plan's valid rows, and what the checks have found so far.
struct Preflight<'a> {
    inputs: &'a Inputs,
    plan: &'a Plan,
    look: &'a Lookups,
    existing: Option<crate::engine::Existing>,
    /// (index in the plan, work) of every valid row.
    works: Vec<(usize, &'a Work)>,
    /// The account's customer each row is about, when it is already there.
    existing_of: HashMap<usize, String>,
    out: Vec<(usize, Finding)>,
    checked: Checked,
}

impl Preflight<'_> {
    /// What becomes of a create whose entity is already in the account, as the run will do it.
    fn what_existing_does(&self) -> &'static str {
        use crate::engine::Existing;
        match self.existing {
            Some(Existing::Skip) => {
                "this run (--existing skip) records the row as already existed and changes nothing"
            }
            Some(Existing::Update) => "this run (--existing update) changes it to match the row",
            Some(Existing::Fail) => "this run (--existing fail) fails the row",
            None => {
                "a run records the row as already existed (--existing skip, the default), changes it to match the row (--existing update), or fails it (--existing fail)"
            }
        }
    }

    /// A finding on the plan's row `i`, at the cell of `field`.
    fn say(&mut self, i: usize, field: Field, severity: Severity, message: String) {
        let row = &self.plan.rows[i];
        let sheet = &self.inputs.sheets[row.sheet as usize];
        // A Migration row names its customer by its own Ref or Company Name, and its user's
        // email in User Email (its Email column is the company's).
        let field = match field {
            Field::Customer | Field::CustomerId if sheet.kind == Kind::Migration => {
                if sheet.column_of(Field::Ref).is_some() {
                    Field::Ref
                } else {
                    Field::CompanyName
                }
            }
            field => field,
        };
        let col = sheet.column_of(field);
        let finding = Finding {
            severity,
            file: sheet.file.clone(),
            sheet: sheet.name.clone(),
            row: Some(row.row_no),
            column: col.map(|c| c as u32),
            header: col
                .and_then(|c| sheet.headers.get(c))
                .map(|h| Arc::from(h.as_str())),
            value: col
                .and_then(|c| row.cells.get(c))
                .map(|v| v.trim().to_string())
                .unwrap_or_default(),
            message,
        };
        self.out.push((i, finding));
    }

    /// Customers: every reference to the account's must find one, and every one the job would
    /// add that is there already is said.
    async fn customers(&mut self) -> Result<(), ApiError> {
        // Customers rows of the job (by row id) whose customer is already in the account.
        let mut added_existing: HashMap<i64, String> = HashMap::new();
        for (i, w) in self.works.clone() {
            if let Work::AddCustomer { new } = w {
                if let Some(cu) = self.look.find_customer(new, false, &|_| true).await? {
                    // Rows that name this Customers row are about that customer.
                    added_existing.insert(i as i64 + 1, cu.id.clone());
                    let does = self.what_existing_does();
                    self.say(
                        i,
                        Field::CompanyName,
                        Severity::Warning,
                        format!(
                            "this customer is already in the account ({}): {does}",
                            cu.id
                        ),
                    );
                }
                continue;
            }
            match w.customer() {
                Some(Sel::Row(r)) => {
                    if let Some(id) = added_existing.get(r) {
                        self.existing_of.insert(i, id.clone());
                    }
                }
                Some(sel @ (Sel::Existing(v) | Sel::Id(v))) => {
                    // Where the row names the customer: a Customers row by id or by name.
                    let field = match (w.is_about_customer(), sel) {
                        (false, _) => Field::Customer,
                        (true, Sel::Id(_)) => Field::CustomerId,
                        (true, _) => Field::CompanyName,
                    };
                    match self.look.customer_id(v).await? {
                        Ok(id) => {
                            self.existing_of.insert(i, id);
                        }
                        Err(why) => match self.maker_of(v) {
                            // Not there yet, but another job on the account is making it:
                            // the row waits for it rather than being refused.
                            Some(other) => self.say(i, field, Severity::Warning, format!(
                                "customer {v:?} is not in the account yet: {other} is making it, and this row will wait for it"
                            )),
                            None => self.say(i, field, Severity::Error, why),
                        },
                    }
                }
                Some(Sel::Email(_)) | None => {}
            }
        }
        Ok(())
    }

    /// A live job on the account that plans or is making the customer `name`.
    fn maker_of(&self, name: &str) -> Option<crate::journal::claims::Other> {
        let key = crate::journal::claims::Claim::Customer { company: name }.key();
        match self.look.claims()?.maker(&key) {
            Ok(other) => other,
            Err(e) => {
                tracing::warn!("claims: {e}");
                None
            }
        }
    }

    /// Products, matched as the engine will match them.
    async fn products(&mut self) -> Result<(), ApiError> {
        for (i, w) in self.works.clone() {
            let products: Vec<&String> = match w {
                Work::AddDevice { product, .. } => vec![product],
                Work::AddOrder { items, .. } => items.iter().map(|(p, _)| p).collect(),
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
                | Work::AddNumber { .. }
                | Work::AllocateNumber { .. }
                | Work::DeallocateNumber { .. }
                | Work::AddBlocked { .. }
                | Work::UpdateBlocked { .. }
                | Work::DeleteBlocked { .. }
                | Work::UserSettings { .. }
                | Work::AddPartnerUser { .. }
                | Work::UpdatePartnerUser { .. }
                | Work::DeletePartnerUser { .. }
                | Work::Remove { .. }
                | Work::Restore { .. }
                | Work::Reallocate(_) => continue,
            };
            for p in products {
                if let Err(why) = self.look.product_id(p).await? {
                    self.say(i, Field::Product, Severity::Error, why);
                }
            }
        }
        Ok(())
    }

    /// Numbers to add: available, or already in their (existing) customer.
    async fn numbers(&mut self) -> Result<(), ApiError> {
        let adds: Vec<(usize, &String)> = self
            .works
            .iter()
            .filter_map(|(i, w)| match w {
                Work::AddNumber { number, .. } => Some((*i, number)),
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
                | Work::UserSettings { .. }
                | Work::AddPartnerUser { .. }
                | Work::UpdatePartnerUser { .. }
                | Work::DeletePartnerUser { .. }
                | Work::Remove { .. }
                | Work::Restore { .. }
                | Work::Reallocate(_) => None,
            })
            .collect();
        if adds.is_empty() {
            return Ok(());
        }
        let client = self.look.client();
        let codes = client.list_area_codes().await?;
        let code_of = |e164: &str| -> Option<String> {
            let national = format!("0{}", e164.strip_prefix("+44")?);
            codes
                .iter()
                .filter(|a| national.starts_with(&a.code))
                .max_by_key(|a| a.code.len())
                .map(|a| a.code.clone())
        };
        let needed: BTreeSet<String> = adds.iter().filter_map(|(_, n)| code_of(n)).collect();
        let mut available: BTreeSet<String> = BTreeSet::new();
        for code in &needed {
            for a in client.list_available_numbers(code).await? {
                available.insert(a.number);
            }
        }
        let mut in_customer: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (i, number) in adds {
            if available.contains(number) {
                continue;
            }
            if let Some(cid) = self.existing_of.get(&i).cloned() {
                if !in_customer.contains_key(&cid) {
                    let ns = self.look.numbers(&cid, false).await?;
                    in_customer.insert(cid.clone(), ns.into_iter().map(|n| n.number).collect());
                }
                if in_customer[&cid].contains(number) {
                    let does = self.what_existing_does();
                    self.say(
                        i,
                        Field::Number,
                        Severity::Warning,
                        format!("{number} is already in customer {cid}: {does}"),
                    );
                    continue;
                }
            }
            let why = match code_of(number) {
                Some(code) => format!("{number} is not available to add (it is taken, or not one of PL+'s {code} numbers): choose a free number in the partner portal's available numbers"),
                None => format!("{number} is in no area code PL+ offers numbers in: check the number"),
            };
            self.say(i, Field::Number, Severity::Error, why);
        }
        Ok(())
    }

    /// What existing customers already hold: user emails and blocked numbers.
    async fn already_held(&mut self) -> Result<(), ApiError> {
        let mut users: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut blocked: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (i, w) in self.works.clone() {
            let Some(cid) = self.existing_of.get(&i).cloned() else {
                continue;
            };
            match w {
                Work::AddUser { new, .. } => {
                    if !users.contains_key(&cid) {
                        let all = self.look.users(&cid, false).await?;
                        users.insert(
                            cid.clone(),
                            all.into_iter().map(|u| natural_key(&u.email)).collect(),
                        );
                    }
                    if users[&cid].contains(&natural_key(&new.email)) {
                        let does = self.what_existing_does();
                        // A sheet with a company's email too has its user's in User Email.
                        let kind = self.inputs.sheets[self.plan.rows[i].sheet as usize].kind;
                        let email = if kind.columns().iter().any(|c| c.field == Field::UserEmail) {
                            Field::UserEmail
                        } else {
                            Field::Email
                        };
                        self.say(
                            i,
                            email,
                            Severity::Warning,
                            format!("customer {cid} already has a user with this email: {does}"),
                        );
                    }
                }
                Work::AddBlocked { new, .. } => {
                    if !blocked.contains_key(&cid) {
                        let all = self.look.blocked(&cid, false).await?;
                        blocked.insert(cid.clone(), all.into_iter().map(|b| b.number).collect());
                    }
                    if blocked[&cid].contains(&new.number) {
                        let does = self.what_existing_does();
                        self.say(
                            i,
                            Field::Number,
                            Severity::Warning,
                            format!(
                                "{} is already blocked for customer {cid}: {does}",
                                new.number
                            ),
                        );
                    }
                }
                Work::AddCustomer { .. }
                | Work::UpdateCustomer { .. }
                | Work::DeleteCustomer { .. }
                | Work::RegradeContract { .. }
                | Work::UpgradePlan { .. }
                | Work::UpdateUser { .. }
                | Work::DeleteUser { .. }
                | Work::ResendActivation { .. }
                | Work::ResetPassword { .. }
                | Work::AddNumber { .. }
                | Work::AllocateNumber { .. }
                | Work::DeallocateNumber { .. }
                | Work::UpdateBlocked { .. }
                | Work::DeleteBlocked { .. }
                | Work::AddDevice { .. }
                | Work::AddOrder { .. }
                | Work::UserSettings { .. }
                | Work::AddPartnerUser { .. }
                | Work::UpdatePartnerUser { .. }
                | Work::DeletePartnerUser { .. }
                | Work::Remove { .. }
                | Work::Restore { .. }
                | Work::Reallocate(_) => {}
            }
        }
        Ok(())
    }

    /// Delivery postcodes, each looked up once.
    async fn postcodes(&mut self) -> Result<(), ApiError> {
        let mut found: HashMap<String, bool> = HashMap::new();
        for (i, w) in self.works.clone() {
            let Work::AddOrder {
                delivery: Some(a), ..
            } = w
            else {
                continue;
            };
            if !found.contains_key(&a.postcode) {
                let addresses = self.look.client().lookup_addresses(&a.postcode).await?;
                found.insert(a.postcode.clone(), !addresses.is_empty());
            }
            if !found[&a.postcode] {
                self.say(
                    i,
                    Field::DeliveryPostcode,
                    Severity::Error,
                    format!(
                        "PL+ finds no address for postcode {}, so it cannot deliver there: check the postcode",
                        a.postcode
                    ),
                );
            }
        }
        Ok(())
    }

    /// MAC addresses: the contract lists no devices, so this is said once, on the first.
    fn devices(&mut self) {
        let first = self
            .works
            .iter()
            .find(|(_, w)| matches!(w, Work::AddDevice { .. }));
        if let Some(&(i, _)) = first {
            self.say(i, Field::Mac, Severity::Note, "MAC addresses cannot be checked before the run (the API lists no devices): one already in use fails its row, or, with --existing skip, is recorded as already existed".into());
        }
    }

    /// What each update row would change in an entity already in the account, field by
    /// field, and which rows change nothing.
    async fn changes(&mut self) -> Result<(), ApiError> {
        for (i, w) in self.works.clone() {
            let Some((target, after)) = self.updated(i, w).await? else {
                continue;
            };
            let now = self.look.entity(&target, false).await?;
            self.compare(i, target.describe(), now, after);
        }
        Ok(())
    }

    /// The entity an update row changes, if it is in the account (not one the job makes), and
    /// what the row sets, as the contract's JSON.
    async fn updated(
        &self,
        i: usize,
        w: &Work,
    ) -> Result<Option<(Target, Option<Value>)>, ApiError> {
        let cid = self.existing_of.get(&i).cloned();
        let person = |sel: &Sel| match sel {
            Sel::Id(id) => Some(Ok(id.clone())),
            Sel::Email(e) | Sel::Existing(e) => Some(Err(e.clone())),
            // One the job adds.
            Sel::Row(_) => None,
        };
        Ok(match (w, cid) {
            (Work::UpdateCustomer { changes, .. }, Some(id)) => {
                Some((Target::Customer { id }, json(changes)))
            }
            (Work::RegradeContract { months, .. }, Some(id)) => {
                let after = json(&crate::contract::ContractChange {
                    contract_months: *months,
                });
                Some((Target::Customer { id }, after))
            }
            (Work::UpdateUser { user, changes, .. }, Some(customer)) => {
                let id = match person(user) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(email)) => self.look.user_id(&customer, &email).await?,
                    None => None,
                };
                id.map(|id| (Target::User { customer, id }, json(changes)))
            }
            (
                Work::UpdateBlocked {
                    number, changes, ..
                },
                Some(customer),
            ) => self
                .look
                .blocked_id(&customer, number)
                .await?
                .map(|id| (Target::Blocked { customer, id }, json(changes))),
            (
                Work::UpdatePartnerUser {
                    partner_user,
                    changes,
                },
                _,
            ) => {
                let id = match person(partner_user) {
                    Some(Ok(id)) => Some(id),
                    Some(Err(email)) => self.look.partner_user_id(&email).await?,
                    None => None,
                };
                id.map(|id| (Target::PartnerUser { id }, json(changes)))
            }
            // A customer the job makes: nothing in the account to compare with.
            (
                Work::UpdateCustomer { .. }
                | Work::RegradeContract { .. }
                | Work::UpdateUser { .. }
                | Work::UpdateBlocked { .. },
                None,
            ) => None,
            (
                Work::AddCustomer { .. }
                | Work::DeleteCustomer { .. }
                | Work::UpgradePlan { .. }
                | Work::AddUser { .. }
                | Work::DeleteUser { .. }
                | Work::ResendActivation { .. }
                | Work::ResetPassword { .. }
                | Work::AddNumber { .. }
                | Work::AllocateNumber { .. }
                | Work::DeallocateNumber { .. }
                | Work::AddBlocked { .. }
                | Work::DeleteBlocked { .. }
                | Work::AddDevice { .. }
                | Work::AddOrder { .. }
                | Work::UserSettings { .. }
                | Work::AddPartnerUser { .. }
                | Work::DeletePartnerUser { .. }
                | Work::Remove { .. }
                | Work::Restore { .. }
                | Work::Reallocate(_),
                _,
            ) => None,
        })
    }

    /// Each field `after` sets that `now` does not hold already is a change.
    fn compare(&mut self, i: usize, entity: String, now: Option<Value>, after: Option<Value>) {
        let (Some(now), Some(Value::Object(after))) = (now, after) else {
            return;
        };
        let before = self.checked.changes.len();
        for (k, v) in after.iter().filter(|(_, v)| !v.is_null()) {
            let n = now.get(k).unwrap_or(&Value::Null);
            if same_value(n, v) {
                continue;
            }
            self.checked.changes.push(Change {
                row: i,
                entity: entity.clone(),
                field: field_name(k),
                now: shown(n),
                after: shown(v),
            });
        }
        if self.checked.changes.len() == before {
            self.checked.unchanged.push(i);
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}

/// A value as a cell shows it: an address as one line, blank as "(blank)".
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(blank)".into(),
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .values()
            .filter(|v| !v.is_null())
            .map(shown)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The contract's field name as the sheet's column says it: contactName → Contact Name.
fn field_name(k: &str) -> String {
    let mut out = String::new();
    for (i, ch) in k.chars().enumerate() {
        if i == 0 {
            out.extend(ch.to_uppercase());
        } else if ch.is_uppercase() {
            out.push(' ');
            out.push(ch);
        } else {
            out.push(ch);
        }
    }
    match out.as_str() {
        "Type" => "User Type".into(),
        _ => out,
    }
}
