//! The markers of both bases, and the rule the table refresher applies.
//!
//! Each table is published by switching its manifest ([`crate::publish`]); its `_SUCCESS`
//! marker then names the run. The refresher starts the crawler only when every table of the
//! base carries a marker of the same run, so the crawler never sees a half-published base.

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::storage::Storage;
use crate::warehouse::{tables_of, Base, TableDef, SUCCESS_MARKER};

/// The table's marker.
pub fn marker_key(table: &TableDef) -> String {
    format!("{}{SUCCESS_MARKER}", table.prefix())
}

/// What a marker says: written per table by whatever publishes it (`object` is the table's
/// manifest; the ETL's of older versions named its one data object); markers of older Spark
/// jobs were empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub run: String,
    pub table: String,
    pub rows: u64,
    pub format: String,
    pub object: String,
    /// What built the run: base a's `function` or `sharded` engine (issue 29). Markers of
    /// base b and of older versions have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// Parses a marker's body; `None` for an empty or foreign marker (no run id).
pub fn parse_marker(body: &[u8]) -> Option<Marker> {
    serde_json::from_slice(body).ok()
}

/// The table and base a warehouse key is the marker of, if it is one.
pub fn marker_table(key: &str) -> Option<&'static TableDef> {
    crate::warehouse::TABLES
        .iter()
        .find(|t| marker_key(t) == key)
}

/// Each table with its marker's body (`None`: no marker object).
pub type Markers = Vec<(&'static TableDef, Option<Vec<u8>>)>;

/// The marker of every table of `base`.
pub fn read_markers(warehouse: &dyn Storage, base: Base) -> Result<Markers, StorageError> {
    tables_of(base)
        .map(|t| Ok((t, warehouse.get(&marker_key(t))?)))
        .collect()
}

/// What the refresher does about a base.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Every table has a marker of the same run (or, for markers without runs, every table
    /// has one): start the crawler.
    Crawl {
        #[serde(serialize_with = "base_folder")]
        base: Base,
        run: Option<String>,
    },
    /// Some tables have no marker yet.
    WaitForTables {
        #[serde(serialize_with = "base_folder")]
        base: Base,
        missing: Vec<&'static str>,
    },
    /// Every table has a marker, but not of one run: a run is still publishing.
    WaitForRun {
        #[serde(serialize_with = "base_folder")]
        base: Base,
        runs: Vec<String>,
    },
}

fn base_folder<S: serde::Serializer>(base: &Base, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(base.folder())
}

/// Decides from the markers of every table of `base` (`None`: no marker object).
pub fn decide(base: Base, markers: &[(&'static TableDef, Option<Vec<u8>>)]) -> Decision {
    let missing: Vec<&'static str> = markers
        .iter()
        .filter(|(_, m)| m.is_none())
        .map(|(t, _)| t.name)
        .collect();
    let expected = tables_of(base).count();
    if !missing.is_empty() || markers.len() < expected {
        return Decision::WaitForTables { base, missing };
    }
    let mut runs: Vec<Option<String>> = markers
        .iter()
        .map(|(_, m)| m.as_deref().and_then(parse_marker).map(|m| m.run))
        .collect();
    runs.sort();
    runs.dedup();
    if runs.len() == 1 {
        Decision::Crawl {
            base,
            run: runs.pop().flatten(),
        }
    } else {
        Decision::WaitForRun {
            base,
            runs: runs
                .into_iter()
                .map(|r| r.unwrap_or_else(|| "(no run id)".into()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::table;

    fn marker(run: &str) -> Option<Vec<u8>> {
        Some(
            serde_json::to_vec(&Marker {
                run: run.into(),
                table: "t".into(),
                rows: 1,
                format: "parquet".into(),
                object: "o".into(),
                engine: None,
            })
            .unwrap(),
        )
    }

    fn base_a(runs: [Option<&str>; 4]) -> Decision {
        let markers: Vec<_> = ["students", "follows", "sessions", "subscriptions"]
            .iter()
            .zip(runs)
            .map(|(t, r)| (table(t).unwrap(), r.and_then(marker)))
            .collect();
        decide(Base::A, &markers)
    }

    #[test]
    fn the_crawler_starts_only_when_every_table_has_the_same_run() {
        assert_eq!(
            base_a([Some("r2"), Some("r2"), Some("r2"), Some("r2")]),
            Decision::Crawl {
                base: Base::A,
                run: Some("r2".into())
            }
        );
        assert_eq!(
            base_a([Some("r2"), Some("r2"), Some("r1"), Some("r1")]),
            Decision::WaitForRun {
                base: Base::A,
                runs: vec!["r1".into(), "r2".into()]
            }
        );
        assert_eq!(
            base_a([Some("r2"), None, Some("r2"), None]),
            Decision::WaitForTables {
                base: Base::A,
                missing: vec!["follows", "subscriptions"]
            }
        );
    }

    /// Issue 11: a rerun of the Spark job publishes its eight tables one after the other; the
    /// first new marker beside the previous run's (or an older job's empty ones) is not a
    /// complete base.
    #[test]
    fn a_spark_rerun_is_complete_only_when_all_eight_markers_name_it() {
        let base_b: Vec<_> = tables_of(Base::B).collect();
        assert_eq!(base_b.len(), 8);
        let with = |runs: &[Option<&str>]| -> Decision {
            let markers: Vec<_> = base_b
                .iter()
                .zip(runs)
                .map(|(t, r)| (*t, Some(r.and_then(marker).unwrap_or_default())))
                .collect();
            decide(Base::B, &markers)
        };
        let mut runs = [Some("r1"); 8];
        assert_eq!(
            with(&runs),
            Decision::Crawl {
                base: Base::B,
                run: Some("r1".into())
            }
        );
        runs[0] = Some("r2");
        assert_eq!(
            with(&runs),
            Decision::WaitForRun {
                base: Base::B,
                runs: vec!["r1".into(), "r2".into()]
            }
        );
        let mut after_old_job = [None; 8];
        after_old_job[0] = Some("r2");
        assert_eq!(
            with(&after_old_job),
            Decision::WaitForRun {
                base: Base::B,
                runs: vec!["(no run id)".into(), "r2".into()]
            }
        );
    }

    #[test]
    fn empty_spark_markers_count_as_complete() {
        let markers: Vec<_> = tables_of(Base::B).map(|t| (t, Some(Vec::new()))).collect();
        assert_eq!(
            decide(Base::B, &markers),
            Decision::Crawl {
                base: Base::B,
                run: None
            }
        );
        let mut partial = markers.clone();
        partial.pop();
        assert!(matches!(
            decide(Base::B, &partial),
            Decision::WaitForTables { .. }
        ));
    }

    #[test]
    fn markers_are_found_by_their_keys() {
        assert_eq!(
            marker_table("a/students/_SUCCESS").unwrap().name,
            "students"
        );
        assert_eq!(
            marker_table("b/events-by-city/_SUCCESS").unwrap().name,
            "events_by_city"
        );
        assert!(marker_table("a/students/run=r1/data.parquet").is_none());
    }
}
