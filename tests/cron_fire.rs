//! Plugin cron jobs run by the real cron daemon (Debian package `cron`), with cron's own
//! environment (`PATH=/usr/bin:/bin`, `HOME`, `SHELL=/bin/sh`, `LOGNAME`): a line using
//! `{{MFENV_CRONWRAP}}` and `{{MFENV_BIN}}`, and the historical MetWork line
//! `{{MFDATA_HOME}}/bin/cronwrap.sh --lock --log-capture-to my.log -- plugin_wrapper
//! {{MFDATA_CURRENT_PLUGIN_NAME}} -- cmd` with the aliases of `mfenv install-aliases`.
//!
//! The test changes the crontab of the user running it: it holds the machine-wide lock
//! `/tmp/mfenv-crontab.lock` (the one `flock` takes around test runs that use the
//! crontab), saves the crontab and puts it back, starts `cron` when it is not running
//! and stops it again only then. It waits for cron's next minutes, up to 150 s.

mod common;
mod plugin_support;

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use common::*;
use plugin_support::*;

const MACHINE_LOCK: &str = "/tmp/mfenv-crontab.lock";
const CRON_DAEMON: &str = "/usr/sbin/cron";

/// The machine-wide crontab lock. A process started by `flock /tmp/mfenv-crontab.lock`
/// inherits the descriptor that holds it: locking that one again succeeds at once,
/// where a new descriptor of the same file would wait for ever.
fn machine_lock() -> Flock<File> {
    let inherited = fs::read_dir("/proc/self/fd").ok().and_then(|entries| {
        entries.flatten().find_map(|entry| {
            let target = fs::read_link(entry.path()).ok()?;
            if target != Path::new(MACHINE_LOCK) {
                return None;
            }
            let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
            // SAFETY: the descriptor is open (listed in /proc/self/fd) and only borrowed
            // for the duplication.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            borrowed.try_clone_to_owned().ok()
        })
    });
    let file = match inherited {
        Some(fd) => File::from(fd),
        None => fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(MACHINE_LOCK)
            .expect("open the machine-wide crontab lock"),
    };
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, errno)| panic!("cannot lock {MACHINE_LOCK}: {errno}"))
}

/// Puts the user's crontab back when dropped.
struct SavedCrontab(String);

impl Drop for SavedCrontab {
    fn drop(&mut self) {
        write_crontab(&self.0);
    }
}

/// The pids of the running `cron` daemons.
fn cron_pids() -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if fs::read_to_string(entry.path().join("comm")).is_ok_and(|comm| comm.trim() == "cron") {
            pids.push(pid);
        }
    }
    pids
}

/// The cron daemon, started here when it was not running (and then stopped on drop).
struct CronDaemon {
    started: Vec<i32>,
}

impl CronDaemon {
    fn ensure_running() -> Self {
        let before = cron_pids();
        if !before.is_empty() {
            return CronDaemon {
                started: Vec::new(),
            };
        }
        assert!(
            Path::new(CRON_DAEMON).is_file(),
            "`{CRON_DAEMON}` is missing: install the Debian package `cron`"
        );
        let status = Command::new(CRON_DAEMON)
            .status()
            .unwrap_or_else(|err| panic!("cannot start `{CRON_DAEMON}`: {err}"));
        assert!(
            status.success(),
            "`{CRON_DAEMON}` failed to start: {status}"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let started: Vec<i32> = cron_pids()
                .into_iter()
                .filter(|pid| !before.contains(pid))
                .collect();
            if !started.is_empty() {
                return CronDaemon { started };
            }
            assert!(
                Instant::now() < deadline,
                "`{CRON_DAEMON}` exited at once: no cron daemon is running"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for CronDaemon {
    fn drop(&mut self) {
        for pid in &self.started {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

/// Removes the module-context records the test made below the real home.
struct Records(Vec<PathBuf>);

impl Drop for Records {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// The record of a `cronwrap.sh` directory: `HOME/.local/state/mfenv/cron/<md5>.json`.
fn record_path(home: &Path, dir: &Path) -> PathBuf {
    use md5::{Digest, Md5};
    let digest = Md5::digest(dir.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    home.join(".local/state/mfenv/cron")
        .join(format!("{hex}.json"))
}

/// The home directory of the user in the passwd database: the `HOME` cron gives jobs.
fn passwd_home() -> PathBuf {
    let uid = fs::metadata("/proc/self").expect("stat /proc/self").uid();
    let output = Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .output()
        .expect("run getent passwd");
    let line = String::from_utf8(output.stdout).expect("utf-8 passwd entry");
    PathBuf::from(
        line.trim_end()
            .split(':')
            .nth(5)
            .expect("a passwd entry has a home field"),
    )
}

const JOB: &str = r#"#!/bin/sh
# $1: the name of the form; what the job saw goes to RUNTIME/$1.out.
printf '%s|%s|%s\n' "$MFDATA_CURRENT_PLUGIN_NAME" "$MFMODULE" "$(command -v cronfire_hello)" \
    > "$MFMODULE_RUNTIME_HOME/$1.out.tmp"
mv "$MFMODULE_RUNTIME_HOME/$1.out.tmp" "$MFMODULE_RUNTIME_HOME/$1.out"
echo "logged by the $1 job"
"#;

const CRONTAB: &str = "\
# The form mfenv offers, then the historical MetWork form, unchanged.
* * * * * {{MFENV_CRONWRAP}} --lock --log-capture-to native.log -- {{MFENV_BIN}} plugin wrapper {{MFDATA_CURRENT_PLUGIN_NAME}} -- cronfire_job native
* * * * * {{MFDATA_HOME}}/bin/cronwrap.sh --lock --log-capture-to my.log -- plugin_wrapper {{MFDATA_CURRENT_PLUGIN_NAME}} -- cronfire_job historical
";

#[test]
fn plugin_cron_jobs_fire_under_the_real_cron_daemon_in_both_forms() {
    // Dropped in reverse order: the crontab is put back before the records and the
    // plugin files go, and cron stops (when started here) after that.
    let _lock = machine_lock();
    let _daemon = CronDaemon::ensure_running();
    let mut fixture = PluginFixture::new();
    let home = passwd_home();
    let module_home = fixture.root().join("opt/mfdata");
    let records = Records(vec![
        record_path(&home, &fixture.runtime.join("var/cron/bin")),
        record_path(&home, &module_home.join("bin")),
    ]);
    let saved = SavedCrontab(read_crontab());
    write_crontab("0 1 * * * /bin/true a job of the user\n");

    for (name, value) in [
        ("HOME", utf8_path(&home)),
        ("MFMODULE", "MFDATA"),
        ("MFMODULE_HOME", utf8_path(&module_home)),
        ("MFDATA_HOME", utf8_path(&module_home)),
    ] {
        fixture.fixture.env.insert(name.into(), value.into());
    }
    fixture.ok(&["install-aliases", utf8_path(&module_home.join("bin"))]);
    assert!(module_home.join("bin/cronwrap.sh").is_symlink());

    let source = fixture.source("cronfire", "1.0.0");
    fs::write(source.join(".layerapi2_label"), "plugin_cronfire@mfdata\n").unwrap();
    write_executable(&source.join("bin/cronfire_job"), JOB);
    fs::write(source.join("crontab"), CRONTAB).unwrap();
    let file = fixture.release(&source);
    let output = fixture.run(&["plugin", "install", utf8_path(&file)]);
    assert_success(&output);
    let installed = read_crontab();
    assert!(
        installed.starts_with("0 1 * * * /bin/true a job of the user\n"),
        "{installed}"
    );
    let binary = mfenv_binary().canonicalize().unwrap();
    let cron_bin = fixture.runtime.join("var/cron/bin");
    assert!(
        installed.contains(&format!(
            "* * * * * {}/cronwrap.sh --lock --log-capture-to native.log -- {} plugin wrapper cronfire -- cronfire_job native\n",
            cron_bin.display(),
            binary.display()
        )),
        "{installed}"
    );
    // No `VAR=value` line: the user's other jobs keep their environment.
    assert!(
        !installed.lines().any(|line| line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('='))),
        "{installed}"
    );
    for record in &records.0 {
        assert!(record.is_file(), "no record `{}`", record.display());
    }

    let expected = format!(
        "cronfire|MFDATA|{}\n",
        fixture.base.join("cronfire/bin/cronfire_hello").display()
    );
    let outputs = [
        ("native", fixture.runtime.join("native.out"), "native.log"),
        (
            "historical",
            fixture.runtime.join("historical.out"),
            "my.log",
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let fired = outputs.iter().all(|(form, out, log)| {
            fs::read_to_string(out).is_ok_and(|text| text == expected)
                && fs::read_to_string(fixture.runtime.join("log").join(log))
                    .is_ok_and(|text| text.contains(&format!("logged by the {form} job\n")))
        });
        if fired {
            break;
        }
        if Instant::now() >= deadline {
            panic!("{}", diagnosis(&fixture, &home, &installed, &outputs));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(saved);
    drop(records);
}

/// What the jobs left, and what their lines do when run by hand in cron's environment.
fn diagnosis(
    fixture: &PluginFixture,
    home: &Path,
    installed: &str,
    outputs: &[(&str, PathBuf, &str)],
) -> String {
    let mut text = format!("the cron jobs did not all fire within 150 s\ncrontab:\n{installed}");
    for (form, out, log) in outputs {
        text.push_str(&format!(
            "{form}: out = {:?}, log = {:?}\n",
            fs::read_to_string(out).ok(),
            fs::read_to_string(fixture.runtime.join("log").join(log)).ok()
        ));
    }
    for line in installed
        .lines()
        .filter(|line| line.starts_with("* * * * * "))
    {
        let command = &line["* * * * * ".len()..];
        let output = Command::new("/usr/bin/env")
            .args(["-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "LOGNAME=root"])
            .arg(format!("HOME={}", home.display()))
            .args(["/bin/sh", "-c", command])
            .output()
            .expect("run the line");
        text.push_str(&format!(
            "by hand: {command}\n  status {:?}\n  stdout {}\n  stderr {}\n",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    text
}

// Fast companions of the test above: the same lines run by hand in cron's environment
// (`env -i`), with a fake `crontab` program so that the real crontab is not touched.

/// A plugin fixture of module MFDATA whose `crontab` program writes `crontab.txt`, with
/// the historical names installed in `MFDATA_HOME/bin`.
fn fake_crontab_fixture() -> (PluginFixture, PathBuf) {
    let mut fixture = PluginFixture::new();
    let fake_bin = fixture.root().join("fake-bin");
    fs::create_dir_all(&fake_bin).unwrap();
    let crontab_file = fixture.root().join("crontab.txt");
    write_executable(
        &fake_bin.join("crontab"),
        &format!(
            "#!/bin/sh\nF='{}'\nif [ \"$1\" = -l ]; then\n  [ -f \"$F\" ] && exec cat \"$F\"\n  echo 'no crontab for test' >&2; exit 1\nfi\ncat -- \"${{1:--}}\" > \"$F\"\n",
            crontab_file.display()
        ),
    );
    let module_home = fixture.root().join("opt/mfdata");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display());
    for (name, value) in [
        ("PATH", path.as_str()),
        ("MFMODULE", "MFDATA"),
        ("MFMODULE_HOME", utf8_path(&module_home)),
        ("MFDATA_HOME", utf8_path(&module_home)),
    ] {
        fixture.fixture.env.insert(name.into(), value.into());
    }
    fixture.ok(&["install-aliases", utf8_path(&module_home.join("bin"))]);
    (fixture, crontab_file)
}

/// Runs a crontab command as cron would: `/bin/sh -c` with cron's environment only.
fn run_as_cron(fixture: &PluginFixture, command: &str) -> std::process::Output {
    Command::new("/usr/bin/env")
        .args([
            "-i",
            "PATH=/usr/bin:/bin",
            "SHELL=/bin/sh",
            "LOGNAME=cronjob",
        ])
        .arg(format!("HOME={}", fixture.root().join("home").display()))
        .args(["/bin/sh", "-c", command])
        .current_dir("/")
        .output()
        .expect("run /bin/sh")
}

/// The commands of the `* * * * *` lines of the crontab text.
fn every_minute_commands(crontab: &str) -> Vec<String> {
    crontab
        .lines()
        .filter_map(|line| line.strip_prefix("* * * * * "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn both_cron_line_forms_run_in_crons_environment_with_the_recorded_context() {
    let (fixture, crontab_file) = fake_crontab_fixture();
    let source = fixture.source("cronfire", "1.0.0");
    fs::write(source.join(".layerapi2_label"), "plugin_cronfire@mfdata\n").unwrap();
    write_executable(&source.join("bin/cronfire_job"), JOB);
    fs::write(source.join("crontab"), CRONTAB).unwrap();
    let file = fixture.release(&source);
    fixture.ok(&["plugin", "install", utf8_path(&file)]);
    let commands = every_minute_commands(&fs::read_to_string(&crontab_file).unwrap());
    assert_eq!(commands.len(), 2, "{commands:?}");

    let expected = format!(
        "cronfire|MFDATA|{}\n",
        fixture.base.join("cronfire/bin/cronfire_hello").display()
    );
    for (command, form, log) in [
        (&commands[0], "native", "native.log"),
        (&commands[1], "historical", "my.log"),
    ] {
        let output = run_as_cron(&fixture, command);
        assert!(
            output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
            "{command}: {output:?}"
        );
        assert_eq!(
            fs::read_to_string(fixture.runtime.join(format!("{form}.out"))).unwrap(),
            expected
        );
        assert_eq!(
            fs::read_to_string(fixture.runtime.join("log").join(log)).unwrap(),
            format!("logged by the {form} job\n")
        );
    }

    // Without the recorded context the historical line cannot find the plugin: that
    // context is what makes it work.
    let record = record_path(
        &fixture.root().join("home"),
        &fixture.root().join("opt/mfdata/bin"),
    );
    fs::remove_file(&record).unwrap();
    fs::remove_file(fixture.runtime.join("historical.out")).unwrap();
    let output = run_as_cron(&fixture, &commands[1]);
    assert!(!output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no module context recorded for"),
        "{output:?}"
    );
    assert!(!fixture.runtime.join("historical.out").exists());
    // `mfenv cron install` records it again.
    fixture.ok(&["cron", "install"]);
    assert!(record.is_file());
}

#[test]
fn the_template_cron_line_runs_in_crons_environment() {
    let (fixture, crontab_file) = fake_crontab_fixture();
    let source = fixture.bootstrap("default", "tpl");
    fs::write(source.join(".layerapi2_label"), "plugin_tpl@mfdata\n").unwrap();
    // The example line of the template, made active and every minute.
    let template = fs::read_to_string(source.join("crontab")).unwrap();
    let example = template
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("# */5 * * * * "))
        .expect("the template has an example line");
    fs::write(
        source.join("crontab"),
        format!("{template}* * * * * {example}\n"),
    )
    .unwrap();
    let file = fixture.release(&source);
    fixture.ok(&["plugin", "install", utf8_path(&file)]);
    let commands = every_minute_commands(&fs::read_to_string(&crontab_file).unwrap());
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(!commands[0].starts_with("mfenv "), "{}", commands[0]);
    let output = run_as_cron(&fixture, &commands[0]);
    assert!(output.status.success(), "{}: {output:?}", commands[0]);
    assert_eq!(
        fs::read_to_string(fixture.runtime.join("log/tpl_hello.log")).unwrap(),
        "hello from tpl 0.0.1\n"
    );
}
