//! The functions: ETL, table refresher and base b's (the site-events engine, or the EMR
//! starter), one `bootstrap` for the three, each with its own least-privilege role and log
//! group.

use std::collections::BTreeMap;

use super::catalog::Catalog;
use super::emr::Emr;
use super::encryption::with_key;
use super::policy::{logs_statement, objects, pass_role, xray_statement};
use super::storage::Storage;
use super::{Pipeline, FUNCTION_ENV, TABLE_FORMAT_ENV};
use crate::resource::iam::{Condition, RoleAttr, Statement};
use crate::resource::lambda::{
    Architecture, Code, Environment, Function, LogFormat, LoggingConfig, Runtime, TracingConfig,
    TracingMode,
};
use crate::resource::logs::LogGroup;
use crate::stage::{FunctionRole, RoleKind};
use crate::template::Handle;
use crate::value::Value;

pub(super) struct Functions {
    pub etl: Handle<Function>,
    pub base_b: BaseB,
    pub table_refresher: Handle<Function>,
}

/// The function the EMR topic starts, by the stage's `base_b_engine`.
pub(super) enum BaseB {
    /// Computes base b itself.
    SiteEvents(Handle<Function>),
    /// Starts the transient cluster that runs the Spark job.
    EmrStarter(Handle<Function>),
}

/// Ids of a function's pieces.
struct FunctionSpec {
    role: FunctionRole,
    kind: RoleKind,
    id: &'static str,
    description: &'static str,
}

const ETL: FunctionSpec = FunctionSpec {
    role: FunctionRole::Etl,
    kind: RoleKind::Etl,
    id: "Etl",
    description: "Builds the base-a warehouse tables from the JSON exports",
};
const SITE_EVENTS: FunctionSpec = FunctionSpec {
    role: FunctionRole::SiteEvents,
    kind: RoleKind::SiteEvents,
    id: "SiteEvents",
    description: "Builds the base-b warehouse tables from the site events (no cluster)",
};
const EMR_STARTER: FunctionSpec = FunctionSpec {
    role: FunctionRole::EmrStarter,
    kind: RoleKind::EmrStarter,
    id: "EmrStarter",
    description: "Starts a transient EMR cluster that runs the Spark job over site events",
};
const TABLE_REFRESHER: FunctionSpec = FunctionSpec {
    role: FunctionRole::TableRefresher,
    kind: RoleKind::TableRefresher,
    id: "TableRefresher",
    description: "Starts the Glue crawler once every table of a base is complete",
};

/// `emr`: the cluster's roles and network, on stages whose base b runs on EMR.
pub(super) fn functions(
    p: &mut Pipeline,
    s: &Storage,
    catalog: &Catalog,
    emr: Option<&Emr>,
) -> Functions {
    Functions {
        etl: etl(p, s, catalog),
        base_b: match emr {
            Some(emr) => BaseB::EmrStarter(emr_starter(p, s, emr)),
            None => BaseB::SiteEvents(site_events(p, s)),
        },
        table_refresher: table_refresher(p, s, catalog),
    }
}

fn crawl(catalog: &Catalog) -> Statement {
    Statement::allow(
        "StartCrawler",
        &["glue:StartCrawler", "glue:GetCrawler"],
        vec![catalog.crawler_arn.clone()],
    )
}

fn logs_arn(p: &Pipeline, f: FunctionRole) -> Value {
    Value::sub(format!(
        "arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{}:*",
        p.c.stage.log_group_name(f)
    ))
}

/// What a function that builds one base does with the buckets: lists both, reads the base's
/// input `pattern` from the source, and writes (and replaces, and removes) the base's objects
/// under the same `pattern` of the warehouse.
fn base_statements(s: &Storage, read: &str, write: &str, pattern: &str) -> Vec<Statement> {
    vec![
        Statement::allow(
            "ListBuckets",
            &["s3:ListBucket"],
            vec![s.source_arn.clone(), s.warehouse_arn.clone()],
        ),
        Statement::allow(
            read,
            &["s3:GetObject"],
            vec![objects(&s.source_arn, pattern)],
        ),
        Statement::allow(
            write,
            &[
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            vec![objects(&s.warehouse_arn, pattern)],
        ),
    ]
}

/// Reads `a/*.json` from the source, writes base a to the warehouse.
fn etl(p: &mut Pipeline, s: &Storage, catalog: &Catalog) -> Handle<Function> {
    let mut statements = base_statements(s, "ReadExports", "WriteBaseA", "a/*");
    statements.extend([
        crawl(catalog),
        logs_statement(logs_arn(p, FunctionRole::Etl)),
        xray_statement(),
    ]);
    let statements = with_key(p, statements, true);
    let mut env = env(p, ETL.role);
    env.extend([
        ("SOURCE_BUCKET", s.source.r#ref()),
        ("WAREHOUSE_BUCKET", s.warehouse_name.clone()),
        ("CRAWLER_NAME", catalog.crawler.r#ref()),
        ("DATABASE_NAME", catalog.database.r#ref()),
        (TABLE_FORMAT_ENV, p.c.table_format.as_str().into()),
    ]);
    function(p, &ETL, statements, env)
}

/// Reads the site events `b/*` of the source and the students table, writes base b to the
/// warehouse (its runs' files, manifests and markers under `b/`).
fn site_events(p: &mut Pipeline, s: &Storage) -> Handle<Function> {
    let mut statements = base_statements(s, "ReadEvents", "WriteBaseB", "b/*");
    statements.extend([
        // Base b joins the students table of base a.
        Statement::allow(
            "ReadStudents",
            &["s3:GetObject"],
            vec![objects(&s.warehouse_arn, "a/students/*")],
        ),
        logs_statement(logs_arn(p, FunctionRole::SiteEvents)),
        xray_statement(),
    ]);
    let statements = with_key(p, statements, true);
    let mut env = env(p, SITE_EVENTS.role);
    env.extend([
        ("SOURCE_BUCKET", s.source.r#ref()),
        ("WAREHOUSE_BUCKET", s.warehouse_name.clone()),
        (TABLE_FORMAT_ENV, p.c.table_format.as_str().into()),
    ]);
    function(p, &SITE_EVENTS, statements, env)
}

/// Starts the transient cluster: RunJobFlow, passing the stage's two EMR roles.
fn emr_starter(p: &mut Pipeline, s: &Storage, emr: &Emr) -> Handle<Function> {
    let c = &p.c.emr;
    let mut env = env(p, EMR_STARTER.role);
    env.extend([
        ("SOURCE_BUCKET", s.source.r#ref()),
        ("WAREHOUSE_BUCKET", s.warehouse_name.clone()),
        ("JOBS_BUCKET", s.jobs.r#ref()),
        (TABLE_FORMAT_ENV, p.c.table_format.as_str().into()),
        (
            super::SPARK_JOB_URI_ENV,
            Value::sub_with(
                "s3://${Bucket}/${Key}",
                [
                    ("Bucket", p.artifacts.r#ref()),
                    ("Key", p.spark_key.r#ref()),
                ],
            ),
        ),
        ("EMR_RELEASE_LABEL", c.release_label.clone().into()),
        (
            "EMR_MASTER_INSTANCE_TYPE",
            c.master_instance_type.clone().into(),
        ),
        (
            "EMR_CORE_INSTANCE_TYPE",
            c.core_instance_type.clone().into(),
        ),
        (
            "EMR_CORE_INSTANCE_COUNT",
            c.core_instance_count.to_string().into(),
        ),
        (
            "EMR_IDLE_TIMEOUT_SECONDS",
            (u64::from(c.idle_timeout_minutes) * 60).to_string().into(),
        ),
        ("EMR_SUBNET_ID", emr.subnet.clone()),
        ("EMR_SERVICE_ROLE", emr.service_role.r#ref()),
        ("EMR_INSTANCE_PROFILE", emr.instance_profile.r#ref()),
        (
            "EMR_LOG_URI",
            Value::sub_with("s3://${Bucket}/logs/", [("Bucket", s.jobs.r#ref())]),
        ),
    ]);
    let statements = vec![
        // RunJobFlow has no resource-level permissions: `*` is the narrowest AWS allows.
        // The tag condition keeps the starter to clusters tagged as this stage's.
        Statement {
            condition: Condition::default().with(
                "StringEquals",
                "aws:RequestTag/Stage",
                p.c.stage.as_str(),
            ),
            ..Statement::allow(
                "RunJobFlow",
                &["elasticmapreduce:RunJobFlow"],
                vec!["*".into()],
            )
        },
        // RunJobFlow with tags and an auto-termination policy also needs AddTags and
        // PutAutoTerminationPolicy on the new cluster (what the AWS review behind issue 12
        // found; the permission is not checked by anything here: the emulator's EMR is
        // metadata, and parliament only knows the action exists).
        Statement::allow(
            "ConfigureClusters",
            &[
                "elasticmapreduce:AddTags",
                "elasticmapreduce:PutAutoTerminationPolicy",
            ],
            vec![Value::sub(
                "arn:${AWS::Partition}:elasticmapreduce:${AWS::Region}:${AWS::AccountId}:cluster/*",
            )],
        ),
        // EMR creates its clean-up service-linked role, AWSServiceRoleForEMRCleanup, during
        // the first cluster's creation in an account ("Using service-linked roles for Amazon
        // EMR"), with the caller's permission to create it. Only that role, only for EMR.
        Statement {
            condition: Condition::default().with(
                "StringEquals",
                "iam:AWSServiceName",
                "elasticmapreduce.amazonaws.com",
            ),
            ..Statement::allow(
                "CreateEmrCleanupRole",
                &["iam:CreateServiceLinkedRole"],
                vec![Value::sub(
                    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/elasticmapreduce.amazonaws.com*/AWSServiceRoleForEMRCleanup*",
                )],
            )
        },
        pass_role(
            "PassServiceRole",
            emr.service_role.get_att(RoleAttr::Arn),
            "elasticmapreduce.amazonaws.com",
        ),
        pass_role(
            "PassInstanceRole",
            emr.instance_role.get_att(RoleAttr::Arn),
            "ec2.amazonaws.com",
        ),
        logs_statement(logs_arn(p, FunctionRole::EmrStarter)),
        xray_statement(),
    ];
    function(p, &EMR_STARTER, statements, env)
}

/// Reads the markers, starts the crawler.
fn table_refresher(p: &mut Pipeline, s: &Storage, catalog: &Catalog) -> Handle<Function> {
    let mut env = env(p, TABLE_REFRESHER.role);
    env.extend([
        ("WAREHOUSE_BUCKET", s.warehouse_name.clone()),
        ("CRAWLER_NAME", catalog.crawler.r#ref()),
    ]);
    let statements = vec![
        Statement::allow(
            "ListWarehouse",
            &["s3:ListBucket"],
            vec![s.warehouse_arn.clone()],
        ),
        // The markers say which run completed each table.
        Statement::allow(
            "ReadMarkers",
            &["s3:GetObject"],
            vec![objects(&s.warehouse_arn, "*/_SUCCESS")],
        ),
        crawl(catalog),
        logs_statement(logs_arn(p, FunctionRole::TableRefresher)),
        xray_statement(),
    ];
    let statements = with_key(p, statements, false);
    function(p, &TABLE_REFRESHER, statements, env)
}

fn env(p: &Pipeline, role: FunctionRole) -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        (FUNCTION_ENV, Value::from(role.as_str())),
        ("STAGE", p.c.stage.as_str().into()),
        ("RUST_LOG", "info".into()),
    ])
}

/// The function with its role and log group.
fn function(
    p: &mut Pipeline,
    spec: &FunctionSpec,
    statements: Vec<Statement>,
    variables: BTreeMap<&'static str, Value>,
) -> Handle<Function> {
    let variables = variables
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let role = p.role(
        &format!("{}Role", spec.id),
        spec.kind,
        &format!("Execution role of the {} function", spec.role.as_str()),
        &["lambda.amazonaws.com"],
        vec![],
        statements,
    );
    let removal = p.stateful();
    let tags = p.tags();
    let log_group = p.t.add_with(
        &format!("{}LogGroup", spec.id),
        LogGroup {
            log_group_name: Some(p.c.stage.log_group_name(spec.role).into()),
            retention_in_days: Some(p.c.log_retention),
            kms_key_id: p.key.clone(),
            tags: tags.clone(),
        },
        removal,
    );
    p.t.add(
        &format!("{}Function", spec.id),
        Function {
            function_name: Some(p.c.stage.function_name(spec.role).into()),
            description: Some(spec.description.into()),
            runtime: Runtime::ProvidedAl2023,
            handler: "bootstrap".into(),
            architectures: vec![Architecture::X86_64],
            code: Code {
                s3_bucket: p.artifacts.r#ref(),
                s3_key: p.lambda_key.r#ref(),
            },
            role: role.get_att(RoleAttr::Arn),
            memory_size: p.c.lambda.memory_mb,
            timeout: p.c.lambda.timeout_seconds,
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
