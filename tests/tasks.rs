//! Issue 20: a source row may stand for several tasks, each with its own state, dependencies
//! and outcome (what a Migration sheet's person row is built on). A plan whose rows stand for
//! a customer, a user and a number each is journaled, run by the engine against the sandbox
//! over HTTP on loopback, and its results, CSV results and to-fix read back: each source row
//! once, its Outcome folded from its tasks', a column per task, Detail naming the task. Then it
//! is undone task by task, as any job is.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::sheet_rows as grid;
use plbulk::client::{Client, ClientConfig, Credentials};
use plbulk::contract as c;
use plbulk::engine::{self, Engine, Finish, Lookups};
use plbulk::journal::{InputFile, JobMeta, Journal};
use plbulk::model::{JobState, NewRow, RowState, Sel, SheetRec, Task, Work};
use plbulk::pacing::Rate;
use plbulk::sandbox::{Sandbox, SandboxConfig, DEFAULT_KEY, DEFAULT_SECRET};

const HEADERS: [&str; 4] = ["Company Name", "Email", "First Name", "Last Name"];

fn meta(id: &str, file: &Path) -> JobMeta {
    JobMeta {
        id: id.into(),
        created_at_ms: 1_764_331_200_000,
        fingerprint: "f".into(),
        inputs: vec![InputFile {
            path: file.display().to_string(),
            size: 1,
            hash: "h".into(),
        }],
        options: serde_json::json!({}),
        base_url: "http://127.0.0.1".into(),
        key_id: DEFAULT_KEY.into(),
        state: JobState::Running,
        started_at_ms: None,
        finished_at_ms: None,
    }
}

/// Rows 2 and 3 of a People sheet, each standing for its customer and its user; row 3 also for
/// a number allocated to its user. Row 3's user has an email the API refuses.
fn people(file: &Path) -> (Vec<SheetRec>, Vec<NewRow>) {
    let sheets = vec![SheetRec {
        idx: 0,
        file: file.display().to_string(),
        sheet: "People".into(),
        kind: "users".into(),
        headers: HEADERS.iter().map(|h| h.to_string()).collect(),
    }];
    let task = |row_no: u32, task: Task, work: Work, deps: Vec<i64>, cells: &[&str]| NewRow {
        sheet: 0,
        row_no,
        task: Some(task),
        cells: cells.iter().map(|s| s.to_string()).collect(),
        work: Some(work),
        deps,
        lead: None,
        state: RowState::Pending,
        detail: None,
    };
    let customer = |name: &str| Work::AddCustomer {
        new: c::NewCustomer {
            company_name: name.into(),
            email: Some("ops@example.com".into()),
            plan: Some(c::Plan::Pro),
            contract_months: Some(12),
            ..Default::default()
        },
    };
    let user = |row: i64, email: &str| Work::AddUser {
        customer: Sel::Row(row),
        new: c::NewUser {
            first_name: "Jordan".into(),
            last_name: "Lee".into(),
            email: email.into(),
            user_type: c::UserType::Standard,
        },
    };
    let acme = ["Acme Ltd", "jordan@acme.example", "Jordan", "Lee"];
    let beta = ["Beta Ltd", "not an email", "Jordan", "Lee"];
    let rows = vec![
        task(2, Task::Customer, customer("Acme Ltd"), vec![], &acme),
        task(
            2,
            Task::User,
            user(1, "jordan@acme.example"),
            vec![1],
            &acme,
        ),
        task(3, Task::Customer, customer("Beta Ltd"), vec![], &beta),
        task(3, Task::User, user(3, "not an email"), vec![3], &beta),
        task(
            3,
            Task::Number,
            Work::AddNumber {
                customer: Sel::Row(3),
                number: "02079460123".into(),
                allocate_to: Some(Sel::Row(4)),
            },
            vec![3, 4],
            &beta,
        ),
    ];
    (sheets, rows)
}

async fn run(journal: Arc<Journal>, url: &str) -> Finish {
    // No pacer: the sandbox's window is wide enough for the few calls made here.
    let config = ClientConfig::new(url, Credentials::new(DEFAULT_KEY, DEFAULT_SECRET));
    let client = Client::new(config).unwrap();
    let engine = Arc::new(
        Engine::new(
            journal,
            Arc::new(Lookups::new(client)),
            engine::Options::default(),
        )
        .unwrap(),
    );
    let (_stop, stop) = tokio::sync::watch::channel(false);
    engine.run(stop, Arc::new(())).await.unwrap()
}

fn cell<'a>(g: &'a [Vec<String>], row: usize, header: &str) -> &'a str {
    let c = g[0]
        .iter()
        .position(|h| h == header)
        .unwrap_or_else(|| panic!("no column {header:?} in {:?}", g[0]));
    &g[row][c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_of_several_tasks_runs_each_and_shows_as_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig {
        rate: Rate::new(600, Duration::from_secs(60)),
        ..Default::default()
    })
    .await
    .unwrap();
    let file = dir.path().join("people.csv");
    let (sheets, rows) = people(&file);
    let journal = Arc::new(Journal::create(&dir.path().join("job.sqlite")).unwrap());
    journal
        .init(&meta("20261205-150000-tasks0", &file), &sheets, &rows)
        .unwrap();

    assert_eq!(
        run(journal.clone(), &sandbox.url()).await,
        Finish::Completed
    );

    // Each task ran as its own: two customers, one user; the refused user's number never sent.
    let state = sandbox.state();
    let names: Vec<&str> = state["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["companyName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "{names:?} {:?}",
        journal.result_rows().unwrap()
    );
    assert_eq!(state["users"].as_array().unwrap().len(), 1);
    assert!(state["numbers"].as_array().unwrap().is_empty());
    let states: Vec<(u32, Option<Task>, RowState)> = journal
        .result_rows()
        .unwrap()
        .iter()
        .map(|r| (r.row_no, r.task, r.state))
        .collect();
    assert_eq!(
        states,
        [
            (2, Some(Task::Customer), RowState::Succeeded),
            (2, Some(Task::User), RowState::Succeeded),
            (3, Some(Task::Customer), RowState::Succeeded),
            (3, Some(Task::User), RowState::Failed),
            (3, Some(Task::Number), RowState::Skipped),
        ]
    );
    // Counted as source rows.
    assert_eq!(
        journal.counts().unwrap(),
        [(RowState::Succeeded, 1), (RowState::Failed, 1)]
    );

    // The results: one row per source row, a column per task.
    let results = dir.path().join("people.results.xlsx");
    plbulk::results::write(&journal, &results, None).unwrap();
    let g = grid(&results, "People");
    assert_eq!(g.len(), 3, "two source rows and the header: {g:?}");
    let expected: Vec<&str> = HEADERS
        .iter()
        .copied()
        .chain([
            "Outcome",
            "Detail",
            "HTTP Status",
            "Attempts",
            "Finished",
            "Customer ID (result)",
            "User ID (result)",
            "Customer (outcome)",
            "User (outcome)",
            "Number (outcome)",
        ])
        .collect();
    assert_eq!(g[0], expected);
    assert_eq!(cell(&g, 1, "Company Name"), "Acme Ltd");
    assert_eq!(cell(&g, 1, "Outcome"), "succeeded");
    assert_eq!(cell(&g, 1, "Customer (outcome)"), "succeeded");
    assert_eq!(cell(&g, 1, "User (outcome)"), "succeeded");
    assert_eq!(
        cell(&g, 1, "Number (outcome)"),
        "",
        "row 2 stands for no number"
    );
    assert!(cell(&g, 1, "Customer ID (result)").starts_with("cus_"));
    assert!(cell(&g, 1, "User ID (result)").starts_with("usr_"));
    assert_eq!(cell(&g, 1, "Attempts"), "2");
    assert_eq!(cell(&g, 2, "Outcome"), "failed");
    assert_eq!(cell(&g, 2, "Customer (outcome)"), "succeeded");
    assert_eq!(cell(&g, 2, "User (outcome)"), "failed");
    assert_eq!(cell(&g, 2, "Number (outcome)"), "skipped");
    assert_eq!(
        cell(&g, 2, "HTTP Status"),
        "422",
        "the failed task's answer"
    );
    let detail = cell(&g, 2, "Detail");
    assert!(detail.starts_with("User: "), "{detail}");
    assert!(
        detail.contains("; Number: People row 3's user failed"),
        "{detail}"
    );
    assert!(cell(&g, 2, "Customer ID (result)").starts_with("cus_"));
    assert_eq!(cell(&g, 2, "User ID (result)"), "");
    let summary = grid(&results, "Summary");
    let table = summary.iter().position(|r| r[0] == "Sheet").unwrap();
    let count = |label: &str| {
        let c = summary[table].iter().position(|h| h == label).unwrap();
        summary[table + 1][c].clone()
    };
    assert_eq!(count("succeeded"), "1");
    assert_eq!(count("failed"), "1");
    assert_eq!(count("skipped"), "0", "a skipped task is not a skipped row");

    // The CSV results say the same.
    let csv = plbulk::results::write_csv(&journal, &dir.path().join("people.results.csv")).unwrap();
    let text = std::fs::read_to_string(&csv[0]).unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].ends_with("Customer (outcome),User (outcome),Number (outcome)"),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].ends_with(",succeeded,failed,skipped"),
        "{}",
        lines[2]
    );

    // The to-fix holds the row with a task not done, once.
    let to_fix = dir.path().join("people.to-fix.xlsx");
    assert_eq!(
        plbulk::results::write_to_fix(&journal, &to_fix, plbulk::results::FixColumns::Template)
            .unwrap(),
        1
    );
    let g = grid(&to_fix, "Users");
    assert_eq!(g.len(), 2, "{g:?}");
    assert!(g[1].iter().any(|v| v == "not an email"), "{g:?}");

    // Undone task by task, as any job is: each task a row of the undo keeping the task it
    // reverses, newest first; the user goes with the customer the job made (its removal
    // carries it), so only the customers are calls.
    journal.set_job_state(JobState::Finished).unwrap();
    let undo = plbulk::undo::plan(&journal, false).unwrap();
    let undo_tasks: Vec<(u32, Option<Task>, bool)> = undo
        .plan
        .rows
        .iter()
        .map(|r| (r.row_no, r.task, r.work.is_some()))
        .collect();
    assert_eq!(
        undo_tasks,
        [
            (3, Some(Task::Customer), true),
            (2, Some(Task::User), false),
            (2, Some(Task::Customer), true),
        ]
    );
    let undo_journal = Arc::new(Journal::create(&dir.path().join("undo.sqlite")).unwrap());
    undo_journal
        .init(
            &meta("20261205-150100-undo00", &file),
            &undo.plan.sheets,
            &undo.plan.rows,
        )
        .unwrap();
    assert_eq!(
        run(undo_journal.clone(), &sandbox.url()).await,
        Finish::Completed
    );
    let state = sandbox.state();
    assert!(state["customers"].as_array().unwrap().is_empty(), "{state}");
    assert!(state["users"].as_array().unwrap().is_empty(), "{state}");
    let undone = dir.path().join("undo.results.xlsx");
    plbulk::results::write(&undo_journal, &undone, None).unwrap();
    let g = grid(&undone, "People");
    assert_eq!(g.len(), 3, "each source row once: {g:?}");
    assert_eq!(cell(&g, 1, "Customer (outcome)"), "succeeded");
    assert_eq!(cell(&g, 1, "User (outcome)"), "succeeded");
    assert_eq!(cell(&g, 2, "Customer (outcome)"), "succeeded");
}
