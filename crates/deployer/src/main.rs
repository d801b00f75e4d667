//! `deployer`: the pipeline's command-line tool.

mod artifacts;
mod cli;
mod invoke;
mod package;
mod synth;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Synth(args) => synth::run(&cli.global, &args),
        cli::Command::Invoke(args) => invoke::run(&cli.global, &args),
        cli::Command::Package(args) => package::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
