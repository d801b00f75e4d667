//! Storage: the source, jobs and warehouse buckets (encrypted, versioned, private, TLS-only,
//! with lifecycle rules, their events to EventBridge, and on hardened stages their access
//! logs to a log bucket). The warehouse's completion markers reach the table refresher through
//! [`super::markers`].

use super::Pipeline;
use crate::constructs::{add_secure_bucket, secure_bucket, tls_only_policy};
use crate::resource::iam::{Condition, Effect, Principal, Statement};
use crate::resource::s3::{
    Bucket, BucketAttr, BucketEncryption, BucketPolicy, LifecycleRule, LoggingConfiguration,
    RuleStatus, SseAlgorithm,
};
use crate::stage::BucketRole;
use crate::template::{Handle, Options};
use crate::value::Value;
use crate::warehouse::{runs_folder, Base};

/// The stage's buckets, and the warehouse's name and ARN derived from the stage.
pub(super) struct Storage {
    pub source: Handle<Bucket>,
    pub jobs: Handle<Bucket>,
    pub warehouse: Handle<Bucket>,
    pub source_arn: Value,
    pub jobs_arn: Value,
    /// The warehouse's ARN and name, written from the derived name (`Fn::Sub`), as the
    /// policies that name it have always been.
    pub warehouse_arn: Value,
    pub warehouse_name: Value,
}

/// Where a hardened stage's buckets deliver their access logs (S3 user guide, "Enabling Amazon
/// S3 server access logging"; AWS Control Tower's CT.S3.PR.2 asks every bucket for them).
enum AccessLogs {
    /// Not hardened: none, as the cheaper default.
    Off,
    /// The configured bucket (`access_logs_bucket`), under `pdcase-<stage>/<bucket role>/`.
    Configured(String),
    /// The stage's own log bucket, under `<bucket role>/`.
    Own(Handle<Bucket>),
}

impl AccessLogs {
    fn of(&self, p: &Pipeline, role: BucketRole) -> Option<LoggingConfiguration> {
        let (destination, prefix) = match self {
            AccessLogs::Off => return None,
            AccessLogs::Configured(name) => (
                Value::lit(name.clone()),
                format!("{}/{}/", p.c.stage.prefix(), role.as_str()),
            ),
            AccessLogs::Own(bucket) => (bucket.r#ref(), format!("{}/", role.as_str())),
        };
        Some(LoggingConfiguration {
            destination_bucket_name: destination,
            log_file_prefix: prefix,
        })
    }
}

/// A bucket for the stage's access logs, which S3's own rules for a log bucket shape: default
/// encryption SSE-S3, since S3 does not support SSE-KMS default encryption on a log
/// destination; no object lock, which a destination cannot have; and no access logging of its
/// own, which AWS advises against (each delivery would be logged again, without end). Its
/// objects expire with the stage's log retention. Its policy lets S3's logging service put
/// objects for the stage's buckets only (`aws:SourceArn`, `aws:SourceAccount`), as the guide's
/// example does; the TLS-only statement stays, as on every bucket of the stage (the guide asks
/// that Deny statements not stop delivery: the emulator delivers no logs, so nothing here has
/// seen a delivery through it).
fn own_access_logs_bucket(p: &mut Pipeline) -> Handle<Bucket> {
    let opts = Options::default().removal(p.removal_policy());
    let tags = p.tags();
    let days = p.c.log_retention.days();
    let name = Some(Value::sub(
        p.c.stage.bucket_name_sub(BucketRole::AccessLogs),
    ));
    let expire = LifecycleRule {
        id: "ExpireAccessLogs".into(),
        status: RuleStatus::Enabled,
        prefix: None,
        expiration_in_days: Some(days),
        noncurrent_version_expiration: None,
        abort_incomplete_multipart_upload: None,
    };
    let bucket = secure_bucket(
        name,
        BucketEncryption::default_with(SseAlgorithm::Aes256),
        vec![expire],
        tags,
    );
    p.t.add_with("AccessLogsBucket", bucket, opts)
}

/// The log bucket's policy: TLS only, and S3's log delivery for the stage's buckets of this
/// account and Region (`pdcase-<stage>-*-<account>-<region>`).
fn access_logs_policy(p: &Pipeline, logs: &Handle<Bucket>) -> BucketPolicy {
    let sources = Value::sub(format!(
        "arn:${{AWS::Partition}}:s3:::{}",
        p.c.stage.bucket_name_sub_any_role()
    ));
    let mut policy = tls_only_policy(logs);
    let arn = logs.get_att(BucketAttr::Arn);
    policy.policy_document.statement.push(Statement {
        sid: Some("AllowAccessLogDelivery".into()),
        effect: Effect::Allow,
        principal: Some(Principal::Service(vec!["logging.s3.amazonaws.com".into()])),
        action: vec!["s3:PutObject".into()],
        resource: vec![Value::join("", [arn, "/*".into()])],
        condition: Condition::default()
            .with("ArnLike", "aws:SourceArn", sources)
            .with(
                "StringEquals",
                "aws:SourceAccount",
                Value::sub("${AWS::AccountId}"),
            ),
    });
    policy
}

/// The stage's three buckets (and on a hardened stage without a configured log bucket, its
/// log bucket).
pub(super) fn buckets(p: &mut Pipeline) -> Storage {
    let logs = match (p.c.hardened, p.c.access_logs_bucket.clone()) {
        (false, _) => AccessLogs::Off,
        (true, Some(name)) => AccessLogs::Configured(name),
        (true, None) => AccessLogs::Own(own_access_logs_bucket(p)),
    };
    let source = bucket(p, "SourceBucket", BucketRole::Source, vec![], &logs);
    let jobs = bucket(
        p,
        "JobsBucket",
        BucketRole::Jobs,
        vec![
            expire("ExpireEmrLogs", "logs/", 90),
            expire("ExpireAthenaResults", "athena-results/", 30),
        ],
        &logs,
    );
    let warehouse = bucket(
        p,
        "WarehouseBucket",
        BucketRole::Warehouse,
        // Staging folders of runs that died before cleaning up (outside every table): the
        // ETL's, and those Spark jobs left before tables became manifests (a job now writes
        // under its table's `run=<id>/` and the next run removes what a dead one left).
        // And the runs' bookkeeping (records, message claims, the lease) after 90 days: a
        // message is redelivered within hours, a lease is rewritten by every run and held for
        // at most a job run's timeout, and `deployer runs` lists the last 90 days.
        vec![
            expire("ExpireEtlStaging", "a/_staging/", 2),
            expire("ExpireSparkStaging", "b/_staging/", 2),
            expire("ExpireEtlRuns", &runs_folder(Base::A), RUN_RECORD_DAYS),
            expire("ExpireSparkRuns", &runs_folder(Base::B), RUN_RECORD_DAYS),
        ],
        &logs,
    );
    if let AccessLogs::Own(bucket) = &logs {
        let policy = access_logs_policy(p, bucket);
        // Retained with its bucket: a bucket a forced teardown leaves keeps its policy.
        let opts = Options::default().removal(p.removal_policy());
        p.t.add_with("AccessLogsBucketPolicy", policy, opts);
    }
    let name = p.c.stage.bucket_name_sub(BucketRole::Warehouse);
    Storage {
        source_arn: source.get_att(BucketAttr::Arn),
        jobs_arn: jobs.get_att(BucketAttr::Arn),
        warehouse_arn: Value::sub(format!("arn:${{AWS::Partition}}:s3:::{name}")),
        warehouse_name: Value::sub(name),
        source,
        jobs,
        warehouse,
    }
}

fn bucket(
    p: &mut Pipeline,
    id: &str,
    role: BucketRole,
    rules: Vec<LifecycleRule>,
    logs: &AccessLogs,
) -> Handle<Bucket> {
    let encryption = match &p.key {
        Some(key) => BucketEncryption::kms(key.clone()),
        None => BucketEncryption::default_with(SseAlgorithm::Aes256),
    };
    let name = Some(Value::sub(p.c.stage.bucket_name_sub(role)));
    let mut b = secure_bucket(name, encryption, rules, p.tags());
    b.logging_configuration = logs.of(p, role);
    // Retained with its policy on protected stages: a bucket a forced teardown leaves stays
    // TLS-only, and the next deploy adopts both (`deployer deploy`, an import change set).
    let opts = Options::default().removal(p.removal_policy());
    add_secure_bucket(&mut p.t, id, b, opts)
}

/// How long a run's record, its message's claim and an unused lease are kept.
pub(crate) const RUN_RECORD_DAYS: u32 = 90;

fn expire(id: &str, prefix: &str, days: u32) -> LifecycleRule {
    LifecycleRule {
        id: id.into(),
        status: RuleStatus::Enabled,
        prefix: Some(prefix.into()),
        expiration_in_days: Some(days),
        noncurrent_version_expiration: None,
        abort_incomplete_multipart_upload: None,
    }
}
