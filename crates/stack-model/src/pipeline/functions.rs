//! The functions: ETL, table refresher and base b's (the site-events engine, or the EMR
//! starter), one `bootstrap` for the three, each with its own least-privilege role and log
//! group.

use std::collections::BTreeMap;

use super::catalog::Catalog;
use super::emr::Emr;
use super::encryption::with_key;
use super::failures::Failures;
use super::policy::{logs_statement, objects, pass_role, xray_statement};
use super::shards::{BASE_A_ENGINE_ENV, SHARD_BYTES, SHARD_BYTES_ENV, STATE_MACHINE_ARN_ENV};
use super::storage::Storage;
use super::{Pipeline, FUNCTION_ENV, TABLE_FORMAT_ENV};
use crate::resource::emr_serverless::ApplicationAttr;
use crate::resource::iam::{RoleAttr, Statement};
use crate::resource::lambda::{
    Architecture, Code, Environment, Function, LogFormat, LoggingConfig, Runtime, TracingConfig,
    TracingMode,
};
use crate::resource::logs::LogGroup;
use crate::stage::{FunctionRole, RoleKind};
use crate::template::Handle;
use crate::value::Value;
use crate::warehouse::{runs_folder, Base};

pub(super) struct Functions {
    pub etl: Handle<Function>,
    pub base_b: BaseB,
    pub table_refresher: Handle<Function>,
}

/// The function the EMR topic starts, by the stage's `base_b_engine`.
pub(super) enum BaseB {
    /// Computes base b itself.
    SiteEvents(Handle<Function>),
    /// Submits the Spark job to the stage's EMR Serverless application.
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
    description: "Runs the Spark job over site events on the stage's EMR Serverless application",
};
const TABLE_REFRESHER: FunctionSpec = FunctionSpec {
    role: FunctionRole::TableRefresher,
    kind: RoleKind::TableRefresher,
    id: "TableRefresher",
    description: "Starts the Glue crawler once every table of a base is complete",
};

/// `emr`: the EMR Serverless application and its job role, on stages whose base b runs on EMR.
pub(super) fn functions(
    p: &mut Pipeline,
    s: &Storage,
    catalog: &Catalog,
    emr: Option<&Emr>,
    failures: &Failures,
) -> Functions {
    Functions {
        etl: etl(p, s, catalog, failures),
        base_b: match emr {
            Some(emr) => BaseB::EmrStarter(emr_starter(p, s, emr, failures)),
            None => BaseB::SiteEvents(site_events(p, s, failures)),
        },
        table_refresher: table_refresher(p, s, catalog, failures),
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
fn etl(p: &mut Pipeline, s: &Storage, catalog: &Catalog, failures: &Failures) -> Handle<Function> {
    let mut statements = base_statements(s, "ReadExports", "WriteBaseA", "a/*");
    if p.c.base_a_engine.has_state_machine() {
        statements.push(super::shards::start_statement(p));
    }
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
        (BASE_A_ENGINE_ENV, p.c.base_a_engine.as_str().into()),
    ]);
    if p.c.base_a_engine.has_state_machine() {
        env.extend([
            (STATE_MACHINE_ARN_ENV, super::shards::state_machine_arn(p)),
            (SHARD_BYTES_ENV, SHARD_BYTES.to_string().into()),
        ]);
    }
    function(p, &ETL, statements, env, failures)
}

/// Reads the site events `b/*` of the source and the students table, writes base b to the
/// warehouse (its runs' files, manifests and markers under `b/`).
fn site_events(p: &mut Pipeline, s: &Storage, failures: &Failures) -> Handle<Function> {
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
    function(p, &SITE_EVENTS, statements, env, failures)
}

/// Submits the Spark job to the stage's EMR Serverless application: `StartJobRun` on that
/// application only, passing the job runtime role to EMR Serverless only.
fn emr_starter(p: &mut Pipeline, s: &Storage, emr: &Emr, failures: &Failures) -> Handle<Function> {
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
        (super::EMR_APPLICATION_ID_ENV, emr.application.r#ref()),
        (
            super::EMR_JOB_ROLE_ARN_ENV,
            emr.job_role.get_att(RoleAttr::Arn),
        ),
        (super::EMR_LOG_URI_ENV, emr.log_uri.clone()),
    ]);
    let job_runs = Value::sub_with(
        "${App}/jobruns/*",
        [("App", emr.application.get_att(ApplicationAttr::Arn))],
    );
    let statements = vec![
        // StartJobRun is authorized on the application (service authorization reference,
        // "Actions defined by Amazon EMR Serverless"), and the run is tagged with the stage
        // as it starts (TagResource on the new run, as tag-on-create is authorized).
        Statement::allow(
            "StartJobRun",
            &["emr-serverless:StartJobRun", "emr-serverless:TagResource"],
            vec![
                emr.application.get_att(ApplicationAttr::Arn),
                job_runs.clone(),
            ],
        ),
        // Which run a repeated message's client token returned, and whether the run holding
        // base b's lease has ended (crate etl, `lease`).
        Statement::allow("ReadJobRuns", &["emr-serverless:GetJobRun"], vec![job_runs]),
        // Base b's lease, taken for the job run and handed to it (conditional writes are
        // s3:PutObject).
        Statement::allow(
            "BaseBLease",
            &["s3:GetObject", "s3:PutObject"],
            vec![objects(
                &s.warehouse_arn,
                &format!("{}*", runs_folder(Base::B)),
            )],
        ),
        pass_role(
            "PassJobRole",
            emr.job_role.get_att(RoleAttr::Arn),
            "emr-serverless.amazonaws.com",
        ),
        logs_statement(logs_arn(p, FunctionRole::EmrStarter)),
        xray_statement(),
    ];
    let statements = with_key(p, statements, true);
    function(p, &EMR_STARTER, statements, env, failures)
}

/// Reads the markers, starts the crawler.
fn table_refresher(
    p: &mut Pipeline,
    s: &Storage,
    catalog: &Catalog,
    failures: &Failures,
) -> Handle<Function> {
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
    function(p, &TABLE_REFRESHER, statements, env, failures)
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
    mut statements: Vec<Statement>,
    mut variables: BTreeMap<&'static str, Value>,
    failures: &Failures,
) -> Handle<Function> {
    statements.extend(failures.statements(p));
    variables.insert(super::FAILURE_QUEUE_ENV, failures.url());
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
    let function = p.t.add(
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
    );
    failures.invoke_config(p, spec.id, &function);
    function
}
