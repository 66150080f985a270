//! Progress while a job runs: a bar per sheet on a terminal, a line every few seconds in a log.
//!
//! Each bar shows rows done of the sheet's total and how many succeeded and failed; a line above
//! them shows calls in the last minute against the limit and the time left at the limit's pace.
//! Without a terminal (CI, a log file, `nohup`), the same numbers are printed as one line every
//! five seconds. `-q` shows nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::RowState;
use crate::pacing::{Counted, Rate};
use crate::pipeline::{Event, Watcher};

pub struct Progress {
    mp: MultiProgress,
    head: ProgressBar,
    bars: Vec<ProgressBar>,
    ok: Vec<AtomicU64>,
    bad: Vec<AtomicU64>,
    left: AtomicU64,
    calls_per_row: f64,
    calls: Arc<Counted>,
    rate: Rate,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// One sheet's label, rows in all, and rows already final when this run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetLine {
    pub label: String,
    pub total: u64,
    pub done: u64,
    pub ok: u64,
    pub bad: u64,
}

impl Progress {
    /// `calls_per_row` estimates the writes each remaining row makes, for the time left.
    pub fn new(
        sheets: Vec<SheetLine>,
        calls: Arc<Counted>,
        rate: Rate,
        calls_per_row: f64,
        quiet: bool,
    ) -> Arc<Progress> {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let mp = MultiProgress::with_draw_target(match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        });
        let head = mp.add(ProgressBar::new_spinner());
        head.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
        if mode == Mode::Bars {
            // Without its own tick the spinner turns only when the message changes, and a job
            // waiting out a limit or an outage looked frozen.
            head.enable_steady_tick(Duration::from_millis(120));
        }
        let style = ProgressStyle::with_template("  {prefix:<28} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> ");
        let width = sheets.iter().map(|s| s.label.len()).max().unwrap_or(10);
        let mut bars = Vec::new();
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        let mut left = 0;
        for s in &sheets {
            let b = mp.add(ProgressBar::new(s.total));
            b.set_style(style.clone());
            b.set_prefix(format!("{:<width$}", s.label));
            b.set_position(s.done);
            bars.push(b);
            ok.push(AtomicU64::new(s.ok));
            bad.push(AtomicU64::new(s.bad));
            left += s.total - s.done;
        }
        let p = Arc::new(Progress {
            mp,
            head,
            bars,
            ok,
            bad,
            left: AtomicU64::new(left),
            calls_per_row,
            calls,
            rate,
            mode,
        });
        for i in 0..p.bars.len() {
            p.refresh_bar(i);
        }
        p
    }

    /// The progress of a job whose sheets stand as `board` says.
    pub fn of_board(
        board: crate::pipeline::Board,
        calls: Arc<Counted>,
        rate: Rate,
        quiet: bool,
    ) -> Arc<Progress> {
        Progress::new(board.sheets, calls, rate, board.calls_per_row, quiet)
    }

    fn refresh_bar(&self, i: usize) {
        let ok = self.ok[i].load(Ordering::Relaxed);
        let bad = self.bad[i].load(Ordering::Relaxed);
        self.bars[i].set_message(format!("{ok} ok, {bad} not"));
    }

    /// The head line: calls in the last minute and the time left at the limit.
    pub fn status(&self) -> String {
        let left = self.left.load(Ordering::Relaxed);
        let calls = (left as f64 * self.calls_per_row).ceil() as u64;
        let secs = self.calls.time_left(calls, self.rate).as_secs_f64();
        let done: u64 = self.bars.iter().map(|b| b.position()).sum();
        let total: u64 = self.bars.iter().map(|b| b.length().unwrap_or(0)).sum();
        // The limit in the same unit as the count beside it: "(limit 3/s)" after a minute's
        // calls read as if the job were 60 times over.
        format!(
            "{done}/{total} rows; {} calls in the last minute (limit {}); about {} left",
            self.calls.last_minute(),
            per_minute(self.rate),
            humantime::format_duration(Duration::from_secs(secs.ceil() as u64))
        )
    }

    /// Keeps the head line (or the log line) fresh until the returned handle is aborted.
    pub fn ticker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let every = match me.mode {
                Mode::Bars => Duration::from_millis(500),
                Mode::Lines => Duration::from_secs(5),
                Mode::Quiet => return,
            };
            loop {
                tokio::time::sleep(every).await;
                match me.mode {
                    Mode::Bars => me.head.set_message(me.status()),
                    _ => eprintln!("progress: {}", me.status()),
                }
            }
        })
    }

    pub fn finish(&self) {
        for b in &self.bars {
            b.abandon();
        }
        self.head.finish_and_clear();
        let _ = self.mp.clear();
    }

    /// Prints a line without tearing the bars.
    pub fn println(&self, line: &str) {
        match self.mode {
            Mode::Bars => {
                let _ = self.mp.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }
}

/// A rate said per minute, as the calls beside it are counted: 100/min, or 180/min (3/s).
fn per_minute(rate: Rate) -> String {
    let n = rate.per_second() * 60.0;
    let n = if (n - n.round()).abs() < 0.05 {
        format!("{}", n.round() as u64)
    } else {
        format!("{n:.1}")
    };
    if rate.window == Duration::from_secs(60) {
        format!("{n}/min")
    } else {
        format!("{n}/min, as {rate}")
    }
}

/// A line that turns while something before the job's rows takes time (the pre-flight's List
/// calls): on a terminal a spinner with the calls so far, in a log one line when it starts.
/// Cleared when dropped.
pub struct Busy {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Busy {
    pub fn start(what: &str, calls: Arc<Counted>, quiet: bool) -> Busy {
        if quiet {
            return Busy {
                bar: None,
                ticker: None,
            };
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("{what}…");
            return Busy {
                bar: None,
                ticker: None,
            };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("{what}…"));
        let (b, what) = (bar.clone(), what.to_string());
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                b.set_message(format!(
                    "{what}: {} so far",
                    crate::words::count(calls.total(), "call")
                ));
            }
        });
        Busy {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Progress {
    fn row_finished(&self, sheet: u32, state: RowState) {
        let i = sheet as usize;
        if i >= self.bars.len() {
            return;
        }
        if state.is_success() {
            self.ok[i].fetch_add(1, Ordering::Relaxed);
        } else {
            self.bad[i].fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                Some(l.saturating_sub(1))
            });
        self.bars[i].inc(1);
        self.refresh_bar(i);
    }
}

impl Watcher for Progress {
    fn event(&self, event: &Event) {
        use crate::client::health::clock;
        match event {
            Event::RowFinished { sheet, state } => self.row_finished(*sheet, *state),
            Event::RowWaits { why } => {
                if !matches!(self.mode, Mode::Quiet) {
                    self.println(why);
                }
            }
            // An outage is said even with -q: the job is not stuck, and goes on by itself.
            Event::ApiDown {
                since_ms,
                last_error,
                probe_every,
                waiting,
            } => self.println(&format!(
                "The API has not answered since {} ({last_error}); {} waiting; trying again every {}. plbulk goes on by itself when it answers.",
                clock(*since_ms),
                crate::words::count(*waiting as u64, "request"),
                humantime::format_duration(*probe_every)
            )),
            Event::ApiAnswers { down } => self.println(&format!(
                "The API answers again (it did not for {}); carrying on.",
                humantime::format_duration(*down)
            )),
            // The job's end says why it stopped.
            Event::Halted(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_said_in_the_unit_of_the_count_beside_it() {
        assert_eq!(per_minute(Rate::default()), "100/min");
        assert_eq!(
            per_minute(Rate::new(3, Duration::from_secs(1))),
            "180/min, as 3/s"
        );
    }
}
