//! Autorestart on file changes (reference E3): a plugin whose home has
//! `.autorestart_includes` or `.autorestart_excludes` gets its daemons restarted when
//! a file of its home changes.
//!
//! Both files use gitignore syntax, relative to the plugin home. A changed path
//! triggers when it is a directory or matches the includes (every file does when there
//! is no includes file), and neither it nor one of its parent directories matches the
//! excludes. Excluded directories are not watched at all (a `node_modules` or a
//! virtualenv would cost thousands of watches), and directories created later are
//! watched as they appear (the original fixed the set when it started).
//!
//! The watching itself is inotify through the `notify` crate; events go to the
//! supervisor's loop, which debounces them.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, ErrorKind, Result};

pub const INCLUDES_FILE: &str = ".autorestart_includes";
pub const EXCLUDES_FILE: &str = ".autorestart_excludes";

/// True when `home` asks for autorestart.
pub fn wanted(home: &Path) -> bool {
    home.join(INCLUDES_FILE).is_file() || home.join(EXCLUDES_FILE).is_file()
}

/// What identifies a watched home: the directory itself (a reinstall swaps in another
/// one) and the text of its two pattern files.
pub type Signature = (u64, u64, String, String);

/// The signature of `home` as it is now (`None`: it cannot be read).
pub fn signature(home: &Path) -> Option<Signature> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(home).ok()?;
    let read = |name: &str| std::fs::read_to_string(home.join(name)).unwrap_or_default();
    Some((
        metadata.dev(),
        metadata.ino(),
        read(INCLUDES_FILE),
        read(EXCLUDES_FILE),
    ))
}

/// The most directories watched for one plugin (each costs an inotify watch, a
/// limited resource shared by the user's processes).
pub const MAX_WATCHED_DIRS: usize = 10_000;

/// The patterns of one plugin home.
#[derive(Debug)]
pub struct Rules {
    /// The home, symlinks resolved (what inotify reports paths under).
    pub root: PathBuf,
    /// The home when the rules were read.
    pub signature: Option<Signature>,
    includes: Option<Gitignore>,
    excludes: Option<Gitignore>,
}

impl Rules {
    /// Reads the pattern files of `home`.
    pub fn read(home: &Path) -> Result<Rules> {
        let root = home
            .canonicalize()
            .map_err(|err| Error::io("cannot resolve", home, &err))?;
        let read = |name: &str| -> Result<Option<Gitignore>> {
            let file = root.join(name);
            if !file.is_file() {
                return Ok(None);
            }
            let mut builder = GitignoreBuilder::new(&root);
            if let Some(err) = builder.add(&file) {
                return Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("cannot read `{}`", file.display()),
                )
                .caused_by(err.to_string()));
            }
            builder.build().map(Some).map_err(|err| {
                Error::new(
                    ErrorKind::LayerFile,
                    format!("invalid patterns in `{}`", file.display()),
                )
                .caused_by(err.to_string())
            })
        };
        Ok(Rules {
            includes: read(INCLUDES_FILE)?,
            excludes: read(EXCLUDES_FILE)?,
            signature: signature(home),
            root,
        })
    }

    fn excluded(&self, path: &Path, is_dir: bool) -> bool {
        self.excludes.as_ref().is_some_and(|excludes| {
            excludes
                .matched_path_or_any_parents(path, is_dir)
                .is_ignore()
        })
    }

    /// True when a change of `path` (absolute, under the root) restarts the daemons.
    pub fn triggers(&self, path: &Path, is_dir: bool) -> bool {
        if !path.starts_with(&self.root) || path == self.root {
            return false;
        }
        let included = is_dir
            || self.includes.as_ref().is_none_or(|includes| {
                includes
                    .matched_path_or_any_parents(path, is_dir)
                    .is_ignore()
            });
        included && !self.excluded(path, is_dir)
    }

    /// True when directory `path` (absolute, under the root) is to be watched.
    pub fn watches_dir(&self, path: &Path) -> bool {
        path == self.root || (path.starts_with(&self.root) && !self.excluded(path, true))
    }
}

/// What a watch reports to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub plugin: String,
    pub path: PathBuf,
    /// A directory was created: watch it too.
    pub new_dir: bool,
}

/// The watch of one plugin home.
pub struct Watch {
    pub rules: Rules,
    watcher: RecommendedWatcher,
    /// Directories watched.
    pub watched: usize,
    /// Why some directories could not be watched (first failure), if any.
    pub problem: Option<String>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("rules", &self.rules).finish()
    }
}

impl Watch {
    /// Starts watching the home of `plugin`; changes go to `sender`, wrapped by `wrap`.
    pub fn start<T: Send + 'static>(
        plugin: &str,
        home: &Path,
        sender: Sender<T>,
        wrap: fn(Change) -> T,
    ) -> Result<Watch> {
        let rules = Rules::read(home)?;
        let plugin = plugin.to_owned();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else {
                return;
            };
            let relevant = matches!(
                event.kind,
                EventKind::Create(_)
                    | EventKind::Remove(_)
                    | EventKind::Modify(_)
                    | EventKind::Access(notify::event::AccessKind::Close(
                        notify::event::AccessMode::Write
                    ))
            );
            if !relevant {
                return;
            }
            for path in event.paths {
                // A symlink to a directory is not followed (it may lead anywhere).
                let new_dir = matches!(event.kind, EventKind::Create(_))
                    && std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_dir());
                let _ = sender.send(wrap(Change {
                    plugin: plugin.clone(),
                    path,
                    new_dir,
                }));
            }
        })
        .map_err(|err| {
            Error::new(ErrorKind::Io, "cannot start watching files").caused_by(err.to_string())
        })?;
        let mut watch = Watch {
            rules,
            watcher,
            watched: 0,
            problem: None,
        };
        let root = watch.rules.root.clone();
        watch.add_tree(&root);
        Ok(watch)
    }

    /// Watches `dir` and the directories below it that are not excluded (symlinks
    /// are not followed, except the home itself).
    pub fn add_tree(&mut self, dir: &Path) {
        if dir != self.rules.root
            && !std::fs::symlink_metadata(dir).is_ok_and(|metadata| metadata.is_dir())
        {
            return;
        }
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            if !self.rules.watches_dir(&dir) {
                continue;
            }
            if self.watched >= MAX_WATCHED_DIRS {
                self.problem.get_or_insert_with(|| {
                    format!("more than {MAX_WATCHED_DIRS} directories: the others are not watched (exclude big directories in {EXCLUDES_FILE})")
                });
                return;
            }
            if let Err(err) = self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                self.problem.get_or_insert_with(|| {
                    format!(
                        "cannot watch `{}`: {err} (see /proc/sys/fs/inotify/max_user_watches)",
                        dir.display()
                    )
                });
                continue;
            }
            self.watched += 1;
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Symlinks are not followed: they may lead anywhere.
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    pending.push(entry.path());
                }
            }
        }
    }

    /// True when `change` restarts the daemons.
    pub fn triggers(&self, change: &Change) -> bool {
        self.rules
            .triggers(&change.path, change.new_dir || change.path.is_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(includes: Option<&str>, excludes: Option<&str>) -> (tempfile::TempDir, Rules) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = includes {
            std::fs::write(dir.path().join(INCLUDES_FILE), text).unwrap();
        }
        if let Some(text) = excludes {
            std::fs::write(dir.path().join(EXCLUDES_FILE), text).unwrap();
        }
        let rules = Rules::read(dir.path()).unwrap();
        (dir, rules)
    }

    #[test]
    fn includes_and_excludes_decide() {
        let (_dir, rules) = rules(
            Some("*.py\n*.ini\n"),
            Some("/local\n__pycache__\n/ignored/\n"),
        );
        let path = |rel: &str| rules.root.join(rel);
        assert!(rules.triggers(&path("main.py"), false));
        assert!(rules.triggers(&path("pkg/sub/mod.py"), false));
        assert!(rules.triggers(&path("config.ini"), false));
        assert!(!rules.triggers(&path("notes.txt"), false));
        assert!(rules.triggers(&path("newdir"), true), "directories trigger");
        assert!(!rules.triggers(&path("local/lib/x.py"), false));
        assert!(!rules.triggers(&path("pkg/__pycache__/mod.pyc"), false));
        assert!(!rules.triggers(&path("ignored/a.py"), false));
        assert!(!rules.triggers(Path::new("/elsewhere/a.py"), false));
        assert!(!rules.watches_dir(&path("local")));
        assert!(rules.watches_dir(&path("pkg")));
    }

    #[test]
    fn without_includes_every_file_triggers() {
        let (_dir, rules) = rules(None, Some("*.log\n"));
        assert!(rules.triggers(&rules.root.join("anything"), false));
        assert!(!rules.triggers(&rules.root.join("x.log"), false));
        assert!(wanted(&rules.root));
    }
}
