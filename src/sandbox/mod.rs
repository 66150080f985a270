//! The built-in sandbox: an in-memory PL+ Partner API that behaves like the real one.
//!
//! It serves the whole contract (see `routes` and [`world`]) behind a gate that does what the
//! real service does before a request reaches the account: it counts the request against its
//! key's strict sliding window (auth included) and refuses it with 429 and `Retry-After` when
//! the window is full, checks the token, and, when asked, injects the faults a real API behind
//! load balancers produces ([`Injected`]): latency; 500/503 before anything is applied; a
//! request lost before it is handled; a write applied and then answered by a closed connection
//! (dropped), by a gateway's 502/504, or applied only after the client has given up (late).
//! Random faults come from one seeded generator, so a run with the same seed and the same
//! request order fails the same way; a test can also script the next N requests of an
//! operation to fail in a given way (`POST /__sandbox/faults`).
//!
//! As in mini-redis, [`run`] takes a bound listener and a shutdown future, so tests bind port 0,
//! run the real server in-process and stop it cleanly; [`Sandbox::start`] wraps that.

mod routes;
mod seed;
pub mod world;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
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
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::contract::{self as c, AuthRequest, AuthResponse, Operation};
use crate::pacing::Rate;
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

    pub fn name(self) -> &'static str {
        match self {
            Injected::Fail => "fail",
            Injected::Lost => "lost",
            Injected::Drop => "drop",
            Injected::Gateway => "gateway",
            Injected::Late => "late",
            Injected::Short => "short",
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
    /// token → (key, expiry)
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    /// key → times of the requests admitted within the last window
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    rng: Mutex<StdRng>,
    /// Faults scripted for the next requests of an operation, in the order given.
    script: Mutex<Vec<(Operation, Injected, u32)>>,
    /// The latest [`LOG_LIMIT`] requests, oldest first.
    log: Mutex<VecDeque<LogEntry>>,
    started: Instant,
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
        } else {
            None
        }
    }
}

impl Shared {
    fn new(config: SandboxConfig, world: World) -> Shared {
        Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            script: Mutex::new(Vec::new()),
            config,
            world: Mutex::new(world),
            tokens: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
            log: Mutex::new(VecDeque::new()),
            started: Instant::now(),
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
        let span = cfg.latency.max.saturating_sub(cfg.latency.min);
        Draw {
            delay: cfg.latency.min + span.mul_f64(l),
            fail: (f < cfg.fail_rate).then_some(if which { 500 } else { 503 }),
            drop: d < cfg.drop_rate,
            gateway: g < cfg.gateway_rate,
            late: late < cfg.late_rate,
            lost: lost < cfg.lost_rate,
            gateway_status: if which { 502 } else { 504 },
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

    fn token_key(&self, token: &str) -> Option<(String, bool)> {
        let tokens = lock(&self.tokens);
        tokens
            .get(token)
            .map(|(k, exp)| (k.clone(), Instant::now() < *exp))
    }

    fn expire_tokens(&self) {
        let now = Instant::now();
        for (_, exp) in lock(&self.tokens).values_mut() {
            *exp = now;
        }
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
        lock(&self.tokens).insert(token.clone(), (key.to_string(), Instant::now() + ttl));
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
    if let Some(k) = &key {
        if let Err(wait) = s.admit(k) {
            s.record(arrived, &method, &path, 429, &key_label, false);
            let mut resp = routes::fault(Fault::new(
                429,
                c::codes::RATE_LIMITED,
                format!("more than {} requests for this key", s.config.rate),
            ));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(c::RETRY_AFTER_HEADER, HeaderValue::from(secs));
            return resp;
        }
    }
    let draw = s.draw();
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
        let mut resp = StatusCode::SERVICE_UNAVAILABLE.into_response();
        resp.extensions_mut().insert(DropConnection);
        return resp;
    }
    if fault == Some(Injected::Late) {
        // The handler runs on a task of its own (see `serve`), so the change still lands
        // after the client has stopped waiting for it.
        tokio::time::sleep(s.config.late_commit).await;
    }
    let mut resp = next.run(req).await;
    let applied = resp.status().is_success();
    let mut dropped = false;
    match fault {
        Some(Injected::Drop) if applied => {
            resp.extensions_mut().insert(DropConnection);
            dropped = true;
        }
        Some(Injected::Gateway) if applied => {
            let status = draw.gateway_status;
            s.record_fault(arrived, &method, &path, status, &key_label, false, fault);
            return gateway_page(status);
        }
        Some(Injected::Short) if applied => resp = short_page(resp).await,
        Some(
            Injected::Fail
            | Injected::Lost
            | Injected::Drop
            | Injected::Gateway
            | Injected::Late
            | Injected::Short,
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
        fault.filter(|f| *f != Injected::Drop || dropped),
    );
    resp
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

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = app(shared);
    tokio::pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
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
