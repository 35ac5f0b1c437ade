//! The `mfenv plugin …` commands: their clap types and the plugin CLI edge.
//!
//! This is the only plugin file that looks outside the environment snapshot: it reads
//! the current directory (the default plugin directory, where release and repackage
//! write), the path of the running binary (postinstall runs through `mfenv exec`), the
//! clock and host name (build stamps), whether stderr is a terminal (progress lines) and
//! `/etc/metwork.config` (the default `MFCONFIG`). Everything else is done by
//! [`crate::plugin::manager`] on data passed down from here.
//!
//! Results go to stdout (built in memory, written once by `crate::cli`), messages to
//! stderr. When a command fails, the messages gathered so far are written to stderr
//! before the error, so that a partly failed provisioning still tells what it did.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Subcommand;

use crate::context::ModuleContext;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::lock;
use crate::plugin::manager::{BuildStamp, Description, Manager, ManagerOptions, absolute};
use crate::plugin::model::to_json_indented;
use crate::plugin::table::{Table, wrap};

/// What a plugin command produces.
#[derive(Debug, Default)]
pub struct PluginOutput {
    pub stdout: String,
    pub stderr: Vec<String>,
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

const RELEASE_EXAMPLES: &str = "\
Examples:
  mfenv plugin release                  package the plugin in the current directory
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) mfenv plugin release ~/src/foo

Files matched by `.releaseignore` (gitignore syntax) are left out. With
SOURCE_DATE_EPOCH set, two releases of the same tree are byte-identical.";

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
    Provision {
        /// Default: `<sysconf>/<module>/plugins` (`/etc/metwork.config.d/<module>/plugins`)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|err| {
        Error::new(ErrorKind::Io, "cannot read the current directory")
            .caused_by(crate::error::io_reason(&err))
    })
}

/// True when `target` names a `.plugin` file rather than a plugin (reference B9).
fn is_file_argument(target: &str) -> bool {
    target.contains('/') || target.contains('.') || Path::new(target).is_file()
}

/// Runs a plugin command against the environment snapshot.
pub fn run(command: PluginCommand, env: &Env) -> Result<PluginOutput> {
    let context = ModuleContext::from_env(env, dirs::home_dir().as_deref());
    let options = ManagerOptions {
        configuration: configuration_name(env, Path::new(METWORK_CONFIG)),
        lock_timeout: lock::timeout_from(env.get("MFENV_LOCK_TIMEOUT"))?,
        progress: std::io::stderr().is_terminal(),
        mfenv_binary: std::env::current_exe().ok(),
    };
    let mut manager = Manager::new(&context, env, options);
    match execute(command, &mut manager, env) {
        Ok(stdout) => Ok(PluginOutput {
            stdout,
            stderr: std::mem::take(&mut manager.messages),
        }),
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

fn execute(command: PluginCommand, manager: &mut Manager<'_>, env: &Env) -> Result<String> {
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
                            row.name,
                            row.version,
                            row.release,
                            row.home.display()
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
                    row.name.clone(),
                    row.version.clone(),
                    row.release.clone(),
                    row.home.display().to_string(),
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
                    Some(home) => Ok(format!("{}\n", home.display())),
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
        PluginCommand::Hash { target } => Ok(describe(manager, &target)?.hash() + "\n"),
        PluginCommand::Check { dir } => {
            let cwd = current_dir()?;
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            let source = manager.check(&dir)?;
            Ok(format!(
                "`{}`: plugin `{}` {}-{} is valid\n",
                dir.display(),
                source.name,
                source.general.version,
                source.general.release
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
            Ok(String::new())
        }
        PluginCommand::Develop { dir } => {
            let cwd = current_dir()?;
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            let link = manager.develop(&dir)?;
            manager.messages.push(format!(
                "dev-linked `{}` -> `{}`",
                link.display(),
                dir.display()
            ));
            Ok(String::new())
        }
        PluginCommand::Release { dir } => {
            let cwd = current_dir()?;
            let dir = absolute(dir.as_deref().unwrap_or(Path::new(".")), &cwd);
            let path = manager.release(&dir, &cwd, &build_stamp(env)?)?;
            Ok(format!("{}\n", path.display()))
        }
        PluginCommand::Repackage { name } => {
            let cwd = current_dir()?;
            let path = manager.repackage(&name, &cwd, &build_stamp(env)?)?;
            Ok(format!("{}\n", path.display()))
        }
        PluginCommand::Provision { dir } => {
            let cwd = current_dir()?;
            let dir = match dir {
                Some(dir) => absolute(&dir, &cwd),
                None => manager.provisioning_dir(),
            };
            manager.provision(&dir)?;
            Ok(String::new())
        }
    }
}

fn describe(manager: &mut Manager<'_>, target: &str) -> Result<Description> {
    if is_file_argument(target) {
        manager.describe_file(Path::new(target))
    } else {
        manager.describe_installed(target)
    }
}

/// The `info` table, then the files.
fn render_info(description: &Description) -> String {
    let field = |name: &str, value: &str| vec![name.to_owned(), wrap(value, 60)];
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
        out.push_str(&format!("- {file}\n"));
    }
    out
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
