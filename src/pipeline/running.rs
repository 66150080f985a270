//! Step 8: the engine run on a task of its own, what it tells as it runs ([`Event`]), and how
//! it is stopped and waited for.

use std::sync::Arc;
use std::time::Duration;

use crate::client::{Halt, HealthStatus};
use crate::engine::{Finish, Observer};
use crate::job::{self, Connection, JobError};
use crate::journal::{self, Journal};
use crate::model::RowState;
use crate::pacing::Counted;
use crate::progress::SheetLine;

use super::Held;

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
