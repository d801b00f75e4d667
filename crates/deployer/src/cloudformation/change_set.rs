//! Change sets: create one, wait until CloudFormation has computed it, delete it.
//!
//! What AWS does: creating a change set is asynchronous; it ends `CREATE_COMPLETE`, or
//! `FAILED` with a reason (an empty change set fails with "The submitted information didn't
//! contain changes"). A `CREATE` change set on a new stack leaves that stack in
//! `REVIEW_IN_PROGRESS` until the change set is executed or the stack deleted.

use std::time::Duration;

use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, Tag};
use aws_sdk_cloudformation::Client;

/// Where CloudFormation reads a template from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateSource {
    /// Sent in the request (`TemplateBody`): at most [`INLINE_TEMPLATE_LIMIT`] bytes.
    Body(String),
    /// An S3 object's URL (`TemplateURL`): up to 1 MB.
    Url(String),
}

/// CloudFormation refuses a `TemplateBody` over 51,200 bytes (CloudFormation user guide,
/// "Quotas": template body size in a request); a larger template goes through S3.
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;

/// A change set name no earlier one of the stack has: `<prefix>-<milliseconds since 1970>`.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    )
}

/// What a change set is made of.
pub struct Request<'a> {
    pub stack: &'a str,
    pub name: &'a str,
    pub kind: ChangeSetType,
    pub template: &'a TemplateSource,
    pub parameters: &'a [(String, String)],
    pub tags: &'a [(String, String)],
    /// With `kind` IMPORT: the existing resources the template's resources adopt.
    pub import: &'a [aws_sdk_cloudformation::types::ResourceToImport],
    /// The service role CloudFormation acts as for this stack (`RoleARN`). None: the stack's
    /// current role, or the caller's credentials for a stack that has none (CloudFormation
    /// user guide, "CloudFormation service role").
    pub role_arn: Option<&'a str>,
}

/// Creates the change set; returns its id.
pub async fn create(cfn: &Client, r: &Request<'_>) -> anyhow::Result<String> {
    let created = cfn
        .create_change_set()
        .stack_name(r.stack)
        .change_set_name(r.name)
        .change_set_type(r.kind.clone())
        .set_template_body(match r.template {
            TemplateSource::Body(b) => Some(b.clone()),
            TemplateSource::Url(_) => None,
        })
        .set_template_url(match r.template {
            TemplateSource::Url(u) => Some(u.clone()),
            TemplateSource::Body(_) => None,
        })
        .set_parameters(Some(
            r.parameters
                .iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build()
                })
                .collect(),
        ))
        // No tags: none sent (an empty list would ask to remove the stack's tags).
        .set_tags((!r.tags.is_empty()).then(|| {
            r.tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect()
        }))
        .set_role_arn(r.role_arn.map(str::to_owned))
        .set_resources_to_import((!r.import.is_empty()).then(|| r.import.to_vec()))
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("creating a change set for {}", r.stack), e))?;
    Ok(created.id().unwrap_or(r.name).to_owned())
}

/// Waits until the change set is computed: `CREATE_COMPLETE` or `FAILED`.
pub async fn wait(cfn: &Client, stack: &str, id: &str) -> anyhow::Result<DescribeChangeSetOutput> {
    loop {
        let cs = cfn
            .describe_change_set()
            .change_set_name(id)
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| crate::aws::failed(format!("reading change set {id}"), e))?;
        match cs.status() {
            Some(ChangeSetStatus::CreateComplete) | Some(ChangeSetStatus::Failed) => return Ok(cs),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Whether a failed change set failed only for having nothing to change.
pub fn is_empty(cs: &DescribeChangeSetOutput) -> bool {
    let reason = cs.status_reason().unwrap_or_default();
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// Deletes the change set (best effort: a leftover one changes nothing).
pub async fn delete(cfn: &Client, stack: &str, id: &str) {
    let _ = cfn
        .delete_change_set()
        .change_set_name(id)
        .stack_name(stack)
        .send()
        .await;
}
