//! The sandbox's account: every entity and every rule of the contract, with no HTTP in sight.
//!
//! Each operation is a plain method that checks its input the way the contract says the real
//! server does (422 for a bad field, 409 for a conflict, 404 for an unknown id) and changes the
//! state only when every check has passed, so a refused request leaves nothing behind.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::{self as c, codes};

/// A refusal, as the server would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

impl Fault {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Fault {
        Fault {
            status,
            code,
            message: message.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Fault {
        Fault::new(404, codes::NOT_FOUND, format!("no {what} with id {id:?}"))
    }

    pub fn conflict(message: impl Into<String>) -> Fault {
        Fault::new(409, codes::CONFLICT, message)
    }

    pub fn malformed(message: impl Into<String>) -> Fault {
        Fault::new(400, codes::MALFORMED, message)
    }
}

/// Field errors gathered before deciding: every bad field is reported at once.
#[derive(Default)]
pub struct Invalid(BTreeMap<String, String>);

impl Invalid {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub fn check(self, what: &str) -> Result<(), Fault> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Fault {
                status: 422,
                code: codes::VALIDATION,
                message: format!("invalid {what}"),
                fields: self.0,
            })
        }
    }
}

/// The per-user settings the API can set but not list; kept for inspection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    #[serde(flatten)]
    pub user: c::User,
    pub call_settings: c::CallSettings,
    pub schedule_settings: Option<c::ScheduleSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owned<T> {
    pub customer_id: String,
    #[serde(flatten)]
    pub item: T,
}

/// The whole state; it serialises so that a rehearsal on the in-process sandbox can be stopped
/// and resumed.
#[derive(Serialize, Deserialize)]
pub struct World {
    counters: HashMap<String, u64>,
    pub customers: BTreeMap<String, c::Customer>,
    pub users: BTreeMap<String, UserRecord>,
    pub numbers: BTreeMap<String, Owned<c::Number>>,
    /// Available numbers (E.164) and their area code.
    pub pool: BTreeMap<String, String>,
    pub area_codes: Vec<c::AreaCode>,
    pub blocked: BTreeMap<String, Owned<c::BlockedNumber>>,
    pub orders: BTreeMap<String, c::Order>,
    pub devices: BTreeMap<String, Owned<c::Device>>,
    pub products: Vec<c::Product>,
    pub addresses: Vec<c::LookedUpAddress>,
    pub partner_users: BTreeMap<String, c::PartnerUser>,
    pub partner_settings: Map<String, Value>,
    pub permissions: Vec<c::Permission>,
    /// Every activation email and password reset sent, in order: what a person received,
    /// so a test can count that none went twice.
    #[serde(default)]
    pub emails: Vec<SentEmail>,
}

/// Which email a user was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmailKind {
    Activation,
    PasswordReset,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentEmail {
    pub user_id: String,
    pub email: String,
    pub kind: EmailKind,
    pub sent_at: String,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl World {
    pub fn seeded() -> World {
        let seed = super::seed::reference_data();
        World {
            counters: HashMap::new(),
            customers: BTreeMap::new(),
            users: BTreeMap::new(),
            numbers: BTreeMap::new(),
            pool: seed.pool,
            area_codes: seed.area_codes,
            blocked: BTreeMap::new(),
            orders: BTreeMap::new(),
            devices: BTreeMap::new(),
            products: seed.products,
            addresses: seed.addresses,
            partner_users: BTreeMap::new(),
            partner_settings: seed.partner_settings,
            permissions: seed.permissions,
            emails: Vec::new(),
        }
    }

    /// The account state a [`super::Sandbox::save`] wrote.
    pub fn from_saved(bytes: &[u8]) -> std::io::Result<World> {
        serde_json::from_slice(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    fn next_id(&mut self, prefix: &'static str) -> String {
        let n = self.counters.entry(prefix.to_string()).or_insert(0);
        *n += 1;
        format!("{prefix}_{n:06}")
    }

    // --- Customers ---------------------------------------------------------------------------

    pub fn customer(&self, id: &str) -> Result<&c::Customer, Fault> {
        self.customers
            .get(id)
            .ok_or_else(|| Fault::not_found("customer", id))
    }

    pub fn add_customer(&mut self, new: c::NewCustomer) -> Result<c::Customer, Fault> {
        let mut bad = Invalid::default();
        if new.company_name.trim().is_empty() {
            bad.add("companyName", "required");
        }
        match new.contract_months {
            None => bad.add("contractMonths", "required: 1, 12, 24 or 36"),
            Some(m) if !c::CONTRACT_MONTHS.contains(&m) => {
                bad.add("contractMonths", "must be 1, 12, 24 or 36")
            }
            _ => {}
        }
        check_optional_email(&mut bad, "email", new.email.as_deref());
        if let Some(a) = &new.address {
            check_address(&mut bad, "address", a);
        }
        match new.plan {
            None => bad.add("plan", "required: pro or hardware"),
            Some(c::Plan::Pro) if is_blank(&new.email) => bad.add("email", "required for plan pro"),
            Some(c::Plan::Hardware) if new.address.is_none() => {
                bad.add("address", "required for plan hardware")
            }
            _ => {}
        }
        bad.check("customer")?;
        let customer = c::Customer {
            id: self.next_id("cus"),
            company_name: new.company_name.trim().to_string(),
            contact_name: new.contact_name,
            email: new.email,
            phone: new.phone,
            plan: new.plan.unwrap_or(c::Plan::Pro),
            contract_months: new.contract_months.unwrap_or(12),
            address: new.address,
            created_at: now(),
        };
        self.customers.insert(customer.id.clone(), customer.clone());
        Ok(customer)
    }

    pub fn update_customer(
        &mut self,
        id: &str,
        ch: c::CustomerChanges,
    ) -> Result<c::Customer, Fault> {
        let current = self.customer(id)?;
        let mut bad = Invalid::default();
        if matches!(&ch.company_name, Some(n) if n.trim().is_empty()) {
            bad.add("companyName", "must not be empty");
        }
        check_optional_email(&mut bad, "email", ch.email.as_deref());
        if current.plan == c::Plan::Pro && matches!(&ch.email, Some(e) if e.trim().is_empty()) {
            bad.add("email", "required for plan pro");
        }
        if let Some(a) = &ch.address {
            check_address(&mut bad, "address", a);
        }
        bad.check("customer")?;
        let cu = self.customers.get_mut(id).expect("checked above");
        if let Some(v) = ch.company_name {
            cu.company_name = v.trim().to_string();
        }
        if ch.contact_name.is_some() {
            cu.contact_name = ch.contact_name;
        }
        if ch.email.is_some() {
            cu.email = ch.email;
        }
        if ch.phone.is_some() {
            cu.phone = ch.phone;
        }
        if ch.address.is_some() {
            cu.address = ch.address;
        }
        Ok(cu.clone())
    }

    /// Removes the customer, its users, their devices, its blocked numbers and its numbers
    /// (back to the pool); its orders remain, as the contract says.
    pub fn delete_customer(&mut self, id: &str) -> Result<(), Fault> {
        self.customer(id)?;
        self.customers.remove(id);
        self.users.retain(|_, u| u.user.customer_id != id);
        self.devices.retain(|_, d| d.customer_id != id);
        self.blocked.retain(|_, b| b.customer_id != id);
        let pool = &mut self.pool;
        self.numbers.retain(|_, n| {
            if n.customer_id == id {
                pool.insert(n.item.number.clone(), area_code_of(&n.item.number));
                false
            } else {
                true
            }
        });
        Ok(())
    }

    pub fn regrade_contract(
        &mut self,
        id: &str,
        ch: c::ContractChange,
    ) -> Result<c::Customer, Fault> {
        self.customer(id)?;
        let mut bad = Invalid::default();
        if !c::CONTRACT_MONTHS.contains(&ch.contract_months) {
            bad.add("contractMonths", "must be 1, 12, 24 or 36");
        }
        bad.check("contract")?;
        let cu = self.customers.get_mut(id).expect("checked above");
        cu.contract_months = ch.contract_months;
        Ok(cu.clone())
    }

    pub fn upgrade_plan(&mut self, id: &str, ch: c::PlanChange) -> Result<c::Customer, Fault> {
        let cu = self.customer(id)?;
        if ch.plan != c::Plan::Pro {
            let mut bad = Invalid::default();
            bad.add("plan", "the only upgrade is to pro");
            bad.check("plan change")?;
        }
        if cu.plan != c::Plan::Hardware {
            return Err(Fault::conflict(format!(
                "customer {id} is on plan {}, not hardware: only hardware customers can be upgraded",
                cu.plan.as_str()
            )));
        }
        if is_blank(&cu.email) {
            let mut bad = Invalid::default();
            bad.add(
                "email",
                "required for plan pro: set the customer's email first",
            );
            bad.check("plan change")?;
        }
        let cu = self.customers.get_mut(id).expect("checked above");
        cu.plan = c::Plan::Pro;
        Ok(cu.clone())
    }

    // --- Numbers -----------------------------------------------------------------------------

    pub fn customer_numbers(&self, customer: &str) -> Result<Vec<c::Number>, Fault> {
        self.customer(customer)?;
        Ok(self
            .numbers
            .values()
            .filter(|n| n.customer_id == customer)
            .map(|n| n.item.clone())
            .collect())
    }

    pub fn number(&self, customer: &str, id: &str) -> Result<&c::Number, Fault> {
        self.customer(customer)?;
        self.numbers
            .get(id)
            .filter(|n| n.customer_id == customer)
            .map(|n| &n.item)
            .ok_or_else(|| Fault::not_found("number in this customer", id))
    }

    pub fn add_number(&mut self, customer: &str, new: c::NewNumber) -> Result<c::Number, Fault> {
        self.customer(customer)?;
        let mut bad = Invalid::default();
        if !is_e164(&new.number) {
            bad.add("number", "must be E.164, like +441632960000");
        }
        bad.check("number")?;
        if let Some(held) = self.numbers.values().find(|n| n.item.number == new.number) {
            return Err(Fault::conflict(if held.customer_id == customer {
                format!("{} is already in this customer", new.number)
            } else {
                format!("{} is already in another customer", new.number)
            }));
        }
        if self.pool.remove(&new.number).is_none() {
            return Err(Fault::conflict(format!("{} is not available", new.number)));
        }
        let number = c::Number {
            id: self.next_id("num"),
            number: new.number,
            user_id: None,
        };
        self.numbers.insert(
            number.id.clone(),
            Owned {
                customer_id: customer.to_string(),
                item: number.clone(),
            },
        );
        Ok(number)
    }

    pub fn allocate_number(
        &mut self,
        customer: &str,
        id: &str,
        a: c::Allocation,
    ) -> Result<c::Number, Fault> {
        let number = self.number(customer, id)?;
        let user_ok = self
            .users
            .get(&a.user_id)
            .is_some_and(|u| u.user.customer_id == customer);
        if !user_ok {
            let mut bad = Invalid::default();
            bad.add(
                "userId",
                format!("no user {:?} in this customer", a.user_id),
            );
            bad.check("allocation")?;
        }
        if let Some(u) = &number.user_id {
            return Err(Fault::conflict(format!(
                "{} is already allocated to user {u}",
                number.number
            )));
        }
        let n = &mut self.numbers.get_mut(id).expect("checked above").item;
        n.user_id = Some(a.user_id);
        Ok(n.clone())
    }

    pub fn deallocate_number(&mut self, customer: &str, id: &str) -> Result<(), Fault> {
        let number = self.number(customer, id)?;
        if number.user_id.is_none() {
            return Err(Fault::conflict(format!(
                "{} is not allocated",
                number.number
            )));
        }
        self.numbers
            .get_mut(id)
            .expect("checked above")
            .item
            .user_id = None;
        Ok(())
    }

    pub fn available(&self, area_code: Option<&str>) -> Vec<c::AvailableNumber> {
        self.pool
            .iter()
            .filter(|(_, a)| area_code.is_none_or(|want| want == a.as_str()))
            .map(|(n, a)| c::AvailableNumber {
                number: n.clone(),
                area_code: a.clone(),
            })
            .collect()
    }

    // --- Blocked numbers ---------------------------------------------------------------------

    pub fn blocked_numbers(&self, customer: &str) -> Result<Vec<c::BlockedNumber>, Fault> {
        self.customer(customer)?;
        Ok(self
            .blocked
            .values()
            .filter(|b| b.customer_id == customer)
            .map(|b| b.item.clone())
            .collect())
    }

    pub fn blocked_number(&self, customer: &str, id: &str) -> Result<&c::BlockedNumber, Fault> {
        self.customer(customer)?;
        self.blocked
            .get(id)
            .filter(|b| b.customer_id == customer)
            .map(|b| &b.item)
            .ok_or_else(|| Fault::not_found("blocked number in this customer", id))
    }

    fn check_block(
        &self,
        customer: &str,
        number: &str,
        note: Option<&str>,
        except: Option<&str>,
    ) -> Result<(), Fault> {
        let mut bad = Invalid::default();
        if !is_block_pattern(number) {
            bad.add("number", "must be E.164 or a prefix of one, like +44870");
        }
        if note.is_some_and(|n| n.chars().count() > 200) {
            bad.add("note", "at most 200 characters");
        }
        bad.check("blocked number")?;
        let taken = self.blocked.iter().any(|(id, b)| {
            b.customer_id == customer && b.item.number == number && Some(id.as_str()) != except
        });
        if taken {
            return Err(Fault::conflict(format!(
                "{number} is already blocked in this customer"
            )));
        }
        Ok(())
    }

    pub fn add_blocked(
        &mut self,
        customer: &str,
        new: c::NewBlockedNumber,
    ) -> Result<c::BlockedNumber, Fault> {
        self.customer(customer)?;
        self.check_block(customer, &new.number, new.note.as_deref(), None)?;
        let b = c::BlockedNumber {
            id: self.next_id("blk"),
            number: new.number,
            direction: new.direction,
            note: new.note,
        };
        self.blocked.insert(
            b.id.clone(),
            Owned {
                customer_id: customer.to_string(),
                item: b.clone(),
            },
        );
        Ok(b)
    }

    pub fn update_blocked(
        &mut self,
        customer: &str,
        id: &str,
        ch: c::BlockedNumberChanges,
    ) -> Result<c::BlockedNumber, Fault> {
        let current = self.blocked_number(customer, id)?;
        let number = ch.number.clone().unwrap_or_else(|| current.number.clone());
        let note = ch.note.clone().or_else(|| current.note.clone());
        self.check_block(customer, &number, note.as_deref(), Some(id))?;
        let b = &mut self.blocked.get_mut(id).expect("checked above").item;
        b.number = number;
        b.note = note;
        if let Some(d) = ch.direction {
            b.direction = d;
        }
        Ok(b.clone())
    }

    pub fn delete_blocked(&mut self, customer: &str, id: &str) -> Result<(), Fault> {
        self.blocked_number(customer, id)?;
        self.blocked.remove(id);
        Ok(())
    }

    // --- Users -------------------------------------------------------------------------------

    pub fn customer_users(&self, customer: &str) -> Result<Vec<c::User>, Fault> {
        self.customer(customer)?;
        Ok(self
            .users
            .values()
            .filter(|u| u.user.customer_id == customer)
            .map(|u| u.user.clone())
            .collect())
    }

    pub fn user(&self, customer: &str, id: &str) -> Result<&c::User, Fault> {
        self.customer(customer)?;
        self.users
            .get(id)
            .filter(|u| u.user.customer_id == customer)
            .map(|u| &u.user)
            .ok_or_else(|| Fault::not_found("user in this customer", id))
    }

    fn check_user_email(
        &self,
        customer: &str,
        email: &str,
        except: Option<&str>,
    ) -> Result<(), Fault> {
        let taken = self.users.values().any(|u| {
            u.user.customer_id == customer
                && u.user.email.eq_ignore_ascii_case(email.trim())
                && Some(u.user.id.as_str()) != except
        });
        if taken {
            return Err(Fault::conflict(format!(
                "a user with email {email} already exists in this customer"
            )));
        }
        Ok(())
    }

    pub fn add_user(&mut self, customer: &str, new: c::NewUser) -> Result<c::User, Fault> {
        self.customer(customer)?;
        let mut bad = Invalid::default();
        check_name(&mut bad, "firstName", &new.first_name);
        check_name(&mut bad, "lastName", &new.last_name);
        check_email(&mut bad, "email", &new.email);
        bad.check("user")?;
        self.check_user_email(customer, &new.email, None)?;
        let user = c::User {
            id: self.next_id("usr"),
            customer_id: customer.to_string(),
            first_name: new.first_name.trim().to_string(),
            last_name: new.last_name.trim().to_string(),
            email: new.email.trim().to_string(),
            user_type: new.user_type,
            created_at: now(),
        };
        self.users.insert(
            user.id.clone(),
            UserRecord {
                user: user.clone(),
                call_settings: c::CallSettings::default(),
                schedule_settings: None,
            },
        );
        Ok(user)
    }

    pub fn update_user(
        &mut self,
        customer: &str,
        id: &str,
        ch: c::UserChanges,
    ) -> Result<c::User, Fault> {
        self.user(customer, id)?;
        let mut bad = Invalid::default();
        if let Some(v) = &ch.first_name {
            check_name(&mut bad, "firstName", v);
        }
        if let Some(v) = &ch.last_name {
            check_name(&mut bad, "lastName", v);
        }
        if let Some(v) = &ch.email {
            check_email(&mut bad, "email", v);
        }
        bad.check("user")?;
        if let Some(e) = &ch.email {
            self.check_user_email(customer, e, Some(id))?;
        }
        let u = &mut self.users.get_mut(id).expect("checked above").user;
        if let Some(v) = ch.first_name {
            u.first_name = v.trim().to_string();
        }
        if let Some(v) = ch.last_name {
            u.last_name = v.trim().to_string();
        }
        if let Some(v) = ch.email {
            u.email = v.trim().to_string();
        }
        if let Some(v) = ch.user_type {
            u.user_type = v;
        }
        Ok(u.clone())
    }

    /// Removes the user and their devices, and frees their numbers.
    pub fn delete_user(&mut self, customer: &str, id: &str) -> Result<(), Fault> {
        self.user(customer, id)?;
        self.users.remove(id);
        self.devices.retain(|_, d| d.item.user_id != id);
        for n in self.numbers.values_mut() {
            if n.item.user_id.as_deref() == Some(id) {
                n.item.user_id = None;
            }
        }
        Ok(())
    }

    pub fn send_email(
        &mut self,
        customer: &str,
        id: &str,
        kind: EmailKind,
    ) -> Result<c::EmailSent, Fault> {
        let u = self.user(customer, id)?;
        let sent = c::EmailSent {
            user_id: u.id.clone(),
            email: u.email.clone(),
            sent: true,
        };
        self.emails.push(SentEmail {
            user_id: sent.user_id.clone(),
            email: sent.email.clone(),
            kind,
            sent_at: now(),
        });
        Ok(sent)
    }

    pub fn update_call_settings(
        &mut self,
        customer: &str,
        id: &str,
        s: c::CallSettings,
    ) -> Result<c::CallSettings, Fault> {
        self.user(customer, id)?;
        let cur = &mut self.users.get_mut(id).expect("checked above").call_settings;
        if s.reject_anonymous.is_some() {
            cur.reject_anonymous = s.reject_anonymous;
        }
        if s.call_waiting.is_some() {
            cur.call_waiting = s.call_waiting;
        }
        if s.voicemail.is_some() {
            cur.voicemail = s.voicemail;
        }
        Ok(cur.clone())
    }

    pub fn update_schedule(
        &mut self,
        customer: &str,
        id: &str,
        s: c::ScheduleSettings,
    ) -> Result<c::ScheduleSettings, Fault> {
        self.user(customer, id)?;
        let mut bad = Invalid::default();
        if s.days.is_empty() {
            bad.add("days", "at least one day");
        }
        for (i, d) in s.days.iter().enumerate() {
            if !c::DAYS.contains(&d.as_str()) {
                bad.add(
                    "days",
                    format!("{d:?} is not one of {}", c::DAYS.join(", ")),
                );
            } else if s.days[..i].contains(d) {
                bad.add("days", format!("{d} is given twice"));
            }
        }
        let open = minutes(&s.open);
        let close = minutes(&s.close);
        if open.is_none() {
            bad.add("open", "must be a time like 09:00");
        }
        if close.is_none() {
            bad.add("close", "must be a time like 17:30");
        }
        if let (Some(o), Some(cl)) = (open, close) {
            if cl <= o {
                bad.add("close", "must be after open");
            }
        }
        if let Some(r) = &s.out_of_hours_redirect {
            if !is_e164(r) {
                bad.add("outOfHoursRedirect", "must be E.164, like +441632960000");
            }
        }
        bad.check("schedule settings")?;
        self.users
            .get_mut(id)
            .expect("checked above")
            .schedule_settings = Some(s.clone());
        Ok(s)
    }

    // --- Orders and devices ------------------------------------------------------------------

    pub fn customer_orders(&self, customer: &str) -> Result<Vec<c::Order>, Fault> {
        self.customer(customer)?;
        Ok(self
            .orders
            .values()
            .filter(|o| o.customer_id == customer)
            .cloned()
            .collect())
    }

    pub fn add_order(&mut self, customer: &str, new: c::NewOrder) -> Result<c::Order, Fault> {
        let cu = self.customer(customer)?;
        let mut bad = Invalid::default();
        if new.items.is_empty() {
            bad.add("items", "at least one item");
        }
        for (i, item) in new.items.iter().enumerate() {
            if !self.products.iter().any(|p| p.id == item.product_id) {
                bad.add(
                    format!("items[{i}].productId"),
                    format!("no product {:?}", item.product_id),
                );
            }
            if !(1..=100).contains(&item.quantity) {
                bad.add(format!("items[{i}].quantity"), "must be 1 to 100");
            }
        }
        let delivery = match (&new.delivery_address, &cu.address) {
            (Some(a), _) => {
                check_address(&mut bad, "deliveryAddress", a);
                a.clone()
            }
            (None, Some(a)) => a.clone(),
            (None, None) => {
                bad.add("deliveryAddress", "required: the customer has no address");
                c::Address::default()
            }
        };
        bad.check("order")?;
        let order = c::Order {
            id: self.next_id("ord"),
            customer_id: customer.to_string(),
            status: c::OrderStatus::Received,
            items: new.items,
            delivery_address: delivery,
            created_at: now(),
        };
        self.orders.insert(order.id.clone(), order.clone());
        Ok(order)
    }

    pub fn add_device(
        &mut self,
        customer: &str,
        user: &str,
        new: c::NewDevice,
    ) -> Result<c::Device, Fault> {
        self.user(customer, user)?;
        let mut bad = Invalid::default();
        if !self.products.iter().any(|p| p.id == new.product_id) {
            bad.add("productId", format!("no product {:?}", new.product_id));
        }
        let mac = &new.mac_address;
        if mac.len() != 12
            || !mac
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        {
            bad.add(
                "macAddress",
                "must be 12 hex digits, upper case, no separators",
            );
        }
        bad.check("device")?;
        if self.devices.values().any(|d| d.item.mac_address == *mac) {
            return Err(Fault::conflict(format!(
                "MAC address {mac} is already assigned"
            )));
        }
        let device = c::Device {
            id: self.next_id("dev"),
            user_id: user.to_string(),
            product_id: new.product_id,
            mac_address: new.mac_address,
        };
        self.devices.insert(
            device.id.clone(),
            Owned {
                customer_id: customer.to_string(),
                item: device.clone(),
            },
        );
        Ok(device)
    }

    // --- Partner -----------------------------------------------------------------------------

    fn check_partner_user(
        &self,
        bad: &mut Invalid,
        email: Option<&str>,
        except: Option<&str>,
    ) -> Result<(), Fault> {
        if let Some(e) = email {
            check_email(bad, "email", e);
        }
        std::mem::take(bad).check("partner user")?;
        if let Some(e) = email {
            if self
                .partner_users
                .values()
                .any(|p| p.email.eq_ignore_ascii_case(e.trim()) && Some(p.id.as_str()) != except)
            {
                return Err(Fault::conflict(format!(
                    "a partner user with email {e} already exists"
                )));
            }
        }
        Ok(())
    }

    pub fn add_partner_user(&mut self, new: c::NewPartnerUser) -> Result<c::PartnerUser, Fault> {
        let mut bad = Invalid::default();
        check_name(&mut bad, "firstName", &new.first_name);
        check_name(&mut bad, "lastName", &new.last_name);
        // The contract lists a role but does not make it required: a rehearsal accepts what
        // the contract accepts (README, "The sandbox").
        let role = new.role.as_deref().map(str::trim).unwrap_or_default();
        if role.chars().count() > 100 {
            bad.add("role", "at most 100 characters");
        }
        self.check_partner_user(&mut bad, Some(&new.email), None)?;
        let p = c::PartnerUser {
            id: self.next_id("pus"),
            first_name: new.first_name.trim().to_string(),
            last_name: new.last_name.trim().to_string(),
            email: new.email.trim().to_string(),
            role: role.to_string(),
            created_at: now(),
        };
        self.partner_users.insert(p.id.clone(), p.clone());
        Ok(p)
    }

    pub fn update_partner_user(
        &mut self,
        id: &str,
        ch: c::PartnerUserChanges,
    ) -> Result<c::PartnerUser, Fault> {
        if !self.partner_users.contains_key(id) {
            return Err(Fault::not_found("partner user", id));
        }
        let mut bad = Invalid::default();
        for (field, v) in [
            ("firstName", &ch.first_name),
            ("lastName", &ch.last_name),
            ("role", &ch.role),
        ] {
            if let Some(v) = v {
                check_name(&mut bad, field, v);
            }
        }
        self.check_partner_user(&mut bad, ch.email.as_deref(), Some(id))?;
        let p = self.partner_users.get_mut(id).expect("checked above");
        if let Some(v) = ch.first_name {
            p.first_name = v.trim().to_string();
        }
        if let Some(v) = ch.last_name {
            p.last_name = v.trim().to_string();
        }
        if let Some(v) = ch.email {
            p.email = v.trim().to_string();
        }
        if let Some(v) = ch.role {
            p.role = v.trim().to_string();
        }
        Ok(p.clone())
    }

    pub fn delete_partner_user(&mut self, id: &str) -> Result<(), Fault> {
        self.partner_users
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| Fault::not_found("partner user", id))
    }

    pub fn update_partner_settings(&mut self, changes: Value) -> Result<Map<String, Value>, Fault> {
        let Value::Object(changes) = changes else {
            let mut bad = Invalid::default();
            bad.add("settings", "must be a JSON object of the keys to change");
            return bad.check("partner settings").map(|_| Map::new());
        };
        self.partner_settings.extend(changes);
        Ok(self.partner_settings.clone())
    }

    pub fn update_permissions(
        &mut self,
        update: c::PermissionsUpdate,
    ) -> Result<Vec<c::Permission>, Fault> {
        let mut bad = Invalid::default();
        for (i, p) in update.permissions.iter().enumerate() {
            if !self.permissions.iter().any(|q| q.id == p.id) {
                bad.add(
                    format!("permissions[{i}].id"),
                    format!("no permission {:?}", p.id),
                );
            }
        }
        bad.check("permissions")?;
        for p in update.permissions {
            if let Some(q) = self.permissions.iter_mut().find(|q| q.id == p.id) {
                q.enabled = p.enabled;
            }
        }
        Ok(self.permissions.clone())
    }

    pub fn stats(&self) -> c::Stats {
        c::Stats {
            customers: self.customers.len() as u64,
            users: self.users.len() as u64,
            numbers: self.numbers.len() as u64,
        }
    }

    pub fn lookup_addresses(&self, postcode: &str) -> Vec<c::LookedUpAddress> {
        let want = squash_postcode(postcode);
        self.addresses
            .iter()
            .filter(|a| squash_postcode(&a.address.postcode) == want)
            .cloned()
            .collect()
    }

    /// Every collection, for tests and for a partner rehearsing on the sandbox.
    pub fn snapshot(&self) -> Value {
        serde_json::json!({
            "customers": self.customers.values().collect::<Vec<_>>(),
            "users": self.users.values().collect::<Vec<_>>(),
            "numbers": self.numbers.values().collect::<Vec<_>>(),
            "blocked": self.blocked.values().collect::<Vec<_>>(),
            "orders": self.orders.values().collect::<Vec<_>>(),
            "devices": self.devices.values().collect::<Vec<_>>(),
            "partnerUsers": self.partner_users.values().collect::<Vec<_>>(),
            "partnerSettings": self.partner_settings,
            "permissions": self.permissions,
            "emails": self.emails,
        })
    }
}

fn is_blank(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(|s| s.trim().is_empty())
}

fn check_name(bad: &mut Invalid, field: &str, v: &str) {
    if v.trim().is_empty() {
        bad.add(field, "required");
    } else if v.chars().count() > 100 {
        bad.add(field, "at most 100 characters");
    }
}

fn check_email(bad: &mut Invalid, field: &str, v: &str) {
    if v.trim().is_empty() {
        bad.add(field, "required");
    } else if !is_email(v.trim()) {
        bad.add(field, "is not an email address");
    }
}

fn check_optional_email(bad: &mut Invalid, field: &str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
        check_email(bad, field, v);
    }
}

fn check_address(bad: &mut Invalid, prefix: &str, a: &c::Address) {
    if a.line1.trim().is_empty() {
        bad.add(format!("{prefix}.line1"), "required");
    }
    if a.town.trim().is_empty() {
        bad.add(format!("{prefix}.town"), "required");
    }
    if a.postcode.trim().is_empty() {
        bad.add(format!("{prefix}.postcode"), "required");
    }
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

fn is_block_pattern(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn minutes(t: &str) -> Option<u32> {
    let (h, m) = t.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn squash_postcode(p: &str) -> String {
    p.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The area code of a UK number in E.164, as the seeded pool files it.
pub fn area_code_of(e164: &str) -> String {
    super::seed::area_code_of(e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pro(name: &str) -> c::NewCustomer {
        c::NewCustomer {
            company_name: name.into(),
            email: Some("it@example.co.uk".into()),
            plan: Some(c::Plan::Pro),
            contract_months: Some(12),
            ..Default::default()
        }
    }

    #[test]
    fn plan_rules_are_enforced_with_field_messages() {
        let mut w = World::seeded();
        let mut c1 = pro("Acme");
        c1.email = None;
        let f = w.add_customer(c1).unwrap_err();
        assert_eq!(
            (f.status, f.fields["email"].as_str()),
            (422, "required for plan pro")
        );
        let mut c2 = pro("Acme");
        c2.plan = Some(c::Plan::Hardware);
        let f = w.add_customer(c2).unwrap_err();
        assert_eq!(f.fields["address"], "required for plan hardware");
        assert!(w.customers.is_empty(), "a refused create leaves nothing");
    }

    #[test]
    fn numbers_come_from_the_pool_and_go_back_on_delete() {
        let mut w = World::seeded();
        let cu = w.add_customer(pro("Acme")).unwrap();
        let free = w.available(Some("0161"))[0].number.clone();
        let n = w
            .add_number(
                &cu.id,
                c::NewNumber {
                    number: free.clone(),
                },
            )
            .unwrap();
        assert!(!w.pool.contains_key(&free));
        assert_eq!(
            w.add_number(
                &cu.id,
                c::NewNumber {
                    number: free.clone()
                }
            )
            .unwrap_err()
            .status,
            409
        );
        let u = w
            .add_user(
                &cu.id,
                c::NewUser {
                    first_name: "Ann".into(),
                    last_name: "Lee".into(),
                    email: "ann@example.co.uk".into(),
                    user_type: c::UserType::Standard,
                },
            )
            .unwrap();
        w.allocate_number(
            &cu.id,
            &n.id,
            c::Allocation {
                user_id: u.id.clone(),
            },
        )
        .unwrap();
        let again = w.allocate_number(
            &cu.id,
            &n.id,
            c::Allocation {
                user_id: u.id.clone(),
            },
        );
        assert_eq!(
            again.unwrap_err().status,
            409,
            "allocating an allocated number, same user too"
        );
        w.delete_customer(&cu.id).unwrap();
        assert!(w.pool.contains_key(&free));
        assert_eq!(w.pool[&free], "0161");
        assert!(w.users.is_empty() && w.numbers.is_empty());
    }

    #[test]
    fn user_emails_are_unique_within_a_customer_in_any_case() {
        let mut w = World::seeded();
        let a = w.add_customer(pro("A")).unwrap();
        let b = w.add_customer(pro("B")).unwrap();
        let u = |e: &str| c::NewUser {
            first_name: "X".into(),
            last_name: "Y".into(),
            email: e.into(),
            user_type: c::UserType::Admin,
        };
        w.add_user(&a.id, u("x@y.com")).unwrap();
        assert_eq!(w.add_user(&a.id, u("X@Y.com")).unwrap_err().status, 409);
        w.add_user(&b.id, u("x@y.com")).unwrap();
    }

    #[test]
    fn schedule_times_and_days_are_checked() {
        let mut w = World::seeded();
        let cu = w.add_customer(pro("A")).unwrap();
        let u = w
            .add_user(
                &cu.id,
                c::NewUser {
                    first_name: "X".into(),
                    last_name: "Y".into(),
                    email: "x@y.com".into(),
                    user_type: c::UserType::Admin,
                },
            )
            .unwrap();
        let s = c::ScheduleSettings {
            days: vec!["mon".into(), "funday".into()],
            open: "17:30".into(),
            close: "09:00".into(),
            out_of_hours_redirect: Some("01632960000".into()),
        };
        let f = w.update_schedule(&cu.id, &u.id, s).unwrap_err();
        assert_eq!(
            f.fields.keys().collect::<Vec<_>>(),
            ["close", "days", "outOfHoursRedirect"]
        );
    }

    #[test]
    fn e164_and_block_patterns() {
        assert!(is_e164("+441632960000"));
        assert!(!is_e164("441632960000"));
        assert!(!is_e164("+4416329600001234"));
        assert!(is_block_pattern("+44870"));
        assert!(!is_block_pattern("0870"));
    }
}
