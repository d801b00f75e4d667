//! IAM statement shapes several parts of the pipeline use.

use crate::resource::iam::{Condition, Statement};
use crate::value::Value;

/// `<bucket arn>/<pattern>`.
pub(super) fn objects(bucket_arn: &Value, pattern: &str) -> Value {
    Value::sub_with(format!("${{Arn}}/{pattern}"), [("Arn", bucket_arn.clone())])
}

/// `iam:PassRole` on one role, only to `service`.
pub(super) fn pass_role(sid: &str, role_arn: Value, service: &str) -> Statement {
    Statement {
        condition: Condition::default().with("StringEquals", "iam:PassedToService", service),
        ..Statement::allow(sid, &["iam:PassRole"], vec![role_arn])
    }
}

/// A function's writes to its own log group.
pub(super) fn logs_statement(log_group_arn: Value) -> Statement {
    Statement::allow(
        "WriteOwnLogs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        vec![log_group_arn],
    )
}

/// X-Ray traces of a function with active tracing.
pub(super) fn xray_statement() -> Statement {
    // X-Ray's PutTraceSegments/PutTelemetryRecords have no resource-level permissions.
    Statement::allow(
        "XRayTraces",
        &["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        vec!["*".into()],
    )
}
