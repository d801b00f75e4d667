//! `deployer config init`: a commented `pipeline.yaml` (from `templates/pipeline.yaml`) and
//! its JSON Schema beside it, named on the file's `yaml-language-server` line so an editor
//! completes and checks it; `deployer config schema`: that schema
//! ([`stack_model::config::json_schema`], derived from the configuration's types).

use anyhow::{bail, Context};

use crate::cli::{ConfigArgs, ConfigCommand, Global};
use crate::output::write_atomically;

/// The file `config init` writes (the text the tool renders lives in `templates/`).
pub const INIT_TEMPLATE: &str = include_str!("../../../../templates/pipeline.yaml");

/// The schema's file name, beside `pipeline.yaml`, as the template's first line names it.
pub const SCHEMA_FILE: &str = "pipeline.schema.json";

pub fn run(_global: &Global, args: &ConfigArgs) -> anyhow::Result<()> {
    let schema = serde_json::to_string_pretty(&stack_model::config::json_schema())? + "\n";
    match &args.command {
        ConfigCommand::Schema => {
            print!("{schema}");
            Ok(())
        }
        ConfigCommand::Init { dir, force } => {
            let config = dir.join("pipeline.yaml");
            if config.exists() && !force {
                bail!(
                    "{} exists: nothing written (add --force to replace it and its schema)",
                    config.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            // The schema first: the file names it.
            let schema_path = dir.join(SCHEMA_FILE);
            write_atomically(&schema_path, schema.as_bytes())
                .with_context(|| format!("writing {}", schema_path.display()))?;
            write_atomically(&config, INIT_TEMPLATE.as_bytes())
                .with_context(|| format!("writing {}", config.display()))?;
            eprintln!(
                "wrote {} and {} (check it with `deployer validate`)",
                config.display(),
                schema_path.display()
            );
            Ok(())
        }
    }
}
