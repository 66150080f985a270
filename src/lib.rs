//! plbulk: bulk jobs from spreadsheets against the PhoneLine+ (PL+) Partner API.
//!
//! # Layout
//!
//! Data flows one way: file → rows → validated operations → plan → journal → engine → results.
//! The modules, in the order data meets them:
//!
//! - [`schema`]: the sheets, their columns and each kind's actions: one table for reading,
//!   validating, templates and reports.
//! - [`intake`]: files to sheets of rows (CSV in any usual encoding and delimiter; workbooks
//!   through calamine), each row's cells as the user meant them.
//! - [`validate`]: every cell and every row checked before any call, one checker per kind,
//!   each handing over its row's typed [`validate::Op`] (values cleaned, actions parsed) and a
//!   final verdict, with [`findings`] that name file, sheet, row, column and what to do;
//!   [`report`] and [`templates`] write the validation report and the import templates.
//! - [`plan`]: validated operations to the work each stands for: references resolved to rows
//!   of the job or left for the account, dependencies, phases, orders grouped.
//! - [`preflight`]: what only the account knows, checked with paced List calls before any
//!   write.
//! - [`journal`]: the job's SQLite journal (all the SQL) and the per-key call budget; [`job`]:
//!   job folders, the lock on an input, and the connection a job runs on.
//! - [`engine`]: runs a journaled plan, every row exactly once, reconciling what may have
//!   happened before sending again; [`failpoint`] lets tests kill it at each step.
//! - [`contract`]: the API as plbulk understands it. Every assumed path and field name lives
//!   here and nowhere else, so meeting the real reference is a one-file change.
//! - [`pacing`]: the per-key limit (100 calls a minute by default) as a strict sliding window.
//! - [`client`]: a typed async client for every operation: auth and token refresh, retries,
//!   and failures sorted into transient, final and *outcome unknown*.
//! - [`results`], [`progress`] and [`export`]: the results workbook, the to-fix file and
//!   CSV results; progress on the terminal; the account read back into import templates.
//!   [`sheet_names`] keeps every workbook's sheet names as Excel allows.
//! - [`sandbox`]: an in-memory server implementing the whole contract, with the real limit and
//!   injectable faults, for tests, benchmarks and partners' rehearsals.
//! - [`cli`] and [`cmd`]: argument parsing, and one module per verb that calls into the above.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod contract;
pub mod engine;
pub mod export;
pub mod failpoint;
pub mod findings;
pub mod intake;
pub mod job;
pub mod journal;
pub mod pacing;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod results;
pub mod sandbox;
pub mod schema;
pub mod sheet_names;
pub mod status;
pub mod templates;
pub mod undo;
pub mod validate;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash mid-write never leaves a half file where a good one was.
pub fn atomic_write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.plbulk-tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
