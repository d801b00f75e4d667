//! The one publish protocol of both bases (docs/SEMANTICS.md, "Publishing"): a run's folders,
//! the manifest switch, the markers and the removal of older runs. The ETL (base a), the
//! site-events function and the Spark job (base b) publish this way.
//!
//! Each table is the list of files in its manifest, `<base>/<table>/_symlink_format_manifest/manifest`.
//! A run writes its files under `<base>/<table>/run=<run>/`, where no reader looks; once every
//! table of the base is written, each manifest is replaced by one object write (S3 applies a
//! single-key write whole), then the table's `_SUCCESS` marker names the run. The files of the
//! run a manifest named before stay until the next run, for queries already reading them.
//! Nothing is copied at publish: a table of any size switches with one small write (a
//! `CopyObject` of one object stops at 5 GB).

use crate::error::StorageError;
use crate::snapshot::Marker;
use crate::storage::Storage;
use crate::warehouse::{TableDef, MANIFEST_FOLDER, MANIFEST_NAME, SUCCESS_MARKER};

/// `<base>/<table>/run=<run>/`: where a run writes a table's files.
pub fn run_folder(def: &TableDef, run: &str) -> String {
    format!("{}run={run}/", def.prefix())
}

pub fn manifest_key(def: &TableDef) -> String {
    format!("{}{MANIFEST_FOLDER}/{MANIFEST_NAME}", def.prefix())
}

/// The runs whose files a manifest names (`.../run=<id>/...`).
pub fn manifest_runs(text: &str) -> Vec<String> {
    let mut runs: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let at = l.find("/run=")? + 5;
            let id = &l[at..];
            let end = id.find('/')?;
            Some(id[..end].to_string())
        })
        .collect();
    runs.sort();
    runs.dedup();
    runs
}

/// Whether any table already holds files of `run`: a run id names one run.
pub fn run_exists(
    warehouse: &dyn Storage,
    tables: &[&TableDef],
    run: &str,
) -> Result<Option<String>, StorageError> {
    for def in tables {
        let folder = run_folder(def, run);
        if !warehouse.list(&folder)?.is_empty() {
            return Ok(Some(warehouse.describe(&folder)));
        }
    }
    Ok(None)
}

/// Removes what `run` wrote to `def` (a run that did not switch the table leaves nothing).
pub fn remove_run(warehouse: &dyn Storage, def: &TableDef, run: &str) -> Result<(), StorageError> {
    let keys = warehouse.list(&run_folder(def, run))?;
    warehouse.delete(&keys)
}

/// The keys of the files a manifest of `def` names: each line's part from `/<table>/run=` on,
/// under the table's prefix, whatever URI the manifest gives the bucket.
pub fn manifest_keys(def: &TableDef, text: &str) -> Vec<String> {
    let needle = format!("/{}/run=", def.folder);
    text.lines()
        .filter_map(|l| {
            let at = l.find(&needle)?;
            Some(format!("{}{}", def.prefix(), &l[at + needle.len() - 4..]))
        })
        .collect()
}

/// The keys of the files of `def` as its manifest names them now; `None` when the table has
/// no manifest (no run published it yet).
pub fn table_files(
    warehouse: &dyn Storage,
    def: &TableDef,
) -> Result<Option<Vec<String>>, StorageError> {
    Ok(warehouse
        .get(&manifest_key(def))?
        .map(|b| manifest_keys(def, &String::from_utf8_lossy(&b))))
}

/// Switches `def` to `run`'s `files` (keys, named in the manifest with `base` as the URI of
/// the base's folder) and writes its marker; returns the runs the manifest named before.
pub fn switch(
    warehouse: &dyn Storage,
    def: &TableDef,
    run: &str,
    base: &str,
    files: &[String],
    rows: u64,
    format: &str,
) -> Result<Vec<String>, StorageError> {
    let key = manifest_key(def);
    let previous = warehouse
        .get(&key)?
        .map(|b| manifest_runs(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let mut sorted: Vec<&String> = files.iter().collect();
    sorted.sort();
    let folder = format!("{}/", def.base.folder());
    let body: String = sorted
        .iter()
        .map(|f| format!("{base}/{}\n", f.strip_prefix(&folder).unwrap_or(f)))
        .collect();
    warehouse.put(&key, body.as_bytes())?;
    let marker = Marker {
        run: run.to_string(),
        table: def.name.to_string(),
        rows,
        format: format.into(),
        object: key,
    };
    warehouse.put(
        &format!("{}{SUCCESS_MARKER}", def.prefix()),
        &serde_json::to_vec(&marker).expect("a marker serializes"),
    )?;
    Ok(previous)
}

/// Removes everything under the table's folder but its manifest, marker, `run`'s files and
/// the files of the runs in `keep` (the previous run), including the layout from before
/// manifests.
pub fn remove_older_runs(
    warehouse: &dyn Storage,
    def: &TableDef,
    run: &str,
    keep: &[String],
) -> Result<usize, StorageError> {
    let prefix = def.prefix();
    let mut kept: Vec<String> = vec![
        MANIFEST_FOLDER.into(),
        SUCCESS_MARKER.into(),
        format!("run={run}"),
    ];
    kept.extend(keep.iter().map(|r| format!("run={r}")));
    let stale: Vec<String> = warehouse
        .list(&prefix)?
        .into_iter()
        .filter(|k| {
            let first = k[prefix.len()..].split('/').next().unwrap_or("");
            !kept.iter().any(|keep| keep == first)
        })
        .collect();
    warehouse.delete(&stale)?;
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_its_files_keys_whatever_the_buckets_uri() {
        let students = crate::warehouse::table("students").unwrap();
        let text = "s3://w/a/students/run=r2/data.parquet\n\
                    file:/tmp/x/a/students/run=r1/data.json\n";
        assert_eq!(
            manifest_keys(students, text),
            [
                "a/students/run=r2/data.parquet",
                "a/students/run=r1/data.json"
            ]
        );
    }

    #[test]
    fn a_manifest_names_its_runs() {
        let text = "s3://w/b/events/run=r2/day=2019-11-01/part-0.parquet\n\
                    s3://w/b/events/run=r2/day=2019-11-02/part-0.parquet\n\
                    file:/tmp/b/events/run=r1/x.parquet\n";
        assert_eq!(manifest_runs(text), ["r1", "r2"]);
        assert!(manifest_runs("").is_empty());
    }
}
