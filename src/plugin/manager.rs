//! The plugins base dir and what happens in it (reference B3, B6–B11, DESIGN §5):
//! discovery, list/info/hash, install, uninstall, develop, provision, release and
//! repackage.
//!
//! The manager owns every write below the plugins base dir and to the OP override files
//! `RUNTIME/config/plugins/NAME.ini`. Its invariants:
//!
//! - install, uninstall, develop and provision run under the plugin-management lock
//!   ([`crate::plugin::lock`]), and start by settling the leftovers of killed runs
//!   ([`crate::plugin::transaction`]: roll back, finish or remove);
//! - nothing half-done is ever visible: an archive is checked in full before anything
//!   is written, then extracted below `<base>/.mfenv-tmp-*/metwork_plugin` (one level
//!   down, so layer discovery, which reads the base dir's children, never sees a partial
//!   tree; discovery and `list` skip hidden names), then moved into place under the
//!   staging directory's journal by one `rename` (a replacement swaps old and new with
//!   `RENAME_EXCHANGE`, or two journaled renames without it); uninstall first renames
//!   the plugin away, then deletes it;
//! - an install is committed only once its postinstall succeeded: a failing, timed-out
//!   or killed postinstall rolls back to the state before the install, and its
//!   processes are killed (its own process group, a token in their environment);
//! - OP overrides survive uninstall (unless `--clean`), reinstall and provisioning; an
//!   untouched template is replaced, a touched one is kept and the new template goes to
//!   `NAME.ini.new`.
//!
//! Messages for the user are collected in [`Manager::messages`]; nothing here writes
//! to stdout or reads the process environment (the progress line aside, drawn only
//! when the CLI edge allows it).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::context::ModuleContext;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::archive::{self, ArchiveSummary};
use crate::plugin::config::{self, General};
use crate::plugin::lock::{self, ManagementLock};
use crate::plugin::model::{
    self, CONFIG_FILE, DEV_LINK, LABEL_FILE, METADATA_FILE, Metadata, ModuleNames,
    POSTINSTALL_FILE, UNKNOWN, flatten,
};
use crate::plugin::overrides;
use crate::plugin::progress::Progress;
use crate::plugin::release::{self, BuildRequest};
use crate::plugin::transaction::{
    self, Journal, Moves, ProcessGroup, ReplacedTree, Settled, TreeId,
};

/// The mode of the plugins base dir and of the directories above it that mfenv creates
/// (whatever the umask: installed plugins are shared, never writable by others).
const SHARED_DIR_MODE: u32 = 0o755;
/// The mode of `RUNTIME/var/conf_monitor` when mfenv creates it (only its time matters).
const CONF_MONITOR_MODE: u32 = 0o644;

/// The prefix of staging directories in the base dir.
pub const STAGING_PREFIX: &str = ".mfenv-tmp-";

/// How a plugin of the base dir is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallState {
    /// `<base>/<name>` is a symlink to a source tree (`mfenv plugin develop`).
    DevLink,
    /// Installed from a `.plugin` file.
    Installed(Box<Metadata>),
    /// `.metadata.json` exists but cannot be used.
    BadMetadata(String),
    /// A plugin directory without metadata (not installed by a tool).
    NotInstalled,
}

/// A plugin found in the base dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPlugin {
    pub name: String,
    pub label: String,
    /// `<base>/<dir>`, symlinks not resolved.
    pub home: PathBuf,
    pub state: InstallState,
}

impl FoundPlugin {
    /// Installed or dev-linked: what `list` shows.
    pub fn is_installed(&self) -> bool {
        !matches!(self.state, InstallState::NotInstalled)
    }
}

/// Everything `info` shows about a plugin or a `.plugin` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub release: String,
    pub summary: String,
    pub size: String,
    pub build_host: String,
    pub build_date: String,
    pub license: String,
    pub maintainer: String,
    pub vendor: String,
    pub url: String,
    /// `None` for a `.plugin` file.
    pub home: Option<PathBuf>,
    pub files: Vec<String>,
}

impl Description {
    /// The plugin hash (reference B3).
    pub fn hash(&self) -> String {
        model::plugin_hash(
            &self.build_host,
            &self.build_date,
            &self.size,
            &self.version,
            &self.release,
        )
    }
}

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRow {
    pub name: String,
    pub release: String,
    pub version: String,
    pub home: PathBuf,
    /// Set for a plugin directory without `.metadata.json` (not installed by a tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

/// The note of a listed plugin directory without `.metadata.json`.
pub const NO_METADATA_NOTE: &str = "no .metadata.json";

/// What provisioning did (or, in a dry run, would do) with one `.plugin` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisionOutcome {
    /// The plugin was not installed: it is now.
    Installed,
    /// Another build of the plugin (another hash) was replaced.
    Updated,
    /// The installed plugin has the file's hash.
    Unchanged,
    /// The plugin is dev-linked (`mfenv plugin develop`): the link is kept.
    DevLinked,
    /// Another file of the same plugin in the directory is provisioned instead.
    Ignored,
    /// The file is bad, or its install failed (and was rolled back).
    Failed,
}

/// One `.plugin` file of a provisioning run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisionEntry {
    pub file: PathBuf,
    /// `None` when the file could not be read as a plugin.
    pub name: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    pub outcome: ProvisionOutcome,
    /// The version and release replaced by an update (`None` without usable metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_release: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The plugin home (installed, updated, unchanged or dev-linked).
    #[serde(skip)]
    pub home: Option<PathBuf>,
    /// The new or the replaced build ships a `crontab`.
    #[serde(skip)]
    pub crontab: bool,
}

impl ProvisionEntry {
    fn new(summary: &ArchiveSummary, outcome: ProvisionOutcome) -> Self {
        ProvisionEntry {
            file: summary.path.clone(),
            name: Some(summary.name.clone()),
            version: Some(summary.metadata.version.clone()),
            release: Some(summary.metadata.release.clone()),
            outcome,
            previous_version: None,
            previous_release: None,
            error: None,
            home: None,
            crontab: false,
        }
    }

    fn failed(file: &Path, summary: Option<&ArchiveSummary>, error: &Error) -> Self {
        let mut entry = match summary {
            Some(summary) => ProvisionEntry::new(summary, ProvisionOutcome::Failed),
            None => ProvisionEntry {
                file: file.to_owned(),
                name: None,
                version: None,
                release: None,
                outcome: ProvisionOutcome::Failed,
                previous_version: None,
                previous_release: None,
                error: None,
                home: None,
                crontab: false,
            },
        };
        entry.error = Some(flatten(error));
        entry
    }

    /// Installed or updated (or would be).
    pub fn changed(&self) -> bool {
        matches!(
            self.outcome,
            ProvisionOutcome::Installed | ProvisionOutcome::Updated
        )
    }
}

/// What a provisioning run did, file by file (sorted by file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionReport {
    pub dir: PathBuf,
    pub dry_run: bool,
    pub entries: Vec<ProvisionEntry>,
}

impl ProvisionReport {
    /// Some plugin was (or would be) installed or updated.
    pub fn changed(&self) -> bool {
        self.entries.iter().any(ProvisionEntry::changed)
    }

    /// The error naming every failed file, if any failed.
    pub fn failure(&self) -> Option<Error> {
        let failed: Vec<&ProvisionEntry> = self
            .entries
            .iter()
            .filter(|entry| entry.outcome == ProvisionOutcome::Failed)
            .collect();
        if failed.is_empty() {
            return None;
        }
        let mut error = Error::new(
            ErrorKind::LayerFile,
            format!(
                "provisioning from `{}` failed for {} of {} plugin files",
                self.dir.display(),
                failed.len(),
                self.entries.len()
            ),
        );
        for entry in failed {
            error = error.caused_by(format!(
                "`{}`: {}",
                entry.file.display(),
                entry.error.as_deref().unwrap_or_default()
            ));
        }
        Some(error)
    }
}

/// What the current build is stamped with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStamp {
    pub build_host: String,
    pub source_date_epoch: Option<u64>,
    pub now: u64,
}

/// Options of a manager, decided by the CLI edge.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    /// `MFCONFIG`, lower case.
    pub configuration: String,
    pub lock_timeout: Duration,
    /// Draw progress lines on stderr.
    pub progress: bool,
    /// The mfenv binary, to run postinstall in the plugin's layer environment.
    pub mfenv_binary: Option<PathBuf>,
    /// How long a postinstall may run (`None`: no limit).
    pub postinstall_timeout: Option<Duration>,
    /// Swap trees with `RENAME_EXCHANGE` when the system can (off: the journaled
    /// two-rename fallback, for file systems without it and for tests).
    pub rename_exchange: bool,
}

/// Plugin management for one module context.
pub struct Manager<'a> {
    pub context: &'a ModuleContext,
    pub env: &'a Env,
    pub options: ManagerOptions,
    /// Messages for stderr, in order.
    pub messages: Vec<String>,
}

/// A unique suffix for staging names within this process.
static STAGING_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Removes a tree, making its directories writable first if a plain removal fails
/// (a plugin may ship read-only directories).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            fs::remove_dir_all(path)
        }
    }
}

fn make_writable(path: &Path) {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let _ = fs::set_permissions(
        path,
        fs::Permissions::from_mode(metadata.permissions().mode() | 0o700),
    );
    if let Ok(children) = fs::read_dir(path) {
        for child in children.flatten() {
            make_writable(&child.path());
        }
    }
}

/// `path` made absolute against `cwd`, `.` components dropped (symlinks not resolved).
pub fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        cwd.join(path)
    };
    joined.components().collect()
}

impl<'a> Manager<'a> {
    pub fn new(context: &'a ModuleContext, env: &'a Env, options: ManagerOptions) -> Self {
        Manager {
            context,
            env,
            options,
            messages: Vec::new(),
        }
    }

    fn base_dir(&self) -> &Path {
        &self.context.plugins_base_dir
    }

    fn names(&self) -> ModuleNames<'_> {
        ModuleNames {
            module: &self.context.module,
            module_lowercase: &self.context.module_lowercase,
        }
    }

    /// `RUNTIME/config/plugins/NAME.ini`.
    pub fn op_override_path(&self, name: &str) -> PathBuf {
        self.context
            .runtime_home
            .join("config/plugins")
            .join(format!("{name}.ini"))
    }

    /// `SYSCONF/<module>/plugins/NAME.ini`.
    pub fn system_override_path(&self, name: &str) -> PathBuf {
        self.context
            .sysconf_dir
            .join(&self.context.module_lowercase)
            .join("plugins")
            .join(format!("{name}.ini"))
    }

    /// The default provisioning directory, `SYSCONF/<module>/plugins`.
    pub fn provisioning_dir(&self) -> PathBuf {
        self.context
            .sysconf_dir
            .join(&self.context.module_lowercase)
            .join("plugins")
    }

    /// Refuses to run `what` inside a plugin env (reference B6, C9).
    fn refuse_inside_plugin_env(&self, what: &str) -> Result<()> {
        let variable = format!("{}_CURRENT_PLUGIN_NAME", self.context.module);
        match self.env.get(&variable).filter(|value| !value.is_empty()) {
            None => Ok(()),
            Some(value) => Err(Error::new(
                ErrorKind::Environment,
                format!("don't use `mfenv plugin {what}` inside a plugin env"),
            )
            .caused_by(format!("`{variable}` is set (to `{value}`)"))
            .with_hint("leave the plugin environment and run the command again")),
        }
    }

    // ----- discovery -------------------------------------------------------------

    /// The plugin in directory `dir_name` of the base dir, if it is one.
    fn read_plugin(&mut self, dir_name: &str, warn: bool) -> Option<FoundPlugin> {
        let home = self.base_dir().join(dir_name);
        let is_link = fs::symlink_metadata(&home).is_ok_and(|m| m.file_type().is_symlink());
        if !home.is_dir() {
            if is_link && warn {
                self.messages.push(format!(
                    "warning: the dev link `{}` is broken => ignoring it",
                    home.display()
                ));
            }
            return None;
        }
        let (label, name) = match model::read_label(&home, &self.context.module_lowercase) {
            Ok(found) => found,
            Err(error) => {
                if warn {
                    self.messages.push(format!(
                        "warning: found bad plugin in `{}` => ignoring it (details: {})",
                        home.display(),
                        flatten(&error)
                    ));
                }
                return None;
            }
        };
        let state = if is_link {
            InstallState::DevLink
        } else {
            match Metadata::read(&home) {
                Ok(Some(metadata)) => InstallState::Installed(Box::new(metadata)),
                Ok(None) => InstallState::NotInstalled,
                Err(reason) => InstallState::BadMetadata(reason),
            }
        };
        Some(FoundPlugin {
            name,
            label,
            home,
            state,
        })
    }

    /// The names of the base dir's children that may be plugins, sorted.
    fn candidate_dirs(&self) -> Result<Vec<String>> {
        let base = self.base_dir();
        let reader = match fs::read_dir(base) {
            Ok(reader) => reader,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(Error::io("cannot read", base, &err)),
        };
        let mut names: Vec<String> = reader
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.') && name != "base")
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every plugin of the base dir (installed or not), sorted by directory name; bad
    /// ones are reported in the messages.
    pub fn scan(&mut self) -> Result<Vec<FoundPlugin>> {
        let mut plugins = Vec::new();
        for dir_name in self.candidate_dirs()? {
            if let Some(plugin) = self.read_plugin(&dir_name, true) {
                plugins.push(plugin);
            }
        }
        Ok(plugins)
    }

    /// The plugin named `name` in the base dir (any state).
    pub fn find(&mut self, name: &str) -> Result<Option<FoundPlugin>> {
        if model::validate_name(name).is_err() {
            return Ok(None);
        }
        if let Some(plugin) = self.read_plugin(name, false)
            && plugin.name == name
        {
            return Ok(Some(plugin));
        }
        for dir_name in self.candidate_dirs()? {
            if dir_name == name {
                continue;
            }
            if let Some(plugin) = self.read_plugin(&dir_name, false)
                && plugin.name == name
            {
                return Ok(Some(plugin));
            }
        }
        Ok(None)
    }

    fn find_installed(&mut self, name: &str) -> Result<FoundPlugin> {
        match self.find(name)? {
            Some(plugin) => Ok(plugin),
            None => Err(Error::new(
                ErrorKind::LayerNotFound,
                format!("plugin `{name}` is not installed"),
            )
            .caused_by(format!(
                "no plugin labelled `{}` in `{}`",
                self.context.plugin_label(name),
                self.base_dir().display()
            ))
            .with_hint("`mfenv plugin list` shows the installed plugins")),
        }
    }

    /// The validated `[general]` of an installed plugin.
    fn general_of(&self, plugin: &FoundPlugin) -> Result<General> {
        let env = model::plugin_env(
            self.env,
            &self.context.module,
            &plugin.name,
            &plugin.home,
            &plugin.label,
        );
        config::read_general(&plugin.home, &env, &self.options.configuration)
    }

    /// The rows of `list`: every plugin of the base dir, as the original lists them;
    /// a directory without `.metadata.json` has its version from its configuration
    /// and a note.
    pub fn list(&mut self) -> Result<Vec<ListRow>> {
        let plugins = self.scan()?;
        let mut rows = Vec::new();
        for plugin in plugins {
            let note = (plugin.state == InstallState::NotInstalled).then_some(NO_METADATA_NOTE);
            let (version, release) = match &plugin.state {
                InstallState::DevLink => (DEV_LINK.to_owned(), DEV_LINK.to_owned()),
                InstallState::Installed(metadata) => {
                    (metadata.version.clone(), metadata.release.clone())
                }
                InstallState::BadMetadata(reason) => {
                    self.messages
                        .push(format!("warning: plugin `{}`: {reason}", plugin.name));
                    ("error".to_owned(), "error".to_owned())
                }
                InstallState::NotInstalled => match self.general_of(&plugin) {
                    Ok(general) => (general.version, general.release),
                    Err(error) => {
                        self.messages.push(format!(
                            "warning: plugin `{}`: {}",
                            plugin.name,
                            flatten(&error)
                        ));
                        ("error".to_owned(), "error".to_owned())
                    }
                },
            };
            rows.push(ListRow {
                name: plugin.name,
                release,
                version,
                home: plugin.home,
                note,
            });
        }
        Ok(rows)
    }

    /// What `info` and `hash` say about an installed plugin.
    pub fn describe_installed(&mut self, name: &str) -> Result<Description> {
        let plugin = self.find_installed(name)?;
        let general = self.general_of(&plugin);
        let mut description = Description {
            name: plugin.name.clone(),
            version: UNKNOWN.to_owned(),
            release: UNKNOWN.to_owned(),
            summary: UNKNOWN.to_owned(),
            size: UNKNOWN.to_owned(),
            build_host: UNKNOWN.to_owned(),
            build_date: UNKNOWN.to_owned(),
            license: UNKNOWN.to_owned(),
            maintainer: UNKNOWN.to_owned(),
            vendor: UNKNOWN.to_owned(),
            url: UNKNOWN.to_owned(),
            home: Some(plugin.home.clone()),
            files: Vec::new(),
        };
        match &plugin.state {
            InstallState::DevLink => {
                description.version = DEV_LINK.to_owned();
                description.release = DEV_LINK.to_owned();
            }
            InstallState::Installed(metadata) => {
                description.version = metadata.version.clone();
                description.release = metadata.release.clone();
                description.size = metadata.size.clone();
                description.build_host = metadata.build_host.clone();
                description.build_date = metadata.build_date.clone();
                description.summary = metadata.summary.clone();
                description.license = metadata.license.clone();
                description.maintainer = metadata.packager.clone();
                description.vendor = metadata.vendor.clone();
                description.url = metadata.url.clone();
                match model::read_files_list(&plugin.home) {
                    Ok(files) => description.files = files,
                    Err(reason) => self.messages.push(format!("warning: {reason}")),
                }
            }
            InstallState::BadMetadata(reason) => {
                return Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("plugin `{}` is broken", plugin.name),
                )
                .caused_by(reason.clone())
                .with_hint(format!(
                    "reinstall it with `mfenv plugin install --force FILE`, or remove it with `mfenv plugin uninstall {}`",
                    plugin.name
                )));
            }
            InstallState::NotInstalled => {}
        }
        // Like the original, the live configuration gives the descriptive fields.
        match general {
            Ok(general) => {
                if plugin.state == InstallState::NotInstalled {
                    description.version = general.version.clone();
                    description.release = if general.release.is_empty() {
                        "1".to_owned()
                    } else {
                        general.release.clone()
                    };
                }
                description.summary = general.summary;
                description.license = general.license;
                description.maintainer = general.maintainer;
                description.vendor = general.vendor;
                description.url = general.url;
            }
            Err(error) => self.messages.push(format!(
                "warning: plugin `{}`: {}",
                plugin.name,
                flatten(&error)
            )),
        }
        Ok(description)
    }

    /// What `info` and `hash` say about a `.plugin` file.
    pub fn describe_file(&mut self, path: &Path) -> Result<Description> {
        let (_, summary) = archive::inspect(path, &self.context.module_lowercase)?;
        Ok(describe_summary(&summary))
    }

    // ----- install -----------------------------------------------------------------

    fn acquire_lock(&mut self) -> Result<ManagementLock> {
        let lock = lock::acquire(&self.context.runtime_home, self.options.lock_timeout)?;
        self.settle_leftovers();
        Ok(lock)
    }

    fn moves(&self) -> Moves {
        Moves {
            rename_exchange: self.options.rename_exchange,
        }
    }

    /// Settles the staging directories of killed runs (the lock is held): an install
    /// that was not committed is rolled back, a committed one finished, the rest
    /// removed ([`transaction`]).
    fn settle_leftovers(&mut self) {
        let Ok(reader) = fs::read_dir(self.base_dir()) else {
            return;
        };
        let mut leftovers: Vec<PathBuf> = reader
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(STAGING_PREFIX))
            })
            .map(|entry| entry.path())
            .collect();
        leftovers.sort();
        let mut changed = false;
        for staging in leftovers {
            match transaction::settle(&staging, self.moves()) {
                Settled::Discarded => {}
                Settled::RolledBack { name } => {
                    changed = true;
                    self.messages.push(format!(
                        "warning: an interrupted install of plugin `{name}` was rolled back"
                    ));
                }
                Settled::Committed { name, target } => {
                    changed = true;
                    let dev_link = fs::symlink_metadata(&target)
                        .is_ok_and(|metadata| metadata.file_type().is_symlink());
                    if !dev_link {
                        self.write_override_template(&name, &target);
                    }
                    self.messages.push(format!(
                        "warning: an interrupted install of plugin `{name}` was completed"
                    ));
                }
                Settled::Kept(reason) => self.messages.push(format!(
                    "warning: the leftover `{}` is kept: {reason}",
                    staging.display()
                )),
            }
        }
        if changed {
            self.signal_change();
        }
    }

    /// A new staging directory in the base dir (`0700`; the base dir and its missing
    /// parents are created `0755`, whatever the umask).
    fn new_staging_dir(&self) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let base = self.base_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(SHARED_DIR_MODE)
            .create(base)
            .map_err(|err| Error::io("cannot create", base, &err))?;
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!(
                "{STAGING_PREFIX}{}-{nanos:08x}-{}",
                std::process::id(),
                STAGING_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(path),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(Error::io("cannot create", &path, &err)),
            }
        }
    }

    /// Tells conf_monitor that plugins changed (`touch RUNTIME/var/conf_monitor`),
    /// as the original did; failures are ignored.
    fn signal_change(&self) {
        let var = self.context.runtime_home.join("var");
        if !var.is_dir() {
            return;
        }
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(CONF_MONITOR_MODE)
            .open(var.join("conf_monitor"))
        {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// `mfenv plugin install FILE [--new-name N] [--force]`; returns the plugin home.
    pub fn install(&mut self, file: &Path, new_name: Option<&str>, force: bool) -> Result<PathBuf> {
        self.refuse_inside_plugin_env("install")?;
        if let Some(name) = new_name {
            model::validate_name(name).map_err(|reason| model::bad_name_error(name, reason))?;
        }
        // Checking needs no lock: it writes nothing.
        let (handle, summary) = archive::inspect(file, &self.context.module_lowercase)
            .map_err(|error| nothing_installed(error, file))?;
        let _lock = self.acquire_lock()?;
        let home = self.install_checked(handle, &summary, new_name, force)?;
        self.signal_change();
        Ok(home)
    }

    /// Installs a checked archive; the lock is held.
    fn install_checked(
        &mut self,
        handle: File,
        summary: &ArchiveSummary,
        new_name: Option<&str>,
        force: bool,
    ) -> Result<PathBuf> {
        let name = new_name.unwrap_or(&summary.name).to_owned();
        let failed = |error: Error| {
            error.context(format!(
                "cannot install plugin `{name}` from `{}`",
                summary.path.display()
            ))
        };
        let existing = self.find(&name)?;
        if let (Some(plugin), false) = (&existing, force) {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("plugin `{name}` is already installed"),
            )
            .caused_by(format!("it is at `{}`", plugin.home.display()))
            .with_hint(format!(
                "use `--force` to replace it, or run `mfenv plugin uninstall {name}` first"
            )));
        }
        let target = self.base_dir().join(&name);
        let target_taken = fs::symlink_metadata(&target).is_ok();
        let replaces_target = existing.as_ref().is_some_and(|p| p.home == target);
        if target_taken && !replaces_target {
            return Err(failed(
                Error::new(
                    ErrorKind::LayerFile,
                    format!(
                        "`{}` already exists and is not plugin `{name}`",
                        target.display()
                    ),
                )
                .with_hint("move it out of the plugins base dir"),
            ));
        }
        let staging = self.new_staging_dir()?;
        let mut progress = Progress::new(self.options.progress, format!("installing `{name}`"));
        let extracted =
            archive::extract(handle, summary, &staging, &mut progress).and_then(|root| {
                let label_path = root.join(LABEL_FILE);
                if new_name.is_some() {
                    // Replace rather than write through: the label may be a hard link. Its
                    // mode is an installed file's, whatever the umask.
                    fs::remove_file(&label_path)
                        .and_then(|()| {
                            use std::io::Write;
                            use std::os::unix::fs::OpenOptionsExt;
                            OpenOptions::new()
                                .write(true)
                                .create_new(true)
                                .mode(0o644)
                                .open(&label_path)?
                                .write_all(
                                    format!("{}\n", self.context.plugin_label(&name)).as_bytes(),
                                )
                        })
                        .map_err(|err| Error::io("cannot write", &label_path, &err))?;
                } else {
                    // The file could have changed since it was checked.
                    let (_, label_name) = model::read_label(&root, &self.context.module_lowercase)?;
                    if label_name != summary.name {
                        return Err(Error::new(
                            ErrorKind::LayerFile,
                            format!(
                                "`{}` changed while it was installed",
                                summary.path.display()
                            ),
                        ));
                    }
                }
                Ok(root)
            });
        drop(progress);
        let root = match extracted {
            Ok(root) => root,
            Err(error) => {
                let _ = remove_tree(&staging);
                return Err(failed(error).with_hint("nothing was installed"));
            }
        };
        let undone = if existing.is_some() {
            "the previous installation was put back"
        } else {
            "the plugin was removed again"
        };
        // From here on the journal says what to undo (module `transaction`).
        let replaced = match &existing {
            None => Ok(None),
            Some(plugin) => TreeId::of(&plugin.home).map(|id| {
                Some(ReplacedTree {
                    home: plugin.home.clone(),
                    id,
                })
            }),
        };
        let mut journal = match (TreeId::of(&root), replaced) {
            (Ok(id), Ok(replaced)) => Journal::new(&name, &target, id, replaced),
            (Err(err), _) | (_, Err(err)) => {
                let _ = remove_tree(&staging);
                return Err(failed(Error::io("cannot read", &root, &err))
                    .with_hint("nothing was installed"));
            }
        };
        if let Err(err) = journal.write(&staging) {
            let _ = remove_tree(&staging);
            return Err(
                failed(Error::io("cannot write the journal in", &staging, &err))
                    .with_hint("nothing was installed"),
            );
        }
        // Into place: one rename, or one atomic swap with the plugin it replaces.
        if let Err(err) = self.moves().place(&journal, &staging) {
            let error = failed(Error::io("cannot move the plugin to", &target, &err));
            return Err(self.roll_back(&staging, error, undone));
        }
        let postinstall = self.run_postinstall(&name, &target, &staging, &mut journal);
        if let Err(error) = postinstall {
            return Err(self.roll_back(&staging, failed(error), undone));
        }
        journal.committed = true;
        if let Err(err) = journal.write(&staging) {
            let error = failed(Error::io("cannot write the journal in", &staging, &err));
            return Err(self.roll_back(&staging, error, undone));
        }
        self.write_override_template(&name, &target);
        if let Settled::Kept(reason) = transaction::settle(&staging, self.moves()) {
            self.messages.push(format!(
                "warning: the leftover `{}` is kept: {reason}",
                staging.display()
            ));
        }
        Ok(target)
    }

    /// Rolls back the install of `staging` after `error`; says what was restored.
    fn roll_back(&mut self, staging: &Path, error: Error, undone: &str) -> Error {
        match transaction::settle(staging, self.moves()) {
            Settled::Kept(reason) => error
                .caused_by(format!(
                    "the rollback stopped: {reason}; `{}` is kept",
                    staging.display()
                ))
                .with_hint(
                    "run any `mfenv plugin install`, `uninstall` or `provision` to retry it",
                ),
            _ => error.with_hint(undone),
        }
    }

    /// `RUNTIME/log/postinstall_NAME.log`: the output of the last postinstall of `name`.
    pub fn postinstall_log_path(&self, name: &str) -> PathBuf {
        self.context
            .runtime_home
            .join("log")
            .join(format!("postinstall_{name}.log"))
    }

    /// Runs `<home>/postinstall` when it is an executable file, in the plugin env with
    /// its layer loaded (through `mfenv plugin wrapper`), from the plugin home.
    ///
    /// It runs in its own process group, killed by the kernel's parent-death signal
    /// (its leader) and by the rollback (the whole group) if mfenv dies; the group is
    /// recorded in the install's journal. Its output goes to
    /// [`Manager::postinstall_log_path`], never into memory; the tail is shown.
    fn run_postinstall(
        &mut self,
        name: &str,
        home: &Path,
        staging: &Path,
        journal: &mut Journal,
    ) -> Result<()> {
        use std::os::unix::process::CommandExt;

        let script = home.join(POSTINSTALL_FILE);
        let runnable = fs::metadata(&script)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0);
        if !runnable {
            return Ok(());
        }
        let Some(binary) = &self.options.mfenv_binary else {
            return Err(Error::new(
                ErrorKind::Io,
                "cannot run the postinstall: the mfenv binary is unknown",
            ));
        };
        let log_path = self.postinstall_log_path(name);
        let log = log_path
            .parent()
            .map_or(Ok(()), crate::private::create_dir_all)
            .and_then(|()| {
                use std::os::unix::fs::OpenOptionsExt;
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&log_path)
            })
            .map_err(|err| Error::io("cannot write the postinstall log", &log_path, &err))?;
        let log_for_stderr = log
            .try_clone()
            .map_err(|err| Error::io("cannot write the postinstall log", &log_path, &err))?;
        let parent = std::process::id();
        // The staging directory's name is unique: it marks the postinstall's processes.
        let mut group = ProcessGroup {
            token: staging
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pgid: None,
            start_time: None,
        };
        journal.postinstall = Some(group.clone());
        journal
            .write(staging)
            .map_err(|err| Error::io("cannot write the journal in", staging, &err))?;
        let mut command = Command::new(binary);
        // The plugin env (configuration variables, TMPDIR, PYTHONPATH, identity) and the
        // plugin layer, as `mfenv plugin wrapper` gives every plugin command.
        command
            .env_clear()
            .envs(self.env.vars())
            .env("MFMODULE_PLUGINS_BASE_DIR", self.base_dir())
            .env(transaction::POSTINSTALL_ID_VARIABLE, &group.token)
            .current_dir(home)
            .args(["plugin", "wrapper", "--cwd"])
            .arg(home)
            .arg("--")
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_for_stderr)
            .process_group(0);
        // SAFETY: between fork and exec the closure only makes two system calls
        // (prctl, getppid), which are async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(io::Error::from)?;
                // The parent may have died before the signal was armed.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
                Ok(())
            });
        }
        // SIGINT, SIGTERM and SIGHUP wait while it runs: they roll the install back at
        // once instead of leaving it to the next plugin operation.
        let stop_signals = StopSignals::block();
        let mut child = command
            .spawn()
            .map_err(|err| Error::io("cannot run", &script, &err))?;
        let pid = child.id() as i32;
        group.pgid = Some(pid);
        group.start_time = transaction::process_start_time(pid);
        journal.postinstall = Some(group.clone());
        if let Err(err) = journal.write(staging) {
            transaction::kill_group(&group);
            let _ = child.wait();
            return Err(Error::io("cannot write the journal in", staging, &err));
        }
        let timeout = self.options.postinstall_timeout;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(err) => break Err(Error::io("cannot wait for", &script, &err)),
            }
            if let Some(signal) = stop_signals.received() {
                break Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("the install of plugin `{name}` was interrupted ({signal})"),
                )
                .caused_by("the postinstall was killed, with every process it started"));
            }
            if let Some(limit) = timeout
                && started.elapsed() >= limit
            {
                break Err(Error::new(
                    ErrorKind::LayerFile,
                    format!(
                        "the postinstall of plugin `{name}` did not finish within {} s",
                        limit.as_secs_f64()
                    ),
                )
                .caused_by("it was killed, with every process it started")
                .caused_by(format!(
                    "`MFENV_POSTINSTALL_TIMEOUT` (seconds, 0: no limit) sets the limit; its output is in `{}`",
                    log_path.display()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let status = match status {
            Ok(status) => status,
            Err(error) => {
                transaction::kill_group(&group);
                let _ = child.wait();
                return Err(error);
            }
        };
        let (lines, skipped) = log_tail(&log_path);
        if status.success() {
            if skipped {
                self.messages.push(format!(
                    "postinstall: (earlier lines in `{}`)",
                    log_path.display()
                ));
            }
            for line in lines {
                self.messages.push(format!("postinstall: {line}"));
            }
            return Ok(());
        }
        // What it left running goes with the rollback.
        transaction::kill_group(&group);
        let status = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        let mut error = Error::new(
            ErrorKind::LayerFile,
            format!("the postinstall of plugin `{name}` failed ({status})"),
        );
        for line in lines {
            error = error.caused_by(format!("postinstall: {line}"));
        }
        Err(error.caused_by(format!("its whole output is in `{}`", log_path.display())))
    }

    /// Writes the OP override template of an installed (not dev-linked) plugin.
    fn write_override_template(&mut self, name: &str, home: &Path) {
        let config_path = home.join(CONFIG_FILE);
        let Ok(config_text) = model::read_small_file(&config_path, model::MAX_CONFIG_SIZE) else {
            return;
        };
        let text = overrides::template(
            &config_text,
            &config_path,
            name,
            &self.system_override_path(name),
        );
        let mut target = self.op_override_path(name);
        if let Ok(existing) = model::read_small_file(&target, model::MAX_CONFIG_SIZE)
            && overrides::has_interesting_line(&existing)
        {
            let new_target = target.with_extension("ini.new");
            self.messages.push(format!(
                    "warning: `{}` already exists, we prefer not to override, new file created as: `{}` => please merge them manually",
                    target.display(),
                    new_target.display()
                ));
            target = new_target;
        }
        // For the OP only: overrides may hold passwords.
        let written = crate::private::write(&target, text);
        if let Err(err) = written {
            self.messages.push(format!(
                "warning: cannot write `{}`: {}",
                target.display(),
                crate::error::io_reason(&err)
            ));
        }
    }

    // ----- uninstall, develop --------------------------------------------------------

    /// `mfenv plugin uninstall NAME [--clean]`.
    pub fn uninstall(&mut self, name: &str, clean: bool) -> Result<PathBuf> {
        self.refuse_inside_plugin_env("uninstall")?;
        let _lock = self.acquire_lock()?;
        let link = self.base_dir().join(name);
        let broken_link = model::validate_name(name).is_ok()
            && fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink())
            && !link.is_dir();
        if broken_link {
            // A dev link whose source tree is gone has no label left to read.
            fs::remove_file(&link)
                .map_err(|err| Error::io("cannot remove the dev link", &link, &err))?;
            self.signal_change();
            return Ok(link);
        }
        let plugin = self.find_installed(name)?;
        if plugin.state == InstallState::DevLink {
            fs::remove_file(&plugin.home)
                .map_err(|err| Error::io("cannot remove the dev link", &plugin.home, &err))?;
        } else {
            let staging = self.new_staging_dir()?;
            fs::rename(&plugin.home, staging.join(&plugin.name)).map_err(|err| {
                let _ = fs::remove_dir(&staging);
                Error::io("cannot uninstall", &plugin.home, &err)
            })?;
            if let Err(err) = remove_tree(&staging) {
                self.messages.push(format!(
                    "warning: cannot remove `{}`: {} (the next plugin operation will)",
                    staging.display(),
                    crate::error::io_reason(&err)
                ));
            }
        }
        let override_path = self.op_override_path(name);
        if clean {
            for path in [
                override_path.clone(),
                override_path.with_extension("ini.new"),
            ] {
                match fs::remove_file(&path) {
                    Ok(()) => self
                        .messages
                        .push(format!("removed the override `{}`", path.display())),
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(Error::io("cannot remove", &path, &err)),
                }
            }
        } else if model::read_small_file(&override_path, model::MAX_CONFIG_SIZE)
            .is_ok_and(|text| !overrides::has_interesting_line(&text))
        {
            // An untouched template overrides nothing: it goes with the plugin.
            let _ = fs::remove_file(&override_path);
        }
        self.signal_change();
        Ok(plugin.home)
    }

    /// `mfenv plugin develop [DIR]`: links the source tree `dir` (absolute) into the
    /// base dir. Returns the link.
    pub fn develop(&mut self, dir: &Path) -> Result<PathBuf> {
        let source = model::check_source(dir, self.names(), self.env, &self.options.configuration)?;
        let name = source.name.clone();
        let _lock = self.acquire_lock()?;
        let target = self.base_dir().join(&name);
        if let Some(plugin) = self.find(&name)? {
            let same = plugin.state == InstallState::DevLink
                && fs::read_link(&plugin.home).is_ok_and(|link| link == dir);
            if same {
                self.messages.push(format!(
                    "plugin `{name}` is already dev-linked to `{}`",
                    dir.display()
                ));
                return Ok(plugin.home);
            }
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!("plugin `{name}` is already installed"),
            )
            .caused_by(format!("it is at `{}`", plugin.home.display()))
            .with_hint(format!("run `mfenv plugin uninstall {name}` first")));
        }
        if fs::symlink_metadata(&target).is_ok() {
            return Err(Error::new(
                ErrorKind::LayerFile,
                format!(
                    "`{}` already exists and is not plugin `{name}`",
                    target.display()
                ),
            )
            .with_hint("move it out of the plugins base dir"));
        }
        // The link is made in a staging directory and moved in under a journal, as an
        // install: a kill during its postinstall is rolled back too.
        let staging = self.new_staging_dir()?;
        let link = staging.join(transaction::NEW_TREE);
        let failed = |error: Error| error.context(format!("cannot dev-link plugin `{name}`"));
        let mut journal = match std::os::unix::fs::symlink(dir, &link)
            .and_then(|()| TreeId::of(&link))
            .map(|id| Journal::new(&name, &target, id, None))
            .and_then(|journal| journal.write(&staging).map(|()| journal))
        {
            Ok(journal) => journal,
            Err(err) => {
                let _ = remove_tree(&staging);
                return Err(failed(Error::io("cannot create the dev link", &link, &err)));
            }
        };
        if let Err(err) = self.moves().place(&journal, &staging) {
            let error = failed(Error::io("cannot create the dev link", &target, &err));
            return Err(self.roll_back(&staging, error, "the dev link was removed again"));
        }
        if let Err(error) = self.run_postinstall(&name, &target, &staging, &mut journal) {
            return Err(self.roll_back(&staging, failed(error), "the dev link was removed again"));
        }
        journal.committed = true;
        if let Err(err) = journal.write(&staging) {
            let error = failed(Error::io("cannot write the journal in", &staging, &err));
            return Err(self.roll_back(&staging, error, "the dev link was removed again"));
        }
        if let Settled::Kept(reason) = transaction::settle(&staging, self.moves()) {
            self.messages.push(format!(
                "warning: the leftover `{}` is kept: {reason}",
                staging.display()
            ));
        }
        self.signal_change();
        Ok(target)
    }

    // ----- provision ---------------------------------------------------------------

    /// `mfenv plugin provision [--dir D] [--dry-run]`: installs or updates every
    /// `*.plugin` of `dir`, one entry per file in the report. A bad file is a failed
    /// entry and the others go on; an `Err` means nothing was provisioned (inside a
    /// plugin env, an unreadable directory, the lock). A dry run takes no lock, settles
    /// no leftover and writes nothing: it reads the files and the base dir and says
    /// what a real run would do.
    pub fn provision(&mut self, dir: &Path, dry_run: bool) -> Result<ProvisionReport> {
        self.refuse_inside_plugin_env("provision")?;
        let mut report = ProvisionReport {
            dir: dir.to_owned(),
            dry_run,
            entries: Vec::new(),
        };
        let reader = match fs::read_dir(dir) {
            Ok(reader) => reader,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.messages.push(format!(
                    "no `{}` directory: no plugin to provision",
                    dir.display()
                ));
                return Ok(report);
            }
            Err(err) => return Err(Error::io("cannot read", dir, &err)),
        };
        let mut files: Vec<PathBuf> = reader
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "plugin")
                    && !path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        // Every file is read before the lock is taken (reading writes nothing). A bad
        // file is reported and the others go on.
        let mut by_name: BTreeMap<String, Vec<(File, ArchiveSummary)>> = BTreeMap::new();
        for file in &files {
            if !file.is_file() {
                let error = Error::new(
                    ErrorKind::LayerFile,
                    format!("`{}` is not a regular file", file.display()),
                );
                self.messages
                    .push(error.render(false).trim_end().to_owned());
                report
                    .entries
                    .push(ProvisionEntry::failed(file, None, &error));
                continue;
            }
            match archive::inspect(file, &self.context.module_lowercase) {
                Ok((handle, summary)) => by_name
                    .entry(summary.name.clone())
                    .or_default()
                    .push((handle, summary)),
                Err(error) => {
                    let error = nothing_installed(error, file);
                    self.messages
                        .push(error.render(false).trim_end().to_owned());
                    report
                        .entries
                        .push(ProvisionEntry::failed(file, None, &error));
                }
            }
        }
        let _lock = if dry_run {
            None
        } else {
            Some(self.acquire_lock()?)
        };
        for (name, mut candidates) in by_name {
            // One file per plugin, the same whatever the directory order: the highest
            // version, then release, then file name.
            candidates.sort_by(|(_, first), (_, second)| provisioning_order(first, second));
            let Some((handle, summary)) = candidates.pop() else {
                continue;
            };
            for (_, ignored) in &candidates {
                self.messages.push(format!(
                    "warning: `{}` and `{}` both hold plugin `{name}`: {}-{} is provisioned, `{}` ({}-{}) is ignored",
                    ignored.path.display(),
                    summary.path.display(),
                    summary.metadata.version,
                    summary.metadata.release,
                    ignored.path.display(),
                    ignored.metadata.version,
                    ignored.metadata.release,
                ));
                report
                    .entries
                    .push(ProvisionEntry::new(ignored, ProvisionOutcome::Ignored));
            }
            let entry = match self.provision_one(handle, &summary, dry_run) {
                Ok(entry) => entry,
                Err(error) => {
                    self.messages
                        .push(error.render(false).trim_end().to_owned());
                    ProvisionEntry::failed(&summary.path, Some(&summary), &error)
                }
            };
            report.entries.push(entry);
        }
        report
            .entries
            .sort_by(|first, second| first.file.cmp(&second.file));
        if report.changed() && !dry_run {
            self.signal_change();
        }
        Ok(report)
    }

    /// Provisions one file (the lock is held unless `dry_run`).
    fn provision_one(
        &mut self,
        handle: File,
        summary: &ArchiveSummary,
        dry_run: bool,
    ) -> Result<ProvisionEntry> {
        let file = &summary.path;
        let name = summary.name.clone();
        let wanted = summary.metadata.hash();
        let installed = self.find(&name)?;
        let (installed_word, updated_word) = if dry_run {
            ("would install", "would update")
        } else {
            ("installed", "updated")
        };
        let ships_crontab = summary
            .files
            .iter()
            .any(|path| path.trim_start_matches("./") == "metwork_plugin/crontab");
        let Some(plugin) = installed else {
            let mut entry = ProvisionEntry::new(summary, ProvisionOutcome::Installed);
            entry.crontab = ships_crontab;
            if !dry_run {
                entry.home = Some(self.install_checked(handle, summary, None, false)?);
            }
            self.messages.push(format!(
                "{installed_word} plugin `{name}` {}-{} from `{}`",
                summary.metadata.version,
                summary.metadata.release,
                file.display()
            ));
            return Ok(entry);
        };
        let current = match &plugin.state {
            InstallState::DevLink => {
                self.messages.push(format!(
                    "plugin `{name}` is dev-linked: `{}` not installed",
                    file.display()
                ));
                let mut entry = ProvisionEntry::new(summary, ProvisionOutcome::DevLinked);
                entry.home = Some(plugin.home);
                return Ok(entry);
            }
            InstallState::Installed(metadata) => Some(metadata),
            InstallState::BadMetadata(_) | InstallState::NotInstalled => None,
        };
        if current.as_ref().map(|metadata| metadata.hash()).as_deref() == Some(wanted.as_str()) {
            let mut entry = ProvisionEntry::new(summary, ProvisionOutcome::Unchanged);
            entry.home = Some(plugin.home);
            return Ok(entry);
        }
        let mut entry = ProvisionEntry::new(summary, ProvisionOutcome::Updated);
        if let Some(metadata) = current {
            entry.previous_version = Some(metadata.version.clone());
            entry.previous_release = Some(metadata.release.clone());
        }
        entry.crontab = ships_crontab || plugin.home.join("crontab").is_file();
        if dry_run {
            entry.home = Some(plugin.home);
        } else {
            entry.home = Some(self.install_checked(handle, summary, None, true)?);
        }
        self.messages.push(format!(
            "{updated_word} plugin `{name}` to {}-{} from `{}`",
            summary.metadata.version,
            summary.metadata.release,
            file.display()
        ));
        Ok(entry)
    }

    // ----- release, repackage, check -----------------------------------------------

    /// `mfenv plugin check DIR`.
    pub fn check(&self, dir: &Path) -> Result<model::SourceTree> {
        model::check_source(dir, self.names(), self.env, &self.options.configuration)
    }

    /// `mfenv plugin release DIR` into `output_dir`; returns the file written.
    pub fn release(
        &mut self,
        dir: &Path,
        output_dir: &Path,
        stamp: &BuildStamp,
    ) -> Result<PathBuf> {
        let source = self.check(dir)?;
        let request = BuildRequest {
            home: dir,
            name: &source.name,
            version: &source.general.version,
            release: &source.general.release,
            general: &source.general,
            module_lowercase: &self.context.module_lowercase,
            output_dir,
            replacements: BTreeMap::new(),
            build_host: stamp.build_host.clone(),
            source_date_epoch: stamp.source_date_epoch,
            now: stamp.now,
        };
        let mut progress = Progress::new(
            self.options.progress,
            format!("releasing `{}`", source.name),
        );
        let built = release::build(&request, &mut progress)
            .map_err(|error| error.context(format!("cannot release `{}`", dir.display())))?;
        self.messages
            .extend(built.warnings.into_iter().map(|w| format!("warning: {w}")));
        Ok(built.path)
    }

    /// `mfenv plugin repackage NAME` into `output_dir`: the installed plugin with the OP
    /// overrides baked into its `config.ini`.
    pub fn repackage(
        &mut self,
        name: &str,
        output_dir: &Path,
        stamp: &BuildStamp,
    ) -> Result<PathBuf> {
        self.refuse_inside_plugin_env("repackage")?;
        let plugin = self.find_installed(name)?;
        let metadata = match &plugin.state {
            InstallState::Installed(metadata) => (**metadata).clone(),
            InstallState::DevLink => {
                return Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("can't repackage the devlinked plugin `{name}`"),
                )
                .with_hint("use `mfenv plugin release` in its source tree"));
            }
            InstallState::BadMetadata(reason) => {
                return Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("can't repackage plugin `{name}`"),
                )
                .caused_by(reason.clone()));
            }
            InstallState::NotInstalled => {
                return Err(Error::new(
                    ErrorKind::LayerFile,
                    format!("can't repackage plugin `{name}`: it has no `{METADATA_FILE}`"),
                ));
            }
        };
        let general = self.general_of(&plugin)?;
        let config_path = plugin.home.join(CONFIG_FILE);
        let config_text = model::read_small_file(&config_path, model::MAX_CONFIG_SIZE)
            .map_err(|err| Error::io("cannot read", &config_path, &err))?;
        let plugin_document = config::parse_ini(&config_text, &config_path)?;
        let mut override_documents = Vec::new();
        for path in [self.op_override_path(name), self.system_override_path(name)] {
            if let Some(document) = config::read_ini(&path)? {
                override_documents.push(document);
            }
        }
        let (baked, changes) = overrides::bake(&config_text, &plugin_document, &override_documents);
        self.messages.extend(changes);
        let request = BuildRequest {
            home: &plugin.home,
            name: &plugin.name,
            version: &metadata.version,
            release: &metadata.release,
            general: &general,
            module_lowercase: &self.context.module_lowercase,
            output_dir,
            replacements: BTreeMap::from([(PathBuf::from(CONFIG_FILE), baked.into_bytes())]),
            build_host: stamp.build_host.clone(),
            source_date_epoch: stamp.source_date_epoch,
            now: stamp.now,
        };
        let mut progress = Progress::new(self.options.progress, format!("repackaging `{name}`"));
        let built = release::build(&request, &mut progress)
            .map_err(|error| error.context(format!("cannot repackage plugin `{name}`")))?;
        self.messages
            .extend(built.warnings.into_iter().map(|w| format!("warning: {w}")));
        Ok(built.path)
    }
}

/// SIGINT, SIGTERM and SIGHUP blocked and readable through a signalfd, until dropped.
struct StopSignals {
    previous_mask: Option<nix::sys::signal::SigSet>,
    descriptor: Option<nix::sys::signalfd::SignalFd>,
}

impl StopSignals {
    fn block() -> Self {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal};
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let mut signals = SigSet::empty();
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            signals.add(signal);
        }
        let previous_mask = signals.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok();
        let descriptor = previous_mask.and_then(|_| {
            SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
        });
        StopSignals {
            previous_mask,
            descriptor,
        }
    }

    /// The name of a signal received since [`StopSignals::block`], if any.
    fn received(&self) -> Option<String> {
        let info = self.descriptor.as_ref()?.read_signal().ok()??;
        let signal = nix::sys::signal::Signal::try_from(info.ssi_signo as i32).ok()?;
        Some(signal.as_str().to_owned())
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        self.descriptor = None;
        if let Some(mask) = &self.previous_mask {
            let _ = mask.thread_set_mask();
        }
    }
}

/// The order of two files of the same plugin in a provisioning directory: the one
/// provisioned sorts last.
fn provisioning_order(first: &ArchiveSummary, second: &ArchiveSummary) -> std::cmp::Ordering {
    natural_order(&first.metadata.version, &second.metadata.version)
        .then_with(|| natural_order(&first.metadata.release, &second.metadata.release))
        .then_with(|| first.path.cmp(&second.path))
}

/// Compares version strings: runs of digits by their value, the rest byte by byte
/// (`1.9.0` < `1.10.0`, `1.0` < `1.0.1`).
fn natural_order(first: &str, second: &str) -> std::cmp::Ordering {
    fn chunks(text: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = text.as_bytes();
        for at in 1..=bytes.len() {
            if at == bytes.len() || bytes[at].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &text[start..at]));
                start = at;
            }
        }
        out
    }
    let (first, second) = (chunks(first), chunks(second));
    for (a, b) in first.iter().zip(&second) {
        let order = match (a, b) {
            ((true, a), (true, b)) => {
                let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            }
            ((_, a), (_, b)) => a.cmp(b),
        };
        if order.is_ne() {
            return order;
        }
    }
    first.len().cmp(&second.len())
}

/// How many lines of a postinstall's output are shown.
const POSTINSTALL_SHOWN_LINES: usize = 20;
/// How much of the end of a postinstall log is read to show them.
const POSTINSTALL_TAIL_BYTES: u64 = 16 * 1024;

/// The last lines of the log at `path` (read from its last bytes only) and whether
/// earlier output was left out.
fn log_tail(path: &Path) -> (Vec<String>, bool) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return (Vec::new(), false);
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = length.saturating_sub(POSTINSTALL_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file
            .take(POSTINSTALL_TAIL_BYTES)
            .read_to_end(&mut bytes)
            .is_err()
    {
        return (Vec::new(), false);
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line read is cut.
        lines.remove(0);
    }
    let keep = lines.len().saturating_sub(POSTINSTALL_SHOWN_LINES);
    let shown = lines[keep..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect();
    (shown, start > 0 || keep > 0)
}

/// An install error with the file it came from, saying nothing was written.
fn nothing_installed(error: Error, file: &Path) -> Error {
    error
        .context(format!("cannot install `{}`", file.display()))
        .with_hint("nothing was written to the plugins base dir")
}

/// The description of a checked `.plugin` file.
pub fn describe_summary(summary: &ArchiveSummary) -> Description {
    let metadata = &summary.metadata;
    Description {
        name: summary.name.clone(),
        version: metadata.version.clone(),
        release: metadata.release.clone(),
        summary: metadata.summary.clone(),
        size: metadata.size.clone(),
        build_host: metadata.build_host.clone(),
        build_date: metadata.build_date.clone(),
        license: metadata.license.clone(),
        maintainer: metadata.packager.clone(),
        vendor: metadata.vendor.clone(),
        url: metadata.url.clone(),
        home: None,
        files: summary.files.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::natural_order;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn versions_compare_by_the_value_of_their_numbers() {
        assert_eq!(natural_order("1.10.0", "1.9.0"), Greater);
        assert_eq!(natural_order("2.0.0", "10.0.0"), Less);
        assert_eq!(natural_order("1.0", "1.0.1"), Less);
        assert_eq!(natural_order("1.01", "1.1"), Equal);
        assert_eq!(natural_order("1.0.0rc2", "1.0.0rc10"), Less);
        assert_eq!(natural_order("", "0"), Less);
        assert_eq!(natural_order("é1", "é2"), Less);
    }
}
