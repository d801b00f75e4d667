//! Delete a stack and wait. What AWS does: resources with `DeletionPolicy: Retain` are left
//! in place; a bucket that still holds objects fails to delete (`DELETE_FAILED`), which is
//! why teardown empties buckets first.

use std::time::Duration;

use aws_sdk_cloudformation::Client;

use super::events::{root_cause, Event, Watcher};
use super::status::{describe, status_of};

/// Deletes `name` (a missing stack is not an error) and waits for the end.
pub async fn delete(cfn: &Client, name: &str) -> anyhow::Result<()> {
    if describe(cfn, name).await?.is_none() {
        return Ok(());
    }
    let mut watcher = Watcher::start(cfn, name).await?;
    cfn.delete_stack()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| crate::aws::failed(format!("deleting stack {name}"), e))?;
    let mut seen: Vec<Event> = Vec::new();
    let mut progress = crate::progress::Progress::start(format!("deleting {name}"));
    loop {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let new = watcher.poll(cfn).await?;
        // Each resource as CloudFormation reports it, so a long deletion is not silent.
        for e in &new {
            eprintln!(
                "  {name}: {} ({}) {}",
                e.logical_id, e.resource_type, e.status
            );
        }
        seen.extend(new);
        match describe(cfn, name).await? {
            None => return Ok(()),
            Some(s) if status_of(&s) == "DELETE_FAILED" => {
                let cause = root_cause(&seen)
                    .map(|e| {
                        format!(
                            ": {} ({}): {}",
                            e.logical_id,
                            e.resource_type,
                            e.reason.as_deref().unwrap_or("")
                        )
                    })
                    .unwrap_or_default();
                anyhow::bail!("deleting stack {name} failed (DELETE_FAILED){cause}");
            }
            Some(s) => progress.tick(&status_of(&s)),
        }
    }
}
