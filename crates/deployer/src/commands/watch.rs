//! `deployer watch --stage S [--lambda-bootstrap FILE]`: the inner loop. Deploys the stage
//! with `--hotswap` once, then on every change rebuilds the Lambda bootstrap (a change under
//! `crates/etl` or `crates/stack-model`), picks up the Spark job from the working tree, and
//! deploys again with `--hotswap` (code-only changes go straight into the functions; a
//! template change gets a full deploy, as `deploy --hotswap` says). Meanwhile it prints the
//! functions' new log lines. Ctrl-C stops it.
//!
//! With `--lambda-bootstrap FILE` it builds nothing: it watches that file (built by the user
//! in another terminal) and the Spark job.
//!
//! A build or deploy that fails is printed and the watch goes on: the next save tries again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_mini::notify::RecursiveMode;

use crate::artifacts::{build_bootstrap, workspace_root};
use crate::aws::Aws;
use crate::cli::{DeployArgs, Global, WatchArgs};
use crate::log_tail::{Followed, Tail};
use stack_model::stage::FunctionRole;

/// What a change event means.
#[derive(Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A source of the Lambda bootstrap or the Spark job changed: build (if building) and
    /// deploy.
    Rebuild,
    /// Nothing watched (build output, editor temporary files).
    Ignore,
}

/// Whether a changed path calls for a rebuild: Rust sources and manifests of the crates the
/// bootstrap is built from, the Spark job, or the given bootstrap; not build output or an
/// editor's temporary files.
pub fn classify(path: &Path, bootstrap: Option<&Path>, spark_job: &Path) -> Trigger {
    if path == spark_job || Some(path) == bootstrap {
        return Trigger::Rebuild;
    }
    if bootstrap.is_some() {
        return Trigger::Ignore;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_target = path.components().any(|c| c.as_os_str() == "target");
    let source = name.ends_with(".rs") || name == "Cargo.toml";
    if source && !in_target && !name.starts_with('.') {
        Trigger::Rebuild
    } else {
        Trigger::Ignore
    }
}

pub async fn run(global: &Global, args: &WatchArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let root = workspace_root()?;
    let spark_job = root.join("crates/etl/spark").join(etl::SPARK_JOB_FILE);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
    let mut debouncer = notify_debouncer_mini::new_debouncer(
        Duration::from_millis(300),
        move |events: notify_debouncer_mini::DebounceEventResult| {
            if let Ok(events) = events {
                let _ = tx.send(events.into_iter().map(|e| e.path).collect());
            }
        },
    )?;
    let watched: Vec<(PathBuf, RecursiveMode)> = match &args.lambda_bootstrap {
        // A file replaced by a rename is seen only by watching its folder.
        Some(file) => vec![
            (
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
                RecursiveMode::NonRecursive,
            ),
            (spark_job.clone(), RecursiveMode::NonRecursive),
        ],
        None => vec![
            (root.join("crates/etl"), RecursiveMode::Recursive),
            (root.join("crates/stack-model"), RecursiveMode::Recursive),
        ],
    };
    for (path, mode) in &watched {
        debouncer.watcher().watch(path, *mode)?;
    }
    // Events name absolute paths.
    let bootstrap = args
        .lambda_bootstrap
        .as_ref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
    let spark = std::path::absolute(&spark_job).unwrap_or_else(|_| spark_job.clone());

    let aws = Aws::connect(&c.region).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&aws.conf);
    let mut tail = Tail::new(logs, followed(&c), now_millis());
    cycle(global, args, &root, &spark_job).await;
    eprintln!(
        "watch: watching {} (Ctrl-C stops)",
        watched
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("watch: stopped");
                return Ok(());
            }
            Some(paths) = rx.recv() => {
                let changed: Vec<&PathBuf> = paths
                    .iter()
                    .filter(|p| classify(p, bootstrap.as_deref(), &spark) == Trigger::Rebuild)
                    .collect();
                if let Some(first) = changed.first() {
                    eprintln!("watch: {} changed", first.display());
                    // Events of the same save arrive while deploying: they are this cycle's.
                    cycle(global, args, &root, &spark_job).await;
                    while rx.try_recv().is_ok() {}
                }
            }
            _ = tick.tick() => {
                let polled = tail.poll().await;
                for notice in polled.notices {
                    eprintln!("watch: {notice}");
                }
                for (label, e) in polled.events {
                    println!("[{label}] {}", e.message().unwrap_or_default().trim_end());
                }
            }
        }
    }
}

/// Builds (unless given a bootstrap) and deploys with `--hotswap`; prints a failure and goes on.
async fn cycle(global: &Global, args: &WatchArgs, root: &Path, spark_job: &Path) {
    let bootstrap = match &args.lambda_bootstrap {
        Some(p) => p.clone(),
        None => {
            eprintln!("watch: building the Lambda bootstrap");
            let root = root.to_path_buf();
            match tokio::task::spawn_blocking(move || build_bootstrap(&root)).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    eprintln!("watch: {e:#}; fix it and save again");
                    return;
                }
                Err(e) => {
                    eprintln!("watch: the build stopped: {e}");
                    return;
                }
            }
        }
    };
    let deploy = DeployArgs {
        stage: args.stage.clone(),
        lambda_bootstrap: Some(bootstrap),
        allow_replace: vec![],
        allow_lower_guard: false,
        hotswap: true,
        spark_job: Some(spark_job.to_path_buf()),
        cancel_runs: false,
        format: crate::cli::ReportFormat::Text,
        outputs_file: None,
        require_approval: args.require_approval,
    };
    match crate::deployment::deploy(global, &deploy).await {
        Ok(_) => eprintln!("watch: stage {} deployed", args.stage),
        Err(e) => eprintln!("watch: the deploy failed: {e}"),
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The groups `watch` follows: the ETL's, base b's starter's, the refresher's.
fn followed(c: &stack_model::StageConfig) -> Vec<Followed> {
    let base_b = match c.base_b_engine {
        stack_model::config::BaseBEngine::Function => FunctionRole::SiteEvents,
        stack_model::config::BaseBEngine::Emr => FunctionRole::EmrStarter,
    };
    [FunctionRole::Etl, base_b, FunctionRole::TableRefresher]
        .into_iter()
        .map(|f| Followed {
            label: f.as_str().to_owned(),
            group: c.stage.log_group_name(f),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_rebuild_and_build_output_does_not() {
        let spark = Path::new("/w/crates/etl/spark/site_events.py");
        assert_eq!(
            classify(Path::new("/w/crates/etl/src/run.rs"), None, spark),
            Trigger::Rebuild
        );
        assert_eq!(classify(spark, None, spark), Trigger::Rebuild);
        assert_eq!(
            classify(Path::new("/w/crates/etl/Cargo.toml"), None, spark),
            Trigger::Rebuild
        );
        assert_eq!(
            classify(Path::new("/w/target/release/build/x.rs"), None, spark),
            Trigger::Ignore
        );
        assert_eq!(
            classify(Path::new("/w/crates/etl/src/.run.rs.swp"), None, spark),
            Trigger::Ignore
        );
        let given = Path::new("/tmp/bootstrap");
        assert_eq!(classify(given, Some(given), spark), Trigger::Rebuild);
        assert_eq!(
            classify(Path::new("/tmp/other"), Some(given), spark),
            Trigger::Ignore
        );
        assert_eq!(
            classify(Path::new("/w/crates/etl/src/run.rs"), Some(given), spark),
            Trigger::Ignore
        );
    }
}
