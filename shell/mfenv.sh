# mfenv shell integration for POSIX sh (dash, ash, busybox sh, ksh).
# Add to ~/.profile:  eval "$(mfenv hook sh)"

# Runs `mfenv ARGS...` and evaluates its output, only when it succeeded.
# Positional parameters are the only function-local storage in POSIX sh: they carry the
# status so that no helper variable is left behind.
# Backslashes keep user aliases of eval, set, unset and return out of the way.
__mfenv_eval() {
    __mfenv_code=$(@MFENV@ "$@") || {
        \set -- "$?"
        \unset __mfenv_code
        \return "$1"
    }
    \eval "${__mfenv_code}"
    \set -- "$?"
    \unset __mfenv_code
    \return "$1"
}

layer_load() {
    __mfenv_eval load --shell sh "$@"
}

layer_load_without_optional() {
    __mfenv_eval load --shell sh --dont-load-optional "$@"
}

layer_unload() {
    __mfenv_eval unload --shell sh "$@"
}

# Unloads every layer, then loads a saved collection (`layer_restore [NAME]`).
layer_restore() {
    __mfenv_eval collection restore --shell sh "$@"
}

# Loads a plugin's layer and environment (`plugin_env NAME`, or `plugin_env` inside a
# plugin directory); `plugin_env --exit` gives the previous environment back.
plugin_env() {
    __mfenv_eval plugin env --shell sh "$@"
}
