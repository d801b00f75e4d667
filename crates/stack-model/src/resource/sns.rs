//! Amazon SNS: `AWS::SNS::Topic`, `AWS::SNS::Subscription`.

use super::{attributes, is_empty, NoAttributes, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::SNS::Topic`. `Ref` returns the topic ARN.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Topic {
    /// At most 256 characters. Update: **Replacement** (subscribers of the old topic are lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// KMS key for encryption at rest, such as `alias/aws/sns`. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::SNS::Topic`.
    TopicAttr {
        TopicArn => "TopicArn",
        TopicName => "TopicName",
    }
);

impl Resource for Topic {
    const TYPE: &'static str = "AWS::SNS::Topic";
    type Attr = TopicAttr;
}

/// `AWS::SNS::Subscription`.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Subscription {
    /// Update: **Replacement**.
    pub topic_arn: Value,
    /// Update: **Replacement**.
    pub protocol: Protocol,
    /// For `lambda`, the function ARN. Update: **Replacement**.
    pub endpoint: Value,
}

/// The values [`Subscription::protocol`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `lambda`.
    #[default]
    Lambda,
    /// `sqs`.
    Sqs,
    /// `email`.
    Email,
    /// `https`.
    Https,
}

impl Resource for Subscription {
    const TYPE: &'static str = "AWS::SNS::Subscription";
    type Attr = NoAttributes;
}
