//! What mfenv writes for itself is for its owner only, whatever the umask: OP override
//! files, the plugin-management lock, temporary directories (cronwrap's and the
//! daemons' files are checked in their own tests).
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
