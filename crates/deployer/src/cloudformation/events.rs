//! Stack events as a stream: each poll returns the events that appeared since the last one,
//! oldest first, and a progress display shows them live.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::StackEvent;
use aws_sdk_cloudformation::Client;
use indicatif::{ProgressBar, ProgressStyle};

use super::status::{sentiment, Sentiment};

/// One event, as the deployer shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

impl From<&StackEvent> for Event {
    fn from(e: &StackEvent) -> Self {
        Event {
            logical_id: e.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: e.resource_type().unwrap_or_default().to_owned(),
            status: e
                .resource_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: e.resource_status_reason().map(str::to_owned),
        }
    }
}

/// New events of one stack since the watcher started.
pub struct Watcher {
    stack: String,
    seen: HashSet<String>,
}

impl Watcher {
    /// Remembers the events the stack already has, so only new ones are reported.
    pub async fn start(cfn: &Client, stack: &str) -> anyhow::Result<Watcher> {
        let mut w = Watcher {
            stack: stack.to_owned(),
            seen: HashSet::new(),
        };
        w.poll(cfn).await?;
        Ok(w)
    }

    /// The events that appeared since the last poll, oldest first.
    pub async fn poll(&mut self, cfn: &Client) -> anyhow::Result<Vec<Event>> {
        let mut fresh = Vec::new();
        let mut token = None;
        'pages: loop {
            let out = match cfn
                .describe_stack_events()
                .stack_name(&self.stack)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let text = crate::aws::error_text(e);
                    if text.contains("does not exist") {
                        break;
                    }
                    anyhow::bail!("reading events of {}: {text}", self.stack);
                }
            };
            // Newest first: stop at the first event already seen.
            for e in out.stack_events() {
                let id = e.event_id().unwrap_or_default().to_owned();
                if !self.seen.insert(id) {
                    break 'pages;
                }
                fresh.push(Event::from(e));
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        fresh.reverse();
        Ok(fresh)
    }
}

/// The failure that explains an operation: the first resource that failed for a reason of
/// its own (not "cancelled" because another one failed).
pub fn root_cause(events: &[Event]) -> Option<&Event> {
    let failed = || events.iter().filter(|e| e.status.ends_with("_FAILED"));
    failed()
        .find(|e| {
            let r = e.reason.as_deref().unwrap_or_default().to_ascii_lowercase();
            !r.contains("cancelled") && !r.contains("canceled")
        })
        .or_else(|| failed().next())
}

/// The resource-level failures behind a stack-level "Validation failed ... Call
/// DescribeEvents" (CloudFormation's pre-provisioning validation, such as a bucket name
/// already taken), as `LogicalId (Type): reason` lines. With `change_set`, those of that
/// change set: a change set that fails early validation says only "The following hook(s)
/// /validation failed: [AWS::EarlyValidation::...]" in its status reason, and its findings
/// are events of the change set (CloudFormation user guide, "Pre-deployment validation").
pub async fn validation_failures(
    cfn: &Client,
    stack: &str,
    change_set: Option<&str>,
) -> Vec<String> {
    // Every page: a change set's findings may follow pages of other events (DescribeEvents
    // answers a page at a time with a `NextToken`; CloudFormation API reference).
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let Ok(out) = cfn
            .describe_events()
            .stack_name(stack)
            .set_change_set_name(change_set.map(str::to_owned))
            .set_next_token(token.take())
            .send()
            .await
        else {
            break;
        };
        events.extend(out.operation_events().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    events
        .iter()
        .filter(|e| {
            e.validation_status()
                .is_some_and(|s| s.as_str() == "FAILED")
                || e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
        })
        .filter(|e| e.logical_resource_id() != Some(stack))
        .map(|e| {
            format!(
                "{} ({}): {}",
                e.logical_resource_id().unwrap_or("?"),
                e.resource_type().unwrap_or("?"),
                e.validation_status_reason()
                    .or(e.resource_status_reason())
                    .unwrap_or("no reason given")
            )
        })
        .collect()
}

/// Shows events live: a bar (resources done / total, elapsed) on a terminal, plain lines
/// otherwise (CI logs, pipes).
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    done: HashSet<String>,
}

impl Progress {
    pub fn new(what: &str, total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} resources, {elapsed} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            eprintln!("{what}: {total} resources");
        }
        Progress {
            bar,
            started: Instant::now(),
            done: HashSet::new(),
        }
    }

    pub fn event(&mut self, e: &Event) {
        if e.status.ends_with("_COMPLETE")
            && sentiment(&e.status) == Sentiment::Positive
            && e.resource_type != "AWS::CloudFormation::Stack"
        {
            self.done.insert(e.logical_id.clone());
        }
        let line = format!(
            "[{:>6.1}s] {:<28} {:<32} {}{}",
            self.started.elapsed().as_secs_f64(),
            e.status,
            e.resource_type,
            e.logical_id,
            e.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done.len() as u64);
                if sentiment(&e.status) == Sentiment::Negative {
                    bar.println(line);
                } else {
                    bar.set_message(format!("{} {}", e.logical_id, e.status));
                }
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, status: &str, reason: &str) -> Event {
        Event {
            logical_id: id.into(),
            resource_type: "AWS::IAM::Policy".into(),
            status: status.into(),
            reason: (!reason.is_empty()).then(|| reason.into()),
        }
    }

    #[test]
    fn the_root_cause_is_the_first_failure_not_the_cancellations() {
        let events = [
            ev("A", "CREATE_IN_PROGRESS", ""),
            ev("B", "CREATE_FAILED", "Resource creation cancelled"),
            ev(
                "C",
                "CREATE_FAILED",
                "The role with name nope cannot be found.",
            ),
            ev("D", "CREATE_FAILED", "later"),
        ];
        assert_eq!(root_cause(&events).unwrap().logical_id, "C");
        assert_eq!(root_cause(&events[..2]).unwrap().logical_id, "B");
        assert!(root_cause(&events[..1]).is_none());
    }
}
