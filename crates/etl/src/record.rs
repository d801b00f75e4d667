//! One record of an input array, parsed without copying: field names and raw JSON values
//! borrow the reader's window.
//!
//! Values are [`Raw`], the reader's own type rather than serde_json's `RawValue`: the array
//! reader parses most records without serde (`json_array`'s flat path) and can only make a
//! `RawValue` by validating the text again.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A field name as it appears in a record: borrowed unless it held escapes.
pub type Name<'a> = Cow<'a, str>;

/// The JSON text of one value as the reader found it (a string keeps its quotes and escapes).
/// Only the crate's readers make one, from text they parsed as one valid JSON value; the
/// functions below rely on that.
///
/// It also knows whether the text holds an escape (`\`), so that writing a string does not
/// scan it again: the flat reader knows it for free, and that scan of every value was 6% of
/// base a's run (docs/BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw<'a> {
    json: &'a str,
    escaped: bool,
}

impl<'a> Raw<'a> {
    /// `json` must be the text of one valid JSON value, without surrounding whitespace.
    pub(crate) fn parsed(json: &'a str) -> Self {
        Self::checked(json, memchr::memchr(b'\\', json.as_bytes()).is_some())
    }

    /// [`Raw::parsed`] for text known to hold no `\`.
    pub(crate) fn unescaped(json: &'a str) -> Self {
        Self::checked(json, false)
    }

    fn checked(json: &'a str, escaped: bool) -> Self {
        debug_assert!(serde_json::from_str::<&RawValue>(json).is_ok(), "{json}");
        debug_assert_eq!(escaped, json.contains('\\'), "{json}");
        Raw { json, escaped }
    }

    /// The value's JSON text.
    pub fn get(self) -> &'a str {
        self.json
    }

    /// The value's JSON text without whitespace between tokens, as `JSON.stringify` writes an
    /// object or array (an export's nested values are pretty-printed over several lines, which
    /// an NDJSON row cannot hold). Borrowed unless the value is an object or array with
    /// whitespace in it.
    pub fn compact(self) -> Cow<'a, str> {
        let b = self.json.as_bytes();
        if !matches!(b[0], b'{' | b'[') || !b.iter().any(|c| c.is_ascii_whitespace()) {
            return Cow::Borrowed(self.json);
        }
        let mut out = Vec::with_capacity(b.len());
        let (mut in_string, mut escaped) = (false, false);
        for &c in b {
            if in_string {
                in_string = escaped || c != b'"';
                escaped = !escaped && c == b'\\';
            } else if c == b'"' {
                in_string = true;
            } else if c.is_ascii_whitespace() {
                continue;
            }
            out.push(c);
        }
        Cow::Owned(String::from_utf8(out).expect("whitespace removed from UTF-8 between tokens"))
    }
}

/// The fields of one JSON object, in document order. Values stay raw JSON text until a
/// writer needs them, so fields that only pass through are never decoded.
///
/// A `Vec`, not an inline array: the record is moved several times between the parser and
/// the transformation, and moving a few hundred inline bytes per record cost more (a fifth
/// of the run, measured with perf) than one small allocation.
#[derive(Debug, Default)]
pub struct Record<'a> {
    pub fields: Vec<(Name<'a>, Raw<'a>)>,
}

impl<'a> Record<'a> {
    /// The value of `name`. With duplicate names the last wins, as in `JSON.parse`.
    pub fn get(&self, name: &str) -> Option<Raw<'a>> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

struct BorrowedName<'a>(Name<'a>);

impl<'de> Deserialize<'de> for BorrowedName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BorrowedName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedName(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedName(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object (one record)")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8).max(8));
                while let Some(BorrowedName(name)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((name, Raw::parsed(value.get())));
                }
                Ok(Record { fields })
            }
        }
        d.deserialize_map(V)
    }
}

/// What a raw value is, for messages: `a string`, `an object`...
pub fn kind_of(raw: Raw<'_>) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ if is_integer(raw) => "an integer",
        _ => "a number with a fraction or exponent",
    }
}

fn is_integer(raw: Raw<'_>) -> bool {
    let s = raw.get().as_bytes();
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// The text form of a join key, as the original compared keys (`"1"` matches `1`).
/// `Ok(None)` for null (no match); `Err(kind)` for a value that cannot be a key.
#[inline]
pub fn key_text(raw: Raw<'_>) -> Result<Option<Cow<'_, str>>, &'static str> {
    let s = raw.get();
    match s.as_bytes()[0] {
        b'"' => Ok(Some(unquote(raw))),
        b'n' => Ok(None),
        _ if is_integer(raw) => Ok(Some(Cow::Borrowed(s))),
        _ => Err(kind_of(raw)),
    }
}

/// Whether `raw` can be a key, a string or an integer: what [`key_text`] gives a text for,
/// told without unescaping a string (every fact record's own id is checked so).
#[inline]
pub fn is_key(raw: Raw<'_>) -> bool {
    raw.get().as_bytes()[0] == b'"' || is_integer(raw)
}

/// The text of a raw value as a string column holds it: strings unescaped, null as `None`,
/// numbers, booleans, objects and arrays as their JSON text.
#[inline]
pub fn text(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    let s = raw.get();
    match s.as_bytes()[0] {
        b'"' => Some(unquote(raw)),
        b'n' => None,
        _ => Some(raw.compact()),
    }
}

/// A JSON string literal's content; borrowed when it has no escapes (the common case).
///
/// Inlined, and sliced without `str`'s boundary checks: called once per text value of every
/// row, the call and the two checks were 3% of base a's run (docs/BENCHMARKS.md, stop 37).
#[inline]
fn unquote(raw: Raw<'_>) -> Cow<'_, str> {
    let s = raw.json;
    if !raw.escaped {
        debug_assert!(
            s.len() >= 2 && s.starts_with('"') && s.ends_with('"'),
            "{s}"
        );
        // SAFETY: `raw` is a string literal the reader parsed (see `Raw`): it starts and ends
        // with an ASCII `"`, so bytes 1 and `len - 1` are character boundaries in its range.
        Cow::Borrowed(unsafe { s.get_unchecked(1..s.len() - 1) })
    } else {
        // The reader already parsed this literal, so it is valid JSON.
        Cow::Owned(serde_json::from_str(s).expect("a string literal the parser accepted"))
    }
}

/// Writes `name` as a JSON string literal.
pub fn write_name(out: &mut Vec<u8>, name: &str) {
    let plain = name.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, name).expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Raw<'_> {
        Raw::parsed(s)
    }

    #[test]
    fn keys_compare_by_text_form() {
        assert_eq!(key_text(raw("\"1\"")).unwrap().unwrap(), "1");
        assert_eq!(key_text(raw("1")).unwrap().unwrap(), "1");
        assert_eq!(key_text(raw("-12")).unwrap().unwrap(), "-12");
        assert_eq!(key_text(raw("\"a\\u0062\"")).unwrap().unwrap(), "ab");
        assert_eq!(key_text(raw("null")).unwrap(), None);
        assert_eq!(
            key_text(raw("1.5")).unwrap_err(),
            "a number with a fraction or exponent"
        );
        assert_eq!(key_text(raw("{\"a\":1}")).unwrap_err(), "an object");
        assert_eq!(key_text(raw("true")).unwrap_err(), "a boolean");
    }

    #[test]
    fn records_keep_order_and_the_last_duplicate_wins() {
        let r: Record = serde_json::from_str(r#"{"b": 1, "a\n": "x", "b": 2}"#).unwrap();
        let names: Vec<&str> = r.fields.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["b", "a\n", "b"]);
        assert_eq!(r.get("b").unwrap().get(), "2");
        assert!(matches!(r.fields[1].0, Cow::Owned(_)));
        assert!(matches!(r.fields[0].0, Cow::Borrowed(_)));
    }

    #[test]
    fn text_decodes_strings_and_keeps_other_json() {
        assert_eq!(text(raw("\"S\\u00e3o\"")).unwrap(), "São");
        assert_eq!(text(raw("12")).unwrap(), "12");
        assert_eq!(text(raw("[1, 2]")).unwrap(), "[1,2]");
        assert_eq!(
            text(raw("{\"a b\": [1,\n  {\"c\": \" \\\" \\\\\"}]}")).unwrap(),
            "{\"a b\":[1,{\"c\":\" \\\" \\\\\"}]}"
        );
        assert!(matches!(raw("[1,2]").compact(), Cow::Borrowed(_)));
        assert_eq!(text(raw("null")), None);
    }

    #[test]
    fn names_are_written_as_json_strings() {
        let mut out = Vec::new();
        write_name(&mut out, "Page \"Name\"");
        write_name(&mut out, "Id");
        assert_eq!(String::from_utf8(out).unwrap(), r#""Page \"Name\"""Id""#);
    }
}
