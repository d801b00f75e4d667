//! `deployer bootstrap --stage S`: creates or updates the stage's bootstrap stack: the
//! artifacts bucket, and the CloudFormation role the stage's stack is deployed through, with
//! its policies generated from the handlers' permissions of what the stage's template holds
//! (`deployer policy --stage S --role cloudformation`). Run it once per stage and account, and
//! again when a change of the template needs more (preflight says so), as an identity that
//! may create IAM roles and policies: the deploy identity may not, which is the point.

use crate::aws::Aws;
use crate::cli::{BootstrapArgs, Global, ReportFormat};
use crate::cloudformation::apply::ApplyError;
use crate::cloudformation::status::output;
use crate::stage_apply::{ensure, inline_limit, protect};
use crate::stage_stack::{body, deployed};
use stack_model::bootstrap;

pub async fn run(global: &Global, args: &BootstrapArgs) -> Result<(), ApplyError> {
    let mut c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let name = c.stage.bootstrap_stack_name();
    eprintln!(
        "bootstrapping stage {} in {}{}",
        c.stage,
        c.region,
        aws.endpoint()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default()
    );
    // What the deployed stage holds: the role keeps its delete calls (an added resource taken
    // out of `resources:`, the old physical resource of a replacement), or the next deploy or
    // teardown could not remove it.
    if let Some(d) = deployed(&aws, &c.stage.stack_name()).await? {
        if let Some(resources) = d.template["Resources"].as_object() {
            crate::schemas::register_for(resources.values().filter_map(|r| r["Type"].as_str()));
            c.extensions.deployed = resources.clone();
        }
    }
    let full = bootstrap::template(&c);
    let (text, _, _) = body(&full)?;
    let limit = inline_limit()?;
    let bucket = match deployed(&aws, &name).await? {
        Some(d) => output(&d.outputs, bootstrap::ARTIFACTS_BUCKET_OUTPUT)
            .ok()
            .map(str::to_owned),
        None => None,
    };
    // A template over the inline limit comes from S3, from the bucket this stack holds: a first
    // bootstrap then creates the bucket alone, and adds the role through it.
    let bucket = match bucket {
        None if text.len() > limit => {
            eprintln!(
                "{name}: the template is {} bytes, over the {limit} CloudFormation takes inline: the artifacts bucket first, then the role through it",
                text.len()
            );
            let (outputs, _) = ensure(
                &aws,
                &c,
                &name,
                &bootstrap::bucket_template(&c),
                vec![],
                None,
                "bootstrap stack (bucket)",
            )
            .await?;
            Some(output(&outputs, bootstrap::ARTIFACTS_BUCKET_OUTPUT)?.to_owned())
        }
        b => b,
    };
    let (outputs, changed) = ensure(
        &aws,
        &c,
        &name,
        &full,
        vec![],
        bucket.as_deref(),
        "bootstrap stack",
    )
    .await?;
    if !changed {
        eprintln!("{name} is up to date: artifacts bucket and CloudFormation role unchanged");
    }
    protect(&aws, &c, &name).await?;
    let outputs: std::collections::BTreeMap<String, String> = outputs.into_iter().collect();
    match args.format {
        ReportFormat::Json => crate::output::print_json(&serde_json::json!({
            "stage": c.stage.as_str(),
            "stack": name,
            "region": c.region,
            "outcome": if changed { "deployed" } else { "up-to-date" },
            "outputs": outputs,
        }))?,
        ReportFormat::Text => {
            for (k, v) in outputs {
                println!("{k}: {v}");
            }
        }
    }
    Ok(())
}
