//! Failures that reach someone: the stage's failure queue, where every function's failed
//! asynchronous invocations go after Lambda's last retry (`OnFailure`), and where a function
//! sends what it will not retry itself (bad input, a refused size: crate etl,
//! `handlers::recorded`). Encrypted with the stage's key on hardened stages, with SQS-owned
//! keys otherwise; kept 14 days, SQS's longest.

use super::Pipeline;
use crate::resource::iam::Statement;
use crate::resource::lambda::{DestinationConfig, EventInvokeConfig, Function, OnFailure};
use crate::resource::sqs::{Queue, QueueAttr};
use crate::template::Handle;
use crate::value::Value;

/// The environment variable naming the failure queue (its URL) to the functions.
pub const FAILURE_QUEUE_ENV: &str = "FAILURE_QUEUE_URL";

/// Lambda's retries of a failed asynchronous invocation: its default, written out (the
/// retries come about one and then two minutes after a failure).
pub const RETRIES: u32 = 2;

/// How long an event may wait for its attempts: an hour, well past the retries' spacing; an
/// event older than this goes to the failure queue unrun.
pub const MAX_EVENT_AGE_SECONDS: u32 = 3600;

/// SQS keeps a message at most 14 days.
const RETENTION_SECONDS: u32 = 14 * 24 * 3600;

pub(super) struct Failures {
    pub queue: Handle<Queue>,
}

pub(super) fn queue(p: &mut Pipeline) -> Failures {
    let tags = p.tags();
    let removal = p.stateful();
    let queue = p.t.add_with(
        "FailureQueue",
        Queue {
            queue_name: Some(p.c.stage.failure_queue_name().into()),
            message_retention_period: Some(RETENTION_SECONDS),
            kms_master_key_id: p.key.clone(),
            sqs_managed_sse_enabled: p.key.is_none().then_some(true),
            tags,
        },
        removal,
    );
    Failures { queue }
}

impl Failures {
    /// What a function needs to send to the queue (itself, and Lambda's `OnFailure` delivery,
    /// made with the function's execution role).
    pub fn statements(&self, p: &Pipeline) -> Vec<Statement> {
        let mut out = vec![Statement::allow(
            "SendFailures",
            &["sqs:SendMessage"],
            vec![self.queue.get_att(QueueAttr::Arn)],
        )];
        if let Some(key) = &p.key {
            out.push(Statement::allow(
                "EncryptFailures",
                &["kms:GenerateDataKey", "kms:Decrypt"],
                vec![key.clone()],
            ));
        }
        out
    }

    pub fn url(&self) -> Value {
        self.queue.r#ref()
    }

    /// The function's asynchronous invocations: retried [`RETRIES`] times, then sent here.
    pub fn invoke_config(&self, p: &mut Pipeline, id: &str, function: &Handle<Function>) {
        p.t.add(
            &format!("{id}InvokeConfig"),
            EventInvokeConfig {
                function_name: function.r#ref(),
                qualifier: "$LATEST".into(),
                maximum_retry_attempts: Some(RETRIES),
                maximum_event_age_in_seconds: Some(MAX_EVENT_AGE_SECONDS),
                destination_config: Some(DestinationConfig {
                    on_failure: Some(OnFailure {
                        destination: self.queue.get_att(QueueAttr::Arn),
                    }),
                }),
            },
        );
    }
}
