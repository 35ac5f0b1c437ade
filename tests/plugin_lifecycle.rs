//! The plugin lifecycle through the real binary: release → install → list, info, hash
//! → use through `mfenv exec` → uninstall; overrides, postinstall, develop, repackage,
//! check, and compatibility with mfplugin's `.plugin` layout both ways.

mod common;
mod plugin_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use plugin_support::*;

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{text}"))
}

#[test]
fn a_released_plugin_installs_lists_runs_and_uninstalls() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    assert_eq!(
        file,
        plugins.work.join("foo-1.0.0-1.metwork.generic.plugin")
    );
    assert!(file.is_file());

    let output = plugins.run(&["plugin", "install", utf8_path(&file)]);
    assert_success(&output);
    assert!(
        stdout(&output).is_empty(),
        "install prints nothing on stdout"
    );
    let home = plugins.base.join("foo");
    assert_eq!(
        fs::read_to_string(home.join(".layerapi2_label")).unwrap(),
        "plugin_foo@generic\n"
    );

    let raw = plugins.ok(&["plugin", "list", "--raw"]);
    assert_eq!(raw, format!("foo~~~1.0.0~~~1~~~{}\n", home.display()));
    let table = plugins.ok(&["plugin", "list"]);
    assert!(table.starts_with("╔Installed plugins (1)"), "{table}");
    assert!(
        table.contains("║ Name ║ Version ║ Release ║ Home"),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "║ foo  ║ 1.0.0   ║ 1       ║ {} ║",
            home.display()
        )),
        "{table}"
    );
    let listed = json(&plugins.ok(&["plugin", "list", "--json"]));
    assert_eq!(listed[0]["name"], "foo");
    assert_eq!(listed[0]["version"], "1.0.0");
    assert_eq!(listed[0]["release"], "1");
    assert_eq!(listed[0]["home"], utf8_path(&home));

    let info = json(&plugins.ok(&["plugin", "info", "foo", "--json"]));
    assert_eq!(info["build_host"], "build.example.org");
    assert_eq!(info["build_date"], "2023-11-14T22:13:20Z");
    assert_eq!(info["summary"], "plugin for tests");
    assert_eq!(info["maintainer"], "Jane Doe");
    assert_eq!(info["vendor"], "ACME");
    assert_eq!(info["license"], "BSD");
    assert_eq!(info["url"], "http://example.org");
    let files: Vec<&str> = info["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "metwork_plugin/.layerapi2_label",
            "metwork_plugin/.plugin_format_version",
            "metwork_plugin/bin/foo_hello",
            "metwork_plugin/config.ini",
        ]
    );
    let size: u64 = info["size"].as_str().unwrap().parse().unwrap();
    let expected_size = [
        "/.layerapi2_label",
        "/.plugin_format_version",
        "/bin/foo_hello",
        "/config.ini",
    ]
    .iter()
    .map(|f| {
        fs::metadata(format!("{}{f}", home.display()))
            .unwrap()
            .len()
    })
    .sum::<u64>();
    assert_eq!(size, expected_size);
    let text = plugins.ok(&["plugin", "info", "foo"]);
    assert!(text.contains("║ Build Host ║ build.example.org"), "{text}");
    assert!(
        text.contains("\nFiles:\n- metwork_plugin/.layerapi2_label\n"),
        "{text}"
    );
    assert_eq!(
        plugins.ok(&["plugin", "info", "--just-home", "foo"]),
        format!("{}\n", home.display())
    );

    let expected_hash = md5_hex(&format!(
        "build.example.org, 2023-11-14T22:13:20Z, {size}, 1.0.0, 1"
    ));
    assert_eq!(
        plugins.ok(&["plugin", "hash", "foo"]),
        format!("{expected_hash}\n")
    );
    assert_eq!(
        plugins.ok(&["plugin", "hash", utf8_path(&file)]),
        format!("{expected_hash}\n")
    );

    let used = plugins.ok(&["exec", "-l", "plugin_foo@generic", "--", "foo_hello"]);
    assert_eq!(used, "hello from foo 1.0.0\n");

    let output = plugins.run(&["plugin", "uninstall", "foo"]);
    assert_success(&output);
    assert!(!home.exists());
    assert_eq!(plugins.ok(&["plugin", "list", "--raw"]), "");
    assert!(
        children(&plugins.base).is_empty(),
        "{:?}",
        children(&plugins.base)
    );
    let output = plugins.run(&["exec", "-l", "plugin_foo@generic", "--", "true"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn unknown_plugins_are_errors_naming_the_plugin() {
    let plugins = PluginFixture::new();
    for args in [
        &["plugin", "info", "nope"][..],
        &["plugin", "hash", "nope"],
        &["plugin", "uninstall", "nope"],
        &["plugin", "repackage", "nope"],
    ] {
        let output = plugins.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(stdout(&output).is_empty());
        assert!(
            stderr(&output).contains("mfenv: error: plugin `nope` is not installed"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn the_override_template_holds_the_public_keys_commented_out() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    let home = plugins.base.join("foo");
    let expected = format!(
        "# THIS FILE OVERRIDES {home}/config.ini CONFIGURATION FILE (plugin: foo)\n\
         # DON'T CHANGE ANYTHING IN {home}/config.ini FILE, NEVER\n\
         #\n\
         # => to set a new value for a key, just uncomment it in the \n\
         #    current file and change its value\n\
         #\n\
         # Note: this file itself can be overriden by:\n\
         #       {sysconf}/generic/plugins/foo.ini\n\
         #       (if exists)\n\
         \n\
         \n\
         \n\
         [custom]\n\
         # the greeting\n\
         # greeting = hello\n",
        home = home.display(),
        sysconf = plugins.sysconf.display()
    );
    assert_eq!(
        fs::read_to_string(plugins.override_path("foo")).unwrap(),
        expected
    );
}

#[test]
fn an_untouched_template_goes_with_the_plugin_and_a_touched_override_stays() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    let file = utf8_path(&file);
    let override_path = plugins.override_path("foo");
    plugins.ok(&["plugin", "install", file]);
    plugins.ok(&["plugin", "uninstall", "foo"]);
    assert!(!override_path.exists(), "an untouched template is removed");

    plugins.ok(&["plugin", "install", file]);
    fs::write(&override_path, "[custom]\ngreeting = ciao\n").unwrap();
    plugins.ok(&["plugin", "uninstall", "foo"]);
    assert_eq!(
        fs::read_to_string(&override_path).unwrap(),
        "[custom]\ngreeting = ciao\n"
    );
    let output = plugins.run(&["plugin", "install", file]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("please merge them manually"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        fs::read_to_string(&override_path).unwrap(),
        "[custom]\ngreeting = ciao\n"
    );
    let new_template = override_path.with_extension("ini.new");
    assert!(
        fs::read_to_string(&new_template)
            .unwrap()
            .contains("# greeting = hello")
    );

    plugins.ok(&["plugin", "uninstall", "--clean", "foo"]);
    assert!(!override_path.exists());
    assert!(!new_template.exists());
}

#[test]
fn force_replaces_an_installed_plugin_and_keeps_the_op_override() {
    let plugins = PluginFixture::new();
    let first = plugins.released("foo", "1.0.0");
    plugins.ok(&["plugin", "install", utf8_path(&first)]);
    fs::write(plugins.override_path("foo"), "[custom]\ngreeting = ciao\n").unwrap();
    let second = plugins.released("foo", "2.0.0");

    let output = plugins.run(&["plugin", "install", utf8_path(&second)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("plugin `foo` is already installed"));
    assert!(stderr(&output).contains("hint: use `--force`"));
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("foo~~~1.0.0~~~")
    );

    plugins.ok(&["plugin", "install", "--force", utf8_path(&second)]);
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("foo~~~2.0.0~~~")
    );
    assert_eq!(
        plugins.ok(&["exec", "-l", "plugin_foo@generic", "--", "foo_hello"]),
        "hello from foo 2.0.0\n"
    );
    assert_eq!(
        fs::read_to_string(plugins.override_path("foo")).unwrap(),
        "[custom]\ngreeting = ciao\n"
    );
    assert!(
        children(&plugins.base) == ["foo"],
        "{:?}",
        children(&plugins.base)
    );
}

#[test]
fn new_name_installs_the_plugin_under_another_label() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    plugins.ok(&["plugin", "install", "--new-name", "bar", utf8_path(&file)]);
    assert_eq!(
        fs::read_to_string(plugins.base.join("bar/.layerapi2_label")).unwrap(),
        "plugin_bar@generic\n"
    );
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("bar~~~1.0.0~~~1~~~")
    );
    assert_eq!(
        plugins.ok(&["exec", "-l", "plugin_bar@generic", "--", "foo_hello"]),
        "hello from foo 1.0.0\n"
    );
    let output = plugins.run(&[
        "plugin",
        "install",
        "--new-name",
        "plugin_x",
        utf8_path(&file),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("A plugin name can't start with 'plugin_'"));
}

#[test]
fn postinstall_runs_in_the_plugin_home_with_its_layer_and_plugin_env() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    write_executable(
        &home.join("postinstall"),
        "#!/bin/sh\n{ pwd; echo \"$GENERIC_CURRENT_PLUGIN_NAME\"; echo \"$GENERIC_CURRENT_PLUGIN_DIR\";\
         echo \"$GENERIC_CURRENT_PLUGIN_LABEL\"; foo_hello; echo \"$GENERIC_CURRENT_PLUGIN_CUSTOM_GREETING\";\
         echo \"$TMPDIR\"; } > postinstall.out\necho done installing\n",
    );
    let file = plugins.release(&home);
    let output = plugins.run(&["plugin", "install", utf8_path(&file)]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("postinstall: done installing"),
        "{}",
        stderr(&output)
    );
    let installed = plugins.base.join("foo");
    let report = fs::read_to_string(installed.join("postinstall.out")).unwrap();
    let home_text = installed.display().to_string();
    assert_eq!(
        report,
        format!(
            "{home_text}\nfoo\n{home_text}\nplugin_foo@generic\nhello from foo 1.0.0\nhello\n{}\n",
            plugins.runtime.join("tmp/foo").display()
        )
    );
}

#[test]
fn a_failing_postinstall_rolls_the_install_back() {
    let plugins = PluginFixture::new();
    let good = plugins.released("foo", "1.0.0");
    let home = plugins.source("foo", "2.0.0");
    write_executable(
        &home.join("postinstall"),
        "#!/bin/sh\necho boom >&2\nexit 3\n",
    );
    let bad = plugins.release(&home);

    let output = plugins.run(&["plugin", "install", utf8_path(&bad)]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("the postinstall of plugin `foo` failed (exit status 3)"),
        "{message}"
    );
    assert!(message.contains("postinstall: boom"), "{message}");
    assert!(
        children(&plugins.base).is_empty(),
        "{:?}",
        children(&plugins.base)
    );
    assert!(!plugins.override_path("foo").exists());

    plugins.ok(&["plugin", "install", utf8_path(&good)]);
    let before = snapshot(&plugins.base);
    let output = plugins.run(&["plugin", "install", "--force", utf8_path(&bad)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("the previous installation was put back"));
    assert_eq!(snapshot(&plugins.base), before);
}

#[test]
fn a_postinstall_past_its_timeout_is_killed_with_its_children_and_rolled_back() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    let pgid_file = plugins.root().join("pgid");
    write_executable(
        &home.join("postinstall"),
        &format!(
            "#!/bin/sh\necho $$ > '{}'\necho waiting\nsleep 30 &\nwait\n",
            pgid_file.display()
        ),
    );
    let file = plugins.release(&home);
    let started = std::time::Instant::now();
    let output = plugins.run_with(
        &["plugin", "install", utf8_path(&file)],
        &[("MFENV_POSTINSTALL_TIMEOUT", "0.5")],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("the postinstall of plugin `foo` did not finish within 0.5 s"),
        "{message}"
    );
    assert!(message.contains("MFENV_POSTINSTALL_TIMEOUT"), "{message}");
    assert!(
        message.contains("the plugin was removed again"),
        "{message}"
    );
    let pgid: i32 = fs::read_to_string(&pgid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!process_group_is_running(pgid), "the `sleep 30` survives");
    assert!(
        children(&plugins.base).is_empty(),
        "{:?}",
        children(&plugins.base)
    );
    let log = plugins.runtime.join("log/postinstall_foo.log");
    assert_eq!(fs::read_to_string(&log).unwrap(), "waiting\n");
    assert!(stdout(&output).is_empty());

    let output = plugins.run_with(
        &["plugin", "install", utf8_path(&file)],
        &[("MFENV_POSTINSTALL_TIMEOUT", "soon")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("bad `MFENV_POSTINSTALL_TIMEOUT` value `soon`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_talkative_postinstall_is_logged_to_a_file_and_only_its_tail_is_shown() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    // 200,000 lines, about 3 MB, on both stdout and stderr.
    write_executable(
        &home.join("postinstall"),
        "#!/bin/sh\nseq 1 100000 | sed 's/^/out /'\nseq 1 100000 | sed 's/^/err /' >&2\necho last line\n",
    );
    let file = plugins.release(&home);
    let output = plugins.run(&["plugin", "install", utf8_path(&file)]);
    assert_success(&output);
    let message = stderr(&output);
    let shown: Vec<&str> = message
        .lines()
        .filter(|line| line.starts_with("postinstall: "))
        .collect();
    let log = plugins.runtime.join("log/postinstall_foo.log");
    assert_eq!(
        shown.first().copied(),
        Some(format!("postinstall: (earlier lines in `{}`)", log.display()).as_str()),
        "{message}"
    );
    assert_eq!(shown.len(), 21, "{message}");
    assert_eq!(shown.last().copied(), Some("postinstall: last line"));
    assert!(shown.contains(&"postinstall: err 100000"), "{message}");
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 200_001);
    assert!(text.contains("\nout 100000\nerr 1\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn install_and_uninstall_refuse_to_run_inside_a_plugin_env() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    for args in [
        &["plugin", "install", utf8_path(&file)][..],
        &["plugin", "uninstall", "foo"],
    ] {
        let output = plugins.run_with(args, &[("GENERIC_CURRENT_PLUGIN_NAME", "other")]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("inside a plugin env"),
            "{}",
            stderr(&output)
        );
    }
    assert!(!plugins.base.exists());
}

#[test]
fn check_lists_every_problem_and_exits_with_one() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    assert!(
        plugins
            .ok(&["plugin", "check", utf8_path(&home)])
            .contains("plugin `foo` 1.0.0-1 is valid")
    );

    fs::write(home.join(".layerapi2_label"), "plugin_a@b@generic\n").unwrap();
    fs::remove_file(home.join(".plugin_format_version")).unwrap();
    fs::write(
        home.join("config.ini"),
        "[general]\n_version = 1.0.0\n_summary = s\n_url = u\n_maintainer = m\n_vendor = v\n",
    )
    .unwrap();
    let output = plugins.run(&["plugin", "check", utf8_path(&home)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert!(
        message.contains(&format!("`{}` is not a valid plugin", home.display())),
        "{message}"
    );
    assert!(
        message.contains("a plugin name can't contain '@'"),
        "{message}"
    );
    assert!(
        message.contains(
            ".plugin_format_version is missing => this is probably an old and incompatible plugin"
        ),
        "{message}"
    );
    assert!(
        message.contains("[section: general][key: _license] required field"),
        "{message}"
    );
}

#[test]
fn develop_links_the_source_tree_with_dev_link_as_version() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    plugins.ok(&["plugin", "develop", utf8_path(&home)]);
    let link = plugins.base.join("foo");
    assert_eq!(fs::read_link(&link).unwrap(), home);
    assert_eq!(
        plugins.ok(&["plugin", "list", "--raw"]),
        format!("foo~~~dev_link~~~dev_link~~~{}\n", link.display())
    );
    assert_eq!(
        plugins.ok(&["plugin", "hash", "foo"]),
        format!(
            "{}\n",
            md5_hex("unknown, unknown, unknown, dev_link, dev_link")
        )
    );
    assert!(
        !plugins.override_path("foo").exists(),
        "no template for dev links"
    );
    assert_eq!(
        plugins.ok(&["exec", "-l", "plugin_foo@generic", "--", "foo_hello"]),
        "hello from foo 1.0.0\n"
    );
    // Release reads the version from the source tree, not from the dev link (H16).
    let file = plugins.release(&home);
    assert!(
        file.ends_with("foo-1.0.0-1.metwork.generic.plugin"),
        "{file:?}"
    );

    plugins.ok(&["plugin", "uninstall", "foo"]);
    assert!(fs::symlink_metadata(&link).is_err());
    assert!(home.join("config.ini").is_file(), "the source tree stays");

    // A dev link whose source tree is gone is reported by list and can be uninstalled.
    plugins.ok(&["plugin", "develop", utf8_path(&home)]);
    fs::remove_dir_all(&home).unwrap();
    let output = plugins.run(&["plugin", "list", "--raw"]);
    assert_success(&output);
    assert!(stdout(&output).is_empty());
    assert!(stderr(&output).contains("is broken"), "{}", stderr(&output));
    plugins.ok(&["plugin", "uninstall", "foo"]);
    assert!(fs::symlink_metadata(&link).is_err());
}

#[test]
fn repackage_bakes_the_op_overrides_into_a_new_plugin_file() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    fs::write(
        plugins.override_path("foo"),
        "[custom]\ngreeting = ciao\nnew_key = 1\n_private = no\n",
    )
    .unwrap();
    fs::remove_file(&file).unwrap();
    let output = plugins.run(&["plugin", "repackage", "foo"]);
    assert_success(&output);
    assert_eq!(stdout(&output), format!("{}\n", file.display()));
    let message = stderr(&output);
    assert!(
        message.contains("CHANGED [custom]/greeting: hello => ciao"),
        "{message}"
    );
    assert!(message.contains("NEW [custom]/new_key = 1"), "{message}");
    let config = Command::new("tar")
        .args(["-xzOf", utf8_path(&file), "metwork_plugin/config.ini"])
        .output()
        .unwrap();
    let config = String::from_utf8(config.stdout).unwrap();
    assert!(config.contains("greeting = ciao\n"), "{config}");
    assert!(config.contains("new_key = 1\n"), "{config}");
    assert!(
        config.contains("_private = x\n"),
        "private keys are not overridden: {config}"
    );
    let info = json(&plugins.ok(&["plugin", "info", utf8_path(&file), "--json"]));
    assert_eq!(info["version"], "1.0.0");
    assert_eq!(info["home"], serde_json::Value::Null);
}

/// Writes the mfplugin layout by hand and packs it with the `tar` command.
fn mfplugin_archive(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("metwork_plugin");
    write_plugin_tree(&tree, "legacy", "3.2.1");
    fs::write(tree.join(".metadata.json"), metadata_json("3.2.1", 1234)).unwrap();
    fs::write(
        tree.join(".files.json"),
        "[\n    \"metwork_plugin/config.ini\",\n    \"metwork_plugin/bin/legacy_hello\"\n]",
    )
    .unwrap();
    let file = dir.join("legacy-3.2.1-1.metwork.generic.plugin");
    let status = Command::new("tar")
        .current_dir(dir)
        .args(["-czf", utf8_path(&file), "metwork_plugin"])
        .status()
        .unwrap();
    assert!(status.success());
    file
}

#[test]
fn an_archive_in_the_mfplugin_layout_installs_and_reports_the_same_fields_and_hash() {
    let plugins = PluginFixture::new();
    let dir = plugins.root().join("mfplugin");
    fs::create_dir_all(&dir).unwrap();
    let file = mfplugin_archive(&dir);
    let expected_hash = md5_hex("mfplugin.example.org, 2024-01-02T03:04:05Z, 1234, 3.2.1, 1");
    assert_eq!(
        plugins.ok(&["plugin", "hash", utf8_path(&file)]),
        format!("{expected_hash}\n")
    );
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    assert_eq!(
        plugins.ok(&["plugin", "hash", "legacy"]),
        format!("{expected_hash}\n")
    );
    let info = json(&plugins.ok(&["plugin", "info", "legacy", "--json"]));
    assert_eq!(info["version"], "3.2.1");
    assert_eq!(info["release"], "1");
    assert_eq!(info["size"], "1234");
    assert_eq!(info["build_host"], "mfplugin.example.org");
    assert_eq!(info["build_date"], "2024-01-02T03:04:05Z");
    assert_eq!(info["maintainer"], "Jane Doe");
    assert_eq!(
        info["files"],
        serde_json::json!([
            "metwork_plugin/config.ini",
            "metwork_plugin/bin/legacy_hello"
        ])
    );
    assert_eq!(
        plugins.ok(&["exec", "-l", "plugin_legacy@generic", "--", "legacy_hello"]),
        "hello from legacy 3.2.1\n"
    );
}

#[test]
fn an_mfenv_archive_has_the_layout_mfplugin_reads() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    let gzip_check = Command::new("gzip")
        .args(["-t", utf8_path(&file)])
        .status()
        .unwrap();
    assert!(gzip_check.success());
    let listing = Command::new("tar")
        .args(["-tzf", utf8_path(&file)])
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8(listing.stdout).unwrap();
    let names: Vec<&str> = listing.lines().collect();
    assert!(
        names
            .iter()
            .all(|n| *n == "metwork_plugin" || n.starts_with("metwork_plugin/")),
        "{listing}"
    );
    for member in [
        "metwork_plugin/.layerapi2_label",
        "metwork_plugin/.metadata.json",
        "metwork_plugin/.files.json",
    ] {
        assert!(names.contains(&member), "{member} missing from\n{listing}");
    }
    let member = |name: &str| {
        let output = Command::new("tar")
            .args(["-xzOf", utf8_path(&file), name])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let metadata = member("metwork_plugin/.metadata.json");
    assert!(
        metadata.starts_with("{\n    \"version\": \"1.0.0\",\n"),
        "{metadata}"
    );
    let metadata = json(&metadata);
    let object = metadata.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "build_date",
            "build_host",
            "license",
            "packager",
            "release",
            "size",
            "summary",
            "url",
            "vendor",
            "version"
        ]
    );
    assert!(object.values().all(serde_json::Value::is_string));
    let files = json(&member("metwork_plugin/.files.json"));
    assert!(
        files
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("metwork_plugin/bin/foo_hello"))
    );
}
