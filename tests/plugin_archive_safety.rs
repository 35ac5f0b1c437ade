//! `.plugin` files are untrusted: every kind of malicious or broken archive is refused
//! with a clear error, and the runtime home (plugins base dir, overrides, lock) is left
//! byte-for-byte as it was.

mod common;
mod plugin_support;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use plugin_support::*;

/// A fixture with one plugin installed, so the base dir has content to protect.
fn fixture_with_a_plugin() -> PluginFixture {
    let plugins = PluginFixture::new();
    let file = plugins.released("good", "1.0.0");
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    plugins
}

/// Installs `file`, expects a refusal mentioning `phrase`, and checks that nothing in
/// the runtime home changed and nothing appeared next to the fixture.
fn assert_refused(plugins: &PluginFixture, file: &Path, phrase: &str) {
    let before = snapshot(&plugins.runtime);
    let around_before = children(plugins.root());
    let output = plugins.run(&["plugin", "install", utf8_path(file)]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(stdout(&output).is_empty());
    assert!(
        message.starts_with(&format!(
            "mfenv: error: cannot install `{}`",
            file.display()
        )),
        "{message}"
    );
    assert!(
        message.contains(phrase),
        "expected `{phrase}` in:\n{message}"
    );
    assert!(message.contains("hint: nothing was written"), "{message}");
    assert_eq!(
        snapshot(&plugins.runtime),
        before,
        "the runtime home changed"
    );
    assert_eq!(children(plugins.root()), around_before);
}

/// The valid members of plugin `evil`, then `extra`.
fn archive_with(plugins: &PluginFixture, file_name: &str, extra: &[Crafted<'_>]) -> PathBuf {
    let members = valid_members("evil");
    let mut entries: Vec<Crafted<'_>> = vec![Crafted::Dir("metwork_plugin/")];
    entries.extend(
        members
            .iter()
            .map(|(name, data)| Crafted::File(name.as_str(), data.as_slice())),
    );
    let path = plugins.work.join(file_name);
    let mut all: Vec<Crafted<'_>> = entries;
    for entry in extra {
        all.push(match entry {
            Crafted::Dir(n) => Crafted::Dir(n),
            Crafted::File(n, d) => Crafted::File(n, d),
            Crafted::Symlink(n, t) => Crafted::Symlink(n, t),
            Crafted::HardLink(n, t) => Crafted::HardLink(n, t),
            Crafted::Fifo(n) => Crafted::Fifo(n),
            Crafted::CharDevice(n) => Crafted::CharDevice(n),
        });
    }
    craft_archive(&path, &all);
    path
}

#[test]
fn a_valid_crafted_archive_installs_so_the_refusals_below_are_meaningful() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "ok.plugin",
        &[
            Crafted::Dir("metwork_plugin/sub/"),
            Crafted::File("metwork_plugin/sub/data", b"data"),
            Crafted::Symlink("metwork_plugin/sub/up", ".."),
            Crafted::Symlink("metwork_plugin/alias", "sub/data"),
            Crafted::HardLink("metwork_plugin/copy", "metwork_plugin/sub/data"),
        ],
    );
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    let home = plugins.base.join("evil");
    assert_eq!(fs::read_to_string(home.join("alias")).unwrap(), "data");
    assert_eq!(fs::read_to_string(home.join("copy")).unwrap(), "data");
    assert_eq!(fs::read_link(home.join("sub/up")).unwrap(), Path::new(".."));
}

#[test]
fn an_absolute_path_is_refused() {
    let plugins = fixture_with_a_plugin();
    let target = plugins.root().join("absolute-evil");
    let name = utf8_path(&target).to_owned();
    let file = archive_with(&plugins, "abs.plugin", &[Crafted::File(&name, b"x")]);
    assert_refused(&plugins, &file, "is an absolute path");
    assert!(!target.exists());
}

#[test]
fn a_dot_dot_component_is_refused() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "dotdot.plugin",
        &[Crafted::File("metwork_plugin/../../../dotdot-evil", b"x")],
    );
    assert_refused(&plugins, &file, "contains a `..` component");
    assert!(!plugins.root().join("dotdot-evil").exists());
}

#[test]
fn a_symlink_escaping_the_plugin_is_refused() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "symlink.plugin",
        &[Crafted::Symlink(
            "metwork_plugin/bin/escape",
            "../../../etc",
        )],
    );
    assert_refused(&plugins, &file, "resolves outside the plugin");
    let file = archive_with(
        &plugins,
        "absolute-symlink.plugin",
        &[Crafted::Symlink("metwork_plugin/passwd", "/etc/passwd")],
    );
    assert_refused(&plugins, &file, "points to the absolute path `/etc/passwd`");
    // Each link stays inside, but `up/..` climbs from the plugin root.
    let file = archive_with(
        &plugins,
        "chained-symlink.plugin",
        &[
            Crafted::Symlink("metwork_plugin/sub/up", ".."),
            Crafted::Symlink("metwork_plugin/escape", "sub/up/../x"),
        ],
    );
    assert_refused(&plugins, &file, "`metwork_plugin/escape` resolves outside");
}

#[test]
fn writing_through_an_archive_symlink_is_refused() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "through.plugin",
        &[
            Crafted::Symlink("metwork_plugin/sub", "bin"),
            Crafted::File("metwork_plugin/sub/x", b"x"),
        ],
    );
    assert_refused(&plugins, &file, "which is not a directory");
}

#[test]
fn a_hard_link_escaping_the_plugin_is_refused() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "hardlink.plugin",
        &[Crafted::HardLink("metwork_plugin/shadow", "/etc/passwd")],
    );
    assert_refused(
        &plugins,
        &file,
        "hard link `metwork_plugin/shadow` points outside the plugin",
    );
    let file = archive_with(
        &plugins,
        "hardlink-dotdot.plugin",
        &[Crafted::HardLink(
            "metwork_plugin/shadow",
            "metwork_plugin/../../x",
        )],
    );
    assert_refused(&plugins, &file, "points outside the plugin");
}

#[test]
fn devices_and_fifos_are_refused() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "device.plugin",
        &[Crafted::CharDevice("metwork_plugin/null")],
    );
    assert_refused(&plugins, &file, "`metwork_plugin/null` is a device");
    let file = archive_with(
        &plugins,
        "fifo.plugin",
        &[Crafted::Fifo("metwork_plugin/pipe")],
    );
    assert_refused(&plugins, &file, "`metwork_plugin/pipe` is a fifo");
}

#[test]
fn a_second_top_directory_is_refused() {
    let plugins = fixture_with_a_plugin();
    let file = archive_with(&plugins, "two.plugin", &[Crafted::File("other/x", b"x")]);
    assert_refused(
        &plugins,
        &file,
        "`other/x` is outside the single top directory `metwork_plugin/`",
    );
}

#[test]
fn missing_mandatory_members_are_refused() {
    let plugins = fixture_with_a_plugin();
    for (member, file_name) in [
        ("metwork_plugin/.layerapi2_label", "nolabel.plugin"),
        ("metwork_plugin/.metadata.json", "nometadata.plugin"),
        ("metwork_plugin/.files.json", "nofiles.plugin"),
    ] {
        let members: Vec<(String, Vec<u8>)> = valid_members("evil")
            .into_iter()
            .filter(|(name, _)| name != member)
            .collect();
        let entries: Vec<Crafted<'_>> = members
            .iter()
            .map(|(name, data)| Crafted::File(name.as_str(), data.as_slice()))
            .collect();
        let file = plugins.work.join(file_name);
        craft_archive(&file, &entries);
        assert_refused(
            &plugins,
            &file,
            &format!("can't read/find {member} file in plugin"),
        );
    }
}

#[test]
fn metadata_without_the_ten_keys_is_refused() {
    let plugins = fixture_with_a_plugin();
    let metadata = metadata_json("1.0.0", 1).replace(",\n    \"url\": \"http://example.org\"", "");
    let label = b"plugin_evil@generic\n";
    let file = plugins.work.join("badmeta.plugin");
    craft_archive(
        &file,
        &[
            Crafted::File("metwork_plugin/.layerapi2_label", label),
            Crafted::File("metwork_plugin/.metadata.json", metadata.as_bytes()),
            Crafted::File("metwork_plugin/.files.json", b"[]"),
        ],
    );
    assert_refused(&plugins, &file, "missing field `url`");
}

#[test]
fn a_label_for_another_module_or_with_extra_at_signs_is_refused() {
    let plugins = fixture_with_a_plugin();
    for (label, phrase) in [
        ("plugin_evil@mfdata\n", "it must end with '@generic'"),
        ("plugin_a@b@generic\n", "can't contain '@'"),
    ] {
        let metadata = metadata_json("1.0.0", 1);
        let file = plugins.work.join("label.plugin");
        craft_archive(
            &file,
            &[
                Crafted::File("metwork_plugin/.layerapi2_label", label.as_bytes()),
                Crafted::File("metwork_plugin/.metadata.json", metadata.as_bytes()),
                Crafted::File("metwork_plugin/.files.json", b"[]"),
            ],
        );
        assert_refused(&plugins, &file, phrase);
    }
}

#[test]
fn a_truncated_gzip_is_refused() {
    let plugins = fixture_with_a_plugin();
    let file = plugins.released("big", "1.0.0");
    let bytes = fs::read(&file).unwrap();
    let half = plugins.work.join("half.plugin");
    fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&plugins, &half, "is truncated or corrupt");
    // Only the gzip trailer (CRC and length) missing: the tar content is complete.
    let trailer = plugins.work.join("trailer.plugin");
    fs::write(&trailer, &bytes[..bytes.len() - 4]).unwrap();
    assert_refused(&plugins, &trailer, "is truncated or corrupt");
}

#[test]
fn data_that_is_not_gzip_is_refused() {
    let plugins = fixture_with_a_plugin();
    let text = plugins.work.join("text.plugin");
    fs::write(&text, "not a plugin at all\n").unwrap();
    assert_refused(
        &plugins,
        &text,
        "as a tar.gz file => this is probably not a metwork >= 1.0 plugin",
    );
    let empty = plugins.work.join("empty.plugin");
    fs::write(&empty, "").unwrap();
    assert_refused(&plugins, &empty, "as a tar.gz file");
    // A valid tar, but not compressed.
    let tree = plugins.root().join("plain");
    write_plugin_tree(&tree.join("metwork_plugin"), "plain", "1.0.0");
    let plain = plugins.work.join("plain.plugin");
    let status = std::process::Command::new("tar")
        .current_dir(&tree)
        .args(["-cf", utf8_path(&plain), "metwork_plugin"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_refused(&plugins, &plain, "as a tar.gz file");
}

#[test]
fn a_missing_file_is_reported_with_its_path() {
    let plugins = fixture_with_a_plugin();
    let missing = plugins.work.join("missing.plugin");
    assert_refused(
        &plugins,
        &missing,
        &format!("file `{}` not found", missing.display()),
    );
}
