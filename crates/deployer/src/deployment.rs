//! The deploy procedure (`deployer deploy`, and `deployer watch` after each change): reads the
//! bootstrap stack (artifacts bucket, CloudFormation role; `deployer bootstrap` makes it),
//! uploads the artifacts under content-hash keys (skipping what is there), asks IAM whether the
//! role and the caller may do what the deploy needs ([`crate::preflight`]), then applies the
//! stage's stack through a change set, as the role. Nothing changed (template, parameters,
//! artifact hashes) means no upload and no change set. With `--hotswap`, a change of the
//! artifacts alone goes straight into the functions ([`crate::hotswap`]).

use serde::Serialize;

use crate::aws::Aws;
use crate::cli::{DeployArgs, Global};
use crate::cloudformation::apply::ApplyError;
use crate::stage_apply::{apply_rendered, protect, swap_in, upload_artifacts};
use crate::stage_stack::{
    artifact_keys, body, bootstrap_binary, deployed, spark_job, stack_parameters, Bootstrap,
    Deployed,
};
use stack_model::pipeline;
use stack_model::StageConfig;

/// What a deploy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to change: no upload, no change set (or CloudFormation found none).
    UpToDate,
    /// The functions' code changed in place, without a change set (`--hotswap`).
    Hotswapped,
    /// A change set was applied.
    Deployed,
}

/// A deploy's result: what it did and the stack's outputs.
#[derive(Debug, Serialize)]
pub struct Deployment {
    pub stage: String,
    pub stack: String,
    pub region: String,
    pub outcome: Outcome,
    /// The stack's outputs, sorted by key.
    pub outputs: std::collections::BTreeMap<String, String>,
}

impl Deployment {
    fn new(c: &StageConfig, outcome: Outcome, outputs: &[(String, String)]) -> Deployment {
        Deployment {
            stage: c.stage.as_str().to_owned(),
            stack: c.stage.stack_name(),
            region: c.region.clone(),
            outcome,
            outputs: outputs.iter().cloned().collect(),
        }
    }
}

/// Deploys the stage `args` names; see the module's documentation.
pub async fn deploy(global: &Global, args: &DeployArgs) -> Result<Deployment, ApplyError> {
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
    let binary = bootstrap_binary(args.lambda_bootstrap.as_deref())?;
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
        Some(_) => crate::hotswap_record::read(&aws, &bucket, &stack).await?,
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
                        return Ok(Deployment::new(&c, Outcome::UpToDate, outputs));
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
                        crate::hotswap_record::forget(&aws, &bucket, &stack).await?;
                    } else {
                        let at = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
                            .fmt(aws_smithy_types::date_time::Format::DateTime)
                            .map_err(anyhow::Error::from)?;
                        let r = crate::hotswap_record::Record {
                            lambda_code_key: lambda_key.clone(),
                            spark_job_key: spark_key.clone(),
                            at,
                        };
                        crate::hotswap_record::write(&aws, &bucket, &stack, &r).await?;
                        eprintln!("stage {stage}: hotswapped without a change set; the stack's view is out of date until a full deploy (`deployer diff` shows it)");
                    }
                    return Ok(Deployment::new(&c, Outcome::Hotswapped, outputs));
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
                crate::hotswap_record::forget(&aws, &bucket, &stack).await?;
            } else {
                eprintln!("stage {stage} is up to date: template, parameters and artifacts unchanged (nothing uploaded, no change set)");
            }
            protect(&aws, &c, &stack).await?;
            return Ok(Deployment::new(&c, Outcome::UpToDate, outputs));
        }
    }
    // What this deploy changes, against the deployed stack (none: a first deploy). It decides
    // the refusals below and whether a person must approve it.
    let mut report = crate::diff::compare::compare(
        stage.as_str(),
        current
            .as_ref()
            .map(|d| (&d.template, d.parameters.as_slice())),
        &rendered,
        &parameters,
    );
    // Overrides lowering the guard are refused on a first deploy too.
    report
        .guard_lowered
        .extend(stack_model::pipeline::guard_lowered_by_overrides(&c));
    if !report.guard_lowered.is_empty() && !args.allow_lower_guard {
        return Err(ApplyError::Refused(format!(
            "this deploy would lower stage {stage}'s guard ({}; see `deployer diff --stage {stage}`): \
             is {} the configuration you meant? deploy again with --allow-lower-guard to accept it",
            report.guard_lowered.join("; "),
            crate::config_file::current(global.config.as_deref())?.describe().trim_start_matches("config: ")
        )));
    }
    if current.is_some() {
        let refused: Vec<&String> = report
            .data_at_risk
            .iter()
            .filter(|id| !args.allow_replace.contains(id))
            .collect();
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
    // A change that broadens IAM access (or any change, by --require-approval) is shown and
    // asked about first; a first deploy broadens.
    if let Some(why) = crate::approval::needed(&report, args.require_approval) {
        crate::approval::ask(stage.as_str(), &report, &why).map_err(|e| *e)?;
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
        crate::hotswap_record::forget(&aws, &bucket, &stack).await?;
        eprintln!(
            "stage {stage}: the stack's view is in line with what runs again (after a hotswap)"
        );
    }
    protect(&aws, &c, &stack).await?;
    let outcome = if changed {
        Outcome::Deployed
    } else {
        Outcome::UpToDate
    };
    Ok(Deployment::new(&c, outcome, &outputs))
}
