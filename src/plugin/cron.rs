//! Plugin crontabs (reference D1, D2): rendering a plugin's `crontab` file into a block
//! and merging blocks into, or removing them from, the text of a user's crontab.
//!
//! Pure text functions: reading and writing the user's crontab through the `crontab`
//! command, under the plugin-management lock, is done by [`crate::plugin::cli`]. A block
//! is `##### BEGINNING OF METWORK <MODULE> PLUGIN <name> CRONTAB #####`, the rendered
//! lines, `##### END OF METWORK <MODULE> PLUGIN <name> CRONTAB #####`. Installing a
//! plugin's block replaces its previous block where it stands (appended at the end when
//! there was none) and touches no other line (the original appended missing lines and
//! never removed stale ones); uninstalling removes exactly the block.
//!
//! In the crontab file, lines starting with `#` (column 0) and blank lines are dropped,
//! and `{{ NAME }}` is replaced by the variable's value; an undefined variable is an
//! error (as with the original's envtpl). Other Jinja2 syntax is left as written. The
//! lookup given by the CLI also answers `{{MFENV_BIN}}` and `{{MFENV_CRONWRAP}}`, the
//! absolute paths that let a line run under cron's environment
//! ([`crate::plugin::cron_context`]).
//!
//! Invariants, so that no plugin can make mfenv delete lines that are not its own:
//!
//! - a rendered line that the parser could read as a marker (its trimmed text starts
//!   like a begin or end marker, whatever module or plugin it names) is dropped;
//! - a value containing a line break is refused: a rendered crontab line never spans
//!   two lines;
//! - a block runs from a begin marker to the first end marker of the same plugin after
//!   it, and only when no other begin marker of that plugin and no end marker of
//!   anything else comes between. Any other marker line is stray: removing the plugin's
//!   block removes the stray marker line alone and keeps the lines around it, so a
//!   block whose end line was deleted never swallows the lines after it.

use std::collections::HashMap;
use std::fmt;

const BEGIN_PREFIX: &str = "##### BEGINNING OF METWORK ";
const END_PREFIX: &str = "##### END OF METWORK ";
const PLUGIN_INFIX: &str = " PLUGIN ";
const MARKER_SUFFIX: &str = " CRONTAB #####";

/// The first line of plugin `name`'s block.
pub fn begin_marker(module: &str, name: &str) -> String {
    format!("{BEGIN_PREFIX}{module}{PLUGIN_INFIX}{name}{MARKER_SUFFIX}")
}

/// The last line of plugin `name`'s block.
pub fn end_marker(module: &str, name: &str) -> String {
    format!("{END_PREFIX}{module}{PLUGIN_INFIX}{name}{MARKER_SUFFIX}")
}

/// Whether the parser could take `line` for a marker line of some block (of any
/// module or plugin, module blocks included). Compared on the trimmed line, as the
/// parser compares.
pub fn is_marker_like(line: &str) -> bool {
    let line = line.trim();
    line.starts_with(BEGIN_PREFIX) || line.starts_with(END_PREFIX)
}

fn is_end_like(line: &str) -> bool {
    line.trim().starts_with(END_PREFIX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerKind {
    Begin,
    End,
}

/// The plugin marker `line` is: its kind, module and plugin name.
fn plugin_marker(line: &str) -> Option<(MarkerKind, &str, &str)> {
    let line = line.trim();
    let (kind, rest) = if let Some(rest) = line.strip_prefix(BEGIN_PREFIX) {
        (MarkerKind::Begin, rest)
    } else {
        (MarkerKind::End, line.strip_prefix(END_PREFIX)?)
    };
    let (module, name) = rest.strip_suffix(MARKER_SUFFIX)?.split_once(PLUGIN_INFIX)?;
    Some((kind, module, name))
}

/// Why a plugin's crontab cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// `{{ NAME }}` names no variable.
    Undefined { variable: String, line: usize },
    /// The value of `{{ NAME }}` contains a line break.
    Multiline { variable: String, line: usize },
    /// A `{{ … }}` form mfenv does not render (an expression, a filter, a block).
    Unsupported { reason: String, line: usize },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::Undefined { variable, .. } => {
                write!(f, "undefined variable `{variable}`")
            }
            RenderError::Multiline { variable, .. } => write!(
                f,
                "the value of `{variable}` contains a line break (a crontab line cannot span lines)"
            ),
            RenderError::Unsupported { reason, .. } => f.write_str(reason),
        }
    }
}

impl RenderError {
    /// The line of the crontab file (1-based).
    pub fn line(&self) -> usize {
        match self {
            RenderError::Undefined { line, .. }
            | RenderError::Multiline { line, .. }
            | RenderError::Unsupported { line, .. } => *line,
        }
    }
}

/// A rendered plugin crontab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The rendered lines, each ending with `\n`.
    pub text: String,
    /// The lines of the crontab file (1-based) dropped because they read as markers.
    pub dropped_markers: Vec<usize>,
}

/// Renders a plugin's `crontab` file: comments, blank lines and marker-like lines
/// dropped, `{{ NAME }}` replaced. `Err` names the first variable that is undefined or
/// whose value holds a line break.
pub fn render_crontab(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> std::result::Result<Rendered, RenderError> {
    let mut rendered = Rendered {
        text: String::new(),
        dropped_markers: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let error = std::cell::RefCell::new(None);
        let out = crate::plugin::config::try_render(line, |name| {
            let value = lookup(name);
            let problem = match &value {
                None => Some(RenderError::Undefined {
                    variable: name.to_owned(),
                    line: index + 1,
                }),
                Some(value) if value.contains(['\n', '\r']) => Some(RenderError::Multiline {
                    variable: name.to_owned(),
                    line: index + 1,
                }),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                error.borrow_mut().get_or_insert(problem);
            }
            value
        });
        if let Some(error) = error.into_inner() {
            return Err(error);
        }
        let out = out.map_err(|reason| RenderError::Unsupported {
            reason,
            line: index + 1,
        })?;
        if is_marker_like(&out) {
            rendered.dropped_markers.push(index + 1);
            continue;
        }
        rendered.text.push_str(&out);
        rendered.text.push('\n');
    }
    Ok(rendered)
}

/// The block of plugin `name` around the rendered lines; empty when there are none.
pub fn block(module: &str, name: &str, rendered: &str) -> String {
    if rendered.trim().is_empty() {
        return String::new();
    }
    let mut out = begin_marker(module, name);
    out.push('\n');
    out.push_str(rendered);
    if !rendered.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&end_marker(module, name));
    out.push('\n');
    out
}

/// One piece of a parsed crontab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    /// A line that belongs to no block.
    Line(&'a str),
    /// A whole block, its marker lines included.
    Block {
        module: &'a str,
        name: &'a str,
        lines: &'a [&'a str],
    },
    /// A marker line that opens or closes no block; `line` is 1-based.
    Stray {
        module: &'a str,
        name: &'a str,
        text: &'a str,
        line: usize,
    },
}

/// Splits `lines` into blocks, stray markers and other lines (the rule is in the
/// module documentation). Linear in the number of lines.
fn segments<'a>(lines: &'a [&'a str]) -> Vec<Segment<'a>> {
    let markers: Vec<Option<(MarkerKind, &str, &str)>> =
        lines.iter().map(|line| plugin_marker(line)).collect();
    // For each line, the next end-like line and the next begin marker of the same
    // plugin after it.
    let mut next_end = vec![None; lines.len()];
    let mut next_same_begin = vec![None; lines.len()];
    let mut following_end = None;
    let mut following_begin: HashMap<(&str, &str), usize> = HashMap::new();
    for index in (0..lines.len()).rev() {
        next_end[index] = following_end;
        if let Some((MarkerKind::Begin, module, name)) = markers[index] {
            next_same_begin[index] = following_begin.insert((module, name), index);
        }
        if is_end_like(lines[index]) {
            following_end = Some(index);
        }
    }
    let mut out = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        match markers[index] {
            Some((MarkerKind::Begin, module, name)) => {
                let closing = next_end[index].filter(|&end| {
                    markers[end] == Some((MarkerKind::End, module, name))
                        && next_same_begin[index].is_none_or(|begin| begin > end)
                });
                if let Some(end) = closing {
                    out.push(Segment::Block {
                        module,
                        name,
                        lines: &lines[index..=end],
                    });
                    index = end + 1;
                    continue;
                }
                out.push(Segment::Stray {
                    module,
                    name,
                    text: lines[index],
                    line: index + 1,
                });
            }
            Some((MarkerKind::End, module, name)) => out.push(Segment::Stray {
                module,
                name,
                text: lines[index],
                line: index + 1,
            }),
            None => out.push(Segment::Line(lines[index])),
        }
        index += 1;
    }
    out
}

/// What [`set_block`] did to the plugin's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Added,
    Replaced,
    Removed,
}

/// The result of [`set_block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The new text of the crontab.
    pub crontab: String,
    pub change: Change,
    /// The lines (1-based, in the old text) of the plugin's stray markers, removed.
    pub stray_markers: Vec<usize>,
}

/// `crontab` with plugin `name`'s block set to `new_block` (from [`block`]): put where
/// the first old block stood, else appended; an empty `new_block` removes the block.
/// Other blocks of the plugin and its stray marker lines go; every other line stays.
pub fn set_block(crontab: &str, module: &str, name: &str, new_block: &str) -> Update {
    let lines: Vec<&str> = crontab.lines().collect();
    let mut out = String::with_capacity(crontab.len() + new_block.len());
    let mut old_blocks = Vec::new();
    let mut stray_markers = Vec::new();
    let mut placed = false;
    let push = |out: &mut String, line: &str| {
        out.push_str(line);
        out.push('\n');
    };
    for segment in segments(&lines) {
        match segment {
            Segment::Block {
                module: m,
                name: n,
                lines,
            } if m == module && n == name => {
                let mut old = String::new();
                for line in lines {
                    push(&mut old, line);
                }
                old_blocks.push(old);
                if !placed {
                    out.push_str(new_block);
                    placed = true;
                }
            }
            Segment::Stray {
                module: m,
                name: n,
                line,
                ..
            } if m == module && n == name => stray_markers.push(line),
            Segment::Line(line) | Segment::Stray { text: line, .. } => push(&mut out, line),
            Segment::Block { lines, .. } => {
                for line in lines {
                    push(&mut out, line);
                }
            }
        }
    }
    if !placed {
        out.push_str(new_block);
    }
    let change = match (old_blocks.as_slice(), new_block.is_empty()) {
        ([], true) => Change::Unchanged,
        ([], false) => Change::Added,
        (_, true) => Change::Removed,
        ([only], false) if only == new_block => Change::Unchanged,
        (_, false) => Change::Replaced,
    };
    Update {
        crontab: out,
        change,
        stray_markers,
    }
}

/// `crontab` without plugin `name`'s block (and its stray marker lines).
pub fn remove_block(crontab: &str, module: &str, name: &str) -> Update {
    set_block(crontab, module, name, "")
}

/// The plugin names of `module` that have a block or a stray marker in `crontab`, in
/// order of first appearance.
pub fn block_names(crontab: &str, module: &str) -> Vec<String> {
    let lines: Vec<&str> = crontab.lines().collect();
    let mut names: Vec<String> = Vec::new();
    for segment in segments(&lines) {
        let (Segment::Block {
            module: m, name, ..
        }
        | Segment::Stray {
            module: m, name, ..
        }) = segment
        else {
            continue;
        };
        if m == module && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN_FOO: &str = "##### BEGINNING OF METWORK MFDATA PLUGIN foo CRONTAB #####";
    const END_FOO: &str = "##### END OF METWORK MFDATA PLUGIN foo CRONTAB #####";

    fn set(crontab: &str, name: &str, rendered: &str) -> Update {
        set_block(crontab, "MFDATA", name, &block("MFDATA", name, rendered))
    }

    #[test]
    fn rendering_drops_comments_and_blank_lines_and_replaces_variables() {
        let lookup = |name: &str| (name == "HOME_DIR").then(|| "/h".to_owned());
        let text = "# comment\n\n  \n*/5 * * * * {{ HOME_DIR }}/job\n  # kept: not column 0\n";
        assert_eq!(
            render_crontab(text, lookup).unwrap().text,
            "*/5 * * * * /h/job\n  # kept: not column 0\n"
        );
        assert_eq!(
            render_crontab("\n* * * * * {{ NOPE }}\n", lookup).unwrap_err(),
            RenderError::Undefined {
                variable: "NOPE".into(),
                line: 2
            }
        );
        // What Jinja2 would compute is never guessed, nor left as written.
        for line in [
            "* * * * * {{ HOME_DIR | upper }}",
            "* * * * * {{ 42 }}",
            "* * * * * {{",
        ] {
            let error = render_crontab(line, lookup).unwrap_err();
            assert!(
                matches!(error, RenderError::Unsupported { line: 1, .. }),
                "{line}: {error:?}"
            );
        }
    }

    #[test]
    fn rendering_drops_lines_that_read_as_markers_of_any_block() {
        let lookup = |name: &str| {
            (name == "FORGED")
                .then(|| "##### END OF METWORK MFDATA PLUGIN bar CRONTAB #####".into())
        };
        let text = "* * * * * a\n  ##### BEGINNING OF METWORK MFDATA PLUGIN bar CRONTAB #####\n\
                    \t##### END OF METWORK MFDATA MODULE CRONTAB #####\n{{ FORGED }}\n\
                    * * * * * echo '##### BEGINNING OF METWORK' stays\n";
        let rendered = render_crontab(text, lookup).unwrap();
        assert_eq!(
            rendered.text,
            "* * * * * a\n* * * * * echo '##### BEGINNING OF METWORK' stays\n"
        );
        assert_eq!(rendered.dropped_markers, [2, 3, 4]);
    }

    #[test]
    fn a_value_with_a_line_break_is_refused() {
        for value in ["x\n* * * * * injected", "x\r* * * * * injected"] {
            let lookup = |_: &str| Some(value.to_owned());
            assert_eq!(
                render_crontab("# c\n0 1 * * * job {{ ARGS }}\n", lookup).unwrap_err(),
                RenderError::Multiline {
                    variable: "ARGS".into(),
                    line: 2
                }
            );
        }
    }

    #[test]
    fn setting_a_block_replaces_it_in_place_and_keeps_every_other_line() {
        let first = block("MFDATA", "foo", "* * * * * old\n");
        let crontab = format!("MAILTO=x\n{first}0 1 * * * mine\n");
        let replaced = set(&crontab, "foo", "* * * * * new\n");
        assert_eq!(replaced.change, Change::Replaced);
        assert_eq!(
            replaced.crontab,
            format!("MAILTO=x\n{BEGIN_FOO}\n* * * * * new\n{END_FOO}\n0 1 * * * mine\n")
        );
        assert_eq!(block_names(&replaced.crontab, "MFDATA"), ["foo"]);
        assert_eq!(
            set(&replaced.crontab, "foo", "* * * * * new\n").change,
            Change::Unchanged
        );
        let removed = remove_block(&replaced.crontab, "MFDATA", "foo");
        assert_eq!(removed.change, Change::Removed);
        assert_eq!(removed.crontab, "MAILTO=x\n0 1 * * * mine\n");
        let added = set("a\n", "foo", "b\n");
        assert_eq!(added.change, Change::Added);
        assert_eq!(added.crontab, format!("a\n{BEGIN_FOO}\nb\n{END_FOO}\n"));
        assert_eq!(block("M", "foo", ""), "");
        assert_eq!(
            remove_block("a\n", "MFDATA", "foo").change,
            Change::Unchanged
        );
    }

    #[test]
    fn an_unterminated_block_never_swallows_the_lines_after_it() {
        // The end line was deleted; the user's lines and another block follow.
        let bar = block("MFDATA", "bar", "* * * * * bar\n");
        let crontab =
            format!("{BEGIN_FOO}\n* * * * * foo\n0 1 * * * mine\n{bar}0 2 * * * mine too\n");
        let removed = remove_block(&crontab, "MFDATA", "foo");
        assert_eq!(
            removed.crontab,
            format!("* * * * * foo\n0 1 * * * mine\n{bar}0 2 * * * mine too\n")
        );
        assert_eq!(removed.stray_markers, [1]);
        assert_eq!(removed.change, Change::Unchanged);
        // Re-adding does not pair the old begin line with the new end line.
        let added = set(&crontab, "foo", "* * * * * foo\n");
        assert_eq!(added.change, Change::Added);
        let again = remove_block(
            &format!("{BEGIN_FOO}\nmine\n{}", block("MFDATA", "foo", "x\n")),
            "MFDATA",
            "foo",
        );
        assert_eq!(again.crontab, "mine\n");
        assert_eq!(again.stray_markers, [1]);
        // An end line alone is stray too.
        let stray_end = remove_block(&format!("mine\n{END_FOO}\n"), "MFDATA", "foo");
        assert_eq!(stray_end.crontab, "mine\n");
        assert_eq!(
            block_names(&format!("mine\n{END_FOO}\n"), "MFDATA"),
            ["foo"]
        );
    }

    #[test]
    fn a_marker_forged_inside_a_block_does_not_make_another_block() {
        // As written by versions that kept a plugin's marker-like lines.
        let forged = "  ##### BEGINNING OF METWORK MFDATA PLUGIN bar CRONTAB #####";
        let crontab = format!(
            "{BEGIN_FOO}\n{forged}\n* * * * * foo\n{END_FOO}\n0 1 * * * mine\n{}",
            block("MFDATA", "bar", "* * * * * bar\n")
        );
        let without_bar = remove_block(&crontab, "MFDATA", "bar");
        assert_eq!(
            without_bar.crontab,
            format!("{BEGIN_FOO}\n{forged}\n* * * * * foo\n{END_FOO}\n0 1 * * * mine\n")
        );
        assert_eq!(without_bar.change, Change::Removed);
        assert_eq!(
            remove_block(&without_bar.crontab, "MFDATA", "foo").crontab,
            "0 1 * * * mine\n"
        );
        // A forged end line of bar inside foo's block: bar's real block stays whole.
        let forged_end = "\t##### END OF METWORK MFDATA PLUGIN bar CRONTAB #####";
        let crontab = format!(
            "{}mine\n{BEGIN_FOO}\n{forged_end}\n{END_FOO}\n",
            block("MFDATA", "bar", "* * * * * bar\n")
        );
        let without_bar = remove_block(&crontab, "MFDATA", "bar");
        assert_eq!(
            without_bar.crontab,
            format!("mine\n{BEGIN_FOO}\n{END_FOO}\n")
        );
        assert_eq!(without_bar.stray_markers, [6]);
    }

    #[test]
    fn blocks_of_other_modules_are_left_alone() {
        let other = block("MFSERV", "foo", "* * * * * serv\n");
        let crontab = format!("{other}{}", block("MFDATA", "foo", "* * * * * data\n"));
        assert_eq!(remove_block(&crontab, "MFDATA", "foo").crontab, other);
        assert_eq!(block_names(&crontab, "MFSERV"), ["foo"]);
    }
}
