//! A stage's guard, as its rendered template shows it: whether its stateful resources are
//! retained (`protected`), whether it has its own KMS key (`hardened`), and how long its log
//! groups keep logs. A deploy that would lower any of them is refused like a replacement that
//! loses data: a `prod` deployed from a folder that missed its `pipeline.yaml` would
//! otherwise lose its protection, and its key would be scheduled for deletion, after which
//! nothing encrypted under it can be read (issue 26).
//!
//! The guard is read from the resources themselves, not from a marker the template carries,
//! so a stack deployed by any earlier version is judged the same way.
//!
//! ```
//! use serde_json::json;
//! use stack_model::guard::Guard;
//!
//! let deployed = json!({"Resources": {
//!     "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain"},
//!     "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 365}}
//! }});
//! let rendered = json!({"Resources": {
//!     "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 30}}
//! }});
//! let lowered = Guard::of(&deployed).lowered_by(&Guard::of(&rendered));
//! assert_eq!(lowered.len(), 3);
//! assert!(lowered[0].starts_with("protected -> not protected"));
//! ```

use serde_json::Value as Json;

/// What guards a stage's data, read from a template (as rendered or as deployed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// Some resource is retained when deleted (`DeletionPolicy: Retain` or
    /// `RetainExceptOnCreate`).
    pub protected: bool,
    /// The template declares a KMS key (the stage's own, for its data at rest).
    pub hardened: bool,
    /// The shortest retention of its log groups, in days; `None`: no log group says.
    pub log_retention_days: Option<u64>,
}

impl Guard {
    /// The guard `template` (a template's JSON) declares.
    pub fn of(template: &Json) -> Guard {
        let resources: Vec<&Json> = template["Resources"]
            .as_object()
            .map(|r| r.values().collect())
            .unwrap_or_default();
        let of_type = |ty: &'static str| resources.iter().filter(move |r| r["Type"] == ty);
        Guard {
            // `RetainExceptOnCreate` (what the pipeline renders) or `Retain`.
            protected: resources.iter().any(|r| {
                r["DeletionPolicy"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("Retain"))
            }),
            hardened: of_type("AWS::KMS::Key").next().is_some(),
            log_retention_days: of_type("AWS::Logs::LogGroup")
                .filter_map(|r| r["Properties"]["RetentionInDays"].as_u64())
                .min(),
        }
    }

    /// How `next` lowers this guard, one line each: protection dropped, the key removed, logs
    /// kept for a shorter time. Empty when nothing is lowered.
    pub fn lowered_by(&self, next: &Guard) -> Vec<String> {
        let mut lowered = Vec::new();
        if self.protected && !next.protected {
            lowered.push(
                "protected -> not protected: its buckets, database, log groups and key would no \
                 longer be retained when removed, and teardown would no longer refuse"
                    .to_string(),
            );
        }
        if self.hardened && !next.hardened {
            lowered.push(
                "hardened -> not hardened: its KMS key would be removed (CloudFormation schedules \
                 the key's deletion; what is encrypted under it is unreadable once it is deleted)"
                    .to_string(),
            );
        }
        if let (Some(old), Some(new)) = (self.log_retention_days, next.log_retention_days) {
            if new < old {
                lowered.push(format!("log retention {old} -> {new} days"));
            }
        }
        lowered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StageConfig;
    use crate::stage::StageName;

    fn rendered(protected: bool, hardened: bool, days: Option<u32>) -> Json {
        let mut c = StageConfig::defaults(StageName::parse("prod").unwrap());
        c.protected = protected;
        c.hardened = hardened;
        if let Some(d) = days {
            c.log_retention = crate::resource::logs::Retention::from_days(d).unwrap();
        }
        crate::pipeline::template(&c).to_json().unwrap()
    }

    #[test]
    fn the_pipelines_templates_show_their_guard() {
        let prod = Guard::of(&rendered(true, true, None));
        assert_eq!(
            prod,
            Guard {
                protected: true,
                hardened: true,
                log_retention_days: Some(30)
            }
        );
        let dev = Guard::of(&rendered(false, false, Some(7)));
        assert!(!dev.protected && !dev.hardened);
        assert_eq!(dev.log_retention_days, Some(7));
        assert_eq!(prod.lowered_by(&dev).len(), 3);
        assert!(dev.lowered_by(&prod).is_empty(), "raising is never refused");
        assert!(prod.lowered_by(&prod).is_empty());
    }

    #[test]
    fn each_lowering_is_named_alone() {
        let base = Guard::of(&rendered(true, true, Some(365)));
        let unhardened = Guard::of(&rendered(true, false, Some(365)));
        let l = base.lowered_by(&unhardened);
        assert_eq!(l.len(), 1);
        assert!(l[0].starts_with("hardened -> not hardened"), "{l:?}");
        let shorter = Guard::of(&rendered(true, true, Some(90)));
        assert_eq!(base.lowered_by(&shorter), ["log retention 365 -> 90 days"]);
    }
}
