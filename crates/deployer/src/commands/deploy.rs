//! `deployer deploy --stage S`: reads the bootstrap stack (artifacts bucket, CloudFormation
//! role; `deployer bootstrap` makes it), uploads the artifacts under content-hash keys
//! (skipping what is there), asks IAM whether the role and the caller may do what the deploy
//! needs ([`crate::preflight`]), then applies the stage's stack through a change set, as the
//! role. Nothing changed (template, parameters, artifact hashes) means no upload and no change
//! set.
//! With `--hotswap`, a change of the artifacts alone goes straight into the functions
//! ([`crate::hotswap`]).

use anyhow::Context;
use serde_json::Value;

use crate::artifacts::{build_bootstrap, lambda_zip, workspace_root, Artifact};
use crate::aws::Aws;
use crate::cli::{DeployArgs, Global};
use crate::cloudformation::apply::{apply, Applied, ApplyError, StackSpec};
use crate::cloudformation::change_set::{TemplateSource, INLINE_TEMPLATE_LIMIT};
use crate::cloudformation::status::{
    describe, output, outputs_of, sentiment, status_of, template_of, Sentiment,
};
use stack_model::pipeline::{self, params};
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
async fn apply_rendered(
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

pub async fn run(global: &Global, args: &DeployArgs) -> Result<(), ApplyError> {
    let c = global.stage_config(&args.stage)?;
    if args.hotswap && c.protected {
        return Err(ApplyError::Refused(format!(
            "--hotswap is refused on protected stage {}: its stack must always describe what runs \
             (drift detection, a rollback and an audit read it); deploy without --hotswap",
            c.stage
        )));
    }
    let aws = Aws::connect(&c.region).await;
    let stage = &c.stage;
    eprintln!(
        "deploying stage {stage} to {}{}",
        c.region,
        aws.endpoint()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default()
    );

    // 1. The bootstrap stack: the artifacts bucket and the CloudFormation role.
    let boot = Bootstrap::read(&aws, &c).await?;
    let bucket = boot.bucket.clone();

    // 2. The artifacts, named by content.
    let bootstrap_path = match &args.lambda_bootstrap {
        Some(p) => p.clone(),
        None => build_bootstrap(&workspace_root()?)?,
    };
    let binary = std::fs::read(&bootstrap_path)
        .with_context(|| format!("reading {}", bootstrap_path.display()))?;
    let spark = spark_job(args.spark_job.as_deref())?;
    let (lambda_key, spark_key) = artifact_keys(&binary, &spark);
    let parameters = stack_parameters(&bucket, &lambda_key, &spark_key);

    // 3. Nothing changed: say so, touch nothing. Data at risk: refuse unless named.
    let template = pipeline::template(&c);
    let (text, rendered, resources) = body(&template)?;
    let stack = stage.stack_name();
    let current = deployed(&aws, &stack).await?;
    // A stack deployed before the role (or through another) is deployed again, with it.
    let through_role = current
        .as_ref()
        .is_some_and(|d| d.role_arn.as_deref() == Some(boot.role_arn.as_str()));
    let record = match &current {
        Some(_) => crate::hotswap::read(&aws, &bucket, &stack).await?,
        None => None,
    };
    if args.hotswap {
        match &current {
            None => eprintln!("--hotswap: stage {stage} has no deployed stack yet: a full deploy"),
            Some(Deployed {
                template: t,
                parameters: p,
                outputs,
                ..
            }) => match crate::hotswap::refusal(t, &rendered, p, &parameters) {
                Some(why) => eprintln!("--hotswap: {why}: a full deploy"),
                None => {
                    let runs = record
                        .as_ref()
                        .map(|r| r.parameters(&bucket))
                        .unwrap_or_else(|| p.clone());
                    if runs == parameters {
                        eprintln!("stage {stage} is up to date: the functions run these artifacts (nothing hotswapped)");
                        print_outputs(outputs);
                        return Ok(());
                    }
                    upload_artifacts(&aws, &bucket, &binary, &spark, &lambda_key, &spark_key)
                        .await?;
                    swap_in(
                        &aws,
                        stage.as_str(),
                        &bucket,
                        outputs,
                        &lambda_key,
                        &spark_key,
                    )
                    .await?;
                    if *p == parameters {
                        // Back to what the stack names: nothing is out of date any more.
                        crate::hotswap::forget(&aws, &bucket, &stack).await?;
                    } else {
                        let at = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
                            .fmt(aws_smithy_types::date_time::Format::DateTime)
                            .map_err(anyhow::Error::from)?;
                        let r = crate::hotswap::Record {
                            lambda_code_key: lambda_key.clone(),
                            spark_job_key: spark_key.clone(),
                            at,
                        };
                        crate::hotswap::write(&aws, &bucket, &stack, &r).await?;
                        eprintln!("stage {stage}: hotswapped without a change set; the stack's view is out of date until a full deploy (`deployer diff` shows it)");
                    }
                    print_outputs(outputs);
                    return Ok(());
                }
            },
        }
    }
    if let Some(Deployed {
        template: t,
        parameters: p,
        outputs,
        ..
    }) = &current
    {
        if *t == rendered && *p == parameters && through_role {
            if let Some(r) = &record {
                // A hotswap put other artifacts into the functions: put the stack's back.
                eprintln!(
                    "stage {stage}: the functions run {} (hotswapped at {}); putting the stack's artifacts back",
                    r.lambda_code_key, r.at
                );
                swap_in(
                    &aws,
                    stage.as_str(),
                    &bucket,
                    outputs,
                    &lambda_key,
                    &spark_key,
                )
                .await?;
                crate::hotswap::forget(&aws, &bucket, &stack).await?;
            } else {
                eprintln!("stage {stage} is up to date: template, parameters and artifacts unchanged (nothing uploaded, no change set)");
            }
            protect(&aws, &c, &stack).await?;
            print_outputs(outputs);
            return Ok(());
        }
        let report =
            crate::diff::compare::compare(stage.as_str(), Some((t, p)), &rendered, &parameters);
        let refused: Vec<&String> = report
            .data_at_risk
            .iter()
            .filter(|id| !args.allow_replace.contains(id))
            .collect();
        if !report.guard_lowered.is_empty() && !args.allow_lower_guard {
            return Err(ApplyError::Refused(format!(
                "this deploy would lower stage {stage}'s guard ({}; see `deployer diff --stage {stage}`): \
                 is {} the configuration you meant? deploy again with --allow-lower-guard to accept it",
                report.guard_lowered.join("; "),
                crate::config_file::current(global.config.as_deref())?.describe().trim_start_matches("config: ")
            )));
        }
        if !refused.is_empty() {
            let names: Vec<&str> = refused.iter().map(|s| s.as_str()).collect();
            return Err(ApplyError::Refused(format!(
                "this deploy would replace or remove {} with their data (see `deployer diff --stage {stage}`); \
                 deploy again with {} to accept that",
                names.join(", "),
                names.iter().map(|n| format!("--allow-replace {n}")).collect::<Vec<_>>().join(" ")
            )));
        }
    }
    // 4. IAM's simulator: the role and the caller may do all this deploy needs.
    let removed = current.as_ref().map(|d| &d.template);
    crate::preflight::check(&aws, &c, &boot.role_arn, &rendered, removed)
        .await
        .map_err(ApplyError::Aws)?;
    upload_artifacts(&aws, &bucket, &binary, &spark, &lambda_key, &spark_key).await?;

    // 5. A protected stage torn down with --force left its data: adopt it (an import change
    // set) before creating the rest, rather than fail on its names.
    if current.is_none() && c.protected {
        let account = aws.account().await?;
        let found = crate::adopt::find(&aws, &rendered, &account, &c.region).await?;
        if !found.is_empty() {
            let ids: Vec<&str> = found.iter().map(|f| f.logical_id.as_str()).collect();
            eprintln!(
                "stage {stage}: adopting what an earlier teardown retained: {}",
                ids.join(", ")
            );
            crate::adopt::import(&aws, &stack, &rendered, &found, &parameters, &boot.role_arn)
                .await?;
        }
    }

    // 6. What CloudFormation cannot change or delete as it stands: an EMR Serverless
    // application that is started, and EMR's security groups in a retired VPC.
    if let Some(d) = &current {
        crate::emr_application::before_stack_change(
            &aws,
            &stack,
            &d.template,
            Some(&rendered),
            crate::emr_application::Runs::cancel_if(args.cancel_runs),
            &format!("the update of stage {stage}"),
        )
        .await?;
    }

    // 7. The stage's stack (known to differ from the deployed one: step 3 compared them).
    let (outputs, changed) = apply_rendered(
        &aws,
        &c,
        &stack,
        text,
        Some(&bucket),
        Some(&boot.role_arn),
        resources,
        parameters,
        &format!("stage {stage}"),
    )
    .await?;
    if !changed {
        eprintln!("stage {stage}: CloudFormation found no changes");
    }
    if record.is_some() {
        // The stack names the functions' artifacts again: nothing is out of date.
        crate::hotswap::forget(&aws, &bucket, &stack).await?;
        eprintln!(
            "stage {stage}: the stack's view is in line with what runs again (after a hotswap)"
        );
    }
    protect(&aws, &c, &stack).await?;
    print_outputs(&outputs);
    Ok(())
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

/// Uploads the Lambda zip and the Spark job under their keys, skipping what is there.
async fn upload_artifacts(
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
async fn swap_in(
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

fn print_outputs(outputs: &[(String, String)]) {
    let mut sorted = outputs.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        println!("{k}: {v}");
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
