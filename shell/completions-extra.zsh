
# Layer labels: installed ones for load, exec -l, is-installed, is-loaded and home,
# loaded ones for unload.
(( $+functions[_mfenv_complete_installed] )) || _mfenv_complete_installed() {
    local -a labels
    labels=("${(@f)$(mfenv complete installed 2>/dev/null)}")
    labels=(${labels:#})
    compadd -a labels
}
(( $+functions[_mfenv_complete_loaded] )) || _mfenv_complete_loaded() {
    local -a labels
    labels=("${(@f)$(mfenv complete loaded 2>/dev/null)}")
    labels=(${labels:#})
    compadd -a labels
}
