#!/bin/bash
# cast-healthcheck: the image's HEALTHCHECK (docker/Dockerfile).
#
# GET $CAST_HEALTH_URL (http://host:port/path, an IPv4 address or a name;
# default http://127.0.0.1:8080/cast/status) with bash's /dev/tcp, so the
# image needs no HTTP client.  Healthy: status 200 and, for a cast_status
# answer, not "redis":"disconnected" (in Redis mode such a hub answers 503
# to every API request until Redis is back).
set -u

url=${CAST_HEALTH_URL:-http://127.0.0.1:8080/cast/status}
rest=${url#http://}
[ "$rest" != "$url" ] || { echo "CAST_HEALTH_URL must start with http://: $url"; exit 1; }
hostport=${rest%%/*}
path=${rest#"$hostport"}
path=${path:-/}
host=${hostport%:*}
port=${hostport##*:}
[ "$host" != "$hostport" ] || port=80

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
