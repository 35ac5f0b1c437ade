//! Plugin crontabs (reference D1, D2): rendering a plugin's `crontab` file into a block
//! and merging blocks into, or removing them from, the text of a user's crontab.
//!
//! Pure text functions: reading and writing the user's crontab through the `crontab`
//! command is done by [`crate::plugin::cli`]. A block is
//! `##### BEGINNING OF METWORK <MODULE> PLUGIN <name> CRONTAB #####`, the rendered lines,
//! `##### END OF METWORK <MODULE> PLUGIN <name> CRONTAB #####`. Installing a plugin's
//! block replaces its previous block and touches no other line (the original appended
//! missing lines and never removed stale ones); uninstalling removes exactly the block.
//!
//! In the crontab file, lines starting with `#` (column 0) and blank lines are dropped,
//! and `{{ NAME }}` is replaced by the variable's value; an undefined variable is an
//! error (as with the original's envtpl). Other Jinja2 syntax is left as written.

/// The first line of plugin `name`'s block.
pub fn begin_marker(module: &str, name: &str) -> String {
    format!("##### BEGINNING OF METWORK {module} PLUGIN {name} CRONTAB #####")
}

/// The last line of plugin `name`'s block.
pub fn end_marker(module: &str, name: &str) -> String {
    format!("##### END OF METWORK {module} PLUGIN {name} CRONTAB #####")
}

/// Renders a plugin's `crontab` file: comments and blank lines dropped, `{{ NAME }}`
/// replaced. `Err` names the first undefined variable.
pub fn render_crontab(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let undefined = std::cell::RefCell::new(None);
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let rendered = crate::plugin::config::render(line, |name| {
            let value = lookup(name);
            if value.is_none() {
                undefined
                    .borrow_mut()
                    .get_or_insert_with(|| name.to_owned());
            }
            value
        });
        out.push_str(&rendered);
        out.push('\n');
    }
    match undefined.into_inner() {
        Some(name) => Err(name),
        None => Ok(out),
    }
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

/// `crontab` without plugin `name`'s block (markers matched on stripped lines; when
/// either marker is missing nothing is removed).
pub fn remove_block(crontab: &str, module: &str, name: &str) -> String {
    let begin = begin_marker(module, name);
    let end = end_marker(module, name);
    let lines: Vec<&str> = crontab.lines().collect();
    let Some(start) = lines.iter().position(|line| line.trim() == begin) else {
        return crontab.to_owned();
    };
    let Some(offset) = lines[start..].iter().position(|line| line.trim() == end) else {
        return crontab.to_owned();
    };
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        if index < start || index > start + offset {
            out.push_str(line);
            out.push('\n');
        }
    }
    // Another block of the same plugin (a stale duplicate) goes too.
    if out != crontab && out.lines().any(|line| line.trim() == begin) {
        return remove_block(&out, module, name);
    }
    out
}

/// The plugin names of the blocks of `module` in `crontab`, in order.
pub fn block_names(crontab: &str, module: &str) -> Vec<String> {
    let prefix = format!("##### BEGINNING OF METWORK {module} PLUGIN ");
    let mut names = Vec::new();
    for line in crontab.lines() {
        if let Some(rest) = line.trim().strip_prefix(&prefix)
            && let Some(name) = rest.strip_suffix(" CRONTAB #####")
            && !names.iter().any(|known| known == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// `crontab` with plugin `name`'s block replaced by `new_block` (appended at the end;
/// an empty block just removes the old one).
pub fn replace_block(crontab: &str, module: &str, name: &str, new_block: &str) -> String {
    let mut out = remove_block(crontab, module, name);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(new_block);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_drops_comments_and_blank_lines_and_replaces_variables() {
        let lookup = |name: &str| (name == "HOME_DIR").then(|| "/h".to_owned());
        let text = "# comment\n\n  \n*/5 * * * * {{ HOME_DIR }}/job\n  # kept: not column 0\n";
        assert_eq!(
            render_crontab(text, lookup).unwrap(),
            "*/5 * * * * /h/job\n  # kept: not column 0\n"
        );
        assert_eq!(
            render_crontab("* * * * * {{ NOPE }}\n", lookup).unwrap_err(),
            "NOPE"
        );
    }

    #[test]
    fn replacing_a_block_keeps_every_other_line() {
        let first = block("MFDATA", "foo", "* * * * * old\n");
        let crontab = format!("MAILTO=x\n{first}0 1 * * * mine\n");
        let replaced = replace_block(
            &crontab,
            "MFDATA",
            "foo",
            &block("MFDATA", "foo", "* * * * * new\n"),
        );
        assert_eq!(
            replaced,
            "MAILTO=x\n0 1 * * * mine\n##### BEGINNING OF METWORK MFDATA PLUGIN foo CRONTAB #####\n\
             * * * * * new\n##### END OF METWORK MFDATA PLUGIN foo CRONTAB #####\n"
        );
        assert_eq!(block_names(&replaced, "MFDATA"), ["foo"]);
        assert_eq!(
            remove_block(&replaced, "MFDATA", "foo"),
            "MAILTO=x\n0 1 * * * mine\n"
        );
        assert_eq!(
            remove_block(
                "a\n##### BEGINNING OF METWORK MFDATA PLUGIN foo CRONTAB #####\nb\n",
                "MFDATA",
                "foo"
            ),
            "a\n##### BEGINNING OF METWORK MFDATA PLUGIN foo CRONTAB #####\nb\n"
        );
        assert_eq!(block("M", "foo", ""), "");
    }
}
