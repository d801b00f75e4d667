//! `deployer trigger etl|spark --stage S`: publishes a message to the stage's topic, which
//! starts the ETL function, or base b: the site-events function, or (through the EMR starter)
//! the Spark job, by the stage's `base_b_engine`. With `--wait`, follows the run the message
//! starts through its claim and run record ([`etl::runs`]) to its report or its error.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use etl::runs::RunState;
use stack_model::warehouse::Base;

use crate::aws::Aws;
use crate::cli::{Global, ReportFormat, TriggerArgs, TriggerWhat};
use crate::cloudformation::status::{output, stack_outputs};
use crate::run_records;
use stack_model::config::BaseBEngine;
use stack_model::pipeline::outputs;

pub async fn run(global: &Global, args: &TriggerArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    serde_json::from_str::<serde_json::Value>(&args.message).context("--message must be JSON")?;
    let aws = Aws::connect(&c.region).await;
    let outs = stack_outputs(&aws, &c).await?;
    let topic = output(
        &outs,
        match args.what {
            TriggerWhat::Etl => outputs::ETL_TOPIC,
            TriggerWhat::BaseB => outputs::EMR_TOPIC,
        },
    )?;
    let sns = aws_sdk_sns::Client::new(&aws.conf);
    let out = sns
        .publish()
        .topic_arn(topic)
        .message(&args.message)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("publishing to {topic}"), e))?;
    let starts = match (args.what, c.base_b_engine) {
        (TriggerWhat::Etl, _) => "the ETL function",
        (TriggerWhat::BaseB, BaseBEngine::Function) => "base b in the site-events function",
        (TriggerWhat::BaseB, BaseBEngine::Emr) => {
            "the EMR starter (a job run on the stage's EMR Serverless application)"
        }
    };
    let message_id = out.message_id().unwrap_or("?").to_owned();
    let waiting = if args.wait {
        "; waiting for its run"
    } else {
        ""
    };
    // With --wait or --format json a document goes to standard output: the line goes to
    // standard error.
    let line = format!("published message {message_id} to {topic}: it starts {starts}{waiting}");
    let mut document = serde_json::json!({
        "stage": c.stage.as_str(),
        "message_id": message_id,
        "topic": topic,
        "starts": starts,
    });
    if !args.wait {
        match args.format {
            ReportFormat::Text => println!("{line}"),
            ReportFormat::Json => {
                eprintln!("{line}");
                crate::output::print_json(&document)?;
            }
        }
        return Ok(());
    }
    eprintln!("{line}");
    let (base, default_minutes) = match args.what {
        TriggerWhat::Etl => (Base::A, 15),
        TriggerWhat::BaseB => (Base::B, 180),
    };
    let bucket = output(&outs, outputs::WAREHOUSE_BUCKET)?;
    let application = output(&outs, outputs::EMR_APPLICATION).ok();
    let timeout = Duration::from_secs(60 * args.timeout_minutes.unwrap_or(default_minutes));
    let report = wait_for_run(&aws, bucket, base, &message_id, application, timeout).await?;
    match args.format {
        // The run's report (its run, counts and tables), as a JSON document.
        ReportFormat::Text => crate::output::print_json(&report)?,
        ReportFormat::Json => {
            document["report"] = report;
            crate::output::print_json(&document)?;
        }
    }
    Ok(())
}

/// How long a failed run that Lambda retries may take to be run again: its retries come about
/// a minute and then two after a failure ("How Lambda handles errors and retries with
/// asynchronous invocation"), each a new run of the message.
const RETRY_GRACE: Duration = Duration::from_secs(5 * 60);

/// Follows the message's run: its claim, then its record, until it ends.
async fn wait_for_run(
    aws: &Aws,
    bucket: &str,
    base: Base,
    message_id: &str,
    application: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let mut seen: Option<String> = None;
    let mut failed_at: Option<(Instant, String)> = None;
    loop {
        if started.elapsed() > timeout {
            bail!(
                "no outcome of message {message_id} after {} minutes{}; `deployer runs --stage ...` and `deployer logs` show where it stands",
                timeout.as_secs() / 60,
                seen.map(|r| format!(" (its run {r} is still going)")).unwrap_or_default()
            );
        }
        if let Some((at, error)) = &failed_at {
            if at.elapsed() > RETRY_GRACE {
                bail!("{error} (not run again within {} minutes: Lambda gave up, and the failure went to the stage's failure queue)", RETRY_GRACE.as_secs() / 60);
            }
        }
        let Some(run) = run_records::claimed_run(aws, bucket, base, message_id).await? else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        if seen.as_deref() != Some(run.as_str()) {
            eprintln!("run {run} took the message");
            seen = Some(run.clone());
            failed_at = None;
        }
        let Some(record) = run_records::record(aws, bucket, base, &run).await? else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        match record.state {
            RunState::Succeeded => {
                eprintln!("run {run} succeeded");
                // A document, so it takes a `format_version`: a run that reported nothing
                // still names itself.
                return Ok(record
                    .report
                    .filter(serde_json::Value::is_object)
                    .unwrap_or_else(|| serde_json::json!({ "run": run })));
            }
            RunState::Failed if !record.retry => {
                let error = record.error.unwrap_or_default();
                let why = if error.contains("Lambda's last") {
                    ""
                } else {
                    " (not retried: the same input fails the same way; it went to the stage's failure queue)"
                };
                bail!("run {run} failed: {error}{why}");
            }
            RunState::Failed => {
                if failed_at.is_none() {
                    let error = format!(
                        "run {run} failed: {}",
                        record.error.clone().unwrap_or_default()
                    );
                    eprintln!("{error}; Lambda runs the message again");
                    failed_at = Some((Instant::now(), error));
                }
            }
            RunState::Running if !record.live(now()) => {
                // Killed (its deadline passed without an outcome): Lambda runs the message
                // again, as after a failure.
                if failed_at.is_none() {
                    let error =
                        format!("run {run} was stopped before it ended (its deadline passed)");
                    eprintln!("{error}; Lambda runs the message again");
                    failed_at = Some((Instant::now(), error));
                }
            }
            RunState::Running => {
                if let (Some(job), Some(app)) = (&record.job_run_id, application) {
                    if let Some(ended) = job_run_ended(aws, app, job).await? {
                        return ended.map(|state| {
                            eprintln!("job run {job}: {state} (it wrote no outcome)");
                            serde_json::json!({ "run": run, "job_run_id": job, "state": state })
                        });
                    }
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

const POLL: Duration = Duration::from_secs(2);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A job run that has ended without writing its outcome (EMR Serverless reports it): Ok with
/// its state when it succeeded, an error when it failed or was cancelled; `None` while it runs.
async fn job_run_ended(
    aws: &Aws,
    application: &str,
    job: &str,
) -> anyhow::Result<Option<anyhow::Result<String>>> {
    use aws_sdk_emrserverless::types::JobRunState;
    let emr = aws_sdk_emrserverless::Client::new(&aws.conf);
    let out = emr
        .get_job_run()
        .application_id(application)
        .job_run_id(job)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("GetJobRun {job}"), e))?;
    let Some(run) = out.job_run() else {
        return Ok(None);
    };
    Ok(match run.state() {
        JobRunState::Success => Some(Ok("SUCCESS".into())),
        JobRunState::Failed | JobRunState::Cancelled => Some(Err(anyhow::anyhow!(
            "job run {job} {}: {}",
            run.state().as_str(),
            run.state_details()
        ))),
        _ => None,
    })
}
