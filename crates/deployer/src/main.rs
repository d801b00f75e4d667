//! `deployer`: the pipeline's command-line tool.
//!
//! Exit codes: 0 success (including "nothing to change"); 1 error (bad input, configuration,
//! an AWS call refused); 2 `diff` found changes, `drift` found drift; 3 the stack operation
//! failed and rolled back (its root cause is printed); 4 the stack is in a state that needs a
//! person (the next step is printed); 5 refused (data at risk without `--allow-replace`, a
//! protected stage); 64 a usage error (an unknown flag, a missing argument).

mod adopt;
mod approval;
mod artifacts;
mod aws;
mod cli;
mod cloudformation;
mod commands;
mod config_file;
mod deployment;
mod diff;
mod emr_application;
mod emr_security_groups;
mod errors;
mod hotswap;
mod hotswap_record;
mod log_tail;
mod output;
mod preflight;
mod progress;
mod run_records;
mod schemas;
mod stage_apply;
mod stage_stack;

use commands::{
    bootstrap, completion, config, deploy, diff as diff_cmd, drift, gc, info, invoke, logs, ls,
    package, policy, query, runs, synth, teardown, trigger, validate, watch,
};

use clap::Parser;
use std::process::ExitCode;

/// A command line clap could not parse (EX_USAGE).
const EXIT_USAGE: u8 = 64;

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Fixes glibc malloc's trim and mmap thresholds, which it otherwise moves as it runs.
///
/// The Parquet writer allocates each compressed page (about 1 MB) anew. With the moving
/// thresholds, glibc gave those pages back to the kernel and faulted them in again: 190k page
/// faults and about 0.6 s of system time in a base-a run at 1M students, against 18k faults
/// with these settings (docs/BENCHMARKS.md). Blocks from 4 MB up are still mapped on their
/// own, and up to 64 MB of free heap is kept: a higher trim threshold raised base b's peak RSS
/// to near 500 MB. `mallopt` is glibc's documented interface for this (mallopt(3)); the Lambda
/// build (musl) uses mimalloc instead and is not concerned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}

/// A stack verb's outcome: an AWS failure goes on to be explained as every verb's is; a stack
/// operation that failed, a stuck stack or a refusal is printed here with its own exit code.
fn stack_verb(
    result: Result<(), cloudformation::apply::ApplyError>,
) -> Result<anyhow::Result<()>, ExitCode> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(cloudformation::apply::ApplyError::Aws(e)) => Ok(Err(e)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(e.exit_code()))
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to standard output and exit 0; a usage error exits 64
            // (EX_USAGE, sysexits(3)), never 2: 2 means "changes" (diff) or "drift" (drift),
            // which a CI job must not read into a mistyped flag.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    if let Some(profile) = &cli.global.profile {
        aws::use_profile(profile);
    }
    let result = match cli.command {
        cli::Command::Synth(args) => synth::run(&cli.global, &args),
        cli::Command::Validate(args) => validate::run(&cli.global, &args),
        cli::Command::Policy(args) => policy::run(&cli.global, &args),
        cli::Command::Invoke(args) => invoke::run(&cli.global, &args),
        cli::Command::Package(args) => package::run(&args),
        cli::Command::Config(args) => config::run(&cli.global, &args),
        cli::Command::Completion(args) => completion::run(&args),
        cli::Command::Ls(args) => runtime().block_on(ls::run(&cli.global, &args)),
        cli::Command::Teardown(args) => runtime().block_on(teardown::run(&cli.global, &args)),
        cli::Command::Diff(args) => match runtime().block_on(diff_cmd::run(&cli.global, &args)) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        cli::Command::Trigger(args) => runtime().block_on(trigger::run(&cli.global, &args)),
        cli::Command::Info(args) => runtime().block_on(info::run(&cli.global, &args)),
        cli::Command::Runs(args) => runtime().block_on(runs::run(&cli.global, &args)),
        cli::Command::Logs(args) => runtime().block_on(logs::run(&cli.global, &args)),
        cli::Command::Query(args) => runtime().block_on(query::run(&cli.global, &args)),
        cli::Command::Gc(args) => runtime().block_on(gc::run(&cli.global, &args)),
        cli::Command::Watch(args) => runtime().block_on(watch::run(&cli.global, &args)),
        cli::Command::Drift(args) => match runtime().block_on(drift::run(&cli.global, &args)) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        cli::Command::Bootstrap(args) => {
            match stack_verb(runtime().block_on(bootstrap::run(&cli.global, &args))) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
        cli::Command::Preflight(args) => {
            match stack_verb(runtime().block_on(commands::preflight::run(&cli.global, &args))) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
        cli::Command::Deploy(args) => {
            match stack_verb(runtime().block_on(deploy::run(&cli.global, &args))) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
    };
    if let Some(n) = aws::requests_sent() {
        eprintln!("deployer: {n} AWS requests");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errors::print(&e, cli.global.verbose);
            ExitCode::FAILURE
        }
    }
}
