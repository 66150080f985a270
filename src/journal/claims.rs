//! What the jobs running on this machine are making in one account, so that two jobs never
//! both make one thing.
//!
//! Each job's journal is its own, so two jobs on one account (the same file run twice, a
//! workbook and a copy Excel saved again, a superset of yesterday's file) would each list the
//! account before the other has made anything, and each make the same customer. This file,
//! shared like the call budget (`claims.sqlite` in the data folder), holds a claim per thing a
//! job's row is about to make, keyed by the account (the normalised endpoint, whichever key)
//! and by what would tell it apart in the account (a company name, a user's email in its
//! customer, a customer's order). A row *takes* its claim before it creates: if a live job
//! holds it, the row waits for that job's row to end and then looks in the account, where it
//! finds what the other made; every other row runs on beside it. A job publishes the customers
//! and partner users it plans to make when it starts, so another job naming one of them (or
//! looking for it in its pre-flight) waits for it instead of calling it missing. Claims of a
//! job whose process is gone (its lock not held) are not waited on, but still make a row look
//! in the account afresh before it creates. Finished claims stay a week, then are pruned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};

use super::{now_ms, sql, JournalError, Result};
use crate::contract::natural_key;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS claims (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    job TEXT NOT NULL,
    row INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    file TEXT NOT NULL,
    lock TEXT NOT NULL,
    state TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (account, key, job, row)
);
CREATE INDEX IF NOT EXISTS claims_by_job ON claims(job, row);";

/// How long a finished claim is kept: a row of another job that lists the account before
/// this is long past its pre-flight.
const KEEP_DONE_MS: i64 = 7 * 24 * 3600 * 1000;

/// How long a claim being made by a job that died is still waited on: its last request may
/// be at the server that long (a response timeout and the settle time after it, generously).
const IN_FLIGHT_MS: i64 = 2 * 60 * 1000;

/// How long a job's liveness, once tested, is taken as known.
const LIVENESS_TTL: Duration = Duration::from_secs(1);

/// What a row makes, as the account would tell two apart. Conservative where the account is
/// not: a user is claimed by email within its customer, a number across the account, and an
/// order per customer (two jobs ordering for one customer take turns, and the second finds the
/// first's order before it places its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Claim<'a> {
    Customer { company: &'a str },
    User { customer: &'a str, email: &'a str },
    Number { number: &'a str },
    Blocked { customer: &'a str, number: &'a str },
    Order { customer: &'a str },
    PartnerUser { email: &'a str },
}

impl Claim<'_> {
    /// What is being made, in a partner's words, for the line that says a row waits for it:
    /// "customer Acme Ltd", "user ann@acme.example of customer cus_000001".
    pub fn describe(&self) -> String {
        match self {
            Claim::Customer { company } => format!("customer ({})", company.trim()),
            Claim::User { customer, email } => {
                format!("user ({} of customer {customer})", email.trim())
            }
            Claim::Number { number } => format!("number ({})", number.trim()),
            Claim::Blocked { customer, number } => {
                format!("blocked number ({} for customer {customer})", number.trim())
            }
            Claim::Order { customer } => format!("order (for customer {customer})"),
            Claim::PartnerUser { email } => format!("partner user ({})", email.trim()),
        }
    }

    pub fn key(&self) -> String {
        match self {
            Claim::Customer { company } => format!("customer|{}", natural_key(company)),
            Claim::User { customer, email } => {
                format!("user|{customer}|{}", natural_key(email))
            }
            Claim::Number { number } => format!("number|{}", number.trim()),
            Claim::Blocked { customer, number } => {
                format!("blocked|{customer}|{}", number.trim())
            }
            Claim::Order { customer } => format!("order|{customer}"),
            Claim::PartnerUser { email } => format!("partner-user|{}", natural_key(email)),
        }
    }
}

/// The job whose claims these are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub job: String,
    pub pid: u32,
    /// The job's input, as messages name it.
    pub file: String,
    /// The job's lock file: held while its process lives.
    pub lock: PathBuf,
}

/// Another job's hold on a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Other {
    pub job: String,
    pub pid: u32,
    pub file: String,
}

impl std::fmt::Display for Other {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {} ({}, process {})", self.job, self.file, self.pid)
    }
}

/// What taking a claim gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// The row may make it. `contested`: another job has claimed it too (now or lately), so
    /// what the row knows of the account may be older than what that job made: look afresh.
    Mine { contested: bool },
    /// A live job is making it: wait for that job's row to end, then look.
    Wait(Other),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Planned,
    Making,
    Done,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Planned => "planned",
            State::Making => "making",
            State::Done => "done",
        }
    }

    fn parse(s: &str) -> Option<State> {
        [State::Planned, State::Making, State::Done]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A cheap-to-clone handle on the claims of one account.
#[derive(Clone)]
pub struct Claims {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    account: String,
    conn: Mutex<Connection>,
    me: Mutex<Option<Holder>>,
    alive: Mutex<HashMap<PathBuf, (bool, Instant)>>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("path", &self.inner.path)
            .field("account", &self.inner.account)
            .finish()
    }
}

impl Claims {
    /// Opens (creating) the claims file at `path` for `account`.
    pub fn open(path: &Path, account: &str) -> Result<Claims> {
        let conn = super::open_shared(path, Duration::from_secs(10), |conn| {
            conn.pragma_update(None, "journal_mode", "WAL")?;
            // A claim lost in a power cut costs a look in the account, not a duplicate: the
            // job that lost it is gone too, and its rows look afresh when resumed.
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(SCHEMA)?;
            conn.execute(
                "DELETE FROM claims WHERE state = 'done' AND at_ms < ?1",
                params![now_ms() - KEEP_DONE_MS],
            )
            .map(|_| ())
        })?;
        Ok(Claims {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                account: account.to_string(),
                conn: Mutex::new(conn),
                me: Mutex::new(None),
                alive: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn me(&self) -> Option<Holder> {
        self.inner
            .me
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn err(&self, e: rusqlite::Error) -> JournalError {
        sql(&self.inner.path, e)
    }

    /// Makes these claims the job's, and publishes what it plans to make: `(row, claim key)`.
    pub fn join(&self, me: Holder, planned: &[(i64, String)]) -> Result<()> {
        *self.inner.me.lock().unwrap_or_else(|p| p.into_inner()) = Some(me.clone());
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        {
            for (row, key) in planned {
                self.upsert(&tx, &me, *row, key, State::Planned)?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records `row`'s claim on `key` as `state`, now, whatever it was (a resumed job plans
    /// again what it had left).
    fn upsert(
        &self,
        conn: &Connection,
        me: &Holder,
        row: i64,
        key: &str,
        state: State,
    ) -> Result<()> {
        let mut st = conn
            .prepare_cached(
                "INSERT INTO claims (account, key, job, row, pid, file, lock, state, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (account, key, job, row) DO UPDATE
                 SET pid = excluded.pid, lock = excluded.lock, state = excluded.state,
                     at_ms = excluded.at_ms",
            )
            .map_err(|e| self.err(e))?;
        st.execute(params![
            self.inner.account,
            key,
            me.job,
            row,
            me.pid,
            me.file,
            me.lock.to_string_lossy(),
            state.as_str(),
            now_ms()
        ])
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Takes `key` for `row` of this job, unless a live job is making it.
    pub fn take(&self, row: i64, key: &str) -> Result<Take> {
        let Some(me) = self.me() else {
            return Ok(Take::Mine { contested: false });
        };
        let mut conn = self.conn();
        // Read and written under the write lock: two jobs taking one key at once are
        // serialised here, and the second sees the first's claim.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let others = self.others_in(&tx, key, Some(&me.job))?;
        let now = now_ms();
        for ((other, lock), state, at_ms) in &others {
            // A job that died while making it may have left its request at the server: its
            // claim stands until that request must be done with.
            if *state == State::Making && (self.is_alive(lock) || now - at_ms < IN_FLIGHT_MS) {
                return Ok(Take::Wait(other.clone()));
            }
        }
        self.upsert(&tx, &me, row, key, State::Making)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Take::Mine {
            contested: !others.is_empty(),
        })
    }

    /// A live job (not this one) that plans to make `key` or is making it: what a row naming
    /// it waits for.
    pub fn maker(&self, key: &str) -> Result<Option<Other>> {
        let me = self.me().map(|m| m.job);
        let others = self.others_in(&self.conn(), key, me.as_deref())?;
        for ((other, lock), state, _) in others {
            if state != State::Done && self.is_alive(&lock) {
                return Ok(Some(other));
            }
        }
        Ok(None)
    }

    /// Row `row` of this job has ended: what it claimed is made (or will not be).
    pub fn done(&self, row: i64) -> Result<()> {
        let Some(me) = self.me() else { return Ok(()) };
        self.conn()
            .execute(
                "UPDATE claims SET state = 'done', at_ms = ?3 WHERE job = ?1 AND row = ?2",
                params![me.job, row, now_ms()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The job has stopped: none of its claims holds another job back any more.
    pub fn leave(&self) -> Result<()> {
        let Some(me) = self.me() else { return Ok(()) };
        self.conn()
            .execute(
                "UPDATE claims SET state = 'done', at_ms = ?2 WHERE job = ?1 AND state != 'done'",
                params![me.job, now_ms()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Other jobs' claims on `key`, with their lock files.
    #[allow(clippy::type_complexity)]
    fn others_in(
        &self,
        conn: &Connection,
        key: &str,
        me: Option<&str>,
    ) -> Result<Vec<((Other, PathBuf), State, i64)>> {
        let mut st = conn
            .prepare(
                "SELECT job, pid, file, lock, state, at_ms FROM claims
                 WHERE account = ?1 AND key = ?2 AND job != ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![self.inner.account, key, me.unwrap_or("")], |r| {
                let state: String = r.get(4)?;
                let at_ms: i64 = r.get(5)?;
                Ok((
                    (
                        Other {
                            job: r.get(0)?,
                            pid: r.get(1)?,
                            file: r.get(2)?,
                        },
                        PathBuf::from(r.get::<_, String>(3)?),
                    ),
                    state,
                    at_ms,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (who, state, at_ms) = r.map_err(|e| self.err(e))?;
            let state = State::parse(&state).ok_or_else(|| JournalError::Invalid {
                path: self.inner.path.clone(),
                message: format!(
                    "a claim of job {} has the unknown state {state:?}",
                    who.0.job
                ),
            })?;
            out.push((who, state, at_ms));
        }
        Ok(out)
    }

    /// Whether the process holding the job lock at `lock` is alive, tested at most once a
    /// second per job.
    fn is_alive(&self, lock: &Path) -> bool {
        let mut cache = self.inner.alive.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((alive, at)) = cache.get(lock) {
            if at.elapsed() < LIVENESS_TTL {
                return *alive;
            }
        }
        // A lock that cannot be looked at is taken as held: waiting a while is safe, making
        // something twice is not.
        let alive = super::JobLock::is_held(lock).unwrap_or(true);
        cache.insert(lock.to_path_buf(), (alive, Instant::now()));
        alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JobLock;

    fn holder(dir: &Path, job: &str) -> (Holder, JobLock) {
        let lock = dir.join(format!("{job}.lock"));
        let held = JobLock::acquire(&lock).unwrap().unwrap();
        (
            Holder {
                job: job.into(),
                pid: std::process::id(),
                file: format!("{job}.csv"),
                lock,
            },
            held,
        )
    }

    /// Two jobs started together on one account open the claims file at once; the second to
    /// switch it to WAL is answered "busy" without SQLite's busy wait. It once refused the
    /// whole run ("cannot use claims.sqlite: database is locked").
    #[test]
    fn jobs_opening_the_claims_file_together_all_open_it() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("claims.sqlite");
            let start = Arc::new(std::sync::Barrier::new(6));
            let opened: Vec<_> = (0..6)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Claims::open(&path, "acct").map(|_| ())
                    })
                })
                .collect();
            for t in opened {
                if let Err(e) = t.join().unwrap() {
                    panic!("round {round}: {e}");
                }
            }
        }
    }

    #[test]
    fn a_second_job_waits_for_what_the_first_is_making_then_looks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims.sqlite");
        let a = Claims::open(&path, "https://api").unwrap();
        let b = Claims::open(&path, "https://api").unwrap();
        let other_account = Claims::open(&path, "http://127.0.0.1:9").unwrap();
        let (ha, _la) = holder(dir.path(), "A");
        let (hb, _lb) = holder(dir.path(), "B");
        let (hc, _lc) = holder(dir.path(), "C");
        let acme = Claim::Customer {
            company: " Acme Ltd ",
        }
        .key();
        a.join(ha, &[(1, acme.clone())]).unwrap();
        b.join(hb, &[]).unwrap();
        other_account.join(hc, &[]).unwrap();
        // Planned, not yet being made: a row naming it waits, a row making it goes first.
        assert_eq!(b.maker(&acme).unwrap().map(|o| o.job), Some("A".into()));
        assert_eq!(a.take(1, &acme).unwrap(), Take::Mine { contested: false });
        match b
            .take(
                7,
                &Claim::Customer {
                    company: "acme ltd",
                }
                .key(),
            )
            .unwrap()
        {
            Take::Wait(o) => assert_eq!(o.job, "A"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            other_account.take(1, &acme).unwrap(),
            Take::Mine { contested: false },
            "another account is another account"
        );
        a.done(1).unwrap();
        assert_eq!(b.take(7, &acme).unwrap(), Take::Mine { contested: true });
        assert_eq!(b.maker(&acme).unwrap(), None);
    }

    #[test]
    fn a_dead_jobs_claims_are_waited_on_only_while_its_request_may_be_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims.sqlite");
        let a = Claims::open(&path, "acct").unwrap();
        let b = Claims::open(&path, "acct").unwrap();
        let (ha, la) = holder(dir.path(), "A");
        let (hb, _lb) = holder(dir.path(), "B");
        let key = Claim::Order { customer: "cus_1" }.key();
        a.join(ha, &[]).unwrap();
        b.join(hb, &[]).unwrap();
        assert_eq!(a.take(3, &key).unwrap(), Take::Mine { contested: false });
        drop(la);
        // Its last request may still be at the server: waited on a while yet.
        assert!(matches!(b.take(3, &key).unwrap(), Take::Wait(_)));
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE claims SET at_ms = at_ms - ?1",
                params![IN_FLIGHT_MS],
            )
            .unwrap();
        b.inner.alive.lock().unwrap().clear();
        assert_eq!(b.take(3, &key).unwrap(), Take::Mine { contested: true });
    }
}
