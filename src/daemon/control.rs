//! The control protocol between `mfenv daemons status|stop|start|restart|reload` and
//! the running supervisor: one JSON request line, one JSON response line, over the Unix
//! socket `RUNTIME/var/daemons.sock`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::ModuleContext;
use crate::error::{Error, ErrorKind, Result};

/// Where the supervisor of a module context keeps its socket, lock and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub socket: PathBuf,
    /// Held (flock) by the running supervisor; holds its pid.
    pub lock: PathBuf,
    /// The supervisor's own messages when started detached.
    pub supervisor_log: PathBuf,
    /// The daemons' log files.
    pub log_dir: PathBuf,
    /// The datagram socket where daemons with `readiness = notify` say `READY=1`.
    pub notify: PathBuf,
}

impl Paths {
    pub fn of(context: &ModuleContext) -> Paths {
        let var = context.runtime_home.join("var");
        Paths {
            socket: var.join("daemons.sock"),
            lock: var.join("daemons.lock"),
            supervisor_log: context.runtime_home.join("log/daemons.log"),
            log_dir: context.runtime_home.join("log"),
            notify: var.join("daemons.notify"),
        }
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Every daemon and worker.
    Status,
    /// Stop one plugin's daemons (they stay stopped), or everything and the supervisor.
    Stop { plugin: Option<String> },
    /// Start a stopped plugin's daemons again (or every stopped one).
    Start { plugin: Option<String> },
    /// Stop then start one plugin's daemons, or all of them.
    Restart { plugin: Option<String> },
    /// Read the plugins and their configuration again now.
    Reload,
    /// Hot swap, first step: start the daemons of the copy of `plugin` installed in the
    /// plugins base dir `base`, beside the running ones and on their sockets; answered
    /// when they are up, or failed (they are then stopped).
    HotswapStart { plugin: String, base: PathBuf },
    /// Hot swap, last step, once the new version is installed: wait until the installed
    /// plugin's daemons run the new version, then stop the ones of `HotswapStart`.
    HotswapFinish { plugin: String },
    /// Stop the daemons `HotswapStart` started (the swap is abandoned).
    HotswapAbort { plugin: String },
}

/// The supervisor's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// The state of the supervisor and its daemons.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub uptime_seconds: f64,
    pub daemons: Vec<DaemonStatus>,
    /// Plugins whose daemons cannot run, one line each.
    pub warnings: Vec<String>,
}

/// One daemon (`[extra_daemon_NAME]` of a plugin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub plugin: String,
    pub name: String,
    pub numprocesses: u32,
    /// The address of the socket the supervisor holds for it (`socket =`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// Why that socket cannot be bound (its workers wait and retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_error: Option<String>,
    /// The new version's copy during a hot swap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_version: bool,
    /// Stopped with `mfenv daemons stop PLUGIN`.
    pub stopped: bool,
    pub autorestart: bool,
    pub workers: Vec<WorkerStatus>,
}

/// One process of a daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// 1-based.
    pub worker: u32,
    /// `running`, `stopping`, `waiting` (to be started again) or `stopped`.
    pub state: String,
    pub pid: Option<u32>,
    pub uptime_seconds: Option<f64>,
    /// How many times it was started again.
    pub restarts: u32,
    /// How the last process ended (`exit status 1`, `killed by SIGKILL`).
    pub last_exit: Option<String>,
    /// For `waiting`: seconds until the next start.
    pub next_start_seconds: Option<f64>,
}

/// Why a request could not be made.
#[derive(Debug)]
pub enum ClientError {
    /// No supervisor listens on the socket.
    NotRunning,
    Failed(Error),
}

/// Sends `request` to the supervisor listening on `socket` and waits for the answer
/// (`timeout`: at most that long; `None`: as long as it takes, e.g. a graceful stop).
pub fn send(
    socket: &Path,
    request: &Request,
    timeout: Option<Duration>,
) -> std::result::Result<Response, ClientError> {
    let failed = |what: &str, err: &std::io::Error| {
        ClientError::Failed(
            Error::new(
                ErrorKind::Io,
                format!("{what} the daemon supervisor (`{}`)", socket.display()),
            )
            .caused_by(crate::error::io_reason(err)),
        )
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ClientError::NotRunning);
        }
        Err(err) => return Err(failed("cannot connect to", &err)),
    };
    stream
        .set_read_timeout(timeout)
        .map_err(|err| failed("cannot talk to", &err))?;
    let mut line = serde_json::to_string(request).expect("requests always serialize");
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|err| failed("cannot write to", &err))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(|err| failed("no answer from", &err))?;
    if answer.is_empty() {
        return Err(ClientError::Failed(Error::new(
            ErrorKind::Io,
            "the daemon supervisor closed the connection without answering",
        )));
    }
    serde_json::from_str(&answer).map_err(|err| {
        ClientError::Failed(
            Error::new(
                ErrorKind::Io,
                "unreadable answer from the daemon supervisor",
            )
            .caused_by(err.to_string()),
        )
    })
}

/// Reads one request line (at most 64 KiB) from a client.
pub fn read_request(stream: &UnixStream) -> Result<Request> {
    use std::io::Read;
    let mut line = String::new();
    BufReader::new(stream)
        .take(64 * 1024)
        .read_line(&mut line)
        .map_err(|err| {
            Error::new(ErrorKind::Io, "cannot read a request")
                .caused_by(crate::error::io_reason(&err))
        })?;
    serde_json::from_str(&line).map_err(|err| {
        Error::new(ErrorKind::Usage, "unreadable request").caused_by(err.to_string())
    })
}

/// Writes the answer line to a client (a client gone away is not an error).
pub fn write_response(mut stream: &UnixStream, response: &Response) {
    let mut line = serde_json::to_string(response).expect("responses always serialize");
    line.push('\n');
    let _ = stream.write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object() {
        let text = serde_json::to_string(&Request::Stop {
            plugin: Some("foo".into()),
        })
        .unwrap();
        assert_eq!(text, r#"{"request":"stop","plugin":"foo"}"#);
        let back: Request = serde_json::from_str(r#"{"request":"status"}"#).unwrap();
        assert_eq!(back, Request::Status);
    }

    #[test]
    fn a_missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let result = send(&dir.path().join("none.sock"), &Request::Status, None);
        assert!(matches!(result, Err(ClientError::NotRunning)));
    }
}
