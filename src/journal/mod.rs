//! The job journal: one SQLite file per job, the only place plbulk keeps what a job has done.
//!
//! All of plbulk's SQL lives in this module (and its [`budget`] sibling), as in cargo's SQLite
//! layer: the engine calls typed methods. The file holds the job (input fingerprint, options,
//! base URL and key id, never the secret), every row of the plan (where it came from, its cells
//! as given, the work it stands for, its dependencies and state) and every attempt. An
//! attempt's *intent* is committed with `synchronous=FULL` before its request is sent and its
//! outcome after (without waiting for the disk: the next intent's commit carries it), so after
//! a crash or a power cut a row whose request may have gone out is known to be in doubt, and is
//! reconciled with the API before anything is sent again.
//!
//! Migrations are an append-only list tracked by `PRAGMA user_version`.

pub mod budget;
pub mod claims;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use serde::{Deserialize, Serialize};

use crate::model::{IdKind, JobState, NewRow, RowIds, RowState, SheetRec, Task, Work};

/// Each entry moves the schema one version on. Never edit or remove one: only append.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE job (
        id TEXT PRIMARY KEY,
        created_at_ms INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        inputs TEXT NOT NULL,
        options TEXT NOT NULL,
        base_url TEXT NOT NULL,
        key_id TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at_ms INTEGER,
        finished_at_ms INTEGER
    );
    CREATE TABLE sheets (
        idx INTEGER PRIMARY KEY,
        file TEXT NOT NULL,
        sheet TEXT NOT NULL,
        kind TEXT NOT NULL,
        headers TEXT NOT NULL
    );
    CREATE TABLE rows (
        id INTEGER PRIMARY KEY,
        sheet INTEGER NOT NULL REFERENCES sheets(idx),
        row_no INTEGER NOT NULL,
        cells TEXT NOT NULL,
        work TEXT,
        deps TEXT NOT NULL DEFAULT '[]',
        lead INTEGER,
        state TEXT NOT NULL,
        outcome TEXT,
        detail TEXT,
        ids TEXT NOT NULL DEFAULT '{}',
        status INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        doubt INTEGER NOT NULL DEFAULT 0,
        finished_at_ms INTEGER
    );
    CREATE INDEX rows_by_state ON rows(state);
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        row_id INTEGER NOT NULL REFERENCES rows(id),
        step TEXT NOT NULL,
        operation TEXT NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        answered_at_ms INTEGER,
        status INTEGER,
        result TEXT,
        detail TEXT
    );
    CREATE INDEX attempts_by_row ON attempts(row_id);",
    // 2: finishing an order's lead row updates its member rows; without this each finish
    // scanned every row of the job.
    "CREATE INDEX rows_by_lead ON rows(lead) WHERE lead IS NOT NULL;",
    // 3: the content type an answer actually came with.
    "ALTER TABLE attempts ADD COLUMN content_type TEXT;",
    // 4: a source row that stands for several tasks has a journal row per task, each naming
    // its task; NULL is a row's only task (every row journaled before). The index keeps the
    // folding of tasks onto their rows, for counts, off the rows of one task.
    "ALTER TABLE rows ADD COLUMN task TEXT;
     CREATE INDEX rows_with_task ON rows(sheet, row_no) WHERE task IS NOT NULL;",
];

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// The file is a database without a job's record: a journal being created, before its
    /// first commit, or one whose record is lost.
    #[error("{}: it holds no job (was it created by plbulk?)", path.display())]
    NoJob { path: PathBuf },
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, JournalError>;

/// A row's ids as the JSON merged into its `ids` column (`json_patch`: the keys it holds are
/// set, the others left as they are).
fn ids_json(ids: &RowIds) -> String {
    serde_json::to_string(ids).expect("ids serialise")
}

/// A column holding `T` as JSON.
struct Json<T>(T);

impl<T: Serialize> ToSql for Json<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        serde_json::to_string(&self.0)
            .map(ToSqlOutput::from)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

impl<T: for<'de> Deserialize<'de>> FromSql for Json<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(Json)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A value of row `row` that did not read back: carried out of a row mapper as a rusqlite
/// error, and turned into a [`JournalError::Invalid`] naming the row by [`Journal::err`].
#[derive(Debug)]
struct Unreadable {
    row: i64,
    what: &'static str,
    why: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "row {}: its {} cannot be read ({}); the journal is damaged, or was written by another plbulk",
            self.row, self.what, self.why
        )
    }
}

impl std::error::Error for Unreadable {}

fn unreadable(row: i64, what: &'static str) -> impl Fn(rusqlite::Error) -> rusqlite::Error {
    move |e| {
        let why = match &e {
            rusqlite::Error::FromSqlConversionFailure(_, _, inner) => inner.to_string(),
            other => other.to_string(),
        };
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(Unreadable { row, what, why }),
        )
    }
}

/// The columns [`row_rec`] reads, in its order.
const ROW_REC: &str = "id, sheet, row_no, work, deps, lead, state, ids, attempts, doubt, task";

/// A row as the engine needs it, from the columns of [`ROW_REC`].
fn row_rec(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowRec> {
    let id: i64 = r.get(0)?;
    // Either flag: unsettled, or a request in flight when its process died.
    let flags: i64 = r.get(9)?;
    Ok(RowRec {
        id,
        sheet: r.get(1)?,
        row_no: r.get(2)?,
        work: r
            .get::<_, Option<Json<Work>>>(3)
            .map_err(unreadable(id, "planned work"))?
            .map(|j| j.0),
        deps: r
            .get::<_, Json<Vec<i64>>>(4)
            .map_err(unreadable(id, "dependencies"))?
            .0,
        lead: r.get(5)?,
        state: r.get(6).map_err(unreadable(id, "state"))?,
        ids: r
            .get::<_, Json<RowIds>>(7)
            .map_err(unreadable(id, "ids"))?
            .0,
        attempts: r.get(8)?,
        doubt: flags != 0,
        task: r.get(10).map_err(unreadable(id, "task"))?,
    })
}

/// One input file as the job saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub size: u64,
    pub hash: String,
}

/// The job's own record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMeta {
    pub id: String,
    pub created_at_ms: i64,
    pub fingerprint: String,
    pub inputs: Vec<InputFile>,
    /// The run's options as JSON, so a resume runs as the job began.
    pub options: serde_json::Value,
    pub base_url: String,
    pub key_id: String,
    pub state: JobState,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

/// How an attempt ended, for [`Journal::end_attempt`].
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// The status that came, if an answer came.
    pub status: Option<u16>,
    /// The content type that came with it.
    pub content_type: Option<&'a str>,
    pub result: AttemptResult,
    pub detail: Option<&'a str>,
    /// What a create made: (kind of id, id).
    pub made: Option<(IdKind, &'a str)>,
    /// Whether the row's doubt is over: not after an unknown outcome, nor after a create whose
    /// id could not be read.
    pub settled: bool,
}

/// The `doubt` column holds two flags. Kept apart because what ends one does not end the
/// other: a refusal (a 404 after an unknown outcome) answers its own request and proves
/// nothing about the one before it.
mod doubt {
    /// An answered request of the row may have been applied, and nothing has yet shown
    /// whether it was.
    pub const UNSETTLED: i64 = 1;
    /// A request's intent is journaled and its answer is not: the process died with it in
    /// flight, or before sending it.
    pub const IN_FLIGHT: i64 = 2;
}

/// A row as the engine needs it.
#[derive(Debug, Clone)]
pub struct RowRec {
    pub id: i64,
    pub sheet: u32,
    pub row_no: u32,
    /// Which of its source row's tasks this is, when the row stands for several.
    pub task: Option<Task>,
    pub work: Option<Work>,
    pub deps: Vec<i64>,
    pub lead: Option<i64>,
    pub state: RowState,
    pub ids: RowIds,
    pub attempts: u32,
    /// A request of the row may have been applied without the row knowing what it made.
    pub doubt: bool,
}

/// A row's last request: when its intent was journaled, and when its answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastAttempt {
    pub intent_ms: i64,
    pub answered_ms: Option<i64>,
}

/// A row as the results show it.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub id: i64,
    pub sheet: u32,
    pub row_no: u32,
    /// Which of its source row's tasks this is, when the row stands for several.
    pub task: Option<Task>,
    pub cells: Vec<String>,
    pub state: RowState,
    pub detail: Option<String>,
    pub ids: RowIds,
    pub status: Option<u16>,
    pub attempts: u32,
    pub finished_at_ms: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Ok,
    Transient,
    Final,
    Unknown,
    /// Never sent: the job stopped (or its client halted) while the request waited its
    /// turn. The intent is withdrawn: it is no attempt, and the row's doubt is as before it.
    Unsent,
}

impl AttemptResult {
    fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Ok => "ok",
            AttemptResult::Transient => "transient",
            AttemptResult::Final => "final",
            AttemptResult::Unknown => "unknown",
            AttemptResult::Unsent => "unsent",
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An open journal. Methods take `&self`: the connection sits behind a mutex, and every write
/// is its own short transaction.
pub struct Journal {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Creates a new journal at `path` (which must not exist), readable by its owner only.
    pub fn create(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        create_private_file(path).map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Journal::open(path)
    }

    /// Opens an existing journal, migrating it to the current schema.
    pub fn open(path: &Path) -> Result<Journal> {
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        Journal::setup(path, conn)
    }

    /// A journal in memory, for tests.
    pub fn in_memory() -> Result<Journal> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql(path, e))?;
        Journal::setup(path, conn)
    }

    fn setup(path: &Path, mut conn: Connection) -> Result<Journal> {
        let p = path.to_path_buf();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| sql(&p, e))?;
        // WAL: a reader (plbulk status, plbulk results) never blocks the running job.
        // FULL: an intent is on the disk before its request goes out, power cut included.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sql(&p, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| sql(&p, e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| sql(&p, e))?;
        migrate(&p, &mut conn)?;
        // The statements each row runs (its intent, its end, what it reads back) are kept
        // prepared rather than parsed again for every row: room for all of them.
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Journal {
            path: p,
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every write is a
        // transaction), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection for a write whose loss in a power cut is safe: an answer, an id, a final
    /// state. It commits without waiting for the disk; the next intent's `synchronous=FULL`
    /// commit makes it durable with itself (the WAL is written in order). Lost, it leaves the
    /// row in doubt, and a doubt is reconciled with the account before anything is re-sent. So
    /// a row costs one fsync, not three.
    fn relaxed(&self) -> Relaxed<'_> {
        let conn = self.conn();
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        Relaxed(conn)
    }

    fn err(&self, e: rusqlite::Error) -> JournalError {
        if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = &e {
            if let Some(u) = inner.downcast_ref::<Unreadable>() {
                return self.invalid(&u.to_string());
            }
        }
        sql(&self.path, e)
    }

    /// Writes the job, its sheets and its planned rows in one transaction.
    pub fn init(&self, meta: &JobMeta, sheets: &[SheetRec], rows: &[NewRow]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO job (id, created_at_ms, fingerprint, inputs, options, base_url, key_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                meta.id,
                meta.created_at_ms,
                meta.fingerprint,
                Json(&meta.inputs),
                meta.options.to_string(),
                meta.base_url,
                meta.key_id,
                meta.state,
            ],
        )
        .map_err(|e| self.err(e))?;
        {
            let mut st = tx
                .prepare("INSERT INTO sheets (idx, file, sheet, kind, headers) VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(|e| self.err(e))?;
            for s in sheets {
                st.execute(params![s.idx, s.file, s.sheet, s.kind, Json(&s.headers)])
                    .map_err(|e| self.err(e))?;
            }
            let mut st = tx
                .prepare(
                    "INSERT INTO rows (id, sheet, row_no, cells, work, deps, lead, state, outcome, detail, task)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(|e| self.err(e))?;
            for (i, r) in rows.iter().enumerate() {
                st.execute(params![
                    i as i64 + 1,
                    r.sheet,
                    r.row_no,
                    Json(&r.cells),
                    r.work.as_ref().map(Json),
                    Json(&r.deps),
                    r.lead,
                    r.state,
                    r.state.is_final().then(|| r.state.label()),
                    r.detail,
                    r.task,
                ])
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn meta(&self) -> Result<JobMeta> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT id, created_at_ms, fingerprint, inputs, options, base_url, key_id, state,
                        started_at_ms, finished_at_ms FROM job",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((id, created, fp, inputs, options, base_url, key_id, state, started, finished)) =
            row
        else {
            return Err(JournalError::NoJob {
                path: self.path.clone(),
            });
        };
        Ok(JobMeta {
            id,
            created_at_ms: created,
            fingerprint: fp,
            inputs: serde_json::from_str(&inputs)
                .map_err(|e| self.invalid(&format!("inputs: {e}")))?,
            options: serde_json::from_str(&options)
                .map_err(|e| self.invalid(&format!("options: {e}")))?,
            base_url,
            key_id,
            state: JobState::parse(&state)
                .ok_or_else(|| self.invalid(&format!("unknown job state {state:?}")))?,
            started_at_ms: started,
            finished_at_ms: finished,
        })
    }

    fn invalid(&self, message: &str) -> JournalError {
        JournalError::Invalid {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    pub fn set_job_state(&self, state: JobState) -> Result<()> {
        let now = now_ms();
        let conn = self.conn();
        let finished = (state == JobState::Finished).then_some(now);
        conn.execute(
            "UPDATE job SET state = ?1, finished_at_ms = COALESCE(?2, finished_at_ms),
                            started_at_ms = COALESCE(started_at_ms, ?3)",
            params![state, finished, now],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn sheets(&self) -> Result<Vec<SheetRec>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT idx, file, sheet, kind, headers FROM sheets ORDER BY idx")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(SheetRec {
                    idx: r.get(0)?,
                    file: r.get(1)?,
                    sheet: r.get(2)?,
                    kind: r.get(3)?,
                    headers: r
                        .get::<_, Json<Vec<String>>>(4)
                        .map_err(unreadable(i64::from(r.get::<_, u32>(0)?), "sheet headers"))?
                        .0,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Every row, in plan order, as the engine needs it.
    pub fn rows(&self) -> Result<Vec<RowRec>> {
        let mut out = Vec::new();
        self.each_row(|r| out.push(r))?;
        Ok(out)
    }

    /// Hands every row, in plan order, to `f`, one at a time: a million rows with their work
    /// need not be in memory at once. `f` must not call the journal (its connection is held).
    pub fn each_row(&self, mut f: impl FnMut(RowRec)) -> Result<()> {
        let conn = self.conn();
        let mut st = conn
            .prepare(&format!("SELECT {ROW_REC} FROM rows ORDER BY id"))
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            f(row_rec(r).map_err(|e| self.err(e))?);
        }
        Ok(())
    }

    /// One row, as the engine needs it when the row is about to run.
    pub fn row(&self, id: i64) -> Result<RowRec> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!("SELECT {ROW_REC} FROM rows WHERE id = ?1"))
            .map_err(|e| self.err(e))?;
        st.query_row(params![id], row_rec)
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| self.invalid(&format!("row {id} is not in the journal")))
    }

    /// Every row with its cells and outcome, in input order (sheet, then row).
    pub fn result_rows(&self) -> Result<Vec<ResultRow>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, sheet, row_no, cells, state, detail, ids, status, attempts, finished_at_ms, task
                 FROM rows ORDER BY sheet, row_no, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                let id: i64 = r.get(0)?;
                Ok(ResultRow {
                    id,
                    sheet: r.get(1)?,
                    row_no: r.get(2)?,
                    cells: r
                        .get::<_, Json<Vec<String>>>(3)
                        .map_err(unreadable(id, "cells"))?
                        .0,
                    state: r.get(4).map_err(unreadable(id, "state"))?,
                    detail: r.get(5)?,
                    ids: r
                        .get::<_, Json<RowIds>>(6)
                        .map_err(unreadable(id, "ids"))?
                        .0,
                    status: r.get(7)?,
                    attempts: r.get(8)?,
                    finished_at_ms: r.get(9)?,
                    task: r.get(10).map_err(unreadable(id, "task"))?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Source rows per state: a row of several tasks counts once, in its tasks' folded state
    /// ([`RowState::fold`]).
    pub fn counts(&self) -> Result<Vec<(RowState, u64)>> {
        let mut totals: Vec<(RowState, u64)> = Vec::new();
        for (_, state, n) in self.counts_by_sheet()? {
            match totals.iter_mut().find(|(s, _)| *s == state) {
                Some((_, t)) => *t += n,
                None => totals.push((state, n)),
            }
        }
        totals.sort_by_key(|(s, _)| RowState::ALL.iter().position(|x| x == s));
        Ok(totals)
    }

    /// Source rows per sheet and state. Rows of one task are counted by SQLite (progress needs
    /// no row loaded); the tasks of rows that stand for several are read through their own
    /// index and folded here.
    pub fn counts_by_sheet(&self) -> Result<Vec<(u32, RowState, u64)>> {
        let conn = self.conn();
        let mut out: Vec<(u32, RowState, u64)> = Vec::new();
        let mut add = |sheet: u32, state: RowState, n: u64| match out
            .iter_mut()
            .find(|(x, s, _)| *x == sheet && *s == state)
        {
            Some((_, _, t)) => *t += n,
            None => out.push((sheet, state, n)),
        };
        {
            let mut st = conn
                .prepare(
                    "SELECT sheet, state, COUNT(*) FROM rows WHERE task IS NULL GROUP BY sheet, state",
                )
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, RowState>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(|e| self.err(e))?;
            for r in rows {
                let (sheet, state, n) = r.map_err(|e| self.err(e))?;
                add(sheet, state, n as u64);
            }
        }
        let mut st = conn
            .prepare(
                "SELECT sheet, row_no, state FROM rows WHERE task IS NOT NULL ORDER BY sheet, row_no",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        let mut current: Option<((u32, u32), RowState)> = None;
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let at: (u32, u32) = (
                r.get(0).map_err(|e| self.err(e))?,
                r.get(1).map_err(|e| self.err(e))?,
            );
            let state: RowState = r.get(2).map_err(|e| self.err(e))?;
            current = match current {
                Some((was, folded)) if was == at => {
                    Some((at, RowState::fold([folded, state]).unwrap_or(state)))
                }
                Some(((sheet, _), folded)) => {
                    add(sheet, folded, 1);
                    Some((at, state))
                }
                None => Some((at, state)),
            };
        }
        if let Some(((sheet, _), folded)) = current {
            add(sheet, folded, 1);
        }
        Ok(out)
    }

    /// The planned work of up to `limit` pending rows, in plan order: a sample to estimate the
    /// writes still to make.
    pub fn pending_work_sample(&self, limit: u32) -> Result<Vec<Work>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT id, work FROM rows WHERE state = 'pending' AND work IS NOT NULL ORDER BY id LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![limit], |r| {
                let id: i64 = r.get(0)?;
                Ok(r.get::<_, Json<Work>>(1)
                    .map_err(unreadable(id, "planned work"))?
                    .0)
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Attempts sent so far, and the send time of the first and last.
    pub fn attempt_stats(&self) -> Result<(u64, Option<i64>, Option<i64>)> {
        let conn = self.conn();
        conn.query_row(
            "SELECT COUNT(*), MIN(sent_at_ms), MAX(sent_at_ms) FROM attempts
             WHERE result IS NOT 'unsent'",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| self.err(e))
    }

    /// Records the intent to send `operation` for `row`, durably, before it is sent. The row is
    /// in doubt until [`Journal::end_attempt`].
    pub fn begin_attempt(&self, row: i64, step: &str, operation: &str) -> Result<i64> {
        self.begin_attempt_with(row, step, operation, &RowIds::default())
    }

    /// As [`Journal::begin_attempt`], recording in the same commit the ids the row has found
    /// since its last write (its customer, its user): no commit of their own.
    pub fn begin_attempt_with(
        &self,
        row: i64,
        step: &str,
        operation: &str,
        ids: &RowIds,
    ) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.prepare_cached(
            "INSERT INTO attempts (row_id, step, operation, sent_at_ms) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| st.execute(params![row, step, operation, now_ms()]))
        .map_err(|e| self.err(e))?;
        let id = tx.last_insert_rowid();
        tx.prepare_cached(
            "UPDATE rows SET doubt = doubt | ?3, attempts = attempts + 1, ids = json_patch(ids, ?2)
             WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![row, ids_json(ids), doubt::IN_FLIGHT]))
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Records how an attempt ended, with the id it made if it was a create, in one
    /// transaction: a create answered but not yet recorded must stay in doubt, or a kill in
    /// between would make it again. A success that settles clears the row's doubt; an
    /// unknown outcome (or a success whose id is unreadable) leaves it unsettled; a refusal or
    /// a 429 leaves it as it was before the attempt.
    pub fn end_attempt(&self, attempt: i64, row: i64, answer: &Answer<'_>) -> Result<()> {
        let mut conn = self.relaxed();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "UPDATE attempts SET answered_at_ms = ?1, status = ?2, result = ?3, detail = ?4,
                                 content_type = ?6
             WHERE id = ?5",
            params![
                now_ms(),
                answer.status,
                answer.result.as_str(),
                answer.detail,
                attempt,
                answer.content_type
            ],
        )
        .map_err(|e| self.err(e))?;
        let made = answer.made.map(|(k, v)| {
            let mut m = RowIds::default();
            m.set(k, v);
            ids_json(&m)
        });
        // The doubt after the answer; None keeps what the row had before the attempt.
        let doubt = match (answer.result, answer.settled) {
            (AttemptResult::Ok, true) => Some(0),
            (AttemptResult::Ok, false) | (AttemptResult::Unknown, _) => Some(doubt::UNSETTLED),
            (AttemptResult::Transient | AttemptResult::Final | AttemptResult::Unsent, _) => None,
        };
        let withdrawn = answer.result == AttemptResult::Unsent;
        tx.execute(
            "UPDATE rows SET doubt = COALESCE(?1, doubt & ?5), status = COALESCE(?2, status),
                             ids = CASE WHEN ?3 IS NULL THEN ids ELSE json_patch(ids, ?3) END,
                             attempts = attempts - ?6
             WHERE id = ?4",
            params![
                doubt,
                answer.status,
                made,
                row,
                doubt::UNSETTLED,
                i64::from(withdrawn)
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// The send time of the first attempt of `row` still in doubt or unanswered, for matching
    /// what it may have made ("an order created after the first attempt").
    pub fn first_attempt_ms(&self, row: i64, step: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        conn.prepare_cached("SELECT MIN(sent_at_ms) FROM attempts WHERE row_id = ?1 AND step = ?2")
            .and_then(|mut st| st.query_row(params![row, step], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// The last attempt of `row`, if it has one.
    pub fn last_attempt(&self, row: i64) -> Result<Option<LastAttempt>> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT sent_at_ms, answered_at_ms FROM attempts WHERE row_id = ?1
             ORDER BY id DESC LIMIT 1",
        )
        .and_then(|mut st| {
            st.query_row(params![row], |r| {
                Ok(LastAttempt {
                    intent_ms: r.get(0)?,
                    answered_ms: r.get(1)?,
                })
            })
            .optional()
        })
        .map_err(|e| self.err(e))
    }

    /// The steps of `row` whose latest attempt was answered with a success: after a process
    /// died between that answer and the row's final state, the answer stands and the request
    /// is not sent again.
    pub fn answered_steps(&self, row: i64) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT a.step FROM attempts a
                 WHERE a.row_id = ?1 AND a.result = 'ok'
                   AND a.id = (SELECT MAX(b.id) FROM attempts b
                               WHERE b.row_id = a.row_id AND b.step = a.step)",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![row], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Records ids found or made for `row` (merged into what is there) and clears its doubt:
    /// what the ids name is established.
    pub fn set_ids(&self, row: i64, ids: &RowIds) -> Result<()> {
        let conn = self.relaxed();
        conn.prepare_cached("UPDATE rows SET ids = json_patch(ids, ?1), doubt = 0 WHERE id = ?2")
            .and_then(|mut st| st.execute(params![ids_json(ids), row]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Gives `row` (and the rows it leads) its final state.
    pub fn finish_row(
        &self,
        row: i64,
        state: RowState,
        detail: Option<&str>,
        status: Option<u16>,
    ) -> Result<()> {
        self.finish_row_with(row, state, detail, status, &RowIds::default())
    }

    /// As [`Journal::finish_row`], recording in the same commit ids found since the row's last
    /// write.
    pub fn finish_row_with(
        &self,
        row: i64,
        state: RowState,
        detail: Option<&str>,
        status: Option<u16>,
        ids: &RowIds,
    ) -> Result<()> {
        let mut conn = self.relaxed();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let now = now_ms();
        tx.prepare_cached(
            "UPDATE rows SET state = ?1, outcome = ?2, detail = ?3, status = COALESCE(?4, status),
                             doubt = 0, finished_at_ms = ?5, ids = json_patch(ids, ?7)
             WHERE id = ?6",
        )
        .and_then(|mut st| {
            st.execute(params![
                state,
                state.label(),
                detail,
                status,
                now,
                row,
                ids_json(ids)
            ])
        })
        .map_err(|e| self.err(e))?;
        tx.prepare_cached(
            "UPDATE rows SET state = ?1, outcome = ?2, detail = ?3, status = COALESCE(?4, status),
                             ids = (SELECT ids FROM rows WHERE id = ?6), finished_at_ms = ?5
             WHERE lead = ?6",
        )
        .and_then(|mut st| st.execute(params![state, state.label(), detail, status, now, row]))
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Lets the file grow by `pages` more at most: every write past that fails as on a full
    /// disk (SQLITE_FULL), for tests of how a job ends when its disk fills.
    pub fn limit_growth(&self, pages: u32) -> Result<()> {
        let conn = self.conn();
        let now: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        conn.query_row(
            &format!("PRAGMA max_page_count = {}", now + i64::from(pages)),
            [],
            |_| Ok(()),
        )
        .map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check`: "ok" or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        let conn = self.conn();
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

/// A connection borrowed with `synchronous=NORMAL`, set back to FULL when dropped.
struct Relaxed<'a>(std::sync::MutexGuard<'a, Connection>);

impl std::ops::Deref for Relaxed<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl std::ops::DerefMut for Relaxed<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

impl Drop for Relaxed<'_> {
    fn drop(&mut self) {
        let _ = self.0.pragma_update(None, "synchronous", "FULL");
    }
}

/// Holds a job for one process: two processes running the same job would send the same rows.
/// The lock is SQLite's own exclusive lock on a small file beside the journal, which the
/// operating system drops when the process dies, killed or not, so a resume after a crash
/// takes it at once.
pub struct JobLock {
    _conn: Connection,
}

/// How long taking a lock waits out another process's hold: long enough for a [`JobLock::is_held`]
/// probe (a read of one page) to be over, so that `plbulk status` never makes a resume or a run
/// refuse; short enough that a second run of a running job is still refused at once.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

impl JobLock {
    /// Takes the lock, or says the job is running elsewhere.
    pub fn acquire(path: &Path) -> Result<Option<JobLock>> {
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        conn.busy_timeout(LOCK_PATIENCE).map_err(|e| sql(path, e))?;
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(|e| sql(path, e))?;
        let taken = conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS held (pid INTEGER);
             BEGIN EXCLUSIVE; DELETE FROM held; INSERT INTO held VALUES (0); COMMIT;",
        );
        match taken {
            Ok(()) => Ok(Some(JobLock { _conn: conn })),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(sql(path, e)),
        }
    }
}

impl JobLock {
    /// Whether a process holds the lock at `path`, asked without taking it and without
    /// disturbing its holder: a read-only look at the file, which the holder's exclusive lock
    /// refuses at once. While the look lasts (one page read) a process taking the lock waits
    /// for it (a second, at most) rather than failing. No file: no process ever took it.
    pub fn is_held(path: &Path) -> Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| sql(path, e))?;
        conn.busy_timeout(std::time::Duration::ZERO)
            .map_err(|e| sql(path, e))?;
        match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        }) {
            Ok(_) => Ok(false),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Ok(true)
            }
            // A transaction left half done (its rollback journal beside the file) is one whose
            // holder died mid-way: only a process with write access can roll it back, and the
            // next to take the lock does.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ReadOnly =>
            {
                Ok(false)
            }
            Err(e) => Err(sql(path, e)),
        }
    }
}

/// Reads a job's record without migrating or writing anything: for `plbulk jobs` and for
/// finding the unfinished job of an input among many. A file that is a database but holds no
/// job record is [`JournalError::NoJob`].
pub fn peek(path: &Path) -> Result<JobMeta> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| sql(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| sql(path, e))?;
    let has_job: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'job'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| sql(path, e))?;
    if !has_job {
        return Err(JournalError::NoJob {
            path: path.to_path_buf(),
        });
    }
    let j = Journal {
        path: path.to_path_buf(),
        conn: Mutex::new(conn),
    };
    j.meta()
}

fn migrate(path: &Path, conn: &mut Connection) -> Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| sql(path, e))?;
    let target = MIGRATIONS.len() as i64;
    if version > target {
        return Err(JournalError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "it was written by a newer plbulk (schema {version}, this one knows {target}): upgrade plbulk to resume it"
            ),
        });
    }
    if version == target {
        return Ok(());
    }
    let tx = conn.transaction().map_err(|e| sql(path, e))?;
    for m in &MIGRATIONS[version as usize..] {
        tx.execute_batch(m).map_err(|e| sql(path, e))?;
    }
    tx.pragma_update(None, "user_version", target)
        .map_err(|e| sql(path, e))?;
    tx.commit().map_err(|e| sql(path, e))
}

fn sql(path: &Path, source: rusqlite::Error) -> JournalError {
    JournalError::Sql {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a file that every plbulk process on the machine shares (the call budget, the claims),
/// creating its folder, and runs `setup` on it (WAL, its schema, a sweep).
///
/// Processes started together all set the file up at once. SQLite answers some of that
/// ("busy" while another connection switches the file to WAL or recovers it) at once rather
/// than after its busy wait, so the setup is tried again until `patience` is spent.
pub(crate) fn open_shared(
    path: &Path,
    patience: std::time::Duration,
    setup: impl Fn(&Connection) -> rusqlite::Result<()>,
) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|source| JournalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let conn = Connection::open(path).map_err(|e| sql(path, e))?;
    conn.busy_timeout(patience).map_err(|e| sql(path, e))?;
    let until = std::time::Instant::now() + patience;
    loop {
        match setup(&conn) {
            Ok(()) => return Ok(conn),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if std::time::Instant::now() < until
                    && matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(e) => return Err(sql(path, e)),
        }
    }
}

/// Makes `dir` (and its parents) and, on Unix, keeps it to its owner: a job's folder holds
/// customer data.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `path` empty, readable and writable by its owner only; SQLite keeps the mode for
/// its -wal and -shm files.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> JobMeta {
        JobMeta {
            id: "job-1".into(),
            created_at_ms: 1,
            fingerprint: "fp".into(),
            inputs: vec![InputFile {
                path: "a.csv".into(),
                size: 3,
                hash: "h".into(),
            }],
            options: serde_json::json!({"existing": "skip"}),
            base_url: "http://x".into(),
            key_id: "k".into(),
            state: JobState::Running,
            started_at_ms: None,
            finished_at_ms: None,
        }
    }

    fn row(state: RowState) -> NewRow {
        NewRow {
            sheet: 0,
            row_no: 2,
            task: None,
            cells: vec!["Acme".into()],
            work: Some(Work::DeletePartnerUser {
                partner_user: crate::model::Sel::Id("pus_1".into()),
            }),
            deps: vec![],
            lead: None,
            state,
            detail: None,
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.sqlite");
        let j = Journal::create(&p).unwrap();
        j.init(&meta(), &[], &[]).unwrap();
        drop(j);
        let j = Journal::open(&p).unwrap();
        assert_eq!(j.meta().unwrap(), meta());
    }

    #[test]
    fn the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/j.sqlite");
        Journal::create(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
    }

    fn customers_sheet() -> [SheetRec; 1] {
        [SheetRec {
            idx: 0,
            file: "a.csv".into(),
            sheet: "Customers".into(),
            kind: "customers".into(),
            headers: vec!["Company Name".into()],
        }]
    }

    #[test]
    fn an_attempt_puts_the_row_in_doubt_until_answered() {
        let j = Journal::in_memory().unwrap();
        let sheets = customers_sheet();
        let mut lead = row(RowState::Pending);
        lead.lead = None;
        let mut member = row(RowState::Pending);
        member.lead = Some(1);
        j.init(&meta(), &sheets, &[lead, member]).unwrap();
        let a = j.begin_attempt(1, "create", "Add Customer").unwrap();
        assert!(j.rows().unwrap()[0].doubt);
        j.end_attempt(
            a,
            1,
            &Answer {
                content_type: None,
                status: None,
                result: AttemptResult::Unknown,
                detail: Some("dropped"),
                made: None,
                settled: false,
            },
        )
        .unwrap();
        assert!(j.rows().unwrap()[0].doubt, "unknown keeps the doubt");
        let mut ids = RowIds::default();
        ids.set(IdKind::Customer, "cus_1");
        j.set_ids(1, &ids).unwrap();
        j.finish_row(1, RowState::Succeeded, None, Some(201))
            .unwrap();
        let rows = j.rows().unwrap();
        assert!(!rows[0].doubt);
        assert_eq!(rows[0].attempts, 1);
        assert_eq!(
            rows[1].state,
            RowState::Succeeded,
            "the lead's outcome is its members'"
        );
        assert_eq!(rows[1].ids.get(IdKind::Customer), Some("cus_1"));
        assert_eq!(j.counts().unwrap(), vec![(RowState::Succeeded, 2)]);
        assert_eq!(
            j.counts_by_sheet().unwrap(),
            vec![(0, RowState::Succeeded, 2)]
        );
        assert!(j.pending_work_sample(10).unwrap().is_empty());
        assert_eq!(j.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn a_refusal_after_an_unknown_outcome_keeps_the_doubt() {
        let j = Journal::in_memory().unwrap();
        let sheets = customers_sheet();
        j.init(&meta(), &sheets, &[row(RowState::Pending)]).unwrap();
        let answer = |result, settled| Answer {
            content_type: None,
            status: None,
            result,
            detail: None,
            made: None,
            settled,
        };
        let a = j.begin_attempt(1, "delete", "Delete Customer").unwrap();
        assert!(
            j.rows().unwrap()[0].doubt,
            "an intent without an answer is in doubt"
        );
        assert_eq!(j.last_attempt(1).unwrap().unwrap().answered_ms, None);
        j.end_attempt(a, 1, &answer(AttemptResult::Unknown, false))
            .unwrap();
        assert!(j.rows().unwrap()[0].doubt);
        let last = j.last_attempt(1).unwrap().unwrap();
        assert!(last.answered_ms.is_some_and(|t| t >= last.intent_ms));

        let a = j.begin_attempt(1, "delete", "Delete Customer").unwrap();
        j.end_attempt(a, 1, &answer(AttemptResult::Final, true))
            .unwrap();
        assert!(
            j.rows().unwrap()[0].doubt,
            "a 404 to the second send says nothing of the first"
        );
        assert!(j.answered_steps(1).unwrap().is_empty());

        let a = j.begin_attempt(1, "delete", "Delete Customer").unwrap();
        j.end_attempt(a, 1, &answer(AttemptResult::Ok, true))
            .unwrap();
        assert!(!j.rows().unwrap()[0].doubt, "a success settles it");
        assert_eq!(j.answered_steps(1).unwrap(), vec!["delete".to_string()]);

        let a = j.begin_attempt(1, "delete", "Delete Customer").unwrap();
        j.end_attempt(a, 1, &answer(AttemptResult::Transient, true))
            .unwrap();
        assert!(!j.rows().unwrap()[0].doubt, "a 429 leaves it as it was");
        assert!(
            j.answered_steps(1).unwrap().is_empty(),
            "only the step's latest answer counts"
        );
    }

    /// Issue: a long job slowed as it grew. Every statement a row runs on its way through the
    /// engine (read when picked, its answered steps, its intent and answer, what a doubt
    /// looks up, the ids it finds, its end with its order's members) finds its rows through
    /// an index: one that read a table whole would cost more with every row the job has done.
    #[test]
    fn what_a_row_runs_reads_no_table_whole() {
        static RAN: Mutex<Vec<String>> = Mutex::new(Vec::new());
        fn ran(event: rusqlite::trace::TraceEvent<'_>) {
            if let rusqlite::trace::TraceEvent::Stmt(st, sql) = event {
                let sql = st.expanded_sql().unwrap_or_else(|| sql.to_string());
                RAN.lock().unwrap().push(sql);
            }
        }
        let traced = rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT;
        let j = Journal::in_memory().unwrap();
        let mut member = row(RowState::Pending);
        member.lead = Some(1);
        j.init(
            &meta(),
            &customers_sheet(),
            &[row(RowState::Pending), member, row(RowState::Pending)],
        )
        .unwrap();
        let mut ids = RowIds::default();
        ids.set(IdKind::Customer, "cus_1");
        j.conn().trace_v2(traced, Some(ran));
        j.row(1).unwrap();
        j.answered_steps(1).unwrap();
        let a = j
            .begin_attempt_with(1, "create", "Add Customer", &ids)
            .unwrap();
        j.end_attempt(
            a,
            1,
            &Answer {
                status: Some(201),
                content_type: None,
                result: AttemptResult::Ok,
                detail: None,
                made: Some((IdKind::Customer, "cus_1")),
                settled: true,
            },
        )
        .unwrap();
        j.last_attempt(1).unwrap();
        j.first_attempt_ms(1, "create").unwrap();
        j.set_ids(1, &ids).unwrap();
        j.finish_row_with(1, RowState::Succeeded, None, Some(201), &ids)
            .unwrap();
        j.conn().trace_v2(traced, None);
        let statements = std::mem::take(&mut *RAN.lock().unwrap());
        assert!(
            statements.iter().any(|s| s.contains("WHERE lead")),
            "{statements:#?}"
        );
        let conn = j.conn();
        for sql in &statements {
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = st
                .query_map([], |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "{sql}\nreads a table whole: {plan:?}"
            );
        }
    }

    /// Issue 12: a value that does not read back is an error naming the row, never a
    /// default ("pending", "no dependencies").
    #[test]
    fn an_unreadable_value_is_an_error_naming_its_row() {
        let j = Journal::in_memory().unwrap();
        j.init(
            &meta(),
            &customers_sheet(),
            &[row(RowState::Pending), row(RowState::Pending)],
        )
        .unwrap();
        assert_eq!(j.pending_work_sample(10).unwrap().len(), 2);
        let corrupt = |sql: &str| {
            j.conn().execute_batch(sql).unwrap();
        };
        corrupt("UPDATE rows SET state = 'paused' WHERE id = 2");
        let e = j.rows().unwrap_err().to_string();
        assert!(e.contains("row 2: its state cannot be read"), "{e}");
        assert!(e.contains("unknown row state \"paused\""), "{e}");
        assert!(j.counts().is_err());
        assert!(j.result_rows().is_err());
        corrupt("UPDATE rows SET state = 'pending' WHERE id = 2");
        corrupt("UPDATE rows SET deps = 'not json' WHERE id = 1");
        let e = j.rows().unwrap_err().to_string();
        assert!(e.contains("row 1: its dependencies cannot be read"), "{e}");
        corrupt("UPDATE rows SET deps = '[]', work = '{\"Unknown\":{}}' WHERE id = 1");
        let e = j.rows().unwrap_err().to_string();
        assert!(e.contains("row 1: its planned work cannot be read"), "{e}");
        assert!(j.pending_work_sample(10).is_err());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.sqlite");
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let e = Journal::open(&p).unwrap_err().to_string();
        assert!(e.contains("newer plbulk"), "{e}");
    }

    /// `plbulk status` looks at a job's lock to tell a running job from one whose process
    /// died; the look must never take the lock, nor make a process taking it meanwhile (a
    /// resume starting) fail.
    #[test]
    fn a_look_at_a_lock_neither_takes_it_nor_makes_taking_it_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        assert!(!JobLock::is_held(&p).unwrap(), "no file: never taken");
        let held = JobLock::acquire(&p).unwrap().expect("free");
        assert!(JobLock::is_held(&p).unwrap());
        assert!(JobLock::acquire(&p).unwrap().is_none(), "held elsewhere");
        assert!(JobLock::is_held(&p).unwrap(), "the look left it held");
        drop(held);
        assert!(!JobLock::is_held(&p).unwrap());

        // A look under way (a reader of the file, for a moment) as a process takes the lock.
        let reader =
            Connection::open_with_flags(&p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert!(n > 0);
        let done = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            reader.execute_batch("COMMIT").unwrap();
        });
        let taken = JobLock::acquire(&p).unwrap();
        done.join().unwrap();
        assert!(taken.is_some(), "a look at the lock made taking it fail");
    }

    #[test]
    fn a_database_without_a_job_is_told_apart_from_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.sqlite");
        let j = Journal::create(&empty).unwrap();
        assert!(matches!(peek(&empty), Err(JournalError::NoJob { .. })));
        j.init(&meta(), &[], &[]).unwrap();
        assert_eq!(peek(&empty).unwrap().id, "job-1");
        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
        let e = peek(&garbage).unwrap_err();
        assert!(matches!(e, JournalError::Sql { .. }), "{e}");
    }

    /// Issue 20: a source row may stand for several tasks. Each is a journal row with its own
    /// state; counts are of source rows, each in its tasks' folded state; a task this version
    /// does not know is an error naming the row, never a row of one task.
    #[test]
    fn the_tasks_of_a_row_are_journaled_apart_and_counted_as_their_row() {
        let j = Journal::in_memory().unwrap();
        let task = |row_no: u32, t: Task, state: RowState| NewRow {
            row_no,
            task: Some(t),
            ..row(state)
        };
        j.init(
            &meta(),
            &customers_sheet(),
            &[
                task(2, Task::Customer, RowState::Pending),
                task(2, Task::User, RowState::Pending),
                task(3, Task::Customer, RowState::Pending),
                task(3, Task::User, RowState::Pending),
                NewRow {
                    row_no: 4,
                    ..row(RowState::Pending)
                },
            ],
        )
        .unwrap();
        let tasks: Vec<(u32, Option<Task>)> = j
            .rows()
            .unwrap()
            .iter()
            .map(|r| (r.row_no, r.task))
            .collect();
        assert_eq!(
            tasks,
            [
                (2, Some(Task::Customer)),
                (2, Some(Task::User)),
                (3, Some(Task::Customer)),
                (3, Some(Task::User)),
                (4, None)
            ]
        );
        assert_eq!(j.counts().unwrap(), [(RowState::Pending, 3)]);
        // Row 2's customer made, its user not yet: the row is still to run.
        j.finish_row(1, RowState::Succeeded, None, Some(201))
            .unwrap();
        assert_eq!(j.counts().unwrap(), [(RowState::Pending, 3)]);
        j.finish_row(2, RowState::Failed, Some("refused"), Some(422))
            .unwrap();
        j.finish_row(3, RowState::Succeeded, None, Some(201))
            .unwrap();
        j.finish_row(4, RowState::AlreadyExisted, None, None)
            .unwrap();
        j.finish_row(5, RowState::Succeeded, None, None).unwrap();
        assert_eq!(
            j.counts().unwrap(),
            [(RowState::Succeeded, 2), (RowState::Failed, 1)]
        );
        let results: Vec<Option<Task>> = j.result_rows().unwrap().iter().map(|r| r.task).collect();
        assert_eq!(results.len(), 5, "the journal keeps every task apart");
        assert_eq!(results[1], Some(Task::User));
        j.conn()
            .execute_batch("UPDATE rows SET task = 'pet' WHERE id = 2")
            .unwrap();
        let e = j.rows().unwrap_err().to_string();
        assert!(e.contains("row 2: its task cannot be read"), "{e}");
        assert!(e.contains("unknown task \"pet\""), "{e}");
        assert!(j.result_rows().is_err());
    }
}
