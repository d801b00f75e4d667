//! The four fact tables: how each record becomes a row.

use std::borrow::Cow;

use smallvec::SmallVec;

use super::dimension::{Dimension, DimensionKind, Joined};
use crate::error::EtlError;
use crate::json_array::Element;
use crate::record::{is_key, kind_of, Raw};
use crate::short_eq::short_eq;
use crate::warehouse::{self, TableDef};

/// One output field: its name, its column in the table's contract (`None`: it passes
/// through, into `extra`), and its raw JSON value.
#[derive(Clone, Debug)]
pub struct Field<'a> {
    pub name: Cow<'a, str>,
    pub col: Option<u8>,
    pub value: Raw<'a>,
}

/// A transformed row, fields in output order, each name once (see [`set`]).
pub type Row<'a> = SmallVec<[Field<'a>; 8]>;

/// The dimensions the facts join to.
pub struct Dimensions<'d> {
    pub courses: &'d Dimension,
    pub universities: &'d Dimension,
    pub subjects: &'d Dimension,
}

/// The base-a tables the ETL writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Students,
    Follows,
    Sessions,
    Subscriptions,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Students,
        Table::Follows,
        Table::Sessions,
        Table::Subscriptions,
    ];

    /// The export this table is made from, in the source bucket.
    pub fn source_key(self) -> &'static str {
        match self {
            Table::Students => "a/students.json",
            Table::Follows => "a/student_follow_subject.json",
            Table::Sessions => "a/sessions.json",
            Table::Subscriptions => "a/subscriptions.json",
        }
    }

    /// The table's contract: name, folder, columns.
    pub fn def(self) -> &'static TableDef {
        let name = match self {
            Table::Students => "students",
            Table::Follows => "follows",
            Table::Sessions => "sessions",
            Table::Subscriptions => "subscriptions",
        };
        warehouse::table(name).expect("every ETL table is in the warehouse contract")
    }

    /// The column an output field goes to, by the contract's order (see the test that pins
    /// these against `warehouse::TABLES`).
    fn col(self, name: &str) -> Option<u8> {
        match self {
            Table::Students => match name {
                "Id" => Some(0),
                "Date" => Some(1),
                "State" => Some(2),
                "City" => Some(3),
                "University" => Some(4),
                "Course" => Some(5),
                "SignupSource" => Some(6),
                _ => None,
            },
            Table::Follows => match name {
                "StudentId" => Some(0),
                "Subject" => Some(1),
                "Date" => Some(2),
                _ => None,
            },
            Table::Sessions => match name {
                "StudentId" => Some(0),
                "StartTime" => Some(1),
                "Client" => Some(2),
                _ => None,
            },
            Table::Subscriptions => match name {
                "StudentId" => Some(0),
                "Date" => Some(1),
                "Type" => Some(2),
                _ => None,
            },
        }
    }

    /// Transforms one record into `row` (cleared first). The row borrows from the record
    /// (`'x`) and the dimensions (`'d`); `Record` is invariant in its lifetime (it holds a
    /// SmallVec), hence three lifetimes.
    pub fn transform<'a, 'x: 'a, 'd: 'a>(
        self,
        e: &Element<'x>,
        dims: &Dimensions<'d>,
        row: &mut Row<'a>,
    ) -> Result<(), EtlError> {
        row.clear();
        match self {
            Table::Students => {
                let mut id = None;
                for (name, value) in e.record.fields.iter().map(|(n, v)| (n, *v)) {
                    match name.as_ref() {
                        "CourseId" => {
                            let course = dims.courses.lookup(e, "CourseId", value)?;
                            self.merge(row, course, "Course");
                        }
                        "UniversityId" => {
                            let university = dims.universities.lookup(e, "UniversityId", value)?;
                            self.merge(row, university, "University");
                        }
                        "RegisteredDate" => push_col(row, Cow::Borrowed("Date"), Some(1), value),
                        "Id" => {
                            id = Some(value);
                            push_col(row, Cow::Borrowed("Id"), Some(0), value);
                        }
                        "State" => push_col(row, Cow::Borrowed("State"), Some(2), value),
                        "City" => push_col(row, Cow::Borrowed("City"), Some(3), value),
                        "SignupSource" => {
                            push_col(row, Cow::Borrowed("SignupSource"), Some(6), value)
                        }
                        _ => self.push(row, name.clone(), value),
                    }
                }
                self.required_key(e, "Id", id)?;
            }
            Table::Follows => {
                let mut id = None;
                for (name, value) in e.record.fields.iter().map(|(n, v)| (n, *v)) {
                    match name.as_ref() {
                        "SubjectId" => {
                            let subject = dims.subjects.lookup(e, "SubjectId", value)?;
                            self.merge(row, subject, "Subject");
                        }
                        "FollowDate" => push_col(row, Cow::Borrowed("Date"), Some(2), value),
                        "StudentId" => {
                            id = Some(value);
                            push_col(row, Cow::Borrowed("StudentId"), Some(0), value);
                        }
                        _ => self.push(row, name.clone(), value),
                    }
                }
                self.required_key(e, "StudentId", id)?;
            }
            Table::Sessions | Table::Subscriptions => {
                picked_row(row, self.output_names(), self.pick(e)?);
            }
        }
        Ok(())
    }

    /// The work of reading `bytes` of this table's export, in bytes of sessions: what
    /// [`crate::run::Split::Auto`] cuts into equal shares and the workers take most first.
    /// A byte of students or follows costs about twice a byte of sessions (joins, more
    /// columns, `extra`): measured alone at 1M students, 3.4 and 3.0 ns of CPU a byte against
    /// 1.7 (docs/BENCHMARKS.md). Weighed by bytes alone, a follows span started last ran
    /// alone for a tenth of the run.
    pub fn work(self, bytes: u64) -> u64 {
        let quarters: u64 = match self {
            Table::Students => 8,
            Table::Follows => 7,
            Table::Sessions | Table::Subscriptions => 4,
        };
        bytes.saturating_mul(quarters) / 4
    }

    /// The dimensions [`Table::transform`] joins this table's records to.
    pub fn joins(self) -> &'static [DimensionKind] {
        match self {
            Table::Students => &[DimensionKind::Courses, DimensionKind::Universities],
            Table::Follows => &[DimensionKind::Subjects],
            Table::Sessions | Table::Subscriptions => &[],
        }
    }

    /// Whether the table's rows are three fields picked by name ([`Table::pick`]), in the
    /// columns of [`Table::output_names`], so a row need not be built.
    pub fn picks_three(self) -> bool {
        matches!(self, Table::Sessions | Table::Subscriptions)
    }

    /// For sessions and subscriptions: the three fields picked by name, in the order of
    /// [`Table::output_names`] (`None`: absent); the rest of the record is dropped. The same
    /// fields [`Table::transform`] puts in their row.
    #[inline]
    pub fn pick<'x>(self, e: &Element<'x>) -> Result<[Option<Raw<'x>>; 3], EtlError> {
        let (time_field, kind_field) = match self {
            Table::Sessions => ("SessionStartTime", "StudentClient"),
            _ => ("PaymentDate", "PlanType"),
        };
        let (mut id, mut time, mut kind) = (None, None, None);
        for (name, value) in e.record.fields.iter().map(|(n, v)| (n, *v)) {
            // Inline comparisons: `==` with names not known at compile time calls `memcmp`
            // (see `set`).
            let n = name.as_bytes();
            if short_eq(n, b"StudentId") {
                id = Some(value);
            } else if short_eq(n, time_field.as_bytes()) {
                time = Some(value);
            } else if short_eq(n, kind_field.as_bytes()) {
                kind = Some(value);
            }
        }
        let id = self.required_key(e, "StudentId", id)?;
        Ok([Some(id), time, kind])
    }

    fn push<'a>(self, row: &mut Row<'a>, name: Cow<'a, str>, value: Raw<'a>) {
        let col = self.col(&name);
        set(row, Field { name, col, value });
    }

    /// The row's own key: what the row is about, and what other tables join on.
    fn key_name(self) -> &'static str {
        match self {
            Table::Students => "Id",
            _ => "StudentId",
        }
    }

    /// The join: the dimension's `Name` under `as_name` and its other fields (subjects only),
    /// in the record's order;
    /// nothing when there is no match (the key field is dropped either way). A dimension's
    /// field named as the row's key is left out: where the original let a subject's
    /// `StudentId` overwrite the follow's, this project keeps the follow's
    /// (docs/SEMANTICS.md, "Colliding names").
    fn merge<'a>(self, row: &mut Row<'a>, joined: Option<Joined<'a>>, as_name: &'static str) {
        let Some(joined) = joined else { return };
        let key = self.key_name();
        let others = |fields: &'a [(Box<str>, Box<str>)], row: &mut Row<'a>| {
            for (n, v) in fields {
                if n.as_ref() != key {
                    self.push(row, Cow::Borrowed(n), Raw::parsed(v));
                }
            }
        };
        others(joined.before, row);
        self.push(row, Cow::Borrowed(as_name), joined.name);
        others(joined.after, row);
    }

    /// The output names of a three-column table (sessions, subscriptions).
    pub fn output_names(self) -> [&'static str; 3] {
        match self {
            Table::Sessions => ["StudentId", "StartTime", "Client"],
            _ => ["StudentId", "Date", "Type"],
        }
    }

    /// Checks the record's own id: present, and a string or an integer. The check is inlined
    /// (every fact record makes it) and the refusal is not.
    #[inline]
    fn required_key<'x>(
        self,
        e: &Element<'x>,
        field: &str,
        value: Option<Raw<'x>>,
    ) -> Result<Raw<'x>, EtlError> {
        match value {
            Some(v) if is_key(v) => Ok(v),
            _ => Err(key_refusal(e, field, value)),
        }
    }
}

/// Why a record's own id refuses it: missing, null, or neither a string nor an integer.
#[cold]
#[inline(never)]
fn key_refusal(e: &Element<'_>, field: &str, value: Option<Raw<'_>>) -> EtlError {
    let Some(value) = value else {
        return e
            .at
            .error(format!("missing required field `{field}`"))
            .into();
    };
    if value.get() == "null" {
        return e
            .at
            .error_at(value, format!("required field `{field}` is null"))
            .into();
    }
    let kind = kind_of(value);
    e.at.error_at(
        value,
        format!("key field `{field}` must be a string or an integer, found {kind}"),
    )
    .into()
}

/// The row of three picked fields ([`Table::pick`]) in columns 0 to 2, into `row` (empty):
/// three distinct names, so nothing collides and no [`set`] is needed.
pub fn picked_row<'a>(row: &mut Row<'a>, names: [&'a str; 3], values: [Option<Raw<'a>>; 3]) {
    for ((col, name), value) in (0u8..).zip(names).zip(values) {
        if let Some(value) = value {
            row.push(Field {
                name: Cow::Borrowed(name),
                col: Some(col),
                value,
            });
        }
    }
}

fn push_col<'a>(row: &mut Row<'a>, name: Cow<'a, str>, col: Option<u8>, value: Raw<'a>) {
    set(row, Field { name, col, value });
}

/// Writes a field into the row as a JavaScript object assignment does, which is what the
/// original's object spread did (docs/SEMANTICS.md, "Colliding names"): a name already in the
/// row keeps its position and takes the new value; a new name goes last. This covers a
/// record's duplicate keys (`JSON.parse` keeps the last), a renamed field meeting a field of
/// that name (`RegisteredDate` -> `Date` beside a `Date`), and a joined field meeting a field
/// of the row (a student's own `Course`).
///
/// Rows have a handful of fields, so a scan beats a map; names are compared inline
/// ([`short_eq`]), as `==` on strings calls `memcmp`, which cost more than the comparisons.
fn set<'a>(row: &mut Row<'a>, field: Field<'a>) {
    let name = field.name.as_bytes();
    match row.iter_mut().find(|f| short_eq(f.name.as_bytes(), name)) {
        Some(existing) => existing.value = field.value,
        None => row.push(field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_warehouse_contract() {
        for table in Table::ALL {
            let def = table.def();
            let data_columns: Vec<&str> = def
                .columns
                .iter()
                .map(|c| c.name)
                .filter(|n| *n != warehouse::EXTRA_COLUMN)
                .collect();
            for (i, name) in data_columns.iter().enumerate() {
                assert_eq!(table.col(name), Some(i as u8), "{}.{name}", def.name);
            }
            assert_eq!(table.col("Unknown"), None);
            assert!(def
                .columns
                .iter()
                .all(|c| c.kind == warehouse::ColumnType::String));
        }
    }
}
