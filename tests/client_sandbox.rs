//! The client against the sandbox over real HTTP on loopback: every operation of the contract,
//! and each way a call can fail.

use std::collections::BTreeSet;
use std::time::Duration;

use plbulk::client::{
    ApiError, ApiRequest, Client, ClientConfig, Credentials, ErrorKind, RetryPolicy,
};
use plbulk::contract::{self as c, Operation};
use plbulk::pacing::{Rate, SlidingWindow};
use plbulk::sandbox::{
    busiest_window, Latency, Sandbox, SandboxConfig, DEFAULT_KEY, DEFAULT_SECRET,
};

const QUICK_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(100),
    max_rate_limited: 30,
};

fn fast() -> SandboxConfig {
    SandboxConfig {
        rate: Rate::new(100_000, Duration::from_secs(60)),
        ..Default::default()
    }
}

fn client_for(sb: &Sandbox, retry: RetryPolicy) -> Client {
    let mut cfg = ClientConfig::new(sb.url(), Credentials::new(DEFAULT_KEY, DEFAULT_SECRET));
    cfg.retry = retry;
    Client::new(cfg).unwrap()
}

fn customer_pro(name: &str) -> c::NewCustomer {
    c::NewCustomer {
        company_name: name.into(),
        contact_name: Some("Priya Shah".into()),
        email: Some(format!(
            "it@{}.example",
            name.to_lowercase().replace(' ', "-")
        )),
        phone: Some("+441632960001".into()),
        plan: Some(c::Plan::Pro),
        contract_months: Some(12),
        address: None,
    }
}

fn address() -> c::Address {
    c::Address {
        line1: "Unit 1".into(),
        line2: Some("12 Piccadilly".into()),
        town: "Manchester".into(),
        county: None,
        postcode: "M1 1AE".into(),
    }
}

fn new_user(first: &str, email: &str) -> c::NewUser {
    c::NewUser {
        first_name: first.into(),
        last_name: "Jones".into(),
        email: email.into(),
        user_type: c::UserType::Standard,
    }
}

#[tokio::test]
async fn every_operation_works_through_the_client() {
    let sb = Sandbox::start(fast()).await.unwrap();
    let api = client_for(&sb, QUICK_RETRY);

    // Reference data.
    let addrs = api.lookup_addresses("sw1a2aa").await.unwrap();
    assert_eq!(addrs.len(), 2);
    assert_eq!(addrs[0].address.postcode, "SW1A 2AA");
    assert!(
        api.lookup_addresses("ZZ9 9ZZ").await.unwrap().is_empty(),
        "unknown postcode: empty list"
    );
    let codes = api.list_area_codes().await.unwrap();
    assert!(codes
        .iter()
        .any(|a| a.code == "0161" && a.name == "Manchester"));
    let free = api.list_available_numbers("0161").await.unwrap();
    assert_eq!(free.len(), 1000, "pages until total");
    assert!(api.list_available_numbers("0999").await.unwrap().is_empty());
    let products = api.list_products().await.unwrap();
    let t54w = products
        .iter()
        .find(|p| p.brand == "Yealink" && p.model == "T54W")
        .unwrap()
        .clone();

    // Customers.
    let acme = api
        .add_customer(&customer_pro("Acme Plumbing"))
        .await
        .unwrap();
    let mut hw = customer_pro("Bolt Electrics");
    hw.plan = Some(c::Plan::Hardware);
    hw.email = None;
    hw.address = Some(address());
    let bolt = api.add_customer(&hw).await.unwrap();
    assert_eq!(api.get_customer(&acme.id).await.unwrap(), acme);
    let changes = c::CustomerChanges {
        phone: Some("+441632960002".into()),
        ..Default::default()
    };
    assert_eq!(
        api.update_customer(&acme.id, &changes)
            .await
            .unwrap()
            .phone
            .as_deref(),
        Some("+441632960002")
    );
    assert_eq!(api.list_customers().await.unwrap().len(), 2);
    assert_eq!(
        api.regrade_contract(&acme.id, 24)
            .await
            .unwrap()
            .contract_months,
        24
    );
    let e = api.upgrade_plan(&bolt.id, c::Plan::Pro).await.unwrap_err();
    assert_eq!(
        (e.status, e.fields.contains_key("email")),
        (Some(422), true),
        "{e}"
    );
    let with_email = c::CustomerChanges {
        email: Some("office@bolt.example".into()),
        ..Default::default()
    };
    api.update_customer(&bolt.id, &with_email).await.unwrap();
    assert_eq!(
        api.upgrade_plan(&bolt.id, c::Plan::Pro).await.unwrap().plan,
        c::Plan::Pro
    );
    let e = api.upgrade_plan(&bolt.id, c::Plan::Pro).await.unwrap_err();
    assert_eq!(
        (e.status, e.kind),
        (Some(409), ErrorKind::Final),
        "only hardware can be upgraded"
    );

    // Users and their settings.
    let ann = api
        .add_user(&acme.id, &new_user("Ann", "ann@acme.example"))
        .await
        .unwrap();
    let bob = api
        .add_user(&acme.id, &new_user("Bob", "bob@acme.example"))
        .await
        .unwrap();
    assert_eq!(api.list_users(&acme.id).await.unwrap().len(), 2);
    let ch = c::UserChanges {
        user_type: Some(c::UserType::Admin),
        ..Default::default()
    };
    assert_eq!(
        api.update_user(&acme.id, &ann.id, &ch)
            .await
            .unwrap()
            .user_type,
        c::UserType::Admin
    );
    let sent = api.resend_activation(&acme.id, &ann.id).await.unwrap();
    assert_eq!((sent.user_id.as_str(), sent.sent), (ann.id.as_str(), true));
    assert!(
        api.request_password_reset(&acme.id, &ann.id)
            .await
            .unwrap()
            .sent
    );
    let calls = c::CallSettings {
        reject_anonymous: Some(true),
        call_waiting: Some(false),
        voicemail: None,
    };
    assert_eq!(
        api.update_call_settings(&acme.id, &ann.id, &calls)
            .await
            .unwrap(),
        calls
    );
    let schedule = c::ScheduleSettings {
        days: vec!["mon".into(), "tue".into(), "wed".into()],
        open: "09:00".into(),
        close: "17:30".into(),
        out_of_hours_redirect: Some("+441632960003".into()),
    };
    assert_eq!(
        api.update_schedule_settings(&acme.id, &ann.id, &schedule)
            .await
            .unwrap(),
        schedule
    );

    // Numbers.
    let n = api
        .add_customer_number(&acme.id, &free[0].number)
        .await
        .unwrap();
    assert_eq!(n.user_id, None);
    assert_eq!(
        api.list_customer_numbers(&acme.id).await.unwrap(),
        vec![n.clone()]
    );
    assert_eq!(api.get_customer_number(&acme.id, &n.id).await.unwrap(), n);
    let allocated = api.allocate_number(&acme.id, &n.id, &bob.id).await.unwrap();
    assert_eq!(allocated.user_id.as_deref(), Some(bob.id.as_str()));
    api.deallocate_number(&acme.id, &n.id).await.unwrap();
    let e = api.deallocate_number(&acme.id, &n.id).await.unwrap_err();
    assert_eq!(e.status, Some(409), "deallocating a free number");

    // Blocked numbers.
    let nb = c::NewBlockedNumber {
        number: "+44870".into(),
        direction: c::Direction::Inbound,
        note: Some("premium".into()),
    };
    let blk = api.add_blocked_number(&acme.id, &nb).await.unwrap();
    assert_eq!(
        api.list_blocked_numbers(&acme.id).await.unwrap(),
        vec![blk.clone()]
    );
    assert_eq!(
        api.get_blocked_number(&acme.id, &blk.id).await.unwrap(),
        blk
    );
    let ch = c::BlockedNumberChanges {
        direction: Some(c::Direction::Both),
        ..Default::default()
    };
    assert_eq!(
        api.update_blocked_number(&acme.id, &blk.id, &ch)
            .await
            .unwrap()
            .direction,
        c::Direction::Both
    );
    api.delete_blocked_number(&acme.id, &blk.id).await.unwrap();
    assert!(api.list_blocked_numbers(&acme.id).await.unwrap().is_empty());

    // Orders and devices.
    let order = c::NewOrder {
        items: vec![c::OrderItem {
            product_id: t54w.id.clone(),
            quantity: 2,
        }],
        delivery_address: Some(address()),
    };
    let o = api.add_order(&acme.id, &order).await.unwrap();
    assert_eq!(o.status, c::OrderStatus::Received);
    assert_eq!(
        api.list_customer_orders(&acme.id).await.unwrap(),
        vec![o.clone()]
    );
    let dev = c::NewDevice {
        product_id: t54w.id.clone(),
        mac_address: "805EC0123456".into(),
    };
    let d = api.add_device(&acme.id, &ann.id, &dev).await.unwrap();
    assert_eq!(d.user_id, ann.id);

    // Partner.
    let settings = api.get_partner_settings().await.unwrap();
    assert!(settings.contains_key("companyName"));
    let mut change = c::PartnerSettings::new();
    change.insert("brandColour".into(), "#FF0000".into());
    let merged = api.update_partner_settings(&change).await.unwrap();
    assert_eq!(
        (merged["brandColour"].as_str(), merged.len()),
        (Some("#FF0000"), settings.len())
    );
    let perms = api.list_user_permissions().await.unwrap();
    let flip = c::PermissionsUpdate {
        permissions: vec![c::PermissionSetting {
            id: perms[0].id.clone(),
            enabled: !perms[0].enabled,
        }],
    };
    assert_eq!(
        api.update_user_permissions(&flip).await.unwrap()[0].enabled,
        !perms[0].enabled
    );
    let pu = api
        .add_partner_user(&c::NewPartnerUser {
            first_name: "Sam".into(),
            last_name: "Patel".into(),
            email: "sam@partner.example".into(),
            role: Some("admin".into()),
        })
        .await
        .unwrap();
    assert_eq!(api.list_partner_users().await.unwrap(), vec![pu.clone()]);
    // Issue 11: the contract lists a role but does not require one; neither does a rehearsal.
    let no_role = api
        .add_partner_user(&c::NewPartnerUser {
            first_name: "Ria".into(),
            last_name: "Khan".into(),
            email: "ria@partner.example".into(),
            role: None,
        })
        .await
        .expect("a partner user without a role is accepted");
    assert_eq!(no_role.role, "");
    api.delete_partner_user(&no_role.id).await.unwrap();
    let ch = c::PartnerUserChanges {
        role: Some("support".into()),
        ..Default::default()
    };
    assert_eq!(
        api.update_partner_user(&pu.id, &ch).await.unwrap().role,
        "support"
    );
    api.delete_partner_user(&pu.id).await.unwrap();
    assert_eq!(
        api.get_stats().await.unwrap(),
        c::Stats {
            customers: 2,
            users: 2,
            numbers: 1
        }
    );

    // Deletes and the cascade: numbers return to the pool, orders remain.
    api.delete_user(&acme.id, &bob.id).await.unwrap();
    api.delete_customer(&acme.id).await.unwrap();
    assert_eq!(
        api.get_customer(&acme.id).await.unwrap_err().status,
        Some(404)
    );
    assert_eq!(
        api.list_available_numbers("0161").await.unwrap().len(),
        1000
    );
    assert_eq!(api.list_partner_orders().await.unwrap(), vec![o]);
    let state = sb.state();
    assert!(state["devices"].as_array().unwrap().is_empty());
    assert!(state["users"].as_array().unwrap().is_empty());

    // And the log proves that every operation of the contract went over the wire.
    let used: BTreeSet<Operation> = sb
        .requests()
        .iter()
        .filter_map(|e| Operation::route(&e.method, &e.path))
        .collect();
    let missing: Vec<_> = Operation::ALL
        .iter()
        .filter(|op| !used.contains(op))
        .collect();
    assert!(missing.is_empty(), "never called: {missing:?}");
}

#[tokio::test]
async fn conflicts_and_bad_fields_are_final_with_the_servers_words() {
    let sb = Sandbox::start(fast()).await.unwrap();
    let api = client_for(&sb, QUICK_RETRY);
    let mut bad = customer_pro("Acme");
    bad.email = None;
    bad.contract_months = Some(7);
    let e = api.add_customer(&bad).await.unwrap_err();
    assert_eq!(
        (e.kind, e.status, e.attempts),
        (ErrorKind::Final, Some(422), 1)
    );
    assert_eq!(e.fields["email"], "required for plan pro");
    assert_eq!(e.fields["contractMonths"], "must be 1, 12, 24 or 36");
    assert!(
        e.detail().contains("email: required for plan pro"),
        "{}",
        e.detail()
    );

    let acme = api.add_customer(&customer_pro("Acme")).await.unwrap();
    api.add_user(&acme.id, &new_user("Ann", "ann@acme.example"))
        .await
        .unwrap();
    let e = api
        .add_user(&acme.id, &new_user("Ann", "ANN@acme.example"))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.status, e.code.as_deref()),
        (ErrorKind::Final, Some(409), Some("conflict"))
    );
    assert!(e.message.contains("already exists"), "{e}");

    let e = api
        .add_customer_number(&acme.id, "+447700900123")
        .await
        .unwrap_err();
    assert_eq!(
        e.status,
        Some(409),
        "a number outside the pool is not available"
    );
    let e = api.get_customer("cus_nope").await.unwrap_err();
    assert_eq!((e.status, e.kind), (Some(404), ErrorKind::Final));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let sb = Sandbox::start(fast()).await.unwrap();
    let http = reqwest::Client::new();
    let auth: c::AuthResponse = http
        .post(format!("{}/auth", sb.url()))
        .json(&c::AuthRequest {
            key_id: DEFAULT_KEY.into(),
            secret: DEFAULT_SECRET.into(),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .post(format!("{}/customers", sb.url()))
        .bearer_auth(&auth.access_token)
        .body("{\"companyName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: c::ErrorBody = r.json().await.unwrap();
    assert_eq!(body.error.code, c::codes::MALFORMED);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_without_the_caller_noticing() {
    let sb = Sandbox::start(SandboxConfig {
        token_ttl: Duration::from_secs(2),
        ..fast()
    })
    .await
    .unwrap();
    let api = client_for(&sb, QUICK_RETRY);
    api.get_stats().await.unwrap();
    // Past its life: the client refreshes before expiry, so no request is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    api.get_stats().await.unwrap();
    let log = sb.requests();
    assert_eq!(log.iter().filter(|e| e.path == "/auth").count(), 2);
    assert!(log.iter().all(|e| e.status != 401), "{log:?}");

    // A token the server has dropped early: one 401, one refresh, one retry, and success.
    sb.expire_tokens();
    api.get_stats().await.unwrap();
    let tail: Vec<(String, u16)> = sb.requests()[log.len()..]
        .iter()
        .map(|e| (e.path.clone(), e.status))
        .collect();
    assert_eq!(
        tail,
        [
            ("/stats".to_string(), 401),
            ("/auth".to_string(), 200),
            ("/stats".to_string(), 200)
        ]
    );
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let sb = Sandbox::start(fast()).await.unwrap();
    let api = client_for(&sb, QUICK_RETRY);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get_stats().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        sb.requests().iter().filter(|e| e.path == "/auth").count(),
        1
    );
}

#[tokio::test]
async fn rate_limited_calls_wait_and_succeed() {
    let sb = Sandbox::start(SandboxConfig {
        rate: Rate::new(3, Duration::from_secs(1)),
        ..Default::default()
    })
    .await
    .unwrap();
    // No pacer on purpose: the server's 429s and Retry-After are what slow the client down.
    let api = client_for(&sb, QUICK_RETRY);
    for _ in 0..6 {
        api.get_stats().await.unwrap();
    }
    let log = sb.requests();
    assert!(
        log.iter().any(|e| e.status == 429),
        "the limit was hit: {log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|e| e.path == "/stats" && e.status == 200)
            .count(),
        6
    );
}

#[tokio::test]
async fn injected_server_faults_are_transient_and_retried() {
    let sb = Sandbox::start(SandboxConfig {
        fail_rate: 0.5,
        seed: 7,
        ..fast()
    })
    .await
    .unwrap();
    let once = client_for(&sb, RetryPolicy::NONE);
    let mut seen: Option<ApiError> = None;
    for _ in 0..40 {
        if let Err(e) = once.get_stats().await {
            if e.operation == Operation::GetStats {
                seen = Some(e);
                break;
            }
        }
    }
    let e = seen.expect("half the calls fail");
    assert_eq!(e.kind, ErrorKind::Transient);
    assert!(matches!(e.status, Some(500 | 503)), "{e}");
    assert!(e.may_resend());

    let patient = client_for(
        &sb,
        RetryPolicy {
            max_attempts: 20,
            ..QUICK_RETRY
        },
    );
    for _ in 0..10 {
        patient.get_stats().await.expect("retries see it through");
    }
}

#[tokio::test]
async fn a_dropped_create_is_outcome_unknown_and_not_resent() {
    let sb = Sandbox::start(SandboxConfig {
        drop_rate: 1.0,
        ..fast()
    })
    .await
    .unwrap();
    let api = client_for(&sb, QUICK_RETRY);
    let e = api.add_customer(&customer_pro("Acme")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::OutcomeUnknown, "{e}");
    assert!(
        !e.may_resend(),
        "a create with an unknown outcome is never simply re-sent"
    );
    assert_eq!(e.attempts, 1);
    let state = sb.state();
    let customers = state["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 1, "made once, and only once");
    assert_eq!(customers[0]["companyName"], "Acme");
    assert!(sb
        .requests()
        .iter()
        .any(|r| r.dropped && r.path == "/customers"));
}

#[tokio::test]
async fn a_slow_answer_is_outcome_unknown_and_a_refused_connection_is_transient() {
    let sb = Sandbox::start(SandboxConfig {
        latency: Latency {
            min: Duration::from_millis(400),
            max: Duration::from_millis(400),
        },
        ..fast()
    })
    .await
    .unwrap();
    let mut cfg = ClientConfig::new(sb.url(), Credentials::new(DEFAULT_KEY, DEFAULT_SECRET));
    cfg.retry = RetryPolicy::NONE;
    cfg.timeout = Duration::from_millis(1000);
    let api = Client::new(cfg).unwrap();
    api.get_stats().await.unwrap(); // token in hand
    let req = ApiRequest::new(Operation::AddCustomer, &[])
        .json(&customer_pro("Slow Ltd"))
        .timeout(Duration::from_millis(150));
    let e = api.execute(&req).await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::OutcomeUnknown, Some("timeout")),
        "{e}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sb.state()["customers"].as_array().unwrap().len(),
        1,
        "it did happen"
    );

    let addr = sb.addr();
    sb.stop().await;
    let mut cfg = ClientConfig::new(
        format!("http://{addr}"),
        Credentials::new(DEFAULT_KEY, DEFAULT_SECRET),
    );
    cfg.retry = RetryPolicy::NONE;
    let gone = Client::new(cfg).unwrap();
    let e = gone.get_stats().await.unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (ErrorKind::Transient, Some("connect")),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_final_and_never_echoed() {
    let sb = Sandbox::start(fast()).await.unwrap();
    let mut cfg = ClientConfig::new(
        sb.url(),
        Credentials::new(DEFAULT_KEY, "not-the-secret-xyz"),
    );
    cfg.retry = QUICK_RETRY;
    let api = Client::new(cfg).unwrap();
    let e = api.get_stats().await.unwrap_err();
    // A refused key halts the client: every request would meet it, and none is at fault.
    assert_eq!(
        (e.kind, e.operation),
        (ErrorKind::Halted, Operation::GetJwt)
    );
    let text = format!("{e} {e:?}");
    assert!(
        text.contains("refused") && !text.contains("not-the-secret-xyz"),
        "{text}"
    );
    let sent = sb.requests().len();
    assert_eq!(sent, 1, "one token request, not retried");
    let again = api.list_customers().await.unwrap_err();
    assert_eq!(again.kind, ErrorKind::Halted);
    assert_eq!(sb.requests().len(), sent, "nothing more is sent");
}

#[tokio::test]
async fn the_client_pages_whatever_page_size_the_server_uses() {
    let sb = Sandbox::start(SandboxConfig {
        max_page_size: 7,
        ..fast()
    })
    .await
    .unwrap();
    let api = client_for(&sb, QUICK_RETRY);
    let products = api.list_products().await.unwrap();
    assert_eq!(products.len(), 13);
    let pages = sb
        .requests()
        .iter()
        .filter(|e| e.path == "/products")
        .count();
    assert_eq!(pages, 2, "13 items at 7 a page");
}

#[tokio::test]
async fn a_paced_client_never_trips_the_window() {
    // A 4 s window: the pacer's slack is 1% of it, and a cold start's new connections delay the
    // first burst's arrival by more than the 10 ms that 1% of a 1 s window gives (it failed
    // so on a loaded machine, the first burst arriving 15 ms after it was let go).
    let rate = Rate::new(20, Duration::from_secs(4));
    let sb = Sandbox::start(SandboxConfig {
        rate,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut cfg = ClientConfig::new(sb.url(), Credentials::new(DEFAULT_KEY, DEFAULT_SECRET));
    cfg.pacer = Some(std::sync::Arc::new(SlidingWindow::new(rate)));
    let api = Client::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..59)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get_stats().await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let log = sb.requests();
    assert_eq!(log.len(), 60, "auth and 59 calls, none refused: {log:?}");
    assert!(log.iter().all(|e| e.status == 200));
    assert!(busiest_window(&log, DEFAULT_KEY, rate.window) <= 20);
    // 60 calls at 20 a window: two full windows of waiting, and not much more.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(8) && took < Duration::from_millis(10_400),
        "{took:?}"
    );
}
