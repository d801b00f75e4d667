//! `deployer validate`: checks the whole configuration file, every stage it names and its
//! defaults, and says which file that was. Every other verb makes the same check before it
//! reads its own stage ([`crate::config_file`]).

use crate::cli::{Global, ReportFormat, ValidateArgs};
use crate::config_file::{self, Source};

pub fn run(global: &Global, args: &ValidateArgs) -> anyhow::Result<()> {
    let (file, names) = match config_file::current(global.config.as_deref())? {
        Source::Defaults { .. } => (None, Vec::new()),
        Source::File(path) => {
            let names = config_file::check_file(path)?;
            (
                Some(path),
                names.iter().map(|n| n.as_str().to_owned()).collect(),
            )
        }
    };
    match (args.format, file) {
        (ReportFormat::Json, _) => crate::output::print_json(&serde_json::json!({
            "file": file.map(|p| p.display().to_string()),
            "valid": true,
            "stages": names,
        }))?,
        (ReportFormat::Text, None) => {
            println!("no configuration file: every stage gets the built-in defaults")
        }
        (ReportFormat::Text, Some(path)) => println!(
            "{}: valid; stages: {} (any other stage gets its defaults)",
            path.display(),
            if names.is_empty() {
                "none named".to_string()
            } else {
                names.join(", ")
            }
        ),
    }
    Ok(())
}
