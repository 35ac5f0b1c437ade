//! `mfenv why`: which loaded layer put each path entry and each variable there.
//!
//! The layers are loaded in a real bash (`eval "$(mfenv load …)"`), the user then changes
//! the environment in that same bash, and `mfenv why` runs inside it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{Value, json};

struct Tree {
    fixture: Fixture,
    base: PathBuf,
    tool: PathBuf,
    moved: PathBuf,
}

/// `base@t` (bin, lib; BASE_VAR, SHARED), `tool@t` (bin; needs base@t; TOOL_VAR),
/// `moved@t` (bin, already on PATH before it loads).
fn tree() -> Tree {
    let fixture = Fixture::new();
    let base = fixture.layer(
        LayerSpec::new("base", "base@t")
            .dirs(&["bin", "lib"])
            .extra_env("BASE_VAR=base\nSHARED=from_base\n"),
    );
    let tool = fixture.layer(
        LayerSpec::new("tool", "tool@t")
            .deps("base@t\n")
            .extra_env("TOOL_VAR=tool\n"),
    );
    let moved = fixture.layer(LayerSpec::new("moved", "moved@t"));
    Tree {
        fixture,
        base,
        tool,
        moved,
    }
}

/// Runs `script` in `bash --norc -euo pipefail` from the fixture's base environment
/// plus `extra`; `$MFENV` is the binary under test. Returns stdout.
fn in_bash(tree: &Tree, extra: &[(&str, &str)], script: &str) -> String {
    let mut env = tree.fixture.base_env();
    for (name, value) in extra {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    let output = Command::new(require_program("bash"))
        .env_clear()
        .envs(&env)
        .current_dir(tree.fixture.path())
        .args(["--noprofile", "--norc", "-euo", "pipefail", "-c"])
        .arg(format!("MFENV=\"$1\"\n{script}"))
        .arg("bash")
        .arg(mfenv_binary())
        .output()
        .expect("run bash");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "the bash session failed ({:?})\nscript:\n{script}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

/// Makes the text of `why` independent of the temporary root and of column widths:
/// `  ENTRY<spaces>OWNER` becomes `  ENTRY => OWNER`.
fn normalise(text: &str, root: &Path) -> Vec<String> {
    text.replace(utf8_path(root), "[ROOT]")
        .lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix("  ") else {
                return line.to_owned();
            };
            if rest.starts_with("set by ") || rest == "not from a layer" {
                return line.to_owned();
            }
            match rest.split_once("  ") {
                Some((entry, owner)) => format!("  {entry} => {}", owner.trim_start()),
                None => line.to_owned(),
            }
        })
        .collect()
}

fn expected(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| (*l).to_owned()).collect()
}

/// The session of most tests: SHARED set before the load, `load tool@t`, then the user
/// puts `/user/added` in front of PATH and changes TOOL_VAR.
const SESSION: &str = r#"
eval "$("$MFENV" load tool@t)"
export PATH="/user/added:$PATH"
export TOOL_VAR="changed by user"
"#;

#[test]
fn why_without_arguments_explains_the_path_lists_and_every_layer_variable() {
    let tree = tree();
    let out = in_bash(
        &tree,
        &[("SHARED", "user value")],
        &format!("{SESSION}\"$MFENV\" why\n"),
    );
    assert_eq!(
        normalise(&out, tree.fixture.path()),
        expected(&[
            "PATH",
            "  /user/added => not from a layer",
            "  [ROOT]/layers/tool/bin => tool@t",
            "  [ROOT]/layers/base/bin => base@t",
            "  /usr/local/bin => not from a layer",
            "  /usr/bin => not from a layer",
            "  /bin => not from a layer",
            "LD_LIBRARY_PATH",
            "  [ROOT]/layers/base/lib => base@t",
            "PKG_CONFIG_PATH (unset)",
            "PYTHONPATH",
            "  [ROOT]/layers/base/lib => base@t",
            "NODE_PATH (unset)",
            "BASE_VAR = \"base\"",
            "  set by base@t, was unset before",
            "SHARED = \"from_base\"",
            "  set by base@t, replacing \"user value\"",
            "TOOL_VAR = \"changed by user\"",
            "  set by tool@t, was unset before; changed since",
        ])
    );
}

#[test]
fn why_aligns_the_owners_in_one_column() {
    let tree = tree();
    let out = in_bash(&tree, &[], &format!("{SESSION}\"$MFENV\" why PATH\n"));
    let columns: Vec<usize> = out
        .lines()
        .skip(1)
        .map(|line| {
            let entry_end = 2 + line[2..].find("  ").expect("two spaces after the entry");
            entry_end + line[entry_end..].len() - line[entry_end..].trim_start().len()
        })
        .collect();
    assert!(columns.len() == 6, "{out}");
    assert!(columns.iter().all(|c| *c == columns[0]), "{out}");
}

#[test]
fn why_of_named_variables_explains_only_those_in_order() {
    let tree = tree();
    let out = in_bash(
        &tree,
        &[("SHARED", "user value"), ("USER_ONLY", "mine")],
        &format!("{SESSION}\"$MFENV\" why SHARED USER_ONLY NOT_SET LD_LIBRARY_PATH\n"),
    );
    assert_eq!(
        normalise(&out, tree.fixture.path()),
        expected(&[
            "SHARED = \"from_base\"",
            "  set by base@t, replacing \"user value\"",
            "USER_ONLY = \"mine\"",
            "  not from a layer",
            "NOT_SET = (unset)",
            "  not from a layer",
            "LD_LIBRARY_PATH",
            "  [ROOT]/layers/base/lib => base@t",
        ])
    );
}

#[test]
fn why_json_gives_the_same_facts_for_programs() {
    let tree = tree();
    let out = in_bash(
        &tree,
        &[("SHARED", "user value")],
        &format!("{SESSION}\"$MFENV\" why --json PATH PKG_CONFIG_PATH SHARED TOOL_VAR NOT_SET\n"),
    );
    let value: Value = serde_json::from_str(&out).expect("valid JSON");
    let bin = |home: &Path| format!("{}/bin", utf8_path(home));
    let not_layer = |entry: &str| json!({"entry": entry, "layer": null, "moved": false});
    assert_eq!(
        value,
        json!([
            {
                "kind": "path_list",
                "variable": "PATH",
                "set": true,
                "entries": [
                    not_layer("/user/added"),
                    {"entry": bin(&tree.tool), "layer": "tool@t", "moved": false},
                    {"entry": bin(&tree.base), "layer": "base@t", "moved": false},
                    not_layer("/usr/local/bin"),
                    not_layer("/usr/bin"),
                    not_layer("/bin"),
                ]
            },
            {"kind": "path_list", "variable": "PKG_CONFIG_PATH", "set": false, "entries": []},
            {
                "kind": "value",
                "variable": "SHARED",
                "value": "from_base",
                "set_by": "base@t",
                "replaced": "user value",
                "changed_since": false
            },
            {
                "kind": "value",
                "variable": "TOOL_VAR",
                "value": "changed by user",
                "set_by": "tool@t",
                "replaced": null,
                "changed_since": true
            },
            {
                "kind": "value",
                "variable": "NOT_SET",
                "value": null,
                "set_by": null,
                "changed_since": false
            }
        ])
    );
}

#[test]
fn why_json_without_arguments_lists_the_path_lists_then_the_layer_variables() {
    let tree = tree();
    let out = in_bash(&tree, &[], &format!("{SESSION}\"$MFENV\" why --json\n"));
    let value: Value = serde_json::from_str(&out).expect("valid JSON");
    let names: Vec<&str> = value
        .as_array()
        .expect("an array")
        .iter()
        .map(|report| report["variable"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "PATH",
            "LD_LIBRARY_PATH",
            "PKG_CONFIG_PATH",
            "PYTHONPATH",
            "NODE_PATH",
            "BASE_VAR",
            "SHARED",
            "TOOL_VAR"
        ]
    );
}

#[test]
fn an_entry_a_layer_moved_to_the_front_is_shown_as_moved() {
    let tree = tree();
    let bin = format!("{}/bin", utf8_path(&tree.moved));
    let path = format!("/usr/bin:{bin}:/bin");
    let out = in_bash(
        &tree,
        &[("PATH", &path)],
        "eval \"$(\"$MFENV\" load moved@t)\"\n\"$MFENV\" why PATH\necho ===\n\"$MFENV\" why --json PATH\n",
    );
    let (text, json_text) = out.split_once("===\n").unwrap();
    assert_eq!(
        normalise(text, tree.fixture.path()),
        expected(&[
            "PATH",
            "  [ROOT]/layers/moved/bin => moved@t (was already there, moved to the front)",
            "  /usr/bin => not from a layer",
            "  /bin => not from a layer",
        ])
    );
    let value: Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(
        value[0]["entries"][0],
        json!({"entry": bin, "layer": "moved@t", "moved": true})
    );
}

#[test]
fn an_entry_the_user_added_below_a_layer_home_is_not_from_a_layer() {
    let tree = tree();
    let out = in_bash(
        &tree,
        &[],
        "eval \"$(\"$MFENV\" load tool@t)\"\nexport PATH=\"$PATH:$(dirname \"${PATH%%:*}\")/share\"\n\"$MFENV\" why PATH\n",
    );
    assert_eq!(
        normalise(&out, tree.fixture.path()),
        expected(&[
            "PATH",
            "  [ROOT]/layers/tool/bin => tool@t",
            "  [ROOT]/layers/base/bin => base@t",
            "  /usr/local/bin => not from a layer",
            "  /usr/bin => not from a layer",
            "  /bin => not from a layer",
            "  [ROOT]/layers/tool/share => not from a layer",
        ])
    );
}

#[test]
fn after_an_unload_nothing_is_attributed_to_the_layer() {
    let tree = tree();
    let out = in_bash(
        &tree,
        &[],
        &format!("{SESSION}eval \"$(\"$MFENV\" unload tool@t)\"\n\"$MFENV\" why PATH BASE_VAR\n"),
    );
    assert_eq!(
        normalise(&out, tree.fixture.path()),
        expected(&[
            "PATH",
            "  /user/added => not from a layer",
            "  [ROOT]/layers/base/bin => base@t",
            "  /usr/local/bin => not from a layer",
            "  /usr/bin => not from a layer",
            "  /bin => not from a layer",
            "BASE_VAR = \"base\"",
            "  set by base@t, was unset before",
        ])
    );
}

#[test]
fn with_no_layer_loaded_nothing_is_from_a_layer() {
    let tree = tree();
    let output = tree.fixture.run(&["why"]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        "PATH\n  /usr/local/bin  not from a layer\n  /usr/bin        not from a layer\n  /bin            not from a layer\nLD_LIBRARY_PATH (unset)\nPKG_CONFIG_PATH (unset)\nPYTHONPATH (unset)\nNODE_PATH (unset)\n"
    );
}

#[test]
fn a_layer_loaded_by_the_old_tools_owns_what_lies_under_its_home() {
    let tree = tree();
    let base = utf8_path(&tree.base);
    let path = format!("{base}/bin:/usr/bin");
    let mut extra = std::collections::BTreeMap::new();
    extra.insert("PATH".to_owned(), path);
    extra.insert(marker_name(base), "1".to_owned());
    extra.insert("BASE_VAR".to_owned(), "base".to_owned());
    let output = tree
        .fixture
        .run_with(&["why", "--json", "PATH", "BASE_VAR"], &extra);
    assert_success(&output);
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        value,
        json!([
            {
                "kind": "path_list",
                "variable": "PATH",
                "set": true,
                "entries": [
                    {"entry": format!("{base}/bin"), "layer": "base@t", "moved": false},
                    {"entry": "/usr/bin", "layer": null, "moved": false},
                ]
            },
            {
                "kind": "value",
                "variable": "BASE_VAR",
                "value": "base",
                "set_by": "base@t",
                "changed_since": false
            }
        ])
    );
}
