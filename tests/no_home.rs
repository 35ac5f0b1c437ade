//! Commands started without `HOME`, `XDG_DATA_HOME` and `XDG_CONFIG_HOME` (as cron and
//! systemd start them) agree on the module context: the runtime home is below the home
//! directory of the password file, for the layer commands, the plugin commands, cron,
//! cronwrap, the daemons, doctor and collections alike.
//!
//! The commands run as a real unprivileged user created for the test (with a temporary
//! home directory), with an environment holding `PATH` only. Needs root (to create the
//! user); skipped otherwise.

mod common;
mod plugin_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use plugin_support::*;

/// A system user made for the test, removed (with the temporary directory) when dropped,
/// also when the test fails.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
    /// The temporary directory: `home/` (the user's home), `bin/mfenv`, files to install.
    root: PathBuf,
    home: PathBuf,
    binary: PathBuf,
}

impl TestUser {
    fn create() -> Option<TestUser> {
        let euid = Command::new("id").arg("-u").output().expect("run id");
        if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
            eprintln!("skipped: creating a user needs root");
            return None;
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        let name = format!("mfnh{}x{}", std::process::id(), stamp % 100_000);
        let root = std::env::temp_dir().join(format!("mfenv-no-home-{name}"));
        fs::create_dir_all(&root).expect("temp dir");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
        let home = root.join("home");
        let status = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(&name)
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
        let id = |flag: &str| -> u32 {
            let output = Command::new("id")
                .args([flag, &name])
                .output()
                .expect("run id");
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("a numeric id")
        };
        let mut user = TestUser {
            uid: id("-u"),
            gid: id("-g"),
            name,
            binary: root.join("bin/mfenv"),
            root,
            home,
        };
        fs::create_dir_all(&user.home).expect("home dir");
        std::os::unix::fs::chown(&user.home, Some(user.uid), Some(user.gid)).expect("chown home");
        // A copy the user can run whatever the modes of the build directory.
        fs::create_dir_all(user.root.join("bin")).expect("bin dir");
        fs::copy(mfenv_binary(), &user.binary).expect("copy mfenv");
        fs::set_permissions(&user.binary, fs::Permissions::from_mode(0o755)).expect("chmod");
        user.home = user.home.canonicalize().expect("home path");
        Some(user)
    }

    /// `mfenv ARGS` as the user, from its home, with `PATH` as the whole environment.
    fn command(&self, args: &[&str], path: &str) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", path)
            .current_dir(&self.home)
            .uid(self.uid)
            .gid(self.gid);
        command
    }

    fn run(&self, args: &[&str], path: &str) -> Output {
        self.command(args, path).output().expect("run mfenv")
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str], path: &str) -> String {
        let output = self.run(args, path);
        assert!(
            output.status.success(),
            "`mfenv {}` failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        stdout(&output)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // A supervisor left by a failed assertion would outlive the user.
        let _ = self.command(&["daemons", "stop"], "/usr/bin:/bin").output();
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The `.plugin` file of plugin `foo` (with a crontab), readable by anyone.
fn foo_release(into: &Path) -> PathBuf {
    let fx = PluginFixture::new();
    let source = fx.source("foo", "1.0.0");
    fs::write(
        source.join("crontab"),
        "*/5 * * * * {{MFENV_CRONWRAP}} --log-capture-to foo.log -- plugin_wrapper foo -- foo_hello\n",
    )
    .expect("crontab");
    let file = fx.release(&source);
    let copy = into.join(file.file_name().expect("a file name"));
    fs::copy(&file, &copy).expect("copy the release");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).expect("chmod");
    copy
}

#[test]
fn without_home_every_command_family_uses_the_password_files_home() {
    let Some(user) = TestUser::create() else {
        return;
    };
    let runtime = user.home.join(".local/share/mfenv");
    let plugin_home = runtime.join("var/plugins/foo");
    let plugin_home = utf8_path(&plugin_home).to_owned();
    // A fake `crontab` (the user's crontab is a file of the temporary directory).
    let fake_bin = user.root.join("fake-bin");
    fs::create_dir_all(&fake_bin).expect("fake bin");
    let crontab_file = user.home.join("crontab.txt");
    write_executable(
        &fake_bin.join("crontab"),
        &format!(
            "#!/bin/sh\nF='{}'\nif [ \"$1\" = -l ]; then\n  [ -f \"$F\" ] && exec cat \"$F\"\n  echo 'no crontab for test' >&2; exit 1\nfi\ncat -- \"${{1:--}}\" > \"$F\"\n",
            crontab_file.display()
        ),
    );
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display());
    let path = path.as_str();
    let file = foo_release(&user.root);

    // plugin install (and the crontab it updates).
    user.ok(&["plugin", "install", utf8_path(&file)], path);
    assert!(
        Path::new(&plugin_home).join("bin/foo_hello").is_file(),
        "installed below the password file's home"
    );
    let crontab = fs::read_to_string(&crontab_file).expect("the crontab written");
    let cronwrap = runtime.join("var/cron/bin/cronwrap.sh");
    assert!(
        crontab.contains(utf8_path(&cronwrap)),
        "the crontab runs the runtime home's cronwrap.sh:\n{crontab}"
    );

    // The layer commands see the plugin layer.
    let layers = user.ok(&["layers", "--raw"], path);
    assert!(
        layers.contains("plugin_foo@generic") && layers.contains(&plugin_home),
        "layers:\n{layers}"
    );
    assert_eq!(
        user.ok(&["is-installed", "plugin_foo@generic"], path),
        "1\n"
    );
    assert_eq!(
        user.ok(&["home", "plugin_foo@generic"], path),
        format!("{plugin_home}\n")
    );
    let code = user.ok(&["load", "--shell", "sh", "plugin_foo@generic"], path);
    assert!(code.contains(&plugin_home), "load:\n{code}");
    assert_eq!(
        user.ok(
            &["exec", "-l", "plugin_foo@generic", "--", "foo_hello"],
            path
        ),
        "hello from foo 1.0.0\n"
    );

    // The plugin commands.
    let list = user.ok(&["plugin", "list", "--raw"], path);
    assert!(
        list.contains(&format!("foo~~~1.0.0~~~1~~~{plugin_home}")),
        "plugin list:\n{list}"
    );
    assert_eq!(
        user.ok(&["plugin", "info", "--just-home", "foo"], path),
        format!("{plugin_home}\n")
    );
    let env_code = user.ok(&["plugin", "env", "--shell", "sh", "foo"], path);
    assert!(env_code.contains(&plugin_home), "plugin env:\n{env_code}");
    assert_eq!(
        user.ok(&["plugin", "wrapper", "foo", "--", "foo_hello"], path),
        "hello from foo 1.0.0\n"
    );

    // cron install records the context below the password file's home.
    user.ok(&["cron", "install"], path);
    assert!(cronwrap.exists(), "`{}` made", cronwrap.display());
    assert!(user.home.join(".local/state/mfenv/cron").is_dir());

    // cronwrap's log files.
    user.ok(
        &[
            "cronwrap",
            "--log-capture-to",
            "job.log",
            "--",
            "echo",
            "logged",
        ],
        path,
    );
    let log = fs::read_to_string(runtime.join("log/job.log")).expect("the log file");
    assert!(log.contains("logged"), "log:\n{log}");

    // The daemon supervisor's socket.
    let status = user.run(&["daemons", "status", "--json"], path);
    assert_eq!(status.status.code(), Some(3), "{}", stderr(&status));
    user.ok(&["daemons", "start"], path);
    assert!(runtime.join("var/daemons.sock").exists(), "the socket");
    let status = user.ok(&["daemons", "status", "--json"], path);
    assert!(status.contains("\"running\": true"), "status:\n{status}");
    user.ok(&["daemons", "stop"], path);

    // doctor reports the same directories.
    let output = user.run(&["doctor", "--json"], path);
    let report = stdout(&output);
    assert!(
        report.contains(&format!("{}/var/plugins", utf8_path(&runtime))),
        "doctor:\n{report}"
    );

    // Collections live below the password file's home too.
    user.ok(&["collection", "save", "work"], path);
    assert!(user.home.join(".config/mfenv/collections/work").is_file());
    assert_eq!(user.ok(&["collection", "list"], path), "work\n");

    // plugin uninstall finds it there.
    user.ok(&["plugin", "uninstall", "foo"], path);
    assert!(!Path::new(&plugin_home).exists(), "uninstalled");
    assert_eq!(
        user.ok(&["is-installed", "plugin_foo@generic"], path),
        "0\n"
    );
}
