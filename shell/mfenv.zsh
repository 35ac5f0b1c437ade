# mfenv shell integration for zsh.
# Add to ~/.zshrc:  eval "$(mfenv hook zsh)"

# `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
# name in mfenv's messages, in @HOOK_VARIABLE@) and evaluates what mfenv printed only when
# it exited 0 and marked it as shell code: its first line is `@MARKER@`. Anything else
# (help, version, a dry run) is printed as text, and the function returns mfenv's status.
# Every function calling mfenv goes through here. (The `function name {` form keeps user
# aliases of these names from breaking the hook.)
function __mfenv_eval {
    \builtin local __mfenv_function="$1" __mfenv_out __mfenv_status=0
    \builtin shift
    __mfenv_out="$(@HOOK_VARIABLE@="${__mfenv_function}" @MFENV@ "$@")" || __mfenv_status=$?
    if [[ "${__mfenv_status}" -eq 0 && "${__mfenv_out}" == '@MARKER@'* ]]; then
        \builtin eval "${__mfenv_out#'@MARKER@'}"
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
    __mfenv_labels=("${(@f)$(@MFENV@ complete collections 2>/dev/null)}")
    __mfenv_labels=(${__mfenv_labels:#})
    compadd -a __mfenv_labels
}

# Completion of layer labels: installed ones for loads, loaded ones for unloads.
function __mfenv_complete_installed {
    \builtin local -a __mfenv_labels
    __mfenv_labels=("${(@f)$(@MFENV@ complete installed 2>/dev/null)}")
    __mfenv_labels=(${__mfenv_labels:#})
    compadd -a __mfenv_labels
}

function __mfenv_complete_loaded {
    \builtin local -a __mfenv_labels
    __mfenv_labels=("${(@f)$(@MFENV@ complete loaded 2>/dev/null)}")
    __mfenv_labels=(${__mfenv_labels:#})
    compadd -a __mfenv_labels
}

function __mfenv_complete_plugins {
    \builtin local -a __mfenv_labels
    __mfenv_labels=("${(@f)$(@MFENV@ complete plugins 2>/dev/null)}")
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
\builtin export __MFENV_HOOK="zsh:$$:"@MFENV@
