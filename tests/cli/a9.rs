//! The scenarios of layerapi2's own test suite (reference A9), run through the CLI.
//!
//! Fixture: `LAYERAPI2_LAYERS_PATH = <root>/not_found : layerpath1 : <root>/fooooo :
//! layerpath2`, where the two other entries do not exist.

use std::path::PathBuf;

use crate::common::*;
use crate::support::*;

struct A9 {
    fixture: Fixture,
    layerpath1: PathBuf,
    layerpath2: PathBuf,
}

fn a9_fixture() -> A9 {
    let mut fixture = Fixture::new();
    let root = fixture.path().to_path_buf();
    fixture.entries = vec![root.join("not_found")];
    let layerpath1 = fixture.add_entry("layerpath1");
    fixture.entries.push(root.join("fooooo"));
    let layerpath2 = fixture.add_entry("layerpath2");
    fixture.layer_in(1, LayerSpec::new("layer1", "layer1_label"));
    fixture.layer_in(
        1,
        LayerSpec::new("layer2", "layer2_label").deps("layer1_label\n"),
    );
    fixture.layer_in(
        1,
        LayerSpec::new("layer3", "layer3_label").deps("layer1_label\n"),
    );
    fixture.layer_in(
        1,
        LayerSpec::new("layer4", "layer4_label").deps("layer2_label\n-layer3_label\n-foobar\n"),
    );
    fixture.layer_in(
        3,
        LayerSpec::new("layer5", "layer5_label").conflicts("layer1_label\n"),
    );
    fixture.layer_in(
        3,
        LayerSpec::new("layererror6", "layererror6_label").deps("foobar\n"),
    );
    fixture.layer_in(
        3,
        LayerSpec::new("layererror7", "layererror7_label").deps("layererror7_label\n"),
    );
    A9 {
        fixture,
        layerpath1,
        layerpath2,
    }
}

#[test]
fn scenario_1_the_layers_path_keeps_only_existing_directories() {
    let a9 = a9_fixture();
    let output = a9.fixture.run(&["layers", "--raw"]);
    assert_success(&output);
    let (p1, p2) = (&a9.layerpath1, &a9.layerpath2);
    let expected = [
        format!("layer1_label {}", under(p1, "layer1")),
        format!("layer2_label {}", under(p1, "layer2")),
        format!("layer3_label {}", under(p1, "layer3")),
        format!("layer4_label {}", under(p1, "layer4")),
        format!("layer5_label {}", under(p2, "layer5")),
        format!("layererror6_label {}", under(p2, "layererror6")),
        format!("layererror7_label {}", under(p2, "layererror7")),
    ];
    assert_eq!(lines(&output), expected);
    // Listed on stdout as layerapi2 does; what is wrong is said on stderr.
    let root = a9.fixture.path();
    assert_eq!(
        stderr(&output),
        format!(
            "mfenv: warning: `{}` in `LAYERAPI2_LAYERS_PATH` does not exist\n\
             mfenv: warning: `{}` in `LAYERAPI2_LAYERS_PATH` does not exist\n",
            text(&root.join("not_found")),
            text(&root.join("fooooo"))
        ),
        "missing layers-path entries are skipped and named"
    );
}

#[test]
fn scenario_2_a_layer_loads_once_and_unloads() {
    let a9 = a9_fixture();
    let mut session = Session::new(&a9.fixture);
    assert_eq!(
        stdout(&session.run(&["is-installed", "layer1_label"])),
        "1\n"
    );
    assert_eq!(stdout(&session.run(&["is-installed", "foobar"])), "0\n");
    assert!(!session.is_loaded("layer1_label"));

    let output = session.load(&["layer1_label"]);
    assert!(!stdout(&output).is_empty(), "the load prints commands");
    assert!(session.is_loaded("layer1_label"));

    let again = session.load(&["layer1_label"]);
    assert_eq!(stdout(&again), "", "a loaded layer is not loaded again");
    assert!(session.is_loaded("layer1_label"));

    session.unload(&["layer1_label"]);
    assert!(!session.is_loaded("layer1_label"));
    assert_eq!(session.env, a9.fixture.base_env());
}

#[test]
fn scenario_3_unloading_a_dependency_unloads_its_dependents() {
    let a9 = a9_fixture();
    let mut session = Session::new(&a9.fixture);
    session.load(&["layer2_label"]);
    assert_eq!(session.loaded(), ["layer1_label", "layer2_label"]);
    session.unload(&["layer1_label"]);
    assert!(!session.is_loaded("layer1_label"));
    assert!(!session.is_loaded("layer2_label"));
    assert_eq!(session.env, a9.fixture.base_env());
}

#[test]
fn scenario_4_a_conflict_unloads_the_layer_and_everything_that_needs_it() {
    let a9 = a9_fixture();
    let mut session = Session::new(&a9.fixture);
    session.load(&["layer4_label"]);
    assert_eq!(
        session.loaded(),
        [
            "layer1_label",
            "layer2_label",
            "layer3_label",
            "layer4_label"
        ]
    );
    assert!(!session.is_loaded("layer5_label"));

    session.load(&["layer5_label"]);
    assert_eq!(session.loaded(), ["layer5_label"]);
    let p1 = &a9.layerpath1;
    for dir in ["layer1", "layer2", "layer3", "layer4"] {
        let bin = under(&p1.join(dir), "bin");
        assert!(
            !session.entries("PATH").contains(&bin),
            "{bin} left on PATH"
        );
    }

    session.unload(&["layer5_label"]);
    assert!(session.loaded().is_empty());
    assert_eq!(
        session.env,
        a9.fixture.base_env(),
        "the environment is back to where it started"
    );
}

#[test]
fn scenario_5_layers_with_a_missing_or_self_dependency_are_installed_but_fail_to_load() {
    let a9 = a9_fixture();
    let session = Session::new(&a9.fixture);
    for label in ["layererror6_label", "layererror7_label"] {
        assert_eq!(stdout(&session.run(&["is-installed", label])), "1\n");
        let stderr = assert_error(&session.run(&["load", label]));
        assert!(!session.is_loaded(label));
        match label {
            "layererror6_label" => {
                assert!(stderr.contains("`layererror6_label -> foobar`"), "{stderr}")
            }
            _ => assert!(
                stderr.contains("`layererror7_label -> layererror7_label`"),
                "{stderr}"
            ),
        }
    }
}

#[test]
fn scenario_6_a_label_and_its_home_name_the_same_layer() {
    let a9 = a9_fixture();
    let mut session = Session::new(&a9.fixture);
    let output = session.run(&["home", "layer1_label"]);
    assert_success(&output);
    let home = stdout(&output).trim_end().to_owned();
    assert_eq!(home, under(&a9.layerpath1, "layer1"));
    let raw = stdout(&session.run(&["layers", "--raw"]));
    assert!(raw.lines().any(|l| l == format!("layer1_label {home}")));
    assert_eq!(stdout(&session.run(&["is-installed", &home])), "1\n");

    session.load(&[&home]);
    assert!(session.is_loaded("layer1_label"));
    assert!(session.is_loaded(&home));
    assert_eq!(session.var(&marker_name(&home)), Some("1"));

    assert_failure(&session.run(&["home", "foobar"]), 1);
}

#[test]
fn scenario_7_extra_env_follows_the_layerapi2_fixture_and_unload_removes_it() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("e", "extra@test").extra_env(
        "VAR1=value1\nVAR2 = value2\n  VAR3=value3  \nVAR4={VAR3}\n# comment\nnot a line\n\
         VAR5={UNDEFINED}\nVAR6={VAR1}:{UNDEFINED}:{VAR3}\nVAR7=\nVAR8=a\n",
    ));
    let mut session = Session::new(&fixture);
    session.load(&["extra@test"]);
    let expected = [
        ("VAR1", "value1"),
        ("VAR2", "value2"),
        ("VAR3", "value3"),
        ("VAR4", "value3"),
        ("VAR5", ""),
        ("VAR6", "value1::value3"),
        ("VAR7", ""),
        ("VAR8", "a"),
    ];
    for (name, value) in expected {
        assert_eq!(session.var(name), Some(value), "{name}");
    }
    session.unload(&["extra@test"]);
    for (name, _) in expected {
        assert_eq!(session.var(name), None, "{name} is unset by the unload");
    }
}

#[test]
fn scenario_8_debug_messages_appear_only_in_debug_mode() {
    let a9 = a9_fixture();
    let session = Session::new(&a9.fixture);
    let quiet = session.run(&["load", "layer2_label"]);
    assert_success(&quiet);
    assert_eq!(stderr(&quiet), "");
    let debug = session.run(&["load", "--debug", "layer2_label"]);
    assert_success(&debug);
    let messages = stderr(&debug);
    assert!(!messages.is_empty());
    assert!(
        messages.lines().all(|l| l.starts_with("mfenv: debug: ")),
        "{messages}"
    );
    assert_eq!(
        stdout(&debug),
        stdout(&quiet),
        "debug does not change the code"
    );
}
