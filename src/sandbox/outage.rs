//! Spells when the API is away rather than wrong: outages, when it cannot be reached (its
//! connections refused, or accepted and left hanging), and spells when a key is refused, as
//! after a rotation in the partner portal. Each is planned from the sandbox's start (the CLI's
//! `--outage refuse:10s:90s`, `--key-refused 10s:90s`), asked for while it runs
//! (`POST /__sandbox/outage`, `POST /__sandbox/key-refused`) or started by a request's seeded
//! draw. `Periods` is the timeline, with no I/O in it: the gate asks it what is in force when
//! a request arrives, and the accept loop when to close and reopen the port.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How an outage looks from a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutageMode {
    /// Connections are refused: the port is closed, and connections already open are closed.
    Refuse,
    /// Connections are accepted and requests read, but none is answered or applied until the
    /// outage ends; then their connections close without an answer.
    Hang,
}

impl OutageMode {
    pub fn name(self) -> &'static str {
        match self {
            OutageMode::Refuse => "refuse",
            OutageMode::Hang => "hang",
        }
    }
}

impl fmt::Display for OutageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OutageMode {
    type Err = String;

    fn from_str(s: &str) -> Result<OutageMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "refuse" => Ok(OutageMode::Refuse),
            "hang" => Ok(OutageMode::Hang),
            _ => Err(format!("outage mode {s:?} must be refuse or hang")),
        }
    }
}

/// A humantime duration ("90s", "1m 30s", "1500ms", "0"), or a message saying what to type.
fn duration(what: &str, v: &str, example: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|e| format!("{what} {v:?} is not a duration ({e}); write it like {example}"))
}

/// An outage counted from the sandbox's start, as `--outage MODE:AFTER:FOR` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedOutage {
    pub mode: OutageMode,
    pub after: Duration,
    pub duration: Duration,
}

impl FromStr for PlannedOutage {
    type Err = String;

    /// `refuse:10s:90s`, `hang:0:1500ms`.
    fn from_str(s: &str) -> Result<PlannedOutage, String> {
        const EXAMPLE: &str = "refuse:10s:90s or hang:1m:30s";
        let parts: Vec<&str> = s.split(':').collect();
        let [mode, after, length] = parts.as_slice() else {
            return Err(format!(
                "outage {s:?} must be MODE:AFTER:FOR, like {EXAMPLE}"
            ));
        };
        let mode = mode.parse::<OutageMode>()?;
        let after = duration("the outage's start", after, "10s or 0")?;
        let duration = duration("the outage's length", length, "90s")?;
        if duration.is_zero() {
            return Err(format!(
                "outage {s:?} must last longer than 0, like {EXAMPLE}"
            ));
        }
        Ok(PlannedOutage {
            mode,
            after,
            duration,
        })
    }
}

/// A spell of the key refused, counted from the sandbox's start: `--key-refused AFTER:FOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedRefusal {
    pub after: Duration,
    pub duration: Duration,
}

impl FromStr for PlannedRefusal {
    type Err = String;

    /// `10s:90s`, `0:2s`.
    fn from_str(s: &str) -> Result<PlannedRefusal, String> {
        const EXAMPLE: &str = "10s:90s";
        let parts: Vec<&str> = s.split(':').collect();
        let [after, length] = parts.as_slice() else {
            return Err(format!(
                "key refusal {s:?} must be AFTER:FOR, like {EXAMPLE}"
            ));
        };
        let after = duration("the refusal's start", after, "10s or 0")?;
        let duration = duration("the refusal's length", length, "90s")?;
        if duration.is_zero() {
            return Err(format!(
                "key refusal {s:?} must last longer than 0, like {EXAMPLE}"
            ));
        }
        Ok(PlannedRefusal { after, duration })
    }
}

/// An outage as `GET /__sandbox/outages` lists it, in milliseconds since the sandbox started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub mode: OutageMode,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A spell of the key refused, as `GET /__sandbox/key-refused` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRefusal {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The body of `POST /__sandbox/outage`.
#[derive(Debug, Deserialize)]
pub(crate) struct OutageRequest {
    pub mode: OutageMode,
    pub for_ms: u64,
    #[serde(default)]
    pub after_ms: u64,
}

/// The body of `POST /__sandbox/key-refused`.
#[derive(Debug, Deserialize)]
pub(crate) struct KeyRefusedRequest {
    pub for_ms: u64,
    #[serde(default)]
    pub after_ms: u64,
}

/// Every outage and key refusal, past, present and planned.
#[derive(Debug, Default)]
pub(crate) struct Periods {
    outages: Vec<(OutageMode, Instant, Instant)>,
    refusals: Vec<(Instant, Instant)>,
}

fn ms(started: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(started).as_millis() as u64
}

impl Periods {
    pub fn add_outage(&mut self, mode: OutageMode, start: Instant, end: Instant) {
        self.outages.push((mode, start, end));
    }

    pub fn add_refusal(&mut self, start: Instant, end: Instant) {
        self.refusals.push((start, end));
    }

    /// The outage in force at `now` and when it ends (the latest end of those in force).
    /// Where a refusing and a hanging outage overlap, connections are refused: nothing can
    /// hang on a connection that cannot be made.
    pub fn outage_at(&self, now: Instant) -> Option<(OutageMode, Instant)> {
        let until = |mode: OutageMode| {
            self.outages
                .iter()
                .filter(|(m, start, end)| *m == mode && *start <= now && now < *end)
                .map(|(_, _, end)| *end)
                .max()
        };
        until(OutageMode::Refuse)
            .map(|end| (OutageMode::Refuse, end))
            .or_else(|| until(OutageMode::Hang).map(|end| (OutageMode::Hang, end)))
    }

    /// When the next refusing outage after `now` begins: the port closes then.
    pub fn next_refusing(&self, now: Instant) -> Option<Instant> {
        self.outages
            .iter()
            .filter(|(m, start, _)| *m == OutageMode::Refuse && *start > now)
            .map(|(_, start, _)| *start)
            .min()
    }

    pub fn key_refused_at(&self, now: Instant) -> bool {
        self.refusals
            .iter()
            .any(|(start, end)| *start <= now && now < *end)
    }

    /// Whether a refusal began after `issued` and by `now`: a token issued before a rotation
    /// stays dead after it, as the old key's tokens do.
    pub fn refused_since(&self, issued: Instant, now: Instant) -> bool {
        self.refusals
            .iter()
            .any(|(start, _)| issued < *start && *start <= now)
    }

    /// The outages that have begun by `now`, in the order they began.
    pub fn outages(&self, started: Instant, now: Instant) -> Vec<Outage> {
        let mut v: Vec<Outage> = self
            .outages
            .iter()
            .filter(|(_, start, _)| *start <= now)
            .map(|(mode, start, end)| Outage {
                mode: *mode,
                start_ms: ms(started, *start),
                end_ms: ms(started, *end),
            })
            .collect();
        v.sort_by_key(|o| (o.start_ms, o.end_ms));
        v
    }

    /// The key refusals that have begun by `now`, in the order they began.
    pub fn refusals(&self, started: Instant, now: Instant) -> Vec<KeyRefusal> {
        let mut v: Vec<KeyRefusal> = self
            .refusals
            .iter()
            .filter(|(start, _)| *start <= now)
            .map(|(start, end)| KeyRefusal {
                start_ms: ms(started, *start),
                end_ms: ms(started, *end),
            })
            .collect();
        v.sort_by_key(|r| (r.start_ms, r.end_ms));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn outages_parse_mode_after_and_length() {
        assert_eq!(
            "refuse:10s:90s".parse::<PlannedOutage>().unwrap(),
            PlannedOutage {
                mode: OutageMode::Refuse,
                after: 10 * S,
                duration: 90 * S
            }
        );
        assert_eq!(
            "hang:0:1500ms".parse::<PlannedOutage>().unwrap(),
            PlannedOutage {
                mode: OutageMode::Hang,
                after: Duration::ZERO,
                duration: Duration::from_millis(1500)
            }
        );
        assert_eq!(
            "Hang:1m 30s:2s".parse::<PlannedOutage>().unwrap().after,
            90 * S
        );
        for bad in [
            "",
            "refuse",
            "refuse:10s",
            "refuse:10s:90s:1s",
            "down:10s:90s",
            "refuse:soon:90s",
            "refuse:10s:0",
            "refuse:10s:-1s",
        ] {
            let e = bad.parse::<PlannedOutage>().unwrap_err();
            assert!(
                e.contains("refuse:10s:90s") || e.contains("refuse or hang") || e.contains("like"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn key_refusals_parse_after_and_length() {
        assert_eq!(
            "10s:90s".parse::<PlannedRefusal>().unwrap(),
            PlannedRefusal {
                after: 10 * S,
                duration: 90 * S
            }
        );
        for bad in ["", "10s", "10s:", "10s:0", "x:1s", "1s:2s:3s"] {
            let e = bad.parse::<PlannedRefusal>().unwrap_err();
            assert!(e.contains("like") || e.contains("write it"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn modes_parse_and_print_as_the_cli_and_json_spell_them() {
        for mode in [OutageMode::Refuse, OutageMode::Hang] {
            assert_eq!(mode.to_string().parse::<OutageMode>().unwrap(), mode);
            assert_eq!(
                serde_json::to_value(mode).unwrap(),
                serde_json::Value::from(mode.name())
            );
        }
        assert!("off".parse::<OutageMode>().is_err());
    }

    #[test]
    fn a_refusing_outage_wins_over_a_hanging_one_and_ends_last() {
        let t0 = Instant::now();
        let mut p = Periods::default();
        p.add_outage(OutageMode::Hang, t0, t0 + 10 * S);
        p.add_outage(OutageMode::Refuse, t0 + 2 * S, t0 + 4 * S);
        p.add_outage(OutageMode::Refuse, t0 + 3 * S, t0 + 5 * S);
        assert_eq!(p.outage_at(t0 + S), Some((OutageMode::Hang, t0 + 10 * S)));
        assert_eq!(
            p.outage_at(t0 + 3 * S),
            Some((OutageMode::Refuse, t0 + 5 * S))
        );
        assert_eq!(p.outage_at(t0 + 10 * S), None);
        assert_eq!(p.next_refusing(t0), Some(t0 + 2 * S));
        assert_eq!(p.next_refusing(t0 + 3 * S), None);
        assert_eq!(p.outages(t0, t0 + 2 * S).len(), 2, "only those begun");
        assert_eq!(
            p.outages(t0, t0 + 2 * S)[1],
            Outage {
                mode: OutageMode::Refuse,
                start_ms: 2000,
                end_ms: 4000
            }
        );
    }

    #[test]
    fn a_token_from_before_a_refusal_stays_refused_after_it() {
        let t0 = Instant::now();
        let mut p = Periods::default();
        p.add_refusal(t0 + 2 * S, t0 + 4 * S);
        assert!(!p.key_refused_at(t0 + S));
        assert!(p.key_refused_at(t0 + 2 * S));
        assert!(!p.key_refused_at(t0 + 4 * S));
        // Issued at t0: alive before the refusal, dead during and after it.
        assert!(!p.refused_since(t0, t0 + S));
        assert!(p.refused_since(t0, t0 + 3 * S));
        assert!(p.refused_since(t0, t0 + 9 * S));
        // Issued after it: alive.
        assert!(!p.refused_since(t0 + 5 * S, t0 + 9 * S));
        assert_eq!(
            p.refusals(t0, t0 + 9 * S),
            vec![KeyRefusal {
                start_ms: 2000,
                end_ms: 4000
            }]
        );
        assert!(p.refusals(t0, t0 + S).is_empty());
    }
}
