//! One ETL run: read the exports, stage the four tables, publish them, write the markers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::error::{EtlError, StorageError};
use crate::json_array::ArrayReader;
use crate::sink;
use crate::snapshot::{data_key, marker_key, staging_key, Marker, STAGING};
use crate::storage::Storage;
use crate::transform::tables::Dimensions;
use crate::transform::{Dimension, DimensionKind, Row, Table};
use crate::warehouse::DataFormat;

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub format: DataFormat,
    /// Names the staging folder and the markers; sortable by time.
    pub run_id: String,
    /// Tables staged at once (each is one stream: read, transform, write).
    pub workers: usize,
}

impl Options {
    pub fn new(format: DataFormat) -> Self {
        Options {
            format,
            run_id: new_run_id(),
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 4),
        }
    }
}

/// `20261124T093000Z-4f1c2a`: UTC time, then random hex so concurrent runs never share one.
pub fn new_run_id() -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        &rand[..6]
    )
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub run: String,
    pub format: &'static str,
    pub dimensions: Vec<DimensionReport>,
    pub tables: Vec<TableReport>,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DimensionReport {
    pub export: &'static str,
    pub ids: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableReport {
    pub table: &'static str,
    pub rows: u64,
    pub object: String,
}

/// Runs the ETL from `source` (holding `a/<entity>.json`) into `warehouse`.
///
/// Nothing under a table's location changes unless every table was staged; see
/// [`crate::snapshot`] for the layout and what a failure leaves behind.
pub fn run(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
) -> Result<Report, EtlError> {
    let started = Instant::now();
    check_inputs(source)?;
    let mut dims = Vec::with_capacity(3);
    for kind in DimensionKind::ALL {
        dims.push(read_dimension(source, kind)?);
    }
    let dimensions = DimensionKind::ALL
        .iter()
        .zip(&dims)
        .map(|(k, d)| DimensionReport {
            export: k.source_key(),
            ids: d.len(),
        })
        .collect();
    let joined = Dimensions {
        courses: &dims[0],
        universities: &dims[1],
        subjects: &dims[2],
    };
    let staged = stage_all(source, warehouse, &joined, opts);
    let rows = match staged {
        Ok(rows) => rows,
        Err(e) => {
            remove_staging(warehouse, &opts.run_id);
            return Err(e);
        }
    };
    let tables = publish(warehouse, opts, &rows)?;
    remove_staging(warehouse, &opts.run_id);
    Ok(Report {
        run: opts.run_id.clone(),
        format: opts.format.as_str(),
        dimensions,
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn all_exports() -> impl Iterator<Item = &'static str> {
    DimensionKind::ALL
        .iter()
        .map(|d| d.source_key())
        .chain(Table::ALL.iter().map(|t| t.source_key()))
}

/// Fails before any work when an export is missing, naming it.
fn check_inputs(source: &dyn Storage) -> Result<(), EtlError> {
    let present = source.list("a/")?;
    for key in all_exports() {
        if present.binary_search_by(|k| k.as_str().cmp(key)).is_err() {
            return Err(EtlError::MissingInput {
                file: source.describe(key),
            });
        }
    }
    Ok(())
}

fn open(
    source: &dyn Storage,
    key: &str,
) -> Result<ArrayReader<Box<dyn std::io::Read + Send>>, EtlError> {
    match source.open(key) {
        Ok(r) => Ok(ArrayReader::new(r, source.describe(key))),
        Err(StorageError::NotFound(file)) => Err(EtlError::MissingInput { file }),
        Err(e) => Err(e.into()),
    }
}

fn read_dimension(source: &dyn Storage, kind: DimensionKind) -> Result<Dimension, EtlError> {
    let mut dim = Dimension::new(kind);
    open(source, kind.source_key())?.for_each(|e| dim.add(e))?;
    dim.seal();
    Ok(dim)
}

/// Stages the four tables, `opts.workers` at a time, biggest export first. The first
/// failure stops the others.
fn stage_all(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    dims: &Dimensions<'_>,
    opts: &Options,
) -> Result<Vec<(Table, u64)>, EtlError> {
    // Sessions are 10 rows per student, follows 5: start them first.
    const ORDER: [Table; 4] = [
        Table::Sessions,
        Table::Follows,
        Table::Students,
        Table::Subscriptions,
    ];
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ORDER.len() || stop.load(Ordering::Relaxed) {
                    break;
                }
                let table = ORDER[i];
                let r = stage_one(source, warehouse, dims, opts, table, &stop);
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                results
                    .lock()
                    .expect("no worker panics holding it")
                    .push((table, r));
            });
        }
    });
    let mut rows = Vec::new();
    let mut first_error = None;
    for (table, r) in results.into_inner().expect("workers are done") {
        match r {
            Ok(n) => rows.push((table, n)),
            Err(EtlError::Cancelled) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if rows.len() == ORDER.len() => Ok(rows),
        None => Err(EtlError::Cancelled),
    }
}

fn stage_one(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    dims: &Dimensions<'_>,
    opts: &Options,
    table: Table,
    stop: &AtomicBool,
) -> Result<u64, EtlError> {
    let reader = open(source, table.source_key())?;
    let key = staging_key(&opts.run_id, table.def(), opts.format);
    let write_error = |e: std::io::Error| EtlError::Write {
        table: table.def().name.to_owned(),
        message: format!("{}: {e}", warehouse.describe(&key)),
    };
    let out = warehouse.create(&key)?;
    let mut sink = sink::for_format(opts.format, table, out).map_err(write_error)?;
    reader.for_each(|e| {
        if stop.load(Ordering::Relaxed) {
            return Err(EtlError::Cancelled);
        }
        if table.picks_three() {
            let values = table.pick(e)?;
            return sink
                .push_three(table.output_names(), values)
                .map_err(write_error);
        }
        let mut row = Row::new();
        table.transform(e, dims, &mut row)?;
        sink.push(&row).map_err(write_error)
    })?;
    sink.finish().map_err(write_error)
}

/// Copies each staged table over its table's object, removes anything else under the
/// table's location, then writes every marker.
fn publish(
    warehouse: &dyn Storage,
    opts: &Options,
    rows: &[(Table, u64)],
) -> Result<Vec<TableReport>, EtlError> {
    let mut done: Vec<String> = Vec::new();
    let mut reports = Vec::new();
    for table in Table::ALL {
        let def = table.def();
        let object = data_key(def, opts.format);
        let fail = |done: &Vec<String>, source| EtlError::Publish {
            table: def.name.to_owned(),
            done: done.clone(),
            source,
        };
        warehouse
            .copy(&staging_key(&opts.run_id, def, opts.format), &object)
            .map_err(|e| fail(&done, e))?;
        // Objects of another format or of the original's layout (`<epoch>.json`) would be
        // read beside the snapshot.
        let marker = marker_key(def);
        let stale: Vec<String> = warehouse
            .list(&def.prefix())
            .map_err(|e| fail(&done, e))?
            .into_iter()
            .filter(|k| *k != object && *k != marker)
            .collect();
        warehouse.delete(&stale).map_err(|e| fail(&done, e))?;
        done.push(def.name.to_owned());
        let n = rows
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n);
        reports.push(TableReport {
            table: def.name,
            rows: n,
            object,
        });
    }
    for r in &reports {
        let def = crate::warehouse::table(r.table).expect("an ETL table");
        let marker = Marker {
            run: opts.run_id.clone(),
            table: r.table.to_owned(),
            rows: r.rows,
            format: opts.format.as_str().to_owned(),
            object: r.object.clone(),
        };
        let body = serde_json::to_vec(&marker).expect("a marker serializes");
        warehouse
            .put(&marker_key(def), &body)
            .map_err(|source| EtlError::Publish {
                table: r.table.to_owned(),
                done: done.clone(),
                source,
            })?;
    }
    Ok(reports)
}

/// Best effort: a leftover staging folder is outside every table and the bucket's
/// lifecycle rule expires it.
fn remove_staging(warehouse: &dyn Storage, run: &str) {
    let prefix = format!("{STAGING}{run}/");
    match warehouse
        .list(&prefix)
        .and_then(|keys| warehouse.delete(&keys))
    {
        Ok(()) => {}
        Err(e) => tracing::warn!(error = %e, "could not remove the staging folder {prefix}"),
    }
}
