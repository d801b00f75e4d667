//! `deployer info --stage S`: the stage's stacks, their status and outputs.

use crate::aws::Aws;
use crate::cli::{Global, StageArgs};
use crate::cloudformation::status::{describe, outputs_of, status_of};

pub async fn run(global: &Global, args: &StageArgs) -> anyhow::Result<()> {
    let c = global.stage_config(&args.stage)?;
    let aws = Aws::connect(&c.region).await;
    println!(
        "stage: {} (region {}{})",
        c.stage,
        c.region,
        if c.protected { ", protected" } else { "" }
    );
    let mut any = false;
    for name in [c.stage.bootstrap_stack_name(), c.stage.stack_name()] {
        match describe(&aws.cfn, &name).await? {
            None => println!("{name}: not deployed"),
            Some(s) => {
                any = true;
                let updated = s
                    .last_updated_time()
                    .or(s.creation_time())
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!("{name}: {} (last change {updated})", status_of(&s));
                let mut outs = outputs_of(&s);
                outs.sort();
                for (k, v) in outs {
                    println!("  {k}: {v}");
                }
            }
        }
    }
    if !any {
        println!("deploy it with `deployer deploy --stage {}`", c.stage);
    }
    Ok(())
}
