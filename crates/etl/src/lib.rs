//! The pipeline's runtime code.
//!
//! - Base a: the ETL ([`run`]), which streams the JSON exports ([`json_array`], [`record`])
//!   through the joins ([`transform`]) into Parquet or NDJSON ([`sink`]), stages every table
//!   and then publishes them ([`snapshot`]), through one storage abstraction ([`storage`]):
//!   S3 or a local folder.
//! - The Lambda handlers ([`handlers`]) and the `bootstrap` that dispatches to them.
//! - Base b, two engines with one semantics: [`site_events`], which the site-events function
//!   runs on stages whose `base_b_engine` is `function`; and the Spark job
//!   (`spark/site_events.py`), a PySpark script that the deployer uploads as an artifact and the
//!   EMR starter submits to the stage's EMR Serverless application. Both are tested with real PySpark in
//!   `tests/spark/`, against each other and against plain Python.
//! - The warehouse contract both bases write by (re-exported from stack-model).

pub mod engine;
pub mod error;
pub mod handlers;
pub mod json_array;
pub mod lease;
pub mod publish;
pub mod record;
pub mod run;
pub mod runs;
pub mod shard;
pub mod sharded;
mod short_eq;
pub mod sink;
pub mod site_events;
pub mod snapshot;
pub mod storage;
pub mod text_column;
pub mod transform;

pub use stack_model::warehouse;

/// The Spark job's file name, as uploaded (under a content-hash key) and submitted.
pub const SPARK_JOB_FILE: &str = "site_events.py";

/// The Spark job's source, embedded so the deployer ships exactly the tested script.
pub const SPARK_JOB: &str = include_str!("../spark/site_events.py");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_writes_every_base_b_table_of_the_contract() {
        // Each table's folder appears in the job as the place it writes to.
        for table in warehouse::tables_of(warehouse::Base::B) {
            let needle = format!("\"{}\"", table.folder);
            let written =
                SPARK_JOB.contains(&needle) || SPARK_JOB.contains(&format!("/{}\"", table.folder));
            assert!(
                written,
                "the Spark job never names the folder of `{}`",
                table.name
            );
        }
        assert!(SPARK_JOB.contains("def main("));
    }
}
