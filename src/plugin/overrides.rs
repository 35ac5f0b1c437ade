//! The administrator's (OP) configuration overrides of a plugin: the template written
//! at install (`RUNTIME/config/plugins/NAME.ini`, reference B6), the test telling a
//! touched override from an untouched template, and the baking of overrides into a
//! `config.ini` for `mfenv plugin repackage` (B10).
//!
//! Pure text functions: the manager decides which files to read and write.
//!
//! The template is mfext's (`_prepare_plugin_config.py`) byte for byte: a fixed header
//! naming the plugin's `config.ini` and the system override, then the plugin's
//! `config.ini` line by line, stripped: public keys (and continuation lines) commented
//! out, section headers, blank and comment lines kept; `[general]` and private keys are
//! dropped with the blank and comment lines just before them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::plugin::config::{
    IniDocument, is_python_space, python_lines, python_strip, split_variant,
};

/// True when `text` has a line that is neither blank, a comment nor a section header:
/// an override someone wrote, as opposed to an untouched template.
pub fn has_interesting_line(text: &str) -> bool {
    python_lines(text).any(|line| {
        let line = python_strip(line);
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
    // mfext's `_prepare_plugin_config.py`, line by line (stripped): blank and comment
    // lines wait in `pending`; a section header writes them then itself, except
    // `[general]` which is dropped with them; a private key is dropped with them; any
    // other line writes them then itself commented out; what waits at the end is written.
    let mut pending: Vec<&str> = Vec::new();
    let write = |out: &mut String, pending: &mut Vec<&str>, line: Option<String>| {
        for waiting in pending.drain(..) {
            out.push_str(waiting);
            out.push('\n');
        }
        if let Some(line) = line {
            out.push_str(&line);
            out.push('\n');
        }
    };
    for raw in python_lines(config_text) {
        let line = python_strip(raw);
        if line.is_empty() || line.starts_with('#') {
            pending.push(line);
        } else if line == "[general]" || line.starts_with('_') {
            pending.clear();
        } else if line.starts_with('[') {
            write(&mut out, &mut pending, Some(line.to_owned()));
        } else {
            write(&mut out, &mut pending, Some(format!("# {line}")));
        }
    }
    write(&mut out, &mut pending, None);
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
/// `config::parse_ini`: a line indented more than its key continues the value, blank
/// and `#` lines inside a value do not end it).
fn locate(lines: &[String]) -> (Vec<(String, usize, usize)>, Vec<KeyLines>) {
    let mut sections: Vec<(String, usize, usize)> = Vec::new();
    let mut keys: Vec<KeyLines> = Vec::new();
    let mut value_open = false;
    let mut indent_level = 0;
    for (index, raw) in lines.iter().enumerate() {
        let stripped = python_strip(raw);
        if stripped.is_empty() || stripped.starts_with('#') {
            continue;
        }
        let indent = raw.chars().take_while(|c| is_python_space(*c)).count();
        if value_open && indent > indent_level {
            if let Some(key) = keys.last_mut() {
                key.last = index;
            }
            if let Some(section) = sections.last_mut() {
                section.2 = index;
            }
            continue;
        }
        indent_level = indent;
        value_open = false;
        if let Some(rest) = stripped.strip_prefix('[')
            && let Some(close) = rest.rfind(']')
            && close > 0
        {
            sections.push((rest[..close].to_owned(), index, index));
            continue;
        }
        if let (Some(section), Some((key, _))) = (sections.last_mut(), stripped.split_once('=')) {
            section.2 = index;
            keys.push(KeyLines {
                section: section.0.clone(),
                key: key.trim_end_matches(is_python_space).to_owned(),
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
/// (`NEW [section]/key = value`, `CHANGED [section]/key: old => new`). One pass over
/// the keys and one over the lines.
pub fn bake(
    config_text: &str,
    plugin: &IniDocument,
    overrides: &[IniDocument],
) -> (String, Vec<String>) {
    let lines: Vec<String> = python_lines(config_text).map(str::to_owned).collect();
    let mut messages = Vec::new();
    // The value each (section, raw key) has so far, and the changed ones in order.
    let mut current: HashMap<(&str, &str), &str> = HashMap::new();
    for section in &plugin.sections {
        for entry in &section.entries {
            current.insert((&section.name, &entry.key), &entry.value);
        }
    }
    let mut changed: Vec<(&str, &str)> = Vec::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for document in overrides {
        for section in &document.sections {
            for entry in &section.entries {
                let (real_key, _) = split_variant(&entry.key);
                if real_key.starts_with('_') {
                    continue;
                }
                let slot = (section.name.as_str(), entry.key.as_str());
                match current.get(&slot) {
                    Some(value) if *value == entry.value => continue,
                    Some(value) => messages.push(format!(
                        "CHANGED [{}]/{}: {} => {}",
                        section.name, entry.key, value, entry.value
                    )),
                    None => messages.push(format!(
                        "NEW [{}]/{} = {}",
                        section.name, entry.key, entry.value
                    )),
                }
                current.insert(slot, &entry.value);
                if seen.insert(slot) {
                    changed.push(slot);
                }
            }
        }
    }
    let (sections, keys) = locate(&lines);
    let mut key_at: HashMap<(&str, &str), &KeyLines> = HashMap::new();
    for key in &keys {
        key_at.entry((&key.section, &key.key)).or_insert(key);
    }
    let mut section_end: HashMap<&str, usize> = HashMap::new();
    for (name, _, last) in &sections {
        section_end.insert(name, *last);
    }
    // Replaced keys by first line (with their last line), keys added after a line,
    // new sections in order.
    let mut replaced: HashMap<usize, (usize, Vec<String>)> = HashMap::new();
    let mut added_after: HashMap<usize, Vec<String>> = HashMap::new();
    let mut new_sections: Vec<(&str, Vec<String>)> = Vec::new();
    for slot in changed {
        let new_lines = key_lines(slot.1, current[&slot]);
        if let Some(found) = key_at.get(&slot) {
            // Comment lines inside a multi-line value stay, after the new value.
            let kept = lines[found.first..=found.last]
                .iter()
                .filter(|line| python_strip(line).starts_with('#'))
                .cloned();
            let replacement = new_lines.into_iter().chain(kept).collect();
            replaced.insert(found.first, (found.last, replacement));
        } else if let Some(last) = section_end.get(slot.0) {
            added_after.entry(*last).or_default().extend(new_lines);
        } else if let Some((_, keys)) = new_sections.iter_mut().find(|(name, _)| *name == slot.0) {
            keys.extend(new_lines);
        } else {
            new_sections.push((slot.0, new_lines));
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut index = 0;
    while index < lines.len() {
        let last = match replaced.remove(&index) {
            Some((last, replacement)) => {
                out.extend(replacement);
                last
            }
            None => {
                out.push(lines[index].clone());
                index
            }
        };
        if let Some(added) = added_after.remove(&last) {
            out.extend(added);
        }
        index = last + 1;
    }
    for (name, keys) in new_sections {
        if out
            .last()
            .is_some_and(|line| !python_strip(line).is_empty())
        {
            out.push(String::new());
        }
        out.push(format!("[{name}]"));
        out.extend(keys);
    }
    let mut text = out.join("\n");
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
        // Lines end at a lone `\r` too, and `\x1c` is white space, as in Python.
        assert!(has_interesting_line("[custom]\r# x\rfoo = 2"));
        assert!(!has_interesting_line("[custom]\n\x1c# foo = 2\n"));
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

    #[test]
    fn the_template_keeps_comment_blocks_and_comment_only_sections_as_mfext_does() {
        let config = "# top comment\r\n[general]\r\n_version = 1\r\n\r\n# before app\r\n\r\n\
                      [app_x]\r\n  numprocesses = 2\r\n    continued\r\n_cmd_and_args = x\r\n\r\n\
                      [custom]\r\n# only a comment\r\n\r\n\r\n# trailing block\r\n";
        let text = template(
            config,
            Path::new("/p/x/config.ini"),
            "x",
            Path::new("/etc/metwork.config.d/generic/plugins/x.ini"),
        );
        let body = text.split_once("#       (if exists)\n\n\n").unwrap().1;
        assert_eq!(
            body,
            "\n# before app\n\n[app_x]\n# numprocesses = 2\n# continued\n\n[custom]\n\
             # only a comment\n\n\n# trailing block\n"
        );
    }

    #[test]
    fn baking_replaces_in_place_and_adds_after_the_section() {
        let config =
            "[custom]\nfoo = bar\n# c\nmulti = a\n  # inside\n  b\n\n[app_x]\nnumprocesses = 1\n";
        let plugin = parse_ini(config, Path::new("/p/config.ini")).unwrap();
        let op = parse_ini(
            "[custom]\nfoo = op\nnew = 1\nmulti = c\n  d\n[app_x]\nmax_age = 3\n\
             [extra_daemon_d]\nnumprocesses = 2\n",
            Path::new("/op.ini"),
        )
        .unwrap();
        let system = parse_ini("[custom]\nfoo = sys\n", Path::new("/sys.ini")).unwrap();
        let (text, messages) = bake(config, &plugin, &[op, system]);
        assert_eq!(
            text,
            "[custom]\nfoo = sys\n# c\nmulti = c\n    d\n  # inside\nnew = 1\n\n[app_x]\n\
             numprocesses = 1\nmax_age = 3\n\n[extra_daemon_d]\nnumprocesses = 2\n"
        );
        assert_eq!(
            messages,
            [
                "CHANGED [custom]/foo: bar => op",
                "NEW [custom]/new = 1",
                "CHANGED [custom]/multi: a\nb => c\nd",
                "NEW [app_x]/max_age = 3",
                "NEW [extra_daemon_d]/numprocesses = 2",
                "CHANGED [custom]/foo: op => sys",
            ]
        );
    }
}
