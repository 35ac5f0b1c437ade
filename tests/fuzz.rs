//! A seeded random driver over mfenv's untrusted inputs: layer files, the state
//! variable and loaded markers, `config.ini`, `.metadata.json` / `.files.json` and the
//! entry lists of `.plugin` archives.
//!
//! Every case runs the real binary and checks the properties that hold for any input:
//! no panic and no death by a signal, no hang (each run has a deadline), nothing on
//! stdout when the command fails, shell code that parses when it succeeds, and a failed
//! install that leaves the plugins base dir as it was.
//!
//! The cases are drawn from a fixed seed, so a run is reproducible; `MFENV_FUZZ_SEED`
//! picks another seed and `MFENV_FUZZ_CASES` scales the number of cases of each family
//! (the default keeps the whole file well under a minute). A failure prints the seed,
//! the case number and the input.

mod common;
mod plugin_support;

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use plugin_support::*;

/// How long one run of mfenv may take before the case counts as a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// A small, fast, seedable generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    std::env::var("MFENV_FUZZ_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x6d66_656e_7621)
}

/// The number of cases of a family: `base` scaled by `MFENV_FUZZ_CASES` (a factor).
fn cases(base: usize) -> usize {
    let factor: f64 = std::env::var("MFENV_FUZZ_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1.0);
    ((base as f64) * factor).max(1.0) as usize
}

/// What one run gave.
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` with the deadline; a hang fails the test with `what`.
fn run(mut command: Command, what: &dyn Fn() -> String) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mfenv");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for mfenv") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mfenv did not finish within {DEADLINE:?}\n{}", what());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Run {
        code: status.code(),
        signal: status.signal(),
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// The properties every run has: no panic, no signal, no output on failure.
fn check(run: &Run, what: &dyn Fn() -> String) {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.signal.is_none(),
        "mfenv died of signal {:?}\nstderr:\n{stderr}\n{}",
        run.signal,
        what()
    );
    assert!(
        run.code != Some(101) && !stderr.contains("panicked"),
        "mfenv panicked\nstderr:\n{stderr}\n{}",
        what()
    );
    if run.code != Some(0) {
        assert!(
            run.stdout.is_empty(),
            "mfenv failed ({:?}) but printed on stdout:\n{}\nstderr:\n{stderr}\n{}",
            run.code,
            String::from_utf8_lossy(&run.stdout),
            what()
        );
    }
}

/// Fails when `code` is not valid bash (`bash -n`).
fn check_bash_syntax(code: &[u8], what: &dyn Fn() -> String) {
    check_syntax("bash", code, what);
}

/// Fails when `shell` (bash, zsh, dash or fish) cannot parse `code` (`SHELL -n`).
fn check_syntax(shell: &str, code: &[u8], what: &dyn Fn() -> String) {
    let mut child = Command::new(require_program(shell))
        .args(["-n", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run SHELL -n");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("shell stdin");
        let _ = stdin.write_all(code);
    }
    let output = child.wait_with_output().expect("SHELL -n");
    assert!(
        output.status.success(),
        "mfenv printed code {shell} cannot parse: {}\ncode:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(code),
        what()
    );
}

/// Pieces that layer files are made of: well-formed tokens most of the time, hostile
/// bytes the rest.
const LAYER_PIECES: &[&[u8]] = &[
    b"a@x",
    b"b@x",
    b"c@x",
    b"d@x",
    b"-a@x",
    b"-b@x",
    b"- c@x",
    b"{LBL}",
    b"{NOPE}",
    b"{",
    b"}",
    b"{{}}",
    b"@",
    b"-",
    b" ",
    b"\t",
    b"\n",
    b"\r\n",
    b"#",
    b"=",
    b"K=v",
    b"PATH={PATH}:/x",
    b"V='q'",
    b"V=\"$(touch PWNED)\"",
    b"`id`",
    b"$HOME",
    b"*",
    b"?",
    b"[",
    b"\\",
    b"\xc3\xa9",
    b"\xe9",
    b"\xff\xfe",
    b"\0",
    b"OPTIND=x[$(id)]",
    b"IFS= ",
    b"SHLVL=9",
    b"1BAD=x",
    b"A B=c",
    b"..",
    b"/",
    b"../b",
    b"LAYERAPI2_LAYERS_PATH=/nope",
    b"__MFENV_STATE=x",
];

fn random_bytes(rng: &mut Rng, pieces: &[&[u8]], max_pieces: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(max_pieces + 1) {
        out.extend_from_slice(rng.pick(pieces));
        if rng.chance(40) {
            out.push(b'\n');
        }
    }
    if rng.chance(3) {
        // A long line, far beyond what a person writes.
        out.extend(std::iter::repeat_n(b'z', 5000 + rng.below(20000)));
    }
    out
}

/// A random layer tree: returns the layers-path entry and the homes.
fn random_tree(rng: &mut Rng, root: &Path) -> Vec<PathBuf> {
    let entry = root.join("layers");
    fs::create_dir_all(&entry).expect("layers dir");
    let names = ["a", "b", "c", "d", "e"];
    let mut homes = Vec::new();
    for name in names.iter().take(1 + rng.below(names.len())) {
        let home = entry.join(name);
        fs::create_dir_all(home.join("bin")).expect("layer home");
        let label: Vec<u8> = if rng.chance(75) {
            format!("{name}@x\n").into_bytes()
        } else {
            random_bytes(rng, LAYER_PIECES, 3)
        };
        fs::write(home.join(".layerapi2_label"), label).expect("label");
        for file in [
            ".layerapi2_dependencies",
            ".layerapi2_conflicts",
            ".layerapi2_extra_env",
        ] {
            if rng.chance(60) {
                fs::write(home.join(file), random_bytes(rng, LAYER_PIECES, 6)).expect("file");
            }
        }
        if rng.chance(10) {
            let _ = fs::create_dir(home.join(".layerapi2_dependencies"));
        }
        if rng.chance(20) {
            fs::create_dir_all(home.join("lib/python3.11/site-packages")).expect("lib");
        }
        homes.push(home);
    }
    homes
}

fn describe_tree(root: &Path) -> String {
    let mut out = String::new();
    let mut files = Vec::new();
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    walk(root, &mut files);
    files.sort();
    for file in files {
        let content = fs::read(&file).unwrap_or_default();
        let shown = &content[..content.len().min(300)];
        let _ = writeln!(
            out,
            "{}: {:?}",
            file.strip_prefix(root).unwrap_or(&file).display(),
            String::from_utf8_lossy(shown)
        );
    }
    out
}

/// The environment of the layer runs: a clean one with the layers path and HOME.
fn layer_command(root: &Path, args: &[&[u8]], extra: &[(&str, &[u8])]) -> Command {
    let mut command = Command::new(mfenv_binary());
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", root.join("home"))
        .env("LC_ALL", "C.UTF-8")
        .env("LAYERAPI2_LAYERS_PATH", root.join("layers"))
        .env("LBL", " a@x ")
        .env("PYTHON3_SHORT_VERSION", "3.11")
        .current_dir(root);
    for (name, value) in extra {
        command.env(name, std::ffi::OsStr::from_bytes(value));
    }
    for arg in args {
        command.arg(std::ffi::OsStr::from_bytes(arg));
    }
    command
}

#[test]
fn random_layer_trees_never_crash_hang_or_print_code_on_failure() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    for case in 0..cases(120) {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("home")).expect("home");
        let homes = random_tree(&mut rng, root);
        let mut target: Vec<u8> = match rng.below(4) {
            0 => homes[rng.below(homes.len())]
                .as_os_str()
                .as_bytes()
                .to_vec(),
            1 => random_bytes(&mut rng, LAYER_PIECES, 2),
            _ => format!("{}@x", rng.pick(&["a", "b", "c", "d", "e"])).into_bytes(),
        };
        // A command-line argument cannot hold a NUL byte.
        target.retain(|byte| *byte != 0);
        let what = || {
            format!(
                "seed {seed}, case {case}, target {:?}\n{}",
                String::from_utf8_lossy(&target),
                describe_tree(root)
            )
        };
        let shell: &[u8] = rng.pick(&[&b"bash"[..], b"zsh", b"fish", b"sh"]);
        let load = run(
            layer_command(root, &[b"load", b"--shell", shell, &target], &[]),
            &what,
        );
        check(&load, &what);
        if load.code == Some(0) {
            let parser = match shell {
                b"sh" => "dash",
                other => std::str::from_utf8(other).expect("shell name"),
            };
            check_syntax(parser, &load.stdout, &what);
        }
        for args in [
            &[&b"layers"[..]][..],
            &[b"layers", b"--json"],
            &[b"is-installed", &target],
            &[b"home", &target],
            &[b"load", b"--dry-run", &target],
        ] {
            check(&run(layer_command(root, args, &[]), &what), &what);
        }
    }
}

/// A state variable and markers after a real load, for the mutations below.
fn loaded_state(root: &Path) -> Vec<(String, Vec<u8>)> {
    let entry = root.join("layers");
    for (name, deps, extra) in [
        ("a", "b@x\n", "A=1\nPATH={PATH}:/opt/a\n"),
        ("b", "", "B=two words\n"),
    ] {
        let home = entry.join(name);
        fs::create_dir_all(home.join("bin")).expect("home");
        fs::write(home.join(".layerapi2_label"), format!("{name}@x\n")).expect("label");
        fs::write(home.join(".layerapi2_dependencies"), deps).expect("deps");
        fs::write(home.join(".layerapi2_extra_env"), extra).expect("extra");
    }
    // The variables the load set, read back from bash after evaluating it.
    let load = layer_command(root, &[b"load", b"a@x"], &[])
        .output()
        .expect("load");
    assert!(load.status.success(), "{load:?}");
    let code = String::from_utf8(load.stdout).expect("utf-8 load code");
    let mut env = EnvVars::new();
    env.insert("PATH".into(), "/usr/bin:/bin".into());
    env_after_bash(&env, &code, root)
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with("__MFENV") || name.starts_with("LAYERAPI2_LAYER_") || name == "PATH"
        })
        .map(|(name, value)| (name, value.into_bytes()))
        .collect()
}

/// One random change of a byte string: cut, flip, insert, duplicate.
fn mutate(rng: &mut Rng, value: &[u8]) -> Vec<u8> {
    let mut out = value.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = if out.is_empty() {
            0
        } else {
            rng.below(out.len() + 1)
        };
        match rng.below(6) {
            0 => out.truncate(at),
            1 if at < out.len() => out[at] = rng.next() as u8,
            2 => {
                let piece = rng.pick(&[
                    &b";"[..],
                    b",",
                    b":",
                    b"|",
                    b"\n",
                    b"\0",
                    b"99999999999999999999",
                    b"-1",
                    b"'",
                    b"$(id)",
                    b"\xff",
                ]);
                out.splice(at..at, piece.iter().copied());
            }
            3 => {
                let copy = out[at..].to_vec();
                out.extend_from_slice(&copy);
            }
            4 if at < out.len() => {
                out.remove(at);
            }
            _ => out.insert(at, b'0' + rng.below(10) as u8),
        }
    }
    out
}

#[test]
fn a_mangled_state_variable_or_marker_never_crashes_hangs_or_prints_code_on_failure() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    fs::create_dir_all(root.join("home")).expect("home");
    let state = loaded_state(root);
    assert!(
        state.iter().any(|(name, _)| name.starts_with("__MFENV")),
        "a real load leaves a state variable: {state:?}"
    );
    for case in 0..cases(150) {
        let mut vars: Vec<(String, Vec<u8>)> = state.clone();
        for (_, value) in vars.iter_mut() {
            if rng.chance(60) {
                *value = mutate(&mut rng, value);
            }
        }
        if rng.chance(20) {
            vars.retain(|(name, _)| !name.starts_with("LAYERAPI2_LAYER_"));
        }
        let what = || {
            let mut out = format!("seed {seed}, case {case}\n");
            for (name, value) in &vars {
                let _ = writeln!(out, "{name}={:?}", String::from_utf8_lossy(value));
            }
            out
        };
        let extra: Vec<(&str, &[u8])> = vars
            .iter()
            .filter(|(_, value)| !value.contains(&0))
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        let choices: [&[&[u8]]; 7] = [
            &[&b"unload"[..], b"a@x"][..],
            &[b"unload", b"b@x"],
            &[b"load", b"a@x"],
            &[b"load", b"--shell", b"fish", b"b@x"],
            &[b"layers", b"-m", b"yes"],
            &[b"why"],
            &[b"is-loaded", b"a@x"],
        ];
        let args = rng.pick(&choices);
        let result = run(layer_command(root, args, &extra), &what);
        check(&result, &what);
        if result.code == Some(0)
            && (args[0] == b"load" || args[0] == b"unload")
            && args[1] != b"--shell"
        {
            check_bash_syntax(&result.stdout, &what);
        }
    }
}

const INI_PIECES: &[&str] = &[
    "[general]\n",
    "[custom]\n",
    "[extra_daemon_d]\n",
    "[step_main]\n",
    "[app_main]\n",
    "[]\n",
    "[custom] # x\n",
    "_version=1.0.0\n",
    "_version = {{ MFMODULE }}\n",
    "key = value\n",
    "key[dev] = other\n",
    "key[] = dflt\n",
    "KEY = upper\n",
    "k-e_y = dash\n",
    "  continued\n",
    "\n",
    "# comment\n",
    "; semi\n",
    "n = 1_000\n",
    "n = 99999999999999999999999\n",
    "n = AUTO\n",
    "n = auto\n",
    "flag = true\n",
    "x = {{ 42 }}\n",
    "x = {{ none }}\n",
    "x = {{ HOME|upper }}\n",
    "x = {{ UNDEFINED_VARIABLE }}\n",
    "x = {{\n",
    "_cmd_and_args = sleep 1\n",
    "numprocesses = 2\n",
    "numprocesses = -3\n",
    "graceful_timeout = 1e300\n",
    "max_age = 18446744073709551616\n",
    "rlimit_nofile = 9999999999999999\n",
    "\u{a0} nbsp = 1\n",
    "\x0ck = v\n",
    "a = 1\rb = 2\n",
    "value with = sign = here\n",
    "novalue\n",
    "=\n",
    "_summary = \x1b[31mred\n",
    "hostname =\n",
    "hostnames = a, b ,c\n",
    "\u{e9}t\u{e9} = 1\n",
];

fn plugin_check_command(plugins: &PluginFixture, args: &[&str]) -> Command {
    plugins.command(args)
}

#[test]
fn random_config_files_never_crash_hang_or_print_on_failure() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0xc0f1);
    let plugins = PluginFixture::new();
    let home = plugins.root().join("src/fz");
    write_plugin_tree(&home, "fz", "1.0.0");
    for case in 0..cases(150) {
        let mut text = String::new();
        if rng.chance(80) {
            text.push_str(&config_ini("1.0.0"));
        }
        for _ in 0..rng.below(12) {
            text.push_str(rng.pick(INI_PIECES));
        }
        if rng.chance(3) {
            for index in 0..3000 + rng.below(3000) {
                let _ = writeln!(text, "key{index} = {index}");
            }
        }
        fs::write(home.join("config.ini"), &text).expect("config.ini");
        let what = || format!("seed {seed}, case {case}\nconfig.ini:\n{text}");
        let home_text = home.to_str().expect("utf-8 home");
        let choices: [&[&str]; 5] = [
            &["plugin", "check", home_text][..],
            &["plugin", "check", home_text],
            &["plugin", "config", home_text, "--json"],
            &["plugin", "env", home_text],
            &["plugin", "release", home_text],
        ];
        let args = rng.pick(&choices);
        let result = run(plugin_check_command(&plugins, args), &what);
        check(&result, &what);
        if result.code == Some(0) && args[1] == "env" {
            check_bash_syntax(&result.stdout, &what);
        }
    }
}

/// Random `.metadata.json` texts: the valid one, mangled.
fn random_metadata(rng: &mut Rng) -> Vec<u8> {
    let valid = metadata_json("1.0.0", 10).into_bytes();
    match rng.below(10) {
        0..=4 => valid,
        5 => b"{}".to_vec(),
        6 => format!(
            "{{\"version\": \"{}\", \"release\": \"1\", \"build_host\": \"h\", \"build_date\": \"d\", \
             \"size\": \"1\", \"summary\": \"s\\u001b[2J\\n\", \"license\": \"l\", \"packager\": \"p\", \
             \"vendor\": \"v\", \"url\": \"u\"}}",
            "1\\n".repeat(rng.below(3000))
        )
        .into_bytes(),
        7 => "[".repeat(1 + rng.below(20000)).into_bytes(),
        _ => mutate(rng, &valid),
    }
}

fn random_files_json(rng: &mut Rng) -> Vec<u8> {
    match rng.below(8) {
        0..=3 => b"[]".to_vec(),
        4 => b"[\"config.ini\", \"bin/x\"]".to_vec(),
        5 => b"{\"a\": 1}".to_vec(),
        6 => format!("[{}]", "\"x\",".repeat(rng.below(5000)) + "\"y\"").into_bytes(),
        _ => mutate(rng, b"[\"config.ini\"]"),
    }
}

/// A random entry name: mostly below `metwork_plugin/`, sometimes hostile.
fn random_entry_name(rng: &mut Rng) -> String {
    if rng.chance(50) {
        let benign = ["bin/x", "lib/a b", "x/\u{e9}", "bin", "share/doc/readme"];
        return format!("metwork_plugin/{}", rng.pick(&benign));
    }
    let parts = [
        "bin",
        "lib",
        "x",
        "..",
        ".",
        "",
        "metwork_plugin",
        "é",
        "a b",
        "*",
    ];
    let mut name = match rng.below(10) {
        0 => "/".to_owned(),
        1 => String::new(),
        _ => "metwork_plugin/".to_owned(),
    };
    for index in 0..1 + rng.below(4) {
        if index > 0 {
            name.push('/');
        }
        name.push_str(rng.pick(&parts));
    }
    if rng.chance(3) {
        name = format!("metwork_plugin/{}", "d/".repeat(40));
    }
    name.truncate(99);
    name
}

#[test]
fn random_archives_never_crash_hang_or_leave_anything_behind() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0xa4c1);
    let plugins = PluginFixture::new();
    let file = plugins.work.join("fz-1.0.0-1.metwork.generic.plugin");
    for case in 0..cases(120) {
        let members = valid_members("fz");
        let metadata = random_metadata(&mut rng);
        let files_json = random_files_json(&mut rng);
        let mut names: Vec<String> = Vec::new();
        let mut entries: Vec<(u8, String, Vec<u8>, String)> =
            vec![(0, "metwork_plugin".into(), vec![], String::new())];
        for (name, data) in &members {
            let data = match name.as_str() {
                "metwork_plugin/.metadata.json" => metadata.clone(),
                "metwork_plugin/.files.json" => files_json.clone(),
                _ if rng.chance(5) => mutate(&mut rng, data),
                _ => data.clone(),
            };
            if rng.chance(97) {
                entries.push((1, name.clone(), data, String::new()));
            }
        }
        for _ in 0..rng.below(5) {
            let name = random_entry_name(&mut rng);
            let kind = rng.below(5) as u8;
            let target = if rng.chance(50) {
                random_entry_name(&mut rng)
            } else {
                rng.pick(&["../../etc", "/etc/passwd", "bin", "x/../../y", "."])
                    .to_string()
            };
            names.push(name.clone());
            entries.push((kind, name, b"data".to_vec(), target));
        }
        let crafted: Vec<Crafted<'_>> = entries
            .iter()
            .map(|(kind, name, data, target)| match kind {
                0 => Crafted::Dir(name),
                1 => Crafted::File(name, data),
                2 => Crafted::Symlink(name, target),
                3 => Crafted::HardLink(name, target),
                _ => Crafted::Fifo(name),
            })
            .collect();
        craft_archive(&file, &crafted);
        let what = || {
            let mut out = format!("seed {seed}, case {case}\nentries:\n");
            for (kind, name, data, target) in &entries {
                let _ = writeln!(
                    out,
                    "  kind {kind} {name:?} -> {target:?} ({} bytes: {:?})",
                    data.len(),
                    String::from_utf8_lossy(&data[..data.len().min(120)])
                );
            }
            out
        };
        let before = snapshot(&plugins.base);
        let file_text = file.to_str().expect("utf-8 file");
        for args in [
            &["plugin", "info", file_text][..],
            &["plugin", "hash", file_text],
        ] {
            check(&run(plugins.command(args), &what), &what);
        }
        let install = run(
            plugins.command(&["plugin", "install", file_text, "--force"]),
            &what,
        );
        check(&install, &what);
        if install.code == Some(0) {
            let installed = plugins.base.join("fz");
            assert!(
                installed.is_dir(),
                "installed plugin is a directory\n{}",
                what()
            );
            let list = run(plugins.command(&["plugin", "list", "--raw"]), &what);
            check(&list, &what);
            let uninstall = run(plugins.command(&["plugin", "uninstall", "fz"]), &what);
            check(&uninstall, &what);
            assert_eq!(uninstall.code, Some(0), "uninstall\n{}", what());
        } else {
            assert_eq!(
                snapshot(&plugins.base),
                before,
                "a failed install changed the plugins base dir\n{}",
                what()
            );
        }
        // Nothing written outside the runtime, the work dir and the sources.
        for stray in ["etc", "y", "passwd"] {
            assert!(
                !plugins.root().join(stray).exists(),
                "a write outside the plugin: {stray}\n{}",
                what()
            );
        }
    }
}
