//! An account kept on disk: a sandbox given a [`Store`] writes its whole account to one file
//! after every write it applies, and before it answers, so that a process killed at any
//! instant (two Ctrl-Cs, `kill -9`, a power cut) leaves an account that agrees with what its
//! client was told. A write kept but not answered is one the client is in doubt about, and
//! looks for; a write not kept was never made, because the client was never told it was.
//!
//! Writes are applied one at a time while the sandbox keeps its account, each kept before the
//! next is applied: a write that cannot be kept (a full disk) is taken back, by putting the
//! account back as it was last kept, and answered 503 as a write that was not applied. Reads
//! go on beside them. The whole account is rewritten each time: at the API's 100 calls a
//! minute that costs little (the README gives the figures), and the file is always one
//! consistent account, never a log to replay.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::world::World;

pub struct Store {
    path: PathBuf,
    /// Held from the start of a write to the end of its keeping.
    pub(super) writes: tokio::sync::Mutex<()>,
    /// The account as last kept, to put back when keeping a write fails.
    kept: Mutex<Vec<u8>>,
}

impl Store {
    /// A store for `world` at `path`: from here on the file is the account. A file already
    /// there is taken to hold `world` (it was read from it), and left as it is, so that its
    /// time says when the account last changed; a missing one is written at once.
    pub fn create(path: &Path, world: &World) -> std::io::Result<Store> {
        let bytes = serde_json::to_vec(world).map_err(std::io::Error::other)?;
        if !path.exists() {
            write_durably(path, &bytes)?;
        }
        Ok(Store {
            path: path.to_path_buf(),
            writes: tokio::sync::Mutex::new(()),
            kept: Mutex::new(bytes),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the account as it is now. On failure, the account is put back as last kept.
    pub(super) fn keep(&self, world: &Mutex<World>) -> std::io::Result<()> {
        let mut w = super::lock(world);
        let bytes = serde_json::to_vec(&*w).map_err(std::io::Error::other)?;
        match write_durably(&self.path, &bytes) {
            Ok(()) => {
                *super::lock(&self.kept) = bytes;
                Ok(())
            }
            Err(e) => {
                let kept = super::lock(&self.kept);
                *w = World::from_saved(&kept).expect("the account last kept reads back");
                Err(e)
            }
        }
    }
}

/// The file replaced whole (a reader sees the old account or the new, never half of one),
/// synced, and the rename synced with its folder, so that a power cut keeps what was answered.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::atomic_write(path, bytes)?;
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract as c;

    fn customer(n: u32) -> c::NewCustomer {
        serde_json::from_value(serde_json::json!({
            "companyName": format!("Co {n} Ltd"),
            "email": format!("it@co{n}.example"),
            "plan": "pro",
            "contractMonths": 12
        }))
        .unwrap()
    }

    #[test]
    fn a_write_that_cannot_be_kept_is_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account.json");
        let world = Mutex::new(World::seeded());
        let store = Store::create(&path, &super::super::lock(&world)).unwrap();
        super::super::lock(&world)
            .add_customer(customer(1))
            .unwrap();
        store.keep(&world).unwrap();
        let kept = World::from_saved(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(kept.customers.len(), 1);

        super::super::lock(&world)
            .add_customer(customer(2))
            .unwrap();
        // The folder gone: the file cannot be written.
        std::fs::remove_dir_all(dir.path()).unwrap();
        assert!(store.keep(&world).is_err());
        assert_eq!(
            super::super::lock(&world).customers.len(),
            1,
            "the write not kept was taken back"
        );
    }
}
