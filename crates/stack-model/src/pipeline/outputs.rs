//! The template's outputs: every name the deployer and users read after a deploy.

use super::athena::Athena;
use super::catalog::Catalog;
use super::emr::Emr;
use super::functions::{BaseB, Functions};
use super::storage::Storage;
use super::triggers::Topics;
use super::Pipeline;
use crate::value::Value;

pub const STAGE: &str = "Stage";
pub const SOURCE_BUCKET: &str = "SourceBucketName";
pub const WAREHOUSE_BUCKET: &str = "WarehouseBucketName";
pub const JOBS_BUCKET: &str = "JobsBucketName";
pub const ETL_TOPIC: &str = "EtlTriggerTopicArn";
pub const EMR_TOPIC: &str = "EmrTriggerTopicArn";
pub const ETL_FUNCTION: &str = "EtlFunctionName";
pub const EMR_STARTER_FUNCTION: &str = "EmrStarterFunctionName";
pub const SITE_EVENTS_FUNCTION: &str = "SiteEventsFunctionName";
pub const TABLE_REFRESHER_FUNCTION: &str = "TableRefresherFunctionName";
pub const DATABASE: &str = "GlueDatabaseName";
pub const CRAWLER: &str = "CrawlerName";
pub const WORKGROUP: &str = "AthenaWorkGroupName";
pub const EMR_APPLICATION: &str = "EmrApplicationId";
pub const EMR_JOB_ROLE: &str = "EmrJobRoleArn";
pub const ATHENA_RESULTS: &str = "AthenaResultsLocation";
pub const SPARK_JOB: &str = "SparkJobUri";

/// Everything the outputs name.
pub(super) struct Parts<'p> {
    pub storage: &'p Storage,
    pub topics: &'p Topics,
    pub catalog: &'p Catalog,
    pub emr: Option<&'p Emr>,
    pub functions: &'p Functions,
    pub athena: &'p Athena,
}

pub(super) fn add(p: &mut Pipeline, parts: &Parts) {
    let Parts {
        storage,
        topics,
        catalog,
        emr,
        functions,
        athena,
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
