//! Per-stage settings: built-in defaults, optionally overridden by a YAML file.
//!
//! ```yaml
//! # pipeline.yaml
//! defaults:            # applies to every stage
//!   region: us-east-1
//! stages:
//!   prod:
//!     protected: true  # retained data, termination protection, teardown refused
//!     lambda: { memory_mb: 3008, timeout_seconds: 300 }
//!     emr: { release_label: emr-7.5.0, max_vcpu: 64, max_memory_gb: 256 }
//!     log_retention_days: 365
//!     base_b_engine: emr  # the default for protected stages; `function` for the others
//!     base_a_engine: auto # `function` (the default), `sharded` or `auto`
//!     access_logs_bucket: acme-s3-access-logs-123456789012-us-east-1  # hardened stages
//! ```
//!
//! Every error names the file, the key (`stages.prod.lambda.memory_mb`) and the problem.

use crate::extension::{
    key_locations, yaml_to_json, AddedOutput, AddedResource, Extensions, Origin, PropertyOverride,
};
use crate::resource::logs::Retention;
use crate::stage::{StageName, MAX_REGION_LEN};
use crate::template::{valid_logical_id, RAW_RESOURCE_KEYS};
use crate::warehouse::DataFormat;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Lambda settings of a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LambdaSettings {
    /// 128 to 10240 MB.
    pub memory_mb: u32,
    /// 1 to 900 seconds.
    pub timeout_seconds: u32,
}

/// The stage's EMR Serverless application, which runs base b's Spark job on `emr` stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmrSettings {
    /// `emr-7.x.y`: Spark 3.5, which the Spark job is tested with.
    pub release_label: String,
    /// The most vCPUs the application's workers hold together (a cost guard).
    pub max_vcpu: u32,
    /// The most memory, in GB, the application's workers hold together.
    pub max_memory_gb: u32,
    /// Minutes the application stays started without a job run before it stops itself.
    pub idle_stop_minutes: u32,
    /// The VPC a job that needs one runs in. `None`: no VPC; the job reaches S3 and the
    /// region's other services as EMR Serverless does by default.
    pub network: Option<EmrNetwork>,
}

/// The subnets and security groups of a job that needs a VPC (the application's network
/// configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmrNetwork {
    /// One to 16 subnets.
    pub subnet_ids: Vec<String>,
    /// One to 5 security groups.
    pub security_group_ids: Vec<String>,
}

/// What computes base b (the site events' eight tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseBEngine {
    /// A Lambda function of the stage (the etl crate's `site_events`): no cluster, seconds
    /// for a developer's events, within the function's timeout and memory (it refuses more,
    /// before writing anything).
    Function,
    /// The Spark job on the stage's EMR Serverless application: workers for any volume,
    /// started per run and billed per second.
    Emr,
}

impl BaseBEngine {
    /// Its name in `pipeline.yaml` (`function`, `emr`).
    pub fn as_str(self) -> &'static str {
        match self {
            BaseBEngine::Function => "function",
            BaseBEngine::Emr => "emr",
        }
    }

    /// The engine named `s` in `pipeline.yaml`, if any.
    pub fn parse(s: &str) -> Option<BaseBEngine> {
        match s {
            "function" => Some(BaseBEngine::Function),
            "emr" => Some(BaseBEngine::Emr),
            _ => None,
        }
    }
}

/// What computes base a (the seven exports' four tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseAEngine {
    /// The ETL function alone: every export read by one function, within its timeout.
    Function,
    /// The ETL function plans the run and starts the stage's state machine: a Step Functions
    /// Distributed Map runs one shard (an invocation of the ETL function) per byte range of an
    /// export, then a publisher switches the tables. For exports past one function.
    Sharded,
    /// Per run, from the exports' sizes: `function` while one function's measured throughput
    /// reads them within half its timeout, `sharded` past that.
    Auto,
}

impl BaseAEngine {
    /// Its name in `pipeline.yaml` (`function`, `sharded`, `auto`).
    pub fn as_str(self) -> &'static str {
        match self {
            BaseAEngine::Function => "function",
            BaseAEngine::Sharded => "sharded",
            BaseAEngine::Auto => "auto",
        }
    }

    /// The engine named `s` in `pipeline.yaml`, if any.
    pub fn parse(s: &str) -> Option<BaseAEngine> {
        match s {
            "function" => Some(BaseAEngine::Function),
            "sharded" => Some(BaseAEngine::Sharded),
            "auto" => Some(BaseAEngine::Auto),
            _ => None,
        }
    }

    /// Whether the stage holds the state machine (`sharded` and `auto`).
    pub fn has_state_machine(self) -> bool {
        !matches!(self, BaseAEngine::Function)
    }
}

/// The validated settings of one stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageConfig {
    /// The stage's name.
    pub stage: StageName,
    /// The AWS region it lives in (part of its resources' names).
    pub region: String,
    /// Stateful resources are retained on delete and replacement, the stack gets termination
    /// protection, and teardown is refused unless forced.
    pub protected: bool,
    /// AWS Control Tower's proactive controls, as far as they serve: a customer-managed KMS
    /// key of the stage for the buckets, log groups, topics and query results, and logs kept
    /// at least a year. Default: the stage's `protected`.
    pub hardened: bool,
    /// Where a hardened stage's buckets deliver their server access logs: an existing bucket
    /// of the account and region (an organization's log bucket), or `None` for a log bucket
    /// the stage's stack owns. Unused on stages that are not hardened.
    pub access_logs_bucket: Option<String>,
    /// The functions' memory and timeout.
    pub lambda: LambdaSettings,
    /// Base b's EMR Serverless application (`base_b_engine: emr`).
    pub emr: EmrSettings,
    /// How long CloudWatch Logs keeps the functions' logs.
    pub log_retention: Retention,
    /// The file format of the base-a tables the ETL writes (and the Glue tables declare).
    pub table_format: DataFormat,
    /// What the EMR topic starts for base b. Default: `emr` on protected stages, whose
    /// events are production's and outgrow a function; `function` on the others, a
    /// developer's few megabytes, where EMR Serverless would cost minutes of start and a bill per run.
    pub base_b_engine: BaseBEngine,
    /// What computes base a. Default: `function`.
    pub base_a_engine: BaseAEngine,
    /// Tags of the user's (`tags:` under `defaults:` and the stage; the stage's win) on every
    /// taggable resource of the stage, after `Project` and `Stage`, which they may not set.
    pub tags: BTreeMap<String, String>,
    /// Resources and outputs the user adds, and properties of the pipeline's they set or
    /// remove (`resources:` and `overrides:`, the defaults' then the stage's).
    pub extensions: Extensions,
}

/// The most tags `tags:` may add: AWS allows 50 on a resource, and the pipeline sets two
/// (`Project`, `Stage`) and a few resources a `Name`.
pub const MAX_USER_TAGS: usize = 40;

/// How long a hardened stage keeps its logs at least.
pub const HARDENED_MIN_RETENTION_DAYS: u32 = 365;

/// The EMR release requested by default (Spark 3.5.2).
pub const DEFAULT_EMR_RELEASE: &str = "emr-7.5.0";

/// The application's vCPUs by default: the driver and seven executors of EMR Serverless's
/// default size (4 vCPU, 16 GB each; EMR Serverless user guide, "Spark job properties").
pub const DEFAULT_MAX_VCPU: u32 = 32;

/// The application's memory by default, in GB (see [`DEFAULT_MAX_VCPU`]).
pub const DEFAULT_MAX_MEMORY_GB: u32 = 128;

/// Minutes an idle application stays started by default: long enough for a second run soon
/// after the first to find it started, short enough that nothing is billed for long (an
/// application without pre-initialized capacity holds no workers while idle).
pub const DEFAULT_IDLE_STOP_MINUTES: u32 = 5;

/// The smallest capacity that runs the job: its driver and one executor of the default size.
pub const MIN_VCPU: u32 = 8;

/// See [`MIN_VCPU`].
pub const MIN_MEMORY_GB: u32 = 32;

impl StageConfig {
    /// The built-in defaults (the original's settings where it had them).
    pub fn defaults(stage: StageName) -> StageConfig {
        StageConfig {
            stage,
            region: "us-east-1".into(),
            protected: false,
            hardened: false,
            access_logs_bucket: None,
            lambda: LambdaSettings {
                memory_mb: 2048,
                timeout_seconds: 60,
            },
            emr: EmrSettings {
                release_label: DEFAULT_EMR_RELEASE.into(),
                max_vcpu: DEFAULT_MAX_VCPU,
                max_memory_gb: DEFAULT_MAX_MEMORY_GB,
                idle_stop_minutes: DEFAULT_IDLE_STOP_MINUTES,
                network: None,
            },
            log_retention: Retention::Days30,
            table_format: DataFormat::Parquet,
            base_b_engine: BaseBEngine::Function,
            base_a_engine: BaseAEngine::Function,
            tags: BTreeMap::new(),
            extensions: Extensions::default(),
        }
    }

    /// Loads the settings of `stage`: defaults, then the file's `defaults:`, then its
    /// `stages.<stage>:` (when a file is given).
    pub fn load(stage: StageName, file: Option<&Path>) -> Result<StageConfig, ConfigError> {
        let config = StageConfig::defaults(stage);
        match file {
            None => Ok(config),
            Some(path) => Self::load_file(config, path),
        }
    }

    /// Checks the whole file: its syntax, every stage it names (each loaded as
    /// [`StageConfig::load`] would), and its `defaults:` alone (as a stage it does not name
    /// gets them). Returns the stages it names, sorted.
    ///
    /// A verb that reads the file for one stage calls this first, so a mistake under another
    /// stage is found by every verb, not by the first deploy of that stage.
    ///
    /// ```
    /// # use stack_model::StageConfig;
    /// let dir = std::env::temp_dir().join(format!("pdcase-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("pipeline.yaml");
    /// std::fs::write(&file, "stages:\n  prod: { protected: true }\n  alice: {}\n").unwrap();
    /// let names = StageConfig::validate_file(&file).unwrap();
    /// assert_eq!(names.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["alice", "prod"]);
    ///
    /// std::fs::write(&file, "stages:\n  alice: {}\n  prod: { lambda: { memory_mb: 1 } }\n").unwrap();
    /// let e = StageConfig::validate_file(&file).unwrap_err();
    /// assert_eq!(e.key, "stages.prod.lambda.memory_mb");
    /// ```
    pub fn validate_file(path: &Path) -> Result<Vec<StageName>, ConfigError> {
        let parsed = read_file(path)?;
        let names = stage_names(&parsed, path)?;
        for name in &names {
            Self::apply_file(StageConfig::defaults(name.clone()), &parsed, path)?;
        }
        // The defaults alone, as a stage the file does not name gets them, under the
        // shortest name: what fails here fails for every stage (the names derived from a
        // stage grow with it).
        let any = StageName::parse("x").expect("a valid stage name");
        Self::apply_file(StageConfig::defaults(any), &parsed, path)?;
        Ok(names)
    }

    /// Where `file` sets `stage`'s region, if it does: the key (`stages.<stage>.region` or
    /// `defaults.region`) and the value. A region given on the command line must agree with it:
    /// a stage's region is part of its resources' names.
    ///
    /// ```
    /// # use stack_model::{StageConfig, StageName};
    /// let file = std::env::temp_dir().join(format!("pdcase-region-{}.yaml", std::process::id()));
    /// std::fs::write(&file, "defaults: {region: eu-west-1}\nstages: {prod: {region: us-east-2}}\n").unwrap();
    /// let set = |s: &str| StageConfig::region_set_by(&StageName::parse(s).unwrap(), &file).unwrap();
    /// assert_eq!(set("prod"), Some(("stages.prod.region".into(), "us-east-2".into())));
    /// assert_eq!(set("alice"), Some(("defaults.region".into(), "eu-west-1".into())));
    /// ```
    pub fn region_set_by(
        stage: &StageName,
        file: &Path,
    ) -> Result<Option<(String, String)>, ConfigError> {
        let parsed = read_file(file)?;
        let own = parsed
            .stages
            .get(stage.as_str())
            .and_then(|o| o.region.clone())
            .map(|r| (format!("stages.{stage}.region"), r));
        Ok(own.or_else(|| {
            parsed
                .defaults
                .region
                .clone()
                .map(|r| ("defaults.region".to_string(), r))
        }))
    }

    /// Sets the region (one given on the command line), checked as the file's would be.
    pub fn set_region(&mut self, region: &str) -> Result<(), String> {
        check_region(region)?;
        self.region = region.to_owned();
        Ok(())
    }

    fn load_file(config: StageConfig, path: &Path) -> Result<StageConfig, ConfigError> {
        let parsed = read_file(path)?;
        stage_names(&parsed, path)?;
        Self::apply_file(config, &parsed, path)
    }

    fn apply_file(
        mut config: StageConfig,
        parsed: &ConfigFile,
        path: &Path,
    ) -> Result<StageConfig, ConfigError> {
        parsed.defaults.apply(&mut config, path, "defaults")?;
        parsed
            .defaults
            .extend(&mut config, path, "defaults", &parsed.locations)?;
        let own = parsed.stages.get(config.stage.as_str());
        if let Some(o) = own {
            let prefix = format!("stages.{}", config.stage);
            o.apply(&mut config, path, &prefix)?;
            o.extend(&mut config, path, &prefix, &parsed.locations)?;
        }
        // Hardened follows protected unless set; a hardened stage keeps its logs a year
        // (Control Tower's CT.CLOUDWATCH.PR.2), by default, or refuses a shorter setting.
        config.hardened = own
            .and_then(|o| o.hardened)
            .or(parsed.defaults.hardened)
            .unwrap_or(config.protected);
        // The engine follows protected unless set (see `base_b_engine`).
        let engine = match own.and_then(|o| o.base_b_engine.as_deref()) {
            Some(e) => Some((e, format!("stages.{}.base_b_engine", config.stage))),
            None => parsed
                .defaults
                .base_b_engine
                .as_deref()
                .map(|e| (e, "defaults.base_b_engine".to_string())),
        };
        config.base_b_engine = match engine {
            None if config.protected => BaseBEngine::Emr,
            None => BaseBEngine::Function,
            Some((e, key)) => BaseBEngine::parse(e).ok_or_else(|| {
                ConfigError::new(
                    path,
                    &key,
                    format!("`{e}` is not an engine of base b; use `function` (a Lambda function of the stage) or `emr` (the Spark job on the stage's EMR Serverless application)"),
                )
            })?,
        };
        let engine = match own.and_then(|o| o.base_a_engine.as_deref()) {
            Some(e) => Some((e, format!("stages.{}.base_a_engine", config.stage))),
            None => parsed
                .defaults
                .base_a_engine
                .as_deref()
                .map(|e| (e, "defaults.base_a_engine".to_string())),
        };
        if let Some((e, key)) = engine {
            config.base_a_engine = BaseAEngine::parse(e).ok_or_else(|| {
                ConfigError::new(
                    path,
                    &key,
                    format!("`{e}` is not an engine of base a; use `function` (the ETL function alone), `sharded` (shards under the stage's state machine) or `auto` (chosen per run by the exports' sizes)"),
                )
            })?;
        }
        let retention_key = match own.and_then(|o| o.log_retention_days) {
            Some(_) => Some(format!("stages.{}.log_retention_days", config.stage)),
            None => parsed
                .defaults
                .log_retention_days
                .map(|_| "defaults.log_retention_days".to_string()),
        };
        if config.hardened && config.log_retention.days() < HARDENED_MIN_RETENTION_DAYS {
            match retention_key {
                None => config.log_retention = Retention::Days365,
                Some(key) => {
                    return Err(ConfigError::new(
                        path,
                        &key,
                        format!(
                            "{} days is too short for a hardened stage: keep logs at least {HARDENED_MIN_RETENTION_DAYS} days, or set `hardened: false`",
                            config.log_retention.days()
                        ),
                    ))
                }
            }
        }
        for (what, name, max) in config.stage.derived_names(&config.region) {
            if name.len() > max {
                return Err(ConfigError::new(
                    path,
                    "region",
                    format!(
                        "{what} `{name}` would be {} characters; the limit is {max}",
                        name.len()
                    ),
                ));
            }
        }
        Ok(config)
    }
}

/// A configuration problem: which file, which key, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// A dotted path such as `stages.prod.lambda.memory_mb`; empty for the whole file.
    pub key: String,
    /// What is wrong, and the rule.
    pub message: String,
    /// Line and column (1-based) where the parser saw it.
    pub location: Option<(usize, usize)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    fn new(file: &Path, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            key: key.to_string(),
            message,
            location: None,
        }
    }
}

impl std::error::Error for ConfigError {}

/// Refusals of what `resources:` and `overrides:` hold, where the user wrote it.
impl Origin {
    /// A refusal of something at `below` (a dotted path under this key; empty: the key itself).
    pub fn error(&self, below: &str, message: String) -> ConfigError {
        let key = if below.is_empty() {
            self.key.clone()
        } else {
            format!("{}.{below}", self.key)
        };
        // The nearest key the file shows: the path itself, else its parents.
        let mut location = self.location;
        let mut probe = below;
        while !probe.is_empty() {
            if let Some(l) = self.inner.get(probe) {
                location = Some(*l);
                break;
            }
            probe = probe.rsplit_once('.').map(|(head, _)| head).unwrap_or("");
        }
        ConfigError {
            file: self.file.clone(),
            key,
            message,
            location,
        }
    }
}

/// `pipeline.yaml`: settings for every stage (`defaults`) and for each stage by name
/// (`stages`); a stage not named gets the defaults, then the built-in ones.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pipeline.yaml")]
struct ConfigFile {
    /// Settings every stage gets unless its own entry sets them.
    #[serde(default)]
    defaults: Overrides,
    /// Settings of one stage, by its name (lowercase letters, digits and hyphens).
    #[serde(default)]
    stages: BTreeMap<String, Overrides>,
    /// Where each key is (line, column), for the refusals of `resources:` and `overrides:`.
    #[serde(skip)]
    #[schemars(skip)]
    locations: BTreeMap<String, (usize, usize)>,
}

/// A stage's settings; each key is optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Overrides {
    /// The AWS region the stage lives in (default us-east-1); part of its resources' names.
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-\d+$"), length(max = MAX_REGION_LEN))]
    region: Option<String>,
    /// Retain the stage's data on teardown, turn on termination protection, refuse hotswap.
    protected: Option<bool>,
    /// The stage's own KMS key, logs kept at least 365 days, access logs (default: as
    /// `protected`).
    hardened: Option<bool>,
    /// Hardened stages: the bucket the access logs go to (default: a log bucket of the stage).
    access_logs_bucket: Option<String>,
    /// The functions' memory and timeout.
    lambda: Option<LambdaOverrides>,
    /// Base b's EMR Serverless application (`base_b_engine: emr`).
    emr: Option<EmrOverrides>,
    /// How long CloudWatch Logs keeps the functions' logs (default 30; 365 when hardened).
    #[schemars(extend("enum" = retention_days()))]
    log_retention_days: Option<u32>,
    /// The warehouse tables' format (default parquet).
    #[schemars(extend("enum" = ["parquet", "ndjson"]))]
    table_format: Option<String>,
    /// What builds base b: the site-events function, or a Spark job on EMR Serverless.
    #[schemars(extend("enum" = ["function", "emr"]))]
    base_b_engine: Option<String>,
    /// What builds base a: the ETL function alone, shards under a Step Functions state
    /// machine, or either chosen per run by the exports' sizes.
    #[schemars(extend("enum" = ["function", "sharded", "auto"]))]
    base_a_engine: Option<String>,
    /// Tags on every taggable resource of the stage (a stage's own win over the defaults'),
    /// besides `Project` and `Stage`, which the tool sets and its policies rely on.
    #[schemars(extend("maxProperties" = MAX_USER_TAGS))]
    tags: Option<BTreeMap<String, String>>,
    /// CloudFormation added to the stage's template, as in Serverless's `resources:`:
    /// `Resources` and `Outputs`, as a template writes them (short forms such as `!Ref`
    /// accepted). Checked against the resource schemas when the template is composed.
    #[schemars(with = "Option<UserResourcesSchema>")]
    resources: Option<serde_yaml_ng::Value>,
    /// Properties of the pipeline's resources set or removed: `LogicalId: {Property: value}`,
    /// a path below a property with `.` between keys, `null` to remove it.
    #[schemars(with = "Option<BTreeMap<String, BTreeMap<String, serde_json::Value>>>")]
    overrides: Option<BTreeMap<String, BTreeMap<String, serde_yaml_ng::Value>>>,
}

/// The schema's view of `resources:` (read as YAML, to keep the short forms' tags).
#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used
#[serde(deny_unknown_fields)]
struct UserResourcesSchema {
    /// Resources by logical id, as in a template's `Resources`.
    #[serde(rename = "Resources")]
    resources: Option<BTreeMap<String, serde_json::Value>>,
    /// Outputs by name, as in a template's `Outputs`.
    #[serde(rename = "Outputs")]
    outputs: Option<BTreeMap<String, serde_json::Value>>,
}

/// The values CloudWatch Logs accepts as a retention, in days.
fn retention_days() -> Vec<u32> {
    Retention::ALL.iter().map(|r| r.days()).collect()
}

/// The range of Lambda memory, in MB (Lambda's limits).
pub const LAMBDA_MEMORY_MB: (u32, u32) = (128, 10240);
/// The range of a Lambda timeout, in seconds (Lambda's limits).
pub const LAMBDA_TIMEOUT_SECONDS: (u32, u32) = (1, 900);

/// The functions' memory and timeout.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LambdaOverrides {
    /// Memory of each function, in MB (default 2048).
    #[schemars(range(min = LAMBDA_MEMORY_MB.0, max = LAMBDA_MEMORY_MB.1))]
    memory_mb: Option<u32>,
    /// Timeout of each function, in seconds (default 60).
    #[schemars(range(min = LAMBDA_TIMEOUT_SECONDS.0, max = LAMBDA_TIMEOUT_SECONDS.1))]
    timeout_seconds: Option<u32>,
}

/// Base b's EMR Serverless application.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EmrOverrides {
    /// The EMR release (emr-7.x: Spark 3.5; default emr-7.5.0).
    #[schemars(regex(pattern = r"^emr-7\.\d+\.\d+$"))]
    release_label: Option<String>,
    /// What all its runs may hold together, in vCPU (default 32).
    #[schemars(range(min = MIN_VCPU))]
    max_vcpu: Option<u32>,
    /// What all its runs may hold together, in GB of memory (default 128).
    #[schemars(range(min = MIN_MEMORY_GB))]
    max_memory_gb: Option<u32>,
    /// It stops itself after this long without a run (default 5).
    #[schemars(range(min = 1))]
    idle_stop_minutes: Option<u32>,
    /// The subnets a job that needs a VPC runs in (with `security_group_ids`).
    subnet_ids: Option<Vec<String>>,
    /// The security groups of a job that runs in `subnet_ids`.
    security_group_ids: Option<Vec<String>>,
    // The EMR-on-EC2 cluster's keys: read only to refuse them with what replaces them (the
    // schema leaves them out, so an editor flags them too).
    #[schemars(skip)]
    master_instance_type: Option<serde_yaml_ng::Value>,
    #[schemars(skip)]
    core_instance_type: Option<serde_yaml_ng::Value>,
    #[schemars(skip)]
    core_instance_count: Option<serde_yaml_ng::Value>,
    #[schemars(skip)]
    idle_timeout_minutes: Option<serde_yaml_ng::Value>,
    #[schemars(skip)]
    subnet_id: Option<serde_yaml_ng::Value>,
}

/// The JSON Schema of `pipeline.yaml` (draft 2020-12), derived from the types the file is read
/// into, so it cannot drift from what [`StageConfig::load`] accepts; editors with a YAML
/// language server complete and check the file with it. Values are checked further when the
/// file is read (a region's name, a bucket's), with the same words.
///
/// ```
/// let schema = stack_model::config::json_schema();
/// assert_eq!(schema["additionalProperties"], false);
/// assert!(schema["properties"]["stages"].is_object());
/// ```
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConfigFile)).expect("a schema serializes")
}

impl EmrOverrides {
    /// The first key of the EMR-on-EC2 cluster that is set, and what replaces it.
    fn retired_key(&self) -> Option<(&'static str, &'static str)> {
        const SIZE: &str = "EMR Serverless sizes the job's workers itself; cap what a stage may spend with `emr.max_vcpu` and `emr.max_memory_gb`";
        [
            (self.master_instance_type.is_some(), "master_instance_type", SIZE),
            (self.core_instance_type.is_some(), "core_instance_type", SIZE),
            (self.core_instance_count.is_some(), "core_instance_count", SIZE),
            (
                self.idle_timeout_minutes.is_some(),
                "idle_timeout_minutes",
                "the application stops itself when idle: use `emr.idle_stop_minutes`",
            ),
            (
                self.subnet_id.is_some(),
                "subnet_id",
                "a job that needs a VPC names its subnets in `emr.subnet_ids` (a list) and its security groups in `emr.security_group_ids`; without them the job needs no VPC",
            ),
        ]
        .into_iter()
        .find(|(set, _, _)| *set)
        .map(|(_, key, instead)| (key, instead))
    }
}

fn read_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, "", format!("cannot read the file: {e}")))?;
    parse_file(path, &text)
}

/// The stages a file names, each a valid stage name.
fn stage_names(parsed: &ConfigFile, path: &Path) -> Result<Vec<StageName>, ConfigError> {
    parsed
        .stages
        .keys()
        .map(|name| {
            StageName::parse(name)
                .map_err(|e| ConfigError::new(path, &format!("stages.{name}"), e.to_string()))
        })
        .collect()
}

fn parse_file(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let mut parsed: ConfigFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let location = inner.location().map(|l| (l.line(), l.column()));
        // serde_yaml_ng appends " at line L column C"; the location is shown in front instead.
        let mut message = inner.to_string();
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        // It also puts the path of the map it was in in front ("stages.prod: unknown field"):
        // the key path is shown once, by the error itself.
        if let Some((head, rest)) = message.split_once(": ") {
            if !head.contains(' ') && key.starts_with(head) {
                message = rest.to_owned();
            }
        }
        let message = plain_message(&message);
        ConfigError {
            file: path.to_path_buf(),
            key: if key == "." { String::new() } else { key },
            message,
            location,
        }
    })?;
    if text.contains("resources") || text.contains("overrides") {
        parsed.locations = key_locations(text);
    }
    Ok(parsed)
}

/// Where `key` (and the keys below it) are in the file.
fn origin(file: &Path, key: &str, locations: &BTreeMap<String, (usize, usize)>) -> Origin {
    let below = format!("{key}.");
    Origin {
        file: file.to_path_buf(),
        key: key.to_string(),
        location: locations.get(key).copied(),
        inner: locations
            .range(below.clone()..)
            .take_while(|(k, _)| k.starts_with(&below))
            .map(|(k, l)| (k[below.len()..].to_string(), *l))
            .collect(),
    }
}

/// serde's message in the user's terms: an unknown key with the nearest known one (the key
/// path is shown once, in front of the message), and never a Rust type's name.
fn plain_message(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, known) = rest.split_once('`').unwrap_or((rest, ""));
        let known: Vec<&str> = known
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|k| !k.is_empty())
            .collect();
        // strsim (clap's own suggestion metric): within a third of the key's length.
        let nearest = known
            .iter()
            .map(|k| (strsim::damerau_levenshtein(field, k), *k))
            .filter(|(d, _)| *d <= (field.len() / 3).max(1))
            .min();
        let hint = match nearest {
            Some((_, k)) => format!("; did you mean `{k}`?"),
            None => String::new(),
        };
        return if known.is_empty() {
            format!("unknown key{hint}; nothing can be set here")
        } else {
            format!("unknown key{hint} (the keys here: {})", known.join(", "))
        };
    }
    // "invalid type: string \"x\", expected struct Overrides": the shape, not the type.
    match message.find("expected struct ") {
        Some(i) => format!(
            "{}expected a mapping of keys (`key: value` lines)",
            &message[..i]
        ),
        None => message.replace("expected a sequence", "expected a list"),
    }
}

impl Overrides {
    /// Reads `resources:` and `overrides:` into the stage's extensions, checking their shape
    /// (what a template allows there); the types, properties and references are checked when
    /// the template is composed ([`crate::pipeline::check_extensions`]).
    fn extend(
        &self,
        c: &mut StageConfig,
        file: &Path,
        prefix: &str,
        locations: &BTreeMap<String, (usize, usize)>,
    ) -> Result<(), ConfigError> {
        if let Some(resources) = &self.resources {
            let key = format!("{prefix}.resources");
            let at = origin(file, &key, locations);
            let json = yaml_to_json(resources).map_err(|m| at.error("", m))?;
            let Json::Object(sections) = json else {
                return Err(at.error(
                    "",
                    "expected a mapping with `Resources` and `Outputs`, as in a template".into(),
                ));
            };
            for (section, body) in sections {
                let Json::Object(items) = body else {
                    return Err(at.error(&section, "expected a mapping of logical ids".into()));
                };
                match section.as_str() {
                    "Resources" => {
                        for (id, r) in items {
                            let o = origin(file, &format!("{key}.Resources.{id}"), locations);
                            let added = added_resource(&id, r, &o)?;
                            c.extensions.resources.insert(id, added);
                        }
                    }
                    "Outputs" => {
                        for (name, body) in items {
                            let o = origin(file, &format!("{key}.Outputs.{name}"), locations);
                            check_output(&name, &body, &o)?;
                            c.extensions
                                .outputs
                                .insert(name, AddedOutput { body, origin: o });
                        }
                    }
                    "Conditions" | "Parameters" | "Mappings" | "Metadata" | "Rules"
                    | "Transform" => {
                        return Err(at.error(&section, format!("a stage's template takes added `Resources` and `Outputs` only; `{section}` is the tool's (write the value in place)")));
                    }
                    other => {
                        return Err(at.error(
                            other,
                            "unknown key (the keys here: Resources, Outputs)".into(),
                        ));
                    }
                }
            }
        }
        if let Some(overrides) = &self.overrides {
            for (id, paths) in overrides {
                for (path, value) in paths {
                    let o = origin(file, &format!("{prefix}.overrides.{id}.{path}"), locations);
                    let steps: Vec<String> = path.split('.').map(str::to_string).collect();
                    if steps.iter().any(String::is_empty) {
                        return Err(o.error(
                            "",
                            "a property path is names joined by `.`, none empty".into(),
                        ));
                    }
                    let value = yaml_to_json(value).map_err(|m| o.error("", m))?;
                    c.extensions.overrides.push(PropertyOverride {
                        id: id.clone(),
                        path: steps,
                        value: (!value.is_null()).then_some(value),
                        origin: o,
                    });
                }
            }
        }
        Ok(())
    }

    fn apply(&self, c: &mut StageConfig, file: &Path, prefix: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| {
            ConfigError::new(file, &format!("{prefix}.{key}"), message)
        };
        if let Some(region) = &self.region {
            check_region(region).map_err(|m| fail("region", m))?;
            c.region = region.clone();
        }
        if let Some(p) = self.protected {
            c.protected = p;
        }
        if let Some(f) = &self.table_format {
            c.table_format = DataFormat::parse(f).ok_or_else(|| {
                fail(
                    "table_format",
                    format!("`{f}` is not a table format; use `parquet` or `ndjson`"),
                )
            })?;
        }
        if let Some(l) = &self.lambda {
            if let Some(m) = l.memory_mb {
                in_range(
                    m,
                    LAMBDA_MEMORY_MB.0,
                    LAMBDA_MEMORY_MB.1,
                    "MB of Lambda memory",
                )
                .map_err(|e| fail("lambda.memory_mb", e))?;
                c.lambda.memory_mb = m;
            }
            if let Some(t) = l.timeout_seconds {
                in_range(
                    t,
                    LAMBDA_TIMEOUT_SECONDS.0,
                    LAMBDA_TIMEOUT_SECONDS.1,
                    "seconds of Lambda timeout",
                )
                .map_err(|e| fail("lambda.timeout_seconds", e))?;
                c.lambda.timeout_seconds = t;
            }
        }
        if let Some(e) = &self.emr {
            if let Some((key, instead)) = e.retired_key() {
                return Err(fail(
                    &format!("emr.{key}"),
                    format!("base b's Spark job runs on EMR Serverless, which has no `{key}`: {instead}"),
                ));
            }
            if let Some(r) = &e.release_label {
                check_release(r).map_err(|m| fail("emr.release_label", m))?;
                c.emr.release_label = r.clone();
            }
            if let Some(n) = e.max_vcpu {
                // EMR Serverless's default quota is 16,000 vCPUs per account and region.
                in_range(
                    n,
                    MIN_VCPU,
                    16_000,
                    "vCPUs (the job's driver and one executor need 8)",
                )
                .map_err(|m| fail("emr.max_vcpu", m))?;
                c.emr.max_vcpu = n;
            }
            if let Some(n) = e.max_memory_gb {
                in_range(
                    n,
                    MIN_MEMORY_GB,
                    128_000,
                    "GB (the job's driver and one executor need 32)",
                )
                .map_err(|m| fail("emr.max_memory_gb", m))?;
                c.emr.max_memory_gb = n;
            }
            if let Some(n) = e.idle_stop_minutes {
                // The application's auto-stop idle timeout is 1 minute to 7 days
                // (EMR Serverless API reference, "AutoStopConfig").
                in_range(
                    n,
                    1,
                    7 * 24 * 60,
                    "minutes of idle time before the application stops",
                )
                .map_err(|m| fail("emr.idle_stop_minutes", m))?;
                c.emr.idle_stop_minutes = n;
            }
            match (&e.subnet_ids, &e.security_group_ids) {
                (None, None) => {}
                (Some(subnets), Some(groups)) => {
                    check_ids(subnets, "subnet", 16).map_err(|m| fail("emr.subnet_ids", m))?;
                    check_ids(groups, "sg", 5).map_err(|m| fail("emr.security_group_ids", m))?;
                    c.emr.network = Some(EmrNetwork {
                        subnet_ids: subnets.clone(),
                        security_group_ids: groups.clone(),
                    });
                }
                (Some(_), None) => return Err(fail(
                    "emr.subnet_ids",
                    "a job in a VPC needs its security groups too: set `emr.security_group_ids`"
                        .into(),
                )),
                (None, Some(_)) => {
                    return Err(fail(
                        "emr.security_group_ids",
                        "security groups need the subnets they apply in: set `emr.subnet_ids`"
                            .into(),
                    ))
                }
            }
        }
        if let Some(tags) = &self.tags {
            for (k, v) in tags {
                check_tag(k, v).map_err(|m| fail(&format!("tags.{k}"), m))?;
                c.tags.insert(k.clone(), v.clone());
            }
            if c.tags.len() > MAX_USER_TAGS {
                return Err(fail(
                    "tags",
                    format!(
                        "{} tags: at most {MAX_USER_TAGS} (AWS allows 50 on a resource, and the tool sets `Project`, `Stage` and on some resources `Name`)",
                        c.tags.len()
                    ),
                ));
            }
        }
        if let Some(name) = &self.access_logs_bucket {
            check_bucket_name(name).map_err(|m| fail("access_logs_bucket", m))?;
            c.access_logs_bucket = Some(name.clone());
        }
        if let Some(days) = self.log_retention_days {
            c.log_retention = Retention::from_days(days).ok_or_else(|| {
                let allowed: Vec<String> = Retention::ALL
                    .iter()
                    .map(|r| r.days().to_string())
                    .collect();
                fail(
                    "log_retention_days",
                    format!(
                        "{days} is not a retention CloudWatch Logs accepts; use one of {}",
                        allowed.join(", ")
                    ),
                )
            })?;
        }
        Ok(())
    }
}

/// A resource under `resources.Resources`, its shape checked: a logical id CloudFormation
/// accepts, a `Type`, `Properties` a mapping, only the resource-level keys a stage's template
/// allows, and no tag the tool sets.
fn added_resource(id: &str, r: Json, at: &Origin) -> Result<AddedResource, ConfigError> {
    if !valid_logical_id(id) {
        return Err(at.error(
            "",
            "a logical id is 1 to 255 ASCII letters and digits".into(),
        ));
    }
    let Json::Object(mut body) = r else {
        return Err(at.error(
            "",
            "expected a resource: a mapping with `Type` and `Properties`".into(),
        ));
    };
    let type_name = match body.remove("Type") {
        Some(Json::String(t)) => t,
        Some(_) => {
            return Err(at.error(
                "Type",
                "expected a type name such as `AWS::DynamoDB::Table`".into(),
            ))
        }
        None => return Err(at.error("", "the resource has no `Type`".into())),
    };
    let properties = match body.remove("Properties") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(p)) => p,
        Some(_) => return Err(at.error("Properties", "expected a mapping of properties".into())),
    };
    for k in body.keys() {
        if k == "Condition" {
            return Err(at.error(k, "a stage's template has no `Conditions`: add the resource only to the stages that need it (under `stages.<name>.resources`)".into()));
        }
        if !RAW_RESOURCE_KEYS.contains(&k.as_str()) {
            return Err(at.error(
                k,
                format!(
                    "unknown key (the keys here: Type, Properties, {})",
                    RAW_RESOURCE_KEYS.join(", ")
                ),
            ));
        }
    }
    if let Some(Json::Array(tags)) = properties.get("Tags") {
        for (i, t) in tags.iter().enumerate() {
            if let Some(refusal) = t.get("Key").and_then(Json::as_str).and_then(tool_tag) {
                return Err(at.error(&format!("Properties.Tags.{i}.Key"), refusal));
            }
        }
    }
    Ok(AddedResource {
        type_name,
        properties,
        keys: body,
        origin: at.clone(),
    })
}

/// An output under `resources.Outputs`: a mapping with a `Value`.
fn check_output(name: &str, body: &Json, at: &Origin) -> Result<(), ConfigError> {
    if !valid_logical_id(name) {
        return Err(at.error(
            "",
            "an output's name is 1 to 255 ASCII letters and digits".into(),
        ));
    }
    let Json::Object(m) = body else {
        return Err(at.error("", "expected an output: a mapping with `Value`".into()));
    };
    if !m.contains_key("Value") {
        return Err(at.error("", "the output has no `Value`".into()));
    }
    if let Some(k) = m
        .keys()
        .find(|k| !["Value", "Description", "Export"].contains(&k.as_str()))
    {
        return Err(at.error(
            k,
            "unknown key (the keys here: Value, Description, Export)".into(),
        ));
    }
    Ok(())
}

/// S3's rules for a general purpose bucket's name (S3 user guide, "General purpose bucket
/// naming rules"), those a typo breaks: 3 to 63 characters of lowercase letters, digits,
/// dots and hyphens, a letter or digit at each end.
fn check_bucket_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || !ends(name.as_bytes().first())
        || !ends(name.as_bytes().last())
    {
        return Err(format!(
            "`{name}` is not an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// A list of 1 to `max` distinct EC2 ids `<kind>-` and 8 or 17 lowercase hexadecimal digits
/// (EC2's two id lengths).
fn check_ids(ids: &[String], kind: &str, max: usize) -> Result<(), String> {
    if ids.is_empty() || ids.len() > max {
        return Err(format!("give 1 to {max} ids, not {}", ids.len()));
    }
    for (i, id) in ids.iter().enumerate() {
        let hex = id
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix('-'))
            .unwrap_or("");
        let ok = matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !ok {
            return Err(format!(
                "`{id}` is not a {kind} id (such as `{kind}-0123456789abcdef0`)"
            ));
        }
        if ids[..i].contains(id) {
            return Err(format!("`{id}` is listed twice"));
        }
    }
    Ok(())
}

fn in_range(v: u32, min: u32, max: u32, what: &str) -> Result<(), String> {
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{v} is out of range: {min} to {max} {what}"))
    }
}

/// The refusal of a tag key the tool sets itself (`Project`, `Stage`, in any case), if `key` is
/// one: in `tags:` and in an added resource's `Tags`.
fn tool_tag(key: &str) -> Option<String> {
    ["Project", "Stage"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(key))
        .then(|| format!("`{key}` is set by the tool (the stage's policies find its resources by `Project` and `Stage`): choose another key"))
}

/// A tag the user adds: not one the tool sets, not AWS's prefix, within AWS's tag rules
/// ("Tag naming limits and requirements", Tagging AWS Resources user guide: a key of 1 to 128
/// characters, a value of up to 256, letters, numbers, spaces and `_ . : / = + - @`).
fn check_tag(key: &str, value: &str) -> Result<(), String> {
    if let Some(refusal) = tool_tag(key) {
        return Err(refusal);
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err("keys starting with `aws:` are reserved for AWS's own tags".into());
    }
    let allowed = |t: &str| {
        t.chars()
            .all(|ch| ch.is_alphanumeric() || ch == ' ' || "_.:/=+-@".contains(ch))
    };
    if key.is_empty() || key.chars().count() > 128 || !allowed(key) {
        return Err(format!(
            "`{key}` is not a tag key: 1 to 128 letters, numbers, spaces or `_ . : / = + - @`"
        ));
    }
    if value.chars().count() > 256 || !allowed(value) {
        return Err(format!(
            "`{value}` is not a tag value: up to 256 letters, numbers, spaces or `_ . : / = + - @`"
        ));
    }
    Ok(())
}

fn check_region(region: &str) -> Result<(), String> {
    // `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: letters-only parts, a final number.
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() >= 3
        && region.len() <= MAX_REGION_LEN
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{region}` is not an AWS region name (such as `us-east-1`, at most {MAX_REGION_LEN} characters)"
        ))
    }
}

fn check_release(release: &str) -> Result<(), String> {
    let version = release.strip_prefix("emr-").unwrap_or("");
    let nums: Vec<&str> = version.split('.').collect();
    let well_formed = nums.len() == 3
        && nums
            .iter()
            .all(|n| !n.is_empty() && n.parse::<u32>().is_ok());
    if !well_formed {
        return Err(format!(
            "`{release}` is not an EMR release label (such as `{DEFAULT_EMR_RELEASE}`)"
        ));
    }
    if nums[0] != "7" {
        return Err(format!(
            "`{release}` is not supported: the Spark job is built and tested for Spark 3.5, which EMR 7.x releases ship"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 28, `tags:`: the defaults' and the stage's merged (the stage's win); the tool's
    /// own keys, AWS's prefix and malformed keys refused naming the key.
    #[test]
    fn user_tags_merge_and_the_tools_own_are_refused() {
        let c = load(
            "defaults: {tags: {team: data, cost-center: \"42\"}}\nstages:\n  prod: {tags: {team: platform}}\n",
            "prod",
        )
        .unwrap();
        let tags: Vec<(&str, &str)> = c
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(tags, [("cost-center", "42"), ("team", "platform")]);
        for (yaml, key, words) in [
            (
                "defaults: {tags: {Stage: x}}\n",
                "defaults.tags.Stage",
                "set by the tool",
            ),
            (
                "stages: {prod: {tags: {project: x}}}\n",
                "stages.prod.tags.project",
                "set by the tool",
            ),
            (
                "defaults: {tags: {\"aws:x\": y}}\n",
                "defaults.tags.aws:x",
                "reserved",
            ),
            (
                "defaults: {tags: {\"a#b\": y}}\n",
                "defaults.tags.a#b",
                "not a tag key",
            ),
        ] {
            let e = load(yaml, "prod").unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
    }

    fn load(yaml: &str, stage: &str) -> Result<StageConfig, ConfigError> {
        // One folder per call: tests run in parallel threads of one process.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "stack-model-config-{}-{stage}-{n}",
            std::process::id(),
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipeline.yaml");
        std::fs::write(&path, yaml).unwrap();
        StageConfig::load(StageName::parse(stage).unwrap(), Some(&path))
    }

    #[test]
    fn no_file_gives_the_defaults() {
        let c = StageConfig::load(StageName::parse("alice").unwrap(), None).unwrap();
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.lambda.memory_mb, 2048);
        assert!(!c.protected);
    }

    #[test]
    fn stage_overrides_apply_over_file_defaults() {
        let yaml = "defaults:\n  region: eu-west-1\n  log_retention_days: 14\nstages:\n  prod:\n    protected: true\n    hardened: false\n    lambda: {memory_mb: 3008}\n    emr: {max_vcpu: 64}\n";
        let prod = load(yaml, "prod").unwrap();
        assert!(prod.protected);
        assert_eq!(prod.region, "eu-west-1");
        assert_eq!(prod.lambda.memory_mb, 3008);
        assert_eq!(prod.lambda.timeout_seconds, 60);
        assert_eq!(prod.emr.max_vcpu, 64);
        assert_eq!(prod.emr.max_memory_gb, DEFAULT_MAX_MEMORY_GB);
        assert_eq!(prod.log_retention, Retention::Days14);
        let alice = load(yaml, "alice").unwrap();
        assert!(!alice.protected);
        assert_eq!(alice.region, "eu-west-1");
    }

    #[test]
    fn the_access_logs_bucket_is_a_bucket_name() {
        let yaml =
            "stages:\n  prod:\n    protected: true\n    access_logs_bucket: acme-logs.eu-west-1\n";
        assert_eq!(
            load(yaml, "prod").unwrap().access_logs_bucket.as_deref(),
            Some("acme-logs.eu-west-1")
        );
        let e = load(
            "stages:\n  prod:\n    access_logs_bucket: Acme_Logs\n",
            "prod",
        )
        .unwrap_err();
        assert_eq!(e.key, "stages.prod.access_logs_bucket");
        assert!(
            e.to_string()
                .contains("`Acme_Logs` is not an S3 bucket name"),
            "{e}"
        );
    }

    #[test]
    fn hardened_follows_protected_and_keeps_logs_a_year() {
        let prod = load("stages:\n  prod:\n    protected: true\n", "prod").unwrap();
        assert!(prod.hardened);
        assert_eq!(
            prod.log_retention,
            Retention::Days365,
            "the default, raised"
        );
        let alice = load("stages:\n  alice:\n    hardened: true\n", "alice").unwrap();
        assert!(alice.hardened && !alice.protected);
        let soft = load(
            "defaults:\n  hardened: false\nstages:\n  prod:\n    protected: true\n",
            "prod",
        )
        .unwrap();
        assert!(!soft.hardened && soft.log_retention == Retention::Days30);
        let e = load(
            "stages:\n  prod:\n    protected: true\n    log_retention_days: 90\n",
            "prod",
        )
        .unwrap_err();
        assert_eq!(e.key, "stages.prod.log_retention_days");
        assert!(
            e.message
                .starts_with("90 days is too short for a hardened stage"),
            "{e}"
        );
    }

    #[test]
    fn the_table_format_is_parquet_or_ndjson() {
        let c = load("stages:\n  alice:\n    table_format: ndjson\n", "alice").unwrap();
        assert_eq!(c.table_format, DataFormat::Ndjson);
        let e = load("defaults:\n  table_format: csv\n", "alice").unwrap_err();
        assert_eq!(e.key, "defaults.table_format");
        assert_eq!(
            e.message,
            "`csv` is not a table format; use `parquet` or `ndjson`"
        );
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = load(
            "stages:\n  prod:\n    lambda:\n      memory_mb: 64\n",
            "prod",
        )
        .unwrap_err();
        assert_eq!(e.key, "stages.prod.lambda.memory_mb");
        assert!(e.to_string().ends_with("pipeline.yaml: `stages.prod.lambda.memory_mb`: 64 is out of range: 128 to 10240 MB of Lambda memory"), "{e}");

        let e = load(
            "stages:\n  prod:\n    lambda:\n      memory_mb: lots\n",
            "prod",
        )
        .unwrap_err();
        assert_eq!(e.key, "stages.prod.lambda.memory_mb");
        assert_eq!(e.location, Some((4, 18)));
        assert!(e.message.contains("invalid type: string \"lots\""), "{e}");

        // The key path once, the near key suggested, no Rust type name (issue 27).
        let e = load("stages:\n  prod:\n    lamda: {}\n", "prod").unwrap_err();
        assert_eq!(e.key, "stages.prod.lamda");
        assert!(
            e.message.starts_with("unknown key; did you mean `lambda`?"),
            "{e}"
        );
        assert_eq!(e.to_string().matches("lamda").count(), 1, "{e}");
        let e = load("stages:\n  prod:\n    zzz: 1\n", "prod").unwrap_err();
        assert!(
            !e.message.contains("did you mean") && e.message.contains("region"),
            "{e}"
        );
        let e = load("stages: [alice]\n", "prod").unwrap_err();
        assert!(
            !e.message.contains("struct") && !e.message.contains("Config"),
            "{e}"
        );
        let e = load("stages:\n  prod: 3\n", "prod").unwrap_err();
        assert!(
            e.message.contains("expected a mapping of keys") && !e.message.contains("struct"),
            "{e}"
        );

        let e = load("stages:\n  Prod: {}\n", "prod").unwrap_err();
        assert_eq!(e.key, "stages.Prod");
        assert!(e.message.contains("uppercase letter"), "{e}");

        let e = load("defaults:\n  log_retention_days: 10\n", "alice").unwrap_err();
        assert_eq!(e.key, "defaults.log_retention_days");
        assert!(e.message.contains("use one of 1, 3, 5, 7, 14"), "{e}");

        let e = load("defaults:\n  region: moon-base\n", "alice").unwrap_err();
        assert!(e.message.contains("is not an AWS region name"), "{e}");

        let e = load(
            "stages:\n  alice: {emr: {release_label: emr-6.15.0}}\n",
            "alice",
        )
        .unwrap_err();
        assert_eq!(e.key, "stages.alice.emr.release_label");
        assert!(e.message.contains("Spark 3.5"), "{e}");

        let e = load("stages: [1, 2]\n", "alice").unwrap_err();
        assert_eq!(e.key, "stages");
    }

    #[test]
    fn unreadable_file_is_named() {
        let e = StageConfig::load(
            StageName::parse("alice").unwrap(),
            Some(Path::new("/nonexistent/pipeline.yaml")),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/pipeline.yaml: cannot read the file"),
            "{e}"
        );
    }

    #[test]
    fn base_a_runs_in_the_function_unless_set() {
        let prod = load("stages:\n  prod: {protected: true}\n", "prod").unwrap();
        assert_eq!(prod.base_a_engine, BaseAEngine::Function);
        let set = load(
            "defaults: {base_a_engine: auto}\nstages:\n  prod: {base_a_engine: sharded}\n",
            "prod",
        )
        .unwrap();
        assert_eq!(set.base_a_engine, BaseAEngine::Sharded);
        let alice = load("defaults: {base_a_engine: auto}\n", "alice").unwrap();
        assert_eq!(alice.base_a_engine, BaseAEngine::Auto);
        let e = load("stages:\n  alice: {base_a_engine: spark}\n", "alice").unwrap_err();
        assert_eq!(e.key, "stages.alice.base_a_engine");
        assert!(e.message.contains("use `function`"), "{e}");
    }

    #[test]
    fn base_b_runs_in_a_function_unless_protected_or_set() {
        let alice = load("stages:\n  prod: {protected: true}\n", "alice").unwrap();
        assert_eq!(alice.base_b_engine, BaseBEngine::Function);
        let prod = load("stages:\n  prod: {protected: true}\n", "prod").unwrap();
        assert_eq!(prod.base_b_engine, BaseBEngine::Emr);
        let set = load(
            "defaults: {base_b_engine: emr}\nstages:\n  prod: {protected: true, base_b_engine: function}\n",
            "prod",
        )
        .unwrap();
        assert_eq!(set.base_b_engine, BaseBEngine::Function);
        assert_eq!(
            load("defaults: {base_b_engine: emr}\n", "alice")
                .unwrap()
                .base_b_engine,
            BaseBEngine::Emr
        );
        let e = load("stages:\n  alice: {base_b_engine: lambda}\n", "alice").unwrap_err();
        assert_eq!(e.key, "stages.alice.base_b_engine");
        assert!(e.message.contains("use `function`"), "{e}");
    }

    #[test]
    fn the_clusters_keys_are_refused_naming_what_replaces_them() {
        for (key, value, names) in [
            ("master_instance_type", "m5.xlarge", "emr.max_vcpu"),
            ("core_instance_type", "m5.xlarge", "emr.max_memory_gb"),
            ("core_instance_count", "2", "emr.max_vcpu"),
            ("idle_timeout_minutes", "10", "emr.idle_stop_minutes"),
            ("subnet_id", "subnet-0123456789abcdef0", "emr.subnet_ids"),
        ] {
            let e = load(
                &format!("stages:\n  prod:\n    emr: {{{key}: {value}}}\n"),
                "prod",
            )
            .unwrap_err();
            assert_eq!(e.key, format!("stages.prod.emr.{key}"));
            assert!(e.message.contains("EMR Serverless"), "{e}");
            assert!(e.message.contains(names), "{key}: {e}");
        }
    }

    #[test]
    fn the_applications_capacity_idle_stop_and_network() {
        let c = load(
            "stages:\n  prod:\n    emr: {max_vcpu: 64, max_memory_gb: 256, idle_stop_minutes: 30, subnet_ids: [subnet-0123456789abcdef0, subnet-01234567], security_group_ids: [sg-0123456789abcdef0]}\n",
            "prod",
        )
        .unwrap();
        assert_eq!(
            (c.emr.max_vcpu, c.emr.max_memory_gb, c.emr.idle_stop_minutes),
            (64, 256, 30)
        );
        let n = c.emr.network.unwrap();
        assert_eq!(
            n.subnet_ids,
            ["subnet-0123456789abcdef0", "subnet-01234567"]
        );
        assert_eq!(n.security_group_ids, ["sg-0123456789abcdef0"]);
        let d = load("stages:\n  prod: {}\n", "prod").unwrap();
        assert_eq!(d.emr.network, None);
        assert_eq!(d.emr.idle_stop_minutes, DEFAULT_IDLE_STOP_MINUTES);

        for (yaml, key, says) in [
            ("emr: {max_vcpu: 4}", "emr.max_vcpu", "4 is out of range: 8 to 16000"),
            ("emr: {max_memory_gb: 16}", "emr.max_memory_gb", "16 is out of range: 32"),
            ("emr: {idle_stop_minutes: 0}", "emr.idle_stop_minutes", "0 is out of range"),
            ("emr: {subnet_ids: [subnet-0123456789abcdef0]}", "emr.subnet_ids", "set `emr.security_group_ids`"),
            ("emr: {security_group_ids: [sg-0123456789abcdef0]}", "emr.security_group_ids", "set `emr.subnet_ids`"),
            ("emr: {subnet_ids: [sub-123], security_group_ids: [sg-0123456789abcdef0]}", "emr.subnet_ids", "`sub-123` is not a subnet id"),
            ("emr: {subnet_ids: [], security_group_ids: [sg-0123456789abcdef0]}", "emr.subnet_ids", "give 1 to 16 ids, not 0"),
            ("emr: {subnet_ids: [subnet-01234567], security_group_ids: [sg-01234567, sg-01234567]}", "emr.security_group_ids", "listed twice"),
        ] {
            let e = load(&format!("stages:\n  prod:\n    {yaml}\n"), "prod").unwrap_err();
            assert_eq!(e.key, format!("stages.prod.{key}"), "{yaml}");
            assert!(e.message.contains(says), "{yaml}: {e}");
        }
    }
}
