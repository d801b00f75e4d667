//! `deployer deploy --stage S`: [`crate::deployment`] does the work; this verb prints what it
//! did and the stack's outputs (`Key: Value` lines, or one JSON document with `--format json`)
//! and writes that document to `--outputs-file` as well.

use crate::cli::{DeployArgs, Global, ReportFormat};
use crate::cloudformation::apply::ApplyError;
use crate::deployment::deploy;
use crate::output;

pub async fn run(global: &Global, args: &DeployArgs) -> Result<(), ApplyError> {
    let done = deploy(global, args).await?;
    let document = output::json(&done)?;
    if let Some(path) = &args.outputs_file {
        output::write_atomically(path, format!("{document}\n").as_bytes()).map_err(|e| {
            ApplyError::Aws(anyhow::anyhow!(
                "stage {} deployed, but its outputs could not be written to {}: {e}",
                done.stage,
                path.display()
            ))
        })?;
    }
    match args.format {
        ReportFormat::Json => println!("{document}"),
        ReportFormat::Text => {
            for (k, v) in &done.outputs {
                println!("{k}: {v}");
            }
        }
    }
    Ok(())
}
