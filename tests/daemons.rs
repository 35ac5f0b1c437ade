//! `mfenv daemons …` with real processes: a supervisor runs (foreground or detached)
//! over dev-linked and installed plugins whose `[extra_daemon_*]` sections start shell
//! scripts; the tests look at the processes themselves (`/proc/PID/limits`, `cwd`,
//! process groups), the log files and `status --json`.
//!
//! Nothing here asserts how long something took: waits poll for a state with a generous
//! deadline, and backoff is checked through the delays the supervisor announces.

mod common;
mod plugin_support;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use plugin_support::*;
use serde_json::Value;

fn send_signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal).expect("send a signal");
}

/// Polls `condition` every 50 ms for up to 20 s.
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

/// Waits at most `timeout` for `child` to exit.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// True while `pid` runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// The process group of `pid`.
fn process_group(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    rest[2].parse().unwrap()
}

/// The pids of the live processes in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command: state ppid pgrp ...
        let rest: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if rest.get(2).and_then(|pgrp| pgrp.parse::<u32>().ok()) == Some(pgid) && alive(pid) {
            members.push(pid);
        }
    }
    members
}

struct Daemons {
    fx: PluginFixture,
    supervisor: Option<Child>,
    supervisor_log: PathBuf,
}

impl Daemons {
    fn new() -> Daemons {
        let fx = PluginFixture::new();
        let supervisor_log = fx.root().join("supervisor.log");
        Daemons {
            fx,
            supervisor: None,
            supervisor_log,
        }
    }

    /// A dev-linked plugin `name` with `sections` appended to its config.ini and
    /// executable `scripts` in its bin/.
    fn plugin(&self, name: &str, sections: &str, scripts: &[(&str, &str)]) -> PathBuf {
        let home = self.fx.source(name, "1.0.0");
        let mut config = fs::read_to_string(home.join("config.ini")).unwrap();
        config.push('\n');
        config.push_str(sections);
        fs::write(home.join("config.ini"), config).unwrap();
        for (script, text) in scripts {
            write_executable(&home.join("bin").join(script), text);
        }
        self.fx.ok(&["plugin", "develop", utf8_path(&home)]);
        home
    }

    /// Starts `mfenv daemons run` in the foreground (its stderr in supervisor.log).
    fn run(&mut self, extra_env: &[(&str, &str)]) {
        let log = fs::File::create(&self.supervisor_log).unwrap();
        let mut command = self.fx.command(&["daemons", "run"]);
        command.envs(extra_env.iter().copied());
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.supervisor = Some(command.spawn().expect("start the supervisor"));
        wait_for("the supervisor to answer", || {
            self.fx.run(&["daemons", "status"]).status.code() == Some(0)
        });
    }

    fn status(&self) -> Value {
        let output = self.fx.run(&["daemons", "status", "--json"]);
        serde_json::from_slice(&output.stdout).expect("status --json")
    }

    fn daemon(&self, plugin: &str, name: &str) -> Option<Value> {
        self.status()["daemons"]
            .as_array()?
            .iter()
            .find(|daemon| daemon["plugin"] == plugin && daemon["name"] == name)
            .cloned()
    }

    /// The pids of the running workers of `plugin.name`, in worker order.
    fn pids(&self, plugin: &str, name: &str) -> Vec<u32> {
        self.daemon(plugin, name)
            .and_then(|daemon| {
                daemon["workers"].as_array().map(|workers| {
                    workers
                        .iter()
                        .filter(|worker| worker["state"] == "running")
                        .filter_map(|worker| worker["pid"].as_u64())
                        .map(|pid| pid as u32)
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Waits until `count` workers of `plugin.name` run; returns their pids.
    fn running(&self, plugin: &str, name: &str, count: usize) -> Vec<u32> {
        let mut pids = Vec::new();
        wait_for(
            &format!("{count} running `{plugin}.{name}` workers"),
            || {
                pids = self.pids(plugin, name);
                pids.len() == count
            },
        );
        pids
    }

    fn supervisor_messages(&self) -> String {
        let mut text = fs::read_to_string(&self.supervisor_log).unwrap_or_default();
        text.push_str(
            &fs::read_to_string(self.fx.runtime.join("log/daemons.log")).unwrap_or_default(),
        );
        text
    }

    fn log(&self, name: &str) -> String {
        fs::read_to_string(self.fx.runtime.join("log").join(name)).unwrap_or_default()
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Ok(mut stop) = self
            .fx
            .command(&["daemons", "stop"])
            .stderr(Stdio::null())
            .spawn()
            && wait_child(&mut stop, Duration::from_secs(60)).is_none()
        {
            let _ = stop.kill();
            let _ = stop.wait();
        }
        if let Some(mut child) = self.supervisor.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A daemon that loops forever, writing what it sees to `$TMPDIR/seen-<pid>` first; it
/// says `looper NAME started` once it handles SIGTERM.
const LOOPER: &str = r#"#!/bin/sh
trap 'echo "looper $1 got TERM"; exit 0' TERM
{
  echo "args=$*"
  echo "cwd=$(pwd)"
  echo "name=$GENERIC_CURRENT_PLUGIN_NAME"
  echo "debug=$GENERIC_CURRENT_APP_DEBUG"
} > "$TMPDIR/seen-$$"
echo "looper $1 started"
echo "looper $1 complains" >&2
while :; do sleep 0.1; done
"#;

#[test]
fn workers_run_with_their_count_limits_environment_and_directory() {
    let mut d = Daemons::new();
    let home = d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh {extra_name} '{plugin_name} x' {plugin_dir}\n\
         numprocesses = 3\nrlimit_nofile = 321\nrlimit_fsize = 1048576\nrlimit_stack = 4194304\n\
         rlimit_as = 4294967296\n",
        &[("looper.sh", LOOPER)],
    );
    d.run(&[]);
    let pids = d.running("foo", "loop", 3);
    let base_home = d.fx.base.join("foo");
    for pid in &pids {
        let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        let limit = |name: &str| -> Vec<String> {
            let line = limits
                .lines()
                .find(|line| line.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {limits}"));
            line[name.len()..]
                .split_whitespace()
                .take(2)
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(limit("Max open files"), ["321", "321"]);
        assert_eq!(limit("Max file size"), ["1048576", "1048576"]);
        assert_eq!(limit("Max stack size"), ["4194304", "4194304"]);
        assert_eq!(limit("Max address space"), ["4294967296", "4294967296"]);
        // Working directory: the plugin home (a dev link resolves to the source tree).
        let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        assert_eq!(cwd, home.canonicalize().unwrap());
        // Each worker leads its own process group.
        assert_eq!(process_group(*pid), *pid);
    }
    let tmp = d.fx.runtime.join("tmp/foo");
    wait_for("every worker to write what it saw", || {
        pids.iter()
            .all(|pid| tmp.join(format!("seen-{pid}")).exists())
    });
    let seen = fs::read_to_string(tmp.join(format!("seen-{}", pids[0]))).unwrap();
    assert!(
        seen.contains(&format!("args=loop foo x {}\n", base_home.display())),
        "{seen}"
    );
    assert!(
        seen.contains("name=foo\n") && seen.contains("debug=0\n"),
        "{seen}"
    );
    wait_for("the log", || {
        d.log("extra_foo_loop.log").matches("complains").count() == 3
    });
    assert_eq!(d.log("extra_foo_loop.log").matches("started").count(), 3);
}

#[test]
fn a_killed_daemon_comes_back() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh one\nnumprocesses = 2\n",
        &[("looper.sh", LOOPER)],
    );
    d.run(&[]);
    let pids = d.running("foo", "loop", 2);
    send_signal(pids[0], Signal::SIGKILL);
    let mut again = Vec::new();
    wait_for("the killed worker to come back", || {
        again = d.pids("foo", "loop");
        again.len() == 2 && !again.contains(&pids[0])
    });
    assert_eq!(again[1], pids[1], "the other worker was left alone");
    let daemon = d.daemon("foo", "loop").unwrap();
    let first = &daemon["workers"][0];
    assert_eq!(first["restarts"], 1);
    assert_eq!(first["last_exit"], "killed by SIGKILL");
    assert_eq!(daemon["workers"][1]["restarts"], 0);
}

#[test]
fn stopping_is_graceful_then_forced() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_polite]\n_cmd_and_args = looper.sh polite\nnumprocesses = 1\n\
         graceful_timeout = 30\n\n\
         [extra_daemon_stubborn]\n_cmd_and_args = stubborn.sh\nnumprocesses = 1\ngraceful_timeout = 1\n",
        &[
            ("looper.sh", LOOPER),
            (
                "stubborn.sh",
                "#!/bin/sh\ntrap 'echo stubborn ignores TERM' TERM\necho stubborn started\n\
                 while :; do sleep 0.1; done\n",
            ),
        ],
    );
    d.run(&[]);
    let polite = d.running("foo", "polite", 1)[0];
    let stubborn = d.running("foo", "stubborn", 1)[0];
    wait_for("both to handle SIGTERM", || {
        d.log("extra_foo_polite.log")
            .contains("looper polite started")
            && d.log("extra_foo_stubborn.log").contains("stubborn started")
    });
    let output = d.fx.run(&["daemons", "stop", "foo"]);
    assert_success(&output);
    assert!(stderr(&output).contains("the daemons of `foo` are stopped"));
    // The command returns once both are gone.
    assert!(!alive(polite) && !alive(stubborn));
    let daemon = |name: &str| d.daemon("foo", name).unwrap()["workers"][0].clone();
    assert_eq!(daemon("polite")["state"], "stopped");
    assert_eq!(daemon("polite")["last_exit"], "exit status 0");
    assert_eq!(daemon("stubborn")["last_exit"], "killed by SIGKILL");
    assert!(
        d.log("extra_foo_polite.log")
            .contains("looper polite got TERM")
    );
    assert!(
        d.log("extra_foo_stubborn.log")
            .contains("stubborn ignores TERM")
    );
    assert!(
        d.supervisor_messages()
            .contains("still running 1 s after SIGTERM: sending SIGKILL"),
        "{}",
        d.supervisor_messages()
    );
    // Stopped daemons stay stopped, even across rereads of the plugins.
    assert_success(&d.fx.run(&["daemons", "reload"]));
    assert!(d.pids("foo", "polite").is_empty());
    let output = d.fx.run(&["daemons", "start", "foo"]);
    assert_success(&output);
    d.running("foo", "polite", 1);
    d.running("foo", "stubborn", 1);
}

#[test]
fn a_stopping_supervisor_refuses_to_start_anything() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_stubborn]\n_cmd_and_args = stubborn.sh\nnumprocesses = 1\ngraceful_timeout = 3\n",
        &[(
            "stubborn.sh",
            "#!/bin/sh\ntrap 'echo stubborn ignores TERM' TERM\necho stubborn started\n\
             while :; do sleep 0.1; done\n",
        )],
    );
    d.run(&[]);
    let pid = d.running("foo", "stubborn", 1)[0];
    wait_for("the daemon to ignore SIGTERM", || {
        d.log("extra_foo_stubborn.log").contains("stubborn started")
    });
    let mut stop = d.fx.command(&["daemons", "stop"]).spawn().unwrap();
    wait_for("the stop to begin", || {
        d.log("extra_foo_stubborn.log")
            .contains("stubborn ignores TERM")
    });
    for args in [
        &["daemons", "reload"][..],
        &["daemons", "restart", "foo"],
        &["daemons", "start", "foo"],
    ] {
        let output = d.fx.run(args);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains("the daemon supervisor is stopping"),
            "{}",
            stderr(&output)
        );
    }
    let exit = wait_child(&mut stop, Duration::from_secs(60)).expect("stop returns");
    assert!(exit.success());
    assert!(!alive(pid));
    let exit = wait_child(d.supervisor.as_mut().unwrap(), Duration::from_secs(60))
        .expect("the supervisor exits");
    assert!(exit.success());
}

#[test]
fn a_crash_loop_backs_off() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_crash]\n_cmd_and_args = crash.sh\nnumprocesses = 1\n",
        &[("crash.sh", "#!/bin/sh\necho crashing >&2\nexit 3\n")],
    );
    d.run(&[]);
    let started = Instant::now();
    wait_for("three restarts", || {
        d.daemon("foo", "crash")
            .is_some_and(|daemon| daemon["workers"][0]["restarts"].as_u64() >= Some(3))
    });
    // 0.5 + 1 + 2 s of waiting happened before the third restart (a lower bound, with
    // room for the first start preceding `started`; without backoff it would take a
    // few tenths of a second; a slow machine only makes it longer).
    assert!(started.elapsed() >= Duration::from_millis(3000));
    let worker = d.daemon("foo", "crash").unwrap()["workers"][0].clone();
    assert_eq!(worker["last_exit"], "exit status 3");
    // Each quick exit doubles the delay before the next start.
    let messages = d.supervisor_messages();
    let delays: Vec<&str> = messages
        .lines()
        .filter(|line| line.contains("`foo.crash` worker 1") && line.contains("ended"))
        .map(|line| line.rsplit("again in ").next().unwrap())
        .collect();
    assert!(
        delays.starts_with(&["0.5 s", "1.0 s", "2.0 s"]),
        "{delays:?}\n{messages}"
    );
    assert!(d.log("extra_foo_crash.log").matches("crashing").count() >= 3);
}

#[test]
fn logs_are_split_and_rotated() {
    let mut d = Daemons::new();
    let chatty = "#!/bin/sh\ni=0\nwhile [ $i -lt 200 ]; do\n  \
                  echo \"out $1 line $i ................................................................\"\n  \
                  echo \"err $1 line $i\" >&2\n  i=$((i+1))\ndone\nexec sleep 1000\n";
    d.plugin(
        "foo",
        "[extra_daemon_chatty]\n_cmd_and_args = chatty.sh w\nnumprocesses = 2\n\
         log_split_stdout_stderr = 1\nlog_split_multiple_workers = 1\n\n\
         [extra_daemon_single]\n_cmd_and_args = chatty.sh s\nnumprocesses = 1\n",
        &[("chatty.sh", chatty)],
    );
    d.run(&[
        ("GENERIC_LOG_MAX_SIZE_BEFORE_ROTATION", "4000"),
        ("GENERIC_LOG_NUMBER_OF_ROTATED_FILES", "3"),
    ]);
    d.running("foo", "chatty", 2);
    d.running("foo", "single", 1);
    let log_dir = d.fx.runtime.join("log");
    wait_for("the last lines", || {
        [
            "extra_foo_chatty_worker1.stdout",
            "extra_foo_chatty_worker2.stdout",
            "extra_foo_single.log",
        ]
        .iter()
        .all(|name| d.log(name).contains("line 199"))
            && d.log("extra_foo_single.log").contains("err s line 199")
            && d.log("extra_foo_chatty_worker1.stderr")
                .contains("err w line 199")
            && d.log("extra_foo_chatty_worker2.stderr")
                .contains("err w line 199")
    });
    for stream in ["stdout", "stderr"] {
        for worker in [1, 2] {
            assert!(
                log_dir
                    .join(format!("extra_foo_chatty_worker{worker}.{stream}"))
                    .exists()
            );
        }
    }
    assert!(
        d.log("extra_foo_chatty_worker1.stderr")
            .contains("err w line")
    );
    assert!(!d.log("extra_foo_chatty_worker1.stdout").contains("err w"));
    // One file for both streams when not split; rotated, three old files kept.
    let single = fs::read_dir(&log_dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("extra_foo_single.log"))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        single.into_iter().collect::<Vec<_>>(),
        [
            "extra_foo_single.log",
            "extra_foo_single.log.1",
            "extra_foo_single.log.2",
            "extra_foo_single.log.3"
        ]
    );
    for name in [
        "extra_foo_single.log.1",
        "extra_foo_single.log.2",
        "extra_foo_single.log.3",
    ] {
        let size = fs::metadata(log_dir.join(name)).unwrap().len();
        assert!(size > 3000 && size <= 4000, "{name}: {size} bytes");
        assert!(d.log(name).ends_with('\n'), "{name} ends with a whole line");
    }
    let newest = d.log("extra_foo_single.log");
    assert!(newest.contains("err s line 199") && newest.contains("out s line 199"));
    // Files made by a rotation are as private as the first one.
    use std::os::unix::fs::PermissionsExt;
    for entry in fs::read_dir(&log_dir).unwrap().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.path().display());
    }
}

#[test]
fn changed_files_restart_the_daemons_unless_excluded() {
    let mut d = Daemons::new();
    let home = d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh one\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    d.plugin(
        "bar",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh two\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    fs::write(home.join(".autorestart_includes"), "*.py\n*.ini\n").unwrap();
    fs::write(
        home.join(".autorestart_excludes"),
        "/ignored\n__pycache__\n",
    )
    .unwrap();
    fs::create_dir_all(home.join("ignored/deep")).unwrap();
    fs::write(home.join("main.py"), "x = 1\n").unwrap();
    d.run(&[]);
    let first = d.running("foo", "loop", 1)[0];
    let other = d.running("bar", "loop", 1)[0];
    assert_eq!(d.daemon("foo", "loop").unwrap()["autorestart"], true);
    assert_eq!(d.daemon("bar", "loop").unwrap()["autorestart"], false);

    // Excluded paths and files the includes do not name change nothing.
    fs::write(home.join("ignored/deep/x.py"), "x = 2\n").unwrap();
    fs::write(home.join("notes.txt"), "notes\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.pids("foo", "loop"), [first]);

    fs::write(home.join("main.py"), "x = 3\n").unwrap();
    let mut second = 0;
    wait_for("a restart after main.py changed", || {
        let pids = d.pids("foo", "loop");
        second = pids.first().copied().unwrap_or(first);
        second != first
    });
    assert!(!alive(first));
    assert!(d.supervisor_messages().contains("files of `foo` changed"));

    // A directory created later is watched too.
    fs::create_dir_all(home.join("pkg")).unwrap();
    wait_for("the restart for the new directory", || {
        d.pids("foo", "loop")
            .first()
            .is_some_and(|pid| *pid != second)
    });
    let third = d.running("foo", "loop", 1)[0];
    std::thread::sleep(Duration::from_millis(300));
    fs::write(home.join("pkg/mod.py"), "y = 1\n").unwrap();
    wait_for("a restart after pkg/mod.py changed", || {
        d.pids("foo", "loop")
            .first()
            .is_some_and(|pid| *pid != third)
    });
    assert_eq!(
        d.pids("bar", "loop"),
        [other],
        "other plugins are left alone"
    );
}

#[test]
fn installs_uninstalls_and_configuration_changes_are_applied() {
    let mut d = Daemons::new();
    d.plugin(
        "keep",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh keep\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    d.plugin(
        "grow",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh grow\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    let gone = d.plugin(
        "gone",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh gone\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    d.run(&[]);
    let keep = d.running("keep", "loop", 1)[0];
    let grow = d.running("grow", "loop", 1)[0];
    let gone_pid = d.running("gone", "loop", 1)[0];

    // An OP override changes one plugin: only its daemon restarts (picked up by itself).
    let override_file = d.fx.override_path("grow");
    fs::create_dir_all(override_file.parent().unwrap()).unwrap();
    fs::write(&override_file, "[extra_daemon_loop]\nnumprocesses = 2\n").unwrap();
    let pids = d.running("grow", "loop", 2);
    assert!(!pids.contains(&grow), "the changed daemon restarted");
    assert!(!alive(grow));

    // Uninstalled: its daemon stops.
    d.fx.ok(&["plugin", "uninstall", "gone"]);
    wait_for("the uninstalled plugin's daemon to go", || {
        d.daemon("gone", "loop").is_none()
    });
    assert!(!alive(gone_pid));
    drop(gone);

    // Installed from a release: its daemon starts.
    let source = d.fx.source("fresh", "2.0.0");
    let mut config = fs::read_to_string(source.join("config.ini")).unwrap();
    config.push_str("\n[extra_daemon_loop]\n_cmd_and_args = looper.sh fresh\nnumprocesses = 1\n");
    fs::write(source.join("config.ini"), config).unwrap();
    write_executable(&source.join("bin/looper.sh"), LOOPER);
    let file = d.fx.release(&source);
    fs::remove_dir_all(&source).unwrap();
    d.fx.ok(&["plugin", "install", utf8_path(&file)]);
    let fresh = d.running("fresh", "loop", 1)[0];
    let cwd = fs::read_link(format!("/proc/{fresh}/cwd")).unwrap();
    assert_eq!(cwd, d.fx.base.join("fresh").canonicalize().unwrap());

    // Reinstalling the same version from a new build restarts it.
    let source = d.fx.source("fresh", "2.0.0");
    let mut config = fs::read_to_string(source.join("config.ini")).unwrap();
    config.push_str("\n[extra_daemon_loop]\n_cmd_and_args = looper.sh fresh\nnumprocesses = 1\n");
    fs::write(source.join("config.ini"), config).unwrap();
    write_executable(&source.join("bin/looper.sh"), LOOPER);
    let file = {
        let mut command = d.fx.command(&["plugin", "release", utf8_path(&source)]);
        command.env("SOURCE_DATE_EPOCH", "1800000000");
        let output = command.output().unwrap();
        assert_success(&output);
        PathBuf::from(stdout(&output).trim_end())
    };
    d.fx.ok(&["plugin", "install", "--force", utf8_path(&file)]);
    wait_for("the reinstalled plugin's daemon to restart", || {
        d.pids("fresh", "loop")
            .first()
            .is_some_and(|pid| *pid != fresh)
    });

    assert_eq!(
        d.pids("keep", "loop"),
        [keep],
        "unrelated daemons never restarted"
    );
}

#[test]
fn max_age_recycles_workers() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_old]\n_cmd_and_args = looper.sh old\nnumprocesses = 1\nmax_age = 1\n",
        &[("looper.sh", LOOPER)],
    );
    d.run(&[]);
    let first = d.running("foo", "old", 1)[0];
    wait_for("a recycled worker", || {
        d.pids("foo", "old")
            .first()
            .is_some_and(|pid| *pid != first)
    });
    let worker = d.daemon("foo", "old").unwrap()["workers"][0].clone();
    assert_eq!(worker["last_exit"], "exit status 0", "stopped gracefully");
    assert!(d.supervisor_messages().contains("reached its max_age"));
}

#[test]
fn stopping_the_supervisor_leaves_no_process_behind() {
    let mut d = Daemons::new();
    // The daemon starts a child of its own, in its process group, that ignores SIGTERM:
    // it goes when its daemon's process ends.
    let parent = "#!/bin/sh\n(trap '' TERM; exec sleep 1000) &\ntrap 'exit 0' TERM\necho family started\n\
                  while :; do sleep 0.1; done\n";
    d.plugin(
        "foo",
        "[extra_daemon_family]\n_cmd_and_args = family.sh\nnumprocesses = 2\n",
        &[("family.sh", parent)],
    );
    d.run(&[]);
    let pids = d.running("foo", "family", 2);
    let mut members = Vec::new();
    wait_for("the daemons' children", || {
        members = pids.iter().flat_map(|pid| group_members(*pid)).collect();
        members.len() >= 4
    });
    wait_for("the daemons to handle SIGTERM", || {
        d.log("extra_foo_family.log")
            .matches("family started")
            .count()
            == 2
    });
    let output = d.fx.run(&["daemons", "stop"]);
    assert_success(&output);
    assert!(stderr(&output).contains("every daemon is stopped"));
    let exit = wait_child(d.supervisor.as_mut().unwrap(), Duration::from_secs(60))
        .expect("the supervisor exits");
    assert!(exit.success(), "the supervisor exits 0: {exit:?}");
    for pid in &members {
        assert!(!alive(*pid), "process {pid} survived the stop");
    }
    assert_eq!(d.fx.run(&["daemons", "status"]).status.code(), Some(3));
}

#[test]
fn a_supervisor_killed_outright_takes_its_daemons_along() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_sleep]\n_cmd_and_args = sleep 1000\nnumprocesses = 2\n",
        &[],
    );
    d.run(&[]);
    let pids = d.running("foo", "sleep", 2);
    let supervisor = d.supervisor.as_mut().unwrap();
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    wait_for("the daemons to die with the supervisor", || {
        pids.iter().all(|pid| !alive(*pid))
    });
}

#[test]
fn a_new_supervisor_kills_what_a_killed_one_left_behind() {
    let mut d = Daemons::new();
    // The grandchild ignores SIGTERM and outlives its daemon when the supervisor dies.
    let parent = "#!/bin/sh\n(trap '' TERM; exec sleep 1000) &\necho \"child $!\"\n\
                  while :; do sleep 0.1; done\n";
    d.plugin(
        "foo",
        "[extra_daemon_family]\n_cmd_and_args = family.sh\nnumprocesses = 1\n",
        &[("family.sh", parent)],
    );
    d.run(&[]);
    let daemon = d.running("foo", "family", 1)[0];
    let mut child = 0;
    wait_for("the grandchild", || {
        child = d
            .log("extra_foo_family.log")
            .lines()
            .find_map(|line| line.strip_prefix("child "))
            .and_then(|pid| pid.trim().parse().ok())
            .unwrap_or(0);
        child != 0
    });
    let supervisor = d.supervisor.as_mut().unwrap();
    supervisor.kill().unwrap();
    supervisor.wait().unwrap();
    wait_for("the daemon to die with the supervisor", || !alive(daemon));
    assert!(
        alive(child),
        "an orphan is left until a supervisor starts again"
    );
    d.run(&[]);
    wait_for("the orphan to be killed", || !alive(child));
    assert!(
        d.supervisor_messages()
            .contains("left by a previous supervisor"),
        "{}",
        d.supervisor_messages()
    );
    d.running("foo", "family", 1);
}

#[test]
fn sigterm_stops_the_supervisor_and_its_daemons() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh t\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    d.run(&[]);
    let pid = d.running("foo", "loop", 1)[0];
    wait_for("the daemon to handle SIGTERM", || {
        d.log("extra_foo_loop.log").contains("looper t started")
    });
    let supervisor = d.supervisor.as_mut().unwrap();
    send_signal(supervisor.id(), Signal::SIGTERM);
    let exit = wait_child(supervisor, Duration::from_secs(60)).expect("the supervisor exits");
    assert!(exit.success(), "{exit:?}");
    assert!(!alive(pid));
    assert!(d.log("extra_foo_loop.log").contains("looper t got TERM"));
}

#[test]
fn start_status_stop_from_the_command_line() {
    let d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh c\nnumprocesses = 1\n\n\
         [extra_daemon_broken]\n_cmd_and_args = looper.sh 'unclosed\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    let output = d.fx.run(&["daemons", "status"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("not running"));
    let output = d.fx.run(&["daemons", "status", "--json"]);
    assert_eq!(output.status.code(), Some(3));
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["running"], false);
    let output = d.fx.run(&["daemons", "stop"]);
    assert_success(&output);
    assert!(stderr(&output).contains("not running"));

    let output = d.fx.run(&["daemons", "start"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("daemon supervisor started"),
        "{}",
        stderr(&output)
    );
    d.running("foo", "loop", 1);
    let output = d.fx.run(&["daemons", "status"]);
    assert_success(&output);
    let text = stdout(&output);
    assert!(text.starts_with("supervisor: running (pid "), "{text}");
    assert!(
        text.contains("foo.loop") && text.contains("running"),
        "{text}"
    );
    assert!(
        text.contains("warning: daemon `foo.broken`: cannot read `_cmd_and_args`"),
        "{text}"
    );

    use std::os::unix::fs::PermissionsExt;
    let socket = d.fx.runtime.join("var/daemons.sock");
    assert_eq!(
        fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600,
        "only the owner controls the daemons"
    );
    let output = d.fx.run(&["daemons", "start"]);
    assert_success(&output);
    assert!(stderr(&output).contains("already running"));
    let output = d.fx.run(&["daemons", "run"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("a daemon supervisor is already running"));

    let output = d.fx.run(&["daemons", "stop", "nope"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("the plugin `nope` has no daemon"));

    let output = d.fx.run(&["daemons", "restart"]);
    assert_success(&output);
    let output = d.fx.run(&["daemons", "stop"]);
    assert_success(&output);
    assert_eq!(d.fx.run(&["daemons", "status"]).status.code(), Some(3));
    // The detached supervisor wrote its messages in RUNTIME/log/daemons.log, and it is
    // gone when `stop` returns: a new one can start at once.
    assert!(d.supervisor_messages().contains("supervisor stopped"));
    assert_success(&d.fx.run(&["daemons", "start"]));
    assert_success(&d.fx.run(&["daemons", "stop"]));
}

#[test]
fn plugin_commands_tell_the_supervisor_at_once() {
    let mut d = Daemons::new();
    // Without the notification, nothing would be reread for an hour.
    d.run(&[("MFENV_DAEMONS_RESCAN_INTERVAL", "3600")]);
    let home = d.plugin(
        "quick",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh q\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    let pid = d.running("quick", "loop", 1)[0];
    d.fx.ok(&["plugin", "uninstall", "quick"]);
    wait_for("the daemon of the uninstalled plugin to go", || {
        !alive(pid) && d.daemon("quick", "loop").is_none()
    });
    drop(home);
    let output = d.fx.run_with(
        &["daemons", "run"],
        &[("MFENV_DAEMONS_RESCAN_INTERVAL", "soon")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("MFENV_DAEMONS_RESCAN_INTERVAL must be a number"));
}

/// The live processes that have `word` as one of their arguments.
fn processes_with_argument(word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.split(|&b| b == 0).any(|arg| arg == word.as_bytes()) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

/// A number of seconds unique to this test process and `round`: the marker of the
/// `sleep` processes a test starts.
fn unique_seconds(round: u32) -> String {
    (200_000 + (std::process::id() % 10_000) * 100 + round).to_string()
}

#[test]
fn stopping_kills_what_left_the_process_group_and_the_session() {
    let mut d = Daemons::new();
    let (marked, unmarked) = (unique_seconds(1), unique_seconds(2));
    // One grandchild in a session of its own that ignores SIGTERM, one that also drops
    // the environment (so no marker: only the subreaper finds it).
    let script = format!(
        "#!/bin/sh\nsetsid sh -c \"trap '' TERM; sleep {marked}; :\" &\n\
         env -i /usr/bin/setsid /bin/sh -c \"trap '' TERM; /bin/sleep {unmarked}; :\" &\n\
         trap 'exit 0' TERM\necho escaper started\nwhile :; do sleep 0.1; done\n"
    );
    d.plugin(
        "foo",
        "[extra_daemon_escaper]\n_cmd_and_args = escaper.sh\nnumprocesses = 2\n",
        &[("escaper.sh", &script)],
    );
    d.run(&[]);
    d.running("foo", "escaper", 2);
    wait_for("the escaped grandchildren", || {
        processes_with_argument(&marked).len() == 2 && processes_with_argument(&unmarked).len() == 2
    });
    let output = d.fx.run(&["daemons", "stop"]);
    assert_success(&output);
    // Gone when `stop` returns.
    assert_eq!(processes_with_argument(&marked), Vec::<u32>::new());
    assert_eq!(processes_with_argument(&unmarked), Vec::<u32>::new());
    let exit = wait_child(d.supervisor.as_mut().unwrap(), Duration::from_secs(60))
        .expect("the supervisor exits");
    assert!(exit.success(), "{exit:?}");
    assert!(
        d.supervisor_messages().contains("the daemons left behind"),
        "{}",
        d.supervisor_messages()
    );
}

#[test]
fn restarts_do_not_pile_up_escaped_processes() {
    let mut d = Daemons::new();
    let seconds = unique_seconds(3);
    let script = format!(
        "#!/bin/sh\nsetsid sh -c \"trap '' TERM; sleep {seconds}; :\" &\n\
         trap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n"
    );
    d.plugin(
        "foo",
        "[extra_daemon_escaper]\n_cmd_and_args = escaper.sh\nnumprocesses = 1\n",
        &[("escaper.sh", &script)],
    );
    d.run(&[]);
    for round in 0..6 {
        let pid = d.running("foo", "escaper", 1)[0];
        wait_for(&format!("round {round}: one escaped process"), || {
            processes_with_argument(&seconds).len() == 1
        });
        if round % 2 == 0 {
            assert_success(&d.fx.run(&["daemons", "restart", "foo"]));
        } else {
            // The daemon dies by itself: what it started goes with it.
            send_signal(pid, Signal::SIGKILL);
            wait_for("the worker to be replaced", || {
                let pids = d.pids("foo", "escaper");
                pids.len() == 1 && pids[0] != pid
            });
        }
    }
    wait_for("exactly one escaped process", || {
        processes_with_argument(&seconds).len() == 1
    });
    assert_success(&d.fx.run(&["daemons", "stop"]));
    assert_eq!(processes_with_argument(&seconds), Vec::<u32>::new());
}

#[test]
fn logs_lock_and_socket_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh p\nnumprocesses = 1\nlog_split_stdout_stderr = 1\n",
        &[("looper.sh", LOOPER)],
    );
    let with_umask = |command: &mut std::process::Command| {
        // SAFETY: umask is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
                Ok(())
            });
        }
    };
    let log = fs::File::create(&d.supervisor_log).unwrap();
    let mut command = d.fx.command(&["daemons", "run"]);
    with_umask(&mut command);
    d.supervisor = Some(command.stderr(log).spawn().unwrap());
    let pid = d.running("foo", "loop", 1)[0];
    let tmp = d.fx.runtime.join("tmp/foo");
    wait_for("the daemon's first words", || {
        tmp.join(format!("seen-{pid}")).exists()
            && d.log("extra_foo_loop.stderr").contains("complains")
    });
    let mode = |path: &str| {
        fs::metadata(d.fx.runtime.join(path))
            .unwrap_or_else(|err| panic!("{path}: {err}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("log"), 0o700);
    assert_eq!(mode("log/extra_foo_loop.stdout"), 0o600);
    assert_eq!(mode("log/extra_foo_loop.stderr"), 0o600);
    assert_eq!(mode("var/daemons.sock"), 0o600);
    assert_eq!(mode("var/daemons.lock"), 0o600);
    assert_eq!(mode("tmp"), 0o700);
    assert_eq!(mode("tmp/foo"), 0o700);
    assert_success(&d.fx.run(&["daemons", "stop"]));
    wait_child(d.supervisor.as_mut().unwrap(), Duration::from_secs(60)).expect("stopped");
    d.supervisor = None;
    // The detached supervisor's own log.
    fs::remove_dir_all(d.fx.runtime.join("log")).unwrap();
    let mut command = d.fx.command(&["daemons", "start"]);
    with_umask(&mut command);
    assert_success(&command.output().unwrap());
    assert_eq!(mode("log"), 0o700);
    assert_eq!(mode("log/daemons.log"), 0o600);
    assert_success(&d.fx.run(&["daemons", "stop"]));
}

#[test]
fn a_huge_rescan_interval_is_clamped_not_a_panic() {
    let mut d = Daemons::new();
    d.plugin(
        "foo",
        "[extra_daemon_loop]\n_cmd_and_args = looper.sh h\nnumprocesses = 1\n",
        &[("looper.sh", LOOPER)],
    );
    d.run(&[("MFENV_DAEMONS_RESCAN_INTERVAL", "1e300")]);
    d.running("foo", "loop", 1);
    assert_success(&d.fx.run(&["daemons", "stop"]));
    let exit = wait_child(d.supervisor.as_mut().unwrap(), Duration::from_secs(60))
        .expect("the supervisor exits");
    assert!(exit.success(), "{exit:?}");
    assert!(!d.supervisor_messages().contains("panicked"));
    let output = d.fx.run_with(
        &["daemons", "run"],
        &[("MFENV_DAEMONS_RESCAN_INTERVAL", "-1")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("MFENV_DAEMONS_RESCAN_INTERVAL must be a number"));
}
