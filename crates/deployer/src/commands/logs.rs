//! `deployer logs <function> --stage S [--since-minutes N]`: the function's recent log lines;
//! `deployer logs spark --stage S`: the latest Spark job run's state and its driver's output.

use std::io::{Read, Write};

use anyhow::{bail, Context};
use aws_sdk_cloudwatchlogs::Client;

use crate::aws::Aws;
use crate::cli::{Global, LogSource, LogsArgs, ReportFormat};
use crate::cloudformation::status::{output, stack_outputs};
use crate::log_tail::{Followed, Tail};
use stack_model::pipeline::{emr::LOG_PREFIX, outputs};
use stack_model::stage::FunctionRole;

fn role(f: LogSource) -> Option<FunctionRole> {
    Some(match f {
        LogSource::Etl => FunctionRole::Etl,
        LogSource::SiteEvents => FunctionRole::SiteEvents,
        LogSource::EmrStarter => FunctionRole::EmrStarter,
        LogSource::TableRefresher => FunctionRole::TableRefresher,
        LogSource::Spark => return None,
    })
}

pub async fn run(global: &Global, args: &LogsArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let Some(function) = role(args.function) else {
        if args.follow {
            anyhow::bail!("--follow follows a function's log group; the Spark driver's output is one file EMR Serverless writes as the run goes: run `deployer logs spark --stage {}` again", c.stage);
        }
        return spark(&aws, &c, args.format == ReportFormat::Json).await;
    };
    let group = c.stage.log_group_name(function);
    let client = Client::new(&aws.conf);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - (args.since_minutes as i64) * 60_000;
    let json = args.format == ReportFormat::Json;
    if args.follow {
        return follow(client, group, since, json).await;
    }
    let n = write_log_lines(&client, &group, since, json, &mut std::io::stdout().lock()).await?;
    if n == 0 {
        eprintln!(
            "no log lines in {group} in the last {} minutes",
            args.since_minutes
        );
    }
    Ok(())
}

/// `--follow`: the group's lines since `since`, then new ones every two seconds until Ctrl-C.
async fn follow(client: Client, group: String, since: i64, json: bool) -> anyhow::Result<()> {
    eprintln!("following {group} (Ctrl-C stops)");
    let label = group.clone();
    let mut tail = Tail::new(client, vec![Followed { label, group }], since);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tick.tick() => {
                let polled = tail.poll().await;
                for notice in polled.notices {
                    eprintln!("logs: {notice}");
                }
                let mut out = std::io::stdout().lock();
                for (group, e) in polled.events {
                    write_event(&mut out, &group, &e, json)?;
                }
                out.flush()?;
            }
        }
    }
}

/// Where EMR Serverless writes a job run's driver output under the application's S3 log
/// location (EMR Serverless user guide, "Logging and monitoring", "Amazon S3 logs":
/// `<logUri>/applications/<application>/jobs/<job run>/SPARK_DRIVER/stdout.gz`).
pub fn driver_output_key(application: &str, job_run: &str) -> String {
    format!("{LOG_PREFIX}applications/{application}/jobs/{job_run}/SPARK_DRIVER/stdout.gz")
}

/// The latest job run of the stage's application: its state, then its driver's output (with
/// `json`, one document: the job run's id, name, state and details, and the driver's output,
/// `null` while EMR Serverless has not written it).
async fn spark(aws: &Aws, c: &stack_model::StageConfig, json: bool) -> anyhow::Result<()> {
    let outs = stack_outputs(aws, c).await?;
    let Ok(app) = output(&outs, outputs::EMR_APPLICATION) else {
        bail!(
            "stage {} runs base b in its site-events function (`base_b_engine: function`), not on EMR Serverless: use `deployer logs site-events --stage {}`",
            c.stage,
            c.stage
        );
    };
    let jobs = output(&outs, outputs::JOBS_BUCKET)?;
    let client = aws_sdk_emrserverless::Client::new(&aws.conf);
    let runs = client
        .list_job_runs()
        .application_id(app)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("ListJobRuns of application {app}"), e))?;
    let Some(latest) = runs
        .job_runs()
        .iter()
        .max_by_key(|r| r.created_at().as_nanos())
    else {
        eprintln!("application {app} has no job runs yet (`deployer trigger base-b --stage {}` starts one)", c.stage);
        if json {
            crate::output::print_json(&serde_json::json!({
                "stage": c.stage.as_str(), "application": app, "job_run": null, "driver_output": null,
            }))?;
        }
        return Ok(());
    };
    let run = client
        .get_job_run()
        .application_id(app)
        .job_run_id(latest.id())
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("GetJobRun {}", latest.id()), e))?;
    let run = run
        .job_run()
        .context("GetJobRun answered without the run")?;
    let details = run.state_details();
    let mut document = serde_json::json!({
        "stage": c.stage.as_str(),
        "application": app,
        "job_run": {
            "id": run.job_run_id(),
            "name": run.name(),
            "state": run.state().as_str(),
            "details": details,
        },
        "driver_output": null,
    });
    let head = format!(
        "job run {} ({}): {}{}",
        run.job_run_id(),
        run.name().unwrap_or_default(),
        run.state().as_str(),
        if details.is_empty() {
            String::new()
        } else {
            format!(": {details}")
        }
    );
    if json {
        eprintln!("{head}");
    } else {
        println!("{head}");
    }
    let key = driver_output_key(app, run.job_run_id());
    let object = match aws.s3.get_object().bucket(jobs).key(&key).send().await {
        Ok(o) => o,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            eprintln!("no driver output yet at s3://{jobs}/{key} (EMR Serverless writes it as the run goes)");
            if json {
                crate::output::print_json(&document)?;
            }
            return Ok(());
        }
        Err(e) => return Err(crate::aws::failed(format!("reading s3://{jobs}/{key}"), e)),
    };
    let body = object
        .body
        .collect()
        .await
        .with_context(|| format!("reading s3://{jobs}/{key}"))?
        .into_bytes();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .with_context(|| format!("s3://{jobs}/{key} is not gzipped text"))?;
    if json {
        document["driver_output"] = text.into();
        return crate::output::print_json(&document);
    }
    let mut out = std::io::stdout().lock();
    for line in text.lines() {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes every line of `group` since `since` (ms since the epoch), one per line (with `json`,
/// one JSON document per line: the group, the stream, the time in ms, the message); returns how
/// many. What AWS does: FilterLogEvents searches a group a slice at a time and can answer a
/// page with no events but a `nextToken` (seen in awslabs/cloudwatch-logs-customize-alarms
/// issue 8); its reference says pagination is finished only when a response has no
/// `nextToken`. The SDK's paginator follows the tokens until then.
pub async fn write_log_lines(
    client: &Client,
    group: &str,
    since: i64,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let mut pages = client
        .filter_log_events()
        .log_group_name(group)
        .start_time(since)
        .into_paginator()
        .send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::aws::failed(format!("reading {group}"), e))?;
        for e in page.events() {
            n += 1;
            write_event(out, group, e, json)?;
        }
    }
    Ok(n)
}

/// One event as a line: its message, or (`json`) a JSON document with its group, stream and
/// time.
fn write_event(
    out: &mut impl Write,
    group: &str,
    e: &aws_sdk_cloudwatchlogs::types::FilteredLogEvent,
    json: bool,
) -> anyhow::Result<()> {
    let message = e.message().unwrap_or_default().trim_end();
    if json {
        let line = crate::output::json_line(&serde_json::json!({
            "group": group,
            "stream": e.log_stream_name(),
            "timestamp": e.timestamp(),
            "message": message,
        }))?;
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "{message}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Relies on aws-smithy-mocks: the emulator never answers an empty page with a token.
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
    use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
    use aws_smithy_mocks::mock;

    fn page(lines: &[&str], token: Option<&str>) -> FilterLogEventsOutput {
        FilterLogEventsOutput::builder()
            .set_events(Some(
                lines
                    .iter()
                    .map(|l| FilteredLogEvent::builder().message(*l).build())
                    .collect(),
            ))
            .set_next_token(token.map(str::to_owned))
            .build()
    }

    /// Issue 12g: `deployer logs` stopped at the first empty page.
    #[tokio::test]
    async fn an_empty_page_with_a_token_is_not_the_end() {
        let rule = mock!(Client::filter_log_events)
            .sequence()
            .output(|| page(&[], Some("t1")))
            .output(|| page(&["first\n"], Some("t2")))
            .output(|| page(&[], Some("t3")))
            .output(|| page(&["second"], None))
            .build();
        let client = crate::log_tail::tests::client(&[&rule]);
        let mut out = Vec::new();
        let n = write_log_lines(&client, "/aws/lambda/x", 0, false, &mut out)
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(String::from_utf8(out).unwrap(), "first\nsecond\n");
        assert_eq!(rule.num_calls(), 4);
    }
}
