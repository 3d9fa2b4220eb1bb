//! The node's log output: console (human) or JSON lines, to stderr or to a file that rotates
//! by size ([`RotatingFile`]: at most `keep` old files `PATH.1` (newest) .. `PATH.keep`).
//! `RUST_LOG` filters as before (default `info`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Default size at which the log file rotates. Too small and a burst of warnings rotates
/// away the start-up lines; too large and one file is unwieldy.
pub const LOG_FILE_BYTES_DEFAULT: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept besides the current one.
pub const LOG_FILES_KEPT_DEFAULT: usize = 5;
/// Most rotated files kept (a bound on the directory listing and the renames per rotation).
pub const LOG_FILES_KEPT_MAX: usize = 100;
/// Smallest rotation size: below this nearly every line would rotate.
pub const LOG_FILE_BYTES_MIN: u64 = 4096;

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Console,
    /// One JSON object per line (`timestamp`, `level`, `fields.message`, the event's fields,
    /// `target`, `span` and `spans`).
    Json,
}

/// Where and how the node logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// A file to log to instead of stderr.
    pub file: Option<PathBuf>,
    /// Size at which the file rotates.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Console,
            file: None,
            max_bytes: LOG_FILE_BYTES_DEFAULT,
            keep: LOG_FILES_KEPT_DEFAULT,
        }
    }
}

/// A log file that rotates when the next write would take it past `max_bytes`: `PATH`
/// becomes `PATH.1`, `PATH.1` becomes `PATH.2`, … and `PATH.keep` is deleted. Writes are whole
/// lines (the formatter writes each event with one call), so a line is never split across
/// files. A line longer than `max_bytes` goes into a file of its own.
pub struct RotatingFile {
    inner: Mutex<Inner>,
}

struct Inner {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    keep: usize,
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl RotatingFile {
    /// Opens (appends to) `path`; `max_bytes` ≥ [`LOG_FILE_BYTES_MIN`], `keep` ≤
    /// [`LOG_FILES_KEPT_MAX`].
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        if max_bytes < LOG_FILE_BYTES_MIN || keep > LOG_FILES_KEPT_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "log rotation: size must be ≥ {LOG_FILE_BYTES_MIN} bytes and at most \
                     {LOG_FILES_KEPT_MAX} files kept"
                ),
            ));
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            inner: Mutex::new(Inner {
                path: path.to_owned(),
                file,
                written,
                max_bytes,
                keep,
            }),
        })
    }

    /// Writes one whole record (rotating first when it would not fit).
    pub fn write_record(&self, buf: &[u8]) -> io::Result<()> {
        let mut inner = self.inner.lock();
        if inner.written > 0 && inner.written + buf.len() as u64 > inner.max_bytes {
            inner.rotate()?;
        }
        inner.file.write_all(buf)?;
        inner.written += buf.len() as u64;
        Ok(())
    }
}

impl Inner {
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            // The oldest goes; each other moves one up. A missing file (fewer rotations so
            // far) is skipped.
            let oldest = rotated(&self.path, self.keep);
            match std::fs::remove_file(&oldest) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..self.keep).rev() {
                match std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

/// One event's writer: collects the formatted event and hands it to the file as one record
/// when dropped (the formatter may call `write` more than once per event).
pub struct RecordWriter<'a> {
    file: &'a RotatingFile,
    buf: Vec<u8>,
}

impl Write for RecordWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RecordWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty()
            && let Err(e) = self.file.write_record(&self.buf)
        {
            // The log file is where errors would go; stderr is the one place left.
            eprintln!("writing the log file: {e}");
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RotatingFile {
    type Writer = RecordWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RecordWriter {
            file: self,
            buf: Vec::new(),
        }
    }
}

/// Installs the global subscriber (a second call is a no-op, as in tests).
pub fn init(cfg: &LogConfig) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = cfg.file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(ansi);
    let r = match (&cfg.file, cfg.format) {
        (None, LogFormat::Console) => builder.with_writer(std::io::stderr).try_init(),
        (None, LogFormat::Json) => builder.json().with_writer(std::io::stderr).try_init(),
        (Some(path), format) => {
            let file = RotatingFile::open(path, cfg.max_bytes, cfg.keep)
                .map_err(|e| anyhow::anyhow!("opening the log file {}: {e}", path.display()))?;
            match format {
                LogFormat::Console => builder.with_writer(file).try_init(),
                LogFormat::Json => builder.json().with_writer(file).try_init(),
            }
        }
    };
    // Already installed (a test harness, or a second start in one process): keep it.
    drop(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.log");
        let f = RotatingFile::open(&path, LOG_FILE_BYTES_MIN, 2).expect("open");
        let line = |i: usize| format!("{i:04} {}\n", "x".repeat(1018)); // 1 KiB a line
        for i in 0..14 {
            f.write_record(line(i).as_bytes()).expect("write");
        }
        // 4 lines per file: 12, 13 current; 8..11 in .1; 4..7 in .2; 0..3 deleted.
        assert_eq!(read(&path), format!("{}{}", line(12), line(13)));
        let one = read(&rotated(&path, 1));
        assert_eq!(one.lines().count(), 4);
        assert!(one.starts_with("0008 "), "{}", &one[..10]);
        assert!(read(&rotated(&path, 2)).starts_with("0004 "));
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let len = std::fs::metadata(&p).expect("meta").len();
            assert!(len <= LOG_FILE_BYTES_MIN, "{} is {len} bytes", p.display());
        }
        // Reopened, it appends and counts what is there.
        drop(f);
        let f = RotatingFile::open(&path, LOG_FILE_BYTES_MIN, 2).expect("reopen");
        f.write_record(line(14).as_bytes()).expect("write");
        f.write_record(line(15).as_bytes()).expect("write");
        assert_eq!(read(&path).lines().count(), 4);
        f.write_record(line(16).as_bytes()).expect("write");
        assert_eq!(read(&path), line(16));
        assert!(read(&rotated(&path, 1)).starts_with("0012 "));
    }

    #[test]
    fn an_oversized_record_gets_a_file_of_its_own_and_keep_zero_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.log");
        let f = RotatingFile::open(&path, LOG_FILE_BYTES_MIN, 0).expect("open");
        f.write_record(b"small\n").expect("write");
        let big = vec![b'y'; LOG_FILE_BYTES_MIN as usize * 2];
        f.write_record(&big).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), big);
        assert!(!rotated(&path, 1).exists());
        assert!(RotatingFile::open(&path, 10, 1).is_err());
        assert!(RotatingFile::open(&path, LOG_FILE_BYTES_MIN, LOG_FILES_KEPT_MAX + 1).is_err());
    }

    #[test]
    fn json_lines_through_the_record_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("j.log");
        let file = RotatingFile::open(&path, LOG_FILE_BYTES_MIN, 1).expect("open");
        let subscriber = tracing_subscriber::fmt().json().with_writer(file).finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("duty", slot = 7u64, role = "committee");
            let _g = span.enter();
            tracing::info!(round = 2u64, "decided");
        });
        let text = read(&path);
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(v["fields"]["message"], "decided");
        assert_eq!(v["fields"]["round"], 2);
        assert_eq!(v["span"]["slot"], 7);
        assert_eq!(v["span"]["role"], "committee");
    }
}
