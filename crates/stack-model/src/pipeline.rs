//! The pipeline of one stage, as a template: the one place that composes its resources.
//!
//! Compared with the original Serverless deployment: bucket names without dots and globally
//! unique; EMR roles and instance profile inside the stack, named per stage; one execution
//! role per function with only what that function does; a log group per function with
//! retention; buckets encrypted, versioned, private and TLS-only; Glue tables declared from the
//! warehouse contract (the crawler refreshes those tables rather than inventing names from
//! folders); the refresher notified only of completion markers.

use crate::config::StageConfig;
use crate::resource::athena::{
    EncryptionConfiguration, EncryptionOption, ResultConfiguration, WorkGroup,
    WorkGroupConfiguration, WorkGroupState,
};
use crate::resource::glue::{
    CatalogTarget, Column, Crawler, Database, DatabaseInput, DeleteBehavior, RecrawlBehavior,
    RecrawlPolicy, SchemaChangePolicy, SerdeInfo, StorageDescriptor, Table, TableInput, TableType,
    Targets, UpdateBehavior,
};
use crate::resource::iam::{
    Condition, Effect, InlinePolicy, InstanceProfile, PolicyDocument, Principal, Role, RoleAttr,
    Statement,
};
use crate::resource::lambda::{
    Architecture, Code, Environment, Function, FunctionAttr, LogFormat, LoggingConfig, Permission,
    Runtime, TracingConfig, TracingMode,
};
use crate::resource::logs::LogGroup;
use crate::resource::s3::{
    AbortIncompleteMultipartUpload, Bucket, BucketAttr, BucketEncryption, BucketPolicy, FilterRule,
    FilterRuleName, LambdaConfiguration, LifecycleConfiguration, LifecycleRule,
    NoncurrentVersionExpiration, NotificationConfiguration, NotificationFilter, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, RuleStatus,
    S3KeyFilter, SseAlgorithm, VersioningConfiguration, VersioningStatus,
};
use crate::resource::sns::{Protocol, Subscription, Topic};
use crate::resource::Tag;
use crate::stage::{BucketRole, FunctionRole, RoleKind, TopicRole, PROJECT};
use crate::template::{Handle, Options, Parameter, ParameterHandle, RemovalPolicy, Template};
use crate::value::{Pseudo, Value};
use crate::warehouse::{Base, DataFormat, TableDef, SUCCESS_MARKER, TABLES};
use std::collections::BTreeMap;

/// Names of the template's parameters: what changes with every build, not with the stage.
pub mod params {
    /// The bucket holding build artifacts (made once per account and region by the deployer).
    pub const ARTIFACTS_BUCKET: &str = "ArtifactsBucket";
    /// Key of the Lambda zip (`bootstrap` inside), content-addressed.
    pub const LAMBDA_CODE_KEY: &str = "LambdaCodeKey";
    /// Key of the Spark job script, content-addressed.
    pub const SPARK_JOB_KEY: &str = "SparkJobKey";
}

/// Names of the template's outputs: what the deployer and users read after a deploy.
pub mod outputs {
    pub const STAGE: &str = "Stage";
    pub const SOURCE_BUCKET: &str = "SourceBucketName";
    pub const WAREHOUSE_BUCKET: &str = "WarehouseBucketName";
    pub const JOBS_BUCKET: &str = "JobsBucketName";
    pub const ETL_TOPIC: &str = "EtlTriggerTopicArn";
    pub const EMR_TOPIC: &str = "EmrTriggerTopicArn";
    pub const ETL_FUNCTION: &str = "EtlFunctionName";
    pub const EMR_STARTER_FUNCTION: &str = "EmrStarterFunctionName";
    pub const TABLE_REFRESHER_FUNCTION: &str = "TableRefresherFunctionName";
    pub const DATABASE: &str = "GlueDatabaseName";
    pub const CRAWLER: &str = "CrawlerName";
    pub const WORKGROUP: &str = "AthenaWorkGroupName";
    pub const EMR_SERVICE_ROLE: &str = "EmrServiceRoleName";
    pub const EMR_INSTANCE_PROFILE: &str = "EmrInstanceProfileName";
    pub const ATHENA_RESULTS: &str = "AthenaResultsLocation";
}

/// Environment variable naming the base-a table format (`parquet` or `ndjson`).
pub const TABLE_FORMAT_ENV: &str = "TABLE_FORMAT";

/// Environment variable telling the shared `bootstrap` which handler to run.
pub const FUNCTION_ENV: &str = "PIPELINE_FUNCTION";

/// Tag EMR's managed policy `AmazonEMRServicePolicy_v2` requires on what the cluster uses.
pub const EMR_MANAGED_POLICY_TAG: &str = "for-use-with-amazon-emr-managed-policies";

/// The pipeline's template for one stage.
pub fn template(config: &StageConfig) -> Template {
    Pipeline::new(config).build()
}

struct Pipeline<'a> {
    c: &'a StageConfig,
    t: Template,
    artifacts: ParameterHandle,
    lambda_key: ParameterHandle,
    spark_key: ParameterHandle,
}

/// Ids of the three functions' pieces.
struct FunctionSpec {
    role: FunctionRole,
    id: &'static str,
    description: &'static str,
}

const ETL: FunctionSpec = FunctionSpec {
    role: FunctionRole::Etl,
    id: "Etl",
    description: "Builds the base-a warehouse tables from the JSON exports",
};
const EMR_STARTER: FunctionSpec = FunctionSpec {
    role: FunctionRole::EmrStarter,
    id: "EmrStarter",
    description: "Starts a transient EMR cluster that runs the Spark job over site events",
};
const TABLE_REFRESHER: FunctionSpec = FunctionSpec {
    role: FunctionRole::TableRefresher,
    id: "TableRefresher",
    description: "Starts the Glue crawler once every table of a base is complete",
};

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
        }
    }

    fn tags(&self) -> Vec<Tag> {
        vec![
            Tag::new("Project", PROJECT),
            Tag::new("Stage", self.c.stage.as_str()),
        ]
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

    fn build(mut self) -> Template {
        let source = self.bucket(
            "SourceBucket",
            BucketRole::Source,
            vec![],
            None,
            Options::default(),
        );
        let jobs = self.bucket(
            "JobsBucket",
            BucketRole::Jobs,
            vec![
                expire("ExpireEmrLogs", "logs/", 90),
                expire("ExpireAthenaResults", "athena-results/", 30),
            ],
            None,
            Options::default(),
        );

        let etl_topic = self.topic("EtlTriggerTopic", TopicRole::EtlTrigger);
        let emr_topic = self.topic("EmrTriggerTopic", TopicRole::EmrTrigger);

        let database = self.t.add_with(
            "GlueDatabase",
            Database {
                catalog_id: Pseudo::AccountId.into(),
                database_input: DatabaseInput {
                    name: self.c.stage.database_name().into(),
                    description: Some(format!("{PROJECT} warehouse, stage {}", self.c.stage)),
                },
            },
            self.stateful(),
        );

        // The warehouse bucket notifies the refresher, which needs the bucket's ARN in its
        // policy and permission: both are written from the derived name, not from `Ref`, to
        // avoid a dependency cycle (bucket -> permission -> bucket).
        let warehouse_arn = Value::sub(format!(
            "arn:${{AWS::Partition}}:s3:::{}",
            self.c.stage.bucket_name_sub(BucketRole::Warehouse)
        ));
        let warehouse_name = Value::sub(self.c.stage.bucket_name_sub(BucketRole::Warehouse));
        let source_arn = source.get_att(BucketAttr::Arn);
        let jobs_arn = jobs.get_att(BucketAttr::Arn);
        let crawler_arn = Value::sub(format!(
            "arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:crawler/{}",
            self.c.stage.crawler_name()
        ));
        let artifacts_arn = Value::sub_with(
            "arn:${AWS::Partition}:s3:::${Bucket}",
            [("Bucket", self.artifacts.r#ref())],
        );

        // Tables: declared from the warehouse contract.
        let tables: Vec<Handle<Table>> = TABLES
            .iter()
            .map(|def| self.table(def, &database))
            .collect();

        // Glue crawler and its role.
        let crawler_role = self.role(
            "CrawlerRole",
            RoleKind::Crawler,
            "Glue crawler of the warehouse",
            &["glue.amazonaws.com"],
            vec![Value::sub(
                "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSGlueServiceRole",
            )],
            vec![
                Statement::allow(
                    "ListWarehouse",
                    &["s3:ListBucket"],
                    vec![warehouse_arn.clone()],
                ),
                Statement::allow(
                    "ReadWarehouse",
                    &["s3:GetObject"],
                    vec![objects(&warehouse_arn, "*")],
                ),
            ],
        );
        let crawler = self.t.add(
            "WarehouseCrawler",
            Crawler {
                name: self.c.stage.crawler_name().into(),
                description: Some(
                    "Refreshes the schemas and partitions of the declared warehouse tables".into(),
                ),
                role: crawler_role.get_att(RoleAttr::Arn),
                targets: Targets {
                    catalog_targets: vec![CatalogTarget {
                        database_name: database.r#ref(),
                        tables: tables.iter().map(|t| t.r#ref()).collect(),
                    }],
                },
                schema_change_policy: SchemaChangePolicy {
                    update_behavior: UpdateBehavior::UpdateInDatabase,
                    delete_behavior: DeleteBehavior::Log,
                },
                recrawl_policy: Some(RecrawlPolicy {
                    recrawl_behavior: RecrawlBehavior::CrawlEverything,
                }),
                tags: self.tags().into_iter().map(|t| (t.key, t.value)).collect(),
            },
        );

        // EMR: service role, instance role and profile, named per stage.
        let emr_instance_role_arn = role_arn(RoleKind::EmrInstance, &self);
        let emr_service = self.role(
            "EmrServiceRole",
            RoleKind::EmrService,
            "EMR service role of the transient Spark cluster",
            &["elasticmapreduce.amazonaws.com"],
            vec![Value::sub(
                "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2",
            )],
            vec![pass_role(
                "PassInstanceRole",
                emr_instance_role_arn.clone(),
                "ec2.amazonaws.com",
            )],
        );
        let emr_instance = self.role(
            "EmrInstanceRole",
            RoleKind::EmrInstance,
            "EC2 role of the transient Spark cluster's nodes",
            &["ec2.amazonaws.com"],
            vec![],
            vec![
                Statement::allow(
                    "ListBuckets",
                    &["s3:ListBucket"],
                    vec![source_arn.clone(), warehouse_arn.clone(), jobs_arn.clone()],
                ),
                Statement::allow(
                    "ReadEvents",
                    &["s3:GetObject"],
                    vec![objects(&source_arn, "b/*")],
                ),
                Statement::allow(
                    "ReadStudents",
                    &["s3:GetObject"],
                    vec![objects(&warehouse_arn, "a/students/*")],
                ),
                Statement::allow(
                    "WriteBaseB",
                    &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    vec![objects(&warehouse_arn, "b/*")],
                ),
                Statement::allow(
                    "WriteLogsAndScratch",
                    &["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    vec![objects(&jobs_arn, "*")],
                ),
                Statement::allow(
                    "ReadSparkJob",
                    &["s3:GetObject"],
                    vec![Value::sub_with(
                        "${Bucket}/${Key}",
                        [
                            ("Bucket", artifacts_arn.clone()),
                            ("Key", self.spark_key.r#ref()),
                        ],
                    )],
                ),
            ],
        );
        let instance_profile = self.t.add(
            "EmrInstanceProfile",
            InstanceProfile {
                instance_profile_name: Some(Value::sub(
                    self.c.stage.role_name_sub(RoleKind::EmrInstance),
                )),
                roles: vec![emr_instance.r#ref()],
            },
        );

        // Functions.
        let logs_arn = |f: FunctionRole| {
            Value::sub(format!(
                "arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{}:*",
                self.c.stage.log_group_name(f)
            ))
        };
        let crawl = Statement::allow(
            "StartCrawler",
            &["glue:StartCrawler", "glue:GetCrawler"],
            vec![crawler_arn],
        );

        let etl_statements = vec![
            Statement::allow(
                "ListBuckets",
                &["s3:ListBucket"],
                vec![source_arn.clone(), warehouse_arn.clone()],
            ),
            Statement::allow(
                "ReadExports",
                &["s3:GetObject"],
                vec![objects(&source_arn, "a/*")],
            ),
            Statement::allow(
                "WriteBaseA",
                &[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                ],
                vec![objects(&warehouse_arn, "a/*")],
            ),
            crawl.clone(),
            logs_statement(logs_arn(FunctionRole::Etl)),
            xray_statement(),
        ];
        let mut etl_env = self.env(ETL.role);
        etl_env.extend([
            ("SOURCE_BUCKET", source.r#ref()),
            ("WAREHOUSE_BUCKET", warehouse_name.clone()),
            ("CRAWLER_NAME", crawler.r#ref()),
            ("DATABASE_NAME", database.r#ref()),
            (TABLE_FORMAT_ENV, self.c.table_format.as_str().into()),
        ]);
        let etl = self.function(&ETL, etl_statements, etl_env);

        let mut starter_env = self.env(EMR_STARTER.role);
        let emr = &self.c.emr;
        starter_env.extend([
            ("SOURCE_BUCKET", source.r#ref()),
            ("WAREHOUSE_BUCKET", warehouse_name.clone()),
            ("JOBS_BUCKET", jobs.r#ref()),
            (TABLE_FORMAT_ENV, self.c.table_format.as_str().into()),
            (
                "SPARK_JOB_URI",
                Value::sub_with(
                    "s3://${Bucket}/${Key}",
                    [
                        ("Bucket", self.artifacts.r#ref()),
                        ("Key", self.spark_key.r#ref()),
                    ],
                ),
            ),
            ("EMR_RELEASE_LABEL", emr.release_label.clone().into()),
            (
                "EMR_MASTER_INSTANCE_TYPE",
                emr.master_instance_type.clone().into(),
            ),
            (
                "EMR_CORE_INSTANCE_TYPE",
                emr.core_instance_type.clone().into(),
            ),
            (
                "EMR_CORE_INSTANCE_COUNT",
                emr.core_instance_count.to_string().into(),
            ),
            (
                "EMR_IDLE_TIMEOUT_SECONDS",
                (u64::from(emr.idle_timeout_minutes) * 60)
                    .to_string()
                    .into(),
            ),
            ("EMR_SERVICE_ROLE", emr_service.r#ref()),
            ("EMR_INSTANCE_PROFILE", instance_profile.r#ref()),
            (
                "EMR_LOG_URI",
                Value::sub_with("s3://${Bucket}/logs/", [("Bucket", jobs.r#ref())]),
            ),
        ]);
        let starter_statements = vec![
            // RunJobFlow has no resource-level permissions: `*` is the narrowest AWS allows.
            // The tag condition keeps the starter to clusters tagged as this stage's.
            Statement {
                condition: Condition::default().with("StringEquals", "aws:RequestTag/Stage", self.c.stage.as_str()),
                ..Statement::allow("RunJobFlow", &["elasticmapreduce:RunJobFlow"], vec!["*".into()])
            },
            Statement::allow(
                "TagClusters",
                &["elasticmapreduce:AddTags"],
                vec![Value::sub(
                    "arn:${AWS::Partition}:elasticmapreduce:${AWS::Region}:${AWS::AccountId}:cluster/*",
                )],
            ),
            pass_role("PassServiceRole", emr_service.get_att(RoleAttr::Arn), "elasticmapreduce.amazonaws.com"),
            pass_role("PassInstanceRole", emr_instance.get_att(RoleAttr::Arn), "ec2.amazonaws.com"),
            logs_statement(logs_arn(FunctionRole::EmrStarter)),
            xray_statement(),
        ];
        let starter = self.function(&EMR_STARTER, starter_statements, starter_env);

        let mut refresher_env = self.env(TABLE_REFRESHER.role);
        refresher_env.extend([
            ("WAREHOUSE_BUCKET", warehouse_name.clone()),
            ("CRAWLER_NAME", crawler.r#ref()),
        ]);
        let refresher_statements = vec![
            Statement::allow(
                "ListWarehouse",
                &["s3:ListBucket"],
                vec![warehouse_arn.clone()],
            ),
            // The markers say which run completed each table.
            Statement::allow(
                "ReadMarkers",
                &["s3:GetObject"],
                vec![objects(&warehouse_arn, "*/_SUCCESS")],
            ),
            crawl,
            logs_statement(logs_arn(FunctionRole::TableRefresher)),
            xray_statement(),
        ];
        let refresher = self.function(&TABLE_REFRESHER, refresher_statements, refresher_env);

        // Triggers: topics -> functions.
        self.subscribe("Etl", &etl_topic, &etl);
        self.subscribe("EmrStarter", &emr_topic, &starter);

        // Warehouse -> refresher, on completion markers only.
        let s3_may_invoke = self.t.add(
            "TableRefresherS3Permission",
            Permission {
                action: "lambda:InvokeFunction".into(),
                function_name: refresher.get_att(FunctionAttr::Arn),
                principal: "s3.amazonaws.com".into(),
                source_arn: Some(warehouse_arn),
                source_account: Some(Pseudo::AccountId.into()),
            },
        );
        let notification = NotificationConfiguration {
            lambda_configurations: vec![LambdaConfiguration {
                event: "s3:ObjectCreated:*".into(),
                function: refresher.get_att(FunctionAttr::Arn),
                filter: Some(NotificationFilter {
                    s3_key: S3KeyFilter {
                        rules: vec![FilterRule {
                            name: FilterRuleName::Suffix,
                            value: SUCCESS_MARKER.into(),
                        }],
                    },
                }),
            }],
        };
        let warehouse = self.bucket(
            "WarehouseBucket",
            BucketRole::Warehouse,
            // Staging folders of runs that died before cleaning up (outside every table).
            vec![
                expire("ExpireEtlStaging", "a/_staging/", 2),
                expire("ExpireSparkStaging", "b/_staging/", 2),
            ],
            Some(notification),
            Options::default().depends_on(&s3_may_invoke),
        );

        // Athena.
        let results = Value::sub_with("s3://${Bucket}/athena-results/", [("Bucket", jobs.r#ref())]);
        let workgroup = self.t.add(
            "AthenaWorkGroup",
            WorkGroup {
                name: self.c.stage.workgroup_name().into(),
                description: Some(format!(
                    "Queries of the {PROJECT} warehouse, stage {}",
                    self.c.stage
                )),
                state: WorkGroupState::Enabled,
                recursive_delete_option: true,
                work_group_configuration: WorkGroupConfiguration {
                    enforce_work_group_configuration: true,
                    publish_cloud_watch_metrics_enabled: true,
                    bytes_scanned_cutoff_per_query: None,
                    result_configuration: ResultConfiguration {
                        output_location: results.clone(),
                        encryption_configuration: EncryptionConfiguration {
                            encryption_option: EncryptionOption::SseS3,
                        },
                    },
                },
                tags: self.tags(),
            },
        );

        use outputs as o;
        let t = &mut self.t;
        t.output(o::STAGE, "Stage name", self.c.stage.as_str().into());
        t.output(
            o::SOURCE_BUCKET,
            "Raw exports: a/<entity>.json, b/part-*.json",
            source.r#ref(),
        );
        t.output(
            o::WAREHOUSE_BUCKET,
            "Curated tables, crawled by Glue",
            warehouse.r#ref(),
        );
        t.output(o::JOBS_BUCKET, "EMR logs and Athena results", jobs.r#ref());
        t.output(
            o::ETL_TOPIC,
            "Publish here to run the base-a ETL",
            etl_topic.r#ref(),
        );
        t.output(
            o::EMR_TOPIC,
            "Publish here to run the Spark job on EMR",
            emr_topic.r#ref(),
        );
        t.output(o::ETL_FUNCTION, "ETL function", etl.r#ref());
        t.output(
            o::EMR_STARTER_FUNCTION,
            "EMR starter function",
            starter.r#ref(),
        );
        t.output(
            o::TABLE_REFRESHER_FUNCTION,
            "Table refresher function",
            refresher.r#ref(),
        );
        t.output(
            o::DATABASE,
            "Glue database to query with Athena",
            database.r#ref(),
        );
        t.output(o::CRAWLER, "Glue crawler of the warehouse", crawler.r#ref());
        t.output(o::WORKGROUP, "Athena work group", workgroup.r#ref());
        t.output(
            o::ATHENA_RESULTS,
            "Where Athena writes query results",
            results,
        );
        t.output(o::EMR_SERVICE_ROLE, "EMR service role", emr_service.r#ref());
        t.output(
            o::EMR_INSTANCE_PROFILE,
            "EMR EC2 instance profile",
            instance_profile.r#ref(),
        );
        self.t
    }

    fn bucket(
        &mut self,
        id: &str,
        role: BucketRole,
        mut rules: Vec<LifecycleRule>,
        notification: Option<NotificationConfiguration>,
        options: Options,
    ) -> Handle<Bucket> {
        rules.push(clean_up_rule());
        let opts = options.removal(self.removal_policy());
        let bucket = self.t.add_with(
            id,
            Bucket {
                bucket_name: Some(Value::sub(self.c.stage.bucket_name_sub(role))),
                bucket_encryption: Some(BucketEncryption::default_with(SseAlgorithm::Aes256)),
                public_access_block_configuration: Some(
                    PublicAccessBlockConfiguration::all_blocked(),
                ),
                versioning_configuration: Some(VersioningConfiguration {
                    status: VersioningStatus::Enabled,
                }),
                lifecycle_configuration: Some(LifecycleConfiguration { rules }),
                notification_configuration: notification,
                ownership_controls: Some(OwnershipControls {
                    rules: vec![OwnershipControlsRule {
                        object_ownership: ObjectOwnership::BucketOwnerEnforced,
                    }],
                }),
                tags: self.tags(),
            },
            opts,
        );
        self.t.add(&format!("{id}Policy"), tls_only_policy(&bucket));
        bucket
    }

    fn topic(&mut self, id: &str, role: TopicRole) -> Handle<Topic> {
        let tags = self.tags();
        self.t.add(
            id,
            Topic {
                topic_name: Some(self.c.stage.topic_name(role).into()),
                display_name: None,
                kms_master_key_id: Some("alias/aws/sns".into()),
                tags,
            },
        )
    }

    fn table(&mut self, def: &TableDef, database: &Handle<Database>) -> Handle<Table> {
        let column = |c: &crate::warehouse::ColumnDef| Column {
            name: c.name.to_ascii_lowercase(),
            kind: c.kind.hive().into(),
            comment: None,
        };
        let location = Value::sub(format!(
            "s3://{}/{}",
            self.c.stage.bucket_name_sub(BucketRole::Warehouse),
            def.prefix()
        ));
        // Base b is Spark's zstd Parquet; base a is what the ETL is configured to write.
        let (format, compression) = match def.base {
            Base::A => (self.c.table_format, "SNAPPY"),
            Base::B => (DataFormat::Parquet, "ZSTD"),
        };
        let mut parameters = BTreeMap::from([("EXTERNAL".to_string(), "TRUE".to_string())]);
        let (input_format, output_format, serde) = match format {
            DataFormat::Parquet => {
                parameters.insert("classification".into(), "parquet".into());
                parameters.insert("parquet.compression".into(), compression.into());
                (
                    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                )
            }
            DataFormat::Ndjson => {
                parameters.insert("classification".into(), "json".into());
                (
                    "org.apache.hadoop.mapred.TextInputFormat",
                    "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    "org.openx.data.jsonserde.JsonSerDe",
                )
            }
        };
        // Date partitions are projected: Athena sees a new day's folder without a crawl or
        // MSCK REPAIR.
        for key in def.partition_keys {
            parameters.insert("projection.enabled".into(), "true".into());
            parameters.insert(format!("projection.{}.type", key.name), "date".into());
            parameters.insert(
                format!("projection.{}.format", key.name),
                "yyyy-MM-dd".into(),
            );
            parameters.insert(
                format!("projection.{}.range", key.name),
                "2000-01-01,NOW".into(),
            );
            parameters.insert(format!("projection.{}.interval", key.name), "1".into());
            parameters.insert(
                format!("projection.{}.interval.unit", key.name),
                "DAYS".into(),
            );
        }
        self.t.add(
            &format!("{}Table", def.pascal_name()),
            Table {
                catalog_id: Pseudo::AccountId.into(),
                database_name: database.r#ref(),
                table_input: TableInput {
                    name: def.name.into(),
                    description: Some(def.description.into()),
                    table_type: TableType::External,
                    parameters,
                    partition_keys: def.partition_keys.iter().map(column).collect(),
                    storage_descriptor: StorageDescriptor {
                        columns: def.columns.iter().map(column).collect(),
                        location,
                        input_format: input_format.into(),
                        output_format: output_format.into(),
                        serde_info: SerdeInfo {
                            serialization_library: serde.into(),
                            parameters: BTreeMap::new(),
                        },
                        compressed: format == DataFormat::Parquet,
                    },
                },
            },
        )
    }

    fn role(
        &mut self,
        id: &str,
        kind: RoleKind,
        description: &str,
        services: &[&str],
        managed: Vec<Value>,
        statements: Vec<Statement>,
    ) -> Handle<Role> {
        let policies = if statements.is_empty() {
            vec![]
        } else {
            vec![InlinePolicy {
                policy_name: format!("{}-{}", self.c.stage.prefix(), kind.as_str()),
                policy_document: PolicyDocument::new(statements),
            }]
        };
        let tags = self.tags();
        self.t.add(
            id,
            Role {
                role_name: Some(Value::sub(self.c.stage.role_name_sub(kind))),
                description: Some(format!("{description} ({PROJECT} stage {})", self.c.stage)),
                assume_role_policy_document: PolicyDocument::trust_services(services),
                managed_policy_arns: managed,
                policies,
                tags,
            },
        )
    }

    fn env(&self, role: FunctionRole) -> BTreeMap<&'static str, Value> {
        BTreeMap::from([
            (FUNCTION_ENV, Value::from(role.as_str())),
            ("STAGE", self.c.stage.as_str().into()),
            ("RUST_LOG", "info".into()),
        ])
    }

    fn function(
        &mut self,
        spec: &FunctionSpec,
        statements: Vec<Statement>,
        variables: BTreeMap<&'static str, Value>,
    ) -> Handle<Function> {
        let variables = variables
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let kind = match spec.role {
            FunctionRole::Etl => RoleKind::Etl,
            FunctionRole::EmrStarter => RoleKind::EmrStarter,
            FunctionRole::TableRefresher => RoleKind::TableRefresher,
        };
        let role = self.role(
            &format!("{}Role", spec.id),
            kind,
            &format!("Execution role of the {} function", spec.role.as_str()),
            &["lambda.amazonaws.com"],
            vec![],
            statements,
        );
        let removal = self.stateful();
        let log_group = self.t.add_with(
            &format!("{}LogGroup", spec.id),
            LogGroup {
                log_group_name: Some(self.c.stage.log_group_name(spec.role).into()),
                retention_in_days: Some(self.c.log_retention),
                tags: self.tags(),
            },
            removal,
        );
        let tags = self.tags();
        self.t.add(
            &format!("{}Function", spec.id),
            Function {
                function_name: Some(self.c.stage.function_name(spec.role).into()),
                description: Some(spec.description.into()),
                runtime: Runtime::ProvidedAl2023,
                handler: "bootstrap".into(),
                architectures: vec![Architecture::X86_64],
                code: Code {
                    s3_bucket: self.artifacts.r#ref(),
                    s3_key: self.lambda_key.r#ref(),
                },
                role: role.get_att(RoleAttr::Arn),
                memory_size: self.c.lambda.memory_mb,
                timeout: self.c.lambda.timeout_seconds,
                tracing_config: Some(TracingConfig {
                    mode: TracingMode::Active,
                }),
                environment: Some(Environment { variables }),
                logging_config: Some(LoggingConfig {
                    log_group: log_group.r#ref(),
                    log_format: LogFormat::Text,
                }),
                tags,
            },
        )
    }

    fn subscribe(&mut self, id: &str, topic: &Handle<Topic>, function: &Handle<Function>) {
        self.t.add(
            &format!("{id}SnsPermission"),
            Permission {
                action: "lambda:InvokeFunction".into(),
                function_name: function.get_att(FunctionAttr::Arn),
                principal: "sns.amazonaws.com".into(),
                source_arn: Some(topic.r#ref()),
                source_account: None,
            },
        );
        self.t.add(
            &format!("{id}Subscription"),
            Subscription {
                topic_arn: topic.r#ref(),
                protocol: Protocol::Lambda,
                endpoint: function.get_att(FunctionAttr::Arn),
            },
        );
    }
}

fn role_arn(kind: RoleKind, p: &Pipeline) -> Value {
    Value::sub(format!(
        "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{}",
        p.c.stage.role_name_sub(kind)
    ))
}

/// `<bucket arn>/<pattern>`.
/// Expires noncurrent versions after 30 days and aborts uploads left incomplete for 7.
pub(crate) fn clean_up_rule() -> LifecycleRule {
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

/// Denies every request to the bucket and its objects that does not use TLS.
pub(crate) fn tls_only_policy(bucket: &Handle<Bucket>) -> BucketPolicy {
    let arn = bucket.get_att(BucketAttr::Arn);
    BucketPolicy {
        bucket: bucket.r#ref(),
        policy_document: PolicyDocument::new(vec![Statement {
            sid: Some("DenyInsecureTransport".into()),
            effect: Effect::Deny,
            principal: Some(Principal::Everyone),
            action: vec!["s3:*".into()],
            resource: vec![arn.clone(), objects(&arn, "*")],
            condition: Condition::default().with("Bool", "aws:SecureTransport", "false"),
        }]),
    }
}

fn objects(bucket_arn: &Value, pattern: &str) -> Value {
    Value::sub_with(format!("${{Arn}}/{pattern}"), [("Arn", bucket_arn.clone())])
}

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

fn pass_role(sid: &str, role_arn: Value, service: &str) -> Statement {
    Statement {
        condition: Condition::default().with("StringEquals", "iam:PassedToService", service),
        ..Statement::allow(sid, &["iam:PassRole"], vec![role_arn])
    }
}

fn logs_statement(log_group_arn: Value) -> Statement {
    Statement::allow(
        "WriteOwnLogs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        vec![log_group_arn],
    )
}

fn xray_statement() -> Statement {
    // X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
    Statement::allow(
        "XRayTraces",
        &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        vec!["*".into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::StageName;
    use crate::template::Format;

    fn config(stage: &str, protected: bool) -> StageConfig {
        let mut c = StageConfig::defaults(StageName::parse(stage).unwrap());
        c.protected = protected;
        c
    }

    #[test]
    fn renders_deterministically_in_both_formats() {
        for format in [Format::Json, Format::Yaml] {
            let a = template(&config("alice", false)).render(format).unwrap();
            let b = template(&config("alice", false)).render(format).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn has_every_resource_type_of_system_md() {
        let t = template(&config("alice", false));
        let types: std::collections::BTreeSet<_> = t.resource_types().map(|(_, ty)| ty).collect();
        for ty in [
            "AWS::S3::Bucket",
            "AWS::S3::BucketPolicy",
            "AWS::SNS::Topic",
            "AWS::SNS::Subscription",
            "AWS::Lambda::Function",
            "AWS::Lambda::Permission",
            "AWS::IAM::Role",
            "AWS::IAM::InstanceProfile",
            "AWS::Glue::Database",
            "AWS::Glue::Crawler",
            "AWS::Glue::Table",
            "AWS::Logs::LogGroup",
            "AWS::Athena::WorkGroup",
        ] {
            assert!(types.contains(ty), "missing {ty}");
        }
        let tables = t
            .resource_types()
            .filter(|(_, ty)| *ty == "AWS::Glue::Table")
            .count();
        assert_eq!(tables, TABLES.len());
    }

    #[test]
    fn protected_stage_retains_stateful_resources_only() {
        let v = template(&config("prod", true)).to_json().unwrap();
        let r = &v["Resources"];
        for id in [
            "SourceBucket",
            "WarehouseBucket",
            "JobsBucket",
            "GlueDatabase",
            "EtlLogGroup",
        ] {
            assert_eq!(r[id]["DeletionPolicy"], "Retain", "{id}");
            assert_eq!(r[id]["UpdateReplacePolicy"], "Retain", "{id}");
        }
        assert!(r["EtlFunction"].get("DeletionPolicy").is_none());
        let v = template(&config("alice", false)).to_json().unwrap();
        assert_eq!(v["Resources"]["SourceBucket"]["DeletionPolicy"], "Delete");
    }

    #[test]
    fn config_reaches_the_template() {
        let mut c = config("alice", false);
        c.lambda.memory_mb = 1024;
        c.emr.core_instance_count = 3;
        let v = template(&c).to_json().unwrap();
        let f = &v["Resources"]["EmrStarterFunction"]["Properties"];
        assert_eq!(f["MemorySize"], 1024);
        assert_eq!(
            f["Environment"]["Variables"]["EMR_CORE_INSTANCE_COUNT"],
            "3"
        );
        assert_eq!(
            f["Environment"]["Variables"]["EMR_RELEASE_LABEL"],
            "emr-7.5.0"
        );
    }

    #[test]
    fn the_table_format_reaches_the_base_a_glue_tables_and_the_functions() {
        let mut c = config("alice", false);
        c.table_format = crate::warehouse::DataFormat::Ndjson;
        let v = template(&c).to_json().unwrap();
        let serde = |id: &str| {
            v["Resources"][id]["Properties"]["TableInput"]["StorageDescriptor"]["SerdeInfo"]
                ["SerializationLibrary"]
                .clone()
        };
        assert_eq!(serde("StudentsTable"), "org.openx.data.jsonserde.JsonSerDe");
        assert_eq!(
            serde("EventsTable"),
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        );
        let env = &v["Resources"]["EtlFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(env[TABLE_FORMAT_ENV], "ndjson");
        let parquet = template(&config("alice", false)).to_json().unwrap();
        assert_eq!(
            parquet["Resources"]["StudentsTable"]["Properties"]["TableInput"]["StorageDescriptor"]
                ["SerdeInfo"]["SerializationLibrary"],
            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        );
    }

    #[test]
    fn only_unscopable_actions_use_a_wildcard_resource() {
        let v = template(&config("alice", false)).to_json().unwrap();
        let mut wildcard_actions = std::collections::BTreeSet::new();
        for (_, r) in v["Resources"].as_object().unwrap() {
            if r["Type"] != "AWS::IAM::Role" {
                continue;
            }
            for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
                for s in p["PolicyDocument"]["Statement"].as_array().unwrap() {
                    if s["Resource"].as_array().unwrap().iter().any(|r| r == "*") {
                        for a in s["Action"].as_array().unwrap() {
                            wildcard_actions.insert(a.as_str().unwrap().to_string());
                        }
                    }
                }
            }
        }
        let expected: std::collections::BTreeSet<String> = [
            "elasticmapreduce:RunJobFlow",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(wildcard_actions, expected);
    }

    #[test]
    fn every_taggable_resource_is_tagged() {
        let v = template(&config("alice", false)).to_json().unwrap();
        for (id, r) in v["Resources"].as_object().unwrap() {
            let untaggable = [
                "AWS::S3::BucketPolicy",
                "AWS::SNS::Subscription",
                "AWS::Lambda::Permission",
                "AWS::IAM::InstanceProfile",
                "AWS::Glue::Database",
                "AWS::Glue::Table",
            ];
            if untaggable.contains(&r["Type"].as_str().unwrap()) {
                continue;
            }
            let tags = &r["Properties"]["Tags"];
            let text = tags.to_string();
            assert!(
                text.contains("Stage") && text.contains("alice"),
                "{id} is not tagged: {tags}"
            );
        }
    }
}
