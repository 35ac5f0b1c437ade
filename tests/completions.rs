//! mfenv's own completion scripts: committed copies are up to date, and they complete
//! layer labels in real bash, zsh and fish.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn generated(shell: &str) -> String {
    let output = Command::new(mfenv_binary())
        .args(["completions", shell])
        .output()
        .expect("run mfenv");
    assert_success(&output);
    stdout(&output)
}

fn committed(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
}

#[test]
fn committed_completion_scripts_are_up_to_date() {
    for (shell, file) in [
        ("bash", "mfenv.bash"),
        ("zsh", "_mfenv"),
        ("fish", "mfenv.fish"),
    ] {
        assert!(
            generated(shell) == committed(file),
            "completions/{file} is stale: run `mfenv completions {shell} > completions/{file}`"
        );
    }
}

/// A fixture with two installed layers, `alpha@test` loaded through the returned env.
fn fixture_with_one_loaded() -> (Fixture, Vec<(String, String)>) {
    let fixture = Fixture::new();
    fixture.layer(LayerSpec::new("alpha", "alpha@test"));
    fixture.layer(LayerSpec::new("beta", "beta@test"));
    fixture.layer(LayerSpec::new("other", "other@test"));
    let output = fixture.run(&["load", "alpha@test"]);
    assert_success(&output);
    // Turn `\builtin export NAME='value'` lines into pairs (values here have no quotes).
    let pairs = stdout(&output)
        .lines()
        .filter_map(|line| line.strip_prefix("\\builtin export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
        .collect();
    (fixture, pairs)
}

fn shell_command(fixture: &Fixture, program: &str, env: &[(String, String)]) -> Command {
    let binary_dir = mfenv_binary()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut command = Command::new(require_program(program));
    command
        .env_clear()
        .envs(fixture.base_env())
        .envs(env.iter().cloned());
    command.env("PATH", format!("{binary_dir}:/usr/local/bin:/usr/bin:/bin"));
    command
}

fn lines(output: &std::process::Output) -> Vec<String> {
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<String> = stdout(output).lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[test]
fn bash_completes_installed_labels_for_load_and_loaded_ones_for_unload() {
    let (fixture, env) = fixture_with_one_loaded();
    let script = r#"
source "$1"
complete_words() {
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=()
    _mfenv_with_layers mfenv "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "${COMPREPLY[@]}"
}
complete_words mfenv load a
complete_words mfenv load --shell fish b
complete_words mfenv unload ''
complete_words mfenv exec -l o
"#;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/mfenv.bash");
    let output = shell_command(&fixture, "bash", &env)
        .args(["--noprofile", "--norc", "-c", script, "bash"])
        .arg(&file)
        .output()
        .unwrap();
    let got = lines(&output);
    // Labels and their short names (which load and unload accept).
    assert_eq!(
        got,
        [
            "alpha",
            "alpha",
            "alpha@test",
            "alpha@test",
            "beta",
            "beta@test",
            "other",
            "other@test"
        ]
    );
}

#[test]
fn fish_completes_installed_labels_for_load_and_loaded_ones_for_unload() {
    let (fixture, env) = fixture_with_one_loaded();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/mfenv.fish");
    let script = format!(
        "source '{}'; complete -C 'mfenv load a'; complete -C 'mfenv unload '; complete -C 'mfenv home b'",
        file.display()
    );
    let output = shell_command(&fixture, "fish", &env)
        .args(["--no-config", "-c", &script])
        .output()
        .unwrap();
    let got: Vec<String> = lines(&output)
        .into_iter()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    // Short names for load and unload; `home` takes exact labels only.
    assert_eq!(
        got,
        ["alpha", "alpha", "alpha@test", "alpha@test", "beta@test"]
    );
}

#[test]
fn zsh_completion_functions_offer_installed_and_loaded_labels() {
    let (fixture, env) = fixture_with_one_loaded();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/_mfenv");
    // compadd only works inside the completion system: a stand-in records what the
    // functions offer, while the functions themselves run for real in zsh.
    let script = format!(
        r#"autoload -U compinit && compinit -u -d "$HOME/.zcompdump"
source '{}'
compadd() {{ [[ $1 == -a ]] && print -rl -- "${{(@P)2}}" }}
print -- installed; _mfenv_complete_installed
print -- loaded; _mfenv_complete_loaded
(( $+_comps[mfenv] )) && print -- registered"#,
        file.display()
    );
    let output = shell_command(&fixture, "zsh", &env)
        .args(["-f", "-c", &script])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "installed\nalpha@test\nbeta@test\nother@test\nalpha\nbeta\nother\nloaded\nalpha@test\nalpha\nregistered\n"
    );
}
