//! Base a as shards, on stages whose `base_a_engine` is `sharded` or `auto`: a Step Functions
//! state machine whose Distributed Map runs one invocation of the ETL function per byte range
//! of an export, then one that publishes the run, with its execution role and log group.
//!
//! The ETL function, triggered through its topic as on every stage (SNS cannot subscribe a
//! state machine), plans the run, writes the plan to the warehouse
//! (`a/_runs/<run>/plan.json`) and starts an execution named by the run. The map reads the
//! plan with its S3 item reader; each item is one shard's span. A shard's report goes to S3
//! beside the plan, not into the map's result: a Distributed Map's result is capped at
//! 256 KiB (Step Functions developer guide, "Quotas": "Maximum input or output size for a
//! task, state, or execution"), so the map's result is discarded (`ResultPath: null`). The
//! publisher runs whether the map succeeded or not (`Catch`), because it alone releases the
//! run's lease and removes what the run wrote: a missing report refuses the run.

use serde_json::json;

use super::encryption::with_key;
use super::policy::objects;
use super::storage::Storage;
use super::Pipeline;
use crate::resource::iam::{RoleAttr, Statement};
use crate::resource::lambda::{Function, FunctionAttr};
use crate::resource::logs::{LogGroup, LogGroupAttr};
use crate::resource::stepfunctions::{
    LogLevel, LoggingConfiguration, StateMachine, StateMachineType, TracingConfiguration,
};
use crate::stage::RoleKind;
use crate::template::Handle;
use crate::value::Value;

/// The ETL function's variable naming what computes base a (`function`, `sharded`, `auto`).
pub const BASE_A_ENGINE_ENV: &str = "BASE_A_ENGINE";
/// The ETL function's variable naming the state machine it starts (its ARN).
pub const STATE_MACHINE_ARN_ENV: &str = "STATE_MACHINE_ARN";
/// The ETL function's variable giving the bytes of one shard's span.
pub const SHARD_BYTES_ENV: &str = "SHARD_BYTES";
/// The bytes of one shard's span: at the 400 MB/s one vCPU parses base a at, a few seconds
/// of a shard's work (docs/BENCHMARKS.md, "Lambda's limits, simulated"), a fraction of the
/// span one function's time allows; small enough that the map spreads a large export over
/// many functions.
pub const SHARD_BYTES: u64 = 256 << 20;
/// How many shards run at once: a share of the account's default Lambda concurrency (1,000)
/// that leaves the rest of the account room.
pub const MAX_CONCURRENCY: u32 = 100;
/// How long an execution may run before Step Functions stops it. The run's lease is held
/// longer (crate etl, `handlers::shards`), so it never lapses under a live execution.
pub const TIMEOUT_SECONDS: u32 = 2 * 3600;

/// The state machine's ARN, from its derived name: the ETL function starts it, and the state
/// machine invokes the function, so a reference either way would be a cycle.
pub(super) fn state_machine_arn(p: &Pipeline) -> Value {
    Value::sub(format!(
        "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{}",
        p.c.stage.state_machine_name()
    ))
}

/// What the ETL function needs to start the state machine.
pub(super) fn start_statement(p: &Pipeline) -> Statement {
    Statement::allow(
        "StartShards",
        &["states:StartExecution"],
        vec![state_machine_arn(p)],
    )
}

/// The executions of the state machine, its map runs' child executions included
/// (`execution:<name>:<id>` and `execution:<name>/<map run label>:<id>`).
fn executions(p: &Pipeline) -> Vec<Value> {
    let name = p.c.stage.state_machine_name();
    [":*", "/*"]
        .iter()
        .map(|tail| {
            Value::sub(format!(
                "arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{name}{tail}"
            ))
        })
        .collect()
}

/// The execution role: invoke the ETL function, read the run's plan, run the map's child
/// executions (Step Functions developer guide, "IAM policies for using Distributed Map
/// states"), deliver logs ("Using CloudWatch Logs to log execution history in Step
/// Functions", "IAM Policies for logging to CloudWatch Logs": the log delivery actions take no
/// resource), and send traces ("Trace Step Functions request data in AWS X-Ray").
fn role_statements(
    p: &Pipeline,
    s: &Storage,
    etl: &Handle<Function>,
    log_group: &Handle<LogGroup>,
) -> Vec<Statement> {
    let etl_arn = etl.get_att(FunctionAttr::Arn);
    let statements = vec![
        Statement::allow(
            "InvokeEtl",
            &["lambda:InvokeFunction"],
            vec![
                etl_arn.clone(),
                Value::sub_with("${Arn}:*", [("Arn", etl_arn)]),
            ],
        ),
        Statement::allow(
            "ReadPlans",
            &["s3:GetObject"],
            vec![objects(&s.warehouse_arn, "a/_runs/*/plan.json")],
        ),
        Statement::allow(
            "RunMapChildren",
            &["states:StartExecution"],
            vec![state_machine_arn(p)],
        ),
        Statement::allow(
            "FollowMapChildren",
            &["states:DescribeExecution", "states:StopExecution"],
            executions(p),
        ),
        Statement::allow(
            "DeliverLogs",
            &[
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            vec!["*".into()],
        ),
        Statement::allow(
            "WriteOwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![log_group.get_att(LogGroupAttr::Arn)],
        ),
        // X-Ray's calls have no resource-level permissions.
        Statement::allow(
            "XRayTraces",
            &[
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
            ],
            vec!["*".into()],
        ),
    ];
    with_key(p, statements, false)
}

/// The definition: the map over the plan's items, then the publisher, then success or the
/// refusal. `${EtlFunctionArn}` and `${WarehouseBucket}` are substituted by CloudFormation.
pub fn definition() -> serde_json::Value {
    // A shard's failure is a failure to read or write (bad input is a report, not an error):
    // another attempt may mend it. Lambda's own throttling and service errors likewise.
    let retry = json!([{
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 2.0
    }]);
    json!({
        "Comment": "Base a as shards: one ETL invocation per span of an export, then the publisher",
        "TimeoutSeconds": TIMEOUT_SECONDS,
        "StartAt": "Shards",
        "States": {
            "Shards": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": "${WarehouseBucket}", "Key.$": "$.plan"}
                },
                "ItemSelector": {"step": "shard", "item.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Shard",
                    "States": {
                        "Shard": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {"FunctionName": "${EtlFunctionArn}", "Payload.$": "$"},
                            "ResultSelector": {"shard.$": "$.Payload"},
                            "Retry": retry,
                            "End": true
                        }
                    }
                },
                "MaxConcurrency": MAX_CONCURRENCY,
                "ResultPath": null,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.shards_failed", "Next": "Publish"}],
                "Next": "Publish"
            },
            "Publish": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "${EtlFunctionArn}",
                    "Payload": {"step": "publish", "run.$": "$.run"}
                },
                "ResultSelector": {"outcome.$": "$.Payload.outcome"},
                "Retry": retry,
                "Next": "Published"
            },
            "Published": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.outcome", "StringEquals": "published", "Next": "Done"}],
                "Default": "Refused"
            },
            "Done": {"Type": "Succeed"},
            "Refused": {
                "Type": "Fail",
                "Error": "RunRefused",
                "Cause": "The run was refused and the published tables are unchanged: its run record says why (deployer runs)"
            }
        }
    })
}

/// The state machine, its role and log group, on stages that hold it.
pub(super) fn shards(
    p: &mut Pipeline,
    s: &Storage,
    etl: &Handle<Function>,
) -> Option<Handle<StateMachine>> {
    if !p.c.base_a_engine.has_state_machine() {
        return None;
    }
    let tags = p.tags();
    let removal = p.stateful();
    let log_group = p.t.add_with(
        "EtlShardsLogGroup",
        LogGroup {
            log_group_name: Some(p.c.stage.state_machine_log_group_name().into()),
            retention_in_days: Some(p.c.log_retention),
            kms_key_id: p.key.clone(),
            tags: tags.clone(),
        },
        removal,
    );
    let statements = role_statements(p, s, etl, &log_group);
    let role = p.role(
        "EtlShardsRole",
        RoleKind::EtlShards,
        "Execution role of base a's state machine",
        &["states.amazonaws.com"],
        vec![],
        statements,
    );
    let machine = StateMachine {
        state_machine_name: Some(p.c.stage.state_machine_name().into()),
        state_machine_type: StateMachineType::Standard,
        definition: definition(),
        definition_substitutions: [
            ("EtlFunctionArn".to_string(), etl.get_att(FunctionAttr::Arn)),
            ("WarehouseBucket".to_string(), s.warehouse_name.clone()),
        ]
        .into(),
        role_arn: role.get_att(RoleAttr::Arn),
        // Errors only, without the states' data: a run's items are byte ranges and report
        // counts, and its reports are in S3; every event of every child execution would cost
        // a log event each.
        logging_configuration: Some(LoggingConfiguration::to_group(
            LogLevel::Error,
            false,
            log_group.get_att(LogGroupAttr::Arn),
        )),
        tracing_configuration: Some(TracingConfiguration::enabled()),
        tags,
    };
    Some(p.t.add("EtlShardsStateMachine", machine))
}
