//! A policy cut into IAM managed policies within IAM's size limit: what both the deploy
//! identity's policy ([`crate::deploy_policy`]) and the stage's CloudFormation role's
//! ([`crate::cloudformation_role`]) are shipped as.
//!
//! ```
//! use stack_model::managed_policies::{split_into_managed_policies, MANAGED_POLICY_LIMIT};
//! use stack_model::resource::iam::{PolicyDocument, Statement};
//!
//! let statement = |i: usize| {
//!     let arn = format!("arn:aws:s3:::bucket-{i:0>200}/*");
//!     Statement::allow(&format!("S{i}"), &["s3:GetObject"], vec![arn.into()])
//! };
//! let parts = split_into_managed_policies(PolicyDocument::new((0..60).map(statement).collect()), "p");
//! assert!(parts.len() > 1 && parts[0].0 == "p-1");
//! assert!(parts.iter().all(|(_, d)| serde_json::to_string(d).unwrap().len() <= MANAGED_POLICY_LIMIT));
//! ```

use crate::resource::iam::PolicyDocument;

/// IAM's limit on a managed policy: 6,144 characters, whitespace not counted (IAM user
/// guide, "IAM and AWS STS quotas").
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// IAM's default limit on the managed policies attached to one role or user (IAM user guide,
/// "IAM and AWS STS quotas").
pub const MAX_POLICIES_PER_PRINCIPAL: usize = 10;

/// A policy as managed policies each within [`MANAGED_POLICY_LIMIT`], named `<name>-<n>`:
/// statements in order, a new policy whenever the next would not fit.
pub fn split_into_managed_policies(
    policy: PolicyDocument,
    name: &str,
) -> Vec<(String, PolicyDocument)> {
    let size = |d: &PolicyDocument| {
        serde_json::to_string(d)
            .expect("policies serialize")
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .count()
    };
    let mut docs: Vec<PolicyDocument> = Vec::new();
    for statement in policy.statement {
        match docs.last_mut() {
            Some(d)
                if size(&PolicyDocument::new(
                    d.statement
                        .iter()
                        .cloned()
                        .chain([statement.clone()])
                        .collect(),
                )) <= MANAGED_POLICY_LIMIT =>
            {
                d.statement.push(statement)
            }
            _ => docs.push(PolicyDocument::new(vec![statement])),
        }
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| (format!("{name}-{}", i + 1), d))
        .collect()
}
