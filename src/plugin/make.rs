//! `mfenv plugin make [DIR]` (reference F1, F2): builds what a plugin source tree needs
//! at run time, so that a release ships it and installs with no network.
//!
//! - **python3** (`python3_virtualenv_sources/requirements-to-freeze.txt` exists):
//!   1. *freeze*: the requirements are installed into a throw-away virtualenv and
//!      `pip freeze`d into `requirements3.txt` (the `--…` index options of the source
//!      first), when the source is newer than `requirements3.txt` or it is missing;
//!   2. *build*: a virtualenv in `local/` made by the `python3` of the plugin
//!      environment (`python3 -m venv --copies`, then `pip install -r
//!      requirements3.txt` under the binary policy of `allow_binary_packages`), when
//!      `requirements3.txt` (or `allow_binary_packages`) is newer than the copy of
//!      `requirements3.txt` kept in `local/lib/pythonX.Y/site-packages/` (the stamp),
//!      differs from it, or `local/` is missing. It is built in `.mfenv-make-local`
//!      beside `local/` and swapped in by one rename only when everything worked
//!      (without `RENAME_EXCHANGE`, two renames, the previous `local/` waiting in
//!      `.mfenv-make-local-previous`: a run killed between them is settled by the next).
//! - **node** (`package.json` exists): `npm ci` when `package-lock.json` is as new as
//!   `package.json`, else `npm install`, when `node_modules` is missing or older than
//!   either file. The previous `node_modules` waits in `.mfenv-make-node_modules` and is
//!   put back (with the previous lock file) when npm fails.
//!
//! The virtualenv is made relocatable, because it is built in one place, renamed to
//! `local/`, released and installed in the plugins base dir: the interpreters are real
//! files (`--copies`, no link to the system python, which `plugin release` would
//! refuse), `python` and `python3` become relative links to `python3.X`, and the
//! scripts pip wrote with `#!/absolute/path/bin/python3` start with the `/bin/sh`
//! polyglot pip itself uses for long paths, finding `python3` next to themselves.
//! `pyvenv.cfg` keeps `home = <the system python's directory>`, valid on any machine
//! with the same python; the `activate` scripts name the build tree's `local/`.
//!
//! Tools run in the plugin environment (the plugin layer loaded, as `mfenv plugin
//! wrapper` gives it), except that python and pip never see the plugin's own
//! directories on `PATH` (`local/bin/python3` is the previous virtualenv) nor the
//! variables that would make pip install elsewhere (`PYTHONPATH`, `PIP_PREFIX`, …).
//! A missing `python3`, `venv` module or `npm` is one error naming the Debian packages
//! to install. Progress goes to the reporter (stderr), tool output is captured and its
//! tail shown when a tool fails (all of it with `verbose`).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::env::Env;
use crate::env::path_list::PathList;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::manager::remove_tree;
use crate::plugin::transaction::try_exchange;

/// The directory of the python dependency files.
pub const SOURCES_DIR: &str = "python3_virtualenv_sources";
/// The requirements the developer writes.
pub const TO_FREEZE: &str = "requirements-to-freeze.txt";
/// The frozen requirements (exact versions).
pub const FROZEN: &str = "requirements3.txt";
/// The binary-package policy file (reference F2, H21).
pub const ALLOW_BINARY: &str = "allow_binary_packages";
/// The virtualenv.
pub const LOCAL: &str = "local";
/// Where the virtualenv is built before it replaces `local/`.
pub const BUILD_LOCAL: &str = ".mfenv-make-local";
/// Where the previous `local/` waits while the new one takes its place, when the swap
/// is two renames (no `RENAME_EXCHANGE`); the next `plugin make` puts it back if `local/`
/// is missing.
pub const PREVIOUS_LOCAL: &str = ".mfenv-make-local-previous";
pub const PACKAGE_JSON: &str = "package.json";
pub const PACKAGE_LOCK: &str = "package-lock.json";
pub const NODE_MODULES: &str = "node_modules";
/// Where the previous `node_modules` waits while npm runs.
pub const PREVIOUS_NODE_MODULES: &str = ".mfenv-make-node_modules";
/// The config file touched after a rebuild (it restarts the plugin's daemons, E3).
const CONFIG_FILE: &str = "config.ini";

/// Packages pip may always take as wheels, even without `allow_binary_packages`: the
/// build backends and their own dependencies, which pip needs to build everything
/// else from source (building them from source would need themselves).
pub const BUILD_DEPENDENCIES: &[&str] = &[
    "setuptools",
    "setuptools-scm",
    "wheel",
    "flit-core",
    "hatchling",
    "hatch-vcs",
    "hatch-fancy-pypi-readme",
    "poetry-core",
    "pdm-backend",
    "scikit-build-core",
    "meson-python",
    "meson",
    "cython",
    "packaging",
    "pathspec",
    "pluggy",
    "trove-classifiers",
    "editables",
    "calver",
    "tomli",
    "typing-extensions",
];

/// What `pip freeze --all` lists but the virtualenv brings anyway: dropped from the
/// frozen requirements unless the developer asked for them.
const FREEZE_NOISE: &[&str] = &["pip", "setuptools", "wheel", "distribute", "pkg-resources"];

/// Variables that would make python or pip look at, or install into, another place
/// than the virtualenv being built.
const PYTHON_LOCATION_VARIABLES: &[&str] = &[
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "VIRTUAL_ENV",
    "__PYVENV_LAUNCHER__",
    "PIP_PREFIX",
    "PIP_TARGET",
    "PIP_USER",
    "PIP_ROOT",
    "PIP_REQUIRE_VIRTUALENV",
];

/// How many lines of a failing tool's output go into the error.
const TAIL_LINES: usize = 15;

// ----- pure logic ------------------------------------------------------------------

/// `line` without its comment (` #…` or a whole-line `#…`), trimmed.
fn strip_comment(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(position) => line[..position].trim_end(),
        None => line,
    }
}

/// True for a requirements line that is an option rather than a requirement
/// (`--index-url …`, `-i …`, `-c constraints.txt`); `-r` and `-e` name requirements.
fn is_option_line(line: &str) -> bool {
    if !line.starts_with('-') {
        return false;
    }
    let option = line
        .split(|c: char| c.is_whitespace() || c == '=')
        .next()
        .unwrap_or_default();
    let names_requirements = matches!(option, "--requirement" | "--editable")
        || (!option.starts_with("--") && (option.starts_with("-r") || option.starts_with("-e")));
    !names_requirements
}

/// True when a requirements text names at least one requirement (comments, blank lines
/// and options aside).
pub fn has_requirements(text: &str) -> bool {
    text.lines()
        .map(strip_comment)
        .any(|line| !line.is_empty() && !is_option_line(line))
}

/// The name a requirement line starts with (`Foo_Bar>=1` → `Foo_Bar`); none for
/// options, editables and URLs.
fn requirement_name(line: &str) -> Option<&str> {
    let line = strip_comment(line);
    if line.starts_with('-') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(line.len());
    let name = &line[..end];
    let rest = &line[end..];
    // `git+https://…`, `./path`: not a plain name.
    (!name.is_empty() && !rest.starts_with(':') && !rest.starts_with('+')).then_some(name)
}

/// A package name as pip compares them (PEP 503): lower case, runs of `-_.` as `-`.
pub fn canonical_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `requirements3.txt` from the source requirements and the output of `pip freeze
/// --all`: the source's `--…` option lines first (index URLs, as the original), then
/// the frozen list without pip's own tools (unless the source names them).
pub fn frozen_requirements(source: &str, freeze_output: &str) -> String {
    let requested: BTreeSet<String> = source
        .lines()
        .filter_map(requirement_name)
        .map(canonical_name)
        .collect();
    let mut out = String::new();
    for line in source.lines().map(str::trim) {
        if line.starts_with("--") {
            out.push_str(line);
            out.push('\n');
        }
    }
    for line in freeze_output.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = requirement_name(line) {
            let name = canonical_name(name);
            if FREEZE_NOISE.contains(&name.as_str()) && !requested.contains(&name) {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The pip options of the binary policy (reference F2, H21): `allow_binary_packages`
/// absent → everything from source except [`BUILD_DEPENDENCIES`]; present without a
/// name (blank or comments only) → wheels allowed for everything; names (separated by
/// blanks, commas or lines; `#` comments) → those as wheels too.
pub fn binary_policy(allow_binary_packages: Option<&str>) -> Vec<String> {
    let mut allowed: Vec<String> = BUILD_DEPENDENCIES.iter().map(|s| (*s).to_owned()).collect();
    if let Some(text) = allow_binary_packages {
        let names: Vec<String> = text
            .lines()
            .map(strip_comment)
            .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|name| !name.is_empty())
            .map(canonical_name)
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        for name in names {
            if !allowed.contains(&name) {
                allowed.push(name);
            }
        }
    }
    vec![
        "--no-binary".to_owned(),
        ":all:".to_owned(),
        "--only-binary".to_owned(),
        allowed.join(","),
    ]
}

/// The first line of the relocatable script header: `/bin/sh` runs the line after it,
/// which execs the `interpreter` sitting next to the script (symlinks to the script
/// resolved); python sees those lines as a string.
fn relocatable_header(interpreter: &str, arguments: &str) -> String {
    let arguments = if arguments.is_empty() {
        String::new()
    } else {
        format!(" {arguments}")
    };
    format!(
        "#!/bin/sh\n'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/{interpreter}\"{arguments} \"$0\" \"$@\"\n' '''\n"
    )
}

/// The interpreter file name when `path` is a file directly in one of `bin_dirs`.
fn interpreter_in<'p>(path: &'p str, bin_dirs: &[String]) -> Option<&'p str> {
    let (directory, file) = path.rsplit_once('/')?;
    (!file.is_empty()
        && bin_dirs
            .iter()
            .any(|dir| dir.trim_end_matches('/') == directory))
    .then_some(file)
}

/// `script` rewritten to find its interpreter next to itself, when its shebang names
/// an interpreter in one of `bin_dirs` (the build and final `bin/` of a virtualenv):
/// `#!/dir/bin/python3 [args]`, or pip's long-path form `#!/bin/sh` + `'''exec'
/// "/dir/bin/python3" "$0" "$@"` + `' '''`. `None` when there is nothing to rewrite.
pub fn relocatable_script(script: &[u8], bin_dirs: &[String]) -> Option<Vec<u8>> {
    let first_end = script.iter().position(|&b| b == b'\n')?;
    let first = std::str::from_utf8(&script[..first_end]).ok()?;
    let shebang = first.strip_prefix("#!")?.trim();
    if shebang == "/bin/sh" {
        // pip's long-path form: three header lines.
        let rest = &script[first_end + 1..];
        let second_end = rest.iter().position(|&b| b == b'\n')?;
        let second = std::str::from_utf8(&rest[..second_end]).ok()?;
        let command = second.strip_prefix("'''exec' ")?;
        let command = command.strip_suffix(" \"$0\" \"$@\"")?;
        let (interpreter, arguments) = split_command(command)?;
        let file = interpreter_in(&interpreter, bin_dirs)?;
        let after = &rest[second_end + 1..];
        let third_end = after.iter().position(|&b| b == b'\n')?;
        if after[..third_end].trim_ascii() != b"' '''" {
            return None;
        }
        let mut out = relocatable_header(file, arguments).into_bytes();
        out.extend_from_slice(&after[third_end + 1..]);
        return Some(out);
    }
    let (interpreter, arguments) = match shebang.split_once(char::is_whitespace) {
        Some((interpreter, arguments)) => (interpreter, arguments.trim()),
        None => (shebang, ""),
    };
    let file = interpreter_in(interpreter, bin_dirs)?;
    let mut out = relocatable_header(file, arguments).into_bytes();
    out.extend_from_slice(&script[first_end + 1..]);
    Some(out)
}

/// `"/path/python3" -E` or `/path/python3 -E` → (`/path/python3`, `-E`).
fn split_command(command: &str) -> Option<(String, &str)> {
    if let Some(quoted) = command.strip_prefix('"') {
        let end = quoted.find('"')?;
        return Some((quoted[..end].to_owned(), quoted[end + 1..].trim()));
    }
    match command.split_once(' ') {
        Some((interpreter, arguments)) => Some((interpreter.to_owned(), arguments.trim())),
        None => Some((command.to_owned(), "")),
    }
}

/// The last [`TAIL_LINES`] non-blank lines of `text`.
fn tail(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect()
}

/// True when `a` is newer than `b` (make's rule); a missing `a` is never newer, a
/// missing `b` always older.
fn newer(a: Option<SystemTime>, b: Option<SystemTime>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a > b,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

// ----- the plan --------------------------------------------------------------------

/// How npm installs `node_modules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpmCommand {
    /// `npm ci`: exactly the lock file.
    Ci,
    /// `npm install`: resolves `package.json`, writes the lock file.
    Install,
}

impl NpmCommand {
    fn word(self) -> &'static str {
        match self {
            NpmCommand::Ci => "ci",
            NpmCommand::Install => "install",
        }
    }
}

/// What a plugin tree needs rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The tree is a python3 plugin.
    pub python: bool,
    pub freeze: bool,
    pub build_local: bool,
    /// The tree is a node plugin.
    pub node: bool,
    pub npm: Option<NpmCommand>,
}

impl Plan {
    fn needs_python(&self) -> bool {
        self.freeze || self.build_local
    }
}

/// The stamp of the virtualenv in `local`: `local/lib/pythonX.Y/site-packages/requirements3.txt`.
fn find_stamp(local: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(local.join("lib"))
        .ok()?
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python"))
        .map(|entry| entry.path().join("site-packages").join(FROZEN))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// What `dir` needs rebuilt, from the files' presence, contents and mtimes.
pub fn plan(dir: &Path) -> Plan {
    let mut plan = Plan::default();
    let sources = dir.join(SOURCES_DIR);
    let to_freeze = sources.join(TO_FREEZE);
    if to_freeze.is_file() {
        plan.python = true;
        let frozen = sources.join(FROZEN);
        plan.freeze = !frozen.is_file() || newer(mtime(&to_freeze), mtime(&frozen));
        let local = dir.join(LOCAL);
        plan.build_local = plan.freeze
            || match find_stamp(&local) {
                None => true,
                Some(stamp) => {
                    !local.join("bin/python3").exists()
                        || newer(mtime(&frozen), mtime(&stamp))
                        || newer(mtime(&sources.join(ALLOW_BINARY)), mtime(&stamp))
                        || fs::read(&frozen).ok() != fs::read(&stamp).ok()
                }
            };
    }
    let package = dir.join(PACKAGE_JSON);
    if package.is_file() {
        plan.node = true;
        let lock = dir.join(PACKAGE_LOCK);
        let modules = mtime(&dir.join(NODE_MODULES));
        let lock_time = mtime(&lock);
        let package_time = mtime(&package);
        if modules.is_none() || newer(package_time, modules) || newer(lock_time, modules) {
            plan.npm = Some(if lock_time.is_some() && !newer(package_time, lock_time) {
                NpmCommand::Ci
            } else {
                NpmCommand::Install
            });
        }
    }
    plan
}

// ----- tools -------------------------------------------------------------------------

/// `path_value` without the entries inside the plugin (`dirs`: the plugin directory as
/// given and resolved), so that the plugin's own `local/bin/python3` is never the
/// interpreter that builds it.
pub fn path_outside(path_value: &str, dirs: &[PathBuf]) -> String {
    let list = PathList::parse(path_value);
    let kept: Vec<&String> = list
        .elements()
        .iter()
        .filter(|entry| {
            let entry = Path::new(entry.as_str());
            let resolved = fs::canonicalize(entry).ok();
            !dirs.iter().any(|dir| {
                entry.starts_with(dir) || resolved.as_ref().is_some_and(|r| r.starts_with(dir))
            })
        })
        .collect();
    PathList::from_elements(kept).join()
}

/// A program found on `path_value`.
fn find_program(name: &str, path_value: &str, cwd: &Path) -> Option<PathBuf> {
    which::which_in(name, Some(path_value), cwd).ok()
}

/// The tools a build uses, found before anything is changed.
struct Tools {
    python3: Option<PathBuf>,
    npm: Option<PathBuf>,
}

// ----- running tools -------------------------------------------------------------------

/// One tool invocation.
struct Run<'a> {
    /// How the command is named in messages (`pip install`).
    what: String,
    program: &'a Path,
    args: Vec<OsString>,
    cwd: &'a Path,
    env: &'a Env,
    verbose: bool,
    /// Return stdout (else it is shown with `verbose`, dropped otherwise).
    capture_stdout: bool,
}

/// A tool that failed: the error, and its stderr (to recognise known failures).
struct ToolFailure {
    error: Error,
    stderr: String,
}

impl Run<'_> {
    fn run(self) -> std::result::Result<String, ToolFailure> {
        let mut command = Command::new(self.program);
        command
            .args(&self.args)
            .current_dir(self.cwd)
            .env_clear()
            .envs(self.env.vars())
            .stdin(Stdio::null());
        let shown = self.verbose;
        command.stdout(if self.capture_stdout || !shown {
            Stdio::piped()
        } else {
            stderr_for_child().unwrap_or_else(Stdio::piped)
        });
        command.stderr(if shown {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
        let output = command.output().map_err(|err| ToolFailure {
            error: Error::new(
                ErrorKind::Io,
                format!("cannot run `{}`", self.program.display()),
            )
            .caused_by(crate::error::io_reason(&err)),
            stderr: String::new(),
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        let mut error = Error::new(ErrorKind::Io, format!("`{}` failed ({status})", self.what));
        let lines = if shown {
            Vec::new()
        } else if stderr.trim().is_empty() {
            tail(&stdout)
        } else {
            tail(&stderr)
        };
        if shown {
            error = error.caused_by("its output is above");
        }
        for line in lines {
            error = error.caused_by(line);
        }
        Err(ToolFailure { error, stderr })
    }
}

/// A duplicate of our stderr for a child's stdout (`verbose`: stdout stays quiet).
fn stderr_for_child() -> Option<Stdio> {
    use std::os::fd::AsFd;
    io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(Stdio::from)
}

// ----- the build -------------------------------------------------------------------------

/// A `mfenv plugin make` run.
pub struct MakeRequest<'a> {
    /// The plugin source tree (absolute, checked).
    pub dir: &'a Path,
    /// The plugin environment (its layer loaded), the tools run in.
    pub env: &'a Env,
    /// Show the tools' output (on stderr).
    pub verbose: bool,
    /// Swap `local/` with `RENAME_EXCHANGE` when the system can (off: two renames,
    /// recoverable, see [`PREVIOUS_LOCAL`]).
    pub rename_exchange: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MakeOutcome {
    pub froze: bool,
    pub built_local: bool,
    pub built_node_modules: bool,
}

/// Builds what `request.dir` needs; `report` gets progress lines as they happen.
pub fn make(request: &MakeRequest<'_>, report: &mut dyn FnMut(&str)) -> Result<MakeOutcome> {
    let dir = request.dir;
    let shown = dir.display();
    settle_local_swap(dir, report)?;
    let plan = plan(dir);
    let mut outcome = MakeOutcome::default();
    if !plan.python && !plan.node {
        report(&format!(
            "nothing to build in `{shown}`: no `{SOURCES_DIR}/{TO_FREEZE}` (python3), no `{PACKAGE_JSON}` (node)"
        ));
        return Ok(outcome);
    }
    let plugin_dirs: Vec<PathBuf> = std::iter::once(dir.to_owned())
        .chain(fs::canonicalize(dir).ok())
        .collect();
    let path = request.env.get("PATH").unwrap_or("");
    let tools_path = path_outside(path, &plugin_dirs);
    let python_env = python_environment(request.env, &tools_path);
    let tools = Tools {
        python3: plan
            .needs_python()
            .then(|| find_program("python3", &tools_path, dir))
            .flatten(),
        npm: plan
            .npm
            .is_some()
            .then(|| find_program("npm", &tools_path, dir))
            .flatten(),
    };
    check_tools(&plan, &tools, &tools_path, &python_env, dir)?;

    if plan.python {
        if let Some(python3) = &tools.python3 {
            if plan.freeze {
                freeze(dir, python3, &python_env, request.verbose, report)?;
                outcome.froze = true;
            }
            if plan.build_local {
                build_local(
                    dir,
                    python3,
                    &python_env,
                    request.verbose,
                    request.rename_exchange,
                    report,
                )?;
                touch_config(dir);
                outcome.built_local = true;
            }
        } else {
            report(&format!("`{LOCAL}/` is up to date"));
        }
    }
    if plan.node {
        match (plan.npm, &tools.npm) {
            (Some(command), Some(npm)) => {
                build_node_modules(dir, npm, command, request.env, request.verbose, report)?;
                touch_config(dir);
                outcome.built_node_modules = true;
            }
            _ => report(&format!("`{NODE_MODULES}` is up to date")),
        }
    }
    Ok(outcome)
}

/// Settles what a `plugin make` killed while swapping `local/` left: the previous
/// virtualenv at [`PREVIOUS_LOCAL`] is put back when `local/` is missing (killed between
/// the two renames), else removed (killed after them).
fn settle_local_swap(dir: &Path, report: &mut dyn FnMut(&str)) -> Result<()> {
    let previous = dir.join(PREVIOUS_LOCAL);
    if fs::symlink_metadata(&previous).is_err() {
        return Ok(());
    }
    let local = dir.join(LOCAL);
    if fs::symlink_metadata(&local).is_err() {
        fs::rename(&previous, &local)
            .map_err(|err| Error::io("cannot put back the previous virtualenv", &previous, &err))?;
        report(&format!(
            "put back the previous `{LOCAL}/`, left aside by an interrupted `mfenv plugin make`"
        ));
    } else {
        remove_tree(&previous).map_err(|err| Error::io("cannot remove", &previous, &err))?;
    }
    Ok(())
}

/// Puts the complete virtualenv `build` in place of the existing `local`: one
/// `RENAME_EXCHANGE` when the system can, else `local` to `previous` and `build` to
/// `local` (a kill between them is settled by [`settle_local_swap`]). The previous
/// virtualenv is then removed.
fn swap_in(build: &Path, local: &Path, previous: &Path, rename_exchange: bool) -> io::Result<()> {
    if rename_exchange && try_exchange(build, local)? {
        // `build` now holds the previous virtualenv.
        let _ = remove_tree(build);
        return Ok(());
    }
    fs::rename(local, previous)?;
    if let Err(err) = fs::rename(build, local) {
        let _ = fs::rename(previous, local);
        return Err(err);
    }
    let _ = remove_tree(previous);
    Ok(())
}

/// Touches `config.ini` after a rebuild: as in the original, its change restarts the
/// plugin's daemons (reference E3). Failures are ignored.
fn touch_config(dir: &Path) {
    if let Ok(file) = fs::OpenOptions::new()
        .append(true)
        .open(dir.join(CONFIG_FILE))
    {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// The environment of python and pip: the plugin environment without the plugin's
/// own directories on `PATH` and without the variables that redirect them.
fn python_environment(env: &Env, tools_path: &str) -> Env {
    let mut python_env = env.clone();
    for name in PYTHON_LOCATION_VARIABLES {
        python_env.unset(name);
    }
    python_env.set("PATH", tools_path);
    python_env
}

/// Fails, naming every missing tool and the Debian packages giving them, when a
/// needed tool is missing.
fn check_tools(
    plan: &Plan,
    tools: &Tools,
    tools_path: &str,
    python_env: &Env,
    dir: &Path,
) -> Result<()> {
    let mut missing: Vec<String> = Vec::new();
    let mut packages: Vec<&str> = Vec::new();
    if plan.needs_python() {
        match &tools.python3 {
            None => {
                missing.push("`python3` is not on PATH".to_owned());
                packages.extend(["python3", "python3-venv"]);
            }
            Some(python3) => {
                let check = Run {
                    what: format!("{} -c 'import venv, ensurepip'", python3.display()),
                    program: python3,
                    args: vec!["-c".into(), "import venv, ensurepip".into()],
                    cwd: dir,
                    env: python_env,
                    verbose: false,
                    capture_stdout: true,
                }
                .run();
                if let Err(failure) = check {
                    missing.push(format!(
                        "`{}` has no `venv`/`ensurepip` module ({})",
                        python3.display(),
                        tail(&failure.stderr).last().map_or("", String::as_str)
                    ));
                    packages.push("python3-venv");
                }
            }
        }
    }
    if plan.npm.is_some() {
        if tools.npm.is_none() {
            missing.push("`npm` is not on PATH".to_owned());
            packages.push("npm");
        } else if find_program("node", tools_path, dir).is_none() {
            missing.push("`node` is not on PATH (npm needs it)".to_owned());
            packages.push("nodejs");
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut error = Error::new(
        ErrorKind::Environment,
        format!(
            "cannot build the dependencies of `{}`: missing tools",
            dir.display()
        ),
    );
    for line in missing {
        error = error.caused_by(line);
    }
    error = error.caused_by(format!("PATH searched: `{tools_path}`"));
    Err(error.with_hint(format!(
        "install them (Debian: `apt-get install {}`), or load the layer providing them",
        packages.join(" ")
    )))
}

/// A fresh directory `prefix-<pid>-<n>` in `parent`.
fn unique_dir(parent: &Path, prefix: &str) -> Result<PathBuf> {
    fs::create_dir_all(parent).map_err(|err| Error::io("cannot create", parent, &err))?;
    let mut attempt = 0u32;
    loop {
        let path = parent.join(format!("{prefix}-{}-{attempt}", std::process::id()));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                attempt = attempt.wrapping_add(1);
            }
            Err(err) => return Err(Error::io("cannot create", &path, &err)),
        }
    }
}

/// Writes `path` through a temporary file and a rename: never half written. The
/// temporary file has a random name and is created exclusively, never through a symlink.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path.file_name().unwrap_or_default().to_string_lossy();
    let (mut file, temporary) = crate::plugin::release::create_temporary(dir, &stem)
        .map_err(|err| Error::io("cannot create a temporary file in", dir, &err))?;
    let written = file
        .write_all(contents)
        .and_then(|()| fs::rename(&temporary, path));
    written.map_err(|err| {
        let _ = fs::remove_file(&temporary);
        Error::io("cannot write", path, &err)
    })
}

/// `python3 -m venv [options] target`, turning a missing `ensurepip` into the Debian hint.
fn create_venv(
    python3: &Path,
    target: &Path,
    copies: bool,
    env: &Env,
    cwd: &Path,
    verbose: bool,
) -> Result<()> {
    let mut args: Vec<OsString> = vec!["-m".into(), "venv".into()];
    if copies {
        args.push("--copies".into());
    }
    args.push(target.into());
    Run {
        what: format!("{} -m venv", python3.display()),
        program: python3,
        args,
        cwd,
        env,
        verbose,
        capture_stdout: false,
    }
    .run()
    .map(|_| ())
    .map_err(|failure| {
        if failure.stderr.contains("ensurepip") {
            failure.error.with_hint(
                "install the venv module of python3 (Debian: `apt-get install python3-venv`)",
            )
        } else {
            failure.error
        }
    })
}

/// `<venv>/bin/python3 -m pip ARGS`.
fn pip(
    venv: &Path,
    args: Vec<OsString>,
    what: &str,
    env: &Env,
    cwd: &Path,
    verbose: bool,
    capture_stdout: bool,
) -> std::result::Result<String, Error> {
    let python = venv.join("bin/python3");
    let mut all: Vec<OsString> = vec![
        "-m".into(),
        "pip".into(),
        args[0].clone(),
        "--disable-pip-version-check".into(),
    ];
    all.extend(args.into_iter().skip(1));
    Run {
        what: what.to_owned(),
        program: &python,
        args: all,
        cwd,
        env,
        verbose,
        capture_stdout,
    }
    .run()
    .map_err(|failure| failure.error)
}

/// Step 1: `requirements-to-freeze.txt` → `requirements3.txt`.
fn freeze(
    dir: &Path,
    python3: &Path,
    env: &Env,
    verbose: bool,
    report: &mut dyn FnMut(&str),
) -> Result<()> {
    let sources = dir.join(SOURCES_DIR);
    let to_freeze = sources.join(TO_FREEZE);
    let frozen = sources.join(FROZEN);
    let text =
        fs::read_to_string(&to_freeze).map_err(|err| Error::io("cannot read", &to_freeze, &err))?;
    if !has_requirements(&text) {
        report(&format!(
            "`{SOURCES_DIR}/{TO_FREEZE}` names no requirement: empty `{FROZEN}`"
        ));
        return write_atomically(&frozen, b"");
    }
    report(&format!(
        "freezing `{SOURCES_DIR}/{TO_FREEZE}` into `{FROZEN}` (pip install in a throw-away virtualenv)..."
    ));
    let failed = |error: Error| {
        error
            .context(format!("cannot freeze `{}`", to_freeze.display()))
            .with_hint(format!(
                "check the requirements (names, versions, index); `{FROZEN}` was left as it was"
            ))
    };
    let temporary_root = PathBuf::from(
        env.get("TMPDIR")
            .filter(|v| !v.is_empty())
            .unwrap_or("/tmp"),
    );
    let work = unique_dir(&temporary_root, "mfenv-freeze").map_err(failed)?;
    let venv = work.join("venv");
    let result = create_venv(python3, &venv, false, env, &sources, verbose)
        .and_then(|()| {
            pip(
                &venv,
                vec![
                    "install".into(),
                    "--no-input".into(),
                    "--use-pep517".into(),
                    "-r".into(),
                    to_freeze.clone().into(),
                ],
                "pip install",
                env,
                &sources,
                verbose,
                false,
            )
        })
        .and_then(|_| {
            pip(
                &venv,
                vec!["freeze".into(), "--all".into()],
                "pip freeze",
                env,
                &sources,
                verbose,
                true,
            )
        });
    let _ = remove_tree(&work);
    let listed = result.map_err(failed)?;
    write_atomically(&frozen, frozen_requirements(&text, &listed).as_bytes())
}

/// The `pythonX.Y` directory name of the virtualenv at `venv`.
fn python_lib_name(venv: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("python3"))
        .collect();
    names.sort();
    names.pop()
}

/// Makes the virtualenv built at `build` work as `final_local`, and wherever the
/// plugin is installed later (see the module documentation).
fn relocate(build: &Path, final_local: &Path) -> Result<()> {
    let bin = build.join("bin");
    let io_error = |path: &Path, err: io::Error| Error::io("cannot relocate", path, &err);
    // python, python3: links to python3.X rather than copies of it.
    if let Some(version) = python_lib_name(build) {
        let real = bin.join(&version);
        if let Ok(real_meta) = fs::symlink_metadata(&real) {
            for alias in ["python", "python3"] {
                let path = bin.join(alias);
                let is_copy = fs::symlink_metadata(&path)
                    .is_ok_and(|m| m.is_file() && m.len() == real_meta.len());
                if real_meta.is_file() && is_copy {
                    fs::remove_file(&path)
                        .and_then(|()| std::os::unix::fs::symlink(&version, &path))
                        .map_err(|err| io_error(&path, err))?;
                }
            }
        }
    }
    let build_text = build.to_string_lossy().into_owned();
    let final_text = final_local.to_string_lossy().into_owned();
    let bin_dirs = [format!("{build_text}/bin"), format!("{final_text}/bin")];
    let mut files: Vec<PathBuf> = fs::read_dir(&bin)
        .map_err(|err| io_error(&bin, err))?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    files.push(build.join("pyvenv.cfg"));
    for path in files {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let content = fs::read(&path).map_err(|err| io_error(&path, err))?;
        let rewritten = match relocatable_script(&content, &bin_dirs) {
            Some(script) => Some(script),
            // Text files naming the build tree (activate scripts, pyvenv.cfg).
            None if !content.contains(&0) => {
                let text = String::from_utf8_lossy(&content);
                text.contains(build_text.as_str())
                    .then(|| text.replace(build_text.as_str(), &final_text).into_bytes())
            }
            None => None,
        };
        if let Some(new_content) = rewritten {
            fs::write(&path, new_content).map_err(|err| io_error(&path, err))?;
        }
    }
    Ok(())
}

/// Step 2: the virtualenv in `local/`, built beside it and swapped in.
fn build_local(
    dir: &Path,
    python3: &Path,
    env: &Env,
    verbose: bool,
    rename_exchange: bool,
    report: &mut dyn FnMut(&str),
) -> Result<()> {
    let sources = dir.join(SOURCES_DIR);
    let frozen = sources.join(FROZEN);
    let final_local = dir.join(LOCAL);
    let build = dir.join(BUILD_LOCAL);
    remove_tree(&build).map_err(|err| Error::io("cannot remove the leftover", &build, &err))?;
    let requirements =
        fs::read_to_string(&frozen).map_err(|err| Error::io("cannot read", &frozen, &err))?;
    let policy_path = sources.join(ALLOW_BINARY);
    let policy_text = match fs::read_to_string(&policy_path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(Error::io("cannot read", &policy_path, &err)),
    };
    let with_requirements = has_requirements(&requirements);
    report(&format!(
        "building `{LOCAL}/` with `{}` (python3 -m venv{})...",
        python3.display(),
        if with_requirements {
            format!(", pip install -r {FROZEN}")
        } else {
            String::new()
        }
    ));
    let built = (|| -> Result<()> {
        create_venv(python3, &build, true, env, dir, verbose)?;
        if with_requirements {
            let mut args: Vec<OsString> =
                vec!["install".into(), "--no-input".into(), "--use-pep517".into()];
            args.extend(
                binary_policy(policy_text.as_deref())
                    .into_iter()
                    .map(OsString::from),
            );
            args.extend(["-r".into(), OsString::from(&frozen)]);
            pip(&build, args, "pip install", env, &sources, verbose, false)?;
        }
        relocate(&build, &final_local)?;
        let version = python_lib_name(&build).ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("no `lib/python3.*` in the virtualenv `{}`", build.display()),
            )
        })?;
        let stamp = build
            .join("lib")
            .join(version)
            .join("site-packages")
            .join(FROZEN);
        fs::write(&stamp, &requirements).map_err(|err| Error::io("cannot write", &stamp, &err))
    })();
    if let Err(error) = built {
        let _ = remove_tree(&build);
        return Err(error
            .context(format!("cannot build `{}`", final_local.display()))
            .with_hint(format!(
                "`{LOCAL}/` was left as it was; fix `{SOURCES_DIR}/{FROZEN}` (or `{ALLOW_BINARY}`) and run `mfenv plugin make` again"
            )));
    }
    let swapped = if fs::symlink_metadata(&final_local).is_ok() {
        swap_in(
            &build,
            &final_local,
            &dir.join(PREVIOUS_LOCAL),
            rename_exchange,
        )
    } else {
        fs::rename(&build, &final_local)
    };
    swapped.map_err(|err| {
        let _ = remove_tree(&build);
        Error::io("cannot move the new virtualenv to", &final_local, &err)
    })?;
    report(&format!("`{LOCAL}/` built"));
    Ok(())
}

/// The node build: npm into a fresh `node_modules`, the previous one kept aside and
/// put back on failure.
fn build_node_modules(
    dir: &Path,
    npm: &Path,
    command: NpmCommand,
    env: &Env,
    verbose: bool,
    report: &mut dyn FnMut(&str),
) -> Result<()> {
    let modules = dir.join(NODE_MODULES);
    let aside = dir.join(PREVIOUS_NODE_MODULES);
    let lock = dir.join(PACKAGE_LOCK);
    // The leftover of a killed run: the previous node_modules, unless there is one.
    if fs::symlink_metadata(&aside).is_ok() {
        if fs::symlink_metadata(&modules).is_err() {
            fs::rename(&aside, &modules)
                .map_err(|err| Error::io("cannot restore", &aside, &err))?;
        } else {
            remove_tree(&aside).map_err(|err| Error::io("cannot remove", &aside, &err))?;
        }
    }
    let lock_before = fs::read(&lock).ok();
    let had_modules = fs::symlink_metadata(&modules).is_ok();
    if had_modules {
        fs::rename(&modules, &aside)
            .map_err(|err| Error::io("cannot move aside", &modules, &err))?;
    }
    report(&format!(
        "npm {} (into `{NODE_MODULES}`)...",
        command.word()
    ));
    let result = Run {
        what: format!("npm {}", command.word()),
        program: npm,
        args: vec![
            command.word().into(),
            "--no-audit".into(),
            "--no-fund".into(),
            "--no-update-notifier".into(),
        ],
        cwd: dir,
        env,
        verbose,
        capture_stdout: false,
    }
    .run();
    match result {
        Ok(_) => {
            fs::create_dir_all(&modules)
                .map_err(|err| Error::io("cannot create", &modules, &err))?;
            // Newer than the lock file npm may have written last: up to date next time.
            if let Ok(handle) = fs::File::open(&modules) {
                let _ = handle.set_modified(SystemTime::now());
            }
            if had_modules {
                let _ = remove_tree(&aside);
            }
            report(&format!("`{NODE_MODULES}` built"));
            Ok(())
        }
        Err(failure) => {
            let _ = remove_tree(&modules);
            let mut restored = true;
            if had_modules {
                restored = fs::rename(&aside, &modules).is_ok();
            }
            match &lock_before {
                Some(bytes) => {
                    if fs::read(&lock).ok().as_ref() != Some(bytes) {
                        let _ = write_atomically(&lock, bytes);
                    }
                }
                None => {
                    let _ = fs::remove_file(&lock);
                }
            }
            let kept = if !had_modules {
                "there was no previous `node_modules`".to_owned()
            } else if restored {
                "the previous `node_modules` was put back".to_owned()
            } else {
                format!("the previous `node_modules` is in `{}`", aside.display())
            };
            Err(failure
                .error
                .context(format!("cannot build `{}`", modules.display()))
                .with_hint(format!(
                    "{kept}; fix `{PACKAGE_JSON}` (or `{PACKAGE_LOCK}`) and run `mfenv plugin make` again"
                )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_lines_that_are_not_comments_or_options() {
        assert!(!has_requirements(""));
        assert!(!has_requirements("# requests\n\n   # x\n"));
        assert!(!has_requirements(
            "--index-url https://example.org/simple\n"
        ));
        assert!(!has_requirements(
            "-i https://example.org/simple\n-c constraints.txt\n"
        ));
        assert!(has_requirements("six==1.16.0 # pinned\n"));
        assert!(has_requirements("-r other.txt\n"));
        assert!(has_requirements("-e git+https://example.org/x.git#egg=x\n"));
        assert!(has_requirements("--requirement other.txt\n"));
    }

    #[test]
    fn names_are_compared_as_pip_does() {
        assert_eq!(canonical_name("Flit_Core"), "flit-core");
        assert_eq!(canonical_name("zope.interface"), "zope-interface");
        assert_eq!(canonical_name("a__-.b"), "a-b");
        assert_eq!(requirement_name("Six>=1.0"), Some("Six"));
        assert_eq!(requirement_name("pkg @ https://x/y.whl"), Some("pkg"));
        assert_eq!(requirement_name("git+https://x/y.git"), None);
        assert_eq!(requirement_name("-e ."), None);
    }

    #[test]
    fn the_frozen_file_keeps_index_options_first_and_drops_the_tools() {
        let source = "--index-url https://pypi.example.org/simple\n# a comment\nsix\nwheel==0.42\n";
        let freeze =
            "pip==23.0.1\nsetuptools==66.1.1\nsix==1.16.0\nwheel==0.42.0\npkg_resources==0.0.0\n";
        assert_eq!(
            frozen_requirements(source, freeze),
            "--index-url https://pypi.example.org/simple\nsix==1.16.0\nwheel==0.42.0\n"
        );
    }

    #[test]
    fn the_binary_policy_follows_allow_binary_packages() {
        let absent = binary_policy(None);
        assert_eq!(absent[..3], ["--no-binary", ":all:", "--only-binary"]);
        assert!(absent[3].starts_with("setuptools,"));
        assert!(absent[3].contains("flit-core"));
        assert!(binary_policy(Some("")).is_empty());
        assert!(binary_policy(Some("# no name\n\n")).is_empty());
        let listed = binary_policy(Some("NumPy, pandas\n# c\nlxml # why\nwheel\n"));
        assert!(listed[3].ends_with(",numpy,pandas,lxml"), "{listed:?}");
        assert_eq!(listed[3].matches("wheel").count(), 1);
    }

    fn dirs() -> Vec<String> {
        vec![
            "/p/.mfenv-make-local/bin".to_owned(),
            "/p/local/bin".to_owned(),
        ]
    }

    #[test]
    fn scripts_of_the_virtualenv_find_python_next_to_them() {
        let script = b"#!/p/.mfenv-make-local/bin/python3\n# -*- coding: utf-8 -*-\nimport sys\n";
        let out = String::from_utf8(relocatable_script(script, &dirs()).unwrap()).unwrap();
        assert_eq!(
            out,
            "#!/bin/sh\n'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/python3\" \"$0\" \"$@\"\n' '''\n# -*- coding: utf-8 -*-\nimport sys\n"
        );
        let with_argument = b"#!/p/local/bin/python3.11 -E\nx\n";
        let out = String::from_utf8(relocatable_script(with_argument, &dirs()).unwrap()).unwrap();
        assert!(out.contains("/python3.11\" -E \"$0\" \"$@\"\n"), "{out}");
    }

    #[test]
    fn the_long_path_form_of_pip_is_rewritten_too() {
        let script = b"#!/bin/sh\n'''exec' \"/p/.mfenv-make-local/bin/python3\" \"$0\" \"$@\"\n' '''\n# -*- coding: utf-8 -*-\nimport re\n";
        let out = String::from_utf8(relocatable_script(script, &dirs()).unwrap()).unwrap();
        assert_eq!(
            out,
            "#!/bin/sh\n'''exec' \"$(dirname -- \"$(readlink -f -- \"$0\")\")/python3\" \"$0\" \"$@\"\n' '''\n# -*- coding: utf-8 -*-\nimport re\n"
        );
    }

    #[test]
    fn other_scripts_and_binaries_are_left_alone() {
        assert_eq!(
            relocatable_script(b"#!/usr/bin/python3\nx\n", &dirs()),
            None
        );
        assert_eq!(relocatable_script(b"#!/bin/sh\necho hi\n", &dirs()), None);
        assert_eq!(relocatable_script(b"\x7fELF\x02\x01", &dirs()), None);
        assert_eq!(relocatable_script(b"# activate\n", &dirs()), None);
        assert_eq!(relocatable_script(b"#!/p/local/bin/\nx\n", &dirs()), None);
        assert_eq!(
            relocatable_script(b"#!/p/local/bin/sub/python3\nx\n", &dirs()),
            None
        );
    }

    #[test]
    fn the_relocated_header_runs_in_sh_and_is_a_string_in_python() {
        // The header is pip's own polyglot: line 2 starts a python string that line 3 ends.
        let header = relocatable_header("python3", "");
        let lines: Vec<&str> = header.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("'''exec' "));
        assert!(!lines[1][3..].contains("'''"));
        assert_eq!(lines[2], "' '''");
    }

    #[test]
    fn make_compares_mtimes_as_make_does() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        let later = t + std::time::Duration::from_secs(1);
        assert!(newer(Some(later), Some(t)));
        assert!(!newer(Some(t), Some(t)));
        assert!(newer(Some(t), None));
        assert!(!newer(None, Some(t)));
        assert!(!newer(None, None));
    }

    #[test]
    fn the_plan_follows_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(plan(root), Plan::default());
        fs::create_dir_all(root.join(SOURCES_DIR)).unwrap();
        fs::write(root.join(SOURCES_DIR).join(TO_FREEZE), "six\n").unwrap();
        fs::write(root.join(PACKAGE_JSON), "{}").unwrap();
        let first = plan(root);
        assert!(first.python && first.freeze && first.build_local && first.node);
        assert_eq!(first.npm, Some(NpmCommand::Install));
        // Built: the frozen file, the stamp, the lock file and node_modules, in that order.
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        let set = |path: &Path, seconds: u64| {
            fs::File::open(path)
                .unwrap()
                .set_modified(old + std::time::Duration::from_secs(seconds))
                .unwrap();
        };
        fs::write(root.join(SOURCES_DIR).join(FROZEN), "six==1.16.0\n").unwrap();
        let site = root.join("local/lib/python3.11/site-packages");
        fs::create_dir_all(&site).unwrap();
        fs::create_dir_all(root.join("local/bin")).unwrap();
        fs::write(root.join("local/bin/python3"), "").unwrap();
        fs::write(site.join(FROZEN), "six==1.16.0\n").unwrap();
        fs::write(root.join(PACKAGE_LOCK), "{}").unwrap();
        fs::create_dir_all(root.join(NODE_MODULES)).unwrap();
        set(&root.join(SOURCES_DIR).join(TO_FREEZE), 0);
        set(&root.join(PACKAGE_JSON), 0);
        set(&root.join(SOURCES_DIR).join(FROZEN), 1);
        set(&site.join(FROZEN), 2);
        set(&root.join(PACKAGE_LOCK), 1);
        set(&root.join(NODE_MODULES), 2);
        let built = plan(root);
        assert!(!built.freeze && !built.build_local, "{built:?}");
        assert_eq!(built.npm, None);
        // A changed frozen file, even older, rebuilds local/.
        fs::write(site.join(FROZEN), "six==1.15.0\n").unwrap();
        set(&site.join(FROZEN), 2);
        assert!(plan(root).build_local);
        fs::write(site.join(FROZEN), "six==1.16.0\n").unwrap();
        set(&site.join(FROZEN), 2);
        // An edited source refreezes; a newer lock file reinstalls with `npm ci`.
        set(&root.join(SOURCES_DIR).join(TO_FREEZE), 5);
        set(&root.join(PACKAGE_LOCK), 5);
        let edited = plan(root);
        assert!(edited.freeze && edited.build_local);
        assert_eq!(edited.npm, Some(NpmCommand::Ci));
        // A package.json newer than the lock: `npm install` updates the lock.
        set(&root.join(PACKAGE_JSON), 6);
        assert_eq!(plan(root).npm, Some(NpmCommand::Install));
    }

    #[test]
    fn the_plugin_directories_leave_path() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("foo");
        fs::create_dir_all(plugin.join("local/bin")).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&plugin, &link).unwrap();
        let path = format!(
            "{}:{}/local/bin:/usr/bin:{}/local/bin:/bin",
            plugin.join("local/bin").display(),
            link.display(),
            dir.path().join("foobar").display()
        );
        let kept = path_outside(&path, std::slice::from_ref(&plugin));
        assert_eq!(
            kept,
            format!(
                "/usr/bin:{}/local/bin:/bin",
                dir.path().join("foobar").display()
            )
        );
    }
}
