//! Create or update a stack through a change set, streaming its events.
//!
//! What AWS does: a change set is computed from the new template and parameters; an empty one
//! fails with "The submitted information didn't contain changes" (reported here as
//! [`Applied::NoChanges`]); executing it runs the operation, which either completes or rolls
//! back. A stack whose first create rolled back (`ROLLBACK_COMPLETE`) can only be deleted.

use std::time::Duration;

use aws_sdk_cloudformation::types::{ChangeSetStatus, ChangeSetType};
use aws_sdk_cloudformation::Client;

use super::change_set::{self, TemplateSource};
use super::events::{root_cause, Event, Progress, Watcher};
use super::status::{
    describe, next_step, outputs_of, sentiment, state_of, status_of, Sentiment, StackState,
};

/// What to deploy.
pub struct StackSpec {
    pub name: String,
    /// The template as sent: compact canonical JSON, inline or from S3 when larger than
    /// CloudFormation takes inline.
    pub template: TemplateSource,
    pub parameters: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub resources: usize,
    /// A protected stage's dead stack is not deleted for the user.
    pub protected: bool,
    /// The service role CloudFormation acts as (the stage's stack; the bootstrap stack has
    /// none).
    pub role_arn: Option<String>,
}

/// How an apply ended well.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    NoChanges,
    Done {
        status: String,
        outputs: Vec<(String, String)>,
    },
}

/// How an apply ended badly. Each variant has its exit code (README: Exit codes).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{stack} ended {status}{}{}", cause.as_ref().map(|c| format!(": {} ({}) {}: {}", c.logical_id, c.resource_type, c.status, c.reason.as_deref().unwrap_or("no reason given"))).unwrap_or_default(), details.iter().map(|d| format!("\n  caused by {d}")).collect::<String>())]
    Failed {
        stack: String,
        status: String,
        cause: Option<Event>,
        /// Resource-level validation failures, when the cause is the stack's validation.
        details: Vec<String>,
    },
    /// CloudFormation refused the change set before running anything (early validation:
    /// a name already taken, a resource type the region lacks...); nothing changed.
    #[error("the change set for {stack} failed: {reason}{}", findings.iter().map(|f| format!("\n  caused by {f}")).collect::<String>())]
    ChangeSetFailed {
        stack: String,
        reason: String,
        findings: Vec<String>,
    },
    #[error("{0}")]
    Stuck(String),
    #[error("{0}")]
    Refused(String),
    /// The change needs a person's approval (`--require-approval`), and it was declined or
    /// there was no terminal to ask on.
    #[error("{0}")]
    NotApproved(String),
    #[error("{0:#}")]
    Aws(anyhow::Error),
}

impl ApplyError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ApplyError::Failed { .. } => 3,
            ApplyError::Stuck(_) => 4,
            ApplyError::Refused(_) => 5,
            ApplyError::NotApproved(_) => 6,
            ApplyError::Aws(_) | ApplyError::ChangeSetFailed { .. } => 1,
        }
    }
}

impl From<anyhow::Error> for ApplyError {
    fn from(e: anyhow::Error) -> Self {
        ApplyError::Aws(e)
    }
}

const POLL: Duration = Duration::from_millis(1000);

/// Waits while an operation runs on the stack; returns its settled state.
pub async fn wait_settled(
    cfn: &Client,
    name: &str,
    progress: Option<&mut Progress>,
) -> anyhow::Result<StackState> {
    let mut watcher = Watcher::start(cfn, name).await?;
    let mut progress = progress;
    let mut said = false;
    loop {
        let state = match describe(cfn, name).await? {
            None => StackState::Missing,
            Some(s) => state_of(&status_of(&s)),
        };
        for e in watcher.poll(cfn).await? {
            if let Some(p) = progress.as_deref_mut() {
                p.event(&e);
            }
        }
        match state {
            StackState::Busy(status) => {
                if !said && progress.is_none() {
                    eprintln!("stack {name} is {status}: waiting for it to finish");
                    said = true;
                }
                tokio::time::sleep(POLL).await;
            }
            other => return Ok(other),
        }
    }
}

/// A change set CloudFormation failed (deleted already): its reason and its early-validation
/// findings.
pub async fn refused(
    cfn: &Client,
    stack: &str,
    change_set_id: &str,
    cs: &aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
) -> ApplyError {
    ApplyError::ChangeSetFailed {
        stack: stack.to_owned(),
        reason: cs.status_reason().unwrap_or("no reason given").to_owned(),
        findings: super::events::validation_failures(cfn, stack, Some(change_set_id)).await,
    }
}

/// Creates or updates the stack. See the module doc.
pub async fn apply(cfn: &Client, spec: &StackSpec, what: &str) -> Result<Applied, ApplyError> {
    let mut state = wait_settled(cfn, &spec.name, None).await?;
    if let StackState::Dead(status) = &state {
        if spec.protected {
            return Err(ApplyError::Refused(format!(
                "stack {} is {status} and the stage is protected: delete it yourself (`deployer teardown --force`) and deploy again",
                spec.name
            )));
        }
        eprintln!("stack {} is {status} (its first create failed and rolled back): deleting it to create it again", spec.name);
        super::delete::delete(cfn, &spec.name).await?;
        state = StackState::Missing;
    }
    if let StackState::Stuck(status) = &state {
        return Err(ApplyError::Stuck(next_step(status, &spec.name)));
    }
    let kind = if state == StackState::Missing {
        ChangeSetType::Create
    } else {
        ChangeSetType::Update
    };
    let change_set = change_set::unique_name("deployer");
    let change_set_id = change_set::create(
        cfn,
        &change_set::Request {
            stack: &spec.name,
            name: &change_set,
            kind,
            template: &spec.template,
            parameters: &spec.parameters,
            tags: &spec.tags,
            import: &[],
            role_arn: spec.role_arn.as_deref(),
        },
    )
    .await?;
    let cs = change_set::wait(cfn, &spec.name, &change_set_id).await?;
    if cs.status() == Some(&ChangeSetStatus::Failed) {
        change_set::delete(cfn, &spec.name, &change_set_id).await;
        if change_set::is_empty(&cs) {
            return Ok(Applied::NoChanges);
        }
        return Err(refused(cfn, &spec.name, &change_set_id, &cs).await);
    }
    let mut progress = Progress::new(what, spec.resources);
    let mut watcher = Watcher::start(cfn, &spec.name).await?;
    cfn.execute_change_set()
        .change_set_name(&change_set_id)
        .stack_name(&spec.name)
        .send()
        .await
        .map_err(|e| {
            ApplyError::Aws(crate::aws::failed(
                format!("executing change set for {}", spec.name),
                e,
            ))
        })?;
    let mut seen: Vec<Event> = Vec::new();
    let final_stack = loop {
        tokio::time::sleep(POLL).await;
        for e in watcher.poll(cfn).await? {
            progress.event(&e);
            seen.push(e);
        }
        let stack = describe(cfn, &spec.name).await?;
        let Some(stack) = stack else {
            break None;
        };
        if !status_of(&stack).ends_with("_IN_PROGRESS") {
            for e in watcher.poll(cfn).await? {
                progress.event(&e);
                seen.push(e);
            }
            break Some(stack);
        }
    };
    progress.finish();
    let Some(stack) = final_stack else {
        return Err(ApplyError::Failed {
            stack: spec.name.clone(),
            status: "DELETE_COMPLETE".into(),
            cause: root_cause(&seen).cloned(),
            details: Vec::new(),
        });
    };
    let status = status_of(&stack);
    eprintln!(
        "{what}: {status} in {:.1}s",
        progress.elapsed().as_secs_f64()
    );
    if sentiment(&status) != Sentiment::Positive {
        let cause = root_cause(&seen).cloned();
        let details = match &cause {
            Some(c)
                if c.reason
                    .as_deref()
                    .unwrap_or_default()
                    .contains("DescribeEvents") =>
            {
                super::events::validation_failures(cfn, &spec.name, None).await
            }
            _ => Vec::new(),
        };
        return Err(ApplyError::Failed {
            stack: spec.name.clone(),
            status,
            cause,
            details,
        });
    }
    let outputs = outputs_of(&stack);
    Ok(Applied::Done { status, outputs })
}
