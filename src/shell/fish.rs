//! fish: its own quoting, and path variables as lists.
//!
//! Inside fish single quotes only `\\` and `\'` are escapes, so a value ending in `\`
//! needs fish's rules (POSIX quoting would break it). Newlines are written as `\n`
//! between quoted parts so that every statement stays on one line. Variables whose name
//! ends in `PATH` are fish path variables: they are set as lists, split on `:`, which
//! fish joins back with `:` when exporting.

use crate::env::bytes::escaped_byte;
use crate::env::diff::Op;

/// Quotes `value` for fish. Bytes that are not UTF-8 (see [`crate::env::bytes`]) are
/// written `\XHH` between quoted parts: fish reads its script as UTF-8, and `\X` is
/// its escape for one raw byte.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let mut quoted = false;
    for c in value.chars() {
        let outside = match c {
            '\n' => Some(String::from("\\n")),
            c => escaped_byte(c).map(|byte| format!("\\X{byte:02X}")),
        };
        match outside {
            Some(escape) => {
                if quoted {
                    out.push('\'');
                    quoted = false;
                } else if out.is_empty() {
                    out.push_str("''");
                }
                out.push_str(&escape);
            }
            None => {
                if !quoted {
                    out.push('\'');
                    quoted = true;
                }
                if c == '\\' || c == '\'' {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    // Empty, or ending with an escape: close with an empty quoted part, as a word
    // that starts with one opens with it.
    out.push_str(if quoted { "'" } else { "''" });
    out
}

pub fn render_op(out: &mut String, op: &Op) {
    match op {
        Op::Set(name, value) => {
            out.push_str("set -gx ");
            out.push_str(name);
            if name.ends_with("PATH") {
                if !value.is_empty() {
                    for element in value.split(':') {
                        out.push(' ');
                        out.push_str(&quote(element));
                    }
                }
            } else {
                out.push(' ');
                out.push_str(&quote(value));
            }
        }
        Op::Unset(name) => {
            out.push_str("set -e -g ");
            out.push_str(name);
        }
        Op::Source(path) => {
            out.push_str("source ");
            out.push_str(&quote(path));
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fish_quoting_escapes_backslash_and_quote_only() {
        assert_eq!(quote("a'b\\"), "'a\\'b\\\\'");
        assert_eq!(quote("$x (y) \"z\""), "'$x (y) \"z\"'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_written_as_fish_byte_escapes() {
        let value = crate::env::bytes::decode(b"caf\xe9 '\xff");
        assert_eq!(quote(&value), "'caf'\\XE9' \\''\\XFF''");
    }

    #[test]
    fn newlines_are_written_outside_quotes() {
        assert_eq!(quote("a\nb"), "'a'\\n'b'");
        assert_eq!(quote("\n"), "''\\n''");
    }

    #[test]
    fn path_variables_become_lists_keeping_empty_elements() {
        let mut out = String::new();
        render_op(&mut out, &Op::Set("PATH".into(), "/a::/b".into()));
        render_op(&mut out, &Op::Set("NODE_PATH".into(), String::new()));
        render_op(&mut out, &Op::Set("FOO".into(), "x:y".into()));
        assert_eq!(
            out,
            "set -gx PATH '/a' '' '/b'\nset -gx NODE_PATH\nset -gx FOO 'x:y'\n"
        );
    }
}
