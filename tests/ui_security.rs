//! The gate of `plbulk ui`, over plain HTTP (no browser): no token is 401, a foreign Origin
//! or Host is 403, the API secret is in no answer, and the page listens on loopback only.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::io::{Read, Write};

use browser::UiServer;
use common::{run, StandaloneSandbox, BIN};
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{redirect, Client, StatusCode};

fn http() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// The cookie the address with the token sets, as `name=value`.
async fn cookie(ui: &UiServer) -> String {
    let r = http().get(&ui.url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

/// A config file (its owner's alone) holding the sandbox's key and secret.
fn config_with_key(dir: &std::path::Path, sb: &StandaloneSandbox) -> std::path::PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "api_key = \"{}\"\napi_secret = \"{}\"\nbase_url = \"{}\"\n",
            sb.key, sb.secret, sb.url
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

#[tokio::test]
async fn without_the_token_every_address_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let ui = UiServer::start(
        &dir.path().join("data"),
        &common::no_config(dir.path()),
        &[],
    );
    for path in [
        "/",
        "/account",
        "/jobs",
        "/assets/style.css",
        "/files/x",
        "/files/x/preview",
        "/jobs/x",
        "/jobs/x/events",
        "/jobs/x/results",
        "/jobs/x/undo",
        "/nothing",
    ] {
        let r = http()
            .get(format!("{}{path}", ui.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let wrong = http()
        .get(format!("{}/?token={}", ui.origin, "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_cookie = http()
        .get(format!("{}/", ui.origin))
        .header(
            COOKIE,
            cookie(&ui).await.replace(&ui.token, &"1".repeat(64)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_cookie.status(), StatusCode::UNAUTHORIZED);
    // With the cookie the address set: the page.
    let ok = http()
        .get(format!("{}/", ui.origin))
        .header(COOKIE, cookie(&ui).await)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(!ok.text().await.unwrap().contains(&ui.token));
}

#[tokio::test]
async fn a_foreign_origin_or_host_is_403_even_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let ui = UiServer::start(
        &dir.path().join("data"),
        &common::no_config(dir.path()),
        &[],
    );
    let c = cookie(&ui).await;
    // A form another site posts: its Origin is that site's.
    let r = http()
        .post(format!("{}/account/mode", ui.origin))
        .header(COOKIE, &c)
        .header(ORIGIN, "http://evil.example")
        .form(&[("mode", "rehearsal")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nor may another site start, stop, resume, abandon or undo a job.
    for path in [
        "/files/x/run",
        "/jobs/x/stop",
        "/jobs/x/resume",
        "/jobs/x/abandon",
        "/jobs/x/undo",
    ] {
        for origin in [Some("http://evil.example"), None] {
            let mut r = http()
                .post(format!("{}{path}", ui.origin))
                .header(COOKIE, &c)
                .form(&[("confirm", "yes")]);
            if let Some(o) = origin {
                r = r.header(ORIGIN, o);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} from {origin:?}");
        }
    }
    // A change without an Origin at all is not the page's.
    let r = http()
        .post(format!("{}/account/mode", ui.origin))
        .header(COOKIE, &c)
        .form(&[("mode", "rehearsal")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The page's own: acted on.
    let r = http()
        .post(format!("{}/account/mode", ui.origin))
        .header(COOKIE, &c)
        .header(ORIGIN, &ui.origin)
        .form(&[("mode", "rehearsal")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = http()
        .get(format!("{}/jobs", ui.origin))
        .header(COOKIE, &c)
        .header(ORIGIN, "http://127.0.0.1.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // DNS rebinding: a name of another site's, pointed at 127.0.0.1, arrives with its Host.
    let addr = ui.origin.trim_start_matches("http://");
    for (host, token) in [("evil.example", ui.token.as_str()), (addr, "")] {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let q = if token.is_empty() {
            String::new()
        } else {
            format!("?token={token}")
        };
        write!(
            s,
            "GET /{q} HTTP/1.1\r\nHost: {host}\r\nCookie: {c}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer.lines().next().unwrap_or("").to_string();
        if host == "evil.example" {
            assert!(status.contains(" 403 "), "{status}");
        } else {
            assert!(status.contains(" 200 "), "{status}");
        }
    }
}

#[tokio::test]
async fn the_secret_is_in_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sb = StandaloneSandbox::start(dir.path(), "6000/min", &[]);
    let config = config_with_key(dir.path(), &sb);
    let ui = UiServer::start(&dir.path().join("data"), &config, &[]);
    let c = cookie(&ui).await;
    let get = |path: &str| {
        http()
            .get(format!("{}{path}", ui.origin))
            .header(COOKIE, &c)
            .send()
    };
    let post = |path: &str, form: &[(&str, &str)]| {
        http()
            .post(format!("{}{path}", ui.origin))
            .header(COOKIE, &c)
            .header(ORIGIN, &ui.origin)
            .form(form)
            .send()
    };
    let mut answers = Vec::new();
    for path in ["/", "/account", "/jobs", "/account?saved=1"] {
        answers.push((
            path.to_string(),
            get(path).await.unwrap().text().await.unwrap(),
        ));
    }
    let checked = post("/account/check", &[])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(checked.contains("authenticates"), "{checked}");
    answers.push(("check".into(), checked));
    // A secret typed and refused comes back in no page either.
    let typed = "typed-Secret-4c1e";
    let refused = post(
        "/account/key",
        &[("api_key", &sb.key), ("api_secret", typed)],
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    answers.push(("refused key".into(), refused.text().await.unwrap()));
    for (what, body) in &answers {
        assert!(!body.contains(&sb.secret), "{what} holds the secret");
        assert!(!body.contains(typed), "{what} holds the typed secret");
        assert!(!body.contains(&ui.token), "{what} holds the token");
    }
    // The file still holds the key that works.
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains(&sb.secret));
}

#[tokio::test]
async fn the_page_listens_on_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8484", "example.com:80"] {
        let out = run(std::process::Command::new(BIN)
            .args(["ui", "--no-open", "--listen", listen])
            .env("PLBULK_DATA_DIR", dir.path().join("data")));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{listen}: {}",
            common::text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("loopback"), "{err}");
    }
    // The socket the server holds is bound to 127.0.0.1, not to every address.
    let ui = UiServer::start(
        &dir.path().join("data"),
        &common::no_config(dir.path()),
        &[],
    );
    #[cfg(target_os = "linux")]
    {
        let port: u16 = ui.origin.rsplit(':').next().unwrap().parse().unwrap();
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let want = format!("0100007F:{port:04X}");
        let listening: Vec<&str> = tcp
            .lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("0A"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|a| a.ends_with(&format!(":{port:04X}")))
            .collect();
        assert_eq!(listening, vec![want.as_str()]);
        let tcp6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
        assert!(!tcp6.contains(&format!(":{port:04X} ")));
    }
    let _ = ui;
}
