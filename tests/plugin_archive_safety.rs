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
    all.extend(extra.iter().copied());
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

/// `mfenv ARGS` with a guard: it must end within a minute.
fn run_guarded(plugins: &PluginFixture, args: &[&str]) -> std::process::Output {
    output_within(plugins.command(args), std::time::Duration::from_secs(60))
}

/// Runs `info`, `hash` and `install` on `file`: each must fail with `phrase`, no panic,
/// nothing on stdout, nothing written.
fn assert_refused_everywhere(plugins: &PluginFixture, file: &Path, phrase: &str) {
    let path = utf8_path(file);
    for args in [&["plugin", "info", path][..], &["plugin", "hash", path][..]] {
        let output = run_guarded(plugins, args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
        assert!(stdout(&output).is_empty(), "{args:?}");
        assert!(
            message.contains(phrase),
            "{args:?}: expected `{phrase}` in:\n{message}"
        );
        assert!(!message.contains("panicked"), "{message}");
    }
    assert_refused(plugins, file, phrase);
}

#[test]
fn a_path_of_eighty_thousand_components_is_refused_by_the_length_limit() {
    let plugins = fixture_with_a_plugin();
    let name = format!("metwork_plugin/{}x", "a/".repeat(80_000));
    let file = archive_with(&plugins, "deep.plugin", &[Crafted::LongFile(&name, b"x")]);
    assert!(fs::metadata(&file).unwrap().len() < 4096, "a small file");
    assert_refused_everywhere(&plugins, &file, "a long name is longer than 4095 bytes");
}

#[test]
fn names_beyond_the_depth_and_component_limits_are_refused() {
    let plugins = fixture_with_a_plugin();
    let deep = format!("metwork_plugin/{}x", "d/".repeat(257));
    let file = archive_with(&plugins, "deep.plugin", &[Crafted::LongFile(&deep, b"x")]);
    assert_refused(&plugins, &file, "is more than 256 directories deep");
    let wide = format!("metwork_plugin/{}", "w".repeat(256));
    let file = archive_with(&plugins, "wide.plugin", &[Crafted::PaxFile(&wide, b"x")]);
    assert_refused(&plugins, &file, "has a component longer than 255 bytes");
    // At the limits, the plugin installs.
    let deepest = format!("metwork_plugin/{}x", "d/".repeat(256));
    let widest = format!("metwork_plugin/{}", "w".repeat(255));
    let file = archive_with(
        &plugins,
        "limits.plugin",
        &[
            Crafted::LongFile(&deepest, b"deep"),
            Crafted::PaxFile(&widest, b"wide"),
        ],
    );
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    let home = plugins.base.join("evil");
    let deepest_path = home.join(format!("{}x", "d/".repeat(256)));
    assert_eq!(fs::read_to_string(deepest_path).unwrap(), "deep");
    assert_eq!(
        fs::read_to_string(home.join("w".repeat(255))).unwrap(),
        "wide"
    );
}

#[test]
fn a_symlink_target_of_forty_thousand_components_is_refused() {
    let plugins = fixture_with_a_plugin();
    let target = "x/".repeat(40_000);
    let file = archive_with(
        &plugins,
        "target.plugin",
        &[Crafted::LongSymlink("metwork_plugin/link", &target)],
    );
    assert_refused_everywhere(&plugins, &file, "a long link is longer than 4095 bytes");
}

#[test]
fn oversized_pax_headers_and_pax_sizes_are_refused() {
    let plugins = fixture_with_a_plugin();
    let comment = "c".repeat(70_000);
    let records = pax_record("comment", &comment);
    let file = archive_with(
        &plugins,
        "pax.plugin",
        &[Crafted::PaxRecords(&records, "metwork_plugin/x", b"x")],
    );
    assert_refused_everywhere(&plugins, &file, "a pax header is larger than 65536 bytes");
    let records = pax_record("size", "99999999999");
    let file = archive_with(
        &plugins,
        "paxsize.plugin",
        &[Crafted::PaxRecords(&records, "metwork_plugin/x", b"x")],
    );
    assert_refused(&plugins, &file, "has a pax size that is not its header's");
}

#[test]
fn many_bad_entries_give_one_bounded_error() {
    let plugins = fixture_with_a_plugin();
    let names: Vec<String> = (0..500).map(|n| format!("/abs/{n}")).collect();
    let extra: Vec<Crafted<'_>> = names.iter().map(|n| Crafted::File(n, b"x")).collect();
    let file = archive_with(&plugins, "many.plugin", &extra);
    assert_refused(&plugins, &file, "… and 480 more problems");
    let output = plugins.run(&["plugin", "info", utf8_path(&file)]);
    assert!(stderr(&output).lines().count() < 30, "{}", stderr(&output));
}

#[test]
fn long_names_from_gnu_tar_and_pax_archives_install() {
    let plugins = fixture_with_a_plugin();
    let tree = plugins.root().join("tree");
    let plugin = tree.join("metwork_plugin");
    for (name, data) in valid_members("longnames") {
        let path = tree.join(&name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }
    let long_dir = plugin.join(format!("{}/{}", "n".repeat(120), "m".repeat(150)));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("file"), "long").unwrap();
    std::os::unix::fs::symlink(
        format!("{}/{}/file", "n".repeat(120), "m".repeat(150)),
        plugin.join("link"),
    )
    .unwrap();
    for format in ["gnu", "pax"] {
        let file = plugins.work.join(format!("{format}.plugin"));
        let status = std::process::Command::new("tar")
            .current_dir(&tree)
            .args([
                &format!("--format={format}"),
                "-czf",
                utf8_path(&file),
                "metwork_plugin",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        plugins.ok(&["plugin", "install", "--force", utf8_path(&file)]);
        let home = plugins.base.join("longnames");
        assert_eq!(fs::read_to_string(home.join("link")).unwrap(), "long");
    }
}

#[test]
fn a_fifo_or_a_device_is_refused_without_blocking() {
    let plugins = fixture_with_a_plugin();
    let fifo = plugins.work.join("fifo.plugin");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    assert_refused_everywhere(
        &plugins,
        &fifo,
        "it is a fifo (only regular files are read)",
    );
    let output = run_guarded(&plugins, &["plugin", "info", "/dev/zero"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("`/dev/zero` is not a plugin file"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("it is a device"),
        "{}",
        stderr(&output)
    );
    // Provisioning reports it as a bad file without reading it, and goes on.
    let dir = plugins.root().join("provision");
    fs::create_dir_all(&dir).unwrap();
    nix::unistd::mkfifo(
        &dir.join("a.plugin"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let output = run_guarded(&plugins, &["plugin", "provision", "--dir", utf8_path(&dir)]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("a.plugin` is not a regular file"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn provisioning_reports_a_bomb_and_installs_the_good_plugins_beside_it() {
    let plugins = PluginFixture::new();
    let dir = plugins.root().join("provision");
    fs::create_dir_all(&dir).unwrap();
    let good = plugins.released("good", "1.0.0");
    fs::rename(&good, dir.join("good.plugin")).unwrap();
    let name = format!("metwork_plugin/{}x", "a/".repeat(80_000));
    let bomb = archive_with(&plugins, "bomb.plugin", &[Crafted::LongFile(&name, b"x")]);
    fs::rename(&bomb, dir.join("bomb.plugin")).unwrap();
    let output = run_guarded(&plugins, &["plugin", "provision", "--dir", utf8_path(&dir)]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains("bomb.plugin"), "{message}");
    assert!(message.contains("longer than 4095 bytes"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
    assert!(
        plugins.base.join("good/bin/good_hello").is_file(),
        "{message}"
    );
}

#[test]
fn installed_modes_are_never_group_or_world_writable_nor_special() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let plugins = fixture_with_a_plugin();
    let file = archive_with(
        &plugins,
        "modes.plugin",
        &[
            Crafted::DirMode("metwork_plugin/bin/", 0o3777),
            Crafted::FileMode("metwork_plugin/bin/job", b"#!/bin/sh\necho job\n", 0o4777),
            Crafted::FileMode("metwork_plugin/bin/shared", b"x", 0o2666),
            // No directory entries: `implied/deeper` comes from the path alone.
            Crafted::FileMode("metwork_plugin/implied/deeper/file", b"x", 0o1646),
        ],
    );
    let mut command = plugins.command(&["plugin", "install", utf8_path(&file)]);
    // With umask 0, a mode taken from the archive or the umask would show.
    unsafe {
        command.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    let output = command.output().unwrap();
    assert_success(&output);
    let home = plugins.base.join("evil");
    let mode = |relative: &str| {
        fs::symlink_metadata(home.join(relative))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("bin/job"), 0o755);
    assert_eq!(mode("bin/shared"), 0o644);
    assert_eq!(mode("bin"), 0o755);
    assert_eq!(mode("implied"), 0o755);
    assert_eq!(mode("implied/deeper"), 0o755);
    assert_eq!(mode("implied/deeper/file"), 0o644);
    for (path, value) in snapshot(&home) {
        if !value.starts_with("link") {
            let mode = mode(&path);
            assert_eq!(mode & 0o7022, 0, "`{path}` has mode {mode:o}");
        }
    }
    let output = plugins.run(&["plugin", "wrapper", "evil", "--", "job"]);
    assert_eq!(stdout(&output), "job\n", "{}", stderr(&output));
}

#[test]
fn metadata_beyond_its_limits_is_refused() {
    let plugins = fixture_with_a_plugin();
    let many = "\\n".repeat(80_000);
    let some = "\\n".repeat(20_000);
    let cases = [
        (
            metadata_json(&format!("1.0{many}"), 1),
            "`metwork_plugin/.metadata.json` is larger than 65536 bytes",
        ),
        (
            metadata_json(&format!("1.0{some}"), 1),
            "the version is longer than 128 bytes",
        ),
        (
            metadata_json("1.0\\u001b[2J", 1),
            "the version `1.0\\x1b[2J` holds a `/` or a control character",
        ),
        (
            metadata_json("../../1.0", 1),
            "holds a `/` or a control character",
        ),
        (
            metadata_json("1.0", 1).replace("plugin for tests", &"s".repeat(5000)),
            "the summary is longer than 4096 bytes",
        ),
        (
            metadata_json("1.0", 1).replace("plugin for tests", &"s".repeat(70_000)),
            "is larger than 65536 bytes",
        ),
    ];
    for (metadata, phrase) in cases {
        let file = plugins.work.join("meta.plugin");
        craft_archive(
            &file,
            &[
                Crafted::File("metwork_plugin/.layerapi2_label", b"plugin_evil@generic\n"),
                Crafted::File("metwork_plugin/.metadata.json", metadata.as_bytes()),
                Crafted::File("metwork_plugin/.files.json", b"[]"),
            ],
        );
        assert_refused(&plugins, &file, phrase);
    }
}

#[test]
fn an_installed_plugin_with_huge_metadata_is_listed_as_an_error() {
    let plugins = fixture_with_a_plugin();
    let newlines = "\\n".repeat(80_000);
    let metadata = plugins.base.join("good/.metadata.json");
    fs::write(&metadata, metadata_json(&format!("1.0{newlines}"), 1)).unwrap();
    for args in [&["plugin", "list"][..], &["plugin", "list", "--raw"][..]] {
        let output = run_guarded(&plugins, args);
        assert_success(&output);
        assert!(stdout(&output).lines().count() <= 5, "{}", stdout(&output));
        assert!(stdout(&output).contains("error"), "{}", stdout(&output));
        assert!(
            stderr(&output).contains("it is larger than 65536 bytes"),
            "{}",
            stderr(&output)
        );
    }
    // A fifo in place of the metadata does not block the listing either.
    fs::remove_file(&metadata).unwrap();
    nix::unistd::mkfifo(&metadata, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let output = run_guarded(&plugins, &["plugin", "list", "--raw"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("it is a fifo"),
        "{}",
        stderr(&output)
    );
}
