#!/usr/bin/env bash
# Install everything ngx_http_cast_module needs to build, run and test on
# Debian 12 (bookworm). Idempotent: when every package is already installed it
# runs no apt command at all and finishes in well under a second.
#
# Must run as root (or with sudo available). Installs only what is missing.
# --build-only: just what scripts/build.sh needs (no test/fuzz/bench tools).
set -euo pipefail

step() { printf 'install-deps: %s\n' "$*"; }
die()  { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

BUILD_PACKAGES=(
    # toolchain
    build-essential
    # nginx itself and its full source tree (/usr/share/nginx/src)
    nginx nginx-dev
    # libraries the installed nginx's own configure needs (see `nginx -V`:
    # --with-pcre-jit links pcre2, --with-http_ssl_module, gzip)
    libpcre2-dev libpcre3-dev zlib1g-dev libssl-dev
    # the module's libraries (liburing: cast_io_uring, optional in `config`)
    libjansson-dev libhiredis-dev liburing-dev
)
TEST_PACKAGES=(
    # Redis mode tests start their own redis-server
    redis-server
    # benchmark peer
    libnginx-mod-nchan
    # Test::Nginx-compatible runner and the suites
    libtest-base-perl libtest-longstring-perl liblist-moreutils-perl
    libtext-diff-perl liburi-perl libhttp-message-perl libipc-run-perl
    libprotocol-websocket-perl libjson-pp-perl
    # the TLS suite (t/040): wss:// clients, certificates made at test time
    libio-socket-ssl-perl openssl
    # t/036: a host name with several addresses, from a hosts file of the
    # test's own (LD_PRELOAD into nginx), whatever /etc/hosts says
    libnss-wrapper
    # strict third-party WebSocket client used by one test (Debian's
    # /usr/bin/python3; a pyenv python3 earlier in PATH does not have it)
    python3-websockets
    # memory checks, fuzzing (libclang-rt-14-dev ships libclang_rt.fuzzer)
    valgrind clang libclang-rt-14-dev
    # `make run` walkthrough
    curl
    # t/070: the demo page (conf-examples/demo/) driven in headless Chromium
    # over the DevTools protocol (t/demo_browser.py, python3-websockets)
    chromium
    # the Docker test (scripts/docker-test.sh): Debian's dockerd and
    # docker-compose 1.x, debootstrap for the debian:bookworm base image
    docker.io docker-compose debootstrap
)

case ${1:-} in
--build-only) PACKAGES=("${BUILD_PACKAGES[@]}") ;;  # e.g. a Docker build stage
'')           PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
*)            die "usage: $0 [--build-only]" ;;
esac

# --- what is missing? (one dpkg-query call; unknown packages print nothing) --
declare -A have=()
while read -r pkg status; do
    [ "$status" = "installed" ] && have[$pkg]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' \
             "${PACKAGES[@]}" 2>/dev/null || true)

missing=()
for p in "${PACKAGES[@]}"; do
    [ -n "${have[$p]:-}" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    step "all ${#PACKAGES[@]} packages already installed, nothing to do"
    exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 \
        || die "missing packages (${missing[*]}) and not root; rerun as root"
    SUDO=sudo
fi

step "missing: ${missing[*]}"

# Keep maintainer scripts from starting nginx (port 80) and redis-server
# (port 6379) while we install: a temporary policy-rc.d, unless one exists.
POLICY=/usr/sbin/policy-rc.d
made_policy=
cleanup() {
    if [ -n "$made_policy" ]; then $SUDO rm -f "$POLICY"; fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    step "installing temporary $POLICY so packages do not start services"
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
step "apt-get update"
$SUDO apt-get update -qq || die "apt-get update failed"
step "apt-get install ${#missing[@]} package(s)"
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || die "apt-get install failed: ${missing[*]}"
cleanup
made_policy=

# If a service got started anyway (no policy-rc.d honoured), stop it: the
# tests run their own nginx and redis-server on loopback ports.
stop_service() {  # name pidfile
    local name=$1 pidfile=$2 pid
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now "$name" >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        $SUDO service "$name" stop >/dev/null 2>&1 || true
    fi
    if [ -r "$pidfile" ]; then
        pid=$(cat "$pidfile" 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            $SUDO kill "$pid" 2>/dev/null || true
        fi
    fi
}
for p in "${missing[@]}"; do
    case $p in
    nginx)
        step "stopping the system nginx service (tests run their own)"
        stop_service nginx /run/nginx.pid ;;
    redis-server)
        step "stopping the system redis-server (tests run their own)"
        stop_service redis-server /run/redis/redis-server.pid ;;
    esac
done

# verify
still=()
while read -r pkg status; do
    [ "$status" = "installed" ] && have[$pkg]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' \
             "${missing[@]}" 2>/dev/null || true)
for p in "${missing[@]}"; do
    [ -n "${have[$p]:-}" ] || still+=("$p")
done
[ ${#still[@]} -eq 0 ] || die "still not installed: ${still[*]}"
step "done"
