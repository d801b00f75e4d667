//! The ETL function: a message on the stage's ETL topic runs one ETL from the source bucket
//! into the warehouse bucket.

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::LambdaEvent;
use tokio::runtime::Handle;

use super::recorded::{run_recorded, Failure, FailureQueue, RunSpec};
use super::{required, EnvError};
use crate::run::{self, Options, Report};
use crate::storage::{S3Bucket, Storage};
use crate::warehouse::{Base, DataFormat};
use stack_model::pipeline::TABLE_FORMAT_ENV;

/// What the function needs, read once per cold start.
#[derive(Clone, Debug)]
pub struct EtlSettings {
    pub source_bucket: String,
    pub warehouse_bucket: String,
    pub format: DataFormat,
}

impl EtlSettings {
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let format = match get(TABLE_FORMAT_ENV) {
            None => DataFormat::Parquet,
            Some(f) => DataFormat::parse(&f).ok_or_else(|| EnvError {
                name: TABLE_FORMAT_ENV,
                problem: format!("`{f}` is not `parquet` or `ndjson`"),
            })?,
        };
        Ok(EtlSettings {
            source_bucket: required(get, "SOURCE_BUCKET")?,
            warehouse_bucket: required(get, "WAREHOUSE_BUCKET")?,
            format,
        })
    }
}

/// The storages one run reads and writes, and where a failure for good goes.
pub struct EtlContext {
    pub source: Arc<dyn Storage>,
    pub warehouse: Arc<dyn Storage>,
    pub format: DataFormat,
    pub failures: Option<FailureQueue>,
}

impl EtlContext {
    pub fn s3(s3: aws_sdk_s3::Client, settings: &EtlSettings) -> Self {
        let handle = Handle::current();
        EtlContext {
            source: Arc::new(S3Bucket::new(
                s3.clone(),
                &settings.source_bucket,
                handle.clone(),
            )),
            warehouse: Arc::new(S3Bucket::new(s3, &settings.warehouse_bucket, handle)),
            format: settings.format,
            failures: None,
        }
    }
}

/// Runs the ETL once per message, recorded ([`super::recorded`]); the report is the
/// function's result and one log line.
pub async fn handle(
    event: LambdaEvent<SnsEvent>,
    ctx: Arc<EtlContext>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    for record in &event.payload.records {
        tracing::info!(message_id = %record.sns.message_id, message = %record.sns.message, "ETL triggered");
    }
    let message_id = event
        .payload
        .records
        .first()
        .map(|r| r.sns.message_id.clone());
    let remaining = super::remaining(event.context.deadline);
    let mut opts = Options::new(ctx.format);
    opts.holder = "etl function".into();
    opts.lease = super::function_lease(remaining);
    let expires = chrono::Utc::now().timestamp() + remaining.as_secs() as i64 + 60;
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || {
        let spec = RunSpec {
            warehouse: ctx.warehouse.as_ref(),
            base: Base::A,
            run: &opts.run_id,
            engine: "etl function",
            message_id: message_id.as_deref(),
            expires,
        };
        run_recorded(
            &spec,
            ctx.failures.as_ref().map(|q| (q, &handle)),
            || match run::run(ctx.source.as_ref(), ctx.warehouse.as_ref(), &opts) {
                Ok(report) => {
                    let report = serde_json::to_value(&report).expect("a report serializes");
                    tracing::info!(report = %report, "ETL run published");
                    Ok(report)
                }
                Err(e) => Err(Failure {
                    message: format!("{e}; the published tables are unchanged"),
                    transient: !e.is_bad_input(),
                    report: None,
                }),
            },
        )
    })
    .await?
}

/// Runs the ETL on a blocking thread (it is CPU-bound plain code) and logs its report.
pub async fn run_blocking(
    ctx: Arc<EtlContext>,
    opts: Options,
) -> Result<Report, lambda_runtime::Error> {
    let run_id = opts.run_id.clone();
    let result = tokio::task::spawn_blocking(move || {
        run::run(ctx.source.as_ref(), ctx.warehouse.as_ref(), &opts)
    })
    .await?;
    match result {
        Ok(report) => {
            tracing::info!(report = %serde_json::to_string(&report)?, "ETL run published");
            Ok(report)
        }
        Err(e) => {
            tracing::error!(run = %run_id, error = %e, "ETL run failed; the published tables are unchanged");
            Err(e.into())
        }
    }
}
