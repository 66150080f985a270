//! The files dropped on the page, kept in the data folder (`ui/uploads`, its owner's alone)
//! under their own names: a finding names the partner's file as they know it, and its
//! extension says how it is read. Each upload has a folder of its own, named by an id that
//! sorts by time; the report of its findings is written beside it.

use std::path::{Path, PathBuf};

/// The uploads folder.
pub struct Store {
    dir: PathBuf,
}

/// A kept upload.
#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    /// The file as kept, under the partner's name for it.
    pub path: PathBuf,
}

impl Upload {
    /// The partner's name for the file.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Where its validation report goes: `NAME.validation.xlsx` beside it, as the CLI names it.
    pub fn report_path(&self) -> PathBuf {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into());
        self.path.with_file_name(format!("{stem}.validation.xlsx"))
    }
}

impl Store {
    /// The store in `data_dir`, created (its owner's alone) if need be.
    pub fn open(data_dir: &Path) -> Result<Store, String> {
        let dir = data_dir.join("ui").join("uploads");
        crate::journal::create_private_dir(&dir)
            .map_err(|e| format!("cannot create the uploads folder {}: {e}", dir.display()))?;
        Ok(Store { dir })
    }

    /// Keeps `bytes` as `name` (the partner's file name, reduced to a safe one), or says why
    /// not: a kind of file plbulk does not read.
    pub fn save(&self, name: &str, bytes: &[u8]) -> Result<Upload, String> {
        let name = safe_name(name);
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !crate::intake::readable(&ext) {
            return Err(format!(
                "{name} is not a file plbulk reads: drop a CSV, XLSX, XLS or ODS file (an Excel workbook, or a spreadsheet saved as CSV)"
            ));
        }
        if bytes.is_empty() {
            return Err(format!("{name} is empty: pick the file again"));
        }
        let id = new_id();
        let dir = self.dir.join(&id);
        crate::journal::create_private_dir(&dir)
            .map_err(|e| format!("cannot keep {name}: cannot create {}: {e}", dir.display()))?;
        let path = dir.join(&name);
        // Written whole through a temporary file, its owner's alone from the start.
        crate::atomic_write(&path, bytes)
            .map_err(|e| format!("cannot keep {name} in {}: {e}", dir.display()))?;
        Ok(Upload { id, path })
    }

    /// The upload `id`, if it is kept here.
    pub fn find(&self, id: &str) -> Option<Upload> {
        // Ids are made here: anything else (a `..`, a slash) is no upload.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        let dir = self.dir.join(id);
        let report = ".validation.xlsx";
        let path = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .find(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| !n.starts_with('.') && !n.ends_with(report))
            })?;
        Some(Upload {
            id: id.to_string(),
            path,
        })
    }
}

/// A file name as the browser sent it, reduced to its last part and to characters every file
/// system takes; never empty, never hidden.
fn safe_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}

/// `20261201-093000-3fa2c1`: the time, and enough chance to keep two in one second apart.
fn new_id() -> String {
    use rand::Rng;
    let now = crate::results::rfc3339(crate::journal::now_ms());
    let stamp: String = now
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    let n: u32 = rand::rng().random_range(0..0x100_0000);
    format!("{}-{}-{n:06x}", &stamp[..8], &stamp[8..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_folders_and_odd_characters() {
        assert_eq!(
            safe_name("C:\\Users\\ann\\onboarding.xlsx"),
            "onboarding.xlsx"
        );
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name(".hidden.csv"), "hidden.csv");
        assert_eq!(safe_name("a:b?.csv"), "a_b_.csv");
        assert_eq!(safe_name(""), "upload");
    }

    #[cfg(unix)]
    #[test]
    fn an_upload_is_its_owners_alone_and_found_by_its_id_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let up = store.save("team.csv", b"Company Name\nAcme\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&up.path), 0o600);
        assert_eq!(mode(up.path.parent().unwrap()), 0o700);
        assert_eq!(store.find(&up.id).unwrap().path, up.path);
        assert!(store.find("..").is_none() && store.find("a/b").is_none());
        let e = store.save("notes.pdf", b"%PDF").unwrap_err();
        assert!(e.contains("CSV, XLSX, XLS or ODS"), "{e}");
    }
}
