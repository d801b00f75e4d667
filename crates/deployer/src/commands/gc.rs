//! `deployer gc --stage S [--older-than-days N] [--yes]`: the artifacts of the stage's
//! artifacts bucket that no stack of this account and region refers to, older than a grace
//! period; deleted only with `--yes`.
//!
//! Every deploy uploads its Lambda zip and Spark job under content hashes (and large templates
//! under `templates/`), and nothing removes the ones a later deploy no longer uses. A key is
//! kept when any stack's parameter names it (as the key, or as `s3://bucket/key`), whichever
//! stage or tool made the stack, and while it is younger than the grace period (a deploy in
//! progress has uploaded what its change set will name). Reading every stack's parameters
//! needs `cloudformation:DescribeStacks` on every stack, which a stage's deploy policy does not
//! grant: without it, gc stops before deleting anything. A hotswap record
//! (`hotswap/<stack>.json`) names what a stage's functions run while its stack's parameters
//! still name what ran before: the record and every key it names are kept too.

use std::collections::BTreeSet;

use anyhow::Context;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::aws::Aws;
use crate::cli::{GcArgs, Global, ReportFormat};
use crate::cloudformation::status::{describe, output, outputs_of};
use crate::errors::Explained;
use stack_model::bootstrap::ARTIFACTS_BUCKET_OUTPUT;

/// An object of the artifacts bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    pub key: String,
    pub size: i64,
    /// Seconds since the Unix epoch.
    pub modified: i64,
}

/// What gc decided for each artifact.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub referenced: Vec<Artifact>,
    pub recent: Vec<Artifact>,
    pub unreferenced: Vec<Artifact>,
}

/// Sorts the artifacts: named by a stack parameter (kept), younger than `grace_seconds`
/// (kept), or neither (garbage).
pub fn plan(
    artifacts: Vec<Artifact>,
    bucket: &str,
    parameters: &BTreeSet<String>,
    now: i64,
    grace_seconds: i64,
) -> Plan {
    let mut p = Plan::default();
    for a in artifacts {
        let uri = format!("s3://{bucket}/{}", a.key);
        if parameters.contains(&a.key) || parameters.contains(&uri) {
            p.referenced.push(a);
        } else if now - a.modified < grace_seconds {
            p.recent.push(a);
        } else {
            p.unreferenced.push(a);
        }
    }
    p
}

pub async fn run(global: &Global, args: &GcArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let bootstrap = c.stage.bootstrap_stack_name();
    let stack = describe(&aws.cfn, &bootstrap).await?.with_context(|| {
        format!(
            "stage {} has no artifacts bucket in {} (no stack {bootstrap}): nothing to collect",
            c.stage, c.region
        )
    })?;
    let bucket = output(&outputs_of(&stack), ARTIFACTS_BUCKET_OUTPUT)?.to_owned();
    let mut parameters = every_stack_parameter(&aws).await?;
    let artifacts = list(&aws, &bucket).await?;
    // What the functions run after a hotswap, and the records that say so.
    for a in &artifacts {
        if !a.key.starts_with(crate::hotswap_record::RECORD_PREFIX) {
            continue;
        }
        parameters.insert(a.key.clone());
        if let Some(r) = crate::hotswap_record::read_key(&aws, &bucket, &a.key).await? {
            parameters.insert(r.lambda_code_key);
            parameters.insert(r.spark_job_key);
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs() as i64;
    let p = plan(
        artifacts,
        &bucket,
        &parameters,
        now,
        i64::from(args.older_than_days) * 86_400,
    );
    // With --format json the lines go to standard error and one document to standard output.
    let json = args.format == ReportFormat::Json;
    let say = |line: String| {
        if json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    say(format!(
        "s3://{bucket}: {} referenced by a stack or a hotswap record (kept), {} younger than {} days (kept), {} unreferenced",
        p.referenced.len(),
        p.recent.len(),
        args.older_than_days,
        p.unreferenced.len()
    ));
    let bytes: i64 = p.unreferenced.iter().map(|a| a.size).sum();
    for a in &p.unreferenced {
        say(format!(
            "  {} {} ({} bytes, {} days old)",
            if args.yes { "deleting" } else { "unreferenced" },
            a.key,
            a.size,
            (now - a.modified) / 86_400
        ));
    }
    let document = |deleted: bool| {
        serde_json::json!({
            "stage": c.stage.as_str(),
            "bucket": bucket,
            "older_than_days": args.older_than_days,
            "referenced": p.referenced.len(),
            "recent": p.recent.len(),
            "unreferenced": p.unreferenced.iter().map(|a| serde_json::json!({
                "key": a.key, "bytes": a.size, "days_old": (now - a.modified) / 86_400,
            })).collect::<Vec<_>>(),
            "bytes": bytes,
            "deleted": deleted,
        })
    };
    if p.unreferenced.is_empty() || !args.yes {
        if !p.unreferenced.is_empty() {
            say(format!(
                "{} artifacts, {bytes} bytes: run again with --yes to delete them",
                p.unreferenced.len()
            ));
        }
        if json {
            crate::output::print_json(&document(false))?;
        }
        return Ok(());
    }
    for chunk in p.unreferenced.chunks(1000) {
        let objects = chunk
            .iter()
            .map(|a| ObjectIdentifier::builder().key(&a.key).build())
            .collect::<Result<Vec<_>, _>>()?;
        let out = aws
            .s3
            .delete_objects()
            .bucket(&bucket)
            .delete(Delete::builder().set_objects(Some(objects)).build()?)
            .send()
            .await
            .map_err(|e| crate::aws::failed(format!("deleting artifacts from s3://{bucket}"), e))?;
        if let Some(err) = out.errors().first() {
            anyhow::bail!(
                "deleting s3://{bucket}/{}: {}",
                err.key().unwrap_or("?"),
                err.message().unwrap_or("refused")
            );
        }
    }
    say(format!(
        "deleted {} artifacts, {bytes} bytes (the bucket keeps their previous versions for 30 days)",
        p.unreferenced.len()
    ));
    if json {
        crate::output::print_json(&document(true))?;
    }
    Ok(())
}

/// Every parameter value of every stack of the account and region (`DescribeStacks` without
/// a name lists them all, with their parameters).
async fn every_stack_parameter(aws: &Aws) -> anyhow::Result<BTreeSet<String>> {
    let mut values = BTreeSet::new();
    let mut pages = aws.cfn.describe_stacks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let denied = crate::errors::is_access_denied(e.code());
            let mut e = crate::aws::failed("reading every stack's parameters", e);
            if let (true, Some(x)) = (denied, e.downcast_mut::<Explained>()) {
                x.cause.push_str("; nothing was deleted");
                x.todo = Some("run gc as an identity that may call cloudformation:DescribeStacks on every stack of the account and region (a stage's deploy policy may read only its own stacks), so that no artifact another stack uses is deleted".into());
            }
            e
        })?;
        for s in page.stacks() {
            for p in s.parameters() {
                if let Some(v) = p.parameter_value() {
                    values.insert(v.to_owned());
                }
            }
        }
    }
    Ok(values)
}

/// Every object of the bucket (current versions).
async fn list(aws: &Aws, bucket: &str) -> anyhow::Result<Vec<Artifact>> {
    let mut out = Vec::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::aws::failed(format!("listing s3://{bucket}"), e))?;
        for o in page.contents() {
            out.push(Artifact {
                key: o.key().unwrap_or_default().to_owned(),
                size: o.size().unwrap_or(0),
                modified: o.last_modified().map(|t| t.secs()).unwrap_or(0),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(key: &str, modified: i64) -> Artifact {
        Artifact {
            key: key.into(),
            size: 10,
            modified,
        }
    }

    #[test]
    fn a_key_any_stack_names_is_kept_whatever_its_age_and_young_keys_wait() {
        let day = 86_400;
        let now = 100 * day;
        let parameters: BTreeSet<String> = [
            "lambda/aaa.zip".to_string(),
            "s3://bucket/spark/bbb/site_events.py".to_string(),
            "unrelated".to_string(),
        ]
        .into();
        let p = plan(
            vec![
                artifact("lambda/aaa.zip", 0),
                artifact("spark/bbb/site_events.py", 0),
                artifact("lambda/old.zip", now - 30 * day),
                artifact("lambda/new.zip", now - day),
                artifact("templates/pdcase-alice/x.json", now - 8 * day),
            ],
            "bucket",
            &parameters,
            now,
            7 * day,
        );
        let keys = |v: &[Artifact]| v.iter().map(|a| a.key.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&p.referenced),
            ["lambda/aaa.zip", "spark/bbb/site_events.py"]
        );
        assert_eq!(keys(&p.recent), ["lambda/new.zip"]);
        assert_eq!(
            keys(&p.unreferenced),
            ["lambda/old.zip", "templates/pdcase-alice/x.json"]
        );
    }
}
