
/*
 * ngx_http_cast_module: Redis mode (SPEC 5).  One hub across the workers
 * of every nginx host that shares a Redis.
 *
 * What lives where:
 *   - subscription records: hash  cast:sub:{<id>}  (TTL: the bind timeout
 *     until a socket binds, then the rest of the lease), indexed by the
 *     sets  cast:{<topic>}:subs  and  cast:subs;
 *   - a topic's context: hash  cast:{<topic>}:ctx  and the sorted set
 *     cast:{<topic>}:opens  (open contexts in the order they were opened);
 *   - events: channel  cast:ev:<topic>, payload
 *     "<stream id>\n<lowercase name>\n<json>"; each event is also kept
 *     for a minute in the stream  cast:{<topic>}:log, so that a worker
 *     whose pub/sub connection was lost catches up on what it missed;
 *   - control: channel  cast:ctl, "end <id> <reason>" and
 *     "renew <id> <expires ms> <events>".
 * Every read-modify-write is one Lua script, so a publish updates the
 * context and PUBLISHes in one step: Redis gives the one order per topic,
 * and every worker (the publishing one too) delivers what its pub/sub
 * connection receives.  A worker SUBSCRIBEs only to the topics it has
 * sockets for, and PSUBSCRIBEs to every topic while it has "*" sockets.
 *
 * Each worker has two connections (src/ngx_http_cast_redis.c): one for
 * commands, one for pub/sub.  Requests wait for Redis's answer; while it is
 * unreachable they get 503 with Retry-After, open sockets stay open.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_redis.h"


#define NGX_HTTP_CAST_CTL_CHANNEL   "cast:ctl"
#define NGX_HTTP_CAST_EV_PREFIX     "cast:ev:"
#define NGX_HTTP_CAST_EV_PATTERN    "cast:ev:*"

#define NGX_HTTP_CAST_RETRY_AFTER   "1"

/* workers report their counters to cast:stats this often (ms) */
#define NGX_HTTP_CAST_REPORT        2000
#define NGX_HTTP_CAST_REPORT_KEEP   10000

/* how long events stay in a topic's stream for workers to catch up (ms) */
#define NGX_HTTP_CAST_LOG_KEEP      60000
#define NGX_HTTP_CAST_LOG_TTL       "120000"

/* events held per topic while it catches up */
#define NGX_HTTP_CAST_MAX_HELD      10000

#define NGX_HTTP_CAST_MAX_ARGS      48

/* record fields that are not request fields */
#define NGX_HTTP_CAST_RECORD_ENDPOINT  -1
#define NGX_HTTP_CAST_RECORD_DIALECT   -2
#define NGX_HTTP_CAST_RECORD_EXPIRES   -3
#define NGX_HTTP_CAST_RECORD_OTHER     -4


typedef enum {
    NGX_HTTP_CAST_SCRIPT_SUBSCRIBE = 0,
    NGX_HTTP_CAST_SCRIPT_RENEW,
    NGX_HTTP_CAST_SCRIPT_UNSUBSCRIBE,
    NGX_HTTP_CAST_SCRIPT_UNSUBSCRIBE_MATCHING,
    NGX_HTTP_CAST_SCRIPT_RESET,
    NGX_HTTP_CAST_SCRIPT_BIND,
    NGX_HTTP_CAST_SCRIPT_END,
    NGX_HTTP_CAST_SCRIPT_PUBLISH,
    NGX_HTTP_CAST_SCRIPT_CONTEXT,
    NGX_HTTP_CAST_SCRIPT_OPENS,
    NGX_HTTP_CAST_SCRIPT_STATS,
    NGX_HTTP_CAST_SCRIPT_LAST
} ngx_http_cast_script_e;


typedef struct {
    const char                *text;
    u_char                     sha[41];
} ngx_http_cast_script_t;


struct ngx_http_cast_bus_s {
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_redis_t     *cmd;
    ngx_http_cast_redis_t     *pubsub;
    ngx_event_t                report_ev;   /* this worker's counters */
    ngx_log_t                 *log;
    unsigned                   wildcard:1;  /* PSUBSCRIBEd */
};


typedef ngx_int_t (*ngx_http_cast_bus_reply_pt)(ngx_http_request_t *r,
    redisReply *reply, void *data);


/* one request waiting for Redis; outlives the request if need be */

typedef struct {
    ngx_http_request_t        *request;     /* NULL once it is gone */
    ngx_http_cleanup_t        *cleanup;
    ngx_http_cast_bus_reply_pt handler;
    void                      *data;
} ngx_http_cast_bus_call_t;


/* what a reply handler needs to know about its request */

typedef struct {
    ngx_str_t                  endpoint;
    ngx_str_t                  key;         /* Sec-WebSocket-Key */
    ngx_str_t                  id;
    ngx_str_t                  topic;
    ngx_uint_t                 reset;       /* DELETE {base} */
    ngx_uint_t                 unsubscribe;
} ngx_http_cast_bus_ctx_t;


static ngx_int_t ngx_http_cast_bus_call(ngx_http_request_t *r,
    ngx_uint_t script, int argc, const char **argv, const size_t *argvlen,
    ngx_http_cast_bus_reply_pt handler, void *data);
static void ngx_http_cast_bus_call_cleanup(void *data);
static void ngx_http_cast_bus_call_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_cast_bus_eval(ngx_http_cast_bus_t *bus,
    ngx_uint_t script, int argc, const char **argv, const size_t *argvlen,
    redisCallbackFn *fn, void *privdata);
static ngx_int_t ngx_http_cast_bus_unavailable(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_bus_retry(ngx_http_request_t *r,
    const char *reason);
static ngx_int_t ngx_http_cast_bus_reply_error(ngx_http_request_t *r,
    redisReply *reply);
static void ngx_http_cast_bus_report(ngx_event_t *ev);
static ngx_int_t ngx_http_cast_bus_status_reply(ngx_http_request_t *r,
    redisReply *reply, void *data);
static void ngx_http_cast_bus_cmd_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data);
static void ngx_http_cast_bus_pubsub_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data);
static void ngx_http_cast_bus_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_bus_event(ngx_http_cast_bus_t *bus,
    redisReply *channel, redisReply *payload, ngx_uint_t which);
static void ngx_http_cast_bus_deliver(ngx_http_cast_bus_t *bus,
    ngx_http_cast_topic_t *topic, ngx_str_t *topic_name, u_char *p,
    size_t len, ngx_uint_t which);
static ngx_int_t ngx_http_cast_bus_number(u_char *p, u_char *last,
    uint64_t *n);
static void ngx_http_cast_bus_catch_up(ngx_http_cast_bus_t *bus);
static void ngx_http_cast_bus_missed(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_bus_deliver_entry(ngx_http_cast_bus_t *bus,
    ngx_http_cast_topic_t *topic, ngx_str_t *name, redisReply *id,
    redisReply *message);
static void ngx_http_cast_bus_caught_up(ngx_http_cast_bus_t *bus,
    ngx_http_cast_topic_t *topic);
static void ngx_http_cast_bus_control(ngx_http_cast_bus_t *bus,
    redisReply *payload);
static void ngx_http_cast_bus_listen(ngx_http_cast_bus_t *bus,
    ngx_str_t *topic, ngx_uint_t on);
static ngx_int_t ngx_http_cast_bus_subscribed(ngx_http_request_t *r,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_cast_bus_unsubscribed(ngx_http_request_t *r,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_cast_bus_removed(ngx_http_request_t *r,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_cast_bus_published(ngx_http_request_t *r,
    redisReply *reply, void *data);
static void ngx_http_cast_bus_ws_published(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_cast_bus_context_reply(ngx_http_request_t *r,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_cast_bus_bound(ngx_http_request_t *r,
    redisReply *reply, void *data);
static void ngx_http_cast_bus_opens(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_bus_logged(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_bus_key(ngx_pool_t *pool, ngx_str_t *out,
    const char *prefix, ngx_str_t *name, const char *suffix);
static ngx_int_t ngx_http_cast_bus_record(ngx_http_request_t *r,
    redisReply *reply, ngx_http_cast_fields_t *f, ngx_str_t *endpoint,
    ngx_uint_t *dialect, int64_t *expires);


/*
 * The scripts.  KEYS and ARGV are documented above each; the keys not
 * passed in KEYS are derived from the same names (standalone Redis or one
 * shard; see README "Scaling out").
 */

static ngx_http_cast_script_t  ngx_http_cast_scripts[] = {

    /* KEYS: sub, topic index, all;  ARGV: id, ttl ms, field/value... */
    { "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
      "redis.call('HSET', KEYS[1], unpack(ARGV, 3)) "
      "redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
      "redis.call('SADD', KEYS[2], ARGV[1]) "
      "redis.call('SADD', KEYS[3], ARGV[1]) "
      "return 1", "" },

    /* KEYS: sub;  ARGV: id, topic, events, lease s, expires ms, now ms */
    { "local h = redis.call('HMGET', KEYS[1], 'topic', 'bound', "
      "'endpoint') "
      "if not h[1] or h[1] ~= ARGV[2] then return false end "
      "redis.call('HSET', KEYS[1], 'events', ARGV[3], 'lease', ARGV[4], "
      "'expires', ARGV[5]) "
      "if h[2] == '1' then "
      "redis.call('PEXPIRE', KEYS[1], ARGV[5] - ARGV[6]) end "
      "redis.call('PUBLISH', 'cast:ctl', 'renew ' .. ARGV[1] .. ' ' .. "
      "ARGV[5] .. ' ' .. ARGV[3]) "
      "return h[3]", "" },

    /* KEYS: sub, all;  ARGV: id, topic or '', reason */
    { "local h = redis.call('HMGET', KEYS[1], 'topic', 'endpoint') "
      "if not h[1] or (ARGV[2] ~= '' and h[1] ~= ARGV[2]) then "
      "return false end "
      "redis.call('DEL', KEYS[1]) "
      "redis.call('SREM', 'cast:{' .. h[1] .. '}:subs', ARGV[1]) "
      "redis.call('SREM', KEYS[2], ARGV[1]) "
      "redis.call('PUBLISH', 'cast:ctl', 'end ' .. ARGV[1] .. ' ' .. "
      "ARGV[3]) "
      "return h[2]", "" },

    /* KEYS: topic index, all;  ARGV: field, value, reason */
    { "local n = 0 "
      "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
      "local k = 'cast:sub:{' .. id .. '}' "
      "local v = redis.call('HGET', k, ARGV[1]) "
      "if not v then redis.call('SREM', KEYS[1], id) "
      "elseif v == ARGV[2] then "
      "redis.call('DEL', k) redis.call('SREM', KEYS[1], id) "
      "redis.call('SREM', KEYS[2], id) "
      "redis.call('PUBLISH', 'cast:ctl', 'end ' .. id .. ' ' .. ARGV[3]) "
      "n = n + 1 end end "
      "return n", "" },

    /* KEYS: all */
    { "local n = 0 "
      "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
      "local k = 'cast:sub:{' .. id .. '}' "
      "local t = redis.call('HGET', k, 'topic') "
      "if t then redis.call('DEL', k) "
      "redis.call('SREM', 'cast:{' .. t .. '}:subs', id) "
      "redis.call('PUBLISH', 'cast:ctl', 'end ' .. id .. ' reset') "
      "n = n + 1 end end "
      "redis.call('DEL', KEYS[1]) "
      "return n", "" },

    /* KEYS: sub;  ARGV: now ms */
    { "local h = redis.call('HGETALL', KEYS[1]) "
      "if #h == 0 then return 0 end "
      "local rec = {} "
      "for i = 1, #h, 2 do rec[h[i]] = h[i + 1] end "
      "if rec.bound == '1' then return -1 end "
      "local left = tonumber(rec.expires) - tonumber(ARGV[1]) "
      "if left <= 0 then redis.call('DEL', KEYS[1]) return 0 end "
      "redis.call('HSET', KEYS[1], 'bound', '1') "
      "redis.call('PEXPIRE', KEYS[1], left) "
      "return h", "" },

    /* KEYS: sub, all;  ARGV: id */
    { "local t = redis.call('HGET', KEYS[1], 'topic') "
      "if t then redis.call('DEL', KEYS[1]) "
      "redis.call('SREM', 'cast:{' .. t .. '}:subs', ARGV[1]) "
      "redis.call('SREM', KEYS[2], ARGV[1]) end "
      "return 1", "" },

    /*
     * KEYS: ctx, opens, log;  ARGV: channel, message, context op, context,
     * anchor op, member, type, version, event, max opens, oldest kept id,
     * log ttl ms
     */
    { "if ARGV[3] == 'clear' then redis.call('HDEL', KEYS[1], 'g1') "
      "elseif ARGV[3] == 'set' then "
      "redis.call('HSET', KEYS[1], 'g1', ARGV[4]) end "
      "local m = ARGV[6] "
      "if ARGV[5] ~= '' then "
      "if redis.call('ZREM', KEYS[2], m) == 1 then "
      "redis.call('HDEL', KEYS[1], 'o:' .. m, 't:' .. m, 'v:' .. m) end "
      "if redis.call('HGET', KEYS[1], 'current') == m then "
      "redis.call('HDEL', KEYS[1], 'current') end end "
      "if ARGV[5] == 'open' then "
      "local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1) "
      "redis.call('ZADD', KEYS[2], seq, m) "
      "redis.call('HSET', KEYS[1], 'o:' .. m, ARGV[9], 't:' .. m, ARGV[7], "
      "'v:' .. m, ARGV[8], 'current', m) "
      "local n = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[10]) "
      "if n > 0 then "
      "for _, x in ipairs(redis.call('ZRANGE', KEYS[2], 0, n - 1)) do "
      "redis.call('ZREM', KEYS[2], x) "
      "redis.call('HDEL', KEYS[1], 'o:' .. x, 't:' .. x, 'v:' .. x) "
      "end end end "
      "redis.call('PEXPIRE', KEYS[1], 86400000) "
      "redis.call('PEXPIRE', KEYS[2], 86400000) "
      "local id = redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[11], '*', "
      "'m', ARGV[2]) "
      "redis.call('PEXPIRE', KEYS[3], ARGV[12]) "
      "return redis.call('PUBLISH', ARGV[1], id .. '\\n' .. ARGV[2])", "" },

    /* KEYS: ctx;  ARGV: 'cast' or 'fhircast' */
    { "if ARGV[1] == 'cast' then "
      "return redis.call('HGET', KEYS[1], 'g1') end "
      "local m = redis.call('HGET', KEYS[1], 'current') "
      "if not m then return false end "
      "return redis.call('HMGET', KEYS[1], 't:' .. m, 'v:' .. m, "
      "'o:' .. m)", "" },

    /* KEYS: ctx, opens */
    { "local out = {} "
      "for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do "
      "out[#out + 1] = redis.call('HGET', KEYS[1], 'o:' .. m) end "
      "return out", "" },

    /* KEYS: stats;  ARGV: oldest report kept, ms */
    { "local out = {} "
      "local h = redis.call('HGETALL', KEYS[1]) "
      "for i = 1, #h, 2 do "
      "local t = string.match(h[i + 1], '^(%d+) ') "
      "if t and tonumber(t) >= tonumber(ARGV[1]) then "
      "out[#out + 1] = string.sub(h[i + 1], #t + 2) "
      "else redis.call('HDEL', KEYS[1], h[i]) end end "
      "return out", "" }
};


/* worker start: the two connections; sockets bind as Redis answers */

ngx_int_t
ngx_http_cast_bus_init(ngx_cycle_t *cycle, ngx_http_cast_hub_t *hub,
    ngx_http_cast_redis_conf_t *conf)
{
    u_char                 hash[20];
    ngx_uint_t             i;
    ngx_sha1_t             sha1;
    ngx_http_cast_bus_t   *bus;

    bus = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_bus_t));
    if (bus == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_CAST_SCRIPT_LAST; i++) {
        ngx_sha1_init(&sha1);
        ngx_sha1_update(&sha1, ngx_http_cast_scripts[i].text,
                        ngx_strlen(ngx_http_cast_scripts[i].text));
        ngx_sha1_final(hash, &sha1);
        ngx_hex_dump(ngx_http_cast_scripts[i].sha, hash, sizeof(hash));
        ngx_http_cast_scripts[i].sha[40] = '\0';
    }

    bus->hub = hub;
    bus->log = cycle->log;

    bus->cmd = ngx_http_cast_redis_create(cycle, conf, "command",
                                          ngx_http_cast_bus_cmd_state, bus);
    bus->pubsub = ngx_http_cast_redis_create(cycle, conf, "pubsub",
                                             ngx_http_cast_bus_pubsub_state,
                                             bus);
    if (bus->cmd == NULL || bus->pubsub == NULL) {
        return NGX_ERROR;
    }

    hub->bus = bus;

    ngx_http_cast_redis_start(bus->cmd);
    ngx_http_cast_redis_start(bus->pubsub);

    bus->report_ev.handler = ngx_http_cast_bus_report;
    bus->report_ev.data = bus;
    bus->report_ev.log = cycle->log;
    bus->report_ev.cancelable = 1;
    ngx_add_timer(&bus->report_ev, NGX_HTTP_CAST_REPORT);

    return NGX_OK;
}


/* every 2 s: "<ms> <json>" under "<host>:<pid>" in cast:stats */

static void
ngx_http_cast_bus_report(ngx_event_t *ev)
{
    ngx_http_cast_bus_t *bus = ev->data;

    u_char      *p, *who, name[NGX_MAXHOSTNAMELEN + NGX_INT64_LEN + 2];
    json_t      *worker;
    size_t       len, size;
    ngx_time_t  *tp;

    ngx_add_timer(ev, NGX_HTTP_CAST_REPORT);

    if (!ngx_http_cast_redis_ready(bus->cmd)) {
        return;
    }

    worker = ngx_http_cast_status_worker(bus->hub);
    if (worker == NULL) {
        return;
    }

    size = json_dumpb(worker, NULL, 0, JSON_COMPACT);

    p = ngx_alloc(NGX_INT64_LEN + 1 + size, ev->log);
    if (p == NULL) {
        json_decref(worker);
        return;
    }

    tp = ngx_timeofday();

    len = ngx_sprintf(p, "%L ", (int64_t) tp->sec * 1000 + tp->msec) - p;
    len += json_dumpb(worker, (char *) p + len, size, JSON_COMPACT);

    /* hiredis formats the command: nginx's %V and %P are not for it */

    who = ngx_sprintf(name, "%V:%P", &ngx_cycle->hostname, ngx_pid);

    (void) ngx_http_cast_redis_commandf(bus->cmd, ngx_http_cast_bus_logged,
                                        NULL, "HSET cast:stats %b %b",
                                        name, (size_t) (who - name), p, len);
    ngx_free(p);
    json_decref(worker);
}


void
ngx_http_cast_bus_exit(ngx_http_cast_hub_t *hub)
{
    ngx_http_cast_bus_t  *bus;

    bus = hub->bus;

    if (bus == NULL) {
        return;
    }

    ngx_http_cast_event_cancel(&bus->report_ev);

    ngx_http_cast_redis_destroy(bus->pubsub);
    ngx_http_cast_redis_destroy(bus->cmd);

    hub->bus = NULL;
}


ngx_uint_t
ngx_http_cast_bus_ready(ngx_http_cast_bus_t *bus)
{
    return ngx_http_cast_redis_ready(bus->cmd)
           && ngx_http_cast_redis_ready(bus->pubsub);
}


/* the command connection: scripts are loaded before any EVALSHA */

static void
ngx_http_cast_bus_cmd_state(ngx_http_cast_redis_t *rds, ngx_uint_t connected,
    void *data)
{
    ngx_uint_t  i;

    if (!connected) {
        return;
    }

    for (i = 0; i < NGX_HTTP_CAST_SCRIPT_LAST; i++) {
        (void) ngx_http_cast_redis_commandf(rds, ngx_http_cast_bus_logged,
                                            NULL, "SCRIPT LOAD %s",
                                            ngx_http_cast_scripts[i].text);
    }

    if (data) {
        ngx_http_cast_bus_catch_up(data);
    }
}


/* the pub/sub connection: the control channel and our topics again */

static void
ngx_http_cast_bus_pubsub_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data)
{
    ngx_http_cast_bus_t *bus = data;

    ngx_rbtree_node_t      *node, *root, *sentinel;
    ngx_http_cast_topic_t  *topic;

    bus->wildcard = 0;

    if (!connected) {
        return;
    }

    (void) ngx_http_cast_redis_commandf(rds, ngx_http_cast_bus_message, bus,
                                        "SUBSCRIBE %s",
                                        NGX_HTTP_CAST_CTL_CHANNEL);

    root = bus->hub->topics.root;
    sentinel = bus->hub->topics.sentinel;

    if (root != sentinel) {
        for (node = ngx_rbtree_min(root, sentinel);
             node;
             node = ngx_rbtree_next(&bus->hub->topics, node))
        {
            topic = (ngx_http_cast_topic_t *) node;

            if (ngx_queue_empty(&topic->subs)) {
                continue;
            }

            ngx_http_cast_bus_listen(bus, &topic->sn.str, 1);

            if (topic->last_ms || topic->last_seq) {
                topic->catchup = NGX_HTTP_CAST_CATCHUP_WANTED;
            }
        }
    }

    if (!ngx_queue_empty(&bus->hub->wildcard)) {
        ngx_http_cast_bus_wildcard(bus->hub, 1);
    }

    ngx_http_cast_bus_catch_up(bus);
}


/* SUBSCRIBE to a topic's channel while this worker has sockets on it */

void
ngx_http_cast_bus_topic(ngx_http_cast_hub_t *hub, ngx_str_t *topic,
    ngx_uint_t on)
{
    if (hub->bus) {
        ngx_http_cast_bus_listen(hub->bus, topic, on);
    }
}


static void
ngx_http_cast_bus_listen(ngx_http_cast_bus_t *bus, ngx_str_t *topic,
    ngx_uint_t on)
{
    if (!ngx_http_cast_redis_ready(bus->pubsub)) {
        /* done again when the connection is back */
        return;
    }

    if (on) {
        (void) ngx_http_cast_redis_commandf(bus->pubsub,
                                            ngx_http_cast_bus_message, bus,
                                            "SUBSCRIBE "
                                            NGX_HTTP_CAST_EV_PREFIX "%b",
                                            topic->data, topic->len);
        return;
    }

    (void) ngx_http_cast_redis_commandf(bus->pubsub, NULL, NULL,
                                        "UNSUBSCRIBE "
                                        NGX_HTTP_CAST_EV_PREFIX "%b",
                                        topic->data, topic->len);
}


void
ngx_http_cast_bus_wildcard(ngx_http_cast_hub_t *hub, ngx_uint_t on)
{
    ngx_http_cast_bus_t  *bus;

    bus = hub->bus;

    if (bus == NULL || !ngx_http_cast_redis_ready(bus->pubsub)
        || bus->wildcard == on)
    {
        return;
    }

    if (ngx_http_cast_redis_commandf(bus->pubsub,
                                     on ? ngx_http_cast_bus_message : NULL,
                                     on ? bus : NULL,
                                     on ? "PSUBSCRIBE %s" : "PUNSUBSCRIBE %s",
                                     NGX_HTTP_CAST_EV_PATTERN)
        == NGX_OK)
    {
        bus->wildcard = on;
    }
}


/* every message of the pub/sub connection */

static void
ngx_http_cast_bus_message(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_cast_bus_t *bus = privdata;
    redisReply          *reply = r;

    redisReply  *kind;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 3)
    {
        return;
    }

    kind = reply->element[0];

    if (kind->type != REDIS_REPLY_STRING) {
        return;
    }

    if (kind->len == 7 && ngx_strncmp(kind->str, "message", 7) == 0) {

        if (reply->element[1]->len == sizeof(NGX_HTTP_CAST_CTL_CHANNEL) - 1
            && ngx_strncmp(reply->element[1]->str, NGX_HTTP_CAST_CTL_CHANNEL,
                           sizeof(NGX_HTTP_CAST_CTL_CHANNEL) - 1) == 0)
        {
            ngx_http_cast_bus_control(bus, reply->element[2]);
            return;
        }

        ngx_http_cast_bus_event(bus, reply->element[1], reply->element[2],
                                NGX_HTTP_CAST_DELIVER_TOPIC);
        return;
    }

    if (kind->len == 8 && ngx_strncmp(kind->str, "pmessage", 8) == 0
        && reply->elements == 4)
    {
        ngx_http_cast_bus_event(bus, reply->element[2], reply->element[3],
                                NGX_HTTP_CAST_DELIVER_WILDCARD);
    }
}


static void
ngx_http_cast_bus_event(ngx_http_cast_bus_t *bus, redisReply *channel,
    redisReply *payload, ngx_uint_t which)
{
    size_t                  prefix;
    ngx_str_t               name;
    ngx_http_cast_held_t   *held;
    ngx_http_cast_topic_t  *topic;

    prefix = sizeof(NGX_HTTP_CAST_EV_PREFIX) - 1;

    if (channel->type != REDIS_REPLY_STRING
        || payload->type != REDIS_REPLY_STRING
        || channel->len <= prefix)
    {
        return;
    }

    name.data = (u_char *) channel->str + prefix;
    name.len = channel->len - prefix;

    if (which == NGX_HTTP_CAST_DELIVER_WILDCARD) {
        ngx_http_cast_bus_deliver(bus, NULL, &name, (u_char *) payload->str,
                                  payload->len, which);
        return;
    }

    topic = ngx_http_cast_topic_find(bus->hub, &name);
    if (topic == NULL) {
        return;
    }

    if (topic->catchup != NGX_HTTP_CAST_CATCHUP_NONE) {

        /* delivered after what the stream says was missed */

        if (topic->nheld == NGX_HTTP_CAST_MAX_HELD) {
            ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                          "cast: too many events on \"%V\" while catching "
                          "up, one was dropped", &name);
            return;
        }

        held = ngx_alloc(sizeof(ngx_http_cast_held_t) + payload->len,
                         bus->log);
        if (held == NULL) {
            return;
        }

        held->len = payload->len;
        ngx_memcpy(held->data, payload->str, payload->len);
        ngx_queue_insert_tail(&topic->held, &held->queue);
        topic->nheld++;

        return;
    }

    ngx_http_cast_bus_deliver(bus, topic, &name, (u_char *) payload->str,
                              payload->len, which);
}


/*
 * "<stream id>\n<name>\n<json>": delivered unless this topic has had it
 * already (after a catch-up, the same event can come twice).
 */

static void
ngx_http_cast_bus_deliver(ngx_http_cast_bus_t *bus,
    ngx_http_cast_topic_t *topic, ngx_str_t *topic_name, u_char *p,
    size_t len, ngx_uint_t which)
{
    u_char     *end, *nl, *dash;
    uint64_t    ms, seq;
    ngx_str_t   name, json;

    end = p + len;

    nl = ngx_strlchr(p, end, '\n');
    dash = nl ? ngx_strlchr(p, nl, '-') : NULL;

    if (dash == NULL
        || ngx_http_cast_bus_number(p, dash, &ms) != NGX_OK
        || ngx_http_cast_bus_number(dash + 1, nl, &seq) != NGX_OK)
    {
        goto malformed;
    }

    name.data = nl + 1;
    nl = ngx_strlchr(name.data, end, '\n');
    if (nl == NULL) {
        goto malformed;
    }

    name.len = nl - name.data;

    json.data = nl + 1;
    json.len = end - json.data;

    if (topic) {
        if (ms < topic->last_ms
            || (ms == topic->last_ms && seq <= topic->last_seq))
        {
            return;
        }

        topic->last_ms = ms;
        topic->last_seq = seq;
    }

    /* the topic was looked up once, by the caller */
    ngx_http_cast_hub_deliver(bus->hub, topic, &name, &json, which,
                              bus->log);
    return;

malformed:

    ngx_log_error(NGX_LOG_ERR, bus->log, 0,
                  "cast: redis sent a malformed event on \"%V\"",
                  topic_name);
}


static ngx_int_t
ngx_http_cast_bus_number(u_char *p, u_char *last, uint64_t *n)
{
    if (p == last || last - p > 19) {
        return NGX_ERROR;
    }

    for (*n = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        *n = *n * 10 + (*p - '0');
    }

    return NGX_OK;
}


/*
 * After the pub/sub connection came back: each topic with sockets here
 * reads what it missed from its stream (XRANGE after its last id), then
 * what was held meanwhile.
 */

static void
ngx_http_cast_bus_catch_up(ngx_http_cast_bus_t *bus)
{
    u_char                 *id, *p;
    ngx_str_t               key;
    ngx_rbtree_node_t      *node, *root, *sentinel;
    ngx_http_cast_topic_t  *topic;

    if (!ngx_http_cast_redis_ready(bus->cmd)) {
        /* again when the command connection is ready */
        return;
    }

    root = bus->hub->topics.root;
    sentinel = bus->hub->topics.sentinel;

    if (root == sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&bus->hub->topics, node))
    {
        topic = (ngx_http_cast_topic_t *) node;

        if (topic->catchup != NGX_HTTP_CAST_CATCHUP_WANTED) {
            continue;
        }

        /* the reply finds the topic by name: it may be gone by then */

        id = ngx_alloc(topic->sn.str.len + 1, bus->log);
        key.data = ngx_alloc(topic->sn.str.len + sizeof("cast:{}:log"),
                             bus->log);

        if (id == NULL || key.data == NULL) {
            ngx_free(id);
            ngx_free(key.data);
            ngx_http_cast_bus_caught_up(bus, topic);
            continue;
        }

        p = ngx_cpymem(id, topic->sn.str.data, topic->sn.str.len);
        *p = '\0';

        key.len = ngx_sprintf(key.data, "cast:{%V}:log", &topic->sn.str)
                  - key.data;

        if (ngx_http_cast_redis_commandf(bus->cmd, ngx_http_cast_bus_missed,
                                         id, "XRANGE %b (%llu-%llu +",
                                         key.data, key.len,
                                         (unsigned long long) topic->last_ms,
                                         (unsigned long long)
                                             topic->last_seq)
            != NGX_OK)
        {
            ngx_free(id);
            ngx_http_cast_bus_caught_up(bus, topic);

        } else {
            topic->catchup = NGX_HTTP_CAST_CATCHUP_SENT;
        }

        ngx_free(key.data);
    }
}


static void
ngx_http_cast_bus_missed(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    size_t                  i;
    ngx_str_t               name;
    redisReply             *entry, *fields;
    ngx_http_cast_hub_t    *hub;
    ngx_http_cast_topic_t  *topic;

    name.data = privdata;
    name.len = ngx_strlen(privdata);

    hub = ngx_http_cast_get_hub();
    topic = (hub && hub->bus) ? ngx_http_cast_topic_find(hub, &name) : NULL;

    if (topic == NULL || topic->catchup != NGX_HTTP_CAST_CATCHUP_SENT) {
        ngx_free(privdata);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_ERR, hub->bus->log, 0,
                      "cast: could not read the events \"%V\" missed while "
                      "the pub/sub connection was down", &name);

    } else {
        for (i = 0; i < reply->elements; i++) {
            entry = reply->element[i];

            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) {
                continue;
            }

            fields = entry->element[1];

            if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 2
                || fields->element[1]->type != REDIS_REPLY_STRING
                || entry->element[0]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            ngx_http_cast_bus_deliver_entry(hub->bus, topic, &name,
                                            entry->element[0],
                                            fields->element[1]);
        }

        if (reply->elements) {
            ngx_log_error(NGX_LOG_INFO, hub->bus->log, 0,
                          "cast: %uz events on \"%V\" caught up after the "
                          "pub/sub connection came back", reply->elements,
                          &name);
        }
    }

    ngx_http_cast_bus_caught_up(hub->bus, topic);
    ngx_free(privdata);
}


/* a stream entry: id and "<name>\n<json>" back into the message form */

static void
ngx_http_cast_bus_deliver_entry(ngx_http_cast_bus_t *bus,
    ngx_http_cast_topic_t *topic, ngx_str_t *name, redisReply *id,
    redisReply *message)
{
    u_char  *p, *buf;
    size_t   len;

    len = id->len + 1 + message->len;

    buf = ngx_alloc(len, bus->log);
    if (buf == NULL) {
        return;
    }

    p = ngx_cpymem(buf, id->str, id->len);
    *p++ = '\n';
    ngx_memcpy(p, message->str, message->len);

    ngx_http_cast_bus_deliver(bus, topic, name, buf, len,
                              NGX_HTTP_CAST_DELIVER_TOPIC);
    ngx_free(buf);
}


/* the held events go out, those already delivered are skipped */

static void
ngx_http_cast_bus_caught_up(ngx_http_cast_bus_t *bus,
    ngx_http_cast_topic_t *topic)
{
    ngx_queue_t           *q;
    ngx_http_cast_held_t  *held;

    topic->catchup = NGX_HTTP_CAST_CATCHUP_NONE;

    while (!ngx_queue_empty(&topic->held)) {
        q = ngx_queue_head(&topic->held);
        ngx_queue_remove(q);
        topic->nheld--;

        held = ngx_queue_data(q, ngx_http_cast_held_t, queue);

        ngx_http_cast_bus_deliver(bus, topic, &topic->sn.str, held->data,
                                  held->len, NGX_HTTP_CAST_DELIVER_TOPIC);
        ngx_free(held);
    }
}


/* "end <id> <reason>", "renew <id> <expires ms> <events>" */

static void
ngx_http_cast_bus_control(ngx_http_cast_bus_t *bus, redisReply *payload)
{
    u_char               *p, *end, *sp, reason[64];
    int64_t               expires;
    ngx_str_t             id, events, err;
    ngx_pool_t           *pool;
    ngx_http_cast_sub_t  *sub;

    if (payload->type != REDIS_REPLY_STRING) {
        return;
    }

    p = (u_char *) payload->str;
    end = p + payload->len;

    sp = ngx_strlchr(p, end, ' ');
    if (sp == NULL || end - sp < 1 + NGX_HTTP_CAST_ID_LEN) {
        return;
    }

    id.data = sp + 1;
    id.len = NGX_HTTP_CAST_ID_LEN;

    sub = ngx_http_cast_sub_find(bus->hub, &id);
    if (sub == NULL) {
        return;
    }

    p = id.data + id.len;
    if (p < end) {
        p++;
    }

    if (sp - (u_char *) payload->str == 3
        && ngx_strncmp(payload->str, "end", 3) == 0)
    {
        ngx_cpystrn(reason, p, ngx_min((size_t) (end - p) + 1,
                                       sizeof(reason)));

        sub->remote_ended = 1;
        ngx_http_cast_sub_remove(sub, (char *) reason);
        return;
    }

    if (sp - (u_char *) payload->str != 5
        || ngx_strncmp(payload->str, "renew", 5) != 0)
    {
        return;
    }

    sp = ngx_strlchr(p, end, ' ');
    if (sp == NULL) {
        return;
    }

    expires = ngx_atotm(p, sp - p);
    if (expires == NGX_ERROR) {
        return;
    }

    events.data = sp + 1;
    events.len = end - events.data;

    pool = ngx_create_pool(1024, bus->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_http_cast_sub_set_events(sub, &events, pool, &err) == NGX_OK) {
        ngx_http_cast_sub_renew_until(sub, expires);
        ngx_http_cast_sub_confirm(sub);
    }

    ngx_destroy_pool(pool);
}


/*
 * Requests that wait for Redis.  The handler's result finalizes the
 * request; a request that went away meanwhile is just forgotten.  Returns
 * NGX_DONE when the command is on its way, else the request's answer (503
 * while Redis is unreachable).
 */

static ngx_int_t
ngx_http_cast_bus_call(ngx_http_request_t *r, ngx_uint_t script, int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_cast_bus_reply_pt handler, void *data)
{
    ngx_http_cast_bus_t       *bus;
    ngx_http_cleanup_t        *cln;
    ngx_http_cast_bus_call_t  *call;

    bus = ngx_http_cast_get_hub()->bus;

    if (!ngx_http_cast_bus_ready(bus)) {
        return ngx_http_cast_bus_unavailable(r);
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call = ngx_alloc(sizeof(ngx_http_cast_bus_call_t), r->connection->log);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->request = r;
    call->cleanup = cln;
    call->handler = handler;
    call->data = data;

    if (ngx_http_cast_bus_eval(bus, script, argc, argv, argvlen,
                               ngx_http_cast_bus_call_reply, call)
        != NGX_OK)
    {
        ngx_free(call);
        return ngx_http_cast_bus_unavailable(r);
    }

    cln->handler = ngx_http_cast_bus_call_cleanup;
    cln->data = call;

    return NGX_DONE;
}


static void
ngx_http_cast_bus_call_cleanup(void *data)
{
    ngx_http_cast_bus_call_t *call = data;

    call->request = NULL;
}


static void
ngx_http_cast_bus_call_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_cast_bus_call_t *call = privdata;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *req;

    req = call->request;

    if (req) {
        call->cleanup->handler = NULL;

        c = req->connection;
        ngx_http_set_log_request(c->log, req);

        rc = call->handler(req, r, call->data);

        ngx_http_finalize_request(req, rc);
        ngx_http_run_posted_requests(c);
    }

    ngx_free(call);
}


/* EVALSHA <sha> <nkeys> ... ; argv[0..1] are filled in here */

static ngx_int_t
ngx_http_cast_bus_eval(ngx_http_cast_bus_t *bus, ngx_uint_t script, int argc,
    const char **argv, const size_t *argvlen, redisCallbackFn *fn,
    void *privdata)
{
    argv[0] = "EVALSHA";
    ((size_t *) argvlen)[0] = sizeof("EVALSHA") - 1;
    argv[1] = (const char *) ngx_http_cast_scripts[script].sha;
    ((size_t *) argvlen)[1] = 40;

    return ngx_http_cast_redis_command(bus->cmd, fn, privdata, argc, argv,
                                       argvlen);
}


static ngx_int_t
ngx_http_cast_bus_unavailable(ngx_http_request_t *r)
{
    return ngx_http_cast_bus_retry(r, "the hub's Redis is unreachable, "
                                      "try again");
}


/* 503 with Retry-After: nothing was accepted, the client may retry */

static ngx_int_t
ngx_http_cast_bus_retry(ngx_http_request_t *r, const char *reason)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    ngx_str_set(&h->value, NGX_HTTP_CAST_RETRY_AFTER);

    return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "%s",
                                    reason);
}


/*
 * NULL (connection lost) or an error reply: 503, logged.  NOSCRIPT means
 * the scripts were flushed (SCRIPT FLUSH, a failover): they are loaded
 * again, and the client retries.
 */

static ngx_int_t
ngx_http_cast_bus_reply_error(ngx_http_request_t *r, redisReply *reply)
{
    if (reply == NULL) {
        return ngx_http_cast_bus_unavailable(r);
    }

    ngx_http_cast_bus_logged(NULL, reply, NULL);

    return ngx_http_cast_bus_retry(r, "the hub's Redis refused the request, "
                                      "try again");
}


static void
ngx_http_cast_bus_logged(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    ngx_http_cast_hub_t  *hub;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                  "cast: redis answered an error: %*s",
                  reply->len, reply->str);

    if (reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        hub = ngx_http_cast_get_hub();

        if (hub && hub->bus) {
            ngx_http_cast_bus_cmd_state(hub->bus->cmd, 1, hub->bus);
        }
    }
}


static void
ngx_http_cast_bus_key(ngx_pool_t *pool, ngx_str_t *out, const char *prefix,
    ngx_str_t *name, const char *suffix)
{
    size_t  plen, slen;

    plen = ngx_strlen(prefix);
    slen = ngx_strlen(suffix);

    out->data = ngx_pnalloc(pool, plen + name->len + slen);
    if (out->data == NULL) {
        out->len = 0;
        return;
    }

    out->len = ngx_sprintf(out->data, "%s%V%s", prefix, name, suffix)
               - out->data;
}


/* POST {base} hub.mode=subscribe, without an endpoint */

ngx_int_t
ngx_http_cast_bus_subscribe(ngx_http_request_t *r, ngx_http_cast_fields_t *f,
    ngx_str_t *events, time_t lease, ngx_str_t *prefix)
{
    u_char                    *p, random[16], num[3][NGX_INT64_LEN];
    int                        argc;
    size_t                     argvlen[NGX_HTTP_CAST_MAX_ARGS];
    int64_t                    expires, ttl;
    ngx_int_t                  rc;
    ngx_str_t                  key[3], *topic;
    ngx_uint_t                 i;
    const char                *argv[NGX_HTTP_CAST_MAX_ARGS];
    ngx_time_t                *tp;
    ngx_http_cast_bus_ctx_t   *ctx;
    ngx_http_cast_loc_conf_t  *clcf;

    static const char  *names[] = {
        "name", "callback", "pname", "pver", "actors", "cinfo"
    };
    static ngx_uint_t   fields[] = {
        NGX_HTTP_CAST_F_NAME, NGX_HTTP_CAST_F_CALLBACK,
        NGX_HTTP_CAST_F_PRODUCT_NAME, NGX_HTTP_CAST_F_PRODUCT_VERSION,
        NGX_HTTP_CAST_F_ACTORS, NGX_HTTP_CAST_F_CLIENT_INFO
    };

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);
    topic = &f->value[NGX_HTTP_CAST_F_TOPIC];

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_bus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, prefix->len + NGX_HTTP_CAST_ID_LEN);
    if (p == NULL || ngx_http_cast_random(random, sizeof(random)) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->endpoint.data = p;
    ctx->endpoint.len = prefix->len + NGX_HTTP_CAST_ID_LEN;
    p = ngx_cpymem(p, prefix->data, prefix->len);
    ngx_hex_dump(p, random, sizeof(random));

    ctx->id.data = p;
    ctx->id.len = NGX_HTTP_CAST_ID_LEN;
    ctx->topic = *topic;

    tp = ngx_timeofday();
    expires = (int64_t) tp->sec * 1000 + tp->msec + (int64_t) lease * 1000;
    ttl = ngx_min((int64_t) clcf->bind_timeout, (int64_t) lease * 1000);

    ngx_http_cast_bus_key(r->pool, &key[0], "cast:sub:{", &ctx->id, "}");
    ngx_http_cast_bus_key(r->pool, &key[1], "cast:{", topic, "}:subs");
    ngx_str_set(&key[2], "cast:subs");

    argc = 2;
    argv[argc] = "3";
    argvlen[argc++] = 1;

    for (i = 0; i < 3; i++) {
        argv[argc] = (char *) key[i].data;
        argvlen[argc++] = key[i].len;
    }

    argv[argc] = (char *) ctx->id.data;
    argvlen[argc++] = ctx->id.len;

    argv[argc] = (char *) num[0];
    argvlen[argc++] = ngx_sprintf(num[0], "%L", ttl) - num[0];

#define ngx_http_cast_bus_arg(n, v, l)                                       \
    argv[argc] = n; argvlen[argc++] = ngx_strlen(n);                          \
    argv[argc] = (const char *) (v); argvlen[argc++] = (l)

    ngx_http_cast_bus_arg("topic", topic->data, topic->len);
    ngx_http_cast_bus_arg("events", events->data, events->len);
    ngx_http_cast_bus_arg("endpoint", ctx->endpoint.data, ctx->endpoint.len);
    ngx_http_cast_bus_arg("dialect",
                          clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST
                          ? "0" : "1", 1);
    ngx_http_cast_bus_arg("lease", num[1],
                          ngx_sprintf(num[1], "%T", lease) - num[1]);
    ngx_http_cast_bus_arg("expires", num[2],
                          ngx_sprintf(num[2], "%L", expires) - num[2]);
    ngx_http_cast_bus_arg("bound", "0", 1);

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        ngx_http_cast_bus_arg(names[i], f->value[fields[i]].data,
                              f->value[fields[i]].len);
    }

#undef ngx_http_cast_bus_arg

    rc = ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_SUBSCRIBE, argc, argv,
                                argvlen, ngx_http_cast_bus_subscribed, ctx);

    if (rc != NGX_DONE) {
        return rc;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: subscription %*s... on topic \"%V\" created "
                  "for %T s, events \"%V\", subscriber \"%V\"", (size_t) 8,
                  ctx->id.data, topic, lease, events,
                  &f->value[NGX_HTTP_CAST_F_NAME]);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_bus_subscribed(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    ngx_http_cast_bus_ctx_t *ctx = data;

    json_t     *body;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_cast_bus_reply_error(r, reply);
    }

    if (reply->integer != 1) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_object();
    if (body == NULL
        || json_object_set_new(body, "hub.channel.endpoint",
                               ngx_http_cast_json_string(&ctx->endpoint)))
    {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_ACCEPTED, body);
}


/* re-subscribe with an endpoint: new events, the lease from now */

ngx_int_t
ngx_http_cast_bus_renew(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *topic, ngx_str_t *events, time_t lease)
{
    u_char                    num[3][NGX_INT64_LEN];
    int                       argc;
    size_t                    argvlen[12];
    int64_t                   now;
    ngx_str_t                 key;
    const char               *argv[12];
    ngx_time_t               *tp;
    ngx_http_cast_bus_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_bus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->topic = *topic;

    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + tp->msec;

    ngx_http_cast_bus_key(r->pool, &key, "cast:sub:{", id, "}");

    argc = 2;
    argv[argc] = "1"; argvlen[argc++] = 1;
    argv[argc] = (char *) key.data; argvlen[argc++] = key.len;
    argv[argc] = (char *) id->data; argvlen[argc++] = id->len;
    argv[argc] = (char *) topic->data; argvlen[argc++] = topic->len;
    argv[argc] = (char *) events->data; argvlen[argc++] = events->len;
    argv[argc] = (char *) num[0];
    argvlen[argc++] = ngx_sprintf(num[0], "%T", lease) - num[0];
    argv[argc] = (char *) num[1];
    argvlen[argc++] = ngx_sprintf(num[1], "%L", now + (int64_t) lease * 1000)
                      - num[1];
    argv[argc] = (char *) num[2];
    argvlen[argc++] = ngx_sprintf(num[2], "%L", now) - num[2];

    return ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_RENEW, argc, argv,
                                  argvlen, ngx_http_cast_bus_unsubscribed, ctx);
}


/*
 * Unsubscribe (or DELETE {base}) by endpoint id; the socket, wherever it
 * is, gets the denial from the control channel.
 */

ngx_int_t
ngx_http_cast_bus_unsubscribe(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *topic, const char *reason)
{
    int                       argc;
    size_t                    argvlen[10];
    ngx_str_t                 key;
    const char               *argv[10];
    ngx_http_cast_bus_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_bus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->reset = (r->method == NGX_HTTP_DELETE);
    ctx->unsubscribe = 1;

    ngx_http_cast_bus_key(r->pool, &key, "cast:sub:{", id, "}");

    argc = 2;
    argv[argc] = "2"; argvlen[argc++] = 1;
    argv[argc] = (char *) key.data; argvlen[argc++] = key.len;
    argv[argc] = "cast:subs"; argvlen[argc++] = sizeof("cast:subs") - 1;
    argv[argc] = (char *) id->data; argvlen[argc++] = id->len;
    argv[argc] = (char *) topic->data; argvlen[argc++] = topic->len;
    argv[argc] = reason; argvlen[argc++] = ngx_strlen(reason);

    return ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_UNSUBSCRIBE, argc,
                                  argv, argvlen, ngx_http_cast_bus_unsubscribed,
                                  ctx);
}


/* the endpoint URL, or nil: the replies of RENEW and UNSUBSCRIBE */

static ngx_int_t
ngx_http_cast_bus_unsubscribed(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    ngx_http_cast_bus_ctx_t *ctx = data;

    json_t                    *body;
    ngx_str_t                  endpoint;
    ngx_http_cast_loc_conf_t  *clcf;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_cast_bus_reply_error(r, reply);
    }

    if (reply->type != REDIS_REPLY_STRING) {
        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown hub.channel.endpoint");
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (ctx->reset) {
        body = json_pack("{s:s,s:i}", "status", "unsubscribed",
                         "removed", 1);

    } else {
        endpoint.data = (u_char *) reply->str;
        endpoint.len = reply->len;

        body = json_object();

        if (body
            && (json_object_set_new(body, "hub.channel.endpoint",
                                    ngx_http_cast_json_string(&endpoint))
                || (ctx->unsubscribe
                    && clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST
                    && (json_object_set_new(body, "status",
                                            json_string("unsubscribed"))
                        || json_object_set_new(body, "removed",
                                               json_integer(1))))))
        {
            json_decref(body);
            body = NULL;
        }
    }

    return ngx_http_cast_send_json_new(r, ctx->reset ? NGX_HTTP_OK
                                               : NGX_HTTP_ACCEPTED, body);
}


/* cast: unsubscribe by hub.callback or subscriber.name; reset by those */

ngx_int_t
ngx_http_cast_bus_unsubscribe_matching(ngx_http_request_t *r,
    ngx_str_t *topic, const char *field, ngx_str_t *value,
    const char *reason)
{
    int                       argc;
    size_t                    argvlen[10];
    ngx_str_t                 key;
    const char               *argv[10];
    ngx_http_cast_bus_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_bus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->reset = (r->method == NGX_HTTP_DELETE);

    ngx_http_cast_bus_key(r->pool, &key, "cast:{", topic, "}:subs");

    argc = 2;
    argv[argc] = "2"; argvlen[argc++] = 1;
    argv[argc] = (char *) key.data; argvlen[argc++] = key.len;
    argv[argc] = "cast:subs"; argvlen[argc++] = sizeof("cast:subs") - 1;
    argv[argc] = field; argvlen[argc++] = ngx_strlen(field);
    argv[argc] = (char *) value->data; argvlen[argc++] = value->len;
    argv[argc] = reason; argvlen[argc++] = ngx_strlen(reason);

    return ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_UNSUBSCRIBE_MATCHING,
                                  argc, argv, argvlen,
                                  ngx_http_cast_bus_removed, ctx);
}


/* DELETE {base} without a body: every subscription of the hub */

ngx_int_t
ngx_http_cast_bus_reset(ngx_http_request_t *r)
{
    int                       argc;
    size_t                    argvlen[4];
    const char               *argv[4];
    ngx_http_cast_bus_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_bus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->reset = 2;

    argc = 2;
    argv[argc] = "1"; argvlen[argc++] = 1;
    argv[argc] = "cast:subs"; argvlen[argc++] = sizeof("cast:subs") - 1;

    return ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_RESET, argc, argv,
                                  argvlen, ngx_http_cast_bus_removed, ctx);
}


static ngx_int_t
ngx_http_cast_bus_removed(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    ngx_http_cast_bus_ctx_t *ctx = data;

    json_t     *body;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_cast_bus_reply_error(r, reply);
    }

    body = json_pack("{s:s,s:I}",
                     "status", ctx->reset == 2 ? "cleared" : "unsubscribed",
                     "removed", (json_int_t) reply->integer);
    return ngx_http_cast_send_json_new(r, ctx->reset ? NGX_HTTP_OK
                                               : NGX_HTTP_ACCEPTED, body);
}


/*
 * Publish: one script stores the context and PUBLISHes.  With a request
 * the 2xx waits for Redis; from a socket (r NULL) it is sent and errors
 * are logged.  NGX_DECLINED: Redis is unreachable.
 */

ngx_int_t
ngx_http_cast_bus_publish(ngx_http_request_t *r, ngx_http_cast_event_t *ev,
    ngx_pool_t *pool)
{
    u_char                 *p, version[NGX_HTTP_CAST_UUID_LEN];
    u_char                  num[NGX_INT64_LEN], minid[NGX_INT64_LEN];
    int                     argc;
    size_t                  argvlen[20];
    ngx_int_t               rc;
    ngx_time_t             *tp;
    ngx_str_t               ctxkey, openskey, logkey, channel, message;
    ngx_str_t               member;
    ngx_str_t               context, event;
    const char             *argv[20];
    ngx_http_cast_bus_t    *bus;
    ngx_http_cast_effect_t  effect;

    bus = ngx_http_cast_get_hub()->bus;

    if (!ngx_http_cast_bus_ready(bus)) {
        return r ? ngx_http_cast_bus_unavailable(r) : NGX_DECLINED;
    }

    ngx_http_cast_event_effect(ev, &effect);

    ngx_http_cast_bus_key(pool, &ctxkey, "cast:{", &ev->topic, "}:ctx");
    ngx_http_cast_bus_key(pool, &openskey, "cast:{", &ev->topic, "}:opens");
    ngx_http_cast_bus_key(pool, &logkey, "cast:{", &ev->topic, "}:log");
    ngx_http_cast_bus_key(pool, &channel, NGX_HTTP_CAST_EV_PREFIX,
                          &ev->topic, "");

    message.len = ev->lowercase.len + 1 + ev->json.len;
    message.data = ngx_pnalloc(pool, message.len);

    member.len = effect.type.len + 1 + effect.id.len;
    member.data = ngx_pnalloc(pool, member.len);

    if (ctxkey.len == 0 || openskey.len == 0 || logkey.len == 0
        || channel.len == 0
        || message.data == NULL || member.data == NULL)
    {
        return NGX_ERROR;
    }

    p = ngx_cpymem(message.data, ev->lowercase.data, ev->lowercase.len);
    *p++ = '\n';
    ngx_memcpy(p, ev->json.data, ev->json.len);

    ngx_strlow(member.data, effect.type.data, effect.type.len);
    p = member.data + effect.type.len;
    *p++ = '|';
    ngx_memcpy(p, effect.id.data, effect.id.len);

    ngx_str_null(&context);
    ngx_str_null(&event);

    if (effect.last_context == NGX_HTTP_CAST_CONTEXT_SET
        && ngx_http_cast_json_dump(pool, ev->context, &context) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_OPEN) {
        if (ngx_http_cast_new_uuid(version) != NGX_OK) {
            return NGX_ERROR;
        }

        event = ev->json;
    }

    argc = 2;
    argv[argc] = "3"; argvlen[argc++] = 1;
    argv[argc] = (char *) ctxkey.data; argvlen[argc++] = ctxkey.len;
    argv[argc] = (char *) openskey.data; argvlen[argc++] = openskey.len;
    argv[argc] = (char *) logkey.data; argvlen[argc++] = logkey.len;
    argv[argc] = (char *) channel.data; argvlen[argc++] = channel.len;
    argv[argc] = (char *) message.data; argvlen[argc++] = message.len;

    argv[argc] = effect.last_context == NGX_HTTP_CAST_CONTEXT_SET ? "set"
                 : effect.last_context == NGX_HTTP_CAST_CONTEXT_CLEAR
                 ? "clear" : "";
    argvlen[argc] = ngx_strlen(argv[argc]);
    argc++;

    argv[argc] = (char *) context.data; argvlen[argc++] = context.len;

    argv[argc] = effect.anchor == NGX_HTTP_CAST_ANCHOR_OPEN ? "open"
                 : effect.anchor == NGX_HTTP_CAST_ANCHOR_CLOSE ? "close" : "";
    argvlen[argc] = ngx_strlen(argv[argc]);
    argc++;

    argv[argc] = (char *) member.data; argvlen[argc++] = member.len;
    argv[argc] = (char *) effect.type.data; argvlen[argc++] = effect.type.len;
    argv[argc] = (char *) version;
    argvlen[argc++] = event.len ? NGX_HTTP_CAST_UUID_LEN : 0;
    argv[argc] = (char *) event.data; argvlen[argc++] = event.len;
    argv[argc] = (char *) num;
    argvlen[argc++] = ngx_sprintf(num, "%d", NGX_HTTP_CAST_MAX_OPENS) - num;

    tp = ngx_timeofday();
    argv[argc] = (char *) minid;
    argvlen[argc++] = ngx_sprintf(minid, "%L",
                                  (int64_t) tp->sec * 1000 + tp->msec
                                  - NGX_HTTP_CAST_LOG_KEEP)
                      - minid;
    argv[argc] = NGX_HTTP_CAST_LOG_TTL;
    argvlen[argc++] = sizeof(NGX_HTTP_CAST_LOG_TTL) - 1;

    if (r == NULL) {
        rc = ngx_http_cast_bus_eval(bus, NGX_HTTP_CAST_SCRIPT_PUBLISH, argc,
                                    argv, argvlen,
                                    ngx_http_cast_bus_ws_published, NULL);
        if (rc == NGX_OK) {
            bus->hub->events_in++;
        }

        return rc == NGX_OK ? NGX_OK : NGX_DECLINED;
    }

    return ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_PUBLISH, argc, argv,
                                  argvlen, ngx_http_cast_bus_published, NULL);
}


static ngx_int_t
ngx_http_cast_bus_published(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        return ngx_http_cast_bus_reply_error(r, reply);
    }

    ngx_http_cast_get_hub()->events_in++;

    return ngx_http_cast_send_published(r);
}


static void
ngx_http_cast_bus_ws_published(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply  *reply = r;

    if (reply == NULL) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "cast: an event sent on a socket may be lost: the "
                      "redis connection went away before it answered");
        return;
    }

    ngx_http_cast_bus_logged(ac, r, privdata);
}


/* GET {base}/{topic} */

ngx_int_t
ngx_http_cast_bus_context(ngx_http_request_t *r, ngx_str_t *topic)
{
    int                        argc;
    size_t                     argvlen[5];
    ngx_int_t                  rc;
    ngx_str_t                  key;
    const char                *argv[5];
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    ngx_http_cast_bus_key(r->pool, &key, "cast:{", topic, "}:ctx");

    argc = 2;
    argv[argc] = "1"; argvlen[argc++] = 1;
    argv[argc] = (char *) key.data; argvlen[argc++] = key.len;
    argv[argc] = clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST ? "cast"
                                                              : "fhircast";
    argvlen[argc] = ngx_strlen(argv[argc]);
    argc++;

    rc = ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_CONTEXT, argc, argv,
                                argvlen, ngx_http_cast_bus_context_reply,
                                NULL);

    if (rc == NGX_DONE) {
        /* held until the reply: this is a content handler */
        r->main->count++;
    }

    return rc;
}


static ngx_int_t
ngx_http_cast_bus_context_reply(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    json_t                    *body, *event, *context;
    redisReply               **e;
    ngx_http_cast_loc_conf_t  *clcf;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_cast_bus_reply_error(r, reply);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    body = NULL;

    if (clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST) {
        body = reply->type == REDIS_REPLY_STRING
               ? json_loadb(reply->str, reply->len, 0, NULL) : NULL;

        if (body == NULL) {
            body = json_object();
        }

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
               && reply->element[0]->type == REDIS_REPLY_STRING
               && reply->element[1]->type == REDIS_REPLY_STRING
               && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        e = reply->element;

        event = json_loadb(e[2]->str, e[2]->len, 0, NULL);
        context = json_object_get(json_object_get(event, "event"),
                                  "context");

        body = json_pack("{s:s%,s:s%,s:O}",
                         "context.type", e[0]->str, (size_t) e[0]->len,
                         "context.versionId", e[1]->str, (size_t) e[1]->len,
                         "context", context ? context : json_array());
        json_decref(event);

    } else {
        body = json_pack("{s:s,s:[]}", "context.type", "", "context");
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK, body);
}


/* GET /bind/<id>: the record is claimed in Redis, then the socket opens */

ngx_int_t
ngx_http_cast_bus_bind(ngx_http_request_t *r, ngx_str_t *id, ngx_str_t *key)
{
    u_char                    num[NGX_INT64_LEN];
    int                       argc;
    size_t                    argvlen[5];
    ngx_int_t                 rc;
    ngx_str_t                 subkey;
    const char               *argv[5];
    ngx_time_t               *tp;
    ngx_http_cast_bus_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_bus_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->id = *id;
    ctx->key = *key;

    tp = ngx_timeofday();

    ngx_http_cast_bus_key(r->pool, &subkey, "cast:sub:{", id, "}");

    argc = 2;
    argv[argc] = "1"; argvlen[argc++] = 1;
    argv[argc] = (char *) subkey.data; argvlen[argc++] = subkey.len;
    argv[argc] = (char *) num;
    argvlen[argc++] = ngx_sprintf(num, "%L",
                                  (int64_t) tp->sec * 1000 + tp->msec) - num;

    rc = ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_BIND, argc, argv,
                                argvlen, ngx_http_cast_bus_bound, ctx);

    if (rc == NGX_DONE) {
        /* held until the reply: this is a content handler */
        r->main->count++;
    }

    return rc;
}


static ngx_int_t
ngx_http_cast_bus_bound(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    ngx_http_cast_bus_ctx_t *ctx = data;

    int64_t                    expires, left;
    ngx_str_t                  endpoint, prefix, err;
    ngx_uint_t                 dialect;
    ngx_time_t                *tp;
    ngx_http_cast_sub_t       *sub;
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_fields_t     f;
    ngx_http_cast_loc_conf_t  *clcf;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return ngx_http_cast_bus_reply_error(r, reply);
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer == -1) {
            return ngx_http_cast_send_error(r, NGX_HTTP_CONFLICT,
                                            "this endpoint already has a "
                                            "socket");
        }

        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown or expired endpoint");
    }

    if (ngx_http_cast_bus_record(r, reply, &f, &endpoint, &dialect,
                                 &expires)
        != NGX_OK
        || endpoint.len < NGX_HTTP_CAST_ID_LEN)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cast: redis holds a malformed subscription record "
                      "for %*s...", (size_t) 8, ctx->id.data);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    hub = ngx_http_cast_get_hub();

    if (ngx_http_cast_sub_find(hub, &ctx->id) != NULL) {
        return ngx_http_cast_send_error(r, NGX_HTTP_CONFLICT,
                                        "this endpoint already has a "
                                        "socket");
    }

    tp = ngx_timeofday();
    left = expires - ((int64_t) tp->sec * 1000 + tp->msec);
    left = ngx_max(left, 1000);

    prefix.data = endpoint.data;
    prefix.len = endpoint.len - NGX_HTTP_CAST_ID_LEN;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    sub = ngx_http_cast_sub_create(hub, &f, clcf, (time_t) (left + 999) / 1000,
                                   &prefix, &ctx->id, r->pool, &err);
    if (sub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->dialect = dialect;

    if (ngx_http_cast_ws_start(r, sub, &ctx->key) != NGX_DONE) {
        ngx_http_cast_sub_remove(sub, "the socket could not start");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the topic's open contexts come next */

    if (sub->topic) {
        ngx_http_cast_bus_replay(sub);
    }

    return NGX_DONE;
}


/* replay after binding: the opens are fetched, the sub found by its id */

void
ngx_http_cast_bus_replay(ngx_http_cast_sub_t *sub)
{
    int                   argc;
    u_char               *id;
    size_t                argvlen[5];
    ngx_str_t             key[2];
    const char           *argv[5];
    ngx_http_cast_bus_t  *bus;

    bus = sub->hub->bus;

    id = ngx_alloc(NGX_HTTP_CAST_ID_LEN, bus->log);
    if (id == NULL) {
        return;
    }

    ngx_memcpy(id, sub->sn.str.data, NGX_HTTP_CAST_ID_LEN);

    ngx_http_cast_bus_key(sub->pool, &key[0], "cast:{", &sub->topic_name,
                          "}:ctx");
    ngx_http_cast_bus_key(sub->pool, &key[1], "cast:{", &sub->topic_name,
                          "}:opens");

    argc = 2;
    argv[argc] = "2"; argvlen[argc++] = 1;
    argv[argc] = (char *) key[0].data; argvlen[argc++] = key[0].len;
    argv[argc] = (char *) key[1].data; argvlen[argc++] = key[1].len;

    if (ngx_http_cast_bus_eval(bus, NGX_HTTP_CAST_SCRIPT_OPENS, argc, argv,
                               argvlen, ngx_http_cast_bus_opens, id)
        != NGX_OK)
    {
        ngx_free(id);
    }
}


static void
ngx_http_cast_bus_opens(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply  *reply = r;

    json_t               *events[NGX_HTTP_CAST_MAX_OPENS];
    ngx_str_t             id;
    ngx_uint_t            i, n;
    ngx_http_cast_sub_t  *sub;
    ngx_http_cast_hub_t  *hub;

    id.data = privdata;
    id.len = NGX_HTTP_CAST_ID_LEN;

    hub = ngx_http_cast_get_hub();
    sub = (hub && reply && reply->type == REDIS_REPLY_ARRAY)
          ? ngx_http_cast_sub_find(hub, &id) : NULL;

    if (sub && sub->ws) {
        n = 0;

        for (i = 0; i < reply->elements && n < NGX_HTTP_CAST_MAX_OPENS; i++) {
            if (reply->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }

            events[n] = json_loadb(reply->element[i]->str,
                                   reply->element[i]->len, 0, NULL);
            if (events[n]) {
                n++;
            }
        }

        (void) ngx_http_cast_sub_replay_events(sub, events, n);

        for (i = 0; i < n; i++) {
            json_decref(events[i]);
        }
    }

    ngx_free(privdata);
}


/* a socket's subscription ended here: its record goes too */

void
ngx_http_cast_bus_ended(ngx_http_cast_sub_t *sub)
{
    int                   argc;
    size_t                argvlen[6];
    ngx_str_t             key;
    const char           *argv[6];
    ngx_http_cast_bus_t  *bus;

    bus = sub->hub->bus;

    if (bus == NULL || sub->remote_ended
        || !ngx_http_cast_redis_ready(bus->cmd))
    {
        /* the record expires with its TTL */
        return;
    }

    ngx_http_cast_bus_key(sub->pool, &key, "cast:sub:{", &sub->sn.str, "}");

    argc = 2;
    argv[argc] = "2"; argvlen[argc++] = 1;
    argv[argc] = (char *) key.data; argvlen[argc++] = key.len;
    argv[argc] = "cast:subs"; argvlen[argc++] = sizeof("cast:subs") - 1;
    argv[argc] = (char *) sub->sn.str.data; argvlen[argc++] = sub->sn.str.len;

    (void) ngx_http_cast_bus_eval(bus, NGX_HTTP_CAST_SCRIPT_END, argc, argv,
                                  argvlen, ngx_http_cast_bus_logged, NULL);
}


/*
 * GET cast_status: this worker's body, plus "peers", every worker of
 * every host as reported in the last 10 s, and "hub", their sums.
 */

ngx_int_t
ngx_http_cast_bus_status(ngx_http_request_t *r)
{
    u_char       num[NGX_INT64_LEN];
    int          argc;
    size_t       argvlen[5];
    ngx_int_t    rc;
    ngx_time_t  *tp;
    const char  *argv[5];

    tp = ngx_timeofday();

    argc = 2;
    argv[argc] = "1"; argvlen[argc++] = 1;
    argv[argc] = "cast:stats"; argvlen[argc++] = sizeof("cast:stats") - 1;
    argv[argc] = (char *) num;
    argvlen[argc++] = ngx_sprintf(num, "%L", (int64_t) tp->sec * 1000
                                             + tp->msec
                                             - NGX_HTTP_CAST_REPORT_KEEP)
                      - num;

    rc = ngx_http_cast_bus_call(r, NGX_HTTP_CAST_SCRIPT_STATS, argc, argv,
                                argvlen, ngx_http_cast_bus_status_reply,
                                NULL);

    if (rc == NGX_DONE) {
        /* held until the reply: this is a content handler */
        r->main->count++;
    }

    return rc;
}


static ngx_int_t
ngx_http_cast_bus_status_reply(ngx_http_request_t *r, redisReply *reply,
    void *data)
{
    size_t       i, k;
    json_t      *body, *peers, *peer, *sums, *sum, *v;

    static const char  *counted[] = {
        "connections", "subscriptions", "events_in", "events_out",
        "dropped", NULL
    };

    body = ngx_http_cast_status_body(ngx_http_cast_get_hub());
    peers = json_array();
    sums = json_object();

    if (body == NULL || peers == NULL || sums == NULL) {
        goto failed;
    }

    for (k = 0; counted[k]; k++) {
        if (json_object_set_new(sums, counted[k], json_integer(0)) != 0) {
            goto failed;
        }
    }

    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type != REDIS_REPLY_STRING) {
                continue;
            }

            peer = json_loadb(reply->element[i]->str,
                              reply->element[i]->len, 0, NULL);
            if (!json_is_object(peer)) {
                json_decref(peer);
                continue;
            }

            for (k = 0; counted[k]; k++) {
                v = json_object_get(peer, counted[k]);
                sum = json_object_get(sums, counted[k]);

                if (json_is_integer(v)) {
                    json_integer_set(sum, json_integer_value(sum)
                                          + json_integer_value(v));
                }
            }

            if (json_array_append_new(peers, peer) != 0) {
                goto failed;
            }
        }
    }

    if (json_object_set_new(sums, "workers",
                            json_integer((json_int_t)
                                         json_array_size(peers)))
        != 0)
    {
        goto failed;
    }

    if (json_object_set_new(body, "hub", sums) != 0) {
        sums = NULL;
        goto failed;
    }

    sums = NULL;

    if (json_object_set_new(body, "peers", peers) != 0) {
        peers = NULL;
        goto failed;
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK, body);

failed:

    json_decref(peers);
    json_decref(sums);
    json_decref(body);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* HGETALL's flat array into the fields of a subscription */

static ngx_int_t
ngx_http_cast_bus_record(ngx_http_request_t *r, redisReply *reply,
    ngx_http_cast_fields_t *f, ngx_str_t *endpoint, ngx_uint_t *dialect,
    int64_t *expires)
{
    size_t       i, k;
    ngx_str_t    v;
    redisReply  *name, *value;

    static struct {
        const char  *name;
        ngx_int_t    field;
    } map[] = {
        { "topic", NGX_HTTP_CAST_F_TOPIC },
        { "events", NGX_HTTP_CAST_F_EVENTS },
        { "name", NGX_HTTP_CAST_F_NAME },
        { "callback", NGX_HTTP_CAST_F_CALLBACK },
        { "pname", NGX_HTTP_CAST_F_PRODUCT_NAME },
        { "pver", NGX_HTTP_CAST_F_PRODUCT_VERSION },
        { "actors", NGX_HTTP_CAST_F_ACTORS },
        { "cinfo", NGX_HTTP_CAST_F_CLIENT_INFO },
        { "endpoint", NGX_HTTP_CAST_RECORD_ENDPOINT },
        { "dialect", NGX_HTTP_CAST_RECORD_DIALECT },
        { "expires", NGX_HTTP_CAST_RECORD_EXPIRES },
        { NULL, NGX_HTTP_CAST_RECORD_OTHER }
    };

    ngx_memzero(f, sizeof(ngx_http_cast_fields_t));
    ngx_str_null(endpoint);
    *dialect = NGX_HTTP_CAST_DIALECT_CAST;
    *expires = 0;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        return NGX_ERROR;
    }

    for (i = 0; i < reply->elements; i += 2) {
        name = reply->element[i];
        value = reply->element[i + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            return NGX_ERROR;
        }

        for (k = 0; map[k].name; k++) {
            if (ngx_strlen(map[k].name) == name->len
                && ngx_strncmp(map[k].name, name->str, name->len) == 0)
            {
                break;
            }
        }

        if (map[k].field == NGX_HTTP_CAST_RECORD_OTHER) {
            continue;       /* "bound", "lease" */
        }

        v.len = value->len;
        v.data = ngx_pnalloc(r->pool, v.len + 1);
        if (v.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(v.data, value->str, v.len);

        switch (map[k].field) {

        case NGX_HTTP_CAST_RECORD_ENDPOINT:
            *endpoint = v;
            break;

        case NGX_HTTP_CAST_RECORD_DIALECT:
            *dialect = (v.len == 1 && v.data[0] == '1')
                       ? NGX_HTTP_CAST_DIALECT_FHIRCAST
                       : NGX_HTTP_CAST_DIALECT_CAST;
            break;

        case NGX_HTTP_CAST_RECORD_EXPIRES:
            *expires = ngx_atotm(v.data, v.len);
            break;

        default:
            f->value[map[k].field] = v;
            f->set[map[k].field] = 1;
            break;
        }
    }

    if (f->value[NGX_HTTP_CAST_F_TOPIC].len == 0 || *expires <= 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
