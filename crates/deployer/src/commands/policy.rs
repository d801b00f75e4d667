//! `deployer policy --stage S [--account ID]`: the IAM policy (JSON) an identity needs to run
//! `deploy`, `diff`, `teardown`, `trigger`, `info` and `logs` for stage S, and nothing of
//! any other stage, as IAM managed policies (each within IAM's size limit) to attach together:
//! `[{"name": "pdcase-S-deploy-1", "document": {...}}, ...]`. See `stack_model::deploy_policy`
//! for what it holds and why.

use anyhow::bail;

use crate::cli::{Global, PolicyArgs};
use stack_model::deploy_policy::deploy_policies;

pub fn run(global: &Global, args: &PolicyArgs) -> anyhow::Result<()> {
    let account = args.account.as_str();
    if account != "*" && !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
        bail!("--account {account}: an AWS account id is 12 digits (or `*` for any account)");
    }
    let c = global.stage_config(&args.stage)?;
    let policies: Vec<serde_json::Value> = deploy_policies(&c, account)
        .into_iter()
        .map(|(name, document)| serde_json::json!({"name": name, "document": document}))
        .collect();
    println!("{}", serde_json::to_string_pretty(&policies)?);
    Ok(())
}
