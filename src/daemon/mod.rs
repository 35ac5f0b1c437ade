//! `mfenv daemons …`: the supervisor of the plugins' extra daemons (reference E).
//!
//! - [`spec`]: which daemons the plugins declare and how they run (pure);
//! - [`supervisor`]: the foreground supervisor: processes, restarts, limits, reloads;
//! - [`sockets`]: the listening sockets the supervisor holds for the workers;
//! - [`logs`]: the daemons' log files, rotated by size;
//! - [`watch`]: autorestart on file changes (`.autorestart_includes/excludes`);
//! - [`control`]: the socket protocol between the commands and the supervisor;
//! - [`cli`]: the commands.

pub mod cli;
pub mod control;
pub mod logs;
pub mod sockets;
pub mod spec;
pub mod supervisor;
pub mod watch;
