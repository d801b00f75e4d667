//! Review before apply: `deploy` shows the change and asks a person on a terminal before it
//! broadens IAM access (`--require-approval broadening`, the default, as CDK's), before any
//! change (`any-change`), or never (`never`). A first deploy broadens (every statement is new),
//! as in CDK. Without a terminal a change that needs approval is refused (exit 6) naming the
//! flag: a CI job that means it passes `--require-approval never`.

use std::io::{BufRead, IsTerminal, Write};

use crate::cli::RequireApproval;
use crate::cloudformation::apply::ApplyError;
use crate::diff::compare::Report;
use crate::diff::render::{render, Style};

/// Why `report` needs approval under `mode`, if it does.
pub fn needed(report: &Report, mode: RequireApproval) -> Option<String> {
    let broadening: Vec<String> = report
        .resources
        .iter()
        .flat_map(|r| {
            r.iam
                .iter()
                .map(move |f| format!("{} {}: {}", r.logical_id, f.kind, f.statement))
        })
        .collect();
    match mode {
        RequireApproval::Never => None,
        RequireApproval::Broadening | RequireApproval::AnyChange if !broadening.is_empty() => {
            Some(format!(
                "it broadens IAM access ({} finding{}: {}{})",
                broadening.len(),
                if broadening.len() == 1 { "" } else { "s" },
                broadening[..broadening.len().min(3)].join("; "),
                if broadening.len() > 3 { "; ..." } else { "" }
            ))
        }
        RequireApproval::AnyChange if report.changes => Some("it changes the stage".into()),
        _ => None,
    }
}

/// Shows the change and asks; `Ok` when approved, [`ApplyError::NotApproved`] when declined
/// or when there is no terminal to ask on.
pub fn ask(stage: &str, report: &Report, why: &str) -> Result<(), Box<ApplyError>> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Box::new(ApplyError::NotApproved(format!(
            "this deploy of stage {stage} needs approval: {why}; there is no terminal to ask on \
             (see `deployer diff --stage {stage}`); deploy again with --require-approval never \
             to accept it without asking"
        ))));
    }
    let answer = prompt(stage, report, why).map_err(|e| Box::new(ApplyError::Aws(e)))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Box::new(ApplyError::NotApproved(format!(
            "not approved: stage {stage} is unchanged"
        )))),
    }
}

/// Prints the change and the question on standard error; the line typed.
fn prompt(stage: &str, report: &Report, why: &str) -> anyhow::Result<String> {
    let shown = render(report, Style::Text)?;
    let mut err = std::io::stderr().lock();
    writeln!(err, "{}", shown.trim_end())?;
    write!(
        err,
        "This deploy of stage {stage} needs approval: {why}.\nDeploy these changes? [y/N] "
    )?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::compare::compare;
    use serde_json::json;

    fn role(actions: &[&str]) -> serde_json::Value {
        json!({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"}}]},
            "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
                {"Sid": "S", "Effect": "Allow", "Action": actions, "Resource": "*"}]}}]}}}})
    }

    #[test]
    fn a_wider_statement_or_a_first_deploy_needs_approval_unless_never() {
        let old = role(&["s3:GetObject"]);
        let wider = compare(
            "alice",
            Some((&old, &[])),
            &role(&["s3:GetObject", "s3:PutObject"]),
            &[],
        );
        assert!(needed(&wider, RequireApproval::Broadening).is_some_and(|w| w.contains("broadens")));
        assert!(needed(&wider, RequireApproval::Never).is_none());
        let first = compare("alice", None, &old, &[]);
        assert!(needed(&first, RequireApproval::Broadening).is_some());
        // Narrower: no broadening; any-change still asks.
        let narrower = compare("alice", Some((&wider_template(), &[])), &old, &[]);
        assert!(
            needed(&narrower, RequireApproval::Broadening).is_none(),
            "{narrower:?}"
        );
        assert!(needed(&narrower, RequireApproval::AnyChange).is_some());
        let same = compare("alice", Some((&old, &[])), &old, &[]);
        assert!(needed(&same, RequireApproval::AnyChange).is_none());
    }

    fn wider_template() -> serde_json::Value {
        role(&["s3:GetObject", "s3:PutObject"])
    }
}
