//! `mfenv cron install|uninstall` with the real `crontab` command (Debian package
//! `cron`): plugin blocks rendered from the plugin environment, merged into the user's
//! crontab without touching other lines, and removed exactly.
//!
//! These tests change the crontab of the user running them: each one saves it first
//! and puts it back afterwards, and they run one at a time.

mod common;
mod plugin_support;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::*;
use plugin_support::*;

/// One test at a time: they share the user's crontab.
static CRONTAB: Mutex<()> = Mutex::new(());

/// The `crontab` program; installed with apt-get when missing, else the test fails.
fn crontab_program() -> PathBuf {
    if !has_program("crontab") {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "cron"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    require_program("crontab")
}

fn read_crontab() -> String {
    let output = Command::new(crontab_program())
        .arg("-l")
        .output()
        .expect("run crontab -l");
    if output.status.success() {
        String::from_utf8(output.stdout).expect("utf-8 crontab")
    } else {
        String::new()
    }
}

fn write_crontab(text: &str) {
    let program = crontab_program();
    if text.is_empty() {
        let _ = Command::new(&program).arg("-r").output();
        return;
    }
    let mut child = Command::new(program)
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run crontab -");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "crontab - failed");
}

/// Holds the lock and puts the user's crontab back when dropped.
struct SavedCrontab {
    original: String,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl SavedCrontab {
    fn new() -> Self {
        let lock = CRONTAB
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        SavedCrontab {
            original: read_crontab(),
            _lock: lock,
        }
    }
}

impl Drop for SavedCrontab {
    fn drop(&mut self) {
        write_crontab(&self.original);
    }
}

const FOREIGN: &str = "MAILTO=\"\"\n# a comment of the user\n0 1 * * * /bin/true foreign job\n";

/// Installs plugin `name` whose `crontab` file is `crontab`.
fn install_with_crontab(fixture: &PluginFixture, name: &str, crontab: &str) -> PathBuf {
    let source = fixture.source(name, "1.0.0");
    fs::write(source.join("crontab"), crontab).unwrap();
    let file = fixture.release(&source);
    fixture.ok(&["plugin", "install", utf8_path(&file)]);
    fixture.base.join(name)
}

#[test]
fn cron_install_adds_rendered_plugin_blocks_and_uninstall_removes_exactly_them() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    let home = install_with_crontab(
        &fixture,
        "my-plug",
        "# comment dropped\n\n*/5 * * * * {{ GENERIC_CURRENT_PLUGIN_DIR }}/bin/job {{GENERIC_CURRENT_PLUGIN_CUSTOM_GREETING}}\n",
    );
    install_with_crontab(
        &fixture,
        "other",
        "0 2 * * * {{ MFMODULE_RUNTIME_HOME }}/x\n",
    );
    write_crontab(FOREIGN);

    let output = fixture.run(&["cron", "install"]);
    assert_success(&output);
    let home = utf8_path(&home);
    let runtime = utf8_path(&fixture.runtime);
    let expected = format!(
        "{FOREIGN}##### BEGINNING OF METWORK GENERIC PLUGIN my-plug CRONTAB #####\n\
         */5 * * * * {home}/bin/job hello\n\
         ##### END OF METWORK GENERIC PLUGIN my-plug CRONTAB #####\n\
         ##### BEGINNING OF METWORK GENERIC PLUGIN other CRONTAB #####\n\
         0 2 * * * {runtime}/x\n\
         ##### END OF METWORK GENERIC PLUGIN other CRONTAB #####\n"
    );
    assert_eq!(read_crontab(), expected);
    // Installing again changes nothing (the block is replaced, not added twice).
    assert_success(&fixture.run(&["cron", "install", "my-plug"]));
    assert_eq!(
        read_crontab(),
        format!(
            "{FOREIGN}##### BEGINNING OF METWORK GENERIC PLUGIN other CRONTAB #####\n\
             0 2 * * * {runtime}/x\n\
             ##### END OF METWORK GENERIC PLUGIN other CRONTAB #####\n\
             ##### BEGINNING OF METWORK GENERIC PLUGIN my-plug CRONTAB #####\n\
             */5 * * * * {home}/bin/job hello\n\
             ##### END OF METWORK GENERIC PLUGIN my-plug CRONTAB #####\n"
        )
    );
    assert_success(&fixture.run(&["cron", "uninstall", "other"]));
    assert!(!read_crontab().contains("PLUGIN other"));
    assert!(read_crontab().contains("PLUGIN my-plug"));
    assert_success(&fixture.run(&["cron", "uninstall"]));
    assert_eq!(read_crontab(), FOREIGN);
}

#[test]
fn an_undefined_variable_skips_that_plugin_only() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    install_with_crontab(&fixture, "broken", "* * * * * {{ NO_SUCH_VARIABLE }}\n");
    install_with_crontab(&fixture, "good", "* * * * * echo good\n");
    write_crontab(FOREIGN);
    let output = fixture.run(&["cron", "install"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("plugin `broken`: undefined variable `NO_SUCH_VARIABLE`"),
        "{message}"
    );
    assert!(
        message.contains("the crontab of `broken` is not installed"),
        "{message}"
    );
    let crontab = read_crontab();
    assert!(crontab.starts_with(FOREIGN));
    assert!(crontab.contains("* * * * * echo good\n"));
    assert!(!crontab.contains("PLUGIN broken"));
    assert_success(&fixture.run(&["cron", "uninstall"]));
    assert_eq!(read_crontab(), FOREIGN);
}

#[test]
fn without_a_crontab_command_cron_install_warns() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    install_with_crontab(&fixture, "foo", "* * * * * true\n");
    let output = fixture.run_with(&["cron", "install"], &[("PATH", "/nonexistent")]);
    assert_success(&output);
    assert!(stderr(&output).contains("no `crontab` command"));
}

#[test]
fn plugin_install_and_uninstall_update_the_crontab_themselves() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    write_crontab(FOREIGN);
    install_with_crontab(
        &fixture,
        "my-plug",
        "0 3 * * * {{ GENERIC_CURRENT_PLUGIN_NAME }}\n",
    );
    assert_eq!(
        read_crontab(),
        format!(
            "{FOREIGN}##### BEGINNING OF METWORK GENERIC PLUGIN my-plug CRONTAB #####\n\
             0 3 * * * my-plug\n\
             ##### END OF METWORK GENERIC PLUGIN my-plug CRONTAB #####\n"
        )
    );
    fixture.ok(&["plugin", "uninstall", "my-plug"]);
    assert_eq!(read_crontab(), FOREIGN);
}

#[test]
fn crontabs_see_the_plugin_layer_s_own_extra_env() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    let source = fixture.source("tool", "1.0.0");
    fs::write(
        source.join(".layerapi2_extra_env"),
        "TOOL_JOB_ARGS=--from-layer\n",
    )
    .unwrap();
    fs::write(
        source.join("crontab"),
        "* * * * * tool {{ TOOL_JOB_ARGS }} {{ GENERIC_CURRENT_PLUGIN_NAME }}\n",
    )
    .unwrap();
    let file = fixture.release(&source);
    write_crontab(FOREIGN);
    fixture.ok(&["plugin", "install", utf8_path(&file)]);
    let crontab = read_crontab();
    assert!(
        crontab.contains("* * * * * tool --from-layer tool\n"),
        "{crontab}"
    );
    assert_success(&fixture.run(&["cron", "uninstall"]));
    assert_eq!(read_crontab(), FOREIGN);
}
