//! `plbulk sandbox` as a user starts it from the README: the real binary, a real port.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plbulk::client::{Client, ClientConfig, Credentials};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s.trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "the sandbox did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_standalone_sandbox_serves_the_api_and_says_how_to_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("url");
    let child = Command::new(env!("CARGO_BIN_EXE_plbulk"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--rate",
            "50/s",
            "--seed",
            "3",
            "--key",
            "demo-key",
            "--secret",
            "demo-secret",
        ])
        .arg("--url-file")
        .arg(&url_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let url = wait_for(&url_file);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let api = Client::new(ClientConfig::new(
        url.clone(),
        Credentials::new("demo-key", "demo-secret"),
    ))
    .unwrap();
    assert_eq!(api.list_products().await.unwrap().len(), 13);
    let log: Vec<serde_json::Value> = reqwest::get(format!("{url}/__sandbox/requests"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), 2, "auth and one page of products: {log:?}");
    assert_eq!(log[1]["key"], "demo-key");

    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains(&format!("PLBULK_BASE_URL={url}")), "{out}");
    assert!(
        out.contains("PLBULK_API_KEY=demo-key") && out.contains("50/s"),
        "{out}"
    );
}

#[test]
fn nonsense_flags_are_refused_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_plbulk"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--fail-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fail-rate must be between 0 and 1"));

    let out = Command::new(env!("CARGO_BIN_EXE_plbulk"))
        .args(["sandbox", "--rate", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("100/min"));
}
