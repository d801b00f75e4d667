//! `deployer synth`: render a stage's template (or, with `--bootstrap-stack`, its bootstrap
//! stack's).

use crate::cli::{FormatArg, Global, SynthArgs};
use anyhow::Context;
use stack_model::{pipeline, Format};
use std::io::Write;

pub fn run(global: &Global, args: &SynthArgs) -> anyhow::Result<()> {
    let config = global.stage_config(&args.stage)?;
    let format = match args.format {
        FormatArg::Yaml => Format::Yaml,
        FormatArg::Json => Format::Json,
    };
    let template = if args.bootstrap_stack {
        stack_model::bootstrap::template(&config)
    } else {
        // What the stage's permissions rest on for the types it adds (see `pipeline::
        // extension_notes`): said on standard error, so the template on standard output stays
        // the template.
        for note in pipeline::extension_notes(&config) {
            eprintln!("note: {note}");
        }
        pipeline::template(&config)
    };
    let text = template
        .render(format)
        .context("the pipeline's template is inconsistent (a bug in stack-model)")?;
    match &args.out {
        Some(path) => crate::output::write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write the template to {}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write to standard output"),
    }
}
