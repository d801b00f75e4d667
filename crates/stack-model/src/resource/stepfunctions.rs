//! AWS Step Functions: `AWS::StepFunctions::StateMachine`.

use std::collections::BTreeMap;

use super::{attributes, is_empty, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::StepFunctions::StateMachine`. `Ref` returns the state machine's ARN.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct StateMachine {
    /// At most 80 characters. Update: **Replacement** (running executions keep running on the
    /// old one until it is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_machine_name: Option<Value>,
    /// Update: **Replacement**.
    pub state_machine_type: StateMachineType,
    /// The Amazon States Language definition, as a JSON object. CloudFormation resolves no
    /// intrinsic function inside it: a `${Name}` in its strings is replaced by
    /// [`StateMachine::definition_substitutions`]' value (CloudFormation user guide,
    /// `AWS::StepFunctions::StateMachine`, "DefinitionSubstitutions"). Update: in place.
    pub definition: serde_json::Value,
    /// The values of the definition's `${Name}` placeholders. Update: in place.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub definition_substitutions: BTreeMap<String, Value>,
    /// The execution role the state machine acts as. Update: in place.
    pub role_arn: Value,
    /// Where execution history goes. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging_configuration: Option<LoggingConfiguration>,
    /// X-Ray tracing of executions. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing_configuration: Option<TracingConfiguration>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

/// `StateMachineType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StateMachineType {
    /// Exactly-once steps, up to a year per execution, history kept 90 days.
    #[default]
    Standard,
    /// At-least-once steps, up to five minutes.
    Express,
}

/// `LoggingConfiguration`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LoggingConfiguration {
    /// Which events are logged.
    pub level: LogLevel,
    /// Whether the states' input and output are logged with them.
    pub include_execution_data: bool,
    /// One log group.
    pub destinations: Vec<LogDestination>,
}

/// `Level` of [`LoggingConfiguration`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Every event.
    #[default]
    All,
    /// Failures of states and executions.
    Error,
    /// Failures of executions.
    Fatal,
}

/// One `Destinations` entry of [`LoggingConfiguration`].
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LogDestination {
    /// The log group.
    pub cloud_watch_logs_log_group: CloudWatchLogsLogGroup,
}

/// `CloudWatchLogsLogGroup` of [`LogDestination`].
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CloudWatchLogsLogGroup {
    /// The group's ARN (`Fn::GetAtt` of the group's `Arn`, which ends in `:*`).
    pub log_group_arn: Value,
}

impl LoggingConfiguration {
    /// `level` events, with their data when `include_execution_data`, to one log group.
    pub fn to_group(level: LogLevel, include_execution_data: bool, log_group_arn: Value) -> Self {
        LoggingConfiguration {
            level,
            include_execution_data,
            destinations: vec![LogDestination {
                cloud_watch_logs_log_group: CloudWatchLogsLogGroup { log_group_arn },
            }],
        }
    }
}

/// `TracingConfiguration`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct TracingConfiguration {
    /// Whether executions are traced with X-Ray.
    pub enabled: bool,
}

impl TracingConfiguration {
    /// Traced with X-Ray.
    pub fn enabled() -> Self {
        TracingConfiguration { enabled: true }
    }
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::StepFunctions::StateMachine`.
    StateMachineAttr {
        Arn => "Arn",
        Name => "Name",
        StateMachineRevisionId => "StateMachineRevisionId",
    }
);

impl Resource for StateMachine {
    const TYPE: &'static str = "AWS::StepFunctions::StateMachine";
    type Attr = StateMachineAttr;
}
