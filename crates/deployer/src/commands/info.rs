//! `deployer info --stage S`: the stage's stacks, their status and outputs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::Aws;
use crate::cli::{Global, InfoArgs, ReportFormat};
use crate::cloudformation::status::{describe, outputs_of, status_of};

/// What `info --format json` prints (with its `format_version`).
#[derive(Serialize)]
struct Info {
    stage: String,
    region: String,
    protected: bool,
    stacks: Vec<StackInfo>,
}

#[derive(Serialize)]
struct StackInfo {
    name: String,
    /// Whether the stack exists.
    deployed: bool,
    status: Option<String>,
    /// Its last change (or its creation), as CloudFormation reports it.
    last_change: Option<String>,
    outputs: BTreeMap<String, String>,
}

pub async fn run(global: &Global, args: &InfoArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    let mut stacks = Vec::new();
    for name in [c.stage.bootstrap_stack_name(), c.stage.stack_name()] {
        stacks.push(match describe(&aws.cfn, &name).await? {
            None => StackInfo {
                name,
                deployed: false,
                status: None,
                last_change: None,
                outputs: BTreeMap::new(),
            },
            Some(s) => StackInfo {
                name,
                deployed: true,
                status: Some(status_of(&s)),
                last_change: s
                    .last_updated_time()
                    .or(s.creation_time())
                    .map(|t| t.to_string()),
                outputs: outputs_of(&s).into_iter().collect(),
            },
        });
    }
    let info = Info {
        stage: c.stage.as_str().to_owned(),
        region: c.region.clone(),
        protected: c.protected,
        stacks,
    };
    match args.format {
        ReportFormat::Json => crate::output::print_json(&info)?,
        ReportFormat::Text => print!("{}", text(&info)),
    }
    Ok(())
}

fn text(info: &Info) -> String {
    let mut out = format!(
        "stage: {} (region {}{})\n",
        info.stage,
        info.region,
        if info.protected { ", protected" } else { "" }
    );
    for s in &info.stacks {
        match &s.status {
            None => out += &format!("{}: not deployed\n", s.name),
            Some(status) => {
                out += &format!(
                    "{}: {status} (last change {})\n",
                    s.name,
                    s.last_change.as_deref().unwrap_or_default()
                );
                for (k, v) in &s.outputs {
                    out += &format!("  {k}: {v}\n");
                }
            }
        }
    }
    if !info.stacks.iter().any(|s| s.deployed) {
        out += &format!("deploy it with `deployer deploy --stage {}`\n", info.stage);
    }
    out
}
