//! Layer files and plugin configuration files that are not regular files (a FIFO, a
//! device) are refused at once, naming the file: `mfenv layers`, `load`, `plugin config`,
//! `plugin check` and `cron install` never wait on them. Every command runs under a
//! time limit, so a regression fails instead of hanging.

mod common;
mod plugin_support;

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use plugin_support::*;

const LIMIT: Duration = Duration::from_secs(60);

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

/// Holds `fifo` open for reading and writing (no data): a reader's non-blocking read
/// then says "would block" instead of "end of file".
fn hold_open(fifo: &Path) -> fs::File {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo)
        .expect("open the fifo")
}

#[test]
fn a_fifo_label_makes_its_directory_an_unusable_layer_named_in_a_warning() {
    let fx = Fixture::new();
    fx.layer(LayerSpec::new("good", "good"));
    let fifo_home = fx.entries[0].join("fifo");
    fs::create_dir_all(&fifo_home).unwrap();
    let label = fifo_home.join(".layerapi2_label");
    mkfifo(&label);
    for held in [false, true] {
        let _writer = held.then(|| hold_open(&label));
        let output = output_within(fx.command(&["layers"]), LIMIT);
        assert_success(&output);
        assert!(stdout(&output).contains("- good ["), "{}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.contains(&format!(
                "`{}` is a fifo, not a regular file",
                label.display()
            )),
            "held open: {held}: {message}"
        );
        let output = output_within(fx.command(&["load", "good"]), LIMIT);
        assert_success(&output);
    }
}

#[test]
fn a_fifo_or_a_device_as_a_layer_file_fails_the_load_naming_it() {
    let fx = Fixture::new();
    for name in [
        ".layerapi2_dependencies",
        ".layerapi2_conflicts",
        ".layerapi2_extra_env",
    ] {
        for kind in ["fifo", "fifo held open", "device"] {
            let home = fx.layer(LayerSpec::new("l", "l"));
            let file = home.join(name);
            let _ = fs::remove_file(&file);
            let _writer = match kind {
                "device" => {
                    std::os::unix::fs::symlink("/dev/zero", &file).unwrap();
                    None
                }
                _ => {
                    mkfifo(&file);
                    (kind == "fifo held open").then(|| hold_open(&file))
                }
            };
            let output = output_within(fx.command(&["load", "l"]), LIMIT);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{name} {kind}: {}",
                stderr(&output)
            );
            assert_eq!(stdout(&output), "", "{name} {kind}");
            let what = if kind == "device" {
                "a device"
            } else {
                "a fifo"
            };
            let message = stderr(&output);
            assert!(
                message.contains(&format!(
                    "`{}` is {what}, not a regular file",
                    file.display()
                )),
                "{name} {kind}: {message}"
            );
            fs::remove_file(&file).unwrap();
        }
    }
    // An empty regular file is still an empty file.
    let home = fx.layer(LayerSpec::new("l", "l").extra_env(""));
    assert!(home.join(".layerapi2_extra_env").is_file());
    assert_success(&output_within(fx.command(&["load", "l"]), LIMIT));
}

#[test]
fn a_fifo_configuration_of_a_plugin_is_refused_naming_it() {
    let plugins = PluginFixture::new();
    let file = plugins.released("alpha", "1.0.0");
    plugins.ok(&["plugin", "install", utf8_path(&file)]);

    // The OP override.
    let override_path = plugins.override_path("alpha");
    let _ = fs::remove_file(&override_path);
    mkfifo(&override_path);
    let output = output_within(plugins.command(&["plugin", "config", "alpha"]), LIMIT);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&override_path.display().to_string()) && message.contains("a fifo"),
        "{message}"
    );
    fs::remove_file(&override_path).unwrap();

    // The plugin's own config.ini, installed, and in a source tree.
    let config = plugins.base.join("alpha/config.ini");
    fs::remove_file(&config).unwrap();
    mkfifo(&config);
    let output = output_within(plugins.command(&["plugin", "config", "alpha"]), LIMIT);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("a fifo"), "{}", stderr(&output));
    let home = plugins.source("beta", "1.0.0");
    fs::remove_file(home.join("config.ini")).unwrap();
    mkfifo(&home.join("config.ini"));
    let output = output_within(
        plugins.command(&["plugin", "check", utf8_path(&home)]),
        LIMIT,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("a fifo"), "{}", stderr(&output));
}

#[test]
fn a_fifo_crontab_of_a_plugin_is_skipped_naming_it() {
    let plugins = PluginFixture::new();
    let fake_bin = plugins.root().join("fake-bin");
    fs::create_dir_all(&fake_bin).unwrap();
    let crontab_file = plugins.root().join("crontab.txt");
    write_executable(
        &fake_bin.join("crontab"),
        &format!(
            "#!/bin/sh\nF='{}'\nif [ \"$1\" = -l ]; then\n  [ -f \"$F\" ] && exec cat \"$F\"\n  echo 'no crontab for test' >&2; exit 1\nfi\ncat -- \"${{1:--}}\" > \"$F\"\n",
            crontab_file.display()
        ),
    );
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display());
    let file = plugins.released("alpha", "1.0.0");
    assert_success(&plugins.run_with(&["plugin", "install", utf8_path(&file)], &[("PATH", &path)]));
    let crontab = plugins.base.join("alpha/crontab");
    mkfifo(&crontab);
    let mut command = plugins.command(&["cron", "install"]);
    command.env("PATH", &path);
    let output = output_within(command, LIMIT);
    let message = stderr(&output);
    assert!(
        message.contains(&crontab.display().to_string()) && message.contains("a fifo"),
        "{message}"
    );
}
