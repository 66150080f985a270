//! CSV and other delimited text, as Excel, LibreOffice and legacy systems write it.
//!
//! The encoding: a UTF-8 or UTF-16 byte-order mark says it outright. Otherwise valid UTF-8 is
//! UTF-8, and Windows-1252 (what Excel's plain "CSV" writes on most UK machines) is right only
//! for a file with no valid multi-byte UTF-8 sequence in it: a file that has one and also has
//! bytes that are not UTF-8 is UTF-8 with stray bytes (a legacy line pasted into a UTF-8
//! export), and read as 1252 it would turn "José" into "JosÃ©" in the account. Such a file is
//! read as UTF-8 and each cell holding stray bytes is an error naming them; so is a cell of a
//! 1252 file with a byte 1252 leaves undefined (81, 8D, 8F, 90, 9D). The decision is a note the
//! terminal shows. Non-UTF-8 input is decoded as it streams, so memory does not grow with the
//! file. The delimiter (comma, semicolon or tab) is the one the header line uses most.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, WINDOWS_1252};

use super::{display, infer_kind, IntakeError, RowBuf, Rows, Sheet};
use crate::findings::{Finding, Severity};
use crate::schema::Kind;

const SNIFF: usize = 1 << 20;

/// Decodes a byte stream of a legacy encoding into UTF-8 as it is read.
struct Decoding<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    eof: bool,
    /// The decoder was told the input ended; it must not be called again.
    finished: bool,
}

impl<R: Read> Decoding<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Decoding {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            in_start: 0,
            in_end: 0,
            output: vec![0; 3 * 64 * 1024 + 16],
            out_start: 0,
            out_end: 0,
            eof: false,
            finished: false,
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.out_end {
            if self.finished {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                self.in_start = 0;
                self.in_end = self.inner.read(&mut self.input)?;
                self.eof = self.in_end == 0;
            }
            if self.eof && self.in_start == self.in_end {
                let (_, _, written, _) = self.decoder.decode_to_utf8(&[], &mut self.output, true);
                self.finished = true;
                self.out_start = 0;
                self.out_end = written;
                if written == 0 {
                    return Ok(0);
                }
                break;
            }
            let (_, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                false,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

/// Turns \r\n into \n and notes where the line breaks are in what the CSV reader reads, so
/// that a record's row number can count blank lines, which the reader skips silently but Excel
/// shows as rows. (With \r\n left in, the reader reports a record as starting before the
/// blank lines ahead of it.)
struct LineTracker<R> {
    inner: R,
    offset: u64,
    held_cr: bool,
    /// Read by [`CsvRows`] through the CSV reader's `get_mut`: both live on the reading
    /// thread, so no lock is needed.
    breaks: VecDeque<u64>,
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.len() < 2 {
            return Ok(0);
        }
        let start = usize::from(self.held_cr);
        if self.held_cr {
            buf[0] = b'\r';
        }
        let n = self.inner.read(&mut buf[start..])?;
        let mut len = start + n;
        self.held_cr = false;
        if n > 0 && buf[len - 1] == b'\r' {
            // It may be half of a \r\n: decide on the next read.
            self.held_cr = true;
            len -= 1;
        }
        let q = &mut self.breaks;
        if memchr::memchr(b'\r', &buf[..len]).is_none() {
            // The usual case: nothing to fold, only line breaks to note.
            let offset = self.offset;
            q.extend(memchr::memchr_iter(b'\n', &buf[..len]).map(|i| offset + i as u64));
            self.offset += len as u64;
            if len == 0 && self.held_cr {
                // Only a \r came: it is not data yet.
                return self.read(buf);
            }
            return Ok(len);
        }
        let mut w = 0;
        for r in 0..len {
            let b = buf[r];
            if b == b'\r' && r + 1 < len && buf[r + 1] == b'\n' {
                continue;
            }
            if b == b'\n' {
                q.push_back(self.offset + w as u64);
            }
            buf[w] = b;
            w += 1;
        }
        if n == 0 && start == 1 && w == 0 {
            // A lone \r at the very end.
            buf[0] = b'\r';
            w = 1;
        }
        self.offset += w as u64;
        if w == 0 && self.held_cr {
            return self.read(buf);
        }
        Ok(w)
    }
}

/// Whether `bytes` is UTF-8, allowing a character cut off at the end of the sample.
/// What a stretch of bytes says about its encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Scan {
    /// A byte that is not part of a valid UTF-8 sequence.
    invalid: bool,
    /// A valid multi-byte UTF-8 sequence: text that was written as UTF-8.
    multibyte: bool,
}

impl Scan {
    /// Scans `bytes`; with `complete` false they may end part-way through a character, which
    /// is left for the next stretch: the count of bytes held back is returned.
    fn of(bytes: &[u8], complete: bool) -> (Scan, usize) {
        let mut scan = Scan::default();
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    scan.multibyte |= !text.is_ascii();
                    return (scan, 0);
                }
                Err(e) => {
                    scan.multibyte |= !rest[..e.valid_up_to()].is_ascii();
                    match e.error_len() {
                        Some(n) => {
                            scan.invalid = true;
                            rest = &rest[e.valid_up_to() + n..];
                        }
                        None if complete => {
                            scan.invalid = true;
                            return (scan, 0);
                        }
                        None => return (scan, rest.len() - e.valid_up_to()),
                    }
                }
            }
        }
    }

    fn add(&mut self, other: Scan) {
        self.invalid |= other.invalid;
        self.multibyte |= other.multibyte;
    }

    /// The encoding these bytes are read in: Windows-1252 only when nothing in them was
    /// written as UTF-8.
    fn encoding(self) -> &'static Encoding {
        if self.invalid && !self.multibyte {
            WINDOWS_1252
        } else {
            encoding_rs::UTF_8
        }
    }
}

/// Bytes Windows-1252 leaves undefined: a file holding one is not Windows-1252 either.
const UNDEFINED_1252: [u8; 5] = [0x81, 0x8D, 0x8F, 0x90, 0x9D];

/// Scans the rest of a file past its first `SNIFF` bytes, a megabyte at a time: a file whose
/// start has no UTF-8 in it may still have some further on.
fn scan_rest(file: &mut File, mut scan: Scan, head: &[u8]) -> io::Result<Scan> {
    let (_, held) = Scan::of(head, false);
    let mut buf = head[head.len() - held..].to_vec();
    let mut chunk = vec![0u8; SNIFF];
    loop {
        let n = file.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let (s, held) = Scan::of(&buf, n == 0);
        scan.add(s);
        if n == 0 || (scan.invalid && scan.multibyte) {
            return Ok(scan);
        }
        buf.drain(..buf.len() - held);
    }
}

fn detect_delimiter(sample: &str) -> u8 {
    // The header line, outside quotes.
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for ch in sample.chars() {
        match ch {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let delims = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        delims[best]
    }
}

pub(super) fn open(
    path: &Path,
    kind: Option<Kind>,
    mapping: Option<&Arc<super::mapping::Mapping>>,
) -> Result<(Sheet, super::digest::Reading), IntakeError> {
    let io_err = |source| IntakeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = display(path);
    let mut file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let mut head = Vec::with_capacity(SNIFF.min(1 << 16));
    (&mut file)
        .take(SNIFF as u64)
        .read_to_end(&mut head)
        .map_err(io_err)?;
    let complete = head.len() < SNIFF;

    let mut mixed = false;
    let (encoding, bom): (&'static Encoding, usize) = if head.starts_with(b"\xEF\xBB\xBF") {
        (encoding_rs::UTF_8, 3)
    } else if head.starts_with(b"\xFF\xFE") {
        (UTF_16LE, 2)
    } else if head.starts_with(b"\xFE\xFF") {
        (UTF_16BE, 2)
    } else if head.contains(&0) {
        return Err(IntakeError::Binary(path.to_path_buf()));
    } else {
        let (mut scan, _) = Scan::of(&head, complete);
        if !complete && scan.encoding() == WINDOWS_1252 {
            scan = scan_rest(&mut file, scan, &head).map_err(io_err)?;
            file.seek(io::SeekFrom::Start(head.len() as u64))
                .map_err(io_err)?;
        }
        mixed = scan.invalid && scan.multibyte;
        (scan.encoding(), 0)
    };
    let sample: String = if encoding == encoding_rs::UTF_8 {
        String::from_utf8_lossy(&head[bom..head.len().min(bom + 64 * 1024)]).into_owned()
    } else {
        encoding
            .decode_without_bom_handling(&head[bom..head.len().min(bom + 64 * 1024)])
            .0
            .into_owned()
    };
    let delimiter = detect_delimiter(&sample);
    // Every byte the parser reads passes the digest, from the file's first: the sniffed head
    // again, then the rest (the encoding scan above read ahead on its own and went back).
    let (body, reading) = super::digest::Hashing::new(io::Cursor::new(head).chain(file), size);
    let mut reader: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(64 * 1024, body));
    {
        let mut skip = [0u8; 3];
        reader.read_exact(&mut skip[..bom]).map_err(io_err)?;
    }
    if encoding != encoding_rs::UTF_8 {
        reader = Box::new(Decoding::new(reader, encoding));
    }
    let reader = LineTracker {
        inner: reader,
        offset: 0,
        held_cr: false,
        breaks: VecDeque::new(),
    };
    let csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(64 * 1024)
        .from_reader(reader);

    let read_as = if encoding == WINDOWS_1252 {
        ReadAs::Windows1252
    } else if mixed {
        ReadAs::MixedUtf8
    } else {
        ReadAs::Utf8
    };
    let mut rows = CsvRows {
        file: file_name.clone(),
        sheet: Arc::from(""),
        csv,
        record: csv::ByteRecord::new(),
        lines_before: 0,
        embedded_newlines: 0,
        read_as,
    };
    // The header: the first row that is not blank.
    let mut header = RowBuf::default();
    let mut scratch = Vec::new();
    let header_row = loop {
        match rows.next_row(&mut header, &mut scratch)? {
            Some(_) if header.is_blank() => continue,
            Some(n) => break n,
            None => return Err(IntakeError::Empty(path.to_path_buf())),
        }
    };
    let headers: Arc<[Arc<str>]> = header.iter().map(|h| Arc::from(h.trim())).collect();
    let mut notes = Vec::new();
    let kind = match mapping
        .map(|m| m.kind)
        .or(kind)
        .or_else(|| infer_kind(&headers))
    {
        Some(k) => {
            if kind.is_none() && mapping.is_none() {
                notes.push(Finding {
                    severity: Severity::Note,
                    file: file_name.clone(),
                    sheet: k.sheet_name().into(),
                    row: None,
                    column: None,
                    header: None,
                    value: String::new(),
                    message: format!(
                        "read as {k} rows, from its headers (to say so yourself, add --kind {})",
                        k.cli_name()
                    ),
                });
            }
            k
        }
        None => {
            return Err(IntakeError::UnknownKind {
                file: file_name.to_string(),
                headers: headers
                    .iter()
                    .take(12)
                    .map(|h| format!("{h:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                kinds: crate::schema::kind_names(Kind::cli_name),
            })
        }
    };
    let sheet: Arc<str> = kind.sheet_name().into();
    rows.sheet = sheet.clone();
    notes.push(Finding {
        severity: Severity::Note,
        file: file_name.clone(),
        sheet: sheet.clone(),
        row: None,
        column: None,
        header: None,
        value: String::new(),
        message: match (read_as, bom) {
            (ReadAs::MixedUtf8, _) => "read as UTF-8: the file is UTF-8 with bytes of another encoding in it, and the cells holding them are errors; save it again as \"CSV UTF-8\"".into(),
            (ReadAs::Windows1252, _) => format!("read as {} text: it is not UTF-8 and has no UTF-8 in it; if accents look wrong in the report, save it again as \"CSV UTF-8\"", encoding.name()),
            (ReadAs::Utf8, 0) => format!("read as {} text", encoding.name()),
            (ReadAs::Utf8, _) => format!("read as {} text (it begins with a byte-order mark)", encoding.name()),
        },
    });
    for n in &mut notes {
        n.sheet = sheet.clone();
    }
    notes.extend(scratch);
    let rows = Box::new(super::ahead::ReadAhead::new(
        file_name.clone(),
        Box::new(rows),
    ));
    let sheet = Sheet::shaped(
        file_name, sheet, kind, headers, header_row, rows, notes, mapping,
    )?;
    Ok((sheet, reading))
}

/// How a CSV's bytes are read, for the checks its cells need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadAs {
    Utf8,
    /// UTF-8 with stray bytes of another encoding: a cell holding them is an error.
    MixedUtf8,
    /// A cell holding a byte 1252 leaves undefined is an error.
    Windows1252,
}

struct CsvRows {
    read_as: ReadAs,
    file: Arc<str>,
    sheet: Arc<str>,
    csv: csv::Reader<LineTracker<Box<dyn Read + Send>>>,
    record: csv::ByteRecord,
    /// Line breaks before the current record.
    lines_before: u64,
    /// Line breaks inside quoted cells so far: Excel shows such a record as one row.
    embedded_newlines: u64,
}

impl Rows for CsvRows {
    fn next_row(
        &mut self,
        buf: &mut RowBuf,
        notes: &mut Vec<Finding>,
    ) -> Result<Option<u32>, IntakeError> {
        buf.clear();
        let more = self
            .csv
            .read_byte_record(&mut self.record)
            .map_err(|e| IntakeError::Io {
                path: self.file.to_string().into(),
                source: io::Error::other(e.to_string()),
            })?;
        if !more {
            return Ok(None);
        }
        let start = self.record.position().map_or(0, |p| p.byte());
        let q = &mut self.csv.get_mut().breaks;
        while q.front().is_some_and(|&b| b <= start) {
            q.pop_front();
            self.lines_before += 1;
        }
        let row = (self.lines_before - self.embedded_newlines + 1) as u32;
        let bytes = self.record.as_slice();
        self.embedded_newlines += memchr_count(b'\n', bytes);
        // The usual case: the record is UTF-8 as a whole and each field ends on a character
        // boundary (a character split by a delimiter would not; then each field is read on
        // its own). The fields lie end to end in the record, so their ends are running sums.
        let whole = match std::str::from_utf8(bytes) {
            Ok(text) => {
                let mut end = 0;
                buf.set(
                    text,
                    self.record.iter().map(|f| {
                        end += f.len();
                        end
                    }),
                );
                buf.ends_on_char_boundaries()
            }
            Err(_) => false,
        };
        if !whole {
            buf.clear();
            for (i, field) in self.record.iter().enumerate() {
                let text = String::from_utf8_lossy(field);
                if matches!(text, std::borrow::Cow::Owned(_)) {
                    let bad = stray_bytes(field);
                    let message = match self.read_as {
                        ReadAs::MixedUtf8 => format!(
                            "the cell is not valid UTF-8 text (it holds {bad}) in a file that is otherwise UTF-8 (a line from another system pasted in?): correct the cell and save the file again as \"CSV UTF-8\""
                        ),
                        ReadAs::Utf8 | ReadAs::Windows1252 => format!(
                            "the cell is not valid UTF-8 text (it holds {bad}) although the file began as UTF-8: save the file again as \"CSV UTF-8\""
                        ),
                    };
                    notes.push(self.cell_error(row, i, text.to_string(), message));
                }
                buf.push(&text);
            }
        } else if self.read_as == ReadAs::Windows1252 && memchr::memchr(0xC2, bytes).is_some() {
            // The decoder turned each undefined byte into the control character of its number.
            for (i, field) in self.record.iter().enumerate() {
                let text = String::from_utf8_lossy(field);
                let undefined: Vec<String> = text
                    .chars()
                    .filter(|&c| UNDEFINED_1252.iter().any(|&b| u32::from(b) == c as u32))
                    .map(|c| format!("{:02X}", c as u32))
                    .collect();
                if !undefined.is_empty() {
                    let message = format!(
                        "the cell holds the byte{} {}, which Windows-1252 leaves undefined, and the file is not UTF-8 either: save it again as \"CSV UTF-8\"",
                        if undefined.len() == 1 { "" } else { "s" },
                        undefined.join(" ")
                    );
                    notes.push(self.cell_error(row, i, text.to_string(), message));
                }
            }
        }
        Ok(Some(row))
    }
}

impl CsvRows {
    fn cell_error(&self, row: u32, column: usize, value: String, message: String) -> Finding {
        Finding {
            severity: Severity::Error,
            file: self.file.clone(),
            sheet: self.sheet.clone(),
            row: Some(row),
            column: Some(column as u32),
            header: None,
            value,
            message,
        }
    }
}

/// The bytes of `field` that are not part of valid UTF-8, in hex: "the byte E9" or "the bytes
/// E9 A0".
fn stray_bytes(field: &[u8]) -> String {
    let mut bad = Vec::new();
    let mut rest = field;
    while let Err(e) = std::str::from_utf8(rest) {
        let n = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
        for b in &rest[e.valid_up_to()..e.valid_up_to() + n] {
            bad.push(format!("{b:02X}"));
        }
        rest = &rest[e.valid_up_to() + n..];
    }
    format!(
        "the byte{} {}",
        if bad.len() == 1 { "" } else { "s" },
        bad.join(" ")
    )
}

fn memchr_count(needle: u8, hay: &[u8]) -> u64 {
    memchr::memchr_iter(needle, hay).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_is_the_header_lines_most_used() {
        assert_eq!(detect_delimiter("a,b,c\n1;2;3"), b',');
        assert_eq!(detect_delimiter("a;b;c\n"), b';');
        assert_eq!(detect_delimiter("a\tb\tc"), b'\t');
        assert_eq!(
            detect_delimiter("\"a,x\";\"b\";c"),
            b';',
            "commas inside quotes do not count"
        );
        assert_eq!(detect_delimiter("single"), b',');
    }

    #[test]
    fn decoding_reader_turns_1252_into_utf8_across_chunk_edges() {
        let src: Vec<u8> = std::iter::repeat_n(b"caf\xe9 \x80 ".as_slice(), 50_000)
            .flatten()
            .copied()
            .collect();
        let mut out = String::new();
        Decoding::new(&src[..], WINDOWS_1252)
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "café € ".repeat(50_000));
    }

    #[test]
    fn line_tracker_folds_crlf_even_across_reads() {
        struct Drip(Vec<u8>, usize);
        impl Read for Drip {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = (self.0.len() - self.1).min(3).min(buf.len());
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut t = LineTracker {
            inner: Drip(b"ab\r\n\r\ncd\re\r".to_vec(), 0),
            offset: 0,
            held_cr: false,
            breaks: VecDeque::new(),
        };
        let mut out = Vec::new();
        t.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab\n\ncd\re\r");
        assert_eq!(t.breaks.iter().copied().collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn decoding_reader_can_be_read_again_after_the_end() {
        // Found by tests/reader_props.rs: the csv reader reads once more after EOF, and
        // encoding_rs panics if a finished decoder is used again.
        let mut r = Decoding::new(&b"caf\xe9"[..], WINDOWS_1252);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0);
    }

    #[test]
    fn a_scan_tells_utf8_from_stray_bytes() {
        let utf8 = "José Álvarez".as_bytes();
        assert_eq!(Scan::of(utf8, true).0.encoding(), encoding_rs::UTF_8);
        assert_eq!(
            Scan::of(&utf8[..4], false),
            (Scan::default(), 1),
            "a sample may end mid-character"
        );
        assert!(Scan::of(&utf8[..4], true).0.invalid, "a whole file may not");
        let cp1252 = b"Jos\xe9 \xc1lvarez";
        assert_eq!(Scan::of(cp1252, true).0.encoding(), WINDOWS_1252);
        let mixed = [utf8, b"; caf\xe9"].concat();
        let (scan, _) = Scan::of(&mixed, true);
        assert!(scan.invalid && scan.multibyte);
        assert_eq!(scan.encoding(), encoding_rs::UTF_8, "not read as 1252");
        assert_eq!(stray_bytes(b"caf\xe9 \xa0"), "the bytes E9 A0");
    }
}
