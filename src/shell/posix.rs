//! bash, zsh and sh: POSIX single quotes, `export`/`unset`, `source` or `.`.

use std::borrow::Cow;

use super::ShellKind;
use crate::env::diff::Op;

/// Single-quotes `value` for a POSIX shell. Always quoted, even when it would not need
/// to be: a bare word starting with `=` or `~` would be expanded by zsh or bash.
pub fn quote(value: &str) -> String {
    match shell_escape::unix::escape(Cow::Borrowed(value)) {
        // Unchanged means only [A-Za-z0-9_=/,.+-]: no quote inside, safe to wrap.
        Cow::Borrowed(bare) => format!("'{bare}'"),
        Cow::Owned(quoted) => quoted,
    }
}

pub fn render_op(out: &mut String, op: &Op, shell: ShellKind) {
    match op {
        Op::Set(name, value) => {
            // `\builtin` keeps user aliases and functions named `export` out of the way;
            // sh has no `builtin`, but there special builtins are found before functions
            // and the backslash stops alias expansion.
            out.push_str(match shell {
                ShellKind::Sh => "\\export ",
                _ => "\\builtin export ",
            });
            out.push_str(name);
            out.push('=');
            out.push_str(&quote(value));
        }
        Op::Unset(name) => {
            out.push_str(match shell {
                ShellKind::Sh => "\\unset ",
                _ => "\\builtin unset ",
            });
            out.push_str(name);
        }
        Op::Source(path) => {
            out.push_str(match shell {
                ShellKind::Sh => "\\. ",
                _ => "\\builtin source ",
            });
            out.push_str(&quote(path));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_always_single_quoted() {
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("=ls"), "'=ls'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(x) `y` \\"), "'$(x) `y` \\'");
    }

    #[test]
    fn operations_render_one_per_line() {
        let mut out = String::new();
        render_op(
            &mut out,
            &Op::Set("A".into(), "a b".into()),
            ShellKind::Bash,
        );
        render_op(&mut out, &Op::Unset("B".into()), ShellKind::Bash);
        render_op(&mut out, &Op::Source("/p".into()), ShellKind::Bash);
        render_op(&mut out, &Op::Source("/p".into()), ShellKind::Sh);
        assert_eq!(
            out,
            "\\builtin export A='a b'\n\\builtin unset B\n\\builtin source '/p'\n\\. '/p'\n"
        );
    }
}
