//! `deployer completion bash|zsh|fish|powershell`: the shell's completion script, generated
//! from the CLI's own definition by clap_complete (so it names every verb, flag and value).
//!
//! bash: `deployer completion bash > ~/.local/share/bash-completion/completions/deployer`;
//! zsh: into a folder of `$fpath` as `_deployer`; fish: `~/.config/fish/completions/deployer.fish`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};

pub fn run(args: &CompletionArgs) -> anyhow::Result<()> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "deployer",
        &mut std::io::stdout().lock(),
    );
    Ok(())
}
