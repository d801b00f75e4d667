//! Small constructs the pipeline is built from, public so a stage's additions (or a template
//! from scratch) get the same hardening: a bucket that is encrypted, versioned, private,
//! owner-enforced, TLS-only and sends its events to EventBridge ([`secure_bucket`],
//! [`add_secure_bucket`]), its TLS-only policy alone ([`tls_only_policy`]), the lifecycle rule
//! every bucket gets ([`clean_up_rule`]), and a role trusted by services with one inline policy
//! of exactly the statements given ([`least_privilege_role`]).
//!
//! ```
//! use stack_model::constructs::{add_secure_bucket, secure_bucket};
//! use stack_model::resource::s3::{BucketEncryption, SseAlgorithm};
//! use stack_model::template::{Options, Template};
//! use stack_model::value::Value;
//!
//! let mut t = Template::new("a hardened bucket");
//! let b = secure_bucket(Some(Value::lit("acme-reports")), BucketEncryption::default_with(SseAlgorithm::Aes256), vec![], vec![]);
//! let bucket = add_secure_bucket(&mut t, "Reports", b, Options::default());
//! let v = t.to_json().unwrap();
//! assert_eq!(v["Resources"]["Reports"]["Properties"]["VersioningConfiguration"]["Status"], "Enabled");
//! let deny = &v["Resources"]["ReportsPolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
//! assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");
//! assert_eq!(bucket.id(), "Reports");
//! ```

use crate::resource::iam::{
    Condition, Effect, InlinePolicy, PolicyDocument, Principal, Role, Statement,
};
use crate::resource::s3::{
    AbortIncompleteMultipartUpload, Bucket, BucketAttr, BucketEncryption, BucketPolicy,
    EventBridgeConfiguration, LifecycleConfiguration, LifecycleRule, NoncurrentVersionExpiration,
    NotificationConfiguration, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, RuleStatus, VersioningConfiguration, VersioningStatus,
};
use crate::resource::Tag;
use crate::template::{Handle, Options, Template};
use crate::value::Value;

/// Every bucket's events go to EventBridge: a rule can act on an object's arrival (the
/// warehouse's markers reach the table refresher this way), and AWS Control Tower's CT.S3.PR.4
/// asks every bucket for event notifications. S3 charges nothing to deliver them.
pub fn to_event_bridge() -> NotificationConfiguration {
    NotificationConfiguration {
        event_bridge_configuration: EventBridgeConfiguration {
            event_bridge_enabled: true,
        },
    }
}

/// Expires noncurrent versions after 30 days and aborts uploads left incomplete for 7.
pub fn clean_up_rule() -> LifecycleRule {
    LifecycleRule {
        id: "CleanUpOldVersionsAndUploads".into(),
        status: RuleStatus::Enabled,
        prefix: None,
        expiration_in_days: None,
        noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
            noncurrent_days: 30,
        }),
        abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
            days_after_initiation: 7,
        }),
    }
}

/// Denies every request to the bucket and its objects that does not use TLS. The objects are
/// written `Fn::Join ["", [GetAtt Arn, "/*"]]`: the form AWS Control Tower's proactive control
/// CT.S3.PR.10 (`s3_bucket_policy_ssl_requests_only_check`) reads; `Fn::Sub` says the same to
/// IAM but fails that rule.
pub fn tls_only_policy(bucket: &Handle<Bucket>) -> BucketPolicy {
    let arn = bucket.get_att(BucketAttr::Arn);
    BucketPolicy {
        bucket: bucket.r#ref(),
        policy_document: PolicyDocument::new(vec![Statement {
            sid: Some("DenyInsecureTransport".into()),
            effect: Effect::Deny,
            principal: Some(Principal::Everyone),
            action: vec!["s3:*".into()],
            resource: vec![arn.clone(), Value::join("", [arn, "/*".into()])],
            condition: Condition::default().with("Bool", "aws:SecureTransport", "false"),
        }]),
    }
}

/// A bucket with the pipeline's hardening: `encryption`, every public access blocked,
/// versioned, objects owned by the bucket owner (no ACLs), events to EventBridge, and `rules`
/// followed by [`clean_up_rule`]. Set `logging_configuration` on it for access logs.
pub fn secure_bucket(
    name: Option<Value>,
    encryption: BucketEncryption,
    mut rules: Vec<LifecycleRule>,
    tags: Vec<Tag>,
) -> Bucket {
    rules.push(clean_up_rule());
    Bucket {
        bucket_name: name,
        bucket_encryption: Some(encryption),
        public_access_block_configuration: Some(PublicAccessBlockConfiguration::all_blocked()),
        versioning_configuration: Some(VersioningConfiguration {
            status: VersioningStatus::Enabled,
        }),
        lifecycle_configuration: Some(LifecycleConfiguration { rules }),
        notification_configuration: Some(to_event_bridge()),
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::BucketOwnerEnforced,
            }],
        }),
        logging_configuration: None,
        tags,
    }
}

/// Adds `bucket` as `id` and its TLS-only policy as `<id>Policy`, both with `options` (a
/// retained bucket keeps its policy: a bucket a teardown leaves stays TLS-only).
pub fn add_secure_bucket(
    t: &mut Template,
    id: &str,
    bucket: Bucket,
    options: Options,
) -> Handle<Bucket> {
    let handle = t.add_with(id, bucket, options.clone());
    t.add_with(&format!("{id}Policy"), tls_only_policy(&handle), options);
    handle
}

/// A role trusted by `services` only, with one inline policy (`policy_name`) of exactly
/// `statements` (none: no policy), and the managed policies given.
///
/// ```
/// use stack_model::constructs::least_privilege_role;
/// use stack_model::resource::iam::Statement;
/// use stack_model::template::Template;
/// let mut t = Template::new("t");
/// let role = least_privilege_role(&mut t, "ReaderRole", None, "reads one table", &["lambda.amazonaws.com"], vec![],
///     "read", vec![Statement::allow("Read", &["dynamodb:GetItem"], vec!["arn:aws:dynamodb:us-east-1:123456789012:table/t".into()])], vec![]);
/// let v = t.to_json().unwrap();
/// assert_eq!(v["Resources"]["ReaderRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"], serde_json::json!(["dynamodb:GetItem"]));
/// assert_eq!(role.id(), "ReaderRole");
/// ```
#[allow(clippy::too_many_arguments)]
pub fn least_privilege_role(
    t: &mut Template,
    id: &str,
    name: Option<Value>,
    description: &str,
    services: &[&str],
    managed: Vec<Value>,
    policy_name: &str,
    statements: Vec<Statement>,
    tags: Vec<Tag>,
) -> Handle<Role> {
    let policies = if statements.is_empty() {
        vec![]
    } else {
        vec![InlinePolicy {
            policy_name: policy_name.to_string(),
            policy_document: PolicyDocument::new(statements),
        }]
    };
    t.add(
        id,
        Role {
            role_name: name,
            description: Some(description.to_string()),
            assume_role_policy_document: PolicyDocument::trust_services(services),
            managed_policy_arns: managed,
            policies,
            tags,
        },
    )
}
