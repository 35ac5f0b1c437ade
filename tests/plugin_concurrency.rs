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
    assert_success(&output);
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
