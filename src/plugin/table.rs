//! Box-drawing tables for `plugin list` and `plugin info`, in the layout of the
//! terminaltables "DoubleTable" the original printed: a title inside the top border,
//! `║` between cells, one space of padding, multi-line cells.
//!
//! Widths count characters (not terminal columns): wide characters misalign the
//! borders but never break the content.
//!
//! Values shown to humans or in `--raw` lines come from untrusted files (`.metadata.json`,
//! `config.ini`, archive names): [`printable`] escapes their control characters, so a
//! value can neither add a line nor send an escape sequence to the terminal. Rendering
//! costs one pass over the cells, whatever their number of lines.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A table to render.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: Option<String>,
    /// Rows of cells; a cell may hold several lines.
    pub rows: Vec<Vec<String>>,
    /// Draw a separator under the first row.
    pub header: bool,
}

fn width(text: &str) -> usize {
    text.chars().count()
}

impl Table {
    /// The table as text, ending with a newline.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        if columns == 0 {
            return String::new();
        }
        // Each cell split once: looking lines up by index would be quadratic.
        let cells: Vec<Vec<Vec<&str>>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|cell| cell.lines().collect()).collect())
            .collect();
        let mut widths = vec![0usize; columns];
        for row in &cells {
            for (index, lines) in row.iter().enumerate() {
                for line in lines {
                    widths[index] = widths[index].max(width(line));
                }
            }
        }
        let border = |left: char, middle: char, right: char| -> String {
            let mut line = String::new();
            line.push(left);
            for (index, column_width) in widths.iter().enumerate() {
                if index > 0 {
                    line.push(middle);
                }
                line.extend(std::iter::repeat_n('═', column_width + 2));
            }
            line.push(right);
            line
        };
        let mut top: Vec<char> = border('╔', '╦', '╗').chars().collect();
        if let Some(title) = &self.title {
            let title: Vec<char> = title.chars().collect();
            if title.len() + 2 <= top.len() {
                top.splice(1..1 + title.len(), title);
            }
        }
        let mut out: String = top.into_iter().collect();
        out.push('\n');
        for (row_index, row) in cells.iter().enumerate() {
            let height = row
                .iter()
                .map(|lines| lines.len().max(1))
                .max()
                .unwrap_or(1);
            for line_index in 0..height {
                out.push('║');
                for (index, column_width) in widths.iter().enumerate() {
                    if index > 0 {
                        out.push('║');
                    }
                    let text = row
                        .get(index)
                        .and_then(|lines| lines.get(line_index))
                        .copied()
                        .unwrap_or("");
                    out.push(' ');
                    out.push_str(text);
                    out.extend(std::iter::repeat_n(' ', column_width - width(text) + 1));
                }
                out.push_str("║\n");
            }
            if row_index == 0 && self.header && self.rows.len() > 1 {
                out.push_str(&border('╠', '╬', '╣'));
                out.push('\n');
            }
        }
        out.push_str(&border('╚', '╩', '╝'));
        out.push('\n');
        out
    }
}

/// `text` cut into lines of at most `limit` characters.
pub fn wrap(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (index, line) in text.lines().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let chars: Vec<char> = line.chars().collect();
        for (chunk_index, chunk) in chars.chunks(limit.max(1)).enumerate() {
            if chunk_index > 0 {
                out.push('\n');
            }
            out.extend(chunk);
        }
    }
    out
}

/// True for the characters [`printable`] escapes: C0 and C1 controls, DEL, and the
/// bidirectional overrides that reorder what a terminal shows.
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with its control characters written as escapes (`\n`, `\t`, `\r`, `\x1b`,
/// `\u{202e}`): one line, nothing a terminal interprets. Other text is unchanged, and
/// text without control characters is not copied.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unprintable) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 && is_unprintable(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unprintable(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_has_its_title_in_the_top_border_and_a_header_separator() {
        let table = Table {
            title: Some("Installed plugins (1)".into()),
            rows: vec![
                vec![
                    "Name".into(),
                    "Version".into(),
                    "Release".into(),
                    "Home".into(),
                ],
                vec!["foo".into(), "1.0.0".into(), "1".into(), "/p/foo".into()],
            ],
            header: true,
        };
        assert_eq!(
            table.render(),
            "\
╔Installed plugins (1)═════╦════════╗
║ Name ║ Version ║ Release ║ Home   ║
╠══════╬═════════╬═════════╬════════╣
║ foo  ║ 1.0.0   ║ 1       ║ /p/foo ║
╚══════╩═════════╩═════════╩════════╝
"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_other_text_is_kept() {
        assert!(matches!(printable("1.0.0 é ✓"), Cow::Borrowed("1.0.0 é ✓")));
        assert_eq!(printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(printable("\u{1b}[31mred"), "\\x1b[31mred");
        assert_eq!(printable("\u{7f}\u{85}\u{202e}"), "\\x7f\\x85\\u{202e}");
        assert_eq!(printable("back\\slash"), "back\\slash");
    }

    #[test]
    fn a_cell_of_many_lines_renders_every_line_once() {
        let lines: Vec<String> = (0..5000).map(|n| n.to_string()).collect();
        let table = Table {
            title: None,
            rows: vec![vec!["Files".into(), lines.join("\n")]],
            header: false,
        };
        let rendered = table.render();
        assert_eq!(rendered.lines().count(), 5000 + 2);
        assert!(
            rendered.contains("║       ║ 4999 ║\n"),
            "{}",
            &rendered[rendered.len() - 60..]
        );
    }

    #[test]
    fn long_values_wrap_into_several_lines() {
        assert_eq!(wrap("abcdef", 4), "abcd\nef");
        let table = Table {
            title: None,
            rows: vec![vec!["Files".into(), "a\nbb".into()]],
            header: false,
        };
        assert_eq!(
            table.render(),
            "╔═══════╦════╗\n║ Files ║ a  ║\n║       ║ bb ║\n╚═══════╩════╝\n"
        );
    }
}
