//! The EMR starter: a message on the stage's EMR topic starts a transient cluster that runs
//! the Spark job once and terminates.

use aws_lambda_events::event::sns::SnsEvent;
use aws_sdk_emr::operation::run_job_flow::builders::RunJobFlowFluentBuilder;
use aws_sdk_emr::types::{
    ActionOnFailure, Application, AutoTerminationPolicy, HadoopJarStepConfig, InstanceGroupConfig,
    InstanceRoleType, JobFlowInstancesConfig, MarketType, StepConfig, Tag,
};
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use super::{required, EnvError};
use crate::warehouse::{table, DataFormat};
use stack_model::pipeline::{EMR_MANAGED_POLICY_TAG, TABLE_FORMAT_ENV};
use stack_model::stage::PROJECT;

/// The cluster and job settings, from the stage config through the function's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    pub stage: String,
    pub source_bucket: String,
    pub warehouse_bucket: String,
    pub spark_job_uri: String,
    pub release_label: String,
    pub master_instance_type: String,
    pub core_instance_type: String,
    pub core_instance_count: i32,
    pub idle_timeout_seconds: i64,
    pub service_role: String,
    pub instance_profile: String,
    /// The subnet the cluster runs in, tagged for EMR's managed policy.
    pub subnet_id: String,
    pub log_uri: String,
    pub students_format: DataFormat,
}

impl JobSettings {
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let number = |name: &'static str| -> Result<i64, EnvError> {
            let v = required(get, name)?;
            v.parse().map_err(|_| EnvError {
                name,
                problem: format!("`{v}` is not a whole number"),
            })
        };
        Ok(JobSettings {
            stage: required(get, "STAGE")?,
            source_bucket: required(get, "SOURCE_BUCKET")?,
            warehouse_bucket: required(get, "WAREHOUSE_BUCKET")?,
            spark_job_uri: required(get, "SPARK_JOB_URI")?,
            release_label: required(get, "EMR_RELEASE_LABEL")?,
            master_instance_type: required(get, "EMR_MASTER_INSTANCE_TYPE")?,
            core_instance_type: required(get, "EMR_CORE_INSTANCE_TYPE")?,
            core_instance_count: number("EMR_CORE_INSTANCE_COUNT")? as i32,
            idle_timeout_seconds: number("EMR_IDLE_TIMEOUT_SECONDS")?,
            service_role: required(get, "EMR_SERVICE_ROLE")?,
            subnet_id: required(get, "EMR_SUBNET_ID")?,
            instance_profile: required(get, "EMR_INSTANCE_PROFILE")?,
            log_uri: required(get, "EMR_LOG_URI")?,
            students_format: get(TABLE_FORMAT_ENV)
                .and_then(|f| DataFormat::parse(&f))
                .unwrap_or_default(),
        })
    }

    /// The `spark-submit` command line of the job's one step. `run` names the cluster, the
    /// job's staging folder and its tables' `_SUCCESS` markers, so the table refresher can
    /// tell this run's tables from the previous run's.
    pub fn spark_submit(&self, run: &str) -> Vec<String> {
        let students = table("students").expect("the contract has students");
        let students_format = match self.students_format {
            DataFormat::Parquet => "parquet",
            DataFormat::Ndjson => "json",
        };
        [
            "spark-submit",
            "--deploy-mode",
            "cluster",
            &self.spark_job_uri,
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
}

/// The RunJobFlow request: a transient cluster (it terminates when its step ends, and after
/// the idle timeout in any case), tagged with the stage, running the Spark job once, in the
/// stage's subnet. `AmazonEMRServicePolicy_v2` (the service role's policy) lets EMR launch
/// instances only for a cluster tagged `for-use-with-amazon-emr-managed-policies=true`, in a
/// subnet tagged the same (EMR management guide, "Service role for Amazon EMR").
pub fn request(
    client: &aws_sdk_emr::Client,
    s: &JobSettings,
    run: &str,
) -> RunJobFlowFluentBuilder {
    let mut groups = vec![InstanceGroupConfig::builder()
        .name("master")
        .instance_role(InstanceRoleType::Master)
        .market(MarketType::OnDemand)
        .instance_type(&s.master_instance_type)
        .instance_count(1)
        .build()];
    if s.core_instance_count > 0 {
        groups.push(
            InstanceGroupConfig::builder()
                .name("core")
                .instance_role(InstanceRoleType::Core)
                .market(MarketType::OnDemand)
                .instance_type(&s.core_instance_type)
                .instance_count(s.core_instance_count)
                .build(),
        );
    }
    let step = StepConfig::builder()
        .name("site-events")
        .action_on_failure(ActionOnFailure::TerminateCluster)
        .hadoop_jar_step(
            HadoopJarStepConfig::builder()
                .jar("command-runner.jar")
                .set_args(Some(s.spark_submit(run)))
                .build(),
        )
        .build();
    client
        .run_job_flow()
        .name(format!("{PROJECT}-{}-site-events-{run}", s.stage))
        .release_label(&s.release_label)
        .applications(Application::builder().name("Spark").build())
        .instances(
            JobFlowInstancesConfig::builder()
                .set_instance_groups(Some(groups))
                .keep_job_flow_alive_when_no_steps(false)
                .termination_protected(false)
                .ec2_subnet_id(&s.subnet_id)
                .build(),
        )
        .auto_termination_policy(
            AutoTerminationPolicy::builder()
                .idle_timeout(s.idle_timeout_seconds)
                .build(),
        )
        .steps(step)
        .service_role(&s.service_role)
        .job_flow_role(&s.instance_profile)
        .log_uri(&s.log_uri)
        .visible_to_all_users(true)
        .tags(Tag::builder().key("Project").value(PROJECT).build())
        .tags(Tag::builder().key("Stage").value(&s.stage).build())
        .tags(
            Tag::builder()
                .key(EMR_MANAGED_POLICY_TAG)
                .value("true")
                .build(),
        )
}

#[derive(Debug, Serialize)]
pub struct Started {
    pub cluster_id: String,
    pub cluster_name: String,
}

/// Starts one cluster per message.
pub async fn handle(
    event: LambdaEvent<SnsEvent>,
    client: &aws_sdk_emr::Client,
    settings: &JobSettings,
) -> Result<Vec<Started>, lambda_runtime::Error> {
    let mut started = Vec::new();
    for record in &event.payload.records {
        let run = crate::run::new_run_id();
        let req = request(client, settings, &run);
        let name = req.get_name().clone().unwrap_or_default();
        let out = req
            .send()
            .await
            .map_err(|e| format!("RunJobFlow: {}", aws_sdk_emr::error::DisplayErrorContext(e)))?;
        let cluster_id = out.job_flow_id().unwrap_or_default().to_owned();
        tracing::info!(
            message_id = %record.sns.message_id,
            cluster = %cluster_id,
            name = %name,
            "Spark cluster started"
        );
        started.push(Started {
            cluster_id,
            cluster_name: name,
        });
    }
    Ok(started)
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
                    "EMR_RELEASE_LABEL" => "emr-7.5.0",
                    "EMR_MASTER_INSTANCE_TYPE" => "m5.xlarge",
                    "EMR_CORE_INSTANCE_TYPE" => "m5.2xlarge",
                    "EMR_CORE_INSTANCE_COUNT" => "2",
                    "EMR_IDLE_TIMEOUT_SECONDS" => "600",
                    "EMR_SERVICE_ROLE" => "svc-role",
                    "EMR_INSTANCE_PROFILE" => "profile",
                    "EMR_SUBNET_ID" => "subnet-0123456789abcdef0",
                    "EMR_LOG_URI" => "s3://jobs/logs/",
                    "TABLE_FORMAT" => "parquet",
                    _ => return None,
                }
                .to_string(),
            )
        };
        JobSettings::from_env(&env).unwrap()
    }

    fn client() -> aws_sdk_emr::Client {
        let conf = aws_sdk_emr::Config::builder()
            .behavior_version(aws_sdk_emr::config::BehaviorVersion::latest())
            .region(aws_sdk_emr::config::Region::new("us-east-1"))
            .build();
        aws_sdk_emr::Client::from_conf(conf)
    }

    #[test]
    fn the_request_is_a_transient_tagged_cluster_running_the_job_once() {
        let s = settings();
        let req = request(&client(), &s, "r1");
        let input = req.as_input();
        assert_eq!(
            input.get_name().as_deref(),
            Some("pdcase-alice-site-events-r1")
        );
        assert_eq!(input.get_release_label().as_deref(), Some("emr-7.5.0"));
        assert_eq!(input.get_service_role().as_deref(), Some("svc-role"));
        assert_eq!(input.get_job_flow_role().as_deref(), Some("profile"));
        assert_eq!(input.get_log_uri().as_deref(), Some("s3://jobs/logs/"));
        let instances = input.get_instances().as_ref().unwrap();
        assert_eq!(instances.keep_job_flow_alive_when_no_steps(), Some(false));
        let groups = instances.instance_groups();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].instance_type(), Some("m5.2xlarge"));
        assert_eq!(groups[1].instance_count(), Some(2));
        assert_eq!(
            input
                .get_auto_termination_policy()
                .as_ref()
                .unwrap()
                .idle_timeout(),
            Some(600)
        );
        let tags = input.get_tags().as_ref().unwrap();
        assert!(tags
            .iter()
            .any(|t| t.key() == Some("Stage") && t.value() == Some("alice")));
        // Issue 12a: without the tag and the subnet, AmazonEMRServicePolicy_v2 refuses to
        // launch the cluster's instances.
        assert!(tags.iter().any(
            |t| t.key() == Some("for-use-with-amazon-emr-managed-policies")
                && t.value() == Some("true")
        ));
        assert_eq!(instances.ec2_subnet_id(), Some("subnet-0123456789abcdef0"));
        let steps = input.get_steps().as_ref().unwrap();
        assert_eq!(steps.len(), 1);
        let args = steps[0].hadoop_jar_step().unwrap().args();
        assert_eq!(args[3], "s3://art/spark/abc/site_events.py");
        let pairs: Vec<(&str, &str)> = args[4..]
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
    }

    #[test]
    fn no_core_group_without_core_instances() {
        let mut s = settings();
        s.core_instance_count = 0;
        let req = request(&client(), &s, "r1");
        let groups = req
            .as_input()
            .get_instances()
            .as_ref()
            .unwrap()
            .instance_groups()
            .to_vec();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].instance_role(), Some(&InstanceRoleType::Master));
    }

    #[test]
    fn a_bad_count_is_named() {
        let env = |n: &str| {
            (n == "EMR_CORE_INSTANCE_COUNT")
                .then(|| "two".to_string())
                .or(Some("x".into()))
        };
        let e = JobSettings::from_env(&env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable EMR_CORE_INSTANCE_COUNT: `two` is not a whole number"
        );
    }
}
