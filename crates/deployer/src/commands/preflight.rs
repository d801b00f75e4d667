//! `deployer preflight --stage S`: the check `deploy` runs before any change set, alone: asks
//! IAM's simulator whether the stage's CloudFormation role may make every call the handlers of
//! the stage's template make, and the caller the deployer's own ([`crate::preflight`]).
//! Exit 0: all allowed; 1: something is missing (each named, with the statement that grants
//! it).

use crate::aws::Aws;
use crate::cli::{Global, StageArgs};
use crate::cloudformation::apply::ApplyError;
use crate::stage_stack::{deployed, Bootstrap};
use stack_model::pipeline;

pub async fn run(global: &Global, args: &StageArgs) -> Result<(), ApplyError> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let boot = Bootstrap::read(&aws, &c).await?;
    let rendered = pipeline::template(&c)
        .to_json()
        .map_err(anyhow::Error::from)?;
    let current = deployed(&aws, &c.stage.stack_name()).await?;
    crate::preflight::check(
        &aws,
        &c,
        &boot.role_arn,
        &rendered,
        current.as_ref().map(|d| &d.template),
    )
    .await
    .map_err(ApplyError::Aws)
}
