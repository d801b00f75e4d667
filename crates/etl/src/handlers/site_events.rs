//! The site-events function: on stages whose `base_b_engine` is `function`, a message on the
//! stage's EMR topic runs base b here ([`crate::site_events`]) instead of submitting the Spark job to EMR Serverless.

use std::sync::Arc;

use aws_lambda_events::event::sns::SnsEvent;
use lambda_runtime::LambdaEvent;
use tokio::runtime::Handle;

use super::recorded::{run_recorded, Failure, FailureQueue, RunSpec};
use super::{required, EnvError};
use crate::run::new_run_id;
use crate::site_events::{self, fit, Options, Report, SiteEventsError, EVENTS_PREFIX};
use crate::storage::{S3Bucket, Storage};
use crate::warehouse::{Base, DataFormat};
use stack_model::pipeline::TABLE_FORMAT_ENV;

/// What the function reads, once per cold start.
#[derive(Clone, Debug)]
pub struct SiteEventsSettings {
    pub stage: String,
    pub source_bucket: String,
    pub warehouse_bucket: String,
    pub students_format: DataFormat,
}

impl SiteEventsSettings {
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        Ok(SiteEventsSettings {
            stage: required(get, "STAGE")?,
            source_bucket: required(get, "SOURCE_BUCKET")?,
            warehouse_bucket: required(get, "WAREHOUSE_BUCKET")?,
            students_format: get(TABLE_FORMAT_ENV)
                .and_then(|f| DataFormat::parse(&f))
                .unwrap_or_default(),
        })
    }
}

/// The buckets one run reads and writes.
pub struct SiteEventsContext {
    pub source: Arc<dyn Storage>,
    pub warehouse: Arc<dyn Storage>,
    pub settings: SiteEventsSettings,
    /// Where a failure for good goes ([`super::recorded`]).
    pub failures: Option<FailureQueue>,
}

impl SiteEventsContext {
    pub fn s3(s3: aws_sdk_s3::Client, settings: SiteEventsSettings) -> Self {
        let handle = Handle::current();
        SiteEventsContext {
            source: Arc::new(S3Bucket::new(
                s3.clone(),
                &settings.source_bucket,
                handle.clone(),
            )),
            warehouse: Arc::new(S3Bucket::new(s3, &settings.warehouse_bucket, handle)),
            settings,
            failures: None,
        }
    }
}

/// Runs base b once per message, recorded ([`super::recorded`]); the report is the result
/// and one log line.
pub async fn handle(
    event: LambdaEvent<SnsEvent>,
    ctx: Arc<SiteEventsContext>,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    for record in &event.payload.records {
        tracing::info!(message_id = %record.sns.message_id, message = %record.sns.message, "base b triggered");
    }
    let message_id = event
        .payload
        .records
        .first()
        .map(|r| r.sns.message_id.clone());
    let limits = fit::Limits {
        memory_mb: u32::try_from(event.context.env_config.memory).unwrap_or(128),
        remaining: super::remaining(event.context.deadline),
    };
    let expires = chrono::Utc::now().timestamp() + limits.remaining.as_secs() as i64 + 60;
    let run_id = new_run_id();
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || {
        let spec = RunSpec {
            warehouse: ctx.warehouse.as_ref(),
            base: Base::B,
            run: &run_id,
            engine: "site-events function",
            message_id: message_id.as_deref(),
            expires,
        };
        run_recorded(
            &spec,
            ctx.failures.as_ref().map(|q| (q, &handle)),
            || match run(&ctx, limits, run_id.clone()) {
                Ok(report) => {
                    let report = serde_json::to_value(&report).expect("a report serializes");
                    tracing::info!(report = %report, "site-events report");
                    Ok(report)
                }
                Err(e) => {
                    let report = match &e {
                        SiteEventsError::TooManyBadLines { report, .. } => {
                            let r = serde_json::to_value(report).expect("a report serializes");
                            tracing::error!(report = %r, "site-events report");
                            Some(r)
                        }
                        _ => None,
                    };
                    Err(Failure {
                        message: format!("{e}; the published tables are unchanged"),
                        transient: e.is_transient(),
                        report,
                    })
                }
            },
        )
    })
    .await?
}

/// Refuses input the function cannot finish, then runs base b.
pub fn run(
    ctx: &SiteEventsContext,
    limits: fit::Limits,
    run_id: String,
) -> Result<Report, SiteEventsError> {
    let input: u64 = site_events::inputs(ctx.source.as_ref())?
        .iter()
        .map(|(_, size)| size)
        .sum();
    fit::check(
        input,
        limits,
        &ctx.settings.stage,
        &ctx.source.describe(EVENTS_PREFIX),
    )?;
    let mut opts = Options::new(run_id);
    opts.students_format = ctx.settings.students_format;
    opts.holder = "site-events function".into();
    opts.lease = super::function_lease(limits.remaining);
    // One vCPU per 1,769 MB: a second worker pays only with a second vCPU. The event buffer
    // stays the measured default (`fit` counts on it).
    opts.workers = ((f64::from(limits.memory_mb) / fit::MB_PER_VCPU).ceil() as usize).clamp(1, 6);
    site_events::run(ctx.source.as_ref(), ctx.warehouse.as_ref(), &opts)
}
