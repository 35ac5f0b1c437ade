//! Daily shell use, in the real shells (bash, zsh, fish, dash) through the hook
//! functions: announced cascades, conflicts written on either side, a wrong layers path,
//! the loaded list after the path changed, `layer_unload --all`, short names and
//! collections. Each script calls the functions as a user would, records each call's
//! stdout, stderr and status in files, and dumps the environment (`env -0`) for exact
//! comparisons. Completion in a real terminal is tested through a private tmux server.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Dash,
}

impl Shell {
    fn program(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
            Shell::Dash => "dash",
        }
    }

    fn hook_name(self) -> &'static str {
        match self {
            Shell::Dash => "sh",
            other => other.program(),
        }
    }

    fn options(self) -> &'static [&'static str] {
        match self {
            Shell::Bash => &["--noprofile", "--norc", "-eu"],
            Shell::Zsh => &["--no-rcs", "-eu"],
            Shell::Fish => &["--no-config"],
            Shell::Dash => &["-eu"],
        }
    }

    fn quote(self, text: &str) -> String {
        match self {
            Shell::Fish => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
            _ => format!("'{}'", text.replace('\'', "'\\''")),
        }
    }
}

/// A script run through the hook in one shell.
struct Script {
    shell: Shell,
    dir: tempfile::TempDir,
    code: String,
    env: BTreeMap<String, String>,
}

/// What a script left behind.
struct Done {
    dir: tempfile::TempDir,
    describe: String,
}

impl Script {
    fn new(fixture: &Fixture, shell: Shell) -> Self {
        require_program(shell.program());
        let dir = tempfile::Builder::new()
            .prefix("script-")
            .tempdir_in(fixture.path())
            .expect("script dir");
        let mut script = Script {
            shell,
            dir,
            code: String::new(),
            env: fixture.base_env(),
        };
        script.env.insert(
            "XDG_CONFIG_HOME".into(),
            fixture.path().join("config").to_str().unwrap().into(),
        );
        let binary = script.shell.quote(mfenv_binary().to_str().unwrap());
        match shell {
            Shell::Fish => script.line(&format!("{binary} hook fish | source")),
            _ => script.line(&format!("eval \"$({binary} hook {})\"", shell.hook_name())),
        };
        script
    }

    fn line(&mut self, code: &str) -> &mut Self {
        self.code.push_str(code);
        self.code.push('\n');
        self
    }

    fn file(&self, name: &str) -> String {
        self.shell
            .quote(self.dir.path().join(name).to_str().expect("utf-8 path"))
    }

    /// Runs `command` (a hook function or `mfenv …`), keeping its stdout, stderr and
    /// status under `name`, then dumps the environment under `name`.
    fn call(&mut self, name: &str, command: &str) -> &mut Self {
        let (out, err, rc) = (
            self.file(&format!("{name}.out")),
            self.file(&format!("{name}.err")),
            self.file(&format!("{name}.rc")),
        );
        let command = command.replace(
            "mfenv ",
            &format!("{} ", self.shell.quote(mfenv_binary().to_str().unwrap())),
        );
        match self.shell {
            Shell::Fish => self.line(&format!("{command} > {out} 2> {err}; echo $status > {rc}")),
            _ => self.line(&format!(
                "if {command} > {out} 2> {err}; then echo 0 > {rc}; else echo $? > {rc}; fi"
            )),
        };
        self.dump(name)
    }

    fn dump(&mut self, name: &str) -> &mut Self {
        let file = self.file(&format!("{name}.env"));
        self.line(&format!("/usr/bin/env -0 > {file}"))
    }

    fn export(&mut self, name: &str, value: &str) -> &mut Self {
        let value = self.shell.quote(value);
        match self.shell {
            Shell::Fish => self.line(&format!("set -gx {name} {value}")),
            _ => self.line(&format!("export {name}={value}")),
        }
    }

    fn unset(&mut self, name: &str) -> &mut Self {
        match self.shell {
            Shell::Fish => self.line(&format!("set -e {name}")),
            _ => self.line(&format!("unset {name}")),
        }
    }

    fn run(&mut self) -> Done {
        let path = self.dir.path().join("script");
        fs::write(&path, &self.code).expect("write script");
        let mut child = Command::new(require_program(self.shell.program()))
            .args(self.shell.options())
            .arg(&path)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.dir.path())
            .stdout(fs::File::create(self.dir.path().join("script.out")).unwrap())
            .stderr(fs::File::create(self.dir.path().join("script.err")).unwrap())
            .spawn()
            .expect("start the shell");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the {} script did not finish", self.shell.program());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let describe = format!(
            "{} script ({status}):\n{}\n--- stderr ---\n{}",
            self.shell.program(),
            self.code,
            fs::read_to_string(self.dir.path().join("script.err")).unwrap_or_default()
        );
        assert!(status.success(), "{describe}");
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Done { dir, describe }
    }
}

impl Done {
    fn text(&self, name: &str) -> String {
        fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_else(|err| panic!("no `{name}` ({err})\n{}", self.describe))
    }

    fn stderr(&self, name: &str) -> String {
        self.text(&format!("{name}.err"))
    }

    fn stdout(&self, name: &str) -> String {
        self.text(&format!("{name}.out"))
    }

    fn status(&self, name: &str) -> i32 {
        self.text(&format!("{name}.rc"))
            .trim()
            .parse()
            .expect("a status")
    }

    /// The environment dumped under `name`, without the variables shells keep.
    fn env(&self, name: &str) -> BTreeMap<String, String> {
        let bytes = fs::read(self.dir.path().join(format!("{name}.env")))
            .unwrap_or_else(|err| panic!("no dump `{name}` ({err})\n{}", self.describe));
        let mut env = env_from_nul_dump(&bytes);
        for owned in ["SHLVL", "_", "PWD", "OLDPWD"] {
            env.remove(owned);
        }
        env
    }

    /// The call succeeded and said nothing.
    #[track_caller]
    fn quiet_success(&self, name: &str) {
        assert_eq!(
            (self.status(name), self.stderr(name)),
            (0, String::new()),
            "`{name}`\n{}",
            self.describe
        );
    }
}

/// The homes whose loaded marker is set in `env`, among `homes`.
fn loaded(env: &BTreeMap<String, String>, homes: &[(&str, &Path)]) -> BTreeSet<String> {
    homes
        .iter()
        .filter(|(_, home)| env.get(&marker_name(utf8_path(home))).map(String::as_str) == Some("1"))
        .map(|(label, _)| (*label).to_owned())
        .collect()
}

fn set(labels: &[&str]) -> BTreeSet<String> {
    labels.iter().map(|l| (*l).to_owned()).collect()
}

macro_rules! in_every_shell {
    ($($name:ident),* $(,)?) => {
        mod bash { $( #[test] fn $name() { super::$name(super::Shell::Bash) } )* }
        mod zsh { $( #[test] fn $name() { super::$name(super::Shell::Zsh) } )* }
        mod fish { $( #[test] fn $name() { super::$name(super::Shell::Fish) } )* }
        mod dash { $( #[test] fn $name() { super::$name(super::Shell::Dash) } )* }
    };
}

in_every_shell! {
    cascades_are_announced_one_line_each_and_quiet_silences_them,
    a_wrong_layers_path_is_named_in_each_of_its_four_forms,
    loaded_layers_off_the_layers_path_are_listed_and_marked,
    unload_all_gives_back_the_environment_from_before_the_first_load,
    short_names_load_a_unique_layer_and_exact_labels_win,
    collections_save_list_show_restore_and_remove,
    restoring_a_collection_with_missing_layers_fails_and_changes_nothing,
}

/// `base@t`; `tools@t` needs it; `legacy@t` conflicts with `tools@t` (written on its
/// side only); `default@t` needs `tools@t`.
struct Tree {
    fixture: Fixture,
    base: PathBuf,
    tools: PathBuf,
    legacy: PathBuf,
    default: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let fixture = Fixture::new();
        let base = fixture.layer(LayerSpec::new("base", "base@t").extra_env("BASE_VAR=b\n"));
        let tools = fixture.layer(
            LayerSpec::new("tools", "tools@t")
                .deps("base@t\n")
                .extra_env("MODE=modern\n"),
        );
        let legacy = fixture.layer(
            LayerSpec::new("legacy", "legacy@t")
                .conflicts("tools@t\n")
                .extra_env("MODE=legacy\n"),
        );
        let default = fixture.layer(LayerSpec::new("default", "default@t").deps("tools@t\n"));
        Tree {
            fixture,
            base,
            tools,
            legacy,
            default,
        }
    }

    fn homes(&self) -> Vec<(&'static str, &Path)> {
        vec![
            ("base@t", self.base.as_path()),
            ("tools@t", self.tools.as_path()),
            ("legacy@t", self.legacy.as_path()),
            ("default@t", self.default.as_path()),
        ]
    }
}

fn cascades_are_announced_one_line_each_and_quiet_silences_them(shell: Shell) {
    let tree = Tree::new();
    let mut script = Script::new(&tree.fixture, shell);
    script
        .dump("before")
        .call("default", "layer_load default@t")
        .call("legacy", "layer_load legacy@t")
        .call("tools", "layer_load tools@t")
        .call("base", "layer_unload base@t")
        .call("again", "layer_load default@t")
        .call("quiet", "layer_load --quiet legacy@t")
        .call("tools2", "layer_load tools@t")
        .export("MFENV_QUIET", "1")
        .call("env_quiet", "layer_load legacy@t")
        .unset("MFENV_QUIET")
        .call("cleanup", "layer_unload legacy@t");
    let done = script.run();
    let homes = tree.homes();
    done.quiet_success("default");
    assert_eq!(
        loaded(&done.env("default"), &homes),
        set(&["base@t", "tools@t", "default@t"])
    );

    assert_eq!(done.status("legacy"), 0);
    assert_eq!(
        done.stderr("legacy"),
        "mfenv: automatically replacing `tools@t` with `legacy@t` (they conflict)\n\
         mfenv: automatically unloading `default@t` (it needs `tools@t`, which is unloaded)\n"
    );
    let env = done.env("legacy");
    assert_eq!(loaded(&env, &homes), set(&["base@t", "legacy@t"]));
    assert_eq!(env["MODE"], "legacy");

    // The conflict is written in legacy's file only: loading tools replaces legacy.
    assert_eq!(done.status("tools"), 0);
    assert_eq!(
        done.stderr("tools"),
        "mfenv: automatically replacing `legacy@t` with `tools@t` (they conflict)\n"
    );
    let env = done.env("tools");
    assert_eq!(loaded(&env, &homes), set(&["base@t", "tools@t"]));
    assert_eq!(env["MODE"], "modern");

    assert_eq!(
        done.stderr("base"),
        "mfenv: automatically unloading `tools@t` (it needs `base@t`, which is unloaded)\n"
    );
    assert_eq!(done.env("base"), done.env("before"));

    done.quiet_success("again");
    done.quiet_success("quiet");
    assert_eq!(
        loaded(&done.env("quiet"), &homes),
        set(&["base@t", "legacy@t"])
    );
    assert_eq!(done.status("tools2"), 0);
    done.quiet_success("env_quiet");
    assert_eq!(
        loaded(&done.env("env_quiet"), &homes),
        set(&["base@t", "legacy@t"])
    );
    done.quiet_success("cleanup");
}

fn a_wrong_layers_path_is_named_in_each_of_its_four_forms(shell: Shell) {
    let tree = Tree::new();
    let entry = utf8_path(&tree.fixture.entries[0]).to_owned();
    let root = utf8_path(tree.fixture.path()).to_owned();
    let missing = format!("{root}/no-such-dir");
    let cases: [(Option<&str>, String); 4] = [
        (None, "`LAYERAPI2_LAYERS_PATH` is not set".to_owned()),
        (Some(""), "`LAYERAPI2_LAYERS_PATH` is empty".to_owned()),
        (
            Some(&missing),
            format!("`{missing}` in `LAYERAPI2_LAYERS_PATH` does not exist"),
        ),
        (
            Some(&root),
            format!(
                "`{root}` in `LAYERAPI2_LAYERS_PATH` holds no layer, but `{entry}` does: the entry is one level too high"
            ),
        ),
    ];
    for (value, problem) in cases {
        let mut script = Script::new(&tree.fixture, shell);
        match value {
            None => script.env.remove("LAYERAPI2_LAYERS_PATH"),
            Some(value) => script
                .env
                .insert("LAYERAPI2_LAYERS_PATH".into(), value.to_owned()),
        };
        script
            .dump("before")
            .call("layers", "mfenv layers")
            .call("load", "layer_load tools@t");
        let done = script.run();
        assert_eq!(done.status("layers"), 1, "{problem}");
        assert_eq!(done.stdout("layers"), "");
        assert_eq!(
            done.stderr("layers"),
            format!(
                "mfenv: error: no layer found through `LAYERAPI2_LAYERS_PATH`\n  caused by: {problem}\n\
                 hint: set `LAYERAPI2_LAYERS_PATH` to the directories holding the layers (each entry a layer or a directory of layers)\n"
            )
        );
        assert_eq!(done.status("load"), 1);
        assert_eq!(
            done.stderr("load"),
            format!(
                "mfenv: error: cannot load `tools@t`: no such layer\n  caused by: {problem}\n\
                 hint: set `LAYERAPI2_LAYERS_PATH` to the directories holding the layers\n"
            )
        );
        assert_eq!(done.env("load"), done.env("before"));
    }
    // A wrong entry beside a good one: listed with status 0, the entry named.
    let mut script = Script::new(&tree.fixture, shell);
    script
        .env
        .insert("LAYERAPI2_LAYERS_PATH".into(), format!("{missing}:{entry}"));
    script.call("layers", "mfenv layers --raw");
    let done = script.run();
    assert_eq!(done.status("layers"), 0);
    assert_eq!(done.stdout("layers").lines().count(), 4);
    assert_eq!(
        done.stderr("layers"),
        format!("mfenv: warning: `{missing}` in `LAYERAPI2_LAYERS_PATH` does not exist\n")
    );
}

fn loaded_layers_off_the_layers_path_are_listed_and_marked(shell: Shell) {
    let mut tree = Tree::new();
    let other = tree.fixture.add_entry("other");
    tree.fixture.entries.pop();
    let extra = tree.fixture.layer_in(0, LayerSpec::new("extra", "extra@t"));
    let mut script = Script::new(&tree.fixture, shell);
    let (tools, base) = (utf8_path(&tree.tools), utf8_path(&tree.base));
    script
        .dump("before")
        .call("load", "layer_load tools@t extra@t")
        .export("LAYERAPI2_LAYERS_PATH", utf8_path(&other))
        .call("listed", "mfenv layers -m yes")
        .call("all", "mfenv layers")
        .call("unload", "layer_unload tools@t extra@t base@t");
    let done = script.run();
    done.quiet_success("load");
    assert_eq!(done.status("listed"), 0);
    let extra = utf8_path(&extra);
    // The new entry holds no layer (said on stderr); the loaded layers come from the state.
    assert_eq!(
        done.stdout("listed"),
        format!(
            "- (*) base@t [{base}] (not on the layers path)\n\
             - (*) tools@t [{tools}] (not on the layers path)\n\
             - (*) extra@t [{extra}] (not on the layers path)\n"
        )
    );
    assert_eq!(done.stdout("all"), done.stdout("listed"));
    done.quiet_success("unload");
    let mut before = done.env("before");
    before.insert("LAYERAPI2_LAYERS_PATH".into(), utf8_path(&other).into());
    assert_eq!(done.env("unload"), before);
}

fn unload_all_gives_back_the_environment_from_before_the_first_load(shell: Shell) {
    let tree = Tree::new();
    // Loaded by the original tools: its marker, PATH entry and variable set by hand.
    let old = tree
        .fixture
        .layer(LayerSpec::new("old", "old@t").extra_env("OLD_VAR=old\n"));
    let old_home = utf8_path(&old);
    let mut script = Script::new(&tree.fixture, shell);
    let path = script.env["PATH"].clone();
    script
        .dump("before")
        .export(&marker_name(old_home), "1")
        .export("PATH", &format!("{old_home}/bin:{path}"))
        .export("OLD_VAR", "old")
        .call("default", "layer_load default@t")
        .call("legacy", "layer_load legacy@t")
        .call("purge", "layer_unload --all")
        .call("again", "layer_unload --all")
        .call("load", "layer_load default@t")
        .call("mfenv_purge", "mfenv unload --all --shell SHELL");
    let code = script.code.replace("SHELL", shell.hook_name());
    script.code = code;
    let done = script.run();
    done.quiet_success("default");
    assert_eq!(done.status("legacy"), 0);
    done.quiet_success("purge");
    assert_eq!(done.env("purge"), done.env("before"));
    done.quiet_success("again");
    assert_eq!(done.env("again"), done.env("before"));
    // `mfenv unload --all` prints the code (not evaluated here).
    assert_eq!(done.status("mfenv_purge"), 0);
    assert!(done.stdout("mfenv_purge").contains("LAYERAPI2_LAYER_"));
}

fn short_names_load_a_unique_layer_and_exact_labels_win(shell: Shell) {
    let tree = Tree::new();
    let dup_a = tree.fixture.layer(LayerSpec::new("dup_a", "dup@a"));
    let dup_b = tree.fixture.layer(LayerSpec::new("dup_b", "dup@b"));
    let exact = tree.fixture.layer(LayerSpec::new("exact", "base"));
    let mut script = Script::new(&tree.fixture, shell);
    script
        .dump("before")
        .call("short", "layer_load tools")
        .call("short_unload", "layer_unload tools")
        .call("ambiguous", "layer_load dup")
        .call("exact", "layer_load base")
        .call("exact_unload", "layer_unload base");
    let done = script.run();
    let mut homes = tree.homes();
    homes.extend([
        ("dup@a", dup_a.as_path()),
        ("dup@b", dup_b.as_path()),
        ("base", exact.as_path()),
    ]);
    done.quiet_success("short");
    assert_eq!(
        loaded(&done.env("short"), &homes),
        set(&["base@t", "tools@t"])
    );
    done.quiet_success("short_unload");
    assert_eq!(loaded(&done.env("short_unload"), &homes), set(&["base@t"]));
    assert_eq!(done.status("ambiguous"), 1);
    assert_eq!(
        done.stderr("ambiguous"),
        "mfenv: error: cannot load `dup`: the short name is ambiguous\n  \
         caused by: several layers are called `dup`: `dup@a`, `dup@b`\nhint: give the whole label\n"
    );
    assert_eq!(done.env("ambiguous"), done.env("short_unload"));
    done.quiet_success("exact");
    assert_eq!(loaded(&done.env("exact"), &homes), set(&["base@t", "base"]));
    done.quiet_success("exact_unload");
    assert_eq!(loaded(&done.env("exact_unload"), &homes), set(&["base@t"]));
}

fn collections_save_list_show_restore_and_remove(shell: Shell) {
    let tree = Tree::new();
    let config = tree.fixture.path().join("config/mfenv/collections");
    let mut script = Script::new(&tree.fixture, shell);
    let file = shell.quote(utf8_path(&config.join("work")));
    script
        .dump("before")
        .call("load", "layer_load default@t")
        .call("save", "mfenv collection save work")
        .call("file", &format!("cat {file}"))
        .call("save_default", "mfenv collection save")
        .call("purge", "layer_unload --all")
        .call("legacy", "layer_load legacy@t")
        .call("restore", "layer_restore work")
        .call("list", "mfenv collection list")
        .call("show", "mfenv collection show work")
        .call("restore_default", "layer_restore")
        .call("remove", "mfenv collection remove work")
        .call("list_after", "mfenv collection list")
        .call("restore_removed", "layer_restore work");
    let done = script.run();
    let homes = tree.homes();
    done.quiet_success("load");
    assert_eq!(done.status("save"), 0);
    assert_eq!(
        done.stderr("save"),
        format!(
            "mfenv: saved 3 layer(s) as the collection `work` in `{}`\n",
            utf8_path(&config.join("work"))
        )
    );
    assert_eq!(
        done.stdout("file"),
        "# mfenv collection `work`: one layer label per line, loaded in this order\n\
         base@t\ntools@t\ndefault@t\n"
    );
    assert_eq!(done.env("purge"), done.env("before"));
    // Restoring unloads legacy@t first (everything goes), silently: it was asked for.
    done.quiet_success("restore");
    assert_eq!(done.env("restore"), done.env("load"));
    assert_eq!(done.stdout("list"), "default\nwork\n");
    assert_eq!(done.stdout("show"), "base@t\ntools@t\ndefault@t\n");
    done.quiet_success("restore_default");
    assert_eq!(done.env("restore_default"), done.env("load"));
    assert_eq!(done.status("remove"), 0);
    assert_eq!(done.stdout("list_after"), "default\n");
    assert_eq!(done.status("restore_removed"), 1);
    assert!(
        done.stderr("restore_removed")
            .contains("cannot read the collection `work`")
    );
    assert_eq!(
        loaded(&done.env("restore_removed"), &homes),
        set(&["base@t", "tools@t", "default@t"])
    );
}

fn restoring_a_collection_with_missing_layers_fails_and_changes_nothing(shell: Shell) {
    let tree = Tree::new();
    let config = tree.fixture.path().join("config/mfenv/collections");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("gone"), "base@t\nvanished@t\ntools@t\nlost@x\n").unwrap();
    let mut script = Script::new(&tree.fixture, shell);
    script
        .call("load", "layer_load legacy@t")
        .call("restore", "layer_restore gone")
        .call("code", "mfenv collection restore gone");
    let done = script.run();
    done.quiet_success("load");
    assert_eq!(done.status("restore"), 1);
    assert_eq!(done.stdout("restore"), "");
    assert_eq!(
        done.stderr("restore"),
        "mfenv: error: cannot restore the collection `gone`\n  \
         caused by: 2 of its layers are not installed\n  \
         caused by: not found: `vanished@t`, `lost@x`\n\
         hint: run `mfenv layers` to see the installed layers\n"
    );
    assert_eq!(done.env("restore"), done.env("load"));
    assert_eq!(done.status("code"), 1);
    assert_eq!(done.stdout("code"), "", "nothing on stdout on failure");
}

// ---------------------------------------------------------------------------------------
// Completion in a real terminal (a private tmux server)
// ---------------------------------------------------------------------------------------

/// A tmux server of its own (`tmux -L`), killed when dropped.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn start(fixture: &Fixture, shell_command: &str, env: &BTreeMap<String, String>) -> Self {
        let socket = format!(
            "mfenv-daily-{}-{}",
            std::process::id(),
            fixture.path().file_name().unwrap().to_str().unwrap()
        );
        let terminal = Terminal { socket };
        let mut command = terminal.tmux();
        command
            .env_clear()
            .envs(env)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
            ])
            .arg(shell_command);
        let status = command.status().expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        terminal
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new(require_program("tmux"));
        command.args(["-L", &self.socket]);
        command
    }

    fn send(&self, keys: &[&str]) {
        let status = self.tmux().arg("send-keys").args(keys).status().unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let output = self.tmux().args(["capture-pane", "-p"]).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the screen shows `wanted` (20 s guard).
    #[track_caller]
    fn wait_for(&self, wanted: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(wanted) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the terminal never showed `{wanted}`:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

fn completion_fixture() -> (Tree, BTreeMap<String, String>) {
    let tree = Tree::new();
    let config = tree.fixture.path().join("config/mfenv/collections");
    fs::create_dir_all(&config).unwrap();
    fs::write(config.join("workday"), "tools@t\n").unwrap();
    fs::write(config.join("weekend"), "legacy@t\n").unwrap();
    let mut env = tree.fixture.base_env();
    env.insert(
        "XDG_CONFIG_HOME".into(),
        utf8_path(&tree.fixture.path().join("config")).into(),
    );
    env.insert("TERM".into(), "xterm".into());
    (tree, env)
}

fn completes_in_a_terminal(shell: Shell, start: &str) {
    let (tree, env) = completion_fixture();
    let rc = tree.fixture.path().join("rc");
    let binary = shell.quote(mfenv_binary().to_str().unwrap());
    let hook = match shell {
        Shell::Fish => {
            format!("{binary} hook fish | source\nfunction fish_prompt; echo 'READY> '; end\n")
        }
        Shell::Zsh => format!(
            "autoload -U compinit && compinit -u -d \"$HOME/.zcompdump\"\neval \"$({binary} hook zsh)\"\nPS1='READY> '\n"
        ),
        _ => format!("eval \"$({binary} hook bash)\"\nPS1='READY> '\n"),
    };
    fs::write(&rc, hook).unwrap();
    let zdotdir = tree.fixture.path().join("zdot");
    fs::create_dir_all(&zdotdir).unwrap();
    fs::copy(&rc, zdotdir.join(".zshrc")).unwrap();
    let command = start
        .replace("@RC@", utf8_path(&rc))
        .replace("@ZDIR@", utf8_path(&zdotdir));
    let terminal = Terminal::start(&tree.fixture, &command, &env);
    terminal.wait_for("READY>");
    // A collection name, completed from its unique start.
    terminal.send(&["layer_restore work", "Tab"]);
    terminal.wait_for("layer_restore workday");
    terminal.send(&["C-u"]);
    // Short names are offered with the labels: `defa` completes to their common start,
    // the short name `default`, which loads `default@t`.
    terminal.send(&["layer_load defa", "Tab"]);
    terminal.wait_for("layer_load default");
    terminal.send(&[" ", "Enter"]);
    terminal.send(&["echo MODE=$MODE.", "Enter"]);
    terminal.wait_for("MODE=modern.");
    terminal.send(&["layer_load legac", "Tab"]);
    terminal.wait_for("layer_load legacy");
    terminal.send(&[" ", "Enter"]);
    terminal.send(&["echo MODE=$MODE.", "Enter"]);
    terminal.wait_for("MODE=legacy.");
}

#[test]
fn bash_completes_collection_names_and_short_names_in_a_terminal() {
    completes_in_a_terminal(Shell::Bash, "bash --noprofile --rcfile @RC@ -i");
}

#[test]
fn zsh_completes_collection_names_and_short_names_in_a_terminal() {
    completes_in_a_terminal(Shell::Zsh, "env ZDOTDIR=@ZDIR@ zsh --no-globalrcs -i");
}

#[test]
fn fish_completes_collection_names_and_short_names_in_a_terminal() {
    completes_in_a_terminal(Shell::Fish, "fish --no-config -i -C 'source @RC@'");
}
