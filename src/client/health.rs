//! Whether the API is answering at all: an outage or a refused key is the job's, not a row's.
//!
//! A failure that says nothing about the request it came back on (no connection, a timeout, a
//! 5xx, an answer that is not the API's) tells the job more than the row: when several come
//! in a row with no answer from the API between them, or one request has spent all its tries
//! on them, the API is taken to be down. Every request then waits here instead of spending its
//! row's tries, and one probe at a growing interval asks whether the API answers again; when it
//! does, the requests go on. A key the API refuses, an outage longer than the job allows, and a
//! stop the user asked for *halt* the client: every request that has not left yet is dropped
//! (its caller gets [`super::ErrorKind::Halted`]) and nothing more is sent, so the job ends as
//! interrupted with its rows still to run, never failed for something no row caused.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How quickly an outage is declared, probed and given up on.
#[derive(Debug, Clone, Copy)]
pub struct HealthConfig {
    /// Whether outages are waited out at all. A one-off look at the account (a check, a
    /// validation) reports the failure instead: nobody is there to wait for.
    pub outages: bool,
    /// Failures that say nothing about their row, in a row with no answer between, that make
    /// an outage.
    pub streak: u32,
    /// The first wait before a probe; it doubles up to `max_probe`.
    pub first_probe: Duration,
    pub max_probe: Duration,
    /// How long an outage may last before the job stops (resumable).
    pub max_outage: Duration,
}

impl HealthConfig {
    /// Failures are the request's alone; only a refused key halts.
    pub const OFF: HealthConfig = HealthConfig {
        outages: false,
        streak: u32::MAX,
        first_probe: Duration::from_secs(2),
        max_probe: Duration::from_secs(30),
        max_outage: Duration::ZERO,
    };
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            outages: true,
            streak: 3,
            first_probe: Duration::from_secs(2),
            max_probe: Duration::from_secs(30),
            max_outage: Duration::from_secs(15 * 60),
        }
    }
}

/// Why the client sends nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The user asked the job to stop (Ctrl-C, SIGTERM, SIGHUP).
    Stopped,
    /// The API refused the key or its tokens: nothing will work until a person looks.
    KeyRefused { message: String },
    /// The API did not answer for longer than the job allows.
    Outage {
        since_ms: i64,
        last_error: String,
        /// How long it was given.
        limit: Duration,
    },
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Halt::Stopped => f.write_str("not sent: the job was asked to stop"),
            Halt::KeyRefused { message } => write!(f, "not sent: {message}"),
            Halt::Outage {
                since_ms,
                last_error,
                limit,
            } => write!(
                f,
                "not sent: the API has not answered since {} (longer than the {} allowed; last: {last_error})",
                clock(*since_ms),
                humantime::format_duration(*limit)
            ),
        }
    }
}

/// A moment as people read it in a message (UTC, to the second).
pub fn clock(ms: i64) -> String {
    crate::results::time_text(ms)
}

/// Where the API stands, as the job reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Answering {
        /// The outage that just ended, if one did: when it began (ms since the epoch).
        recovered_from_ms: Option<i64>,
    },
    Down {
        since_ms: i64,
        last_error: String,
        /// The wait before the next probe.
        probe_every: Duration,
        /// Requests held until it answers.
        waiting: usize,
    },
    Halted(Halt),
}

struct Down {
    /// Which outage this is: a probe of an earlier one does not probe it.
    id: u64,
    since_ms: i64,
    since: Instant,
    last_error: String,
    interval: Duration,
}

struct State {
    streak: u32,
    down: Option<Down>,
    halted: Option<Halt>,
    waiting: usize,
    /// Bumped each time an outage ends: a request's tries spent before it are given back.
    recoveries: u64,
}

pub struct Health {
    cfg: HealthConfig,
    state: Mutex<State>,
    tx: watch::Sender<Status>,
}

/// What [`Health::failed`] made of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted against the request: the API is answering others.
    Request,
    /// The API is down: the failure is the job's and costs the request nothing.
    Outage {
        /// This failure began it (the outage's id): the caller starts its probe.
        began: Option<u64>,
    },
}

impl Health {
    pub fn new(cfg: HealthConfig) -> Health {
        Health {
            cfg,
            state: Mutex::new(State {
                streak: 0,
                down: None,
                halted: None,
                waiting: 0,
                recoveries: 0,
            }),
            tx: watch::channel(Status::Answering {
                recovered_from_ms: None,
            })
            .0,
        }
    }

    pub fn config(&self) -> HealthConfig {
        self.cfg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes of status, for whoever tells the user.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.tx.subscribe()
    }

    pub fn status(&self) -> Status {
        self.tx.borrow().clone()
    }

    pub fn halted(&self) -> Option<Halt> {
        self.lock().halted.clone()
    }

    /// How many outages have ended so far.
    pub fn recoveries(&self) -> u64 {
        self.lock().recoveries
    }

    fn publish(&self, st: &State) {
        let status = match (&st.halted, &st.down) {
            (Some(h), _) => Status::Halted(h.clone()),
            (None, Some(d)) => Status::Down {
                since_ms: d.since_ms,
                last_error: d.last_error.clone(),
                probe_every: d.interval,
                waiting: st.waiting,
            },
            (None, None) => Status::Answering {
                recovered_from_ms: None,
            },
        };
        self.tx.send_replace(status);
    }

    /// Waits while the API is down. `Err` once the client is halted: the request must not be
    /// sent.
    pub async fn admit(&self) -> Result<(), Halt> {
        let mut rx = self.tx.subscribe();
        let mut counted = false;
        let result = loop {
            // Marked seen before the state is read: a change after the read wakes the wait.
            rx.borrow_and_update();
            {
                let mut st = self.lock();
                if let Some(h) = &st.halted {
                    break Err(h.clone());
                }
                if st.down.is_none() {
                    break Ok(());
                }
                if !counted {
                    counted = true;
                    st.waiting += 1;
                    self.publish(&st);
                    // Our own publication is no change to wait for.
                    rx.borrow_and_update();
                }
            }
            // Woken by any change: the outage ending, the client halting.
            if rx.changed().await.is_err() {
                break Ok(());
            }
        };
        if counted {
            let mut st = self.lock();
            st.waiting = st.waiting.saturating_sub(1);
        }
        result
    }

    /// Resolves once the client is halted; never, if it is not.
    pub async fn until_halted(&self) -> Halt {
        let mut rx = self.tx.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(h) = self.halted() {
                return h;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Sleeps for `d`, unless the client halts first.
    pub async fn sleep(&self, d: Duration) -> Result<(), Halt> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            h = self.until_halted() => Err(h),
        }
    }

    /// The API itself answered (a success or its own refusal): whatever was wrong is over.
    pub fn answered(&self) {
        let mut st = self.lock();
        st.streak = 0;
        if let Some(d) = st.down.take() {
            st.recoveries += 1;
            if st.halted.is_none() {
                self.tx.send_replace(Status::Answering {
                    recovered_from_ms: Some(d.since_ms),
                });
            }
        }
    }

    /// A failure that says nothing about its request. `exhausted`: the request has spent its
    /// tries on such failures, which is reason enough to ask whether the API is there at all.
    pub fn failed(&self, error: &str, exhausted: bool) -> Verdict {
        if !self.cfg.outages {
            return Verdict::Request;
        }
        let mut st = self.lock();
        st.streak = st.streak.saturating_add(1);
        if let Some(d) = &mut st.down {
            d.last_error = error.to_string();
            return Verdict::Outage { began: None };
        }
        if st.streak < self.cfg.streak && !exhausted {
            return Verdict::Request;
        }
        st.down = Some(Down {
            id: st.recoveries,
            since_ms: crate::journal::now_ms(),
            since: Instant::now(),
            last_error: error.to_string(),
            interval: self.cfg.first_probe,
        });
        let id = st.recoveries;
        self.publish(&st);
        Verdict::Outage { began: Some(id) }
    }

    /// Whether the API is taken to be down now.
    pub fn is_down(&self) -> bool {
        self.lock().down.is_some()
    }

    /// The wait before the next probe (growing each time it is asked), or None when there is
    /// nothing to probe: the outage ended, the client halted, or the outage outlasted its
    /// limit (which halts the client).
    pub fn next_probe(&self, outage: u64) -> Option<Duration> {
        let mut st = self.lock();
        if st.halted.is_some() {
            return None;
        }
        let cfg = self.cfg;
        let d = st.down.as_mut().filter(|d| d.id == outage)?;
        if d.since.elapsed() >= cfg.max_outage {
            let halt = Halt::Outage {
                since_ms: d.since_ms,
                last_error: d.last_error.clone(),
                limit: cfg.max_outage,
            };
            st.halted = Some(halt);
            self.publish(&st);
            return None;
        }
        let wait = d
            .interval
            .min(cfg.max_outage.saturating_sub(d.since.elapsed()));
        d.interval = (d.interval * 2).min(cfg.max_probe);
        self.publish(&st);
        Some(wait)
    }

    /// Sends nothing more; the first reason given is the one kept.
    pub fn halt(&self, why: Halt) {
        let mut st = self.lock();
        if st.halted.is_none() {
            st.halted = Some(why);
            self.publish(&st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> Health {
        Health::new(HealthConfig {
            outages: true,
            streak: 3,
            first_probe: Duration::from_secs(1),
            max_probe: Duration::from_secs(4),
            max_outage: Duration::from_secs(10),
        })
    }

    #[test]
    fn an_answer_between_failures_keeps_the_api_up() {
        let h = health();
        for _ in 0..10 {
            assert_eq!(h.failed("x", false), Verdict::Request);
            assert_eq!(h.failed("x", false), Verdict::Request);
            h.answered();
        }
        assert!(!h.is_down());
        assert_eq!(h.failed("x", false), Verdict::Request);
        assert_eq!(h.failed("x", false), Verdict::Request);
        assert_eq!(h.failed("x", false), Verdict::Outage { began: Some(0) });
        assert_eq!(h.failed("x", false), Verdict::Outage { began: None });
        assert!(h.is_down());
        h.answered();
        assert!(!h.is_down());
        assert_eq!(h.recoveries(), 1);
    }

    #[test]
    fn off_keeps_every_failure_the_requests() {
        let h = Health::new(HealthConfig::OFF);
        for _ in 0..10 {
            assert_eq!(h.failed("x", true), Verdict::Request);
        }
        assert!(!h.is_down());
    }

    #[test]
    fn a_request_out_of_tries_asks_whether_the_api_is_there() {
        let h = health();
        assert_eq!(h.failed("x", true), Verdict::Outage { began: Some(0) });
    }

    #[tokio::test(start_paused = true)]
    async fn probes_grow_and_an_outage_too_long_halts() {
        let h = health();
        h.failed("connect refused", true);
        let mut waits = Vec::new();
        while let Some(w) = h.next_probe(0) {
            waits.push(w);
            tokio::time::advance(w).await;
        }
        assert_eq!(
            waits,
            [1, 2, 4, 3].map(Duration::from_secs).to_vec(),
            "doubling, capped, and never past the limit"
        );
        match h.halted() {
            Some(Halt::Outage { last_error, .. }) => assert_eq!(last_error, "connect refused"),
            other => panic!("{other:?}"),
        }
        assert!(h.admit().await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn requests_wait_for_the_api_and_go_when_it_answers() {
        let h = std::sync::Arc::new(health());
        h.failed("x", true);
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.admit().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(matches!(h.status(), Status::Down { waiting: 1, .. }));
        h.answered();
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_halt_drops_waiting_requests_and_wakes_sleepers() {
        let h = std::sync::Arc::new(health());
        h.failed("x", true);
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.admit().await })
        };
        let sleeper = {
            let h = h.clone();
            tokio::spawn(async move { h.sleep(Duration::from_secs(3600)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        h.halt(Halt::Stopped);
        h.halt(Halt::KeyRefused {
            message: "later".into(),
        });
        assert_eq!(waiter.await.unwrap(), Err(Halt::Stopped));
        assert_eq!(sleeper.await.unwrap(), Err(Halt::Stopped));
    }
}
