//! The administrator's (OP) configuration overrides of a plugin: the template written
//! at install (`RUNTIME/config/plugins/NAME.ini`, reference B6), the test telling a
//! touched override from an untouched template, and the baking of overrides into a
//! `config.ini` for `mfenv plugin repackage` (B10).
//!
//! Pure text functions: the manager decides which files to read and write.
//!
//! The template keeps mfext's layout byte for byte: a fixed header naming the plugin's
//! `config.ini` and the system override, then every public key of the plugin's
//! `config.ini` commented out under its section, with the comments written before it.
//! Sections without a public key (`[general]` holds only `_` keys) are left out, and so
//! are private keys with the comments before them.

use std::path::Path;

use crate::plugin::config::{IniDocument, split_variant};

/// True when `text` has a line that is neither blank, a comment nor a section header:
/// an override someone wrote, as opposed to an untouched template.
pub fn has_interesting_line(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('[') && !line.starts_with('#')
    })
}

/// The override template for plugin `name` whose configuration is `config_text` read
/// from `config_path`; `system_override` is `SYSCONF/<module>/plugins/<name>.ini`.
pub fn template(
    config_text: &str,
    config_path: &Path,
    name: &str,
    system_override: &Path,
) -> String {
    let config_path = config_path.display();
    let mut out = format!(
        "# THIS FILE OVERRIDES {config_path} CONFIGURATION FILE (plugin: {name})\n\
         # DON'T CHANGE ANYTHING IN {config_path} FILE, NEVER\n\
         #\n\
         # => to set a new value for a key, just uncomment it in the \n\
         #    current file and change its value\n\
         #\n\
         # Note: this file itself can be overriden by:\n\
         #       {}\n\
         #       (if exists)\n\
         \n\
         \n",
        system_override.display()
    );
    // The section being built (header first), whether it has a public key yet, and the
    // comments waiting for the next key.
    let mut section: Option<Vec<String>> = None;
    let mut has_key = false;
    let mut comments: Vec<String> = Vec::new();
    let flush = |out: &mut String, section: &mut Vec<String>| {
        if section.last().is_some_and(String::is_empty) {
            section.pop();
        }
        out.push_str(&section.join("\n"));
        out.push('\n');
    };
    for line in config_text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if let Some(lines) = &mut section
                && !lines.last().is_some_and(String::is_empty)
            {
                lines.push(String::new());
            }
            continue;
        }
        if line.starts_with('[') {
            if let Some(mut lines) = section.take()
                && has_key
            {
                // Inner sections keep their trailing blank line as a separator.
                out.push_str(&lines.join("\n"));
                out.push('\n');
                lines.clear();
            }
            section = Some(vec![line.to_owned()]);
            comments.clear();
            has_key = false;
            continue;
        }
        if line.starts_with('#') {
            if section.is_some() {
                comments.push(line.to_owned());
            }
            continue;
        }
        if line.starts_with('_') {
            comments.clear();
            continue;
        }
        if let Some(lines) = &mut section {
            has_key = true;
            lines.append(&mut comments);
            lines.push(format!("# {line}"));
        }
    }
    if let Some(mut lines) = section
        && has_key
    {
        flush(&mut out, &mut lines);
    }
    out
}

/// One `key = value` line range of a `config.ini` text.
#[derive(Debug, Clone)]
struct KeyLines {
    section: String,
    key: String,
    /// First line (the key) and last line (its last continuation), 0-based.
    first: usize,
    last: usize,
}

/// Where the sections and keys of a `config.ini` text are (same rules as
/// `config::parse_ini`: `#` comments do not end a multi-line value, blank lines do).
fn locate(lines: &[String]) -> (Vec<(String, usize, usize)>, Vec<KeyLines>) {
    let mut sections: Vec<(String, usize, usize)> = Vec::new();
    let mut keys: Vec<KeyLines> = Vec::new();
    let mut value_open = false;
    for (index, raw) in lines.iter().enumerate() {
        let stripped = raw.trim();
        if stripped.is_empty() {
            value_open = false;
            continue;
        }
        if stripped.starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t']) && value_open {
            if let Some(key) = keys.last_mut() {
                key.last = index;
            }
            if let Some(section) = sections.last_mut() {
                section.2 = index;
            }
            continue;
        }
        if let Some(name) = stripped
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            sections.push((name.to_owned(), index, index));
            value_open = false;
            continue;
        }
        if let (Some(section), Some((key, _))) = (sections.last_mut(), stripped.split_once('=')) {
            section.2 = index;
            keys.push(KeyLines {
                section: section.0.clone(),
                key: key.trim().to_owned(),
                first: index,
                last: index,
            });
            value_open = true;
        }
    }
    (sections, keys)
}

/// `key = value` lines (multi-line values continue indented).
fn key_lines(key: &str, value: &str) -> Vec<String> {
    let mut parts = value.split('\n');
    let mut out = vec![format!("{key} = {}", parts.next().unwrap_or_default())];
    out.extend(parts.map(|part| format!("    {part}")));
    out
}

/// Bakes the public keys of `overrides` (in increasing priority) into `config_text`
/// (whose parsed form is `plugin`): each raw key (`key` or `key[VARIANT]`) replaces the
/// same raw key of its section, or is added. Writing raw keys, variants included,
/// makes the new `config.ini` resolve exactly as the stack of files did, whatever
/// `MFCONFIG` is later. Returns the new text and one message per change
/// (`NEW [section]/key = value`, `CHANGED [section]/key: old => new`).
pub fn bake(
    config_text: &str,
    plugin: &IniDocument,
    overrides: &[IniDocument],
) -> (String, Vec<String>) {
    let mut lines: Vec<String> = config_text.lines().map(str::to_owned).collect();
    let mut messages = Vec::new();
    // The value each (section, raw key) has so far.
    let mut current: Vec<(String, String, String)> = plugin
        .sections
        .iter()
        .flat_map(|section| {
            section
                .entries
                .iter()
                .map(|entry| (section.name.clone(), entry.key.clone(), entry.value.clone()))
        })
        .collect();
    for document in overrides {
        for section in &document.sections {
            for entry in &section.entries {
                let (real_key, _) = split_variant(&entry.key);
                if real_key.starts_with('_') {
                    continue;
                }
                let existing = current
                    .iter_mut()
                    .find(|(s, k, _)| *s == section.name && *k == entry.key);
                match existing {
                    Some((_, _, value)) if *value == entry.value => continue,
                    Some((_, _, value)) => {
                        messages.push(format!(
                            "CHANGED [{}]/{}: {} => {}",
                            section.name, entry.key, value, entry.value
                        ));
                        *value = entry.value.clone();
                    }
                    None => {
                        messages.push(format!(
                            "NEW [{}]/{} = {}",
                            section.name, entry.key, entry.value
                        ));
                        current.push((
                            section.name.clone(),
                            entry.key.clone(),
                            entry.value.clone(),
                        ));
                    }
                }
                let (sections, keys) = locate(&lines);
                let new_lines = key_lines(&entry.key, &entry.value);
                if let Some(found) = keys
                    .iter()
                    .find(|k| k.section == section.name && k.key == entry.key)
                {
                    // Comment lines inside a multi-line value stay, after the new value.
                    let kept: Vec<String> = lines[found.first..=found.last]
                        .iter()
                        .filter(|line| line.trim().starts_with('#'))
                        .cloned()
                        .collect();
                    let replacement: Vec<String> = new_lines.into_iter().chain(kept).collect();
                    lines.splice(found.first..=found.last, replacement);
                } else if let Some((_, _, last)) = sections
                    .iter()
                    .rev()
                    .find(|(name, _, _)| *name == section.name)
                {
                    let at = last + 1;
                    lines.splice(at..at, new_lines);
                } else {
                    if lines.last().is_some_and(|line| !line.trim().is_empty()) {
                        lines.push(String::new());
                    }
                    lines.push(format!("[{}]", section.name));
                    lines.extend(new_lines);
                }
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    (text, messages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::config::{parse_ini, resolve};

    const CONFIG: &str = "\
[general]
# the version
_version = 1.0.0
_summary = s

[app_main]
# how many
numprocesses = 1
# private
_cmd_and_args = run

[custom]
# a comment

foo = bar
";

    #[test]
    fn the_template_comments_out_public_keys_under_their_sections() {
        let text = template(
            CONFIG,
            Path::new("/p/foo/config.ini"),
            "foo",
            Path::new("/etc/metwork.config.d/generic/plugins/foo.ini"),
        );
        let expected = "\
# THIS FILE OVERRIDES /p/foo/config.ini CONFIGURATION FILE (plugin: foo)
# DON'T CHANGE ANYTHING IN /p/foo/config.ini FILE, NEVER
#
# => to set a new value for a key, just uncomment it in the \n\
#    current file and change its value
#
# Note: this file itself can be overriden by:
#       /etc/metwork.config.d/generic/plugins/foo.ini
#       (if exists)


[app_main]
# how many
# numprocesses = 1

[custom]

# a comment
# foo = bar
";
        assert_eq!(text, expected);
        assert!(!has_interesting_line(&text));
        assert!(has_interesting_line(&format!("{text}[custom]\nfoo = 2\n")));
    }

    #[test]
    fn baking_makes_the_file_resolve_like_the_stack_of_overrides() {
        let config =
            "[custom]\nfoo = bar\nfoo[DEV] = dev\nmulti = a\n  b\n\n[app_x]\nnumprocesses = 1\n";
        let plugin = parse_ini(config, Path::new("/p/config.ini")).unwrap();
        let op = parse_ini(
            "[custom]\nfoo = op\nmulti = c\nnew = 1\n_private = x\n[extra_daemon_d]\nnumprocesses = 2\n",
            Path::new("/op.ini"),
        )
        .unwrap();
        let system = parse_ini("[custom]\nfoo[DEV] = sysdev\n", Path::new("/sys.ini")).unwrap();
        let overrides = [op, system];
        let (text, messages) = bake(config, &plugin, &overrides);
        let baked = parse_ini(&text, Path::new("/new.ini")).unwrap();
        for configuration in ["generic", "dev"] {
            let stack: Vec<IniDocument> = std::iter::once(plugin.clone())
                .chain(overrides.iter().cloned())
                .collect();
            let expected = resolve(&stack, configuration);
            let got = resolve(std::slice::from_ref(&baked), configuration);
            for (section, keys) in &expected {
                for (key, value) in keys {
                    if key.starts_with('_') {
                        continue;
                    }
                    assert_eq!(
                        got[section][key].value, value.value,
                        "{configuration} [{section}] {key}"
                    );
                }
            }
        }
        assert!(messages.contains(&"CHANGED [custom]/foo: bar => op".to_owned()));
        assert!(messages.contains(&"NEW [custom]/new = 1".to_owned()));
        assert!(!text.contains("_private"));
    }
}
