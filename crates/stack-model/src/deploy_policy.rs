//! The IAM policy an identity needs to run `deploy`, `diff`, `teardown`, `trigger`, `info`
//! and `logs` for one stage, and nothing of any other stage: every resource is named by the
//! stage's own names (`pdcase-alice-source-...`, never `pdcase-alice*`, which would also match
//! stage `alice-2`), or, where EC2 has no names, held to the stage's `Stage` tag.
//!
//! Two kinds of statements:
//! - the deployer's own calls (CloudFormation on the two stacks, the artifacts bucket,
//!   emptying the buckets on teardown, publishing to the topics, reading the log groups);
//! - what CloudFormation does with the caller's credentials when it creates, updates and
//!   deletes the stack's resources (the stack has no service role; CloudFormation user guide,
//!   "CloudFormation service role": without one, it uses the caller's permissions).
//!
//! The second kind is checked statically only (`tests/template/test_parliament.py` and
//! `tests/template/test_deploy_policy.py`): the emulator creates resources with its own
//! authority.

use crate::config::StageConfig;
use crate::resource::iam::{PolicyDocument, Statement};
use crate::stage::{BucketRole, FunctionRole, RoleKind, TopicRole};
use crate::value::Value;

/// The deploy policy of stage `c` in account `account` (`*`: any account).
pub fn deploy_policy(c: &StageConfig, account: &str) -> PolicyDocument {
    let n = Names::new(c, account);
    let mut s = tool_calls(&n);
    s.extend(cloudformation_side(&n));
    PolicyDocument::new(s)
}

/// IAM's limit on a managed policy: 6,144 characters, whitespace not counted (IAM user
/// guide, "IAM and AWS STS quotas").
pub const MANAGED_POLICY_LIMIT: usize = 6_144;

/// The deploy policy as managed policies each within [`MANAGED_POLICY_LIMIT`], named
/// `pdcase-<stage>-deploy-<n>`: statements in order, a new policy whenever the next would
/// not fit. Attach them all to the deploying identity.
pub fn deploy_policies(c: &StageConfig, account: &str) -> Vec<(String, PolicyDocument)> {
    let size = |d: &PolicyDocument| {
        serde_json::to_string(d)
            .expect("policies serialize")
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .count()
    };
    let mut docs: Vec<PolicyDocument> = Vec::new();
    for statement in deploy_policy(c, account).statement {
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
        .map(|(i, d)| (format!("{}-deploy-{}", c.stage.prefix(), i + 1), d))
        .collect()
}

/// The stage's names and ARNs in one account and region.
struct Names<'a> {
    c: &'a StageConfig,
    account: &'a str,
    partition: &'static str,
}

impl<'a> Names<'a> {
    fn new(c: &'a StageConfig, account: &'a str) -> Self {
        let partition = if c.region.starts_with("cn-") {
            "aws-cn"
        } else if c.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        Names {
            c,
            account,
            partition,
        }
    }

    fn arn(&self, service: &str, resource: &str) -> Value {
        Value::lit(format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.c.region, self.account
        ))
    }

    fn global_arn(&self, service: &str, resource: &str) -> Value {
        Value::lit(format!(
            "arn:{}:{service}::{}:{resource}",
            self.partition, self.account
        ))
    }

    fn bucket(&self, role: BucketRole) -> String {
        self.c.stage.bucket_name(role, self.account, &self.c.region)
    }

    fn buckets(&self, objects: bool) -> Vec<Value> {
        BucketRole::ALL
            .iter()
            .map(|r| {
                let suffix = if objects { "/*" } else { "" };
                Value::lit(format!(
                    "arn:{}:s3:::{}{suffix}",
                    self.partition,
                    self.bucket(*r)
                ))
            })
            .collect()
    }

    fn stacks(&self) -> Vec<Value> {
        let st = &self.c.stage;
        vec![
            self.arn("cloudformation", &format!("stack/{}/*", st.stack_name())),
            self.arn(
                "cloudformation",
                &format!("stack/{}/*", st.bootstrap_stack_name()),
            ),
            // The deployer names its change sets `deployer-...`.
            self.arn("cloudformation", "changeSet/deployer-*/*"),
        ]
    }

    fn topics(&self) -> Vec<Value> {
        TopicRole::ALL
            .iter()
            .map(|t| self.arn("sns", &self.c.stage.topic_name(*t)))
            .collect()
    }

    fn log_groups(&self) -> Vec<Value> {
        FunctionRole::ALL
            .iter()
            .flat_map(|f| {
                let g = self.c.stage.log_group_name(*f);
                [
                    self.arn("logs", &format!("log-group:{g}")),
                    self.arn("logs", &format!("log-group:{g}:*")),
                ]
            })
            .collect()
    }

    fn functions(&self) -> Vec<Value> {
        FunctionRole::ALL
            .iter()
            .map(|f| {
                self.arn(
                    "lambda",
                    &format!("function:{}", self.c.stage.function_name(*f)),
                )
            })
            .collect()
    }

    /// Every EC2 resource type of the stage's network, any id (EC2 has no names: the
    /// statements hold them to the stage's tag).
    fn network(&self) -> Vec<Value> {
        [
            "vpc",
            "subnet",
            "internet-gateway",
            "route-table",
            "vpc-endpoint",
            "security-group",
        ]
        .iter()
        .map(|t| self.arn("ec2", &format!("{t}/*")))
        .collect()
    }

    /// Held to the stage's key: the one its alias names.
    fn with_alias(&self, statement: Statement) -> Statement {
        when(
            statement,
            "ForAnyValue:StringEquals",
            "kms:ResourceAliases",
            &format!("alias/{}", self.c.stage.prefix()),
        )
    }

    fn role(&self, kind: RoleKind) -> Value {
        self.global_arn(
            "iam",
            &format!("role/{}", self.c.stage.role_name(kind, &self.c.region)),
        )
    }
}

fn allow(sid: &str, actions: &[&str], resources: Vec<Value>) -> Statement {
    Statement::allow(sid, actions, resources)
}

fn when(statement: Statement, operator: &str, key: &str, value: &str) -> Statement {
    Statement {
        condition: statement.condition.clone().with(operator, key, value),
        ..statement
    }
}

/// What the deployer itself calls.
fn tool_calls(n: &Names) -> Vec<Statement> {
    let artifacts = n.bucket(BucketRole::Artifacts);
    let mut out = vec![
        allow(
            "StageStacks",
            &[
                "cloudformation:CreateChangeSet",
                "cloudformation:DescribeChangeSet",
                "cloudformation:ExecuteChangeSet",
                "cloudformation:DeleteChangeSet",
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:DescribeEvents",
                "cloudformation:GetTemplate",
                "cloudformation:ListStackResources",
                "cloudformation:DeleteStack",
                "cloudformation:UpdateTerminationProtection",
                "cloudformation:TagResource",
                // `deployer drift`.
                "cloudformation:DetectStackDrift",
                "cloudformation:DetectStackResourceDrift",
                "cloudformation:DescribeStackResourceDrifts",
            ],
            n.stacks(),
        ),
        // A detection is named by its id only: the action takes no resource.
        allow(
            "DriftDetectionStatus",
            &["cloudformation:DescribeStackDriftDetectionStatus"],
            vec!["*".into()],
        ),
        // Artifacts (and large templates) by content hash; a HEAD tells a missing key (404)
        // from a forbidden one only with ListBucket.
        allow(
            "ArtifactsBucket",
            &["s3:ListBucket"],
            vec![Value::lit(format!("arn:{}:s3:::{artifacts}", n.partition))],
        ),
        allow(
            "Artifacts",
            &["s3:GetObject", "s3:PutObject"],
            vec![Value::lit(format!(
                "arn:{}:s3:::{artifacts}/*",
                n.partition
            ))],
        ),
        // Teardown empties every bucket (each version and delete marker) before deleting.
        allow(
            "EmptyStageBuckets",
            &["s3:ListBucket", "s3:ListBucketVersions"],
            n.buckets(false),
        ),
        allow(
            "DeleteStageObjects",
            &["s3:DeleteObject", "s3:DeleteObjectVersion"],
            n.buckets(true),
        ),
        allow("TriggerPipeline", &["sns:Publish"], n.topics()),
        allow(
            "ReadFunctionLogs",
            &["logs:FilterLogEvents"],
            n.log_groups(),
        ),
        // `deployer query`: Athena runs the SQL with the caller's permissions, so the caller
        // reads the stage's catalog and warehouse and writes the results to the work group's
        // location in the jobs bucket (Athena user guide, "Identity and access management in
        // Athena": the Athena, Glue and S3 actions of a query). The operations on a query
        // (GetQueryExecution, GetQueryResults, StopQueryExecution) are authorized on its work
        // group (user guide, "Example workgroup policies": "Example policy for running
        // queries in a specified workgroup").
        allow(
            "QueryInStageWorkGroup",
            &[
                "athena:StartQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:StopQueryExecution",
                "athena:GetWorkGroup",
            ],
            vec![n.arn(
                "athena",
                &format!("workgroup/{}", n.c.stage.workgroup_name()),
            )],
        ),
        allow(
            "ReadStageCatalog",
            &[
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartition",
                "glue:GetPartitions",
            ],
            vec![
                n.arn("glue", "catalog"),
                n.arn("glue", &format!("database/{}", n.c.stage.database_name())),
                n.arn("glue", &format!("table/{}/*", n.c.stage.database_name())),
            ],
        ),
        allow(
            "ReadWarehouseForQueries",
            &["s3:GetObject"],
            vec![Value::lit(format!(
                "arn:{}:s3:::{}/*",
                n.partition,
                n.bucket(BucketRole::Warehouse)
            ))],
        ),
        allow(
            "QueryResultsBucket",
            &["s3:GetBucketLocation"],
            vec![Value::lit(format!(
                "arn:{}:s3:::{}",
                n.partition,
                n.bucket(BucketRole::Jobs)
            ))],
        ),
        allow(
            "WriteQueryResults",
            &[
                "s3:GetObject",
                "s3:PutObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            vec![Value::lit(format!(
                "arn:{}:s3:::{}/athena-results/*",
                n.partition,
                n.bucket(BucketRole::Jobs)
            ))],
        ),
    ];
    if n.c.hardened {
        // The hardened stage's topics, warehouse and query results are encrypted with its key:
        // publishing and querying need it.
        out.push(n.with_alias(allow(
            "UseStageKey",
            &["kms:GenerateDataKey", "kms:Decrypt"],
            vec![n.arn("kms", "key/*")],
        )));
    }
    out
}

/// What CloudFormation does with the caller's permissions for the stack's resources.
fn cloudformation_side(n: &Names) -> Vec<Statement> {
    let st = &n.c.stage;
    let roles: Vec<Value> = RoleKind::ALL.iter().map(|k| n.role(*k)).collect();
    // Both engines' functions and the EMR parts stay in the policy whatever the stage's
    // `base_b_engine`: switching engines deploys the one and deletes the other.
    let function_roles: Vec<Value> = [
        RoleKind::Etl,
        RoleKind::SiteEvents,
        RoleKind::EmrStarter,
        RoleKind::TableRefresher,
    ]
    .iter()
    .map(|k| n.role(*k))
    .collect();
    let database = st.database_name();
    let tag = ("StringEquals", "aws:RequestTag/Stage", st.as_str());
    let tagged = ("StringEquals", "aws:ResourceTag/Stage", st.as_str());
    let mut out = vec![
        allow(
            "Buckets",
            &[
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:GetBucket*",
                "s3:PutBucket*",
                "s3:DeleteBucketPolicy",
                "s3:GetEncryptionConfiguration",
                "s3:PutEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            n.buckets(false),
        ),
        allow(
            "Roles",
            &[
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:TagRole",
                "iam:UntagRole",
            ],
            roles.clone(),
        ),
        allow(
            "InstanceProfile",
            &[
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile",
            ],
            vec![n.global_arn(
                "iam",
                &format!(
                    "instance-profile/{}",
                    st.role_name(RoleKind::EmrInstance, &n.c.region)
                ),
            )],
        ),
        when(
            allow("PassFunctionRoles", &["iam:PassRole"], function_roles),
            "StringEquals",
            "iam:PassedToService",
            "lambda.amazonaws.com",
        ),
        when(
            allow(
                "PassCrawlerRole",
                &["iam:PassRole"],
                vec![n.role(RoleKind::Crawler)],
            ),
            "StringEquals",
            "iam:PassedToService",
            "glue.amazonaws.com",
        ),
        allow(
            "Functions",
            &[
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:ListTags",
                "lambda:AddPermission",
                "lambda:RemovePermission",
                "lambda:GetPolicy",
            ],
            n.functions(),
        ),
        allow(
            "LogGroups",
            &[
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:ListTagsForResource",
            ],
            n.log_groups(),
        ),
        // DescribeLogGroups has no resource-level permissions.
        allow(
            "DescribeLogGroups",
            &["logs:DescribeLogGroups"],
            vec!["*".into()],
        ),
        allow(
            "Topics",
            &[
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetTopicAttributes",
                "sns:SetTopicAttributes",
                "sns:TagResource",
                "sns:UntagResource",
                "sns:ListTagsForResource",
                "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
            ],
            // Subscriptions are `<topic arn>:<id>`.
            TopicRole::ALL
                .iter()
                .flat_map(|t| {
                    let name = st.topic_name(*t);
                    [n.arn("sns", &name), n.arn("sns", &format!("{name}:*"))]
                })
                .collect(),
        ),
        // A subscription is deleted and read by its own ARN, for which SNS has no
        // resource-level permissions (service authorization reference, Amazon SNS).
        allow(
            "Subscriptions",
            &["sns:Unsubscribe", "sns:GetSubscriptionAttributes"],
            vec!["*".into()],
        ),
        allow(
            "Catalog",
            &[
                "glue:CreateDatabase",
                "glue:DeleteDatabase",
                "glue:GetDatabase",
                "glue:UpdateDatabase",
                "glue:CreateTable",
                "glue:DeleteTable",
                "glue:GetTable",
                "glue:GetTables",
                "glue:UpdateTable",
                "glue:DeleteCrawler",
                "glue:GetCrawler",
                "glue:UpdateCrawler",
                "glue:TagResource",
                "glue:UntagResource",
                "glue:GetTags",
            ],
            vec![
                n.arn("glue", "catalog"),
                n.arn("glue", &format!("database/{database}")),
                n.arn("glue", &format!("table/{database}/*")),
                // Deleting a database deletes its functions too (there are none).
                n.arn("glue", &format!("userDefinedFunction/{database}/*")),
                n.arn("glue", &format!("crawler/{}", st.crawler_name())),
            ],
        ),
        // CreateCrawler has no resource-level permission in the service authorization
        // reference (parliament's database agrees). A crawler created with it can only run as
        // a role the identity may pass to Glue: this stage's crawler role alone.
        allow("CreateCrawler", &["glue:CreateCrawler"], vec!["*".into()]),
        allow(
            "MarkersRule",
            &[
                "events:PutRule",
                "events:DeleteRule",
                "events:DescribeRule",
                "events:EnableRule",
                "events:DisableRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:ListTargetsByRule",
                "events:TagResource",
                "events:UntagResource",
                "events:ListTagsForResource",
            ],
            vec![n.arn("events", &format!("rule/{}-table-markers", st.prefix()))],
        ),
        allow(
            "WorkGroup",
            &[
                "athena:CreateWorkGroup",
                "athena:DeleteWorkGroup",
                "athena:GetWorkGroup",
                "athena:UpdateWorkGroup",
                "athena:TagResource",
                "athena:UntagResource",
                "athena:ListTagsForResource",
            ],
            vec![n.arn("athena", &format!("workgroup/{}", st.workgroup_name()))],
        ),
    ];
    if n.c.emr.subnet_id.is_none() {
        // EC2 names nothing: what the stack creates carries the stage's tag from its create
        // call, and only what carries it may be changed or deleted.
        out.extend([
            when(
                allow(
                    "CreateNetwork",
                    &[
                        "ec2:CreateVpc",
                        "ec2:CreateSubnet",
                        "ec2:CreateRouteTable",
                        "ec2:CreateVpcEndpoint",
                        "ec2:CreateTags",
                    ],
                    n.network(),
                ),
                tag.0,
                tag.1,
                tag.2,
            ),
            when(
                allow(
                    "ChangeNetwork",
                    &[
                        "ec2:ModifyVpcAttribute",
                        "ec2:ModifySubnetAttribute",
                        // Stages deployed when the subnet was public had an internet
                        // gateway and a default route: their next deploy removes them.
                        "ec2:DetachInternetGateway",
                        "ec2:DeleteRoute",
                        "ec2:AssociateRouteTable",
                        "ec2:DisassociateRouteTable",
                        "ec2:ModifyVpcEndpoint",
                        "ec2:DeleteVpcEndpoints",
                        "ec2:DeleteRouteTable",
                        "ec2:DeleteInternetGateway",
                        "ec2:DeleteSubnet",
                        "ec2:DeleteVpc",
                        "ec2:DeleteTags",
                    ],
                    n.network(),
                ),
                tagged.0,
                tagged.1,
                tagged.2,
            ),
            // EC2's Describe actions have no resource-level permissions.
            allow(
                "DescribeNetwork",
                &[
                    "ec2:DescribeVpcs",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeInternetGateways",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeAccountAttributes",
                ],
                vec!["*".into()],
            ),
        ]);
    }
    if n.c.hardened {
        // The stage's key: created with the stage's tag, then managed only while it carries
        // it; its alias named exactly.
        let alias = n.arn("kms", &format!("alias/{}", st.prefix()));
        out.extend([
            when(
                allow("CreateStageKey", &["kms:CreateKey"], vec!["*".into()]),
                tag.0,
                tag.1,
                tag.2,
            ),
            when(
                allow(
                    "ManageStageKey",
                    &[
                        "kms:DescribeKey",
                        "kms:GetKeyPolicy",
                        "kms:PutKeyPolicy",
                        "kms:GetKeyRotationStatus",
                        "kms:EnableKeyRotation",
                        "kms:UpdateKeyDescription",
                        "kms:ListResourceTags",
                        "kms:TagResource",
                        "kms:UntagResource",
                        "kms:ScheduleKeyDeletion",
                    ],
                    vec![n.arn("kms", "key/*")],
                ),
                tagged.0,
                tagged.1,
                tagged.2,
            ),
            // An alias is authorized on itself and on its key. The alias has no tags (it is
            // named exactly); the key must carry the stage's tag (IfExists: the alias has none).
            when(
                allow(
                    "StageKeyAlias",
                    &["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
                    vec![alias, n.arn("kms", "key/*")],
                ),
                "StringEqualsIfExists",
                tagged.1,
                tagged.2,
            ),
            allow(
                "LogGroupsWithStageKey",
                &["logs:AssociateKmsKey", "logs:DisassociateKmsKey"],
                n.log_groups(),
            ),
        ]);
    }
    // The two AWS managed policies the stage's roles attach, and no other.
    for (sid, policy) in [
        ("AttachGluePolicy", "service-role/AWSGlueServiceRole"),
        ("AttachEmrPolicy", "service-role/AmazonEMRServicePolicy_v2"),
    ] {
        out.push(when(
            allow(
                sid,
                &["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                roles.clone(),
            ),
            "ArnEquals",
            "iam:PolicyARN",
            &format!("arn:{}:iam::aws:policy/{policy}", n.partition),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::StageName;

    fn policy(stage: &str) -> serde_json::Value {
        let c = StageConfig::defaults(StageName::parse(stage).unwrap());
        serde_json::to_value(deploy_policy(&c, "123456789012")).unwrap()
    }

    fn hardened(stage: &str) -> serde_json::Value {
        let mut c = StageConfig::defaults(StageName::parse(stage).unwrap());
        c.hardened = true;
        serde_json::to_value(deploy_policy(&c, "123456789012")).unwrap()
    }

    #[test]
    fn every_resource_is_the_stages_own_or_a_tag_held_wildcard() {
        let plain = policy("alice");
        let hard = hardened("alice");
        assert!(hard.to_string().contains("kms:CreateKey") && !plain.to_string().contains("kms:"));
        for s in plain["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .chain(hard["Statement"].as_array().unwrap())
        {
            for r in s["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                if r == "*" {
                    let actions = s["Action"].to_string();
                    // Actions without resource-level permissions, and nothing else.
                    let unscopable = s["Action"].as_array().unwrap().iter().all(|a| {
                        let a = a.as_str().unwrap();
                        a.contains(":Describe")
                            || a == "sns:Unsubscribe"
                            || a == "sns:GetSubscriptionAttributes"
                            || a == "glue:CreateCrawler"
                    });
                    assert!(
                        unscopable || !s["Condition"].is_null(),
                        "{actions} on * without a condition"
                    );
                    continue;
                }
                assert!(
                    r.contains("pdcase-alice-")
                        || r.contains("pdcase-alice/")
                        || r.contains("pdcase_alice_")
                        || r.contains("deployer-*")
                        || r.ends_with(":catalog")
                        || ((r.contains(":ec2:") || r.contains(":kms:"))
                            && !s["Condition"].is_null())
                        || r.ends_with(":alias/pdcase-alice")
                        || r.contains("/pdcase-alice"),
                    "{r} is not one of stage alice's resources"
                );
                assert!(
                    !r.contains("pdcase-alice*"),
                    "{r} would match stage alice-2"
                );
            }
        }
    }

    #[test]
    fn the_policies_fit_iams_managed_policy_limit_and_keep_every_statement() {
        let c = StageConfig::defaults(StageName::parse("abcdefghij-123456").unwrap());
        let whole = deploy_policy(&c, "123456789012").statement;
        let parts = deploy_policies(&c, "123456789012");
        assert!(
            parts.len() >= 2,
            "the whole policy is over the limit: it is split"
        );
        let mut again = Vec::new();
        for (name, doc) in &parts {
            let text = serde_json::to_string(doc).unwrap();
            let size = text.chars().filter(|ch| !ch.is_whitespace()).count();
            assert!(size <= MANAGED_POLICY_LIMIT, "{name}: {size} characters");
            again.extend(doc.statement.iter().cloned());
        }
        assert_eq!(again, whole);
        assert_eq!(parts[0].0, "pdcase-abcdefghij-123456-deploy-1");
    }

    /// CloudFormation passes the functions' roles to Lambda and the crawler's to Glue with the
    /// deploying identity's permission; nothing else may be passed.
    #[test]
    fn the_deploy_identity_passes_only_the_stages_roles_to_their_services() {
        let p = policy("alice");
        let mut passes = Vec::new();
        for s in p["Statement"].as_array().unwrap() {
            if s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "iam:PassRole")
            {
                assert_eq!(s["Action"].as_array().unwrap().len(), 1);
                let to = s["Condition"]["StringEquals"]["iam:PassedToService"]
                    .as_str()
                    .unwrap()
                    .to_string();
                for r in s["Resource"].as_array().unwrap() {
                    passes.push((
                        r.as_str().unwrap().rsplit('/').next().unwrap().to_string(),
                        to.clone(),
                    ));
                }
            }
        }
        passes.sort();
        let expect =
            |role: &str, to: &str| (format!("pdcase-alice-{role}-us-east-1"), to.to_string());
        assert_eq!(
            passes,
            [
                expect("crawler", "glue.amazonaws.com"),
                expect("emr-starter", "lambda.amazonaws.com"),
                expect("etl", "lambda.amazonaws.com"),
                expect("site-events", "lambda.amazonaws.com"),
                expect("table-refresher", "lambda.amazonaws.com"),
            ]
        );
    }

    #[test]
    fn a_configured_subnet_needs_no_network_permissions() {
        let mut c = StageConfig::defaults(StageName::parse("alice").unwrap());
        c.emr.subnet_id = Some("subnet-0123456789abcdef0".into());
        let text = serde_json::to_string(&deploy_policy(&c, "1")).unwrap();
        assert!(!text.contains("ec2:"));
        assert!(policy("alice").to_string().contains("ec2:CreateVpc"));
    }
}
