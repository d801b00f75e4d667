//! SDK clients from the standard chain (environment, profiles, SSO, instance roles).
//! `AWS_ENDPOINT_URL` is honoured by the chain; with an endpoint override S3 uses path-style
//! addressing (the local emulator has no per-bucket host names). The same binary works
//! unchanged against AWS.

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub struct Aws {
    pub conf: SdkConfig,
    pub cfn: aws_sdk_cloudformation::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Aws {
    /// Clients for `region` (the stage's region: a stage lives in one region).
    pub async fn connect(region: &str) -> Aws {
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .load()
            .await;
        let cfn = aws_sdk_cloudformation::Client::new(&conf);
        let s3 = etl::handlers::s3_client(&conf);
        Aws { conf, cfn, s3 }
    }

    /// Whether requests go to an endpoint override (the local emulator).
    pub fn endpoint(&self) -> Option<&str> {
        self.conf.endpoint_url()
    }
}

/// One line of an SDK error with its service message and code. Every service's `SdkError`
/// is the same smithy type, so this serves S3, SNS, EMR and the others as well.
pub fn error_text<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_cloudformation::error::SdkError<E, R>,
) -> String {
    aws_sdk_cloudformation::error::DisplayErrorContext(e).to_string()
}

/// The error of a failed call: what was being done, then the SDK's error line.
pub fn failed<E: std::error::Error + 'static, R: std::fmt::Debug>(
    what: impl std::fmt::Display,
    e: aws_sdk_cloudformation::error::SdkError<E, R>,
) -> anyhow::Error {
    anyhow::anyhow!("{what}: {}", error_text(e))
}
