//! A job the page started (or resumed, or an undo), run in the `plbulk ui` process by the same
//! [`pipeline::start`] that `plbulk run` calls, and held in [`super::State`] so that closing the
//! page does not stop it and opening it again finds it. What it tells as it runs (outages,
//! refused keys, waits) is kept here as words; its rows are read from its journal, so a job run
//! from a terminal is watched the same way, through the same server-sent events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use crate::client::Halt;
use crate::engine::Finish;
use crate::job::{Connection, JobRef};
use crate::journal::{Journal, ResultRow};
use crate::model::{JobState, RowState};
use crate::pacing::{Counted, Rate};
use crate::pipeline::{self, Ended, Event, Held, Stop, Watcher};
use crate::status::JobStatus;

/// Rows shown as they end, newest first; the results have them all.
const RECENT: usize = 12;
/// Failures shown as they happen; the to-fix file has them all.
const FAILURES: usize = 50;
/// The largest job whose rows are read each time its progress is pushed (about once a
/// second): reading every row's cells is the journal's only way to list the rows that ended,
/// and above this it would cost more than the progress is worth. Larger jobs show their
/// counts per sheet only while they run; their results page lists the rows.
const ROWS_WATCHED: u64 = 20_000;

/// A job running (or run) in this process.
pub struct Live {
    pub id: String,
    stop: Stop,
    calls: Arc<Counted>,
    rate: Rate,
    calls_per_row: f64,
    /// Said while it ran (an outage, its end, a refused key), in order.
    said: Mutex<Vec<String>>,
    end: Mutex<Option<(End, Written)>>,
    /// Bumped at each event, so the page's stream renders at once rather than at its tick.
    nudge: tokio::sync::watch::Sender<u64>,
}

/// How a job of this process ended.
#[derive(Debug, Clone)]
pub enum End {
    /// Every row has its final state.
    Completed,
    /// Stopped with rows still to run (a stop, a refused key, an outage): resumable.
    Interrupted(Halt),
    /// Its journal could not be written: nothing more was sent.
    JournalFailed(String),
}

/// What a job's end wrote, for the results page.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub to_fix: Option<PathBuf>,
    /// Why the results could not be written; the outcome is safe in the journal.
    pub error: Option<String>,
}

impl Live {
    pub fn stop(&self) {
        self.stop.stop();
    }

    pub fn end(&self) -> Option<(End, Written)> {
        self.end.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn said(&self) -> Vec<String> {
        self.said.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn say(&self, line: String) {
        let mut said = self.said.lock().unwrap_or_else(|p| p.into_inner());
        // A wait is told per row; the page says it once.
        if said.last() != Some(&line) {
            said.push(line);
        }
    }

    fn bump(&self) {
        self.nudge.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Watcher for Live {
    fn event(&self, event: &Event) {
        match event {
            Event::RowFinished { .. } => {}
            Event::RowWaits { why } => self.say(format!("Waiting: {why}")),
            Event::ApiDown {
                last_error,
                probe_every,
                waiting,
                ..
            } => self.say(format!(
                "The API is not answering ({last_error}).{} It is tried again every {}; nothing is lost.",
                match waiting {
                    0 => String::new(),
                    n => format!(" {} wait.", crate::words::count(*n as u64, "request")),
                },
                humantime::format_duration(*probe_every)
            )),
            Event::ApiAnswers { down } => self.say(format!(
                "The API answers again, after {} without.",
                humantime::format_duration(*down)
            )),
            Event::Halted(h) => self.say(halt_words(h)),
        }
        self.bump();
    }
}

/// Why a job stopped, and the way on, as the page says it (its buttons, not a command).
pub fn halt_words(h: &Halt) -> String {
    match h {
        Halt::Stopped => {
            "Stopped as you asked: no new rows, and the answers of the requests already sent are recorded. Nothing is lost: Resume goes on from here.".into()
        }
        Halt::KeyRefused { message } => format!(
            "Stopped: the API refused the key ({}). No row failed for it. Check the key on the Account page, then Resume.",
            message.trim_start_matches("not sent: ")
        ),
        Halt::Outage { .. } => format!(
            "Stopped: {}. No row failed for it. Resume when the API answers.",
            h.to_string().trim_start_matches("not sent: ")
        ),
    }
}

/// The jobs of this process, by id.
#[derive(Default)]
pub struct Jobs(Mutex<HashMap<String, Arc<Live>>>);

impl Jobs {
    pub fn get(&self, id: &str) -> Option<Arc<Live>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<Live>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The ids of the jobs this process is running now, oldest first.
    pub fn running(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all()
            .into_iter()
            .filter(|l| l.end().is_none())
            .map(|l| l.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Asks every job of this process to stop, as Ctrl-C asks `plbulk run`.
    pub fn stop_all(&self) {
        for l in self.all() {
            l.stop();
        }
    }

    /// Waits until every job of this process has ended and written its results.
    pub async fn wait_all(&self) {
        for l in self.all() {
            let mut rx = l.nudge.subscribe();
            while l.end().is_none() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Starts `held` on `conn` in this process, as `plbulk run` does after its last check, and
/// keeps it in `jobs`; its end is recorded and its results written when it comes.
pub fn run(jobs: &Jobs, held: Held, conn: Connection) -> Result<Arc<Live>, pipeline::Error> {
    let board = held.board()?;
    let live = Arc::new(Live {
        id: held.id().to_string(),
        stop: Stop::new(),
        calls: conn.calls.clone(),
        rate: held.options.rate,
        calls_per_row: board.calls_per_row,
        said: Mutex::new(Vec::new()),
        end: Mutex::new(None),
        nudge: tokio::sync::watch::channel(0).0,
    });
    jobs.0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(live.id.clone(), live.clone());
    let running = pipeline::start(held, conn, live.stop.clone(), live.clone());
    let me = live.clone();
    tokio::spawn(async move {
        let ran = running.wait().await;
        let ended = tokio::task::spawn_blocking(move || pipeline::finish(ran, false)).await;
        let end = match ended {
            Ok(Ok(Ended::Ran(done))) => {
                let end = match &done.finish {
                    Finish::Completed => End::Completed,
                    Finish::Interrupted(h) => End::Interrupted(h.clone()),
                };
                let written = Written {
                    to_fix: done.outputs.to_fix.as_ref().map(|(p, _)| p.clone()),
                    error: done.outputs.error.as_ref().map(|e| {
                        format!("{e}. The job's outcome is safe in its journal: the results can be written again from a terminal with plbulk results {}", me.id)
                    }),
                };
                (end, written)
            }
            Ok(Ok(Ended::JournalFailed { error, .. })) => (
                End::JournalFailed(format!(
                    "{error}. The job stopped: its journal could not be written, so nothing more was sent. Rows already recorded are safe. Free some space, then Resume."
                )),
                Written::default(),
            ),
            Ok(Err(e)) => (End::JournalFailed(e.to_string()), Written::default()),
            Err(e) => (
                End::JournalFailed(format!("the job's end could not be recorded: {e}")),
                Written::default(),
            ),
        };
        *me.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(end);
        me.bump();
    });
    Ok(live)
}

/// A job as it stands now, from its journal: what the progress box shows.
pub struct Snapshot {
    pub status: JobStatus,
    /// Finished rows, newest first.
    pub recent: Vec<ResultRow>,
    /// Rows that did not succeed, in the order they ended.
    pub failures: Vec<ResultRow>,
    pub failures_in_all: usize,
    /// Sheet labels by index.
    pub sheets: Vec<String>,
    /// The rows were not read: the job is too large to read them once a second.
    pub unlisted: bool,
}

/// Reads `job` as it stands (blocking: run it off the async threads).
pub fn snapshot(job: &JobRef) -> Result<Snapshot, pipeline::Error> {
    let status = crate::status::of(job, None)?;
    let journal = Journal::open(&job.journal_path())?;
    let sheets = journal.sheets()?.iter().map(|s| s.sheet.clone()).collect();
    let unlisted = status.rows > ROWS_WATCHED;
    let rows = if unlisted {
        Vec::new()
    } else {
        journal.result_rows()?
    };
    let mut done: Vec<ResultRow> = rows
        .into_iter()
        .filter(|r| r.state.is_final() && r.finished_at_ms.is_some())
        .collect();
    done.sort_by_key(|r| (r.finished_at_ms, r.id));
    let bad: Vec<ResultRow> = done
        .iter()
        .filter(|r| crate::results::needs_fixing(r.state))
        .cloned()
        .collect();
    let failures_in_all = bad.len();
    let failures = bad.into_iter().take(FAILURES).collect();
    let recent = done.into_iter().rev().take(RECENT).collect();
    Ok(Snapshot {
        status,
        recent,
        failures,
        failures_in_all,
        sheets,
        unlisted,
    })
}

/// The progress box: the head line, a bar per sheet, what was said, failures, rows as they end.
pub fn progress(snap: &Snapshot, live: Option<&Live>) -> Markup {
    let s = &snap.status;
    let total = s.rows;
    let done = total - s.pending;
    let head = match live {
        Some(l) => {
            let calls = (s.pending as f64 * l.calls_per_row).ceil() as u64;
            let left = l.calls.time_left(calls, l.rate);
            format!(
                "{done} of {total} rows done; {} calls in the last minute (limit {}); about {} left.",
                l.calls.last_minute(),
                l.rate,
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            )
        }
        None => format!(
            "{done} of {total} rows done; about {} left at {}.",
            humantime::format_duration(Duration::from_secs(s.seconds_left)),
            s.rate
        ),
    };
    html! {
        p #progress-head data-done=(done) data-total=(total) { strong { (head) } }
        @if let Some(l) = live {
            @for line in l.said() { p.warning { (line) } }
        }
        div.scroll {
            table #progress-sheets {
                caption.muted { "Rows per sheet" }
                thead { tr {
                    th scope="col" { "Sheet" }
                    th scope="col" { "Done" }
                    th.num scope="col" { "Succeeded" }
                    th.num scope="col" { "Not succeeded" }
                } }
                tbody {
                    @for sh in &s.sheets {
                        @let n = |k: RowState| sh.outcomes.get(k.as_str()).copied().unwrap_or(0);
                        @let all: u64 = sh.outcomes.values().sum();
                        @let pending = n(RowState::Pending);
                        @let ok = n(RowState::Succeeded) + n(RowState::AlreadyExisted) + n(RowState::Unchanged);
                        tr {
                            th scope="row" { (sh.sheet) }
                            td {
                                progress max=(all.max(1)) value=(all - pending) aria-label={ (sh.sheet) ": rows done" } {}
                                " " (all - pending) " / " (all)
                            }
                            td.num { (ok) }
                            td.num { (all - pending - ok) }
                        }
                    }
                }
            }
        }
        @if snap.unlisted {
            p.muted { "A job this large shows its counts while it runs; its rows, failures included, are listed once it ends (and in the results workbook)." }
        }
        @if !snap.failures.is_empty() {
            h2 { "Failures so far" }
            @if snap.failures_in_all > snap.failures.len() {
                p.muted { "The first " (snap.failures.len()) " of " (snap.failures_in_all) "; the to-fix file has them all." }
            }
            ul #failures.failures {
                @for r in &snap.failures {
                    li data-state=(r.state.as_str()) {
                        strong { (sheet_of(snap, r)) " row " (r.row_no) } ": " (r.state.label())
                        @if let Some(d) = &r.detail { ": " (d) }
                    }
                }
            }
        }
        @if !snap.recent.is_empty() {
            h2 { "Rows as they end" }
            ul #recent.recent {
                @for r in &snap.recent {
                    li data-state=(r.state.as_str()) {
                        span class={ "outcome outcome-" (r.state.as_str()) } { (r.state.label()) }
                        " " (sheet_of(snap, r)) " row " (r.row_no)
                        @if let Some(d) = &r.detail { span.muted { ": " (d) } }
                    }
                }
            }
        }
    }
}

fn sheet_of<'a>(snap: &'a Snapshot, r: &ResultRow) -> &'a str {
    snap.sheets
        .get(r.sheet as usize)
        .map(String::as_str)
        .unwrap_or("?")
}

/// Whether the job has ended, for the stream: a job of this process when its results are
/// written, another's when its journal no longer says running.
fn ended(live: Option<&Live>, status: &JobStatus) -> bool {
    match live {
        Some(l) => l.end().is_some(),
        None => status.state != JobState::Running,
    }
}

/// `GET /jobs/{id}/events`: the progress box again at each change (or each second), as
/// server-sent events named `progress`; `end` once the job has ended, when the page reloads
/// to its results.
pub async fn events(State(state): State<Arc<super::State>>, Path(id): Path<String>) -> Response {
    let job = match super::job::find(&state, &id).await {
        Ok(j) => j,
        Err(r) => return r,
    };
    let live = state.jobs.get(&job.meta.id);
    struct Tick {
        job: JobRef,
        live: Option<Arc<Live>>,
        nudge: Option<tokio::sync::watch::Receiver<u64>>,
        closing: tokio::sync::watch::Receiver<bool>,
        last: String,
        first: bool,
    }
    let tick = Tick {
        nudge: live.as_ref().map(|l| l.nudge.subscribe()),
        closing: state.closing.subscribe(),
        job,
        live,
        last: String::new(),
        first: true,
    };
    let stream = futures_util::stream::unfold(Some(tick), |tick| async move {
        let mut t = tick?;
        loop {
            if !t.first {
                let nudged = async {
                    let gone = match t.nudge.as_mut() {
                        Some(rx) => rx.changed().await.is_err(),
                        None => true,
                    };
                    // No events from another process's job, nor once this one's are over:
                    // the tick alone.
                    if gone {
                        std::future::pending::<()>().await;
                    }
                };
                tokio::select! {
                    _ = nudged => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    // The server stops: the stream ends, so that its shutdown is not held.
                    _ = t.closing.wait_for(|c| *c) => return None,
                }
                // Rows end many a second: one render for them all.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            t.first = false;
            let job = t.job.clone();
            let snap = tokio::task::spawn_blocking(move || snapshot(&job)).await;
            let snap = match snap {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let html = html! { p.error { "The job's journal cannot be read: " (e) } };
                    return Some((Ok::<_, Infallible>(frame("progress", html)), None));
                }
                Err(_) => return None,
            };
            if ended(t.live.as_deref(), &snap.status) {
                return Some((Ok(Sse::default().event("end").data("end")), None));
            }
            let html = progress(&snap, t.live.as_deref()).into_string();
            if html == t.last {
                continue;
            }
            t.last = html.clone();
            return Some((
                Ok(frame("progress", html! { (maud::PreEscaped(html)) })),
                Some(t),
            ));
        }
    });
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An event of `name` carrying `html` (a carriage return would end its data line early).
fn frame(name: &str, html: Markup) -> Sse {
    Sse::default()
        .event(name)
        .data(html.into_string().replace('\r', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_halt_is_said_with_the_way_on_and_without_the_clients_prefix() {
        let refused = halt_words(&Halt::KeyRefused {
            message: "not sent: the API refused key \"k1\"".into(),
        });
        assert!(
            refused.starts_with("Stopped: the API refused the key (the API refused key \"k1\")"),
            "{refused}"
        );
        assert!(refused.contains("Account page") && refused.contains("Resume"));
        assert!(!refused.contains("not sent"));
        assert!(halt_words(&Halt::Stopped).contains("Nothing is lost"));
    }
}
