//! Building `.plugin` files (reference B4, B5, DESIGN §5): `mfenv plugin release` and
//! the packing half of `mfenv plugin repackage`.
//!
//! The source tree is streamed straight into the gzip tar (no copy): a sorted walk that
//! honours `.releaseignore` with true gitignore semantics (the `ignore` crate; a matched
//! directory prunes its whole subtree, `!` re-includes, `/` anchors), then
//! `.files.json` and `.metadata.json` generated in memory.
//!
//! Invariants:
//!
//! - reproducible: entries in sorted tree order, owner and group 0 with empty names,
//!   mtimes all equal (`SOURCE_DATE_EPOCH`, else [`FIXED_MTIME`]), modes normalised to
//!   0755/0644 (the exec bit kept), a gzip header without name or time; with
//!   `SOURCE_DATE_EPOCH` set (it also gives `build_date`) two builds are byte-identical;
//! - what is written passes the same [`EntryValidator`] as install, so mfenv never
//!   builds a file it would refuse to install (a symlink leading outside the plugin is
//!   an error naming it);
//! - the output appears atomically: written to a hidden temporary file beside it, then
//!   renamed; the temporary file has a random name and is created exclusively, never
//!   through a symlink ([`create_temporary`]), as the current directory may be shared;
//! - what is built passes install's limits ([`Metadata::check`] for the metadata).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::{Compression, GzBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use tar::{EntryType, Header};

use crate::error::{Error, ErrorKind, Result};
use crate::plugin::archive::{EntryKind, EntryValidator, Problems};
use crate::plugin::config::General;
use crate::plugin::model::{
    FILES_FILE, METADATA_FILE, Metadata, RELEASEIGNORE_FILE, TOP_DIRECTORY, to_json_indented,
};
use crate::plugin::progress::Progress;
use crate::plugin::table::printable;

/// The mtime of every entry when `SOURCE_DATE_EPOCH` is unset (1980-01-01, the zip
/// epoch, as other reproducible-build tools use).
pub const FIXED_MTIME: u64 = 315_532_800;

/// What one archive entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackKind {
    Directory,
    /// A file read from disk when written; `executable` keeps the exec bit.
    File {
        source: PathBuf,
        size: u64,
        executable: bool,
    },
    /// Generated content (the JSON files, a repackaged `config.ini`).
    Memory {
        data: Vec<u8>,
        executable: bool,
    },
    Symlink {
        target: PathBuf,
    },
}

/// One entry, named relative to the plugin root (empty for the root itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    pub relative: PathBuf,
    pub kind: PackKind,
}

/// What goes into a build besides the tree.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The plugin home to pack.
    pub home: &'a Path,
    pub name: &'a str,
    pub version: &'a str,
    pub release: &'a str,
    pub general: &'a General,
    /// `MFMODULE_LOWERCASE`, part of the file name.
    pub module_lowercase: &'a str,
    /// Where the `.plugin` file is written.
    pub output_dir: &'a Path,
    /// Files (relative to the home) whose content is replaced.
    pub replacements: BTreeMap<PathBuf, Vec<u8>>,
    /// `MFHOSTNAME_FULL` or the host name.
    pub build_host: String,
    /// `SOURCE_DATE_EPOCH`, when set.
    pub source_date_epoch: Option<u64>,
    /// The current time (seconds since the epoch), for `build_date` without
    /// `SOURCE_DATE_EPOCH`.
    pub now: u64,
}

/// A built plugin file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub path: PathBuf,
    pub metadata: Metadata,
    /// Problems that did not stop the build (skipped special files).
    pub warnings: Vec<String>,
}

/// `NAME-VERSION-RELEASE.metwork.<module>.plugin`.
pub fn file_name(name: &str, version: &str, release: &str, module_lowercase: &str) -> String {
    format!("{name}-{version}-{release}.metwork.{module_lowercase}.plugin")
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` of `seconds` since the epoch.
pub fn utc_timestamp(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let in_day = seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Reads `<home>/.releaseignore` when it exists.
fn release_ignore(home: &Path) -> Result<Option<Gitignore>> {
    let path = home.join(RELEASEIGNORE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let mut builder = GitignoreBuilder::new(home);
    if let Some(err) = builder.add(&path) {
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!("bad `{}` file", path.display()),
        )
        .caused_by(err.to_string()));
    }
    let matcher = builder.build().map_err(|err| {
        Error::new(
            ErrorKind::LayerFile,
            format!("bad `{}` file", path.display()),
        )
        .caused_by(err.to_string())
    })?;
    Ok(Some(matcher))
}

fn is_executable(mode: u32) -> bool {
    mode & 0o111 != 0
}

/// Walks `directory` (relative name `relative`) in sorted order, appending entries.
fn walk(
    home: &Path,
    relative: &Path,
    ignore: Option<&Gitignore>,
    entries: &mut Vec<PackEntry>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let directory = home.join(relative);
    let reader =
        fs::read_dir(&directory).map_err(|err| Error::io("cannot read", &directory, &err))?;
    let mut children = Vec::new();
    for child in reader {
        let child = child.map_err(|err| Error::io("cannot read", &directory, &err))?;
        children.push(child.file_name());
    }
    children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for child in children {
        let child_relative = relative.join(&child);
        if relative.as_os_str().is_empty()
            && (child == OsStr::new(METADATA_FILE) || child == OsStr::new(FILES_FILE))
        {
            // Generated by every build; stale copies (installed plugins) are replaced.
            continue;
        }
        let path = home.join(&child_relative);
        let metadata =
            fs::symlink_metadata(&path).map_err(|err| Error::io("cannot read", &path, &err))?;
        let file_type = metadata.file_type();
        if let Some(ignore) = ignore
            && ignore
                .matched(&child_relative, file_type.is_dir())
                .is_ignore()
        {
            continue;
        }
        if file_type.is_dir() {
            entries.push(PackEntry {
                relative: child_relative.clone(),
                kind: PackKind::Directory,
            });
            walk(home, &child_relative, ignore, entries, warnings)?;
        } else if file_type.is_file() {
            entries.push(PackEntry {
                relative: child_relative,
                kind: PackKind::File {
                    source: path,
                    size: metadata.len(),
                    executable: is_executable(metadata.permissions().mode()),
                },
            });
        } else if file_type.is_symlink() {
            let target =
                fs::read_link(&path).map_err(|err| Error::io("cannot read", &path, &err))?;
            entries.push(PackEntry {
                relative: child_relative,
                kind: PackKind::Symlink { target },
            });
        } else {
            let what = if file_type.is_fifo() {
                "a fifo"
            } else if file_type.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            warnings.push(format!(
                "`{}` is {what}: left out of the plugin",
                path.display()
            ));
        }
    }
    Ok(())
}

/// The entries of the plugin at `home` after `.releaseignore`, in sorted tree order,
/// without the generated JSON files; `replacements` replace file contents.
pub fn collect(
    home: &Path,
    replacements: &BTreeMap<PathBuf, Vec<u8>>,
) -> Result<(Vec<PackEntry>, Vec<String>)> {
    let ignore = release_ignore(home)?;
    let mut entries = vec![PackEntry {
        relative: PathBuf::new(),
        kind: PackKind::Directory,
    }];
    let mut warnings = Vec::new();
    walk(
        home,
        Path::new(""),
        ignore.as_ref(),
        &mut entries,
        &mut warnings,
    )?;
    for entry in &mut entries {
        if let Some(data) = replacements.get(&entry.relative) {
            let executable = match &entry.kind {
                PackKind::File { executable, .. } | PackKind::Memory { executable, .. } => {
                    *executable
                }
                _ => false,
            };
            entry.kind = PackKind::Memory {
                data: data.clone(),
                executable,
            };
        }
    }
    Ok((entries, warnings))
}

/// `metwork_plugin/<relative>` as archive name bytes.
fn archive_name(relative: &Path) -> PathBuf {
    if relative.as_os_str().is_empty() {
        PathBuf::from(TOP_DIRECTORY)
    } else {
        Path::new(TOP_DIRECTORY).join(relative)
    }
}

/// `.files.json` content: every non-directory entry except symlinks to directories
/// (the original walked with `os.walk`, which lists those as directories).
fn files_list(home: &Path, entries: &[PackEntry]) -> Vec<String> {
    entries
        .iter()
        .filter(|entry| match &entry.kind {
            PackKind::Directory => false,
            PackKind::Symlink { .. } => !home.join(&entry.relative).is_dir(),
            _ => true,
        })
        .map(|entry| archive_name(&entry.relative).to_string_lossy().into_owned())
        .collect()
}

/// Sums the sizes of regular files (symlinks excluded).
fn total_size(entries: &[PackEntry]) -> u64 {
    entries
        .iter()
        .map(|entry| match &entry.kind {
            PackKind::File { size, .. } => *size,
            PackKind::Memory { data, .. } => data.len() as u64,
            _ => 0,
        })
        .sum()
}

/// Checks the entries as install will, so no unusable file is built.
fn validate(entries: &[PackEntry], home: &Path) -> Result<()> {
    let mut validator = EntryValidator::new();
    let mut problems = Problems::default();
    let mut links = false;
    for entry in entries {
        let name = archive_name(&entry.relative);
        let kind = match &entry.kind {
            PackKind::Directory => EntryKind::Directory,
            PackKind::File { .. } | PackKind::Memory { .. } => EntryKind::File,
            PackKind::Symlink { target } => EntryKind::Symlink(target.as_os_str().as_bytes()),
        };
        if let Err(problem) = validator.add(name.as_os_str().as_bytes(), kind) {
            links |= matches!(entry.kind, PackKind::Symlink { .. });
            problems.push(problem);
            if validator.is_full() {
                break;
            }
        }
    }
    let mut link_problems = Problems::default();
    validator.finish(&mut link_problems);
    if problems.is_empty() && link_problems.is_empty() {
        return Ok(());
    }
    let (headline, hint) = if links || !link_problems.is_empty() {
        (
            "it holds links that would lead outside the installed plugin",
            "make them relative links inside the plugin, or list them in",
        )
    } else {
        (
            "it holds entries that install would refuse",
            "rename or move them, or list them in",
        )
    };
    let mut error = Error::new(
        ErrorKind::LayerFile,
        format!("cannot release `{}`: {headline}", home.display()),
    );
    for problem in problems
        .into_causes()
        .into_iter()
        .chain(link_problems.into_causes())
    {
        error = error.caused_by(problem);
    }
    Err(error.with_hint(format!(
        "{hint} `{}`",
        home.join(RELEASEIGNORE_FILE).display()
    )))
}

/// A reader that fails when the file holds fewer bytes than announced in the header
/// (it shrank while being packed), so the archive is never silently corrupt.
struct ExactReader<R> {
    inner: io::Take<R>,
    remaining: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let read = self.inner.read(buffer)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being packed",
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

fn header(entry_type: EntryType, mode: u32, size: u64, mtime: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn file_mode(executable: bool) -> u32 {
    if executable { 0o755 } else { 0o644 }
}

/// Writes `entries` as a gzip tar to `output`.
fn write_archive(
    entries: &[PackEntry],
    output: File,
    mtime: u64,
    progress: &mut Progress,
) -> io::Result<()> {
    let encoder = GzBuilder::new().write(
        BufWriter::with_capacity(1 << 20, output),
        Compression::default(),
    );
    let mut builder = tar::Builder::new(encoder);
    let total = entries.len() as u64;
    for (done, entry) in (1..).zip(entries) {
        let name = archive_name(&entry.relative);
        match &entry.kind {
            PackKind::Directory => {
                let mut header = header(EntryType::Directory, 0o755, 0, mtime);
                builder.append_data(&mut header, &name, io::empty())?;
            }
            PackKind::File {
                source,
                size,
                executable,
            } => {
                let file = File::open(source).map_err(|err| {
                    io::Error::new(err.kind(), format!("{}: {err}", source.display()))
                })?;
                let mut header = header(EntryType::Regular, file_mode(*executable), *size, mtime);
                let reader = ExactReader {
                    inner: file.take(*size),
                    remaining: *size,
                };
                builder
                    .append_data(&mut header, &name, reader)
                    .map_err(|err| {
                        io::Error::new(err.kind(), format!("{}: {err}", source.display()))
                    })?;
            }
            PackKind::Memory { data, executable } => {
                let mut header = header(
                    EntryType::Regular,
                    file_mode(*executable),
                    data.len() as u64,
                    mtime,
                );
                builder.append_data(&mut header, &name, data.as_slice())?;
            }
            PackKind::Symlink { target } => {
                let mut header = header(EntryType::Symlink, 0o777, 0, mtime);
                builder.append_link(&mut header, &name, target)?;
            }
        }
        progress.update(done, total, "entries");
    }
    let encoder = builder.into_inner()?;
    let buffered = encoder.finish()?;
    let file = buffered.into_inner().map_err(|err| err.into_error())?;
    file.sync_all()?;
    progress.finish();
    Ok(())
}

/// A random 64-bit number (the keys of a std hash map come from the system's random
/// source; no other crate is needed for names that are only hard to guess).
fn random_number() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Creates a new file `.<stem>.<random>.tmp` in `dir` for writing. The creation is
/// exclusive and does not follow symlinks (`O_CREAT | O_EXCL | O_NOFOLLOW`): whoever
/// else can write in `dir` (a shared or world-writable current directory) cannot make
/// the write land in another file, whatever they plant there.
pub(crate) fn create_temporary(dir: &Path, stem: &str) -> io::Result<(File, PathBuf)> {
    create_temporary_named(dir, stem, &mut random_number)
}

/// [`create_temporary`] with the random numbers of the names from `numbers`.
fn create_temporary_named(
    dir: &Path,
    stem: &str,
    numbers: &mut dyn FnMut() -> u64,
) -> io::Result<(File, PathBuf)> {
    use nix::fcntl::OFlag;
    for _ in 0..64 {
        let path = dir.join(format!(".{stem}.{:016x}.tmp", numbers()));
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .mode(0o644)
            .open(&path);
        match created {
            Ok(file) => return Ok((file, path)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "every temporary name tried was taken",
    ))
}

/// Builds the `.plugin` file described by `request`.
pub fn build(request: &BuildRequest<'_>, progress: &mut Progress) -> Result<Built> {
    let (mut entries, warnings) = collect(request.home, &request.replacements)?;
    validate(&entries, request.home)?;
    let files = files_list(request.home, &entries);
    let metadata = Metadata {
        version: request.version.to_owned(),
        release: request.release.to_owned(),
        build_host: request.build_host.clone(),
        build_date: utc_timestamp(request.source_date_epoch.unwrap_or(request.now)),
        size: total_size(&entries).to_string(),
        summary: request.general.summary.clone(),
        license: request.general.license.clone(),
        packager: request.general.maintainer.clone(),
        vendor: request.general.vendor.clone(),
        url: request.general.url.clone(),
    };
    for (file, data) in [
        (FILES_FILE, to_json_indented(&files)),
        (METADATA_FILE, to_json_indented(&metadata)),
    ] {
        entries.push(PackEntry {
            relative: PathBuf::from(file),
            kind: PackKind::Memory {
                data: data.into_bytes(),
                executable: false,
            },
        });
    }
    // Component-wise order is a sorted depth-first walk: a directory, then its content.
    entries.sort_by(|a, b| {
        let parts = |path: &Path| -> Vec<Vec<u8>> {
            path.components()
                .filter_map(|part| match part {
                    Component::Normal(name) => Some(name.as_bytes().to_vec()),
                    _ => None,
                })
                .collect()
        };
        parts(&a.relative).cmp(&parts(&b.relative))
    });
    let file_name = file_name(
        request.name,
        request.version,
        request.release,
        request.module_lowercase,
    );
    metadata
        .check()
        .and_then(|()| {
            if file_name.contains('/') || file_name.len() > 255 {
                Err(format!(
                    "`{}` is not a usable file name (at most 255 bytes, no `/`)",
                    printable(&file_name)
                ))
            } else {
                Ok(())
            }
        })
        .map_err(|reason| {
            Error::new(
                ErrorKind::LayerFile,
                "the plugin metadata cannot be released",
            )
            .caused_by(reason)
        })?;
    let path = request.output_dir.join(&file_name);
    let (output, temporary) =
        create_temporary(request.output_dir, request.name).map_err(|err| {
            Error::io(
                "cannot create a temporary file in",
                request.output_dir,
                &err,
            )
        })?;
    let mtime = request.source_date_epoch.unwrap_or(FIXED_MTIME);
    if let Err(err) = write_archive(&entries, output, mtime, progress) {
        let _ = fs::remove_file(&temporary);
        return Err(
            Error::new(ErrorKind::Io, format!("cannot write `{}`", path.display()))
                .caused_by(crate::error::io_reason(&err)),
        );
    }
    fs::rename(&temporary, &path).map_err(|err| {
        let _ = fs::remove_file(&temporary);
        Error::io("cannot write", &path, &err)
    })?;
    Ok(Built {
        path,
        metadata,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_iso_without_fraction() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(FIXED_MTIME), "1980-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    fn tree(files: &[&str], ignore: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, "x").unwrap();
        }
        fs::write(dir.path().join(RELEASEIGNORE_FILE), ignore).unwrap();
        dir
    }

    fn kept(dir: &Path) -> Vec<String> {
        let (entries, _) = collect(dir, &BTreeMap::new()).unwrap();
        entries
            .iter()
            .filter(|e| !matches!(e.kind, PackKind::Directory))
            .map(|e| e.relative.to_string_lossy().into_owned())
            .filter(|name| name != RELEASEIGNORE_FILE)
            .collect()
    }

    #[test]
    fn a_directory_pattern_without_slash_prunes_the_subtree() {
        let dir = tree(
            &["local/x.py", "local/deep/y", "src/local.txt", "keep"],
            "local\n",
        );
        assert_eq!(kept(dir.path()), ["keep", "src/local.txt"]);
    }

    #[test]
    fn negation_and_anchoring_follow_gitignore() {
        let dir = tree(
            &[
                "a.log",
                "important.log",
                "sub/b.log",
                "build/x",
                "sub/build/y",
            ],
            "*.log\n!important.log\n/build\n",
        );
        assert_eq!(kept(dir.path()), ["important.log", "sub/build/y"]);
    }

    #[test]
    fn a_temporary_file_never_opens_what_another_user_planted() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        // The first two names are taken: a symlink to the victim, a dangling symlink.
        symlink(&victim, dir.path().join(format!(".foo.{:016x}.tmp", 1))).unwrap();
        symlink("nowhere", dir.path().join(format!(".foo.{:016x}.tmp", 2))).unwrap();
        let mut next = 0;
        let mut numbers = || {
            next += 1;
            next
        };
        let (mut file, path) = create_temporary_named(dir.path(), "foo", &mut numbers).unwrap();
        assert_eq!(path, dir.path().join(format!(".foo.{:016x}.tmp", 3)));
        io::Write::write_all(&mut file, b"archive").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!dir.path().join("nowhere").exists());
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        assert_ne!(random_number(), random_number());
    }
}
