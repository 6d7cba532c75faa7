#!/usr/bin/env bash
# Sourced by the launch scripts (torchrun.sh, dist_*.sh, slurm_train.sh): one check of
# what they are given, before any rank starts. Each problem is one `error:` line, exit 2.
launch_die() { printf 'error: %s\n' "$*" >&2; exit 2; }

# launch_check_count NAME VALUE: a positive integer
launch_check_count() {
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || launch_die "$1 must be a positive integer, got '${2}'"
}

# launch_check_file WHAT PATH: an existing file (URLs pass: the tool checks them)
launch_check_file() {
    case "$2" in *://*) return 0 ;; esac
    [ -n "$2" ] || launch_die "no $1 given"
    [ -f "$2" ] || launch_die "$2: $1 not found"
}

# launch_check_ranks RANKS: at most one rank per GPU, or per CPU core without GPUs;
# ALLOW_OVERSUBSCRIBE=1 lifts the limit
launch_check_ranks() {
    local have kind
    launch_check_count RANKS "$1"
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        have=$(nvidia-smi -L | grep -c '^GPU'); kind=GPU
    else
        # nproc, not counting OMP_NUM_THREADS (which GNU nproc honours)
        have=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc); kind='CPU core'
    fi
    if [ "$1" -gt "$have" ] && [ "${ALLOW_OVERSUBSCRIBE:-0}" != 1 ]; then
        launch_die "$1 ranks on a machine with $have ${kind}(s); use at most $have" \
            "(ALLOW_OVERSUBSCRIBE=1 to start more)"
    fi
}

# launch_check_port PYTHON ADDR PORT: the rendezvous port is free on this node
launch_check_port() {
    launch_check_count PORT "$3"
    [ "$3" -le 65535 ] || launch_die "PORT must be at most 65535, got $3"
    "$1" - "$3" <<'PY' || launch_die "port $3 is in use on this machine; choose another with PORT=..."
import socket, sys
s = socket.socket()
try:
    s.bind(('', int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}
