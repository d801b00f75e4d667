//! The `events` table: each event's columns, built into Arrow batches and written one file
//! per date (docs/SEMANTICS.md, `events`: folders `day=YYYY-MM-DD/`, so each file's Parquet
//! statistics hold one date).
//!
//! Memory: one worker buffers at most `budget` bytes of events, in one set of column builders
//! per date, then writes one file per date it holds; so a run writes (flushes x dates) files
//! per worker, never holding more than the budget, whatever the number of dates. Each date's
//! rows keep their input order.

use std::sync::Arc;

use arrow_array::builder::TimestampMicrosecondBuilder;
use arrow_array::builder::{BooleanBuilder, Date32Builder, Int64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use super::derive;
use super::line::{slot, slots, Event};
use crate::storage::Storage;
use crate::text_column::TextColumn;
use crate::warehouse::{table, ColumnType, TableDef};

/// Where a column of `events` comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A source key as text.
    Key(usize),
    /// The first present of two spellings (`Page Name`, else `PageName`).
    Renamed(usize, usize),
    EventTime,
    EventDate,
    Nth,
    DeviceNew,
    StudentId,
    ClientType,
}

/// The source of each contract column, by name (every column of `events` must have one).
fn source(name: &str) -> Option<Source> {
    use Source::*;
    Some(match name {
        "event_time" => EventTime,
        "event_date" => EventDate,
        "nth" => Nth,
        "device_new" => DeviceNew,
        "student_id" => StudentId,
        "client_type" => ClientType,
        "page_name" => Renamed(slot("Page Name"), slot("PageName")),
        "page_category" => Renamed(slot("Page Category"), slot("PageCategory")),
        "page_category_1" => Renamed(slot("Page Category 1"), slot("PageCategory1")),
        "page_category_2" => Renamed(slot("Page Category 2"), slot("PageCategory2")),
        "page_category_3" => Renamed(slot("Page Category 3"), slot("PageCategory3")),
        "last_accessed_url" => Renamed(slot("Last Accessed Url"), slot("LastAccessedUrl")),
        "first_accessed_page" => Renamed(slot("first-accessed-page"), slot("firstAccessedPage")),
        other => Key(super::line::slot_of(other)?),
    })
}

/// Columns written without a Parquet dictionary, as the Spark job writes them: ids and times
/// rarely repeat in a file, and the page paths are long.
const NO_DICTIONARY: [&str; 7] = [
    "at",
    "event_time",
    "install_uuid",
    "uuid",
    "student_id",
    "page_name",
    "last_accessed_url",
];

/// The `events` table of the contract.
pub fn def() -> &'static TableDef {
    table("events").expect("the contract has `events`")
}

/// The Arrow type of a contract column.
pub fn arrow_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::String => DataType::Utf8,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Boolean => DataType::Boolean,
        // UTC-adjusted micros: Athena and Spark read it as a timestamp.
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Date => DataType::Date32,
    }
}

/// A table's Arrow schema from the contract.
pub fn schema_of(def: &TableDef) -> SchemaRef {
    Arc::new(Schema::new(
        def.columns
            .iter()
            .map(|c| Field::new(c.name, arrow_type(c.kind), true))
            .collect::<Vec<_>>(),
    ))
}

/// Base b's Parquet settings: zstd, as the Spark job writes; without a dictionary for the
/// columns `no_dictionary` names.
pub fn writer_properties(no_dictionary: &[&str]) -> WriterPropertiesBuilder {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("pdcase site-events {}", env!("CARGO_PKG_VERSION")));
    for c in no_dictionary {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    props
}

/// The `events` files' settings: [`writer_properties`], and no statistics for the text
/// columns.
///
/// Why no text statistics: a reader skips a file or a page by its min and max, and the text
/// columns of `events` are in no order within a file (one date, every student, page and
/// device of that day), so their min and max span nearly every value and skip nothing.
/// Computing them compared every value with two others: 5% of base b's time in `perf`. The
/// columns a query narrows by are the date and time, whose statistics stay (each file holds
/// one date).
fn events_properties(def: &TableDef) -> WriterProperties {
    let mut props = writer_properties(&NO_DICTIONARY);
    for c in def.columns.iter().filter(|c| c.kind == ColumnType::String) {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(c.name), EnabledStatistics::None);
    }
    props.build()
}

enum Builder {
    Str(TextColumn),
    Time(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
}

/// Events being buffered by one worker, and the files it wrote of them.
pub struct EventBatch {
    schema: SchemaRef,
    sources: Vec<Source>,
    kinds: Vec<ColumnType>,
    /// The buffered events of each date (`None`: without a date), the last used first to look
    /// at. Building each date's columns apart, rather than reordering a flush by date, copies
    /// no event twice (the reordering was 3% of base b in `perf`).
    days: Vec<Day>,
    bytes: usize,
    /// The run's folder of the table, and the worker and flush numbers that name its files.
    folder: String,
    worker: usize,
    flushes: usize,
    properties: WriterProperties,
}

/// An event's derived values, computed once and shared with the counts.
pub struct Derived<'e> {
    pub student_id: Option<&'e str>,
    pub client_type: Option<&'e str>,
    pub time: Option<(i64, i32)>,
}

impl<'e> Derived<'e> {
    pub fn of(event: &'e Event<'_>) -> Self {
        let (student_id, client_type) = derive::student_and_client(event.get(slots::KEY));
        Derived {
            student_id,
            client_type,
            time: event.get(slots::AT).and_then(derive::event_time),
        }
    }
}

/// `Page Name`, else `PageName`.
pub fn renamed<'e>(event: &'e Event<'_>, first: usize, second: usize) -> Option<&'e str> {
    event.get(first).or_else(|| event.get(second))
}

impl EventBatch {
    /// An empty buffer of worker `worker`, writing under `folder` (the run's folder of
    /// `events`).
    pub fn new(folder: &str, worker: usize) -> Self {
        let def = def();
        EventBatch {
            schema: schema_of(def),
            sources: def
                .columns
                .iter()
                .map(|c| {
                    source(c.name).unwrap_or_else(|| panic!("no source for events.{}", c.name))
                })
                .collect(),
            kinds: def.columns.iter().map(|c| c.kind).collect(),
            days: Vec::new(),
            bytes: 0,
            folder: folder.to_owned(),
            worker,
            flushes: 0,
            properties: events_properties(def),
        }
    }

    /// About how much memory the buffered events take (their source lines' length).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn push(&mut self, event: &Event<'_>, derived: &Derived<'_>, line_len: usize) {
        let date = derived.time.map(|t| t.1);
        let at = match self.days.iter().position(|d| d.date == date) {
            Some(at) => at,
            None => {
                let builders = self.kinds.iter().map(|k| builder(*k, 0)).collect();
                self.days.push(Day { date, builders });
                self.days.len() - 1
            }
        };
        if at > 0 {
            // Events come roughly in time order: the date just used is looked at first.
            self.days.swap(0, at);
        }
        let day = &mut self.days[0];
        for (b, s) in day.builders.iter_mut().zip(&self.sources) {
            match (b, *s) {
                (Builder::Str(b), Source::Key(k)) => b.append_option(event.get(k)),
                (Builder::Str(b), Source::Renamed(x, y)) => b.append_option(renamed(event, x, y)),
                (Builder::Str(b), Source::StudentId) => b.append_option(derived.student_id),
                (Builder::Str(b), Source::ClientType) => b.append_option(derived.client_type),
                (Builder::Time(b), Source::EventTime) => b.append_option(derived.time.map(|t| t.0)),
                (Builder::Date(b), Source::EventDate) => b.append_option(date),
                (Builder::Int(b), Source::Nth) => {
                    b.append_option(event.get(slots::NTH).and_then(derive::bigint))
                }
                (Builder::Bool(b), Source::DeviceNew) => {
                    b.append_option(event.get(slots::DEVICE_NEW).and_then(derive::boolean))
                }
                (_, s) => unreachable!("column source {s:?} does not match its type"),
            }
        }
        self.bytes += line_len;
    }

    /// Writes the buffered events as one file per date under the folder
    /// (`day=YYYY-MM-DD/`, or `day=__HIVE_DEFAULT_PARTITION__` for events without a date),
    /// named `part-<worker>-<flush>.parquet`; returns the keys written.
    ///
    /// A date's builders stay for the next flush, with room for as many events: a finished
    /// builder starts again from empty vectors, and growing each column again by doubling
    /// reallocated and copied it at every step (in `perf`, `reserve` under the builders'
    /// appends: 5% of base b). A date without events since the last flush is dropped.
    pub fn flush(&mut self, warehouse: &dyn Storage) -> std::io::Result<Vec<String>> {
        self.days.retain(|d| d.rows() > 0);
        let mut written = Vec::new();
        for day in &mut self.days {
            let batch = day.take(&self.schema);
            let name = match day.date {
                Some(d) => day_text(d),
                None => "__HIVE_DEFAULT_PARTITION__".to_string(),
            };
            let key = format!(
                "{}day={name}/part-{}-{}.parquet",
                self.folder, self.worker, self.flushes
            );
            write_parquet(warehouse, &key, &batch, self.properties.clone())?;
            written.push(key);
        }
        self.bytes = 0;
        if !written.is_empty() {
            self.flushes += 1;
        }
        Ok(written)
    }
}

/// One date's buffered events, a builder per column.
struct Day {
    date: Option<i32>,
    builders: Vec<Builder>,
}

impl Day {
    fn rows(&self) -> usize {
        self.builders.first().map_or(0, Builder::len)
    }

    /// The buffered events as one batch; the builders start over, with room for as many.
    fn take(&mut self, schema: &SchemaRef) -> RecordBatch {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::take).collect();
        RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema")
    }
}

impl Builder {
    /// Rows appended since the last batch.
    fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Builder::Str(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::Date(b) => b.len(),
            Builder::Int(b) => b.len(),
            Builder::Bool(b) => b.len(),
        }
    }

    /// The column so far; the builder starts over with room for as many rows (and bytes).
    fn take(&mut self) -> ArrayRef {
        let rows = self.len() + self.len() / 8;
        let (kind, done): (ColumnType, ArrayRef) = match self {
            // A text column starts over by itself, with room for as many rows and bytes.
            Builder::Str(b) => return Arc::new(b.finish()),
            Builder::Time(b) => (ColumnType::Timestamp, Arc::new(b.finish())),
            Builder::Date(b) => (ColumnType::Date, Arc::new(b.finish())),
            Builder::Int(b) => (ColumnType::BigInt, Arc::new(b.finish())),
            Builder::Bool(b) => (ColumnType::Boolean, Arc::new(b.finish())),
        };
        *self = builder(kind, rows);
        done
    }
}

/// An empty builder for a column of `kind`, with room for `rows` (a text column's room for
/// bytes grows with its first batch, then [`TextColumn::finish`] keeps it).
fn builder(kind: ColumnType, rows: usize) -> Builder {
    match kind {
        ColumnType::String => Builder::Str(TextColumn::with_capacity(rows, 0)),
        ColumnType::Timestamp => {
            Builder::Time(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"))
        }
        ColumnType::Date => Builder::Date(Date32Builder::with_capacity(rows)),
        ColumnType::BigInt => Builder::Int(Int64Builder::with_capacity(rows)),
        ColumnType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(rows)),
    }
}

/// `YYYY-MM-DD` of a day number since 1970-01-01.
pub fn day_text(days: i32) -> String {
    chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
        .expect("a day of `event_time` (years 0 to 9999) is within chrono's range")
        .date_naive()
        .to_string()
}

/// Writes `batch` as one Parquet object at `key`.
pub fn write_parquet(
    warehouse: &dyn Storage,
    key: &str,
    batch: &RecordBatch,
    properties: WriterProperties,
) -> std::io::Result<()> {
    let out = warehouse
        .create(key)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(properties))
        .map_err(std::io::Error::other)?;
    writer.write(batch).map_err(std::io::Error::other)?;
    let out = writer.into_inner().map_err(std::io::Error::other)?;
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_of_the_contract_has_a_source() {
        let batch = EventBatch::new("b/events/run=r/", 0);
        assert_eq!(batch.sources.len(), def().columns.len());
    }

    #[test]
    fn day_numbers_are_dates() {
        assert_eq!(day_text(0), "1970-01-01");
        assert_eq!(day_text(18202), "2019-11-02");
        assert_eq!(day_text(18321), "2020-02-29");
        assert_eq!(day_text(-1), "1969-12-31");
    }
}
