//! Progress of the historical sync: blocks done, events applied, rate and ETA. On a
//! terminal one line is redrawn in place; otherwise a log line is written every
//! [`PROGRESS_LOG_INTERVAL`].

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Interval between progress log lines when stderr is not a terminal.
pub const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// Interval between redraws of the progress line on a terminal.
pub const PROGRESS_DRAW_INTERVAL: Duration = Duration::from_millis(250);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A redrawn line on a terminal, log lines otherwise.
    Auto,
    /// Log lines only.
    Lines,
    /// Nothing.
    Off,
}

/// One progress reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProgressSnapshot {
    /// Blocks processed since the start of this sync.
    pub blocks_done: u64,
    /// Blocks in this sync (start to target).
    pub blocks_total: u64,
    /// Events handled since the start (applied and malformed).
    pub events: u64,
    /// Of which malformed.
    pub malformed: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

impl ProgressSnapshot {
    /// Events per second so far.
    pub fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Estimated time left, from the block rate so far.
    pub fn eta(&self) -> Option<Duration> {
        if self.blocks_done == 0 || self.elapsed.is_zero() {
            return None;
        }
        let left = self.blocks_total.saturating_sub(self.blocks_done) as f64;
        let per_block = self.elapsed.as_secs_f64() / self.blocks_done as f64;
        Some(Duration::from_secs_f64(left * per_block))
    }

    /// The progress line.
    pub fn line(&self, block: u64, target: u64) -> String {
        let pct = if self.blocks_total == 0 {
            100.0
        } else {
            100.0 * self.blocks_done as f64 / self.blocks_total as f64
        };
        let eta = self
            .eta()
            .map(format_duration)
            .unwrap_or_else(|| "?".into());
        format!(
            "contract sync: block {block}/{target} ({pct:.1}%), {} events ({} malformed), {:.0} events/s, ETA {eta}",
            self.events,
            self.malformed,
            self.events_per_s()
        )
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Tracks and shows the progress of one historical sync.
#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    tty: bool,
    start_block: u64,
    target: u64,
    started: Instant,
    last_shown: Option<Instant>,
    drawn: bool,
    events: u64,
    malformed: u64,
}

impl Progress {
    /// Starts tracking a sync from `start_block` to `target`.
    pub fn new(mode: ProgressMode, start_block: u64, target: u64) -> Self {
        Self {
            mode,
            tty: mode == ProgressMode::Auto && std::io::stderr().is_terminal(),
            start_block,
            target: target.max(start_block),
            started: Instant::now(),
            last_shown: None,
            drawn: false,
            events: 0,
            malformed: 0,
        }
    }

    /// Moves the target (the head moved during the sync).
    pub fn set_target(&mut self, target: u64) {
        self.target = target.max(self.start_block);
    }

    /// The current reading, with `block` the last block done.
    pub fn snapshot(&self, block: u64) -> ProgressSnapshot {
        ProgressSnapshot {
            blocks_done: (block + 1).saturating_sub(self.start_block),
            blocks_total: (self.target + 1).saturating_sub(self.start_block),
            events: self.events,
            malformed: self.malformed,
            elapsed: self.started.elapsed(),
        }
    }

    /// Records progress up to `block` and shows it when due.
    pub fn update(&mut self, block: u64, applied: u64, malformed: u64) {
        self.events += applied + malformed;
        self.malformed += malformed;
        let interval = if self.tty {
            PROGRESS_DRAW_INTERVAL
        } else {
            PROGRESS_LOG_INTERVAL
        };
        if self.mode == ProgressMode::Off || self.last_shown.is_some_and(|t| t.elapsed() < interval)
        {
            return;
        }
        self.last_shown = Some(Instant::now());
        self.show(block);
    }

    fn show(&mut self, block: u64) {
        let line = self.snapshot(block).line(block, self.target);
        if self.tty {
            let mut err = std::io::stderr().lock();
            // A failed write to the terminal only loses a progress line.
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            self.drawn = true;
        } else {
            tracing::info!("{line}");
        }
    }

    /// Shows the final line.
    pub fn finish(&mut self, block: u64) {
        if self.mode == ProgressMode::Off {
            return;
        }
        self.show(block);
        if self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_blocks_events_rate_and_eta() {
        let s = ProgressSnapshot {
            blocks_done: 250,
            blocks_total: 1000,
            events: 500,
            malformed: 3,
            elapsed: Duration::from_secs(10),
        };
        assert_eq!(s.eta(), Some(Duration::from_secs(30)));
        assert_eq!(
            s.line(1249, 1999),
            "contract sync: block 1249/1999 (25.0%), 500 events (3 malformed), 50 events/s, ETA 30.0s"
        );
        assert_eq!(format_duration(Duration::from_secs(3725)), "1h02m");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn counts_accumulate() {
        let mut p = Progress::new(ProgressMode::Off, 100, 199);
        p.update(149, 10, 2);
        p.update(199, 5, 0);
        let s = p.snapshot(199);
        assert_eq!(
            (s.blocks_done, s.blocks_total, s.events, s.malformed),
            (100, 100, 17, 2)
        );
    }
}
