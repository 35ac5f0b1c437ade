//! Finding layers on disk: the only module that reads layer files.
//!
//! A [`Catalog`] walks `LAYERAPI2_LAYERS_PATH` lazily, in path order: each entry that is
//! itself a layer is taken as is, otherwise its immediate subdirectories are taken in
//! sorted byte order. The walk stops as soon as the label asked for is found, and goes on
//! from there for the next question, so one invocation makes at most one pass over the
//! path and reads each file at most once (every parsed file is kept).
//!
//! A directory is a layer when its label file can be opened (which also proves the
//! directory exists). A layer whose label cannot be read, is empty or spans several
//! lines is "broken": it is left out of label lookups and listed in
//! [`Catalog::broken`] so that callers can report it. Homes are built as `entry + "/" +
//! name`, byte for byte as layerapi2 does, because the loaded marker hashes that string.
//!
//! [`Catalog::path_problems`] says what is wrong with the layers path (unset, empty, an
//! entry missing, not a directory or holding no layer); it stats and lists only for
//! listings and errors, never on the load path.

use crate::fasthash::FastMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use crate::env::Env;
use crate::env::bytes::to_path;
use crate::error::{Error, ErrorKind, Result, io_reason};
use crate::layer::model::{
    self, Dependency, ExtraEnvEntry, LayerFileKind, LayerFileNames, LayerRef, PREPEND_STEPS,
    PythonVersions,
};

/// Index of a layer in a [`Catalog`].
pub type LayerId = usize;

/// Layer files larger than this are refused rather than read into memory.
pub const MAX_LAYER_FILE_BYTES: u64 = 1 << 20;

/// A layer found on disk; its list files are read on first use.
#[derive(Debug)]
pub struct Layer {
    pub home: String,
    pub label: String,
    /// True when found by walking the layers path (false: named by its home).
    pub in_layers_path: bool,
    dependencies: Option<Rc<[Dependency]>>,
    conflicts: Option<Rc<[LayerRef]>>,
    extra_env: Option<Rc<[ExtraEnvEntry]>>,
    /// What the home holds, from one listing (`None`: not listed yet).
    listing: Option<HomeListing>,
    /// Unloaded in this invocation (see [`Catalog::forget_marker`]).
    marker_forgotten: bool,
}

/// The top-level directories of a home that prepends look at.
const TOP_DIRECTORIES: [&str; 4] = ["node_modules", "lib", "local", "bin"];

/// What one `readdir` of a layer home says: which layer files exist, and whether the
/// top-level directories prepends look at are directories. It saves a failed `open` per
/// absent file and a `stat` per top-level directory, which adds up over a deep chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HomeListing {
    /// The home could not be listed: probe each path directly.
    Unknown,
    Listed {
        /// By `LayerFileKind` index: the name exists (any type).
        files: [bool; 6],
        /// By `TOP_DIRECTORIES` index: `Some(is a directory)`, or `None` for a symlink or
        /// an unknown entry type (a `stat` decides).
        directories: [Option<bool>; 4],
    },
}

/// A directory that has a label file but cannot be used as a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLayer {
    pub home: String,
    pub reason: String,
}

/// Where the walk of the layers path stands.
#[derive(Debug, Default)]
struct Walk {
    entry: usize,
    children: Option<Vec<String>>,
    /// The entry directory, so children's labels are opened relative to it.
    directory: Option<OwnedFd>,
    child: usize,
    done: bool,
}

/// The layers reachable through the layers path, discovered lazily.
#[derive(Debug)]
pub struct Catalog<'env> {
    env: &'env Env,
    names: LayerFileNames,
    entries: Vec<String>,
    walk: Walk,
    layers: Vec<Layer>,
    walked: Vec<LayerId>,
    by_home: FastMap<String, LayerId>,
    first_by_label: FastMap<String, LayerId>,
    broken: Vec<BrokenLayer>,
    notes: Vec<String>,
    /// Per device: whether its file system counts subdirectories in a directory's link
    /// count (see [`leaf_directory`]).
    counting_devices: FastMap<u64, bool>,
    /// Some loaded marker matches no layer of the path nor of the state: layers met
    /// by their home outside the path must have their marker looked at.
    outside_markers: bool,
    /// What `LAYERAPI2_LAYERS_PATH` was, for [`Catalog::path_problems`].
    path_setting: PathSetting,
    /// How many of `entries` come from the layers path (the rest: the plugins base dir).
    path_entries: usize,
    /// Entries of the layers path skipped because they are not absolute.
    relative_entries: Vec<String>,
}

/// Whether the layers path variable was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathSetting {
    Unset,
    Empty,
    Set,
}

impl<'env> Catalog<'env> {
    /// A catalog over `layers_path` (the raw `LAYERAPI2_LAYERS_PATH` value, if set),
    /// then `extra_entries` that the path does not already list (the plugins base dir).
    ///
    /// Relative and empty entries are skipped with a note (see [`Catalog::notes`]).
    pub fn new(
        env: &'env Env,
        layers_path: Option<&str>,
        extra_entries: &[&str],
        names: LayerFileNames,
    ) -> Self {
        let mut notes = Vec::new();
        let mut entries = Vec::new();
        let mut relative_entries = Vec::new();
        if let Some(path) = layers_path {
            for entry in path.split(':') {
                if entry.starts_with('/') {
                    // Listed twice (maybe once with a trailing `/`): walked once.
                    if entries
                        .iter()
                        .any(|known: &String| home_key(known) == home_key(entry))
                    {
                        notes.push(format!(
                            "`{entry}` is listed more than once in LAYERAPI2_LAYERS_PATH: walked once"
                        ));
                    } else {
                        entries.push(entry.to_owned());
                    }
                } else {
                    notes.push(format!(
                        "not an absolute path (`{entry}`) in LAYERAPI2_LAYERS_PATH: skipped"
                    ));
                    if !entry.is_empty() {
                        relative_entries.push(entry.to_owned());
                    }
                }
            }
        }
        let path_entries = entries.len();
        let path_setting = match layers_path {
            None => PathSetting::Unset,
            Some(path) if path.split(':').all(str::is_empty) => PathSetting::Empty,
            Some(_) => PathSetting::Set,
        };
        for extra in extra_entries {
            let listed = entries
                .iter()
                .any(|entry| home_key(entry) == home_key(extra));
            if extra.starts_with('/') && !listed {
                entries.push((*extra).to_owned());
            }
        }
        Catalog {
            env,
            names,
            entries,
            walk: Walk::default(),
            layers: Vec::new(),
            walked: Vec::new(),
            by_home: FastMap::default(),
            first_by_label: FastMap::default(),
            broken: Vec::new(),
            notes,
            counting_devices: FastMap::default(),
            outside_markers: false,
            path_setting,
            path_entries,
            relative_entries,
        }
    }

    /// What is wrong with `LAYERAPI2_LAYERS_PATH`, one sentence each: unset, empty, an
    /// entry that is not absolute, does not exist, is not a directory or holds no layer
    /// (with the subdirectory that does, when the entry is one level too high). Walks
    /// the whole path: for listings and errors, never on the load path.
    pub fn path_problems(&mut self) -> Vec<String> {
        const VARIABLE: &str = "LAYERAPI2_LAYERS_PATH";
        match self.path_setting {
            PathSetting::Unset => return vec![format!("`{VARIABLE}` is not set")],
            PathSetting::Empty => return vec![format!("`{VARIABLE}` is empty")],
            PathSetting::Set => {}
        }
        if self.names.is_disabled(LayerFileKind::Label) {
            return vec![
                "`LAYERAPI2_LAYER_LABEL_FILENAME` is empty: no directory is a layer".to_owned(),
            ];
        }
        self.all();
        let mut problems = Vec::new();
        for entry in &self.relative_entries {
            problems.push(format!(
                "`{entry}` in `{VARIABLE}` is not an absolute path (skipped)"
            ));
        }
        for entry in &self.entries[..self.path_entries] {
            let key = home_key(entry);
            let below = |home: &str| {
                let home = home_key(home);
                home == key
                    || home
                        .strip_prefix(&*key)
                        .is_some_and(|rest| rest.starts_with('/'))
            };
            // A broken layer is reported as such, not as a wrong entry.
            let holds_layer = self.walked.iter().any(|id| below(&self.layers[*id].home))
                || self.broken.iter().any(|broken| below(&broken.home));
            if holds_layer {
                continue;
            }
            let problem = match fs::metadata(to_path(entry)) {
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    format!("`{entry}` in `{VARIABLE}` does not exist")
                }
                Err(err) => format!(
                    "`{entry}` in `{VARIABLE}` cannot be read: {}",
                    io_reason(&err)
                ),
                Ok(metadata) if !metadata.is_dir() => {
                    format!("`{entry}` in `{VARIABLE}` is not a directory")
                }
                Ok(_) => match self.subdirectory_with_layers(entry) {
                    Some(deeper) => format!(
                        "`{entry}` in `{VARIABLE}` holds no layer, but `{deeper}` does: the entry is one level too high"
                    ),
                    None => format!("`{entry}` in `{VARIABLE}` holds no layer"),
                },
            };
            problems.push(problem);
        }
        problems
    }

    /// The first subdirectory of `entry` (sorted) whose own subdirectories hold a label
    /// file.
    fn subdirectory_with_layers(&self, entry: &str) -> Option<String> {
        if self.names.is_disabled(LayerFileKind::Label) {
            return None;
        }
        let label_file = self.names.get(LayerFileKind::Label);
        let mut children: Vec<_> = fs::read_dir(to_path(entry)).ok()?.flatten().collect();
        children.sort_by_key(|child| child.file_name());
        children.into_iter().find_map(|child| {
            let path = child.path();
            let grandchildren = fs::read_dir(&path).ok()?;
            let holds = grandchildren
                .flatten()
                .any(|grandchild| grandchild.path().join(label_file).is_file());
            holds.then(|| {
                format!(
                    "{}/{}",
                    entry.trim_end_matches('/'),
                    crate::env::bytes::decode_os(child.file_name())
                )
            })
        })
    }

    /// Says that some set loaded marker belongs to no known layer (see
    /// [`Catalog::marked_loaded`]).
    pub fn expect_outside_markers(&mut self) {
        self.outside_markers = true;
    }

    /// Markers of the starting environment no longer count (`exec --empty-env`).
    pub fn ignore_outside_markers(&mut self) {
        self.outside_markers = false;
    }

    /// The layer was unloaded by a plan applied in this invocation: its marker in the
    /// starting environment no longer says it is loaded.
    pub fn forget_marker(&mut self, id: LayerId) {
        self.layers[id].marker_forgotten = true;
    }

    /// True when the layer lies outside the layers path and its loaded marker is set,
    /// once [`Catalog::expect_outside_markers`] said such markers exist (otherwise no
    /// marker is looked at: the common case costs nothing).
    pub fn marked_loaded(&self, id: LayerId) -> bool {
        let layer = &self.layers[id];
        self.outside_markers
            && !layer.in_layers_path
            && !layer.marker_forgotten
            && crate::env::state::marker_is_set(
                self.env.get(&crate::env::state::marker_name(&layer.home)),
            )
    }

    pub fn file_names(&self) -> &LayerFileNames {
        &self.names
    }

    /// Messages explaining discovery decisions (for `--debug`).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Broken layers met so far.
    pub fn broken(&self) -> &[BrokenLayer] {
        &self.broken
    }

    pub fn layer(&self, id: LayerId) -> &Layer {
        &self.layers[id]
    }

    /// The labels of every layer of the layers path, in path order (walks the whole path).
    pub fn labels(&mut self) -> Vec<String> {
        let ids = self.all().to_vec();
        ids.into_iter()
            .map(|id| self.layers[id].label.clone())
            .collect()
    }

    /// Every layer of the layers path, in path order (walks the whole path).
    pub fn all(&mut self) -> &[LayerId] {
        while self.walk_next() {}
        &self.walked
    }

    /// Resolves a label (first layer of the path carrying it) or a home.
    pub fn find(&mut self, reference: &LayerRef) -> Result<Option<LayerId>> {
        match reference {
            LayerRef::Label(label) => Ok(self.find_label(label)),
            LayerRef::Home(home) => self.find_home(home),
        }
    }

    /// The first layer of the path whose label is `label`.
    pub fn find_label(&mut self, label: &str) -> Option<LayerId> {
        loop {
            if let Some(id) = self.first_by_label.get(label) {
                return Some(*id);
            }
            if !self.walk_next() {
                return None;
            }
        }
    }

    /// The layer whose home is `home`, if that directory is a layer; it need not be in
    /// the layers path. A home whose label is broken is an error.
    pub fn find_home(&mut self, home: &str) -> Result<Option<LayerId>> {
        if let Some(id) = self.by_home.get(&*home_key(home)) {
            return Ok(Some(*id));
        }
        match self.read_label(home) {
            LabelRead::NotALayer => Ok(None),
            LabelRead::Broken(reason) => Err(Error::new(
                ErrorKind::LayerFile,
                format!("the layer at `{home}` is unusable"),
            )
            .caused_by(reason)),
            LabelRead::Label(label) => {
                // The directory of a layer already known under another home string (a
                // symlink, `..`) is that layer.
                if let Some(id) = self.find_label(&label)
                    && self.layers[id].home != home
                    && same_directory(&self.layers[id].home, home)
                {
                    self.by_home.insert(home_key(home).into_owned(), id);
                    return Ok(Some(id));
                }
                Ok(Some(self.add_layer(home.to_owned(), label, false)))
            }
        }
    }

    /// The parsed dependencies file of a layer (empty when there is none).
    pub fn dependencies(&mut self, id: LayerId) -> Result<Rc<[Dependency]>> {
        if let Some(deps) = &self.layers[id].dependencies {
            return Ok(Rc::clone(deps));
        }
        let content = self.read_layer_file(id, LayerFileKind::Dependencies)?;
        let env = self.env;
        let deps: Rc<[Dependency]> = match content {
            Some(text) => {
                let deps = model::parse_dependencies(&text, |name| env.get(name));
                if deps.iter().any(model::is_spaced_optional) {
                    let path = self.file_path(id, LayerFileKind::Dependencies);
                    for line in model::spaced_optional_lines(&text) {
                        self.notes.push(format!(
                            "`{path}` line {line}: white space after `-`: the optional dependency is looked up with that space in its label (as layerapi2 does), so it is never found"
                        ));
                    }
                }
                deps.into()
            }
            None => Rc::from(Vec::new()),
        };
        self.layers[id].dependencies = Some(Rc::clone(&deps));
        Ok(deps)
    }

    /// The parsed conflicts file of a layer.
    pub fn conflicts(&mut self, id: LayerId) -> Result<Rc<[LayerRef]>> {
        if let Some(conflicts) = &self.layers[id].conflicts {
            return Ok(Rc::clone(conflicts));
        }
        let content = self.read_layer_file(id, LayerFileKind::Conflicts)?;
        let env = self.env;
        let conflicts: Rc<[LayerRef]> = content
            .map(|text| model::parse_conflicts(&text, |name| env.get(name)))
            .unwrap_or_default()
            .into();
        self.layers[id].conflicts = Some(Rc::clone(&conflicts));
        Ok(conflicts)
    }

    /// The parsed extra_env file of a layer (values not yet substituted).
    pub fn extra_env(&mut self, id: LayerId) -> Result<Rc<[ExtraEnvEntry]>> {
        if let Some(entries) = &self.layers[id].extra_env {
            return Ok(Rc::clone(entries));
        }
        let content = self.read_layer_file(id, LayerFileKind::ExtraEnv)?;
        let entries: Rc<[ExtraEnvEntry]> = match content {
            Some(text) => {
                let path = self.file_path(id, LayerFileKind::ExtraEnv);
                model::parse_extra_env(&text, &path)
                    .map_err(|e| {
                        e.context(format!("cannot use layer `{}`", self.layers[id].label))
                    })?
                    .into()
            }
            None => Rc::from(Vec::new()),
        };
        self.layers[id].extra_env = Some(Rc::clone(&entries));
        Ok(entries)
    }

    /// The variable names a layer's extra_env sets, read leniently: layers loaded by the
    /// original tools must stay unloadable whatever their files say (unreadable: none).
    pub fn extra_env_keys(&mut self, id: LayerId) -> Vec<String> {
        match self.read_layer_file(id, LayerFileKind::ExtraEnv) {
            Ok(Some(text)) => model::extra_env_keys_lenient(&text),
            _ => Vec::new(),
        }
    }

    /// Lists the home once (see [`HomeListing`]).
    fn listing(&mut self, id: LayerId) -> HomeListing {
        if let Some(listing) = self.layers[id].listing {
            return listing;
        }
        let mut files = [false; 6];
        let mut directories = [Some(false); 4];
        // A file name with a `/` (an override pointing into a subdirectory) cannot be
        // seen in the listing: assume it may exist.
        for kind in LayerFileKind::ALL {
            if self.names.get(kind).contains('/') {
                files[kind as usize] = true;
            }
        }
        let names = &self.names;
        let listed = list_dir(&self.layers[id].home, |name, kind| {
            if let Some(kind) = LayerFileKind::ALL
                .into_iter()
                .find(|kind| *crate::env::bytes::encode(names.get(*kind)) == *name)
            {
                files[kind as usize] = true;
            }
            if let Some(index) = TOP_DIRECTORIES.iter().position(|d| d.as_bytes() == name) {
                directories[index] = match kind {
                    EntryKind::Directory => Some(true),
                    // A symlink or a file system that does not say: looked at later.
                    EntryKind::Unknown => None,
                    EntryKind::Other => Some(false),
                };
            }
        });
        let listing = match listed {
            Ok(()) => HomeListing::Listed { files, directories },
            Err(_) => HomeListing::Unknown,
        };
        self.layers[id].listing = Some(listing);
        listing
    }

    /// Whether a layer file may exist (false only when the listing says it does not).
    fn may_have(&mut self, id: LayerId, kind: LayerFileKind) -> bool {
        if self.names.is_disabled(kind) {
            return false;
        }
        match self.listing(id) {
            HomeListing::Listed { files, .. } => files[kind as usize],
            HomeListing::Unknown => true,
        }
    }

    /// The path of one of the layer's files (which may not exist).
    pub fn file_path(&self, id: LayerId, kind: LayerFileKind) -> String {
        format!("{}/{}", self.layers[id].home, self.names.get(kind))
    }

    /// The interactive profile or unprofile of a layer, when it exists.
    pub fn existing_file(&mut self, id: LayerId, kind: LayerFileKind) -> Option<String> {
        if !self.may_have(id, kind) {
            return None;
        }
        let path = self.file_path(id, kind);
        to_path(&path).is_file().then_some(path)
    }

    /// Which of the 18 prepend steps apply: bit `i` is set when step `i`'s directory exists.
    pub fn existing_prepend_dirs(&mut self, id: LayerId, versions: &PythonVersions) -> u32 {
        let listing = self.listing(id);
        let home = &self.layers[id].home;
        let devices = &mut self.counting_devices;
        // What is known of each relative path so far (no allocation per entry: the
        // paths are the static top directories and the versions' rendered sub-paths).
        let mut known: Vec<(&str, bool)> = Vec::with_capacity(24);
        if let HomeListing::Listed { directories, .. } = listing {
            for (name, is_dir) in TOP_DIRECTORIES.iter().zip(directories) {
                if let Some(is_dir) = is_dir {
                    known.push((name, is_dir));
                }
            }
        }
        // One buffer for every probed path: `home/` then the relative part.
        let mut path = String::with_capacity(home.len() + 48);
        path.push_str(home);
        path.push('/');
        let prefix_len = path.len();
        let below = |relative: &str, ancestor: &str| {
            relative.len() > ancestor.len()
                && relative.starts_with(ancestor)
                && relative.as_bytes()[ancestor.len()] == b'/'
        };
        // Directories with no subdirectory: nothing below them is a directory.
        let mut leaves: Vec<&str> = Vec::new();
        let mut is_dir =
            |relative: &'_ str, known: &mut Vec<(&'_ str, bool)>, leaves: &[&str]| -> bool {
                if let Some((_, exists)) =
                    known.iter().find(|(known_path, _)| *known_path == relative)
                {
                    return *exists;
                }
                // A missing ancestor makes every path below it missing: no stat needed.
                let below_missing = known
                    .iter()
                    .any(|(path, exists)| !*exists && below(relative, path))
                    || leaves.iter().any(|leaf| below(relative, leaf));
                !below_missing && {
                    path.truncate(prefix_len);
                    path.push_str(relative);
                    fs::metadata(to_path(&path)).is_ok_and(|m| m.is_dir())
                }
            };
        // Probe the top-level directories first so deeper probes can be skipped.
        for top in TOP_DIRECTORIES {
            let exists = is_dir(top, &mut known, &leaves);
            known.push((top, exists));
        }
        let local_lib = known
            .iter()
            .any(|(path, exists)| *path == "local" && *exists)
            && is_dir("local/lib", &mut known, &leaves);
        known.push(("local/lib", local_lib));
        // Most `lib/` hold files only: one stat tells, instead of one per sub-path.
        for dir in ["lib", "local/lib"] {
            if known.iter().any(|(path, exists)| *path == dir && *exists)
                && leaf_directory(&format!("{home}/{dir}"), devices)
            {
                leaves.push(dir);
            }
        }
        let mut mask = 0;
        for index in 0..PREPEND_STEPS.len() {
            let Some(sub) = versions.step_sub_path(index) else {
                continue;
            };
            let exists = is_dir(sub, &mut known, &leaves);
            known.push((sub, exists));
            if exists {
                mask |= 1 << index;
            }
        }
        mask
    }

    /// Whether a layer met so far (walked, named by home or remembered) carries `label`.
    pub fn knows_label(&self, label: &str) -> bool {
        self.first_by_label.contains_key(label) || self.layers.iter().any(|l| l.label == label)
    }

    /// A layer known only by what the state recorded (its directory vanished or broke
    /// since it was loaded): it has no files, so it can still be unloaded.
    pub fn remember(&mut self, home: &str, label: &str) -> LayerId {
        if let Some(id) = self.by_home.get(&*home_key(home)) {
            return *id;
        }
        self.add_layer(home.to_owned(), label.to_owned(), false)
    }

    fn add_layer(&mut self, home: String, label: String, in_layers_path: bool) -> LayerId {
        let id = self.layers.len();
        self.by_home.insert(home_key(&home).into_owned(), id);
        self.layers.push(Layer {
            home,
            label,
            in_layers_path,
            dependencies: None,
            conflicts: None,
            extra_env: None,
            listing: None,
            marker_forgotten: false,
        });
        id
    }

    /// Takes one more step of the walk; false when the walk is over.
    fn walk_next(&mut self) -> bool {
        loop {
            if self.walk.done {
                return false;
            }
            let Some(entry) = self.entries.get(self.walk.entry).cloned() else {
                self.walk.done = true;
                return false;
            };
            let Some(children) = &self.walk.children else {
                // First visit of this entry: is it a layer itself?
                match self.read_label(&entry) {
                    LabelRead::Label(label) => {
                        self.found(entry, label);
                        self.next_entry();
                        return true;
                    }
                    LabelRead::Broken(reason) => {
                        self.broken.push(BrokenLayer {
                            home: entry,
                            reason,
                        });
                        self.next_entry();
                        continue;
                    }
                    LabelRead::NotALayer => {
                        self.walk.children = Some(self.list_children(&entry));
                        self.walk.directory = open_directory(&entry);
                        self.walk.child = 0;
                        continue;
                    }
                }
            };
            let Some(name) = children.get(self.walk.child) else {
                self.next_entry();
                continue;
            };
            self.walk.child += 1;
            let home = format!("{entry}/{name}");
            // Already met by its home (a dependency given as a path, a loaded layer from
            // the state): its label was read then, or is known.
            if let Some(id) = self.by_home.get(&*home_key(&home)) {
                let label = self.layers[*id].label.clone();
                self.found(home, label);
                return true;
            }
            let read = match &self.walk.directory {
                Some(directory) => self.read_label_at(directory, name, &home),
                None => self.read_label(&home),
            };
            match read {
                LabelRead::Label(label) => {
                    self.found(home, label);
                    return true;
                }
                LabelRead::Broken(reason) => self.broken.push(BrokenLayer { home, reason }),
                LabelRead::NotALayer => {}
            }
        }
    }

    fn next_entry(&mut self) {
        self.walk.entry += 1;
        self.walk.children = None;
        self.walk.directory = None;
        self.walk.child = 0;
    }

    fn found(&mut self, home: String, label: String) {
        let id = match self.by_home.get(&*home_key(&home)) {
            Some(id) => *id,
            None => {
                // A second layers-path entry reaching the same directory (a symlink):
                // the layer is walked once, under the home string met first.
                if let Some(first) = self.first_by_label.get(&label).copied()
                    && same_directory(&self.layers[first].home, &home)
                {
                    self.by_home.insert(home_key(&home).into_owned(), first);
                    return;
                }
                self.add_layer(home, label.clone(), false)
            }
        };
        if self.layers[id].in_layers_path {
            return;
        }
        self.layers[id].in_layers_path = true;
        self.walked.push(id);
        match self.first_by_label.get(&label) {
            Some(first) => {
                let note = format!(
                    "label `{label}` of `{}` is also carried by `{}`, found first: this one is ignored",
                    self.layers[id].home, self.layers[*first].home
                );
                self.notes.push(note);
            }
            None => {
                self.first_by_label.insert(label, id);
            }
        }
    }

    /// The sorted names of the immediate children of a layers-path entry.
    fn list_children(&mut self, entry: &str) -> Vec<String> {
        let reader = match fs::read_dir(to_path(entry)) {
            Ok(reader) => reader,
            Err(err) => {
                if err.kind() != io::ErrorKind::NotFound {
                    self.notes.push(format!(
                        "cannot list `{entry}` from LAYERAPI2_LAYERS_PATH: {}",
                        io_reason(&err)
                    ));
                }
                return Vec::new();
            }
        };
        let mut names = Vec::new();
        for child in reader.flatten() {
            // Names are bytes too (a Latin-1 directory name is a fine home).
            names.push(crate::env::bytes::decode_os(child.file_name()));
        }
        names.sort_unstable();
        names
    }

    fn read_label(&self, home: &str) -> LabelRead {
        if self.names.is_disabled(LayerFileKind::Label) {
            return LabelRead::NotALayer;
        }
        let path = format!("{home}/{}", self.names.get(LayerFileKind::Label));
        self.parse_label_file(open_file(&path), &path)
    }

    /// Like [`Catalog::read_label`] for `directory/name`: a shorter path walk for the
    /// kernel, which matters when hundreds of layers are walked.
    fn read_label_at(&self, directory: &OwnedFd, name: &str, home: &str) -> LabelRead {
        if self.names.is_disabled(LayerFileKind::Label) {
            return LabelRead::NotALayer;
        }
        let relative = format!("{name}/{}", self.names.get(LayerFileKind::Label));
        let opened = openat(
            directory,
            &*to_path(&relative),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(io::Error::from);
        let path = format!("{home}/{}", self.names.get(LayerFileKind::Label));
        self.parse_label_file(opened, &path)
    }

    fn parse_label_file(&self, opened: io::Result<File>, path: &str) -> LabelRead {
        let file = match opened {
            Ok(file) => file,
            Err(err) => {
                return match err.kind() {
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => LabelRead::NotALayer,
                    _ => LabelRead::Broken(format!("cannot open `{path}`: {}", io_reason(&err))),
                };
            }
        };
        let text = match read_limited(file, path) {
            Ok(text) => text,
            Err(reason) => return LabelRead::Broken(reason),
        };
        let env = self.env;
        match model::parse_label(&text, |name| env.get(name)) {
            Ok(label) => LabelRead::Label(label),
            Err(reason) => LabelRead::Broken(format!("`{path}`: {reason}")),
        }
    }

    /// Reads one of a layer's files; `None` when it does not exist.
    fn read_layer_file(&mut self, id: LayerId, kind: LayerFileKind) -> Result<Option<String>> {
        if !self.may_have(id, kind) {
            return Ok(None);
        }
        let path = self.file_path(id, kind);
        let file = match open_file(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io("cannot open", Path::new(&path), &err)),
        };
        read_limited(file, &path)
            .map(Some)
            .map_err(|reason| Error::new(ErrorKind::LayerFile, reason))
    }
}

/// The key a directory is known by: its path with repeated `/` and `.` components
/// collapsed and no trailing `/`, so that `/p/a`, `/p//a`, `/p/./a` and `/p/a/` (a
/// layers-path entry written with a trailing slash, a dependency written by hand) are
/// one layer. The layer keeps the home string it was first met under, which its loaded
/// marker hashes. Lexical (no system call on the load path); the same directory reached
/// through a symlink is recognised where a second home string shows up (see
/// [`same_directory`]).
fn home_key(home: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = home.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() {
        &home[..home.len().min(1)]
    } else {
        trimmed
    };
    if !trimmed.contains("//") && !trimmed.contains("/.") {
        return std::borrow::Cow::Borrowed(trimmed);
    }
    let mut key = String::with_capacity(trimmed.len());
    for component in trimmed.split('/') {
        if component.is_empty() || component == "." {
            continue;
        }
        key.push('/');
        key.push_str(component);
    }
    if key.is_empty() {
        key.push('/');
    }
    std::borrow::Cow::Owned(key)
}

/// Whether two home strings name one directory (a symlink, `..`): compared by device
/// and inode. Only asked when a label shows up under a second home string, which the
/// common load never meets.
fn same_directory(first: &str, second: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(to_path(first)), fs::metadata(to_path(second))) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

enum LabelRead {
    NotALayer,
    Broken(String),
    Label(String),
}

/// Opens a layer file for reading without blocking on a FIFO planted as one.
fn open_file(path: &str) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(to_path(path))
}

fn open_directory(path: &str) -> Option<OwnedFd> {
    nix::fcntl::open(
        &*to_path(path),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Reads a whole layer file as bytes (see [`crate::env::bytes`]), refusing files over
/// [`MAX_LAYER_FILE_BYTES`].
///
/// Layer files are small: one `read` into a 1 KiB buffer usually gets all of it, and a
/// short read of a regular file means its end, which saves a second call per file.
///
/// Anything but a regular file is refused without blocking: files are opened
/// non-blocking (see [`open_file`]), so a FIFO's read returns at once, empty or "would
/// block"; a device fills the buffer. Only then (an empty read, a failed one, a full
/// buffer) is the file's type checked, so a common layer file costs no `fstat`.
fn read_limited(mut file: File, path: &str) -> std::result::Result<String, String> {
    let failed = |err: io::Error| format!("cannot read `{path}`: {}", io_reason(&err));
    let mut buffer = [0u8; 1024];
    let first = loop {
        match file.read(&mut buffer) {
            Ok(count) => break count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                refuse_special_file(&file, path)?;
                return Err(failed(err));
            }
        }
    };
    if first == 0 || first == buffer.len() {
        refuse_special_file(&file, path)?;
    }
    let mut bytes = buffer[..first].to_vec();
    if first == buffer.len() {
        file.take(MAX_LAYER_FILE_BYTES + 1 - first as u64)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
    }
    if bytes.len() as u64 > MAX_LAYER_FILE_BYTES {
        return Err(format!(
            "`{path}` is larger than {} KiB: not a layer file",
            MAX_LAYER_FILE_BYTES / 1024
        ));
    }
    // Bytes, not necessarily UTF-8 (an old tree may hold Latin-1): carried exactly.
    Ok(crate::env::bytes::decode_owned(bytes))
}

/// Refuses a layer file that is not a regular file (a FIFO, a device, a socket, a
/// directory), naming it.
fn refuse_special_file(file: &File, path: &str) -> std::result::Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(metadata) = file.metadata() else {
        return Ok(());
    };
    let file_type = metadata.file_type();
    let what = if file_type.is_file() {
        return Ok(());
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a fifo"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(format!(
        "`{path}` is {what}, not a regular file: not a layer file"
    ))
}

/// True when directory `path` certainly has no subdirectory: its link count is 2 (itself
/// and `.`) on a file system known to add one link per subdirectory (ext2/3/4, XFS,
/// tmpfs). Elsewhere (btrfs says 1, overlayfs and network file systems may not count
/// what they merge or serve) the answer is no, and the caller looks. `devices` caches
/// the file system check per device.
fn leaf_directory(path: &str, devices: &mut FastMap<u64, bool>) -> bool {
    use nix::sys::statfs::{EXT4_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC, statfs};
    let path = &*to_path(path);
    let Ok(stat) = nix::sys::stat::stat(path) else {
        return false;
    };
    if stat.st_nlink != 2 || stat.st_mode & nix::libc::S_IFMT != nix::libc::S_IFDIR {
        return false;
    }
    *devices.entry(stat.st_dev).or_insert_with(|| {
        statfs(path).is_ok_and(|fs| {
            [EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, TMPFS_MAGIC].contains(&fs.filesystem_type())
        })
    })
}

/// What a directory listing says an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EntryKind {
    Directory,
    /// A symlink, or a file system that does not report types.
    Unknown,
    Other,
}

/// Calls `each` with the name and kind of every entry of directory `path` (`.` and `..`
/// left out). This is `getdents64` straight away: the standard library's listing also
/// stats the directory, one system call per layer more on the load path.
fn list_dir(path: &str, mut each: impl FnMut(&[u8], EntryKind)) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = nix::fcntl::open(
        &*to_path(path),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // Aligned for the 8-byte fields of the records; left uninitialised (zeroing it cost
    // more than the listing): only what the kernel wrote is read.
    let mut buffer = std::mem::MaybeUninit::<[u64; 1024]>::uninit();
    loop {
        // SAFETY: the kernel writes at most the buffer's size into it.
        let read = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_getdents64,
                fd.as_raw_fd(),
                buffer.as_mut_ptr(),
                std::mem::size_of::<[u64; 1024]>(),
            )
        };
        if read < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if read == 0 {
            return Ok(());
        }
        // SAFETY: the first `read` bytes were written by the kernel.
        let bytes =
            unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), read as usize) };
        // Each record: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), the name
        // ending with NUL, padding.
        let mut offset = 0;
        while offset + 19 <= bytes.len() {
            let length = usize::from(u16::from_ne_bytes([bytes[offset + 16], bytes[offset + 17]]));
            if length < 19 || offset + length > bytes.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "malformed directory entry",
                ));
            }
            let field = &bytes[offset + 19..offset + length];
            let name = &field[..field.iter().position(|&b| b == 0).unwrap_or(field.len())];
            if name != b"." && name != b".." {
                let kind = match bytes[offset + 18] {
                    nix::libc::DT_DIR => EntryKind::Directory,
                    nix::libc::DT_LNK | nix::libc::DT_UNKNOWN => EntryKind::Unknown,
                    _ => EntryKind::Other,
                };
                each(name, kind);
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn homes_differing_by_repeated_or_trailing_slashes_have_one_key() {
        assert_eq!(home_key("/p/a"), "/p/a");
        assert_eq!(home_key("/p//a/"), "/p/a");
        assert_eq!(home_key("//p///a//"), "/p/a");
        assert_eq!(home_key("/"), "/");
        assert_eq!(home_key("/p/./a/."), "/p/a");
        assert_eq!(home_key("/./"), "/");
        assert_eq!(home_key("/p/.hidden"), "/p/.hidden");
        assert!(matches!(home_key("/p/a"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn listing_gives_every_entry_with_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("bin")).unwrap();
        fs::write(dir.path().join(".layerapi2_label"), "x@y\n").unwrap();
        std::os::unix::fs::symlink("bin", dir.path().join("lib")).unwrap();
        // Enough entries to need several reads of the buffer.
        for index in 0..3000 {
            fs::write(
                dir.path().join(format!("file-with-a-long-name-{index:05}")),
                "",
            )
            .unwrap();
        }
        let mut seen = Vec::new();
        list_dir(dir.path().to_str().unwrap(), |name, kind| {
            seen.push((String::from_utf8(name.to_vec()).unwrap(), kind));
        })
        .unwrap();
        seen.sort();
        assert_eq!(seen.len(), 3003);
        assert!(seen.contains(&(".layerapi2_label".to_owned(), EntryKind::Other)));
        assert!(seen.contains(&("bin".to_owned(), EntryKind::Directory)));
        assert!(seen.contains(&("lib".to_owned(), EntryKind::Unknown)));
        assert!(list_dir("/nonexistent/dir", |_, _| {}).is_err());
        // The link count tells a directory without subdirectories (where trusted).
        let mut devices = FastMap::default();
        let bin = dir.path().join("bin");
        let trusted = {
            let fs = nix::sys::statfs::statfs(&bin).unwrap().filesystem_type();
            [
                nix::sys::statfs::EXT4_SUPER_MAGIC,
                nix::sys::statfs::XFS_SUPER_MAGIC,
                nix::sys::statfs::TMPFS_MAGIC,
            ]
            .contains(&fs)
        };
        assert_eq!(leaf_directory(bin.to_str().unwrap(), &mut devices), trusted);
        assert!(
            !leaf_directory(dir.path().to_str().unwrap(), &mut devices),
            "has bin/"
        );
        assert!(!leaf_directory("/nonexistent", &mut devices));
        let file = dir.path().join("bin/../.layerapi2_label");
        assert!(list_dir(file.to_str().unwrap(), |_, _| {}).is_err());
    }
}
