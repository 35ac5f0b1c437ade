//! The command line: clap types, dispatch, and the only place that reads the process
//! environment and writes to stdout and stderr. The facts of the invocation (environment
//! snapshot, module context, current directory, binary path, terminals) are gathered
//! here once into an [`Invocation`] and passed down to every command.
//!
//! Each command builds its whole output in memory and writes it once, so a failure
//! leaves stdout empty. Messages go to stderr; `--debug` explanations too.

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::engine::{
    Engine, ExecEnvironment, ExecRequest, PlannedStep, Request, Transaction, TransactionOptions,
    WhyReport,
};
use crate::env::Env;
use crate::env::diff::Change;
use crate::env::state::STATE_VARIABLE;
use crate::error::{Error, ErrorKind};
use crate::invocation::Invocation;
use crate::layer::model::LayerRef;
use crate::layer::model::PATH_VARIABLES;
use crate::layer::resolve::{Action, Reason};
use crate::plugin::cli::{LocatedPlugin, PluginCommand};
use crate::shell::{CODE_MARKER, HOOK_VARIABLE, ShellKind};

const LOAD_EXAMPLES: &str = "\
Examples:
  eval \"$(mfenv load python3@mfext)\"        load a layer and its dependencies (bash)
  mfenv load --shell fish python3@mfext | source
  mfenv load --dry-run python3@mfext          show what would be loaded and changed
  mfenv load /opt/mylayers/tools              a layer given by its home";

const UNLOAD_EXAMPLES: &str = "\
Examples:
  eval \"$(mfenv unload python3@mfext)\"      unload it (and the layers that need it)
  mfenv unload --dry-run core@mfext          show the cascade without doing it";

const LAYERS_EXAMPLES: &str = "\
Examples:
  mfenv layers                 - (*) label [home], (*) marking loaded layers
  mfenv layers --raw -m yes    label and home of the loaded layers
  mfenv layers --json";

const EXEC_EXAMPLES: &str = "\
Examples:
  mfenv exec -l python3@mfext -- python3 script.py
  mfenv exec -l default@mfdata,-optional@mfdata -c -- ./run.sh     run in the last layer's home
  mfenv exec -E -k HOME,USER -l core@mfext -- env                 from an empty environment
  mfenv exec -l tools@x -x TOOLS -- sh -c 'echo $TOOLS_DIR'        TOOLS_NAME, _LABEL, _DIR
  mfenv exec -p PATH,/opt/extra/bin -l tools@x -- mytool

The command replaces mfenv (same process): its exit status, signals and standard streams
are its own. It is not run when a mandatory layer fails to load (exit 1); a command that
is not found exits with 127.";

const CRONWRAP_EXAMPLES: &str = "\
Examples (lines of a plugin's crontab file):
  */5 * * * * {{MFENV_CRONWRAP}} --lock --timeout 300 --log-capture-to job.log -- {{MFENV_BIN}} plugin wrapper foo -- job.sh --full
  0 3 * * *   {{MFDATA_HOME}}/bin/cronwrap.sh --low --log-capture-to clean.log -- plugin_wrapper foo -- cleanup

Cron runs jobs with PATH=/usr/bin:/bin and no module environment: {{MFENV_BIN}} is the
absolute path of mfenv, and `cronwrap.sh` ({{MFENV_CRONWRAP}}, or the one `mfenv
install-aliases` makes) loads the module context recorded by `mfenv cron install`.

The command's arguments are passed as they are (no shell), and its exit status is
cronwrap's (a timeout exits with 12). --lock skips the run quietly (exit 0) while the same
command runs; the lock is released when cronwrap ends, even if it is killed. SIGTERM,
SIGINT and SIGHUP are forwarded to the command and all it started (even through setsid);
what still runs --kill-after seconds later is killed, and cronwrap exits with 128 + the
signal number (143, 130, 129).";

const HOOK_EXAMPLES: &str = "\
Examples:
  eval \"$(mfenv hook bash)\"     in ~/.bashrc
  eval \"$(mfenv hook zsh)\"      in ~/.zshrc
  mfenv hook fish | source      in ~/.config/fish/config.fish
  eval \"$(mfenv hook sh)\"       in ~/.profile (dash, ash, ksh)";

/// mfenv: layered environments, compatible with MetWork layerapi2.
///
/// A layer is a directory with a `.layerapi2_label` file, found through
/// LAYERAPI2_LAYERS_PATH. Loading it puts its bin/, lib/, python and node directories
/// on PATH, LD_LIBRARY_PATH, PYTHONPATH, NODE_PATH and PKG_CONFIG_PATH, sets the
/// variables of its `.layerapi2_extra_env`, and loads its dependencies first.
#[derive(Debug, Parser)]
// An option given twice is accepted (a flag stays set, the last value wins), as with
// layerapi2's option parser: MetWork's `layer_load` adds `--debug` to the user's own.
#[command(
    name = "mfenv",
    version,
    propagate_version = true,
    args_override_self = true,
    max_term_width = 100
)]
#[command(after_help = "Set up your shell with `mfenv hook --help`.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print shell code that loads layers (and their dependencies)
    #[command(after_help = LOAD_EXAMPLES)]
    Load(LoadArgs),
    /// Run a command with layers loaded (the old `layer_wrapper`)
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Print shell code that unloads layers (and the layers that depend on them)
    #[command(after_help = UNLOAD_EXAMPLES)]
    Unload(UnloadArgs),
    /// List installed layers
    #[command(after_help = LAYERS_EXAMPLES)]
    Layers(LayersArgs),
    /// Run a command from cron: lock, timeout, niceness, log file (the old `cronwrap`)
    #[command(after_help = CRONWRAP_EXAMPLES)]
    Cronwrap(CronwrapArgs),
    /// Show which loaded layer put each PATH entry and each variable there
    #[command(
        after_help = "Examples:\n  mfenv why                 the five path lists and every variable set by a layer\n  mfenv why PATH PYTHONPATH\n  mfenv why --json MY_VAR"
    )]
    Why {
        /// Variables to explain (default: PATH, LD_LIBRARY_PATH, PKG_CONFIG_PATH,
        /// PYTHONPATH, NODE_PATH and the variables set by loaded layers)
        variables: Vec<String>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Save, restore, list, show and remove named sets of loaded layers
    #[command(subcommand, after_help = COLLECTION_EXAMPLES)]
    Collection(CollectionCommand),
    /// Print 1 if the layer (label or home) is installed, else 0
    #[command(
        after_help = "Examples:\n  mfenv is-installed python3@mfext\n  mfenv is-installed /opt/mylayers/tools\n  [ \"$(mfenv is-installed foo@bar)\" = 1 ] || echo \"foo@bar is missing\""
    )]
    IsInstalled {
        /// A layer label or an absolute layer home
        #[arg(value_parser = layer_argument())]
        layer: String,
    },
    /// Print 1 if the layer (label or home) is loaded, else 0
    #[command(
        after_help = "Examples:\n  mfenv is-loaded python3@mfext\n  [ \"$(mfenv is-loaded default@mfdata)\" = 1 ] || layer_load default@mfdata"
    )]
    IsLoaded {
        /// A layer label or an absolute layer home
        #[arg(value_parser = layer_argument())]
        layer: String,
    },
    /// Print the home directory of the layer with this label
    #[command(
        after_help = "Examples:\n  mfenv home python3@mfext\n  cd \"$(mfenv home tools@example)\""
    )]
    Home {
        /// A layer label
        #[arg(value_parser = layer_argument())]
        label: String,
    },
    /// Print the shell integration: layer_load, layer_unload, layer_load_without_optional
    #[command(after_help = HOOK_EXAMPLES)]
    Hook {
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print the completion script of mfenv itself
    #[command(
        after_help = "Examples:\n  mfenv completions bash > ~/.local/share/bash-completion/completions/mfenv\n  mfenv completions zsh > ~/.zfunc/_mfenv        (with ~/.zfunc on fpath)\n  mfenv completions fish > ~/.config/fish/completions/mfenv.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Build, install and manage plugins (`.plugin` packages)
    #[command(subcommand)]
    Plugin(crate::plugin::cli::PluginCommand),
    /// Install or remove the plugins' crontabs in the user's crontab
    #[command(subcommand)]
    Cron(crate::plugin::cli::CronCommand),
    /// Supervise the plugins' extra daemons: run, start, status, stop, restart, reload
    #[command(subcommand, after_help = crate::daemon::cli::DAEMONS_EXAMPLES)]
    Daemons(crate::daemon::cli::DaemonsCommand),
    /// Create symlinks named after the historical MetWork commands (layers,
    /// layer_wrapper, is_layer_loaded, ...) pointing to this binary
    #[command(
        after_help = "Example:\n  mfenv install-aliases ~/.local/bin\n  layer_wrapper --layers=python3@mfext -- python3 -V"
    )]
    InstallAliases {
        /// Directory to create the symlinks in (created if missing)
        dir: std::path::PathBuf,
        /// Replace existing files with those names
        #[arg(long)]
        force: bool,
    },
    /// Show a manual page (formatted on a terminal, roff otherwise), or install them all
    #[command(after_help = crate::inspect::man::MAN_EXAMPLES)]
    Man(crate::inspect::man::ManArgs),
    /// List the installed layers whose bin/ or local/bin/ holds a command
    #[command(after_help = crate::inspect::lookup::PROVIDES_EXAMPLES)]
    Provides {
        /// A command name, e.g. `python3`
        #[arg(value_name = "CMD")]
        command: String,
        /// A JSON array of {label, home, path, executable, loaded}
        #[arg(long)]
        json: bool,
    },
    /// Search the installed layers' labels and descriptions
    #[command(after_help = crate::inspect::lookup::SEARCH_EXAMPLES)]
    Search {
        /// Words that must all appear (case-insensitive) in the label or description
        #[arg(required = true, value_name = "WORD")]
        words: Vec<String>,
        /// A JSON array of {label, home, description, loaded}
        #[arg(long)]
        json: bool,
    },
    /// Check the set-up: layers path, hook, completion, python, directories, cron, daemons
    #[command(after_help = crate::inspect::doctor::DOCTOR_EXAMPLES)]
    Doctor {
        /// Machine-readable report
        #[arg(long)]
        json: bool,
    },
    /// Print layer labels for shell completion (used by the hook)
    #[command(hide = true)]
    Complete {
        #[arg(value_enum)]
        what: CompleteWhat,
        /// Only labels starting with this
        #[arg(default_value = "")]
        prefix: String,
    },
}

const COLLECTION_EXAMPLES: &str = "Examples:
  mfenv collection save work          the loaded layers, as the collection `work`
  layer_restore work                  unload everything, then load the collection
  eval \"$(mfenv collection restore work --shell bash)\"
  mfenv collection list
  mfenv collection show work
  mfenv collection remove work

Collections are files under $XDG_CONFIG_HOME/mfenv/collections (default
~/.config/mfenv/collections), one layer label per line; the name defaults to `default`.";

/// `labels`, then the short name (`tools` for `tools@example`) of each label that is the
/// only one with its name and is not itself a label: what `load` and `unload` accept.
fn with_short_names(mut labels: Vec<String>) -> Vec<String> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
    for label in distinct {
        if let Some((name, _)) = label.split_once('@')
            && !name.is_empty()
        {
            *counts.entry(name).or_default() += 1;
        }
    }
    let short: Vec<String> = counts
        .into_iter()
        .filter(|(name, count)| *count == 1 && !labels.iter().any(|label| label == name))
        .map(|(name, _)| name.to_owned())
        .collect();
    labels.extend(short);
    labels
}

/// `mfenv collection …`.
#[derive(Debug, Subcommand)]
enum CollectionCommand {
    /// Save the labels of the loaded layers, in load order
    Save {
        /// Collection name (default: `default`)
        name: Option<String>,
    },
    /// Print shell code that unloads every layer, then loads the collection's layers
    Restore {
        /// Collection name (default: `default`)
        name: Option<String>,
        #[command(flatten)]
        common: ShellOptions,
    },
    /// List the saved collections
    List,
    /// Print the labels of a collection, one per line
    Show {
        /// Collection name (default: `default`)
        name: Option<String>,
    },
    /// Remove a saved collection
    Remove {
        /// Collection name
        name: String,
    },
}

/// A layer label or home from the command line: bytes, as in layer files (a Latin-1
/// label is given as its Latin-1 bytes), so not necessarily UTF-8.
fn layer_argument() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(crate::env::bytes::decode_os)
}

/// A shell to write code for.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    Sh,
}

impl From<ShellArg> for ShellKind {
    fn from(shell: ShellArg) -> Self {
        match shell {
            ShellArg::Bash => ShellKind::Bash,
            ShellArg::Zsh => ShellKind::Zsh,
            ShellArg::Fish => ShellKind::Fish,
            ShellArg::Sh => ShellKind::Sh,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompleteWhat {
    /// Installed labels and their unique short names (for loads)
    Installed,
    /// Installed labels only (for is-installed, is-loaded, home)
    Labels,
    Loaded,
    /// Installed plugin names (for `plugin_env`)
    Plugins,
    /// Saved collection names (for `layer_restore`)
    Collections,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LoadedFilter {
    Yes,
    No,
}

#[derive(Debug, Args)]
struct ShellOptions {
    /// Shell to write code for
    #[arg(long, value_enum, default_value = "bash")]
    shell: ShellArg,
    /// Explain each decision on stderr
    #[arg(short, long)]
    debug: bool,
    /// Print the plan (layers and variables) for a human instead of code
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: print the plan as JSON
    #[arg(long, requires = "dry_run")]
    json: bool,
    /// Do not announce the layers unloaded or replaced along the way (also: MFENV_QUIET=1)
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    common: ShellOptions,
    /// Do not load optional dependencies (`-` entries of .layerapi2_dependencies)
    #[arg(long)]
    dont_load_optional: bool,
    /// Prepend every layer directory, even those that do not exist
    #[arg(short, long)]
    force_prepend: bool,
    /// Layer labels or absolute layer homes, loaded as one transaction
    #[arg(required = true, value_name = "LAYER", value_parser = layer_argument())]
    layers: Vec<String>,
}

#[derive(Debug, Args)]
struct UnloadArgs {
    #[command(flatten)]
    common: ShellOptions,
    /// Unload every loaded layer (loaded by mfenv or by the original tools): the
    /// environment from before the first load
    #[arg(short, long, conflicts_with = "layers")]
    all: bool,
    /// Layer labels or absolute layer homes, unloaded as one transaction
    #[arg(required_unless_present = "all", value_name = "LAYER", value_parser = layer_argument())]
    layers: Vec<String>,
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// Comma-separated layer labels or homes; a `-` prefix makes one optional
    #[arg(short, long, value_name = "LAYERS", allow_hyphen_values = true, value_parser = layer_argument())]
    layers: Vec<String>,
    /// Unload every loaded layer first
    #[arg(short, long)]
    empty: bool,
    /// Start from an empty environment (implies --empty)
    #[arg(short = 'E', long)]
    empty_env: bool,
    /// Comma-separated variables kept by --empty-env
    #[arg(short = 'k', long, value_name = "VARS")]
    empty_env_keeps: Vec<String>,
    /// Run the command in the home of the last layer
    #[arg(short, long)]
    cwd: bool,
    /// Set PREFIX_NAME, PREFIX_LABEL and PREFIX_DIR for the last layer
    #[arg(short = 'x', long, value_name = "PREFIX")]
    extra_env_prefix: Option<String>,
    /// `VAR,VALUE`: prepend VALUE to the `:`-list VAR, after the layers (repeatable)
    #[arg(short, long, value_name = "VAR,VALUE")]
    prepend_env: Vec<String>,
    /// Prepend every layer directory, even those that do not exist
    #[arg(short, long)]
    force_prepend: bool,
    /// Do not load optional dependencies
    #[arg(long)]
    dont_load_optional: bool,
    /// Explain each decision on stderr
    #[arg(short, long)]
    debug: bool,
    /// The command and its arguments
    #[arg(required = true, last = true, value_name = "COMMAND", value_parser = clap::value_parser!(OsString))]
    command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LockBusyBehaviour {
    PrintStdout,
    PrintStderr,
    Nothing,
}

#[derive(Debug, Args)]
struct CronwrapArgs {
    /// Kill the command (and all it started) after this many seconds and exit 12; 0: never
    #[arg(short, long, default_value_t = 3600, value_name = "SECONDS")]
    timeout: u64,
    /// After forwarding SIGTERM/SIGINT/SIGHUP to the command, kill what still runs after this many seconds
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    kill_after: u64,
    /// Sleep a random number of seconds between 0 and this first
    #[arg(short, long, default_value_t = 0, value_name = "SECONDS")]
    random_sleep: u64,
    /// Do nothing (exit 0) if the same command is already running
    #[arg(short, long)]
    lock: bool,
    /// Where to say that the lock is busy
    #[arg(short = 'b', long, value_enum, default_value = "print-stdout")]
    lock_timeout_behaviour: LockBusyBehaviour,
    /// Accepted for compatibility (the lock is taken without waiting)
    #[arg(short, long, value_name = "SECONDS", hide = true)]
    wait_for_lock_timeout: Option<u64>,
    /// Source a file (see --load-env-file) in --shell before the command
    #[arg(short = 'e', long)]
    load_env: bool,
    /// File sourced by --load-env
    #[arg(short = 'f', long, value_name = "FILE")]
    load_env_file: Option<std::path::PathBuf>,
    /// Shell used by --load-env
    #[arg(short, long, default_value = "/bin/sh", value_name = "PATH")]
    shell: std::path::PathBuf,
    /// Run with this niceness increment
    #[arg(
        short,
        long,
        value_name = "N",
        allow_hyphen_values = true,
        conflicts_with = "low"
    )]
    nice: Option<i32>,
    /// Run with this I/O scheduling class (1 realtime, 2 best-effort, 3 idle)
    #[arg(short, long, value_name = "CLASS", value_parser = clap::value_parser!(u8).range(1..=3), conflicts_with = "low")]
    ionice: Option<u8>,
    /// Same as --nice 19 --ionice 3
    #[arg(long)]
    low: bool,
    /// Append the command's stdout and stderr to FILE (relative to RUNTIME/log; NULL discards)
    #[arg(long, value_name = "FILE")]
    log_capture_to: Option<String>,
    /// The path `cronwrap.sh` was started as: its directory selects the recorded
    /// module context loaded for the command
    #[arg(long, value_name = "PATH", hide = true)]
    invoked_as: Option<std::path::PathBuf>,
    /// The command and its arguments, passed as they are
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND", value_parser = clap::value_parser!(OsString))]
    command: Vec<OsString>,
}

#[derive(Debug, Args)]
struct LayersArgs {
    /// One `label home` line per layer
    #[arg(short, long, conflicts_with = "json")]
    raw: bool,
    /// A JSON array of {label, home, loaded, on_path}
    #[arg(long)]
    json: bool,
    /// Only loaded (yes) or not loaded (no) layers
    #[arg(short = 'm', long, value_enum)]
    loaded_filter: Option<LoadedFilter>,
    /// Explain discovery decisions on stderr
    #[arg(short, long)]
    debug: bool,
    /// Nothing to list is no failure (the historical `layers` exits 0 then)
    #[arg(long, hide = true)]
    empty_ok: bool,
}

/// Everything a command produces: stdout text and stderr messages, or a process to become.
struct Output {
    stdout: String,
    stderr: Vec<String>,
    exec: Option<ExecTarget>,
    /// Exit code when successful (a command run by `cronwrap` has its own).
    status: u8,
}

impl From<crate::daemon::cli::DaemonsOutput> for Output {
    fn from(output: crate::daemon::cli::DaemonsOutput) -> Self {
        Output {
            stdout: output.stdout,
            stderr: output.stderr,
            exec: None,
            status: output.status,
        }
    }
}

impl From<crate::inspect::Report> for Output {
    fn from(report: crate::inspect::Report) -> Self {
        Output {
            stdout: report.stdout,
            stderr: report.stderr,
            exec: None,
            status: report.status,
        }
    }
}

impl From<crate::plugin::cli::PluginOutput> for Output {
    fn from(output: crate::plugin::cli::PluginOutput) -> Self {
        Output {
            stdout: output.stdout,
            stderr: output.stderr,
            exec: None,
            status: output.status,
        }
    }
}

/// A command to replace mfenv with.
struct ExecTarget {
    command: Vec<OsString>,
    environment: ExecEnvironment,
}

/// Parses `args`, runs the command against `vars`, writes the results; returns the exit code.
pub fn main_with<I, T>(args: I, vars: Vec<(OsString, OsString)>) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let Some(name) = args.first().and_then(crate::legacy::historical_name) else {
        return run_cli(args, vars);
    };
    match crate::legacy::translate(name, &args) {
        crate::legacy::Translation::Run {
            args,
            errors_exit_1,
        } => match run_cli(args, vars) {
            0 => 0,
            _ if errors_exit_1 => 1,
            code => code,
        },
        crate::legacy::Translation::Exit(text, code) => match write_stdout(&text) {
            0 => code,
            failure => failure,
        },
    }
}

/// Runs mfenv's own command line; returns the exit code.
fn run_cli(args: Vec<OsString>, vars: Vec<(OsString, OsString)>) -> u8 {
    // Commands that end (or exec) within milliseconds allocate from the bump arena;
    // long-lived ones (daemons, cronwrap's wait, plugin builds) never do.
    const SHORT_COMMANDS: [&str; 9] = [
        "load",
        "unload",
        "exec",
        "layers",
        "is-installed",
        "is-loaded",
        "home",
        "why",
        "hook",
    ];
    if args
        .get(1)
        .and_then(|command| command.to_str())
        .is_some_and(|command| SHORT_COMMANDS.contains(&command))
    {
        crate::arena::enable();
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let err = hook_function(&vars)
                .and_then(|function| parse_error_as_function(function, &args))
                .unwrap_or(err);
            let _ = err.print();
            return if err.use_stderr() { 2 } else { 0 };
        }
    };
    // The facts of this invocation, read once and passed down (module `invocation`).
    let invocation = Invocation::new(Env::from_os(vars));
    let env = invocation.env();
    let color = invocation.stderr_is_terminal() && env.get("NO_COLOR").is_none_or(str::is_empty);
    let code = prints_code(&cli.command);
    match run(cli, &invocation) {
        Ok(output) => {
            write_stderr(&output.stderr);
            match output.exec {
                Some(target) => exec_command(target, color),
                None => {
                    let written = match code {
                        Some(_) if env.get(HOOK_VARIABLE).is_some() => {
                            let mut text =
                                String::with_capacity(CODE_MARKER.len() + output.stdout.len());
                            text.push_str(CODE_MARKER);
                            text.push_str(&output.stdout);
                            write_stdout(&text)
                        }
                        Some((function, subcommand)) => {
                            if invocation.stdout_is_terminal() {
                                write_stderr(&[code_hint(function, subcommand)]);
                            }
                            write_stdout(&output.stdout)
                        }
                        None => write_stdout(&output.stdout),
                    };
                    match written {
                        0 => output.status,
                        failure => failure,
                    }
                }
            }
        }
        Err((error, messages)) => {
            write_stderr(&messages);
            let _ = io::stderr().write_all(&crate::env::bytes::encode(&error.render(color)));
            error.exit_code()
        }
    }
}

/// The hook function and the subcommand of a command whose output is shell code; `None`
/// when it is text (help, a plan, a listing), which the hook shows and never evaluates.
fn prints_code(command: &Command) -> Option<(&'static str, &'static str)> {
    match command {
        Command::Load(args) if !args.common.dry_run => Some((
            if args.dont_load_optional {
                "layer_load_without_optional"
            } else {
                "layer_load"
            },
            "load",
        )),
        Command::Unload(args) if !args.common.dry_run => Some(("layer_unload", "unload")),
        Command::Plugin(PluginCommand::Env { .. }) => Some(("plugin_env", "plugin env")),
        Command::Collection(CollectionCommand::Restore { common, .. }) if !common.dry_run => {
            Some(("layer_restore", "collection restore"))
        }
        _ => None,
    }
}

/// Said on stderr when shell code is printed to a terminal, where nothing evaluates it.
fn code_hint(function: &str, subcommand: &str) -> String {
    format!(
        "mfenv: hint: this is shell code, nothing was changed: use `{function}` (see \
         `mfenv hook --help`) or `eval \"$(mfenv {subcommand} …)\"`"
    )
}

/// The name of the hook function that runs this mfenv, from [`HOOK_VARIABLE`], when it is
/// a function name.
fn hook_function(vars: &[(OsString, OsString)]) -> Option<&str> {
    let (_, value) = vars.iter().rev().find(|(name, _)| name == HOOK_VARIABLE)?;
    let value = value.to_str()?;
    let is_name = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    (!value.is_empty() && value.bytes().all(is_name)).then_some(value)
}

/// The parse error (or help, or version) of `args` as the hook function `function` says
/// it: its name in the usage line and the help, without the `--shell` the function
/// passes itself. `None` when `args` does not name a subcommand.
fn parse_error_as_function(function: &str, args: &[OsString]) -> Option<clap::Error> {
    let root = Cli::command();
    let mut command = &root;
    let mut depth = 1;
    while let Some(found) = args
        .get(depth)
        .and_then(|word| word.to_str())
        .and_then(|word| command.find_subcommand(word))
    {
        command = found;
        depth += 1;
    }
    if depth == 1 {
        return None;
    }
    let mut command = command.clone();
    if command.get_arguments().any(|arg| arg.get_id() == "shell") {
        command = command.mut_arg("shell", |arg| arg.hide(true));
    }
    // clap takes command names as static strings; the process ends after printing.
    let name: &'static str = Box::leak(function.to_owned().into_boxed_str());
    let command = command
        .name(name)
        .display_name("mfenv")
        .version(env!("CARGO_PKG_VERSION"));
    let words = std::iter::once(OsString::from(function)).chain(args[depth..].iter().cloned());
    clap::Command::new("mfenv")
        .no_binary_name(true)
        .args_override_self(true)
        .max_term_width(100)
        .subcommand(command)
        .try_get_matches_from(words)
        .err()
}

fn write_stderr(messages: &[String]) {
    if messages.is_empty() {
        return;
    }
    let mut text = String::new();
    for message in messages {
        text.push_str(message);
        text.push('\n');
    }
    let _ = io::stderr().write_all(&crate::env::bytes::encode(&text));
}

/// Writes stdout in one go. A closed pipe is a quiet success.
fn write_stdout(text: &str) -> u8 {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(&crate::env::bytes::encode(text))
        .and_then(|()| stdout.flush())
    {
        Ok(()) => 0,
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(err) => {
            let _ = writeln!(io::stderr(), "mfenv: error: cannot write the output: {err}");
            1
        }
    }
}

type Failure = (Error, Vec<String>);

fn run(cli: Cli, inv: &Invocation) -> std::result::Result<Output, Failure> {
    let env = inv.env();
    // Commands that build variable names, labels or paths from the module name.
    if matches!(
        cli.command,
        Command::Plugin(_) | Command::Cron(_) | Command::Daemons(_) | Command::Cronwrap(_)
    ) {
        crate::context::ModuleContext::validate(env).map_err(|error| (error, Vec::new()))?;
    }
    match cli.command {
        Command::Load(args) => {
            let requests = requests(Action::Load, &args.layers);
            let options = TransactionOptions {
                load_optional: !args.dont_load_optional,
                force_prepend: args.force_prepend,
                source_profiles: ShellKind::from(args.common.shell).sources_profiles(),
                want_changes: args.common.dry_run,
            };
            run_transaction(inv, &args.common, false, &requests, options)
        }
        Command::Unload(args) => {
            let requests = requests(Action::Unload, &args.layers);
            let options = TransactionOptions {
                source_profiles: ShellKind::from(args.common.shell).sources_profiles(),
                want_changes: args.common.dry_run,
                ..TransactionOptions::default()
            };
            run_transaction(inv, &args.common, args.all, &requests, options)
        }
        Command::Exec(args) => exec(inv, args),
        Command::Cronwrap(args) => cronwrap(inv, args).map_err(|error| (error, Vec::new())),
        Command::Plugin(PluginCommand::Env { name, shell, exit }) => {
            plugin_env(inv, name.as_deref(), shell, exit).map_err(|error| (error, Vec::new()))
        }
        Command::Plugin(PluginCommand::Wrapper {
            target,
            cwd,
            empty,
            command,
        }) => plugin_wrapper(inv, &target, cwd, empty, command),
        Command::Daemons(command) => crate::daemon::cli::run(command, inv)
            .map(Output::from)
            .map_err(|error| (error, Vec::new())),
        Command::Cron(command) => crate::plugin::cli::run_cron(command, inv)
            .map(Output::from)
            .map_err(|error| (error, Vec::new())),
        Command::Plugin(command) => crate::plugin::cli::run(command, inv)
            .map(Output::from)
            .map_err(|error| (error, Vec::new())),
        Command::Why { variables, json } => {
            let mut engine = Engine::new(env, inv.module(), false);
            let reports = engine
                .why(&variables)
                .map_err(|error| (error, Vec::new()))?;
            Ok(stdout_only(if json {
                let mut text =
                    serde_json::to_string_pretty(&reports).expect("reports always serialize");
                text.push('\n');
                text
            } else {
                render_why(&reports)
            }))
        }
        Command::Layers(args) => layers(inv, &args),
        Command::Collection(command) => collection(inv, command),
        Command::IsInstalled { layer } => {
            let mut engine = Engine::new(env, inv.module(), false);
            // As layerapi2: a home with a label file is installed, even if that label
            // is unusable (its layer is reported and skipped elsewhere).
            let installed = match engine.catalog().find(&LayerRef::parse(&layer)) {
                Ok(found) => found.is_some(),
                Err(_) => true,
            };
            Ok(stdout_only(format!("{}\n", u8::from(installed))))
        }
        Command::IsLoaded { layer } => {
            let mut engine = Engine::new(env, inv.module(), false);
            let loaded = engine.is_loaded(&LayerRef::parse(&layer)).unwrap_or(false);
            Ok(stdout_only(format!("{}\n", u8::from(loaded))))
        }
        Command::Home { label } => {
            let mut engine = Engine::new(env, inv.module(), false);
            match engine.catalog().find_label(&label) {
                Some(id) => Ok(stdout_only(format!(
                    "{}\n",
                    engine.catalog().layer(id).home
                ))),
                None => {
                    let labels = engine.catalog().labels();
                    let close = crate::layer::resolve::closest_labels(&label, &labels);
                    let mut error = Error::new(
                        ErrorKind::LayerNotFound,
                        format!("no layer with the label `{label}`"),
                    );
                    if !close.is_empty() {
                        let list: Vec<String> = close.iter().map(|l| format!("`{l}`")).collect();
                        error = error.with_hint(format!("did you mean {}?", list.join(" or ")));
                    }
                    Err((error, Vec::new()))
                }
            }
        }
        Command::Hook { shell } => {
            let binary = inv.required_binary().map_err(|error| (error, Vec::new()))?;
            let Some(binary) = binary.to_str() else {
                return Err((
                    Error::new(
                        ErrorKind::Io,
                        format!(
                            "the path of the mfenv binary is not UTF-8: `{}`",
                            binary.display()
                        ),
                    ),
                    Vec::new(),
                ));
            };
            Ok(stdout_only(ShellKind::from(shell).hook(binary)))
        }
        Command::InstallAliases { dir, force } => {
            install_aliases(inv, &dir, force).map_err(|error| (error, Vec::new()))
        }
        Command::Completions { shell } => Ok(stdout_only(completion_script(shell))),
        Command::Man(args) => crate::inspect::man::run(&args, Cli::command(), inv)
            .map(Output::from)
            .map_err(|error| (error, Vec::new())),
        Command::Provides { command, json } => {
            crate::inspect::lookup::provides(inv, &command, json)
                .map(Output::from)
                .map_err(|error| (error, Vec::new()))
        }
        Command::Search { words, json } => crate::inspect::lookup::search(inv, &words, json)
            .map(Output::from)
            .map_err(|error| (error, Vec::new())),
        Command::Doctor { json } => crate::inspect::doctor::run(inv, json)
            .map(Output::from)
            .map_err(|error| (error, Vec::new())),
        Command::Complete { what, prefix } => {
            let mut engine = Engine::new(env, inv.module(), false);
            let labels: Vec<String> = match what {
                CompleteWhat::Installed | CompleteWhat::Labels => engine.catalog().labels(),
                CompleteWhat::Plugins => crate::plugin::cli::installed_names(inv),
                CompleteWhat::Collections => {
                    crate::collection::list(env, inv.fallback_home()).unwrap_or_default()
                }
                CompleteWhat::Loaded => {
                    let loaded = engine.loaded_layers().unwrap_or_default();
                    loaded
                        .into_iter()
                        .map(|id| engine.catalog().layer(id).label.clone())
                        .collect()
                }
            };
            let labels = match what {
                CompleteWhat::Installed | CompleteWhat::Loaded => with_short_names(labels),
                _ => labels,
            };
            let mut seen = std::collections::BTreeSet::new();
            let mut out = String::new();
            for label in labels {
                if label.starts_with(&prefix) && !label.contains('\n') && seen.insert(label.clone())
                {
                    out.push_str(&label);
                    out.push('\n');
                }
            }
            Ok(stdout_only(out))
        }
    }
}

/// mfenv's own completion script: clap's, plus completion of layer labels (installed
/// ones for load, exec -l, is-installed, is-loaded, home; loaded ones for unload).
fn completion_script(shell: CompletionShell) -> String {
    let mut command = Cli::command();
    let mut buffer = Vec::new();
    let generator = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "mfenv", &mut buffer);
    let generated = String::from_utf8_lossy(&buffer).into_owned();
    match shell {
        CompletionShell::Bash => generated + include_str!("../shell/completions-extra.bash"),
        CompletionShell::Fish => generated + include_str!("../shell/completions-extra.fish"),
        CompletionShell::Zsh => {
            let mut out = String::with_capacity(generated.len() + 1024);
            for (index, line) in generated.lines().enumerate() {
                let loaded =
                    line.contains("::layers -- Layer labels or absolute layer homes, unloaded");
                let collection = line.contains(":name -- Collection name");
                let installed = line
                    .contains("::layers -- Layer labels or absolute layer homes, loaded")
                    || line.contains("]:LAYERS:_default'");
                let exact = line.contains(":layer -- A layer label")
                    || line.contains(":label -- A layer label");
                if collection {
                    out.push_str(&line.replace(":_default'", ":_mfenv_complete_collections'"));
                } else if loaded {
                    out.push_str(&line.replace(":_default'", ":_mfenv_complete_loaded'"));
                } else if exact {
                    out.push_str(&line.replace(":_default'", ":_mfenv_complete_labels'"));
                } else if installed {
                    out.push_str(&line.replace(":_default'", ":_mfenv_complete_installed'"));
                } else {
                    out.push_str(line);
                }
                out.push('\n');
                if index == 0 {
                    out.push_str(include_str!("../shell/completions-extra.zsh"));
                }
            }
            out
        }
    }
}

fn cronwrap(inv: &Invocation, args: CronwrapArgs) -> crate::error::Result<Output> {
    let env = inv.env();
    let home = inv.home();
    let mut environment = Vec::new();
    let mut job_env = None;
    if let Some(invoked_as) = &args.invoked_as {
        let variables = cronwrap_context(inv, &home, invoked_as)?;
        let mut merged = env.clone();
        for (name, value) in &variables {
            merged.set(name, value);
        }
        environment = variables.into_iter().collect();
        job_env = Some(merged);
    }
    let env = job_env.as_ref().unwrap_or(env);
    let context = inv.context_for(env);
    let (nice, ionice_class) = if args.low {
        (Some(19), Some(3))
    } else {
        (args.nice, args.ionice)
    };
    let request = crate::cronwrap::CronwrapRequest {
        command: args.command,
        timeout: args.timeout,
        random_sleep: args.random_sleep,
        kill_after: crate::seconds::from_u64(args.kill_after),
        lock: args.lock,
        lock_busy_message: match args.lock_timeout_behaviour {
            LockBusyBehaviour::PrintStdout => crate::cronwrap::LockBusyMessage::Stdout,
            LockBusyBehaviour::PrintStderr => crate::cronwrap::LockBusyMessage::Stderr,
            LockBusyBehaviour::Nothing => crate::cronwrap::LockBusyMessage::Nothing,
        },
        load_env: args
            .load_env
            .then(|| args.load_env_file.unwrap_or_else(|| home.join(".bashrc"))),
        shell: args.shell,
        nice,
        ionice_class,
        log_file: args
            .log_capture_to
            .map(|name| crate::cronwrap::log_file_for(&name, &context.runtime_home.join("log"))),
        lock_dir: context.runtime_home.join("tmp"),
        environment,
    };
    let status = crate::cronwrap::run(&request)?;
    Ok(Output {
        stdout: String::new(),
        stderr: Vec::new(),
        exec: None,
        status,
    })
}

/// The variables that `cronwrap.sh`, started as `invoked_as`, sets for its command: the
/// module context recorded for its directory (see [`crate::plugin::cron_context`]).
fn cronwrap_context(
    inv: &Invocation,
    home: &std::path::Path,
    invoked_as: &std::path::Path,
) -> crate::error::Result<std::collections::BTreeMap<String, String>> {
    let env = inv.env();
    // A bare name was found through PATH, a relative one from the current directory.
    let script = if invoked_as.components().count() == 1 {
        which::which_in(invoked_as, env.get("PATH"), std::path::Path::new("/"))
            .unwrap_or_else(|_| invoked_as.to_owned())
    } else if invoked_as.is_relative() {
        inv.cwd()
            .map(|dir| dir.join(invoked_as))
            .unwrap_or_else(|_| invoked_as.to_owned())
    } else {
        invoked_as.to_owned()
    };
    let dir = script.parent().unwrap_or(std::path::Path::new("/"));
    let binary_dir = inv.binary().and_then(std::path::Path::parent);
    match crate::plugin::cron_context::job_environment(env, home, dir, binary_dir)? {
        Some(variables) => Ok(variables),
        None => {
            let _ = writeln!(
                io::stderr(),
                "mfenv: warning: no module context recorded for `{}` in `{}`: the command runs without it (run `mfenv cron install` in the module environment)",
                script.display(),
                home.join(crate::plugin::cron_context::RECORDS_DIR)
                    .display()
            );
            Ok(std::collections::BTreeMap::new())
        }
    }
}

fn install_aliases(
    inv: &Invocation,
    dir: &std::path::Path,
    force: bool,
) -> crate::error::Result<Output> {
    let binary = inv.required_binary()?;
    // Check every name before creating anything: all the links, or none.
    let mut to_create = Vec::new();
    for name in crate::legacy::NAMES {
        let link = dir.join(name);
        match std::fs::symlink_metadata(&link) {
            Err(_) => to_create.push((link, false)),
            Ok(existing) => {
                let ours = existing.file_type().is_symlink()
                    && std::fs::read_link(&link).is_ok_and(|target| target == binary);
                if ours {
                    continue;
                }
                if !force {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!("`{}` already exists", link.display()),
                    )
                    .with_hint("pass `--force` to replace it"));
                }
                to_create.push((link, true));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|err| Error::io("cannot create", dir, &err))?;
    for (link, replace) in &to_create {
        if *replace {
            std::fs::remove_file(link).map_err(|err| Error::io("cannot remove", link, &err))?;
        }
        std::os::unix::fs::symlink(binary, link)
            .map_err(|err| Error::io("cannot create the symlink", link, &err))?;
    }
    let mut out = String::new();
    for name in crate::legacy::NAMES {
        out.push_str(&format!("{}\n", dir.join(name).display()));
    }
    Ok(stdout_only(out))
}

fn stdout_only(stdout: String) -> Output {
    Output {
        stdout,
        stderr: Vec::new(),
        exec: None,
        status: 0,
    }
}

/// Splits `-l` values on commas; empty elements are skipped, `-x` is optional `x`.
fn layer_list(values: &[String]) -> Vec<(LayerRef, bool)> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .filter_map(|element| match element.strip_prefix('-') {
            Some(rest) => {
                let rest = rest.trim();
                (!rest.is_empty()).then(|| (LayerRef::parse(rest), true))
            }
            None => Some((LayerRef::parse(element), false)),
        })
        .collect()
}

fn exec(inv: &Invocation, args: ExecArgs) -> std::result::Result<Output, Failure> {
    let env = inv.env();
    let mut prepend_env = Vec::new();
    for entry in &args.prepend_env {
        let parts: Vec<&str> = entry.trim().split(',').collect();
        match parts.as_slice() {
            [variable, value] if crate::layer::model::is_valid_variable_name(variable) => {
                prepend_env.push(((*variable).to_owned(), (*value).to_owned()));
            }
            _ => {
                return Err((
                    Error::new(
                        ErrorKind::Usage,
                        format!("bad --prepend-env value `{entry}`"),
                    )
                    .with_hint("use `VAR,VALUE`, e.g. `-p PATH,/opt/tools/bin`"),
                    Vec::new(),
                ));
            }
        }
    }
    let keeps: Vec<String> = args
        .empty_env_keeps
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(prefix) = &args.extra_env_prefix
        && !crate::layer::model::is_valid_variable_name(prefix)
    {
        return Err((
            Error::new(
                ErrorKind::Usage,
                format!("bad --extra-env-prefix value `{prefix}`"),
            )
            .with_hint("the prefix must be a variable name, e.g. `-x TOOLS` for TOOLS_NAME, TOOLS_LABEL and TOOLS_DIR"),
            Vec::new(),
        ));
    }
    let request = ExecRequest {
        layers: layer_list(&args.layers),
        empty: args.empty,
        empty_env: args.empty_env.then_some(keeps),
        load_optional: !args.dont_load_optional,
        force_prepend: args.force_prepend,
        cwd: args.cwd,
        extra_env_prefix: args.extra_env_prefix.clone(),
        prepend_env,
        settings: Vec::new(),
    };
    let mut engine = Engine::new(env, inv.module(), args.debug);
    exec_output(&mut engine, &request, args.command, args.debug, Vec::new())
}

/// Computes the environment of `request` and returns the command to become, or the
/// failures of the mandatory layers (the command is then not run).
fn exec_output(
    engine: &mut Engine<'_>,
    request: &ExecRequest,
    command: Vec<OsString>,
    debug: bool,
    mut messages: Vec<String>,
) -> std::result::Result<Output, Failure> {
    let result = engine.exec_environment(request);
    messages.extend(if debug {
        debug_lines(engine.debug_messages())
    } else {
        Vec::new()
    });
    let environment = result.map_err(|error| (error, messages.clone()))?;
    if let Some(first) = environment.failures.first() {
        let count = environment.failures.len();
        let mut error = Error::new(
            first.kind(),
            format!(
                "not running `{}`: {count} layer{} failed to load",
                command[0].to_string_lossy(),
                if count == 1 { "" } else { "s" }
            ),
        );
        for failure in &environment.failures {
            error = error.caused_by(failure.message().to_owned());
            for cause in failure.causes() {
                error = error.caused_by(cause.clone());
            }
        }
        if let Some(hint) = environment.failures.iter().find_map(|f| f.hint()) {
            error = error.with_hint(hint.to_owned());
        }
        return Err((error, messages));
    }
    Ok(Output {
        stdout: String::new(),
        stderr: messages,
        exec: Some(ExecTarget {
            command,
            environment,
        }),
        status: 0,
    })
}

/// The plugin layer of `plugin` and the settings of its environment (reference C7).
fn plugin_layer_settings(
    env: &Env,
    engine: &mut Engine<'_>,
    context: &crate::context::ModuleContext,
    plugin: LocatedPlugin,
) -> crate::error::Result<(LayerRef, Vec<crate::env::diff::Setting>, Vec<String>)> {
    let given_home = plugin.home.to_string_lossy().into_owned();
    let reference = LayerRef::Home(given_home.clone());
    let Some(id) = engine.catalog().find(&reference)? else {
        return Err(Error::new(
            ErrorKind::LayerNotFound,
            format!("`{given_home}` is not a layer"),
        ));
    };
    let home = engine.catalog().layer(id).home.clone();
    let configuration = crate::plugin::cli::configuration_of(env);
    let find_home = |name: &str| {
        crate::plugin::environment::installed_home(context, name)
            .map(|home| home.to_string_lossy().into_owned())
    };
    let inputs = crate::plugin::cli::environment_inputs(env, context, &configuration, &find_home);
    let identity = crate::plugin::environment::PluginIdentity {
        label: context.plugin_label(&plugin.name),
        name: plugin.name,
        home: home.clone(),
    };
    let environment = crate::plugin::environment::plugin_environment(&inputs, &identity)?;
    Ok((
        LayerRef::Home(home),
        environment.settings(),
        environment.warnings,
    ))
}

/// `mfenv plugin env`: the plugin layer and environment loaded as one transaction, or
/// (`--exit`) the current plugin's layer unloaded.
fn plugin_env(
    inv: &Invocation,
    name: Option<&str>,
    shell: ShellArg,
    exit: bool,
) -> crate::error::Result<Output> {
    let env = inv.env();
    let context = inv.module();
    let shell_kind = ShellKind::from(shell);
    let options = TransactionOptions {
        source_profiles: shell_kind.sources_profiles(),
        ..TransactionOptions::default()
    };
    let mut engine = Engine::new(env, inv.module(), false);
    if exit {
        let variable = format!("{}_CURRENT_PLUGIN_DIR", context.module);
        let Some(home) = env.get(&variable).filter(|value| !value.is_empty()) else {
            return Err(
                Error::new(ErrorKind::Usage, "not inside a plugin environment")
                    .caused_by(format!("`{variable}` is not set")),
            );
        };
        let request = Request {
            action: Action::Unload,
            layer: LayerRef::Home(home.to_owned()),
        };
        let transaction = engine.transaction(&[request], options)?;
        let mut output = stdout_only(shell_kind.render(&transaction.ops));
        if !quiet_by_env(env) {
            output.stderr = announcements(&transaction.steps);
        }
        return Ok(output);
    }
    let plugin = match name {
        Some(name) => match crate::plugin::cli::locate(inv, name)? {
            Some(plugin) => plugin,
            None => return Err(crate::plugin::cli::not_installed_error(context, name)),
        },
        None => match crate::plugin::cli::current_plugin_dir(inv)? {
            Some(plugin) => plugin,
            None => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "usage: plugin_env PLUGIN_NAME or plugin_env (inside a plugin dir)",
                ));
            }
        },
    };
    let (reference, settings, warnings) = plugin_layer_settings(env, &mut engine, context, plugin)?;
    let transaction = engine.load_with_settings(&reference, settings, options)?;
    let mut warnings = warnings;
    if !quiet_by_env(env) {
        warnings.extend(announcements(&transaction.steps));
    }
    Ok(Output {
        stdout: shell_kind.render(&transaction.ops),
        stderr: warnings,
        exec: None,
        status: 0,
    })
}

/// `mfenv plugin wrapper`: `mfenv exec` of the plugin layer with the plugin environment.
fn plugin_wrapper(
    inv: &Invocation,
    target: &str,
    cwd: bool,
    empty: bool,
    command: Vec<OsString>,
) -> std::result::Result<Output, Failure> {
    let env = inv.env();
    let context = inv.module();
    let mut engine = Engine::new(env, context, false);
    let prepared = crate::plugin::cli::locate(inv, target).and_then(|plugin| {
        let Some(plugin) = plugin else {
            return Err(Error::new(
                ErrorKind::LayerNotFound,
                format!("the plugin `{target}` does not seem to be installed/available"),
            )
            .with_hint("`mfenv plugin list` shows the installed plugins; a plugin directory can be given by its path"));
        };
        plugin_layer_settings(env, &mut engine, context, plugin)
    });
    let (reference, settings, warnings) = prepared.map_err(|error| (error, Vec::new()))?;
    let request = ExecRequest {
        layers: vec![(reference, false)],
        empty,
        empty_env: None,
        load_optional: true,
        force_prepend: false,
        cwd,
        extra_env_prefix: None,
        prepend_env: Vec::new(),
        settings,
    };
    exec_output(&mut engine, &request, command, false, warnings)
}

/// Replaces this process with the command; returns only on failure (126 or 127).
fn exec_command(target: ExecTarget, color: bool) -> u8 {
    use crate::env::bytes::to_os;
    use std::os::unix::process::CommandExt;
    let program = &target.command[0];
    let mut command = std::process::Command::new(program);
    command.args(&target.command[1..]);
    let environment = &target.environment;
    // Values go back to the bytes they stand for (see `env::bytes`).
    if environment.cleared {
        command.env_clear();
        for (name, value) in environment.env.vars() {
            command.env(name, to_os(value));
        }
    } else {
        for change in &environment.changes {
            match &change.after {
                Some(value) => command.env(&change.name, to_os(value)),
                None => command.env_remove(&change.name),
            };
        }
    }
    if let Some(cwd) = &environment.cwd
        && crate::env::bytes::to_path(cwd).is_dir()
    {
        command.current_dir(crate::env::bytes::to_path(cwd));
    }
    // A daemon handed a socket by the supervisor: this exec keeps the pid, so the
    // command's `LISTEN_PID` is this process's (module `daemon::sockets`).
    if std::env::var_os(crate::daemon::sockets::LISTEN_PID_REQUEST).is_some() {
        command
            .env_remove(crate::daemon::sockets::LISTEN_PID_REQUEST)
            .env("LISTEN_PID", std::process::id().to_string());
    }
    let error = command.exec();
    let (code, reason) = match error.kind() {
        io::ErrorKind::NotFound => (127, "command not found".to_owned()),
        _ => (126, crate::error::io_reason(&error)),
    };
    let error = Error::new(
        ErrorKind::Io,
        format!("cannot run `{}`", program.to_string_lossy()),
    )
    .caused_by(reason);
    let _ = io::stderr().write_all(error.render(color).as_bytes());
    code
}

fn requests(action: Action, layers: &[String]) -> Vec<Request> {
    layers
        .iter()
        .map(|layer| Request {
            action,
            layer: LayerRef::parse(layer),
        })
        .collect()
}

fn debug_lines(messages: Vec<String>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| format!("mfenv: debug: {}", crate::error::printable(&m)))
        .collect()
}

fn run_transaction(
    inv: &Invocation,
    common: &ShellOptions,
    purge: bool,
    requests: &[Request],
    options: TransactionOptions,
) -> std::result::Result<Output, Failure> {
    let env = inv.env();
    let mut engine = Engine::new(env, inv.module(), common.debug);
    let result = if purge {
        engine.purge_then(requests, options)
    } else {
        engine.transaction(requests, options)
    };
    let messages = if common.debug {
        debug_lines(engine.debug_messages())
    } else {
        Vec::new()
    };
    let transaction = result.map_err(|error| (error, messages.clone()))?;
    transaction_output(env, common, &transaction, messages)
}

/// What `load`, `unload` and `collection restore` print for a planned transaction:
/// code (or the plan), and the announcements of the layers unloaded along the way.
fn transaction_output(
    env: &Env,
    common: &ShellOptions,
    transaction: &Transaction,
    mut messages: Vec<String>,
) -> std::result::Result<Output, Failure> {
    if !common.quiet && !common.dry_run {
        let lines = announcements(&transaction.steps);
        if !lines.is_empty() && !quiet_by_env(env) {
            messages.extend(lines);
        }
    }
    let stdout = if common.json {
        plan_json(transaction)
    } else if common.dry_run {
        render_plan(transaction)
    } else {
        ShellKind::from(common.shell).render(&transaction.ops)
    };
    Ok(Output {
        stdout,
        stderr: messages,
        exec: None,
        status: 0,
    })
}

/// `mfenv collection …`.
fn collection(
    inv: &Invocation,
    command: CollectionCommand,
) -> std::result::Result<Output, Failure> {
    let env = inv.env();
    let home = inv.fallback_home();
    use crate::collection::{self as collections, DEFAULT_NAME};
    let failure = |error: Error| (error, Vec::new());
    let message = |text: String| Output {
        stdout: String::new(),
        stderr: vec![crate::error::printable(&text).into_owned()],
        exec: None,
        status: 0,
    };
    let shown = |path: &std::path::Path| {
        use std::os::unix::ffi::OsStrExt;
        crate::env::bytes::decode(path.as_os_str().as_bytes()).into_owned()
    };
    match command {
        CollectionCommand::Save { name } => {
            let name = name.as_deref().unwrap_or(DEFAULT_NAME);
            let mut engine = Engine::new(env, inv.module(), false);
            let labels = engine.loaded_labels().map_err(failure)?;
            let path = collections::save(env, home, name, &labels).map_err(failure)?;
            Ok(message(format!(
                "mfenv: saved {} layer(s) as the collection `{name}` in `{}`",
                labels.len(),
                shown(&path)
            )))
        }
        CollectionCommand::Restore { name, common } => {
            let name = name.as_deref().unwrap_or(DEFAULT_NAME);
            let context = format!("cannot restore the collection `{name}`");
            let labels = collections::read(env, home, name).map_err(failure)?;
            let options = TransactionOptions {
                source_profiles: ShellKind::from(common.shell).sources_profiles(),
                want_changes: common.dry_run,
                ..TransactionOptions::default()
            };
            let mut engine = Engine::new(env, inv.module(), common.debug);
            let result = engine.restore(&labels, options);
            let messages = if common.debug {
                debug_lines(engine.debug_messages())
            } else {
                Vec::new()
            };
            let transaction = result.map_err(|error| (error.context(context), messages.clone()))?;
            transaction_output(env, &common, &transaction, messages)
        }
        CollectionCommand::List => {
            let names = collections::list(env, home).map_err(failure)?;
            let mut out = String::new();
            for name in names {
                out.push_str(&name);
                out.push('\n');
            }
            Ok(stdout_only(out))
        }
        CollectionCommand::Show { name } => {
            let name = name.as_deref().unwrap_or(DEFAULT_NAME);
            let labels = collections::read(env, home, name).map_err(failure)?;
            let mut out = String::new();
            for label in labels {
                out.push_str(&label);
                out.push('\n');
            }
            Ok(stdout_only(out))
        }
        CollectionCommand::Remove { name } => {
            let path = collections::remove(env, home, &name).map_err(failure)?;
            Ok(message(format!(
                "mfenv: removed the collection `{name}` (`{}`)",
                shown(&path)
            )))
        }
    }
}

/// `MFENV_QUIET` set to anything but empty or `0` silences the announcements.
fn quiet_by_env(env: &Env) -> bool {
    env.get("MFENV_QUIET")
        .is_some_and(|value| !value.is_empty() && value != "0")
}

/// One stderr line per layer that a transaction unloads or replaces without being
/// asked to (a conflict, a lost dependency), saying why.
fn announcements(steps: &[PlannedStep]) -> Vec<String> {
    let mut lines = Vec::new();
    for step in steps.iter().filter(|step| step.action == Action::Unload) {
        let Some(other) = &step.because_of else {
            continue;
        };
        let line = match step.reason {
            Reason::ConflictsWith(_) => format!(
                "mfenv: automatically replacing `{}` with `{other}` (they conflict)",
                step.label
            ),
            Reason::LostDependency(_) => format!(
                "mfenv: automatically unloading `{}` (it needs `{other}`, which is unloaded)",
                step.label
            ),
            _ => continue,
        };
        lines.push(crate::error::printable(&line).into_owned());
    }
    lines
}

fn layers(inv: &Invocation, args: &LayersArgs) -> std::result::Result<Output, Failure> {
    let env = inv.env();
    let mut engine = Engine::new(env, inv.module(), args.debug);
    let rows = engine.layers();
    let problems = engine.path_problems();
    if rows.is_empty() && !problems.is_empty() && !args.empty_ok {
        let mut error = Error::new(
            ErrorKind::LayerNotFound,
            "no layer found through `LAYERAPI2_LAYERS_PATH`",
        );
        for problem in &problems {
            error = error.caused_by(problem.clone());
        }
        let error = error.with_hint(
            "set `LAYERAPI2_LAYERS_PATH` to the directories holding the layers (each entry a layer or a directory of layers)",
        );
        let messages = if args.debug {
            debug_lines(engine.debug_messages())
        } else {
            Vec::new()
        };
        return Err((error, messages));
    }
    let rows = rows.into_iter().filter(|row| match args.loaded_filter {
        None => true,
        Some(LoadedFilter::Yes) => row.loaded,
        Some(LoadedFilter::No) => !row.loaded,
    });
    let mut out = String::new();
    if args.json {
        let items: Vec<serde_json::Value> = rows
            .map(|row| {
                serde_json::json!({"label": row.label, "home": row.home, "loaded": row.loaded, "on_path": row.on_path})
            })
            .collect();
        out = serde_json::to_string_pretty(&items).expect("JSON values always serialize");
        out.push('\n');
    } else {
        for row in rows {
            if args.raw {
                out.push_str(&format!("{} {}\n", row.label, row.home));
            } else if !row.on_path {
                out.push_str(&format!(
                    "- (*) {} [{}] (not on the layers path)\n",
                    row.label, row.home
                ));
            } else if row.loaded {
                out.push_str(&format!("- (*) {} [{}]\n", row.label, row.home));
            } else {
                out.push_str(&format!("- {} [{}]\n", row.label, row.home));
            }
        }
    }
    let mut stderr: Vec<String> = problems
        .iter()
        .map(|problem| crate::error::printable(&format!("mfenv: warning: {problem}")).into_owned())
        .collect();
    if args.debug {
        stderr.extend(debug_lines(engine.debug_messages()));
    } else {
        stderr.extend(engine.catalog().broken().iter().map(|b| {
            crate::error::printable(&format!(
                "mfenv: warning: `{}` is not a usable layer: {}",
                b.home, b.reason
            ))
            .into_owned()
        }));
    }
    Ok(Output {
        stdout: out,
        stderr,
        exec: None,
        status: 0,
    })
}

/// `mfenv why` for a human.
fn render_why(reports: &[WhyReport]) -> String {
    let mut out = String::new();
    for report in reports {
        match report {
            WhyReport::PathList {
                variable,
                set,
                entries,
            } => {
                out.push_str(variable);
                if !set {
                    out.push_str(" (unset)");
                }
                out.push('\n');
                let width = entries
                    .iter()
                    .map(|e| e.entry.chars().count())
                    .max()
                    .unwrap_or(0);
                for entry in entries {
                    let owner = match (&entry.layer, entry.moved) {
                        (Some(label), false) => label.clone(),
                        (Some(label), true) => {
                            format!("{label} (was already there, moved to the front)")
                        }
                        (None, _) => "not from a layer".to_owned(),
                    };
                    let shown = if entry.entry.is_empty() {
                        "(empty: current directory)"
                    } else {
                        &entry.entry
                    };
                    out.push_str(&format!("  {shown:<width$}  {owner}\n"));
                }
            }
            WhyReport::Value {
                variable,
                value,
                set_by,
                replaced,
                changed_since,
            } => {
                let shown = match value {
                    Some(value) => format!("{value:?}"),
                    None => "(unset)".to_owned(),
                };
                out.push_str(&format!("{variable} = {shown}\n"));
                match set_by {
                    Some(label) => {
                        out.push_str(&format!("  set by {label}"));
                        match replaced {
                            Some(Some(previous)) => {
                                out.push_str(&format!(", replacing {previous:?}"))
                            }
                            Some(None) => out.push_str(", was unset before"),
                            None => {}
                        }
                        if *changed_since {
                            out.push_str("; changed since");
                        }
                        out.push('\n');
                    }
                    None => out.push_str("  not from a layer\n"),
                }
            }
        }
    }
    out
}

/// The `--dry-run --json` report.
fn plan_json(transaction: &Transaction) -> String {
    let steps: Vec<serde_json::Value> = transaction
        .steps
        .iter()
        .map(|step| {
            let (reason, because_of) = match step.reason {
                Reason::Requested => ("requested", None),
                Reason::DependencyOf(_) => ("dependency", step.because_of.as_deref()),
                Reason::OptionalDependencyOf(_) => {
                    ("optional_dependency", step.because_of.as_deref())
                }
                Reason::ConflictsWith(_) => ("conflict", step.because_of.as_deref()),
                Reason::LostDependency(_) => ("lost_dependency", step.because_of.as_deref()),
            };
            serde_json::json!({
                "action": match step.action { Action::Load => "load", Action::Unload => "unload" },
                "label": step.label,
                "home": step.home,
                "reason": reason,
                "because_of": because_of,
            })
        })
        .collect();
    let changes: Vec<serde_json::Value> = transaction
        .changes
        .iter()
        .map(|change| {
            serde_json::json!({"name": change.name, "before": change.before, "after": change.after})
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({
        "steps": steps,
        "changes": changes,
    }))
    .expect("JSON values always serialize");
    text.push('\n');
    text
}

/// The `--dry-run` report: the steps, then each variable's change.
fn render_plan(transaction: &Transaction) -> String {
    let mut out = String::new();
    if transaction.steps.is_empty() {
        out.push_str("nothing to do\n");
    }
    for step in &transaction.steps {
        out.push_str(&describe_step(step));
        out.push('\n');
    }
    let visible: Vec<&Change> = transaction
        .changes
        .iter()
        .filter(|c| c.name != STATE_VARIABLE && !c.name.starts_with("LAYERAPI2_LAYER_"))
        .collect();
    if !visible.is_empty() {
        out.push_str("\nvariables:\n");
    }
    for change in visible {
        out.push_str(&describe_change(change));
    }
    out
}

fn describe_step(step: &PlannedStep) -> String {
    let verb = match step.action {
        Action::Load => "load  ",
        Action::Unload => "unload",
    };
    let why = match (step.reason, &step.because_of) {
        (Reason::Requested, _) | (_, None) => "requested".to_owned(),
        (Reason::DependencyOf(_), Some(other)) => format!("needed by `{other}`"),
        (Reason::OptionalDependencyOf(_), Some(other)) => {
            format!("optional dependency of `{other}`")
        }
        (Reason::ConflictsWith(_), Some(other)) => format!("conflicts with `{other}`"),
        (Reason::LostDependency(_), Some(other)) => {
            format!("needs `{other}`, which is unloaded")
        }
    };
    format!("{verb} {} [{}] ({why})", step.label, step.home)
}

fn describe_change(change: &Change) -> String {
    let quoted = |value: &Option<String>| match value {
        Some(value) => format!("{value:?}"),
        None => "(unset)".to_owned(),
    };
    if PATH_VARIABLES.contains(&change.name.as_str()) {
        let split = |value: &Option<String>| -> Vec<String> {
            crate::env::path_list::PathList::parse(value.as_deref().unwrap_or(""))
                .elements()
                .to_vec()
        };
        let before = split(&change.before);
        let after = split(&change.after);
        let mut out = format!("  {}\n", change.name);
        for entry in after.iter().filter(|e| !before.contains(e)) {
            out.push_str(&format!("    + {entry}\n"));
        }
        for entry in before.iter().filter(|e| !after.contains(e)) {
            out.push_str(&format!("    - {entry}\n"));
        }
        if change.after.is_none() {
            out.push_str("    (unset)\n");
        }
        return out;
    }
    format!(
        "  {}: {} -> {}\n",
        change.name,
        quoted(&change.before),
        quoted(&change.after)
    )
}

/// Entry point used by `main`: the real arguments and environment.
pub fn main() -> u8 {
    main_with(std::env::args_os(), std::env::vars_os().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn the_hook_function_is_a_name_or_nothing() {
        let vars = |value: &str| vec![(OsString::from(HOOK_VARIABLE), OsString::from(value))];
        assert_eq!(hook_function(&vars("layer_load")), Some("layer_load"));
        for value in ["", "a b", "x;rm", "f$(x)", "é"] {
            assert_eq!(hook_function(&vars(value)), None, "{value:?}");
        }
        assert_eq!(hook_function(&[]), None);
    }

    #[test]
    fn parse_errors_as_a_function_name_it_and_hide_the_shell_option() {
        let error = parse_error_as_function("layer_unload", &words("mfenv unload --shell zsh"))
            .expect("an error");
        let text = error.render().to_string();
        assert!(text.contains("Usage: layer_unload <LAYER>..."), "{text}");
        assert!(!text.contains("--shell"), "{text}");
        let help = parse_error_as_function("plugin_env", &words("mfenv plugin env --shell sh -h"))
            .expect("the help");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        let text = help.render().to_string();
        assert!(
            text.contains("Usage: plugin_env [OPTIONS] [NAME]"),
            "{text}"
        );
        assert!(!text.contains("--shell"), "{text}");
        let version =
            parse_error_as_function("layer_load", &words("mfenv load -V")).expect("the version");
        assert_eq!(
            version.render().to_string(),
            format!("mfenv {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert!(parse_error_as_function("layer_load", &words("mfenv --bogus")).is_none());
    }

    #[test]
    fn only_code_printing_commands_are_marked() {
        let code = |line: &str| prints_code(&Cli::try_parse_from(words(line)).unwrap().command);
        assert_eq!(code("mfenv load a"), Some(("layer_load", "load")));
        assert_eq!(
            code("mfenv load --dont-load-optional a"),
            Some(("layer_load_without_optional", "load"))
        );
        assert_eq!(code("mfenv unload a"), Some(("layer_unload", "unload")));
        assert_eq!(
            code("mfenv plugin env --exit"),
            Some(("plugin_env", "plugin env"))
        );
        for text in [
            "mfenv load --dry-run a",
            "mfenv unload --dry-run --json a",
            "mfenv layers",
        ] {
            assert_eq!(code(text), None, "{text}");
        }
    }
}
