# mfenv shell integration for POSIX sh (dash, ash, busybox sh, ksh).
# Add to ~/.profile:  eval "$(mfenv hook sh)"

# `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
# name in mfenv's messages, in @HOOK_VARIABLE@) and evaluates what mfenv printed only when
# it exited 0 and marked it as shell code: its first line is `@MARKER@`. Anything else
# (help, version, a dry run) is printed as text, and the function returns mfenv's status.
# Every function calling mfenv goes through here.
# Positional parameters are the only function-local storage in POSIX sh: they carry the
# status so that no helper variable is left behind.
# Backslashes keep user aliases of eval, set, unset and return out of the way.
__mfenv_eval() {
    __mfenv_out=$(\export @HOOK_VARIABLE@="$1" && \shift && @MFENV@ "$@") || {
        \set -- "$?"
        \test -z "${__mfenv_out}" || \printf '%s\n' "${__mfenv_out}"
        \unset __mfenv_out
        \return "$1"
    }
    case ${__mfenv_out} in
    '@MARKER@'*) \eval "${__mfenv_out#'@MARKER@'}" ;;
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
\export __MFENV_HOOK="sh:$$:"@MFENV@
