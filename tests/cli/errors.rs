//! Errors: what failed, why, and a hint, in the `mfenv: error:` / `  caused by:` /
//! `hint:` layout; exit 1 for errors the user can act on, 2 for usage; stdout empty.

use std::collections::BTreeMap;

use crate::common::*;
use crate::support::*;

#[test]
fn a_missing_dependency_names_the_whole_chain() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").deps("b@x\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps("missing@x\n"));
    let stderr = assert_error(&fixture.run(&["load", "a@x"]));
    assert_eq!(
        stderr,
        "mfenv: error: cannot load `a@x`\n  caused by: missing dependency `a@x -> b@x -> missing@x`: `missing@x` is not installed\nhint: run `mfenv layers` to see the installed layers\n"
    );
}

#[test]
fn a_missing_dependency_with_a_close_label_suggests_it() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").deps("python3@mfex\n"));
    fixture.layer(LayerSpec::new("p", "python3@mfext"));
    let stderr = assert_error(&fixture.run(&["load", "a@x"]));
    assert!(
        stderr
            .lines()
            .any(|l| l == "hint: did you mean `python3@mfext`?"),
        "{stderr}"
    );
}

#[test]
fn a_missing_dependency_fails_even_when_other_layers_load_first() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("ok", "ok@x"));
    fixture.layer(LayerSpec::new("a", "a@x").deps("ok@x\nmissing@x\n"));
    assert_error(&fixture.run(&["load", "a@x"]));
}

#[test]
fn a_dependency_cycle_is_reported_with_its_chain() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("top", "top@x").deps("a@x\n"));
    fixture.layer(LayerSpec::new("a", "a@x").deps("b@x\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps("a@x\n"));
    let stderr = assert_error(&fixture.run(&["load", "top@x"]));
    assert!(
        stderr.starts_with("mfenv: error: cannot load `top@x`\n"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l == "  caused by: dependency cycle: `a@x -> b@x -> a@x`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn a_cycle_through_an_optional_dependency_loads() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").deps("-b@x\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps("a@x\n"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert_eq!(session.loaded(), ["a@x", "b@x"]);
}

#[test]
fn a_long_dependency_chain_has_no_depth_cap() {
    // layerapi2 gave up past 100 levels; mfenv detects cycles as cycles instead.
    let fixture = Fixture::new();
    let depth = 150;
    for i in 0..depth {
        let mut spec = LayerSpec::new(&format!("l{i:03}"), &format!("l{i:03}@x")).dirs(&[]);
        if i + 1 < depth {
            spec = spec.deps(&format!("l{:03}@x\n", i + 1));
        }
        fixture.layer(spec);
    }
    let mut session = Session::new(&fixture);
    session.load(&["l000@x"]);
    assert_eq!(session.loaded().len(), depth);
}

#[test]
fn an_unknown_label_suggests_close_labels() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("p3", "python3@mfext"));
    fixture.layer(LayerSpec::new("core", "core@mfext"));
    let stderr = assert_error(&fixture.run(&["load", "pyton3@mfext"]));
    assert_eq!(
        stderr,
        "mfenv: error: cannot load `pyton3@mfext`: no such layer\nhint: did you mean `python3@mfext`?\n"
    );
    let stderr = assert_error(&fixture.run(&["load", "python3@mfdata"]));
    assert!(
        stderr.contains("did you mean `python3@mfext`?"),
        "same name, other module: {stderr}"
    );
}

#[test]
fn an_unknown_label_without_close_labels_points_to_the_layer_list() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("p3", "python3@mfext"));
    let stderr = assert_error(&fixture.run(&["load", "zzzzzzzzzz"]));
    assert!(
        stderr.ends_with("hint: run `mfenv layers` to see the installed layers\n"),
        "{stderr}"
    );
}

#[test]
fn loading_a_home_that_is_not_a_layer_says_why() {
    let fixture = Fixture::new();
    let not_a_layer = fixture.path().join("plain");
    std::fs::create_dir_all(&not_a_layer).unwrap();
    let stderr = assert_error(&fixture.run(&["load", text(&not_a_layer)]));
    assert!(stderr.contains("caused by: "), "{stderr}");
    assert!(stderr.contains(text(&not_a_layer)), "{stderr}");
}

#[test]
fn unloading_an_unknown_layer_fails() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let stderr = assert_error(&fixture.run(&["unload", "nope@x"]));
    assert!(
        stderr.starts_with("mfenv: error: cannot unload `nope@x`: no such layer\n"),
        "{stderr}"
    );
    let stderr = assert_error(&fixture.run(&["unload", "/no/such/home"]));
    assert!(stderr.contains("`/no/such/home`"), "{stderr}");
}

#[test]
fn unloading_a_layer_that_is_not_loaded_succeeds_and_changes_nothing() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let output = fixture.run(&["unload", "a@x"]);
    assert_success(&output);
    assert_eq!(stdout(&output), "");
}

#[test]
fn errors_show_debug_lines_first_when_debugging() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").deps("b@x\n"));
    fixture.layer(LayerSpec::new("b", "b@x").deps("missing@x\n"));
    let stderr = assert_error(&fixture.run(&["load", "-d", "a@x"]));
    assert!(stderr.starts_with("mfenv: debug: "), "{stderr}");
}

#[test]
fn usage_errors_exit_with_2_and_an_empty_stdout() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let cases: [&[&str]; 8] = [
        &[],
        &["load"],
        &["unload"],
        &["frobnicate"],
        &["load", "--no-such-option", "a@x"],
        &["load", "--shell", "tcsh", "a@x"],
        &["hook", "tcsh"],
        &["layers", "extra-argument"],
    ];
    for args in cases {
        let stderr = assert_failure(&fixture.run(args), 2);
        assert!(
            stderr.contains("Usage: ") || stderr.starts_with("error: "),
            "mfenv {args:?} explains the usage on stderr:\n{stderr}"
        );
    }
}

#[test]
fn help_and_version_go_to_stdout_with_exit_0() {
    let fixture = Fixture::new();
    for args in [
        &["--help"][..],
        &["load", "--help"],
        &["-h"],
        &["--version"],
    ] {
        let output = fixture.run(args);
        assert_no_panic(&output);
        assert_success(&output);
        assert!(!output.stdout.is_empty(), "mfenv {args:?}");
        assert_eq!(stderr(&output), "");
    }
    assert!(stdout(&fixture.run(&["--version"])).starts_with("mfenv "));
}

#[test]
fn errors_written_to_a_pipe_are_not_coloured() {
    let fixture = Fixture::new();
    let output = fixture.run(&["load", "nope"]);
    assert_error(&output);
}

#[test]
fn a_broken_dependency_error_names_the_layer_being_loaded() {
    // Like a missing dependency, the error should say which load failed, not only
    // which directory is unusable (DESIGN §4.3: what failed, why).
    let fixture = Fixture::new();
    let broken = fixture.path().join("elsewhere/broken");
    write_layer(&broken, &LayerSpec::new("", "broken@x"));
    write(&broken.join(".layerapi2_label"), "\n");
    fixture.layer(LayerSpec::new("mid", "mid@x").deps(&format!("{}\n", text(&broken))));
    fixture.layer(LayerSpec::new("top", "top@x").deps("mid@x\n"));
    let stderr = assert_error(&fixture.run(&["load", "top@x"]));
    assert!(
        stderr.contains(&under(&broken, ".layerapi2_label")),
        "{stderr}"
    );
    assert!(
        stderr.contains("`top@x`"),
        "the error names the requested layer:\n{stderr}"
    );
}

#[test]
fn a_module_name_that_is_not_a_variable_name_is_refused_before_any_use() {
    let fixture = Fixture::new();
    for (variable, value) in [
        ("MFMODULE", "X;./RUN_ME;Y"),
        ("MFMODULE_LOWERCASE", "../../etc"),
    ] {
        let extra = BTreeMap::from([(variable.to_owned(), value.to_owned())]);
        for args in [&["plugin", "env", "foo"][..], &["plugin", "list"]] {
            let output = fixture.run_with(args, &extra);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            assert!(output.stdout.is_empty(), "{args:?}");
            let stderr = stderr(&output);
            assert!(
                stderr.contains(&format!("`{variable}` is not a valid module name")),
                "{args:?}: {stderr}"
            );
        }
    }
    assert!(!fixture.path().join("RUN_ME").exists());
}
