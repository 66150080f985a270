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
            .env("PLBULK_CONFIG", no_config(data_dir))
            .env_remove("PLBULK_JOB_DIR");
        c
    }
}

/// An empty config file (readable by its owner only) in `dir`, for `PLBULK_CONFIG`: the test
/// reads no user's config, and a named config file that is missing is an error of its own.
pub fn no_config(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("no-config.toml");
    std::fs::write(&p, "").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

/// plbulk as a partner without credentials runs it, in a folder of the test's own: its data
/// folder (jobs, the rehearsal account) under `dir/data`, an empty config file, so every run
/// rehearses, and no failpoint armed.
pub fn rehearsing(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("PLBULK_DATA_DIR", dir.join("data"))
        .env("PLBULK_CONFIG", no_config(dir))
        .env_remove("PLBULK_JOB_DIR")
        .env_remove("PLBULK_API_KEY")
        .env_remove("PLBULK_API_SECRET")
        .env_remove("PLBULK_BASE_URL")
        .env_remove(plbulk::failpoint::ENV);
    c
}

/// The rehearsal account `rehearsing(dir)` runs keep, as its file holds it.
pub fn rehearsal_account(dir: &Path) -> Value {
    let path = dir.join("data").join("rehearsal").join("account.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// How many entities of collection `what` an account holds.
pub fn count_of(account: &Value, what: &str) -> usize {
    account[what].as_object().map_or(0, |o| o.len())
}

/// plbulk on a machine that has never seen it: no config file named or made (its default
/// place is under `dir/config`), jobs in `dir/jobs`, data in `dir/data`.
pub fn first_time(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("PLBULK_DATA_DIR", dir.join("data"))
        .env("PLBULK_JOB_DIR", dir.join("jobs"))
        .env_remove("PLBULK_CONFIG")
        .env_remove("PLBULK_API_KEY")
        .env_remove("PLBULK_API_SECRET")
        .env_remove("PLBULK_BASE_URL")
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir);
    c
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

/// A sheet of text cells: a header row, then the rows (empty strings left blank).
pub fn write_sheet(wb: &mut Workbook, name: &str, headers: &[&str], data: &[Vec<String>]) {
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
}

pub fn mixed_job(dir: &Path, name: &str, customers: usize, offset: usize) -> MixedJob {
    let mut wb = Workbook::new();
    let mut exp = Canonical::default();
    let mut rows = 0;
    let sheet = write_sheet;
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

/// Companies that exist before a job ("Old NN Ltd"), each with two users, a number allocated
/// to its first user (even companies) and one in its pool, and a blocked number; and three
/// partner users. Made through the API of a fault-free in-process sandbox, as a partner's
/// account would have them, and saved to a file for `plbulk sandbox --state`.
pub fn old_account(dir: &Path, companies: usize) -> PathBuf {
    use plbulk::client::{Client, ClientConfig, Credentials};
    use plbulk::contract as c;
    use plbulk::sandbox::{Sandbox, SandboxConfig, DEFAULT_KEY, DEFAULT_SECRET};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig {
            rate: plbulk::pacing::Rate::new(100_000, Duration::from_secs(60)),
            ..Default::default()
        })
        .await
        .unwrap();
        let api = Client::new(ClientConfig::new(
            sandbox.url(),
            Credentials::new(DEFAULT_KEY, DEFAULT_SECRET),
        ))
        .unwrap();
        for k in 0..companies {
            let cu = api
                .add_customer(&c::NewCustomer {
                    company_name: format!("Old {k:02} Ltd"),
                    contact_name: Some("Old Contact".into()),
                    email: Some(format!("it@old{k}.example")),
                    phone: None,
                    plan: Some(c::Plan::Pro),
                    contract_months: Some(12),
                    address: None,
                })
                .await
                .unwrap();
            let mut ids = Vec::new();
            for (first, email) in [
                ("A", format!("a@old{k}.example")),
                ("B", format!("b@old{k}.example")),
            ] {
                let u = api
                    .add_user(
                        &cu.id,
                        &c::NewUser {
                            first_name: first.into(),
                            last_name: "Old".into(),
                            email,
                            user_type: c::UserType::Standard,
                        },
                    )
                    .await
                    .unwrap();
                ids.push(u.id);
            }
            let n = api
                .add_customer_number(&cu.id, &format!("+44151496{k:04}"))
                .await
                .unwrap();
            if k % 2 == 0 {
                api.allocate_number(&cu.id, &n.id, &ids[0]).await.unwrap();
            }
            api.add_customer_number(&cu.id, &format!("+44151496{:04}", k + 500))
                .await
                .unwrap();
            api.add_blocked_number(
                &cu.id,
                &c::NewBlockedNumber {
                    number: format!("+44909877{k:04}"),
                    direction: c::Direction::Inbound,
                    note: Some("old".into()),
                },
            )
            .await
            .unwrap();
        }
        for p in 0..3 {
            api.add_partner_user(&c::NewPartnerUser {
                first_name: "Old".into(),
                last_name: "Partner".into(),
                email: format!("old{p}@partner.example"),
                role: Some("support".into()),
            })
            .await
            .unwrap();
        }
        let path = dir.join("old-account.json");
        std::fs::write(&path, sandbox.save()).unwrap();
        sandbox.stop().await;
        path
    })
}

/// A workbook of changes to [`old_account`]'s companies: updates, deletes, regrades,
/// allocations and deallocations, emails, and adds into customers that existed before the job.
pub struct ChangesJob {
    pub path: PathBuf,
    pub rows: usize,
    /// The old account's state after the changes.
    pub expected: Canonical,
    /// (email of the user, "activation" or "password-reset") of each email row.
    pub emails: Vec<(String, &'static str)>,
}

pub fn changes_job(dir: &Path, name: &str, companies: usize) -> ChangesJob {
    let s = |v: &str| v.to_string();
    let mut exp = Canonical::default();
    let (mut cust, mut users, mut numbers, mut blocked) = (vec![], vec![], vec![], vec![]);
    let mut emails = Vec::new();
    for k in 0..companies {
        let company = format!("Old {k:02} Ltd");
        let (a, b) = (format!("a@old{k}.example"), format!("b@old{k}.example"));
        let mut email = format!("it@old{k}.example");
        let mut a_last = s("Old");
        let mut a_type = s("standard");
        let mut b_kept = true;
        let mut old_alloc = (k % 2 == 0).then(|| a.clone());
        let mut pool_alloc: Option<String> = None;
        let mut blocked_note = Some(s("old"));
        let mut extra_users = Vec::new();
        let mut extra_numbers = Vec::new();
        let mut extra_blocked = Vec::new();
        match k % 6 {
            0 => {
                email = format!("it-new@old{k}.example");
                cust.push(vec![s("update"), company.clone(), email.clone(), s("")]);
                a_last = s("Changed");
                users.push(vec![
                    s("update"),
                    company.clone(),
                    s(""),
                    s("Changed"),
                    a.clone(),
                    s(""),
                ]);
                blocked.push(vec![
                    s("update"),
                    company.clone(),
                    format!("0909 877 {k:04}"),
                    s("inbound"),
                    s("changed"),
                ]);
                blocked_note = Some(s("changed"));
                numbers.push(vec![
                    s("deallocate"),
                    company.clone(),
                    format!("0151 496 {k:04}"),
                    s(""),
                ]);
                old_alloc = None;
            }
            1 => {
                users.push(vec![
                    s("delete"),
                    company.clone(),
                    s(""),
                    s(""),
                    b.clone(),
                    s(""),
                ]);
                b_kept = false;
                numbers.push(vec![
                    s("allocate"),
                    company.clone(),
                    format!("0151 496 {:04}", k + 500),
                    a.clone(),
                ]);
                pool_alloc = Some(a.clone());
                blocked.push(vec![
                    s("delete"),
                    company.clone(),
                    format!("0909 877 {k:04}"),
                    s(""),
                    s(""),
                ]);
                blocked_note = None;
                let c_email = format!("c@old{k}.example");
                users.push(vec![
                    s("add"),
                    company.clone(),
                    s("C"),
                    s("New"),
                    c_email.clone(),
                    s("standard"),
                ]);
                extra_users.push((c_email, s("C"), s("New"), s("standard")));
            }
            2 => {
                cust.push(vec![s("delete"), company.clone(), s(""), s("")]);
                continue;
            }
            3 => {
                cust.push(vec![s("regrade"), company.clone(), s(""), s("24")]);
                users.push(vec![
                    s("resend-activation"),
                    company.clone(),
                    s(""),
                    s(""),
                    a.clone(),
                    s(""),
                ]);
                emails.push((a.clone(), "activation"));
                blocked.push(vec![
                    s("add"),
                    company.clone(),
                    format!("0909 876 {k:04}"),
                    s("outbound"),
                    s("new"),
                ]);
                extra_blocked.push((format!("+44909876{k:04}"), s("outbound"), s("new")));
            }
            4 => {
                numbers.push(vec![
                    s("add"),
                    company.clone(),
                    format!("0151 496 {:04}", k + 700),
                    b.clone(),
                ]);
                extra_numbers.push((format!("+44151496{:04}", k + 700), Some(b.clone())));
            }
            _ => {
                users.push(vec![
                    s("reset-password"),
                    company.clone(),
                    s(""),
                    s(""),
                    b.clone(),
                    s(""),
                ]);
                emails.push((b.clone(), "password-reset"));
                users.push(vec![
                    s("update"),
                    company.clone(),
                    s(""),
                    s(""),
                    a.clone(),
                    s("admin"),
                ]);
                a_type = s("admin");
            }
        }
        exp.customers.insert((company.clone(), email));
        exp.users
            .insert((company.clone(), a.clone(), s("A"), a_last, a_type));
        if b_kept {
            exp.users
                .insert((company.clone(), b.clone(), s("B"), s("Old"), s("standard")));
        }
        for (e, f, l, t) in extra_users {
            exp.users.insert((company.clone(), e, f, l, t));
        }
        exp.numbers
            .insert((company.clone(), format!("+44151496{k:04}"), old_alloc));
        exp.numbers.insert((
            company.clone(),
            format!("+44151496{:04}", k + 500),
            pool_alloc,
        ));
        for (n, u) in extra_numbers {
            exp.numbers.insert((company.clone(), n, u));
        }
        if let Some(note) = blocked_note {
            exp.blocked.insert((
                company.clone(),
                format!("+44909877{k:04}"),
                s("inbound"),
                note,
            ));
        }
        for (n, d, note) in extra_blocked {
            exp.blocked.insert((company.clone(), n, d, note));
        }
    }
    let partners = vec![
        vec![
            s("update"),
            s(""),
            s("Renamed"),
            s("old0@partner.example"),
            s(""),
        ],
        vec![s("delete"), s(""), s(""), s("old1@partner.example"), s("")],
    ];
    exp.partner_users.insert(s("old0@partner.example"));
    exp.partner_users.insert(s("old2@partner.example"));

    let mut wb = Workbook::new();
    let mut sheet = |name: &str, headers: &[&str], data: &[Vec<String>]| {
        write_sheet(&mut wb, name, headers, data)
    };
    sheet(
        "Customers",
        &["Action", "Company Name", "Email", "Contract Months"],
        &cust,
    );
    sheet(
        "Users",
        &[
            "Action",
            "Customer",
            "First Name",
            "Last Name",
            "Email",
            "User Type",
        ],
        &users,
    );
    sheet(
        "Numbers",
        &["Action", "Customer", "Number", "User Email"],
        &numbers,
    );
    sheet(
        "Blocked Numbers",
        &["Action", "Customer", "Number", "Direction", "Note"],
        &blocked,
    );
    sheet(
        "Partner Users",
        &["Action", "First Name", "Last Name", "Email", "Role"],
        &partners,
    );
    let rows = cust.len() + users.len() + numbers.len() + blocked.len() + partners.len();
    let path = dir.join(name);
    wb.save(&path).unwrap();
    ChangesJob {
        path,
        rows,
        expected: exp,
        emails,
    }
}

impl Canonical {
    /// Both states together: a job's own adds and its changes to what was there before.
    pub fn merged(mut self, other: Canonical) -> Canonical {
        self.customers.extend(other.customers);
        self.users.extend(other.users);
        self.numbers.extend(other.numbers);
        self.blocked.extend(other.blocked);
        self.devices.extend(other.devices);
        self.settings.extend(other.settings);
        self.orders.extend(other.orders);
        self.orders.sort();
        self.partner_users.extend(other.partner_users);
        self
    }
}
