//! `mfenv plugin provision --dry-run / --json / --detailed-exitcode`: a dry run changes
//! nothing (plugins, runtime home, crontab), the JSON report gives each file's outcome
//! and the crontab step's, and the exit statuses tell "nothing to do", "changed" and
//! "failed" apart. The crontab is a fake `crontab` command on PATH that logs its calls.

mod common;
mod plugin_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use plugin_support::*;

/// A plugin fixture with a fake `crontab` first on PATH.
struct Provisioning {
    plugins: PluginFixture,
    dir: PathBuf,
    path: String,
    crontab_file: PathBuf,
    crontab_log: PathBuf,
}

impl Provisioning {
    fn new() -> Self {
        let plugins = PluginFixture::new();
        let dir = plugins.sysconf.join("generic/plugins");
        fs::create_dir_all(&dir).unwrap();
        let fake_bin = plugins.root().join("fake-bin");
        fs::create_dir_all(&fake_bin).unwrap();
        let crontab_file = plugins.root().join("crontab.txt");
        let crontab_log = plugins.root().join("crontab.log");
        write_executable(
            &fake_bin.join("crontab"),
            &format!(
                "#!/bin/sh\nF='{}'\necho \"$*\" >> '{}'\nif [ \"$1\" = -l ]; then\n  [ -f \"$F\" ] && exec cat \"$F\"\n  echo 'no crontab for test' >&2; exit 1\nfi\ncat -- \"${{1:--}}\" > \"$F\"\n",
                crontab_file.display(),
                crontab_log.display()
            ),
        );
        fs::write(&crontab_file, "# the user's own line\n0 1 * * * true\n").unwrap();
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display());
        Provisioning {
            plugins,
            dir,
            path,
            crontab_file,
            crontab_log,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.plugins.run_with(args, &[("PATH", &self.path)])
    }

    /// Releases plugin `name` at `version` (with a crontab when asked) into the
    /// provisioning directory; returns the file.
    fn drop_file(&self, name: &str, version: &str, crontab: bool) -> PathBuf {
        let home = self.plugins.source(name, version);
        if crontab {
            fs::write(
                home.join("crontab"),
                "*/5 * * * * {{MFMODULE_RUNTIME_HOME}}/x\n",
            )
            .unwrap();
        }
        let file = self.plugins.release(&home);
        let target = self.dir.join(file.file_name().unwrap());
        fs::rename(&file, &target).unwrap();
        target
    }

    /// Installs plugin `name` at `version` directly (not through the directory).
    fn install(&self, name: &str, version: &str) {
        let file = self.plugins.released(name, version);
        let output = self.run(&["plugin", "install", utf8_path(&file)]);
        assert_success(&output);
        fs::remove_file(file).unwrap();
    }

    fn crontab_calls(&self) -> String {
        fs::read_to_string(&self.crontab_log).unwrap_or_default()
    }

    /// Everything a provisioning could change: the runtime home (plugins, overrides,
    /// state), the crontab.
    fn state(&self) -> (std::collections::BTreeMap<String, String>, String) {
        (
            snapshot(&self.plugins.runtime),
            fs::read_to_string(&self.crontab_file).unwrap(),
        )
    }
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|err| panic!("{err}: {}\n{}", stdout(output), stderr(output)))
}

/// The entries of the report by plugin name (`?` for unreadable files).
fn outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["name"].as_str().unwrap_or("?").to_owned(),
                entry["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn file_name(path: &Path) -> &str {
    path.file_name().unwrap().to_str().unwrap()
}

/// A directory with one plugin of each kind: new, newer than installed, the same as
/// installed, dev-linked, and a corrupt file.
fn every_outcome(setup: &Provisioning) {
    setup.install("beta", "1.0.0");
    setup.install("gamma", "1.0.0");
    let delta = setup.plugins.source("delta", "1.0.0");
    let delta_file = setup.plugins.release(&delta);
    fs::rename(&delta_file, setup.dir.join(file_name(&delta_file))).unwrap();
    let output = setup.run(&["plugin", "develop", utf8_path(&delta)]);
    assert_success(&output);
    setup.drop_file("alpha", "1.0.0", true);
    setup.drop_file("beta", "2.0.0", false);
    // gamma 1.0.0 again: the same build as installed (SOURCE_DATE_EPOCH is fixed).
    setup.drop_file("gamma", "1.0.0", false);
    fs::write(
        setup.dir.join("broken-1.0.0-1.metwork.generic.plugin"),
        "garbage",
    )
    .unwrap();
}

#[test]
fn a_dry_run_changes_nothing_and_reports_what_a_run_would_do() {
    let setup = Provisioning::new();
    every_outcome(&setup);
    let before = setup.state();
    let calls_before = setup.crontab_calls();

    let output = setup.run(&["plugin", "provision", "--dry-run", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(setup.state(), before, "a dry run wrote something");
    assert_eq!(
        setup.crontab_calls(),
        calls_before,
        "a dry run ran `crontab`"
    );
    let report = json(&output);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["changed"], true);
    assert_eq!(report["failed"], true);
    assert_eq!(
        outcomes(&report),
        [
            ("alpha".to_owned(), "installed".to_owned()),
            ("beta".to_owned(), "updated".to_owned()),
            ("?".to_owned(), "failed".to_owned()),
            ("delta".to_owned(), "dev-linked".to_owned()),
            ("gamma".to_owned(), "unchanged".to_owned()),
        ]
    );
    let beta = &report["plugins"][1];
    assert_eq!(beta["version"], "2.0.0");
    assert_eq!(beta["previous_version"], "1.0.0");
    assert!(
        report["plugins"][2]["error"]
            .as_str()
            .unwrap()
            .contains("broken-1.0.0-1.metwork.generic.plugin"),
        "{report}"
    );
    // alpha ships a crontab: the real run would update the crontab.
    assert_eq!(report["crontab"]["status"], "would-update");
    let message = stderr(&output);
    assert!(
        message.contains("would install plugin `alpha` 1.0.0-1"),
        "{message}"
    );
    assert!(
        message.contains("would update plugin `beta` to 2.0.0-1"),
        "{message}"
    );
    assert!(
        message.contains("failed for 1 of 5 plugin files"),
        "{message}"
    );

    // Without --json: the same messages, nothing on stdout, still nothing changed.
    let output = setup.run(&["plugin", "provision", "--dry-run"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("would install plugin `alpha`"));
    assert_eq!(setup.state(), before);
    assert_eq!(setup.crontab_calls(), calls_before);
}

#[test]
fn the_report_of_a_real_run_matches_its_dry_run_and_the_crontab_step_is_in_it() {
    let setup = Provisioning::new();
    every_outcome(&setup);
    let dry = json(&setup.run(&["plugin", "provision", "--dry-run", "--json"]));

    let output = setup.run(&["plugin", "provision", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["changed"], true);
    assert_eq!(report["failed"], true);
    assert_eq!(outcomes(&report), outcomes(&dry));
    assert_eq!(report["crontab"]["status"], "updated", "{report}");
    let crontab = fs::read_to_string(&setup.crontab_file).unwrap();
    assert!(
        crontab.starts_with("# the user's own line\n0 1 * * * true\n"),
        "{crontab}"
    );
    assert!(crontab.contains("/x\n"), "{crontab}");
    assert!(
        stderr(&output).contains("failed for 1 of 5 plugin files"),
        "{}",
        stderr(&output)
    );
    let listed = setup.plugins.ok(&["plugin", "list", "--raw"]);
    assert!(listed.contains("alpha~~~1.0.0~~~1~~~"), "{listed}");
    assert!(listed.contains("beta~~~2.0.0~~~1~~~"), "{listed}");

    // The broken file gone, the next run has nothing to do.
    fs::remove_file(setup.dir.join("broken-1.0.0-1.metwork.generic.plugin")).unwrap();
    let output = setup.run(&["plugin", "provision", "--json", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["changed"], false);
    assert_eq!(report["failed"], false);
    assert_eq!(report["crontab"], serde_json::Value::Null);
    assert_eq!(
        outcomes(&report),
        [
            ("alpha".to_owned(), "unchanged".to_owned()),
            ("beta".to_owned(), "unchanged".to_owned()),
            ("delta".to_owned(), "dev-linked".to_owned()),
            ("gamma".to_owned(), "unchanged".to_owned()),
        ]
    );
}

#[test]
fn detailed_exit_codes_tell_changed_nothing_to_do_and_failed_apart() {
    let setup = Provisioning::new();
    setup.drop_file("alpha", "1.0.0", false);
    // Plain runs keep exiting 0 when they change something.
    let output = setup.run(&["plugin", "provision", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Something would change: 3, and still nothing changed.
    let output = setup.run(&["plugin", "provision", "--dry-run", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(setup.plugins.ok(&["plugin", "list", "--raw"]).is_empty());
    // Something changed: 3.
    let output = setup.run(&["plugin", "provision", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(children(&setup.plugins.base), ["alpha"]);
    // Nothing to do: 0, in a dry run too.
    for args in [
        &["plugin", "provision", "--detailed-exitcode"][..],
        &["plugin", "provision", "--dry-run", "--detailed-exitcode"][..],
    ] {
        let output = setup.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    // A change and a failure: 1 (failure wins), the report tells what changed.
    setup.drop_file("beta", "1.0.0", false);
    fs::write(setup.dir.join("zzz-broken.plugin"), "garbage").unwrap();
    let output = setup.run(&["plugin", "provision", "--detailed-exitcode", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["changed"], true);
    assert_eq!(report["failed"], true);
    assert_eq!(
        outcomes(&report),
        [
            ("alpha".to_owned(), "unchanged".to_owned()),
            ("beta".to_owned(), "installed".to_owned()),
            ("?".to_owned(), "failed".to_owned()),
        ]
    );
    // A usage error stays 2, never read as "changed".
    let output = setup.run(&["plugin", "provision", "--no-such-option"]);
    assert_eq!(output.status.code(), Some(2));
    // No directory at all: nothing to do.
    let output = setup.run(&[
        "plugin",
        "provision",
        "--dir",
        "/nonexistent-dir",
        "--json",
        "--detailed-exitcode",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["plugins"], serde_json::json!([]));
}

#[test]
fn a_failed_crontab_step_fails_a_detailed_run_and_is_a_warning_otherwise() {
    let setup = Provisioning::new();
    // A crontab that cannot be rendered: an unknown placeholder.
    let home = setup.plugins.source("alpha", "1.0.0");
    fs::write(
        home.join("crontab"),
        "0 * * * * {{NO_SUCH_VARIABLE_ANYWHERE}}\n",
    )
    .unwrap();
    let file = setup.plugins.release(&home);
    fs::rename(&file, setup.dir.join(file_name(&file))).unwrap();
    let crontab_before = fs::read_to_string(&setup.crontab_file).unwrap();

    let output = setup.run(&["plugin", "provision", "--json", "--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(
        outcomes(&report),
        [("alpha".to_owned(), "installed".to_owned())]
    );
    assert_eq!(report["failed"], true);
    assert_eq!(report["crontab"]["status"], "failed", "{report}");
    assert_eq!(report["crontab"]["skipped"], serde_json::json!(["alpha"]));
    assert!(
        stderr(&output).contains("crontab was not updated"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        fs::read_to_string(&setup.crontab_file).unwrap(),
        crontab_before
    );

    // Plain mode: a warning, exit 0 (as before the report existed).
    assert_success(&setup.run(&["plugin", "uninstall", "alpha"]));
    let output = setup.run(&["plugin", "provision", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["crontab"]["status"], "failed");
    assert_eq!(report["failed"], true);
    assert!(stderr(&output).contains("warning"), "{}", stderr(&output));
}
