//! Files and directories mfenv creates for itself (logs, locks, OP overrides, the
//! supervisor's state, temporary directories) are for their owner only: files `0600`,
//! directories `0700`, whatever the umask (a stricter umask still applies). They are
//! created so from the start, with no window where another user could open them.
//! Existing files and directories keep the mode they have (an administrator may have
//! opened a log directory to a group on purpose).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Mode of the files mfenv creates for itself.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the directories mfenv creates for itself.
pub const DIR_MODE: u32 = 0o700;

/// `mkdir -p` where every directory created is `0700`.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates the parent directories of `path` (`0700`) when missing.
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => create_dir_all(parent),
        _ => Ok(()),
    }
}

/// Options that create a missing file as `0600`.
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Opens `path` for appending, creating it (`0600`) and its directories (`0700`).
pub fn append(path: &Path) -> io::Result<File> {
    create_parent(path)?;
    open_options().create(true).append(true).open(path)
}

/// Writes `contents` to `path`, creating it (`0600`) and its directories (`0700`); an
/// existing file is truncated and keeps its mode.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write;
    create_parent(path)?;
    open_options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?
        .write_all(contents.as_ref())
}

/// Writes `contents` to a new file at `path` (`0600`; a file already there is replaced,
/// not reused), flushed to disk. The directory must exist.
pub fn write_new(path: &Path, contents: impl AsRef<[u8]>) -> io::Result<()> {
    use std::io::Write;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(contents.as_ref())?;
    file.sync_all()
}

/// Replaces `path` whole: `contents` go to `temporary` (see [`write_new`]), which is
/// then renamed to `path`, so `path` holds the old or the new contents, never a part.
/// `temporary` is removed when the rename fails.
pub fn replace(path: &Path, temporary: &Path, contents: impl AsRef<[u8]>) -> io::Result<()> {
    write_new(temporary, contents)?;
    std::fs::rename(temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_file_replaced_whole_is_private_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let temporary = dir.path().join("f.tmp");
        std::fs::write(&temporary, "stale").unwrap();
        replace(&path, &temporary, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), FILE_MODE);
        assert!(!temporary.exists());
        // A rename that fails removes the temporary file.
        let missing = dir.path().join("missing/f");
        assert!(replace(&missing, &temporary, "x").is_err());
        assert!(!temporary.exists());
    }

    #[test]
    fn files_and_directories_are_for_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a/b/log");
        drop(append(&log).unwrap());
        assert_eq!(mode(&log), FILE_MODE);
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
        assert_eq!(mode(&dir.path().join("a/b")), DIR_MODE);
        let written = dir.path().join("c/override.ini");
        write(&written, "x").unwrap();
        assert_eq!(mode(&written), FILE_MODE);
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "x");
    }

    #[test]
    fn existing_files_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.log");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write(&path, "new\n").unwrap();
        assert_eq!(mode(&path), 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    }
}
