//! Whether a run fits the function it runs in, decided before anything is written.
//!
//! Lambda stops a function at its timeout and kills it past its memory: a run cut off there
//! publishes nothing (the manifests switch last), but it costs the whole timeout and says
//! only "timed out". So the function engine first compares the input's size with what the
//! function can do in the time it has left and the memory it has, and refuses, naming the
//! setting to change, when it cannot.
//!
//! The model is linear and conservative, from `bench/site_events.py` (docs/BENCHMARKS.md):
//! - time: the scan processes [`BYTES_PER_SECOND_PER_VCPU`] of NDJSON per vCPU, and Lambda gives
//!   a function one vCPU per 1,769 MB of memory ("Configuring Lambda function memory", Lambda
//!   developer guide); S3 delivers no more than [`S3_BYTES_PER_SECOND`] per connection, and
//!   the function reads one span per vCPU, each with [`crate::storage::prefetch::DEPTH`]
//!   ranged GETs in flight ([`super::spans`]; one stream per object before stop 37);
//! - memory: a fixed part (the runtime, the windows, the event buffer) and the
//!   groups, which grow with the input at most [`GROUP_BYTES_PER_INPUT_BYTE`].

use std::time::Duration;

/// Scan speed per vCPU, well below what was measured here (1,533 MB in 4.7 to 6.1 s on
/// two cores, docs/BENCHMARKS.md: 125 to 160 MB/s per core; a Lambda vCPU is not measured).
pub const BYTES_PER_SECOND_PER_VCPU: f64 = 70e6;
/// One S3 GET stream (connection) inside a function, conservatively.
pub const S3_BYTES_PER_SECOND: f64 = 80e6;
/// Memory of a run besides the groups: runtime, blocks in flight, event buffers, Parquet
/// (measured: a peak of 360 to 421 MiB for 1,533 MB of events, groups included).
pub const FIXED_MEMORY_BYTES: f64 = 400e6;
/// Distinct sessions, students and pages, per byte of input (a conservative bound: the whole
/// peak above is 0.26 per byte).
pub const GROUP_BYTES_PER_INPUT_BYTE: f64 = 0.05;
/// Time kept for writing the aggregates, publishing, and Lambda's own overhead.
pub const MARGIN: Duration = Duration::from_secs(10);
/// Memory Lambda gives per vCPU.
pub const MB_PER_VCPU: f64 = 1769.0;

/// The function a run has: its memory and the time left before its timeout.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub memory_mb: u32,
    pub remaining: Duration,
}

/// The largest input a function of `limits` handles, and which limit sets it.
pub fn capacity(limits: Limits) -> (u64, Bound) {
    let vcpus = (f64::from(limits.memory_mb) / MB_PER_VCPU).clamp(0.07, 6.0);
    let speed = (BYTES_PER_SECOND_PER_VCPU * vcpus).min(S3_BYTES_PER_SECOND * streams(vcpus));
    let seconds = limits.remaining.saturating_sub(MARGIN).as_secs_f64();
    let by_time = speed * seconds;
    let by_memory = ((f64::from(limits.memory_mb) * 1e6 - FIXED_MEMORY_BYTES)
        / GROUP_BYTES_PER_INPUT_BYTE)
        .max(0.0);
    if by_time <= by_memory {
        (by_time as u64, Bound::Time)
    } else {
        (by_memory as u64, Bound::Memory)
    }
}

/// The S3 connections a function of `vcpus` reads through: a span per vCPU, each with
/// [`crate::storage::prefetch::DEPTH`] ranged GETs in flight.
pub fn streams(vcpus: f64) -> f64 {
    vcpus.ceil().max(1.0) * crate::storage::prefetch::DEPTH as f64
}

/// Which of the function's limits bounds its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    Time,
    Memory,
}

/// The refusal: the input is larger than the function handles.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the site events under {events} are {} MB, more than this function can process ({} MB with {memory_mb} MB of memory and {}s left of its timeout; its {}); nothing was written. Run base b on EMR: set `base_b_engine: emr` for stage {stage} in the pipeline config and deploy (or raise `lambda.{}`)",
    input_bytes / 1_000_000, capacity / 1_000_000, remaining.as_secs(),
    match bound { Bound::Time => "time is the limit", Bound::Memory => "memory is the limit" },
    match bound { Bound::Time => "timeout_seconds", Bound::Memory => "memory_mb" }
)]
pub struct TooLarge {
    pub events: String,
    pub stage: String,
    pub input_bytes: u64,
    pub capacity: u64,
    pub memory_mb: u32,
    pub remaining: Duration,
    pub bound: Bound,
}

/// Refuses `input_bytes` when a function of `limits` cannot process them.
pub fn check(input_bytes: u64, limits: Limits, stage: &str, events: &str) -> Result<(), TooLarge> {
    let (capacity, bound) = capacity(limits);
    if input_bytes <= capacity {
        return Ok(());
    }
    Err(TooLarge {
        events: events.to_string(),
        stage: stage.to_string(),
        input_bytes,
        capacity,
        memory_mb: limits.memory_mb,
        remaining: limits.remaining,
        bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_a_small_timeout_and_memory_a_small_function() {
        let default = Limits {
            memory_mb: 2048,
            remaining: Duration::from_secs(60),
        };
        let (bytes, bound) = capacity(default);
        assert_eq!(bound, Bound::Time);
        // 50 s at 1.16 vCPU's scan: below S3's eight connections (two spans, four each).
        assert_eq!(streams(2048.0 / MB_PER_VCPU), 8.0);
        let speed = BYTES_PER_SECOND_PER_VCPU * 2048.0 / MB_PER_VCPU;
        assert!(speed < 8.0 * S3_BYTES_PER_SECOND);
        assert_eq!(bytes, (50.0 * speed) as u64);
        let small = Limits {
            memory_mb: 512,
            remaining: Duration::from_secs(900),
        };
        assert_eq!(capacity(small).1, Bound::Memory);
        assert!(check(3_000_000_000, default, "alice", "s3://src/b/").is_ok());
        let e = check(5_000_000_000, default, "alice", "s3://src/b/").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("5000 MB"), "{text}");
        assert!(text.contains("time is the limit"), "{text}");
        assert!(
            text.contains("`base_b_engine: emr` for stage alice"),
            "{text}"
        );
        assert!(text.contains("lambda.timeout_seconds"), "{text}");
    }

    #[test]
    fn no_time_left_is_no_capacity() {
        let l = Limits {
            memory_mb: 10240,
            remaining: Duration::from_secs(5),
        };
        assert_eq!(capacity(l).0, 0);
    }
}
