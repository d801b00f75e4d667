//! Applying a stage's stacks: a stack applied only when it differs from the deployed one
//! ([`ensure`]), the template inline or through the artifacts bucket ([`template_source`]),
//! the artifacts uploaded under their content hashes ([`upload_artifacts`]) or swapped into
//! the functions ([`swap_in`]), and termination protection as the stage's config says
//! ([`protect`]).

use crate::artifacts::{lambda_zip, Artifact};
use crate::aws::Aws;
use crate::cloudformation::apply::{apply, Applied, ApplyError, StackSpec};
use crate::cloudformation::change_set::{TemplateSource, INLINE_TEMPLATE_LIMIT};
use crate::stage_stack::{body, deployed, tags};
use stack_model::{StageConfig, Template};

/// Applies one stack unless the deployed one already has this template and these
/// parameters. Returns its outputs, and whether anything changed.
pub async fn ensure(
    aws: &Aws,
    c: &StageConfig,
    name: &str,
    template: &Template,
    mut parameters: Vec<(String, String)>,
    template_bucket: Option<&str>,
    what: &str,
) -> Result<(Vec<(String, String)>, bool), ApplyError> {
    let (text, value, resources) = body(template)?;
    parameters.sort();
    if let Some(d) = deployed(aws, name).await? {
        if d.template == value && d.parameters == parameters {
            return Ok((d.outputs, false));
        }
    }
    apply_rendered(
        aws,
        c,
        name,
        text,
        template_bucket,
        None,
        resources,
        parameters,
        what,
    )
    .await
}

/// Applies a rendered template (through a change set); its outputs, and whether anything
/// changed.
#[allow(clippy::too_many_arguments)]
pub async fn apply_rendered(
    aws: &Aws,
    c: &StageConfig,
    name: &str,
    body: String,
    template_bucket: Option<&str>,
    role_arn: Option<&str>,
    resources: usize,
    parameters: Vec<(String, String)>,
    what: &str,
) -> Result<(Vec<(String, String)>, bool), ApplyError> {
    let template = template_source(aws, c, template_bucket, name, body).await?;
    let spec = StackSpec {
        name: name.to_owned(),
        template,
        parameters,
        tags: tags(c),
        resources,
        protected: c.protected,
        role_arn: role_arn.map(str::to_owned),
    };
    match apply(&aws.cfn, &spec, what).await? {
        Applied::Done { outputs, .. } => Ok((outputs, true)),
        Applied::NoChanges => {
            let outputs = deployed(aws, name)
                .await?
                .map(|d| d.outputs)
                .unwrap_or_default();
            Ok((outputs, false))
        }
    }
}

/// The largest template sent inline: CloudFormation's limit, or less when
/// `DEPLOYER_INLINE_TEMPLATE_LIMIT` says so (the tests use it to take the S3 path with a
/// template of today's size).
pub fn inline_limit() -> anyhow::Result<usize> {
    match std::env::var("DEPLOYER_INLINE_TEMPLATE_LIMIT") {
        Err(_) => Ok(INLINE_TEMPLATE_LIMIT),
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if n <= INLINE_TEMPLATE_LIMIT => Ok(n),
            _ => anyhow::bail!(
                "DEPLOYER_INLINE_TEMPLATE_LIMIT={v}: give a number of bytes up to {INLINE_TEMPLATE_LIMIT}"
            ),
        },
    }
}

/// The template inline when CloudFormation takes it so, otherwise uploaded to `bucket` (the
/// stage's artifacts bucket) under its content hash and given by URL. The URL is S3's
/// virtual-hosted regional form, which CloudFormation reads in every region.
pub async fn template_source(
    aws: &Aws,
    c: &StageConfig,
    bucket: Option<&str>,
    stack: &str,
    body: String,
) -> anyhow::Result<TemplateSource> {
    let limit = inline_limit()?;
    if body.len() <= limit {
        return Ok(TemplateSource::Body(body));
    }
    let Some(bucket) = bucket else {
        anyhow::bail!(
            "the template of {stack} is {} bytes, over the {limit} CloudFormation takes inline, and there is no bucket to send it through",
            body.len()
        );
    };
    let key = format!(
        "templates/{stack}/{}.json",
        Artifact::new(body.as_bytes().to_vec()).sha256
    );
    let uploaded = upload(aws, bucket, &key, body.as_bytes()).await?;
    let suffix = if c.region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    eprintln!(
        "template of {stack}: {} bytes, over {limit} inline: s3://{bucket}/{key}{}",
        body.len(),
        if uploaded {
            " uploaded"
        } else {
            " already there"
        }
    );
    Ok(TemplateSource::Url(format!(
        "https://{bucket}.s3.{}.{suffix}/{key}",
        c.region
    )))
}

/// Uploads `body` under `key` unless an object is there already (keys are content hashes).
async fn upload(aws: &Aws, bucket: &str, key: &str, body: &[u8]) -> anyhow::Result<bool> {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => return Ok(false),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
        Err(e) => {
            return Err(crate::aws::failed(
                format!("checking s3://{bucket}/{key}"),
                e,
            ))
        }
    }
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("uploading s3://{bucket}/{key}"), e))?;
    Ok(true)
}

/// Uploads the Lambda zip and the Spark job under their keys, skipping what is there.
pub async fn upload_artifacts(
    aws: &Aws,
    bucket: &str,
    binary: &[u8],
    spark: &[u8],
    lambda_key: &str,
    spark_key: &str,
) -> anyhow::Result<()> {
    let zip = Artifact::new(lambda_zip(binary)?);
    let spark = Artifact::new(spark.to_vec());
    for (key, artifact, what) in [
        (lambda_key, &zip, "Lambda zip"),
        (spark_key, &spark, "Spark job"),
    ] {
        let uploaded = upload(aws, bucket, key, &artifact.bytes).await?;
        eprintln!(
            "{what}: s3://{bucket}/{key} ({} bytes){}",
            artifact.bytes.len(),
            if uploaded {
                " uploaded"
            } else {
                " already there"
            }
        );
    }
    Ok(())
}

/// Puts the artifacts into the stage's functions and says what changed.
pub async fn swap_in(
    aws: &Aws,
    stage: &str,
    bucket: &str,
    outputs: &[(String, String)],
    lambda_key: &str,
    spark_key: &str,
) -> anyhow::Result<()> {
    for s in crate::hotswap::swap(aws, outputs, bucket, lambda_key, spark_key).await? {
        eprintln!(
            "stage {stage}: {} code {} -> {}",
            s.function, s.code_sha256_before, s.code_sha256_after
        );
    }
    Ok(())
}

/// Termination protection follows the stage's `protected` setting: on for a protected stage
/// (only `teardown --force` lifts it), off otherwise, as the config says.
pub async fn protect(aws: &Aws, c: &StageConfig, stack: &str) -> anyhow::Result<()> {
    if crate::cloudformation::protection::set(&aws.cfn, stack, c.protected).await? {
        eprintln!(
            "{stack}: termination protection {}",
            if c.protected {
                "on (protected stage)"
            } else {
                "off (the stage is no longer protected)"
            }
        );
    }
    Ok(())
}
