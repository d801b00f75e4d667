//! `deployer diff --stage S [--format text|json|markdown]`. Exit codes: 0 no changes,
//! 2 changes, 1 error.

use crate::aws::Aws;
use crate::cli::{DiffArgs, DiffFormat, Global};
use crate::cloudformation::change_set::{self, TemplateSource};
use crate::diff::compare::{compare, ChangeSetEntry};
use crate::diff::render::{colour, render, Style};
use crate::stage_stack::{artifact_keys, body, bootstrap_binary, deployed, stack_parameters};
use stack_model::pipeline::{self, params};

pub async fn run(global: &Global, args: &DiffArgs) -> anyhow::Result<u8> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let binary = bootstrap_binary(args.lambda_bootstrap.as_deref())?;
    let (lambda_key, spark_key) = artifact_keys(&binary, etl::SPARK_JOB.as_bytes());
    let old = deployed(&aws, &c.stage.stack_name()).await?;
    // The artifacts bucket is the deployed one; a stage never deployed has none yet.
    let bucket = old
        .as_ref()
        .and_then(|d| {
            d.parameters
                .iter()
                .find(|(k, _)| k == params::ARTIFACTS_BUCKET)
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| {
            c.stage
                .bucket_name_sub(stack_model::stage::BucketRole::Artifacts)
        });
    let new_params = stack_parameters(&bucket, &lambda_key, &spark_key);
    let (text, rendered, _) = body(&pipeline::template(&c))?;
    let mut report = compare(
        c.stage.as_str(),
        old.as_ref().map(|d| (&d.template, d.parameters.as_slice())),
        &rendered,
        &new_params,
    );
    report
        .guard_lowered
        .extend(pipeline::guard_lowered_by_overrides(&c));
    // What a `deploy --hotswap` put into the functions since the stack was last deployed.
    if old.is_some() {
        if let Some(record) =
            crate::hotswap_record::read(&aws, &bucket, &c.stage.stack_name()).await?
        {
            let runs = record.parameters(&bucket);
            let stack = old
                .as_ref()
                .map(|d| d.parameters.clone())
                .unwrap_or_default();
            if runs != stack {
                // A full deploy changes what runs unless it runs exactly the new artifacts
                // and the stack is brought in line: either way, there is something to do.
                report.changes = true;
                report.hotswapped = Some(record);
            }
        }
    }
    if args.changeset {
        report.changeset = Some(
            changeset_view(
                &aws,
                &c.stage.stack_name(),
                old.is_some(),
                crate::stage_apply::template_source(
                    &aws,
                    &c,
                    Some(&bucket),
                    &c.stage.stack_name(),
                    text,
                )
                .await?,
                &new_params,
                &crate::stage_stack::tags(&c),
            )
            .await?,
        );
    }
    match args.format {
        DiffFormat::Json => crate::output::print_json(&report)?,
        DiffFormat::Markdown => print!("{}", render(&report, Style::Markdown)?),
        DiffFormat::Text => print!("{}", colour(&render(&report, Style::Text)?)),
    }
    Ok(if report.changes { 2 } else { 0 })
}

/// Creates a change set, reads CloudFormation's view of it, and deletes it (with the empty
/// stack a CREATE change set leaves behind).
async fn changeset_view(
    aws: &Aws,
    stack: &str,
    exists: bool,
    template: TemplateSource,
    parameters: &[(String, String)],
    tags: &[(String, String)],
) -> anyhow::Result<Vec<ChangeSetEntry>> {
    use aws_sdk_cloudformation::types::ChangeSetType;
    let name = format!("deployer-diff-{}", std::process::id());
    let id = change_set::create(
        &aws.cfn,
        &change_set::Request {
            stack,
            name: &name,
            kind: if exists {
                ChangeSetType::Update
            } else {
                ChangeSetType::Create
            },
            template: &template,
            parameters,
            tags,
            import: &[],
            // The stack's own role (CloudFormation keeps it); computing a change set creates
            // nothing.
            role_arn: None,
        },
    )
    .await?;
    let cs = change_set::wait(&aws.cfn, stack, &id).await;
    change_set::delete(&aws.cfn, stack, &id).await;
    let entries = cs?
        .changes()
        .iter()
        .filter_map(|c| c.resource_change())
        .map(|r| ChangeSetEntry {
            action: r
                .action()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: r.resource_type().unwrap_or_default().to_owned(),
            replacement: r
                .replacement()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_else(|| "False".into()),
        })
        .collect();
    if !exists {
        // A CREATE change set leaves an empty stack in REVIEW_IN_PROGRESS.
        let _ = aws.cfn.delete_stack().stack_name(stack).send().await;
    }
    Ok(entries)
}
