//! Inline snapshots of what users and shells read: the hook scripts, and the code a small
//! load and unload render to in each shell (fixture paths and marker hashes normalised).

use crate::common::*;
use crate::support::*;

fn hook(shell: &str) -> String {
    let fixture = Fixture::new();
    let output = fixture.run(&["hook", shell]);
    assert_no_panic(&output);
    assert_success(&output);
    assert_eq!(stderr(&output), "");
    let binary = mfenv_binary();
    stdout(&output).replace(text(&binary), "[MFENV]")
}

#[test]
fn the_bash_hook_defines_the_functions_and_their_completion() {
    insta::assert_snapshot!(hook("bash"), @r#"
    # mfenv shell integration for bash.
    # Add to ~/.bashrc:  eval "$(mfenv hook bash)"

    # `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
    # name in mfenv's messages, in MFENV_HOOK) and evaluates what mfenv printed only when
    # it exited 0 and marked it as shell code: its first line is `# mfenv: shell code`. Anything else
    # (help, version, a dry run) is printed as text, and the function returns mfenv's status.
    # Every function calling mfenv goes through here. (The `function name {` form keeps user
    # aliases of these names from breaking the hook.)
    function __mfenv_eval {
        \builtin local __mfenv_function="$1" __mfenv_out __mfenv_status=0
        \builtin shift
        __mfenv_out="$(MFENV_HOOK="${__mfenv_function}" '[MFENV]' "$@")" || __mfenv_status=$?
        if [[ "${__mfenv_status}" -eq 0 && "${__mfenv_out}" == '# mfenv: shell code'* ]]; then
            \builtin eval "${__mfenv_out#'# mfenv: shell code'}"
        else
            [[ -z "${__mfenv_out}" ]] || \builtin printf '%s\n' "${__mfenv_out}"
            \builtin return "${__mfenv_status}"
        fi
    }

    function layer_load {
        __mfenv_eval layer_load load --shell bash "$@"
    }

    function layer_load_without_optional {
        __mfenv_eval layer_load_without_optional load --shell bash --dont-load-optional "$@"
    }

    function layer_unload {
        __mfenv_eval layer_unload unload --shell bash "$@"
    }

    # Loads a plugin's layer and environment (`plugin_env NAME`, or `plugin_env` inside a
    # plugin directory); `plugin_env --exit` gives the previous environment back.
    function plugin_env {
        __mfenv_eval plugin_env plugin env --shell bash "$@"
    }

    # Completion of layer labels: installed ones for loads, loaded ones for unloads.
    function __mfenv_complete {
        \builtin local __mfenv_line
        COMPREPLY=()
        # Quoted as the shell would read them: labels may hold spaces, quotes or `$`.
        while IFS= \builtin read -r __mfenv_line; do
            \builtin printf -v __mfenv_line '%q' "${__mfenv_line}"
            COMPREPLY+=("${__mfenv_line}")
        done < <('[MFENV]' complete "$1" -- "${COMP_WORDS[COMP_CWORD]}" 2>/dev/null)
    }

    # Unloads every layer, then loads a saved collection (`layer_restore [NAME]`).
    function layer_restore {
        __mfenv_eval layer_restore collection restore --shell bash "$@"
    }

    function __mfenv_complete_collections {
        __mfenv_complete collections
    }

    function __mfenv_complete_installed {
        __mfenv_complete installed
    }

    function __mfenv_complete_loaded {
        __mfenv_complete loaded
    }

    function __mfenv_complete_plugins {
        __mfenv_complete plugins
    }

    \builtin complete -o default -F __mfenv_complete_installed layer_load layer_load_without_optional
    \builtin complete -o default -F __mfenv_complete_loaded layer_unload
    \builtin complete -o default -F __mfenv_complete_plugins plugin_env
    \builtin complete -F __mfenv_complete_collections layer_restore

    # Tells `mfenv doctor` which shell (pid) evaluated this hook, calling which binary.
    \builtin export __MFENV_HOOK="bash:$$:"'[MFENV]'
    "#);
}

#[test]
fn the_zsh_hook_defines_the_functions_and_their_completion() {
    insta::assert_snapshot!(hook("zsh"), @r#"
    # mfenv shell integration for zsh.
    # Add to ~/.zshrc:  eval "$(mfenv hook zsh)"

    # `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
    # name in mfenv's messages, in MFENV_HOOK) and evaluates what mfenv printed only when
    # it exited 0 and marked it as shell code: its first line is `# mfenv: shell code`. Anything else
    # (help, version, a dry run) is printed as text, and the function returns mfenv's status.
    # Every function calling mfenv goes through here. (The `function name {` form keeps user
    # aliases of these names from breaking the hook.)
    function __mfenv_eval {
        \builtin local __mfenv_function="$1" __mfenv_out __mfenv_status=0
        \builtin shift
        __mfenv_out="$(MFENV_HOOK="${__mfenv_function}" '[MFENV]' "$@")" || __mfenv_status=$?
        if [[ "${__mfenv_status}" -eq 0 && "${__mfenv_out}" == '# mfenv: shell code'* ]]; then
            \builtin eval "${__mfenv_out#'# mfenv: shell code'}"
        else
            [[ -z "${__mfenv_out}" ]] || \builtin printf '%s\n' "${__mfenv_out}"
            \builtin return "${__mfenv_status}"
        fi
    }

    function layer_load {
        __mfenv_eval layer_load load --shell zsh "$@"
    }

    function layer_load_without_optional {
        __mfenv_eval layer_load_without_optional load --shell zsh --dont-load-optional "$@"
    }

    function layer_unload {
        __mfenv_eval layer_unload unload --shell zsh "$@"
    }

    # Loads a plugin's layer and environment (`plugin_env NAME`, or `plugin_env` inside a
    # plugin directory); `plugin_env --exit` gives the previous environment back.
    function plugin_env {
        __mfenv_eval plugin_env plugin env --shell zsh "$@"
    }

    # Unloads every layer, then loads a saved collection (`layer_restore [NAME]`).
    function layer_restore {
        __mfenv_eval layer_restore collection restore --shell zsh "$@"
    }

    function __mfenv_complete_collections {
        \builtin local -a __mfenv_labels
        __mfenv_labels=("${(@f)$('[MFENV]' complete collections 2>/dev/null)}")
        __mfenv_labels=(${__mfenv_labels:#})
        compadd -a __mfenv_labels
    }

    # Completion of layer labels: installed ones for loads, loaded ones for unloads.
    function __mfenv_complete_installed {
        \builtin local -a __mfenv_labels
        __mfenv_labels=("${(@f)$('[MFENV]' complete installed 2>/dev/null)}")
        __mfenv_labels=(${__mfenv_labels:#})
        compadd -a __mfenv_labels
    }

    function __mfenv_complete_loaded {
        \builtin local -a __mfenv_labels
        __mfenv_labels=("${(@f)$('[MFENV]' complete loaded 2>/dev/null)}")
        __mfenv_labels=(${__mfenv_labels:#})
        compadd -a __mfenv_labels
    }

    function __mfenv_complete_plugins {
        \builtin local -a __mfenv_labels
        __mfenv_labels=("${(@f)$('[MFENV]' complete plugins 2>/dev/null)}")
        __mfenv_labels=(${__mfenv_labels:#})
        compadd -a __mfenv_labels
    }

    # compdef exists once compinit has run, which ~/.zshrc may do before or after the hook
    # line: the functions are registered now if it has, else at the first prompt after it has.
    function __mfenv_compdef {
        compdef __mfenv_complete_installed layer_load layer_load_without_optional
        compdef __mfenv_complete_loaded layer_unload
        compdef __mfenv_complete_plugins plugin_env
        compdef __mfenv_complete_collections layer_restore
    }

    function __mfenv_compdef_at_prompt {
        (( ${+functions[compdef]} )) || \builtin return 0
        __mfenv_compdef
        precmd_functions=(${precmd_functions:#__mfenv_compdef_at_prompt})
    }

    if (( ${+functions[compdef]} )); then
        __mfenv_compdef
    else
        precmd_functions+=(__mfenv_compdef_at_prompt)
    fi

    # Tells `mfenv doctor` which shell (pid) evaluated this hook, calling which binary.
    \builtin export __MFENV_HOOK="zsh:$$:"'[MFENV]'
    "#);
}

#[test]
fn the_fish_hook_defines_the_functions_and_their_completion() {
    insta::assert_snapshot!(hook("fish"), @r#"
    # mfenv shell integration for fish.
    # Add to ~/.config/fish/config.fish:  mfenv hook fish | source

    # `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
    # name in mfenv's messages, in MFENV_HOOK) and sources what mfenv printed only when it
    # exited 0 and marked it as shell code: its first line is `# mfenv: shell code`. Anything else (help,
    # version, a dry run) is printed as text, and the function returns mfenv's status.
    # Every function calling mfenv goes through here. (A command substitution would not
    # honour `2>` redirections of the caller in fish, hence the pipe to `read`.)
    function __mfenv_eval
        set -l __mfenv_function $argv[1]
        set -e argv[1]
        begin
            set -lx MFENV_HOOK $__mfenv_function
            '[MFENV]' $argv
        end | read -lz __mfenv_out
        set -l __mfenv_status $pipestatus[1]
        if test $__mfenv_status -eq 0; and string match -q -- '# mfenv: shell code*' "$__mfenv_out"
            printf '%s' "$__mfenv_out" | source
            return
        end
        if test -n "$__mfenv_out"
            printf '%s' "$__mfenv_out"
        end
        return $__mfenv_status
    end

    function layer_load --description 'Load layers into this shell'
        __mfenv_eval layer_load load --shell fish $argv
    end

    function layer_load_without_optional --description 'Load layers, without their optional dependencies'
        __mfenv_eval layer_load_without_optional load --shell fish --dont-load-optional $argv
    end

    function layer_unload --description 'Unload layers from this shell'
        __mfenv_eval layer_unload unload --shell fish $argv
    end

    function plugin_env --description 'Load a plugin environment (--exit: leave it)'
        __mfenv_eval plugin_env plugin env --shell fish $argv
    end

    function layer_restore --description 'Unload every layer, then load a saved collection'
        __mfenv_eval layer_restore collection restore --shell fish $argv
    end

    function __mfenv_complete
        '[MFENV]' complete $argv[1] -- (commandline -ct) 2>/dev/null
    end

    complete -c layer_load -f -a '(__mfenv_complete installed)'
    complete -c layer_load_without_optional -f -a '(__mfenv_complete installed)'
    complete -c layer_unload -f -a '(__mfenv_complete loaded)'
    complete -c plugin_env -f -a '(__mfenv_complete plugins)'
    complete -c layer_restore -f -a '(__mfenv_complete collections)'

    # Tells `mfenv doctor` which shell (pid) evaluated this hook, calling which binary.
    set -gx __MFENV_HOOK "fish:$fish_pid:"'[MFENV]'
    "#);
}

#[test]
fn the_sh_hook_defines_the_functions() {
    insta::assert_snapshot!(hook("sh"), @r#"
    # mfenv shell integration for POSIX sh (dash, ash, busybox sh, ksh).
    # Add to ~/.profile:  eval "$(mfenv hook sh)"

    # `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
    # name in mfenv's messages, in MFENV_HOOK) and evaluates what mfenv printed only when
    # it exited 0 and marked it as shell code: its first line is `# mfenv: shell code`. Anything else
    # (help, version, a dry run) is printed as text, and the function returns mfenv's status.
    # Every function calling mfenv goes through here.
    # Positional parameters are the only function-local storage in POSIX sh: they carry the
    # status so that no helper variable is left behind.
    # Backslashes keep user aliases of eval, set, unset and return out of the way.
    __mfenv_eval() {
        __mfenv_out=$(\export MFENV_HOOK="$1" && \shift && '[MFENV]' "$@") || {
            \set -- "$?"
            \test -z "${__mfenv_out}" || \printf '%s\n' "${__mfenv_out}"
            \unset __mfenv_out
            \return "$1"
        }
        case ${__mfenv_out} in
        '# mfenv: shell code'*) \eval "${__mfenv_out#'# mfenv: shell code'}" ;;
        *) \test -z "${__mfenv_out}" || \printf '%s\n' "${__mfenv_out}" ;;
        esac
        \set -- "$?"
        \unset __mfenv_out
        \return "$1"
    }

    layer_load() {
        __mfenv_eval layer_load load --shell sh "$@"
    }

    layer_load_without_optional() {
        __mfenv_eval layer_load_without_optional load --shell sh --dont-load-optional "$@"
    }

    layer_unload() {
        __mfenv_eval layer_unload unload --shell sh "$@"
    }

    # Unloads every layer, then loads a saved collection (`layer_restore [NAME]`).
    layer_restore() {
        __mfenv_eval layer_restore collection restore --shell sh "$@"
    }

    # Loads a plugin's layer and environment (`plugin_env NAME`, or `plugin_env` inside a
    # plugin directory); `plugin_env --exit` gives the previous environment back.
    plugin_env() {
        __mfenv_eval plugin_env plugin env --shell sh "$@"
    }

    # Tells `mfenv doctor` which shell (pid) evaluated this hook, calling which binary.
    \export __MFENV_HOOK="sh:$$:"'[MFENV]'
    "#);
}

/// `a@test` (bin, lib, a profile, two extra_env values) depending on `base@test` (bin).
///
/// No unprofile: where it is sourced during an unload is checked (and currently wrong)
/// in `semantics::the_unprofile_is_sourced_after_the_paths_are_removed_…`.
struct Small {
    fixture: Fixture,
    base: std::path::PathBuf,
    a: std::path::PathBuf,
}

fn small() -> Small {
    let fixture = Fixture::new();
    let base = fixture.layer(LayerSpec::new("base", "base@test"));
    let a = fixture.layer(
        LayerSpec::new("a", "a@test")
            .deps("base@test\n")
            .dirs(&["bin", "lib"])
            .extra_env("GREETING=hello world\nQUOTE=it's \"quoted\"\n")
            .profile("export PROFILED=1\n"),
    );
    Small { fixture, base, a }
}

impl Small {
    fn normalise(&self, text: &str) -> String {
        normalise(
            text,
            &self.fixture,
            &[("base@test", &self.base), ("a@test", &self.a)],
        )
    }

    fn load(&self, shell: &str) -> String {
        let output = self.fixture.run(&["load", "--shell", shell, "a@test"]);
        assert_success(&output);
        assert_eq!(stderr(&output), "");
        assert!(
            stdout(&output).ends_with('\n'),
            "every statement ends its line"
        );
        self.normalise(&stdout(&output))
    }
}

#[test]
fn a_small_load_renders_for_bash() {
    let small = small();
    insta::assert_snapshot!(small.load("bash"), @r#"
    \builtin export LAYERAPI2_LAYER_[base@test]_LOADED='1'
    \builtin export PATH='[ROOT]/layers/a/bin:[ROOT]/layers/base/bin:/usr/local/bin:/usr/bin:/bin'
    \builtin export PYTHONPATH='[ROOT]/layers/a/lib'
    \builtin export LD_LIBRARY_PATH='[ROOT]/layers/a/lib'
    \builtin source '[ROOT]/layers/a/.layerapi2_interactive_profile'
    \builtin export GREETING='hello world'
    \builtin export QUOTE='it'\''s "quoted"'
    \builtin export LAYERAPI2_LAYER_[a@test]_LOADED='1'
    \builtin export __MFENV_STATE='1:LY|[ROOT]/layers/base,base@test,m,,|[ROOT]/layers/a,a@test,gmo,,,GREETING=5eb63bbb-,QUOTE=c6e6e659-'
    "#);
}

#[test]
fn a_small_load_renders_for_zsh() {
    let small = small();
    insta::assert_snapshot!(small.load("zsh"), @r#"
    \builtin export LAYERAPI2_LAYER_[base@test]_LOADED='1'
    \builtin export PATH='[ROOT]/layers/a/bin:[ROOT]/layers/base/bin:/usr/local/bin:/usr/bin:/bin'
    \builtin export PYTHONPATH='[ROOT]/layers/a/lib'
    \builtin export LD_LIBRARY_PATH='[ROOT]/layers/a/lib'
    \builtin source '[ROOT]/layers/a/.layerapi2_interactive_profile'
    \builtin export GREETING='hello world'
    \builtin export QUOTE='it'\''s "quoted"'
    \builtin export LAYERAPI2_LAYER_[a@test]_LOADED='1'
    \builtin export __MFENV_STATE='1:LY|[ROOT]/layers/base,base@test,m,,|[ROOT]/layers/a,a@test,gmo,,,GREETING=5eb63bbb-,QUOTE=c6e6e659-'
    "#);
}

#[test]
fn a_small_load_renders_for_fish() {
    let small = small();
    insta::assert_snapshot!(small.load("fish"), @r#"
    set -gx LAYERAPI2_LAYER_[base@test]_LOADED '1'
    set -gx PATH '[ROOT]/layers/a/bin' '[ROOT]/layers/base/bin' '/usr/local/bin' '/usr/bin' '/bin'
    set -gx PYTHONPATH '[ROOT]/layers/a/lib'
    set -gx LD_LIBRARY_PATH '[ROOT]/layers/a/lib'
    set -gx GREETING 'hello world'
    set -gx QUOTE 'it\'s "quoted"'
    set -gx LAYERAPI2_LAYER_[a@test]_LOADED '1'
    set -gx __MFENV_STATE '1:LY|[ROOT]/layers/base,base@test,m,,|[ROOT]/layers/a,a@test,gmo,,,GREETING=5eb63bbb-,QUOTE=c6e6e659-'
    "#);
}

#[test]
fn a_small_load_renders_for_sh() {
    let small = small();
    insta::assert_snapshot!(small.load("sh"), @r#"
    \export LAYERAPI2_LAYER_[base@test]_LOADED='1'
    \export PATH='[ROOT]/layers/a/bin:[ROOT]/layers/base/bin:/usr/local/bin:/usr/bin:/bin'
    \export PYTHONPATH='[ROOT]/layers/a/lib'
    \export LD_LIBRARY_PATH='[ROOT]/layers/a/lib'
    \export GREETING='hello world'
    \export QUOTE='it'\''s "quoted"'
    \export LAYERAPI2_LAYER_[a@test]_LOADED='1'
    \export __MFENV_STATE='1:LY|[ROOT]/layers/base,base@test,m,,|[ROOT]/layers/a,a@test,gmo,,,GREETING=5eb63bbb-,QUOTE=c6e6e659-'
    "#);
}

#[test]
fn the_unload_of_the_small_load_renders_for_bash_and_fish() {
    let small = small();
    let mut session = Session::new(&small.fixture);
    session.load(&["a@test"]);
    let bash = session.run(&["unload", "base@test"]);
    assert_success(&bash);
    insta::assert_snapshot!(small.normalise(&stdout(&bash)), @r"
    \builtin unset LD_LIBRARY_PATH
    \builtin export PATH='/usr/local/bin:/usr/bin:/bin'
    \builtin unset PYTHONPATH
    \builtin unset QUOTE
    \builtin unset GREETING
    \builtin unset LAYERAPI2_LAYER_[a@test]_LOADED
    \builtin unset LAYERAPI2_LAYER_[base@test]_LOADED
    \builtin unset __MFENV_STATE
    ");
    let fish = session.run(&["unload", "--shell", "fish", "base@test"]);
    assert_success(&fish);
    insta::assert_snapshot!(small.normalise(&stdout(&fish)), @"
    set -e -g LD_LIBRARY_PATH
    set -gx PATH '/usr/local/bin' '/usr/bin' '/bin'
    set -e -g PYTHONPATH
    set -e -g QUOTE
    set -e -g GREETING
    set -e -g LAYERAPI2_LAYER_[a@test]_LOADED
    set -e -g LAYERAPI2_LAYER_[base@test]_LOADED
    set -e -g __MFENV_STATE
    ");
}

#[test]
fn the_dry_run_of_the_small_load_reads_as_a_plan() {
    let small = small();
    let output = small.fixture.run(&["load", "--dry-run", "a@test"]);
    assert_success(&output);
    insta::assert_snapshot!(small.normalise(&stdout(&output)), @r#"
        load   base@test [[ROOT]/layers/base] (needed by `a@test`)
        load   a@test [[ROOT]/layers/a] (requested)

        variables:
          PATH
            + [ROOT]/layers/a/bin
            + [ROOT]/layers/base/bin
          PYTHONPATH
            + [ROOT]/layers/a/lib
          LD_LIBRARY_PATH
            + [ROOT]/layers/a/lib
          GREETING: (unset) -> "hello world"
          QUOTE: (unset) -> "it's \"quoted\""
        "#);
}

#[test]
fn a_missing_dependency_error_reads_as_designed() {
    let small = small();
    small
        .fixture
        .layer(LayerSpec::new("c", "c@test").deps("a@test\nbse@test\n"));
    let output = small.fixture.run(&["load", "c@test"]);
    let stderr = assert_error(&output);
    insta::assert_snapshot!(stderr, @r#"
        mfenv: error: cannot load `c@test`
          caused by: missing dependency `c@test -> bse@test`: `bse@test` is not installed
        hint: did you mean `base@test`?
        "#);
}
