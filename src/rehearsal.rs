//! Rehearsal accounts: where a rehearsal's account is kept between processes, and which
//! process has it open.
//!
//! A rehearsal (`--sandbox`) runs on the data folder's one rehearsal account, so that what an
//! earlier rehearsal made (customers, users, the ids a to-fix file or an export names) is
//! there for the next, as it would be in the real account. `--sandbox-fresh` runs on an empty
//! account of the job's own, kept in its folder. Either is kept on disk by the in-process
//! sandbox after every write, before it answers ([`crate::sandbox::store`]), so a killed
//! rehearsal leaves an account that agrees with its journal and resumes on it.
//!
//! One process at a time has an account open, under an OS lock beside it (the mechanism of
//! [`journal::JobLock`]): two processes each holding the account in memory would each save
//! over the other's writes. A second one is refused at once, naming the job and process that
//! hold it and the way on, rather than left waiting: a rehearsal at the real limit runs for as
//! long as its rows take, and a command that sits silent for an hour looks hung. Verbs that
//! only read (export, `validate --online`, `check`, a dry run) read the account as last kept
//! and take no lock, as they would read a real account while a job runs on it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::job::JobError;
use crate::journal;
use crate::sandbox::World;

/// Which account a rehearsal ran on, as its job's options record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rehearsal {
    /// The data folder's rehearsal account (`--sandbox`).
    Shared,
    /// An empty account of the job's own, kept in its folder (`--sandbox-fresh`).
    Fresh,
    /// The account of another job, kept in that job's folder: an undo of a `--sandbox-fresh`
    /// rehearsal works on the account the rehearsal made.
    OfJob(String),
}

impl Rehearsal {
    /// How a partner asked for it.
    pub fn describe(&self) -> String {
        match self {
            Rehearsal::Shared => "the rehearsal account (--sandbox)".into(),
            Rehearsal::Fresh => "an empty account of its own (--sandbox-fresh)".into(),
            Rehearsal::OfJob(id) => format!("job {id}'s own account"),
        }
    }
}

const ACCOUNT_FILE: &str = "account.json";
const LOCK_FILE: &str = "account.lock";
const HOLDER_FILE: &str = "account.holder.json";
/// What a rehearsal of a plbulk before issue 19 saved in its job folder, and only when its
/// process ended cleanly. Read once, when no account is kept there yet.
const LEGACY_FILE: &str = "sandbox.json";

/// Where an account is kept: a folder holding its file, its lock and a note of its holder.
#[derive(Debug, Clone)]
pub struct Place {
    dir: PathBuf,
    shared: bool,
}

/// Who has an account open, as the note beside its lock says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub since_ms: i64,
    /// What the process is doing: "plbulk run", "plbulk sandbox --account", …
    pub command: String,
    pub job: Option<String>,
}

impl Holder {
    pub fn describe(&self) -> String {
        format!(
            "{}{} (process {}, since {})",
            self.command,
            match &self.job {
                Some(j) => format!(" of job {j}"),
                None => String::new(),
            },
            self.pid,
            crate::results::time_text(self.since_ms)
        )
    }
}

impl Place {
    /// The data folder's rehearsal account.
    pub fn shared() -> Place {
        Place {
            dir: crate::job::data_dir().join("rehearsal"),
            shared: true,
        }
    }

    /// The account kept in a job's folder.
    pub fn in_folder(dir: &Path) -> Place {
        Place {
            dir: dir.to_path_buf(),
            shared: false,
        }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join(ACCOUNT_FILE)
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    fn holder_path(&self) -> PathBuf {
        self.dir.join(HOLDER_FILE)
    }

    /// Who has the account open now, if anyone: `Some(None)` is a holder that left no note.
    pub fn holder(&self) -> Result<Option<Option<Holder>>, JobError> {
        if !journal::JobLock::is_held(&self.lock_path())? {
            return Ok(None);
        }
        Ok(Some(
            std::fs::read(self.holder_path())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        ))
    }

    /// Opens the account for this process, or refuses naming who has it.
    pub fn open(&self, command: &str, job: Option<&str>) -> Result<Held, JobError> {
        journal::create_private_dir(&self.dir)
            .map_err(|e| JobError::Io(format!("cannot create {}: {e}", self.dir.display())))?;
        let Some(lock) = journal::JobLock::acquire(&self.lock_path())? else {
            let who = std::fs::read(self.holder_path())
                .ok()
                .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
                .map(|h| h.describe())
                .unwrap_or_else(|| "another plbulk process".into());
            let way_on = if self.shared {
                "Wait for it to end (plbulk sandbox status shows who has it), or rehearse on an empty account of this run's own with --sandbox-fresh"
            } else {
                "Wait for it to end, then try again"
            };
            return Err(JobError::Refused(format!(
                "{} is in use by {who}: one process at a time has it, so that no write is lost. Nothing was sent. {way_on}",
                self.describe()
            )));
        };
        let held = Held {
            place: self.clone(),
            _lock: lock,
            holder: std::sync::Mutex::new(Holder {
                pid: std::process::id(),
                since_ms: journal::now_ms(),
                command: command.to_string(),
                job: job.map(str::to_string),
            }),
        };
        held.write_note();
        Ok(held)
    }

    /// The account as last kept, without opening it: None when nothing was ever kept here.
    pub fn read(&self) -> Result<Option<World>, JobError> {
        match std::fs::read(self.file()) {
            Ok(bytes) => World::from_saved(&bytes).map(Some).map_err(|e| {
                JobError::Io(format!(
                    "{} cannot be read ({e}): move it away to start the account afresh",
                    self.file().display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(JobError::Io(format!(
                "cannot read {}: {e}",
                self.file().display()
            ))),
        }
    }

    /// When the account last changed, if it was ever kept.
    pub fn modified(&self) -> Option<SystemTime> {
        std::fs::metadata(self.file())
            .and_then(|m| m.modified())
            .ok()
    }

    /// A rehearsal's account saved by a plbulk before issue 19, if there is one: kept only
    /// when its process ended cleanly, so it is refused when the journal's last call is
    /// newer (the process was killed, and its account died with it).
    pub fn legacy(&self, job: &str, last_call_ms: Option<i64>) -> Result<Option<World>, JobError> {
        let path = self.dir.join(LEGACY_FILE);
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(None);
        };
        let saved_ms = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        if last_call_ms.is_some_and(|l| l > saved_ms) {
            return Err(JobError::Refused(format!(
                "job {job} rehearsed with a plbulk that saved its account only when it stopped cleanly, and it was killed, so its account is lost: start the rehearsal again with plbulk run FILE --sandbox-fresh --new-job"
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| JobError::Io(format!("cannot read {}: {e}", path.display())))?;
        World::from_saved(&bytes)
            .map(Some)
            .map_err(|e| JobError::Io(format!("{} cannot be read ({e})", path.display())))
    }

    /// The account in a partner's words, with its file.
    pub fn describe(&self) -> String {
        if self.shared {
            format!("the rehearsal account ({})", self.file().display())
        } else {
            format!("the rehearsal's own account ({})", self.file().display())
        }
    }

    /// Empties the account, if no process has it open: what it held, or None if nothing was
    /// kept.
    pub fn reset(&self) -> Result<Option<World>, JobError> {
        let held = self.open("plbulk sandbox reset", None)?;
        let was = self.read()?;
        match std::fs::remove_file(self.file()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(JobError::Io(format!(
                    "cannot remove {}: {e}",
                    self.file().display()
                )))
            }
        }
        drop(held);
        Ok(was)
    }
}

/// An account this process has open; the lock goes with the process, however it ends.
pub struct Held {
    place: Place,
    _lock: journal::JobLock,
    holder: std::sync::Mutex<Holder>,
}

impl Held {
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// Names the job the process now has the account open for.
    pub fn set_job(&self, id: &str) {
        self.holder.lock().unwrap_or_else(|p| p.into_inner()).job = Some(id.to_string());
        self.write_note();
    }

    fn write_note(&self) {
        let holder = self
            .holder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Only the message of a second process reads it: failing to write it loses no work.
        let _ = crate::atomic_write(
            &self.place.holder_path(),
            &serde_json::to_vec(&holder).expect("a holder serialises"),
        );
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.place.holder_path());
    }
}

/// What an account holds, per kind of entity, as `plbulk sandbox status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub customers: usize,
    pub users: usize,
    pub numbers: usize,
    pub blocked_numbers: usize,
    pub orders: usize,
    pub devices: usize,
    pub partner_users: usize,
    pub emails_sent: usize,
}

impl Counts {
    pub fn of(w: &World) -> Counts {
        Counts {
            customers: w.customers.len(),
            users: w.users.len(),
            numbers: w.numbers.len(),
            blocked_numbers: w.blocked.len(),
            orders: w.orders.len(),
            devices: w.devices.len(),
            partner_users: w.partner_users.len(),
            emails_sent: w.emails.len(),
        }
    }

    /// "3 customers, 9 users, …", every kind named, zero or not.
    pub fn line(&self) -> String {
        let n =
            |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        [
            n(self.customers, "customer", "customers"),
            n(self.users, "user", "users"),
            n(self.numbers, "number", "numbers"),
            n(self.blocked_numbers, "blocked number", "blocked numbers"),
            n(self.orders, "order", "orders"),
            n(self.devices, "device", "devices"),
            n(self.partner_users, "partner user", "partner users"),
            n(self.emails_sent, "email sent", "emails sent"),
        ]
        .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_and_the_way_on() {
        let dir = tempfile::tempdir().unwrap();
        let place = Place {
            dir: dir.path().join("rehearsal"),
            shared: true,
        };
        let held = place.open("plbulk run", None).unwrap();
        held.set_job("20261201-093000-3fa2c1");
        let e = place.open("plbulk run", None).err().unwrap().to_string();
        for want in [
            "plbulk run of job 20261201-093000-3fa2c1",
            &format!("process {}", std::process::id()),
            "--sandbox-fresh",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        assert!(place.reset().is_err(), "reset while it is open");
        let who = place.holder().unwrap().unwrap().unwrap();
        assert_eq!(who.job.as_deref(), Some("20261201-093000-3fa2c1"));
        drop(held);
        assert!(place.holder().unwrap().is_none());
        assert!(place.reset().unwrap().is_none(), "nothing was kept");
    }

    /// Journals record the account by these names: renaming one strands old jobs.
    #[test]
    fn the_recorded_names_stay() {
        let v = serde_json::to_value([
            Rehearsal::Shared,
            Rehearsal::Fresh,
            Rehearsal::OfJob("j".into()),
        ])
        .unwrap();
        assert_eq!(v, serde_json::json!(["shared", "fresh", {"of-job": "j"}]));
    }
}
