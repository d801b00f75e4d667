//! What happened to each run, where the user (`deployer trigger --wait`, `deployer runs`) and
//! a repeated delivery find it: a run record per run, `<base>/_runs/<run>.json`, and a claim
//! per triggering message, `<base>/_runs/messages/<message id>.json`, naming its run.
//!
//! SNS delivers a message at least once and Lambda's asynchronous queue may invoke a function
//! twice for one event ("How Lambda handles errors and retries with asynchronous invocation").
//! A delivery first claims its message: a message whose run succeeded, or is still running, is
//! a duplicate and runs nothing; a message whose run failed (Lambda retrying it) runs again,
//! under a new run id the claim then names.

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::storage::{Condition, Storage};
use crate::warehouse::{message_key, run_record_key, runs_folder, Base};

/// The version of the run record's format (`format_version`).
pub const FORMAT_VERSION: u32 = 1;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Started (or, for the Spark job, submitted) and not ended yet.
    Running,
    Succeeded,
    /// Ended with an error: `retry` says whether Lambda runs the message again.
    Failed,
}

/// One run's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format_version: u32,
    pub run: String,
    /// `a` or `b`.
    pub base: String,
    /// `etl function`, `site-events function`, `spark job`, or a local run's holder.
    pub engine: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The EMR Serverless job run of a Spark run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_run_id: Option<String>,
    /// The Step Functions execution of a sharded run of base a.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// RFC 3339.
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    pub state: RunState,
    /// Unix seconds after which a run still `running` cannot be (its function's deadline or
    /// its job run's timeout passed): it was killed.
    pub expires: i64,
    /// The run's report (its counts), when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A failed run that Lambda retries (a transient failure); `false`: it is not retried (bad
    /// input, a refused size), and the failure went to the stage's failure queue.
    #[serde(default)]
    pub retry: bool,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl RunRecord {
    /// A run starting now, that cannot live past `expires` (Unix seconds).
    pub fn started(
        base: Base,
        run: &str,
        engine: &str,
        message_id: Option<&str>,
        expires: i64,
    ) -> Self {
        RunRecord {
            format_version: FORMAT_VERSION,
            run: run.to_owned(),
            base: base.folder().to_owned(),
            engine: engine.to_owned(),
            message_id: message_id.map(str::to_owned),
            job_run_id: None,
            execution_arn: None,
            started: now_rfc3339(),
            ended: None,
            state: RunState::Running,
            expires,
            report: None,
            error: None,
            retry: false,
        }
    }

    /// This run, succeeded with `report`.
    pub fn succeeded(mut self, report: serde_json::Value) -> Self {
        self.ended = Some(now_rfc3339());
        self.state = RunState::Succeeded;
        self.report = Some(report);
        self
    }

    /// This run, failed with `error`; `retry`: Lambda runs the message again.
    pub fn failed(mut self, error: String, retry: bool, report: Option<serde_json::Value>) -> Self {
        self.ended = Some(now_rfc3339());
        self.state = RunState::Failed;
        self.error = Some(error);
        self.retry = retry;
        self.report = report;
        self
    }

    /// Whether the run may still be going at `now` (Unix seconds).
    pub fn live(&self, now: i64) -> bool {
        self.state == RunState::Running && now < self.expires
    }

    /// Writes the record (replacing the run's earlier one).
    pub fn write(&self, storage: &dyn Storage) -> Result<(), StorageError> {
        let base = if self.base == "a" { Base::A } else { Base::B };
        storage.put(
            &run_record_key(base, &self.run),
            &serde_json::to_vec_pretty(self).expect("a record serializes"),
        )
    }
}

/// The record of `run`, if any.
pub fn read(
    storage: &dyn Storage,
    base: Base,
    run: &str,
) -> Result<Option<RunRecord>, StorageError> {
    Ok(storage
        .get(&run_record_key(base, run))?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The run a message's claim names, if any.
pub fn claimed_run(
    storage: &dyn Storage,
    base: Base,
    message_id: &str,
) -> Result<Option<String>, StorageError> {
    Ok(storage
        .get(&message_key(base, message_id))?
        .and_then(|b| serde_json::from_slice::<Claim>(&b).ok())
        .map(|c| c.run))
}

#[derive(Serialize, Deserialize)]
struct Claim {
    run: String,
    /// How many runs the message has had, this one included.
    #[serde(default = "first")]
    attempt: u32,
}

fn first() -> u32 {
    1
}

/// What a delivery of a message is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The message's first run, or a run again after its run failed: run it; `attempt`
    /// counts the message's runs, this one included.
    Run { attempt: u32 },
    /// The message's run succeeded or is still running: run nothing.
    Duplicate { run: String },
}

/// Claims `message_id` for `run`, unless the message's earlier run succeeded or is still
/// running. Two deliveries at once: one claim write wins (a conditional write), the other
/// reads it.
pub fn claim(
    storage: &dyn Storage,
    base: Base,
    message_id: &str,
    run: &str,
) -> Result<Delivery, StorageError> {
    let key = message_key(base, message_id);
    loop {
        let current = storage.get_tagged(&key)?;
        let mut attempt = 1;
        let condition = match &current {
            None => Condition::Absent,
            Some((bytes, etag)) => {
                let claimed = serde_json::from_slice::<Claim>(bytes).ok();
                let prior = claimed.as_ref().map(|c| c.run.clone()).unwrap_or_default();
                let prior_attempt = claimed.map_or(0, |c| c.attempt);
                if prior == run {
                    return Ok(Delivery::Run {
                        attempt: prior_attempt,
                    });
                }
                attempt = prior_attempt + 1;
                let record = read(storage, base, &prior)?;
                let now = chrono::Utc::now().timestamp();
                match record {
                    Some(r) if r.state == RunState::Succeeded || r.live(now) => {
                        return Ok(Delivery::Duplicate { run: prior })
                    }
                    // Failed, or killed (its record outlived its expiry): run it again.
                    Some(_) => Condition::Matches(etag),
                    // Claimed and not recorded yet: the other delivery is starting.
                    None => return Ok(Delivery::Duplicate { run: prior }),
                }
            }
        };
        let body = serde_json::to_vec(&Claim {
            run: run.to_owned(),
            attempt,
        })
        .expect("a claim serializes");
        if storage.put_if(&key, &body, condition)?.is_some() {
            return Ok(Delivery::Run { attempt });
        }
    }
}

/// The records of the base's runs, newest first (run ids sort by start time), at most `limit`.
pub fn list(
    storage: &dyn Storage,
    base: Base,
    limit: usize,
) -> Result<Vec<RunRecord>, StorageError> {
    let folder = runs_folder(base);
    let mut keys: Vec<String> = storage
        .list(&folder)?
        .into_iter()
        .filter(|k| {
            let name = &k[folder.len()..];
            !name.contains('/') && name.ends_with(".json") && name != "lease.json"
        })
        .collect();
    keys.sort();
    keys.reverse();
    let mut out = Vec::new();
    for key in keys.into_iter().take(limit) {
        if let Some(r) = storage
            .get(&key)?
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            out.push(r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalDir;

    fn later() -> i64 {
        chrono::Utc::now().timestamp() + 600
    }

    #[test]
    fn a_repeated_message_runs_once_while_its_run_lives_or_after_it_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        assert_eq!(
            claim(&store, Base::A, "m1", "r1").unwrap(),
            Delivery::Run { attempt: 1 }
        );
        // Claimed, not recorded yet: the other delivery is starting.
        assert_eq!(
            claim(&store, Base::A, "m1", "r2").unwrap(),
            Delivery::Duplicate { run: "r1".into() }
        );
        let r1 = RunRecord::started(Base::A, "r1", "etl function", Some("m1"), later());
        r1.write(&store).unwrap();
        assert_eq!(
            claim(&store, Base::A, "m1", "r2").unwrap(),
            Delivery::Duplicate { run: "r1".into() }
        );
        r1.clone()
            .succeeded(serde_json::json!({"rows": 1}))
            .write(&store)
            .unwrap();
        assert_eq!(
            claim(&store, Base::A, "m1", "r3").unwrap(),
            Delivery::Duplicate { run: "r1".into() }
        );
        assert_eq!(
            claimed_run(&store, Base::A, "m1").unwrap().as_deref(),
            Some("r1")
        );
        // Another message is another run.
        assert_eq!(
            claim(&store, Base::A, "m2", "r4").unwrap(),
            Delivery::Run { attempt: 1 }
        );
    }

    #[test]
    fn a_message_whose_run_failed_or_was_killed_runs_again_under_a_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        assert_eq!(
            claim(&store, Base::B, "m1", "r1").unwrap(),
            Delivery::Run { attempt: 1 }
        );
        RunRecord::started(Base::B, "r1", "f", Some("m1"), later())
            .failed("S3 said 503".into(), true, None)
            .write(&store)
            .unwrap();
        assert_eq!(
            claim(&store, Base::B, "m1", "r2").unwrap(),
            Delivery::Run { attempt: 2 }
        );
        assert_eq!(
            claimed_run(&store, Base::B, "m1").unwrap().as_deref(),
            Some("r2")
        );
        // r2 killed: its record says running, past its expiry.
        RunRecord::started(Base::B, "r2", "f", Some("m1"), 0)
            .write(&store)
            .unwrap();
        assert_eq!(
            claim(&store, Base::B, "m1", "r3").unwrap(),
            Delivery::Run { attempt: 3 }
        );
        let runs: Vec<String> = list(&store, Base::B, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.run)
            .collect();
        assert_eq!(
            runs,
            ["r2", "r1"],
            "newest first, claims and the lease aside"
        );
    }
}
