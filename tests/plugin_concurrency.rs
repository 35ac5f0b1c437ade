//! The plugin-management lock and atomic installs: concurrent installs, a lock held
//! too long, and `kill -9` in the middle of a big install.

mod common;
mod plugin_support;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use plugin_support::*;

#[test]
fn two_concurrent_installs_of_different_plugins_both_succeed() {
    let plugins = PluginFixture::new();
    let alpha = plugins.released("alpha", "1.0.0");
    let beta = plugins.released("beta", "1.0.0");
    let first = plugins
        .command(&["plugin", "install", utf8_path(&alpha)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = plugins
        .command(&["plugin", "install", utf8_path(&beta)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert_success(&first.wait_with_output().unwrap());
    assert_success(&second.wait_with_output().unwrap());
    assert_eq!(children(&plugins.base), ["alpha", "beta"]);
    let list = plugins.ok(&["plugin", "list", "--raw"]);
    assert!(list.starts_with("alpha~~~1.0.0~~~1~~~"), "{list}");
    assert!(list.contains("\nbeta~~~1.0.0~~~1~~~"), "{list}");
}

#[test]
fn a_lock_held_too_long_is_an_error_and_nothing_is_installed() {
    use nix::fcntl::{Flock, FlockArg};
    let plugins = PluginFixture::new();
    let file = plugins.released("alpha", "1.0.0");
    let lock_path = plugins.runtime.join("tmp/plugin_management_lock");
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock_file = fs::File::create(&lock_path).unwrap();
    fs::create_dir_all(plugins.sysconf.join("generic/plugins")).unwrap();
    let held = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();
    for args in [
        &["plugin", "install", utf8_path(&file)][..],
        &["plugin", "uninstall", "alpha"],
        &["plugin", "provision"],
    ] {
        let started = Instant::now();
        let output = plugins.run_with(args, &[("MFENV_LOCK_TIMEOUT", "0.3")]);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        let message = stderr(&output);
        assert!(
            message.contains(&format!(
                "cannot acquire the plugin management lock `{}` within 0.3 s",
                lock_path.display()
            )),
            "{message}"
        );
        assert!(
            message.contains(
                "another plugin install, uninstall, develop or provision, or a crontab edit (`mfenv cron`), is running"
            ),
            "{message}"
        );
    }
    assert!(
        children(&plugins.base).is_empty(),
        "{:?}",
        children(&plugins.base)
    );
    drop(held);
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
}

/// Counts the files below `dir`.
fn count_files(dir: &Path) -> usize {
    let mut count = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            count += count_files(&entry.path());
        } else {
            count += 1;
        }
    }
    count
}

#[test]
fn killing_an_install_leaves_nothing_or_the_whole_plugin() {
    let plugins = PluginFixture::new();
    // Crafted directly: writing 20,000 source files first would double the test time.
    let names: Vec<String> = (0..100)
        .flat_map(|directory| {
            (0..200).map(move |file| format!("metwork_plugin/data/d{directory:03}/f{file:03}"))
        })
        .collect();
    let members = valid_members("big");
    let mut entries: Vec<Crafted<'_>> = members
        .iter()
        .map(|(name, data)| Crafted::File(name.as_str(), data.as_slice()))
        .collect();
    entries.extend(
        names
            .iter()
            .map(|name| Crafted::File(name.as_str(), b"some data\n")),
    );
    let expected_files = entries.len();
    let file = plugins.work.join("big-1.0.0-1.metwork.generic.plugin");
    craft_archive(&file, &entries);

    let mut child = plugins
        .command(&["plugin", "install", utf8_path(&file)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill as soon as the extraction has started (or when the install is over).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let staging = children(&plugins.base)
            .into_iter()
            .find(|name| name.starts_with(".mfenv-tmp-"));
        let started = staging.is_some_and(|name| {
            plugins
                .base
                .join(name)
                .join("metwork_plugin/data/d001")
                .exists()
        });
        if started || child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();

    let visible: Vec<String> = children(&plugins.base)
        .into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect();
    match visible.as_slice() {
        [] => {}
        [name] if name == "big" => {
            assert_eq!(count_files(&plugins.base.join("big")), expected_files);
        }
        other => panic!("unexpected entries after the kill: {other:?}"),
    }
    let listed = plugins.ok(&["plugin", "list", "--raw"]);
    assert!(
        listed.is_empty() || listed.starts_with("big~~~1.0.0~~~1~~~"),
        "{listed}"
    );
    // Layer discovery does not see a half-extracted tree either.
    let output = plugins.run(&["layers", "--raw"]);
    // With nothing to list, `layers` fails saying what is wrong with the layers path.
    assert!(
        output.status.success() || stderr(&output).contains("LAYERAPI2_LAYERS_PATH"),
        "{}",
        stderr(&output)
    );
    assert!(
        stdout(&output)
            .lines()
            .all(|line| !line.contains(".mfenv-tmp-")),
        "{}",
        stdout(&output)
    );

    // The next install succeeds and cleans the leftovers.
    plugins.ok(&["plugin", "install", "--force", utf8_path(&file)]);
    assert_eq!(children(&plugins.base), ["big"]);
    assert_eq!(count_files(&plugins.base.join("big")), expected_files);
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("big~~~1.0.0~~~1~~~")
    );
}

/// Releases plugin `foo` at `version` with a postinstall that writes its process group
/// to `markers/pgid`, starts a child in the background that lives `seconds`, waits for
/// it, then marks the plugin home.
fn released_with_postinstall(
    plugins: &PluginFixture,
    version: &str,
    markers: &Path,
    seconds: &str,
) -> std::path::PathBuf {
    let home = plugins.source("foo", version);
    write_executable(
        &home.join("postinstall"),
        &format!(
            "#!/bin/sh\necho $$ > '{}/pgid'\nsleep {seconds} &\nwait\necho done > postinstall.done\n",
            markers.display()
        ),
    );
    plugins.release(&home)
}

/// Waits for the postinstall to write its process group.
fn wait_for_pgid(markers: &Path, child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(pgid) = fs::read_to_string(markers.join("pgid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return Some(pgid);
        }
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

/// True once process `pid` is gone or a zombie.
fn is_dead(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        let state = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .next()
            .unwrap_or("Z")
            .to_owned();
        state == "Z" || state == "X"
    })
}

#[test]
fn killing_mfenv_while_the_postinstall_runs_puts_the_old_version_back_and_kills_its_processes() {
    let plugins = PluginFixture::new();
    let markers = plugins.root().join("markers");
    let nothing = plugins.root().join("nothing-to-provision");
    fs::create_dir_all(&markers).unwrap();
    fs::create_dir_all(&nothing).unwrap();
    let old = plugins.released("foo", "1.0.0");
    let new = released_with_postinstall(&plugins, "2.0.0", &markers, "30");
    plugins.ok(&["plugin", "install", utf8_path(&old)]);
    let before = snapshot(&plugins.base);
    let mut random = Random::new();
    for round in 0..12 {
        let _ = fs::remove_file(markers.join("pgid"));
        let mut child = plugins
            .command(&["plugin", "install", "--force", utf8_path(&new)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pgid = wait_for_pgid(&markers, &mut child).expect("the postinstall started");
        std::thread::sleep(Duration::from_millis(random.below(40)));
        child.kill().unwrap();
        child.wait().unwrap();
        let case = format!("round {round}, seed {}", random.seed);
        // The postinstall's leader dies with mfenv (parent-death signal).
        let deadline = Instant::now() + Duration::from_secs(5);
        while !is_dead(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(is_dead(pgid), "the postinstall outlived mfenv ({case})");

        // The next plugin operation rolls back and kills what the postinstall started.
        let output = plugins.run(&["plugin", "provision", "--dir", utf8_path(&nothing)]);
        assert_success(&output);
        assert!(
            stderr(&output).contains("an interrupted install of plugin `foo` was rolled back"),
            "{case}: {}",
            stderr(&output)
        );
        assert!(
            !process_group_is_running(pgid),
            "the postinstall's processes survive ({case})"
        );
        assert_eq!(snapshot(&plugins.base), before, "{case}");
    }
    assert!(
        plugins
            .ok(&["plugin", "list", "--raw"])
            .starts_with("foo~~~1.0.0~~~1~~~")
    );
}

#[test]
fn killing_a_forced_install_at_any_moment_leaves_one_complete_version() {
    let plugins = PluginFixture::new();
    let markers = plugins.root().join("markers");
    let nothing = plugins.root().join("nothing-to-provision");
    fs::create_dir_all(&markers).unwrap();
    fs::create_dir_all(&nothing).unwrap();
    let old = plugins.released("foo", "1.0.0");
    let new = released_with_postinstall(&plugins, "2.0.0", &markers, "0.05");
    plugins.ok(&["plugin", "install", utf8_path(&old)]);
    let old_tree = snapshot(&plugins.base);
    let started = Instant::now();
    plugins.ok(&["plugin", "install", "--force", utf8_path(&new)]);
    let full_install = started.elapsed();
    let new_tree = snapshot(&plugins.base);
    assert_ne!(old_tree, new_tree);

    let mut random = Random::new();
    let (mut old_kept, mut new_kept) = (0, 0);
    for round in 0..30 {
        // Two rounds out of three take the two-rename path of file systems without
        // RENAME_EXCHANGE.
        let knob: &[(&str, &str)] = if round % 3 == 2 {
            &[]
        } else {
            &[("MFENV_NO_RENAME_EXCHANGE", "1")]
        };
        let output = plugins.run_with(&["plugin", "install", "--force", utf8_path(&old)], knob);
        assert_success(&output);
        assert_eq!(snapshot(&plugins.base), old_tree);
        let _ = fs::remove_file(markers.join("pgid"));
        let mut command = plugins.command(&["plugin", "install", "--force", utf8_path(&new)]);
        for (name, value) in knob {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = random.below(full_install.as_micros() as u64 * 6 / 5);
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        child.wait().unwrap();
        let case = format!("round {round}, kill after {delay} µs, seed {}", random.seed);

        let output = plugins.run_with(&["plugin", "provision", "--dir", utf8_path(&nothing)], knob);
        assert_success(&output);
        let tree = snapshot(&plugins.base);
        if tree == old_tree {
            old_kept += 1;
        } else if tree == new_tree {
            new_kept += 1;
        } else {
            panic!("neither the old nor the new version ({case}): {tree:#?}");
        }
        if let Some(pgid) = fs::read_to_string(markers.join("pgid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            assert!(
                !process_group_is_running(pgid),
                "the postinstall's processes survive ({case})"
            );
        }
    }
    eprintln!("old version kept {old_kept} times, new version {new_kept} times");
}

#[test]
fn killing_a_develop_during_its_postinstall_removes_the_link_and_keeps_the_source_tree() {
    let plugins = PluginFixture::new();
    let markers = plugins.root().join("markers");
    let nothing = plugins.root().join("nothing-to-provision");
    fs::create_dir_all(&markers).unwrap();
    fs::create_dir_all(&nothing).unwrap();
    let home = plugins.source("foo", "1.0.0");
    write_executable(
        &home.join("postinstall"),
        &format!(
            "#!/bin/sh\necho $$ > '{}/pgid'\nsleep 30 &\nwait\n",
            markers.display()
        ),
    );
    let source = snapshot(&home);
    let mut random = Random::new();
    for round in 0..5 {
        let _ = fs::remove_file(markers.join("pgid"));
        let mut child = plugins
            .command(&["plugin", "develop", utf8_path(&home)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pgid = wait_for_pgid(&markers, &mut child).expect("the postinstall started");
        std::thread::sleep(Duration::from_millis(random.below(30)));
        child.kill().unwrap();
        child.wait().unwrap();
        let output = plugins.run(&["plugin", "provision", "--dir", utf8_path(&nothing)]);
        assert_success(&output);
        let case = format!("round {round}, seed {}", random.seed);
        assert!(!process_group_is_running(pgid), "{case}");
        assert!(
            children(&plugins.base).is_empty(),
            "{case}: {:?}",
            children(&plugins.base)
        );
        assert_eq!(snapshot(&home), source, "{case}");
    }
}

#[test]
fn killing_an_uninstall_at_any_moment_leaves_the_whole_plugin_or_nothing() {
    let plugins = PluginFixture::new();
    let nothing = plugins.root().join("nothing-to-provision");
    fs::create_dir_all(&nothing).unwrap();
    let names: Vec<String> = (0..10)
        .flat_map(|directory| {
            (0..100).map(move |file| format!("metwork_plugin/data/d{directory:02}/f{file:03}"))
        })
        .collect();
    let members = valid_members("big");
    let mut entries: Vec<Crafted<'_>> = members
        .iter()
        .map(|(name, data)| Crafted::File(name.as_str(), data.as_slice()))
        .collect();
    entries.extend(
        names
            .iter()
            .map(|name| Crafted::File(name.as_str(), b"data\n")),
    );
    let file = plugins.work.join("big-1.0.0-1.metwork.generic.plugin");
    craft_archive(&file, &entries);
    plugins.ok(&["plugin", "install", utf8_path(&file)]);
    let installed = snapshot(&plugins.base);
    let started = Instant::now();
    plugins.ok(&["plugin", "uninstall", "big"]);
    let full_uninstall = started.elapsed();

    let mut random = Random::new();
    for round in 0..12 {
        if children(&plugins.base).is_empty() {
            plugins.ok(&["plugin", "install", utf8_path(&file)]);
        }
        let mut child = plugins
            .command(&["plugin", "uninstall", "big"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = random.below(full_uninstall.as_micros() as u64 * 6 / 5);
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        child.wait().unwrap();
        let case = format!("round {round}, kill after {delay} µs, seed {}", random.seed);
        let visible = plugins.ok(&["plugin", "list", "--raw"]);
        assert!(
            visible.is_empty() || visible.starts_with("big~~~1.0.0~~~1~~~"),
            "{case}: {visible}"
        );
        if !visible.is_empty() {
            assert_eq!(
                count_files(&plugins.base.join("big")),
                entries.len(),
                "{case}"
            );
        }
        let output = plugins.run(&["plugin", "provision", "--dir", utf8_path(&nothing)]);
        assert_success(&output);
        let after = snapshot(&plugins.base);
        assert!(after.is_empty() || after == installed, "{case}");
    }
}

#[test]
fn sigterm_or_sigint_during_the_postinstall_rolls_back_at_once() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let plugins = PluginFixture::new();
    let markers = plugins.root().join("markers");
    fs::create_dir_all(&markers).unwrap();
    let old = plugins.released("foo", "1.0.0");
    let new = released_with_postinstall(&plugins, "2.0.0", &markers, "30");
    plugins.ok(&["plugin", "install", utf8_path(&old)]);
    let before = snapshot(&plugins.base);
    let mut random = Random::new();
    for (round, signal) in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]
        .into_iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let _ = fs::remove_file(markers.join("pgid"));
        let mut child = plugins
            .command(&["plugin", "install", "--force", utf8_path(&new)])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pgid = wait_for_pgid(&markers, &mut child).expect("the postinstall started");
        std::thread::sleep(Duration::from_millis(random.below(30)));
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let output = child.wait_with_output().unwrap();
        let case = format!("round {round}, {signal}, seed {}", random.seed);
        assert_eq!(output.status.code(), Some(1), "{case}");
        let message = stderr(&output);
        assert!(
            message.contains(&format!(
                "the install of plugin `foo` was interrupted ({})",
                signal.as_str()
            )),
            "{case}: {message}"
        );
        assert!(
            message.contains("the previous installation was put back"),
            "{case}: {message}"
        );
        assert!(stdout(&output).is_empty());
        // At once: no other plugin operation ran.
        assert!(!process_group_is_running(pgid), "{case}");
        assert_eq!(snapshot(&plugins.base), before, "{case}");
    }
}
