//! Where plbulk writes, and what it will not overwrite.
//!
//! Every verb that writes a file (template, validate's report, a job's results and to-fix,
//! `plbulk results`, undo's results, export, `map init`'s mapping) asks this module first, so the rules are the same
//! everywhere and are checked before anything is sent:
//!
//! - an output is never one of the job's inputs, even with `--overwrite`: the partner's rows
//!   would be gone;
//! - an output's folder must exist and take a new file, and the output must not be a folder;
//!   this is proved by making and removing a file there, so a run never finds out after its
//!   last row that its results cannot be written;
//! - a file plbulk did not write for this very purpose is replaced only with `--overwrite`, and
//!   so is any file at an export's or a mapping's path: a partner edits those;
//! - a results workbook of an earlier job (its Summary names the job), or the path where an
//!   unfinished job will write its own, is never taken by a new job: the new one's results go
//!   beside it, named for the time the run began (`onboarding.20261201-093000.results.xlsx`),
//!   and the run says so;
//! - a to-fix file is replaced only if it is this job's and nobody has changed it since plbulk
//!   wrote it (the job's folder records each one's size and time): the partner fixes rows in
//!   it, and those fixes are work.

use std::path::{Path, PathBuf};

use calamine::{Data, Reader};

/// A refusal to write an output, saying which file and what to do. Nothing was written or
/// sent when it is returned.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Which output a path is for, as the messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Template,
    Report,
    Results,
    Export,
    Mapping,
}

impl Output {
    fn words(self) -> &'static str {
        match self {
            Output::Template => "the template",
            Output::Report => "the report",
            Output::Results => "the results workbook",
            Output::Export => "the export",
            Output::Mapping => "the mapping",
        }
    }

    /// The flag that names this output elsewhere.
    fn flag(self) -> &'static str {
        match self {
            Output::Template | Output::Export | Output::Mapping => "--out",
            Output::Report => "--report",
            Output::Results => "--results",
        }
    }
}

/// The file named by `p`, for a message.
fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Whether `a` and `b` name one file: the same file on disk (through links, `..` or another
/// spelling), or, when `a` does not exist yet, the same absolute path.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(ma), Ok(mb)) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                ma.dev() == mb.dev() && ma.ino() == mb.ino()
            }
            #[cfg(not(unix))]
            {
                let _ = (ma, mb);
                matches!(
                    (std::fs::canonicalize(a), std::fs::canonicalize(b)),
                    (Ok(x), Ok(y)) if x == y
                )
            }
        }
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// Refuses `out` if it is one of `inputs`, whatever `--overwrite` says.
pub fn not_an_input<P: AsRef<Path>>(out: &Path, inputs: &[P], what: Output) -> Result<(), Refused> {
    if let Some(input) = inputs.iter().find(|i| same_file(out, i.as_ref())) {
        return Err(Refused(format!(
            "{} would be written to {}, which is an input of this job: it would replace the rows in it. Nothing was written or sent. Give another {}",
            what.words(),
            shown(input.as_ref()),
            what.flag()
        )));
    }
    Ok(())
}

/// Refuses unless a file can be written at `out`: it is not a folder, its folder exists and
/// takes a new file (made and removed to be sure), and an existing file there is not
/// read-only.
pub fn writable(out: &Path, what: Output) -> Result<(), Refused> {
    if out.is_dir() {
        return Err(Refused(format!(
            "{} would be written to {}, which is a folder: give a file name, such as {}",
            what.words(),
            shown(out),
            shown(&out.join(match what {
                Output::Report => "report.xlsx",
                Output::Results => "results.xlsx",
                Output::Template | Output::Export => "export.xlsx",
                Output::Mapping => "mapping.toml",
            }))
        )));
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Refused(format!(
            "{} cannot be written to {}: the folder {} does not exist. Make it, or give another {}",
            what.words(),
            shown(out),
            shown(dir),
            what.flag()
        )));
    }
    if let Err(e) = probe(dir) {
        return Err(Refused(format!(
            "{} cannot be written to {}: the folder {} does not take new files ({e}). Give another {} in a folder you can write to",
            what.words(),
            shown(out),
            shown(dir),
            what.flag()
        )));
    }
    if std::fs::metadata(out).is_ok_and(|m| m.permissions().readonly()) {
        return Err(Refused(format!(
            "{} cannot replace {}: the file is read-only. Make it writable, or give another {}",
            what.words(),
            shown(out),
            what.flag()
        )));
    }
    Ok(())
}

/// Makes a file in `dir` and removes it: the one sure test that a write there will work.
fn probe(dir: &Path) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let p = dir.join(format!(
        ".plbulk-probe.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&p)?;
    std::fs::remove_file(&p)
}

/// Checks the files a template writes, all before any is written: each one there already is
/// refused (naming them all) unless `overwrite`.
pub fn templates(paths: &[PathBuf], overwrite: bool) -> Result<(), Refused> {
    for p in paths {
        writable(p, Output::Template)?;
    }
    let there: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if there.is_empty() || overwrite {
        return Ok(());
    }
    let names: Vec<String> = there.iter().map(|p| shown(p)).collect();
    Err(Refused(format!(
        "{} there already, and may hold rows you filled in: nothing was written. Give another --out folder, or add --overwrite to replace {}",
        match names.len() {
            1 => format!("{} is", names[0]),
            _ => format!("{} are", names.join(", ")),
        },
        if names.len() == 1 { "it" } else { "them" }
    )))
}

/// How an export is written, chosen by its file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

/// The format an export to `out` is written in, or a refusal naming the extensions taken;
/// and an existing file there is refused unless `overwrite` (an export is edited, then run).
pub fn export(out: &Path, overwrite: bool) -> Result<ExportFormat, Refused> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let format = match ext.as_deref() {
        Some("xlsx") => ExportFormat::Xlsx,
        Some("csv") => ExportFormat::Csv,
        _ => {
            return Err(Refused(format!(
                "cannot export to {}: name a workbook (.xlsx) or a CSV file (.csv), and plbulk writes that",
                shown(out)
            )))
        }
    };
    writable(out, Output::Export)?;
    if out.exists() && !overwrite {
        return Err(Refused(format!(
            "{} is there already, and may hold changes you made to an earlier export: nothing was read or written. Give another --out, or add --overwrite to replace it",
            shown(out)
        )));
    }
    Ok(format)
}

/// Checks the path `map init` writes a mapping to: never one of the exports it reads; a file
/// there (a mapping the partner may have edited) is replaced only with `overwrite`.
pub fn mapping<P: AsRef<Path>>(out: &Path, inputs: &[P], overwrite: bool) -> Result<(), Refused> {
    not_an_input(out, inputs, Output::Mapping)?;
    writable(out, Output::Mapping)?;
    if out.exists() && !overwrite {
        return Err(Refused(format!(
            "{} is there already, and may hold changes you made to the mapping: nothing was written. Give another --out, or add --overwrite to replace it",
            shown(out)
        )));
    }
    Ok(())
}

/// Checks the validation report's path: never an input; a file there is replaced only if it
/// is a report plbulk wrote, or with `overwrite`.
pub fn report<P: AsRef<Path>>(out: &Path, inputs: &[P], overwrite: bool) -> Result<(), Refused> {
    not_an_input(out, inputs, Output::Report)?;
    writable(out, Output::Report)?;
    if out.exists() && !overwrite && !is_report(out) {
        return Err(Refused(format!(
            "{} is there already and is not a validation report plbulk wrote: nothing was written. Give another --report, or add --overwrite to replace it",
            shown(out)
        )));
    }
    Ok(())
}

/// Whether `path` is a validation report: its first sheet is Findings, headed Severity.
fn is_report(path: &Path) -> bool {
    let Ok(mut wb) = calamine::open_workbook_auto(path) else {
        return false;
    };
    let first = wb.sheet_names().first().cloned();
    first.as_deref() == Some("Findings")
        && wb
            .worksheet_range("Findings")
            .ok()
            .and_then(|r| r.get_value((0, 0)).cloned())
            == Some(Data::String("Severity".into()))
}

/// The job whose results workbook `path` is, as its Summary sheet names it (the row headed
/// Job); None for any other file.
pub fn results_job(path: &Path) -> Option<String> {
    let mut wb = calamine::open_workbook_auto(path).ok()?;
    // The results module's first sheet, as it names it.
    let range = wb.worksheet_range("Summary").ok()?;
    // Near the top, wherever the Summary's layout puts it.
    range.rows().take(40).find_map(|row| match row {
        [Data::String(k), Data::String(id), ..] if k == "Job" && !id.trim().is_empty() => {
            Some(id.trim().to_string())
        }
        _ => None,
    })
}

/// Where a new job (a run, an undo) writes its results, decided before its first call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub path: PathBuf,
    /// When the results go beside the file asked for: that file, and why.
    pub beside: Option<(PathBuf, Taken)>,
}

/// Why a new job's results do not go where they were asked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The file there holds this job's results (its Summary names it).
    EarlierResults(String),
    /// This unfinished job will write its results there when it goes on.
    UnfinishedJob(String),
    /// The to-fix file beside it is there, and may hold the partner's fixes.
    ToFix,
}

impl Chosen {
    /// What to tell the partner when the results go beside the file asked for.
    pub fn note(&self) -> Option<String> {
        let (was, why) = self.beside.as_ref()?;
        let to = shown(&self.path);
        Some(match why {
            Taken::EarlierResults(job) => format!(
                "{} holds the results of job {job}, which are kept: this job's results go to {to}",
                shown(was)
            ),
            Taken::UnfinishedJob(job) => format!(
                "{} is kept for the results of job {job}, which has not finished: this job's results go to {to}",
                shown(was)
            ),
            Taken::ToFix => format!(
                "{} is there already (it may hold your fixes), and is kept: this job's results go to {to}, and its to-fix file beside them",
                shown(&crate::results::to_fix_path(was))
            ),
        })
    }
}

/// Where a new job's results go for `requested`: there when neither it nor its to-fix file
/// exists and no unfinished job (`held_by`) will write there (or with `overwrite`, for a file
/// that is not another job's results); beside it, named for `stamp`, otherwise. Refused when
/// the results or the to-fix file would be an input, when the folder cannot be written, or
/// when `requested` is a file plbulk did not write and `overwrite` is not given.
pub fn results_for_new_job<P: AsRef<Path>>(
    requested: &Path,
    inputs: &[P],
    held_by: Option<String>,
    overwrite: bool,
    stamp: &str,
) -> Result<Chosen, Refused> {
    not_an_input(requested, inputs, Output::Results)?;
    to_fix_not_an_input(requested, inputs)?;
    writable(requested, Output::Results)?;
    let to_fix = crate::results::to_fix_path(requested);
    let taken = if let Some(job) = held_by {
        Some(Taken::UnfinishedJob(job))
    } else if requested.exists() {
        match results_job(requested) {
            Some(job) => Some(Taken::EarlierResults(job)),
            None if overwrite => None,
            None => {
                return Err(Refused(format!(
                    "{} is there already and is not a results workbook plbulk wrote: nothing was sent. Give another --results, or add --overwrite to replace it",
                    shown(requested)
                )))
            }
        }
    } else if to_fix.exists() && !overwrite {
        Some(Taken::ToFix)
    } else {
        None
    };
    let Some(why) = taken else {
        return Ok(Chosen {
            path: requested.to_path_buf(),
            beside: None,
        });
    };
    let path = free_beside(requested, stamp, |p| {
        p.exists() || crate::results::to_fix_path(p).exists()
    });
    not_an_input(&path, inputs, Output::Results)?;
    to_fix_not_an_input(&path, inputs)?;
    Ok(Chosen {
        path,
        beside: Some((requested.to_path_buf(), why)),
    })
}

/// Refuses a results path whose to-fix file would be an input (`run x.to-fix.xlsx --results
/// x.results.xlsx` would write the rows left to fix over the fixed ones).
fn to_fix_not_an_input<P: AsRef<Path>>(results: &Path, inputs: &[P]) -> Result<(), Refused> {
    let to_fix = crate::results::to_fix_path(results);
    if let Some(input) = inputs.iter().find(|i| same_file(&to_fix, i.as_ref())) {
        return Err(Refused(format!(
            "with the results at {}, the to-fix file beside them would be {}, which is an input of this job: nothing was sent. Give another --results",
            shown(results),
            shown(input.as_ref())
        )));
    }
    Ok(())
}

/// Checks the results path of an existing job (a resume, `plbulk results`): never an input;
/// a file there is replaced if it is this job's results, or with `overwrite`.
pub fn results_for_job<P: AsRef<Path>>(
    path: &Path,
    job: &str,
    inputs: &[P],
    overwrite: bool,
) -> Result<(), Refused> {
    not_an_input(path, inputs, Output::Results)?;
    writable(path, Output::Results)?;
    if !path.exists() || overwrite {
        return Ok(());
    }
    match results_job(path) {
        Some(j) if j == job => Ok(()),
        Some(other) => Err(Refused(format!(
            "{} holds the results of job {other}, not of job {job}: nothing was written. Give another path, or add --overwrite to replace it",
            shown(path)
        ))),
        None => Err(Refused(format!(
            "{} is there already and is not a results workbook of job {job}: nothing was written. Give another path, or add --overwrite to replace it",
            shown(path)
        ))),
    }
}

/// `DIR/STEM.suffix` for the first input `DIR/STEM.ext`: where reports and results go by
/// default (a run from the command line and one from the page alike).
pub fn beside(first: &Path, suffix: &str) -> PathBuf {
    let stem = first
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plbulk".into());
    first.with_file_name(format!("{stem}.{suffix}"))
}

/// `path` with `.STAMP` put before its last suffix (`.results.xlsx`, `.to-fix.xlsx`,
/// `.undo.xlsx`, or the extension), and `-2`, `-3`… after the stamp while `taken` says so.
fn free_beside(path: &Path, stamp: &str, taken: impl Fn(&Path) -> bool) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let cut = [".results.xlsx", ".to-fix.xlsx", ".undo.xlsx"]
        .iter()
        .find(|s| lower.ends_with(*s) && lower.len() > s.len())
        .map(|s| name.len() - s.len())
        .or_else(|| name.rfind('.').filter(|&i| i > 0))
        .unwrap_or(name.len());
    let (stem, suffix) = name.split_at(cut);
    let mut n = 1;
    loop {
        let tag = if n == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{n}")
        };
        let p = path.with_file_name(format!("{stem}.{tag}{suffix}"));
        if !taken(&p) {
            return p;
        }
        n += 1;
    }
}

/// Now, as a file name gives it: `20261201-093000` (UTC), as job ids begin.
pub fn stamp_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string()
}

/// The record in a job's folder of the outputs it wrote, by size and time.
const RECORD: &str = "outputs.json";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    len: u64,
    modified_ns: u128,
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    let modified_ns = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(Stamp {
        len: m.len(),
        modified_ns,
    })
}

type Records = std::collections::BTreeMap<String, Stamp>;

fn records(job_dir: &Path) -> Records {
    std::fs::read(job_dir.join(RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn key(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Records in `job_dir` that the job wrote `path` as it is now. A record that cannot be
/// written only means the file will be treated as changed since: kept, never replaced.
pub fn record_written(job_dir: &Path, path: &Path) {
    let mut all = records(job_dir);
    match stamp_of(path) {
        Some(s) => all.insert(key(path), s),
        None => all.remove(&key(path)),
    };
    if let Ok(bytes) = serde_json::to_vec_pretty(&all) {
        let _ = crate::atomic_write(&job_dir.join(RECORD), &bytes);
    }
}

/// Whether `path` is as the job in `job_dir` last wrote it.
fn unchanged_since_written(job_dir: &Path, path: &Path) -> bool {
    match (records(job_dir).get(&key(path)), stamp_of(path)) {
        (Some(was), Some(now)) => *was == now,
        _ => false,
    }
}

/// Where a job writes its to-fix file beside `results`, decided as it writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToFix {
    pub path: PathBuf,
    /// The to-fix file there already, kept because the job did not write it as it is now.
    pub kept: Option<PathBuf>,
}

impl ToFix {
    /// Whether an old to-fix file may be removed when no row is left to fix: only one the
    /// job wrote and nobody changed.
    pub fn may_remove(&self) -> bool {
        self.kept.is_none()
    }
}

/// The to-fix file for `results` of the job in `job_dir`: its usual place when that is free,
/// or holds the job's own to-fix as it wrote it (or `overwrite`); otherwise beside it, named
/// for now, keeping the file there.
pub fn to_fix(results: &Path, job_dir: &Path, overwrite: bool) -> ToFix {
    let usual = crate::results::to_fix_path(results);
    if !usual.exists() || overwrite || unchanged_since_written(job_dir, &usual) {
        return ToFix {
            path: usual,
            kept: None,
        };
    }
    ToFix {
        path: free_beside(&usual, &stamp_now(), Path::exists),
        kept: Some(usual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_goes_before_the_suffix_plbulk_gave() {
        let never = |_: &Path| false;
        let d = Path::new("/x");
        assert_eq!(
            free_beside(&d.join("onb.results.xlsx"), "20261201-093000", never),
            d.join("onb.20261201-093000.results.xlsx")
        );
        assert_eq!(
            free_beside(&d.join("onb.to-fix.xlsx"), "S", never),
            d.join("onb.S.to-fix.xlsx")
        );
        assert_eq!(
            free_beside(&d.join("mine.xlsx"), "S", never),
            d.join("mine.S.xlsx")
        );
        let first = d.join("mine.S.xlsx");
        assert_eq!(
            free_beside(&d.join("mine.xlsx"), "S", |p| p == first),
            d.join("mine.S-2.xlsx")
        );
    }

    #[test]
    fn a_file_is_itself_under_another_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("in.csv");
        std::fs::write(&f, "x").unwrap();
        let other = dir.path().join("sub").join("..").join("in.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert!(same_file(&other, &f));
        assert!(!same_file(&dir.path().join("out.csv"), &f));
        assert!(not_an_input(&other, &[&f], Output::Results).is_err());
    }

    #[test]
    fn a_folder_or_a_missing_folder_is_refused_before_any_write() {
        let dir = tempfile::tempdir().unwrap();
        let e = writable(dir.path(), Output::Results).unwrap_err().0;
        assert!(e.contains("is a folder"), "{e}");
        let e = writable(&dir.path().join("nope").join("r.xlsx"), Output::Results)
            .unwrap_err()
            .0;
        assert!(e.contains("does not exist"), "{e}");
        writable(&dir.path().join("r.xlsx"), Output::Results).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_to_fix_changed_since_it_was_written_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job");
        std::fs::create_dir(&job).unwrap();
        let results = dir.path().join("a.results.xlsx");
        let usual = dir.path().join("a.to-fix.xlsx");
        assert_eq!(to_fix(&results, &job, false).path, usual);
        std::fs::write(&usual, "plbulk's").unwrap();
        record_written(&job, &usual);
        assert!(to_fix(&results, &job, false).kept.is_none());
        std::fs::write(&usual, "the partner's fixes").unwrap();
        let t = to_fix(&results, &job, false);
        assert_eq!(t.kept.as_deref(), Some(usual.as_path()));
        assert_ne!(t.path, usual);
        assert!(!t.may_remove());
        assert_eq!(to_fix(&results, &job, true).path, usual);
    }

    #[test]
    fn an_export_is_written_as_its_extension_says() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            export(&dir.path().join("x.CSV"), false).unwrap(),
            ExportFormat::Csv
        );
        assert_eq!(
            export(&dir.path().join("x.xlsx"), false).unwrap(),
            ExportFormat::Xlsx
        );
        let e = export(&dir.path().join("x.ods"), false).unwrap_err().0;
        assert!(e.contains(".xlsx") && e.contains(".csv"), "{e}");
    }
}
