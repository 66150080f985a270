//! Rehearsal account benchmark: `cargo bench --bench rehearsal` (add `-- --entities N`; the
//! default is 10,000).
//!
//! A rehearsal keeps its whole account on disk after every write, before it answers (see
//! `src/sandbox/store.rs`). This measures what that costs a write on an account of N entities
//! (a quarter customers, three quarters their users): the size of the file, and the time of
//! an Add Customer answered by an in-process sandbox over loopback, kept and not kept, one
//! request at a time, so that the difference is the keeping alone.

use std::time::{Duration, Instant};

use plbulk::contract as c;
use plbulk::sandbox::{Sandbox, SandboxConfig, World, DEFAULT_KEY, DEFAULT_SECRET};
use serde_json::json;

const WRITES: usize = 200;

fn entities() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--entities")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

fn account(n: usize) -> World {
    let mut w = World::seeded();
    let customers = n / 4;
    for i in 0..customers {
        let new: c::NewCustomer = serde_json::from_value(json!({
            "companyName": format!("Company {i} Ltd"),
            "contactName": format!("Contact {i}"),
            "email": format!("it@co{i}.example"),
            "plan": "pro",
            "contractMonths": 12
        }))
        .unwrap();
        let id = w.add_customer(new).unwrap().id;
        for u in 0..3 {
            let user: c::NewUser = serde_json::from_value(json!({
                "firstName": format!("First{u}"),
                "lastName": format!("Last{i}"),
                "email": format!("u{u}@co{i}.example")
            }))
            .unwrap();
            w.add_user(&id, user).unwrap();
        }
    }
    w
}

/// Per-write times of `WRITES` Add Customers, one at a time.
async fn writes(sandbox: &Sandbox, tag: &str) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let url = sandbox.url();
    let auth: c::AuthResponse = http
        .post(format!("{url}/auth"))
        .json(&json!({"keyID": DEFAULT_KEY, "secret": DEFAULT_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = auth.access_token;
    let mut times = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let t = Instant::now();
        let resp = http
            .post(format!("{url}/customers"))
            .bearer_auth(&token)
            .json(&json!({
                "companyName": format!("Bench {tag} {i} Ltd"),
                "email": format!("it@bench-{tag}-{i}.example"),
                "plan": "pro",
                "contractMonths": 12
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        times.push(t.elapsed());
    }
    times
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let n = entities();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("account.json");
    let config = SandboxConfig {
        rate: "1000000/s".parse().unwrap(),
        ..Default::default()
    };
    let plain = Sandbox::start_on_world(config.clone(), account(n))
        .await
        .unwrap();
    let bare = writes(&plain, "bare").await;
    plain.stop().await;
    let kept = Sandbox::start_on_world(config, account(n)).await.unwrap();
    kept.keep_at(&file).unwrap();
    let keeping = writes(&kept, "kept").await;
    let size = std::fs::metadata(&file).unwrap().len();
    kept.stop().await;
    let (b, k) = (median(bare), median(keeping));
    println!(
        "account of {n} entities: {:.1} MB kept; an Add Customer, median of {WRITES}: {:.2} ms not kept, {:.2} ms kept ({:.2} ms for the keeping)",
        size as f64 / 1e6,
        b.as_secs_f64() * 1e3,
        k.as_secs_f64() * 1e3,
        (k.saturating_sub(b)).as_secs_f64() * 1e3
    );
}
