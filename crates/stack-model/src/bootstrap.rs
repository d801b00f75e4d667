//! The stage's bootstrap stack: the artifacts bucket the deployer uploads the Lambda zip and
//! the Spark job to, before the main stack (which reads them) is created or updated, and the
//! CloudFormation service role the main stack is deployed through
//! ([`crate::cloudformation_role`]), with its generated managed policies. `deployer bootstrap`
//! creates and updates it, as an identity that may create IAM roles (as `cdk bootstrap` does);
//! the deploy identity only reads it, and deletes it on `teardown`.

use crate::cloudformation_role;
use crate::config::StageConfig;
use crate::constructs::{clean_up_rule, tls_only_policy, to_event_bridge};
use crate::resource::iam::{ManagedPolicy, PolicyDocument, Role, RoleAttr};
use crate::resource::s3::{
    Bucket, BucketEncryption, LifecycleConfiguration, LoggingConfiguration, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, SseAlgorithm,
    VersioningConfiguration, VersioningStatus,
};
use crate::resource::Tag;
use crate::stage::{BucketRole, RoleKind, PROJECT};
use crate::template::Template;
use crate::value::Value;

/// The bootstrap stack's output naming the bucket.
pub const ARTIFACTS_BUCKET_OUTPUT: &str = "ArtifactsBucketName";

/// The bootstrap stack's output naming the CloudFormation role's ARN.
pub const CLOUDFORMATION_ROLE_OUTPUT: &str = "CloudFormationRoleArn";

/// The bootstrap template of a stage: the artifacts bucket, and the CloudFormation role with
/// its policies.
pub fn template(c: &StageConfig) -> Template {
    let mut t = bucket_template(c);
    cloudformation_role(&mut t, c);
    t
}

/// The bootstrap template with the artifacts bucket alone: what a first `deployer bootstrap`
/// creates when the whole template is larger than CloudFormation takes inline (a template
/// over that limit must come from S3, and this is the bucket it comes from).
pub fn bucket_template(c: &StageConfig) -> Template {
    let mut t = Template::new(format!(
        "{PROJECT} artifacts bucket, stage {} (rendered by deployer; do not edit)",
        c.stage
    ));
    let tags = vec![
        Tag::new("Project", PROJECT),
        Tag::new("Stage", c.stage.as_str()),
    ];
    let bucket = t.add(
        "ArtifactsBucket",
        Bucket {
            bucket_name: Some(Value::sub(c.stage.bucket_name_sub(BucketRole::Artifacts))),
            // Hardened stages: SSE-KMS with S3's AWS managed key (AWS Control Tower's
            // CT.S3.PR.10), as CDK's bootstrap bucket of assets is by default; the stage's own
            // key lives in the pipeline stack, which is deployed after this one and reads the
            // artifacts. Other stages: SSE-S3, no KMS requests to pay for.
            bucket_encryption: Some(BucketEncryption::default_with(if c.hardened {
                SseAlgorithm::AwsKms
            } else {
                SseAlgorithm::Aes256
            })),
            public_access_block_configuration: Some(PublicAccessBlockConfiguration::all_blocked()),
            // Versioned, so a key the running stack points at is never lost to an overwrite.
            versioning_configuration: Some(VersioningConfiguration {
                status: VersioningStatus::Enabled,
            }),
            lifecycle_configuration: Some(LifecycleConfiguration {
                rules: vec![clean_up_rule()],
            }),
            // Its events go to EventBridge, as every bucket's of the stage (free; CT.S3.PR.4).
            notification_configuration: Some(to_event_bridge()),
            // A hardened stage with a configured log bucket logs here too; its own log
            // bucket lives in the pipeline stack, which is deployed after this one.
            logging_configuration: match (c.hardened, &c.access_logs_bucket) {
                (true, Some(name)) => Some(LoggingConfiguration {
                    destination_bucket_name: Value::lit(name.clone()),
                    log_file_prefix: format!(
                        "{}/{}/",
                        c.stage.prefix(),
                        BucketRole::Artifacts.as_str()
                    ),
                }),
                _ => None,
            },
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: ObjectOwnership::BucketOwnerEnforced,
                }],
            }),
            tags,
        },
    );
    t.add("ArtifactsBucketPolicy", tls_only_policy(&bucket));
    t.output(
        ARTIFACTS_BUCKET_OUTPUT,
        "Bucket of the stage's build artifacts",
        bucket.r#ref(),
    );
    t
}

/// The role CloudFormation assumes for the stage's stack, and its policies, generated from the
/// handlers' permissions of what the stage's template holds.
fn cloudformation_role(t: &mut Template, c: &StageConfig) {
    let role = t.add(
        "CloudFormationRole",
        Role {
            role_name: Some(Value::sub(c.stage.role_name_sub(RoleKind::CloudFormation))),
            description: Some(format!(
                "CloudFormation's service role for the stack of stage {} (generated from the resource handlers' permissions)",
                c.stage
            )),
            assume_role_policy_document: PolicyDocument::trust_services(&[
                "cloudformation.amazonaws.com",
            ]),
            managed_policy_arns: vec![],
            policies: vec![],
            tags: vec![
                Tag::new("Project", PROJECT),
                Tag::new("Stage", c.stage.as_str()),
            ],
        },
    );
    for (i, (name, document)) in cloudformation_role::policies(c, "${AWS::AccountId}")
        .into_iter()
        .enumerate()
    {
        t.add(
            &format!("CloudFormationRolePolicy{}", i + 1),
            ManagedPolicy {
                managed_policy_name: Some(Value::lit(name)),
                description: None,
                policy_document: with_account(document),
                roles: vec![role.r#ref()],
            },
        );
    }
    t.output(
        CLOUDFORMATION_ROLE_OUTPUT,
        "CloudFormation's service role for the stage's stack",
        role.get_att(RoleAttr::Arn),
    );
}

/// A policy whose ARNs name the account as `${AWS::AccountId}`, with each such ARN a `Fn::Sub`.
fn with_account(mut d: PolicyDocument) -> PolicyDocument {
    for s in &mut d.statement {
        for r in &mut s.resource {
            if let Some(text) = r.as_literal().filter(|t| t.contains("${")) {
                *r = Value::sub(text.to_owned());
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageName;

    #[test]
    fn one_bucket_named_for_the_stage_and_its_output() {
        let c = StageConfig::defaults(StageName::parse("alice").unwrap());
        let v = template(&c).to_json().unwrap();
        assert_eq!(
            v["Resources"]["ArtifactsBucket"]["Properties"]["BucketName"]["Fn::Sub"],
            "pdcase-alice-artifacts-${AWS::AccountId}-${AWS::Region}"
        );
        assert_eq!(
            v["Outputs"][ARTIFACTS_BUCKET_OUTPUT]["Value"]["Ref"],
            "ArtifactsBucket"
        );
    }
}
