//! `mfenv plugin bootstrap list|create` through the real binary: each template gives a
//! plugin that passes `plugin check` as created; the default one releases, installs and
//! runs its tool through `plugin wrapper`; bad requests leave nothing behind; the
//! templates embedded in the binary are the files of `templates/`.

mod common;
mod plugin_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use plugin_support::*;

const TEMPLATES: [&str; 3] = ["default", "node", "python3"];

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// Every file below `dir`: relative path → (contents, executable).
fn files(dir: &Path) -> BTreeMap<String, (Vec<u8>, bool)> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, (Vec<u8>, bool)>) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let metadata = fs::symlink_metadata(&path).expect("metadata");
            if metadata.is_dir() {
                walk(&path, root, out);
            } else {
                let relative = path.strip_prefix(root).expect("below root");
                let executable = metadata.permissions().mode() & 0o111 != 0;
                out.insert(
                    relative.to_string_lossy().into_owned(),
                    (fs::read(&path).expect("read"), executable),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn list_shows_each_template_with_a_description() {
    let fx = PluginFixture::new();
    let out = fx.ok(&["plugin", "bootstrap", "list"]);
    for template in TEMPLATES {
        let line = out
            .lines()
            .find(|line| line.trim_start().starts_with(template))
            .unwrap_or_else(|| panic!("{template} missing from\n{out}"));
        assert!(line.len() > template.len() + 10, "{line}");
    }
}

#[test]
fn each_template_creates_a_plugin_that_passes_check_as_is() {
    let fx = PluginFixture::new();
    for template in TEMPLATES {
        let name = format!("my-{template}");
        let home = fx.bootstrap(template, &name);
        let out = fx.ok(&["plugin", "check", utf8_path(&home)]);
        assert!(
            out.contains(&format!("plugin `{name}` 0.0.1-1 is valid")),
            "{out}"
        );
        for file in [
            ".layerapi2_label",
            ".layerapi2_dependencies",
            ".plugin_format_version",
            "config.ini",
            ".releaseignore",
            ".gitignore",
            ".autorestart_includes",
            ".autorestart_excludes",
            "Makefile",
            "README.md",
        ] {
            assert!(home.join(file).is_file(), "{template}: {file}");
        }
        assert_eq!(
            fs::read_to_string(home.join(".layerapi2_label")).expect("label"),
            format!("plugin_{name}@generic\n")
        );
    }
    let python = fx.work.join("my-python3");
    assert!(
        python
            .join("python3_virtualenv_sources/requirements-to-freeze.txt")
            .is_file()
    );
    assert!(python.join("my_python3/main.py").is_file());
    assert!(fx.work.join("my-node/package.json").is_file());
    assert!(fx.work.join("my-node/index.js").is_file());
    assert!(fx.work.join("my-default/crontab").is_file());
}

#[test]
fn options_fill_the_placeholders_and_none_is_left_behind() {
    let fx = PluginFixture::new();
    for template in TEMPLATES {
        let name = format!("opt-{template}");
        fx.ok(&[
            "plugin",
            "bootstrap",
            "create",
            "--no-input",
            "-t",
            template,
            "--version",
            "2.3.4",
            "--release",
            "7",
            "--summary",
            "does foo things",
            "--license",
            "MIT",
            "--url",
            "https://foo.example.org",
            "--maintainer",
            "Jane Doe <jane@example.org>",
            "--vendor",
            "ACME",
            &name,
        ]);
        let home = fx.work.join(&name);
        let config = fs::read_to_string(home.join("config.ini")).expect("config");
        for line in [
            "_version = 2.3.4",
            "_release = 7",
            "_summary = does foo things",
            "_license = MIT",
            "_url = https://foo.example.org",
            "_maintainer = Jane Doe <jane@example.org>",
            "_vendor = ACME",
        ] {
            assert!(config.lines().any(|l| l == line), "{template}: {line}");
        }
        for (path, (contents, _)) in files(&home) {
            assert!(
                !path.contains("{{"),
                "{template}: a placeholder in path {path}"
            );
            let text = String::from_utf8(contents).expect("utf-8");
            // Only `{{MFMODULE_…}}`, rendered when the configuration is read, and
            // `{{MFENV_BIN}}`, `{{MFENV_CRONWRAP}}`, rendered when the crontab is
            // installed, may stay.
            let left: Vec<&str> = text
                .match_indices("{{")
                .map(|(at, _)| &text[at..])
                .filter(|rest| {
                    !["{{MFMODULE_", "{{MFENV_BIN}}", "{{MFENV_CRONWRAP}}"]
                        .iter()
                        .any(|kept| rest.starts_with(kept))
                })
                .collect();
            assert!(left.is_empty(), "{template}: {path}: {left:?}");
        }
        let out = fx.ok(&["plugin", "check", utf8_path(&home)]);
        assert!(out.contains("2.3.4-7 is valid"), "{out}");
    }
}

#[test]
fn executable_bits_of_the_templates_are_preserved() {
    let fx = PluginFixture::new();
    let home = fx.bootstrap("default", "foo");
    for script in ["bin/foo_hello", "bin/foo_daemon"] {
        let mode = fs::metadata(home.join(script))
            .expect("script")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{script}");
    }
    let mode = fs::metadata(home.join("config.ini"))
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let home = fx.bootstrap("python3", "bar");
    let mode = fs::metadata(home.join("bin/bar_hello"))
        .expect("script")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn a_created_default_plugin_releases_installs_and_runs_its_tool_in_the_wrapper() {
    let fx = PluginFixture::new();
    // `plugin install` updates the user's crontab when the plugin ships one: give it a
    // fake `crontab` so that the test never touches the real one.
    let fake_bin = fx.root().join("fake-bin");
    fs::create_dir_all(&fake_bin).expect("fake bin");
    let crontab_file = fx.root().join("crontab.txt");
    write_executable(
        &fake_bin.join("crontab"),
        &format!(
            "#!/bin/sh\nF='{}'\nif [ \"$1\" = -l ]; then\n  [ -f \"$F\" ] && exec cat \"$F\"\n  echo 'no crontab for test' >&2; exit 1\nfi\ncat -- \"${{1:--}}\" > \"$F\"\n",
            crontab_file.display()
        ),
    );
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display());
    let home = fx.bootstrap("default", "hello-plugin");
    let output = fx.run_with(&["plugin", "release", utf8_path(&home)], &[("PATH", &path)]);
    assert_success(&output);
    let file = PathBuf::from(stdout(&output).trim_end());
    assert_eq!(
        file.file_name().and_then(|n| n.to_str()),
        Some("hello-plugin-0.0.1-1.metwork.generic.plugin")
    );
    let output = fx.run_with(&["plugin", "install", utf8_path(&file)], &[("PATH", &path)]);
    assert_success(&output);
    assert!(
        fx.base
            .join("hello-plugin/bin/hello-plugin_hello")
            .is_file()
    );
    let output = fx.run_with(
        &[
            "plugin",
            "wrapper",
            "hello-plugin",
            "--",
            "hello-plugin_hello",
        ],
        &[("PATH", &path)],
    );
    assert_success(&output);
    assert_eq!(stdout(&output), "hello from hello-plugin 0.0.1\n");
}

#[test]
fn an_unknown_template_is_an_error_listing_the_templates_and_writes_nothing() {
    let fx = PluginFixture::new();
    let output = fx.run(&[
        "plugin",
        "bootstrap",
        "create",
        "--no-input",
        "-t",
        "nope",
        "foo",
    ]);
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("unknown plugin template `nope`"), "{err}");
    assert!(err.contains("default, node, python3"), "{err}");
    assert!(children(&fx.work).is_empty(), "{:?}", children(&fx.work));
}

#[test]
fn an_existing_directory_is_an_error_and_is_left_untouched() {
    let fx = PluginFixture::new();
    let existing = fx.work.join("foo");
    fs::create_dir_all(&existing).expect("dir");
    fs::write(existing.join("mine.txt"), "keep me").expect("file");
    let before = snapshot(&fx.work);
    let output = fx.run(&["plugin", "bootstrap", "create", "--no-input", "foo"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("the subdirectory `foo` already exists in"),
        "{err}"
    );
    assert_eq!(snapshot(&fx.work), before);
}

#[test]
fn an_invalid_name_is_an_error_with_the_name_rule_and_writes_nothing() {
    let fx = PluginFixture::new();
    for (name, reason) in [
        ("plugin_foo", "A plugin name can't start with 'plugin_'"),
        ("__foo", "A plugin name can't start with '__'"),
        ("base", "A plugin name can't be 'base'"),
        ("config", "A plugin name can't be 'config'"),
        ("foo.bar", "A plugin name must follow ^[A-Za-z0-9_-]+$"),
    ] {
        let output = fx.run(&["plugin", "bootstrap", "create", "--no-input", name]);
        assert!(!output.status.success(), "{name}");
        let err = stderr(&output);
        assert!(
            err.contains(&format!("the plugin name `{name}` is not valid")),
            "{err}"
        );
        assert!(err.contains(reason), "{err}");
    }
    assert!(children(&fx.work).is_empty(), "{:?}", children(&fx.work));
}

#[test]
fn a_bad_value_is_an_error_and_writes_nothing() {
    let fx = PluginFixture::new();
    let output = fx.run(&[
        "plugin",
        "bootstrap",
        "create",
        "--no-input",
        "--version",
        "1.0-BETA",
        "foo",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("bad value for `version`"),
        "{}",
        stderr(&output)
    );
    assert!(children(&fx.work).is_empty(), "{:?}", children(&fx.work));
}

#[test]
fn the_embedded_templates_are_the_files_of_the_templates_directory() {
    let on_disk = files(&templates_dir());
    let embedded: BTreeMap<String, (Vec<u8>, bool)> = mfenv::plugin::bootstrap::EMBEDDED
        .iter()
        .map(|(path, contents, executable)| ((*path).to_owned(), (contents.to_vec(), *executable)))
        .collect();
    assert_eq!(
        embedded.keys().collect::<Vec<_>>(),
        on_disk.keys().collect::<Vec<_>>()
    );
    for (path, value) in &on_disk {
        assert_eq!(embedded.get(path), Some(value), "{path} differs: rebuild");
    }
    let names: Vec<&str> = mfenv::plugin::bootstrap::template_names();
    assert_eq!(names, TEMPLATES);
}
