//! Amazon SQS: `AWS::SQS::Queue`.

use super::{attributes, is_empty, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::SQS::Queue`. `Ref` returns the queue URL.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Queue {
    /// At most 80 characters. Update: **Replacement** (its messages are lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<Value>,
    /// Seconds a message is kept, 60 to 1,209,600 (14 days). Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_retention_period: Option<u32>,
    /// A customer managed KMS key for encryption at rest. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<Value>,
    /// Encryption at rest with SQS-owned keys (SSE-SQS), without a KMS key.
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqs_managed_sse_enabled: Option<bool>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::SQS::Queue`.
    QueueAttr {
        Arn => "Arn",
        QueueName => "QueueName",
        QueueUrl => "QueueUrl",
    }
);

impl Resource for Queue {
    const TYPE: &'static str = "AWS::SQS::Queue";
    type Attr = QueueAttr;
}
