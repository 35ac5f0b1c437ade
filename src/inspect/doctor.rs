//! `mfenv doctor`: checks the set-up and prints one line per check, with a hint for
//! each problem; exits with 1 when there is a problem (warnings do not count).
//!
//! What each check can see, honestly:
//! - the layers path: each entry of `LAYERAPI2_LAYERS_PATH` (absolute, exists, holds
//!   layers, listed once), unusable layers and labels carried twice (one walk of the
//!   catalog, as `mfenv layers`);
//! - the hook: a child process cannot see its shell's functions, so the hook exports
//!   [`HOOK_VARIABLE`] = `SHELL:PID:BINARY` when it is evaluated. The hook counts as active
//!   in "this shell" when PID is mfenv's parent process; without the variable, the rc
//!   file of `$SHELL` is read for an `mfenv hook` line. The binary the hook calls must
//!   exist, and should be this one;
//! - zsh's compinit: read from `$ZDOTDIR/.zshrc` (else `~/.zshrc`), which must run
//!   `compinit` (or source oh-my-zsh, which runs it), before or after `mfenv hook zsh`
//!   (the hook registers its completions at the first prompt when `compdef` was not
//!   there yet). The file is read, not run;
//! - python: the `lib/python3.X/site-packages` directories of the installed layers
//!   against `PYTHON3_SHORT_VERSION`;
//! - the plugins base dir and the runtime dir: exist (or can be created), writable, not
//!   group- or world-writable;
//! - `crontab` on PATH (a problem only when an installed plugin has a crontab);
//! - a running daemon supervisor when an installed plugin's config.ini has an
//!   `[extra_daemon_*]` section (asked over its control socket).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Report, json_text};
use crate::engine::Engine;
use crate::env::Env;
use crate::error::{Result, printable};
use crate::invocation::Invocation;

/// Exported by the hook scripts: `SHELL:PID:BINARY` of the shell that evaluated them.
pub const HOOK_VARIABLE: &str = "__MFENV_HOOK";

pub const DOCTOR_EXAMPLES: &str = "\
Examples:
  mfenv doctor                 one line per check, a hint under each problem
  mfenv doctor --json          {checks: [{name, status, message, hint}], problems, warnings}

Exits with 1 when a check finds a problem (warnings alone exit with 0). Run it from the
interactive shell to check: the hook is seen through the __MFENV_HOOK variable it
exports, and counts as active when that shell is mfenv's parent process.";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warning,
    Problem,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// A stable identifier: `layers_path`, `hook`, `python3`, ...
    pub name: &'static str,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
}

fn ok(name: &'static str, message: String) -> Check {
    Check {
        name,
        status: Status::Ok,
        message,
        hint: None,
    }
}

fn warning(name: &'static str, message: String, hint: Option<String>) -> Check {
    Check {
        name,
        status: Status::Warning,
        message,
        hint,
    }
}

fn problem(name: &'static str, message: String, hint: String) -> Check {
    Check {
        name,
        status: Status::Problem,
        message,
        hint: Some(hint),
    }
}

/// What doctor knows of the process it runs in (passed in, so checks stay testable).
pub struct Process {
    pub pid: u32,
    pub parent_pid: u32,
    pub binary: Option<PathBuf>,
}

impl Process {
    pub fn current(inv: &Invocation) -> Process {
        Process {
            pid: std::process::id(),
            parent_pid: nix::unistd::getppid().as_raw().unsigned_abs(),
            binary: inv.binary().map(Path::to_path_buf),
        }
    }
}

/// `mfenv doctor`.
pub fn run(inv: &Invocation, json: bool) -> Result<Report> {
    let checks = checks(inv, &Process::current(inv));
    let problems = checks
        .iter()
        .filter(|c| c.status == Status::Problem)
        .count();
    let warnings = checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    let stdout = if json {
        json_text(&serde_json::json!({
            "checks": checks,
            "problems": problems,
            "warnings": warnings,
        }))
    } else {
        render(&checks, problems, warnings)
    };
    Ok(Report {
        stdout,
        stderr: Vec::new(),
        status: u8::from(problems > 0),
    })
}

fn render(checks: &[Check], problems: usize, warnings: usize) -> String {
    let mut out = String::new();
    for check in checks {
        let status = match check.status {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Problem => "PROBLEM",
        };
        out.push_str(&format!(
            "{status:<8} {}: {}\n",
            check.name.replace('_', " "),
            printable(&check.message)
        ));
        if let Some(hint) = &check.hint {
            out.push_str(&format!("         hint: {}\n", printable(hint)));
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if problems == 0 && warnings == 0 {
        out.push_str("no problem found\n");
    } else {
        out.push_str(&format!(
            "{}, {}\n",
            plural(problems, "problem"),
            plural(warnings, "warning")
        ));
    }
    out
}

/// Every check, in the order they are printed.
pub fn checks(inv: &Invocation, process: &Process) -> Vec<Check> {
    let env = inv.env();
    let context = inv.module();
    let mut engine = Engine::new(env, context, false);
    let mut checks = Vec::new();
    let layers = installed_layers(&mut engine);
    layers_path(env, &layers, &mut checks);
    unusable_and_duplicate_layers(&mut engine, &layers, &mut checks);
    hook(env, process, &mut checks);
    zsh_compinit(env, &mut checks);
    python3(env, &layers, &mut checks);
    checks.push(directory(
        "plugins_base_dir",
        &context.plugins_base_dir,
        "MFMODULE_PLUGINS_BASE_DIR",
    ));
    checks.push(directory(
        "runtime_dir",
        &context.runtime_home,
        "MFMODULE_RUNTIME_HOME",
    ));
    let plugins = installed_plugins(inv);
    crontab(inv, &plugins, &mut checks);
    supervisor(inv, &plugins, &mut checks);
    checks
}

/// (label, home) of every layer the catalog walks, in path order.
fn installed_layers(engine: &mut Engine<'_>) -> Vec<(String, String)> {
    let catalog = engine.catalog();
    let ids = catalog.all().to_vec();
    ids.into_iter()
        .map(|id| {
            let layer = catalog.layer(id);
            (layer.label.clone(), layer.home.clone())
        })
        .collect()
}

/// Whether `home` was found through the layers-path entry `entry` (the entry itself,
/// or one of its immediate subdirectories, as discovery builds homes).
fn found_through(home: &str, entry: &str) -> bool {
    home == entry
        || home
            .strip_prefix(entry)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

fn layers_path(env: &Env, layers: &[(String, String)], checks: &mut Vec<Check>) {
    const NAME: &str = "layers_path";
    let Some(path) = env.get("LAYERAPI2_LAYERS_PATH").filter(|p| !p.is_empty()) else {
        checks.push(problem(
            NAME,
            "LAYERAPI2_LAYERS_PATH is not set: only the plugins base dir is searched for layers".to_owned(),
            "export LAYERAPI2_LAYERS_PATH=/dir/of/layers:/another/dir (absolute directories holding layers)".to_owned(),
        ));
        return;
    };
    let mut seen: Vec<&str> = Vec::new();
    for entry in path.split(':') {
        if entry.is_empty() {
            checks.push(problem(
                NAME,
                "an empty entry (`::`, or `:` at an end): mfenv skips it".to_owned(),
                "remove the empty entry from LAYERAPI2_LAYERS_PATH".to_owned(),
            ));
            continue;
        }
        if !entry.starts_with('/') {
            checks.push(problem(
                NAME,
                format!("`{entry}` is not an absolute path: mfenv skips it"),
                format!("use an absolute path, e.g. `$PWD/{entry}`"),
            ));
            continue;
        }
        if seen
            .iter()
            .any(|s| s.trim_end_matches('/') == entry.trim_end_matches('/'))
        {
            checks.push(warning(
                NAME,
                format!("`{entry}` is listed twice (it is read once)"),
                Some("remove the second occurrence from LAYERAPI2_LAYERS_PATH".to_owned()),
            ));
            continue;
        }
        seen.push(entry);
        match std::fs::metadata(entry) {
            Err(_) => checks.push(problem(
                NAME,
                format!("`{entry}` does not exist"),
                "create it, or remove it from LAYERAPI2_LAYERS_PATH".to_owned(),
            )),
            Ok(metadata) if !metadata.is_dir() => checks.push(problem(
                NAME,
                format!("`{entry}` is not a directory"),
                "list directories of layers (or layer homes) in LAYERAPI2_LAYERS_PATH".to_owned(),
            )),
            Ok(_) => {
                let count = layers
                    .iter()
                    .filter(|(_, home)| found_through(home, entry))
                    .count();
                if count == 0 {
                    checks.push(problem(
                        NAME,
                        format!("`{entry}` holds no layer"),
                        "a layer is a directory with a `.layerapi2_label` file, in the entry or directly below it".to_owned(),
                    ));
                } else {
                    let layers = if count == 1 { "layer" } else { "layers" };
                    checks.push(ok(NAME, format!("`{entry}` holds {count} {layers}")));
                }
            }
        }
    }
}

fn unusable_and_duplicate_layers(
    engine: &mut Engine<'_>,
    layers: &[(String, String)],
    checks: &mut Vec<Check>,
) {
    // An entry listed twice in the path reports its unusable layers twice.
    let mut reported = std::collections::BTreeSet::new();
    let broken: Vec<_> = engine
        .catalog()
        .broken()
        .iter()
        .filter(|layer| reported.insert(layer.home.clone()))
        .cloned()
        .collect();
    for layer in &broken {
        checks.push(problem(
            "layers",
            format!("`{}` is not a usable layer: {}", layer.home, layer.reason),
            "give it a readable one-line `.layerapi2_label`, or remove the directory".to_owned(),
        ));
    }
    let mut by_label: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (label, home) in layers {
        by_label.entry(label).or_default().push(home);
    }
    let mut duplicates = 0;
    for (label, homes) in &by_label {
        if homes.len() > 1 {
            duplicates += 1;
            let others: Vec<String> = homes[1..].iter().map(|h| format!("`{h}`")).collect();
            checks.push(problem(
                "duplicate_labels",
                format!(
                    "`{label}` is the label of `{}` and of {}: only the first is used",
                    homes[0],
                    others.join(", ")
                ),
                "rename or remove the other copies, or reorder LAYERAPI2_LAYERS_PATH".to_owned(),
            ));
        }
    }
    if duplicates == 0 && broken.is_empty() {
        let count = layers.len();
        let layers = if count == 1 { "layer" } else { "layers" };
        checks.push(ok(
            "duplicate_labels",
            format!("{count} installed {layers}, no label carried twice"),
        ));
    }
}

/// The hook marker: shell, pid, binary.
fn hook_marker(env: &Env) -> Option<(&str, u32, &str)> {
    let value = env.get(HOOK_VARIABLE)?;
    let mut parts = value.splitn(3, ':');
    let shell = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let binary = parts.next()?;
    Some((shell, pid, binary))
}

/// The shell the user logs in with (`$SHELL`'s file name), normalised to a hook name.
fn login_shell(env: &Env) -> Option<&'static str> {
    let shell = env.get("SHELL")?;
    match shell.rsplit('/').next()? {
        "bash" => Some("bash"),
        "zsh" => Some("zsh"),
        "fish" => Some("fish"),
        "sh" | "dash" | "ash" | "ksh" | "mksh" => Some("sh"),
        _ => None,
    }
}

/// The rc file where `shell`'s hook goes.
fn rc_file(env: &Env, shell: &str) -> Option<PathBuf> {
    let home = env
        .get("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)?;
    Some(match shell {
        "bash" => home.join(".bashrc"),
        "zsh" => env
            .get("ZDOTDIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| home.clone(), PathBuf::from)
            .join(".zshrc"),
        "fish" => env
            .get("XDG_CONFIG_HOME")
            .filter(|d| d.starts_with('/'))
            .map_or_else(|| home.join(".config"), PathBuf::from)
            .join("fish/config.fish"),
        _ => home.join(".profile"),
    })
}

/// The first line (1-based) of `text` that is not a comment and contains one of `words`.
fn first_line_with(text: &str, words: &[&str]) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with('#'))
        .find(|(_, line)| words.iter().any(|word| line.contains(word)))
        .map(|(index, _)| index + 1)
}

fn hook_line(shell: &str) -> String {
    match shell {
        "fish" => "mfenv hook fish | source".to_owned(),
        _ => format!("eval \"$(mfenv hook {shell})\""),
    }
}

fn hook(env: &Env, process: &Process, checks: &mut Vec<Check>) {
    const NAME: &str = "hook";
    if let Some((shell, pid, binary)) = hook_marker(env) {
        // Its own pid: `sh -c '…; mfenv doctor'` ran mfenv in place of the shell.
        if pid == process.parent_pid || pid == process.pid {
            checks.push(ok(
                NAME,
                format!("active in this {shell} shell (pid {pid})"),
            ));
        } else {
            checks.push(warning(
                NAME,
                format!(
                    "set up by a {shell} shell (pid {pid}) that is not mfenv's parent (pid {}): in the shell running mfenv the functions may be missing",
                    process.parent_pid
                ),
                Some("run `mfenv doctor` from the interactive shell to check its hook".to_owned()),
            ));
        }
        hook_binary(binary, process, checks);
        return;
    }
    let Some(shell) = login_shell(env) else {
        checks.push(problem(
            NAME,
            "not active in this shell, and `SHELL` names no shell mfenv knows".to_owned(),
            "add `eval \"$(mfenv hook bash)\"` (zsh, sh alike; fish: `mfenv hook fish | source`) to your shell's rc file".to_owned(),
        ));
        return;
    };
    let Some(rc) = rc_file(env, shell) else {
        checks.push(problem(
            NAME,
            "not active in this shell (and `HOME` is not set: no rc file to read)".to_owned(),
            format!("run `{}`", hook_line(shell)),
        ));
        return;
    };
    let text = std::fs::read_to_string(&rc).unwrap_or_default();
    if first_line_with(&text, &["mfenv hook"]).is_some() {
        checks.push(problem(
            NAME,
            format!(
                "not active in this shell, though `{}` sets it up",
                rc.display()
            ),
            format!(
                "open a new shell (or run `{}`); scripts do not read rc files",
                hook_line(shell)
            ),
        ));
    } else {
        checks.push(problem(
            NAME,
            format!(
                "not set up: layer_load, layer_unload and plugin_env are not defined (`{}` does not run `mfenv hook`)",
                rc.display()
            ),
            format!("add `{}` to `{}`", hook_line(shell), rc.display()),
        ));
    }
}

fn hook_binary(binary: &str, process: &Process, checks: &mut Vec<Check>) {
    const NAME: &str = "hook_binary";
    let called = Path::new(binary);
    if !called.is_file() {
        checks.push(problem(
            NAME,
            format!("the hook calls `{binary}`, which does not exist (any more)"),
            "open a new shell so that the hook is evaluated again with the installed mfenv"
                .to_owned(),
        ));
        return;
    }
    let same = process.binary.as_deref().is_some_and(|this| {
        this == called || std::fs::canonicalize(this).ok() == std::fs::canonicalize(called).ok()
    });
    if same {
        checks.push(ok(NAME, format!("the hook calls `{binary}`")));
    } else {
        let this = process
            .binary
            .as_deref()
            .map_or_else(|| "unknown".to_owned(), |b| b.display().to_string());
        checks.push(warning(
            NAME,
            format!("the hook calls `{binary}`, but this mfenv is `{this}`"),
            Some("evaluate the hook with the mfenv you mean to use (open a new shell)".to_owned()),
        ));
    }
}

fn zsh_compinit(env: &Env, checks: &mut Vec<Check>) {
    const NAME: &str = "zsh_compinit";
    let zsh = hook_marker(env).is_some_and(|(shell, _, _)| shell == "zsh")
        || login_shell(env) == Some("zsh");
    if !zsh {
        return;
    }
    let Some(rc) = rc_file(env, "zsh") else {
        return;
    };
    let text = std::fs::read_to_string(&rc).unwrap_or_default();
    let Some(hook) = first_line_with(&text, &["mfenv hook"]) else {
        // The hook check already says the hook is not set up.
        return;
    };
    // The hook registers its completions at once when `compdef` exists, else at the
    // first prompt: compinit may come before or after the hook line, but must run.
    match first_line_with(&text, &["compinit", "oh-my-zsh.sh"]) {
        None => checks.push(problem(
            NAME,
            format!(
                "`{}` does not run compinit: layer_load, layer_unload and plugin_env have no completion",
                rc.display()
            ),
            format!(
                "add `autoload -Uz compinit && compinit` to `{}` (before or after the `mfenv hook zsh` line, line {hook})",
                rc.display()
            ),
        )),
        Some(line) => checks.push(ok(
            NAME,
            format!("`{}` runs compinit (line {line})", rc.display()),
        )),
    }
}

/// The python 3 versions (`3.11`) whose site-packages a layer home holds.
fn python3_versions(home: &str) -> Vec<String> {
    let mut versions = Vec::new();
    for lib in ["lib", "local/lib"] {
        let Ok(entries) = std::fs::read_dir(format!("{home}/{lib}")) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name.to_str().and_then(|n| n.strip_prefix("python")) else {
                continue;
            };
            if version.starts_with('3') && entry.path().join("site-packages").is_dir() {
                versions.push(version.to_owned());
            }
        }
    }
    versions
}

fn python3(env: &Env, layers: &[(String, String)], checks: &mut Vec<Check>) {
    const NAME: &str = "python3";
    let mut by_version: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for (label, home) in layers {
        for version in python3_versions(home) {
            let labels = by_version.entry(version).or_default();
            if !labels.contains(&label.as_str()) {
                labels.push(label);
            }
        }
    }
    if by_version.is_empty() {
        checks.push(ok(
            NAME,
            "no installed layer holds lib/python3.X/site-packages".to_owned(),
        ));
        return;
    }
    let describe = |versions: &std::collections::BTreeMap<String, Vec<&str>>| -> String {
        versions
            .iter()
            .map(|(version, labels)| {
                let shown: Vec<&str> = labels.iter().take(3).copied().collect();
                let more = if labels.len() > 3 { ", …" } else { "" };
                format!("python{version} ({}{more})", shown.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let most_common = by_version
        .iter()
        .max_by_key(|(_, labels)| labels.len())
        .map(|(version, _)| version.clone())
        .expect("not empty");
    match env.get("PYTHON3_SHORT_VERSION").filter(|v| !v.is_empty()) {
        None => checks.push(problem(
            NAME,
            format!(
                "PYTHON3_SHORT_VERSION is not set, so the site-packages of layers holding {} are not put on PYTHONPATH",
                describe(&by_version)
            ),
            format!("export PYTHON3_SHORT_VERSION={most_common}"),
        )),
        Some(version) if by_version.contains_key(version) => checks.push(ok(
            NAME,
            format!("PYTHON3_SHORT_VERSION={version} matches {}", describe(&by_version)),
        )),
        Some(version) => checks.push(problem(
            NAME,
            format!(
                "PYTHON3_SHORT_VERSION={version}, but the layers hold {}: their site-packages are not put on PYTHONPATH",
                describe(&by_version)
            ),
            format!("export PYTHON3_SHORT_VERSION={most_common}"),
        )),
    }
}

/// The plugins base dir or the runtime dir: usable by mfenv, not writable by others.
fn directory(name: &'static str, dir: &Path, variable: &str) -> Check {
    use nix::unistd::{AccessFlags, access};
    if dir.as_os_str().is_empty() {
        return warning(
            name,
            format!("{variable} is set but empty: the current directory is used"),
            Some(format!(
                "set {variable} to an absolute directory, or unset it"
            )),
        );
    }
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(metadata) if !metadata.is_dir() => problem(
            name,
            format!("`{shown}` is not a directory"),
            format!("remove it, or set {variable} to a directory"),
        ),
        Ok(metadata) => {
            let mode = metadata.permissions().mode() & 0o7777;
            if access(dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() {
                problem(
                    name,
                    format!("`{shown}` is not writable by this user (mode {mode:04o})"),
                    format!(
                        "run mfenv as the directory's owner, or set {variable} to a directory of yours"
                    ),
                )
            } else if mode & 0o022 != 0 && mode & 0o1000 == 0 {
                problem(
                    name,
                    format!("`{shown}` is writable by other users (mode {mode:04o})"),
                    format!("chmod go-w '{shown}'"),
                )
            } else {
                ok(name, format!("`{shown}` (mode {mode:04o})"))
            }
        }
        Err(_) => {
            let ancestor = dir.ancestors().skip(1).find(|a| a.exists());
            match ancestor {
                Some(ancestor)
                    if access(ancestor, AccessFlags::W_OK | AccessFlags::X_OK).is_ok() =>
                {
                    ok(
                        name,
                        format!("`{shown}` does not exist yet: mfenv creates it when needed"),
                    )
                }
                Some(ancestor) => problem(
                    name,
                    format!(
                        "`{shown}` does not exist and cannot be created (`{}` is not writable)",
                        ancestor.display()
                    ),
                    format!("create it for this user, or set {variable} to a directory of yours"),
                ),
                None => problem(
                    name,
                    format!("`{shown}` does not exist"),
                    format!("set {variable} to an absolute directory"),
                ),
            }
        }
    }
}

/// An installed plugin, as the last checks need it.
struct Plugin {
    name: String,
    has_crontab: bool,
    has_daemons: bool,
}

fn installed_plugins(inv: &Invocation) -> Vec<Plugin> {
    let context = inv.module();
    crate::plugin::cli::installed_names(inv)
        .into_iter()
        .filter_map(|name| {
            let home = crate::plugin::environment::installed_home(context, &name)?;
            let config = std::fs::read_to_string(home.join("config.ini")).unwrap_or_default();
            let has_daemons = config.lines().any(|line| {
                line.trim_start()
                    .strip_prefix('[')
                    .is_some_and(|rest| rest.starts_with(crate::daemon::spec::SECTION_PREFIX))
            });
            Some(Plugin {
                has_crontab: home.join("crontab").is_file(),
                has_daemons,
                name,
            })
        })
        .collect()
}

fn names(plugins: &[&Plugin]) -> String {
    plugins
        .iter()
        .map(|p| format!("`{}`", p.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn crontab(inv: &Invocation, plugins: &[Plugin], checks: &mut Vec<Check>) {
    const NAME: &str = "crontab";
    let cwd = inv.cwd().unwrap_or(Path::new("/"));
    let found = which::which_in("crontab", inv.env().get("PATH"), cwd);
    let needing: Vec<&Plugin> = plugins.iter().filter(|p| p.has_crontab).collect();
    match found {
        Ok(path) => checks.push(ok(NAME, format!("`{}`", path.display()))),
        Err(_) if needing.is_empty() => checks.push(warning(
            NAME,
            "`crontab` is not on PATH (only plugins with a crontab need it)".to_owned(),
            Some("install cron (Debian: `apt-get install cron`) before installing such plugins".to_owned()),
        )),
        Err(_) => checks.push(problem(
            NAME,
            format!(
                "`crontab` is not on PATH, and {} have a crontab",
                names(&needing)
            ),
            "install cron (Debian: `apt-get install cron`, RHEL: `dnf install cronie`), then `mfenv cron install`".to_owned(),
        )),
    }
}

fn supervisor(inv: &Invocation, plugins: &[Plugin], checks: &mut Vec<Check>) {
    use crate::daemon::control::{ClientError, Request, send};
    const NAME: &str = "supervisor";
    let with_daemons: Vec<&Plugin> = plugins.iter().filter(|p| p.has_daemons).collect();
    if with_daemons.is_empty() {
        checks.push(ok(NAME, "no installed plugin declares daemons".to_owned()));
        return;
    }
    let paths = crate::daemon::cli::paths_of(inv);
    match send(
        &paths.socket,
        &Request::Status,
        Some(Duration::from_secs(3)),
    ) {
        Ok(response) => match response.status {
            Some(status) => checks.push(ok(
                NAME,
                format!("running (pid {}) for {}", status.pid, names(&with_daemons)),
            )),
            None => checks.push(problem(
                NAME,
                "the daemon supervisor answered without its status".to_owned(),
                "restart it: `mfenv daemons restart`".to_owned(),
            )),
        },
        Err(ClientError::NotRunning) => checks.push(problem(
            NAME,
            format!(
                "{} declare daemons, but no daemon supervisor runs",
                names(&with_daemons)
            ),
            "start it: `mfenv daemons start` (or `systemctl start mfenv@MODULE`)".to_owned(),
        )),
        Err(ClientError::Failed(error)) => checks.push(problem(
            NAME,
            format!("cannot ask the daemon supervisor: {}", error.one_line()),
            "look at `mfenv daemons status`".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes_are_matched_to_the_entry_they_were_found_through() {
        assert!(found_through("/a/b", "/a"));
        assert!(found_through("/a", "/a"));
        assert!(found_through("/a//b", "/a/"));
        assert!(!found_through("/ab/c", "/a"));
        assert!(!found_through("/a/b/c", "/a"));
    }

    #[test]
    fn the_hook_marker_keeps_colons_of_the_binary_path() {
        let env = Env::from_pairs([(HOOK_VARIABLE, "zsh:42:/opt/a:b/mfenv")]);
        assert_eq!(hook_marker(&env), Some(("zsh", 42, "/opt/a:b/mfenv")));
        let env = Env::from_pairs([(HOOK_VARIABLE, "zsh:x:/mfenv")]);
        assert_eq!(hook_marker(&env), None);
    }

    #[test]
    fn first_line_with_skips_comments() {
        let text = "# compinit later\nfoo\n  autoload -Uz compinit && compinit\n";
        assert_eq!(first_line_with(text, &["compinit"]), Some(3));
    }
}
