//! Natural keys (a Ref, a company name, an email within a customer, a number…) as 64-bit
//! hashes of their case-folded text, and the table that cross-row checks keep them in.
//!
//! A million Customers rows must not keep a million strings, so only hashes are kept. Two
//! different keys share a hash with odds of about one in 10^7 for a job of a million rows,
//! which would show as a false "also on row N" that names the other row.
//!
//! The table is an open-addressing one rather than a `HashMap` for one reason: a key can be
//! prefetched. A large file's keys land at random places in a table of tens of megabytes, so
//! each lookup is a cache miss; announcing the row's keys before its cells are checked lets the
//! memory fetch overlap the checks. Without that, the two lookups of a Customers row took as
//! long as everything else the validator does for it.

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

/// A map from keys to small values, with linear probing. Keys are already well-mixed hashes,
/// so their low bits pick the slot. The key 0 marks an empty slot; a real key of 0 is stored
/// as 1, which merges two keys with odds of 2^-64.
#[derive(Debug, Clone)]
pub struct KeyTable<V> {
    slots: Vec<(Key, V)>,
    len: usize,
}

impl<V: Copy + Default> Default for KeyTable<V> {
    fn default() -> Self {
        KeyTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

/// What [`KeyTable::insert_or_get`] found.
pub enum Slot<'a, V> {
    /// The key was new; it now holds the value given.
    Inserted,
    /// The key was there already, with this value.
    Found(&'a mut V),
}

impl<V: Copy + Default> KeyTable<V> {
    fn stored(k: Key) -> Key {
        if k == 0 {
            1
        } else {
            k
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Makes room for `n` keys in all without growing again on the way.
    pub fn reserve(&mut self, n: usize) {
        let want = (n.max(self.len) * 4 / 3 + 1).next_power_of_two().max(16);
        if want > self.slots.len() {
            self.rebuild(want);
        }
    }

    fn rebuild(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![(0, V::default()); size]);
        let mask = self.mask();
        for (k, v) in old.into_iter().filter(|(k, _)| *k != 0) {
            let mut i = k as usize & mask;
            while self.slots[i].0 != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (k, v);
        }
    }

    /// Asks the processor to start fetching the slot where `k` would be, so that a lookup a
    /// little later finds it in the cache.
    #[inline]
    pub fn prefetch(&self, k: Key) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[Self::stored(k) as usize & self.mask()];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults and changes no memory; the pointer
        // is to a live element besides.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(slot as *const (Key, V) as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    pub fn get(&self, k: Key) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let k = Self::stored(k);
        let mask = self.mask();
        let mut i = k as usize & mask;
        loop {
            match self.slots[i].0 {
                0 => return None,
                s if s == k => return Some(&self.slots[i].1),
                _ => i = (i + 1) & mask,
            }
        }
    }

    pub fn contains(&self, k: Key) -> bool {
        self.get(k).is_some()
    }

    /// Stores `value` under `k` unless `k` is there already; then hands out its value.
    pub fn insert_or_get(&mut self, k: Key, value: V) -> Slot<'_, V> {
        // At most three quarters full, so that probe runs stay short.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.rebuild((self.slots.len() * 2).max(16));
        }
        let k = Self::stored(k);
        let mask = self.mask();
        let mut i = k as usize & mask;
        loop {
            match self.slots[i].0 {
                0 => {
                    self.slots[i] = (k, value);
                    self.len += 1;
                    return Slot::Inserted;
                }
                s if s == k => return Slot::Found(&mut self.slots[i].1),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Stores `k` with a default value; true when it was new.
    pub fn insert(&mut self, k: Key) -> bool {
        matches!(self.insert_or_get(k, V::default()), Slot::Inserted)
    }
}

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
    fn a_million_refs_are_a_million_keys_and_each_is_found() {
        let mut t = KeyTable::<u32>::default();
        for i in 0..1_000_000u32 {
            let k = key(&[&format!("C{i:07}")]);
            t.prefetch(k);
            assert!(matches!(t.insert_or_get(k, i), Slot::Inserted), "C{i:07}");
        }
        assert_eq!(t.len(), 1_000_000);
        for i in (0..1_000_000u32).step_by(997) {
            assert_eq!(t.get(key(&[&format!("c{i:07}")])), Some(&i));
        }
        assert!(!t.contains(key(&["C1000000"])));
    }

    #[test]
    fn the_table_finds_what_it_holds_across_growth_and_collisions() {
        let mut t = KeyTable::<u32>::default();
        assert_eq!(t.get(5), None);
        // Keys sharing their low bits all probe from one slot; 0 is a key like any other.
        let keys: Vec<Key> = (0..200u64).map(|i| i << 40).collect();
        for (n, &k) in keys.iter().enumerate() {
            assert!(matches!(t.insert_or_get(k, n as u32), Slot::Inserted));
        }
        for (n, &k) in keys.iter().enumerate() {
            match t.insert_or_get(k, 999) {
                Slot::Found(v) => assert_eq!(*v, n as u32),
                Slot::Inserted => panic!("{k} was lost"),
            }
        }
        t.reserve(10_000);
        assert_eq!(t.len(), 200);
        assert!(keys.iter().all(|&k| t.contains(k)));
        assert!(!t.contains(7));
        assert!(t.insert(7) && !t.insert(7));
    }
}
