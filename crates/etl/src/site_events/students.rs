//! The warehouse's `students` table, as the city and state of each student id
//! (docs/SEMANTICS.md, base b, "City and state": ids by their text, the last row of an id
//! held twice wins).

use arrow_array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rustc_hash::FxHashMap;

use super::SiteEventsError;
use crate::storage::Storage;
use crate::warehouse::{table, DataFormat};

type Place = (Option<Box<str>>, Option<Box<str>>);

/// City and state by student id.
#[derive(Debug, Default)]
pub struct Students {
    by_id: FxHashMap<Box<str>, Place>,
}

impl Students {
    pub fn get(&self, id: &str) -> Option<(Option<&str>, Option<&str>)> {
        self.by_id
            .get(id)
            .map(|(c, s)| (c.as_deref(), s.as_deref()))
    }

    fn insert(&mut self, id: Option<String>, city: Option<String>, state: Option<String>) {
        if let Some(id) = id {
            self.by_id
                .insert(id.into(), (city.map(Into::into), state.map(Into::into)));
        }
    }

    /// Reads the `students` table through its manifest (the files of the one run it names,
    /// never the folder, where an older run's files and a run in progress also lie), in the
    /// base-a format the stage writes.
    pub fn read(warehouse: &dyn Storage, format: DataFormat) -> Result<Students, SiteEventsError> {
        let def = table("students").expect("the contract has students");
        let Some(keys) = crate::publish::table_files(warehouse, def)? else {
            return Err(SiteEventsError::Students(format!(
                "{}: no students table; run the ETL (base a) first",
                warehouse.describe(&crate::publish::manifest_key(def))
            )));
        };
        let mut students = Students::default();
        for key in keys {
            let what = warehouse.describe(&key);
            let body = warehouse.get(&key)?.ok_or_else(|| {
                SiteEventsError::Students(format!(
                    "{what}: named by the students manifest but missing; run the ETL (base a) again"
                ))
            })?;
            match format {
                DataFormat::Parquet => students.add_parquet(body, &what)?,
                DataFormat::Ndjson => students.add_ndjson(&body, &what)?,
            }
        }
        Ok(students)
    }

    fn add_parquet(&mut self, body: Vec<u8>, what: &str) -> Result<(), SiteEventsError> {
        let bad = |e: &dyn std::fmt::Display| SiteEventsError::Students(format!("{what}: {e}"));
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
            .map_err(|e| bad(&e))?;
        let schema = builder.parquet_schema();
        let mut wanted = Vec::new();
        for name in ["Id", "City", "State"] {
            let i = (0..schema.num_columns())
                .find(|&i| schema.column(i).name() == name)
                .ok_or_else(|| bad(&format!("the students table lacks column {name}")))?;
            wanted.push(i);
        }
        let mask = ProjectionMask::leaves(schema, wanted);
        let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(&e))?;
            let column = |name: &str| -> Result<StringArray, SiteEventsError> {
                let c = batch
                    .column_by_name(name)
                    .ok_or_else(|| bad(&format!("no column {name}")))?;
                arrow_cast(c.as_ref()).map_err(|e| bad(&e))
            };
            let (ids, cities, states) = (column("Id")?, column("City")?, column("State")?);
            for i in 0..batch.num_rows() {
                let text = |a: &StringArray| a.is_valid(i).then(|| a.value(i).to_string());
                self.insert(text(&ids), text(&cities), text(&states));
            }
        }
        Ok(())
    }

    fn add_ndjson(&mut self, body: &[u8], what: &str) -> Result<(), SiteEventsError> {
        for (n, line) in body.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
                .map_err(|e| SiteEventsError::Students(format!("{what}:{}: {e}", n + 1)))?;
            let text = |k: &str| match row.get(k) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            self.insert(text("Id"), text("City"), text("State"));
        }
        Ok(())
    }
}

/// A column as text: the ETL writes every base-a column as a string.
fn arrow_cast(a: &dyn Array) -> Result<StringArray, String> {
    a.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| format!("a column of type {} where text was expected", a.data_type()))
}
