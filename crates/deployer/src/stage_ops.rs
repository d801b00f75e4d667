//! The small verbs over a deployed stage: `trigger`, `info`, `logs`, and `invoke --stage
//! --local` (the handler's code in this process against the stage's buckets).

use std::sync::Arc;

use anyhow::{bail, Context};

use crate::aws::Aws;
use crate::cli::{FunctionArg, Global, LogsArgs, StageArgs, TriggerArgs, TriggerWhat};
use crate::cloudformation::status::{describe, status_of};
use stack_model::pipeline::outputs;
use stack_model::stage::FunctionRole;

/// The deployed stack's outputs; an error naming the stage when it is not deployed.
pub async fn stack_outputs(
    aws: &Aws,
    c: &stack_model::StageConfig,
) -> anyhow::Result<Vec<(String, String)>> {
    let name = c.stage.stack_name();
    let stack = describe(&aws.cfn, &name).await?.with_context(|| {
        format!(
            "stage {} is not deployed in {} (no stack {name}): run `deployer deploy --stage {}`",
            c.stage, c.region, c.stage
        )
    })?;
    Ok(stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_owned(),
                o.output_value().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

pub fn output<'a>(outs: &'a [(String, String)], key: &str) -> anyhow::Result<&'a str> {
    outs.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .with_context(|| format!("the stage's stack has no output {key}: deploy it again"))
}

pub async fn trigger(global: &Global, args: &TriggerArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    serde_json::from_str::<serde_json::Value>(&args.message).context("--message must be JSON")?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let topic = output(
        &outs,
        match args.what {
            TriggerWhat::Etl => outputs::ETL_TOPIC,
            TriggerWhat::Spark => outputs::EMR_TOPIC,
        },
    )?;
    let sns = aws_sdk_sns::Client::new(&aws.conf);
    let out = sns
        .publish()
        .topic_arn(topic)
        .message(&args.message)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "publishing to {topic}: {}",
                aws_sdk_sns::error::DisplayErrorContext(e)
            )
        })?;
    println!(
        "published message {} to {topic}",
        out.message_id().unwrap_or("?")
    );
    Ok(())
}

pub async fn info(global: &Global, args: &StageArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    println!(
        "stage: {} (region {}{})",
        c.stage,
        c.region,
        if c.protected { ", protected" } else { "" }
    );
    let mut any = false;
    for name in [c.stage.bootstrap_stack_name(), c.stage.stack_name()] {
        match describe(&aws.cfn, &name).await? {
            None => println!("{name}: not deployed"),
            Some(s) => {
                any = true;
                let updated = s
                    .last_updated_time()
                    .or(s.creation_time())
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!("{name}: {} (last change {updated})", status_of(&s));
                let mut outs: Vec<_> = s
                    .outputs()
                    .iter()
                    .map(|o| {
                        (
                            o.output_key().unwrap_or_default(),
                            o.output_value().unwrap_or_default(),
                        )
                    })
                    .collect();
                outs.sort();
                for (k, v) in outs {
                    println!("  {k}: {v}");
                }
            }
        }
    }
    if !any {
        println!("deploy it with `deployer deploy --stage {}`", c.stage);
    }
    Ok(())
}

fn role(f: FunctionArg) -> FunctionRole {
    match f {
        FunctionArg::Etl => FunctionRole::Etl,
        FunctionArg::EmrStarter => FunctionRole::EmrStarter,
        FunctionArg::TableRefresher => FunctionRole::TableRefresher,
    }
}

pub async fn logs(global: &Global, args: &LogsArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let group = c.stage.log_group_name(role(args.function));
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws.conf);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - (args.since_minutes as i64) * 60_000;
    let mut token: Option<String> = None;
    let mut n = 0;
    loop {
        let out = logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(since)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reading {group}: {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e)
                )
            })?;
        for e in out.events() {
            n += 1;
            println!("{}", e.message().unwrap_or_default().trim_end());
        }
        match out.next_token() {
            Some(t) if !out.events().is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    if n == 0 {
        eprintln!(
            "no log lines in {group} in the last {} minutes",
            args.since_minutes
        );
    }
    Ok(())
}

/// `invoke etl --stage S --local`: the ETL's code in this process, on the stage's buckets.
pub async fn invoke_etl_on_stage(global: &Global, stage: &str) -> anyhow::Result<()> {
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
    });
    match etl::handlers::etl::run_blocking(ctx).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Err(e) => bail!("the ETL failed; the stage's published tables are unchanged: {e}"),
    }
}
