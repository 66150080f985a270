//! The built-in sandbox: an in-memory PL+ Partner API that behaves like the real one.
//!
//! It serves the whole contract (see `routes` and [`world`]) behind a gate that does what the
//! real service does before a request reaches the account: it counts the request against its
//! key's strict sliding window (auth included) and refuses it with 429 and `Retry-After` when
//! the window is full, checks the token, and, when asked, injects the faults a real API behind
//! load balancers produces ([`Injected`]): latency; 500/503 before anything is applied; a
//! request lost before it is handled; a write applied and then answered by a closed connection
//! (dropped), by a gateway's 502/504, or applied only after the client has given up (late);
//! an answer that is not the API's (a `200` HTML page from a portal or firewall in front of it,
//! before or after the change is applied) or is cut off half-way (truncated). It can also make
//! the API go away for a while ([`outage`]): connections refused or left hanging, or the key
//! refused as after a rotation. Random faults come from one seeded generator, so a run with the
//! same seed and the same request order fails the same way; a test can also script the next N
//! requests of an operation to fail in a given way (`POST /__sandbox/faults`), and schedule
//! outages and key refusals (`POST /__sandbox/outage`, `POST /__sandbox/key-refused`).
//!
//! As in mini-redis, [`run`] takes a bound listener and a shutdown future, so tests bind port 0,
//! run the real server in-process and stop it cleanly; [`Sandbox::start`] wraps that.

pub mod outage;
mod routes;
mod seed;
pub mod store;
pub mod world;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::contract::{self as c, AuthRequest, AuthResponse, Operation};
use crate::pacing::Rate;
use outage::Periods;
pub use outage::{KeyRefusal, Outage, OutageMode, PlannedOutage, PlannedRefusal};
pub use store::Store;
use world::Fault;
pub use world::World;

pub const DEFAULT_KEY: &str = "sandbox-key";
pub const DEFAULT_SECRET: &str = "sandbox-secret";

/// Added latency: a fixed delay, or a uniform draw from a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    pub min: Duration,
    pub max: Duration,
}

impl FromStr for Latency {
    type Err = String;

    /// `150` or `100-200` (milliseconds).
    fn from_str(s: &str) -> Result<Latency, String> {
        let ms = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("latency {s:?} must be milliseconds, like 150 or 100-200"))
        };
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (ms(a)?, ms(b)?),
            None => (ms(s)?, ms(s)?),
        };
        if max < min {
            return Err(format!(
                "latency {s:?}: the range must run from low to high"
            ));
        }
        Ok(Latency { min, max })
    }
}

/// A fault the gate can put on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Injected {
    /// 500 or 503 with the contract's error body, before anything is applied.
    Fail,
    /// The connection closes before the request is handled: nothing applied, no answer.
    Lost,
    /// Applied, then the connection closes without an answer.
    Drop,
    /// Applied, then a gateway's 502 or 504 page instead of the answer.
    Gateway,
    /// Held for [`SandboxConfig::late_commit`] before it is applied: past the client's timeout,
    /// so the client gives up on a change that lands afterwards.
    Late,
    /// A list's page comes back one item short of what it should hold, as a page of a real
    /// API can while the collection changes under it.
    Short,
    /// Something in front of the API (a captive portal, a firewall) answers `200` with an HTML
    /// page of its own: the request never reaches the account.
    Page,
    /// The request is passed on and applied, then its answer is replaced by a `200` HTML page.
    /// A request the API refuses keeps its own answer (and the log no fault), as with
    /// `gateway`: the fault is about a change that was made.
    PageApplied,
    /// Applied; the answer has its status and JSON content type, but its body is cut off
    /// half-way, so it does not parse. As with `page-applied`, only on a success with a body.
    Truncated,
    /// Held by a hanging outage, then closed without an answer; never applied. Only in the
    /// log: outages are scheduled with `POST /__sandbox/outage`, not per request.
    Hang,
    /// Refused with 401 while the key is refused. Only in the log: refusals are scheduled with
    /// `POST /__sandbox/key-refused`, not per request.
    KeyRefused,
}

impl Injected {
    /// The faults a write can meet.
    pub const WRITES: [Injected; 5] = [
        Injected::Fail,
        Injected::Lost,
        Injected::Drop,
        Injected::Gateway,
        Injected::Late,
    ];

    /// The answers that are not the API's: from none of them can a client tell whether a write
    /// was applied.
    pub const NOT_THE_APIS: [Injected; 3] =
        [Injected::Page, Injected::PageApplied, Injected::Truncated];

    pub fn name(self) -> &'static str {
        match self {
            Injected::Fail => "fail",
            Injected::Lost => "lost",
            Injected::Drop => "drop",
            Injected::Gateway => "gateway",
            Injected::Late => "late",
            Injected::Short => "short",
            Injected::Page => "page",
            Injected::PageApplied => "page-applied",
            Injected::Truncated => "truncated",
            Injected::Hang => "hang",
            Injected::KeyRefused => "key-refused",
        }
    }

    /// Whether the fault is one request's, so that it can be scripted for an operation; the
    /// others are spells of time with endpoints of their own.
    pub fn is_per_request(self) -> bool {
        match self {
            Injected::Fail
            | Injected::Lost
            | Injected::Drop
            | Injected::Gateway
            | Injected::Late
            | Injected::Short
            | Injected::Page
            | Injected::PageApplied
            | Injected::Truncated => true,
            Injected::Hang | Injected::KeyRefused => false,
        }
    }
}

/// The next `times` requests of `operation` meet `fault`, whatever the random draw says.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ScriptedFault {
    /// The operation's overview name, e.g. "Add Customer".
    pub operation: String,
    pub fault: Injected,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// API keys and their secrets that `/auth` accepts.
    pub keys: Vec<(String, String)>,
    pub rate: Rate,
    pub token_ttl: Duration,
    /// Fraction of requests answered 500 or 503 without being processed.
    pub fail_rate: f64,
    /// Fraction of successful creates committed and then answered with a closed connection.
    pub drop_rate: f64,
    /// Fraction of writes applied and then answered by a gateway's 502 or 504.
    pub gateway_rate: f64,
    /// Fraction of writes applied only after [`SandboxConfig::late_commit`].
    pub late_rate: f64,
    /// Fraction of writes whose connection closes before they are handled.
    pub lost_rate: f64,
    /// How long a late write is held before it is applied.
    pub late_commit: Duration,
    pub latency: Latency,
    pub seed: u64,
    /// The largest page the server gives, whatever `pageSize` asks.
    pub max_page_size: u32,
    /// Fraction of requests answered `200` with an HTML page by something in front of the
    /// API; a draw decides whether the request was applied first ([`Injected::PageApplied`])
    /// or never passed on ([`Injected::Page`]).
    pub page_rate: f64,
    /// Fraction of successful answers cut off half-way after the change is applied.
    pub truncate_rate: f64,
    /// A 429's `Retry-After` as an HTTP date instead of seconds.
    pub retry_after_date: bool,
    /// Outages counted from the sandbox's start.
    pub outages: Vec<PlannedOutage>,
    /// Chance that a request starts an outage of [`SandboxConfig::outage_for`]; the request
    /// that starts it is its first casualty.
    pub outage_rate: f64,
    pub outage_for: Duration,
    pub outage_mode: OutageMode,
    /// Spells of the key refused, counted from the sandbox's start.
    pub key_refusals: Vec<PlannedRefusal>,
    /// Chance that a request starts a key refusal of [`SandboxConfig::key_refused_for`]; the
    /// request that starts it is refused.
    pub key_refused_rate: f64,
    pub key_refused_for: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            keys: vec![(DEFAULT_KEY.to_string(), DEFAULT_SECRET.to_string())],
            rate: Rate::default(),
            token_ttl: Duration::from_secs(3600),
            fail_rate: 0.0,
            drop_rate: 0.0,
            gateway_rate: 0.0,
            late_rate: 0.0,
            lost_rate: 0.0,
            late_commit: Duration::from_millis(1500),
            latency: Latency::default(),
            seed: 0,
            max_page_size: c::MAX_PAGE_SIZE,
            page_rate: 0.0,
            truncate_rate: 0.0,
            retry_after_date: false,
            outages: Vec::new(),
            outage_rate: 0.0,
            outage_for: Duration::from_secs(30),
            outage_mode: OutageMode::Refuse,
            key_refusals: Vec::new(),
            key_refused_rate: 0.0,
            key_refused_for: Duration::from_secs(30),
        }
    }
}

/// One line of the request log, as `GET /__sandbox/requests` gives it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct LogEntry {
    /// When the request arrived, in milliseconds since the sandbox started.
    pub t_ms: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub key: String,
    /// The change was made and the connection closed without an answer.
    #[serde(default)]
    pub dropped: bool,
    /// The fault the gate put on the request, if any.
    #[serde(default)]
    pub fault: Option<Injected>,
}

pub(crate) struct Shared {
    config: SandboxConfig,
    world: Mutex<World>,
    /// token → (key, expiry, issued)
    tokens: Mutex<HashMap<String, (String, Instant, Instant)>>,
    /// key → times of the requests admitted within the last window
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    rng: Mutex<StdRng>,
    /// Faults scripted for the next requests of an operation, in the order given.
    script: Mutex<Vec<(Operation, Injected, u32)>>,
    /// The latest [`LOG_LIMIT`] requests, oldest first.
    log: Mutex<VecDeque<LogEntry>>,
    /// Outages and key refusals, planned, in force and past.
    periods: Mutex<Periods>,
    /// Wakes the accept loop when an outage is added, so that it closes the port on time.
    periods_changed: Notify,
    started: Instant,
    /// Where the account is kept after every write, if anywhere (see [`store`]).
    store: Mutex<Option<Arc<Store>>>,
}

/// Requests the log keeps: a sandbox left running for weeks must not grow without end, and
/// this is hours of traffic at the real limit (about 20 MB).
pub const LOG_LIMIT: usize = 200_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks a response whose connection is to be closed instead of answered.
#[derive(Clone, Copy)]
struct DropConnection;

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

struct Draw {
    delay: Duration,
    fail: Option<u16>,
    drop: bool,
    gateway: bool,
    late: bool,
    lost: bool,
    /// 502 or 504, for a gateway fault.
    gateway_status: u16,
    page: bool,
    /// For a page: whether the request was applied before the page replaced its answer.
    page_applied: bool,
    truncate: bool,
    outage: bool,
    key_refused: bool,
}

impl Draw {
    /// The random fault for a request of `op` (None when it is not one of the contract's).
    fn fault(&self, op: Option<Operation>) -> Option<Injected> {
        let write = op.is_some_and(Operation::is_write);
        if self.fail.is_some() {
            Some(Injected::Fail)
        } else if write && self.gateway {
            Some(Injected::Gateway)
        } else if write && self.late {
            Some(Injected::Late)
        } else if write && self.lost {
            Some(Injected::Lost)
        } else if self.drop && op.is_some_and(Operation::is_create) {
            Some(Injected::Drop)
        } else if self.page && op.is_some() {
            Some(if self.page_applied {
                Injected::PageApplied
            } else {
                Injected::Page
            })
        } else if self.truncate && op.is_some() {
            Some(Injected::Truncated)
        } else {
            None
        }
    }
}

impl Shared {
    fn new(config: SandboxConfig, world: World) -> Shared {
        let started = Instant::now();
        let mut periods = Periods::default();
        for o in &config.outages {
            let start = started + o.after;
            periods.add_outage(o.mode, start, start + o.duration);
        }
        for r in &config.key_refusals {
            let start = started + r.after;
            periods.add_refusal(start, start + r.duration);
        }
        Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            script: Mutex::new(Vec::new()),
            config,
            world: Mutex::new(world),
            tokens: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
            log: Mutex::new(VecDeque::new()),
            periods: Mutex::new(periods),
            periods_changed: Notify::new(),
            started,
            store: Mutex::new(None),
        }
    }

    /// Counts a request against `key`'s window, or says how long until one would be admitted.
    fn admit(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Rate { count, window } = self.config.rate;
        let mut windows = lock(&self.windows);
        let w = windows.entry(key.to_string()).or_default();
        while w.front().is_some_and(|t| now.duration_since(*t) >= window) {
            w.pop_front();
        }
        if w.len() >= count as usize {
            return Err(window - now.duration_since(w[0]));
        }
        w.push_back(now);
        Ok(())
    }

    fn draw(&self) -> Draw {
        let cfg = &self.config;
        let mut rng = lock(&self.rng);
        // Always draw the same numbers so one fault's setting does not shift another's.
        let (l, f, which, d): (f64, f64, bool, f64) =
            (rng.random(), rng.random(), rng.random(), rng.random());
        let (g, late, lost): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
        // New draws go after the old ones only, so that a seed keeps giving the faults it gave
        // before these settings existed.
        let (page, applied, cut, outage, refused): (f64, bool, f64, f64, f64) = (
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
        );
        let span = cfg.latency.max.saturating_sub(cfg.latency.min);
        Draw {
            delay: cfg.latency.min + span.mul_f64(l),
            fail: (f < cfg.fail_rate).then_some(if which { 500 } else { 503 }),
            drop: d < cfg.drop_rate,
            gateway: g < cfg.gateway_rate,
            late: late < cfg.late_rate,
            lost: lost < cfg.lost_rate,
            gateway_status: if which { 502 } else { 504 },
            page: page < cfg.page_rate,
            page_applied: applied,
            truncate: cut < cfg.truncate_rate,
            outage: outage < cfg.outage_rate,
            key_refused: refused < cfg.key_refused_rate,
        }
    }

    /// Adds scripted faults, after those already waiting.
    pub(crate) fn script(&self, faults: &[ScriptedFault]) -> Result<(), String> {
        let mut script = lock(&self.script);
        for f in faults {
            let op = Operation::ALL
                .iter()
                .copied()
                .find(|o| o.name().eq_ignore_ascii_case(f.operation.trim()))
                .ok_or_else(|| format!("{:?} is not an operation of the contract", f.operation))?;
            if !f.fault.is_per_request() {
                return Err(format!(
                    "{} is not a fault of one request: use POST /__sandbox/outage or POST /__sandbox/key-refused",
                    f.fault.name()
                ));
            }
            if f.times > 0 {
                script.push((op, f.fault, f.times));
            }
        }
        Ok(())
    }

    /// The scripted fault for this request of `op`, used up as it is taken.
    fn scripted(&self, op: Operation) -> Option<Injected> {
        let mut script = lock(&self.script);
        let i = script.iter().position(|(o, _, _)| *o == op)?;
        let fault = script[i].1;
        script[i].2 -= 1;
        if script[i].2 == 0 {
            script.remove(i);
        }
        Some(fault)
    }

    /// Logs a request, by the time it arrived: the window counts arrivals, and so must anyone
    /// checking the log against the limit.
    fn record(&self, t_ms: u64, method: &str, path: &str, status: u16, key: &str, dropped: bool) {
        self.record_fault(t_ms, method, path, status, key, dropped, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn record_fault(
        &self,
        t_ms: u64,
        method: &str,
        path: &str,
        status: u16,
        key: &str,
        dropped: bool,
        fault: Option<Injected>,
    ) {
        let mut log = lock(&self.log);
        if log.len() == LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(LogEntry {
            t_ms,
            method: method.to_string(),
            path: path.to_string(),
            status,
            key: key.to_string(),
            dropped,
            fault,
        });
    }

    pub(crate) fn request_log(&self) -> Vec<LogEntry> {
        lock(&self.log).iter().cloned().collect()
    }

    /// The key a token was issued for, and whether it is still good: not expired, and no key
    /// refusal has begun since it was issued.
    fn token_key(&self, token: &str) -> Option<(String, bool)> {
        let now = Instant::now();
        let (key, exp, issued) = lock(&self.tokens).get(token).cloned()?;
        let refused = lock(&self.periods).refused_since(issued, now);
        Some((key, now < exp && !refused))
    }

    fn expire_tokens(&self) {
        let now = Instant::now();
        for (_, exp, _) in lock(&self.tokens).values_mut() {
            *exp = now;
        }
    }

    fn ms_since_start(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Schedules an outage `after` from now, and wakes the accept loop to close the port on
    /// time.
    pub(crate) fn start_outage(
        &self,
        mode: OutageMode,
        after: Duration,
        duration: Duration,
    ) -> Outage {
        let start = Instant::now() + after;
        let end = start + duration;
        lock(&self.periods).add_outage(mode, start, end);
        self.periods_changed.notify_one();
        Outage {
            mode,
            start_ms: self.ms_since_start(start),
            end_ms: self.ms_since_start(end),
        }
    }

    pub(crate) fn refuse_key(&self, after: Duration, duration: Duration) -> KeyRefusal {
        let start = Instant::now() + after;
        let end = start + duration;
        lock(&self.periods).add_refusal(start, end);
        KeyRefusal {
            start_ms: self.ms_since_start(start),
            end_ms: self.ms_since_start(end),
        }
    }

    fn outage_now(&self) -> Option<(OutageMode, Instant)> {
        lock(&self.periods).outage_at(Instant::now())
    }

    fn key_refused_now(&self) -> bool {
        lock(&self.periods).key_refused_at(Instant::now())
    }

    pub(crate) fn outages(&self) -> Vec<Outage> {
        lock(&self.periods).outages(self.started, Instant::now())
    }

    pub(crate) fn key_refusals(&self) -> Vec<KeyRefusal> {
        lock(&self.periods).refusals(self.started, Instant::now())
    }

    fn issue_token(&self, key: &str) -> AuthResponse {
        let mut rng = lock(&self.rng);
        let token = format!(
            "eyJhbGciOiJIUzI1NiJ9.{:032x}.{:032x}",
            rng.random::<u128>(),
            rng.random::<u128>()
        );
        drop(rng);
        let ttl = self.config.token_ttl;
        let now = Instant::now();
        lock(&self.tokens).insert(token.clone(), (key.to_string(), now + ttl, now));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Round down: the client then refreshes a little early, never late.
        AuthResponse {
            access_token: token,
            expires: (now + ttl).as_secs() as i64,
        }
    }
}

async fn auth_handler(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: AuthRequest = match routes::parse(&body) {
        Ok(r) => r,
        Err(f) => return routes::fault(f),
    };
    let known = s
        .config
        .keys
        .iter()
        .any(|(k, secret)| *k == req.key_id && *secret == req.secret);
    if !known {
        return routes::fault(Fault::new(
            401,
            c::codes::UNAUTHORIZED,
            "unknown API key or wrong secret",
        ));
    }
    Json(s.issue_token(&req.key_id)).into_response()
}

/// Everything between the socket and the handler: key, window, faults, token, log.
async fn gate(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    if path.starts_with("/__sandbox/") {
        // Also during a hanging outage: a test looks at what the outage did while it lasts.
        return next.run(req).await;
    }
    let arrived = s.started.elapsed().as_millis() as u64;
    let is_auth = path == Operation::GetJwt.template() && method == c::Method::Post.as_str();
    let (req, key, token_ok) = if is_auth {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, 1 << 20).await {
            Ok(b) => b,
            Err(_) => {
                s.record(arrived, &method, &path, 400, "-", false);
                return routes::fault(Fault::malformed("the body could not be read"));
            }
        };
        let key = serde_json::from_slice::<AuthRequest>(&bytes)
            .ok()
            .map(|a| a.key_id);
        (Request::from_parts(parts, Body::from(bytes)), key, true)
    } else {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token.and_then(|t| s.token_key(t)) {
            Some((k, valid)) => (req, Some(k), valid),
            None => (req, None, false),
        }
    };
    let key_label = key.clone().unwrap_or_else(|| "-".to_string());
    let at = Arrival {
        t_ms: arrived,
        method: &method,
        path: &path,
        key: &key_label,
    };
    // During an outage nothing reaches the API, its limit included.
    if let Some((mode, _)) = s.outage_now() {
        return meet_outage(&s, mode, &at).await;
    }
    if let Some(k) = &key {
        if let Err(wait) = s.admit(k) {
            s.record(arrived, &method, &path, 429, &key_label, false);
            let mut resp = routes::fault(Fault::new(
                429,
                c::codes::RATE_LIMITED,
                format!("more than {} requests for this key", s.config.rate),
            ));
            let value = if s.config.retry_after_date {
                HeaderValue::from_str(&retry_after_date(SystemTime::now(), wait))
                    .unwrap_or_else(|_| HeaderValue::from_static("1"))
            } else {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                HeaderValue::from(secs)
            };
            resp.headers_mut().insert(c::RETRY_AFTER_HEADER, value);
            return resp;
        }
    }
    let draw = s.draw();
    if draw.outage {
        // The request that starts an outage is its first casualty.
        let mode = s.config.outage_mode;
        s.start_outage(mode, Duration::ZERO, s.config.outage_for);
        return meet_outage(&s, mode, &at).await;
    }
    if draw.key_refused {
        s.refuse_key(Duration::ZERO, s.config.key_refused_for);
    }
    let op = Operation::route(&method, &path);
    // Scripted faults are for the account's operations; auth is left to the random draw.
    let fault = match op.filter(|_| !is_auth).and_then(|op| s.scripted(op)) {
        Some(f) => Some(f),
        None => draw.fault(op),
    };
    if !draw.delay.is_zero() {
        tokio::time::sleep(draw.delay).await;
    }
    if fault == Some(Injected::Fail) {
        let status = draw.fail.unwrap_or(503);
        s.record_fault(arrived, &method, &path, status, &key_label, false, fault);
        let code = if status == 500 {
            c::codes::SERVER
        } else {
            c::codes::UNAVAILABLE
        };
        return routes::fault(Fault::new(status, code, "injected fault: try again"));
    }
    if fault == Some(Injected::Page) {
        // Whatever is in front of the API answers before any token is looked at.
        s.record_fault(arrived, &method, &path, 200, &key_label, false, fault);
        return portal_page();
    }
    if s.key_refused_now() {
        s.record_fault(
            arrived,
            &method,
            &path,
            401,
            &key_label,
            false,
            Some(Injected::KeyRefused),
        );
        return routes::fault(Fault::new(
            401,
            c::codes::UNAUTHORIZED,
            "this API key is refused (it may have been rotated in the partner portal)",
        ));
    }
    if !token_ok {
        s.record(arrived, &method, &path, 401, &key_label, false);
        return routes::fault(Fault::new(
            401,
            c::codes::UNAUTHORIZED,
            "missing, unknown or expired access token",
        ));
    }
    if fault == Some(Injected::Lost) {
        s.record_fault(arrived, &method, &path, 0, &key_label, true, fault);
        return closed_connection();
    }
    if fault == Some(Injected::Late) {
        // The handler runs on a task of its own (see `serve`), so the change still lands
        // after the client has stopped waiting for it.
        tokio::time::sleep(s.config.late_commit).await;
    }
    // A kept account takes its writes one at a time, each kept before it is answered.
    let store = op
        .filter(|o| o.is_write())
        .and_then(|_| lock(&s.store).clone());
    let one_at_a_time = match &store {
        Some(st) => Some(st.writes.lock().await),
        None => None,
    };
    let mut resp = next.run(req).await;
    if let Some(st) = &store {
        if let Err(e) = st.keep(&s.world) {
            tracing::error!(error = %e, path = %st.path().display(), "the account cannot be kept");
            s.record(arrived, &method, &path, 503, &key_label, false);
            return routes::fault(Fault::new(
                503,
                c::codes::UNAVAILABLE,
                format!(
                    "the account could not be saved to {} ({e}), so this write was not made",
                    st.path().display()
                ),
            ));
        }
    }
    drop(one_at_a_time);
    let applied = resp.status().is_success();
    let mut dropped = false;
    // A fault that depends on the answer is logged only when it took effect.
    let mut took_effect = true;
    match fault {
        Some(Injected::Drop) => {
            took_effect = applied;
            if applied {
                resp.extensions_mut().insert(DropConnection);
                dropped = true;
            }
        }
        Some(Injected::Gateway) if applied => {
            let status = draw.gateway_status;
            s.record_fault(arrived, &method, &path, status, &key_label, false, fault);
            return gateway_page(status);
        }
        Some(Injected::Short) if applied => resp = short_page(resp).await,
        Some(Injected::PageApplied) => {
            took_effect = applied;
            if applied {
                resp = portal_page();
            }
        }
        Some(Injected::Truncated) => {
            took_effect = false;
            if applied {
                (resp, took_effect) = truncated(resp).await;
            }
        }
        Some(
            Injected::Fail
            | Injected::Lost
            | Injected::Gateway
            | Injected::Late
            | Injected::Short
            | Injected::Page
            | Injected::Hang
            | Injected::KeyRefused,
        )
        | None => {}
    }
    s.record_fault(
        arrived,
        &method,
        &path,
        resp.status().as_u16(),
        &key_label,
        dropped,
        fault.filter(|_| took_effect),
    );
    resp
}

/// Who asked what, and when, for the log.
struct Arrival<'a> {
    t_ms: u64,
    method: &'a str,
    path: &'a str,
    key: &'a str,
}

/// A request that arrives during an outage. Hanging: logged, held unanswered until the outage
/// is over, then its connection closes; it never reaches the account. Refusing (the port is
/// already closed, so only a request that started the outage or slipped in as it began gets
/// here): closed at once, as a lost request.
async fn meet_outage(s: &Shared, mode: OutageMode, at: &Arrival<'_>) -> Response {
    match mode {
        OutageMode::Hang => {
            let hang = Some(Injected::Hang);
            s.record_fault(at.t_ms, at.method, at.path, 0, at.key, false, hang);
            // Another outage may follow on or overlap: wait out all of them.
            while let Some((_, end)) = s.outage_now() {
                tokio::time::sleep_until(end).await;
            }
        }
        OutageMode::Refuse => {
            let lost = Some(Injected::Lost);
            s.record_fault(at.t_ms, at.method, at.path, 0, at.key, true, lost);
        }
    }
    closed_connection()
}

/// A response that `serve` turns into a connection closed without an answer.
fn closed_connection() -> Response {
    let mut resp = StatusCode::SERVICE_UNAVAILABLE.into_response();
    resp.extensions_mut().insert(DropConnection);
    resp
}

/// `Retry-After` as an IMF-fixdate `wait` after `now`, rounded up to the next whole second so
/// that a client honouring it is never early.
fn retry_after_date(now: SystemTime, wait: Duration) -> String {
    let at = (now + wait).duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = at.as_secs() + u64::from(at.subsec_nanos() > 0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// What a captive portal or a web firewall in front of the API answers: `200`, and a page of
/// its own instead of the contract's JSON.
fn portal_page() -> Response {
    let body = "<!DOCTYPE html><html><head><title>Checking your connection</title></head>\
        <body><h1>Checking your connection</h1><p>This check is automatic. You will be \
        redirected once it is complete.</p></body></html>";
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

/// The answer with its body cut off half-way, and whether there was a body to cut.
///
/// The cut body goes out with a Content-Length that matches it, so the HTTP message is whole
/// and only its JSON is broken. The other way, a longer Content-Length and then a close, is not
/// reliable with hyper: it refuses to end a body short of its length by erroring the
/// connection, and its write buffer may be thrown away unflushed with it, so the client would
/// see a bare closed connection (the `drop` fault) instead of a body that does not parse.
async fn truncated(resp: Response) -> (Response, bool) {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return (Response::from_parts(parts, Body::empty()), false);
    };
    // Every answer with a body is a JSON object or array, and no proper prefix of one parses.
    if bytes.len() < 2 {
        return (Response::from_parts(parts, Body::from(bytes)), false);
    }
    let cut = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(cut.len()));
    (Response::from_parts(parts, Body::from(cut)), true)
}

/// A list's answer with the last item of its page taken out (its `meta` left as it was).
async fn short_page(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut v: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(data) = v.get_mut("data").and_then(|d| d.as_array_mut()) {
        data.pop();
    }
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

/// What a gateway in front of the API answers when it gives up on the backend: its own page,
/// not the contract's error body.
fn gateway_page(status: u16) -> Response {
    let (code, text) = if status == 502 {
        (StatusCode::BAD_GATEWAY, "502 Bad Gateway")
    } else {
        (StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out")
    };
    let body =
        format!("<html><head><title>{text}</title></head><body><h1>{text}</h1></body></html>");
    let mut resp = (code, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

fn app(shared: Arc<Shared>) -> Router {
    routes::api(shared.clone()).layer(middleware::from_fn_with_state(shared, gate))
}

/// Serves the sandbox on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_from(listener, config, World::seeded(), shutdown).await
}

/// As [`run`], on a given account state (see [`World::from_saved`]).
pub async fn run_from(
    listener: TcpListener,
    config: SandboxConfig,
    world: World,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve(listener, Arc::new(Shared::new(config, world)), shutdown).await
}

/// As [`run_from`], keeping the account in `store` after every write.
pub async fn run_kept(
    listener: TcpListener,
    config: SandboxConfig,
    world: World,
    store: Store,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Shared::new(config, world);
    *lock(&shared.store) = Some(Arc::new(store));
    serve(listener, Arc::new(shared), shutdown).await
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = app(shared.clone());
    let addr = listener.local_addr()?;
    // None while a refusing outage has the port closed.
    let mut listener = Some(listener);
    tokio::pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        if let Some((OutageMode::Refuse, end)) = shared.outage_now() {
            if listener.take().is_some() {
                // A closed listening socket is a real refusal: the kernel answers a connect
                // with a reset (ECONNREFUSED). Connections already open are closed too, so a
                // keep-alive client cannot slip through; a request in flight on one may still
                // be applied, as when a real server goes down under it.
                connections.abort_all();
                tracing::info!(%addr, "sandbox outage: refusing connections");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep_until(end) => {}
                _ = shared.periods_changed.notified() => {}
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
            continue;
        }
        let Some(open) = &listener else {
            match rebind(addr) {
                Ok(l) => {
                    tracing::info!(%addr, "sandbox outage over: listening again");
                    listener = Some(l);
                }
                Err(e) => {
                    // Someone else took the port meanwhile: keep trying, as a restarted
                    // server would.
                    tracing::warn!(%addr, error = %e, "sandbox cannot listen again yet");
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
            continue;
        };
        let next_refusal = lock(&shared.periods).next_refusing(Instant::now());
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sleep_until_some(next_refusal) => {}
            _ = shared.periods_changed.notified() => {}
            accepted = open.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "sandbox accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let app = app.clone();
                        async move {
                            // Handled on a task of its own so that a client which gives up
                            // (a timeout) does not cancel the change: the real server goes on too.
                            let handled = tokio::spawn(app.oneshot(req.map(Body::new)));
                            let resp = match handled.await {
                                Ok(r) => r.unwrap_or_else(|e| match e {}),
                                Err(_) => return Err(Dropped),
                            };
                            // An error from the service makes hyper close the connection
                            // without writing the response: a lost answer, as on a real network.
                            if resp.extensions().get::<DropConnection>().is_some() {
                                Err(Dropped)
                            } else {
                                Ok(resp)
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
    Ok(())
}

/// Sleeps until `at`, or for ever when there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Binds the port again after a refusing outage. SO_REUSEADDR (which tokio's own bind sets as
/// well) lets the port be taken back while the connections the outage closed wait in TIME_WAIT
/// on it; without it the bind would fail for a minute or more.
fn rebind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A sandbox running in this process, on a loopback port of its own.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Sandbox {
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        Sandbox::start_on("127.0.0.1:0", config).await
    }

    pub async fn start_on(listen: &str, config: SandboxConfig) -> std::io::Result<Sandbox> {
        Sandbox::start_with(listen, config, World::seeded()).await
    }

    /// Starts on the account state a [`Sandbox::save`] wrote, so a rehearsal can be resumed.
    pub async fn start_saved(config: SandboxConfig, saved: &[u8]) -> std::io::Result<Sandbox> {
        Sandbox::start_with("127.0.0.1:0", config, World::from_saved(saved)?).await
    }

    /// Starts on loopback on the account `world`.
    pub async fn start_on_world(config: SandboxConfig, world: World) -> std::io::Result<Sandbox> {
        Sandbox::start_with("127.0.0.1:0", config, world).await
    }

    /// From now on, keeps the account at `path` after every write (see [`store`]); the file
    /// is written at once.
    pub fn keep_at(&self, path: &Path) -> std::io::Result<()> {
        let store = Store::create(path, &self.shared.world())?;
        *lock(&self.shared.store) = Some(Arc::new(store));
        Ok(())
    }

    /// The whole account state, for [`Sandbox::start_saved`].
    pub fn save(&self) -> Vec<u8> {
        serde_json::to_vec(&*self.shared.world()).expect("the world serialises")
    }

    async fn start_with(
        listen: &str,
        config: SandboxConfig,
        world: World,
    ) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, world));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, shared.clone(), async {
            let _ = stopped.await;
        }));
        Ok(Sandbox {
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client should use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Every collection, as `GET /__sandbox/state` gives it.
    pub fn state(&self) -> serde_json::Value {
        self.shared.world().snapshot()
    }

    pub fn requests(&self) -> Vec<LogEntry> {
        self.shared.request_log()
    }

    /// Makes every token issued so far expired, as if the clock had passed them all.
    pub fn expire_tokens(&self) {
        self.shared.expire_tokens();
    }

    /// Scripts faults for the next requests of some operations, as `POST /__sandbox/faults`.
    pub fn inject(&self, faults: &[ScriptedFault]) -> Result<(), String> {
        self.shared.script(faults)
    }

    /// Makes the API unreachable `after` from now for `duration`, as `POST /__sandbox/outage`:
    /// connections refused, or accepted and left hanging. Gives the outage's times in
    /// milliseconds since the sandbox started.
    pub fn outage(&self, mode: OutageMode, after: Duration, duration: Duration) -> Outage {
        self.shared.start_outage(mode, after, duration)
    }

    /// The outages that have begun (planned, asked for or drawn), as `GET /__sandbox/outages`.
    pub fn outages(&self) -> Vec<Outage> {
        self.shared.outages()
    }

    /// Refuses the key `after` from now for `duration`, as `POST /__sandbox/key-refused`: auth
    /// and every call answer 401, and tokens issued before stay refused after it.
    pub fn refuse_key(&self, after: Duration, duration: Duration) -> KeyRefusal {
        self.shared.refuse_key(after, duration)
    }

    /// The key refusals that have begun, as `GET /__sandbox/key-refused`.
    pub fn key_refusals(&self) -> Vec<KeyRefusal> {
        self.shared.key_refusals()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The largest number of requests in any window of `window` in `log` for `key`, from the log's
/// millisecond times: what a test checks against the limit.
pub fn busiest_window(log: &[LogEntry], key: &str, window: Duration) -> usize {
    let mut times: Vec<u64> = log
        .iter()
        .filter(|e| e.key == key && e.status != 429)
        .map(|e| e.t_ms)
        .collect();
    // The log is in the order answers went out; the window is about arrivals.
    times.sort_unstable();
    let w = window.as_millis() as u64;
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= w {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_log_keeps_the_latest_requests() {
        let s = Shared::new(SandboxConfig::default(), World::seeded());
        for t in 0..(LOG_LIMIT + 5) as u64 {
            s.record(t, "GET", "/customers", 200, "k", false);
        }
        let log = s.request_log();
        assert_eq!(log.len(), LOG_LIMIT);
        assert_eq!(log[0].t_ms, 5);
        assert_eq!(log[LOG_LIMIT - 1].t_ms, (LOG_LIMIT + 4) as u64);
    }

    #[test]
    fn latency_parses_fixed_and_ranges() {
        assert_eq!(
            "100-200".parse::<Latency>().unwrap(),
            Latency {
                min: Duration::from_millis(100),
                max: Duration::from_millis(200)
            }
        );
        assert_eq!(
            "5".parse::<Latency>().unwrap().max,
            Duration::from_millis(5)
        );
        assert!("200-100".parse::<Latency>().is_err());
        assert!("fast".parse::<Latency>().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn window_admits_n_then_refuses_until_the_oldest_leaves() {
        let s = Shared::new(
            SandboxConfig {
                rate: Rate::new(3, Duration::from_secs(2)),
                ..Default::default()
            },
            World::seeded(),
        );
        for _ in 0..3 {
            s.admit("k").unwrap();
        }
        assert_eq!(s.admit("k").unwrap_err(), Duration::from_secs(2));
        s.admit("other").expect("keys have their own windows");
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(s.admit("k").is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        s.admit("k").unwrap();
    }

    #[test]
    fn faults_are_deterministic_from_the_seed() {
        let cfg = SandboxConfig {
            fail_rate: 0.3,
            drop_rate: 0.3,
            seed: 42,
            ..Default::default()
        };
        let a = Shared::new(cfg.clone(), World::seeded());
        let b = Shared::new(cfg, World::seeded());
        for _ in 0..100 {
            let (x, y) = (a.draw(), b.draw());
            assert_eq!((x.fail, x.drop), (y.fail, y.drop));
        }
    }

    #[test]
    fn new_draws_come_after_the_old_ones() {
        let old = SandboxConfig {
            fail_rate: 0.3,
            drop_rate: 0.3,
            gateway_rate: 0.2,
            late_rate: 0.1,
            lost_rate: 0.1,
            latency: Latency {
                min: Duration::ZERO,
                max: Duration::from_millis(100),
            },
            seed: 42,
            ..Default::default()
        };
        let new = SandboxConfig {
            page_rate: 0.3,
            truncate_rate: 0.3,
            outage_rate: 0.1,
            key_refused_rate: 0.1,
            ..old.clone()
        };
        let a = Shared::new(old, World::seeded());
        let b = Shared::new(new.clone(), World::seeded());
        let c = Shared::new(new, World::seeded());
        let (mut pages, mut cuts, mut outages, mut refusals) = (0, 0, 0, 0);
        for _ in 0..400 {
            let (x, y, z) = (a.draw(), b.draw(), c.draw());
            // The old settings draw what they drew before the new ones existed...
            assert_eq!(
                (x.delay, x.fail, x.drop, x.gateway, x.late, x.lost),
                (y.delay, y.fail, y.drop, y.gateway, y.late, y.lost)
            );
            assert!(!x.page && !x.truncate && !x.outage && !x.key_refused);
            // ...and the new ones are the same for the same seed.
            let new_of = |d: &Draw| (d.page, d.page_applied, d.truncate, d.outage, d.key_refused);
            assert_eq!(new_of(&y), new_of(&z));
            let op = Some(Operation::AddCustomer);
            assert_eq!(y.fault(op), z.fault(op));
            pages += usize::from(y.page);
            cuts += usize::from(y.truncate);
            outages += usize::from(y.outage);
            refusals += usize::from(y.key_refused);
        }
        for (n, rate) in [(pages, 0.3), (cuts, 0.3), (outages, 0.1), (refusals, 0.1)] {
            let expected = 400.0 * rate;
            assert!(
                (n as f64 - expected).abs() < expected / 2.0,
                "{n} of 400 at {rate}"
            );
        }
    }

    #[test]
    fn a_page_draw_picks_page_or_page_applied_and_existing_faults_come_first() {
        let mut d = Shared::new(SandboxConfig::default(), World::seeded()).draw();
        let op = Some(Operation::ListCustomers);
        assert_eq!(d.fault(op), None);
        d.page = true;
        d.page_applied = false;
        assert_eq!(d.fault(op), Some(Injected::Page));
        d.page_applied = true;
        assert_eq!(d.fault(op), Some(Injected::PageApplied));
        assert_eq!(d.fault(None), None, "only the contract's operations");
        d.fail = Some(500);
        assert_eq!(d.fault(op), Some(Injected::Fail));
        d.fail = None;
        d.page = false;
        d.truncate = true;
        assert_eq!(d.fault(op), Some(Injected::Truncated));
    }

    #[test]
    fn spells_of_time_cannot_be_scripted_per_request() {
        let s = Shared::new(SandboxConfig::default(), World::seeded());
        for fault in [Injected::Hang, Injected::KeyRefused] {
            let e = s
                .script(&[ScriptedFault {
                    operation: "Add Customer".into(),
                    fault,
                    times: 1,
                }])
                .unwrap_err();
            assert!(e.contains("/__sandbox/"), "{e}");
        }
        for fault in [Injected::Page, Injected::PageApplied, Injected::Truncated] {
            let one = ScriptedFault {
                operation: "Add Customer".into(),
                fault,
                times: 1,
            };
            s.script(&[one]).unwrap();
            assert_eq!(s.scripted(Operation::AddCustomer), Some(fault));
            assert_eq!(
                serde_json::to_value(fault).unwrap(),
                serde_json::Value::from(fault.name())
            );
        }
    }

    #[test]
    fn retry_after_as_a_date_rounds_up_to_the_next_second() {
        let now = UNIX_EPOCH + Duration::from_millis(1_796_396_530_250);
        // 2026-12-04T15:02:10.250Z + 0.5 s = .750: the next whole second.
        assert_eq!(
            retry_after_date(now, Duration::from_millis(500)),
            "Fri, 04 Dec 2026 15:02:11 GMT"
        );
        let whole = UNIX_EPOCH + Duration::from_secs(1_796_396_530);
        assert_eq!(
            retry_after_date(whole, Duration::from_secs(3)),
            "Fri, 04 Dec 2026 15:02:13 GMT"
        );
        let parsed =
            httpdate::parse_http_date(&retry_after_date(now, Duration::from_millis(1))).unwrap();
        assert!(parsed >= now + Duration::from_millis(1));
    }

    #[tokio::test]
    async fn a_truncated_answer_keeps_its_status_and_type_and_does_not_parse() {
        let body = serde_json::json!({"id": "cus-1", "companyName": "Acme Ltd"});
        let resp = (StatusCode::CREATED, Json(body)).into_response();
        let (resp, cut) = truncated(resp).await;
        assert!(cut);
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let length = resp.headers()[header::CONTENT_LENGTH].clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(length, bytes.len().to_string().as_str());
        assert!(!bytes.is_empty());
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());

        let (empty, cut) = truncated(StatusCode::NO_CONTENT.into_response()).await;
        assert!(!cut, "nothing to cut in a 204");
        assert_eq!(empty.status(), StatusCode::NO_CONTENT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_refusal_kills_the_tokens_issued_before_it() {
        let s = Shared::new(SandboxConfig::default(), World::seeded());
        let old = s.issue_token(DEFAULT_KEY).access_token;
        assert_eq!(s.token_key(&old), Some((DEFAULT_KEY.to_string(), true)));
        s.refuse_key(Duration::from_secs(1), Duration::from_secs(2));
        assert!(!s.key_refused_now());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(s.key_refused_now());
        assert_eq!(s.token_key(&old), Some((DEFAULT_KEY.to_string(), false)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!s.key_refused_now());
        assert_eq!(s.token_key(&old), Some((DEFAULT_KEY.to_string(), false)));
        let new = s.issue_token(DEFAULT_KEY).access_token;
        assert_eq!(s.token_key(&new), Some((DEFAULT_KEY.to_string(), true)));
        assert_eq!(
            s.key_refusals(),
            vec![KeyRefusal {
                start_ms: 1000,
                end_ms: 3000
            }]
        );
    }

    #[test]
    fn busiest_window_counts_a_sliding_window() {
        let e = |t| LogEntry {
            t_ms: t,
            method: "GET".into(),
            path: "/".into(),
            status: 200,
            key: "k".into(),
            dropped: false,
            fault: None,
        };
        let log: Vec<_> = [0, 500, 999, 1000, 1001, 1998].into_iter().map(e).collect();
        assert_eq!(busiest_window(&log, "k", Duration::from_secs(1)), 4);
    }
}
