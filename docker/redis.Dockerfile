# Redis for docker/compose.yml, from Debian 12's redis-server package (the
# same Redis the test suite runs), as the unprivileged user `redis` (uid 10002).
#
#   docker build --network host -f docker/redis.Dockerfile -t cast-redis docker
#
# No persistence by default (the CMD below): the hub's records are
# leases and contexts that clients rebuild; add --appendonly yes and a
# volume on /var/lib/redis to keep them across restarts.

FROM debian:bookworm
LABEL org.cast-hub.stage=redis
# a fixed uid (10002) for the user the package would create, so that a
# tmpfs on /var/lib/redis can be given to it (compose.yml)
RUN useradd --uid 10002 --user-group --home-dir /var/lib/redis \
        --no-create-home --shell /usr/sbin/nologin redis \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        redis-server \
 && rm -rf /var/lib/apt/lists/*
USER redis
WORKDIR /var/lib/redis
EXPOSE 6379
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["sh", "-c", "redis-cli -h 127.0.0.1 -p \"$CAST_REDIS_PORT\" ping | grep -qx PONG"]
# CAST_REDIS_BIND / CAST_REDIS_PORT: where it listens (compose.host.yml sets
# a loopback port)
ENV CAST_REDIS_BIND=0.0.0.0 \
    CAST_REDIS_PORT=6379
CMD ["sh", "-c", "exec redis-server --bind \"$CAST_REDIS_BIND\" --port \"$CAST_REDIS_PORT\" --protected-mode no --save '' --appendonly no"]
