//! Daemon log files, rotated by size (reference E2).
//!
//! The supervisor reads each daemon's stdout and stderr through pipes and is the only
//! writer of the log files, so several workers can share one file without locks. When a
//! write would take a file past the maximum size, the file is cut after the last whole
//! line that fits, renamed `FILE.1` (`FILE.1` becomes `FILE.2`, …) and a new one is
//! started; the oldest beyond the number kept is deleted.
//!
//! The size and the number of files come from `${MODULE}_LOG_MAX_SIZE_BEFORE_ROTATION`
//! (default 100 MiB) and `${MODULE}_LOG_NUMBER_OF_ROTATED_FILES` (default 5), the
//! variables a MetWork module exports from its `[log]` configuration.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// When to rotate and how many old files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub keep: u32,
}

impl Rotation {
    pub const DEFAULT: Rotation = Rotation {
        max_size: 104_857_600,
        keep: 5,
    };

    /// The rotation the module variables ask for (defaults for unset or unreadable).
    pub fn from_lookup(module: &str, lookup: impl Fn(&str) -> Option<String>) -> Rotation {
        let read = |suffix: &str| {
            lookup(&format!("{module}_LOG_{suffix}")).and_then(|v| v.trim().parse::<u64>().ok())
        };
        Rotation {
            max_size: read("MAX_SIZE_BEFORE_ROTATION")
                .filter(|size| *size > 0)
                .unwrap_or(Rotation::DEFAULT.max_size),
            keep: read("NUMBER_OF_ROTATED_FILES")
                .map(|keep| keep.min(1000) as u32)
                .unwrap_or(Rotation::DEFAULT.keep),
        }
    }
}

/// A log file being appended to.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    rotation: Rotation,
    /// The last write error, reported once.
    pub failed: Option<String>,
    /// `failed` was handed out and nothing was written since.
    reported: bool,
}

/// A log file shared by the readers of several pipes.
pub type SharedLog = Arc<Mutex<LogFile>>;

impl LogFile {
    /// Opens (creating, for its owner only) `path` for appending.
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<LogFile> {
        let file = crate::private::append(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_owned(),
            file: Some(file),
            size,
            rotation,
            failed: None,
            reported: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The write error to report, once per series of failures.
    pub fn new_failure(&mut self) -> Option<String> {
        match self.failed.take() {
            Some(failure) if !self.reported => {
                self.reported = true;
                Some(failure)
            }
            _ => None,
        }
    }

    /// Appends `data`, rotating whenever the file would grow past the maximum size: a
    /// file never exceeds it, and is cut after a newline when there is one.
    pub fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.rotation.max_size.saturating_sub(self.size);
            if (data.len() as u64) <= room {
                self.append(data);
                return;
            }
            let room = room as usize;
            let cut = match data[..room].iter().rposition(|&byte| byte == b'\n') {
                Some(newline) => newline + 1,
                // Nothing fits up to a newline: start a new file, or cut a line too
                // long for any file.
                None if self.size > 0 => 0,
                None => room.max(1),
            };
            self.append(&data[..cut]);
            data = &data[cut..];
            if let Err(err) = self.rotate() {
                self.failed = Some(format!("cannot rotate `{}`: {err}", self.path.display()));
                self.reopen();
                self.append(data);
                return;
            }
        }
    }

    fn append(&mut self, data: &[u8]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(data) {
            Ok(()) => {
                self.size += data.len() as u64;
                self.reported = false;
            }
            Err(err) => {
                self.failed = Some(format!("cannot write `{}`: {err}", self.path.display()));
            }
        }
    }

    fn numbered(&self, number: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{number}"));
        PathBuf::from(name)
    }

    /// After a failed rotation: write to the file as it is rather than lose output.
    fn reopen(&mut self) {
        if self.file.is_none()
            && let Ok(file) = crate::private::open_options()
                .create(true)
                .append(true)
                .open(&self.path)
        {
            self.size = file.metadata().map_or(0, |metadata| metadata.len());
            self.file = Some(file);
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.rotation.keep == 0 {
            fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            fs::remove_file(self.numbered(self.rotation.keep)).or_else(ignore_missing)?;
            for number in (1..self.rotation.keep).rev() {
                fs::rename(self.numbered(number), self.numbered(number + 1))
                    .or_else(ignore_missing)?;
            }
            fs::rename(&self.path, self.numbered(1)).or_else(ignore_missing)?;
        }
        let file = crate::private::open_options()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.file = Some(file);
        self.size = 0;
        Ok(())
    }
}

fn ignore_missing(err: io::Error) -> io::Result<()> {
    if err.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(err)
    }
}

/// Lines longer than this are written in pieces.
const MAX_LINE: usize = 64 * 1024;

/// Copies everything `source` gives into `log` until end of file (the process and
/// every process it started closed the pipe), whole lines at a time, so that workers
/// sharing a file never cut each other's lines. Write failures go to `report`, once per
/// series. Runs on its own thread.
pub fn pump(mut source: impl Read, log: SharedLog, report: impl Fn(&str)) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let write = |data: &[u8]| {
        let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.write(data);
        if let Some(failure) = log.new_failure() {
            report(&failure);
        }
    };
    loop {
        match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buffer[..n]);
                let whole = match pending.iter().rposition(|&byte| byte == b'\n') {
                    Some(newline) => newline + 1,
                    None if pending.len() >= MAX_LINE => pending.len(),
                    None => continue,
                };
                write(&pending[..whole]);
                pending.drain(..whole);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        write(&pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let rotation = Rotation {
            max_size: 10,
            keep: 2,
        };
        let mut log = LogFile::open(&path, rotation).unwrap();
        for chunk in ["aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"] {
            log.write(chunk.as_bytes());
        }
        assert!(log.failed.is_none());
        assert_eq!(fs::read_to_string(&path).unwrap(), "dddddddd\n");
        assert_eq!(
            fs::read_to_string(dir.path().join("d.log.1")).unwrap(),
            "cccccccc\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("d.log.2")).unwrap(),
            "bbbbbbbb\n"
        );
        assert!(!dir.path().join("d.log.3").exists());
    }

    #[test]
    fn big_writes_are_cut_at_line_ends_and_files_stay_under_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let rotation = Rotation {
            max_size: 10,
            keep: 5,
        };
        let mut log = LogFile::open(&path, rotation).unwrap();
        log.write(b"1234\n5678\nabcd\nefghijklmnopqrstuvwxyz\nz\n");
        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("d.log.4"), "1234\n5678\n");
        assert_eq!(read("d.log.3"), "abcd\n");
        assert_eq!(read("d.log.2"), "efghijklmn");
        assert_eq!(read("d.log.1"), "opqrstuvwx");
        assert_eq!(read("d.log"), "yz\nz\n");
    }

    #[test]
    fn an_existing_file_is_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        fs::write(&path, "old\n").unwrap();
        let mut log = LogFile::open(&path, Rotation::DEFAULT).unwrap();
        log.write(b"new\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\nnew\n");
    }

    #[test]
    fn the_pump_writes_whole_lines_and_the_rest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let log = Arc::new(Mutex::new(LogFile::open(&path, Rotation::DEFAULT).unwrap()));
        /// Gives its chunks one read at a time; another worker writes a line to the
        /// shared log while this one is in the middle of a line.
        struct Chunks(Vec<&'static [u8]>, SharedLog);
        impl Read for Chunks {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                if self.0.len() == 3 {
                    self.1.lock().unwrap().write(b"other worker\n");
                }
                let chunk = self.0.remove(0);
                buf[..chunk.len()].copy_from_slice(chunk);
                Ok(chunk.len())
            }
        }
        let source = Chunks(
            vec![b"one\ntw", b"o\nthr", b"ee", b"\nlast"],
            Arc::clone(&log),
        );
        pump(source, Arc::clone(&log), |_| {});
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "one\nother worker\ntwo\nthree\nlast"
        );
    }

    #[test]
    fn write_failures_are_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/d.log");
        let mut log = LogFile::open(&path, Rotation::DEFAULT).unwrap();
        log.failed = Some("disk full".to_owned());
        assert_eq!(log.new_failure().as_deref(), Some("disk full"));
        log.failed = Some("disk full".to_owned());
        assert_eq!(log.new_failure(), None);
        log.write(b"ok\n");
        log.failed = Some("again".to_owned());
        assert_eq!(log.new_failure().as_deref(), Some("again"));
    }

    #[test]
    fn rotation_settings_come_from_the_module_variables() {
        let rotation = Rotation::from_lookup("MFDATA", |name| match name {
            "MFDATA_LOG_MAX_SIZE_BEFORE_ROTATION" => Some("2048".to_owned()),
            "MFDATA_LOG_NUMBER_OF_ROTATED_FILES" => Some("junk".to_owned()),
            _ => None,
        });
        assert_eq!(
            rotation,
            Rotation {
                max_size: 2048,
                keep: 5
            }
        );
    }
}
