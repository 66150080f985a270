//! Another system's export through a mapping file (issue 21, section 1), with the real binary:
//! the sample exports of samples/migration validate clean with their mappings and migrate on
//! the rehearsal account, names split and values translated; a second run makes nothing; a
//! value the mapping does not translate is refused before any call, naming the export's column,
//! the value and the `[values]` table; columns neither mapped nor ignored are one warning; a
//! changed or missing mapping refuses the resume; the to-fix is the export's own rows; and
//! `map init` guesses the three sample exports' columns. Each test in a data folder of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

fn go(dir: &Path, args: &[&str]) -> Output {
    run(rehearsing(dir).args(args))
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A folder holding copies of the sample exports and their mappings.
fn samples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/migration");
    for e in std::fs::read_dir(&from).unwrap().flatten() {
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

/// The rehearsal account as `--sandbox` keeps it.
fn job_ids(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("data").join("jobs")) else {
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

const FAST: [&str; 3] = ["--sandbox", "--rate", "6000/min"];

fn migrate(d: &Path, export: &str, map: &str, results: &str) -> Output {
    let mut args = vec!["run", export, "--map", map, "--results", results];
    args.extend(FAST);
    go(d, &args)
}

#[test]
fn the_sample_exports_migrate_through_their_mappings_and_a_second_run_makes_nothing() {
    let _g = beside_others();
    let dir = samples();
    let d = dir.path();
    for (export, map) in [
        ("billing-customers.csv", "customers.map.toml"),
        ("users-export.csv", "users.map.toml"),
        ("users-export.csv", "numbers.map.toml"),
    ] {
        let o = go(d, &["validate", export, "--map", map, "--no-report"]);
        assert_eq!(o.status.code(), Some(0), "{map}: {}", text(&o));
        assert!(
            out(&o).contains("0 errors, 0 warnings"),
            "{map}: {}",
            text(&o)
        );
    }

    // The dry run reads through the mapping too: five customers to add.
    let mut args = vec![
        "run",
        "billing-customers.csv",
        "--map",
        "customers.map.toml",
        "--dry-run",
    ];
    args.extend(FAST);
    let o = go(d, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        out(&o)
            .lines()
            .any(|l| l.trim_start().starts_with("5  Add Customer ")),
        "{}",
        text(&o)
    );

    let steps = [
        (
            "billing-customers.csv",
            "customers.map.toml",
            "customers.results.xlsx",
        ),
        ("users-export.csv", "users.map.toml", "users.results.xlsx"),
        (
            "users-export.csv",
            "numbers.map.toml",
            "numbers.results.xlsx",
        ),
    ];
    for (export, map, results) in steps {
        let o = migrate(d, export, map, results);
        assert_eq!(o.status.code(), Some(0), "{map}: {}", text(&o));
    }
    let a = rehearsal_account(d);
    let mut companies: Vec<(String, String)> = a["customers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| {
            (
                c["companyName"].as_str().unwrap().to_string(),
                c["plan"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    companies.sort();
    assert_eq!(
        companies
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        [
            "Granite Printers Ltd",
            "Harbour Dental Ltd",
            "Kestrel Joinery Ltd",
            "Larch & Co Accountants",
            "Summit Physio Ltd"
        ]
    );
    let customer_of = |id: &str| {
        a["customers"][id]["companyName"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut users: Vec<(String, String, String, String, String)> = a["users"]
        .as_object()
        .unwrap()
        .values()
        .map(|u| {
            (
                u["email"].as_str().unwrap().to_string(),
                u["firstName"].as_str().unwrap().to_string(),
                u["lastName"].as_str().unwrap().to_string(),
                u["type"].as_str().unwrap().to_string(),
                customer_of(u["customerId"].as_str().unwrap()),
            )
        })
        .collect();
    users.sort();
    let want = [
        (
            "callum@summit-physio.example",
            "Callum",
            "Reid",
            "standard",
            "Summit Physio Ltd",
        ),
        (
            "dev@larch-and-co-accountants.example",
            "Dev",
            "Patel",
            "standard",
            "Larch & Co Accountants",
        ),
        (
            "fatima@kestrel-joinery.example",
            "Fatima",
            "Hussain",
            "standard",
            "Kestrel Joinery Ltd",
        ),
        (
            "jordan@harbour-dental.example",
            "Jordan",
            "Lee",
            "standard",
            "Harbour Dental Ltd",
        ),
        (
            "mei@larch-and-co-accountants.example",
            "Mei",
            "Chen",
            "admin",
            "Larch & Co Accountants",
        ),
        (
            "niamh@larch-and-co-accountants.example",
            "Niamh",
            "Byrne",
            "standard",
            "Larch & Co Accountants",
        ),
        (
            "owen@kestrel-joinery.example",
            "Owen",
            "Evans",
            "admin",
            "Kestrel Joinery Ltd",
        ),
        (
            "priya@harbour-dental.example",
            "Priya",
            "Shah",
            "admin",
            "Harbour Dental Ltd",
        ),
        (
            "tom@harbour-dental.example",
            "Tom",
            "Baker",
            "standard",
            "Harbour Dental Ltd",
        ),
        (
            "zara@summit-physio.example",
            "Zara",
            "Ali",
            "admin",
            "Summit Physio Ltd",
        ),
    ];
    let got: Vec<(&str, &str, &str, &str, &str)> = users
        .iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect();
    assert_eq!(got, want);
    // Each DDI, whatever its spelling, is in its account and allocated to its person.
    let email_of = |id: &str| a["users"][id]["email"].as_str().unwrap().to_string();
    let mut numbers: Vec<(String, String)> = a["numbers"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| {
            let n = if n["item"].is_object() { &n["item"] } else { n };
            (
                n["number"].as_str().unwrap().to_string(),
                n["userId"].as_str().map(email_of).unwrap_or_default(),
            )
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers.len(), 10, "{numbers:?}");
    assert!(
        numbers.contains(&(
            "+441614960102".into(),
            "jordan@harbour-dental.example".into()
        )),
        "{numbers:?}"
    );
    assert!(
        numbers.contains(&(
            "+441134960104".into(),
            "fatima@kestrel-joinery.example".into()
        )),
        "{numbers:?}"
    );
    assert!(
        numbers.contains(&(
            "+442079460105".into(),
            "mei@larch-and-co-accountants.example".into()
        )),
        "{numbers:?}"
    );
    assert!(numbers.iter().all(|(_, u)| !u.is_empty()), "{numbers:?}");

    // Checked online against the account the migration made: every customer is found.
    let o = go(
        d,
        &[
            "validate",
            "users-export.csv",
            "--map",
            "users.map.toml",
            "--online",
            "--sandbox",
            "--no-report",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!out(&o).contains("is not in this job"), "{}", text(&o));

    // The results are the export's own rows and columns.
    let rows = sheet_rows(&d.join("users.results.xlsx"), "Users");
    let header: Vec<&str> = rows[0].iter().map(String::as_str).collect();
    assert_eq!(
        &header[..7],
        [
            "Account Name",
            "Name",
            "Email Address",
            "Extension",
            "DDI",
            "Role",
            "Outcome"
        ]
    );
    assert_eq!(rows[3][1], "Lee, Jordan");

    // Again: everything is there already, and nothing new is made.
    let before = (
        count_of(&a, "customers"),
        count_of(&a, "users"),
        count_of(&a, "numbers"),
    );
    for (export, map, results) in steps {
        let o = migrate(d, export, map, &format!("again.{results}"));
        assert_eq!(o.status.code(), Some(0), "{map}: {}", text(&o));
        assert!(
            !out(&o).contains("succeeded"),
            "{map}: nothing made: {}",
            text(&o)
        );
    }
    let a = rehearsal_account(d);
    assert_eq!(
        (
            count_of(&a, "customers"),
            count_of(&a, "users"),
            count_of(&a, "numbers")
        ),
        before
    );
}

#[test]
fn a_value_the_mapping_does_not_translate_is_refused_before_any_call() {
    let _g = beside_others();
    let dir = samples();
    let d = dir.path();
    let text_of = std::fs::read_to_string(d.join("billing-customers.csv")).unwrap();
    std::fs::write(
        d.join("gold.csv"),
        text_of.replace("PL Handset Only", "PL Gold"),
    )
    .unwrap();
    let mut args = vec!["run", "gold.csv", "--map", "customers.map.toml"];
    args.extend(FAST);
    let o = go(d, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("gold.csv, row 5, column F (Package): \"PL Gold\" is not a plan")
            && said.contains(
                "\"PL Gold\" has no entry in [values.\"Plan\"] of customers.map.toml: add one there"
            ),
        "{said}"
    );
    assert!(
        said.contains("plbulk validate gold.csv --map customers.map.toml"),
        "{said}"
    );
    assert!(job_ids(d).is_empty(), "no job was made");
    assert!(
        !d.join("data/rehearsal/account.json").exists(),
        "nothing was sent"
    );

    // With --skip-invalid, the to-fix is the export's row in the export's columns, and runs
    // back with the mapping once the mapping translates the value.
    let mut args = vec![
        "run",
        "gold.csv",
        "--map",
        "customers.map.toml",
        "--skip-invalid",
    ];
    args.extend(FAST);
    let o = go(d, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        out(&o).contains("run that file with --map ") && out(&o).contains("customers.map.toml)"),
        "{}",
        text(&o)
    );
    let fix = sheet_rows(&d.join("gold.to-fix.xlsx"), "Customers");
    assert_eq!(
        fix[0][..3],
        ["Account No", "Account Name", "Primary Contact"]
    );
    assert_eq!(fix[1][1], "Granite Printers Ltd");
    assert_eq!(fix[1][5], "PL Gold");
    let map = std::fs::read_to_string(d.join("customers.map.toml")).unwrap();
    std::fs::write(
        d.join("gold.map.toml"),
        map.replace(
            "\"PL Handset Only\" = \"hardware\"",
            "\"PL Handset Only\" = \"hardware\"\n\"PL Gold\" = \"hardware\"",
        ),
    )
    .unwrap();
    let mut args = vec!["run", "gold.to-fix.xlsx", "--map", "gold.map.toml"];
    args.extend(FAST);
    let o = go(d, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(count_of(&rehearsal_account(d), "customers"), 5);
}

#[test]
fn columns_neither_mapped_nor_ignored_are_one_warning_and_a_bad_mapping_names_its_line() {
    let _g = beside_others();
    let dir = samples();
    let d = dir.path();
    std::fs::write(
        d.join("extra.csv"),
        "Account Name,Name,Email Address,Extension,DDI,Role,Colour,Shoe Size\n\
         Harbour Dental Ltd,Tom Baker,tom@harbour-dental.example,202,01614960101,User,red,9\n",
    )
    .unwrap();
    let o = go(
        d,
        &[
            "validate",
            "extra.csv",
            "--map",
            "users.map.toml",
            "--no-report",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let said = out(&o);
    assert!(said.contains("0 errors, 1 warning"), "{said}");
    assert!(
        said.contains(
            "columns \"Colour\", \"Shoe Size\" are neither mapped nor ignored by users.map.toml"
        ),
        "{said}"
    );

    // A required plbulk column left unmapped names the mapping.
    std::fs::write(
        d.join("short.toml"),
        "kind = \"users\"\nignore = [\"Email Address\"]\n[columns]\n\"Customer\" = \"Account Name\"\n",
    )
    .unwrap();
    let o = go(
        d,
        &[
            "validate",
            "extra.csv",
            "--map",
            "short.toml",
            "--no-report",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("short.toml: the Users sheet needs Email"),
        "{}",
        text(&o)
    );

    // A column the rows need and the mapping gives none is the mapping's to give.
    std::fs::write(
        d.join("names.toml"),
        "kind = \"users\"\nignore = [\"Name\", \"Extension\", \"DDI\", \"Colour\", \"Shoe Size\"]\n[columns]\n\"Customer\" = \"Account Name\"\n",
    )
    .unwrap();
    let o = go(
        d,
        &[
            "validate",
            "extra.csv",
            "--map",
            "names.toml",
            "--no-report",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        out(&o).contains("add a First Name column (this is said once for the sheet); with names.toml, map a column of the export to it under [columns]"),
        "{}",
        text(&o)
    );

    // A malformed one names its line and what to write.
    std::fs::write(
        d.join("bad.toml"),
        "kind = \"users\"\n[columns]\n\"First Name\" = { from = \"Name\", part = \"middle\" }\n",
    )
    .unwrap();
    let o = go(d, &["validate", "extra.csv", "--map", "bad.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("bad.toml, line 3: part must be \"first\" or \"last\""),
        "{}",
        text(&o)
    );

    // The report copies the export as it is, with no column of plbulk's own.
    let o = go(d, &["validate", "extra.csv", "--map", "users.map.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = sheet_rows(&d.join("extra.validation.xlsx"), "Users");
    assert_eq!(report[0].len(), 8, "{:?}", report[0]);
    assert_eq!(report[1][1], "Tom Baker");
}

#[test]
fn a_changed_or_missing_mapping_refuses_the_resume() {
    let _g = beside_others();
    let dir = samples();
    let d = dir.path();
    let mut args = vec![
        "run",
        "billing-customers.csv",
        "--map",
        "customers.map.toml",
        "-q",
        "--concurrency",
        "1",
    ];
    args.extend(FAST);
    // Killed once the third customer is made and its answer journaled, before its row's end:
    // the resume must find it made, not make it again.
    let o = run(rehearsing(d)
        .args(&args)
        .env(plbulk::failpoint::ENV, "answered:Add Customer@3"));
    assert!(
        !o.status.success(),
        "the failpoint stops the run: {}",
        text(&o)
    );
    let ids = job_ids(d);
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids[0].as_str();
    assert_eq!(count_of(&rehearsal_account(d), "customers"), 3);

    // Unchanged where it was, the mapping lets a resume go on (killed again after one more).
    let o = run(rehearsing(d)
        .args(["resume", id, "-q"])
        .env(plbulk::failpoint::ENV, "answered:Add Customer@1"));
    assert!(!o.status.success(), "the failpoint stops it: {}", text(&o));
    let made = count_of(&rehearsal_account(d), "customers");
    assert_eq!(made, 4);

    let map = d.join("customers.map.toml");
    let original = std::fs::read_to_string(&map).unwrap();
    std::fs::write(
        &map,
        original.replace("\"Rolling\" = \"1\"", "\"Rolling\" = \"12\""),
    )
    .unwrap();
    let o = go(d, &["resume", id]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("customers.map.toml has changed since job"),
        "{}",
        text(&o)
    );

    std::fs::remove_file(&map).unwrap();
    let o = go(d, &["resume", id]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("customers.map.toml cannot be read"),
        "{}",
        text(&o)
    );

    // Another mapping given by name is not the job's.
    std::fs::create_dir(d.join("moved")).unwrap();
    let moved = d.join("moved").join("customers.map.toml");
    std::fs::write(&moved, &original).unwrap();
    let o = go(d, &["resume", id, "--map", "users.map.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("users.map.toml is not the mapping job"),
        "{}",
        text(&o)
    );
    assert_eq!(
        count_of(&rehearsal_account(d), "customers"),
        made,
        "nothing was sent"
    );

    // The mapping as it was, moved: named with --map, the job goes on and ends exact, the
    // customer made before the kill found and not made again.
    let o = go(d, &["resume", id, "--map", "moved/customers.map.toml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(count_of(&rehearsal_account(d), "customers"), 5);
}

#[test]
fn a_job_without_a_mapping_refuses_one_on_its_resume() {
    let _g = beside_others();
    let dir = samples();
    let d = dir.path();
    std::fs::write(
        d.join("customers.csv"),
        "Company Name,Email,Plan,Contract Months\nAcme Ltd,a@acme.example,pro,12\nBolt Ltd,b@bolt.example,pro,12\n",
    )
    .unwrap();
    let mut args = vec!["run", "customers.csv", "-q", "--concurrency", "1"];
    args.extend(FAST);
    let o = run(rehearsing(d)
        .args(&args)
        .env(plbulk::failpoint::ENV, "intent:Add Customer@2"));
    assert!(!o.status.success(), "{}", text(&o));
    let ids = job_ids(d);
    let o = go(d, &["resume", &ids[0], "--map", "customers.map.toml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("ran without a mapping file, and --map customers.map.toml was given"),
        "{}",
        text(&o)
    );
    let o = go(d, &["resume", &ids[0]]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(count_of(&rehearsal_account(d), "customers"), 2);
}

/// The `[columns]` and `[values]` of a mapping `map init` wrote.
fn init(d: &Path, export: &str) -> (Value, String) {
    let out_path: PathBuf = d.join(format!("{export}.init.toml"));
    let o = go(
        d,
        &["map", "init", export, "--out", out_path.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let written = std::fs::read_to_string(&out_path).unwrap();
    let v: toml::Value = toml::from_str(&written).unwrap();
    (serde_json::to_value(v).unwrap(), out(&o))
}

#[test]
fn map_init_guesses_three_differently_shaped_exports() {
    let _g = beside_others();
    let dir = samples();
    let d = dir.path();

    let (m, said) = init(d, "billing-customers.csv");
    assert_eq!(m["kind"], "customers");
    let c = &m["columns"];
    for (plbulk, source) in [
        ("Ref", "Account No"),
        ("Company Name", "Account Name"),
        ("Contact Name", "Primary Contact"),
        ("Email", "Billing Email"),
        ("Phone", "Main Number"),
        ("Plan", "Package"),
        ("Contract Months", "Term (months)"),
        ("Address Line 1", "Street"),
        ("Town", "Town/City"),
        ("Postcode", "Postcode"),
    ] {
        assert_eq!(c[plbulk], source, "{plbulk}: {m}");
    }
    assert_eq!(
        m["ignore"],
        serde_json::json!(["Account Manager", "Balance"])
    );
    assert_eq!(m["values"]["Plan"]["PL Standard"], "pro");
    assert_eq!(m["values"]["Plan"]["PL Handset Only"], "hardware");
    assert_eq!(m["values"]["Contract Months"]["24 months"], "24");
    assert_eq!(m["values"]["Contract Months"]["Rolling"], "1");
    assert!(
        said.contains("column \"Balance\": no plbulk column looked like it"),
        "{said}"
    );

    let (m, said) = init(d, "users-export.csv");
    assert_eq!(m["kind"], "users");
    let c = &m["columns"];
    assert_eq!(c["Customer"], "Account Name");
    assert_eq!(
        c["First Name"],
        serde_json::json!({"from": "Name", "part": "first"})
    );
    assert_eq!(
        c["Last Name"],
        serde_json::json!({"from": "Name", "part": "last"})
    );
    assert_eq!(c["Email"], "Email Address");
    assert_eq!(c["Type"], "Role");
    assert_eq!(m["ignore"], serde_json::json!(["Extension", "DDI"]));
    assert_eq!(m["values"]["Type"]["Administrator"], "admin");
    assert_eq!(m["values"]["Type"]["Standard User"], "standard");
    assert!(said.contains("column \"DDI\""), "{said}");

    let (m, said) = init(d, "handsets-export.csv");
    assert_eq!(m["kind"], "devices");
    let c = &m["columns"];
    assert_eq!(c["Customer"], "Site");
    assert_eq!(c["User Email"], "Assigned To");
    assert_eq!(c["Product"], "Phone Model");
    assert_eq!(c["MAC Address"], "MAC Addr");
    assert_eq!(m["ignore"], serde_json::json!(["Ext"]));
    // Products are not known offline: each is left for a person, and used as it is meanwhile.
    assert_eq!(m["values"]["Product"]["Yealink T54W"], "");
    assert!(
        said.contains("[values.\"Product\"]: \"Yealink T54W\""),
        "{said}"
    );

    // The guessed mappings read their exports clean.
    for export in [
        "billing-customers.csv",
        "users-export.csv",
        "handsets-export.csv",
    ] {
        let o = go(
            d,
            &[
                "validate",
                export,
                "--map",
                &format!("{export}.init.toml"),
                "--no-report",
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{export}: {}", text(&o));
        assert!(
            out(&o).contains("0 errors, 0 warnings"),
            "{export}: {}",
            text(&o)
        );
    }

    // A mapping there already is not replaced without --overwrite.
    let o = go(
        d,
        &["map", "init", "users-export.csv", "--out", "users.map.toml"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("users.map.toml is there already"),
        "{}",
        text(&o)
    );
    let o = go(
        d,
        &[
            "map",
            "init",
            "users-export.csv",
            "--kind",
            "numbers",
            "--out",
            "users.map.toml",
            "--overwrite",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: toml::Value =
        toml::from_str(&std::fs::read_to_string(d.join("users.map.toml")).unwrap()).unwrap();
    assert_eq!(v["kind"].as_str(), Some("numbers"));
    assert_eq!(v["columns"]["Number"].as_str(), Some("DDI"));
}
