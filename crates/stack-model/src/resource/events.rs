//! Amazon EventBridge: `AWS::Events::Rule`.

use super::{attributes, is_empty, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::Events::Rule` on the default event bus. `Ref` returns the rule's name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Rule {
    /// Update: **Replacement**.
    pub name: String,
    /// Update: in place.
    pub description: String,
    /// Update: in place.
    pub event_pattern: S3ObjectCreatedPattern,
    /// Update: in place.
    pub state: RuleState,
    /// Update: in place.
    pub targets: Vec<Target>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

/// The pattern of S3's "Object Created" events of one bucket whose key ends with `suffix`
/// (S3 user guide, "EventBridge event message structure": `detail.bucket.name`,
/// `detail.object.key`).
#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct S3ObjectCreatedPattern {
    pub source: [&'static str; 1],
    #[serde(rename = "detail-type")]
    pub detail_type: [&'static str; 1],
    pub detail: S3Detail,
}

impl S3ObjectCreatedPattern {
    pub fn new(bucket: Value, suffix: &str) -> Self {
        S3ObjectCreatedPattern {
            source: ["aws.s3"],
            detail_type: ["Object Created"],
            detail: S3Detail {
                bucket: BucketMatch { name: [bucket] },
                object: ObjectMatch {
                    key: [Suffix {
                        suffix: suffix.to_string(),
                    }],
                },
            },
        }
    }
}

#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct S3Detail {
    pub bucket: BucketMatch,
    pub object: ObjectMatch,
}

#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BucketMatch {
    pub name: [Value; 1],
}

#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ObjectMatch {
    pub key: [Suffix; 1],
}

#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Suffix {
    pub suffix: String,
}

#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleState {
    #[default]
    Enabled,
}

#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Target {
    pub id: String,
    pub arn: Value,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::Events::Rule`.
    RuleAttr {
        Arn => "Arn",
    }
);

impl Resource for Rule {
    const TYPE: &'static str = "AWS::Events::Rule";
    type Attr = RuleAttr;
}
