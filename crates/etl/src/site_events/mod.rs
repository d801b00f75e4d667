//! Base b without a cluster: the site events' eight tables, computed in this process with the
//! Spark job's semantics (docs/SEMANTICS.md, base b; `spark/site_events.py`).
//!
//! One pass over the events, on every core: each input object is cut into spans of lines,
//! which workers read side by side ([`spans`]) and parse ([`line`]), derive the typed
//! columns ([`derive`]), buffer the `events` rows and write them one file per date
//! ([`events`]), and count every aggregate ([`counts`]). The counts join the students ([`students`]) at the end. Nothing is
//! published until every table is written; then each table switches to this run through its
//! manifest ([`publish`]).
//!
//! Memory is bounded by each worker's window and event buffer and the groups
//! (students, pages, campaigns' distinct sessions), not by the number of events.

pub mod counts;
pub mod derive;
pub mod events;
pub mod fit;
pub mod line;
pub mod spans;
pub mod students;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::error::StorageError;
use crate::publish;
use crate::storage::Storage;
use crate::warehouse::{tables_of, Base, DataFormat, TableDef};
use counts::Tally;
use events::{Derived, EventBatch};
use line::Parsed;
use students::Students;

/// Where the events are read from: objects directly under `b/` of the source.
pub const EVENTS_PREFIX: &str = "b/";

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Names the run's folders and markers (letters, digits, `-`, `_`).
    pub run_id: String,
    /// Fail, publishing nothing, above this share of malformed lines.
    pub max_bad_ratio: f64,
    /// The URI readers reach the warehouse's `b/` by, written into the manifests (default:
    /// the warehouse's own, `s3://bucket/b` or `file:/path/b`).
    pub manifest_base: Option<String>,
    /// The format of the `students` table (the stage's base-a format).
    pub students_format: DataFormat,
    /// Parallel workers.
    pub workers: usize,
    /// Events buffered before a flush to files, in bytes of their lines, for all workers.
    pub buffer_bytes: usize,
    /// What runs it, as base b's lease names its holder (`site-events function`, `local`).
    pub holder: String,
    /// How long to wait for base b's lease, and to hold it.
    pub lease: crate::lease::Terms,
}

impl Options {
    pub fn new(run_id: String) -> Self {
        Options {
            run_id,
            max_bad_ratio: 0.01,
            manifest_base: None,
            students_format: DataFormat::Parquet,
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 8),
            buffer_bytes: 64 << 20,
            holder: crate::lease::local_holder("site-events"),
            lease: crate::run::LOCAL_LEASE,
        }
    }
}

/// A run id the folders can hold: 1 to 64 letters, digits, `-` and `_`.
pub fn valid_run_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A malformed line in the report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BadLine {
    pub file: String,
    pub line: String,
}

/// What a run counted and did: the Spark job's report (`site-events report`), same names.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub lines: u64,
    pub malformed_lines: u64,
    pub malformed_ratio: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub malformed_sample: Vec<BadLine>,
    pub missing_student_key: u64,
    pub key_without_at: u64,
    pub unknown_students: u64,
    pub unparsed_at: u64,
    pub events_without_session: u64,
    pub run: String,
    pub tables: Vec<&'static str>,
    /// Rows of each table, by name.
    pub rows: BTreeMap<&'static str, u64>,
    pub input_bytes: u64,
    pub files_written: usize,
    pub seconds: f64,
    /// Seconds of each step, by name.
    pub step_seconds: BTreeMap<&'static str, f64>,
}

/// Why a run stopped. Every table is then as it was: nothing of this run is published.
#[derive(Debug, thiserror::Error)]
pub enum SiteEventsError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Base b's lease: another run holds it, or this run lost it.
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
    #[error("no site events: {0} holds no event file (`b/part-*.json`)")]
    NoEvents(String),
    #[error("students table: {0}")]
    Students(String),
    #[error("{0} exists: a run id names one run; use a new run id")]
    RunExists(String),
    #[error("run id `{0}`: only 1 to 64 letters, digits, `-` and `_` (it names a folder)")]
    BadRunId(String),
    #[error(
        "{} of {} lines ({:.2}%) in {events} are malformed JSON, above the limit of {:.2}% (max_bad_ratio); nothing was written. First: {}",
        report.malformed_lines, report.lines, report.malformed_ratio * 100.0, max * 100.0,
        report.malformed_sample.iter().map(|b| format!("{}: {}", b.file, b.line)).collect::<Vec<_>>().join(" | ")
    )]
    TooManyBadLines {
        max: f64,
        events: String,
        /// The run's counts (the malformed lines, their share and a sample), for the log.
        report: Box<Report>,
    },
    #[error("writing table `{table}`: {message}")]
    Write {
        table: &'static str,
        message: String,
    },
    #[error(transparent)]
    TooLarge(#[from] fit::TooLarge),
    #[error(
        "publishing run {run} stopped at table `{table}` ({source}); the tables switched before it were put back to the previous run{}",
        if done.is_empty() { String::new() } else { format!(", but for [{}], which name this run: the crawler waits until a run publishes all eight", done.join(", ")) }
    )]
    Publish {
        table: &'static str,
        run: String,
        done: Vec<&'static str>,
        #[source]
        source: StorageError,
    },
}

impl SiteEventsError {
    /// Whether another attempt may succeed: a storage fault, a write or a switch that failed,
    /// the lease held by another run. Bad or missing input, a size the function refuses, a
    /// missing students table and a run id in use fail the same way again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SiteEventsError::Storage(_)
                | SiteEventsError::Lease(_)
                | SiteEventsError::Write { .. }
                | SiteEventsError::Publish { .. }
        )
    }
}

/// The event objects under `b/` of the source, with their sizes: the objects directly in the
/// folder, as Spark reads a folder, but those whose names start with `_` or `.`.
pub fn inputs(source: &dyn Storage) -> Result<Vec<(String, u64)>, StorageError> {
    Ok(source
        .list_sizes(EVENTS_PREFIX)?
        .into_iter()
        .filter(|(k, _)| {
            let name = &k[EVENTS_PREFIX.len()..];
            !name.contains('/') && !name.starts_with(['_', '.'])
        })
        .collect())
}

/// Runs base b from `source` (holding `b/part-*.json`) into `warehouse` (holding the
/// `students` table), publishing the eight tables under `b/`.
pub fn run(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
) -> Result<Report, SiteEventsError> {
    let started = Instant::now();
    if !valid_run_id(&opts.run_id) {
        return Err(SiteEventsError::BadRunId(opts.run_id.clone()));
    }
    let files = inputs(source)?;
    if files.is_empty() {
        return Err(SiteEventsError::NoEvents(source.describe(EVENTS_PREFIX)));
    }
    let tables: Vec<&'static TableDef> = tables_of(Base::B).collect();
    // One run of base b at a time (crate::lease), taken before anything is written.
    let mut lease = crate::lease::take(warehouse, Base::B, &opts.run_id, &opts.holder, opts.lease)?;
    let result = run_holding(
        source, warehouse, opts, &files, &tables, &mut lease, started,
    );
    lease.release();
    result
}

fn run_holding(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
    files: &[(String, u64)],
    tables: &[&'static TableDef],
    lease: &mut crate::lease::Lease<'_>,
    started: Instant,
) -> Result<Report, SiteEventsError> {
    // Checked before anything is written: the folder may be what a manifest names.
    if let Some(folder) = publish::run_exists(warehouse, tables, &opts.run_id)? {
        return Err(SiteEventsError::RunExists(folder));
    }
    let students = Students::read(warehouse, opts.students_format)?;
    let mut report = Report {
        run: opts.run_id.clone(),
        input_bytes: files.iter().map(|(_, n)| n).sum(),
        ..Report::default()
    };
    let result = stage_and_publish(
        source,
        warehouse,
        opts,
        files,
        &students,
        tables,
        lease,
        &mut report,
    );
    if let Err(e) = &result {
        // A run that did not switch a table leaves nothing of itself in it.
        let switched: &[&str] = match e {
            SiteEventsError::Publish { done, .. } => done,
            _ => &[],
        };
        for def in tables.iter().filter(|t| !switched.contains(&t.name)) {
            if let Err(cleanup) = publish::remove_run(warehouse, def, &opts.run_id) {
                tracing::warn!(error = %cleanup, table = def.name, "could not remove the failed run's files");
            }
        }
    }
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn stage_and_publish(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
    files: &[(String, u64)],
    students: &Students,
    tables: &[&'static TableDef],
    lease: &mut crate::lease::Lease<'_>,
    report: &mut Report,
) -> Result<(), SiteEventsError> {
    let mark = Instant::now();
    let events_def = events::def();
    let events_folder = publish::run_folder(events_def, &opts.run_id);
    let scan = scan(source, warehouse, opts, files, &events_folder)?;
    report
        .step_seconds
        .insert("scan and stage events", mark.elapsed().as_secs_f64());
    let tally = scan.tally;
    report.lines = scan.lines;
    report.malformed_lines = scan.malformed;
    report.malformed_ratio = if scan.lines == 0 {
        0.0
    } else {
        scan.malformed as f64 / scan.lines as f64
    };
    report.malformed_sample = scan.sample;
    report.missing_student_key = tally.missing_student_key;
    report.key_without_at = tally.key_without_at;
    report.unparsed_at = tally.unparsed_at;
    report.events_without_session = tally.events_without_session;
    report.unknown_students = tally.unknown_students(students);
    if report.events_without_session > 0 {
        tracing::warn!(
            "{} events lack `uuid` or `session_uuid`: they count as events but belong to no session (docs/SEMANTICS.md, \"Sessions\")",
            report.events_without_session
        );
    }
    if report.malformed_ratio > opts.max_bad_ratio {
        return Err(SiteEventsError::TooManyBadLines {
            max: opts.max_bad_ratio,
            events: source.describe(EVENTS_PREFIX),
            report: Box::new(report.clone()),
        });
    }

    let mark = Instant::now();
    let mut written: Vec<(&'static TableDef, Vec<String>, u64)> = vec![(
        events_def,
        scan.files,
        report.lines - report.malformed_lines,
    )];
    // The seven tables written at once: `events_by_pagename` (a row per page) takes most of
    // the step, the others beside it.
    let aggregates = std::thread::scope(|s| {
        let writes: Vec<_> = tally
            .tables(students)
            .into_iter()
            .map(|(def, batch)| {
                s.spawn(move || {
                    let key = format!("{}part-0.parquet", publish::run_folder(def, &opts.run_id));
                    let props = events::writer_properties(&[]).build();
                    events::write_parquet(warehouse, &key, &batch, props)
                        .map(|()| (def, vec![key], batch.num_rows() as u64))
                        .map_err(|e| SiteEventsError::Write {
                            table: def.name,
                            message: e.to_string(),
                        })
                })
            })
            .collect();
        writes
            .into_iter()
            .map(|w| w.join().expect("a table's write does not panic"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    written.extend(aggregates);
    report
        .step_seconds
        .insert("aggregate", mark.elapsed().as_secs_f64());
    report.files_written = written.iter().map(|(_, f, _)| f.len()).sum();

    // Every table is written: still holding the lease, switch each to this run, then mark it
    // complete.
    lease.confirm()?;
    let mark = Instant::now();
    let base = opts
        .manifest_base
        .clone()
        .unwrap_or_else(|| warehouse.uri(EVENTS_PREFIX.trim_end_matches('/')));
    let base = base.trim_end_matches('/');
    let switches: Vec<publish::Switch<'_>> = tables
        .iter()
        .map(|def| {
            let (_, files, rows) = written
                .iter()
                .find(|(d, _, _)| d.name == def.name)
                .expect("every table was written");
            publish::Switch {
                def,
                files,
                rows: *rows,
            }
        })
        .collect();
    let previous = publish::switch_all(warehouse, &opts.run_id, base, "parquet", &switches, None)
        .map_err(|f| SiteEventsError::Publish {
        table: f.table,
        run: opts.run_id.clone(),
        done: f.not_put_back,
        source: f.source,
    })?;
    for s in &switches {
        report.rows.insert(s.def.name, s.rows);
    }
    report
        .step_seconds
        .insert("publish", mark.elapsed().as_secs_f64());
    // Older runs go; the one each manifest named until now stays for the queries reading it.
    let mark = Instant::now();
    for (def, keep) in tables.iter().zip(&previous) {
        if let Err(e) = publish::remove_older_runs(warehouse, def, &opts.run_id, keep) {
            // Published already: a leftover older run costs storage, not correctness.
            tracing::warn!(error = %e, table = def.name, "could not remove older runs");
        }
    }
    report
        .step_seconds
        .insert("remove older runs", mark.elapsed().as_secs_f64());
    report.tables = tables.iter().map(|t| t.name).collect();
    Ok(())
}

/// What the workers counted and wrote.
#[derive(Default)]
struct Scan {
    tally: Tally,
    lines: u64,
    malformed: u64,
    sample: Vec<BadLine>,
    files: Vec<String>,
}

const SAMPLE: usize = 3;

/// The one pass over the events: `opts.workers` workers take the objects' spans
/// ([`spans`]), largest first, and each reads and parses its own.
fn scan(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
    files: &[(String, u64)],
    events_folder: &str,
) -> Result<Scan, SiteEventsError> {
    let workers = opts.workers.max(1);
    let plan = spans::plan(files, workers);
    let next = AtomicUsize::new(0);
    // The first failure stops the other workers before their next span.
    let failed = AtomicBool::new(false);
    let budget = (opts.buffer_bytes / workers).max(1 << 20);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.min(plan.len().max(1)))
            .map(|w| {
                let (plan, next, failed) = (&plan, &next, &failed);
                s.spawn(move || {
                    let taken = || {
                        plan.get(next.fetch_add(1, Ordering::Relaxed))
                            .filter(|_| !failed.load(Ordering::Relaxed))
                            .copied()
                    };
                    let part = work(w, taken, source, warehouse, files, events_folder, budget);
                    if part.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    part
                })
            })
            .collect();
        let mut total: Option<Scan> = None;
        let mut first_error = None;
        for h in handles {
            match h.join().expect("a worker does not panic") {
                // The first worker's counts are the total's start: merging them into empty
                // tables would insert each group again.
                Ok(part) if total.is_none() => total = Some(part),
                Ok(part) => {
                    let total = total.as_mut().expect("a first part");
                    total.tally.merge(part.tally);
                    total.lines += part.lines;
                    total.malformed += part.malformed;
                    total.sample.extend(part.sample);
                    total.files.extend(part.files);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut total = total.unwrap_or_default();
        total.sample.truncate(SAMPLE);
        Ok(total)
    })
}

/// One worker: reads the spans `taken` gives until there are none, parsing each window of
/// lines as it is read.
#[allow(clippy::too_many_arguments)]
fn work(
    worker: usize,
    taken: impl Fn() -> Option<spans::LineSpan>,
    source: &dyn Storage,
    warehouse: &dyn Storage,
    files: &[(String, u64)],
    events_folder: &str,
    budget: usize,
) -> Result<Scan, SiteEventsError> {
    let mut part = Scan::default();
    let mut batch = EventBatch::new(events_folder, worker);
    let mut keys = line::KeyOrder::default();
    let mut window = Vec::new();
    let write_error = |e: std::io::Error| SiteEventsError::Write {
        table: "events",
        message: e.to_string(),
    };
    let mut process = |file: usize, bytes: &[u8]| -> Result<(), SiteEventsError> {
        // One buffer of events per window, reused line after line.
        let mut events: Vec<line::Event<'_>> = Vec::with_capacity(4);
        // The window's UTF-8 is checked whole; only a window with invalid UTF-8 somewhere has
        // its lines checked one by one (a malformed line each). A `\n` is a character of its
        // own, so a valid window's lines are slices of its text.
        let text = simdutf8::basic::from_utf8(bytes).ok();
        let mut from = 0;
        while from < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |n| from + n);
            let raw = &bytes[from..end];
            let parsed = match text {
                Some(text) => line::parse_str_into(&text[from..end], &mut events, &mut keys),
                None => line::parse_into(raw, &mut events, &mut keys),
            };
            from = end + 1;
            match parsed {
                Parsed::Blank => {}
                Parsed::Malformed => {
                    part.lines += 1;
                    part.malformed += 1;
                    if part.sample.len() < SAMPLE {
                        let text = String::from_utf8_lossy(raw);
                        part.sample.push(BadLine {
                            file: files[file].0.clone(),
                            line: text.chars().take(200).collect(),
                        });
                    }
                }
                Parsed::Events => {
                    let share = raw.len() / events.len().max(1);
                    for event in &events {
                        part.lines += 1;
                        let derived = Derived::of(event);
                        part.tally.add(event, &derived);
                        batch.push(event, &derived, share);
                    }
                }
            }
        }
        drop(events);
        if batch.bytes() >= budget {
            part.files
                .extend(batch.flush(warehouse).map_err(write_error)?);
        }
        Ok(())
    };
    while let Some(span) = taken() {
        let (key, size) = &files[span.file];
        spans::read_lines(source, key, *size, span, &mut window, |bytes| {
            process(span.file, bytes)
        })?;
    }
    part.files
        .extend(batch.flush(warehouse).map_err(write_error)?);
    Ok(part)
}
