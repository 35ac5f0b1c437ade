//! Shared fixtures for the integration tests: temporary layer trees and a clean
//! environment to run the real `mfenv` binary in.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The mfenv binary under test.
pub fn mfenv_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mfenv"))
}

/// A layer to write on disk.
#[derive(Debug, Clone, Default)]
pub struct LayerSpec {
    /// Directory name below the layers-path entry.
    pub dir: String,
    pub label: String,
    pub dependencies: Option<String>,
    pub conflicts: Option<String>,
    pub extra_env: Option<String>,
    pub profile: Option<String>,
    pub unprofile: Option<String>,
    /// Sub-directories to create (`bin`, `lib`, `local/bin`, ...).
    pub dirs: Vec<String>,
}

impl LayerSpec {
    pub fn new(dir: &str, label: &str) -> Self {
        LayerSpec {
            dir: dir.to_owned(),
            label: label.to_owned(),
            dirs: vec!["bin".to_owned()],
            ..LayerSpec::default()
        }
    }
    pub fn deps(mut self, text: &str) -> Self {
        self.dependencies = Some(text.to_owned());
        self
    }
    pub fn conflicts(mut self, text: &str) -> Self {
        self.conflicts = Some(text.to_owned());
        self
    }
    pub fn extra_env(mut self, text: &str) -> Self {
        self.extra_env = Some(text.to_owned());
        self
    }
    pub fn profile(mut self, text: &str) -> Self {
        self.profile = Some(text.to_owned());
        self
    }
    pub fn unprofile(mut self, text: &str) -> Self {
        self.unprofile = Some(text.to_owned());
        self
    }
    pub fn dirs(mut self, dirs: &[&str]) -> Self {
        self.dirs = dirs.iter().map(|d| d.to_string()).collect();
        self
    }
}

/// A temporary directory with layers-path entries, a HOME, and a clean environment.
pub struct Fixture {
    pub root: tempfile::TempDir,
    /// Layers-path entries, in order.
    pub entries: Vec<PathBuf>,
    /// Extra environment variables for every command.
    pub env: BTreeMap<String, String>,
}

impl Fixture {
    /// A fixture with one layers-path entry named `layers`.
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let entry = root.path().join("layers");
        fs::create_dir_all(&entry).expect("layers dir");
        fs::create_dir_all(root.path().join("home")).expect("home dir");
        let mut fixture = Fixture {
            root,
            entries: vec![entry],
            env: BTreeMap::new(),
        };
        fixture
            .env
            .insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        fixture
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Adds another layers-path entry (created) and returns its path.
    pub fn add_entry(&mut self, name: &str) -> PathBuf {
        let entry = self.root.path().join(name);
        fs::create_dir_all(&entry).expect("entry dir");
        self.entries.push(entry.clone());
        entry
    }

    /// The value of LAYERAPI2_LAYERS_PATH for this fixture.
    pub fn layers_path(&self) -> String {
        self.entries
            .iter()
            .map(|p| p.to_str().expect("utf-8 temp path").to_owned())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Writes a layer in the first entry; returns its home.
    pub fn layer(&self, spec: LayerSpec) -> PathBuf {
        self.layer_in(0, spec)
    }

    /// Writes a layer in entry `index`; returns its home.
    pub fn layer_in(&self, index: usize, spec: LayerSpec) -> PathBuf {
        let home = self.entries[index].join(&spec.dir);
        write_layer(&home, &spec);
        home
    }

    /// The environment every command starts from.
    pub fn base_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "HOME".to_owned(),
            self.root.path().join("home").to_str().unwrap().to_owned(),
        );
        env.insert("LAYERAPI2_LAYERS_PATH".to_owned(), self.layers_path());
        env.insert("LC_ALL".to_owned(), "C.UTF-8".to_owned());
        env.extend(self.env.clone());
        env
    }

    /// `mfenv ARGS` in the fixture's clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(mfenv_binary());
        command.env_clear().envs(self.base_env()).args(args);
        command.current_dir(self.root.path());
        command
    }

    /// Runs `mfenv ARGS` with extra variables on top of the base environment.
    pub fn run_with(&self, args: &[&str], extra: &BTreeMap<String, String>) -> Output {
        let mut command = self.command(args);
        command.envs(extra);
        command.output().expect("run mfenv")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mfenv")
    }
}

/// Writes the files of a layer at `home`.
pub fn write_layer(home: &Path, spec: &LayerSpec) {
    fs::create_dir_all(home).expect("layer home");
    fs::write(home.join(".layerapi2_label"), format!("{}\n", spec.label)).expect("label");
    let files = [
        (".layerapi2_dependencies", &spec.dependencies),
        (".layerapi2_conflicts", &spec.conflicts),
        (".layerapi2_extra_env", &spec.extra_env),
        (".layerapi2_interactive_profile", &spec.profile),
        (".layerapi2_interactive_unprofile", &spec.unprofile),
    ];
    for (name, content) in files {
        if let Some(content) = content {
            fs::write(home.join(name), content).expect("layer file");
        }
    }
    for dir in &spec.dirs {
        fs::create_dir_all(home.join(dir)).expect("layer sub-directory");
    }
}

/// stdout as UTF-8 text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

/// stderr as UTF-8 text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

/// Fails the test with both streams when the command did not succeed.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "mfenv failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The loaded-marker variable name of a home (md5 of the exact home string).
pub fn marker_name(home: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(home.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("LAYERAPI2_LAYER_{hex}_LOADED")
}

/// Whether `program` is on PATH; tests needing a shell call [`require_program`].
pub fn has_program(program: &str) -> bool {
    which::which(program).is_ok()
}

/// Panics with a clear message when a required program is missing: tests that need a
/// real shell never pass silently without it.
pub fn require_program(program: &str) -> PathBuf {
    which::which(program).unwrap_or_else(|_| {
        panic!(
            "`{program}` is required by this test but is not installed; run `scripts/test`, which installs zsh, fish and dash"
        )
    })
}

/// An environment as a map (what `env -0` printed).
pub type EnvVars = BTreeMap<String, String>;

/// The absolute path of the `env` program, for commands run from an emptied environment.
pub fn env_program_path() -> PathBuf {
    require_program("env")
}

/// Parses an `env -0` dump (NUL-separated `NAME=value` entries).
pub fn env_from_nul_dump(bytes: &[u8]) -> EnvVars {
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8 environment dump");
    text.split('\0')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, value) = entry.split_once('=').expect("NAME=value entry");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Evaluates bash `code` in exactly `env` (nothing inherited, no rc files, strict mode)
/// and returns the environment bash exports afterwards. The variables bash adds on its
/// own (`PWD`, `SHLVL`, `_`) are dropped unless `env` had them. Fails the test if bash
/// fails or writes anything on stderr.
pub fn env_after_bash(env: &EnvVars, code: &str, cwd: &Path) -> EnvVars {
    let output = Command::new(require_program("bash"))
        .env_clear()
        .envs(env)
        .current_dir(cwd)
        .args(["--noprofile", "--norc", "-euo", "pipefail", "-c"])
        .arg("eval \"$1\"; exec \"$2\" -0")
        .arg("bash")
        .arg(code)
        .arg(env_program_path())
        .output()
        .expect("run bash");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "bash could not evaluate the code ({:?})\ncode:\n{code}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut result = env_from_nul_dump(&output.stdout);
    for name in ["PWD", "SHLVL", "_"] {
        if !env.contains_key(name) {
            result.remove(name);
        }
    }
    result
}

/// A path as `&str` (fixture paths are UTF-8).
pub fn utf8_path(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
