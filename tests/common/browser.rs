//! For the tests of `plbulk ui`: the real binary serving the page with a data folder of the
//! test's own, and a headless Chromium driven over WebDriver (chromedriver on a free port),
//! saving a screenshot of each page it visits to `target/ui-screens/`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::{Proc, BIN};

/// `plbulk ui --no-open` on a free loopback port, its address (with the token) read from its
/// first line of output.
pub struct UiServer {
    /// The address printed, with the token.
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    pub token: String,
    _proc: Proc,
}

impl UiServer {
    /// `plbulk ui` with `data` as its data folder and config file `config`, and `env` besides.
    pub fn start(data: &Path, config: &Path, env: &[(&str, &str)]) -> UiServer {
        UiServer::start_with(data, config, env, &[])
    }

    /// As [`UiServer::start`], with `args` after `plbulk ui`'s own (`--rate 10/s`: a job that
    /// a test watches end in seconds, yet slowly enough to be stopped).
    pub fn start_with(data: &Path, config: &Path, env: &[(&str, &str)], args: &[&str]) -> UiServer {
        let mut cmd = Command::new(BIN);
        cmd.args(["ui", "--no-open", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("PLBULK_DATA_DIR", data)
            .env("PLBULK_CONFIG", config)
            .env_remove("PLBULK_JOB_DIR")
            .env_remove("PLBULK_API_KEY")
            .env_remove("PLBULK_API_SECRET")
            .env_remove("PLBULK_BASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "plbulk ui printed {url:?}"
        );
        let (origin, token) = url.split_once("/?token=").unwrap();
        UiServer {
            origin: origin.to_string(),
            token: token.to_string(),
            url: url.clone(),
            _proc: proc,
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Chromium binary Debian installs, or the one PLBULK_CHROMIUM names.
fn chromium() -> String {
    std::env::var("PLBULK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A headless Chromium with a fresh profile, through its own chromedriver.
pub struct Browser {
    pub client: Client,
    shots: PathBuf,
    test: String,
    n: usize,
    closed: bool,
    _driver: Proc,
}

impl Browser {
    /// Starts chromedriver and a browser for test `test`, with a profile in `dir`.
    pub async fn start(test: &str, dir: &Path) -> Browser {
        let port = free_port();
        let driver = Proc(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver runs (apt-get install chromium chromium-driver)"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = dir.join("chromium-profile");
        std::fs::create_dir_all(&profile).unwrap();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": { "download.default_directory": dir.join("downloads").display().to_string() }
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("ui-screens");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            shots,
            test: test.to_string(),
            n: 0,
            closed: false,
            _driver: driver,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Waits (20 s at most) for an element.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Waits (`secs` at most) until the element `css` is there and its text satisfies `ok`;
    /// its text then. A condition, polled, never a fixed sleep.
    pub async fn wait_text(&self, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = e.text().await {
                    if ok(&t) {
                        return t;
                    }
                    last = t;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} did not come as awaited in {secs} s; last: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The bytes at `path` as the page fetches them (with its cookie): what a click on a
    /// download link saves, without depending on where a headless browser puts downloads.
    pub async fn fetch(&self, path: &str) -> Vec<u8> {
        let got = self
            .client
            .execute_async(
                r#"const [path, done] = arguments;
                fetch(path).then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status))
                  .then(b => { let s = ""; new Uint8Array(b).forEach(c => s += String.fromCharCode(c)); done(btoa(s)); })
                  .catch(e => done("error: " + e));"#,
                vec![serde_json::json!(path)],
            )
            .await
            .unwrap();
        let b64 = got.as_str().unwrap().to_string();
        assert!(!b64.starts_with("error"), "{path}: {b64}");
        base64_decode(&b64)
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Saves a screenshot of the whole page as it is now: `target/ui-screens/TEST-N-NAME.png`.
    pub async fn shot(&mut self, name: &str) -> PathBuf {
        self.n += 1;
        // The window grown to the page's height, so one picture holds all of it.
        let h = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1000)
            .clamp(600, 4000);
        let _ = self.client.set_window_size(1280, h as u32 + 140).await;
        let png = self.client.screenshot().await.unwrap();
        let path = self
            .shots
            .join(format!("{}-{}-{name}.png", self.test, self.n));
        std::fs::write(&path, png).unwrap();
        let _ = self.client.set_window_size(1280, 1000).await;
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.closed = true;
    }
}

impl Drop for Browser {
    /// A test that fails before [`Browser::close`] still ends its session, so chromedriver
    /// quits its Chromium, which killing chromedriver alone would leave running. The session
    /// lives on the test's runtime, whose other threads go on while this one waits.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let client = self.client.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
            });
        })
        .join();
    }
}

/// Standard base64, as `btoa` writes it.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | if c == b'=' { 0 } else { val(c) };
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}
