//! The diff on pairs of rendered templates: exact report lines and JSON for each category.

use serde_json::{json, Value};

use super::compare::compare;
use super::render::{render, Style};
use stack_model::{pipeline, StageConfig, StageName};

fn alice(edit: impl FnOnce(&mut StageConfig)) -> Value {
    let mut c = StageConfig::defaults(StageName::parse("alice").unwrap());
    edit(&mut c);
    pipeline::template(&c).to_json().unwrap()
}

fn params(lambda: &str) -> Vec<(String, String)> {
    vec![
        ("ArtifactsBucket".into(), "art".into()),
        ("LambdaCodeKey".into(), format!("lambda/{lambda}.zip")),
        ("SparkJobKey".into(), "spark/s1/site_events.py".into()),
    ]
}

fn text(
    old: &Value,
    new: &Value,
    new_params: &[(String, String)],
) -> (String, super::compare::Report) {
    let p = params("a");
    let report = compare("alice", Some((old, &p)), new, new_params);
    (render(&report, Style::Text).unwrap(), report)
}

#[test]
fn nothing_changed_says_so() {
    let t = alice(|_| {});
    let (out, report) = text(&t, &t, &params("a"));
    assert_eq!(out, "Stage alice: no changes\n");
    assert!(!report.changes);
}

#[test]
fn a_setting_change_shows_the_property_paths_old_and_new() {
    let (out, report) = text(
        &alice(|_| {}),
        &alice(|c| c.lambda.timeout_seconds = 300),
        &params("a"),
    );
    assert_eq!(
        out,
        "Stage alice: changes against the deployed stack\n\
         ~ EtlFunction (AWS::Lambda::Function)\n    Properties/Timeout: 60 -> 300\n\
         ~ SiteEventsFunction (AWS::Lambda::Function)\n    Properties/Timeout: 60 -> 300\n\
         ~ TableRefresherFunction (AWS::Lambda::Function)\n    Properties/Timeout: 60 -> 300\n"
    );
    assert!(report.resources.iter().all(|r| !r.replacement));
}

#[test]
fn a_renamed_bucket_is_a_replacement_with_data_at_risk() {
    let old = alice(|_| {});
    let mut new = old.clone();
    new["Resources"]["SourceBucket"]["Properties"]["BucketName"] =
        json!({"Fn::Sub": "pdcase-alice-raw-${AWS::AccountId}-${AWS::Region}"});
    let (out, report) = text(&old, &new, &params("a"));
    assert_eq!(
        out,
        "Stage alice: changes against the deployed stack\n\
         ~ SourceBucket (AWS::S3::Bucket) [REPLACEMENT] [DATA LOSS]\n    \
         Properties/BucketName/Fn::Sub: pdcase-alice-source-${AWS::AccountId}-${AWS::Region} -> pdcase-alice-raw-${AWS::AccountId}-${AWS::Region} (create-only: replaces)\n\
         ! data at risk: SourceBucket; deploy refuses this unless given --allow-replace for each\n"
    );
    assert_eq!(report.data_at_risk, ["SourceBucket"]);
    let j = serde_json::to_value(&report).unwrap();
    assert_eq!(j["resources"][0]["replacement"], true);
    assert_eq!(j["resources"][0]["properties"][0]["replaces"], true);
}

#[test]
fn a_protected_stage_retains_what_it_replaces() {
    let old = alice(|c| c.protected = true);
    let mut new = old.clone();
    new["Resources"]["SourceBucket"]["Properties"]["BucketName"] = json!("renamed");
    let (_, report) = text(&old, &new, &params("a"));
    assert!(report.resources[0].replacement);
    assert!(
        !report.resources[0].data_loss,
        "UpdateReplacePolicy: Retain keeps the old bucket"
    );
    assert!(report.data_at_risk.is_empty());
}

#[test]
fn removed_stateful_resources_and_added_ones_are_marked() {
    let old = alice(|_| {});
    let mut new = old.clone();
    let group = new["Resources"]
        .as_object_mut()
        .unwrap()
        .remove("EtlLogGroup")
        .unwrap();
    new["Resources"]["ExtraLogGroup"] = group;
    let (out, _) = text(&old, &new, &params("a"));
    assert!(
        out.contains("\n- EtlLogGroup (AWS::Logs::LogGroup) [DATA LOSS]\n"),
        "{out}"
    );
    assert!(
        out.contains("\n+ ExtraLogGroup (AWS::Logs::LogGroup)\n"),
        "{out}"
    );
}

#[test]
fn iam_broadening_is_flagged_statement_by_statement() {
    let old = alice(|_| {});
    let mut new = old.clone();
    let stmts = &mut new["Resources"]["EtlRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        ["Statement"];
    stmts[0]["Action"] = json!(["s3:ListBucket", "s3:DeleteBucket"]);
    stmts[1]["Resource"] = json!(["*"]);
    stmts.as_array_mut().unwrap().push(
        json!({"Sid": "Everything", "Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}),
    );
    new["Resources"]["EtlRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        ["Principal"]["Service"] = json!(["lambda.amazonaws.com", "ec2.amazonaws.com"]);
    let (_, report) = text(&old, &new, &params("a"));
    let role = report
        .resources
        .iter()
        .find(|r| r.logical_id == "EtlRole")
        .unwrap();
    let found: Vec<(String, String, String)> = role
        .iam
        .iter()
        .map(|f| (f.kind.to_owned(), f.statement.clone(), f.detail.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "new statement".into(),
                "pdcase-alice-etl/Everything".into(),
                "allows s3:* on *".into()
            ),
            (
                "new actions".into(),
                "pdcase-alice-etl/ListBuckets".into(),
                "s3:DeleteBucket".into()
            ),
            (
                "wider resources".into(),
                "pdcase-alice-etl/ReadExports".into(),
                "*".into()
            ),
            (
                "new principals".into(),
                "trust/0".into(),
                "Service:ec2.amazonaws.com".into()
            ),
        ]
    );
    let out = render(&report, Style::Text).unwrap();
    assert!(
        out.contains("    ! IAM new actions (pdcase-alice-etl/ListBuckets): s3:DeleteBucket\n"),
        "{out}"
    );
}

#[test]
fn changed_artifacts_name_what_runs_them() {
    let t = alice(|_| {});
    let (out, report) = text(&t, &t, &params("b"));
    assert_eq!(
        out,
        "Stage alice: changes against the deployed stack\n\
         ~ code: lambda zip lambda/a.zip -> lambda/b.zip (runs in etl, emr-starter, table-refresher)\n"
    );
    assert_eq!(
        serde_json::to_value(&report.code).unwrap()[0]["artifact"],
        "lambda zip"
    );
}

#[test]
fn markdown_for_pull_requests() {
    let old = alice(|_| {});
    let mut new = old.clone();
    new["Resources"]["SourceBucket"]["Properties"]["BucketName"] = json!("renamed");
    let p = params("a");
    let md = render(
        &compare("alice", Some((&old, &p)), &new, &p),
        Style::Markdown,
    )
    .unwrap();
    assert!(md.starts_with("### Stage `alice`: changes\n"), "{md}");
    assert!(md.contains("> **Data at risk**: `SourceBucket` "), "{md}");
    assert!(
        md.contains("| ~ | `SourceBucket` | AWS::S3::Bucket | **yes** (data loss) |"),
        "{md}"
    );
}

/// A template holding one added resource of type `ty` with `props`.
fn with_added(ty: &str, props: Value) -> Value {
    let mut t = alice(|_| {});
    t["Resources"]["Added"] = json!({"Type": ty, "Properties": props});
    t
}

/// Replacement and data at risk come from the schema digest for a type the pipeline does not
/// use: a DynamoDB table's create-only `TableName` replaces it and its data is lost.
#[test]
fn an_added_tables_rename_is_a_replacement_with_data_at_risk() {
    let old = with_added(
        "AWS::DynamoDB::Table",
        json!({"TableName": "a", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}),
    );
    let new = with_added(
        "AWS::DynamoDB::Table",
        json!({"TableName": "b", "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}),
    );
    let (out, report) = text(&old, &new, &params("a"));
    let r = report
        .resources
        .iter()
        .find(|r| r.logical_id == "Added")
        .unwrap();
    assert!(r.replacement && r.data_loss && !r.unknown_type, "{r:?}");
    assert_eq!(report.data_at_risk, ["Added"]);
    assert!(
        out.contains("~ Added (AWS::DynamoDB::Table) [REPLACEMENT] [DATA LOSS]"),
        "{out}"
    );
}

/// A conditionally create-only property (a table's `KeySchema`) may replace: on a stateful
/// type, its data is at risk, which `deploy` refuses without `--allow-replace`.
#[test]
fn a_conditionally_create_only_change_of_a_stateful_type_is_data_at_risk() {
    let key = |name: &str| json!({"KeySchema": [{"AttributeName": name, "KeyType": "HASH"}]});
    let (out, report) = text(
        &with_added("AWS::DynamoDB::Table", key("id")),
        &with_added("AWS::DynamoDB::Table", key("pk")),
        &params("a"),
    );
    let r = report
        .resources
        .iter()
        .find(|r| r.logical_id == "Added")
        .unwrap();
    assert!(!r.replacement && r.may_replace && r.data_loss, "{r:?}");
    assert_eq!(report.data_at_risk, ["Added"]);
    assert!(out.contains("[MAY BE REPLACED] [DATA LOSS]"), "{out}");
    // The same kind of change on a stateless type (an alarm's metric) is in place.
    let (_, report) = text(
        &with_added("AWS::CloudWatch::Alarm", json!({"MetricName": "Errors"})),
        &with_added("AWS::CloudWatch::Alarm", json!({"MetricName": "Throttles"})),
        &params("a"),
    );
    let r = report
        .resources
        .iter()
        .find(|r| r.logical_id == "Added")
        .unwrap();
    assert!(!r.replacement && !r.data_loss && !r.unknown_type, "{r:?}");
}

/// A type no schema knows (a custom resource) is said to be unknown, never "in place".
#[test]
fn a_type_the_schemas_do_not_know_is_said_unknown() {
    let (out, report) = text(
        &with_added(
            "Custom::Seeder",
            json!({"ServiceToken": "arn:x", "Rows": 1}),
        ),
        &with_added(
            "Custom::Seeder",
            json!({"ServiceToken": "arn:x", "Rows": 2}),
        ),
        &params("a"),
    );
    let r = report
        .resources
        .iter()
        .find(|r| r.logical_id == "Added")
        .unwrap();
    assert!(r.unknown_type && !r.replacement, "{r:?}");
    assert!(
        out.contains(
            "~ Added (Custom::Seeder) [REPLACEMENT UNKNOWN: no schema facts for this type]"
        ),
        "{out}"
    );
    let md = render(&report, Style::Markdown).unwrap();
    assert!(md.contains("**unknown** (no schema facts)"), "{md}");
}
