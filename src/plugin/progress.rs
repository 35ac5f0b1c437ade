//! A one-line progress indicator on stderr for long plugin operations (release,
//! install of big plugins).
//!
//! It is drawn only when the CLI edge said stderr is a terminal, only once the work has
//! lasted long enough to be worth it, at most ten times a second, and it erases itself
//! when done. When disabled it does nothing at all, so output captured by scripts and
//! tests never contains it.

use std::io::Write;
use std::time::{Duration, Instant};

/// How long an operation runs before its progress is shown.
const SHOW_AFTER: Duration = Duration::from_millis(300);
/// The shortest time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Progress of one operation.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    what: String,
    started: Instant,
    last_drawn: Option<Instant>,
}

impl Progress {
    /// A progress line saying `what` (e.g. "installing `foo`"); drawn only if `enabled`.
    pub fn new(enabled: bool, what: impl Into<String>) -> Self {
        Progress {
            enabled,
            what: what.into(),
            started: Instant::now(),
            last_drawn: None,
        }
    }

    /// A progress that never draws.
    pub fn hidden() -> Self {
        Progress::new(false, String::new())
    }

    /// Reports `done` out of `total` `unit`s.
    pub fn update(&mut self, done: u64, total: u64, unit: &str) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.started) < SHOW_AFTER
            || self
                .last_drawn
                .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
        {
            return;
        }
        self.last_drawn = Some(now);
        let percent = (done.saturating_mul(100)).checked_div(total).unwrap_or(100);
        let line = format!("\r\x1b[K{}: {done}/{total} {unit} ({percent}%)", self.what);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    /// Erases the line if it was drawn.
    pub fn finish(&mut self) {
        if self.last_drawn.take().is_some() {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
