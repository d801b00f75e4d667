//! AWS Lambda: `AWS::Lambda::Function`, `AWS::Lambda::Permission`.

use super::{attributes, is_empty, NoAttributes, Resource, Tag};
use crate::value::Value;
use serde::Serialize;
use std::collections::BTreeMap;

/// `AWS::Lambda::Function`. `Ref` returns the function name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Function {
    /// At most 64 characters. Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_name: Option<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Update: in place.
    pub runtime: Runtime,
    /// For `provided.*` runtimes the bootstrap ignores it; kept for the console. Update: in place.
    pub handler: String,
    /// Update: in place.
    pub architectures: Vec<Architecture>,
    /// The deployment package. Update: in place (new code on the next invocation).
    pub code: Code,
    /// Execution role ARN. Update: in place.
    pub role: Value,
    /// 128 to 10240 MB. Update: in place.
    pub memory_size: u32,
    /// 1 to 900 seconds. Update: in place.
    pub timeout: u32,
    /// X-Ray. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing_config: Option<TracingConfig>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Where the function logs. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging_config: Option<LoggingConfig>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::Lambda::Function`.
    FunctionAttr {
        Arn => "Arn",
    }
);

impl Resource for Function {
    const TYPE: &'static str = "AWS::Lambda::Function";
    type Attr = FunctionAttr;
}

/// The values [`Function::runtime`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Runtime {
    /// Amazon Linux 2023 custom runtime: the zip holds an executable `bootstrap`.
    #[serde(rename = "provided.al2023")]
    #[default]
    ProvidedAl2023,
    /// `python3.12`.
    #[serde(rename = "python3.12")]
    Python312,
}

/// The values [`Function::architectures`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Architecture {
    /// `x86_64`.
    #[serde(rename = "x86_64")]
    #[default]
    X86_64,
    /// `arm64`.
    #[serde(rename = "arm64")]
    Arm64,
}

/// A deployment package in S3.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Code {
    /// `S3Bucket`: An Amazon S3 bucket in the same AWS-Region as your function.
    pub s3_bucket: Value,
    /// `S3Key`: The Amazon S3 key of the deployment package.
    pub s3_key: Value,
}

/// The value of [`Function::tracing_config`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct TracingConfig {
    /// `Mode`: The tracing mode.
    pub mode: TracingMode,
}

/// The values [`TracingConfig::mode`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TracingMode {
    /// `Active`.
    #[default]
    Active,
    /// `PassThrough`.
    PassThrough,
}

/// The value of [`Function::environment`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Environment {
    /// `Variables`: Environment variable key-value pairs.
    pub variables: BTreeMap<String, Value>,
}

/// The value of [`Function::logging_config`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LoggingConfig {
    /// Log group name.
    pub log_group: Value,
    /// `LogFormat`: The format in which Lambda sends your function's application and system logs to CloudWatch.
    pub log_format: LogFormat,
}

/// The values [`LoggingConfig::log_format`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LogFormat {
    /// `Text`.
    #[default]
    Text,
    /// `JSON`.
    #[serde(rename = "JSON")]
    Json,
}

/// `AWS::Lambda::Permission`: lets a service invoke a function. Every property is create-only.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Permission {
    /// `lambda:InvokeFunction`. Update: **Replacement**.
    pub action: String,
    /// Function name or ARN. Update: **Replacement**.
    pub function_name: Value,
    /// Such as `s3.amazonaws.com`. Update: **Replacement**.
    pub principal: String,
    /// The only resource that may invoke. Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<Value>,
    /// For S3, whose ARNs carry no account: the bucket owner. Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_account: Option<Value>,
}

impl Resource for Permission {
    const TYPE: &'static str = "AWS::Lambda::Permission";
    type Attr = NoAttributes;
}

/// `AWS::Lambda::EventInvokeConfig`: how Lambda handles a function's asynchronous
/// invocations that fail: how often it retries them, for how long, and where it sends them
/// after the last attempt.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct EventInvokeConfig {
    /// The function's name or ARN. Update: **Replacement**.
    pub function_name: Value,
    /// `$LATEST`, a version or an alias. Update: **Replacement**.
    pub qualifier: String,
    /// 0 to 2 retries after the first attempt. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<u32>,
    /// 60 to 21,600 seconds an event may wait for its attempts. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_event_age_in_seconds: Option<u32>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
}

/// The value of [`EventInvokeConfig::destination_config`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct DestinationConfig {
    /// Where an event goes once its last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

/// The value of [`DestinationConfig::on_failure`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct OnFailure {
    /// The ARN of a queue, topic, function or bus; the function's execution role must be
    /// allowed to send to it.
    pub destination: Value,
}

impl Resource for EventInvokeConfig {
    const TYPE: &'static str = "AWS::Lambda::EventInvokeConfig";
    type Attr = NoAttributes;
}
