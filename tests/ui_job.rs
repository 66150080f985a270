//! The whole job from the page, in a real browser (issue 22, items 4 to 7): the sample dropped,
//! previewed, confirmed (it orders hardware), watched, stopped, resumed, its results downloaded
//! and read back with calamine, undone after its own preview; and a job run from a terminal
//! watched on the page while it runs. On the rehearsal account, at a limit fast enough to end
//! in seconds and slow enough to be stopped. Each page visited is saved to
//! `target/ui-screens/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use browser::{Browser, UiServer};
use common::{no_config, BIN};
use fantoccini::Locator;

/// The limit the page's jobs run at: the sample's 89 writes take about nine seconds.
const RATE: &str = "10/s";

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The job's id from the page's address, `/jobs/ID`.
async fn job_id(b: &Browser) -> String {
    let url = b.client.current_url().await.unwrap();
    let id = url.path().trim_start_matches("/jobs/").to_string();
    assert!(!id.is_empty() && !id.contains('/'), "{url}");
    id
}

/// Rows done, as the progress head says them. The box is replaced by each event the page is
/// pushed, so an element found may be gone when it is read: read again then.
async fn done_rows(b: &Browser) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(e) = b.client.find(Locator::Css("#progress-head")).await {
            if let Ok(Some(v)) = e.attr("data-done").await {
                return v.parse().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no progress shown");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_runs_from_the_page_stops_resumes_and_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ui = UiServer::start_with(&data, &no_config(dir.path()), &[], &["--rate", RATE]);
    let mut b = Browser::start("job", dir.path()).await;
    b.goto(&ui.url).await;
    b.wait_for("#file-input").await;

    // Dropped (picked, as a partner who does not drag), checked: no errors, and the way on.
    let dropped = now_ms();
    let clock = Instant::now();
    b.wait_for("#file-input")
        .await
        .send_keys(&sample("onboarding.xlsx").display().to_string())
        .await
        .unwrap();
    b.wait_for("#check-file").await.click().await.unwrap();
    assert!(b.text("#verdict").await.contains("No errors"));
    let to_findings = clock.elapsed();
    // The screenshots taken on the way are the test's time, not the page's: left out of the
    // time measured.
    let mut shooting = Duration::ZERO;
    let t = Instant::now();
    b.shot("findings").await;
    shooting += t.elapsed();
    b.wait_for("#preview").await.click().await.unwrap();

    // The preview: the pre-flight, what is made and ordered, the time at the limit, and the
    // confirmation an order asks for, naming the account and the count.
    let effects = b.text("#effects").await;
    let to_preview = clock.elapsed() - shooting;
    let t = Instant::now();
    b.shot("preview").await;
    shooting += t.elapsed();
    assert!(b
        .text("#preflight")
        .await
        .contains("has what every row needs"));
    for said in [
        "Created",
        "Ordered (hardware)",
        "Add Customer Order",
        "Add Customer",
    ] {
        assert!(effects.contains(said), "{said} in {effects}");
    }
    assert!(!effects.contains("Deleted"), "{effects}");
    let limit = b.text("#at-limit").await;
    assert!(
        limit.contains("89 write calls") && limit.contains(RATE),
        "{limit}"
    );
    let ask = b.text("#confirm-needed").await;
    assert!(
        ask.contains("places 3 hardware orders") && ask.contains("rehearsal account"),
        "{ask}"
    );
    let preview_at = b.client.current_url().await.unwrap();
    // Not confirmed: the browser does not send it, and nothing starts.
    b.wait_for("#start").await.click().await.unwrap();
    assert_eq!(b.client.current_url().await.unwrap(), preview_at);
    assert!(plbulk::job::list(&data.join("jobs")).is_empty());

    b.wait_for("#confirm").await.click().await.unwrap();
    b.wait_for("#start").await.click().await.unwrap();
    b.wait_for("#progress").await;
    let id = job_id(&b).await;
    let first_call = {
        let job = plbulk::job::find(&data.join("jobs"), Some(&id)).unwrap();
        let journal = plbulk::journal::Journal::open(&job.journal_path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let (_, Some(first), _) = journal.attempt_stats().unwrap() {
                break first;
            }
            assert!(Instant::now() < deadline, "no call was sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    eprintln!(
        "drop to findings shown: {} ms; to preview shown: {} ms; drop to the job's first write: {} ms (the test's clicks and checks included, its screenshots not)",
        to_findings.as_millis(),
        to_preview.as_millis(),
        first_call - dropped - shooting.as_millis() as i64
    );

    // Live: rows arrive by the page's stream, not by reloading it.
    b.wait_text("#progress-head", 20, |t| !t.starts_with("0 of"))
        .await;
    assert!(done_rows(&b).await > 0);
    // The page left and opened again: the job ran on, and the start page leads back to it.
    b.goto(&ui.url).await;
    b.wait_for(&format!("#running-now a[href='/jobs/{id}']"))
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("#progress").await;
    let head = b.wait_text("#progress-head", 20, |_| true).await;
    assert!(
        head.contains("calls in the last minute") && head.contains("left"),
        "{head}"
    );
    b.wait_for("#recent li").await;
    b.shot("running").await;

    // Stopped as Ctrl-C stops it: interrupted, resumable, rows left.
    b.wait_for("#stop").await.click().await.unwrap();
    let ended = b
        .wait_text("#ended", 30, |t| t.contains("Stopped as you asked"))
        .await;
    assert!(ended.contains("Resume"), "{ended}");
    assert_eq!(b.text("#job-state").await, "interrupted");
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("not run"),
        "stopped too late to test: {summary}"
    );
    b.shot("stopped").await;

    // Resumed from the button: it goes on to the end.
    b.wait_for("form[action$='/resume'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#ended", 60, |t| t.contains("every row")).await;
    assert_eq!(job_id(&b).await, id);
    assert_eq!(b.text("#job-state").await, "finished");
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("68 succeeded") && !summary.contains("not run"),
        "{summary}"
    );
    b.shot("results").await;

    // Filtered to one outcome: only its rows.
    let select = b.wait_for("#outcome").await;
    select.select_by_value("succeeded").await.unwrap();
    b.wait_for("#filter-go").await.click().await.unwrap();
    b.wait_for("table.results").await;
    let rows = b
        .client
        .find_all(Locator::Css("table.results tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 68);
    for r in &rows {
        assert_eq!(
            r.attr("data-state").await.unwrap().as_deref(),
            Some("succeeded")
        );
    }

    // The results workbook, as the page serves it, read back.
    let href = b
        .wait_for("#download-results")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let bytes = b.fetch(&href).await;
    let saved = dir.path().join("downloaded.results.xlsx");
    std::fs::write(&saved, bytes).unwrap();
    let customers = common::sheet_rows(&saved, "Customers");
    let outcome = customers[0].iter().position(|h| h == "Outcome").unwrap();
    assert_eq!(customers.len(), 4, "{customers:?}");
    for row in &customers[1..] {
        assert_eq!(row[outcome], "succeeded", "{row:?}");
    }

    // Undo: its plan first (it deletes what the job made), confirmed, then run.
    b.wait_for("a.undo").await.click().await.unwrap();
    let plan = b.text("#effects").await;
    assert!(
        plan.contains("Deleted") && plan.contains("Delete Customer"),
        "{plan}"
    );
    assert!(b.text("#undo-on").await.contains("rehearsal account"));
    b.shot("undo-preview").await;
    b.wait_for("#confirm").await.click().await.unwrap();
    b.wait_for("#start-undo").await.click().await.unwrap();
    b.wait_text("#ended", 60, |t| t.contains("every row")).await;
    let undo = job_id(&b).await;
    assert_ne!(undo, id);
    assert!(b.text("h1").await.contains(&format!("the undo of {id}")));
    b.shot("undone").await;

    // The jobs list: both, with what each may do next.
    b.wait_for("nav a[href='/jobs']")
        .await
        .click()
        .await
        .unwrap();
    let row = b.text(&format!("tr[data-job='{id}']")).await;
    assert!(
        row.contains("finished") && row.contains("onboarding.xlsx"),
        "{row}"
    );
    let undo_row = b.text(&format!("tr[data-job='{undo}']")).await;
    assert!(
        undo_row.contains(&format!("Undo of job {id}")),
        "{undo_row}"
    );
    b.shot("jobs").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_run_in_a_terminal_is_watched_on_the_page_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = no_config(dir.path());
    let input = dir.path().join("onboarding.xlsx");
    std::fs::copy(sample("onboarding.xlsx"), &input).unwrap();
    let ui = UiServer::start(&data, &config, &[]);
    let _cli = common::Proc(
        std::process::Command::new(BIN)
            .args(["run", "--sandbox", "--rate", "5/s", "-q"])
            .arg(&input)
            .env("PLBULK_DATA_DIR", &data)
            .env("PLBULK_CONFIG", &config)
            .env_remove("PLBULK_JOB_DIR")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut b = Browser::start("terminal-job", dir.path()).await;
    b.goto(&ui.url).await;
    // The terminal's job, listed while it runs.
    let jobs = format!("{}/jobs", ui.origin);
    let deadline = Instant::now() + Duration::from_secs(20);
    let link = loop {
        b.goto(&jobs).await;
        if let Ok(a) = b.client.find(Locator::Css("tr[data-job] a")).await {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "the terminal's job is not listed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(b.text("tr[data-job]").await.contains("running"));
    b.shot("list").await;
    link.click().await.unwrap();
    b.wait_for("#progress").await;
    assert!(b.text("#run").await.contains("Running"));
    assert!(b.source().await.contains("runs in another process"));
    // Its rows arrive by the page's stream as the terminal's process records them.
    let before = done_rows(&b).await;
    b.wait_text("#progress-head", 30, |t| {
        t.split(' ')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > before)
    })
    .await;
    b.shot("running").await;
    // And when it ends, the page turns to its results by itself.
    b.wait_text("#job-state", 60, |t| t == "finished").await;
    assert!(b.text("#summary").await.contains("68 succeeded"));
    b.shot("results").await;
    b.close().await;
}

/// Drops the sample on `ui` and shows its preview.
async fn preview_sample(b: &mut Browser, ui: &UiServer) {
    b.goto(&ui.url).await;
    b.wait_for("#file-input")
        .await
        .send_keys(&sample("onboarding.xlsx").display().to_string())
        .await
        .unwrap();
    b.wait_for("#check-file").await.click().await.unwrap();
    b.wait_for("#preview").await.click().await.unwrap();
    b.wait_for("#effects").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_key_and_an_outage_are_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let config = no_config(dir.path());
    let mut b = Browser::start("faults", dir.path()).await;
    for d in ["refusing", "api"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }

    // A key the API refuses from the start: the preview says so, and nothing can start.
    let refusing = common::StandaloneSandbox::start(
        &dir.path().join("refusing"),
        "100/s",
        &["--key-refused", "0s:10m"],
    );
    let env = [
        ("PLBULK_API_KEY", refusing.key.as_str()),
        ("PLBULK_API_SECRET", refusing.secret.as_str()),
        ("PLBULK_BASE_URL", refusing.url.as_str()),
    ];
    let data = dir.path().join("data-refused");
    let ui = UiServer::start_with(&data, &config, &env, &["--rate", RATE]);
    preview_sample(&mut b, &ui).await;
    b.shot("refused-preview").await;
    let why = b.text("#unread").await;
    assert!(
        why.contains("could not be read") && why.contains("refused key \"job-test-key\""),
        "{why}"
    );
    let on = b.text("#on").await;
    assert!(on.contains(&format!("API key {}", refusing.key)), "{on}");
    assert!(b.text("#cannot-start").await.contains("cannot start"));
    assert!(b.client.find(Locator::Css("#start")).await.is_err());
    assert!(plbulk::job::list(&data.join("jobs")).is_empty());
    assert!(!b.source().await.contains(&refusing.secret));
    drop(ui);

    // The API gone mid-job: said as it happens, and Stop still stops it, resumable.
    let sandbox = common::StandaloneSandbox::start(&dir.path().join("api"), "100/s", &[]);
    let env = [
        ("PLBULK_API_KEY", sandbox.key.as_str()),
        ("PLBULK_API_SECRET", sandbox.secret.as_str()),
        ("PLBULK_BASE_URL", sandbox.url.as_str()),
    ];
    let data = dir.path().join("data-outage");
    let ui = UiServer::start_with(&data, &config, &env, &["--rate", RATE]);
    preview_sample(&mut b, &ui).await;
    b.wait_for("#confirm").await.click().await.unwrap();
    b.wait_for("#start").await.click().await.unwrap();
    b.wait_for("#progress").await;
    b.wait_text("#progress-head", 20, |t| !t.starts_with("0 of"))
        .await;
    let secret = sandbox.secret.clone();
    drop(sandbox);
    let down = b
        .wait_text("#progress", 30, |t| t.contains("The API is not answering"))
        .await;
    assert!(down.contains("nothing is lost"), "{down}");
    b.shot("outage").await;
    b.wait_for("#stop").await.click().await.unwrap();
    b.wait_text("#ended", 30, |t| t.contains("Stopped as you asked"))
        .await;
    assert_eq!(b.text("#job-state").await, "interrupted");
    b.shot("stopped").await;

    // Given up from its page: abandoned, and now undoable, as `plbulk abandon` leaves it.
    b.wait_for("form[action$='/abandon'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#job-state", 20, |t| t == "abandoned").await;
    b.wait_for("a.undo").await;
    assert!(b
        .client
        .find(Locator::Css("form[action$='/resume']"))
        .await
        .is_err());
    assert!(!b.source().await.contains(&secret));
    b.shot("abandoned").await;
    b.close().await;
}

/// Issue 22, with `plbulk run`'s choices: a file with errors runs its valid rows only
/// (`--skip-invalid`) and a create that finds its customer there updates it (`--existing
/// update`), chosen on the preview and recorded by the job as the flags record them.
#[tokio::test(flavor = "multi_thread")]
async fn the_valid_rows_run_with_the_choices_made_on_the_preview() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ui = UiServer::start_with(&data, &no_config(dir.path()), &[], &["--rate", "6000/min"]);
    let mut b = Browser::start("choices", dir.path()).await;
    b.goto(&ui.url).await;
    b.wait_for("#file-input")
        .await
        .send_keys(&sample("broken.xlsx").display().to_string())
        .await
        .unwrap();
    b.wait_for("#check-file").await.click().await.unwrap();
    assert!(b.text("#verdict").await.contains("cannot run yet"));
    b.wait_for("#preview-valid").await.click().await.unwrap();
    b.wait_for("#effects").await;
    assert!(b
        .wait_for("#skip-invalid")
        .await
        .prop("checked")
        .await
        .unwrap()
        .is_some_and(|v| v == "true"));
    b.wait_for("#existing option[value='update']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("#preview-again").await.click().await.unwrap();
    b.wait_for("#effects").await;
    let url = b.client.current_url().await.unwrap();
    let query = url.query().unwrap_or_default().to_string();
    assert!(
        query.contains("existing=update") && query.contains("skip_invalid=yes"),
        "{query}"
    );
    assert!(b
        .source()
        .await
        .contains("plbulk run --dry-run broken.xlsx --existing update --skip-invalid"));
    b.shot("preview").await;
    b.wait_for("#start").await.click().await.unwrap();
    b.wait_text("#job-state", 60, |t| t == "finished").await;
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("2 succeeded") && summary.contains("22 invalid"),
        "{summary}"
    );
    b.shot("results").await;
    let id = job_id(&b).await;
    let options = plbulk::job::find(&data.join("jobs"), Some(&id))
        .unwrap()
        .options()
        .unwrap();
    assert!(options.skip_invalid);
    assert_eq!(options.existing, plbulk::engine::Existing::Update);
    b.close().await;
}
