//! The files dropped on the page, kept in the data folder (`ui/uploads`, its owner's alone)
//! under their own names: a finding names the partner's file as they know it, and its
//! extension says how it is read. Each upload has a folder of its own, named by an id that
//! sorts by time; the report of its findings is written beside it, and the mapping file
//! (`.toml`) it is read through, when one came with it or was started from it, is kept there
//! too: a job records where its mapping is, and a resume reads it there again.

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
    /// The mapping file it is read through, as `--map` gives one.
    pub mapping: Option<PathBuf>,
}

impl Upload {
    /// The partner's name for the file.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The mapping's name, as the partner knows it.
    pub fn mapping_name(&self) -> Option<String> {
        self.mapping
            .as_ref()
            .and_then(|m| m.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    }

    /// The file, and its mapping, as a command line names them: `export.csv --map its.toml`.
    pub fn words(&self) -> String {
        match self.mapping_name() {
            Some(m) => format!("{} --map {m}", self.name()),
            None => self.name(),
        }
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

    /// Keeps `bytes` as `name` (the partner's file name, reduced to a safe one), with the
    /// mapping file it is read through when one is given, or says why not: a kind of file
    /// plbulk does not read.
    pub fn save(
        &self,
        name: &str,
        bytes: &[u8],
        mapping: Option<(&str, &[u8])>,
    ) -> Result<Upload, String> {
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
        let mapping = match mapping {
            None => None,
            Some((m, text)) => {
                let m = safe_name(m);
                if !is_mapping(Path::new(&m)) {
                    return Err(format!(
                        "{m} is not a mapping file: a mapping is a .toml file, as plbulk map init writes it"
                    ));
                }
                if m == name {
                    return Err(format!("{m} cannot be both the file and its mapping"));
                }
                Some((m, text))
            }
        };
        let id = new_id();
        let dir = self.dir.join(&id);
        crate::journal::create_private_dir(&dir)
            .map_err(|e| format!("cannot keep {name}: cannot create {}: {e}", dir.display()))?;
        let path = dir.join(&name);
        // Written whole through a temporary file, its owner's alone from the start.
        crate::atomic_write(&path, bytes)
            .map_err(|e| format!("cannot keep {name} in {}: {e}", dir.display()))?;
        let mapping = match mapping {
            None => None,
            Some((m, text)) => {
                let at = dir.join(&m);
                crate::atomic_write(&at, text)
                    .map_err(|e| format!("cannot keep {m} in {}: {e}", dir.display()))?;
                Some(at)
            }
        };
        Ok(Upload { id, path, mapping })
    }

    /// The upload `id`, if it is kept here.
    pub fn find(&self, id: &str) -> Option<Upload> {
        // Ids are made here: anything else (a `..`, a slash) is no upload.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        let dir = self.dir.join(id);
        let report = ".validation.xlsx";
        let kept: Vec<PathBuf> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| !n.starts_with('.') && !n.ends_with(report))
            })
            .collect();
        let path = kept.iter().find(|p| !is_mapping(p))?.clone();
        let mapping = kept.into_iter().find(|p| is_mapping(p));
        Some(Upload {
            id: id.to_string(),
            path,
            mapping,
        })
    }
}

/// A mapping file, by its extension: plbulk reads no data from a `.toml`.
fn is_mapping(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case("toml"))
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
        let up = store
            .save(
                "team.csv",
                b"Company Name\nAcme\n",
                Some(("team.map.toml", b"kind = 1")),
            )
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&up.path), 0o600);
        assert_eq!(mode(up.path.parent().unwrap()), 0o700);
        assert_eq!(mode(up.mapping.as_ref().unwrap()), 0o600);
        let found = store.find(&up.id).unwrap();
        assert_eq!(
            (found.path, found.mapping),
            (up.path.clone(), up.mapping.clone())
        );
        assert!(store.find("..").is_none() && store.find("a/b").is_none());
        let e = store.save("notes.pdf", b"%PDF", None).unwrap_err();
        assert!(e.contains("CSV, XLSX, XLS or ODS"), "{e}");
        let e = store
            .save("team.csv", b"a\n", Some(("map.txt", b"x")))
            .unwrap_err();
        assert!(e.contains("not a mapping file"), "{e}");
    }
}
