//! Table writers: rows in, one data object out (Parquet or NDJSON).

mod ndjson;
mod parquet;

pub use self::ndjson::NdjsonSink;
pub use self::parquet::ParquetSink;

use crate::record::Raw;
use crate::storage::ObjectWrite;
use crate::transform::tables::picked_row;
use crate::transform::{Row, Table};
use crate::warehouse::DataFormat;

/// Writes the rows of one table into one object.
pub trait TableSink: Send {
    fn push(&mut self, row: &Row<'_>) -> std::io::Result<()>;

    /// A row of the table's first three columns, named `names` (`None`: the field is absent),
    /// as [`TableSink::push`] writes the row holding those fields in that order. For the
    /// tables whose rows are three picked fields (`Table::pick`): the Parquet sink appends them
    /// without a row being built.
    fn push_three(
        &mut self,
        names: [&str; 3],
        values: [Option<Raw<'_>>; 3],
    ) -> std::io::Result<()> {
        let mut row = Row::new();
        picked_row(&mut row, names, values);
        self.push(&row)
    }

    /// Completes the object (Parquet footer, last upload part) and returns the row count.
    fn finish(self: Box<Self>) -> std::io::Result<u64>;
}

/// The sink for `table` in `format`, writing to `out`.
pub fn for_format(
    format: DataFormat,
    table: Table,
    out: Box<dyn ObjectWrite>,
) -> std::io::Result<Box<dyn TableSink>> {
    Ok(match format {
        DataFormat::Parquet => Box::new(ParquetSink::new(table, out)?),
        DataFormat::Ndjson => Box::new(NdjsonSink::new(out)),
    })
}

/// Appends the fields without a column as one JSON object (the `extra` column's value).
fn extras_json(row: &Row<'_>, out: &mut Vec<u8>) -> bool {
    out.clear();
    for f in row.iter().filter(|f| f.col.is_none()) {
        out.push(if out.is_empty() { b'{' } else { b',' });
        crate::record::write_name(out, &f.name);
        out.push(b':');
        out.extend_from_slice(f.value.compact().as_bytes());
    }
    if out.is_empty() {
        return false;
    }
    out.push(b'}');
    true
}
