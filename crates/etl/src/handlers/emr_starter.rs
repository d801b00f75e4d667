//! The EMR starter: a message on the stage's EMR topic submits the Spark job, once, to the
//! stage's EMR Serverless application (`StartJobRun`). The application starts itself for the
//! run (auto-start) and stops itself when idle (auto-stop); the run's workers are released
//! when it ends.

use aws_lambda_events::event::sns::SnsEvent;
use aws_sdk_emrserverless::operation::start_job_run::builders::StartJobRunFluentBuilder;
use aws_sdk_emrserverless::types::{
    ConfigurationOverrides, JobDriver, MonitoringConfiguration, S3MonitoringConfiguration,
    SparkSubmit,
};
use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use serde::Serialize;

use std::time::Duration;

use super::{required, EnvError};
use crate::lease::{self, LeaseBody, Terms};
use crate::runs::{self, Delivery, RunRecord};
use crate::storage::{S3Bucket, Storage};
use crate::warehouse::{table, Base, DataFormat};
use stack_model::pipeline::{
    EMR_APPLICATION_ID_ENV, EMR_JOB_ROLE_ARN_ENV, EMR_LOG_URI_ENV, SPARK_JOB_URI_ENV,
    TABLE_FORMAT_ENV,
};
use stack_model::stage::PROJECT;

/// The job's settings, from the template through the function's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    pub stage: String,
    pub source_bucket: String,
    pub warehouse_bucket: String,
    /// `s3://<artifacts>/spark/<hash>/site_events.py`.
    pub spark_job_uri: String,
    /// The stage's EMR Serverless application.
    pub application_id: String,
    /// The job runtime role the run acts as.
    pub job_role_arn: String,
    /// `s3://<jobs>/logs/`: where the run's driver and executors write their logs.
    pub log_uri: String,
    pub students_format: DataFormat,
}

impl JobSettings {
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        Ok(JobSettings {
            stage: required(get, "STAGE")?,
            source_bucket: required(get, "SOURCE_BUCKET")?,
            warehouse_bucket: required(get, "WAREHOUSE_BUCKET")?,
            spark_job_uri: required(get, SPARK_JOB_URI_ENV)?,
            application_id: required(get, EMR_APPLICATION_ID_ENV)?,
            job_role_arn: required(get, EMR_JOB_ROLE_ARN_ENV)?,
            log_uri: required(get, EMR_LOG_URI_ENV)?,
            students_format: get(TABLE_FORMAT_ENV)
                .and_then(|f| DataFormat::parse(&f))
                .unwrap_or_default(),
        })
    }

    /// The job's arguments (after its script). `run` names the job's tables' run folders and
    /// `_SUCCESS` markers, so the table refresher can tell this run's tables from the previous
    /// run's.
    pub fn arguments(&self, run: &str) -> Vec<String> {
        let students = table("students").expect("the contract has students");
        let students_format = match self.students_format {
            DataFormat::Parquet => "parquet",
            DataFormat::Ndjson => "json",
        };
        [
            "--events",
            &format!("s3://{}/b/", self.source_bucket),
            "--students",
            &format!("s3://{}/{}", self.warehouse_bucket, students.prefix()),
            "--students-format",
            students_format,
            "--output",
            &format!("s3://{}/b/", self.warehouse_bucket),
            "--run-id",
            run,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The job run's name: the stage and the run.
    pub fn run_name(&self, run: &str) -> String {
        format!("{PROJECT}-{}-site-events-{run}", self.stage)
    }
}

/// The StartJobRun request: the Spark job with its arguments, as the job runtime role, its
/// logs in the jobs bucket. `client_token` makes a repeated request (a duplicate delivery of
/// one SNS message) return the run the first one started instead of starting another: EMR
/// Serverless keeps a job run per client token (EMR Serverless API reference, "StartJobRun":
/// `clientToken`, "the client idempotency token of the job run to start").
pub fn request(
    client: &aws_sdk_emrserverless::Client,
    s: &JobSettings,
    run: &str,
    client_token: &str,
) -> StartJobRunFluentBuilder {
    let spark = SparkSubmit::builder()
        .entry_point(&s.spark_job_uri)
        .set_entry_point_arguments(Some(s.arguments(run)))
        .build()
        .expect("the entry point is set");
    let logs = MonitoringConfiguration::builder()
        .s3_monitoring_configuration(
            S3MonitoringConfiguration::builder()
                .log_uri(&s.log_uri)
                .build(),
        )
        .build();
    client
        .start_job_run()
        .application_id(&s.application_id)
        .execution_role_arn(&s.job_role_arn)
        .name(s.run_name(run))
        .client_token(client_token)
        // EMR Serverless cancels the run after this long, so base b's lease, held a margin
        // longer, never lapses under a live run.
        .execution_timeout_minutes(JOB_TIMEOUT_MINUTES)
        // The stage's tag names the run to the deploy identity (deploy_policy: a deploy waits
        // for or cancels the stage's runs, `logs spark` reads them).
        .tags("Project", PROJECT)
        .tags("Stage", &s.stage)
        .job_driver(JobDriver::SparkSubmit(spark))
        .configuration_overrides(
            ConfigurationOverrides::builder()
                .monitoring_configuration(logs)
                .build(),
        )
}

/// How long a job run may run: EMR Serverless cancels it then (`executionTimeoutMinutes`).
pub const JOB_TIMEOUT_MINUTES: i64 = 120;

/// How long base b's lease is held for a job run: its timeout, and an hour for the time it may
/// wait for capacity before it runs (the lease is handed back early by the job's last step,
/// or taken over once EMR Serverless reports the run ended).
pub const JOB_LEASE: Duration = Duration::from_secs((JOB_TIMEOUT_MINUTES as u64 + 60) * 60);

/// The lease holder a job run is named as: `spark job run <id>`.
const JOB_HOLDER: &str = "spark job run ";

/// One job run the starter submitted.
#[derive(Debug, Serialize)]
pub struct Started {
    pub application_id: String,
    pub job_run_id: String,
    pub name: String,
    /// The run id the job's tables and markers carry.
    pub run: String,
    /// A repeated delivery of a message whose run was started before: nothing new started.
    pub duplicate: bool,
}

/// The AWS clients and the warehouse bucket the starter uses.
pub struct StarterContext {
    pub emr: aws_sdk_emrserverless::Client,
    pub warehouse: Arc<S3Bucket>,
    pub settings: JobSettings,
}

/// Submits one job run per message, each holding base b's lease.
pub async fn handle(
    event: LambdaEvent<SnsEvent>,
    ctx: Arc<StarterContext>,
) -> Result<Vec<Started>, lambda_runtime::Error> {
    let remaining = super::remaining(event.context.deadline);
    let mut started = Vec::new();
    for record in &event.payload.records {
        let message_id = record.sns.message_id.clone();
        let handle = tokio::runtime::Handle::current();
        let ctx = ctx.clone();
        let one = tokio::task::spawn_blocking(move || {
            start_one(&handle, &ctx, &message_id, super::function_lease(remaining))
        })
        .await??;
        started.push(one);
    }
    Ok(started)
}

/// Takes base b's lease, starts the job run, and hands the lease to it. Blocking: EMR
/// Serverless is called through `handle`.
pub fn start_one(
    handle: &tokio::runtime::Handle,
    ctx: &StarterContext,
    message_id: &str,
    terms: Terms,
) -> Result<Started, lambda_runtime::Error> {
    let s = &ctx.settings;
    let run = crate::run::new_run_id();
    let ended = |l: &LeaseBody| job_run_ended(handle, ctx, l);
    let warehouse: &dyn Storage = ctx.warehouse.as_ref();
    // A message whose job run succeeded or still runs starts nothing.
    if let Delivery::Duplicate { run: prior } = runs::claim(warehouse, Base::B, message_id, &run)? {
        tracing::info!(message_id = %message_id, run = %prior, "a repeated delivery: its job run was started before; nothing new started");
        let job_run_id = runs::read(warehouse, Base::B, &prior)?
            .and_then(|r| r.job_run_id)
            .unwrap_or_default();
        return Ok(Started {
            application_id: s.application_id.clone(),
            job_run_id,
            name: s.run_name(&prior),
            run: prior,
            duplicate: true,
        });
    }
    let mut lease = lease::take_unless_ended(
        warehouse,
        Base::B,
        &run,
        "emr starter (submitting the job run)",
        terms,
        &ended,
    )?;
    let expires = chrono::Utc::now().timestamp() + JOB_LEASE.as_secs() as i64;
    let record = RunRecord::started(Base::B, &run, "spark job", Some(message_id), expires);
    let out = match handle.block_on(request(&ctx.emr, s, &run, message_id).send()) {
        Ok(out) => out,
        Err(e) => {
            lease.release();
            let error = format!(
                "StartJobRun: {}",
                aws_sdk_emrserverless::error::DisplayErrorContext(e)
            );
            record.failed(error.clone(), true, None).write(warehouse)?;
            return Err(error.into());
        }
    };
    // A repeated message id returns the run its first delivery started (the client token):
    // that run is not this one, and this one's lease goes back.
    let name = handle
        .block_on(
            ctx.emr
                .get_job_run()
                .application_id(out.application_id())
                .job_run_id(out.job_run_id())
                .send(),
        )
        .ok()
        .and_then(|r| r.job_run().and_then(|j| j.name()).map(str::to_owned))
        .unwrap_or_else(|| s.run_name(&run));
    let duplicate = name != s.run_name(&run);
    if duplicate {
        lease.release();
        tracing::info!(message_id = %message_id, job_run = %out.job_run_id(), "a repeated delivery: its job run was started before; nothing new started");
    } else {
        lease.confirm_as(&format!("{JOB_HOLDER}{}", out.job_run_id()), JOB_LEASE)?;
        // The job run writes its outcome into this record when it ends.
        let mut record = record;
        record.job_run_id = Some(out.job_run_id().to_owned());
        record.write(warehouse)?;
        tracing::info!(
            message_id = %message_id,
            application = %out.application_id(),
            job_run = %out.job_run_id(),
            run = %run,
            "Spark job run submitted; it holds base b's lease"
        );
    }
    Ok(Started {
        application_id: out.application_id().to_owned(),
        job_run_id: out.job_run_id().to_owned(),
        run: name
            .rsplit_once("-site-events-")
            .map_or_else(|| run.clone(), |(_, r)| r.to_owned()),
        name,
        duplicate,
    })
}

/// Whether the job run a lease names has ended (succeeded, failed or been cancelled) without
/// handing the lease back. A lease held by anything else has not ended.
fn job_run_ended(handle: &tokio::runtime::Handle, ctx: &StarterContext, l: &LeaseBody) -> bool {
    use aws_sdk_emrserverless::types::JobRunState;
    let Some(id) = l.holder.strip_prefix(JOB_HOLDER) else {
        return false;
    };
    let state = handle
        .block_on(
            ctx.emr
                .get_job_run()
                .application_id(&ctx.settings.application_id)
                .job_run_id(id)
                .send(),
        )
        .ok()
        .and_then(|r| r.job_run().map(|j| j.state().clone()));
    matches!(
        state,
        Some(JobRunState::Success | JobRunState::Failed | JobRunState::Cancelled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn settings() -> JobSettings {
        let env = |n: &str| -> Option<String> {
            Some(
                match n {
                    "STAGE" => "alice",
                    "SOURCE_BUCKET" => "src",
                    "WAREHOUSE_BUCKET" => "wh",
                    "SPARK_JOB_URI" => "s3://art/spark/abc/site_events.py",
                    "EMR_APPLICATION_ID" => "00fabcdef1234567",
                    "EMR_JOB_ROLE_ARN" => "arn:aws:iam::123456789012:role/job",
                    "EMR_LOG_URI" => "s3://jobs/logs/",
                    "TABLE_FORMAT" => "parquet",
                    _ => return None,
                }
                .to_string(),
            )
        };
        JobSettings::from_env(&env).unwrap()
    }

    fn client() -> aws_sdk_emrserverless::Client {
        let conf = aws_sdk_emrserverless::Config::builder()
            .behavior_version(aws_sdk_emrserverless::config::BehaviorVersion::latest())
            .region(aws_sdk_emrserverless::config::Region::new("us-east-1"))
            .build();
        aws_sdk_emrserverless::Client::from_conf(conf)
    }

    #[test]
    fn the_request_runs_the_job_once_as_the_job_role_with_its_logs_in_the_jobs_bucket() {
        let s = settings();
        let req = request(&client(), &s, "r1", "message-1");
        let input = req.as_input();
        assert_eq!(
            input.get_application_id().as_deref(),
            Some("00fabcdef1234567")
        );
        assert_eq!(
            input.get_execution_role_arn().as_deref(),
            Some("arn:aws:iam::123456789012:role/job")
        );
        assert_eq!(
            input.get_name().as_deref(),
            Some("pdcase-alice-site-events-r1")
        );
        assert_eq!(input.get_client_token().as_deref(), Some("message-1"));
        let tags = input.get_tags().as_ref().unwrap();
        assert_eq!(tags.get("Stage").map(String::as_str), Some("alice"));
        let Some(JobDriver::SparkSubmit(spark)) = input.get_job_driver() else {
            panic!("a Spark job");
        };
        assert_eq!(spark.entry_point(), "s3://art/spark/abc/site_events.py");
        let args = spark.entry_point_arguments();
        let pairs: Vec<(&str, &str)> = args
            .chunks(2)
            .map(|c| (c[0].as_str(), c[1].as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("--events", "s3://src/b/"),
                ("--students", "s3://wh/a/students/"),
                ("--students-format", "parquet"),
                ("--output", "s3://wh/b/"),
                ("--run-id", "r1"),
            ]
        );
        let logs = input
            .get_configuration_overrides()
            .as_ref()
            .and_then(|o| o.monitoring_configuration())
            .and_then(|m| m.s3_monitoring_configuration())
            .and_then(|s| s.log_uri());
        assert_eq!(logs, Some("s3://jobs/logs/"));
    }

    #[test]
    fn a_missing_setting_is_named() {
        let env = |n: &str| (n != "EMR_JOB_ROLE_ARN").then(|| "x".to_string());
        let e = JobSettings::from_env(&env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable EMR_JOB_ROLE_ARN: is not set"
        );
    }
}
