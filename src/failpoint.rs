//! Failpoints: the places in the journal protocol where a test can make plbulk die at once,
//! as a `kill -9` or a power cut would, to show that a resume ends every row exactly once.
//!
//! `PLBULK_FAILPOINT=POINT[:OPERATION][@N][=panic|=wait:FILE]` arms one: the process aborts the
//! N-th time (the first, by default) it reaches POINT for OPERATION (an overview name such as
//! `Add Customer`; any operation when left out); with `=panic`, that row's task panics instead, to
//! show that one row's internal error fails that row alone. The points, in the order a request meets them:
//! `intent` (its intent is on disk, nothing sent), `answer` (the server has answered, the
//! journal does not know it), `answered` (the answer is journaled, the row's final state is
//! not). One point is not a request's: `read` (every input is read, validated and planned;
//! nothing is journaled or sent), where a test changes the world under a run. With
//! `=wait:FILE` the process holds there instead of dying: it creates FILE, and goes on once the
//! test has removed it. `full@N` is not a place but a condition: the job's journal may grow by
//! N pages more once the engine starts, and then every write that needs one fails as on a full
//! disk. Only debug builds (what `cargo test` runs) read the variable: in a release build
//! [`hit`] and [`reached`] are empty and the optimiser removes them.

/// A place a request passes on its way through the journal protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Intent,
    Answer,
    Answered,
}

impl Point {
    pub const ALL: [Point; 3] = [Point::Intent, Point::Answer, Point::Answered];

    pub fn name(self) -> &'static str {
        match self {
            Point::Intent => "intent",
            Point::Answer => "answer",
            Point::Answered => "answered",
        }
    }
}

/// A place outside the journal protocol, where no request is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Every input is read, validated and planned, and nothing is journaled or sent.
    Read,
}

impl Place {
    pub fn name(self) -> &'static str {
        match self {
            Place::Read => "read",
        }
    }
}

/// The variable that arms a failpoint.
pub const ENV: &str = "PLBULK_FAILPOINT";

#[cfg(debug_assertions)]
mod armed {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    pub struct Armed {
        pub point: String,
        pub operation: Option<String>,
        pub nth: u32,
        pub action: Action,
        pub seen: AtomicU32,
    }

    /// What the process does at the armed point.
    pub enum Action {
        Abort,
        Panic,
        /// Hold until the test removes this file, which the process creates on arriving.
        Wait(PathBuf),
    }

    pub fn get() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::ENV).ok()?;
                // The action first: a file to wait for may hold '@' or ':'.
                let (spec, action) = match spec.split_once('=') {
                    Some((s, "panic")) => (s.to_string(), Action::Panic),
                    Some((s, a)) => match a.strip_prefix("wait:") {
                        Some(file) => (s.to_string(), Action::Wait(file.into())),
                        None => (s.to_string(), Action::Abort),
                    },
                    None => (spec, Action::Abort),
                };
                let (rest, nth) = match spec.rsplit_once('@') {
                    Some((r, n)) => (r.to_string(), n.trim().parse().unwrap_or(1)),
                    None => (spec.clone(), 1),
                };
                let (point, operation) = match rest.split_once(':') {
                    Some((p, o)) => (p.trim().to_string(), Some(o.trim().to_string())),
                    None => (rest.trim().to_string(), None),
                };
                Some(Armed {
                    point,
                    operation,
                    nth,
                    action,
                    seen: AtomicU32::new(0),
                })
            })
            .as_ref()
    }

    pub fn matches(a: &Armed, point: &str, operation: &str) -> bool {
        a.point == point
            && a.operation.as_deref().is_none_or(|o| o == operation)
            && a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.nth
    }

    /// Holds until `file`, created here, is removed; a test that died meanwhile does not leave
    /// the process waiting for ever.
    pub fn wait(file: &std::path::Path, what: &str) {
        if let Err(e) = std::fs::write(file, what) {
            eprintln!("failpoint {what}: cannot create {}: {e}", file.display());
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Dies (or panics, or waits) here if a test armed this point for this operation.
#[inline]
pub fn hit(point: Point, operation: crate::contract::Operation) {
    #[cfg(debug_assertions)]
    act(point.name(), operation.name());
    #[cfg(not(debug_assertions))]
    let _ = (point, operation);
}

/// Dies (or waits) here if a test armed this place.
#[inline]
pub fn reached(place: Place) {
    #[cfg(debug_assertions)]
    act(place.name(), "");
    #[cfg(not(debug_assertions))]
    let _ = place;
}

#[cfg(debug_assertions)]
fn act(point: &str, operation: &str) {
    let Some(a) = armed::get() else {
        return;
    };
    if !armed::matches(a, point, operation) {
        return;
    }
    let (what, reached) = if operation.is_empty() {
        (point.to_string(), format!("{point} reached"))
    } else {
        (
            format!("{point} for {operation}"),
            format!("{point} reached for {operation}"),
        )
    };
    match &a.action {
        armed::Action::Panic => panic!("failpoint {what}"),
        armed::Action::Wait(file) => armed::wait(file, &what),
        armed::Action::Abort => {
            eprintln!("failpoint {reached}: aborting");
            std::process::abort();
        }
    }
}

/// With `full@N` armed: how many pages the journal may still grow by, as on a disk about to
/// fill up.
pub fn journal_pages() -> Option<u32> {
    #[cfg(debug_assertions)]
    if let Some(a) = armed::get() {
        if a.point == "full" {
            return Some(a.nth);
        }
    }
    None
}
