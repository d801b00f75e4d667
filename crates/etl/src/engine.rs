//! Which engine builds base a for one run on an `auto` stage: the ETL function alone while it
//! reads the exports well within its time, the sharded engine ([`crate::sharded`]) past that.
//!
//! The model is the site-events function's ([`crate::site_events::fit`]), with base a's own
//! speed: under a Lambda size's CPU the ETL parses about 409 MB/s per vCPU (docs/BENCHMARKS.md,
//! "Lambda's limits, simulated"); one S3 connection inside a function is taken at
//! [`S3_BYTES_PER_SECOND`], and the function reads one span per vCPU, each with
//! [`crate::storage::prefetch::DEPTH`] ranged GETs in flight.
//! A run goes to the function only when it needs at most half the time the function has, so a
//! slower day than the model's still finishes; base a holds no per-row state, so memory does
//! not bound it (65 to 84 MiB peak at 1M students, the same page).

use serde::Serialize;

pub use crate::site_events::fit::{streams, Limits, MARGIN, MB_PER_VCPU, S3_BYTES_PER_SECOND};

/// Base a's parse speed per vCPU, about half of what was measured (409 MB/s).
pub const BYTES_PER_SECOND_PER_VCPU: f64 = 200e6;

/// An engine of base a.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Function,
    Sharded,
}

impl Engine {
    /// `function` or `sharded`, as reports and markers name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Function => "function",
            Engine::Sharded => "sharded",
        }
    }
}

/// What [`choose`] decided, and from what.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Choice {
    pub engine: Engine,
    /// The exports' bytes.
    pub input_bytes: u64,
    /// The most bytes the function takes in half of its time.
    pub function_capacity: u64,
}

/// The bytes a function of `limits` reads and transforms in half of the time it has.
pub fn function_capacity(limits: Limits) -> u64 {
    let vcpus = (f64::from(limits.memory_mb) / MB_PER_VCPU).clamp(0.07, 6.0);
    let speed = (BYTES_PER_SECOND_PER_VCPU * vcpus).min(S3_BYTES_PER_SECOND * streams(vcpus));
    let seconds = limits.remaining.saturating_sub(MARGIN).as_secs_f64() / 2.0;
    (speed * seconds) as u64
}

/// The engine for exports of `input_bytes` in a function of `limits`.
pub fn choose(input_bytes: u64, limits: Limits) -> Choice {
    let function_capacity = function_capacity(limits);
    Choice {
        engine: if input_bytes <= function_capacity {
            Engine::Function
        } else {
            Engine::Sharded
        },
        input_bytes,
        function_capacity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(memory_mb: u32, seconds: u64) -> Limits {
        Limits {
            memory_mb,
            remaining: Duration::from_secs(seconds),
        }
    }

    #[test]
    fn a_function_takes_what_it_reads_in_half_its_time_and_no_more() {
        // 1,769 MB: one vCPU at 200 MB/s bounds it (its span's four connections would give
        // 320 MB/s); 900 s less the margin, halved.
        let one = limits(1769, 900);
        let cap = function_capacity(one);
        assert_eq!(cap, (200e6 * 445.0) as u64);
        // Two vCPUs: twice the CPU, still under their spans' eight connections.
        assert_eq!(function_capacity(limits(3538, 900)), (400e6 * 445.0) as u64);
        assert_eq!(choose(cap, one).engine, Engine::Function);
        assert_eq!(choose(cap + 1, one).engine, Engine::Sharded);
        // A larger function has more vCPUs and streams; less time left, less capacity.
        assert!(function_capacity(limits(3538, 900)) > cap);
        assert!(function_capacity(limits(1769, 300)) < cap);
        // A function with no time left takes nothing.
        assert_eq!(function_capacity(limits(1769, 5)), 0);
    }
}
