//! The results workbook read back cell by cell with calamine: a job with a row in every state.

mod common;

use common::sheet_rows as grid;
use plbulk::journal::{Answer, AttemptResult, InputFile, JobMeta, Journal};
use plbulk::model::{JobState, NewRow, RowState, SheetRec};

#[test]
fn every_cell_of_every_outcome_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(&dir.path().join("j.sqlite")).unwrap();
    let meta = JobMeta {
        id: "20261128-120000-abcdef".into(),
        created_at_ms: 1_764_331_200_000,
        fingerprint: "f".into(),
        inputs: vec![InputFile {
            path: "/data/users.csv".into(),
            size: 1,
            hash: "h".into(),
        }],
        options: serde_json::json!({}),
        base_url: "https://api.example".into(),
        key_id: "key-1".into(),
        state: JobState::Running,
        started_at_ms: None,
        finished_at_ms: None,
    };
    let sheets = [SheetRec {
        idx: 0,
        file: "/data/users.csv".into(),
        sheet: "Users".into(),
        kind: "users".into(),
        headers: vec!["Customer".into(), "Email".into()],
    }];
    // Succeeded, already existed, failed, skipped, needs review, invalid, pending.
    let states = [
        RowState::Succeeded,
        RowState::AlreadyExisted,
        RowState::Failed,
        RowState::Skipped,
        RowState::NeedsReview,
        RowState::Invalid,
        RowState::Pending,
    ];
    let rows: Vec<NewRow> = states
        .iter()
        .enumerate()
        .map(|(i, s)| NewRow {
            sheet: 0,
            row_no: i as u32 + 2,
            task: None,
            cells: vec!["cus_1".into(), format!("=u{i}@x.example")],
            work: Some(plbulk::model::Work::DeletePartnerUser {
                partner_user: plbulk::model::Sel::Id("pus_1".into()),
            }),
            deps: vec![],
            lead: None,
            state: if *s == RowState::Invalid {
                RowState::Invalid
            } else {
                RowState::Pending
            },
            detail: (*s == RowState::Invalid).then(|| "Email: not an email address".into()),
        })
        .collect();
    journal.init(&meta, &sheets, &rows).unwrap();
    // Row 1 succeeded with a user made; row 2 already existed; row 3 failed with a 422; the
    // rest as the engine leaves them.
    let a = journal
        .begin_attempt(1, "create", "Add Customer User")
        .unwrap();
    journal
        .end_attempt(
            a,
            1,
            &Answer {
                content_type: None,
                status: Some(201),
                result: AttemptResult::Ok,
                detail: None,
                made: Some((plbulk::model::IdKind::User, "usr_1")),
                settled: true,
            },
        )
        .unwrap();
    journal
        .finish_row(1, RowState::Succeeded, None, Some(201))
        .unwrap();
    let mut ids = plbulk::model::RowIds::default();
    ids.set(plbulk::model::IdKind::User, "usr_2");
    journal.set_ids(2, &ids).unwrap();
    journal
        .finish_row(2, RowState::AlreadyExisted, None, None)
        .unwrap();
    let a = journal
        .begin_attempt(3, "create", "Add Customer User")
        .unwrap();
    journal
        .end_attempt(
            a,
            3,
            &Answer {
                content_type: None,
                status: Some(422),
                result: AttemptResult::Final,
                detail: Some("email: is not an email address"),
                made: None,
                settled: true,
            },
        )
        .unwrap();
    journal
        .finish_row(
            3,
            RowState::Failed,
            Some("invalid user (email: is not an email address) (HTTP 422)"),
            Some(422),
        )
        .unwrap();
    journal
        .finish_row(4, RowState::Skipped, Some("Customers row 2 failed"), None)
        .unwrap();
    journal
        .finish_row(
            5,
            RowState::NeedsReview,
            Some("the email may have gone out"),
            None,
        )
        .unwrap();

    let path = dir.path().join("r.xlsx");
    plbulk::results::write(&journal, &path, Some(9)).unwrap();
    let g = grid(&path, "Users");
    let header: Vec<&str> = vec![
        "Customer",
        "Email",
        "Outcome",
        "Detail",
        "HTTP Status",
        "Attempts",
        "Finished",
        // Issue 14: only the ids a Users row can fill.
        "Customer ID (result)",
        "User ID (result)",
    ];
    assert_eq!(g[0], header);
    assert_eq!(g.len(), 8);
    let expect = [
        ("succeeded", "", "201", "1", "usr_1"),
        ("already existed", "", "", "", "usr_2"),
        (
            "failed",
            "invalid user (email: is not an email address) (HTTP 422)",
            "422",
            "1",
            "",
        ),
        ("skipped", "Customers row 2 failed", "", "", ""),
        ("needs review", "the email may have gone out", "", "", ""),
        ("invalid", "Email: not an email address", "", "", ""),
        ("not run", "", "", "", ""),
    ];
    for (i, (outcome, detail, status, attempts, user)) in expect.iter().enumerate() {
        let row = &g[i + 1];
        assert_eq!(row[0], "cus_1", "row {i}");
        assert_eq!(row[1], format!("=u{i}@x.example"), "kept as text, row {i}");
        assert_eq!(row[2], *outcome, "row {i}");
        assert_eq!(row[3], *detail, "row {i}");
        assert_eq!(row[4], *status, "row {i}");
        assert_eq!(row[5], *attempts, "row {i}");
        let finished = !matches!(*outcome, "invalid" | "not run");
        assert_eq!(
            !row[6].is_empty(),
            finished,
            "finish time, row {i}: {:?}",
            row[6]
        );
        assert_eq!(row[8], *user, "row {i}");
        for (c, cell) in row.iter().enumerate().skip(9) {
            assert_eq!(cell, "", "row {i} column {c}");
        }
        assert_eq!(row[7], "", "row {i}");
    }

    let summary = grid(&path, "Summary");
    let value = |k: &str| {
        summary
            .iter()
            .find(|r| r[0] == k)
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("no {k} in the summary"))
    };
    assert_eq!(value("Job"), "20261128-120000-abcdef");
    assert_eq!(value("Base URL"), "https://api.example");
    assert_eq!(value("API key"), "key-1");
    assert_eq!(value("Writes sent (attempts)"), "2");
    assert_eq!(value("Calls made this run (all)"), "9");
    let totals = summary.iter().find(|r| r[0] == "All sheets").unwrap();
    // Issue 13 added "no change", third: none here.
    assert_eq!(totals[1..9], ["1", "1", "0", "1", "1", "1", "1", "1"]);
}
