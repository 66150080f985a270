//! The job pipeline: every step from the input files to the results, as plain functions that
//! `plbulk run`, `resume`, `undo` and `validate --online` (and the local web page) call in
//! order. The verbs parse flags and print; what they print comes from what these return and
//! from the [`Event`]s a running job sends its [`Watcher`].
//!
//! The steps, in order:
//!
//! 1. **Read** ([`read`]): every input file read once, each row validated, the digest of each
//!    file taken from the very bytes its rows came from.
//! 2. **Validate** ([`Read::verdict`]): whether the input lets a job start (no unreadable
//!    file; no invalid row unless `--skip-invalid`).
//! 3. **Plan** ([`Read::plan`], then [`Planned::fingerprint`]): the rows' work, ordered and
//!    linked; the fingerprint a job and its input lock are known by.
//! 4. **Lock** ([`lock_input`]): no second run of one input against one endpoint; and
//!    ([`resumable`]) the unfinished job of this input a run goes on with instead.
//! 5. **Connect** ([`connect_new`], [`connect_job`], [`look`]): the API with the user's key,
//!    or the in-process sandbox on a rehearsal account.
//! 6. **Pre-flight** ([`preflight`]): what only the account knows, checked before any write;
//!    [`Preflight::apply`] is its effect on the plan (rows made invalid, updates that change
//!    nothing left unsent).
//! 7. **Journal** ([`create_job`] for a new job or an undo, [`open_job`] for a resume): the job
//!    on disk, held by this process ([`Held`]) until it is dropped.
//! 8. **Engine** ([`start`]): the journaled plan run on a task of its own; [`Running::stop`]
//!    asks it to stop as Ctrl-C does; [`Running::wait`] waits for its end.
//! 9. **Results** ([`finish`], or [`write_outputs`] alone): the results workbook and the to-fix
//!    file, where [`crate::outputs`] says, and the job's end as a value ([`Ended`]).
//!
//! An undo is a job too: [`undoable`] and [`plan_undo`] make its plan from the journal of the
//! job it reverses, and steps 7 to 9 run it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{ApiError, Halt, HealthStatus, Settings};
use crate::engine::{Existing, Finish, Observer};
use crate::findings::{Finding, Severity};
use crate::job::{self, Account, Connection, Endpoint, InputLock, JobError, JobOptions, JobRef};
use crate::journal::{self, InputFile, JobLock, JobState, Journal, RowState};
use crate::pacing::{Counted, Rate};
use crate::plan::{Inputs, Plan, RowIn};
use crate::progress::SheetLine;
use crate::rehearsal::Rehearsal;
use crate::schema::Kind;

/// A step's failure, by category: the category tells a user (or a script reading stderr)
/// where to look, and the command line picks its exit code by it.
#[derive(Debug)]
pub enum Error {
    /// Arguments or settings that cannot work.
    Usage(String),
    /// An input file that cannot be read.
    Input(String),
    /// The endpoint could not be reached, or stopped answering.
    Network(String),
    /// The API answered with a refusal the command cannot go past.
    Api(String),
    /// The job's journal cannot be read or written.
    Journal(String),
    /// Writing an output file (report, results) or opening a socket.
    Io(String),
    /// The job cannot start or go on as asked (changed input, unknown job, no credentials).
    Refused(String),
}

impl From<JobError> for Error {
    fn from(e: JobError) -> Error {
        match e {
            JobError::Io(m) => Error::Io(m),
            JobError::Journal(j) => Error::Journal(j.to_string()),
            JobError::Refused(m) => Error::Refused(m),
        }
    }
}

impl From<journal::JournalError> for Error {
    fn from(e: journal::JournalError) -> Error {
        Error::Journal(e.to_string())
    }
}

impl From<crate::outputs::Refused> for Error {
    fn from(e: crate::outputs::Refused) -> Error {
        Error::Refused(e.0)
    }
}

impl Error {
    /// A failed read of the account, `what` saying what it was for: a network fault or the
    /// API's refusal, by what came back.
    pub fn reading(what: &str, e: &ApiError) -> Error {
        let m = format!("{what}: {}", e.detail());
        match e.status {
            // Nothing more was sent: a refused key, a stop, an outage too long.
            _ if e.is_halted() => Error::Refused(m),
            None => Error::Network(m),
            Some(_) => Error::Api(m),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "error: {m}"),
            Error::Input(m) => write!(f, "input error: {m}"),
            Error::Network(m) => write!(f, "network error: {m}"),
            Error::Api(m) => write!(f, "API error: {m}"),
            // The message names the file and what failed; "journal error: journal …" said
            // the word twice, and the shared budget is no journal.
            Error::Journal(m) => write!(f, "error: {m}"),
            Error::Io(m) => write!(f, "error: {m}"),
            Error::Refused(m) => write!(f, "refused: {m}"),
        }
    }
}

impl std::error::Error for Error {}

// 1. Read ------------------------------------------------------------------------------------

/// The inputs as read and validated: every file once.
pub struct Read {
    pub inputs: Inputs,
    rows: Vec<RowIn>,
}

/// Reads and validates `files` (`kind`: what a CSV file holds, when its headers do not say).
pub fn read(files: &[PathBuf], kind: Option<Kind>) -> Read {
    let (inputs, rows) = crate::plan::read(files, kind);
    Read { inputs, rows }
}

// 2. Validate --------------------------------------------------------------------------------

/// Whether the input lets a job start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// A file or sheet could not be read ([`Inputs::unreadable`] says which and why).
    Unreadable,
    /// This many errors in the input, and invalid rows are not to be skipped.
    Invalid(u64),
}

impl Read {
    /// Errors in the input, unreadable files counted.
    pub fn errors(&self) -> u64 {
        self.inputs.errors()
    }

    /// Whether a job may start from this input; `skip_invalid` runs the valid rows and records
    /// the others as invalid.
    pub fn verdict(&self, skip_invalid: bool) -> Verdict {
        if !self.inputs.unreadable.is_empty() {
            Verdict::Unreadable
        } else if self.errors() > 0 && !skip_invalid {
            Verdict::Invalid(self.errors())
        } else {
            Verdict::Go
        }
    }

    // 3. Plan --------------------------------------------------------------------------------

    /// The rows' work, planned.
    pub fn plan(self) -> Planned {
        let plan = crate::plan::build(&self.inputs, self.rows);
        crate::failpoint::reached(crate::failpoint::Place::Read);
        Planned {
            inputs: self.inputs,
            plan,
        }
    }
}

/// The inputs and their plan.
pub struct Planned {
    pub inputs: Inputs,
    pub plan: Plan,
}

/// The inputs as a job records them, and the one string it is known by.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub files: Vec<InputFile>,
    pub text: String,
}

impl Planned {
    /// The inputs' fingerprint, of the bytes their rows were read from (never a second read:
    /// a file saved meanwhile would give its digest to the other file's rows).
    pub fn fingerprint(&self) -> Result<Fingerprint, Error> {
        let files = self
            .inputs
            .fingerprint()
            .map_err(|e| Error::Input(e.to_string()))?;
        let text = job::fingerprint_of(&files);
        Ok(Fingerprint { files, text })
    }
}

// 4. Lock ------------------------------------------------------------------------------------

/// Takes the lock on this input against this endpoint, before anything reads or writes the
/// account: a second run of it must not start a job of its own.
pub fn lock_input(
    fingerprint: &Fingerprint,
    endpoint: &Endpoint,
    files: &[PathBuf],
) -> Result<InputLock, Error> {
    Ok(InputLock::acquire(&fingerprint.text, endpoint, files)?)
}

/// The unfinished job of this input that a run with these options goes on with, if any; one
/// begun with other settings refuses the run, naming them.
pub fn resumable(
    root: &Path,
    fingerprint: &Fingerprint,
    endpoint: &Endpoint,
    options: &JobOptions,
) -> Result<Option<JobRef>, Error> {
    Ok(job::resumable(root, &fingerprint.text, endpoint, options)?)
}

/// The unfinished job that will write its results at `path` when it goes on, if any: a new
/// job's results do not take its place.
pub fn results_held_by(root: &Path, path: &Path) -> Option<String> {
    job::list(root)
        .into_iter()
        .filter(|j| j.meta.state.is_open())
        .find(|j| {
            j.options()
                .is_ok_and(|o| crate::outputs::same_file(&o.results, path))
        })
        .map(|j| j.meta.id)
}

// 5. Connect ---------------------------------------------------------------------------------

/// The connection a new job runs on: `settings`' endpoint and key, or (a rehearsal) the
/// in-process sandbox on the options' account, held for `command`.
pub async fn connect_new(
    options: &JobOptions,
    settings: Option<&Settings>,
    command: &str,
) -> Result<Connection, Error> {
    let account = match &options.rehearsal {
        Some(r) => Some(Account::for_new(r, false, command)?),
        None => None,
    };
    Ok(Connection::open(options, settings, account).await?)
}

/// A connection to read the account outside a job (a validation, an export, a check, a dry
/// run): one request at a time at `rate`; the rehearsal's account as last kept, to read, or
/// `settings`' endpoint.
pub async fn connect_reading(
    rate: Rate,
    rehearsal: Option<Rehearsal>,
    settings: Option<&Settings>,
    command: &str,
) -> Result<Connection, Error> {
    let mut options = JobOptions::reading(rate);
    let account = match rehearsal {
        Some(r) => {
            let account = Account::for_new(&r, true, command)?;
            options.sandbox = true;
            options.rehearsal = Some(r);
            Some(account)
        }
        None => None,
    };
    Ok(Connection::open(&options, settings, account).await?)
}

/// A look at the account (`export`, `validate --online`, `check --sandbox`): the rehearsal
/// account as last kept (`sandbox`), or the settings' endpoint and key.
pub async fn look(rate: Rate, sandbox: bool, base_url: Option<&str>) -> Result<Connection, Error> {
    if sandbox {
        return connect_reading(rate, Some(Rehearsal::Shared), None, "a look").await;
    }
    let settings = Settings::load(base_url).map_err(|e| Error::Refused(e.to_string()))?;
    connect_reading(rate, None, Some(&settings), "a look").await
}

/// A connection to the account `job` ran on: its rehearsal's account, or its endpoint with
/// its key. Credentials for another key are refused, saying what they were for (`to`).
pub async fn connect_job(
    job: &JobRef,
    journal: &Journal,
    options: &JobOptions,
    to: &str,
) -> Result<Connection, Error> {
    if let Some(account) = Account::of_job(job, journal, options)? {
        return Ok(Connection::open(options, None, Some(account)).await?);
    }
    let settings = Settings::load(Some(job.meta.base_url.as_str()))
        .map_err(|e| Error::Refused(e.to_string()))?;
    if settings.credentials.is_none() {
        // Not "or rehearse": the job ran on the real account, and goes on there or nowhere.
        return Err(Error::Refused(format!(
            "no API credentials: set PLBULK_API_KEY and PLBULK_API_SECRET (or api_key and api_secret in the config file) for key {}, which job {} ran with, to {to}",
            job.meta.key_id, job.meta.id
        )));
    }
    let conn = Connection::open(options, Some(&settings), None).await?;
    if conn.key_id != job.meta.key_id {
        let why = format!(
            "job {} ran with API key {}, and the credentials now set are for key {}: set that key's credentials to {to}",
            job.meta.id, job.meta.key_id, conn.key_id
        );
        conn.close().await;
        return Err(Error::Refused(why));
    }
    Ok(conn)
}

// 6. Pre-flight ------------------------------------------------------------------------------

/// What the pre-flight found.
pub struct Preflight {
    pub checked: crate::preflight::Checked,
}

/// Checks the plan's rows against the account through `conn` (whose look-ups the engine then
/// starts from). `existing` is what the run does with a create whose entity is there; None
/// (a validation) says each choice.
pub async fn preflight(
    planned: &Planned,
    conn: &Connection,
    existing: Option<Existing>,
) -> Result<Preflight, ApiError> {
    let checked =
        crate::preflight::check(&planned.inputs, &planned.plan, &conn.look, existing).await?;
    Ok(Preflight { checked })
}

impl Preflight {
    pub fn errors(&self) -> usize {
        self.said()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// The errors and warnings: what a run says before it starts (notes are for the report).
    pub fn said(&self) -> impl Iterator<Item = &Finding> + Clone {
        self.checked
            .findings
            .iter()
            .map(|(_, f)| f)
            .filter(|f| f.severity != Severity::Note)
    }

    /// Whether its errors refuse the run: they do unless invalid rows are skipped.
    pub fn refuses(&self, skip_invalid: bool) -> bool {
        self.errors() > 0 && !skip_invalid
    }

    /// Its effect on the plan: see [`crate::preflight::Checked::apply`].
    pub fn apply(&self, plan: &mut Plan) {
        self.checked.apply(plan);
    }
}

// 7. Journal ---------------------------------------------------------------------------------

/// A job on disk that this process holds: nobody else runs it until this is dropped.
pub struct Held {
    pub job: JobRef,
    pub journal: Arc<Journal>,
    /// The options it runs with (a resume's given ones applied).
    pub options: JobOptions,
    _lock: JobLock,
    _input: Option<InputLock>,
}

impl Held {
    pub fn id(&self) -> &str {
        &self.job.meta.id
    }

    /// Rows per state, as the journal has them now.
    pub fn counts(&self) -> Result<Vec<(RowState, u64)>, Error> {
        Ok(self.journal.counts()?)
    }

    /// Each sheet's rows as they stand, for progress.
    pub fn board(&self) -> Result<Board, Error> {
        Ok(Board::of_journal(&self.journal)?)
    }
}

/// Creates the job of `plan` (with its inputs as recorded, none for an undo) and holds it:
/// its journal, its lock, the input's lock (if a run took one) now naming it, and a rehearsal
/// account tied to it.
pub fn create_job(
    root: &Path,
    files: Vec<InputFile>,
    plan: &Plan,
    options: JobOptions,
    conn: &mut Connection,
    input: Option<InputLock>,
) -> Result<Held, Error> {
    let (job, journal) = job::create(root, files, &options, plan, &conn.base_url, &conn.key_id)?;
    // Said as soon as the job has a name: a second run refused meanwhile names it.
    if let Some(l) = &input {
        l.set_job(&job.meta.id);
    }
    let lock = job.lock()?;
    // An undo's account was opened in the name of the job it reverses, and stays so.
    if options.undo_of.is_none() {
        conn.hold_for(&job)?;
    }
    Ok(Held {
        job,
        journal,
        options,
        _lock: lock,
        _input: input,
    })
}

/// What a resume was given that may differ from how its job began; None keeps the job's.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub rate: Option<Rate>,
    pub concurrency: Option<usize>,
    pub results: Option<PathBuf>,
    pub max_outage: Option<Duration>,
    /// Replace a file at the results path that plbulk would keep.
    pub overwrite: bool,
}

/// A job opened to go on.
pub enum Opened {
    /// It finished already: nothing runs; its results may be written again.
    Finished(Held),
    /// Its rows are to run.
    Ready(Held),
}

/// Opens `job` to resume it with what was `given`: holds it, and refuses one abandoned, one
/// whose results could not be written where they go, or one whose inputs changed. `input` is
/// the lock a run took on the job's input, held with it.
pub fn open_job(job: JobRef, given: &Given, input: Option<InputLock>) -> Result<Opened, Error> {
    let mut options = job.options()?;
    if let Some(r) = given.rate {
        options.rate = r;
    }
    if let Some(c) = given.concurrency {
        options.concurrency = c.max(1);
    }
    if let Some(p) = &given.results {
        options.results = absolute(p);
    }
    if let Some(d) = given.max_outage {
        options.max_outage_ms = Some(d.as_millis() as u64);
    }
    let lock = job.lock()?;
    let journal = Arc::new(Journal::open(&job.journal_path())?);
    if job.meta.state == JobState::Abandoned {
        return Err(Error::Refused(format!(
            "job {} was abandoned: it does not run again. Run its input as a new job (rows already done are found and recorded as already existed), or undo what it did with plbulk undo {}",
            job.meta.id, job.meta.id
        )));
    }
    // Before the first call: the results go where the job's own are, or are refused.
    let inputs: Vec<&str> = job.meta.inputs.iter().map(|f| f.path.as_str()).collect();
    crate::outputs::results_for_job(&options.results, &job.meta.id, &inputs, given.overwrite)?;
    let finished = job.meta.state == JobState::Finished;
    if !finished {
        if let Some(why) = job::changed_inputs(&job.meta) {
            return Err(Error::Refused(why));
        }
    }
    let held = Held {
        job,
        journal,
        options,
        _lock: lock,
        _input: input,
    };
    Ok(if finished {
        Opened::Finished(held)
    } else {
        Opened::Ready(held)
    })
}

/// The results path from the working directory: the job is resumed from anywhere, and the
/// file need not exist yet.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

// Undo ---------------------------------------------------------------------------------------

/// The options of a job that may be undone, or why it may not.
pub fn undoable(source: &JobRef) -> Result<JobOptions, Error> {
    let was = source.options()?;
    let id = &source.meta.id;
    if let Some(of) = &was.undo_of {
        return Err(Error::Refused(format!(
            "job {id} is the undo of job {of}: an undo is not undone. To do again what {of} did, run its input again"
        )));
    }
    match source.meta.state {
        JobState::Finished | JobState::Abandoned => Ok(was),
        JobState::Running | JobState::Interrupted => Err(Error::Refused(format!(
            "job {id} is not finished: finish it first (plbulk resume {id}), or give it up (plbulk abandon {id}) to undo what it has done so far"
        ))),
    }
}

/// The undo of `source` begun already, if there is one: an unfinished one goes on (it is
/// returned), a finished one is not done again (refused).
pub fn undo_begun(root: &Path, source: &JobRef) -> Result<Option<JobRef>, Error> {
    let id = &source.meta.id;
    let Some(earlier) = job::list(root)
        .into_iter()
        .rev()
        .find(|j| j.options().is_ok_and(|o| o.undo_of.as_deref() == Some(id)))
    else {
        return Ok(None);
    };
    if earlier.meta.state.is_open() {
        return Ok(Some(earlier));
    }
    Err(Error::Refused(format!(
        "job {id} was undone already, by job {} ({}): plbulk status {} shows what it did",
        earlier.meta.id,
        earlier.meta.state.as_str(),
        earlier.meta.id
    )))
}

/// The plan that reverses `source` (`force`: even what was changed since), with its journal,
/// which the connection to its account is opened from.
pub fn plan_undo(source: &JobRef, force: bool) -> Result<(Journal, crate::undo::UndoPlan), Error> {
    let journal = Journal::open(&source.journal_path())?;
    let up = crate::undo::plan(&journal, force)?;
    Ok((journal, up))
}

// 8. Engine ----------------------------------------------------------------------------------

/// What happens while a job runs, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A row of sheet `sheet` (its index in the job) reached its final state.
    RowFinished { sheet: u32, state: RowState },
    /// A row waits for another job on the account making what it would make or names; `why`
    /// names that job, its file and process.
    RowWaits { why: String },
    /// The API stopped answering (said when it begins, and again each time the wait between
    /// tries grows): `waiting` requests are held meanwhile.
    ApiDown {
        since_ms: i64,
        last_error: String,
        probe_every: Duration,
        waiting: usize,
    },
    /// The API answers again after not answering for `down`.
    ApiAnswers { down: Duration },
    /// Nothing more is sent: the key was refused, an outage lasted too long, or a stop was
    /// asked. The job ends interrupted, resumable.
    Halted(Halt),
}

/// What a job tells as it runs. Called on the engine's tasks: it must return quickly.
pub trait Watcher: Send + Sync {
    fn event(&self, event: &Event);
}

impl Watcher for () {
    fn event(&self, _: &Event) {}
}

/// A watcher that sends each event down a channel (for a page, or a test, that reads them
/// on a task of its own).
impl Watcher for tokio::sync::mpsc::UnboundedSender<Event> {
    fn event(&self, event: &Event) {
        let _ = self.send(event.clone());
    }
}

/// The engine's observer, telling a [`Watcher`].
pub struct Relay(pub Arc<dyn Watcher>);

impl Observer for Relay {
    fn row_finished(&self, sheet: u32, state: RowState) {
        self.0.event(&Event::RowFinished { sheet, state });
    }

    fn row_waits(&self, why: &str) {
        self.0.event(&Event::RowWaits {
            why: why.to_string(),
        });
    }
}

/// Each sheet's rows as they stand when a job starts or goes on, and the writes a remaining
/// row makes on average (for the time left).
#[derive(Debug)]
pub struct Board {
    pub sheets: Vec<SheetLine>,
    pub calls_per_row: f64,
}

impl Board {
    /// Counted by SQLite, with the writes estimated from a sample: loading every row here
    /// would load them twice before the first call, the engine loading them too.
    pub fn of_journal(journal: &Journal) -> Result<Board, journal::JournalError> {
        let mut sheets: Vec<SheetLine> = journal
            .sheets()?
            .iter()
            .map(|s| SheetLine {
                label: format!("{} [{}]", crate::results::file_name(&s.file), s.sheet),
                total: 0,
                done: 0,
                ok: 0,
                bad: 0,
            })
            .collect();
        for (sheet, state, n) in journal.counts_by_sheet()? {
            let Some(l) = sheets.get_mut(sheet as usize) else {
                continue;
            };
            l.total += n;
            if state.is_final() {
                l.done += n;
                if state.is_success() {
                    l.ok += n;
                } else {
                    l.bad += n;
                }
            }
        }
        let sample = journal.pending_work_sample(1000)?;
        let writes: usize = sample.iter().map(|w| w.operations().len()).sum();
        let calls_per_row = if sample.is_empty() {
            1.0
        } else {
            writes as f64 / sample.len() as f64
        };
        Ok(Board {
            sheets,
            calls_per_row,
        })
    }
}

/// Asks a running job to stop: no new rows, nothing more sent, the answers of requests already
/// sent recorded. Made before the job starts, so that a stop asked at once is not lost.
#[derive(Clone)]
pub struct Stop(Arc<tokio::sync::watch::Sender<bool>>);

impl Stop {
    pub fn new() -> Stop {
        Stop(Arc::new(tokio::sync::watch::channel(false).0))
    }

    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Default for Stop {
    fn default() -> Stop {
        Stop::new()
    }
}

/// A job whose engine runs on a task of its own.
pub struct Running {
    id: String,
    calls: Arc<Counted>,
    stop: Stop,
    engine: tokio::task::JoinHandle<(Held, Connection, Result<Finish, JobError>)>,
    health: tokio::task::JoinHandle<()>,
}

/// Starts `held`'s engine on `conn`, telling `watcher` what happens; `stop` stops it.
pub fn start(held: Held, conn: Connection, stop: Stop, watcher: Arc<dyn Watcher>) -> Running {
    let id = held.id().to_string();
    let calls = conn.calls.clone();
    let health = watch_health(&conn, watcher.clone());
    let rx = stop.0.subscribe();
    let engine = tokio::spawn(async move {
        let observer = Arc::new(Relay(watcher));
        let finish = job::execute(
            &held.job,
            held.journal.clone(),
            conn.look.clone(),
            &held.options,
            rx,
            observer,
        )
        .await;
        (held, conn, finish)
    });
    Running {
        id,
        calls,
        stop,
        engine,
        health,
    }
}

impl Running {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Asks the job to stop, as Ctrl-C does; [`Running::wait`] returns once it has.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// The calls made on the job's key: in the last minute (against the limit), in all.
    pub fn calls(&self) -> Arc<Counted> {
        self.calls.clone()
    }

    /// Waits for the engine's end, and closes the connection.
    pub async fn wait(self) -> Ran {
        let (held, conn, finish) = match self.engine.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        self.health.abort();
        let calls = conn.calls.total();
        let unreached = conn.calls.unreached();
        conn.close().await;
        Ran {
            held,
            finish,
            calls,
            unreached,
        }
    }
}

/// A job whose engine has ended.
pub struct Ran {
    pub held: Held,
    /// Err: its journal could not be written, and nothing more was sent.
    pub finish: Result<Finish, JobError>,
    /// Calls made, and attempts that could not connect.
    pub calls: u64,
    pub unreached: u64,
}

/// Tells `watcher` as it happens that the API stopped answering and when it answers again.
fn watch_health(conn: &Connection, watcher: Arc<dyn Watcher>) -> tokio::task::JoinHandle<()> {
    let mut rx = conn.client.health().subscribe();
    tokio::spawn(async move {
        let mut said_every = None;
        while rx.changed().await.is_ok() {
            let status = rx.borrow_and_update().clone();
            match status {
                HealthStatus::Down {
                    since_ms,
                    last_error,
                    probe_every,
                    waiting,
                } => {
                    // Said when it begins and as the wait between tries grows, not per request.
                    if said_every == Some(probe_every) {
                        continue;
                    }
                    said_every = Some(probe_every);
                    watcher.event(&Event::ApiDown {
                        since_ms,
                        last_error,
                        probe_every,
                        waiting,
                    });
                }
                HealthStatus::Answering {
                    recovered_from_ms: Some(since),
                } => {
                    said_every = None;
                    let down = Duration::from_millis(
                        (journal::now_ms() - since).max(0) as u64 / 1000 * 1000,
                    );
                    watcher.event(&Event::ApiAnswers { down });
                }
                HealthStatus::Halted(why) => watcher.event(&Event::Halted(why)),
                HealthStatus::Answering {
                    recovered_from_ms: None,
                } => {}
            }
        }
    })
}

// 9. Results ---------------------------------------------------------------------------------

/// How a job ended.
pub enum Ended {
    /// It completed, or stopped resumable; its results were written, or `outputs` says why
    /// not.
    Ran(Finished),
    /// Its journal could not be written (a full disk, a failing drive): nothing more was sent
    /// once it failed. `marked`: the journal took the job's state, interrupted.
    JournalFailed {
        held: Held,
        error: String,
        marked: bool,
    },
}

/// A job that ran to its end or was stopped, with its results written.
pub struct Finished {
    pub held: Held,
    pub finish: Finish,
    pub counts: Vec<(RowState, u64)>,
    pub calls: u64,
    pub unreached: u64,
    pub outputs: Outputs,
}

/// The files a job's end wrote. Written in this order, each only if the one before was:
/// what failed is in `error`.
#[derive(Debug, Default)]
pub struct Outputs {
    /// The results file.
    pub results: Option<PathBuf>,
    /// The to-fix file, with the rows in it (none for an undo, or when every row ended well).
    pub to_fix: Option<(PathBuf, u64)>,
    /// A to-fix file changed since this job wrote it (it may hold the partner's fixes): kept,
    /// and the new one written beside it.
    pub kept: Option<PathBuf>,
    /// Rows not run yet (a stopped job): a resume runs them.
    pub not_run: u64,
    /// Why writing stopped; the job's outcome is safe in its journal.
    pub error: Option<Error>,
}

/// Records the engine's end, and writes the results (`overwrite`: replace a file there that
/// plbulk would keep).
pub fn finish(ran: Ran, overwrite: bool) -> Result<Ended, Error> {
    let Ran {
        held,
        finish,
        calls,
        unreached,
    } = ran;
    let finish = match finish {
        Ok(f) => f,
        Err(e) => {
            let marked = held.journal.set_job_state(JobState::Interrupted).is_ok();
            return Ok(Ended::JournalFailed {
                held,
                error: e.to_string(),
                marked,
            });
        }
    };
    let counts = held.counts()?;
    let outputs = write_outputs(&held, Some(calls), overwrite);
    Ok(Ended::Ran(Finished {
        held,
        finish,
        counts,
        calls,
        unreached,
        outputs,
    }))
}

/// Writes the job's results, and (not for an undo, whose rows are not the user's to fix and
/// run again) its to-fix file; `calls`: those made by this process, for the results' summary.
pub fn write_outputs(held: &Held, calls: Option<u64>, overwrite: bool) -> Outputs {
    let mut out = Outputs::default();
    if let Err(e) = write_into(&mut out, held, calls, overwrite) {
        out.error = Some(e);
    }
    out
}

fn write_into(
    out: &mut Outputs,
    held: &Held,
    calls: Option<u64>,
    overwrite: bool,
) -> Result<(), Error> {
    let (journal, options, dir) = (&held.journal, &held.options, &held.job.dir);
    crate::results::write(journal, &options.results, calls)
        .map_err(|e| Error::Io(e.to_string()))?;
    out.results = Some(options.results.clone());
    if options.undo_of.is_some() {
        return Ok(());
    }
    // The partner fixes rows in the to-fix file: one changed since this job wrote it is kept.
    let to_fix = crate::outputs::to_fix(&options.results, dir, overwrite);
    let n = crate::results::write_to_fix(journal, &to_fix.path)
        .map_err(|e| Error::Io(e.to_string()))?;
    if n == 0 {
        // An old one of the job's own would list rows that are done now.
        if to_fix.may_remove() {
            let _ = std::fs::remove_file(&to_fix.path);
        }
    } else {
        out.kept = to_fix.kept.clone();
        out.to_fix = Some((to_fix.path.clone(), n as u64));
    }
    crate::outputs::record_written(dir, &to_fix.path);
    out.not_run = held
        .counts()?
        .iter()
        .find(|(s, _)| *s == RowState::Pending)
        .map_or(0, |(_, n)| *n);
    Ok(())
}
