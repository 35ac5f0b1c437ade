//! Output formats of the query commands (reference A7): `layers`, `is-installed`,
//! `is-loaded`, `home`, plus `completions` and the hidden `complete` used by the hooks.

use assert_cmd::prelude::*;
use predicates::prelude::*;

use crate::common::*;
use crate::support::*;

/// Two layers, `one@test` and `two@test`, `two` depending on nothing.
fn two_layers() -> (Fixture, String, String) {
    let fixture = Fixture::new();
    let one = fixture.layer(LayerSpec::new("one", "one@test"));
    let two = fixture.layer(LayerSpec::new("two", "two@test"));
    (fixture, text(&one).to_owned(), text(&two).to_owned())
}

#[test]
fn layers_lists_label_and_home_and_stars_the_loaded_ones() {
    let (fixture, one, two) = two_layers();
    let mut session = Session::new(&fixture);
    let output = session.run(&["layers"]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        format!("- one@test [{one}]\n- two@test [{two}]\n")
    );
    session.load(&["two@test"]);
    assert_eq!(
        stdout(&session.run(&["layers"])),
        format!("- one@test [{one}]\n- (*) two@test [{two}]\n")
    );
}

#[test]
fn layers_raw_prints_label_space_home() {
    let (fixture, one, two) = two_layers();
    let mut session = Session::new(&fixture);
    session.load(&["one@test"]);
    let output = session.run(&["layers", "--raw"]);
    assert_success(&output);
    assert_eq!(
        stdout(&output),
        format!("one@test {one}\ntwo@test {two}\n"),
        "no loaded star in raw mode"
    );
    assert_eq!(stdout(&session.run(&["layers", "-r"])), stdout(&output));
}

#[test]
fn the_loaded_filter_keeps_loaded_or_not_loaded_layers() {
    let (fixture, one, two) = two_layers();
    let mut session = Session::new(&fixture);
    session.load(&["one@test"]);
    assert_eq!(
        stdout(&session.run(&["layers", "-m", "yes"])),
        format!("- (*) one@test [{one}]\n")
    );
    assert_eq!(
        stdout(&session.run(&["layers", "--loaded-filter", "no"])),
        format!("- two@test [{two}]\n")
    );
    assert_eq!(
        stdout(&session.run(&["layers", "--raw", "--loaded-filter=yes"])),
        format!("one@test {one}\n")
    );
}

#[test]
fn a_loaded_filter_other_than_yes_or_no_is_a_usage_error() {
    let (fixture, ..) = two_layers();
    let stderr = assert_failure(&fixture.run(&["layers", "-m", "maybe"]), 2);
    assert!(stderr.contains("maybe"), "{stderr}");
}

#[test]
fn layers_json_is_an_array_of_label_home_and_loaded() {
    let (fixture, one, two) = two_layers();
    let mut session = Session::new(&fixture);
    session.load(&["two@test"]);
    let output = session.run(&["layers", "--json"]);
    assert_success(&output);
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(
        value,
        serde_json::json!([
            {"label": "one@test", "home": one, "loaded": false, "on_path": true},
            {"label": "two@test", "home": two, "loaded": true, "on_path": true},
        ])
    );
    let filtered = session.run(&["layers", "--json", "-m", "no"]);
    let value: serde_json::Value = serde_json::from_slice(&filtered.stdout).expect("valid JSON");
    assert_eq!(
        value,
        serde_json::json!([{"label": "one@test", "home": one, "loaded": false, "on_path": true}])
    );
}

#[test]
fn layers_of_a_layers_path_holding_no_layer_fail_and_say_so() {
    let fixture = Fixture::new();
    for args in [&["layers", "--json"][..], &["layers"]] {
        let stderr = assert_error(&fixture.run(args));
        assert!(
            stderr.contains("in `LAYERAPI2_LAYERS_PATH` holds no layer"),
            "{stderr}"
        );
    }
}

#[test]
fn raw_and_json_together_are_a_usage_error() {
    let (fixture, ..) = two_layers();
    assert_failure(&fixture.run(&["layers", "--raw", "--json"]), 2);
}

#[test]
fn without_a_layers_path_there_are_no_layers() {
    let (fixture, ..) = two_layers();
    let mut command = fixture.command(&["layers"]);
    command.env_remove("LAYERAPI2_LAYERS_PATH");
    let output = command.output().expect("run mfenv");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(stderr(&output).contains("`LAYERAPI2_LAYERS_PATH` is not set"));
    let mut command = fixture.command(&["is-installed", "one@test"]);
    command.env_remove("LAYERAPI2_LAYERS_PATH");
    assert_eq!(stdout(&command.output().expect("run mfenv")), "0\n");
}

#[test]
fn is_installed_prints_1_or_0_for_a_label_or_an_absolute_home() {
    let (fixture, one, _) = two_layers();
    let outside = fixture.path().join("elsewhere/ext");
    write_layer(&outside, &LayerSpec::new("", "ext@test"));
    let cases = [
        ("one@test", "1\n"),
        (one.as_str(), "1\n"),
        (text(&outside), "1\n"),
        ("nope@test", "0\n"),
        ("/no/such/home", "0\n"),
        (text(fixture.path()), "0\n"),
    ];
    for (layer, expected) in cases {
        let output = fixture.run(&["is-installed", layer]);
        assert_success(&output);
        assert_eq!(stdout(&output), expected, "is-installed {layer}");
        assert_eq!(stderr(&output), "");
    }
}

#[test]
fn is_loaded_prints_1_or_0_for_a_label_or_an_absolute_home() {
    let (fixture, one, two) = two_layers();
    let mut session = Session::new(&fixture);
    session.load(&["one@test"]);
    let cases = [
        ("one@test", "1\n"),
        (one.as_str(), "1\n"),
        ("two@test", "0\n"),
        (two.as_str(), "0\n"),
        ("nope@test", "0\n"),
        ("/no/such/home", "0\n"),
    ];
    for (layer, expected) in cases {
        let output = session.run(&["is-loaded", layer]);
        assert_success(&output);
        assert_eq!(stdout(&output), expected, "is-loaded {layer}");
    }
}

#[test]
fn a_marker_counts_when_its_value_is_1_once_stripped() {
    let (fixture, one, _) = two_layers();
    let mut session = Session::new(&fixture);
    session.set(&marker_name(&one), " 1\n");
    assert!(session.is_loaded("one@test"));
    session.set(&marker_name(&one), "0");
    assert!(!session.is_loaded("one@test"));
    session.set(&marker_name(&one), "");
    assert!(!session.is_loaded("one@test"));
}

#[test]
fn is_installed_and_is_loaded_take_exactly_one_argument() {
    let (fixture, ..) = two_layers();
    for command in ["is-installed", "is-loaded", "home"] {
        assert_failure(&fixture.run(&[command]), 2);
        assert_failure(&fixture.run(&[command, "one@test", "two@test"]), 2);
    }
}

#[test]
fn home_prints_the_home_of_a_label() {
    let (fixture, one, _) = two_layers();
    fixture
        .command(&["home", "one@test"])
        .assert()
        .success()
        .stdout(format!("{one}\n"))
        .stderr("");
}

#[test]
fn home_of_an_unknown_label_fails_on_stderr_with_empty_stdout() {
    let (fixture, ..) = two_layers();
    let stderr = assert_error(&fixture.run(&["home", "nope@elsewhere"]));
    assert!(stderr.contains("`nope@elsewhere`"), "{stderr}");
}

#[test]
fn home_of_a_misspelt_label_suggests_the_close_one() {
    let (fixture, ..) = two_layers();
    let stderr = assert_error(&fixture.run(&["home", "one@tset"]));
    assert!(
        stderr
            .lines()
            .any(|l| l == "hint: did you mean `one@test`?"),
        "{stderr}"
    );
}

#[test]
fn home_takes_a_label_not_a_home_like_get_layer_home() {
    let (fixture, one, _) = two_layers();
    assert_error(&fixture.run(&["home", &one]));
}

#[test]
fn completions_are_printed_for_each_shell() {
    let fixture = Fixture::new();
    for shell in ["bash", "zsh", "fish"] {
        fixture
            .command(&["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains("mfenv").and(predicate::str::contains("layers")));
    }
    assert_failure(&fixture.run(&["completions", "tcsh"]), 2);
}

#[test]
fn the_hidden_complete_command_lists_labels_by_prefix_once_each() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "python3@mfext"));
    fixture.layer(LayerSpec::new("b", "python2@mfext"));
    fixture.layer(LayerSpec::new("c", "core@mfext"));
    let second = fixture.path().join("second");
    write_layer(&second.join("a"), &LayerSpec::new("", "python3@mfext"));
    let mut session = Session::new(&fixture);
    let path = format!("{}:{}", fixture.layers_path(), text(&second));
    session.set("LAYERAPI2_LAYERS_PATH", &path);
    // Labels in path order, then the short names that name exactly one label.
    assert_eq!(
        stdout(&session.run(&["complete", "installed", "py"])),
        "python3@mfext\npython2@mfext\npython2\npython3\n"
    );
    assert_eq!(
        stdout(&session.run(&["complete", "labels", "py"])),
        "python3@mfext\npython2@mfext\n"
    );
    session.load(&["core@mfext"]);
    assert_eq!(
        stdout(&session.run(&["complete", "loaded"])),
        "core@mfext\ncore\n"
    );
}
