//! Shell syntax: the only place that knows how bash, zsh, fish and sh spell things.
//!
//! A renderer turns [`Op`]s (set, unset, source) into code for one shell; an escaper per
//! shell family makes every value literal (POSIX single quotes for bash, zsh and sh;
//! fish's own quoting for fish). Hook scripts live in `shell/` at the repository root and
//! are embedded with `include_str!`; `@MFENV@` is replaced by the binary's absolute,
//! escaped path so that a layer putting another `mfenv` on PATH cannot take over.
//!
//! The hook's functions run mfenv with [`HOOK_VARIABLE`] set to their own name. mfenv
//! then starts the shell code it prints with [`CODE_MARKER`], and the functions evaluate
//! what mfenv printed only when it exited 0 and the marker is there: anything else (help,
//! version, a dry run, any text a future option prints) is shown as text, never run.
//!
//! Invariants: rendering never fails, and its output never runs a command other than the
//! `source` of an interactive (un)profile. In fish every line is a complete statement;
//! POSIX values may span lines inside their quotes.

mod fish;
mod posix;

use std::fmt;
use std::str::FromStr;

use crate::env::diff::Op;

/// Set by the hook's functions, to their name, when they run mfenv: messages then name
/// the function, and shell code starts with [`CODE_MARKER`].
pub const HOOK_VARIABLE: &str = "MFENV_HOOK";

/// The first line of shell code printed for the hook (a comment in every shell). The
/// hook evaluates nothing that does not start with it.
pub const CODE_MARKER: &str = "# mfenv: shell code\n";

/// A supported shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShellKind {
    Bash,
    Zsh,
    Fish,
    Sh,
}

impl ShellKind {
    pub const ALL: [ShellKind; 4] = [
        ShellKind::Bash,
        ShellKind::Zsh,
        ShellKind::Fish,
        ShellKind::Sh,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ShellKind::Bash => "bash",
            ShellKind::Zsh => "zsh",
            ShellKind::Fish => "fish",
            ShellKind::Sh => "sh",
        }
    }

    /// Whether interactive profiles (bash scripts in MetWork) are sourced by this shell:
    /// bash and zsh (which reads bash-style profiles); not fish or POSIX sh, where bash
    /// syntax would abort the evaluation midway.
    pub fn sources_profiles(self) -> bool {
        matches!(self, ShellKind::Bash | ShellKind::Zsh)
    }

    /// Quotes `value` so this shell reads it back literally, as one word.
    pub fn quote(self, value: &str) -> String {
        match self {
            ShellKind::Fish => fish::quote(value),
            _ => posix::quote(value),
        }
    }

    /// Renders operations as code for this shell, one statement per line.
    pub fn render(self, ops: &[Op]) -> String {
        let mut out = String::with_capacity(ops.len() * 64);
        for op in ops {
            match self {
                ShellKind::Fish => fish::render_op(&mut out, op),
                _ => posix::render_op(&mut out, op, self),
            }
        }
        out
    }

    /// The hook script defining `layer_load`, `layer_unload`, `layer_load_without_optional`
    /// and their completion, calling the binary at `binary`. `@MARKER@` in the scripts is
    /// [`CODE_MARKER`] without its newline, `@HOOK_VARIABLE@` is [`HOOK_VARIABLE`].
    pub fn hook(self, binary: &str) -> String {
        let template = match self {
            ShellKind::Bash => include_str!("../../shell/mfenv.bash"),
            ShellKind::Zsh => include_str!("../../shell/mfenv.zsh"),
            ShellKind::Fish => include_str!("../../shell/mfenv.fish"),
            ShellKind::Sh => include_str!("../../shell/mfenv.sh"),
        };
        template
            .replace("@MFENV@", &self.quote(binary))
            .replace("@MARKER@", CODE_MARKER.trim_end_matches('\n'))
            .replace("@HOOK_VARIABLE@", HOOK_VARIABLE)
    }
}

impl fmt::Display for ShellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ShellKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "bash" => Ok(ShellKind::Bash),
            "zsh" => Ok(ShellKind::Zsh),
            "fish" => Ok(ShellKind::Fish),
            "sh" | "dash" | "posix" => Ok(ShellKind::Sh),
            other => Err(format!(
                "unknown shell `{other}` (expected bash, zsh, fish or sh)"
            )),
        }
    }
}
