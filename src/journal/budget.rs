//! The per-key call budget shared by every plbulk process on this machine.
//!
//! The limit is per API key, not per process: two jobs on one key must share 100 calls a
//! minute, and a job resumed right after a kill must count the calls its previous process made
//! in the last minute. So the sliding window lives in a small SQLite file in the user's data
//! folder rather than in memory. Each call *reserves* a send time in one `BEGIN IMMEDIATE`
//! transaction: the earliest time at or after now, after the last reservation, and a full
//! (widened) window after the N-th last. Reservations are in order, so that one comparison
//! keeps every window within the limit whoever made them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{now_ms, sql, Result};
use crate::pacing::{BoxFuture, Pacer, Rate};

/// The N-th last reservation of a key (offset N - 1) among those after a time.
const NTH_LAST: &str = "SELECT at_ms FROM calls WHERE key = ?1 AND at_ms > ?3
                        ORDER BY at_ms DESC LIMIT 1 OFFSET ?2";

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS calls (key TEXT NOT NULL, at_ms INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS calls_by_key ON calls(key, at_ms);
    CREATE TABLE IF NOT EXISTS holds (key TEXT PRIMARY KEY, until_ms INTEGER NOT NULL);";

/// A [`Pacer`] whose window is shared through a file.
#[derive(Clone)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    key: String,
    rate: Rate,
    window_ms: i64,
}

impl SharedBudget {
    /// Opens (creating if need be) the budget file at `path` for API key id `key`.
    pub fn open(path: &Path, key: &str, rate: Rate) -> Result<SharedBudget> {
        let conn = super::open_shared(path, Duration::from_secs(30), |conn| {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // A lost reservation after a power cut costs nothing: its process is gone.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(SCHEMA)
        })?;
        Ok(SharedBudget {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
                key: key.to_string(),
                rate,
                window_ms: rate.paced_window().as_millis() as i64,
            }),
        })
    }

    pub fn rate(&self) -> Rate {
        self.inner.rate
    }

    /// Reserves the next send time (milliseconds since the epoch).
    pub fn reserve(&self) -> Result<i64> {
        let i = &self.inner;
        let mut conn = i.conn.lock().unwrap_or_else(|p| p.into_inner());
        let reserved = (|| -> rusqlite::Result<i64> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let n = i.rate.count as i64;
            // Statements kept prepared: one reservation a call, a long job's millions of them.
            let last: Option<i64> = tx
                .prepare_cached("SELECT MAX(at_ms) FROM calls WHERE key = ?1")?
                .query_row(params![i.key], |r| r.get(0))?;
            // Only the calls of the last window can push the next one back: the send time is
            // never before now, so an N-th last call older than a window has left it. Bounded
            // so, the look reads one window's calls, not every call the file keeps (at a fast
            // sandbox rate, all the calls of the last minute and more, read again for each).
            let nth_last: Option<i64> = tx
                .prepare_cached(NTH_LAST)?
                .query_row(params![i.key, n - 1, now - i.window_ms], |r| r.get(0))
                .optional()?;
            let hold: Option<i64> = tx
                .prepare_cached("SELECT until_ms FROM holds WHERE key = ?1")?
                .query_row(params![i.key], |r| r.get(0))
                .optional()?;
            let mut at = now;
            if let Some(l) = last {
                at = at.max(l);
            }
            if let Some(t) = nth_last {
                at = at.max(t + i.window_ms);
            }
            if let Some(h) = hold {
                at = at.max(h);
            }
            tx.prepare_cached("INSERT INTO calls (key, at_ms) VALUES (?1, ?2)")?
                .execute(params![i.key, at])?;
            // Keep the file small: only the last window matters, and a minute's margin for
            // clocks.
            tx.prepare_cached("DELETE FROM calls WHERE key = ?1 AND at_ms < ?2")?
                .execute(params![i.key, now - 2 * i.window_ms - 60_000])?;
            tx.commit()?;
            Ok(at)
        })();
        reserved.map_err(|e| sql(&i.path, e))
    }

    fn hold_until(&self, until: i64) -> Result<()> {
        let i = &self.inner;
        let conn = i.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO holds (key, until_ms) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)",
            params![i.key, until],
        )
        .map_err(|e| sql(&i.path, e))?;
        Ok(())
    }

    /// Send times reserved in the last `window`, for tests and `plbulk status`.
    pub fn recent(&self, window: Duration) -> Result<Vec<i64>> {
        let i = &self.inner;
        let conn = i.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = conn
            .prepare("SELECT at_ms FROM calls WHERE key = ?1 AND at_ms >= ?2 ORDER BY at_ms")
            .map_err(|e| sql(&i.path, e))?;
        let rows = st
            .query_map(params![i.key, now_ms() - window.as_millis() as i64], |r| {
                r.get(0)
            })
            .map_err(|e| sql(&i.path, e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| sql(&i.path, e))
    }
}

impl Pacer for SharedBudget {
    fn acquire(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let me = self.clone();
            let at = tokio::task::spawn_blocking(move || me.reserve()).await;
            match at {
                Ok(Ok(at)) => {
                    let wait = at - now_ms();
                    if wait > 0 {
                        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                    }
                }
                // The file cannot be used (disk full, say): fall back to the limit's own pace
                // for this call rather than stop the job; the server's 429s remain the backstop.
                Ok(Err(e)) => {
                    tracing::warn!("call budget: {e}");
                    tokio::time::sleep(self.inner.rate.window / self.inner.rate.count).await;
                }
                Err(e) => {
                    tracing::warn!("call budget: {e}");
                    tokio::time::sleep(self.inner.rate.window / self.inner.rate.count).await;
                }
            }
        })
    }

    fn hold_off(&self, retry_after: Duration) {
        let until = now_ms() + retry_after.as_millis() as i64;
        if let Err(e) = self.hold_until(until) {
            tracing::warn!("call budget: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_handles_on_one_key_share_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("budget.sqlite");
        let rate = Rate::new(4, Duration::from_secs(10));
        let a = SharedBudget::open(&p, "k", rate).unwrap();
        let b = SharedBudget::open(&p, "k", rate).unwrap();
        let other = SharedBudget::open(&p, "other", rate).unwrap();
        let start = now_ms();
        let mut times: Vec<i64> = (0..3).map(|_| a.reserve().unwrap()).collect();
        times.extend((0..3).map(|_| b.reserve().unwrap()));
        // The first four go now; the fifth and sixth wait a widened window after the first.
        for t in &times[..4] {
            assert!(*t - start < 1000, "{times:?}");
        }
        let window = rate.paced_window().as_millis() as i64;
        assert!(times[4] >= times[0] + window, "{times:?}");
        assert!(times[5] >= times[1] + window, "{times:?}");
        // Another key has its own budget.
        assert!(other.reserve().unwrap() - start < 1000);
        assert_eq!(a.recent(Duration::from_secs(60)).unwrap().len(), 6);
    }

    #[test]
    fn many_processes_opening_it_at_once_all_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("budget.sqlite");
        let rate = Rate::new(1000, Duration::from_secs(1));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || SharedBudget::open(&p, "k", rate).map(|b| b.reserve()))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap().unwrap();
        }
    }

    /// Issue: a long job slowed as it grew. At a fast rate the window never fills, and the
    /// look for its N-th last call went through every call the file keeps (two windows and a
    /// minute of them) on every reservation: a long job's whole recent history, again and
    /// again. It reads the calls of the last window now, whatever the file keeps.
    #[test]
    fn a_reservation_reads_one_window_of_calls_not_every_call_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("budget.sqlite");
        let a = SharedBudget::open(&p, "k", Rate::new(1_000_000, Duration::from_secs(1))).unwrap();
        let now = now_ms();
        {
            let mut conn = a.inner.conn.lock().unwrap();
            let tx = conn.transaction().unwrap();
            // 50,000 calls of the last 50 s: out of the window, kept for the margin.
            for t in 0..50_000 {
                tx.execute(
                    "INSERT INTO calls (key, at_ms) VALUES ('k', ?1)",
                    params![now - 51_000 + t],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        for _ in 0..10 {
            a.reserve().unwrap();
        }
        let conn = a.inner.conn.lock().unwrap();
        let st = conn.prepare_cached(NTH_LAST).unwrap();
        let steps = st.get_status(rusqlite::StatementStatus::VmStep);
        // Each look steps through the calls in the window (at most ten here), a few steps
        // each; every call kept would be hundreds of thousands.
        assert!(steps < 2_000, "{steps} steps for 10 reservations");
    }

    #[test]
    fn a_hold_delays_the_next_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("budget.sqlite");
        let a = SharedBudget::open(&p, "k", Rate::new(100, Duration::from_secs(1))).unwrap();
        a.hold_off(Duration::from_secs(5));
        let t = a.reserve().unwrap();
        assert!(t - now_ms() > 4000);
    }
}
