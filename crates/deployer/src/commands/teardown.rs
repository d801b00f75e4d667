//! `deployer teardown --stage S`: empties the stage's buckets (every object version and
//! delete marker), deletes its stacks, waits, and reports what is left. A stage that does not
//! exist is not an error. Protected stages are refused unless `--force`; their retained
//! buckets are not emptied (retention is what protection promised).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::aws::Aws;
use crate::cli::{Global, ReportFormat, TeardownArgs};
use crate::cloudformation::delete::delete;
use crate::cloudformation::status::{describe, resources, template_of};
use crate::emr_application::Runs;

/// The buckets a stack holds: (logical id, bucket name, retained on delete), by its
/// `template` (its retention policies).
async fn buckets(
    aws: &Aws,
    stack: &str,
    template: &serde_json::Value,
) -> anyhow::Result<Vec<(String, String, bool)>> {
    Ok(resources(&aws.cfn, stack)
        .await?
        .into_iter()
        .filter(|r| r.resource_type == "AWS::S3::Bucket")
        .filter_map(|r| {
            let retained = crate::stage_stack::is_retained(
                &template["Resources"][&r.logical_id]["DeletionPolicy"],
            );
            Some((r.logical_id, r.physical_id?, retained))
        })
        .collect())
}

/// Deletes every version and delete marker in `bucket`, 1000 at a time. Returns the count.
pub async fn empty_bucket(aws: &Aws, bucket: &str) -> anyhow::Result<usize> {
    let mut deleted = 0;
    loop {
        // Always the first page: what was listed is deleted before listing again.
        let page = match aws
            .s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1000)
            .send()
            .await
        {
            Ok(p) => p,
            Err(e)
                if e.as_service_error()
                    .map(|s| s.meta().code() == Some("NoSuchBucket"))
                    .unwrap_or(false) =>
            {
                return Ok(deleted)
            }
            Err(e) => return Err(crate::aws::failed(format!("listing s3://{bucket}"), e)),
        };
        let mut ids: Vec<ObjectIdentifier> = Vec::new();
        for v in page.versions() {
            ids.push(
                ObjectIdentifier::builder()
                    .key(v.key().unwrap_or_default())
                    .set_version_id(v.version_id().map(str::to_owned))
                    .build()?,
            );
        }
        for m in page.delete_markers() {
            ids.push(
                ObjectIdentifier::builder()
                    .key(m.key().unwrap_or_default())
                    .set_version_id(m.version_id().map(str::to_owned))
                    .build()?,
            );
        }
        if ids.is_empty() {
            return Ok(deleted);
        }
        let n = ids.len();
        let out = aws
            .s3
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| crate::aws::failed(format!("emptying s3://{bucket}"), e))?;
        if let Some(err) = out.errors().first() {
            bail!(
                "emptying s3://{bucket}: {} refused: {}",
                err.key().unwrap_or("?"),
                err.message().unwrap_or("?")
            );
        }
        deleted += n;
        eprintln!("  s3://{bucket}: {deleted} object versions deleted");
    }
}

fn confirm(stage: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("teardown deletes stage {stage} and its data: confirm with --yes when not at a terminal");
    }
    eprint!("Delete stage {stage}, its stacks and every object in its buckets? Type the stage name to confirm: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == stage)
}

pub async fn run(global: &Global, args: &TeardownArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let stage = c.stage.as_str();
    if c.protected && !args.force {
        bail!("stage {stage} is protected: teardown refused (add --force to delete its stacks; retained buckets, database and log groups stay)");
    }
    let aws = Aws::connect(&c.region).await;
    let stacks = [c.stage.stack_name(), c.stage.bootstrap_stack_name()];
    let mut present = Vec::new();
    for s in &stacks {
        if describe(&aws.cfn, s).await?.is_some() {
            present.push(s.clone());
        }
    }
    // The document `--format json` prints (the lines go to standard error either way).
    let mut done = serde_json::json!({
        "stage": stage,
        "region": c.region,
        "stacks_deleted": [],
        "buckets_emptied": {},
        "left": [],
    });
    if present.is_empty() {
        eprintln!(
            "stage {stage} has no stacks in {}: nothing to tear down",
            c.region
        );
        if args.format == ReportFormat::Json {
            crate::output::print_json(&done)?;
        }
        return Ok(());
    }
    if !args.yes && !confirm(stage)? {
        bail!("not confirmed: nothing was deleted");
    }
    let mut left = Vec::new();
    for stack in &present {
        // Unreadable: fail rather than guess which buckets are retained.
        let template = template_of(&aws.cfn, stack).await?;
        for (id, bucket, retained) in buckets(&aws, stack, &template).await? {
            if retained {
                left.push(format!(
                    "bucket {bucket} ({id}): retained by the stage's protection, with its data"
                ));
                continue;
            }
            eprintln!("emptying s3://{bucket} ({id})");
            let n = empty_bucket(&aws, &bucket)
                .await
                .with_context(|| format!("stage {stage}: nothing deleted from the stacks yet"))?;
            eprintln!("  s3://{bucket}: empty ({n} object versions deleted)");
            done["buckets_emptied"][&bucket] = n.into();
        }
        // What CloudFormation cannot delete as it stands: a started EMR Serverless
        // application, EMR's security groups in a retired VPC.
        crate::emr_application::before_stack_change(
            &aws,
            stack,
            &template,
            None,
            Runs::cancel_if(args.cancel_runs),
            &format!("deleting {stack}"),
        )
        .await?;
        if c.protected && crate::cloudformation::protection::set(&aws.cfn, stack, false).await? {
            eprintln!("{stack}: termination protection lifted (--force on a protected stage)");
        }
        eprintln!("deleting stack {stack}");
        delete(&aws.cfn, stack).await?;
        eprintln!("  {stack}: deleted");
        done["stacks_deleted"]
            .as_array_mut()
            .expect("an array")
            .push(stack.as_str().into());
    }
    done["left"] = left.clone().into();
    if left.is_empty() {
        eprintln!("stage {stage} is torn down: nothing left behind");
    } else {
        eprintln!("stage {stage} is torn down; left behind:");
        for l in left {
            eprintln!("  {l}");
        }
    }
    if args.format == ReportFormat::Json {
        crate::output::print_json(&done)?;
    }
    Ok(())
}
