# mfenv shell integration for fish.
# Add to ~/.config/fish/config.fish:  mfenv hook fish | source

# `__mfenv_eval FUNCTION ARGS...` runs `mfenv ARGS...` for the function FUNCTION (its
# name in mfenv's messages, in @HOOK_VARIABLE@) and sources what mfenv printed only when it
# exited 0 and marked it as shell code: its first line is `@MARKER@`. Anything else (help,
# version, a dry run) is printed as text, and the function returns mfenv's status.
# Every function calling mfenv goes through here. (A command substitution would not
# honour `2>` redirections of the caller in fish, hence the pipe to `read`.)
function __mfenv_eval
    set -l __mfenv_function $argv[1]
    set -e argv[1]
    begin
        set -lx @HOOK_VARIABLE@ $__mfenv_function
        @MFENV@ $argv
    end | read -lz __mfenv_out
    set -l __mfenv_status $pipestatus[1]
    if test $__mfenv_status -eq 0; and string match -q -- '@MARKER@*' "$__mfenv_out"
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
    @MFENV@ complete $argv[1] -- (commandline -ct) 2>/dev/null
end

complete -c layer_load -f -a '(__mfenv_complete installed)'
complete -c layer_load_without_optional -f -a '(__mfenv_complete installed)'
complete -c layer_unload -f -a '(__mfenv_complete loaded)'
complete -c plugin_env -f -a '(__mfenv_complete plugins)'
complete -c layer_restore -f -a '(__mfenv_complete collections)'

# Tells `mfenv doctor` which shell (pid) evaluated this hook, calling which binary.
set -gx __MFENV_HOOK "fish:$fish_pid:"@MFENV@
