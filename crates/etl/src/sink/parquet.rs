//! Parquet through arrow's writer: one string column per contract column, snappy pages,
//! dictionary encoding (most columns repeat: states, cities, clients, plans), the time columns
//! prefix-coded instead ([`column_encoding`]).
//!
//! Memory is bounded by one batch of builders plus one row group of encoded pages.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use super::{extras_json, TableSink};
use crate::record::{text, Raw};
use crate::storage::ObjectWrite;
use crate::text_column::TextColumn;
use crate::transform::{Row, Table};
use crate::warehouse::EXTRA_COLUMN;

const BATCH_ROWS: usize = 32 * 1024;
const ROW_GROUP_ROWS: usize = 512 * 1024;

/// Whether a column's chunks carry min/max statistics (docs/SEMANTICS.md, "Formats"): only
/// the time columns, which the exports hold in time order, so a reader filtering on time skips
/// row groups. Ids are text in no order a range could exclude, and every row group holds
/// every value of the other columns; computing their statistics compared every value twice,
/// 7% of the run (docs/BENCHMARKS.md).
fn keeps_statistics(column: &str) -> bool {
    is_time_column(column)
}

/// The columns of export times (`2019-01-01 11:00:00.000`), in time order in every export.
fn is_time_column(column: &str) -> bool {
    matches!(column, "Date" | "StartTime")
}

/// The columns of record ids (`Id`, `StudentId`): short text, nearly unique, in no order.
fn is_id_column(column: &str) -> bool {
    matches!(column, "Id" | "StudentId")
}

/// How a column's pages are written (docs/SEMANTICS.md, "Formats").
///
/// The time and id columns are prefix-coded (DELTA_BYTE_ARRAY: each value stores the length
/// of the prefix it shares with the one before, then the rest; both lengths bit-packed as
/// deltas) and not compressed.
///
/// Consecutive times share 17 of their 23 or 24 characters on average (generated sessions),
/// so these columns come out 6% to 20% smaller than plain text through snappy; and snappy,
/// 20% of a run, no longer reads the columns that held three quarters of its input
/// (docs/BENCHMARKS.md).
///
/// Ids share little, but plain pages give each id a 4-byte length, which is most of what
/// snappy then removed: prefix-coded, they are no larger, and the run no longer spends a
/// tenth of its CPU compressing them (docs/BENCHMARKS.md, stop 37). Not DELTA_LENGTH_BYTE_ARRAY
/// (the lengths without the prefixes), though it is as small and a little cheaper: Spark 3.5's
/// vectorized reader (EMR 7's) misreads a column of it past its first batch of 4,096 values
/// (SPARK-52240, fixed after 3.5), which `tests/spark/test_reads_base_a.py` caught.
///
/// The warehouse's readers decode the encoding: Athena engine 3 (Trino's Parquet reader),
/// Spark 3.3 and later (EMR 7; PySpark 3.5 in `tests/spark/test_reads_base_a.py`) and DuckDB;
/// the Glue crawler infers the schema, which the encoding does not change.
fn column_encoding(props: WriterPropertiesBuilder, column: &str) -> WriterPropertiesBuilder {
    if !is_time_column(column) && !is_id_column(column) {
        return props;
    }
    let path = || ColumnPath::from(column);
    props
        .set_column_encoding(path(), Encoding::DELTA_BYTE_ARRAY)
        .set_column_compression(path(), Compression::UNCOMPRESSED)
}

pub struct ParquetSink {
    writer: ArrowWriter<Box<dyn ObjectWrite>>,
    schema: SchemaRef,
    /// One builder per contract column; the last is `extra` when the table has it.
    builders: Vec<TextColumn>,
    data_columns: usize,
    has_extra: bool,
    slots: Vec<Option<usize>>,
    extra: Vec<u8>,
    batch_rows: usize,
    rows: u64,
}

fn parquet_error(e: parquet::errors::ParquetError) -> std::io::Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other),
            }
        }
        other => std::io::Error::other(other),
    }
}

impl ParquetSink {
    pub fn new(table: Table, out: Box<dyn ObjectWrite>) -> std::io::Result<Self> {
        let def = table.def();
        let schema: SchemaRef = Arc::new(Schema::new(
            def.columns
                .iter()
                .map(|c| ArrowField::new(c.name, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let has_extra = def.columns.iter().any(|c| c.name == EXTRA_COLUMN);
        let data_columns = def.columns.len() - usize::from(has_extra);
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_created_by(format!("pdcase etl {}", env!("CARGO_PKG_VERSION")));
        // Ids and timestamps are (nearly) unique: a dictionary would only be built to be
        // abandoned. The other columns repeat a few values and compress well with one.
        for c in def.columns {
            if matches!(
                c.name,
                "Id" | "StudentId" | "Date" | "StartTime" | EXTRA_COLUMN
            ) {
                props = props.set_column_dictionary_enabled(ColumnPath::from(c.name), false);
            }
            props = column_encoding(props, c.name);
            if !keeps_statistics(c.name) {
                props = props.set_column_statistics_enabled(
                    ColumnPath::from(c.name),
                    EnabledStatistics::None,
                );
            }
        }
        let props = props.build();
        let writer =
            ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(parquet_error)?;
        Ok(ParquetSink {
            writer,
            builders: (0..def.columns.len())
                .map(|_| TextColumn::with_capacity(BATCH_ROWS, BATCH_ROWS * 16))
                .collect(),
            schema,
            data_columns,
            has_extra,
            slots: vec![None; data_columns],
            extra: Vec::with_capacity(256),
            batch_rows: 0,
            rows: 0,
        })
    }

    fn end_row(&mut self) -> std::io::Result<()> {
        self.batch_rows += 1;
        self.rows += 1;
        if self.batch_rows == BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> std::io::Result<()> {
        if self.batch_rows == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(std::io::Error::other)?;
        self.writer.write(&batch).map_err(parquet_error)?;
        self.batch_rows = 0;
        Ok(())
    }
}

impl TableSink for ParquetSink {
    fn push(&mut self, row: &Row<'_>) -> std::io::Result<()> {
        self.slots.iter_mut().for_each(|s| *s = None);
        for (i, f) in row.iter().enumerate() {
            if let Some(c) = f.col {
                // A later field with the same column wins, as a later duplicate key does.
                self.slots[usize::from(c)] = Some(i);
            }
        }
        for (c, slot) in self.slots.iter().enumerate() {
            let value = slot.and_then(|i| text(row[i].value));
            self.builders[c].append_option(value.as_deref());
        }
        if self.has_extra {
            let b = &mut self.builders[self.data_columns];
            if extras_json(row, &mut self.extra) {
                b.append(std::str::from_utf8(&self.extra).expect("JSON built from UTF-8 text"));
            } else {
                b.append_null();
            }
        }
        self.end_row()
    }

    fn push_three(&mut self, _: [&str; 3], values: [Option<Raw<'_>>; 3]) -> std::io::Result<()> {
        for (b, value) in self.builders.iter_mut().zip(values) {
            b.append_option(value.and_then(text).as_deref());
        }
        for b in &mut self.builders[3..] {
            b.append_null();
        }
        self.end_row()
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<u64> {
        self.flush_batch()?;
        let rows = self.rows;
        let out = self.writer.into_inner().map_err(parquet_error)?;
        out.finish()?;
        Ok(rows)
    }
}
