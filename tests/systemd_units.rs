//! The units of dist/systemd/ run the way the service manager runs them: their
//! `Environment=` lines with the instance name put in, `ExecStartPre=` (provisioning
//! from `SYSCONF/<module>/plugins/`) and then `ExecStart=` (the supervisor) with the
//! mfenv under test in place of /usr/bin/mfenv, from the minimal environment systemd
//! gives a service; then stopped with `KillSignal=` sent to the main process only
//! (`KillMode=mixed`). `tests/package.rs` checks the same units with
//! `systemd-analyze verify`.

mod common;
mod plugin_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use plugin_support::*;
use serde_json::Value;

/// The `[Service]` settings of a unit file that this test runs: `KEY` -> values, in order.
fn service_settings(unit: &Path) -> BTreeMap<String, Vec<String>> {
    let text = fs::read_to_string(unit).unwrap_or_else(|e| panic!("read {unit:?}: {e}"));
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[Service]" {
            let (key, value) = line.split_once('=').expect("KEY=value");
            settings
                .entry(key.to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    settings
}

/// A unit's command line with the binary under test: no quoting is used in the units.
fn command_line(line: &str, instance: &str, home: &Path) -> (bool, Vec<String>) {
    let (ignore_failure, line) = match line.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    assert!(
        !line.contains(['"', '\'', '$', '%']),
        "unexpected syntax: {line}"
    );
    let mut words: Vec<String> = specifiers(line, instance, home)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(words[0], "/usr/bin/mfenv", "{line}");
    words[0] = utf8_path(&mfenv_binary()).to_owned();
    (ignore_failure, words)
}

fn specifiers(text: &str, instance: &str, home: &Path) -> String {
    text.replace("%i", instance).replace("%h", utf8_path(home))
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// Kills the supervisor if the test fails before stopping it.
struct Supervisor(Option<Child>);

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const WORKER: &str = r#"#!/bin/sh
trap 'echo "worker got TERM"; exit 0' TERM
echo "worker started"
while :; do sleep 0.1; done
"#;

/// Runs `unit` as instance `mfdata`: a plugin file in SYSCONF/mfdata/plugins/ is
/// provisioned, its daemon started by the supervisor, and both stop on SIGTERM.
/// `runtime_override` replaces `MFMODULE_RUNTIME_HOME` as a drop-in would (the system
/// unit's /var/lib/mfenv/MODULE is not the test's to write).
fn provision_then_supervise(unit: &str, runtime_override: bool) {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let sysconf = root.path().join("sysconf");
    fs::create_dir_all(&home).unwrap();
    let settings = service_settings(&Path::new(env!("CARGO_MANIFEST_DIR")).join(unit));
    let one = |key: &str| -> String {
        let values = &settings[key];
        assert_eq!(values.len(), 1, "{key} in {unit}");
        values[0].clone()
    };
    assert_eq!(one("KillMode"), "mixed");
    assert_eq!(one("KillSignal"), "SIGTERM");
    assert_eq!(one("Restart"), "on-failure");

    // What systemd gives a service, then the unit's own variables.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
    env.insert("HOME".into(), utf8_path(&home).into());
    env.insert("LANG".into(), "C.UTF-8".into());
    for assignment in &settings["Environment"] {
        let (key, value) = assignment.split_once('=').expect("Environment=KEY=value");
        env.insert(key.into(), specifiers(value, "mfdata", &home));
    }
    assert_eq!(env["MFMODULE"], "mfdata");
    assert_eq!(env["MFMODULE_LOWERCASE"], "mfdata");
    if runtime_override {
        env.insert(
            "MFMODULE_RUNTIME_HOME".into(),
            utf8_path(&root.path().join("runtime")).into(),
        );
    }
    let runtime = PathBuf::from(&env["MFMODULE_RUNTIME_HOME"]);
    fs::create_dir_all(&runtime).unwrap();
    env.insert("MFENV_SYSCONF_DIR".into(), utf8_path(&sysconf).into());
    let command = |words: &[String]| {
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .env_clear()
            .envs(&env)
            .current_dir("/")
            .stdin(Stdio::null());
        command
    };
    let mfenv = |args: &[&str]| {
        let mut words = vec![utf8_path(&mfenv_binary()).to_owned()];
        words.extend(args.iter().map(|arg| arg.to_string()));
        command(&words).output().unwrap()
    };

    // A released plugin with an extra daemon, dropped where the admin provisions it.
    let source = root.path().join("src/foo");
    write_plugin_tree(&source, "foo", "1.0.0");
    fs::write(source.join(".layerapi2_label"), "plugin_foo@mfdata\n").unwrap();
    let mut config = fs::read_to_string(source.join("config.ini")).unwrap();
    config.push_str("\n[extra_daemon_work]\n_cmd_and_args = worker.sh\nnumprocesses = 1\n");
    fs::write(source.join("config.ini"), config).unwrap();
    write_executable(&source.join("bin/worker.sh"), WORKER);
    let plugins = sysconf.join("mfdata/plugins");
    fs::create_dir_all(&plugins).unwrap();
    let released = command(&[
        utf8_path(&mfenv_binary()).to_owned(),
        "plugin".into(),
        "release".into(),
        utf8_path(&source).into(),
    ])
    .current_dir(&plugins)
    .output()
    .unwrap();
    assert_success(&released);

    for line in &settings["ExecStartPre"] {
        let (_, words) = command_line(line, "mfdata", &home);
        let output = command(&words).output().unwrap();
        assert_success(&output);
    }
    let list = mfenv(&["plugin", "list", "--raw"]);
    assert_success(&list);
    assert!(
        stdout(&list).contains("foo"),
        "provisioning did not install foo: {}",
        stdout(&list)
    );
    let layers = mfenv(&["layers", "--raw"]);
    assert!(
        stdout(&layers).contains("plugin_foo@mfdata "),
        "{}",
        stdout(&layers)
    );

    let (_, words) = command_line(&one("ExecStart"), "mfdata", &home);
    let mut supervisor = Supervisor(Some(
        command(&words)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let mut worker = 0;
    wait_for("the daemon of foo to run", || {
        let status = mfenv(&["daemons", "status", "--json"]);
        let Ok(status) = serde_json::from_slice::<Value>(&status.stdout) else {
            return false;
        };
        let pid = status["daemons"][0]["workers"][0]["pid"].as_u64();
        match (pid, &status["daemons"][0]["workers"][0]["state"]) {
            (Some(pid), state) if state == "running" => {
                worker = pid as u32;
                true
            }
            _ => false,
        }
    });
    let log = runtime.join("log/extra_foo_work.log");
    wait_for("the worker to start", || {
        fs::read_to_string(&log).is_ok_and(|text| text.contains("worker started"))
    });

    // ExecReload.
    let (_, words) = command_line(&one("ExecReload"), "mfdata", &home);
    assert_success(&command(&words).output().unwrap());

    // KillMode=mixed: SIGTERM to the main process alone.
    let child = supervisor.0.as_mut().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let mut exit = None;
    wait_for("the supervisor to exit", || {
        exit = child.try_wait().unwrap();
        exit.is_some()
    });
    assert_eq!(
        exit.unwrap().code(),
        Some(0),
        "a stop must not count as a failure (Restart=on-failure)"
    );
    supervisor.0 = None;
    assert!(!alive(worker), "the daemon outlived the supervisor");
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .contains("worker got TERM"),
        "the daemon was not stopped gracefully"
    );
}

#[test]
fn the_system_template_provisions_then_supervises() {
    provision_then_supervise("dist/systemd/mfenv@.service", true);
}

#[test]
fn the_user_template_provisions_then_supervises() {
    provision_then_supervise("dist/systemd/user/mfenv@.service", false);
}
