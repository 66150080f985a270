//! Issue 14, through the real binary: a closed pipe ends a verb quietly; `--json` documents
//! parse back; completions, the man page and help examples are there; the results workbook has
//! each sheet's own id columns, date cells, print setup and a chart; `plbulk check` says what
//! works and what is wrong.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use calamine::{open_workbook_auto, Data, Reader};
use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_plbulk");

fn plbulk(data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("PLBULK_DATA_DIR", data)
        .env("PLBULK_CONFIG", no_config(data))
        .env_remove("PLBULK_JOB_DIR")
        .env_remove("PLBULK_API_KEY")
        .env_remove("PLBULK_API_SECRET")
        .env_remove("PLBULK_BASE_URL");
    c
}

/// The onboarding sample run on the in-process sandbox, quickly: (its folder, the data folder,
/// the stdout of `run --json`).
fn sample_job(dir: &Path) -> (std::path::PathBuf, String) {
    let file = dir.join("onboarding.xlsx");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/onboarding.xlsx"),
        &file,
    )
    .unwrap();
    let data = dir.join("data");
    let out =
        run(plbulk(&data)
            .arg("run")
            .arg(&file)
            .args(["--sandbox", "--rate", "6000/1m", "--json"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    (data, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["completions", "bash"][..],
        &["man"][..],
        &["jobs"][..],
        &["jobs", "--json"][..],
        &["--help"][..],
    ] {
        let mut child = plbulk(dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes before a line is written, as `| head -0` would.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
    }
}

/// The README says a job whose stdout goes away runs on to its end: it does, and its results
/// are written.
#[test]
fn a_job_whose_stdout_closes_runs_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("onboarding.xlsx");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/onboarding.xlsx"),
        &file,
    )
    .unwrap();
    let mut child = plbulk(&dir.path().join("data"))
        .arg("run")
        .arg(&file)
        .args(["--sandbox", "--rate", "6000/1m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{err}");
    let results = sheet_rows(&dir.path().join("onboarding.results.xlsx"), "Users");
    let outcome = results[0].iter().position(|h| h == "Outcome").unwrap();
    assert!(results[1..].iter().all(|r| r[outcome] == "succeeded"));
}

#[test]
fn run_status_and_jobs_print_json_that_parses_back() {
    let dir = tempfile::tempdir().unwrap();
    let (data, stdout) = sample_job(dir.path());
    let run: Value = serde_json::from_str(&stdout).expect("run --json prints one JSON document");
    assert_eq!(run["schema"], 1);
    assert_eq!(run["state"], "finished");
    assert_eq!(run["endpoint"]["sandbox"], true);
    let rows = run["rows"].as_u64().unwrap();
    assert!(rows > 50, "{run}");
    assert_eq!(
        run["outcomes"]["succeeded"].as_u64().unwrap(),
        rows,
        "{run}"
    );
    assert_eq!(run["outcomes"]["failed"], 0);
    assert_eq!(run["pending"], 0);
    assert!(run["calls"].as_u64().unwrap() >= run["writes_sent"].as_u64().unwrap());
    let per_sheet: u64 = run["sheets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcomes"]["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(per_sheet, rows);
    assert!(run["inputs"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("onboarding.xlsx"));

    let id = run["id"].as_str().unwrap();
    let out = plbulk(&data)
        .args(["status", id, "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["id"], id);
    assert_eq!(status["outcomes"], run["outcomes"]);
    assert_eq!(status["calls"], Value::Null, "only the run knows its calls");

    let out = plbulk(&data).args(["jobs", "--json"]).output().unwrap();
    let jobs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(jobs["schema"], 1);
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(jobs["jobs"][0]["id"], id);
}

#[test]
fn completions_man_page_and_help_examples_are_there() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = plbulk(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.len() > 1000, "{shell}: {script}");
        assert!(script.contains("undo"), "{shell} completes the verbs");
    }
    let out = plbulk(dir.path()).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH plbulk 1"), "{page}");
    for verb in ["run", "resume", "undo", "validate", "export", "check"] {
        let out = plbulk(dir.path()).args([verb, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let examples = help.split("Examples:").nth(1).unwrap_or("");
        assert!(
            examples.matches("plbulk ").count() >= 2,
            "{verb} --help ends with examples:\n{help}"
        );
    }
}

#[test]
fn the_results_workbook_reads_at_a_glance_and_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, _) = sample_job(dir.path());
    let path = dir.path().join("onboarding.results.xlsx");
    let mut wb = open_workbook_auto(&path).unwrap();
    let expect: &[(&str, &[&str])] = &[
        ("Customers", &["Customer ID (result)"]),
        ("Users", &["Customer ID (result)", "User ID (result)"]),
        (
            "Numbers",
            &[
                "Customer ID (result)",
                "User ID (result)",
                "Number ID (result)",
            ],
        ),
        ("Orders", &["Customer ID (result)", "Order ID (result)"]),
        ("Partner Users", &["Partner User ID (result)"]),
    ];
    for (sheet, ids) in expect {
        let range = wb.worksheet_range(sheet).unwrap();
        let header: Vec<String> = range
            .rows()
            .next()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let got: Vec<&str> = header
            .iter()
            .map(String::as_str)
            .filter(|h| h.ends_with(" (result)"))
            .collect();
        assert_eq!(&got, ids, "{sheet}");
        let finished = header.iter().position(|h| h == "Finished").unwrap();
        for row in range.rows().skip(1) {
            assert!(
                matches!(row[finished], Data::DateTime(_)),
                "{sheet}: Finished is {:?}, not a date-time cell",
                row[finished]
            );
        }
    }

    let file = std::fs::File::open(&path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut part = |name: &str| -> String {
        let mut s = String::new();
        zip.by_name(name)
            .unwrap_or_else(|_| panic!("no {name} in the workbook"))
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let chart = part("xl/charts/chart1.xml");
    assert!(chart.contains("<c:barChart>"), "{chart}");
    assert!(chart.contains("<c:grouping val=\"stacked\"/>"), "{chart}");
    let workbook = part("xl/workbook.xml");
    assert!(workbook.contains("_xlnm.Print_Titles"), "{workbook}");
    for n in 1..=9 {
        let sheet = part(&format!("xl/worksheets/sheet{n}.xml"));
        assert!(sheet.contains("orientation=\"landscape\""), "sheet{n}");
        assert!(sheet.contains("fitToHeight=\"0\""), "sheet{n}");
        assert!(sheet.contains("<pageSetUpPr fitToPage=\"1\"/>"), "sheet{n}");
    }
}

#[test]
fn check_says_which_endpoint_and_key_or_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = StandaloneSandbox::start(dir.path(), "100/min", &[]);
    let data = dir.path().join("data");
    let out = run(sandbox.plbulk(&data).arg("check"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("Endpoint: {}", sandbox.url)),
        "{said}"
    );
    assert!(
        said.contains(&format!("API key:  {}", sandbox.key)),
        "{said}"
    );
    assert!(said.contains("customers"), "{said}");
    assert!(!said.contains(&sandbox.secret), "the secret was printed");

    let out = run(sandbox
        .plbulk(&data)
        .env("PLBULK_API_SECRET", "wrong-secret-value")
        .arg("check"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("refused key job-test-key's secret"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("wrong-secret-value"));

    let out = run(plbulk(&data)
        .env("PLBULK_BASE_URL", &sandbox.url)
        .arg("check"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no API key is set"), "{}", text(&out));

    // Nothing listens on port 9 of loopback.
    let out = run(sandbox
        .plbulk(&data)
        .env("PLBULK_BASE_URL", "http://127.0.0.1:9")
        .args(["check", "--timeout", "2s"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach http://127.0.0.1:9"),
        "{}",
        text(&out)
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "api_key = \"{}\"\napi_secret = \"{}\"\nbase_url = \"{}\"\n",
                sandbox.key, sandbox.secret, sandbox.url
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = run(plbulk(&data).env("PLBULK_CONFIG", &config).arg("check"));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("chmod 600"), "{}", text(&out));
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = run(plbulk(&data).env("PLBULK_CONFIG", &config).arg("check"));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("from {}", config.display()))
        );
    }
}
