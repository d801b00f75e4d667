//! `deployer trigger etl|spark --stage S`: publishes a message to the stage's topic, which
//! starts the ETL function, or base b: the site-events function, or (through the EMR starter)
//! the Spark job, by the stage's `base_b_engine`.

use anyhow::Context;

use crate::aws::Aws;
use crate::cli::{Global, TriggerArgs, TriggerWhat};
use crate::cloudformation::status::{output, stack_outputs};
use stack_model::config::BaseBEngine;
use stack_model::pipeline::outputs;

pub async fn run(global: &Global, args: &TriggerArgs) -> anyhow::Result<()> {
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
        .map_err(|e| crate::aws::failed(format!("publishing to {topic}"), e))?;
    let starts = match (args.what, c.base_b_engine) {
        (TriggerWhat::Etl, _) => "the ETL function",
        (TriggerWhat::Spark, BaseBEngine::Function) => "base b in the site-events function",
        (TriggerWhat::Spark, BaseBEngine::Emr) => {
            "the EMR starter (a job run on the stage's EMR Serverless application)"
        }
    };
    println!(
        "published message {} to {topic}: it starts {starts}",
        out.message_id().unwrap_or("?")
    );
    Ok(())
}
