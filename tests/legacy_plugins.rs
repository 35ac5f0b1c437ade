//! The historical plugin command names (`plugin_wrapper`, `plugins.*`) through the
//! symlinks `mfenv install-aliases` makes.
mod common;
mod plugin_support;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use plugin_support::*;

fn aliases(plugins: &PluginFixture) -> PathBuf {
    let dir = plugins.root().join("aliases");
    let output = plugins.run(&["install-aliases", dir.to_str().unwrap()]);
    assert_success(&output);
    dir
}

fn historical(
    plugins: &PluginFixture,
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Command {
    let mut command = Command::new(dir.join(name));
    command
        .env_clear()
        .envs(plugins.fixture.base_env())
        .args(args)
        .current_dir(&plugins.work);
    command
}

#[test]
fn plugins_dot_commands_are_the_plugin_subcommands() {
    let plugins = PluginFixture::new();
    let dir = aliases(&plugins);
    let source = plugins.source("foo", "1.0.0");
    let file = plugins.release(&source);
    let output = historical(&plugins, &dir, "plugins.install", &[file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&output);
    let output = historical(&plugins, &dir, "plugins.list", &["--raw"])
        .output()
        .unwrap();
    assert_success(&output);
    assert!(
        stdout(&output).starts_with("foo~~~1.0.0~~~1~~~"),
        "{}",
        stdout(&output)
    );
    let hash = historical(&plugins, &dir, "plugins.hash", &["foo"])
        .output()
        .unwrap();
    assert_eq!(stdout(&hash), plugins.ok(&["plugin", "hash", "foo"]));
    let output = historical(&plugins, &dir, "plugins.uninstall", &["foo"])
        .output()
        .unwrap();
    assert_success(&output);
}

#[test]
fn plugin_wrapper_runs_a_command_in_the_plugin_env_with_or_without_a_separator() {
    let plugins = PluginFixture::new();
    let dir = aliases(&plugins);
    let source = plugins.source("foo", "1.0.0");
    let home = source.to_str().unwrap();
    for args in [
        vec![
            "--cwd",
            home,
            "sh",
            "-c",
            "echo \"$GENERIC_CURRENT_PLUGIN_NAME $(pwd)\"",
        ],
        vec![
            "--cwd",
            home,
            "--",
            "sh",
            "-c",
            "echo \"$GENERIC_CURRENT_PLUGIN_NAME $(pwd)\"",
        ],
    ] {
        let output = historical(&plugins, &dir, "plugin_wrapper", &args)
            .output()
            .unwrap();
        assert_success(&output);
        assert_eq!(stdout(&output), format!("foo {home}\n"));
    }
    // Its own failures exit with 1, like the original.
    let output = historical(&plugins, &dir, "plugin_wrapper", &["not-installed", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}
