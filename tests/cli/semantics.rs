//! What layer files mean and what the load options do, seen through the resulting
//! environment (reference A1–A5, DESIGN §3–4).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::common::*;
use crate::support::*;

// ---------------------------------------------------------------------------------------
// {NAME} substitution and list files

#[test]
fn names_in_braces_are_substituted_in_labels_dependencies_conflicts_and_extra_env() {
    let mut fixture = Fixture::new();
    fixture.env.insert("MODULE".into(), "mfx".into());
    let base = fixture.layer(LayerSpec::new("base", "base@{MODULE}"));
    fixture.layer(
        LayerSpec::new("tool", "tool@{MODULE}")
            .deps("base@{MODULE}\n")
            .extra_env(
                "TOOL_MODULE={MODULE}\nTOOL_HOME={TOOL_MODULE}-{MODULE}\nGONE={NOT_SET}\n\
                 KEPT={not-a-name}\nSHORT=ab\n",
            ),
    );
    fixture.layer(LayerSpec::new("other", "other@{MODULE}").conflicts("base@{MODULE}\n"));
    let mut session = Session::new(&fixture);

    let raw = stdout(&session.run(&["layers", "--raw"]));
    assert!(
        raw.contains(&format!("base@mfx {}\n", text(&base))),
        "{raw}"
    );
    assert!(raw.contains("tool@mfx "), "{raw}");

    session.load(&["tool@mfx"]);
    assert_eq!(session.loaded(), ["base@mfx", "tool@mfx"]);
    assert_eq!(session.var("TOOL_MODULE"), Some("mfx"));
    assert_eq!(
        session.var("TOOL_HOME"),
        Some("mfx-mfx"),
        "later lines see earlier ones"
    );
    assert_eq!(session.var("GONE"), Some(""), "an unset name becomes empty");
    assert_eq!(session.var("KEPT"), Some("{not-a-name}"));
    assert_eq!(session.var("SHORT"), Some("ab"));

    session.load(&["other@mfx"]);
    assert_eq!(
        session.loaded(),
        ["other@mfx"],
        "the conflict was substituted"
    );
}

#[test]
fn list_files_drop_blank_lines_and_comments_even_after_substitution() {
    let mut fixture = Fixture::new();
    fixture.env.insert("HASH".into(), "#".into());
    for name in ["foo", "bar", "foo2"] {
        fixture.layer(LayerSpec::new(name, &format!("{name}@x")));
    }
    fixture.layer(LayerSpec::new("hidden", "hidden@x"));
    fixture.layer(
        LayerSpec::new("top", "top@x")
            .deps("\n\n  foo@x  \n# a comment\n\t\n{HASH}hidden@x\n bar@x\nfoo2@x\n\n"),
    );
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    assert_eq!(session.loaded(), ["bar@x", "foo@x", "foo2@x", "top@x"]);
    assert!(!session.is_loaded("hidden@x"));
}

#[test]
fn a_dash_in_a_conflicts_file_is_part_of_the_label() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("base", "base@x"));
    fixture.layer(LayerSpec::new("other", "other@x").conflicts("-base@x\n"));
    let mut session = Session::new(&fixture);
    session.load(&["base@x"]);
    session.load(&["other@x"]);
    assert_eq!(session.loaded(), ["base@x", "other@x"]);
}

#[test]
fn a_conflict_can_name_a_home() {
    let fixture = Fixture::new();
    let base = fixture.layer(LayerSpec::new("base", "base@x"));
    fixture.layer(
        LayerSpec::new("other", "other@x").conflicts(&format!("# the base\n{}\n", text(&base))),
    );
    let mut session = Session::new(&fixture);
    session.load(&["base@x"]);
    session.load(&["other@x"]);
    assert_eq!(session.loaded(), ["other@x"]);
}

// ---------------------------------------------------------------------------------------
// Optional dependencies

fn optional_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("main", "main@x").deps("-opt@x\n-absent@x\nreq@x\n"));
    fixture.layer(LayerSpec::new("opt", "opt@x"));
    fixture.layer(LayerSpec::new("req", "req@x"));
    fixture
}

#[test]
fn optional_dependencies_load_after_the_layer_so_their_paths_come_first() {
    let fixture = optional_fixture();
    let mut session = Session::new(&fixture);
    let output = session.load(&["main@x"]);
    assert_eq!(session.loaded(), ["main@x", "opt@x", "req@x"]);
    let layers = fixture.entries[0].clone();
    let path = session.entries("PATH");
    assert_eq!(
        path[..3],
        [
            under(&layers.join("opt"), "bin"),
            under(&layers.join("main"), "bin"),
            under(&layers.join("req"), "bin"),
        ]
    );
    let markers: Vec<String> = lines(&output)
        .into_iter()
        .filter(|l| l.contains("LAYERAPI2_LAYER_"))
        .collect();
    let expected: Vec<String> = ["req", "main", "opt"]
        .iter()
        .map(|d| format!("\\builtin export {}='1'", marker_name(&under(&layers, d))))
        .collect();
    assert_eq!(markers, expected, "markers in load order");
}

#[test]
fn a_missing_optional_dependency_is_ignored() {
    let fixture = optional_fixture();
    let output = fixture.run(&["load", "main@x"]);
    assert_success(&output);
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_failing_optional_dependency_is_ignored_and_leaves_no_trace() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("main", "main@x").deps("-opt@x\n"));
    fixture.layer(LayerSpec::new("opt", "opt@x").deps("dep@x\nmissing@x\n"));
    fixture.layer(LayerSpec::new("dep", "dep@x"));
    let mut session = Session::new(&fixture);
    session.load(&["main@x"]);
    assert_eq!(session.loaded(), ["main@x"]);
}

#[test]
fn dont_load_optional_skips_optional_dependencies() {
    let fixture = optional_fixture();
    let mut session = Session::new(&fixture);
    session.apply(&["load", "--dont-load-optional", "main@x"]);
    assert_eq!(session.loaded(), ["main@x", "req@x"]);
}

#[test]
fn debug_does_not_disable_optional_dependencies() {
    // layerapi2's `-d` also meant --dont-load-optional; mfenv's `-d` is debug only.
    let fixture = optional_fixture();
    let plain = fixture.run(&["load", "main@x"]);
    for flag in ["-d", "--debug"] {
        let mut session = Session::new(&fixture);
        let output = session.apply(&["load", flag, "main@x"]);
        assert_eq!(session.loaded(), ["main@x", "opt@x", "req@x"], "{flag}");
        assert_eq!(stdout(&output), stdout(&plain), "{flag}");
    }
}

#[test]
fn optional_dependencies_of_an_already_loaded_layer_are_not_reexamined() {
    let fixture = optional_fixture();
    let mut session = Session::new(&fixture);
    session.apply(&["load", "--dont-load-optional", "main@x"]);
    let again = session.load(&["main@x"]);
    assert_eq!(stdout(&again), "");
    assert!(!session.is_loaded("opt@x"));
}

// ---------------------------------------------------------------------------------------
// Absolute homes

#[test]
fn an_absolute_home_works_as_a_dependency_and_on_the_command_line() {
    let fixture = Fixture::new();
    let outside = fixture.path().join("elsewhere/ext");
    write_layer(&outside, &LayerSpec::new("", "ext@x"));
    let optional = fixture.path().join("elsewhere/opt");
    write_layer(&optional, &LayerSpec::new("", "extopt@x"));
    fixture.layer(LayerSpec::new("top", "top@x").deps(&format!(
        "{}\n-{}\n",
        text(&outside),
        text(&optional)
    )));
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    assert!(session.is_loaded(text(&outside)));
    assert!(session.is_loaded(text(&optional)));
    assert!(
        session.is_loaded("ext@x"),
        "a loaded layer answers to its label"
    );
    assert!(session.entries("PATH").contains(&under(&outside, "bin")));

    session.unload(&[text(&outside)]);
    assert!(!session.is_loaded("top@x"), "the dependent went with it");
    assert!(!session.is_loaded(text(&outside)));

    let mut direct = Session::new(&fixture);
    direct.load(&[text(&outside)]);
    assert_eq!(direct.var(&marker_name(text(&outside))), Some("1"));
    assert_eq!(direct.entries("PATH")[0], under(&outside, "bin"));
}

// ---------------------------------------------------------------------------------------
// Conflicts

#[test]
fn a_conflict_unloads_the_loaded_layer_and_its_dependents_and_unloading_restores_all() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("base", "base@x").extra_env("WHO=base\n"));
    fixture.layer(LayerSpec::new("top", "top@x").deps("base@x\n"));
    fixture.layer(LayerSpec::new("indep", "indep@x"));
    let alt = fixture.layer(
        LayerSpec::new("alt", "alt@x")
            .conflicts("base@x\n")
            .extra_env("WHO=alt\n"),
    );
    let mut session = Session::new(&fixture);
    session.load(&["indep@x", "top@x"]);
    let before_alt = session.env.clone();
    let output = session.load(&["alt@x"]);
    assert_eq!(session.loaded(), ["alt@x", "indep@x"]);
    assert_eq!(session.var("WHO"), Some("alt"));
    let layers = &fixture.entries[0];
    assert_eq!(
        session.entries("PATH")[..2],
        [under(&alt, "bin"), under(&layers.join("indep"), "bin")]
    );
    assert!(
        !stdout(&output).contains("base/bin"),
        "no entry of the unloaded layers survives"
    );
    session.unload(&["alt@x"]);
    assert_eq!(session.loaded(), ["indep@x"]);
    assert_eq!(session.var("WHO"), None);
    assert_ne!(session.env, before_alt, "top and base stay unloaded");
}

// ---------------------------------------------------------------------------------------
// The 18 prepends (A4.1)

/// The table of reference A4.1: sub-path and variable of each prepend, in order.
const PREPENDS: [(&str, &str); 18] = [
    ("node_modules", "NODE_PATH"),
    ("node_modules/.bin", "PATH"),
    ("lib/node_modules", "NODE_PATH"),
    ("lib/node_modules/.bin", "PATH"),
    ("local/lib/node_modules", "NODE_PATH"),
    ("local/lib/node_modules/.bin", "PATH"),
    ("lib", "PYTHONPATH"),
    ("local/lib", "PYTHONPATH"),
    ("lib/python{P2}/site-packages", "PYTHONPATH"),
    ("lib/python{P3}/site-packages", "PYTHONPATH"),
    ("local/lib/python{P2}/site-packages", "PYTHONPATH"),
    ("local/lib/python{P3}/site-packages", "PYTHONPATH"),
    ("bin", "PATH"),
    ("local/bin", "PATH"),
    ("lib", "LD_LIBRARY_PATH"),
    ("local/lib", "LD_LIBRARY_PATH"),
    ("lib/pkgconfig", "PKG_CONFIG_PATH"),
    ("local/lib/pkgconfig", "PKG_CONFIG_PATH"),
];

/// The sub-paths of the table with the python versions filled in; python paths whose
/// version is missing are left out (mfenv never writes `python(null)`).
fn prepends(p2: Option<&str>, p3: Option<&str>) -> Vec<(String, &'static str)> {
    PREPENDS
        .iter()
        .filter_map(|(sub, variable)| {
            let sub = if sub.contains("{P2}") {
                sub.replace("{P2}", p2?)
            } else if sub.contains("{P3}") {
                sub.replace("{P3}", p3?)
            } else {
                (*sub).to_owned()
            };
            Some((sub, *variable))
        })
        .collect()
}

/// Every directory of the table, python ones for 2.7 and 3.13 (and `(null)` decoys).
fn all_prepend_dirs() -> Vec<String> {
    let mut dirs: Vec<String> = prepends(Some("2.7"), Some("3.13"))
        .into_iter()
        .map(|(sub, _)| sub)
        .collect();
    dirs.push("lib/python(null)/site-packages".into());
    dirs.push("local/lib/python(null)/site-packages".into());
    dirs.push("lib/python/site-packages".into());
    dirs
}

/// What the five variables become when the table is applied to `home` from `before`.
fn expected_after_prepends(
    home: &Path,
    table: &[(String, &'static str)],
    before: &BTreeMap<&str, &str>,
) -> BTreeMap<String, Vec<String>> {
    let mut result = BTreeMap::new();
    for variable in PATH_VARIABLES {
        let entries: Vec<String> = match before.get(variable) {
            Some(value) if !value.is_empty() => value.split(':').map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        result.insert(variable.to_owned(), entries);
    }
    for (sub, variable) in table {
        let entry = under(home, sub);
        let list = result.get_mut(*variable).expect("known variable");
        list.retain(|e| *e != entry);
        list.insert(0, entry);
    }
    result
}

fn session_entries(session: &Session<'_>) -> BTreeMap<String, Vec<String>> {
    PATH_VARIABLES
        .iter()
        .map(|v| (v.to_string(), session.entries(v)))
        .collect()
}

#[test]
fn the_18_prepends_follow_the_layerapi2_order_and_precedence() {
    let mut fixture = Fixture::new();
    fixture
        .env
        .insert("PYTHON3_SHORT_VERSION".into(), "3.13".into());
    fixture
        .env
        .insert("PYTHON2_SHORT_VERSION".into(), "2.7".into());
    fixture.env.insert("PATH".into(), "/usr/bin:/bin".into());
    fixture.env.insert("PYTHONPATH".into(), "/old/py".into());
    fixture
        .env
        .insert("LD_LIBRARY_PATH".into(), "/old/ld".into());
    let dirs = all_prepend_dirs();
    let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let home = fixture.layer(LayerSpec::new("all", "all@x").dirs(&dirs));
    let mut session = Session::new(&fixture);
    session.load(&["all@x"]);

    let before = BTreeMap::from([
        ("PATH", "/usr/bin:/bin"),
        ("PYTHONPATH", "/old/py"),
        ("LD_LIBRARY_PATH", "/old/ld"),
    ]);
    let table = prepends(Some("2.7"), Some("3.13"));
    assert_eq!(table.len(), 18);
    assert_eq!(
        session_entries(&session),
        expected_after_prepends(&home, &table, &before)
    );

    // The resulting precedence, spelled out as in the reference.
    let h = |sub: &str| under(&home, sub);
    assert_eq!(
        session.entries("PATH"),
        [
            h("local/bin"),
            h("bin"),
            h("local/lib/node_modules/.bin"),
            h("lib/node_modules/.bin"),
            h("node_modules/.bin"),
            "/usr/bin".into(),
            "/bin".into(),
        ]
    );
    assert_eq!(
        session.entries("NODE_PATH"),
        [
            h("local/lib/node_modules"),
            h("lib/node_modules"),
            h("node_modules")
        ]
    );
    assert_eq!(
        session.entries("PYTHONPATH"),
        [
            h("local/lib/python3.13/site-packages"),
            h("local/lib/python2.7/site-packages"),
            h("lib/python3.13/site-packages"),
            h("lib/python2.7/site-packages"),
            h("local/lib"),
            h("lib"),
            "/old/py".into(),
        ]
    );
    assert_eq!(
        session.entries("LD_LIBRARY_PATH"),
        [h("local/lib"), h("lib"), "/old/ld".into()]
    );
    assert_eq!(
        session.entries("PKG_CONFIG_PATH"),
        [h("local/lib/pkgconfig"), h("lib/pkgconfig")]
    );

    session.unload(&["all@x"]);
    assert_eq!(session.env, fixture.base_env());
}

#[test]
fn only_existing_directories_are_prepended() {
    let mut fixture = Fixture::new();
    fixture
        .env
        .insert("PYTHON3_SHORT_VERSION".into(), "3.13".into());
    let home = fixture.layer(
        LayerSpec::new("some", "some@x").dirs(&["local/lib/python3.13/site-packages", "bin"]),
    );
    let mut session = Session::new(&fixture);
    session.load(&["some@x"]);
    assert_eq!(
        session.entries("PYTHONPATH"),
        [
            under(&home, "local/lib/python3.13/site-packages"),
            under(&home, "local/lib")
        ]
    );
    assert_eq!(
        session.entries("LD_LIBRARY_PATH"),
        [under(&home, "local/lib")]
    );
    assert_eq!(session.var("NODE_PATH"), None, "never exported as empty");
    assert_eq!(session.var("PKG_CONFIG_PATH"), None);
}

#[test]
fn a_layer_takes_precedence_over_its_dependencies() {
    let fixture = Fixture::new();
    let base = fixture.layer(LayerSpec::new("base", "base@x").dirs(&["bin", "lib"]));
    let top = fixture.layer(
        LayerSpec::new("top", "top@x")
            .deps("base@x\n")
            .dirs(&["bin", "lib"]),
    );
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    assert_eq!(
        session.entries("PATH")[..2],
        [under(&top, "bin"), under(&base, "bin")]
    );
    assert_eq!(
        session.entries("LD_LIBRARY_PATH"),
        [under(&top, "lib"), under(&base, "lib")]
    );
}

#[test]
fn python_versions_set_but_empty_prepend_unversioned_site_packages_as_layerapi2() {
    let mut fixture = Fixture::new();
    fixture
        .env
        .insert("PYTHON3_SHORT_VERSION".into(), "".into());
    let home = fixture.layer(LayerSpec::new("py", "py@x").dirs(&[
        "lib",
        "lib/python/site-packages",
        "local",
    ]));
    let mut session = Session::new(&fixture);
    assert!(session.load(&["py@x"]).status.success());
    assert_eq!(
        session.entries("PYTHONPATH"),
        [
            under(&home, "lib/python/site-packages"),
            under(&home, "lib")
        ]
    );
    assert!(session.unload(&["py@x"]).status.success());
    assert_eq!(session.var("PYTHONPATH"), None, "exact restore");
}

#[test]
fn without_python_versions_the_site_packages_paths_are_skipped() {
    {
        let fixture = Fixture::new();
        let dirs = all_prepend_dirs();
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let home = fixture.layer(LayerSpec::new("all", "all@x").dirs(&dirs));
        for args in [&["load", "all@x"][..], &["load", "-f", "all@x"]] {
            let mut session = Session::new(&fixture);
            let output = session.apply(args);
            let code = stdout(&output);
            assert!(!code.contains("null"), "{args:?}:\n{code}");
            assert!(!code.contains("site-packages"), "{args:?}:\n{code}");
            assert_eq!(
                session.entries("PYTHONPATH"),
                [under(&home, "local/lib"), under(&home, "lib")],
                "{args:?}"
            );
        }
    }
}

#[test]
fn force_prepend_adds_every_directory_even_missing_ones() {
    let mut fixture = Fixture::new();
    fixture
        .env
        .insert("PYTHON3_SHORT_VERSION".into(), "3.13".into());
    fixture
        .env
        .insert("PYTHON2_SHORT_VERSION".into(), "2.7".into());
    let home = fixture.layer(LayerSpec::new("empty", "empty@x").dirs(&[]));
    let plain = Session::new(&fixture).run(&["load", "empty@x"]);
    assert!(
        !stdout(&plain).contains("export PATH="),
        "nothing to prepend without -f"
    );
    for flag in ["-f", "--force-prepend"] {
        let mut session = Session::new(&fixture);
        session.apply(&["load", flag, "empty@x"]);
        let before = BTreeMap::from([("PATH", "/usr/local/bin:/usr/bin:/bin")]);
        let table = prepends(Some("2.7"), Some("3.13"));
        assert_eq!(
            session_entries(&session),
            expected_after_prepends(&home, &table, &before),
            "{flag}"
        );
        session.unload(&["empty@x"]);
        assert_eq!(session.env, fixture.base_env(), "{flag}");
    }
}

#[test]
fn a_file_or_dangling_link_where_a_directory_is_expected_is_not_prepended() {
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("odd", "odd@x").dirs(&["real"]));
    write(&home.join("bin"), "not a directory");
    std::os::unix::fs::symlink(home.join("real"), home.join("lib")).unwrap();
    fs::create_dir_all(home.join("local")).unwrap();
    std::os::unix::fs::symlink(home.join("nowhere"), home.join("local/bin")).unwrap();
    let mut session = Session::new(&fixture);
    session.load(&["odd@x"]);
    assert_eq!(
        session.var("PATH"),
        Some("/usr/local/bin:/usr/bin:/bin"),
        "a file `bin` and a dangling `local/bin` are skipped"
    );
    assert_eq!(
        session.entries("LD_LIBRARY_PATH"),
        [under(&home, "lib")],
        "a link to a directory counts"
    );
}

#[test]
fn an_entry_already_on_the_path_is_moved_to_the_front_and_put_back_on_unload() {
    let mut fixture = Fixture::new();
    let home_bin = under(&fixture.entries[0].join("a"), "bin");
    let initial = format!("/usr/bin:{home_bin}:/bin");
    fixture.env.insert("PATH".into(), initial.clone());
    fixture.layer(LayerSpec::new("a", "a@x"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert_eq!(
        session.var("PATH"),
        Some(&*format!("{home_bin}:/usr/bin:/bin"))
    );
    session.unload(&["a@x"]);
    assert_eq!(session.var("PATH"), Some(initial.as_str()));
}

#[test]
fn empty_path_elements_are_kept_and_never_added() {
    let mut fixture = Fixture::new();
    fixture.env.insert("PATH".into(), "/usr/bin::/bin:".into());
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert_eq!(
        session.var("PATH"),
        Some(&*format!("{}:/usr/bin::/bin:", under(&home, "bin")))
    );
    session.unload(&["a@x"]);
    assert_eq!(session.var("PATH"), Some("/usr/bin::/bin:"));
}

// ---------------------------------------------------------------------------------------
// Exact restore (DESIGN §4.2)

#[test]
fn load_then_unload_gives_back_the_environment_exactly() {
    let mut fixture = Fixture::new();
    fixture.env.insert("FOO".into(), "original".into());
    fixture.env.insert("EMPTY".into(), String::new());
    fixture.layer(LayerSpec::new("base", "base@x").dirs(&["bin", "lib"]));
    fixture.layer(
        LayerSpec::new("top", "top@x")
            .deps("base@x\n")
            .dirs(&["bin", "node_modules", "lib/pkgconfig"])
            .extra_env("FOO=top\nEMPTY=now set\nNEW=new\n"),
    );
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    assert_eq!(session.var("FOO"), Some("top"));
    session.unload(&["base@x"]);
    assert_eq!(session.env, fixture.base_env());
}

#[test]
fn unloading_keeps_entries_and_values_the_user_changed_after_the_load() {
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@x").extra_env("FOO=layer\nBAR=layer\n"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    let path = format!("/mine:{}:/also-mine", session.var("PATH").unwrap());
    session.set("PATH", &path);
    session.set("FOO", "user");
    session.unload(&["a@x"]);
    assert_eq!(
        session.var("PATH"),
        Some("/mine:/usr/local/bin:/usr/bin:/bin:/also-mine")
    );
    assert!(!session.var("PATH").unwrap().contains(text(&home)));
    assert_eq!(session.var("FOO"), Some("user"));
    assert_eq!(session.var("BAR"), None);
}

#[test]
fn layers_setting_the_same_variable_unload_in_any_order() {
    let mut fixture = Fixture::new();
    fixture.env.insert("X".into(), "orig".into());
    fixture.layer(LayerSpec::new("a", "a@x").extra_env("X=a\n"));
    fixture.layer(LayerSpec::new("b", "b@x").extra_env("X=b\n"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    session.load(&["b@x"]);
    assert_eq!(session.var("X"), Some("b"));
    session.unload(&["a@x"]);
    assert_eq!(session.var("X"), Some("b"));
    session.unload(&["b@x"]);
    assert_eq!(session.env, fixture.base_env());
}

#[test]
fn extra_env_values_are_data_not_code() {
    let fixture = Fixture::new();
    let witness = fixture.path().join("pwned");
    let value = format!(
        "$(touch {w}) `touch {w}` \"q\" 'q' \\ ; touch {w} *",
        w = text(&witness)
    );
    fixture.layer(LayerSpec::new("a", "a@x").extra_env(&format!("HOSTILE={value}\n")));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert_eq!(session.var("HOSTILE"), Some(value.as_str()));
    assert!(!witness.exists(), "a value ran a command");
}

#[test]
fn the_state_of_thirty_loaded_layers_stays_under_8_kib() {
    let mut fixture = Fixture::new();
    fixture
        .env
        .insert("PYTHON3_SHORT_VERSION".into(), "3.13".into());
    let mut deps = String::new();
    for i in 0..30 {
        let label = format!("python3_misc_{i:02}@mfext");
        fixture.layer(
            LayerSpec::new(&format!("python3_misc_{i:02}"), &label)
                .dirs(&["bin", "lib/python3.13/site-packages", "lib"])
                .extra_env(&format!("PYTHON3_MISC_{i:02}_HOME=/opt/somewhere/{i}\n")),
        );
        deps.push_str(&label);
        deps.push('\n');
    }
    fixture.layer(LayerSpec::new("top", "top@mfext").deps(&deps).dirs(&[]));
    let mut session = Session::new(&fixture);
    session.load(&["top@mfext"]);
    let state = session.var("__MFENV_STATE").expect("state set");
    assert!(state.len() < 8 * 1024, "{} bytes", state.len());
}

// ---------------------------------------------------------------------------------------
// Interactive profiles

#[test]
fn the_profile_is_sourced_after_the_paths_and_before_extra_env() {
    let fixture = Fixture::new();
    let home_path = fixture.entries[0].join("p");
    let marker = marker_name(text(&home_path));
    let home = fixture.layer(LayerSpec::new("p", "p@x").extra_env("EXTRA=set\n").profile(
        &format!(
            "export SEEN_PATH=\"$PATH\"\nexport SEEN_EXTRA=\"${{EXTRA-unset}}\"\n\
                 export SEEN_MARKER=\"${{{marker}-unset}}\"\n"
        ),
    ));
    let mut session = Session::new(&fixture);
    session.load(&["p@x"]);
    assert_eq!(
        session.var("SEEN_PATH"),
        Some(&*format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            under(&home, "bin")
        ))
    );
    assert_eq!(session.var("SEEN_EXTRA"), Some("unset"));
    assert_eq!(session.var("SEEN_MARKER"), Some("unset"));
}

#[test]
fn the_unprofile_is_sourced_after_the_paths_are_removed_and_before_extra_env_is_unset() {
    // Reference A5: paths re-exported, then the unprofile, then `unset KEY`.
    let fixture = Fixture::new();
    fixture.layer(
        LayerSpec::new("p", "p@x")
            .extra_env("EXTRA=set\n")
            .unprofile("export UNSEEN_PATH=\"$PATH\"\nexport UNSEEN_EXTRA=\"${EXTRA-unset}\"\n"),
    );
    let mut session = Session::new(&fixture);
    session.load(&["p@x"]);
    assert_eq!(session.var("UNSEEN_PATH"), None, "not sourced on load");
    session.unload(&["p@x"]);
    assert_eq!(
        session.var("UNSEEN_PATH"),
        Some("/usr/local/bin:/usr/bin:/bin")
    );
    assert_eq!(
        session.var("UNSEEN_EXTRA"),
        Some("set"),
        "the unprofile still sees the layer's extra_env"
    );
}

#[test]
fn fish_output_never_sources_profiles() {
    let fixture = Fixture::new();
    fixture.layer(
        LayerSpec::new("p", "p@x")
            .profile("echo hi\n")
            .unprofile("echo bye\n"),
    );
    let load = fixture.run(&["load", "--shell", "fish", "p@x"]);
    assert_success(&load);
    assert!(!stdout(&load).contains("source"), "{}", stdout(&load));
    let bash = fixture.run(&["load", "--shell", "bash", "p@x"]);
    assert!(stdout(&bash).contains("source"));
}

// ---------------------------------------------------------------------------------------
// File name overrides, discovery

#[test]
fn layer_file_names_can_be_overridden() {
    let mut fixture = Fixture::new();
    let overrides = [
        ("LAYERAPI2_LAYER_LABEL_FILENAME", ".lbl"),
        ("LAYERAPI2_LAYER_DEPENDENCIES_FILENAME", ".deps"),
        ("LAYERAPI2_LAYER_CONFLICTS_FILENAME", ".confl"),
        ("LAYERAPI2_LAYER_EXTRA_ENV_FILENAME", ".env"),
        ("LAYERAPI2_LAYER_INTERACTIVE_PROFILE_FILENAME", ".prof"),
        ("LAYERAPI2_LAYER_INTERACTIVE_UNPROFILE_FILENAME", ".unprof"),
    ];
    for (name, value) in overrides {
        fixture.env.insert(name.into(), value.into());
    }
    let layers = fixture.entries[0].clone();
    let top = layers.join("top");
    write(&top.join(".lbl"), "top@o\n");
    write(&top.join(".deps"), "base@o\n");
    write(&top.join(".env"), "FROM_ENV=1\n");
    write(&top.join(".prof"), "export FROM_PROFILE=1\n");
    write(&top.join(".unprof"), "export FROM_UNPROFILE=1\n");
    // The default names are ignored once overridden.
    write(&top.join(".layerapi2_dependencies"), "nothing@o\n");
    write(&top.join(".layerapi2_extra_env"), "WRONG=1\n");
    write(&layers.join("base/.lbl"), "base@o\n");
    write(&layers.join("rival/.lbl"), "rival@o\n");
    write(&layers.join("rival/.confl"), "base@o\n");
    write(
        &layers.join("default_named/.layerapi2_label"),
        "default@o\n",
    );

    let mut session = Session::new(&fixture);
    let raw = stdout(&session.run(&["layers", "--raw"]));
    let labels: Vec<&str> = raw.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(labels, ["base@o", "rival@o", "top@o"]);

    session.load(&["top@o"]);
    assert_eq!(session.loaded(), ["base@o", "top@o"]);
    assert_eq!(session.var("FROM_ENV"), Some("1"));
    assert_eq!(session.var("FROM_PROFILE"), Some("1"));
    assert_eq!(session.var("WRONG"), None);
    session.unload(&["top@o"]);
    assert_eq!(session.var("FROM_UNPROFILE"), Some("1"));
    session.load(&["top@o"]);
    session.load(&["rival@o"]);
    assert_eq!(session.loaded(), ["rival@o"]);
}

#[test]
fn an_empty_file_name_override_means_the_layers_have_no_such_file() {
    let fixture = Fixture::new();
    let layers = fixture.entries[0].clone();
    fixture.layer(LayerSpec::new("base", "base@x"));
    fixture.layer(LayerSpec::new("rival", "rival@x").conflicts("base@x\n"));
    fixture.layer(
        LayerSpec::new("top", "top@x")
            .deps("base@x\n")
            .extra_env("FROM_ENV=1\n")
            .profile("export FROM_PROFILE=1\n")
            .unprofile("export FROM_UNPROFILE=1\n"),
    );
    let empty = |name: &str| BTreeMap::from([(name.to_owned(), String::new())]);

    // No label file: no directory is a layer.
    let output = fixture.run_with(
        &["layers", "--raw"],
        &empty("LAYERAPI2_LAYER_LABEL_FILENAME"),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("`LAYERAPI2_LAYER_LABEL_FILENAME` is empty"));
    let output = fixture.run_with(
        &["is-installed", "top@x"],
        &empty("LAYERAPI2_LAYER_LABEL_FILENAME"),
    );
    assert_eq!(stdout(&output), "0\n");

    for (variable, absent) in [
        ("LAYERAPI2_LAYER_DEPENDENCIES_FILENAME", "base"),
        ("LAYERAPI2_LAYER_EXTRA_ENV_FILENAME", "FROM_ENV"),
        (
            "LAYERAPI2_LAYER_INTERACTIVE_PROFILE_FILENAME",
            "FROM_PROFILE",
        ),
    ] {
        let mut session = Session::new(&fixture);
        session.set(variable, "");
        session.load(&["top@x"]);
        assert!(session.is_loaded("top@x"), "{variable}");
        match absent {
            "base" => assert!(!session.is_loaded("base@x"), "{variable}"),
            name => assert_eq!(session.var(name), None, "{variable}"),
        }
    }
    let mut session = Session::new(&fixture);
    session.set("LAYERAPI2_LAYER_INTERACTIVE_UNPROFILE_FILENAME", "");
    session.load(&["top@x"]);
    session.unload(&["top@x"]);
    assert_eq!(session.var("FROM_UNPROFILE"), None);
    let mut session = Session::new(&fixture);
    session.set("LAYERAPI2_LAYER_CONFLICTS_FILENAME", "");
    session.load(&["top@x"]);
    session.load(&["rival@x"]);
    assert!(session.is_loaded("top@x") && session.is_loaded("base@x"));
    assert!(layers.join("top").is_dir());
}

#[test]
fn a_layers_path_entry_that_is_a_layer_is_taken_whole_and_not_scanned() {
    let mut fixture = Fixture::new();
    let root_layer = fixture.add_entry("module");
    write_layer(&root_layer, &LayerSpec::new("", "root@module"));
    write_layer(
        &root_layer.join("child"),
        &LayerSpec::new("", "child@module"),
    );
    fixture.layer(LayerSpec::new("other", "other@x"));
    let output = fixture.run(&["layers", "--raw"]);
    assert_eq!(
        stdout(&output),
        format!(
            "other@x {}\nroot@module {}\n",
            under(&fixture.entries[0], "other"),
            text(&root_layer)
        )
    );
    assert_eq!(
        stdout(&fixture.run(&["home", "root@module"])),
        format!("{}\n", text(&root_layer))
    );
    assert_eq!(
        stdout(&fixture.run(&["is-installed", "child@module"])),
        "0\n"
    );
    assert_error(&fixture.run(&["load", "child@module"]));
}

#[test]
fn layers_are_discovered_in_sorted_byte_order() {
    let fixture = Fixture::new();
    // Created out of order; readdir order would follow the file system.
    for name in [
        "zeta", "beta", "alpha", "Beta", "_under", "10", "9", ".hidden",
    ] {
        fixture.layer(LayerSpec::new(name, &format!("{name}@x")).dirs(&[]));
    }
    let output = fixture.run(&["layers", "--raw"]);
    let labels: Vec<String> = lines(&output)
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        labels,
        [
            ".hidden@x",
            "10@x",
            "9@x",
            "Beta@x",
            "_under@x",
            "alpha@x",
            "beta@x",
            "zeta@x"
        ]
    );
}

#[test]
fn the_first_layer_carrying_a_label_wins_and_debug_says_so() {
    let mut fixture = Fixture::new();
    let first = fixture.layer(LayerSpec::new("b", "dup@x"));
    let same_entry = fixture.layer(LayerSpec::new("c", "dup@x"));
    fixture.add_entry("second");
    let second = fixture.layer_in(1, LayerSpec::new("a", "dup@x"));
    let output = fixture.run(&["layers", "--raw"]);
    assert_eq!(
        stdout(&output),
        format!(
            "dup@x {}\ndup@x {}\ndup@x {}\n",
            text(&first),
            text(&same_entry),
            text(&second)
        ),
        "every layer is listed, in path order"
    );
    assert_eq!(
        stdout(&fixture.run(&["home", "dup@x"])),
        format!("{}\n", text(&first))
    );
    let mut session = Session::new(&fixture);
    session.load(&["dup@x"]);
    assert!(session.is_loaded(text(&first)));
    assert!(!session.is_loaded(text(&second)));

    let debug = fixture.run(&["layers", "--debug"]);
    let messages = stderr(&debug);
    for ignored in [&same_entry, &second] {
        assert!(
            messages.lines().any(|l| l.starts_with("mfenv: debug: ")
                && l.contains("`dup@x`")
                && l.contains(text(ignored))
                && l.contains(text(&first))),
            "{messages}"
        );
    }
}

#[test]
fn a_loaded_layer_keeps_its_label_even_when_another_layer_carries_it() {
    let mut fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "dup@x"));
    fixture.add_entry("second");
    let second = fixture.layer_in(1, LayerSpec::new("a", "dup@x"));
    fixture.layer(LayerSpec::new("user", "user@x").deps("dup@x\n"));
    let mut session = Session::new(&fixture);
    session.load(&[text(&second)]);
    let output = session.load(&["user@x"]);
    assert!(
        !stdout(&output).contains(&under(&fixture.entries[0], "a/bin")),
        "the loaded `dup@x` satisfies the dependency"
    );
    assert!(session.is_loaded("user@x"));
}

#[test]
fn relative_layers_path_entries_are_skipped_and_debug_says_so() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let mut session = Session::new(&fixture);
    // `layers` exists relative to the working directory, but relative entries never count.
    let path = format!("layers::{}", fixture.layers_path());
    session.set("LAYERAPI2_LAYERS_PATH", &path);
    let output = session.run(&["layers", "--raw"]);
    assert_success(&output);
    assert_eq!(lines(&output).len(), 1);
    session.set("LAYERAPI2_LAYERS_PATH", "layers");
    assert_eq!(stdout(&session.run(&["layers"])), "");

    session.set("LAYERAPI2_LAYERS_PATH", &path);
    let debug = session.run(&["layers", "-d"]);
    let messages = stderr(&debug);
    assert!(messages.contains("(`layers`)"), "{messages}");
    assert!(messages.contains("(``)"), "the empty entry too: {messages}");
    let load = session.run(&["load", "-d", "a@x"]);
    assert_success(&load);
    assert!(stderr(&load).contains("(`layers`)"), "{}", stderr(&load));
}

// ---------------------------------------------------------------------------------------
// Transactions

#[test]
fn several_layers_in_one_command_are_one_plan() {
    let fixture = Fixture::new();
    let shared = fixture.layer(LayerSpec::new("shared", "shared@x"));
    fixture.layer(LayerSpec::new("a", "a@x").deps("shared@x\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps("shared@x\n"));
    let mut session = Session::new(&fixture);
    let output = session.load(&["a@x", "b@x", "a@x"]);
    assert_eq!(session.loaded(), ["a@x", "b@x", "shared@x"]);
    let marker = marker_name(text(&shared));
    assert_eq!(
        stdout(&output).matches(&marker).count(),
        1,
        "the shared dependency is loaded once"
    );
    session.unload(&["a@x", "b@x"]);
    assert_eq!(session.loaded(), ["shared@x"]);
    session.unload(&["shared@x"]);
    assert_eq!(session.env, fixture.base_env());
}

#[test]
fn if_one_layer_of_a_command_fails_nothing_is_printed() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("good", "good@x"));
    fixture.layer(LayerSpec::new("bad", "bad@x").deps("missing@x\n"));
    for args in [
        &["load", "good@x", "bad@x"][..],
        &["load", "good@x", "nope@x"],
        &["load", "good@x", "/no/such/home"],
    ] {
        assert_error(&fixture.run(args));
    }
    let mut session = Session::new(&fixture);
    session.load(&["good@x"]);
    assert_error(&session.run(&["unload", "good@x", "nope@x"]));
}

#[test]
fn asking_for_two_conflicting_layers_in_one_command_fails_and_changes_nothing() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    fixture.layer(LayerSpec::new("b", "b@x").conflicts("a@x\n"));
    let session = Session::new(&fixture);
    let output = session.run(&["load", "a@x", "b@x"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let error = stderr(&output);
    assert!(
        error.contains("cannot load `a@x` together with the other layers asked for")
            && error.contains("`a@x` is unloaded because of `b@x`"),
        "{error}"
    );
}

#[test]
fn loading_a_loaded_layer_again_prints_nothing() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("base", "base@x"));
    fixture.layer(
        LayerSpec::new("a", "a@x")
            .deps("base@x\n")
            .extra_env("A=1\n"),
    );
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    let before = session.env.clone();
    for args in [&["load", "a@x"][..], &["load", "base@x", "a@x"]] {
        let output = session.run(args);
        assert_success(&output);
        assert_eq!(stdout(&output), "", "{args:?}");
    }
    session.load(&["a@x"]);
    assert_eq!(session.env, before);
}

// ---------------------------------------------------------------------------------------
// --dry-run and --debug

fn dry_run_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("base", "base@x"));
    fixture.layer(
        LayerSpec::new("top", "top@x")
            .deps("base@x\n")
            .extra_env("FOO=bar\n")
            .profile("export PROFILE_RAN=1\n"),
    );
    fixture
}

fn assert_no_code(text: &str) {
    for code in [
        "export ",
        "unset ",
        "source ",
        "set -gx",
        "__MFENV_STATE",
        "LAYERAPI2_LAYER_",
    ] {
        assert!(!text.contains(code), "`{code}` in the dry run:\n{text}");
    }
}

#[test]
fn dry_run_lists_the_steps_and_variable_changes_without_code() {
    let fixture = dry_run_fixture();
    let layers = &fixture.entries[0];
    for shell in ["bash", "fish"] {
        let output = fixture.run(&["load", "--dry-run", "--shell", shell, "top@x"]);
        assert_success(&output);
        let plan = stdout(&output);
        assert_no_code(&plan);
        let base = text(&layers.join("base")).to_owned();
        let top = text(&layers.join("top")).to_owned();
        let expected_lines = [
            format!("load   base@x [{base}] (needed by `top@x`)"),
            format!("load   top@x [{top}] (requested)"),
            "variables:".to_owned(),
            "  PATH".to_owned(),
            format!("    + {top}/bin"),
            format!("    + {base}/bin"),
            "  FOO: (unset) -> \"bar\"".to_owned(),
        ];
        for line in expected_lines {
            assert!(plan.lines().any(|l| l == line), "no `{line}` in:\n{plan}");
        }
        assert_eq!(stderr(&output), "");
    }
}

#[test]
fn dry_run_of_an_unload_lists_the_cascade() {
    let fixture = dry_run_fixture();
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    let output = session.run(&["unload", "--dry-run", "base@x"]);
    assert_success(&output);
    let plan = stdout(&output);
    assert_no_code(&plan);
    let base = under(&fixture.entries[0], "base");
    let top = under(&fixture.entries[0], "top");
    assert!(plan.starts_with(&format!(
        "unload base@x [{base}] (requested)\nunload top@x [{top}] (needs `base@x`, which is unloaded)\n"
    )), "{plan}");
    assert!(plan.contains(&format!("    - {base}/bin\n")), "{plan}");
    assert!(plan.contains("  FOO: \"bar\" -> (unset)\n"), "{plan}");
}

#[test]
fn dry_run_with_nothing_to_do_says_so() {
    let fixture = dry_run_fixture();
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    let output = session.run(&["load", "--dry-run", "top@x"]);
    assert_success(&output);
    assert_eq!(stdout(&output), "nothing to do\n");
}

#[test]
fn dry_run_of_a_failing_load_fails_like_the_load() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("bad", "bad@x").deps("missing@x\n"));
    assert_error(&fixture.run(&["load", "--dry-run", "bad@x"]));
}

#[test]
fn debug_explains_each_decision_on_stderr_and_leaves_stdout_unchanged() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("base", "base@x"));
    fixture.layer(LayerSpec::new("top", "top@x").deps("base@x\n-absent@x\n"));
    fixture.layer(LayerSpec::new("rival", "rival@x").conflicts("base@x\n"));
    let plain = fixture.run(&["load", "top@x"]);
    let debug = fixture.run(&["load", "-d", "top@x"]);
    assert_success(&debug);
    assert_eq!(stdout(&debug), stdout(&plain));
    let messages = stderr(&debug);
    assert!(
        messages.lines().all(|l| l.starts_with("mfenv: debug: ")),
        "{messages}"
    );
    for expected in [
        "depends on layer `base@x`",
        "loading layer `top@x`",
        "`absent@x`",
    ] {
        assert!(
            messages.contains(expected),
            "no `{expected}` in:\n{messages}"
        );
    }

    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    let conflict = session.run(&["load", "--debug", "rival@x"]);
    let messages = stderr(&conflict);
    assert!(messages.contains("conflicts with"), "{messages}");
    assert!(messages.contains("unloading layer `top@x`"), "{messages}");
    let again = session.run(&["load", "--debug", "top@x"]);
    assert!(
        stderr(&again).contains("already loaded"),
        "{}",
        stderr(&again)
    );
}

// ---------------------------------------------------------------------------------------
// Shapes found in real MetWork trees

#[test]
fn unloading_a_module_root_layer_keeps_the_entries_of_layers_nested_below_it() {
    // MetWork: MFEXT_HOME is `root@mfext` and MFEXT_HOME/opt holds the other layers, so
    // every other home lies below the root's home. layerapi2's `<home>/*` rule removed
    // them all; the exact restore must not.
    let mut fixture = Fixture::new();
    let module = fixture.add_entry("mfext");
    write_layer(&module, &LayerSpec::new("", "root@mfext"));
    let opt = fixture.add_entry("mfext/opt");
    let python = fixture.layer_in(
        2,
        LayerSpec::new("python3", "python3@mfext")
            .deps("-root@mfext\n")
            .dirs(&["bin", "lib"]),
    );
    let mut session = Session::new(&fixture);
    session.load(&["python3@mfext"]);
    assert_eq!(session.loaded(), ["root@mfext", "python3@mfext"]);
    session.unload(&["root@mfext"]);
    assert_eq!(session.loaded(), ["python3@mfext"]);
    assert_eq!(
        session.var("PATH"),
        Some(&*format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            under(&python, "bin")
        ))
    );
    assert_eq!(session.entries("LD_LIBRARY_PATH"), [under(&python, "lib")]);
    assert!(opt.is_dir());
}

#[test]
fn extra_env_may_extend_a_path_variable_and_the_unload_still_restores_it() {
    let mut fixture = Fixture::new();
    fixture
        .env
        .insert("LD_LIBRARY_PATH".into(), "/usr/lib/x".into());
    fixture.layer(
        LayerSpec::new("a", "a@x")
            .dirs(&["bin", "lib"])
            .extra_env("LD_LIBRARY_PATH={LD_LIBRARY_PATH}:/opt/extra\nPATH=/front:{PATH}\n"),
    );
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    let home = fixture.entries[0].join("a");
    assert_eq!(
        session.var("LD_LIBRARY_PATH"),
        Some(&*format!("{}:/usr/lib/x:/opt/extra", under(&home, "lib")))
    );
    assert_eq!(
        session.entries("PATH")[..2],
        ["/front".to_owned(), under(&home, "bin")]
    );
    session.unload(&["a@x"]);
    assert_eq!(session.env, fixture.base_env());
}

#[test]
fn a_symlinked_layer_directory_is_found_under_the_link_name() {
    let fixture = Fixture::new();
    let real = fixture.path().join("store/real");
    write_layer(&real, &LayerSpec::new("", "linked@x"));
    let link = fixture.entries[0].join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(
        stdout(&fixture.run(&["home", "linked@x"])),
        format!("{}\n", text(&link))
    );
    let mut session = Session::new(&fixture);
    session.load(&["linked@x"]);
    assert_eq!(session.entries("PATH")[0], under(&link, "bin"));
    assert_eq!(session.var(&marker_name(text(&link))), Some("1"));
}

#[test]
fn a_broken_optional_dependency_is_ignored_like_a_missing_one() {
    // Reference A4 step 6: an optional dependency's load result is ignored.
    let fixture = Fixture::new();
    let broken = fixture.path().join("elsewhere/broken");
    write_layer(&broken, &LayerSpec::new("", "broken@x"));
    write(&broken.join(".layerapi2_label"), "\n");
    fixture.layer(LayerSpec::new("main", "main@x").deps(&format!("-{}\n", text(&broken))));
    let mut session = Session::new(&fixture);
    session.load(&["main@x"]);
    assert_eq!(session.loaded(), ["main@x"]);
}

#[test]
fn options_given_twice_are_accepted() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let mut session = Session::new(&fixture);
    session.apply(&["load", "--debug", "-d", "-f", "-f", "a@x"]);
    assert!(session.is_loaded("a@x"));
    session.apply(&[
        "unload", "-d", "--debug", "--shell", "zsh", "--shell", "bash", "a@x",
    ]);
    assert!(!session.is_loaded("a@x"));
    let output = session.run(&["layers", "-r", "-r", "-m", "yes", "-m", "no"]);
    assert_success(&output);
    assert!(stdout(&output).starts_with("a@x "));
}

#[test]
fn a_space_after_the_dash_of_an_optional_dependency_is_part_of_its_label() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("b", "b@x"));
    let home = fixture.layer(LayerSpec::new("a", "a@x").deps("c@x\n- b@x\n-\t/opt\n"));
    fixture.layer(LayerSpec::new("c", "c@x"));
    let mut session = Session::new(&fixture);
    let output = session.apply(&["load", "--debug", "a@x"]);
    assert!(session.is_loaded("a@x") && session.is_loaded("c@x"));
    assert!(!session.is_loaded("b@x"), "` b@x` is not `b@x`");
    let debug = stderr(&output);
    let file = under(&home, ".layerapi2_dependencies");
    for line in [2, 3] {
        assert!(
            debug.contains(&format!("`{file}` line {line}: white space after `-`")),
            "{debug}"
        );
    }
}

#[test]
fn spaces_a_substitution_brings_into_a_label_are_kept() {
    let mut fixture = Fixture::new();
    fixture.env.insert("LBL".into(), " a@x ".into());
    fixture.layer(LayerSpec::new("a", "{LBL}"));
    assert_eq!(stdout(&fixture.run(&["is-installed", "a@x"])), "0\n");
    assert_eq!(stdout(&fixture.run(&["is-installed", " a@x "])), "1\n");
    let mut session = Session::new(&fixture);
    session.load(&[" a@x "]);
    assert!(session.is_loaded(" a@x "));
}

// ---------------------------------------------------------------------------------------
// Deliberate differences from layerapi2, pinned

#[test]
fn one_directory_reached_under_two_home_strings_is_one_layer_and_its_profile_runs_once() {
    let mut fixture = Fixture::new();
    let entry = text(&fixture.entries[0]).to_owned();
    // The layers path written with a trailing slash: homes are `entry//name`.
    fixture
        .env
        .insert("LAYERAPI2_LAYERS_PATH".into(), format!("{entry}/"));
    fixture.layer(LayerSpec::new("a", "a@x").profile("export RUNS=\"${RUNS:-}a\"\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps(&format!("{entry}/a/\n{entry}//a\n")));
    let mut session = Session::new(&fixture);
    session.apply(&["load", "b@x", &format!("{entry}/a")]);
    assert_eq!(session.var("RUNS"), Some("a"), "sourced once");
    let bin = format!("{entry}//a/bin");
    assert_eq!(
        session
            .entries("PATH")
            .iter()
            .filter(|e| **e == bin)
            .count(),
        1
    );
    assert!(
        !session.entries("PATH").contains(&format!("{entry}/a/bin")),
        "one home string: the one of the layers path"
    );
    session.unload(&[&format!("{entry}/a/")]);
    assert!(!session.is_loaded("a@x") && !session.is_loaded("b@x"));
}

#[test]
fn one_directory_reached_through_a_symlink_or_a_dot_is_one_layer() {
    let mut fixture = Fixture::new();
    let entry = text(&fixture.entries[0]).to_owned();
    let link = fixture.path().join("link");
    std::os::unix::fs::symlink(&entry, &link).unwrap();
    let link = text(&link).to_owned();
    // The layers path reaches the entry twice, once through the symlink.
    fixture
        .env
        .insert("LAYERAPI2_LAYERS_PATH".into(), format!("{entry}:{link}"));
    let home = fixture.layer(LayerSpec::new("a", "a@x").profile("export RUNS=\"${RUNS:-}a\"\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps(&format!("{link}/a\n{entry}/./a\n")));
    let output = fixture.run(&["layers", "--raw"]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        format!("a@x {}\nb@x {entry}/b\n", text(&home)),
        "walked once, under the home string met first"
    );
    let mut session = Session::new(&fixture);
    session.apply(&[
        "load",
        "b@x",
        &format!("{link}/a"),
        &format!("{entry}/./a/"),
    ]);
    assert_eq!(session.var("RUNS"), Some("a"), "sourced once");
    let bins: Vec<String> = session
        .entries("PATH")
        .into_iter()
        .filter(|e| e.ends_with("/a/bin"))
        .collect();
    assert_eq!(bins, [format!("{}/bin", text(&home))]);
    // Loading it again through the symlink does nothing; unloading through it works.
    session.apply(&["load", &format!("{link}/a")]);
    assert_eq!(session.var("RUNS"), Some("a"));
    session.unload(&[&format!("{link}/a")]);
    assert!(!session.is_loaded("a@x") && !session.is_loaded("b@x"));
}

#[test]
fn a_layers_path_entry_listed_twice_is_walked_once() {
    let mut fixture = Fixture::new();
    let entry = text(&fixture.entries[0]).to_owned();
    fixture.env.insert(
        "LAYERAPI2_LAYERS_PATH".into(),
        format!("{entry}:{entry}/:{entry}"),
    );
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    let output = fixture.run(&["layers", "--raw"]);
    assert_success(&output);
    assert_eq!(stdout(&output), format!("a@x {}\n", text(&home)));
}

#[test]
fn a_dependency_unloaded_by_a_siblings_conflict_fails_the_load() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    fixture.layer(LayerSpec::new("b", "b@x").conflicts("a@x\n"));
    fixture.layer(LayerSpec::new("top", "top@x").deps("a@x\nb@x\n"));
    let output = fixture.run(&["load", "top@x"]);
    let stderr = assert_error(&output);
    assert!(
        stderr.contains("`top@x` needs `a@x`, which another of its dependencies conflicts with"),
        "{stderr}"
    );
}

#[test]
fn an_optional_dependency_conflicting_with_its_parent_is_skipped() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("opt", "opt@x").conflicts("top@x\n"));
    fixture.layer(LayerSpec::new("top", "top@x").deps("-opt@x\n"));
    let mut session = Session::new(&fixture);
    session.load(&["top@x"]);
    assert_eq!(session.loaded(), ["top@x"]);
}

#[test]
fn the_fix_up_unloads_a_dependent_loaded_by_its_home_outside_the_path() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("base", "base@x"));
    let outside = fixture.path().join("elsewhere/tool");
    write_layer(&outside, &LayerSpec::new("", "tool@x").deps("base@x\n"));
    let mut session = Session::new(&fixture);
    session.load(&[text(&outside)]);
    assert!(session.is_loaded(text(&outside)) && session.is_loaded("base@x"));
    session.unload(&["base@x"]);
    assert!(!session.is_loaded(text(&outside)));
    assert!(!session.entries("PATH").contains(&under(&outside, "bin")));
}

#[test]
fn non_ascii_labels_work_whatever_the_locale() {
    for locale in ["C", "POSIX", "C.UTF-8"] {
        let mut fixture = Fixture::new();
        fixture.env.insert("LANG".into(), locale.into());
        fixture.env.insert("LC_ALL".into(), locale.into());
        fixture.layer(LayerSpec::new("e", "été日本@x"));
        let mut session = Session::new(&fixture);
        session.load(&["été日本@x"]);
        assert!(session.is_loaded("été日本@x"), "{locale}");
        assert!(!stdout(&session.run(&["home", "été日本@x"])).is_empty());
    }
}
