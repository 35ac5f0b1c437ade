//! Sockets held by the supervisor (`socket = tcp:…|unix:…`) and `mfenv plugin hotswap`,
//! with a real HTTP server (python's `http.server` on fd 3) and clients issuing requests
//! from several threads while workers are restarted, recycled and swapped.
//!
//! Nothing here asserts how long something took: waits poll for a state with a generous
//! deadline, and the request loops are bounded.

mod common;
mod plugin_support;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use plugin_support::*;
use serde_json::Value;

/// Polls `condition` every 50 ms for up to 30 s.
fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// The HTTP server of the test plugins: serves `VERSION PID` on the socket it receives
/// as fd 3, after checking the socket-activation variables; finishes the request in
/// hand on SIGTERM. It writes what it saw to `$TMPDIR/seen-PID`.
const SERVER: &str = r#"#!/usr/bin/env python3
import http.server, os, signal, socket, sys, threading

version = sys.argv[1]
pid = os.getpid()
fds = []
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        target = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        continue  # the directory being listed
    fds.append(fd + "=" + target)
# Written aside, then renamed: the test never reads it half-written.
seen_path = os.path.join(os.environ["TMPDIR"], "seen-%d" % pid)
with open(seen_path + ".part", "w") as seen:
    seen.write("LISTEN_PID=%s\n" % os.environ.get("LISTEN_PID"))
    seen.write("LISTEN_FDS=%s\n" % os.environ.get("LISTEN_FDS"))
    seen.write("LISTEN_FDNAMES=%s\n" % os.environ.get("LISTEN_FDNAMES"))
    seen.write("MFENV_LISTEN_PID=%s\n" % os.environ.get("MFENV_LISTEN_PID"))
    seen.write("fds=%s\n" % " ".join(fds))
os.rename(seen_path + ".part", seen_path)
if os.environ.get("LISTEN_PID") != str(pid) or os.environ.get("LISTEN_FDS") != "1":
    sys.exit("not socket-activated")

listener = socket.socket(fileno=3)
listener.setblocking(False)

class Handler(http.server.BaseHTTPRequestHandler):
    def setup(self):
        self.request.setblocking(True)
        super().setup()

    def do_GET(self):
        body = ("%s %d\n" % (version, pid)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

class Server(http.server.HTTPServer):
    address_family = listener.family

    def server_bind(self):
        pass

    def server_activate(self):
        pass

    def handle_error(self, request, client_address):
        pass

server = Server(None, Handler, bind_and_activate=False)
server.socket.close()
server.socket = listener
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
# readiness = notify: say so once serving (not when told to stay silent).
if os.environ.get("NOTIFY_SOCKET") and sys.argv[2:] != ["silent"]:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
    notify.close()
print("serving %s" % version, flush=True)
server.serve_forever(poll_interval=0.05)
"#;

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Clone, Debug)]
enum Target {
    Tcp(u16),
    Unix(PathBuf),
}

impl Target {
    fn config(&self) -> String {
        match self {
            Target::Tcp(port) => format!("tcp:127.0.0.1:{port}"),
            Target::Unix(path) => format!("unix:{}", path.display()),
        }
    }

    /// One `GET /`: the body, or why it failed.
    fn get(&self) -> Result<String, String> {
        let request = b"GET / HTTP/1.0\r\nHost: test\r\n\r\n";
        let mut answer = Vec::new();
        let timeout = Some(Duration::from_secs(20));
        let result = match self {
            Target::Tcp(port) => {
                std::net::TcpStream::connect(("127.0.0.1", *port)).and_then(|mut stream| {
                    stream.set_read_timeout(timeout)?;
                    stream.write_all(request)?;
                    stream.read_to_end(&mut answer)
                })
            }
            Target::Unix(path) => {
                std::os::unix::net::UnixStream::connect(path).and_then(|mut stream| {
                    stream.set_read_timeout(timeout)?;
                    stream.write_all(request)?;
                    stream.read_to_end(&mut answer)
                })
            }
        };
        result.map_err(|err| err.to_string())?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        if !text.starts_with("HTTP/1.0 200") {
            return Err(format!("bad answer: {text:?}"));
        }
        Ok(text
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_owned())
    }
}

/// Clients issuing requests from several threads until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Result<String, String>>>>,
}

impl Load {
    fn start(target: &Target, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let target = target.clone();
                std::thread::spawn(move || {
                    let mut results = Vec::new();
                    // Bounded: stops by itself after 20,000 requests or 120 s.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while !stop.load(Ordering::SeqCst)
                        && results.len() < 20_000
                        && Instant::now() < deadline
                    {
                        results.push(target.get());
                    }
                    results
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the clients; every answer (`VERSION PID`) or failure.
    fn finish(self) -> Vec<Result<String, String>> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    }
}

/// Asserts no request failed and enough were made; returns the answers.
fn all_served(results: Vec<Result<String, String>>, at_least: usize) -> Vec<String> {
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        results.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        results.len() >= at_least,
        "only {} requests were made",
        results.len()
    );
    results.into_iter().map(Result::unwrap).collect()
}

struct Daemons {
    fx: PluginFixture,
    supervisor: Option<Child>,
    supervisor_log: PathBuf,
}

impl Daemons {
    fn new() -> Daemons {
        let fx = PluginFixture::new();
        let supervisor_log = fx.root().join("supervisor.log");
        Daemons {
            fx,
            supervisor: None,
            supervisor_log,
        }
    }

    /// The source tree of plugin `name` at `version` with the HTTP server and `sections`.
    fn source(&self, name: &str, version: &str, sections: &str) -> PathBuf {
        let home = self.fx.root().join("src").join(format!("{name}-{version}"));
        write_plugin_tree(&home, name, version);
        let mut config = fs::read_to_string(home.join("config.ini")).unwrap();
        config.push('\n');
        config.push_str(sections);
        fs::write(home.join("config.ini"), config).unwrap();
        write_executable(&home.join("bin/serve.py"), SERVER);
        home
    }

    /// A `.plugin` file of `name` at `version` with `sections`.
    fn released(&self, name: &str, version: &str, sections: &str) -> PathBuf {
        let home = self.source(name, version, sections);
        self.fx.release(&home)
    }

    /// Starts `mfenv daemons run` in the foreground (its stderr in supervisor.log).
    fn run(&mut self) {
        let log = fs::File::create(&self.supervisor_log).unwrap();
        let mut command = self.fx.command(&["daemons", "run"]);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.supervisor = Some(command.spawn().expect("start the supervisor"));
        wait_for("the supervisor to answer", || {
            self.fx.run(&["daemons", "status"]).status.code() == Some(0)
        });
    }

    fn status(&self) -> Value {
        let output = self.fx.run(&["daemons", "status", "--json"]);
        serde_json::from_slice(&output.stdout).expect("status --json")
    }

    fn daemon(&self, plugin: &str, name: &str) -> Option<Value> {
        self.status()["daemons"]
            .as_array()?
            .iter()
            .find(|daemon| {
                daemon["plugin"] == plugin
                    && daemon["name"] == name
                    && daemon.get("new_version").is_none()
            })
            .cloned()
    }

    /// The pids of the running workers of `plugin.name`.
    fn pids(&self, plugin: &str, name: &str) -> Vec<u32> {
        self.daemon(plugin, name)
            .and_then(|daemon| {
                daemon["workers"].as_array().map(|workers| {
                    workers
                        .iter()
                        .filter(|worker| worker["state"] == "running")
                        .filter_map(|worker| worker["pid"].as_u64())
                        .map(|pid| pid as u32)
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Waits until `count` workers of `plugin.name` run and answer; returns their pids.
    fn running(&self, plugin: &str, name: &str, count: usize) -> Vec<u32> {
        let mut pids = Vec::new();
        wait_for(
            &format!("{count} running `{plugin}.{name}` workers"),
            || {
                pids = self.pids(plugin, name);
                pids.len() == count && pids.iter().all(|pid| self.seen(*pid).is_some())
            },
        );
        pids
    }

    /// What the server of `pid` wrote at its start.
    fn seen(&self, pid: u32) -> Option<String> {
        fs::read_to_string(self.fx.runtime.join(format!("tmp/foo/seen-{pid}"))).ok()
    }

    /// The inode of the socket worker `pid` has on fd 3 (`socket:[N]`).
    fn socket_of(pid: u32) -> String {
        fs::read_link(format!("/proc/{pid}/fd/3"))
            .map(|target| target.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn messages(&self) -> String {
        fs::read_to_string(&self.supervisor_log).unwrap_or_default()
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Ok(mut stop) = self
            .fx
            .command(&["daemons", "stop"])
            .stderr(Stdio::null())
            .spawn()
        {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = stop.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = stop.kill();
            let _ = stop.wait();
        }
        if let Some(mut child) = self.supervisor.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn web_section(target: &Target, processes: u32, extra: &str) -> String {
    format!(
        "[extra_daemon_web]\n_cmd_and_args = python3 {{plugin_dir}}/bin/serve.py VERSION\n\
         numprocesses = {processes}\ngraceful_timeout = 10\nsocket = {}\n{extra}",
        target.config()
    )
}

/// Installs plugin foo at `version` serving on `target`.
fn install(d: &Daemons, version: &str, target: &Target, extra: &str) -> PathBuf {
    let file = d.released(
        "foo",
        version,
        &web_section(target, 2, extra).replace("VERSION", version),
    );
    d.fx.ok(&["plugin", "install", "--force", utf8_path(&file)]);
    file
}

#[test]
fn workers_get_the_socket_as_fd_3_with_the_systemd_variables_and_nothing_else() {
    require_program("python3");
    let mut d = Daemons::new();
    let target = Target::Tcp(free_port());
    install(&d, "1.0.0", &target, "");
    d.run();
    let pids = d.running("foo", "web", 2);
    for pid in &pids {
        let seen = d.seen(*pid).unwrap();
        assert!(seen.contains(&format!("LISTEN_PID={pid}\n")), "{seen}");
        assert!(seen.contains("LISTEN_FDS=1\n"), "{seen}");
        assert!(seen.contains("LISTEN_FDNAMES=web\n"), "{seen}");
        assert!(seen.contains("MFENV_LISTEN_PID=None\n"), "{seen}");
        let fds: Vec<&str> = seen
            .lines()
            .find_map(|line| line.strip_prefix("fds="))
            .unwrap()
            .split(' ')
            .map(|entry| entry.split('=').next().unwrap())
            .collect();
        assert_eq!(fds, ["0", "1", "2", "3"], "{seen}");
    }
    // One socket, shared.
    assert_eq!(Daemons::socket_of(pids[0]), Daemons::socket_of(pids[1]));
    assert!(Daemons::socket_of(pids[0]).starts_with("socket:"));
    let answer = target.get().unwrap();
    assert!(answer.starts_with("1.0.0 "), "{answer}");
    let text = stdout(&d.fx.run(&["daemons", "status"]));
    assert!(
        text.contains(&format!("foo.web: socket {}", target.config())),
        "{text}"
    );
}

#[test]
fn the_socket_survives_restarts_recycling_and_reloads_under_load() {
    require_program("python3");
    let mut d = Daemons::new();
    let port = free_port();
    let target = Target::Tcp(port);
    let home = {
        install(&d, "1.0.0", &target, "max_age = 1\n");
        d.fx.base.join("foo")
    };
    d.run();
    let first = d.running("foo", "web", 2);
    let socket = Daemons::socket_of(first[0]);
    let load = Load::start(&target, 4);
    // max_age recycling: every worker is replaced at least twice (each within 1-2 s).
    let mut replaced = std::collections::BTreeSet::new();
    wait_for("workers recycled by max_age", || {
        for pid in d.pids("foo", "web") {
            replaced.insert(pid);
        }
        replaced.len() >= 6
    });
    // `daemons restart`, twice.
    for _ in 0..2 {
        d.fx.ok(&["daemons", "restart", "foo"]);
    }
    // A reload that changes another key.
    let override_path = d.fx.override_path("foo");
    fs::write(&override_path, "[custom]\ngreeting = changed\n").unwrap();
    d.fx.ok(&["daemons", "reload"]);
    let before = d.pids("foo", "web");
    wait_for("the workers restarted after the change", || {
        let now = d.running("foo", "web", 2);
        now.iter().all(|pid| !before.contains(pid))
    });
    let answers = all_served(load.finish(), 300);
    assert!(answers.iter().all(|answer| answer.starts_with("1.0.0 ")));
    let pids = d.running("foo", "web", 2);
    assert_eq!(
        Daemons::socket_of(pids[0]),
        socket,
        "the same socket all along"
    );
    assert!(home.is_dir());
    assert!(
        d.messages()
            .matches(&format!("listening on tcp:127.0.0.1:{port}"))
            .count()
            == 1,
        "bound once: {}",
        d.messages()
    );
}

#[test]
fn a_changed_address_rebinds_and_a_bind_failure_is_reported_without_stopping_others() {
    require_program("python3");
    let mut d = Daemons::new();
    let dir = d.fx.root().join("sockets");
    let unix = Target::Unix(dir.join("web.sock"));
    // A port taken by someone else.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = Target::Tcp(taken.local_addr().unwrap().port());
    let file = d.released(
        "foo",
        "1.0.0",
        &format!(
            "{}\n[extra_daemon_busy]\n_cmd_and_args = python3 {{plugin_dir}}/bin/serve.py B\n\
             numprocesses = 1\nsocket = {}\n",
            web_section(&unix, 1, "").replace("VERSION", "U"),
            busy.config()
        ),
    );
    d.fx.ok(&["plugin", "install", utf8_path(&file)]);
    d.run();
    let pid = d.running("foo", "web", 1)[0];
    assert_eq!(unix.get().unwrap(), format!("U {pid}"));
    // A private socket file.
    use std::os::unix::fs::PermissionsExt;
    let Target::Unix(path) = &unix else {
        unreachable!()
    };
    let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    wait_for("the bind failure in status", || {
        d.daemon("foo", "busy")
            .is_some_and(|daemon| daemon["socket_error"].is_string())
    });
    let text = stdout(&d.fx.run(&["daemons", "status"]));
    assert!(
        text.contains(&format!(
            "foo.busy: socket {}: error: cannot listen on",
            busy.config()
        )),
        "{text}"
    );
    assert!(
        d.messages().contains("cannot listen on"),
        "{}",
        d.messages()
    );
    // Freed: the worker starts on its next try.
    drop(taken);
    d.running("foo", "busy", 1);
    // The address changes: a new socket, the old file removed.
    let tcp = Target::Tcp(free_port());
    fs::write(
        d.fx.override_path("foo"),
        format!("[extra_daemon_web]\nsocket = {}\n", tcp.config()),
    )
    .unwrap();
    d.fx.ok(&["daemons", "reload"]);
    wait_for("the daemon on its new address", || tcp.get().is_ok());
    wait_for("the old socket file removed", || !path.exists());
    assert!(unix.get().is_err());
    // The daemon goes away: its socket is closed.
    d.fx.ok(&["plugin", "uninstall", "foo"]);
    wait_for("the socket closed with the daemon", || tcp.get().is_err());
}

/// `plugin hotswap` v1 → v2 under load: no request lost, both versions seen, v2 after.
fn hotswap_under_load(target: Target, extra: &str) {
    require_program("python3");
    let mut d = Daemons::new();
    install(&d, "1.0.0", &target, extra);
    fs::write(d.fx.override_path("foo"), "[custom]\ngreeting = kept\n").unwrap();
    let v2 = d.released(
        "foo",
        "2.0.0",
        &web_section(&target, 2, extra).replace("VERSION", "2.0.0"),
    );
    d.run();
    let old = d.running("foo", "web", 2);
    let load = Load::start(&target, 4);
    // Some requests before.
    std::thread::sleep(Duration::from_millis(500));
    let output = d.fx.run(&["plugin", "hotswap", utf8_path(&v2)]);
    assert_success(&output);
    let said = stderr(&output);
    assert!(said.contains("new version up in"), "{said}");
    assert!(said.contains("old version drained in"), "{said}");
    std::thread::sleep(Duration::from_millis(500));
    let answers = all_served(load.finish(), 300);
    assert!(answers.iter().any(|answer| answer.starts_with("1.0.0 ")));
    assert!(answers.iter().any(|answer| answer.starts_with("2.0.0 ")));
    for _ in 0..20 {
        assert!(target.get().unwrap().starts_with("2.0.0 "));
    }
    assert!(
        old.iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    );
    let list = d.fx.ok(&["plugin", "list"]);
    assert!(list.contains("2.0.0"), "{list}");
    assert_eq!(
        fs::read_to_string(d.fx.override_path("foo")).unwrap(),
        "[custom]\ngreeting = kept\n"
    );
    // Nothing of the temporary copy is left.
    assert!(!d.fx.runtime.join("tmp/plugins.hotswap").exists());
    let status = d.status();
    assert!(
        status["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|daemon| daemon.get("new_version").is_none()),
        "{status}"
    );
}

#[test]
fn hotswap_over_tcp_loses_no_request() {
    hotswap_under_load(Target::Tcp(free_port()), "");
}

#[test]
fn hotswap_over_a_unix_socket_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    // With readiness notifications, too.
    hotswap_under_load(
        Target::Unix(dir.path().join("web.sock")),
        "readiness = notify\n",
    );
}

#[test]
fn a_new_version_that_never_says_ready_is_not_swapped_in() {
    require_program("python3");
    let mut d = Daemons::new();
    let target = Target::Tcp(free_port());
    install(&d, "1.0.0", &target, "readiness = notify\n");
    let silent = d.released(
        "foo",
        "2.0.0",
        &web_section(&target, 1, "readiness = notify\nreadiness_timeout = 3\n")
            .replace("VERSION", "2.0.0 silent"),
    );
    d.run();
    let old = d.running("foo", "web", 2);
    let output = d.fx.run(&["plugin", "hotswap", utf8_path(&silent)]);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("not up within 3 s"), "{said}");
    assert!(said.contains("READY=1"), "{said}");
    assert_eq!(d.running("foo", "web", 2), old);
    assert!(target.get().unwrap().starts_with("1.0.0 "));
    assert!(d.fx.ok(&["plugin", "list"]).contains("1.0.0"));
    assert!(!d.fx.runtime.join("tmp/plugins.hotswap").exists());
}

#[test]
fn a_new_version_that_exits_at_once_leaves_the_old_one_serving() {
    require_program("python3");
    let mut d = Daemons::new();
    let target = Target::Tcp(free_port());
    install(&d, "1.0.0", &target, "");
    let broken = d.released(
        "foo",
        "2.0.0",
        &format!(
            "[extra_daemon_web]\n_cmd_and_args = sh -c 'echo v2 gives up; exit 3'\n\
             numprocesses = 2\nsocket = {}\n",
            target.config()
        ),
    );
    d.run();
    let old = d.running("foo", "web", 2);
    let load = Load::start(&target, 3);
    let output = d.fx.run(&["plugin", "hotswap", utf8_path(&broken)]);
    let answers = all_served(load.finish(), 20);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let said = stderr(&output);
    assert!(said.contains("exit status 3"), "{said}");
    assert!(said.contains("1.0.0"), "says what keeps serving: {said}");
    assert!(answers.iter().all(|answer| answer.starts_with("1.0.0 ")));
    assert_eq!(
        d.running("foo", "web", 2),
        old,
        "the old workers were not touched"
    );
    assert!(target.get().unwrap().starts_with("1.0.0 "));
    let list = d.fx.ok(&["plugin", "list"]);
    assert!(list.contains("1.0.0") && !list.contains("2.0.0"), "{list}");
    assert!(!d.fx.runtime.join("tmp/plugins.hotswap").exists());
    wait_for("the new version's daemons gone", || {
        d.status()["daemons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|daemon| daemon.get("new_version").is_none())
    });
}

#[test]
fn hotswap_refuses_dev_links_and_installs_without_a_supervisor() {
    let d = Daemons::new();
    let target = Target::Tcp(free_port());
    let home = d.source("foo", "1.0.0", &web_section(&target, 1, ""));
    d.fx.ok(&["plugin", "develop", utf8_path(&home)]);
    let v2 = d.released("foo", "2.0.0", "");
    let output = d.fx.run(&["plugin", "hotswap", utf8_path(&v2)]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("dev link"), "{}", stderr(&output));
    d.fx.ok(&["plugin", "uninstall", "foo"]);
    // Not installed: refused too.
    let output = d.fx.run(&["plugin", "hotswap", utf8_path(&v2)]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("plugin install"),
        "{}",
        stderr(&output)
    );
    // No supervisor: an install --force.
    let v1 = d.released("foo", "1.0.0", "");
    d.fx.ok(&["plugin", "install", utf8_path(&v1)]);
    let output = d.fx.run(&["plugin", "hotswap", utf8_path(&v2)]);
    assert_success(&output);
    assert!(
        stderr(&output).contains("no daemon supervisor"),
        "{}",
        stderr(&output)
    );
    assert!(d.fx.ok(&["plugin", "list"]).contains("2.0.0"));
}
