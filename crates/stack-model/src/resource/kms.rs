//! AWS KMS: `AWS::KMS::Key`, `AWS::KMS::Alias`.

use super::iam::PolicyDocument;
use super::{attributes, is_empty, NoAttributes, Resource, Tag};
use crate::value::Value;
use serde::Serialize;

/// `AWS::KMS::Key`, a symmetric key. `Ref` returns the key id.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Key {
    /// Update: in place.
    pub description: String,
    /// A new key material each year. Update: in place.
    pub enable_key_rotation: bool,
    /// Who may use and manage the key. Update: in place.
    pub key_policy: PolicyDocument,
    /// Days between a deletion request and the key's deletion (7 to 30). Update: in place.
    pub pending_window_in_days: u32,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::KMS::Key`.
    KeyAttr {
        Arn => "Arn",
        KeyId => "KeyId",
    }
);

impl Resource for Key {
    const TYPE: &'static str = "AWS::KMS::Key";
    type Attr = KeyAttr;
}

/// `AWS::KMS::Alias`: a name for the key (`alias/...`).
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Alias {
    /// Update: **Replacement**.
    pub alias_name: String,
    /// Update: in place.
    pub target_key_id: Value,
}

impl Resource for Alias {
    const TYPE: &'static str = "AWS::KMS::Alias";
    type Attr = NoAttributes;
}
