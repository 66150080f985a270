//! A typed async client for every operation of the PL+ Partner API.
//!
//! Requests go out through one path ([`Client::execute_once`]): wait while the API is down
//! ([`Health`]), wait for the pacer, attach a JWT (fetched, shared and refreshed by `auth`),
//! send, and sort any failure into the kinds of [`ApiError`]. Only the API's own answer proves
//! anything: a success whose body is not the contract's JSON is not taken as one. [`Tries`] is
//! the one retry decision: 429s wait as the server asks, other transient failures back off
//! exponentially with jitter, a request whose outcome is unknown is sent again only if
//! repeating it is harmless, and failures that say nothing about the request count against
//! the API's health rather than the request's tries. [`Client::execute`] loops on it; the
//! engine, which journals every attempt, loops on it around `execute_once`.

mod auth;
pub mod credentials;
mod error;
pub mod health;
mod requests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::contract::{self as c, ListResponse, Operation};
use crate::pacing::Pacer;

pub use credentials::{Credentials, Secret, Settings};
pub use error::{ApiError, ErrorKind};
pub use health::{Halt, Health, HealthConfig, Status as HealthStatus};

/// How often, and how patiently, [`Client::execute`] tries again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Sends at most, for failures other than 429.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// 429s waited out before giving up; they do not count as attempts.
    pub max_rate_limited: u32,
}

impl RetryPolicy {
    /// One send, and an answer whatever it is.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_rate_limited: 0,
    };

    /// The delay before try `n + 1` after `n` failed: exponential, capped, with full jitter
    /// in its upper half so that many rows failing together do not retry together.
    pub fn backoff(&self, n: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << n.saturating_sub(1).min(16));
        let d = exp.min(self.max_delay);
        let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
        d.mul_f64(jitter)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limited: 30,
        }
    }
}

pub struct ClientConfig {
    pub base_url: String,
    pub credentials: Credentials,
    /// Longest wait for a response once the request is sent.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    pub pacer: Option<Arc<dyn Pacer>>,
    pub health: HealthConfig,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            credentials,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            pacer: None,
            // A client of its own answers for each request; a job's waits out outages.
            health: HealthConfig::OFF,
        }
    }
}

/// One request: an operation, its concrete path, query and JSON body.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub operation: Operation,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
    /// Overrides the client's response timeout for this request.
    pub timeout: Option<Duration>,
}

impl ApiRequest {
    pub fn new(operation: Operation, ids: &[&str]) -> ApiRequest {
        ApiRequest {
            operation,
            path: operation.path(ids),
            query: Vec::new(),
            body: None,
            timeout: None,
        }
    }

    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> ApiRequest {
        // Serialising plain data structs to JSON cannot fail.
        self.body = Some(
            serde_json::to_vec(body)
                .expect("request bodies serialise")
                .into(),
        );
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> ApiRequest {
        self.timeout = Some(timeout);
        self
    }

    pub fn query(mut self, name: &'static str, value: impl Into<String>) -> ApiRequest {
        self.query.push((name, value.into()));
        self
    }
}

/// A cheap-to-clone handle; clones share the connection pool, the token and the pacer.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
    pacer: Option<Arc<dyn Pacer>>,
    auth: auth::Auth,
    health: Arc<Health>,
}

/// An answer the API gave: its real status and content type, and its body (checked to be the
/// contract's JSON, or empty where the contract answers nothing).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<Box<str>>,
    pub body: Bytes,
}

/// What to do after a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send again after this wait (zero: the pacer or the outage gate holds the request).
    Retry(Duration),
    /// Stop trying: the failure is the request's answer.
    GiveUp,
}

/// One request's tries, and the one decision after each failure, shared by
/// [`Client::execute`] and the engine's journaled send.
#[derive(Debug, Clone, Default)]
pub struct Tries {
    failures: u32,
    rate_limited: u32,
    /// Sends so far, failures of every kind.
    pub sent: u32,
    /// Outages this request has asked to be declared by running out of tries: one that keeps
    /// failing while the API answers the probe is the request's own failure after this many.
    suspicions: u32,
    /// The client's count of ended outages when the tries were last counted.
    recoveries: u64,
}

/// Rounds of tries a request may ask the API's health about before its failure is its own.
const SUSPICIONS: u32 = 2;

impl Tries {
    /// Counts `err` and says what to do. A failure that says nothing about the request feeds
    /// the API's health: during an outage it costs the request nothing (it waits at the gate).
    pub fn after(&mut self, client: &Client, err: &ApiError) -> Next {
        self.sent += err.attempts.max(1);
        if err.is_halted() {
            return Next::GiveUp;
        }
        let policy = &client.inner.retry;
        let health = &client.inner.health;
        let recoveries = health.recoveries();
        if recoveries != self.recoveries {
            self.recoveries = recoveries;
            // An outage ended since the last failure: the tries it cost are given back, unless
            // this request has made outages of its own that the probe found were none.
            if self.suspicions < SUSPICIONS {
                self.failures = 0;
            }
        }
        if err.status == Some(429) {
            self.rate_limited += 1;
            if self.rate_limited > policy.max_rate_limited {
                return Next::GiveUp;
            }
            let wait = err
                .retry_after
                .unwrap_or_else(|| policy.backoff(self.rate_limited));
            return match &client.inner.pacer {
                // A 429 means the whole key is over its limit: hold every sender.
                Some(p) => {
                    p.hold_off(wait);
                    Next::Retry(Duration::ZERO)
                }
                None => Next::Retry(wait),
            };
        }
        let resend = err.may_resend();
        // A request that has made outages of its own which the probe found were none (one
        // that keeps failing while the API answers others) counts its failures: it must not
        // wait and try again for ever.
        if err.is_outage_sign() && self.suspicions < SUSPICIONS {
            let exhausted = resend && self.failures + 1 >= policy.max_attempts;
            if let health::Verdict::Outage { began } = health.failed(&err.to_string(), exhausted) {
                if let Some(outage) = began {
                    self.suspicions += 1;
                    client.start_probe(outage);
                }
                if resend {
                    return Next::Retry(Duration::ZERO);
                }
            }
        }
        if !resend {
            return Next::GiveUp;
        }
        self.failures += 1;
        if self.failures >= policy.max_attempts {
            return Next::GiveUp;
        }
        Next::Retry(
            err.retry_after
                .unwrap_or_else(|| policy.backoff(self.failures)),
        )
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct SetupError(String);

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("plbulk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError(e.to_string()))?;
        let base_url = normalize_base_url(&config.base_url)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base_url,
                retry: config.retry,
                pacer: config.pacer,
                auth: auth::Auth::new(config.credentials),
                health: Arc::new(Health::new(config.health)),
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn key_id(&self) -> &str {
        self.inner.auth.key_id()
    }

    /// Asks for a token with the key and secret, and keeps it: one request, which says
    /// whether the API takes them (a key typed on the page is tried so before it is saved).
    pub async fn authenticate(&self) -> Result<(), ApiError> {
        self.inner.auth.token(self).await.map(|_| ())
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    pub fn pacer(&self) -> Option<&Arc<dyn Pacer>> {
        self.inner.pacer.as_ref()
    }

    /// Whether the API is answering, and the switch that halts every request.
    pub fn health(&self) -> &Arc<Health> {
        &self.inner.health
    }

    /// One send (and, on a 401, one more with a fresh token). No other retry. A key whose
    /// fresh token is refused too halts the client: nothing will work until a person looks.
    pub async fn execute_once(&self, req: &ApiRequest) -> Result<Reply, ApiError> {
        let (token, generation) = self.inner.auth.token(self).await?;
        match self.send(req, Some(&token), false).await {
            Err(e) if e.status == Some(401) && e.from_api => {
                self.inner.auth.invalidate(generation).await;
                let (token, _) = self.inner.auth.token(self).await?;
                match self.send(req, Some(&token), false).await {
                    Err(e) if e.status == Some(401) && e.from_api => {
                        let halt = Halt::KeyRefused {
                            message: format!(
                                "the API refused a fresh token for key {:?} ({})",
                                self.key_id(),
                                e.detail()
                            ),
                        };
                        self.inner.health.halt(halt.clone());
                        Err(ApiError::halted(req.operation, &halt))
                    }
                    other => other.map_err(|mut e| {
                        e.attempts = 2;
                        e
                    }),
                }
            }
            other => other,
        }
    }

    /// Sends with the client's retry policy.
    pub async fn execute(&self, req: &ApiRequest) -> Result<Bytes, ApiError> {
        self.execute_as(req, Ok).await
    }

    /// Sends with the client's retry policy and reads the answer with `read`: an answer that
    /// does not read as it should is a failure of the try, retried like one.
    async fn execute_as<T>(
        &self,
        req: &ApiRequest,
        read: impl Fn(Bytes) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut tries = Tries::default();
        loop {
            let mut err = match self.execute_once(req).await.and_then(|r| read(r.body)) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let next = tries.after(self, &err);
            err.attempts = tries.sent;
            match next {
                Next::GiveUp => return Err(err),
                Next::Retry(wait) => {
                    tracing::info!(
                        operation = err.operation.name(),
                        error = %err,
                        wait_ms = wait.as_millis() as u64,
                        "retrying"
                    );
                    if let Err(h) = self.inner.health.sleep(wait).await {
                        return Err(ApiError::halted(req.operation, &h));
                    }
                }
            }
        }
    }

    /// The bare HTTP exchange: the outage gate (not for a probe), pacing, headers, and sorting
    /// the outcome.
    async fn send(
        &self,
        req: &ApiRequest,
        token: Option<&Secret>,
        probe: bool,
    ) -> Result<Reply, ApiError> {
        let op = req.operation;
        let health = &self.inner.health;
        if !probe {
            health.admit().await.map_err(|h| ApiError::halted(op, &h))?;
        }
        if let Some(p) = &self.inner.pacer {
            // A request waiting for its turn is dropped at once by a halt: a stopped job sends
            // nothing that had not left.
            tokio::select! {
                _ = p.acquire() => {}
                h = health.until_halted(), if !probe => return Err(ApiError::halted(op, &h)),
            }
        }
        let result = self.exchange(req, token).await;
        let reached = !matches!(&result, Err(e) if e.code.as_deref() == Some("connect"));
        if let Some(p) = &self.inner.pacer {
            p.sent(reached);
        }
        if is_answer(&result) {
            health.answered();
        }
        result
    }

    async fn exchange(&self, req: &ApiRequest, token: Option<&Secret>) -> Result<Reply, ApiError> {
        let op = req.operation;
        let url = format!("{}{}", self.inner.base_url, req.path);
        let method = match op.method() {
            c::Method::Get => reqwest::Method::GET,
            c::Method::Post => reqwest::Method::POST,
            c::Method::Put => reqwest::Method::PUT,
            c::Method::Delete => reqwest::Method::DELETE,
        };
        let mut rb = self
            .inner
            .http
            .request(method, &url)
            .header("accept", "application/json");
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        if let Some(t) = req.timeout {
            rb = rb.timeout(t);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t.expose());
        }
        if let Some(body) = &req.body {
            rb = rb
                .header("content-type", "application/json")
                .body(body.clone());
        }
        tracing::debug!(operation = op.name(), path = %req.path, "sending");
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(op, &req.path, e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(c::RETRY_AFTER_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(Box::<str>::from);
        let body = resp.bytes().await.map_err(|e| {
            let mut err = transport_error(op, &req.path, e);
            if (200..300).contains(&status) {
                // The change happened, but what it made cannot be read.
                err.kind = ErrorKind::OutcomeUnknown;
            }
            err.status = Some(status);
            err.content_type = content_type.clone();
            err
        })?;
        tracing::debug!(operation = op.name(), status, "answered");
        if (200..300).contains(&status) {
            if !c::is_contract_answer(op, status, content_type.as_deref(), &body) {
                return Err(ApiError::not_the_apis(op, status, content_type, &body));
            }
            Ok(Reply {
                status,
                content_type,
                body,
            })
        } else {
            let mut e = ApiError::from_response(op, status, &body, retry_after);
            e.content_type = content_type;
            Err(e)
        }
    }

    /// Starts the probe of an outage: one request at a growing interval until the API
    /// answers, the key is refused, or the outage outlasts its limit.
    fn start_probe(&self, outage: u64) {
        let me = self.clone();
        tokio::spawn(async move {
            let health = me.inner.health.clone();
            while let Some(wait) = health.next_probe(outage) {
                if health.sleep(wait).await.is_err() || !health.is_down() {
                    return;
                }
                match me.probe().await {
                    Ok(()) => {
                        health.answered();
                        return;
                    }
                    Err(e) if e.is_halted() => return,
                    Err(e) => {
                        tracing::info!(error = %e, "the API is still not answering");
                        health.failed(&e.to_string(), false);
                    }
                }
            }
        });
    }

    /// One request past the outage gate: Get Stats with the token in hand, or, without one,
    /// a token request (which also says whether the key is still accepted).
    async fn probe(&self) -> Result<(), ApiError> {
        let outcome = match self.inner.auth.current().await {
            Some((token, generation)) => {
                let r = self
                    .send(
                        &ApiRequest::new(Operation::GetStats, &[]),
                        Some(&token),
                        true,
                    )
                    .await;
                if matches!(&r, Err(e) if e.status == Some(401)) {
                    // The next probe asks for a new token, which says whether the key stands.
                    self.inner.auth.invalidate(generation).await;
                }
                r.map(|_| ())
            }
            None => self.inner.auth.probe(self).await,
        };
        if is_answer(&outcome) {
            return Ok(());
        }
        outcome.map(|_| ())
    }

    async fn call<T: DeserializeOwned>(&self, req: ApiRequest) -> Result<T, ApiError> {
        let op = req.operation;
        self.execute_as(&req, |body| decode(op, &body)).await
    }

    async fn call_no_content(&self, req: ApiRequest) -> Result<(), ApiError> {
        self.execute(&req).await.map(|_| ())
    }

    /// One page of a collection, as the server gave it.
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        req: &ApiRequest,
        page: u32,
        page_size: u32,
    ) -> Result<ListResponse<T>, ApiError> {
        let r = req
            .clone()
            .query(c::PAGE_PARAM, page.to_string())
            .query(c::PAGE_SIZE_PARAM, page_size.to_string());
        let op = req.operation;
        self.execute_as(&r, |body| decode(op, &body)).await
    }

    /// Every item of a collection: pages until `total` items are in hand, whatever page size
    /// the server chose to use. A list that ends short of its `total` (an empty or short page
    /// before the end, items moving between pages) is listed again from the first page, and
    /// is an error if it stays incomplete: a create that takes "not in the list" to mean "not
    /// there" must never be looking at part of the list.
    pub async fn list_all<T: DeserializeOwned>(&self, req: ApiRequest) -> Result<Vec<T>, ApiError> {
        let policy = self.inner.retry;
        let mut tries = 0;
        loop {
            tries += 1;
            match self.list_once(&req).await? {
                Ok(all) => return Ok(all),
                Err(mut incomplete) if tries >= policy.max_attempts.max(1) => {
                    incomplete.attempts = tries;
                    return Err(incomplete);
                }
                Err(incomplete) => {
                    tracing::info!(error = %incomplete, "listing again");
                    tokio::time::sleep(policy.backoff(tries)).await;
                }
            }
        }
    }

    /// One pass over a collection's pages: the items, or why the list came back incomplete.
    async fn list_once<T: DeserializeOwned>(
        &self,
        req: &ApiRequest,
    ) -> Result<Result<Vec<T>, ApiError>, ApiError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let resp: ListResponse<T> = self.list_page(req, page, c::MAX_PAGE_SIZE).await?;
            let got = resp.data.len() as u64;
            out.extend(resp.data);
            let have = out.len() as u64;
            if have >= resp.meta.total {
                return Ok(Ok(out));
            }
            // The server says what page size it used; a page shorter than that (or empty)
            // before `total` means the list ended early.
            let used = u64::from(resp.meta.page_size.max(1));
            if got == 0 || got < used {
                return Ok(Err(ApiError::transport(
                    req.operation,
                    ErrorKind::Transient,
                    "incomplete_list",
                    format!(
                        "the list ended at {have} of the {} items it announced (page {page} held {got} of {used}); it was not complete",
                        resp.meta.total
                    ),
                )));
            }
            page += 1;
        }
    }

    // --- Reference data ----------------------------------------------------------------------

    pub async fn lookup_addresses(
        &self,
        postcode: &str,
    ) -> Result<Vec<c::LookedUpAddress>, ApiError> {
        self.list_all(
            ApiRequest::new(Operation::LookupAddresses, &[]).query(c::POSTCODE_PARAM, postcode),
        )
        .await
    }

    pub async fn list_area_codes(&self) -> Result<Vec<c::AreaCode>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListAreaCodes, &[]))
            .await
    }

    pub async fn list_available_numbers(
        &self,
        area_code: &str,
    ) -> Result<Vec<c::AvailableNumber>, ApiError> {
        self.list_all(
            ApiRequest::new(Operation::ListAvailableNumbers, &[])
                .query(c::AREA_CODE_PARAM, area_code),
        )
        .await
    }

    pub async fn list_products(&self) -> Result<Vec<c::Product>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListProducts, &[]))
            .await
    }

    pub async fn get_stats(&self) -> Result<c::Stats, ApiError> {
        self.call(ApiRequest::new(Operation::GetStats, &[])).await
    }

    // --- Customers ---------------------------------------------------------------------------

    pub async fn list_customers(&self) -> Result<Vec<c::Customer>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListCustomers, &[]))
            .await
    }

    pub async fn add_customer(&self, new: &c::NewCustomer) -> Result<c::Customer, ApiError> {
        self.call(ApiRequest::add_customer(new)).await
    }

    pub async fn get_customer(&self, id: &str) -> Result<c::Customer, ApiError> {
        self.call(ApiRequest::new(Operation::GetCustomer, &[id]))
            .await
    }

    pub async fn update_customer(
        &self,
        id: &str,
        changes: &c::CustomerChanges,
    ) -> Result<c::Customer, ApiError> {
        self.call(ApiRequest::update_customer(id, changes)).await
    }

    pub async fn delete_customer(&self, id: &str) -> Result<(), ApiError> {
        self.call_no_content(ApiRequest::delete_customer(id)).await
    }

    pub async fn regrade_contract(&self, id: &str, months: u32) -> Result<c::Customer, ApiError> {
        self.call(ApiRequest::regrade_contract(id, months)).await
    }

    pub async fn upgrade_plan(&self, id: &str, plan: c::Plan) -> Result<c::Customer, ApiError> {
        self.call(ApiRequest::upgrade_plan(id, plan)).await
    }

    // --- Numbers -----------------------------------------------------------------------------

    pub async fn list_customer_numbers(&self, customer: &str) -> Result<Vec<c::Number>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListCustomerNumbers, &[customer]))
            .await
    }

    pub async fn add_customer_number(
        &self,
        customer: &str,
        number: &str,
    ) -> Result<c::Number, ApiError> {
        self.call(ApiRequest::add_customer_number(customer, number))
            .await
    }

    pub async fn get_customer_number(
        &self,
        customer: &str,
        number_id: &str,
    ) -> Result<c::Number, ApiError> {
        self.call(ApiRequest::new(
            Operation::GetCustomerNumber,
            &[customer, number_id],
        ))
        .await
    }

    pub async fn allocate_number(
        &self,
        customer: &str,
        number_id: &str,
        user_id: &str,
    ) -> Result<c::Number, ApiError> {
        self.call(ApiRequest::allocate_number(customer, number_id, user_id))
            .await
    }

    pub async fn deallocate_number(&self, customer: &str, number_id: &str) -> Result<(), ApiError> {
        self.call_no_content(ApiRequest::deallocate_number(customer, number_id))
            .await
    }

    // --- Blocked numbers ---------------------------------------------------------------------

    pub async fn list_blocked_numbers(
        &self,
        customer: &str,
    ) -> Result<Vec<c::BlockedNumber>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListBlockedNumbers, &[customer]))
            .await
    }

    pub async fn add_blocked_number(
        &self,
        customer: &str,
        new: &c::NewBlockedNumber,
    ) -> Result<c::BlockedNumber, ApiError> {
        self.call(ApiRequest::add_blocked_number(customer, new))
            .await
    }

    pub async fn get_blocked_number(
        &self,
        customer: &str,
        id: &str,
    ) -> Result<c::BlockedNumber, ApiError> {
        self.call(ApiRequest::new(
            Operation::GetBlockedNumber,
            &[customer, id],
        ))
        .await
    }

    pub async fn update_blocked_number(
        &self,
        customer: &str,
        id: &str,
        changes: &c::BlockedNumberChanges,
    ) -> Result<c::BlockedNumber, ApiError> {
        self.call(ApiRequest::update_blocked_number(customer, id, changes))
            .await
    }

    pub async fn delete_blocked_number(&self, customer: &str, id: &str) -> Result<(), ApiError> {
        self.call_no_content(ApiRequest::delete_blocked_number(customer, id))
            .await
    }

    // --- Users -------------------------------------------------------------------------------

    pub async fn list_users(&self, customer: &str) -> Result<Vec<c::User>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListCustomerUsers, &[customer]))
            .await
    }

    pub async fn add_user(&self, customer: &str, new: &c::NewUser) -> Result<c::User, ApiError> {
        self.call(ApiRequest::add_user(customer, new)).await
    }

    pub async fn update_user(
        &self,
        customer: &str,
        user: &str,
        changes: &c::UserChanges,
    ) -> Result<c::User, ApiError> {
        self.call(ApiRequest::update_user(customer, user, changes))
            .await
    }

    pub async fn delete_user(&self, customer: &str, user: &str) -> Result<(), ApiError> {
        self.call_no_content(ApiRequest::delete_user(customer, user))
            .await
    }

    pub async fn resend_activation(
        &self,
        customer: &str,
        user: &str,
    ) -> Result<c::EmailSent, ApiError> {
        self.call(ApiRequest::resend_activation(customer, user))
            .await
    }

    pub async fn request_password_reset(
        &self,
        customer: &str,
        user: &str,
    ) -> Result<c::EmailSent, ApiError> {
        self.call(ApiRequest::request_password_reset(customer, user))
            .await
    }

    pub async fn update_call_settings(
        &self,
        customer: &str,
        user: &str,
        settings: &c::CallSettings,
    ) -> Result<c::CallSettings, ApiError> {
        self.call(ApiRequest::update_call_settings(customer, user, settings))
            .await
    }

    pub async fn update_schedule_settings(
        &self,
        customer: &str,
        user: &str,
        settings: &c::ScheduleSettings,
    ) -> Result<c::ScheduleSettings, ApiError> {
        self.call(ApiRequest::update_schedule_settings(
            customer, user, settings,
        ))
        .await
    }

    // --- Orders and devices ------------------------------------------------------------------

    pub async fn list_customer_orders(&self, customer: &str) -> Result<Vec<c::Order>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListCustomerOrders, &[customer]))
            .await
    }

    pub async fn add_order(&self, customer: &str, new: &c::NewOrder) -> Result<c::Order, ApiError> {
        self.call(ApiRequest::add_order(customer, new)).await
    }

    pub async fn list_partner_orders(&self) -> Result<Vec<c::Order>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListPartnerOrders, &[]))
            .await
    }

    pub async fn add_device(
        &self,
        customer: &str,
        user: &str,
        new: &c::NewDevice,
    ) -> Result<c::Device, ApiError> {
        self.call(ApiRequest::add_device(customer, user, new)).await
    }

    // --- Partner -----------------------------------------------------------------------------

    pub async fn get_partner_settings(&self) -> Result<c::PartnerSettings, ApiError> {
        self.call(ApiRequest::new(Operation::GetPartnerSettings, &[]))
            .await
    }

    pub async fn update_partner_settings(
        &self,
        changes: &c::PartnerSettings,
    ) -> Result<c::PartnerSettings, ApiError> {
        self.call(ApiRequest::new(Operation::UpdatePartnerSettings, &[]).json(changes))
            .await
    }

    pub async fn list_user_permissions(&self) -> Result<Vec<c::Permission>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListUserPermissions, &[]))
            .await
    }

    pub async fn update_user_permissions(
        &self,
        update: &c::PermissionsUpdate,
    ) -> Result<Vec<c::Permission>, ApiError> {
        let resp: ListResponse<c::Permission> = self
            .call(ApiRequest::new(Operation::UpdateUserPermissions, &[]).json(update))
            .await?;
        Ok(resp.data)
    }

    pub async fn list_partner_users(&self) -> Result<Vec<c::PartnerUser>, ApiError> {
        self.list_all(ApiRequest::new(Operation::ListPartnerUsers, &[]))
            .await
    }

    pub async fn add_partner_user(
        &self,
        new: &c::NewPartnerUser,
    ) -> Result<c::PartnerUser, ApiError> {
        self.call(ApiRequest::add_partner_user(new)).await
    }

    pub async fn update_partner_user(
        &self,
        id: &str,
        changes: &c::PartnerUserChanges,
    ) -> Result<c::PartnerUser, ApiError> {
        self.call(ApiRequest::update_partner_user(id, changes))
            .await
    }

    pub async fn delete_partner_user(&self, id: &str) -> Result<(), ApiError> {
        self.call_no_content(ApiRequest::delete_partner_user(id))
            .await
    }
}

/// The base URL as one spelling: scheme and host in lower case, no default port, no trailing
/// slash. The per-key budget, the job's record and the lock on an input are keyed by it, so
/// `…/v1` and `…/v1/` are one endpoint.
pub fn normalize_base_url(raw: &str) -> Result<String, SetupError> {
    let raw = raw.trim();
    let bad = |why: &str| {
        SetupError(format!(
            "the base URL {raw:?} {why}: write it like https://api.phonelineplus.com/v1 (or http://127.0.0.1:PORT for a local sandbox)"
        ))
    };
    let url = reqwest::Url::parse(raw).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(
            "must start with https:// (or http:// for a local sandbox)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not carry a query or a fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Whether the API itself answered: a success, or its own refusal of the request. A 5xx,
/// even in the contract's words, says the API is not well: no sign that an outage is over.
fn is_answer<T>(r: &Result<T, ApiError>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => e.from_api && e.status.is_some_and(|s| s < 500),
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (as RFC 9110 allows both), as a wait from
/// `now`. A date in the past is no wait; a value that is neither is ignored.
fn retry_after(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A response body as `T`. A success whose body does not have the contract's shape proves
/// nothing: for a write its outcome is unknown (it may have happened, and what it made cannot
/// be read); a read is simply asked again.
pub fn decode<T: DeserializeOwned>(op: Operation, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::transport(
            op,
            if op.is_write() {
                ErrorKind::OutcomeUnknown
            } else {
                ErrorKind::Transient
            },
            "unreadable_response",
            format!("the answer does not have the contract's shape: {e}"),
        )
    })
}

fn transport_error(op: Operation, path: &str, e: reqwest::Error) -> ApiError {
    let mut chain = Vec::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        chain.push(s.to_string());
        src = s.source();
    }
    let (kind, code, what) = if e.is_connect() {
        (ErrorKind::Transient, "connect", "could not connect")
    } else if e.is_timeout() {
        (ErrorKind::OutcomeUnknown, "timeout", "no response in time")
    } else if e.is_builder() {
        (
            ErrorKind::Final,
            "bad_request",
            "the request could not be built",
        )
    } else {
        (
            ErrorKind::OutcomeUnknown,
            "no_response",
            "the connection closed without a response",
        )
    };
    let cause = if chain.is_empty() {
        e.without_url().to_string()
    } else {
        chain.join(": ")
    };
    ApiError::transport(op, kind, code, format!("{what} ({path}): {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_rate_limited: 0,
        };
        for _ in 0..50 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.backoff(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            assert!(p.backoff(30) <= Duration::from_secs(1));
        }
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 15:02:10 GMT").unwrap();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 15:02:40 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 15:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date gone by is no wait"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }

    #[test]
    fn refuses_a_base_url_without_a_scheme() {
        let cfg = ClientConfig::new("api.phonelineplus.com", Credentials::new("k", "s"));
        let Err(e) = Client::new(cfg) else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("https://"));
    }

    #[test]
    fn one_endpoint_has_one_spelling() {
        let n = |s: &str| normalize_base_url(s).unwrap();
        assert_eq!(
            n("https://api.phonelineplus.com/v1"),
            "https://api.phonelineplus.com/v1"
        );
        assert_eq!(
            n("https://api.phonelineplus.com/v1/"),
            "https://api.phonelineplus.com/v1"
        );
        assert_eq!(
            n(" HTTPS://API.PhoneLinePlus.com:443/v1// "),
            "https://api.phonelineplus.com/v1"
        );
        assert_eq!(n("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(n("http://127.0.0.1:80"), "http://127.0.0.1");
        assert!(normalize_base_url("ftp://x/v1").is_err());
        assert!(normalize_base_url("https://x/v1?k=1").is_err());
    }
}
