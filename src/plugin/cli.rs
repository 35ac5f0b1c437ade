//! The `mfenv plugin …` commands: their clap types and the plugin CLI edge.
//!
//! This is the only plugin file that looks outside the environment snapshot: it reads
//! the current directory (the default plugin directory, where release and repackage
//! write), the path of the running binary (postinstall runs through `mfenv exec`), the
//! clock and host name (build stamps), whether stderr is a terminal (progress lines),
//! `/etc/metwork.config` (the default `MFCONFIG`; `MFENV_METWORK_CONFIG` names another
//! file, for tests) and the user's crontab through the `crontab` command (`mfenv cron`).
//! Everything else is done by [`crate::plugin::manager`], [`crate::plugin::environment`]
//! and [`crate::plugin::cron`] on data passed down from here. `plugin env` and `plugin
//! wrapper` are declared here but run by `crate::cli`, which owns the layer engine and
//! the `exec` path.
//!
//! Results go to stdout (built in memory, written once by `crate::cli`), messages to
//! stderr. Values from plugin files (metadata, configuration, names of files) are shown
//! through [`printable`] in every human and `--raw` output, so they can neither add a
//! line nor reach the terminal as escape sequences; `--json` output stays exact. When a command fails, the messages gathered so far are written to stderr
//! before the error, so that a partly failed provisioning still tells what it did.
//! `plugin make`, which runs pip and npm for minutes, writes its progress to stderr as
//! it happens ([`crate::plugin::make`] does the work, in the environment computed here).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;

use crate::context::ModuleContext;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::invocation::Invocation;
use crate::plugin::config::LayeredConfig;
use crate::plugin::cron;
use crate::plugin::cron_context;
use crate::plugin::environment::{
    EnvironmentInputs, PluginIdentity, installed_home, layered_config, plugin_environment,
};
use crate::plugin::lock;
use crate::plugin::manager::{
    BuildStamp, Description, Manager, ManagerOptions, ProvisionEntry, absolute,
};
use crate::plugin::model::to_json_indented;
use crate::plugin::table::{Table, printable, wrap};

/// What a plugin command produces.
#[derive(Debug, Default)]
pub struct PluginOutput {
    pub stdout: String,
    pub stderr: Vec<String>,
    /// The exit status (0 unless `plugin provision --detailed-exitcode` or a failed
    /// provisioning with `--json`, which still prints its report).
    pub status: u8,
}

/// Where the default `MFCONFIG` is read from.
pub const METWORK_CONFIG: &str = "/etc/metwork.config";

const INSTALL_EXAMPLES: &str = "\
Examples:
  mfenv plugin install foo-1.0.0-1.metwork.mfdata.plugin
  mfenv plugin install --force foo-1.0.1-1.metwork.mfdata.plugin   replace the installed foo
  mfenv plugin install --new-name foo2 foo-1.0.0-1.metwork.mfdata.plugin

The whole file is checked before anything is written; the plugin appears in one rename,
so an interrupted install leaves nothing behind. A failing `postinstall` rolls back.";

const PROVISION_EXAMPLES: &str = "\
Examples:
  mfenv plugin provision                      install or update from the default directory
  mfenv plugin provision --dry-run --json     what would be done, as JSON
  mfenv plugin provision --detailed-exitcode  for configuration management

Exit status: 0 success (changed or not), 1 failure (a file could not be provisioned; the
others were), 2 usage error. With --detailed-exitcode: 0 nothing to do, 3 something was
(with --dry-run: would be) installed or updated, 1 failure, including a crontab step that
failed (otherwise a warning). --json prints its report on stdout also on failure.";

const HOTSWAP_EXAMPLES: &str = "\
Examples:
  mfenv plugin hotswap foo-2.0.0-1.metwork.mfserv.plugin

The new version is installed beside the old one and its daemons started on the sockets
the supervisor holds (`socket =` in `[extra_daemon_*]`); once they are up, the new
version is installed as `install --force` does and the old daemons are stopped
gracefully. If the new daemons fail to start, the old version keeps running and nothing
of the new one is left. Without a running supervisor: `install --force`. Not for dev
links. See docs/daemons.md.";

const RELEASE_EXAMPLES: &str = "\
Examples:
  mfenv plugin release                  package the plugin in the current directory
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) mfenv plugin release ~/src/foo

Files matched by `.releaseignore` (gitignore syntax) are left out. With
SOURCE_DATE_EPOCH set, two releases of the same tree are byte-identical.";

const MAKE_EXAMPLES: &str = "\
Examples:
  mfenv plugin make                     build what the plugin in the current directory needs
  mfenv plugin make -v ~/src/foo        the same, showing pip's and npm's output

python3 plugins (python3_virtualenv_sources/requirements-to-freeze.txt):
  requirements-to-freeze.txt is frozen into requirements3.txt (exact versions) when it
  is newer; the virtualenv local/ is rebuilt from requirements3.txt when that is newer
  than local/, honouring python3_virtualenv_sources/allow_binary_packages (absent: build
  everything from source but the build tools; present without names: wheels allowed;
  names: those as wheels too).
node plugins (package.json): `npm ci` (or `npm install` without an up-to-date
  package-lock.json) into node_modules when package.json or the lock file is newer.

Tools run in the plugin environment. On failure the previous local/, requirements3.txt
and node_modules are kept. After a rebuild config.ini is touched (restarting daemons).";

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List installed and dev-linked plugins
    List {
        /// One `name~~~version~~~release~~~home` line per plugin
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        /// A JSON array of {name, release, version, home}
        #[arg(long)]
        json: bool,
    },
    /// Show the metadata and files of an installed plugin or a `.plugin` file
    Info {
        /// A plugin name, or a `.plugin` file (an argument with `/` or `.`)
        target: String,
        /// Print only the plugin home
        #[arg(long, conflicts_with = "json")]
        just_home: bool,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Print the hash provisioning compares (installed plugin or `.plugin` file)
    Hash {
        /// A plugin name, or a `.plugin` file
        target: String,
    },
    /// Validate a plugin source tree (default: the current directory)
    Check {
        /// The plugin directory
        dir: Option<PathBuf>,
    },
    /// Install a `.plugin` file
    #[command(after_help = INSTALL_EXAMPLES)]
    Install {
        /// The `.plugin` file
        file: PathBuf,
        /// Install under another name (rewrites the label)
        #[arg(long, value_name = "NAME")]
        new_name: Option<String>,
        /// Replace the plugin if it is already installed
        #[arg(short, long)]
        force: bool,
    },
    /// Replace an installed plugin by another version while its daemons keep serving
    #[command(after_help = HOTSWAP_EXAMPLES)]
    Hotswap {
        /// The `.plugin` file of the new version
        file: PathBuf,
    },
    /// Uninstall a plugin
    Uninstall {
        /// The plugin name (or its home: the last path component is used)
        name: String,
        /// Also delete the OP override `RUNTIME/config/plugins/NAME.ini`
        #[arg(long)]
        clean: bool,
    },
    /// Dev-link a plugin source tree into the plugins base dir
    Develop {
        /// The plugin directory (default: the current directory)
        dir: Option<PathBuf>,
    },
    /// Build a plugin's dependencies: the python3 virtualenv in local/, node_modules
    #[command(after_help = MAKE_EXAMPLES)]
    Make {
        /// The plugin directory (default: the current directory)
        dir: Option<PathBuf>,
        /// Show the output of python, pip and npm (on stderr)
        #[arg(short, long)]
        verbose: bool,
    },
    /// Build NAME-VERSION-RELEASE.metwork.<module>.plugin in the current directory
    #[command(after_help = RELEASE_EXAMPLES)]
    Release {
        /// The plugin directory (default: the current directory)
        dir: Option<PathBuf>,
    },
    /// Build a `.plugin` of an installed plugin with its OP overrides baked in
    Repackage {
        /// The installed plugin
        name: String,
    },
    /// Install or update every `*.plugin` of a directory
    #[command(after_help = PROVISION_EXAMPLES)]
    Provision {
        /// Default: `<sysconf>/<module>/plugins` (`/etc/metwork.config.d/<module>/plugins`)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Say what would be done; change nothing (no install, no crontab edit)
        #[arg(long)]
        dry_run: bool,
        /// Print a JSON report on stdout: each file's outcome, the crontab step
        #[arg(long)]
        json: bool,
        /// Exit with 3 when something changed (or would change), 0 when nothing had to
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Show the merged configuration: each key's value, file and variant
    #[command(after_help = CONFIG_EXAMPLES)]
    Config {
        /// A plugin name, or a plugin home (an argument with `/`)
        target: String,
        /// A JSON array of {section, key, value, file, line, variant}
        #[arg(long)]
        json: bool,
    },
    /// Print shell code that loads a plugin's layer and environment (`plugin_env`)
    #[command(after_help = ENV_EXAMPLES)]
    Env {
        /// The plugin (default: the plugin directory the current directory is)
        #[arg(conflicts_with = "exit")]
        name: Option<String>,
        /// Shell to write code for
        #[arg(long, value_enum, default_value = "bash")]
        shell: crate::cli::ShellArg,
        /// Unload the current plugin environment instead
        #[arg(long)]
        exit: bool,
    },
    /// Create a plugin directory from a template (the old `bootstrap_plugin.py`)
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
    /// Run a command in a plugin's environment (the old `plugin_wrapper`)
    #[command(after_help = WRAPPER_EXAMPLES)]
    Wrapper {
        /// A plugin name, or a plugin home (an argument with `/`, need not be installed)
        target: String,
        /// Run the command in the plugin home
        #[arg(short, long)]
        cwd: bool,
        /// Unload every loaded layer first
        #[arg(short, long)]
        empty: bool,
        /// The command and its arguments
        #[arg(required = true, last = true, value_name = "COMMAND", value_parser = clap::value_parser!(std::ffi::OsString))]
        command: Vec<std::ffi::OsString>,
    },
}

/// `mfenv plugin bootstrap …`.
#[derive(Debug, Subcommand)]
pub enum BootstrapCommand {
    /// List the plugin templates
    List,
    /// Create ./NAME from a template
    #[command(after_help = BOOTSTRAP_EXAMPLES, disable_version_flag = true)]
    Create(Box<CreateArgs>),
}

/// The options of `mfenv plugin bootstrap create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The plugin name (also the directory created)
    pub name: String,
    /// The template (see `mfenv plugin bootstrap list`)
    #[arg(short, long, default_value = crate::plugin::bootstrap::DEFAULT_TEMPLATE)]
    pub template: String,
    /// Never prompt: missing values take their defaults
    #[arg(long)]
    pub no_input: bool,
    /// The plugin version [default: 0.0.1]
    #[arg(long)]
    pub version: Option<String>,
    /// The release of the version [default: 1]
    #[arg(long)]
    pub release: Option<String>,
    /// A one-line summary
    #[arg(long)]
    pub summary: Option<String>,
    /// The license (Proprietary, BSD, MIT, GPL, ...) [default: Proprietary]
    #[arg(long)]
    pub license: Option<String>,
    /// The plugin home page
    #[arg(long)]
    pub url: Option<String>,
    /// Who maintains the plugin (`Name <email>`)
    #[arg(long)]
    pub maintainer: Option<String>,
    /// Who ships the plugin
    #[arg(long)]
    pub vendor: Option<String>,
}

const BOOTSTRAP_EXAMPLES: &str = "\
Examples:
  mfenv plugin bootstrap create foo                     prompts on a terminal
  mfenv plugin bootstrap create --template python3 --no-input --summary 'does foo' foo

Values not given as options are asked for on a terminal (Enter keeps the default shown),
and take their defaults with --no-input or when stdin is not a terminal. The directory
appears complete in one rename, and passes `mfenv plugin check` as created.";

/// `mfenv cron …`.
#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Put the crontab of each installed plugin (or of NAME) into the user's crontab
    Install {
        /// Only this plugin
        name: Option<String>,
    },
    /// Remove the crontab blocks of every plugin (or of NAME) from the user's crontab
    Uninstall {
        /// Only this plugin
        name: Option<String>,
    },
}

const CONFIG_EXAMPLES: &str = "\
Examples:
  mfenv plugin config foo           [section] key = value  (file:line, variant)
  mfenv plugin config --json ./foo  a plugin directory, as JSON

Files in increasing priority: the plugin's config.ini, RUNTIME/config/plugins/NAME.ini,
SYSCONF/<module>/plugins/NAME.ini. Override files may not set keys starting with `_`.";

const ENV_EXAMPLES: &str = "\
Examples (through the shell hook):
  plugin_env foo              load plugin_foo@<module> and foo's environment
  plugin_env                  the same for the plugin directory you are in
  plugin_env --exit           give back the previous environment
  layer_unload plugin_foo@mfdata   the same";

const WRAPPER_EXAMPLES: &str = "\
Examples:
  mfenv plugin wrapper foo -- python3 main.py
  mfenv plugin wrapper --cwd ~/src/foo -- make test     a plugin that is not installed

The command replaces mfenv, as with `mfenv exec`: its exit status is its own.";

/// The plugin a command works on: its name and home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedPlugin {
    pub name: String,
    pub home: PathBuf,
}

/// Finds the plugin `target` names: a home when it contains `/` (installed or not),
/// else an installed plugin's name.
pub fn locate(inv: &Invocation, target: &str) -> Result<Option<LocatedPlugin>> {
    let context = inv.module();
    if target.contains('/') {
        let home = absolute(Path::new(target), inv.cwd()?);
        let (_, name) = crate::plugin::model::read_label(&home, &context.module_lowercase)?;
        return Ok(Some(LocatedPlugin { name, home }));
    }
    let mut manager = Manager::new(context, inv.env(), manager_options(inv)?);
    Ok(manager.find(target)?.map(|found| LocatedPlugin {
        name: found.name,
        home: found.home,
    }))
}

/// The names of the installed plugins (completion of `plugin_env`); none on error.
pub fn installed_names(inv: &Invocation) -> Vec<String> {
    let Ok(options) = manager_options(inv) else {
        return Vec::new();
    };
    let mut manager = Manager::new(inv.module(), inv.env(), options);
    manager
        .scan()
        .map(|plugins| {
            plugins
                .into_iter()
                .filter(|plugin| plugin.is_installed())
                .map(|plugin| plugin.name)
                .collect()
        })
        .unwrap_or_default()
}

/// The plugin directory the current directory is (a `.layerapi2_label` starting with
/// `plugin_`), if any.
pub fn current_plugin_dir(inv: &Invocation) -> Result<Option<LocatedPlugin>> {
    let cwd = inv.cwd()?.to_owned();
    let Ok(text) = crate::plugin::model::read_small_file(
        &cwd.join(crate::plugin::model::LABEL_FILE),
        crate::plugin::model::MAX_LABEL_SIZE,
    ) else {
        return Ok(None);
    };
    if !text.trim_start().starts_with("plugin_") {
        return Ok(None);
    }
    let (_, name) = crate::plugin::model::read_label(&cwd, &inv.module().module_lowercase)?;
    Ok(Some(LocatedPlugin { name, home: cwd }))
}

/// The error of `plugin_env NAME` for a plugin that is not installed (reference C8).
pub fn not_installed_error(context: &ModuleContext, name: &str) -> Error {
    Error::new(
        ErrorKind::LayerNotFound,
        format!("layer `{}` is not available", context.plugin_label(name)),
    )
    .caused_by(format!("maybe the plugin `{name}` is not installed?"))
    .with_hint(
        "install it first, or use `plugin_env` without arguments inside the plugin directory",
    )
}

/// The inputs of the plugin environment for this invocation.
pub fn environment_inputs<'a>(
    env: &'a Env,
    context: &'a ModuleContext,
    configuration: &'a str,
    find_home: &'a dyn Fn(&str) -> Option<String>,
) -> EnvironmentInputs<'a> {
    EnvironmentInputs {
        context,
        env,
        configuration,
        find_home,
        resolve_host: &crate::plugin::config::system_resolve_host,
    }
}

/// The configuration name of this invocation: `MFCONFIG`, else the first line of
/// `MFENV_METWORK_CONFIG` (tests) or `/etc/metwork.config`, else `generic`.
pub fn configuration_of(env: &Env) -> String {
    let file = env
        .get("MFENV_METWORK_CONFIG")
        .filter(|v| !v.is_empty())
        .unwrap_or(METWORK_CONFIG);
    configuration_name(env, Path::new(file))
}

pub(crate) fn manager_options(inv: &Invocation) -> Result<ManagerOptions> {
    let env = inv.env();
    Ok(ManagerOptions {
        configuration: configuration_of(env),
        lock_timeout: lock::timeout_from(env.get("MFENV_LOCK_TIMEOUT"))?,
        progress: inv.stderr_is_terminal(),
        mfenv_binary: inv.binary().map(Path::to_path_buf),
        postinstall_timeout: lock::postinstall_timeout_from(env.get("MFENV_POSTINSTALL_TIMEOUT"))?,
        rename_exchange: env
            .get("MFENV_NO_RENAME_EXCHANGE")
            .is_none_or(|v| v.is_empty() || v == "0"),
    })
}

/// `mfenv plugin config`: one line per key, or JSON.
fn render_config(layered: &LayeredConfig, json: bool) -> String {
    let mut rows = Vec::new();
    for (section, keys) in &layered.values {
        for (key, resolved) in keys {
            rows.push(serde_json::json!({
                "section": section,
                "key": key,
                "value": resolved.value,
                "file": resolved.file,
                "line": resolved.line,
                "variant": resolved.variant,
            }));
        }
    }
    if json {
        return to_json_indented(&rows) + "\n";
    }
    let mut out = String::new();
    let mut current_section = None;
    for (section, keys) in &layered.values {
        if current_section != Some(section) {
            if current_section.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("[{}]\n", printable(section)));
            current_section = Some(section);
        }
        for (key, resolved) in keys {
            let variant = match &resolved.variant {
                Some(variant) => format!(", variant `{variant}`"),
                None => String::new(),
            };
            // A multi-line value continues on indented lines; any other control
            // character is escaped.
            let value: Vec<String> = resolved
                .value
                .split('\n')
                .map(|line| printable(line).into_owned())
                .collect();
            out.push_str(&format!(
                "{} = {}    # {}:{}{}\n",
                printable(key),
                value.join("\n    "),
                printable_path(&resolved.file),
                resolved.line,
                printable(&variant)
            ));
        }
    }
    out
}

/// The configuration name (`MFCONFIG`, lower case): the variable, else the first
/// non-comment line of `metwork_config` (spaces removed), else `generic`.
pub fn configuration_name(env: &Env, metwork_config: &Path) -> String {
    if let Some(value) = env.get("MFCONFIG").filter(|v| !v.trim().is_empty()) {
        return value.trim().to_lowercase();
    }
    std::fs::read_to_string(metwork_config)
        .ok()
        .and_then(|text| {
            text.lines()
                .map(|line| line.replace(' ', ""))
                .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
        })
        .map(|line| line.trim().to_lowercase())
        .unwrap_or_else(|| "generic".to_owned())
}

/// `SOURCE_DATE_EPOCH`, when set.
fn source_date_epoch(env: &Env) -> Result<Option<u64>> {
    match env
        .get("SOURCE_DATE_EPOCH")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
            Error::new(
                ErrorKind::Environment,
                format!("bad `SOURCE_DATE_EPOCH` value `{text}`"),
            )
            .caused_by("expected a number of seconds since 1970-01-01")
        }),
    }
}

fn build_stamp(env: &Env) -> Result<BuildStamp> {
    let build_host = env
        .get("MFHOSTNAME_FULL")
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|name| name.into_string().ok())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(BuildStamp {
        build_host,
        source_date_epoch: source_date_epoch(env)?,
        now,
    })
}

/// True when `target` names a `.plugin` file rather than a plugin (reference B9).
fn is_file_argument(target: &str) -> bool {
    target.contains('/') || target.contains('.') || Path::new(target).is_file()
}

/// Runs a plugin command against the environment snapshot.
pub fn run(command: PluginCommand, inv: &Invocation) -> Result<PluginOutput> {
    let env = inv.env();
    let options = manager_options(inv)?;
    let mut manager = Manager::new(inv.module(), env, options);
    let changes_plugins = matches!(
        command,
        PluginCommand::Install { .. }
            | PluginCommand::Hotswap { .. }
            | PluginCommand::Uninstall { .. }
            | PluginCommand::Develop { .. }
            | PluginCommand::Provision { .. }
    );
    let dry_run = matches!(command, PluginCommand::Provision { dry_run: true, .. });
    let result = match command {
        PluginCommand::Provision {
            dir,
            dry_run,
            json,
            detailed_exitcode,
        } => provision(&mut manager, inv, dir, dry_run, json, detailed_exitcode),
        command => execute(command, &mut manager, inv).map(|stdout| (stdout, 0)),
    };
    match result {
        Ok((stdout, status)) => {
            if changes_plugins && !dry_run {
                // A running daemon supervisor applies the change now rather than at
                // its next periodic reread.
                crate::daemon::cli::notify_reload(inv);
            }
            Ok(PluginOutput {
                stdout,
                stderr: std::mem::take(&mut manager.messages),
                status,
            })
        }
        Err(error) => {
            // crate::cli writes only the error on failure: the messages go first.
            if !manager.messages.is_empty() {
                let mut text = manager.messages.join("\n");
                text.push('\n');
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
            Err(error)
        }
    }
}

/// The exit status of `plugin provision --detailed-exitcode` when something was (or
/// would be) installed or updated and nothing failed.
pub const PROVISION_CHANGED_STATUS: u8 = 3;

/// The `--json` report of `plugin provision`.
#[derive(serde::Serialize)]
struct ProvisionJson<'a> {
    dir: &'a Path,
    dry_run: bool,
    changed: bool,
    failed: bool,
    plugins: &'a [ProvisionEntry],
    /// `None`: the crontab step did not run (nothing installed or updated).
    crontab: Option<CrontabReport>,
}

/// The crontab step of a provisioning, for `--json`.
#[derive(serde::Serialize)]
struct CrontabReport {
    /// `updated`, `unchanged`, `failed`, `no-crontab-command`, or in a dry run
    /// `would-update`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Plugins whose crontab could not be rendered (their old block is kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<String>,
}

/// `mfenv plugin provision`: the manager's run, the crontab step for the plugins that
/// went in (also when others failed), the report and the exit status.
fn provision(
    manager: &mut Manager<'_>,
    inv: &Invocation,
    dir: Option<PathBuf>,
    dry_run: bool,
    json: bool,
    detailed_exitcode: bool,
) -> Result<(String, u8)> {
    let cwd = inv.cwd()?.to_owned();
    let dir = match dir {
        Some(dir) => absolute(&dir, &cwd),
        None => manager.provisioning_dir(),
    };
    let report = manager.provision(&dir, dry_run)?;
    let changed: Vec<&ProvisionEntry> = report
        .entries
        .iter()
        .filter(|entry| entry.changed())
        .collect();
    let crontab = if changed.is_empty() {
        None
    } else if dry_run {
        changed
            .iter()
            .any(|entry| entry.crontab)
            .then_some(CrontabReport {
                status: "would-update",
                error: None,
                skipped: Vec::new(),
            })
    } else {
        let names: Vec<String> = changed
            .iter()
            .filter_map(|entry| {
                entry
                    .home
                    .as_ref()?
                    .file_name()?
                    .to_str()
                    .map(str::to_owned)
            })
            .collect();
        let quiet = !changed.iter().any(|entry| {
            entry
                .home
                .as_ref()
                .is_some_and(|home| home.join("crontab").is_file())
        });
        Some(follow_with_cron(
            manager,
            CronAction::Install(Some(names)),
            inv,
            quiet,
        ))
    };
    let crontab_failed = crontab.as_ref().is_some_and(|step| step.status == "failed");
    let mut failure = report.failure();
    if failure.is_none() && detailed_exitcode && crontab_failed {
        let step = crontab.as_ref().expect("a failed crontab step");
        failure = Some(
            Error::new(
                ErrorKind::Io,
                "the plugins are provisioned but the crontab was not updated",
            )
            .caused_by(step.error.clone().unwrap_or_default())
            .with_hint("fix the errors above and run `mfenv cron install`"),
        );
    }
    let status = match &failure {
        Some(_) => 1,
        None if detailed_exitcode && report.changed() => PROVISION_CHANGED_STATUS,
        None => 0,
    };
    if !json {
        return match failure {
            Some(error) => Err(error),
            None => Ok((String::new(), status)),
        };
    }
    let text = to_json_indented(&ProvisionJson {
        dir: &report.dir,
        dry_run,
        changed: report.changed(),
        failed: failure.is_some() || crontab_failed,
        plugins: &report.entries,
        crontab,
    }) + "\n";
    if let Some(error) = failure {
        // The report is the result: it goes to stdout, the error to stderr.
        manager
            .messages
            .push(error.render(false).trim_end().to_owned());
    }
    Ok((text, status))
}

fn execute(command: PluginCommand, manager: &mut Manager<'_>, inv: &Invocation) -> Result<String> {
    let env = inv.env();
    match command {
        PluginCommand::List { raw, json } => {
            let rows = manager.list()?;
            if json {
                return Ok(to_json_indented(&rows) + "\n");
            }
            if raw {
                return Ok(rows
                    .iter()
                    .map(|row| {
                        format!(
                            "{}~~~{}~~~{}~~~{}\n",
                            printable(&row.name),
                            printable(&row.version),
                            printable(&row.release),
                            printable_path(&row.home)
                        )
                    })
                    .collect());
            }
            let mut table_rows = vec![vec![
                "Name".to_owned(),
                "Version".to_owned(),
                "Release".to_owned(),
                "Home".to_owned(),
            ]];
            table_rows.extend(rows.iter().map(|row| {
                vec![
                    match row.note {
                        Some(note) => format!("{} ({note})", printable(&row.name)),
                        None => printable(&row.name).into_owned(),
                    },
                    printable(&row.version).into_owned(),
                    printable(&row.release).into_owned(),
                    printable_path(&row.home),
                ]
            }));
            Ok(Table {
                title: Some(format!("Installed plugins ({})", rows.len())),
                rows: table_rows,
                header: true,
            }
            .render())
        }
        PluginCommand::Info {
            target,
            just_home,
            json,
        } => {
            let description = describe(manager, &target)?;
            if just_home {
                return match &description.home {
                    Some(home) => Ok(format!("{}\n", printable_path(home))),
                    None => Err(Error::new(
                        ErrorKind::Usage,
                        format!("`{target}` is a `.plugin` file: it has no home"),
                    )),
                };
            }
            if json {
                return Ok(to_json_indented(&description) + "\n");
            }
            Ok(render_info(&description))
        }
        PluginCommand::Bootstrap(command) => bootstrap(command, manager, inv),
        PluginCommand::Hash { target } => Ok(describe(manager, &target)?.hash() + "\n"),
        PluginCommand::Check { dir } => {
            let cwd = inv.cwd()?.to_owned();
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            let source = manager.check(&dir)?;
            Ok(format!(
                "`{}`: plugin `{}` {}-{} is valid\n",
                printable_path(&dir),
                source.name,
                printable(&source.general.version),
                printable(&source.general.release)
            ))
        }
        PluginCommand::Install {
            file,
            new_name,
            force,
        } => {
            let home = manager.install(&file, new_name.as_deref(), force)?;
            manager
                .messages
                .push(format!("installed plugin at `{}`", home.display()));
            if let Some(name) = home.file_name().and_then(|name| name.to_str()) {
                // Also without a crontab file: a replaced version may have had one.
                let action = CronAction::Install(Some(vec![name.to_owned()]));
                let quiet = !home.join("crontab").is_file();
                let _ = follow_with_cron(manager, action, inv, quiet);
            }
            Ok(String::new())
        }
        PluginCommand::Hotswap { file } => {
            let home = crate::plugin::hotswap::hotswap(manager, env, &file)?;
            if let Some(name) = home.file_name().and_then(|name| name.to_str()) {
                let action = CronAction::Install(Some(vec![name.to_owned()]));
                let quiet = !home.join("crontab").is_file();
                follow_with_cron(manager, action, inv, quiet);
            }
            Ok(String::new())
        }
        PluginCommand::Uninstall { name, clean } => {
            let name = Path::new(&name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(name);
            let home = manager.uninstall(&name, clean)?;
            manager.messages.push(format!(
                "uninstalled plugin `{name}` from `{}`",
                home.display()
            ));
            let _ = follow_with_cron(manager, CronAction::Uninstall(Some(name)), inv, true);
            Ok(String::new())
        }
        PluginCommand::Develop { dir } => {
            let cwd = inv.cwd()?.to_owned();
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            let link = manager.develop(&dir)?;
            manager.messages.push(format!(
                "dev-linked `{}` -> `{}`",
                link.display(),
                dir.display()
            ));
            Ok(String::new())
        }
        PluginCommand::Make { dir, verbose } => {
            let cwd = inv.cwd()?.to_owned();
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            make(manager, env, &dir, verbose)?;
            Ok(String::new())
        }
        PluginCommand::Release { dir } => {
            let cwd = inv.cwd()?.to_owned();
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            let path = manager.release(&dir, &cwd, &build_stamp(env)?)?;
            Ok(format!("{}\n", path.display()))
        }
        PluginCommand::Repackage { name } => {
            let cwd = inv.cwd()?.to_owned();
            let path = manager.repackage(&name, &cwd, &build_stamp(env)?)?;
            Ok(format!("{}\n", path.display()))
        }
        PluginCommand::Provision { .. } => Err(Error::new(
            ErrorKind::Usage,
            "`plugin provision` is run by `plugin::cli::run`",
        )),
        PluginCommand::Config { target, json } => {
            let context = inv.module();
            let Some(plugin) = locate(inv, &target)? else {
                return Err(not_installed_error(context, &target));
            };
            let configuration = configuration_of(env);
            let find_home = |name: &str| {
                installed_home(context, name).map(|home| home.to_string_lossy().into_owned())
            };
            let inputs = environment_inputs(env, context, &configuration, &find_home);
            let identity = PluginIdentity {
                label: context.plugin_label(&plugin.name),
                home: plugin.home.to_string_lossy().into_owned(),
                name: plugin.name,
            };
            let layered = layered_config(&inputs, &identity)?;
            manager.messages.extend(layered.warnings.iter().cloned());
            Ok(render_config(&layered, json))
        }
        PluginCommand::Env { .. } | PluginCommand::Wrapper { .. } => Err(Error::new(
            ErrorKind::Usage,
            "`plugin env` and `plugin wrapper` are run by the command line",
        )),
    }
}

/// The user's crontab (`crontab -l`); `None` when there is no `crontab` command.
fn read_user_crontab() -> Result<Option<String>> {
    let output = match std::process::Command::new("crontab").arg("-l").output() {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(Error::new(ErrorKind::Io, "cannot run `crontab -l`")
                .caused_by(crate::error::io_reason(&err)));
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // An empty crontab is an error for `crontab -l`.
        if stderr.contains("no crontab for") {
            return Ok(Some(String::new()));
        }
        return Err(
            Error::new(ErrorKind::Io, "`crontab -l` failed").caused_by(stderr.trim().to_owned())
        );
    }
    String::from_utf8(output.stdout)
        .map(Some)
        .map_err(|_| Error::new(ErrorKind::Io, "the user's crontab is not valid UTF-8"))
}

/// Where the user's crontab as it was before mfenv's last change is kept (below the
/// runtime home); `crontab FILE` puts it back.
pub const CRONTAB_BACKUP: &str = "var/crontab.previous";
/// The complete new crontab handed to `crontab FILE`: `RUNTIME/tmp/crontab.new.<pid>`.
const CRONTAB_NEW_PREFIX: &str = "tmp/crontab.new.";

/// Writes `text` to a new private file at `path` (mode 0600), flushed to disk.
fn write_private_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| Error::io("cannot create", parent, &err))?;
    }
    crate::private::write_new(path, text).map_err(|err| Error::io("cannot write", path, &err))
}

/// Removes the new-crontab files of killed runs. The lock is held, and a `crontab`
/// still reading such a file would hold it too (see [`write_user_crontab`]).
fn remove_crontab_leftovers(runtime_home: &Path) {
    let Some(prefix) = Path::new(CRONTAB_NEW_PREFIX)
        .file_name()
        .and_then(|name| name.to_str())
    else {
        return;
    };
    let Ok(reader) = std::fs::read_dir(runtime_home.join("tmp")) else {
        return;
    };
    for entry in reader.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(prefix))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Replaces the user's crontab `previous` with `text`, the plugin-management `lock`
/// held: `previous` is saved to [`CRONTAB_BACKUP`] first (renamed into place), then the
/// complete `text` is written to a private file and handed to `crontab FILE`, which
/// installs a whole file or nothing. Piping into `crontab -` would install whatever was
/// read when mfenv died. The `crontab` child inherits the lock, so a crontab still
/// being installed after mfenv was killed keeps the next edit waiting.
fn write_user_crontab(
    runtime_home: &Path,
    lock: &lock::ManagementLock,
    previous: &str,
    text: &str,
) -> Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::process::{Command, Stdio};
    let failed =
        |reason: String| Error::new(ErrorKind::Io, "cannot install the crontab").caused_by(reason);
    let backup = runtime_home.join(CRONTAB_BACKUP);
    let backup_new = runtime_home.join(format!(
        "{CRONTAB_NEW_PREFIX}{}.previous",
        std::process::id()
    ));
    write_private_file(&backup_new, previous)?;
    std::fs::rename(&backup_new, &backup)
        .map_err(|err| Error::io("cannot save the previous crontab to", &backup, &err))?;
    let new = runtime_home.join(format!("{CRONTAB_NEW_PREFIX}{}", std::process::id()));
    write_private_file(&new, text)?;
    let set_inherited = |inherited: bool| {
        let flags = if inherited {
            FdFlag::empty()
        } else {
            FdFlag::FD_CLOEXEC
        };
        fcntl(lock.file(), FcntlArg::F_SETFD(flags))
            .map_err(|errno| failed(format!("cannot pass the lock on: {}", errno.desc())))
    };
    set_inherited(true)?;
    let child = Command::new("crontab")
        .arg(&new)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    // Only this child may inherit the lock.
    let restored = set_inherited(false);
    let output = child
        .and_then(|child| child.wait_with_output())
        .map_err(|err| failed(crate::error::io_reason(&err)))?;
    restored?;
    let _ = std::fs::remove_file(&new);
    if !output.status.success() {
        return Err(
            failed(String::from_utf8_lossy(&output.stderr).trim().to_owned()).with_hint(format!(
                "the crontab was left as it was; `{}` holds it too",
                backup.display()
            )),
        );
    }
    Ok(())
}

const NO_CRONTAB_WARNING: &str = "mfenv: warning: no `crontab` command (no crontab installed): the plugins' crontabs are left as they are";

/// What the crontab step works on.
enum CronAction {
    /// The blocks of these plugins, or of every installed plugin (then the blocks of
    /// plugins that are not installed go).
    Install(Option<Vec<String>>),
    /// The block of this plugin, or every block of the module.
    Uninstall(Option<String>),
}

/// What the crontab step did.
#[derive(Default)]
struct CronOutcome {
    /// Errors, warnings and the changes made, in order.
    messages: Vec<String>,
    changed: bool,
    /// The plugins whose crontab could not be rendered (their old block is kept).
    skipped: Vec<String>,
}

/// Runs the crontab step after a plugin install, uninstall or provisioning: its
/// failures are warnings (the plugins are installed or uninstalled all the same);
/// `quiet_without_crontab` drops the warning about a missing `crontab` command.
fn follow_with_cron(
    manager: &mut Manager<'_>,
    action: CronAction,
    inv: &Invocation,
    quiet_without_crontab: bool,
) -> CrontabReport {
    match update_crontab(action, inv) {
        Ok(outcome) => {
            let no_command = outcome
                .messages
                .iter()
                .any(|line| line == NO_CRONTAB_WARNING);
            manager.messages.extend(
                outcome
                    .messages
                    .into_iter()
                    .filter(|line| !(quiet_without_crontab && line == NO_CRONTAB_WARNING)),
            );
            if !outcome.skipped.is_empty() {
                let message = format!(
                    "the crontab of {} was not updated",
                    backticked(&outcome.skipped)
                );
                manager.messages.push(format!(
                    "mfenv: warning: {message}: fix the errors above and run `mfenv cron install`"
                ));
                return CrontabReport {
                    status: "failed",
                    error: Some(message),
                    skipped: outcome.skipped,
                };
            }
            CrontabReport {
                status: if no_command {
                    "no-crontab-command"
                } else if outcome.changed {
                    "updated"
                } else {
                    "unchanged"
                },
                error: None,
                skipped: Vec::new(),
            }
        }
        Err(error) => {
            let reason = crate::plugin::model::flatten(&error);
            manager.messages.push(format!(
                "mfenv: warning: the crontab was not updated: {reason}"
            ));
            CrontabReport {
                status: "failed",
                error: Some(reason),
                skipped: Vec::new(),
            }
        }
    }
}

fn backticked(names: &[String]) -> String {
    let list: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    list.join(", ")
}

fn lines_count(block: &str) -> String {
    // The marker lines are not counted.
    let count = block.lines().count().saturating_sub(2);
    format!("{count} line{}", if count == 1 { "" } else { "s" })
}

/// `mfenv plugin make DIR`: the checked plugin's dependencies built in its environment
/// (as `mfenv plugin wrapper DIR` gives it), progress written to stderr as it happens.
fn make(manager: &mut Manager<'_>, env: &Env, dir: &Path, verbose: bool) -> Result<()> {
    let source = manager.check(dir)?;
    let context = manager.context;
    let configuration = configuration_of(env);
    let find_home =
        |name: &str| installed_home(context, name).map(|home| home.to_string_lossy().into_owned());
    let inputs = environment_inputs(env, context, &configuration, &find_home);
    let identity = PluginIdentity {
        label: source.label.clone(),
        name: source.name.clone(),
        home: dir.to_string_lossy().into_owned(),
    };
    let build_env = plugin_environment(&inputs, &identity)
        .and_then(|environment| with_plugin_layer(env, context, dir, environment.settings()))
        .map_err(|error| {
            error.context(format!(
                "cannot load the environment of plugin `{}` to build it",
                source.name
            ))
        })?;
    // Earlier messages (warnings) first, then progress as it happens.
    let mut stderr = std::io::stderr();
    for message in manager.messages.drain(..) {
        let _ = writeln!(stderr, "{message}");
    }
    let mut report = |line: &str| {
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    let request = crate::plugin::make::MakeRequest {
        dir,
        env: &build_env,
        verbose,
        rename_exchange: manager.options.rename_exchange,
    };
    crate::plugin::make::make(&request, &mut report)?;
    Ok(())
}

/// `mfenv plugin bootstrap list|create`.
fn bootstrap(
    command: BootstrapCommand,
    manager: &mut Manager<'_>,
    inv: &Invocation,
) -> Result<String> {
    let env = inv.env();
    use crate::plugin::bootstrap::{self, FIELDS, Variables};
    let BootstrapCommand::Create(args) = command else {
        return Ok(bootstrap::render_list());
    };
    let CreateArgs {
        name,
        template,
        no_input,
        version,
        release,
        summary,
        license,
        url,
        maintainer,
        vendor,
    } = *args;
    let cwd = inv.cwd()?.to_owned();
    let target = cwd.join(&name);
    bootstrap::check_request(&template, &name, &target)?;
    let mut values: std::collections::BTreeMap<&'static str, String> = [
        ("version", version),
        ("release", release),
        ("summary", summary),
        ("license", license),
        ("url", url),
        ("maintainer", maintainer),
        ("vendor", vendor),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value?)))
    .collect();
    if !no_input && inv.stdin_is_terminal() {
        for field in FIELDS {
            if values.contains_key(field.key) {
                continue;
            }
            if let Some(answer) = prompt(field.prompt, field.default)? {
                values.insert(field.key, answer);
            }
        }
    }
    let variables = Variables::new(
        &name,
        &manager.context.module_lowercase,
        &format_version(env),
        &values,
    )?;
    let files = bootstrap::render(&template, &variables);
    bootstrap::write_plugin(&target, &files, |staging| {
        manager.check(staging).map(|_| ()).map_err(|error| {
            error.context(format!("the `{template}` template gives an invalid plugin"))
        })
    })?;
    manager.messages.push(format!(
        "plugin `{name}` created from template `{template}` in `{}`",
        target.display()
    ));
    Ok(format!("{}\n", target.display()))
}

/// Asks for one value on the terminal; `None` keeps the default (empty answer, EOF).
fn prompt(question: &str, default: &str) -> Result<Option<String>> {
    let io_error = |err: std::io::Error| {
        Error::new(ErrorKind::Io, "cannot read the answer from the terminal")
            .caused_by(crate::error::io_reason(&err))
    };
    let mut stderr = std::io::stderr();
    write!(stderr, "{question} [{default}]: ").map_err(io_error)?;
    stderr.flush().map_err(io_error)?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(io_error)?;
    let answer = line.trim();
    Ok((!answer.is_empty()).then(|| answer.to_owned()))
}

/// The `.plugin_format_version` of new plugins: `MFMODULE_VERSION` when it has the
/// `X.Y.Z` form the format needs, else the mfenv version.
fn format_version(env: &Env) -> String {
    env.get("MFMODULE_VERSION")
        .filter(|version| {
            version.split('.').count() >= 3 && !version.chars().any(|c| c.is_control() || c == ' ')
        })
        .unwrap_or(env!("CARGO_PKG_VERSION"))
        .to_owned()
}

/// `mfenv cron install|uninstall`.
pub fn run_cron(command: CronCommand, inv: &Invocation) -> Result<PluginOutput> {
    let action = match command {
        CronCommand::Install { name } => CronAction::Install(name.map(|name| vec![name])),
        CronCommand::Uninstall { name } => CronAction::Uninstall(name),
    };
    let mut outcome = update_crontab(action, inv)?;
    let no_crontab = outcome
        .messages
        .iter()
        .any(|line| line == NO_CRONTAB_WARNING);
    if !outcome.changed && !no_crontab {
        outcome.messages.push("the crontab is unchanged".to_owned());
    }
    if !outcome.skipped.is_empty() {
        // The messages first: crate::cli writes only the error on failure.
        let mut text = outcome.messages.join("\n");
        text.push('\n');
        let _ = std::io::stderr().write_all(text.as_bytes());
        let verb = if outcome.skipped.len() == 1 {
            "is"
        } else {
            "are"
        };
        return Err(Error::new(
            ErrorKind::LayerFile,
            format!(
                "the crontab of {} {verb} not installed",
                backticked(&outcome.skipped)
            ),
        )
        .with_hint("fix the errors above and run `mfenv cron install` again"));
    }
    Ok(PluginOutput {
        stdout: String::new(),
        stderr: outcome.messages,
        status: 0,
    })
}

/// One read-modify-write of the user's crontab, under the plugin-management lock so
/// that concurrent installs, uninstalls, provisioning and `mfenv cron` keep each
/// other's blocks, and so that the blocks written match the plugins installed.
fn update_crontab(action: CronAction, inv: &Invocation) -> Result<CronOutcome> {
    let env = inv.env();
    let context = inv.module();
    let options = manager_options(inv)?;
    let lock = lock::acquire(&context.runtime_home, options.lock_timeout)?;
    remove_crontab_leftovers(&context.runtime_home);
    let mut manager = Manager::new(context, env, options);
    let mut outcome = CronOutcome::default();
    let Some(current) = read_user_crontab()? else {
        outcome.messages.push(NO_CRONTAB_WARNING.to_owned());
        return Ok(outcome);
    };
    let module = &context.module;
    let mut updated = current.clone();
    let mut changes = Vec::new();
    let backup = context.runtime_home.join(CRONTAB_BACKUP);
    let mut note = |update: cron::Update, name: &str, block: &str, stale: bool| {
        for _ in &update.stray_markers {
            changes.push(format!(
                "mfenv: warning: removed a marker line of plugin `{name}` that opened or closed no block; the lines around it were kept: check them (the crontab as it was is in `{}`)",
                backup.display()
            ));
        }
        match update.change {
            cron::Change::Unchanged => {}
            cron::Change::Added => changes.push(format!(
                "added the crontab block of plugin `{name}` ({})",
                lines_count(block)
            )),
            cron::Change::Replaced => changes.push(format!(
                "updated the crontab block of plugin `{name}` ({})",
                lines_count(block)
            )),
            cron::Change::Removed if stale => changes.push(format!(
                "removed the crontab block of plugin `{name}`, which is not installed"
            )),
            cron::Change::Removed => {
                changes.push(format!("removed the crontab block of plugin `{name}`"));
            }
        }
        update.crontab
    };
    match action {
        CronAction::Install(names) => {
            let everything = names.is_none();
            let plugins = match names {
                Some(names) => {
                    let mut plugins = Vec::new();
                    for name in names {
                        match manager.find(&name)? {
                            Some(plugin) if plugin.is_installed() => plugins.push(plugin),
                            _ => return Err(not_installed_error(context, &name)),
                        }
                    }
                    plugins
                }
                None => manager
                    .scan()?
                    .into_iter()
                    .filter(|plugin| plugin.is_installed())
                    .collect(),
            };
            outcome.messages.append(&mut manager.messages);
            let configuration = configuration_of(env);
            let find_home = |name: &str| {
                installed_home(context, name).map(|home| home.to_string_lossy().into_owned())
            };
            let inputs = environment_inputs(env, context, &configuration, &find_home);
            let binary = inv.binary();
            let cron_bin = context.runtime_home.join(cron_context::CRON_BIN_DIR);
            let bin_word = binary.and_then(cron_context::crontab_word);
            let cronwrap_word =
                cron_context::crontab_word(&cron_bin.join(cron_context::CRONWRAP_SH));
            let placeholder = |name: &str| match name {
                cron_context::BIN_PLACEHOLDER => Some(bin_word.clone()),
                cron_context::CRONWRAP_PLACEHOLDER => Some(cronwrap_word.clone()),
                _ => None,
            };
            // The `cronwrap.sh` directories the installed blocks call, when there is one.
            let mut cronwrap_dirs: Option<Vec<PathBuf>> = None;
            if everything {
                for name in cron::block_names(&current, module) {
                    if !plugins.iter().any(|plugin| plugin.name == name) {
                        let update = cron::remove_block(&updated, module, &name);
                        updated = note(update, &name, "", true);
                    }
                }
            }
            for plugin in plugins {
                let file = plugin.home.join("crontab");
                let text = match crate::plugin::model::read_small_file(
                    &file,
                    crate::plugin::model::MAX_CONFIG_SIZE,
                ) {
                    Ok(text) => text,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        // No crontab (any more): no block.
                        let update = cron::remove_block(&updated, module, &plugin.name);
                        updated = note(update, &plugin.name, "", false);
                        continue;
                    }
                    Err(err) => {
                        outcome.messages.push(format!(
                            "mfenv: error: plugin `{}`: cannot read `{}`: {}: its crontab is skipped",
                            plugin.name,
                            file.display(),
                            crate::error::io_reason(&err)
                        ));
                        outcome.skipped.push(plugin.name);
                        continue;
                    }
                };
                let identity = PluginIdentity {
                    label: plugin.label.clone(),
                    home: plugin.home.to_string_lossy().into_owned(),
                    name: plugin.name.clone(),
                };
                let plugin_env =
                    match plugin_environment(&inputs, &identity).and_then(|environment| {
                        with_plugin_layer(env, context, &plugin.home, environment.settings())
                    }) {
                        Ok(environment) => environment,
                        Err(error) => {
                            outcome.messages.push(format!(
                                "mfenv: error: plugin `{}`: {}: its crontab is skipped",
                                plugin.name,
                                crate::plugin::model::flatten(&error)
                            ));
                            outcome.skipped.push(plugin.name);
                            continue;
                        }
                    };
                let lookup = |name: &str| match placeholder(name) {
                    Some(value) => value,
                    None => plugin_env.get(name).map(str::to_owned),
                };
                match cron::render_crontab(&text, lookup) {
                    Ok(rendered) => {
                        if !rendered.text.trim().is_empty() {
                            let dirs = cronwrap_dirs.get_or_insert_with(Vec::new);
                            for dir in cron_context::cronwrap_dirs(&rendered.text) {
                                if !dirs.contains(&dir) {
                                    dirs.push(dir);
                                }
                            }
                        }
                        for line in &rendered.dropped_markers {
                            outcome.messages.push(format!(
                                "mfenv: warning: plugin `{}`: line {line} of `{}` reads as a crontab block marker: dropped",
                                plugin.name,
                                file.display()
                            ));
                        }
                        let block = cron::block(module, &plugin.name, &rendered.text);
                        let update = cron::set_block(&updated, module, &plugin.name, &block);
                        updated = note(update, &plugin.name, &block, false);
                    }
                    Err(error) => {
                        outcome.messages.push(format!(
                            "mfenv: error: plugin `{}`: {error} in `{}` line {}: its crontab is skipped",
                            plugin.name,
                            file.display(),
                            error.line()
                        ));
                        outcome.skipped.push(plugin.name);
                    }
                }
            }
            if let Some(dirs) = cronwrap_dirs {
                record_cron_context(inv, context, binary, &cron_bin, dirs)
                    .into_iter()
                    .for_each(|message| outcome.messages.push(message));
            }
        }
        CronAction::Uninstall(name) => {
            let names = match name {
                Some(name) => vec![name],
                None => cron::block_names(&current, module),
            };
            for name in names {
                let update = cron::remove_block(&updated, module, &name);
                updated = note(update, &name, "", false);
            }
        }
    }
    if updated != current {
        write_user_crontab(&context.runtime_home, &lock, &current, &updated)?;
        outcome.changed = true;
        outcome.messages.append(&mut changes);
    }
    Ok(outcome)
}

/// Records the module context of `env` for the jobs of mfenv's own `cronwrap.sh`
/// (`cron_bin`, whose links to `binary` are made here) and of the other `cronwrap.sh`
/// directories `dirs` (see [`cron_context`]); returns the warnings. A record that
/// cannot be written does not stop the crontab update: its jobs would miss the context.
fn record_cron_context(
    inv: &Invocation,
    context: &ModuleContext,
    binary: Option<&Path>,
    cron_bin: &Path,
    dirs: Vec<PathBuf>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let warn = |warnings: &mut Vec<String>, what: String, error: &Error| {
        warnings.push(format!(
            "mfenv: warning: {what}: {}",
            crate::plugin::model::flatten(error)
        ));
    };
    match binary {
        Some(binary) => {
            let mut names: Vec<&str> = crate::legacy::NAMES.to_vec();
            names.push("mfenv");
            if let Err(error) = cron_context::ensure_links(cron_bin, binary, &names) {
                warn(
                    &mut warnings,
                    "cannot make the links of `{{MFENV_CRONWRAP}}`".to_owned(),
                    &error,
                );
            }
        }
        None => warnings.push(
            "mfenv: warning: cannot find the path of the mfenv binary: `{{MFENV_BIN}}` and `{{MFENV_CRONWRAP}}` are not usable".to_owned(),
        ),
    }
    let env = inv.env();
    let Some(home) = env
        .get("HOME")
        .filter(|home| home.starts_with('/'))
        .map(PathBuf::from)
        .or_else(|| inv.fallback_home().map(Path::to_path_buf))
    else {
        warnings.push(
            "mfenv: warning: no home directory: the module context of the cron jobs is not recorded"
                .to_owned(),
        );
        return warnings;
    };
    let environment = cron_context::context_variables(env, context);
    let runtime_home = context.runtime_home.to_string_lossy().into_owned();
    let mut all = vec![cron_bin.to_owned()];
    all.extend(dirs.into_iter().filter(|dir| dir != cron_bin));
    for dir in all {
        let record = cron_context::Record {
            format: cron_context::FORMAT,
            cronwrap_dir: dir.to_string_lossy().into_owned(),
            module: context.module.clone(),
            runtime_home: runtime_home.clone(),
            environment: environment.clone(),
        };
        let script = dir.join(cron_context::CRONWRAP_SH);
        match cron_context::write_record(&home, &record) {
            Ok(None) => {}
            Ok(Some(previous)) => warnings.push(format!(
                "mfenv: warning: the jobs of `{}` now run for the runtime home `{runtime_home}`, no longer for `{previous}`",
                script.display()
            )),
            Err(error) => warn(
                &mut warnings,
                format!(
                    "the jobs of `{}` will miss the module context",
                    script.display()
                ),
                &error,
            ),
        }
    }
    warnings
}

fn describe(manager: &mut Manager<'_>, target: &str) -> Result<Description> {
    if is_file_argument(target) {
        manager.describe_file(Path::new(target))
    } else {
        manager.describe_installed(target)
    }
}

/// `path` for a human or a `--raw` line, its control characters escaped.
fn printable_path(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

/// The `info` table, then the files; every value with its control characters escaped.
fn render_info(description: &Description) -> String {
    let field = |name: &str, value: &str| vec![name.to_owned(), wrap(&printable(value), 60)];
    let table = Table {
        title: None,
        rows: vec![
            field("Name", &description.name),
            field("Version", &description.version),
            field("Release", &description.release),
            field("Summary", &description.summary),
            field("Size", &description.size),
            field("Build Host", &description.build_host),
            field("Build Date", &description.build_date),
            field("License", &description.license),
            field("Maintainer", &description.maintainer),
            field("Vendor", &description.vendor),
            field("URL", &description.url),
        ],
        header: false,
    };
    let mut out = table.render();
    out.push_str("\nFiles:\n");
    for file in &description.files {
        out.push_str(&format!("- {}\n", printable(file)));
    }
    out
}

/// The environment a plugin's commands run in (what `mfenv plugin wrapper` gives them):
/// `env` with the plugin layer loaded, its extra_env included, and the plugin settings.
fn with_plugin_layer(
    env: &Env,
    context: &ModuleContext,
    home: &std::path::Path,
    settings: Vec<crate::env::diff::Setting>,
) -> Result<Env> {
    let request = crate::engine::ExecRequest {
        layers: vec![(
            crate::layer::model::LayerRef::Home(home.to_string_lossy().into_owned()),
            false,
        )],
        load_optional: true,
        settings,
        ..crate::engine::ExecRequest::default()
    };
    let mut engine = crate::engine::Engine::new(env, context, false);
    let environment = engine.exec_environment(&request)?;
    match environment.failures.into_iter().next() {
        Some(failure) => Err(failure),
        None => Ok(environment.env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_name_comes_from_mfconfig_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metwork.config");
        let env = Env::from_pairs([("MFCONFIG", "DEV_John")]);
        assert_eq!(configuration_name(&env, &file), "dev_john");
        assert_eq!(configuration_name(&Env::default(), &file), "generic");
        std::fs::write(&file, "# a comment\n\n PROD \n").unwrap();
        assert_eq!(configuration_name(&Env::default(), &file), "prod");
    }

    #[test]
    fn an_argument_with_a_dot_or_slash_is_a_file() {
        assert!(is_file_argument("foo-1.0.0-1.metwork.generic.plugin"));
        assert!(is_file_argument("./foo"));
        assert!(!is_file_argument("foo_bar"));
    }
}
