//! Encryption: on a hardened stage, a customer-managed KMS key of the stage for the buckets,
//! the log groups, the topics and Athena's results (AWS Control Tower's proactive controls ask
//! for a customer key; the other stages keep the services' own keys, which cost nothing).
//!
//! The key policy lets the account's IAM policies grant the key (so each role's own policy
//! says what it may do with it) and lets CloudWatch Logs use it for the stage's log
//! groups only: CloudWatch Logs encrypts with its own service principal, held to the group by
//! the encryption context (CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs
//! using AWS KMS").

use super::Pipeline;
use crate::resource::iam::{Condition, Effect, PolicyDocument, Principal, Statement};
use crate::resource::kms::{Alias, Key};
use crate::stage::FunctionRole;
use crate::template::Handle;
use crate::value::Value;
use crate::warehouse::pascal_case;

/// Adds the stage's key (hardened stages only) and returns its ARN.
pub(super) fn key(p: &mut Pipeline) -> Option<Handle<Key>> {
    if !p.c.hardened {
        return None;
    }
    let mut statements = vec![Statement {
        sid: Some("AccountGrantsThroughIam".into()),
        effect: Effect::Allow,
        principal: Some(Principal::Aws(vec![Value::sub(
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:root",
        )])),
        action: vec!["kms:*".into()],
        resource: vec!["*".into()],
        condition: Condition::default(),
    }];
    // Grants only for AWS services acting on the stage's behalf (Control Tower's
    // CT.KMS.PR.3): nobody hands the key to someone else through a grant.
    statements.push(Statement {
        sid: Some("GrantsOnlyForAwsServices".into()),
        effect: Effect::Deny,
        principal: Some(Principal::Everyone),
        action: vec!["kms:CreateGrant".into()],
        resource: vec!["*".into()],
        condition: Condition::default()
            .with("BoolIfExists", "kms:GrantIsForAWSResource", "false")
            .with("BoolIfExists", "aws:PrincipalIsAWSService", "false"),
    });
    let mut groups: Vec<(String, String)> = FunctionRole::ALL
        .iter()
        .map(|f| (pascal_case(f.as_str()), p.c.stage.log_group_name(*f)))
        .collect();
    if p.c.base_a_engine.has_state_machine() {
        groups.push(("EtlShards".into(), p.c.stage.state_machine_log_group_name()));
    }
    for (name, group) in groups {
        statements.push(Statement {
            sid: Some(format!("LogsEncrypt{name}")),
            effect: Effect::Allow,
            principal: Some(Principal::Service(vec![format!(
                "logs.{}.amazonaws.com",
                p.c.region
            )])),
            action: [
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
            resource: vec!["*".into()],
            condition: Condition::default().with(
                "ArnEquals",
                "kms:EncryptionContext:aws:logs:arn",
                Value::sub(format!(
                    "arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{group}"
                )),
            ),
        });
    }
    let tags = p.tags();
    let removal = p.stateful();
    let key = p.t.add_with(
        "StageKey",
        Key {
            description: format!(
                "Data of {} stage {}: buckets, logs, topics, query results",
                crate::stage::PROJECT,
                p.c.stage
            ),
            enable_key_rotation: true,
            key_policy: PolicyDocument::new(statements),
            pending_window_in_days: 30,
            tags,
        },
        removal,
    );
    // Retained with the key: the alias is how the next deploy finds a key a forced teardown
    // left, to adopt it.
    let removal = p.stateful();
    p.t.add_with(
        "StageKeyAlias",
        Alias {
            alias_name: format!("alias/{}", p.c.stage.prefix()),
            target_key_id: key.r#ref(),
        },
        removal,
    );
    Some(key)
}

/// On a hardened stage, a role's `statements` and what it does with the stage's key: read what
/// it reads, and (`write`) encrypt what it writes.
pub(super) fn with_key(
    p: &Pipeline,
    mut statements: Vec<Statement>,
    write: bool,
) -> Vec<Statement> {
    if let Some(key) = &p.key {
        let actions: &[&str] = if write {
            &["kms:Decrypt", "kms:GenerateDataKey"]
        } else {
            &["kms:Decrypt"]
        };
        statements.push(Statement::allow("UseStageKey", actions, vec![key.clone()]));
    }
    statements
}
