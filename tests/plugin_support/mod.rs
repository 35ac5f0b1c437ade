//! Shared fixtures for the plugin tests: a runtime home, plugin source trees, archives
//! crafted byte by byte (mfplugin layout, malicious ones), and directory snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::*;

/// A fixture with a runtime home, a sysconf dir and a work directory for releases.
pub struct PluginFixture {
    pub fixture: Fixture,
    /// `MFMODULE_RUNTIME_HOME`.
    pub runtime: PathBuf,
    /// `RUNTIME/var/plugins`.
    pub base: PathBuf,
    /// `MFENV_SYSCONF_DIR`.
    pub sysconf: PathBuf,
    /// The current directory of the commands (where releases are written).
    pub work: PathBuf,
}

impl PluginFixture {
    pub fn new() -> Self {
        let mut fixture = Fixture::new();
        let root = fixture.path().to_owned();
        let runtime = root.join("runtime");
        let sysconf = root.join("sysconf");
        let work = root.join("work");
        for dir in [&runtime, &sysconf, &work] {
            fs::create_dir_all(dir).expect("fixture dir");
        }
        fixture
            .env
            .insert("MFMODULE_RUNTIME_HOME".into(), utf8_path(&runtime).into());
        fixture
            .env
            .insert("MFENV_SYSCONF_DIR".into(), utf8_path(&sysconf).into());
        fixture
            .env
            .insert("SOURCE_DATE_EPOCH".into(), "1700000000".into());
        fixture
            .env
            .insert("MFHOSTNAME_FULL".into(), "build.example.org".into());
        let base = runtime.join("var/plugins");
        PluginFixture {
            fixture,
            runtime,
            base,
            sysconf,
            work,
        }
    }

    pub fn root(&self) -> &Path {
        self.fixture.path()
    }

    /// `mfenv ARGS` from the work directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.fixture.command(args);
        command.current_dir(&self.work);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run mfenv")
    }

    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().expect("run mfenv")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_success(&output);
        stdout(&output)
    }

    /// Writes a plugin source tree `src/<dir>` for plugin `name` at `version`.
    pub fn source(&self, name: &str, version: &str) -> PathBuf {
        let home = self.root().join("src").join(name);
        write_plugin_tree(&home, name, version);
        home
    }

    /// Releases the tree at `home`; returns the file written.
    pub fn release(&self, home: &Path) -> PathBuf {
        let out = self.ok(&["plugin", "release", utf8_path(home)]);
        PathBuf::from(out.trim_end())
    }

    /// A released plugin `name` at `version`.
    pub fn released(&self, name: &str, version: &str) -> PathBuf {
        let home = self.source(name, version);
        self.release(&home)
    }

    /// `mfenv plugin bootstrap create --no-input --template TEMPLATE NAME` in the work
    /// directory; returns the plugin directory made.
    pub fn bootstrap(&self, template: &str, name: &str) -> PathBuf {
        self.ok(&[
            "plugin",
            "bootstrap",
            "create",
            "--no-input",
            "--template",
            template,
            name,
        ]);
        self.work.join(name)
    }

    /// The OP override of `name`.
    pub fn override_path(&self, name: &str) -> PathBuf {
        self.runtime
            .join("config/plugins")
            .join(format!("{name}.ini"))
    }
}

/// The `config.ini` of the test plugins.
pub fn config_ini(version: &str) -> String {
    format!(
        "[general]\n# the version\n_version = {version}\n_summary = plugin for tests\n_license = BSD\n\
         _url = http://example.org\n_maintainer = Jane Doe\n_vendor = ACME\n\n\
         [custom]\n# the greeting\ngreeting = hello\n# private key\n_private = x\n"
    )
}

/// Writes a valid plugin tree: label, format version, config, a `bin/<name>_hello` tool.
pub fn write_plugin_tree(home: &Path, name: &str, version: &str) {
    fs::create_dir_all(home.join("bin")).expect("plugin dir");
    fs::write(
        home.join(".layerapi2_label"),
        format!("plugin_{name}@generic\n"),
    )
    .expect("label");
    fs::write(home.join(".plugin_format_version"), "1.0.0\n").expect("format version");
    fs::write(home.join("config.ini"), config_ini(version)).expect("config");
    write_executable(
        &home.join("bin").join(format!("{name}_hello")),
        &format!("#!/bin/sh\necho \"hello from {name} {version}\"\n"),
    );
}

pub fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).expect("script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Every path below `dir` with its type, mode and content (or link target): a
/// byte-for-byte picture of the tree.
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let relative = path
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            let metadata = fs::symlink_metadata(&path).expect("metadata");
            let mode = metadata.permissions().mode() & 0o7777;
            let value = if metadata.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).expect("link").display())
            } else if metadata.is_dir() {
                walk(&path, root, out);
                format!("dir {mode:o}")
            } else {
                let content = fs::read(&path).expect("content");
                format!("file {mode:o} {}", String::from_utf8_lossy(&content))
            };
            out.insert(relative, value);
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The names directly below `dir` (hidden ones included), sorted.
pub fn children(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `.metadata.json` of the mfplugin layout (indent 4, the ten keys).
pub fn metadata_json(version: &str, size: u64) -> String {
    format!(
        "{{\n    \"version\": \"{version}\",\n    \"release\": \"1\",\n    \"build_host\": \"mfplugin.example.org\",\n    \"build_date\": \"2024-01-02T03:04:05Z\",\n    \"size\": \"{size}\",\n    \"summary\": \"plugin for tests\",\n    \"license\": \"BSD\",\n    \"packager\": \"Jane Doe\",\n    \"vendor\": \"ACME\",\n    \"url\": \"http://example.org\"\n}}"
    )
}

/// An archive entry to craft.
#[derive(Clone, Copy)]
pub enum Crafted<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Fifo(&'a str),
    CharDevice(&'a str),
    /// A file with this mode.
    FileMode(&'a str, &'a [u8], u32),
    /// A directory with this mode.
    DirMode(&'a str, u32),
    /// A file whose name is in a GNU long-name record (any length).
    LongFile(&'a str, &'a [u8]),
    /// A symlink whose name and target are in GNU long-name and long-link records.
    LongSymlink(&'a str, &'a str),
    /// A file whose name is in a pax extended header.
    PaxFile(&'a str, &'a [u8]),
    /// A pax extended header with these records, then a file.
    PaxRecords(&'a [u8], &'a str, &'a [u8]),
}

/// Appends a GNU long-name (`L`) or long-link (`K`) record holding `value`.
fn append_long_record<W: Write>(builder: &mut tar::Builder<W>, kind: u8, value: &str) {
    let mut data = value.as_bytes().to_vec();
    data.push(0);
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::new(kind));
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data.as_slice()).expect("append");
}

/// Appends a pax extended header (`x`) holding `records`.
fn append_pax<W: Write>(builder: &mut tar::Builder<W>, records: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_size(records.len() as u64);
    header.set_cksum();
    builder.append(&header, records).expect("append");
}

/// One pax record `LEN key=value\n` (LEN counts the whole record).
pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut length = body.len() + 1;
    while format!("{length}").len() + body.len() != length {
        length += 1;
    }
    format!("{length}{body}").into_bytes()
}

/// A gzip tar with exactly `entries`, names written raw into the headers (so `..`
/// and absolute names get through, as an attacker would write them).
pub fn craft_archive(path: &Path, entries: &[Crafted<'_>]) {
    use tar::{EntryType, Header};
    let file = fs::File::create(path).expect("archive file");
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for entry in entries {
        let mut header = Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        let (name, data, kind, link): (&str, &[u8], EntryType, Option<&str>) = match *entry {
            Crafted::Dir(name) => (name, b"", EntryType::Directory, None),
            Crafted::File(name, data) => (name, data, EntryType::Regular, None),
            Crafted::Symlink(name, target) => (name, b"", EntryType::Symlink, Some(target)),
            Crafted::HardLink(name, target) => (name, b"", EntryType::Link, Some(target)),
            Crafted::Fifo(name) => (name, b"", EntryType::Fifo, None),
            Crafted::CharDevice(name) => (name, b"", EntryType::Char, None),
            Crafted::FileMode(name, data, _) => (name, data, EntryType::Regular, None),
            Crafted::DirMode(name, _) => (name, b"", EntryType::Directory, None),
            Crafted::LongFile(name, data) => {
                append_long_record(&mut builder, b'L', name);
                ("metwork_plugin/long", data, EntryType::Regular, None)
            }
            Crafted::LongSymlink(name, target) => {
                append_long_record(&mut builder, b'L', name);
                append_long_record(&mut builder, b'K', target);
                ("metwork_plugin/long", b"", EntryType::Symlink, Some("long"))
            }
            Crafted::PaxFile(name, data) => {
                append_pax(&mut builder, &pax_record("path", name));
                ("metwork_plugin/short", data, EntryType::Regular, None)
            }
            Crafted::PaxRecords(records, name, data) => {
                append_pax(&mut builder, records);
                (name, data, EntryType::Regular, None)
            }
        };
        if kind == EntryType::Directory {
            header.set_mode(0o755);
        }
        if let Crafted::FileMode(_, _, mode) | Crafted::DirMode(_, mode) = *entry {
            header.set_mode(mode);
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        {
            let old = header.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(link) = link {
                old.linkname = [0; 100];
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        header.set_cksum();
        builder.append(&header, data).expect("append");
    }
    let encoder = builder.into_inner().expect("tar end");
    encoder.finish().expect("gzip end").flush().expect("flush");
}

/// Runs `command` to its end, killing it and failing the test after `limit`: a
/// command that used to hang makes the test fail instead of hanging it.
pub fn output_within(mut command: Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("the command did not finish within {limit:?}: {command:?}");
        }
    }
}

/// The members every valid plugin archive has, for plugin `name`.
pub fn valid_members(name: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "metwork_plugin/.layerapi2_label".into(),
            format!("plugin_{name}@generic\n").into_bytes(),
        ),
        (
            "metwork_plugin/.plugin_format_version".into(),
            b"1.0.0\n".to_vec(),
        ),
        (
            "metwork_plugin/config.ini".into(),
            config_ini("1.0.0").into_bytes(),
        ),
        (
            "metwork_plugin/.metadata.json".into(),
            metadata_json("1.0.0", 10).into_bytes(),
        ),
        ("metwork_plugin/.files.json".into(), b"[]".to_vec()),
    ]
}

/// True while a process of the process group `pgid` runs (zombies aside: nothing here
/// reaps orphans, and a zombie does nothing).
pub fn process_group_is_running(pgid: i32) -> bool {
    fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .any(|entry| {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                return false;
            };
            let Some(at) = stat.rfind(')') else {
                return false;
            };
            let fields: Vec<&str> = stat[at + 1..].split_whitespace().collect();
            fields.len() > 2
                && fields[0] != "Z"
                && fields[0] != "X"
                && fields[2] == pgid.to_string()
        })
}

/// A small pseudo-random generator (xorshift), seeded from the clock; the seed goes
/// into failure messages so a failing run can be told apart.
pub struct Random {
    pub seed: u64,
    state: u64,
}

impl Random {
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64
            | 1;
        Random { seed, state: seed }
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % bound.max(1)
    }
}

/// The `crontab` program; installed with apt-get when missing, else the test fails.
pub fn crontab_program() -> PathBuf {
    if !has_program("crontab") {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "cron"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    require_program("crontab")
}

/// The user's crontab (`crontab -l`; empty when there is none).
pub fn read_crontab() -> String {
    let output = Command::new(crontab_program())
        .arg("-l")
        .output()
        .expect("run crontab -l");
    if output.status.success() {
        String::from_utf8(output.stdout).expect("utf-8 crontab")
    } else {
        String::new()
    }
}

/// Replaces the user's crontab with `text` (`crontab -r` when empty).
pub fn write_crontab(text: &str) {
    let program = crontab_program();
    if text.is_empty() {
        let _ = Command::new(&program).arg("-r").output();
        return;
    }
    let mut child = Command::new(program)
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run crontab -");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "crontab - failed");
}
