//! `mfenv plugin make` and the template Makefiles through the real binary, with the
//! real registries (PyPI and the npm registry; nothing mocked): each template is
//! bootstrapped, built, dev-linked, run through the plugin wrapper, released,
//! uninstalled, and installed again with the indexes disabled and the source tree
//! moved away, and its code still runs from the installed copy. Bad input keeps the
//! previous build; missing tools are named with their Debian packages.
//!
//! The tools are taken from the fixture's PATH (`/usr/local/bin:/usr/bin:/bin`); a
//! missing one fails the test with the package to install, never skips it.

mod common;
mod plugin_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::*;
use plugin_support::*;

/// The PATH of the fixture (see `common::Fixture::new`).
const FIXTURE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A requirement that exists nowhere.
const MISSING_PACKAGE: &str = "this-package-does-not-exist-mfenv-test";

/// `program` on the fixture's PATH, or a failed test naming the Debian package.
fn require_tool(program: &str, package: &str) -> PathBuf {
    which::which_in(program, Some(FIXTURE_PATH), "/").unwrap_or_else(|_| {
        panic!(
            "`{program}` is required by this test but is not on `{FIXTURE_PATH}`; install it (Debian: `apt-get install {package}`)"
        )
    })
}

/// The system python3, checked to have the venv module.
fn require_python() -> PathBuf {
    let python = require_tool("python3", "python3 python3-venv");
    let output = Command::new(&python)
        .args(["-c", "import venv, ensurepip"])
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "`{}` has no venv module; install it (Debian: `apt-get install python3-venv`)",
        python.display()
    );
    python
}

/// `X.Y` of the system python3.
fn python_short_version(python: &Path) -> String {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .expect("run python3");
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// `make TARGET` in `dir` with the test binary as `MFENV`, in the fixture's clean
/// environment (nothing of the developer's shell, plugin env or pip/npm settings).
fn make(fx: &PluginFixture, dir: &Path, target: &str) -> Output {
    let make = require_tool("make", "make");
    let mut command = Command::new(make);
    command
        .env_clear()
        .envs(fx.fixture.base_env())
        .current_dir(dir)
        .arg(format!("MFENV={}", mfenv_binary().display()));
    if !target.is_empty() {
        command.arg(target);
    }
    command.output().expect("run make")
}

fn assert_ok(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `mfenv ARGS` run in `cwd` with extra variables.
fn mfenv_in(fx: &PluginFixture, cwd: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut command = fx.command(args);
    command.current_dir(cwd);
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().expect("run mfenv")
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|err| panic!("mtime of {}: {err}", path.display()))
}

fn set_mtime(path: &Path, time: SystemTime) {
    fs::File::options()
        .append(true)
        .open(path)
        .and_then(|file| file.set_modified(time))
        .unwrap_or_else(|err| panic!("set mtime of {}: {err}", path.display()));
}

/// Every symlink below `dir` is relative and stays inside `dir` (what release needs).
fn assert_symlinks_stay_inside(dir: &Path) {
    let root = fs::canonicalize(dir).expect("canonical dir");
    for (path, value) in snapshot(dir) {
        if let Some(target) = value.strip_prefix("link -> ") {
            assert!(!target.starts_with('/'), "{path} -> {target} is absolute");
            let resolved = fs::canonicalize(dir.join(&path))
                .unwrap_or_else(|err| panic!("{path} -> {target}: {err}"));
            assert!(resolved.starts_with(&root), "{path} -> {target} escapes");
        }
    }
}

/// The names in `local/bin` and the stamp's content and mtime: what must not change
/// when a build fails.
fn local_state(home: &Path, short_version: &str) -> (Vec<String>, String, SystemTime) {
    let stamp = home.join(format!(
        "local/lib/python{short_version}/site-packages/requirements3.txt"
    ));
    (
        children(&home.join("local/bin")),
        fs::read_to_string(&stamp).expect("stamp"),
        mtime(&stamp),
    )
}

#[test]
fn the_python3_template_builds_a_virtualenv_that_runs_from_the_installed_copy() {
    let python = require_python();
    let short_version = python_short_version(&python);
    let fx = PluginFixture::new();
    let home = fx.bootstrap("python3", "foo");
    let sources = home.join("python3_virtualenv_sources");
    // Without `allow_binary_packages` everything is built from source, pip taking only
    // the build tools as wheels: the stricter of the two paths.
    fs::remove_file(sources.join("allow_binary_packages")).expect("remove policy");
    // six: a tiny dependency-free module; pyflakes: tiny, pure python, with a console
    // script (whose shebang must survive the moves).
    let mut to_freeze = fs::read_to_string(sources.join("requirements-to-freeze.txt"))
        .expect("requirements-to-freeze.txt");
    to_freeze.push_str("six==1.16.0\npyflakes==3.2.0\n");
    fs::write(sources.join("requirements-to-freeze.txt"), &to_freeze).expect("write");

    // make: freeze, then build local/.
    let output = make(&fx, &home, "");
    assert_ok(&output, "make");
    let err = stderr(&output);
    assert!(err.contains("freezing"), "{err}");
    assert!(err.contains("building `local/`"), "{err}");
    assert_eq!(
        fs::read_to_string(sources.join("requirements3.txt")).expect("frozen"),
        "pyflakes==3.2.0\nsix==1.16.0\n"
    );
    let stamp = home.join(format!(
        "local/lib/python{short_version}/site-packages/requirements3.txt"
    ));
    assert_eq!(
        fs::read_to_string(&stamp).expect("stamp"),
        "pyflakes==3.2.0\nsix==1.16.0\n"
    );
    let script = fs::read_to_string(home.join("local/bin/pyflakes")).expect("script");
    assert!(script.starts_with("#!/bin/sh\n'''exec' "), "{script}");
    assert!(!script.contains(utf8_path(&home)), "{script}");
    assert_symlinks_stay_inside(&home.join("local"));
    assert!(!home.join(".mfenv-make-local").exists());

    // Up to date: nothing is rebuilt.
    let stamp_time = mtime(&stamp);
    let output = make(&fx, &home, "");
    assert_ok(&output, "make (again)");
    let err = stderr(&output);
    assert!(err.contains("`local/` is up to date"), "{err}");
    assert!(
        !err.contains("freezing") && !err.contains("building"),
        "{err}"
    );
    assert_eq!(mtime(&stamp), stamp_time);

    // make develop: the dev link runs the plugin's code and its dependencies.
    assert_ok(&make(&fx, &home, "develop"), "make develop");
    let out = fx.ok(&[
        "plugin",
        "wrapper",
        "foo",
        "--",
        "python3",
        "-c",
        "import six, foo.main; print(six.__file__); print(foo.main.__file__)",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].ends_with(&format!(
            "local/lib/python{short_version}/site-packages/six.py"
        )),
        "{out}"
    );
    assert!(lines[1].ends_with("foo/main.py"), "{out}");
    let out = fx.ok(&["plugin", "wrapper", "foo", "--", "pyflakes", "--version"]);
    assert!(out.starts_with("3.2.0"), "{out}");

    // make release, then uninstall the dev link and move the source tree away.
    let output = make(&fx, &home, "release");
    assert_ok(&output, "make release");
    let file_name = "foo-0.0.1-1.metwork.generic.plugin";
    assert!(home.join(file_name).is_file());
    fx.ok(&["plugin", "uninstall", "foo"]);
    let moved = fx.work.join("foo.moved");
    fs::rename(&home, &moved).expect("move the source tree");
    // The source tree's own virtualenv survives the move too.
    let output = Command::new(moved.join("local/bin/pyflakes"))
        .arg("--version")
        .env_clear()
        .envs(fx.fixture.base_env())
        .output()
        .expect("run pyflakes");
    assert_ok(&output, "pyflakes of the moved tree");

    // Install with the indexes disabled: nothing is downloaded.
    let no_network = [
        ("PIP_NO_INDEX", "1"),
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
        ("npm_config_offline", "true"),
    ];
    let output = fx.run_with(
        &["plugin", "install", utf8_path(&moved.join(file_name))],
        &no_network,
    );
    assert_success(&output);
    let installed = fx.base.join("foo");
    assert!(
        !fs::symlink_metadata(&installed)
            .expect("installed")
            .is_symlink()
    );
    // PYTHON3_SHORT_VERSION unset: the virtualenv's python3, first on PATH, finds them.
    let code = "import six, sys, foo.main; print(six.__file__); print(foo.main.__file__); print(sys.prefix)";
    let out = fx.ok(&["plugin", "wrapper", "foo", "--", "python3", "-c", code]);
    let lines: Vec<&str> = out.lines().collect();
    let installed_text = utf8_path(&installed);
    assert_eq!(
        lines,
        [
            format!("{installed_text}/local/lib/python{short_version}/site-packages/six.py"),
            format!("{installed_text}/foo/main.py"),
            format!("{installed_text}/local"),
        ],
        "{out}"
    );
    // The console script, relocated, runs from the installed copy.
    let checked = fx.root().join("checked.py");
    fs::write(&checked, "import os\n").expect("file to check");
    let output = fx.run_with(
        &[
            "plugin",
            "wrapper",
            "foo",
            "--",
            "pyflakes",
            utf8_path(&checked),
        ],
        &no_network,
    );
    assert!(
        stdout(&output).contains("'os' imported but unused"),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    // PYTHON3_SHORT_VERSION set: the layer puts site-packages on PYTHONPATH, so even
    // the system python3 finds the dependencies.
    let output = fx.run_with(
        &[
            "plugin",
            "wrapper",
            "foo",
            "--",
            utf8_path(&python),
            "-c",
            "import six, sys; print(six.__file__); print(sys.prefix)",
        ],
        &[("PYTHON3_SHORT_VERSION", short_version.as_str())],
    );
    assert_success(&output);
    let out = stdout(&output);
    assert!(
        out.starts_with(&format!(
            "{installed_text}/local/lib/python{short_version}/site-packages/six.py\n"
        )),
        "{out}"
    );
    assert!(!out.contains(&format!("{installed_text}/local\n")), "{out}");

    // Bad input, in the source tree again: the previous build is kept.
    fs::rename(&moved, &home).expect("move the source tree back");
    let frozen_before = fs::read_to_string(sources.join("requirements3.txt")).expect("frozen");
    let local_before = local_state(&home, &short_version);
    // A requirement missing from the index: the freeze fails.
    fs::write(
        sources.join("requirements-to-freeze.txt"),
        format!("{to_freeze}{MISSING_PACKAGE}==9.9.9\n"),
    )
    .expect("write");
    let output = mfenv_in(&fx, &home, &["plugin", "make"], &[]);
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("mfenv: error: cannot freeze"), "{err}");
    assert!(err.contains(MISSING_PACKAGE), "{err}");
    assert!(
        err.contains("`requirements3.txt` was left as it was"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(sources.join("requirements3.txt")).expect("frozen"),
        frozen_before
    );
    assert_eq!(local_state(&home, &short_version), local_before);
    // A frozen requirement missing from the index: the build fails, local/ stays.
    fs::write(sources.join("requirements-to-freeze.txt"), &to_freeze).expect("write");
    let now = SystemTime::now();
    set_mtime(
        &sources.join("requirements-to-freeze.txt"),
        now - Duration::from_secs(60),
    );
    fs::write(
        sources.join("requirements3.txt"),
        format!("six==1.16.0\n{MISSING_PACKAGE}==9.9.9\n"),
    )
    .expect("write");
    let output = mfenv_in(&fx, &home, &["plugin", "make"], &[]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("mfenv: error: cannot build"), "{err}");
    assert!(err.contains(MISSING_PACKAGE), "{err}");
    assert!(err.contains("`local/` was left as it was"), "{err}");
    assert_eq!(local_state(&home, &short_version), local_before);
    assert!(!home.join(".mfenv-make-local").exists());
    let output = Command::new(home.join("local/bin/python3"))
        .args(["-c", "import six, pyflakes"])
        .env_clear()
        .envs(fx.fixture.base_env())
        .output()
        .expect("run python3");
    assert_ok(&output, "the previous virtualenv");

    // make clean removes the build products; make superclean unfreezes.
    fs::write(sources.join("requirements3.txt"), &frozen_before).expect("write");
    assert_ok(&make(&fx, &home, "clean"), "make clean");
    assert!(!home.join("local").exists());
    assert!(!home.join(file_name).exists());
    assert!(sources.join("requirements3.txt").is_file());
    assert_ok(&make(&fx, &home, "superclean"), "make superclean");
    assert!(!sources.join("requirements3.txt").exists());
    assert!(sources.join("requirements-to-freeze.txt").is_file());
}

#[test]
fn the_node_template_builds_node_modules_that_run_from_the_installed_copy() {
    require_tool("npm", "npm");
    require_tool("node", "nodejs");
    let fx = PluginFixture::new();
    let home = fx.bootstrap("node", "bar");
    let package = home.join("package.json");
    let text = fs::read_to_string(&package).expect("package.json");
    assert!(text.contains("\"dependencies\": {}"), "{text}");
    // is-number: tiny, no dependencies.
    let with_dependency = text.replace(
        "\"dependencies\": {}",
        "\"dependencies\": {\n    \"is-number\": \"7.0.0\"\n  }",
    );
    fs::write(&package, &with_dependency).expect("write");

    let output = make(&fx, &home, "");
    assert_ok(&output, "make");
    assert!(
        stderr(&output).contains("npm install"),
        "{}",
        stderr(&output)
    );
    assert!(home.join("node_modules/is-number/package.json").is_file());
    let lock = home.join("package-lock.json");
    assert!(lock.is_file());
    let output = make(&fx, &home, "");
    assert_ok(&output, "make (again)");
    let err = stderr(&output);
    assert!(err.contains("`node_modules` is up to date"), "{err}");
    assert!(!err.contains("npm "), "{err}");

    assert_ok(&make(&fx, &home, "develop"), "make develop");
    let resolve = "console.log(require.resolve('is-number'))";
    let out = fx.ok(&["plugin", "wrapper", "bar", "--", "node", "-e", resolve]);
    assert!(out.ends_with("node_modules/is-number/index.js\n"), "{out}");

    // make release: clean, then `npm ci` from the lock file.
    let output = make(&fx, &home, "release");
    assert_ok(&output, "make release");
    assert!(stderr(&output).contains("npm ci"), "{}", stderr(&output));
    let file_name = "bar-0.0.1-1.metwork.generic.plugin";
    assert!(home.join(file_name).is_file());
    fx.ok(&["plugin", "uninstall", "bar"]);
    let moved = fx.work.join("bar.moved");
    fs::rename(&home, &moved).expect("move the source tree");
    let offline = [
        ("npm_config_offline", "true"),
        ("PIP_NO_INDEX", "1"),
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
    ];
    let output = fx.run_with(
        &["plugin", "install", utf8_path(&moved.join(file_name))],
        &offline,
    );
    assert_success(&output);
    let output = fx.run_with(
        &["plugin", "wrapper", "bar", "--", "node", "-e", resolve],
        &offline,
    );
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        format!(
            "{}/node_modules/is-number/index.js\n",
            utf8_path(&fx.base.join("bar"))
        )
    );
    let output = fx.run_with(
        &[
            "plugin",
            "wrapper",
            "--cwd",
            "bar",
            "--",
            "node",
            "-e",
            "console.log(require('is-number')(42), require('./package.json').name)",
        ],
        &offline,
    );
    assert_success(&output);
    assert_eq!(stdout(&output), "true bar\n");

    // A dependency missing from the registry: npm fails, node_modules and the lock stay.
    fs::rename(&moved, &home).expect("move the source tree back");
    let lock_before = fs::read(&lock).expect("lock");
    fs::write(
        &package,
        with_dependency.replace(
            "\"is-number\": \"7.0.0\"",
            &format!("\"is-number\": \"7.0.0\",\n    \"{MISSING_PACKAGE}\": \"9.9.9\""),
        ),
    )
    .expect("write");
    let output = mfenv_in(&fx, &home, &["plugin", "make"], &[]);
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("mfenv: error: cannot build"), "{err}");
    assert!(err.contains("`npm install` failed"), "{err}");
    assert!(err.contains(MISSING_PACKAGE), "{err}");
    assert!(
        err.contains("the previous `node_modules` was put back"),
        "{err}"
    );
    assert!(home.join("node_modules/is-number/index.js").is_file());
    assert_eq!(fs::read(&lock).expect("lock"), lock_before);
    assert!(!home.join(".mfenv-make-node_modules").exists());

    fs::write(&package, &with_dependency).expect("write");
    assert_ok(&make(&fx, &home, "clean"), "make clean");
    assert!(!home.join("node_modules").exists());
    assert!(lock.is_file());
    assert_ok(&make(&fx, &home, "superclean"), "make superclean");
    assert!(!lock.exists());
}

#[test]
fn a_plugin_with_python3_and_node_builds_both_in_its_environment_offline() {
    require_python();
    require_tool("npm", "npm");
    let fx = PluginFixture::new();
    let home = fx.bootstrap("default", "both");
    // No crontab: install would update the user's.
    fs::remove_file(home.join("crontab")).expect("remove crontab");
    let sources = home.join("python3_virtualenv_sources");
    fs::create_dir_all(&sources).expect("sources");
    fs::write(
        sources.join("requirements-to-freeze.txt"),
        "# no dependency yet\n--index-url http://127.0.0.1:9/simple\n",
    )
    .expect("write");
    // The root package's install script sees the plugin environment.
    fs::write(
        home.join("package.json"),
        "{\n  \"name\": \"both\",\n  \"version\": \"1.0.0\",\n  \"private\": true,\n  \"scripts\": {\n    \"postinstall\": \"echo \\\"$GENERIC_CURRENT_PLUGIN_NAME $TMPDIR\\\" > seen-by-npm.txt\"\n  }\n}\n",
    )
    .expect("write");
    let config = home.join("config.ini");
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&config, old);
    let offline = [
        ("npm_config_offline", "true"),
        ("PIP_NO_INDEX", "1"),
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
    ];
    let output = mfenv_in(&fx, &home, &["plugin", "make"], &offline);
    assert_success(&output);
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains("names no requirement"), "{err}");
    assert!(err.contains("`local/` built"), "{err}");
    assert!(err.contains("`node_modules` built"), "{err}");
    assert_eq!(
        fs::read_to_string(sources.join("requirements3.txt")).expect("frozen"),
        ""
    );
    assert!(home.join("local/bin/python3").exists());
    assert!(home.join("node_modules").is_dir());
    assert!(home.join("package-lock.json").is_file());
    assert_eq!(
        fs::read_to_string(home.join("seen-by-npm.txt")).expect("seen"),
        format!("both {}\n", utf8_path(&fx.runtime.join("tmp/both")))
    );
    assert!(
        mtime(&config) > old,
        "config.ini is touched after a rebuild"
    );
    let touched = mtime(&config);
    let output = mfenv_in(&fx, &home, &["plugin", "make", utf8_path(&home)], &offline);
    assert_success(&output);
    let err = stderr(&output);
    assert!(err.contains("`local/` is up to date"), "{err}");
    assert!(err.contains("`node_modules` is up to date"), "{err}");
    assert_eq!(
        mtime(&config),
        touched,
        "nothing rebuilt, config.ini untouched"
    );

    // Released and installed, its python is the plugin's.
    let file = fx.release(&home);
    fx.ok(&["plugin", "install", utf8_path(&file)]);
    let out = fx.ok(&[
        "plugin",
        "wrapper",
        "both",
        "--",
        "python3",
        "-c",
        "import sys; print(sys.prefix)",
    ]);
    assert_eq!(out, format!("{}/local\n", utf8_path(&fx.base.join("both"))));
}

#[test]
fn a_plugin_without_dependencies_has_nothing_to_build() {
    let fx = PluginFixture::new();
    let home = fx.bootstrap("default", "plain");
    let before = snapshot(&home);
    let output = mfenv_in(&fx, &home, &["plugin", "make"], &[]);
    assert_success(&output);
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("nothing to build in"),
        "{}",
        stderr(&output)
    );
    assert_eq!(snapshot(&home), before);
    // Not a plugin directory: the check's error.
    let output = mfenv_in(&fx, &fx.work, &["plugin", "make"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("mfenv: error:"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_tools_are_named_with_the_debian_packages_to_install() {
    let python = require_python();
    let npm = require_tool("npm", "npm");
    let fx = PluginFixture::new();
    let empty_bin = fx.root().join("empty-bin");
    fs::create_dir_all(&empty_bin).expect("empty bin");

    // No python3.
    let py = fx.bootstrap("python3", "py");
    let before = snapshot(&py);
    let output = mfenv_in(
        &fx,
        &py,
        &["plugin", "make"],
        &[("PATH", utf8_path(&empty_bin))],
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("`python3` is not on PATH"), "{err}");
    assert!(
        err.contains("apt-get install python3 python3-venv"),
        "{err}"
    );
    assert_eq!(snapshot(&py), before, "nothing is written");

    // A python3 without its venv module (as Debian's without python3-venv).
    let no_venv_bin = fx.root().join("no-venv-bin");
    let shadow = fx.root().join("shadow/ensurepip");
    fs::create_dir_all(&shadow).expect("shadow");
    fs::create_dir_all(&no_venv_bin).expect("bin");
    fs::write(
        shadow.join("__init__.py"),
        "raise ModuleNotFoundError(\"No module named 'ensurepip'\")\n",
    )
    .expect("shadow module");
    write_executable(
        &no_venv_bin.join("python3"),
        &format!(
            "#!/bin/sh\nPYTHONPATH='{}' exec '{}' \"$@\"\n",
            utf8_path(&fx.root().join("shadow")),
            utf8_path(&python)
        ),
    );
    let output = mfenv_in(
        &fx,
        &py,
        &["plugin", "make"],
        &[("PATH", utf8_path(&no_venv_bin))],
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("no `venv`/`ensurepip` module"), "{err}");
    assert!(err.contains("apt-get install python3-venv"), "{err}");
    assert_eq!(snapshot(&py), before, "nothing is written");

    // No npm; then npm without node.
    let node = fx.bootstrap("node", "js");
    let before = snapshot(&node);
    let output = mfenv_in(
        &fx,
        &node,
        &["plugin", "make"],
        &[("PATH", utf8_path(&empty_bin))],
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("`npm` is not on PATH"), "{err}");
    assert!(err.contains("apt-get install npm"), "{err}");
    let npm_only = fx.root().join("npm-only");
    fs::create_dir_all(&npm_only).expect("bin");
    std::os::unix::fs::symlink(&npm, npm_only.join("npm")).expect("npm link");
    let output = mfenv_in(
        &fx,
        &node,
        &["plugin", "make"],
        &[("PATH", utf8_path(&npm_only))],
    );
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("`node` is not on PATH"), "{err}");
    assert!(err.contains("apt-get install nodejs"), "{err}");
    assert_eq!(snapshot(&node), before, "nothing is written");
}

#[test]
fn the_plugins_own_virtualenv_never_builds_it() {
    // With the plugin's directories first on PATH (a developer inside `plugin_env`),
    // a `python3` there is not the one that builds local/.
    let python = require_python();
    let fx = PluginFixture::new();
    let home = fx.bootstrap("python3", "own");
    let trap = home.join("local/bin");
    fs::create_dir_all(&trap).expect("local/bin");
    write_executable(&trap.join("python3"), "#!/bin/sh\necho trap >&2\nexit 42\n");
    let path = format!("{}:{FIXTURE_PATH}", utf8_path(&trap));
    let output = mfenv_in(&fx, &home, &["plugin", "make"], &[("PATH", &path)]);
    assert_success(&output);
    assert!(
        stderr(&output).contains(&format!("building `local/` with `{}`", python.display())),
        "{}",
        stderr(&output)
    );
    assert!(
        fs::symlink_metadata(home.join("local/bin/python3"))
            .expect("python3")
            .is_symlink()
    );
}
