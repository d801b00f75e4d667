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
/// the base's folder) and writes its marker (naming `engine`, when given); returns the runs
/// the manifest named before.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub fn switch(
    warehouse: &dyn Storage,
    def: &TableDef,
    run: &str,
    base: &str,
    files: &[String],
    rows: u64,
    format: &str,
    engine: Option<&str>,
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
        engine: engine.map(str::to_owned),
    };
    warehouse.put(
        &format!("{}{SUCCESS_MARKER}", def.prefix()),
        &serde_json::to_vec(&marker).expect("a marker serializes"),
    )?;
    Ok(previous)
}

/// One table of a base to switch to a run: its files (keys) and rows.
pub struct Switch<'a> {
    pub def: &'static TableDef,
    pub files: &'a [String],
    pub rows: u64,
}

/// A switch of a base's tables that stopped at `table`. The tables switched before it were put
/// back to what they named (their manifests and markers as they were), but those in
/// `not_put_back`: a reader of the base then sees the previous run everywhere, or, when
/// putting back failed too, those tables of this run.
#[derive(Debug)]
pub struct SwitchFailed {
    pub table: &'static str,
    pub source: StorageError,
    pub not_put_back: Vec<&'static str>,
}

/// A table's manifest and marker as they were (`None`: none).
type Named = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Switches every table of `tables` to `run` ([`switch`], in order); returns, for each, the
/// runs its manifest named before. When one switch fails (after the SDK's retries), the tables
/// already switched are put back, so that the base's tables and markers name one run.
pub fn switch_all(
    warehouse: &dyn Storage,
    run: &str,
    base: &str,
    format: &str,
    tables: &[Switch<'_>],
    engine: Option<&str>,
) -> Result<Vec<Vec<String>>, SwitchFailed> {
    // What each table names now, read before anything changes.
    let mut before: Vec<Named> = Vec::new();
    for t in tables {
        let read = |key: &str| warehouse.get(key);
        let marker = format!("{}{SUCCESS_MARKER}", t.def.prefix());
        match (read(&manifest_key(t.def)), read(&marker)) {
            (Ok(m), Ok(k)) => before.push((m, k)),
            (Err(source), _) | (_, Err(source)) => {
                return Err(SwitchFailed {
                    table: t.def.name,
                    source,
                    not_put_back: vec![],
                })
            }
        }
    }
    let mut previous = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        match switch(warehouse, t.def, run, base, t.files, t.rows, format, engine) {
            Ok(p) => previous.push(p),
            Err(source) => {
                // This table too: its manifest may have been written before its marker failed.
                let not_put_back = tables[..=i]
                    .iter()
                    .zip(&before)
                    .filter(|(t, (manifest, marker))| !put_back(warehouse, t.def, manifest, marker))
                    .map(|(t, _)| t.def.name)
                    .collect();
                return Err(SwitchFailed {
                    table: t.def.name,
                    source,
                    not_put_back,
                });
            }
        }
    }
    Ok(previous)
}

/// Writes back a table's manifest and marker as they were (deletes them if there were none);
/// whether that worked.
fn put_back(
    warehouse: &dyn Storage,
    def: &TableDef,
    manifest: &Option<Vec<u8>>,
    marker: &Option<Vec<u8>>,
) -> bool {
    let one = |key: String, body: &Option<Vec<u8>>| {
        if warehouse.get(&key)? == *body {
            return Ok(()); // never written (the write that failed)
        }
        match body {
            Some(b) => warehouse.put(&key, b),
            None => warehouse.delete(&[key]),
        }
    };
    // The marker first: a marker naming the previous run beside a manifest of this run is no
    // complete base to the refresher, while the reverse would be one.
    let marker_key = format!("{}{SUCCESS_MARKER}", def.prefix());
    match one(marker_key, marker).and_then(|()| one(manifest_key(def), manifest)) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(table = def.name, error = %e, "could not put the table back to the previous run");
            false
        }
    }
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

    fn switches<'a>(tables: &[&'static TableDef], files: &'a [Vec<String>]) -> Vec<Switch<'a>> {
        tables
            .iter()
            .zip(files)
            .map(|(def, f)| Switch {
                def,
                files: f,
                rows: 1,
            })
            .collect()
    }

    /// Issue 26: a switch that fails at the third table puts the first two back, so every
    /// table and marker of the base names the previous run.
    #[test]
    fn a_failed_switch_puts_the_switched_tables_back() {
        let dir = tempfile::tempdir().unwrap();
        let tables: Vec<&'static TableDef> =
            crate::warehouse::tables_of(crate::warehouse::Base::A).collect();
        let files: Vec<Vec<String>> = tables
            .iter()
            .map(|t| vec![format!("{}data.parquet", run_folder(t, "r1"))])
            .collect();
        let local = crate::storage::LocalDir::new(dir.path());
        switch_all(
            &local,
            "r1",
            "s3://w/a",
            "parquet",
            &switches(&tables, &files),
            Some("function"),
        )
        .unwrap();
        let before: Vec<_> = tables
            .iter()
            .map(|t| {
                (
                    local.get(&manifest_key(t)).unwrap(),
                    local.get(&format!("{}_SUCCESS", t.prefix())).unwrap(),
                )
            })
            .collect();
        let failing =
            crate::storage::FaultyDir::new(dir.path()).failing_put(&manifest_key(tables[2]));
        let r2: Vec<Vec<String>> = tables
            .iter()
            .map(|t| vec![format!("{}data.parquet", run_folder(t, "r2"))])
            .collect();
        let e = switch_all(
            &failing,
            "r2",
            "s3://w/a",
            "parquet",
            &switches(&tables, &r2),
            None,
        )
        .unwrap_err();
        assert_eq!(e.table, tables[2].name);
        assert!(e.not_put_back.is_empty(), "{:?}", e.not_put_back);
        let after: Vec<_> = tables
            .iter()
            .map(|t| {
                (
                    local.get(&manifest_key(t)).unwrap(),
                    local.get(&format!("{}_SUCCESS", t.prefix())).unwrap(),
                )
            })
            .collect();
        assert_eq!(after, before, "every table names r1 again");
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
