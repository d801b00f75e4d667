//! SDK clients from the standard chain (environment, profiles, SSO, instance roles).
//! `AWS_ENDPOINT_URL` is honoured by the chain; with an endpoint override S3 uses path-style
//! addressing (the local emulator has no per-bucket host names). The same binary works
//! unchanged against AWS.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudformation::error::ProvideErrorMetadata;

/// The profile `--profile` names, for every client the CLI makes (the SDK's default chain
/// otherwise: `AWS_PROFILE`, SSO, environment keys, instance roles).
static PROFILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Uses `profile` for every AWS client from now on (`--profile`).
pub fn use_profile(profile: &str) {
    let _ = PROFILE.set(profile.to_owned());
}

/// The region the profile (or `AWS_REGION`) names, if any: where `deployer ls` looks by
/// default.
pub async fn profile_region() -> Option<String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = PROFILE.get() {
        loader = loader.profile_name(profile);
    }
    loader.load().await.region().map(|r| r.to_string())
}

pub struct Aws {
    pub conf: SdkConfig,
    pub cfn: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    /// Clients for `region` (the stage's region: a stage lives in one region).
    pub async fn connect(region: &str) -> Aws {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
        if let Some(profile) = PROFILE.get() {
            loader = loader.profile_name(profile);
        }
        let mut conf = loader.load().await;
        if std::env::var_os(COUNT_REQUESTS_ENV).is_some() {
            conf = conf
                .into_builder()
                .http_client(counting::Counting::wrap(counting::https_client()))
                .build();
        }
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let s3 = etl::handlers::s3_client(&conf);
        Aws { conf, cfn, s3 }
    }

    /// The caller's account (STS answers any caller).
    pub async fn account(&self) -> anyhow::Result<String> {
        let me = aws_sdk_sts::Client::new(&self.conf)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| failed("asking STS who the caller is", e))?;
        Ok(me.account().unwrap_or_default().to_owned())
    }

    /// Whether requests go to an endpoint override (the local emulator).
    pub fn endpoint(&self) -> Option<&str> {
        self.conf.endpoint_url()
    }
}

/// With this variable set, every request to AWS is counted, and the count printed at exit
/// (`deployer: N AWS requests`): what the benchmarks of docs/BENCHMARKS.md compare.
pub const COUNT_REQUESTS_ENV: &str = "DEPLOYER_COUNT_REQUESTS";

/// The requests sent so far (counted only with [`COUNT_REQUESTS_ENV`]).
pub fn requests_sent() -> Option<usize> {
    std::env::var_os(COUNT_REQUESTS_ENV)
        .map(|_| counting::REQUESTS.load(std::sync::atomic::Ordering::Relaxed))
}

/// An HTTP client that counts the requests it sends and hands each to an HTTPS client like
/// the SDK's own. The SDK has no request counter of its own.
mod counting {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
        SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

    pub static REQUESTS: AtomicUsize = AtomicUsize::new(0);

    /// The TLS client the SDK builds by default (rustls with aws-lc, the system's trusted
    /// certificates and `SSL_CERT_FILE`), without its proxy settings: counting is for
    /// benchmarks, which use none.
    pub fn https_client() -> SharedHttpClient {
        use aws_smithy_http_client::tls;
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https()
    }

    #[derive(Debug)]
    pub struct Counting {
        inner: SharedHttpClient,
    }

    impl Counting {
        pub fn wrap(inner: SharedHttpClient) -> SharedHttpClient {
            SharedHttpClient::new(Counting { inner })
        }
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(Connector {
                inner: self.inner.http_connector(settings, components),
            })
        }
    }

    #[derive(Debug)]
    struct Connector {
        inner: SharedHttpConnector,
    }

    impl HttpConnector for Connector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            REQUESTS.fetch_add(1, Ordering::Relaxed);
            self.inner.call(request)
        }
    }
}

/// One line of an SDK error with its service message and code. Every service's `SdkError`
/// is the same smithy type, so this serves S3, SNS, EMR and the others as well.
pub fn error_text<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_cloudformation::error::SdkError<E, R>,
) -> String {
    aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()
}

/// The error of a failed call, explained (see [`crate::errors`]): what was being done and
/// why it failed in terms a person can act on; the SDK's own text as its detail.
pub fn failed<E, R>(
    what: impl std::fmt::Display,
    e: aws_sdk_cloudformation::error::SdkError<E, R>,
) -> anyhow::Error
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().map(str::to_owned);
    let message = e.message().map(str::to_owned);
    let mut chain = Vec::new();
    let mut io_refused = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        chain.push(s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = s.source();
    }
    let trouble = crate::errors::classify(code.as_deref(), message.as_deref(), &chain, io_refused);
    let detail = error_text(e);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let region = std::env::var("AWS_REGION").ok();
    let (cause, todo) = crate::errors::explain(
        &what.to_string(),
        &trouble,
        endpoint.as_deref(),
        region.as_deref(),
        &detail,
    );
    anyhow::Error::new(crate::errors::Explained {
        cause,
        todo,
        detail: Some(detail),
    })
}

#[cfg(test)]
mod tests {
    //! AWS's answers for expired and refused credentials, mocked at the SDK level
    //! (aws-smithy-mocks): the emulator issues keys that never expire.
    use super::*;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError;
    use aws_smithy_mocks::mock;
    use aws_smithy_types::error::ErrorMetadata;

    async fn describe_failing_with(code: &'static str, message: &'static str) -> anyhow::Error {
        let rule = mock!(aws_sdk_cloudformation::Client::describe_stacks).then_error(move || {
            DescribeStacksError::generic(
                ErrorMetadata::builder().code(code).message(message).build(),
            )
        });
        let e = crate::cloudformation::mock_tests::client(&[&rule])
            .describe_stacks()
            .stack_name("pdcase-alice")
            .send()
            .await
            .unwrap_err();
        failed("describing stack pdcase-alice", e)
    }

    fn explained(e: &anyhow::Error) -> &crate::errors::Explained {
        e.downcast_ref().expect("an explained error")
    }

    #[tokio::test]
    async fn expired_credentials_say_to_renew_them() {
        let e = describe_failing_with(
            "ExpiredToken",
            "The security token included in the request is expired",
        )
        .await;
        let x = explained(&e);
        assert_eq!(
            x.cause,
            "describing stack pdcase-alice: the AWS credentials have expired (ExpiredToken)"
        );
        assert!(x.todo.as_deref().unwrap().starts_with("renew them"));
        assert!(x.detail.as_deref().unwrap().contains("security token"));
    }

    #[tokio::test]
    async fn access_denied_keeps_aws_message_naming_action_and_resource() {
        let e = describe_failing_with(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:DescribeStacks on resource: arn:aws:cloudformation:us-east-1:123456789012:stack/pdcase-alice/*",
        )
        .await;
        let x = explained(&e);
        assert!(x.cause.starts_with("describing stack pdcase-alice: access denied: User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:DescribeStacks on resource: "), "{}", x.cause);
        assert!(x
            .todo
            .as_deref()
            .unwrap()
            .contains("deployer policy --stage"));
    }

    #[tokio::test]
    async fn another_error_keeps_aws_code_and_message_without_advice() {
        let e = describe_failing_with("Throttling", "Rate exceeded").await;
        let x = explained(&e);
        assert!(
            x.cause.contains("Throttling") && x.cause.contains("Rate exceeded"),
            "{}",
            x.cause
        );
        assert!(x.todo.is_none());
    }
}
