//! Reading `.plugin` files: the whole-archive check, and the safe extraction into a
//! staging directory (reference B4, DESIGN §5).
//!
//! A `.plugin` file is untrusted input. [`inspect`] reads the whole gzip tar once and
//! writes nothing: it checks the gzip stream to its end (a truncated file is refused),
//! the single top directory `metwork_plugin/`, the mandatory members and their content,
//! and every entry with [`EntryValidator`]. [`extract`] reads the archive a second time
//! into a fresh staging directory, running the same validator again, so that a file
//! changed between the two reads cannot slip anything through.
//!
//! Invariants the validator enforces, so that extraction never writes outside the
//! staging directory and the installed plugin never links outside itself:
//!
//! - entry names are relative, without `..`, all below `metwork_plugin/`;
//! - only directories, regular files, symlinks and hard links; no device, fifo or
//!   sparse file;
//! - no name appears twice, and no entry sits below a non-directory (so writing an entry
//!   never goes through a symlink of the archive);
//! - a symlink is relative and resolves inside the plugin, following the archive's own
//!   symlinks exactly as the kernel would (`..` after a symlink climbs from its target);
//! - a hard link names an earlier regular file of the archive.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::error::{Error, ErrorKind, Result, io_reason};
use crate::plugin::model::{
    FILES_FILE, LABEL_FILE, METADATA_FILE, Metadata, TOP_DIRECTORY, name_from_label,
};
use crate::plugin::progress::Progress;

/// How many symlinks one resolution may follow (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;
/// Size limits of the members read into memory.
const MAX_LABEL_SIZE: u64 = 4096;
const MAX_JSON_SIZE: u64 = 64 << 20;
/// Read buffer for the compressed stream.
const READ_BUFFER: usize = 256 << 10;

/// What an archive entry is, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind<'a> {
    Directory,
    File,
    /// A symlink and its target as stored.
    Symlink(&'a [u8]),
    /// A hard link and the archive name it links to.
    HardLink(&'a [u8]),
}

/// An accepted entry, named relative to the top directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedEntry {
    /// `metwork_plugin/` itself.
    Root,
    Directory(PathBuf),
    File(PathBuf),
    Symlink(PathBuf, PathBuf),
    /// A hard link and the (relative) file it links to.
    HardLink(PathBuf, PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Directory,
    File,
    Symlink(Vec<u8>),
}

/// Checks archive entries one by one, then the links between them ([`finish`]).
///
/// [`finish`]: EntryValidator::finish
#[derive(Debug, Default)]
pub struct EntryValidator {
    /// Relative path (components joined by `/`) → what is there.
    nodes: HashMap<Vec<u8>, Node>,
    symlinks: Vec<Vec<u8>>,
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The components of an archive name, without empty and `.` parts.
fn components(name: &[u8]) -> Vec<&[u8]> {
    name.split(|b| *b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .collect()
}

fn to_path(parts: &[&[u8]]) -> PathBuf {
    let mut path = PathBuf::new();
    for part in parts {
        path.push(OsStr::from_bytes(part));
    }
    path
}

/// The part of an archive name below `metwork_plugin/`, checked to be safe.
fn relative_name(name: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    if name.starts_with(b"/") {
        return Err(format!("`{}` is an absolute path", show(name)));
    }
    let parts = components(name);
    if parts.contains(&&b".."[..]) {
        return Err(format!("`{}` contains a `..` component", show(name)));
    }
    match parts.split_first() {
        None => Err("an entry has an empty name".to_owned()),
        Some((top, rest)) if *top == TOP_DIRECTORY.as_bytes() => Ok(rest.to_vec()),
        Some(_) => Err(format!(
            "`{}` is outside the single top directory `{TOP_DIRECTORY}/`",
            show(name)
        )),
    }
}

impl EntryValidator {
    pub fn new() -> Self {
        EntryValidator::default()
    }

    /// Checks one entry named `name` (as stored in the archive).
    pub fn add(
        &mut self,
        name: &[u8],
        kind: EntryKind<'_>,
    ) -> std::result::Result<PlannedEntry, String> {
        let parts = relative_name(name)?;
        if parts.is_empty() {
            return match kind {
                EntryKind::Directory => Ok(PlannedEntry::Root),
                _ => Err(format!("`{TOP_DIRECTORY}` is not a directory")),
            };
        }
        let mut key: Vec<u8> = Vec::with_capacity(name.len());
        for (index, part) in parts[..parts.len() - 1].iter().enumerate() {
            if index > 0 {
                key.push(b'/');
            }
            key.extend_from_slice(part);
            match self.nodes.get(&key) {
                None => {
                    self.nodes.insert(key.clone(), Node::Directory);
                }
                Some(Node::Directory) => {}
                Some(_) => {
                    return Err(format!(
                        "`{}` is below `{TOP_DIRECTORY}/{}`, which is not a directory",
                        show(name),
                        show(&key)
                    ));
                }
            }
        }
        if parts.len() > 1 {
            key.push(b'/');
        }
        key.extend_from_slice(parts[parts.len() - 1]);
        let relative = to_path(&parts);
        if let Some(existing) = self.nodes.get(&key)
            && !(kind == EntryKind::Directory && *existing == Node::Directory)
        {
            return Err(format!("`{}` appears twice in the archive", show(name)));
        }
        let (node, planned) = match kind {
            EntryKind::Directory => (Node::Directory, PlannedEntry::Directory(relative)),
            EntryKind::File => (Node::File, PlannedEntry::File(relative)),
            EntryKind::Symlink(target) => {
                if target.is_empty() {
                    return Err(format!("symlink `{}` has an empty target", show(name)));
                }
                if target.starts_with(b"/") {
                    return Err(format!(
                        "symlink `{}` points to the absolute path `{}`, outside the plugin",
                        show(name),
                        show(target)
                    ));
                }
                self.symlinks.push(key.clone());
                (
                    Node::Symlink(target.to_vec()),
                    PlannedEntry::Symlink(relative, PathBuf::from(OsStr::from_bytes(target))),
                )
            }
            EntryKind::HardLink(target) => {
                let outside = || {
                    format!(
                        "hard link `{}` points outside the plugin (`{}`)",
                        show(name),
                        show(target)
                    )
                };
                let target_parts = relative_name(target).map_err(|_| outside())?;
                if target_parts.is_empty() {
                    return Err(outside());
                }
                let target_key = target_parts.join(&b'/');
                if self.nodes.get(&target_key) != Some(&Node::File) {
                    return Err(format!(
                        "hard link `{}` points to `{}`, which is not a regular file earlier in the archive",
                        show(name),
                        show(target)
                    ));
                }
                (
                    Node::File,
                    PlannedEntry::HardLink(relative, to_path(&target_parts)),
                )
            }
        };
        self.nodes.insert(key, node);
        Ok(planned)
    }

    /// True when `relative` (below the top directory) is a regular file of the archive.
    pub fn has_file(&self, relative: &str) -> bool {
        self.nodes.get(relative.as_bytes()) == Some(&Node::File)
    }

    /// Checks what needs the whole archive: every symlink resolves inside the plugin.
    pub fn finish(&self) -> std::result::Result<(), Vec<String>> {
        let problems: Vec<String> = self
            .symlinks
            .iter()
            .filter_map(|key| self.check_symlink(key).err())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn check_symlink(&self, key: &[u8]) -> std::result::Result<(), String> {
        let Some(Node::Symlink(target)) = self.nodes.get(key) else {
            return Ok(());
        };
        let outside = || {
            format!(
                "symlink `{TOP_DIRECTORY}/{}` resolves outside the plugin (it points to `{}`)",
                show(key),
                show(target)
            )
        };
        let mut stack: Vec<Vec<u8>> = components(key).iter().map(|part| part.to_vec()).collect();
        stack.pop();
        let mut pending: VecDeque<Vec<u8>> =
            components(target).iter().map(|p| p.to_vec()).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            if part == b".." {
                if stack.pop().is_none() {
                    return Err(outside());
                }
                continue;
            }
            stack.push(part);
            let here = stack.join(&b'/');
            if let Some(Node::Symlink(next)) = self.nodes.get(&here) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(format!(
                        "symlink `{TOP_DIRECTORY}/{}` is part of a symlink loop",
                        show(key)
                    ));
                }
                if next.starts_with(b"/") {
                    return Err(outside());
                }
                stack.pop();
                for component in components(next).into_iter().rev() {
                    pending.push_front(component.to_vec());
                }
            }
        }
        Ok(())
    }
}

/// What [`inspect`] learnt from a `.plugin` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    pub path: PathBuf,
    /// The label as stored (stripped).
    pub label: String,
    /// The plugin name, from the label.
    pub name: String,
    pub metadata: Metadata,
    /// `.files.json`.
    pub files: Vec<String>,
    /// Number of entries to extract.
    pub entries: u64,
}

fn corrupt(path: &Path, err: &io::Error) -> Error {
    Error::new(
        ErrorKind::LayerFile,
        format!("`{}` is truncated or corrupt", path.display()),
    )
    .caused_by(io_reason(err))
}

fn unsafe_archive(path: &Path, problems: Vec<String>) -> Error {
    let mut error = Error::new(
        ErrorKind::LayerFile,
        format!("`{}` is not a valid plugin archive", path.display()),
    );
    for problem in problems {
        error = error.caused_by(problem);
    }
    error
}

fn missing_member(path: &Path, member: &str, reason: Option<String>) -> Error {
    let error = unsafe_archive(
        path,
        vec![format!(
            "can't read/find {TOP_DIRECTORY}/{member} file in plugin"
        )],
    );
    match reason {
        Some(reason) => error.caused_by(reason),
        None => error,
    }
}

/// Opens `path` as a gzip stream, refusing what does not start like one.
fn open_gzip(path: &Path) -> Result<(File, GzDecoder<BufReader<File>>)> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("file `{}` not found", path.display()),
            ));
        }
        Err(err) => return Err(Error::io("cannot open", path, &err)),
    };
    let metadata = file
        .metadata()
        .map_err(|err| Error::io("cannot read", path, &err))?;
    if !metadata.is_file() {
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!("`{}` is not a file", path.display()),
        ));
    }
    let mut magic = [0u8; 2];
    let read = file
        .read(&mut magic)
        .map_err(|err| Error::io("cannot read", path, &err))?;
    if read < 2 || magic != [0x1f, 0x8b] {
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!(
                "can't open `{}` as a tar.gz file => this is probably not a metwork >= 1.0 plugin",
                path.display()
            ),
        )
        .caused_by("it does not start with the gzip signature"));
    }
    file.rewind()
        .map_err(|err| Error::io("cannot read", path, &err))?;
    let reader = file
        .try_clone()
        .map_err(|err| Error::io("cannot read", path, &err))?;
    Ok((
        file,
        GzDecoder::new(BufReader::with_capacity(READ_BUFFER, reader)),
    ))
}

/// The kind of an entry, or why it is refused.
fn entry_kind<'a>(
    name: &[u8],
    entry_type: EntryType,
    link: Option<&'a [u8]>,
) -> std::result::Result<Option<EntryKind<'a>>, String> {
    let link = || link.unwrap_or_default();
    Ok(Some(match entry_type {
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Directory => EntryKind::Directory,
        EntryType::Symlink => EntryKind::Symlink(link()),
        EntryType::Link => EntryKind::HardLink(link()),
        // Global pax headers only carry metadata (git archive writes one).
        EntryType::XGlobalHeader => return Ok(None),
        EntryType::Char | EntryType::Block => {
            return Err(format!("`{}` is a device", show(name)));
        }
        EntryType::Fifo => return Err(format!("`{}` is a fifo", show(name))),
        EntryType::GNUSparse => {
            return Err(format!("`{}` is a sparse file (not supported)", show(name)));
        }
        other => {
            return Err(format!(
                "`{}` has the unsupported entry type `{}`",
                show(name),
                other.as_byte() as char
            ));
        }
    }))
}

fn read_member(entry: &mut impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    entry.take(limit + 1).read_to_end(&mut data)?;
    Ok((data.len() as u64 <= limit).then_some(data))
}

/// Reads the whole `.plugin` file at `path` and checks it; writes nothing.
/// `module_lowercase` is the module its label must name.
pub fn inspect(path: &Path, module_lowercase: &str) -> Result<(File, ArchiveSummary)> {
    let (file, decoder) = open_gzip(path)?;
    let mut archive = tar::Archive::new(decoder);
    let mut validator = EntryValidator::new();
    let mut problems = Vec::new();
    let mut label = None;
    let mut metadata = None;
    let mut files = None;
    let mut entries: u64 = 0;
    let iterator = archive.entries().map_err(|err| corrupt(path, &err))?;
    for entry in iterator {
        let mut entry = entry.map_err(|err| corrupt(path, &err))?;
        let name = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|link| link.into_owned());
        let kind = match entry_kind(&name, entry.header().entry_type(), link.as_deref()) {
            Ok(Some(kind)) => kind,
            Ok(None) => continue,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let planned = match validator.add(&name, kind) {
            Ok(planned) => planned,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        entries += 1;
        let PlannedEntry::File(relative) = planned else {
            continue;
        };
        let member = relative.as_os_str().as_bytes();
        let limit = if member == LABEL_FILE.as_bytes() {
            MAX_LABEL_SIZE
        } else if member == METADATA_FILE.as_bytes() || member == FILES_FILE.as_bytes() {
            MAX_JSON_SIZE
        } else {
            continue;
        };
        let data = read_member(&mut entry, limit).map_err(|err| corrupt(path, &err))?;
        let Some(data) = data else {
            problems.push(format!(
                "`{TOP_DIRECTORY}/{}` is too large",
                relative.display()
            ));
            continue;
        };
        let text = String::from_utf8(data).map_err(|_| "not UTF-8".to_owned());
        if member == LABEL_FILE.as_bytes() {
            label = Some(text);
        } else if member == METADATA_FILE.as_bytes() {
            metadata = Some(text);
        } else {
            files = Some(text);
        }
    }
    // The tar end marker may come before the end of the gzip stream: reading on checks
    // that the stream is complete (its CRC and length trailer).
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(|err| corrupt(path, &err))?;
    if let Err(more) = validator.finish() {
        problems.extend(more);
    }
    if !problems.is_empty() {
        return Err(unsafe_archive(path, problems));
    }
    let label = match label {
        None => return Err(missing_member(path, LABEL_FILE, None)),
        Some(Err(reason)) => return Err(missing_member(path, LABEL_FILE, Some(reason))),
        Some(Ok(text)) => text,
    };
    let name = name_from_label(&label, module_lowercase)
        .map_err(|reason| missing_member(path, LABEL_FILE, Some(reason)))?;
    let metadata = match metadata {
        None => return Err(missing_member(path, METADATA_FILE, None)),
        Some(Err(reason)) => return Err(missing_member(path, METADATA_FILE, Some(reason))),
        Some(Ok(text)) => Metadata::parse(&text)
            .map_err(|reason| missing_member(path, METADATA_FILE, Some(reason)))?,
    };
    let files = match files {
        None => return Err(missing_member(path, FILES_FILE, None)),
        Some(Err(reason)) => return Err(missing_member(path, FILES_FILE, Some(reason))),
        Some(Ok(text)) => serde_json::from_str::<Vec<String>>(text.trim())
            .map_err(|err| missing_member(path, FILES_FILE, Some(err.to_string())))?,
    };
    Ok((
        file,
        ArchiveSummary {
            path: path.to_owned(),
            label: label.trim().to_owned(),
            name,
            metadata,
            files,
            entries,
        },
    ))
}

/// Creates directories below the extraction root, remembering those that exist.
struct DirectoryMaker {
    made: HashSet<PathBuf>,
}

impl DirectoryMaker {
    fn ensure(&mut self, directory: &Path) -> io::Result<()> {
        if self.made.contains(directory) {
            return Ok(());
        }
        if let Some(parent) = directory.parent() {
            self.ensure(parent)?;
        }
        match fs::create_dir(directory) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(directory)?.is_dir() {
                    return Err(err);
                }
            }
            Err(err) => return Err(err),
        }
        self.made.insert(directory.to_owned());
        Ok(())
    }
}

/// Extracts the archive `file` (already checked by [`inspect`]) into
/// `<staging>/metwork_plugin`. `staging` must be a new, empty directory; on error its
/// content is left for the caller to remove.
pub fn extract(
    file: File,
    summary: &ArchiveSummary,
    staging: &Path,
    progress: &mut Progress,
) -> Result<PathBuf> {
    let path = &summary.path;
    let mut file = file;
    file.rewind()
        .map_err(|err| Error::io("cannot read", path, &err))?;
    let decoder = GzDecoder::new(BufReader::with_capacity(READ_BUFFER, file));
    let mut archive = tar::Archive::new(decoder);
    let root = staging.join(TOP_DIRECTORY);
    fs::create_dir(&root).map_err(|err| Error::io("cannot create", &root, &err))?;
    let mut directories = DirectoryMaker {
        made: HashSet::from([staging.to_owned(), root.clone()]),
    };
    let mut validator = EntryValidator::new();
    let mut directory_modes: Vec<(PathBuf, u32)> = Vec::new();
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut done: u64 = 0;
    let iterator = archive.entries().map_err(|err| corrupt(path, &err))?;
    for entry in iterator {
        let mut entry = entry.map_err(|err| corrupt(path, &err))?;
        let name = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|link| link.into_owned());
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o777;
        let mtime = header.mtime().ok();
        let planned = entry_kind(&name, header.entry_type(), link.as_deref())
            .and_then(|kind| match kind {
                Some(kind) => validator.add(&name, kind).map(Some),
                None => Ok(None),
            })
            .map_err(|problem| unsafe_archive(path, vec![problem]))?;
        let Some(planned) = planned else {
            continue;
        };
        let write_error = |target: &Path, err: io::Error| Error::io("cannot write", target, &err);
        match planned {
            PlannedEntry::Root => directory_modes.push((root.clone(), mode)),
            PlannedEntry::Directory(relative) => {
                let target = root.join(relative);
                directories
                    .ensure(&target)
                    .map_err(|err| write_error(&target, err))?;
                directory_modes.push((target, mode));
            }
            PlannedEntry::File(relative) => {
                let target = root.join(relative);
                if let Some(parent) = target.parent() {
                    directories
                        .ensure(parent)
                        .map_err(|err| write_error(parent, err))?;
                }
                let mut output = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .map_err(|err| write_error(&target, err))?;
                loop {
                    let read = entry.read(&mut buffer).map_err(|err| corrupt(path, &err))?;
                    if read == 0 {
                        break;
                    }
                    output
                        .write_all(&buffer[..read])
                        .map_err(|err| write_error(&target, err))?;
                }
                output
                    .set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|err| write_error(&target, err))?;
                // An mtime beyond what the clock holds is not kept (no overflow).
                if let Some(time) = mtime.and_then(|mtime| {
                    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(mtime))
                }) {
                    output
                        .set_modified(time)
                        .map_err(|err| write_error(&target, err))?;
                }
            }
            PlannedEntry::Symlink(relative, target_path) => {
                let target = root.join(relative);
                if let Some(parent) = target.parent() {
                    directories
                        .ensure(parent)
                        .map_err(|err| write_error(parent, err))?;
                }
                std::os::unix::fs::symlink(&target_path, &target)
                    .map_err(|err| write_error(&target, err))?;
            }
            PlannedEntry::HardLink(relative, original) => {
                let target = root.join(relative);
                if let Some(parent) = target.parent() {
                    directories
                        .ensure(parent)
                        .map_err(|err| write_error(parent, err))?;
                }
                fs::hard_link(root.join(original), &target)
                    .map_err(|err| write_error(&target, err))?;
            }
        }
        done += 1;
        progress.update(done, summary.entries.max(done), "entries");
    }
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(|err| corrupt(path, &err))?;
    validator
        .finish()
        .map_err(|problems| unsafe_archive(path, problems))?;
    for member in [LABEL_FILE, METADATA_FILE, FILES_FILE] {
        if !validator.has_file(member) {
            return Err(missing_member(path, member, None));
        }
    }
    // Deepest first, and always usable by their owner, so nothing blocks a later
    // removal of the plugin.
    for (directory, mode) in directory_modes.iter().rev() {
        fs::set_permissions(directory, fs::Permissions::from_mode(mode | 0o700))
            .map_err(|err| Error::io("cannot write", directory, &err))?;
    }
    progress.finish();
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(entries: &[(&str, EntryKind<'_>)]) -> std::result::Result<(), String> {
        let mut validator = EntryValidator::new();
        for (name, kind) in entries {
            validator.add(name.as_bytes(), *kind)?;
        }
        validator.finish().map_err(|problems| problems.join("; "))
    }

    #[test]
    fn unsafe_names_are_refused() {
        let error = check(&[("/etc/passwd", EntryKind::File)]).unwrap_err();
        assert!(error.contains("absolute path"), "{error}");
        let error = check(&[("metwork_plugin/../x", EntryKind::File)]).unwrap_err();
        assert!(error.contains("`..`"), "{error}");
        let error = check(&[("other/x", EntryKind::File)]).unwrap_err();
        assert!(error.contains("single top directory"), "{error}");
        let error = check(&[
            ("metwork_plugin/a", EntryKind::File),
            ("metwork_plugin/a", EntryKind::File),
        ])
        .unwrap_err();
        assert!(error.contains("twice"), "{error}");
        assert!(check(&[("./metwork_plugin/a", EntryKind::File)]).is_ok());
    }

    #[test]
    fn nothing_is_written_through_an_archive_symlink() {
        let error = check(&[
            ("metwork_plugin/link", EntryKind::Symlink(b"sub")),
            ("metwork_plugin/link/x", EntryKind::File),
        ])
        .unwrap_err();
        assert!(error.contains("which is not a directory"), "{error}");
        let error = check(&[
            ("metwork_plugin/sub/x", EntryKind::File),
            ("metwork_plugin/sub", EntryKind::Symlink(b"elsewhere")),
        ])
        .unwrap_err();
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn symlinks_must_resolve_inside_the_plugin() {
        assert!(check(&[("metwork_plugin/a", EntryKind::Symlink(b"/etc/passwd"))]).is_err());
        assert!(check(&[("metwork_plugin/a", EntryKind::Symlink(b"../x"))]).is_err());
        assert!(check(&[("metwork_plugin/d/a", EntryKind::Symlink(b"../x"))]).is_ok());
        assert!(check(&[("metwork_plugin/d/a", EntryKind::Symlink(b"../../x"))]).is_err());
        // `up` is the plugin root; `up/..` is outside even though it looks like `.`.
        let error = check(&[
            ("metwork_plugin/sub/up", EntryKind::Symlink(b"..")),
            ("metwork_plugin/x", EntryKind::Symlink(b"sub/up/../y")),
        ])
        .unwrap_err();
        assert!(
            error.contains("`metwork_plugin/x` resolves outside"),
            "{error}"
        );
        let error = check(&[
            ("metwork_plugin/a", EntryKind::Symlink(b"b")),
            ("metwork_plugin/b", EntryKind::Symlink(b"a")),
        ])
        .unwrap_err();
        assert!(error.contains("loop"), "{error}");
    }

    #[test]
    fn hard_links_must_name_an_earlier_file_of_the_plugin() {
        assert!(
            check(&[
                ("metwork_plugin/a", EntryKind::File),
                ("metwork_plugin/b", EntryKind::HardLink(b"metwork_plugin/a")),
            ])
            .is_ok()
        );
        let error =
            check(&[("metwork_plugin/b", EntryKind::HardLink(b"/etc/passwd"))]).unwrap_err();
        assert!(error.contains("points outside the plugin"), "{error}");
        let error = check(&[(
            "metwork_plugin/b",
            EntryKind::HardLink(b"metwork_plugin/../../x"),
        )])
        .unwrap_err();
        assert!(error.contains("points outside the plugin"), "{error}");
        let error = check(&[(
            "metwork_plugin/b",
            EntryKind::HardLink(b"metwork_plugin/later"),
        )])
        .unwrap_err();
        assert!(error.contains("not a regular file earlier"), "{error}");
    }
}
