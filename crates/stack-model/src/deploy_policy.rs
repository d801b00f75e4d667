//! The IAM policy an identity needs to run `deploy`, `diff`, `teardown`, `trigger`, `info`,
//! `logs`, `query`, `drift` and `preflight` for one stage, and nothing of any other stage:
//! every resource is named by the stage's own names (`pdcase-alice-source-...`, never
//! `pdcase-alice*`, which would also match stage `alice-2`).
//!
//! It holds the deployer's own calls only (CloudFormation on the stage's stack, the artifacts
//! bucket, emptying the buckets on teardown, publishing to the topics, reading the log groups,
//! Athena, hotswapping the functions' code, asking IAM's simulator), `iam:PassRole` on the
//! stage's CloudFormation role ([`crate::cloudformation_role`]), which creates, updates and
//! deletes the stack's resources, and what deleting the bootstrap stack calls (`teardown`),
//! generated from the bootstrap template's delete handlers, and what drift detection reads as
//! the caller (the stage's resources' read handlers). Creating or updating the bootstrap
//! stack (the role and its policies) is `deployer bootstrap`, run once by an identity that may
//! create IAM roles.

use crate::config::StageConfig;
use crate::facts::Handler;
use crate::handler_calls::calls_of;
use crate::managed_policies::split_into_managed_policies;
use crate::resource::iam::{PolicyDocument, Statement};
use crate::stage::{BucketRole, FunctionRole, RoleKind, TopicRole};
use crate::value::Value;

/// The deploy policy of stage `c` in account `account` (`*`: any account).
pub fn deploy_policy(c: &StageConfig, account: &str) -> PolicyDocument {
    let n = Names::new(c, account);
    let mut s = tool_calls(&n);
    s.extend(drift_reads(c, account));
    s.extend(bootstrap_teardown(c, account));
    PolicyDocument::new(s)
}

/// The deploy policy as managed policies each within IAM's size limit
/// ([`crate::managed_policies::MANAGED_POLICY_LIMIT`]), named
/// `pdcase-<stage>-deploy-<n>`. Attach them all to the deploying identity.
pub fn deploy_policies(c: &StageConfig, account: &str) -> Vec<(String, PolicyDocument)> {
    split_into_managed_policies(
        deploy_policy(c, account),
        &format!("{}-deploy", c.stage.prefix()),
    )
}

/// What CloudFormation reads with the caller's credentials when `deployer drift` detects drift
/// (drift detection reads each resource's live state as the caller, not as the stack's role):
/// the read handlers of the stage's and the bootstrap stack's resources.
/// A read of any key is held to the stage's (its alias names it: drift is detected long after
/// the key was created, when KMS authorizes by the alias).
fn drift_reads(c: &StageConfig, account: &str) -> Vec<Statement> {
    let n = Names::new(c, account);
    let mut reads = crate::cloudformation_role::stage_calls_of(c, account, &[Handler::Read]);
    let bootstrap = crate::bootstrap::template(c)
        .to_json()
        .expect("the bootstrap template renders");
    reads.extend(calls_of(
        &bootstrap,
        &crate::cloudformation_role::arn_env(c, account),
        &[Handler::Read],
    ));
    // Glue's crawler and EventBridge's rule list iam:PassRole in their read handlers; IAM
    // checks it only when a request hands a role to a service (IAM user guide, "Grant a user
    // permissions to pass a role to an AWS service"), which a read does not.
    reads.retain(|call| call.action != "iam:PassRole");
    any_role_policy(c, &mut reads);
    crate::cloudformation_role::statements_for(&reads, "Drift")
        .into_iter()
        .map(|s| {
            let any_key = s.resource.iter().any(|r| {
                r.as_literal()
                    .is_some_and(|r| r.contains(":kms:") && r.contains(":key/"))
            });
            if any_key {
                n.with_alias(s)
            } else {
                s
            }
        })
        .collect()
}

/// The CloudFormation role's policies are as many as its statements need (one more when a
/// version adds calls, or a stage is hardened): calls on one of them name any of the ten IAM
/// allows per role instead, so an identity given this policy earlier still reads and deletes
/// a bootstrap stack made later.
fn any_role_policy(c: &StageConfig, calls: &mut [crate::handler_calls::Call]) {
    let named = format!(":policy/{}-cloudformation-", c.stage.prefix());
    for call in calls {
        let mut resources = Vec::new();
        for r in &call.resources {
            match r.split_once(named.as_str()) {
                Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    resources.push(format!("{head}{named}?"));
                    resources.push(format!("{head}{named}??"));
                }
                _ => resources.push(r.clone()),
            }
        }
        resources.sort();
        resources.dedup();
        call.resources = resources;
    }
}

/// What CloudFormation calls with the caller's credentials when `teardown` deletes the
/// bootstrap stack (created without a service role by `deployer bootstrap`): the delete
/// handlers of its resources.
fn bootstrap_teardown(c: &StageConfig, account: &str) -> Vec<Statement> {
    let t = crate::bootstrap::template(c)
        .to_json()
        .expect("the bootstrap template renders");
    let env = crate::cloudformation_role::arn_env(c, account);
    let mut calls = calls_of(&t, &env, &[Handler::Delete]);
    any_role_policy(c, &mut calls);
    crate::cloudformation_role::statements_for(&calls, "DeleteBootstrap")
}

/// The stage's names and ARNs in one account and region.
struct Names<'a> {
    c: &'a StageConfig,
    account: &'a str,
    partition: &'static str,
}

impl<'a> Names<'a> {
    fn new(c: &'a StageConfig, account: &'a str) -> Self {
        let partition = crate::cloudformation_role::partition(&c.region);
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

    fn stack(&self) -> Vec<Value> {
        vec![
            self.arn(
                "cloudformation",
                &format!("stack/{}/*", self.c.stage.stack_name()),
            ),
            // The deployer names its change sets `deployer-...`.
            self.arn("cloudformation", "changeSet/deployer-*/*"),
        ]
    }

    fn bootstrap_stack(&self) -> Value {
        self.arn(
            "cloudformation",
            &format!("stack/{}/*", self.c.stage.bootstrap_stack_name()),
        )
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

/// What the deployer does to both of the stage's stacks: read them and their events (`info`,
/// `deploy`), detect drift (`drift`), delete them (`teardown`).
const READ_DELETE_DRIFT: &[&str] = &[
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeEvents",
    "cloudformation:GetTemplate",
    "cloudformation:ListStackResources",
    "cloudformation:DeleteStack",
    "cloudformation:UpdateTerminationProtection",
    "cloudformation:DetectStackDrift",
    "cloudformation:DetectStackResourceDrift",
    "cloudformation:DescribeStackResourceDrifts",
];

/// What the deployer itself calls.
fn tool_calls(n: &Names) -> Vec<Statement> {
    let artifacts = n.bucket(BucketRole::Artifacts);
    let mut out = vec![
        allow(
            "StageStack",
            &[
                &[
                    "cloudformation:CreateChangeSet",
                    "cloudformation:DescribeChangeSet",
                    "cloudformation:ExecuteChangeSet",
                    "cloudformation:DeleteChangeSet",
                    "cloudformation:TagResource",
                ][..],
                READ_DELETE_DRIFT,
            ]
            .concat(),
            n.stack(),
        ),
        // The bootstrap stack is read (its outputs name the bucket and the role), checked for
        // drift, and deleted by `teardown`; `deployer bootstrap` alone creates and updates it.
        allow(
            "BootstrapStack",
            READ_DELETE_DRIFT,
            vec![n.bootstrap_stack()],
        ),
        // CloudFormation acts on the stage's stack as the stage's role, which the caller
        // passes with each change set (IAM user guide, "Granting a user permissions to pass a
        // role to an AWS service").
        when(
            allow(
                "PassCloudFormationRole",
                &["iam:PassRole"],
                vec![n.role(RoleKind::CloudFormation)],
            ),
            "StringEquals",
            "iam:PassedToService",
            "cloudformation.amazonaws.com",
        ),
        // `deployer preflight`: IAM's simulator, for the role and for the caller itself (a
        // user, or the role of an assumed-role or SSO session, whose path GetRole gives). The
        // caller's own name is not known when this policy is rendered; the simulator answers
        // only allowed or denied, and GetRole returns a role's trust policy and tags.
        allow(
            "Preflight",
            &["iam:SimulatePrincipalPolicy", "iam:GetRole"],
            vec![n.global_arn("iam", "role/*"), n.global_arn("iam", "user/*")],
        ),
        // `deploy --hotswap` and `watch`: the functions' code in place (hotswap.rs).
        allow(
            "HotswapFunctions",
            &[
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:GetFunctionConfiguration",
            ],
            n.functions(),
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
        // Athena reads the catalog's `default` database for every query, and creates it where
        // it does not exist (Athena user guide, "Fine-grained access to databases and tables
        // in the AWS Glue Data Catalog": access to `default` is mandatory).
        allow(
            "AthenaDefaultDatabase",
            &["glue:GetDatabase", "glue:CreateDatabase"],
            vec![n.arn("glue", "catalog"), n.arn("glue", "database/default")],
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
        // The stage's EMR Serverless application: `deploy` and `teardown` stop it (waiting for
        // its job runs, or cancelling them with --cancel-runs) before CloudFormation changes
        // or deletes it, which CloudFormation refuses while it is started; `logs spark` reads
        // its latest run. Its id is AWS's pick, so the application and its runs are named by
        // the stage's tag, which the template and the EMR starter set on them (service
        // authorization reference: `aws:ResourceTag/${TagKey}` on both resource types).
        when(
            allow(
                "StageEmrApplication",
                &[
                    "emr-serverless:GetApplication",
                    "emr-serverless:StopApplication",
                    "emr-serverless:ListJobRuns",
                    "emr-serverless:GetJobRun",
                    "emr-serverless:CancelJobRun",
                ],
                vec![
                    n.arn("emr-serverless", "/applications/*"),
                    n.arn("emr-serverless", "/applications/*/jobruns/*"),
                ],
            ),
            "StringEquals",
            "aws:ResourceTag/Stage",
            n.c.stage.as_str(),
        ),
        allow(
            "ReadSparkLogs",
            &["s3:GetObject"],
            vec![Value::lit(format!(
                "arn:{}:s3:::{}/{}*",
                n.partition,
                n.bucket(BucketRole::Jobs),
                crate::pipeline::emr::LOG_PREFIX
            ))],
        ),
        // A stage deployed before EMR Serverless holds a VPC in which EMR created its managed
        // security groups, which reference each other and which EMR never deletes (EMR
        // management guide, "Working with Amazon EMR-managed security groups"): `deploy` (when
        // the VPC goes) and `teardown` revoke their rules and delete them first. EMR tags them
        // `for-use-with-amazon-emr-managed-policies=true` (AmazonEMRServicePolicy_v2 creates
        // security groups only with that tag): only those. Describe calls take no resource.
        allow(
            "FindEmrSecurityGroups",
            &[
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSecurityGroupRules",
            ],
            vec!["*".into()],
        ),
        when(
            allow(
                "DeleteEmrSecurityGroups",
                &[
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:DeleteSecurityGroup",
                ],
                vec![n.arn("ec2", "security-group/*")],
            ),
            "StringEquals",
            &format!(
                "aws:ResourceTag/{}",
                crate::pipeline::EMR_MANAGED_POLICY_TAG
            ),
            "true",
        ),
        // A protected stage's first deploy after `teardown --force` adopts what the teardown
        // retained (deployer's `adopt`): it looks for the buckets (HeadBucket: ListBucket,
        // above), their policies, the database (ReadStageCatalog, above), the log groups and
        // the key (by its alias), then imports them through the CloudFormation role.
        allow(
            "FindRetainedBuckets",
            &["s3:GetBucketPolicy", "s3:GetBucketTagging"],
            n.buckets(false),
        ),
        // DescribeLogGroups is authorized on every log group of the account and region
        // (CloudWatch Logs permissions reference).
        allow(
            "FindRetainedLogGroups",
            &["logs:DescribeLogGroups"],
            vec![n.arn("logs", "log-group:*")],
        ),
        // The failure queue, by its name (GetQueueUrl is authorized on the queue).
        allow(
            "FindRetainedQueue",
            &["sqs:GetQueueUrl"],
            vec![n.arn("sqs", &n.c.stage.failure_queue_name())],
        ),
    ];
    // The retained key of a stage that was hardened, found by its alias in the list of
    // aliases (a stage's hardening may have changed since: asked on every stage). ListAliases
    // takes no resource (AWS KMS API reference).
    out.push(allow(
        "FindRetainedKeyAlias",
        &["kms:ListAliases"],
        vec!["*".into()],
    ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managed_policies::{MANAGED_POLICY_LIMIT, MAX_POLICIES_PER_PRINCIPAL};
    use crate::stage::StageName;

    fn policy(stage: &str, hardened: bool) -> serde_json::Value {
        let mut c = StageConfig::defaults(StageName::parse(stage).unwrap());
        c.hardened = hardened;
        serde_json::to_value(deploy_policy(&c, "123456789012")).unwrap()
    }

    #[test]
    fn every_resource_is_the_stages_own_or_unscopable() {
        let plain = policy("alice", false);
        let hard = policy("alice", true);
        assert!(
            hard.to_string().contains("kms:Decrypt") && !plain.to_string().contains("kms:Decrypt")
        );
        // Every stage may list the aliases, to find its retained key.
        assert!(plain.to_string().contains("kms:ListAliases"));
        for s in plain["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .chain(hard["Statement"].as_array().unwrap())
        {
            for r in s["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                if r == "*" {
                    let unscopable = s["Action"].as_array().unwrap().iter().all(|a| {
                        let a = a.as_str().unwrap();
                        a == "cloudformation:DescribeStackDriftDetectionStatus"
                            // EC2's Describe calls take no resource (EC2 API reference).
                            || a.starts_with("ec2:Describe")
                            || crate::facts::action_facts(a)
                                .is_some_and(|f| f.resources.iter().all(|x| !x.required))
                    });
                    assert!(unscopable, "{} on *", s["Action"]);
                    continue;
                }
                assert!(
                    r.contains("pdcase-alice-")
                        || r.contains("pdcase-alice/")
                        || r.contains("pdcase_alice_")
                        || r.contains("deployer-*")
                        || r.ends_with(":catalog")
                        || r.ends_with("/pdcase-alice")
                        || r.ends_with(":database/default")
                        || r.ends_with(":role/*")
                        || r.starts_with("arn:aws:emr-serverless:us-east-1:123456789012:/applications/*")
                        || r == "arn:aws:ec2:us-east-1:123456789012:security-group/*"
                        || r == "arn:aws:logs:us-east-1:123456789012:log-group:*"
                        || r.ends_with(":user/*")
                        || (r.contains(":kms:") && !s["Condition"].is_null())
                        // Drift reads of the network, whose ids AWS picks.
                        || (r.contains(":ec2:")
                            && s["Action"].as_array().unwrap().iter().all(|a| {
                                a.as_str().unwrap().starts_with("ec2:Describe")
                            })),
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
        assert!(parts.len() <= MAX_POLICIES_PER_PRINCIPAL);
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

    /// The deploy identity passes one role, the stage's CloudFormation role, to CloudFormation
    /// alone, and creates no resource of the stack itself: the role does.
    #[test]
    fn the_deploy_identity_passes_only_the_cloudformation_role_and_creates_nothing() {
        let p = policy("alice", true);
        let text = p.to_string();
        for s in p["Statement"].as_array().unwrap() {
            let actions = s["Action"].as_array().unwrap();
            if actions.iter().any(|a| a == "iam:PassRole") {
                assert_eq!(actions.len(), 1);
                assert_eq!(
                    s["Condition"]["StringEquals"]["iam:PassedToService"],
                    "cloudformation.amazonaws.com"
                );
                assert_eq!(
                    s["Resource"],
                    serde_json::json!([
                        "arn:aws:iam::123456789012:role/pdcase-alice-cloudformation-us-east-1"
                    ])
                );
            }
        }
        for create in [
            "iam:CreateRole",
            "iam:AttachRolePolicy",
            "lambda:CreateFunction",
            "s3:CreateBucket",
            "kms:CreateKey",
            "iam:CreatePolicy",
        ] {
            assert!(!text.contains(&format!("\"{create}\"")), "{create}");
        }
    }

    /// `teardown` deletes the bootstrap stack with the caller's credentials: its delete
    /// handlers' calls, on the stage's own role, policies and bucket.
    #[test]
    fn the_bootstrap_stack_can_be_deleted_and_nothing_else() {
        let text = policy("alice", false).to_string();
        for action in ["iam:DeleteRole", "iam:DeletePolicy", "s3:DeleteBucket"] {
            assert!(text.contains(action), "{action}");
        }
        // Any of the role's policies, as many as a later version or a hardened stage needs
        // (e2e: a hardened stage's five, deleted by an identity given a plain stage's policy).
        assert!(text.contains(":policy/pdcase-alice-cloudformation-?\""));
        assert!(text.contains(":policy/pdcase-alice-cloudformation-??\""));
        assert!(!text.contains(":policy/pdcase-alice-cloudformation-1\""));
    }
}
