//! The listening sockets the supervisor holds for the daemons that declare `socket =`.
//!
//! The supervisor binds each socket once and keeps it for as long as the daemon is
//! declared with the same address, so restarts, recycling and hot swaps never close it:
//! connections that arrive while no worker accepts wait in its backlog. Every worker
//! receives it as file descriptor 3 with systemd's socket-activation variables
//! (`LISTEN_FDS=1`, `LISTEN_FDNAMES=NAME`, `LISTEN_PID`, see [`LISTEN_PID_REQUEST`]).
//!
//! TCP sockets get `SO_REUSEADDR` (a rebind right after a close does not wait for the
//! old connections' `TIME_WAIT`). Unix sockets are created for their owner only; a
//! socket file left by a process that no longer listens is replaced, while a file that
//! is not a socket, or a socket someone listens on, is an error.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crate::daemon::spec::ListenAddress;

/// The file descriptor the workers find the socket on (`SD_LISTEN_FDS_START`).
pub const LISTEN_FD: RawFd = 3;

/// Set by the supervisor in a worker's environment: the last `exec` before the daemon's
/// command (`mfenv plugin wrapper`) sets `LISTEN_PID` to its own pid, which is the
/// daemon's (exec keeps the pid), and removes this variable.
pub const LISTEN_PID_REQUEST: &str = "MFENV_LISTEN_PID";

/// The backlog of the held sockets: connections queue there while workers are replaced.
const BACKLOG: i32 = 1024;

/// A bound, listening socket held by the supervisor.
#[derive(Debug)]
pub struct HeldSocket {
    pub address: ListenAddress,
    fd: OwnedFd,
    /// The unix socket file this supervisor created, with its inode, removed on drop.
    file: Option<(PathBuf, u64)>,
}

impl HeldSocket {
    /// Binds and listens on `address`; the error says why not, in one line.
    pub fn bind(address: &ListenAddress) -> Result<HeldSocket, String> {
        match address {
            ListenAddress::Tcp { host, port } => {
                let addresses: Vec<SocketAddr> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|err| format!("cannot resolve `{host}`: {err}"))?
                    .collect();
                let Some(first) = addresses.first() else {
                    return Err(format!("`{host}` has no address"));
                };
                let fd = bind_tcp(first).map_err(|err| {
                    format!(
                        "cannot listen on {address}: {}",
                        crate::error::io_reason(&err)
                    )
                })?;
                Ok(HeldSocket {
                    address: address.clone(),
                    fd,
                    file: None,
                })
            }
            ListenAddress::Unix(path) => {
                let listener = bind_unix(path)
                    .map_err(|reason| format!("cannot listen on {address}: {reason}"))?;
                let inode = std::fs::symlink_metadata(path).map_or(0, |metadata| metadata.ino());
                Ok(HeldSocket {
                    address: address.clone(),
                    fd: listener.into(),
                    file: Some((path.clone(), inode)),
                })
            }
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for HeldSocket {
    fn drop(&mut self) {
        // Only the file this socket created: another one may have replaced it since.
        if let Some((path, inode)) = &self.file
            && std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.ino() == *inode)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind_tcp(address: &SocketAddr) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt,
        socket, sockopt,
    };
    let family = if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(*address))?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    // A std listener only to check the socket is usable as one.
    let listener = TcpListener::from(fd);
    Ok(listener.into())
}

fn bind_unix(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::PermissionsExt;
    let reason = |err: &std::io::Error| crate::error::io_reason(err);
    crate::private::create_parent(path).map_err(|err| {
        format!(
            "cannot create the directory of `{}`: {}",
            path.display(),
            reason(&err)
        )
    })?;
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.file_type().is_socket() => {
            return Err(format!("`{}` exists and is not a socket", path.display()));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!("another process listens on `{}`", path.display()));
            }
            // Nobody listens: a stale file from a supervisor that died.
            Err(_) => std::fs::remove_file(path).map_err(|err| {
                format!(
                    "cannot remove the stale `{}`: {}",
                    path.display(),
                    reason(&err)
                )
            })?,
        },
        Err(_) => {}
    }
    // Created for its owner only, with no window under the umask's permissions. The
    // umask is the process's: for a moment other threads' new files get no more than
    // 0700 as well, which only narrows them.
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(umask);
    let listener = bound.map_err(|err| reason(&err))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|err| format!("cannot restrict `{}`: {}", path.display(), reason(&err)))?;
    // std listens with a backlog of 128 at most; raise it.
    let _ = nix::sys::socket::listen(
        &listener,
        nix::sys::socket::Backlog::new(BACKLOG).unwrap_or(nix::sys::socket::Backlog::MAXCONN),
    );
    Ok(listener)
}

/// Binds the datagram socket where daemons with `readiness = notify` send `READY=1`
/// (systemd's `sd_notify` protocol): private, replacing a stale one (the caller holds
/// the supervisor lock), with the senders' credentials passed along.
pub fn bind_notify(path: &Path) -> Result<std::os::unix::net::UnixDatagram, String> {
    use std::os::unix::fs::PermissionsExt;
    let reason = |err: &std::io::Error| crate::error::io_reason(err);
    crate::private::create_parent(path).map_err(|err| reason(&err))?;
    let _ = std::fs::remove_file(path);
    let umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = std::os::unix::net::UnixDatagram::bind(path);
    nix::sys::stat::umask(umask);
    let socket =
        bound.map_err(|err| format!("cannot bind `{}`: {}", path.display(), reason(&err)))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|err| format!("cannot restrict `{}`: {}", path.display(), reason(&err)))?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::PassCred, &true)
        .map_err(|errno| format!("cannot ask for credentials: {}", errno.desc()))?;
    Ok(socket)
}

/// Reads notifications forever; `ready(pid)` for each `READY=1` line, `pid` being the
/// sender's as the kernel tells it (not forgeable by the sender).
pub fn notify_loop(socket: &std::os::unix::net::UnixDatagram, mut ready: impl FnMut(u32)) {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixCredentials, recvmsg};
    let mut buffer = [0u8; 4096];
    let mut space = nix::cmsg_space!(UnixCredentials);
    loop {
        let (length, pid) = {
            let mut iov = [std::io::IoSliceMut::new(&mut buffer)];
            let received = recvmsg::<()>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::empty(),
            );
            match received {
                Ok(message) => {
                    let pid = message.cmsgs().ok().and_then(|mut messages| {
                        messages.find_map(|message| match message {
                            ControlMessageOwned::ScmCredentials(credentials) => {
                                Some(credentials.pid())
                            }
                            _ => None,
                        })
                    });
                    (message.bytes, pid)
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            }
        };
        let Some(pid) = pid.filter(|pid| *pid > 0) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buffer[..length]);
        if text.lines().any(|line| line == "READY=1") {
            ready(pid as u32);
        }
    }
}

/// In a worker, between fork and exec: puts the socket `fd` on [`LISTEN_FD`], open
/// across exec. Only system calls.
pub fn hand_over(fd: RawFd) -> std::io::Result<()> {
    use nix::libc;
    if fd == LISTEN_FD {
        // dup2 onto itself would keep close-on-exec: clear it.
        // SAFETY: fcntl on a descriptor we own, no memory involved.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
    } else {
        // SAFETY: dup2 between descriptors; the new one has no close-on-exec flag.
        if unsafe { libc::dup2(fd, LISTEN_FD) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In a worker, between fork and exec: every descriptor from `first` up gets
/// close-on-exec, so that nothing the supervisor inherited or opened reaches the daemon
/// (the standard streams and the socket are below `first`). Only system calls.
pub fn close_from_on_exec(first: RawFd) -> std::io::Result<()> {
    use nix::libc;
    // close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11): one call. Marking rather
    // than closing keeps the descriptor through which the exec's failure is reported.
    // SAFETY: a system call with integer arguments.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked == 0 {
        return Ok(());
    }
    // Older kernels: one by one, up to the hard descriptor limit (the supervisor's own
    // soft limit may have been above the worker's), bounded.
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(65_536, |(_, hard)| hard.min(1 << 20)) as RawFd;
    for fd in first..limit {
        // SAFETY: fcntl on descriptors, an unused one only fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_sockets_are_private_and_stale_files_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/web.sock");
        let address = ListenAddress::Unix(path.clone());
        let held = HeldSocket::bind(&address).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Someone listens: refused.
        let error = HeldSocket::bind(&address).unwrap_err();
        assert!(error.contains("another process listens"), "{error}");
        drop(held);
        assert!(!path.exists(), "the socket file goes with the socket");
        // A stale file (its listener gone without removing it) is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let again = HeldSocket::bind(&address).unwrap();
        drop(again);
        // Not a socket: kept, refused.
        std::fs::write(&path, "data").unwrap();
        let error = HeldSocket::bind(&address).unwrap_err();
        assert!(error.contains("not a socket"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }

    #[test]
    fn tcp_sockets_are_rebound_at_once_and_conflicts_reported() {
        let first = HeldSocket::bind(&ListenAddress::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .unwrap();
        let port = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrIn>(first.raw_fd())
            .unwrap()
            .port();
        let address = ListenAddress::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let error = HeldSocket::bind(&address).unwrap_err();
        assert!(error.contains(&format!("tcp:127.0.0.1:{port}")), "{error}");
        // A connection leaves TIME_WAIT behind; SO_REUSEADDR rebinds anyway.
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        drop(client);
        drop(first);
        HeldSocket::bind(&address).unwrap();
    }
}
