//! The `events` table: each event's columns, built into Arrow batches and written one file
//! per date (docs/SEMANTICS.md, `events`: folders `day=YYYY-MM-DD/`, so each file's Parquet
//! statistics hold one date).
//!
//! Memory: one worker buffers at most `budget` bytes of events, then writes them, sorted by
//! date, as one file per date it holds; so a run writes (flushes x dates) files per worker,
//! never holding more than the budget, whatever the number of dates.

use std::sync::Arc;

use arrow_array::builder::TimestampMicrosecondBuilder;
use arrow_array::builder::{BooleanBuilder, Date32Builder, Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, Date32Array, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use super::derive;
use super::line::{slot, slots, Event};
use crate::storage::Storage;
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
    Str(StringBuilder),
    Time(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
}

/// Events being buffered by one worker, and the files it wrote of them.
pub struct EventBatch {
    schema: SchemaRef,
    sources: Vec<Source>,
    builders: Vec<Builder>,
    date_column: usize,
    rows: usize,
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
            builders: def.columns.iter().map(|c| builder(c.kind)).collect(),
            date_column: def
                .columns
                .iter()
                .position(|c| c.name == "event_date")
                .expect("events has event_date"),
            rows: 0,
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
        for (b, s) in self.builders.iter_mut().zip(&self.sources) {
            match (b, *s) {
                (Builder::Str(b), Source::Key(k)) => b.append_option(event.get(k)),
                (Builder::Str(b), Source::Renamed(x, y)) => b.append_option(renamed(event, x, y)),
                (Builder::Str(b), Source::StudentId) => b.append_option(derived.student_id),
                (Builder::Str(b), Source::ClientType) => b.append_option(derived.client_type),
                (Builder::Time(b), Source::EventTime) => b.append_option(derived.time.map(|t| t.0)),
                (Builder::Date(b), Source::EventDate) => b.append_option(derived.time.map(|t| t.1)),
                (Builder::Int(b), Source::Nth) => {
                    b.append_option(event.get(slots::NTH).and_then(derive::bigint))
                }
                (Builder::Bool(b), Source::DeviceNew) => {
                    b.append_option(event.get(slots::DEVICE_NEW).and_then(derive::boolean))
                }
                (_, s) => unreachable!("column source {s:?} does not match its type"),
            }
        }
        self.rows += 1;
        self.bytes += line_len;
    }

    /// The buffered events as one batch; the buffer starts over, with room for as many.
    ///
    /// Why the room: a finished builder starts again from nothing, and Arrow's buffers are
    /// 64-byte aligned, which the system allocator cannot grow in place (Rust's `realloc` for
    /// such an alignment allocates, copies and frees): growing each column by doubling again
    /// was a copy of every flush and fresh pages to fault in (5% of base b, in `perf`).
    fn take(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                let rows = b.len() + b.len() / 8;
                match b {
                    Builder::Str(b) => {
                        let bytes = b.values_slice().len();
                        let done = b.finish();
                        *b = StringBuilder::with_capacity(rows, bytes + bytes / 8);
                        Arc::new(done)
                    }
                    Builder::Time(b) => {
                        let done = b.finish();
                        *b = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
                        Arc::new(done)
                    }
                    Builder::Date(b) => {
                        let done = b.finish();
                        *b = Date32Builder::with_capacity(rows);
                        Arc::new(done)
                    }
                    Builder::Int(b) => {
                        let done = b.finish();
                        *b = Int64Builder::with_capacity(rows);
                        Arc::new(done)
                    }
                    Builder::Bool(b) => {
                        let done = b.finish();
                        *b = BooleanBuilder::with_capacity(rows);
                        Arc::new(done)
                    }
                }
            })
            .collect();
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), columns).expect("columns match the schema")
    }

    /// Writes the buffered events as one file per date under the folder
    /// (`day=YYYY-MM-DD/`, or `day=__HIVE_DEFAULT_PARTITION__` for events without a date),
    /// named `part-<worker>-<flush>.parquet`; returns the keys written.
    pub fn flush(&mut self, warehouse: &dyn Storage) -> std::io::Result<Vec<String>> {
        if self.rows == 0 {
            return Ok(Vec::new());
        }
        let batch = self.take();
        let dates = dates_of(&batch, self.date_column);
        // Row numbers grouped by date (NULL last), each group in input order.
        let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
        order.sort_by_key(|&i| {
            let i = i as usize;
            (dates.is_null(i), dates.is_valid(i).then(|| dates.value(i)))
        });
        let sorted = if order.windows(2).all(|w| w[0] < w[1]) {
            batch
        } else {
            arrow_select::take::take_record_batch(&batch, &UInt32Array::from(order))
                .map_err(std::io::Error::other)?
        };
        let dates = dates_of(&sorted, self.date_column);
        let date_at = |i: usize| dates.is_valid(i).then(|| dates.value(i));
        let mut written = Vec::new();
        let mut start = 0;
        while start < sorted.num_rows() {
            let date = date_at(start);
            let mut end = start + 1;
            while end < sorted.num_rows() && date_at(end) == date {
                end += 1;
            }
            let day = match date {
                Some(d) => day_text(d),
                None => "__HIVE_DEFAULT_PARTITION__".to_string(),
            };
            let key = format!(
                "{}day={day}/part-{}-{}.parquet",
                self.folder, self.worker, self.flushes
            );
            write_parquet(
                warehouse,
                &key,
                &sorted.slice(start, end - start),
                self.properties.clone(),
            )?;
            written.push(key);
            start = end;
        }
        self.flushes += 1;
        Ok(written)
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
}

/// An empty builder for a column of `kind`.
fn builder(kind: ColumnType) -> Builder {
    match kind {
        ColumnType::String => Builder::Str(StringBuilder::new()),
        ColumnType::Timestamp => {
            Builder::Time(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
        }
        ColumnType::Date => Builder::Date(Date32Builder::new()),
        ColumnType::BigInt => Builder::Int(Int64Builder::new()),
        ColumnType::Boolean => Builder::Bool(BooleanBuilder::new()),
    }
}

/// The `event_date` column of a batch of events.
fn dates_of(batch: &RecordBatch, column: usize) -> Date32Array {
    batch
        .column(column)
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("event_date is Date32")
        .clone()
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
