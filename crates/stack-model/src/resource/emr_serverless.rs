//! Amazon EMR Serverless: `AWS::EMRServerless::Application`.
//!
//! An application is a release of EMR (its Spark) and the limits its job runs share; a job
//! run asks it for workers, which are billed per second from when they are ready. An
//! application that is `STARTED` cannot be updated or deleted: CloudFormation's update and
//! delete handlers fail on it (EMR Serverless user guide, "Application states"), so the
//! deployer stops it first (`deployer deploy`, `deployer teardown`).

use super::{attributes, is_empty, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::EMRServerless::Application`. `Ref` returns the application id.
///
/// Update behaviour, from the resource schema: `Name` and `Type` are create-only
/// (**Replacement**); every other property is *conditionally* create-only
/// (`conditionalCreateOnlyProperties`): EMR Serverless changes it in place on a `CREATED` or
/// `STOPPED` application, and CloudFormation may replace the application otherwise.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Application {
    /// Update: **Replacement**.
    pub name: Value,
    /// Update: **Replacement**.
    pub r#type: ApplicationType,
    /// `emr-7.x.y`. Update: in place while stopped (conditionally create-only).
    pub release_label: String,
    /// Update: in place while stopped (conditionally create-only).
    pub architecture: Architecture,
    /// Starts the application when a job run is submitted to it. Update: in place while
    /// stopped.
    pub auto_start_configuration: AutoStartConfiguration,
    /// Stops the application (releasing its capacity) after it is idle. Update: in place
    /// while stopped.
    pub auto_stop_configuration: AutoStopConfiguration,
    /// The most every job run of the application may hold together: a cost guard. Update:
    /// in place while stopped.
    pub maximum_capacity: MaximumCapacity,
    /// The VPC the job runs in; none: the job reaches AWS services in its region, not a VPC.
    /// Update: in place while stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    /// Where job runs write their logs by default. Update: in place while stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring_configuration: Option<MonitoringConfiguration>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

impl super::Resource for Application {
    const TYPE: &'static str = "AWS::EMRServerless::Application";
    type Attr = ApplicationAttr;
}

attributes!(
    /// Attributes of an EMR Serverless application.
    ApplicationAttr {
        /// `arn:...:emr-serverless:REGION:ACCOUNT:/applications/ID`.
        Arn => "Arn",
        /// The id `StartJobRun` takes (also its `Ref`).
        ApplicationId => "ApplicationId",
    }
);

/// The application's engine.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ApplicationType {
    /// Apache Spark.
    #[default]
    Spark,
}

/// The workers' processor.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Architecture {
    /// x86-64.
    #[default]
    X86_64,
    /// Graviton.
    Arm64,
}

/// Whether a submitted job run starts the application.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct AutoStartConfiguration {
    /// On: a job run submitted to a stopped application starts it.
    pub enabled: bool,
}

/// When an idle application stops.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct AutoStopConfiguration {
    /// On: the application stops after `idle_timeout_minutes` without job runs.
    pub enabled: bool,
    /// Minutes without a job run before it stops.
    pub idle_timeout_minutes: u32,
}

/// The application's total capacity, across its workers.
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct MaximumCapacity {
    /// Such as `32 vCPU`.
    pub cpu: String,
    /// Such as `128 GB`.
    pub memory: String,
    /// Such as `640 GB`; none: EMR Serverless's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<String>,
}

/// The subnets and security groups of a job that needs a VPC.
#[derive(Default, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct NetworkConfiguration {
    /// One to 16 subnets.
    pub subnet_ids: Vec<String>,
    /// One to 5 security groups.
    pub security_group_ids: Vec<String>,
}

/// Where job runs' logs go.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct MonitoringConfiguration {
    /// Logs in Amazon S3.
    pub s3_monitoring_configuration: S3MonitoringConfiguration,
}

/// Logs in Amazon S3.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct S3MonitoringConfiguration {
    /// `s3://bucket/prefix/`.
    pub log_uri: Value,
    /// The KMS key the logs are encrypted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_arn: Option<Value>,
}
