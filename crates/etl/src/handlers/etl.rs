//! The ETL function: a message on the stage's ETL topic runs one ETL from the source bucket
//! into the warehouse bucket, in this function or, on stages whose `base_a_engine` is
//! `sharded` (or `auto`, for exports past what this function reads in half its time), as
//! shards under the stage's state machine ([`super::shards`]), which invokes this function
//! for each shard and to publish.

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use tokio::runtime::Handle;

use super::recorded::{run_recorded, Failure, FailureQueue, RunSpec};
use super::shards::{self, Step};
use super::{required, EnvError};
use crate::engine::{self, Engine, Limits};
use crate::run::{self, Options, Report, Split};
use crate::storage::{S3Bucket, Storage};
use crate::warehouse::{Base, DataFormat};
use stack_model::config::BaseAEngine;
use stack_model::pipeline::shards::{
    BASE_A_ENGINE_ENV, SHARD_BYTES, SHARD_BYTES_ENV, STATE_MACHINE_ARN_ENV,
};
use stack_model::pipeline::TABLE_FORMAT_ENV;

/// What the function needs, read once per cold start.
#[derive(Clone, Debug)]
pub struct EtlSettings {
    pub source_bucket: String,
    pub warehouse_bucket: String,
    pub format: DataFormat,
    /// The stage's `base_a_engine`.
    pub engine: BaseAEngine,
    /// The stage's state machine (`sharded` and `auto` stages).
    pub state_machine_arn: Option<String>,
    /// The bytes of one shard's span.
    pub shard_bytes: u64,
    /// The function's memory, as Lambda tells it (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
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
        let engine = match get(BASE_A_ENGINE_ENV) {
            None => BaseAEngine::Function,
            Some(e) => BaseAEngine::parse(&e).ok_or_else(|| EnvError {
                name: BASE_A_ENGINE_ENV,
                problem: format!("`{e}` is not `function`, `sharded` or `auto`"),
            })?,
        };
        let state_machine_arn = if engine.has_state_machine() {
            Some(required(get, STATE_MACHINE_ARN_ENV)?)
        } else {
            None
        };
        let shard_bytes = match get(SHARD_BYTES_ENV) {
            None => SHARD_BYTES,
            Some(b) => b.parse().ok().filter(|b| *b > 0).ok_or_else(|| EnvError {
                name: SHARD_BYTES_ENV,
                problem: format!("`{b}` is not a positive number of bytes"),
            })?,
        };
        Ok(EtlSettings {
            source_bucket: required(get, "SOURCE_BUCKET")?,
            warehouse_bucket: required(get, "WAREHOUSE_BUCKET")?,
            format,
            engine,
            state_machine_arn,
            shard_bytes,
            memory_mb: get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .and_then(|m| m.parse().ok())
                .unwrap_or(1769),
        })
    }
}

/// The storages one run reads and writes, and where a failure for good goes.
pub struct EtlContext {
    pub source: Arc<dyn Storage>,
    pub warehouse: Arc<dyn Storage>,
    pub format: DataFormat,
    pub failures: Option<FailureQueue>,
    /// The sharded engine's settings and client, on stages that hold the state machine.
    pub shards: Option<ShardsContext>,
}

/// What the ETL function needs to run base a as shards.
pub struct ShardsContext {
    pub engine: BaseAEngine,
    pub state_machine_arn: String,
    pub shard_bytes: u64,
    pub memory_mb: u32,
    pub sfn: aws_sdk_sfn::Client,
}

/// What the function is invoked with: a message of its topic, or a step of the state machine.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum EtlEvent {
    Step(Step),
    Sns(SnsEvent),
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
            shards: None,
        }
    }
}

/// A message of the topic runs the ETL once (recorded, [`super::recorded`]) in this function,
/// or starts it as shards; a step of the state machine runs one shard or publishes.
pub async fn handle(
    event: LambdaEvent<EtlEvent>,
    ctx: Arc<EtlContext>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let (payload, context) = event.into_parts();
    let handle = Handle::current();
    match payload {
        EtlEvent::Step(Step::Shard { item }) => {
            tokio::task::spawn_blocking(move || shards::shard(&ctx, &item))
                .await?
                .map_err(Into::into)
        }
        EtlEvent::Step(Step::Publish { run }) => {
            tokio::task::spawn_blocking(move || shards::publish(&ctx, &handle, &run)).await?
        }
        EtlEvent::Sns(sns) => {
            let remaining = super::remaining(context.deadline);
            tokio::task::spawn_blocking(move || on_message(&ctx, &handle, &sns, remaining)).await?
        }
    }
}

/// One message of the ETL topic (blocking).
fn on_message(
    ctx: &EtlContext,
    handle: &Handle,
    sns: &SnsEvent,
    remaining: std::time::Duration,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    for record in &sns.records {
        tracing::info!(message_id = %record.sns.message_id, message = %record.sns.message, "ETL triggered");
    }
    let message_id = sns.records.first().map(|r| r.sns.message_id.clone());
    let mut opts = Options::new(ctx.format);
    opts.holder = "etl function".into();
    opts.lease = super::function_lease(remaining);
    if let Some(sh) = &ctx.shards {
        let engine = match sh.engine {
            BaseAEngine::Function => Engine::Function,
            BaseAEngine::Sharded => Engine::Sharded,
            BaseAEngine::Auto => {
                // A missing export is refused by the engine that runs (the function's run).
                let bytes = run::check_inputs(ctx.source.as_ref())
                    .map(|sizes| sizes.iter().map(|(_, b)| b).sum())
                    .unwrap_or(0);
                let limits = Limits {
                    memory_mb: sh.memory_mb,
                    remaining,
                };
                let choice = engine::choose(bytes, limits);
                tracing::info!(choice = %serde_json::to_string(&choice)?, "base_a_engine auto");
                choice.engine
            }
        };
        if engine == Engine::Sharded {
            opts.engine = engine;
            opts.holder = "etl state machine".into();
            opts.split = Split::Bytes(sh.shard_bytes);
            return shards::start(
                ctx,
                handle,
                &sh.sfn,
                &sh.state_machine_arn,
                &opts,
                message_id.as_deref(),
            );
        }
    }
    let expires = chrono::Utc::now().timestamp() + remaining.as_secs() as i64 + 60;
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
        ctx.failures.as_ref().map(|q| (q, handle)),
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
