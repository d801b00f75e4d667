//! What the local emulator cannot produce, at the SDK level (aws-smithy-mocks): a stack
//! stuck in UPDATE_ROLLBACK_FAILED, a stack busy with another operation, DELETE_FAILED on a
//! non-empty bucket, an update that fails because the Lambda code key is missing.

use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::delete_stack::DeleteStackOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
use aws_sdk_cloudformation::types::{
    ChangeSetStatus, ResourceStatus, Stack, StackEvent, StackStatus,
};
use aws_sdk_cloudformation::Client;
use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};

use super::apply::{apply, Applied, ApplyError, StackSpec};

/// A CloudFormation client whose answers are `rules` (any order), as the tests of other
/// modules use too.
pub(crate) fn client(rules: &[&Rule]) -> Client {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        interceptor = interceptor.with_rule(r);
    }
    let conf = aws_sdk_cloudformation::Config::builder()
        .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudformation::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .http_client(aws_smithy_mocks::create_mock_http_client())
        .interceptor(interceptor)
        .build();
    Client::from_conf(conf)
}

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_name("pdcase-alice")
                .stack_status(status)
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build(),
        )
        .build()
}

fn event(id: &str, logical: &str, ty: &str, status: ResourceStatus, reason: &str) -> StackEvent {
    StackEvent::builder()
        .event_id(id)
        .stack_id("s")
        .stack_name("pdcase-alice")
        .logical_resource_id(logical)
        .resource_type(ty)
        .resource_status(status)
        .resource_status_reason(reason)
        .timestamp(aws_smithy_types::DateTime::from_secs(0))
        .build()
}

fn no_events() -> DescribeStackEventsOutput {
    DescribeStackEventsOutput::builder().build()
}

fn spec() -> StackSpec {
    StackSpec {
        role_arn: None,
        name: "pdcase-alice".into(),
        template: super::change_set::TemplateSource::Body("{}".into()),
        parameters: vec![],
        tags: vec![],
        resources: 54,
        protected: false,
    }
}

#[tokio::test]
async fn update_rollback_failed_names_the_next_step_and_creates_no_change_set() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateRollbackFailed))
        .repeatedly()
        .build();
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(no_events)
        .repeatedly()
        .build();
    let create =
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build());
    let cfn = client(&[&describe, &events, &create]);
    let err = apply(&cfn, &spec(), "stage alice").await.unwrap_err();
    assert!(matches!(err, ApplyError::Stuck(_)), "{err}");
    assert_eq!(err.exit_code(), 4);
    assert!(
        err.to_string()
            .contains("aws cloudformation continue-update-rollback --stack-name pdcase-alice"),
        "{err}"
    );
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test]
async fn a_stack_busy_in_progress_is_waited_for() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress))
        .times(2)
        .output(|| stack(StackStatus::UpdateComplete))
        .repeatedly()
        .build();
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(no_events)
        .repeatedly()
        .build();
    let create = mock!(Client::create_change_set)
        .sequence()
        .output(|| CreateChangeSetOutput::builder().id("cs").build())
        .repeatedly()
        .build();
    let empty = mock!(Client::describe_change_set)
        .sequence()
        .output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::Failed)
                .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
                .build()
        })
        .repeatedly()
        .build();
    let delete_cs = mock!(Client::delete_change_set)
        .sequence()
        .output(|| {
            aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput::builder()
                .build()
        })
        .repeatedly()
        .build();
    let cfn = client(&[&describe, &events, &create, &empty, &delete_cs]);
    assert_eq!(
        apply(&cfn, &spec(), "stage alice").await.unwrap(),
        Applied::NoChanges
    );
    assert!(
        describe.num_calls() >= 3,
        "polled until the other operation ended"
    );
    assert_eq!(create.num_calls(), 1, "the change set came after the wait");
}

#[tokio::test]
async fn a_missing_lambda_code_key_fails_the_update_with_its_cause() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateComplete))
        .output(|| stack(StackStatus::UpdateRollbackComplete))
        .repeatedly()
        .build();
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(no_events)
        .times(3)
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event("3", "pdcase-alice", "AWS::CloudFormation::Stack", ResourceStatus::UpdateRollbackComplete, ""))
                .stack_events(event("2", "EtlFunction", "AWS::Lambda::Function", ResourceStatus::UpdateFailed,
                    "Resource handler returned message: \"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.\""))
                .stack_events(event("1", "EtlFunction", "AWS::Lambda::Function", ResourceStatus::UpdateInProgress, ""))
                .build()
        })
        .repeatedly()
        .build();
    let create = mock!(Client::create_change_set)
        .then_output(|| CreateChangeSetOutput::builder().id("cs").build());
    let ready = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::CreateComplete)
            .build()
    });
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let cfn = client(&[&describe, &events, &create, &ready, &execute]);
    let err = apply(&cfn, &spec(), "stage alice").await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    assert_eq!(
        err.to_string(),
        "pdcase-alice ended UPDATE_ROLLBACK_COMPLETE: EtlFunction (AWS::Lambda::Function) UPDATE_FAILED: Resource handler returned message: \"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.\""
    );
    assert_eq!(execute.num_calls(), 1);
}

#[tokio::test]
async fn delete_failed_on_a_non_empty_bucket_is_reported_with_the_bucket() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateComplete))
        .output(|| stack(StackStatus::DeleteFailed))
        .repeatedly()
        .build();
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(no_events)
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event("2", "SourceBucket", "AWS::S3::Bucket", ResourceStatus::DeleteFailed,
                    "The bucket you tried to delete is not empty. You must delete all versions in the bucket."))
                .build()
        })
        .repeatedly()
        .build();
    let delete = mock!(Client::delete_stack).then_output(|| DeleteStackOutput::builder().build());
    let cfn = client(&[&describe, &events, &delete]);
    let err = super::delete::delete(&cfn, "pdcase-alice")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deleting stack pdcase-alice failed (DELETE_FAILED): SourceBucket (AWS::S3::Bucket): The bucket you tried to delete is not empty. You must delete all versions in the bucket."
    );
}

/// Issue 12f: a change set refused by CloudFormation's early validation names each finding
/// (from DescribeEvents of that change set), not only its status reason.
#[tokio::test]
async fn a_change_set_failing_early_validation_names_its_findings() {
    use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
    use aws_sdk_cloudformation::operation::describe_events::DescribeEventsOutput;
    use aws_sdk_cloudformation::types::{OperationEvent, ValidationStatus};

    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateComplete))
        .repeatedly()
        .build();
    let create = mock!(Client::create_change_set).then_output(|| {
        CreateChangeSetOutput::builder()
            .id("arn:cs/deployer-1")
            .build()
    });
    let failed = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::Failed)
            .status_reason("The following hook(s)/validation failed: [AWS::EarlyValidation::ResourceExistenceCheck]. To troubleshoot Early Validation errors, use the DescribeEvents API for detailed failure information.")
            .build()
    });
    let deleted =
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
    // Issue 25: the finding is on the second page, after a page of other events.
    let first_page = mock!(Client::describe_events)
        .match_requests(|r| {
            r.change_set_name() == Some("arn:cs/deployer-1") && r.next_token().is_none()
        })
        .then_output(|| {
            DescribeEventsOutput::builder()
                .operation_events(
                    OperationEvent::builder()
                        .logical_resource_id("SourceBucket")
                        .resource_type("AWS::S3::Bucket")
                        .validation_status(ValidationStatus::Skipped)
                        .build(),
                )
                .next_token("page-2")
                .build()
        });
    let findings = mock!(Client::describe_events)
        .match_requests(|r| {
            r.change_set_name() == Some("arn:cs/deployer-1") && r.next_token() == Some("page-2")
        })
        .then_output(|| {
            DescribeEventsOutput::builder()
                .operation_events(
                    OperationEvent::builder()
                        .logical_resource_id("WarehouseBucket")
                        .resource_type("AWS::S3::Bucket")
                        .validation_status(ValidationStatus::Failed)
                        .validation_status_reason("Resource with identifier 'pdcase-alice-warehouse-1-us-east-1' already exists")
                        .build(),
                )
                .build()
        });
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(no_events)
        .repeatedly()
        .build();
    let cfn = client(&[
        &describe,
        &events,
        &create,
        &failed,
        &deleted,
        &first_page,
        &findings,
    ]);
    let err = apply(&cfn, &spec(), "stage alice").await.unwrap_err();
    assert_eq!(err.exit_code(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with("the change set for pdcase-alice failed: The following hook(s)"),
        "{text}"
    );
    assert!(
        text.contains("\n  caused by WarehouseBucket (AWS::S3::Bucket): Resource with identifier 'pdcase-alice-warehouse-1-us-east-1' already exists"),
        "{text}"
    );
    assert!(!text.contains("SourceBucket"), "{text}");
    assert_eq!((first_page.num_calls(), findings.num_calls()), (1, 1));
    assert_eq!(deleted.num_calls(), 1);
}
