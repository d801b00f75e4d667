//! EMR Serverless: the stage's Spark application and the job runtime role its runs act as
//! (stages whose `base_b_engine` is `emr`).
//!
//! A job run asks the application for workers, billed per second from when they are ready,
//! and gives them back when it ends; nothing is provisioned between runs. The application
//! starts itself when a run is submitted (auto-start) and stops itself after
//! `emr.idle_stop_minutes` without one (auto-stop). It has no pre-initialized capacity, which
//! would be billed while idle. Its maximum capacity caps what all its runs hold together: a
//! stage's cost guard (EMR Serverless user guide, "Configuring an application").
//!
//! No network: a job that reads and writes only Amazon S3 in its own region needs no VPC (EMR
//! Serverless user guide, "Configuring VPC access": without a network configuration a job
//! reaches S3 and the region's AWS services, not resources inside a VPC). The stage config's
//! `emr.subnet_ids` and `emr.security_group_ids` give the application a VPC for a job that
//! needs one; EMR Serverless then creates network interfaces in those subnets.
//!
//! Spark's logs (driver and executors) go to the jobs bucket under `logs/`, written by the
//! job runtime role (EMR Serverless user guide, "Logging and monitoring: Amazon S3"):
//! `logs/applications/<application>/jobs/<run>/SPARK_DRIVER/stdout.gz` holds what the job
//! prints (`deployer logs spark` reads it).

use super::policy::{folder, objects, students_folder};
use super::storage::Storage;
use super::Pipeline;
use crate::resource::emr_serverless::{
    Application, ApplicationType, Architecture, AutoStartConfiguration, AutoStopConfiguration,
    MaximumCapacity, MonitoringConfiguration, NetworkConfiguration, S3MonitoringConfiguration,
};
use crate::resource::iam::{Role, Statement};
use crate::stage::RoleKind;
use crate::template::Handle;
use crate::value::Value;

/// The prefix of the jobs bucket the application's runs write their logs under.
pub const LOG_PREFIX: &str = "logs/";

pub(super) struct Emr {
    pub application: Handle<Application>,
    /// The job runtime role every run acts as.
    pub job_role: Handle<Role>,
    /// `s3://<jobs bucket>/logs/`.
    pub log_uri: Value,
}

pub(super) fn emr(p: &mut Pipeline, storage: &Storage) -> Emr {
    let statements = super::encryption::with_key(p, job_statements(p, storage), true);
    let job_role = p.role(
        "EmrJobRole",
        RoleKind::EmrJob,
        "Job runtime role of base b's Spark job on EMR Serverless",
        &["emr-serverless.amazonaws.com"],
        vec![],
        statements,
    );
    let log_uri = Value::sub_with(
        format!("s3://${{Bucket}}/{LOG_PREFIX}"),
        [("Bucket", storage.jobs.r#ref())],
    );
    let c = &p.c.emr;
    let application = Application {
        name: p.c.stage.emr_application_name().into(),
        r#type: ApplicationType::Spark,
        release_label: c.release_label.clone(),
        // The job is PySpark with no native code: Graviton's workers cost about 20% less per
        // vCPU-hour than x86's for the same Spark (EMR Serverless pricing).
        architecture: Architecture::Arm64,
        auto_start_configuration: AutoStartConfiguration { enabled: true },
        auto_stop_configuration: AutoStopConfiguration {
            enabled: true,
            idle_timeout_minutes: c.idle_stop_minutes,
        },
        maximum_capacity: MaximumCapacity {
            cpu: format!("{} vCPU", c.max_vcpu),
            memory: format!("{} GB", c.max_memory_gb),
            disk: None,
        },
        network_configuration: c.network.as_ref().map(|n| NetworkConfiguration {
            subnet_ids: n.subnet_ids.clone(),
            security_group_ids: n.security_group_ids.clone(),
        }),
        monitoring_configuration: Some(MonitoringConfiguration {
            s3_monitoring_configuration: S3MonitoringConfiguration {
                log_uri: log_uri.clone(),
                encryption_key_arn: p.key.clone(),
            },
        }),
        tags: p.tags(),
    };
    let application = p.t.add("EmrApplication", application);
    Emr {
        application,
        job_role,
        log_uri,
    }
}

/// What the Spark job reads and writes through EMRFS, and its logs.
///
/// The S3 actions are those AWS documents for a job runtime role (EMR Serverless user guide,
/// "Job runtime roles") narrowed to the job's own prefixes: EMRFS lists multipart uploads and
/// parts to abort its own, reads the bucket's location, and Hadoop probes a folder's own key
/// and its `_$folder$` marker (`b`, `b_$folder$`), which `b/*` does not cover. The job itself
/// is read under `spark/*` of the artifacts bucket: content-addressed keys, so a hotswapped
/// job (a new key) is readable without a change of the role.
fn job_statements(p: &Pipeline, s: &Storage) -> Vec<Statement> {
    let artifacts_arn = p.artifacts_arn();
    let read = ["s3:GetObject"];
    let write = [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ];
    let students = students_folder(&s.warehouse_arn);
    vec![
        Statement::allow(
            "ListBuckets",
            &[
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:GetBucketLocation",
            ],
            vec![
                s.source_arn.clone(),
                s.warehouse_arn.clone(),
                s.jobs_arn.clone(),
            ],
        ),
        Statement::allow("ReadEvents", &read, folder(&s.source_arn, "b")),
        Statement::allow("ReadStudents", &read, students),
        Statement::allow("WriteBaseB", &write, folder(&s.warehouse_arn, "b")),
        Statement::allow(
            "WriteLogs",
            &write,
            vec![objects(&s.jobs_arn, &format!("{LOG_PREFIX}*"))],
        ),
        Statement::allow(
            "ReadSparkJob",
            &["s3:GetObject"],
            vec![objects(&artifacts_arn, "spark/*")],
        ),
    ]
}
