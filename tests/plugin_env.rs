//! The plugin configuration and environment through the real binary: the three files
//! of the layering, private keys, variants, derived `*_ip` keys, the exported
//! variables, `mfenv plugin wrapper`, and `plugin_env` round trips through the hook in
//! real bash, zsh and fish.

mod common;
mod plugin_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use plugin_support::*;

/// Releases and installs plugin `name` whose `config.ini` has `extra` appended;
/// returns its home in the base dir.
fn install(fixture: &PluginFixture, name: &str, extra: &str) -> PathBuf {
    let source = fixture.source(name, "1.0.0");
    let config = source.join("config.ini");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    fs::write(&config, text).unwrap();
    let file = fixture.release(&source);
    fixture.ok(&["plugin", "install", utf8_path(&file)]);
    fixture.base.join(name)
}

fn write_file(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn system_override_path(fixture: &PluginFixture, name: &str) -> PathBuf {
    fixture
        .sysconf
        .join("generic/plugins")
        .join(format!("{name}.ini"))
}

/// (section, key) → (value, file, variant), as `mfenv plugin config --json` tells.
type ConfigRows = std::collections::BTreeMap<(String, String), (String, String, Option<String>)>;

/// `mfenv plugin config --json NAME` and its stderr.
fn config_json(
    fixture: &PluginFixture,
    name: &str,
    extra: &[(&str, &str)],
) -> (ConfigRows, String) {
    let output = fixture.run_with(&["plugin", "config", "--json", name], extra);
    assert_success(&output);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    let map = rows
        .into_iter()
        .map(|row| {
            let text = |key: &str| row[key].as_str().map(str::to_owned);
            (
                (text("section").unwrap(), text("key").unwrap()),
                (
                    text("value").unwrap(),
                    text("file").unwrap(),
                    text("variant"),
                ),
            )
        })
        .collect();
    (map, stderr(&output))
}

fn key(section: &str, key: &str) -> (String, String) {
    (section.to_owned(), key.to_owned())
}

/// The environment `mfenv plugin wrapper ARGS -- env -0` runs with.
fn wrapper_env(fixture: &PluginFixture, args: &[&str], extra: &[(&str, &str)]) -> EnvVars {
    let mut all = vec!["plugin", "wrapper"];
    all.extend_from_slice(args);
    all.push("--");
    let env_program = env_program_path();
    all.push(utf8_path(&env_program));
    all.push("-0");
    let output = fixture.run_with(&all, extra);
    assert_success(&output);
    env_from_nul_dump(&output.stdout)
}

#[test]
fn the_three_files_are_layered_and_overrides_may_not_set_private_keys() {
    let fixture = PluginFixture::new();
    install(
        &fixture,
        "foo",
        "a = plugin\nb = plugin\nc = plugin\n\n[custom_more]\nd = plugin\n",
    );
    write_file(
        &fixture.override_path("foo"),
        "[custom]\nb = op\nc = op\n_private = from-op\n",
    );
    write_file(
        &system_override_path(&fixture, "foo"),
        "[custom]\nc = system\n[general]\n_version = 9.9.9\n",
    );
    let (config, warnings) = config_json(&fixture, "foo", &[]);
    let plugin_file = utf8_path(&fixture.base.join("foo/config.ini")).to_owned();
    let op_file = utf8_path(&fixture.override_path("foo")).to_owned();
    let system_file = utf8_path(&system_override_path(&fixture, "foo")).to_owned();
    assert_eq!(
        config[&key("custom", "a")],
        ("plugin".into(), plugin_file.clone(), None)
    );
    assert_eq!(
        config[&key("custom", "b")],
        ("op".into(), op_file.clone(), None)
    );
    assert_eq!(
        config[&key("custom", "c")],
        ("system".into(), system_file.clone(), None)
    );
    assert_eq!(config[&key("custom_more", "d")].0, "plugin");
    assert_eq!(config[&key("custom", "_private")].0, "x");
    assert_eq!(config[&key("general", "_version")].0, "1.0.0");
    assert!(
        warnings.contains(&format!(
            "`{op_file}` line 4: key `_private` of section `[custom]`"
        )),
        "{warnings}"
    );
    assert!(
        warnings.contains(&format!(
            "`{system_file}` line 4: key `_version` of section `[general]`"
        )),
        "{warnings}"
    );
}

#[test]
fn variants_are_resolved_once_over_the_merged_files() {
    let fixture = PluginFixture::new();
    install(
        &fixture,
        "foo",
        "level = 0\nlevel[DEV] = 1\nlevel[DEV_JOHN] = 2\n",
    );
    write_file(
        &fixture.override_path("foo"),
        "[custom]\nlevel = op\nother[QA] = qa\n",
    );
    // A plain override does not beat a matching variant of the plugin file.
    let (config, _) = config_json(&fixture, "foo", &[("MFCONFIG", "DEV")]);
    assert_eq!(config[&key("custom", "level")].0, "1");
    assert_eq!(config[&key("custom", "level")].2.as_deref(), Some("dev"));
    assert!(!config.contains_key(&key("custom", "other")));
    let (config, _) = config_json(&fixture, "foo", &[("MFCONFIG", "PROD")]);
    assert_eq!(config[&key("custom", "level")].0, "op");
    // The configuration name comes from the metwork.config file when MFCONFIG is unset.
    let metwork_config = fixture.root().join("metwork.config");
    fs::write(&metwork_config, "# comment\nDEV_JOHN_MONDAY\n").unwrap();
    let (config, _) = config_json(
        &fixture,
        "foo",
        &[("MFENV_METWORK_CONFIG", utf8_path(&metwork_config))],
    );
    assert_eq!(config[&key("custom", "level")].0, "2");
    // An override with the variant wins.
    write_file(
        &fixture.override_path("foo"),
        "[custom]\nlevel[DEV] = op-dev\n",
    );
    let (config, _) = config_json(&fixture, "foo", &[("MFCONFIG", "DEV")]);
    assert_eq!(config[&key("custom", "level")].0, "op-dev");
}

#[test]
fn hostname_keys_get_their_address() {
    let fixture = PluginFixture::new();
    install(
        &fixture,
        "foo",
        "db_hostname = localhost\nlocal_hostname = 127.0.0.1\nnone_hostname = NULL\n\
         socket_hostname = /run/x.sock\nbad_hostname = no-such-host.invalid\n\
         given_hostname = localhost\ngiven_hostname_ip = 10.0.0.1\n\
         pool_hostnames = localhost;no-such-host.invalid\n",
    );
    let (config, _) = config_json(&fixture, "foo", &[]);
    let value = |name: &str| config[&key("custom", name)].0.clone();
    assert_eq!(value("db_hostname_ip"), "127.0.0.1");
    assert_eq!(value("local_hostname_ip"), "127.0.0.1");
    assert_eq!(value("none_hostname_ip"), "NULL");
    assert_eq!(value("socket_hostname_ip"), "/run/x.sock");
    assert_eq!(value("bad_hostname_ip"), "dns_error");
    assert_eq!(value("given_hostname_ip"), "10.0.0.1");
    assert_eq!(value("pool_hostnames_ips"), "127.0.0.1;dns_error");
}

#[test]
fn the_wrapper_runs_the_command_with_the_plugin_environment() {
    let fixture = PluginFixture::new();
    let home = install(
        &fixture,
        "my-plug",
        "path = {{ GENERIC_CURRENT_PLUGIN_DIR }}/data {{ UNSET_VARIABLE }}\n\
         flag = yes\n\n[custom-extra]\nmy-key = v\n\n[app_main]\ndebug = yes\nnumprocesses = x\n",
    );
    let home_text = utf8_path(&home).to_owned();
    let tmpdir = fixture.runtime.join("tmp/my-plug");
    let env = wrapper_env(&fixture, &["my-plug"], &[("PYTHONPATH", "/existing")]);
    let get = |name: &str| env.get(name).map(String::as_str);
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_NAME"), Some("my-plug"));
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_DIR"), Some(home_text.as_str()));
    assert_eq!(
        get("GENERIC_CURRENT_PLUGIN_LABEL"),
        Some("plugin_my-plug@generic")
    );
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_CUSTOM_GREETING"), Some("hello"));
    assert_eq!(
        get("GENERIC_CURRENT_PLUGIN_CUSTOM_PATH"),
        Some(format!("{home_text}/data ").as_str())
    );
    // Not a schema boolean: the text.
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_CUSTOM_FLAG"), Some("yes"));
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_CUSTOM_EXTRA_MY_KEY"), Some("v"));
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_CUSTOM__PRIVATE"), None);
    assert!(!env.keys().any(|name| name.contains("PRIVATE")));
    // The command schema: booleans 1/0, integers, defaults.
    assert_eq!(get("GENERIC_CURRENT_PLUGIN_APP_MAIN_DEBUG"), Some("1"));
    assert_eq!(
        get("GENERIC_CURRENT_PLUGIN_APP_MAIN_NUMPROCESSES"),
        Some("0")
    );
    assert_eq!(
        get("GENERIC_CURRENT_PLUGIN_APP_MAIN_GRACEFUL_TIMEOUT"),
        Some("10")
    );
    assert_eq!(
        get("GENERIC_CURRENT_PLUGIN_APP_MAIN_LOG_SPLIT_STDOUT_STDERR"),
        Some("0")
    );
    assert_eq!(get("TMPDIR"), Some(utf8_path(&tmpdir)));
    assert!(tmpdir.is_dir());
    assert_eq!(
        get("PYTHONPATH"),
        Some(format!("{home_text}:/existing").as_str())
    );
    // The plugin layer is loaded.
    assert!(
        get("PATH")
            .unwrap()
            .starts_with(&format!("{home_text}/bin:"))
    );
    assert_eq!(get(&marker_name(&home_text)), Some("1"));
}

#[test]
fn the_wrapper_runs_in_the_plugin_home_with_cwd_and_accepts_a_home_that_is_not_installed() {
    let fixture = PluginFixture::new();
    let home = install(&fixture, "foo", "");
    let output = fixture.run(&["plugin", "wrapper", "--cwd", "foo", "--", "pwd"]);
    assert_success(&output);
    assert_eq!(stdout(&output).trim_end(), utf8_path(&home));
    let output = fixture.run(&["plugin", "wrapper", "foo", "--", "foo_hello"]);
    assert_success(&output);
    assert_eq!(stdout(&output), "hello from foo 1.0.0\n");

    let source = fixture.source("bar", "2.0.0");
    let env = wrapper_env(&fixture, &[utf8_path(&source)], &[]);
    assert_eq!(env["GENERIC_CURRENT_PLUGIN_NAME"], "bar");
    assert_eq!(env["GENERIC_CURRENT_PLUGIN_DIR"], utf8_path(&source));
    assert_eq!(env["PYTHONPATH"], utf8_path(&source));
    let output = fixture.run(&["plugin", "wrapper", "missing", "--", "true"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the plugin `missing` does not seem to be installed"));
}

#[test]
fn the_wrapper_returns_the_command_status() {
    let fixture = PluginFixture::new();
    install(&fixture, "foo", "");
    let output = fixture.run(&["plugin", "wrapper", "foo", "--", "sh", "-c", "exit 7"]);
    assert_eq!(output.status.code(), Some(7));
}

#[test]
fn a_dependency_plugin_gives_its_environment_without_its_identity() {
    let fixture = PluginFixture::new();
    let base_home = install(
        &fixture,
        "common-lib",
        "shared = from-base\nbase_only = b\n",
    );
    let source = fixture.source("top", "1.0.0");
    fs::write(
        source.join(".layerapi2_dependencies"),
        "plugin_common-lib@generic\n",
    )
    .unwrap();
    let mut config = fs::read_to_string(source.join("config.ini")).unwrap();
    config.push_str("shared = from-top\n");
    config = config.replace(
        "_vendor = ACME\n",
        "_vendor = ACME\n_add_plugin_dir_to_python_path = false\n",
    );
    fs::write(source.join("config.ini"), config).unwrap();
    let file = fixture.release(&source);
    fixture.ok(&["plugin", "install", utf8_path(&file)]);
    let env = wrapper_env(&fixture, &["top"], &[]);
    assert_eq!(env["GENERIC_CURRENT_PLUGIN_NAME"], "top");
    assert_eq!(env["GENERIC_CURRENT_PLUGIN_CUSTOM_SHARED"], "from-top");
    assert_eq!(env["GENERIC_CURRENT_PLUGIN_CUSTOM_BASE_ONLY"], "b");
    // The dependency's home stays on PYTHONPATH; the plugin's own is not added.
    assert_eq!(env["PYTHONPATH"], utf8_path(&base_home));
    assert_eq!(env["TMPDIR"], utf8_path(&fixture.runtime.join("tmp/top")));
}

/// Runs `script` (which writes `before`, `during` and `after` dumps into `$D`) in the
/// real `shell` with the hook evaluated; returns the three environments.
fn shell_round_trip(
    fixture: &PluginFixture,
    shell: &str,
    script: &str,
    cwd: &Path,
) -> (EnvVars, EnvVars, EnvVars) {
    let program = require_program(shell);
    let dumps = fixture.root().join(format!("dumps-{shell}"));
    fs::create_dir_all(&dumps).unwrap();
    let mut command = Command::new(program);
    command
        .env_clear()
        .envs(fixture.fixture.base_env())
        .env("MFENV", mfenv_binary())
        .env("D", &dumps)
        .env("PYTHONPATH", "/existing/python")
        .env("TMPDIR", "/original/tmp")
        .env("GENERIC_CURRENT_PLUGIN_CUSTOM_GREETING", "previous value")
        .current_dir(cwd);
    match shell {
        "bash" => command.args(["--noprofile", "--norc", "-euo", "pipefail", "-c", script]),
        "zsh" => command.args(["--no-rcs", "-eu", "-c", script]),
        _ => command.args(["--no-config", "-c", script]),
    };
    let output = command.output().expect("run the shell");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{shell} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let read = |name: &str| env_from_nul_dump(&fs::read(dumps.join(name)).unwrap());
    (read("before"), read("during"), read("after"))
}

fn posix_script(shell: &str, load: &str, unload: &str) -> String {
    format!(
        "eval \"$(\"$MFENV\" hook {shell})\"\nenv -0 > \"$D/before\"\n{load}\nenv -0 > \"$D/during\"\n\
         {unload}\nenv -0 > \"$D/after\"\n# zsh execs a last simple command (SHLVL changes)\ntrue\n"
    )
}

fn fish_script(load: &str, unload: &str) -> String {
    format!(
        "$MFENV hook fish | source\nenv -0 > $D/before\n{load}\nenv -0 > $D/during\n\
         {unload}\nenv -0 > $D/after\n"
    )
}

fn assert_plugin_loaded(during: &EnvVars, home: &str) {
    assert_eq!(during["GENERIC_CURRENT_PLUGIN_NAME"], "my-plug");
    assert_eq!(during["GENERIC_CURRENT_PLUGIN_DIR"], home);
    assert_eq!(during["GENERIC_CURRENT_PLUGIN_CUSTOM_GREETING"], "hello");
    assert_eq!(during["PYTHONPATH"], format!("{home}:/existing/python"));
    assert!(during["TMPDIR"].ends_with("/tmp/my-plug"));
    assert!(during["PATH"].starts_with(&format!("{home}/bin:")));
}

#[test]
fn plugin_env_then_layer_unload_restores_the_environment_exactly_in_bash_zsh_and_fish() {
    let fixture = PluginFixture::new();
    let home = install(
        &fixture,
        "my-plug",
        "odd = it's a \"value\" with $dollar \\\n",
    );
    let home = utf8_path(&home).to_owned();
    for shell in ["bash", "zsh", "fish"] {
        let script = match shell {
            "fish" => fish_script("plugin_env my-plug", "layer_unload plugin_my-plug@generic"),
            _ => posix_script(
                shell,
                "plugin_env my-plug",
                "layer_unload plugin_my-plug@generic",
            ),
        };
        let (before, during, after) = shell_round_trip(&fixture, shell, &script, &fixture.work);
        assert_plugin_loaded(&during, &home);
        assert_eq!(
            during["GENERIC_CURRENT_PLUGIN_CUSTOM_ODD"],
            "it's a \"value\" with $dollar \\"
        );
        assert_eq!(before, after, "{shell}: the environment is not restored");
    }
}

#[test]
fn plugin_env_exit_restores_the_environment_and_works_inside_a_plugin_directory() {
    let fixture = PluginFixture::new();
    install(&fixture, "my-plug", "");
    // Inside a plugin directory that is not installed, without a name.
    let source = fixture.source("dev-plug", "1.0.0");
    let script = posix_script("bash", "plugin_env", "plugin_env --exit");
    let (before, during, after) = shell_round_trip(&fixture, "bash", &script, &source);
    assert_eq!(during["GENERIC_CURRENT_PLUGIN_NAME"], "dev-plug");
    assert_eq!(during["GENERIC_CURRENT_PLUGIN_DIR"], utf8_path(&source));
    assert_eq!(before, after);
    let script = fish_script("plugin_env my-plug", "plugin_env --exit");
    let (before, during, after) = shell_round_trip(&fixture, "fish", &script, &fixture.work);
    assert_eq!(during["GENERIC_CURRENT_PLUGIN_NAME"], "my-plug");
    assert_eq!(before, after);
}

#[test]
fn plugin_env_for_a_plugin_that_is_not_installed_explains_and_fails() {
    let fixture = PluginFixture::new();
    let output = fixture.run(&["plugin", "env", "--shell", "bash", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert!(
        message.contains("layer `plugin_nope@generic` is not available"),
        "{message}"
    );
    assert!(
        message.contains("maybe the plugin `nope` is not installed?"),
        "{message}"
    );
    assert!(
        message.contains("use `plugin_env` without arguments inside the plugin directory"),
        "{message}"
    );
    let output = fixture.run(&["plugin", "env"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        stderr(&output)
            .contains("usage: plugin_env PLUGIN_NAME or plugin_env (inside a plugin dir)")
    );
}

#[test]
fn installed_plugin_names_are_completed() {
    let fixture = PluginFixture::new();
    install(&fixture, "my-plug", "");
    install(&fixture, "other", "");
    assert_eq!(fixture.ok(&["complete", "plugins"]), "my-plug\nother\n");
    assert_eq!(fixture.ok(&["complete", "plugins", "--", "ot"]), "other\n");
}

/// A plugin tree `name` in the work directory whose `config.ini` has `extra` appended
/// (after its `[custom]` section); not installed.
fn plugin_tree(fixture: &PluginFixture, name: &str, extra: &str) -> PathBuf {
    let home = fixture.work.join(name);
    write_plugin_tree(&home, name, "1.0.0");
    let config = home.join("config.ini");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    fs::write(&config, text).unwrap();
    home
}

/// Runs `args` and checks it fails with nothing on stdout; gives stderr.
fn refused(fixture: &PluginFixture, args: &[&str]) -> String {
    let output = fixture.run(args);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert_eq!(stdout(&output), "", "{args:?}");
    stderr(&output)
}

#[test]
fn configuration_sizes_are_bounded_with_a_clear_error() {
    let fixture = PluginFixture::new();
    let keys = |count: usize| -> String { (0..count).map(|i| format!("k{i}={i}\n")).collect() };
    // 80,000 keys (8 in the fixture's config.ini, the added ones from line 15): refused
    // at the first key past the limit, by every command.
    let huge = plugin_tree(&fixture, "huge", &keys(80_000));
    let home = utf8_path(&huge);
    for args in [
        vec!["plugin", "check", home],
        vec!["plugin", "wrapper", home, "--", "true"],
        vec!["plugin", "config", home],
    ] {
        let error = refused(&fixture, &args);
        assert!(
            error.contains("config.ini` at line 2007") && error.contains("at most 2000 keys"),
            "{error}"
        );
    }
    // 1,990 keys (2,000 with the fixture's) are fine: checked, and their environment
    // passes to a command.
    let large = plugin_tree(&fixture, "large", &keys(1_990));
    fixture.ok(&["plugin", "check", utf8_path(&large)]);
    let env = wrapper_env(&fixture, &[utf8_path(&large)], &[]);
    assert_eq!(
        env.get("GENERIC_CURRENT_PLUGIN_CUSTOM_K1989")
            .map(String::as_str),
        Some("1989")
    );
    // Overrides adding keys past the limit: refused too.
    install(&fixture, "grown", &keys(1_000));
    let op = fixture.override_path("grown");
    write_file(
        &op,
        &format!("[custom]\n{}", keys(1_500).replace('k', "extra")),
    );
    let error = refused(&fixture, &["plugin", "wrapper", "grown", "--", "true"]);
    assert!(
        error.contains(&format!("`{}` is too big", op.display()))
            && error.contains("at most 2000 keys"),
        "{error}"
    );
    // Files over 1 MiB are refused before parsing.
    let big = plugin_tree(
        &fixture,
        "big",
        &format!("blob = {}\n", "x".repeat(1 << 20)),
    );
    let error = refused(&fixture, &["plugin", "check", utf8_path(&big)]);
    assert!(error.contains("is too big"), "{error}");
}

#[test]
fn values_that_cannot_be_rendered_are_errors_naming_file_and_line() {
    let fixture = PluginFixture::new();
    for (value, line) in [
        ("{{ 42 }}", 16),
        ("{{ none }}", 16),
        ("{{ HOME | upper }}", 16),
        ("{% if x %}y{% endif %}", 16),
    ] {
        let tree = plugin_tree(&fixture, "tpl", &format!("\nanswer = {value}\n"));
        let home = utf8_path(&tree);
        for args in [
            vec!["plugin", "check", home],
            vec!["plugin", "wrapper", home, "--", "true"],
        ] {
            let error = refused(&fixture, &args);
            assert!(
                error.contains(&format!(
                    "cannot render key `answer` of section `[custom]` in `{home}/config.ini` at line {line}"
                )),
                "{value}: {error}"
            );
        }
    }
    // The supported forms render.
    let tree = plugin_tree(
        &fixture,
        "ok",
        "answer = {{ GENERIC_CURRENT_PLUGIN_NAME }}-{{ '{{' }}x}}-{{UNSET}}\n",
    );
    let env = wrapper_env(&fixture, &[utf8_path(&tree)], &[]);
    assert_eq!(
        env.get("GENERIC_CURRENT_PLUGIN_CUSTOM_ANSWER")
            .map(String::as_str),
        Some("ok-{{x}}-")
    );
}

#[test]
fn a_plugin_that_check_refuses_never_runs_and_a_bad_override_is_named() {
    let fixture = PluginFixture::new();
    // Refused by `plugin check`: refused by the run path too.
    let tree = plugin_tree(&fixture, "bad", "\n[oops]\nx = 1\n");
    let home = utf8_path(&tree);
    let check = refused(&fixture, &["plugin", "check", home]);
    assert!(check.contains("[section: oops] unknown field"), "{check}");
    let marker = fixture.work.join("ran");
    let touch = format!("touch {}", utf8_path(&marker));
    let run = refused(
        &fixture,
        &["plugin", "wrapper", home, "--", "sh", "-c", &touch],
    );
    assert!(run.contains("[section: oops] unknown field"), "{run}");
    assert!(!marker.exists());
    let tree = plugin_tree(&fixture, "oldformat", "");
    fs::write(tree.join(".plugin_format_version"), "1.0\n").unwrap();
    let run = refused(
        &fixture,
        &["plugin", "wrapper", utf8_path(&tree), "--", "true"],
    );
    assert!(run.contains(".plugin_format_version"), "{run}");

    // A valid plugin made invalid by an OP override: the override is named.
    install(&fixture, "good", "");
    let op = fixture.override_path("good");
    write_file(&op, "[custom]\ngreeting = hi\n[oops]\nx = 1\n");
    for args in [
        vec!["plugin", "wrapper", "good", "--", "true"],
        vec!["plugin", "env", "good"],
        vec!["plugin", "config", "good"],
    ] {
        let error = refused(&fixture, &args);
        assert!(
            error.contains(&format!(
                "invalid configuration, please fix `{}`",
                op.display()
            )) && error.contains("[section: oops] unknown field"),
            "{args:?}: {error}"
        );
    }
    // Unknown keys of unselected variants and empty unknown sections pass.
    write_file(
        &op,
        "[custom]\ngreeting = hi\n[oops]\n[app_x]\nnumprocess[QA] = 1\n",
    );
    let env = wrapper_env(&fixture, &["good"], &[]);
    assert_eq!(
        env.get("GENERIC_CURRENT_PLUGIN_CUSTOM_GREETING")
            .map(String::as_str),
        Some("hi")
    );
    // The section of unselected variants disappears: no defaults either.
    assert!(!env.keys().any(|name| name.contains("APP_X")));
}

#[test]
fn the_config_ini_dialect_reaches_the_plugin_environment() {
    let fixture = PluginFixture::new();
    let tree = plugin_tree(
        &fixture,
        "dialect",
        "multi = a\n\n  b\n  indented = 1\n  also = 2\nFoo = 1\nfoo = 2\nFOO = 3\nnum[] = 3\n\
         spaced = \u{1c}x\u{1f} \u{a0}\rcr = lone\r\n\
         [custom_h] # the host\nhostname =\nhostnames = localhost; localhost\n\
         [app_x]\nnumprocesses = 1_0\nmax_age = \u{0661}\u{0662}\nlog_split_stdout_stderr = auto\n\
         log_split_multiple_workers = AUTO\n",
    );
    let env = wrapper_env(
        &fixture,
        &[utf8_path(&tree)],
        &[
            ("GENERIC_LOG_TRY_TO_SPLIT_STDOUT_STDERR", "1"),
            ("GENERIC_LOG_TRY_TO_SPLIT_MULTIPLE_WORKERS", "1"),
        ],
    );
    let get = |name: &str| {
        env.get(&format!("GENERIC_CURRENT_PLUGIN_{name}"))
            .map(String::as_str)
    };
    assert_eq!(get("CUSTOM_MULTI"), Some("a\n\nb\nindented = 1\nalso = 2"));
    assert_eq!(get("CUSTOM_INDENTED"), None);
    assert_eq!(get("CUSTOM_FOO"), Some("3"));
    assert_eq!(get("CUSTOM_NUM"), Some("3"));
    assert_eq!(get("CUSTOM_SPACED"), Some("x"));
    assert_eq!(get("CUSTOM_CR"), Some("lone"));
    assert_eq!(get("CUSTOM_H_HOSTNAME_IP"), Some("0.0.0.0"));
    assert_eq!(get("CUSTOM_H_HOSTNAMES_IPS"), Some("127.0.0.1;dns_error"));
    assert_eq!(get("APP_X_NUMPROCESSES"), Some("10"));
    assert_eq!(get("APP_X_MAX_AGE"), Some("12"));
    assert_eq!(get("APP_X_LOG_SPLIT_STDOUT_STDERR"), Some("0"));
    assert_eq!(get("APP_X_LOG_SPLIT_MULTIPLE_WORKERS"), Some("1"));
}

#[test]
fn plugin_directories_without_metadata_are_listed_and_marked() {
    let fixture = PluginFixture::new();
    install(&fixture, "installed", "");
    write_plugin_tree(&fixture.base.join("copied"), "copied", "3.2.1");
    let raw = fixture.ok(&["plugin", "list", "--raw"]);
    let copied_home = fixture.base.join("copied");
    assert!(
        raw.contains(&format!("copied~~~3.2.1~~~1~~~{}\n", copied_home.display())),
        "{raw}"
    );
    assert!(raw.contains("installed~~~1.0.0~~~1~~~"), "{raw}");
    let table = fixture.ok(&["plugin", "list"]);
    assert!(table.contains("Installed plugins (2)"), "{table}");
    assert!(table.contains("copied (no .metadata.json)"), "{table}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&fixture.ok(&["plugin", "list", "--json"])).unwrap();
    let copied = rows.iter().find(|row| row["name"] == "copied").unwrap();
    assert_eq!(copied["note"], "no .metadata.json");
    let installed = rows.iter().find(|row| row["name"] == "installed").unwrap();
    assert!(installed.get("note").is_none());
}

#[test]
fn the_daemons_do_not_start_a_plugin_whose_override_makes_it_invalid() {
    let fixture = PluginFixture::new();
    let marker = fixture.work.join("daemon-ran");
    let home = install(
        &fixture,
        "served",
        &format!(
            "\n[extra_daemon_x]\nnumprocesses = 1\n_cmd_and_args = sh -c 'touch {}; sleep 60'\n",
            utf8_path(&marker)
        ),
    );
    assert!(home.is_dir());
    let op = fixture.override_path("served");
    write_file(&op, "[oops]\nx = 1\n");
    let mut supervisor = fixture
        .command(&["daemons", "run"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut status = String::new();
    while std::time::Instant::now() < deadline {
        let output = fixture.run(&["daemons", "status"]);
        status = stdout(&output) + &stderr(&output);
        if output.status.success() && status.contains("cannot read its configuration") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stop = fixture.run(&["daemons", "stop"]);
    let _ = supervisor.kill();
    let _ = supervisor.wait();
    assert_success(&stop);
    assert!(
        status.contains(&format!(
            "invalid configuration, please fix `{}`: [section: oops] unknown field",
            op.display()
        )),
        "{status}"
    );
    assert!(!marker.exists(), "the daemon of an invalid plugin ran");
}
