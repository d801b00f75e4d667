//! Typed CloudFormation resources, one module per AWS service.
//!
//! Each struct is one resource type; its fields are the properties this pipeline sets, named
//! as CloudFormation names them (PascalCase on the wire). Each field's doc says what an update
//! of it does, from the resource schema's `createOnlyProperties`: **Replacement** (a new
//! physical resource is created and the old one deleted: data in it is lost) or **In place**.
//!
//! Every struct is `#[non_exhaustive]` and has a `Default`, so a property added in a later
//! release breaks no user's code: start from the default (or a constructor) and set the fields
//! you need. A required field's default is empty (an empty name, the first value of an enum):
//! set it; the resource schemas refuse what stays empty.
//!
//! ```
//! use stack_model::resource::sns::Topic;
//! use stack_model::template::Template;
//! let mut topic = Topic::default();
//! topic.topic_name = Some("alerts".into());
//! let mut t = Template::new("t");
//! t.add("Alerts", topic);
//! assert_eq!(t.to_json().unwrap()["Resources"]["Alerts"]["Properties"]["TopicName"], "alerts");
//! ```
//!
//! A struct literal does not compile outside this crate, so no user's code depends on the set
//! of fields:
//!
//! ```compile_fail
//! // Every field given: only `#[non_exhaustive]` refuses it.
//! let topic = stack_model::resource::sns::Topic { topic_name: None, display_name: None, kms_master_key_id: None, tags: vec![] };
//! ```

pub mod athena;
pub mod ec2;
pub mod emr_serverless;
pub mod events;
pub mod glue;
pub mod iam;
pub mod kms;
pub mod lambda;
pub mod logs;
pub mod s3;
pub mod sns;
pub mod sqs;
pub mod stepfunctions;

use crate::value::Value;
use serde::Serialize;

/// A CloudFormation resource type.
pub trait Resource: Serialize {
    /// The type name, such as `AWS::S3::Bucket`.
    const TYPE: &'static str;
    /// The attributes `Fn::GetAtt` can read from this type.
    type Attr: Attribute;
}

/// An attribute of a resource type, readable with `Fn::GetAtt`.
pub trait Attribute: Copy + 'static {
    /// The attribute's CloudFormation name.
    fn name(self) -> &'static str;
    /// Every attribute of the type (checked again at render time).
    fn all() -> &'static [Self];
}

/// For types whose attributes this pipeline never reads: no value of it exists, so a
/// `get_att` on such a handle cannot be written.
#[derive(Clone, Copy, Debug)]
pub enum NoAttributes {}

impl Attribute for NoAttributes {
    fn name(self) -> &'static str {
        match self {}
    }
    fn all() -> &'static [Self] {
        &[]
    }
}

/// Declares an attribute enum: `attributes!(BucketAttr { Arn => "Arn", DomainName => "DomainName" })`.
macro_rules! attributes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        /// `pub`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* #[doc = concat!("`", $text, "`.")] $variant),+ }

        impl $crate::resource::Attribute for $name {
            fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            fn all() -> &'static [Self] {
                &[$($name::$variant),+]
            }
        }
    };
}
pub(crate) use attributes;

/// A `Key`/`Value` tag, the list form most resource types take.
#[derive(Default, Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Tag {
    /// `Key`.
    pub key: String,
    /// `Value`.
    pub value: Value,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// `skip_serializing_if` helper for empty lists.
pub(crate) fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}
