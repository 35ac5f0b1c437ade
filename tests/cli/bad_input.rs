//! Broken layer files and environments. Each must give one clear error or be handled
//! correctly — never a panic, never partial output on stdout.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::*;

/// Makes the label file of `home` unreadable: `chmod 000` when that works (not root),
/// else a directory in place of the file (reading it fails even for root).
fn make_label_unreadable(home: &Path) {
    let label = home.join(".layerapi2_label");
    if running_as_root() {
        fs::remove_file(&label).unwrap();
        fs::create_dir(&label).unwrap();
    } else {
        set_mode(&label, 0o000);
    }
}

#[test]
fn a_label_file_that_cannot_be_read_is_reported_and_the_other_layers_work() {
    let fixture = Fixture::new();
    let broken = fixture.layer(LayerSpec::new("broken", "broken@x"));
    let as_dir = fixture.layer(LayerSpec::new("dir", "dir@x"));
    fixture.layer(LayerSpec::new("good", "good@x"));
    make_label_unreadable(&broken);
    let label_dir = as_dir.join(".layerapi2_label");
    fs::remove_file(&label_dir).unwrap();
    fs::create_dir(&label_dir).unwrap();

    let listing = fixture.run(&["layers", "--raw"]);
    assert_success(&listing);
    assert_no_panic(&listing);
    assert_eq!(
        stdout(&listing),
        format!("good@x {}\n", under(&fixture.entries[0], "good"))
    );
    let warnings = stderr(&listing);
    for home in [&broken, &as_dir] {
        assert!(
            warnings.lines().any(|l| l.starts_with("mfenv: warning: ")
                && l.contains(&under(home, ".layerapi2_label"))),
            "{warnings}"
        );
    }

    for home in [&broken, &as_dir] {
        let stderr = assert_error(&Session::new(&fixture).run(&["load", text(home)]));
        assert!(
            stderr.contains(&under(home, ".layerapi2_label")),
            "the error names the file: {stderr}"
        );
    }
    let mut session = Session::new(&fixture);
    session.load(&["good@x"]);
    assert!(session.is_loaded("good@x"));
}

#[test]
fn unusable_labels_are_reported_with_their_reason() {
    let cases: [(&str, &[u8], &str); 4] = [
        ("several_lines", b"first@x\nsecond@x\n", "several lines"),
        ("empty", b" \t\n\n", "empty"),
        ("unset_var", b"{NOT_SET_ANYWHERE}\n", "empty"),
        (
            "unset_var_spaces",
            b"  {NOT_SET_ANYWHERE}  {ALSO_NOT}\n",
            "empty",
        ),
    ];
    for (dir, content, reason) in cases {
        let fixture = Fixture::new();
        let home = fixture.layer(LayerSpec::new(dir, "placeholder"));
        write(&home.join(".layerapi2_label"), content);
        fixture.layer(LayerSpec::new("zz_good", "good@x"));

        let listing = fixture.run(&["layers"]);
        assert_success(&listing);
        assert_no_panic(&listing);
        assert_eq!(lines(&listing).len(), 1, "{dir}: only the good layer");
        let warnings = stderr(&listing);
        assert!(
            warnings.contains(text(&home)) && warnings.contains(reason),
            "{dir}: {warnings}"
        );

        let stderr = assert_error(&fixture.run(&["load", text(&home)]));
        assert!(stderr.contains(reason), "{dir}: {stderr}");

        let mut session = Session::new(&fixture);
        session.load(&["good@x"]);
        assert!(session.is_loaded("good@x"), "{dir}");
    }
}

#[test]
fn an_invalid_extra_env_key_is_an_error_naming_the_file_and_line() {
    let fixture = Fixture::new();
    let home = fixture
        .layer(LayerSpec::new("a", "a@x").extra_env("OK=1\n# comment\n\nBAD-KEY=2\nLATER=3\n"));
    let stderr = assert_error(&fixture.run(&["load", "a@x"]));
    let file = under(&home, ".layerapi2_extra_env");
    assert!(
        stderr.contains(&format!(
            "invalid variable name `BAD-KEY` in `{file}` at line 4"
        )),
        "{stderr}"
    );
    for key in ["$(touch x)", "1ABC", "A B", "é"] {
        let fixture = Fixture::new();
        fixture.layer(LayerSpec::new("a", "a@x").extra_env(&format!("{key}=v\n")));
        let stderr = assert_error(&fixture.run(&["load", "a@x"]));
        assert!(stderr.contains("line 1"), "{key}: {stderr}");
    }
}

#[test]
fn an_extra_env_line_without_equal_sign_or_with_an_empty_key_is_handled() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").extra_env("just words\nA=1\n"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert_eq!(session.var("A"), Some("1"));

    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").extra_env("=value\n"));
    let stderr = assert_error(&fixture.run(&["load", "a@x"]));
    assert!(stderr.contains("line 1"), "{stderr}");
}

#[test]
fn extra_env_may_not_set_the_state_variable() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").extra_env("__MFENV_STATE=forged\n"));
    let stderr = assert_error(&fixture.run(&["load", "a@x"]));
    assert!(stderr.contains("__MFENV_STATE"), "{stderr}");
}

#[test]
fn bytes_that_are_not_utf8_in_layer_files_are_taken_as_they_are() {
    // extra_env: the value is set as these bytes.
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    write(&home.join(".layerapi2_extra_env"), b"A=\xff\xfe\n");
    let output = fixture.run(&["load", "a@x"]);
    assert_success(&output);
    let needle = b"A='\xff\xfe'\n";
    assert!(
        output.stdout.windows(needle.len()).any(|w| w == needle),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // dependencies: a label made of these bytes, which no layer carries.
    write(&home.join(".layerapi2_dependencies"), b"\xff\xfe\n");
    let stderr = assert_error(&fixture.run(&["load", "a@x"]));
    assert!(stderr.contains("is not installed"), "{stderr}");
    // conflicts: nothing carries that label, nothing to unload.
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    write(&home.join(".layerapi2_conflicts"), b"\xff\xfe\n");
    assert_success(&fixture.run(&["load", "a@x"]));
}

#[test]
fn a_directory_in_place_of_a_layer_file_is_an_error_naming_it() {
    for file in [
        ".layerapi2_extra_env",
        ".layerapi2_dependencies",
        ".layerapi2_conflicts",
    ] {
        let fixture = Fixture::new();
        let home = fixture.layer(LayerSpec::new("a", "a@x"));
        fs::create_dir(home.join(file)).unwrap();
        let stderr = assert_error(&fixture.run(&["load", "a@x"]));
        assert!(stderr.contains(&under(&home, file)), "{file}: {stderr}");
    }
}

#[test]
fn files_over_1_mib_are_refused_quickly_with_a_clear_error() {
    let big = "# padding padding padding padding padding padding padding\n".repeat(20_000);
    assert!(big.len() > 1 << 20);
    for file in [
        ".layerapi2_extra_env",
        ".layerapi2_dependencies",
        ".layerapi2_conflicts",
    ] {
        let fixture = Fixture::new();
        let home = fixture.layer(LayerSpec::new("a", "a@x"));
        write(&home.join(file), &big);
        let started = Instant::now();
        let stderr = assert_error(&fixture.run(&["load", "a@x"]));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(stderr.contains(&under(&home, file)), "{file}: {stderr}");
    }
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    write(&home.join(".layerapi2_label"), format!("{big}a@x\n"));
    let listing = fixture.run(&["layers"]);
    assert_success(&listing);
    assert_eq!(stdout(&listing), "");
    assert!(stderr(&listing).contains(&under(&home, ".layerapi2_label")));
    assert_error(&fixture.run(&["load", text(&home)]));
}

#[test]
fn a_file_of_just_under_1_mib_is_read() {
    let fixture = Fixture::new();
    let padding = "#".repeat(1023) + "\n";
    let mut deps = padding.repeat(1023);
    deps.push_str("base@x\n");
    assert!(deps.len() <= 1 << 20);
    fixture.layer(LayerSpec::new("base", "base@x"));
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    write(&home.join(".layerapi2_dependencies"), &deps);
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert_eq!(session.loaded(), ["a@x", "base@x"]);
}

#[test]
fn a_layers_path_entry_that_is_a_file_is_skipped() {
    let mut fixture = Fixture::new();
    let file = fixture.path().join("a-file");
    write(&file, "not a directory\n");
    fixture.entries.insert(0, file.clone());
    fixture.layer_in(1, LayerSpec::new("a", "a@x"));
    let output = fixture.run(&["layers", "--raw"]);
    assert_success(&output);
    assert_eq!(lines(&output).len(), 1);
    assert_eq!(
        stderr(&output),
        format!(
            "mfenv: warning: `{}` in `LAYERAPI2_LAYERS_PATH` is not a directory\n",
            text(&file)
        )
    );
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    assert!(session.is_loaded("a@x"));
}

#[test]
fn a_layer_whose_directory_vanished_still_unloads_from_the_state() {
    let mut fixture = Fixture::new();
    fixture.env.insert("FOO".into(), "before".into());
    let home = fixture.layer(
        LayerSpec::new("a", "a@x")
            .dirs(&["bin", "lib"])
            .extra_env("FOO=layer\nBAR=layer\n"),
    );
    for by in ["a@x", text(&home)] {
        let mut session = Session::new(&fixture);
        session.load(&["a@x"]);
        let saved = fixture.path().join("saved");
        fs::rename(&home, &saved).unwrap();
        assert!(session.is_loaded("a@x"), "still loaded in this shell");
        session.unload(&[by]);
        assert_eq!(session.env, fixture.base_env(), "unload by {by}");
        fs::rename(&saved, &home).unwrap();
    }
}

#[test]
fn a_layer_whose_directory_vanished_can_be_listed_and_replaced() {
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    fixture.layer(LayerSpec::new("b", "b@x").conflicts("a@x\n"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    fs::remove_dir_all(&home).unwrap();
    let listing = session.run(&["layers"]);
    assert_success(&listing);
    session.load(&["b@x"]);
    assert!(
        !session.is_loaded("a@x"),
        "the conflict still finds the loaded layer"
    );
    assert!(!session.var("PATH").unwrap().contains(text(&home)));
}

#[test]
fn a_trailing_slash_in_the_layers_path_gives_a_double_slash_home_like_layerapi2() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x").extra_env("A=1\n"));
    let mut session = Session::new(&fixture);
    let entry = format!("{}/", text(&fixture.entries[0]));
    session.set("LAYERAPI2_LAYERS_PATH", &entry);
    let home = format!("{entry}/a");
    assert_eq!(
        stdout(&session.run(&["layers", "--raw"])),
        format!("a@x {home}\n")
    );
    assert_eq!(stdout(&session.run(&["home", "a@x"])), format!("{home}\n"));
    session.load(&["a@x"]);
    assert_eq!(session.var(&marker_name(&home)), Some("1"));
    assert_eq!(session.entries("PATH")[0], format!("{home}/bin"));
    session.unload(&["a@x"]);
    let mut expected = fixture.base_env();
    expected.insert("LAYERAPI2_LAYERS_PATH".into(), entry);
    assert_eq!(session.env, expected);
}

#[test]
fn a_corrupt_state_never_fails_and_unload_falls_back_to_the_old_rule() {
    let mut fixture = Fixture::new();
    fixture.env.insert("FOO".into(), "before".into());
    let a = fixture.layer(LayerSpec::new("a", "a@x").extra_env("FOO=a\n"));
    fixture.layer(LayerSpec::new("b", "b@x").extra_env("BAR=b\n"));
    let corrupt = [
        "garbage",
        "",
        "2:|/somewhere,x,,,",
        "1:|",
        "1:Q",
        "1:|/a,a,zz,,",
        "1:|/a%G0,a,,,",
        "1:|/a,a,m,,,FOO=1234567x-",
        "\u{1}\u{7f}|,,,:::%%%",
    ];
    for state in corrupt {
        let mut session = Session::new(&fixture);
        session.load(&["a@x"]);
        session.set("__MFENV_STATE", state);

        let debug = session.run(&["load", "-d", "b@x"]);
        assert_success(&debug);
        assert!(
            stderr(&debug).contains("__MFENV_STATE"),
            "{state:?}: debug explains the fallback:\n{}",
            stderr(&debug)
        );
        session.load(&["b@x"]);
        assert_eq!(session.loaded(), ["a@x", "b@x"], "{state:?}");

        session.unload(&["a@x"]);
        assert!(
            !session.var("PATH").unwrap().contains(text(&a)),
            "{state:?}"
        );
        assert_eq!(session.var("FOO"), None, "{state:?}: old rule unsets keys");
        assert_eq!(session.loaded(), ["b@x"], "{state:?}");

        session.unload(&["b@x"]);
        assert_eq!(session.var("BAR"), None, "{state:?}");
        assert!(session.loaded().is_empty(), "{state:?}");
        assert_eq!(session.var("__MFENV_STATE"), None, "{state:?}");
    }
}

#[test]
fn a_state_record_without_its_marker_is_ignored() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let mut session = Session::new(&fixture);
    session.load(&["a@x"]);
    let marker = marker_name(&under(&fixture.entries[0], "a"));
    session.remove(&marker);
    assert!(!session.is_loaded("a@x"));
    let output = session.run(&["load", "a@x"]);
    assert_success(&output);
    assert!(stdout(&output).contains(&marker), "loaded again");
}

#[test]
fn a_path_list_that_is_not_utf8_keeps_its_bytes_through_a_load() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@x"));
    let mut command = fixture.command(&["load", "a@x"]);
    command.env("PATH", OsStr::from_bytes(b"/usr/bin:/b\xffd"));
    let output = command.output().unwrap();
    assert_success(&output);
    let needle = format!("PATH='{}/bin:/usr/bin:/b", text(&home)).into_bytes();
    let at = output
        .stdout
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&output.stdout)));
    assert!(output.stdout[at + needle.len()..].starts_with(b"\xffd'\n"));

    let mut command = fixture.command(&["load", "a@x"]);
    command.env("UNRELATED", OsStr::from_bytes(b"\xff"));
    let output = command.output().unwrap();
    assert_no_panic(&output);
    assert_success(&output);
}

#[test]
fn a_huge_or_hostile_command_line_label_is_just_not_found() {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let long = "x".repeat(100_000);
    for label in [long.as_str(), "a@x\n", "$(touch pwned)", "-", "a@x/"] {
        let output = fixture.run(&["load", "--", label]);
        let stderr = assert_failure(&output, 1);
        assert!(stderr.starts_with("mfenv: error: "), "{stderr}");
    }
    assert!(!fixture.path().join("pwned").exists());
}

#[test]
fn a_layer_directory_whose_name_is_not_utf8_is_a_layer() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new();
    let odd = fixture.entries[0].join(OsStr::from_bytes(b"odd\xff"));
    write_layer(&odd, &LayerSpec::new("", "odd@x"));
    fixture.layer(LayerSpec::new("good", "good@x"));
    let output = fixture.run(&["layers", "--raw"]);
    assert_success(&output);
    assert_eq!(
        output
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
    let output = fixture.run(&["load", "odd@x"]);
    assert_success(&output);
    let needle = b"/odd\xff/bin:";
    assert!(output.stdout.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn a_layers_path_that_is_not_utf8_gives_a_clean_failure() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("a", "a@x"));
    let mut bytes = fixture.layers_path().into_bytes();
    bytes.extend_from_slice(b":/x\xff");
    let mut command = fixture.command(&["load", "a@x"]);
    command.env("LAYERAPI2_LAYERS_PATH", OsStr::from_bytes(&bytes));
    let output = command.output().unwrap();
    assert_no_panic(&output);
    assert!(
        output.status.success() || output.stdout.is_empty(),
        "either load or fail cleanly"
    );
}
