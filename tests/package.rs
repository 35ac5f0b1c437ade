//! The packages built by `scripts/package`, used as an administrator would: the `.deb`
//! installed with the real `dpkg -i` (then removed), `mfenv --version`, `man mfenv` and
//! the bash completion from the installed files, the systemd units checked by
//! `systemd-analyze verify`, the `.rpm`'s file list read by `rpm -qlp`, the release
//! archive checked with `sha256sum -c` and run. Also `scripts/demo`, which builds the
//! same release binary: it says what it does and leaves the tracked files alone.
//!
//! The release binary is built once (a few minutes the first time, then reused from
//! `target/`). Installing needs root; a missing program makes the test fail, naming the
//! Debian package (`scripts/test` installs them).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::fcntl::{Flock, FlockArg};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command`, failing the test with both streams unless it succeeded.
fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn require(program: &str, package: &str) {
    assert!(
        which::which(program).is_ok(),
        "`{program}` is required by this test but is not installed: run `scripts/test` \
         or `apt-get install {package}`"
    );
}

fn is_root() -> bool {
    let id = Command::new("id").arg("-u").output().expect("run id -u");
    text(&id.stdout).trim() == "0"
}

/// Serialises the tests of every checkout on this machine that install the package.
fn machine_lock() -> Flock<File> {
    let file = File::create("/tmp/mfenv-package.lock").expect("create /tmp/mfenv-package.lock");
    Flock::lock(file, FlockArg::LockExclusive).expect("lock /tmp/mfenv-package.lock")
}

/// Removes the installed package when the test ends, passed or not.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "mfenv"]).output();
    }
}

/// Files every package holds below `/usr`, with zsh's completion directory of the
/// distribution; the docs are the repository's README.md and docs/*.md.
fn expected_files(zsh_dir: &str) -> BTreeSet<String> {
    let mut files: BTreeSet<String> = [
        "/usr/bin/mfenv",
        "/usr/share/man/man1/mfenv.1.gz",
        "/usr/share/bash-completion/completions/mfenv",
        "/usr/share/fish/vendor_completions.d/mfenv.fish",
        "/usr/lib/systemd/system/mfenv@.service",
        "/usr/lib/systemd/user/mfenv.service",
        "/usr/lib/systemd/user/mfenv@.service",
        "/usr/share/doc/mfenv/README.md",
        "/usr/share/doc/mfenv/copyright",
        "/usr/share/doc/mfenv/examples/module-user.conf",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    files.insert(format!("{zsh_dir}/_mfenv"));
    for entry in std::fs::read_dir(repo().join("docs")).expect("read docs/") {
        let name = entry.expect("docs/ entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            files.insert(format!("/usr/share/doc/mfenv/{name}"));
        }
    }
    files
}

/// Checks a package's file list: every expected file, nothing else but more manual pages
/// of mfenv (one per command).
fn check_file_list(what: &str, listed: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(listed).collect();
    assert!(
        missing.is_empty(),
        "{what} lacks {missing:?}; it has {listed:#?}"
    );
    let extra: Vec<_> = listed
        .difference(expected)
        .filter(|path| !(path.starts_with("/usr/share/man/man1/mfenv") && path.ends_with(".1.gz")))
        .collect();
    assert!(extra.is_empty(), "{what} has unexpected files {extra:?}");
}

/// `systemd-analyze verify` on the installed units, under instance names (a template is
/// verified as an instance), with the installed /usr/bin/mfenv and manual page that
/// they reference. Warnings count as failures.
fn verify_units(dir: &Path) {
    let units = dir.join("units");
    std::fs::create_dir_all(&units).unwrap();
    let runtime = dir.join("xdg-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let copy = |from: &str, to: &str| -> PathBuf {
        let target = units.join(to);
        std::fs::copy(from, &target).unwrap_or_else(|e| panic!("copy {from}: {e}"));
        target
    };
    let system = copy(
        "/usr/lib/systemd/system/mfenv@.service",
        "mfenv@mfdata.service",
    );
    let user_module = copy(
        "/usr/lib/systemd/user/mfenv@.service",
        "mfenv@mfserv.service",
    );
    let user = copy("/usr/lib/systemd/user/mfenv.service", "mfenv.service");
    for (user_manager, files) in [(false, vec![&system]), (true, vec![&user_module, &user])] {
        let mut command = Command::new("systemd-analyze");
        if user_manager {
            command.arg("--user").env("XDG_RUNTIME_DIR", &runtime);
        }
        let output = run(command.arg("verify").args(files));
        assert!(
            output.stdout.is_empty() && output.stderr.is_empty(),
            "systemd-analyze verify warned:\n{}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
    // The same check catches a unit whose program is missing: it is not vacuous.
    let unit = std::fs::read_to_string(&system).unwrap();
    let broken = units.join("mfenv@broken.service");
    std::fs::write(
        &broken,
        unit.replace("/usr/bin/mfenv", "/nonexistent/mfenv"),
    )
    .unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&broken)
        .output()
        .expect("run systemd-analyze");
    assert!(
        !output.status.success() && text(&output.stderr).contains("/nonexistent/mfenv"),
        "systemd-analyze verify accepted a unit without its program: {output:?}"
    );
}

#[test]
fn packages_install_and_work() {
    assert!(
        is_root(),
        "this test installs the .deb with dpkg -i: run it as root (scripts/test in CI)"
    );
    for (program, package) in [
        ("dpkg-deb", "dpkg"),
        ("rpm", "rpm"),
        ("rpmbuild", "rpm"),
        ("man", "man-db"),
        ("systemd-analyze", "systemd"),
        ("sha256sum", "coreutils"),
        ("bash", "bash"),
    ] {
        require(program, package);
    }
    let _lock = machine_lock();
    let status = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "mfenv"])
        .output()
        .expect("run dpkg-query");
    assert!(
        !text(&status.stdout).contains("installed"),
        "the mfenv package is already installed on this machine; this test installs and \
         removes it: remove it first (dpkg -r mfenv)"
    );
    assert!(
        !Path::new("/usr/bin/mfenv").exists(),
        "/usr/bin/mfenv exists and is not from the mfenv package; this test would replace it"
    );

    let out = tempfile::tempdir().unwrap();
    let built = run(Command::new(repo().join("scripts/package"))
        .arg("--out")
        .arg(out.path()));
    let arch = std::env::consts::ARCH;
    let name = format!("mfenv-{VERSION}-{arch}-linux");
    let listed: Vec<PathBuf> = text(&built.stdout).lines().map(PathBuf::from).collect();
    let deb_arch = if arch == "aarch64" { "arm64" } else { "amd64" };
    let deb = out.path().join(format!("mfenv_{VERSION}-1_{deb_arch}.deb"));
    let rpm = out.path().join(format!("mfenv-{VERSION}-1.{arch}.rpm"));
    let archive = out.path().join(format!("{name}.tar.gz"));
    let checksum = out.path().join(format!("{name}.tar.gz.sha256"));
    assert_eq!(
        listed,
        [deb.clone(), rpm.clone(), archive.clone(), checksum],
        "scripts/package's output"
    );

    // The .deb, installed for real.
    let installed = Installed;
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let files = run(Command::new("dpkg").args(["-L", "mfenv"]));
    let files: BTreeSet<String> = text(&files.stdout)
        .lines()
        .filter(|path| Path::new(path).is_file())
        .map(str::to_owned)
        .collect();
    check_file_list(
        "the .deb",
        &files,
        &expected_files("/usr/share/zsh/vendor-completions"),
    );
    let version = run(Command::new("/usr/bin/mfenv").arg("--version"));
    assert_eq!(text(&version.stdout), format!("mfenv {VERSION}\n"));

    let page = run(Command::new("man").args(["-w", "mfenv"]));
    assert_eq!(text(&page.stdout).trim(), "/usr/share/man/man1/mfenv.1.gz");
    // One page per command, each one `man` finds.
    for command in ["mfenv-load", "mfenv-plugin-install", "mfenv-doctor"] {
        let page = run(Command::new("man").args(["-w", command]));
        assert_eq!(
            text(&page.stdout).trim(),
            format!("/usr/share/man/man1/{command}.1.gz")
        );
    }
    let page = run(Command::new("man")
        .args(["-P", "cat", "mfenv"])
        .env("MANWIDTH", "80"));
    let page = text(&page.stdout);
    for section in ["NAME", "SYNOPSIS", "mfenv", "install-aliases", "daemons"] {
        assert!(page.contains(section), "man mfenv lacks {section}:\n{page}");
    }

    // The completion as bash-completion loads it: the file defines the completion of
    // mfenv, and completing `mfenv plu` offers `plugin`.
    let completion = run(Command::new("bash").args([
        "--noprofile",
        "--norc",
        "-c",
        r#"source /usr/share/bash-completion/completions/mfenv || exit 1
spec=$(complete -p mfenv) || exit 1
printf '%s\n' "$spec"
function=${spec#*-F }; function=${function%% *}
COMP_WORDS=(mfenv plu); COMP_CWORD=1; COMP_LINE='mfenv plu'; COMP_POINT=${#COMP_LINE}
"$function" mfenv plu mfenv
printf 'reply: %s\n' "${COMPREPLY[@]}""#,
    ]));
    let completion = text(&completion.stdout);
    assert!(
        completion.starts_with("complete ")
            && completion.contains(" -F ")
            && completion.contains("reply: plugin\n"),
        "bash completion from the installed file:\n{completion}"
    );

    verify_units(out.path());

    drop(installed);
    assert!(
        !Path::new("/usr/bin/mfenv").exists(),
        "dpkg -r mfenv left /usr/bin/mfenv"
    );

    // The .rpm: its metadata and file list.
    let query = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH}"])
        .arg(&rpm));
    assert_eq!(text(&query.stdout), format!("mfenv {VERSION} 1 {arch}"));
    let list = run(Command::new("rpm").arg("-qlp").arg(&rpm));
    let rpm_files: BTreeSet<String> = text(&list.stdout)
        .lines()
        .filter(|path| {
            !matches!(
                *path,
                "/usr/share/doc/mfenv" | "/usr/share/doc/mfenv/examples"
            )
        })
        .map(str::to_owned)
        .collect();
    check_file_list(
        "the .rpm",
        &rpm_files,
        &expected_files("/usr/share/zsh/site-functions"),
    );

    // The release archive: the checksum verifies, and the binary in it runs.
    let check = run(Command::new("sha256sum")
        .args(["-c", &format!("{name}.tar.gz.sha256")])
        .current_dir(out.path()));
    assert_eq!(text(&check.stdout), format!("{name}.tar.gz: OK\n"));
    let extracted = out.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&extracted));
    let top = extracted.join(&name);
    let archived: BTreeSet<String> = walk(&top)
        .into_iter()
        .map(|path| format!("/usr/{}", path.strip_prefix(&top).unwrap().display()))
        .collect();
    check_file_list(
        "the release archive",
        &archived,
        &expected_files("/usr/share/zsh/site-functions"),
    );
    let version = run(Command::new(top.join("bin/mfenv")).arg("--version"));
    assert_eq!(text(&version.stdout), format!("mfenv {VERSION}\n"));

    // A tampered archive fails the check.
    std::fs::write(&archive, b"not the archive").unwrap();
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{name}.tar.gz.sha256")])
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(
        !check.status.success(),
        "sha256sum -c accepted a changed archive"
    );
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn demo_reports_its_build_and_leaves_tracked_files_alone() {
    require("git", "git");
    let status = || {
        let output = run(Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=all"])
            .current_dir(repo()));
        text(&output.stdout)
    };
    let before = status();
    let demo = run(&mut Command::new(repo().join("scripts/demo")));
    let messages = text(&demo.stderr);
    assert!(
        messages.contains("scripts/demo: building mfenv"),
        "scripts/demo did not say it was building:\n{messages}"
    );
    assert!(
        text(&demo.stdout).contains("the environment is back to exactly what it was"),
        "{}",
        text(&demo.stdout)
    );
    assert_eq!(
        status(),
        before,
        "scripts/demo changed files of the repository"
    );
}
