//! `plbulk ui` in a real browser: the binary serves the page on loopback, and a headless
//! Chromium (over WebDriver) opens it with the token, drops files, reads their findings on
//! their cells, lists a job the CLI ran, and types a key that the sandbox checks. Each page
//! visited is saved to `target/ui-screens/` for a reviewer to look at.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};

use browser::{Browser, UiServer};
use common::{no_config, run, text, StandaloneSandbox, BIN};
use fantoccini::Locator;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// Picks `file` in the drop zone and checks it, as a partner who does not drag would.
async fn check_file(b: &Browser, file: &Path) {
    let input = b.wait_for("#file-input").await;
    input.send_keys(&file.display().to_string()).await.unwrap();
    b.wait_for("#check-file").await.click().await.unwrap();
    b.wait_for("#verdict").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_file_shows_its_findings_on_its_own_cells_and_a_fixed_one_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ui = UiServer::start(&data, &no_config(dir.path()), &[]);
    let mut b = Browser::start("findings", dir.path()).await;

    b.goto(&ui.url).await;
    // The token went into a cookie, and out of the address.
    let at = b.client.current_url().await.unwrap();
    assert_eq!(at.as_str(), format!("{}/", ui.origin));
    assert!(b.text(".banner").await.contains("Rehearsal"));
    b.shot("start").await;

    check_file(&b, &sample("broken.xlsx")).await;
    b.shot("broken").await;
    let verdict = b.text("#verdict").await;
    assert!(
        verdict.contains("cannot run yet") && verdict.contains("36 errors"),
        "{verdict}"
    );
    let sheets = b.text("#sheets").await;
    assert!(
        sheets.contains("Customers") && sheets.contains("Partner Users"),
        "{sheets}"
    );
    // Customers row 3: Contract Months 18, marked on its cell among the row's own cells, with
    // the row's other findings on the same card.
    let card = b
        .wait_for(r#"article[data-sheet="Customers"][data-row="3"]"#)
        .await;
    let said = card
        .find(Locator::Css(r#"li[data-column="I"]"#))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        said.contains("column I (Contract Months)") && said.contains("is not a contract length"),
        "{said}"
    );
    let bad = card
        .find(Locator::Css(r#"td.bad[data-column="I"]"#))
        .await
        .unwrap();
    let bad_text = bad.text().await.unwrap();
    assert!(bad_text.trim().ends_with("18"), "{bad_text}");
    assert_eq!(
        bad.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    let marked = card.find_all(Locator::Css("td.bad")).await.unwrap();
    // Ref (a repeat), Contract Months, and the address missing: Address Line 1, Town, Postcode.
    assert_eq!(marked.len(), 5);
    // The row is the partner's: its company is there, unmarked, beside the cells.
    let row = card
        .find(Locator::Css("tbody tr"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        row.contains("Bolt Ltd") && row.contains("ops@bolt.example"),
        "{row}"
    );
    let report = b
        .wait_for("#report")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(report.ends_with("/report"), "{report}");
    // Kept in the data folder, the partner's alone.
    let kept = common::files_under(&data.join("ui").join("uploads"));
    let xlsx: Vec<_> = kept.iter().filter(|p| p.ends_with("broken.xlsx")).collect();
    assert_eq!(xlsx.len(), 1, "{kept:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(xlsx[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Fixed in Excel and dropped again: no errors.
    check_file(&b, &sample("onboarding.xlsx")).await;
    b.shot("onboarding").await;
    let verdict = b.text("#verdict").await;
    assert!(
        verdict.contains("No errors") && verdict.contains("0 errors"),
        "{verdict}"
    );
    assert!(b
        .client
        .find_all(Locator::Css("article.sev-error"))
        .await
        .unwrap()
        .is_empty());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jobs_page_lists_a_job_the_terminal_ran() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = no_config(dir.path());
    let input = dir.path().join("onboarding.xlsx");
    std::fs::copy(sample("onboarding.xlsx"), &input).unwrap();
    let out = run(std::process::Command::new(BIN)
        .args(["run", "--sandbox", "--rate", "6000/min", "-q"])
        .arg(&input)
        .env("PLBULK_DATA_DIR", &data)
        .env("PLBULK_CONFIG", &config)
        .env_remove("PLBULK_JOB_DIR"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let job = plbulk::job::list(&data.join("jobs")).pop().unwrap().meta.id;

    let ui = UiServer::start(&data, &config, &[]);
    let mut b = Browser::start("jobs", dir.path()).await;
    b.goto(&ui.url).await;
    b.wait_for("nav a[href='/jobs']")
        .await
        .click()
        .await
        .unwrap();
    let row = b.text(&format!("tr[data-job='{job}']")).await;
    b.shot("jobs").await;
    assert!(row.contains("finished"), "{row}");
    assert!(row.contains("rehearsal"), "{row}");
    assert!(row.contains("onboarding.xlsx"), "{row}");
    assert!(row.contains("succeeded"), "{row}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_typed_in_is_checked_saved_private_and_never_shown_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sandbox = StandaloneSandbox::start(dir.path(), "6000/min", &[]);
    // A partner who has never seen a config file: the one named is not there yet.
    let config = dir.path().join("conf").join("config.toml");
    let ui = UiServer::start(&data, &config, &[("PLBULK_BASE_URL", &sandbox.url)]);
    let mut b = Browser::start("account", dir.path()).await;
    b.goto(&ui.url).await;
    b.wait_for("nav a[href='/account']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("#api_key").await;
    b.shot("account-empty").await;

    // A secret mistyped: refused by the API, nothing saved, the secret not sent back.
    let wrong = "not-the-secret-91f3";
    b.wait_for("#api_key")
        .await
        .send_keys(&sandbox.key)
        .await
        .unwrap();
    b.wait_for("#api_secret")
        .await
        .send_keys(wrong)
        .await
        .unwrap();
    b.wait_for("#save-key").await.click().await.unwrap();
    let error = b.text("#key-error").await;
    b.shot("account-refused").await;
    assert!(error.contains("refused"), "{error}");
    assert!(!config.exists());
    assert!(!b.source().await.contains(wrong));
    assert_eq!(
        b.wait_for("#api_key")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(sandbox.key.as_str())
    );

    // The secret as the portal shows it (with the space a copy brings along).
    b.wait_for("#api_secret")
        .await
        .send_keys(&format!("{} ", sandbox.secret))
        .await
        .unwrap();
    b.wait_for("#save-key").await.click().await.unwrap();
    let saved = b.text("p.ok").await;
    assert!(saved.contains("saved"), "{saved}");
    // Saved, its owner's alone; the rehearsal banner gone, the key named.
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains(&sandbox.secret) && written.contains(&sandbox.key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(b
        .client
        .find_all(Locator::Css(".banner"))
        .await
        .unwrap()
        .is_empty());
    b.wait_for("#check").await.click().await.unwrap();
    let checked = b
        .client
        .wait()
        .for_element(Locator::Css("#check-result p.ok"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    b.shot("account-saved").await;
    assert!(
        checked.contains(&format!("key {} authenticates", sandbox.key)),
        "{checked}"
    );
    for page in ["/", "/account", "/jobs"] {
        b.goto(&format!("{}{page}", ui.origin)).await;
        let html = b.source().await;
        assert!(!html.contains(&sandbox.secret), "{page} shows the secret");
        assert!(!html.contains(wrong), "{page} shows the mistyped secret");
    }
    // The terminal reads the same account from the file the page wrote.
    let out = run(std::process::Command::new(BIN)
        .arg("check")
        .env("PLBULK_DATA_DIR", &data)
        .env("PLBULK_CONFIG", &config)
        .env("PLBULK_BASE_URL", &sandbox.url)
        .env_remove("PLBULK_API_KEY")
        .env_remove("PLBULK_API_SECRET"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    b.close().await;
}
