//! The one `bootstrap` executable of the stage's three functions (`provided.al2023`).
//! `PIPELINE_FUNCTION` (set by the template) says which handler this function runs.

use std::sync::Arc;

use etl::handlers::{
    self, emr_starter, etl as etl_handler, process_env, site_events, table_refresher,
};
use etl::storage::S3Bucket;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use stack_model::pipeline::FUNCTION_ENV;
use stack_model::stage::FunctionRole;

// musl's allocator made the Parquet path about 1.6x slower (BUILD-NOTES).
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = handlers::required(&process_env, FUNCTION_ENV)?;
    let conf = handlers::aws_config().await;
    match FunctionRole::ALL.iter().find(|f| f.as_str() == function) {
        Some(FunctionRole::Etl) => {
            let settings = etl_handler::EtlSettings::from_env(&process_env)?;
            let mut ctx = etl_handler::EtlContext::s3(handlers::s3_client(&conf), &settings);
            ctx.failures = handlers::failure_queue(&conf);
            ctx.shards = settings
                .state_machine_arn
                .clone()
                .map(|arn| etl_handler::ShardsContext {
                    engine: settings.engine,
                    state_machine_arn: arn,
                    shard_bytes: settings.shard_bytes,
                    memory_mb: settings.memory_mb,
                    sfn: aws_sdk_sfn::Client::new(&conf),
                });
            let ctx = Arc::new(ctx);
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<_>| {
                etl_handler::handle(ev, ctx.clone())
            }))
            .await
        }
        Some(FunctionRole::SiteEvents) => {
            let settings = site_events::SiteEventsSettings::from_env(&process_env)?;
            let mut ctx = site_events::SiteEventsContext::s3(handlers::s3_client(&conf), settings);
            ctx.failures = handlers::failure_queue(&conf);
            let ctx = Arc::new(ctx);
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<_>| {
                site_events::handle(ev, ctx.clone())
            }))
            .await
        }
        Some(FunctionRole::EmrStarter) => {
            let settings = emr_starter::JobSettings::from_env(&process_env)?;
            let ctx = Arc::new(emr_starter::StarterContext {
                emr: aws_sdk_emrserverless::Client::new(&conf),
                warehouse: Arc::new(S3Bucket::new(
                    handlers::s3_client(&conf),
                    &settings.warehouse_bucket,
                    tokio::runtime::Handle::current(),
                )),
                settings,
            });
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<_>| {
                emr_starter::handle(ev, ctx.clone())
            }))
            .await
        }
        Some(FunctionRole::TableRefresher) => {
            let bucket = handlers::required(&process_env, "WAREHOUSE_BUCKET")?;
            let ctx = Arc::new(table_refresher::RefresherContext {
                warehouse: Arc::new(S3Bucket::new(
                    handlers::s3_client(&conf),
                    bucket,
                    tokio::runtime::Handle::current(),
                )),
                glue: aws_sdk_glue::Client::new(&conf),
                crawler: handlers::required(&process_env, "CRAWLER_NAME")?,
            });
            lambda_runtime::run(service_fn(move |ev: LambdaEvent<_>| {
                table_refresher::handle(ev, ctx.clone())
            }))
            .await
        }
        None => Err(format!(
            "{FUNCTION_ENV}=`{function}` names no function; expected one of: {}",
            FunctionRole::ALL
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into()),
    }
}
