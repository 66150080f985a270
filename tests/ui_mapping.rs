//! Mapping files on the page (issue 22, item 2), in a real browser: another system's export
//! dropped with its mapping (samples/migration) is checked, previewed and run on the rehearsal
//! account through it, as `--map` runs it, stopped and resumed with it; and a mapping started
//! from a dropped export is `plbulk map init`'s own, offered to download and used at once.
//! Each page visited is saved to `target/ui-screens/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};

use browser::{Browser, UiServer};
use common::{no_config, run, text, BIN};

fn migration(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join("migration")
        .join(name)
}

/// Picks `file` (and its mapping) in the drop zone and checks it.
async fn check_file(b: &Browser, file: &Path, mapping: Option<&Path>) {
    let input = b.wait_for("#file-input").await;
    input.send_keys(&file.display().to_string()).await.unwrap();
    if let Some(m) = mapping {
        let input = b.wait_for("#mapping-input").await;
        input.send_keys(&m.display().to_string()).await.unwrap();
    }
    b.wait_for("#check-file").await.click().await.unwrap();
    b.wait_for("#verdict").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_dropped_with_its_mapping_runs_through_it_and_resumes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Slow enough to be stopped among its five customers.
    let ui = UiServer::start_with(&data, &no_config(dir.path()), &[], &["--rate", "1/s"]);
    let mut b = Browser::start("mapping-run", dir.path()).await;
    b.goto(&ui.url).await;

    check_file(
        &b,
        &migration("billing-customers.csv"),
        Some(&migration("customers.map.toml")),
    )
    .await;
    b.shot("findings").await;
    let verdict = b.text("#verdict").await;
    assert!(
        verdict.contains("No errors") && verdict.contains("0 warnings"),
        "{verdict}"
    );
    assert_eq!(b.text("#mapping-name").await, "customers.map.toml");
    assert!(b.text("#sheets").await.contains("Customers"));
    assert!(b.source().await.contains("--map customers.map.toml"));
    // The mapping is kept as the file is: in the data folder, its owner's alone.
    let kept: Vec<PathBuf> = walk(&data.join("ui").join("uploads"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let text_kept = std::fs::read_to_string(&kept[0]).unwrap();
    assert_eq!(
        text_kept,
        std::fs::read_to_string(migration("customers.map.toml")).unwrap()
    );

    b.wait_for("#preview").await.click().await.unwrap();
    let effects = b.text("#effects").await;
    b.shot("preview").await;
    assert!(
        b.text("#preflight")
            .await
            .contains("has what every row needs"),
        "{}",
        b.text("#preflight").await
    );
    assert!(effects.contains("Add Customer"), "{effects}");
    assert!(b.text("#at-limit").await.contains("5 write calls"));

    b.wait_for("#start").await.click().await.unwrap();
    b.wait_for("#progress").await;
    let url = b.client.current_url().await.unwrap();
    let id = url.path().trim_start_matches("/jobs/").to_string();
    // The job recorded the mapping, as `--map` records it: where it is kept, and its text.
    let job = plbulk::job::find(&data.join("jobs"), Some(&id)).unwrap();
    let map = job
        .options()
        .unwrap()
        .map
        .expect("the job records its mapping");
    assert_eq!(map.path, kept[0]);
    assert_eq!(map.text, text_kept);

    b.wait_for("#stop").await.click().await.unwrap();
    b.wait_text("#ended", 30, |t| t.contains("Stopped as you asked"))
        .await;
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("not run"),
        "stopped too late to test: {summary}"
    );
    b.shot("stopped").await;
    // Resumed from the page: through the mapping the job recorded, checked where it is kept.
    b.wait_for("form[action$='/resume'] button")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#ended", 60, |t| t.contains("every row")).await;
    assert_eq!(b.text("#job-state").await, "finished");
    let summary = b.text("#summary").await;
    assert!(
        summary.contains("5 succeeded") && !summary.contains("not run"),
        "{summary}"
    );
    b.shot("results").await;
    let href = b
        .wait_for("#download-results")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let saved = dir.path().join("downloaded.results.xlsx");
    std::fs::write(&saved, b.fetch(&href).await).unwrap();
    let book = common::sheet_rows(&saved, "Customers");
    assert_eq!(book.len(), 6, "{book:?}");
    // In the export's own columns, as `--map` writes them.
    assert!(book[0].iter().any(|h| h == "Account Name"), "{:?}", book[0]);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_started_from_a_dropped_export_is_map_inits_and_is_used_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ui = UiServer::start(&data, &no_config(dir.path()), &[]);
    let mut b = Browser::start("mapping-init", dir.path()).await;
    b.goto(&ui.url).await;

    check_file(&b, &migration("users-export.csv"), None).await;
    b.shot("without").await;
    b.wait_for("#map-init").await.click().await.unwrap();
    let guessed = b.text("#guessed").await;
    b.shot("started").await;
    assert!(guessed.contains("Users rows"), "{guessed}");
    b.wait_for("#not-guessed").await;

    // The text offered is the one `plbulk map init` writes for the same export.
    let href = b
        .wait_for("#mapping-download")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let offered = String::from_utf8(b.fetch(&href).await).unwrap();
    let cli = dir.path().join("cli");
    std::fs::create_dir_all(&cli).unwrap();
    std::fs::copy(migration("users-export.csv"), cli.join("users-export.csv")).unwrap();
    let o = run(std::process::Command::new(BIN).current_dir(&cli).args([
        "map",
        "init",
        "users-export.csv",
        "--out",
        "users-export.map.toml",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        offered,
        std::fs::read_to_string(cli.join("users-export.map.toml")).unwrap()
    );

    // Used at once: the export checked through it.
    b.wait_for("#use-mapping").await.click().await.unwrap();
    b.wait_for("#verdict").await;
    assert_eq!(b.text("#mapping-name").await, "users-export.map.toml");
    assert!(b.text("#sheets").await.contains("Users"));
    b.shot("used").await;
    b.close().await;
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
