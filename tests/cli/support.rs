//! Helpers for the CLI tests: a "shell session" that chains mfenv calls the way a real
//! shell does (run mfenv, eval its bash output, hand the resulting environment to the
//! next call), and assertions on failures and error layout.
//!
//! The environment after a load is computed by really evaluating mfenv's output in
//! `bash --noprofile --norc -euo pipefail` and dumping `env -0`: that is what a user's
//! shell does, so quoting mistakes show up as wrong values, not as parser guesses.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::*;

/// An environment: variable name to value.
pub type EnvMap = BTreeMap<String, String>;

/// Variables bash adds to every environment it exports; dropped unless they were there.
const BASH_OWN_VARIABLES: [&str; 3] = ["PWD", "SHLVL", "_"];

/// The five path-like variables a layer changes.
pub const PATH_VARIABLES: [&str; 5] = [
    "PATH",
    "LD_LIBRARY_PATH",
    "PKG_CONFIG_PATH",
    "PYTHONPATH",
    "NODE_PATH",
];

fn env_program() -> &'static Path {
    static ENV: OnceLock<PathBuf> = OnceLock::new();
    ENV.get_or_init(|| require_program("env"))
}

/// Evaluates bash `code` in exactly `env` (nothing inherited) and returns the resulting
/// exported environment. Fails the test if bash reports anything on stderr.
pub fn eval_bash(env: &EnvMap, code: &str, cwd: &Path) -> EnvMap {
    let bash = require_program("bash");
    let output = Command::new(bash)
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .args(["--noprofile", "--norc", "-euo", "pipefail", "-c"])
        .arg("eval \"$1\"; exec \"$2\" -0")
        .arg("bash")
        .arg(code)
        .arg(env_program())
        .output()
        .expect("run bash");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "bash could not evaluate mfenv's output ({:?})\ncode:\n{code}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    let dump = String::from_utf8(output.stdout).expect("utf-8 environment");
    let mut result = EnvMap::new();
    for entry in dump.split('\0').filter(|e| !e.is_empty()) {
        let (name, value) = entry.split_once('=').expect("NAME=value");
        result.insert(name.to_owned(), value.to_owned());
    }
    for name in BASH_OWN_VARIABLES {
        if !env.contains_key(name) {
            result.remove(name);
        }
    }
    result
}

/// Fails the test if mfenv panicked.
pub fn assert_no_panic(output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "mfenv panicked:\n{stderr}"
    );
    // 101 is Rust's exit code for a panic; 134 an abort (release `panic = "abort"`).
    assert!(
        !matches!(output.status.code(), Some(101) | Some(134) | None),
        "mfenv died abnormally ({:?}):\n{stderr}",
        output.status
    );
}

/// Asserts a clean failure: exit `code`, nothing on stdout, no panic. Returns stderr.
pub fn assert_failure(output: &Output, code: i32) -> String {
    assert_no_panic(output);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.stdout.is_empty(),
        "a failure must leave stdout empty, got:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// Asserts a failure (exit 1) whose stderr is one error in mfenv's layout:
/// `mfenv: error: …`, then `  caused by: …` lines (continuations indented), then at most
/// one `hint: …`. Returns stderr.
pub fn assert_error(output: &Output) -> String {
    let stderr = assert_failure(output, 1);
    assert_error_layout(&stderr);
    stderr
}

/// Checks the error layout of `stderr` (see [`assert_error`]).
pub fn assert_error_layout(stderr: &str) {
    assert!(
        !stderr.contains('\x1b'),
        "no colour when stderr is not a terminal:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    let first_error = lines
        .iter()
        .position(|l| l.starts_with("mfenv: error: "))
        .unwrap_or_else(|| panic!("no `mfenv: error:` line in:\n{stderr}"));
    assert!(
        lines[..first_error]
            .iter()
            .all(|l| l.starts_with("mfenv: debug: ") || l.starts_with("mfenv: warning: ")),
        "only debug or warning lines may precede the error:\n{stderr}"
    );
    let rest = &lines[first_error + 1..];
    let mut seen_hint = false;
    for line in rest {
        if line.starts_with("hint: ") {
            assert!(!seen_hint, "one hint at most:\n{stderr}");
            seen_hint = true;
        } else {
            assert!(
                !seen_hint && (line.starts_with("  caused by: ") || line.starts_with("    ")),
                "unexpected line `{line}` in the error:\n{stderr}"
            );
        }
    }
    let message = &lines[first_error]["mfenv: error: ".len()..];
    assert!(!message.ends_with('.'), "no trailing period in `{message}`");
}

/// A shell session: an environment that successive mfenv calls read and change.
pub struct Session<'f> {
    pub fixture: &'f Fixture,
    pub env: EnvMap,
}

impl<'f> Session<'f> {
    /// A session starting from the fixture's base environment.
    pub fn new(fixture: &'f Fixture) -> Self {
        Session {
            fixture,
            env: fixture.base_env(),
        }
    }

    /// `mfenv ARGS` in exactly the session's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(mfenv_binary());
        command
            .env_clear()
            .envs(&self.env)
            .args(args)
            .current_dir(self.fixture.path());
        command
    }

    /// Runs `mfenv ARGS` without changing the session; checks it did not panic.
    pub fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().expect("run mfenv");
        assert_no_panic(&output);
        output
    }

    /// Runs `mfenv ARGS` (a load or unload in bash), which must succeed, and evaluates its
    /// output in bash: the session's environment becomes the result.
    pub fn apply(&mut self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert_success(&output);
        self.env = eval_bash(&self.env, &stdout(&output), self.fixture.path());
        output
    }

    /// `mfenv load LAYERS…`, evaluated.
    pub fn load(&mut self, layers: &[&str]) -> Output {
        let mut args = vec!["load"];
        args.extend_from_slice(layers);
        self.apply(&args)
    }

    /// `mfenv unload LAYERS…`, evaluated.
    pub fn unload(&mut self, layers: &[&str]) -> Output {
        let mut args = vec!["unload"];
        args.extend_from_slice(layers);
        self.apply(&args)
    }

    /// Labels of the loaded layers of the layers path, in path order (`layers --raw -m yes`).
    pub fn loaded(&self) -> Vec<String> {
        let output = self.run(&["layers", "--raw", "-m", "yes"]);
        assert_success(&output);
        stdout(&output)
            .lines()
            .map(|line| line.split(' ').next().unwrap_or_default().to_owned())
            .collect()
    }

    /// `mfenv is-loaded LAYER` as a boolean.
    pub fn is_loaded(&self, layer: &str) -> bool {
        let output = self.run(&["is-loaded", layer]);
        assert_success(&output);
        match stdout(&output).as_str() {
            "1\n" => true,
            "0\n" => false,
            other => panic!("is-loaded printed {other:?}"),
        }
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The elements of a path-like variable (none when unset or empty).
    pub fn entries(&self, name: &str) -> Vec<String> {
        match self.var(name) {
            None | Some("") => Vec::new(),
            Some(value) => value.split(':').map(str::to_owned).collect(),
        }
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.env.insert(name.to_owned(), value.to_owned());
    }

    pub fn remove(&mut self, name: &str) {
        self.env.remove(name);
    }
}

/// A path as `&str` (fixture paths are UTF-8).
pub fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `home/sub` as a string, built like layerapi2 does (`home + "/" + sub`).
pub fn under(home: &Path, sub: &str) -> String {
    format!("{}/{sub}", text(home))
}

/// Writes `content` to `path`, creating parent directories.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("parent dir");
    }
    fs::write(path, content).expect("write file");
}

/// Replaces the fixture root by `[ROOT]` and each home's loaded marker by
/// `LAYERAPI2_LAYER_[<label>]_LOADED`, so that output can be snapshotted.
pub fn normalise(text: &str, fixture: &Fixture, homes: &[(&str, &Path)]) -> String {
    let mut out = text.to_owned();
    for (label, home) in homes {
        out = out.replace(
            &marker_name(crate::support::text(home)),
            &format!("LAYERAPI2_LAYER_[{label}]_LOADED"),
        );
    }
    out.replace(crate::support::text(fixture.path()), "[ROOT]")
}

/// Lines of stdout, for order checks.
pub fn lines(output: &Output) -> Vec<String> {
    stdout(output).lines().map(str::to_owned).collect()
}

/// Whether the tests run as root (where `chmod 000` does not stop reads).
pub fn running_as_root() -> bool {
    let probe = tempfile::NamedTempFile::new().expect("temp file");
    set_mode(probe.path(), 0o000);
    let readable = fs::read(probe.path()).is_ok();
    set_mode(probe.path(), 0o600);
    readable
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}
