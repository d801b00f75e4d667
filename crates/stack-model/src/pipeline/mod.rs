//! The pipeline of one stage, as a template, composed of small named parts: each part is a
//! module with one function from the stage (its config and the template so far) to the
//! resources it adds, so a reader finds any resource in one hop.
//!
//! | part | module | resources |
//! |---|---|---|
//! | storage | `storage` | source, jobs and warehouse buckets, their TLS-only policies, the EventBridge rule that sends the warehouse's markers to the refresher |
//! | catalog | `catalog` | Glue database, one table per warehouse table, the crawler and its role |
//! | EMR | `emr` | the EMR Serverless application and its job runtime role (stages whose `base_b_engine` is `emr`) |
//! | functions | `functions` | the ETL, the table refresher and base b's function (the site-events engine, or the EMR starter), one least-privilege role and one log group each |
//! | shards | `shards` | base a's state machine (a Distributed Map of ETL invocations, then the publisher), its role and log group (stages whose `base_a_engine` is `sharded` or `auto`) |
//! | triggers | `triggers` | the two SNS topics and their subscriptions (the EMR topic's subscriber: base b's function) |
//! | Athena | `athena` | the work group |
//! | outputs | [`outputs`] | the names the CLI and users read after a deploy |
//!
//! Compared with the original Serverless deployment: bucket names without dots and globally
//! unique; base b's Spark job on an EMR Serverless application of the stack, with its own
//! job runtime role and no network to own; one execution
//! role per function with only what that function does; a log group per function with
//! retention; buckets encrypted, versioned, private and TLS-only; Glue tables declared from the
//! warehouse contract; the refresher sent only completion markers.

mod athena;
mod catalog;
pub mod emr;
mod encryption;
mod extensions;
mod failures;
mod functions;
mod markers;
pub mod outputs;
mod policy;
pub mod retired;
pub mod shards;
mod storage;
mod triggers;

#[cfg(test)]
mod tests;

use crate::config::{BaseBEngine, StageConfig};
use crate::resource::iam::{Role, Statement};
use crate::resource::Tag;
use crate::stage::{RoleKind, PROJECT};
use crate::template::{Handle, Options, Parameter, ParameterHandle, RemovalPolicy, Template};
use crate::value::Value;

pub use extensions::{
    check as check_extensions, guard_lowered as guard_lowered_by_overrides,
    notes as extension_notes,
};

/// Names of the template's parameters: what changes with every build, not with the stage.
pub mod params {
    /// The bucket holding build artifacts (made once per account and region by the deployer).
    pub const ARTIFACTS_BUCKET: &str = "ArtifactsBucket";
    /// Key of the Lambda zip (`bootstrap` inside), content-addressed.
    pub const LAMBDA_CODE_KEY: &str = "LambdaCodeKey";
    /// Key of the Spark job script, content-addressed.
    pub const SPARK_JOB_KEY: &str = "SparkJobKey";
}

pub use failures::{FAILURE_QUEUE_ENV, MAX_EVENT_AGE_SECONDS, RETRIES};

/// Environment variable naming the base-a table format (`parquet` or `ndjson`).
pub const TABLE_FORMAT_ENV: &str = "TABLE_FORMAT";

/// The EMR starter's variable naming the Spark job's S3 URI (a hotswap rewrites it).
/// The job reads its own script under the artifacts' `spark/` prefix, so a new key needs no
/// change of the job runtime role.
pub const SPARK_JOB_URI_ENV: &str = "SPARK_JOB_URI";

/// The EMR starter's variable naming the stage's EMR Serverless application (its id).
pub const EMR_APPLICATION_ID_ENV: &str = "EMR_APPLICATION_ID";

/// The EMR starter's variable naming the job runtime role (its ARN).
pub const EMR_JOB_ROLE_ARN_ENV: &str = "EMR_JOB_ROLE_ARN";

/// The EMR starter's variable naming where job runs write their logs (`s3://<jobs>/logs/`).
pub const EMR_LOG_URI_ENV: &str = "EMR_LOG_URI";

/// Environment variable telling the shared `bootstrap` which handler to run.
pub const FUNCTION_ENV: &str = "PIPELINE_FUNCTION";

/// Tag EMR's managed policy `AmazonEMRServicePolicy_v2` requires on what an EMR-on-EC2 cluster
/// uses: the retired network's ([`retired`]), and the security groups EMR creates in it.
pub const EMR_MANAGED_POLICY_TAG: &str = "for-use-with-amazon-emr-managed-policies";

/// The logical ids of the pipeline's resources, for what a typed handle does not reach (a
/// `Ref` in `pipeline.yaml`, an override, [`Template::reference`]): each is a resource of every
/// stage's template unless its doc says when (a unit test holds them to the templates).
pub mod ids {
    /// The bucket exports arrive in (`AWS::S3::Bucket`).
    pub const SOURCE_BUCKET: &str = "SourceBucket";
    /// The bucket of Spark job inputs, logs and query results (`AWS::S3::Bucket`).
    pub const JOBS_BUCKET: &str = "JobsBucket";
    /// The warehouse's bucket (`AWS::S3::Bucket`).
    pub const WAREHOUSE_BUCKET: &str = "WarehouseBucket";
    /// The topic that starts the ETL (`AWS::SNS::Topic`).
    pub const ETL_TOPIC: &str = "EtlTriggerTopic";
    /// The topic that starts base b (`AWS::SNS::Topic`).
    pub const EMR_TOPIC: &str = "EmrTriggerTopic";
    /// The warehouse's Glue database (`AWS::Glue::Database`).
    pub const DATABASE: &str = "GlueDatabase";
    /// The warehouse's crawler (`AWS::Glue::Crawler`).
    pub const CRAWLER: &str = "WarehouseCrawler";
    /// The ETL function, base a (`AWS::Lambda::Function`).
    pub const ETL_FUNCTION: &str = "EtlFunction";
    /// Its log group (`AWS::Logs::LogGroup`).
    pub const ETL_LOG_GROUP: &str = "EtlLogGroup";
    /// The table refresher function (`AWS::Lambda::Function`).
    pub const TABLE_REFRESHER_FUNCTION: &str = "TableRefresherFunction";
    /// Base b's function on stages whose `base_b_engine` is `function`
    /// (`AWS::Lambda::Function`).
    pub const SITE_EVENTS_FUNCTION: &str = "SiteEventsFunction";
    /// Base b's starter on stages whose `base_b_engine` is `emr` (`AWS::Lambda::Function`).
    pub const EMR_STARTER_FUNCTION: &str = "EmrStarterFunction";
    /// The EMR Serverless application, `emr` stages (`AWS::EMRServerless::Application`).
    pub const EMR_APPLICATION: &str = "EmrApplication";
    /// Base a's state machine, stages whose `base_a_engine` is `sharded` or `auto`
    /// (`AWS::StepFunctions::StateMachine`).
    pub const ETL_STATE_MACHINE: &str = "EtlShardsStateMachine";
    /// The queue failed deliveries land in (`AWS::SQS::Queue`).
    pub const FAILURE_QUEUE: &str = "FailureQueue";
    /// The Athena work group (`AWS::Athena::WorkGroup`).
    pub const WORKGROUP: &str = "AthenaWorkGroup";
    /// The stage's KMS key, hardened stages (`AWS::KMS::Key`).
    pub const STAGE_KEY: &str = "StageKey";
}

/// The pipeline's main resources, by typed handle: what a Rust user references when extending
/// a stage's template (a `Ref`, a `Fn::GetAtt` of a typed attribute). New handles may be added
/// in any release.
#[non_exhaustive]
pub struct Handles {
    /// [`ids::SOURCE_BUCKET`].
    pub source_bucket: Handle<crate::resource::s3::Bucket>,
    /// [`ids::JOBS_BUCKET`].
    pub jobs_bucket: Handle<crate::resource::s3::Bucket>,
    /// [`ids::WAREHOUSE_BUCKET`].
    pub warehouse_bucket: Handle<crate::resource::s3::Bucket>,
    /// [`ids::ETL_TOPIC`].
    pub etl_topic: Handle<crate::resource::sns::Topic>,
    /// [`ids::EMR_TOPIC`].
    pub emr_topic: Handle<crate::resource::sns::Topic>,
    /// [`ids::DATABASE`].
    pub database: Handle<crate::resource::glue::Database>,
    /// [`ids::CRAWLER`].
    pub crawler: Handle<crate::resource::glue::Crawler>,
    /// [`ids::ETL_FUNCTION`].
    pub etl_function: Handle<crate::resource::lambda::Function>,
    /// [`ids::TABLE_REFRESHER_FUNCTION`].
    pub table_refresher_function: Handle<crate::resource::lambda::Function>,
    /// Base b's function: [`ids::SITE_EVENTS_FUNCTION`] or [`ids::EMR_STARTER_FUNCTION`].
    pub base_b_function: Handle<crate::resource::lambda::Function>,
    /// [`ids::EMR_APPLICATION`], on `emr` stages.
    pub emr_application: Option<Handle<crate::resource::emr_serverless::Application>>,
    /// [`ids::ETL_STATE_MACHINE`], on `sharded` and `auto` stages.
    pub state_machine: Option<Handle<crate::resource::stepfunctions::StateMachine>>,
    /// [`ids::FAILURE_QUEUE`].
    pub failure_queue: Handle<crate::resource::sqs::Queue>,
    /// [`ids::WORKGROUP`].
    pub workgroup: Handle<crate::resource::athena::WorkGroup>,
    /// [`ids::STAGE_KEY`], on hardened stages.
    pub key: Option<Handle<crate::resource::kms::Key>>,
}

/// A stage's composed template and the handles of its parts.
pub struct Stage {
    /// The template: the pipeline, then the stage's `resources:` and `overrides:`.
    pub template: Template,
    /// The pipeline's main resources.
    pub handles: Handles,
}

/// The pipeline's template for one stage.
pub fn template(config: &StageConfig) -> Template {
    compose(config).template
}

/// The pipeline's template for one stage, with its parts' handles, to extend in Rust.
///
/// ```
/// use stack_model::pipeline;
/// use stack_model::resource::lambda::FunctionAttr;
/// use stack_model::template::RawResource;
/// use stack_model::{StageConfig, StageName};
/// use serde_json::json;
///
/// let c = StageConfig::defaults(StageName::parse("alice").unwrap());
/// let mut stage = pipeline::compose(&c);
/// let etl = stage.handles.etl_function.clone();
/// stage.template.add_raw("EtlArnParameter", RawResource::new("AWS::SSM::Parameter", json!({
///     "Type": "String",
///     "Value": etl.get_att(FunctionAttr::Arn),
/// })));
/// let v = stage.template.to_json().unwrap();
/// assert_eq!(v["Resources"]["EtlArnParameter"]["Properties"]["Value"], json!({"Fn::GetAtt": ["EtlFunction", "Arn"]}));
/// ```
pub fn compose(config: &StageConfig) -> Stage {
    let mut p = Pipeline::new(config);
    let key = encryption::key(&mut p);
    p.key = key
        .as_ref()
        .map(|k| k.get_att(crate::resource::kms::KeyAttr::Arn));
    let storage = storage::buckets(&mut p);
    let topics = triggers::topics(&mut p);
    let catalog = catalog::catalog(&mut p, &storage);
    let emr = match config.base_b_engine {
        BaseBEngine::Emr => Some(emr::emr(&mut p, &storage)),
        BaseBEngine::Function => None,
    };
    let failures = failures::queue(&mut p);
    let functions = functions::functions(&mut p, &storage, &catalog, emr.as_ref(), &failures);
    let state_machine = shards::shards(&mut p, &storage, &functions.etl);
    triggers::subscribe(&mut p, &topics, &functions);
    markers::markers_to_refresher(&mut p, &storage, &functions);
    let athena = athena::workgroup(&mut p, &storage);
    outputs::add(
        &mut p,
        &outputs::Parts {
            storage: &storage,
            topics: &topics,
            catalog: &catalog,
            emr: emr.as_ref(),
            functions: &functions,
            athena: &athena,
            state_machine: state_machine.as_ref(),
        },
    );
    let tags = p.tag_pairs();
    extensions::apply(config, &mut p.t, &tags);
    let base_b_function = match &functions.base_b {
        functions::BaseB::SiteEvents(f) | functions::BaseB::EmrStarter(f) => f.clone(),
    };
    Stage {
        template: p.t,
        handles: Handles {
            source_bucket: storage.source,
            jobs_bucket: storage.jobs,
            warehouse_bucket: storage.warehouse,
            etl_topic: topics.etl,
            emr_topic: topics.emr,
            database: catalog.database,
            crawler: catalog.crawler,
            etl_function: functions.etl,
            table_refresher_function: functions.table_refresher,
            base_b_function,
            emr_application: emr.map(|e| e.application),
            state_machine,
            failure_queue: failures.queue,
            workgroup: athena.workgroup,
            key,
        },
    }
}

/// The stage being composed: its config, the template so far, and the parameters every part
/// may read.
pub(crate) struct Pipeline<'a> {
    c: &'a StageConfig,
    t: Template,
    artifacts: ParameterHandle,
    lambda_key: ParameterHandle,
    spark_key: ParameterHandle,
    /// The stage's KMS key (ARN), on hardened stages.
    key: Option<Value>,
}

impl<'a> Pipeline<'a> {
    fn new(c: &'a StageConfig) -> Self {
        let mut t = Template::new(format!(
            "{PROJECT} data pipeline, stage {} (rendered by deployer; do not edit)",
            c.stage
        ));
        let key_pattern = "^[A-Za-z0-9!_.*'()/-]+$";
        let artifacts = t.parameter(
            params::ARTIFACTS_BUCKET,
            Parameter::string("Bucket of build artifacts (created by `deployer deploy`)").pattern(
                "^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
                "an S3 bucket name without dots",
            ),
        );
        let lambda_key = t.parameter(
            params::LAMBDA_CODE_KEY,
            Parameter::string("Key of the Lambda deployment package (content hash)")
                .pattern(key_pattern, "an S3 key"),
        );
        let spark_key = t.parameter(
            params::SPARK_JOB_KEY,
            Parameter::string("Key of the Spark job script (content hash)")
                .pattern(key_pattern, "an S3 key"),
        );
        Pipeline {
            c,
            t,
            artifacts,
            lambda_key,
            spark_key,
            key: None,
        }
    }

    /// `Project` and `Stage` (the policies' conditions find the stage's resources by them),
    /// then the user's `tags:` in key order.
    fn tags(&self) -> Vec<Tag> {
        self.tag_pairs()
            .into_iter()
            .map(|(k, v)| Tag::new(k, v))
            .collect()
    }

    /// [`Pipeline::tags`] as key and value text, for the stage's added resources.
    fn tag_pairs(&self) -> Vec<(String, String)> {
        let mut tags = vec![
            ("Project".to_owned(), PROJECT.to_owned()),
            ("Stage".to_owned(), self.c.stage.as_str().to_owned()),
        ];
        tags.extend(self.c.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        tags
    }

    /// For stateful resources: retained on delete and replacement when the stage is protected.
    fn removal_policy(&self) -> RemovalPolicy {
        if self.c.protected {
            RemovalPolicy::Retain
        } else {
            RemovalPolicy::Delete
        }
    }

    fn stateful(&self) -> Options {
        Options::default().removal(self.removal_policy())
    }

    /// An IAM role of the stage, named per stage and region, trusted by `services`, with one
    /// inline policy of `statements`.
    fn role(
        &mut self,
        id: &str,
        kind: RoleKind,
        description: &str,
        services: &[&str],
        managed: Vec<Value>,
        statements: Vec<Statement>,
    ) -> Handle<Role> {
        let tags = self.tags();
        crate::constructs::least_privilege_role(
            &mut self.t,
            id,
            Some(Value::sub(self.c.stage.role_name_sub(kind))),
            &format!("{description} ({PROJECT} stage {})", self.c.stage),
            services,
            managed,
            &format!("{}-{}", self.c.stage.prefix(), kind.as_str()),
            statements,
            tags,
        )
    }

    /// The artifacts bucket's ARN.
    fn artifacts_arn(&self) -> Value {
        Value::sub_with(
            "arn:${AWS::Partition}:s3:::${Bucket}",
            [("Bucket", self.artifacts.r#ref())],
        )
    }

    /// The ARN of one of the stage's roles, from its derived name (no `GetAtt`: usable where
    /// a reference would make a cycle).
    fn role_arn(&self, kind: RoleKind) -> Value {
        Value::sub(format!(
            "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{}",
            self.c.stage.role_name_sub(kind)
        ))
    }
}
