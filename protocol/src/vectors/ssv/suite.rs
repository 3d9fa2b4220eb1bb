//! Where the runner suite's files come from: an unpacked folder (`DIR/ssv/tests` and
//! `DIR/ssv/state_comparison`) or the vendored archive `DIR/ssv/vectors.tar.zst`, read in
//! place (zstd stream, tar entries) into memory once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The files of the runner suite, by path relative to `DIR/ssv` (`tests/x.json`,
/// `state_comparison/...`).
pub enum Suite {
    /// An unpacked copy: files are read when asked for.
    Dir(PathBuf),
    /// The archive's files, unpacked into memory.
    Archive(BTreeMap<String, Vec<u8>>),
}

impl Suite {
    /// Opens `root/ssv`: the unpacked `tests/` if present, else `vectors.tar.zst`.
    pub fn open(root: &Path) -> Result<Self, String> {
        let dir = root.join("ssv");
        if dir.join("tests").is_dir() {
            return Ok(Suite::Dir(dir));
        }
        let archive = dir.join("vectors.tar.zst");
        let file = std::fs::File::open(&archive).map_err(|e| {
            format!(
                "neither {}/tests nor {} can be read: {e}",
                dir.display(),
                archive.display()
            )
        })?;
        let decoder = ruzstd::decoding::StreamingDecoder::new(std::io::BufReader::new(file))
            .map_err(|e| format!("{}: zstd: {e}", archive.display()))?;
        let mut tar = tar::Archive::new(decoder);
        let mut files = BTreeMap::new();
        for entry in tar
            .entries()
            .map_err(|e| format!("{}: tar: {e}", archive.display()))?
        {
            let mut entry = entry.map_err(|e| format!("{}: tar entry: {e}", archive.display()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| format!("tar path: {e}"))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{path}: {e}"))?;
            files.insert(path, bytes);
        }
        Ok(Suite::Archive(files))
    }

    /// The test files (`tests/*.json`), sorted by name.
    pub fn test_files(&self) -> Result<Vec<String>, String> {
        match self {
            Suite::Dir(dir) => {
                let tests = dir.join("tests");
                let mut names: Vec<String> = std::fs::read_dir(&tests)
                    .map_err(|e| format!("cannot list {}: {e}", tests.display()))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .map(|n| format!("tests/{n}"))
                    .collect();
                names.sort();
                Ok(names)
            }
            Suite::Archive(files) => Ok(files
                .keys()
                .filter(|k| k.starts_with("tests/") && k.ends_with(".json"))
                .cloned()
                .collect()),
        }
    }

    /// The bytes of one file.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        match self {
            Suite::Dir(dir) => std::fs::read(dir.join(rel)).map_err(|e| format!("read {rel}: {e}")),
            Suite::Archive(files) => files
                .get(rel)
                .cloned()
                .ok_or_else(|| format!("{rel} is not in the archive")),
        }
    }

    /// Every file whose path starts with `prefix` (relative to `DIR/ssv`), sorted.
    pub fn files_under(&self, prefix: &str) -> Result<Vec<String>, String> {
        match self {
            Suite::Dir(dir) => {
                let mut out = Vec::new();
                let mut stack = vec![dir.join(prefix)];
                while let Some(p) = stack.pop() {
                    if p.is_dir() {
                        for e in
                            std::fs::read_dir(&p).map_err(|e| format!("{}: {e}", p.display()))?
                        {
                            stack.push(e.map_err(|e| e.to_string())?.path());
                        }
                    } else if let Ok(rel) = p.strip_prefix(dir) {
                        out.push(rel.to_string_lossy().into_owned());
                    }
                }
                out.sort();
                Ok(out)
            }
            Suite::Archive(files) => Ok(files
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect()),
        }
    }

    /// One file as JSON.
    pub fn json(&self, rel: &str) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.read(rel)?).map_err(|e| format!("{rel}: json: {e}"))
    }
}
