//! The stage's CloudFormation service role: CloudFormation creates, updates, rolls back and
//! deletes the stage's stack as this role (`RoleARN`; CloudFormation user guide,
//! "CloudFormation service role"), so the identity that deploys needs none of the stack's
//! resource permissions, only `iam:PassRole` on this role.
//!
//! Its policy is generated, never written by hand: every call of
//! [`crate::handler_calls::calls`] for the stage's template, rendered for each base-b engine
//! (switching engines creates the one's resources and deletes the other's), and the delete
//! calls of what earlier versions put in the stack ([`crate::pipeline::retired`]), grouped into
//! statements by the ARNs and conditions they share. Conditions are only those that hold when
//! CloudFormation makes the call: `iam:PassedToService` on each passed role, `iam:PolicyARN` on
//! each attached managed policy. None gates on a tag or an alias of a resource the stack is
//! creating: KMS applies tag and alias changes to authorization up to five minutes late (KMS
//! developer guide, "Use tags to control access to KMS keys"), and EC2's ids are unknown until
//! created, so the key's and the network's statements name any of their kind in the stage's
//! account and region. The role is CloudFormation's alone (its trust policy), and CloudFormation
//! acts only on the stacks it is passed with, which only this stage's deploy identity may do.
//!
//! ```
//! use stack_model::{cloudformation_role, StageConfig, StageName};
//! let c = StageConfig::defaults(StageName::parse("alice").unwrap());
//! let text = serde_json::to_string(&cloudformation_role::policy(&c, "123456789012")).unwrap();
//! assert!(text.contains("lambda:CreateFunction") && text.contains("iam:PassRole"));
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{BaseAEngine, BaseBEngine, StageConfig};
use crate::facts::Handler;
use crate::handler_calls::{calls_of, ArnEnv, Call};
use crate::managed_policies::split_into_managed_policies;
use crate::pipeline::{self, params};
use crate::resource::iam::{Condition, PolicyDocument, Statement};
use crate::stage::{BucketRole, RoleKind};
use crate::value::Value;

/// The role's name in the stage's region.
pub fn role_name(c: &StageConfig) -> String {
    c.stage.role_name(RoleKind::CloudFormation, &c.region)
}

/// The partition of a region.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The environment the stage's template resolves in: its artifacts bucket, and any key under
/// the artifacts' prefixes (the keys are content hashes).
pub fn arn_env(c: &StageConfig, account: &str) -> ArnEnv {
    ArnEnv::new(partition(&c.region), &c.region, account)
        .with_parameter(
            params::ARTIFACTS_BUCKET,
            &c.stage
                .bucket_name(BucketRole::Artifacts, account, &c.region),
        )
        .with_parameter(params::LAMBDA_CODE_KEY, "lambda/*")
        .with_parameter(params::SPARK_JOB_KEY, "spark/*")
}

/// Every call CloudFormation makes for the stage's stack, on any engine of either base.
pub fn stage_calls(c: &StageConfig, account: &str) -> Vec<Call> {
    stage_calls_of(c, account, &Handler::ALL)
}

/// The calls of the given handlers for the stage's stack, on any engine of either base: a
/// change of engine is a deploy the role must already allow.
pub fn stage_calls_of(c: &StageConfig, account: &str, handlers: &[Handler]) -> Vec<Call> {
    let env = arn_env(c, account);
    let mut all = Vec::new();
    for b in [BaseBEngine::Function, BaseBEngine::Emr] {
        for a in [BaseAEngine::Function, BaseAEngine::Sharded] {
            let mut variant = c.clone();
            variant.base_b_engine = b;
            variant.base_a_engine = a;
            let t = pipeline::template(&variant)
                .to_json()
                .expect("the stage's template renders");
            all.extend(calls_of(&t, &env, handlers));
        }
    }
    // What the deployed stack holds (an added resource taken out, the old physical resource of
    // a replacement): only deleted.
    if handlers.contains(&Handler::Delete) && !c.extensions.deployed.is_empty() {
        let t = serde_json::json!({"Resources": c.extensions.deployed});
        all.extend(calls_of(&t, &env, &[Handler::Delete]));
    }
    // What earlier versions put in the stack and the next deploy removes: only deleted.
    if handlers.contains(&Handler::Delete) {
        let t = pipeline::retired::template(c)
            .to_json()
            .expect("the retired resources render");
        all.extend(
            calls_of(&t, &env, &[Handler::Delete])
                .into_iter()
                .filter(|call| pipeline::retired::LOGICAL_IDS.contains(&call.logical_id.as_str())),
        );
    }
    all.sort();
    all.dedup();
    all
}

/// The role's policy for stage `c` in `account`.
pub fn policy(c: &StageConfig, account: &str) -> PolicyDocument {
    PolicyDocument::new(statements_for(&stage_calls(c, account), "Cfn"))
}

/// The role's policy as managed policies within IAM's size limit, named
/// `pdcase-<stage>-cloudformation-<n>`.
///
/// Cut where the bootstrap stack's policies are cut: they name the account as
/// `${AWS::AccountId}`, longer than an account id, so a cut measured on `account` could fit
/// fewer policies than the role holds; `deployer policy --role cloudformation` prints the
/// role's own policies, one for one.
pub fn policies(c: &StageConfig, account: &str) -> Vec<(String, PolicyDocument)> {
    const PLACEHOLDER: &str = "${AWS::AccountId}";
    let name = format!("{}-cloudformation", c.stage.prefix());
    let cut = split_into_managed_policies(policy(c, PLACEHOLDER), &name);
    if account == PLACEHOLDER {
        return cut;
    }
    let mut left = policy(c, account).statement;
    let mut parts = Vec::with_capacity(cut.len());
    for (part, doc) in &cut {
        let sids: Vec<&Option<String>> = doc.statement.iter().map(|s| &s.sid).collect();
        let (mine, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|s| sids.contains(&&s.sid));
        left = rest;
        parts.push((part.clone(), PolicyDocument::new(mine)));
    }
    if left.is_empty() && parts.iter().all(|(_, d)| !d.statement.is_empty()) {
        parts
    } else {
        // The statements differ by account (none do today): the account's own cut.
        split_into_managed_policies(policy(c, account), &name)
    }
}

/// `(operator, key, value)` of a statement's condition.
type Conditions = Vec<(String, String, String)>;

/// Statements granting `calls`: one per set of ARNs and condition, actions sorted, `Sid`s
/// `<prefix><Service><n>`.
pub fn statements_for(calls: &[Call], prefix: &str) -> Vec<Statement> {
    // Calls of one action with one condition: their resources together.
    let mut by_action: BTreeMap<(String, Conditions), BTreeSet<String>> = BTreeMap::new();
    // (condition, resources) -> actions
    let mut groups: BTreeMap<(Conditions, BTreeSet<String>), BTreeSet<String>> = BTreeMap::new();
    for call in calls {
        let condition: Conditions = call
            .context
            .iter()
            .map(|(k, v)| {
                let op = if k == "iam:PolicyARN" {
                    "ArnEquals"
                } else {
                    "StringEquals"
                };
                (op.to_owned(), k.clone(), v.clone())
            })
            .collect();
        by_action
            .entry((call.action.clone(), condition))
            .or_default()
            .extend(call.resources.iter().cloned());
    }
    for ((action, condition), resources) in by_action {
        // `*` covers every other ARN of the action.
        let resources = if resources.contains("*") {
            BTreeSet::from(["*".to_owned()])
        } else {
            resources
        };
        groups
            .entry((condition, resources))
            .or_default()
            .insert(action);
    }
    let mut counters: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for ((condition, resources), actions) in groups {
        let service = actions
            .iter()
            .next()
            .and_then(|a| a.split(':').next())
            .unwrap_or("any")
            .to_owned();
        let n = counters.entry(service.clone()).or_default();
        *n += 1;
        let sid = format!("{prefix}{}{}", sid_word(&service), n);
        let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
        let mut s = Statement::allow(
            &sid,
            &actions,
            resources.iter().map(|r| Value::lit(r.clone())).collect(),
        );
        let mut cond = Condition::default();
        for (op, key, value) in condition {
            cond = cond.with(&op, &key, value.as_str());
        }
        s.condition = cond;
        out.push(s);
    }
    out
}

/// `elasticloadbalancing` -> `Elasticloadbalancing`: a statement id is alphanumeric.
fn sid_word(service: &str) -> String {
    let mut chars = service.chars().filter(|c| c.is_ascii_alphanumeric());
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + &chars.collect::<String>(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed_policies::{MANAGED_POLICY_LIMIT, MAX_POLICIES_PER_PRINCIPAL};
    use crate::StageName;

    fn config(stage: &str, hardened: bool) -> StageConfig {
        let mut c = StageConfig::defaults(StageName::parse(stage).unwrap());
        c.hardened = hardened;
        c
    }

    fn grants(doc: &PolicyDocument, action: &str, resource: &str) -> bool {
        doc.statement.iter().any(|s| {
            s.action.iter().any(|a| a == action)
                && s.resource
                    .iter()
                    .any(|r| r.as_literal() == Some(resource) || r.as_literal() == Some("*"))
        })
    }

    /// What the deployed stack holds keeps its delete calls (an added resource taken out of
    /// `resources:`, the old name of a replaced one), and gains nothing else.
    #[test]
    fn the_deployed_stacks_resources_keep_their_delete_calls() {
        let mut c = config("alice", false);
        let old = "arn:aws:sns:us-east-1:123456789012:pdcase-alice-old-alerts";
        assert!(!grants(&policy(&c, "123456789012"), "sns:DeleteTopic", old));
        c.extensions.deployed.insert(
            "OldAlerts".into(),
            serde_json::json!({"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "pdcase-alice-old-alerts"}}),
        );
        let p = policy(&c, "123456789012");
        assert!(grants(&p, "sns:DeleteTopic", old));
        assert!(!grants(&p, "sns:CreateTopic", old));
    }

    #[test]
    fn the_two_blockers_a_review_found_are_granted() {
        let p = policy(&config("alice", true), "123456789012");
        // The instance profile is retired (issue 25): the role may still delete it, and
        // neither create it nor pass its role.
        let profile =
            "arn:aws:iam::123456789012:instance-profile/pdcase-alice-emr-instance-us-east-1";
        assert!(grants(&p, "iam:DeleteInstanceProfile", profile));
        assert!(grants(&p, "iam:RemoveRoleFromInstanceProfile", profile));
        assert!(!grants(&p, "iam:CreateInstanceProfile", profile));
        assert!(!grants(
            &p,
            "iam:PassRole",
            "arn:aws:iam::123456789012:role/pdcase-alice-emr-instance-us-east-1"
        ));
        assert!(grants(
            &p,
            "ec2:DeleteVpc",
            "arn:aws:ec2:us-east-1:123456789012:vpc/*"
        ));
        assert!(!grants(
            &p,
            "ec2:CreateVpc",
            "arn:aws:ec2:us-east-1:123456789012:vpc/*"
        ));
        assert!(grants(
            &p,
            "kms:TagResource",
            "arn:aws:kms:us-east-1:123456789012:key/*"
        ));
        // Without a tag gate: the key has no tags CloudFormation could be authorized by yet.
        let tag = p
            .statement
            .iter()
            .find(|s| s.action.iter().any(|a| a == "kms:TagResource"))
            .unwrap();
        assert!(tag.condition.is_empty());
        // What the handlers read, which the hand-written policy lacked.
        for action in [
            "emr-serverless:GetApplication",
            "lambda:GetFunctionCodeSigningConfig",
            "lambda:GetRuntimeManagementConfig",
            "logs:GetDataProtectionPolicy",
            "logs:DescribeResourcePolicies",
        ] {
            assert!(
                p.statement
                    .iter()
                    .any(|s| s.action.iter().any(|a| a == action)),
                "{action}"
            );
        }
    }

    #[test]
    fn the_printed_policies_are_the_bootstrap_stacks_one_for_one() {
        let mut c = config("perm", true);
        c.base_b_engine = BaseBEngine::Emr;
        let printed = policies(&c, "000000000000");
        let held = policies(&c, "${AWS::AccountId}");
        assert_eq!(printed.len(), held.len());
        for ((a, x), (b, y)) in printed.iter().zip(&held) {
            assert_eq!(a, b);
            let sids = |d: &PolicyDocument| {
                d.statement
                    .iter()
                    .map(|s| s.sid.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(sids(x), sids(y), "{a}");
        }
    }

    #[test]
    fn roles_are_passed_only_to_the_service_that_uses_them() {
        let p = policy(&config("alice", false), "123456789012");
        for s in &p.statement {
            if s.action.iter().any(|a| a == "iam:PassRole") {
                assert_eq!(s.action, ["iam:PassRole"]);
                let to = &s.condition.0["StringEquals"]["iam:PassedToService"];
                for r in &s.resource {
                    let r = r.as_literal().unwrap();
                    assert!(r.contains(":role/pdcase-alice-"), "{r}");
                    let expected = if r.contains("etl-shards") {
                        "states.amazonaws.com"
                    } else if r.contains("crawler") {
                        "glue.amazonaws.com"
                    } else if r.contains("emr-instance") {
                        "ec2.amazonaws.com"
                    } else {
                        "lambda.amazonaws.com"
                    };
                    assert_eq!(to.as_literal(), Some(expected), "{r}");
                }
            }
        }
    }

    #[test]
    fn the_policies_fit_iams_limits() {
        for hardened in [false, true] {
            let c = config("abcdefghij-123456", hardened);
            let parts = policies(&c, "123456789012");
            assert!(parts.len() <= MAX_POLICIES_PER_PRINCIPAL, "{}", parts.len());
            for (name, doc) in &parts {
                let size = serde_json::to_string(doc)
                    .unwrap()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .count();
                assert!(size <= MANAGED_POLICY_LIMIT, "{name}: {size}");
            }
        }
    }

    /// Every resource the role names is the stage's own, one of the account's EC2 or KMS
    /// resources (ids AWS picks), an AWS managed policy, or `*` for an action IAM authorizes
    /// on no resource type.
    #[test]
    fn every_resource_is_the_stages_or_unscopable() {
        let p = policy(&config("alice", true), "123456789012");
        for s in &p.statement {
            for r in &s.resource {
                let r = r.as_literal().unwrap();
                if r == "*" {
                    for a in &s.action {
                        let f = crate::facts::action_facts(a).unwrap();
                        assert!(
                            f.resources.iter().all(|x| !x.required),
                            "{a} is authorized on a resource type, yet granted on *"
                        );
                    }
                    continue;
                }
                let ok = r.contains("pdcase-alice-")
                    || r.contains("pdcase_alice_")
                    || r.ends_with(":catalog")
                    || r.ends_with("/pdcase-alice")
                    || r.starts_with("arn:aws:ec2:us-east-1:123456789012:")
                    || r.starts_with("arn:aws:kms:us-east-1:123456789012:key/")
                    || r == "arn:aws:emr-serverless:us-east-1:123456789012:/applications/*"
                    || r.ends_with(":role/aws-service-role/ops.emr-serverless.amazonaws.com/AWSServiceRoleForAmazonEMRServerless")
                    || r.ends_with("alias/pdcase-alice");
                assert!(ok, "{r} in {:?}", s.sid);
                assert!(
                    !r.contains("pdcase-alice*"),
                    "{r} would match stage alice-2"
                );
            }
        }
    }
}
