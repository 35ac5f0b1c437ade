//! Box-drawing tables for `plugin list` and `plugin info`, in the layout of the
//! terminaltables "DoubleTable" the original printed: a title inside the top border,
//! `║` between cells, one space of padding, multi-line cells.
//!
//! Widths count characters (not terminal columns): wide characters misalign the
//! borders but never break the content.

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
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                for line in cell.lines() {
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
        for (row_index, row) in self.rows.iter().enumerate() {
            let height = row
                .iter()
                .map(|cell| cell.lines().count().max(1))
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
                        .and_then(|cell| cell.lines().nth(line_index))
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
