//! A typed CloudFormation value: a literal string or an intrinsic function.
//!
//! `Ref` and `Fn::GetAtt` values cannot be built from a bare string outside this crate: they
//! come from a [`Handle`](crate::template::Handle) (returned when a resource is added to a
//! template) or a [`ParameterHandle`](crate::template::ParameterHandle), so a reference names
//! something that was declared. [`Template::render`](crate::template::Template::render) checks
//! every reference again (a handle from another template, a `${Name}` in a `Fn::Sub` string) and
//! fails with the logical id named.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use std::collections::BTreeMap;

/// Pseudo parameters CloudFormation resolves at deploy time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pseudo {
    /// The 12-digit account id the stack is deployed in.
    AccountId,
    /// The region the stack is deployed in, such as `us-east-1`.
    Region,
    /// `aws`, `aws-cn` or `aws-us-gov`: use it in ARNs so the template works in every partition.
    Partition,
    /// The stack's name.
    StackName,
    /// `amazonaws.com` (or `amazonaws.com.cn`).
    UrlSuffix,
}

impl Pseudo {
    /// All pseudo parameters, for checks of `${AWS::...}` in `Fn::Sub` strings.
    pub const ALL: [Pseudo; 5] = [
        Pseudo::AccountId,
        Pseudo::Region,
        Pseudo::Partition,
        Pseudo::StackName,
        Pseudo::UrlSuffix,
    ];

    /// The name CloudFormation knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Pseudo::AccountId => "AWS::AccountId",
            Pseudo::Region => "AWS::Region",
            Pseudo::Partition => "AWS::Partition",
            Pseudo::StackName => "AWS::StackName",
            Pseudo::UrlSuffix => "AWS::URLSuffix",
        }
    }
}

/// The logical id a `Ref` or `Fn::GetAtt` names. Only this crate makes one: from a
/// [`Handle`](crate::template::Handle), a
/// [`ParameterHandle`](crate::template::ParameterHandle), or
/// [`Template::reference`](crate::template::Template::reference), which checks that the
/// template declares the id. So a `Value::Ref` cannot be written from a bare string:
///
/// ```compile_fail
/// use stack_model::value::{Target, Value};
/// let v = Value::Ref(Target("Anything".into())); // the field is private: does not compile
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target(String);

impl Target {
    /// Made by the template and its handles only.
    pub(crate) fn new(id: impl Into<String>) -> Target {
        Target(id.into())
    }

    /// The logical id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A string-typed property value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A literal string.
    Lit(String),
    /// `{"Ref": id}` of a resource or parameter (built through a handle, or
    /// [`Template::reference`](crate::template::Template::reference)).
    Ref(Target),
    /// `{"Ref": "AWS::..."}`.
    Pseudo(Pseudo),
    /// `{"Fn::GetAtt": [id, attribute]}` (built through a handle, with a typed attribute, or
    /// [`Template::get_att`](crate::template::Template::get_att), checked).
    GetAtt(Target, String),
    /// `{"Fn::Sub": [text, {name: value}]}`. Every `${Name}` in the text must be one of the
    /// variables or a pseudo parameter; rendering fails otherwise.
    Sub(String, BTreeMap<String, Value>),
    /// `{"Fn::Join": [delimiter, [values]]}`.
    Join(String, Vec<Value>),
    /// `{"Fn::Select": [n, {"Fn::GetAZs": ""}]}`: the region's n-th availability zone.
    AvailabilityZone(u8),
}

impl Value {
    /// A literal.
    pub fn lit(s: impl Into<String>) -> Value {
        Value::Lit(s.into())
    }

    /// `Fn::Sub` over pseudo parameters only, such as `arn:${AWS::Partition}:s3:::x`.
    pub fn sub(text: impl Into<String>) -> Value {
        Value::Sub(text.into(), BTreeMap::new())
    }

    /// `Fn::Sub` with named variables, such as `("${Bucket}/*", [("Bucket", bucket.arn())])`.
    pub fn sub_with<'a>(
        text: impl Into<String>,
        vars: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Value {
        Value::Sub(
            text.into(),
            vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        )
    }

    /// `Fn::Join`.
    pub fn join(delimiter: impl Into<String>, parts: impl IntoIterator<Item = Value>) -> Value {
        Value::Join(delimiter.into(), parts.into_iter().collect())
    }

    /// The literal text, if this value has no intrinsic function in it.
    pub fn as_literal(&self) -> Option<&str> {
        match self {
            Value::Lit(s) => Some(s),
            _ => None,
        }
    }
}

/// An empty literal: what a resource struct's `Default` holds in a field that must be set
/// before rendering (the resource schemas refuse an empty name).
impl Default for Value {
    fn default() -> Self {
        Value::Lit(String::new())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Lit(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Lit(s)
    }
}

impl From<Pseudo> for Value {
    fn from(p: Pseudo) -> Self {
        Value::Pseudo(p)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Lit(s) => serializer.serialize_str(s),
            Value::Ref(id) => single(serializer, "Ref", id.as_str()),
            Value::Pseudo(p) => single(serializer, "Ref", p.name()),
            Value::GetAtt(id, attr) => {
                single(serializer, "Fn::GetAtt", &[id.as_str(), attr.as_str()])
            }
            Value::Sub(text, vars) if vars.is_empty() => single(serializer, "Fn::Sub", text),
            Value::Sub(text, vars) => single(serializer, "Fn::Sub", &SubArgs(text, vars)),
            Value::Join(delim, parts) => single(serializer, "Fn::Join", &JoinArgs(delim, parts)),
            Value::AvailabilityZone(n) => single(
                serializer,
                "Fn::Select",
                &(n, serde_json::json!({"Fn::GetAZs": ""})),
            ),
        }
    }
}

fn single<S: Serializer, V: Serialize + ?Sized>(
    serializer: S,
    key: &str,
    value: &V,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

struct SubArgs<'a>(&'a str, &'a BTreeMap<String, Value>);

impl Serialize for SubArgs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(2))?;
        seq.serialize_element(self.0)?;
        seq.serialize_element(self.1)?;
        seq.end()
    }
}

struct JoinArgs<'a>(&'a str, &'a [Value]);

impl Serialize for JoinArgs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(2))?;
        seq.serialize_element(self.0)?;
        seq.serialize_element(self.1)?;
        seq.end()
    }
}

/// The `${Name}` and `${Name.Attr}` placeholders of a `Fn::Sub` text (`${!Literal}` is an escape).
pub(crate) fn sub_placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                if !name.starts_with('!') {
                    found.push(name);
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn intrinsics_render_in_long_form() {
        let v = Value::join(
            "",
            [
                Value::Ref(Target::new("Bucket")),
                Value::GetAtt(Target::new("Fn"), "Arn".into()),
                Value::Pseudo(Pseudo::Region),
                Value::sub("a-${AWS::AccountId}"),
                Value::sub_with("${X}/*", [("X", Value::lit("y"))]),
            ],
        );
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"Fn::Join": ["", [
                {"Ref": "Bucket"},
                {"Fn::GetAtt": ["Fn", "Arn"]},
                {"Ref": "AWS::Region"},
                {"Fn::Sub": "a-${AWS::AccountId}"},
                {"Fn::Sub": ["${X}/*", {"X": "y"}]}
            ]]})
        );
    }

    #[test]
    fn placeholders_skip_escapes() {
        assert_eq!(
            sub_placeholders("${A}-${!Lit}-${B.Arn}-${"),
            vec!["A", "B.Arn"]
        );
    }
}
