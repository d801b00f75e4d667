//! The ETL function: a message on the stage's ETL topic runs one ETL from the source bucket
//! into the warehouse bucket.

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::LambdaEvent;
use tokio::runtime::Handle;

use super::{required, EnvError};
use crate::run::{self, Options, Report};
use crate::storage::{S3Bucket, Storage};
use crate::warehouse::DataFormat;
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

/// The storages one run reads and writes.
pub struct EtlContext {
    pub source: Arc<dyn Storage>,
    pub warehouse: Arc<dyn Storage>,
    pub format: DataFormat,
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
        }
    }
}

/// Runs the ETL once; the report is the function's result and one log line.
pub async fn handle(
    event: LambdaEvent<SnsEvent>,
    ctx: Arc<EtlContext>,
) -> Result<Report, lambda_runtime::Error> {
    for record in &event.payload.records {
        tracing::info!(message_id = %record.sns.message_id, message = %record.sns.message, "ETL triggered");
    }
    let mut opts = Options::new(ctx.format);
    opts.holder = "etl function".into();
    opts.lease = super::function_lease(super::remaining(event.context.deadline));
    run_blocking(ctx, opts).await
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
