//! Natural keys (a Ref, a company name, an email within a customer, a number…) as 64-bit
//! hashes of their case-folded text, and what cross-row checks keep them in.
//!
//! A million Customers rows must not keep a million strings, so only hashes are kept. Two
//! different keys share a hash with odds of about one in 10^7 for a job of a million rows,
//! which would show as a false "also on row N" that names the other row.
//!
//! Keys that must not repeat go into a [`KeyLog`]: every key in the order seen, plus a small
//! filter that answers at once whether a key may have been seen before. Only those rows (the
//! real repeats, and the filter's false alarms: under 4% of new keys, as its test checks) are
//! remembered in full, and settled in one pass over the log at the end. The obvious
//! alternative, a hash table of every key, puts each row's lookups at random places in tens of
//! megabytes (32 MB and 48 MB for a million Refs and names): on this project's 2-core machine
//! that was a cache and TLB miss per lookup and, for a Customers file, half of the validator's
//! time even with the slots prefetched. The filter takes 2 MB for a million keys.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::intake::trim;

pub type Key = u64;

/// Hashes the parts of a key, folding case, each part trimmed.
pub fn key(parts: &[&str]) -> Key {
    let mut h: u64 = 0;
    for part in parts {
        let part = trim(part);
        let folded = if part.is_ascii() {
            fold_hash(part.as_bytes())
        } else {
            // Unicode case folding can turn a non-ASCII letter into an ASCII one (the Kelvin
            // sign into k), so the folded text is hashed exactly as ASCII text would be.
            fold_hash(part.to_lowercase().as_bytes())
        };
        h = pair(h, folded);
    }
    h
}

/// A key made of a key and another: a user's email within their customer, say.
pub fn pair(a: Key, b: Key) -> Key {
    let mut h = a ^ b.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// A 64-bit hash of `bytes` with ASCII letters folded to lower case, eight bytes at a time.
fn fold_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64 + 1).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        h = mix(h ^ fold_ascii(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ fold_ascii(u64::from_le_bytes(last)));
    }
    h
}

/// Lower-cases the ASCII capitals among eight bytes at once, leaving every other byte alone.
#[inline]
fn fold_ascii(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // The high bit of each byte comes out set where the byte is at least 'A', and where it is
    // past 'Z'; no sum carries into the next byte.
    let at_least_a = low7 + 0x3f3f_3f3f_3f3f_3f3f;
    let past_z = low7 + 0x2525_2525_2525_2525;
    let upper = at_least_a & !past_z & !w & HIGH;
    w | (upper >> 2)
}

/// A strong 64-bit mixer (the finaliser of SplitMix64): every input bit reaches every output bit.
#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Every key recorded with a value (where it was), in order, and a filter over them.
#[derive(Debug, Clone)]
pub struct KeyLog<V> {
    log: Vec<(Key, V)>,
    /// A blocked Bloom filter: two bits per key, both in one 64-byte block, at most one bit
    /// in sixteen set, so a new key is taken for a possible repeat about 2% of the time.
    filter: Vec<u64>,
}

impl<V> Default for KeyLog<V> {
    fn default() -> Self {
        KeyLog {
            log: Vec::new(),
            filter: Vec::new(),
        }
    }
}

const BLOCK_WORDS: usize = 8;
/// Filter bits per key recorded, at most.
const BITS_PER_KEY: usize = 16;

impl<V: Copy> KeyLog<V> {
    fn refilter(&mut self, keys: usize) {
        let words = (keys * BITS_PER_KEY / 64)
            .next_power_of_two()
            .max(BLOCK_WORDS * 8);
        self.filter = vec![0; words];
        for i in 0..self.log.len() {
            let k = self.log[i].0;
            self.mark(k);
        }
    }

    /// Where the key's 64-byte block of the filter starts, as a word index.
    fn block(&self, k: Key) -> usize {
        let blocks = self.filter.len() / BLOCK_WORDS;
        ((k >> 32) as usize & (blocks - 1)) * BLOCK_WORDS
    }

    /// Asks the processor to start fetching the key's block of the filter, so that recording
    /// the key a little later finds it in the cache.
    #[inline]
    pub fn prefetch(&self, k: Key) {
        if self.filter.is_empty() {
            return;
        }
        let block = &self.filter[self.block(k)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults and changes no memory; the pointer
        // is to a live element besides.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(block as *const u64 as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = block;
    }

    /// Sets the key's two bits; true when both were set already.
    #[inline]
    fn mark(&mut self, k: Key) -> bool {
        let block = self.block(k);
        let (a, b) = (k as usize & 511, (k >> 9) as usize & 511);
        let (wa, ba) = (block + a / 64, 1u64 << (a % 64));
        let (wb, bb) = (block + b / 64, 1u64 << (b % 64));
        let seen = self.filter[wa] & ba != 0 && self.filter[wb] & bb != 0;
        self.filter[wa] |= ba;
        self.filter[wb] |= bb;
        seen
    }

    /// Records `k` with `value`. Returns the key's place in the log, and whether it may have
    /// been recorded before (false means it certainly was not).
    pub fn record(&mut self, k: Key, value: V) -> (usize, bool) {
        if self.filter.len() * 64 < (self.log.len() + 1) * BITS_PER_KEY {
            self.refilter((self.log.len() + 1) * 2);
        }
        let maybe = self.mark(k);
        self.log.push((k, value));
        (self.log.len() - 1, maybe)
    }

    /// For each key in `wanted` that the log holds: its first place in the log, the value
    /// recorded there, and how many times it was recorded. One pass over the log.
    pub fn firsts(&self, wanted: &KeySet) -> KeyMap<First<V>> {
        let mut out = KeyMap::default();
        if wanted.is_empty() {
            return out;
        }
        for (at, &(k, value)) in self.log.iter().enumerate() {
            if wanted.contains(&k) {
                out.entry(k)
                    .and_modify(|f: &mut First<V>| f.count += 1)
                    .or_insert(First {
                        at,
                        value,
                        count: 1,
                    });
            }
        }
        out
    }
}

/// What [`KeyLog::firsts`] tells of a key.
#[derive(Debug, Clone, Copy)]
pub struct First<V> {
    pub at: usize,
    pub value: V,
    pub count: u32,
}

/// Keys are hashes already: the std maps use them as they are.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map and a set of keys, for the small sets a job has (its customer references, its
/// orders, the keys being settled at the end).
pub type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;
pub type KeySet = HashSet<Key, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_case_and_trim_and_keep_parts_apart() {
        assert_eq!(key(&["Acme Plumbing Ltd"]), key(&[" ACME plumbing LTD "]));
        assert_eq!(key(&["École Ünïon"]), key(&["école ÜNÏON"]));
        // U+212A KELVIN SIGN folds to an ASCII k.
        assert_eq!(key(&["\u{212a}elvin"]), key(&["kelvin"]));
        assert_ne!(key(&["Acme"]), key(&["Acme Ltd"]));
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_ne!(key(&["a", "b"]), key(&["b", "a"]));
        assert_ne!(key(&["", "a"]), key(&["a"]));
        assert_ne!(key(&["a", ""]), key(&["a"]));
        assert_ne!(key(&["12345678"]), key(&["123456789"]));
        assert_ne!(key(&["1234567"]), key(&["1234567\0"]));
    }

    #[test]
    fn folding_touches_only_ascii_capitals() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'Q', 0xc3, b'@', b'[', b'`', b'{', b'Z']);
            let got = fold_ascii(w).to_le_bytes();
            assert_eq!(got[0], b.to_ascii_lowercase(), "byte {b:#x}");
            assert_eq!(&got[1..], &[b'q', 0xc3, b'@', b'[', b'`', b'{', b'z']);
        }
    }

    #[test]
    fn a_million_distinct_refs_are_a_million_keys() {
        let mut seen = KeySet::default();
        for i in 0..1_000_000 {
            assert!(seen.insert(key(&[&format!("C{i:07}")])), "C{i:07}");
        }
    }

    #[test]
    fn a_log_flags_every_repeat_and_few_new_keys() {
        let mut log = KeyLog::<u32>::default();
        let n = 200_000u32;
        let mut flagged = 0;
        for i in 0..n {
            let (at, maybe) = log.record(key(&[&format!("user{i}@example.com")]), i);
            assert_eq!(at, i as usize);
            flagged += u32::from(maybe);
        }
        // Two bits of sixteen per key: about 2% false alarms, growth included.
        assert!(flagged < n / 25, "{flagged} of {n} new keys flagged");
        for i in (0..n).step_by(1000) {
            let (_, maybe) = log.record(key(&[&format!("USER{i}@example.com")]), n + i);
            assert!(maybe, "a repeat of user{i} was not flagged");
        }
        let mut wanted = KeySet::default();
        wanted.insert(key(&["user5000@example.com"]));
        wanted.insert(key(&["nobody@example.com"]));
        let firsts = log.firsts(&wanted);
        let f = firsts[&key(&["user5000@example.com"])];
        assert_eq!((f.at, f.value, f.count), (5000, 5000, 2));
        assert!(!firsts.contains_key(&key(&["nobody@example.com"])));
        // Growing rebuilt the filter several times on the way; it must still know every key.
        let (_, maybe) = log.record(key(&["user7@example.com"]), 0);
        assert!(maybe, "the filter forgot a key when it grew");
    }
}
