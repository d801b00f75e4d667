//! The template's outputs: every name the deployer and users read after a deploy.

use super::athena::Athena;
use super::catalog::Catalog;
use super::emr::Emr;
use super::functions::{BaseB, Functions};
use super::storage::Storage;
use super::triggers::Topics;
use super::Pipeline;
use crate::resource::stepfunctions::StateMachine;
use crate::template::Handle;
use crate::value::Value;

/// Output: The stage's name.
pub const STAGE: &str = "Stage";
/// Output: The source bucket's name (exports go here).
pub const SOURCE_BUCKET: &str = "SourceBucketName";
/// Output: The warehouse bucket's name.
pub const WAREHOUSE_BUCKET: &str = "WarehouseBucketName";
/// Output: The jobs bucket's name.
pub const JOBS_BUCKET: &str = "JobsBucketName";
/// Output: The ARN of the topic that starts the ETL.
pub const ETL_TOPIC: &str = "EtlTriggerTopicArn";
/// Output: The ARN of the topic that starts base b.
pub const EMR_TOPIC: &str = "EmrTriggerTopicArn";
/// Output: The ETL function's name.
pub const ETL_FUNCTION: &str = "EtlFunctionName";
/// Output: The EMR starter's name (`emr` stages).
pub const EMR_STARTER_FUNCTION: &str = "EmrStarterFunctionName";
/// Output: The site-events function's name (`function` stages).
pub const SITE_EVENTS_FUNCTION: &str = "SiteEventsFunctionName";
/// Output: The table refresher's name.
pub const TABLE_REFRESHER_FUNCTION: &str = "TableRefresherFunctionName";
/// Output: The Glue database's name.
pub const DATABASE: &str = "GlueDatabaseName";
/// Output: The crawler's name.
pub const CRAWLER: &str = "CrawlerName";
/// Output: The Athena work group's name.
pub const WORKGROUP: &str = "AthenaWorkGroupName";
/// Output: The EMR Serverless application's id (`emr` stages).
pub const EMR_APPLICATION: &str = "EmrApplicationId";
/// Output: The ARN of the job runtime role (`emr` stages).
pub const EMR_JOB_ROLE: &str = "EmrJobRoleArn";
/// Output: Where Athena writes query results (`s3://...`).
pub const ATHENA_RESULTS: &str = "AthenaResultsLocation";
/// Output: The Spark job script's S3 URI.
pub const SPARK_JOB: &str = "SparkJobUri";
/// Output: The ARN of base a's state machine (`sharded` and `auto` stages).
pub const ETL_STATE_MACHINE: &str = "EtlStateMachineArn";

/// Everything the outputs name.
pub(super) struct Parts<'p> {
    pub storage: &'p Storage,
    pub topics: &'p Topics,
    pub catalog: &'p Catalog,
    pub emr: Option<&'p Emr>,
    pub functions: &'p Functions,
    pub athena: &'p Athena,
    pub state_machine: Option<&'p Handle<StateMachine>>,
}

pub(super) fn add(p: &mut Pipeline, parts: &Parts) {
    let Parts {
        storage,
        topics,
        catalog,
        emr,
        functions,
        athena,
        state_machine,
    } = parts;
    let warehouse = &storage.warehouse;
    let stage = p.c.stage.as_str();
    // The build's Spark job: what the EMR starter submits, and on a stage whose base b runs
    // in its function, the job to run by hand (spark-submit) against the stage's buckets.
    let spark_job = Value::sub_with(
        "s3://${Bucket}/${Key}",
        [
            ("Bucket", p.artifacts.r#ref()),
            ("Key", p.spark_key.r#ref()),
        ],
    );
    let t = &mut p.t;
    t.output(STAGE, "Stage name", stage.into());
    t.output(
        SOURCE_BUCKET,
        "Raw exports: a/<entity>.json, b/part-*.json",
        storage.source.r#ref(),
    );
    t.output(
        WAREHOUSE_BUCKET,
        "Curated tables, crawled by Glue",
        warehouse.r#ref(),
    );
    t.output(
        JOBS_BUCKET,
        "Spark job logs (logs/) and Athena results",
        storage.jobs.r#ref(),
    );
    t.output(
        ETL_TOPIC,
        "Publish here to run the base-a ETL",
        topics.etl.r#ref(),
    );
    t.output(
        EMR_TOPIC,
        match functions.base_b {
            BaseB::SiteEvents(_) => "Publish here to run base b in the site-events function",
            BaseB::EmrStarter(_) => "Publish here to run the Spark job on EMR Serverless",
        },
        topics.emr.r#ref(),
    );
    t.output(ETL_FUNCTION, "ETL function", functions.etl.r#ref());
    match &functions.base_b {
        BaseB::SiteEvents(f) => t.output(
            SITE_EVENTS_FUNCTION,
            "Base b's function (the site-events engine)",
            f.r#ref(),
        ),
        BaseB::EmrStarter(f) => t.output(EMR_STARTER_FUNCTION, "EMR starter function", f.r#ref()),
    }
    t.output(
        TABLE_REFRESHER_FUNCTION,
        "Table refresher function",
        functions.table_refresher.r#ref(),
    );
    t.output(
        DATABASE,
        "Glue database to query with Athena",
        catalog.database.r#ref(),
    );
    t.output(
        CRAWLER,
        "Glue crawler of the warehouse",
        catalog.crawler.r#ref(),
    );
    t.output(WORKGROUP, "Athena work group", athena.workgroup.r#ref());
    t.output(
        SPARK_JOB,
        "The Spark job of base b (site_events.py)",
        spark_job,
    );
    t.output(
        ATHENA_RESULTS,
        "Where Athena writes query results",
        athena.results.clone(),
    );
    if let Some(machine) = state_machine {
        t.output(
            ETL_STATE_MACHINE,
            "Base a's state machine: its executions are the sharded runs",
            machine.r#ref(),
        );
    }
    let Some(emr) = emr else {
        return;
    };
    t.output(
        EMR_APPLICATION,
        "EMR Serverless application running the Spark job",
        emr.application.r#ref(),
    );
    t.output(
        EMR_JOB_ROLE,
        "Job runtime role of the Spark job's runs",
        emr.job_role.get_att(crate::resource::iam::RoleAttr::Arn),
    );
}
