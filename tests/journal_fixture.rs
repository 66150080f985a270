//! A journal written by an earlier plbulk resumes under this one (issue 20): the committed data
//! folder in `tests/fixtures/journal-v1` (made by its `make.sh`, at the commit that added it)
//! holds a rehearsal account and a job killed midway, with two customers' before-images
//! recorded, one user added at the server while the journal never heard the answer, and rows
//! not yet run. Moved to a folder of the test's own, it must resume, adopt the user in doubt
//! rather than add it twice, finish every row, and undo back to the before-images.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/journal-v1");
/// Where `make.sh` made it: the journal names its inputs and results under this folder.
const MADE_IN: &str = "/tmp/plbulk-journal-v1";
const JOB: &str = "20261205-080908-b1f2c4";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// The fixture in `dir`, its job's paths moved with it as a partner moving the folder would
/// find them (the journal records absolute paths).
fn moved_fixture(dir: &Path) -> PathBuf {
    copy_dir(&Path::new(FIXTURE).join("data"), &dir.join("data"));
    copy_dir(&Path::new(FIXTURE).join("in"), &dir.join("in"));
    let journal = dir.join("data/jobs").join(JOB).join("journal.sqlite");
    let conn = rusqlite::Connection::open(&journal).unwrap();
    let here = dir.to_str().unwrap();
    let n = conn
        .execute(
            "UPDATE job SET inputs = replace(inputs, ?1, ?2), options = replace(options, ?1, ?2)",
            [MADE_IN, here],
        )
        .unwrap();
    assert_eq!(n, 1);
    conn.execute(
        "UPDATE sheets SET file = replace(file, ?1, ?2)",
        [MADE_IN, here],
    )
    .unwrap();
    journal
}

fn contact_names(acct: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = acct["customers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| {
            (
                c["companyName"].as_str().unwrap().to_string(),
                c["contactName"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_earlier_versions_killed_job_resumes_exactly_and_undoes_to_its_before_images() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    moved_fixture(dir);
    let before = rehearsal_account(dir);
    assert_eq!(
        before["users"].as_object().unwrap().len(),
        2,
        "the fixture holds the user in doubt"
    );

    // The user in doubt is looked for once the server must be done with it: the job's response
    // timeout after this resume began (a dead process's request left no later than that).
    let out = run(rehearsing(dir).args(["resume", JOB, "--rate", "6000/min"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let status = run(rehearsing(dir).args(["status", JOB, "--json"]));
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["outcomes"]["succeeded"], 9, "{status}");

    let acct = rehearsal_account(dir);
    let users: Vec<&Value> = acct["users"].as_object().unwrap().values().collect();
    let mut emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "al@ash.example",
            "bo@ash.example",
            "cy@birch.example",
            "di@cedar.example"
        ],
        "the user in doubt is adopted, not added twice"
    );
    // Each number sits with the user its row named.
    let user_of = |email: &str| {
        users
            .iter()
            .find(|u| u["email"] == email)
            .map(|u| u["id"].as_str().unwrap().to_string())
    };
    let numbers = acct["numbers"].as_object().unwrap();
    for (number, email) in [
        ("+442920180501", "al@ash.example"),
        ("+442920180502", "cy@birch.example"),
        ("+442920180503", "di@cedar.example"),
    ] {
        let n = numbers
            .values()
            .find(|n| n["item"]["number"] == number || n["number"] == number)
            .unwrap_or_else(|| panic!("{number} is in the account: {acct}"));
        let item = if n.get("item").is_some() {
            &n["item"]
        } else {
            n
        };
        assert_eq!(item["userId"].as_str(), user_of(email).as_deref(), "{n}");
    }
    assert_eq!(
        contact_names(&acct),
        [
            ("Ash Joinery Ltd".into(), "Amy Ashworth".into()),
            ("Birch Dental Ltd".into(), "Ben Birchall".into()),
            ("Cedar Law LLP".into(), "Cat Cedar".into()),
        ]
    );

    // The before-images the earlier version recorded put the customers back.
    let out = run(rehearsing(dir).args(["undo", JOB, "--yes", "--rate", "6000/min"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let acct = rehearsal_account(dir);
    assert_eq!(
        contact_names(&acct),
        [
            ("Ash Joinery Ltd".into(), "Amy Ash".into()),
            ("Birch Dental Ltd".into(), "Ben Birch".into()),
            ("Cedar Law LLP".into(), "Cat Cedar".into()),
        ]
    );
    assert!(acct["users"].as_object().unwrap().is_empty(), "{acct}");
}
