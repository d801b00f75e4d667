//! `deployer ls [--region R]` (the global `--region`; default the profile's region): the stages deployed in the account and region, from their
//! stacks' tags (`Project: pdcase`, `Stage: <name>`, which every stack of a stage carries).
//!
//! It lists every stack (`DescribeStacks` without a name), which a stage's deploy policy does
//! not allow (it reads its own stacks only): run it as an identity that may call
//! `cloudformation:DescribeStacks` on every stack of the account and region, as `gc` needs.

use std::collections::BTreeMap;

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use serde::Serialize;

use crate::aws::Aws;
use crate::cli::{Global, LsArgs, ReportFormat};
use crate::cloudformation::status::status_of;
use crate::errors::Explained;

#[derive(Serialize)]
struct StageStacks {
    stage: String,
    stacks: Vec<StackRow>,
}

#[derive(Serialize)]
struct StackRow {
    name: String,
    status: String,
    last_change: Option<String>,
}

pub async fn run(global: &Global, args: &LsArgs) -> anyhow::Result<()> {
    let region = match &global.region {
        Some(r) => r.clone(),
        None => crate::aws::profile_region()
            .await
            .unwrap_or_else(|| "us-east-1".to_owned()),
    };
    let aws = Aws::connect(&region).await;
    let mut stages: BTreeMap<String, Vec<StackRow>> = BTreeMap::new();
    let mut pages = aws.cfn.describe_stacks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let denied = crate::errors::is_access_denied(e.code());
            let mut e = crate::aws::failed("listing the stacks of the account and region", e);
            if let (true, Some(x)) = (denied, e.downcast_mut::<Explained>()) {
                x.todo = Some("run ls as an identity that may call cloudformation:DescribeStacks on every stack of the account and region (a stage's deploy policy may read only its own stacks)".into());
            }
            e
        })?;
        for s in page.stacks() {
            let tag = |k: &str| {
                s.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            let (Some(stack_model::stage::PROJECT), Some(stage)) = (tag("Project"), tag("Stage"))
            else {
                continue;
            };
            stages.entry(stage.to_owned()).or_default().push(StackRow {
                name: s.stack_name().unwrap_or_default().to_owned(),
                status: status_of(s),
                last_change: s
                    .last_updated_time()
                    .or(s.creation_time())
                    .map(|t| t.to_string()),
            });
        }
    }
    let stages: Vec<StageStacks> = stages
        .into_iter()
        .map(|(stage, mut stacks)| {
            stacks.sort_by(|a, b| a.name.cmp(&b.name));
            StageStacks { stage, stacks }
        })
        .collect();
    match args.format {
        ReportFormat::Json => crate::output::print_json(&serde_json::json!({
            "region": region,
            "stages": stages,
        }))?,
        ReportFormat::Text => {
            if stages.is_empty() {
                println!("no stage is deployed in {region}");
            }
            for s in &stages {
                let stacks: Vec<String> = s
                    .stacks
                    .iter()
                    .map(|r| format!("{} {}", r.name, r.status))
                    .collect();
                println!("{}\t{}", s.stage, stacks.join(", "));
            }
        }
    }
    Ok(())
}
