//! `deployer policy --stage S [--account ID] [--role deployer|cloudformation]`: the IAM policy
//! (JSON) an identity needs to run `deploy`, `diff`, `teardown`, `trigger`, `info`, `logs`,
//! `query`, `drift` and `preflight` for stage S, and nothing of any other stage (`deployer`,
//! the default; `stack_model::deploy_policy`), or the policy of the stage's CloudFormation
//! role (`cloudformation`; `stack_model::cloudformation_role`), as IAM managed policies (each
//! within IAM's size limit) to attach together:
//! `[{"name": "pdcase-S-deploy-1", "document": {...}}, ...]`.

use anyhow::bail;

use crate::cli::{Global, PolicyArgs, PolicyRole};
use stack_model::cloudformation_role;
use stack_model::deploy_policy::deploy_policies;

pub fn run(global: &Global, args: &PolicyArgs) -> anyhow::Result<()> {
    let account = args.account.as_str();
    if account != "*" && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
        bail!("--account {account}: an AWS account id is 12 digits (or `*` for any account)");
    }
    let c = global.stage_config(&args.stage)?;
    let policies = match args.role {
        PolicyRole::Deployer => deploy_policies(&c, account),
        PolicyRole::Cloudformation => cloudformation_role::policies(&c, account),
    };
    let policies: Vec<serde_json::Value> = policies
        .into_iter()
        .map(|(name, document)| serde_json::json!({"name": name, "document": document}))
        .collect();
    crate::output::print_json(&serde_json::json!({
        "stage": c.stage.as_str(),
        "role": args.role,
        "policies": policies,
    }))
}
