//! Processes that outlive the one that started them: `mfenv cronwrap` and the daemon
//! supervisor are child subreapers (`PR_SET_CHILD_SUBREAPER`), so a process that
//! escapes its process group (`setsid`, double fork) and loses its parent becomes their
//! child instead of init's. This module finds them through `/proc`, kills them and
//! reaps them.

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, ErrorKind, Result};

/// Makes this process the reaper of its orphaned descendants.
pub fn become_subreaper() -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(|errno| {
        Error::new(ErrorKind::Io, "cannot become a child subreaper").caused_by(errno.desc())
    })
}

/// The state and parent of `pid` from `/proc/PID/stat`.
fn state_and_parent(pid: u32) -> Option<(u8, u32)> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    // `pid (command) state ppid …`: the command may hold anything, even `)`.
    let end = stat.iter().rposition(|&byte| byte == b')')?;
    let mut fields = stat[end + 1..]
        .split(|&byte| byte == b' ')
        .filter(|field| !field.is_empty());
    let state = *fields.next()?.first()?;
    let parent = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    Some((state, parent))
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// The live (not zombie) descendants of `root`, found through the parent links.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<(u32, bool)>> = HashMap::new();
    for pid in all_pids() {
        if let Some((state, parent)) = state_and_parent(pid) {
            let live = !matches!(state, b'Z' | b'X' | b'x');
            children.entry(parent).or_default().push((pid, live));
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(parent) = pending.pop() {
        for &(pid, live) in children.get(&parent).map_or(&[][..], Vec::as_slice) {
            if pid != root {
                pending.push(pid);
                if live {
                    found.push(pid);
                }
            }
        }
    }
    found
}

/// The processes (other than this one) whose environment (its `NAME=value` entries)
/// `pick` accepts, with what it returned. Processes of other users cannot be read and
/// are not listed.
pub fn by_environment<T>(mut pick: impl FnMut(&[&[u8]]) -> Option<T>) -> Vec<(u32, T)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for pid in all_pids() {
        if pid == me {
            continue;
        }
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let entries: Vec<&[u8]> = environ.split(|&byte| byte == 0).collect();
        if let Some(picked) = pick(&entries) {
            found.push((pid, picked));
        }
    }
    found
}

/// Sends `signal` to each of `pids` (errors, such as a process already gone, ignored).
pub fn signal_each(pids: &[u32], signal: Signal) {
    for &pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// Reaps the children of this process that have ended, except those `keep` claims
/// (they are waited for by their owner, e.g. through `std::process::Child`); stops at
/// the first ended child `keep` claims, which its owner reaps soon.
pub fn reap_orphans(keep: impl Fn(u32) -> bool) {
    loop {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        let pid = match waitid(Id::All, flags) {
            Ok(WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)) => pid,
            _ => return,
        };
        if keep(pid.as_raw() as u32) {
            return;
        }
        let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
    }
}

/// Kills (`SIGKILL`) every descendant of this process and reaps those that were its
/// children, until none is left or `within` has passed (new processes forked meanwhile
/// are found by the next round); `keep` as for [`reap_orphans`]. Returns how many
/// processes were killed.
pub fn kill_descendants(keep: impl Fn(u32) -> bool, within: Duration) -> usize {
    let me = std::process::id();
    let deadline = Instant::now() + within;
    let mut killed = std::collections::HashSet::new();
    loop {
        reap_orphans(&keep);
        let live = descendants(me);
        if live.is_empty() || Instant::now() >= deadline {
            return killed.len();
        }
        killed.extend(live.iter().copied());
        signal_each(&live, Signal::SIGKILL);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stat_line_is_read_whatever_the_command_name() {
        let me = std::process::id();
        let (state, parent) = state_and_parent(me).unwrap();
        assert!(state.is_ascii_uppercase());
        assert_eq!(parent, nix::unistd::getppid().as_raw() as u32);
    }

    #[test]
    fn a_child_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(descendants(std::process::id()).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!descendants(std::process::id()).contains(&child.id()));
    }
}
