//! The digest of an input file: what a job records of its input, so that a resume, or a run of
//! the same file, can tell whether the file is still the one whose rows the journal holds.
//!
//! A run takes it from the very bytes intake parses, as they are read ([`Hashing`] for a CSV's
//! stream, the bytes in memory for a workbook): a digest taken by reading the file a second
//! time would name whatever was on disk by then, and a file replaced between the two reads
//! left a journal holding the old file's rows under the new file's digest, which a run of the
//! new file then resumed. A resume's check reads the file on disk ([`of_file`]), which is what
//! it means to ask. Not a security measure: a fast 64-bit digest is enough to notice an edit,
//! and reading 150 MB must not take seconds. Its values are the ones journals already hold.

use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A file's size and digest, as a job records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileDigest {
    pub size: u64,
    pub hash: u64,
}

/// The size and digest of the file at `path` as it is now, read a megabyte at a time: a large
/// input is never held whole in memory for this.
pub fn of_file(path: &Path) -> io::Result<FileDigest> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut d = Digest::new(size);
    // A multiple of eight, so that words never straddle two reads but at the very end.
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        // Fill the buffer completely unless the file ends: a short read mid-file would put
        // the next word across two reads.
        let mut n = 0;
        while n < buf.len() {
            match file.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        read += n as u64;
        if n < buf.len() {
            d.finish_with(&buf[..n]);
            break;
        }
        d.words(&buf);
    }
    if read != size {
        return Err(changed(size, read));
    }
    Ok(FileDigest { size, hash: d.h })
}

/// The digest of bytes held whole, as [`of_file`] gives it for a file holding them.
pub fn of_bytes(bytes: &[u8]) -> FileDigest {
    let mut d = Digest::new(bytes.len() as u64);
    d.finish_with(bytes);
    FileDigest {
        size: bytes.len() as u64,
        hash: d.h,
    }
}

fn changed(size: u64, read: u64) -> io::Error {
    io::Error::other(format!(
        "the file changed while it was being read (it was {size} bytes when opened, and {read} were read); run the command again once nothing is writing to it"
    ))
}

/// Where one file's digest is, while its bytes are being read: on the thread that parses
/// it, possibly not the one that asks.
#[derive(Debug, Clone)]
pub struct Reading(Arc<Mutex<State>>);

#[derive(Debug)]
enum State {
    Reading,
    Done(FileDigest),
    Failed(String),
}

impl Reading {
    fn new(state: State) -> Reading {
        Reading(Arc::new(Mutex::new(state)))
    }

    /// A file read whole into memory: its digest is known at once.
    pub fn of(bytes: &[u8], size_when_opened: u64) -> Reading {
        let read = bytes.len() as u64;
        Reading::new(if read == size_when_opened {
            State::Done(of_bytes(bytes))
        } else {
            State::Failed(changed(size_when_opened, read).to_string())
        })
    }

    fn set(&self, state: State) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// The digest of every byte read, once the file has been read to its end; else why not.
    pub fn result(&self) -> Result<FileDigest, String> {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Done(d) => Ok(*d),
            State::Failed(why) => Err(why.clone()),
            State::Reading => Err("it was not read to its end".into()),
        }
    }
}

/// A reader that digests the bytes passing through it, from a file's first byte to its last,
/// and says the digest at the end through its [`Reading`].
pub struct Hashing<R> {
    inner: R,
    digest: Digest,
    /// Bytes of a word not yet whole: reads come in any length, the digest takes words.
    carry: [u8; 8],
    carried: usize,
    /// The file's size when it was opened, which the digest starts from.
    size: u64,
    read: u64,
    out: Reading,
    ended: bool,
}

impl<R: Read> Hashing<R> {
    /// Digests `inner`, which must yield the whole file, `size` bytes as it was when opened.
    pub fn new(inner: R, size: u64) -> (Hashing<R>, Reading) {
        let out = Reading::new(State::Reading);
        let h = Hashing {
            inner,
            digest: Digest::new(size),
            carry: [0; 8],
            carried: 0,
            size,
            read: 0,
            out: out.clone(),
            ended: false,
        };
        (h, out)
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        self.read += bytes.len() as u64;
        if self.carried > 0 {
            let take = (8 - self.carried).min(bytes.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&bytes[..take]);
            self.carried += take;
            bytes = &bytes[take..];
            if self.carried < 8 {
                return;
            }
            self.digest.words(&self.carry);
            self.carried = 0;
        }
        let whole = bytes.len() / 8 * 8;
        self.digest.words(&bytes[..whole]);
        let rest = &bytes[whole..];
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carried = rest.len();
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.out.set(State::Failed(e.to_string()));
                return Err(e);
            }
        };
        if n > 0 {
            self.feed(&buf[..n]);
        } else if !buf.is_empty() && !self.ended {
            self.ended = true;
            let carried = self.carried;
            self.digest.finish_with(&self.carry[..carried]);
            self.out.set(if self.read == self.size {
                State::Done(FileDigest {
                    size: self.size,
                    hash: self.digest.h,
                })
            } else {
                State::Failed(changed(self.size, self.read).to_string())
            });
        }
        Ok(n)
    }
}

/// A 64-bit digest, eight bytes at a time.
struct Digest {
    h: u64,
}

impl Digest {
    fn new(len: u64) -> Digest {
        Digest {
            h: 0x9e37_79b9_7f4a_7c15 ^ len,
        }
    }

    /// Whole words only: `bytes` is a multiple of eight long.
    fn words(&mut self, bytes: &[u8]) {
        for ch in bytes.chunks_exact(8) {
            let w = u64::from_le_bytes(ch.try_into().expect("eight bytes"));
            self.h = (self.h ^ w)
                .wrapping_mul(0xff51_afd7_ed55_8ccd)
                .rotate_left(29);
        }
    }

    fn finish_with(&mut self, bytes: &[u8]) {
        let whole = bytes.len() / 8 * 8;
        self.words(&bytes[..whole]);
        let mut h = self.h;
        for &b in &bytes[whole..] {
            h = (h ^ b as u64).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        self.h = h ^ (h >> 33);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(bytes: &[u8]) -> u64 {
        of_bytes(bytes).hash
    }

    /// Sizes around the read buffer's, and odd ones.
    const SIZES: [usize; 8] = [
        0,
        7,
        8,
        4099,
        (1 << 20) - 3,
        1 << 20,
        (1 << 20) + 13,
        3 << 20,
    ];

    fn bytes_of(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_file_is_digested_in_pieces_as_it_would_be_whole() {
        let dir = tempfile::tempdir().unwrap();
        for size in SIZES {
            let bytes = bytes_of(size);
            let path = dir.path().join(format!("f{size}"));
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(
                of_file(&path).unwrap(),
                FileDigest {
                    size: size as u64,
                    hash: digest(&bytes)
                },
                "{size}"
            );
        }
    }

    /// A reader handing out bytes in uneven pieces, as a decoder or a CSV reader asks for them.
    struct Uneven<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Uneven<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.step = self.step % 13 + 1;
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn bytes_digested_as_they_stream_past_are_digested_as_whole() {
        for size in SIZES {
            let bytes = bytes_of(size);
            let (mut h, reading) = Hashing::new(
                Uneven {
                    bytes: &bytes,
                    step: 0,
                },
                size as u64,
            );
            assert!(reading.result().is_err(), "not yet read to its end");
            let mut copy = Vec::new();
            h.read_to_end(&mut copy).unwrap();
            assert_eq!(copy, bytes);
            assert_eq!(reading.result(), Ok(of_bytes(&bytes)), "{size}");
        }
    }

    #[test]
    fn a_file_that_grew_while_it_was_read_has_no_digest() {
        let bytes = bytes_of(100);
        let (mut h, reading) = Hashing::new(&bytes[..], 90);
        std::io::copy(&mut h, &mut std::io::sink()).unwrap();
        let why = reading.result().unwrap_err();
        assert!(why.contains("changed while it was being read"), "{why}");
        assert!(Reading::of(&bytes, 90).result().is_err());
        assert_eq!(Reading::of(&bytes, 100).result(), Ok(of_bytes(&bytes)));
    }

    #[test]
    fn the_digest_is_the_one_journals_already_hold() {
        // Values of the whole-file digest journals were written with: a resume compares them.
        assert_eq!(
            digest(b"Action,Ref,Company Name\nadd,C1,Acme Ltd\n"),
            0x012b_e1e8_ce69_b8ae
        );
        assert_eq!(digest(b""), 0x9341_ca26_3702_a9e6);
    }

    #[test]
    fn the_digest_sees_one_byte_changed() {
        let a = b"Company Name\nAcme\n".to_vec();
        let mut b = a.clone();
        b[14] = b'a';
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a), digest(&a.clone()));
    }
}
