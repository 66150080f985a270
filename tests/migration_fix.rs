//! The to-fix of a Migration job, with the real binary on the rehearsal account: a row with a
//! step not done is in it, the cells of its steps done left blank; run back once fixed, it does
//! only what was not done. Above all a phone already ordered is not ordered again: as the one
//! line of a smaller order it would not be found as placed, and would ship twice.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use serde_json::Value;

const HEAD: &str = "Customer Ref,Company Name,Company Email,Plan,Contract Months,Address Line 1,Town,Postcode,First Name,Last Name,User Email,Number,Device,MAC Address\n";
const FAST: [&str; 4] = ["--sandbox", "--rate", "6000/min", "--no-preflight"];

fn go(dir: &Path, args: &[&str]) -> Output {
    run(rehearsing(dir).args(args))
}

#[test]
fn a_to_fix_row_runs_back_only_its_steps_not_done() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // Another customer holds 0161 496 0801 already.
    let taken = dir.join("taken.csv");
    std::fs::write(
        &taken,
        format!("{HEAD}T1,Taken Ltd,ops@taken.example,pro,12,1 Mill Lane,Manchester,M1 1AE,Al,Bo,al@taken.example,0161 496 0801,,\n"),
    )
    .unwrap();
    let o = go(
        dir,
        &[&["run", taken.to_str().unwrap()][..], &FAST].concat(),
    );
    assert!(o.status.success(), "{}", text(&o));

    // Row 3's number is that one: its customer, user and phone (ordered with row 2's, one
    // order of two) are made, its number refused.
    let people = dir.join("people.csv");
    std::fs::write(
        &people,
        format!(
            "{HEAD}C1,Crown Dental,ops@crown.example,pro,12,2 Low St,Manchester,M1 1AE,Cat,Ng,cat@crown.example,0161 496 0802,Yealink T54W,\n\
             C1,,,,,,,,Dan,Oz,dan@crown.example,0161 496 0801,Yealink T54W,\n"
        ),
    )
    .unwrap();
    let o = go(
        dir,
        &[&["run", people.to_str().unwrap()][..], &FAST].concat(),
    );
    assert_eq!(o.status.code(), Some(1), "rows failed: {}", text(&o));
    let before = rehearsal_account(dir);
    let orders = |v: &Value| -> Vec<Value> {
        v["orders"]
            .as_object()
            .map_or(Vec::new(), |o| o.values().cloned().collect())
    };
    let placed = orders(&before);
    let crown: Vec<&Value> = placed
        .iter()
        .filter(|o| o["items"][0]["quantity"] == 2)
        .collect();
    assert_eq!(crown.len(), 1, "one order of two phones: {placed:#?}");

    let to_fix = dir.join("people.to-fix.xlsx");
    let rows = sheet_rows(&to_fix, "Migration");
    assert_eq!(rows.len(), 2, "the header and row 3: {rows:?}");
    let (head, row) = (&rows[0], &rows[1]);
    let cell = |h: &str| row[head.iter().position(|x| x == h).unwrap()].clone();
    assert_eq!(cell("User Email"), "dan@crown.example");
    assert_eq!(cell("Number"), "0161 496 0801");
    assert_eq!(
        cell("Device"),
        "",
        "the phone is ordered: its cell is left blank"
    );
    assert!(
        cell("Detail").contains("Done, so left blank here: Order"),
        "{}",
        cell("Detail")
    );

    // The partner gives Dan a free number, and runs the to-fix back: his number is added and
    // allocated, nothing else is made, and no second order is placed.
    let fixed = dir.join("fixed.csv");
    let line: Vec<String> = head
        .iter()
        .zip(row)
        .filter(|(h, _)| h.as_str() != "Detail")
        .map(|(h, v)| {
            if h == "Number" {
                "0161 496 0803".into()
            } else {
                v.clone()
            }
        })
        .collect();
    let kept: Vec<&String> = head.iter().filter(|h| h.as_str() != "Detail").collect();
    std::fs::write(
        &fixed,
        format!(
            "{}\n{}\n",
            kept.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(","),
            line.join(",")
        ),
    )
    .unwrap();
    let o = go(
        dir,
        &[&["run", fixed.to_str().unwrap()][..], &FAST].concat(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let after = rehearsal_account(dir);
    assert_eq!(orders(&after).len(), placed.len(), "no order placed again");
    for what in ["customers", "users", "devices"] {
        assert_eq!(count_of(&after, what), count_of(&before, what), "{what}");
    }
    let numbers = after["numbers"].as_object().unwrap();
    let dan = numbers
        .values()
        .find(|n| n["number"] == "+441614960803")
        .unwrap_or_else(|| panic!("{numbers:#?}"));
    let user = after["users"]
        .as_object()
        .unwrap()
        .values()
        .find(|u| u["email"] == "dan@crown.example")
        .unwrap();
    assert_eq!(dan["userId"], user["id"], "{dan:#?}");
}
