//! The supervisor: starts every extra daemon of the installed plugins, keeps them
//! running, and answers the control socket (reference E1–E3).
//!
//! One thread owns all the state and runs a loop that wakes at least every 100 ms: it
//! reaps exited processes, starts the ones due, escalates slow stops to `SIGKILL`,
//! applies debounced file changes, and rereads the plugins every few seconds (install,
//! uninstall and configuration changes are applied without touching the daemons that
//! did not change). Other threads only feed it: one accepts control connections, one
//! per pipe copies daemon output into the log files, and inotify reports file changes.
//!
//! Each worker is `mfenv plugin wrapper PLUGIN -- COMMAND…` (which replaces itself with
//! the command, so the pid is the daemon's) started in the plugin home, in a process
//! group of its own, with the configured resource limits and a parent-death signal:
//! if the supervisor is killed outright, the kernel kills its daemons too. Stopping is
//! `SIGTERM` to the process group, then `SIGKILL` after `graceful_timeout`; when a
//! worker's main process ends, what remains of its process group is killed, so nothing
//! is left behind.
//!
//! A process can leave its group (`setsid`, as daemonising code does), so each worker
//! also carries a marker in its environment ([`WORKER_VARIABLE`]), inherited by all it
//! starts: the processes bearing it get the same `SIGTERM` as the group, and `SIGKILL`
//! when the worker's main process ends. The supervisor is also a child subreaper: a
//! process whose parent ended becomes its child (not init's), and when the supervisor
//! stops, every descendant left, marker or not, is killed before it exits.
//!
//! A daemon declaring `socket =` gets a listening socket held here (module `sockets`),
//! bound when its first worker starts and kept, by daemon, while the address stays the
//! same: every worker receives it as fd 3. During a hot swap (`plugin hotswap`) the new
//! version's copy runs as extra daemons marked with the plugins base dir they come
//! from; they share the installed daemons' sockets and log files, are left alone by
//! rescans, restarts and retirements, and go when the swap ends or is abandoned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

use crate::context::ModuleContext;
use crate::daemon::control::{self, DaemonStatus, Paths, Request, Response, Status, WorkerStatus};
use crate::daemon::logs::{self, LogFile, Rotation, SharedLog};
use crate::daemon::sockets::{self, HeldSocket};
use crate::daemon::spec::{self, DaemonSpec, Limit, PluginDaemons};
use crate::daemon::watch::{self, Change, Watch};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::environment::{EnvironmentInputs, PluginIdentity, installed_home};
use crate::plugin::manager::{InstallState, Manager, ManagerOptions};

/// How the supervisor is set up, decided by the CLI edge.
#[derive(Debug, Clone)]
pub struct Options {
    /// The mfenv binary, to run `mfenv plugin wrapper`.
    pub mfenv: PathBuf,
    pub env: Env,
    pub context: ModuleContext,
    pub manager: ManagerOptions,
    pub paths: Paths,
    pub rotation: Rotation,
    /// How often the plugins are read again.
    pub rescan_every: Duration,
    /// How long file changes must settle before an autorestart.
    pub debounce: Duration,
}

/// Set in every daemon's environment to the supervisor's socket path, so that a new
/// supervisor finds the processes a killed one left behind.
pub const SUPERVISOR_VARIABLE: &str = "MFENV_DAEMONS_SUPERVISOR";

/// Set in every daemon's environment to `PLUGIN.DAEMON/WORKER/START`: what it starts,
/// even outside its process group, can be found and stopped with it.
pub const WORKER_VARIABLE: &str = "MFENV_DAEMONS_WORKER";

/// How long a hot swap waits, beyond the installed daemons' replacement time, before
/// it stops the temporary copy anyway.
const SWAP_GRACE: Duration = Duration::from_secs(5);

/// The loop wakes at least this often.
const TICK: Duration = Duration::from_millis(100);

/// Signals received, counted by the handlers.
static TERMINATE: AtomicUsize = AtomicUsize::new(0);
static RELOAD: AtomicUsize = AtomicUsize::new(0);
/// Control connections being answered (waited for before exiting).
static SERVING: AtomicUsize = AtomicUsize::new(0);
/// Pipes still being copied into log files (drained before exiting).
static PUMPING: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_terminate(_: nix::libc::c_int) {
    TERMINATE.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_reload(_: nix::libc::c_int) {
    RELOAD.fetch_add(1, Ordering::SeqCst);
}

/// What the other threads tell the loop.
enum Event {
    Request(Request, Sender<Response>),
    Changed(Change),
    /// A process said `READY=1` on the notify socket.
    Ready(u32),
}

fn wrap_change(change: Change) -> Event {
    Event::Changed(change)
}

/// What happens when a stopping worker's process has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Start,
    Idle,
    Remove,
}

#[derive(Debug)]
struct Process {
    child: Child,
    pid: Pid,
    since: Instant,
    /// The value of [`WORKER_VARIABLE`] in its environment.
    marker: String,
    /// The processes bearing the marker outside the group got the stop signal.
    strays_told: bool,
    /// The fingerprint of the daemon's spec it was started with.
    fingerprint: u64,
    /// It said `READY=1` (`readiness = notify`).
    ready: bool,
}

impl Process {
    /// Started for the hot swap's purposes: alive `settle` seconds, and ready when the
    /// daemon asks for `readiness = notify`.
    fn started(&self, spec: &DaemonSpec, now: Instant) -> bool {
        now.duration_since(self.since) >= spec.settle
            && (spec.readiness != spec::Readiness::Notify || self.ready)
    }
}

#[derive(Debug)]
enum State {
    /// Not running, not to be started (plugin stopped, supervisor stopping).
    Idle,
    Running {
        process: Process,
        recycle_at: Option<Instant>,
    },
    Stopping {
        process: Process,
        kill_at: Instant,
        killed: bool,
        then: Then,
    },
    /// To be started at `until`.
    Waiting { until: Instant },
    /// Stopped for good: the worker goes away.
    Gone,
}

#[derive(Debug)]
struct Worker {
    index: u32,
    state: State,
    starts: u32,
    quick_exits: u32,
    last_exit: Option<String>,
}

impl Worker {
    fn new(index: u32) -> Worker {
        Worker {
            index,
            state: State::Idle,
            starts: 0,
            quick_exits: 0,
            last_exit: None,
        }
    }

    fn alive(&self) -> bool {
        matches!(self.state, State::Running { .. } | State::Stopping { .. })
    }
}

#[derive(Debug)]
struct Daemon {
    spec: DaemonSpec,
    workers: Vec<Worker>,
    /// No longer declared: its workers are being stopped for good.
    retiring: bool,
    /// The daemon whose socket (in `Supervisor::sockets`) its workers get: its own key,
    /// or for the new version's copy during a hot swap, the installed daemon's.
    socket_key: (String, String),
    /// For the new version's copy during a hot swap: the plugins base dir it is
    /// installed in; `None` for the installed plugins' daemons.
    guest_base: Option<PathBuf>,
}

impl Daemon {
    fn is_guest_of(&self, plugin: &str) -> bool {
        self.guest_base.is_some() && self.spec.plugin == plugin
    }
}

/// The listening socket of a daemon: bound when its first worker starts, kept while
/// the address stays the same, closed when it changes or the daemon goes away.
#[derive(Debug, Default)]
struct Listen {
    held: Option<HeldSocket>,
    /// Why the last bind failed.
    error: Option<String>,
}

impl Listen {
    /// The descriptor to hand to a new worker of `spec` (`None`: it declares no socket),
    /// binding it when needed.
    fn fd_for(&mut self, spec: &DaemonSpec) -> Result<Option<RawFd>> {
        let Some(address) = &spec.socket else {
            self.held = None;
            self.error = None;
            return Ok(None);
        };
        if let Some(held) = &self.held
            && held.address == *address
        {
            return Ok(Some(held.raw_fd()));
        }
        if let Some(old) = self.held.take() {
            say(&format!(
                "`{}`: its socket moves from {} to {address}",
                spec.id(),
                old.address
            ));
        }
        match HeldSocket::bind(address) {
            Ok(held) => {
                say(&format!("`{}`: listening on {address}", spec.id()));
                let fd = held.raw_fd();
                self.held = Some(held);
                self.error = None;
                Ok(Some(fd))
            }
            Err(reason) => {
                self.error = Some(reason.clone());
                Err(Error::new(ErrorKind::Io, reason))
            }
        }
    }
}

/// What a client waits for before its answer.
enum Waiting {
    /// No worker (of this plugin, or at all) is stopping any more.
    Settled(Option<String>),
    /// The supervisor has stopped everything and is about to exit.
    Shutdown,
    /// Hot swap: the new version's daemons of the plugin are up (or failed).
    NewVersionUp { plugin: String, deadline: Instant },
    /// Hot swap: the installed plugin's daemons run its new configuration and are up;
    /// then the new version's temporary daemons are stopped.
    Switched {
        plugin: String,
        since: Instant,
        deadline: Instant,
        /// When the old processes were all gone, after `since`.
        drained: Option<Duration>,
        temporary_stopped: bool,
    },
}

struct Waiter {
    reply: Sender<Response>,
    until: Waiting,
    messages: Vec<String>,
}

struct Supervisor {
    options: Options,
    daemons: BTreeMap<(String, String), Daemon>,
    stopped_plugins: BTreeSet<String>,
    watches: BTreeMap<String, Watch>,
    changed: BTreeMap<String, Instant>,
    waiters: Vec<Waiter>,
    logs: HashMap<PathBuf, SharedLog>,
    /// The sockets held for the daemons, by daemon key.
    sockets: BTreeMap<(String, String), Listen>,
    warnings: Vec<String>,
    /// Why the notify socket could not be bound.
    notify_problem: Option<String>,
    started: Instant,
    next_rescan: Instant,
    shutting_down: bool,
    events: Sender<Event>,
    child: ChildSetup,
}

/// Runs the supervisor until it is told to stop (`SIGTERM`, `SIGINT`, or `mfenv daemons
/// stop`). Fails at once when another supervisor runs for the same runtime home.
pub fn run(options: Options) -> Result<()> {
    let lock = take_lock(&options.paths.lock)?;
    crate::reaper::become_subreaper()?;
    kill_leftovers(&options.paths.socket);
    let listener = bind(&options.paths.socket)?;
    install_signal_handlers()?;
    let (sender, receiver) = mpsc::channel();
    let notify_problem = match sockets::bind_notify(&options.paths.notify) {
        Ok(notify) => {
            let notify_sender = sender.clone();
            std::thread::spawn(move || {
                sockets::notify_loop(&notify, |pid| {
                    let _ = notify_sender.send(Event::Ready(pid));
                });
            });
            None
        }
        Err(reason) => Some(format!(
            "no readiness notifications (`readiness = notify` daemons never count as started): {reason}"
        )),
    };
    let accept_sender = sender.clone();
    std::thread::spawn(move || accept_loop(listener, accept_sender));
    let now = Instant::now();
    let mut supervisor = Supervisor {
        options,
        daemons: BTreeMap::new(),
        stopped_plugins: BTreeSet::new(),
        watches: BTreeMap::new(),
        changed: BTreeMap::new(),
        waiters: Vec::new(),
        logs: HashMap::new(),
        sockets: BTreeMap::new(),
        warnings: Vec::new(),
        notify_problem,
        started: now,
        next_rescan: now,
        shutting_down: false,
        events: sender,
        child: ChildSetup {
            parent_pid: nix::unistd::getpid(),
            open_files: raise_open_files_limit(),
        },
    };
    say(&format!(
        "supervisor started (pid {}, socket `{}`)",
        std::process::id(),
        supervisor.options.paths.socket.display()
    ));
    let finished = supervisor.main_loop(&receiver);
    // What escaped its worker's group and marker (a new session, a cleared environment)
    // is still a descendant: it goes before the supervisor says it is done, and with it
    // the last copies of the pipes' write ends.
    let killed = crate::reaper::kill_descendants(|_| false, Duration::from_secs(10));
    if killed > 0 {
        say(&format!(
            "killed {killed} process{} the daemons left behind",
            if killed == 1 { "" } else { "es" }
        ));
    }
    // The daemons' last words reach the log files.
    let deadline = Instant::now() + Duration::from_secs(2);
    while PUMPING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Socket and lock go first, so that a new supervisor can start as soon as the
    // clients waiting for this one's end get their answer.
    let _ = fs::remove_file(&supervisor.options.paths.socket);
    let _ = fs::remove_file(&supervisor.options.paths.notify);
    drop(lock);
    say("supervisor stopped");
    for waiter in finished {
        let mut messages = waiter.messages;
        messages.push("every daemon is stopped; the supervisor exits".to_owned());
        let _ = waiter.reply.send(Response {
            ok: true,
            messages,
            status: None,
        });
    }
    // Let those answers reach their clients.
    drop(receiver);
    let deadline = Instant::now() + Duration::from_secs(2);
    while SERVING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Prints one supervisor message on stderr, stamped with the UTC time.
fn say(message: &str) {
    let line = format!("{} mfenv daemons: {message}\n", utc_now());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now.
fn utc_now() -> String {
    crate::plugin::release::utc_timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs()),
    )
}

/// Takes the supervisor lock and writes our pid in it.
fn take_lock(path: &Path) -> Result<Flock<File>> {
    crate::private::create_parent(path).map_err(|err| Error::io("cannot create", path, &err))?;
    let file = crate::private::open_options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|err| Error::io("cannot open", path, &err))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = writeln!(lock, "{}", std::process::id());
            Ok(lock)
        }
        Err((_, Errno::EWOULDBLOCK)) => {
            let pid = fs::read_to_string(path).unwrap_or_default();
            Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "a daemon supervisor is already running (pid {})",
                    pid.trim()
                ),
            )
            .with_hint("`mfenv daemons status` shows it; `mfenv daemons stop` stops it"))
        }
        Err((_, errno)) => Err(Error::new(
            ErrorKind::Io,
            format!("cannot lock `{}`", path.display()),
        )
        .caused_by(errno.desc())),
    }
}

/// Kills the processes a previous supervisor of this runtime home left behind: those
/// whose environment carries its marker (children a daemon started itself survive the
/// daemon when the supervisor is killed outright, and nothing else can reach them).
fn kill_leftovers(socket: &Path) {
    let marker = {
        let mut marker = format!("{SUPERVISOR_VARIABLE}=").into_bytes();
        marker.extend_from_slice(socket.as_os_str().as_encoded_bytes());
        marker
    };
    let parent = nix::unistd::getppid().as_raw() as u32;
    let mut killed = Vec::new();
    for (pid, ()) in
        crate::reaper::by_environment(|environ| environ.contains(&marker.as_slice()).then_some(()))
    {
        if pid != parent && signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
            killed.push(pid.to_string());
        }
    }
    if !killed.is_empty() {
        say(&format!(
            "killed {} process{} left by a previous supervisor: {}",
            killed.len(),
            if killed.len() == 1 { "" } else { "es" },
            killed.join(" ")
        ));
    }
}

/// Binds the control socket (a stale one is replaced: we hold the lock).
fn bind(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::remove_file(path);
    // Created for its owner only (no window with the umask's permissions); nothing
    // else runs yet, so changing the process umask for a moment is safe.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(umask);
    let listener = bound.map_err(|err| {
        let mut error = Error::io("cannot listen on", path, &err);
        if path.as_os_str().len() > 100 {
            error = error.with_hint(
                "Unix socket paths are limited to about 100 bytes: use a shorter MFMODULE_RUNTIME_HOME",
            );
        }
        error
    })?;
    // Only the owner may control the daemons.
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|err| Error::io("cannot restrict the permissions of", path, &err))?;
    Ok(listener)
}

fn install_signal_handlers() -> Result<()> {
    let install = |signal: Signal, handler: extern "C" fn(nix::libc::c_int)| {
        let action = SigAction::new(
            SigHandler::Handler(handler),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handlers only increment atomics.
        unsafe { signal::sigaction(signal, &action) }.map(|_| ())
    };
    install(Signal::SIGTERM, on_terminate)
        .and_then(|()| install(Signal::SIGINT, on_terminate))
        .and_then(|()| install(Signal::SIGHUP, on_reload))
        .map_err(|errno| {
            Error::new(ErrorKind::Io, "cannot install the signal handlers").caused_by(errno.desc())
        })
}

fn accept_loop(listener: UnixListener, sender: Sender<Event>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            // Out of file descriptors, say: do not spin on the pending connection.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let sender = sender.clone();
        SERVING.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            serve(stream, &sender);
            SERVING.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn serve(stream: UnixStream, sender: &Sender<Event>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = match control::read_request(&stream) {
        Ok(request) => request,
        Err(error) => {
            let response = Response {
                ok: false,
                messages: vec![error.message().to_owned()],
                status: None,
            };
            control::write_response(&stream, &response);
            return;
        }
    };
    let (reply, answer) = mpsc::channel();
    if sender.send(Event::Request(request, reply)).is_err() {
        return;
    }
    if let Ok(response) = answer.recv() {
        control::write_response(&stream, &response);
    }
}

fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(number) = status.signal() {
        match Signal::try_from(number) {
            Ok(signal) => format!("killed by {}", signal.as_str()),
            Err(_) => format!("killed by signal {number}"),
        }
    } else {
        status.to_string()
    }
}

fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

impl Supervisor {
    /// Runs until everything is stopped; returns the clients waiting for the end.
    fn main_loop(&mut self, receiver: &Receiver<Event>) -> Vec<Waiter> {
        let mut terminations_seen = 0;
        let mut reloads_seen = 0;
        loop {
            let terminations = TERMINATE.load(Ordering::SeqCst);
            if terminations > terminations_seen {
                terminations_seen = terminations;
                if self.shutting_down {
                    say("asked again to stop: killing every daemon now");
                    self.kill_everything();
                } else {
                    say("asked to stop: stopping every daemon");
                    self.begin_shutdown();
                }
            }
            let reloads = RELOAD.load(Ordering::SeqCst);
            if reloads > reloads_seen {
                reloads_seen = reloads;
                self.next_rescan = Instant::now();
            }
            let now = Instant::now();
            if !self.shutting_down && now >= self.next_rescan {
                self.rescan();
                self.next_rescan = Instant::now() + self.options.rescan_every;
            }
            self.apply_changes(Instant::now());
            self.step_workers(Instant::now());
            self.answer_waiters();
            let workers: BTreeSet<u32> = self
                .daemons
                .values()
                .flat_map(|daemon| &daemon.workers)
                .filter_map(|worker| match &worker.state {
                    State::Running { process, .. } | State::Stopping { process, .. } => {
                        Some(process.pid.as_raw() as u32)
                    }
                    _ => None,
                })
                .collect();
            // Orphans that became our children and ended (workers are reaped above).
            crate::reaper::reap_orphans(|pid| workers.contains(&pid));
            if self.shutting_down && !self.anything_alive() {
                return std::mem::take(&mut self.waiters);
            }
            match receiver.recv_timeout(TICK) {
                Ok(event) => {
                    self.handle(event);
                    while let Ok(event) = receiver.try_recv() {
                        self.handle(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return std::mem::take(&mut self.waiters),
            }
        }
    }

    fn anything_alive(&self) -> bool {
        self.daemons
            .values()
            .flat_map(|daemon| &daemon.workers)
            .any(Worker::alive)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Request(request, reply) => self.request(request, reply),
            Event::Ready(pid) => {
                for worker in self
                    .daemons
                    .values_mut()
                    .flat_map(|daemon| &mut daemon.workers)
                {
                    if let State::Running { process, .. } = &mut worker.state
                        && process.pid.as_raw() as u32 == pid
                    {
                        process.ready = true;
                    }
                }
            }
            Event::Changed(change) => {
                let Some(watch) = self.watches.get_mut(&change.plugin) else {
                    return;
                };
                if change.new_dir {
                    watch.add_tree(&change.path);
                }
                if watch.triggers(&change) {
                    self.changed.insert(change.plugin, Instant::now());
                }
            }
        }
    }

    fn known_plugin(&self, plugin: &str) -> bool {
        self.daemons.keys().any(|(name, _)| name == plugin)
    }

    fn request(&mut self, request: Request, reply: Sender<Response>) {
        if self.shutting_down
            && matches!(
                request,
                Request::Reload
                    | Request::Start { .. }
                    | Request::Restart { .. }
                    | Request::HotswapStart { .. }
                    | Request::HotswapFinish { .. }
            )
        {
            let _ = reply.send(Response {
                ok: false,
                messages: vec!["the daemon supervisor is stopping".to_owned()],
                status: None,
            });
            return;
        }
        if let Request::Stop {
            plugin: Some(plugin),
        }
        | Request::Start {
            plugin: Some(plugin),
        }
        | Request::Restart {
            plugin: Some(plugin),
        } = &request
            && !self.known_plugin(plugin)
        {
            let _ = reply.send(Response {
                ok: false,
                messages: vec![format!(
                    "the plugin `{plugin}` has no daemon (no `[extra_daemon_*]` with numprocesses > 0, or not installed)"
                )],
                status: None,
            });
            return;
        }
        match request {
            Request::HotswapStart { plugin, base } => self.hotswap_start(plugin, base, reply),
            Request::HotswapFinish { plugin } => {
                say(&format!(
                    "hot swap of `{plugin}`: the new version is installed, restarting its daemons"
                ));
                self.rescan();
                self.next_rescan = Instant::now() + self.options.rescan_every;
                let now = Instant::now();
                let wait = self.longest_switch(&plugin);
                self.waiters.push(Waiter {
                    reply,
                    until: Waiting::Switched {
                        plugin,
                        since: now,
                        deadline: now + SWAP_GRACE + wait,
                        drained: None,
                        temporary_stopped: false,
                    },
                    messages: Vec::new(),
                });
            }
            Request::HotswapAbort { plugin } => {
                self.stop_new_version(&plugin);
                self.waiters.push(Waiter {
                    reply,
                    messages: Vec::new(),
                    until: Waiting::Settled(Some(plugin)),
                });
            }
            Request::Status => {
                let _ = reply.send(Response {
                    ok: true,
                    messages: Vec::new(),
                    status: Some(self.status()),
                });
            }
            Request::Reload => {
                self.rescan();
                self.next_rescan = Instant::now() + self.options.rescan_every;
                let _ = reply.send(Response {
                    ok: true,
                    messages: self.warnings.clone(),
                    status: None,
                });
            }
            Request::Stop { plugin: None } => {
                say("asked to stop: stopping every daemon");
                self.begin_shutdown();
                self.waiters.push(Waiter {
                    reply,
                    until: Waiting::Shutdown,
                    messages: Vec::new(),
                });
            }
            Request::Stop {
                plugin: Some(plugin),
            } => {
                say(&format!("stopping the daemons of `{plugin}`"));
                self.stopped_plugins.insert(plugin.clone());
                self.for_workers(Some(&plugin), |worker, _, spec| {
                    stop_worker(worker, spec, Then::Idle);
                });
                self.waiters.push(Waiter {
                    reply,
                    messages: vec![format!("the daemons of `{plugin}` are stopped")],
                    until: Waiting::Settled(Some(plugin)),
                });
            }
            Request::Start { plugin } => {
                match &plugin {
                    Some(plugin) => {
                        self.stopped_plugins.remove(plugin);
                    }
                    None => self.stopped_plugins.clear(),
                }
                self.for_workers(plugin.as_deref(), |worker, _, _| {
                    if matches!(worker.state, State::Idle | State::Waiting { .. }) {
                        worker.quick_exits = 0;
                        worker.state = State::Waiting {
                            until: Instant::now(),
                        };
                    } else if let State::Stopping { then, .. } = &mut worker.state
                        && *then == Then::Idle
                    {
                        *then = Then::Start;
                    }
                });
                let message = match &plugin {
                    Some(plugin) => format!("the daemons of `{plugin}` are started"),
                    None => "every daemon is started".to_owned(),
                };
                let _ = reply.send(Response {
                    ok: true,
                    messages: vec![message],
                    status: None,
                });
            }
            Request::Restart { plugin } => {
                match &plugin {
                    Some(plugin) => {
                        say(&format!("restarting the daemons of `{plugin}`"));
                        self.stopped_plugins.remove(plugin);
                    }
                    None => {
                        say("restarting every daemon");
                        self.stopped_plugins.clear();
                    }
                }
                self.restart(plugin.as_deref());
                let message = match &plugin {
                    Some(plugin) => format!("the daemons of `{plugin}` are restarted"),
                    None => "every daemon is restarted".to_owned(),
                };
                self.waiters.push(Waiter {
                    reply,
                    messages: vec![message],
                    until: Waiting::Settled(plugin),
                });
            }
        }
    }

    /// Runs `action` on every worker of `plugin` (every worker when `None`), skipping
    /// retiring daemons.
    fn for_workers(
        &mut self,
        plugin: Option<&str>,
        mut action: impl FnMut(&mut Worker, &str, &DaemonSpec),
    ) {
        for daemon in self.daemons.values_mut() {
            if daemon.retiring
                || daemon.guest_base.is_some()
                || plugin.is_some_and(|plugin| plugin != daemon.spec.plugin)
            {
                continue;
            }
            let id = daemon.spec.id();
            for worker in &mut daemon.workers {
                action(worker, &id, &daemon.spec);
            }
        }
    }

    fn restart(&mut self, plugin: Option<&str>) {
        self.for_workers(plugin, |worker, _, spec| {
            worker.quick_exits = 0;
            match &mut worker.state {
                State::Running { .. } => stop_worker(worker, spec, Then::Start),
                State::Stopping { then, .. } => *then = Then::Start,
                State::Idle | State::Waiting { .. } => {
                    worker.state = State::Waiting {
                        until: Instant::now(),
                    }
                }
                State::Gone => {}
            }
        });
    }

    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        self.changed.clear();
        self.watches.clear();
        for daemon in self.daemons.values_mut() {
            for worker in &mut daemon.workers {
                stop_worker(worker, &daemon.spec, Then::Idle);
            }
        }
    }

    fn kill_everything(&mut self) {
        for daemon in self.daemons.values_mut() {
            for worker in &mut daemon.workers {
                stop_worker(worker, &daemon.spec, Then::Idle);
                if let State::Stopping {
                    process, killed, ..
                } = &mut worker.state
                {
                    let _ = signal::killpg(process.pid, Signal::SIGKILL);
                    *killed = true;
                }
            }
        }
    }

    fn answer_waiters(&mut self) {
        let now = Instant::now();
        let mut index = 0;
        while index < self.waiters.len() {
            let answer = match &mut self.waiters[index].until {
                Waiting::Settled(plugin) => {
                    let plugin = plugin.clone();
                    (!self.daemons.values().any(|daemon| {
                        plugin
                            .as_ref()
                            .is_none_or(|plugin| *plugin == daemon.spec.plugin)
                            && daemon
                                .workers
                                .iter()
                                .any(|worker| matches!(worker.state, State::Stopping { .. }))
                    }))
                    .then_some(Ok(None))
                }
                Waiting::Shutdown => None,
                Waiting::NewVersionUp { plugin, deadline } => {
                    let (plugin, deadline) = (plugin.clone(), *deadline);
                    let outcome = self.new_version_up(&plugin, now, deadline);
                    if let Some(Err(reason)) = &outcome {
                        say(&format!("hot swap of `{plugin}`: {reason}"));
                        self.stop_new_version(&plugin);
                    }
                    outcome.map(|outcome| outcome.map(Some))
                }
                Waiting::Switched {
                    plugin,
                    since,
                    deadline,
                    drained,
                    temporary_stopped,
                } => {
                    let plugin = plugin.clone();
                    let (since, deadline) = (*since, *deadline);
                    let (mut drained, stopped) = (*drained, *temporary_stopped);
                    if drained.is_none() && self.old_processes_gone(&plugin) {
                        drained = Some(now.duration_since(since));
                        if let Waiting::Switched { drained: slot, .. } =
                            &mut self.waiters[index].until
                        {
                            *slot = drained;
                        }
                    }
                    if !stopped {
                        let up = self.installed_up(&plugin, now);
                        if up || now >= deadline {
                            let waiter = &mut self.waiters[index];
                            if let Waiting::Switched {
                                temporary_stopped, ..
                            } = &mut waiter.until
                            {
                                *temporary_stopped = true;
                            }
                            waiter.messages.push(format!(
                                "times: drained={:.2} restarted={:.2}",
                                drained.unwrap_or_default().as_secs_f64(),
                                now.duration_since(since).as_secs_f64()
                            ));
                            if !up {
                                waiter.messages.push(format!(
                                    "warning: the daemons of the installed `{plugin}` are not all up: see `mfenv daemons status`"
                                ));
                            }
                            say(&format!(
                                "hot swap of `{plugin}`: stopping the temporary copy's daemons"
                            ));
                            self.stop_new_version(&plugin);
                        }
                        None
                    } else if self
                        .daemons
                        .values()
                        .any(|daemon| daemon.is_guest_of(&plugin))
                    {
                        None
                    } else {
                        say(&format!("hot swap of `{plugin}`: done"));
                        Some(Ok(None))
                    }
                }
            };
            match answer {
                None => index += 1,
                Some(outcome) => {
                    let mut waiter = self.waiters.remove(index);
                    let ok = outcome.is_ok();
                    match outcome {
                        Ok(Some(message)) | Err(message) => waiter.messages.push(message),
                        Ok(None) => {}
                    }
                    let _ = waiter.reply.send(Response {
                        ok,
                        messages: waiter.messages,
                        status: None,
                    });
                }
            }
        }
    }

    /// Hot swap, first step: starts the daemons of the copy of `plugin` installed in
    /// `base`, beside the installed ones; the answer comes when they are up.
    fn hotswap_start(&mut self, plugin: String, base: PathBuf, reply: Sender<Response>) {
        let fail = |reply: Sender<Response>, message: String| {
            let _ = reply.send(Response {
                ok: false,
                messages: vec![message],
                status: None,
            });
        };
        if self
            .daemons
            .values()
            .any(|daemon| daemon.is_guest_of(&plugin))
        {
            return fail(
                reply,
                format!("a hot swap of `{plugin}` is already under way"),
            );
        }
        if self.stopped_plugins.contains(&plugin) {
            let _ = reply.send(Response {
                ok: true,
                messages: vec![format!(
                    "the daemons of `{plugin}` are stopped: the new version's are not started"
                )],
                status: None,
            });
            return;
        }
        let mut options = self.options.clone();
        options.context.plugins_base_dir = base.clone();
        let collected = match collect(&options) {
            Ok(collected) => collected,
            Err(warning) => return fail(reply, warning),
        };
        if collected.unreadable.contains(&plugin) {
            return fail(reply, collected.warnings.join("; "));
        }
        let specs: Vec<DaemonSpec> = collected
            .specs
            .into_iter()
            .filter(|spec| spec.plugin == plugin)
            .collect();
        say(&format!(
            "hot swap of `{plugin}`: starting the new version's daemons ({})",
            specs.len()
        ));
        let wait = specs
            .iter()
            .map(|spec| spec.readiness_timeout.max(spec.settle))
            .max()
            .unwrap_or_default();
        for spec in specs {
            let socket_key = (plugin.clone(), spec.name.clone());
            let key = (plugin.clone(), format!("{}@new", spec.name));
            let workers = (1..=spec.numprocesses)
                .map(|index| {
                    let mut worker = Worker::new(index);
                    worker.state = State::Waiting {
                        until: Instant::now(),
                    };
                    worker
                })
                .collect();
            self.daemons.insert(
                key,
                Daemon {
                    spec,
                    workers,
                    retiring: false,
                    socket_key,
                    guest_base: Some(base.clone()),
                },
            );
        }
        self.waiters.push(Waiter {
            reply,
            until: Waiting::NewVersionUp {
                plugin,
                deadline: Instant::now() + wait,
            },
            messages: collected.warnings,
        });
    }

    /// Whether the new version's daemons of `plugin` are up: `None` while starting,
    /// an error when one ended or failed to start, or at `deadline`.
    fn new_version_up(
        &self,
        plugin: &str,
        now: Instant,
        deadline: Instant,
    ) -> Option<std::result::Result<String, String>> {
        let daemons: Vec<&Daemon> = self
            .daemons
            .values()
            .filter(|daemon| daemon.is_guest_of(plugin) && !daemon.retiring)
            .collect();
        for daemon in &daemons {
            for worker in &daemon.workers {
                if let Some(exit) = &worker.last_exit {
                    let (log, _) = daemon
                        .spec
                        .log_files(&self.options.paths.log_dir, worker.index);
                    return Some(Err(format!(
                        "the new version's `{}` worker {} failed before it was up ({exit}); its output is in `{}`",
                        daemon.spec.id(),
                        worker.index,
                        log.display()
                    )));
                }
            }
        }
        let up = daemons.iter().all(|daemon| {
            daemon.workers.iter().all(|worker| {
                matches!(&worker.state, State::Running { process, .. }
                    if process.started(&daemon.spec, now))
            })
        });
        if up {
            let workers: usize = daemons.iter().map(|daemon| daemon.workers.len()).sum();
            Some(Ok(format!(
                "the new version's daemons are up ({workers} process{})",
                if workers == 1 { "" } else { "es" }
            )))
        } else if now >= deadline {
            let waited = daemons
                .iter()
                .map(|daemon| daemon.spec.readiness_timeout)
                .max()
                .unwrap_or_default();
            let notify = daemons
                .iter()
                .any(|daemon| daemon.spec.readiness == spec::Readiness::Notify);
            Some(Err(format!(
                "the new version's daemons were not up within {} s{}",
                waited.as_secs(),
                if notify {
                    " (`readiness = notify`: no `READY=1` received)"
                } else {
                    ""
                }
            )))
        } else {
            None
        }
    }

    /// Whether every daemon of the installed `plugin` runs processes started with its
    /// current configuration, each alive for its `settle` time (a stopped plugin:
    /// nothing stopping).
    fn installed_up(&self, plugin: &str, now: Instant) -> bool {
        let stopped = self.stopped_plugins.contains(plugin);
        self.daemons
            .values()
            .filter(|daemon| daemon.guest_base.is_none() && daemon.spec.plugin == plugin)
            .all(|daemon| {
                !daemon.retiring
                    && daemon.workers.iter().all(|worker| match &worker.state {
                        State::Running { process, .. } => {
                            stopped
                                || (process.fingerprint == daemon.spec.fingerprint
                                    && process.started(&daemon.spec, now))
                        }
                        State::Stopping { .. } => false,
                        State::Idle | State::Gone | State::Waiting { .. } => stopped,
                    })
            })
    }

    /// Whether no process of the installed `plugin` runs an older configuration.
    fn old_processes_gone(&self, plugin: &str) -> bool {
        self.daemons
            .values()
            .filter(|daemon| daemon.guest_base.is_none() && daemon.spec.plugin == plugin)
            .all(|daemon| {
                daemon.workers.iter().all(|worker| match &worker.state {
                    State::Running { process, .. } => {
                        process.fingerprint == daemon.spec.fingerprint
                    }
                    State::Stopping { .. } => false,
                    _ => true,
                })
            })
    }

    /// The longest time the daemons of `plugin` may take to be replaced: the old
    /// processes' `graceful_timeout`, then the new ones' start.
    fn longest_switch(&self, plugin: &str) -> Duration {
        self.daemons
            .values()
            .filter(|daemon| daemon.spec.plugin == plugin)
            .map(|daemon| {
                daemon.spec.graceful_timeout + daemon.spec.readiness_timeout.max(daemon.spec.settle)
            })
            .max()
            .unwrap_or_default()
    }

    /// Stops the new version's copy of `plugin` (hot swap) gracefully, for good.
    fn stop_new_version(&mut self, plugin: &str) {
        for daemon in self.daemons.values_mut() {
            if daemon.is_guest_of(plugin) {
                daemon.retiring = true;
                for worker in &mut daemon.workers {
                    stop_worker(worker, &daemon.spec, Then::Remove);
                }
            }
        }
    }

    /// Restarts the daemons of plugins whose files changed and then settled.
    fn apply_changes(&mut self, now: Instant) {
        let due: Vec<String> = self
            .changed
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= self.options.debounce)
            .map(|(plugin, _)| plugin.clone())
            .collect();
        for plugin in due {
            self.changed.remove(&plugin);
            if self.stopped_plugins.contains(&plugin) {
                continue;
            }
            say(&format!(
                "files of `{plugin}` changed: restarting its daemons"
            ));
            self.restart(Some(&plugin));
        }
    }

    fn step_workers(&mut self, now: Instant) {
        let options = &self.options;
        let logs = &mut self.logs;
        let setup = self.child;
        let shutting_down = self.shutting_down;
        // Markers of the workers whose strays get SIGTERM (being stopped) or SIGKILL
        // (their main process ended, or it gets SIGKILL).
        let mut to_stop = BTreeSet::new();
        let mut to_kill = BTreeSet::new();
        for daemon in self.daemons.values_mut() {
            let spec = &daemon.spec;
            let listen = self.sockets.entry(daemon.socket_key.clone()).or_default();
            let guest_base = daemon.guest_base.as_deref();
            for worker in &mut daemon.workers {
                if shutting_down {
                    // Nothing starts any more, whatever was planned.
                    match &mut worker.state {
                        State::Waiting { .. } => worker.state = State::Idle,
                        State::Stopping { then, .. } if *then == Then::Start => {
                            *then = Then::Idle;
                        }
                        _ => {}
                    }
                }
                let context = StartContext {
                    options,
                    logs: &mut *logs,
                    setup,
                    listen: &mut *listen,
                    guest_base,
                };
                step_worker(worker, spec, now, context, &mut to_kill);
                if let State::Stopping {
                    process, killed, ..
                } = &mut worker.state
                    && !process.strays_told
                {
                    process.strays_told = true;
                    if *killed {
                        to_kill.insert(process.marker.clone());
                    } else {
                        to_stop.insert(process.marker.clone());
                    }
                }
            }
            daemon
                .workers
                .retain(|worker| !matches!(worker.state, State::Gone));
        }
        if !to_stop.is_empty() || !to_kill.is_empty() {
            signal_strays(&self.options.paths.socket, &to_stop, &to_kill);
        }
        let finished: Vec<(String, String)> = self
            .daemons
            .iter()
            .filter(|(_, daemon)| daemon.retiring && daemon.workers.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        for key in finished {
            let Some(daemon) = self.daemons.remove(&key) else {
                continue;
            };
            // Its log files are closed (once their pipes are drained; a new version's
            // copy shares them with the installed daemon) ...
            for index in (1..=daemon.spec.numprocesses).filter(|_| daemon.guest_base.is_none()) {
                let (stdout, stderr) = daemon.spec.log_files(&self.options.paths.log_dir, index);
                self.logs.remove(&stdout);
                self.logs.remove(&stderr);
            }
            // ... and a plugin gone for good is no longer "stopped".
            if !self.known_plugin(&key.0) {
                self.stopped_plugins.remove(&key.0);
            }
        }
        // A socket goes with the last daemon using it.
        let used: BTreeSet<&(String, String)> = self
            .daemons
            .values()
            .map(|daemon| &daemon.socket_key)
            .collect();
        self.sockets.retain(|key, _| used.contains(key));
    }

    /// Reads the installed plugins again and applies what changed.
    fn rescan(&mut self) {
        let Collected {
            specs,
            warnings,
            unreadable,
        } = match collect(&self.options) {
            Ok(collected) => collected,
            Err(warning) => {
                // Keep everything as it is until the plugins can be listed again.
                if !self.warnings.contains(&warning) {
                    say(&format!("warning: {warning}"));
                    self.warnings = vec![warning];
                }
                return;
            }
        };
        for warning in &warnings {
            if !self.warnings.contains(warning) {
                say(&format!("warning: {warning}"));
            }
        }
        self.warnings = warnings;
        let mut declared = BTreeSet::new();
        for spec in specs {
            let key = (spec.plugin.clone(), spec.name.clone());
            declared.insert(key.clone());
            let stopped = self.stopped_plugins.contains(&spec.plugin);
            match self.daemons.get_mut(&key) {
                None => {
                    say(&format!(
                        "new daemon `{}` ({} process{})",
                        spec.id(),
                        spec.numprocesses,
                        if spec.numprocesses == 1 { "" } else { "es" }
                    ));
                    let workers = (1..=spec.numprocesses)
                        .map(|index| {
                            let mut worker = Worker::new(index);
                            if !stopped {
                                worker.state = State::Waiting {
                                    until: Instant::now(),
                                };
                            }
                            worker
                        })
                        .collect();
                    self.daemons.insert(
                        key.clone(),
                        Daemon {
                            spec,
                            workers,
                            retiring: false,
                            socket_key: key,
                            guest_base: None,
                        },
                    );
                }
                Some(daemon) => {
                    // Autorestart on or off is the watch's business, not a restart.
                    let changed = {
                        let mut old = daemon.spec.clone();
                        old.autorestart = spec.autorestart;
                        old != spec
                    };
                    let revived = daemon.retiring;
                    if !changed && !revived {
                        continue;
                    }
                    if changed {
                        say(&format!(
                            "daemon `{}` changed (configuration or plugin): restarting it",
                            spec.id()
                        ));
                    }
                    daemon.retiring = false;
                    daemon.spec = spec;
                    let count = daemon.spec.numprocesses;
                    for worker in &mut daemon.workers {
                        if worker.index > count {
                            stop_worker(worker, &daemon.spec, Then::Remove);
                        } else if stopped {
                            // Declared again while stopped: kept, not started.
                            match &mut worker.state {
                                State::Stopping { then, .. } => *then = Then::Idle,
                                State::Gone => worker.state = State::Idle,
                                _ => {}
                            }
                        } else {
                            worker.quick_exits = 0;
                            match &mut worker.state {
                                State::Running { .. } => {
                                    stop_worker(worker, &daemon.spec, Then::Start)
                                }
                                State::Stopping { then, .. } => *then = Then::Start,
                                _ => {
                                    worker.state = State::Waiting {
                                        until: Instant::now(),
                                    }
                                }
                            }
                        }
                    }
                    let existing: BTreeSet<u32> =
                        daemon.workers.iter().map(|worker| worker.index).collect();
                    for index in 1..=count {
                        if !existing.contains(&index) {
                            let mut worker = Worker::new(index);
                            if !stopped {
                                worker.state = State::Waiting {
                                    until: Instant::now(),
                                };
                            }
                            daemon.workers.push(worker);
                        }
                    }
                    daemon.workers.sort_by_key(|worker| worker.index);
                }
            }
        }
        for (key, daemon) in &mut self.daemons {
            if !declared.contains(key)
                && !daemon.retiring
                && daemon.guest_base.is_none()
                && !unreadable.contains(&key.0)
            {
                say(&format!(
                    "daemon `{}` is no longer declared (plugin uninstalled or numprocesses 0): stopping it",
                    daemon.spec.id()
                ));
                daemon.retiring = true;
                for worker in &mut daemon.workers {
                    stop_worker(worker, &daemon.spec, Then::Remove);
                }
            }
        }
        self.update_watches();
    }

    /// Watches the homes of the plugins that ask for autorestart.
    fn update_watches(&mut self) {
        let mut wanted: BTreeMap<String, PathBuf> = BTreeMap::new();
        for daemon in self.daemons.values() {
            if daemon.spec.autorestart && !daemon.retiring {
                wanted.insert(daemon.spec.plugin.clone(), daemon.spec.home.clone());
            }
        }
        // A watch is rebuilt when the home was replaced (reinstall) or its patterns
        // changed.
        self.watches.retain(|plugin, watch| {
            wanted.get(plugin).is_some_and(|home| {
                home.canonicalize()
                    .is_ok_and(|root| root == watch.rules.root)
                    && watch::signature(home) == watch.rules.signature
            })
        });
        for (plugin, home) in wanted {
            if self.watches.contains_key(&plugin) {
                continue;
            }
            match Watch::start(&plugin, &home, self.events.clone(), wrap_change) {
                Ok(watch) => {
                    if let Some(problem) = &watch.problem {
                        let warning = format!("plugin `{plugin}`: autorestart: {problem}");
                        if !self.warnings.contains(&warning) {
                            say(&format!("warning: {warning}"));
                            self.warnings.push(warning);
                        }
                    }
                    self.watches.insert(plugin, watch);
                }
                Err(error) => {
                    let warning =
                        format!("plugin `{plugin}`: no autorestart: {}", error.one_line());
                    if !self.warnings.contains(&warning) {
                        say(&format!("warning: {warning}"));
                        self.warnings.push(warning);
                    }
                }
            }
        }
    }

    fn status(&self) -> Status {
        let now = Instant::now();
        let daemons = self
            .daemons
            .values()
            .map(|daemon| DaemonStatus {
                plugin: daemon.spec.plugin.clone(),
                name: daemon.spec.name.clone(),
                numprocesses: daemon.spec.numprocesses,
                socket: daemon.spec.socket.as_ref().map(ToString::to_string),
                socket_error: self
                    .sockets
                    .get(&daemon.socket_key)
                    .and_then(|listen| listen.error.clone()),
                new_version: daemon.guest_base.is_some(),
                stopped: self.stopped_plugins.contains(&daemon.spec.plugin),
                autorestart: self.watches.contains_key(&daemon.spec.plugin),
                workers: daemon
                    .workers
                    .iter()
                    .map(|worker| {
                        let (state, process, next) = match &worker.state {
                            State::Idle | State::Gone => ("stopped", None, None),
                            State::Running { process, .. } => ("running", Some(process), None),
                            State::Stopping { process, .. } => ("stopping", Some(process), None),
                            State::Waiting { until } => (
                                "waiting",
                                None,
                                Some(seconds(until.saturating_duration_since(now))),
                            ),
                        };
                        WorkerStatus {
                            worker: worker.index,
                            state: state.to_owned(),
                            pid: process.map(|process| process.pid.as_raw() as u32),
                            uptime_seconds: process
                                .map(|process| seconds(now.duration_since(process.since))),
                            restarts: worker.starts.saturating_sub(1),
                            last_exit: worker.last_exit.clone(),
                            next_start_seconds: next,
                        }
                    })
                    .collect(),
            })
            .collect();
        Status {
            pid: std::process::id(),
            uptime_seconds: seconds(now.duration_since(self.started)),
            daemons,
            warnings: self
                .warnings
                .iter()
                .chain(&self.notify_problem)
                .cloned()
                .collect(),
        }
    }
}

/// Asks a worker to stop; what follows is `then`.
fn stop_worker(worker: &mut Worker, spec: &DaemonSpec, then: Then) {
    let state = std::mem::replace(&mut worker.state, State::Idle);
    worker.state = match state {
        State::Running { process, .. } => {
            let signal = if spec.graceful_timeout.is_zero() {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            };
            let _ = signal::killpg(process.pid, signal);
            State::Stopping {
                process,
                kill_at: Instant::now() + spec.graceful_timeout,
                killed: signal == Signal::SIGKILL,
                then,
            }
        }
        State::Stopping {
            process,
            kill_at,
            killed,
            ..
        } => State::Stopping {
            process,
            kill_at,
            killed,
            then,
        },
        State::Gone => State::Gone,
        State::Idle | State::Waiting { .. } => match then {
            Then::Start => State::Waiting {
                until: Instant::now(),
            },
            Then::Idle => State::Idle,
            Then::Remove => State::Gone,
        },
    };
}

/// Sends `SIGTERM` to the processes bearing a marker of `to_stop`, `SIGKILL` to those
/// bearing one of `to_kill` (one pass over the processes for both).
fn signal_strays(socket: &Path, to_stop: &BTreeSet<String>, to_kill: &BTreeSet<String>) {
    let ours = {
        let mut entry = format!("{SUPERVISOR_VARIABLE}=").into_bytes();
        entry.extend_from_slice(socket.as_os_str().as_encoded_bytes());
        entry
    };
    let prefix = format!("{WORKER_VARIABLE}=");
    let strays = crate::reaper::by_environment(|environ| {
        if !environ.contains(&ours.as_slice()) {
            return None;
        }
        let marker = environ
            .iter()
            .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))?;
        let marker = std::str::from_utf8(marker).ok()?;
        if to_kill.contains(marker) {
            Some(Signal::SIGKILL)
        } else if to_stop.contains(marker) {
            Some(Signal::SIGTERM)
        } else {
            None
        }
    });
    for (pid, signal) in strays {
        let _ = signal::kill(Pid::from_raw(pid as i32), signal);
    }
}

/// One step of a worker's life at `now`; the markers of workers whose strays are to be
/// killed go into `to_kill`.
fn step_worker(
    worker: &mut Worker,
    spec: &DaemonSpec,
    now: Instant,
    context: StartContext<'_>,
    to_kill: &mut BTreeSet<String>,
) {
    let state = std::mem::replace(&mut worker.state, State::Idle);
    worker.state = match state {
        State::Running {
            mut process,
            recycle_at,
        } => match process.child.try_wait() {
            Ok(Some(status)) => {
                // Whatever the main process left in its group, or started, goes with it.
                let _ = signal::killpg(process.pid, Signal::SIGKILL);
                to_kill.insert(process.marker.clone());
                let ran = now.duration_since(process.since);
                worker.quick_exits = if ran < spec::QUICK_EXIT {
                    worker.quick_exits + 1
                } else {
                    0
                };
                let delay = spec::restart_delay(worker.quick_exits);
                let exit = describe_exit(status);
                say(&format!(
                    "`{}` worker {} (pid {}) ended ({exit}) after {:.1} s: starting it again in {:.1} s",
                    spec.id(),
                    worker.index,
                    process.pid,
                    ran.as_secs_f64(),
                    delay.as_secs_f64()
                ));
                worker.last_exit = Some(exit);
                State::Waiting { until: now + delay }
            }
            Ok(None) | Err(_) if recycle_at.is_some_and(|at| now >= at) => {
                say(&format!(
                    "`{}` worker {} (pid {}) reached its max_age: recycling it",
                    spec.id(),
                    worker.index,
                    process.pid
                ));
                worker.state = State::Running {
                    process,
                    recycle_at: None,
                };
                stop_worker(worker, spec, Then::Start);
                std::mem::replace(&mut worker.state, State::Idle)
            }
            Ok(None) | Err(_) => State::Running {
                process,
                recycle_at,
            },
        },
        State::Stopping {
            mut process,
            kill_at,
            killed,
            then,
        } => match process.child.try_wait() {
            Ok(Some(status)) => {
                let _ = signal::killpg(process.pid, Signal::SIGKILL);
                to_kill.insert(process.marker.clone());
                let exit = describe_exit(status);
                say(&format!(
                    "`{}` worker {} (pid {}) stopped ({exit})",
                    spec.id(),
                    worker.index,
                    process.pid
                ));
                worker.last_exit = Some(exit);
                match then {
                    Then::Start => start_worker(worker, spec, context),
                    Then::Idle => State::Idle,
                    Then::Remove => State::Gone,
                }
            }
            Ok(None) | Err(_) => {
                let killed = if !killed && now >= kill_at {
                    say(&format!(
                        "`{}` worker {} (pid {}) still running {} s after SIGTERM: sending SIGKILL",
                        spec.id(),
                        worker.index,
                        process.pid,
                        spec.graceful_timeout.as_secs()
                    ));
                    let _ = signal::killpg(process.pid, Signal::SIGKILL);
                    to_kill.insert(process.marker.clone());
                    true
                } else {
                    killed
                };
                State::Stopping {
                    process,
                    kill_at,
                    killed,
                    then,
                }
            }
        },
        State::Waiting { until } if now >= until => start_worker(worker, spec, context),
        other => other,
    };
}

/// What starting a worker needs from the supervisor.
struct StartContext<'a> {
    options: &'a Options,
    logs: &'a mut HashMap<PathBuf, SharedLog>,
    setup: ChildSetup,
    listen: &'a mut Listen,
    /// The plugins base dir of a new version's copy during a hot swap.
    guest_base: Option<&'a Path>,
}

/// Starts worker `worker` of `spec`; a failure to start counts as a quick exit.
fn start_worker(worker: &mut Worker, spec: &DaemonSpec, mut context: StartContext<'_>) -> State {
    worker.starts += 1;
    let spawned = context
        .listen
        .fd_for(spec)
        .and_then(|socket| spawn(worker.index, worker.starts, spec, &mut context, socket));
    match spawned {
        Ok(process) => {
            say(&format!(
                "`{}` worker {} started (pid {})",
                spec.id(),
                worker.index,
                process.pid
            ));
            let recycle_at = spec.max_age.map(|max_age| {
                let seed = u64::from(process.pid.as_raw() as u32) ^ u64::from(worker.starts);
                process.since + spec::recycle_after(max_age, seed)
            });
            State::Running {
                process,
                recycle_at,
            }
        }
        Err(error) => {
            worker.quick_exits += 1;
            let delay = spec::restart_delay(worker.quick_exits);
            let reason = error.one_line();
            say(&format!(
                "cannot start `{}` worker {}: {reason}: trying again in {:.1} s",
                spec.id(),
                worker.index,
                delay.as_secs_f64()
            ));
            worker.last_exit = Some(format!("cannot start: {reason}"));
            State::Waiting {
                until: Instant::now() + delay,
            }
        }
    }
}

fn shared_log(
    logs: &mut HashMap<PathBuf, SharedLog>,
    path: &Path,
    rotation: Rotation,
) -> Result<SharedLog> {
    if let Some(log) = logs.get(path) {
        return Ok(Arc::clone(log));
    }
    let log = LogFile::open(path, rotation).map_err(|err| Error::io("cannot open", path, &err))?;
    let log = Arc::new(Mutex::new(log));
    logs.insert(path.to_owned(), Arc::clone(&log));
    Ok(log)
}

fn spawn(
    index: u32,
    starts: u32,
    spec: &DaemonSpec,
    context: &mut StartContext<'_>,
    socket: Option<RawFd>,
) -> Result<Process> {
    let (options, setup, guest_base) = (context.options, context.setup, context.guest_base);
    let logs = &mut *context.logs;
    let (stdout_path, stderr_path) = spec.log_files(&options.paths.log_dir, index);
    let stdout_log = shared_log(logs, &stdout_path, options.rotation)?;
    let stderr_log = shared_log(logs, &stderr_path, options.rotation)?;
    let pipe_error = |err: std::io::Error| {
        Error::new(ErrorKind::Io, "cannot create a pipe").caused_by(err.to_string())
    };
    let (stdout_reader, stdout_writer) = std::io::pipe().map_err(pipe_error)?;
    let (stderr_reader, stderr_writer) = if stdout_path == stderr_path {
        (None, stdout_writer.try_clone().map_err(pipe_error)?)
    } else {
        let (reader, writer) = std::io::pipe().map_err(pipe_error)?;
        (Some(reader), writer)
    };
    let limits: Vec<(Limit, u64)> = spec.limits.clone();
    let marker = match guest_base {
        None => format!("{}/{index}/{starts}", spec.id()),
        Some(_) => format!("{}+new/{index}/{starts}", spec.id()),
    };
    let mut command = Command::new(&options.mfenv);
    command.arg("plugin").arg("wrapper");
    match guest_base {
        None => command.arg(&spec.plugin),
        // The new version's copy, by its home, its base dir the one it lives in (as
        // MetWork's hot swap ran it).
        Some(base) => command
            .arg(&spec.home)
            .env("MFMODULE_PLUGINS_BASE_DIR", base),
    };
    command
        .arg("--")
        .args(&spec.argv)
        .current_dir(&spec.home)
        .envs(spec.extra_variables(&options.context.module))
        .env(SUPERVISOR_VARIABLE, &options.paths.socket)
        .env(WORKER_VARIABLE, &marker)
        .stdin(Stdio::null())
        .stdout(stdout_writer)
        .stderr(stderr_writer);
    // systemd's socket activation (`sd_listen_fds`): the socket on fd 3; the wrapper's
    // exec sets `LISTEN_PID` (module `sockets`). Nothing of the supervisor's own
    // activation, if it had one, reaches a daemon without a socket.
    for variable in [
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
        sockets::LISTEN_PID_REQUEST,
        "NOTIFY_SOCKET",
    ] {
        command.env_remove(variable);
    }
    if spec.readiness == spec::Readiness::Notify {
        command.env("NOTIFY_SOCKET", &options.paths.notify);
    }
    if socket.is_some() {
        command
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDNAMES", &spec.name)
            .env(sockets::LISTEN_PID_REQUEST, "1");
    }
    // SAFETY: only async-signal-safe system calls run between fork and exec.
    unsafe {
        command.pre_exec(move || {
            child_setup(&limits, setup)?;
            match socket {
                Some(fd) => {
                    sockets::hand_over(fd)?;
                    sockets::close_from_on_exec(sockets::LISTEN_FD + 1)
                }
                None => sockets::close_from_on_exec(sockets::LISTEN_FD),
            }
        });
    }
    let spawned = command.spawn();
    // The parent's copies of the write ends must go, or the logs never see the end.
    drop(command);
    let child = spawned.map_err(|err| {
        Error::new(
            ErrorKind::Io,
            format!("cannot run `{}`", options.mfenv.display()),
        )
        .caused_by(crate::error::io_reason(&err))
    })?;
    let pid = Pid::from_raw(child.id() as i32);
    pump_in_background(stdout_reader, stdout_log);
    if let Some(reader) = stderr_reader {
        pump_in_background(reader, stderr_log);
    }
    Ok(Process {
        child,
        pid,
        since: Instant::now(),
        marker,
        strays_told: false,
        fingerprint: spec.fingerprint,
        ready: false,
    })
}

fn pump_in_background(reader: std::io::PipeReader, log: SharedLog) {
    PUMPING.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || {
        logs::pump(reader, log, |failure| say(&format!("warning: {failure}")));
        PUMPING.fetch_sub(1, Ordering::SeqCst);
    });
}

/// What the children need from the supervisor.
#[derive(Debug, Clone, Copy)]
struct ChildSetup {
    /// The supervisor: a child whose parent is already another process dies at once.
    parent_pid: Pid,
    /// The soft limit of open files the supervisor started with, when it raised its own
    /// (daemons get the original back unless they set `rlimit_nofile`).
    open_files: Option<u64>,
}

/// Raises the supervisor's soft limit of open files to the hard one (every daemon costs
/// it pipes and log files); returns the original soft limit when it changed.
fn raise_open_files_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok()).then_some(soft)
}

/// In the child, between fork and exec: own process group, death with the supervisor,
/// resource limits. Only system calls: nothing here allocates.
fn child_setup(limits: &[(Limit, u64)], setup: ChildSetup) -> std::io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    // The supervisor may have died before the line above: then die now.
    if nix::unistd::getppid() != setup.parent_pid {
        // SAFETY: _exit is async-signal-safe.
        unsafe { nix::libc::_exit(1) };
    }
    if let Some(soft) = setup.open_files {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?;
    }
    for &(limit, value) in limits {
        let resource = match limit {
            Limit::AddressSpace => Resource::RLIMIT_AS,
            Limit::OpenFiles => Resource::RLIMIT_NOFILE,
            Limit::Stack => Resource::RLIMIT_STACK,
            Limit::FileSize => Resource::RLIMIT_FSIZE,
        };
        let (_, hard) = getrlimit(resource)?;
        let value = value.min(hard);
        setrlimit(resource, value, value)?;
    }
    Ok(())
}

/// What a reread of the plugins found.
struct Collected {
    specs: Vec<DaemonSpec>,
    warnings: Vec<String>,
    /// Plugins whose configuration could not be read: their running daemons are kept.
    unreadable: BTreeSet<String>,
}

/// Every daemon the installed plugins declare, with warnings for the plugins that
/// cannot be read; an error when the plugins cannot be listed at all.
fn collect(options: &Options) -> std::result::Result<Collected, String> {
    let mut specs = Vec::new();
    let mut warnings = Vec::new();
    let mut unreadable = BTreeSet::new();
    let context = &options.context;
    let env = &options.env;
    let mut manager = Manager::new(context, env, options.manager.clone());
    let plugins = manager.scan().map_err(|error| {
        format!(
            "cannot list the plugins (the daemons are left as they are): {}",
            error.one_line()
        )
    })?;
    warnings.append(&mut manager.messages);
    let find_home =
        |name: &str| installed_home(context, name).map(|home| home.to_string_lossy().into_owned());
    let inputs = EnvironmentInputs {
        context,
        env,
        configuration: &options.manager.configuration,
        find_home: &find_home,
        // Only the daemons' settings matter here: no name resolution for `*_hostname`
        // keys every few seconds (the wrapper computes the daemons' real environment).
        resolve_host: &|_| None,
    };
    for plugin in plugins.into_iter().filter(|plugin| plugin.is_installed()) {
        let identity = PluginIdentity {
            name: plugin.name.clone(),
            home: plugin.home.to_string_lossy().into_owned(),
            label: plugin.label.clone(),
        };
        let layered = match crate::plugin::environment::layered_config(&inputs, &identity) {
            Ok(layered) => layered,
            Err(error) => {
                unreadable.insert(plugin.name.clone());
                warnings.push(format!(
                    "plugin `{}`: cannot read its configuration (running daemons are kept, new ones not started): {}",
                    plugin.name,
                    error.one_line()
                ));
                continue;
            }
        };
        let copy = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            if let Ok(metadata) = fs::metadata(&plugin.home) {
                (metadata.dev(), metadata.ino()).hash(&mut hasher);
            }
            if let InstallState::Installed(metadata) = &plugin.state {
                metadata.hash().hash(&mut hasher);
            }
            hasher.finish()
        };
        let (mut found, mut problems) = spec::daemons_of(
            &PluginDaemons {
                name: &plugin.name,
                home: &plugin.home,
                identity: copy,
                config: &layered.values,
                autorestart: watch::wanted(&plugin.home),
            },
            &context.module,
            |name| env.get(name).map(str::to_owned),
        );
        specs.append(&mut found);
        warnings.append(&mut problems);
    }
    Ok(Collected {
        specs,
        warnings,
        unreadable,
    })
}

/// The tail of the supervisor log, for an error when a detached start fails.
pub fn log_tail(path: &Path, max_lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let length = file.metadata().map_or(0, |metadata| metadata.len());
        let _ = file.seek(std::io::SeekFrom::Start(length.saturating_sub(8192)));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_like_a_shell_would() {
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }

    #[test]
    fn utc_timestamps_have_a_fixed_shape() {
        let stamp = utc_now();
        assert_eq!(stamp.len(), 20, "{stamp}");
        assert!(stamp.starts_with("20") && stamp.ends_with('Z'));
    }
}
