//! Hotswap: code-only changes put straight into the stage's functions, without a change set.
//!
//! When the rendered template is identical to the deployed one and only the artifacts differ
//! (the Lambda zip, the Spark job), `deploy --hotswap` updates each function's code
//! (`UpdateFunctionCode` from the content-addressed zip in the artifacts bucket) and the EMR
//! starter's `SPARK_JOB_URI`, and waits until Lambda reports each update `Successful`. The
//! stack then no longer describes what runs: its parameters still name the previous artifacts.
//! A record of what was hotswapped (`hotswap/<stack>.json` in the artifacts bucket) lets
//! `diff` say so and lets the next full deploy bring CloudFormation back in line (and put the
//! stack's own artifacts back into the functions when the parameters did not change); the
//! record is [`crate::hotswap_record`]'s.

use std::time::Duration;

use aws_sdk_lambda::types::{Environment, LastUpdateStatus};

use crate::aws::Aws;
use stack_model::pipeline::{outputs, params, SPARK_JOB_URI_ENV};

/// Why a hotswap cannot stand in for a full deploy, if it cannot: anything but the two
/// artifact parameters differs from the deployed stack.
pub fn refusal(
    deployed_template: &serde_json::Value,
    rendered: &serde_json::Value,
    deployed_parameters: &[(String, String)],
    parameters: &[(String, String)],
) -> Option<String> {
    if deployed_template != rendered {
        let changed = crate::diff::compare::compare(
            "",
            Some((deployed_template, deployed_parameters)),
            rendered,
            parameters,
        )
        .resources
        .iter()
        .map(|r| r.logical_id.clone())
        .collect::<Vec<_>>();
        return Some(if changed.is_empty() {
            "the template differs from the deployed one".into()
        } else {
            format!("the template changes {}", changed.join(", "))
        });
    }
    let artifact = |k: &str| k == params::LAMBDA_CODE_KEY || k == params::SPARK_JOB_KEY;
    let others = |p: &[(String, String)]| {
        p.iter()
            .filter(|(k, _)| !artifact(k))
            .cloned()
            .collect::<Vec<_>>()
    };
    if others(deployed_parameters) != others(parameters) {
        return Some("a parameter other than the artifacts' keys changes".into());
    }
    None
}

/// One function's update.
#[derive(Debug)]
pub struct Swapped {
    pub function: String,
    pub code_sha256_before: String,
    pub code_sha256_after: String,
}

/// Puts the artifacts into the stage's functions: each function's code, and the EMR
/// starter's `SPARK_JOB_URI` (on stages whose base b runs on EMR); the three side by side,
/// each waited for.
pub async fn swap(
    aws: &Aws,
    stack_outputs: &[(String, String)],
    bucket: &str,
    lambda_key: &str,
    spark_key: &str,
) -> anyhow::Result<Vec<Swapped>> {
    let lambda = aws_sdk_lambda::Client::new(&aws.conf);
    let name = |output: &str| -> anyhow::Result<String> {
        Ok(crate::cloudformation::status::output(stack_outputs, output)?.to_owned())
    };
    let spark_uri = format!("s3://{bucket}/{spark_key}");
    // Base b's function: the site-events engine, or the EMR starter (which also gets the
    // Spark job's URI), by what the stage deployed.
    let (base_b, spark) = match name(outputs::SITE_EVENTS_FUNCTION) {
        Ok(f) => (f, None),
        Err(_) => (
            name(outputs::EMR_STARTER_FUNCTION)?,
            Some(spark_uri.as_str()),
        ),
    };
    let (etl, base_b, refresher) = tokio::join!(
        swap_one(
            &lambda,
            name(outputs::ETL_FUNCTION)?,
            bucket,
            lambda_key,
            None
        ),
        swap_one(&lambda, base_b, bucket, lambda_key, spark),
        swap_one(
            &lambda,
            name(outputs::TABLE_REFRESHER_FUNCTION)?,
            bucket,
            lambda_key,
            None
        ),
    );
    Ok(vec![etl?, base_b?, refresher?])
}

/// One function: its code, then (for the starter) the Spark job's URI, each waited for.
async fn swap_one(
    lambda: &aws_sdk_lambda::Client,
    name: String,
    bucket: &str,
    lambda_key: &str,
    spark_uri: Option<&str>,
) -> anyhow::Result<Swapped> {
    let before = configuration(lambda, &name).await?;
    let out = lambda
        .update_function_code()
        .function_name(&name)
        .s3_bucket(bucket)
        .s3_key(lambda_key)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("updating the code of {name}"), e))?;
    wait_updated(lambda, &name).await?;
    if let Some(uri) = spark_uri {
        let mut vars = before
            .environment()
            .and_then(|e| e.variables())
            .cloned()
            .unwrap_or_default();
        if vars.get(SPARK_JOB_URI_ENV).map(String::as_str) != Some(uri) {
            vars.insert(SPARK_JOB_URI_ENV.to_owned(), uri.to_owned());
            lambda
                .update_function_configuration()
                .function_name(&name)
                .environment(Environment::builder().set_variables(Some(vars)).build())
                .send()
                .await
                .map_err(|e| {
                    crate::aws::failed(format!("updating {SPARK_JOB_URI_ENV} of {name}"), e)
                })?;
            wait_updated(lambda, &name).await?;
        }
    }
    Ok(Swapped {
        function: name,
        code_sha256_before: before.code_sha256().unwrap_or_default().to_owned(),
        code_sha256_after: out.code_sha256().unwrap_or_default().to_owned(),
    })
}

async fn configuration(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> anyhow::Result<
    aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput,
> {
    lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("reading the configuration of {name}"), e))
}

/// Waits until Lambda reports the function's last update `Successful` (Lambda developer
/// guide, "Lambda function states": an update is `InProgress`, then `Successful` or `Failed`).
async fn wait_updated(lambda: &aws_sdk_lambda::Client, name: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    // Updates take from milliseconds (the emulator) to seconds: poll quickly at first.
    let mut wait = Duration::from_millis(100);
    loop {
        let c = configuration(lambda, name).await?;
        match c.last_update_status() {
            Some(LastUpdateStatus::Successful) | None => return Ok(()),
            Some(LastUpdateStatus::Failed) => anyhow::bail!(
                "Lambda could not update {name}: {}",
                c.last_update_status_reason().unwrap_or("no reason given")
            ),
            _ => {}
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the update of {name} is still in progress after 5 minutes");
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(code: &str) -> Vec<(String, String)> {
        vec![
            (params::ARTIFACTS_BUCKET.into(), "b".into()),
            (params::LAMBDA_CODE_KEY.into(), code.into()),
            (params::SPARK_JOB_KEY.into(), "spark/1/job.py".into()),
        ]
    }

    #[test]
    fn only_artifact_keys_may_differ() {
        let t = json!({"Resources": {"A": {"Type": "AWS::SNS::Topic", "Properties": {}}}});
        assert_eq!(
            refusal(&t, &t, &p("lambda/1.zip"), &p("lambda/2.zip")),
            None
        );
        let mut other_bucket = p("lambda/2.zip");
        other_bucket[0].1 = "c".into();
        assert_eq!(
            refusal(&t, &t, &p("lambda/1.zip"), &other_bucket).as_deref(),
            Some("a parameter other than the artifacts' keys changes")
        );
        let t2 = json!({"Resources": {"A": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "x"}}}});
        assert_eq!(
            refusal(&t, &t2, &p("lambda/1.zip"), &p("lambda/2.zip")).as_deref(),
            Some("the template changes A")
        );
    }
}
