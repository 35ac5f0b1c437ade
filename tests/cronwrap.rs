//! `mfenv cronwrap` with real processes: exit status, timeout of a whole process
//! group, lock, log capture, argument passing, niceness.
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn cronwrap(fixture: &Fixture, args: &[&str]) -> Command {
    let mut command = fixture.command(&["cronwrap"]);
    command.args(args);
    command.env(
        "MFMODULE_RUNTIME_HOME",
        fixture.path().join("runtime").to_str().unwrap(),
    );
    command
}

#[test]
fn the_exit_status_is_the_command_s_own() {
    let fixture = Fixture::new();
    let output = cronwrap(&fixture, &["--", "sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(7));
    let output = cronwrap(&fixture, &["--", "true"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn arguments_reach_the_command_unchanged() {
    let fixture = Fixture::new();
    let canary = fixture.path().join("canary");
    let hostile = format!("$(touch {})", canary.display());
    let output = cronwrap(&fixture, &["--", "printf", "[%s]\n", "a  b", &hostile, "*"])
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), format!("[a  b]\n[{hostile}]\n[*]\n"));
    assert!(!canary.exists());
}

#[test]
fn a_timeout_kills_the_command_and_everything_it_started_and_exits_12() {
    let fixture = Fixture::new();
    let late = fixture.path().join("late");
    let script = format!("(sleep 2; touch '{}') & sleep 30", late.display());
    let started = Instant::now();
    let output = cronwrap(&fixture, &["--timeout", "1", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(12));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr(&output).starts_with("timeout => kill -9 "),
        "{}",
        stderr(&output)
    );
    // The background grandchild was in the group: it never gets to write.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !late.exists(),
        "a process of the group survived the timeout"
    );
}

#[test]
fn a_locked_command_already_running_is_skipped_quietly() {
    let fixture = Fixture::new();
    let marker = fixture.path().join("runs");
    let script = format!("echo run >> '{}'; sleep 2", marker.display());
    let mut first = cronwrap(&fixture, &["--lock", "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock (it has written its line).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = cronwrap(&fixture, &["--lock", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(0));
    assert!(
        stdout(&second).contains("can't acquire lock"),
        "{}",
        stdout(&second)
    );
    let quiet = cronwrap(
        &fixture,
        &["--lock", "-b", "nothing", "--", "sh", "-c", &script],
    )
    .output()
    .unwrap();
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(stdout(&quiet), "");
    assert!(first.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\n");
    // Once the first run is over, the lock is free again.
    let third = cronwrap(&fixture, &["--lock", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(third.status.success());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "run\nrun\n");
}

#[test]
fn output_is_appended_to_a_log_file_relative_to_the_runtime_log_dir() {
    let fixture = Fixture::new();
    for _ in 0..2 {
        let output = cronwrap(
            &fixture,
            &[
                "--log-capture-to",
                "job.log",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2",
            ],
        )
        .output()
        .unwrap();
        assert_success(&output);
        assert_eq!(stdout(&output), "");
    }
    let log = fixture.path().join("runtime/log/job.log");
    assert_eq!(
        std::fs::read_to_string(log).unwrap(),
        "out\nerr\nout\nerr\n"
    );
}

#[test]
fn low_priority_sets_niceness_19_and_the_idle_io_class() {
    let fixture = Fixture::new();
    // Field 19 of /proc/self/stat is the niceness of the process reading it.
    let output = cronwrap(
        &fixture,
        &["--low", "--", "sh", "-c", "cut -d' ' -f19 /proc/self/stat"],
    )
    .output()
    .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), "19\n");
    let output = cronwrap(
        &fixture,
        &[
            "--nice",
            "5",
            "--",
            "sh",
            "-c",
            "cut -d' ' -f19 /proc/self/stat",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(stdout(&output), "5\n");
    let output = cronwrap(&fixture, &["--low", "--nice", "3", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn load_env_sources_a_file_before_the_command() {
    let fixture = Fixture::new();
    let file = fixture.path().join("env.sh");
    std::fs::write(&file, "export FROM_FILE='loaded value'\necho noise\n").unwrap();
    let output = cronwrap(
        &fixture,
        &[
            "--load-env",
            "--load-env-file",
            file.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "printf '%s' \"$FROM_FILE\"",
        ],
    )
    .output()
    .unwrap();
    assert_success(&output);
    assert_eq!(stdout(&output), "loaded value");
}

#[test]
fn a_missing_command_is_a_clear_error() {
    let fixture = Fixture::new();
    let output = cronwrap(&fixture, &["--", "mfenv-no-such-command"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("command not found"));
}

#[test]
fn the_historical_cronwrap_name_accepts_the_same_options() {
    let fixture = Fixture::new();
    let link = fixture.path().join("cronwrap");
    std::os::unix::fs::symlink(mfenv_binary(), &link).unwrap();
    let output = Command::new(&link)
        .env_clear()
        .envs(fixture.base_env())
        .env("MFMODULE_RUNTIME_HOME", fixture.path().join("runtime"))
        .args(["--timeout", "5", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
}

/// The pids of the live processes whose command line holds `word` as one argument.
fn processes_with_argument(word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmdline.split(|&b| b == 0).any(|arg| arg == word.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits (at most 10 s) until no process has `word` as an argument; the survivors.
fn survivors(word: &str) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with_argument(word);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when nobody holds the flock of any cronwrap lock file of `fixture`.
fn locks_are_free(fixture: &Fixture) -> bool {
    use std::os::fd::AsRawFd;
    let dir = fixture.path().join("runtime/tmp");
    std::fs::read_dir(dir).unwrap().flatten().all(|entry| {
        // A file removed since the listing (a temporary one) holds no lock.
        let file = match std::fs::File::open(entry.path()) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return true,
            Err(err) => panic!("open {}: {err}", entry.path().display()),
        };
        // SAFETY: flock on a descriptor we own.
        unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX | nix::libc::LOCK_NB) == 0 }
    })
}

/// A job that starts a grandchild escaping its process group and session (`setsid`)
/// and a child in its group, each sleeping `seconds` (the marker to find them by), and
/// says so in `ready`.
fn escaping_job(seconds: &str, ready: &std::path::Path) -> String {
    format!(
        "setsid sh -c 'sleep {seconds}; :' & sleep {seconds} & echo started > '{}'; wait",
        ready.display()
    )
}

/// A different number of seconds for every job of this test process (a marker).
fn unique_seconds(round: u32) -> String {
    (100_000 + (std::process::id() % 10_000) * 100 + round).to_string()
}

#[test]
fn a_timeout_also_kills_what_escaped_with_setsid() {
    let fixture = Fixture::new();
    let seconds = unique_seconds(99);
    let ready = fixture.path().join("ready");
    let output = cronwrap(
        &fixture,
        &[
            "--lock",
            "--timeout",
            "1",
            "--",
            "sh",
            "-c",
            &escaping_job(&seconds, &ready),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(12), "{}", stderr(&output));
    assert!(ready.exists());
    assert_eq!(
        survivors(&seconds),
        Vec::<u32>::new(),
        "survived the timeout"
    );
    assert!(locks_are_free(&fixture));
}

#[test]
fn termination_signals_are_forwarded_and_nothing_outlives_cronwrap() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let fixture = Fixture::new();
    let signals = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];
    // A small generator for the kill points (no dependency needed for this).
    let mut state = u64::from(std::process::id()) | 1;
    let mut random = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for round in 0..30u32 {
        let signal = signals[round as usize % signals.len()];
        let seconds = unique_seconds(round);
        let ready = fixture.path().join(format!("ready-{round}"));
        let mut child = cronwrap(
            &fixture,
            &[
                "--lock",
                "--kill-after",
                "1",
                "--",
                "sh",
                "-c",
                &escaping_job(&seconds, &ready),
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        // Two rounds in three kill a running job at a random point; the others kill
        // cronwrap at a random point of its start.
        if round % 3 != 0 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !ready.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(ready.exists(), "the job did not start");
        }
        std::thread::sleep(Duration::from_millis(random(60)));
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        // Killed by the signal itself before its handlers were in place (no job yet),
        // or the shell's 128 + the signal number.
        assert!(
            status.code() == Some(128 + signal as i32) || status.signal() == Some(signal as i32),
            "round {round}: {signal:?} gave {status:?}"
        );
        if status.signal().is_some() {
            assert!(
                !ready.exists(),
                "round {round}: the job ran but cronwrap died"
            );
        }
        assert_eq!(
            survivors(&seconds),
            Vec::<u32>::new(),
            "round {round}: processes survived {signal:?}"
        );
        assert!(locks_are_free(&fixture), "round {round}: the lock is held");
    }
}

#[test]
fn a_job_ignoring_the_signal_is_killed_after_kill_after() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let fixture = Fixture::new();
    let seconds = unique_seconds(98);
    let ready = fixture.path().join("ready");
    let job = format!(
        "trap '' TERM; setsid sh -c \"trap '' TERM; sleep {seconds}; :\" & echo started > '{}'; sleep {seconds}; :",
        ready.display()
    );
    let child = cronwrap(&fixture, &["--kill-after", "1", "--", "sh", "-c", &job])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143));
    let messages = String::from_utf8_lossy(&output.stderr);
    assert!(messages.contains("SIGTERM => forwarded"), "{messages}");
    assert!(messages.contains("kill -9 of what is left"), "{messages}");
    assert_eq!(survivors(&seconds), Vec::<u32>::new());
}

#[test]
fn what_cronwrap_creates_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let fixture = Fixture::new();
    let mut command = cronwrap(
        &fixture,
        &[
            "--lock",
            "--log-capture-to",
            "jobs/job.log",
            "--",
            "echo",
            "secret",
        ],
    );
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
            Ok(())
        });
    }
    assert_success(&command.output().unwrap());
    let mode = |path: &str| {
        std::fs::metadata(fixture.path().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("runtime/log"), 0o700);
    assert_eq!(mode("runtime/log/jobs"), 0o700);
    assert_eq!(mode("runtime/log/jobs/job.log"), 0o600);
    assert_eq!(mode("runtime/tmp"), 0o700);
    for entry in std::fs::read_dir(fixture.path().join("runtime/tmp")).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            path.display()
        );
    }
}

#[test]
fn out_of_range_numbers_are_clamped_not_a_panic() {
    let fixture = Fixture::new();
    let output = cronwrap(
        &fixture,
        &[
            "--timeout",
            "18446744073709551615",
            "--",
            "sh",
            "-c",
            "exit 4",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let output = cronwrap(
        &fixture,
        &[
            "--nice",
            "2147483647",
            "--",
            "sh",
            "-c",
            "cut -d' ' -f19 /proc/self/stat",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(stdout(&output), "19\n", "{}", stderr(&output));
    // The random sleep's bound is clamped too (the sleep itself is not waited for).
    let mut sleeping = cronwrap(
        &fixture,
        &["--random-sleep", "18446744073709551615", "--", "true"],
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sleeping.try_wait().unwrap(), None, "cronwrap ended early");
    sleeping.kill().unwrap();
    let output = sleeping.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    let output = cronwrap(
        &fixture,
        &["--timeout", "18446744073709551616", "--", "true"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}
