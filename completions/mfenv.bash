_mfenv() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="mfenv"
                ;;
            mfenv,collection)
                cmd="mfenv__subcmd__collection"
                ;;
            mfenv,complete)
                cmd="mfenv__subcmd__complete"
                ;;
            mfenv,completions)
                cmd="mfenv__subcmd__completions"
                ;;
            mfenv,cron)
                cmd="mfenv__subcmd__cron"
                ;;
            mfenv,cronwrap)
                cmd="mfenv__subcmd__cronwrap"
                ;;
            mfenv,daemons)
                cmd="mfenv__subcmd__daemons"
                ;;
            mfenv,doctor)
                cmd="mfenv__subcmd__doctor"
                ;;
            mfenv,exec)
                cmd="mfenv__subcmd__exec"
                ;;
            mfenv,help)
                cmd="mfenv__subcmd__help"
                ;;
            mfenv,home)
                cmd="mfenv__subcmd__home"
                ;;
            mfenv,hook)
                cmd="mfenv__subcmd__hook"
                ;;
            mfenv,install-aliases)
                cmd="mfenv__subcmd__install__subcmd__aliases"
                ;;
            mfenv,is-installed)
                cmd="mfenv__subcmd__is__subcmd__installed"
                ;;
            mfenv,is-loaded)
                cmd="mfenv__subcmd__is__subcmd__loaded"
                ;;
            mfenv,layers)
                cmd="mfenv__subcmd__layers"
                ;;
            mfenv,load)
                cmd="mfenv__subcmd__load"
                ;;
            mfenv,man)
                cmd="mfenv__subcmd__man"
                ;;
            mfenv,plugin)
                cmd="mfenv__subcmd__plugin"
                ;;
            mfenv,provides)
                cmd="mfenv__subcmd__provides"
                ;;
            mfenv,search)
                cmd="mfenv__subcmd__search"
                ;;
            mfenv,unload)
                cmd="mfenv__subcmd__unload"
                ;;
            mfenv,why)
                cmd="mfenv__subcmd__why"
                ;;
            mfenv__subcmd__collection,help)
                cmd="mfenv__subcmd__collection__subcmd__help"
                ;;
            mfenv__subcmd__collection,list)
                cmd="mfenv__subcmd__collection__subcmd__list"
                ;;
            mfenv__subcmd__collection,remove)
                cmd="mfenv__subcmd__collection__subcmd__remove"
                ;;
            mfenv__subcmd__collection,restore)
                cmd="mfenv__subcmd__collection__subcmd__restore"
                ;;
            mfenv__subcmd__collection,save)
                cmd="mfenv__subcmd__collection__subcmd__save"
                ;;
            mfenv__subcmd__collection,show)
                cmd="mfenv__subcmd__collection__subcmd__show"
                ;;
            mfenv__subcmd__collection__subcmd__help,help)
                cmd="mfenv__subcmd__collection__subcmd__help__subcmd__help"
                ;;
            mfenv__subcmd__collection__subcmd__help,list)
                cmd="mfenv__subcmd__collection__subcmd__help__subcmd__list"
                ;;
            mfenv__subcmd__collection__subcmd__help,remove)
                cmd="mfenv__subcmd__collection__subcmd__help__subcmd__remove"
                ;;
            mfenv__subcmd__collection__subcmd__help,restore)
                cmd="mfenv__subcmd__collection__subcmd__help__subcmd__restore"
                ;;
            mfenv__subcmd__collection__subcmd__help,save)
                cmd="mfenv__subcmd__collection__subcmd__help__subcmd__save"
                ;;
            mfenv__subcmd__collection__subcmd__help,show)
                cmd="mfenv__subcmd__collection__subcmd__help__subcmd__show"
                ;;
            mfenv__subcmd__cron,help)
                cmd="mfenv__subcmd__cron__subcmd__help"
                ;;
            mfenv__subcmd__cron,install)
                cmd="mfenv__subcmd__cron__subcmd__install"
                ;;
            mfenv__subcmd__cron,uninstall)
                cmd="mfenv__subcmd__cron__subcmd__uninstall"
                ;;
            mfenv__subcmd__cron__subcmd__help,help)
                cmd="mfenv__subcmd__cron__subcmd__help__subcmd__help"
                ;;
            mfenv__subcmd__cron__subcmd__help,install)
                cmd="mfenv__subcmd__cron__subcmd__help__subcmd__install"
                ;;
            mfenv__subcmd__cron__subcmd__help,uninstall)
                cmd="mfenv__subcmd__cron__subcmd__help__subcmd__uninstall"
                ;;
            mfenv__subcmd__daemons,help)
                cmd="mfenv__subcmd__daemons__subcmd__help"
                ;;
            mfenv__subcmd__daemons,reload)
                cmd="mfenv__subcmd__daemons__subcmd__reload"
                ;;
            mfenv__subcmd__daemons,restart)
                cmd="mfenv__subcmd__daemons__subcmd__restart"
                ;;
            mfenv__subcmd__daemons,run)
                cmd="mfenv__subcmd__daemons__subcmd__run"
                ;;
            mfenv__subcmd__daemons,start)
                cmd="mfenv__subcmd__daemons__subcmd__start"
                ;;
            mfenv__subcmd__daemons,status)
                cmd="mfenv__subcmd__daemons__subcmd__status"
                ;;
            mfenv__subcmd__daemons,stop)
                cmd="mfenv__subcmd__daemons__subcmd__stop"
                ;;
            mfenv__subcmd__daemons__subcmd__help,help)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__help"
                ;;
            mfenv__subcmd__daemons__subcmd__help,reload)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__reload"
                ;;
            mfenv__subcmd__daemons__subcmd__help,restart)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__restart"
                ;;
            mfenv__subcmd__daemons__subcmd__help,run)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__run"
                ;;
            mfenv__subcmd__daemons__subcmd__help,start)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__start"
                ;;
            mfenv__subcmd__daemons__subcmd__help,status)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__status"
                ;;
            mfenv__subcmd__daemons__subcmd__help,stop)
                cmd="mfenv__subcmd__daemons__subcmd__help__subcmd__stop"
                ;;
            mfenv__subcmd__help,collection)
                cmd="mfenv__subcmd__help__subcmd__collection"
                ;;
            mfenv__subcmd__help,complete)
                cmd="mfenv__subcmd__help__subcmd__complete"
                ;;
            mfenv__subcmd__help,completions)
                cmd="mfenv__subcmd__help__subcmd__completions"
                ;;
            mfenv__subcmd__help,cron)
                cmd="mfenv__subcmd__help__subcmd__cron"
                ;;
            mfenv__subcmd__help,cronwrap)
                cmd="mfenv__subcmd__help__subcmd__cronwrap"
                ;;
            mfenv__subcmd__help,daemons)
                cmd="mfenv__subcmd__help__subcmd__daemons"
                ;;
            mfenv__subcmd__help,doctor)
                cmd="mfenv__subcmd__help__subcmd__doctor"
                ;;
            mfenv__subcmd__help,exec)
                cmd="mfenv__subcmd__help__subcmd__exec"
                ;;
            mfenv__subcmd__help,help)
                cmd="mfenv__subcmd__help__subcmd__help"
                ;;
            mfenv__subcmd__help,home)
                cmd="mfenv__subcmd__help__subcmd__home"
                ;;
            mfenv__subcmd__help,hook)
                cmd="mfenv__subcmd__help__subcmd__hook"
                ;;
            mfenv__subcmd__help,install-aliases)
                cmd="mfenv__subcmd__help__subcmd__install__subcmd__aliases"
                ;;
            mfenv__subcmd__help,is-installed)
                cmd="mfenv__subcmd__help__subcmd__is__subcmd__installed"
                ;;
            mfenv__subcmd__help,is-loaded)
                cmd="mfenv__subcmd__help__subcmd__is__subcmd__loaded"
                ;;
            mfenv__subcmd__help,layers)
                cmd="mfenv__subcmd__help__subcmd__layers"
                ;;
            mfenv__subcmd__help,load)
                cmd="mfenv__subcmd__help__subcmd__load"
                ;;
            mfenv__subcmd__help,man)
                cmd="mfenv__subcmd__help__subcmd__man"
                ;;
            mfenv__subcmd__help,plugin)
                cmd="mfenv__subcmd__help__subcmd__plugin"
                ;;
            mfenv__subcmd__help,provides)
                cmd="mfenv__subcmd__help__subcmd__provides"
                ;;
            mfenv__subcmd__help,search)
                cmd="mfenv__subcmd__help__subcmd__search"
                ;;
            mfenv__subcmd__help,unload)
                cmd="mfenv__subcmd__help__subcmd__unload"
                ;;
            mfenv__subcmd__help,why)
                cmd="mfenv__subcmd__help__subcmd__why"
                ;;
            mfenv__subcmd__help__subcmd__collection,list)
                cmd="mfenv__subcmd__help__subcmd__collection__subcmd__list"
                ;;
            mfenv__subcmd__help__subcmd__collection,remove)
                cmd="mfenv__subcmd__help__subcmd__collection__subcmd__remove"
                ;;
            mfenv__subcmd__help__subcmd__collection,restore)
                cmd="mfenv__subcmd__help__subcmd__collection__subcmd__restore"
                ;;
            mfenv__subcmd__help__subcmd__collection,save)
                cmd="mfenv__subcmd__help__subcmd__collection__subcmd__save"
                ;;
            mfenv__subcmd__help__subcmd__collection,show)
                cmd="mfenv__subcmd__help__subcmd__collection__subcmd__show"
                ;;
            mfenv__subcmd__help__subcmd__cron,install)
                cmd="mfenv__subcmd__help__subcmd__cron__subcmd__install"
                ;;
            mfenv__subcmd__help__subcmd__cron,uninstall)
                cmd="mfenv__subcmd__help__subcmd__cron__subcmd__uninstall"
                ;;
            mfenv__subcmd__help__subcmd__daemons,reload)
                cmd="mfenv__subcmd__help__subcmd__daemons__subcmd__reload"
                ;;
            mfenv__subcmd__help__subcmd__daemons,restart)
                cmd="mfenv__subcmd__help__subcmd__daemons__subcmd__restart"
                ;;
            mfenv__subcmd__help__subcmd__daemons,run)
                cmd="mfenv__subcmd__help__subcmd__daemons__subcmd__run"
                ;;
            mfenv__subcmd__help__subcmd__daemons,start)
                cmd="mfenv__subcmd__help__subcmd__daemons__subcmd__start"
                ;;
            mfenv__subcmd__help__subcmd__daemons,status)
                cmd="mfenv__subcmd__help__subcmd__daemons__subcmd__status"
                ;;
            mfenv__subcmd__help__subcmd__daemons,stop)
                cmd="mfenv__subcmd__help__subcmd__daemons__subcmd__stop"
                ;;
            mfenv__subcmd__help__subcmd__plugin,bootstrap)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap"
                ;;
            mfenv__subcmd__help__subcmd__plugin,check)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__check"
                ;;
            mfenv__subcmd__help__subcmd__plugin,config)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__config"
                ;;
            mfenv__subcmd__help__subcmd__plugin,develop)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__develop"
                ;;
            mfenv__subcmd__help__subcmd__plugin,env)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__env"
                ;;
            mfenv__subcmd__help__subcmd__plugin,hash)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__hash"
                ;;
            mfenv__subcmd__help__subcmd__plugin,hotswap)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__hotswap"
                ;;
            mfenv__subcmd__help__subcmd__plugin,info)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__info"
                ;;
            mfenv__subcmd__help__subcmd__plugin,install)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__install"
                ;;
            mfenv__subcmd__help__subcmd__plugin,list)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__list"
                ;;
            mfenv__subcmd__help__subcmd__plugin,make)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__make"
                ;;
            mfenv__subcmd__help__subcmd__plugin,provision)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__provision"
                ;;
            mfenv__subcmd__help__subcmd__plugin,release)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__release"
                ;;
            mfenv__subcmd__help__subcmd__plugin,repackage)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__repackage"
                ;;
            mfenv__subcmd__help__subcmd__plugin,uninstall)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__uninstall"
                ;;
            mfenv__subcmd__help__subcmd__plugin,wrapper)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__wrapper"
                ;;
            mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap,create)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap__subcmd__create"
                ;;
            mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap,list)
                cmd="mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap__subcmd__list"
                ;;
            mfenv__subcmd__plugin,bootstrap)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap"
                ;;
            mfenv__subcmd__plugin,check)
                cmd="mfenv__subcmd__plugin__subcmd__check"
                ;;
            mfenv__subcmd__plugin,config)
                cmd="mfenv__subcmd__plugin__subcmd__config"
                ;;
            mfenv__subcmd__plugin,develop)
                cmd="mfenv__subcmd__plugin__subcmd__develop"
                ;;
            mfenv__subcmd__plugin,env)
                cmd="mfenv__subcmd__plugin__subcmd__env"
                ;;
            mfenv__subcmd__plugin,hash)
                cmd="mfenv__subcmd__plugin__subcmd__hash"
                ;;
            mfenv__subcmd__plugin,help)
                cmd="mfenv__subcmd__plugin__subcmd__help"
                ;;
            mfenv__subcmd__plugin,hotswap)
                cmd="mfenv__subcmd__plugin__subcmd__hotswap"
                ;;
            mfenv__subcmd__plugin,info)
                cmd="mfenv__subcmd__plugin__subcmd__info"
                ;;
            mfenv__subcmd__plugin,install)
                cmd="mfenv__subcmd__plugin__subcmd__install"
                ;;
            mfenv__subcmd__plugin,list)
                cmd="mfenv__subcmd__plugin__subcmd__list"
                ;;
            mfenv__subcmd__plugin,make)
                cmd="mfenv__subcmd__plugin__subcmd__make"
                ;;
            mfenv__subcmd__plugin,provision)
                cmd="mfenv__subcmd__plugin__subcmd__provision"
                ;;
            mfenv__subcmd__plugin,release)
                cmd="mfenv__subcmd__plugin__subcmd__release"
                ;;
            mfenv__subcmd__plugin,repackage)
                cmd="mfenv__subcmd__plugin__subcmd__repackage"
                ;;
            mfenv__subcmd__plugin,uninstall)
                cmd="mfenv__subcmd__plugin__subcmd__uninstall"
                ;;
            mfenv__subcmd__plugin,wrapper)
                cmd="mfenv__subcmd__plugin__subcmd__wrapper"
                ;;
            mfenv__subcmd__plugin__subcmd__bootstrap,create)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__create"
                ;;
            mfenv__subcmd__plugin__subcmd__bootstrap,help)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help"
                ;;
            mfenv__subcmd__plugin__subcmd__bootstrap,list)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__list"
                ;;
            mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help,create)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help__subcmd__create"
                ;;
            mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help,help)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help__subcmd__help"
                ;;
            mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help,list)
                cmd="mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help__subcmd__list"
                ;;
            mfenv__subcmd__plugin__subcmd__help,bootstrap)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap"
                ;;
            mfenv__subcmd__plugin__subcmd__help,check)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__check"
                ;;
            mfenv__subcmd__plugin__subcmd__help,config)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__config"
                ;;
            mfenv__subcmd__plugin__subcmd__help,develop)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__develop"
                ;;
            mfenv__subcmd__plugin__subcmd__help,env)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__env"
                ;;
            mfenv__subcmd__plugin__subcmd__help,hash)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__hash"
                ;;
            mfenv__subcmd__plugin__subcmd__help,help)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__help"
                ;;
            mfenv__subcmd__plugin__subcmd__help,hotswap)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__hotswap"
                ;;
            mfenv__subcmd__plugin__subcmd__help,info)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__info"
                ;;
            mfenv__subcmd__plugin__subcmd__help,install)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__install"
                ;;
            mfenv__subcmd__plugin__subcmd__help,list)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__list"
                ;;
            mfenv__subcmd__plugin__subcmd__help,make)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__make"
                ;;
            mfenv__subcmd__plugin__subcmd__help,provision)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__provision"
                ;;
            mfenv__subcmd__plugin__subcmd__help,release)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__release"
                ;;
            mfenv__subcmd__plugin__subcmd__help,repackage)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__repackage"
                ;;
            mfenv__subcmd__plugin__subcmd__help,uninstall)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__uninstall"
                ;;
            mfenv__subcmd__plugin__subcmd__help,wrapper)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__wrapper"
                ;;
            mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap,create)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap__subcmd__create"
                ;;
            mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap,list)
                cmd="mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap__subcmd__list"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        mfenv)
            opts="-h -V --help --version load exec unload layers cronwrap why collection is-installed is-loaded home hook completions plugin cron daemons install-aliases man provides search doctor complete help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection)
            opts="-h -V --help --version save restore list show remove help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help)
            opts="save restore list show remove help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help__subcmd__restore)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help__subcmd__save)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__help__subcmd__show)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__list)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__remove)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__restore)
            opts="-d -q -h -V --shell --debug --dry-run --json --quiet --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --shell)
                    COMPREPLY=($(compgen -W "bash zsh fish sh" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__save)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__collection__subcmd__show)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__complete)
            opts="-h -V --help --version installed labels loaded plugins collections"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__completions)
            opts="-h -V --help --version bash zsh fish"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron)
            opts="-h -V --help --version install uninstall help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron__subcmd__help)
            opts="install uninstall help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron__subcmd__help__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron__subcmd__help__subcmd__uninstall)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron__subcmd__install)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cron__subcmd__uninstall)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__cronwrap)
            opts="-t -r -l -b -w -e -f -s -n -i -h -V --timeout --kill-after --random-sleep --lock --lock-timeout-behaviour --wait-for-lock-timeout --load-env --load-env-file --shell --nice --ionice --low --log-capture-to --invoked-as --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --kill-after)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --random-sleep)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -r)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --lock-timeout-behaviour)
                    COMPREPLY=($(compgen -W "print-stdout print-stderr nothing" -- "${cur}"))
                    return 0
                    ;;
                -b)
                    COMPREPLY=($(compgen -W "print-stdout print-stderr nothing" -- "${cur}"))
                    return 0
                    ;;
                --wait-for-lock-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -w)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --load-env-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -f)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --shell)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -s)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --nice)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -n)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ionice)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -i)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --log-capture-to)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --invoked-as)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons)
            opts="-h -V --help --version run start status stop restart reload help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help)
            opts="run start status stop restart reload help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__reload)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__restart)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__run)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__start)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__status)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__help__subcmd__stop)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__reload)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__restart)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__run)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__start)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__status)
            opts="-h -V --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__daemons__subcmd__stop)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__doctor)
            opts="-h -V --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__exec)
            opts="-l -e -E -k -c -x -p -f -d -h -V --layers --empty --empty-env --empty-env-keeps --cwd --extra-env-prefix --prepend-env --force-prepend --dont-load-optional --debug --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --layers)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -l)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --empty-env-keeps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -k)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --extra-env-prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -x)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --prepend-env)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help)
            opts="load exec unload layers cronwrap why collection is-installed is-loaded home hook completions plugin cron daemons install-aliases man provides search doctor complete help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__collection)
            opts="save restore list show remove"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__collection__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__collection__subcmd__remove)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__collection__subcmd__restore)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__collection__subcmd__save)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__collection__subcmd__show)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__complete)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__completions)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__cron)
            opts="install uninstall"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__cron__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__cron__subcmd__uninstall)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__cronwrap)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons)
            opts="run start status stop restart reload"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons__subcmd__reload)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons__subcmd__restart)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons__subcmd__run)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons__subcmd__start)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons__subcmd__status)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__daemons__subcmd__stop)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__doctor)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__exec)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__home)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__hook)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__install__subcmd__aliases)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__is__subcmd__installed)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__is__subcmd__loaded)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__layers)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__load)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__man)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin)
            opts="list info hash check install hotswap uninstall develop make release repackage provision config env bootstrap wrapper"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap)
            opts="list create"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap__subcmd__create)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__bootstrap__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__check)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__config)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__develop)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__env)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__hash)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__hotswap)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__info)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__make)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__provision)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__release)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__repackage)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__uninstall)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__plugin__subcmd__wrapper)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__provides)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__search)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__unload)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__help__subcmd__why)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__home)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__hook)
            opts="-h -V --help --version bash zsh fish sh"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__install__subcmd__aliases)
            opts="-h -V --force --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__is__subcmd__installed)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__is__subcmd__loaded)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__layers)
            opts="-r -m -d -h -V --raw --json --loaded-filter --debug --empty-ok --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --loaded-filter)
                    COMPREPLY=($(compgen -W "yes no" -- "${cur}"))
                    return 0
                    ;;
                -m)
                    COMPREPLY=($(compgen -W "yes no" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__load)
            opts="-d -q -f -h -V --shell --debug --dry-run --json --quiet --dont-load-optional --force-prepend --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --shell)
                    COMPREPLY=($(compgen -W "bash zsh fish sh" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__man)
            opts="-h -V --install --list --roff --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --install)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin)
            opts="-h -V --help --version list info hash check install hotswap uninstall develop make release repackage provision config env bootstrap wrapper help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap)
            opts="-h -V --help --version list create help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__create)
            opts="-t -h --template --no-input --version --release --summary --license --url --maintainer --vendor --help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --template)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --version)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --release)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --summary)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --license)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --url)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --maintainer)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --vendor)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help)
            opts="list create help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help__subcmd__create)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__bootstrap__subcmd__list)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__check)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__config)
            opts="-h -V --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__develop)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__env)
            opts="-h -V --shell --exit --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --shell)
                    COMPREPLY=($(compgen -W "bash zsh fish sh" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__hash)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help)
            opts="list info hash check install hotswap uninstall develop make release repackage provision config env bootstrap wrapper help"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap)
            opts="list create"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap__subcmd__create)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__bootstrap__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 5 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__check)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__config)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__develop)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__env)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__hash)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__help)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__hotswap)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__info)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__install)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__list)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__make)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__provision)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__release)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__repackage)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__uninstall)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__help__subcmd__wrapper)
            opts=""
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 4 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__hotswap)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__info)
            opts="-h -V --just-home --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__install)
            opts="-f -h -V --new-name --force --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --new-name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__list)
            opts="-h -V --raw --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__make)
            opts="-v -h -V --verbose --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__provision)
            opts="-h -V --dir --dry-run --json --detailed-exitcode --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__release)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__repackage)
            opts="-h -V --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__uninstall)
            opts="-h -V --clean --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__plugin__subcmd__wrapper)
            opts="-c -e -h -V --cwd --empty --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 3 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__provides)
            opts="-h -V --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__search)
            opts="-h -V --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__unload)
            opts="-d -q -a -h -V --shell --debug --dry-run --json --quiet --all --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --shell)
                    COMPREPLY=($(compgen -W "bash zsh fish sh" -- "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
        mfenv__subcmd__why)
            opts="-h -V --json --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 2 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _mfenv -o nosort -o bashdefault -o default mfenv
else
    complete -F _mfenv -o bashdefault -o default mfenv
fi

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
