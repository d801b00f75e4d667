//! EMR's managed security groups in a stage's retired network.
//!
//! A stage deployed before EMR Serverless owned a VPC its transient EMR cluster ran in. EMR
//! creates its managed security groups there (ElasticMapReduce-Master-Private,
//! -Slave-Private, -ServiceAccess), each referencing the others in its rules, and never
//! deletes them (EMR management guide, "Working with Amazon EMR-managed security groups"), so
//! CloudFormation's deletion of the VPC ends `DELETE_FAILED` with a dependency violation; a
//! group another group's rule references cannot be deleted either. Before a deploy removes the
//! VPC, and before a teardown, the deployer revokes every rule of those groups and then
//! deletes them. Only the groups EMR tags `for-use-with-amazon-emr-managed-policies=true`
//! (`AmazonEMRServicePolicy_v2` creates security groups only with that tag), in that VPC.

use aws_sdk_ec2::types::Filter;

use crate::aws::{failed, Aws};
use stack_model::pipeline::{retired, EMR_MANAGED_POLICY_TAG};

/// The retired VPC of a deployed template, if a change to `rendered` (None: the stack goes)
/// removes it.
pub fn removed_vpc(
    deployed: &serde_json::Value,
    rendered: Option<&serde_json::Value>,
) -> Option<String> {
    let id = retired::VPC_LOGICAL_ID;
    let held = deployed["Resources"][id]["Type"] == "AWS::EC2::VPC";
    let kept = rendered.is_some_and(|r| r["Resources"].get(id).is_some());
    (held && !kept).then(|| id.to_owned())
}

/// Revokes the rules of EMR's managed security groups in `vpc` and deletes them; returns how
/// many were deleted.
pub async fn delete_in(aws: &Aws, vpc: &str) -> anyhow::Result<usize> {
    let ec2 = aws_sdk_ec2::Client::new(&aws.conf);
    let out = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .filters(
            Filter::builder()
                .name(format!("tag:{EMR_MANAGED_POLICY_TAG}"))
                .values("true")
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed(format!("DescribeSecurityGroups in {vpc}"), e))?;
    let groups: Vec<_> = out
        .security_groups()
        .iter()
        .filter(|g| g.group_name() != Some("default"))
        .collect();
    if groups.is_empty() {
        return Ok(0);
    }
    // First every rule of every group: then no group references another. Rules are revoked
    // by their ids (DescribeSecurityGroupRules), which name each rule exactly, whatever form
    // its source takes.
    for g in &groups {
        let id = g.group_id().unwrap_or_default();
        let mut ingress = Vec::new();
        let mut egress = Vec::new();
        let mut pages = ec2
            .describe_security_group_rules()
            .filters(Filter::builder().name("group-id").values(id).build())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| failed(format!("DescribeSecurityGroupRules of {id}"), e))?;
            for r in page.security_group_rules() {
                let rule = r.security_group_rule_id().unwrap_or_default().to_owned();
                if r.is_egress() == Some(true) {
                    egress.push(rule);
                } else {
                    ingress.push(rule);
                }
            }
        }
        if !ingress.is_empty() {
            ec2.revoke_security_group_ingress()
                .group_id(id)
                .set_security_group_rule_ids(Some(ingress))
                .send()
                .await
                .map_err(|e| failed(format!("RevokeSecurityGroupIngress on {id}"), e))?;
        }
        if !egress.is_empty() {
            ec2.revoke_security_group_egress()
                .group_id(id)
                .set_security_group_rule_ids(Some(egress))
                .send()
                .await
                .map_err(|e| failed(format!("RevokeSecurityGroupEgress on {id}"), e))?;
        }
    }
    for g in &groups {
        let id = g.group_id().unwrap_or_default();
        ec2.delete_security_group()
            .group_id(id)
            .send()
            .await
            .map_err(|e| failed(format!("DeleteSecurityGroup {id}"), e))?;
        eprintln!(
            "  deleted EMR's security group {id} ({}) in {vpc}",
            g.group_name().unwrap_or_default()
        );
    }
    Ok(groups.len())
}

/// Before `what` removes the retired VPC `vpc` (logical id `logical`): EMR's groups in it go
/// first.
pub async fn clear(aws: &Aws, logical: &str, vpc: &str, what: &str) -> anyhow::Result<()> {
    eprintln!("{logical}: removing EMR's managed security groups from {vpc} before {what}");
    if delete_in(aws, vpc).await? == 0 {
        eprintln!("  none in {vpc}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_removed_retired_vpc_is_cleared() {
        let old = json!({"Resources": {"EmrVpc": {"Type": "AWS::EC2::VPC"}}});
        let new =
            json!({"Resources": {"EmrApplication": {"Type": "AWS::EMRServerless::Application"}}});
        assert_eq!(removed_vpc(&old, Some(&new)).as_deref(), Some("EmrVpc"));
        assert_eq!(removed_vpc(&old, None).as_deref(), Some("EmrVpc"));
        assert_eq!(removed_vpc(&old, Some(&old)), None);
        assert_eq!(removed_vpc(&new, None), None);
    }
}
