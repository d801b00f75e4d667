//! `deployer package --out DIR`: the Lambda zip and the Spark job, as deploy uploads them.

use anyhow::Context;
use serde_json::json;

use crate::artifacts::{build_bootstrap, lambda_zip, workspace_root, Artifact};
use crate::cli::PackageArgs;

pub fn run(args: &PackageArgs) -> anyhow::Result<()> {
    let bootstrap_path = match &args.lambda_bootstrap {
        Some(p) => p.clone(),
        None => build_bootstrap(&workspace_root()?)?,
    };
    let bootstrap = std::fs::read(&bootstrap_path)
        .with_context(|| format!("reading {}", bootstrap_path.display()))?;
    let zip = Artifact::new(lambda_zip(&bootstrap)?);
    let spark = Artifact::new(etl::SPARK_JOB.as_bytes().to_vec());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let zip_path = args.out.join("lambda.zip");
    let spark_path = args.out.join(etl::SPARK_JOB_FILE);
    std::fs::write(&zip_path, &zip.bytes)
        .with_context(|| format!("writing {}", zip_path.display()))?;
    std::fs::write(&spark_path, &spark.bytes)
        .with_context(|| format!("writing {}", spark_path.display()))?;
    let report = json!({
        "lambda": {"path": zip_path, "sha256": zip.sha256, "bytes": zip.bytes.len(),
                   "bootstrap": bootstrap_path, "bootstrap_bytes": bootstrap.len()},
        "spark_job": {"path": spark_path, "sha256": spark.sha256, "bytes": spark.bytes.len()},
    });
    crate::output::print_json(&report)?;
    Ok(())
}
