
/*
 * ngx_http_cast_module: the Redis connection layer.
 *
 * One ngx_http_cast_redis_t is one hiredis async connection driven by the
 * worker's event loop: non-blocking connect, AUTH, CLIENT SETNAME, SELECT,
 * command and connect timeouts, health PINGs, and reconnects with backoff
 * (100ms, doubling, at most 5s).  A host name with several addresses:
 * a connect failure moves on to the next address at once; the backoff
 * starts when every address has failed.  Works with hiredis 0.14 and 1.x.
 *
 * Rules for callers:
 *   - create and start connections in init_process (or later), never in
 *     the configuration phase; destroy them in exit_process;
 *   - reply callbacks get reply == NULL when the connection goes away
 *     (loss, timeout, destroy); SUBSCRIBE callbacks are called for every
 *     message until then; ac->data is the ngx_http_cast_redis_t;
 *   - do not call ngx_http_cast_redis_destroy() from a reply callback or
 *     from on_state; commands may be sent from both;
 *   - on_state(rds, 1, data) is called when the connection is ready,
 *     on_state(rds, 0, data) when a ready connection is lost; whether the
 *     NULL replies of its pending commands come before or after
 *     on_state(0) depends on the hiredis version;
 *   - command timeouts do not apply to SUBSCRIBE-family callbacks; with
 *     hiredis < 1.1 a regular command sent while subscribed (PING) never
 *     gets its reply (it gets NULL when the connection goes), so the
 *     health check of a subscribed connection is then a SUBSCRIBE to
 *     "cast:heartbeat:<name>:<pid>" (one extra channel per connection).
 */


#ifndef _NGX_HTTP_CAST_REDIS_H_INCLUDED_
#define _NGX_HTTP_CAST_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_cast.h"


typedef void (*ngx_http_cast_redis_state_pt)(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data);


/* one address to connect to */

typedef struct {
    ngx_str_t                  text;        /* for logs: "127.0.0.1:6379" */
    ngx_str_t                  host;        /* IP or socket path, NUL end */
    int                        port;        /* 0: unix socket */
} ngx_http_cast_redis_addr_t;


/* "cast_redis", one per http{} block, from cf->pool */

struct ngx_http_cast_redis_conf_s {
    /* every address of a host name, the resolver's order, tried in turn */
    ngx_http_cast_redis_addr_t  *addrs;
    ngx_uint_t                 naddrs;
    ngx_str_t                  user;        /* empty: "AUTH password" */
    ngx_str_t                  password;    /* empty: no AUTH */
    ngx_uint_t                 db;
    ngx_msec_t                 connect_timeout;
    ngx_msec_t                 command_timeout;
    ngx_msec_t                 ping_interval;  /* 0: off */
};


/* the directive handler (NGX_HTTP_MAIN_CONF_OFFSET, conf: the main conf) */
char *ngx_http_cast_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* one connection: created idle, connects on ngx_http_cast_redis_start() */
ngx_http_cast_redis_t *ngx_http_cast_redis_create(ngx_cycle_t *cycle,
    ngx_http_cast_redis_conf_t *conf, const char *name,
    ngx_http_cast_redis_state_pt on_state, void *data);
void ngx_http_cast_redis_start(ngx_http_cast_redis_t *rds);
ngx_uint_t ngx_http_cast_redis_ready(ngx_http_cast_redis_t *rds);
/* the address in use, or the one tried next */
const ngx_str_t *ngx_http_cast_redis_addr(ngx_http_cast_redis_t *rds);

/*
 * NGX_OK: queued, fn will be called exactly once (reply or NULL), or for
 * every message of a SUBSCRIBE; NGX_ERROR: not ready, out of memory or
 * refused by hiredis (MONITOR, SSUBSCRIBE and SUNSUBSCRIBE are refused);
 * fn is not called then.  fn may be NULL.
 */
ngx_int_t ngx_http_cast_redis_command(ngx_http_cast_redis_t *rds,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen);
ngx_int_t ngx_http_cast_redis_commandf(ngx_http_cast_redis_t *rds,
    redisCallbackFn *fn, void *privdata, const char *fmt, ...);
ngx_int_t ngx_http_cast_redis_vcommandf(ngx_http_cast_redis_t *rds,
    redisCallbackFn *fn, void *privdata, const char *fmt, va_list args);

/* worker exit: queued commands are written before destroy() */
void ngx_http_cast_redis_flush(ngx_http_cast_redis_t *rds,
    ngx_msec_t timeout);
void ngx_http_cast_redis_destroy(ngx_http_cast_redis_t *rds);


#endif /* _NGX_HTTP_CAST_REDIS_H_INCLUDED_ */
