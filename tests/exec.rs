//! `mfenv exec`: run a command with layers loaded (the old `layer_wrapper`).
//!
//! The command replaces mfenv (no process in between): its exit status, signals, pid and
//! standard streams are its own. The environment it gets is checked by making the
//! command `env -0` and reading the dump.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// The layer tree most tests use.
struct Tree {
    fixture: Fixture,
    /// `base@t`: bin and lib, extra_env BASE_VAR and SHARED.
    base: PathBuf,
    /// `tool@t`: depends on base@t, bin, extra_env TOOL_VAR.
    tool: PathBuf,
    /// `withopt@t`: optional dependency on extra@t.
    withopt: PathBuf,
    /// `extra@t`.
    extra: PathBuf,
    /// `bare@t`: no sub-directory at all.
    bare: PathBuf,
    /// `profiled@t`: interactive profile and unprofile that create canary files.
    profiled: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let fixture = Fixture::new();
        let base = fixture.layer(
            LayerSpec::new("base", "base@t")
                .dirs(&["bin", "lib"])
                .extra_env("BASE_VAR=base\nSHARED=from_base\n"),
        );
        let tool = fixture.layer(
            LayerSpec::new("tool", "tool@t")
                .deps("base@t\n")
                .extra_env("TOOL_VAR=tool\n"),
        );
        let withopt = fixture.layer(LayerSpec::new("withopt", "withopt@t").deps("-extra@t\n"));
        let extra = fixture.layer(LayerSpec::new("extra", "extra@t"));
        // Loading it first loads base@t, then fails on the missing dependency.
        fixture.layer(LayerSpec::new("broken", "broken@t").deps("base@t\nmissing@t\n"));
        let bare = fixture.layer(LayerSpec::new("bare", "bare@t").dirs(&[]));
        let canary = fixture.path().join("profile_canary");
        let uncanary = fixture.path().join("unprofile_canary");
        let profiled = fixture.layer(
            LayerSpec::new("profiled", "profiled@t")
                .profile(&format!("touch '{}'\n", utf8_path(&canary)))
                .unprofile(&format!("touch '{}'\n", utf8_path(&uncanary))),
        );
        Tree {
            fixture,
            base,
            tool,
            withopt,
            extra,
            bare,
            profiled,
        }
    }

    fn root(&self) -> &Path {
        self.fixture.path()
    }

    /// `mfenv ARGS` in the fixture's base environment, run from the fixture root.
    fn command(&self, args: &[&str]) -> Command {
        self.fixture.command(args)
    }

    /// `mfenv exec OPTIONS -- env -0` from `env` (exactly); returns the command's environment.
    fn exec_env_from(&self, env: &EnvVars, options: &[&str]) -> EnvVars {
        let output = Command::new(mfenv_binary())
            .env_clear()
            .envs(env)
            .current_dir(self.root())
            .arg("exec")
            .args(options)
            .arg("--")
            .arg(env_program_path())
            .arg("-0")
            .output()
            .expect("run mfenv exec");
        assert_success(&output);
        env_from_nul_dump(&output.stdout)
    }

    /// `mfenv exec OPTIONS -- env -0` from the base environment.
    fn exec_env(&self, options: &[&str]) -> EnvVars {
        self.exec_env_from(&self.fixture.base_env(), options)
    }

    /// The base environment after evaluating `mfenv load LAYERS` in bash, starting from
    /// the base environment plus `before`.
    fn loaded_env(&self, before: &[(&str, &str)], layers: &[&str]) -> EnvVars {
        let mut env = self.fixture.base_env();
        for (name, value) in before {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let output = Command::new(mfenv_binary())
            .env_clear()
            .envs(&env)
            .current_dir(self.root())
            .arg("load")
            .args(layers)
            .output()
            .expect("run mfenv load");
        assert_success(&output);
        env_after_bash(&env, &stdout(&output), self.root())
    }

    fn canary(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }
}

fn home(path: &Path) -> String {
    utf8_path(path).to_owned()
}

fn entries(env: &EnvVars, name: &str) -> Vec<String> {
    match env.get(name).map(String::as_str) {
        None | Some("") => Vec::new(),
        Some(value) => value.split(':').map(str::to_owned).collect(),
    }
}

fn under(home: &Path, sub: &str) -> String {
    format!("{}/{sub}", utf8_path(home))
}

fn vars(pairs: &[(&str, &str)]) -> EnvVars {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn is_loaded(env: &EnvVars, home: &Path) -> bool {
    env.get(&marker_name(utf8_path(home))).map(String::as_str) == Some("1")
}

fn assert_failed_without_output(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout expected, got:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "mfenv panicked:\n{stderr}");
    stderr
}

// ---------------------------------------------------------------------------------
// Exit status, signals, pid, streams
// ---------------------------------------------------------------------------------

#[test]
fn a_successful_command_exits_with_0() {
    let tree = Tree::new();
    let output = tree
        .command(&["exec", "-l", "tool@t", "--", "true"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
}

#[test]
fn the_exit_status_is_the_commands_own() {
    let tree = Tree::new();
    let output = tree
        .command(&["exec", "-l", "tool@t", "--", "sh", "-c", "exit 42"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(42));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
}

#[test]
fn a_command_that_is_not_found_exits_with_127_and_says_so() {
    let tree = Tree::new();
    let output = tree
        .command(&["exec", "-l", "tool@t", "--", "mfenv-test-no-such-command"])
        .output()
        .unwrap();
    let stderr = assert_failed_without_output(&output, 127);
    assert!(
        stderr.contains("mfenv-test-no-such-command") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn a_command_that_is_not_executable_exits_with_126() {
    let tree = Tree::new();
    let script = tree.root().join("not_executable.sh");
    fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let output = tree
        .command(&["exec", "--", utf8_path(&script)])
        .output()
        .unwrap();
    let stderr = assert_failed_without_output(&output, 126);
    assert!(stderr.contains("not_executable.sh"), "{stderr}");
}

#[test]
fn a_mandatory_layer_that_is_missing_stops_the_command_with_exit_1() {
    let tree = Tree::new();
    let canary = tree.canary("ran");
    let script = format!("touch '{}'", utf8_path(&canary));
    let output = tree
        .command(&["exec", "-l", "tool@t,missing@t", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = assert_failed_without_output(&output, 1);
    assert!(!canary.exists(), "the command must not run");
    assert!(stderr.contains("mfenv: error: "), "{stderr}");
    assert!(stderr.contains("`missing@t`"), "names the layer:\n{stderr}");
    assert!(
        stderr.contains("not running `sh`"),
        "says the command was not run:\n{stderr}"
    );
}

#[test]
fn a_mandatory_layer_whose_dependency_is_missing_stops_the_command() {
    let tree = Tree::new();
    let canary = tree.canary("ran");
    let script = format!("touch '{}'", utf8_path(&canary));
    let output = tree
        .command(&["exec", "-l", "broken@t", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = assert_failed_without_output(&output, 1);
    assert!(!canary.exists(), "the command must not run");
    assert!(
        stderr.contains("broken@t") && stderr.contains("missing@t"),
        "{stderr}"
    );
}

#[test]
fn every_failing_mandatory_layer_is_reported() {
    let tree = Tree::new();
    let output = tree
        .command(&["exec", "-l", "nope1@t,tool@t,nope2@t", "--", "true"])
        .output()
        .unwrap();
    let stderr = assert_failed_without_output(&output, 1);
    assert!(
        stderr.contains("nope1@t") && stderr.contains("nope2@t"),
        "{stderr}"
    );
    assert!(stderr.contains("2 layers failed"), "{stderr}");
}

#[test]
fn a_signal_kills_the_command_itself_with_no_process_in_between() {
    let tree = Tree::new();
    let status = tree
        .command(&["exec", "-l", "tool@t", "--", "sh", "-c", "kill -TERM $$"])
        .status()
        .unwrap();
    assert_eq!(status.code(), None, "{status:?}");
    assert_eq!(status.signal(), Some(15), "{status:?}");
}

#[test]
fn the_command_runs_with_the_pid_mfenv_was_started_with() {
    let tree = Tree::new();
    let mut child = tree
        .command(&["exec", "-l", "tool@t", "--", "sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out.trim(), pid.to_string());
}

#[test]
fn stdin_passes_through_to_the_command_byte_for_byte() {
    let tree = Tree::new();
    let input: Vec<u8> = b"line one\n\xff\xfe binary\0 and a NUL\nlast".to_vec();
    let mut child = tree
        .command(&["exec", "-l", "tool@t", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_success(&output);
    assert_eq!(output.stdout, input);
}

#[test]
fn a_non_utf8_argument_reaches_the_command_unchanged() {
    let tree = Tree::new();
    let argument = OsStr::from_bytes(b"caf\xe9 \xff\xfe end");
    let output = tree
        .command(&["exec", "-l", "tool@t", "--", "printf", "%s"])
        .arg(argument)
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(output.stdout, argument.as_bytes());
}

#[test]
fn a_hostile_argument_is_passed_as_data_never_interpreted() {
    let tree = Tree::new();
    let canary = tree.canary("canary");
    let hostile = format!(
        "$(touch '{0}') `touch '{0}'` ; touch '{0}' | \"' \n",
        utf8_path(&canary)
    );
    let output = tree
        .command(&["exec", "-l", "tool@t", "--", "printf", "%s", &hostile])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), hostile);
    assert!(!canary.exists(), "the argument was interpreted by a shell");
}

#[test]
fn a_hostile_prepend_value_is_data_never_interpreted() {
    let tree = Tree::new();
    let canary = tree.canary("canary");
    let hostile = format!("/x/$(touch '{}')", utf8_path(&canary));
    let env = tree.exec_env(&["-p", &format!("MY_LIST,{hostile}")]);
    assert_eq!(env.get("MY_LIST"), Some(&hostile));
    assert!(!canary.exists());
}

#[test]
fn usage_errors_exit_with_2_and_run_nothing() {
    let tree = Tree::new();
    let canary = tree.canary("ran");
    let script = format!("touch '{}'", utf8_path(&canary));
    for bad in ["PATH", "PATH,a,b", "1BAD,/x", ",/x"] {
        let output = tree
            .command(&["exec", "-l", "tool@t", "-p", bad, "--", "sh", "-c", &script])
            .output()
            .unwrap();
        let stderr = assert_failed_without_output(&output, 2);
        assert!(stderr.contains("--prepend-env"), "{bad}: {stderr}");
        assert!(!canary.exists(), "{bad}: the command ran");
    }
    let output = tree.command(&["exec", "-l", "tool@t"]).output().unwrap();
    assert_failed_without_output(&output, 2);
}

// ---------------------------------------------------------------------------------
// The environment the command gets
// ---------------------------------------------------------------------------------

#[test]
fn the_command_gets_the_layers_their_markers_and_the_state() {
    let tree = Tree::new();
    let before = tree.fixture.base_env();
    let env = tree.exec_env(&["-l", "tool@t"]);
    assert_eq!(
        entries(&env, "PATH"),
        [
            under(&tree.tool, "bin"),
            under(&tree.base, "bin"),
            "/usr/local/bin".into(),
            "/usr/bin".into(),
            "/bin".into()
        ]
    );
    assert_eq!(env["LD_LIBRARY_PATH"], under(&tree.base, "lib"));
    assert_eq!(env["BASE_VAR"], "base");
    assert_eq!(env["TOOL_VAR"], "tool");
    assert!(is_loaded(&env, &tree.base) && is_loaded(&env, &tree.tool));
    assert!(env["__MFENV_STATE"].starts_with("1:"), "{env:?}");
    // Nothing else changed.
    for (name, value) in &before {
        if name != "PATH" {
            assert_eq!(env.get(name), Some(value), "{name}");
        }
    }
}

#[test]
fn the_command_sees_its_layers_as_loaded_and_can_unload_them_exactly() {
    let tree = Tree::new();
    let binary = mfenv_binary();
    let output = tree
        .command(&["exec", "-l", "tool@t", "--"])
        .arg(&binary)
        .args(["is-loaded", "base@t"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), "1\n");

    // The state the command got makes an exact unload possible.
    let env = tree.exec_env(&["-l", "tool@t"]);
    let unload = Command::new(&binary)
        .env_clear()
        .envs(&env)
        .current_dir(tree.root())
        .args(["unload", "base@t"])
        .output()
        .unwrap();
    assert_success(&unload);
    let after = env_after_bash(&env, &stdout(&unload), tree.root());
    assert_eq!(after, tree.fixture.base_env());
}

#[test]
fn interactive_profiles_are_never_sourced() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-l", "profiled@t"]);
    assert!(is_loaded(&env, &tree.profiled));
    assert!(!tree.canary("profile_canary").exists(), "profile sourced");

    let loaded = tree.exec_env_from(&env, &["-e", "-l", "base@t"]);
    assert!(!is_loaded(&loaded, &tree.profiled));
    assert!(
        !tree.canary("unprofile_canary").exists(),
        "unprofile sourced"
    );
}

#[test]
fn layers_of_one_list_load_in_order_each_in_front_of_the_previous() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-l", "extra@t,base@t", "-l", "withopt@t"]);
    let path = entries(&env, "PATH");
    assert_eq!(
        path[..3],
        [
            under(&tree.withopt, "bin"),
            under(&tree.base, "bin"),
            under(&tree.extra, "bin"),
        ]
    );
}

#[test]
fn a_missing_optional_layer_is_ignored() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-l", "-missing@t,tool@t,-other_missing@t"]);
    assert!(is_loaded(&env, &tree.tool));

    let env = tree.exec_env(&["-l", "-missing@t"]);
    assert!(!env.contains_key("__MFENV_STATE"));
    assert_eq!(env, tree.fixture.base_env());
}

#[test]
fn an_optional_layer_that_fails_leaves_no_partial_load() {
    let tree = Tree::new();
    // broken@t would load base@t before failing on its missing dependency.
    let env = tree.exec_env(&["-l", "-broken@t"]);
    assert!(!is_loaded(&env, &tree.base), "{env:?}");
    assert_eq!(env, tree.fixture.base_env());

    let env = tree.exec_env(&["-l", "-broken@t,extra@t"]);
    assert!(is_loaded(&env, &tree.extra));
    assert!(!is_loaded(&env, &tree.base));
    assert!(!env.contains_key("BASE_VAR"));
}

#[test]
fn optional_dependencies_load_unless_dont_load_optional() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-l", "withopt@t"]);
    assert!(is_loaded(&env, &tree.withopt) && is_loaded(&env, &tree.extra));

    let env = tree.exec_env(&["--dont-load-optional", "-l", "withopt@t"]);
    assert!(is_loaded(&env, &tree.withopt));
    assert!(!is_loaded(&env, &tree.extra));
    assert!(!entries(&env, "PATH").contains(&under(&tree.extra, "bin")));
}

#[test]
fn debug_explains_on_stderr_and_does_not_skip_optional_dependencies() {
    let tree = Tree::new();
    let output = tree
        .command(&["exec", "-d", "-l", "withopt@t", "--"])
        .arg(env_program_path())
        .arg("-0")
        .output()
        .unwrap();
    assert_success(&output);
    let env = env_from_nul_dump(&output.stdout);
    assert!(is_loaded(&env, &tree.extra), "-d is debug only");
    let stderr = stderr(&output);
    assert!(
        stderr.lines().all(|l| l.starts_with("mfenv: debug: ")),
        "{stderr}"
    );
    assert!(stderr.contains("withopt@t"), "{stderr}");
}

#[test]
fn force_prepend_adds_every_directory_even_missing_ones() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-l", "bare@t"]);
    assert!(is_loaded(&env, &tree.bare));
    assert_eq!(env["PATH"], tree.fixture.base_env()["PATH"]);
    assert!(!env.contains_key("LD_LIBRARY_PATH"));

    let env = tree.exec_env(&["-f", "-l", "bare@t"]);
    let bare = &tree.bare;
    assert_eq!(
        entries(&env, "PATH")[..5],
        [
            under(bare, "local/bin"),
            under(bare, "bin"),
            under(bare, "local/lib/node_modules/.bin"),
            under(bare, "lib/node_modules/.bin"),
            under(bare, "node_modules/.bin"),
        ]
    );
    assert_eq!(
        entries(&env, "LD_LIBRARY_PATH"),
        [under(bare, "local/lib"), under(bare, "lib")]
    );
    assert_eq!(
        entries(&env, "PKG_CONFIG_PATH"),
        [
            under(bare, "local/lib/pkgconfig"),
            under(bare, "lib/pkgconfig")
        ]
    );
    assert_eq!(
        entries(&env, "NODE_PATH"),
        [
            under(bare, "local/lib/node_modules"),
            under(bare, "lib/node_modules"),
            under(bare, "node_modules"),
        ]
    );
    // No python version set: the site-packages prepends are skipped, never `(null)`.
    assert_eq!(
        entries(&env, "PYTHONPATH"),
        [under(bare, "local/lib"), under(bare, "lib")]
    );

    let long = tree.exec_env(&["--force-prepend", "-l", "bare@t"]);
    assert_eq!(long, env);
}

#[test]
fn prepend_env_applies_after_the_layers_in_order() {
    let tree = Tree::new();
    let env = tree.exec_env(&[
        "-p",
        "PATH,/first",
        "-l",
        "tool@t",
        "--prepend-env",
        "PATH,/second",
        "-p",
        "BASE_VAR,/before_base",
        "-p",
        "NEW_LIST,/only",
    ]);
    assert_eq!(
        entries(&env, "PATH")[..4],
        [
            "/second".to_owned(),
            "/first".to_owned(),
            under(&tree.tool, "bin"),
            under(&tree.base, "bin"),
        ]
    );
    // After the layers: the layer's value is there to prepend to.
    assert_eq!(env["BASE_VAR"], "/before_base:base");
    assert_eq!(env["NEW_LIST"], "/only");
}

#[test]
fn prepend_env_moves_an_existing_entry_to_the_front_without_duplicating_it() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-l", "tool@t", "-p", "PATH,/usr/bin"]);
    assert_eq!(
        entries(&env, "PATH"),
        [
            "/usr/bin".to_owned(),
            under(&tree.tool, "bin"),
            under(&tree.base, "bin"),
            "/usr/local/bin".to_owned(),
            "/bin".to_owned(),
        ]
    );
}

#[test]
fn extra_env_prefix_names_the_last_layer() {
    let tree = Tree::new();
    let env = tree.exec_env(&["-x", "MY", "-l", "extra@t,tool@t"]);
    assert_eq!(env["MY_NAME"], "tool");
    assert_eq!(env["MY_LABEL"], "tool@t");
    assert_eq!(env["MY_DIR"], home(&tree.tool));

    // A layer given by its home.
    let env = tree.exec_env(&["--extra-env-prefix", "P", "-l", utf8_path(&tree.base)]);
    assert_eq!(env["P_NAME"], "base");
    assert_eq!(env["P_LABEL"], "base@t");
    assert_eq!(env["P_DIR"], home(&tree.base));
}

#[test]
fn extra_env_prefix_is_not_set_when_the_last_layer_is_optional_or_failed() {
    let tree = Tree::new();
    for layers in ["tool@t,-extra@t", "tool@t,-missing@t"] {
        let env = tree.exec_env(&["-x", "MY", "-l", layers]);
        assert!(is_loaded(&env, &tree.tool), "{layers}");
        for name in ["MY_NAME", "MY_LABEL", "MY_DIR"] {
            assert!(!env.contains_key(name), "{layers}: {name} set");
        }
    }
}

fn pwd_of(tree: &Tree, options: &[&str]) -> PathBuf {
    let output = tree
        .command(&[&["exec"], options, &["--", "pwd", "-P"]].concat())
        .output()
        .unwrap();
    assert_success(&output);
    PathBuf::from(stdout(&output).trim_end())
}

#[test]
fn cwd_runs_the_command_in_the_home_of_the_last_layer() {
    let tree = Tree::new();
    let canonical = |p: &Path| fs::canonicalize(p).unwrap();
    assert_eq!(
        pwd_of(&tree, &["-c", "-l", "base@t,tool@t"]),
        canonical(&tree.tool)
    );
    assert_eq!(
        pwd_of(&tree, &["--cwd", "-l", "tool@t", "-l", "extra@t"]),
        canonical(&tree.extra)
    );
    assert_eq!(
        pwd_of(&tree, &["-c", "-l", utf8_path(&tree.base)]),
        canonical(&tree.base)
    );
}

#[test]
fn cwd_stays_when_the_last_layer_is_optional_or_there_is_none() {
    let tree = Tree::new();
    let root = fs::canonicalize(tree.root()).unwrap();
    assert_eq!(pwd_of(&tree, &["-c", "-l", "tool@t,-extra@t"]), root);
    assert_eq!(pwd_of(&tree, &["-c", "-l", "tool@t,-missing@t"]), root);
    assert_eq!(pwd_of(&tree, &["-c"]), root);
    assert_eq!(pwd_of(&tree, &["-l", "tool@t"]), root);
}

// ---------------------------------------------------------------------------------
// --empty and --empty-env, from a shell where layers are loaded
// ---------------------------------------------------------------------------------

#[test]
fn empty_unloads_the_layers_loaded_in_the_shell_first() {
    let tree = Tree::new();
    let shell = tree.loaded_env(&[("SHARED", "user value")], &["tool@t"]);
    assert!(is_loaded(&shell, &tree.tool) && is_loaded(&shell, &tree.base));
    assert_eq!(shell["SHARED"], "from_base");

    // Without -e the loaded layers stay.
    let kept = tree.exec_env_from(&shell, &["-l", "extra@t"]);
    assert!(is_loaded(&kept, &tree.tool) && is_loaded(&kept, &tree.extra));

    let env = tree.exec_env_from(&shell, &["-e", "-l", "extra@t"]);
    assert!(is_loaded(&env, &tree.extra));
    assert!(!is_loaded(&env, &tree.tool) && !is_loaded(&env, &tree.base));
    assert!(!env.contains_key("TOOL_VAR") && !env.contains_key("BASE_VAR"));
    assert_eq!(
        env["SHARED"], "user value",
        "the value from before the load"
    );
    assert_eq!(
        entries(&env, "PATH"),
        [
            under(&tree.extra, "bin"),
            "/usr/local/bin".into(),
            "/usr/bin".into(),
            "/bin".into()
        ]
    );
    assert!(!env.contains_key("LD_LIBRARY_PATH"), "was unset before");

    // -e alone gives back the environment from before the load.
    let mut before = tree.fixture.base_env();
    before.insert("SHARED".into(), "user value".into());
    assert_eq!(tree.exec_env_from(&shell, &["--empty"]), before);
}

#[test]
fn empty_env_keeps_exactly_the_asked_variables_and_adds_the_layers() {
    let tree = Tree::new();
    let mut start = tree.fixture.base_env();
    start.insert("KEEP_ME".into(), "kept value".into());
    start.insert("DROP_ME".into(), "dropped".into());
    // LAYERAPI2_LAYERS_PATH is not kept: the layers are still found.
    let mut env = tree.exec_env_from(
        &start,
        &["-E", "-k", "KEEP_ME,HOME", "-k", "NOT_SET", "-l", "base@t"],
    );
    let state = env.remove("__MFENV_STATE").expect("the state is passed");
    assert!(state.starts_with("1:"), "{state}");
    let expected = vars(&[
        ("KEEP_ME", "kept value"),
        ("HOME", &start["HOME"]),
        ("PATH", &under(&tree.base, "bin")),
        ("LD_LIBRARY_PATH", &under(&tree.base, "lib")),
        ("PYTHONPATH", &under(&tree.base, "lib")),
        ("BASE_VAR", "base"),
        ("SHARED", "from_base"),
        (&marker_name(utf8_path(&tree.base)), "1"),
    ]);
    assert_eq!(env, expected);
}

#[test]
fn empty_env_without_layers_or_keeps_gives_an_empty_environment() {
    let tree = Tree::new();
    assert_eq!(tree.exec_env(&["-E"]), EnvVars::new());
    assert_eq!(
        tree.exec_env(&["--empty-env", "--empty-env-keeps", "HOME"]),
        vars(&[("HOME", &tree.fixture.base_env()["HOME"])])
    );
}

#[test]
fn empty_env_takes_the_kept_values_after_unloading_the_loaded_layers() {
    let tree = Tree::new();
    let shell = tree.loaded_env(&[("SHARED", "user value")], &["tool@t"]);
    let env = tree.exec_env_from(&shell, &["-E", "-k", "PATH,SHARED,TOOL_VAR,HOME"]);
    let expected = vars(&[
        ("PATH", &tree.fixture.base_env()["PATH"]),
        ("SHARED", "user value"),
        ("HOME", &shell["HOME"]),
    ]);
    assert_eq!(env, expected);
}

#[test]
fn empty_env_runs_a_command_found_on_the_new_path() {
    let tree = Tree::new();
    let script = tree.tool.join("bin/hello");
    fs::write(&script, "#!/bin/sh\necho \"hello $TOOL_VAR\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let output = tree
        .command(&["exec", "-E", "-l", "tool@t", "--", "hello"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), "hello tool\n");
}

// ---------------------------------------------------------------------------------
// Variables whose value is not UTF-8
// ---------------------------------------------------------------------------------

fn env_with_non_utf8(tree: &Tree, options: &[&str]) -> Vec<u8> {
    let output = tree
        .command(&[&["exec"], options, &["--"]].concat())
        .arg(env_program_path())
        .arg("-0")
        .env("BINARY_VALUE", OsStr::from_bytes(b"ab\xff\xfecd"))
        .output()
        .unwrap();
    assert_success(&output);
    output.stdout
}

#[test]
fn a_non_utf8_variable_passes_through_unchanged() {
    let tree = Tree::new();
    let dump = env_with_non_utf8(&tree, &["-l", "tool@t"]);
    assert!(
        dump.split(|b| *b == 0)
            .any(|entry| entry == b"BINARY_VALUE=ab\xff\xfecd"),
        "{}",
        String::from_utf8_lossy(&dump)
    );
}

#[test]
fn a_kept_non_utf8_variable_survives_empty_env() {
    let tree = Tree::new();
    let dump = env_with_non_utf8(&tree, &["-E", "-k", "BINARY_VALUE,HOME", "-l", "tool@t"]);
    assert!(
        dump.split(|b| *b == 0)
            .any(|entry| entry == b"BINARY_VALUE=ab\xff\xfecd"),
        "BINARY_VALUE was asked to be kept; the command got:\n{}",
        String::from_utf8_lossy(&dump).replace('\0', "\n")
    );
}

#[test]
fn empty_env_reads_the_python_version_and_the_layers_path_before_emptying() {
    let tree = Tree::new();
    let py = tree
        .fixture
        .layer(LayerSpec::new("py", "py@t").dirs(&["lib/python3.13/site-packages"]));
    let mut start = tree.fixture.base_env();
    start.insert("PYTHON3_SHORT_VERSION".into(), "3.13".into());
    // Neither PYTHON3_SHORT_VERSION nor LAYERAPI2_LAYERS_PATH is kept.
    let env = tree.exec_env_from(&start, &["-E", "-k", "HOME", "-l", "py@t"]);
    assert!(!env.contains_key("PYTHON3_SHORT_VERSION"));
    assert!(!env.contains_key("LAYERAPI2_LAYERS_PATH"));
    let pythonpath = &env["PYTHONPATH"];
    assert!(
        pythonpath.contains(&under(&py, "lib/python3.13/site-packages")),
        "{pythonpath}"
    );
    assert!(!pythonpath.contains("null"), "{pythonpath}");
}

#[test]
fn a_layer_with_a_nul_byte_in_a_value_stops_the_command_naming_the_file_and_line() {
    let tree = Tree::new();
    let home = tree
        .fixture
        .layer(LayerSpec::new("nul", "nul@t").extra_env("A=1\nB=x\0y\n"));
    let marker = tree.fixture.path().join("ran");
    let output = tree
        .command(&["exec", "-l", "nul@t", "--", "touch", utf8_path(&marker)])
        .output()
        .unwrap();
    let stderr = assert_failed_without_output(&output, 1);
    assert!(
        stderr.contains(&format!(
            "the value of `B` in `{}` at line 2 holds a NUL byte",
            under(&home, ".layerapi2_extra_env")
        )),
        "{stderr}"
    );
    assert!(!marker.exists(), "the command did not run");
}
