//! One ETL run: take base a's lease, read the exports, write the four tables into this run's
//! folders, then publish them as base b does ([`crate::publish`]): each manifest switched by
//! one write, its marker naming the run, older runs removed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{EtlError, StorageError};
use crate::json_array::{ArrayReader, Spanned};
use crate::lease::{self, Lease, Terms};
use crate::publish;
use crate::shard::{self, Part, Plan};
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
    /// Spans staged at once (each is one stream: read, transform, write).
    pub workers: usize,
    /// How each export is cut into spans ([`crate::shard`]).
    pub split: Split,
    /// What runs it, as base a's lease names its holder (`etl function`, `local`).
    pub holder: String,
    /// How long to wait for base a's lease, and to hold it.
    pub lease: Terms,
    /// What builds the run, as its report and the tables' markers name it: one process reads
    /// every export, or shards do ([`crate::sharded`]).
    pub engine: Engine,
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
            split: Split::Auto,
            engine: Engine::Function,
        }
    }
}

/// How the exports are cut into spans read side by side ([`crate::shard`]); every choice
/// writes the same rows in the same order, and refuses a bad input the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Each export read whole by one worker.
    Whole,
    /// Spans of about a quarter of each worker's share of the work ([`Table::work`]), so that
    /// the workers, taking the most work first, finish together: the sessions export alone
    /// is 60% of base a's bytes.
    Auto,
    /// Each export cut into this many spans (fewer where it has fewer records, or is not laid
    /// out one record per line): `deployer invoke etl --local --shards N`.
    Pieces(usize),
    /// Spans of about this many bytes: the sharded engine's, one shard per span.
    Bytes(u64),
}

/// Spans smaller than this are not worth their own object.
const MIN_AUTO_SPAN: u64 = 16 << 20;

impl Split {
    /// How many pieces to cut an export of `size` bytes (`work` in [`Table::work`]'s units)
    /// into, when the facts' exports hold `total` work and `workers` read them.
    pub(crate) fn pieces(self, size: u64, work: u64, total: u64, workers: usize) -> usize {
        match self {
            Split::Whole => 1,
            Split::Pieces(n) => n.max(1),
            Split::Bytes(b) => size.div_ceil(b.max(1)).max(1) as usize,
            Split::Auto if workers <= 1 => 1,
            Split::Auto => {
                let span = (total / (workers as u64 * 4)).max(MIN_AUTO_SPAN);
                work.div_ceil(span).max(1) as usize
            }
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
    /// [`Options::engine`].
    pub engine: Engine,
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
    /// The table's objects in this run, in the rows' order (one per span read).
    pub objects: Vec<String>,
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
        engine: opts.engine,
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
    let sizes = check_inputs(source)?;
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
    let staged = stage_all(source, warehouse, &joined, opts, &sizes).and_then(|rows| {
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

/// The key of span `k` of `spans` of `table` in `run`: [`data_key`] for one span, else
/// `data-00000.<ext>` and on, in the rows' order.
pub fn part_key(table: Table, run: &str, format: DataFormat, k: usize, spans: usize) -> String {
    if spans == 1 {
        return data_key(table, run, format);
    }
    format!(
        "{}data-{k:05}.{}",
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

/// Fails before any work when an export is missing, naming it; the exports' sizes.
pub fn check_inputs(source: &dyn Storage) -> Result<Vec<(String, u64)>, EtlError> {
    let present = source.list_sizes("a/")?;
    for key in all_exports() {
        if present
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .is_err()
        {
            return Err(EtlError::MissingInput {
                file: source.describe(key),
            });
        }
    }
    Ok(present)
}

fn open(
    source: &dyn Storage,
    key: &str,
) -> Result<ArrayReader<Box<dyn std::io::Read + Send>>, EtlError> {
    let src = source.open(key).map_err(missing_input)?;
    Ok(ArrayReader::new(src, source.describe(key)))
}

/// An export gone since the listing is a missing input, as one never there.
fn missing_input(e: impl Into<EtlError>) -> EtlError {
    match e.into() {
        EtlError::Storage(StorageError::NotFound(file)) => EtlError::MissingInput { file },
        e => e,
    }
}

pub(crate) fn read_dimension(
    source: &dyn Storage,
    kind: DimensionKind,
) -> Result<Dimension, EtlError> {
    let mut dim = Dimension::new(kind);
    open(source, kind.source_key())?.for_each(|e| dim.add(e))?;
    dim.seal();
    Ok(dim)
}

/// What a run wrote of one table: its rows, and its objects in the rows' order.
#[derive(Clone, Debug, Default)]
pub struct Staged {
    pub rows: u64,
    pub objects: Vec<String>,
}

/// No table has failed yet ([`Cancel::failed`]).
const NONE: usize = usize::MAX;

/// Which spans stop early: every span of the other tables once one table fails, and the spans
/// of that table after its failed one (those before it go on: the refusal reported is the
/// first in the document).
struct Cancel {
    failed: AtomicUsize,
    first_bad: [AtomicUsize; 4],
}

impl Cancel {
    fn new() -> Self {
        Cancel {
            failed: AtomicUsize::new(NONE),
            first_bad: std::array::from_fn(|_| AtomicUsize::new(NONE)),
        }
    }

    fn stops(&self, t: usize, k: usize) -> bool {
        let failed = self.failed.load(Ordering::Relaxed);
        (failed != NONE && failed != t) || self.first_bad[t].load(Ordering::Relaxed) < k
    }

    fn failed(&self, t: usize, k: usize) {
        self.first_bad[t].fetch_min(k, Ordering::Relaxed);
        let _ = self
            .failed
            .compare_exchange(NONE, t, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// What reading one span gave: where it ended, its rows and its object.
pub(crate) type SpanResult = Result<(Spanned, u64, String), EtlError>;

/// Each export's spans (`opts.split`), in [`Table::ALL`]'s order; `sizes` as
/// [`check_inputs`] lists them.
pub(crate) fn plan_exports(
    source: &dyn Storage,
    opts: &Options,
    sizes: &[(String, u64)],
) -> Result<Vec<Plan>, EtlError> {
    let size_of = |key: &str| {
        sizes
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .map_or(0, |i| sizes[i].1)
    };
    let total: u64 = Table::ALL
        .iter()
        .map(|t| t.work(size_of(t.source_key())))
        .sum();
    Table::ALL
        .iter()
        .map(|t| {
            let size = size_of(t.source_key());
            let pieces = opts.split.pieces(size, t.work(size), total, opts.workers);
            shard::plan(source, t.source_key(), size, pieces)
        })
        .collect()
}

/// A table's spans' results, in order, as [`shard::check_tiling`] takes them, and the rows and
/// objects of those written (`None`: a span not read).
pub(crate) fn gather(
    spans: impl IntoIterator<Item = Option<SpanResult>>,
) -> (Staged, Vec<Option<Result<Spanned, EtlError>>>) {
    let mut parts = Staged::default();
    let outcomes = spans
        .into_iter()
        .map(|r| {
            r.map(|r| {
                r.map(|(spanned, rows, key)| {
                    parts.rows += rows;
                    parts.objects.push(key);
                    spanned
                })
            })
        })
        .collect();
    (parts, outcomes)
}

/// Stages the four tables: each export is cut into spans ([`Options::split`]), and
/// `opts.workers` threads take the spans, most work first ([`Table::work`]). The first
/// failure stops the others (see [`Cancel`]). An export whose spans did not tile is read
/// again whole.
fn stage_all(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    dims: &Dimensions<'_>,
    opts: &Options,
    sizes: &[(String, u64)],
) -> Result<Vec<(Table, Staged)>, EtlError> {
    let plans = plan_exports(source, opts, sizes)?;
    let mut units: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(t, p)| (0..p.len()).map(move |k| (t, k)))
        .collect();
    units.sort_by_key(|&(t, k)| std::cmp::Reverse(Table::ALL[t].work(plans[t].bytes(k))));

    let next = AtomicUsize::new(0);
    let cancel = Cancel::new();
    let results: Mutex<Vec<Vec<Option<SpanResult>>>> = Mutex::new(
        plans
            .iter()
            .map(|p| (0..p.len()).map(|_| None).collect())
            .collect(),
    );
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1).min(units.len()) {
            s.spawn(|| {
                while let Some(&(t, k)) = units.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = if cancel.stops(t, k) {
                        Err(EtlError::Cancelled)
                    } else {
                        let stop = || cancel.stops(t, k);
                        stage_span(
                            source,
                            warehouse,
                            dims,
                            opts,
                            Table::ALL[t],
                            &plans[t].part(k),
                            &stop,
                        )
                    };
                    if matches!(&r, Err(e) if !matches!(e, EtlError::Cancelled)) {
                        cancel.failed(t, k);
                    }
                    results.lock().expect("no worker panics holding it")[t][k] = Some(r);
                }
            });
        }
    });

    let failed = cancel.failed.load(Ordering::Relaxed);
    let mut staged = Vec::with_capacity(Table::ALL.len());
    let mut first_error = None;
    let results = results.into_inner().expect("workers are done");
    for (t, (table, spans)) in Table::ALL.into_iter().zip(results).enumerate() {
        let plan = &plans[t];
        let (parts, mut outcomes) = gather(spans);
        let outcome = match shard::check_tiling(plan, &mut outcomes) {
            Ok(Ok(())) => Ok(parts),
            Ok(Err(e)) => Err(e),
            Err(untiled) if failed == NONE || failed == t => {
                tracing::warn!(
                    export = table.source_key(),
                    span = untiled.span,
                    ended_at = untiled.ended_at,
                    next = untiled.next,
                    "the spans did not tile the export (a nested object looked like a record \
                     start): reading it whole"
                );
                // Every key a span of the plan may have written (the spans read wrote some).
                let written: Vec<String> = (0..plan.len())
                    .map(|k| part_key(table, &opts.run_id, opts.format, k, plan.len()))
                    .collect();
                warehouse.delete(&written)?;
                let whole = Plan::whole(&plan.key, plan.size);
                stage_span(
                    source,
                    warehouse,
                    dims,
                    opts,
                    table,
                    &whole.part(0),
                    &|| false,
                )
                .map(|(_, rows, key)| Staged {
                    rows,
                    objects: vec![key],
                })
            }
            Err(_) => Err(EtlError::Cancelled),
        };
        match outcome {
            Ok(parts) => staged.push((table, parts)),
            Err(EtlError::Cancelled) => {}
            Err(e) if t == failed => first_error = Some(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if staged.len() == Table::ALL.len() => Ok(staged),
        None => Err(EtlError::Cancelled),
    }
}

/// Reads `part` and writes its rows to its own object: where the span ended, its rows and
/// its object's key.
pub(crate) fn stage_span(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    dims: &Dimensions<'_>,
    opts: &Options,
    table: Table,
    part: &Part,
    stop: &dyn Fn() -> bool,
) -> SpanResult {
    let bytes = shard::open_span(source, part).map_err(missing_input)?;
    let reader = ArrayReader::span(bytes, source.describe(&part.key), part.span);
    let key = part_key(table, &opts.run_id, opts.format, part.k, part.spans);
    let write_error = |e: std::io::Error| EtlError::Write {
        table: table.def().name.to_owned(),
        message: format!("{}: {e}", warehouse.describe(&key)),
    };
    let out = warehouse.create(&key)?;
    let mut sink = sink::for_format(opts.format, table, out).map_err(write_error)?;
    let spanned = reader.for_each_spanned(|e| {
        if stop() {
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
    let rows = sink.finish().map_err(write_error)?;
    Ok((spanned, rows, key))
}

/// Switches each table's manifest to this run's file (its marker naming the run), then
/// removes the runs older than the one each manifest named before.
pub(crate) fn publish_all(
    warehouse: &dyn Storage,
    opts: &Options,
    staged: &[(Table, Staged)],
) -> Result<Vec<TableReport>, EtlError> {
    let base = warehouse.uri(Base::A.folder());
    let of = |table: Table| {
        &staged
            .iter()
            .find(|(t, _)| *t == table)
            .expect("every table is staged")
            .1
    };
    let objects: Vec<Vec<String>> = Table::ALL.iter().map(|t| of(*t).objects.clone()).collect();
    let count = |table: Table| of(table).rows;
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
        Some(opts.engine.as_str()),
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
        .map(|(t, objects)| TableReport {
            table: t.def().name,
            rows: count(*t),
            objects,
        })
        .collect())
}

/// Best effort: removes what this run wrote to the tables not in `switched` (a run that did
/// not switch a table leaves nothing of itself in it; the next run's clean-up removes what
/// this misses).
pub(crate) fn remove_run(warehouse: &dyn Storage, run: &str, switched: &[String]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The exports of 1M generated students (bytes), in `Table::ALL`'s order.
    const GENERATED: [(Table, u64); 4] = [
        (Table::Students, 208_283_162),
        (Table::Follows, 520_583_557),
        (Table::Sessions, 1_171_157_497),
        (Table::Subscriptions, 53_506_920),
    ];

    fn auto_pieces(workers: usize) -> Vec<usize> {
        let total: u64 = GENERATED.iter().map(|(t, b)| t.work(*b)).sum();
        GENERATED
            .iter()
            .map(|(t, b)| Split::Auto.pieces(*b, t.work(*b), total, workers))
            .collect()
    }

    #[test]
    fn auto_cuts_the_work_not_the_bytes() {
        // Two workers: eight shares of the work. Students, a sixth of the sessions' bytes,
        // are cut in two as their work is twice a byte of sessions'.
        assert_eq!(auto_pieces(2), vec![2, 3, 4, 1]);
        // Spans end up with about the same work each, whatever their bytes.
        let total: u64 = GENERATED.iter().map(|(t, b)| t.work(*b)).sum();
        for ((t, b), n) in GENERATED.iter().zip(auto_pieces(2)) {
            let per_span = t.work(*b) / n as u64;
            assert!(per_span <= total / 8 + 1, "{t:?}: {per_span}");
        }
        // One worker reads each export whole.
        assert_eq!(auto_pieces(1), vec![1, 1, 1, 1]);
    }

    #[test]
    fn work_weighs_joined_tables_more() {
        assert_eq!(Table::Sessions.work(1000), 1000);
        assert_eq!(Table::Subscriptions.work(1000), 1000);
        assert_eq!(Table::Students.work(1000), 2000);
        assert_eq!(Table::Follows.work(1000), 1750);
        assert_eq!(Table::Students.work(u64::MAX), u64::MAX / 4);
    }
}
