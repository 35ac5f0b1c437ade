//! `mfenv cronwrap`: run a command from cron with a lock, a timeout, a niceness and a
//! log file (reference D3, the original `cronwrap`).
//!
//! Differences from the original, on purpose: the command's arguments are passed as
//! they are (the original joined them with spaces and handed the string to a shell, so
//! quoting was lost and metacharacters interpreted), and the exit status is the
//! command's own (the original always exited 0; a timeout still exits 12).
//!
//! The command runs in its own process group, and cronwrap is a child subreaper: what
//! the command starts stays cronwrap's descendant even when it leaves the group
//! (`setsid`) and its parent ends. A timeout kills (`SIGKILL`) the command and every
//! descendant. `SIGTERM`, `SIGINT` and `SIGHUP` sent to cronwrap are forwarded to the
//! command's group and every descendant; whatever still runs when the command has ended,
//! after `--kill-after` seconds, or at a second signal is killed, and cronwrap exits
//! with 128 + the signal number. If cronwrap itself is killed outright, the command gets
//! `SIGKILL` (parent-death signal). When the command ends on its own, what it left
//! running in the background is left alone, as under cron.
//!
//! The lock is an advisory `flock` held by this process for the whole run, so until
//! every descendant is gone after a timeout or a signal: it is released by the kernel
//! if we are killed, so it can never go stale.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

use crate::error::{Error, ErrorKind, Result, io_reason};
use crate::reaper;

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
    /// Seconds; 0 means no timeout (more than a year is a year).
    pub timeout: u64,
    /// Sleep a random number of seconds in `[0, random_sleep]` first.
    pub random_sleep: u64,
    /// After forwarding a termination signal, how long the command and its
    /// descendants have before `SIGKILL`.
    pub kill_after: Duration,
    pub lock: bool,
    pub lock_busy_message: LockBusyMessage,
    /// Source this file in `shell` before running the command.
    pub load_env: Option<PathBuf>,
    pub shell: PathBuf,
    /// Niceness increment (beyond ±40 it is ±40: the niceness range is -20 to 19).
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
        let bound = crate::seconds::from_u64(request.random_sleep).as_secs();
        std::thread::sleep(Duration::from_secs(random_below(bound + 1)));
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
        let log = crate::private::append(path)
            .map_err(|err| Error::io("cannot open the log file", path, &err))?;
        let log_err = log
            .try_clone()
            .map_err(|err| Error::io("cannot open the log file", path, &err))?;
        command
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
    }
    let nice = request.nice.map(|increment| increment.clamp(-40, 40));
    let ionice = request.ionice_class;
    let parent = nix::unistd::getpid();
    // SAFETY: only async-signal-safe calls (signal, prctl, getppid, _exit, nice,
    // ioprio_set) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // A termination signal is cronwrap's to forward until exec resets the
            // handlers; from here on it is the command's.
            for number in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
                if let Ok(previous) = signal::signal(number, SigHandler::SigDfl)
                    && matches!(previous, SigHandler::SigIgn)
                {
                    signal::signal(number, SigHandler::SigIgn)?;
                }
            }
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // cronwrap may have died before the line above: then go now.
            if nix::unistd::getppid() != parent {
                nix::libc::_exit(1);
            }
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
                if nix::libc::syscall(nix::libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, priority)
                    == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    reaper::become_subreaper()?;
    install_signal_handlers()?;
    let child = command.spawn().map_err(|err| {
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
        (request.timeout > 0).then(|| Instant::now() + crate::seconds::from_u64(request.timeout));
    supervise(child, deadline, request.kill_after)
}

/// The first termination signal received (0: none yet) and how many were received.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(number: nix::libc::c_int) {
    let _ = SIGNAL.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Catches `SIGTERM`, `SIGINT` and `SIGHUP` to forward them (one ignored when cronwrap
/// started, as under `nohup`, stays ignored). The command gets the default dispositions
/// back at exec.
fn install_signal_handlers() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for number in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only touches atomics.
        let installed = unsafe { signal::sigaction(number, &action) }.and_then(|previous| {
            if matches!(previous.handler(), SigHandler::SigIgn) {
                // SAFETY: puts back the disposition we found.
                unsafe { signal::sigaction(number, &previous) }.map(|_| ())
            } else {
                Ok(())
            }
        });
        installed.map_err(|errno| {
            Error::new(ErrorKind::Io, "cannot install the signal handlers").caused_by(errno.desc())
        })?;
    }
    Ok(())
}

/// The exit code for a command's exit status, as a shell gives it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(255),
        (None, None) => 1,
    }
}

/// Waits for the command, its timeout, or a termination signal; returns the exit code.
fn supervise(mut child: Child, deadline: Option<Instant>, kill_after: Duration) -> Result<u8> {
    let pid = child.id();
    let group = Pid::from_raw(-(pid as i32));
    let is_command = |other: u32| other == pid;
    let me = std::process::id();
    // Set once a termination signal was forwarded: the signal and when to kill.
    let mut forwarded: Option<(i32, Instant)> = None;
    loop {
        reaper::reap_orphans(is_command);
        let ended = match child.try_wait() {
            Ok(ended) => ended,
            Err(err) => {
                return Err(Error::new(ErrorKind::Io, "cannot wait for the command")
                    .caused_by(io_reason(&err)));
            }
        };
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) && ended.is_none() {
            let _ = writeln!(std::io::stderr(), "timeout => kill -9 {pid}");
            // The whole process group, then every other descendant.
            let _ = signal::kill(group, Signal::SIGKILL);
            kill_everything(&mut child);
            return Ok(match forwarded {
                Some((number, _)) => signal_exit_code(number),
                None => TIMEOUT_EXIT_CODE,
            });
        }
        match forwarded {
            None => {
                if let Some(status) = ended {
                    reaper::reap_orphans(|_| false);
                    return Ok(exit_code(status));
                }
                let number = SIGNAL.load(Ordering::SeqCst);
                if number != 0 {
                    let name = Signal::try_from(number).map_or("a signal", Signal::as_str);
                    let _ = writeln!(
                        std::io::stderr(),
                        "{name} => forwarded to the command (pid {pid}) and what it started"
                    );
                    if let Ok(received) = Signal::try_from(number) {
                        let _ = signal::kill(group, received);
                        reaper::signal_each(&reaper::descendants(me), received);
                    }
                    forwarded = Some((number, now + kill_after));
                }
            }
            Some((number, kill_at)) => {
                let left = reaper::descendants(me);
                if left.is_empty() || now >= kill_at || SIGNALS.load(Ordering::SeqCst) > 1 {
                    if !left.is_empty() {
                        let _ = writeln!(
                            std::io::stderr(),
                            "kill -9 of what is left ({} process{})",
                            left.len(),
                            if left.len() == 1 { "" } else { "es" }
                        );
                    }
                    let _ = signal::kill(group, Signal::SIGKILL);
                    kill_everything(&mut child);
                    return Ok(signal_exit_code(number));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 128 + the signal number, as a shell reports a command killed by it.
fn signal_exit_code(number: i32) -> u8 {
    u8::try_from(128 + number).unwrap_or(255)
}

/// Kills every descendant and reaps the command.
fn kill_everything(child: &mut Child) {
    let pid = child.id();
    reaper::kill_descendants(|other| other == pid, Duration::from_secs(10));
    let _ = child.wait();
    reaper::kill_descendants(|_| false, Duration::from_secs(10));
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
    crate::private::create_dir_all(&request.lock_dir)
        .map_err(|err| Error::io("cannot create", &request.lock_dir, &err))?;
    let path = request
        .lock_dir
        .join(format!("cronwrap_{uid}_{digest}.lock"));
    let file = crate::private::open_options()
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
