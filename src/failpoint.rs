//! Failpoints: the places in the journal protocol where a test can make plbulk die at once,
//! as a `kill -9` or a power cut would, to show that a resume ends every row exactly once.
//!
//! `PLBULK_FAILPOINT=POINT[:OPERATION][@N][=panic]` arms one: the process aborts the N-th
//! time (the first, by default) it reaches POINT for OPERATION (an overview name such as `Add
//! Customer`; any operation when left out); with `=panic`, that row's task panics instead, to
//! show that one row's internal error fails that row alone. The points, in the order a request meets them:
//! `intent` (its intent is on disk, nothing sent), `answer` (the server has answered, the
//! journal does not know it), `answered` (the answer is journaled, the row's final state is
//! not). `full@N` is not a place but a condition: the job's journal may grow by N pages more
//! once the engine starts, and then every write that needs one fails as on a full disk. Only
//! debug builds (what `cargo test` runs) read the variable: in a release build
//! [`hit`] is empty and the optimiser removes it.

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

/// The variable that arms a failpoint.
pub const ENV: &str = "PLBULK_FAILPOINT";

#[cfg(debug_assertions)]
mod armed {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    pub struct Armed {
        pub point: String,
        pub operation: Option<String>,
        pub nth: u32,
        pub panic: bool,
        pub seen: AtomicU32,
    }

    pub fn get() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::ENV).ok()?;
                let (spec, panic) = match spec.strip_suffix("=panic") {
                    Some(s) => (s.to_string(), true),
                    None => (spec, false),
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
                    panic,
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
}

/// Dies here if a test armed this point for this operation.
#[inline]
pub fn hit(point: Point, operation: crate::contract::Operation) {
    #[cfg(debug_assertions)]
    if let Some(a) = armed::get() {
        if armed::matches(a, point.name(), operation.name()) {
            if a.panic {
                panic!("failpoint {} for {}", point.name(), operation.name());
            }
            eprintln!(
                "failpoint {} reached for {}: aborting",
                point.name(),
                operation.name()
            );
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (point, operation);
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
