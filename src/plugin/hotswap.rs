//! `mfenv plugin hotswap FILE` (the historical `plugins.hotswap`): replaces an installed
//! plugin by another version while its daemons keep answering (reference B12).
//!
//! With a running daemon supervisor:
//!
//! 1. the new version is installed beside the old one, in the plugins base dir
//!    `RUNTIME/tmp/plugins.hotswap/base` (its postinstall runs there);
//! 2. the supervisor starts the new version's daemons from that copy, on the sockets it
//!    holds for the installed daemons, and answers when each process has stayed up for
//!    its `settle` time. If one ends or cannot start, the swap stops there: the new
//!    processes are stopped, the copy removed, the old version was never touched;
//! 3. the new version is installed for good, as `install --force` does it (journaled,
//!    all or nothing; overrides and crontab kept);
//! 4. the supervisor restarts the installed plugin's daemons (the old processes get
//!    `SIGTERM`, then `SIGKILL` after `graceful_timeout`; new ones start from the
//!    installed copy) while the temporary copy's processes keep serving on the same
//!    sockets; once the installed ones are up, the temporary ones are stopped the same
//!    graceful way and the copy is removed.
//!
//! Connections arriving while processes are replaced wait in the held sockets' backlog,
//! so none is refused. Without a supervisor the command is an `install --force`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::context::ModuleContext;
use crate::daemon::control::{self, ClientError, Paths, Request, Response};
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::plugin::manager::{InstallState, Manager, remove_tree};

/// Where the new version waits during a swap, under the runtime home.
pub const HOTSWAP_DIR: &str = "tmp/plugins.hotswap";

/// Runs the hot swap of `file`; returns the installed plugin's home. Messages (times,
/// warnings) go to `manager.messages`.
pub fn hotswap(manager: &mut Manager<'_>, env: &Env, file: &Path) -> Result<PathBuf> {
    let description = manager.describe_file(file)?;
    let name = description.name.clone();
    let refused = |message: String, hint: &str| {
        Error::new(ErrorKind::Usage, message)
            .with_hint(hint.to_owned())
            .context(format!("cannot hot swap `{}`", file.display()))
    };
    let installed = manager.find(&name)?;
    let old_version = match &installed {
        None => {
            return Err(refused(
                format!("plugin `{name}` is not installed"),
                "use `mfenv plugin install FILE` to install it",
            ));
        }
        Some(plugin) if plugin.state == InstallState::DevLink => {
            return Err(refused(
                format!(
                    "plugin `{name}` is installed as a dev link: a hot swap does not apply to it"
                ),
                "a dev link always runs its source tree: `mfenv daemons restart PLUGIN` restarts its daemons",
            ));
        }
        Some(_) => manager
            .describe_installed(&name)
            .map(|installed| installed.version)
            .unwrap_or_default(),
    };
    let new_version = description.version.clone();
    let paths = Paths::of(manager.context);
    match control::send(
        &paths.socket,
        &Request::Status,
        Some(std::time::Duration::from_secs(10)),
    ) {
        Err(ClientError::NotRunning) => {
            let home = manager.install(file, None, true)?;
            manager.messages.push(format!(
                "no daemon supervisor runs: `{name}` {new_version} replaced {old_version} as `plugin install --force` does"
            ));
            return Ok(home);
        }
        Err(ClientError::Failed(error)) => return Err(error),
        Ok(_) => {}
    }
    let swap_dir = manager.context.runtime_home.join(HOTSWAP_DIR);
    let _lock = swap_lock(&swap_dir)?;
    // What a killed swap left in the supervisor goes first.
    abort(&paths, &name);
    let result = swap(manager, env, file, &name, &swap_dir, &paths);
    let _ = remove_tree(&swap_dir);
    let (home, times) = result.map_err(|error| {
        error.context(format!(
            "cannot hot swap `{name}` to {new_version}: {old_version} keeps running"
        ))
    })?;
    manager.messages.push(format!(
        "hot swap of `{name}` {old_version} -> {new_version}: new version up in {:.1} s, old version drained in {:.1} s (the installed copy's daemons restarted and up in {:.1} s, the temporary ones stopped in {:.1} s)",
        times.start_up, times.drained, times.restarted, times.temporary_stopped
    ));
    Ok(home)
}

/// One swap at a time per runtime home: `RUNTIME/tmp/plugins.hotswap.lock`, held
/// (flock) for the whole swap.
fn swap_lock(swap_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let path = swap_dir.with_extension("lock");
    crate::private::create_parent(&path).map_err(|err| Error::io("cannot create", &path, &err))?;
    let file = crate::private::open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|err| Error::io("cannot open", &path, &err))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        let error = Error::new(ErrorKind::Usage, "another hot swap is under way");
        if errno == nix::errno::Errno::EWOULDBLOCK {
            error.with_hint("wait for it to finish, then try again")
        } else {
            error.caused_by(format!(
                "cannot lock `{}`: {}",
                path.display(),
                errno.desc()
            ))
        }
    })
}

/// The durations of a swap, seconds.
struct Times {
    start_up: f64,
    drained: f64,
    restarted: f64,
    temporary_stopped: f64,
}

fn swap(
    manager: &mut Manager<'_>,
    env: &Env,
    file: &Path,
    name: &str,
    swap_dir: &Path,
    paths: &Paths,
) -> Result<(PathBuf, Times)> {
    // 1. Beside the old one: a base dir and runtime home of its own (its override
    //    template and postinstall log stay there), the module's configuration the same.
    let _ = remove_tree(swap_dir);
    let base = swap_dir.join("base");
    crate::private::create_dir_all(&base).map_err(|err| Error::io("cannot create", &base, &err))?;
    let mut context: ModuleContext = manager.context.clone();
    context.plugins_base_dir = base.clone();
    context.runtime_home = swap_dir.join("runtime");
    let mut beside = Manager::new(&context, env, manager.options.clone());
    beside.options.progress = false;
    let installed = beside.install(file, None, false);
    manager.messages.append(&mut beside.messages);
    installed
        .map_err(|error| error.context("cannot install the new version beside the old one"))?;
    // 2. Its daemons, on the held sockets.
    let started = Instant::now();
    let answer = ask(
        paths,
        "the new version's daemons did not start",
        &Request::HotswapStart {
            plugin: name.to_owned(),
            base,
        },
    );
    let start_up = started.elapsed().as_secs_f64();
    if let Err(error) = answer {
        abort(paths, name);
        return Err(error.with_hint("nothing of the new version is left"));
    }
    // 3. Installed for good.
    let home = match manager.install(file, None, true) {
        Ok(home) => home,
        Err(error) => {
            abort(paths, name);
            return Err(error);
        }
    };
    // 4. The installed copy's daemons restarted, then the temporary ones stopped.
    let switched = Instant::now();
    let response = ask_response(
        paths,
        &Request::HotswapFinish {
            plugin: name.to_owned(),
        },
    )?;
    let mut times = Times {
        start_up,
        drained: 0.0,
        restarted: 0.0,
        temporary_stopped: switched.elapsed().as_secs_f64(),
    };
    for message in response.messages {
        // The supervisor's measures: `drained=S restarted=S`.
        if let Some(measures) = message.strip_prefix("times: ") {
            for measure in measures.split(' ') {
                match measure.split_once('=') {
                    Some(("drained", value)) => times.drained = value.parse().unwrap_or(0.0),
                    Some(("restarted", value)) => times.restarted = value.parse().unwrap_or(0.0),
                    _ => {}
                }
            }
        } else {
            manager.messages.push(message);
        }
    }
    times.temporary_stopped = (times.temporary_stopped - times.restarted).max(0.0);
    Ok((home, times))
}

/// Sends `request`; a refusal is the error `failure` with the supervisor's reasons.
fn ask(paths: &Paths, failure: &str, request: &Request) -> Result<Response> {
    let response = ask_response(paths, request)?;
    if response.ok {
        Ok(response)
    } else {
        let mut error = Error::new(ErrorKind::Io, failure);
        for message in &response.messages {
            error = error.caused_by(message.clone());
        }
        Err(error)
    }
}

fn ask_response(paths: &Paths, request: &Request) -> Result<Response> {
    match control::send(&paths.socket, request, None) {
        Ok(response) => Ok(response),
        Err(ClientError::NotRunning) => Err(Error::new(
            ErrorKind::Io,
            "the daemon supervisor stopped during the hot swap",
        )),
        Err(ClientError::Failed(error)) => Err(error),
    }
}

/// Stops the new version's daemons (best effort: a supervisor gone has none).
fn abort(paths: &Paths, name: &str) {
    let _ = control::send(
        &paths.socket,
        &Request::HotswapAbort {
            plugin: name.to_owned(),
        },
        Some(std::time::Duration::from_secs(600)),
    );
}
