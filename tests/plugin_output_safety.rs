//! Values from plugin files are untrusted: shown to a human or in `--raw` lines, their
//! control characters are escaped (no fake row, no escape sequence reaches the
//! terminal), while `--json` keeps them exact. Release and repackage write in the
//! current directory, which may be shared: nothing planted there redirects the write.

mod common;
mod plugin_support;

use std::fs;

use common::*;
use plugin_support::*;

/// An archive of plugin `evil` whose metadata values hold control characters.
fn hostile_archive(plugins: &PluginFixture) -> std::path::PathBuf {
    let metadata = metadata_json("1.0.0", 1)
        .replace(
            "plugin for tests",
            "line one\\nevil~~~9~~~9~~~/fake\\u001b[31m red",
        )
        .replace("ACME", "\\u202eEMCA\\t\\r");
    let files = b"[\"metwork_plugin/a\\nmetwork_plugin/fake\\u001b]0;title\\u0007\"]";
    let file = plugins.work.join("hostile.plugin");
    craft_archive(
        &file,
        &[
            Crafted::Dir("metwork_plugin/"),
            Crafted::File("metwork_plugin/.layerapi2_label", b"plugin_evil@generic\n"),
            Crafted::File("metwork_plugin/.plugin_format_version", b"1.0.0\n"),
            Crafted::File("metwork_plugin/.metadata.json", metadata.as_bytes()),
            Crafted::File("metwork_plugin/.files.json", files),
        ],
    );
    file
}

fn assert_no_control_characters(text: &str) {
    for (index, line) in text.lines().enumerate() {
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "line {index} holds a control character: {line:?}"
        );
    }
}

#[test]
fn info_escapes_control_characters_and_json_keeps_them() {
    let plugins = PluginFixture::new();
    let file = hostile_archive(&plugins);
    let out = plugins.ok(&["plugin", "info", utf8_path(&file)]);
    assert_no_control_characters(&out);
    assert!(
        out.contains("line one\\nevil~~~9~~~9~~~/fake\\x1b[31m red"),
        "{out}"
    );
    assert!(out.contains("\\u{202e}EMCA\\t\\r"), "{out}");
    assert!(
        out.contains("- metwork_plugin/a\\nmetwork_plugin/fake\\x1b]0;title\\x07\n"),
        "{out}"
    );
    // One table line per field: the summary did not add any.
    assert_eq!(
        out.lines().filter(|line| line.starts_with('║')).count(),
        11,
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&plugins.ok(&["plugin", "info", "--json", utf8_path(&file)])).unwrap();
    assert_eq!(
        json["summary"],
        "line one\nevil~~~9~~~9~~~/fake\u{1b}[31m red"
    );
    assert_eq!(json["vendor"], "\u{202e}EMCA\t\r");
}

#[test]
fn list_raw_lines_stay_one_per_plugin() {
    let plugins = PluginFixture::new();
    // A base dir whose path holds a newline and an escape.
    let base = plugins.root().join("odd\nbase\u{1b}[2J");
    let base_text = utf8_path(&base).to_owned();
    let file = plugins.released("good", "1.0.0");
    let extra = [("MFMODULE_PLUGINS_BASE_DIR", base_text.as_str())];
    let output = plugins.run_with(&["plugin", "install", utf8_path(&file)], &extra);
    assert_success(&output);
    let output = plugins.run_with(&["plugin", "list", "--raw"], &extra);
    assert_success(&output);
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_no_control_characters(&out);
    assert!(out.ends_with("odd\\nbase\\x1b[2J/good\n"), "{out}");
    let output = plugins.run_with(&["plugin", "list"], &extra);
    assert_no_control_characters(&stdout(&output));
    let output = plugins.run_with(&["plugin", "list", "--json"], &extra);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json[0]["home"], format!("{base_text}/good"));
}

#[test]
fn release_never_writes_through_a_link_planted_in_the_current_directory() {
    use std::os::unix::fs::symlink;
    let plugins = PluginFixture::new();
    let home = plugins.source("foo", "1.0.0");
    let victim = plugins.root().join("victim");
    fs::write(&victim, "precious").unwrap();
    // Links at every name a temporary file named after the next process ids would
    // have, and at the final name.
    let mut probe = std::process::Command::new("true").spawn().unwrap();
    let next = probe.id();
    probe.wait().unwrap();
    let file_name = "foo-1.0.0-1.metwork.generic.plugin";
    for pid in next..next + 3000 {
        symlink(
            &victim,
            plugins.work.join(format!(".{file_name}.tmp-{pid}")),
        )
        .unwrap();
    }
    symlink(&victim, plugins.work.join(file_name)).unwrap();
    let released = plugins.release(&home);
    assert_eq!(released, plugins.work.join(file_name));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        fs::symlink_metadata(&released)
            .unwrap()
            .file_type()
            .is_file()
    );
    plugins.ok(&["plugin", "info", utf8_path(&released)]);
    // No temporary file is left.
    let leftovers: Vec<String> = children(&plugins.work)
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
