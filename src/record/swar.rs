//! Word-at-a-time byte scans for the short fields of a CDR line. A field
//! is a few to a few dozen bytes, where `memchr`'s vector set-up costs
//! more than the search; eight bytes a step, without leaving the loop, is
//! what splitting and escaping a line of 17 fields wants.
//!
//! The masks flag a byte's high bit. A borrow can flag a byte above a
//! true match, never below one, so the lowest flag is exact: that is all
//! the searches use.

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The word of `bytes[at..at + 8]`, its first byte lowest.
fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// Flags the bytes of `word` below `n` (n <= 128).
fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS
}

/// Flags the bytes of `word` equal to `byte`.
fn equal(word: u64, byte: u8) -> u64 {
    below(word ^ (ONES * u64::from(byte)), 1)
}

/// The first index at or after `from` whose byte is `a` or `b`.
pub fn find2(bytes: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let mut at = from;
    while at + 8 <= bytes.len() {
        let w = word(bytes, at);
        let found = equal(w, a) | equal(w, b);
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    (at..bytes.len()).find(|&i| bytes[i] == a || bytes[i] == b)
}

/// The first index at or after `from` whose byte is `a`.
pub fn find(bytes: &[u8], from: usize, a: u8) -> Option<usize> {
    find2(bytes, from, a, a)
}

/// Flags the bytes of `word` a JSON string must escape: `"`, `\`, control.
fn escapes(word: u64) -> u64 {
    below(word, 0x20) | equal(word, b'\\') | equal(word, b'"')
}

/// Whether a JSON string must escape `byte`.
fn needs_escape(byte: u8) -> bool {
    matches!(byte, b'"' | b'\\' | 0..=0x1f)
}

/// Whether `byte` ends a run [`find_special`] skips.
fn special(byte: u8) -> bool {
    byte == b',' || needs_escape(byte)
}

/// The first index at or after `from` whose byte is a CSV delimiter (`,`
/// or `"`) or one a JSON string must escape (`\`, a control byte); the
/// length of `bytes` if there is none. This scan is most of what the
/// one-pass JSON writer does, so on x86_64 it takes 16 bytes a step with
/// SSE2, which every x86_64 CPU has.
pub fn find_special(bytes: &[u8], from: usize) -> usize {
    // SAFETY: SSE2 is part of x86_64: every CPU this build runs on has it.
    #[cfg(target_arch = "x86_64")]
    let from = match unsafe { sse2::find_special(bytes, from) } {
        Ok(found) => return found,
        Err(rest) => rest,
    };
    let mut at = from;
    while at + 8 <= bytes.len() {
        let w = word(bytes, at);
        let found = escapes(w) | equal(w, b',');
        if found != 0 {
            return at + found.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    (at..bytes.len())
        .find(|&i| special(bytes[i]))
        .unwrap_or(bytes.len())
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// [`super::find_special`] over whole 16-byte blocks: the index
    /// found, or where the blocks end.
    #[target_feature(enable = "sse2")]
    pub fn find_special(bytes: &[u8], from: usize) -> Result<usize, usize> {
        let splat = |byte: u8| _mm_set1_epi8(byte as i8);
        let (comma, quote, backslash, control) =
            (splat(b','), splat(b'"'), splat(b'\\'), splat(0x1f));
        let mut at = from;
        while at + 16 <= bytes.len() {
            // SAFETY: the 16 bytes read are bytes[at..at + 16], in bounds;
            // the load takes any alignment.
            let v = unsafe { _mm_loadu_si128(bytes.as_ptr().add(at).cast()) };
            let delimiter = _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote));
            // A byte at most 0x1f is its own minimum with 0x1f.
            let escape = _mm_or_si128(
                _mm_cmpeq_epi8(v, backslash),
                _mm_cmpeq_epi8(_mm_min_epu8(v, control), v),
            );
            let found = _mm_movemask_epi8(_mm_or_si128(delimiter, escape));
            if found != 0 {
                return Ok(at + found.trailing_zeros() as usize);
            }
            at += 16;
        }
        Err(at)
    }
}

/// True if no byte of `text` needs a JSON escape (`"`, `\`, control).
pub fn json_plain(text: &[u8]) -> bool {
    let mut words = text.chunks_exact(8);
    let clean = words.by_ref().all(|chunk| {
        let w = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        escapes(w) == 0
    });
    clean && !words.remainder().iter().copied().any(needs_escape)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every place of a word and of a tail, against
    /// the byte-by-byte rule.
    #[test]
    fn scans_agree_with_the_byte_rules() {
        for byte in 0..=255u8 {
            for len in [8, 11, 16, 21, 32, 40] {
                for at in 0..len {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let first = |p: &dyn Fn(u8) -> bool| text.iter().position(|&b| p(b));
                    assert_eq!(
                        find2(&text, 0, b',', b'"'),
                        first(&|b| b == b',' || b == b'"')
                    );
                    assert_eq!(find(&text, 0, byte), first(&|b| b == byte));
                    let first_special = first(&|b| special(b)).unwrap_or(len);
                    assert_eq!(find_special(&text, 0), first_special, "{byte:#x} at {at}");
                    let control = byte < 0x20 || byte == b'\\';
                    assert_eq!(
                        json_plain(&text),
                        !(control || byte == b'"'),
                        "{byte:#x} at {at}"
                    );
                }
            }
        }
    }

    /// A borrow from a match never hides the first match, even with a
    /// second candidate right after it.
    #[test]
    fn the_first_of_several_matches_is_found() {
        assert_eq!(find2(b"ab,\",cdefgh", 0, b',', b'"'), Some(2));
        assert_eq!(find2(b"abcdefg\x01,", 0, b',', 0x01), Some(7));
        assert_eq!(find(b"\"\"\"\"\"\"\"\"\"", 3, b'"'), Some(3));
        assert_eq!(find(b"abcdefghijk", 0, b'"'), None);
        assert_eq!(find(b"abc", 3, b'"'), None);
    }
}
