//! `mfenv cronwrap`: run a command from cron with a lock, a timeout, a niceness and a
//! log file (reference D3, the original `cronwrap`).
//!
//! Differences from the original, on purpose: the command's arguments are passed as
//! they are (the original joined them with spaces and handed the string to a shell, so
//! quoting was lost and metacharacters interpreted), and the exit status is the
//! command's own (the original always exited 0; a timeout still exits 12).
//!
//! The command runs in its own process group so that a timeout kills it and everything
//! it started. The lock is an advisory `flock` held by this process for the whole run:
//! it is released by the kernel if we are killed, so it can never go stale.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

use crate::error::{Error, ErrorKind, Result, io_reason};

/// Exit status when the command was killed for running too long (the original's).
pub const TIMEOUT_EXIT_CODE: u8 = 12;

/// Where the "lock busy" message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockBusyMessage {
    Stdout,
    Stderr,
    Nothing,
}

/// What to run and how.
#[derive(Debug, Clone)]
pub struct CronwrapRequest {
    pub command: Vec<std::ffi::OsString>,
    /// Seconds; 0 means no timeout.
    pub timeout: u64,
    /// Sleep a random number of seconds in `[0, random_sleep]` first.
    pub random_sleep: u64,
    pub lock: bool,
    pub lock_busy_message: LockBusyMessage,
    /// Source this file in `shell` before running the command.
    pub load_env: Option<PathBuf>,
    pub shell: PathBuf,
    pub nice: Option<i32>,
    /// I/O scheduling class (1 realtime, 2 best-effort, 3 idle).
    pub ionice_class: Option<u8>,
    /// Append stdout and stderr to this file (`None`: inherit).
    pub log_file: Option<PathBuf>,
    /// Directory for lock files.
    pub lock_dir: PathBuf,
    /// Variables set for the command (the recorded module context of a cron job).
    pub environment: Vec<(String, String)>,
}

/// Runs the request; returns the exit code to use.
pub fn run(request: &CronwrapRequest) -> Result<u8> {
    let program = request
        .command
        .first()
        .ok_or_else(|| Error::new(ErrorKind::Usage, "no command to run"))?;
    let _lock = if request.lock {
        match acquire_lock(request)? {
            Some(lock) => Some(lock),
            None => {
                let message = format!(
                    "can't acquire lock for executing {} => can be a normal behaviour\n",
                    display_command(&request.command)
                );
                match request.lock_busy_message {
                    LockBusyMessage::Stdout => {
                        let _ = std::io::stdout().write_all(message.as_bytes());
                    }
                    LockBusyMessage::Stderr => {
                        let _ = std::io::stderr().write_all(message.as_bytes());
                    }
                    LockBusyMessage::Nothing => {}
                }
                return Ok(0);
            }
        }
    } else {
        None
    };
    if request.random_sleep > 0 {
        std::thread::sleep(Duration::from_secs(random_below(request.random_sleep + 1)));
    }

    let mut command = match &request.load_env {
        Some(file) => {
            // The file is sourced by the shell, then the command replaces the shell with
            // its arguments untouched ("$@").
            let mut command = Command::new(&request.shell);
            command
                .arg("-c")
                .arg(". \"$1\" >/dev/null 2>&1; shift; exec \"$@\"")
                .arg("cronwrap")
                .arg(file)
                .args(&request.command);
            command
        }
        None => {
            let mut command = Command::new(program);
            command.args(&request.command[1..]);
            command
        }
    };
    command.process_group(0);
    command.envs(
        request
            .environment
            .iter()
            .map(|(name, value)| (name, value)),
    );
    if let Some(path) = &request.log_file {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|err| Error::io("cannot create", parent, &err))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|err| Error::io("cannot open the log file", path, &err))?;
        let log_err = log
            .try_clone()
            .map_err(|err| Error::io("cannot open the log file", path, &err))?;
        command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
    }
    let nice = request.nice;
    let ionice = request.ionice_class;
    if nice.is_some() || ionice.is_some() {
        // SAFETY: only async-signal-safe calls (nice, ioprio_set) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if let Some(increment) = nice {
                    *nix::libc::__errno_location() = 0;
                    if nix::libc::nice(increment) == -1 && *nix::libc::__errno_location() != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if let Some(class) = ionice {
                    const IOPRIO_WHO_PROCESS: i64 = 1;
                    const IOPRIO_CLASS_SHIFT: i64 = 13;
                    let data = if class == 2 { 4 } else { 0 };
                    let priority = (i64::from(class) << IOPRIO_CLASS_SHIFT) | data;
                    if nix::libc::syscall(
                        nix::libc::SYS_ioprio_set,
                        IOPRIO_WHO_PROCESS,
                        0,
                        priority,
                    ) == -1
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|err| {
        let code = if err.kind() == std::io::ErrorKind::NotFound {
            "command not found".to_owned()
        } else {
            io_reason(&err)
        };
        Error::new(
            ErrorKind::Io,
            format!("cannot run `{}`", program.to_string_lossy()),
        )
        .caused_by(code)
    })?;
    let deadline =
        (request.timeout > 0).then(|| Instant::now() + Duration::from_secs(request.timeout));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Ok(match (status.code(), status.signal()) {
                    (Some(code), _) => u8::try_from(code).unwrap_or(1),
                    (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
                    (None, None) => 1,
                });
            }
            Ok(None) => {}
            Err(err) => {
                return Err(Error::new(ErrorKind::Io, "cannot wait for the command")
                    .caused_by(io_reason(&err)));
            }
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            let pid = child.id();
            let _ = writeln!(std::io::stderr(), "timeout => kill -9 {pid}");
            // The whole process group: the command and everything it started.
            let group = nix::unistd::Pid::from_raw(-(pid as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Ok(TIMEOUT_EXIT_CODE);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Takes the lock of this command; `None` when another run holds it.
fn acquire_lock(request: &CronwrapRequest) -> Result<Option<File>> {
    let mut hasher = Md5::new();
    for arg in &request.command {
        hasher.update(arg.as_encoded_bytes());
        hasher.update([0]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // SAFETY: getuid cannot fail.
    let uid = unsafe { nix::libc::getuid() };
    fs::create_dir_all(&request.lock_dir)
        .map_err(|err| Error::io("cannot create", &request.lock_dir, &err))?;
    let path = request
        .lock_dir
        .join(format!("cronwrap_{uid}_{digest}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| Error::io("cannot open the lock file", &path, &err))?;
    // SAFETY: flock on a file descriptor we own.
    let locked =
        unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) };
    if locked == 0 {
        return Ok(Some(file));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(nix::libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(Error::io("cannot lock", &path, &err))
    }
}

fn display_command(command: &[std::ffi::OsString]) -> String {
    command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A number in `[0, bound)`, good enough to spread cron jobs (no cryptography here).
fn random_below(bound: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Md5::new();
    hasher.update(nanos.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    let digest = hasher.finalize();
    let value = u64::from_le_bytes(digest[..8].try_into().expect("md5 has 16 bytes"));
    value % bound.max(1)
}

/// The log file for `--log-capture-to FILE`: relative names live in `log_dir`; `NULL`
/// (as the module templates write) discards the output.
pub fn log_file_for(name: &str, log_dir: &Path) -> PathBuf {
    if name == "NULL" {
        return PathBuf::from("/dev/null");
    }
    let path = Path::new(name);
    if path.is_absolute() {
        path.to_owned()
    } else {
        log_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_files_are_relative_to_the_log_dir() {
        let dir = Path::new("/rt/log");
        assert_eq!(log_file_for("job.log", dir), Path::new("/rt/log/job.log"));
        assert_eq!(log_file_for("/abs.log", dir), Path::new("/abs.log"));
        assert_eq!(log_file_for("NULL", dir), Path::new("/dev/null"));
    }

    #[test]
    fn random_numbers_stay_below_the_bound() {
        for _ in 0..100 {
            assert!(random_below(3) < 3);
        }
        assert_eq!(random_below(1), 0);
    }
}
