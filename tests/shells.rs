//! Real-shell tests: the code `mfenv` prints is evaluated by bash, zsh, fish and dash
//! under strict options, and the environment each shell then exports (dumped with
//! `env -0`, so that values with newlines survive) is compared byte for byte with what
//! the layers promise.
//!
//! Every scenario runs in every shell: a `for_each_shell!` block turns one scenario
//! function into one test per shell (`bash::…`, `zsh::…`, `fish::…`, `dash::…`). A missing
//! shell fails the test loudly ([`require_program`]); nothing is skipped.
//!
//! A script is written to a per-session directory inside the fixture and run with the
//! fixture's clean environment; it dumps the environment at named points. Hostile values
//! carry canaries (`$(touch MFENV_CANARY)`, backticks, `; touch …`, fish's `(touch …)`,
//! `> MFENV_CANARY`): the canary file must never appear, which proves no value ran as code.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

type EnvMap = BTreeMap<String, String>;

/// Variables each shell maintains by itself; they say nothing about mfenv.
const SHELL_OWNED: [&str; 4] = ["SHLVL", "_", "PWD", "OLDPWD"];
/// mfenv's state variable: its encoding is mfenv's business, only its presence is checked.
const STATE: &str = "__MFENV_STATE";
/// The file a hostile value would create if a shell ran it as code.
const CANARY: &str = "MFENV_CANARY";
/// Longest a shell session may take before it is killed and the test fails.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Shells and sessions
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Dash,
}

impl Shell {
    fn program(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Dash => "dash",
        }
    }

    /// The options zoxide's shell tests use: no rc files, and fail on any error.
    fn strict_options(self) -> &'static [&'static str] {
        match self {
            Shell::Bash => &["--noprofile", "--norc", "-euo", "pipefail"],
            Shell::Zsh => &["--no-rcs", "-eu"],
            Shell::Fish => &["--no-config"],
            Shell::Dash => &["-eu"],
        }
    }

    /// The name `mfenv --shell` and `mfenv hook` take.
    fn mfenv_name(self) -> &'static str {
        match self {
            Shell::Dash => "sh",
            other => other.program(),
        }
    }

    /// The test's own quoting, written independently of mfenv's escapers.
    fn quote(self, text: &str) -> String {
        match self {
            // Inside fish single quotes only `\\` and `\'` are escapes; newlines are literal.
            Shell::Fish => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
            _ => format!("'{}'", text.replace('\'', "'\\''")),
        }
    }
}

/// A script being written for one shell, with the environment it starts from.
struct Session {
    shell: Shell,
    /// Absolute: the script may start with a PATH that does not lead to the shell.
    program: PathBuf,
    dir: tempfile::TempDir,
    script: String,
    env: EnvMap,
}

impl Session {
    fn new(fixture: &Fixture, shell: Shell) -> Self {
        let program = require_program(shell.program());
        let dir = tempfile::Builder::new()
            .prefix("session-")
            .tempdir_in(fixture.path())
            .expect("session dir");
        Session {
            shell,
            program,
            dir,
            script: String::new(),
            // These sessions demand an empty stderr; the announcements of cascades are
            // tested in tests/daily_use.rs.
            env: {
                let mut env = fixture.base_env();
                env.insert("MFENV_QUIET".to_owned(), "1".to_owned());
                env
            },
        }
    }

    /// Sets a variable of the environment the shell starts with.
    fn start_with(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }

    fn quote(&self, text: &str) -> String {
        self.shell.quote(text)
    }

    /// A path inside the session directory, quoted for the shell.
    fn file(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        self.quote(path.to_str().expect("utf-8 temp path"))
    }

    /// Appends raw code.
    fn line(&mut self, code: &str) -> &mut Self {
        self.script.push_str(code);
        self.script.push('\n');
        self
    }

    /// `mfenv ARGS…` as a command line, every word quoted.
    fn mfenv_command(&self, args: &[&str]) -> String {
        let binary = mfenv_binary();
        let mut command = self.quote(binary.to_str().expect("utf-8 binary path"));
        for arg in args {
            command.push(' ');
            command.push_str(&self.quote(arg));
        }
        command
    }

    /// Evaluates `mfenv SUBCOMMAND --shell S ARGS…` the way the documentation says, and
    /// stops the script when mfenv fails.
    fn eval_mfenv(&mut self, subcommand: &str, args: &[&str]) -> &mut Self {
        let mut full = vec![subcommand, "--shell", self.shell.mfenv_name()];
        full.extend_from_slice(args);
        let command = self.mfenv_command(&full);
        match self.shell {
            Shell::Fish => {
                self.line(&format!(
                    "{command} | source; test $pipestatus[1] -eq 0; or exit 3"
                ));
            }
            // An assignment from a command substitution takes its status, so `-e` stops
            // the script on failure (`eval "$(…)"` would not: eval of "" succeeds).
            _ => {
                self.line(&format!("__mfenv_test_code=$({command})"));
                self.line("eval \"$__mfenv_test_code\"");
            }
        }
        self
    }

    fn load(&mut self, layers: &[&str]) -> &mut Self {
        self.eval_mfenv("load", layers)
    }

    fn unload(&mut self, layers: &[&str]) -> &mut Self {
        self.eval_mfenv("unload", layers)
    }

    /// Installs the shell integration (`eval "$(mfenv hook S)"`, fish: `| source`).
    fn hook(&mut self) -> &mut Self {
        let command = self.mfenv_command(&["hook", self.shell.mfenv_name()]);
        match self.shell {
            Shell::Fish => self.line(&format!("{command} | source")),
            _ => self.line(&format!("eval \"$({command})\"")),
        }
    }

    /// Dumps the exported environment, NUL-separated, under `name`.
    fn dump(&mut self, name: &str) -> &mut Self {
        let file = self.file(&format!("{name}.env"));
        self.line(&format!("/usr/bin/env -0 > {file}"))
    }

    /// Exports a variable the way a user would.
    fn export(&mut self, name: &str, value: &str) -> &mut Self {
        let quoted = self.quote(value);
        match self.shell {
            Shell::Fish => self.line(&format!("set -gx {name} {quoted}")),
            _ => self.line(&format!("export {name}={quoted}")),
        }
    }

    /// Runs the script in the shell under its strict options.
    fn run(self) -> Ran {
        let extension = match self.shell {
            Shell::Fish => "fish",
            _ => "sh",
        };
        let script_path = self.dir.path().join(format!("script.{extension}"));
        fs::write(&script_path, &self.script).expect("write script");
        let mut command = Command::new(&self.program);
        command
            .args(self.shell.strict_options())
            .arg(&script_path)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path());
        let (status, stdout, stderr) = run_with_timeout(command, self.dir.path());
        Ran {
            shell: self.shell,
            dir: self.dir,
            script: self.script,
            status,
            stdout,
            stderr,
        }
    }
}

/// Runs `command` with its output in files (no pipe to drain), killing it after
/// [`SESSION_TIMEOUT`]. Returns the exit code (None: killed by a signal), stdout, stderr.
fn run_with_timeout(mut command: Command, dir: &Path) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let stdout_path = dir.join("stdout");
    let stderr_path = dir.join("stderr");
    command
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("stderr file"));
    let mut child = command.spawn().expect("start the shell");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the shell") {
            break status;
        }
        if started.elapsed() > SESSION_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the shell session did not finish in {SESSION_TIMEOUT:?}: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    (
        status.code(),
        fs::read(stdout_path).expect("read stdout"),
        fs::read(stderr_path).expect("read stderr"),
    )
}

/// A finished session.
struct Ran {
    shell: Shell,
    dir: tempfile::TempDir,
    script: String,
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "{} exited with {:?}\n--- script ---\n{}--- stdout ---\n{}\n--- stderr ---\n{}",
            self.shell.program(),
            self.status,
            self.script,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// The script succeeded and wrote nothing on stderr.
    #[track_caller]
    fn assert_clean(&self) -> &Self {
        assert!(
            self.status == Some(0) && self.stderr.is_empty(),
            "expected success with an empty stderr\n{}",
            self.describe()
        );
        self
    }

    /// The environment dumped under `name`, shell-owned variables left out.
    #[track_caller]
    fn env(&self, name: &str) -> EnvMap {
        let path = self.dir.path().join(format!("{name}.env"));
        let bytes = fs::read(&path).unwrap_or_else(|err| {
            panic!("no dump `{name}` ({err})\n{}", self.describe());
        });
        parse_env_dump(&bytes)
    }

    /// The text of a file the script wrote in its directory.
    #[track_caller]
    fn text(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("no file `{name}` ({err})\n{}", self.describe()))
    }

    fn exists(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }
}

/// Parses `env -0` output; shell-owned variables are left out.
fn parse_env_dump(bytes: &[u8]) -> EnvMap {
    let mut env = EnvMap::new();
    for entry in bytes.split(|byte| *byte == 0).filter(|e| !e.is_empty()) {
        let text = std::str::from_utf8(entry).expect("the environment is UTF-8");
        let (name, value) = text
            .split_once('=')
            .unwrap_or_else(|| panic!("not a NAME=value entry: {text:?}"));
        if !SHELL_OWNED.contains(&name) {
            env.insert(name.to_owned(), value.to_owned());
        }
    }
    env
}

// ---------------------------------------------------------------------------------------
// Assertions and expectations
// ---------------------------------------------------------------------------------------

/// Fails with the list of differing variables (values shown escaped).
#[track_caller]
fn assert_env_eq(context: &str, actual: &EnvMap, expected: &EnvMap) {
    if actual == expected {
        return;
    }
    let names: BTreeSet<&String> = actual.keys().chain(expected.keys()).collect();
    let mut report = String::new();
    for name in names {
        let (got, want) = (actual.get(name), expected.get(name));
        if got != want {
            let _ = writeln!(
                report,
                "  {name}:\n    expected {want:?}\n    actual   {got:?}"
            );
        }
    }
    panic!("{context}: the environment is not the expected one\n{report}");
}

/// The environment without mfenv's state variable.
fn without_state(env: &EnvMap) -> EnvMap {
    let mut env = env.clone();
    env.remove(STATE);
    env
}

/// Checks the state variable is there and looks like mfenv's, then compares the rest.
#[track_caller]
fn assert_loaded_env(context: &str, actual: &EnvMap, expected: &EnvMap) {
    let state = actual
        .get(STATE)
        .unwrap_or_else(|| panic!("{context}: `{STATE}` is not exported"));
    assert!(
        state.starts_with("1:"),
        "{context}: unexpected state {state:?}"
    );
    assert_env_eq(context, &without_state(actual), &without_state(expected));
}

fn home_str(home: &Path) -> &str {
    home.to_str().expect("utf-8 layer home")
}

/// `<home>/<sub>` as a string.
fn entry(home: &Path, sub: &str) -> String {
    format!("{}/{sub}", home_str(home))
}

/// The environment `before` plus `changes` (`None`: unset).
fn with_changes(before: &EnvMap, changes: &[(&str, Option<String>)]) -> EnvMap {
    let mut env = before.clone();
    for (name, value) in changes {
        match value {
            Some(value) => env.insert((*name).to_owned(), value.clone()),
            None => env.remove(*name),
        };
    }
    env
}

/// The marker of each home, set to `1`.
fn markers(homes: &[&Path]) -> Vec<(String, Option<String>)> {
    homes
        .iter()
        .map(|home| (marker_name(home_str(home)), Some("1".to_owned())))
        .collect()
}

/// Panics if a canary file exists anywhere below `root`: some value ran as code.
#[track_caller]
fn assert_no_canary(root: &Path) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == CANARY {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(root, &mut found);
    assert!(
        found.is_empty(),
        "a value ran as a command: canary files {found:?}"
    );
}

/// One test per shell for each scenario function of the same name.
macro_rules! for_each_shell {
    ($($name:ident),* $(,)?) => {
        mod bash {
            $( #[test] fn $name() { super::$name(super::Shell::Bash) } )*
        }
        mod zsh {
            $( #[test] fn $name() { super::$name(super::Shell::Zsh) } )*
        }
        mod fish {
            $( #[test] fn $name() { super::$name(super::Shell::Fish) } )*
        }
        mod dash {
            $( #[test] fn $name() { super::$name(super::Shell::Dash) } )*
        }
    };
}

for_each_shell! {
    loading_exports_path_entries_extra_variables_and_markers,
    unloading_gives_back_the_environment_from_before_the_load,
    unloading_keeps_what_the_user_changed_after_the_load,
    previous_values_with_newlines_and_quotes_come_back_byte_for_byte,
    hostile_extra_env_values_are_data_never_code,
    hostile_layer_directory_names_are_data_never_code,
    hostile_labels_load_and_unload_by_label,
    hook_functions_load_and_unload_layers,
    a_failing_hook_load_returns_non_zero_and_changes_nothing,
    a_failing_hook_load_stops_a_strict_script,
    help_version_and_plans_through_the_hook_are_printed_never_evaluated,
    the_hook_functions_evaluate_only_marked_code_of_a_successful_run,
    usage_errors_through_the_hook_name_the_function,
    escaped_values_round_trip_through_the_shell,
    special_shell_variables_in_extra_env_are_refused_and_change_nothing,
    a_nul_byte_in_an_extra_env_value_is_refused_and_changes_nothing,
    a_latin1_layer_tree_loads_and_unloads_byte_for_byte,
}

// ---------------------------------------------------------------------------------------
// 1–2. Load, unload, exact restore
// ---------------------------------------------------------------------------------------

/// `base@t` (bin) and `top@t` (bin, lib, pkgconfig, node_modules; needs `base@t`).
fn two_layers(fixture: &Fixture, top_extra_env: &str) -> (PathBuf, PathBuf) {
    let base = fixture.layer(
        LayerSpec::new("base", "base@t").extra_env("FROM_BASE=base value\nSHARED=from base\n"),
    );
    let top = fixture.layer(
        LayerSpec::new("top", "top@t")
            .deps("base@t\n")
            .dirs(&["bin", "lib", "lib/pkgconfig", "node_modules"])
            .extra_env(top_extra_env),
    );
    (base, top)
}

fn loading_exports_path_entries_extra_variables_and_markers(shell: Shell) {
    let fixture = Fixture::new();
    let (base, top) = two_layers(
        &fixture,
        "GREETING=hello world\nSHARED=from top\nEMPTY=\nDERIVED={GREETING}/x\n",
    );
    let mut session = Session::new(&fixture, shell);
    session
        .dump("before")
        .load(&["top@t"])
        .dump("loaded")
        .load(&["top@t"])
        .dump("loaded_twice");
    let ran = session.run();
    ran.assert_clean();

    let before = ran.env("before");
    assert!(!before.contains_key(STATE));
    let marker_changes = markers(&[&base, &top]);
    let mut changes: Vec<(&str, Option<String>)> = vec![
        (
            "PATH",
            Some(format!(
                "{}:{}:{}",
                entry(&top, "bin"),
                entry(&base, "bin"),
                before["PATH"]
            )),
        ),
        ("PYTHONPATH", Some(entry(&top, "lib"))),
        ("LD_LIBRARY_PATH", Some(entry(&top, "lib"))),
        ("PKG_CONFIG_PATH", Some(entry(&top, "lib/pkgconfig"))),
        ("NODE_PATH", Some(entry(&top, "node_modules"))),
        ("FROM_BASE", Some("base value".to_owned())),
        ("SHARED", Some("from top".to_owned())),
        ("GREETING", Some("hello world".to_owned())),
        ("EMPTY", Some(String::new())),
        ("DERIVED", Some("hello world/x".to_owned())),
    ];
    changes.extend(marker_changes.iter().map(|(n, v)| (n.as_str(), v.clone())));
    let loaded = ran.env("loaded");
    assert_loaded_env(
        "after `load top@t`",
        &loaded,
        &with_changes(&before, &changes),
    );
    assert_env_eq(
        "loading a loaded layer again changes nothing",
        &ran.env("loaded_twice"),
        &loaded,
    );
}

fn unloading_gives_back_the_environment_from_before_the_load(shell: Shell) {
    let fixture = Fixture::new();
    let (base, top) = two_layers(
        &fixture,
        "OVERWRITTEN=new value\nNEW_ONE=fresh\nSHARED=from top\n",
    );
    let mut session = Session::new(&fixture, shell);
    // top's bin directory is already in PATH, in the middle; LD_LIBRARY_PATH is set,
    // NODE_PATH is set but empty, PYTHONPATH and PKG_CONFIG_PATH are unset.
    let path = format!("/usr/local/bin:{}:/usr/bin:/bin", entry(&top, "bin"));
    session
        .start_with("PATH", &path)
        .start_with("OVERWRITTEN", "old value")
        .start_with("LD_LIBRARY_PATH", "/opt/lib")
        .start_with("NODE_PATH", "");
    session
        .dump("before")
        .load(&["top@t"])
        .dump("loaded")
        // Unloading the dependency cascades to top@t.
        .unload(&["base@t"])
        .dump("cascaded")
        .load(&["top@t"])
        .unload(&["top@t"])
        .dump("top_unloaded")
        .unload(&["base@t"])
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();

    let before = ran.env("before");
    assert_eq!(before["PATH"], path);
    assert!(!before.contains_key("PYTHONPATH") && !before.contains_key("NEW_ONE"));
    let loaded = ran.env("loaded");
    assert_eq!(
        loaded["PATH"],
        format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            entry(&top, "bin"),
            entry(&base, "bin")
        ),
        "the entry already in PATH moves to the front"
    );
    assert_eq!(loaded["OVERWRITTEN"], "new value");
    assert_eq!(loaded["NEW_ONE"], "fresh");
    assert_eq!(
        loaded["LD_LIBRARY_PATH"],
        format!("{}:/opt/lib", entry(&top, "lib"))
    );
    assert_eq!(loaded["NODE_PATH"], entry(&top, "node_modules"));

    assert_env_eq("after the cascading unload", &ran.env("cascaded"), &before);
    let top_unloaded = ran.env("top_unloaded");
    assert_eq!(
        top_unloaded["PATH"],
        format!("{}:{path}", entry(&base, "bin")),
        "with only base@t left, top's entry is back in its place"
    );
    assert_eq!(top_unloaded["SHARED"], "from base");
    assert_eq!(top_unloaded["OVERWRITTEN"], "old value");
    assert_env_eq("after unloading both", &ran.env("unloaded"), &before);
}

fn unloading_keeps_what_the_user_changed_after_the_load(shell: Shell) {
    let fixture = Fixture::new();
    let (_base, _top) = two_layers(&fixture, "SHARED=from top\nOTHER=from top\n");
    let mut session = Session::new(&fixture, shell);
    session
        .start_with("SHARED", "before the load")
        .dump("before")
        .load(&["top@t"]);
    match shell {
        Shell::Fish => session
            .line("set -gx PATH '/mine first' $PATH '/mine last'")
            .line("set -gx LD_LIBRARY_PATH '/my lib' $LD_LIBRARY_PATH"),
        _ => session
            .line("export PATH=\"/mine first:$PATH:/mine last\"")
            .line("export LD_LIBRARY_PATH=\"/my lib:$LD_LIBRARY_PATH\""),
    };
    session
        .export("SHARED", "set by the user")
        .export("USER_NEW", "mine")
        .unload(&["base@t"])
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();

    let before = ran.env("before");
    let expected = with_changes(
        &before,
        &[
            (
                "PATH",
                Some(format!("/mine first:{}:/mine last", before["PATH"])),
            ),
            // It was unset before the load; the user's entry keeps it set.
            ("LD_LIBRARY_PATH", Some("/my lib".to_owned())),
            ("SHARED", Some("set by the user".to_owned())),
            ("USER_NEW", Some("mine".to_owned())),
        ],
    );
    assert_env_eq("after the unload", &ran.env("unloaded"), &expected);
}

fn previous_values_with_newlines_and_quotes_come_back_byte_for_byte(shell: Shell) {
    let fixture = Fixture::new();
    let top = fixture.layer(
        LayerSpec::new("top", "top@t")
            .dirs(&["bin", "lib"])
            .extra_env("OVERWRITTEN=plain\nONLY_NEWLINES=x\nTRAILING=y\n"),
    );
    let mut session = Session::new(&fixture, shell);
    let overwritten =
        "first line\nsecond 'single' \"double\" $(touch MFENV_CANARY) `touch MFENV_CANARY` \\\n\n";
    let path = format!(
        "/usr/local/bin:/dir with\nnewline:{}:/usr/bin:/bin",
        entry(&top, "bin")
    );
    session
        .start_with("OVERWRITTEN", overwritten)
        .start_with("ONLY_NEWLINES", "\n\n")
        .start_with("TRAILING", "  padded \\")
        .start_with("PATH", &path)
        .start_with("LD_LIBRARY_PATH", "/lib\nwith newline:")
        .dump("before")
        .load(&["top@t"])
        .dump("loaded")
        .unload(&["top@t"])
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();

    let before = ran.env("before");
    assert_eq!(before["OVERWRITTEN"], overwritten, "the shell imported it");
    assert_eq!(before["PATH"], path, "the shell imported it");
    let loaded = ran.env("loaded");
    assert_eq!(loaded["OVERWRITTEN"], "plain");
    assert_eq!(
        loaded["PATH"],
        format!(
            "{}:/usr/local/bin:/dir with\nnewline:/usr/bin:/bin",
            entry(&top, "bin")
        )
    );
    assert_eq!(
        loaded["LD_LIBRARY_PATH"],
        format!("{}:/lib\nwith newline:", entry(&top, "lib"))
    );
    assert_env_eq("after the unload", &ran.env("unloaded"), &before);
    assert_no_canary(fixture.path());
}

// ---------------------------------------------------------------------------------------
// 3. Hostile values, directory names and labels
// ---------------------------------------------------------------------------------------

/// extra_env values (one line each, no surrounding blanks, no `{`: the file syntax).
const HOSTILE_VALUES: &[(&str, &str)] = &[
    ("SPACES", "two  spaces and\ta tab"),
    ("SINGLE_QUOTE", "it's"),
    ("LONE_SINGLE_QUOTE", "'"),
    ("DOUBLE_QUOTE", "say \"hi\""),
    ("BACKSLASHES", "a\\b\\\\c\\n\\t\\'"),
    ("TRAILING_BACKSLASH", "ends with \\"),
    ("LONE_BACKSLASH", "\\"),
    ("DOLLARS", "$HOME $1 $$ $? $"),
    ("COMMAND_SUBSTITUTION", "$(touch MFENV_CANARY)"),
    ("BACKTICKS", "`touch MFENV_CANARY`"),
    ("SEMICOLON", "x; touch MFENV_CANARY; echo"),
    ("FISH_SUBSTITUTION", "(touch MFENV_CANARY)"),
    (
        "PIPES",
        "x | touch MFENV_CANARY && touch MFENV_CANARY || touch MFENV_CANARY &",
    ),
    ("REDIRECTION", "> MFENV_CANARY"),
    ("QUOTE_BREAKOUT", "'; touch MFENV_CANARY; '"),
    ("DOUBLE_QUOTE_BREAKOUT", "\"; touch MFENV_CANARY; \""),
    ("FISH_QUOTE_BREAKOUT", "\\'; touch MFENV_CANARY; echo \\"),
    ("STAR", "*"),
    ("GLOBS", "/bin/* ? [a-z]"),
    ("LEADING_DASH", "-n"),
    ("LEADING_DASHES", "--help -e"),
    ("NON_ASCII", "é 日本 ü ✓"),
    ("EMPTY", ""),
    ("TILDE", "~root"),
    ("EQUALS", "=ls"),
    ("HASH", "# not a comment"),
    ("HISTORY", "!! !$"),
    ("PERCENT", "%s %n %%"),
    ("CARRIAGE_RETURN", "a\rb"),
    ("CONTROL", "bell\u{7}escape\u{1b}[31m"),
    ("STATE_LIKE", "1:|/x,y,,,"),
    ("COLONS", "a::b:"),
    // fish sets variables whose name ends in PATH as lists.
    ("HOSTILE_PATH", "a b:it's:$(touch MFENV_CANARY)::\\"),
];

fn hostile_extra_env_values_are_data_never_code(shell: Shell) {
    let fixture = Fixture::new();
    let mut extra_env = String::new();
    for (key, value) in HOSTILE_VALUES {
        let _ = writeln!(extra_env, "{key}={value}");
    }
    let home = fixture.layer(LayerSpec::new("hostile", "hostile@t").extra_env(&extra_env));
    let mut session = Session::new(&fixture, shell);
    session
        .dump("before")
        .load(&["hostile@t"])
        .dump("loaded")
        .unload(&["hostile@t"])
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();
    assert_no_canary(fixture.path());

    let before = ran.env("before");
    let mut changes: Vec<(&str, Option<String>)> = HOSTILE_VALUES
        .iter()
        .map(|(key, value)| (*key, Some((*value).to_owned())))
        .collect();
    changes.push((
        "PATH",
        Some(format!("{}:{}", entry(&home, "bin"), before["PATH"])),
    ));
    let marker = markers(&[&home]);
    changes.push((marker[0].0.as_str(), marker[0].1.clone()));
    assert_loaded_env(
        "after the load",
        &ran.env("loaded"),
        &with_changes(&before, &changes),
    );
    assert_env_eq("after the unload", &ran.env("unloaded"), &before);
}

/// Directory names: no `/` (one component) and no `:` (it separates PATH entries).
const HOSTILE_DIRECTORY_NAMES: &[&str] = &[
    "sp ace 'single' \"double\" é日本",
    "$(touch MFENV_CANARY)",
    "`touch MFENV_CANARY`",
    "; touch MFENV_CANARY",
    "(touch MFENV_CANARY)",
    "'; touch MFENV_CANARY; '",
    "trailing backslash\\",
    "-leading dash",
    "new\nline",
    "*",
    "$HOME",
    "~tilde",
];

fn hostile_layer_directory_names_are_data_never_code(shell: Shell) {
    let fixture = Fixture::new();
    let mut homes = Vec::new();
    let mut labels = Vec::new();
    for (index, name) in HOSTILE_DIRECTORY_NAMES.iter().enumerate() {
        let label = format!("dir{index}@t");
        homes.push(fixture.layer(LayerSpec::new(name, &label).dirs(&["bin", "lib"])));
        labels.push(label);
    }
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let home_args: Vec<&str> = homes.iter().map(|h| home_str(h)).collect();
    let mut session = Session::new(&fixture, shell);
    session
        .dump("before")
        .load(&labels)
        .dump("loaded")
        // Unloaded by their (hostile) homes, given as arguments.
        .unload(&home_args)
        .dump("unloaded")
        .load(&home_args)
        .dump("loaded_by_home")
        .unload(&labels)
        .dump("unloaded_by_label");
    let ran = session.run();
    ran.assert_clean();
    assert_no_canary(fixture.path());

    let before = ran.env("before");
    let newest_first = |sub: &str| -> String {
        homes
            .iter()
            .rev()
            .map(|home| entry(home, sub))
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut changes: Vec<(&str, Option<String>)> = vec![
        (
            "PATH",
            Some(format!("{}:{}", newest_first("bin"), before["PATH"])),
        ),
        ("PYTHONPATH", Some(newest_first("lib"))),
        ("LD_LIBRARY_PATH", Some(newest_first("lib"))),
    ];
    let home_refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
    let marker_changes = markers(&home_refs);
    changes.extend(marker_changes.iter().map(|(n, v)| (n.as_str(), v.clone())));
    let expected = with_changes(&before, &changes);
    assert_loaded_env("after loading by label", &ran.env("loaded"), &expected);
    assert_env_eq("after unloading by home", &ran.env("unloaded"), &before);
    assert_loaded_env(
        "after loading by home",
        &ran.env("loaded_by_home"),
        &expected,
    );
    assert_env_eq(
        "after unloading by label",
        &ran.env("unloaded_by_label"),
        &before,
    );
}

/// Labels: one line each, no surrounding blanks, no `{`.
const HOSTILE_LABELS: &[&str] = &[
    "odd 'single' \"double\" é日本 *",
    "$(touch MFENV_CANARY)@t",
    "`touch MFENV_CANARY`@t",
    "'; touch MFENV_CANARY; '",
    "(touch MFENV_CANARY)",
    "-leading dash",
    "trailing backslash\\",
    "$HOME",
];

fn hostile_labels_load_and_unload_by_label(shell: Shell) {
    let fixture = Fixture::new();
    let homes: Vec<PathBuf> = HOSTILE_LABELS
        .iter()
        .enumerate()
        .map(|(index, label)| fixture.layer(LayerSpec::new(&format!("label{index}"), label)))
        .collect();
    // `--` so that the label with a leading dash is not taken for an option.
    let mut args = vec!["--"];
    args.extend_from_slice(HOSTILE_LABELS);
    let mut session = Session::new(&fixture, shell);
    session
        .dump("before")
        .load(&args)
        .dump("loaded")
        .unload(&args)
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();
    assert_no_canary(fixture.path());

    let before = ran.env("before");
    let path = homes
        .iter()
        .rev()
        .map(|home| entry(home, "bin"))
        .chain([before["PATH"].clone()])
        .collect::<Vec<_>>()
        .join(":");
    let mut changes: Vec<(&str, Option<String>)> = vec![("PATH", Some(path))];
    let home_refs: Vec<&Path> = homes.iter().map(PathBuf::as_path).collect();
    let marker_changes = markers(&home_refs);
    changes.extend(marker_changes.iter().map(|(n, v)| (n.as_str(), v.clone())));
    assert_loaded_env(
        "after loading by label",
        &ran.env("loaded"),
        &with_changes(&before, &changes),
    );
    assert_env_eq("after unloading by label", &ran.env("unloaded"), &before);
}

// ---------------------------------------------------------------------------------------
// 4. Hook functions
// ---------------------------------------------------------------------------------------

/// `base@t`, `opt@t`, and `main@t` needing `base@t` and optionally `opt@t`.
fn hook_layers(fixture: &Fixture) -> (PathBuf, PathBuf, PathBuf) {
    let base = fixture.layer(LayerSpec::new("base", "base@t").extra_env("BASE_VAR=b\n"));
    let opt = fixture.layer(LayerSpec::new("opt", "opt@t").extra_env("OPT_VAR=o\n"));
    let main = fixture.layer(
        LayerSpec::new("main", "main@t")
            .deps("base@t\n-opt@t\n")
            .extra_env("MAIN_VAR=it's $(touch MFENV_CANARY) \\\n"),
    );
    (base, opt, main)
}

fn hook_functions_load_and_unload_layers(shell: Shell) {
    let fixture = Fixture::new();
    let (base, opt, main) = hook_layers(&fixture);
    let mut session = Session::new(&fixture, shell);
    // Restored on unload through the hook's evaluation (fish: one line per statement).
    session.start_with("MAIN_VAR", "previous\nvalue 'q' \\");
    session
        .hook()
        .dump("before")
        .line("layer_load main@t")
        .dump("loaded")
        .line("layer_unload main@t")
        .dump("main_unloaded")
        .line("layer_unload base@t opt@t")
        .dump("unloaded")
        .line("layer_load_without_optional main@t")
        .dump("without_optional")
        .line("layer_unload base@t")
        .dump("final");
    let ran = session.run();
    ran.assert_clean();
    assert_no_canary(fixture.path());

    let before = ran.env("before");
    let path = |homes: &[&Path]| -> Option<String> {
        let mut entries: Vec<String> = homes.iter().map(|home| entry(home, "bin")).collect();
        entries.push(before["PATH"].clone());
        Some(entries.join(":"))
    };
    let expect = |homes: &[&Path], extra: &[(&str, &str)]| -> EnvMap {
        let mut changes: Vec<(String, Option<String>)> = markers(homes);
        changes.push(("PATH".to_owned(), path(homes)));
        for (name, value) in extra {
            changes.push(((*name).to_owned(), Some((*value).to_owned())));
        }
        let changes: Vec<(&str, Option<String>)> = changes
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        with_changes(&before, &changes)
    };
    let main_var = ("MAIN_VAR", "it's $(touch MFENV_CANARY) \\");
    // Optional dependencies load after the layer itself, so they come first in PATH.
    assert_loaded_env(
        "after layer_load main@t",
        &ran.env("loaded"),
        &expect(
            &[&opt, &main, &base],
            &[("BASE_VAR", "b"), ("OPT_VAR", "o"), main_var],
        ),
    );
    assert_loaded_env(
        "after layer_unload main@t",
        &ran.env("main_unloaded"),
        &expect(&[&opt, &base], &[("BASE_VAR", "b"), ("OPT_VAR", "o")]),
    );
    assert_env_eq(
        "after layer_unload base@t opt@t",
        &ran.env("unloaded"),
        &before,
    );
    assert_loaded_env(
        "after layer_load_without_optional main@t",
        &ran.env("without_optional"),
        &expect(&[&main, &base], &[("BASE_VAR", "b"), main_var]),
    );
    assert_env_eq(
        "after layer_unload base@t (cascading)",
        &ran.env("final"),
        &before,
    );
}

fn a_failing_hook_load_returns_non_zero_and_changes_nothing(shell: Shell) {
    let fixture = Fixture::new();
    hook_layers(&fixture);
    let mut session = Session::new(&fixture, shell);
    session.hook().dump("before");
    let (err, rc) = (session.file("err"), session.file("rc"));
    // main@t alone would load: the unknown layer must make the whole call a no-op.
    match shell {
        Shell::Fish => session
            .line(&format!("layer_load main@t nope@t 2> {err}"))
            .line(&format!("echo $status > {rc}")),
        _ => session
            .line("__mfenv_test_status=0")
            .line(&format!(
                "layer_load main@t nope@t 2> {err} || __mfenv_test_status=$?"
            ))
            .line(&format!("echo \"$__mfenv_test_status\" > {rc}")),
    };
    session.dump("after");
    let ran = session.run();
    assert!(
        ran.status == Some(0) && ran.stdout.is_empty(),
        "{}",
        ran.describe()
    );
    let status = ran.text("rc");
    assert_ne!(
        status.trim(),
        "0",
        "layer_load of an unknown layer succeeded\n{}",
        ran.describe()
    );
    assert_env_eq(
        "after the failed layer_load",
        &ran.env("after"),
        &ran.env("before"),
    );
    // The error goes to the stderr the caller gave the function, not around it.
    let error = ran.text("err");
    assert!(
        error.starts_with("mfenv: error:") && error.contains("`nope@t`"),
        "`layer_load … 2> err` must put the error in err, which holds {error:?}\n{}",
        ran.describe()
    );
    ran.assert_clean();
}

fn a_failing_hook_load_stops_a_strict_script(shell: Shell) {
    let fixture = Fixture::new();
    hook_layers(&fixture);
    let mut session = Session::new(&fixture, shell);
    let reached = session.file("reached");
    session.hook();
    match shell {
        // fish has no errexit: the script checks the status as a fish user would.
        Shell::Fish => session.line("layer_load nope@t; or exit 7"),
        _ => session.line("layer_load nope@t"),
    };
    session.line(&format!("echo reached > {reached}"));
    let ran = session.run();
    assert!(
        ran.status.is_some_and(|code| code != 0) && !ran.exists("reached"),
        "the script went on after a failed layer_load\n{}",
        ran.describe()
    );
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(
        stderr.starts_with("mfenv: error:") && stderr.contains("`nope@t`"),
        "{}",
        ran.describe()
    );
}

// ---------------------------------------------------------------------------------------
// 5. Completion through the hook
// ---------------------------------------------------------------------------------------

const ODD_LABEL: &str = "al 'odd' $x";

/// `alpha@t`, `alpine@t`, `beta@t` and a label with quotes, a space and a `$`.
fn completion_layers(fixture: &Fixture) {
    for (dir, label) in [
        ("alpha", "alpha@t"),
        ("alpine", "alpine@t"),
        ("beta", "beta@t"),
        ("odd", ODD_LABEL),
    ] {
        fixture.layer(LayerSpec::new(dir, label));
    }
}

fn set_of(words: &[&str]) -> BTreeSet<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// NUL-terminated words written by a script.
fn nul_words(text: &str) -> BTreeSet<String> {
    text.split('\0')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_offers_installed_labels_to_load_and_loaded_labels_to_unload() {
    let fixture = Fixture::new();
    completion_layers(&fixture);
    let mut session = Session::new(&fixture, Shell::Bash);
    // Calls the function `complete -F` registered, as bash's completion would.
    session.hook().line(
        r#"complete_words() {
    local spec handler word
    spec=$(complete -p "$1")
    handler=${spec##*-F }
    handler=${handler%% *}
    COMP_WORDS=("$1" "$2")
    COMP_CWORD=1
    COMP_LINE="$1 $2"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    "$handler" "$1" "$2" "$1"
    # Candidates are quoted for the command line: read each back as bash would.
    for word in "${COMPREPLY[@]}"; do
        eval "printf '%s\\0' $word"
    done
}"#,
    );
    let files = [
        ("load_al", "layer_load al"),
        ("without_optional_all", "layer_load_without_optional ''"),
        ("unload_none", "layer_unload ''"),
    ];
    for (file, call) in files {
        let path = session.file(file);
        session.line(&format!("complete_words {call} > {path}"));
    }
    session.line("layer_load alpha@t");
    for (file, call) in [
        ("unload_all", "layer_unload ''"),
        ("unload_be", "layer_unload be"),
    ] {
        let path = session.file(file);
        session.line(&format!("complete_words {call} > {path}"));
    }
    let ran = session.run();
    ran.assert_clean();

    // Labels and their short names (`alpha` for `alpha@t`), which loads accept.
    assert_eq!(
        nul_words(&ran.text("load_al")),
        set_of(&["alpha@t", "alpine@t", ODD_LABEL, "alpha", "alpine"])
    );
    assert_eq!(
        nul_words(&ran.text("without_optional_all")),
        set_of(&[
            "alpha@t", "alpine@t", "beta@t", ODD_LABEL, "alpha", "alpine", "beta"
        ])
    );
    assert_eq!(nul_words(&ran.text("unload_none")), set_of(&[]));
    assert_eq!(
        nul_words(&ran.text("unload_all")),
        set_of(&["alpha@t", "alpha"])
    );
    assert_eq!(nul_words(&ran.text("unload_be")), set_of(&[]));
}

/// readline inserts a candidate as is, unless the completion asked for filename
/// quoting (`-o filenames`): either way, what lands on the command line must read back
/// as the label.
#[test]
fn bash_completion_of_a_label_with_quotes_and_spaces_inserts_that_label() {
    let fixture = Fixture::new();
    completion_layers(&fixture);
    let mut session = Session::new(&fixture, Shell::Bash);
    let out = session.file("inserted");
    session.hook().line(&format!(
        r#"spec=$(complete -p layer_load)
handler=${{spec##*-F }}
handler=${{handler%% *}}
COMP_WORDS=(layer_load "al")
COMP_CWORD=1
COMP_LINE="layer_load al"
COMP_POINT=${{#COMP_LINE}}
COMPREPLY=()
"$handler" layer_load al layer_load
# Visible if the inserted text expands the label's `$x`.
x=EXPANDED
for candidate in "${{COMPREPLY[@]}}"; do
    case "$spec" in
        *"-o filenames"*) inserted=$(printf '%q' "$candidate") ;;
        *) inserted=$candidate ;;
    esac
    eval "words=($inserted)"
    printf '%s\0' "${{#words[@]}} ${{words[*]}}" >> {out}
done"#
    ));
    let ran = session.run();
    ran.assert_clean();
    // Each inserted text must be one word, the label itself.
    assert_eq!(
        nul_words(&ran.text("inserted")),
        set_of(&[
            "1 alpha@t",
            "1 alpine@t",
            &format!("1 {ODD_LABEL}"),
            "1 alpha",
            "1 alpine"
        ]),
        "{}",
        ran.describe()
    );
}

#[test]
fn fish_completion_offers_installed_labels_to_load_and_loaded_labels_to_unload() {
    let fixture = Fixture::new();
    completion_layers(&fixture);
    let mut session = Session::new(&fixture, Shell::Fish);
    session.hook();
    let complete = |session: &mut Session, file: &str, line: &str| {
        let path = session.file(file);
        let quoted = session.quote(line);
        session.line(&format!("complete -C {quoted} > {path}"));
    };
    complete(&mut session, "load_al", "layer_load al");
    complete(
        &mut session,
        "without_optional_b",
        "layer_load_without_optional b",
    );
    complete(&mut session, "unload_none", "layer_unload ");
    session.line("layer_load alpha@t");
    complete(&mut session, "unload_all", "layer_unload ");
    let ran = session.run();
    ran.assert_clean();

    // One candidate per line, a tab before its description if any.
    let candidates = |file: &str| -> BTreeSet<String> {
        ran.text(file)
            .lines()
            .map(|line| line.split('\t').next().unwrap_or("").to_owned())
            .collect()
    };
    assert_eq!(
        candidates("load_al"),
        set_of(&["alpha@t", "alpine@t", ODD_LABEL, "alpha", "alpine"])
    );
    assert_eq!(
        candidates("without_optional_b"),
        set_of(&["beta@t", "beta"])
    );
    assert_eq!(candidates("unload_none"), set_of(&[]));
    assert_eq!(candidates("unload_all"), set_of(&["alpha@t", "alpha"]));
}

#[test]
fn zsh_completion_functions_are_registered_with_compdef_when_compinit_is_loaded() {
    let fixture = Fixture::new();
    completion_layers(&fixture);
    let mut session = Session::new(&fixture, Shell::Zsh);
    let out = session.file("comps");
    session
        .line("autoload -Uz compinit")
        .line("compinit -u -D")
        .hook()
        .line(&format!(
            "print -r -- \"$_comps[layer_load]|$_comps[layer_load_without_optional]|$_comps[layer_unload]\" > {out}"
        ));
    let ran = session.run();
    ran.assert_clean();
    let comps = ran.text("comps");
    let functions: Vec<&str> = comps.trim_end().split('|').collect();
    assert!(
        functions.iter().all(|f| !f.is_empty()) && functions[0] == functions[1],
        "completion functions: {comps:?}"
    );
    assert_ne!(functions[0], functions[2], "unload completes other labels");
}

#[test]
fn zsh_completion_in_a_terminal_completes_installed_and_loaded_labels() {
    let fixture = Fixture::new();
    completion_layers(&fixture);
    let mut session = Session::new(&fixture, Shell::Zsh);
    let hook = session.mfenv_command(&["hook", "zsh"]);
    let results = session.file("results");
    // An interactive zsh in a pseudo-terminal (zsh/zpty): type a line and TAB, then
    // wrap the edited buffer in a `print` to read what completion made of it. The
    // sentinels are typed split by `""` so that the terminal's echo never matches.
    let setup = session.quote(&format!(
        "PS1='> '; autoload -Uz compinit; compinit -u -D; eval \"$({hook})\"; print MFENV_\"\"READY"
    ));
    session.line("zmodload zsh/zpty").line(&format!(
        r#"zpty mfenv_zsh zsh -f -i
zpty -w mfenv_zsh {setup}
zpty -r mfenv_zsh __out '*MFENV_READY*'
complete_buffer() {{
    zpty -n -w mfenv_zsh "$1"$'\t'
    zpty -n -w mfenv_zsh $'\C-aprint -r -- MFENV_""BUFFER"<\C-e>"\n'
    zpty -r mfenv_zsh __out '*MFENV_BUFFER<*>*'
    print -r -- "${{${{__out##*MFENV_BUFFER<}}%%>*}}" >> {results}
}}
complete_buffer 'layer_load be'
complete_buffer 'layer_load alpi'
complete_buffer 'layer_load_without_optional alph'
complete_buffer 'layer_unload al'
zpty -w mfenv_zsh 'layer_load alpha@t; print MFENV_""LOADED'
zpty -r mfenv_zsh __out '*MFENV_LOADED*'
complete_buffer 'layer_unload al'
complete_buffer 'layer_unload be'
zpty -d mfenv_zsh"#
    ));
    let ran = session.run();
    ran.assert_clean();
    let results = ran.text("results");
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(
        lines,
        [
            // The label and its short name are offered: their common start is inserted.
            "layer_load beta",
            "layer_load alpine",
            "layer_load_without_optional alpha",
            // Nothing loaded yet: nothing to offer.
            "layer_unload al",
            "layer_unload alpha",
            "layer_unload be",
        ],
        "{}",
        ran.describe()
    );
}

// ---------------------------------------------------------------------------------------
// 6. What the hook functions evaluate and print
// ---------------------------------------------------------------------------------------

/// Runs `call` (a hook function call) with its stdout in the file `file`; the script stops
/// when the call fails (errexit; fish: exit 9).
fn call_to_file(session: &mut Session, file: &str, call: &str) {
    let path = session.file(file);
    match session.shell {
        Shell::Fish => session.line(&format!("{call} > {path}; or exit 9")),
        _ => session.line(&format!("{call} > {path}")),
    };
}

/// `-h`, `--help`, `-V` and `--version`, anywhere among the arguments, and `--dry-run`,
/// through every function: printed as text, nothing evaluated (the help's examples hold
/// `eval "$(mfenv load …)"` lines), status 0, even in a strict script.
fn help_version_and_plans_through_the_hook_are_printed_never_evaluated(shell: Shell) {
    let fixture = Fixture::new();
    hook_layers(&fixture);
    let mut session = Session::new(&fixture, shell);
    session.hook().dump("before");
    let helps = [
        ("layer_load", "layer_load --help"),
        ("layer_load", "layer_load main@t -h"),
        (
            "layer_load_without_optional",
            "layer_load_without_optional -h main@t",
        ),
        ("layer_unload", "layer_unload --help"),
        ("layer_unload", "layer_unload main@t --help"),
        ("plugin_env", "plugin_env -h"),
        ("plugin_env", "plugin_env --exit --help"),
    ];
    let versions = [
        "layer_load -V",
        "layer_load main@t --version",
        "layer_load_without_optional --version main@t",
        "layer_unload -V",
        "plugin_env --version",
        "plugin_env -V foo",
    ];
    for (index, (_, call)) in helps.iter().enumerate() {
        call_to_file(&mut session, &format!("help{index}"), call);
    }
    for (index, call) in versions.iter().enumerate() {
        call_to_file(&mut session, &format!("version{index}"), call);
    }
    call_to_file(&mut session, "plan", "layer_load --dry-run main@t");
    session.dump("after");
    let ran = session.run();
    ran.assert_clean();
    assert_no_canary(fixture.path());
    assert_env_eq(
        "after help, version and dry runs",
        &ran.env("after"),
        &ran.env("before"),
    );
    for (index, (function, call)) in helps.iter().enumerate() {
        let help = ran.text(&format!("help{index}"));
        assert!(
            help.contains(&format!("Usage: {function} ")) && help.ends_with('\n'),
            "`{call}` printed {help:?}\n{}",
            ran.describe()
        );
        // The hook passes `--shell` itself: the function has no such option.
        assert!(!help.contains("--shell <"), "`{call}` printed {help:?}");
    }
    for (index, call) in versions.iter().enumerate() {
        assert_eq!(
            ran.text(&format!("version{index}")),
            format!("mfenv {}\n", env!("CARGO_PKG_VERSION")),
            "`{call}`"
        );
    }
    let plan = ran.text("plan");
    assert!(
        plan.contains("main@t") && plan.contains("base@t"),
        "the plan: {plan:?}"
    );
}

/// A stand-in for mfenv, called by the hook instead of it: it prints commands without
/// the code marker (`unmarked`), with it but failing (`failing`), or marked code that
/// says which function ran it (`marked`), depending on its last argument.
const FAKE_MFENV: &str = r#"#!/bin/sh
for last in "$@"; do :; done
case "$last" in
unmarked) printf 'touch MFENV_CANARY\n' ;;
failing) printf '# mfenv: shell code\ntouch MFENV_CANARY\n'; exit 3 ;;
marked) printf '# mfenv: shell code\necho "ran for %s"\n' "$MFENV_HOOK" ;;
esac
"#;

/// Installs the hook with its calls to mfenv going to [`FAKE_MFENV`] instead.
fn fake_hook(session: &mut Session) {
    let fake = session.dir.path().join("fake-mfenv");
    fs::write(&fake, FAKE_MFENV).expect("write the stand-in");
    let mut permissions = fs::metadata(&fake).expect("stand-in").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    fs::set_permissions(&fake, permissions).expect("make the stand-in executable");
    let output = Command::new(mfenv_binary())
        .args(["hook", session.shell.mfenv_name()])
        .output()
        .expect("mfenv hook");
    let hook = String::from_utf8(output.stdout).expect("utf-8 hook");
    let binary = mfenv_binary();
    let binary = binary.to_str().expect("utf-8 binary path");
    assert!(hook.contains(binary), "the hook does not call {binary}");
    let hook = hook.replace(binary, fake.to_str().expect("utf-8 temp path"));
    let script = session.dir.path().join("fake-hook");
    fs::write(&script, hook).expect("write the hook");
    let script = session.file("fake-hook");
    match session.shell {
        Shell::Fish => session.line(&format!("source {script}")),
        _ => session.line(&format!(". {script}")),
    };
}

/// The rule behind help and version: the functions evaluate only what mfenv marked as
/// code, and only when it exited 0. Anything else is printed, whatever it holds.
fn the_hook_functions_evaluate_only_marked_code_of_a_successful_run(shell: Shell) {
    let fixture = Fixture::new();
    let mut session = Session::new(&fixture, shell);
    fake_hook(&mut session);
    session.line("layer_load unmarked");
    match shell {
        Shell::Fish => session.line("layer_unload failing; or echo \"status $status\""),
        _ => session.line("layer_unload failing || echo \"status $?\""),
    };
    session
        .line("layer_load marked")
        .line("layer_load_without_optional marked")
        .line("layer_unload marked")
        .line("plugin_env marked");
    let ran = session.run();
    assert_no_canary(fixture.path());
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "touch MFENV_CANARY\n\
         # mfenv: shell code\ntouch MFENV_CANARY\n\
         status 3\n\
         ran for layer_load\n\
         ran for layer_load_without_optional\n\
         ran for layer_unload\n\
         ran for plugin_env\n",
        "{}",
        ran.describe()
    );
    ran.assert_clean();
}

/// Usage errors through a function name that function, not mfenv's command line.
fn usage_errors_through_the_hook_name_the_function(shell: Shell) {
    let fixture = Fixture::new();
    hook_layers(&fixture);
    let mut session = Session::new(&fixture, shell);
    session.hook();
    for (index, call) in [
        "layer_unload",
        "layer_load --bogus main@t",
        "plugin_env a b",
    ]
    .iter()
    .enumerate()
    {
        let (err, rc) = (
            session.file(&format!("err{index}")),
            session.file(&format!("rc{index}")),
        );
        match shell {
            Shell::Fish => session
                .line(&format!("{call} 2> {err}"))
                .line(&format!("echo $status > {rc}")),
            _ => session
                .line("__mfenv_test_status=0")
                .line(&format!("{call} 2> {err} || __mfenv_test_status=$?"))
                .line(&format!("echo \"$__mfenv_test_status\" > {rc}")),
        };
    }
    let ran = session.run();
    ran.assert_clean();
    assert!(ran.stdout.is_empty(), "{}", ran.describe());
    for (index, function) in ["layer_unload", "layer_load", "plugin_env"]
        .iter()
        .enumerate()
    {
        let error = ran.text(&format!("err{index}"));
        assert_eq!(ran.text(&format!("rc{index}")).trim(), "2", "{error}");
        assert!(
            error.contains(&format!("Usage: {function} "))
                && !error.contains("--shell")
                && !error.contains("mfenv "),
            "the message of `{function}`: {error:?}"
        );
    }
}

/// Shell code printed to a terminal is applied by nothing: mfenv says so on stderr, in
/// one line. Not when the code goes to a pipe or to the hook, nor for a dry run's plan.
#[test]
fn shell_code_printed_to_a_terminal_comes_with_a_hint_on_stderr() {
    let script = require_program("script");
    let fixture = Fixture::new();
    hook_layers(&fixture);
    let dir = fixture.path();
    let mfenv = Shell::Dash.quote(mfenv_binary().to_str().expect("utf-8 binary path"));
    let lines = [
        format!("{mfenv} load main@t 2> err_terminal"),
        format!("{mfenv} unload main@t 2> err_unload"),
        format!("{mfenv} load main@t 2> err_pipe | cat > /dev/null"),
        format!("{mfenv} load --dry-run main@t 2> err_plan"),
        format!("eval \"$({mfenv} hook sh)\""),
        "layer_load main@t 2> err_hook".to_owned(),
        "echo \"hooked ${MAIN_VAR+yes}\"".to_owned(),
    ];
    fs::write(dir.join("in-terminal.sh"), lines.join("\n") + "\n").expect("write the script");
    // `script` runs the line in a new pseudo-terminal: stdout is a terminal there.
    let output = Command::new(script)
        .args(["-qec", "sh in-terminal.sh", "/dev/null"])
        .env_clear()
        .envs(fixture.base_env())
        .env("SHELL", "/bin/sh")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && terminal.contains("hooked yes"),
        "{output:?}"
    );
    let read = |name: &str| fs::read_to_string(dir.join(name)).expect("stderr file");
    for (file, function, subcommand) in [
        ("err_terminal", "layer_load", "load"),
        ("err_unload", "layer_unload", "unload"),
    ] {
        let hint = read(file);
        assert!(
            hint.starts_with("mfenv: hint:")
                && hint.contains(&format!("`{function}`"))
                && hint.contains(&format!("eval \"$(mfenv {subcommand} …)\""))
                && hint.lines().count() == 1,
            "{file}: {hint:?}"
        );
    }
    // The code itself still goes to stdout.
    assert!(terminal.contains("MAIN_VAR="), "{terminal}");
    for file in ["err_pipe", "err_plan", "err_hook"] {
        assert_eq!(read(file), "", "{file}");
    }
}

/// An interactive zsh in a private tmux server (its own socket, HOME and ZDOTDIR), as a
/// user at a terminal has it; the server is killed when this is dropped.
struct TmuxZsh {
    tmux: PathBuf,
    socket: PathBuf,
}

impl TmuxZsh {
    /// Starts `zsh -i` reading `zshrc` as its `~/.zshrc`, and waits for its first prompt.
    fn start(fixture: &Fixture, zshrc: &str) -> Self {
        let tmux = require_program("tmux");
        let zsh = require_program("zsh");
        let home = tempfile::Builder::new()
            .prefix("zdotdir-")
            .tempdir_in(fixture.path())
            .expect("zsh home")
            .keep();
        // Ubuntu's global zshrc runs compinit before the user's own: not here.
        fs::write(home.join(".zshenv"), "skip_global_compinit=1\n").expect("write .zshenv");
        fs::write(home.join(".zshrc"), zshrc).expect("write .zshrc");
        let session = TmuxZsh {
            tmux,
            socket: home.join("tmux.socket"),
        };
        let mut command = session.command();
        command
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "mfenv"])
            .args(["-x", "150", "-y", "40"])
            .arg(&zsh)
            .arg("-i")
            .env_clear()
            .envs(fixture.base_env())
            .env("HOME", &home)
            .env("ZDOTDIR", &home)
            .env("TERM", "xterm-256color")
            .current_dir(&home);
        let status = command.status().expect("start tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        session.wait_for("the first prompt", |pane| pane.contains("mfenv-ready>"));
        session
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.tmux);
        command.arg("-S").arg(&self.socket);
        command.stdin(Stdio::null());
        command
    }

    /// Types `keys` (tmux key names: `Tab`, `Enter`, or literal text).
    fn send(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "mfenv"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?}: {status}");
    }

    fn pane(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "mfenv"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits (20 s at most) until the screen satisfies `done`; returns it.
    #[track_caller]
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let pane = self.pane();
            if done(&pane) {
                return pane;
            }
            if started.elapsed() > Duration::from_secs(20) {
                panic!("zsh in tmux never showed {what}; the screen:\n{pane}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The command line being edited, after the last prompt.
    fn edited_line(pane: &str) -> String {
        pane.lines()
            .rev()
            .find_map(|line| line.strip_prefix("mfenv-ready>"))
            .unwrap_or("")
            .trim()
            .to_owned()
    }

    /// Types `line`, then Tab, and waits until completion made it `expected`.
    #[track_caller]
    fn assert_completes(&self, line: &str, expected: &str) {
        self.send(&["-l", line]);
        self.send(&["Tab"]);
        self.wait_for(&format!("`{line}` completed to `{expected}`"), |pane| {
            Self::edited_line(pane) == expected
        });
        // Clears the line for the next one.
        self.send(&["C-u"]);
        self.wait_for("an empty command line", |pane| {
            Self::edited_line(pane).is_empty()
        });
    }
}

impl Drop for TmuxZsh {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

/// `layer_load <Tab>` completes labels in a real interactive zsh whichever side of the
/// hook line `compinit` is in `~/.zshrc`.
fn zsh_tab_completes_labels_with_compinit(compinit_first: bool) {
    let fixture = Fixture::new();
    completion_layers(&fixture);
    let binary = Shell::Zsh.quote(mfenv_binary().to_str().expect("utf-8 binary path"));
    let hook = format!("eval \"$({binary} hook zsh)\"\n");
    let compinit = "autoload -Uz compinit\ncompinit -u -D\n";
    let zshrc = if compinit_first {
        format!("PS1='mfenv-ready> '\n{compinit}{hook}")
    } else {
        format!("PS1='mfenv-ready> '\n{hook}{compinit}")
    };
    let zsh = TmuxZsh::start(&fixture, &zshrc);
    // Short names are offered with the labels: `be` completes to the unique short name.
    zsh.assert_completes("layer_load be", "layer_load beta");
    zsh.assert_completes("layer_load beta@", "layer_load beta@t");
    zsh.assert_completes(
        "layer_load_without_optional alpin",
        "layer_load_without_optional alpine",
    );
    zsh.send(&["-l", "layer_load alpha@t && print MFENV_\"\"LOADED"]);
    zsh.send(&["Enter"]);
    zsh.wait_for("the load", |pane| pane.contains("MFENV_LOADED"));
    zsh.assert_completes("layer_unload alpha@", "layer_unload alpha@t");
}

#[test]
fn zsh_tab_completes_labels_when_the_hook_line_comes_before_compinit() {
    zsh_tab_completes_labels_with_compinit(false);
}

#[test]
fn zsh_tab_completes_labels_when_the_hook_line_comes_after_compinit() {
    zsh_tab_completes_labels_with_compinit(true);
}

/// The README's "Using layers" session, typed as it is in a bash with the hook, from the
/// repository root: its python example imports the layer's package.
#[test]
fn the_readme_layer_session_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
    let section = &readme[readme.find("## Using layers").expect("the section")..];
    let block = section
        .split("```console\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a console block");
    let commands: Vec<&str> = block
        .lines()
        .filter_map(|line| line.strip_prefix("$ "))
        .collect();
    assert!(
        commands.iter().any(|c| c.contains("import example_pkg")),
        "{block}"
    );
    let fixture = Fixture::new();
    let bin = fixture.path().join("bin");
    fs::create_dir_all(&bin).expect("bin dir");
    std::os::unix::fs::symlink(mfenv_binary(), bin.join("mfenv")).expect("mfenv on PATH");
    let script = format!("eval \"$(mfenv hook bash)\"\n{}\n", commands.join("\n"));
    let mut command = Command::new(require_program("bash"));
    command
        .args(["--noprofile", "--norc", "-euo", "pipefail", "-c", &script])
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", fixture.path().join("home"))
        .current_dir(root);
    let (status, stdout, stderr) = run_with_timeout(command, fixture.path());
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        status == Some(0) && stdout.contains("\nhello from python3@example\n"),
        "status {status:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Regressions found by these tests
// ---------------------------------------------------------------------------------------

/// A layer entry present twice in PATH before the load (users' PATHs often have
/// duplicates) must come back as it was: both copies, in their places.
#[test]
fn an_entry_present_twice_before_the_load_comes_back_in_both_places() {
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@t"));
    let bin = entry(&home, "bin");
    let path = format!("/first:{bin}:/usr/bin:{bin}:/bin");
    let mut session = Session::new(&fixture, Shell::Bash);
    session
        .start_with("PATH", &path)
        .dump("before")
        .load(&["a@t"])
        .dump("loaded")
        .unload(&["a@t"])
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();
    let before = ran.env("before");
    assert_eq!(before["PATH"], path);
    assert_env_eq("after the unload", &ran.env("unloaded"), &before);
}

/// Unloading a dependency also unloads the layers that need it; when both had an
/// entry already in PATH, both entries must go back to their own places.
#[test]
fn unloading_a_dependency_puts_back_the_entries_both_layers_moved() {
    let fixture = Fixture::new();
    let (base, top) = two_layers(&fixture, "");
    let path = format!("/first:{}:{}:/bin", entry(&top, "bin"), entry(&base, "bin"));
    let mut session = Session::new(&fixture, Shell::Bash);
    session
        .start_with("PATH", &path)
        .dump("before")
        .load(&["top@t"])
        .unload(&["base@t"])
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();
    let before = ran.env("before");
    assert_eq!(before["PATH"], path);
    assert_env_eq("after the cascading unload", &ran.env("unloaded"), &before);
}

/// The hook protects its builtins with `\builtin`; the code it evaluates must be as
/// safe from a user's aliases (interactive shells expand them, in `eval` too).
fn hook_functions_work_when_the_user_aliased_builtins(shell: Shell) {
    let fixture = Fixture::new();
    let (_base, _top) = two_layers(&fixture, "SHARED=from top\n");
    let mut session = Session::new(&fixture, shell);
    if shell == Shell::Bash {
        session.line("shopt -s expand_aliases");
    }
    for name in [
        "eval", "local", "return", "read", "source", "export", "unset", "builtin",
    ] {
        session.line(&format!("alias {name}='echo HIJACKED {name}'"));
    }
    let hook = session.mfenv_command(&["hook", shell.mfenv_name()]);
    session
        .line(&format!("\\eval \"$({hook})\""))
        .dump("before")
        .line("layer_load top@t")
        .dump("loaded")
        .line("layer_unload base@t")
        .dump("unloaded");
    let ran = session.run();
    ran.assert_clean();
    assert!(ran.stdout.is_empty(), "an alias ran\n{}", ran.describe());
    let before = ran.env("before");
    assert_eq!(
        ran.env("loaded").get("SHARED").map(String::as_str),
        Some("from top")
    );
    assert_env_eq("after layer_unload", &ran.env("unloaded"), &before);
}

#[test]
fn bash_hook_functions_work_when_the_user_aliased_builtins() {
    hook_functions_work_when_the_user_aliased_builtins(Shell::Bash);
}

#[test]
fn zsh_hook_functions_work_when_the_user_aliased_builtins() {
    hook_functions_work_when_the_user_aliased_builtins(Shell::Zsh);
}

#[test]
fn dash_hook_functions_work_when_the_user_aliased_builtins() {
    hook_functions_work_when_the_user_aliased_builtins(Shell::Dash);
}

// ---------------------------------------------------------------------------------------
// 6. Property tests
// ---------------------------------------------------------------------------------------

/// Characters that matter to some shell, weighted up against arbitrary ones.
fn shell_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            '\'', '"', '\\', '$', '`', '(', ')', ';', '|', '&', '*', '?', '[', ']', '~',
            '#', '!', '%', ' ', '\t', '\n', '\r', '-', '=', ':', '<', '>', '{', '}', 'é',
            '日', '\u{7f}', '\u{1}', '\u{1b}', '\u{a0}', '\u{feff}', '\u{200b}', '\u{f600}',
        ]),
        2 => any::<char>().prop_filter("no NUL in the environment", |c| *c != '\0'),
        1 => proptest::char::range('a', 'z'),
    ]
}

fn shell_string(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(shell_char(), 0..max).prop_map(String::from_iter)
}

/// What an extra_env line can carry of `value`: one line, no `{` (substitution),
/// stripped of ASCII blanks like layerapi2 does.
fn as_extra_env_value(value: &str) -> String {
    let one_line: String = value.chars().filter(|c| !matches!(c, '\n' | '{')).collect();
    one_line
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
        .to_owned()
}

const VALUES_PER_SCRIPT: usize = 50;

/// `V3`, or `V3_PATH` for odd indexes: fish handles names ending in PATH as lists.
fn variable_name(prefix: &str, index: usize) -> String {
    if index % 2 == 1 {
        format!("{prefix}{index}_PATH")
    } else {
        format!("{prefix}{index}")
    }
}

/// Many random values through one script: in extra_env values (`W<i>`, mfenv → shell),
/// and as previous values of variables the layer overwrites (`V<i>`, environment →
/// mfenv's state → shell on unload), which may hold newlines and surrounding blanks.
fn escaped_values_round_trip_through_the_shell(shell: Shell) {
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("values", "values@t").dirs(&[]));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 8,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = proptest::collection::vec(shell_string(24), VALUES_PER_SCRIPT);
    let result = runner.run(&strategy, |values| {
        let mut extra_env = String::new();
        for (index, value) in values.iter().enumerate() {
            let (v, w) = (variable_name("V", index), variable_name("W", index));
            let _ = writeln!(extra_env, "{w}={}", as_extra_env_value(value));
            let _ = writeln!(extra_env, "{v}=overwritten");
        }
        fs::write(home.join(".layerapi2_extra_env"), &extra_env).expect("extra_env");
        let mut session = Session::new(&fixture, shell);
        for (index, value) in values.iter().enumerate() {
            session.start_with(&variable_name("V", index), value);
        }
        session
            .dump("before")
            .load(&["values@t"])
            .dump("loaded")
            .unload(&["values@t"])
            .dump("unloaded");
        let ran = session.run();
        prop_assert!(
            ran.status == Some(0) && ran.stderr.is_empty(),
            "{}",
            ran.describe()
        );
        let (before, loaded, unloaded) =
            (ran.env("before"), ran.env("loaded"), ran.env("unloaded"));
        for (index, value) in values.iter().enumerate() {
            let (v, w) = (variable_name("V", index), variable_name("W", index));
            prop_assert_eq!(before.get(&v), Some(value), "the shell imported {}", v);
            prop_assert_eq!(loaded.get(&v).map(String::as_str), Some("overwritten"));
            prop_assert_eq!(
                loaded.get(&w),
                Some(&as_extra_env_value(value)),
                "{} after the load",
                w
            );
        }
        prop_assert_eq!(unloaded, before);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    assert_no_canary(fixture.path());
}

/// The environment before a load, for the identity property.
#[derive(Debug, Clone)]
struct Prior {
    /// Generic PATH entries (duplicates allowed), and where to put the layers' own.
    path: Vec<String>,
    top_bin_at: Option<usize>,
    base_bin_at: Option<usize>,
    /// None: unset.
    python_path: Option<Vec<String>>,
    library_path: Option<Vec<String>>,
    shared: Option<String>,
    top_only: Option<String>,
    /// Which layers to load (then unload): top (pulls base), base, or both.
    requests: u8,
}

fn prior() -> impl Strategy<Value = Prior> {
    let generic = prop_oneof![
        Just(String::new()),
        Just("/usr/bin".to_owned()),
        Just("/bin".to_owned()),
        Just("/opt/with space".to_owned()),
        Just("/opt/new\nline".to_owned()),
        Just("relative".to_owned()),
        "/[a-c]{1,2}",
    ];
    let list = proptest::collection::vec(generic.clone(), 0..6);
    (
        proptest::collection::vec(generic, 1..6),
        proptest::option::of(0usize..8),
        proptest::option::of(0usize..8),
        proptest::option::of(list.clone()),
        proptest::option::of(list),
        proptest::option::of(shell_string(12)),
        proptest::option::of(shell_string(12)),
        0u8..3,
    )
        .prop_map(
            |(
                path,
                top_bin_at,
                base_bin_at,
                python_path,
                library_path,
                shared,
                top_only,
                requests,
            )| Prior {
                path,
                top_bin_at,
                base_bin_at,
                python_path,
                library_path,
                shared,
                top_only,
                requests,
            },
        )
}

#[test]
fn loading_then_unloading_in_bash_is_the_identity() {
    let fixture = Fixture::new();
    let (base, top) = two_layers(&fixture, "SHARED=from top\nTOP_ONLY=top value\n");
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&prior(), |prior| {
        let mut path = prior.path.clone();
        for (at, home) in [(prior.top_bin_at, &top), (prior.base_bin_at, &base)] {
            if let Some(at) = at {
                path.insert(at.min(path.len()), entry(home, "bin"));
            }
        }
        let mut session = Session::new(&fixture, Shell::Bash);
        session.start_with("PATH", &path.join(":"));
        if let Some(list) = &prior.python_path {
            session.start_with("PYTHONPATH", &list.join(":"));
        }
        if let Some(list) = &prior.library_path {
            session.start_with("LD_LIBRARY_PATH", &list.join(":"));
        }
        if let Some(value) = &prior.shared {
            session.start_with("SHARED", value);
        }
        if let Some(value) = &prior.top_only {
            session.start_with("TOP_ONLY", value);
        }
        // Unloading base@t cascades to top@t.
        let (loads, unloads): (&[&str], &[&str]) = match prior.requests {
            0 => (&["top@t"], &["base@t"]),
            1 => (&["base@t"], &["base@t"]),
            _ => (&["base@t", "top@t"], &["top@t", "base@t"]),
        };
        session
            .dump("before")
            .load(loads)
            .dump("loaded")
            .unload(unloads)
            .dump("unloaded");
        let ran = session.run();
        prop_assert!(
            ran.status == Some(0) && ran.stderr.is_empty(),
            "{}",
            ran.describe()
        );
        let before = ran.env("before");
        prop_assert!(ran.env("loaded").contains_key(STATE));
        prop_assert_eq!(ran.env("unloaded"), before);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

// ---------------------------------------------------------------------------------------
// Names the shells treat specially, NUL bytes
// ---------------------------------------------------------------------------------------

/// What assigning `name` does in `shell`, as `export NAME=VALUE` (fish: `set -gx`) in a
/// fresh non-interactive shell: `None` when nothing odd happens, else what went wrong
/// (a command ran, the assignment failed or aborted the shell, complained, or the
/// value did not stay).
fn special_in(shell: Shell, name: &str) -> Option<String> {
    let program = require_program(shell.program());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut findings = Vec::new();
    for value in ["x[$(touch MFENV_CANARY)]", "7"] {
        let quoted = shell.quote(value);
        let script = match shell {
            Shell::Fish => format!(
                "set -gx {name} {quoted}; and echo SET; if test \"${name}\" = {quoted}; echo KEPT; end"
            ),
            Shell::Zsh => format!(
                // Modules a user's zshrc may load, whose parameters are special too.
                "zmodload zsh/mapfile zsh/system zsh/datetime zsh/watch\n\\builtin export {name}={quoted} && echo SET; [ \"${{{name}}}\" = {quoted} ] && echo KEPT"
            ),
            Shell::Dash => format!(
                "\\export {name}={quoted} && echo SET; [ \"${{{name}}}\" = {quoted} ] && echo KEPT"
            ),
            Shell::Bash => format!(
                "\\builtin export {name}={quoted} && echo SET; [ \"${{{name}}}\" = {quoted} ] && echo KEPT"
            ),
        };
        let mut command = Command::new(&program);
        match shell {
            Shell::Bash => command.args(["--noprofile", "--norc", "-c", &script]),
            Shell::Zsh => command.args(["--no-rcs", "-c", &script]),
            Shell::Fish => command.args(["--no-config", "-c", &script]),
            Shell::Dash => command.args(["-c", &script]),
        };
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", dir.path())
            .current_dir(dir.path());
        let (_, stdout, stderr) = run_with_timeout(command, dir.path());
        let stdout = String::from_utf8_lossy(&stdout);
        if dir.path().join(CANARY).exists() {
            findings.push(format!("`{value}` ran a command"));
        }
        if !stdout.contains("SET") {
            findings.push(format!("assigning `{value}` failed"));
        }
        if !stdout.contains("KEPT") {
            findings.push(format!("`{value}` was not kept"));
        }
        if !stderr.is_empty() {
            findings.push(format!(
                "stderr: {}",
                String::from_utf8_lossy(&stderr).trim()
            ));
        }
    }
    (!findings.is_empty()).then(|| findings.join("; "))
}

#[test]
fn every_reserved_variable_name_is_special_in_a_real_shell() {
    let mut ordinary = Vec::new();
    for name in mfenv::layer::model::RESERVED_VARIABLES {
        if *name == STATE {
            continue;
        }
        let special: Vec<String> = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Dash]
            .into_iter()
            .filter_map(|shell| special_in(shell, name).map(|why| format!("{shell:?}: {why}")))
            .collect();
        if special.is_empty() {
            ordinary.push(*name);
        }
    }
    assert!(
        ordinary.is_empty(),
        "reserved, yet ordinary in bash, zsh, fish and dash: {ordinary:?}"
    );
    // And the ordinary names layers do set stay allowed.
    for name in ["PATH", "LANG", "HISTSIZE", "COLUMNS", "MY_VAR"] {
        assert!(
            mfenv::layer::model::reserved_reason(name).is_none(),
            "{name} is reserved"
        );
    }
}

/// The names of this shell that broke a load before they were refused.
fn special_names_of(shell: Shell) -> &'static [&'static str] {
    match shell {
        Shell::Bash => &[
            "OPTIND",
            "SRANDOM",
            "RANDOM",
            "HISTCMD",
            "EUID",
            "SHELLOPTS",
        ],
        Shell::Zsh => &["ARGC", "HISTCMD", "ZSH_SUBSHELL", "argv", "path", "status"],
        Shell::Fish => &[
            "FISH_VERSION",
            "SHLVL",
            "status",
            "hostname",
            "umask",
            "PWD",
        ],
        Shell::Dash => &["OPTIND", "PPID", "LINENO"],
    }
}

fn special_shell_variables_in_extra_env_are_refused_and_change_nothing(shell: Shell) {
    let fixture = Fixture::new();
    let names = special_names_of(shell);
    for name in names {
        let dir = format!("special_{name}");
        fixture.layer(
            LayerSpec::new(&dir, &format!("{dir}@t"))
                .dirs(&["bin"])
                .extra_env(&format!("BEFORE=1\n{name}=x[$(touch {CANARY})]\nAFTER=1\n")),
        );
        // Reached as a dependency, the load fails as a whole too.
        fixture.layer(
            LayerSpec::new(&format!("top_{name}"), &format!("top_{name}@t"))
                .dirs(&["bin"])
                .deps(&format!("{dir}@t\n")),
        );
    }
    let mut session = Session::new(&fixture, shell);
    session.hook().dump("before");
    for name in names {
        for label in [format!("special_{name}@t"), format!("top_{name}@t")] {
            let err = session.file(&format!("{label}.err"));
            match shell {
                Shell::Fish => session.line(&format!("layer_load {label} 2> {err}; and exit 5")),
                _ => session.line(&format!("if layer_load {label} 2> {err}; then exit 5; fi")),
            };
        }
    }
    session.dump("after");
    let ran = session.run();
    ran.assert_clean();
    assert_no_canary(fixture.path());
    assert_env_eq(
        "after the refused loads",
        &ran.env("after"),
        &ran.env("before"),
    );
    for name in names {
        let home = fixture.entries[0].join(format!("special_{name}"));
        let file = format!("{}/.layerapi2_extra_env", home_str(&home));
        for label in [format!("special_{name}@t"), format!("top_{name}@t")] {
            let error = ran.text(&format!("{label}.err"));
            assert!(
                error.contains(&format!("`{name}` cannot be set in `{file}` at line 2")),
                "{label}: {error}\n{}",
                ran.describe()
            );
        }
    }
}

fn a_nul_byte_in_an_extra_env_value_is_refused_and_changes_nothing(shell: Shell) {
    let fixture = Fixture::new();
    let home = fixture.layer(
        LayerSpec::new("nul", "nul@t")
            .dirs(&["bin"])
            .extra_env("FIRST=1\n# comment\nWITH_NUL=before\0after\n"),
    );
    let mut session = Session::new(&fixture, shell);
    let err = session.file("err");
    session.hook().dump("before");
    match shell {
        Shell::Fish => session.line(&format!("layer_load nul@t 2> {err}; and exit 5")),
        _ => session.line(&format!("if layer_load nul@t 2> {err}; then exit 5; fi")),
    };
    session.dump("after");
    let ran = session.run();
    ran.assert_clean();
    assert_env_eq(
        "after the refused load",
        &ran.env("after"),
        &ran.env("before"),
    );
    let error = ran.text("err");
    let file = format!("{}/.layerapi2_extra_env", home_str(&home));
    assert!(
        error.contains(&format!(
            "the value of `WITH_NUL` in `{file}` at line 3 holds a NUL byte"
        )),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------
// Layer trees that are not UTF-8
// ---------------------------------------------------------------------------------------

type RawEnv = BTreeMap<Vec<u8>, Vec<u8>>;

/// The dump `name` of `ran` as bytes, shell-owned variables left out.
fn raw_env(ran: &Ran, name: &str) -> RawEnv {
    let bytes = fs::read(ran.dir.path().join(format!("{name}.env")))
        .unwrap_or_else(|err| panic!("no dump `{name}` ({err})\n{}", ran.describe()));
    bytes
        .split(|byte| *byte == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let at = entry.iter().position(|b| *b == b'=')?;
            let name = &entry[..at];
            (!SHELL_OWNED.iter().any(|owned| owned.as_bytes() == name))
                .then(|| (name.to_vec(), entry[at + 1..].to_vec()))
        })
        .collect()
}

fn raw_marker(home: &[u8]) -> Vec<u8> {
    use md5::{Digest, Md5};
    let hex: String = Md5::digest(home)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("LAYERAPI2_LAYER_{hex}_LOADED").into_bytes()
}

fn a_latin1_layer_tree_loads_and_unloads_byte_for_byte(shell: Shell) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new();
    // `café@t` in Latin-1: directory name, label, value and a dependency naming it.
    let entry = fixture.entries[0].clone();
    let home = entry.join(OsStr::from_bytes(b"caf\xe9"));
    fs::create_dir_all(home.join("bin")).expect("layer dir");
    fs::write(home.join(".layerapi2_label"), b"caf\xe9@t\n").expect("label");
    fs::write(
        home.join(".layerapi2_extra_env"),
        b"GREETING=h\xe9llo '\xff'\nPLAIN=ok\n",
    )
    .expect("extra_env");
    fixture.layer(LayerSpec::new("top", "top@t").extra_env("TOP=1\n"));
    fs::write(entry.join("top/.layerapi2_dependencies"), b"caf\xe9@t\n").expect("deps");
    let home_bytes = home.as_os_str().as_bytes().to_vec();

    let mut session = Session::new(&fixture, shell);
    session.hook().dump("before");
    session.line("layer_load top@t").dump("loaded");
    match shell {
        Shell::Fish => session.line("set label caf(/usr/bin/printf '\\351')@t"),
        _ => session.line("label=\"caf$(/usr/bin/printf '\\351')@t\""),
    };
    let label = match shell {
        Shell::Fish => "$label",
        _ => "\"$label\"",
    };
    session
        .line(&format!("layer_unload {label}"))
        .dump("unloaded")
        .line(&format!("layer_load {label}"))
        .dump("by_label")
        .line(&format!("layer_unload {label}"))
        .dump("end");
    let ran = session.run();
    ran.assert_clean();

    let before = raw_env(&ran, "before");
    let loaded = raw_env(&ran, "loaded");
    assert_eq!(
        loaded.get(b"GREETING".as_slice()).map(Vec::as_slice),
        Some(b"h\xe9llo '\xff'".as_slice()),
        "{}",
        ran.describe()
    );
    assert_eq!(
        loaded.get(b"TOP".as_slice()).map(Vec::as_slice),
        Some(b"1".as_slice())
    );
    assert_eq!(
        loaded.get(&raw_marker(&home_bytes)).map(Vec::as_slice),
        Some(b"1".as_slice()),
        "the marker hashes the home's bytes"
    );
    let mut bin = home_bytes.clone();
    bin.extend_from_slice(b"/bin");
    assert!(
        loaded[b"PATH".as_slice()]
            .split(|b| *b == b':')
            .any(|e| e == bin),
        "{}",
        String::from_utf8_lossy(&loaded[b"PATH".as_slice()])
    );
    assert_eq!(
        raw_env(&ran, "unloaded"),
        before,
        "the unload (and its fix-up) restores"
    );
    let by_label = raw_env(&ran, "by_label");
    assert_eq!(
        by_label.get(b"GREETING".as_slice()).map(Vec::as_slice),
        Some(b"h\xe9llo '\xff'".as_slice())
    );
    assert_eq!(raw_env(&ran, "end"), before);
}
