#!/bin/bash
# cast-healthcheck: the image's HEALTHCHECK (docker/Dockerfile).
#
# GET $CAST_HEALTH_URL (http://host:port/path, an IPv4 address or a name)
# with bash's /dev/tcp, so the image needs no HTTP client.  Without
# CAST_HEALTH_URL: $CAST_HEALTH_PATH (/cast/status) on the address of
# $CAST_LISTEN (8080, 127.0.0.1:8081, ...; 127.0.0.1 when it names no
# address or all of them).  Healthy: status 200 and, for a cast_status
# answer, not "redis":"disconnected" (in Redis mode such a hub answers 503
# to every API request until Redis is back).
set -u

if [ -n "${CAST_HEALTH_URL:-}" ]; then
    url=$CAST_HEALTH_URL
else
    listen=${CAST_LISTEN:-8080}
    listen=${listen%% *}
    case $listen in
    *:*) addr=${listen%:*} lport=${listen##*:} ;;
    *)   addr= lport=$listen ;;
    esac
    case $addr in ''|'*'|0.0.0.0|'[::]') addr=127.0.0.1 ;; esac
    url=http://$addr:$lport${CAST_HEALTH_PATH:-/cast/status}
fi
rest=${url#http://}
[ "$rest" != "$url" ] || { echo "CAST_HEALTH_URL must start with http://: $url"; exit 1; }
hostport=${rest%%/*}
path=${rest#"$hostport"}
path=${path:-/}
host=${hostport%:*}
port=${hostport##*:}
[ "$host" != "$hostport" ] || port=80
host=${host#[}
host=${host%]}

exec 3<>"/dev/tcp/$host/$port" 2>/dev/null \
    || { echo "cannot connect to $hostport"; exit 1; }
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: cast-healthcheck\r\n\r\n' \
    "$path" "$hostport" >&3
answer=$(timeout 4 cat <&3) || { echo "no complete answer from $url"; exit 1; }
exec 3<&-

status=${answer%%$'\r'*}
case $status in
"HTTP/1."[01]" 200 "*) ;;
*) echo "$url: ${status:-no answer}"; exit 1 ;;
esac
case $answer in
*'"redis":"disconnected"'*) echo "$url: redis disconnected"; exit 1 ;;
esac
echo "$url: ok"
exit 0
