//! Stage names and every physical name derived from them.
//!
//! A stage is a short name such as `alice` or `prod`. Every AWS name of the stage is derived
//! here, in one place, so that the template, the deployer and the Lambda code agree:
//!
//! - buckets: `pdcase-<stage>-<role>-<account id>-<region>`: globally unique (the account id
//!   and region make two accounts' or regions' `alice` distinct), no dots (they break
//!   virtual-hosted HTTPS), at most 63 characters;
//! - IAM roles are global to the account, so their names carry the region too;
//! - the Glue database uses underscores, as Athena prefers.

use std::fmt;

/// Prefix of every physical name.
pub const PROJECT: &str = "pdcase";

/// The longest region name (`us-isof-south-1`). Names are checked with the real region too.
pub const MAX_REGION_LEN: usize = 15;

/// The longest bucket role (`warehouse`).
const LONGEST_BUCKET_ROLE: usize = 9;

/// The longest stage name whose every derived name fits its AWS limit in every region: a
/// bucket name `pdcase-<stage>-warehouse-<12-digit account>-<region>` is at most 63 characters.
pub const MAX_STAGE_LEN: usize =
    63 - (PROJECT.len() + 1 + 1 + LONGEST_BUCKET_ROLE + 1 + 12 + 1 + MAX_REGION_LEN);

/// Why a stage name is refused. Each message names the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StageNameError {
    /// The name is empty.
    #[error("stage name is empty: a stage name is 1 to {MAX_STAGE_LEN} characters of lowercase letters, digits and hyphens")]
    Empty,
    #[error("stage name `{name}` is {len} characters long: at most {MAX_STAGE_LEN} are allowed, so that every bucket name of the stage fits S3's 63-character limit")]
    /// The name is longer than [`MAX_STAGE_LEN`].
    TooLong {
        /// The name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The name has an uppercase letter.
    #[error("stage name `{name}` has an uppercase letter `{ch}` at position {position}: only lowercase letters, digits and hyphens are allowed (S3 bucket names are lowercase)")]
    Uppercase {
        /// The name.
        name: String,
        /// The letter.
        ch: char,
        /// Its position, from 1.
        position: usize,
    },
    #[error("stage name `{name}` has a dot at position {position}: dots are not allowed (bucket names with dots break virtual-hosted HTTPS)")]
    /// The name has a dot.
    Dot {
        /// The name.
        name: String,
        /// The dot's position, from 1.
        position: usize,
    },
    #[error("stage name `{name}` has an underscore at position {position}: underscores are not allowed (S3 bucket names forbid them); use a hyphen")]
    /// The name has an underscore.
    Underscore {
        /// The name.
        name: String,
        /// The underscore's position, from 1.
        position: usize,
    },
    /// The name has another character than a lowercase letter, digit or hyphen.
    #[error("stage name `{name}` has `{ch}` at position {position}: only lowercase letters, digits and hyphens are allowed")]
    InvalidChar {
        /// The name.
        name: String,
        /// The character.
        ch: char,
        /// Its position, from 1.
        position: usize,
    },
    #[error("stage name `{name}` must start with a lowercase letter")]
    /// The name does not start with a lowercase letter.
    BadStart {
        /// The name.
        name: String,
    },
    #[error("stage name `{name}` must not end with a hyphen or contain two hyphens in a row")]
    /// The name ends with a hyphen or has two in a row.
    BadHyphen {
        /// The name.
        name: String,
    },
}

/// A validated stage name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageName(String);

impl StageName {
    /// Validates a stage name: 1 to [`MAX_STAGE_LEN`] characters, lowercase letters, digits and
    /// hyphens, starting with a letter, no trailing or doubled hyphen.
    pub fn parse(name: &str) -> Result<StageName, StageNameError> {
        if name.is_empty() {
            return Err(StageNameError::Empty);
        }
        for (i, ch) in name.chars().enumerate() {
            let position = i + 1;
            let owned = || name.to_string();
            match ch {
                'a'..='z' | '0'..='9' | '-' => {}
                'A'..='Z' => {
                    return Err(StageNameError::Uppercase {
                        name: owned(),
                        ch,
                        position,
                    })
                }
                '.' => {
                    return Err(StageNameError::Dot {
                        name: owned(),
                        position,
                    })
                }
                '_' => {
                    return Err(StageNameError::Underscore {
                        name: owned(),
                        position,
                    })
                }
                _ => {
                    return Err(StageNameError::InvalidChar {
                        name: owned(),
                        ch,
                        position,
                    })
                }
            }
        }
        // Only ASCII is left, so bytes are characters.
        if name.len() > MAX_STAGE_LEN {
            return Err(StageNameError::TooLong {
                name: name.to_string(),
                len: name.len(),
            });
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(StageNameError::BadStart {
                name: name.to_string(),
            });
        }
        if name.ends_with('-') || name.contains("--") {
            return Err(StageNameError::BadHyphen {
                name: name.to_string(),
            });
        }
        Ok(StageName(name.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `pdcase-<stage>`: the prefix of most names, and the stack name.
    pub fn prefix(&self) -> String {
        format!("{PROJECT}-{}", self.0)
    }

    /// The CloudFormation stack of the stage.
    pub fn stack_name(&self) -> String {
        self.prefix()
    }

    /// The stack holding the stage's artifacts bucket, deployed before the main stack (its
    /// bucket must exist before the first upload).
    pub fn bootstrap_stack_name(&self) -> String {
        format!("{}-bootstrap", self.prefix())
    }

    /// A bucket's name as a `Fn::Sub` text (account and region resolved at deploy time).
    pub fn bucket_name_sub(&self, role: BucketRole) -> String {
        format!(
            "{}-{}-${{AWS::AccountId}}-${{AWS::Region}}",
            self.prefix(),
            role.as_str()
        )
    }

    /// A pattern (`Fn::Sub` text) that matches the names of all the stage's buckets.
    pub fn bucket_name_sub_any_role(&self) -> String {
        format!("{}-*-${{AWS::AccountId}}-${{AWS::Region}}", self.prefix())
    }

    /// A bucket's name in a known account and region.
    pub fn bucket_name(&self, role: BucketRole, account: &str, region: &str) -> String {
        format!("{}-{}-{account}-{region}", self.prefix(), role.as_str())
    }

    /// A Lambda function's name.
    pub fn function_name(&self, function: FunctionRole) -> String {
        format!("{}-{}", self.prefix(), function.as_str())
    }

    /// The log group a function writes to.
    pub fn log_group_name(&self, function: FunctionRole) -> String {
        format!("/aws/lambda/{}", self.function_name(function))
    }

    /// An SNS topic's name.
    pub fn topic_name(&self, topic: TopicRole) -> String {
        format!("{}-{}", self.prefix(), topic.as_str())
    }

    /// The failure queue's name (SQS allows 80 characters).
    pub fn failure_queue_name(&self) -> String {
        format!("{}-failures", self.prefix())
    }

    /// An IAM role's name as a `Fn::Sub` text: roles are global, so the region is part of it.
    pub fn role_name_sub(&self, role: RoleKind) -> String {
        format!("{}-{}-${{AWS::Region}}", self.prefix(), role.as_str())
    }

    /// An IAM role's name in a known region.
    pub fn role_name(&self, role: RoleKind, region: &str) -> String {
        format!("{}-{}-{region}", self.prefix(), role.as_str())
    }

    /// The Glue database (underscores: Athena prefers them).
    pub fn database_name(&self) -> String {
        format!("{}_{}_warehouse", PROJECT, self.0.replace('-', "_"))
    }

    /// The Glue crawler.
    pub fn crawler_name(&self) -> String {
        format!("{}-warehouse-crawler", self.prefix())
    }

    /// The Athena work group.
    pub fn workgroup_name(&self) -> String {
        self.prefix()
    }

    /// The state machine that runs base a's shards on `sharded` and `auto` stages.
    pub fn state_machine_name(&self) -> String {
        format!("{}-etl-shards", self.prefix())
    }

    /// The state machine's log group: under `/aws/vendedlogs/`, the prefix CloudWatch Logs
    /// gives vended logs, so that the delivery's resource policy covers every such group in
    /// one statement instead of one per group (CloudWatch Logs user guide, "Enabling logging
    /// from AWS services": "Logs sent to CloudWatch Logs", the resource policy's size limit).
    pub fn state_machine_log_group_name(&self) -> String {
        format!("/aws/vendedlogs/states/{}", self.state_machine_name())
    }

    /// The EMR Serverless application that runs base b's Spark job on `emr` stages.
    pub fn emr_application_name(&self) -> String {
        format!("{}-spark", self.prefix())
    }

    /// Every derived name resolved for `region` and a 12-digit account, with what it is and
    /// its AWS length limit.
    pub fn derived_names(&self, region: &str) -> Vec<(String, String, usize)> {
        let account = "123456789012";
        let mut names = vec![
            ("stack name".to_string(), self.stack_name(), 128),
            ("Glue database name".to_string(), self.database_name(), 255),
            ("Glue crawler name".to_string(), self.crawler_name(), 255),
            (
                "Athena work group name".to_string(),
                self.workgroup_name(),
                128,
            ),
            (
                "EMR Serverless application name".to_string(),
                self.emr_application_name(),
                64,
            ),
            (
                "state machine name".to_string(),
                self.state_machine_name(),
                80,
            ),
            (
                "state machine log group name".to_string(),
                self.state_machine_log_group_name(),
                512,
            ),
        ];
        for &role in BucketRole::ALL {
            names.push((
                format!("{} bucket name", role.as_str()),
                self.bucket_name(role, account, region),
                63,
            ));
        }
        for &f in FunctionRole::ALL {
            names.push((
                format!("{} function name", f.as_str()),
                self.function_name(f),
                64,
            ));
            names.push((
                format!("{} log group name", f.as_str()),
                self.log_group_name(f),
                512,
            ));
        }
        for &t in TopicRole::ALL {
            names.push((
                format!("{} topic name", t.as_str()),
                self.topic_name(t),
                256,
            ));
        }
        for &r in RoleKind::ALL {
            names.push((
                format!("{} role name", r.as_str()),
                self.role_name(r, region),
                64,
            ));
        }
        names
    }
}

impl fmt::Display for StageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! name_roles {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $(#[doc = concat!("`", $text, "`.")] $variant),+ }

        impl $name {
            /// Every role, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The part of the physical name this role contributes.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

name_roles!(
    /// The stage's buckets.
    BucketRole {
        Source => "source",
        Warehouse => "warehouse",
        Jobs => "jobs",
        Artifacts => "artifacts",
        // A hardened stage's log bucket, when no other is configured.
        AccessLogs => "s3-access",
    }
);

name_roles!(
    /// The stage's Lambda functions.
    FunctionRole {
        Etl => "etl",
        // Base b in a function, on stages whose `base_b_engine` is `function`.
        SiteEvents => "site-events",
        EmrStarter => "emr-starter",
        TableRefresher => "table-refresher",
    }
);

name_roles!(
    /// The stage's SNS topics.
    TopicRole {
        EtlTrigger => "trigger-etl",
        EmrTrigger => "trigger-emr",
    }
);

name_roles!(
    /// The stage's IAM roles.
    RoleKind {
        Etl => "etl",
        SiteEvents => "site-events",
        EmrStarter => "emr-starter",
        TableRefresher => "table-refresher",
        Crawler => "crawler",
        // The execution role of base a's state machine (`sharded` and `auto` stages).
        EtlShards => "etl-shards",
        // The job runtime role of base b's Spark job on EMR Serverless.
        EmrJob => "emr-job",
        // The EMR-on-EC2 cluster's two roles, which stages deployed before EMR Serverless
        // hold until their next deploy (`pipeline::retired`).
        EmrService => "emr-service",
        EmrInstance => "emr-instance",
        // CloudFormation's service role for the stage's stack (the bootstrap stack's).
        CloudFormation => "cloudformation",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str) -> String {
        StageName::parse(name).unwrap_err().to_string()
    }

    #[test]
    fn accepts_lowercase_digits_hyphens() {
        for ok in ["alice", "prod", "a", "dev-2", "x1-y2-z3"] {
            assert_eq!(StageName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn max_length_is_derived_from_the_bucket_limit() {
        assert_eq!(MAX_STAGE_LEN, 17);
        let longest = "a".repeat(MAX_STAGE_LEN);
        assert!(StageName::parse(&longest).is_ok());
        assert!(err(&format!("{longest}b")).contains("at most 17 are allowed"));
    }

    #[test]
    fn refusals_name_the_rule() {
        assert!(err("").contains("stage name is empty"));
        assert!(err("Alice").contains("uppercase letter `A` at position 1"));
        assert!(err("al.ice").contains("dots are not allowed"));
        assert!(err("al_ice").contains("underscores are not allowed"));
        assert!(err("al ice").contains("has ` ` at position 3"));
        assert!(err("ali\u{e7}e").contains("only lowercase letters, digits and hyphens"));
        assert!(err("1alice").contains("must start with a lowercase letter"));
        assert!(err("-alice").contains("must start with a lowercase letter"));
        assert!(err("alice-").contains("must not end with a hyphen"));
        assert!(err("al--ice").contains("two hyphens in a row"));
    }

    #[test]
    fn every_derived_name_of_the_longest_stage_fits_in_the_longest_region() {
        let stage = StageName::parse(&"z".repeat(MAX_STAGE_LEN)).unwrap();
        let region = "us-isof-south-1";
        assert_eq!(region.len(), MAX_REGION_LEN);
        for (what, name, max) in stage.derived_names(region) {
            assert!(
                name.len() <= max,
                "{what} `{name}` is {} > {max}",
                name.len()
            );
        }
        let bucket = stage.bucket_name(BucketRole::Warehouse, "123456789012", region);
        assert_eq!(bucket.len(), 63, "the limit is reached exactly: {bucket}");
    }

    #[test]
    fn names_follow_the_scheme() {
        let s = StageName::parse("my-dev").unwrap();
        assert_eq!(s.database_name(), "pdcase_my_dev_warehouse");
        assert_eq!(
            s.bucket_name(BucketRole::Source, "000000000000", "us-east-1"),
            "pdcase-my-dev-source-000000000000-us-east-1"
        );
        assert_eq!(
            s.bucket_name_sub(BucketRole::Jobs),
            "pdcase-my-dev-jobs-${AWS::AccountId}-${AWS::Region}"
        );
        assert_eq!(
            s.log_group_name(FunctionRole::Etl),
            "/aws/lambda/pdcase-my-dev-etl"
        );
    }
}
