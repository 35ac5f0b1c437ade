//! `mfenv cron install|uninstall` with the real `crontab` command (Debian package
//! `cron`): plugin blocks rendered from the plugin environment, merged into the user's
//! crontab without touching other lines, and removed exactly.
//!
//! These tests change the crontab of the user running them: each one saves it first
//! and puts it back afterwards, and they run one at a time.

mod common;
mod plugin_support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::*;
use plugin_support::*;

/// One test at a time: they share the user's crontab.
static CRONTAB: Mutex<()> = Mutex::new(());

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
    assert_eq!(
        stderr(&output),
        "added the crontab block of plugin `my-plug` (1 line)\n\
         added the crontab block of plugin `other` (1 line)\n"
    );
    assert_eq!(stdout(&output), "");
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
    // Installing again changes nothing (the block is replaced where it stands).
    let again = fixture.run(&["cron", "install", "my-plug"]);
    assert_success(&again);
    assert_eq!(stderr(&again), "the crontab is unchanged\n");
    assert_eq!(read_crontab(), expected);
    let output = fixture.run(&["cron", "uninstall", "other"]);
    assert_success(&output);
    assert_eq!(
        stderr(&output),
        "removed the crontab block of plugin `other`\n"
    );
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

fn begin(name: &str) -> String {
    format!("##### BEGINNING OF METWORK GENERIC PLUGIN {name} CRONTAB #####")
}

fn end(name: &str) -> String {
    format!("##### END OF METWORK GENERIC PLUGIN {name} CRONTAB #####")
}

/// The block mfenv writes for plugin `name` with these rendered lines.
fn block(name: &str, lines: &str) -> String {
    format!("{}\n{lines}{}\n", begin(name), end(name))
}

/// Waits until nobody holds the plugin-management lock of `fixture` (a `crontab`
/// started by a killed mfenv holds it until it is done).
fn wait_for_the_lock(fixture: &PluginFixture) {
    let path = fixture.runtime.join("tmp/plugin_management_lock");
    let Ok(file) = fs::File::open(&path) else {
        return;
    };
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive);
    assert!(lock.is_ok(), "cannot wait for `{}`", path.display());
}

/// The `crontab` that `child` runs to install a crontab (not `crontab -l`), once it
/// runs; `None` when `child` exits first.
fn installing_crontab_of(child: &mut std::process::Child) -> Option<u32> {
    let children = format!("/proc/{0}/task/{0}/children", child.id());
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        let pids = fs::read_to_string(&children).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let Ok(command) = fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let words: Vec<&[u8]> = command.split(|&byte| byte == 0).collect();
            let is_crontab = words
                .first()
                .is_some_and(|program| program.ends_with(b"crontab"));
            if is_crontab && words.get(1) != Some(&&b"-l"[..]) {
                return pid.parse().ok();
            }
        }
    }
    None
}

/// A small xorshift generator: the kill moments of one run, reproducible from the seed
/// printed.
struct Moments(u64);

impl Moments {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("kill moments seed: {seed}");
        Moments(seed)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn a_killed_crontab_update_leaves_the_old_or_the_new_crontab_whole() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    install_with_crontab(
        &fixture,
        "cron-kill",
        "* * * * * echo {{ GENERIC_CURRENT_PLUGIN_NAME }}\n",
    );
    // About 450 kB of the user's own jobs, in lines of 64 bytes: a crontab cut at a
    // pipe page boundary is still one that `crontab` accepts, as a cut crontab of
    // ordinary lines sometimes is.
    let mut old = String::new();
    for index in 0..7000 {
        let line = format!("{:02} 3 * * * /bin/true user job {index:05} ", index % 60);
        old.push_str(&format!("{line:x<63}\n"));
    }
    assert_eq!(old.len(), 7000 * 64);
    let new = format!("{old}{}", block("cron-kill", "* * * * * echo cron-kill\n"));
    let update = || {
        let mut command = fixture.command(&["cron", "install", "cron-kill"]);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command.spawn().expect("run mfenv cron install")
    };
    // One update that runs to its end gives the span to kill within.
    write_crontab(&old);
    let started = std::time::Instant::now();
    assert!(update().wait().unwrap().success());
    let span = started.elapsed().as_micros() as u64;
    assert_eq!(read_crontab(), new);

    let mut moments = Moments::new();
    let (mut kept_old, mut got_new, mut broken) = (0, 0, Vec::new());
    for round in 0..40 {
        write_crontab(&old);
        let mut child = update();
        // Every other round kills mfenv while the crontab is being installed: the
        // `crontab` mfenv started for it is paused as soon as it runs (a slow
        // reader), then resumed as mfenv is killed.
        let moment = if round % 2 == 0 {
            let delay = moments.below(span + span / 5);
            std::thread::sleep(std::time::Duration::from_micros(delay));
            let _ = child.kill();
            let _ = child.wait();
            format!("after {delay} µs")
        } else {
            let delay = moments.below(3000);
            let installing = installing_crontab_of(&mut child).map(|pid| {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP);
                pid
            });
            std::thread::sleep(std::time::Duration::from_micros(delay));
            // Resumed just before mfenv dies: a process group left with a stopped
            // member would get a SIGHUP.
            if let Some(pid) = installing {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
            format!("{delay} µs after its `crontab` was paused")
        };
        wait_for_the_lock(&fixture);
        let crontab = read_crontab();
        if crontab == old {
            kept_old += 1;
        } else if crontab == new {
            got_new += 1;
        } else {
            broken.push(format!(
                "round {round}, killed {moment}: {} bytes",
                crontab.len()
            ));
        }
    }
    println!("old crontab kept {kept_old} times, new one installed {got_new} times");
    assert!(
        broken.is_empty(),
        "the crontab was neither the old one ({} bytes) nor the new one ({} bytes):\n{}",
        old.len(),
        new.len(),
        broken.join("\n")
    );
    // The next run cleans what killed runs left in RUNTIME/tmp.
    write_crontab(&old);
    assert!(update().wait().unwrap().success());
    let leftovers: Vec<_> = fs::read_dir(fixture.runtime.join("tmp"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("crontab"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        fs::read_to_string(fixture.runtime.join("var/crontab.previous")).unwrap(),
        old
    );
}

#[test]
fn the_previous_crontab_is_kept_privately_and_puts_the_crontab_back() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    write_crontab(FOREIGN);
    install_with_crontab(&fixture, "cron-backup", "0 4 * * * backup\n");
    let backup = fixture.runtime.join("var/crontab.previous");
    assert_eq!(fs::read_to_string(&backup).unwrap(), FOREIGN);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let status = Command::new(crontab_program())
        .arg(&backup)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(read_crontab(), FOREIGN);
}

#[test]
fn concurrent_installs_and_cron_installs_keep_every_block() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    let names: Vec<String> = (0..6).map(|index| format!("cron-many-{index}")).collect();
    let files: Vec<PathBuf> = names
        .iter()
        .map(|name| {
            let source = fixture.source(name, "1.0.0");
            fs::write(source.join("crontab"), format!("0 5 * * * job of {name}\n")).unwrap();
            fixture.release(&source)
        })
        .collect();
    let expect_every_block = |round: &str| {
        let crontab = read_crontab();
        assert!(crontab.starts_with(FOREIGN), "{round}: {crontab}");
        for name in &names {
            assert!(
                crontab.contains(&block(name, &format!("0 5 * * * job of {name}\n"))),
                "{round}: the block of `{name}` is lost:\n{crontab}"
            );
        }
    };
    let run_all = |commands: Vec<Command>| {
        let children: Vec<_> = commands
            .into_iter()
            .map(|mut command| {
                command
                    .env("MFENV_LOCK_TIMEOUT", "60")
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                command.spawn().expect("run mfenv")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    write_crontab(FOREIGN);
    run_all(
        files
            .iter()
            .map(|file| fixture.command(&["plugin", "install", utf8_path(file)]))
            .collect(),
    );
    expect_every_block("concurrent plugin installs");
    for round in 0..5 {
        write_crontab(FOREIGN);
        run_all(
            names
                .iter()
                .map(|name| fixture.command(&["cron", "install", name]))
                .collect(),
        );
        expect_every_block(&format!("concurrent cron installs, round {round}"));
    }
    // Uninstalls and installs at the same time: the others' blocks stay.
    run_all(
        names[..3]
            .iter()
            .map(|name| fixture.command(&["cron", "uninstall", name]))
            .chain(
                names[3..]
                    .iter()
                    .map(|name| fixture.command(&["cron", "install", name])),
            )
            .collect(),
    );
    let crontab = read_crontab();
    for name in &names[..3] {
        assert!(!crontab.contains(&begin(name)), "{crontab}");
    }
    for name in &names[3..] {
        assert!(crontab.contains(&block(name, &format!("0 5 * * * job of {name}\n"))));
    }
}

#[test]
fn a_plugin_cannot_forge_the_markers_of_another_block() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    write_crontab(FOREIGN);
    install_with_crontab(&fixture, "cron-victim", "0 6 * * * victim\n");
    let output = {
        let source = fixture.source("cron-forger", "1.0.0");
        fs::write(
            source.join("crontab"),
            format!(
                "0 7 * * * forger\n  {}\n\t{}\n {}\n",
                begin("cron-victim"),
                end("cron-victim"),
                "##### END OF METWORK GENERIC MODULE CRONTAB #####"
            ),
        )
        .unwrap();
        let file = fixture.release(&source);
        fixture.run(&["plugin", "install", utf8_path(&file)])
    };
    assert_success(&output);
    let message = stderr(&output);
    for line in [2, 3, 4] {
        assert!(
            message.contains(&format!("line {line} of `"))
                && message.contains("reads as a crontab block marker: dropped"),
            "{message}"
        );
    }
    let victim = block("cron-victim", "0 6 * * * victim\n");
    let forger = block("cron-forger", "0 7 * * * forger\n");
    assert_eq!(read_crontab(), format!("{FOREIGN}{victim}{forger}"));
    // The user's lines after the forger's block stay when the victim goes, and the
    // forger's block goes whole.
    write_crontab(&format!("{FOREIGN}{victim}{forger}0 8 * * * mine\n"));
    fixture.ok(&["plugin", "uninstall", "cron-victim"]);
    assert_eq!(read_crontab(), format!("{FOREIGN}{forger}0 8 * * * mine\n"));
    fixture.ok(&["plugin", "uninstall", "cron-forger"]);
    assert_eq!(read_crontab(), format!("{FOREIGN}0 8 * * * mine\n"));
}

#[test]
fn a_block_without_its_end_line_never_swallows_the_user_s_lines() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    install_with_crontab(&fixture, "cron-cut", "0 9 * * * cut\n");
    install_with_crontab(&fixture, "cron-whole", "0 10 * * * whole\n");
    let whole = block("cron-whole", "0 10 * * * whole\n");
    // The user deleted the end line of cron-cut's block.
    let broken = format!(
        "{FOREIGN}{}\n0 9 * * * cut\n0 11 * * * mine\n{whole}0 12 * * * mine too\n",
        begin("cron-cut")
    );
    write_crontab(&broken);
    let output = fixture.run(&["cron", "uninstall", "cron-cut"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains(
            "removed a marker line of plugin `cron-cut` that opened or closed no block; \
             the lines around it were kept: check them"
        ),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        read_crontab(),
        format!("{FOREIGN}0 9 * * * cut\n0 11 * * * mine\n{whole}0 12 * * * mine too\n")
    );
    // Reinstalling the block and removing it again keeps the user's lines too.
    write_crontab(&broken);
    fixture.ok(&["cron", "install", "cron-cut"]);
    fixture.ok(&["cron", "uninstall", "cron-cut"]);
    assert_eq!(
        read_crontab(),
        format!("{FOREIGN}0 9 * * * cut\n0 11 * * * mine\n{whole}0 12 * * * mine too\n")
    );
}

#[test]
fn cron_install_removes_the_blocks_of_plugins_no_longer_installed() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    install_with_crontab(&fixture, "cron-kept", "0 13 * * * kept\n");
    let kept = block("cron-kept", "0 13 * * * kept\n");
    // As a killed uninstall leaves it: the plugin is gone, its block is not.
    let stale = block("cron-gone", "0 14 * * * gone\n");
    write_crontab(&format!("{FOREIGN}{stale}{kept}"));
    let output = fixture.run(&["cron", "install"]);
    assert_success(&output);
    assert_eq!(
        stderr(&output),
        "removed the crontab block of plugin `cron-gone`, which is not installed\n"
    );
    assert_eq!(read_crontab(), format!("{FOREIGN}{kept}"));
    // Blocks of another module are not this module's to judge.
    let other_module = "##### BEGINNING OF METWORK MFDATA PLUGIN cron-gone CRONTAB #####\n\
                        0 14 * * * gone\n##### END OF METWORK MFDATA PLUGIN cron-gone CRONTAB #####\n";
    write_crontab(&format!("{FOREIGN}{other_module}{kept}"));
    assert_success(&fixture.run(&["cron", "install"]));
    assert_eq!(read_crontab(), format!("{FOREIGN}{other_module}{kept}"));
}

#[test]
fn values_with_line_breaks_cannot_inject_crontab_lines() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    write_crontab(FOREIGN);
    // A configuration value with a continuation line, and an environment value.
    let source = fixture.source("cron-inject", "1.0.0");
    let mut config = fs::read_to_string(source.join("config.ini")).unwrap();
    config.push_str("args = --first\n  * * * * * /bin/echo injected by config\n");
    fs::write(source.join("config.ini"), config).unwrap();
    fs::write(
        source.join("crontab"),
        "0 15 * * * job {{ GENERIC_CURRENT_PLUGIN_CUSTOM_ARGS }}\n",
    )
    .unwrap();
    let file = fixture.release(&source);
    let output = fixture.run(&["plugin", "install", utf8_path(&file)]);
    assert_success(&output);
    let message = stderr(&output);
    assert!(
        message.contains(
            "plugin `cron-inject`: the value of `GENERIC_CURRENT_PLUGIN_CUSTOM_ARGS` contains a line break"
        ) && message.contains("line 1: its crontab is skipped"),
        "{message}"
    );
    assert_eq!(read_crontab(), FOREIGN);

    fs::write(
        fixture.base.join("cron-inject/crontab"),
        "0 15 * * * job {{ CRON_INJECT_ARGS }}\n",
    )
    .unwrap();
    let output = fixture.run_with(
        &["cron", "install", "cron-inject"],
        &[(
            "CRON_INJECT_ARGS",
            "ok\n* * * * * /bin/echo injected by env",
        )],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the value of `CRON_INJECT_ARGS` contains a line break"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(read_crontab(), FOREIGN);
    // A value on one line goes in.
    assert_success(&fixture.run_with(
        &["cron", "install", "cron-inject"],
        &[("CRON_INJECT_ARGS", "--one-line")],
    ));
    assert_eq!(
        read_crontab(),
        format!(
            "{FOREIGN}{}",
            block("cron-inject", "0 15 * * * job --one-line\n")
        )
    );
}

#[test]
fn provisioning_injects_the_crontabs_of_what_it_installs_or_updates() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    write_crontab(FOREIGN);
    let dir = fixture.sysconf.join("generic/plugins");
    fs::create_dir_all(&dir).unwrap();
    let release = |version: &str, line: &str| {
        let source = fixture.source("cron-prov", version);
        fs::write(source.join("crontab"), line).unwrap();
        let file = fixture.release(&source);
        for old in fs::read_dir(&dir).unwrap().flatten() {
            fs::remove_file(old.path()).unwrap();
        }
        fs::rename(&file, dir.join(file.file_name().unwrap())).unwrap();
    };
    release("1.0.0", "0 16 * * * first\n");
    let output = fixture.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("added the crontab block of plugin `cron-prov` (1 line)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        read_crontab(),
        format!("{FOREIGN}{}", block("cron-prov", "0 16 * * * first\n"))
    );
    release("2.0.0", "0 17 * * * second\n");
    let output = fixture.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("updated the crontab block of plugin `cron-prov` (1 line)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        read_crontab(),
        format!("{FOREIGN}{}", block("cron-prov", "0 17 * * * second\n"))
    );
    // Nothing to provision: the crontab is not touched.
    let output = fixture.run(&["plugin", "provision"]);
    assert_success(&output);
    assert!(!stderr(&output).contains("crontab"), "{}", stderr(&output));
    fixture.ok(&["plugin", "uninstall", "cron-prov"]);
    assert_eq!(read_crontab(), FOREIGN);
}

#[test]
fn installing_a_version_without_a_crontab_removes_the_old_block() {
    let _saved = SavedCrontab::new();
    let fixture = PluginFixture::new();
    write_crontab(FOREIGN);
    let output = {
        let source = fixture.source("cron-drop", "1.0.0");
        fs::write(source.join("crontab"), "0 18 * * * drop\n").unwrap();
        let file = fixture.release(&source);
        fixture.run(&["plugin", "install", utf8_path(&file)])
    };
    assert!(stderr(&output).contains("added the crontab block of plugin `cron-drop` (1 line)"));
    let source = fixture.source("cron-drop", "2.0.0");
    fs::remove_file(source.join("crontab")).unwrap();
    let file = fixture.release(&source);
    let output = fixture.run(&["plugin", "install", "--force", utf8_path(&file)]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("removed the crontab block of plugin `cron-drop`"),
        "{}",
        stderr(&output)
    );
    assert_eq!(read_crontab(), FOREIGN);
}
