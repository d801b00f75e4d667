//! IAM statement shapes several parts of the pipeline use.

use crate::resource::iam::{Condition, Statement};
use crate::value::Value;

/// `<bucket arn>/<pattern>`.
pub(super) fn objects(bucket_arn: &Value, pattern: &str) -> Value {
    Value::sub_with(format!("${{Arn}}/{pattern}"), [("Arn", bucket_arn.clone())])
}

/// A Hadoop folder's keys, as EMRFS probes them: the folder's own key (`b`), its
/// `_$folder$` marker and what it holds (`b/*`).
pub(super) fn folder(bucket_arn: &Value, name: &str) -> Vec<Value> {
    vec![
        objects(bucket_arn, name),
        objects(bucket_arn, &format!("{name}_$folder$")),
        objects(bucket_arn, &format!("{name}/*")),
    ]
}

/// The students table's keys a Spark job reads, with its parent folder's own key and marker.
pub(super) fn students_folder(warehouse_arn: &Value) -> Vec<Value> {
    let mut keys = folder(warehouse_arn, "a");
    keys.truncate(2);
    keys.extend(folder(warehouse_arn, "a/students"));
    keys
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
