//! Following log groups as they are written: what `deployer logs --follow` and `deployer watch`
//! share. Each poll reads every group's events since the newest one seen (`FilterLogEvents`
//! from that millisecond, so an event written in the same millisecond is not missed, and the
//! events already printed are skipped by their ids). A group that cannot be read is reported
//! once, and once more when it can be read again, not at every poll.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
use aws_sdk_cloudwatchlogs::Client;

/// One group followed: a label to print its lines under, and the group's name.
pub struct Followed {
    pub label: String,
    pub group: String,
}

/// The state of a tail across polls.
pub struct Tail {
    client: Client,
    groups: Vec<Followed>,
    /// The newest event's time seen (ms since the epoch).
    since: i64,
    /// Ids of the events at `since`, already emitted.
    at_since: HashSet<String>,
    /// Groups whose last read failed, with the failure, reported once.
    failing: BTreeMap<String, String>,
}

/// What a poll found: the new events, each with its group's label, and what to tell the user
/// about reads that began or stopped failing.
#[derive(Default)]
pub struct Polled {
    pub events: Vec<(String, FilteredLogEvent)>,
    pub notices: Vec<String>,
}

impl Tail {
    /// Follows `groups` from `since` (ms since the epoch).
    pub fn new(client: Client, groups: Vec<Followed>, since: i64) -> Tail {
        Tail {
            client,
            groups,
            since,
            at_since: HashSet::new(),
            failing: BTreeMap::new(),
        }
    }

    /// Reads each group's events newer than the last poll's.
    pub async fn poll(&mut self) -> Polled {
        let mut out = Polled::default();
        let since = self.since;
        for f in &self.groups {
            let mut pages = self
                .client
                .filter_log_events()
                .log_group_name(&f.group)
                .start_time(since)
                .into_paginator()
                .send();
            let mut failure = None;
            while let Some(page) = pages.next().await {
                match page {
                    Ok(page) => {
                        for e in page.events() {
                            let id = e.event_id().unwrap_or_default();
                            if e.timestamp() == Some(since) && self.at_since.contains(id) {
                                continue;
                            }
                            out.events.push((f.label.clone(), e.clone()));
                        }
                    }
                    // A group that does not exist yet (a function never invoked) has no lines.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        break
                    }
                    Err(e) => {
                        failure = Some(format!(
                            "{:#}",
                            crate::aws::failed(format!("reading {}", f.group), e)
                        ));
                        break;
                    }
                }
            }
            match failure {
                Some(why) => {
                    if !self.failing.contains_key(&f.group) {
                        out.notices
                            .push(format!("{why} (still trying, every poll; said once)"));
                    }
                    self.failing.insert(f.group.clone(), why);
                }
                None => {
                    if self.failing.remove(&f.group).is_some() {
                        out.notices.push(format!("reading {} works again", f.group));
                    }
                }
            }
        }
        out.events
            .sort_by_key(|(_, e)| e.timestamp().unwrap_or_default());
        if let Some(newest) = out.events.iter().filter_map(|(_, e)| e.timestamp()).max() {
            if newest > self.since {
                self.since = newest;
                self.at_since.clear();
            }
            for (_, e) in &out.events {
                if e.timestamp() == Some(self.since) {
                    self.at_since
                        .insert(e.event_id().unwrap_or_default().to_owned());
                }
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Relies on aws-smithy-mocks: a read that fails, then works, in a set order.
    use super::*;
    use aws_sdk_cloudwatchlogs::operation::filter_log_events::{
        FilterLogEventsError, FilterLogEventsOutput,
    };
    use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};

    fn event(id: &str, ts: i64) -> FilteredLogEvent {
        FilteredLogEvent::builder()
            .event_id(id)
            .timestamp(ts)
            .message(format!("line {id}"))
            .build()
    }

    /// A CloudWatch Logs client answered by `rules`, in order (aws-smithy-mocks).
    pub(crate) fn client(rules: &[&aws_smithy_mocks::Rule]) -> Client {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::Sequential);
        for r in rules {
            interceptor = interceptor.with_rule(r);
        }
        let conf = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        Client::from_conf(conf)
    }

    /// Issue 27, part 5: `watch` printed a failing read at every poll.
    #[tokio::test]
    async fn a_failing_read_is_reported_once_and_its_recovery_once() {
        let denied = || {
            FilterLogEventsError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("no")
                    .build(),
            )
        };
        let fail1 = mock!(Client::filter_log_events).then_error(denied);
        let fail2 = mock!(Client::filter_log_events).then_error(denied);
        let ok = mock!(Client::filter_log_events).then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("1", 10))
                .events(event("2", 11))
                .build()
        });
        // The next poll reads from 11 again: the event at 11 is not repeated.
        let again = mock!(Client::filter_log_events).then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("2", 11))
                .events(event("3", 11))
                .build()
        });
        let groups = vec![Followed {
            label: "etl".into(),
            group: "/aws/lambda/x".into(),
        }];
        let mut tail = Tail::new(client(&[&fail1, &fail2, &ok, &again]), groups, 0);
        let first = tail.poll().await;
        assert_eq!(first.notices.len(), 1, "{:?}", first.notices);
        assert!(first.notices[0].contains("reading /aws/lambda/x"));
        assert!(tail.poll().await.notices.is_empty(), "said once");
        let back = tail.poll().await;
        assert_eq!(back.notices, ["reading /aws/lambda/x works again"]);
        assert_eq!(back.events.len(), 2);
        let next = tail.poll().await;
        let ids: Vec<&str> = next
            .events
            .iter()
            .map(|(_, e)| e.event_id().unwrap())
            .collect();
        assert_eq!(ids, ["3"]);
    }
}
