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
    /// `source`: the service that sent the event (`aws.s3`).
    pub source: [&'static str; 1],
    /// `detail-type`: the kind of event (`Object Created`).
    #[serde(rename = "detail-type")]
    pub detail_type: [&'static str; 1],
    /// `detail`: what the event is about.
    pub detail: S3Detail,
}

impl S3ObjectCreatedPattern {
    /// S3's `Object Created` events of `bucket` whose key ends with `suffix`.
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

/// The value of [`S3ObjectCreatedPattern::detail`].
#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct S3Detail {
    /// `bucket`: which bucket.
    pub bucket: BucketMatch,
    /// `object`: which objects.
    pub object: ObjectMatch,
}

/// The value of [`S3Detail::bucket`].
#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BucketMatch {
    /// `name`: the bucket's name.
    pub name: [Value; 1],
}

/// The value of [`S3Detail::object`].
#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ObjectMatch {
    /// `key`: a match on the object's key.
    pub key: [Suffix; 1],
}

/// The value of [`ObjectMatch::key`].
#[derive(Default, Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Suffix {
    /// `suffix`: the key ends with it.
    pub suffix: String,
}

/// The values [`Rule::state`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuleState {
    /// `ENABLED`.
    #[default]
    Enabled,
}

/// The value of [`Rule::targets`].
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Target {
    /// `Id`.
    pub id: String,
    /// `Arn`.
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
