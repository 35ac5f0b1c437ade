//! The commands that report on the set-up, run as the real binary on fixture trees:
//! `mfenv man` (roff into a pipe, the formatted page on a real terminal through `script`
//! and `man`, every page installed and cross-referenced), `mfenv provides` and
//! `mfenv search` (text and `--json`), and each check of `mfenv doctor` with a failing
//! and a passing case (real shells evaluating the hook, a real daemon supervisor).

mod common;
mod plugin_support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use plugin_support::*;
use serde_json::Value;

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// POSIX single quotes.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// What a terminal shows once overstrike bold (`N\bN`) and carriage returns are removed.
fn plain_terminal_text(bytes: &[u8]) -> String {
    let raw = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in raw.chars() {
        match c {
            '\u{8}' => {
                out.pop();
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    // ANSI sequences, when man uses them instead of overstrike.
    let mut cleaned = String::new();
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            cleaned.push(c);
        }
    }
    cleaned
}

// ---------------------------------------------------------------------------------------
// mfenv man
// ---------------------------------------------------------------------------------------

#[test]
fn man_prints_the_roff_source_when_stdout_is_not_a_terminal() {
    let fixture = Fixture::new();
    let output = fixture.run(&["man"]);
    assert_success(&output);
    let page = stdout(&output);
    assert!(page.contains(".TH mfenv 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    let output = fixture.run(&["man", "plugin", "install"]);
    assert_success(&output);
    assert!(stdout(&output).contains(".TH mfenv-plugin-install 1"));
}

#[test]
fn man_shows_the_formatted_page_on_a_terminal() {
    let script = require_program("script");
    require_program("man");
    let fixture = Fixture::new();
    let command = format!("{} man provides", quoted(text(&mfenv_binary())));
    let output = fixture
        .command(&[])
        .env("SHELL", "/bin/sh")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .output_of(&script, &["-qec", &command, "/dev/null"]);
    assert_success(&output);
    let shown = plain_terminal_text(&output.stdout);
    assert!(
        shown.contains("mfenv-provides(1)") && shown.contains("NAME") && shown.contains("SYNOPSIS"),
        "not a formatted page:\n{shown}"
    );
    assert!(
        !shown.contains(".TH") && !shown.contains(".SH"),
        "roff shown raw:\n{shown}"
    );
}

#[test]
fn man_on_a_terminal_without_man_shows_the_help_text() {
    let script = require_program("script");
    let fixture = Fixture::new();
    let empty = fixture.path().join("empty-bin");
    fs::create_dir_all(&empty).unwrap();
    let command = format!("{} man doctor", quoted(text(&mfenv_binary())));
    let output = fixture
        .command(&[])
        .env("SHELL", "/bin/sh")
        .env("PATH", &empty)
        .stdin(Stdio::null())
        .output_of(&script, &["-qec", &command, "/dev/null"]);
    assert_success(&output);
    let shown = plain_terminal_text(&output.stdout);
    assert!(
        shown.contains("`man` is not installed") && shown.contains("Usage: mfenv doctor"),
        "{shown}"
    );
}

#[test]
fn man_of_an_unknown_command_is_a_usage_error() {
    let fixture = Fixture::new();
    let output = fixture.run(&["man", "nope"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("no manual page for `mfenv nope`"));
}

/// The page names (`mfenv-plugin-install`) a roff page refers to as `NAME(1)`.
fn references(roff: &str) -> BTreeSet<String> {
    let unescaped = roff.replace("\\-", "-");
    let mut names = BTreeSet::new();
    for (index, _) in unescaped.match_indices("(1)") {
        let before = &unescaped[..index];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[start..];
        if name.starts_with("mfenv") {
            names.insert(name.to_owned());
        }
    }
    names
}

#[test]
fn man_install_writes_one_page_per_command_and_no_page_names_a_missing_one() {
    let fixture = Fixture::new();
    let mandir = fixture.path().join("man");
    let output = fixture.run(&["man", "--install", text(&mandir)]);
    assert_success(&output);
    let written: BTreeSet<String> = fs::read_dir(mandir.join("man1"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let listed: Vec<String> = stdout(&output)
        .lines()
        .map(|line| {
            Path::new(line)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), written);
    let names = stdout(&fixture.run(&["man", "--list"]));
    let expected: BTreeSet<String> = names.lines().map(|name| format!("{name}.1")).collect();
    assert_eq!(written, expected);
    for page in [
        "mfenv.1",
        "mfenv-load.1",
        "mfenv-plugin-install.1",
        "mfenv-plugin-bootstrap-create.1",
        "mfenv-daemons-status.1",
        "mfenv-provides.1",
        "mfenv-search.1",
        "mfenv-doctor.1",
        "mfenv-man.1",
    ] {
        assert!(written.contains(page), "{page} missing from {written:?}");
    }
    assert!(
        !written
            .iter()
            .any(|page| page.contains("help") || page.contains("complete"))
    );
    let mut referenced = BTreeSet::new();
    for page in &written {
        let roff = fs::read_to_string(mandir.join("man1").join(page)).unwrap();
        for name in references(&roff) {
            assert!(
                written.contains(&format!("{name}.1")),
                "{page} refers to {name}(1), which is not generated"
            );
            referenced.insert(name);
        }
    }
    assert!(
        referenced.contains("mfenv-plugin-install"),
        "{referenced:?}"
    );
    // man finds them there.
    require_program("man");
    let found = Command::new("man")
        .arg("-M")
        .arg(&mandir)
        .args(["-w", "mfenv-doctor"])
        .output()
        .unwrap();
    assert_success(&found);
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).trim(),
        text(&mandir.join("man1/mfenv-doctor.1"))
    );
}

#[test]
fn man_install_defaults_to_the_user_manual_directory() {
    let fixture = Fixture::new();
    let output = fixture.run(&["man", "--install"]);
    assert_success(&output);
    let page = fixture.path().join("home/.local/share/man/man1/mfenv.1");
    assert!(page.is_file(), "{}", stdout(&output));
    assert!(stdout(&output).lines().any(|line| line == text(&page)));
    assert!(stderr(&output).contains("MANPATH"));
}

// ---------------------------------------------------------------------------------------
// mfenv provides / mfenv search
// ---------------------------------------------------------------------------------------

fn make_executable(path: &Path, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, "#!/bin/sh\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn provides_lists_the_layers_holding_the_command_in_bin_or_local_bin() {
    let mut fixture = Fixture::new();
    fixture.add_entry("more");
    let alpha = fixture.layer(LayerSpec::new("alpha", "alpha@t"));
    let beta = fixture.layer(LayerSpec::new("beta", "beta@t"));
    fixture.layer(LayerSpec::new("gamma", "gamma@t"));
    let delta = fixture.layer_in(1, LayerSpec::new("delta", "delta@t"));
    make_executable(&alpha.join("bin/tool"), 0o755);
    make_executable(&beta.join("local/bin/tool"), 0o755);
    make_executable(&delta.join("bin/tool"), 0o644);
    fs::create_dir_all(alpha.join("bin/dir-not-tool")).unwrap();
    let mut loaded = std::collections::BTreeMap::new();
    loaded.insert(marker_name(text(&alpha)), "1".to_owned());

    let output = fixture.run_with(&["provides", "tool"], &loaded);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "alpha@t  {}/bin/tool  (loaded)\nbeta@t   {}/local/bin/tool\ndelta@t  {}/bin/tool  (not executable)\n",
            text(&alpha),
            text(&beta),
            text(&delta)
        )
    );

    let output = fixture.run_with(&["provides", "--json", "tool"], &loaded);
    assert_success(&output);
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"label": "alpha@t", "home": text(&alpha), "path": format!("{}/bin/tool", text(&alpha)), "executable": true, "loaded": true},
            {"label": "beta@t", "home": text(&beta), "path": format!("{}/local/bin/tool", text(&beta)), "executable": true, "loaded": false},
            {"label": "delta@t", "home": text(&delta), "path": format!("{}/bin/tool", text(&delta)), "executable": false, "loaded": false},
        ])
    );
}

#[test]
fn provides_finds_plugin_layers_of_the_plugins_base_dir() {
    let fx = PluginFixture::new();
    let home = fx.source("foo", "1.0.0");
    fx.ok(&["plugin", "develop", text(&home)]);
    let output = fx.run(&["provides", "foo_hello"]);
    assert_success(&output);
    assert!(
        stdout(&output).starts_with("plugin_foo@generic  ")
            && stdout(&output).contains("/foo/bin/foo_hello"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn provides_fails_cleanly_when_no_layer_holds_the_command() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("alpha", "alpha@t"));
    for json in [false, true] {
        let mut args = vec!["provides", "nothing-here"];
        if json {
            args.push("--json");
        }
        let output = fixture.run(&args);
        assert_eq!(output.status.code(), Some(1));
        assert!(output.stdout.is_empty());
        assert!(stderr(&output).contains("no installed layer provides `nothing-here`"));
    }
    let output = fixture.run(&["provides", "../bin/sh"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[test]
fn search_matches_labels_and_descriptions_case_insensitively() {
    let fixture = Fixture::new();
    let python = fixture.layer(LayerSpec::new("python3", "python3@mfext"));
    fs::write(
        python.join(".layerapi2_description"),
        "\n  Python 3 Interpreter and standard library  \nmore text\n",
    )
    .unwrap();
    let tools = fixture.layer(LayerSpec::new("tools", "tools@mfext"));
    fixture.layer(LayerSpec::new("other", "other@mfext"));

    let output = fixture.run(&["search", "PYTHON"]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "python3@mfext [{}]\n    Python 3 Interpreter and standard library\n",
            text(&python)
        )
    );
    // Every word must match, in the label or the description.
    let output = fixture.run(&["search", "interpreter", "python3@"]);
    assert_success(&output);
    assert!(stdout(&output).starts_with("python3@mfext"));
    let output = fixture.run(&["search", "interpreter", "tools"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());

    let output = fixture.run(&["search", "--json", "mfext"]);
    assert_success(&output);
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let labels: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["other@mfext", "python3@mfext", "tools@mfext"]);
    assert_eq!(
        json[2],
        serde_json::json!({"label": "tools@mfext", "home": text(&tools), "description": null, "loaded": false})
    );
    assert_eq!(
        json[1]["description"],
        "Python 3 Interpreter and standard library"
    );
}

#[test]
fn search_reads_an_installed_plugin_summary_and_fails_cleanly_on_no_match() {
    let fx = PluginFixture::new();
    let file = fx.released("foo", "1.0.0");
    fx.ok(&["plugin", "install", text(&file)]);
    let output = fx.run(&["search", "for tests"]);
    assert_success(&output);
    assert!(
        stdout(&output).starts_with("plugin_foo@generic [")
            && stdout(&output).contains("\n    plugin for tests\n"),
        "{}",
        stdout(&output)
    );
    let output = fx.run(&["search", "--json", "zzz-nothing"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(stderr(&output).contains("no installed layer matches `zzz-nothing`"));
}

// ---------------------------------------------------------------------------------------
// mfenv doctor
// ---------------------------------------------------------------------------------------

/// `mfenv doctor --json` with `extra` variables: (exit code, report).
fn doctor(command: Command) -> (i32, Value) {
    let mut command = command;
    let output = command.output().expect("run mfenv doctor");
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", stdout(&output)));
    (output.status.code().unwrap(), report)
}

/// The checks of `report` named `name`: (status, message, hint).
fn named(report: &Value, name: &str) -> Vec<(String, String, Option<String>)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["name"] == name)
        .map(|check| {
            (
                check["status"].as_str().unwrap().to_owned(),
                check["message"].as_str().unwrap().to_owned(),
                check["hint"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn statuses(report: &Value, name: &str) -> Vec<String> {
    named(report, name).into_iter().map(|(s, _, _)| s).collect()
}

/// The hook marker as the hook of `shell` exports it, for this test process as parent.
fn hook_marker(shell: &str) -> String {
    format!("{shell}:{}:{}", std::process::id(), text(&mfenv_binary()))
}

/// A fixture where every check passes: layers, the hook of this process, python.
fn sound_fixture() -> Fixture {
    let mut fixture = Fixture::new();
    let python = fixture.layer(LayerSpec::new("python3", "python3@mfext"));
    fs::create_dir_all(python.join("lib/python3.11/site-packages")).unwrap();
    fixture.layer(LayerSpec::new("tools", "tools@mfext"));
    fixture
        .env
        .insert("PYTHON3_SHORT_VERSION".into(), "3.11".into());
    fixture.env.insert("SHELL".into(), "/bin/bash".into());
    fixture
        .env
        .insert("__MFENV_HOOK".into(), hook_marker("bash"));
    fixture
}

fn doctor_json(fixture: &Fixture) -> (i32, Value) {
    doctor(fixture.command(&["doctor", "--json"]))
}

#[test]
fn doctor_passes_on_a_sound_set_up_with_one_line_per_check() {
    let fixture = sound_fixture();
    let (code, report) = doctor_json(&fixture);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["problems"], 0);
    assert_eq!(report["warnings"], 0);
    let checks = report["checks"].as_array().unwrap();
    for check in checks {
        assert_eq!(check["status"], "ok", "{check}");
        let keys: BTreeSet<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["name", "status", "message", "hint"]));
    }
    let names: BTreeSet<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in [
        "layers_path",
        "duplicate_labels",
        "hook",
        "hook_binary",
        "python3",
        "plugins_base_dir",
        "runtime_dir",
        "crontab",
        "supervisor",
    ] {
        assert!(names.contains(name), "{name} not checked: {names:?}");
    }
    let output = fixture.run(&["doctor"]);
    assert_success(&output);
    let report = stdout(&output);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), checks.len() + 1, "{report}");
    assert!(
        lines[..checks.len()]
            .iter()
            .all(|line| line.starts_with("ok ")),
        "{report}"
    );
    assert_eq!(lines.last(), Some(&"no problem found"));
}

#[test]
fn doctor_reports_each_bad_layers_path_entry_with_a_hint() {
    let mut fixture = sound_fixture();
    let empty = fixture.add_entry("empty");
    let dup = fixture.add_entry("dup");
    fixture.layer_in(2, LayerSpec::new("tools", "tools@mfext"));
    let broken = fixture.entries[0].join("broken");
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join(".layerapi2_label"), "\n").unwrap();
    // An unusable layer in a later entry does not make the first one reported twice.
    let broken_too = empty.join("broken-too");
    fs::create_dir_all(&broken_too).unwrap();
    fs::write(broken_too.join(".layerapi2_label"), "a\nb\n").unwrap();
    let path = format!(
        "{}:relative/dir::/does/not/exist:{}:{}:{}",
        fixture.layers_path(),
        text(&empty),
        text(&fixture.entries[0]),
        text(&dup)
    );
    fixture.env.insert("LAYERAPI2_LAYERS_PATH".into(), path);
    let (code, report) = doctor_json(&fixture);
    assert_eq!(code, 1);
    let checks = named(&report, "layers_path");
    let find = |needle: &str| {
        checks
            .iter()
            .find(|(_, message, _)| message.contains(needle))
            .unwrap_or_else(|| panic!("no check says {needle:?}: {checks:#?}"))
            .clone()
    };
    let (status, _, hint) = find("`relative/dir` is not an absolute path");
    assert_eq!(status, "problem");
    assert!(hint.unwrap().contains("absolute"));
    assert_eq!(find("an empty entry").0, "problem");
    assert_eq!(find("`/does/not/exist` does not exist").0, "problem");
    assert_eq!(
        find(&format!("`{}` holds no layer", text(&empty))).0,
        "problem"
    );
    assert_eq!(find("is listed twice").0, "warning");
    assert_eq!(
        find(&format!("`{}` holds 2 layers", text(&fixture.entries[0]))).0,
        "ok"
    );
    let duplicates = named(&report, "duplicate_labels");
    assert_eq!(duplicates.len(), 1, "{duplicates:#?}");
    assert!(duplicates[0].1.contains("`tools@mfext`") && duplicates[0].0 == "problem");
    let unusable = named(&report, "layers");
    assert!(
        unusable.len() == 2
            && unusable[0].1.contains(text(&broken))
            && unusable[1].1.contains(text(&broken_too)),
        "{unusable:#?}"
    );
    // In text: the problem line, then its hint.
    let output = fixture.run(&["doctor"]);
    assert_eq!(output.status.code(), Some(1));
    let report = stdout(&output);
    let line = report
        .lines()
        .position(|line| line.contains("`relative/dir` is not an absolute path"))
        .expect("the relative entry is reported");
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[line].starts_with("PROBLEM  layers path: "),
        "{report}"
    );
    assert!(
        lines[line + 1].trim_start().starts_with("hint: "),
        "{report}"
    );
}

#[test]
fn doctor_reports_an_unset_layers_path() {
    let fixture = sound_fixture();
    let mut command = fixture.command(&["doctor", "--json"]);
    command.env_remove("LAYERAPI2_LAYERS_PATH");
    let (code, report) = doctor(command);
    assert_eq!(code, 1);
    assert_eq!(statuses(&report, "layers_path"), ["problem"]);
}

#[test]
fn doctor_sees_the_hook_evaluated_by_each_real_shell() {
    let fixture = sound_fixture();
    let binary = quoted(text(&mfenv_binary()));
    // zsh, dash and fish run a last `true`, so that mfenv is their child; bash runs
    // mfenv in its own place (same pid), which counts as this shell too.
    for (shell, program, options, script) in [
        (
            "bash",
            "bash",
            &["--norc", "--noprofile"][..],
            format!("eval \"$({binary} hook bash)\"; {binary} doctor --json"),
        ),
        (
            "zsh",
            "zsh",
            &["-f"][..],
            format!("eval \"$({binary} hook zsh)\"; {binary} doctor --json; true"),
        ),
        (
            "sh",
            "dash",
            &[][..],
            format!("eval \"$({binary} hook sh)\"; {binary} doctor --json; true"),
        ),
        (
            "fish",
            "fish",
            &["--no-config"][..],
            format!("{binary} hook fish | source; {binary} doctor --json; true"),
        ),
    ] {
        let mut command = Command::new(require_program(program));
        command
            .env_clear()
            .envs(fixture.base_env())
            .env_remove("__MFENV_HOOK")
            .args(options);
        command.args(["-c", &script]);
        let (_, report) = doctor(command);
        let hook = named(&report, "hook");
        assert_eq!(hook.len(), 1);
        assert_eq!(hook[0].0, "ok", "{shell}: {hook:?}");
        assert!(
            hook[0].1.contains(&format!("this {shell} shell")),
            "{hook:?}"
        );
        assert_eq!(statuses(&report, "hook_binary"), ["ok"], "{shell}");
    }
}

#[test]
fn doctor_explains_a_missing_or_stale_hook() {
    let fixture = sound_fixture();
    let home = fixture.path().join("home");
    let run = |marker: Option<String>| {
        let mut command = fixture.command(&["doctor", "--json"]);
        match marker {
            Some(marker) => command.env("__MFENV_HOOK", marker),
            None => command.env_remove("__MFENV_HOOK"),
        };
        doctor(command)
    };
    // No hook, and ~/.bashrc does not set it up.
    let (code, report) = run(None);
    assert_eq!(code, 1);
    let hook = named(&report, "hook");
    assert_eq!(hook[0].0, "problem");
    assert!(hook[0].1.contains("not set up"), "{hook:?}");
    assert!(
        hook[0]
            .2
            .as_deref()
            .unwrap()
            .contains("eval \"$(mfenv hook bash)\"")
    );
    // ~/.bashrc sets it up, but this shell did not evaluate it.
    fs::write(
        home.join(".bashrc"),
        "# mfenv hook bash\neval \"$(mfenv hook bash)\"\n",
    )
    .unwrap();
    let (_, report) = run(None);
    let hook = named(&report, "hook");
    assert!(
        hook[0].0 == "problem" && hook[0].1.contains("though"),
        "{hook:?}"
    );
    // Evaluated by another shell than mfenv's parent: a warning only.
    let (code, report) = run(Some(format!("bash:1:{}", text(&mfenv_binary()))));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(statuses(&report, "hook"), ["warning"]);
    // The binary the hook calls is gone.
    let gone = fixture.path().join("old/mfenv");
    let (code, report) = run(Some(format!("bash:{}:{}", std::process::id(), text(&gone))));
    assert_eq!(code, 1);
    assert_eq!(statuses(&report, "hook_binary"), ["problem"]);
    // Another mfenv binary: a warning.
    let other = fixture.path().join("other/mfenv");
    make_executable(&other, 0o755);
    let (_, report) = run(Some(format!(
        "bash:{}:{}",
        std::process::id(),
        text(&other)
    )));
    assert_eq!(statuses(&report, "hook_binary"), ["warning"]);
}

#[test]
fn doctor_checks_that_zshrc_runs_compinit_on_either_side_of_the_hook() {
    let mut fixture = sound_fixture();
    fixture.env.insert("SHELL".into(), "/usr/bin/zsh".into());
    fixture
        .env
        .insert("__MFENV_HOOK".into(), hook_marker("zsh"));
    let zshrc = fixture.path().join("home/.zshrc");
    let hook = "eval \"$(mfenv hook zsh)\"\n";
    let compinit = "autoload -Uz compinit && compinit\n";
    for (content, status) in [
        (format!("{hook}{compinit}"), "ok"),
        (hook.to_owned(), "problem"),
        (format!("# compinit\n{compinit}{hook}"), "ok"),
        (format!("source $ZSH/oh-my-zsh.sh\n{hook}"), "ok"),
    ] {
        fs::write(&zshrc, &content).unwrap();
        let (code, report) = doctor_json(&fixture);
        assert_eq!(statuses(&report, "zsh_compinit"), [status], "{content}");
        assert_eq!(code, i32::from(status == "problem"), "{content}");
    }
    // ZDOTDIR is honoured.
    let zdotdir = fixture.path().join("zdot");
    fs::create_dir_all(&zdotdir).unwrap();
    fs::write(zdotdir.join(".zshrc"), format!("{compinit}{hook}")).unwrap();
    fs::write(&zshrc, hook).unwrap();
    fixture.env.insert("ZDOTDIR".into(), text(&zdotdir).into());
    let (_, report) = doctor_json(&fixture);
    assert_eq!(statuses(&report, "zsh_compinit"), ["ok"]);
    // Not checked for bash users.
    let report = doctor_json(&sound_fixture()).1;
    assert!(statuses(&report, "zsh_compinit").is_empty());
}

#[test]
fn doctor_compares_python3_short_version_with_the_python_layers() {
    let mut fixture = sound_fixture();
    for (version, status, hint) in [
        (None, "problem", Some("export PYTHON3_SHORT_VERSION=3.11")),
        (
            Some("3.12"),
            "problem",
            Some("export PYTHON3_SHORT_VERSION=3.11"),
        ),
        (Some("3.11"), "ok", None),
    ] {
        match version {
            Some(version) => fixture
                .env
                .insert("PYTHON3_SHORT_VERSION".into(), version.into()),
            None => fixture.env.remove("PYTHON3_SHORT_VERSION"),
        };
        let (code, report) = doctor_json(&fixture);
        let python = named(&report, "python3");
        assert_eq!(python.len(), 1);
        assert_eq!(python[0].0, status, "{version:?}: {python:?}");
        assert!(
            python[0].1.contains("python3.11 (python3@mfext)"),
            "{python:?}"
        );
        assert_eq!(python[0].2.as_deref(), hint);
        assert_eq!(code, i32::from(status == "problem"));
    }
}

#[test]
fn doctor_checks_the_plugins_base_dir_and_the_runtime_dir() {
    let mut fixture = sound_fixture();
    let runtime = fixture.path().join("runtime");
    fs::create_dir_all(&runtime).unwrap();
    fixture
        .env
        .insert("MFMODULE_RUNTIME_HOME".into(), text(&runtime).into());
    let base_file = fixture.path().join("plugins-file");
    fs::write(&base_file, "").unwrap();
    fixture
        .env
        .insert("MFMODULE_PLUGINS_BASE_DIR".into(), text(&base_file).into());
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o777)).unwrap();
    let (code, report) = doctor_json(&fixture);
    assert_eq!(code, 1);
    let runtime_check = named(&report, "runtime_dir");
    assert_eq!(runtime_check[0].0, "problem");
    assert!(
        runtime_check[0]
            .1
            .contains("writable by other users (mode 0777)")
    );
    assert!(
        runtime_check[0]
            .2
            .as_deref()
            .unwrap()
            .contains("chmod go-w")
    );
    let base = named(&report, "plugins_base_dir");
    assert!(
        base[0].0 == "problem" && base[0].1.contains("is not a directory"),
        "{base:?}"
    );

    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o755)).unwrap();
    let base_dir = fixture.path().join("plugins");
    fs::create_dir_all(&base_dir).unwrap();
    fixture
        .env
        .insert("MFMODULE_PLUGINS_BASE_DIR".into(), text(&base_dir).into());
    let (code, report) = doctor_json(&fixture);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(statuses(&report, "runtime_dir"), ["ok"]);
    assert_eq!(statuses(&report, "plugins_base_dir"), ["ok"]);
}

/// A plugin fixture whose commands see the hook of this process and python set.
fn plugin_fixture() -> PluginFixture {
    let mut fx = PluginFixture::new();
    fx.fixture.layer(LayerSpec::new("tools", "tools@mfext"));
    fx.fixture.env.insert("SHELL".into(), "/bin/bash".into());
    fx.fixture
        .env
        .insert("__MFENV_HOOK".into(), hook_marker("bash"));
    fx
}

#[test]
fn doctor_needs_crontab_only_for_plugins_with_a_crontab() {
    require_program("crontab");
    let fx = plugin_fixture();
    let no_cron = fx.root().join("no-cron-bin");
    fs::create_dir_all(&no_cron).unwrap();
    let run = |path: &str| {
        let mut command = fx.command(&["doctor", "--json"]);
        command.env("PATH", path);
        doctor(command)
    };
    let (_, report) = run(text(&no_cron));
    assert_eq!(statuses(&report, "crontab"), ["warning"]);
    let home = fx.source("foo", "1.0.0");
    fs::write(home.join("crontab"), "* * * * * true\n").unwrap();
    fx.ok(&["plugin", "develop", text(&home)]);
    let (code, report) = run(text(&no_cron));
    assert_eq!(code, 1);
    let check = named(&report, "crontab");
    assert!(
        check[0].0 == "problem" && check[0].1.contains("`foo`"),
        "{check:?}"
    );
    let (code, report) = run("/usr/local/bin:/usr/bin:/bin");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(statuses(&report, "crontab"), ["ok"]);
}

#[test]
fn doctor_wants_a_running_supervisor_when_plugins_declare_daemons() {
    let fx = plugin_fixture();
    let home = fx.source("foo", "1.0.0");
    let mut config = fs::read_to_string(home.join("config.ini")).unwrap();
    config.push_str("\n[extra_daemon_loop]\n_cmd_and_args = sleep 1000\nnumprocesses = 1\n");
    fs::write(home.join("config.ini"), config).unwrap();
    let (_, report) = doctor(fx.command(&["doctor", "--json"]));
    assert_eq!(statuses(&report, "supervisor"), ["ok"], "not installed yet");
    fx.ok(&["plugin", "develop", text(&home)]);
    let (code, report) = doctor(fx.command(&["doctor", "--json"]));
    assert_eq!(code, 1);
    let check = named(&report, "supervisor");
    assert!(
        check[0].0 == "problem" && check[0].1.contains("`foo`"),
        "{check:?}"
    );
    assert!(
        check[0]
            .2
            .as_deref()
            .unwrap()
            .contains("mfenv daemons start")
    );

    let mut supervisor = fx
        .command(&["daemons", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the supervisor");
    let deadline = Instant::now() + Duration::from_secs(60);
    while fx.run(&["daemons", "status"]).status.code() != Some(0) {
        assert!(Instant::now() < deadline, "the supervisor did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, report) = doctor(fx.command(&["doctor", "--json"]));
    let _ = fx
        .command(&["daemons", "stop"])
        .stderr(Stdio::null())
        .output();
    let _ = supervisor.kill();
    let _ = supervisor.wait();
    assert_eq!(code, 0, "{report:#}");
    let check = named(&report, "supervisor");
    assert!(
        check[0].0 == "ok" && check[0].1.contains("running (pid"),
        "{check:?}"
    );
}

/// `Command::output` of another program with this command's environment and directory.
trait OutputOf {
    fn output_of(&mut self, program: &Path, args: &[&str]) -> std::process::Output;
}

impl OutputOf for Command {
    fn output_of(&mut self, program: &Path, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(program);
        command.env_clear();
        for (name, value) in self.get_envs() {
            if let Some(value) = value {
                command.env(name, value);
            }
        }
        if let Some(dir) = self.get_current_dir() {
            command.current_dir(dir);
        }
        command.args(args).stdin(Stdio::null());
        command.output().expect("run the program")
    }
}
