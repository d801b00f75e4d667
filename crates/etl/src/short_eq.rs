//! Equality of two short byte strings, inline.
//!
//! Written by hand because of where both bases compare: what precedes each value (base a)
//! or each key (base b) with the same place in the previous record, and (base b) each counted
//! value with its group's.
//! `==` on slices calls libc's `memcmp`, whose call and size dispatch cost more than comparing
//! a 10-byte key; in `perf`, those calls were a tenth of base b's run. This compares 8-byte
//! words in place (the last one overlapping), and bytes below 8.

/// `a == b`.
#[inline]
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// Whether `rest` starts with `key` as a JSON string: `"`, `key`, `"`. For a key known to hold
/// no `"` and no escape, this is that key's string exactly, found without scanning for its
/// closing quote (base b's line reader predicts a line's keys from the last line's).
#[inline]
pub fn starts_with_quoted(rest: &[u8], key: &[u8]) -> bool {
    let n = key.len();
    rest.len() > n + 1 && rest[0] == b'"' && rest[n + 1] == b'"' && short_eq(&rest[1..n + 1], key)
}

#[cfg(test)]
mod tests {
    use super::{short_eq, starts_with_quoted};

    #[test]
    fn a_quoted_key_is_its_whole_string() {
        assert!(starts_with_quoted(br#""uuid": 1"#, b"uuid"));
        assert!(!starts_with_quoted(br#""uuidx": 1"#, b"uuid"));
        assert!(!starts_with_quoted(br#""uui": 1"#, b"uuid"));
        assert!(!starts_with_quoted(br#"uuid": 1"#, b"uuid"));
        assert!(
            !starts_with_quoted(br#""uuid"#, b"uuid"),
            "cut before the closing quote"
        );
        assert!(starts_with_quoted(br#""": 1"#, b""));
    }

    #[test]
    fn agrees_with_slice_equality_at_every_length_and_difference() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(short_eq(a, a), "length {n}");
            for at in 0..n {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!short_eq(a, &b), "length {n}, differing at {at}");
            }
            if n > 0 {
                assert!(!short_eq(a, &base[..n - 1]), "lengths {n} and {}", n - 1);
            }
        }
    }
}
