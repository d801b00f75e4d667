//! Amazon CloudWatch Logs: `AWS::Logs::LogGroup`.

use super::{attributes, is_empty, Resource, Tag};
use crate::value::Value;
use serde::{Serialize, Serializer};

/// `AWS::Logs::LogGroup`. `Ref` returns the log group name.
#[derive(Default, Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct LogGroup {
    /// Update: **Replacement** (the old group's events are deleted with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_group_name: Option<Value>,
    /// Without it, events never expire. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<Retention>,
    /// The KMS key (ARN) the group's events are encrypted with; without it, CloudWatch Logs'
    /// own key. Update: in place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<Value>,
    /// Update: in place.
    #[serde(skip_serializing_if = "is_empty")]
    pub tags: Vec<Tag>,
}

attributes!(
    /// `Fn::GetAtt` attributes of `AWS::Logs::LogGroup`.
    LogGroupAttr {
        Arn => "Arn",
    }
);

impl Resource for LogGroup {
    const TYPE: &'static str = "AWS::Logs::LogGroup";
    type Attr = LogGroupAttr;
}

macro_rules! retention {
    ($($variant:ident = $days:literal),+ $(,)?) => {
        /// The retention periods CloudWatch Logs accepts, in days.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Retention { $(#[doc = concat!(stringify!($days), " days.")] $variant),+ }

        impl Retention {
            /// Every accepted value.
            pub const ALL: &'static [Retention] = &[$(Retention::$variant),+];

            /// The number of days.
            pub fn days(self) -> u32 {
                match self { $(Retention::$variant => $days),+ }
            }

            /// The retention of exactly `days` days, if CloudWatch Logs accepts it.
            pub fn from_days(days: u32) -> Option<Retention> {
                Self::ALL.iter().copied().find(|r| r.days() == days)
            }
        }
    };
}

retention!(
    Days1 = 1,
    Days3 = 3,
    Days5 = 5,
    Days7 = 7,
    Days14 = 14,
    Days30 = 30,
    Days60 = 60,
    Days90 = 90,
    Days120 = 120,
    Days150 = 150,
    Days180 = 180,
    Days365 = 365,
    Days400 = 400,
    Days545 = 545,
    Days731 = 731,
    Days1096 = 1096,
    Days1827 = 1827,
    Days2192 = 2192,
    Days2557 = 2557,
    Days2922 = 2922,
    Days3288 = 3288,
    Days3653 = 3653,
);

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.days())
    }
}
