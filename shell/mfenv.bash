# mfenv shell integration for bash.
# Add to ~/.bashrc:  eval "$(mfenv hook bash)"

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
    done < <(@MFENV@ complete "$1" -- "${COMP_WORDS[COMP_CWORD]}" 2>/dev/null)
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
\builtin export __MFENV_HOOK="bash:$$:"@MFENV@
