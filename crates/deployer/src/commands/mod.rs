//! One module per verb of the CLI; `main.rs` dispatches to each module's `run`.

pub mod bootstrap;
pub mod completion;
pub mod config;
pub mod deploy;
pub mod diff;
pub mod drift;
pub mod gc;
pub mod info;
pub mod invoke;
pub mod logs;
pub mod ls;
pub mod package;
pub mod policy;
pub mod preflight;
pub mod query;
pub mod runs;
pub mod synth;
pub mod teardown;
pub mod trigger;
pub mod validate;
pub mod watch;
