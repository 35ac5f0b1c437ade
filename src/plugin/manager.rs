//! The plugins base dir and what happens in it (reference B3, B6–B11, DESIGN §5):
//! discovery, list/info/hash, install, uninstall, develop, provision, release and
//! repackage.
//!
//! The manager owns every write below the plugins base dir and to the OP override files
//! `RUNTIME/config/plugins/NAME.ini`. Its invariants:
//!
//! - install, uninstall, develop and provision run under the plugin-management lock
//!   ([`crate::plugin::lock`]), and start by removing the leftovers of killed runs;
//! - nothing half-done is ever visible: an archive is checked in full before anything
//!   is written, then extracted below `<base>/.mfenv-tmp-*/metwork_plugin` (one level
//!   down, so layer discovery, which reads the base dir's children, never sees a partial
//!   tree; discovery and `list` skip hidden names), then moved into place by one
//!   `rename` (a replacement swaps old and new atomically with `RENAME_EXCHANGE`);
//!   uninstall first renames the plugin away, then deletes it;
//! - a failing postinstall rolls back to the state before the install;
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::context::ModuleContext;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::archive::{self, ArchiveSummary};
use crate::plugin::config::{self, General};
use crate::plugin::lock::{self, ManagementLock};
use crate::plugin::model::{
    self, CONFIG_FILE, DEV_LINK, FILES_FILE, LABEL_FILE, METADATA_FILE, Metadata, ModuleNames,
    POSTINSTALL_FILE, UNKNOWN, flatten,
};
use crate::plugin::overrides;
use crate::plugin::progress::Progress;
use crate::plugin::release::{self, BuildRequest};

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

/// `rename(from, to)` failing when `to` exists.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
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

/// Swaps `first` and `second` (both exist) atomically when the system can.
pub(crate) fn exchange(first: &Path, second: &Path) -> io::Result<()> {
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
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
    }
    let aside = first.with_file_name(format!(
        "{}.swap",
        first.file_name().unwrap_or_default().to_string_lossy()
    ));
    fs::rename(second, &aside)?;
    if let Err(err) = fs::rename(first, second) {
        let _ = fs::rename(&aside, second);
        return Err(err);
    }
    fs::rename(&aside, first)
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
            let metadata_path = home.join(METADATA_FILE);
            match fs::read_to_string(&metadata_path) {
                Ok(text) => match Metadata::parse(&text) {
                    Ok(metadata) => InstallState::Installed(Box::new(metadata)),
                    Err(reason) => InstallState::BadMetadata(format!(
                        "can't decode `{}`: {reason}",
                        metadata_path.display()
                    )),
                },
                Err(err) if err.kind() == io::ErrorKind::NotFound => InstallState::NotInstalled,
                Err(err) => InstallState::BadMetadata(format!(
                    "can't read `{}`: {}",
                    metadata_path.display(),
                    crate::error::io_reason(&err)
                )),
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
                let files_path = plugin.home.join(FILES_FILE);
                match fs::read_to_string(&files_path)
                    .map_err(|err| crate::error::io_reason(&err))
                    .and_then(|text| {
                        serde_json::from_str::<Vec<String>>(text.trim())
                            .map_err(|err| err.to_string())
                    }) {
                    Ok(files) => description.files = files,
                    Err(reason) => self.messages.push(format!(
                        "warning: can't read `{}`: {reason}",
                        files_path.display()
                    )),
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
        self.remove_leftovers();
        Ok(lock)
    }

    /// Removes the staging directories of killed runs (the lock is held).
    fn remove_leftovers(&mut self) {
        let Ok(reader) = fs::read_dir(self.base_dir()) else {
            return;
        };
        for entry in reader.flatten() {
            let is_staging = entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(STAGING_PREFIX));
            if is_staging {
                let path = entry.path();
                if let Err(err) = remove_tree(&path) {
                    self.messages.push(format!(
                        "warning: cannot remove the leftover `{}`: {}",
                        path.display(),
                        crate::error::io_reason(&err)
                    ));
                }
            }
        }
    }

    /// A new staging directory in the base dir.
    fn new_staging_dir(&self) -> Result<PathBuf> {
        let base = self.base_dir();
        fs::create_dir_all(base).map_err(|err| Error::io("cannot create", base, &err))?;
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
            match fs::create_dir(&path) {
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
        if let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
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
                    // Replace rather than write through: the label may be a hard link.
                    fs::remove_file(&label_path)
                        .and_then(|()| {
                            fs::write(
                                &label_path,
                                format!("{}\n", self.context.plugin_label(&name)),
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
        // Into place: one rename, or one atomic swap with the plugin it replaces.
        let moved = if replaces_target {
            exchange(&root, &target)
        } else {
            rename_no_replace(&root, &target)
        };
        if let Err(err) = moved {
            let _ = remove_tree(&staging);
            return Err(
                failed(Error::io("cannot move the plugin to", &target, &err))
                    .with_hint("nothing was installed"),
            );
        }
        // A plugin of that name living in another directory goes away too.
        let mut moved_aside: Option<(PathBuf, PathBuf)> = None;
        if let Some(plugin) = existing.as_ref().filter(|_| !replaces_target) {
            let aside = staging.join("previous");
            if let Err(err) = fs::rename(&plugin.home, &aside) {
                self.messages.push(format!(
                    "warning: cannot remove the previous copy `{}`: {}",
                    plugin.home.display(),
                    crate::error::io_reason(&err)
                ));
            } else {
                moved_aside = Some((aside, plugin.home.clone()));
            }
        }
        if let Err(error) = self.run_postinstall(&name, &target) {
            if replaces_target {
                let _ = exchange(&root, &target);
            } else {
                let _ = fs::rename(&target, staging.join("failed"));
            }
            if let Some((aside, home)) = moved_aside {
                let _ = fs::rename(aside, home);
            }
            let _ = remove_tree(&staging);
            return Err(failed(error).with_hint(if replaces_target {
                "the previous installation was put back"
            } else {
                "the plugin was removed again"
            }));
        }
        if let Err(err) = remove_tree(&staging) {
            self.messages.push(format!(
                "warning: cannot remove `{}`: {} (the next plugin operation will)",
                staging.display(),
                crate::error::io_reason(&err)
            ));
        }
        self.write_override_template(&name, &target);
        Ok(target)
    }

    /// Runs `<home>/postinstall` when it is an executable file, in the plugin env with
    /// its layer loaded (through `mfenv plugin wrapper`), from the plugin home.
    fn run_postinstall(&mut self, name: &str, home: &Path) -> Result<()> {
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
        // The plugin env (configuration variables, TMPDIR, PYTHONPATH, identity) and the
        // plugin layer, as `mfenv plugin wrapper` gives every plugin command.
        let output = Command::new(binary)
            .env_clear()
            .envs(self.env.vars())
            .env("MFMODULE_PLUGINS_BASE_DIR", self.base_dir())
            .current_dir(home)
            .args(["plugin", "wrapper", "--cwd"])
            .arg(home)
            .arg("--")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| Error::io("cannot run", &script, &err))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            for line in stdout.lines().chain(stderr.lines()) {
                self.messages.push(format!("postinstall: {line}"));
            }
            return Ok(());
        }
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        let mut error = Error::new(
            ErrorKind::LayerFile,
            format!("the postinstall of plugin `{name}` failed ({status})"),
        );
        let lines: Vec<&str> = stderr.lines().collect();
        for line in &lines[lines.len().saturating_sub(20)..] {
            error = error.caused_by(format!("postinstall: {line}"));
        }
        Err(error)
    }

    /// Writes the OP override template of an installed (not dev-linked) plugin.
    fn write_override_template(&mut self, name: &str, home: &Path) {
        let config_path = home.join(CONFIG_FILE);
        let Ok(config_text) = fs::read_to_string(&config_path) else {
            return;
        };
        let text = overrides::template(
            &config_text,
            &config_path,
            name,
            &self.system_override_path(name),
        );
        let mut target = self.op_override_path(name);
        if let Ok(existing) = fs::read_to_string(&target)
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
        let written = target
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::write(&target, text));
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
        } else if fs::read_to_string(&override_path)
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
        let base = self.base_dir();
        fs::create_dir_all(base).map_err(|err| Error::io("cannot create", base, &err))?;
        std::os::unix::fs::symlink(dir, &target)
            .map_err(|err| Error::io("cannot create the dev link", &target, &err))?;
        if let Err(error) = self.run_postinstall(&name, &target) {
            let _ = fs::remove_file(&target);
            return Err(error
                .context(format!("cannot dev-link plugin `{name}`"))
                .with_hint("the dev link was removed again"));
        }
        self.signal_change();
        Ok(target)
    }

    // ----- provision ---------------------------------------------------------------

    /// `mfenv plugin provision [--dir D]`: installs or updates every `*.plugin` of `dir`.
    pub fn provision(&mut self, dir: &Path) -> Result<()> {
        self.refuse_inside_plugin_env("provision")?;
        let reader = match fs::read_dir(dir) {
            Ok(reader) => reader,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.messages.push(format!(
                    "no `{}` directory: no plugin to provision",
                    dir.display()
                ));
                return Ok(());
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
                    && path.is_file()
            })
            .collect();
        files.sort();
        let _lock = self.acquire_lock()?;
        let mut failures = Vec::new();
        let mut changed = false;
        for file in &files {
            match self.provision_one(file) {
                Ok(did_change) => changed |= did_change,
                Err(error) => {
                    self.messages
                        .push(error.render(false).trim_end().to_owned());
                    failures.push(format!("`{}`: {}", file.display(), flatten(&error)));
                }
            }
        }
        if changed {
            self.signal_change();
        }
        if failures.is_empty() {
            return Ok(());
        }
        let mut error = Error::new(
            ErrorKind::LayerFile,
            format!(
                "provisioning from `{}` failed for {} of {} plugin files",
                dir.display(),
                failures.len(),
                files.len()
            ),
        );
        for failure in failures {
            error = error.caused_by(failure);
        }
        Err(error)
    }

    /// Provisions one file (the lock is held); returns whether something changed.
    fn provision_one(&mut self, file: &Path) -> Result<bool> {
        let (handle, summary) = archive::inspect(file, &self.context.module_lowercase)
            .map_err(|error| nothing_installed(error, file))?;
        let name = summary.name.clone();
        let wanted = summary.metadata.hash();
        let installed = self.find(&name)?;
        let Some(plugin) = installed else {
            self.install_checked(handle, &summary, None, false)?;
            self.messages.push(format!(
                "installed plugin `{name}` {}-{} from `{}`",
                summary.metadata.version,
                summary.metadata.release,
                file.display()
            ));
            return Ok(true);
        };
        let current = match &plugin.state {
            InstallState::DevLink => {
                self.messages.push(format!(
                    "plugin `{name}` is dev-linked: `{}` not installed",
                    file.display()
                ));
                return Ok(false);
            }
            InstallState::Installed(metadata) => Some(metadata.hash()),
            InstallState::BadMetadata(_) | InstallState::NotInstalled => None,
        };
        if current.as_deref() == Some(wanted.as_str()) {
            return Ok(false);
        }
        self.install_checked(handle, &summary, None, true)?;
        self.messages.push(format!(
            "updated plugin `{name}` to {}-{} from `{}`",
            summary.metadata.version,
            summary.metadata.release,
            file.display()
        ));
        Ok(true)
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
        let config_text = fs::read_to_string(&config_path)
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
