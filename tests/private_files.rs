//! What mfenv writes for itself is for its owner only, whatever the umask: OP override
//! files, the plugin-management lock, temporary directories (cronwrap's and the
//! daemons' files are checked in their own tests). Out-of-range numbers in the
//! environment are clamped or refused, never a panic.
mod common;
mod plugin_support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::*;
use plugin_support::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn overrides_lock_and_temporary_directories_are_private_whatever_the_umask() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    let mut command = plugins.command(&["plugin", "install", utf8_path(&file)]);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
            Ok(())
        });
    }
    assert_success(&command.output().unwrap());
    let override_path = plugins.override_path("foo");
    assert_eq!(mode(&override_path), 0o600);
    assert_eq!(mode(override_path.parent().unwrap()), 0o700);
    assert_eq!(mode(&plugins.runtime.join("config")), 0o700);
    assert_eq!(
        mode(&plugins.runtime.join("tmp/plugin_management_lock")),
        0o600
    );
    assert_eq!(mode(&plugins.runtime.join("tmp")), 0o700);
    // The plugin's TMPDIR, made when its environment is computed.
    let mut command = plugins.command(&[
        "plugin",
        "wrapper",
        "foo",
        "--",
        "sh",
        "-c",
        "printf %s \"$TMPDIR\"",
    ]);
    unsafe {
        command.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
            Ok(())
        });
    }
    let output = command.output().unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), utf8_path(&plugins.runtime.join("tmp/foo")));
    assert_eq!(mode(&plugins.runtime.join("tmp/foo")), 0o700);
    // The installed plugin itself stays readable: it is not private.
    assert_eq!(mode(&plugins.base.join("foo")) & 0o055, 0o055);
}

#[test]
fn a_huge_lock_timeout_is_clamped_and_a_negative_one_refused() {
    let plugins = PluginFixture::new();
    let file = plugins.released("foo", "1.0.0");
    let output = plugins.run_with(
        &["plugin", "install", utf8_path(&file)],
        &[("MFENV_LOCK_TIMEOUT", "1e20")],
    );
    assert_success(&output);
    let output = plugins.run_with(
        &["plugin", "uninstall", "foo"],
        &[("MFENV_LOCK_TIMEOUT", "-3")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("bad `MFENV_LOCK_TIMEOUT` value `-3`"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn an_archive_member_with_a_huge_mtime_installs_without_a_panic() {
    use std::io::Write;
    let plugins = PluginFixture::new();
    let path = plugins.work.join("far.plugin");
    let encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    let mut builder = tar::Builder::new(encoder);
    let mut members = vec![("metwork_plugin/".to_owned(), Vec::new())];
    members.extend(valid_members("far"));
    for (name, data) in &members {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        // Far beyond what the clock can hold (a base-256 number in the header).
        header.set_mtime(u64::MAX);
        header.set_path(name).unwrap();
        header.set_cksum();
        builder.append(&header, data.as_slice()).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
    let output = plugins.run(&["plugin", "install", utf8_path(&path)]);
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    assert_success(&output);
}
