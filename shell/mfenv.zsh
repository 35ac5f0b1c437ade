# mfenv shell integration for zsh.
# Add to ~/.zshrc:  eval "$(mfenv hook zsh)"

# Runs `mfenv ARGS...` and evaluates its output, only when it succeeded.
# (The `function name {` form keeps user aliases of these names from breaking the hook.)
function __mfenv_eval {
    \builtin local __mfenv_code
    __mfenv_code="$(@MFENV@ "$@")" || \builtin return
    \builtin eval "${__mfenv_code}"
}

function layer_load {
    __mfenv_eval load --shell zsh "$@"
}

function layer_load_without_optional {
    __mfenv_eval load --shell zsh --dont-load-optional "$@"
}

function layer_unload {
    __mfenv_eval unload --shell zsh "$@"
}

# Loads a plugin's layer and environment (`plugin_env NAME`, or `plugin_env` inside a
# plugin directory); `plugin_env --exit` gives the previous environment back.
function plugin_env {
    __mfenv_eval plugin env --shell zsh "$@"
}

# Unloads every layer, then loads a saved collection (`layer_restore [NAME]`).
function layer_restore {
    __mfenv_eval collection restore --shell zsh "$@"
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

if (( ${+functions[compdef]} )); then
    compdef __mfenv_complete_installed layer_load layer_load_without_optional
    compdef __mfenv_complete_loaded layer_unload
    compdef __mfenv_complete_plugins plugin_env
    compdef __mfenv_complete_collections layer_restore
fi
