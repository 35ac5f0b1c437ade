//! A first end-to-end check that the fixture and the binary work together.
mod common;
use common::*;

#[test]
fn loading_a_layer_prints_code_that_sets_its_bin_directory() {
    let fixture = Fixture::new();
    let home = fixture.layer(LayerSpec::new("a", "a@test"));
    let output = fixture.run(&["load", "a@test"]);
    assert_success(&output);
    assert!(stdout(&output).contains(&format!("{}/bin", home.display())));
}

#[test]
fn plugin_layers_are_found_in_the_plugins_base_dir_outside_the_layers_path() {
    let mut fixture = Fixture::new();
    let base = fixture.path().join("runtime/var/plugins");
    let home = base.join("foo");
    write_layer(&home, &LayerSpec::new("foo", "plugin_foo@mfdata"));
    fixture.env.insert(
        "MFMODULE_RUNTIME_HOME".into(),
        fixture.path().join("runtime").to_str().unwrap().into(),
    );
    let output = fixture.run(&["home", "plugin_foo@mfdata"]);
    assert_success(&output);
    assert_eq!(stdout(&output).trim_end(), home.to_str().unwrap());

    // MFMODULE_PLUGINS_BASE_DIR wins over the runtime home.
    let other = fixture.path().join("elsewhere");
    write_layer(
        &other.join("bar"),
        &LayerSpec::new("bar", "plugin_bar@mfdata"),
    );
    fixture.env.insert(
        "MFMODULE_PLUGINS_BASE_DIR".into(),
        other.to_str().unwrap().into(),
    );
    assert_success(&fixture.run(&["is-installed", "plugin_bar@mfdata"]));
    assert_eq!(
        stdout(&fixture.run(&["is-installed", "plugin_bar@mfdata"])),
        "1\n"
    );
    assert_eq!(
        stdout(&fixture.run(&["is-installed", "plugin_foo@mfdata"])),
        "0\n"
    );
}
