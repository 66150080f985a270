//! `plbulk run`, `resume`, `status` and `jobs` as a user runs them: the real binary against a
//! standalone sandbox over loopback (or the in-process one, as the README's first command).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use calamine::{open_workbook_auto, Reader};
use common::*;
use plbulk::journal::Journal;
use plbulk::model::RowState;

fn column(rows: &[Vec<String>], header: &str) -> Vec<String> {
    let i = rows[0].iter().position(|h| h == header).unwrap_or_else(|| {
        panic!("no {header} in {:?}", rows[0]);
    });
    rows[1..].iter().map(|r| r[i].clone()).collect()
}

#[test]
fn the_readme_sample_runs_end_to_end_on_the_in_process_sandbox() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("onboarding.results.xlsx");
    let out = run(std::process::Command::new(BIN)
        .args([
            "run",
            "samples/onboarding.xlsx",
            "--sandbox",
            "--rate",
            "200/s",
        ])
        .arg("--results")
        .arg(&results)
        .env("PLBULK_DATA_DIR", dir.path())
        .env_remove("PLBULK_JOB_DIR"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("68 succeeded"), "{stdout}");

    // Every sheet comes back with its own columns and an outcome per row.
    let users = sheet_rows(&results, "Users");
    assert_eq!(
        users[0][..4],
        ["Action", "Customer", "User ID", "First Name"]
    );
    assert_eq!(users.len(), 13);
    assert!(column(&users, "Outcome").iter().all(|o| o == "succeeded"));
    assert!(column(&users, "User ID (result)")
        .iter()
        .all(|id| id.starts_with("usr_")));
    let summary = sheet_rows(&results, "Summary");
    assert_eq!(summary[0][0], "Job");
    assert!(summary.iter().any(|r| r[0] == "All sheets" && r[1] == "68"));

    // status and jobs find it.
    let out = run(std::process::Command::new(BIN)
        .args(["jobs"])
        .env("PLBULK_DATA_DIR", dir.path())
        .env_remove("PLBULK_JOB_DIR"));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("finished") && listed.contains("68 succeeded"),
        "{listed}"
    );
    let out = run(std::process::Command::new(BIN)
        .args(["status"])
        .env("PLBULK_DATA_DIR", dir.path())
        .env_remove("PLBULK_JOB_DIR"));
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("state:    finished"), "{status}");

    // The journal is its owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let j = journal_path(&dir.path().join("jobs"));
        let mode = std::fs::metadata(&j).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "journal mode {mode:o}");
    }
}

#[test]
fn running_a_file_again_creates_nothing_twice() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let job = mixed_job(dir.path(), "again.xlsx", 3, 100);
    let data = dir.path().join("data");
    let first = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "200/s", "-q"]));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = sandbox.requests().len();

    let second = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "200/s"]));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("already existed"), "{stdout}");
    let creates: Vec<_> = sandbox.requests()[before..]
        .iter()
        .filter(|e| e.method == "POST" && e.path != "/auth")
        .map(|e| (e.path.clone(), e.status))
        .collect();
    // Devices have no list: they are sent and refused (409) as already assigned.
    assert!(
        creates
            .iter()
            .all(|(p, s)| p.ends_with("/devices") && *s == 409),
        "a second run sent creates: {creates:?}"
    );
    let (state, sizes) = canonical(&sandbox.state());
    assert_eq!(state.customers, job.expected.customers);
    assert_eq!(
        sizes["orders"],
        job.expected.orders.len(),
        "no order placed twice"
    );
    assert_eq!(sizes["users"], job.expected.users.len());
}

#[test]
fn a_row_whose_customer_failed_is_skipped_with_the_reason() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let data = dir.path().join("data");
    let first = dir.path().join("first.csv");
    std::fs::write(
        &first,
        "Ref,Company Name,Email,Plan,Contract Months\nA,Acme Ltd,a@a.example,pro,12\n",
    )
    .unwrap();
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&first)
        .args(["--rate", "200/s", "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // With --existing fail, a customer that is already there fails its row, and the users
    // that wait on it are skipped, saying which row failed and why.
    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "Ref,Company Name,Email,Plan,Contract Months\nA,Acme Ltd,a@a.example,pro,12\nB,Good Ltd,b@b.example,pro,12\n",
    )
    .unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "Customer,First Name,Last Name,Email\nA,Ann,Lee,ann@a.example\nB,Bob,Ray,bob@b.example\n",
    )
    .unwrap();
    let results = dir.path().join("r.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&customers)
        .arg(&users)
        .args(["--rate", "200/s", "-q", "--existing", "fail", "--results"])
        .arg(&results));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let user_rows = sheet_rows(&results, "Users");
    let detail = column(&user_rows, "Detail");
    assert_eq!(column(&user_rows, "Outcome"), ["skipped", "succeeded"]);
    assert!(
        detail[0].starts_with(
            "Customers row 2 failed: a customer with this name and email already exists"
        ),
        "{detail:?}"
    );
    let customer_rows = sheet_rows(&results, "Customers");
    assert_eq!(column(&customer_rows, "Outcome"), ["failed", "succeeded"]);
    assert!(column(&customer_rows, "Customer ID (result)")[0].starts_with("cus_"));
}

#[test]
fn validation_errors_refuse_the_run_unless_told_to_skip_them() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let file = dir.path().join("customers.csv");
    std::fs::write(
        &file,
        "Company Name,Email,Plan,Contract Months\nGood Ltd,g@g.example,pro,12\nBad Ltd,,pro,13\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&file)
        .args(["--rate", "200/s"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--skip-invalid"));
    assert!(sandbox.requests().is_empty(), "nothing was sent");

    let results = dir.path().join("r.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&file)
        .args(["--rate", "200/s", "--skip-invalid", "-q", "--results"])
        .arg(&results));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = sheet_rows(&results, "Customers");
    assert_eq!(column(&rows, "Outcome"), ["succeeded", "invalid"]);
    let detail = &column(&rows, "Detail")[1];
    assert!(
        detail.contains("Email") && detail.contains("Contract Months"),
        "{detail}"
    );
}

#[test]
fn ctrl_c_stops_cleanly_and_resume_finishes_and_a_changed_input_is_refused() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "20/s", &["--latency-ms", "20-40"]);
    let job = mixed_job(dir.path(), "stop.xlsx", 6, 200);
    let data = dir.path().join("data");
    let results = dir.path().join("stop.results.xlsx");
    let child = sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "20/s", "--results"])
        .arg(&results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it stopped promptly"
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("plbulk resume"), "{stdout}");
    // The results so far are written, with the rows not run marked so.
    let orders = sheet_rows(&results, "Orders");
    let outcomes = column(&orders, "Outcome");
    assert!(outcomes.iter().any(|o| o == "not run"), "{outcomes:?}");

    // A changed input is refused, and says why.
    let original = std::fs::read(&job.path).unwrap();
    mixed_job(dir.path(), "stop.xlsx", 7, 200);
    let out = run(sandbox.plbulk(&data).arg("resume"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has changed"));
    std::fs::write(&job.path, original).unwrap();

    // Put back, it resumes and finishes.
    let out = run(sandbox.plbulk(&data).arg("resume").arg("-q"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (state, sizes) = canonical(&sandbox.state());
    assert_eq!(state, job.expected);
    assert_eq!(sizes["customers"], 6);
}

#[test]
fn two_jobs_on_one_key_share_its_limit() {
    let _timing = alone();
    let dir = tempfile::tempdir().unwrap();
    // A 4 s window, not the other tests' 2 s, at the same rate: the pacer's slack is 1% of the
    // window, and 20 ms was less than a send could be held up on this loaded machine.
    let sandbox = StandaloneSandbox::start(dir.path(), "80/4s", &[]);
    let a = mixed_job(dir.path(), "a.xlsx", 3, 300);
    let b = mixed_job(dir.path(), "b.xlsx", 3, 400);
    let data = dir.path().join("data");
    let spawn = |file: &Path, base_url: &str| {
        sandbox
            .plbulk(&data)
            .env("PLBULK_BASE_URL", base_url)
            .arg("run")
            .arg(file)
            .args(["--rate", "80/4s", "-q"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Issue 10, item 8: one endpoint spelt two ways is one key's budget, not two.
    let pa = spawn(&a.path, &sandbox.url);
    let pb = spawn(&b.path, &format!("{}/", sandbox.url));
    let oa = pa.wait_with_output().unwrap();
    let ob = pb.wait_with_output().unwrap();
    assert_eq!(oa.status.code(), Some(0), "{}", text(&oa));
    assert_eq!(ob.status.code(), Some(0), "{}", text(&ob));
    let log = sandbox.requests();
    let refused: Vec<_> = log.iter().filter(|e| e.status == 429).collect();
    assert!(refused.is_empty(), "429s: {refused:?}");
    let busiest = plbulk::sandbox::busiest_window(&log, &sandbox.key, Duration::from_secs(4));
    assert!(
        busiest <= 80,
        "{busiest} calls in one 4 s window from two jobs on one key"
    );
    // And they did run at the same time, or the window above proves nothing.
    let spans: Vec<(i64, i64)> = std::fs::read_dir(data.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| {
            let j = Journal::open(&e.path().join("journal.sqlite")).unwrap();
            let (_, first, last) = j.attempt_stats().unwrap();
            (first.unwrap(), last.unwrap())
        })
        .collect();
    assert_eq!(spans.len(), 2);
    assert!(
        spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1,
        "the two jobs' writes did not overlap: {spans:?}"
    );
}

#[test]
fn a_dry_run_lists_the_calls_and_sends_nothing() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let job = mixed_job(dir.path(), "dry.xlsx", 2, 500);
    let data = dir.path().join("data");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .arg("--dry-run"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2  Add Customer"), "{stdout}");
    assert!(stdout.contains("at 100/min take at least"), "{stdout}");
    // Issue 13: a dry run reads the account, to show what each update would change; it writes
    // nothing.
    let writes: Vec<_> = sandbox
        .requests()
        .into_iter()
        .filter(|e| e.method != "GET" && !e.path.ends_with("/auth"))
        .collect();
    assert!(writes.is_empty(), "a dry run wrote: {writes:?}");
    assert!(!data.join("jobs").exists(), "no job was made");
}

#[test]
fn a_finished_journal_reads_back_every_row_final() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let job = mixed_job(dir.path(), "j.xlsx", 2, 600);
    let data = dir.path().join("data");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "200/s", "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = Journal::open(&journal_path(&data.join("jobs"))).unwrap();
    let rows = j.rows().unwrap();
    assert_eq!(rows.len(), job.rows);
    assert!(rows
        .iter()
        .all(|r| r.state == RowState::Succeeded && !r.doubt));
}

#[test]
fn the_online_pre_flight_finds_what_only_the_account_knows() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let data = dir.path().join("data");
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "Customer,First Name,Last Name,Email\nNobody Ltd,Ann,Lee,ann@nobody.example\n",
    )
    .unwrap();
    let numbers = dir.path().join("numbers.csv");
    std::fs::write(
        &numbers,
        "Customer,Number,User Email\nC1,0161 496 0001,\nC1,0161 496 9999,\n",
    )
    .unwrap();
    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "Ref,Company Name,Email,Plan,Contract Months\nC1,One Ltd,one@one.example,pro,12\n",
    )
    .unwrap();
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "Order Ref,Customer,Product,Quantity,Delivery Address Line 1,Delivery Town,Delivery Postcode\nO1,C1,Acme Phone 9,1,1 High St,Leeds,LS99 9ZZ\n",
    )
    .unwrap();
    let files = [&customers, &users, &numbers, &orders];
    let report = dir.path().join("report.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .arg("validate")
        .args(files)
        .args(["--online", "--report"])
        .arg(&report));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"Nobody Ltd\" is neither in this job nor in the account"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+441614969999 is not available"),
        "{stdout}"
    );
    assert!(!stdout.contains("+441614960001 is not"), "{stdout}");
    assert!(
        stdout.contains("product \"Acme Phone 9\" is not in the catalogue"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no address for postcode LS99 9ZZ"),
        "{stdout}"
    );
    let findings = sheet_rows(&report, "Findings");
    assert!(findings
        .iter()
        .any(|r| r.iter().any(|c| c.contains("Nobody Ltd"))));

    // run does the same before any write, and refuses.
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .args(files)
        .args(["--rate", "200/s"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(sandbox
        .requests()
        .iter()
        .all(|e| e.method == "GET" || e.path == "/auth"));
}

#[test]
fn an_interrupted_rehearsal_resumes_on_its_saved_sandbox() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let job = mixed_job(dir.path(), "rehearsal.xlsx", 3, 700);
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(BIN);
        c.args(args)
            .env("PLBULK_DATA_DIR", dir.path().join("data"))
            .env_remove("PLBULK_JOB_DIR");
        c
    };
    let path = job.path.to_str().unwrap();
    let child = cmd(&["run", path, "--sandbox", "--rate", "15/s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    let out = run(&mut cmd(&["resume"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} succeeded", job.rows)),
        "{stdout}"
    );
}

#[test]
fn existing_update_changes_what_is_there_to_match_the_row() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let data = dir.path().join("data");
    let file = dir.path().join("customers.csv");
    std::fs::write(
        &file,
        "Company Name,Contact Name,Email,Plan,Contract Months\nAcme Ltd,Ann Lee,it@acme.example,pro,12\n",
    )
    .unwrap();
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&file)
        .args(["--rate", "200/s", "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(
        &file,
        "Company Name,Contact Name,Email,Plan,Contract Months\nAcme Ltd,Bob Ray,it@acme.example,pro,12\n",
    )
    .unwrap();
    let results = dir.path().join("r.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&file)
        .args(["--rate", "200/s", "-q", "--existing", "update", "--results"])
        .arg(&results));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = sheet_rows(&results, "Customers");
    assert_eq!(column(&rows, "Outcome"), ["already existed"]);
    assert_eq!(column(&rows, "Detail"), ["updated to match this row"]);
    let state = sandbox.state();
    let customers = state["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["contactName"], "Bob Ray");
}

#[test]
fn formulas_in_the_input_stay_inert_in_the_results() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let data = dir.path().join("data");
    let file = dir.path().join("customers.csv");
    let nasty = [
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
    ];
    let mut text_in = String::from("Company Name,Contact Name,Email,Plan,Contract Months\n");
    for (i, v) in nasty.iter().enumerate() {
        text_in.push_str(&format!(
            "Firm {i} Ltd,\"{}\",f{i}@f.example,pro,12\n",
            v.replace('"', "\"\"")
        ));
    }
    std::fs::write(&file, text_in).unwrap();
    let results = dir.path().join("r.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&file)
        .args(["--rate", "200/s", "-q", "--results"])
        .arg(&results));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // In the workbook: the values as given, as text, and no formula anywhere.
    let rows = sheet_rows(&results, "Customers");
    assert_eq!(column(&rows, "Contact Name"), nasty);
    let mut wb = open_workbook_auto(&results).unwrap();
    for name in wb.sheet_names() {
        let formulas = wb.worksheet_formula(&name).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "a formula in {name}"
        );
    }

    // In the CSV: each starts with an apostrophe, and the file with a BOM.
    let out = run(sandbox
        .plbulk(&data)
        .args(["results", "--format", "csv", "--out"])
        .arg(dir.path().join("r.csv")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let csv_path = dir.path().join("r.Customers.csv");
    let bytes = std::fs::read(&csv_path).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let contacts: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    let expected: Vec<String> = nasty.iter().map(|v| format!("'{v}")).collect();
    assert_eq!(contacts, expected);
}

#[test]
fn the_to_fix_file_re_imports_and_sends_only_the_fixed_row() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "200/s", &[]);
    let data = dir.path().join("data");
    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "Ref,Company Name,Email,Plan,Contract Months\nC1,Acme Ltd,it@acme.example,pro,12\n",
    )
    .unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "Customer,First Name,Last Name,Email\nC1,Ann,Lee,ann@acme.example\nC1,Bob,Ray,bob@acme\n",
    )
    .unwrap();
    let results = dir.path().join("job.results.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&customers)
        .arg(&users)
        .args(["--rate", "200/s", "--skip-invalid", "--results"])
        .arg(&results));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let to_fix = dir.path().join("job.to-fix.xlsx");
    assert!(String::from_utf8_lossy(&out.stdout).contains("job.to-fix.xlsx"));

    // Only the bad row, in the template's columns, its Customer now the customer's id.
    let rows = sheet_rows(&to_fix, "Users");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        rows[0][..6],
        [
            "Action",
            "Customer",
            "User ID",
            "First Name",
            "Last Name",
            "Email"
        ]
    );
    let customer_id = column(&rows, "Customer")[0].clone();
    assert!(customer_id.starts_with("cus_"), "{customer_id}");
    assert_eq!(column(&rows, "Email"), ["bob@acme"]);
    assert!(column(&rows, "Detail")[0].starts_with("invalid: "));

    // Fix the one cell, as a user would in Excel, and run the file.
    let mut fixed = rust_xlsxwriter::Workbook::new();
    let ws = fixed.add_worksheet();
    ws.set_name("Users").unwrap();
    let email_col = rows[0].iter().position(|h| h == "Email").unwrap();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let v = if r == 1 && c == email_col {
                "bob@acme.example"
            } else {
                v
            };
            if !v.is_empty() {
                ws.write_string(r as u32, c as u16, v).unwrap();
            }
        }
    }
    let fixed_path = dir.path().join("fixed.xlsx");
    fixed.save(&fixed_path).unwrap();
    let before = sandbox.requests().len();
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&fixed_path)
        .args(["--rate", "200/s"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stderr.contains("not used by plbulk"),
        "Detail is no unknown column: {stderr}"
    );
    let writes: Vec<String> = sandbox.requests()[before..]
        .iter()
        .filter(|e| e.method != "GET" && e.path != "/auth")
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(writes, [format!("POST /customers/{customer_id}/users")]);
}

#[test]
fn export_then_run_back_changes_nothing_and_creates_nothing() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "500/s", &[]);
    let data = dir.path().join("data");
    let job = mixed_job(dir.path(), "seed.xlsx", 3, 800);
    let out = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "500/s", "-q"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = canonical(&sandbox.state());

    for what in ["customers", "users", "numbers", "blocked", "orders"] {
        let file = dir.path().join(format!("{what}.xlsx"));
        let out = run(sandbox
            .plbulk(&data)
            .args(["export", what, "--rate", "500/s", "--out"])
            .arg(&file));
        assert_eq!(out.status.code(), Some(0), "export {what}: {}", text(&out));
        let sent = sandbox.requests().len();
        let out = run(sandbox
            .plbulk(&data)
            .arg("run")
            .arg(&file)
            .args(["--rate", "500/s"]));
        assert_eq!(
            out.status.code(),
            Some(0),
            "run back {what}: {}",
            text(&out)
        );
        let creates: Vec<String> = sandbox.requests()[sent..]
            .iter()
            .filter(|e| e.method == "POST" && e.path != "/auth")
            .map(|e| e.path.clone())
            .collect();
        assert!(creates.is_empty(), "{what} sent creates: {creates:?}");
    }
    assert_eq!(canonical(&sandbox.state()), before, "nothing changed");

    // One customer only, by name.
    let file = dir.path().join("one.xlsx");
    let out = run(sandbox
        .plbulk(&data)
        .args(["export", "users", "--customer", "company 801 ltd"])
        .args(["--rate", "500/s", "--out"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        sheet_rows(&file, "Users").len(),
        4,
        "a header and three users"
    );
}

#[test]
fn a_job_runs_in_one_process_at_a_time() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "10/s", &[]);
    let job = mixed_job(dir.path(), "once.xlsx", 2, 900);
    let data = dir.path().join("data");
    let child = sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "10/s", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the job is made (its journal, and its record in it: a journal just created holds
    // no job yet), however slow the machine is today.
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_under(&data.join("jobs"))
        .iter()
        .all(|p| !p.ends_with("journal.sqlite"))
        || run(sandbox.plbulk(&data).args(["status", "--json"]))
            .status
            .code()
            != Some(0)
    {
        assert!(Instant::now() < deadline, "the job was never made");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = run(sandbox.plbulk(&data).arg("resume"));
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("running in another plbulk process"),
        "{}",
        text(&second)
    );
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (state, sizes) = canonical(&sandbox.state());
    assert_eq!(state, job.expected);
    assert_eq!(sizes["customers"], 2);
}

/// Issue 10, item 4: two `plbulk run` of one file started a moment apart (a double-click, a
/// cron overlap) made two jobs, and placed every order twice. The second is refused before it
/// reads the account, naming the running job; the first places each order once.
#[test]
fn a_second_run_of_the_same_file_is_refused_while_the_first_runs() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "10/s", &[]);
    let job = mixed_job(dir.path(), "twice.xlsx", 2, 910);
    let data = dir.path().join("data");
    let jobs = dir.path().join("jobs");
    let first = sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "10/s"])
        .arg("--job-dir")
        .arg(&jobs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the first has made its job (its lock names it).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(jobs.exists()
        && std::fs::read_dir(&jobs)
            .unwrap()
            .flatten()
            .any(|e| e.path().join("journal.sqlite").exists()))
    {
        assert!(Instant::now() < deadline, "the first run made no job");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = sandbox.requests().len();
    let second = run(sandbox
        .plbulk(&data)
        .arg("run")
        .arg(&job.path)
        .args(["--rate", "10/s"])
        .arg("--job-dir")
        .arg(&jobs));
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("is being run against"), "{}", text(&second));
    let id = std::fs::read_dir(&jobs)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("journal.sqlite").exists())
        .unwrap()
        .file_name()
        .to_string_lossy()
        .to_string();
    assert!(
        err.contains(&id),
        "names the running job {id}: {}",
        text(&second)
    );
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The refused run sent nothing of its own: the first alone accounts for every request
    // after it, and the account holds each order once.
    let (state, sizes) = canonical(&sandbox.state());
    assert_eq!(state, job.expected);
    assert_eq!(sizes["customers"], 2);
    assert_eq!(
        std::fs::read_dir(&jobs)
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("journal.sqlite").exists())
            .count(),
        1,
        "one job"
    );
    assert!(sandbox.requests().len() > before);
}

/// Issue 10, item 5: `run FILE --sandbox` after an interrupted real job of FILE resumed the
/// real job on the real API. A run whose settings differ from the unfinished job's is refused,
/// naming them and both ways on; `--sandbox` never reaches the real endpoint; `--new-job`
/// starts afresh; the same flags resume.
#[test]
fn a_run_with_other_flags_does_not_resume_the_unfinished_job() {
    let _timing = beside_others();
    let dir = tempfile::tempdir().unwrap();
    // The standalone sandbox plays the partner's real API here.
    let real = StandaloneSandbox::start(dir.path(), "50/s", &[]);
    let job = mixed_job(dir.path(), "flags.xlsx", 2, 920);
    let data = dir.path().join("data");
    let jobs = dir.path().join("jobs");
    let run_cmd = |extra: &[&str]| {
        let mut c = real.plbulk(&data);
        c.arg("run")
            .arg(&job.path)
            .args(["--rate", "50/s", "-q"])
            .args(extra)
            .arg("--job-dir")
            .arg(&jobs);
        c
    };
    // Killed at its third customer.
    let killed = run(run_cmd(&[]).env(plbulk::failpoint::ENV, "intent:Add Customer@2"));
    assert!(!killed.status.success(), "{}", text(&killed));
    let sent = real.requests().len();

    for (flags, named) in [
        (&["--sandbox"][..], "--sandbox"),
        (&["--existing", "update"][..], "--existing"),
        (&["--base-url", "http://127.0.0.1:9/v1"][..], "the base URL"),
    ] {
        let out = run(&mut run_cmd(flags));
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [named, "plbulk resume", "--new-job"] {
            assert!(err.contains(want), "{flags:?} names {want}: {}", text(&out));
        }
    }
    assert_eq!(real.requests().len(), sent, "nothing reached the real API");

    // A rehearsal as a new job, on its own in-process sandbox.
    let out = run(&mut run_cmd(&["--sandbox", "--new-job"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        real.requests().len(),
        sent,
        "the rehearsal stayed on its own sandbox"
    );

    // The same flags as the job: it resumes and finishes, each customer once.
    let out = run(&mut run_cmd(&[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (state, sizes) = canonical(&real.state());
    assert_eq!(state, job.expected);
    assert_eq!(sizes["customers"], 2);
}
