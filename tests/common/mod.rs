//! Shared by the job tests: a standalone sandbox process, a generated mixed job with the
//! account state it must leave, and a canonical view of the sandbox's state to compare with.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rust_xlsxwriter::Workbook;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_plbulk");

/// The tests of one binary run side by side; a test whose assertion rests on timing (no 429
/// when two processes share a key's limit: the pacer's slack is 1% of the window, 20 ms for
/// the tests' 2 s windows) takes this alone, the others share it. On a loaded 2-core machine a
/// dozen other jobs running beside it delayed sends by more than that slack.
static TIMING: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by a test that may run beside others.
pub fn beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|p| p.into_inner())
}

/// Held by a test whose assertions rest on timing: no other test of its binary runs meanwhile.
pub fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    TIMING.write().unwrap_or_else(|p| p.into_inner())
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct StandaloneSandbox {
    pub url: String,
    pub key: String,
    pub secret: String,
    _proc: Proc,
}

impl StandaloneSandbox {
    /// `plbulk sandbox` on a free port, with extra flags (faults, latency).
    pub fn start(dir: &Path, rate: &str, extra: &[&str]) -> StandaloneSandbox {
        let url_file = dir.join("sandbox-url");
        let key = "job-test-key".to_string();
        let secret = "s3cr3t-Job-Test-Value-7f2a".to_string();
        let child = Command::new(BIN)
            .args(["sandbox", "--listen", "127.0.0.1:0", "--rate", rate])
            .args(["--key", &key, "--secret", &secret])
            .args(extra)
            .arg("--url-file")
            .arg(&url_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(s) = std::fs::read_to_string(&url_file) {
                if s.ends_with('\n') {
                    break s.trim().to_string();
                }
            }
            assert!(Instant::now() < deadline, "the sandbox did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        StandaloneSandbox {
            url,
            key,
            secret,
            _proc: proc,
        }
    }

    pub fn state(&self) -> Value {
        get_json(&format!("{}/__sandbox/state", self.url))
    }

    pub fn requests(&self) -> Vec<plbulk::sandbox::LogEntry> {
        serde_json::from_value(get_json(&format!("{}/__sandbox/requests", self.url))).unwrap()
    }

    /// A plbulk command with this sandbox's URL and credentials in its environment.
    pub fn plbulk(&self, data_dir: &Path) -> Command {
        let mut c = Command::new(BIN);
        c.env("PLBULK_BASE_URL", &self.url)
            .env("PLBULK_API_KEY", &self.key)
            .env("PLBULK_API_SECRET", &self.secret)
            .env("PLBULK_DATA_DIR", data_dir)
            .env("PLBULK_CONFIG", data_dir.join("no-config.toml"))
            .env_remove("PLBULK_JOB_DIR");
        c
    }
}

/// A blocking GET, for tests that are not async.
pub fn get_json(url: &str) -> Value {
    let out = Command::new("curl").args(["-sf", url]).output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).unwrap(),
        _ => {
            // No curl: use a small runtime and reqwest.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
        }
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A job over every kind of sheet for `customers` companies, as one workbook, and the state it
/// must leave in an empty account.
pub struct MixedJob {
    pub path: PathBuf,
    pub rows: usize,
    pub expected: Canonical,
}

const PRODUCT_A: (&str, &str) = ("Yealink T54W", "prd-yealink-t54w");
const PRODUCT_B: (&str, &str) = ("Yealink T31P", "prd-yealink-t31p");

pub fn mixed_job(dir: &Path, name: &str, customers: usize, offset: usize) -> MixedJob {
    let mut wb = Workbook::new();
    let mut exp = Canonical::default();
    let mut rows = 0;
    let sheet = |wb: &mut Workbook, name: &str, headers: &[&str], data: &[Vec<String>]| {
        let ws = wb.add_worksheet();
        ws.set_name(name).unwrap();
        for (c, h) in headers.iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        for (r, row) in data.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                if !v.is_empty() {
                    ws.write_string(r as u32 + 1, c as u16, v).unwrap();
                }
            }
        }
    };
    let s = |v: &str| v.to_string();
    let mut cust = Vec::new();
    let mut users = Vec::new();
    let mut numbers = Vec::new();
    let mut blocked = Vec::new();
    let mut devices = Vec::new();
    let mut settings = Vec::new();
    let mut orders = Vec::new();
    for n in offset..offset + customers {
        let company = format!("Company {n:03} Ltd");
        let email = format!("it@co{n}.example");
        cust.push(vec![
            format!("C{n}"),
            company.clone(),
            format!("Contact {n}"),
            email.clone(),
            s("pro"),
            s("12"),
            s("1 High Street"),
            s("London"),
            s("sw1a1aa"),
        ]);
        exp.customers.insert((company.clone(), email.clone()));
        for u in 0..3 {
            let ue = format!("u{u}@co{n}.example");
            users.push(vec![
                format!("C{n}"),
                format!("First{u}"),
                format!("Last{n}"),
                ue.clone(),
                s(if u == 0 { "admin" } else { "standard" }),
            ]);
            exp.users.insert((
                company.clone(),
                ue.clone(),
                format!("First{u}"),
                format!("Last{n}"),
                s(if u == 0 { "admin" } else { "standard" }),
            ));
        }
        for k in 0..3 {
            let local = 3 * (n % 300) + k;
            let dialled = format!("0161 496 {local:04}");
            let e164 = format!("+44161496{local:04}");
            let user = (k < 2).then(|| format!("u{k}@co{n}.example"));
            numbers.push(vec![
                format!("C{n}"),
                dialled,
                user.clone().unwrap_or_default(),
            ]);
            exp.numbers.insert((company.clone(), e164, user));
        }
        let pattern = format!("+44909879{n:04}");
        blocked.push(vec![
            format!("C{n}"),
            format!("0909 879 {n:04}"),
            s("inbound"),
            format!("nuisance {n}"),
        ]);
        exp.blocked.insert((
            company.clone(),
            pattern,
            s("inbound"),
            format!("nuisance {n}"),
        ));
        for u in 0..2 {
            let mac = format!("00:15:65:{:02X}:{:02X}:{u:02X}", n / 256, n % 256);
            let plain = mac.replace(':', "");
            devices.push(vec![
                format!("C{n}"),
                format!("u{u}@co{n}.example"),
                s(PRODUCT_A.0),
                mac,
            ]);
            exp.devices.insert((
                company.clone(),
                format!("u{u}@co{n}.example"),
                plain,
                s(PRODUCT_A.1),
            ));
        }
        settings.push(vec![
            format!("C{n}"),
            format!("u0@co{n}.example"),
            s("yes"),
            s("no"),
            s("yes"),
            s("Mon-Fri"),
            s("09:00"),
            s("17:30"),
        ]);
        exp.settings.insert((
            company.clone(),
            format!("u0@co{n}.example"),
            s(r#"{"callWaiting":false,"rejectAnonymous":true,"voicemail":true}"#),
            s(r#"["mon","tue","wed","thu","fri"] 09:00-17:30"#),
        ));
        orders.push(vec![
            format!("O{n}"),
            format!("C{n}"),
            s(PRODUCT_A.0),
            s("2"),
        ]);
        orders.push(vec![
            format!("O{n}"),
            format!("C{n}"),
            s(PRODUCT_B.0),
            s("1"),
        ]);
        let mut items = vec![(s(PRODUCT_A.1), 2), (s(PRODUCT_B.1), 1)];
        items.sort();
        exp.orders.push((company.clone(), items));
    }
    exp.orders.sort();
    let partners: Vec<Vec<String>> = (0..2)
        .map(|p| {
            let e = format!("ops{p}.{offset}@partner.example");
            exp.partner_users.insert(e.clone());
            vec![s("add"), format!("Ops{p}"), s("Team"), e, s("support")]
        })
        .collect();
    sheet(
        &mut wb,
        "Customers",
        &[
            "Ref",
            "Company Name",
            "Contact Name",
            "Email",
            "Plan",
            "Contract Months",
            "Address Line 1",
            "Town",
            "Postcode",
        ],
        &cust,
    );
    sheet(
        &mut wb,
        "Users",
        &["Customer", "First Name", "Last Name", "Email", "Type"],
        &users,
    );
    sheet(
        &mut wb,
        "Numbers",
        &["Customer", "Number", "User Email"],
        &numbers,
    );
    sheet(
        &mut wb,
        "Blocked Numbers",
        &["Customer", "Number", "Direction", "Note"],
        &blocked,
    );
    sheet(
        &mut wb,
        "Devices",
        &["Customer", "User Email", "Product", "MAC Address"],
        &devices,
    );
    sheet(
        &mut wb,
        "User Settings",
        &[
            "Customer",
            "User Email",
            "Reject Anonymous",
            "Call Waiting",
            "Voicemail",
            "Open Days",
            "Open Time",
            "Close Time",
        ],
        &settings,
    );
    sheet(
        &mut wb,
        "Orders",
        &["Order Ref", "Customer", "Product", "Quantity"],
        &orders,
    );
    sheet(
        &mut wb,
        "Partner Users",
        &["Action", "First Name", "Last Name", "Email", "Role"],
        &partners,
    );
    rows += cust.len()
        + users.len()
        + numbers.len()
        + blocked.len()
        + devices.len()
        + settings.len()
        + orders.len()
        + partners.len();
    let path = dir.join(name);
    wb.save(&path).unwrap();
    MixedJob {
        path,
        rows,
        expected: exp,
    }
}

/// The account's state by natural keys: no ids, no times, so two runs can be compared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Canonical {
    pub customers: BTreeSet<(String, String)>,
    /// (company, email, first, last, type)
    pub users: BTreeSet<(String, String, String, String, String)>,
    /// (company, number, allocated to (email))
    pub numbers: BTreeSet<(String, String, Option<String>)>,
    /// (company, number, direction, note)
    pub blocked: BTreeSet<(String, String, String, String)>,
    /// (company, user email, mac, product)
    pub devices: BTreeSet<(String, String, String, String)>,
    /// (company, user email, call settings, schedule), for users whose settings were set.
    pub settings: BTreeSet<(String, String, String, String)>,
    /// (company, items): a list, so that a duplicate order shows.
    pub orders: Vec<(String, Vec<(String, u64)>)>,
    pub partner_users: BTreeSet<String>,
}

fn st(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or("").to_string()
}

/// Also counts: any duplicate entity makes the sets smaller than the lists, which is checked.
pub fn canonical(state: &Value) -> (Canonical, BTreeMap<&'static str, usize>) {
    let mut c = Canonical::default();
    let mut counts = BTreeMap::new();
    let arr = |k: &str| state[k].as_array().cloned().unwrap_or_default();
    let companies: BTreeMap<String, String> = arr("customers")
        .iter()
        .map(|cu| (st(cu, "id"), st(cu, "companyName")))
        .collect();
    for cu in arr("customers") {
        c.customers
            .insert((st(&cu, "companyName"), st(&cu, "email")));
    }
    counts.insert("customers", arr("customers").len());
    let emails: BTreeMap<String, String> = arr("users")
        .iter()
        .map(|u| (st(u, "id"), st(u, "email")))
        .collect();
    for u in arr("users") {
        let company = companies
            .get(&st(&u, "customerId"))
            .cloned()
            .unwrap_or_default();
        c.users.insert((
            company.clone(),
            st(&u, "email"),
            st(&u, "firstName"),
            st(&u, "lastName"),
            st(&u, "type"),
        ));
        let call = &u["callSettings"];
        let sched = &u["scheduleSettings"];
        let call_set = call
            .as_object()
            .is_some_and(|o| o.values().any(|v| !v.is_null()));
        if call_set || !sched.is_null() {
            let days: Vec<String> = sched["days"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| d.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            c.settings.insert((
                company,
                st(&u, "email"),
                serde_json::to_string(call).unwrap(),
                format!(
                    "{} {}-{}",
                    serde_json::to_string(&days).unwrap(),
                    st(sched, "open"),
                    st(sched, "close")
                ),
            ));
        }
    }
    counts.insert("users", arr("users").len());
    for n in arr("numbers") {
        let company = companies
            .get(&st(&n, "customerId"))
            .cloned()
            .unwrap_or_default();
        let user = n["userId"]
            .as_str()
            .map(|u| emails.get(u).cloned().unwrap_or_default());
        c.numbers.insert((company, st(&n, "number"), user));
    }
    counts.insert("numbers", arr("numbers").len());
    for b in arr("blocked") {
        let company = companies
            .get(&st(&b, "customerId"))
            .cloned()
            .unwrap_or_default();
        c.blocked.insert((
            company,
            st(&b, "number"),
            st(&b, "direction"),
            st(&b, "note"),
        ));
    }
    counts.insert("blocked", arr("blocked").len());
    for d in arr("devices") {
        let company = companies
            .get(&st(&d, "customerId"))
            .cloned()
            .unwrap_or_default();
        let user = emails.get(&st(&d, "userId")).cloned().unwrap_or_default();
        c.devices
            .insert((company, user, st(&d, "macAddress"), st(&d, "productId")));
    }
    counts.insert("devices", arr("devices").len());
    for o in arr("orders") {
        let company = companies
            .get(&st(&o, "customerId"))
            .cloned()
            .unwrap_or_default();
        let mut items: Vec<(String, u64)> = o["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (st(i, "productId"), i["quantity"].as_u64().unwrap()))
            .collect();
        items.sort();
        c.orders.push((company, items));
    }
    c.orders.sort();
    counts.insert("orders", arr("orders").len());
    for p in arr("partnerUsers") {
        c.partner_users.insert(st(&p, "email"));
    }
    counts.insert("partnerUsers", arr("partnerUsers").len());
    (c, counts)
}

/// A sheet of a workbook as text, cell by cell, the way calamine reads it back.
pub fn sheet_rows(path: &Path, sheet: &str) -> Vec<Vec<String>> {
    use calamine::{open_workbook_auto, Data, Reader};
    let mut wb = open_workbook_auto(path).unwrap();
    let range = wb.worksheet_range(sheet).unwrap();
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    Data::Float(f) => f.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The single job folder's journal under `jobs`.
pub fn journal_path(jobs: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(jobs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("journal.sqlite").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("a job folder").join("journal.sqlite")
}
