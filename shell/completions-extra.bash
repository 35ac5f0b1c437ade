
# Layer labels: installed ones (and short names) for load and exec -l, exact ones for
# is-installed, is-loaded and home,
# loaded ones for unload, collection names for collection restore, show and remove;
# everything else is left to the generated function above.
_mfenv_with_layers() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" subcommand="" word index
    if [[ "${COMP_CWORD}" -gt 0 ]]; then
        prev="${COMP_WORDS[COMP_CWORD - 1]}"
    fi
    for ((index = 1; index < COMP_CWORD; index++)); do
        word="${COMP_WORDS[index]}"
        if [[ "${word}" != -* ]]; then
            subcommand="${word}"
            break
        fi
    done
    local what=""
    case "${subcommand}" in
        load)
            [[ "${cur}" != -* ]] && what=installed
            ;;
        is-installed | is-loaded | home)
            [[ "${cur}" != -* ]] && what=labels
            ;;
        unload)
            [[ "${cur}" != -* ]] && what=loaded
            ;;
        exec)
            [[ "${prev}" == "-l" || "${prev}" == "--layers" ]] && what=installed
            ;;
        collection)
            case "${prev}" in
                restore | show | remove) [[ "${cur}" != -* ]] && what=collections ;;
            esac
            ;;
    esac
    if [[ -n "${what}" ]]; then
        COMPREPLY=()
        local line
        # Quoted as the shell would read them: labels may hold spaces, quotes or `$`.
        while IFS= read -r line; do
            printf -v line '%q' "${line}"
            COMPREPLY+=("${line}")
        done < <(mfenv complete "${what}" -- "${cur}" 2>/dev/null)
        return 0
    fi
    _mfenv "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _mfenv_with_layers -o nosort -o bashdefault -o default mfenv
else
    complete -F _mfenv_with_layers -o bashdefault -o default mfenv
fi
