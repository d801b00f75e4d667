//! A function's run, recorded and reported: the message claimed (a repeated delivery runs
//! nothing), a run record written as it starts and as it ends ([`crate::runs`]), and a failure
//! handled by its kind.
//!
//! Lambda retries a failed asynchronous invocation twice, whatever failed, and its invoke
//! configuration cannot tell errors apart (it has only the retry count and the event's age).
//! So the function does: a failure that another attempt cannot mend (bad input, a size the
//! function refuses) is recorded, sent to the stage's failure queue by the function, and the
//! invocation succeeds, so Lambda does not run it again; any other failure (S3 throttling, a
//! lost connection, the lease held by another run) fails the invocation, Lambda retries it,
//! and after the last attempt the function's `OnFailure` destination, the same queue,
//! receives it.

use serde_json::{json, Value};

use crate::runs::{claim, Delivery, RunRecord};
use crate::storage::Storage;
use crate::warehouse::Base;

/// How a run failed.
pub struct Failure {
    pub message: String,
    /// Another attempt may succeed: Lambda retries it.
    pub transient: bool,
    /// The report of a run that counted before it failed (too many bad lines).
    pub report: Option<Value>,
}

/// The stage's failure queue, where the function sends what it will not retry.
pub struct FailureQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

pub use stack_model::pipeline::FAILURE_QUEUE_ENV;

impl FailureQueue {
    /// Sends `body` (blocking: call it from a blocking thread).
    pub fn send(&self, handle: &tokio::runtime::Handle, body: &Value) -> Result<(), String> {
        handle
            .block_on(
                self.client
                    .send_message()
                    .queue_url(&self.url)
                    .message_body(body.to_string())
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| format!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))
    }
}

/// What one run is: where it records itself and how long it may live.
pub struct RunSpec<'a> {
    pub warehouse: &'a dyn Storage,
    pub base: Base,
    pub run: &'a str,
    pub engine: &'a str,
    pub message_id: Option<&'a str>,
    /// Unix seconds after which the run cannot be alive (its deadline).
    pub expires: i64,
}

/// Runs `work` as the message's run (blocking). Ok: the invocation succeeded (the report, a
/// duplicate, or a failure sent to the failure queue); Err: a transient failure for Lambda to
/// retry.
pub fn run_recorded(
    spec: &RunSpec<'_>,
    failures: Option<(&FailureQueue, &tokio::runtime::Handle)>,
    work: impl FnOnce() -> Result<Value, Failure>,
) -> Result<Value, lambda_runtime::Error> {
    let mut attempt = 1;
    if let Some(message_id) = spec.message_id {
        match claim(spec.warehouse, spec.base, message_id, spec.run)? {
            Delivery::Duplicate { run } => {
                tracing::info!(message_id, run = %run, "a repeated delivery of a message whose run succeeded or is running: nothing run");
                return Ok(json!({"duplicate_of": run}));
            }
            Delivery::Run { attempt: a } => attempt = a,
        }
    }
    // Lambda runs a failed event 1 + RETRIES times: the last attempt's failure is not retried.
    let last_attempt = attempt > stack_model::pipeline::RETRIES;
    let started = RunRecord::started(
        spec.base,
        spec.run,
        spec.engine,
        spec.message_id,
        spec.expires,
    );
    started.write(spec.warehouse)?;
    match work() {
        Ok(report) => {
            started.succeeded(report.clone()).write(spec.warehouse)?;
            Ok(report)
        }
        Err(f) if f.transient => {
            let message = if last_attempt {
                format!(
                    "{} (attempt {attempt}, Lambda's last: its OnFailure destination, the failure queue, receives it)",
                    f.message
                )
            } else {
                f.message.clone()
            };
            let record = started.failed(message, !last_attempt, f.report);
            if let Err(e) = record.write(spec.warehouse) {
                tracing::warn!(error = %e, "could not record the failed run");
            }
            tracing::error!(run = spec.run, attempt, error = %f.message, "the run failed; Lambda retries it unless this was its last attempt");
            Err(f.message.into())
        }
        Err(f) => {
            let record = started.failed(f.message.clone(), false, f.report);
            record.write(spec.warehouse)?;
            tracing::error!(run = spec.run, error = %f.message, "the run failed for good (not retried): sent to the failure queue");
            let body = json!({"failure": "not retried", "record": record});
            if let Some((queue, handle)) = failures {
                queue.send(handle, &body).map_err(|e| {
                    format!(
                        "sending the failure of run {} to the failure queue: {e}",
                        spec.run
                    )
                })?;
            }
            Ok(body)
        }
    }
}
