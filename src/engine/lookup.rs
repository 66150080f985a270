//! Names to ids, with as few calls as possible.
//!
//! A row names a customer by id or company name, a user by email, a product by "Brand Model".
//! Each collection is listed at most once per job (per customer for a customer's users,
//! numbers, blocked numbers and orders) and cached; what the job itself makes is added to the
//! cache as it is made. A customer this job created needs no list at all: whatever it holds,
//! this job put there, and the journal says what. Reconciling a row in doubt bypasses the cache
//! with a fresh list, because the point is to see what the server has now.

use crate::model::{IdKind, Target};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::client::{ApiError, Client};
use crate::contract::{self as c, natural_key};
use crate::journal::claims::Claims;
use crate::schema::squash;

/// One lazily listed collection.
struct Slot<T> {
    cell: tokio::sync::Mutex<Option<Vec<T>>>,
}

impl<T: Clone> Slot<T> {
    fn new() -> Slot<T> {
        Slot {
            cell: tokio::sync::Mutex::new(None),
        }
    }

    /// The collection, listing it with `load` the first time.
    async fn get<F, Fut>(&self, load: F) -> Result<Vec<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>, ApiError>>,
    {
        let mut g = self.cell.lock().await;
        if g.is_none() {
            *g = Some(load().await?);
        }
        Ok(g.as_ref().expect("just loaded").clone())
    }

    /// Lists again, replacing what was cached.
    async fn refresh<F, Fut>(&self, load: F) -> Result<Vec<T>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>, ApiError>>,
    {
        let fresh = load().await?;
        *self.cell.lock().await = Some(fresh.clone());
        Ok(fresh)
    }

    /// Adds or replaces an item in the cache, if the collection was listed.
    async fn upsert(&self, item: T, same: impl Fn(&T) -> bool) {
        if let Some(v) = self.cell.lock().await.as_mut() {
            match v.iter_mut().find(|x| same(x)) {
                Some(x) => *x = item,
                None => v.push(item),
            }
        }
    }
}

type PerCustomer<T> = Mutex<HashMap<String, Arc<Slot<T>>>>;

fn slot_of<T: Clone>(map: &PerCustomer<T>, customer: &str) -> Arc<Slot<T>> {
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(customer.to_string())
        .or_insert_with(|| Arc::new(Slot::new()))
        .clone()
}

/// The job's view of the account.
pub struct Lookups {
    client: Client,
    customers: Slot<c::Customer>,
    products: Slot<c::Product>,
    partner_users: Slot<c::PartnerUser>,
    users: PerCustomer<c::User>,
    numbers: PerCustomer<c::Number>,
    blocked: PerCustomer<c::BlockedNumber>,
    orders: PerCustomer<c::Order>,
    /// Customers this job created: their collections hold only what the job put there.
    created: Mutex<HashSet<String>>,
    /// (customer, what, key) → id of what this job made or found: users by email, numbers and
    /// blocked numbers by number, partner users by email (customer "").
    known: Mutex<HashMap<(String, IdKind, String), Known>>,
    /// What other jobs on this machine are making in the account, when it is shared.
    claims: Option<Claims>,
}

/// What the job knows about an entity without asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub id: String,
    /// For a number: who it is allocated to.
    pub user: Option<String>,
}

impl Lookups {
    pub fn new(client: Client) -> Lookups {
        Lookups::with_claims(client, None)
    }

    /// As [`Lookups::new`], aware of what other jobs on the same account are making.
    pub fn with_claims(client: Client, claims: Option<Claims>) -> Lookups {
        Lookups {
            claims,
            client,
            customers: Slot::new(),
            products: Slot::new(),
            partner_users: Slot::new(),
            users: Mutex::default(),
            numbers: Mutex::default(),
            blocked: Mutex::default(),
            orders: Mutex::default(),
            created: Mutex::default(),
            known: Mutex::default(),
        }
    }

    pub fn claims(&self) -> Option<&Claims> {
        self.claims.as_ref()
    }

    /// The client the look-ups list through, for calls that are not look-ups.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn mark_created(&self, customer: &str) {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(customer.to_string());
    }

    /// Forgets that this job created `customer`, once no row left to run depends on the row
    /// that did: a long job must not keep every customer it made. A row naming it anyway
    /// lists its collections, as for any customer.
    pub fn forget_created(&self, customer: &str) {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(customer);
    }

    pub fn is_created(&self, customer: &str) -> bool {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(customer)
    }

    pub fn remember(&self, customer: &str, what: IdKind, key: &str, known: Known) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((customer.to_string(), what, natural_key(key)), known);
    }

    pub fn recall(&self, customer: &str, what: IdKind, key: &str) -> Option<Known> {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(customer.to_string(), what, natural_key(key)))
            .cloned()
    }

    pub fn forget(&self, customer: &str, what: IdKind, key: &str) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(customer.to_string(), what, natural_key(key)));
    }

    // --- Customers ---------------------------------------------------------------------------

    pub async fn customers(&self, fresh: bool) -> Result<Vec<c::Customer>, ApiError> {
        let load = || self.client.list_customers();
        if fresh {
            self.customers.refresh(load).await
        } else {
            self.customers.get(load).await
        }
    }

    /// A customer's id from an id or an exact company name (trimmed, any case).
    pub async fn customer_id(&self, value: &str) -> Result<Result<String, String>, ApiError> {
        let all = self.customers(false).await?;
        let v = value.trim();
        if let Some(cu) = all.iter().find(|cu| cu.id == v) {
            return Ok(Ok(cu.id.clone()));
        }
        let named: Vec<&c::Customer> = all
            .iter()
            .filter(|cu| natural_key(&cu.company_name) == natural_key(v))
            .collect();
        Ok(match named.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(format!(
                "customer {v:?} is neither in this job nor in the account: add it on the Customers sheet, or correct the name"
            )),
            many => Err(format!(
                "{} customers in the account are called {v:?} ({}): use the Customer ID instead",
                many.len(),
                many.iter()
                    .map(|cu| cu.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }

    /// The customer with this natural key (company name and email), if the account has one
    /// that `free` accepts (one no other row of the job owns).
    pub async fn find_customer(
        &self,
        new: &c::NewCustomer,
        fresh: bool,
        free: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Option<c::Customer>, ApiError> {
        let all = self.customers(fresh).await?;
        Ok(all.into_iter().find(|cu| {
            natural_key(&cu.company_name) == natural_key(&new.company_name)
                && cu.email.as_deref().map(natural_key) == new.email.as_deref().map(natural_key)
                && free(&cu.id)
        }))
    }

    // --- A customer's collections ------------------------------------------------------------

    /// One of a customer's collections: listed once and cached, listed again when `fresh`, and
    /// known empty (bar what the job made) for a customer this job created.
    async fn collection<T, F, Fut>(
        &self,
        map: &PerCustomer<T>,
        customer: &str,
        fresh: bool,
        load: F,
    ) -> Result<Vec<T>, ApiError>
    where
        T: Clone,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>, ApiError>>,
    {
        if !fresh && self.is_created(customer) {
            // Before the slot is made: a job adding users to a million new customers would
            // keep an empty one for each.
            return Ok(Vec::new());
        }
        let slot = slot_of(map, customer);
        if fresh {
            slot.refresh(load).await
        } else {
            slot.get(load).await
        }
    }

    pub async fn users(&self, customer: &str, fresh: bool) -> Result<Vec<c::User>, ApiError> {
        self.collection(&self.users, customer, fresh, || {
            self.client.list_users(customer)
        })
        .await
    }

    pub async fn numbers(&self, customer: &str, fresh: bool) -> Result<Vec<c::Number>, ApiError> {
        self.collection(&self.numbers, customer, fresh, || {
            self.client.list_customer_numbers(customer)
        })
        .await
    }

    pub async fn number_changed(&self, customer: &str, n: c::Number) {
        let id = n.id.clone();
        slot_of(&self.numbers, customer)
            .upsert(n, |x| x.id == id)
            .await;
    }

    pub async fn blocked(
        &self,
        customer: &str,
        fresh: bool,
    ) -> Result<Vec<c::BlockedNumber>, ApiError> {
        self.collection(&self.blocked, customer, fresh, || {
            self.client.list_blocked_numbers(customer)
        })
        .await
    }

    pub async fn orders(&self, customer: &str, fresh: bool) -> Result<Vec<c::Order>, ApiError> {
        self.collection(&self.orders, customer, fresh, || {
            self.client.list_customer_orders(customer)
        })
        .await
    }

    /// A user of `customer` by email: what the job knows, else the customer's list.
    pub async fn user_id(&self, customer: &str, email: &str) -> Result<Option<String>, ApiError> {
        if let Some(k) = self.recall(customer, IdKind::User, email) {
            return Ok(Some(k.id));
        }
        let users = self.users(customer, false).await?;
        Ok(users
            .into_iter()
            .find(|u| natural_key(&u.email) == natural_key(email))
            .map(|u| u.id))
    }

    /// A number of `customer` (E.164): what the job knows, else the customer's list.
    pub async fn number(&self, customer: &str, number: &str) -> Result<Option<Known>, ApiError> {
        if let Some(k) = self.recall(customer, IdKind::Number, number) {
            return Ok(Some(k));
        }
        let all = self.numbers(customer, false).await?;
        Ok(all.into_iter().find(|n| n.number == number).map(|n| Known {
            id: n.id,
            user: n.user_id,
        }))
    }

    pub async fn blocked_id(
        &self,
        customer: &str,
        number: &str,
    ) -> Result<Option<String>, ApiError> {
        if let Some(k) = self.recall(customer, IdKind::Blocked, number) {
            return Ok(Some(k.id));
        }
        let all = self.blocked(customer, false).await?;
        Ok(all.into_iter().find(|b| b.number == number).map(|b| b.id))
    }

    // --- Partner-wide ------------------------------------------------------------------------

    pub async fn partner_users(&self, fresh: bool) -> Result<Vec<c::PartnerUser>, ApiError> {
        let load = || self.client.list_partner_users();
        if fresh {
            self.partner_users.refresh(load).await
        } else {
            self.partner_users.get(load).await
        }
    }

    /// The entity as the account has it, as the contract's JSON; None when it is not there.
    /// From what is listed (listed again when `fresh`); a customer the list lacks is read by
    /// Get Customer, which tells one made since the list from one that is gone. What a
    /// before-image, the pre-flight's preview and undo's "changed since" all read.
    pub async fn entity(&self, target: &Target, fresh: bool) -> Result<Option<Value>, ApiError> {
        fn json<T: serde::Serialize>(v: &T) -> Option<Value> {
            serde_json::to_value(v).ok()
        }
        Ok(match target {
            Target::Customer { id } => {
                let listed = self.customers(fresh).await?;
                match listed.iter().find(|cu| cu.id == *id) {
                    Some(cu) => json(cu),
                    None => match self.client.get_customer(id).await {
                        Ok(cu) => json(&cu),
                        Err(e) if e.status == Some(404) => None,
                        Err(e) => return Err(e),
                    },
                }
            }
            Target::User { customer, id } => self
                .users(customer, fresh)
                .await?
                .iter()
                .find(|u| u.id == *id)
                .and_then(json),
            Target::Blocked { customer, id } => self
                .blocked(customer, fresh)
                .await?
                .iter()
                .find(|b| b.id == *id)
                .and_then(json),
            Target::PartnerUser { id } => self
                .partner_users(fresh)
                .await?
                .iter()
                .find(|p| p.id == *id)
                .and_then(json),
        })
    }

    pub async fn partner_user_id(&self, email: &str) -> Result<Option<String>, ApiError> {
        if let Some(k) = self.recall("", IdKind::PartnerUser, email) {
            return Ok(Some(k.id));
        }
        let all = self.partner_users(false).await?;
        Ok(all
            .into_iter()
            .find(|p| natural_key(&p.email) == natural_key(email))
            .map(|p| p.id))
    }

    /// A product id from an id or "Brand Model" (any case, spacing or punctuation).
    pub async fn product_id(&self, value: &str) -> Result<Result<String, String>, ApiError> {
        let all = self.products.get(|| self.client.list_products()).await?;
        let v = value.trim();
        if let Some(p) = all.iter().find(|p| p.id == v) {
            return Ok(Ok(p.id.clone()));
        }
        let want = squash(v);
        if let Some(p) = all.iter().find(|p| {
            squash(&format!("{}{}", p.brand, p.model)) == want || squash(&p.model) == want
        }) {
            return Ok(Ok(p.id.clone()));
        }
        let mut names: Vec<String> = all
            .iter()
            .map(|p| format!("{} {}", p.brand, p.model))
            .collect();
        names.sort();
        Ok(Err(format!(
            "product {v:?} is not in the catalogue: use a product id or one of {}",
            names.join(", ")
        )))
    }
}
