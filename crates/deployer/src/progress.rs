//! A wait that says what it waits for: a line on standard error when the awaited state
//! changes, and every 10 seconds while it does not, with the time waited. Quiet for waits
//! under 2 seconds (most Athena queries), so a fast verb prints nothing extra.

use std::time::{Duration, Instant};

/// Progress of one wait.
pub struct Progress {
    what: String,
    started: Instant,
    last: Option<(String, Instant)>,
}

impl Progress {
    /// Starts the clock for `what` (such as `query 1234` or `drift detection on pdcase-alice`).
    pub fn start(what: impl Into<String>) -> Progress {
        Progress {
            what: what.into(),
            started: Instant::now(),
            last: None,
        }
    }

    /// The line to print for `state` now, if one is due.
    pub fn line(&mut self, state: &str) -> Option<String> {
        let now = Instant::now();
        let waited = now - self.started;
        if waited < Duration::from_secs(2) {
            return None;
        }
        let due = match &self.last {
            None => true,
            Some((s, at)) => s != state || now - *at >= Duration::from_secs(10),
        };
        if !due {
            return None;
        }
        self.last = Some((state.to_owned(), now));
        Some(format!("{}: {state} ({}s)", self.what, waited.as_secs()))
    }

    /// Prints [`Progress::line`] on standard error.
    pub fn tick(&mut self, state: &str) {
        if let Some(line) = self.line(state) {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_a_new_state_at_once_and_the_same_one_every_ten_seconds() {
        let mut p = Progress::start("query q");
        assert_eq!(p.line("RUNNING"), None, "quiet for the first 2 s");
        p.started -= Duration::from_secs(3);
        assert_eq!(p.line("RUNNING").as_deref(), Some("query q: RUNNING (3s)"));
        assert_eq!(p.line("RUNNING"), None);
        assert!(p.line("QUEUED").is_some(), "a new state");
        if let Some((_, at)) = &mut p.last {
            *at -= Duration::from_secs(11);
        }
        assert!(p.line("QUEUED").is_some(), "ten seconds on");
    }
}
