//! Reading ahead: a sheet's rows are parsed on a thread of their own, a few batches ahead of
//! whoever checks them.
//!
//! Parsing a large CSV and validating its rows each take about half of the work, and the
//! machines partners use have more than one core; with the two overlapped, validating a
//! million-row file takes little longer than the validation alone. The reader thread starts at
//! the first row asked for, so a workbook's sheets waiting their turn cost nothing, and it stops
//! when the [`ReadAhead`] is dropped. Memory stays bounded: at most [`IN_FLIGHT`] batches are
//! ever filled and not yet taken, each of at most [`BATCH`] rows or about [`BATCH_BYTES`] of
//! text, and their buffers are handed back and reused.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use super::{IntakeError, RowBuf, Rows};
use crate::findings::Finding;

/// Rows parsed per hand-over: enough that the channel costs nothing per row, few enough that
/// the first rows are checked at once.
const BATCH: usize = 256;
/// Batches filled and not yet taken.
const IN_FLIGHT: usize = 4;
/// A batch also ends at this much text, so that a file of huge cells holds a few megabytes in
/// flight, not a few hundred rows of them.
const BATCH_BYTES: usize = 1 << 20;
/// A row buffer that grew past this for one huge row gives the memory back before reuse.
const KEEP_CAPACITY: usize = 64 << 10;

#[derive(Default)]
struct Batch {
    rows: Vec<RowBuf>,
    numbers: Vec<u32>,
    /// Notes about cells, each with the index in `rows` of the row it is about.
    notes: VecDeque<(usize, Finding)>,
    /// Rows in use; `rows` may hold more buffers than that, kept for reuse.
    len: usize,
    /// How the sheet ended after these rows, if it did.
    end: Option<Result<(), IntakeError>>,
}

enum State {
    Waiting(Box<dyn Rows>),
    Running {
        full: Receiver<Batch>,
        empty: Sender<Batch>,
    },
    Done,
}

/// A [`Rows`] read on another thread. See the module's notes.
pub struct ReadAhead {
    /// The file, for the one error this adds: the reading thread dying.
    file: Arc<str>,
    state: State,
    current: Batch,
    at: usize,
}

impl ReadAhead {
    pub fn new(file: Arc<str>, rows: Box<dyn Rows>) -> ReadAhead {
        ReadAhead {
            file,
            state: State::Waiting(rows),
            current: Batch::default(),
            at: 0,
        }
    }

    fn start(rows: Box<dyn Rows>) -> std::io::Result<State> {
        let (full_tx, full) = mpsc::sync_channel(IN_FLIGHT);
        let (empty, empty_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("plbulk-read".into())
            .spawn(move || fill(rows, full_tx, empty_rx))?;
        Ok(State::Running { full, empty })
    }

    fn failed(&self, why: std::io::Error) -> IntakeError {
        IntakeError::Io {
            path: self.file.to_string().into(),
            source: why,
        }
    }
}

/// The reader thread: fills batches until the sheet ends or nobody is taking them.
fn fill(mut rows: Box<dyn Rows>, full: SyncSender<Batch>, empty: Receiver<Batch>) {
    let mut notes = Vec::new();
    let mut made = 0;
    loop {
        // Reuse a batch the reader has finished with; make new ones only until there are
        // enough to fill the channel and keep both threads busy.
        let mut batch = match empty.try_recv() {
            Ok(b) => b,
            Err(_) if made < IN_FLIGHT + 2 => {
                made += 1;
                Batch::default()
            }
            Err(_) => match empty.recv() {
                Ok(b) => b,
                // Nobody is reading any more.
                Err(_) => return,
            },
        };
        batch.len = 0;
        batch.numbers.clear();
        batch.notes.clear();
        let mut bytes = 0;
        while batch.len < BATCH && bytes < BATCH_BYTES {
            if batch.rows.len() == batch.len {
                batch.rows.push(RowBuf::default());
            }
            batch.rows[batch.len].release_beyond(KEEP_CAPACITY);
            let next = rows.next_row(&mut batch.rows[batch.len], &mut notes);
            let at = batch.len;
            batch.notes.extend(notes.drain(..).map(|n| (at, n)));
            match next {
                Ok(Some(n)) => {
                    bytes += batch.rows[batch.len].bytes();
                    batch.numbers.push(n);
                    batch.len += 1;
                }
                Ok(None) => {
                    batch.end = Some(Ok(()));
                    break;
                }
                Err(e) => {
                    batch.end = Some(Err(e));
                    break;
                }
            }
        }
        let ended = batch.end.is_some();
        if full.send(batch).is_err() || ended {
            return;
        }
    }
}

impl Rows for ReadAhead {
    fn next_row(
        &mut self,
        buf: &mut RowBuf,
        notes: &mut Vec<Finding>,
    ) -> Result<Option<u32>, IntakeError> {
        while self.at == self.current.len {
            if let Some(end) = self.current.end.take() {
                self.state = State::Done;
                return end.map(|()| None);
            }
            match std::mem::replace(&mut self.state, State::Done) {
                State::Waiting(rows) => {
                    self.state = Self::start(rows).map_err(|e| self.failed(e))?;
                }
                State::Running { full, empty } => {
                    // Hand the finished batch back first, so the reader can refill it at once.
                    let _ = empty.send(std::mem::take(&mut self.current));
                    let Ok(next) = full.recv() else {
                        // The thread is gone without saying how the sheet ended: it panicked.
                        return Err(self.failed(std::io::Error::other(
                            "reading stopped unexpectedly half way (a fault in plbulk: \
                             please report it with the file, if you can)",
                        )));
                    };
                    self.current = next;
                    self.at = 0;
                    self.state = State::Running { full, empty };
                }
                State::Done => return Ok(None),
            }
        }
        let i = self.at;
        self.at += 1;
        // The row changes places with the caller's buffer: nothing is copied, and the caller's
        // old buffer is refilled on the reader thread later.
        std::mem::swap(buf, &mut self.current.rows[i]);
        while self.current.notes.front().is_some_and(|(r, _)| *r == i) {
            notes.extend(self.current.notes.pop_front().map(|(_, n)| n));
        }
        Ok(Some(self.current.numbers[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Rows 2..=n+1, each with its number as its one cell; a note on every tenth; an error
    /// after `fail_after` rows, if given.
    struct Counting {
        n: u32,
        next: u32,
        fail_after: Option<u32>,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Counting {
        fn new(n: u32, fail_after: Option<u32>) -> Counting {
            Counting {
                n,
                next: 0,
                fail_after,
                dropped: Default::default(),
            }
        }
    }

    impl Drop for Counting {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    impl Rows for Counting {
        fn next_row(
            &mut self,
            buf: &mut RowBuf,
            notes: &mut Vec<Finding>,
        ) -> Result<Option<u32>, IntakeError> {
            buf.clear();
            if Some(self.next) == self.fail_after {
                return Err(IntakeError::Empty("broken.csv".into()));
            }
            if self.next == self.n {
                return Ok(None);
            }
            self.next += 1;
            let row = self.next + 1;
            buf.push(&row.to_string());
            if row % 10 == 0 {
                notes.push(Finding {
                    severity: crate::findings::Severity::Warning,
                    file: "f".into(),
                    sheet: "s".into(),
                    row: Some(row),
                    column: None,
                    header: None,
                    value: String::new(),
                    message: format!("note {row}"),
                });
            }
            Ok(Some(row))
        }
    }

    #[test]
    fn every_row_and_note_arrives_in_order_with_its_row() {
        let mut r = ReadAhead::new("t.csv".into(), Box::new(Counting::new(2000, None)));
        let mut buf = RowBuf::default();
        let mut notes = Vec::new();
        let mut expected = 2;
        while let Some(n) = r.next_row(&mut buf, &mut notes).unwrap() {
            assert_eq!(n, expected);
            assert_eq!(buf.get(0), n.to_string());
            assert_eq!(buf.len(), 1);
            if n % 10 == 0 {
                assert_eq!(notes.len(), 1, "row {n}");
                assert_eq!(notes.pop().unwrap().message, format!("note {n}"));
            } else {
                assert!(notes.is_empty(), "row {n}");
            }
            expected += 1;
        }
        assert_eq!(expected, 2002);
        assert!(r.next_row(&mut buf, &mut notes).unwrap().is_none());
    }

    #[test]
    fn an_error_arrives_after_the_rows_before_it() {
        let mut r = ReadAhead::new("t.csv".into(), Box::new(Counting::new(2000, Some(700))));
        let mut buf = RowBuf::default();
        let mut notes = Vec::new();
        let mut rows = 0;
        let err = loop {
            match r.next_row(&mut buf, &mut notes) {
                Ok(Some(_)) => rows += 1,
                Ok(None) => panic!("the error was lost"),
                Err(e) => break e,
            }
        };
        assert_eq!(rows, 700);
        assert!(matches!(err, IntakeError::Empty(_)));
    }

    /// Rows of one 1 MB cell each.
    struct Huge {
        left: u32,
    }

    impl Rows for Huge {
        fn next_row(
            &mut self,
            buf: &mut RowBuf,
            _: &mut Vec<Finding>,
        ) -> Result<Option<u32>, IntakeError> {
            buf.clear();
            if self.left == 0 {
                return Ok(None);
            }
            self.left -= 1;
            buf.push(&"x".repeat(1 << 20));
            Ok(Some(2))
        }
    }

    #[test]
    fn huge_rows_make_small_batches() {
        let mut r = ReadAhead::new("t.csv".into(), Box::new(Huge { left: 40 }));
        let mut buf = RowBuf::default();
        r.next_row(&mut buf, &mut Vec::new()).unwrap();
        // Give the reader time to fill everything it may.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let held: usize = r.current.rows.iter().map(RowBuf::capacity).sum();
        assert!(
            held <= 2 * BATCH_BYTES,
            "{held} bytes in the batch being read"
        );
        let mut rows = 1;
        while r.next_row(&mut buf, &mut Vec::new()).unwrap().is_some() {
            rows += 1;
        }
        assert_eq!(rows, 40);
    }

    struct Panicking;

    impl Rows for Panicking {
        fn next_row(
            &mut self,
            _: &mut RowBuf,
            _: &mut Vec<Finding>,
        ) -> Result<Option<u32>, IntakeError> {
            panic!("a fault in a reader")
        }
    }

    #[test]
    fn a_reader_that_dies_is_an_error_naming_the_file() {
        let mut r = ReadAhead::new("customers.csv".into(), Box::new(Panicking));
        let err = r
            .next_row(&mut RowBuf::default(), &mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read customers.csv: reading stopped"),
            "{err}"
        );
    }

    #[test]
    fn dropping_it_early_stops_the_reader() {
        let rows = Counting::new(u32::MAX - 2, None);
        let dropped = rows.dropped.clone();
        let mut r = ReadAhead::new("t.csv".into(), Box::new(rows));
        let mut buf = RowBuf::default();
        r.next_row(&mut buf, &mut Vec::new()).unwrap();
        assert!(!dropped.load(Ordering::SeqCst));
        // The reader would run for ever; it must notice that nobody takes its batches.
        drop(r);
        let t = std::time::Instant::now();
        while !dropped.load(Ordering::SeqCst) {
            assert!(t.elapsed().as_secs() < 10, "the reader thread kept running");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
