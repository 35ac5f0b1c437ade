//! Deliberate differences from mfplugin, pinned: what mfenv does where the original did
//! otherwise (docs/plugins.md, "Differences from mfplugin").

mod common;
mod plugin_support;

use std::fs;
use std::process::Command;

use common::*;
use plugin_support::*;

/// The text of `member` in the `.plugin` file `file`.
fn member(file: &std::path::Path, member: &str) -> String {
    let output = Command::new("tar")
        .args(["-xzOf", utf8_path(file), member])
        .output()
        .expect("run tar");
    assert!(output.status.success(), "{member} in {}", file.display());
    String::from_utf8(output.stdout).expect("utf-8 member")
}

#[test]
fn the_files_list_of_a_release_is_in_sorted_order() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    for name in ["zeta", "alpha", "Mid", "bin/aa"] {
        fs::write(home.join(name), name).unwrap();
    }
    let file = plugins.release(&home);
    let files: Vec<String> =
        serde_json::from_str(&member(&file, "metwork_plugin/.files.json")).unwrap();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);
    assert!(files.iter().any(|f| f.ends_with("/zeta")), "{files:?}");
}

#[test]
fn repackage_keeps_the_variant_keys_of_the_overrides() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    fs::write(
        plugins.override_path("foo"),
        "[custom]\ngreeting = ciao\ngreeting[dev] = salut\n",
    )
    .unwrap();
    // A cache the installed copy gathered is no part of the plugin: the plugin's own
    // `.releaseignore` (shipped with it, as the templates' names caches) still applies.
    fs::write(
        plugins.base.join("foo/.releaseignore"),
        "__pycache__/\n*.pyc\n",
    )
    .unwrap();
    let cache = plugins.base.join("foo/__pycache__");
    fs::create_dir_all(&cache).unwrap();
    fs::write(cache.join("x.cpython-311.pyc"), "stale").unwrap();
    fs::remove_file(&file).unwrap();
    let output = plugins.run(&["plugin", "repackage", "foo"]);
    assert_success(&output);
    let listing = Command::new("tar")
        .args(["-tzf", utf8_path(&file)])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(!listing.contains("__pycache__"), "{listing}");
    let config = member(&file, "metwork_plugin/config.ini");
    assert!(config.contains("greeting = ciao\n"), "{config}");
    assert!(
        config.contains("greeting[dev] = salut\n"),
        "the variant override is kept: {config}"
    );
    // The variant is still chosen by the configuration name where it is installed.
    plugins.ok(&["plugin", "uninstall", "foo", "--clean"]);
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    let dev = plugins.run_with(
        &["plugin", "config", "foo", "--json"],
        &[("MFCONFIG", "DEV")],
    );
    assert_success(&dev);
    assert!(stdout(&dev).contains("salut"), "{}", stdout(&dev));
}

#[test]
fn an_empty_mfconfig_counts_as_unset() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    let mut config = fs::read_to_string(home.join("config.ini")).unwrap();
    config.push_str("picked = plain\npicked[generic] = generic\n");
    fs::write(home.join("config.ini"), config).unwrap();
    let home_text = utf8_path(&home);
    let unset = plugins.run(&["plugin", "config", home_text, "--json"]);
    assert_success(&unset);
    assert!(stdout(&unset).contains("\"generic\""), "{}", stdout(&unset));
    let empty = plugins.run_with(
        &["plugin", "config", home_text, "--json"],
        &[("MFCONFIG", "")],
    );
    assert_success(&empty);
    assert_eq!(stdout(&empty), stdout(&unset));
}

#[test]
fn a_failing_release_exits_1_and_writes_no_file() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    // An absolute symlink pointing outside the plugin cannot be released.
    std::os::unix::fs::symlink("/etc/passwd", home.join("outside")).unwrap();
    let before = children(&plugins.work);
    let output = plugins.run(&["plugin", "release", utf8_path(&home)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("outside"), "{}", stderr(&output));
    assert_eq!(children(&plugins.work), before, "nothing written");
}
