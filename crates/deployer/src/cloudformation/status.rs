//! Stack and resource statuses, with the sentiment a user reads from them.

use anyhow::Context;
use aws_sdk_cloudformation::types::Stack;
use aws_sdk_cloudformation::Client;

/// How a status reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sentiment {
    /// Done and well: `CREATE_COMPLETE`, `UPDATE_COMPLETE`, `IMPORT_COMPLETE`.
    Positive,
    /// Still moving: every `*_IN_PROGRESS`.
    Neutral,
    /// Failed, or rolled back: `*_FAILED`, `*ROLLBACK_COMPLETE`.
    Negative,
}

pub fn sentiment(status: &str) -> Sentiment {
    if status.ends_with("_IN_PROGRESS") {
        Sentiment::Neutral
    } else if status.ends_with("_FAILED") || status.contains("ROLLBACK") {
        Sentiment::Negative
    } else {
        Sentiment::Positive
    }
}

/// What a stack's current status means for a deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackState {
    /// No such stack (or only a deleted one).
    Missing,
    /// Settled: updates can start from here (`CREATE_COMPLETE`, `UPDATE_COMPLETE`,
    /// `UPDATE_ROLLBACK_COMPLETE`, `IMPORT_COMPLETE`...).
    Ready(String),
    /// An operation is running; wait for it.
    Busy(String),
    /// The first create failed and rolled back: the stack holds nothing and can only be
    /// deleted (`ROLLBACK_COMPLETE`), or a create was never executed (`REVIEW_IN_PROGRESS`).
    Dead(String),
    /// Needs a person: `UPDATE_ROLLBACK_FAILED`, `DELETE_FAILED`, `ROLLBACK_FAILED`...
    Stuck(String),
}

pub fn state_of(status: &str) -> StackState {
    let s = status.to_owned();
    match status {
        "DELETE_COMPLETE" => StackState::Missing,
        "ROLLBACK_COMPLETE" | "REVIEW_IN_PROGRESS" => StackState::Dead(s),
        _ if status.ends_with("_IN_PROGRESS") => StackState::Busy(s),
        _ if status.ends_with("_FAILED") => StackState::Stuck(s),
        _ => StackState::Ready(s),
    }
}

/// The next step for a stuck stack, as a user would take it.
pub fn next_step(status: &str, stack: &str) -> String {
    match status {
        "UPDATE_ROLLBACK_FAILED" => format!(
            "stack {stack} is UPDATE_ROLLBACK_FAILED: fix the resource named in its events, then run \
             `aws cloudformation continue-update-rollback --stack-name {stack}` (add \
             `--resources-to-skip` for resources that cannot roll back) and deploy again"
        ),
        "DELETE_FAILED" => format!(
            "stack {stack} is DELETE_FAILED: run `deployer teardown` again (it empties the buckets \
             first), or delete the resources named in its events and retry"
        ),
        "ROLLBACK_FAILED" | "CREATE_FAILED" => format!(
            "stack {stack} is {status}: delete it (`deployer teardown`) and deploy again"
        ),
        other => format!("stack {stack} is {other}: it cannot be updated from this state"),
    }
}

/// Describes `name`: `None` when it does not exist.
pub async fn describe(cfn: &Client, name: &str) -> anyhow::Result<Option<Stack>> {
    match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => Ok(out
            .stacks()
            .first()
            .filter(|s| s.stack_status().map(|st| st.as_str()) != Some("DELETE_COMPLETE"))
            .cloned()),
        Err(e) => {
            use aws_sdk_cloudformation::error::ProvideErrorMetadata;
            if e.message().is_some_and(|m| m.contains("does not exist")) {
                Ok(None)
            } else {
                Err(crate::aws::failed(format!("describing stack {name}"), e))
            }
        }
    }
}

/// The stack's outputs as (key, value), in the order CloudFormation gives them.
pub fn outputs_of(stack: &Stack) -> Vec<(String, String)> {
    stack
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_owned(),
                o.output_value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The value of output `key`.
pub fn output<'a>(outputs: &'a [(String, String)], key: &str) -> anyhow::Result<&'a str> {
    outputs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .with_context(|| format!("the stack has no output {key}: deploy the stage again"))
}

/// The template a stack was deployed with, as submitted (JSON, or YAML from another tool).
pub async fn template_of(cfn: &Client, name: &str) -> anyhow::Result<serde_json::Value> {
    let out = cfn
        .get_template()
        .stack_name(name)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("reading the template of {name}"), e))?;
    let text = out.template_body().unwrap_or_default();
    serde_json::from_str(text)
        .or_else(|_| serde_yaml_ng::from_str(text))
        .with_context(|| format!("the deployed template of {name} is neither JSON nor YAML"))
}

/// A resource a stack holds, as ListStackResources names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldResource {
    pub logical_id: String,
    pub resource_type: String,
    /// None until CloudFormation has created it.
    pub physical_id: Option<String>,
}

/// Every resource `name` holds (all pages of ListStackResources).
pub async fn resources(cfn: &Client, name: &str) -> anyhow::Result<Vec<HeldResource>> {
    let mut out = Vec::new();
    let mut pages = cfn
        .list_stack_resources()
        .stack_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::aws::failed(format!("listing the resources of {name}"), e))?;
        out.extend(page.stack_resource_summaries().iter().map(|r| {
            HeldResource {
                logical_id: r.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: r.resource_type().unwrap_or_default().to_owned(),
                physical_id: r
                    .physical_resource_id()
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            }
        }));
    }
    Ok(out)
}

/// The stack's status text.
pub fn status_of(stack: &Stack) -> String {
    stack
        .stack_status()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// The deployed stack's outputs; an error naming the stage when it is not deployed.
pub async fn stack_outputs(
    aws: &crate::aws::Aws,
    c: &stack_model::StageConfig,
) -> anyhow::Result<Vec<(String, String)>> {
    let name = c.stage.stack_name();
    let Some(stack) = describe(&aws.cfn, &name).await? else {
        return Err(anyhow::Error::new(crate::errors::Explained::new(
            format!(
                "stage {} is not deployed in region {} (no stack {name})",
                c.stage, c.region
            ),
            format!(
                "deploy it with `deployer deploy --stage {}`, or, if it lives in another region, set `stages.{}.region` in pipeline.yaml",
                c.stage, c.stage
            ),
        )));
    };
    Ok(outputs_of(&stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_users_read_them() {
        assert_eq!(sentiment("CREATE_COMPLETE"), Sentiment::Positive);
        assert_eq!(sentiment("UPDATE_ROLLBACK_COMPLETE"), Sentiment::Negative);
        assert_eq!(
            sentiment("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            Sentiment::Neutral
        );
        assert_eq!(sentiment("CREATE_FAILED"), Sentiment::Negative);
        assert_eq!(
            state_of("ROLLBACK_COMPLETE"),
            StackState::Dead("ROLLBACK_COMPLETE".into())
        );
        assert_eq!(
            state_of("UPDATE_ROLLBACK_COMPLETE"),
            StackState::Ready("UPDATE_ROLLBACK_COMPLETE".into())
        );
        assert_eq!(
            state_of("UPDATE_IN_PROGRESS"),
            StackState::Busy("UPDATE_IN_PROGRESS".into())
        );
        assert_eq!(
            state_of("UPDATE_ROLLBACK_FAILED"),
            StackState::Stuck("UPDATE_ROLLBACK_FAILED".into())
        );
        assert!(next_step("UPDATE_ROLLBACK_FAILED", "s")
            .contains("continue-update-rollback --stack-name s"));
    }
}
