//! The route of the warehouse's completion markers to the table refresher: an EventBridge rule
//! on the warehouse's "Object Created" events of `_SUCCESS` keys, and the function's permission
//! for it. A part of its own: it joins the storage part's bucket and the functions part's
//! refresher, which otherwise do not know each other.

use super::functions::Functions;
use super::storage::Storage;
use super::Pipeline;
use crate::resource::events::{Rule, RuleAttr, RuleState, S3ObjectCreatedPattern, Target};
use crate::resource::lambda::{FunctionAttr, Permission};
use crate::warehouse::SUCCESS_MARKER;

/// The warehouse's completion markers reach the table refresher through EventBridge: a rule
/// of the default bus matches S3's "Object Created" events of the warehouse whose key ends in
/// `/_SUCCESS`, and invokes the function.
///
/// Not S3's own Lambda notification: S3 checks that it may invoke the function when the
/// notification is created, so the bucket had to wait for the permission, and the permission
/// could name the bucket only through its derived name (`Fn::Sub`), never by reference; AWS
/// Control Tower's CT.LAMBDA.PR.2 reads only a literal or a reference of the template. Here
/// the permission names the rule by `GetAtt`, and nothing waits on anything.
pub(super) fn markers_to_refresher(p: &mut Pipeline, storage: &Storage, functions: &Functions) {
    let refresher = &functions.table_refresher;
    let tags = p.tags();
    let rule = p.t.add(
        "TableMarkersRule",
        Rule {
            name: format!("{}-table-markers", p.c.stage.prefix()),
            description: "Completion markers of the warehouse's tables, to the table refresher"
                .into(),
            event_pattern: S3ObjectCreatedPattern::new(
                storage.warehouse_name.clone(),
                &format!("/{SUCCESS_MARKER}"),
            ),
            state: RuleState::Enabled,
            targets: vec![Target {
                id: "TableRefresher".into(),
                arn: refresher.get_att(FunctionAttr::Arn),
            }],
            tags,
        },
    );
    p.t.add(
        "TableRefresherEventsPermission",
        Permission {
            action: "lambda:InvokeFunction".into(),
            function_name: refresher.get_att(FunctionAttr::Arn),
            principal: "events.amazonaws.com".into(),
            source_arn: Some(rule.get_att(RuleAttr::Arn)),
            source_account: None,
        },
    );
}
