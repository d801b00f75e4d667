//! The warehouse's tables: names, folders, columns and types.
//!
//! This is the one definition that the Glue tables in the template and the etl crate's writers
//! share. Column names are the names the writers put in the files (as in the original's output);
//! the Glue catalog stores them lowercased, and Athena matches Parquet columns by name,
//! ignoring case.

/// The two datasets of the warehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Base {
    /// Built by the ETL function from the JSON exports.
    A,
    /// Built by the Spark job from the site events.
    B,
}

impl Base {
    /// The top-level folder of the base in the source and warehouse buckets.
    pub fn folder(self) -> &'static str {
        match self {
            Base::A => "a",
            Base::B => "b",
        }
    }
}

/// The file format of the base-a tables. Parquet is the default; NDJSON writes what the
/// original wrote (every field in place), for readers that need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DataFormat {
    /// Apache Parquet (Snappy), the default.
    #[default]
    Parquet,
    /// Newline-delimited JSON, as the original wrote.
    Ndjson,
}

impl DataFormat {
    /// Its name in `pipeline.yaml` (`parquet`, `ndjson`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Parquet => "parquet",
            DataFormat::Ndjson => "ndjson",
        }
    }

    /// The extension of the table's data object.
    pub fn extension(self) -> &'static str {
        match self {
            DataFormat::Parquet => "parquet",
            DataFormat::Ndjson => "json",
        }
    }

    /// The format named `s` in `pipeline.yaml`, if any.
    pub fn parse(s: &str) -> Option<DataFormat> {
        match s {
            "parquet" => Some(DataFormat::Parquet),
            "ndjson" => Some(DataFormat::Ndjson),
            _ => None,
        }
    }
}

/// A column's type, as the writers produce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Text (`string`).
    String,
    /// A 64-bit integer (`bigint`).
    BigInt,
    /// `boolean`.
    Boolean,
    /// A point in time (`timestamp`).
    Timestamp,
    /// A calendar day (`date`).
    Date,
}

impl ColumnType {
    /// The Hive type name Glue and Athena use.
    pub fn hive(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::BigInt => "bigint",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Date => "date",
        }
    }
}

/// A column of a warehouse table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name.
    pub name: &'static str,
    /// Its type.
    pub kind: ColumnType,
}

const fn col(name: &'static str, kind: ColumnType) -> ColumnDef {
    ColumnDef { name, kind }
}

use ColumnType::{BigInt, Boolean, Date, String as Str, Timestamp};

/// A warehouse table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableDef {
    /// The Glue/Athena table name (lowercase, underscores).
    pub name: &'static str,
    /// The base that writes it (a: the ETL; b: site events).
    pub base: Base,
    /// The folder under the base's folder, as SYSTEM.md names it (`events-by-city`).
    pub folder: &'static str,
    /// What a row is, as the Glue table's description says.
    pub description: &'static str,
    /// Its columns, in order.
    pub columns: &'static [ColumnDef],
}

// How readers find a table's data: the list of data files in one manifest object,
// `<folder>/_symlink_format_manifest/manifest` (Hive's `SymlinkTextInputFormat`, which Athena
// reads: one absolute URI per line). A run writes its files under `<folder>/run=<id>/` and then
// replaces the manifest: one PutObject, which S3 applies whole ("Updates to a single key are
// atomic", S3 user guide, "Amazon S3 data consistency model"), so a reader sees the previous
// run or the new one, never a mix. Both bases: base b's tables are many files that S3 cannot
// rename at once, and base a's one file per table switches without a copy (until issue 26
// base a copied each table over one fixed object, which a run in progress could interleave
// with, and `CopyObject` stops at 5 GB). One manifest holds the whole table, so `events` is
// not partitioned (per-partition manifests would switch one day at a time): its `event_date`
// is a column, each file holds one date, and Athena skips the files whose Parquet statistics
// exclude a date filter.

/// The folder of a table that holds its manifest (the name Delta Lake's
/// manifests use for Athena).
pub const MANIFEST_FOLDER: &str = "_symlink_format_manifest";

/// The manifest's object name in [`MANIFEST_FOLDER`].
pub const MANIFEST_NAME: &str = "manifest";

impl TableDef {
    /// The table's key prefix in the warehouse bucket, with a trailing slash: `a/students/`.
    pub fn prefix(&self) -> String {
        format!("{}/{}/", self.base.folder(), self.folder)
    }

    /// The prefix the catalog names as the table's location: the folder of its manifest.
    pub fn location_prefix(&self) -> String {
        format!("{}{MANIFEST_FOLDER}/", self.prefix())
    }

    /// The Glue/Athena logical id suffix: `events_by_city` -> `EventsByCity`.
    pub fn pascal_name(&self) -> String {
        pascal_case(self.name)
    }
}

/// `events_by_city` or `emr-starter` -> `EventsByCity`, `EmrStarter`: for logical ids.
pub fn pascal_case(text: &str) -> String {
    text.split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The object a writer puts in a table's folder once the table's data is complete. The
/// warehouse bucket notifies the table refresher of these objects only.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// A base's run bookkeeping, outside every table's location: its lease (one run at a time),
/// a record per run, and a claim per triggering message (a duplicate delivery runs once).
///
/// ```
/// use stack_model::warehouse::{lease_key, run_record_key, message_key, Base};
/// assert_eq!(lease_key(Base::A), "a/_runs/lease.json");
/// assert_eq!(run_record_key(Base::B, "20261207T050000Z-abc123"), "b/_runs/20261207T050000Z-abc123.json");
/// assert_eq!(message_key(Base::A, "m-1"), "a/_runs/messages/m-1.json");
/// ```
pub fn runs_folder(base: Base) -> String {
    format!("{}/_runs/", base.folder())
}

/// The base's lease: which run may write its tables now ([`runs_folder`]).
pub fn lease_key(base: Base) -> String {
    format!("{}lease.json", runs_folder(base))
}

/// The record of one run of the base: its state, counts and error ([`runs_folder`]).
pub fn run_record_key(base: Base, run: &str) -> String {
    format!("{}{run}.json", runs_folder(base))
}

/// The claim of one triggering message (its SNS message id) on the base ([`runs_folder`]).
pub fn message_key(base: Base, message_id: &str) -> String {
    format!("{}messages/{message_id}.json", runs_folder(base))
}

/// The column that holds, as one JSON object, the fields of an export that the contract does
/// not name (the original passed every student and subject field through). Null when a row
/// has none. Athena reads them with `json_extract_scalar(extra, '$.Field')`.
pub const EXTRA_COLUMN: &str = "extra";

/// Every table of the warehouse.
pub const TABLES: &[TableDef] = &[
    TableDef {
        name: "students",
        base: Base::A,
        folder: "students",
        description: "Students with their course and university names",
        columns: &[
            col("Id", Str),
            col("Date", Str),
            col("State", Str),
            col("City", Str),
            col("University", Str),
            col("Course", Str),
            col("SignupSource", Str),
            col(EXTRA_COLUMN, Str),
        ],
    },
    TableDef {
        name: "follows",
        base: Base::A,
        folder: "follows",
        description: "Subjects followed by students",
        columns: &[
            col("StudentId", Str),
            col("Subject", Str),
            col("Date", Str),
            col(EXTRA_COLUMN, Str),
        ],
    },
    TableDef {
        name: "sessions",
        base: Base::A,
        folder: "sessions",
        description: "Student sessions",
        columns: &[
            col("StudentId", Str),
            col("StartTime", Str),
            col("Client", Str),
        ],
    },
    TableDef {
        name: "subscriptions",
        base: Base::A,
        folder: "subscriptions",
        description: "Student subscription payments",
        columns: &[col("StudentId", Str), col("Date", Str), col("Type", Str)],
    },
    TableDef {
        name: "events",
        base: Base::B,
        folder: "events",
        description: "Site events with student id and client type, and their date",
        columns: &[
            col("at", Str),
            col("event_time", Timestamp),
            col("browser", Str),
            col("carrier", Str),
            col("country", Str),
            col("custom_1", Str),
            col("custom_2", Str),
            col("custom_3", Str),
            col("custom_4", Str),
            col("device_new", Boolean),
            col("install_uuid", Str),
            col("language", Str),
            col("library_ver", Str),
            col("model", Str),
            col("name", Str),
            col("nth", BigInt),
            col("os_ver", Str),
            col("platform", Str),
            col("session_uuid", Str),
            col("type", Str),
            col("user_type", Str),
            col("uuid", Str),
            col("page_name", Str),
            col("page_category", Str),
            col("page_category_1", Str),
            col("page_category_2", Str),
            col("page_category_3", Str),
            col("last_accessed_url", Str),
            col("first_accessed_page", Str),
            col("marketing_source", Str),
            col("marketing_medium", Str),
            col("marketing_campaign", Str),
            col("student_id", Str),
            col("client_type", Str),
            col("event_date", Date),
        ],
    },
    TableDef {
        name: "events_by_city",
        base: Base::B,
        folder: "events-by-city",
        description: "Events per city of the student",
        columns: &[col("city", Str), col("events", BigInt)],
    },
    TableDef {
        name: "events_by_state",
        base: Base::B,
        folder: "events-by-state",
        description: "Events per state of the student",
        columns: &[col("state", Str), col("events", BigInt)],
    },
    TableDef {
        name: "sessions_by_campaign",
        base: Base::B,
        folder: "sessions-by-campaign",
        description: "Distinct sessions (and events) per marketing campaign",
        columns: &[
            col("marketing_source", Str),
            col("marketing_medium", Str),
            col("marketing_campaign", Str),
            col("sessions", BigInt),
            col("events", BigInt),
        ],
    },
    TableDef {
        name: "events_by_pagename",
        base: Base::B,
        folder: "events-by-pagename",
        description: "Visits per page",
        columns: &[col("page_name", Str), col("visits", BigInt)],
    },
    TableDef {
        name: "events_by_client_type",
        base: Base::B,
        folder: "events-by-client-type",
        description: "Events per client type",
        columns: &[col("client_type", Str), col("events", BigInt)],
    },
    TableDef {
        name: "events_by_university",
        base: Base::B,
        folder: "events-by-university",
        description: "Events per university (custom_1)",
        columns: &[col("custom_1", Str), col("events", BigInt)],
    },
    TableDef {
        name: "events_by_course",
        base: Base::B,
        folder: "events-by-course",
        description: "Events per course (custom_2)",
        columns: &[col("custom_2", Str), col("events", BigInt)],
    },
];

/// The tables of one base, in declaration order.
pub fn tables_of(base: Base) -> impl Iterator<Item = &'static TableDef> {
    TABLES.iter().filter(move |t| t.base == base)
}

/// A table by its Glue name.
pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn bases_hold_the_tables_system_md_lists() {
        let a: Vec<_> = tables_of(Base::A).map(|t| t.name).collect();
        assert_eq!(a, ["students", "follows", "sessions", "subscriptions"]);
        assert_eq!(tables_of(Base::B).count(), 8);
        assert_eq!(
            table("events_by_city").unwrap().prefix(),
            "b/events-by-city/"
        );
    }

    #[test]
    fn names_folders_and_columns_are_unique_and_athena_safe() {
        let mut names = HashSet::new();
        let mut prefixes = HashSet::new();
        for t in TABLES {
            assert!(names.insert(t.name), "duplicate table {}", t.name);
            assert!(
                prefixes.insert(t.prefix()),
                "duplicate folder {}",
                t.prefix()
            );
            assert!(t.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            let mut cols = HashSet::new();
            for c in t.columns {
                // Glue lowercases column names: two that differ only in case would collide.
                assert!(
                    cols.insert(c.name.to_ascii_lowercase()),
                    "{}.{}",
                    t.name,
                    c.name
                );
            }
        }
        assert_eq!(
            table("events_by_client_type").unwrap().pascal_name(),
            "EventsByClientType"
        );
    }
}
