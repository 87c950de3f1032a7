#!/usr/bin/env bash
# bench/run.sh -- the Cast hub (ngx_http_cast_module) and nchan side by side,
# in one run, on this machine. See bench/README.md.
#
#   bench/run.sh                   all scenarios (a few minutes)
#   SCENARIOS="a c" bench/run.sh   a subset
#
# Builds castbench and the module, writes two nginx configurations into a
# temporary prefix (ours on 127.0.0.1:$CAST_PORT, nchan on
# 127.0.0.1:$NCHAN_PORT, one worker each), starts both, runs castbench
# against each for every scenario, prints a side-by-side table and writes
# bench/results/<date>.md. Both nginx instances are restarted before every
# scenario (so memory figures start from a fresh worker) and stopped at the
# end, however the script ends.
#
# Environment (defaults in brackets):
#   SCENARIOS      which of a b c d p r l to run            [a b c d p r l]
#   RUNS           runs of every scenario; the table shows medians     [1]
#   A_SUBS A_TOPICS A_RATE A_DURATION      scenario a, d     [1000 1 50 20]
#   WARMUP         publishing seconds before measuring (a, d, p)         [2]
#   B_SUBS B_TOPICS                        scenario b            [5000 100]
#   C_DURATION C_CONNS C_TOPICS            scenario c, r          [10 16 1]
#   P_SUBS P_RATE P_DURATION               scenario p          [100 500 20]
#   L_SUBS L_SLOW L_RATE L_DURATION L_PAYLOAD L_SLOW_HZ
#                  scenario l (latest-value)      [10 1 60 20 8192 5]
#   L_SNDBUF       sndbuf of scenario l's listen sockets             [16k]
#   L_CAST_PORT L_NCHAN_PORT L_BASE_PORT   scenario l     [18086 18087 18088]
#   PING_INTERVAL  seconds between server pings, both hubs, all runs  [5]
#   R_WORKERS      workers of both hubs in Redis mode (scenario r)      [2]
#   CAST_PORT NCHAN_PORT                   local mode        [18080 18081]
#   CAST_REDIS_PORT NCHAN_REDIS_PORT       Redis mode        [18082 18083]
#   REDIS_PORT     first of two redis-server ports (one per hub)   [16379]
#   NGINX_BIN      nginx binary                            [/usr/sbin/nginx]
#   REDIS_BIN      redis-server binary               [/usr/bin/redis-server]
#   NCHAN_SO       nchan module  [/usr/lib/nginx/modules/ngx_nchan_module.so]
#   CAST_SO        our module          [<repo>/build/ngx_http_cast_module.so]
#   NICE           nice level of the hubs, redis-server and castbench, e.g.
#                  -5 on a machine others load too (root only)         [0]
#   BASE_SO        another build of our module (e.g. of an earlier commit):
#                  run as a third hub "base" in every scenario, with its
#                  own column and the ratio cast/base                  [none]
#   BASE_PORT BASE_REDIS_PORT  its ports                      [18084 18085]
#   SKIP_BUILD=1   do not run `make -C <repo> build`
#   KEEP=1         keep the temporary prefix (configs, logs) after the run
#   RESULTS_DIR    where <date>.md goes                       [bench/results]
#   UPDATE_README=0  leave the results section of bench/README.md alone
#   LOG_LEVEL      error_log level of every hub: notice, the level a
#                  production proxy runs at or below; info adds our
#                  per-subscription lines (created, bound, ended), which
#                  nchan does not write                           [notice]
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
NCHAN_SO=${NCHAN_SO:-/usr/lib/nginx/modules/ngx_nchan_module.so}
CAST_SO=${CAST_SO:-$ROOT/build/ngx_http_cast_module.so}
CAST_PORT=${CAST_PORT:-18080}
NCHAN_PORT=${NCHAN_PORT:-18081}
CAST_REDIS_PORT=${CAST_REDIS_PORT:-18082}
NCHAN_REDIS_PORT=${NCHAN_REDIS_PORT:-18083}
REDIS_PORT=${REDIS_PORT:-16379}
BASE_SO=${BASE_SO:-}
BASE_PORT=${BASE_PORT:-18084}
BASE_REDIS_PORT=${BASE_REDIS_PORT:-18085}
REDIS_BIN=${REDIS_BIN:-/usr/bin/redis-server}
SCENARIOS=${SCENARIOS:-a b c d p r l}
RUNS=${RUNS:-1}
LOG_LEVEL=${LOG_LEVEL:-notice}
A_SUBS=${A_SUBS:-1000}
A_TOPICS=${A_TOPICS:-1}
A_RATE=${A_RATE:-50}
A_DURATION=${A_DURATION:-20}
WARMUP=${WARMUP:-2}
B_SUBS=${B_SUBS:-5000}
B_TOPICS=${B_TOPICS:-100}
C_DURATION=${C_DURATION:-10}
C_CONNS=${C_CONNS:-16}
C_TOPICS=${C_TOPICS:-1}
P_SUBS=${P_SUBS:-100}
P_RATE=${P_RATE:-500}
P_DURATION=${P_DURATION:-20}
L_SUBS=${L_SUBS:-10}
L_SLOW=${L_SLOW:-1}
L_RATE=${L_RATE:-60}
L_DURATION=${L_DURATION:-20}
L_PAYLOAD=${L_PAYLOAD:-8192}
L_SLOW_HZ=${L_SLOW_HZ:-5}
L_SNDBUF=${L_SNDBUF:-16k}
L_CAST_PORT=${L_CAST_PORT:-18086}
L_NCHAN_PORT=${L_NCHAN_PORT:-18087}
L_BASE_PORT=${L_BASE_PORT:-18088}
PING_INTERVAL=${PING_INTERVAL:-5}
R_WORKERS=${R_WORKERS:-2}
NICE=${NICE:-0}
NICE_CMD=()
[ "$NICE" != 0 ] && NICE_CMD=(nice -n "$NICE")
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
UPDATE_README=${UPDATE_README:-1}
CASTBENCH=$BENCH/build/castbench

say() { printf '== %s\n' "$*"; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 2; }

command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
[ -x "$NGINX_BIN" ] || die "$NGINX_BIN not found"
[ -f "$NCHAN_SO" ] || die "$NCHAN_SO not found (apt-get install libnginx-mod-nchan)"
case " $SCENARIOS " in *" r "*)
    [ -x "$REDIS_BIN" ] || die "$REDIS_BIN not found (apt-get install redis-server)" ;;
esac

# ---------------------------------------------------------------- build
say "building castbench"
mkdir -p "$BENCH/build"
cc -O2 -Wall -Wextra -Werror -o "$CASTBENCH" "$BENCH/castbench.c"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building the module (make -C $ROOT build)"
    make -s -C "$ROOT" build
fi
[ -f "$CAST_SO" ] || die "$CAST_SO not found"

# ---------------------------------------------------------------- prefix
PREFIX=$(mktemp -d /tmp/castbench.XXXXXX)
chmod 755 "$PREFIX"
OUT=$PREFIX/out
mkdir -p "$OUT"

# L: the local-mode hubs, R: the Redis-mode hubs
L="cast nchan"
R="rcast rnchan"
if [ -n "$BASE_SO" ]; then
    [ -f "$BASE_SO" ] || die "$BASE_SO not found"
    L="cast base nchan"
    R="rcast rbase rnchan"
fi
HUBS="$L $R"
declare -A MASTER WORKERS REDIS_PID
cleanup() {
    local rc=$? n
    for n in $HUBS; do
        stop_hub "$n"
    done
    for n in $R; do
        stop_redis "$n"
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "bench: configs and logs kept in $PREFIX"
    else
        rm -rf "$PREFIX"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# the port of a hub; the castbench mode of a hub; its Redis port
hub_port() {
    case $1 in
    cast) echo "$CAST_PORT" ;;
    nchan) echo "$NCHAN_PORT" ;;
    rcast) echo "$CAST_REDIS_PORT" ;;
    rnchan) echo "$NCHAN_REDIS_PORT" ;;
    base) echo "$BASE_PORT" ;;
    rbase) echo "$BASE_REDIS_PORT" ;;
    esac
}
hub_mode() {
    case $1 in *nchan) echo nchan ;; *) echo cast ;; esac
}
# scenario l's server of a local-mode hub: the same locations, a small
# send buffer (so that the kernel holds little of a slow subscriber's
# backlog and the hub's queue is what shows)
l_port() {
    case $1 in
    cast) echo "$L_CAST_PORT" ;;
    nchan) echo "$L_NCHAN_PORT" ;;
    base) echo "$L_BASE_PORT" ;;
    esac
}
redis_port() {
    case $1 in
    rcast) echo "$REDIS_PORT" ;;
    rnchan) echo $((REDIS_PORT + 1)) ;;
    rbase) echo $((REDIS_PORT + 2)) ;;
    esac
}

# All: 20,000 connections, no access log, keep-alive connections that last
# (the max-rate scenario sends far more than the default 1000 requests per
# connection).  Local mode: one worker; Redis mode: R_WORKERS.
common_top() {
    cat <<EOF2
worker_processes  $1;
worker_rlimit_nofile  20000;
pid  logs/nginx.pid;
error_log  logs/error.log  $LOG_LEVEL;
events {
    worker_connections  20000;
}
EOF2
}
common_http() {
    local name=$1
    cat <<EOF2
    access_log  off;
    keepalive_requests  1000000;
    client_body_temp_path  $PREFIX/$name/tmp/client_body;
    proxy_temp_path        $PREFIX/$name/tmp/proxy;
    fastcgi_temp_path      $PREFIX/$name/tmp/fastcgi;
    uwsgi_temp_path        $PREFIX/$name/tmp/uwsgi;
    scgi_temp_path         $PREFIX/$name/tmp/scgi;
EOF2
}

cast_config() {  # cast_config <name> <workers> [redis port]
    local n=$1 so=$CAST_SO
    case $n in *base) so=$BASE_SO ;; esac
    echo "# castbench: our hub (conf-examples/local.conf + bench settings)"
    echo "load_module  $so;"
    common_top "$2"
    echo "http {"
    common_http "$n"
    [ -n "${3:-}" ] && echo "    cast_redis  127.0.0.1:$3;"
    cat <<EOF2
    client_max_body_size  16m;
    cast_ping_interval  ${PING_INTERVAL}s;

    server {
        listen       127.0.0.1:$(hub_port "$n");
EOF2
    [ -z "${3:-}" ] && echo "        listen       127.0.0.1:$(l_port "$n") sndbuf=$L_SNDBUF;"
    cat <<EOF2
        server_name  localhost;

        location /api/hub {
            cast_hub;
        }

        location /bind/ {
            cast_websocket;
        }

        location = /cast/status {
            cast_status;
            allow 127.0.0.1;
            deny  all;
        }
    }
}
EOF2
}

nchan_config() {  # nchan_config <name> <workers> [redis port]
    local n=$1
    echo "# castbench: nchan"
    echo "load_module  $NCHAN_SO;"
    common_top "$2"
    echo "http {"
    common_http "$n"
    if [ -n "${3:-}" ]; then
        # nchan_redis_url/nchan_use_redis are inherited (nchan_redis_pass
        # is not, see reference/nchan-lessons.md)
        echo "    nchan_redis_url  redis://127.0.0.1:$3;"
        echo "    nchan_use_redis  on;"
    fi
    cat <<EOF2

    server {
        listen       127.0.0.1:$(hub_port "$n");
EOF2
    [ -z "${3:-}" ] && echo "        listen       127.0.0.1:$(l_port "$n") sndbuf=$L_SNDBUF;"
    cat <<EOF2
        server_name  localhost;

        # [\w-] rather than \w: the topics are bench-<k>
        location ~ /pub/([\w-]+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
        }

        location ~ /sub/([\w-]+)\$ {
            nchan_subscriber websocket;
            nchan_channel_id \$1;
            nchan_websocket_ping_interval $PING_INTERVAL;
        }
    }
}
EOF2
}

write_configs() {
    local n
    for n in $HUBS; do
        mkdir -p "$PREFIX/$n/logs" "$PREFIX/$n/tmp"
    done
    mkdir -p "$PREFIX/redis"
    cast_config cast 1 > "$PREFIX/cast/nginx.conf"
    nchan_config nchan 1 > "$PREFIX/nchan/nginx.conf"
    cast_config rcast "$R_WORKERS" "$(redis_port rcast)" > "$PREFIX/rcast/nginx.conf"
    if [ -n "$BASE_SO" ]; then
        cast_config base 1 > "$PREFIX/base/nginx.conf"
        cast_config rbase "$R_WORKERS" "$(redis_port rbase)" > "$PREFIX/rbase/nginx.conf"
    fi
    nchan_config rnchan "$R_WORKERS" "$(redis_port rnchan)" > "$PREFIX/rnchan/nginx.conf"
}

# ---------------------------------------------------------------- servers

# a fresh redis-server for a Redis-mode hub (no persistence)
start_redis() {
    local n=$1 port i
    port=$(redis_port "$n")
    "${NICE_CMD[@]}" "$REDIS_BIN" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$PREFIX/redis" --logfile "$PREFIX/redis/$n.log" &
    REDIS_PID[$n]=$!
    for i in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "redis-server on $port did not start"
}

# only the redis-server this script started (its pid)
stop_redis() {
    local n=$1 p
    p=${REDIS_PID[$n]:-}
    [ -n "$p" ] || return 0
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    REDIS_PID[$n]=
}

start_hub() {
    local n=$1 i m w want
    want=1
    case $n in r*) want=$R_WORKERS ;; esac
    : > "$PREFIX/$n/logs/error.log"      # one scenario per log (scan_logs)
    "$NGINX_BIN" -t -q -p "$PREFIX/$n/" -e logs/error.log \
        -c "$PREFIX/$n/nginx.conf" || die "nginx -t failed for $n"
    "${NICE_CMD[@]}" "$NGINX_BIN" -p "$PREFIX/$n/" -e logs/error.log \
        -c "$PREFIX/$n/nginx.conf" || die "nginx ($n) did not start"
    for i in $(seq 100); do
        m=$(cat "$PREFIX/$n/logs/nginx.pid" 2>/dev/null || true)
        w=
        [ -n "$m" ] && w=$(pgrep -P "$m" | paste -sd, - || true)
        [ -n "$w" ] && [ "$(echo "$w" | tr ',' '\n' | wc -l)" -ge "$want" ] && break
        sleep 0.05
    done
    [ -n "$w" ] || die "no worker process for $n"
    MASTER[$n]=$m
    WORKERS[$n]=$w
}

# only the master this script started (its pid, never a name)
stop_hub() {
    local n=$1 m i
    m=${MASTER[$n]:-}
    [ -n "$m" ] || return 0
    kill -QUIT "$m" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$m" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$m" 2>/dev/null; then
        echo "bench: $n nginx ($m) did not quit in 10 s; TERM" >&2
        kill -TERM "$m" 2>/dev/null || true
        sleep 1
    fi
    MASTER[$n]=
}

# restart_hubs <hub>...: fresh workers (and a fresh Redis) for every run
restart_hubs() {
    local n
    for n in "$@"; do
        stop_hub "$n"
        case $n in r*) stop_redis "$n"; start_redis "$n" ;; esac
        start_hub "$n"
    done
}

# the workers must still be the ones we started (a crash respawns them)
check_workers() {
    local n=$1 w now
    now=$(pgrep -P "${MASTER[$n]}" | paste -sd, - || true)
    if [ "$now" != "${WORKERS[$n]}" ]; then
        echo "!!! $n: worker(s) ${WORKERS[$n]} replaced by ${now:-nothing} (crash?) !!!" \
            | tee -a "$OUT/anomalies"
    fi
}

# ---------------------------------------------------------------- runs
CMDS=()

# run <id> <hub> castbench-args...: run number $K; <id>.<K>.json
run() {
    local id=$1 n=$2 port mode rc rid
    shift 2
    port=$(hub_port "$n")
    mode=$(hub_mode "$n")
    rid=$id.$K
    local cmd=("$CASTBENCH" --mode "$mode" --port "$port" --label "$id" "$@")
    [ "$K" = 1 ] && CMDS+=("castbench --mode $mode --port $port --label $id $* --pid <${n} worker(s)>")
    say "$rid: ${cmd[*]} --pid ${WORKERS[$n]}"
    rc=0
    "${NICE_CMD[@]}" "${cmd[@]}" --pid "${WORKERS[$n]}" > "$OUT/$rid.txt" 2> "$OUT/$rid.err" || rc=$?
    grep -v '^{' "$OUT/$rid.txt" | sed 's/^/   /'
    sed 's/^/   /' "$OUT/$rid.err"
    grep '^{' "$OUT/$rid.txt" | tail -1 > "$OUT/$rid.json" || true
    if [ ! -s "$OUT/$rid.json" ]; then
        echo "!!! $rid: castbench failed (exit $rc), no result !!!" | tee -a "$OUT/anomalies"
        rm -f "$OUT/$rid.json"
    elif [ "$rc" != 0 ]; then
        echo "!!! $rid: castbench reported an anomaly (exit $rc): $(grep -E '^(!!!|first error)' "$OUT/$rid.txt" | tr '\n' ' ') !!!" \
            | tee -a "$OUT/anomalies"
    fi
    check_workers "$n"
    if [ "$mode" = cast ]; then
        curl -s -m 2 "http://127.0.0.1:$port/cast/status" > "$OUT/$rid.status" || true
        [ -s "$OUT/$rid.status" ] && echo "   hub status: $(cat "$OUT/$rid.status")"
    fi
    sleep 1
}

# error.log lines at error level or worse, and worker exits
scan_logs() {
    local tag=$1 n f
    shift
    for n in "$@"; do
        f=$PREFIX/$n/logs/error.log
        [ -f "$f" ] || continue
        if grep -E '\[(error|crit|alert|emerg)\]|exited on signal|core dumped' "$f" \
            > "$OUT/$tag-$n.errors"; then
            echo "!!! $n error.log ($tag): $(wc -l < "$OUT/$tag-$n.errors") line(s) at error level or worse, first: $(head -1 "$OUT/$tag-$n.errors") !!!" \
                | tee -a "$OUT/anomalies"
        fi
        cat "$f" >> "$OUT/$tag-$n.error.log"
    done
}

write_configs
START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
LOADS=()

for s in $SCENARIOS; do
    for K in $(seq "$RUNS"); do
    LOADS+=("$s/$K: $(cut -d' ' -f1 /proc/loadavg)")
    case $s in
    a)
        restart_hubs $L
        say "scenario a ($K/$RUNS): $A_SUBS subscribers on $A_TOPICS topic(s), $A_RATE events/s, ${A_DURATION} s"
        for n in $L; do
            run a-$n $n --subs "$A_SUBS" --topics "$A_TOPICS" --rate "$A_RATE" \
                --duration "$A_DURATION" --warmup "$WARMUP"
        done
        scan_logs "$s" $L ;;
    b)
        restart_hubs $L
        say "scenario b ($K/$RUNS): $B_SUBS idle subscribers over $B_TOPICS topics"
        for n in $L; do
            run b-$n $n --subs "$B_SUBS" --topics "$B_TOPICS" --duration 0 --settle 2
        done
        scan_logs "$s" $L ;;
    c)
        restart_hubs $L
        say "scenario c ($K/$RUNS): maximum publish rate, 0 subscribers, ${C_DURATION} s, $C_CONNS connections"
        for n in $L; do
            run c-$n $n --max-rate --topics "$C_TOPICS" --duration "$C_DURATION" \
                --warmup 1 --conns "$C_CONNS"
        done
        scan_logs "$s" $L ;;
    d)
        D=${L% nchan}
        restart_hubs $D
        say "scenario d ($K/$RUNS): as a, published over a WebSocket (cast only)"
        for n in $D; do
            run d-$n $n --subs "$A_SUBS" --topics "$A_TOPICS" --rate "$A_RATE" \
                --duration "$A_DURATION" --warmup "$WARMUP" --ws-publish
        done
        scan_logs "$s" $D ;;
    p)
        restart_hubs $L
        say "scenario p ($K/$RUNS): $P_SUBS subscribers on 1 topic, $P_RATE events/s, ${P_DURATION} s, pings every ${PING_INTERVAL} s"
        for n in $L; do
            run p-$n $n --subs "$P_SUBS" --topics 1 --rate "$P_RATE" \
                --duration "$P_DURATION" --warmup "$WARMUP"
        done
        scan_logs "$s" $L ;;
    r)
        restart_hubs $R
        say "scenario r ($K/$RUNS): Redis mode ($R_WORKERS workers), maximum publish rate, ${C_DURATION} s, $C_CONNS connections"
        for n in $R; do
            run r-$n $n --max-rate --topics "$C_TOPICS" --duration "$C_DURATION" \
                --warmup 1 --conns "$C_CONNS"
        done
        scan_logs "$s" $R ;;
    l)
        restart_hubs $L
        say "scenario l ($K/$RUNS): latest-value, $L_SUBS subscribers on 1 topic ($L_SLOW reading $L_SLOW_HZ times/s), $L_RATE events/s of $L_PAYLOAD B, ${L_DURATION} s, listen sndbuf=$L_SNDBUF"
        for n in $L; do
            lat=
            [ "$(hub_mode "$n")" = cast ] && lat=--latest
            run l-$n $n --port "$(l_port "$n")" --subs "$L_SUBS" --topics 1 \
                --slow "$L_SLOW" --slow-hz "$L_SLOW_HZ" $lat \
                --rate "$L_RATE" --payload "$L_PAYLOAD" \
                --duration "$L_DURATION" --warmup "$WARMUP"
        done
        # the same load on our hub without latest-value, for comparison
        restart_hubs cast
        run l-off-cast cast --port "$(l_port cast)" --subs "$L_SUBS" \
            --topics 1 --slow "$L_SLOW" --slow-hz "$L_SLOW_HZ" \
            --rate "$L_RATE" --payload "$L_PAYLOAD" \
            --duration "$L_DURATION" --warmup "$WARMUP"
        scan_logs "$s" $L ;;
    *) die "unknown scenario $s" ;;
    esac
    done
done
for n in $HUBS; do
    stop_hub "$n"
done
for n in $R; do
    stop_redis "$n"
done
END=$(date +%s)

# ---------------------------------------------------------------- medians
# <id>.json: the median of every numeric field over the runs of <id>
# (negative values mean "not measured" and are left out); <id>.min.json and
# <id>.max.json the spread.  setup_cpu_us_per_sub is derived per run.
merge_runs() {
    local id op
    for id in $(ls "$OUT" | sed -n 's/^\(.*\)\.[0-9][0-9]*\.json$/\1/p' | sort -u); do
        for op in med min max; do
            jq -s --arg op "$op" '
                def med: sort | if length % 2 == 1 then .[length / 2 | floor]
                                else (.[length / 2 - 1] + .[length / 2]) / 2 end;
                map(if (.setup_cpu_ms // -1) >= 0 and (.subs_ready // 0) > 0
                    then .setup_cpu_us_per_sub = .setup_cpu_ms * 1000 / .subs_ready
                    else . end)
                | . as $runs
                | (map(keys) | add | unique) as $ks
                | reduce $ks[] as $k ({runs: ($runs | length)};
                    ([$runs[][$k]] | map(select(. != null))) as $v
                    | .[$k] = (if ($v | length) > 0 and ($v | all(type == "number"))
                               then ($v | map(select(. >= 0))
                                     | if length == 0 then -1
                                       elif $op == "min" then min
                                       elif $op == "max" then max
                                       else med end)
                               else $v[0] end))
            ' "$OUT/$id".[0-9]*.json > "$OUT/$id.$op.json"
        done
        cp "$OUT/$id.med.json" "$OUT/$id.json"
    done
}
merge_runs

# ---------------------------------------------------------------- table
# j <id> <field> [med|min|max]: the field ("" when absent or < 0)
j() {
    local f=$OUT/$1.${3:-med}.json
    [ -s "$f" ] || { echo ""; return; }
    jq -r --arg k "$2" '.[$k] // empty | if type == "number" and . < 0 then empty else . end' "$f"
}
fmt() {  # fmt <printf-format> <value>
    [ -n "$2" ] && printf "$1" "$2" || printf -- '-'
}
# cell <format> <id> <field>: the median, and the spread when RUNS > 1
cell() {
    local m lo hi
    m=$(j "$2" "$3")
    fmt "$1" "$m"
    if [ "$RUNS" -gt 1 ] && [ -n "$m" ]; then
        lo=$(j "$2" "$3" min); hi=$(j "$2" "$3" max)
        printf ' (%s–%s)' "$(fmt "$1" "$lo")" "$(fmt "$1" "$hi")"
    fi
}
ratio() {
    if [ -n "$1" ] && [ -n "$2" ] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else
        printf -- '-'
    fi
}
# check <ratio-or-value> <op> <limit>: "ok" / "MISSED"
check() {
    [ -n "$1" ] && [ "$1" != - ] || { printf -- '-'; return; }
    if awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
            exit !((op == "<=" && v <= l) || (op == ">=" && v >= l)) }'; then
        printf 'ok'
    else
        printf 'MISSED'
    fi
}

TABLE=$OUT/table.md
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
{
    if [ "$RUNS" -gt 1 ]; then
        echo "Medians of $RUNS runs (min–max in brackets); hubs restarted before every run."
    else
        echo "One run; hubs restarted before every scenario."
    fi
    echo
    if [ -n "$BASE_SO" ]; then
        echo "| scenario | figure | cast | base | nchan | cast/nchan | cast/base | target |"
        echo "|---|---|---|---|---|---|---|---|"
    else
        echo "| scenario | figure | cast | nchan | cast/nchan | target |"
        echo "|---|---|---|---|---|---|"
    fi
    row() {  # row <scenario> <figure> <format> <cast-id> <nchan-id> <field> [target-op target-limit [on ratio|value]]
        local c n r t=- b
        c=$(j "$4" "$6"); n=$(j "$5" "$6"); r=$(ratio "$c" "$n")
        if [ $# -ge 8 ]; then
            if [ "${9:-ratio}" = value ]; then
                t="$(check "$c" "$7" "$8") ($7 $8)"
            else
                t="$(check "$r" "$7" "$8") ($7 $8×)"
            fi
        fi
        if [ -n "$BASE_SO" ]; then
            b=${4/cast/base}
            echo "| $1 | $2 | $(cell "$3" "$4" "$6") | $(cell "$3" "$b" "$6") | $(cell "$3" "$5" "$6") | $r | $(ratio "$c" "$(j "$b" "$6")") | $t |"
        else
            echo "| $1 | $2 | $(cell "$3" "$4" "$6") | $(cell "$3" "$5" "$6") | $r | $t |"
        fi
    }
    # info <scenario> <figure> <cast> <nchan> [base]: a row without ratios
    info() {
        if [ -n "$BASE_SO" ]; then
            echo "| $1 | $2 | $3 | ${5:-} | $4 | | | |"
        else
            echo "| $1 | $2 | $3 | $4 | | |"
        fi
    }
    if has p; then
        info p "subscribers ready" "$(j p-cast subs_ready)/$P_SUBS" "$(j p-nchan subs_ready)/$P_SUBS" "$(j p-base subs_ready)/$P_SUBS"
        info p "deliveries expected / received" "$(j p-cast expected) / $(j p-cast received)" "$(j p-nchan expected) / $(j p-nchan received)" "$(j p-base expected) / $(j p-base received)"
        row p "pings while measuring" "%.0f" p-cast p-nchan pings_measured
        row p "latency p50 (ms), read" "%.3f" p-cast p-nchan lat_p50_ms
        row p "latency p99 (ms), read" "%.3f" p-cast p-nchan lat_p99_ms "<=" 1 value
        row p "latency max (ms), read" "%.2f" p-cast p-nchan lat_max_ms "<=" 5 value
        row p "latency p99 (ms), kernel rx" "%.3f" p-cast p-nchan klat_p99_ms
        row p "worker CPU per delivery (µs)" "%.2f" p-cast p-nchan worker_cpu_us_per_delivery
    fi
    if has a; then
        info a "subscribers ready" "$(j a-cast subs_ready)/$A_SUBS" "$(j a-nchan subs_ready)/$A_SUBS" "$(j a-base subs_ready)/$A_SUBS"
        info a "deliveries expected / received" "$(j a-cast expected) / $(j a-cast received)" "$(j a-nchan expected) / $(j a-nchan received)" "$(j a-base expected) / $(j a-base received)"
        row a "deliveries/s (measured)" "%.0f" a-cast a-nchan deliveries_per_s
        row a "worker CPU per delivery (µs)" "%.2f" a-cast a-nchan worker_cpu_us_per_delivery "<=" 0.5
        row a "latency p50 (ms), read" "%.2f" a-cast a-nchan lat_p50_ms
        row a "latency p99 (ms), read" "%.2f" a-cast a-nchan lat_p99_ms
        row a "latency max (ms), read" "%.2f" a-cast a-nchan lat_max_ms
        row a "latency p99 (ms), kernel rx" "%.2f" a-cast a-nchan klat_p99_ms
        row a "publish round trip p50 (ms)" "%.3f" a-cast a-nchan pub_rtt_p50_ms
        row a "memory per idle subscriber (B)" "%.0f" a-cast a-nchan mem_priv_bytes_per_sub "<=" 2600 value
        row a "generator CPU (s)" "%.2f" a-cast a-nchan generator_cpu_s
    fi
    if has b; then
        info b "subscribers ready" "$(j b-cast subs_ready)/$B_SUBS" "$(j b-nchan subs_ready)/$B_SUBS" "$(j b-base subs_ready)/$B_SUBS"
        row b "memory per idle subscriber (B), private" "%.0f" b-cast b-nchan mem_priv_bytes_per_sub "<=" 2600 value
        row b "memory per idle subscriber (B), Pss" "%.0f" b-cast b-nchan mem_pss_bytes_per_sub
        row b "worker CPU to connect all (ms)" "%.0f" b-cast b-nchan setup_cpu_ms
        row b "worker CPU per subscriber connect (µs; cast: subscribe + bind, nchan: bind)" "%.1f" b-cast b-nchan setup_cpu_us_per_sub "<=" 1.5
    fi
    if has c; then
        row c "accepted publishes/s" "%.0f" c-cast c-nchan publishes_per_s
        row c "worker CPU per publish (µs)" "%.2f" c-cast c-nchan worker_cpu_us_per_publish "<=" 1.0
        row c "publish round trip p99 (ms)" "%.3f" c-cast c-nchan pub_rtt_p99_ms
        row c "publish errors" "%s" c-cast c-nchan pub_errors
    fi
    if has d; then
        # nchan has no WebSocket publishing: compared with its scenario a
        info d "deliveries expected / received" "$(j d-cast expected) / $(j d-cast received)" "(nchan: a)" "$(j d-base expected) / $(j d-base received)"
        row d "worker CPU per delivery (µs)" "%.2f" d-cast a-nchan worker_cpu_us_per_delivery "<=" 0.5
        row d "latency p50 (ms), read" "%.2f" d-cast a-nchan lat_p50_ms
        row d "latency p99 (ms), read" "%.2f" d-cast a-nchan lat_p99_ms
        row d "latency p99 (ms), kernel rx" "%.2f" d-cast a-nchan klat_p99_ms
    fi
    if has r; then
        row r "accepted publishes/s, Redis mode ($R_WORKERS workers)" "%.0f" r-rcast r-rnchan publishes_per_s ">=" 2
        row r "worker CPU per publish (µs, all workers)" "%.2f" r-rcast r-rnchan worker_cpu_us_per_publish
        row r "publish round trip p99 (ms)" "%.3f" r-rcast r-rnchan pub_rtt_p99_ms
        row r "publish errors" "%s" r-rcast r-rnchan pub_errors
    fi
    if has l; then
        info l "fast subscribers: deliveries expected / received" "$(j l-cast expected) / $(j l-cast received)" "$(j l-nchan expected) / $(j l-nchan received)" "$(j l-base expected) / $(j l-base received)"
        row l "fast subscribers: deliveries missing" "%s" l-cast l-nchan missing "<=" 0 value
        row l "slow subscriber: events received" "%s" l-cast l-nchan slow_rx
        row l "slow subscriber: events skipped (replaced by a newer one)" "%s" l-cast l-nchan slow_skipped
        row l "slow subscriber: events per read, p50 (kernel buffers + hub)" "%s" l-cast l-nchan slow_per_read_p50
        row l "slow subscriber: events lacking after a read, max" "%s" l-cast l-nchan slow_behind_max "<=" 1 value
        row l "slow subscriber: events lacking at the end" "%s" l-cast l-nchan slow_behind_end "<=" 0 value
        row l "slow subscriber: closed by the hub" "%s" l-cast l-nchan slow_closed "<=" 0 value
        info l "worker private memory while publishing, begin / end / max (KB)" "$(j l-cast mem_priv_kb_measure_begin) / $(j l-cast mem_priv_kb_measure_end) / $(j l-cast mem_priv_kb_measure_max)" "$(j l-nchan mem_priv_kb_measure_begin) / $(j l-nchan mem_priv_kb_measure_end) / $(j l-nchan mem_priv_kb_measure_max)" "$(j l-base mem_priv_kb_measure_begin) / $(j l-base mem_priv_kb_measure_end) / $(j l-base mem_priv_kb_measure_max)"
        info l "cast without latest-value: slow received / skipped / per read p50" "$(j l-off-cast slow_rx) / $(j l-off-cast slow_skipped) / $(j l-off-cast slow_per_read_p50)" ""
    fi
} > "$TABLE"

# ---------------------------------------------------------------- report
DATE=$(date +%Y-%m-%d)
mkdir -p "$RESULTS_DIR"
REPORT=$RESULTS_DIR/$DATE.md
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
NCHAN_VER=$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo unknown)
NGINX_VER=$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" --no-optional-locks status --porcelain -- . ':!bench' 2>/dev/null | head -1)
{
    echo "# castbench results, $(date '+%Y-%m-%d %H:%M %Z')"
    echo
    echo "- machine: $(nproc) CPU(s), $CPU_MODEL; kernel $(uname -r); $(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo) RAM"
    echo "- load average before the run: $LOAD0 (other work on the machine shares the CPUs); 1-minute load before each run: ${LOADS[*]}"
    echo "- $NGINX_VER; nchan $NCHAN_VER; ngx_http_cast_module at $REV${DIRTY:+ (with uncommitted changes)}"
    [ -n "$BASE_SO" ] && echo "- base: $BASE_SO"
    echo "- both hubs: 1 worker (Redis mode, scenario r: $R_WORKERS workers and a redis-server each), worker_connections 20000, access_log off, keepalive_requests 1000000, server pings every $PING_INTERVAL s; nice $NICE (hubs, redis-server, castbench); restarted before every run; $RUNS run(s) of every scenario"
    echo "- total time $((END - START)) s"
    echo
    cat "$TABLE"
    echo
    echo "Ratios are cast/nchan: below 1 is better for CPU, latency and memory,"
    echo "above 1 is better for publishes/s. The targets are listed in"
    echo "bench/README.md (Targets). \"read\" latency is send → read by castbench; \"kernel rx\""
    echo "is send → the kernel's receive timestamp on the subscriber socket"
    echo "(SO_TIMESTAMPNS), which leaves out castbench's own reading delay."
    echo
    echo "## Anomalies"
    echo
    if [ -s "$OUT/anomalies" ]; then
        sed 's/^/- /' "$OUT/anomalies"
    else
        echo "None: no lost deliveries, no failed connections, no errors in either error.log, no worker restarts."
    fi
    echo
    echo "## Commands"
    echo
    echo '```sh'
    echo "NICE=$NICE LOG_LEVEL=$LOG_LEVEL SCENARIOS=\"$SCENARIOS\" RUNS=$RUNS L_SUBS=$L_SUBS L_SLOW=$L_SLOW L_RATE=$L_RATE L_DURATION=$L_DURATION L_PAYLOAD=$L_PAYLOAD L_SLOW_HZ=$L_SLOW_HZ L_SNDBUF=$L_SNDBUF A_SUBS=$A_SUBS A_TOPICS=$A_TOPICS A_RATE=$A_RATE A_DURATION=$A_DURATION WARMUP=$WARMUP B_SUBS=$B_SUBS B_TOPICS=$B_TOPICS C_DURATION=$C_DURATION C_CONNS=$C_CONNS P_SUBS=$P_SUBS P_RATE=$P_RATE P_DURATION=$P_DURATION PING_INTERVAL=$PING_INTERVAL R_WORKERS=$R_WORKERS bench/run.sh"
    for c in "${CMDS[@]}"; do echo "$c"; done
    echo '```'
    echo
    echo "## castbench output"
    for f in "$OUT"/*.[0-9]*.txt; do
        echo
        echo "### $(basename "$f" .txt)"
        echo
        echo '```'
        grep -v '^{' "$f"
        [ -s "${f%.txt}.status" ] && echo "hub status: $(cat "${f%.txt}.status")"
        echo '```'
    done
    echo
    echo "## Raw JSON"
    echo
    echo '```'
    cat "$OUT"/*.[0-9]*.json
    echo '```'
    echo
    echo "## nginx configurations"
    for n in $HUBS; do
        echo
        echo '```nginx'
        sed "s|$PREFIX|<prefix>|g" "$PREFIX/$n/nginx.conf"
        echo '```'
    done
} > "$REPORT"

if [ "$UPDATE_README" = 1 ] && grep -q '<!-- results:begin -->' "$BENCH/README.md" 2>/dev/null; then
    awk -v table="$TABLE" -v report="results/$DATE.md" -v when="$(date '+%Y-%m-%d %H:%M %Z')" \
        -v machine="$(nproc) × $CPU_MODEL" '
        /<!-- results:begin -->/ {
            print
            print ""
            print "From `bench/run.sh` on " when " (" machine "); full report: [" report "](" report ")."
            print ""
            while ((getline line < table) > 0) print line
            print ""
            skip = 1
            next
        }
        /<!-- results:end -->/ { skip = 0 }
        !skip { print }
    ' "$BENCH/README.md" > "$OUT/README.md" && cat "$OUT/README.md" > "$BENCH/README.md"
fi

echo
cat "$TABLE"
echo
if [ -s "$OUT/anomalies" ]; then
    echo "ANOMALIES:"
    sed 's/^/  /' "$OUT/anomalies"
fi
echo "report: $REPORT"
