//! `plugin make` killed while it swaps the new virtualenv in without `RENAME_EXCHANGE`
//! (`MFENV_NO_RENAME_EXCHANGE=1`, the two-rename path): the next `plugin make` finds a
//! complete `local/`, the previous or the new one, even when its own rebuild fails.
//!
//! The virtualenv comes from a fake `python3` (instant, no network). The kills are real
//! `SIGKILL`s delivered by `strace` at a chosen `rename` or `unlinkat` of mfenv itself,
//! so every step of the swap is hit, not just the ones a timer happens to fall on.

mod common;
mod plugin_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use plugin_support::*;

struct Scene {
    plugins: PluginFixture,
    home: PathBuf,
    path: String,
    /// The fake `python3 -m venv` writes this file's content into `<venv>/generation`.
    generation: PathBuf,
    /// While it exists, the fake `python3 -m venv` fails.
    fail_flag: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let plugins = PluginFixture::new();
        let home = plugins.source("alpha", "1.0.0");
        let sources = home.join("python3_virtualenv_sources");
        fs::create_dir_all(&sources).unwrap();
        fs::write(sources.join("requirements-to-freeze.txt"), "# nothing\n").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .append(true)
            .open(sources.join("requirements-to-freeze.txt"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let fake_bin = plugins.root().join("fake-bin");
        fs::create_dir_all(&fake_bin).unwrap();
        let generation = plugins.root().join("generation");
        let fail_flag = plugins.root().join("fail");
        write_executable(
            &fake_bin.join("python3"),
            &format!(
                "#!/bin/sh\n\
                 [ \"$1\" = -c ] && exit 0\n\
                 if [ \"$1\" = -m ] && [ \"$2\" = venv ]; then\n\
                 \x20 [ -e '{fail}' ] && {{ echo 'no network' >&2; exit 1; }}\n\
                 \x20 shift 2; [ \"$1\" = --copies ] && shift\n\
                 \x20 mkdir -p \"$1/bin\" \"$1/lib/python3.99/site-packages\" || exit 1\n\
                 \x20 printf '#!/bin/sh\\necho fake\\n' > \"$1/bin/python3\"; chmod +x \"$1/bin/python3\"\n\
                 \x20 cat '{generation}' > \"$1/generation\"\n\
                 \x20 exit 0\n\
                 fi\n\
                 exit 1\n",
                fail = fail_flag.display(),
                generation = generation.display()
            ),
        );
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.display());
        Scene {
            plugins,
            home,
            path,
            generation,
            fail_flag,
        }
    }

    /// Asks for a new virtualenv of generation `n` at the next `plugin make`.
    fn want(&self, n: u32) {
        fs::write(&self.generation, format!("{n}\n")).unwrap();
        fs::write(
            self.home
                .join("python3_virtualenv_sources/requirements3.txt"),
            format!("# generation {n}\n"),
        )
        .unwrap();
    }

    /// `plugin make` on the two-rename path, optionally under `strace` killing it at
    /// the `at`-th call of `syscall`.
    fn make(&self, kill_at: Option<(&str, u64)>, log: Option<&Path>) -> Output {
        let mfenv = mfenv_binary();
        let mut args: Vec<String> = Vec::new();
        let program = if kill_at.is_some() || log.is_some() {
            args.extend(["-qq".into(), "-o".into()]);
            args.push(log.map_or("/dev/null".into(), |log| utf8_path(log).to_owned()));
            if let Some((syscall, at)) = kill_at {
                args.push(format!("--trace={syscall}"));
                args.push(format!("--inject={syscall}:signal=KILL:when={at}"));
            } else {
                args.push("--trace=rename,unlinkat".into());
            }
            args.push(utf8_path(&mfenv).to_owned());
            require_program("strace")
        } else {
            mfenv
        };
        args.extend([
            "plugin".into(),
            "make".into(),
            utf8_path(&self.home).to_owned(),
        ]);
        let mut command = std::process::Command::new(program);
        command
            .env_clear()
            .envs(self.plugins.fixture.base_env())
            .env("PATH", &self.path)
            .env("MFENV_NO_RENAME_EXCHANGE", "1")
            .current_dir(&self.plugins.work)
            .args(&args);
        output_within(command, std::time::Duration::from_secs(60))
    }

    /// The generation of `local/`, `None` without a complete one.
    fn local_generation(&self) -> Option<u32> {
        let local = self.home.join("local");
        if !local.join("bin/python3").is_file() {
            return None;
        }
        fs::read_to_string(local.join("generation"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

#[test]
fn a_make_killed_at_any_step_of_the_swap_leaves_a_complete_local_for_the_next_one() {
    let scene = Scene::new();
    scene.want(1);
    let output = scene.make(None, None);
    assert_success(&output);
    assert_eq!(scene.local_generation(), Some(1));

    // How many renames and unlinkats a rebuild makes (the swap is among the last).
    scene.want(2);
    let log = scene.plugins.root().join("strace.log");
    assert_success(&scene.make(None, Some(&log)));
    assert_eq!(scene.local_generation(), Some(2));
    let trace = fs::read_to_string(&log).unwrap();
    let count = |syscall: &str| {
        trace
            .lines()
            .filter(|line| line.starts_with(&format!("{syscall}(")))
            .count() as u64
    };
    let (renames, unlinks) = (count("rename"), count("unlinkat"));
    assert!(renames >= 2, "{trace}");

    let mut random = Random::new();
    let mut generation = 2;
    let (mut kept_old, mut got_new) = (0, 0);
    for round in 0..40 {
        generation += 1;
        scene.want(generation);
        // Every rename in turn, then random unlinkats (removing the previous tree).
        let (syscall, at) = if round < 2 * renames as usize {
            ("rename", 1 + round as u64 % renames)
        } else {
            ("unlinkat", 1 + random.below(unlinks.max(1)))
        };
        let case = format!(
            "round {round}: killed at {syscall} #{at}, seed {}",
            random.seed
        );
        let killed = scene.make(Some((syscall, at)), None);
        // The next make's rebuild fails (no network): what is left must be complete.
        fs::write(&scene.fail_flag, "").unwrap();
        let output = scene.make(None, None);
        fs::remove_file(&scene.fail_flag).unwrap();
        match scene.local_generation() {
            Some(found) if found == generation - 1 => kept_old += 1,
            Some(found) if found == generation => got_new += 1,
            found => panic!(
                "{case}: `local/` is {found:?} after a failed rebuild\nkilled run: {}\nnext run: {}",
                stderr(&killed),
                stderr(&output)
            ),
        }
        // Nothing is left aside once a make went through.
        assert_success(&scene.make(None, None));
        assert_eq!(scene.local_generation(), Some(generation), "{case}");
        let mut leftovers = children(&scene.home);
        leftovers.retain(|name| name.starts_with(".mfenv-make"));
        assert!(leftovers.is_empty(), "{case}: {leftovers:?}");
    }
    eprintln!("previous local/ kept {kept_old} times, new one {got_new} times");
    assert!(kept_old > 0, "no kill fell between the two renames");
}
