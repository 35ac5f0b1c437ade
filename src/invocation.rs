//! The facts of one invocation, gathered at the edge and passed down: the environment
//! snapshot, the module context, the current directory, the path of the mfenv binary
//! and whether the standard streams are terminals.
//!
//! Every command sees the same answers: the module context in particular is computed
//! once, with one fallback for a missing `HOME` (the home directory of the password
//! file, as cron and systemd start commands without `HOME`), so that `mfenv layers`,
//! `mfenv plugin info` and `mfenv daemons status` agree on where the plugins are.
//!
//! Each fact is read when first asked for, then kept: `mfenv load` asks for the module
//! context only (the plugins base dir is part of the layers path), and the password
//! file is read only when `HOME` is unset.

use std::cell::OnceCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::context::ModuleContext;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};

/// One invocation of mfenv: its environment snapshot and the process facts read below
/// the command line, each read at most once.
#[derive(Debug)]
pub struct Invocation {
    env: Env,
    fallback_home: OnceCell<Option<PathBuf>>,
    module: OnceCell<ModuleContext>,
    cwd: OnceCell<std::result::Result<PathBuf, String>>,
    binary: OnceCell<std::result::Result<PathBuf, String>>,
    stdin_terminal: OnceCell<bool>,
    stdout_terminal: OnceCell<bool>,
    stderr_terminal: OnceCell<bool>,
}

impl Invocation {
    /// The invocation over the environment snapshot `env`, in this process.
    pub fn new(env: Env) -> Self {
        Invocation {
            env,
            fallback_home: OnceCell::new(),
            module: OnceCell::new(),
            cwd: OnceCell::new(),
            binary: OnceCell::new(),
            stdin_terminal: OnceCell::new(),
            stdout_terminal: OnceCell::new(),
            stderr_terminal: OnceCell::new(),
        }
    }

    /// The environment snapshot.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The module context of the invocation's environment.
    pub fn module(&self) -> &ModuleContext {
        self.module.get_or_init(|| self.context_for(&self.env))
    }

    /// The module context `env` describes (an environment derived from the
    /// invocation's, as a cron job's), with the invocation's fallback home.
    pub fn context_for(&self, env: &Env) -> ModuleContext {
        let home_set = env.get("HOME").is_some_and(|home| !home.is_empty());
        let fallback = if home_set { None } else { self.fallback_home() };
        ModuleContext::from_env(env, fallback)
    }

    /// The home directory used when `HOME` is unset: the password file's.
    pub fn fallback_home(&self) -> Option<&Path> {
        self.fallback_home.get_or_init(dirs::home_dir).as_deref()
    }

    /// The user's home: `HOME`, else the password file's (empty when neither is known).
    pub fn home(&self) -> PathBuf {
        self.env
            .get("HOME")
            .map(PathBuf::from)
            .or_else(|| self.fallback_home().map(Path::to_path_buf))
            .unwrap_or_default()
    }

    /// The current directory.
    pub fn cwd(&self) -> Result<&Path> {
        let cwd = self
            .cwd
            .get_or_init(|| std::env::current_dir().map_err(|err| crate::error::io_reason(&err)));
        match cwd {
            Ok(dir) => Ok(dir),
            Err(reason) => Err(
                Error::new(ErrorKind::Io, "cannot read the current directory")
                    .caused_by(reason.clone()),
            ),
        }
    }

    /// The path of the running mfenv binary, when the system tells it.
    pub fn binary(&self) -> Option<&Path> {
        self.current_exe().as_deref().ok()
    }

    /// The path of the running mfenv binary, or why it is unknown.
    pub fn required_binary(&self) -> Result<&Path> {
        match self.current_exe() {
            Ok(binary) => Ok(binary),
            Err(reason) => Err(Error::new(
                ErrorKind::Io,
                "cannot find the path of the mfenv binary",
            )
            .caused_by(reason.clone())),
        }
    }

    fn current_exe(&self) -> &std::result::Result<PathBuf, String> {
        self.binary
            .get_or_init(|| std::env::current_exe().map_err(|err| crate::error::io_reason(&err)))
    }

    /// True when standard input is a terminal.
    pub fn stdin_is_terminal(&self) -> bool {
        *self
            .stdin_terminal
            .get_or_init(|| std::io::stdin().is_terminal())
    }

    /// True when standard output is a terminal.
    pub fn stdout_is_terminal(&self) -> bool {
        *self
            .stdout_terminal
            .get_or_init(|| std::io::stdout().is_terminal())
    }

    /// True when standard error is a terminal.
    pub fn stderr_is_terminal(&self) -> bool {
        *self
            .stderr_terminal
            .get_or_init(|| std::io::stderr().is_terminal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_context_is_the_environments_when_home_is_set() {
        let invocation = Invocation::new(Env::from_pairs([("HOME", "/home/u")]));
        assert_eq!(
            invocation.module().plugins_base_dir,
            Path::new("/home/u/.local/share/mfenv/var/plugins")
        );
        assert_eq!(invocation.home(), Path::new("/home/u"));
        let derived = Env::from_pairs([("MFMODULE_RUNTIME_HOME", "/rt")]);
        assert_eq!(
            invocation.context_for(&derived).runtime_home,
            Path::new("/rt")
        );
    }

    #[test]
    fn without_home_the_password_files_home_is_used() {
        let invocation = Invocation::new(Env::from_pairs([("PATH", "/usr/bin")]));
        let expected = dirs::home_dir().map(|home| home.join(".local/share/mfenv"));
        if let Some(expected) = expected {
            assert_eq!(invocation.module().runtime_home, expected);
        }
    }
}
