//! Process and thread CPU time, read where the Go node's Prometheus client reads them
//! (`/proc/self/stat`, the `process_*` collector of client_golang), and each shard thread's
//! own CPU clock.

use std::time::Duration;

/// What `/proc/self/stat` says about the process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStat {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub resident_bytes: u64,
    /// Start time since the Unix epoch, in seconds.
    pub start_time_seconds: f64,
}

/// Why `/proc` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The file did not have the expected fields.
    #[error("{0}: unexpected format")]
    Format(&'static str),
}

/// Parses the fields of a `/proc/<pid>/stat` line after the command name (which may hold
/// spaces and parentheses, so the last `)` ends it). Returns utime, stime (clock ticks),
/// starttime (ticks after boot) and rss (pages).
pub fn parse_stat(line: &str) -> Option<(u64, u64, u64, u64)> {
    let rest = &line[line.rfind(')')? + 1..];
    // Fields from 3 (state) on; utime is field 14, stime 15, starttime 22, rss 24.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let at = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some((at(14)?, at(15)?, at(22)?, at(24)?))
}

/// The boot time in seconds since the Unix epoch (`btime` of `/proc/stat`).
fn boot_time() -> Result<u64, ProcError> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| ProcError::Io("/proc/stat", e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .ok_or(ProcError::Format("/proc/stat"))
}

/// Reads the process's CPU time, memory and start time.
pub fn process_stat() -> Result<ProcessStat, ProcError> {
    let line = std::fs::read_to_string("/proc/self/stat")
        .map_err(|e| ProcError::Io("/proc/self/stat", e))?;
    let (utime, stime, start, rss) =
        parse_stat(&line).ok_or(ProcError::Format("/proc/self/stat"))?;
    // SAFETY: sysconf only reads a configuration value; it has no memory preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if ticks <= 0 || page <= 0 {
        return Err(ProcError::Format("sysconf"));
    }
    let ticks = ticks as f64;
    Ok(ProcessStat {
        cpu_seconds: (utime + stime) as f64 / ticks,
        resident_bytes: rss.saturating_mul(page as u64),
        start_time_seconds: boot_time()? as f64 + start as f64 / ticks,
    })
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that outlives the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_odd_command_names() {
        let line = "4242 (ssv (node) x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 777 1000 300 \
                    18446744073709551615";
        assert_eq!(parse_stat(line), Some((250, 50, 777, 300)));
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = process_stat().expect("/proc/self/stat readable on Linux");
        assert!(s.resident_bytes > 0);
        assert!(s.start_time_seconds > 1.0e9);
        let t0 = thread_cpu_time().expect("thread CPU clock");
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(thread_cpu_time().expect("thread CPU clock") > t0, "{x}");
    }
}
