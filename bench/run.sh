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
#   SCENARIOS      which of a b c d to run                       [a b c d]
#   A_SUBS A_TOPICS A_RATE A_DURATION      scenario a, d     [1000 1 50 20]
#   WARMUP         publishing seconds before measuring (a, d)            [2]
#   B_SUBS B_TOPICS                        scenario b            [5000 100]
#   C_DURATION C_CONNS C_TOPICS            scenario c             [10 16 1]
#   CAST_PORT NCHAN_PORT                                     [18080 18081]
#   NGINX_BIN      nginx binary                            [/usr/sbin/nginx]
#   NCHAN_SO       nchan module  [/usr/lib/nginx/modules/ngx_nchan_module.so]
#   CAST_SO        our module          [<repo>/build/ngx_http_cast_module.so]
#   SKIP_BUILD=1   do not run `make -C <repo> build`
#   KEEP=1         keep the temporary prefix (configs, logs) after the run
#   RESULTS_DIR    where <date>.md goes                       [bench/results]
#   UPDATE_README=0  leave the results section of bench/README.md alone
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
NCHAN_SO=${NCHAN_SO:-/usr/lib/nginx/modules/ngx_nchan_module.so}
CAST_SO=${CAST_SO:-$ROOT/build/ngx_http_cast_module.so}
CAST_PORT=${CAST_PORT:-18080}
NCHAN_PORT=${NCHAN_PORT:-18081}
SCENARIOS=${SCENARIOS:-a b c d}
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
RESULTS_DIR=${RESULTS_DIR:-$BENCH/results}
UPDATE_README=${UPDATE_README:-1}
CASTBENCH=$BENCH/build/castbench

say() { printf '== %s\n' "$*"; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 2; }

command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
[ -x "$NGINX_BIN" ] || die "$NGINX_BIN not found"
[ -f "$NCHAN_SO" ] || die "$NCHAN_SO not found (apt-get install libnginx-mod-nchan)"

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

declare -A MASTER WORKERS
cleanup() {
    local rc=$?
    stop_hub cast
    stop_hub nchan
    if [ "${KEEP:-0}" = 1 ]; then
        echo "bench: configs and logs kept in $PREFIX"
    else
        rm -rf "$PREFIX"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both: one worker, 20,000 connections, no access log, keep-alive
# connections that last (the max-rate scenario sends far more than the
# default 1000 requests per connection).
common_top() {
    cat <<EOF
worker_processes  1;
worker_rlimit_nofile  20000;
pid  logs/nginx.pid;
error_log  logs/error.log  info;
events {
    worker_connections  20000;
}
EOF
}
common_http() {
    local name=$1
    cat <<EOF
    access_log  off;
    keepalive_requests  1000000;
    client_body_temp_path  $PREFIX/$name/tmp/client_body;
    proxy_temp_path        $PREFIX/$name/tmp/proxy;
    fastcgi_temp_path      $PREFIX/$name/tmp/fastcgi;
    uwsgi_temp_path        $PREFIX/$name/tmp/uwsgi;
    scgi_temp_path         $PREFIX/$name/tmp/scgi;
EOF
}

write_configs() {
    local n
    for n in cast nchan; do
        mkdir -p "$PREFIX/$n/logs" "$PREFIX/$n/tmp"
    done
    {
        echo "# castbench: our hub (conf-examples/local.conf + bench settings)"
        echo "load_module  $CAST_SO;"
        common_top
        echo "http {"
        common_http cast
        cat <<EOF
    client_max_body_size  16m;

    server {
        listen       127.0.0.1:$CAST_PORT;
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
EOF
    } > "$PREFIX/cast/nginx.conf"
    {
        echo "# castbench: nchan, one worker for a per-worker comparison"
        echo "load_module  $NCHAN_SO;"
        common_top
        echo "http {"
        common_http nchan
        cat <<EOF

    server {
        listen       127.0.0.1:$NCHAN_PORT;
        server_name  localhost;

        # [\w-] rather than \w: the topics are bench-<k>
        location ~ /pub/([\w-]+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
        }

        location ~ /sub/([\w-]+)\$ {
            nchan_subscriber websocket;
            nchan_channel_id \$1;
        }
    }
}
EOF
    } > "$PREFIX/nchan/nginx.conf"
}

# ---------------------------------------------------------------- nginx

start_hub() {
    local n=$1 i m w
    : > "$PREFIX/$n/logs/error.log"      # one scenario per log (scan_logs)
    "$NGINX_BIN" -t -q -p "$PREFIX/$n/" -e logs/error.log \
        -c "$PREFIX/$n/nginx.conf" || die "nginx -t failed for $n"
    "$NGINX_BIN" -p "$PREFIX/$n/" -e logs/error.log \
        -c "$PREFIX/$n/nginx.conf" || die "nginx ($n) did not start"
    for i in $(seq 100); do
        m=$(cat "$PREFIX/$n/logs/nginx.pid" 2>/dev/null || true)
        w=
        [ -n "$m" ] && w=$(pgrep -P "$m" | paste -sd, - || true)
        [ -n "$w" ] && break
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

restart_hubs() {
    stop_hub cast
    stop_hub nchan
    start_hub cast
    start_hub nchan
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

# run <id> <hub> castbench-args...
run() {
    local id=$1 n=$2 port rc
    shift 2
    if [ "$n" = cast ]; then port=$CAST_PORT; else port=$NCHAN_PORT; fi
    local cmd=("$CASTBENCH" --mode "$n" --port "$port" --label "$id" "$@")
    CMDS+=("castbench --mode $n --port $port --label $id $* --pid <${n} worker>")
    say "$id: ${cmd[*]} --pid ${WORKERS[$n]}"
    rc=0
    "${cmd[@]}" --pid "${WORKERS[$n]}" > "$OUT/$id.txt" 2> "$OUT/$id.err" || rc=$?
    grep -v '^{' "$OUT/$id.txt" | sed 's/^/   /'
    sed 's/^/   /' "$OUT/$id.err"
    grep '^{' "$OUT/$id.txt" | tail -1 > "$OUT/$id.json" || true
    if [ ! -s "$OUT/$id.json" ]; then
        echo "!!! $id: castbench failed (exit $rc), no result !!!" | tee -a "$OUT/anomalies"
        echo '{}' > "$OUT/$id.json"
    elif [ "$rc" != 0 ]; then
        echo "!!! $id: castbench reported an anomaly (exit $rc): $(grep -E '^(!!!|first error)' "$OUT/$id.txt" | tr '\n' ' ') !!!" \
            | tee -a "$OUT/anomalies"
    fi
    check_workers "$n"
    if [ "$n" = cast ]; then
        curl -s -m 2 "http://127.0.0.1:$CAST_PORT/cast/status" > "$OUT/$id.status" || true
        [ -s "$OUT/$id.status" ] && echo "   hub status: $(cat "$OUT/$id.status")"
    fi
    sleep 1
}

# error.log lines at error level or worse, and worker exits
scan_logs() {
    local tag=$1 n f
    for n in cast nchan; do
        f=$PREFIX/$n/logs/error.log
        [ -f "$f" ] || continue
        if grep -E '\[(error|crit|alert|emerg)\]|exited on signal|core dumped' "$f" \
            > "$OUT/$tag-$n.errors"; then
            echo "!!! $n error.log ($tag): $(wc -l < "$OUT/$tag-$n.errors") line(s) at error level or worse, first: $(head -1 "$OUT/$tag-$n.errors") !!!" \
                | tee -a "$OUT/anomalies"
        fi
        cp "$f" "$OUT/$tag-$n.error.log"
    done
}

write_configs
START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

for s in $SCENARIOS; do
    restart_hubs
    case $s in
    a)
        say "scenario a: $A_SUBS subscribers on $A_TOPICS topic(s), $A_RATE events/s, ${A_DURATION} s"
        for n in cast nchan; do
            run a-$n $n --subs "$A_SUBS" --topics "$A_TOPICS" --rate "$A_RATE" \
                --duration "$A_DURATION" --warmup "$WARMUP"
        done ;;
    b)
        say "scenario b: $B_SUBS idle subscribers over $B_TOPICS topics"
        for n in cast nchan; do
            run b-$n $n --subs "$B_SUBS" --topics "$B_TOPICS" --duration 0 --settle 2
        done ;;
    c)
        say "scenario c: maximum publish rate, 0 subscribers, ${C_DURATION} s, $C_CONNS connections"
        for n in cast nchan; do
            run c-$n $n --max-rate --topics "$C_TOPICS" --duration "$C_DURATION" \
                --warmup 1 --conns "$C_CONNS"
        done ;;
    d)
        say "scenario d: as a, published over a WebSocket (cast only)"
        run d-cast cast --subs "$A_SUBS" --topics "$A_TOPICS" --rate "$A_RATE" \
            --duration "$A_DURATION" --warmup "$WARMUP" --ws-publish ;;
    *) die "unknown scenario $s" ;;
    esac
    scan_logs "$s"
done
stop_hub cast
stop_hub nchan
END=$(date +%s)

# ---------------------------------------------------------------- table
# j <id> <field>: the field of a run's JSON line ("" when absent or < 0)
j() {
    local f=$OUT/$1.json
    [ -s "$f" ] || { echo ""; return; }
    jq -r --arg k "$2" '.[$k] // empty | if type == "number" and . < 0 then empty else . end' "$f"
}
fmt() {  # fmt <printf-format> <value>
    [ -n "$2" ] && printf "$1" "$2" || printf -- '-'
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
{
    echo "| scenario | figure | cast | nchan | cast/nchan | target |"
    echo "|---|---|---|---|---|---|"
    row() {  # row <scenario> <figure> <format> <cast-id> <nchan-id> <field> [target-op target-limit [on ratio|value]]
        local c n r t=-
        c=$(j "$4" "$6"); n=$(j "$5" "$6"); r=$(ratio "$c" "$n")
        if [ $# -ge 8 ]; then
            if [ "${9:-ratio}" = value ]; then
                t="$(check "$c" "$7" "$8") ($7 $8)"
            else
                t="$(check "$r" "$7" "$8") ($7 $8×)"
            fi
        fi
        echo "| $1 | $2 | $(fmt "$3" "$c") | $(fmt "$3" "$n") | $r | $t |"
    }
    case " $SCENARIOS " in *" a "*)
        echo "| a | subscribers ready | $(j a-cast subs_ready)/$A_SUBS | $(j a-nchan subs_ready)/$A_SUBS | | |"
        echo "| a | deliveries expected / received | $(j a-cast expected) / $(j a-cast received) | $(j a-nchan expected) / $(j a-nchan received) | | |"
        row a "deliveries/s (measured)" "%.0f" a-cast a-nchan deliveries_per_s
        row a "worker CPU per delivery (µs)" "%.2f" a-cast a-nchan worker_cpu_us_per_delivery "<=" 0.5
        row a "latency p50 (ms), read" "%.2f" a-cast a-nchan lat_p50_ms
        row a "latency p99 (ms), read" "%.2f" a-cast a-nchan lat_p99_ms "<=" 0.5
        row a "latency max (ms), read" "%.2f" a-cast a-nchan lat_max_ms
        row a "latency p50 (ms), kernel rx" "%.2f" a-cast a-nchan klat_p50_ms
        row a "latency p99 (ms), kernel rx" "%.2f" a-cast a-nchan klat_p99_ms "<=" 0.5
        row a "publish round trip p50 (ms)" "%.3f" a-cast a-nchan pub_rtt_p50_ms
        row a "memory per idle subscriber (B)" "%.0f" a-cast a-nchan mem_priv_bytes_per_sub "<=" 4096 value
        row a "generator CPU (s)" "%.2f" a-cast a-nchan generator_cpu_s
    ;; esac
    case " $SCENARIOS " in *" b "*)
        echo "| b | subscribers ready | $(j b-cast subs_ready)/$B_SUBS | $(j b-nchan subs_ready)/$B_SUBS | | |"
        row b "memory per idle subscriber (B), private" "%.0f" b-cast b-nchan mem_priv_bytes_per_sub "<=" 4096 value
        row b "memory per idle subscriber (B), Pss" "%.0f" b-cast b-nchan mem_pss_bytes_per_sub
        row b "worker CPU to connect (ms)" "%.0f" b-cast b-nchan setup_cpu_ms
    ;; esac
    case " $SCENARIOS " in *" c "*)
        row c "accepted publishes/s" "%.0f" c-cast c-nchan publishes_per_s ">=" 2
        row c "worker CPU per publish (µs)" "%.2f" c-cast c-nchan worker_cpu_us_per_publish
        row c "publish round trip p99 (ms)" "%.3f" c-cast c-nchan pub_rtt_p99_ms
        row c "publish errors" "%s" c-cast c-nchan pub_errors
    ;; esac
    case " $SCENARIOS " in *" d "*)
        # nchan has no WebSocket publishing: compared with its scenario a
        echo "| d | deliveries expected / received | $(j d-cast expected) / $(j d-cast received) | (nchan: a) | | |"
        row d "worker CPU per delivery (µs)" "%.2f" d-cast a-nchan worker_cpu_us_per_delivery "<=" 0.5
        row d "latency p50 (ms), read" "%.2f" d-cast a-nchan lat_p50_ms
        row d "latency p99 (ms), read" "%.2f" d-cast a-nchan lat_p99_ms "<=" 0.5
        row d "latency p99 (ms), kernel rx" "%.2f" d-cast a-nchan klat_p99_ms "<=" 0.5
    ;; esac
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
    echo "- load average before the run: $LOAD0 (other work on the machine shares the CPUs)"
    echo "- $NGINX_VER; nchan $NCHAN_VER; ngx_http_cast_module at $REV${DIRTY:+ (with uncommitted changes)}"
    echo "- both hubs: 1 worker, worker_connections 20000, access_log off, keepalive_requests 1000000; restarted before every scenario"
    echo "- total time $((END - START)) s"
    echo
    cat "$TABLE"
    echo
    echo "Ratios are cast/nchan: below 1 is better for CPU, latency and memory,"
    echo "above 1 is better for publishes/s. Targets are from DESIGN.md"
    echo "(Performance). \"read\" latency is send → read by castbench; \"kernel rx\""
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
    echo "bench/run.sh   # SCENARIOS=\"$SCENARIOS\" A_SUBS=$A_SUBS A_TOPICS=$A_TOPICS A_RATE=$A_RATE A_DURATION=$A_DURATION WARMUP=$WARMUP B_SUBS=$B_SUBS B_TOPICS=$B_TOPICS C_DURATION=$C_DURATION C_CONNS=$C_CONNS"
    for c in "${CMDS[@]}"; do echo "$c"; done
    echo '```'
    echo
    echo "## castbench output"
    for f in "$OUT"/*.txt; do
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
    cat "$OUT"/*.json
    echo '```'
    echo
    echo "## nginx configurations"
    for n in cast nchan; do
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
