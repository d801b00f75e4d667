//! Termination protection. What AWS does: a stack with termination protection on refuses
//! `DeleteStack` ("Stack [...] cannot be deleted while TerminationProtection is enabled") until
//! `UpdateTerminationProtection` turns it off; it can be set on a stack in any settled state.
//! Protected stages have it on, so that only `teardown --force` (which lifts it on purpose)
//! deletes them, never a stray `aws cloudformation delete-stack`.

use aws_sdk_cloudformation::Client;

use super::status::describe;

/// Sets the stack's termination protection to `on`; returns whether it changed. A missing
/// stack is not an error (nothing to protect).
pub async fn set(cfn: &Client, stack: &str, on: bool) -> anyhow::Result<bool> {
    let Some(s) = describe(cfn, stack).await? else {
        return Ok(false);
    };
    if s.enable_termination_protection().unwrap_or(false) == on {
        return Ok(false);
    }
    cfn.update_termination_protection()
        .stack_name(stack)
        .enable_termination_protection(on)
        .send()
        .await
        .map_err(|e| {
            crate::aws::failed(
                format!(
                    "turning termination protection of {stack} {}",
                    if on { "on" } else { "off" }
                ),
                e,
            )
        })?;
    Ok(true)
}
