//! Command-line arguments: clap definitions only; each verb lives in its own module.

use clap::{Args, Parser, Subcommand, ValueEnum};
use stack_model::{StageConfig, StageName};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    about = "Defines, deploys and runs the per-stage data pipeline"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Per-stage settings file (YAML). Default: the first pipeline.yaml from the current folder
    /// up to the workspace root, else the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// On an error, also print the AWS SDK's full detail.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// The AWS profile to use (default: `AWS_PROFILE`, else the default chain).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The stage's region, where the configuration names none (a region is part of the
    /// stage's names: one that differs from the configured region is refused).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a stage's CloudFormation template without deploying.
    #[command(
        after_help = "Examples:\n  deployer synth --stage alice\n  deployer synth --stage prod --format json --out prod.json\n  deployer synth --stage alice --bootstrap-stack"
    )]
    Synth(SynthArgs),
    /// Print the IAM policy an identity needs to deploy and run one stage (for CI users).
    #[command(
        after_help = "Examples:\n  deployer policy --stage alice --account 123456789012 > policies.json\n  deployer policy --stage alice --role cloudformation"
    )]
    Policy(PolicyArgs),
    /// Run a function's real handler code in this process.
    #[command(
        after_help = "Examples:\n  deployer invoke etl --source samples --warehouse /tmp/wh\n  deployer invoke site-events --source samples --warehouse /tmp/wh\n  deployer invoke etl --stage alice"
    )]
    Invoke(InvokeArgs),
    /// Build the artifacts a stage runs (the Lambda zip, the Spark job) into a folder.
    #[command(after_help = "Examples:\n  deployer package --out dist")]
    Package(PackageArgs),
    /// Create or update a stage's bootstrap stack: the artifacts bucket and the role
    /// CloudFormation deploys the stage as (run once, as an identity that may create IAM roles).
    #[command(after_help = "Examples:\n  deployer bootstrap --stage alice")]
    Bootstrap(BootstrapArgs),
    /// Create or update a stage: artifacts, preflight, then the stage's stack (as its role).
    #[command(
        after_help = "Examples:\n  deployer deploy --stage alice\n  deployer deploy --stage alice --hotswap\n  deployer deploy --stage alice --format json --outputs-file outputs.json\n\nExit codes: 0 deployed or nothing to change; 1 error; 3 the stack operation failed and rolled\nback; 4 the stack needs a person (the next step is printed); 5 refused (data at risk without\n--allow-replace, a lowered guard without --allow-lower-guard, a protected stage); 6 not\napproved (--require-approval: declined, or no terminal to ask on); 64 usage error."
    )]
    Deploy(DeployArgs),
    /// Ask IAM whether the stage's CloudFormation role and the caller may do what a deploy
    /// needs (exit 0: yes, 1: no, each missing permission named).
    #[command(after_help = "Examples:\n  deployer preflight --stage alice")]
    Preflight(StageArgs),
    /// Delete a stage: empty its buckets, delete its stacks.
    #[command(
        after_help = "Examples:\n  deployer teardown --stage alice\n  deployer teardown --stage alice --yes --format json"
    )]
    Teardown(TeardownArgs),
    /// Show what a deploy would change, replace and put at risk (exit 0: none, 2: changes).
    #[command(
        after_help = "Examples:\n  deployer diff --stage alice\n  deployer diff --stage alice --format markdown > diff.md\n  deployer diff --stage alice --changeset\n\nExit codes: 0 no changes; 2 changes; 1 error; 64 usage error."
    )]
    Diff(DiffArgs),
    /// Start the ETL or the Spark job of a deployed stage (publishes to its topic).
    #[command(
        after_help = "Examples:\n  deployer trigger etl --stage alice --wait\n  deployer trigger base-b --stage alice --wait --format json"
    )]
    Trigger(TriggerArgs),
    /// Show a stage's stacks, status and outputs.
    #[command(
        after_help = "Examples:\n  deployer info --stage alice\n  deployer info --stage alice --format json"
    )]
    Info(InfoArgs),
    /// List the stage's recent runs of base a and base b: state, times, counts, errors.
    #[command(
        after_help = "Examples:\n  deployer runs --stage alice\n  deployer runs --stage alice --base b --limit 3 --format json"
    )]
    Runs(RunsArgs),
    /// Print a function's recent log lines.
    #[command(
        after_help = "Examples:\n  deployer logs etl --stage alice --since-minutes 10\n  deployer logs spark --stage alice\n  deployer logs site-events --stage alice --format json"
    )]
    Logs(LogsArgs),
    /// Run SQL in the stage's Athena work group and database; print the rows.
    #[command(
        after_help = "Examples:\n  deployer query --stage alice \"SELECT city, events FROM events_by_city LIMIT 5\"\n  deployer query --stage alice \"SELECT count(*) AS n FROM students\" --format csv"
    )]
    Query(QueryArgs),
    /// Detect changes made to the stage's resources outside CloudFormation (exit 0: in sync,
    /// 2: drifted).
    #[command(
        after_help = "Examples:\n  deployer drift --stage alice\n\nExit codes: 0 in sync; 2 drifted; 1 error; 64 usage error."
    )]
    Drift(DriftArgs),
    /// List (and with --yes delete) the stage's artifacts no stack refers to.
    #[command(
        after_help = "Examples:\n  deployer gc --stage alice\n  deployer gc --stage alice --older-than-days 30 --yes"
    )]
    Gc(GcArgs),
    /// Check the whole configuration file (every stage it names, its defaults) and say which
    /// file it is; every verb checks it so before reading its stage.
    #[command(
        after_help = "Examples:\n  deployer validate\n  deployer --config ci/pipeline.yaml validate --format json"
    )]
    Validate(ValidateArgs),
    /// Write a starting `pipeline.yaml` and its JSON Schema, or print the schema.
    #[command(
        after_help = "Examples:\n  deployer config init\n  deployer config init --dir ci\n  deployer config schema > pipeline.schema.json"
    )]
    Config(ConfigArgs),
    /// List the stages deployed in the account and region (from their stacks' tags).
    #[command(
        after_help = "Examples:\n  deployer ls\n  deployer ls --region eu-west-1 --format json"
    )]
    Ls(LsArgs),
    /// Print the shell completion script for bash, zsh, fish or PowerShell.
    #[command(
        after_help = "Examples:\n  deployer completion bash > ~/.local/share/bash-completion/completions/deployer\n  deployer completion zsh > ~/.zfunc/_deployer\n  deployer completion fish > ~/.config/fish/completions/deployer.fish"
    )]
    Completion(CompletionArgs),
    /// Rebuild and hotswap on every change under crates/etl, and print the functions' logs.
    #[command(after_help = "Examples:\n  deployer watch --stage alice")]
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented `pipeline.yaml` and `pipeline.schema.json` beside it.
    Init {
        /// The folder to write them in (the workspace root is where every verb finds it).
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Replace an existing `pipeline.yaml` (and its schema).
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of `pipeline.yaml` (derived from the configuration's types).
    Schema,
}

/// `ls` lists the region `--region` names (default: the region of the AWS profile or
/// `AWS_REGION`, else us-east-1).
#[derive(Debug, Args)]
pub struct LsArgs {
    /// One line per stage, or one JSON document (each stage's stacks, status, last change).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// Watch this `bootstrap` (built elsewhere) instead of building one on every change.
    #[arg(long, value_name = "FILE")]
    pub lambda_bootstrap: Option<PathBuf>,
    /// When a full deploy (a template change) asks before applying: as `deploy`'s.
    #[arg(long, value_enum, default_value_t = RequireApproval::Broadening)]
    pub require_approval: RequireApproval,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// Keep what is younger than this, referenced or not (a deploy in progress may use it).
    #[arg(long, default_value_t = 7)]
    pub older_than_days: u32,
    /// Delete what is listed.
    #[arg(long)]
    pub yes: bool,
    /// Lines (text), or one JSON document: the bucket, the counts kept, each unreferenced
    /// artifact, whether they were deleted.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// The SQL (Athena's dialect), such as "SELECT city, events FROM events_by_city".
    pub sql: String,
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// Lines (text), or one JSON document: the stage, its region, each stack's status, last
    /// change and outputs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// The bootstrap stack's outputs as `Key: Value` lines, or one JSON document (the stage,
    /// the stack, what was done, the outputs).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A line, or one JSON document: the file (`null`: none, the built-in defaults) and the
    /// stages it names.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct StageArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// What to start: `etl` (base a), or `base-b` (the site-events function or the Spark
    /// job, by the stage's `base_b_engine`).
    #[arg(value_enum)]
    pub what: TriggerWhat,
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// The message to publish (JSON); it is logged by the function.
    #[arg(long, default_value = "{\"requested_by\": \"deployer trigger\"}")]
    pub message: String,
    /// Wait for the run the message starts and print its report (exit 0) or its error
    /// (exit 1), following Lambda's retries of a transient failure.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many minutes (default: 15 for etl, 180 for spark, a
    /// job run's timeout and its wait for capacity).
    #[arg(long, value_name = "MINUTES", requires = "wait")]
    pub timeout_minutes: Option<u64>,
    /// Text: the published message's line, or with --wait the run's report (JSON). Json: one
    /// document: the stage, the message id, the topic, what it starts, and with --wait the
    /// run's report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// Only this base's runs (`a`: the ETL; `b`: the site events).
    #[arg(long, value_enum)]
    pub base: Option<BaseArg>,
    /// At most this many runs of each base, newest first.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: RunsFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BaseArg {
    A,
    B,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunsFormat {
    Table,
    Json,
}

/// What `trigger` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TriggerWhat {
    /// Base a: the ETL function.
    #[value(alias = "base-a")]
    Etl,
    /// Base b, by the stage's `base_b_engine`: the site-events function, or a Spark job run on
    /// EMR Serverless (`spark` is still accepted).
    #[value(name = "base-b", alias = "spark")]
    BaseB,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Whose log lines: one of the stage's functions, or `spark` (the latest job run's driver
    /// output, on a stage whose base b runs on EMR Serverless).
    #[arg(value_enum)]
    pub function: LogSource,
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// How far back, in minutes.
    #[arg(long, default_value_t = 60)]
    pub since_minutes: u64,
    /// After the recent lines, keep printing new ones as they are written, until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// A function's lines as they were written, or JSON lines (one document per line: the
    /// group, the stream, the time in ms since the epoch, the message).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// Ship this `bootstrap` (built for x86_64-unknown-linux-musl) instead of building it.
    #[arg(long, value_name = "FILE")]
    pub lambda_bootstrap: Option<PathBuf>,
    /// Allow this stateful resource (logical id) to be replaced or removed with its data.
    #[arg(long, value_name = "LOGICAL_ID")]
    pub allow_replace: Vec<String>,
    /// Allow a deploy that lowers the stage's guard: protected to not, hardened to not (its
    /// KMS key removed), or a shorter log retention.
    #[arg(long)]
    pub allow_lower_guard: bool,
    /// When only the artifacts changed, update the functions in place (no change set); a
    /// full deploy otherwise. Refused on protected stages.
    #[arg(long)]
    pub hotswap: bool,
    /// Ship this Spark job instead of the one built into the CLI.
    #[arg(long, value_name = "FILE")]
    pub spark_job: Option<PathBuf>,
    /// When the change set changes or removes the stage's EMR Serverless application, cancel
    /// its job runs instead of waiting for them to end (it must be stopped to be changed).
    #[arg(long)]
    pub cancel_runs: bool,
    /// What to print: the stack's outputs as `Key: Value` lines, or one JSON document (the
    /// stage, the stack, what the deploy did, the outputs; with its `format_version`).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Also write the JSON document to FILE (replaced whole, never half-written).
    #[arg(long, value_name = "FILE")]
    pub outputs_file: Option<PathBuf>,
    /// When to show the change and ask before applying it: when it broadens IAM access (new
    /// or wider statements, new trust principals; a first deploy does), on any change, or
    /// never. Without a terminal, a change that needs approval is refused (exit 6).
    #[arg(long, value_enum, default_value_t = RequireApproval::Broadening)]
    pub require_approval: RequireApproval,
}

/// When `deploy` asks before applying a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RequireApproval {
    /// Never ask (CI jobs that review the diff elsewhere).
    Never,
    /// Ask when IAM access broadens (the default, as CDK's).
    Broadening,
    /// Ask on any change.
    AnyChange,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Compare with this `bootstrap` instead of building one.
    #[arg(long, value_name = "FILE")]
    pub lambda_bootstrap: Option<PathBuf>,
    /// Also create a CloudFormation change set, show CloudFormation's view, and delete it.
    #[arg(long)]
    pub changeset: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct TeardownArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Tear down a protected stage (its retained resources stay).
    #[arg(long)]
    pub force: bool,
    /// Cancel the job runs of the stage's EMR Serverless application instead of waiting for
    /// them to end (an application that is started cannot be deleted).
    #[arg(long)]
    pub cancel_runs: bool,
    /// Also print one JSON document when done: the stacks deleted, the buckets emptied (object
    /// versions deleted in each), what was left behind. Progress goes to standard error.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Where to write `lambda.zip` and the Spark job.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Ship this Lambda `bootstrap` (built for x86_64-unknown-linux-musl) instead of building
    /// it: the flag `deploy`, `diff` and `watch` take (`--bootstrap` is still accepted).
    #[arg(long = "lambda-bootstrap", alias = "bootstrap", value_name = "FILE")]
    pub lambda_bootstrap: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The function: etl, site-events, emr-starter or table-refresher.
    #[arg(value_enum)]
    pub function: FunctionArg,
    /// Accepted for compatibility: `invoke` always runs here (start a deployed function with
    /// `deployer trigger`).
    #[arg(long, hide = true)]
    pub local: bool,
    /// The stage (its settings, such as the table format).
    #[arg(long)]
    pub stage: Option<String>,
    /// A folder laid out as the source bucket (`a/<entity>.json`; `b/part-*.json` for
    /// site-events).
    #[arg(long, value_name = "DIR", requires = "warehouse")]
    pub source: Option<PathBuf>,
    /// A folder laid out as the warehouse bucket: the ETL publishes its tables under
    /// `a/<table>/`; the table refresher reads the markers there and says what it would do.
    #[arg(long, value_name = "DIR")]
    pub warehouse: Option<PathBuf>,
    /// Table format (default: the stage's, else parquet). For site-events: the format of
    /// the warehouse's students table.
    #[arg(long, value_enum)]
    pub table_format: Option<TableFormatArg>,
    /// etl: cut each export into N spans read side by side, each written as its own part of
    /// its table (fewer where an export has fewer records, or is not one record per line);
    /// 1 reads each whole. Default: spans sized to this machine's cores. The tables and any
    /// refusal are the same whatever N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub shards: Option<u32>,
    /// etl: `function` (default) reads the spans on this process's threads; `sharded` runs
    /// the sharded protocol a state machine runs past one function (a plan, one worker per
    /// span writing its part and report, a publisher reading the reports), on threads here.
    #[arg(long, value_enum, default_value_t = EtlEngineArg::Function)]
    pub engine: EtlEngineArg,
    /// site-events: names the run's folders and markers (default: a new one).
    #[arg(long)]
    pub run_id: Option<String>,
    /// site-events: fail, writing nothing, above this share of malformed lines.
    #[arg(long, default_value_t = 0.01)]
    pub max_bad_ratio: f64,
    /// site-events: the URI readers reach the warehouse's `b/` by, written into the
    /// manifests (default: the folder's `file:` URI).
    #[arg(long, value_name = "URI")]
    pub manifest_base: Option<String>,
}

/// How `invoke etl` runs base a.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EtlEngineArg {
    /// One process reads every export, its spans side by side.
    Function,
    /// Plan, shards and publisher, as a sharded stage's state machine runs them.
    Sharded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FunctionArg {
    /// Base a: the ETL's code, on local folders or the stage's buckets.
    Etl,
    /// Base b: the site-events function engine's code, on local folders.
    SiteEvents,
    /// The StartJobRun request of base b's Spark job, sent to the stage's application.
    EmrStarter,
    /// The refresher's decision for each base (and, with --stage, its crawl).
    TableRefresher,
}

/// Whose logs `deployer logs` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogSource {
    /// The ETL function (base a).
    Etl,
    /// The site-events function (base b, `base_b_engine: function`).
    SiteEvents,
    /// The function that starts base b's Spark job runs (`base_b_engine: emr`).
    EmrStarter,
    /// The function that starts the crawler once a base is whole.
    TableRefresher,
    /// The latest Spark job run on the stage's EMR Serverless application: its state and its
    /// driver's output.
    Spark,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableFormatArg {
    Parquet,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The stage the policy is for.
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    /// The 12-digit AWS account the stage lives in (default `*`: any account).
    #[arg(long, default_value = "*")]
    pub account: String,
    /// Whose policy: the deploy identity's (`deployer`), or the stage's CloudFormation role's
    /// (`cloudformation`, which `deployer bootstrap` attaches to the role).
    #[arg(long, value_enum, default_value_t = PolicyRole::Deployer)]
    pub role: PolicyRole,
}

/// The identity a policy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyRole {
    /// The identity that runs `deploy`, `diff`, `teardown` and the other verbs.
    Deployer,
    /// The CloudFormation service role of the stage's stack.
    Cloudformation,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The stage: lowercase letters, digits and hyphens, such as `alice` or `prod` (its stacks,
    /// buckets and functions are named after it).
    #[arg(long)]
    pub stage: String,
    #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
    pub format: FormatArg,
    /// Write the template to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Render the stage's bootstrap stack (the artifacts bucket and the CloudFormation role)
    /// instead of its pipeline (`--bootstrap` is still accepted).
    #[arg(long = "bootstrap-stack", alias = "bootstrap")]
    pub bootstrap_stack: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Yaml,
    Json,
}

impl Global {
    /// The stage's settings: validated name, then the configuration's (the whole file
    /// checked; see [`crate::config_file`]).
    pub fn stage_config(&self, stage: &str) -> anyhow::Result<StageConfig> {
        let name = StageName::parse(stage)?;
        let source = crate::config_file::current(self.config.as_deref())?;
        let mut c = crate::config_file::stage_config(source, name)?;
        if let Some(region) = &self.region {
            if let crate::config_file::Source::File(path) = source {
                if let Some((key, set)) = StageConfig::region_set_by(&c.stage, path)? {
                    if &set != region {
                        anyhow::bail!(
                            "--region {region} conflicts with `{key}: {set}` in {}: a stage's region is part of its resources' names; drop --region, or change the file",
                            path.display()
                        );
                    }
                }
            }
            c.set_region(region)
                .map_err(|e| anyhow::anyhow!("--region: {e}"))?;
        }
        Ok(c)
    }
}
