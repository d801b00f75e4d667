//! One run per base at a time: a lease object written with S3's conditional writes.
//!
//! SNS delivers a message at least once, Lambda's asynchronous queue may invoke a function
//! twice for one event, and a user may trigger twice; two runs of one base at once removed
//! each other's files and left the markers of one over the tables of the other (issue 26).
//! A run therefore takes its base's lease ([`stack_model::warehouse::lease_key`]) before it
//! stages anything:
//!
//! - no lease object: written with `If-None-Match: *`;
//! - a lease released, or lapsed (its expiry passed: its holder was killed), is taken over
//!   with `If-Match` on the ETag just read;
//!
//! so of two runs racing for it exactly one write succeeds, and the other reads the winner.
//! A lease's expiry is longer than its holder can live (a Lambda function's deadline, an EMR
//! Serverless job run's execution timeout), so a live holder's lease never lapses. Before it
//! switches a table, the holder confirms with a conditional write on its own ETag that the
//! lease is still its own (and extends it); it releases the lease when it ends, whatever the
//! outcome, so the next run does not wait for the expiry.
//!
//! Relies on S3's documented conditional writes ("How to prevent object overwrites with
//! conditional writes", S3 user guide); the local folder does the same under a file lock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::storage::{Condition, Storage};
use crate::warehouse::{lease_key, Base};

/// What the lease object holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    /// The run that holds (or last held) the lease.
    pub run: String,
    /// What runs it: `etl function`, `site-events function`, `spark job run <id>`,
    /// `local (pid N on HOST)`.
    pub holder: String,
    /// When it was taken, RFC 3339.
    pub taken: String,
    /// Unix seconds after which the lease has lapsed.
    pub expires: i64,
    /// Its holder ended and gave it back.
    #[serde(default)]
    pub released: bool,
    /// Drawn at random when the lease is taken: tells this holder's own writes from another's
    /// (see [`Lease::confirm_as`]). Empty in a lease the Spark job wrote in a local folder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

impl LeaseBody {
    /// Whether another run may take it at `now` (Unix seconds).
    pub fn free(&self, now: i64) -> bool {
        self.released || now >= self.expires
    }
}

/// Why a run did not get, or lost, its base's lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds it; waited `waited` for it.
    #[error(
        "base {base} is being built by run {run} ({holder}, since {taken}); this run waited {waited}s and did nothing; \
         it runs again once that run ends, or after {expires_in}s if that run was killed"
    )]
    Held {
        base: &'static str,
        run: String,
        holder: String,
        taken: String,
        waited: u64,
        expires_in: i64,
    },
    /// The run's lease was taken over (it outlived its expiry): it must not switch a table.
    #[error("run {run} lost base {base}'s lease to run {by}: it switched no table")]
    Lost {
        base: &'static str,
        run: String,
        by: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How long to wait for a lease and to hold it.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// The lease lapses this long after it is taken or confirmed: longer than its holder can
    /// live.
    pub hold: Duration,
    /// How long a second run waits for the lease before it refuses.
    pub wait: Duration,
    /// How often it looks again while it waits.
    pub poll: Duration,
}

/// A lease this run holds.
pub struct Lease<'a> {
    storage: &'a dyn Storage,
    base: Base,
    body: LeaseBody,
    etag: String,
    hold: Duration,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn encode(body: &LeaseBody) -> Vec<u8> {
    serde_json::to_vec(body).expect("a lease serializes")
}

/// The holder name of a run in a process of this machine: `<what> (pid N on HOST)`.
pub fn local_holder(what: &str) -> String {
    format!("{what} (pid {} on {})", std::process::id(), host())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether a lease names a process of this machine that is gone (killed): its lease is free
/// at once, not at its expiry. Linux only (`/proc`); elsewhere a killed run's lease lapses.
pub fn local_holder_ended(l: &LeaseBody) -> bool {
    let Some(rest) = l.holder.split("(pid ").nth(1) else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(" on ") else {
        return false;
    };
    let host_named = rest.trim_end_matches(')');
    host_named == host()
        && pid.parse::<u32>().is_ok_and(|p| p != std::process::id())
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The base's lease as it stands (`None`: never taken).
pub fn read(storage: &dyn Storage, base: Base) -> Result<Option<LeaseBody>, StorageError> {
    Ok(storage
        .get(&lease_key(base))?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// The lease `run` took in another process (a sharded run's planner), to confirm and release
/// it here (its publisher), held for `hold` from the next confirmation. [`LeaseError::Lost`]
/// when another run holds it now, or it was released.
pub fn resume<'a>(
    storage: &'a dyn Storage,
    base: Base,
    run: &str,
    hold: Duration,
) -> Result<Lease<'a>, LeaseError> {
    let by = match storage.get_tagged(&lease_key(base))? {
        Some((bytes, etag)) => match serde_json::from_slice::<LeaseBody>(&bytes) {
            Ok(body) if body.run == run && !body.released => {
                return Ok(Lease {
                    storage,
                    base,
                    body,
                    etag,
                    hold,
                })
            }
            Ok(body) => body.run,
            Err(_) => "(not a lease)".into(),
        },
        None => "(none)".into(),
    };
    Err(LeaseError::Lost {
        base: base.folder(),
        run: run.to_owned(),
        by,
    })
}

/// Takes `base`'s lease for `run`, waiting up to `terms.wait` while another run holds it.
///
/// A lease held by a process of this machine that is gone is free at once
/// ([`local_holder_ended`]).
pub fn take<'a>(
    storage: &'a dyn Storage,
    base: Base,
    run: &str,
    holder: &str,
    terms: Terms,
) -> Result<Lease<'a>, LeaseError> {
    take_unless_ended(storage, base, run, holder, terms, &local_holder_ended)
}

/// [`take`], also taking over a lease whose holder `ended` says has ended: an EMR Serverless
/// job run cancelled or failed before its last step released the lease, which EMR Serverless
/// reports (`GetJobRun`), holds it no longer. ([`take`] passes [`local_holder_ended`].)
pub fn take_unless_ended<'a>(
    storage: &'a dyn Storage,
    base: Base,
    run: &str,
    holder: &str,
    terms: Terms,
    ended: &dyn Fn(&LeaseBody) -> bool,
) -> Result<Lease<'a>, LeaseError> {
    let key = lease_key(base);
    let started = std::time::Instant::now();
    loop {
        let current = storage.get_tagged(&key)?;
        let body = LeaseBody {
            run: run.to_owned(),
            holder: holder.to_owned(),
            taken: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            expires: now() + terms.hold.as_secs() as i64,
            released: false,
            token: uuid::Uuid::new_v4().to_string(),
        };
        let condition = match &current {
            None => Some(Condition::Absent),
            Some((bytes, etag)) => match serde_json::from_slice::<LeaseBody>(bytes) {
                // One run, one lease: a duplicate of a run already holding it is not a second run.
                Ok(l) if l.free(now()) => Some(Condition::Matches(etag)),
                Ok(l) if l.run == run => Some(Condition::Matches(etag)),
                Ok(l) if ended(&l) => {
                    tracing::info!(run = %l.run, holder = %l.holder, "the lease's holder has ended; taking it over");
                    Some(Condition::Matches(etag))
                }
                Ok(l) => {
                    if started.elapsed() >= terms.wait {
                        return Err(LeaseError::Held {
                            base: base.folder(),
                            run: l.run,
                            holder: l.holder,
                            taken: l.taken,
                            waited: started.elapsed().as_secs(),
                            expires_in: (l.expires - now()).max(0),
                        });
                    }
                    None
                }
                // Not a lease this code wrote: taken over, as a lapsed one.
                Err(_) => {
                    tracing::warn!(key = %storage.describe(&key), "the lease object is not a lease; taking it over");
                    Some(Condition::Matches(etag))
                }
            },
        };
        match condition {
            Some(c) => {
                if let Some(etag) = storage.put_if(&key, &encode(&body), c)? {
                    return Ok(Lease {
                        storage,
                        base,
                        body,
                        etag,
                        hold: terms.hold,
                    });
                }
                // Another run won the write, or this one did and its answer was lost (the
                // SDK then sent it again, refused): read what is there. A lease naming this
                // run is taken again above.
            }
            None => std::thread::sleep(terms.poll),
        }
    }
}

impl std::fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.storage.describe(&lease_key(self.base)))
            .field("body", &self.body)
            .field("etag", &self.etag)
            .finish()
    }
}

impl Lease<'_> {
    /// The run holding it.
    pub fn run(&self) -> &str {
        &self.body.run
    }

    /// Confirms the lease is still this run's and extends it by its hold, with one
    /// conditional write on its ETag. Call it before switching any table.
    pub fn confirm(&mut self) -> Result<(), LeaseError> {
        let holder = self.body.holder.clone();
        self.confirm_as(&holder, self.hold)
    }

    /// [`Lease::confirm`], naming a new holder and holding it for `hold` from now: the EMR
    /// starter hands the lease to the job run it started, for as long as that run may live.
    pub fn confirm_as(&mut self, holder: &str, hold: Duration) -> Result<(), LeaseError> {
        let mut body = self.body.clone();
        body.holder = holder.to_owned();
        body.expires = now() + hold.as_secs() as i64;
        match self.write(&body)? {
            Some(etag) => {
                self.body = body;
                self.etag = etag;
                self.hold = hold;
                Ok(())
            }
            None => Err(LeaseError::Lost {
                base: self.base.folder(),
                run: self.body.run.clone(),
                by: read(self.storage, self.base)?.map_or_else(|| "(none)".into(), |l| l.run),
            }),
        }
    }

    /// Writes `body` over the lease on this holder's ETag: its new ETag, or `None` when
    /// another run's write came between.
    ///
    /// A write S3 carried out whose answer was lost (a connection reset on the way back) is
    /// sent again by the SDK's retry, and S3 refuses it: the ETag it names is gone, replaced by
    /// this very write. So a refused write is read back, and a lease holding exactly `body`
    /// (its random token included) is this write's, not another run's.
    fn write(&self, body: &LeaseBody) -> Result<Option<String>, StorageError> {
        let key = lease_key(self.base);
        if let Some(etag) =
            self.storage
                .put_if(&key, &encode(body), Condition::Matches(&self.etag))?
        {
            return Ok(Some(etag));
        }
        Ok(match self.storage.get_tagged(&key)? {
            Some((bytes, etag))
                if serde_json::from_slice::<LeaseBody>(&bytes).ok().as_ref() == Some(body) =>
            {
                tracing::info!(run = %body.run, "the lease write was refused on a retry after it happened; it is this run's");
                Some(etag)
            }
            _ => None,
        })
    }

    /// Gives the lease back (a conditional write: a lease taken over stays its new holder's).
    pub fn release(self) {
        let mut body = self.body.clone();
        body.released = true;
        body.expires = now();
        match self.write(&body) {
            Ok(Some(_)) => {}
            Ok(None) => {
                tracing::warn!(run = %self.body.run, "the lease was taken over before this run released it")
            }
            Err(e) => {
                tracing::warn!(run = %self.body.run, error = %e, "could not release the lease; it lapses at its expiry")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FaultyDir, LocalDir};

    fn terms(hold: u64, wait_ms: u64) -> Terms {
        Terms {
            hold: Duration::from_secs(hold),
            wait: Duration::from_millis(wait_ms),
            poll: Duration::from_millis(20),
        }
    }

    #[test]
    fn a_second_run_is_refused_naming_the_holder_then_takes_the_released_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        let first = take(&store, Base::A, "r1", "local", terms(60, 0)).unwrap();
        let e = take(&store, Base::A, "r2", "local", terms(60, 100)).unwrap_err();
        assert!(
            matches!(&e, LeaseError::Held { run, .. } if run == "r1"),
            "{e}"
        );
        assert!(e.to_string().contains("being built by run r1"), "{e}");
        // Base b's lease is another lease.
        take(&store, Base::B, "r2", "local", terms(60, 0))
            .unwrap()
            .release();
        first.release();
        let second = take(&store, Base::A, "r2", "local", terms(60, 0)).unwrap();
        assert_eq!(read(&store, Base::A).unwrap().unwrap().run, "r2");
        second.release();
        assert!(read(&store, Base::A).unwrap().unwrap().released);
    }

    #[test]
    fn a_lapsed_lease_is_taken_over_and_its_old_holder_cannot_confirm() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        // Held for 0 s: lapsed at once, as a killed holder's lease lapses.
        // (The holders are "local": this process is alive, so only the expiry frees it.)
        let mut killed = take(&store, Base::B, "r1", "local", terms(0, 0)).unwrap();
        let mut next = take(&store, Base::B, "r2", "local", terms(60, 0)).unwrap();
        let e = killed.confirm().unwrap_err();
        assert!(
            matches!(&e, LeaseError::Lost { by, .. } if by == "r2"),
            "{e}"
        );
        next.confirm().unwrap();
        // The old holder's release leaves the new holder's lease alone.
        killed.release();
        let now_held = read(&store, Base::B).unwrap().unwrap();
        assert!(now_held.run == "r2" && !now_held.released);
    }

    /// A reset connection after S3 carried out a lease write: the SDK sends it again, S3
    /// refuses it (the ETag it names is gone, replaced by that very write), and the run must
    /// not take its own write for another run's (tests/e2e/test_faults.py injects this for
    /// real through the fault proxy; this is the rule, on a local folder).
    #[test]
    fn a_lease_write_whose_answer_was_lost_is_still_the_runs_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = FaultyDir::new(dir.path());
        // The take (which reads a lease naming its run as its own already).
        store.lose_put_if_answers(1);
        let mut lease = take(&store, Base::A, "r1", "local", terms(60, 0)).unwrap();
        // The confirm, then the release: each written, each answered "refused".
        store.lose_put_if_answers(1);
        lease.confirm().unwrap();
        store.lose_put_if_answers(1);
        assert_eq!(read(&store, Base::A).unwrap().unwrap().run, "r1");
        lease.release();
        assert!(read(&store, Base::A).unwrap().unwrap().released);
        // Another run's write in between is still another run's: the confirm is refused.
        let store = FaultyDir::new(dir.path());
        let mut first = take(&store, Base::B, "r1", "local", terms(0, 0)).unwrap();
        let _second = take(&store, Base::B, "r2", "local", terms(60, 0)).unwrap();
        assert!(matches!(first.confirm().unwrap_err(), LeaseError::Lost { by, .. } if by == "r2"));
    }

    #[test]
    fn a_lease_of_a_process_of_this_machine_that_is_gone_is_free_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let body = LeaseBody {
            run: "killed".into(),
            holder: format!("etl (pid {gone} on {})", host()),
            taken: "t".into(),
            expires: now() + 3600,
            released: false,
            token: String::new(),
        };
        assert!(local_holder_ended(&body));
        assert!(!local_holder_ended(&LeaseBody {
            holder: local_holder("etl"),
            ..body.clone()
        }));
        assert!(!local_holder_ended(&LeaseBody {
            holder: format!("etl (pid {gone} on another-host)"),
            ..body.clone()
        }));
        store.put(&lease_key(Base::A), &encode(&body)).unwrap();
        let next = take(&store, Base::A, "next", &local_holder("etl"), terms(60, 0)).unwrap();
        assert_eq!(next.run(), "next");
    }

    #[test]
    fn a_waiting_run_gets_the_lease_when_the_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        let first = take(&store, Base::A, "r1", "local", terms(60, 0)).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                take(&store, Base::A, "r2", "local", terms(60, 5_000)).map(|l| l.run().to_owned())
            });
            std::thread::sleep(Duration::from_millis(100));
            first.release();
            assert_eq!(waiter.join().unwrap().unwrap(), "r2");
        });
    }

    /// Many takers at once: exactly one wins each round (the local folder's lock stands for
    /// S3's conditional write).
    #[test]
    fn of_racing_takers_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        for round in 0..20 {
            let winners: Vec<String> = std::thread::scope(|s| {
                let takers: Vec<_> = (0..8)
                    .map(|i| {
                        let store = &store;
                        s.spawn(move || {
                            take(
                                store,
                                Base::A,
                                &format!("r{round}-{i}"),
                                "local",
                                terms(60, 0),
                            )
                            .ok()
                            .map(|l| l.run().to_owned())
                        })
                    })
                    .collect();
                takers
                    .into_iter()
                    .filter_map(|t| t.join().unwrap())
                    .collect()
            });
            assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
            // Release it for the next round.
            let held = read(&store, Base::A).unwrap().unwrap();
            assert_eq!(held.run, winners[0]);
            let (_, etag) = store.get_tagged(&lease_key(Base::A)).unwrap().unwrap();
            let mut released = held.clone();
            released.released = true;
            store
                .put_if(
                    &lease_key(Base::A),
                    &encode(&released),
                    Condition::Matches(&etag),
                )
                .unwrap()
                .unwrap();
        }
    }
}
