//! Dimension indexes: id (text form) -> name and the other fields that the join merges in.

use rustc_hash::FxHashMap;

use crate::error::EtlError;
use crate::json_array::Element;
use crate::record::{key_text, Raw};

/// The three dimension exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimensionKind {
    Courses,
    Universities,
    Subjects,
}

impl DimensionKind {
    pub const ALL: [DimensionKind; 3] = [
        DimensionKind::Courses,
        DimensionKind::Universities,
        DimensionKind::Subjects,
    ];

    /// The export's key in the source bucket.
    pub fn source_key(self) -> &'static str {
        match self {
            DimensionKind::Courses => "a/courses.json",
            DimensionKind::Universities => "a/universities.json",
            DimensionKind::Subjects => "a/subjects.json",
        }
    }

    /// Whether the join passes the record's fields other than `Id` and `Name` into the fact
    /// row. The original merged only the `Name` of a course or university into a student,
    /// but every field of a subject (all but `Id`) into a follow (docs/SEMANTICS.md, "Joins").
    pub fn passes_other_fields(self) -> bool {
        matches!(self, DimensionKind::Subjects)
    }
}

/// What a join merges into a fact row: the dimension's `Name`, and for subjects their fields
/// other than `Id` (see [`DimensionKind::passes_other_fields`]).
#[derive(Debug, Default)]
struct Entry {
    /// JSON texts of values, as [`Raw`] holds them.
    name: Box<str>,
    /// How many of `extras` come before `Name` in the record: the join merges the fields in
    /// the record's order.
    name_at: usize,
    extras: Vec<(Box<str>, Box<str>)>,
}

impl Entry {
    fn joined(&self) -> Joined<'_> {
        let (before, after) = self.extras.split_at(self.name_at);
        Joined {
            name: Raw::parsed(&self.name),
            before,
            after,
        }
    }
}

/// What a join merges into a fact row, borrowed from the dimension: JSON texts of values.
#[derive(Clone, Copy, Debug)]
pub struct Joined<'d> {
    /// The `Name` value.
    pub name: Raw<'d>,
    /// The other fields (subjects only) before and after `Name`, in the record's order.
    pub before: &'d [(Box<str>, Box<str>)],
    pub after: &'d [(Box<str>, Box<str>)],
}

/// A dense id's place: absent, a name in `names` (`len` bytes, with [`Slot::ESCAPED`] set
/// when it holds an escape), or (with other fields) a whole entry.
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: u32,
    len: u32,
}

impl Slot {
    const ABSENT: Slot = Slot {
        start: u32::MAX,
        len: 0,
    };
    /// `len` of a slot that points at `entries[start]`.
    const ENTRY: u32 = u32::MAX;
    /// The flag bit of `len` for a name holding an escape.
    const ESCAPED: u32 = 1 << 31;

    /// The slot of `name` placed at byte `start` of the names' buffer; `None` when the offset
    /// or the length does not fit its field.
    fn name(start: usize, name: &str) -> Option<Slot> {
        let len = u32::try_from(name.len())
            .ok()
            .filter(|&n| n < Slot::ESCAPED)?;
        let flag = if name.contains('\\') {
            Slot::ESCAPED
        } else {
            0
        };
        Some(Slot {
            start: u32::try_from(start).ok()?,
            len: len | flag,
        })
    }

    /// The name this slot places in `names`, as a value.
    fn name_in(self, names: &str) -> Raw<'_> {
        let start = self.start as usize;
        let text = &names[start..start + (self.len & !Slot::ESCAPED) as usize];
        if self.len & Slot::ESCAPED == 0 {
            Raw::unescaped(text)
        } else {
            Raw::parsed(text)
        }
    }
}

/// An index of one dimension export. Keys compare by text; canonical decimal integers (the
/// usual ids, whether written `1` or `"1"`) are kept as numbers, which hash and compare
/// without touching the heap.
///
/// Once read ([`Dimension::seal`]), integer ids that are dense (the usual `1..n`) are also
/// indexed by a plain vector, whose slot holds where the name's text is in one buffer of
/// distinct names (or, for an entry with other fields, its position). A fact's lookup is a random
/// access into a dimension of up to 100k entries: through the hash map and the entry to its
/// name that was three cache misses, an eighth of base a's run; the vector (8 bytes an id)
/// mostly stays in cache, which leaves the name's (docs/BENCHMARKS.md).
#[derive(Debug)]
pub struct Dimension {
    kind: DimensionKind,
    entries: Vec<Entry>,
    ints: FxHashMap<u64, u32>,
    texts: FxHashMap<Box<str>, u32>,
    /// Empty, or a slot for every integer id up to the largest.
    dense: Vec<Slot>,
    /// The names of the entries the dense slots point into.
    names: String,
}

/// `Some(n)` when `text` is the canonical decimal form of `n` (no sign, no leading zero), so
/// that equal texts and equal numbers are the same keys.
///
/// One pass that checks and accumulates the digits: every fact's join key goes through it,
/// and `str::parse` after a check read each key twice (docs/BENCHMARKS.md, stop 37). Up to 19
/// digits cannot overflow a `u64`.
#[inline]
fn canonical_int(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || b.len() > 19 || (b[0] == b'0' && b.len() > 1) {
        return None;
    }
    let mut n = 0u64;
    for &c in b {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + u64::from(digit);
    }
    Some(n)
}

impl Dimension {
    pub fn new(kind: DimensionKind) -> Self {
        Dimension {
            kind,
            entries: Vec::new(),
            ints: FxHashMap::default(),
            texts: FxHashMap::default(),
            dense: Vec::new(),
            names: String::new(),
        }
    }

    /// Adds one record. Its `Id` is required and must be a string or an integer; a later
    /// record with the same id replaces an earlier one, as in the original.
    pub fn add(&mut self, e: &Element<'_>) -> Result<(), EtlError> {
        let id = e
            .record
            .get("Id")
            .ok_or_else(|| e.at.error("missing required field `Id`"))?;
        let key = match key_text(id) {
            Ok(Some(k)) => k,
            Ok(None) => {
                return Err(e
                    .at
                    .error_at(id, "field `Id` is null; a dimension row needs an id")
                    .into())
            }
            Err(kind) => {
                return Err(e
                    .at
                    .error_at(
                        id,
                        format!("field `Id` must be a string or an integer, found {kind}"),
                    )
                    .into())
            }
        };
        let mut entry = Entry::default();
        let mut named = false;
        let others = self.kind.passes_other_fields();
        for (name, value) in e.record.fields.iter().map(|(n, v)| (n, *v)) {
            match name.as_ref() {
                "Id" => {}
                "Name" => {
                    entry.name = value.get().into();
                    entry.name_at = entry.extras.len();
                    named = true;
                }
                _ if others => entry
                    .extras
                    .push((name.as_ref().into(), value.get().into())),
                _ => {}
            }
        }
        if !named {
            return Err(e.at.error("missing required field `Name`").into());
        }
        let next = u32::try_from(self.entries.len()).map_err(|_| {
            e.at.error("more than 4 billion records in one dimension export")
        })?;
        let at = match canonical_int(&key) {
            Some(n) => *self.ints.entry(n).or_insert(next),
            None => *self.texts.entry(key.as_ref().into()).or_insert(next),
        };
        if at == next {
            self.entries.push(entry);
        } else {
            // A repeated id: the later record replaces the earlier.
            self.entries[at as usize] = entry;
        }
        self.dense.clear();
        self.names.clear();
        Ok(())
    }

    /// Indexes dense integer ids by a vector (see the type's doc): when the largest id is at
    /// most four times the number of entries (plus slack for small dimensions), so the
    /// vector costs at most 32 bytes per entry. Lookups are the same either way.
    pub fn seal(&mut self) {
        let Some(&max) = self.ints.keys().max() else {
            return;
        };
        if max > 4 * self.entries.len() as u64 + 1024 {
            return;
        }
        let mut dense = vec![Slot::ABSENT; max as usize + 1];
        let mut names = String::new();
        // Each distinct name once: dimensions repeat names (100k subjects, 3.6k names in the
        // generated data), so the buffer stays small enough to stay in cache with the slots.
        let mut placed: FxHashMap<&str, Slot> = FxHashMap::default();
        for (&id, &at) in &self.ints {
            let entry = &self.entries[at as usize];
            let slot = if !entry.extras.is_empty() {
                Slot {
                    start: at,
                    len: Slot::ENTRY,
                }
            } else if let Some(&slot) = placed.get(&*entry.name) {
                slot
            } else {
                let Some(slot) = Slot::name(names.len(), &entry.name) else {
                    return;
                };
                names.push_str(&entry.name);
                placed.insert(&entry.name, slot);
                slot
            };
            dense[id as usize] = slot;
        }
        self.dense = dense;
        self.names = names;
    }

    fn by_int(&self, n: u64) -> Option<Joined<'_>> {
        if self.dense.is_empty() {
            return Some(self.entries[*self.ints.get(&n)? as usize].joined());
        }
        let slot = *self.dense.get(usize::try_from(n).ok()?)?;
        match slot.len {
            _ if slot.start == Slot::ABSENT.start => None,
            Slot::ENTRY => Some(self.entries[slot.start as usize].joined()),
            _ => Some(Joined {
                name: slot.name_in(&self.names),
                before: &[],
                after: &[],
            }),
        }
    }

    /// The entry a fact's key field points to. `Ok(None)` when the key is null or has no
    /// match (the row is kept without the joined fields).
    pub fn lookup<'d>(
        &'d self,
        e: &Element<'_>,
        field: &str,
        key: Raw<'_>,
    ) -> Result<Option<Joined<'d>>, EtlError> {
        match key_text(key) {
            Ok(Some(k)) => Ok(match canonical_int(&k) {
                Some(n) => self.by_int(n),
                None => self
                    .texts
                    .get(k.as_ref())
                    .map(|&at| self.entries[at as usize].joined()),
            }),
            Ok(None) => Ok(None),
            Err(kind) => Err(e
                .at
                .error_at(
                    key,
                    format!(
                        "key field `{field}` must be a string, an integer or null, found {kind}"
                    ),
                )
                .into()),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_array::ArrayReader;

    /// The names the keys join to, and everything each join gives, as text.
    fn lookups(dim: &Dimension, keys: &[&str]) -> (Vec<Option<String>>, Vec<String>) {
        let doc = format!(
            "[{}]",
            keys.iter()
                .map(|k| format!("{{\"K\": {k}}}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let (mut found, mut joined) = (Vec::new(), Vec::new());
        ArrayReader::new(doc.as_bytes(), "facts.json")
            .for_each(|e| {
                let entry = dim.lookup(e, "K", e.record.get("K").unwrap())?;
                found.push(entry.map(|x| x.name.get().to_owned()));
                joined.push(format!("{entry:?}"));
                Ok(())
            })
            .unwrap();
        (found, joined)
    }

    fn names(dim: &Dimension, keys: &[&str]) -> Vec<Option<String>> {
        lookups(dim, keys).0
    }

    #[test]
    fn sealed_subjects_give_their_other_fields_as_the_hash_maps_do() {
        let doc = br#"[{"Id": 1, "Name": "a"}, {"Id": 2, "Area": "x", "Name": "b", "Level": 3},
            {"Id": 3, "Name": "c", "StudentId": "9"}]"#;
        let mut dim = Dimension::new(DimensionKind::Subjects);
        ArrayReader::new(&doc[..], "subjects.json")
            .for_each(|e| dim.add(e))
            .unwrap();
        let keys = ["1", "2", "3", "4"];
        let unsealed = lookups(&dim, &keys);
        dim.seal();
        assert!(!dim.dense.is_empty());
        assert_eq!(lookups(&dim, &keys), unsealed);
        assert!(unsealed.1[1].contains("Area") && unsealed.1[1].contains("Level"));
        assert_eq!(unsealed.1[3], "None");
    }

    #[test]
    fn sealed_lookups_equal_the_hash_maps() {
        let doc = br#"[{"Id": 1, "Name": "a"}, {"Id": "2", "Name": "b"}, {"Id": 5, "Name": "c"},
            {"Id": "1", "Name": "a2"}, {"Id": "07", "Name": "d"}, {"Id": "x", "Name": "e"},
            {"Id": 0, "Name": "z"}, {"Id": 4, "Name": "q\"x"}, {"Id": 3, "Name": "b"}]"#;
        let mut dim = Dimension::new(DimensionKind::Courses);
        ArrayReader::new(&doc[..], "courses.json")
            .for_each(|e| dim.add(e))
            .unwrap();
        let keys = [
            "1", "\"1\"", "2", "5", "\"07\"", "7", "\"x\"", "0", "3", "6", "4096", "null", "4",
        ];
        let unsealed = names(&dim, &keys);
        dim.seal();
        assert!(!dim.dense.is_empty(), "ids 0 to 5 are dense");
        assert_eq!(names(&dim, &keys), unsealed);
        let some = |s: &str| Some(format!("\"{s}\""));
        assert_eq!(
            unsealed,
            [
                some("a2"),
                some("a2"),
                some("b"),
                some("c"),
                some("d"),
                None,
                some("e"),
                some("z"),
                some("b"),
                None,
                None,
                None,
                some("q\\\"x"),
            ]
        );
        assert_eq!(dim.len(), 8);
        // The escaped name is read as text through its escape (the slot's flag).
        let doc = br#"[{"K": 4}]"#;
        ArrayReader::new(&doc[..], "facts.json")
            .for_each(|e| {
                let joined = dim.lookup(e, "K", e.record.get("K").unwrap())?.unwrap();
                assert_eq!(crate::record::text(joined.name).unwrap(), "q\"x");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn sparse_ids_stay_in_the_hash_map() {
        let doc = br#"[{"Id": 1, "Name": "a"}, {"Id": 99999999, "Name": "b"}]"#;
        let mut dim = Dimension::new(DimensionKind::Subjects);
        ArrayReader::new(&doc[..], "subjects.json")
            .for_each(|e| dim.add(e))
            .unwrap();
        dim.seal();
        assert!(dim.dense.is_empty());
        assert_eq!(
            names(&dim, &["99999999", "1", "2"]),
            [Some("\"b\"".into()), Some("\"a\"".into()), None]
        );
    }

    #[test]
    fn only_canonical_integers_become_numbers() {
        assert_eq!(canonical_int("0"), Some(0));
        assert_eq!(canonical_int("123"), Some(123));
        assert_eq!(canonical_int("0123"), None, "`0123` is not the text of 123");
        assert_eq!(canonical_int("-1"), None);
        assert_eq!(canonical_int("1a"), None);
        assert_eq!(canonical_int(""), None);
        assert_eq!(canonical_int("99999999999999999999"), None);
        assert_eq!(
            canonical_int("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(canonical_int("1/"), None, "a byte just below `0`");
        assert_eq!(canonical_int("1:"), None, "a byte just above `9`");
        assert_eq!(canonical_int("١"), None, "a digit outside ASCII");
    }
}
