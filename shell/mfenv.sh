# mfenv shell integration for POSIX sh (dash, ash, busybox sh, ksh).
# Add to ~/.profile:  eval "$(mfenv hook sh)"

# Runs `mfenv ARGS...` and evaluates its output, only when it succeeded.
__mfenv_eval() {
    __mfenv_code=$(@MFENV@ "$@") || return
    eval "${__mfenv_code}"
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
