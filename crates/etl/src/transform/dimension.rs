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
pub struct Entry {
    /// JSON texts of values, as [`Raw`] holds them.
    pub name: Option<Box<str>>,
    /// How many of `extras` come before `Name` in the record: the join merges the fields in
    /// the record's order.
    pub name_at: usize,
    pub extras: Vec<(Box<str>, Box<str>)>,
}

/// An index of one dimension export. Keys compare by text; canonical decimal integers (the
/// usual ids, whether written `1` or `"1"`) are kept as numbers, which hash and compare
/// without touching the heap.
#[derive(Debug)]
pub struct Dimension {
    kind: DimensionKind,
    ints: FxHashMap<u64, Entry>,
    texts: FxHashMap<Box<str>, Entry>,
}

/// `Some(n)` when `text` is the canonical decimal form of `n` (no sign, no leading zero), so
/// that equal texts and equal numbers are the same keys.
fn canonical_int(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty()
        || b.len() > 19
        || (b[0] == b'0' && b.len() > 1)
        || !b.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    text.parse().ok()
}

impl Dimension {
    pub fn new(kind: DimensionKind) -> Self {
        Dimension {
            kind,
            ints: FxHashMap::default(),
            texts: FxHashMap::default(),
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
        let others = self.kind.passes_other_fields();
        for (name, value) in e.record.fields.iter().map(|(n, v)| (n, *v)) {
            match name.as_ref() {
                "Id" => {}
                "Name" => {
                    entry.name = Some(value.get().into());
                    entry.name_at = entry.extras.len();
                }
                _ if others => entry
                    .extras
                    .push((name.as_ref().into(), value.get().into())),
                _ => {}
            }
        }
        if entry.name.is_none() {
            return Err(e.at.error("missing required field `Name`").into());
        }
        match canonical_int(&key) {
            Some(n) => self.ints.insert(n, entry),
            None => self.texts.insert(key.as_ref().into(), entry),
        };
        Ok(())
    }

    /// The entry a fact's key field points to. `Ok(None)` when the key is null or has no
    /// match (the row is kept without the joined fields).
    pub fn lookup<'d>(
        &'d self,
        e: &Element<'_>,
        field: &str,
        key: Raw<'_>,
    ) -> Result<Option<&'d Entry>, EtlError> {
        match key_text(key) {
            Ok(Some(k)) => Ok(match canonical_int(&k) {
                Some(n) => self.ints.get(&n),
                None => self.texts.get(k.as_ref()),
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
        self.ints.len() + self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_int;

    #[test]
    fn only_canonical_integers_become_numbers() {
        assert_eq!(canonical_int("0"), Some(0));
        assert_eq!(canonical_int("123"), Some(123));
        assert_eq!(canonical_int("0123"), None, "`0123` is not the text of 123");
        assert_eq!(canonical_int("-1"), None);
        assert_eq!(canonical_int("1a"), None);
        assert_eq!(canonical_int(""), None);
        assert_eq!(canonical_int("99999999999999999999"), None);
    }
}
