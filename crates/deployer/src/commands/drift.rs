//! `deployer drift --stage S [--format text|json]`: CloudFormation's drift detection on the
//! stage's stacks. Starts a detection per stack (`DetectStackDrift`), waits for it
//! (`DescribeStackDriftDetectionStatus`), and prints each resource that was changed or deleted
//! outside CloudFormation with its property paths, expected → actual
//! (`DescribeStackResourceDrifts`). Exit 0 in sync, 2 drifted, 1 error.
//!
//! CloudFormation compares only the properties the template sets, for the resource types that
//! support drift detection, and reads the resources with the caller's credentials (user guide,
//! "Detect unmanaged configuration changes to stacks and resources with drift detection").

use std::time::Duration;

use anyhow::Context;
use aws_sdk_cloudformation::types::{StackDriftDetectionStatus, StackResourceDriftStatus};
use serde::Serialize;

use crate::aws::Aws;
use crate::cli::{DriftArgs, Global, ReportFormat};
use crate::cloudformation::status::describe;
use crate::errors::Explained;

/// One property that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub path: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// `ADD`, `REMOVE` or `NOT_EQUAL`.
    pub kind: String,
}

/// A resource that drifted: `MODIFIED` (with its differences) or `DELETED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Drifted {
    pub stack: String,
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: Option<String>,
    pub status: String,
    pub differences: Vec<Difference>,
}

/// What one stack's detection found.
#[derive(Clone, Debug, Serialize)]
pub struct StackDrift {
    pub stack: String,
    /// `IN_SYNC`, `DRIFTED`, `UNKNOWN`.
    pub status: String,
    /// Why some resources could not be checked (`DETECTION_FAILED`), if any.
    pub failure: Option<String>,
    pub drifted: Vec<Drifted>,
}

pub async fn run(global: &Global, args: &DriftArgs) -> anyhow::Result<u8> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let mut reports = Vec::new();
    for stack in [c.stage.bootstrap_stack_name(), c.stage.stack_name()] {
        if describe(&aws.cfn, &stack).await?.is_some() {
            reports.push(detect(&aws.cfn, &stack).await?);
        }
    }
    if reports.is_empty() {
        return Err(anyhow::Error::new(Explained::new(
            format!(
                "stage {} is not deployed in region {}: nothing to check",
                c.stage, c.region
            ),
            format!("deploy it with `deployer deploy --stage {}`", c.stage),
        )));
    }
    match args.format {
        ReportFormat::Text => print!("{}", text(&args.stage, &reports)),
        ReportFormat::Json => crate::output::print_json(&serde_json::json!({
            "stage": c.stage.as_str(),
            "stacks": reports,
        }))?,
    }
    let drifted = reports.iter().any(|r| !r.drifted.is_empty());
    let failed = reports.iter().find_map(|r| r.failure.clone());
    match (drifted, failed) {
        (true, _) => Ok(2),
        (false, Some(reason)) => Err(anyhow::Error::new(Explained::new(
            format!("drift detection could not check every resource: {reason}"),
            "give the identity read access to the resources named (CloudFormation reads them with the caller's credentials) and run `deployer drift` again",
        ))),
        (false, None) => Ok(0),
    }
}

/// Runs a detection on `stack` and waits for it (CloudFormation says it can take minutes).
pub async fn detect(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> anyhow::Result<StackDrift> {
    let id = cfn
        .detect_stack_drift()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("starting drift detection on {stack}"), e))?
        .stack_drift_detection_id
        .context("CloudFormation returned no drift detection id")?;
    let mut wait = Duration::from_millis(500);
    let mut progress = crate::progress::Progress::start(format!("drift detection on {stack}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15 * 60);
    let status = loop {
        let s = cfn
            .describe_stack_drift_detection_status()
            .stack_drift_detection_id(&id)
            .send()
            .await
            .map_err(|e| {
                crate::aws::failed(format!("waiting for drift detection on {stack}"), e)
            })?;
        if s.detection_status() != Some(&StackDriftDetectionStatus::DetectionInProgress) {
            break s;
        }
        progress.tick("DETECTION_IN_PROGRESS");
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("drift detection {id} on {stack} still runs after 15 minutes");
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    };
    let failure = (status.detection_status() == Some(&StackDriftDetectionStatus::DetectionFailed))
        .then(|| {
            status
                .detection_status_reason()
                .unwrap_or("no reason given")
                .to_owned()
        });
    let mut drifted = Vec::new();
    let mut pages = cfn
        .describe_stack_resource_drifts()
        .stack_name(stack)
        .stack_resource_drift_status_filters(StackResourceDriftStatus::Modified)
        .stack_resource_drift_status_filters(StackResourceDriftStatus::Deleted)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::aws::failed(format!("reading the drift of {stack}"), e))?;
        for d in page.stack_resource_drifts() {
            drifted.push(Drifted {
                stack: stack.to_owned(),
                logical_id: d.logical_resource_id().unwrap_or_default().to_owned(),
                resource_type: d.resource_type().unwrap_or_default().to_owned(),
                physical_id: d.physical_resource_id().map(str::to_owned),
                status: d
                    .stack_resource_drift_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                differences: d
                    .property_differences()
                    .iter()
                    .map(|p| Difference {
                        path: p.property_path().unwrap_or_default().to_owned(),
                        expected: p
                            .expected_value()
                            .filter(|v| !v.is_empty())
                            .map(str::to_owned),
                        actual: p
                            .actual_value()
                            .filter(|v| !v.is_empty())
                            .map(str::to_owned),
                        kind: p
                            .difference_type()
                            .map(|k| k.as_str().to_owned())
                            .unwrap_or_default(),
                    })
                    .collect(),
            });
        }
    }
    drifted.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    Ok(StackDrift {
        stack: stack.to_owned(),
        status: status
            .stack_drift_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "UNKNOWN".into()),
        failure,
        drifted,
    })
}

/// The report for people: a line per stack, then each drifted resource and its differences.
pub fn text(stage: &str, reports: &[StackDrift]) -> String {
    let mut out = String::new();
    let count: usize = reports.iter().map(|r| r.drifted.len()).sum();
    out.push_str(&match count {
        0 => format!("stage {stage}: in sync with its templates\n"),
        1 => format!("stage {stage}: 1 resource drifted\n"),
        n => format!("stage {stage}: {n} resources drifted\n"),
    });
    for r in reports {
        out.push_str(&format!("{}: {}\n", r.stack, r.status));
        if let Some(reason) = &r.failure {
            out.push_str(&format!("  not every resource was checked: {reason}\n"));
        }
        for d in &r.drifted {
            out.push_str(&format!(
                "  {} ({}{}): {}\n",
                d.logical_id,
                d.resource_type,
                d.physical_id
                    .as_deref()
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default(),
                d.status
            ));
            for p in &d.differences {
                out.push_str(&format!(
                    "    {}: {} → {} ({})\n",
                    p.path,
                    p.expected.as_deref().unwrap_or("(none)"),
                    p.actual.as_deref().unwrap_or("(none)"),
                    p.kind
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_report_names_paths_expected_and_actual() {
        let report = StackDrift {
            stack: "pdcase-alice".into(),
            status: "DRIFTED".into(),
            failure: None,
            drifted: vec![Drifted {
                stack: "pdcase-alice".into(),
                logical_id: "EtlFunction".into(),
                resource_type: "AWS::Lambda::Function".into(),
                physical_id: Some("pdcase-alice-etl".into()),
                status: "MODIFIED".into(),
                differences: vec![Difference {
                    path: "/MemorySize".into(),
                    expected: Some("2048".into()),
                    actual: Some("512".into()),
                    kind: "NOT_EQUAL".into(),
                }],
            }],
        };
        assert_eq!(
            text("alice", &[report]),
            "stage alice: 1 resource drifted\n\
             pdcase-alice: DRIFTED\n  \
             EtlFunction (AWS::Lambda::Function, pdcase-alice-etl): MODIFIED\n    \
             /MemorySize: 2048 → 512 (NOT_EQUAL)\n"
        );
        let in_sync = StackDrift {
            stack: "pdcase-alice".into(),
            status: "IN_SYNC".into(),
            failure: None,
            drifted: vec![],
        };
        assert_eq!(
            text("alice", &[in_sync]),
            "stage alice: in sync with its templates\npdcase-alice: IN_SYNC\n"
        );
    }
}
