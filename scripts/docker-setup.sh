#!/usr/bin/env bash
# Make Docker usable for docker/ on this machine (called by
# scripts/docker-test.sh; also by hand, see the README's Docker section):
#
#  1. a Docker daemon: when `docker info` fails, start Debian's dockerd
#       dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none
#     in the background (log /var/log/cast-dockerd.log, pid file
#     /run/cast-dockerd.pid; `scripts/docker-setup.sh --stop` stops it).
#     These flags work where no kernel module can be loaded and nothing may
#     touch the host's firewall; a daemon started so has no bridge network,
#     hence docker/compose.host.yml and `docker build --network host`.
#     A daemon that already answers is used as it is, never restarted.
#  2. the debian:bookworm base image, unless the daemon has one: made from
#     `debootstrap --variant=minbase bookworm` + `docker import` (where no
#     image registry is reachable, this is the only way to get it), with the
#     apt sources of the official image (bookworm, -updates, -security).
#     Made once per machine, then reused.
#
# Needs root and Debian's docker.io, debootstrap and docker-compose
# (scripts/install-deps.sh installs them).
#
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian),
# DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security).
set -euo pipefail

# Debian's docker client first (an old /usr/local/bin/docker may not speak
# to Debian's dockerd)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

PIDFILE=/run/cast-dockerd.pid
LOG=/var/log/cast-dockerd.log
BASE=debian:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

say() { printf 'docker-setup: %s\n' "$*"; }
die() { printf 'docker-setup: ERROR: %s\n' "$*" >&2; exit 1; }

our_dockerd() {  # pid of the dockerd this script started, if it runs
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] \
        && printf '%s\n' "$pid"
}

if [ "${1:-}" = --stop ]; then
    if pid=$(our_dockerd); then
        say "stopping dockerd (pid $pid, started by this script)"
        kill -TERM "$pid"
        for _ in $(seq 1 150); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && die "dockerd $pid did not stop in 30 s"
        rm -f "$PIDFILE"
    else
        say "no dockerd started by this script is running"
    fi
    exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [--stop]"

[ "$(id -u)" -eq 0 ] || die "run as root"
for c in docker dockerd debootstrap docker-compose; do
    command -v "$c" >/dev/null 2>&1 \
        || die "$c not found; run scripts/install-deps.sh (Debian: docker.io debootstrap docker-compose)"
done

# --- 1. the daemon ------------------------------------------------------------
if docker info >/dev/null 2>&1; then
    say "using the running Docker daemon ($(docker info -f '{{.ServerVersion}}, storage {{.Driver}}'))"
else
    if pgrep -x dockerd >/dev/null 2>&1; then
        die "a dockerd runs but does not answer on /var/run/docker.sock; not starting another"
    fi
    say "starting dockerd (vfs storage, no bridge, no iptables); log: $LOG"
    # its own session, so that the caller's terminal signals do not reach it
    setsid dockerd --storage-driver=vfs --iptables=false --ip6tables=false \
        --bridge=none --pidfile "$PIDFILE" >>"$LOG" 2>&1 < /dev/null &
    started=$!
    for _ in $(seq 1 150); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$started" 2>/dev/null \
            || { tail -n 20 "$LOG" >&2; die "dockerd exited"; }
        sleep 0.2
    done
    docker info >/dev/null 2>&1 \
        || { tail -n 20 "$LOG" >&2; die "dockerd did not answer in 30 s"; }
    pid=$(our_dockerd) || die "dockerd answers but $PIDFILE names no dockerd"
    say "dockerd $pid ready"
fi

# --- 2. the base image ----------------------------------------------------------
if docker image inspect "$BASE" >/dev/null 2>&1; then
    say "$BASE: present"
    exit 0
fi
say "$BASE: not present; building it with debootstrap (once per machine)"
tmp=$(mktemp -d /var/tmp/cast-debootstrap.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if ! debootstrap --variant=minbase bookworm "$tmp/root" "$MIRROR" \
        > "$tmp/debootstrap.log" 2>&1; then
    tail -n 20 "$tmp/debootstrap.log" >&2
    die "debootstrap failed"
fi
root=$tmp/root
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# as small as the official image: no package lists or .debs, no host name
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
       "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
       "$root"/tmp/* "$root"/var/tmp/*
: > "$root/etc/hostname"
: > "$root/etc/resolv.conf"
tar --numeric-owner --xattrs -C "$root" -c . \
    | docker import --change 'CMD ["bash"]' \
          --message "debootstrap --variant=minbase bookworm (scripts/docker-setup.sh)" \
          - "$BASE" >/dev/null
say "$BASE: imported ($(docker image inspect -f '{{.Size}}' "$BASE") bytes)"
