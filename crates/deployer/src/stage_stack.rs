//! A stage's stack as the code renders it and as it is deployed: what `deploy`, `diff`,
//! `bootstrap`, `preflight`, `watch` and the hotswap share, so that no verb imports another.
//!
//! The rendered side: the template's body ([`body`]), the artifacts' content-hash keys
//! ([`artifact_keys`]) and the parameters naming them ([`stack_parameters`]), the tags. The
//! deployed side: the stack's template, parameters, outputs and role ([`deployed`]), and what
//! the stage's bootstrap stack gives a deploy ([`Bootstrap`]).

use anyhow::Context;
use serde_json::Value;

use crate::artifacts::{build_bootstrap, workspace_root, Artifact};
use crate::aws::Aws;
use crate::cloudformation::apply::ApplyError;
use crate::cloudformation::status::{
    describe, output, outputs_of, sentiment, status_of, template_of, Sentiment,
};
use stack_model::pipeline::params;
use stack_model::{bootstrap, StageConfig, Template};

/// The template as sent to CloudFormation: canonical compact JSON (keys sorted).
pub fn body(t: &Template) -> anyhow::Result<(String, Value, usize)> {
    let v = t.to_json().context("rendering the template")?;
    let resources = v["Resources"].as_object().map_or(0, |r| r.len());
    Ok((serde_json::to_string(&v)?, v, resources))
}

/// A deployed stack, as one DescribeStacks and one GetTemplate give it.
pub struct Deployed {
    /// The template as submitted.
    pub template: Value,
    /// Its parameters, sorted by name.
    pub parameters: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    /// The service role CloudFormation acts as for it, if any.
    pub role_arn: Option<String>,
}

/// The deployed stack's template (as submitted), parameters, outputs and role, if the stack
/// exists and is in a settled, good state.
pub async fn deployed(aws: &Aws, name: &str) -> anyhow::Result<Option<Deployed>> {
    let Some(stack) = describe(&aws.cfn, name).await? else {
        return Ok(None);
    };
    if sentiment(&status_of(&stack)) != Sentiment::Positive {
        return Ok(None);
    }
    let template = template_of(&aws.cfn, name).await?;
    let mut parameters: Vec<(String, String)> = stack
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap_or_default().to_owned(),
                p.parameter_value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    parameters.sort();
    Ok(Some(Deployed {
        template,
        parameters,
        outputs: outputs_of(&stack),
        role_arn: stack.role_arn().map(str::to_owned),
    }))
}

/// The tags every stack of the stage carries.
pub fn tags(c: &StageConfig) -> Vec<(String, String)> {
    vec![
        ("Project".into(), stack_model::stage::PROJECT.into()),
        ("Stage".into(), c.stage.as_str().into()),
    ]
}

/// What the stage's bootstrap stack gives a deploy.
pub struct Bootstrap {
    /// The artifacts bucket.
    pub bucket: String,
    /// The CloudFormation role's ARN.
    pub role_arn: String,
}

impl Bootstrap {
    /// The bootstrap stack's outputs; a missing stack, or one made before the CloudFormation
    /// role, is refused with the command that makes it.
    pub async fn read(aws: &Aws, c: &StageConfig) -> Result<Bootstrap, ApplyError> {
        let name = c.stage.bootstrap_stack_name();
        let refuse = |why: String| {
            ApplyError::Refused(format!(
                "{why}: run `deployer bootstrap --stage {}` once, as an identity that may create IAM roles (it creates the artifacts bucket and the role CloudFormation deploys the stage as), then deploy again",
                c.stage
            ))
        };
        let Some(Deployed { outputs, .. }) = deployed(aws, &name).await? else {
            return Err(refuse(format!(
                "stage {} has no bootstrap stack ({name}) in {}",
                c.stage, c.region
            )));
        };
        match (
            output(&outputs, bootstrap::ARTIFACTS_BUCKET_OUTPUT),
            output(&outputs, bootstrap::CLOUDFORMATION_ROLE_OUTPUT),
        ) {
            (Ok(bucket), Ok(role_arn)) => Ok(Bootstrap {
                bucket: bucket.to_owned(),
                role_arn: role_arn.to_owned(),
            }),
            _ => Err(refuse(format!(
                "the bootstrap stack {name} has no CloudFormation role yet (made by an older deployer)"
            ))),
        }
    }
}

/// The Spark job to ship: the given file (`deploy --spark-job`, which `watch` uses to pick up
/// an edit without rebuilding the CLI), or the one built into the CLI.
pub fn spark_job(path: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("reading the Spark job {}", p.display()))
        }
        None => Ok(etl::SPARK_JOB.as_bytes().to_vec()),
    }
}

/// The artifacts' keys. The zip is deterministic, so the binary's hash names it: a no-op
/// deploy (or a diff) needs no zipping.
pub fn artifact_keys(binary: &[u8], spark: &[u8]) -> (String, String) {
    let spark = Artifact::new(spark.to_vec());
    (
        format!("lambda/{}.zip", Artifact::new(binary.to_vec()).sha256),
        format!("spark/{}/{}", spark.sha256, etl::SPARK_JOB_FILE),
    )
}

/// The stage stack's parameters, sorted by name (as they are compared with the deployed ones).
pub fn stack_parameters(bucket: &str, lambda_key: &str, spark_key: &str) -> Vec<(String, String)> {
    let mut p = vec![
        (params::ARTIFACTS_BUCKET.to_owned(), bucket.to_owned()),
        (params::LAMBDA_CODE_KEY.to_owned(), lambda_key.to_owned()),
        (params::SPARK_JOB_KEY.to_owned(), spark_key.to_owned()),
    ];
    p.sort();
    p
}

/// The bootstrap binary's bytes: the given file, or a fresh build.
pub fn bootstrap_binary(given: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => build_bootstrap(&workspace_root()?)?,
    };
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// Whether a `DeletionPolicy` keeps the resource when its stack is deleted. Both
/// `RetainExceptOnCreate` (what protected stages render) and `Retain` do, once the resource
/// exists; a stack deployed by an older version of the tool has `Retain`.
pub fn is_retained(policy: &Value) -> bool {
    policy == "Retain" || policy == "RetainExceptOnCreate"
}
