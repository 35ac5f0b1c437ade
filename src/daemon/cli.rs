//! The `mfenv daemons …` commands: run the supervisor, or talk to the running one.
//!
//! `run` is the supervisor itself, in the foreground (a terminal, a systemd unit);
//! `start` runs it detached, its messages going to `RUNTIME/log/daemons.log`. The other
//! commands talk to it over its socket. `status` exits with 3 when no supervisor runs
//! (as `systemctl status` does); `stop` and `reload` without a supervisor do nothing
//! and succeed.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::context::ModuleContext;
use crate::daemon::control::{self, ClientError, Paths, Request, Response, Status};
use crate::daemon::logs::Rotation;
use crate::daemon::supervisor::{self, Options};
use crate::error::{Error, ErrorKind, Result};
use crate::invocation::Invocation;

pub const DAEMONS_EXAMPLES: &str = "\
Every installed plugin's `[extra_daemon_NAME]` section with `numprocesses > 0` runs
`_cmd_and_args` in the plugin environment (as `mfenv plugin wrapper` does), in the
plugin home, `numprocesses` times. Logs go to RUNTIME/log/extra_PLUGIN_NAME.log.

Examples:
  mfenv daemons start                 start the supervisor in the background
  mfenv daemons status                every daemon: pids, uptime, restarts, last exit
  mfenv daemons restart foo           restart the daemons of the plugin foo
  mfenv daemons stop                  stop every daemon and the supervisor

As a systemd service:
  ExecStart=/usr/local/bin/mfenv daemons run";

/// `mfenv daemons …`.
#[derive(Debug, Subcommand)]
pub enum DaemonsCommand {
    /// Supervise the daemons in the foreground (for a terminal or a systemd unit)
    #[command(
        after_help = "Stops every daemon and exits on SIGTERM, SIGINT or `mfenv daemons stop`\n(a second signal kills the daemons at once). SIGHUP rereads the plugins.\nPlugin installs and uninstalls are applied at once; configuration changes\nwithin MFENV_DAEMONS_RESCAN_INTERVAL seconds (default 2)."
    )]
    Run,
    /// Start the supervisor in the background, or start a stopped plugin's daemons again
    #[command(
        after_help = "Examples:\n  mfenv daemons start        start the supervisor (its messages: RUNTIME/log/daemons.log)\n  mfenv daemons start foo    start the daemons of foo again after `mfenv daemons stop foo`"
    )]
    Start {
        /// A plugin stopped with `mfenv daemons stop PLUGIN`
        plugin: Option<String>,
    },
    /// Show every daemon: plugin, name, pids, uptime, restarts, last exit status
    #[command(
        after_help = "Exit status: 0 when the supervisor runs, 3 when it does not.\n\nExamples:\n  mfenv daemons status\n  mfenv daemons status --json | jq '.daemons[].workers[].pid'"
    )]
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Stop a plugin's daemons (until started again), or every daemon and the supervisor
    #[command(
        after_help = "Daemons get SIGTERM, then SIGKILL after their graceful_timeout. The command\nreturns when they are stopped.\n\nExamples:\n  mfenv daemons stop foo     stop the daemons of foo (they stay stopped)\n  mfenv daemons stop         stop everything, the supervisor included"
    )]
    Stop {
        /// Only this plugin's daemons
        plugin: Option<String>,
    },
    /// Restart a plugin's daemons, or all of them (starting the supervisor if needed)
    #[command(after_help = "Examples:\n  mfenv daemons restart foo\n  mfenv daemons restart")]
    Restart {
        /// Only this plugin's daemons
        plugin: Option<String>,
    },
    /// Make the supervisor read the plugins and their configuration now
    Reload,
}

/// How often (seconds) the supervisor rereads the plugins; 2 when unset, more than a
/// year is a year.
pub const RESCAN_VARIABLE: &str = "MFENV_DAEMONS_RESCAN_INTERVAL";

/// What a daemons command produces.
#[derive(Debug, Default)]
pub struct DaemonsOutput {
    pub stdout: String,
    pub stderr: Vec<String>,
    pub status: u8,
}

/// The supervisor paths of the invocation's module context.
pub fn paths_of(inv: &Invocation) -> Paths {
    Paths::of(inv.module())
}

/// Tells a running supervisor to read the plugins again (after an install, say).
/// Nothing happens when none runs.
pub fn notify_reload(inv: &Invocation) {
    let paths = paths_of(inv);
    let _ = control::send(
        &paths.socket,
        &Request::Reload,
        Some(Duration::from_secs(5)),
    );
}

pub fn run(command: DaemonsCommand, inv: &Invocation) -> Result<DaemonsOutput> {
    let context = inv.module().clone();
    let paths = Paths::of(&context);
    match command {
        DaemonsCommand::Run => {
            supervisor::run(options(inv, context, paths)?)?;
            Ok(DaemonsOutput::default())
        }
        DaemonsCommand::Start { plugin: None } => start_detached(inv, &paths),
        DaemonsCommand::Start {
            plugin: Some(plugin),
        } => ask(
            &paths,
            &Request::Start {
                plugin: Some(plugin),
            },
        ),
        DaemonsCommand::Status { json } => status(&paths, json),
        DaemonsCommand::Stop { plugin } => {
            match control::send(&paths.socket, &Request::Stop { plugin }, None) {
                Err(ClientError::NotRunning) => Ok(DaemonsOutput {
                    stderr: vec!["mfenv: the daemon supervisor is not running".to_owned()],
                    ..DaemonsOutput::default()
                }),
                other => answered(other),
            }
        }
        DaemonsCommand::Restart { plugin } => {
            let request = Request::Restart {
                plugin: plugin.clone(),
            };
            match control::send(&paths.socket, &request, None) {
                Err(ClientError::NotRunning) if plugin.is_none() => start_detached(inv, &paths),
                other => answered(other),
            }
        }
        DaemonsCommand::Reload => {
            match control::send(
                &paths.socket,
                &Request::Reload,
                Some(Duration::from_secs(30)),
            ) {
                Err(ClientError::NotRunning) => Ok(DaemonsOutput {
                    stderr: vec!["mfenv: the daemon supervisor is not running".to_owned()],
                    ..DaemonsOutput::default()
                }),
                other => answered(other),
            }
        }
    }
}

fn options(inv: &Invocation, context: ModuleContext, paths: Paths) -> Result<Options> {
    let env = inv.env();
    let mfenv = inv.required_binary()?.to_owned();
    let rotation = Rotation::from_lookup(&context.module, |name| env.get(name).map(str::to_owned));
    let rescan_every = match env.get(RESCAN_VARIABLE) {
        None | Some("") => Duration::from_secs(2),
        Some(text) => match text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|seconds| *seconds > 0.0)
            .and_then(crate::seconds::from_f64)
        {
            Some(every) => every,
            None => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("{RESCAN_VARIABLE} must be a number of seconds above 0, not `{text}`"),
                ));
            }
        },
    };
    Ok(Options {
        mfenv,
        env: env.clone(),
        manager: crate::plugin::cli::manager_options(inv)?,
        context,
        paths,
        rotation,
        rescan_every,
        debounce: Duration::from_millis(500),
    })
}

fn not_running_error() -> Error {
    Error::new(ErrorKind::Io, "the daemon supervisor is not running")
        .with_hint("start it with `mfenv daemons start` (or `mfenv daemons run` in the foreground)")
}

/// Sends `request` and turns the answer into output.
fn ask(paths: &Paths, request: &Request) -> Result<DaemonsOutput> {
    match control::send(&paths.socket, request, None) {
        Err(ClientError::NotRunning) => Err(not_running_error()),
        other => answered(other),
    }
}

fn answered(result: std::result::Result<Response, ClientError>) -> Result<DaemonsOutput> {
    let response = match result {
        Ok(response) => response,
        Err(ClientError::NotRunning) => return Err(not_running_error()),
        Err(ClientError::Failed(error)) => return Err(error),
    };
    if response.ok {
        Ok(DaemonsOutput {
            stderr: response
                .messages
                .into_iter()
                .map(|message| format!("mfenv: {message}"))
                .collect(),
            ..DaemonsOutput::default()
        })
    } else {
        let mut messages = response.messages.into_iter();
        let mut error = Error::new(
            ErrorKind::Usage,
            messages
                .next()
                .unwrap_or_else(|| "the daemon supervisor refused the request".to_owned()),
        );
        for cause in messages {
            error = error.caused_by(cause);
        }
        Err(error)
    }
}

/// Starts `mfenv daemons run` detached and waits until it answers.
fn start_detached(inv: &Invocation, paths: &Paths) -> Result<DaemonsOutput> {
    if let Ok(Response {
        status: Some(status),
        ..
    }) = control::send(
        &paths.socket,
        &Request::Status,
        Some(Duration::from_secs(5)),
    ) {
        return Ok(DaemonsOutput {
            stderr: vec![format!(
                "mfenv: the daemon supervisor is already running (pid {})",
                status.pid
            )],
            ..DaemonsOutput::default()
        });
    }
    let log_path = &paths.supervisor_log;
    let log =
        crate::private::append(log_path).map_err(|err| Error::io("cannot open", log_path, &err))?;
    let log_copy = log
        .try_clone()
        .map_err(|err| Error::io("cannot open", log_path, &err))?;
    let mut command = Command::new(inv.required_binary()?);
    command
        .args(["daemons", "run"])
        .env_clear()
        .envs(inv.env().vars())
        // Started from a daemon: not one of the processes it would clean up.
        .env_remove(supervisor::SUPERVISOR_VARIABLE)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log_copy)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(Into::into));
    }
    let mut child = command.spawn().map_err(|err| {
        Error::new(ErrorKind::Io, "cannot start the daemon supervisor")
            .caused_by(crate::error::io_reason(&err))
    })?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(Error::new(
                ErrorKind::Io,
                format!("the daemon supervisor stopped at once ({exit})"),
            )
            .caused_by(supervisor::log_tail(log_path, 5))
            .with_hint(format!("its messages are in `{}`", log_path.display())));
        }
        if let Ok(Response {
            status: Some(status),
            ..
        }) = control::send(
            &paths.socket,
            &Request::Status,
            Some(Duration::from_secs(2)),
        ) {
            return Ok(DaemonsOutput {
                stderr: vec![format!(
                    "mfenv: daemon supervisor started (pid {}); its messages go to `{}`",
                    status.pid,
                    log_path.display()
                )],
                ..DaemonsOutput::default()
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::new(
        ErrorKind::Io,
        "the daemon supervisor did not answer within 15 s",
    )
    .with_hint(format!("its messages are in `{}`", log_path.display())))
}

fn status(paths: &Paths, json: bool) -> Result<DaemonsOutput> {
    match control::send(
        &paths.socket,
        &Request::Status,
        Some(Duration::from_secs(10)),
    ) {
        Err(ClientError::NotRunning) => Ok(DaemonsOutput {
            stdout: if json {
                "{\"running\": false, \"daemons\": []}\n".to_owned()
            } else {
                String::new()
            },
            stderr: vec![
                "mfenv: the daemon supervisor is not running (start it with `mfenv daemons start`)"
                    .to_owned(),
            ],
            status: 3,
        }),
        Err(ClientError::Failed(error)) => Err(error),
        Ok(response) => {
            let status = response.status.unwrap_or_default();
            let stdout = if json {
                let mut value = serde_json::to_value(&status).expect("status always serializes");
                value["running"] = serde_json::Value::Bool(true);
                let mut text =
                    serde_json::to_string_pretty(&value).expect("status always serializes");
                text.push('\n');
                text
            } else {
                render_status(&status)
            };
            Ok(DaemonsOutput {
                stdout,
                ..DaemonsOutput::default()
            })
        }
    }
}

/// `3s`, `2m05s`, `1h02m`, `3d04h`.
fn human_duration(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The human `status`: one line per worker, aligned columns.
fn render_status(status: &Status) -> String {
    let mut out = format!(
        "supervisor: running (pid {}, up {})\n",
        status.pid,
        human_duration(status.uptime_seconds)
    );
    for warning in &status.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if status.daemons.is_empty() {
        out.push_str("no daemon: no installed plugin has an [extra_daemon_*] section with numprocesses > 0\n");
        return out;
    }
    let mut rows = vec![[
        "DAEMON".to_owned(),
        "WORKER".to_owned(),
        "STATE".to_owned(),
        "PID".to_owned(),
        "UPTIME".to_owned(),
        "RESTARTS".to_owned(),
        "LAST EXIT".to_owned(),
    ]];
    for daemon in &status.daemons {
        for worker in &daemon.workers {
            let state = match (&worker.state[..], worker.next_start_seconds) {
                ("waiting", Some(next)) => format!("waiting ({next:.1}s)"),
                (state, _) => state.to_owned(),
            };
            rows.push([
                if daemon.new_version {
                    format!("{}.{} (new)", daemon.plugin, daemon.name)
                } else {
                    format!("{}.{}", daemon.plugin, daemon.name)
                },
                format!("{}/{}", worker.worker, daemon.numprocesses),
                state,
                worker.pid.map_or("-".to_owned(), |pid| pid.to_string()),
                worker.uptime_seconds.map_or("-".to_owned(), human_duration),
                worker.restarts.to_string(),
                worker.last_exit.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[index] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for daemon in status.daemons.iter().filter(|daemon| !daemon.new_version) {
        if let Some(socket) = &daemon.socket {
            match &daemon.socket_error {
                Some(error) => out.push_str(&format!(
                    "{}.{}: socket {socket}: error: {error}\n",
                    daemon.plugin, daemon.name
                )),
                None => out.push_str(&format!(
                    "{}.{}: socket {socket}\n",
                    daemon.plugin, daemon.name
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::control::{DaemonStatus, WorkerStatus};

    #[test]
    fn durations_are_short() {
        assert_eq!(human_duration(3.4), "3s");
        assert_eq!(human_duration(125.0), "2m05s");
        assert_eq!(human_duration(3720.0), "1h02m");
        assert_eq!(human_duration(273_600.0), "3d04h");
    }

    #[test]
    fn status_has_one_line_per_worker() {
        let status = Status {
            pid: 10,
            uptime_seconds: 5.0,
            warnings: vec![],
            daemons: vec![DaemonStatus {
                plugin: "foo".into(),
                name: "bar".into(),
                numprocesses: 2,
                socket: Some("tcp:127.0.0.1:8080".into()),
                socket_error: None,
                new_version: false,
                stopped: false,
                autorestart: false,
                workers: vec![
                    WorkerStatus {
                        worker: 1,
                        state: "running".into(),
                        pid: Some(123),
                        uptime_seconds: Some(4.0),
                        restarts: 0,
                        last_exit: None,
                        next_start_seconds: None,
                    },
                    WorkerStatus {
                        worker: 2,
                        state: "waiting".into(),
                        pid: None,
                        uptime_seconds: None,
                        restarts: 3,
                        last_exit: Some("exit status 1".into()),
                        next_start_seconds: Some(2.0),
                    },
                ],
            }],
        };
        insta::assert_snapshot!(render_status(&status), @"
        supervisor: running (pid 10, up 5s)
        DAEMON   WORKER  STATE           PID  UPTIME  RESTARTS  LAST EXIT
        foo.bar  1/2     running         123  4s      0         -
        foo.bar  2/2     waiting (2.0s)  -    -       3         exit status 1
        foo.bar: socket tcp:127.0.0.1:8080
        ");
    }
}
