//! Amazon Athena: `AWS::Athena::WorkGroup`.

use super::{is_empty, NoAttributes, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::Athena::WorkGroup`. `Ref` returns the work group name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct WorkGroup {
    /// Update: **Replacement** (saved queries and history of the old one are lost).
    pub name: Value,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Update: in place.
    pub state: WorkGroupState,
    /// Lets CloudFormation delete a work group that has saved queries. Update: in place.
    pub recursive_delete_option: bool,
    /// Update: in place.
    pub work_group_configuration: WorkGroupConfiguration,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

impl Resource for WorkGroup {
    const TYPE: &'static str = "AWS::Athena::WorkGroup";
    type Attr = NoAttributes;
}

/// The values [`WorkGroup::state`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WorkGroupState {
    /// `Enabled`.
    #[default]
    Enabled,
    /// `Disabled`.
    Disabled,
}

/// The value of [`WorkGroup::work_group_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct WorkGroupConfiguration {
    /// Clients cannot override the result location or encryption.
    pub enforce_work_group_configuration: bool,
    /// `PublishCloudWatchMetricsEnabled`.
    pub publish_cloud_watch_metrics_enabled: bool,
    /// Queries scanning more are cancelled (cost guard), in bytes; at least 10 MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_scanned_cutoff_per_query: Option<u64>,
    /// `ResultConfiguration`.
    pub result_configuration: ResultConfiguration,
}

/// The value of [`WorkGroupConfiguration::result_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ResultConfiguration {
    /// `s3://bucket/prefix/`.
    pub output_location: Value,
    /// `EncryptionConfiguration`.
    pub encryption_configuration: EncryptionConfiguration,
}

/// The value of [`ResultConfiguration::encryption_configuration`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct EncryptionConfiguration {
    /// `EncryptionOption`.
    pub encryption_option: EncryptionOption,
    /// The key of `SSE_KMS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<Value>,
}

/// The values [`EncryptionConfiguration::encryption_option`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EncryptionOption {
    /// `SSE_S3`.
    #[serde(rename = "SSE_S3")]
    #[default]
    SseS3,
    /// `SSE_KMS`.
    #[serde(rename = "SSE_KMS")]
    SseKms,
}
