//! The plugin-management lock (reference B6, DESIGN §5): an exclusive `flock` on
//! `RUNTIME/tmp/plugin_management_lock`, the file mfplugin locks, so mfenv and the
//! original tools never manage plugins at the same time.
//!
//! Install, uninstall, develop and provision hold it for their whole run, and every
//! read-modify-write of the user's crontab holds it too. Waiting
//! longer than the timeout is an error (the original silently skipped the operation).
//! The lock is released when the [`ManagementLock`] is dropped, or by the kernel when
//! the process dies, so a killed install never leaves it held. The time limits of
//! plugin operations (`MFENV_LOCK_TIMEOUT`, `MFENV_POSTINSTALL_TIMEOUT`) are parsed
//! here.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, ErrorKind, Result};

/// The lock file below the runtime home.
pub const LOCK_FILE: &str = "tmp/plugin_management_lock";
/// How long to wait when `MFENV_LOCK_TIMEOUT` is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the lock is tried while waiting.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A held plugin-management lock.
#[derive(Debug)]
pub struct ManagementLock {
    _lock: Flock<File>,
    pub path: PathBuf,
}

impl ManagementLock {
    /// The locked file: a child process that inherits it holds the lock until it
    /// exits, even when this process is killed first.
    pub fn file(&self) -> &File {
        &self._lock
    }
}

/// Takes the lock of `runtime_home`, waiting at most `timeout`.
pub fn acquire(runtime_home: &Path, timeout: Duration) -> Result<ManagementLock> {
    let path = runtime_home.join(LOCK_FILE);
    crate::private::create_parent(&path).map_err(|err| Error::io("cannot create", &path, &err))?;
    let mut file = crate::private::open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| Error::io("cannot open", &path, &err))?;
    let started = Instant::now();
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(ManagementLock { _lock: lock, path }),
            Err((returned, Errno::EWOULDBLOCK | Errno::EINTR)) => {
                if started.elapsed() >= timeout {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "cannot acquire the plugin management lock `{}` within {:.1} s",
                            path.display(),
                            timeout.as_secs_f64()
                        ),
                    )
                    .caused_by(
                        "another plugin install, uninstall, develop or provision, or a crontab edit (`mfenv cron`), is running",
                    )
                    .with_hint("wait for it to finish and run the command again"));
                }
                file = returned;
                std::thread::sleep(POLL_EVERY.min(timeout.saturating_sub(started.elapsed())));
            }
            Err((_, errno)) => {
                return Err(
                    Error::new(ErrorKind::Io, format!("cannot lock `{}`", path.display()))
                        .caused_by(errno.desc().to_lowercase()),
                );
            }
        }
    }
}

/// Parses `MFENV_LOCK_TIMEOUT` (seconds, decimals allowed; more than a year is a year).
pub fn timeout_from(value: Option<&str>) -> Result<Duration> {
    Ok(seconds_from("MFENV_LOCK_TIMEOUT", value)?.unwrap_or(DEFAULT_TIMEOUT))
}

/// How long a postinstall may run when `MFENV_POSTINSTALL_TIMEOUT` is unset.
pub const DEFAULT_POSTINSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Parses `MFENV_POSTINSTALL_TIMEOUT` (seconds, decimals allowed; `0`: no limit).
pub fn postinstall_timeout_from(value: Option<&str>) -> Result<Option<Duration>> {
    Ok(match seconds_from("MFENV_POSTINSTALL_TIMEOUT", value)? {
        None => Some(DEFAULT_POSTINSTALL_TIMEOUT),
        Some(limit) if limit.is_zero() => None,
        Some(limit) => Some(limit),
    })
}

/// A number of seconds read from `variable` (`None` when unset or empty).
fn seconds_from(variable: &str, value: Option<&str>) -> Result<Option<Duration>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse::<f64>()
            .ok()
            .and_then(crate::seconds::from_f64)
            .map(Some)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Environment,
                    format!("bad `{variable}` value `{text}`"),
                )
                .caused_by("expected a number of seconds")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_makes_the_second_taker_time_out_with_an_error() {
        let runtime = tempfile::tempdir().unwrap();
        let first = acquire(runtime.path(), Duration::from_secs(1)).unwrap();
        let error = acquire(runtime.path(), Duration::from_millis(100)).unwrap_err();
        assert!(
            error
                .message()
                .contains("cannot acquire the plugin management lock")
        );
        drop(first);
        assert!(acquire(runtime.path(), Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn timeouts_parse_as_seconds() {
        assert_eq!(timeout_from(None).unwrap(), DEFAULT_TIMEOUT);
        assert_eq!(
            timeout_from(Some("0.5")).unwrap(),
            Duration::from_millis(500)
        );
        assert!(timeout_from(Some("soon")).is_err());
        assert_eq!(
            postinstall_timeout_from(None).unwrap(),
            Some(DEFAULT_POSTINSTALL_TIMEOUT)
        );
        assert_eq!(postinstall_timeout_from(Some("0")).unwrap(), None);
        assert_eq!(
            postinstall_timeout_from(Some("2.5")).unwrap(),
            Some(Duration::from_millis(2500))
        );
        assert!(timeout_from(Some("-1")).is_err());
        assert_eq!(timeout_from(Some("1e20")).unwrap(), crate::seconds::LONGEST);
    }
}
