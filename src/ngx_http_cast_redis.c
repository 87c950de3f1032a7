
/*
 * ngx_http_cast_module: the Redis connection layer (see
 * ngx_http_cast_redis.h), and the "cast_redis" directive.
 *
 * hiredis owns the socket and its buffers; the socket is wrapped in an
 * nginx connection so that the worker's event loop reports readiness,
 * and every hiredis event hook maps to ngx_add_event()/ngx_del_event().
 *
 * The hiredis context may be freed inside any hiredis call (errors, EOF,
 * the connect callback failing): the ev.cleanup hook is the one place
 * that notices, it clears rds->ac and rds->conn, and every caller checks
 * them after calling into hiredis.  Nothing frees the context from inside
 * a hiredis callback: such closes are posted (close_ev).
 *
 * Command timeouts: hiredis 1.x has them (ev.scheduleTimer and
 * redisAsyncSetTimeout).  With hiredis 0.14 each regular command is
 * wrapped in a ngx_http_cast_redis_cmd_t kept in a FIFO, and one timer
 * watches the oldest; SUBSCRIBE-family commands and anything sent while
 * subscribed are not timed.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include <hiredis/sds.h>
#include <poll.h>

#include "ngx_http_cast_redis.h"


/* what may wait unsent in one connection's output buffer */
#define NGX_HTTP_CAST_REDIS_MAX_OUTPUT  (64 * 1024 * 1024)


#define NGX_HTTP_CAST_REDIS_IDLE         0  /* not started or waiting */
#define NGX_HTTP_CAST_REDIS_CONNECTING   1
#define NGX_HTTP_CAST_REDIS_HANDSHAKE    2  /* AUTH, SETNAME, SELECT */
#define NGX_HTTP_CAST_REDIS_READY        3

#define NGX_HTTP_CAST_REDIS_BACKOFF_MIN  100
#define NGX_HTTP_CAST_REDIS_BACKOFF_MAX  5000

/* identical failures are logged at "error" at most this often */
#define NGX_HTTP_CAST_REDIS_ERROR_EVERY  5

#define NGX_HTTP_CAST_REDIS_REASON_LEN   256

#define NGX_HTTP_CAST_REDIS_REGULAR      0
#define NGX_HTTP_CAST_REDIS_SUBSCRIBE    1  /* (P)(UN)SUBSCRIBE */
#define NGX_HTTP_CAST_REDIS_REFUSED      2  /* MONITOR, S(UN)SUBSCRIBE */

#if (HIREDIS_MAJOR >= 1)
#define NGX_HTTP_CAST_REDIS_TIMER_API    1
#else
#define NGX_HTTP_CAST_REDIS_TIMER_API    0
#endif

/* hiredis >= 1.1 routes the reply of a PING sent while subscribed */
#if (HIREDIS_MAJOR > 1 || (HIREDIS_MAJOR == 1 && HIREDIS_MINOR >= 1))
#define NGX_HTTP_CAST_REDIS_SUB_PING     1
#else
#define NGX_HTTP_CAST_REDIS_SUB_PING     0
#endif


struct ngx_http_cast_redis_s {
    ngx_http_cast_redis_conf_t    *conf;
    const char                    *name;        /* "command", "pubsub" */
    ngx_http_cast_redis_state_pt   on_state;
    void                          *data;
    ngx_log_t                     *log;

    redisAsyncContext             *ac;          /* NULL: no connection */
    ngx_connection_t              *conn;        /* wraps ac->c.fd */

    ngx_event_t                    retry_ev;    /* reconnect after backoff */
    ngx_event_t                    connect_ev;  /* connect + handshake */
    ngx_event_t                    timeout_ev;  /* command timeout */
    ngx_event_t                    ping_ev;     /* health PING when idle */
    ngx_event_t                    close_ev;    /* posted: close outside
                                                   hiredis callbacks */

    ngx_queue_t                    pending;     /* 0.14: timed commands */
    ngx_msec_t                     deadline;    /* 1.x: scheduleTimer */
    ngx_msec_t                     last_read;
    ngx_msec_t                     ping_sent;
    ngx_msec_t                     backoff;

    ngx_uint_t                     state;
    ngx_uint_t                     addr;        /* in conf->addrs */
    ngx_uint_t                     tried;       /* failed in this round */
    unsigned                       started:1;
    unsigned                       closing:1;
    unsigned                       destroyed:1;
    unsigned                       ping_pending:1;
    unsigned                       eof_posted:1;

    time_t                         last_error_time;
    size_t                         last_error_len;
    size_t                         reason_len;
    u_char                         last_error[NGX_HTTP_CAST_REDIS_REASON_LEN];
    u_char                         reason[NGX_HTTP_CAST_REDIS_REASON_LEN];
};


#if !(NGX_HTTP_CAST_REDIS_TIMER_API)

typedef struct {
    ngx_queue_t                    queue;       /* in rds->pending */
    ngx_http_cast_redis_t         *rds;
    redisCallbackFn               *fn;
    void                          *privdata;
    ngx_msec_t                     deadline;
} ngx_http_cast_redis_cmd_t;

#endif


static void ngx_http_cast_redis_connect(ngx_http_cast_redis_t *rds);
static void ngx_http_cast_redis_connected(const redisAsyncContext *ac,
    int status);
static ngx_uint_t ngx_http_cast_redis_handshaking(ngx_http_cast_redis_t *rds,
    redisAsyncContext *ac, redisReply *reply);
static void ngx_http_cast_redis_handshake_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_cast_redis_select_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_redis_set_ready(ngx_http_cast_redis_t *rds);
static void ngx_http_cast_redis_set_reason(ngx_http_cast_redis_t *rds,
    const char *fmt, ...);
static void ngx_http_cast_redis_close(ngx_http_cast_redis_t *rds);
static void ngx_http_cast_redis_close_later(ngx_http_cast_redis_t *rds);
static void ngx_http_cast_redis_close_handler(ngx_event_t *ev);
static void ngx_http_cast_redis_failed(ngx_http_cast_redis_t *rds,
    ngx_uint_t connecting);
static void ngx_http_cast_redis_retry(ngx_http_cast_redis_t *rds);
static void ngx_http_cast_redis_retry_handler(ngx_event_t *ev);
static void ngx_http_cast_redis_connect_timeout(ngx_event_t *ev);
static void ngx_http_cast_redis_ping_handler(ngx_event_t *ev);
static void ngx_http_cast_redis_ping_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_redis_timeout_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_cast_redis_send(ngx_http_cast_redis_t *rds,
    redisCallbackFn *fn, void *privdata, const char *cmd, size_t len);
static ngx_uint_t ngx_http_cast_redis_kind(const char *cmd, size_t len);
#if !(NGX_HTTP_CAST_REDIS_TIMER_API)
static void ngx_http_cast_redis_timed_reply(redisAsyncContext *ac, void *r,
    void *privdata);
#else
static void ngx_http_cast_redis_schedule_timer(void *privdata,
    struct timeval tv);
#endif
static void ngx_http_cast_redis_read_handler(ngx_event_t *rev);
static void ngx_http_cast_redis_write_handler(ngx_event_t *wev);
static ngx_uint_t ngx_http_cast_redis_event_flags(void);
static void ngx_http_cast_redis_add_event(ngx_http_cast_redis_t *rds,
    ngx_uint_t write);
static void ngx_http_cast_redis_del_event(ngx_http_cast_redis_t *rds,
    ngx_uint_t write);
static void ngx_http_cast_redis_add_read(void *privdata);
static void ngx_http_cast_redis_del_read(void *privdata);
static void ngx_http_cast_redis_add_write(void *privdata);
static void ngx_http_cast_redis_del_write(void *privdata);
static void ngx_http_cast_redis_cleanup(void *privdata);
static void ngx_http_cast_redis_keepalive(ngx_http_cast_redis_t *rds);
static char *ngx_http_cast_redis_parse_addr(ngx_conf_t *cf,
    ngx_http_cast_redis_conf_t *rcf, ngx_str_t *value);
typedef struct {
    ngx_str_t                      name;        /* "connect_timeout=" */
    ngx_uint_t                     bit;         /* given once */
    size_t                         offset;
    ngx_uint_t                     off;         /* "off" allowed */
} ngx_http_cast_redis_time_t;


static ngx_http_cast_redis_time_t *ngx_http_cast_redis_time_param(
    ngx_str_t *value);
static ngx_int_t ngx_http_cast_redis_parse_time(ngx_conf_t *cf,
    ngx_str_t *param, size_t skip, ngx_msec_t *out, ngx_uint_t off);


/* the "cast_redis" directive */

/* the time parameters of "cast_redis" */

static ngx_http_cast_redis_time_t  ngx_http_cast_redis_times[] = {
    { ngx_string("connect_timeout="), 0x08,
      offsetof(ngx_http_cast_redis_conf_t, connect_timeout), 0 },
    { ngx_string("command_timeout="), 0x10,
      offsetof(ngx_http_cast_redis_conf_t, command_timeout), 0 },
    { ngx_string("ping_interval="), 0x20,
      offsetof(ngx_http_cast_redis_conf_t, ping_interval), 1 },
    { ngx_null_string, 0, 0, 0 }
};


static ngx_http_cast_redis_time_t *
ngx_http_cast_redis_time_param(ngx_str_t *value)
{
    ngx_http_cast_redis_time_t  *t;

    for (t = ngx_http_cast_redis_times; t->name.len; t++) {
        if (value->len >= t->name.len
            && ngx_strncmp(value->data, t->name.data, t->name.len) == 0)
        {
            return t;
        }
    }

    return NULL;
}


char *
ngx_http_cast_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_main_conf_t *cmcf = conf;

    ngx_int_t                    n;
    ngx_str_t                   *value, s;
    ngx_uint_t                   i, seen, bit;
    ngx_http_cast_redis_time_t  *t;
    ngx_http_cast_redis_conf_t  *rcf;

    if (cmcf->redis != NULL) {
        return "is duplicate";
    }

    rcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_cast_redis_conf_t));
    if (rcf == NULL) {
        return NGX_CONF_ERROR;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rcf->user = { 0, NULL };
     *     rcf->password = { 0, NULL };
     */

    rcf->db = 0;
    rcf->connect_timeout = 2000;
    rcf->command_timeout = 2000;
    rcf->ping_interval = 5000;

    value = cf->args->elts;

    if (ngx_http_cast_redis_parse_addr(cf, rcf, &value[1]) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    seen = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            bit = 0x01;
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty \"password=\" in \"cast_redis\"");
                return NGX_CONF_ERROR;
            }

            rcf->password = s;

        } else if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            bit = 0x02;
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (s.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "empty \"user=\" in \"cast_redis\"");
                return NGX_CONF_ERROR;
            }

            rcf->user = s;

        } else if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            bit = 0x04;
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid database number \"%V\" in "
                                   "\"cast_redis\", expected db=N with "
                                   "N >= 0", &value[i]);
                return NGX_CONF_ERROR;
            }

            rcf->db = (ngx_uint_t) n;

        } else if ((t = ngx_http_cast_redis_time_param(&value[i])) != NULL) {
            bit = t->bit;

            if (ngx_http_cast_redis_parse_time(cf, &value[i], t->name.len,
                                               (ngx_msec_t *)
                                                   ((u_char *) rcf
                                                    + t->offset),
                                               t->off)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"cast_redis\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (seen & bit) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate parameter \"%V\" in "
                               "\"cast_redis\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        seen |= bit;
    }

    if (rcf->user.len && rcf->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"user=\" requires \"password=\" in "
                           "\"cast_redis\"");
        return NGX_CONF_ERROR;
    }

    cmcf->redis = rcf;

    return NGX_CONF_OK;
}


/*
 * "host:port" (port 6379 by default) or "unix:/path".  Host names are
 * resolved here, once, with the system resolver: a worker never blocks
 * on DNS.  Every address is kept, in the resolver's order (on Debian 12
 * "localhost" is ::1 first), and a connection tries them in turn.
 */

static char *
ngx_http_cast_redis_parse_addr(ngx_conf_t *cf,
    ngx_http_cast_redis_conf_t *rcf, ngx_str_t *value)
{
    u_char                      *p;
    size_t                       len;
    ngx_url_t                    u;
    ngx_uint_t                   i, j;
    ngx_http_cast_redis_addr_t  *a;

    if (value->len >= 5 && ngx_strncasecmp(value->data, (u_char *) "unix:", 5)
                           == 0)
    {
#if (NGX_HAVE_UNIX_DOMAIN)
        len = value->len - 5;

        if (len == 0
            || value->data[5] != '/'
            || len >= sizeof(((struct sockaddr_un *) 0)->sun_path))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address \"%V\" in \"cast_redis\": "
                               "expected \"unix:/absolute/path\"", value);
            return NGX_CONF_ERROR;
        }

        a = ngx_pcalloc(cf->pool, sizeof(ngx_http_cast_redis_addr_t));
        if (a == NULL) {
            return NGX_CONF_ERROR;
        }

        /* strings from the configuration are NUL-terminated */
        a->host.data = value->data + 5;
        a->host.len = len;
        a->port = 0;
        a->text = *value;

        rcf->addrs = a;
        rcf->naddrs = 1;

        return NGX_CONF_OK;
#else
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unix domain sockets are not supported "
                           "on this platform");
        return NGX_CONF_ERROR;
#endif
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid address \"%V\" in \"cast_redis\": %s "
                           "(expected an IP address or a host name, "
                           "an optional \":port\", or \"unix:/path\")",
                           value, u.err ? u.err : "no address");
        return NGX_CONF_ERROR;
    }

    rcf->addrs = ngx_pcalloc(cf->pool,
                             u.naddrs * sizeof(ngx_http_cast_redis_addr_t));
    if (rcf->addrs == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < u.naddrs; i++) {

        /* a resolver may list an address twice */

        for (j = 0; j < i; j++) {
            if (ngx_cmp_sockaddr(u.addrs[i].sockaddr, u.addrs[i].socklen,
                                 u.addrs[j].sockaddr, u.addrs[j].socklen, 1)
                == NGX_OK)
            {
                break;
            }
        }

        if (j < i) {
            continue;
        }

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[i].sockaddr, u.addrs[i].socklen, p,
                            NGX_SOCKADDR_STRLEN, 0);
        p[len] = '\0';

        a = &rcf->addrs[rcf->naddrs++];

        a->host.data = p;
        a->host.len = len;
        a->port = ngx_inet_get_port(u.addrs[i].sockaddr);
        a->text = u.addrs[i].name;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cast_redis_parse_time(ngx_conf_t *cf, ngx_str_t *param, size_t skip,
    ngx_msec_t *out, ngx_uint_t off)
{
    ngx_int_t  ms;
    ngx_str_t  s;

    s.data = param->data + skip;
    s.len = param->len - skip;

    if (off && s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
        *out = 0;
        return NGX_OK;
    }

    ms = ngx_parse_time(&s, 0);

    if (ms == NGX_ERROR || ms == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"cast_redis\", "
                           "expected a positive time like \"500ms\" "
                           "or \"2s\"%s", param, off ? " or \"off\"" : "");
        return NGX_ERROR;
    }

    *out = (ngx_msec_t) ms;

    return NGX_OK;
}


/* the connection object */

ngx_http_cast_redis_t *
ngx_http_cast_redis_create(ngx_cycle_t *cycle,
    ngx_http_cast_redis_conf_t *conf, const char *name,
    ngx_http_cast_redis_state_pt on_state, void *data)
{
    ngx_http_cast_redis_t  *rds;

    rds = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_redis_t));
    if (rds == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rds->ac = NULL;
     *     rds->conn = NULL;
     *     rds->state = NGX_HTTP_CAST_REDIS_IDLE;
     *     rds->started = 0;
     *     rds->reason_len = 0;
     *     rds->last_error_len = 0;
     */

    rds->conf = conf;
    rds->name = name;
    rds->on_state = on_state;
    rds->data = data;
    rds->log = cycle->log;
    rds->backoff = NGX_HTTP_CAST_REDIS_BACKOFF_MIN;

    ngx_queue_init(&rds->pending);

    rds->retry_ev.handler = ngx_http_cast_redis_retry_handler;
    rds->retry_ev.data = rds;
    rds->retry_ev.log = cycle->log;
    rds->retry_ev.cancelable = 1;

    rds->connect_ev.handler = ngx_http_cast_redis_connect_timeout;
    rds->connect_ev.data = rds;
    rds->connect_ev.log = cycle->log;
    rds->connect_ev.cancelable = 1;

    /*
     * Not cancelable: a worker that quits gracefully waits for the
     * answers to the commands it sent (at most command_timeout), so the
     * requests waiting for them are answered before it exits.
     */

    rds->timeout_ev.handler = ngx_http_cast_redis_timeout_handler;
    rds->timeout_ev.data = rds;
    rds->timeout_ev.log = cycle->log;

    rds->ping_ev.handler = ngx_http_cast_redis_ping_handler;
    rds->ping_ev.data = rds;
    rds->ping_ev.log = cycle->log;
    rds->ping_ev.cancelable = 1;

    rds->close_ev.handler = ngx_http_cast_redis_close_handler;
    rds->close_ev.data = rds;
    rds->close_ev.log = cycle->log;

    return rds;
}


void
ngx_http_cast_redis_start(ngx_http_cast_redis_t *rds)
{
    if (rds == NULL || rds->started || rds->destroyed) {
        return;
    }

    rds->started = 1;

    ngx_http_cast_redis_connect(rds);
}


ngx_uint_t
ngx_http_cast_redis_ready(ngx_http_cast_redis_t *rds)
{
    return rds != NULL
           && rds->ac != NULL
           && rds->state == NGX_HTTP_CAST_REDIS_READY
           && !rds->closing;
}


const ngx_str_t *
ngx_http_cast_redis_addr(ngx_http_cast_redis_t *rds)
{
    return &rds->conf->addrs[rds->addr].text;
}


/*
 * Worker exit: the commands queued are written out now, for at most
 * "timeout" ms, and the first reply is awaited (Redis has read them);
 * nothing is read, no callback runs.
 */

void
ngx_http_cast_redis_flush(ngx_http_cast_redis_t *rds, ngx_msec_t timeout)
{
    int             done;
    ngx_msec_t      start, spent;
    struct pollfd   pfd;

    if (rds == NULL || rds->ac == NULL
        || rds->state != NGX_HTTP_CAST_REDIS_READY)
    {
        return;
    }

    /* nothing queued: no reply to wait for */

    if (rds->ac->c.obuf == NULL || sdslen(rds->ac->c.obuf) == 0) {
        return;
    }

    start = ngx_current_msec;
    done = 0;

    pfd.fd = rds->ac->c.fd;

    for ( ;; ) {
        if (redisBufferWrite(&rds->ac->c, &done) == REDIS_ERR) {
            return;
        }

        ngx_time_update();
        spent = ngx_current_msec - start;

        if (spent >= timeout) {
            return;
        }

        pfd.events = done ? POLLIN : POLLOUT;
        pfd.revents = 0;

        if (poll(&pfd, 1, (int) (timeout - spent)) <= 0 || done) {
            return;
        }
    }
}


void
ngx_http_cast_redis_destroy(ngx_http_cast_redis_t *rds)
{
    if (rds == NULL || rds->destroyed) {
        return;
    }

    rds->destroyed = 1;
    rds->closing = 1;

    ngx_http_cast_event_cancel(&rds->retry_ev);

    if (rds->ac != NULL) {
        /*
         * pending callbacks get NULL replies; ev.cleanup frees the nginx
         * connection and the remaining timers
         */
        redisAsyncFree(rds->ac);
    }

    ngx_http_cast_event_cancel(&rds->close_ev);
}


/* connecting */

static void
ngx_http_cast_redis_connect(ngx_http_cast_redis_t *rds)
{
    ngx_connection_t            *c;
    redisAsyncContext           *ac;
    ngx_http_cast_redis_addr_t  *a;
    ngx_http_cast_redis_conf_t  *conf;
#if (NGX_HTTP_CAST_REDIS_TIMER_API)
    struct timeval               tv;
#endif

    conf = rds->conf;
    a = &conf->addrs[rds->addr];

    rds->state = NGX_HTTP_CAST_REDIS_CONNECTING;
    rds->closing = 0;
    rds->ping_pending = 0;
    rds->eof_posted = 0;
    rds->reason_len = 0;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "cast redis: %s connecting to %V",
                   rds->name, &a->text);

    if (a->port == 0) {
        ac = redisAsyncConnectUnix((const char *) a->host.data);

    } else {
        ac = redisAsyncConnect((const char *) a->host.data, a->port);
    }

    if (ac == NULL) {
        ngx_http_cast_redis_set_reason(rds, "out of memory");
        goto failed;
    }

    if (ac->c.err) {
        /* refused at once, e.g. a unix socket that does not exist */
        ngx_http_cast_redis_set_reason(rds, "%s", ac->c.errstr);
        redisAsyncFree(ac);
        goto failed;
    }

    c = ngx_get_connection(ac->c.fd, rds->log);
    if (c == NULL) {
        ngx_http_cast_redis_set_reason(rds, "no free nginx connection");
        redisAsyncFree(ac);
        goto failed;
    }

    c->data = rds;
    c->read->handler = ngx_http_cast_redis_read_handler;
    c->write->handler = ngx_http_cast_redis_write_handler;
    c->read->log = rds->log;
    c->write->log = rds->log;

    rds->ac = ac;
    rds->conn = c;

    ac->data = rds;
    ac->ev.data = rds;
    ac->ev.addRead = ngx_http_cast_redis_add_read;
    ac->ev.delRead = ngx_http_cast_redis_del_read;
    ac->ev.addWrite = ngx_http_cast_redis_add_write;
    ac->ev.delWrite = ngx_http_cast_redis_del_write;
    ac->ev.cleanup = ngx_http_cast_redis_cleanup;

#if (NGX_HTTP_CAST_REDIS_TIMER_API)
    ac->ev.scheduleTimer = ngx_http_cast_redis_schedule_timer;

    tv.tv_sec = conf->command_timeout / 1000;
    tv.tv_usec = (conf->command_timeout % 1000) * 1000;
    redisAsyncSetTimeout(ac, tv);
#endif

    /* the first write event tells that connect() finished (adds it) */
    redisAsyncSetConnectCallback(ac, ngx_http_cast_redis_connected);

    ngx_add_timer(&rds->connect_ev, conf->connect_timeout);

    return;

failed:

    ngx_http_cast_redis_failed(rds, 1);
}


static void
ngx_http_cast_redis_connected(const redisAsyncContext *cac, int status)
{
    ngx_http_cast_redis_t *rds = cac->data;

    int                          argc;
    u_char                      *p;
    size_t                       argvlen[3];
    const char                  *argv[3];
    redisAsyncContext           *ac;
    ngx_http_cast_redis_conf_t  *conf;
    u_char                       db[NGX_INT_T_LEN];
    u_char                       name[64];

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns: see cleanup */
        ngx_http_cast_redis_set_reason(rds, "%s",
                                       cac->c.err ? cac->c.errstr
                                                  : "connect failed");
        return;
    }

    if (rds->ac == NULL || rds->closing) {
        return;
    }

    ac = rds->ac;
    conf = rds->conf;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, rds->log, 0,
                   "cast redis: %s connected, handshake", rds->name);

    rds->state = NGX_HTTP_CAST_REDIS_HANDSHAKE;

    if (conf->addrs[rds->addr].port) {
        ngx_http_cast_redis_keepalive(rds);
    }

    /*
     * Pipelined: AUTH, CLIENT SETNAME, SELECT; ready on the SELECT reply.
     * Never free the context here (hiredis 0.14 goes on using it after
     * this callback): failures are closed through close_ev.
     */

    if (conf->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = sizeof("AUTH") - 1;

        if (conf->user.len) {
            argv[argc] = (const char *) conf->user.data;
            argvlen[argc++] = conf->user.len;
        }

        argv[argc] = (const char *) conf->password.data;
        argvlen[argc++] = conf->password.len;

        if (redisAsyncCommandArgv(ac, ngx_http_cast_redis_handshake_reply,
                                  rds, argc, argv, argvlen)
            != REDIS_OK)
        {
            goto failed;
        }
    }

    p = ngx_snprintf(name, sizeof(name), "cast:%s:%P", rds->name, ngx_pid);

    argv[0] = "CLIENT";
    argvlen[0] = sizeof("CLIENT") - 1;
    argv[1] = "SETNAME";
    argvlen[1] = sizeof("SETNAME") - 1;
    argv[2] = (const char *) name;
    argvlen[2] = p - name;

    /* the reply is ignored: a restricted ACL user may lack CLIENT */

    if (redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, argvlen) != REDIS_OK) {
        goto failed;
    }

    p = ngx_sprintf(db, "%ui", conf->db);

    argv[0] = "SELECT";
    argvlen[0] = sizeof("SELECT") - 1;
    argv[1] = (const char *) db;
    argvlen[1] = p - db;

    if (redisAsyncCommandArgv(ac, ngx_http_cast_redis_select_reply, rds,
                              2, argv, argvlen)
        != REDIS_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_http_cast_redis_set_reason(rds, "cannot send the handshake: %s",
                                   ac->c.err ? ac->c.errstr : "refused");
    ngx_http_cast_redis_close_later(rds);
}


/* a handshake reply that still matters: this context, still shaking */

static ngx_uint_t
ngx_http_cast_redis_handshaking(ngx_http_cast_redis_t *rds,
    redisAsyncContext *ac, redisReply *reply)
{
    return reply != NULL
           && rds->ac == ac
           && !rds->closing
           && rds->state == NGX_HTTP_CAST_REDIS_HANDSHAKE;
}


static void
ngx_http_cast_redis_handshake_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_cast_redis_t *rds = privdata;

    redisReply  *reply = r;

    if (!ngx_http_cast_redis_handshaking(rds, ac, reply)) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_cast_redis_set_reason(rds, "AUTH: %*s",
                                       (size_t) reply->len, reply->str);
        ngx_http_cast_redis_close_later(rds);
    }
}


static void
ngx_http_cast_redis_select_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_cast_redis_t *rds = privdata;

    redisReply  *reply = r;

    if (!ngx_http_cast_redis_handshaking(rds, ac, reply)) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* e.g. "NOAUTH Authentication required." without password= */
        ngx_http_cast_redis_set_reason(rds, "SELECT %ui: %*s", rds->conf->db,
                                       (size_t) reply->len, reply->str);
        ngx_http_cast_redis_close_later(rds);
        return;
    }

    ngx_http_cast_redis_set_ready(rds);
}


static void
ngx_http_cast_redis_set_ready(ngx_http_cast_redis_t *rds)
{
    ngx_http_cast_event_cancel(&rds->connect_ev);

    rds->state = NGX_HTTP_CAST_REDIS_READY;
    rds->backoff = NGX_HTTP_CAST_REDIS_BACKOFF_MIN;
    rds->last_error_len = 0;
    rds->last_read = ngx_current_msec;
    rds->tried = 0;

    if (rds->conf->ping_interval) {
        ngx_add_timer(&rds->ping_ev, rds->conf->ping_interval);
    }

    ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                  "cast: redis %s connection to %V ready",
                  rds->name, ngx_http_cast_redis_addr(rds));

    if (rds->on_state) {
        rds->on_state(rds, 1, rds->data);
    }
}


/* closing, failures, reconnects */

static void
ngx_http_cast_redis_set_reason(ngx_http_cast_redis_t *rds, const char *fmt,
    ...)
{
    u_char   *p;
    va_list   args;

    if (rds->reason_len) {
        return;     /* the first reason wins */
    }

    va_start(args, fmt);
    p = ngx_vslprintf(rds->reason, rds->reason + sizeof(rds->reason), fmt,
                      args);
    va_end(args);

    /* no line breaks in the log */

    while (p > rds->reason && (p[-1] == '\n' || p[-1] == '\r')) {
        p--;
    }

    rds->reason_len = p - rds->reason;
}


/* not from inside a hiredis callback: from timers and posted events */

static void
ngx_http_cast_redis_close(ngx_http_cast_redis_t *rds)
{
    if (rds->ac == NULL) {
        return;
    }

    rds->closing = 1;

    /* pending callbacks get NULL replies, then ev.cleanup runs */
    redisAsyncFree(rds->ac);
}


static void
ngx_http_cast_redis_close_later(ngx_http_cast_redis_t *rds)
{
    rds->closing = 1;

    if (!rds->close_ev.posted) {
        ngx_post_event(&rds->close_ev, &ngx_posted_events);
    }
}


static void
ngx_http_cast_redis_close_handler(ngx_event_t *ev)
{
    ngx_http_cast_redis_close(ev->data);
}


/*
 * A connect failure with addresses left in this round moves on to the
 * next one at once; anything else, or the last address, ends the round:
 * logged, then a reconnect after the backoff, from the next address.
 */

static void
ngx_http_cast_redis_failed(ngx_http_cast_redis_t *rds, ngx_uint_t connecting)
{
    ngx_uint_t                   level, naddrs;
    const ngx_str_t             *addr;
    ngx_http_cast_redis_conf_t  *conf;

    conf = rds->conf;
    naddrs = conf->naddrs;
    addr = ngx_http_cast_redis_addr(rds);

    rds->state = NGX_HTTP_CAST_REDIS_IDLE;
    rds->addr = (rds->addr + 1) % naddrs;

    if (connecting && rds->tried + 1 < naddrs) {
        rds->tried++;

        ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                      "cast: redis %s connection to %V failed: %*s; "
                      "trying %V", rds->name, addr, rds->reason_len,
                      rds->reason, ngx_http_cast_redis_addr(rds));

        if (!rds->destroyed && !rds->retry_ev.posted) {
            ngx_post_event(&rds->retry_ev, &ngx_posted_events);
        }

        return;
    }

    rds->tried = 0;

    level = NGX_LOG_ERR;

    if (rds->reason_len == rds->last_error_len
        && ngx_memcmp(rds->reason, rds->last_error, rds->reason_len) == 0
        && ngx_time() - rds->last_error_time < NGX_HTTP_CAST_REDIS_ERROR_EVERY)
    {
        level = NGX_LOG_INFO;

    } else {
        ngx_memcpy(rds->last_error, rds->reason, rds->reason_len);
        rds->last_error_len = rds->reason_len;
        rds->last_error_time = ngx_time();
    }

    ngx_log_error(level, rds->log, 0,
                  "cast: redis %s connection to %V failed: %*s%s",
                  rds->name, addr, rds->reason_len, rds->reason,
                  naddrs > 1 ? " (every address failed)" : "");

    ngx_http_cast_redis_retry(rds);
}


static void
ngx_http_cast_redis_retry(ngx_http_cast_redis_t *rds)
{
    ngx_msec_t  delay;

    if (rds->destroyed) {
        return;
    }

    /* up to +25% jitter, so that workers do not reconnect in lockstep */
    delay = rds->backoff + (ngx_msec_t) ngx_random() % (rds->backoff / 4 + 1);

    ngx_log_error(NGX_LOG_INFO, rds->log, 0,
                  "cast: redis %s connection to %V: reconnecting in %Mms",
                  rds->name, ngx_http_cast_redis_addr(rds), delay);

    ngx_add_timer(&rds->retry_ev, delay);

    rds->backoff *= 2;

    if (rds->backoff > NGX_HTTP_CAST_REDIS_BACKOFF_MAX) {
        rds->backoff = NGX_HTTP_CAST_REDIS_BACKOFF_MAX;
    }
}


static void
ngx_http_cast_redis_retry_handler(ngx_event_t *ev)
{
    ngx_http_cast_redis_t *rds = ev->data;

    if (rds->destroyed || rds->ac != NULL) {
        return;
    }

    ngx_http_cast_redis_connect(rds);
}


static void
ngx_http_cast_redis_connect_timeout(ngx_event_t *ev)
{
    ngx_http_cast_redis_t *rds = ev->data;

    if (rds->ac == NULL) {
        return;
    }

    ngx_http_cast_redis_set_reason(rds, "%s timed out (%Mms)",
                                   rds->state == NGX_HTTP_CAST_REDIS_HANDSHAKE
                                   ? "handshake" : "connect",
                                   rds->conf->connect_timeout);

    ngx_http_cast_redis_close(rds);
}


/*
 * Health check of a ready connection that has read nothing for
 * ping_interval: PING, or, while subscribed with a hiredis that cannot
 * route the PING reply there (< 1.1), a SUBSCRIBE to a channel of its own
 * whose confirmation comes back the same way.  No answer within
 * command_timeout closes the connection.
 */

static void
ngx_http_cast_redis_ping_handler(ngx_event_t *ev)
{
    ngx_http_cast_redis_t *rds = ev->data;

    int                 rc;
    size_t              argvlen[2];
    const char         *argv[2];
    ngx_msec_t          interval, idle, timeout, waited;
    redisAsyncContext  *ac;
#if !(NGX_HTTP_CAST_REDIS_SUB_PING)
    u_char             *p;
    u_char              channel[64];
#endif

    if (!ngx_http_cast_redis_ready(rds)) {
        return;
    }

    ac = rds->ac;
    interval = rds->conf->ping_interval;
    timeout = rds->conf->command_timeout;

    if (rds->ping_pending) {
        waited = ngx_current_msec - rds->ping_sent;

        if (waited < timeout) {
            ngx_add_timer(ev, timeout - waited);
            return;
        }

        ngx_http_cast_redis_set_reason(rds, "command timed out (%Mms)",
                                       timeout);
        ngx_http_cast_redis_close(rds);
        return;
    }

    idle = ngx_current_msec - rds->last_read;

    if (idle < interval) {
        ngx_add_timer(ev, interval - idle);
        return;
    }

#if !(NGX_HTTP_CAST_REDIS_SUB_PING)

    if (ac->c.flags & REDIS_SUBSCRIBED) {
        p = ngx_snprintf(channel, sizeof(channel), "cast:heartbeat:%s:%P",
                         rds->name, ngx_pid);

        argv[0] = "SUBSCRIBE";
        argvlen[0] = sizeof("SUBSCRIBE") - 1;
        argv[1] = (const char *) channel;
        argvlen[1] = p - channel;

        rc = redisAsyncCommandArgv(ac, ngx_http_cast_redis_ping_reply, rds,
                                   2, argv, argvlen);

        goto sent;
    }

#endif

    argv[0] = "PING";
    argvlen[0] = sizeof("PING") - 1;

    rc = redisAsyncCommandArgv(ac, ngx_http_cast_redis_ping_reply, rds,
                               1, argv, argvlen);

#if !(NGX_HTTP_CAST_REDIS_SUB_PING)
sent:
#endif

    if (rc != REDIS_OK) {
        ngx_add_timer(ev, interval);
        return;
    }

    rds->ping_pending = 1;
    rds->ping_sent = ngx_current_msec;

    ngx_add_timer(ev, timeout);
}


static void
ngx_http_cast_redis_ping_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_cast_redis_t *rds = privdata;

    /* any answer will do, even an error or an "unsubscribe" */

    if (r != NULL && rds->ac == ac) {
        rds->ping_pending = 0;
    }
}


/* commands */

ngx_int_t
ngx_http_cast_redis_command(ngx_http_cast_redis_t *rds, redisCallbackFn *fn,
    void *privdata, int argc, const char **argv, const size_t *argvlen)
{
    char       *cmd;
    ngx_int_t   rc;
    long long   len;

    if (!ngx_http_cast_redis_ready(rds) || argc < 1) {
        return NGX_ERROR;
    }

    cmd = NULL;
    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);

    if (len <= 0 || cmd == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_cast_redis_send(rds, fn, privdata, cmd, (size_t) len);

    redisFreeCommand(cmd);

    return rc;
}


ngx_int_t
ngx_http_cast_redis_commandf(ngx_http_cast_redis_t *rds, redisCallbackFn *fn,
    void *privdata, const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_cast_redis_vcommandf(rds, fn, privdata, fmt, args);
    va_end(args);

    return rc;
}


ngx_int_t
ngx_http_cast_redis_vcommandf(ngx_http_cast_redis_t *rds,
    redisCallbackFn *fn, void *privdata, const char *fmt, va_list args)
{
    int        len;
    char      *cmd;
    ngx_int_t  rc;

    if (!ngx_http_cast_redis_ready(rds)) {
        return NGX_ERROR;
    }

    cmd = NULL;
    len = redisvFormatCommand(&cmd, fmt, args);

    if (len <= 0 || cmd == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_cast_redis_send(rds, fn, privdata, cmd, (size_t) len);

    redisFreeCommand(cmd);

    return rc;
}


static ngx_int_t
ngx_http_cast_redis_send(ngx_http_cast_redis_t *rds, redisCallbackFn *fn,
    void *privdata, const char *cmd, size_t len)
{
    ngx_uint_t                  kind;
#if !(NGX_HTTP_CAST_REDIS_TIMER_API)
    ngx_http_cast_redis_cmd_t  *tc;
#endif

    /*
     * Commands not yet written wait in hiredis's output buffer: it is
     * bounded, a caller over the bound gets an error (503 for requests).
     */

    if (rds->ac->c.obuf
        && sdslen(rds->ac->c.obuf) + len > NGX_HTTP_CAST_REDIS_MAX_OUTPUT)
    {
        ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                      "cast: redis %s connection: %uz bytes wait to be "
                      "sent, a command is refused", rds->name,
                      (size_t) sdslen(rds->ac->c.obuf));
        return NGX_ERROR;
    }

    kind = ngx_http_cast_redis_kind(cmd, len);

    if (kind == NGX_HTTP_CAST_REDIS_REFUSED) {
        ngx_log_error(NGX_LOG_ALERT, rds->log, 0,
                      "cast: redis %s connection: MONITOR and sharded "
                      "pub/sub are not supported", rds->name);
        return NGX_ERROR;
    }

#if !(NGX_HTTP_CAST_REDIS_TIMER_API)

    if (kind == NGX_HTTP_CAST_REDIS_REGULAR
        && !(rds->ac->c.flags & REDIS_SUBSCRIBED))
    {
        tc = ngx_alloc(sizeof(ngx_http_cast_redis_cmd_t), rds->log);
        if (tc == NULL) {
            return NGX_ERROR;
        }

        tc->rds = rds;
        tc->fn = fn;
        tc->privdata = privdata;
        tc->deadline = ngx_current_msec + rds->conf->command_timeout;

        if (redisAsyncFormattedCommand(rds->ac,
                                       ngx_http_cast_redis_timed_reply, tc,
                                       cmd, len)
            != REDIS_OK)
        {
            ngx_free(tc);
            return NGX_ERROR;
        }

        ngx_queue_insert_tail(&rds->pending, &tc->queue);

        if (!rds->timeout_ev.timer_set) {
            ngx_add_timer(&rds->timeout_ev, rds->conf->command_timeout);
        }

        return NGX_OK;
    }

#endif

    if (redisAsyncFormattedCommand(rds->ac, fn, privdata, cmd, len)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the command name of a formatted command: "*N\r\n$L\r\nNAME\r\n..." */

static ngx_uint_t
ngx_http_cast_redis_kind(const char *cmd, size_t len)
{
    u_char  *p, *last, *name;
    size_t   n;

    p = (u_char *) cmd;
    last = p + len;

    p = ngx_strlchr(p, last, '$');
    if (p == NULL) {
        return NGX_HTTP_CAST_REDIS_REGULAR;
    }

    n = 0;

    for (p++; p < last && *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');

        if (n > 32) {
            return NGX_HTTP_CAST_REDIS_REGULAR;
        }
    }

    if (last - p < 2 || (size_t) (last - p - 2) < n) {
        return NGX_HTTP_CAST_REDIS_REGULAR;
    }

    name = p + 2;

#define ngx_http_cast_redis_is(s)                                             \
    (n == sizeof(s) - 1 && ngx_strncasecmp(name, (u_char *) s, n) == 0)

    if (ngx_http_cast_redis_is("subscribe")
        || ngx_http_cast_redis_is("psubscribe")
        || ngx_http_cast_redis_is("unsubscribe")
        || ngx_http_cast_redis_is("punsubscribe"))
    {
        return NGX_HTTP_CAST_REDIS_SUBSCRIBE;
    }

    if (ngx_http_cast_redis_is("monitor")
        || ngx_http_cast_redis_is("ssubscribe")
        || ngx_http_cast_redis_is("sunsubscribe"))
    {
        return NGX_HTTP_CAST_REDIS_REFUSED;
    }

#undef ngx_http_cast_redis_is

    return NGX_HTTP_CAST_REDIS_REGULAR;
}


#if !(NGX_HTTP_CAST_REDIS_TIMER_API)

/* hiredis 0.14: the reply of a timed command (replies come in order) */

static void
ngx_http_cast_redis_timed_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_cast_redis_cmd_t *tc = privdata;

    void                   *data;
    redisCallbackFn        *fn;
    ngx_http_cast_redis_t  *rds;

    fn = tc->fn;
    data = tc->privdata;
    rds = tc->rds;

    ngx_queue_remove(&tc->queue);
    ngx_free(tc);

    /*
     * The timer is not cancelable: a gracefully quitting worker waits
     * for it.  With no command left to time it goes now (the callback
     * arms it again if it sends one), else that worker would wait up to
     * command_timeout for nothing.
     */

    if (ngx_queue_empty(&rds->pending)) {
        ngx_http_cast_event_cancel(&rds->timeout_ev);
    }

    if (fn) {
        fn(ac, r, data);
    }
}


static void
ngx_http_cast_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_http_cast_redis_t *rds = ev->data;

    ngx_msec_int_t              left;
    ngx_http_cast_redis_cmd_t  *tc;

    if (rds->ac == NULL || rds->closing || ngx_queue_empty(&rds->pending)) {
        return;
    }

    tc = ngx_queue_data(ngx_queue_head(&rds->pending),
                        ngx_http_cast_redis_cmd_t, queue);

    left = (ngx_msec_int_t) (tc->deadline - ngx_current_msec);

    if (left > 0) {
        ngx_add_timer(ev, (ngx_msec_t) left);
        return;
    }

    ngx_http_cast_redis_set_reason(rds, "command timed out (%Mms)",
                                   rds->conf->command_timeout);

    ngx_http_cast_redis_close(rds);
}

#else

/*
 * hiredis 1.x: the timer of redisAsyncSetTimeout().  hiredis re-arms it
 * whenever it adds a read or write event, so a steady flow of commands
 * to a hung server would push it out forever.  Here only the first call
 * arms it, and only bytes read from the server move the deadline (the
 * read handler): it fires after command_timeout without a byte from
 * Redis, and hiredis closes the connection if replies are pending.
 */

static void
ngx_http_cast_redis_schedule_timer(void *privdata, struct timeval tv)
{
    ngx_http_cast_redis_t *rds = privdata;

    ngx_msec_t  ms;

    if (rds->conn == NULL || rds->timeout_ev.timer_set) {
        return;
    }

    ms = (ngx_msec_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;

    rds->deadline = ngx_current_msec + ms;

    ngx_add_timer(&rds->timeout_ev, ms);
}


static void
ngx_http_cast_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_http_cast_redis_t *rds = ev->data;

    ngx_msec_int_t      left;
    redisAsyncContext  *ac;

    ac = rds->ac;

    if (ac == NULL
        || rds->closing
        || rds->state != NGX_HTTP_CAST_REDIS_READY)
    {
        return;     /* gone, a close is posted, or connect_ev's turn */
    }

    left = (ngx_msec_int_t) (rds->deadline - ngx_current_msec);

    if (left > 0) {
        ngx_add_timer(ev, (ngx_msec_t) left);
        return;
    }

    /*
     * An idle connection survives this.  Otherwise the pending callbacks
     * get NULL replies first: commands they send must fail (closing).
     */

    ngx_http_cast_redis_set_reason(rds, "command timed out (%Mms)",
                                   rds->conf->command_timeout);
    rds->closing = 1;

    redisAsyncHandleTimeout(ac);

    if (rds->ac == ac) {
        rds->closing = 0;
        rds->reason_len = 0;
    }
}

#endif


/* the event loop side */

static void
ngx_http_cast_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t       *c;
    ngx_http_cast_redis_t  *rds;
#if (NGX_HAVE_FIONREAD)
    int                     n;
#endif

    c = rev->data;
    rds = c->data;

    if (rds->ac == NULL) {
        return;
    }

    rds->last_read = ngx_current_msec;

#if (NGX_HTTP_CAST_REDIS_TIMER_API)
    /* progress: see ngx_http_cast_redis_schedule_timer() */
    rds->deadline = ngx_current_msec + rds->conf->command_timeout;
#endif

    redisAsyncHandleRead(rds->ac);

    if (rds->conn != c) {
        return;     /* hiredis freed the context: c is free too */
    }

#if (NGX_HAVE_FIONREAD)

    if (!(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        return;
    }

    /*
     * Edge-triggered: hiredis reads at most 16k per call, so come back
     * for the rest through the posted queue (no recursion), and once
     * more for an EOF that arrived with the data.
     */

    if (ngx_socket_nread(c->fd, &n) == -1) {
        n = 0;
    }

    if (n > 0 || (rev->pending_eof && !rds->eof_posted)) {
        if (n == 0) {
            rds->eof_posted = 1;
        }

        if (!rev->posted) {
            ngx_post_event(rev, &ngx_posted_events);
        }
    }

#endif
}


static void
ngx_http_cast_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t       *c;
    ngx_http_cast_redis_t  *rds;

    c = wev->data;
    rds = c->data;

    if (rds->ac == NULL) {
        return;
    }

    redisAsyncHandleWrite(rds->ac);
}


static ngx_uint_t
ngx_http_cast_redis_event_flags(void)
{
#if (NGX_HAVE_FIONREAD)
    if (ngx_event_flags & NGX_USE_CLEAR_EVENT) {
        return NGX_CLEAR_EVENT;
    }
#endif

    return NGX_LEVEL_EVENT;
}


static void
ngx_http_cast_redis_add_read(void *privdata)
{
    ngx_http_cast_redis_add_event(privdata, 0);
}


static void
ngx_http_cast_redis_del_read(void *privdata)
{
    ngx_http_cast_redis_del_event(privdata, 0);
}


static void
ngx_http_cast_redis_add_write(void *privdata)
{
    ngx_http_cast_redis_add_event(privdata, 1);
}


static void
ngx_http_cast_redis_del_write(void *privdata)
{
    ngx_http_cast_redis_del_event(privdata, 1);
}


/* hiredis's add/del hooks on the nginx connection's read or write event */

static void
ngx_http_cast_redis_add_event(ngx_http_cast_redis_t *rds, ngx_uint_t write)
{
    ngx_event_t  *ev;

    if (rds->conn == NULL) {
        return;
    }

    ev = write ? rds->conn->write : rds->conn->read;

    if (ev->active) {
        return;
    }

    if (ngx_add_event(ev, write ? NGX_WRITE_EVENT : NGX_READ_EVENT,
                      ngx_http_cast_redis_event_flags())
        != NGX_OK)
    {
        ngx_http_cast_redis_set_reason(rds, write
                                            ? "cannot add the write event"
                                            : "cannot add the read event");
        ngx_http_cast_redis_close_later(rds);
    }
}


static void
ngx_http_cast_redis_del_event(ngx_http_cast_redis_t *rds, ngx_uint_t write)
{
    ngx_event_t  *ev;

    if (rds->conn == NULL) {
        return;
    }

    ev = write ? rds->conn->write : rds->conn->read;

    if (!ev->active) {
        return;
    }

    (void) ngx_del_event(ev, write ? NGX_WRITE_EVENT : NGX_READ_EVENT,
                         ngx_http_cast_redis_event_flags());
}


/*
 * hiredis is freeing the context (any reason, once): release the nginx
 * connection (hiredis closes the fd itself), then report and reconnect.
 */

static void
ngx_http_cast_redis_cleanup(void *privdata)
{
    ngx_http_cast_redis_t *rds = privdata;

    ngx_uint_t          was_ready, connecting;
    ngx_connection_t   *c;
    redisAsyncContext  *ac;

    c = rds->conn;
    ac = rds->ac;

    if (c == NULL || ac == NULL) {
        return;
    }

    if (ac->c.err) {
        ngx_http_cast_redis_set_reason(rds, "%s", ac->c.errstr);

    } else {
        ngx_http_cast_redis_set_reason(rds, "connection closed");
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    rds->conn = NULL;
    rds->ac = NULL;

    ngx_http_cast_event_cancel(&rds->connect_ev);

    ngx_http_cast_event_cancel(&rds->timeout_ev);

    ngx_http_cast_event_cancel(&rds->ping_ev);

    ngx_http_cast_event_cancel(&rds->close_ev);

    was_ready = (rds->state == NGX_HTTP_CAST_REDIS_READY);
    connecting = (rds->state == NGX_HTTP_CAST_REDIS_CONNECTING);

    rds->state = NGX_HTTP_CAST_REDIS_IDLE;
    rds->closing = 0;

    if (rds->destroyed) {
        return;
    }

    if (!was_ready) {
        ngx_http_cast_redis_failed(rds, connecting);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rds->log, 0,
                  "cast: redis %s connection to %V lost: %*s",
                  rds->name, ngx_http_cast_redis_addr(rds),
                  rds->reason_len, rds->reason);

    rds->last_error_len = 0;

    ngx_http_cast_redis_retry(rds);

    if (rds->on_state) {
        rds->on_state(rds, 0, rds->data);
    }
}


/* TCP keepalive finds a dead peer host on a quiet pub/sub connection */

static void
ngx_http_cast_redis_keepalive(ngx_http_cast_redis_t *rds)
{
    int            value;
    ngx_socket_t   fd;

    fd = rds->ac->c.fd;
    value = 1;

    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, (const void *) &value,
                   sizeof(int))
        == -1)
    {
        ngx_log_error(NGX_LOG_INFO, rds->log, ngx_socket_errno,
                      "cast: redis %s connection: setsockopt(SO_KEEPALIVE) "
                      "failed", rds->name);
        return;
    }

#if (NGX_HAVE_KEEPALIVE_TUNABLE)

    value = 15;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, (const void *) &value,
                      sizeof(int));
    value = 5;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, (const void *) &value,
                      sizeof(int));
    value = 3;
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, (const void *) &value,
                      sizeof(int));

#endif
}
