//! The historical MetWork command names (reference section A7), reached through the
//! symlinks `mfenv install-aliases` makes, and `install-aliases` itself.
//!
//! GLib conventions of the originals: `--help` on stdout with exit 0; bad usage prints
//! the help on stdout and exits with 1; `--opt=value` and `--opt value` both work.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const NAMES: [&str; 17] = [
    "cronwrap",
    "cronwrap.sh",
    "plugin_wrapper",
    "plugins.list",
    "plugins.install",
    "plugins.uninstall",
    "plugins.info",
    "plugins.hash",
    "plugins.check",
    "plugins.hotswap",
    "layers",
    "is_layer_installed",
    "is_layer_loaded",
    "get_layer_home",
    "layer_wrapper",
    "layer_load_bash_cmds",
    "layer_unload_bash_cmds",
];

struct Tree {
    fixture: Fixture,
    /// Where `mfenv install-aliases` put the symlinks.
    aliases: PathBuf,
    base: PathBuf,
    tool: PathBuf,
    withopt: PathBuf,
    extra: PathBuf,
}

/// `base@t` (bin, lib; BASE_VAR), `tool@t` (needs base@t), `withopt@t` (optional
/// dependency on extra@t), `extra@t`; the aliases installed in `ROOT/aliases`.
fn tree() -> Tree {
    let fixture = Fixture::new();
    let base = fixture.layer(
        LayerSpec::new("base", "base@t")
            .dirs(&["bin", "lib"])
            .extra_env("BASE_VAR=base\n"),
    );
    let tool = fixture.layer(LayerSpec::new("tool", "tool@t").deps("base@t\n"));
    let withopt = fixture.layer(LayerSpec::new("withopt", "withopt@t").deps("-extra@t\n"));
    let extra = fixture.layer(LayerSpec::new("extra", "extra@t"));
    let aliases = fixture.path().join("aliases");
    let output = fixture.run(&["install-aliases", utf8_path(&aliases)]);
    assert_success(&output);
    Tree {
        fixture,
        aliases,
        base,
        tool,
        withopt,
        extra,
    }
}

impl Tree {
    fn root(&self) -> &Path {
        self.fixture.path()
    }

    /// The historical command `name` (through its symlink) in exactly `env`.
    fn command_in(&self, env: &EnvVars, name: &str, args: &[&str]) -> Command {
        let mut command = Command::new(self.aliases.join(name));
        command
            .env_clear()
            .envs(env)
            .args(args)
            .current_dir(self.root());
        command
    }

    fn run_in(&self, env: &EnvVars, name: &str, args: &[&str]) -> Output {
        self.command_in(env, name, args)
            .output()
            .expect("run alias")
    }

    fn run(&self, name: &str, args: &[&str]) -> Output {
        self.run_in(&self.fixture.base_env(), name, args)
    }

    /// The environment after evaluating `layer_load_bash_cmds ARGS` in bash.
    fn loaded_with_legacy(&self, env: &EnvVars, args: &[&str]) -> EnvVars {
        let output = self.run_in(env, "layer_load_bash_cmds", args);
        assert_success(&output);
        env_after_bash(env, &stdout(&output), self.root())
    }
}

fn is_loaded(env: &EnvVars, home: &Path) -> bool {
    env.get(&marker_name(utf8_path(home))).map(String::as_str) == Some("1")
}

/// Asserts the original's bad-usage behaviour: the help on stdout, exit 1.
fn assert_help_and_exit_1(output: &Output, name: &str) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name}: expected exit 1\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        out.contains("Usage") && out.contains(name),
        "{name}: the help goes to stdout, got:\n{out}"
    );
}

/// Asserts a failure with exit 1, nothing on stdout, a message on stderr.
fn assert_fails_quietly_on_stdout(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        !stderr.is_empty() && !stderr.contains("panicked"),
        "{stderr}"
    );
    stderr
}

fn layer_line(label: &str, home: &Path, loaded: bool) -> String {
    let star = if loaded { "(*) " } else { "" };
    format!("- {star}{label} [{}]\n", utf8_path(home))
}

// ---------------------------------------------------------------------------------
// install-aliases
// ---------------------------------------------------------------------------------

#[test]
fn install_aliases_makes_one_symlink_to_mfenv_per_historical_name() {
    let fixture = Fixture::new();
    let dir = fixture.path().join("not/yet/there");
    let output = fixture.run(&["install-aliases", utf8_path(&dir)]);
    assert_success(&output);
    let listed: Vec<String> = NAMES
        .iter()
        .map(|name| format!("{}\n", dir.join(name).display()))
        .collect();
    assert_eq!(stdout(&output), listed.concat());
    let binary = fs::canonicalize(mfenv_binary()).unwrap();
    let mut found: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    let mut expected: Vec<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected);
    for name in NAMES {
        let link = dir.join(name);
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "{name}"
        );
        assert_eq!(fs::canonicalize(&link).unwrap(), binary, "{name}");
    }
}

#[test]
fn install_aliases_again_keeps_its_own_links_and_succeeds() {
    let tree = tree();
    let before: Vec<PathBuf> = NAMES
        .iter()
        .map(|name| fs::read_link(tree.aliases.join(name)).unwrap())
        .collect();
    let output = tree
        .fixture
        .run(&["install-aliases", utf8_path(&tree.aliases)]);
    assert_success(&output);
    assert_eq!(stdout(&output).lines().count(), NAMES.len());
    let after: Vec<PathBuf> = NAMES
        .iter()
        .map(|name| fs::read_link(tree.aliases.join(name)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn install_aliases_refuses_to_replace_a_foreign_file_unless_forced() {
    let fixture = Fixture::new();
    let dir = fixture.path().join("bin");
    fs::create_dir_all(&dir).unwrap();
    let foreign = dir.join("layers");
    fs::write(&foreign, "#!/bin/sh\necho mine\n").unwrap();
    let output = fixture.run(&["install-aliases", utf8_path(&dir)]);
    let stderr = assert_fails_quietly_on_stdout(&output);
    assert!(
        stderr.contains(utf8_path(&foreign)) && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(&foreign).unwrap(),
        "#!/bin/sh\necho mine\n"
    );

    let output = fixture.run(&["install-aliases", "--force", utf8_path(&dir)]);
    assert_success(&output);
    assert_eq!(
        fs::canonicalize(&foreign).unwrap(),
        fs::canonicalize(mfenv_binary()).unwrap()
    );
}

#[test]
fn install_aliases_refuses_to_replace_a_foreign_symlink_unless_forced() {
    let fixture = Fixture::new();
    let dir = fixture.path().join("bin");
    fs::create_dir_all(&dir).unwrap();
    let other = fixture.path().join("other_program");
    fs::write(&other, "").unwrap();
    let foreign = dir.join("layer_wrapper");
    symlink(&other, &foreign).unwrap();
    let output = fixture.run(&["install-aliases", utf8_path(&dir)]);
    let stderr = assert_fails_quietly_on_stdout(&output);
    assert!(stderr.contains("layer_wrapper"), "{stderr}");
    assert_eq!(fs::read_link(&foreign).unwrap(), other);

    let output = fixture.run(&["install-aliases", utf8_path(&dir), "--force"]);
    assert_success(&output);
    assert_eq!(
        fs::canonicalize(&foreign).unwrap(),
        fs::canonicalize(mfenv_binary()).unwrap()
    );
}

#[test]
fn a_historical_name_found_on_path_works_with_a_bare_argv0() {
    let tree = tree();
    let mut env = tree.fixture.base_env();
    env.insert(
        "PATH".into(),
        format!("{}:/usr/bin:/bin", utf8_path(&tree.aliases)),
    );
    let output = Command::new(require_program("sh"))
        .env_clear()
        .envs(&env)
        .args(["-c", "is_layer_installed tool@t && get_layer_home tool@t"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), format!("1\n{}\n", utf8_path(&tree.tool)));
}

// ---------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------

#[test]
fn layers_lists_every_layer_and_stars_the_loaded_ones() {
    let tree = tree();
    let output = tree.run("layers", &[]);
    assert_success(&output);
    let all_unloaded = [
        layer_line("base@t", &tree.base, false),
        layer_line("extra@t", &tree.extra, false),
        layer_line("tool@t", &tree.tool, false),
        layer_line("withopt@t", &tree.withopt, false),
    ]
    .concat();
    assert_eq!(stdout(&output), all_unloaded);

    let env = tree.loaded_with_legacy(&tree.fixture.base_env(), &["tool@t"]);
    let output = tree.run_in(&env, "layers", &[]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        [
            layer_line("base@t", &tree.base, true),
            layer_line("extra@t", &tree.extra, false),
            layer_line("tool@t", &tree.tool, true),
            layer_line("withopt@t", &tree.withopt, false),
        ]
        .concat()
    );
}

#[test]
fn layers_raw_and_the_loaded_filter_in_every_spelling() {
    let tree = tree();
    let env = tree.loaded_with_legacy(&tree.fixture.base_env(), &["tool@t"]);
    let raw = |label: &str, home: &Path| format!("{label} {}\n", utf8_path(home));
    let loaded = [raw("base@t", &tree.base), raw("tool@t", &tree.tool)].concat();
    let not_loaded = [raw("extra@t", &tree.extra), raw("withopt@t", &tree.withopt)].concat();
    let cases: [(&[&str], String); 7] = [
        (
            &["-r"],
            [
                raw("base@t", &tree.base),
                raw("extra@t", &tree.extra),
                raw("tool@t", &tree.tool),
                raw("withopt@t", &tree.withopt),
            ]
            .concat(),
        ),
        (&["--raw", "-m", "yes"], loaded.clone()),
        (&["-r", "--loaded-filter=yes"], loaded.clone()),
        (&["--loaded-filter", "yes", "-r"], loaded.clone()),
        (&["-r", "-m", "no"], not_loaded.clone()),
        (&["--loaded-filter=no", "--raw"], not_loaded),
        (
            &["-m", "yes"],
            [
                layer_line("base@t", &tree.base, true),
                layer_line("tool@t", &tree.tool, true),
            ]
            .concat(),
        ),
    ];
    for (args, expected) in cases {
        let output = tree.run_in(&env, "layers", args);
        assert_success(&output);
        assert_eq!(stdout(&output), expected, "layers {args:?}");
    }
}

#[test]
fn layers_with_nothing_to_list_succeeds_as_the_original_and_says_why_on_stderr() {
    let tree = tree();
    let empty = tree.root().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let mut env = tree.fixture.base_env();
    for path in [Some(utf8_path(&empty)), Some(""), None] {
        match path {
            Some(path) => env.insert("LAYERAPI2_LAYERS_PATH".into(), path.into()),
            None => env.remove("LAYERAPI2_LAYERS_PATH"),
        };
        let output = tree.run_in(&env, "layers", &[]);
        assert_success(&output);
        assert!(output.stdout.is_empty(), "{path:?}: {}", stdout(&output));
        assert!(
            stderr(&output).contains("LAYERAPI2_LAYERS_PATH"),
            "{path:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn layers_with_a_filter_other_than_yes_or_no_prints_nothing_and_succeeds() {
    let tree = tree();
    for args in [
        &["-m", "maybe"][..],
        &["--loaded-filter=YES"],
        &["-r", "-m", ""],
    ] {
        let output = tree.run("layers", args);
        assert_success(&output);
        assert!(
            output.stdout.is_empty(),
            "layers {args:?}: {}",
            stdout(&output)
        );
    }
}

#[test]
fn layers_help_goes_to_stdout_with_exit_0_and_bad_usage_exits_1() {
    let tree = tree();
    let output = tree.run("layers", &["--help"]);
    assert_success(&output);
    assert!(
        stdout(&output).contains("Usage: layers"),
        "{}",
        stdout(&output)
    );
    for args in [&["--bogus"][..], &["-m"]] {
        let output = tree.run("layers", args);
        assert_help_and_exit_1(&output, "layers");
    }
}

// ---------------------------------------------------------------------------------
// is_layer_installed, is_layer_loaded, get_layer_home
// ---------------------------------------------------------------------------------

#[test]
fn is_layer_installed_prints_1_or_0_for_a_label_or_a_home() {
    let tree = tree();
    let missing_home = tree.root().join("layers/missing");
    let cases = [
        ("tool@t", "1\n"),
        (utf8_path(&tree.tool), "1\n"),
        ("missing@t", "0\n"),
        (utf8_path(&missing_home), "0\n"),
    ];
    for (layer, expected) in cases {
        let output = tree.run("is_layer_installed", &[layer]);
        assert_success(&output);
        assert_eq!(stdout(&output), expected, "{layer}");
    }
}

#[test]
fn is_layer_loaded_prints_1_or_0_for_a_label_or_a_home() {
    let tree = tree();
    let env = tree.loaded_with_legacy(&tree.fixture.base_env(), &["tool@t"]);
    let cases = [
        ("tool@t", "1\n"),
        (utf8_path(&tree.base), "1\n"),
        ("extra@t", "0\n"),
        (utf8_path(&tree.extra), "0\n"),
        ("missing@t", "0\n"),
    ];
    for (layer, expected) in cases {
        let output = tree.run_in(&env, "is_layer_loaded", &[layer]);
        assert_success(&output);
        assert_eq!(stdout(&output), expected, "{layer}");
    }
    let output = tree.run("is_layer_loaded", &["tool@t"]);
    assert_eq!(stdout(&output), "0\n");
}

#[test]
fn the_is_layer_commands_take_exactly_one_argument() {
    let tree = tree();
    for name in ["is_layer_installed", "is_layer_loaded"] {
        for args in [&[][..], &["tool@t", "base@t"], &["--bogus", "tool@t"]] {
            let output = tree.run(name, args);
            assert_help_and_exit_1(&output, name);
        }
        let output = tree.run(name, &["--help"]);
        assert_success(&output);
        assert!(stdout(&output).contains(name));
    }
}

#[test]
fn get_layer_home_prints_the_home_of_a_label() {
    let tree = tree();
    let output = tree.run("get_layer_home", &["tool@t"]);
    assert_success(&output);
    assert_eq!(stdout(&output), format!("{}\n", utf8_path(&tree.tool)));
}

#[test]
fn get_layer_home_of_an_unknown_label_or_of_a_home_fails_with_exit_1() {
    let tree = tree();
    for label in ["missing@t", utf8_path(&tree.tool)] {
        let output = tree.run("get_layer_home", &[label]);
        let stderr = assert_fails_quietly_on_stdout(&output);
        assert!(stderr.contains(label), "{stderr}");
    }
    let output = tree.run("get_layer_home", &[]);
    assert_help_and_exit_1(&output, "get_layer_home");
}

// ---------------------------------------------------------------------------------
// layer_load_bash_cmds, layer_unload_bash_cmds
// ---------------------------------------------------------------------------------

#[test]
fn layer_load_bash_cmds_prints_code_that_loads_and_unload_gives_the_environment_back() {
    let tree = tree();
    let before = tree.fixture.base_env();
    let env = tree.loaded_with_legacy(&before, &["tool@t"]);
    assert!(is_loaded(&env, &tree.tool) && is_loaded(&env, &tree.base));
    assert_eq!(env["BASE_VAR"], "base");
    assert!(
        env["PATH"].starts_with(&format!(
            "{}/bin:{}/bin:",
            utf8_path(&tree.tool),
            utf8_path(&tree.base)
        )),
        "{}",
        env["PATH"]
    );

    // Already loaded: nothing to print.
    let output = tree.run_in(&env, "layer_load_bash_cmds", &["tool@t"]);
    assert_success(&output);
    assert!(output.stdout.is_empty(), "{}", stdout(&output));

    let output = tree.run_in(&env, "layer_unload_bash_cmds", &["base@t"]);
    assert_success(&output);
    let after = env_after_bash(&env, &stdout(&output), tree.root());
    assert_eq!(after, before);
}

#[test]
fn layer_load_bash_cmds_options_may_follow_the_layer() {
    let tree = tree();
    let base = tree.fixture.base_env();
    let env = tree.loaded_with_legacy(&base, &["withopt@t", "--dont-load-optional"]);
    assert!(is_loaded(&env, &tree.withopt));
    assert!(!is_loaded(&env, &tree.extra));

    let env = tree.loaded_with_legacy(&base, &["withopt@t"]);
    assert!(is_loaded(&env, &tree.extra));

    // Force-prepend: directories that do not exist are prepended too.
    let env = tree.loaded_with_legacy(&base, &["extra@t", "-f"]);
    assert!(
        env["PATH"].starts_with(&format!("{}/local/bin:", utf8_path(&tree.extra))),
        "{}",
        env["PATH"]
    );
}

#[test]
fn layer_load_bash_cmds_debug_explains_on_stderr_and_still_loads_optional_layers() {
    let tree = tree();
    for flag in ["-d", "--debug"] {
        let output = tree.run("layer_load_bash_cmds", &[flag, "withopt@t"]);
        assert_success(&output);
        let stderr = stderr(&output);
        assert!(stderr.contains("withopt@t"), "{flag}: {stderr}");
        let env = env_after_bash(&tree.fixture.base_env(), &stdout(&output), tree.root());
        assert!(is_loaded(&env, &tree.extra), "{flag} is debug only");
    }
}

#[test]
fn the_bash_cmds_commands_fail_with_exit_1_and_no_code_for_an_unknown_layer() {
    let tree = tree();
    for name in ["layer_load_bash_cmds", "layer_unload_bash_cmds"] {
        let output = tree.run(name, &["missing@t"]);
        let stderr = assert_fails_quietly_on_stdout(&output);
        assert!(stderr.contains("missing@t"), "{name}: {stderr}");
        let output = tree.run(name, &[]);
        assert_help_and_exit_1(&output, name);
    }
}

// ---------------------------------------------------------------------------------
// layer_wrapper
// ---------------------------------------------------------------------------------

fn wrapper_env(tree: &Tree, args: &[&str]) -> EnvVars {
    let output = tree
        .command_in(&tree.fixture.base_env(), "layer_wrapper", args)
        .arg(env_program_path())
        .arg("-0")
        .output()
        .unwrap();
    assert_success(&output);
    env_from_nul_dump(&output.stdout)
}

#[test]
fn layer_wrapper_accepts_every_option_spelling_with_or_without_a_double_dash() {
    let tree = tree();
    let spellings: [&[&str]; 6] = [
        &["--layers=tool@t", "--"],
        &["--layers=tool@t"],
        &["--layers", "tool@t", "--"],
        &["-l", "tool@t"],
        &["-l", "-extra@t,tool@t", "--"],
        &["--layers=-missing@t,tool@t"],
    ];
    for args in spellings {
        let env = wrapper_env(&tree, args);
        assert!(is_loaded(&env, &tree.tool), "{args:?}");
        assert!(is_loaded(&env, &tree.base), "{args:?}");
        assert_eq!(env["BASE_VAR"], "base", "{args:?}");
    }
}

#[test]
fn layer_wrapper_passes_the_command_options_to_the_command() {
    let tree = tree();
    for args in [
        &[
            "--layers=base@t",
            "sh",
            "-c",
            "echo \"$BASE_VAR\" \"$1\"",
            "sh",
            "-l",
        ][..],
        &[
            "--layers=base@t",
            "--",
            "sh",
            "-c",
            "echo \"$BASE_VAR\" \"$1\"",
            "sh",
            "-l",
        ],
    ] {
        let output = tree.run("layer_wrapper", args);
        assert_success(&output);
        assert_eq!(stdout(&output), "base -l\n", "{args:?}");
    }
}

#[test]
fn layer_wrapper_exits_with_the_commands_status() {
    let tree = tree();
    let output = tree.run(
        "layer_wrapper",
        &["-l", "tool@t", "--", "sh", "-c", "exit 42"],
    );
    assert_eq!(output.status.code(), Some(42));
}

#[test]
fn layer_wrapper_cwd_prefix_prepend_and_empty_env() {
    let tree = tree();
    let env = wrapper_env(
        &tree,
        &[
            "--extra-env-prefix=TOOL",
            "-E",
            "--empty-env-keeps=HOME",
            "--prepend-env=PATH,/first",
            "-p",
            "PATH,/second",
            "--layers=tool@t",
            "--",
        ],
    );
    assert_eq!(env["TOOL_NAME"], "tool");
    assert_eq!(env["TOOL_LABEL"], "tool@t");
    assert_eq!(env["TOOL_DIR"], utf8_path(&tree.tool));
    assert_eq!(
        env["PATH"],
        format!(
            "/second:/first:{}/bin:{}/bin",
            utf8_path(&tree.tool),
            utf8_path(&tree.base)
        )
    );
    assert_eq!(env["HOME"], tree.fixture.base_env()["HOME"]);
    assert!(!env.contains_key("LAYERAPI2_LAYERS_PATH") && !env.contains_key("LC_ALL"));

    let output = tree.run(
        "layer_wrapper",
        &["--cwd", "--layers=base@t,tool@t", "--", "pwd", "-P"],
    );
    assert_success(&output);
    assert_eq!(
        PathBuf::from(stdout(&output).trim_end()),
        fs::canonicalize(&tree.tool).unwrap()
    );
}

#[test]
fn layer_wrapper_empty_unloads_the_layers_of_the_shell() {
    let tree = tree();
    let shell = tree.loaded_with_legacy(&tree.fixture.base_env(), &["tool@t"]);
    let output = tree
        .command_in(
            &shell,
            "layer_wrapper",
            &["--empty", "--layers=extra@t", "--"],
        )
        .arg(env_program_path())
        .arg("-0")
        .output()
        .unwrap();
    assert_success(&output);
    let env = env_from_nul_dump(&output.stdout);
    assert!(is_loaded(&env, &tree.extra));
    assert!(!is_loaded(&env, &tree.tool) && !is_loaded(&env, &tree.base));
    assert!(!env.contains_key("BASE_VAR"));
}

#[test]
fn layer_wrapper_does_not_run_the_command_when_a_mandatory_layer_fails() {
    let tree = tree();
    let canary = tree.root().join("ran");
    let script = format!("touch '{}'", utf8_path(&canary));
    let output = tree.run(
        "layer_wrapper",
        &["--layers=tool@t,missing@t", "--", "sh", "-c", &script],
    );
    let stderr = assert_fails_quietly_on_stdout(&output);
    assert!(stderr.contains("missing@t"), "{stderr}");
    assert!(!canary.exists(), "the command ran");
}

#[test]
fn layer_wrapper_without_a_command_prints_the_help_and_exits_1() {
    let tree = tree();
    for args in [&[][..], &["--layers=tool@t"], &["-l", "tool@t", "--"]] {
        let output = tree.run("layer_wrapper", args);
        assert_help_and_exit_1(&output, "layer_wrapper");
    }
    let output = tree.run("layer_wrapper", &["--help"]);
    assert_success(&output);
    assert!(stdout(&output).contains("layer_wrapper"));
}

#[test]
fn layer_wrapper_with_an_unknown_option_prints_the_help_and_exits_1() {
    let tree = tree();
    let output = tree.run("layer_wrapper", &["--bogus", "--", "true"]);
    assert_help_and_exit_1(&output, "layer_wrapper");
}

#[test]
fn layer_wrapper_with_a_bad_prepend_env_exits_1_without_running_the_command() {
    let tree = tree();
    let canary = tree.root().join("ran");
    let script = format!("touch '{}'", utf8_path(&canary));
    let output = tree.run(
        "layer_wrapper",
        &[
            "--prepend-env=PATH",
            "--layers=tool@t",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(!canary.exists(), "the command ran");
    assert_eq!(
        output.status.code(),
        Some(1),
        "A7: a bad prepend_env format exits with 1\nstderr:\n{}",
        stderr(&output)
    );
}

#[test]
fn layer_wrapper_exits_1_when_the_command_cannot_be_launched() {
    let tree = tree();
    let output = tree.run(
        "layer_wrapper",
        &["--layers=tool@t", "--", "mfenv-test-no-such-command"],
    );
    assert!(
        stderr(&output).contains("mfenv-test-no-such-command"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "A7: layer_wrapper exits with 1 when execvp fails"
    );
}

#[test]
fn options_given_twice_are_accepted_as_by_the_original() {
    let tree = tree();
    let base = tree.fixture.base_env();
    // MetWork's own `layer_load` adds `--debug` to the user's arguments.
    let env = tree.loaded_with_legacy(&base, &["--debug", "--debug", "-d", "tool@t"]);
    assert!(is_loaded(&env, &tree.tool) && is_loaded(&env, &tree.base));
    let output = tree.run_in(&env, "layer_unload_bash_cmds", &["--debug", "-d", "tool@t"]);
    assert_success(&output);

    let output = tree.run(
        "layers",
        &["-r", "-r", "-m", "yes", "-m", "no", "extra-arg"],
    );
    assert_success(&output);
    assert!(stdout(&output).contains(&format!("tool@t {}\n", utf8_path(&tree.tool))));

    // A string option given twice: the last value wins; flags stay set.
    let output = tree.run(
        "layer_wrapper",
        &[
            "-c",
            "-c",
            "--layers=base@t",
            "--layers=tool@t",
            "--",
            "pwd",
            "-P",
        ],
    );
    assert_success(&output);
    assert_eq!(
        PathBuf::from(stdout(&output).trim_end()),
        fs::canonicalize(&tree.tool).unwrap()
    );
}

#[test]
fn layer_wrapper_prepend_of_an_empty_value_drops_empty_entries_and_sets_the_variable() {
    let tree = tree();
    let mut env = tree.fixture.base_env();
    env.insert("LIST".into(), ":a::b".into());
    let output = tree
        .command_in(&env, "layer_wrapper", &["-p", "LIST,", "-p", "NEWV,", "--"])
        .arg(env_program_path())
        .arg("-0")
        .output()
        .unwrap();
    assert_success(&output);
    let env = env_from_nul_dump(&output.stdout);
    assert_eq!(env["LIST"], "a:b");
    assert_eq!(env["NEWV"], "");
}

#[test]
fn layer_wrapper_applies_cwd_and_prefix_to_the_last_layer_even_after_a_trailing_comma() {
    let tree = tree();
    let output = tree.run(
        "layer_wrapper",
        &["--layers=base@t,tool@t,", "-c", "--", "pwd", "-P"],
    );
    assert_success(&output);
    assert_eq!(
        PathBuf::from(stdout(&output).trim_end()),
        fs::canonicalize(&tree.tool).unwrap()
    );
    let env = wrapper_env(&tree, &["--layers=base@t,tool@t,", "-x", "P", "--"]);
    assert_eq!(env["P_LABEL"], "tool@t");
}

#[test]
fn layer_load_bash_cmds_takes_several_labels_and_layers_takes_a_glued_filter() {
    let tree = tree();
    let env = tree.loaded_with_legacy(&tree.fixture.base_env(), &["base@t", "extra@t"]);
    assert!(is_loaded(&env, &tree.base) && is_loaded(&env, &tree.extra));
    let output = tree.run_in(&env, "layers", &["-myes", "-r"]);
    assert_success(&output);
    let listed = stdout(&output);
    assert!(
        listed.contains("base@t ") && listed.contains("extra@t ") && !listed.contains("tool@t"),
        "{listed}"
    );
}
