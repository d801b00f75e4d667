//! The Lambda handlers: small async functions over typed events. The logic they call lives
//! in plain functions (`crate::run`, `crate::snapshot`, [`emr_starter::request`]) that tests
//! call directly.

pub mod emr_starter;
pub mod etl;
pub mod recorded;
pub mod shards;
pub mod site_events;
pub mod table_refresher;

use aws_config::{BehaviorVersion, SdkConfig};

/// A setting the function needs and its environment lacks (the template sets them all).
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct EnvError {
    pub name: &'static str,
    pub problem: String,
}

/// Reads a required setting through `get` (the process environment in Lambda).
pub fn required(
    get: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, EnvError> {
    match get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(EnvError {
            name,
            problem: "is not set".into(),
        }),
    }
}

/// The process environment, as [`required`] reads it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The time left before `deadline` (milliseconds since the epoch, as Lambda gives it).
pub fn remaining(deadline_ms: u64) -> std::time::Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::time::Duration::from_millis(deadline_ms).saturating_sub(now)
}

/// A function's lease on its base ([`crate::lease`]): held a minute past the invocation's
/// deadline, when Lambda has stopped it whatever happened, so the lease of a live run never
/// lapses; waited for a quarter of the time left, at most 30 seconds, so a refused run still
/// has time to say so. A refusal fails the invocation, and Lambda's retries (about a minute,
/// then two, later) try again.
pub fn function_lease(remaining: std::time::Duration) -> crate::lease::Terms {
    use std::time::Duration;
    crate::lease::Terms {
        hold: remaining + Duration::from_secs(60),
        wait: (remaining / 4).min(Duration::from_secs(30)),
        poll: Duration::from_secs(1),
    }
}

/// Attempts of each AWS call a function makes: the SDK's standard retry mode (exponential
/// backoff with jitter, a retry quota), with five attempts rather than its default three. S3
/// answers 503 SlowDown when a prefix's request rate climbs, and asks the client to back off
/// and retry ("Best practices design patterns: optimizing Amazon S3 performance"); a run
/// holds its lease and its deadline meanwhile, so more patient retries cost less than a failed
/// run. The `adaptive` mode's client-side rate limiter suits many clients of one service
/// sharing a budget, not one run's sequential calls. Measured under injected faults:
/// docs/BENCHMARKS.md, "Faults in the middle".
pub const FUNCTION_ATTEMPTS: u32 = 5;

/// SDK settings from the standard chain (in Lambda: the function role's credentials), with
/// [`FUNCTION_ATTEMPTS`]. `AWS_ENDPOINT_URL` is honoured by the chain itself.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(FUNCTION_ATTEMPTS),
        )
        .timeout_config(function_timeouts())
        .load()
        .await
}

/// Bounds on each attempt, so a connection that stops answering fails the attempt (and the
/// retry mode tries again) instead of holding the run until Lambda's deadline: the SDK sets
/// none but the connect timeout by default. An attempt ends when the response's headers have
/// arrived (a streamed object body is read after), so a large export is not cut off.
fn function_timeouts() -> aws_config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build()
}

/// The stage's failure queue, when the function's environment names it.
pub fn failure_queue(conf: &SdkConfig) -> Option<recorded::FailureQueue> {
    std::env::var(recorded::FAILURE_QUEUE_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .map(|url| recorded::FailureQueue {
            client: aws_sdk_sqs::Client::new(conf),
            url,
        })
}

/// An S3 client; path-style addressing when an endpoint override is set (the local
/// emulator has no per-bucket host names).
pub fn s3_client(conf: &SdkConfig) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(conf);
    if conf.endpoint_url().is_some() {
        b = b.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// Decodes an S3 event's object key (URL-encoded, `+` for spaces).
pub fn decode_event_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_are_decoded() {
        assert_eq!(
            decode_event_key("a/students/_SUCCESS"),
            "a/students/_SUCCESS"
        );
        assert_eq!(
            decode_event_key("b/x+y/%C3%A3%2F_SUCCESS"),
            "b/x y/ã/_SUCCESS"
        );
        assert_eq!(decode_event_key("100%"), "100%");
    }

    #[test]
    fn missing_settings_are_named() {
        let env = |n: &str| (n == "SET").then(|| "v".to_string());
        assert_eq!(required(&env, "SET").unwrap(), "v");
        assert_eq!(
            required(&env, "SOURCE_BUCKET").unwrap_err().to_string(),
            "environment variable SOURCE_BUCKET: is not set"
        );
    }
}
