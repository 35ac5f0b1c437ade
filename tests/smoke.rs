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
