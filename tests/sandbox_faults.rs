//! The faults the sandbox injects for a real API behind proxies and load balancers, seen with
//! raw HTTP calls so that no client smooths them over: answers that are not the API's (a page
//! from in front of it, a body cut off half-way), `Retry-After` as a date, outages (refused or
//! hanging connections) and a key refused for a while; in-process and from the real binary.

mod common;

use std::time::{Duration, Instant, SystemTime};

use plbulk::pacing::Rate;
use plbulk::sandbox::{
    Injected, KeyRefusal, LogEntry, Outage, OutageMode, Sandbox, SandboxConfig, ScriptedFault,
    DEFAULT_KEY, DEFAULT_SECRET,
};
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::{json, Value};

use common::StandaloneSandbox;

/// Raw calls to one sandbox, with its credentials.
struct Api {
    url: String,
    key: String,
    secret: String,
    http: reqwest::Client,
}

impl Api {
    fn new(url: &str, key: &str, secret: &str) -> Api {
        Api {
            url: url.to_string(),
            key: key.to_string(),
            secret: secret.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    fn of(sb: &Sandbox) -> Api {
        Api::new(&sb.url(), DEFAULT_KEY, DEFAULT_SECRET)
    }

    fn of_standalone(sb: &StandaloneSandbox) -> Api {
        Api::new(&sb.url, &sb.key, &sb.secret)
    }

    async fn auth(&self) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}/auth", self.url))
            .json(&json!({"keyID": self.key, "secret": self.secret}))
            .send()
            .await
    }

    /// A token, asking again while the answer is not the API's (a page, a cut body).
    async fn token(&self) -> String {
        for _ in 0..20 {
            let resp = self.auth().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            if let Ok(v) = resp.json::<Value>().await {
                return v["access_token"].as_str().unwrap().to_string();
            }
        }
        panic!("no token in 20 tries");
    }

    fn add_customer_request(&self, token: &str, name: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/customers", self.url))
            .bearer_auth(token)
            .json(&json!({
                "companyName": name,
                "contactName": "Priya Shah",
                "email": format!("it@{}.example", name.to_lowercase().replace(' ', "-")),
                "plan": "pro",
                "contractMonths": 12
            }))
    }

    async fn add_customer(&self, token: &str, name: &str) -> reqwest::Response {
        self.add_customer_request(token, name).send().await.unwrap()
    }

    async fn list_customers(&self, token: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/customers", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn inspect(&self, what: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/__sandbox/{what}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{what}");
        resp.json().await.unwrap()
    }

    async fn companies(&self) -> Vec<String> {
        companies(&self.inspect("state").await)
    }

    async fn log(&self) -> Vec<LogEntry> {
        serde_json::from_value(self.inspect("requests").await).unwrap()
    }
}

fn companies(state: &Value) -> Vec<String> {
    state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["companyName"].as_str().unwrap().to_string())
        .collect()
}

fn script(sb: &Sandbox, operation: &str, fault: Injected) {
    sb.inject(&[ScriptedFault {
        operation: operation.into(),
        fault,
        times: 1,
    }])
    .unwrap();
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn last_fault(log: &[LogEntry], path: &str) -> (u16, Option<Injected>) {
    let e = log.iter().rev().find(|e| e.path == path).unwrap();
    (e.status, e.fault)
}

/// Polls `f` until it says yes, or fails the test at `deadline`.
async fn eventually<F, Fut>(what: &str, deadline: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !f().await {
        assert!(Instant::now() < until, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn connect_refused(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    matches!(
        tokio::net::TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test]
async fn a_page_from_in_front_of_the_api_applies_nothing_and_page_applied_applies() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::of(&sb);
    let token = api.token().await;

    script(&sb, "Add Customer", Injected::Page);
    let resp = api.add_customer(&token, "Portal Ltd").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(content_type(&resp).starts_with("text/html"), "{resp:?}");
    let body = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    assert!(body.contains("<html"), "{body}");
    assert!(
        api.companies().await.is_empty(),
        "a page is answered before the API"
    );
    let log = api.log().await;
    assert_eq!(last_fault(&log, "/customers"), (200, Some(Injected::Page)));

    script(&sb, "Add Customer", Injected::PageApplied);
    let resp = api.add_customer(&token, "Portal Ltd").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(content_type(&resp).starts_with("text/html"));
    assert!(resp.json::<Value>().await.is_err());
    assert_eq!(
        api.companies().await,
        ["Portal Ltd"],
        "applied behind the page"
    );
    let log = api.log().await;
    assert_eq!(
        last_fault(&log, "/customers"),
        (200, Some(Injected::PageApplied))
    );

    // The script is used up: the next answer is the API's own.
    let resp = api.add_customer(&token, "Plain Ltd").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(content_type(&resp).starts_with("application/json"));
}

#[tokio::test]
async fn a_truncated_answer_does_not_parse_and_the_create_is_applied() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::of(&sb);
    let token = api.token().await;

    script(&sb, "Add Customer", Injected::Truncated);
    let resp = api.add_customer(&token, "Halfway Ltd").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(content_type(&resp).starts_with("application/json"));
    let length: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.bytes().await.expect("the message itself is whole");
    assert_eq!(body.len(), length);
    assert!(!body.is_empty());
    assert!(serde_json::from_slice::<Value>(&body).is_err(), "{body:?}");
    assert!(body.starts_with(b"{"), "the first half of the real answer");
    assert_eq!(api.companies().await, ["Halfway Ltd"]);
    let log = api.log().await;
    assert_eq!(
        last_fault(&log, "/customers"),
        (201, Some(Injected::Truncated))
    );

    // Refused writes keep their own answer: the fault is on what was applied.
    script(&sb, "Add Customer", Injected::Truncated);
    let resp = api.add_customer(&token, "").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.json::<Value>().await.is_ok());
}

#[tokio::test]
async fn retry_after_can_be_an_http_date_never_early() {
    let sb = Sandbox::start(SandboxConfig {
        rate: Rate::new(2, Duration::from_secs(10)),
        retry_after_date: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let api = Api::of(&sb);
    for _ in 0..2 {
        assert_eq!(api.auth().await.unwrap().status(), StatusCode::OK);
    }
    let resp = api.auth().await.unwrap();
    let asked = SystemTime::now();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let value = resp.headers()["retry-after"].to_str().unwrap().to_string();
    assert!(value.ends_with(" GMT"), "{value}");
    let at = httpdate::parse_http_date(&value).unwrap();
    let ahead = at.duration_since(asked).unwrap_or_default();
    assert!(
        ahead >= Duration::from_secs(9) && ahead <= Duration::from_secs(11),
        "{value} is {ahead:?} ahead"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn a_hanging_outage_answers_nothing_applies_nothing_then_closes() {
    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::of(&sb);
    let token = api.token().await;
    let outage = sb.outage(
        OutageMode::Hang,
        Duration::ZERO,
        Duration::from_millis(1200),
    );
    let began = Instant::now();

    let gave_up = api
        .add_customer_request(&token, "Hung Ltd")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(gave_up.is_timeout(), "{gave_up:?}");
    // A patient client gets no answer either: its connection closes when the outage ends.
    let closed = api
        .add_customer_request(&token, "Patient Ltd")
        .send()
        .await
        .unwrap_err();
    assert!(!closed.is_timeout(), "{closed:?}");
    assert!(
        began.elapsed() >= Duration::from_millis(1100),
        "closed after {:?}",
        began.elapsed()
    );
    assert!(api.companies().await.is_empty(), "never applied");
    let hung: Vec<_> = api
        .log()
        .await
        .into_iter()
        .filter(|e| e.fault == Some(Injected::Hang))
        .collect();
    assert_eq!(hung.len(), 2, "{hung:?}");
    assert!(hung.iter().all(|e| e.status == 0 && e.path == "/customers"));

    let resp = api.add_customer(&token, "After Ltd").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(api.companies().await, ["After Ltd"]);
    assert_eq!(sb.outages(), [outage]);
    assert_eq!(outage.mode, OutageMode::Hang);
    assert_eq!(outage.end_ms - outage.start_ms, 1200);
}

#[tokio::test]
async fn a_refusing_outage_refuses_connections_and_closes_open_ones() {
    use tokio::io::AsyncReadExt;

    let sb = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::of(&sb);
    let token = api.token().await;
    assert_eq!(
        api.list_customers(&token).await.status(),
        StatusCode::OK,
        "a keep-alive connection in the pool"
    );
    let mut idle = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    sb.outage(
        OutageMode::Refuse,
        Duration::from_millis(100),
        Duration::from_millis(900),
    );
    assert!(sb.outages().is_empty(), "not begun yet");

    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("an open connection is closed when the outage begins");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(connect_refused(&sb.url()).await, "ECONNREFUSED");
    let during = api
        .http
        .get(format!("{}/customers", sb.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(during.is_connect(), "{during:?}");
    assert_eq!(sb.outages().len(), 1);
    assert_eq!(sb.outages()[0].mode, OutageMode::Refuse);

    eventually("the port opens again", Duration::from_secs(5), || async {
        !connect_refused(&sb.url()).await
    })
    .await;
    assert_eq!(api.list_customers(&token).await.status(), StatusCode::OK);
    let resp = api.add_customer(&token, "Back Ltd").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn outages_and_key_refusals_can_be_started_by_a_request_draw() {
    let sb = Sandbox::start(SandboxConfig {
        outage_rate: 1.0,
        outage_mode: OutageMode::Hang,
        outage_for: Duration::from_millis(400),
        ..Default::default()
    })
    .await
    .unwrap();
    let api = Api::of(&sb);
    let first = api.auth().await.unwrap_err();
    assert!(!first.is_connect(), "accepted, then closed: {first:?}");
    let outages = sb.outages();
    assert_eq!(outages.len(), 1, "{outages:?}");
    assert_eq!(outages[0].mode, OutageMode::Hang);
    assert_eq!(outages[0].end_ms - outages[0].start_ms, 400);
    let log = sb.requests();
    assert_eq!((log[0].status, log[0].fault), (0, Some(Injected::Hang)));
    sb.stop().await;

    let sb = Sandbox::start(SandboxConfig {
        key_refused_rate: 1.0,
        key_refused_for: Duration::from_millis(400),
        ..Default::default()
    })
    .await
    .unwrap();
    let api = Api::of(&sb);
    let resp = api.auth().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let refusals = sb.key_refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].end_ms - refusals[0].start_ms, 400);
    let log = sb.requests();
    assert_eq!(
        (log[0].status, log[0].fault),
        (401, Some(Injected::KeyRefused))
    );
}

#[tokio::test]
async fn the_standalone_sandbox_refuses_connections_during_a_planned_outage() {
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "50/s", &["--outage", "refuse:300ms:1500ms"]);
    let api = Api::of_standalone(&sb);
    // The outage is counted from the sandbox's start, a moment before its URL is written.
    let seen = Instant::now();
    tokio::time::sleep_until((seen + Duration::from_millis(800)).into()).await;
    assert!(connect_refused(&sb.url).await, "refused 800 ms in");
    let err = api.auth().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    eventually("the API is back", Duration::from_secs(5), || async {
        api.auth().await.is_ok()
    })
    .await;
    assert!(seen.elapsed() >= Duration::from_millis(1500));
    let token = api.token().await;
    assert_eq!(
        api.add_customer(&token, "Back Ltd").await.status(),
        StatusCode::CREATED
    );
    let outages: Vec<Outage> = serde_json::from_value(api.inspect("outages").await).unwrap();
    assert_eq!(
        outages,
        [Outage {
            mode: OutageMode::Refuse,
            start_ms: 300,
            end_ms: 1800
        }]
    );
}

#[tokio::test]
async fn the_standalone_sandbox_hangs_when_asked_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "50/s", &[]);
    let api = Api::of_standalone(&sb);
    let token = api.token().await;

    let bad = api
        .http
        .post(format!("{}/__sandbox/outage", sb.url))
        .json(&json!({"mode": "sideways", "for_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let asked_at = Instant::now();
    let asked = api
        .http
        .post(format!("{}/__sandbox/outage", sb.url))
        .json(&json!({"mode": "hang", "for_ms": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    let outage: Outage = asked.json().await.unwrap();
    assert_eq!(outage.mode, OutageMode::Hang);

    let err = api
        .add_customer_request(&token, "Hung Ltd")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        api.companies().await.is_empty(),
        "the inspection still answers"
    );
    tokio::time::sleep_until((asked_at + Duration::from_millis(1100)).into()).await;
    assert_eq!(api.list_customers(&token).await.status(), StatusCode::OK);
    assert!(api.companies().await.is_empty(), "never applied");
    assert!(api
        .log()
        .await
        .iter()
        .any(|e| e.fault == Some(Injected::Hang) && e.status == 0));
    let outages: Vec<Outage> = serde_json::from_value(api.inspect("outages").await).unwrap();
    assert_eq!(outages, [outage]);
}

#[tokio::test]
async fn the_standalone_sandbox_refuses_the_key_for_a_while_and_old_tokens_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "50/s", &[]);
    let api = Api::of_standalone(&sb);
    let old = api.token().await;
    assert_eq!(api.list_customers(&old).await.status(), StatusCode::OK);

    let asked = api
        .http
        .post(format!("{}/__sandbox/key-refused", sb.url))
        .json(&json!({"for_ms": 800}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    let refusal: KeyRefusal = asked.json().await.unwrap();
    let until = Instant::now() + Duration::from_millis(refusal.end_ms - refusal.start_ms);

    for resp in [api.auth().await.unwrap(), api.list_customers(&old).await] {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    let refused = api.add_customer(&old, "Refused Ltd").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    tokio::time::sleep_until((until + Duration::from_millis(100)).into()).await;
    assert_eq!(
        api.list_customers(&old).await.status(),
        StatusCode::UNAUTHORIZED,
        "a token from before the rotation stays refused"
    );
    let new = api.token().await;
    assert_ne!(new, old);
    assert_eq!(api.list_customers(&new).await.status(), StatusCode::OK);
    assert_eq!(
        api.add_customer(&new, "After Ltd").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(api.companies().await, ["After Ltd"]);
    let log = api.log().await;
    assert_eq!(
        log.iter()
            .filter(|e| e.fault == Some(Injected::KeyRefused))
            .count(),
        3
    );
    let listed: Vec<KeyRefusal> = serde_json::from_value(api.inspect("key-refused").await).unwrap();
    assert_eq!(listed, [refusal]);
}

#[tokio::test]
async fn the_standalone_sandbox_refuses_the_key_from_its_start_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "50/s", &["--key-refused", "0:1500ms"]);
    let api = Api::of_standalone(&sb);
    assert_eq!(api.auth().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    eventually("auth works again", Duration::from_secs(5), || async {
        api.auth().await.unwrap().status() == StatusCode::OK
    })
    .await;
    let listed: Vec<KeyRefusal> = serde_json::from_value(api.inspect("key-refused").await).unwrap();
    assert_eq!(
        listed,
        [KeyRefusal {
            start_ms: 0,
            end_ms: 1500
        }]
    );
}

/// What a run of the same requests met: each request's path, status and fault.
async fn seeded_run(seed: &str) -> Vec<(String, u16, Option<Injected>)> {
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(
        dir.path(),
        "1000/s",
        &[
            "--seed",
            seed,
            "--page-rate",
            "0.2",
            "--truncate-rate",
            "0.2",
        ],
    );
    let api = Api::of_standalone(&sb);
    let token = api.token().await;
    for i in 0..24 {
        if i % 2 == 0 {
            api.add_customer(&token, &format!("Seeded {i} Ltd")).await;
        } else {
            api.list_customers(&token).await;
        }
    }
    api.log()
        .await
        .into_iter()
        .map(|e| (e.path, e.status, e.fault))
        .collect()
}

#[tokio::test]
async fn a_seeded_rate_gives_the_same_faults_twice() {
    let (a, b, other) = tokio::join!(seeded_run("7"), seeded_run("7"), seeded_run("8"));
    assert_eq!(a, b);
    assert_ne!(a, other, "another seed, other faults");
    for fault in [Injected::Page, Injected::PageApplied, Injected::Truncated] {
        assert!(
            a.iter().any(|(_, _, f)| *f == Some(fault)),
            "no {fault:?} in {a:?}"
        );
    }
}
