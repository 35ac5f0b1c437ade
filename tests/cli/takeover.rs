//! Shells where the original tools loaded layers: a loaded marker and no `__MFENV_STATE`
//! record. mfenv must see those layers as loaded and unload them with layerapi2's rule:
//! entries below the home removed from the five path variables, extra_env keys unset.

use std::path::PathBuf;

use crate::common::*;
use crate::support::*;

struct OldShell {
    fixture: Fixture,
    home: String,
    sibling: String,
}

/// `old@x` (with extra_env OLD_FLAG, OLD_NAME) loaded by layerapi2: the environment the
/// original `layer_load_bash_cmds` left, with one foreign entry and the home itself kept.
fn old_shell() -> (OldShell, EnvMap) {
    let fixture = Fixture::new();
    let home: PathBuf = fixture.layer(
        LayerSpec::new("old", "old@x")
            .dirs(&["bin", "lib", "lib/python3.13/site-packages", "node_modules"])
            .extra_env("OLD_FLAG=1\nOLD_NAME={OLD_FLAG}-name\n"),
    );
    fixture.layer(LayerSpec::new("oldx", "oldx@x"));
    fixture.layer(LayerSpec::new("top", "top@x").deps("old@x\n"));
    let home = text(&home).to_owned();
    let sibling = format!("{home}x");
    let mut env = fixture.base_env();
    env.insert(
        "PATH".into(),
        format!("{home}/bin:{home}/local/bin:/usr/bin:{home}:{sibling}/bin:/bin"),
    );
    env.insert("LD_LIBRARY_PATH".into(), format!("{home}/lib"));
    env.insert(
        "PYTHONPATH".into(),
        format!("{home}/lib/python3.13/site-packages:/keep/py:{home}/lib"),
    );
    env.insert("NODE_PATH".into(), format!("{home}/node_modules"));
    env.insert(
        "PKG_CONFIG_PATH".into(),
        format!("/keep/pc:{home}/lib/pkgconfig"),
    );
    env.insert("OLD_FLAG".into(), "1".into());
    env.insert("OLD_NAME".into(), "1-name".into());
    env.insert(marker_name(&home), "1".into());
    (
        OldShell {
            fixture,
            home,
            sibling,
        },
        env,
    )
}

#[test]
fn a_layer_with_a_marker_and_no_state_counts_as_loaded() {
    let (old, env) = old_shell();
    let mut session = Session::new(&old.fixture);
    session.env = env;
    assert!(session.is_loaded("old@x"));
    assert!(session.is_loaded(&old.home));
    assert_eq!(session.loaded(), ["old@x"]);
    let listing = stdout(&session.run(&["layers"]));
    assert!(
        listing.contains(&format!("- (*) old@x [{}]\n", old.home)),
        "{listing}"
    );
    let again = session.run(&["load", "old@x"]);
    assert_success(&again);
    assert_eq!(stdout(&again), "", "not loaded a second time");
}

#[test]
fn unloading_a_layer_the_old_tools_loaded_removes_what_lies_under_its_home() {
    let (old, env) = old_shell();
    let mut session = Session::new(&old.fixture);
    session.env = env;
    session.unload(&["old@x"]);
    let home = &old.home;
    assert_eq!(
        session.var("PATH"),
        Some(&*format!("/usr/bin:{home}:{}/bin:/bin", old.sibling)),
        "the home itself and a sibling sharing its prefix stay"
    );
    assert_eq!(session.var("PYTHONPATH"), Some("/keep/py"));
    assert_eq!(session.var("PKG_CONFIG_PATH"), Some("/keep/pc"));
    for emptied in ["LD_LIBRARY_PATH", "NODE_PATH"] {
        assert!(
            matches!(session.var(emptied), None | Some("")),
            "{emptied} = {:?}",
            session.var(emptied)
        );
    }
    assert_eq!(session.var("OLD_FLAG"), None);
    assert_eq!(session.var("OLD_NAME"), None);
    assert_eq!(session.var(&marker_name(home)), None);
    assert_eq!(session.var("__MFENV_STATE"), None);
    assert!(!session.is_loaded("old@x"));
}

#[test]
fn a_layer_loaded_by_mfenv_on_top_of_an_old_one_unloads_with_it() {
    let (old, env) = old_shell();
    let mut session = Session::new(&old.fixture);
    session.env = env;
    let output = session.load(&["top@x"]);
    assert!(
        !stdout(&output).contains(&marker_name(&old.home)),
        "the old layer is not reloaded"
    );
    assert_eq!(session.loaded(), ["old@x", "top@x"]);
    session.unload(&["old@x"]);
    assert!(session.loaded().is_empty());
    assert_eq!(session.var("OLD_FLAG"), None);
    assert!(
        !session
            .var("PATH")
            .unwrap()
            .contains(&format!("{}/", old.home))
    );
    assert!(
        !session
            .var("PATH")
            .unwrap()
            .contains(&under(&old.fixture.entries[0], "top/bin"))
    );
}

#[test]
fn a_conflict_with_an_old_layer_unloads_it_with_the_old_rule() {
    let (old, env) = old_shell();
    old.fixture
        .layer(LayerSpec::new("new", "new@x").conflicts("old@x\n"));
    let mut session = Session::new(&old.fixture);
    session.env = env;
    session.load(&["new@x"]);
    assert_eq!(session.loaded(), ["new@x"]);
    assert_eq!(session.var("OLD_FLAG"), None);
    assert_eq!(session.var("PYTHONPATH"), Some("/keep/py"));
}

/// `k@x` at `T/k`, outside the layers path, loaded by its home by layerapi2 (its
/// marker, its bin on PATH, `L={L}+k` applied), and `top@x` in the path needing it by home.
fn old_shell_outside_the_path() -> (Fixture, String, EnvMap) {
    let fixture = Fixture::new();
    let home = fixture.path().join("outside/k");
    write_layer(
        &home,
        &LayerSpec::new("", "k@x")
            .dirs(&["bin"])
            .extra_env("L={L}+k\n")
            .profile("export PROFILE_RUNS=\"${PROFILE_RUNS}x\"\n"),
    );
    let home = text(&home).to_owned();
    fixture.layer(LayerSpec::new("top", "top@x").deps(&format!("{home}\n")));
    let mut env = fixture.base_env();
    let path = env["PATH"].clone();
    env.insert("PATH".into(), format!("{home}/bin:{path}"));
    env.insert("L".into(), "base+k".into());
    env.insert("PROFILE_RUNS".into(), "x".into());
    env.insert(marker_name(&home), "1".into());
    (fixture, home, env)
}

#[test]
fn a_layer_the_old_tools_loaded_by_its_home_outside_the_path_is_loaded() {
    let (fixture, home, env) = old_shell_outside_the_path();
    let mut session = Session::new(&fixture);
    session.env = env.clone();
    assert!(session.is_loaded(&home));
    let again = session.run(&["load", &home]);
    assert_success(&again);
    assert_eq!(stdout(&again), "", "not loaded a second time");

    // Reached as a dependency: not loaded again either.
    session.load(&["top@x"]);
    assert!(session.is_loaded("top@x"));
    assert_eq!(session.var("L"), Some("base+k"));
    assert_eq!(
        session.var("PROFILE_RUNS"),
        Some("x"),
        "profile not sourced again"
    );
    assert_eq!(
        session
            .entries("PATH")
            .iter()
            .filter(|e| **e == format!("{home}/bin"))
            .count(),
        1
    );

    // Unloaded with the old rule, and the layer needing it goes too.
    session.unload(&[&home]);
    assert!(!session.is_loaded(&home) && !session.is_loaded("top@x"));
    assert_eq!(session.var(&marker_name(&home)), None);
    assert_eq!(session.var("L"), None);
    assert!(!session.entries("PATH").contains(&format!("{home}/bin")));

    // Unloaded directly from the old tools' shell.
    let mut session = Session::new(&fixture);
    session.env = env;
    session.unload(&[&home]);
    assert_eq!(session.var(&marker_name(&home)), None);
    assert_eq!(session.var("L"), None);
    assert!(!session.entries("PATH").contains(&format!("{home}/bin")));
}

#[test]
fn exec_from_an_empty_environment_loads_a_layer_the_old_tools_loaded_outside_the_path() {
    let (fixture, home, env) = old_shell_outside_the_path();
    let mut session = Session::new(&fixture);
    session.env = env;
    let program = env_program_path();
    let output = session.run(&[
        "exec",
        "-E",
        "-k",
        "HOME",
        "-l",
        &home,
        "--",
        text(&program),
        "-0",
    ]);
    assert_success(&output);
    let inside = env_from_nul_dump(&output.stdout);
    assert_eq!(inside.get("L").map(String::as_str), Some("+k"));
    assert_eq!(
        inside.get("PATH").map(String::as_str),
        Some(format!("{home}/bin").as_str())
    );
    // Without emptying, it is loaded already: nothing changes.
    let output = session.run(&["exec", "-l", &home, "--", text(&program), "-0"]);
    assert_success(&output);
    let inside = env_from_nul_dump(&output.stdout);
    assert_eq!(inside.get("L").map(String::as_str), Some("base+k"));
}
