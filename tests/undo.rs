//! `plbulk undo` against the sandbox over HTTP, through the real binary: a mixed job and a job
//! of changes to an account that existed before them, each undone (one undo killed mid-way and
//! resumed), leave the account as it was but for what the API cannot reverse; an entity changed
//! between a job and its undo is reported, not reverted.

mod common;

use std::path::Path;

use common::*;
use plbulk::journal::Journal;
use plbulk::model::RowState;
use serde_json::Value;

const RATE: &str = "3000/1m";
const OLD_COMPANIES: usize = 12;

fn job_ids(data: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(data.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// The job whose input is the file `name`.
fn job_of(data: &Path, name: &str) -> String {
    job_ids(data)
        .into_iter()
        .find(|id| {
            let j = Journal::open(&data.join("jobs").join(id).join("journal.sqlite")).unwrap();
            j.meta()
                .unwrap()
                .inputs
                .iter()
                .any(|f| f.path.ends_with(name))
        })
        .unwrap_or_else(|| panic!("no job of {name}"))
}

fn find<'a>(state: &'a Value, list: &str, key: &str, value: &str) -> &'a Value {
    state[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[key] == value)
        .unwrap_or_else(|| panic!("no {list} with {key} {value}"))
}

/// What the API cannot reverse of [`changes_job`]: deletions stay deleted, and a number added
/// to a customer that stays stays in its pool (deallocated).
fn as_before_but_irreversible(before: &Canonical) -> Canonical {
    let deleted: Vec<String> = (0..OLD_COMPANIES)
        .filter(|k| k % 6 == 2)
        .map(|k| format!("Old {k:02} Ltd"))
        .collect();
    let gone = |company: &String| deleted.contains(company);
    let mut c = Canonical {
        customers: before
            .customers
            .iter()
            .filter(|(co, _)| !gone(co))
            .cloned()
            .collect(),
        users: before
            .users
            .iter()
            .filter(|u| !gone(&u.0))
            .filter(|u| {
                let k: usize = u.0[4..6].parse().unwrap();
                !(k % 6 == 1 && u.1.starts_with("b@"))
            })
            .cloned()
            .collect(),
        numbers: before
            .numbers
            .iter()
            .filter(|n| !gone(&n.0))
            .cloned()
            .collect(),
        blocked: before
            .blocked
            .iter()
            .filter(|b| !gone(&b.0))
            .filter(|b| b.0[4..6].parse::<usize>().unwrap() % 6 != 1)
            .cloned()
            .collect(),
        partner_users: before
            .partner_users
            .iter()
            .filter(|p| p.as_str() != "old1@partner.example")
            .cloned()
            .collect(),
        ..Default::default()
    };
    for k in (0..OLD_COMPANIES).filter(|k| k % 6 == 4) {
        c.numbers.insert((
            format!("Old {k:02} Ltd"),
            format!("+44151496{:04}", k + 700),
            None,
        ));
    }
    c
}

fn comparable(c: &Canonical) -> Canonical {
    Canonical {
        customers: c.customers.clone(),
        users: c.users.clone(),
        numbers: c.numbers.clone(),
        blocked: c.blocked.clone(),
        partner_users: c.partner_users.clone(),
        ..Default::default()
    }
}

/// Issue 13: a mixed job and a job of changes, each undone, newest first; the second undo is
/// killed after a write the server answered and is resumed by running undo again.
#[test]
fn jobs_undone_leave_the_account_as_it_was_but_for_what_cannot_be_reversed() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let old = old_account(dir.path(), OLD_COMPANIES);
    let sandbox =
        StandaloneSandbox::start(dir.path(), RATE, &["--state", old.to_str().unwrap()][..]);
    let data = dir.path().join("data");
    let before_state = sandbox.state();
    let (before, _) = canonical(&before_state);

    let changes = changes_job(dir.path(), "changes.xlsx", OLD_COMPANIES);
    let mixed = mixed_job(dir.path(), "mixed.xlsx", 3, 0);
    for file in [&changes.path, &mixed.path] {
        let out = run(sandbox
            .plbulk(&data)
            .arg("run")
            .arg(file)
            .args(["--rate", RATE, "-q"]));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let ids = job_ids(&data);
    let (changes_id, mixed_id) = (job_of(&data, "changes.xlsx"), job_of(&data, "mixed.xlsx"));
    let after_jobs = sandbox.state();
    let (after, _) = canonical(&after_jobs);
    assert_ne!(comparable(&after), comparable(&before));

    // An unfinished undo would be refused; a dry run sends nothing and says what it would do.
    let calls_before = sandbox.requests().len();
    let out = run(sandbox.plbulk(&data).args(["undo", &mixed_id, "--dry-run"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Delete Customer"), "{said}");
    assert!(said.contains("ask PL+ to cancel order"), "{said}");
    assert_eq!(
        sandbox.requests().len(),
        calls_before,
        "a dry run sent calls"
    );

    let out = run(sandbox
        .plbulk(&data)
        .args(["undo", &mixed_id, "--rate", RATE, "-q"]));
    // Orders cannot be reversed: those rows need review. Devices go with the customers the
    // job made (deleting a customer removes its users' devices).
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let undo_of_mixed = job_ids(&data)
        .into_iter()
        .find(|j| !ids.contains(j))
        .unwrap();
    let j = Journal::open(
        &data
            .join("jobs")
            .join(&undo_of_mixed)
            .join("journal.sqlite"),
    )
    .unwrap();
    for r in j.result_rows().unwrap() {
        let detail = r.detail.clone().unwrap_or_default();
        match r.state {
            RowState::Succeeded => {}
            RowState::NeedsReview => assert!(
                detail.contains("cancel order"),
                "row {}: {detail}",
                r.row_no
            ),
            other => panic!("row {} {other:?}: {detail}", r.row_no),
        }
    }
    let (now, _) = canonical(&sandbox.state());
    assert_eq!(
        comparable(&now),
        comparable(&after_without(&after, &mixed.expected)),
        "the mixed job's customers, users, numbers, blocked numbers and partner users are gone"
    );

    // Killed after the server answered its fourth write, then run again: it resumes.
    let out = run(sandbox
        .plbulk(&data)
        .env("PLBULK_FAILPOINT", "answer@4")
        .args(["undo", &changes_id, "--rate", RATE, "-q"]));
    assert_ne!(
        out.status.code(),
        Some(0),
        "the failpoint did not fire: {}",
        text(&out)
    );
    let out = run(sandbox
        .plbulk(&data)
        .args(["undo", &changes_id, "--rate", RATE]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("has an unfinished undo"),
        "{}",
        text(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let end = sandbox.state();
    let (now, _) = canonical(&end);
    assert_eq!(
        comparable(&now),
        as_before_but_irreversible(&before),
        "the account is as before the jobs, but for deletions and a number kept in its pool"
    );
    // Fields the canonical form leaves out: a contract regraded and a partner user renamed
    // are back too.
    for k in (0..OLD_COMPANIES).filter(|k| k % 6 == 3) {
        let cu = find(&end, "customers", "companyName", &format!("Old {k:02} Ltd"));
        assert_eq!(cu["contractMonths"], 12, "{cu}");
    }
    let p = find(&end, "partnerUsers", "email", "old0@partner.example");
    assert_eq!(p["firstName"], "Old", "{p}");

    // An undo is not undone, and a job is undone once.
    for job in [&undo_of_mixed, &changes_id] {
        let out = run(sandbox.plbulk(&data).args(["undo", job]));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
}

/// The state after both jobs, less what the mixed job made.
fn after_without(after: &Canonical, made: &Canonical) -> Canonical {
    let made_companies: Vec<&String> = made.customers.iter().map(|(co, _)| co).collect();
    let kept = |co: &String| !made_companies.contains(&co);
    Canonical {
        customers: after
            .customers
            .iter()
            .filter(|c| kept(&c.0))
            .cloned()
            .collect(),
        users: after.users.iter().filter(|u| kept(&u.0)).cloned().collect(),
        numbers: after
            .numbers
            .iter()
            .filter(|n| kept(&n.0))
            .cloned()
            .collect(),
        blocked: after
            .blocked
            .iter()
            .filter(|b| kept(&b.0))
            .cloned()
            .collect(),
        partner_users: after
            .partner_users
            .difference(&made.partner_users)
            .cloned()
            .collect(),
        ..Default::default()
    }
}

/// Issue 13: what someone changed between a job and its undo is not put back, and the row
/// says so; the rest of the job is undone.
#[test]
fn an_entity_changed_since_the_job_is_reported_not_reverted() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let old = old_account(dir.path(), 6);
    let sandbox =
        StandaloneSandbox::start(dir.path(), RATE, &["--state", old.to_str().unwrap()][..]);
    let data = dir.path().join("data");
    let changes = changes_job(dir.path(), "changes.xlsx", 6);
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&changes.path)
        .args(["--rate", RATE, "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let job = job_ids(&data).pop().unwrap();

    // Someone renames user a@old0 (whose last name the job changed) in the portal.
    let state = sandbox.state();
    let cu = find(&state, "customers", "companyName", "Old 00 Ltd");
    let user = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "a@old0.example")
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let api = plbulk::client::Client::new(plbulk::client::ClientConfig::new(
            sandbox.url.clone(),
            plbulk::client::Credentials::new(&sandbox.key, &sandbox.secret),
        ))
        .unwrap();
        api.update_user(
            cu["id"].as_str().unwrap(),
            user["id"].as_str().unwrap(),
            &plbulk::contract::UserChanges {
                last_name: Some("Portal".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    });

    let out = run(sandbox
        .plbulk(&data)
        .args(["undo", &job, "--rate", RATE, "-q"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let end = sandbox.state();
    let user = end["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "a@old0.example")
        .unwrap();
    assert_eq!(user["lastName"], "Portal", "reverted over someone's change");
    let undo = job_ids(&data).into_iter().find(|j| *j != job).unwrap();
    let j = Journal::open(&data.join("jobs").join(undo).join("journal.sqlite")).unwrap();
    let rows = j.result_rows().unwrap();
    let said: Vec<&str> = rows
        .iter()
        .filter(|r| r.state == RowState::NeedsReview)
        .filter_map(|r| r.detail.as_deref())
        .filter(|d| d.contains("changed since the job"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("lastName is now \"Portal\", the job wrote \"Changed\""),
        "{}",
        said[0]
    );
    // The customer's email, changed by the same job and by no one since, is back.
    let cu = find(&end, "customers", "companyName", "Old 00 Ltd");
    assert_eq!(cu["email"], "it@old0.example");
}

/// Issue 13: update rows show the account's value now and the new one, field by field, before
/// the run (`run --dry-run`, `validate --online` with a Changes sheet), and a row that changes
/// nothing is not sent.
#[test]
fn each_change_is_shown_before_it_is_made_and_no_change_is_not_sent() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let old = old_account(dir.path(), 2);
    let sandbox =
        StandaloneSandbox::start(dir.path(), RATE, &["--state", old.to_str().unwrap()][..]);
    let data = dir.path().join("data");
    let s = |v: &str| v.to_string();
    let mut wb = rust_xlsxwriter::Workbook::new();
    write_sheet(
        &mut wb,
        "Customers",
        &["Action", "Company Name", "Contact Name", "Email"],
        &[
            vec![
                s("update"),
                s("Old 00 Ltd"),
                s("New Contact"),
                s("it@old0.example"),
            ],
            vec![
                s("update"),
                s("Old 01 Ltd"),
                s("Old Contact"),
                s("it@old1.example"),
            ],
        ],
    );
    write_sheet(
        &mut wb,
        "Users",
        &["Action", "Customer", "Last Name", "Email", "User Type"],
        &[
            vec![
                s("update"),
                s("Old 00 Ltd"),
                s("Old"),
                s("a@old0.example"),
                s(""),
            ],
            vec![
                s("update"),
                s("Old 01 Ltd"),
                s("Newname"),
                s("a@old1.example"),
                s("admin"),
            ],
        ],
    );
    let file = dir.path().join("updates.xlsx");
    wb.save(&file).unwrap();
    let writes = |log: &[plbulk::sandbox::LogEntry]| {
        log.iter()
            .filter(|e| e.method != "GET" && !e.path.ends_with("/auth"))
            .count()
    };

    let out = run(sandbox.plbulk(&data).arg("run").arg(&file).arg("--dry-run"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in [
        "Contact Name: \"Old Contact\" → \"New Contact\"",
        "Last Name: \"Old\" → \"Newname\"",
        "User Type: \"standard\" → \"admin\"",
        "2 update rows change nothing",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    assert!(
        !said.contains("Email:"),
        "an unchanged field is listed:\n{said}"
    );
    assert_eq!(writes(&sandbox.requests()), 0, "a dry run wrote");

    let report = dir.path().join("report.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .args(["validate", "--online", "--report"])
        .arg(&report)
        .arg(&file));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = sheet_rows(&report, "Changes");
    assert_eq!(rows[0], ["Sheet", "Row", "Entity", "Field", "Now", "After"]);
    let fields: Vec<(String, String, String, String)> = rows[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone(), r[5].clone()))
        .collect();
    assert_eq!(
        fields,
        [
            (s("Customers"), s("2"), s("Contact Name"), s("New Contact")),
            (s("Users"), s("3"), s("Last Name"), s("Newname")),
            (s("Users"), s("3"), s("User Type"), s("admin")),
        ]
    );

    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&file)
        .args(["--rate", RATE, "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        writes(&sandbox.requests()),
        2,
        "only the two rows that change anything are sent"
    );
    let j = Journal::open(&journal_path(&data.join("jobs"))).unwrap();
    let states: Vec<(u32, RowState)> = j
        .result_rows()
        .unwrap()
        .iter()
        .map(|r| (r.row_no, r.state))
        .collect();
    assert_eq!(
        states
            .iter()
            .filter(|(_, s)| *s == RowState::Unchanged)
            .count(),
        2
    );
    assert_eq!(
        states
            .iter()
            .filter(|(_, s)| *s == RowState::Succeeded)
            .count(),
        2
    );
}

/// Issue 13: an unfinished job is not undone until it is finished or abandoned, and the
/// refusal says how; an abandoned job does not run again, and is undone as far as it went.
#[test]
fn an_unfinished_job_is_undone_only_once_abandoned() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), RATE, &[]);
    let data = dir.path().join("data");
    let mixed = mixed_job(dir.path(), "mixed.xlsx", 2, 40);
    let out = run(sandbox
        .plbulk(&data)
        .env("PLBULK_FAILPOINT", "answered:Add Customer User@2")
        .arg("run")
        .arg(&mixed.path)
        .args(["--rate", RATE, "-q"]));
    assert_ne!(
        out.status.code(),
        Some(0),
        "the failpoint did not fire: {}",
        text(&out)
    );
    let job = job_ids(&data).pop().unwrap();

    let out = run(sandbox.plbulk(&data).args(["undo", &job]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!("plbulk resume {job}"))
            && said.contains(&format!("plbulk abandon {job}")),
        "{said}"
    );

    let out = run(sandbox.plbulk(&data).args(["abandon", &job]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(sandbox.plbulk(&data).args(["resume", &job]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an abandoned job ran again: {}",
        text(&out)
    );

    let out = run(sandbox
        .plbulk(&data)
        .args(["undo", &job, "--rate", RATE, "-q"]));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let (now, _) = canonical(&sandbox.state());
    assert!(now.customers.is_empty(), "{:?}", now.customers);
    assert!(now.users.is_empty(), "{:?}", now.users);
    assert!(now.partner_users.is_empty(), "{:?}", now.partner_users);
}

/// Issue 13 under the faults the real API can produce (5xx after the write was applied, lost
/// connections, failures, writes landing after the client gave up): the undo ends as a clean
/// one does, with nothing put back twice over someone's change and nothing left behind.
#[test]
fn an_undo_under_faults_ends_as_a_clean_one() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let old = old_account(dir.path(), OLD_COMPANIES);
    let flags = [
        "--state",
        old.to_str().unwrap(),
        "--fail-rate",
        "0.05",
        "--gateway-error-rate",
        "0.2",
        "--late-commit-rate",
        "0.03",
        "--late-commit-ms",
        "1500",
        "--lost-rate",
        "0.02",
        "--seed",
        "5",
    ];
    let sandbox = StandaloneSandbox::start(dir.path(), RATE, &flags);
    let data = dir.path().join("data");
    let (before, _) = canonical(&sandbox.state());
    let changes = changes_job(dir.path(), "changes.xlsx", OLD_COMPANIES);
    let out = run(sandbox.plbulk(&data).arg("run").arg(&changes.path).args([
        "--rate",
        RATE,
        "--timeout",
        "1s",
        "-q",
    ]));
    // Emails in doubt need review; every other row ends well.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let job = job_ids(&data).pop().unwrap();
    let out = run(sandbox
        .plbulk(&data)
        .args(["undo", &job, "--rate", RATE, "-q"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let undo = job_ids(&data).into_iter().find(|j| *j != job).unwrap();
    let j = Journal::open(&data.join("jobs").join(&undo).join("journal.sqlite")).unwrap();
    for r in j.result_rows().unwrap() {
        assert!(
            matches!(
                r.state,
                RowState::Succeeded | RowState::NeedsReview | RowState::Skipped
            ),
            "row {} {:?}: {:?}",
            r.row_no,
            r.state,
            r.detail
        );
        let d = r.detail.unwrap_or_default();
        assert!(!d.contains("changed since"), "row {}: {d}", r.row_no);
    }
    let faults = sandbox
        .requests()
        .iter()
        .filter(|e| e.fault.is_some())
        .count();
    assert!(faults > 10, "only {faults} faults met");
    let (now, _) = canonical(&sandbox.state());
    assert_eq!(comparable(&now), as_before_but_irreversible(&before));
}
