//! The Migration sheet through the real binary (issue 21, section 3): another provider's flat
//! export, one row per person (samples/migration/people-export.csv), read through its mapping
//! against a standalone sandbox over loopback. The sample migrates exactly, as the API lists
//! the account back; a second run makes nothing; killed at each journal step of each kind of
//! request it resumes to the same account; a changed mapping refuses the resume; a value the
//! mapping does not translate, rows of one account that disagree, and a DDI, MAC or email given
//! twice are refused before any write, naming the rows; `map init` guesses three other shapes
//! of per-person export; and the same data as five sheets leaves the same account, for the
//! calls-per-row comparison the issue asks for.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use plbulk::client::{Client, ClientConfig, Credentials};
use plbulk::failpoint::Point;
use serde_json::Value;

/// Fast enough that the file's many runs take seconds, and the same on both sides so that
/// nothing is refused for the limit.
const RATE: &str = "200/s";

/// A run to be killed: one request at a time, so that the kill catches the request the
/// failpoint names and no other in flight (a device whose answer a kill loses is for a person
/// to review, and would be another row each time); and a request whose intent is journaled
/// and whose answer is not may still land, so the resume waits out the job's timeout before
/// it looks for it in the account: 1 s rather than 30 keeps the kills quick.
const KILLED: [&str; 5] = ["-q", "--concurrency", "1", "--timeout", "1s"];

const EXPORT: &str = "people-export.csv";
const MAP: &str = "people.map.toml";

/// The account the sample must leave, as the API lists it back: one line per entity,
/// sorted, so that anything made twice shows as a line twice.
///
/// Customers: company | contact | email | phone | plan | months | address.
const CUSTOMERS: [&str; 5] = [
    "Northgate Veterinary Ltd | Aisha Khan | aisha@northgate-vets.example | +441614960780 | pro | 12 | Unit 2, 12 Piccadilly, Manchester, M1 1AE",
    "Pennine Lettings Ltd | Owen Evans | owen@pennine-lettings.example | +441134960780 | pro | 24 | 5 Park Row, Leeds, LS1 4AP",
    "Quayside Print Co | Rhys Jones |  | +441174960780 | hardware | 1 | 20 Broad Quay, Bristol, BS1 4DJ",
    "Taff Dental Ltd | Si\u{e2}n Morgan | sian@taff-dental.example | +442920180780 | pro | 12 | 1 Central Square, Cardiff, CF10 1EP",
    "Waverley Opticians | Mei Chen | mei@waverley-opticians.example | +441314960780 | pro | 36 | 3 Waverley Bridge, Edinburgh, EH1 1YZ",
];

/// Users: company | email | first | last | type. "Khan, Aisha" and "Aisha Khan" split alike;
/// "Mary Ann Price" keeps both first names.
const USERS: [&str; 13] = [
    "Northgate Veterinary Ltd | aisha@northgate-vets.example | Aisha | Khan | admin",
    "Northgate Veterinary Ltd | grace@northgate-vets.example | Grace | O'Neill | standard",
    "Northgate Veterinary Ltd | jordan@northgate-vets.example | Jordan | Lee | standard",
    "Northgate Veterinary Ltd | tom@northgate-vets.example | Tom | Baker | standard",
    "Pennine Lettings Ltd | fatima@pennine-lettings.example | Fatima | Hussain | standard",
    "Pennine Lettings Ltd | mary@pennine-lettings.example | Mary Ann | Price | standard",
    "Pennine Lettings Ltd | owen@pennine-lettings.example | Owen | Evans | admin",
    "Taff Dental Ltd | ffion@taff-dental.example | Ffion | Davies | standard",
    "Taff Dental Ltd | josh@taff-dental.example | Josh | Wood | standard",
    "Taff Dental Ltd | sian@taff-dental.example | Si\u{e2}n | Morgan | admin",
    "Waverley Opticians | callum@waverley-opticians.example | Callum | Reid | standard",
    "Waverley Opticians | dev@waverley-opticians.example | Dev | Patel | standard",
    "Waverley Opticians | mei@waverley-opticians.example | Mei | Chen | admin",
];

/// Numbers: company | number | the user it is allocated to. Every DDI, whatever its
/// spelling in the export, in its account's pool and allocated to its person.
const NUMBERS: [&str; 12] = [
    "Northgate Veterinary Ltd | +441614960701 | aisha@northgate-vets.example",
    "Northgate Veterinary Ltd | +441614960702 | tom@northgate-vets.example",
    "Northgate Veterinary Ltd | +441614960703 | jordan@northgate-vets.example",
    "Northgate Veterinary Ltd | +441614960704 | grace@northgate-vets.example",
    "Pennine Lettings Ltd | +441134960701 | owen@pennine-lettings.example",
    "Pennine Lettings Ltd | +441134960702 | fatima@pennine-lettings.example",
    "Pennine Lettings Ltd | +441134960703 | mary@pennine-lettings.example",
    "Taff Dental Ltd | +442920180701 | sian@taff-dental.example",
    "Taff Dental Ltd | +442920180703 | ffion@taff-dental.example",
    "Waverley Opticians | +441314960701 | mei@waverley-opticians.example",
    "Waverley Opticians | +441314960702 | callum@waverley-opticians.example",
    "Waverley Opticians | +441314960703 | dev@waverley-opticians.example",
];

/// Devices: company | user | product | MAC. Only the handsets the export gives a MAC for.
const DEVICES: [&str; 6] = [
    "Northgate Veterinary Ltd | aisha@northgate-vets.example | prd-yealink-t54w | 805EC03A0101",
    "Northgate Veterinary Ltd | grace@northgate-vets.example | prd-yealink-t54w | 805EC03A0104",
    "Pennine Lettings Ltd | fatima@pennine-lettings.example | prd-yealink-t46u | 805EC03A0202",
    "Pennine Lettings Ltd | mary@pennine-lettings.example | prd-yealink-t31p | 805EC03A0203",
    "Pennine Lettings Ltd | owen@pennine-lettings.example | prd-yealink-t46u | 805EC03A0201",
    "Taff Dental Ltd | sian@taff-dental.example | prd-yealink-t54w | 805EC03A0501",
];

/// Orders: company | items | delivered to. One per customer that orders, its handsets
/// without a MAC summed per product; none for Pennine, whose handsets all have MACs.
const ORDERS: [&str; 4] = [
    "Northgate Veterinary Ltd | prd-yealink-t31p x2 | Unit 2, 12 Piccadilly, Manchester, M1 1AE",
    "Quayside Print Co | prd-yealink-t31p x2, prd-yealink-w73p x1 | 20 Broad Quay, Bristol, BS1 4DJ",
    "Taff Dental Ltd | prd-yealink-t31p x1 | 1 Central Square, Cardiff, CF10 1EP",
    "Waverley Opticians | prd-yealink-t31p x1, prd-yealink-t54w x2 | 3 Waverley Bridge, Edinburgh, EH1 1YZ",
];

/// The export's rows: what one run's results have a line for each of.
const ROWS: usize = 16;

#[derive(Debug, PartialEq, Eq)]
struct Account {
    customers: Vec<String>,
    users: Vec<String>,
    numbers: Vec<String>,
    devices: Vec<String>,
    orders: Vec<String>,
}

fn expected() -> Account {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
    Account {
        customers: v(&CUSTOMERS),
        users: v(&USERS),
        numbers: v(&NUMBERS),
        devices: v(&DEVICES),
        orders: v(&ORDERS),
    }
}

fn address(a: &Option<plbulk::contract::Address>) -> String {
    a.as_ref().map_or(String::new(), |a| {
        [
            Some(a.line1.as_str()),
            a.line2.as_deref(),
            Some(a.town.as_str()),
            a.county.as_deref(),
            Some(a.postcode.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    })
}

/// The account as the API lists it (customers, their users, numbers and orders), and its
/// devices as the sandbox holds them: the API has no call that lists devices.
fn account(sb: &StandaloneSandbox) -> Account {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(ClientConfig::new(
        sb.url.clone(),
        Credentials::new(sb.key.clone(), sb.secret.clone()),
    ))
    .unwrap();
    let mut a = rt.block_on(async {
        let mut a = Account {
            customers: vec![],
            users: vec![],
            numbers: vec![],
            devices: vec![],
            orders: vec![],
        };
        for c in client.list_customers().await.unwrap() {
            let plan = serde_json::to_value(c.plan).unwrap();
            a.customers.push(format!(
                "{} | {} | {} | {} | {} | {} | {}",
                c.company_name,
                c.contact_name.as_deref().unwrap_or(""),
                c.email.as_deref().unwrap_or(""),
                c.phone.as_deref().unwrap_or(""),
                plan.as_str().unwrap_or(""),
                c.contract_months,
                address(&c.address)
            ));
            let users = client.list_users(&c.id).await.unwrap();
            let email_of = |id: &str| {
                users
                    .iter()
                    .find(|u| u.id == id)
                    .map_or(format!("? {id}"), |u| u.email.clone())
            };
            for u in &users {
                let t = serde_json::to_value(u.user_type).unwrap();
                a.users.push(format!(
                    "{} | {} | {} | {} | {}",
                    c.company_name,
                    u.email,
                    u.first_name,
                    u.last_name,
                    t.as_str().unwrap_or("")
                ));
            }
            for n in client.list_customer_numbers(&c.id).await.unwrap() {
                let to = n.user_id.as_deref().map_or(String::new(), email_of);
                a.numbers
                    .push(format!("{} | {} | {}", c.company_name, n.number, to));
            }
            for o in client.list_customer_orders(&c.id).await.unwrap() {
                let mut items: Vec<String> = o
                    .items
                    .iter()
                    .map(|i| format!("{} x{}", i.product_id, i.quantity))
                    .collect();
                items.sort();
                a.orders.push(format!(
                    "{} | {} | {}",
                    c.company_name,
                    items.join(", "),
                    address(&Some(o.delivery_address.clone()))
                ));
            }
        }
        a
    });
    let state = sb.state();
    let name = |id: &str, of: &str, field: &str| {
        state[of]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .map_or(format!("? {id}"), |x| {
                x[field].as_str().unwrap_or("").to_string()
            })
    };
    for d in state["devices"].as_array().unwrap() {
        let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
        a.devices.push(format!(
            "{} | {} | {} | {}",
            name(&s("customerId"), "customers", "companyName"),
            name(&s("userId"), "users", "email"),
            s("productId"),
            s("macAddress")
        ));
    }
    for v in [
        &mut a.customers,
        &mut a.users,
        &mut a.numbers,
        &mut a.devices,
        &mut a.orders,
    ] {
        v.sort();
    }
    a
}

/// A folder with copies of the sample export and its mapping, as a partner has them.
fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/migration");
    for f in [EXPORT, MAP] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

/// plbulk in `d` against the standalone sandbox, its jobs under `d/data`.
fn plbulk(sb: &StandaloneSandbox, d: &Path) -> Command {
    let mut c = sb.plbulk(&d.join("data"));
    c.current_dir(d).env_remove(plbulk::failpoint::ENV);
    c
}

fn migrate(sb: &StandaloneSandbox, d: &Path, export: &str, extra: &[&str]) -> Command {
    let mut c = plbulk(sb, d);
    c.args(["run", export, "--map", MAP, "--rate", RATE])
        .args(extra);
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// "Calls made: N." of a run's last line.
fn calls_made(o: &Output) -> usize {
    let s = stdout(o);
    let at = s.rfind("Calls made: ").expect("a run says its calls");
    s[at + "Calls made: ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn is_write(e: &plbulk::sandbox::LogEntry) -> bool {
    e.method != "GET" && e.path != "/auth"
}

fn job_ids(d: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(d.join("data").join("jobs")) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("journal.sqlite").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// The results' Migration sheet as (header → column) and its rows.
fn results(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rows = sheet_rows(path, "Migration");
    let header = rows.remove(0);
    (header, rows)
}

fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
}

#[test]
fn the_sample_migrates_exactly_and_a_second_run_makes_nothing() {
    let _g = beside_others();
    let dir = sample();
    let d = dir.path();
    let sb = StandaloneSandbox::start(d, RATE, &[]);

    let o = run(plbulk(&sb, d).args(["validate", EXPORT, "--map", MAP, "--no-report"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        stdout(&o).contains("16 rows, 16 valid, 0 with errors")
            && stdout(&o).contains("0 errors, 0 warnings"),
        "{}",
        text(&o)
    );

    let o = run(&mut migrate(&sb, d, EXPORT, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains(": 16 succeeded."), "{}", text(&o));
    assert_eq!(account(&sb), expected());

    // One line per source row, the export's own columns first, then an outcome per task.
    let (h, rows) = results(&d.join("people-export.results.xlsx"));
    assert_eq!(rows.len(), ROWS, "{rows:?}");
    assert_eq!(h[..3], ["Account No", "Account Name", "Package"]);
    let name = col(&h, "Name");
    let outcome = |task: &str| col(&h, &format!("{task} (outcome)"));
    let tasks = ["Customer", "User", "Number", "Device", "Order"];
    let by_name = |n: &str| rows.iter().position(|r| r[name] == n).unwrap();
    let row_tasks =
        |i: usize| -> Vec<&str> { tasks.iter().map(|t| rows[i][outcome(t)].as_str()).collect() };
    // The account's first row makes it; a MAC'd handset is a device, one without an order.
    assert_eq!(
        row_tasks(by_name("Khan, Aisha")),
        ["succeeded", "succeeded", "succeeded", "succeeded", ""]
    );
    assert_eq!(
        row_tasks(by_name("Tom Baker")),
        ["", "succeeded", "succeeded", "", "succeeded"]
    );
    // A person with neither DDI nor handset is a user alone.
    assert_eq!(
        row_tasks(by_name("Josh Wood")),
        ["", "succeeded", "", "", ""]
    );
    // The hardware-only account's rows: its customer and its one order, no user.
    let quayside: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i][1] == "Quayside Print Co")
        .collect();
    assert_eq!(quayside.len(), 3);
    assert_eq!(
        row_tasks(quayside[0]),
        ["succeeded", "", "", "", "succeeded"]
    );
    assert_eq!(row_tasks(quayside[2]), ["", "", "", "", "succeeded"]);
    let order_id = col(&h, "Order ID (result)");
    assert!(
        quayside
            .iter()
            .all(|i| rows[*i][order_id] == rows[quayside[0]][order_id]
                && !rows[*i][order_id].is_empty()),
        "one order for the account: {rows:?}"
    );

    // Again: everything is there. Only devices, which the API cannot list, are sent, and
    // refused as already assigned; nothing is made.
    let before = sb.requests().len();
    let o = run(&mut migrate(&sb, d, EXPORT, &["--results", "again.xlsx"]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stdout(&o).contains(": 16 already existed."), "{}", text(&o));
    let writes: Vec<(String, String, u16)> = sb.requests()[before..]
        .iter()
        .filter(|e| is_write(e))
        .map(|e| (e.method.clone(), e.path.clone(), e.status))
        .collect();
    assert!(
        writes
            .iter()
            .all(|(m, p, s)| m == "POST" && p.ends_with("/devices") && *s == 409),
        "a second run made something: {writes:?}"
    );
    assert_eq!(writes.len(), DEVICES.len(), "{writes:?}");
    assert_eq!(account(&sb), expected());
    let (h, rows) = results(&d.join("again.xlsx"));
    assert_eq!(rows.len(), ROWS);
    for r in &rows {
        for t in tasks {
            let o = r[col(&h, &format!("{t} (outcome)"))].as_str();
            assert!(
                matches!(o, "" | "already existed" | "no change"),
                "{t} of {r:?}"
            );
        }
    }
}

/// Runs the sample killed at `point` of the second request of `operation`, resumes it, and
/// returns the account it leaves.
fn killed_and_resumed(point: Point, operation: &str) -> Account {
    let dir = sample();
    let d = dir.path();
    let sb = StandaloneSandbox::start(d, RATE, &[]);
    let spec = format!("{}:{operation}@2", point.name());
    let o = run(migrate(&sb, d, EXPORT, &KILLED).env(plbulk::failpoint::ENV, &spec));
    assert!(!o.status.success(), "{spec}: {}", text(&o));
    let said = format!(
        "failpoint {} reached for {operation}: aborting",
        point.name()
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&said),
        "{spec}: {}",
        text(&o)
    );
    let ids = job_ids(d);
    assert_eq!(ids.len(), 1, "{spec}: {ids:?}");
    let o = run(plbulk(&sb, d).args(["resume", &ids[0]]));
    let s = stdout(&o);
    // A device made and its answer lost cannot be told from another's phone with that MAC:
    // the contract lists no devices, so that row alone is for a person to look at (README,
    // "Faults, and what a row ends as").
    if (point, operation) == (Point::Answer, "Add Customer User Device") {
        assert_eq!(o.status.code(), Some(1), "{spec}: {}", text(&o));
        assert!(
            s.contains(": 15 succeeded, 1 needs review."),
            "{spec}: {}",
            text(&o)
        );
    } else {
        assert_eq!(o.status.code(), Some(0), "{spec}: {}", text(&o));
        assert!(
            !s.contains("failed") && !s.contains("needs review") && !s.contains("skipped"),
            "{spec}: every row ends well: {}",
            text(&o)
        );
    }
    account(&sb)
}

#[test]
fn killed_at_each_journal_step_it_resumes_to_the_same_account() {
    let _g = beside_others();
    let operations = [
        "Add Customer",
        "Add Customer User",
        "Add Customer Number",
        "Allocate Customer Number",
        "Add Customer User Device",
        "Add Customer Order",
    ];
    // Two at a time: the cases are independent, and each spends much of its time waiting
    // on the other process.
    let cases: Vec<(Point, &str)> = operations
        .iter()
        .flat_map(|op| Point::ALL.map(|p| (p, *op)))
        .collect();
    for pair in cases.chunks(2) {
        std::thread::scope(|s| {
            let handles: Vec<_> = pair
                .iter()
                .map(|(p, op)| s.spawn(move || (*p, *op, killed_and_resumed(*p, op))))
                .collect();
            for h in handles {
                let (p, op, got) = h.join().unwrap();
                assert_eq!(got, expected(), "killed at {} of {op}", p.name());
            }
        });
    }
}

#[test]
fn a_changed_mapping_refuses_the_resume_naming_it() {
    let _g = beside_others();
    let dir = sample();
    let d = dir.path();
    let sb = StandaloneSandbox::start(d, RATE, &[]);
    let o =
        run(migrate(&sb, d, EXPORT, &KILLED)
            .env(plbulk::failpoint::ENV, "intent:Add Customer User@3"));
    assert!(!o.status.success(), "{}", text(&o));
    let ids = job_ids(d);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let sent = sb.requests().len();

    let map = d.join(MAP);
    let original = std::fs::read_to_string(&map).unwrap();
    let changed = original.replace("\"Rolling\" = \"1\"", "\"Rolling\" = \"12\"");
    assert_ne!(changed, original);
    std::fs::write(&map, changed).unwrap();
    let o = run(plbulk(&sb, d).args(["resume", &ids[0]]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("people.map.toml has changed since job"),
        "{}",
        text(&o)
    );
    assert_eq!(sb.requests().len(), sent, "the refused resume sent nothing");

    std::fs::write(&map, original).unwrap();
    let o = run(plbulk(&sb, d).args(["resume", &ids[0]]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(account(&sb), expected());
}

#[test]
fn a_value_the_mapping_does_not_translate_is_refused_before_any_call() {
    let _g = beside_others();
    let dir = sample();
    let d = dir.path();
    let sb = StandaloneSandbox::start(d, RATE, &[]);
    let export = std::fs::read_to_string(d.join(EXPORT)).unwrap();
    // "Hardware Bundle" is neither in [values."Plan"] nor a plan plbulk knows.
    std::fs::write(
        d.join("bundle.csv"),
        export.replace("Handset Only", "Hardware Bundle"),
    )
    .unwrap();
    let o = run(&mut migrate(&sb, d, "bundle.csv", &[]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("bundle.csv, row 12, column C (Package): \"Hardware Bundle\" is not a plan")
            && said.contains(
                "\"Hardware Bundle\" has no entry in [values.\"Plan\"] of people.map.toml: add one there"
            ),
        "{said}"
    );
    let writes: Vec<_> = sb.requests().into_iter().filter(is_write).collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(job_ids(d).is_empty(), "no job was made");
}

#[test]
fn rows_that_disagree_or_repeat_are_refused_naming_both_rows() {
    let _g = beside_others();
    let dir = sample();
    let d = dir.path();
    let lines: Vec<String> = std::fs::read_to_string(d.join(EXPORT))
        .unwrap()
        .split("\r\n")
        .map(str::to_string)
        .collect();
    // lines[i] is the sheet's row i + 1.
    let write = |name: &str, edit: &dyn Fn(&mut Vec<String>)| -> PathBuf {
        let mut l = lines.clone();
        edit(&mut l);
        let p = d.join(name);
        std::fs::write(&p, l.join("\r\n")).unwrap();
        p
    };
    let validate = |name: &str| -> Output {
        run(rehearsing(d).args(["validate", name, "--map", MAP, "--no-report"]))
    };
    let edit = |l: &mut Vec<String>, row: usize, from: &str, to: &str| {
        let was = l[row - 1].clone();
        l[row - 1] = was.replacen(from, to, 1);
        assert_ne!(l[row - 1], was, "row {row} has {from}");
    };

    // The third row of Northgate (sheet row 4) says its account is hardware only.
    write("plan.csv", &|l| edit(l, 4, "PL Standard", "Handset Only"));
    let o = validate("plan.csv");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stdout(&o).contains("1 error,")
            && stdout(&o).contains(
                "plan.csv, row 4, column C (Package): Plan differs from row 2, which gives this customer"
            ),
        "{}",
        text(&o)
    );

    // Dev (row 11) has Tom's DDI (row 3) in another spelling; Mary (row 8) Fatima's MAC
    // (row 7) in another; Ffion (row 17) Josh's email (row 16).
    write("repeats.csv", &|l| {
        edit(l, 11, "01314960703", "0161 496 0702");
        edit(l, 8, "80:5E:C0:3A:02:03", "80-5e-c0-3a-02-02");
        edit(l, 17, "ffion@", "josh@");
    });
    let o = validate("repeats.csv");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let said = stdout(&o);
    assert!(said.contains("3 errors,"), "{}", text(&o));
    for (at, what, other) in [
        (
            "row 11, column N (DDI)",
            "+441614960702 is given twice",
            "also on row 3",
        ),
        (
            "row 8, column Q (Handset MAC)",
            "MAC address 805EC03A0202 is given twice",
            "also on row 7",
        ),
        (
            "row 17, column L (Email Address)",
            "this User Email is given twice",
            "also on row 16",
        ),
    ] {
        let line = said
            .lines()
            .find(|l| l.contains(&format!("repeats.csv, {at}: {what}")))
            .unwrap_or_else(|| panic!("{at}: {said}"));
        assert!(line.contains(other), "{line}");
    }
}

/// The `[columns]` table and `ignore` list `map init` writes for `export`.
fn guess(d: &Path, export: &str) -> (Value, Value) {
    let out = d.join(format!("{export}.toml"));
    let o = run(rehearsing(d).args(["map", "init", export, "--out", out.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: toml::Value = toml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let v = serde_json::to_value(v).unwrap();
    assert_eq!(v["kind"], "migration", "{export}: {v}");
    (v["columns"].clone(), v["ignore"].clone())
}

fn split(from: &str) -> [(&'static str, Value); 2] {
    [
        (
            "First Name",
            serde_json::json!({"from": from, "part": "first"}),
        ),
        (
            "Last Name",
            serde_json::json!({"from": from, "part": "last"}),
        ),
    ]
}

fn columns(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

#[test]
fn map_init_guesses_three_differently_shaped_per_person_exports() {
    let _g = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = |v: &str| Value::String(v.into());

    // A telephony export: customer by name, one name column, a DID and the phone's model.
    std::fs::write(
        d.join("telephony.csv"),
        "Customer,Full Name,E-mail,DID,Phone Model,MAC\r\n\
         Harbour Dental Ltd,Priya Shah,priya@harbour-dental.example,0161 496 0801,Yealink T54W,80:5E:C0:4B:00:01\r\n\
         Harbour Dental Ltd,\"Baker, Tom\",tom@harbour-dental.example,01614960802,Yealink T31P,\r\n\
         Kestrel Joinery Ltd,Owen Evans,owen@kestrel-joinery.example,+44 113 496 0801,Yealink T46U,80-5E-C0-4B-00-03\r\n",
    )
    .unwrap();
    let (c, ignore) = guess(d, "telephony.csv");
    let [first, last] = split("Full Name");
    assert_eq!(
        c,
        columns(&[
            ("Company Name", s("Customer")),
            first,
            last,
            ("User Email", s("E-mail")),
            ("Number", s("DID")),
            ("Device", s("Phone Model")),
            ("MAC Address", s("MAC")),
        ])
    );
    assert_eq!(ignore, serde_json::json!([]));

    // A CRM's: an account reference, the names in two columns, a login and a direct dial.
    std::fs::write(
        d.join("crm.csv"),
        "Account Ref,Business,First,Surname,Login,Direct Dial,Handset\r\n\
         K-1,Kestrel Joinery Ltd,Owen,Evans,owen@kestrel-joinery.example,0113 496 0811,Yealink T31P\r\n\
         K-1,Kestrel Joinery Ltd,Fatima,Hussain,fatima@kestrel-joinery.example,0113 496 0812,\r\n\
         L-2,Larch Accountants,Mei,Chen,mei@larch.example,020 7946 0811,Yealink T54W\r\n",
    )
    .unwrap();
    let (c, ignore) = guess(d, "crm.csv");
    let mut want = vec![
        ("Customer Ref", s("Account Ref")),
        ("First Name", s("First")),
        ("Last Name", s("Surname")),
        ("User Email", s("Login")),
        ("Number", s("Direct Dial")),
        ("Device", s("Handset")),
    ];
    // "Business" is no header plbulk knows for Company Name: map init leaves it for a
    // person (under ignore, with a comment), and a later guesser may take it. Either way it
    // is not read as anything else.
    if c.get("Company Name").is_some() {
        want.push(("Company Name", s("Business")));
    } else {
        assert_eq!(ignore, serde_json::json!(["Business"]));
    }
    assert_eq!(c, columns(&want));

    // A workbook from a billing system: the account's columns too, DDIs stored as numbers
    // (the leading 0 lost, as Excel keeps them), the name as "Surname, First".
    let path = d.join("billing.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Users").unwrap();
    let headers = [
        "Cust No",
        "Company",
        "Tariff",
        "Contract Length",
        "Contact",
        "Contact Email",
        "Address 1",
        "Post Town",
        "Postal Code",
        "User",
        "Email Address",
        "User Role",
        "Ext",
        "Telephone Number",
        "Device Model",
        "Device MAC",
    ];
    for (i, h) in headers.iter().enumerate() {
        ws.write_string(0, i as u16, *h).unwrap();
    }
    let people = [
        (
            "Evans, Owen",
            "owen",
            "Admin",
            1134960821u64,
            "Yealink T54W",
            "805EC04C0001",
        ),
        (
            "Hussain, Fatima",
            "fatima",
            "Basic",
            1134960822,
            "Yealink T31P",
            "",
        ),
        ("Price, Mary Ann", "mary", "Basic", 1134960823, "", ""),
    ];
    for (r, (name, local, role, ddi, model, mac)) in people.iter().enumerate() {
        let r = r as u32 + 1;
        let email = format!("{local}@pennine-lettings.example");
        let text = [
            "C-77",
            "Pennine Lettings Ltd",
            "PL Standard",
            "24",
            "Owen Evans",
            "owen@pennine-lettings.example",
            "5 Park Row",
            "Leeds",
            "LS1 4AP",
            name,
            &email,
            role,
        ];
        for (i, v) in text.iter().enumerate() {
            ws.write_string(r, i as u16, *v).unwrap();
        }
        ws.write_number(r, 12, f64::from(200 + r)).unwrap();
        ws.write_number(r, 13, *ddi as f64).unwrap();
        ws.write_string(r, 14, *model).unwrap();
        ws.write_string(r, 15, *mac).unwrap();
    }
    wb.save(&path).unwrap();
    let (c, ignore) = guess(d, "billing.xlsx");
    let [first, last] = split("User");
    let mut want = vec![
        ("Company Name", s("Company")),
        ("Plan", s("Tariff")),
        ("Contract Months", s("Contract Length")),
        ("Contact Name", s("Contact")),
        ("Company Email", s("Contact Email")),
        ("Address Line 1", s("Address 1")),
        ("Town", s("Post Town")),
        ("Postcode", s("Postal Code")),
        first,
        last,
        ("User Email", s("Email Address")),
        ("User Type", s("User Role")),
        ("Number", s("Telephone Number")),
        ("Device", s("Device Model")),
        ("MAC Address", s("Device MAC")),
    ];
    // "Cust No" is left for a person, as "Business" above; without it the rows are joined
    // by Company Name, which this export also has.
    if c.get("Customer Ref").is_some() {
        want.push(("Customer Ref", s("Cust No")));
        assert_eq!(ignore, serde_json::json!(["Ext"]));
    } else {
        assert_eq!(ignore, serde_json::json!(["Cust No", "Ext"]));
    }
    assert_eq!(c, columns(&want));
}

/// A workbook of the five sheets a partner fills without the Migration sheet, holding the
/// account the sample makes: built from the expected account, so that the two ways are
/// compared on the same data.
fn five_sheets(path: &Path) -> usize {
    let fields = |line: &str| -> Vec<String> { line.split(" | ").map(str::to_string).collect() };
    let mut wb = rust_xlsxwriter::Workbook::new();
    let mut rows = 0;
    let mut sheet =
        |wb: &mut rust_xlsxwriter::Workbook, name, headers: &[&str], data: Vec<Vec<String>>| {
            rows += data.len();
            write_sheet(wb, name, headers, &data);
        };
    let customers = CUSTOMERS
        .iter()
        .map(|l| {
            let f = fields(l);
            let a: Vec<&str> = f[6].split(", ").collect();
            let (line1, town, postcode) = match a.as_slice() {
                [l1a, l1b, t, p] => (format!("{l1a}, {l1b}"), t.to_string(), p.to_string()),
                [l1, t, p] => (l1.to_string(), t.to_string(), p.to_string()),
                _ => panic!("{l}"),
            };
            vec![
                "add".into(),
                f[0].clone(),
                f[1].clone(),
                f[2].clone(),
                f[3].clone(),
                f[4].clone(),
                f[5].clone(),
                line1,
                town,
                postcode,
            ]
        })
        .collect();
    sheet(
        &mut wb,
        "Customers",
        &[
            "Action",
            "Company Name",
            "Contact Name",
            "Email",
            "Phone",
            "Plan",
            "Contract Months",
            "Address Line 1",
            "Town",
            "Postcode",
        ],
        customers,
    );
    let users = USERS
        .iter()
        .map(|l| {
            let f = fields(l);
            vec![
                "add".into(),
                f[0].clone(),
                f[2].clone(),
                f[3].clone(),
                f[1].clone(),
                f[4].clone(),
            ]
        })
        .collect();
    sheet(
        &mut wb,
        "Users",
        &[
            "Action",
            "Customer",
            "First Name",
            "Last Name",
            "Email",
            "Type",
        ],
        users,
    );
    let numbers = NUMBERS
        .iter()
        .map(|l| {
            let f = fields(l);
            vec!["add".into(), f[0].clone(), f[1].clone(), f[2].clone()]
        })
        .collect();
    sheet(
        &mut wb,
        "Numbers",
        &["Action", "Customer", "Number", "User Email"],
        numbers,
    );
    sheet(
        &mut wb,
        "Devices",
        &["Customer", "User Email", "Product", "MAC Address"],
        DEVICES.iter().map(|l| fields(l)).collect(),
    );
    let mut orders = Vec::new();
    for (n, l) in ORDERS.iter().enumerate() {
        let f = fields(l);
        for item in f[1].split(", ") {
            let (product, qty) = item.split_once(" x").unwrap();
            orders.push(vec![
                f[0].clone(),
                format!("O{}", n + 1),
                product.to_string(),
                qty.to_string(),
            ]);
        }
    }
    sheet(
        &mut wb,
        "Orders",
        &["Customer", "Order Ref", "Product", "Quantity"],
        orders,
    );
    wb.save(path).unwrap();
    rows
}

/// The sandbox's requests so far, counted by the contract's name for each.
fn by_operation(sb: &StandaloneSandbox) -> std::collections::BTreeMap<String, usize> {
    let mut n = std::collections::BTreeMap::new();
    for e in sb.requests() {
        let op = plbulk::contract::Operation::route(&e.method, &e.path).map_or_else(
            || format!("{} {}", e.method, e.path),
            |o| o.name().to_string(),
        );
        *n.entry(op).or_default() += 1;
    }
    n
}

/// The measure: the calls one Migration row costs, against the same account entered
/// as five sheets, each on a fresh account. Both must leave the account the sample describes.
#[test]
fn one_migration_sheet_and_five_sheets_make_the_same_account() {
    let _g = beside_others();
    let dir = sample();
    let d = dir.path();

    let sb = StandaloneSandbox::start(d, RATE, &[]);
    let o = run(&mut migrate(&sb, d, EXPORT, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let migration = calls_made(&o);
    assert_eq!(account(&sb), expected());
    let migration_writes = sb.requests().iter().filter(|e| is_write(e)).count();
    let migration_calls = by_operation(&sb);

    let other = d.join("five");
    std::fs::create_dir(&other).unwrap();
    let path = other.join("five-sheets.xlsx");
    let five_rows = five_sheets(&path);
    let sb = StandaloneSandbox::start(&other, RATE, &[]);
    let o = run(plbulk(&sb, &other).args(["run", "five-sheets.xlsx", "--rate", RATE]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let five = calls_made(&o);
    assert_eq!(account(&sb), expected());
    let five_writes = sb.requests().iter().filter(|e| is_write(e)).count();
    let five_calls = by_operation(&sb);

    eprintln!(
        "migration: {migration} calls ({migration_writes} writes) for {ROWS} rows, {:.2} a row; \
         five sheets: {five} calls ({five_writes} writes) for {five_rows} rows, {:.2} a row, {:.2} a person",
        migration as f64 / ROWS as f64,
        five as f64 / five_rows as f64,
        five as f64 / ROWS as f64,
    );
    eprintln!("by operation (migration, five sheets):");
    for op in migration_calls
        .keys()
        .chain(five_calls.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        eprintln!(
            "  {op}: {}, {}",
            migration_calls.get(op).unwrap_or(&0),
            five_calls.get(op).unwrap_or(&0)
        );
    }
    // The same account takes the same writes either way: the Migration sheet saves typing,
    // not requests.
    assert_eq!(migration_writes, five_writes);
}
