//! `deployer invoke <function> --stage S --local`: the handler's code in this process against
//! the deployed stage's buckets, crawler or EMR.

use std::sync::Arc;

use anyhow::{bail, Context};

use crate::aws::Aws;
use crate::cli::Global;
use crate::cloudformation::status::{describe, output, stack_outputs};
use stack_model::pipeline::outputs;

/// `invoke etl --stage S --local`: the ETL's code in this process, on the stage's buckets.
pub async fn invoke_etl_on_stage(
    global: &Global,
    stage: &str,
    args: &crate::cli::InvokeArgs,
) -> anyhow::Result<()> {
    let c = global.stage_config(stage)?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let source = output(&outs, outputs::SOURCE_BUCKET)?.to_owned();
    let warehouse = output(&outs, outputs::WAREHOUSE_BUCKET)?.to_owned();
    let handle = tokio::runtime::Handle::current();
    let ctx = Arc::new(etl::handlers::etl::EtlContext {
        source: Arc::new(etl::storage::S3Bucket::new(
            aws.s3.clone(),
            source,
            handle.clone(),
        )),
        warehouse: Arc::new(etl::storage::S3Bucket::new(
            aws.s3.clone(),
            warehouse,
            handle,
        )),
        format: c.table_format,
        failures: None,
        // A local run is one process: `--engine sharded` runs the shards on its threads.
        shards: None,
    });
    match etl::handlers::etl::run_blocking(ctx, super::etl_options(args, c.table_format)).await {
        Ok(report) => crate::output::print_json(&report),
        Err(e) => bail!("the ETL failed; the stage's published tables are unchanged: {e}"),
    }
}

/// `invoke table-refresher --stage S --local`: reads the stage's markers and starts its
/// crawler when a base is complete, as the function would on a marker's notification.
pub async fn invoke_refresher_on_stage(global: &Global, stage: &str) -> anyhow::Result<()> {
    use etl::handlers::table_refresher::{refresh, RefresherContext};
    let c = global.stage_config(stage)?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let ctx = Arc::new(RefresherContext {
        warehouse: Arc::new(etl::storage::S3Bucket::new(
            aws.s3.clone(),
            output(&outs, outputs::WAREHOUSE_BUCKET)?,
            tokio::runtime::Handle::current(),
        )),
        glue: aws_sdk_glue::Client::new(&aws.conf),
        crawler: output(&outs, outputs::CRAWLER)?.to_owned(),
    });
    let mut results = Vec::new();
    for base in [etl::warehouse::Base::A, etl::warehouse::Base::B] {
        results.push(
            refresh(base, &ctx)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    crate::output::print_json(&serde_json::json!({ "bases": results }))?;
    Ok(())
}

/// `invoke emr-starter --stage S --local`: the StartJobRun request the function would send,
/// built from the stage's stack, sent from here (on AWS it runs the job on the stage's
/// application).
pub async fn invoke_starter_on_stage(global: &Global, stage: &str) -> anyhow::Result<()> {
    use etl::handlers::emr_starter::{request, JobSettings};
    let c = global.stage_config(stage)?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let stack = describe(&aws.cfn, &c.stage.stack_name())
        .await?
        .context("the stage's stack vanished")?;
    let param = |key: &str| -> anyhow::Result<String> {
        stack
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some(key))
            .and_then(|p| p.parameter_value())
            .map(str::to_owned)
            .with_context(|| format!("the stage's stack has no parameter {key}"))
    };
    let settings = JobSettings {
        stage: c.stage.as_str().to_owned(),
        source_bucket: output(&outs, outputs::SOURCE_BUCKET)?.to_owned(),
        warehouse_bucket: output(&outs, outputs::WAREHOUSE_BUCKET)?.to_owned(),
        spark_job_uri: format!(
            "s3://{}/{}",
            param(stack_model::pipeline::params::ARTIFACTS_BUCKET)?,
            param(stack_model::pipeline::params::SPARK_JOB_KEY)?
        ),
        application_id: output(&outs, outputs::EMR_APPLICATION)?.to_owned(),
        job_role_arn: output(&outs, outputs::EMR_JOB_ROLE)?.to_owned(),
        log_uri: format!(
            "s3://{}/{}",
            output(&outs, outputs::JOBS_BUCKET)?,
            stack_model::pipeline::emr::LOG_PREFIX
        ),
        students_format: c.table_format,
    };
    let client = aws_sdk_emrserverless::Client::new(&aws.conf);
    let run = etl::run::new_run_id();
    // A fresh token: each invocation from here is a new run.
    let out = request(&client, &settings, &run, &format!("local-{run}"))
        .send()
        .await
        .map_err(|e| crate::aws::failed("StartJobRun", e))?;
    crate::output::print_json(&serde_json::json!({
        "application_id": out.application_id(),
        "job_run_id": out.job_run_id(),
        "name": settings.run_name(&run),
        "run": run,
    }))
}
