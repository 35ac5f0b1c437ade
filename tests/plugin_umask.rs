//! What `plugin install` creates, under umask 0: the plugins base dir and the
//! directories above it (`0755`), the staging directory and its journal (private), the
//! label written by `--new-name`, `conf_monitor`, the postinstall log's directory. None
//! is ever writable by the group or others.

mod common;
mod plugin_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::*;
use plugin_support::*;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn an_install_under_umask_0_creates_nothing_writable_by_others() {
    let plugins = PluginFixture::new();
    let home = plugins.source("alpha", "1.0.0");
    let modes = plugins.root().join("staging-modes.txt");
    // The postinstall runs while the staging directory and its journal exist.
    write_executable(
        &home.join("postinstall"),
        &format!(
            "#!/bin/sh\nstat -c '%a %n' '{base}'/.mfenv-tmp-* '{base}'/.mfenv-tmp-*/journal.json > '{out}'\n",
            base = plugins.base.display(),
            out = modes.display()
        ),
    );
    let file = plugins.release(&home);
    assert!(!plugins.runtime.join("var").exists());

    let mut command =
        plugins.command(&["plugin", "install", "--new-name", "beta", utf8_path(&file)]);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    let output = command.output().unwrap();
    assert_success(&output);

    let installed = plugins.base.join("beta");
    assert_eq!(
        fs::read_to_string(installed.join(".layerapi2_label")).unwrap(),
        "plugin_beta@generic\n"
    );
    assert_eq!(mode(&installed.join(".layerapi2_label")), 0o644);
    for (path, value) in snapshot(&installed) {
        if !value.starts_with("link") {
            let mode = mode(&installed.join(&path));
            assert_eq!(mode & 0o022, 0, "`{path}` has mode {mode:o}");
        }
    }
    assert_eq!(mode(&plugins.base), 0o755);
    assert_eq!(mode(&plugins.runtime.join("var")), 0o755);
    assert_eq!(mode(&plugins.runtime.join("var/conf_monitor")), 0o644);
    assert_eq!(mode(&plugins.runtime.join("log")), 0o700);

    let staging = fs::read_to_string(&modes).unwrap();
    let lines: Vec<&str> = staging.lines().collect();
    assert_eq!(lines.len(), 2, "{staging}");
    assert!(lines[0].starts_with("700 "), "{staging}");
    assert!(
        lines[1].starts_with("600 ") && lines[1].ends_with("/journal.json"),
        "{staging}"
    );
}
