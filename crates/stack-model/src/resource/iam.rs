//! AWS IAM: `AWS::IAM::Role`, `AWS::IAM::InstanceProfile`, and typed policy documents.

use super::{attributes, is_empty, Resource, Tag};
use crate::value::Value;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::collections::BTreeMap;

/// An IAM policy document (version 2012-10-17).
#[derive(Default, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct PolicyDocument {
    /// `Version`.
    pub version: &'static str,
    /// `Statement`.
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    /// A policy (version `2012-10-17`) of `statements`.
    pub fn new(statements: Vec<Statement>) -> PolicyDocument {
        PolicyDocument {
            version: "2012-10-17",
            statement: statements,
        }
    }

    /// A trust policy letting the given AWS services assume the role.
    pub fn trust_services(services: &[&str]) -> PolicyDocument {
        PolicyDocument::new(vec![Statement {
            sid: None,
            effect: Effect::Allow,
            principal: Some(Principal::Service(
                services.iter().map(|s| s.to_string()).collect(),
            )),
            action: vec!["sts:AssumeRole".into()],
            resource: vec![],
            condition: Condition::default(),
        }])
    }
}

/// One statement of a policy.
#[derive(Default, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Statement {
    /// `Sid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// `Action`.
    pub action: Vec<String>,
    /// Empty only in trust policies.
    #[serde(skip_serializing_if = "is_empty")]
    pub resource: Vec<Value>,
    /// `Condition`.
    #[serde(skip_serializing_if = "Condition::is_empty")]
    pub condition: Condition,
}

impl Statement {
    /// `Allow` of `actions` on `resources`.
    pub fn allow(sid: &str, actions: &[&str], resources: Vec<Value>) -> Statement {
        Statement {
            sid: Some(sid.to_string()),
            effect: Effect::Allow,
            principal: None,
            action: actions.iter().map(|a| a.to_string()).collect(),
            resource: resources,
            condition: Condition::default(),
        }
    }
}

/// The values [`Statement::effect`] takes.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Effect {
    /// `Allow`.
    #[default]
    Allow,
    /// `Deny`.
    Deny,
}

/// Who a resource policy or trust policy applies to. No default: everyone is never granted by
/// accident.
#[derive(Clone, Debug, PartialEq)]
pub enum Principal {
    /// `"*"`: everyone (used with `Deny` conditions such as TLS-only).
    Everyone,
    /// `{"Service": [...]}`.
    Service(Vec<String>),
    /// `{"AWS": [...]}`: accounts, roles, users.
    Aws(Vec<Value>),
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Principal::Everyone => serializer.serialize_str("*"),
            Principal::Service(s) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("Service", s)?;
                map.end()
            }
            Principal::Aws(a) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("AWS", a)?;
                map.end()
            }
        }
    }
}

/// `{"Operator": {"key": value}}`, such as `{"Bool": {"aws:SecureTransport": "false"}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Condition(pub BTreeMap<String, BTreeMap<String, Value>>);

impl Condition {
    /// Whether it has no operator (rendered as no `Condition`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `operator: {key: value}`.
    pub fn with(mut self, operator: &str, key: &str, value: impl Into<Value>) -> Condition {
        self.0
            .entry(operator.to_string())
            .or_default()
            .insert(key.to_string(), value.into());
        self
    }
}

/// An inline policy of a role.
#[derive(Default, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct InlinePolicy {
    /// `PolicyName`: The friendly name (not ARN) identifying the policy.
    pub policy_name: String,
    /// `PolicyDocument`: The entire contents of the policy that defines permissions.
    pub policy_document: PolicyDocument,
}

/// `AWS::IAM::Role`. `Ref` returns the role name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Role {
    /// At most 64 characters; a named role needs `CAPABILITY_NAMED_IAM`. Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_name: Option<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who may assume the role. Update: in place.
    pub assume_role_policy_document: PolicyDocument,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub managed_policy_arns: Vec<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub policies: Vec<InlinePolicy>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::IAM::Role`.
    RoleAttr {
        Arn => "Arn",
        RoleId => "RoleId",
    }
);

impl Resource for Role {
    const TYPE: &'static str = "AWS::IAM::Role";
    type Attr = RoleAttr;
}

/// `AWS::IAM::InstanceProfile`. `Ref` returns the instance profile name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct InstanceProfile {
    /// Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_profile_name: Option<Value>,
    /// Role names (exactly one). Update: in place.
    pub roles: Vec<Value>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::IAM::InstanceProfile`.
    InstanceProfileAttr {
        Arn => "Arn",
    }
);

impl Resource for InstanceProfile {
    const TYPE: &'static str = "AWS::IAM::InstanceProfile";
    type Attr = InstanceProfileAttr;
}

/// `AWS::IAM::ManagedPolicy`: a customer managed policy, attached to the given roles. `Ref`
/// returns its ARN.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ManagedPolicy {
    /// Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_policy_name: Option<Value>,
    /// Update: **Replacement**.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// At most 6,144 characters, whitespace not counted. Update: in place (a new version).
    pub policy_document: PolicyDocument,
    /// Role names the policy is attached to. Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub roles: Vec<Value>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::IAM::ManagedPolicy`.
    ManagedPolicyAttr {
        PolicyArn => "PolicyArn",
    }
);

impl Resource for ManagedPolicy {
    const TYPE: &'static str = "AWS::IAM::ManagedPolicy";
    type Attr = ManagedPolicyAttr;
}
