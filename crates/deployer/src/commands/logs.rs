//! `deployer logs <function> --stage S [--since-minutes N]`: the function's recent log lines.

use std::io::Write;

use aws_sdk_cloudwatchlogs::Client;

use crate::aws::Aws;
use crate::cli::{FunctionArg, Global, LogsArgs};
use stack_model::stage::FunctionRole;

fn role(f: FunctionArg) -> FunctionRole {
    match f {
        FunctionArg::Etl => FunctionRole::Etl,
        FunctionArg::SiteEvents => FunctionRole::SiteEvents,
        FunctionArg::EmrStarter => FunctionRole::EmrStarter,
        FunctionArg::TableRefresher => FunctionRole::TableRefresher,
    }
}

pub async fn run(global: &Global, args: &LogsArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let group = c.stage.log_group_name(role(args.function));
    let client = Client::new(&aws.conf);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64
        - (args.since_minutes as i64) * 60_000;
    let n = write_log_lines(&client, &group, since, &mut std::io::stdout().lock()).await?;
    if n == 0 {
        eprintln!(
            "no log lines in {group} in the last {} minutes",
            args.since_minutes
        );
    }
    Ok(())
}

/// Writes every line of `group` since `since` (ms since the epoch), one per line; returns how
/// many. What AWS does: FilterLogEvents searches a group a slice at a time and can answer a
/// page with no events but a `nextToken` (seen in awslabs/cloudwatch-logs-customize-alarms
/// issue 8); its reference says pagination is finished only when a response has no
/// `nextToken`. The SDK's paginator follows the tokens until then.
pub async fn write_log_lines(
    client: &Client,
    group: &str,
    since: i64,
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
            writeln!(out, "{}", e.message().unwrap_or_default().trim_end())?;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    //! Relies on aws-smithy-mocks: the emulator never answers an empty page with a token.
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
    use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};

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
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::Sequential)
            .with_rule(&rule);
        let conf = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        let mut out = Vec::new();
        let n = write_log_lines(&Client::from_conf(conf), "/aws/lambda/x", 0, &mut out)
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(String::from_utf8(out).unwrap(), "first\nsecond\n");
        assert_eq!(rule.num_calls(), 4);
    }
}
