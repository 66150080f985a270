//! The sandbox's limit is a strict sliding window, auth included: at most N requests in ANY
//! window of W, which a fixed window (reset on the clock) would not enforce.

use std::time::Duration;

use plbulk::contract::{self as c, AuthRequest, AuthResponse};
use plbulk::pacing::Rate;
use plbulk::sandbox::{busiest_window, Sandbox, SandboxConfig, DEFAULT_KEY, DEFAULT_SECRET};
use tokio::time::{sleep_until, Instant};

async fn token(http: &reqwest::Client, url: &str) -> String {
    let r: AuthResponse = http
        .post(format!("{url}/auth"))
        .json(&AuthRequest {
            key_id: DEFAULT_KEY.into(),
            secret: DEFAULT_SECRET.into(),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r.access_token
}

async fn stats(http: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    http.get(format!("{url}/stats"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn limited() -> SandboxConfig {
    SandboxConfig {
        rate: Rate::new(5, Duration::from_secs(2)),
        ..Default::default()
    }
}

#[tokio::test]
async fn n_plus_one_inside_the_window_is_refused_with_retry_after() {
    let sb = Sandbox::start(limited()).await.unwrap();
    let http = reqwest::Client::new();
    let t = token(&http, &sb.url()).await; // the auth call counts: 1 of 5
    for _ in 0..4 {
        assert_eq!(stats(&http, &sb.url(), &t).await.status(), 200);
    }
    let refused = stats(&http, &sb.url(), &t).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()[c::RETRY_AFTER_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let body: c::ErrorBody = refused.json().await.unwrap();
    assert_eq!(body.error.code, c::codes::RATE_LIMITED);
}

#[tokio::test]
async fn a_burst_at_the_end_of_one_window_and_the_start_of_the_next_is_refused() {
    let sb = Sandbox::start(limited()).await.unwrap();
    let http = reqwest::Client::new();
    let start = Instant::now();
    let t = token(&http, &sb.url()).await; // at 0 s
    sleep_until(start + Duration::from_millis(1500)).await;
    for _ in 0..4 {
        assert_eq!(stats(&http, &sb.url(), &t).await.status(), 200); // 5 in the window now
    }
    // A fixed 2-second window would start afresh here and let all five through.
    sleep_until(start + Duration::from_millis(2200)).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(stats(&http, &sb.url(), &t).await.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 429, 429, 429, 429],
        "only the slot the auth call left is free"
    );
    assert!(busiest_window(&sb.requests(), DEFAULT_KEY, Duration::from_secs(2)) <= 5);
}

#[tokio::test]
async fn each_key_has_its_own_window() {
    let mut cfg = limited();
    cfg.keys.push(("second-key".into(), "second-secret".into()));
    let sb = Sandbox::start(cfg).await.unwrap();
    let http = reqwest::Client::new();
    let t = token(&http, &sb.url()).await;
    for _ in 0..4 {
        stats(&http, &sb.url(), &t).await;
    }
    assert_eq!(stats(&http, &sb.url(), &t).await.status(), 429);
    let r = http
        .post(format!("{}/auth", sb.url()))
        .json(&AuthRequest {
            key_id: "second-key".into(),
            secret: "second-secret".into(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the other key is not held back");
}
