//! One line of site events -> the source keys the tables use, each as text.
//!
//! docs/SEMANTICS.md, base b, "Input": every key is read as text, and a line that is not a
//! JSON object is malformed. The Spark job reads the same lines with Spark's JSON reader
//! (Jackson) in strict mode (no single quotes, no `NaN`); what it does with the cases JSON
//! leaves open was measured with PySpark 3.5.2 and is reproduced here, so the two engines
//! agree line for line (tests/engines/test_equivalence.py):
//!
//! - a duplicated key: the **last** value counts (a later `null` too);
//! - a top-level array whose elements are all objects: one event per element (`[]`: none);
//!   any other array, a number, a string or `null` at the top level: malformed;
//! - text after the first value (`{"a":1} x`) is ignored; a UTF-8 byte-order mark is skipped;
//! - a line with invalid UTF-8 anywhere is malformed; a line of only spaces is not a line;
//! - a non-string value is read as its JSON text as Jackson writes it: integers as written
//!   (`-0` is `0`), other numbers as Java's `Double.toString` (`1.50` is `1.5`, `1e7` is
//!   `1.0E7`, an overflow is `"Infinity"` with its quotes), objects and arrays compact, keys in
//!   their order.
//!
//! Hand-written over serde_json's streaming visitor rather than a DOM (`serde_json::Value`):
//! a DOM would allocate every value of every event and lose the order and duplicates of a
//! nested object's keys, which the text of such a value keeps.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::json_array::flat::number_end;
use crate::short_eq::{short_eq, starts_with_quoted};

/// The source keys the tables read, in slot order (see [`slot_of`]).
pub const KEYS: [&str; 39] = [
    "at",
    "browser",
    "carrier",
    "country",
    "custom_1",
    "custom_2",
    "custom_3",
    "custom_4",
    "device_new",
    "install_uuid",
    "language",
    "library_ver",
    "model",
    "name",
    "nth",
    "os_ver",
    "platform",
    "session_uuid",
    "type",
    "user_type",
    "uuid",
    "marketing_source",
    "marketing_medium",
    "marketing_campaign",
    "studentId_clientType",
    "Page Name",
    "PageName",
    "Page Category",
    "PageCategory",
    "Page Category 1",
    "PageCategory1",
    "Page Category 2",
    "PageCategory2",
    "Page Category 3",
    "PageCategory3",
    "Last Accessed Url",
    "LastAccessedUrl",
    "first-accessed-page",
    "firstAccessedPage",
];

/// The slot of a source key, or `None` for a key no table reads.
pub fn slot_of(key: &str) -> Option<usize> {
    // A `match`: compiled to a switch on the length, then a comparison with the few keys of
    // that length (a scan of [`KEYS`] compared each key with up to 39, a tenth of the run).
    // Its slots are [`KEYS`]' positions (the test `slots_are_the_positions_of_keys`).
    Some(match key {
        "at" => 0,
        "browser" => 1,
        "carrier" => 2,
        "country" => 3,
        "custom_1" => 4,
        "custom_2" => 5,
        "custom_3" => 6,
        "custom_4" => 7,
        "device_new" => 8,
        "install_uuid" => 9,
        "language" => 10,
        "library_ver" => 11,
        "model" => 12,
        "name" => 13,
        "nth" => 14,
        "os_ver" => 15,
        "platform" => 16,
        "session_uuid" => 17,
        "type" => 18,
        "user_type" => 19,
        "uuid" => 20,
        "marketing_source" => 21,
        "marketing_medium" => 22,
        "marketing_campaign" => 23,
        "studentId_clientType" => 24,
        "Page Name" => 25,
        "PageName" => 26,
        "Page Category" => 27,
        "PageCategory" => 28,
        "Page Category 1" => 29,
        "PageCategory1" => 30,
        "Page Category 2" => 31,
        "PageCategory2" => 32,
        "Page Category 3" => 33,
        "PageCategory3" => 34,
        "Last Accessed Url" => 35,
        "LastAccessedUrl" => 36,
        "first-accessed-page" => 37,
        "firstAccessedPage" => 38,
        _ => return None,
    })
}

/// The slot of `key` in [`KEYS`]; panics for a key not listed (a programming error).
pub const fn slot(key: &str) -> usize {
    let mut i = 0;
    while i < KEYS.len() {
        if const_eq(KEYS[i], key) {
            return i;
        }
        i += 1;
    }
    panic!("not a source key")
}

/// Slots the derived columns and the counts read, computed at compile time.
pub mod slots {
    use super::slot;
    pub const AT: usize = slot("at");
    pub const KEY: usize = slot("studentId_clientType");
    pub const NTH: usize = slot("nth");
    pub const DEVICE_NEW: usize = slot("device_new");
    pub const UUID: usize = slot("uuid");
    pub const SESSION_UUID: usize = slot("session_uuid");
    pub const CUSTOM_1: usize = slot("custom_1");
    pub const CUSTOM_2: usize = slot("custom_2");
    pub const PAGE_NAME: (usize, usize) = (slot("Page Name"), slot("PageName"));
    pub const MARKETING: [usize; 3] = [
        slot("marketing_source"),
        slot("marketing_medium"),
        slot("marketing_campaign"),
    ];
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// One event's source values: `None` when the key is absent or `null`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub values: [Option<Cow<'a, str>>; KEYS.len()],
}

impl Default for Event<'_> {
    fn default() -> Self {
        Event {
            values: std::array::from_fn(|_| None),
        }
    }
}

impl<'a> Event<'a> {
    pub fn get(&self, slot: usize) -> Option<&str> {
        self.values[slot].as_deref()
    }
}

/// What a line holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Only spaces: not a line.
    Blank,
    /// Events (one for an object; one per element for an array of objects; none for `[]`).
    Events(Vec<Event<'a>>),
    /// Not JSON, or JSON that is not an object or an array of objects.
    Malformed,
}

/// Reads one line (without its `\n`).
pub fn parse(line: &[u8]) -> Line<'_> {
    let mut events = Vec::new();
    match parse_into(line, &mut events, &mut KeyOrder::default()) {
        Parsed::Blank => Line::Blank,
        Parsed::Events => Line::Events(events),
        Parsed::Malformed => Line::Malformed,
    }
}

/// What [`parse_into`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    Blank,
    /// The line's events were appended.
    Events,
    Malformed,
}

/// Reads one line (without its `\n`), appending its events to `out` (cleared first): the
/// buffer is reused line after line, so an event is written in place, not moved.
pub fn parse_into<'a>(line: &'a [u8], out: &mut Vec<Event<'a>>, keys: &mut KeyOrder) -> Parsed {
    match simdutf8::basic::from_utf8(line) {
        Ok(line) => parse_str_into(line, out, keys),
        Err(_) => {
            out.clear();
            Parsed::Malformed
        }
    }
}

/// [`parse_into`] for a line whose UTF-8 is checked already (a block of lines is checked
/// whole: splitting valid UTF-8 at `\n` leaves valid lines).
pub fn parse_str_into<'a>(line: &'a str, out: &mut Vec<Event<'a>>, keys: &mut KeyOrder) -> Parsed {
    out.clear();
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    if line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
        return Parsed::Blank;
    }
    out.push(Event::default());
    if read_flat(line, keys, out.last_mut().expect("just pushed")).is_some() {
        return Parsed::Events;
    }
    out.clear();
    // From a `str`, serde_json does not validate each string's UTF-8 again.
    let mut de = serde_json::Deserializer::from_str(line);
    // No `de.end()`: text after the first value is ignored, as Spark's reader does.
    match de.deserialize_any(TopVisitor(out, keys)) {
        Ok(()) => Parsed::Events,
        Err(_) => {
            out.clear();
            Parsed::Malformed
        }
    }
}

/// The common line read without serde: one flat object whose values are strings without
/// escapes, numbers, `true`, `false` or `null`. Anything else (a `\` or a control character
/// anywhere in the line, a nested value, an array, a number or literal JSON does not allow,
/// any other syntax) returns `None`, and the line is read by serde_json, which also decides
/// what is malformed; so this only ever reads lines that are valid JSON, and reads them as
/// serde_json does (`lines_read_flat_are_read_as_serde_json_reads_them`).
///
/// Written by hand because it is where base b's time goes: serde_json's general reader (its
/// map access, its raw values) cost half the scan, and a SIMD parser through the same serde
/// interface was no faster (docs/BENCHMARKS.md).
fn read_flat<'a>(line: &'a str, keys: &mut KeyOrder, event: &mut Event<'a>) -> Option<()> {
    let b = line.as_bytes();
    // One branch-free pass over the whole line (the compiler vectorizes it) instead of a
    // check per string: without a `\` and a control character, a string ends at its next
    // `"`. A tab or `\r` between tokens, which JSON allows, is left to the general reader, so
    // the only space between tokens here is ` `.
    let special = b
        .iter()
        .fold(0u8, |any, &c| any | u8::from(c < 0x20 || c == b'\\'));
    if special != 0 {
        return None;
    }
    let mut i = skip_ws(b, 0);
    if *b.get(i)? != b'{' {
        return None;
    }
    i = skip_ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return Some(());
    }
    let mut at = 0;
    loop {
        let (end, slot) = match keys.predicted(at, &b[i..]) {
            Some((len, slot)) => (i + 1 + len, slot),
            None => {
                let (start, end) = flat_string(b, i)?;
                (end, keys.slot(at, &line[start..end]))
            }
        };
        at += 1;
        i = skip_ws(b, end + 1);
        if *b.get(i)? != b':' {
            return None;
        }
        i = skip_ws(b, i + 1);
        let (value, next) = match *b.get(i)? {
            b'"' => {
                let (start, end) = flat_string(b, i)?;
                (Some(Cow::Borrowed(&line[start..end])), end + 1)
            }
            b't' if b[i..].starts_with(b"true") => (Some(Cow::Borrowed("true")), i + 4),
            b'f' if b[i..].starts_with(b"false") => (Some(Cow::Borrowed("false")), i + 5),
            b'n' if b[i..].starts_with(b"null") => (None, i + 4),
            b'-' | b'0'..=b'9' => {
                let end = number_end(b, i)?;
                (text(&line[i..end]).ok()?, end)
            }
            _ => return None,
        };
        if let Some(slot) = slot {
            event.values[slot] = value;
        }
        i = skip_ws(b, next);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

/// Past the spaces at `b[i]` (a line [`read_flat`] reads holds no other whitespace).
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

/// The contents of the string starting at `b[i]` (a `"`), as (start, end) with `b[end]` the
/// closing quote, in a line without escapes and control characters ([`read_flat`]).
fn flat_string(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if *b.get(i)? != b'"' {
        return None;
    }
    let start = i + 1;
    Some((start, start + memchr::memchr(b'"', &b[start..])?))
}

struct TopVisitor<'o, 'a>(&'o mut Vec<Event<'a>>, &'o mut KeyOrder);

impl<'de> Visitor<'de> for TopVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or an array of objects")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.push(Event::default());
        let event = self.0.last_mut().expect("just pushed");
        EventVisitor(event, self.1).visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.0.push(Event::default());
            let event = self.0.last_mut().expect("just pushed");
            if seq.next_element_seed(EventSeed(event, self.1))?.is_none() {
                self.0.pop();
                return Ok(());
            }
        }
    }
}

struct EventSeed<'e, 'a>(&'e mut Event<'a>, &'e mut KeyOrder);

impl<'de> DeserializeSeed<'de> for EventSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(EventVisitor(self.0, self.1))
    }
}

struct EventVisitor<'e, 'a>(&'e mut Event<'a>, &'e mut KeyOrder);

impl<'de> Visitor<'de> for EventVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut at = 0;
        while let Some(slot) = map.next_key_seed(KeySeed(&mut *self.1, at))? {
            at += 1;
            match slot {
                Some(i) => {
                    let raw: &'de RawValue = map.next_value()?;
                    self.0.values[i] = text(raw.get()).map_err(de::Error::custom)?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The keys of the last object read, by position: lines of one export list their keys in
/// the same order, so a key is first compared with the key at its position in the previous
/// line (one comparison, where matching it among 39 costs several). One per worker.
#[derive(Debug, Default)]
pub struct KeyOrder(Vec<Known>);

/// A key at its position in the last object read.
#[derive(Debug, Default)]
struct Known {
    key: Vec<u8>,
    slot: Option<usize>,
    /// Whether the key holds no `"`, so its text can be matched in a line without escapes.
    plain: bool,
}

impl Known {
    /// `key` in this place, in the buffer of the key that was here: lines of two layouts
    /// alternating allocate nothing. Returns its slot.
    fn set(&mut self, key: &str) -> Option<usize> {
        self.key.clear();
        self.key.extend_from_slice(key.as_bytes());
        self.slot = slot_of(key);
        self.plain = !key.contains('"');
        self.slot
    }
}

impl KeyOrder {
    fn slot(&mut self, at: usize, key: &str) -> Option<usize> {
        if let Some(k) = self.0.get(at).filter(|k| short_eq(&k.key, key.as_bytes())) {
            return k.slot;
        }
        if self.0.len() == at && at < 64 {
            self.0.push(Known::default());
        }
        match self.0.get_mut(at) {
            Some(k) => k.set(key),
            None => slot_of(key),
        }
    }

    /// In a line without escapes ([`read_flat`]): when `rest` starts with the string of the
    /// key at position `at` of the last object (`"key"`), that key's length and slot, found
    /// without scanning for the closing quote (which was a tenth of base b).
    fn predicted(&self, at: usize, rest: &[u8]) -> Option<(usize, Option<usize>)> {
        let k = self.0.get(at)?;
        let found = k.plain && starts_with_quoted(rest, &k.key);
        found.then_some((k.key.len(), k.slot))
    }
}

/// Reads a key at position `.1` of its object.
struct KeySeed<'k>(&'k mut KeyOrder, usize);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.slot(self.1, v))
    }
}

/// A value's text (`None` for `null`), from its raw JSON.
fn text(raw: &str) -> Result<Option<Cow<'_, str>>, serde_json::Error> {
    Ok(match raw.as_bytes()[0] {
        b'"' if !raw.contains('\\') => Some(Cow::Borrowed(&raw[1..raw.len() - 1])),
        b'"' => Some(Cow::Owned(serde_json::from_str::<String>(raw)?)),
        b'n' => None,
        b't' | b'f' => Some(Cow::Borrowed(raw)),
        b'{' | b'[' => {
            let mut out = String::with_capacity(raw.len());
            let mut de = serde_json::Deserializer::from_str(raw);
            de.deserialize_any(Render(&mut out))?;
            Some(Cow::Owned(out))
        }
        _ if is_integer(raw) => Some(if raw == "-0" {
            Cow::Borrowed("0")
        } else {
            Cow::Borrowed(raw)
        }),
        _ => Some(Cow::Owned(java_double(raw.parse::<f64>().map_err(
            |_| <serde_json::Error as de::Error>::custom("a number"),
        )?))),
    })
}

fn is_integer(raw: &str) -> bool {
    !raw.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// `d` as Java's `Double.toString` writes it (and Jackson, which Spark's reader uses): plain
/// decimals with at least one fractional digit between 10^-3 and 10^7, otherwise
/// `d.dddE±n`; the digits are the shortest that read back as `d`. An infinity is written as
/// Jackson writes it for a text column, a quoted string.
pub fn java_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        }
        .into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.5e0`, `1e7`, `-2.5e-4`.
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if d < 0.0 { "-" } else { "" };
    let abs = d.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exp + 1; // digits before the decimal point
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() { "0".into() } else { frac };
        format!("{sign}{int}.{frac}")
    } else {
        let frac = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{frac}E{exp}", &digits[..1])
    }
}

/// Writes a JSON value compactly, as Jackson's `copyCurrentStructure` does.
struct Render<'o>(&'o mut String);

impl<'de> DeserializeSeed<'de> for Render<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Render<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.0.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        let _ = write!(self.0, "{v}");
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        let text = java_double(v);
        // Inside a structure Jackson writes an overflow as a bare token.
        self.0.push_str(text.trim_matches('"'));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        quote(self.0, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.push_str("null");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push('[');
        let mut first = true;
        loop {
            let at = self.0.len();
            if !first {
                self.0.push(',');
            }
            if seq.next_element_seed(Render(self.0))?.is_none() {
                self.0.truncate(at);
                break;
            }
            first = false;
        }
        self.0.push(']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push('{');
        let mut first = true;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if !first {
                self.0.push(',');
            }
            first = false;
            quote(self.0, &key);
            self.0.push(':');
            map.next_value_seed(Render(self.0))?;
        }
        self.0.push('}');
        Ok(())
    }
}

/// A JSON string as Jackson escapes it: quotes, backslashes and control characters (short
/// escapes where JSON has them, `\u00XX` upper-case otherwise); `/` and non-ASCII as they are.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Event<'_> {
        match parse(line.as_bytes()) {
            Line::Events(mut e) if e.len() == 1 => e.pop().unwrap(),
            other => panic!("{line}: {other:?}"),
        }
    }

    fn value<'a>(e: &'a Event<'_>, key: &str) -> Option<&'a str> {
        e.get(slot_of(key).unwrap())
    }

    #[test]
    fn values_are_read_as_their_text() {
        let e = one(
            r#"{"nth": 17, "device_new": false, "uuid": "a\"b", "browser": {"a" : [1, 2.50], "b": "\u00e9\u001f"}, "custom_1": null}"#,
        );
        assert_eq!(value(&e, "nth"), Some("17"));
        assert_eq!(value(&e, "device_new"), Some("false"));
        assert_eq!(value(&e, "uuid"), Some("a\"b"));
        assert_eq!(value(&e, "browser"), Some(r#"{"a":[1,2.5],"b":"é\u001F"}"#));
        assert_eq!(value(&e, "custom_1"), None);
        assert_eq!(value(&e, "custom_2"), None);
    }

    #[test]
    fn numbers_are_written_as_jackson_writes_them() {
        // Each pair measured with PySpark 3.5.2 (a number read into a string column).
        for (json, text) in [
            ("-0", "0"),
            ("-0.0", "-0.0"),
            ("1e400", "\"Infinity\""),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("0.001", "0.001"),
            ("1e7", "1.0E7"),
            ("1.0E-4", "1.0E-4"),
            ("17.0", "17.0"),
            ("1.50", "1.5"),
            ("1e3", "1000.0"),
        ] {
            let line = format!(r#"{{"nth": {json}}}"#);
            let e = one(&line);
            assert_eq!(value(&e, "nth"), Some(text), "{json}");
        }
    }

    #[test]
    fn the_last_of_a_repeated_key_counts() {
        let e = one(r#"{"uuid": "a", "uuid": "b", "at": "x", "at": null}"#);
        assert_eq!(value(&e, "uuid"), Some("b"));
        assert_eq!(value(&e, "at"), None);
    }

    #[test]
    fn lines_spark_reads_are_read_and_the_others_are_malformed() {
        assert_eq!(parse(b"   \r"), Line::Blank);
        assert_eq!(parse(b"[]"), Line::Events(vec![]));
        assert!(
            matches!(parse(br#"[{"uuid":"1"},{"uuid":"2"}] x"#), Line::Events(e) if e.len() == 2)
        );
        assert!(
            matches!(parse(b"\xEF\xBB\xBF{\"uuid\":\"bom\"}\r"), Line::Events(e) if e.len() == 1)
        );
        assert!(matches!(parse(br#"{"uuid":"a"} {"#), Line::Events(e) if e.len() == 1));
        for bad in [
            &br#"[{"uuid":"1"}, 2]"#[..],
            b"42",
            b"\"s\"",
            b"null",
            br#"{"uuid": "comma",}"#,
            br#"{"uuid": 01}"#,
            b"{\"uuid\": \"ctl\tx\"}",
            b"{\"zzz\": \"bad \xff\", \"uuid\": \"u\"}",
            b"{'uuid': 'single'}",
            br#"{"uuid": NaN}"#,
            br#"{"at": "2019-11-"#,
            b"not json at all",
        ] {
            assert_eq!(
                parse(bad),
                Line::Malformed,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// The general reader alone (serde_json), for comparison with the flat one.
    fn general(line: &str) -> Option<Vec<Event<'_>>> {
        let mut out = Vec::new();
        let mut keys = KeyOrder::default();
        let mut de = serde_json::Deserializer::from_str(line);
        de.deserialize_any(TopVisitor(&mut out, &mut keys)).ok()?;
        Some(out)
    }

    #[test]
    fn lines_read_flat_are_read_as_serde_json_reads_them() {
        // The shared fixtures, found as the integration tests and the Python suite find them.
        let shared = std::env::var_os("PDCASE_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
            });
        let path = shared.join("fixtures/reference/inputs/b/part-0000.json");
        let sample = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: clone next to shared/ or set PDCASE_SHARED",
                path.display()
            )
        });
        let mut lines: Vec<&str> = sample.lines().collect();
        lines.extend([
            r#"{"nth": 17, "device_new": false, "uuid": "a", "custom_1": null, "x": -0.5e3}"#,
            r#"{ "uuid" : "u" , "nth" : -0 , "at":"2019-11-01 00:00:00" }  trailing"#,
            r#"{"uuid": "a", "uuid": "b", "at": "x", "at": null}"#,
            r#"{"nth": 1e400, "custom_2": 1.50, "custom_3": 0, "custom_4": 10}"#,
            r#"{"uuid": "é and ü", "Page Name": "/p?a=1&b=2"}"#,
            "{}",
            // Not flat, or not valid: the general reader's.
            r#"{"uuid": "a\"b"}"#,
            r#"{"browser": {"a": 1}}"#,
            r#"{"uuid": 01}"#,
            r#"{"uuid": 1.}"#,
            r#"{"uuid": -}"#,
            r#"{"uuid": truex}"#,
            r#"{"uuid": "a",}"#,
            r#"{"uuid" "a"}"#,
            "{\"uuid\": \"ctl\tx\"}",
            r#"[{"uuid": "a"}]"#,
            r#"{"uuid": "a""#,
            r#"{"uuid": "a" "nth": 1}"#,
        ]);
        let mut flat_read = 0;
        for line in lines {
            let mut event = Event::default();
            let flat = read_flat(line, &mut KeyOrder::default(), &mut event).is_some();
            let general = general(line);
            if flat {
                flat_read += 1;
                assert_eq!(general, Some(vec![event]), "{line}");
            }
        }
        assert!(
            flat_read >= 9,
            "the flat reader read the sample and the flat lines"
        );
    }

    #[test]
    fn keys_predicted_from_the_previous_line_read_as_a_fresh_reader_does() {
        // One reader through lines whose keys at a position are the last line's, longer,
        // shorter, renamed or escaped: each line reads as it does alone.
        let lines = [
            r#"{"uuid": "a", "nth": 1, "at": "x"}"#,
            r#"{"uuid": "b", "nth": 2, "at": "y"}"#,
            r#"{"uuidx": "c", "nth": 3}"#,
            r#"{"uui": "d", "nt": 4}"#,
            r#"{"uuid": "e", "nth": 5, "at": "z", "custom_1": "u"}"#,
            r#"{"uu\"id": "f", "nth": 6}"#,
            r#"{"uu"id": "g", "nth": 7}"#,
            r#"{"uuid"x: "h"}"#,
            r#"{"uuid": "i"}"#,
        ];
        let mut keys = KeyOrder::default();
        for line in lines {
            let mut shared = Vec::new();
            let with_order = parse_into(line.as_bytes(), &mut shared, &mut keys);
            let alone = parse(line.as_bytes());
            match alone {
                Line::Events(events) => {
                    assert_eq!(with_order, Parsed::Events, "{line}");
                    assert_eq!(shared, events, "{line}");
                }
                Line::Malformed => assert_eq!(with_order, Parsed::Malformed, "{line}"),
                Line::Blank => assert_eq!(with_order, Parsed::Blank, "{line}"),
            }
        }
    }

    #[test]
    fn slots_are_the_positions_of_keys() {
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(slot_of(k), Some(i), "{k}");
        }
        assert_eq!(slot_of("Page"), None);
    }

    #[test]
    fn escaped_keys_are_matched_by_their_text() {
        let e = one(r#"{"Page\u0020Name": "/a"}"#);
        assert_eq!(value(&e, "Page Name"), Some("/a"));
    }
}
