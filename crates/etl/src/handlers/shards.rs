//! The ETL function's parts in the sharded engine ([`crate::sharded`]), on stages whose
//! `base_a_engine` is `sharded` or `auto` (stack-model, `pipeline::shards`):
//!
//! - [`start`]: a message on the ETL topic claims its message, records the run as running,
//!   plans it (taking base a's lease for the invocation's deadline) and starts an execution of
//!   the stage's state machine named by the run, to which it then hands the lease, for the
//!   state machine's timeout and a margin. A failure to start gives the lease and the plan
//!   back and fails the invocation, so Lambda retries it.
//! - [`Step::Shard`]: the state machine's Distributed Map invokes the function once per span.
//! - [`Step::Publish`]: then once to publish (or refuse) the run, which ends its run record.
//!   A repeated publish (Step Functions' retry after a lost response) finds the record ended
//!   and returns its outcome again.

use serde::Deserialize;
use serde_json::{json, Value};

use super::etl::EtlContext;
use super::recorded::FailureQueue;
use crate::error::EtlError;
use crate::run::Options;
use crate::runs::{self, Delivery, RunRecord, RunState};
use crate::sharded::{self, Item};
use crate::warehouse::Base;
use stack_model::pipeline::shards::TIMEOUT_SECONDS;

/// How long a sharded run holds base a's lease: the state machine's timeout, after which Step
/// Functions has stopped the execution whatever happened, and ten minutes.
pub const HOLD: std::time::Duration = std::time::Duration::from_secs(TIMEOUT_SECONDS as u64 + 600);

/// The engine a sharded run's record and markers name.
const ENGINE: &str = "sharded";

/// What the state machine sends the function (the `Payload` of its `lambda:invoke` tasks).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// One span of one export.
    Shard { item: Item },
    /// The run, once the map has ended.
    Publish { run: String },
}

/// The state machine's execution input.
pub fn execution_input(run: &str) -> Value {
    json!({"run": run, "plan": sharded::plan_key(run)})
}

/// Plans `opts.run_id` and starts its execution of `state_machine` (blocking: `handle` runs
/// the call). Ok: the invocation succeeded (started, a duplicate, or bad input sent to the
/// failure queue); Err: a transient failure for Lambda to retry.
pub fn start(
    ctx: &EtlContext,
    handle: &tokio::runtime::Handle,
    sfn: &aws_sdk_sfn::Client,
    state_machine: &str,
    opts: &Options,
    message_id: Option<&str>,
) -> Result<Value, lambda_runtime::Error> {
    let wh = ctx.warehouse.as_ref();
    let run = opts.run_id.as_str();
    if let Some(id) = message_id {
        if let Delivery::Duplicate { run: prior } = runs::claim(wh, Base::A, id, run)? {
            tracing::info!(message_id = id, run = %prior, "a repeated delivery: its run was started before; nothing new started");
            return Ok(json!({"duplicate_of": prior}));
        }
    }
    // Until the state machine has started, the run lives as long as this invocation (its
    // lease's hold, `opts.lease`): a function killed before then frees base a at its deadline.
    let expires = chrono::Utc::now().timestamp() + opts.lease.hold.as_secs() as i64;
    let record = RunRecord::started(Base::A, run, ENGINE, message_id, expires);
    record.write(wh)?;
    let (items, mut lease) = match sharded::plan_held(ctx.source.as_ref(), wh, opts) {
        Ok(planned) => planned,
        Err(e) => {
            let bad = e.is_bad_input();
            let message = format!("{e}; the published tables are unchanged");
            let failed = record.failed(message.clone(), !bad, None);
            failed.write(wh)?;
            if !bad {
                return Err(message.into());
            }
            let body = json!({"failure": "not retried", "record": failed});
            send(ctx.failures.as_ref(), handle, &body, run)?;
            return Ok(body);
        }
    };
    let started = handle.block_on(
        sfn.start_execution()
            .state_machine_arn(state_machine)
            // One execution per run: a name is unique per state machine for 90 days (Step
            // Functions API reference, "StartExecution": `name`).
            .name(run)
            .input(execution_input(run).to_string())
            .send(),
    );
    match started {
        Ok(out) => {
            // The execution holds the lease now, for as long as it may run; its publisher
            // releases it.
            lease.confirm_as(
                &format!("etl state machine execution {}", out.execution_arn()),
                HOLD,
            )?;
            std::mem::forget(lease);
            let mut record = record;
            record.execution_arn = Some(out.execution_arn().to_owned());
            record.expires = chrono::Utc::now().timestamp() + HOLD.as_secs() as i64;
            record.write(wh)?;
            tracing::info!(
                run,
                execution = out.execution_arn(),
                shards = items.len(),
                "sharded run started; its state machine holds base a's lease"
            );
            Ok(json!({
                "run": run,
                "engine": ENGINE,
                "execution_arn": out.execution_arn(),
                "shards": items.len(),
            }))
        }
        Err(e) => {
            let message = format!(
                "StartExecution: {}",
                aws_sdk_sfn::error::DisplayErrorContext(e)
            );
            sharded::remove_run_folder(wh, run);
            lease.release();
            record.failed(message.clone(), true, None).write(wh)?;
            Err(message.into())
        }
    }
}

/// One shard: its report's gist (the report itself is in S3, beside the plan). An error is a
/// failure to read or write: the state machine retries the shard.
pub fn shard(ctx: &EtlContext, item: &Item) -> Result<Value, EtlError> {
    let report = sharded::run_item(ctx.source.as_ref(), ctx.warehouse.as_ref(), item)?;
    let outcome = match &report.outcome {
        sharded::Outcome::Written { rows, .. } => json!({"written": rows}),
        sharded::Outcome::Refused { .. } => json!("refused"),
    };
    Ok(json!({"table": item.table, "span": item.span, "outcome": outcome}))
}

/// Publishes or refuses `run`, ends its record and returns `{"outcome": "published" |
/// "refused"}` for the state machine's choice. A run refused goes to the failure queue, as the
/// function engine's refusals do.
pub fn publish(
    ctx: &EtlContext,
    handle: &tokio::runtime::Handle,
    run: &str,
) -> Result<Value, lambda_runtime::Error> {
    let wh = ctx.warehouse.as_ref();
    let record = runs::read(wh, Base::A, run)?;
    if let Some(r) = &record {
        if r.state != RunState::Running {
            tracing::info!(
                run,
                "the run was published or refused before: its outcome again"
            );
            return Ok(outcome_of(r));
        }
    }
    let record = record.unwrap_or_else(|| {
        RunRecord::started(Base::A, run, ENGINE, None, chrono::Utc::now().timestamp())
    });
    match sharded::publish(wh, run, HOLD) {
        Ok(report) => {
            let report = serde_json::to_value(&report).expect("a report serializes");
            tracing::info!(report = %report, "ETL run published");
            let done = record.succeeded(report);
            done.write(wh)?;
            Ok(outcome_of(&done))
        }
        Err(e) => {
            let message = format!("{e}; the published tables are unchanged");
            tracing::error!(run, error = %message, "the sharded run was refused");
            let done = record.failed(message, false, None);
            done.write(wh)?;
            send(
                ctx.failures.as_ref(),
                handle,
                &json!({"failure": "not retried", "record": done}),
                run,
            )?;
            Ok(outcome_of(&done))
        }
    }
}

fn outcome_of(r: &RunRecord) -> Value {
    match r.state {
        RunState::Succeeded => json!({"outcome": "published", "run": r.run}),
        _ => json!({"outcome": "refused", "run": r.run, "error": r.error}),
    }
}

fn send(
    queue: Option<&FailureQueue>,
    handle: &tokio::runtime::Handle,
    body: &Value,
    run: &str,
) -> Result<(), lambda_runtime::Error> {
    if let Some(q) = queue {
        q.send(handle, body)
            .map_err(|e| format!("sending the failure of run {run} to the failure queue: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalDir;
    use aws_sdk_sfn::operation::start_execution::{StartExecutionError, StartExecutionOutput};
    use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};
    use std::sync::Arc;

    /// A Step Functions client whose StartExecution answers `ok` or fails (relies on:
    /// aws-smithy-mocks, no network).
    fn sfn(ok: bool) -> aws_sdk_sfn::Client {
        let rule = if ok {
            mock!(aws_sdk_sfn::Client::start_execution).then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn:aws:states:us-east-1:1:execution:m:r")
                    .start_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .unwrap()
            })
        } else {
            mock!(aws_sdk_sfn::Client::start_execution)
                .then_error(|| StartExecutionError::unhandled("service unavailable"))
        };
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&rule);
        let conf = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "a", "b", None, None, "t",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        aws_sdk_sfn::Client::from_conf(conf)
    }

    fn context(src: &std::path::Path, wh: &std::path::Path) -> EtlContext {
        EtlContext {
            source: Arc::new(LocalDir::new(src)),
            warehouse: Arc::new(LocalDir::new(wh)),
            format: crate::warehouse::DataFormat::Ndjson,
            failures: None,
            shards: None,
        }
    }

    /// A runtime, and a context over a source of generated exports and an empty warehouse
    /// (the folders live as long as the returned pair).
    fn fixture() -> (tokio::runtime::Runtime, EtlContext, [tempfile::TempDir; 2]) {
        let (src, wh) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        crate::sharded::tests::exports(src.path(), 20);
        let ctx = context(src.path(), wh.path());
        (tokio::runtime::Runtime::new().unwrap(), ctx, [src, wh])
    }

    /// Base a's lease as the warehouse holds it.
    fn lease(ctx: &EtlContext) -> crate::lease::LeaseBody {
        crate::lease::read(ctx.warehouse.as_ref(), Base::A)
            .unwrap()
            .unwrap()
    }

    /// Whether the run's plan is in the warehouse.
    fn has_plan(ctx: &EtlContext, run: &str) -> bool {
        ctx.warehouse
            .get(&sharded::plan_key(run))
            .unwrap()
            .is_some()
    }

    fn options(run: &str) -> Options {
        let mut opts = Options::new(crate::warehouse::DataFormat::Ndjson);
        opts.run_id = run.into();
        opts.lease.hold = std::time::Duration::from_secs(120);
        opts
    }

    #[test]
    fn a_started_execution_holds_the_lease_for_the_state_machines_timeout() {
        let (rt, ctx, _dirs) = fixture();
        let out = start(
            &ctx,
            rt.handle(),
            &sfn(true),
            "arn:m",
            &options("r1"),
            Some("m1"),
        )
        .unwrap();
        assert_eq!(
            out["execution_arn"],
            "arn:aws:states:us-east-1:1:execution:m:r"
        );
        let lease = lease(&ctx);
        assert!(
            !lease.released && lease.holder.contains("execution:m:r"),
            "{lease:?}"
        );
        let now = chrono::Utc::now().timestamp();
        assert!(
            lease.expires > now + HOLD.as_secs() as i64 - 60,
            "{lease:?}"
        );
        let record = runs::read(ctx.warehouse.as_ref(), Base::A, "r1")
            .unwrap()
            .unwrap();
        assert_eq!(record.state, RunState::Running);
        assert!(record.expires > now + HOLD.as_secs() as i64 - 60);
        assert!(has_plan(&ctx, "r1"));
    }

    /// SNS delivers a message at least once: a second delivery of a message whose sharded
    /// run is running starts nothing and names that run.
    #[test]
    fn a_repeated_delivery_starts_no_second_execution() {
        let (rt, ctx, _dirs) = fixture();
        start(
            &ctx,
            rt.handle(),
            &sfn(true),
            "arn:m",
            &options("r1"),
            Some("m1"),
        )
        .unwrap();
        // The second delivery would start its own run, r2, were it not a duplicate; its
        // StartExecution would fail here.
        let again = start(
            &ctx,
            rt.handle(),
            &sfn(false),
            "arn:m",
            &options("r2"),
            Some("m1"),
        );
        assert_eq!(again.unwrap()["duplicate_of"], "r1");
        assert!(runs::read(ctx.warehouse.as_ref(), Base::A, "r2")
            .unwrap()
            .is_none());
        assert!(!has_plan(&ctx, "r2"));
        let lease = lease(&ctx);
        assert_eq!(lease.run, "r1");
    }

    /// Step Functions retries a publish whose response it lost: the second finds the run's
    /// record ended and returns its outcome, without publishing again or failing.
    #[test]
    fn a_repeated_publish_returns_the_recorded_outcome() {
        let (rt, ctx, _dirs) = fixture();
        start(&ctx, rt.handle(), &sfn(true), "arn:m", &options("r1"), None).unwrap();
        let items = sharded::read_plan(ctx.warehouse.as_ref(), "r1").unwrap();
        for item in &items {
            shard(&ctx, item).unwrap();
        }
        let first = publish(&ctx, rt.handle(), "r1").unwrap();
        assert_eq!(first["outcome"], "published");
        let marker = |c: &EtlContext| c.warehouse.get("a/sessions/_SUCCESS").unwrap().unwrap();
        let published = marker(&ctx);
        let second = publish(&ctx, rt.handle(), "r1").unwrap();
        assert_eq!(second, first);
        assert_eq!(marker(&ctx), published);
        let record = runs::read(ctx.warehouse.as_ref(), Base::A, "r1")
            .unwrap()
            .unwrap();
        assert_eq!(record.state, RunState::Succeeded);
    }

    #[test]
    fn a_state_machine_that_did_not_start_gives_back_the_lease_and_the_plan() {
        let (rt, ctx, _dirs) = fixture();
        let e = start(
            &ctx,
            rt.handle(),
            &sfn(false),
            "arn:m",
            &options("r2"),
            Some("m2"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("StartExecution") && e.contains("service unavailable"),
            "{e}"
        );
        let lease = lease(&ctx);
        assert!(lease.released, "{lease:?}");
        assert!(!has_plan(&ctx, "r2"));
        let record = runs::read(ctx.warehouse.as_ref(), Base::A, "r2")
            .unwrap()
            .unwrap();
        assert!(
            record.state == RunState::Failed && record.retry,
            "{record:?}"
        );
    }

    #[test]
    fn the_state_machines_payloads_parse_as_steps() {
        let item = json!({"run": "r1", "format": "parquet", "table": "sessions",
            "export": "a/sessions.json", "size": 10, "span": 0, "spans": 1, "start": 0,
            "stop": null, "column": 1});
        let shard: Step = serde_json::from_value(json!({"step": "shard", "item": item})).unwrap();
        assert!(matches!(shard, Step::Shard { item } if item.table == "sessions"));
        let publish: Step =
            serde_json::from_value(json!({"step": "publish", "run": "r1"})).unwrap();
        assert_eq!(publish, Step::Publish { run: "r1".into() });
        assert_eq!(execution_input("r1")["plan"], "a/_runs/r1/plan.json");
    }
}
