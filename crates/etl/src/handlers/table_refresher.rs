//! The table refresher: every `_SUCCESS` marker of the warehouse reaches it (through the
//! stage's EventBridge rule); it starts the crawler once every table of that base is complete
//! (see [`crate::snapshot::decide`]). A crawler that is already running is logged, not an
//! error.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};

use super::decode_event_key;
use crate::snapshot::{decide, marker_table, read_markers, Decision};
use crate::storage::Storage;
use crate::warehouse::Base;

/// What the function needs: the warehouse (to read markers) and the crawler to start.
pub struct RefresherContext {
    pub warehouse: Arc<dyn Storage>,
    pub glue: aws_sdk_glue::Client,
    pub crawler: String,
}

/// What happened for one base (or one object that is not a marker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    CrawlerStarted { base: String, run: Option<String> },
    CrawlerAlreadyRunning { base: String },
    Waiting { base: String, reason: String },
    NotAMarker { key: String },
}

/// What StartCrawler did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlerStart {
    Started,
    AlreadyRunning,
}

/// Starts the crawler; `AlreadyRunning` when Glue says it is running (another marker, or a
/// user, started it first).
pub async fn start_crawler(
    glue: &aws_sdk_glue::Client,
    name: &str,
) -> Result<CrawlerStart, lambda_runtime::Error> {
    match glue.start_crawler().name(name).send().await {
        Ok(_) => Ok(CrawlerStart::Started),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_crawler_running_exception()) =>
        {
            Ok(CrawlerStart::AlreadyRunning)
        }
        Err(e) => Err(format!(
            "starting crawler {name}: {}",
            aws_sdk_glue::error::DisplayErrorContext(e)
        )
        .into()),
    }
}

/// What invokes the refresher: EventBridge's "Object Created" event of a marker, from the
/// stage's rule (S3 user guide, "EventBridge event message structure": the key is in
/// `detail.object.key`, not URL-encoded), or S3's own notification (`Records`, keys
/// URL-encoded), which stages deployed before the rule still send.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RefresherEvent {
    EventBridge(ObjectCreated),
    S3(S3Event),
}

#[derive(Debug, Deserialize)]
pub struct ObjectCreated {
    pub detail: ObjectCreatedDetail,
}

#[derive(Debug, Deserialize)]
pub struct ObjectCreatedDetail {
    pub object: ObjectKey,
}

#[derive(Debug, Deserialize)]
pub struct ObjectKey {
    pub key: String,
}

impl RefresherEvent {
    /// The object keys the event names, decoded.
    pub fn keys(&self) -> Vec<String> {
        match self {
            RefresherEvent::EventBridge(e) => vec![e.detail.object.key.clone()],
            RefresherEvent::S3(e) => e
                .records
                .iter()
                .map(|r| decode_event_key(r.s3.object.key.as_deref().unwrap_or_default()))
                .collect(),
        }
    }
}

/// The bases whose markers the event names, and the keys that are not markers.
pub fn bases_of(event: &RefresherEvent) -> (BTreeSet<Base>, Vec<String>) {
    let mut bases = BTreeSet::new();
    let mut others = Vec::new();
    for key in event.keys() {
        match marker_table(&key) {
            Some(t) => {
                bases.insert(t.base);
            }
            None => others.push(key),
        }
    }
    (bases, others)
}

pub async fn handle(
    event: LambdaEvent<RefresherEvent>,
    ctx: Arc<RefresherContext>,
) -> Result<Vec<Outcome>, lambda_runtime::Error> {
    let (bases, others) = bases_of(&event.payload);
    let mut outcomes: Vec<Outcome> = others
        .into_iter()
        .map(|key| Outcome::NotAMarker { key })
        .collect();
    for base in bases {
        let outcome = refresh(base, &ctx).await?;
        tracing::info!(outcome = %serde_json::to_string(&outcome)?, "table refresher");
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Reads the base's markers, decides, and starts the crawler when the base is complete.
pub async fn refresh(
    base: Base,
    ctx: &Arc<RefresherContext>,
) -> Result<Outcome, lambda_runtime::Error> {
    let warehouse = ctx.warehouse.clone();
    let markers =
        tokio::task::spawn_blocking(move || read_markers(warehouse.as_ref(), base)).await??;
    let name = base.folder().to_owned();
    Ok(match decide(base, &markers) {
        Decision::Crawl { run, .. } => match start_crawler(&ctx.glue, &ctx.crawler).await? {
            CrawlerStart::Started => Outcome::CrawlerStarted { base: name, run },
            CrawlerStart::AlreadyRunning => Outcome::CrawlerAlreadyRunning { base: name },
        },
        Decision::WaitForTables { missing, .. } => Outcome::Waiting {
            base: name,
            reason: format!("no marker yet for: {}", missing.join(", ")),
        },
        Decision::WaitForRun { runs, .. } => Outcome::Waiting {
            base: name,
            reason: format!("markers of different runs: {}", runs.join(", ")),
        },
    })
}

#[cfg(test)]
mod tests {
    //! Glue's answers are mocked at the SDK level (aws-smithy-mocks): the emulator's crawler
    //! never reports itself busy to a second caller in a way a test can time.
    use super::*;
    use aws_sdk_glue::operation::start_crawler::{StartCrawlerError, StartCrawlerOutput};
    use aws_sdk_glue::types::error::{CrawlerRunningException, EntityNotFoundException};
    use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};

    fn glue(rule: aws_smithy_mocks::Rule) -> aws_sdk_glue::Client {
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::Sequential)
            .with_rule(&rule);
        let conf = aws_sdk_glue::Config::builder()
            .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
            .region(aws_sdk_glue::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_glue::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        aws_sdk_glue::Client::from_conf(conf)
    }

    #[tokio::test]
    async fn a_crawler_already_running_is_not_an_error() {
        let busy = mock!(aws_sdk_glue::Client::start_crawler).then_error(|| {
            StartCrawlerError::CrawlerRunningException(
                CrawlerRunningException::builder()
                    .message("Crawler is running")
                    .build(),
            )
        });
        assert_eq!(
            start_crawler(&glue(busy), "c").await.unwrap(),
            CrawlerStart::AlreadyRunning
        );
        let ok = mock!(aws_sdk_glue::Client::start_crawler)
            .match_requests(|r| r.name() == Some("pdcase-alice-warehouse-crawler"))
            .then_output(|| StartCrawlerOutput::builder().build());
        assert_eq!(
            start_crawler(&glue(ok), "pdcase-alice-warehouse-crawler")
                .await
                .unwrap(),
            CrawlerStart::Started
        );
    }

    #[tokio::test]
    async fn other_glue_errors_fail_the_invocation_naming_the_crawler() {
        let missing = mock!(aws_sdk_glue::Client::start_crawler).then_error(|| {
            StartCrawlerError::EntityNotFoundException(
                EntityNotFoundException::builder()
                    .message("no such crawler")
                    .build(),
            )
        });
        let e = start_crawler(&glue(missing), "gone")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("starting crawler gone: "), "{e}");
        assert!(e.contains("no such crawler"), "{e}");
    }

    #[test]
    fn only_markers_name_a_base() {
        let event: RefresherEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"eventTime": "2026-11-24T00:00:00Z", "userIdentity": {}, "requestParameters": {},
             "s3": {"bucket": {"name": "wh"}, "object": {"key": "a/students/_SUCCESS"}}},
            {"eventTime": "2026-11-24T00:00:00Z", "userIdentity": {}, "requestParameters": {},
             "s3": {"bucket": {"name": "wh"}, "object": {"key": "b/events-by-city/_SUCCESS"}}},
            {"eventTime": "2026-11-24T00:00:00Z", "userIdentity": {}, "requestParameters": {},
             "s3": {"bucket": {"name": "wh"}, "object": {"key": "a/students/data.parquet"}}}
        ]}))
        .unwrap();
        let (bases, others) = bases_of(&event);
        assert_eq!(bases.into_iter().collect::<Vec<_>>(), [Base::A, Base::B]);
        assert_eq!(others, ["a/students/data.parquet"]);
    }

    /// The event the stage's rule delivers (the shape of S3's "Object Created" event on
    /// EventBridge, from the S3 user guide), key not URL-encoded.
    #[test]
    fn an_eventbridge_object_created_event_names_its_marker() {
        let event: RefresherEvent = serde_json::from_value(serde_json::json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2021-11-12T00:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::wh"],
            "detail": {"version": "0", "bucket": {"name": "wh"},
                       "object": {"key": "b/events-by-city/_SUCCESS", "size": 60, "etag": "e"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
                       "reason": "PutObject"}
        }))
        .unwrap();
        assert!(matches!(event, RefresherEvent::EventBridge(_)));
        let (bases, others) = bases_of(&event);
        assert_eq!(bases.into_iter().collect::<Vec<_>>(), [Base::B]);
        assert!(others.is_empty());
    }
}
