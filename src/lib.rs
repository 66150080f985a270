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
//! - [`journal`]: the job's SQLite journal (all the SQL), the per-key call budget, and the
//!   claims by which jobs on one account never make one thing twice; [`job`]: job folders,
//!   the lock on an input, and the connection a job runs on.
//! - [`engine`]: runs a journaled plan, every row exactly once, reconciling what may have
//!   happened before sending again; [`failpoint`] lets tests kill it at each step.
//! - [`contract`]: the API as plbulk understands it. Every assumed path and field name lives
//!   here and nowhere else, so meeting the real reference is a one-file change.
//! - [`pacing`]: the per-key limit (100 calls a minute by default) as a strict sliding window.
//! - [`client`]: a typed async client for every operation: auth and token refresh, retries,
//!   failures sorted into transient, final and *outcome unknown*, and the API's health (an
//!   outage or a refused key is the job's, not a row's).
//! - [`results`], [`progress`] and [`export`]: the results workbook, the to-fix file and
//!   CSV results; progress on the terminal; the account read back into import templates.
//!   [`sheet_names`] keeps every workbook's sheet names as Excel allows; [`outputs`] decides
//!   where each of them is written and refuses to replace a file the partner made.
//! - [`sandbox`]: an in-memory server implementing the whole contract, with the real limit and
//!   injectable faults (outages and refused keys among them), for tests, benchmarks and
//!   partners' rehearsals; [`rehearsal`]: the rehearsal accounts it keeps on disk between
//!   processes, and which process has one open.
//! - [`account`]: which account and key plbulk works on, checked, and a typed key saved.
//! - [`ui`]: `plbulk ui`, the local web page: the same library calls as the verbs, served on
//!   loopback behind a token.
//! - [`pipeline`]: the job's steps in order (read, validate, plan, lock, pre-flight, journal,
//!   engine, results) as plain functions, with the events of a running job: what every verb
//!   that runs a job calls, and what the page's job pages will. Start reading there.
//! - [`cli`] and [`cmd`]: argument parsing, and one module per verb that calls into the above.

pub mod account;
pub mod actions;
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
pub mod model;
pub mod outputs;
pub mod pacing;
pub mod paper;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod rehearsal;
pub mod report;
pub mod results;
pub mod sandbox;
pub mod schema;
pub mod sheet_names;
pub mod status;
pub mod templates;
pub mod ui;
pub mod undo;
pub mod validate;
pub mod words;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// crash mid-write never leaves a half file where a good one was.
///
/// What plbulk writes holds customer data, so the temporary file is its owner's alone from
/// the moment it exists (a new file stays so; one replaced keeps the permissions it had). A
/// process killed mid-write leaves its temporary file behind, and nothing else would ever
/// remove it: each write first removes those left for the same target by processes that
/// have ended, and any old enough to be sure no write is still under way.
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
    temp::remove_stale(dir, &name);
    let (tmp, mut f) = temp::create(dir, &name)?;
    let result = (|| {
        f.write_all(bytes)?;
        if let Ok(was) = std::fs::metadata(path) {
            f.set_permissions(was.permissions())?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary files of [`atomic_write`]: `.NAME.PID.N.plbulk-tmp` beside the target, so
/// that a later write can tell which target and which process one was for.
mod temp {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    const SUFFIX: &str = ".plbulk-tmp";

    /// Past this age a temporary file is a dead process's whatever its process id says: a
    /// write takes well under a second, and a live process may have been given the id of the
    /// dead one.
    const STALE: Duration = Duration::from_secs(10 * 60);

    /// Creates a temporary file for target `name` in `dir`, readable and writable by its
    /// owner only. The count keeps two threads of one process writing one target apart.
    pub(crate) fn create(dir: &Path, name: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}{SUFFIX}", std::process::id()));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        match o.open(&tmp) {
            Ok(f) => Ok((tmp, f)),
            // A dead process with this id and count left it: it is no one's.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                o.open(&tmp).map(|f| (tmp, f))
            }
            Err(e) => Err(e),
        }
    }

    /// The process that wrote a temporary file for target `name`, if `file` is one.
    fn writer(file: &str, name: &str) -> Option<u32> {
        let middle = file
            .strip_prefix('.')?
            .strip_prefix(name)?
            .strip_prefix('.')?
            .strip_suffix(SUFFIX)?;
        // `PID.N`, or `PID` as plbulk named them before the count.
        middle.split('.').next()?.parse().ok()
    }

    /// Removes the temporary files for target `name` that no write is still using. Failing to
    /// remove one loses nothing: the write goes on.
    pub(crate) fn remove_stale(dir: &Path, name: &str) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let me = std::process::id();
        for e in entries.flatten() {
            let file = e.file_name();
            let Some(pid) = writer(&file.to_string_lossy(), name) else {
                continue;
            };
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE);
            if old || (pid != me && !alive(pid)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Whether process `pid` is running. Where that cannot be told, it may be: its temporary
    /// file is left until it is old.
    fn alive(pid: u32) -> bool {
        #[cfg(target_os = "linux")]
        {
            Path::new("/proc").join(pid.to_string()).exists()
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = pid;
            true
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn temporary_names_say_target_and_process() {
            assert_eq!(writer(".r.xlsx.42.0.plbulk-tmp", "r.xlsx"), Some(42));
            assert_eq!(writer(".r.xlsx.42.plbulk-tmp", "r.xlsx"), Some(42));
            assert_eq!(writer(".r.xlsx.42.0.plbulk-tmp", "s.xlsx"), None);
            assert_eq!(writer(".r.xlsx.x.plbulk-tmp", "r.xlsx"), None);
            assert_eq!(writer("r.xlsx", "r.xlsx"), None);
        }

        /// Reported: "A temporary results file left by a kill stays beside the user's files,
        /// mode 0644, holding customer data."
        #[cfg(unix)]
        #[test]
        fn a_temporary_file_is_its_owners_alone() {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let (tmp, f) = create(dir.path(), "r.xlsx").unwrap();
            drop(f);
            let mode = std::fs::metadata(&tmp).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }

        #[cfg(unix)]
        #[test]
        fn a_new_file_stays_private_and_a_replaced_one_keeps_its_mode() {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let new = dir.path().join("new.xlsx");
            crate::atomic_write(&new, b"a").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&new), 0o600);
            let shared = dir.path().join("shared.xlsx");
            std::fs::write(&shared, b"old").unwrap();
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
            crate::atomic_write(&shared, b"new").unwrap();
            assert_eq!(mode(&shared), 0o640);
            assert_eq!(std::fs::read(&shared).unwrap(), b"new");
        }

        #[test]
        fn a_write_removes_what_dead_processes_left_for_its_target() {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let plant = |n: &str| {
                std::fs::write(d.join(n), b"customer data").unwrap();
                d.join(n)
            };
            // No process has this id (above Linux's pid_max).
            let dead = plant(".r.xlsx.4999999.0.plbulk-tmp");
            let dead_old_name = plant(".r.xlsx.4999998.plbulk-tmp");
            // Ours, and old: a process before us had our id.
            let ours_old = plant(&format!(".r.xlsx.{}.7.plbulk-tmp", std::process::id()));
            let f = std::fs::File::options()
                .write(true)
                .open(&ours_old)
                .unwrap();
            f.set_modified(std::time::SystemTime::now() - 2 * STALE)
                .unwrap();
            // Another target's, and the user's own file.
            let other = plant(".s.xlsx.4999999.0.plbulk-tmp");
            let users = plant("r.xlsx.bak");
            crate::atomic_write(&d.join("r.xlsx"), b"results").unwrap();
            for gone in [&dead, &dead_old_name, &ours_old] {
                assert!(!gone.exists(), "{} was left", gone.display());
            }
            for kept in [&other, &users] {
                assert!(kept.exists(), "{} was removed", kept.display());
            }
            let left: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(SUFFIX) && n.starts_with(".r.xlsx."))
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }

        /// A write under way in another live process is not broken by this one's.
        #[cfg(target_os = "linux")]
        #[test]
        fn a_live_processs_fresh_temporary_file_is_left_alone() {
            let dir = tempfile::tempdir().unwrap();
            let live = dir.path().join(".r.xlsx.1.0.plbulk-tmp");
            std::fs::write(&live, b"being written").unwrap();
            crate::atomic_write(&dir.path().join("r.xlsx"), b"results").unwrap();
            assert!(live.exists());
        }
    }
}
