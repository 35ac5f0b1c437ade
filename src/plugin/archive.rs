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
//! - a hard link names an earlier regular file of the archive;
//! - installed modes are never group- or world-writable, never setuid, setgid or sticky.
//!
//! Every cost is linear in the size of the (decompressed) archive, and bounded by
//! limits users can rely on: [`MAX_ENTRIES`] entries, names and link targets of at most
//! [`MAX_PATH_BYTES`], components of at most [`MAX_COMPONENT_BYTES`], [`MAX_DEPTH`]
//! directories deep, and size limits on the members read into memory. The entries form
//! a tree of numbered nodes (never a map of full paths, which costs the square of the
//! depth), each symlink is resolved once, GNU long names and pax headers are read here
//! with their limits (the tar crate would read them whole), and an error lists at most
//! [`MAX_REPORTED_PROBLEMS`] problems. Breaking a limit is an ordinary error.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::error::{Error, ErrorKind, Result, io_reason};
use crate::plugin::model::{
    FILES_FILE, LABEL_FILE, MAX_FILES_LIST_SIZE, MAX_LABEL_SIZE, MAX_METADATA_SIZE, METADATA_FILE,
    Metadata, TOP_DIRECTORY, name_from_label, open_regular_file,
};
use crate::plugin::progress::Progress;
use crate::plugin::table::printable;

/// How many symlinks one resolution may follow (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;
/// The most entries an archive may hold, directories implied by paths included.
pub const MAX_ENTRIES: usize = 1_000_000;
/// The longest entry name or link target, in bytes (Linux's `PATH_MAX` less its NUL).
pub const MAX_PATH_BYTES: usize = 4095;
/// The longest component of an entry name, in bytes (Linux's `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// The most directories an entry may sit below, the top directory excluded.
pub const MAX_DEPTH: usize = 256;
/// Size limits of the members read into memory.
/// The largest pax extended header (it only holds a few records of one entry).
const MAX_PAX_SIZE: u64 = 64 << 10;
/// How many problems an error lists; the others are counted.
pub const MAX_REPORTED_PROBLEMS: usize = 20;
/// Read buffer for the compressed stream.
const READ_BUFFER: usize = 256 << 10;
/// Longest piece of a name quoted in a message.
const MAX_SHOWN_BYTES: usize = 200;

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

/// A node of the archive tree, as [`EntryValidator`] numbers them (the top directory
/// is 0).
pub type NodeId = u32;

/// The top directory `metwork_plugin/`.
const ROOT: NodeId = 0;

/// An accepted entry, named relative to the top directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedEntry {
    /// `metwork_plugin/` itself.
    Root,
    /// A directory; `new` is false when an earlier entry already made or implied it.
    Directory {
        relative: PathBuf,
        node: NodeId,
        new: bool,
    },
    File(PathBuf),
    Symlink(PathBuf, PathBuf),
    /// A hard link and the (relative) file it links to.
    HardLink(PathBuf, PathBuf),
}

/// What [`EntryValidator::add`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub entry: PlannedEntry,
    /// The parent directories this entry is the first to imply (it has no directory
    /// entry of its own), outermost first: they are the last ones of its parent path.
    pub implied: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeKind {
    Directory,
    File,
    Symlink(Box<[u8]>),
}

#[derive(Debug)]
struct Node {
    parent: NodeId,
    name: Box<[u8]>,
    kind: NodeKind,
}

/// Where a resolution stands: a node of the archive, or `beyond` levels of names the
/// archive does not hold below it (resolved lexically, as nothing there can be a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    node: NodeId,
    beyond: usize,
}

/// What is known of one symlink's resolution (each symlink is resolved once, so the
/// check is linear in the size of the archive).
#[derive(Debug, Clone, Copy)]
enum Resolution {
    InProgress,
    Resolved {
        at: Location,
        hops: usize,
    },
    Outside,
    /// Following it takes more than this many hops.
    NeedsMoreThan(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Outside,
    TooManyHops,
}

/// Checks archive entries one by one, then the links between them ([`finish`]).
///
/// The entries form a tree of nodes (a parent and a name each), so the cost of a check
/// grows with the length of the names, never with their square.
///
/// [`finish`]: EntryValidator::finish
#[derive(Debug)]
pub struct EntryValidator {
    nodes: Vec<Node>,
    /// Parent id (4 bytes, native order) followed by the name → child.
    children: HashMap<Box<[u8]>, NodeId>,
    symlinks: Vec<NodeId>,
    /// Entries added, accepted or not.
    entries: usize,
    /// [`MAX_ENTRIES`] (smaller in tests).
    max_entries: usize,
    /// An entry was refused for the count.
    overflowed: bool,
}

impl Default for EntryValidator {
    fn default() -> Self {
        EntryValidator::new()
    }
}

/// `bytes` for a message: control characters escaped, cut when long.
fn show(bytes: &[u8]) -> String {
    let (shown, cut) = if bytes.len() > MAX_SHOWN_BYTES {
        (&bytes[..MAX_SHOWN_BYTES], "…")
    } else {
        (bytes, "")
    };
    let text = String::from_utf8_lossy(shown);
    format!("{}{cut}", printable(&text))
}

/// The components of an archive name, without empty and `.` parts.
fn components(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    name.split(|b| *b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
}

fn to_path(parts: &[&[u8]]) -> PathBuf {
    let mut path = PathBuf::new();
    for part in parts {
        path.push(OsStr::from_bytes(part));
    }
    path
}

/// The part of an archive name below `metwork_plugin/`, checked to be safe and within
/// the limits.
fn relative_name(name: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    if name.len() > MAX_PATH_BYTES {
        return Err(format!(
            "`{}` is longer than {MAX_PATH_BYTES} bytes ({} bytes)",
            show(name),
            name.len()
        ));
    }
    if name.starts_with(b"/") {
        return Err(format!("`{}` is an absolute path", show(name)));
    }
    if name.contains(&0) {
        return Err(format!("`{}` contains a NUL byte", show(name)));
    }
    let parts: Vec<&[u8]> = components(name).collect();
    if parts.contains(&&b".."[..]) {
        return Err(format!("`{}` contains a `..` component", show(name)));
    }
    if parts.iter().any(|part| part.len() > MAX_COMPONENT_BYTES) {
        return Err(format!(
            "`{}` has a component longer than {MAX_COMPONENT_BYTES} bytes",
            show(name)
        ));
    }
    match parts.split_first() {
        None => Err("an entry has an empty name".to_owned()),
        Some((top, rest)) if *top == TOP_DIRECTORY.as_bytes() => {
            // The entry itself sits below its parents: `rest.len() - 1` of them.
            if rest.len() > MAX_DEPTH + 1 {
                return Err(format!(
                    "`{}` is more than {MAX_DEPTH} directories deep",
                    show(name)
                ));
            }
            Ok(rest.to_vec())
        }
        Some(_) => Err(format!(
            "`{}` is outside the single top directory `{TOP_DIRECTORY}/`",
            show(name)
        )),
    }
}

/// The key of `name` below `parent` in [`EntryValidator::children`], built in `buffer`.
fn child_key<'b>(buffer: &'b mut Vec<u8>, parent: NodeId, name: &[u8]) -> &'b [u8] {
    buffer.clear();
    buffer.extend_from_slice(&parent.to_ne_bytes());
    buffer.extend_from_slice(name);
    buffer
}

impl EntryValidator {
    pub fn new() -> Self {
        EntryValidator {
            nodes: vec![Node {
                parent: ROOT,
                name: Box::default(),
                kind: NodeKind::Directory,
            }],
            children: HashMap::new(),
            symlinks: Vec::new(),
            entries: 0,
            max_entries: MAX_ENTRIES,
            overflowed: false,
        }
    }

    /// True once an entry was refused because the archive holds more than
    /// [`MAX_ENTRIES`]: reading on is pointless.
    pub fn is_full(&self) -> bool {
        self.overflowed
    }

    fn child(&self, buffer: &mut Vec<u8>, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        self.children.get(child_key(buffer, parent, name)).copied()
    }

    fn insert(&mut self, parent: NodeId, name: &[u8], kind: NodeKind) -> NodeId {
        let id = NodeId::try_from(self.nodes.len()).expect("the entry limit keeps ids in u32");
        let mut key = Vec::with_capacity(4 + name.len());
        child_key(&mut key, parent, name);
        self.children.insert(key.into_boxed_slice(), id);
        self.nodes.push(Node {
            parent,
            name: name.into(),
            kind,
        });
        id
    }

    /// The name of `node` relative to the top directory (components joined by `/`).
    fn name_of(&self, node: NodeId) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut current = node;
        while current != ROOT {
            let entry = &self.nodes[current as usize];
            parts.push(&entry.name[..]);
            current = entry.parent;
        }
        parts.reverse();
        parts.join(&b'/')
    }

    /// The node named by `parts` (below the top directory), links not followed.
    fn lookup(&self, parts: &[&[u8]]) -> Option<NodeId> {
        let mut buffer = Vec::new();
        let mut node = ROOT;
        for part in parts {
            node = self.child(&mut buffer, node, part)?;
        }
        Some(node)
    }

    /// Checks one entry named `name` (as stored in the archive).
    pub fn add(
        &mut self,
        name: &[u8],
        kind: EntryKind<'_>,
    ) -> std::result::Result<Planned, String> {
        self.entries += 1;
        // The top directory is not an entry; directories a path implies are.
        if self.entries > self.max_entries || self.nodes.len() > self.max_entries {
            self.overflowed = true;
            return Err(format!(
                "the archive holds more than {} entries",
                self.max_entries
            ));
        }
        let parts = relative_name(name)?;
        let Some((last, parents)) = parts.split_last() else {
            return match kind {
                EntryKind::Directory => Ok(Planned {
                    entry: PlannedEntry::Root,
                    implied: Vec::new(),
                }),
                _ => Err(format!("`{TOP_DIRECTORY}` is not a directory")),
            };
        };
        let mut buffer = Vec::new();
        let mut node = ROOT;
        let mut implied = Vec::new();
        for (index, part) in parents.iter().enumerate() {
            node = match self.child(&mut buffer, node, part) {
                None => {
                    let id = self.insert(node, part, NodeKind::Directory);
                    implied.push(id);
                    id
                }
                Some(id) if self.nodes[id as usize].kind == NodeKind::Directory => id,
                Some(_) => {
                    return Err(format!(
                        "`{}` is below `{TOP_DIRECTORY}/{}`, which is not a directory",
                        show(name),
                        show(&parents[..=index].join(&b'/'))
                    ));
                }
            };
        }
        let existing = self.child(&mut buffer, node, last);
        if let Some(id) = existing
            && !(kind == EntryKind::Directory
                && self.nodes[id as usize].kind == NodeKind::Directory)
        {
            return Err(format!("`{}` appears twice in the archive", show(name)));
        }
        let relative = to_path(&parts);
        let entry = match kind {
            EntryKind::Directory => {
                let (node, new) = match existing {
                    Some(id) => (id, false),
                    None => (self.insert(node, last, NodeKind::Directory), true),
                };
                PlannedEntry::Directory {
                    relative,
                    node,
                    new,
                }
            }
            EntryKind::File => {
                self.insert(node, last, NodeKind::File);
                PlannedEntry::File(relative)
            }
            EntryKind::Symlink(target) => {
                if target.is_empty() {
                    return Err(format!("symlink `{}` has an empty target", show(name)));
                }
                if target.len() > MAX_PATH_BYTES {
                    return Err(format!(
                        "symlink `{}` has a target longer than {MAX_PATH_BYTES} bytes ({} bytes)",
                        show(name),
                        target.len()
                    ));
                }
                if target.contains(&0) {
                    return Err(format!(
                        "symlink `{}` has a NUL byte in its target",
                        show(name)
                    ));
                }
                if target.starts_with(b"/") {
                    return Err(format!(
                        "symlink `{}` points to the absolute path `{}`, outside the plugin",
                        show(name),
                        show(target)
                    ));
                }
                let id = self.insert(node, last, NodeKind::Symlink(target.into()));
                self.symlinks.push(id);
                PlannedEntry::Symlink(relative, PathBuf::from(OsStr::from_bytes(target)))
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
                let is_file = self
                    .lookup(&target_parts)
                    .is_some_and(|id| self.nodes[id as usize].kind == NodeKind::File);
                if !is_file {
                    return Err(format!(
                        "hard link `{}` points to `{}`, which is not a regular file earlier in the archive",
                        show(name),
                        show(target)
                    ));
                }
                self.insert(node, last, NodeKind::File);
                PlannedEntry::HardLink(relative, to_path(&target_parts))
            }
        };
        Ok(Planned { entry, implied })
    }

    /// True when `relative` (below the top directory) is a regular file of the archive.
    pub fn has_file(&self, relative: &str) -> bool {
        let parts: Vec<&[u8]> = components(relative.as_bytes()).collect();
        self.lookup(&parts)
            .is_some_and(|id| self.nodes[id as usize].kind == NodeKind::File)
    }

    /// The name (relative to the top directory) of a directory `add` reported.
    pub fn directory_path(&self, node: NodeId) -> PathBuf {
        PathBuf::from(OsStr::from_bytes(&self.name_of(node)))
    }

    /// Checks what needs the whole archive: every symlink resolves inside the plugin.
    /// Adds what is wrong to `problems`.
    pub fn finish(&self, problems: &mut Problems) {
        let mut known: HashMap<NodeId, Resolution> = HashMap::with_capacity(self.symlinks.len());
        for &link in &self.symlinks {
            let failure = match self.resolve(link, MAX_SYMLINK_HOPS, &mut known) {
                Ok(_) => continue,
                Err(failure) => failure,
            };
            let name = self.name_of(link);
            problems.push(match failure {
                Failure::Outside => {
                    let NodeKind::Symlink(target) = &self.nodes[link as usize].kind else {
                        unreachable!("only symlinks are resolved")
                    };
                    format!(
                        "symlink `{TOP_DIRECTORY}/{}` resolves outside the plugin (it points to `{}`)",
                        show(&name),
                        show(target)
                    )
                }
                Failure::TooManyHops => format!(
                    "symlink `{TOP_DIRECTORY}/{}` is part of a symlink loop",
                    show(&name)
                ),
            });
        }
    }

    /// Where the symlink `link` leads, and how many links that follows (itself
    /// included), when it takes at most `budget`.
    fn resolve(
        &self,
        link: NodeId,
        budget: usize,
        known: &mut HashMap<NodeId, Resolution>,
    ) -> std::result::Result<(Location, usize), Failure> {
        if budget == 0 {
            return Err(Failure::TooManyHops);
        }
        match known.get(&link) {
            Some(Resolution::Resolved { at, hops }) => {
                return if *hops <= budget {
                    Ok((*at, *hops))
                } else {
                    Err(Failure::TooManyHops)
                };
            }
            Some(Resolution::Outside) => return Err(Failure::Outside),
            Some(Resolution::InProgress) => return Err(Failure::TooManyHops),
            Some(Resolution::NeedsMoreThan(more)) if budget <= *more => {
                return Err(Failure::TooManyHops);
            }
            _ => {}
        }
        let node = &self.nodes[link as usize];
        let NodeKind::Symlink(target) = &node.kind else {
            unreachable!("only symlinks are resolved")
        };
        known.insert(link, Resolution::InProgress);
        let start = Location {
            node: node.parent,
            beyond: 0,
        };
        match self.walk(start, target, budget - 1, known) {
            Ok((at, hops)) => {
                known.insert(link, Resolution::Resolved { at, hops: hops + 1 });
                Ok((at, hops + 1))
            }
            Err(Failure::Outside) => {
                known.insert(link, Resolution::Outside);
                Err(Failure::Outside)
            }
            Err(Failure::TooManyHops) => {
                known.insert(link, Resolution::NeedsMoreThan(budget));
                Err(Failure::TooManyHops)
            }
        }
    }

    /// Follows `target` from `start` as the kernel would (`..` after a symlink climbs
    /// from its target); returns where it ends and the links it followed.
    fn walk(
        &self,
        start: Location,
        target: &[u8],
        budget: usize,
        known: &mut HashMap<NodeId, Resolution>,
    ) -> std::result::Result<(Location, usize), Failure> {
        if target.starts_with(b"/") {
            return Err(Failure::Outside);
        }
        let mut at = start;
        let mut hops = 0;
        let mut buffer = Vec::new();
        for part in components(target) {
            if part == b".." {
                if at.beyond > 0 {
                    at.beyond -= 1;
                } else if at.node == ROOT {
                    return Err(Failure::Outside);
                } else {
                    at.node = self.nodes[at.node as usize].parent;
                }
                continue;
            }
            if at.beyond > 0 {
                at.beyond += 1;
                continue;
            }
            match self.child(&mut buffer, at.node, part) {
                None => at.beyond = 1,
                Some(child) => {
                    if matches!(self.nodes[child as usize].kind, NodeKind::Symlink(_)) {
                        let (end, used) = self.resolve(child, budget - hops, known)?;
                        hops += used;
                        at = end;
                    } else {
                        at.node = child;
                    }
                }
            }
        }
        Ok((at, hops))
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

/// The problems found in an archive: the first [`MAX_REPORTED_PROBLEMS`] in full, the
/// others counted (an archive of a million bad entries must not make a million
/// messages).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems {
    shown: Vec<String>,
    more: usize,
}

impl Problems {
    pub fn push(&mut self, problem: String) {
        if self.shown.len() < MAX_REPORTED_PROBLEMS {
            self.shown.push(problem);
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// The causes to show, the count of the others last.
    pub fn into_causes(self) -> Vec<String> {
        let mut causes = self.shown;
        if self.more > 0 {
            causes.push(format!("… and {} more problems", self.more));
        }
        causes
    }
}

fn unsafe_archive(path: &Path, problems: Problems) -> Error {
    let mut error = Error::new(
        ErrorKind::LayerFile,
        format!("`{}` is not a valid plugin archive", path.display()),
    );
    for problem in problems.into_causes() {
        error = error.caused_by(problem);
    }
    error
}

fn one_problem(path: &Path, problem: String) -> Error {
    let mut problems = Problems::default();
    problems.push(problem);
    unsafe_archive(path, problems)
}

fn missing_member(path: &Path, member: &str, reason: Option<String>) -> Error {
    let error = one_problem(
        path,
        format!("can't read/find {TOP_DIRECTORY}/{member} file in plugin"),
    );
    match reason {
        Some(reason) => error.caused_by(reason),
        None => error,
    }
}

/// Opens `path` as a gzip stream, refusing what does not start like one.
fn open_gzip(path: &Path) -> Result<(File, GzDecoder<BufReader<File>>)> {
    let mut file = match open_regular_file(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("file `{}` not found", path.display()),
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("`{}` is not a plugin file", path.display()),
            )
            .caused_by(err.to_string()));
        }
        Err(err) => return Err(Error::io("cannot open", path, &err)),
    };
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
                printable(&(other.as_byte() as char).to_string())
            ));
        }
    }))
}

/// At most `limit` bytes of `entry`; `None` when it holds more.
fn read_member(entry: &mut impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    entry.take(limit + 1).read_to_end(&mut data)?;
    Ok((data.len() as u64 <= limit).then_some(data))
}

/// A member's name and link target, with the extended headers before it applied, or
/// why it is refused.
type MemberNames = std::result::Result<(Vec<u8>, Option<Vec<u8>>), String>;

/// The next member of a raw entry stream, with the GNU long-name and long-link records
/// and the pax extended header that describe it applied.
///
/// The tar crate would read those records whole into memory, whatever their size; read
/// here, they are limited to [`MAX_PATH_BYTES`] and [`MAX_PAX_SIZE`], so a small
/// compressed file cannot make a huge name. A problem with a member leaves the stream
/// usable (its data is skipped by the next read).
fn next_member<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
) -> io::Result<Option<(tar::Entry<'a, R>, MemberNames)>> {
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<Vec<u8>> = None;
    let mut problem: Option<String> = None;
    loop {
        let Some(entry) = entries.next() else {
            if long_name.is_some() || long_link.is_some() || pax.is_some() {
                return Err(io::Error::other(
                    "an extended header describes a member that is not there",
                ));
            }
            return Ok(None);
        };
        let mut entry = entry?;
        let (slot, limit, what) = match entry.header().entry_type() {
            EntryType::GNULongName => (&mut long_name, MAX_PATH_BYTES as u64 + 1, "long name"),
            EntryType::GNULongLink => (&mut long_link, MAX_PATH_BYTES as u64 + 1, "long link"),
            EntryType::XHeader => (&mut pax, MAX_PAX_SIZE, "pax header"),
            _ => {
                let mut name = entry.path_bytes().into_owned();
                let mut link = entry.link_name_bytes().map(|link| link.into_owned());
                if let Some(long) = long_name {
                    name = trim_nul(long);
                }
                if let Some(long) = long_link {
                    link = Some(trim_nul(long));
                }
                if let Some(records) = &pax {
                    for record in tar::PaxExtensions::new(records) {
                        let Ok(record) = record else {
                            problem.get_or_insert_with(|| {
                                format!("`{}` has a malformed pax header", show(&name))
                            });
                            break;
                        };
                        match record.key_bytes() {
                            b"path" => name = record.value_bytes().to_vec(),
                            b"linkpath" => link = Some(record.value_bytes().to_vec()),
                            b"size" => {
                                // Entries are read by their header's size: another
                                // size would make two readers see different archives.
                                let size = entry.header().entry_size()?;
                                if record.value().ok().and_then(|v| v.parse().ok()) != Some(size) {
                                    return Err(io::Error::other(format!(
                                        "`{}` has a pax size that is not its header's",
                                        show(&name)
                                    )));
                                }
                            }
                            key if key.starts_with(b"GNU.sparse.") => {
                                problem.get_or_insert_with(|| {
                                    format!("`{}` is a sparse file (not supported)", show(&name))
                                });
                            }
                            _ => {}
                        }
                    }
                }
                return Ok(Some((entry, problem.map_or(Ok((name, link)), Err))));
            }
        };
        if slot.is_some() {
            return Err(io::Error::other(format!(
                "two {what} records describe the same member"
            )));
        }
        match read_member(&mut entry, limit)? {
            Some(data) => *slot = Some(data),
            None => {
                *slot = Some(Vec::new());
                problem.get_or_insert_with(|| {
                    if what == "pax header" {
                        format!("a pax header is larger than {MAX_PAX_SIZE} bytes")
                    } else {
                        format!("a {what} is longer than {MAX_PATH_BYTES} bytes")
                    }
                });
            }
        }
    }
}

/// A GNU long-name record without its NUL terminator.
fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// Reads the whole `.plugin` file at `path` and checks it; writes nothing.
/// `module_lowercase` is the module its label must name.
pub fn inspect(path: &Path, module_lowercase: &str) -> Result<(File, ArchiveSummary)> {
    let (file, decoder) = open_gzip(path)?;
    let mut archive = tar::Archive::new(decoder);
    let mut validator = EntryValidator::new();
    let mut problems = Problems::default();
    let mut label = None;
    let mut metadata = None;
    let mut files = None;
    let mut entries: u64 = 0;
    let mut iterator = archive
        .entries()
        .map_err(|err| corrupt(path, &err))?
        .raw(true);
    while let Some((mut entry, member)) =
        next_member(&mut iterator).map_err(|err| corrupt(path, &err))?
    {
        let (name, link) = match member {
            Ok(names) => names,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
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
                if validator.is_full() {
                    break;
                }
                continue;
            }
        };
        entries += 1;
        let PlannedEntry::File(relative) = planned.entry else {
            continue;
        };
        let member = relative.as_os_str().as_bytes();
        let limit = if member == LABEL_FILE.as_bytes() {
            MAX_LABEL_SIZE
        } else if member == METADATA_FILE.as_bytes() {
            MAX_METADATA_SIZE
        } else if member == FILES_FILE.as_bytes() {
            MAX_FILES_LIST_SIZE
        } else {
            continue;
        };
        let data = read_member(&mut entry, limit).map_err(|err| corrupt(path, &err))?;
        let Some(data) = data else {
            problems.push(format!(
                "`{TOP_DIRECTORY}/{}` is larger than {limit} bytes",
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
    if !validator.is_full() {
        // The tar end marker may come before the end of the gzip stream: reading on
        // checks that the stream is complete (its CRC and length trailer).
        let mut decoder = archive.into_inner();
        io::copy(&mut decoder, &mut io::sink()).map_err(|err| corrupt(path, &err))?;
        validator.finish(&mut problems);
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
        Some(Ok(text)) => crate::plugin::model::parse_files_list(&text)
            .map_err(|reason| missing_member(path, FILES_FILE, Some(reason)))?,
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

/// The mode a file of the archive is installed with: never group- or world-writable,
/// never setuid, setgid or sticky (whoever can change a file of a plugin can run code
/// as whoever runs the plugin).
fn installed_mode(mode: u32) -> u32 {
    mode & 0o755
}

/// The mode of an installed directory: as [`installed_mode`], and always usable by its
/// owner, so nothing blocks a later removal of the plugin.
fn installed_directory_mode(mode: u32) -> u32 {
    installed_mode(mode) | 0o700
}

/// Creates a directory only its owner can use until the extraction ends.
fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(0o700).create(path)
}

/// The name of an entry relative to the top directory.
fn relative_of(entry: &PlannedEntry) -> Option<&Path> {
    match entry {
        PlannedEntry::Root => None,
        PlannedEntry::Directory { relative, .. }
        | PlannedEntry::File(relative)
        | PlannedEntry::Symlink(relative, _)
        | PlannedEntry::HardLink(relative, _) => Some(relative),
    }
}

/// Extracts the archive `file` (already checked by [`inspect`]) into
/// `<staging>/metwork_plugin`. `staging` must be a new, empty directory; on error its
/// content is left for the caller to remove.
///
/// Directories are created private (0700) and get their final mode at the end; files
/// get theirs once written. Modes are [`installed_mode`]s: the archive's mode bits
/// less the group and world write bits and the special bits.
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
    create_private_dir(&root).map_err(|err| Error::io("cannot create", &root, &err))?;
    let mut validator = EntryValidator::new();
    // Final modes of directories, by node (the last entry of a directory wins).
    let mut directory_modes: HashMap<NodeId, u32> = HashMap::from([(ROOT, 0o755)]);
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut done: u64 = 0;
    let write_error = |target: &Path, err: io::Error| Error::io("cannot write", target, &err);
    let mut iterator = archive
        .entries()
        .map_err(|err| corrupt(path, &err))?
        .raw(true);
    while let Some((mut entry, member)) =
        next_member(&mut iterator).map_err(|err| corrupt(path, &err))?
    {
        let (name, link) = member.map_err(|problem| one_problem(path, problem))?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().ok();
        let planned = entry_kind(&name, header.entry_type(), link.as_deref())
            .and_then(|kind| match kind {
                Some(kind) => validator.add(&name, kind).map(Some),
                None => Ok(None),
            })
            .map_err(|problem| one_problem(path, problem))?;
        let Some(planned) = planned else {
            continue;
        };
        if let Some(parent) = relative_of(&planned.entry).and_then(Path::parent) {
            let implied: Vec<&Path> = parent.ancestors().take(planned.implied.len()).collect();
            for (directory, node) in implied.into_iter().rev().zip(&planned.implied) {
                let target = root.join(directory);
                create_private_dir(&target).map_err(|err| write_error(&target, err))?;
                directory_modes.insert(*node, 0o755);
            }
        }
        match planned.entry {
            PlannedEntry::Root => {
                directory_modes.insert(ROOT, installed_directory_mode(mode));
            }
            PlannedEntry::Directory {
                relative,
                node,
                new,
            } => {
                if new {
                    let target = root.join(relative);
                    create_private_dir(&target).map_err(|err| write_error(&target, err))?;
                }
                directory_modes.insert(node, installed_directory_mode(mode));
            }
            PlannedEntry::File(relative) => {
                let target = root.join(relative);
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
                    .set_permissions(fs::Permissions::from_mode(installed_mode(mode)))
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
                std::os::unix::fs::symlink(&target_path, &target)
                    .map_err(|err| write_error(&target, err))?;
            }
            PlannedEntry::HardLink(relative, original) => {
                let target = root.join(relative);
                fs::hard_link(root.join(original), &target)
                    .map_err(|err| write_error(&target, err))?;
            }
        }
        done += 1;
        progress.update(done, summary.entries.max(done), "entries");
    }
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(|err| corrupt(path, &err))?;
    let mut problems = Problems::default();
    validator.finish(&mut problems);
    if !problems.is_empty() {
        return Err(unsafe_archive(path, problems));
    }
    for member in [LABEL_FILE, METADATA_FILE, FILES_FILE] {
        if !validator.has_file(member) {
            return Err(missing_member(path, member, None));
        }
    }
    for (node, mode) in directory_modes {
        let directory = if node == ROOT {
            root.clone()
        } else {
            root.join(validator.directory_path(node))
        };
        fs::set_permissions(&directory, fs::Permissions::from_mode(mode))
            .map_err(|err| Error::io("cannot write", &directory, &err))?;
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
        let mut problems = Problems::default();
        validator.finish(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.into_causes().join("; "))
        }
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

    #[test]
    fn the_limits_are_errors_naming_the_entry() {
        let long = format!("metwork_plugin/{}", "a/".repeat(2100));
        let error = check(&[(&long, EntryKind::File)]).unwrap_err();
        assert!(
            error.contains("is longer than 4095 bytes (4215 bytes)"),
            "{error}"
        );
        assert!(error.len() < 400, "the name is cut in the message: {error}");
        let deep = format!("metwork_plugin/{}x", "d/".repeat(MAX_DEPTH + 1));
        let error = check(&[(&deep, EntryKind::File)]).unwrap_err();
        assert!(
            error.contains("is more than 256 directories deep"),
            "{error}"
        );
        let deepest = format!("metwork_plugin/{}x", "d/".repeat(MAX_DEPTH));
        assert!(check(&[(&deepest, EntryKind::File)]).is_ok());
        let wide = format!("metwork_plugin/{}", "w".repeat(256));
        let error = check(&[(&wide, EntryKind::File)]).unwrap_err();
        assert!(error.contains("component longer than 255 bytes"), "{error}");
        let target = "t/".repeat(2100);
        let error =
            check(&[("metwork_plugin/l", EntryKind::Symlink(target.as_bytes()))]).unwrap_err();
        assert!(
            error.contains("has a target longer than 4095 bytes"),
            "{error}"
        );
        let error = check(&[("metwork_plugin/a\0b", EntryKind::File)]).unwrap_err();
        assert!(error.contains("contains a NUL byte"), "{error}");
    }

    #[test]
    fn the_entry_count_is_limited() {
        let mut validator = EntryValidator::new();
        assert_eq!(validator.max_entries, 1_000_000);
        validator.max_entries = 1000;
        for index in 0..998 {
            let name = format!("metwork_plugin/{index}");
            validator.add(name.as_bytes(), EntryKind::File).unwrap();
        }
        // Two more: one entry and the directory it implies.
        validator
            .add(b"metwork_plugin/d/x", EntryKind::File)
            .unwrap();
        assert!(!validator.is_full());
        let error = validator
            .add(b"metwork_plugin/one-more", EntryKind::File)
            .unwrap_err();
        assert_eq!(error, "the archive holds more than 1000 entries");
        assert!(validator.is_full());
    }

    #[test]
    fn directories_implied_by_a_path_are_reported_once() {
        let mut validator = EntryValidator::new();
        let planned = validator
            .add(b"metwork_plugin/a/b/c", EntryKind::File)
            .unwrap();
        assert_eq!(planned.implied.len(), 2);
        assert_eq!(
            validator.directory_path(planned.implied[1]),
            Path::new("a/b")
        );
        let planned = validator
            .add(b"metwork_plugin/a/b/d/e", EntryKind::File)
            .unwrap();
        assert_eq!(planned.implied.len(), 1);
        let planned = validator
            .add(b"metwork_plugin/a/b", EntryKind::Directory)
            .unwrap();
        assert!(matches!(
            planned.entry,
            PlannedEntry::Directory { new: false, .. }
        ));
    }

    #[test]
    fn symlink_chains_count_hops_like_the_kernel() {
        // l0 -> l1 -> ... -> l99 -> file: following l0 takes 100 links (the kernel
        // stops at 40), l60 takes 40.
        let names: Vec<String> = (0..100).map(|n| format!("metwork_plugin/l{n}")).collect();
        let targets: Vec<String> = (1..=100)
            .map(|n| {
                if n == 100 {
                    "file".to_owned()
                } else {
                    format!("l{n}")
                }
            })
            .collect();
        let mut validator = EntryValidator::new();
        validator
            .add(b"metwork_plugin/file", EntryKind::File)
            .unwrap();
        for (name, target) in names.iter().zip(&targets) {
            validator
                .add(name.as_bytes(), EntryKind::Symlink(target.as_bytes()))
                .unwrap();
        }
        let mut problems = Problems::default();
        validator.finish(&mut problems);
        let causes = problems.into_causes();
        assert_eq!(causes.len(), MAX_REPORTED_PROBLEMS + 1);
        assert_eq!(
            causes[0],
            "symlink `metwork_plugin/l0` is part of a symlink loop"
        );
        assert_eq!(causes.last().unwrap(), "… and 40 more problems");
        // Every symlink resolved once: many links through the same long chain stay
        // cheap, and `..` after a link climbs from its target.
        let mut validator = EntryValidator::new();
        validator
            .add(b"metwork_plugin/d/e/f", EntryKind::File)
            .unwrap();
        validator
            .add(
                b"metwork_plugin/up",
                EntryKind::Symlink(b"d/e/../e/f/../../e"),
            )
            .unwrap();
        let many = "up/../".repeat(600) + "up/f";
        for index in 0..2000 {
            let name = format!("metwork_plugin/x{index}");
            validator
                .add(name.as_bytes(), EntryKind::Symlink(many.as_bytes()))
                .unwrap();
        }
        let mut problems = Problems::default();
        validator.finish(&mut problems);
        assert!(problems.is_empty(), "{:?}", problems.into_causes());
    }
}
