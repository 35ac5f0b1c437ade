//! `mfenv plugin release` (reproducible output, `.releaseignore` with gitignore
//! semantics, no link leading outside the plugin) and `mfenv plugin provision`.

mod common;
mod plugin_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use plugin_support::*;

fn listing(file: &Path) -> Vec<String> {
    let output = Command::new("tar")
        .args(["-tzf", utf8_path(file)])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn two_releases_of_the_same_tree_are_byte_identical() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    fs::create_dir_all(home.join("lib/deep")).unwrap();
    fs::write(home.join("lib/deep/data.txt"), "data\n").unwrap();
    std::os::unix::fs::symlink("deep/data.txt", home.join("lib/alias")).unwrap();
    let first = plugins.release(&home);
    let first_bytes = fs::read(&first).unwrap();
    fs::remove_file(&first).unwrap();
    // Different mtimes and modes without the exec bit change nothing.
    let touched = std::time::SystemTime::now();
    fs::File::options()
        .write(true)
        .open(home.join("config.ini"))
        .unwrap()
        .set_modified(touched)
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(home.join("config.ini"), fs::Permissions::from_mode(0o600)).unwrap();
    let second = plugins.release(&home);
    assert_eq!(first, second);
    assert!(
        fs::read(&second).unwrap() == first_bytes,
        "the two builds differ"
    );

    let verbose = Command::new("tar")
        .args(["-tvzf", utf8_path(&second)])
        .output()
        .unwrap();
    let verbose = String::from_utf8(verbose.stdout).unwrap();
    for line in verbose.lines() {
        assert!(line.contains(" 0/0 "), "owner not normalised: {line}");
        assert!(
            line.contains("2023-11-14 22:13"),
            "mtime not normalised: {line}"
        );
    }
    assert!(
        verbose.contains("-rwxr-xr-x 0/0"),
        "the exec bit is kept:\n{verbose}"
    );
    assert!(verbose.contains("-rw-r--r-- 0/0"), "{verbose}");
    // Entries come in sorted tree order.
    assert_eq!(
        listing(&second),
        [
            "metwork_plugin",
            "metwork_plugin/.files.json",
            "metwork_plugin/.layerapi2_label",
            "metwork_plugin/.metadata.json",
            "metwork_plugin/.plugin_format_version",
            "metwork_plugin/bin",
            "metwork_plugin/bin/foo_hello",
            "metwork_plugin/config.ini",
            "metwork_plugin/lib",
            "metwork_plugin/lib/alias",
            "metwork_plugin/lib/deep",
            "metwork_plugin/lib/deep/data.txt",
        ]
    );
}

#[test]
fn releaseignore_follows_gitignore_semantics() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    for file in [
        "local/lib/x.py",
        "local/bin/tool",
        "src/local.txt",
        "logs/a.log",
        "logs/keep.log",
        "build/out",
        "src/build/kept",
        "tmp/a",
        "sub/tmp/b",
    ] {
        let path = home.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, "x").unwrap();
    }
    fs::write(
        home.join(".releaseignore"),
        "# a directory pattern without a slash prunes the whole subtree\nlocal\n\
         *.log\n!keep.log\n/build\ntmp/\n",
    )
    .unwrap();
    let file = plugins.release(&home);
    let names = listing(&file);
    let has = |name: &str| names.iter().any(|n| n == &format!("metwork_plugin/{name}"));
    for gone in [
        "local",
        "local/lib/x.py",
        "logs/a.log",
        "build",
        "build/out",
        "tmp",
        "sub/tmp/b",
    ] {
        assert!(!has(gone), "{gone} should be ignored: {names:?}");
    }
    for kept in [
        "src/local.txt",
        "logs/keep.log",
        "src/build/kept",
        ".releaseignore",
        "sub",
    ] {
        assert!(has(kept), "{kept} should be kept: {names:?}");
    }
    let files = Command::new("tar")
        .args(["-xzOf", utf8_path(&file), "metwork_plugin/.files.json"])
        .output()
        .unwrap();
    let files = String::from_utf8(files.stdout).unwrap();
    assert!(!files.contains("local/lib"), "{files}");
    assert!(files.contains("metwork_plugin/logs/keep.log"), "{files}");
}

#[test]
fn release_refuses_a_symlink_leading_outside_the_plugin() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    std::os::unix::fs::symlink("/usr/bin/env", home.join("bin/env")).unwrap();
    let output = plugins.run(&["plugin", "release", utf8_path(&home)]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(
            "symlink `metwork_plugin/bin/env` points to the absolute path `/usr/bin/env`"
        ),
        "{message}"
    );
    assert!(message.contains(".releaseignore"), "{message}");
    assert!(children(&plugins.work).is_empty(), "no file left behind");
    fs::write(home.join(".releaseignore"), "/bin/env\n").unwrap();
    plugins.release(&home);
}

#[test]
fn release_of_an_invalid_tree_says_why() {
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    fs::write(home.join("config.ini"), "[general]\n_version = 1.0.0\n").unwrap();
    let output = plugins.run(&["plugin", "release", utf8_path(&home)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[key: _summary] required field"),
        "{}",
        stderr(&output)
    );
    assert!(children(&plugins.work).is_empty());
}

fn provisioning_dir(plugins: &PluginFixture) -> std::path::PathBuf {
    let dir = plugins.sysconf.join("generic/plugins");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn provisioning_installs_what_is_missing_then_changes_nothing() {
    let plugins = PluginFixture::new();
    let dir = provisioning_dir(&plugins);
    for name in ["alpha", "beta"] {
        let file = plugins.released(name, "1.0.0");
        fs::rename(&file, dir.join(file.file_name().unwrap())).unwrap();
    }
    let output = plugins.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("installed plugin `alpha` 1.0.0-1"),
        "{}",
        stderr(&output)
    );
    assert_eq!(children(&plugins.base), ["alpha", "beta"]);
    let before = snapshot(&plugins.runtime);
    let inode = |name: &str| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(plugins.base.join(name)).unwrap().ino()
    };
    let inodes_before = (inode("alpha"), inode("beta"));
    let output = plugins.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    assert_eq!(snapshot(&plugins.runtime), before);
    assert_eq!(
        (inode("alpha"), inode("beta")),
        inodes_before,
        "nothing was reinstalled"
    );
}

#[test]
fn provisioning_updates_a_changed_plugin_and_keeps_the_op_override() {
    let plugins = PluginFixture::new();
    let dir = provisioning_dir(&plugins);
    let first = plugins.released("alpha", "1.0.0");
    let provisioned = dir.join(first.file_name().unwrap());
    fs::rename(&first, &provisioned).unwrap();
    plugins.ok(&["plugin", "provision"]);
    fs::write(
        plugins.override_path("alpha"),
        "[custom]\ngreeting = ciao\n",
    )
    .unwrap();

    fs::remove_file(&provisioned).unwrap();
    let second = plugins.released("alpha", "2.0.0");
    fs::rename(&second, dir.join(second.file_name().unwrap())).unwrap();
    let output = plugins.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("updated plugin `alpha` to 2.0.0-1"),
        "{}",
        stderr(&output)
    );
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("alpha~~~2.0.0~~~1~~~")
    );
    assert_eq!(
        fs::read_to_string(plugins.override_path("alpha")).unwrap(),
        "[custom]\ngreeting = ciao\n"
    );
}

#[test]
fn provisioning_reports_a_corrupt_file_and_still_installs_the_others() {
    let plugins = PluginFixture::new();
    let dir = provisioning_dir(&plugins);
    fs::write(dir.join("aaa-broken.plugin"), "garbage").unwrap();
    let file = plugins.released("zeta", "1.0.0");
    fs::rename(&file, dir.join(file.file_name().unwrap())).unwrap();
    let output = plugins.run(&["plugin", "provision"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("aaa-broken.plugin"), "{message}");
    assert!(
        message.contains("failed for 1 of 2 plugin files"),
        "{message}"
    );
    assert_eq!(children(&plugins.base), ["zeta"]);
}

#[test]
fn provisioning_leaves_a_dev_linked_plugin_alone() {
    let plugins = PluginFixture::new();
    let dir = provisioning_dir(&plugins);
    let home = plugins.source("alpha", "1.0.0");
    let file = plugins.release(&home);
    fs::rename(&file, dir.join(file.file_name().unwrap())).unwrap();
    plugins.ok(&["plugin", "develop", utf8_path(&home)]);
    let output = plugins.run(&["plugin", "provision", "--dir", utf8_path(&dir)]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("dev-linked"),
        "{}",
        stderr(&output)
    );
    assert!(
        fs::symlink_metadata(plugins.base.join("alpha"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn two_files_of_one_plugin_provision_the_highest_version_once_and_then_nothing() {
    let plugins = PluginFixture::new();
    let dir = provisioning_dir(&plugins);
    // Names that sort the other way round from the versions.
    for (version, name) in [("1.10.0", "alpha-a.plugin"), ("1.9.0", "alpha-b.plugin")] {
        let file = plugins.released("alpha", version);
        fs::rename(&file, dir.join(name)).unwrap();
    }
    let output = plugins.run(&["plugin", "provision"]);
    assert_success(&output);
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "warning: `{}` and `{}` both hold plugin `alpha`: 1.10.0-1 is provisioned, `{}` (1.9.0-1) is ignored",
            dir.join("alpha-b.plugin").display(),
            dir.join("alpha-a.plugin").display(),
            dir.join("alpha-b.plugin").display(),
        )),
        "{message}"
    );
    assert_eq!(
        message.matches("installed plugin `alpha`").count(),
        1,
        "{message}"
    );
    assert!(!message.contains("updated"), "{message}");
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("alpha~~~1.10.0~~~1~~~")
    );
    // A second run changes nothing: same choice, same hash.
    let before = snapshot(&plugins.runtime);
    let output = plugins.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(
        !stderr(&output).contains("installed"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("updated"), "{}", stderr(&output));
    assert_eq!(snapshot(&plugins.runtime), before);

    // Same version and release, different builds: the file whose name sorts last.
    fs::remove_file(dir.join("alpha-b.plugin")).unwrap();
    let home = plugins.source("alpha", "1.10.0");
    let rebuilt = plugins.run_with(
        &["plugin", "release", utf8_path(&home)],
        &[("SOURCE_DATE_EPOCH", "1800000000")],
    );
    assert_success(&rebuilt);
    fs::rename(stdout(&rebuilt).trim_end(), dir.join("alpha-c.plugin")).unwrap();
    let output = plugins.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("updated plugin `alpha` to 1.10.0-1 from `"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("alpha-c.plugin`"),
        "{}",
        stderr(&output)
    );
    let before = snapshot(&plugins.runtime);
    assert_success(&plugins.run(&["plugin", "provision"]));
    assert_eq!(snapshot(&plugins.runtime), before);
}

#[test]
fn provisioning_goes_on_after_bad_files_and_names_each_of_them() {
    let plugins = PluginFixture::new();
    let dir = provisioning_dir(&plugins);
    // Metadata without its `version` key.
    let mut members = valid_members("badmeta");
    members[3].1 = metadata_json("1.0.0", 10)
        .replace("\"version\": \"1.0.0\",", "")
        .into_bytes();
    let entries: Vec<Crafted<'_>> = members
        .iter()
        .map(|(name, data)| Crafted::File(name.as_str(), data.as_slice()))
        .collect();
    craft_archive(&dir.join("badmeta.plugin"), &entries);
    // A postinstall that fails.
    let home = plugins.source("failing", "1.0.0");
    write_executable(
        &home.join("postinstall"),
        "#!/bin/sh\necho no >&2\nexit 4\n",
    );
    let failing = plugins.release(&home);
    fs::rename(&failing, dir.join("failing.plugin")).unwrap();
    // A truncated archive.
    let good = plugins.released("zeta", "1.0.0");
    let bytes = fs::read(&good).unwrap();
    fs::write(dir.join("cut.plugin"), &bytes[..bytes.len() / 2]).unwrap();
    fs::rename(&good, dir.join("zeta.plugin")).unwrap();
    let ok = plugins.released("alpha", "1.0.0");
    fs::rename(&ok, dir.join("alpha.plugin")).unwrap();
    // A link to nothing.
    std::os::unix::fs::symlink("/nonexistent/x.plugin", dir.join("gone.plugin")).unwrap();

    let output = plugins.run(&["plugin", "provision"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert!(
        message.contains("failed for 4 of 6 plugin files"),
        "{message}"
    );
    assert!(
        message.contains("gone.plugin` is not a regular file"),
        "{message}"
    );
    for bad in [
        "badmeta.plugin",
        "failing.plugin",
        "cut.plugin",
        "gone.plugin",
    ] {
        assert!(
            message.contains(&format!("caused by: `{}`", dir.join(bad).display())),
            "{bad}: {message}"
        );
    }
    assert!(message.contains("installed plugin `alpha`"), "{message}");
    assert!(message.contains("installed plugin `zeta`"), "{message}");
    assert_eq!(children(&plugins.base), ["alpha", "zeta"]);
}
