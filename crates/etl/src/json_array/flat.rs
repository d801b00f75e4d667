//! The common record read without serde: one flat object whose values are strings without
//! escapes, numbers, `true`, `false` or `null`, with any JSON whitespace between tokens (the
//! exports are pretty-printed). Anything else (an escape or a control character in a string,
//! a nested value, a number or literal JSON does not allow, any other syntax, an object cut
//! by the end of the window) returns `None`, and the element is read by serde_json, which
//! also decides what is malformed and says where. So this only reads records that are valid
//! JSON, and reads them as serde_json does (`records_read_flat_are_read_as_serde_json_reads_them`).
//!
//! Written by hand because serde_json's general reader (its map access, raw values and
//! string scans) was a fifth of base a's CPU time (docs/BENCHMARKS.md), for records that
//! are nearly always flat. Base b reads its lines the same way (`site_events::line`).

use std::borrow::Cow;

use crate::record::{Name, Raw};
use crate::short_eq::short_eq;

/// What lies before each value of the last flat record, by position: the bytes from the end
/// of the value before (or from the `{`) to the start of this value, such as
/// `,\n    "SessionStartTime": `, and where its key is in them. Records of one export are
/// written alike, so each field is first matched whole against the gap at its position: one
/// comparison of about 25 bytes in place of skipping whitespace, matching the key, checking
/// the `:` and skipping whitespace again. Only gaps read flat are kept (whitespace, one `,`
/// after the first field, a key without escape or control character, a `:`), so a match is
/// exactly that syntax and that key.
#[derive(Default)]
pub(super) struct LastGaps(Vec<Gap>);

#[derive(Default)]
struct Gap {
    bytes: Vec<u8>,
    /// The key's text within `bytes` (without its quotes).
    key: (usize, usize),
}

impl LastGaps {
    /// The end of the gap and the key's place when `b[from..]` starts with the gap at `at`.
    #[inline]
    fn matched(&self, at: usize, b: &[u8], from: usize) -> Option<(usize, usize, usize)> {
        let gap = self.0.get(at)?;
        let end = from + gap.bytes.len();
        let found = b.get(from..end)?;
        short_eq(found, &gap.bytes).then_some((end, from + gap.key.0, from + gap.key.1))
    }

    fn set(&mut self, at: usize, bytes: &[u8], key: (usize, usize)) {
        if self.0.len() <= at {
            self.0.resize_with(at + 1, Gap::default);
        }
        let gap = &mut self.0[at];
        gap.bytes.clear();
        gap.bytes.extend_from_slice(bytes);
        gap.key = key;
    }
}

/// Reads the flat record at the start of `text` (a `{`) into `fields` (empty), and returns the
/// bytes it takes (through its `}`); `None` when it is not flat (see the module doc).
pub(super) fn read<'a>(
    text: &'a str,
    gaps: &mut LastGaps,
    fields: &mut Vec<(Name<'a>, Raw<'a>)>,
) -> Option<usize> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    // Where the gap before the next value starts: after the `{`, then after each value.
    let mut from = 1;
    loop {
        let at = fields.len();
        // A gap read the long way is remembered once its value has been read too: a record cut
        // by the end of the window could otherwise leave a gap cut short, which would then
        // match every later record and stop one value early.
        let mut learned = None;
        let (i, name) = match gaps.matched(at, b, from) {
            Some((i, key_start, key_end)) => (i, &text[key_start..key_end]),
            None => {
                let mut i = skip_ws(b, from);
                match (*b.get(i)?, at) {
                    (b'}', _) => return Some(i + 1),
                    (b',', 1..) => i = skip_ws(b, i + 1),
                    (_, 0) => {}
                    _ => return None,
                }
                let key_start = i + 1;
                let key_end = string_end(b, i)? - 1;
                i = skip_ws(b, key_end + 1);
                if *b.get(i)? != b':' {
                    return None;
                }
                i = skip_ws(b, i + 1);
                learned = Some((key_start - from, key_end - from));
                (i, &text[key_start..key_end])
            }
        };
        let end = match *b.get(i)? {
            b'"' => string_end(b, i)?,
            b't' if b[i..].starts_with(b"true") => i + 4,
            b'f' if b[i..].starts_with(b"false") => i + 5,
            b'n' if b[i..].starts_with(b"null") => i + 4,
            b'-' | b'0'..=b'9' => number_end(b, i)?,
            _ => return None,
        };
        if let Some(key) = learned {
            gaps.set(at, &b[from..i], key);
        }
        push(fields, (Cow::Borrowed(name), Raw::unescaped(&text[i..end])));
        from = end;
    }
}

/// `fields.push(field)`, written where it goes. `Vec::push` is not inlined here: the pair
/// went through the stack and the load reading it back stalled on the stores that wrote it,
/// a twentieth of base a's run in perf (`extend` did the same).
#[inline(always)]
fn push<'a>(fields: &mut Vec<(Name<'a>, Raw<'a>)>, field: (Name<'a>, Raw<'a>)) {
    if fields.len() == fields.capacity() {
        fields.reserve(8);
    }
    let len = fields.len();
    fields.spare_capacity_mut()[0].write(field);
    // SAFETY: the element at `len` was just initialized, and `len < capacity`.
    unsafe { fields.set_len(len + 1) };
}

/// Past the JSON whitespace at `b[i]`.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// Past the closing quote of the string at `b[i]` (a `"`); `None` when it holds an escape or
/// a control character, or is cut by the end of `b`.
///
/// Eight bytes at a time (SWAR): the lowest byte flagged by the three tests below is the first
/// `"`, `\` or control character, exactly (a borrow can only flag bytes above a true one).
/// Written by hand because strings are the bulk of the exports and most are shorter than a
/// `memchr` call is worth.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    if *b.get(i)? != b'"' {
        return None;
    }
    let mut j = i + 1;
    while let Some(chunk) = b.get(j..j + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let quote = zero_byte(w ^ (ONES * u64::from(b'"')));
        let backslash = zero_byte(w ^ (ONES * u64::from(b'\\')));
        let control = w.wrapping_sub(ONES * 0x20) & !w;
        let flagged = (quote | backslash | control) & HIGH;
        if flagged != 0 {
            let k = j + (flagged.trailing_zeros() / 8) as usize;
            return (b[k] == b'"').then_some(k + 1);
        }
        j += 8;
    }
    loop {
        match *b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' | 0..=0x1F => return None,
            _ => j += 1,
        }
    }
}

/// The end of the JSON number starting at `b[i]`:
/// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`; `None` when there is none.
pub(crate) fn number_end(b: &[u8], i: usize) -> Option<usize> {
    let digits = |mut j: usize| {
        let from = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        (j > from).then_some(j)
    };
    let mut j = i + usize::from(b.get(i) == Some(&b'-'));
    j = match *b.get(j)? {
        b'0' => j + 1,
        b'1'..=b'9' => digits(j)?,
        _ => return None,
    };
    if b.get(j) == Some(&b'.') {
        j = digits(j + 1)?;
    }
    if matches!(b.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        j = digits(j)?;
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    type Fields = Vec<(String, String)>;

    /// What the flat reader reads at the start of `text`, with `gaps` from earlier records.
    fn flat(text: &str, gaps: &mut LastGaps) -> Option<(Fields, usize)> {
        let mut fields = Vec::new();
        let used = read(text, gaps, &mut fields)?;
        Some((owned(&fields), used))
    }

    /// What serde_json reads at the start of `text`, as the array reader asks it to.
    fn general(text: &str) -> Option<(Fields, usize)> {
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Record>();
        match stream.next() {
            Some(Ok(r)) => Some((owned(&r.fields), stream.byte_offset())),
            _ => None,
        }
    }

    fn owned(fields: &[(Name<'_>, Raw<'_>)]) -> Fields {
        fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.get().to_owned()))
            .collect()
    }

    #[test]
    fn records_read_flat_are_read_as_serde_json_reads_them() {
        let flat_cases = [
            "{\n    \"StudentId\": \"125450\",\n    \"SessionStartTime\": \"2018-01-01 00:00:00.408\",\n    \"StudentClient\": \"Website\"\n  },\n  {",
            r#"{"Id":1,"Name":"São Paulo","n":-0.5e3,"t":true,"f":false,"z":null}"#,
            "{ \"Id\" :\t\"1\" ,\r\n \"Id\" : 2 }",
            "{}",
            "{ }]",
            r#"{"a": 0, "b": 1E+2, "c": -0, "d": 10.25}, 5"#,
        ];
        let mut gaps = LastGaps::default();
        for text in flat_cases {
            let read = flat(text, &mut gaps);
            assert!(read.is_some(), "read flat: {text}");
            assert_eq!(read, general(text), "{text}");
        }
        // Every prefix and every one-byte change of a flat record, compact and pretty-printed:
        // the flat reader either declines or reads what serde_json reads.
        for base in [flat_cases[1], flat_cases[0]] {
            let mut variants: Vec<String> = (0..base.len())
                .filter(|&n| base.is_char_boundary(n))
                .map(|n| base[..n].to_owned())
                .collect();
            for (at, _) in base.char_indices().filter(|(_, c)| c.is_ascii()) {
                for c in [
                    "\"", "\\", ",", ":", "}", "{", "[", " ", "\t", "\u{1}", "0", "-", ".", "e",
                    "x", "",
                ] {
                    let mut v = base.to_owned();
                    v.replace_range(at..at + 1, c);
                    variants.push(v);
                }
            }
            // Each variant is read once by a fresh reader and once right after the base
            // record, whose gaps are then matched first.
            let mut declined = 0;
            for v in &variants {
                for mut gaps in [LastGaps::default(), gaps_after(base)] {
                    match flat(v, &mut gaps) {
                        Some(read) => assert_eq!(Some(read), general(v), "{v}"),
                        None => declined += 1,
                    }
                }
            }
            assert!(
                declined > variants.len() / 2,
                "many variants are not flat: {base}"
            );
            // A record cut anywhere (as by the end of the window) teaches the reader nothing
            // wrong: the whole record, read next with the same memory, is still read flat.
            for n in (0..base.len()).filter(|&n| base.is_char_boundary(n)) {
                let mut gaps = gaps_after(base);
                let _ = flat(&base[..n], &mut gaps);
                assert_eq!(
                    flat(base, &mut gaps),
                    general(base),
                    "after the first {n} bytes"
                );
            }
        }
        // Not flat, though valid: left to serde_json.
        for text in [
            r#"{"a": "x\"y"}"#,
            r#"{"a\n": 1}"#,
            r#"{"a": {"b": 1}}"#,
            r#"{"a": [1]}"#,
        ] {
            assert!(
                flat(text, &mut gaps_after(flat_cases[1])).is_none(),
                "{text}"
            );
            assert!(general(text).is_some(), "{text}");
        }
    }

    fn gaps_after(text: &str) -> LastGaps {
        let mut gaps = LastGaps::default();
        flat(text, &mut gaps).expect("a flat record");
        gaps
    }

    #[test]
    fn strings_end_at_their_first_quote_unless_an_escape_or_control_comes_first() {
        // Every length and position around the 8-byte steps, with multibyte characters.
        for len in 0..20 {
            for at in 0..=len {
                for (special, ends) in
                    [('"', true), ('\\', false), ('\n', false), ('\u{1f}', false)]
                {
                    let body: String = (0..len)
                        .map(|k| {
                            if k == at {
                                special
                            } else if k % 3 == 0 {
                                'é'
                            } else {
                                'x'
                            }
                        })
                        .collect();
                    let text = format!("\"{body}\"");
                    let b = text.as_bytes();
                    let first = 1 + body.char_indices().nth(at).map_or(body.len(), |(p, _)| p);
                    let expected = if at == len || ends {
                        Some(first + 1)
                    } else {
                        None
                    };
                    assert_eq!(string_end(b, 0), expected, "{text:?}");
                }
            }
        }
        assert_eq!(string_end(b"\"abcdefghij", 0), None, "cut by the end");
        assert_eq!(string_end(b"x\"", 0), None, "not a string");
    }

    #[test]
    fn numbers_end_where_json_says() {
        for (text, end) in [
            ("0,", Some(1)),
            ("-12.5e-3}", Some(8)),
            ("01", Some(1)),
            ("1.", None),
            ("-", None),
            ("1e", None),
            ("x", None),
        ] {
            assert_eq!(number_end(text.as_bytes(), 0), end, "{text}");
        }
    }
}
