//! Base a as shards, each run on its own (issue 29): what a Step Functions Distributed Map
//! runs past one function, and `deployer invoke etl --engine sharded` runs on threads.
//!
//! - [`plan`] takes base a's lease for the run, cuts every export into spans
//!   ([`crate::shard::plan`]) and writes one [`Item`] per span, as a JSON array, to
//!   `a/_runs/<run>/plan.json` (the Map's S3 item reader reads it).
//! - [`run_item`] reads the dimensions its table joins, whole, then its span, and writes its
//!   part of the table and a [`ShardReport`] beside the run's plan: where its first and last
//!   records lay, its rows, and its refusal if its span holds bad input. The reports go to S3
//!   because a Distributed Map's own results are capped (256 KiB), and the emulator has no
//!   result writer.
//! - [`publish`] reads the reports, checks that every export's spans tiled it exactly
//!   ([`crate::shard::check_tiling`]), moves the first refusal of a file to the file's own
//!   line and record, refuses the whole run on any refusal (removing its parts), else switches
//!   each table in one step ([`crate::publish`]); it releases the lease in every case.
//!
//! A shard delivered twice writes the same part and report again: the keys are the item's.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{EtlError, InputError};
use crate::json_array::{Span, Spanned};
use crate::lease::{self, Terms};
use crate::run::{self, Options, Report};
use crate::shard::{self, Part, Plan};
use crate::storage::Storage;
use crate::transform::tables::Dimensions;
use crate::transform::{DimensionKind, Table};
use crate::warehouse::{Base, DataFormat};

/// One span for one shard: the Map's item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub run: String,
    /// `parquet` or `ndjson`.
    pub format: String,
    /// The table's name (`sessions`).
    pub table: String,
    /// The export's key and size.
    pub export: String,
    pub size: u64,
    /// Span `span` of `spans`: the records whose `{` lies in `start..stop`.
    pub span: usize,
    pub spans: usize,
    pub start: u64,
    pub stop: Option<u64>,
    /// The column of the span's first record.
    pub column: usize,
}

/// What one shard did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardReport {
    pub item: Item,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A shard's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Its part is written.
    Written {
        spanned: Spanned,
        rows: u64,
        object: String,
    },
    /// Its span holds bad input, placed in the span (see [`Spanned::rebase`]).
    Refused { refusal: InputError },
}

/// `a/_runs/<run>/`: the run's plan and its shards' reports.
pub fn run_folder(run: &str) -> String {
    format!("{}/_runs/{run}/", Base::A.folder())
}

/// The run's plan: the items, a JSON array.
pub fn plan_key(run: &str) -> String {
    format!("{}plan.json", run_folder(run))
}

/// Where the shard of `item` writes its report.
pub fn report_key(item: &Item) -> String {
    format!(
        "{}shards/{}/{:05}.json",
        run_folder(&item.run),
        item.table,
        item.span
    )
}

fn table_named(name: &str) -> Result<Table, EtlError> {
    Table::ALL
        .into_iter()
        .find(|t| t.def().name == name)
        .ok_or_else(|| EtlError::Plan(format!("no base-a table is named `{name}`")))
}

fn format_named(name: &str) -> Result<DataFormat, EtlError> {
    DataFormat::parse(name).ok_or_else(|| EtlError::Plan(format!("no table format `{name}`")))
}

impl Item {
    fn part(&self) -> Part {
        Part {
            key: self.export.clone(),
            size: self.size,
            span: Span {
                start: self.start,
                column: self.column,
                stop: self.stop,
            },
            k: self.span,
            spans: self.spans,
        }
    }
}

/// Takes base a's lease for `opts.run_id`, held for `hold` (at least the state machine's
/// timeout), plans the spans (`opts.split`, as the function engine cuts them) and writes the
/// plan. The lease stays taken: [`publish`] releases it.
pub fn plan(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
    hold: Duration,
) -> Result<Vec<Item>, EtlError> {
    let (items, lease) = plan_held(
        source,
        warehouse,
        &Options {
            lease: Terms { hold, ..opts.lease },
            ..opts.clone()
        },
    )?;
    // Held on: the publisher releases it.
    std::mem::forget(lease);
    Ok(items)
}

/// [`plan`], holding base a's lease for `opts.lease.hold` only and handing it to the caller:
/// the ETL function holds it for its own deadline until the state machine has started, then
/// extends it to the state machine's timeout ([`lease::Lease::confirm_as`]), so a function
/// killed before it started nothing frees base a at its deadline, not hours later.
pub fn plan_held<'a>(
    source: &dyn Storage,
    warehouse: &'a dyn Storage,
    opts: &Options,
) -> Result<(Vec<Item>, lease::Lease<'a>), EtlError> {
    let lease = lease::take(warehouse, Base::A, &opts.run_id, &opts.holder, opts.lease)?;
    match plan_holding(source, warehouse, opts) {
        Ok(items) => Ok((items, lease)),
        Err(e) => {
            lease.release();
            Err(e)
        }
    }
}

fn plan_holding(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
) -> Result<Vec<Item>, EtlError> {
    let sizes = run::check_inputs(source)?;
    let plans = run::plan_exports(source, opts, &sizes)?;
    let mut items = Vec::new();
    for (table, plan) in Table::ALL.into_iter().zip(&plans) {
        for k in 0..plan.len() {
            let span = plan.span(k);
            items.push(Item {
                run: opts.run_id.clone(),
                format: opts.format.as_str().to_owned(),
                table: table.def().name.to_owned(),
                export: plan.key.clone(),
                size: plan.size,
                span: k,
                spans: plan.len(),
                start: span.start,
                stop: span.stop,
                column: span.column,
            });
        }
    }
    let body = serde_json::to_vec(&items).expect("items serialize");
    warehouse.put(&plan_key(&opts.run_id), &body)?;
    Ok(items)
}

/// Removes the run's plan and reports: once it is published or refused, or when it will not
/// run (its state machine could not be started; its planner gives base a's lease back,
/// [`plan_held`]). Best effort: a leftover is never read again.
pub fn remove_run_folder(warehouse: &dyn Storage, run_id: &str) {
    let left = warehouse.list(&run_folder(run_id)).unwrap_or_default();
    if let Err(e) = warehouse.delete(&left) {
        tracing::warn!(error = %e, "could not remove the run's plan and reports");
    }
}

/// Runs one shard: reads the dimensions its table joins and its span, writes its part and its
/// report. Bad input in the span is a report, not an error (the publisher refuses the run);
/// an error is a failure to read or write, which a retry may fix.
pub fn run_item(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    item: &Item,
) -> Result<ShardReport, EtlError> {
    let table = table_named(&item.table)?;
    let mut opts = Options::new(format_named(&item.format)?);
    opts.run_id = item.run.clone();
    let mut dims = Vec::with_capacity(3);
    for kind in DimensionKind::ALL {
        dims.push(if table.joins().contains(&kind) {
            run::read_dimension(source, kind)?
        } else {
            crate::transform::Dimension::new(kind)
        });
    }
    let joined = Dimensions {
        courses: &dims[0],
        universities: &dims[1],
        subjects: &dims[2],
    };
    let outcome = match run::stage_span(
        source,
        warehouse,
        &joined,
        &opts,
        table,
        &item.part(),
        &|| false,
    ) {
        Ok((spanned, rows, object)) => Outcome::Written {
            spanned,
            rows,
            object,
        },
        Err(EtlError::Input(refusal)) => Outcome::Refused { refusal },
        Err(e) => return Err(e),
    };
    let report = ShardReport {
        item: item.clone(),
        outcome,
    };
    let body = serde_json::to_vec(&report).expect("a report serializes");
    warehouse.put(&report_key(item), &body)?;
    Ok(report)
}

/// Reads the run's plan and its shards' reports, and publishes the four tables, or refuses the
/// run naming the first bad input of a file (its own line and record), or the export whose
/// spans did not tile it. Releases base a's lease in every case.
pub fn publish(warehouse: &dyn Storage, run_id: &str, hold: Duration) -> Result<Report, EtlError> {
    let started = std::time::Instant::now();
    let mut lease = lease::resume(warehouse, Base::A, run_id, hold)?;
    let result = publish_holding(warehouse, run_id, &mut lease);
    lease.release();
    // The plan and reports have served, published or not.
    remove_run_folder(warehouse, run_id);
    let (format, tables) = result?;
    Ok(Report {
        run: run_id.to_owned(),
        engine: Engine::Sharded,
        format: format.as_str(),
        dimensions: Vec::new(),
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The items of `run_id`'s plan, as [`plan`] wrote them.
pub fn read_plan(warehouse: &dyn Storage, run_id: &str) -> Result<Vec<Item>, EtlError> {
    let key = plan_key(run_id);
    let plan = warehouse
        .get(&key)?
        .ok_or_else(|| EtlError::Plan(format!("{}: no plan", warehouse.describe(&key))))?;
    serde_json::from_slice(&plan)
        .map_err(|e| EtlError::Plan(format!("{}: {e}", warehouse.describe(&key))))
}

fn publish_holding(
    warehouse: &dyn Storage,
    run_id: &str,
    lease: &mut lease::Lease<'_>,
) -> Result<(DataFormat, Vec<run::TableReport>), EtlError> {
    let items = read_plan(warehouse, run_id)?;
    let format = format_named(items.first().map_or("parquet", |i| i.format.as_str()))?;
    let staged = combine(warehouse, &items).inspect_err(|_| {
        run::remove_run(warehouse, run_id, &[]);
    })?;
    lease.confirm()?;
    let mut opts = Options::new(format);
    opts.run_id = run_id.to_owned();
    opts.engine = Engine::Sharded;
    let tables = run::publish_all(warehouse, &opts, &staged)?;
    Ok((format, tables))
}

/// Each table's parts from the reports, in order, after the checks of [`publish`].
fn combine(warehouse: &dyn Storage, items: &[Item]) -> Result<Vec<(Table, run::Staged)>, EtlError> {
    let mut staged = Vec::with_capacity(Table::ALL.len());
    for table in Table::ALL {
        let name = table.def().name;
        let mine: Vec<&Item> = items.iter().filter(|i| i.table == name).collect();
        let Some(first) = mine.first() else {
            return Err(EtlError::Plan(format!("the plan has no span of `{name}`")));
        };
        let plan = Plan {
            key: first.export.clone(),
            size: first.size,
            starts: mine.iter().map(|i| i.start).collect(),
            column: mine.get(1).map_or(1, |i| i.column),
        };
        let bodies = read_reports(warehouse, &mine);
        let mut reports = Vec::with_capacity(mine.len());
        for (item, body) in mine.iter().zip(bodies) {
            let key = report_key(item);
            let report: ShardReport = match body? {
                Some(body) => serde_json::from_slice(&body)
                    .map_err(|e| EtlError::Plan(format!("{}: {e}", warehouse.describe(&key))))?,
                None => {
                    return Err(EtlError::Plan(format!(
                        "{}: missing: span {} of {} of {} did not report",
                        warehouse.describe(&key),
                        item.span,
                        item.spans,
                        item.export
                    )))
                }
            };
            reports.push(Some(match report.outcome {
                Outcome::Written {
                    spanned,
                    rows,
                    object,
                } => Ok((spanned, rows, object)),
                Outcome::Refused { refusal } => Err(EtlError::Input(refusal)),
            }));
        }
        let (parts, mut outcomes) = run::gather(reports);
        match shard::check_tiling(&plan, &mut outcomes) {
            Ok(Ok(())) => staged.push((table, parts)),
            Ok(Err(e)) => return Err(e),
            Err(u) => {
                return Err(EtlError::Plan(format!(
                    "the spans of {} did not tile it: span {} ended at byte {}, the next began at \
                     byte {} (a nested object laid out as a record starts); run base a with \
                     `base_a_engine: function`, which reads it whole",
                    plan.key, u.span, u.ended_at, u.next
                )))
            }
        }
    }
    Ok(staged)
}

/// Reports read side by side at once: the publisher is one invocation, within the function's
/// timeout, and each report is one GET (tens of milliseconds from S3), so one after another a
/// run of some thousands of spans would not fit a minute.
const REPORT_READERS: usize = 16;

/// The reports of `items`, in their order, read [`REPORT_READERS`] at a time: each reader
/// takes a run of them (a report is one small GET, so the runs take about as long).
fn read_reports(
    warehouse: &dyn Storage,
    items: &[&Item],
) -> Vec<Result<Option<Vec<u8>>, crate::error::StorageError>> {
    let per_reader = items.len().div_ceil(REPORT_READERS).max(1);
    std::thread::scope(|s| {
        let readers: Vec<_> = items
            .chunks(per_reader)
            .map(|run| {
                s.spawn(move || {
                    run.iter()
                        .map(|item| warehouse.get(&report_key(item)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        readers
            .into_iter()
            .flat_map(|r| r.join().expect("a reader does not panic"))
            .collect()
    })
}

/// The whole sharded protocol in this process: [`plan`], then `workers` threads taking the
/// items ([`run_item`]), then [`publish`]. What `deployer invoke etl --engine sharded` runs,
/// so that the state machine's steps are the code tested here.
pub fn run_local(
    source: &dyn Storage,
    warehouse: &dyn Storage,
    opts: &Options,
) -> Result<Report, EtlError> {
    let hold = opts.lease.hold;
    let items = plan(source, warehouse, opts, hold)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failure = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.workers.max(1) {
            s.spawn(|| {
                while let Some(item) =
                    items.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    if let Err(e) = run_item(source, warehouse, item) {
                        failure.lock().expect("no panic").get_or_insert(e);
                    }
                }
            });
        }
    });
    // A shard that failed leaves no report: the publisher refuses the run, naming it, and
    // releases the lease.
    let published = publish(warehouse, &opts.run_id, hold);
    match failure.into_inner().expect("no panic") {
        Some(e) => Err(e),
        None => published,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::run::Split;
    use crate::storage::LocalDir;

    /// Base a's seven exports, pretty-printed, with `n` records per fact.
    pub(crate) fn exports(dir: &std::path::Path, n: usize) {
        let dim = |name: &str| format!("[\n  {{\"Id\": 1, \"Name\": \"{name}\"}}\n]");
        let facts = |f: &dyn Fn(usize) -> String| {
            let rows: Vec<String> = (0..n).map(|i| format!("  {}", f(i))).collect();
            format!("[\n{}\n]\n", rows.join(",\n"))
        };
        let files = [
            ("courses", dim("Math")),
            ("universities", dim("UFRJ")),
            ("subjects", dim("Algebra")),
            (
                "students",
                facts(&|i| {
                    format!(
                        "{{\"Id\": \"{i}\", \"CourseId\": 1, \"UniversityId\": {}}}",
                        i % 2
                    )
                }),
            ),
            (
                "student_follow_subject",
                facts(&|i| format!("{{\"StudentId\": \"{i}\", \"SubjectId\": 1}}")),
            ),
            (
                "sessions",
                facts(&|i| format!("{{\"StudentId\": \"{i}\", \"StudentClient\": \"Web\"}}")),
            ),
            (
                "subscriptions",
                facts(&|i| format!("{{\"StudentId\": \"{i}\", \"PlanType\": \"A\"}}")),
            ),
        ];
        std::fs::create_dir_all(dir.join("a")).unwrap();
        for (name, body) in files {
            std::fs::write(dir.join("a").join(format!("{name}.json")), body).unwrap();
        }
    }

    fn options(run: &str) -> Options {
        let mut opts = Options::new(DataFormat::Ndjson);
        opts.run_id = run.to_owned();
        opts
    }

    /// Each table's NDJSON, its parts concatenated in the manifest's order.
    fn tables(wh: &LocalDir) -> Vec<String> {
        Table::ALL
            .iter()
            .map(|t| {
                crate::publish::table_files(wh, t.def())
                    .unwrap()
                    .unwrap()
                    .iter()
                    .map(|k| String::from_utf8(wh.get(k).unwrap().unwrap()).unwrap())
                    .collect()
            })
            .collect()
    }

    const HOLD: Duration = Duration::from_secs(600);

    #[test]
    fn a_shard_delivered_twice_changes_nothing() {
        let src = tempfile::tempdir().unwrap();
        exports(src.path(), 50);
        let source = LocalDir::new(src.path());
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole = LocalDir::new(one.path());
        crate::run::run(&source, &whole, &options("r1")).unwrap();

        let wh = LocalDir::new(two.path());
        let mut opts = options("r2");
        opts.split = Split::Pieces(4);
        let items = plan(&source, &wh, &opts, HOLD).unwrap();
        assert_eq!(items.len(), 4 * 4, "four spans of each export");
        for item in items.iter().chain(items.iter().rev()) {
            run_item(&source, &wh, item).unwrap();
        }
        let report = publish(&wh, "r2", HOLD).unwrap();
        assert_eq!(report.tables.iter().map(|t| t.rows).sum::<u64>(), 4 * 50);
        assert_eq!(tables(&wh), tables(&whole));
        assert!(lease::read(&wh, Base::A).unwrap().unwrap().released);
        assert!(wh.list(&run_folder("r2")).unwrap().is_empty());
    }

    #[test]
    fn a_shard_that_never_reported_fails_the_run_and_frees_the_lease() {
        let src = tempfile::tempdir().unwrap();
        exports(src.path(), 20);
        let source = LocalDir::new(src.path());
        let dir = tempfile::tempdir().unwrap();
        let wh = LocalDir::new(dir.path());
        let mut opts = options("r3");
        opts.split = Split::Pieces(3);
        let items = plan(&source, &wh, &opts, HOLD).unwrap();
        // A second run waits for the lease the plan holds, then is refused naming it.
        let mut second = options("r4");
        second.lease.wait = Duration::from_millis(10);
        let held = crate::run::run(&source, &wh, &second).unwrap_err();
        assert!(held.to_string().contains("r3"), "{held}");
        // The last span's shard was killed before its report.
        for item in &items[..items.len() - 1] {
            run_item(&source, &wh, item).unwrap();
        }
        let err = publish(&wh, "r3", HOLD).unwrap_err().to_string();
        assert!(
            err.contains("did not report") && err.contains("subscriptions"),
            "{err}"
        );
        assert!(lease::read(&wh, Base::A).unwrap().unwrap().released);
        let left: Vec<String> = wh.list("a/").unwrap();
        assert_eq!(left, ["a/_runs/lease.json"], "no part, plan or report left");
    }
}
