//! Journaled installs: how a plugin tree gets into the base dir so that a kill at any
//! moment leaves one complete version, and how the next plugin operation settles what
//! a killed one left (DESIGN §5: an install is all or nothing, also when killed).
//!
//! An install works in a staging directory `<base>/.mfenv-tmp-*`. Before the first
//! move outside it, the staging directory receives [`JOURNAL_FILE`], always written
//! whole (temporary name, then rename): the target, the identity (device and inode) of
//! the new tree, of the tree it replaces and that tree's home, the postinstall's
//! process group once it runs, and whether the install is committed. Trees only move
//! by renames, and nothing is deleted before the install is settled. Settling reads
//! the journal and looks for the trees by identity, so it can be run again after any
//! interruption, its own included:
//!
//! - not committed: the postinstall's process group is killed, the new tree goes back
//!   into the staging directory and the replaced one back to its home (rollback);
//! - committed: the new tree stays, the staging directory (with the replaced tree) goes.
//!
//! A staging directory without a journal only holds what no install placed (a partial
//! extraction, a plugin being uninstalled) and is removed. An unreadable journal, or a
//! replaced tree found nowhere, keeps the staging directory with a warning: nothing is
//! deleted when in doubt.
//!
//! Without `RENAME_EXCHANGE` (not Linux with glibc, file systems such as NFS, or
//! `MFENV_NO_RENAME_EXCHANGE=1`) a replacement is two renames instead of one swap; the
//! journal makes the moment between them recoverable like any other.
//!
//! This module touches only the staging directory, the target and the replaced home;
//! the caller holds the plugin-management lock.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::plugin::manager::remove_tree;

/// The journal of a staging directory.
pub const JOURNAL_FILE: &str = "journal.json";
/// Where the extracted tree waits in the staging directory.
pub const NEW_TREE: &str = "metwork_plugin";
/// Where a replaced tree waits in the staging directory (when it is not swapped).
const PREVIOUS_TREE: &str = "previous";
/// Where a rolled-back tree goes in the staging directory.
const ROLLED_BACK_TREE: &str = "rolled-back";
/// The journal format written by this version.
const FORMAT: u32 = 1;
/// How long settling waits for a killed postinstall's processes to be gone.
const GROUP_EXIT_WAIT: Duration = Duration::from_secs(2);

/// A file-system object, whatever its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeId {
    pub device: u64,
    pub inode: u64,
}

impl TreeId {
    /// The identity of `path` itself (a symlink is not followed).
    pub fn of(path: &Path) -> io::Result<TreeId> {
        let metadata = fs::symlink_metadata(path)?;
        Ok(TreeId {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

/// The tree an install replaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedTree {
    /// Where it lives when installed (the target, or another directory of the base dir
    /// holding a plugin of the same name).
    pub home: PathBuf,
    pub id: TreeId,
}

/// The variable marking every process a postinstall starts (its value is the
/// [`ProcessGroup::token`]).
pub const POSTINSTALL_ID_VARIABLE: &str = "__MFENV_POSTINSTALL_ID";

/// The processes of a postinstall: its process group, and the token in the
/// environment of each of them (recorded before it starts, so nothing it starts
/// escapes, even before its group is recorded or after leaving the group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessGroup {
    pub token: String,
    pub pgid: Option<i32>,
    /// The leader's start time (field 22 of `/proc/PID/stat`), to tell a reused pid.
    pub start_time: Option<u64>,
}

/// What an install is doing, kept in its staging directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub format: u32,
    pub name: String,
    /// `<base>/<name>`.
    pub target: PathBuf,
    pub new_tree: TreeId,
    pub replaced: Option<ReplacedTree>,
    pub postinstall: Option<ProcessGroup>,
    pub committed: bool,
}

impl Journal {
    pub fn new(
        name: &str,
        target: &Path,
        new_tree: TreeId,
        replaced: Option<ReplacedTree>,
    ) -> Self {
        Journal {
            format: FORMAT,
            name: name.to_owned(),
            target: target.to_owned(),
            new_tree,
            replaced,
            postinstall: None,
            committed: false,
        }
    }

    /// Writes the journal of `staging` whole: a kill leaves the previous one or this one.
    pub fn write(&self, staging: &Path) -> io::Result<()> {
        let temporary = staging.join(format!("{JOURNAL_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)?
                .write_all(&text)?;
        }
        fs::rename(&temporary, staging.join(JOURNAL_FILE))
    }

    /// The journal of `staging`, `None` when it has none.
    pub fn read(staging: &Path) -> io::Result<Option<Journal>> {
        let text = match fs::read(staging.join(JOURNAL_FILE)) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let journal: Journal = serde_json::from_slice(&text)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err.to_string()))?;
        if journal.format != FORMAT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown journal format {}", journal.format),
            ));
        }
        Ok(Some(journal))
    }
}

/// How trees are swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moves {
    /// Try `RENAME_EXCHANGE` (off: always the two-rename fallback).
    pub rename_exchange: bool,
}

/// `rename(from, to)` failing when `to` exists.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
    }
    // Without RENAME_NOREPLACE the lock keeps other mfenv processes away.
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    fs::rename(from, to)
}

/// Swaps `first` and `second` with one `RENAME_EXCHANGE`; `Ok(false)` when the system
/// or the file system cannot.
pub(crate) fn try_exchange(first: &Path, second: &Path) -> io::Result<bool> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(
            AT_FDCWD,
            first,
            AT_FDCWD,
            second,
            RenameFlags::RENAME_EXCHANGE,
        ) {
            Ok(()) => return Ok(true),
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
    }
    let _ = (first, second);
    Ok(false)
}

/// One rename of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rename {
    from: PathBuf,
    to: PathBuf,
    /// Fail rather than replace an existing `to`.
    no_replace: bool,
}

impl Rename {
    fn run(&self) -> io::Result<()> {
        if self.no_replace {
            rename_no_replace(&self.from, &self.to)
        } else {
            fs::rename(&self.from, &self.to)
        }
    }
}

/// The renames putting an install in place without `RENAME_EXCHANGE`.
fn placing_renames(journal: &Journal, staging: &Path) -> Vec<Rename> {
    let new_tree = staging.join(NEW_TREE);
    let target = journal.target.clone();
    let rename = |from: PathBuf, to: PathBuf, no_replace: bool| Rename {
        from,
        to,
        no_replace,
    };
    match &journal.replaced {
        None => vec![rename(new_tree, target, true)],
        Some(replaced) if replaced.home == target => vec![
            rename(target.clone(), staging.join(PREVIOUS_TREE), true),
            rename(new_tree, target, true),
        ],
        Some(replaced) => vec![
            rename(new_tree, target, true),
            rename(replaced.home.clone(), staging.join(PREVIOUS_TREE), true),
        ],
    }
}

impl Moves {
    /// Puts the new tree (`staging/metwork_plugin`) in place as the journal says; the
    /// journal is written. On error, [`settle`] puts things back.
    pub fn place(&self, journal: &Journal, staging: &Path) -> io::Result<()> {
        let swaps = journal
            .replaced
            .as_ref()
            .is_some_and(|replaced| replaced.home == journal.target);
        if swaps && self.rename_exchange && try_exchange(&staging.join(NEW_TREE), &journal.target)?
        {
            return Ok(());
        }
        for step in placing_renames(journal, staging) {
            step.run()?;
        }
        Ok(())
    }

    /// Rolls an install back: the new tree into the staging directory, the replaced
    /// one to its home. Idempotent.
    fn roll_back(&self, journal: &Journal, staging: &Path) -> Result<(), String> {
        let find = |id: TreeId| locate(id, journal, staging);
        let target = &journal.target;
        if find(journal.new_tree).as_ref() == Some(target) {
            let swap_back = journal
                .replaced
                .as_ref()
                .filter(|replaced| &replaced.home == target)
                .and_then(|replaced| find(replaced.id))
                .filter(|at| at.starts_with(staging));
            let swapped = match (&swap_back, self.rename_exchange) {
                (Some(at), true) => try_exchange(at, target).map_err(|err| {
                    format!(
                        "cannot swap `{}` and `{}`: {err}",
                        at.display(),
                        target.display()
                    )
                })?,
                _ => false,
            };
            if !swapped {
                let aside = free_name(staging, ROLLED_BACK_TREE);
                rename_no_replace(target, &aside).map_err(|err| {
                    format!(
                        "cannot move `{}` to `{}`: {err}",
                        target.display(),
                        aside.display()
                    )
                })?;
            }
        }
        if let Some(replaced) = &journal.replaced {
            match find(replaced.id) {
                Some(at) if at == replaced.home => {}
                Some(at) => rename_no_replace(&at, &replaced.home).map_err(|err| {
                    format!(
                        "cannot put `{}` back to `{}`: {err}",
                        at.display(),
                        replaced.home.display()
                    )
                })?,
                None => {
                    return Err(format!(
                        "the replaced plugin was not found (neither at `{}` nor in `{}`)",
                        replaced.home.display(),
                        staging.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Where the tree `id` of an install is: its target, the replaced home or a child of
/// the staging directory.
fn locate(id: TreeId, journal: &Journal, staging: &Path) -> Option<PathBuf> {
    let mut candidates = vec![journal.target.clone()];
    if let Some(replaced) = &journal.replaced {
        candidates.push(replaced.home.clone());
    }
    if let Ok(children) = fs::read_dir(staging) {
        let mut children: Vec<PathBuf> = children.flatten().map(|entry| entry.path()).collect();
        children.sort();
        candidates.extend(children);
    }
    candidates
        .into_iter()
        .find(|path| TreeId::of(path).is_ok_and(|found| found == id))
}

/// `staging/NAME`, or `staging/NAME-<n>` when taken.
fn free_name(staging: &Path, name: &str) -> PathBuf {
    let mut path = staging.join(name);
    let mut counter = 1;
    while fs::symlink_metadata(&path).is_ok() {
        path = staging.join(format!("{name}-{counter}"));
        counter += 1;
    }
    path
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it exists.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Kills every process of a postinstall: its process group (unless the group's id now
/// belongs to another process) and every process carrying its token; returns when
/// none is left running, or after a short wait.
pub fn kill_group(group: &ProcessGroup) {
    // While any process of the group lives, its id cannot be given to a new process:
    // a leader with another start time means the group is gone and the id reused.
    let pgid = group.pgid.filter(|pgid| *pgid > 1).filter(|pgid| {
        match (group.start_time, process_start_time(*pgid)) {
            (Some(expected), Some(found)) => expected == found,
            _ => true,
        }
    });
    let marker = format!("{POSTINSTALL_ID_VARIABLE}={}", group.token);
    let started = Instant::now();
    loop {
        let running = running_processes(pgid, marker.as_bytes());
        if running.is_empty() || started.elapsed() >= GROUP_EXIT_WAIT {
            return;
        }
        if let Some(pgid) = pgid {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        for pid in running {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The processes (zombies aside, which do nothing) in group `pgid` or whose
/// environment holds `marker` (`NAME=value`).
fn running_processes(pgid: Option<i32>, marker: &[u8]) -> Vec<i32> {
    let Ok(processes) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in processes.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(after_name) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            continue;
        };
        let mut fields = after_name.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let group = fields.nth(1).and_then(|field| field.parse::<i32>().ok());
        if pid == own || state == "Z" || state == "X" {
            continue;
        }
        let in_group = pgid.is_some() && group == pgid;
        let marked = || {
            fs::read(entry.path().join("environ"))
                .is_ok_and(|environ| environ.split(|byte| *byte == 0).any(|item| item == marker))
        };
        if in_group || marked() {
            found.push(pid);
        }
    }
    found
}

/// True while a process of group `pgid` runs (zombies aside).
pub fn group_is_running(pgid: i32) -> bool {
    !running_processes(Some(pgid), b"").is_empty()
}

/// What settling a staging directory did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Nothing of it was in place: the staging directory is gone.
    Discarded,
    /// An install that did not finish was undone.
    RolledBack { name: String },
    /// A committed install was finished.
    Committed { name: String, target: PathBuf },
    /// The staging directory is kept, for this reason.
    Kept(String),
}

/// Settles the staging directory `staging` (see the module documentation).
pub fn settle(staging: &Path, moves: Moves) -> Settled {
    let journal = match Journal::read(staging) {
        Ok(Some(journal)) => journal,
        Ok(None) => {
            return match remove_tree(staging) {
                Ok(()) => Settled::Discarded,
                Err(err) => Settled::Kept(format!("cannot remove it: {err}")),
            };
        }
        Err(err) => return Settled::Kept(format!("cannot read its `{JOURNAL_FILE}`: {err}")),
    };
    let settled = if journal.committed {
        if TreeId::of(&journal.target).ok() != Some(journal.new_tree) {
            return Settled::Kept(format!(
                "the committed install of plugin `{}` is not at `{}`",
                journal.name,
                journal.target.display()
            ));
        }
        Settled::Committed {
            name: journal.name.clone(),
            target: journal.target.clone(),
        }
    } else {
        if let Some(group) = &journal.postinstall {
            kill_group(group);
        }
        if let Err(reason) = moves.roll_back(&journal, staging) {
            return Settled::Kept(reason);
        }
        Settled::RolledBack {
            name: journal.name.clone(),
        }
    };
    // The journal goes first, so a kill now leaves a directory that is only removed.
    let _ = fs::remove_file(staging.join(JOURNAL_FILE));
    match remove_tree(staging) {
        Ok(()) => settled,
        Err(err) => Settled::Kept(format!("cannot remove it: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A base dir with a staging directory holding the new tree, and optionally an
    /// installed tree at `old_home`.
    struct Scene {
        _dir: tempfile::TempDir,
        base: PathBuf,
        staging: PathBuf,
        journal: Journal,
    }

    fn tree(path: &Path, version: &str) {
        fs::create_dir_all(path.join("bin")).unwrap();
        fs::write(path.join("version"), version).unwrap();
        fs::write(path.join("bin/tool"), version).unwrap();
    }

    fn version_at(path: &Path) -> Option<String> {
        let version = fs::read_to_string(path.join("version")).ok()?;
        assert_eq!(fs::read_to_string(path.join("bin/tool")).unwrap(), version);
        Some(version)
    }

    fn scene(old_home: Option<&str>) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("plugins");
        let staging = base.join(".mfenv-tmp-1");
        tree(&staging.join(NEW_TREE), "new");
        let replaced = old_home.map(|home| {
            let home = base.join(home);
            tree(&home, "old");
            ReplacedTree {
                id: TreeId::of(&home).unwrap(),
                home,
            }
        });
        let new_tree = TreeId::of(&staging.join(NEW_TREE)).unwrap();
        let journal = Journal::new("foo", &base.join("foo"), new_tree, replaced);
        Scene {
            _dir: dir,
            base,
            staging,
            journal,
        }
    }

    /// The plugin trees of the base dir: (directory, version).
    fn installed(base: &Path) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = fs::read_dir(base)
            .unwrap()
            .flatten()
            .map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                (name, version_at(&entry.path()).unwrap_or_default())
            })
            .collect();
        found.sort();
        found
    }

    const FALLBACK: Moves = Moves {
        rename_exchange: false,
    };

    #[test]
    fn a_kill_between_any_two_renames_settles_to_one_complete_version() {
        for old_home in [None, Some("foo"), Some("foo-old")] {
            let steps = placing_renames(&scene(old_home).journal, &scene(old_home).staging).len();
            for done in 0..=steps {
                for committed in [false, true] {
                    if committed && done < steps {
                        continue;
                    }
                    let scene = scene(old_home);
                    let mut journal = scene.journal.clone();
                    journal.committed = committed;
                    journal.write(&scene.staging).unwrap();
                    for step in &placing_renames(&journal, &scene.staging)[..done] {
                        step.run().unwrap();
                    }
                    let settled = settle(&scene.staging, FALLBACK);
                    let case = format!("{old_home:?}, {done} renames, committed {committed}");
                    let expected = if committed {
                        assert!(matches!(settled, Settled::Committed { .. }), "{case}");
                        vec![("foo".to_owned(), "new".to_owned())]
                    } else {
                        assert!(matches!(settled, Settled::RolledBack { .. }), "{case}");
                        old_home
                            .map(|home| vec![(home.to_owned(), "old".to_owned())])
                            .unwrap_or_default()
                    };
                    assert_eq!(installed(&scene.base), expected, "{case}");
                    // Settling again changes nothing.
                    assert_eq!(settle(&scene.staging, FALLBACK), Settled::Discarded);
                    assert_eq!(installed(&scene.base), expected, "{case}");
                }
            }
        }
    }

    #[test]
    fn a_rollback_killed_halfway_is_finished_by_the_next_one() {
        let scene = scene(Some("foo"));
        scene.journal.write(&scene.staging).unwrap();
        FALLBACK.place(&scene.journal, &scene.staging).unwrap();
        // The first rename of the rollback, then the kill.
        fs::rename(&scene.journal.target, scene.staging.join(ROLLED_BACK_TREE)).unwrap();
        assert_eq!(
            settle(&scene.staging, FALLBACK),
            Settled::RolledBack {
                name: "foo".to_owned()
            }
        );
        assert_eq!(
            installed(&scene.base),
            [("foo".to_owned(), "old".to_owned())]
        );
    }

    #[test]
    fn the_swap_is_undone_with_or_without_rename_exchange() {
        for rename_exchange in [true, false] {
            let moves = Moves { rename_exchange };
            let scene = scene(Some("foo"));
            scene.journal.write(&scene.staging).unwrap();
            moves.place(&scene.journal, &scene.staging).unwrap();
            assert_eq!(version_at(&scene.journal.target).as_deref(), Some("new"));
            assert!(matches!(
                settle(&scene.staging, moves),
                Settled::RolledBack { .. }
            ));
            assert_eq!(
                installed(&scene.base),
                [("foo".to_owned(), "old".to_owned())]
            );
        }
    }

    #[test]
    fn without_a_journal_the_staging_directory_is_removed_and_nothing_else() {
        let scene = scene(Some("foo"));
        assert_eq!(settle(&scene.staging, FALLBACK), Settled::Discarded);
        assert_eq!(
            installed(&scene.base),
            [("foo".to_owned(), "old".to_owned())]
        );
    }

    #[test]
    fn an_unreadable_journal_or_a_lost_tree_keeps_the_staging_directory() {
        let scene = scene(Some("foo"));
        fs::write(scene.staging.join(JOURNAL_FILE), "{").unwrap();
        assert!(matches!(settle(&scene.staging, FALLBACK), Settled::Kept(_)));
        assert!(scene.staging.join(NEW_TREE).is_dir());

        let scene = self::scene(Some("foo"));
        let mut journal = scene.journal.clone();
        journal.replaced.as_mut().unwrap().id.inode += 1_000_000;
        journal.write(&scene.staging).unwrap();
        assert!(matches!(settle(&scene.staging, FALLBACK), Settled::Kept(_)));
        assert!(scene.staging.join(NEW_TREE).is_dir());
    }

    #[test]
    fn a_start_time_is_read_from_proc() {
        let own = std::process::id() as i32;
        assert!(process_start_time(own).is_some());
        assert!(group_is_running(nix::unistd::getpgrp().as_raw()));
    }
}
