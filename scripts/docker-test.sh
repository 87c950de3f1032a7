#!/usr/bin/env bash
# The Docker test of `make test` (also `make test-docker`): builds the images
# from this checkout and runs the README's Docker commands:
#   scripts/docker-setup.sh                      dockerd and debian:bookworm
#   DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1 \
#   docker-compose -f docker/compose.host.yml -p cast-test build
#   docker-compose -f docker/compose.host.yml -p cast-test up -d
# then checks the stack from the host over loopback: every container
# healthy, non-root, configuration read-only, Redis mode across both hubs;
# scripts/docker-stack-check.py subscribes through the balancer, binds on
# hub 1, publishes on hub 2, sees the event arrive, stops the hubs and sees
# Close 1001; the logs went to stdout/stderr; `down` leaves no container.
#
# Prints one "ok"/"not ok" line per check and "docker: N passed, M failed";
# exits 1 when any check failed.  Needs root (dockerd, debootstrap).
#
# Ports (127.0.0.1): CAST_LB_PORT (18090), CAST_HUB1_PORT (18091),
# CAST_HUB2_PORT (18092), CAST_REDIS_PORT (18379); CAST_SINGLE_PORT (18093)
# for one container of the image with its default configuration.  Compose project:
# CAST_DOCKER_PROJECT (cast-test).  One run at a time per machine (a lock
# in /run/lock); a dockerd this run started is stopped at the end.
#
# Caching: the debian:bookworm image (docker-setup.sh) and the layers that
# install packages are made once per machine (BuildKit's cache); a change in
# the checkout rebuilds only the module (a COPY of the checkout and
# scripts/build.sh) and copies the new .so into the runtime image.
# Superseded images of this project (label org.cast-hub.stage) are removed
# after the build, and past CAST_DOCKER_KEEP_GB (20) of Docker storage the
# build cache of a dockerd that docker-setup.sh started is dropped (vfs
# storage grows by about 2 GB with every change of the checkout).
set -uo pipefail

export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export CAST_LB_PORT=${CAST_LB_PORT:-18090}
export CAST_HUB1_PORT=${CAST_HUB1_PORT:-18091}
export CAST_HUB2_PORT=${CAST_HUB2_PORT:-18092}
export CAST_REDIS_PORT=${CAST_REDIS_PORT:-18379}
CAST_SINGLE_PORT=${CAST_SINGLE_PORT:-18093}
PROJECT=${CAST_DOCKER_PROJECT:-cast-test}
DC=(docker-compose -f docker/compose.host.yml -p "$PROJECT")
SERVICES=(redis hub-1 hub-2 lb)
T0=$SECONDS

passed=0
failed=0
ok()    { passed=$((passed + 1)); printf 'ok %d - %s\n' $((passed + failed)) "$1"; }
notok() {
    failed=$((failed + 1)); printf 'not ok %d - %s\n' $((passed + failed)) "$1"
    [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/#   /'
}
check() {  # name command...: ok when the command succeeds (its output on failure)
    local name=$1 out; shift
    if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$out"; fi
}
note() { printf '# %s\n' "$*"; }
finish() {
    printf 'docker: %d passed, %d failed\n' "$passed" "$failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# --- one run per machine -------------------------------------------------------
mkdir -p /run/lock
exec 9>/run/lock/cast-docker-test.lock
if ! flock -n 9; then
    note "another Docker test runs on this machine; waiting for it"
    flock -w 3600 9 || { notok "lock /run/lock/cast-docker-test.lock"; finish; exit 1; }
fi

# --- daemon and base image -------------------------------------------------------
had_ours=
[ -s /run/cast-dockerd.pid ] && kill -0 "$(cat /run/cast-dockerd.pid)" 2>/dev/null && had_ours=1
if out=$(scripts/docker-setup.sh 2>&1); then
    ok "docker-setup: a Docker daemon and the debian:bookworm image"
    printf '%s\n' "$out" | sed 's/^/# /'
else
    notok "docker-setup: a Docker daemon and the debian:bookworm image" "$out"
    finish; exit 1
fi
stop_ours=
if [ -z "$had_ours" ] && [ -s /run/cast-dockerd.pid ] \
        && kill -0 "$(cat /run/cast-dockerd.pid)" 2>/dev/null; then
    stop_ours=1
fi
note "setup took $((SECONDS - T0)) s"

logs=$ROOT/build/docker-test
mkdir -p "$logs"
cleanup() {
    docker rm -f "$PROJECT-single" >/dev/null 2>&1 || true
    "${DC[@]}" down --remove-orphans -t 30 >>"$logs/down.log" 2>&1 || true
    if [ -n "$stop_ours" ]; then
        scripts/docker-setup.sh --stop 2>&1 | sed 's/^/# /'
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the compose files ---------------------------------------------------------
check "docker/compose.yml is a valid compose file (docker-compose $(docker-compose version --short 2>/dev/null))" \
    docker-compose -f docker/compose.yml -p "$PROJECT" config -q
check "docker/compose.host.yml is a valid compose file" "${DC[@]}" config -q
# the two files describe one stack: equal but for networking
if out=$(/usr/bin/python3 - docker/compose.yml docker/compose.host.yml 2>&1 <<'PY'
import subprocess, sys, yaml
NET_ENV = {"CAST_LISTEN", "CAST_REDIS", "CAST_HUB_1", "CAST_HUB_2",
           "CAST_HEALTH_URL", "CAST_REDIS_BIND", "CAST_REDIS_PORT"}
def load(f):
    out = subprocess.run(["docker-compose", "-f", f, "config"], check=True,
                         capture_output=True, text=True).stdout
    svcs = yaml.safe_load(out)["services"]
    for s in svcs.values():
        for k in ("network_mode", "ports", "healthcheck"):
            s.pop(k, None)
        s.get("build", {}).pop("network", None)
        env = {k: v for k, v in s.get("environment", {}).items()
               if k not in NET_ENV}
        s["environment"] = env
    return svcs
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
for n in bad:
    print("%s:\n  %s: %s\n  %s: %s" % (n, sys.argv[1], a.get(n), sys.argv[2], b.get(n)))
sys.exit(1 if bad else 0)
PY
); then
    ok "compose.yml and compose.host.yml: the same services, images, files, users and limits (only networking differs)"
else
    notok "compose.yml and compose.host.yml: the same services but for networking" "$out"
fi
for s in "${SERVICES[@]}"; do
    nm=$("${DC[@]}" config 2>/dev/null \
        | awk -v s="  $s:" '$0 == s { f = 1; next } f && /^  [^ ]/ { f = 0 } f && /network_mode:/ { print $2 }')
    [ "$nm" = host ] && ok "$s: on the host's network (no private address)" \
        || notok "$s: on the host's network (no private address)" "network_mode: '$nm'"
done

# leftovers of an interrupted run
"${DC[@]}" down --remove-orphans -t 10 >"$logs/down.log" 2>&1 || true

# --- build -----------------------------------------------------------------------
# BuildKit (dockerd's own; compose 1.x runs `docker build` for it): a cached
# build takes a second where the classic builder copies the 1 GB build
# stage for every COPY --from on vfs storage
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
t=$SECONDS
built=
if "${DC[@]}" build >"$logs/build.log" 2>&1; then
    built=1
elif grep -q "Version '[^']*' for 'nginx' was not found" "$logs/build.log"; then
    # Debian replaced the nginx that the cached build stage was built
    # against (the runtime stage pins it): once more without the cache
    note "the cached build stage's nginx is gone from Debian's archive; rebuilding with --no-cache"
    "${DC[@]}" build --no-cache >"$logs/build.log" 2>&1 && built=1
fi
if [ -n "$built" ]; then
    ok "docker-compose build: images cast-hub and cast-redis from this checkout ($((SECONDS - t)) s)"
else
    notok "docker-compose build ($((SECONDS - t)) s; log: $logs/build.log)" "$(tail -n 30 "$logs/build.log")"
    finish; exit 1
fi
# drop the images this build superseded (labelled by docker/*Dockerfile)
docker image prune -f --filter label=org.cast-hub.stage >>"$logs/build.log" 2>&1 || true

img=$(docker image inspect -f '{{.Config.User}}|{{.Config.StopSignal}}|{{json .Config.Healthcheck.Test}}' cast-hub 2>&1)
case $img in
cast\|SIGQUIT\|*cast-healthcheck*) ok "image cast-hub: user cast, STOPSIGNAL SIGQUIT, HEALTHCHECK" ;;
*) notok "image cast-hub: user cast, STOPSIGNAL SIGQUIT, HEALTHCHECK" "$img" ;;
esac

# --- one container: the image's default configuration (local mode) ----------------
single=$PROJECT-single
docker rm -f "$single" >/dev/null 2>&1 || true
if out=$(docker run -d --name "$single" --network host \
        -e CAST_LISTEN="127.0.0.1:$CAST_SINGLE_PORT" --read-only \
        --tmpfs /run/cast:uid=10001,gid=10001 \
        --tmpfs /var/lib/nginx:uid=10001,gid=10001 cast-hub 2>&1); then
    ok "docker run cast-hub (default configuration, read-only, 127.0.0.1:$CAST_SINGLE_PORT)"
else
    notok "docker run cast-hub (default configuration)" "$out"
fi
for _ in $(seq 1 50); do
    curl -s -o /dev/null -m 2 "http://127.0.0.1:$CAST_SINGLE_PORT/api/hub/.well-known/fhircast-configuration" && break
    sleep 0.2
done
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$CAST_SINGLE_PORT/api/hub" \
    -d 'hub.mode=subscribe&hub.channel.type=websocket&hub.topic=single&hub.events=patient-open')
[ "$code" = 202 ] && ok "single container: subscribe answers 202" \
    || notok "single container: subscribe answers 202" "got $code; $(docker logs "$single" 2>&1 | tail -n 5)"
check "single container: the HEALTHCHECK command passes" docker exec "$single" cast-healthcheck
docker stop "$single" >/dev/null 2>&1   # docker's default 10 s grace
st=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$single" 2>&1)
[ "$st" = "exited 0" ] && ok "single container: docker stop -> nginx quits gracefully, exit code 0" \
    || notok "single container: docker stop -> exit code 0" "$st"
docker logs "$single" 2>&1 >/dev/null | grep -q 'signal 3 (SIGQUIT) received' \
    && ok "single container: the SIGQUIT of docker stop logged on stderr" \
    || notok "single container: the SIGQUIT of docker stop logged on stderr" "$(docker logs "$single" 2>&1 | tail -n 15)"
docker rm -f "$single" >/dev/null 2>&1

# --- up ----------------------------------------------------------------------------
t=$SECONDS
if "${DC[@]}" up -d >"$logs/up.log" 2>&1; then
    ok "docker-compose up -d ($((SECONDS - t)) s)"
else
    notok "docker-compose up -d" "$(tail -n 30 "$logs/up.log")"
    "${DC[@]}" logs --no-color >"$logs/stack.log" 2>&1
    finish; exit 1
fi

nets=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$nets" ] && ok "no network created for the stack (host's network only)" \
    || notok "no network created for the stack (host's network only)" \
             "$(docker network ls --filter "label=com.docker.compose.project=$PROJECT")"

cid() { "${DC[@]}" ps -q "$1" 2>/dev/null; }
declare -A C=()
for s in "${SERVICES[@]}"; do C[$s]=$(cid "$s"); done

t=$SECONDS
while :; do
    states=
    all=1
    for s in "${SERVICES[@]}"; do
        st=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "${C[$s]}" 2>/dev/null)
        states="$states $s=$st"
        [ "$st" = healthy ] || all=
    done
    [ -n "$all" ] && break
    [ $((SECONDS - t)) -lt 90 ] || break
    sleep 1
done
if [ -n "$all" ]; then
    ok "all four containers healthy (HEALTHCHECK) in $((SECONDS - t)) s"
else
    notok "all four containers healthy within 90 s" "$states"
    "${DC[@]}" logs --no-color >"$logs/stack.log" 2>&1
    sed -n '1,60p' "$logs/stack.log" | sed 's/^/#   /'
fi

for s in hub-1 hub-2 lb; do
    conf=/etc/cast/hub.conf
    [ "$s" = lb ] && conf=/etc/cast/lb.conf
    m=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{range .Mounts}}{{.Destination}}={{.RW}} {{end}}' "${C[$s]}" 2>&1)
    [ "$m" = "true $conf=false " ] \
        && ok "$s: read-only root file system, $conf mounted read-only" \
        || notok "$s: read-only root file system, $conf mounted read-only" "$m"
    u=$(docker top "${C[$s]}" -eo pid,uid,args 2>&1)
    n_nginx=$(printf '%s\n' "$u" | grep -c 'nginx: ')
    n_root=$(printf '%s\n' "$u" | awk '$2 == 0 || $2 == "root"' | grep -c 'nginx: ')
    [ "$n_nginx" -ge 2 ] && [ "$n_root" -eq 0 ] \
        && ok "$s: nginx master and workers run as uid 10001 ($n_nginx processes)" \
        || notok "$s: nginx master and workers run as a non-root user" "$u"
done

# Redis mode: each hub sees every worker of both hosts (they report every 2 s)
hosts=
for _ in $(seq 1 20); do
    st=$(curl -s -m 5 "http://127.0.0.1:$CAST_HUB1_PORT/cast/status")
    hosts=$(printf '%s' "$st" | grep -o '"host":"[^"]*"' | sort -u | tr '\n' ' ')
    case $st in *'"redis":"connected"'*) [ "$hosts" = '"host":"hub-1" "host":"hub-2" ' ] && break ;; esac
    sleep 0.5
done
case $st in
*'"redis":"connected"'*)
    [ "$hosts" = '"host":"hub-1" "host":"hub-2" ' ] \
        && ok "hub 1's cast_status: Redis connected, workers of hub-1 and hub-2" \
        || notok "hub 1's cast_status: Redis connected, workers of hub-1 and hub-2" "$st" ;;
*) notok "hub 1's cast_status: Redis connected" "$st" ;;
esac

ep=$(curl -s -m 5 "http://127.0.0.1:$CAST_HUB2_PORT/api/hub" \
    -d 'hub.mode=subscribe&hub.channel.type=websocket&hub.topic=direct&hub.events=patient-open')
case $ep in
*'"ws://127.0.0.1:'"$CAST_HUB2_PORT"'/bind/'*) ok "hub-2 asked directly: the endpoint names hub-2" ;;
*) notok "hub-2 asked directly: the endpoint names hub-2" "$ep" ;;
esac
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$CAST_LB_PORT/cast/status")
[ "$code" = 403 ] && ok "lb: the hubs' cast_status is not reachable through the balancer (403)" \
    || notok "lb: the hubs' cast_status is not reachable through the balancer" "got $code"

# --- the client: subscribe, bind, publish, graceful stop --------------------------
t=$SECONDS
out=$(/usr/bin/python3 scripts/docker-stack-check.py \
          "$CAST_LB_PORT" "$CAST_HUB1_PORT" "$CAST_HUB2_PORT" -- \
          "${DC[@]}" stop -t 30 hub-1 hub-2 2>&1)
rc=$?
printf '%s\n' "$out" > "$logs/client.log"
while IFS= read -r l; do
    case $l in
    "ok "*)     ok "client: ${l#ok }" ;;
    "not ok "*) notok "client: ${l#not ok }" ;;
    done)       ;;
    *)          echo "#   $l" ;;
    esac
done < "$logs/client.log"
[ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -qx done \
    && ok "client ran to the end, exit 0 ($((SECONDS - t)) s)" \
    || notok "client ran to the end, exit 0" "exit $rc"

for s in "${SERVICES[@]}"; do
    want="running 0 0"
    case $s in hub-*) want="exited 0 0" ;; esac
    st=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}' "${C[$s]}" 2>&1)
    [ "$st" = "$want" ] \
        && ok "$s: ${want%% *} (exit code 0), never restarted" \
        || notok "$s: ${want%% *} (exit code 0), never restarted" "status exit-code restarts: $st"
done

"${DC[@]}" logs --no-color >"$logs/stack.log" 2>&1
out1=$(docker logs "${C[hub-1]}" 2>/dev/null)
err1=$(docker logs "${C[hub-1]}" 2>&1 >/dev/null)
out2=$(docker logs "${C[hub-2]}" 2>/dev/null)
outlb=$(docker logs "${C[lb]}" 2>/dev/null)
printf '%s\n' "$out2" | grep -q '"POST /api/hub/docker-[0-9]* HTTP/1.1" 200 ' \
    && ok "hub-2: access log on stdout has the publish" \
    || notok "hub-2: access log on stdout has the publish" "$(printf '%s\n' "$out2" | tail -n 5)"
printf '%s\n' "$outlb" | grep -q '"POST /api/hub HTTP/1.1" 202 ' \
    && ok "lb: access log on stdout has the subscriptions" \
    || notok "lb: access log on stdout has the subscriptions" "$(printf '%s\n' "$outlb" | tail -n 5)"
printf '%s\n' "$err1" | grep -q 'signal 3 (SIGQUIT) received' \
    && ! printf '%s\n' "$err1" | grep -q '"GET /bind/' \
    && ! printf '%s\n' "$out1" | grep -q '\[notice\]' \
    && printf '%s\n' "$out1" | grep -q '"GET /bind/[^ ]* HTTP/1.1" 101 ' \
    && ok "hub-1: error log on stderr (the SIGQUIT), access log on stdout (the 101 of the bind)" \
    || notok "hub-1: error log on stderr, access log on stdout" \
             "$(printf 'stdout:\n%s\nstderr:\n%s\n' "$(printf '%s\n' "$out1" | tail -n 4)" "$(printf '%s\n' "$err1" | tail -n 4)")"
bad=$(grep -E '\[(alert|crit|emerg)\]|signal (6|11|9) ' "$logs/stack.log" || true)
[ -z "$bad" ] && ok "no alert, crit, emerg or crash in the stack's logs" \
    || notok "no alert, crit, emerg or crash in the stack's logs" "$bad"

# --- down: nothing left ------------------------------------------------------------
t=$SECONDS
if "${DC[@]}" down --remove-orphans -t 30 >"$logs/down.log" 2>&1; then
    ok "docker-compose down ($((SECONDS - t)) s)"
else
    notok "docker-compose down" "$(tail -n 20 "$logs/down.log")"
fi
left=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
[ -z "$left" ] && ok "no container of the stack left" \
    || notok "no container of the stack left" "$left"
# vfs stores every layer whole: each change of the checkout leaves about
# 2 GB of build cache that BuildKit's own accounting (and so its garbage
# collector) does not see.  Past CAST_DOCKER_KEEP_GB of Docker storage, drop
# the build cache of the dockerd docker-setup.sh started (the next build
# reinstalls the build stage's packages once); never of another daemon.
root=$(docker info -f '{{.DockerRootDir}}' 2>/dev/null)
used=$(du -sm "$root" 2>/dev/null | cut -f1)
if [ -n "$used" ] && [ "$used" -gt $(( ${CAST_DOCKER_KEEP_GB:-20} * 1024 )) ]; then
    pid=$(cat /run/cast-dockerd.pid 2>/dev/null)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
        docker builder prune -af >/dev/null 2>&1
        note "Docker storage was $used MB: build cache dropped, now $(du -sm "$root" | cut -f1) MB"
    else
        note "Docker storage is $used MB; consider 'docker builder prune'"
    fi
fi
note "Docker test took $((SECONDS - T0)) s; logs in $logs"
finish
