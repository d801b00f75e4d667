//! An EMR Serverless application around a stack operation.
//!
//! CloudFormation's update and delete handlers of `AWS::EMRServerless::Application` fail on an
//! application that is started (its settings change only while it is `CREATED` or `STOPPED`;
//! EMR Serverless user guide, "Application states"), and `StopApplication` is refused while a
//! job run is scheduled or running. So before a change set that changes or removes an
//! application, and before a teardown, the deployer stops it: it waits for the running job
//! runs to end (or cancels them, with `--cancel-runs`), stops the application, and waits until
//! it is `STOPPED`. Each step says what it waits for.
//!
//! Not closed here: a run submitted between the stop and CloudFormation's update starts the
//! application again (auto-start), and the update then fails and rolls back with nothing
//! lost; holding base b's run lease across the update closes that window (issue 26).

use std::time::Duration;

use anyhow::Context;
use aws_sdk_emrserverless::types::{ApplicationState, JobRunState};

use crate::aws::{failed, Aws};

/// The CloudFormation type of an EMR Serverless application.
pub const APPLICATION_TYPE: &str = "AWS::EMRServerless::Application";

/// What to do with job runs that hold the application started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Wait until they end.
    Wait,
    /// Cancel them (`--cancel-runs`).
    Cancel,
}

impl Runs {
    /// `Cancel` when the user gave `--cancel-runs`.
    pub fn cancel_if(cancel_runs: bool) -> Runs {
        if cancel_runs {
            Runs::Cancel
        } else {
            Runs::Wait
        }
    }
}

/// How often the application and its runs are read while waiting.
fn poll() -> Duration {
    // The emulator's tests shorten it; AWS's states change in seconds to minutes.
    let ms = std::env::var("DEPLOYER_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    Duration::from_millis(ms)
}

/// Logical ids of the applications in a rendered or deployed template.
pub fn applications(template: &serde_json::Value) -> Vec<String> {
    template["Resources"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, v)| v["Type"] == APPLICATION_TYPE)
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The applications of `deployed` that a change to `rendered` modifies or removes (None:
/// the stack goes, all of them).
pub fn touched(deployed: &serde_json::Value, rendered: Option<&serde_json::Value>) -> Vec<String> {
    applications(deployed)
        .into_iter()
        .filter(|id| match rendered {
            None => true,
            Some(r) => r["Resources"].get(id) != deployed["Resources"].get(id),
        })
        .collect()
}

/// Before CloudFormation changes (`rendered`) or deletes (None) the deployed stack `stack`:
/// stops the applications the change touches and clears EMR's security groups out of a
/// retired VPC it removes (`crate::emr_security_groups`). Reads the stack's resources only
/// when there is one or the other.
pub async fn before_stack_change(
    aws: &Aws,
    stack: &str,
    deployed: &serde_json::Value,
    rendered: Option<&serde_json::Value>,
    runs: Runs,
    what: &str,
) -> anyhow::Result<()> {
    let apps = touched(deployed, rendered);
    let vpc = crate::emr_security_groups::removed_vpc(deployed, rendered);
    if apps.is_empty() && vpc.is_none() {
        return Ok(());
    }
    let held = crate::cloudformation::status::resources(&aws.cfn, stack).await?;
    let physical = |id: &str| {
        held.iter()
            .find(|r| r.logical_id == id)
            .and_then(|r| r.physical_id.clone())
    };
    let apps: Vec<(String, String)> = apps
        .into_iter()
        .filter_map(|id| physical(&id).map(|p| (id, p)))
        .collect();
    stop_for(aws, &apps, runs, what).await?;
    if let Some(logical) = vpc {
        if let Some(id) = physical(&logical) {
            crate::emr_security_groups::clear(aws, &logical, &id, what).await?;
        }
    }
    Ok(())
}

/// Stops each of `applications` (logical id, application id) so that CloudFormation may
/// change or delete it; `what` names the operation in what is printed.
async fn stop_for(
    aws: &Aws,
    applications: &[(String, String)],
    runs: Runs,
    what: &str,
) -> anyhow::Result<()> {
    let client = aws_sdk_emrserverless::Client::new(&aws.conf);
    for (logical_id, app) in applications {
        stop(&client, logical_id, app, runs, what, poll()).await?;
    }
    Ok(())
}

const ACTIVE: [JobRunState; 5] = [
    JobRunState::Submitted,
    JobRunState::Pending,
    JobRunState::Scheduled,
    JobRunState::Running,
    JobRunState::Queued,
];

async fn state(
    client: &aws_sdk_emrserverless::Client,
    app: &str,
) -> anyhow::Result<Option<ApplicationState>> {
    match client.get_application().application_id(app).send().await {
        Ok(out) => Ok(out.application().map(|a| a.state().clone())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(failed(format!("GetApplication {app}"), e)),
    }
}

async fn active_runs(
    client: &aws_sdk_emrserverless::Client,
    app: &str,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut pages = client
        .list_job_runs()
        .application_id(app)
        .set_states(Some(ACTIVE.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed(format!("ListJobRuns of application {app}"), e))?;
        ids.extend(page.job_runs().iter().map(|r| r.id().to_owned()));
    }
    Ok(ids)
}

async fn stop(
    client: &aws_sdk_emrserverless::Client,
    logical_id: &str,
    app: &str,
    runs: Runs,
    what: &str,
    every: Duration,
) -> anyhow::Result<()> {
    let mut said = String::new();
    let mut say = |line: String| {
        if line != said {
            eprintln!("{line}");
            said = line;
        }
    };
    loop {
        let Some(s) = state(client, app).await? else {
            return Ok(()); // gone already
        };
        match s {
            ApplicationState::Created
            | ApplicationState::Stopped
            | ApplicationState::Terminated => return Ok(()),
            ApplicationState::Started => {
                let active = active_runs(client, app).await?;
                if active.is_empty() {
                    match client.stop_application().application_id(app).send().await {
                        Ok(_) => say(format!(
                            "{logical_id}: stopping application {app} before {what}"
                        )),
                        // A run arrived between the list and the stop: look again.
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_validation_exception()) => {}
                        Err(e) => return Err(failed(format!("StopApplication {app}"), e)),
                    }
                } else if runs == Runs::Cancel {
                    for run in &active {
                        client
                            .cancel_job_run()
                            .application_id(app)
                            .job_run_id(run)
                            .send()
                            .await
                            .map_err(|e| failed(format!("CancelJobRun {run}"), e))
                            .with_context(|| {
                                format!("{logical_id}: cancelling job runs before {what}")
                            })?;
                    }
                    say(format!(
                        "{logical_id}: cancelled {} job run(s) of application {app} ({}) before {what} (--cancel-runs)",
                        active.len(),
                        active.join(", ")
                    ));
                } else {
                    say(format!(
                        "{logical_id}: waiting for {} job run(s) of application {app} to end before {what} ({}; --cancel-runs cancels them)",
                        active.len(),
                        active.join(", ")
                    ));
                }
            }
            other => say(format!(
                "{logical_id}: waiting for application {app} to leave {} before {what}",
                other.as_str()
            )),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the emulator cannot produce on demand: a run submitted between ListJobRuns and
    /// StopApplication (AWS answers ValidationException), and an application STOPPING. The
    /// deployer looks again and stops it once no run is active. Relies on aws-smithy-mocks.
    #[tokio::test]
    async fn a_run_arriving_before_the_stop_is_waited_for_then_the_application_stops() {
        use aws_sdk_emrserverless::operation::get_application::GetApplicationOutput;
        use aws_sdk_emrserverless::operation::list_job_runs::ListJobRunsOutput;
        use aws_sdk_emrserverless::operation::stop_application::{
            StopApplicationError, StopApplicationOutput,
        };
        use aws_sdk_emrserverless::types::error::ValidationException;
        use aws_sdk_emrserverless::types::{Application, ApplicationState, JobRunSummary};
        use aws_smithy_mocks::{mock, MockResponseInterceptor, RuleMode};

        let app = |state: ApplicationState| {
            GetApplicationOutput::builder()
                .application(
                    Application::builder()
                        .application_id("00app")
                        .name("pdcase-alice-spark")
                        .arn("arn:aws:emr-serverless:us-east-1:1:/applications/00app")
                        .release_label("emr-7.5.0")
                        .r#type("Spark")
                        .state(state)
                        .created_at(aws_smithy_types::DateTime::from_secs(0))
                        .updated_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        };
        let run = JobRunSummary::builder()
            .application_id("00app")
            .id("00run")
            .arn("arn:run")
            .created_by("me")
            .created_at(aws_smithy_types::DateTime::from_secs(0))
            .updated_at(aws_smithy_types::DateTime::from_secs(0))
            .execution_role("arn:role")
            .state(JobRunState::Running)
            .state_details("")
            .release_label("emr-7.5.0")
            .build()
            .unwrap();
        let get = mock!(aws_sdk_emrserverless::Client::get_application)
            .sequence()
            .output(move || app(ApplicationState::Started))
            .times(3)
            .output(move || app(ApplicationState::Stopping))
            .output(move || app(ApplicationState::Stopped))
            .build();
        let list = mock!(aws_sdk_emrserverless::Client::list_job_runs)
            .sequence()
            // Nothing active; then the run that arrived; then nothing again.
            .output(|| {
                ListJobRunsOutput::builder()
                    .set_job_runs(Some(vec![]))
                    .build()
                    .unwrap()
            })
            .output(move || {
                ListJobRunsOutput::builder()
                    .job_runs(run.clone())
                    .build()
                    .unwrap()
            })
            .output(|| {
                ListJobRunsOutput::builder()
                    .set_job_runs(Some(vec![]))
                    .build()
                    .unwrap()
            })
            .build();
        let stop_calls = mock!(aws_sdk_emrserverless::Client::stop_application)
            .sequence()
            .error(|| {
                StopApplicationError::ValidationException(
                    ValidationException::builder()
                        .message("Application 00app has 1 job run(s) scheduled or running")
                        .build()
                        .unwrap(),
                )
            })
            .output(|| StopApplicationOutput::builder().build())
            .build();
        let interceptor = MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&get)
            .with_rule(&list)
            .with_rule(&stop_calls);
        let conf = aws_sdk_emrserverless::Config::builder()
            .behavior_version(aws_sdk_emrserverless::config::BehaviorVersion::latest())
            .region(aws_sdk_emrserverless::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_emrserverless::config::Credentials::new(
                "a", "b", None, None, "test",
            ))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        let client = aws_sdk_emrserverless::Client::from_conf(conf);
        stop(
            &client,
            "EmrApplication",
            "00app",
            Runs::Wait,
            "the update",
            Duration::from_millis(1),
        )
        .await
        .unwrap();
        assert_eq!(stop_calls.num_calls(), 2, "refused once, then stopped");
        assert_eq!(list.num_calls(), 3);
        assert_eq!(get.num_calls(), 5, "until STOPPED");
    }

    #[test]
    fn only_changed_or_removed_applications_are_touched() {
        let app = json!({"Type": APPLICATION_TYPE, "Properties": {"Name": "a", "MaximumCapacity": {"Cpu": "8 vCPU"}}});
        let deployed =
            json!({"Resources": {"EmrApplication": app, "Other": {"Type": "AWS::SNS::Topic"}}});
        assert!(touched(&deployed, Some(&deployed)).is_empty());
        let mut changed = deployed.clone();
        changed["Resources"]["EmrApplication"]["Properties"]["MaximumCapacity"]["Cpu"] =
            json!("16 vCPU");
        assert_eq!(touched(&deployed, Some(&changed)), ["EmrApplication"]);
        let removed = json!({"Resources": {"Other": {"Type": "AWS::SNS::Topic"}}});
        assert_eq!(touched(&deployed, Some(&removed)), ["EmrApplication"]);
        assert_eq!(touched(&deployed, None), ["EmrApplication"]);
        assert!(
            touched(&removed, Some(&deployed)).is_empty(),
            "a new one is not touched"
        );
    }
}
