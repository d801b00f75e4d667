//! Command-line arguments: clap definitions only; each verb lives in its own module.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use stack_model::{StageConfig, StageName};
use std::path::PathBuf;

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG: &str = "pipeline.yaml";

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
    /// Per-stage settings file (YAML). Default: ./pipeline.yaml when it exists, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a stage's CloudFormation template without deploying.
    Synth(SynthArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The stage: lowercase letters, digits and hyphens (such as `alice` or `prod`).
    #[arg(long)]
    pub stage: String,
    #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
    pub format: FormatArg,
    /// Write the template to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Yaml,
    Json,
}

impl Global {
    /// The stage's settings: validated name, then the config file's overrides.
    pub fn stage_config(&self, stage: &str) -> anyhow::Result<StageConfig> {
        let name = StageName::parse(stage)?;
        let file = match &self.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        };
        StageConfig::load(name, file.as_deref()).context("invalid configuration")
    }
}
