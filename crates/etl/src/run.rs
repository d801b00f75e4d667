//! One ETL run: take base a's lease, read the exports, write the four tables into this run's
//! folders, then publish them as base b does ([`crate::publish`]): each manifest switched by
//! one write, its marker naming the run, older runs removed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{EtlError, StorageError};
use crate::json_array::ArrayReader;
use crate::lease::{self, Lease, Terms};
use crate::publish;
use crate::sink;
use crate::storage::Storage;
use crate::transform::tables::Dimensions;
use crate::transform::{Dimension, DimensionKind, Row, Table};
use crate::warehouse::{Base, DataFormat};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub format: DataFormat,
    /// Names the run's folders and the markers; sortable by time.
    pub run_id: String,
    /// Tables staged at once (each is one stream: read, transform, write).
    pub workers: usize,
    /// What runs it, as base a's lease names its holder (`etl function`, `local`).
    pub holder: String,
    /// How long to wait for base a's lease, and to hold it.
    pub lease: Terms,
}

/// A local run's lease: held for an hour (a run on a laptop is not killed by a deadline),
/// waited for 30 seconds.
pub const LOCAL_LEASE: Terms = Terms {
    hold: Duration::from_secs(3600),
    wait: Duration::from_secs(30),
    poll: Duration::from_millis(500),
};

impl Options {
    pub fn new(format: DataFormat) -> Self {
        Options {
            format,
            run_id: new_run_id(),
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 4),
            holder: lease::local_holder("etl"),
            lease: LOCAL_LEASE,
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
/// Holds base a's lease throughout ([`crate::lease`]): a second run waits for it or is
/// refused, naming this one. Nothing a reader sees changes unless every table was written;
/// see [`crate::publish`] for the layout and what a failure leaves behind.
pub fn run(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
) -> Result<Report, EtlError> {
    let started = Instant::now();
    let mut lease = lease::take(warehouse, Base::A, &opts.run_id, &opts.holder, opts.lease)?;
    let result = run_holding(source, warehouse, opts, &mut lease);
    lease.release();
    let (dimensions, tables) = result?;
    Ok(Report {
        run: opts.run_id.clone(),
        format: opts.format.as_str(),
        dimensions,
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn run_holding(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
    lease: &mut Lease<'_>,
) -> Result<(Vec<DimensionReport>, Vec<TableReport>), EtlError> {
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
    // Written where no reader looks; then, still holding the lease, switched.
    let staged = stage_all(source, warehouse, &joined, opts).and_then(|rows| {
        lease.confirm()?;
        Ok(rows)
    });
    let rows = match staged {
        Ok(rows) => rows,
        Err(e) => {
            remove_run(warehouse, &opts.run_id, &[]);
            return Err(e);
        }
    };
    let tables = publish_all(warehouse, opts, &rows)?;
    Ok((dimensions, tables))
}

/// The key of `table`'s one data file in `run`.
pub fn data_key(table: Table, run: &str, format: DataFormat) -> String {
    format!(
        "{}data.{}",
        publish::run_folder(table.def(), run),
        format.extension()
    )
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
    let key = data_key(table, &opts.run_id, opts.format);
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

/// Switches each table's manifest to this run's file (its marker naming the run), then
/// removes the runs older than the one each manifest named before.
fn publish_all(
    warehouse: &dyn Storage,
    opts: &Options,
    rows: &[(Table, u64)],
) -> Result<Vec<TableReport>, EtlError> {
    let base = warehouse.uri(Base::A.folder());
    let objects: Vec<[String; 1]> = Table::ALL
        .iter()
        .map(|t| [data_key(*t, &opts.run_id, opts.format)])
        .collect();
    let count = |table: Table| {
        rows.iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    };
    let switches: Vec<publish::Switch<'_>> = Table::ALL
        .iter()
        .zip(&objects)
        .map(|(t, object)| publish::Switch {
            def: t.def(),
            files: object,
            rows: count(*t),
        })
        .collect();
    let previous = publish::switch_all(
        warehouse,
        &opts.run_id,
        &base,
        opts.format.as_str(),
        &switches,
    )
    .map_err(|f| {
        let done: Vec<String> = f.not_put_back.iter().map(|t| t.to_string()).collect();
        // The tables put back keep nothing of this run.
        remove_run(warehouse, &opts.run_id, &done);
        EtlError::Publish {
            table: f.table.to_owned(),
            done,
            source: f.source,
        }
    })?;
    // Older runs go; the one each manifest named until now stays for the queries reading it.
    for (s, keep) in switches.iter().zip(&previous) {
        if let Err(e) = publish::remove_older_runs(warehouse, s.def, &opts.run_id, keep) {
            // Published already: a leftover older run costs storage, not correctness.
            tracing::warn!(error = %e, table = s.def.name, "could not remove older runs");
        }
    }
    Ok(Table::ALL
        .iter()
        .zip(objects)
        .map(|(t, [object])| TableReport {
            table: t.def().name,
            rows: count(*t),
            object,
        })
        .collect())
}

/// Best effort: removes what this run wrote to the tables not in `switched` (a run that did
/// not switch a table leaves nothing of itself in it; the next run's clean-up removes what
/// this misses).
fn remove_run(warehouse: &dyn Storage, run: &str, switched: &[String]) {
    for table in Table::ALL {
        let def = table.def();
        if switched.iter().any(|t| t == def.name) {
            continue;
        }
        if let Err(e) = publish::remove_run(warehouse, def, run) {
            tracing::warn!(error = %e, table = def.name, "could not remove the failed run's files");
        }
    }
}
