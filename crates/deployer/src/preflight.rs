//! Preflight: before any change set, IAM's policy simulator (`iam:SimulatePrincipalPolicy`)
//! is asked whether the stage's CloudFormation role may make every call the deploy's handlers
//! make (stack_model::handler_calls, with each call's ARNs and context keys: the template's
//! resources, and the delete handlers of those the deploy removes), and whether the caller may
//! make the deployer's own calls of a deploy. A missing permission refuses the deploy, naming
//! each action, its resource, and the statement of `deployer policy` that grants it.
//!
//! The same code runs against AWS: the caller is simulated as its principal, an assumed-role
//! or SSO session as its role (the session's ARN names the role without its path; `GetRole`
//! gives the role's ARN, path included: IAM API reference, SimulatePrincipalPolicy,
//! "PolicySourceArn": a user, group or role, not a session).

use std::collections::BTreeMap;

use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use serde_json::Value as Json;

use crate::aws::Aws;
use crate::errors::Explained;
use stack_model::cloudformation_role;
use stack_model::deploy_policy::deploy_policies;
use stack_model::facts::Handler;
use stack_model::handler_calls::{calls, calls_of, Call};
use stack_model::resource::iam::PolicyDocument;
use stack_model::stage::BucketRole;
use stack_model::StageConfig;

/// A call IAM would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub action: String,
    pub resource: String,
    /// The resource and handler of the template that makes the call, or the deployer's own.
    pub by: String,
}

/// Checks the role and the caller; an error names what is missing and what to do.
pub async fn check(
    aws: &Aws,
    c: &StageConfig,
    role_arn: &str,
    rendered: &Json,
    deployed: Option<&Json>,
) -> anyhow::Result<()> {
    let iam = aws_sdk_iam::Client::new(&aws.conf);
    let sts = aws_sdk_sts::Client::new(&aws.conf);
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| crate::aws::failed("asking STS who the caller is", e))?;
    let account = me.account().unwrap_or_default().to_owned();
    let caller = principal_of(&iam, me.arn().unwrap_or_default()).await?;
    let role_calls = deploy_calls(c, &account, rendered, deployed);
    let own_calls = tool_calls(c, &account, role_arn);
    // Types the user added without recorded decisions: what their calls rest on.
    for note in stack_model::pipeline::extension_notes(c) {
        eprintln!("preflight: {note}");
    }
    let role_missing = simulate(&iam, role_arn, &role_calls).await?;
    let own_missing = simulate(&iam, &caller, &own_calls).await?;
    if role_missing.is_empty() && own_missing.is_empty() {
        eprintln!(
            "preflight: IAM allows all {} calls of the deploy's handlers to {} and the deployer's {} to {caller}",
            role_calls.len(),
            name_of(role_arn),
            own_calls.len()
        );
        return Ok(());
    }
    let mut lines = Vec::new();
    let mut todo = Vec::new();
    let stage = c.stage.as_str();
    if !role_missing.is_empty() {
        let granted = cloudformation_role::policies(c, &account);
        lines.push(format!(
            "preflight: the CloudFormation role {} may not make {} call(s) this deploy needs (nothing was changed):",
            name_of(role_arn),
            role_missing.len()
        ));
        lines.extend(describe(&role_missing, &granted, "--role cloudformation"));
        todo.push(format!(
            "run `deployer bootstrap --stage {stage}` as an identity that may change IAM roles: it gives the role the policies of `deployer policy --stage {stage} --role cloudformation`"
        ));
    }
    if !own_missing.is_empty() {
        let granted = deploy_policies(c, &account);
        lines.push(format!(
            "preflight: {caller} may not make {} of the deployer's own call(s) (nothing was changed):",
            own_missing.len()
        ));
        lines.extend(describe(&own_missing, &granted, ""));
        todo.push(format!(
            "attach the policies of `deployer policy --stage {stage}` to {caller}"
        ));
    }
    Err(Explained::new(lines.join("\n"), todo.join("; then ")).into())
}

/// What the role's handlers call for this deploy: every handler of the rendered template's
/// resources, and the delete handler of each deployed resource the template no longer has.
pub fn deploy_calls(
    c: &StageConfig,
    account: &str,
    rendered: &Json,
    deployed: Option<&Json>,
) -> Vec<Call> {
    let env = cloudformation_role::arn_env(c, account);
    let mut all = calls(rendered, &env);
    if let Some(d) = deployed {
        // What the deployed stack holds is deleted if removed, and its old physical resource
        // if replaced (under its old name): the delete calls of every deployed resource whose
        // rendered form differs.
        let now = &rendered["Resources"];
        all.extend(
            calls_of(d, &env, &[Handler::Delete])
                .into_iter()
                .filter(|call| now.get(&call.logical_id) != d["Resources"].get(&call.logical_id)),
        );
    }
    all.sort();
    all.dedup();
    all
}

/// The deployer's own calls of a deploy: the change set on the stage's stack, passing the
/// role, and the artifacts.
fn tool_calls(c: &StageConfig, account: &str, role_arn: &str) -> Vec<Call> {
    let partition = cloudformation_role::partition(&c.region);
    let stack = format!(
        "arn:{partition}:cloudformation:{}:{account}:stack/{}/*",
        c.region,
        c.stage.stack_name()
    );
    let bucket = c
        .stage
        .bucket_name(BucketRole::Artifacts, account, &c.region);
    let own = |action: &str, resource: String, context: Vec<(String, String)>| Call {
        logical_id: "deployer".into(),
        resource_type: "deploy".into(),
        handler: "deploy",
        action: action.into(),
        resources: vec![resource],
        context,
    };
    let mut out: Vec<Call> = [
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:GetTemplate",
    ]
    .iter()
    .map(|a| own(a, stack.clone(), vec![]))
    .collect();
    out.push(own(
        "iam:PassRole",
        role_arn.to_owned(),
        vec![(
            "iam:PassedToService".into(),
            "cloudformation.amazonaws.com".into(),
        )],
    ));
    out.push(own(
        "s3:ListBucket",
        format!("arn:{partition}:s3:::{bucket}"),
        vec![],
    ));
    for a in ["s3:GetObject", "s3:PutObject"] {
        out.push(own(
            a,
            format!("arn:{partition}:s3:::{bucket}/lambda/*"),
            vec![],
        ));
    }
    out
}

/// The principal IAM simulates for a caller: a user or role as it is; an assumed-role session
/// (`arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`) as its role, whose path `GetRole` gives.
async fn principal_of(iam: &aws_sdk_iam::Client, arn: &str) -> anyhow::Result<String> {
    let Some(rest) = arn.split_once(":assumed-role/").map(|(_, r)| r) else {
        return Ok(arn.to_owned());
    };
    let role = rest.split('/').next().unwrap_or_default();
    let got = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("reading role {role} (the caller's)"), e))?;
    Ok(got
        .role()
        .map(|r| r.arn().to_owned())
        .unwrap_or_else(|| arn.to_owned()))
}

/// The calls `principal` may not make. Calls sharing ARNs and context go in one request.
async fn simulate(
    iam: &aws_sdk_iam::Client,
    principal: &str,
    calls: &[Call],
) -> anyhow::Result<Vec<Missing>> {
    // Calls by (resources, context).
    type Key = (Vec<String>, Vec<(String, String)>);
    let mut groups: BTreeMap<Key, Vec<&Call>> = BTreeMap::new();
    for call in calls {
        groups
            .entry((call.resources.clone(), call.context.clone()))
            .or_default()
            .push(call);
    }
    let mut missing = Vec::new();
    for ((resources, context), group) in groups {
        let mut actions: Vec<String> = group.iter().map(|c| c.action.clone()).collect();
        actions.sort();
        actions.dedup();
        let mut request = iam
            .simulate_principal_policy()
            .policy_source_arn(principal)
            .set_action_names(Some(actions))
            .set_resource_arns(Some(resources.clone()));
        for (key, value) in &context {
            request = request.context_entries(
                ContextEntry::builder()
                    .context_key_name(key)
                    .context_key_values(value)
                    .context_key_type(ContextKeyTypeEnum::String)
                    .build(),
            );
        }
        let out = request.send().await.map_err(|e| {
            crate::aws::failed(format!("asking IAM's simulator about {principal}"), e)
        })?;
        for r in out.evaluation_results() {
            let action = r.eval_action_name();
            let by = |resource: &str| {
                group
                    .iter()
                    .filter(|c| c.action == action)
                    .map(|c| format!("{} {}", c.logical_id, c.handler))
                    .next()
                    .map(|by| Missing {
                        action: action.to_owned(),
                        resource: resource.to_owned(),
                        by,
                    })
            };
            if r.resource_specific_results().is_empty() {
                if r.eval_decision() != &PolicyEvaluationDecisionType::Allowed {
                    missing.extend(by(r.eval_resource_name().unwrap_or("*")));
                }
            } else {
                for s in r.resource_specific_results() {
                    if s.eval_resource_decision() != &PolicyEvaluationDecisionType::Allowed {
                        missing.extend(by(s.eval_resource_name()));
                    }
                }
            }
        }
    }
    missing.sort_by(|a, b| (&a.action, &a.resource).cmp(&(&b.action, &b.resource)));
    missing.dedup();
    Ok(missing)
}

/// One line per missing call, with the statement of `deployer policy` that grants it.
fn describe(missing: &[Missing], granted: &[(String, PolicyDocument)], flag: &str) -> Vec<String> {
    missing
        .iter()
        .map(|m| {
            let statement = granted.iter().find_map(|(name, doc)| {
                doc.statement
                    .iter()
                    .find(|s| {
                        s.action.iter().any(|a| a == &m.action)
                            && s.resource.iter().any(|r| {
                                r.as_literal()
                                    .is_some_and(|p| p == "*" || wildcard_match(p, &m.resource))
                            })
                    })
                    .map(|s| format!("{} of {name}", s.sid.clone().unwrap_or_default()))
            });
            format!(
                "  {} on {} ({}): {}",
                m.action,
                m.resource,
                m.by,
                match statement {
                    Some(s) => format!(
                        "granted by statement {s} (`deployer policy{}`)",
                        if flag.is_empty() {
                            String::new()
                        } else {
                            format!(" {flag}")
                        }
                    ),
                    None => "no statement of `deployer policy` grants it".into(),
                }
            )
        })
        .collect()
}

/// IAM's `*` and `?` in a resource pattern. Hand-written: ten lines, where a glob crate would
/// also give `[...]` classes and path rules IAM does not have.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyOutput;
    use aws_sdk_iam::types::{EvaluationResult, ResourceSpecificResult, Role};
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};

    /// An IAM client whose answers are `rules` (what AWS answers and the emulator does not:
    /// per-resource results, a role with a path).
    fn iam(rules: &[&Rule]) -> aws_sdk_iam::Client {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for r in rules {
            interceptor = interceptor.with_rule(r);
        }
        let conf = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }

    /// Relies on aws-smithy-mocks: an SSO or assumed-role session is simulated as its role,
    /// whose ARN (with its path, which the session's ARN leaves out) GetRole gives.
    #[tokio::test]
    async fn a_session_is_simulated_as_its_role_with_its_path() {
        let get_role = mock!(aws_sdk_iam::Client::get_role)
            .match_requests(|r| r.role_name() == Some("AWSReservedSSO_Deploy_0123"))
            .then_output(|| {
                GetRoleOutput::builder()
                    .role(
                        Role::builder()
                            .path("/aws-reserved/sso.amazonaws.com/")
                            .role_name("AWSReservedSSO_Deploy_0123")
                            .role_id("AROA")
                            .arn("arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Deploy_0123")
                            .create_date(aws_smithy_types::DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            });
        let client = iam(&[&get_role]);
        let session =
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Deploy_0123/alice@example.com";
        assert_eq!(
            principal_of(&client, session).await.unwrap(),
            "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Deploy_0123"
        );
        let user = "arn:aws:iam::123456789012:user/ci";
        assert_eq!(principal_of(&client, user).await.unwrap(), user);
    }

    /// Relies on aws-smithy-mocks: IAM answers a request of several ARNs with one result per
    /// action and the decision per resource (ResourceSpecificResults); the one denied is named,
    /// the one allowed is not.
    #[tokio::test]
    async fn of_several_resources_only_the_denied_one_is_missing() {
        let answer = mock!(aws_sdk_iam::Client::simulate_principal_policy).then_output(|| {
            SimulatePrincipalPolicyOutput::builder()
                .evaluation_results(
                    EvaluationResult::builder()
                        .eval_action_name("lambda:CreateFunction")
                        .eval_resource_name("*")
                        .eval_decision(PolicyEvaluationDecisionType::ImplicitDeny)
                        .resource_specific_results(
                            ResourceSpecificResult::builder()
                                .eval_resource_name("arn:aws:lambda:us-east-1:1:function:a")
                                .eval_resource_decision(PolicyEvaluationDecisionType::Allowed)
                                .build()
                                .unwrap(),
                        )
                        .resource_specific_results(
                            ResourceSpecificResult::builder()
                                .eval_resource_name("arn:aws:lambda:us-east-1:1:function:b")
                                .eval_resource_decision(PolicyEvaluationDecisionType::ImplicitDeny)
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
        });
        let client = iam(&[&answer]);
        let call = Call {
            logical_id: "EtlFunction".into(),
            resource_type: "AWS::Lambda::Function".into(),
            handler: "create",
            action: "lambda:CreateFunction".into(),
            resources: vec![
                "arn:aws:lambda:us-east-1:1:function:a".into(),
                "arn:aws:lambda:us-east-1:1:function:b".into(),
            ],
            context: vec![],
        };
        let missing = simulate(&client, "arn:aws:iam::1:role/r", &[call])
            .await
            .unwrap();
        assert_eq!(
            missing,
            [Missing {
                action: "lambda:CreateFunction".into(),
                resource: "arn:aws:lambda:us-east-1:1:function:b".into(),
                by: "EtlFunction create".into(),
            }]
        );
    }

    #[test]
    fn iam_wildcards_match_as_iam_does() {
        assert!(wildcard_match(
            "arn:aws:s3:::b/*",
            "arn:aws:s3:::b/lambda/x.zip"
        ));
        assert!(wildcard_match(
            "arn:aws:kms:r:1:key/*",
            "arn:aws:kms:r:1:key/*"
        ));
        assert!(!wildcard_match("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
        assert!(wildcard_match("a?c", "abc") && !wildcard_match("a?c", "ac"));
    }

    #[test]
    fn a_removed_resource_is_deleted_by_its_delete_handler() {
        let c = StageConfig::defaults(stack_model::StageName::parse("alice").unwrap());
        let now = stack_model::pipeline::template(&c).to_json().unwrap();
        let mut before = now.clone();
        before["Resources"]["OldTopic"] = serde_json::json!({
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": "pdcase-alice-old"}
        });
        let all = deploy_calls(&c, "123456789012", &now, Some(&before));
        let old: Vec<_> = all.iter().filter(|c| c.logical_id == "OldTopic").collect();
        assert!(!old.is_empty() && old.iter().all(|c| c.handler == "delete"));
        assert!(old.iter().any(|c| c.action == "sns:DeleteTopic"
            && c.resources == ["arn:aws:sns:us-east-1:123456789012:pdcase-alice-old"]));
    }
}
