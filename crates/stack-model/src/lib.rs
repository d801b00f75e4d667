//! The pipeline's infrastructure as typed values: stage names and settings, typed
//! CloudFormation resources, the pipeline's template, and its canonical rendering. No AWS SDK
//! and no I/O beyond reading the optional config file: everything here is unit-testable and
//! fast.
//!
//! The guide below is the crate's README; its examples run as doc tests.
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bootstrap;
pub mod cloudformation_role;
pub mod config;
pub mod constructs;
pub mod deploy_policy;
pub mod extension;
pub mod facts;
pub mod guard;
pub mod handler_calls;
pub mod managed_policies;
pub mod pipeline;
pub mod resource;
pub mod stage;
pub mod template;
pub mod value;
pub mod warehouse;
pub mod yaml;

pub use config::{ConfigError, StageConfig};
pub use stage::{StageName, StageNameError};
pub use template::{Format, Template, TemplateError};
