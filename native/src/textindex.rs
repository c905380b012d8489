//! Trigram summaries of free text, so `logpipe search` can skip row blocks that cannot hold a
//! needle (see logpipe/archive/textindex.py, which reads them and holds the same rules).
//!
//! Free text matches by DuckDB's `ILIKE`: `lower(text)` contains `lower(needle)`, where `lower`
//! maps each code point to one code point. A summary keeps, per code point, one unit:
//! ASCII lower-cased; U+0130 (İ) and U+212A (Kelvin K), the only non-ASCII code points `lower`
//! maps to ASCII, as `i` and `k`; every other non-ASCII code point as one `PLACEHOLDER`. Units
//! are a function of `lower(c)`, so a substring of `lower(text)` is a substring of the units:
//! every trigram of the needle's units is a trigram of the text's, or the text cannot match.
//! Trigrams never span two values (rows, fields): a needle across a boundary matches neither.

pub const PLACEHOLDER: u8 = 0x80;
pub const MAX_LOG2: u32 = 17;
pub const MIN_LOG2: u32 = 10;
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The bloom bit of a trigram key in a filter of `2^log2_bits` bits (Fibonacci hashing: the top
/// bits of the product, so halving a filter ORs neighbouring bits; see `Trigrams::finish`).
pub fn bloom_bit(key: u32, log2_bits: u32) -> usize {
    ((u64::from(key) | 1 << 32).wrapping_mul(MULTIPLIER) >> (64 - log2_bits)) as usize
}

/// A one-hash bloom filter of trigram keys, built at 2^17 bits and halved at the end while it
/// is sparse. While building, a bit is a byte (128 KiB): setting one is a store, not a
/// read-modify-write, which is most of the speed of `add`.
pub struct Trigrams {
    marks: Vec<u8>,
}

impl Default for Trigrams {
    fn default() -> Self {
        Self::new()
    }
}

/// The units of `text` in order (see the module's comment).
fn unit_at(text: &[u8], i: usize) -> Option<u8> {
    let b = text[i];
    if b < 0x80 {
        Some(b.to_ascii_lowercase())
    } else if b < 0xC0 {
        None // a continuation byte: its code point already made its unit
    } else if text[i..].starts_with(&[0xC4, 0xB0]) {
        Some(b'i')
    } else if text[i..].starts_with(&[0xE2, 0x84, 0xAA]) {
        Some(b'k')
    } else {
        Some(PLACEHOLDER)
    }
}

impl Trigrams {
    pub fn new() -> Self {
        Self { marks: vec![0; 1 << MAX_LOG2] }
    }

    /// Adds the trigrams of one value (valid UTF-8; other bytes only add trigrams).
    pub fn add(&mut self, text: &[u8]) {
        if text.is_ascii() {
            self.add_ascii(text);
            return;
        }
        let mut key: u32 = 0;
        let mut units = 0u32;
        for i in 0..text.len() {
            let Some(unit) = unit_at(text, i) else { continue };
            key = ((key << 8) | u32::from(unit)) & 0xFF_FFFF;
            units += 1;
            if units >= 3 {
                self.set(key);
            }
        }
    }

    /// The common case, without the code point decoding: one unit a byte.
    fn add_ascii(&mut self, text: &[u8]) {
        if text.len() < 3 {
            return;
        }
        let mut key = u32::from(text[0].to_ascii_lowercase()) << 8 | u32::from(text[1].to_ascii_lowercase());
        for &b in &text[2..] {
            key = ((key << 8) | u32::from(b.to_ascii_lowercase())) & 0xFF_FFFF;
            self.set(key);
        }
    }

    #[inline]
    fn set(&mut self, key: u32) {
        self.marks[bloom_bit(key, MAX_LOG2)] = 1;
    }

    /// (log2 of the size, the filter as bytes, bits set): halved while under a sixteenth full,
    /// so about a sixteenth to an eighth of its bits are set, and at least 2^10 bits.
    pub fn finish(&self) -> (u32, Vec<u8>, usize) {
        let mut bits = vec![0u64; (1 << MAX_LOG2) / 64];
        for (i, &m) in self.marks.iter().enumerate() {
            bits[i >> 6] |= u64::from(m) << (i & 63);
        }
        let mut log2 = MAX_LOG2;
        let mut set: usize = bits.iter().map(|w| w.count_ones() as usize).sum();
        while log2 > MIN_LOG2 && set * 16 <= 1 << (log2 - 1) {
            let half = 1usize << (log2 - 1);
            let mut out = vec![0u64; half.div_ceil(64)];
            for j in 0..half {
                let (a, b) = (2 * j, 2 * j + 1);
                if (bits[a >> 6] >> (a & 63) | bits[b >> 6] >> (b & 63)) & 1 == 1 {
                    out[j >> 6] |= 1 << (j & 63);
                }
            }
            bits = out;
            log2 -= 1;
            set = bits.iter().map(|w| w.count_ones() as usize).sum();
        }
        let bytes = bits.iter().flat_map(|w| w.to_le_bytes()).take(1 << (log2 - 3)).collect();
        (log2, bytes, set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds(filter: &(u32, Vec<u8>, usize), units: [u8; 3]) -> bool {
        let key = u32::from(units[0]) << 16 | u32::from(units[1]) << 8 | u32::from(units[2]);
        let bit = bloom_bit(key, filter.0);
        filter.1[bit >> 3] >> (bit & 7) & 1 == 1
    }

    #[test]
    fn folds_ascii_and_the_two_code_points_lower_maps_to_ascii() {
        let mut t = Trigrams::new();
        t.add("AbC\u{212A}\u{130}é".as_bytes());
        let f = t.finish();
        assert!(holds(&f, *b"abc"));
        assert!(holds(&f, *b"bck"));
        assert!(holds(&f, *b"cki"));
        assert!(holds(&f, [b'k', b'i', PLACEHOLDER]));
        assert_eq!(f.2, 4);
    }

    #[test]
    fn values_do_not_join() {
        let mut t = Trigrams::new();
        t.add(b"ab");
        t.add(b"c");
        assert_eq!(t.finish().2, 0);
    }

    #[test]
    fn halving_keeps_every_key_and_a_sparse_filter_is_small() {
        let mut t = Trigrams::new();
        let text: Vec<u8> = (0..20_000u32).flat_map(|i| format!("w{i} ").into_bytes()).collect();
        t.add(&text);
        let f = t.finish();
        assert!(f.0 < MAX_LOG2 && f.0 > MIN_LOG2);
        assert_eq!(f.1.len(), 1 << (f.0 - 3));
        for w in text.windows(3) {
            assert!(holds(&f, [w[0], w[1], w[2]]));
        }
        let mut tiny = Trigrams::new();
        tiny.add(b"fox");
        assert_eq!(tiny.finish().0, MIN_LOG2);
    }
}
