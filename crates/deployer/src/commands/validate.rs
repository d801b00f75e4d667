//! `deployer validate`: checks the whole configuration file, every stage it names and its
//! defaults, and says which file that was. Every other verb makes the same check before it
//! reads its own stage ([`crate::config_file`]).

use anyhow::Context;
use stack_model::StageConfig;

use crate::cli::Global;
use crate::config_file::{self, Source};

pub fn run(global: &Global) -> anyhow::Result<()> {
    match config_file::current(global.config.as_deref())? {
        Source::Defaults { .. } => {
            println!("no configuration file: every stage gets the built-in defaults");
        }
        Source::File(path) => {
            let names = StageConfig::validate_file(path).context("invalid configuration")?;
            let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            println!(
                "{}: valid; stages: {} (any other stage gets its defaults)",
                path.display(),
                if names.is_empty() {
                    "none named".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
    }
    Ok(())
}
