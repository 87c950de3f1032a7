
/*
 * ngx_http_cast_module: the Redis store (cast_redis).  One hub across the
 * workers of every nginx host that shares a Redis (6.2 or later).
 *
 * What lives where (the scripts in src/lua/ know nothing of Cast):
 *   - records: hash  cast:sub:{<id>}, expiring with their bind timeout
 *     until a socket binds, then with their lease; indexed by the sorted
 *     sets  cast:{<topic>}:subs  and  cast:subs  (scored by expiry, so
 *     that expired ids leave them);
 *   - topics: sorted set  cast:topics  (scored by how long each stays:
 *     its records, its state), for cast_max_topics and the status;
 *   - a topic's state: hash  cast:{<topic>}:state  {v: version, s: JSON},
 *     changed only together with an append to the topic's log, and only
 *     if the version is still the one the state was computed from (the
 *     worker computes again otherwise, a bounded number of times); a
 *     topic's waiting appends go in one script call, and a batch computed
 *     again too often claims the topic's next turn  cast:{<topic>}:turn;
 *   - a topic's log: stream  cast:{<topic>}:log  (a minute of events) and
 *     channel  cast:ev:<topic>, payload "<id> <name length>:<name><json>";
 *   - control: stream  cast:ctl:log  and channel  cast:ctl: "end <id>
 *     <reason>", "renew <id> <expires> <lease> <grant> <events>" (grant:
 *     "a<writable>" for a record made with a token, "n" otherwise).
 * Every worker (the publishing one too) delivers what its pub/sub
 * connection receives: Redis gives each topic its one order.  After its
 * pub/sub connection was lost, a worker reads what it missed from the
 * logs, from the last id it saw (or from when it began to listen), and
 * holds what arrives meanwhile: events, unsubscribes, resets and renews
 * are not lost and not delivered twice.
 *
 * Each worker has two connections (src/ngx_http_cast_redis.c): one for
 * commands, one for pub/sub.  While Redis is out of reach, operations
 * answer NGX_HTTP_CAST_UNAVAILABLE (503 with Retry-After); sockets stay
 * open.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_sha1.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_redis.h"
#include "ngx_http_cast_store.h"
#include "ngx_http_cast_store_redis.h"
#include "ngx_http_cast_wire.h"
#include <ngx_http_cast_lua.h>


#define NGX_HTTP_CAST_CTL_CHANNEL   "cast:ctl"
#define NGX_HTTP_CAST_CTL_LOG       "cast:ctl:log"
#define NGX_HTTP_CAST_EV_PREFIX     "cast:ev:"
#define NGX_HTTP_CAST_EV_PATTERN    "cast:ev:*"

/* workers report their counters to cast:stats this often (ms) */
#define NGX_HTTP_CAST_REPORT        2000
#define NGX_HTTP_CAST_REPORT_KEEP   10000

/* logs keep a minute of events for workers to catch up (ms) */
#define NGX_HTTP_CAST_LOG_KEEP      60000
#define NGX_HTTP_CAST_LOG_TTL       120000

/* a catch-up starts this much before the moment it starts from (ms) */
#define NGX_HTTP_CAST_CATCHUP_EARLY 1000
#define NGX_HTTP_CAST_CATCHUP_MAX   "10000"

#define NGX_HTTP_CAST_MAX_HELD      10000
#define NGX_HTTP_CAST_MAX_ATTEMPTS  64
#define NGX_HTTP_CAST_BATCH_MAX     64
/* a batch computed again this often claims the topic's next turn */
#define NGX_HTTP_CAST_CLAIM_AFTER   2
#define NGX_HTTP_CAST_TURN_MS       "50"
#define NGX_HTTP_CAST_MAX_WAITS     4096
#define NGX_HTTP_CAST_WRITER_LEN    (NGX_INT64_LEN + 18)
#define NGX_HTTP_CAST_BATCH_BYTES   (1024 * 1024)
#define NGX_HTTP_CAST_CACHE_MAX     1024
#define NGX_HTTP_CAST_MAX_ARGS      64

/* at worker exit, queued commands get this long to be written (ms) */
#define NGX_HTTP_CAST_EXIT_FLUSH    500

/* records whose time is up are ended this often, at most so many (ms) */
#define NGX_HTTP_CAST_SWEEP         250
#define NGX_HTTP_CAST_SWEEP_MAX     "100"

/* a retried publish (same event id) is recognized this long (ms) */
#define NGX_HTTP_CAST_IDS_KEEP      300000

#define NGX_HTTP_CAST_NONCE_LEN     32

/* notes between workers (post()): every worker's, and one's own */
#define NGX_HTTP_CAST_NOTE_ALL      "cast:w"
#define NGX_HTTP_CAST_NOTE_PREFIX   "cast:w:"


typedef enum {
    NGX_HTTP_CAST_SCRIPT_SUBSCRIBE = 0,
    NGX_HTTP_CAST_SCRIPT_RENEW,
    NGX_HTTP_CAST_SCRIPT_REMOVE,
    NGX_HTTP_CAST_SCRIPT_REMOVE_MATCHING,
    NGX_HTTP_CAST_SCRIPT_RESET,
    NGX_HTTP_CAST_SCRIPT_BIND,
    NGX_HTTP_CAST_SCRIPT_APPEND,
    NGX_HTTP_CAST_SCRIPT_STATUS,
    NGX_HTTP_CAST_SCRIPT_UNBIND,
    NGX_HTTP_CAST_SCRIPT_EPOCH,
    NGX_HTTP_CAST_SCRIPT_SWEEP,
    NGX_HTTP_CAST_SCRIPT_RECORDS,
    NGX_HTTP_CAST_SCRIPT_LAST
} ngx_http_cast_script_e;


typedef struct {
    const char                *text;
    ngx_uint_t                 nkeys;
    u_char                     sha[41];
} ngx_http_cast_script_t;


/* a channel this worker listens to: a topic's, or the control one */

typedef struct {
    ngx_str_node_t             sn;          /* keyed by channel name */
    ngx_queue_t                held;        /* while catching up */
    ngx_uint_t                 nheld;
    uint64_t                   last_ms;     /* the last id delivered */
    uint64_t                   last_seq;
    int64_t                    since;       /* listened since, ms */
    unsigned                   catching:1;  /* holds what comes live */
    unsigned                   asked:1;     /* XRANGE on its way */
    unsigned                   subscribed:1;  /* SUBSCRIBE confirmed */
    unsigned                   fresh:1;     /* no catch-up margin */
    unsigned                   control:1;
    u_char                     name[1];
} ngx_http_cast_channel_t;


typedef struct {
    ngx_queue_t                queue;
    size_t                     len;
    u_char                     data[1];     /* the payload */
} ngx_http_cast_held_t;


/* a bind the client was told failed, to undo in Redis */

typedef struct {
    ngx_queue_t                queue;
    u_char                     id[NGX_HTTP_CAST_ID_LEN];
    u_char                     nonce[NGX_HTTP_CAST_NONCE_LEN];
} ngx_http_cast_unbind_t;


/*
 * A topic's appends from this worker, a batch at a time: the events that
 * wait while one batch is on its way go together in the next, with the
 * states computed one after the other from the last one seen; a batch
 * computed again (another worker changed the topic first) is not
 * overtaken by the next events of the same publisher.
 */

typedef struct ngx_http_cast_rstore_s  ngx_http_cast_rstore_t;

typedef struct {
    ngx_str_node_t             sn;
    ngx_http_cast_rstore_t    *rs;
    ngx_queue_t                waiting;     /* ngx_http_cast_rcall_t */
    ngx_queue_t                sent;        /* the batch on its way */
    ngx_uint_t                 nsent;
    ngx_uint_t                 limit;       /* the next batch at most */
    json_t                    *next;        /* the state after the batch */
    unsigned                   busy:1;      /* a batch on its way */
    unsigned                   changed:1;   /* the batch changes it */
    u_char                     name[1];
} ngx_http_cast_lane_t;


/* the last state of a topic this worker saw, to append against */

typedef struct {
    ngx_str_node_t             sn;
    ngx_queue_t                lru;
    json_t                    *state;
    uint64_t                   version;
    u_char                     name[1];
} ngx_http_cast_cached_t;


struct ngx_http_cast_rstore_s {
    ngx_http_cast_store_t      store;       /* first: the public part */
    ngx_http_cast_redis_t     *cmd;
    ngx_http_cast_redis_t     *pubsub;
    ngx_log_t                 *log;
    ngx_uint_t                 max_topics;
    ngx_uint_t                 max_subs;
    ngx_uint_t                 max_topic_subs;
    ngx_msec_t                 context_ttl;  /* of a topic's state */
    ngx_event_t                report_ev;
    ngx_event_t                sweep_ev;    /* records whose time is up */

    ngx_rbtree_t               channels;
    ngx_rbtree_node_t          channels_sentinel;
    ngx_rbtree_t               cache;
    ngx_rbtree_node_t          cache_sentinel;
    ngx_rbtree_t               lanes;
    ngx_rbtree_node_t          lanes_sentinel;
    ngx_queue_t                cache_lru;
    ngx_uint_t                 ncache;

    int64_t                    lost_at;     /* pub/sub lost, ms; 0: never */
    ngx_queue_t                unbinds;     /* binds to undo */
    u_char                     epoch[NGX_HTTP_CAST_NONCE_LEN];
    u_char                     candidate[NGX_HTTP_CAST_NONCE_LEN];
    u_char                     address[NGX_HTTP_CAST_NONCE_LEN];
    ngx_str_t                  writer;      /* this worker, for turns */
    u_char                     writer_buf[NGX_HTTP_CAST_WRITER_LEN];
    unsigned                   have_epoch:1;
    unsigned                   wildcard:1;  /* "*" sockets here */
    unsigned                   too_old:1;   /* Redis < 6.2 */
};


/* one command waiting for Redis */

typedef struct {
    ngx_http_cast_rstore_t    *rs;
    ngx_http_cast_done_pt      done;
    void                      *data;
    ngx_http_cast_append_t    *append;
    ngx_queue_t                queue;       /* append: in its lane */
    ngx_http_cast_record_t    *record;      /* renew: the caller's */
    ngx_uint_t                 op;          /* append: keep, set, clear */
    ngx_uint_t                 attempts;
    ngx_uint_t                 waits;       /* append: others' turns */
    unsigned                   again:1;     /* append: a retry */
    ngx_str_t                  reason;
    ngx_str_t                  topic;
    u_char                     buf[1];      /* topic, reason */
} ngx_http_cast_rcall_t;


typedef struct {
    int                        argc;
    const char                *argv[NGX_HTTP_CAST_MAX_ARGS];
    size_t                     argvlen[NGX_HTTP_CAST_MAX_ARGS];
} ngx_http_cast_rargs_t;


#define ngx_http_cast_rargs_literal(a, s)                                    \
    ngx_http_cast_rargs_add(a, s, sizeof(s) - 1)


#define NGX_HTTP_CAST_OP_KEEP   0
#define NGX_HTTP_CAST_OP_SET    1
#define NGX_HTTP_CAST_OP_CLEAR  2
#define NGX_HTTP_CAST_OP_REFUSE 3     /* apply() refused: is it current? */


static void ngx_http_cast_rstore_create(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_renew(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_remove(ngx_http_cast_store_t *store,
    ngx_str_t *id, ngx_str_t *topic, ngx_str_t *reason,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_remove_matching(
    ngx_http_cast_store_t *store, ngx_str_t *topic, ngx_uint_t field,
    ngx_str_t *value, ngx_str_t *reason, ngx_http_cast_done_pt done,
    void *data);
static void ngx_http_cast_rstore_reset(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_bind(ngx_http_cast_store_t *store,
    ngx_str_t *id, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_append(ngx_http_cast_store_t *store,
    ngx_http_cast_append_t *a);
static void ngx_http_cast_rstore_state(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_count(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_counted(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_topics(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_topics_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_cast_rstore_listen(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t on);
static void ngx_http_cast_rstore_status(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data);
static const char *ngx_http_cast_rstore_health(ngx_http_cast_store_t *store);
static void ngx_http_cast_rstore_changed(ngx_http_cast_store_t *store);
static void ngx_http_cast_rstore_exit(ngx_http_cast_store_t *store);
static void ngx_http_cast_rstore_claim(ngx_http_cast_store_t *store,
    ngx_str_t *key, ngx_msec_t ttl, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_incr(ngx_http_cast_store_t *store,
    ngx_str_t *key, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_keyed(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_incremented(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_cast_rstore_key_reply(ngx_http_cast_rcall_t *call,
    redisReply *reply, ngx_uint_t counter);

static void ngx_http_cast_rstore_write(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_record_t *record, ngx_uint_t bound,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_rstore_restore(void *data,
    ngx_http_cast_record_t *record);
static void ngx_http_cast_rstore_check_epoch(ngx_http_cast_rstore_t *rs);
static void ngx_http_cast_rstore_epoch(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_unbind(ngx_http_cast_rstore_t *rs);
static void ngx_http_cast_rstore_unbind_one(ngx_http_cast_store_t *store,
    ngx_str_t *id);
static void ngx_http_cast_rstore_sweep(ngx_event_t *ev);
static void ngx_http_cast_rstore_swept(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_created(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_renewed(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_removed(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_removed_many(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_cast_rstore_bound(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_run(ngx_http_cast_lane_t *lane);
static ngx_int_t ngx_http_cast_rstore_batch(ngx_http_cast_lane_t *lane);
static ngx_int_t ngx_http_cast_rstore_send_batch(ngx_http_cast_lane_t *lane,
    uint64_t version);
static void ngx_http_cast_rstore_requeue(ngx_http_cast_lane_t *lane,
    ngx_queue_t *from);
static void ngx_http_cast_rstore_appended(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_state_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_status_reply(redisAsyncContext *ac,
    void *r, void *privdata);

static void ngx_http_cast_rstore_failed_call(ngx_http_cast_done_pt done,
    void *data);
static ngx_uint_t ngx_http_cast_rstore_limit(ngx_http_cast_rstore_t *rs,
    redisReply *reply, ngx_str_t *topic);
static void ngx_http_cast_rstore_full(ngx_http_cast_rstore_t *rs,
    long long n, ngx_str_t *topic);
static ngx_http_cast_rcall_t *ngx_http_cast_rstore_call(
    ngx_http_cast_rstore_t *rs, ngx_http_cast_done_pt done, void *data,
    ngx_str_t *topic, ngx_str_t *reason);
static void ngx_http_cast_rstore_finish(ngx_http_cast_rcall_t *call,
    ngx_uint_t rc, ngx_http_cast_record_t *record, ngx_uint_t removed,
    json_t *json);
static void ngx_http_cast_rstore_answer(ngx_http_cast_rcall_t *call,
    ngx_uint_t rc, ngx_http_cast_record_t *record, ngx_uint_t removed,
    json_t *json);
static ngx_uint_t ngx_http_cast_rstore_failed(ngx_http_cast_rstore_t *rs,
    redisReply *reply);
static void ngx_http_cast_rstore_ask(ngx_http_cast_rcall_t *call,
    redisCallbackFn *fn, const char *fmt, ...);
static void ngx_http_cast_rstore_send(ngx_http_cast_rcall_t *call,
    ngx_uint_t script, ngx_http_cast_rargs_t *keys,
    ngx_http_cast_rargs_t *args, ngx_http_cast_rargs_t *more,
    redisCallbackFn *fn);
static ngx_int_t ngx_http_cast_rstore_eval(ngx_http_cast_rstore_t *rs,
    ngx_uint_t script, ngx_http_cast_rargs_t *keys,
    ngx_http_cast_rargs_t *args, ngx_http_cast_rargs_t *more,
    redisCallbackFn *fn, void *privdata);
static void ngx_http_cast_rargs_add(ngx_http_cast_rargs_t *a,
    const void *p, size_t len);
static void ngx_http_cast_rargs_str(ngx_http_cast_rargs_t *a, ngx_str_t *s);
static void ngx_http_cast_rargs_key(ngx_http_cast_rargs_t *a, u_char *buf,
    const char *prefix, ngx_str_t *name, const char *suffix);
static void ngx_http_cast_rargs_num(ngx_http_cast_rargs_t *a, u_char *buf,
    int64_t n);
static ngx_int_t ngx_http_cast_rstore_record(redisReply *reply,
    ngx_http_cast_record_t *record);
static json_t *ngx_http_cast_rstore_parse_state(ngx_str_t *text);
static void ngx_http_cast_rstore_cache(ngx_http_cast_rstore_t *rs,
    ngx_str_t *topic, uint64_t version, json_t *state);
static ngx_http_cast_cached_t *ngx_http_cast_rstore_cached(
    ngx_http_cast_rstore_t *rs, ngx_str_t *topic);

static void ngx_http_cast_rstore_cmd_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data);
static void ngx_http_cast_rstore_version(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_logged(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_report(ngx_event_t *ev);
static void ngx_http_cast_rstore_report_soon(ngx_http_cast_rstore_t *rs);
static void ngx_http_cast_rstore_pubsub_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data);
static void ngx_http_cast_rstore_subscribe(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch);
static void ngx_http_cast_rstore_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_receive(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch, u_char *p, size_t len);
static void ngx_http_cast_rstore_catch_up_all(ngx_http_cast_rstore_t *rs);
static void ngx_http_cast_rstore_catch_up(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch);
static void ngx_http_cast_rstore_missed(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_deliver(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch, ngx_str_t *channel, u_char *p, size_t len,
    ngx_uint_t which);
static ngx_http_cast_channel_t *ngx_http_cast_rstore_channel(
    ngx_http_cast_rstore_t *rs, ngx_str_t *name);
static int64_t ngx_http_cast_now_ms(void);
static void ngx_http_cast_rstore_records(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t max, ngx_http_cast_done_pt done,
    void *data);
static void ngx_http_cast_rstore_listed(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_cast_rstore_post(ngx_http_cast_store_t *store,
    ngx_str_t *to, ngx_str_t *text);
static void ngx_http_cast_rstore_notes(ngx_http_cast_rstore_t *rs);
static void ngx_http_cast_rstore_note(redisAsyncContext *ac, void *r,
    void *privdata);


static ngx_http_cast_script_t  ngx_http_cast_scripts[] = {
    { ngx_http_cast_lua_subscribe, NGX_HTTP_CAST_LUA_SUBSCRIBE_NKEYS, "" },
    { ngx_http_cast_lua_renew, NGX_HTTP_CAST_LUA_RENEW_NKEYS, "" },
    { ngx_http_cast_lua_remove, NGX_HTTP_CAST_LUA_REMOVE_NKEYS, "" },
    { ngx_http_cast_lua_remove_matching,
      NGX_HTTP_CAST_LUA_REMOVE_MATCHING_NKEYS, "" },
    { ngx_http_cast_lua_reset, NGX_HTTP_CAST_LUA_RESET_NKEYS, "" },
    { ngx_http_cast_lua_bind, NGX_HTTP_CAST_LUA_BIND_NKEYS, "" },
    { ngx_http_cast_lua_append, NGX_HTTP_CAST_LUA_APPEND_NKEYS, "" },
    { ngx_http_cast_lua_status, NGX_HTTP_CAST_LUA_STATUS_NKEYS, "" },
    { ngx_http_cast_lua_unbind, NGX_HTTP_CAST_LUA_UNBIND_NKEYS, "" },
    { ngx_http_cast_lua_epoch, NGX_HTTP_CAST_LUA_EPOCH_NKEYS, "" },
    { ngx_http_cast_lua_sweep, NGX_HTTP_CAST_LUA_SWEEP_NKEYS, "" },
    { ngx_http_cast_lua_records, NGX_HTTP_CAST_LUA_RECORDS_NKEYS, "" }
};


/* worker start: two connections; operations wait for them */

ngx_http_cast_store_t *
ngx_http_cast_store_redis_create(ngx_cycle_t *cycle,
    ngx_http_cast_redis_conf_t *conf, ngx_http_cast_main_conf_t *cmcf)
{
    u_char                   hash[20];
    ngx_str_t                name;
    ngx_uint_t               i;
    ngx_sha1_t               sha1;
    ngx_http_cast_rstore_t  *rs;
    ngx_http_cast_channel_t *ch;

    rs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_rstore_t));
    if (rs == NULL) {
        return NULL;
    }

    for (i = 0; i < NGX_HTTP_CAST_SCRIPT_LAST; i++) {
        ngx_sha1_init(&sha1);
        ngx_sha1_update(&sha1, ngx_http_cast_scripts[i].text,
                        ngx_strlen(ngx_http_cast_scripts[i].text));
        ngx_sha1_final(hash, &sha1);
        ngx_hex_dump(ngx_http_cast_scripts[i].sha, hash, sizeof(hash));
        ngx_http_cast_scripts[i].sha[40] = '\0';
    }

    rs->log = cycle->log;
    rs->max_topics = cmcf->max_topics;
    rs->max_subs = cmcf->max_subs;
    rs->max_topic_subs = cmcf->max_topic_subs;
    rs->context_ttl = cmcf->context_ttl;

    /* unique enough among the workers of every host */
    rs->writer.data = rs->writer_buf;
    rs->writer.len = ngx_sprintf(rs->writer_buf, "%P-%08xD-%08xD", ngx_pid,
                                 (uint32_t) ngx_random(),
                                 ngx_crc32_long(cycle->hostname.data,
                                                cycle->hostname.len))
                     - rs->writer_buf;

    ngx_rbtree_init(&rs->channels, &rs->channels_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&rs->cache, &rs->cache_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&rs->lanes, &rs->lanes_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&rs->cache_lru);
    ngx_queue_init(&rs->unbinds);

    if (ngx_http_cast_random(hash, 16) != NGX_OK) {
        return NULL;
    }

    ngx_hex_dump(rs->candidate, hash, 16);

    /* where other workers' notes reach this one (post()) */

    if (ngx_http_cast_random(hash, 16) != NGX_OK) {
        return NULL;
    }

    ngx_hex_dump(rs->address, hash, 16);
    rs->store.address.data = rs->address;
    rs->store.address.len = NGX_HTTP_CAST_NONCE_LEN;

    rs->store.mode = "redis";
    rs->store.create = ngx_http_cast_rstore_create;
    rs->store.renew = ngx_http_cast_rstore_renew;
    rs->store.remove = ngx_http_cast_rstore_remove;
    rs->store.remove_matching = ngx_http_cast_rstore_remove_matching;
    rs->store.reset = ngx_http_cast_rstore_reset;
    rs->store.bind = ngx_http_cast_rstore_bind;
    rs->store.unbind = ngx_http_cast_rstore_unbind_one;
    rs->store.append = ngx_http_cast_rstore_append;
    rs->store.state = ngx_http_cast_rstore_state;
    rs->store.count = ngx_http_cast_rstore_count;
    rs->store.topics = ngx_http_cast_rstore_topics;
    rs->store.listen = ngx_http_cast_rstore_listen;
    rs->store.status = ngx_http_cast_rstore_status;
    rs->store.health = ngx_http_cast_rstore_health;
    rs->store.changed = ngx_http_cast_rstore_changed;
    rs->store.exit = ngx_http_cast_rstore_exit;
    rs->store.claim = ngx_http_cast_rstore_claim;
    rs->store.incr = ngx_http_cast_rstore_incr;
    rs->store.records = ngx_http_cast_rstore_records;
    rs->store.post = ngx_http_cast_rstore_post;

    /* the control channel is listened to from the start */

    ngx_str_set(&name, NGX_HTTP_CAST_CTL_CHANNEL);
    ch = ngx_http_cast_rstore_channel(rs, &name);
    if (ch == NULL) {
        return NULL;
    }

    ch->control = 1;

    rs->cmd = ngx_http_cast_redis_create(cycle, conf, "command",
                                         ngx_http_cast_rstore_cmd_state, rs);
    rs->pubsub = ngx_http_cast_redis_create(cycle, conf, "pubsub",
                                            ngx_http_cast_rstore_pubsub_state,
                                            rs);
    if (rs->cmd == NULL || rs->pubsub == NULL) {
        return NULL;
    }

    ngx_http_cast_redis_start(rs->cmd);
    ngx_http_cast_redis_start(rs->pubsub);

    rs->report_ev.handler = ngx_http_cast_rstore_report;
    rs->report_ev.data = rs;
    rs->report_ev.log = cycle->log;
    rs->report_ev.cancelable = 1;
    ngx_add_timer(&rs->report_ev, NGX_HTTP_CAST_REPORT);

    rs->sweep_ev.handler = ngx_http_cast_rstore_sweep;
    rs->sweep_ev.data = rs;
    rs->sweep_ev.log = cycle->log;
    rs->sweep_ev.cancelable = 1;
    ngx_add_timer(&rs->sweep_ev, NGX_HTTP_CAST_SWEEP);

    return &rs->store;
}


static void
ngx_http_cast_rstore_create(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_write((ngx_http_cast_rstore_t *) store, record, 0,
                               done, data);
}


/* a bound record, written again after Redis lost it */

static void
ngx_http_cast_rstore_restore(void *data, ngx_http_cast_record_t *record)
{
    ngx_http_cast_rstore_t *rs = data;

    ngx_log_error(NGX_LOG_WARN, rs->log, 0,
                  "cast: redis lost subscription %*s... (restarted empty, "
                  "or flushed): written again", (size_t) 8,
                  record->id.data);

    ngx_http_cast_rstore_write(rs, record, 1, NULL, NULL);
}


static void
ngx_http_cast_rstore_write(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_record_t *record, ngx_uint_t bound,
    ngx_http_cast_done_pt done, void *data)
{
    u_char                  kbuf[3][NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  nbuf[11][NGX_INT64_LEN];
    int64_t                 now, until;
    ngx_http_cast_rargs_t   keys, args, more;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, &record->topic, NULL);
    if (call == NULL) {
        return;
    }

    now = ngx_http_cast_now_ms();

    /* bound: its lease; unbound: its bind timeout, or its lease if sooner */

    if (bound) {
        until = record->expires;

    } else {
        until = now + ngx_min((int64_t) record->bind_timeout,
                              (int64_t) record->lease * 1000);
    }

    keys.argc = 0;
    ngx_http_cast_rargs_key(&keys, kbuf[0], "cast:sub:{", &record->id, "}");
    ngx_http_cast_rargs_key(&keys, kbuf[1], "cast:{", &record->topic,
                            "}:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");

    args.argc = 0;
    ngx_http_cast_rargs_str(&args, &record->id);
    ngx_http_cast_rargs_str(&args, &record->topic);
    ngx_http_cast_rargs_num(&args, nbuf[0], now);
    ngx_http_cast_rargs_num(&args, nbuf[1], until);
    ngx_http_cast_rargs_num(&args, nbuf[2], rs->max_topics);
    ngx_http_cast_rargs_num(&args, nbuf[3], record->counted);

    /* a record written again is not refused: it exists already */

    ngx_http_cast_rargs_num(&args, nbuf[9], bound ? 0 : rs->max_subs);
    ngx_http_cast_rargs_num(&args, nbuf[10],
                            bound ? 0 : rs->max_topic_subs);

    /* the record's fields, HSET as they are */

    more.argc = 0;
    ngx_http_cast_rargs_add(&more, "topic", 5);
    ngx_http_cast_rargs_str(&more, &record->topic);
    ngx_http_cast_rargs_add(&more, "events", 6);
    ngx_http_cast_rargs_str(&more, &record->events);
    ngx_http_cast_rargs_add(&more, "endpoint", 8);
    ngx_http_cast_rargs_str(&more, &record->endpoint);
    ngx_http_cast_rargs_add(&more, "name", 4);
    ngx_http_cast_rargs_str(&more, &record->name);
    ngx_http_cast_rargs_add(&more, "callback", 8);
    ngx_http_cast_rargs_str(&more, &record->callback);
    ngx_http_cast_rargs_add(&more, "product_name", 12);
    ngx_http_cast_rargs_str(&more, &record->product_name);
    ngx_http_cast_rargs_add(&more, "product_version", 15);
    ngx_http_cast_rargs_str(&more, &record->product_version);
    ngx_http_cast_rargs_add(&more, "actors", 6);
    ngx_http_cast_rargs_str(&more, &record->actors);
    ngx_http_cast_rargs_add(&more, "client_info", 11);
    ngx_http_cast_rargs_str(&more, &record->client_info);
    ngx_http_cast_rargs_literal(&more, "latest");
    ngx_http_cast_rargs_str(&more, &record->latest);
    ngx_http_cast_rargs_add(&more, "dialect", 7);
    ngx_http_cast_rargs_num(&more, nbuf[4], record->dialect);
    ngx_http_cast_rargs_add(&more, "lease", 5);
    ngx_http_cast_rargs_num(&more, nbuf[5], record->lease);
    ngx_http_cast_rargs_add(&more, "expires", 7);
    ngx_http_cast_rargs_num(&more, nbuf[6], record->expires);
    ngx_http_cast_rargs_add(&more, "counted", 7);
    ngx_http_cast_rargs_num(&more, nbuf[7], record->counted);
    ngx_http_cast_rargs_literal(&more, "bind_by");
    ngx_http_cast_rargs_num(&more, nbuf[8],
                            now + (int64_t) record->bind_timeout);

    if (bound) {
        ngx_http_cast_rargs_add(&more, "bound", 5);
        ngx_http_cast_rargs_add(&more, "1", 1);
    }

    /* cast_auth: what the token lets its socket publish */

    if (record->auth) {
        ngx_http_cast_rargs_literal(&more, "auth");
        ngx_http_cast_rargs_literal(&more, "1");
        ngx_http_cast_rargs_literal(&more, "writable");
        ngx_http_cast_rargs_str(&more, &record->writable);
    }

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_SUBSCRIBE, &keys,
                              &args, &more, ngx_http_cast_rstore_created);
}


static void
ngx_http_cast_rstore_created(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    ngx_uint_t  rc;

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc == NGX_HTTP_CAST_DONE && reply->type == REDIS_REPLY_ARRAY) {
        rc = ngx_http_cast_rstore_limit(call->rs, reply, &call->topic);

    } else if (rc == NGX_HTTP_CAST_DONE) {
        if (reply->type != REDIS_REPLY_INTEGER || reply->integer == 0) {
            rc = NGX_HTTP_CAST_FAILED;

        } else if (reply->integer < 0) {
            ngx_http_cast_rstore_full(call->rs, -1 - reply->integer,
                                      &call->topic);
            rc = NGX_HTTP_CAST_FULL;
        }
    }

    ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
}


static void
ngx_http_cast_rstore_renew(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  kbuf[2][NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  nbuf[4][NGX_INT64_LEN];
    int64_t                 now;
    ngx_str_t               grant;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, &record->topic, NULL);
    if (call == NULL) {
        return;
    }

    call->record = record;

    now = ngx_http_cast_now_ms();

    keys.argc = 0;
    ngx_http_cast_rargs_key(&keys, kbuf[0], "cast:sub:{", &record->id, "}");
    ngx_http_cast_rargs_key(&keys, kbuf[1], "cast:{", &record->topic,
                            "}:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");
    ngx_http_cast_rargs_literal(&keys, NGX_HTTP_CAST_CTL_LOG);

    args.argc = 0;
    ngx_http_cast_rargs_str(&args, &record->id);
    ngx_http_cast_rargs_str(&args, &record->topic);
    ngx_http_cast_rargs_str(&args, &record->events);
    ngx_http_cast_rargs_num(&args, nbuf[0], record->lease);
    ngx_http_cast_rargs_num(&args, nbuf[1], record->expires);
    ngx_http_cast_rargs_num(&args, nbuf[2], now);
    ngx_http_cast_rargs_num(&args, nbuf[3], now - NGX_HTTP_CAST_LOG_KEEP);

    /* cast_auth: "a<writable>" with a token, "n" without (no spaces) */

    grant.len = 1 + record->writable.len;
    grant.data = ngx_alloc(grant.len, rs->log);
    if (grant.data == NULL) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                    NULL);
        return;
    }

    grant.data[0] = record->auth ? 'a' : 'n';
    ngx_memcpy(grant.data + 1, record->writable.data, record->writable.len);

    if (!record->auth) {
        grant.len = 1;
    }

    ngx_http_cast_rargs_str(&args, &grant);

    /* the command is formatted before this returns */

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_RENEW, &keys,
                              &args, NULL, ngx_http_cast_rstore_renewed);
    ngx_free(grant.data);
}


static void
ngx_http_cast_rstore_renewed(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    ngx_uint_t               rc;
    ngx_http_cast_record_t   record;

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc != NGX_HTTP_CAST_DONE) {
        ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
        return;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_NOT_FOUND, NULL, 0,
                                    NULL);
        return;
    }

    /* the caller's record, with the endpoint Redis keeps */

    record = *call->record;
    record.endpoint.data = (u_char *) reply->str;
    record.endpoint.len = reply->len;

    ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, &record, 0, NULL);
}


static void
ngx_http_cast_rstore_remove(ngx_http_cast_store_t *store, ngx_str_t *id,
    ngx_str_t *topic, ngx_str_t *reason, ngx_http_cast_done_pt done,
    void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  kbuf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  nbuf[2][NGX_INT64_LEN];
    int64_t                 now;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, id, reason);
    if (call == NULL) {
        return;
    }

    now = ngx_http_cast_now_ms();

    keys.argc = 0;
    ngx_http_cast_rargs_key(&keys, kbuf, "cast:sub:{", id, "}");
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");
    ngx_http_cast_rargs_literal(&keys, NGX_HTTP_CAST_CTL_LOG);

    args.argc = 0;
    ngx_http_cast_rargs_str(&args, id);
    ngx_http_cast_rargs_str(&args, topic);
    ngx_http_cast_rargs_str(&args, reason);
    ngx_http_cast_rargs_num(&args, nbuf[0], now);
    ngx_http_cast_rargs_num(&args, nbuf[1], now - NGX_HTTP_CAST_LOG_KEEP);

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_REMOVE, &keys,
                              &args, NULL, ngx_http_cast_rstore_removed);
}


/* {endpoint, topic, bound} or nil; call->topic holds the id here */

static void
ngx_http_cast_rstore_removed(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    ngx_uint_t               rc, bound;
    ngx_http_cast_record_t   record;
    ngx_http_cast_rstore_t  *rs;

    rs = call->rs;
    rc = ngx_http_cast_rstore_failed(rs, reply);

    if (rc != NGX_HTTP_CAST_DONE) {
        ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_NOT_FOUND, NULL, 0,
                                    NULL);
        return;
    }

    ngx_memzero(&record, sizeof(ngx_http_cast_record_t));
    record.id = call->topic;
    record.endpoint.data = (u_char *) reply->element[0]->str;
    record.endpoint.len = reply->element[0]->len;
    record.topic.data = (u_char *) reply->element[1]->str;
    record.topic.len = reply->element[1]->len;
    bound = (reply->element[2]->len == 1 && reply->element[2]->str[0] == '1');

    ngx_http_cast_rstore_answer(call, NGX_HTTP_CAST_DONE, &record, 1, NULL);

    /* as the local store does: the answer first, then the news */

    rs->store.hooks.ended(rs->store.hooks.hub, &record.id, &record.topic,
                          &call->reason, bound);

    ngx_free(call);
}


static void
ngx_http_cast_rstore_remove_matching(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t field, ngx_str_t *value, ngx_str_t *reason,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  kbuf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  nbuf[2][NGX_INT64_LEN];
    int64_t                 now;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, topic, reason);
    if (call == NULL) {
        return;
    }

    now = ngx_http_cast_now_ms();

    keys.argc = 0;
    ngx_http_cast_rargs_key(&keys, kbuf, "cast:{", topic, "}:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");
    ngx_http_cast_rargs_literal(&keys, NGX_HTTP_CAST_CTL_LOG);

    args.argc = 0;
    ngx_http_cast_rargs_str(&args, topic);

    if (field == NGX_HTTP_CAST_MATCH_CALLBACK) {
        ngx_http_cast_rargs_add(&args, "callback", 8);

    } else {
        ngx_http_cast_rargs_add(&args, "name", 4);
    }

    ngx_http_cast_rargs_str(&args, value);
    ngx_http_cast_rargs_str(&args, reason);
    ngx_http_cast_rargs_num(&args, nbuf[0], now);
    ngx_http_cast_rargs_num(&args, nbuf[1], now - NGX_HTTP_CAST_LOG_KEEP);

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_REMOVE_MATCHING, &keys,
                              &args, NULL, ngx_http_cast_rstore_removed_many);
}


static void
ngx_http_cast_rstore_reset(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  nbuf[2][NGX_INT64_LEN];
    int64_t                 now;
    ngx_str_t               reason;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    ngx_str_set(&reason, "reset");

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, &reason);
    if (call == NULL) {
        return;
    }

    now = ngx_http_cast_now_ms();

    keys.argc = 0;
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");
    ngx_http_cast_rargs_literal(&keys, NGX_HTTP_CAST_CTL_LOG);

    args.argc = 0;
    ngx_http_cast_rargs_str(&args, &reason);
    ngx_http_cast_rargs_num(&args, nbuf[0], now);
    ngx_http_cast_rargs_num(&args, nbuf[1], now - NGX_HTTP_CAST_LOG_KEEP);

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_RESET, &keys,
                              &args, NULL, ngx_http_cast_rstore_removed_many);
}


/*
 * remove_matching: {id, bound, ...} of call->topic;
 * reset: {id, topic, bound, ...}.
 */

static void
ngx_http_cast_rstore_removed_many(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    size_t                   i, step;
    ngx_str_t                id, topic;
    ngx_uint_t               rc, removed, bound;
    redisReply              *b;
    ngx_http_cast_rstore_t  *rs;

    rs = call->rs;
    rc = ngx_http_cast_rstore_failed(rs, reply);

    if (rc != NGX_HTTP_CAST_DONE || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_cast_rstore_finish(call,
                                    rc == NGX_HTTP_CAST_DONE
                                    ? NGX_HTTP_CAST_FAILED : rc,
                                    NULL, 0, NULL);
        return;
    }

    step = call->topic.len ? 2 : 3;
    removed = reply->elements / step;

    ngx_http_cast_rstore_answer(call, NGX_HTTP_CAST_DONE, NULL, removed,
                                NULL);

    for (i = 0; i + step <= reply->elements; i += step) {
        id.data = (u_char *) reply->element[i]->str;
        id.len = reply->element[i]->len;

        if (step == 2) {
            topic = call->topic;
            b = reply->element[i + 1];

        } else {
            topic.data = (u_char *) reply->element[i + 1]->str;
            topic.len = reply->element[i + 1]->len;
            b = reply->element[i + 2];
        }

        bound = (b->type == REDIS_REPLY_STRING && b->len == 1
                 && b->str[0] == '1');

        rs->store.hooks.ended(rs->store.hooks.hub, &id, &topic,
                              &call->reason, bound);
    }

    ngx_free(call);
}


static void
ngx_http_cast_rstore_bind(ngx_http_cast_store_t *store, ngx_str_t *id,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  kbuf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  nbuf[NGX_INT64_LEN], random[16];
    u_char                  nonce[NGX_HTTP_CAST_NONCE_LEN];
    ngx_str_t               n;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    if (ngx_http_cast_random(random, sizeof(random)) != NGX_OK) {
        ngx_http_cast_rstore_failed_call(done, data);
        return;
    }

    n.data = nonce;
    n.len = ngx_hex_dump(nonce, random, sizeof(random)) - nonce;

    /* the call keeps the id (its "topic") and the nonce (its "reason") */

    call = ngx_http_cast_rstore_call(rs, done, data, id, &n);
    if (call == NULL) {
        return;
    }

    keys.argc = 0;
    ngx_http_cast_rargs_key(&keys, kbuf, "cast:sub:{", id, "}");
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");

    args.argc = 0;
    ngx_http_cast_rargs_str(&args, id);
    ngx_http_cast_rargs_num(&args, nbuf, ngx_http_cast_now_ms());
    ngx_http_cast_rargs_str(&args, &n);

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_BIND, &keys,
                              &args, NULL, ngx_http_cast_rstore_bound);
}


static void
ngx_http_cast_rstore_bound(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    ngx_uint_t               rc;
    ngx_http_cast_unbind_t  *unbind;
    ngx_http_cast_record_t   record;

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc != NGX_HTTP_CAST_DONE) {
        if (reply == NULL) {
            /*
             * The client is told the bind failed, but the script may have
             * run: it is undone as soon as Redis can be reached.
             */
            unbind = ngx_alloc(sizeof(ngx_http_cast_unbind_t),
                               call->rs->log);

            if (unbind && call->topic.len == NGX_HTTP_CAST_ID_LEN
                && call->reason.len == NGX_HTTP_CAST_NONCE_LEN)
            {
                ngx_memcpy(unbind->id, call->topic.data,
                           NGX_HTTP_CAST_ID_LEN);
                ngx_memcpy(unbind->nonce, call->reason.data,
                           NGX_HTTP_CAST_NONCE_LEN);
                ngx_queue_insert_tail(&call->rs->unbinds, &unbind->queue);

            } else if (unbind) {
                ngx_free(unbind);
            }
        }

        ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
        return;
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        ngx_http_cast_rstore_finish(call, reply->integer < 0
                                          ? NGX_HTTP_CAST_BOUND
                                          : NGX_HTTP_CAST_NOT_FOUND,
                                    NULL, 0, NULL);
        return;
    }

    if (ngx_http_cast_rstore_record(reply, &record) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, call->rs->log, 0,
                      "cast: redis holds an invalid subscription record");
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                    NULL);
        return;
    }

    record.id = call->topic;

    ngx_http_cast_rstore_report_soon(call->rs);    /* after the attach */
    ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, &record, 0, NULL);
}


/*
 * An event with the state the hub computes from the last state seen
 * here.  It waits behind the topic's batch on its way, if any, and goes
 * with the events that waited with it; when another worker changed the
 * topic first, Redis answers with the state it has, and the hub
 * computes the batch again.
 */

static void
ngx_http_cast_rstore_append(ngx_http_cast_store_t *store,
    ngx_http_cast_append_t *a)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    uint32_t                 hash;
    ngx_http_cast_lane_t    *lane;
    ngx_http_cast_rcall_t   *call;

    call = ngx_http_cast_rstore_call(rs, a->done, a->data, &a->topic, NULL);
    if (call == NULL) {
        return;
    }

    call->append = a;

    hash = ngx_crc32_long(a->topic.data, a->topic.len);

    lane = (ngx_http_cast_lane_t *)
               ngx_str_rbtree_lookup(&rs->lanes, &a->topic, hash);

    if (lane) {
        /* with the next batch */
        ngx_queue_insert_tail(&lane->waiting, &call->queue);
        return;
    }

    lane = ngx_alloc(sizeof(ngx_http_cast_lane_t) + a->topic.len, rs->log);
    if (lane == NULL) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                    NULL);
        return;
    }

    ngx_memzero(lane, sizeof(ngx_http_cast_lane_t));
    ngx_memcpy(lane->name, a->topic.data, a->topic.len);
    lane->sn.str.data = lane->name;
    lane->sn.str.len = a->topic.len;
    lane->sn.node.key = hash;
    lane->rs = rs;
    ngx_queue_init(&lane->waiting);
    ngx_queue_init(&lane->sent);
    ngx_rbtree_insert(&rs->lanes, &lane->sn.node);

    ngx_queue_insert_tail(&lane->waiting, &call->queue);

    ngx_http_cast_rstore_run(lane);
}


/* the lane's next batch goes, or the lane ends when none waits */

static void
ngx_http_cast_rstore_run(ngx_http_cast_lane_t *lane)
{
    for ( ;; ) {
        if (ngx_queue_empty(&lane->waiting)) {
            ngx_rbtree_delete(&lane->rs->lanes, &lane->sn.node);
            json_decref(lane->next);
            ngx_free(lane);
            return;
        }

        if (ngx_http_cast_rstore_batch(lane) == NGX_OK) {
            return;
        }

        /* nothing went: those taken were answered; the next ones */
    }
}


/*
 * The waiting events, in order, each applied to the state the ones
 * before it left (the first to the last state seen here): at most
 * NGX_HTTP_CAST_BATCH_MAX, of one log, and none after a clear.
 */

static ngx_int_t
ngx_http_cast_rstore_batch(ngx_http_cast_lane_t *lane)
{
    size_t                   bytes;
    json_t                  *cur, *next;
    uint64_t                 version;
    ngx_int_t                rc;
    ngx_str_t               *log, *first;
    ngx_uint_t               max, counted;
    ngx_queue_t             *q;
    ngx_http_cast_rcall_t   *call;
    ngx_http_cast_append_t  *a;
    ngx_http_cast_cached_t  *cached;

    cached = ngx_http_cast_rstore_cached(lane->rs, &lane->sn.str);

    if (cached) {
        cur = json_incref(cached->state);
        version = cached->version;

    } else {
        cur = json_object();
        version = 0;
    }

    max = NGX_HTTP_CAST_BATCH_MAX;

    if (lane->limit && lane->limit < max) {
        max = lane->limit;
    }

    lane->limit = 0;
    lane->nsent = 0;
    lane->changed = 0;

    first = NULL;
    counted = 0;
    bytes = 0;

    while (!ngx_queue_empty(&lane->waiting) && lane->nsent < max) {
        q = ngx_queue_head(&lane->waiting);
        call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);
        a = call->append;

        /* a topic's events may go to another topic's log (a conference) */

        log = a->log.len ? &a->log : &a->topic;

        if (first
            && (a->counted != counted
                || log->len != first->len
                || ngx_memcmp(log->data, first->data, log->len) != 0
                || bytes + a->json.len > NGX_HTTP_CAST_BATCH_BYTES))
        {
            break;
        }

        next = cur ? json_deep_copy(cur) : NULL;
        rc = next ? a->apply(a, next) : NGX_ERROR;

        ngx_queue_remove(q);

        if (rc == NGX_ERROR) {
            json_decref(next);
            ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                        NULL);
            continue;
        }

        ngx_queue_insert_tail(&lane->sent, q);
        lane->nsent++;

        if (first == NULL) {
            first = log;
            counted = a->counted;
        }

        bytes += a->json.len;

        if (rc == NGX_ABORT) {
            /* refused on the state computed: Redis says if it is current */
            call->op = NGX_HTTP_CAST_OP_REFUSE;
            json_decref(next);
            continue;
        }

        if (rc == NGX_DECLINED) {
            call->op = NGX_HTTP_CAST_OP_KEEP;
            json_decref(next);
            continue;
        }

        json_decref(cur);
        cur = next;
        lane->changed = 1;

        if (json_object_size(cur) == 0) {
            /* the topic ends: what comes after counts it again */
            call->op = NGX_HTTP_CAST_OP_CLEAR;
            break;
        }

        call->op = NGX_HTTP_CAST_OP_SET;
    }

    json_decref(lane->next);
    lane->next = cur;

    if (lane->nsent == 0) {
        return NGX_DECLINED;
    }

    if (cur == NULL
        || ngx_http_cast_rstore_send_batch(lane, version) != NGX_OK)
    {
        rc = cur ? NGX_HTTP_CAST_UNAVAILABLE : NGX_HTTP_CAST_FAILED;

        while (!ngx_queue_empty(&lane->sent)) {
            q = ngx_queue_head(&lane->sent);
            ngx_queue_remove(q);
            call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);
            ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_rstore_send_batch(ngx_http_cast_lane_t *lane,
    uint64_t version)
{
    u_char                   kbuf[4][NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                   cbuf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                   nbuf[8][NGX_INT64_LEN];
    char                    *text;
    int                      i, argc;
    ngx_uint_t               claim;
    size_t                  *argvlen;
    int64_t                  now;
    ngx_int_t                rc;
    ngx_str_t                channel, *log;
    const char             **argv;
    ngx_queue_t             *q;
    ngx_http_cast_rargs_t    all;
    ngx_http_cast_rcall_t   *call;
    ngx_http_cast_rstore_t  *rs;
    ngx_http_cast_append_t  *a;

    static const char  *ops[] = { "keep", "set", "clear", "refuse" };

    rs = lane->rs;

    if (rs->too_old || !ngx_http_cast_redis_ready(rs->cmd)) {
        return NGX_ERROR;
    }

    q = ngx_queue_last(&lane->sent);
    call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);

    text = NULL;

    for ( ;; ) {
        if (call->op == NGX_HTTP_CAST_OP_SET) {
            text = json_dumps(lane->next, JSON_COMPACT);
            if (text == NULL) {
                return NGX_ERROR;
            }

            break;
        }

        if (call->op == NGX_HTTP_CAST_OP_CLEAR
            || q == ngx_queue_head(&lane->sent))
        {
            break;
        }

        q = ngx_queue_prev(q);
        call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);
    }

    call = ngx_queue_data(ngx_queue_head(&lane->sent),
                          ngx_http_cast_rcall_t, queue);
    a = call->append;

    /* the oldest event's: computed again too often, it claims a turn */
    claim = call->attempts >= NGX_HTTP_CAST_CLAIM_AFTER;

    log = a->log.len ? &a->log : &a->topic;
    now = ngx_http_cast_now_ms();

    channel.data = cbuf;
    channel.len = ngx_sprintf(cbuf, NGX_HTTP_CAST_EV_PREFIX "%V", log)
                  - cbuf;

    all.argc = 0;
    ngx_http_cast_rargs_add(&all, "EVALSHA", 7);
    ngx_http_cast_rargs_add(&all,
                   ngx_http_cast_scripts[NGX_HTTP_CAST_SCRIPT_APPEND].sha,
                   40);
    ngx_http_cast_rargs_num(&all, nbuf[7], NGX_HTTP_CAST_LUA_APPEND_NKEYS);

    ngx_http_cast_rargs_key(&all, kbuf[0], "cast:{", &a->topic, "}:state");
    ngx_http_cast_rargs_key(&all, kbuf[1], "cast:{", log, "}:log");
    ngx_http_cast_rargs_literal(&all, "cast:topics");
    ngx_http_cast_rargs_key(&all, kbuf[2], "cast:{", &a->topic, "}:ids");
    ngx_http_cast_rargs_key(&all, kbuf[3], "cast:{", &a->topic, "}:turn");

    ngx_http_cast_rargs_str(&all, &a->topic);
    ngx_http_cast_rargs_num(&all, nbuf[0], (int64_t) version);
    ngx_http_cast_rargs_num(&all, nbuf[1], now);
    ngx_http_cast_rargs_num(&all, nbuf[2], rs->max_topics);
    ngx_http_cast_rargs_num(&all, nbuf[3], a->counted);
    ngx_http_cast_rargs_num(&all, nbuf[4],
                            a->keep ? 0 : (int64_t) rs->context_ttl);
    ngx_http_cast_rargs_num(&all, nbuf[5], now - NGX_HTTP_CAST_LOG_KEEP);
    ngx_http_cast_rargs_add(&all, "120000", 6);
    ngx_http_cast_rargs_str(&all, &channel);
    ngx_http_cast_rargs_num(&all, nbuf[6], NGX_HTTP_CAST_IDS_KEEP);
    ngx_http_cast_rargs_add(&all, text ? text : "",
                            text ? ngx_strlen(text) : 0);
    ngx_http_cast_rargs_str(&all, &rs->writer);
    ngx_http_cast_rargs_add(&all, claim ? "1" : "0", 1);
    ngx_http_cast_rargs_literal(&all, NGX_HTTP_CAST_TURN_MS);

    argc = all.argc + 4 * (int) lane->nsent;

    argv = ngx_alloc(argc * (sizeof(char *) + sizeof(size_t)), rs->log);
    if (argv == NULL) {
        free(text);
        return NGX_ERROR;
    }

    argvlen = (size_t *) (argv + argc);

    for (i = 0; i < all.argc; i++) {
        argv[i] = all.argv[i];
        argvlen[i] = all.argvlen[i];
    }

    for (q = ngx_queue_head(&lane->sent);
         q != ngx_queue_sentinel(&lane->sent);
         q = ngx_queue_next(q))
    {
        call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);
        a = call->append;

        argv[i] = ops[call->op];
        argvlen[i++] = ngx_strlen(ops[call->op]);
        argv[i] = a->name.len ? (char *) a->name.data : "";
        argvlen[i++] = a->name.len;
        argv[i] = a->json.len ? (char *) a->json.data : "";
        argvlen[i++] = a->json.len;
        argv[i] = a->id.len ? (char *) a->id.data : "";
        argvlen[i++] = a->id.len;
    }

    rc = ngx_http_cast_redis_command(rs->cmd, ngx_http_cast_rstore_appended,
                                     lane, argc, argv, argvlen);
    ngx_free(argv);
    free(text);

    return rc;
}


/* moves the calls of "from" before the waiting ones, in order */

static void
ngx_http_cast_rstore_requeue(ngx_http_cast_lane_t *lane, ngx_queue_t *from)
{
    ngx_queue_t  *q;

    while (!ngx_queue_empty(from)) {
        q = ngx_queue_last(from);
        ngx_queue_remove(q);
        ngx_queue_insert_head(&lane->waiting, q);
    }
}


/*
 * {1, version, result...}: the batch went (see append.lua);
 * {0, version, state}: computed again; {5, n}: the first n go alone;
 * {6}: another writer's turn, sent again.
 */

static void
ngx_http_cast_rstore_appended(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply            *reply = r;
    ngx_http_cast_lane_t  *lane = privdata;

    json_t                  *state;
    uint64_t                 version;
    ngx_str_t                text;
    ngx_uint_t               rc, i, retry;
    ngx_queue_t             *q, again;
    redisReply              *one;
    ngx_http_cast_rcall_t   *call;
    ngx_http_cast_rstore_t  *rs;

    rs = lane->rs;
    rc = ngx_http_cast_rstore_failed(rs, reply);

    ngx_queue_init(&again);

    if (rc == NGX_HTTP_CAST_DONE
        && (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0
            || reply->element[0]->type != REDIS_REPLY_INTEGER))
    {
        rc = NGX_HTTP_CAST_FAILED;
    }

    if (rc != NGX_HTTP_CAST_DONE) {
        goto answer;
    }

    switch (reply->element[0]->integer) {

    case 1:
        if (reply->elements != lane->nsent + 2
            || reply->element[1]->type != REDIS_REPLY_STRING)
        {
            rc = NGX_HTTP_CAST_FAILED;
            goto answer;
        }

        version = ngx_atoof((u_char *) reply->element[1]->str,
                            reply->element[1]->len);

        retry = 0;

        for (i = 2; i < reply->elements; i++) {
            one = reply->element[i];

            if (one->type == REDIS_REPLY_ARRAY && one->elements
                && one->element[0]->type == REDIS_REPLY_INTEGER
                && one->element[0]->integer == 0)
            {
                retry = 1;
            }
        }

        /* all went as computed: the state is the one computed */

        if (!retry && lane->changed && (off_t) version != NGX_ERROR) {
            ngx_http_cast_rstore_cache(rs, &lane->sn.str, version,
                                       lane->next);
        }

        for (i = 2; i < reply->elements; i++) {
            q = ngx_queue_head(&lane->sent);
            ngx_queue_remove(q);
            call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);

            one = reply->element[i];

            if (one->type != REDIS_REPLY_ARRAY || one->elements == 0
                || one->element[0]->type != REDIS_REPLY_INTEGER)
            {
                ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED,
                                            NULL, 0, NULL);
                continue;
            }

            switch (one->element[0]->integer) {

            case 0:
                /* not tried: computed again on the new state */
                ngx_queue_insert_tail(&again, q);
                break;

            case 1:
                ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, NULL,
                                            0, NULL);
                break;

            case 2:
                /* a retry of an event appended before: answered the same */
                ngx_log_error(NGX_LOG_INFO, rs->log, 0,
                              "cast: event \"%V\" on topic \"%V\" was "
                              "published before: not again",
                              &call->append->id, &call->topic);

                call->again = 1;
                ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, NULL,
                                            0, NULL);
                break;

            case 3:
                /* refused against the topic's current state */
                ngx_http_cast_rstore_finish(call, call->append->refused,
                                            NULL, 0, NULL);
                break;

            default:
                if (one->elements == 2
                    && one->element[1]->type == REDIS_REPLY_INTEGER)
                {
                    ngx_http_cast_rstore_full(rs, one->element[1]->integer,
                                              &call->topic);
                }

                ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FULL, NULL,
                                            0, NULL);
                break;
            }
        }

        break;

    case 0:
        if (reply->elements != 3
            || reply->element[1]->type != REDIS_REPLY_STRING
            || reply->element[2]->type != REDIS_REPLY_STRING)
        {
            rc = NGX_HTTP_CAST_FAILED;
            goto answer;
        }

        version = ngx_atoof((u_char *) reply->element[1]->str,
                            reply->element[1]->len);
        text.data = (u_char *) reply->element[2]->str;
        text.len = reply->element[2]->len;

        state = ngx_http_cast_rstore_parse_state(&text);
        if (state == NULL || (off_t) version == NGX_ERROR) {
            json_decref(state);
            rc = NGX_HTTP_CAST_FAILED;
            goto answer;
        }

        ngx_http_cast_rstore_cache(rs, &lane->sn.str, version, state);
        json_decref(state);

        /* nothing went: computed again, a bounded number of times */

        while (!ngx_queue_empty(&lane->sent)) {
            q = ngx_queue_head(&lane->sent);
            ngx_queue_remove(q);
            call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);

            if (++call->attempts < NGX_HTTP_CAST_MAX_ATTEMPTS) {
                ngx_queue_insert_tail(&again, q);
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                          "cast: the state of topic \"%V\" changed %ui "
                          "times while an event was appended: refused",
                          &call->topic, call->attempts);
            ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_UNAVAILABLE,
                                        NULL, 0, NULL);
        }

        break;

    case 5:
        if (reply->elements != 2
            || reply->element[1]->type != REDIS_REPLY_INTEGER
            || reply->element[1]->integer < 1)
        {
            rc = NGX_HTTP_CAST_FAILED;
            goto answer;
        }

        /* nothing went: the first n alone */

        lane->limit = reply->element[1]->integer;
        ngx_queue_add(&again, &lane->sent);
        ngx_queue_init(&lane->sent);
        break;

    case 6:
        /* another writer's turn: again, as computed (it goes soon) */

        while (!ngx_queue_empty(&lane->sent)) {
            q = ngx_queue_head(&lane->sent);
            ngx_queue_remove(q);
            call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);

            if (++call->waits < NGX_HTTP_CAST_MAX_WAITS) {
                ngx_queue_insert_tail(&again, q);
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                          "cast: topic \"%V\" was another writer's %ui "
                          "times while an event was appended: refused",
                          &call->topic, call->waits);
            ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_UNAVAILABLE,
                                        NULL, 0, NULL);
        }

        break;

    default:
        rc = NGX_HTTP_CAST_FAILED;
        goto answer;
    }

    ngx_http_cast_rstore_requeue(lane, &again);
    ngx_http_cast_rstore_run(lane);
    return;

answer:

    while (!ngx_queue_empty(&lane->sent)) {
        q = ngx_queue_head(&lane->sent);
        ngx_queue_remove(q);
        call = ngx_queue_data(q, ngx_http_cast_rcall_t, queue);
        ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
    }

    ngx_http_cast_rstore_run(lane);
}


static void
ngx_http_cast_rstore_state(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, topic, NULL);
    if (call == NULL) {
        return;
    }

    ngx_http_cast_rstore_ask(call, ngx_http_cast_rstore_state_reply,
                             "HMGET cast:{%b}:state v s", topic->data,
                             topic->len);
}


static void
ngx_http_cast_rstore_state_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    json_t      *state;
    uint64_t     version;
    ngx_str_t    text;
    ngx_uint_t   rc;

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc != NGX_HTTP_CAST_DONE) {
        ngx_http_cast_rstore_finish(call, rc, NULL, 0, NULL);
        return;
    }

    ngx_str_null(&text);
    version = 0;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        version = ngx_atoof((u_char *) reply->element[0]->str,
                            reply->element[0]->len);
        text.data = (u_char *) reply->element[1]->str;
        text.len = reply->element[1]->len;
    }

    state = ngx_http_cast_rstore_parse_state(&text);
    if (state == NULL) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                    NULL);
        return;
    }

    if ((off_t) version != NGX_ERROR) {
        ngx_http_cast_rstore_cache(call->rs, &call->topic, version, state);
    }

    ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, NULL, 0, state);
    json_decref(state);
}


/* the live records of a topic: its index, past what is over */

static void
ngx_http_cast_rstore_count(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  key[NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  now[NGX_INT64_LEN + 1];
    size_t                  key_len, now_len;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, NULL);
    if (call == NULL) {
        return;
    }

    if (topic->len > NGX_HTTP_CAST_MAX_TOPIC) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, NULL, 0, NULL);
        return;
    }

    key_len = ngx_sprintf(key, "cast:{%V}:subs", topic) - key;
    now_len = ngx_sprintf(now, "(%L", ngx_http_cast_now_ms()) - now;

    ngx_http_cast_rstore_ask(call, ngx_http_cast_rstore_counted,
                             "ZCOUNT %b %b +inf", key, key_len, now,
                             now_len);
}


static void
ngx_http_cast_rstore_counted(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    ngx_uint_t  rc;

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc == NGX_HTTP_CAST_DONE && reply->type != REDIS_REPLY_INTEGER) {
        rc = NGX_HTTP_CAST_FAILED;
    }

    ngx_http_cast_rstore_finish(call, rc, NULL,
                                rc == NGX_HTTP_CAST_DONE
                                ? (ngx_uint_t) ngx_max(reply->integer, 0)
                                : 0,
                                NULL);
}


/* the counted topics: those whose score (when they stop) is to come */

static void
ngx_http_cast_rstore_topics(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  now[NGX_INT64_LEN + 1], max[NGX_INT64_LEN];
    size_t                  now_len, max_len;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, NULL);
    if (call == NULL) {
        return;
    }

    now_len = ngx_sprintf(now, "(%L", ngx_http_cast_now_ms()) - now;
    max_len = ngx_sprintf(max, "%ui", rs->max_topics) - max;

    ngx_http_cast_rstore_ask(call, ngx_http_cast_rstore_topics_reply,
                             "ZRANGEBYSCORE cast:topics %b +inf LIMIT 0 %b",
                             now, now_len, max, max_len);
}


static void
ngx_http_cast_rstore_topics_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    size_t       i;
    json_t      *list, *name;
    ngx_uint_t   rc;

    list = NULL;
    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc == NGX_HTTP_CAST_DONE) {
        list = (reply->type == REDIS_REPLY_ARRAY) ? json_array() : NULL;
        rc = list ? NGX_HTTP_CAST_DONE : NGX_HTTP_CAST_FAILED;
    }

    for (i = 0; list && i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        name = json_stringn(reply->element[i]->str, reply->element[i]->len);

        if (name == NULL || json_array_append_new(list, name) != 0) {
            rc = NGX_HTTP_CAST_FAILED;
            break;
        }
    }

    ngx_http_cast_rstore_finish(call, rc, NULL, 0,
                                rc == NGX_HTTP_CAST_DONE ? list : NULL);
    json_decref(list);
}


/* SUBSCRIBE to a topic's channel while this worker has sockets on it */

static void
ngx_http_cast_rstore_listen(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_uint_t on)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                    buf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    ngx_str_t                 name;
    ngx_queue_t              *q;
    ngx_http_cast_channel_t  *ch;

    if (topic->len == 1 && topic->data[0] == '*') {
        /* "*" sockets: every topic's channel, by pattern */

        rs->wildcard = on;

        if (ngx_http_cast_redis_ready(rs->pubsub)) {
            (void) ngx_http_cast_redis_commandf(rs->pubsub,
                                   on ? ngx_http_cast_rstore_message : NULL,
                                   on ? rs : NULL,
                                   on ? "PSUBSCRIBE %s" : "PUNSUBSCRIBE %s",
                                   NGX_HTTP_CAST_EV_PATTERN);
        }

        return;
    }

    if (topic->len > NGX_HTTP_CAST_MAX_TOPIC) {
        return;
    }

    name.data = buf;
    name.len = ngx_sprintf(buf, NGX_HTTP_CAST_EV_PREFIX "%V", topic) - buf;

    if (on) {
        ch = ngx_http_cast_rstore_channel(rs, &name);
        if (ch == NULL) {
            return;
        }

        /*
         * What is published before the SUBSCRIBE takes effect is read
         * from the log, from the moment the channel was wanted.
         */

        ch->catching = 1;
        ch->fresh = 1;

        if (ngx_http_cast_redis_ready(rs->pubsub)) {
            ngx_http_cast_rstore_subscribe(rs, ch);
        }

        return;
    }

    ch = (ngx_http_cast_channel_t *)
             ngx_str_rbtree_lookup(&rs->channels, &name,
                                   ngx_crc32_long(name.data, name.len));
    if (ch == NULL) {
        return;
    }

    if (ngx_http_cast_redis_ready(rs->pubsub)) {
        (void) ngx_http_cast_redis_commandf(rs->pubsub, NULL, NULL,
                                            "UNSUBSCRIBE %b", name.data,
                                            name.len);
    }

    while (!ngx_queue_empty(&ch->held)) {
        q = ngx_queue_head(&ch->held);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_cast_held_t, queue));
    }

    ngx_rbtree_delete(&rs->channels, &ch->sn.node);
    ngx_free(ch);
}


static void
ngx_http_cast_rstore_status(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  nbuf[2][NGX_INT64_LEN];
    int64_t                 now;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, NULL);
    if (call == NULL) {
        return;
    }

    now = ngx_http_cast_now_ms();

    keys.argc = 0;
    ngx_http_cast_rargs_literal(&keys, "cast:stats");
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");

    args.argc = 0;
    ngx_http_cast_rargs_num(&args, nbuf[0], now - NGX_HTTP_CAST_REPORT_KEEP);
    ngx_http_cast_rargs_num(&args, nbuf[1], now);

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_STATUS, &keys,
                              &args, NULL, ngx_http_cast_rstore_status_reply);
}


static void
ngx_http_cast_rstore_status_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    size_t       i;
    json_t      *status, *peers, *peer;
    ngx_uint_t   rc;

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc != NGX_HTTP_CAST_DONE || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 4
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[2]->type != REDIS_REPLY_INTEGER
        || reply->element[3]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_cast_rstore_finish(call,
                                    rc == NGX_HTTP_CAST_DONE
                                    ? NGX_HTTP_CAST_FAILED : rc,
                                    NULL, 0, NULL);
        return;
    }

    peers = json_array();

    status = json_pack("{s:I,s:I,s:I,s:I,s:o}",
                       "subscriptions",
                       (json_int_t) reply->element[0]->integer,
                       "topics", (json_int_t) reply->element[1]->integer,
                       "connections",
                       (json_int_t) ngx_max(reply->element[2]->integer, 0),
                       "events_in", (json_int_t) reply->element[3]->integer,
                       "peers", peers);
    if (status == NULL) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                    NULL);
        return;
    }

    for (i = 4; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        peer = json_loadb(reply->element[i]->str, reply->element[i]->len, 0,
                          NULL);

        if (!json_is_object(peer) || json_array_append_new(peers, peer)) {
            json_decref(peer);
        }
    }

    ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, NULL, 0, status);
    json_decref(status);
}


/*
 * Claims and counters: one Redis command each, atomic in Redis, so one
 * claimer and one order of counts across every worker of every host.
 *   claim: SET cast:claim:<key> 1 NX PX <ttl>   (OK: first; nil: held)
 *   incr:  INCR cast:count:<key>
 */

static void
ngx_http_cast_rstore_claim(ngx_http_cast_store_t *store, ngx_str_t *key,
    ngx_msec_t ttl, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  buf[NGX_INT_T_LEN];
    ngx_str_t               px;
    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, NULL);
    if (call == NULL) {
        return;
    }

    px.data = buf;
    px.len = ngx_sprintf(buf, "%M", ttl) - buf;

    ngx_http_cast_rstore_ask(call, ngx_http_cast_rstore_keyed,
                             "SET cast:claim:%b 1 NX PX %b", key->data,
                             key->len, px.data, px.len);
}


static void
ngx_http_cast_rstore_incr(ngx_http_cast_store_t *store, ngx_str_t *key,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    ngx_http_cast_rcall_t  *call;

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, NULL);
    if (call == NULL) {
        return;
    }

    ngx_http_cast_rstore_ask(call, ngx_http_cast_rstore_incremented,
                             "INCR cast:count:%b", key->data, key->len);
}


static void
ngx_http_cast_rstore_keyed(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_cast_rstore_key_reply(privdata, r, 0);
}


static void
ngx_http_cast_rstore_incremented(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_cast_rstore_key_reply(privdata, r, 1);
}


static void
ngx_http_cast_rstore_key_reply(ngx_http_cast_rcall_t *call,
    redisReply *reply, ngx_uint_t counter)
{
    void                    *data;
    ngx_http_cast_done_pt    done;
    ngx_http_cast_result_t   res;

    ngx_memzero(&res, sizeof(ngx_http_cast_result_t));

    res.rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (res.rc != NGX_HTTP_CAST_DONE) {
        /* as it failed */

    } else if (counter) {
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
            res.value = (uint64_t) reply->integer;

        } else {
            res.rc = NGX_HTTP_CAST_FAILED;
        }

    } else if (reply->type == REDIS_REPLY_NIL) {
        /* SET ... NX: nil once the key is held, "OK" for the first */
        res.rc = NGX_HTTP_CAST_CLAIMED;

    } else if (reply->type != REDIS_REPLY_STATUS) {
        res.rc = NGX_HTTP_CAST_FAILED;
    }

    done = call->done;
    data = call->data;

    ngx_free(call);

    if (done) {
        done(data, &res);
    }
}


static const char *
ngx_http_cast_rstore_health(ngx_http_cast_store_t *store)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    return (ngx_http_cast_redis_ready(rs->cmd)
            && ngx_http_cast_redis_ready(rs->pubsub) && !rs->too_old)
           ? "connected" : "disconnected";
}


/*
 * Worker exit (the hub has released its records): what is queued goes
 * out before the connections close, so that a reload leaves no record
 * bound to a socket that is gone.
 */

static void
ngx_http_cast_rstore_exit(ngx_http_cast_store_t *store)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                    name[NGX_MAXHOSTNAMELEN + NGX_INT64_LEN + 2];
    u_char                   *who;
    ngx_queue_t              *q;
    ngx_rbtree_node_t        *node;
    ngx_http_cast_cached_t   *cached;
    ngx_http_cast_channel_t  *ch;

    ngx_http_cast_event_cancel(&rs->report_ev);
    ngx_http_cast_event_cancel(&rs->sweep_ev);

    if (ngx_http_cast_redis_ready(rs->cmd)) {
        who = ngx_sprintf(name, "%V:%P", &ngx_cycle->hostname, ngx_pid);

        (void) ngx_http_cast_redis_commandf(rs->cmd, NULL, NULL,
                                            "HDEL cast:stats %b", name,
                                            (size_t) (who - name));
    }

    ngx_http_cast_redis_flush(rs->cmd, NGX_HTTP_CAST_EXIT_FLUSH);

    ngx_http_cast_redis_destroy(rs->pubsub);
    ngx_http_cast_redis_destroy(rs->cmd);

    while (rs->channels.root != rs->channels.sentinel) {
        node = ngx_rbtree_min(rs->channels.root, rs->channels.sentinel);
        ch = (ngx_http_cast_channel_t *) node;

        while (!ngx_queue_empty(&ch->held)) {
            q = ngx_queue_head(&ch->held);
            ngx_queue_remove(q);
            ngx_free(ngx_queue_data(q, ngx_http_cast_held_t, queue));
        }

        ngx_rbtree_delete(&rs->channels, node);
        ngx_free(ch);
    }

    while (!ngx_queue_empty(&rs->unbinds)) {
        q = ngx_queue_head(&rs->unbinds);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_cast_unbind_t, queue));
    }

    while (!ngx_queue_empty(&rs->cache_lru)) {
        q = ngx_queue_head(&rs->cache_lru);
        cached = ngx_queue_data(q, ngx_http_cast_cached_t, lru);
        ngx_queue_remove(q);
        ngx_rbtree_delete(&rs->cache, &cached->sn.node);
        json_decref(cached->state);
        ngx_free(cached);
    }
}


/* the command connection: the version first, scripts before any use */

static void
ngx_http_cast_rstore_cmd_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data)
{
    ngx_uint_t  i;

    if (!connected) {
        return;
    }

    (void) ngx_http_cast_redis_commandf(rds, ngx_http_cast_rstore_version,
                                        data, "INFO server");

    for (i = 0; i < NGX_HTTP_CAST_SCRIPT_LAST; i++) {
        (void) ngx_http_cast_redis_commandf(rds, ngx_http_cast_rstore_logged,
                                            data, "SCRIPT LOAD %s",
                                            ngx_http_cast_scripts[i].text);
    }

    /* the pub/sub connection may have come back first */
    ngx_http_cast_rstore_catch_up_all(data);

    ngx_http_cast_rstore_unbind(data);
    ngx_http_cast_rstore_check_epoch(data);

    /* every worker is in the status from the start */
    ngx_http_cast_rstore_report(&((ngx_http_cast_rstore_t *) data)->report_ev);
}


/*
 * Four times a second: the records whose time is up end, here or on another
 * worker (one takes each), as a timer would end them in local mode.
 */

static void
ngx_http_cast_rstore_sweep(ngx_event_t *ev)
{
    ngx_http_cast_rstore_t *rs = ev->data;

    u_char                 nbuf[2][NGX_INT64_LEN];
    int64_t                now;
    ngx_http_cast_rargs_t  keys, args;

    /*
     * A quitting worker starts nothing new (the others sweep): commands
     * it sends delay its exit until they are answered.
     */

    if (ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_CAST_SWEEP);

    /* and whether Redis lost its data meanwhile */
    ngx_http_cast_rstore_check_epoch(rs);

    now = ngx_http_cast_now_ms();

    keys.argc = 0;
    ngx_http_cast_rargs_literal(&keys, "cast:subs");
    ngx_http_cast_rargs_literal(&keys, "cast:topics");
    ngx_http_cast_rargs_literal(&keys, NGX_HTTP_CAST_CTL_LOG);

    args.argc = 0;
    ngx_http_cast_rargs_num(&args, nbuf[0], now);
    ngx_http_cast_rargs_add(&args, NGX_HTTP_CAST_SWEEP_MAX,
                            sizeof(NGX_HTTP_CAST_SWEEP_MAX) - 1);
    ngx_http_cast_rargs_num(&args, nbuf[1], now - NGX_HTTP_CAST_LOG_KEEP);

    (void) ngx_http_cast_rstore_eval(rs, NGX_HTTP_CAST_SCRIPT_SWEEP, &keys,
                                     &args, NULL, ngx_http_cast_rstore_swept,
                                     rs);
}


/* {id, topic, bound, reason, ...} */

static void
ngx_http_cast_rstore_swept(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply              *reply = r;
    ngx_http_cast_rstore_t  *rs = privdata;

    size_t       i, k;
    ngx_str_t    f[4];
    ngx_uint_t   bound;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || rs->store.hooks.ended == NULL)
    {
        return;
    }

    for (i = 0; i + 4 <= reply->elements; i += 4) {
        for (k = 0; k < 4; k++) {
            if (reply->element[i + k]->type != REDIS_REPLY_STRING) {
                return;
            }

            f[k].data = (u_char *) reply->element[i + k]->str;
            f[k].len = reply->element[i + k]->len;
        }

        bound = (f[2].len == 1 && f[2].data[0] == '1');

        rs->store.hooks.ended(rs->store.hooks.hub, &f[0], &f[1], &f[3],
                              bound);
    }
}


/* worker exit: the record of a socket closed here may be bound again */

static void
ngx_http_cast_rstore_unbind_one(ngx_http_cast_store_t *store, ngx_str_t *id)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                 kbuf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    ngx_http_cast_rargs_t  keys, args;

    keys.argc = 0;
    ngx_http_cast_rargs_key(&keys, kbuf, "cast:sub:{", id, "}");

    args.argc = 0;
    ngx_http_cast_rargs_literal(&args, "");

    (void) ngx_http_cast_rstore_eval(rs, NGX_HTTP_CAST_SCRIPT_UNBIND, &keys,
                                     &args, NULL,
                                     ngx_http_cast_rstore_logged, rs);
}


/* the binds whose answers were lost are undone */

static void
ngx_http_cast_rstore_unbind(ngx_http_cast_rstore_t *rs)
{
    u_char                   kbuf[NGX_HTTP_CAST_MAX_TOPIC + 32];
    ngx_str_t                id, nonce;
    ngx_queue_t             *q;
    ngx_http_cast_rargs_t    keys, args;
    ngx_http_cast_unbind_t  *unbind;

    while (!ngx_queue_empty(&rs->unbinds)
           && ngx_http_cast_redis_ready(rs->cmd))
    {
        q = ngx_queue_head(&rs->unbinds);
        unbind = ngx_queue_data(q, ngx_http_cast_unbind_t, queue);

        id.data = unbind->id;
        id.len = NGX_HTTP_CAST_ID_LEN;
        nonce.data = unbind->nonce;
        nonce.len = NGX_HTTP_CAST_NONCE_LEN;

        keys.argc = 0;
        ngx_http_cast_rargs_key(&keys, kbuf, "cast:sub:{", &id, "}");

        args.argc = 0;
        ngx_http_cast_rargs_str(&args, &nonce);

        if (ngx_http_cast_rstore_eval(rs, NGX_HTTP_CAST_SCRIPT_UNBIND, &keys,
                                      &args, NULL,
                                      ngx_http_cast_rstore_logged, rs)
            != NGX_OK)
        {
            return;
        }

        ngx_queue_remove(q);
        ngx_free(unbind);
    }
}


/*
 * Redis restarted empty, or was flushed: the records of this worker's
 * sockets are written again, so that unsubscribe and reset reach them.
 */

static void
ngx_http_cast_rstore_check_epoch(ngx_http_cast_rstore_t *rs)
{
    u_char                 random[NGX_HTTP_CAST_NONCE_LEN / 2];
    ngx_http_cast_rargs_t  keys, args;

    /*
     * A new candidate each time: the worker that set the last epoch must
     * not set the same one again after Redis lost it.
     */

    if (ngx_http_cast_random(random, sizeof(random)) != NGX_OK) {
        return;
    }

    (void) ngx_hex_dump(rs->candidate, random, sizeof(random));

    keys.argc = 0;
    ngx_http_cast_rargs_literal(&keys, "cast:epoch");

    args.argc = 0;
    ngx_http_cast_rargs_add(&args, rs->candidate, NGX_HTTP_CAST_NONCE_LEN);

    (void) ngx_http_cast_rstore_eval(rs, NGX_HTTP_CAST_SCRIPT_EPOCH, &keys,
                                     &args, NULL, ngx_http_cast_rstore_epoch,
                                     rs);
}


static void
ngx_http_cast_rstore_epoch(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply              *reply = r;
    ngx_http_cast_rstore_t  *rs = privdata;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING
        || reply->len != NGX_HTTP_CAST_NONCE_LEN)
    {
        return;
    }

    if (rs->have_epoch
        && ngx_strncmp(rs->epoch, reply->str, NGX_HTTP_CAST_NONCE_LEN) != 0
        && rs->store.hooks.bound)
    {
        rs->store.hooks.bound(rs->store.hooks.hub,
                              ngx_http_cast_rstore_restore, rs);
    }

    ngx_memcpy(rs->epoch, reply->str, NGX_HTTP_CAST_NONCE_LEN);
    rs->have_epoch = 1;
}


/* streams with MINID and exclusive ranges: Redis 6.2 or later */

static void
ngx_http_cast_rstore_version(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply              *reply = r;
    ngx_http_cast_rstore_t  *rs = privdata;

    u_char      *p, *last, *v, *version;
    ngx_int_t    major, minor;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        return;
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    p = ngx_strlcasestrn(p, last, (u_char *) "redis_version:",
                         sizeof("redis_version:") - 2);
    if (p == NULL) {
        return;
    }

    p += sizeof("redis_version:") - 1;
    v = p;
    version = p;

    while (p < last && *p != '\r' && *p != '\n') {
        p++;
    }

    last = p;
    p = ngx_strlchr(v, last, '.');

    major = p ? ngx_atoi(v, p - v) : NGX_ERROR;
    minor = NGX_ERROR;

    if (p) {
        v = ++p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        minor = ngx_atoi(v, p - v);
    }

    rs->too_old = (major == NGX_ERROR || minor == NGX_ERROR
                   || major < 6 || (major == 6 && minor < 2));

    if (rs->too_old) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "cast: redis at %V is version %*s; 6.2 or later is "
                      "required: requests are refused with 503",
                      ngx_http_cast_redis_addr(rs->cmd),
                      (size_t) (last - version), version);
    }
}


static void
ngx_http_cast_rstore_logged(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply              *reply = r;
    ngx_http_cast_rstore_t  *rs = privdata;

    if (reply && reply->type == REDIS_REPLY_ERROR && rs) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0, "cast: redis: %*s",
                      reply->len, reply->str);
    }
}


static void
ngx_http_cast_rstore_changed(ngx_http_cast_store_t *store)
{
    ngx_http_cast_rstore_report_soon((ngx_http_cast_rstore_t *) store);
}


/* counters changed (deliveries, sockets): reported in this loop turn */

static void
ngx_http_cast_rstore_report_soon(ngx_http_cast_rstore_t *rs)
{
    /*
     * At the end of this turn of the event loop, once for all it did:
     * the report is in Redis before a client could ask for the status.
     */

    if (!rs->report_ev.posted) {
        ngx_post_event(&rs->report_ev, &ngx_posted_events);
    }
}


/* every 2 s: "<ms> <json>" under "<host>:<pid>" in cast:stats */

static void
ngx_http_cast_rstore_report(ngx_event_t *ev)
{
    ngx_http_cast_rstore_t *rs = ev->data;

    u_char   *p, *who, name[NGX_MAXHOSTNAMELEN + NGX_INT64_LEN + 2];
    json_t   *worker;
    size_t    len, size;

    /* a quitting worker's report goes at exit (HDEL) */

    if (ngx_exiting) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_CAST_REPORT);

    if (!ngx_http_cast_redis_ready(rs->cmd)
        || rs->store.hooks.counters == NULL)
    {
        return;
    }

    worker = rs->store.hooks.counters(rs->store.hooks.hub);
    if (worker == NULL) {
        return;
    }

    size = json_dumpb(worker, NULL, 0, JSON_COMPACT);

    p = ngx_alloc(NGX_INT64_LEN + 1 + size, ev->log);
    if (p == NULL) {
        json_decref(worker);
        return;
    }

    len = ngx_sprintf(p, "%L ", ngx_http_cast_now_ms()) - p;
    len += json_dumpb(worker, (char *) p + len, size, JSON_COMPACT);

    /* hiredis formats the command: nginx's %V and %P are not for it */

    who = ngx_sprintf(name, "%V:%P", &ngx_cycle->hostname, ngx_pid);

    (void) ngx_http_cast_redis_commandf(rs->cmd, ngx_http_cast_rstore_logged,
                                        rs, "HSET cast:stats %b %b",
                                        name, (size_t) (who - name), p, len);
    ngx_free(p);
    json_decref(worker);
}


/*
 * The pub/sub connection: every channel again; after a loss, what was
 * missed meanwhile is read from the logs.
 */

static void
ngx_http_cast_rstore_pubsub_state(ngx_http_cast_redis_t *rds,
    ngx_uint_t connected, void *data)
{
    ngx_http_cast_rstore_t *rs = data;

    ngx_rbtree_node_t        *node, *root, *sentinel;
    ngx_http_cast_channel_t  *ch;

    root = rs->channels.root;
    sentinel = rs->channels.sentinel;

    if (!connected) {
        if (rs->lost_at == 0) {
            rs->lost_at = ngx_http_cast_now_ms();
        }

        for (node = (root != sentinel) ? ngx_rbtree_min(root, sentinel)
                                       : NULL;
             node;
             node = ngx_rbtree_next(&rs->channels, node))
        {
            ((ngx_http_cast_channel_t *) node)->subscribed = 0;
        }

        return;
    }

    /*
     * Each channel is held from now on, until its log was read from
     * where it stopped: once its SUBSCRIBE is confirmed (then nothing
     * falls between the log and the channel), the control channel first.
     */

    for (node = (root != sentinel) ? ngx_rbtree_min(root, sentinel) : NULL;
         node;
         node = ngx_rbtree_next(&rs->channels, node))
    {
        ch = (ngx_http_cast_channel_t *) node;

        ch->catching = 1;
        ch->asked = 0;

        ngx_http_cast_rstore_subscribe(rs, ch);
    }

    if (rs->wildcard) {
        (void) ngx_http_cast_redis_commandf(rds, ngx_http_cast_rstore_message,
                                            rs, "PSUBSCRIBE %s",
                                            NGX_HTTP_CAST_EV_PATTERN);
    }

    ngx_http_cast_rstore_notes(rs);

    rs->lost_at = 0;
}


static void
ngx_http_cast_rstore_subscribe(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch)
{
    (void) ngx_http_cast_redis_commandf(rs->pubsub,
                                        ngx_http_cast_rstore_message, rs,
                                        "SUBSCRIBE %b", ch->sn.str.data,
                                        ch->sn.str.len);
}


/* every message of the pub/sub connection */

static void
ngx_http_cast_rstore_message(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply              *reply = r;
    ngx_http_cast_rstore_t  *rs = privdata;

    size_t                    prefix;
    ngx_str_t                 name;
    redisReply               *kind, *channel, *payload;
    ngx_http_cast_channel_t  *ch;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 3)
    {
        return;
    }

    kind = reply->element[0];

    if (kind->type != REDIS_REPLY_STRING) {
        return;
    }

    prefix = sizeof(NGX_HTTP_CAST_EV_PREFIX) - 1;

    if (kind->len == 9 && ngx_strncmp(kind->str, "subscribe", 9) == 0
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        name.data = (u_char *) reply->element[1]->str;
        name.len = reply->element[1]->len;

        ch = (ngx_http_cast_channel_t *)
                 ngx_str_rbtree_lookup(&rs->channels, &name,
                                       ngx_crc32_long(name.data, name.len));
        if (ch) {
            ch->subscribed = 1;
            ngx_http_cast_rstore_catch_up_all(rs);
        }

        return;
    }

    if (kind->len == 8 && ngx_strncmp(kind->str, "pmessage", 8) == 0
        && reply->elements == 4)
    {
        /* "*" sockets: no catch-up, at most once */

        channel = reply->element[2];
        payload = reply->element[3];

        if (channel->type != REDIS_REPLY_STRING
            || payload->type != REDIS_REPLY_STRING || channel->len <= prefix)
        {
            return;
        }

        name.data = (u_char *) channel->str;
        name.len = channel->len;

        ch = (ngx_http_cast_channel_t *)
                 ngx_str_rbtree_lookup(&rs->channels, &name,
                                       ngx_crc32_long(name.data, name.len));

        ngx_http_cast_rstore_deliver(rs, ch, &name, (u_char *) payload->str,
                                     payload->len,
                                     NGX_HTTP_CAST_DELIVER_WILDCARD);
        return;
    }

    if (kind->len != 7 || ngx_strncmp(kind->str, "message", 7) != 0) {
        return;
    }

    channel = reply->element[1];
    payload = reply->element[2];

    if (channel->type != REDIS_REPLY_STRING
        || payload->type != REDIS_REPLY_STRING)
    {
        return;
    }

    name.data = (u_char *) channel->str;
    name.len = channel->len;

    ch = (ngx_http_cast_channel_t *)
             ngx_str_rbtree_lookup(&rs->channels, &name,
                                   ngx_crc32_long(name.data, name.len));
    if (ch == NULL) {
        return;
    }

    ngx_http_cast_rstore_receive(rs, ch, (u_char *) payload->str,
                                 payload->len);
}


/* a message of a channel: held while the channel catches up */

static void
ngx_http_cast_rstore_receive(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch, u_char *p, size_t len)
{
    ngx_http_cast_held_t  *held;

    if (!ch->catching) {
        ngx_http_cast_rstore_deliver(rs, ch, &ch->sn.str, p, len,
                                     NGX_HTTP_CAST_DELIVER_TOPIC);
        return;
    }

    if (ch->nheld == NGX_HTTP_CAST_MAX_HELD) {
        ngx_log_error(NGX_LOG_WARN, rs->log, 0,
                      "cast: too many messages on \"%V\" while catching "
                      "up, one was dropped", &ch->sn.str);
        return;
    }

    held = ngx_alloc(sizeof(ngx_http_cast_held_t) + len, rs->log);
    if (held == NULL) {
        return;
    }

    held->len = len;
    ngx_memcpy(held->data, p, len);
    ngx_queue_insert_tail(&ch->held, &held->queue);
    ch->nheld++;
}


/*
 * "<stream id> <text>": once per channel (a catch-up and the live
 * channel may both bring it).  Topic channels: "<n>:<name><json>";
 * control: "end <id> <reason>" or
 * "renew <id> <expires> <lease> <grant> <events>".
 */

static void
ngx_http_cast_rstore_deliver(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch, ngx_str_t *channel, u_char *p, size_t len,
    ngx_uint_t which)
{
    ngx_str_t                 topic, none;
    ngx_http_cast_wire_t      w;
    ngx_http_cast_record_t    record;
    ngx_http_cast_message_t   m;

    if (ngx_http_cast_wire_split(p, len, &w) != NGX_OK) {
        goto invalid;
    }

    if (ch && which == NGX_HTTP_CAST_DELIVER_TOPIC) {
        if (w.ms < ch->last_ms
            || (w.ms == ch->last_ms && w.seq <= ch->last_seq))
        {
            return;
        }

        ch->last_ms = w.ms;
        ch->last_seq = w.seq;

        if (ch->control) {
            if (ngx_http_cast_wire_control(&w.text, &m) != NGX_OK) {
                goto invalid;
            }

            if (m.kind == NGX_HTTP_CAST_WIRE_END) {
                ngx_str_null(&none);
                rs->store.hooks.ended(rs->store.hooks.hub, &m.id, &none,
                                      &m.reason, 1);

            } else {
                ngx_memzero(&record, sizeof(ngx_http_cast_record_t));
                record.id = m.id;
                record.expires = m.expires;
                record.lease = m.lease;
                record.events = m.events;
                record.auth = m.auth;           /* cast_auth */
                record.writable = m.writable;

                rs->store.hooks.renewed(rs->store.hooks.hub, &record);
            }

            ngx_http_cast_rstore_report_soon(rs);
            return;
        }
    }

    if (ngx_http_cast_wire_event(&w.text, &m) != NGX_OK
        || channel->len <= sizeof(NGX_HTTP_CAST_EV_PREFIX) - 1)
    {
        goto invalid;
    }

    topic.data = channel->data + sizeof(NGX_HTTP_CAST_EV_PREFIX) - 1;
    topic.len = channel->len - (sizeof(NGX_HTTP_CAST_EV_PREFIX) - 1);

    rs->store.hooks.event(rs->store.hooks.hub, &topic, &m.name, &m.json,
                          which);
    ngx_http_cast_rstore_report_soon(rs);
    return;

invalid:

    ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                  "cast: invalid message from redis: \"%*s\"",
                  ngx_min(len, 64), p);
}


/* the channels that wait for a catch-up, once commands can be sent */

static void
ngx_http_cast_rstore_catch_up_all(ngx_http_cast_rstore_t *rs)
{
    ngx_rbtree_node_t        *node, *root, *sentinel;
    ngx_http_cast_channel_t  *ch;

    ngx_str_t                 name;
    ngx_http_cast_channel_t  *ctl;

    root = rs->channels.root;
    sentinel = rs->channels.sentinel;

    if (root == sentinel || !ngx_http_cast_redis_ready(rs->cmd)) {
        return;
    }

    /* unsubscribes and resets before the events that followed them */

    ngx_str_set(&name, NGX_HTTP_CAST_CTL_CHANNEL);
    ctl = (ngx_http_cast_channel_t *)
              ngx_str_rbtree_lookup(&rs->channels, &name,
                                    ngx_crc32_long(name.data, name.len));

    if (ctl && ctl->catching) {
        if (ctl->subscribed && !ctl->asked) {
            ngx_http_cast_rstore_catch_up(rs, ctl);
        }

        return;
    }

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&rs->channels, node))
    {
        ch = (ngx_http_cast_channel_t *) node;

        if (ch->catching && ch->subscribed && !ch->asked) {
            ngx_http_cast_rstore_catch_up(rs, ch);
        }
    }
}


/*
 * What a channel missed while the pub/sub connection was down: from the
 * last id it delivered, or from when it began to listen.
 */

static void
ngx_http_cast_rstore_catch_up(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_channel_t *ch)
{
    u_char                  start[2 * NGX_INT64_LEN + 2];
    u_char                  key[NGX_HTTP_CAST_MAX_TOPIC + 32];
    size_t                  start_len, key_len, prefix;
    ngx_http_cast_rcall_t  *call;

    prefix = sizeof(NGX_HTTP_CAST_EV_PREFIX) - 1;

    if (ch->control) {
        key_len = ngx_sprintf(key, NGX_HTTP_CAST_CTL_LOG) - key;

    } else {
        key_len = ngx_sprintf(key, "cast:{%*s}:log", ch->sn.str.len - prefix,
                              ch->sn.str.data + prefix)
                  - key;
    }

    if (ch->last_ms || ch->last_seq) {
        start_len = ngx_sprintf(start, "(%uL-%uL", ch->last_ms, ch->last_seq)
                    - start;

    } else {
        start_len = ngx_sprintf(start, "%L",
                                ngx_max(ch->since
                                        - (ch->fresh
                                           ? 0 : NGX_HTTP_CAST_CATCHUP_EARLY),
                                        0))
                    - start;
    }

    /* the call carries the channel's name: it may go meanwhile */

    call = ngx_http_cast_rstore_call(rs, NULL, NULL, &ch->sn.str, NULL);
    if (call == NULL) {
        return;
    }

    if (ngx_http_cast_redis_commandf(rs->cmd, ngx_http_cast_rstore_missed,
                                     call, "XRANGE %b %b + COUNT "
                                     NGX_HTTP_CAST_CATCHUP_MAX,
                                     key, key_len, start, start_len)
        != NGX_OK)
    {
        /* tried again when the command connection is back */
        ngx_free(call);
        return;
    }

    ch->asked = 1;
}


static void
ngx_http_cast_rstore_missed(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    u_char                   *p, buf[65536];
    size_t                    i, k, len;
    ngx_str_t                 name, json, text, sid;
    ngx_queue_t              *q;
    redisReply               *entry, *id, *fields;
    ngx_http_cast_held_t     *held;
    ngx_http_cast_rstore_t   *rs;
    ngx_http_cast_channel_t  *ch;

    rs = call->rs;

    ch = (ngx_http_cast_channel_t *)
             ngx_str_rbtree_lookup(&rs->channels, &call->topic,
                                   ngx_crc32_long(call->topic.data,
                                                  call->topic.len));
    ngx_free(call);

    if (ch == NULL) {
        return;
    }

    ch->asked = 0;

    if (reply == NULL) {
        /* the command connection went: asked again when it is back */
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                      "cast: no catch-up on \"%V\": what was published "
                      "meanwhile is lost here", &ch->sn.str);
        reply = NULL;
    }

    for (i = 0; reply && i < reply->elements; i++) {
        entry = reply->element[i];

        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) {
            continue;
        }

        id = entry->element[0];
        fields = entry->element[1];

        if (id->type != REDIS_REPLY_STRING
            || fields->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        ngx_str_null(&name);
        ngx_str_null(&json);
        ngx_str_null(&text);

        for (k = 0; k + 1 < fields->elements; k += 2) {
            if (fields->element[k]->type != REDIS_REPLY_STRING
                || fields->element[k]->len != 1)
            {
                continue;
            }

            switch (fields->element[k]->str[0]) {
            case 'n':
                name.data = (u_char *) fields->element[k + 1]->str;
                name.len = fields->element[k + 1]->len;
                break;
            case 'j':
                json.data = (u_char *) fields->element[k + 1]->str;
                json.len = fields->element[k + 1]->len;
                break;
            case 'm':
                text.data = (u_char *) fields->element[k + 1]->str;
                text.len = fields->element[k + 1]->len;
                break;
            }
        }

        /* the live payload's shape, so that one parser reads both */

        p = NULL;

        if (ch->control) {
            len = id->len + 1 + text.len;

        } else {
            len = id->len + 1 + NGX_INT_T_LEN + 1 + name.len + json.len;
        }

        p = (len <= sizeof(buf)) ? buf : ngx_alloc(len, rs->log);
        if (p == NULL) {
            continue;
        }

        sid.data = (u_char *) id->str;
        sid.len = id->len;

        if (ch->control) {
            len = ngx_sprintf(p, "%V %V", &sid, &text) - p;

        } else {
            len = ngx_http_cast_wire_format_event(p, &sid, &name, &json) - p;
        }

        ngx_http_cast_rstore_deliver(rs, ch, &ch->sn.str, p, len,
                                     NGX_HTTP_CAST_DELIVER_TOPIC);

        if (p != buf) {
            ngx_free(p);
        }
    }

    /* then what came live meanwhile, less what the log had */

    ch->catching = 0;

    while (!ngx_queue_empty(&ch->held)) {
        q = ngx_queue_head(&ch->held);
        ngx_queue_remove(q);
        ch->nheld--;

        held = ngx_queue_data(q, ngx_http_cast_held_t, queue);
        ngx_http_cast_rstore_deliver(rs, ch, &ch->sn.str, held->data,
                                     held->len, NGX_HTTP_CAST_DELIVER_TOPIC);
        ngx_free(held);
    }

    ch->fresh = 0;

    /* the control channel first: the topics' turn */
    if (ch->control) {
        ngx_http_cast_rstore_catch_up_all(rs);
    }
}


static ngx_http_cast_channel_t *
ngx_http_cast_rstore_channel(ngx_http_cast_rstore_t *rs, ngx_str_t *name)
{
    uint32_t                  hash;
    ngx_http_cast_channel_t  *ch;

    hash = ngx_crc32_long(name->data, name->len);

    ch = (ngx_http_cast_channel_t *)
             ngx_str_rbtree_lookup(&rs->channels, name, hash);
    if (ch) {
        return ch;
    }

    ch = ngx_alloc(sizeof(ngx_http_cast_channel_t) + name->len, rs->log);
    if (ch == NULL) {
        return NULL;
    }

    ngx_memzero(ch, sizeof(ngx_http_cast_channel_t));
    ngx_memcpy(ch->name, name->data, name->len);

    ch->sn.str.data = ch->name;
    ch->sn.str.len = name->len;
    ch->sn.node.key = hash;
    ch->since = ngx_http_cast_now_ms();
    ngx_queue_init(&ch->held);

    ngx_rbtree_insert(&rs->channels, &ch->sn.node);

    return ch;
}


/* as the local store says it */

static void
ngx_http_cast_rstore_full(ngx_http_cast_rstore_t *rs, long long n,
    ngx_str_t *topic)
{
    ngx_log_error(NGX_LOG_INFO, rs->log, 0,
                  "cast: %L topics are stored, the cast_max_topics limit: "
                  "\"%V\" is refused", (int64_t) n, topic);
}


/* {"subs", n} or {"topic", n}: a subscription past a limit */

static ngx_uint_t
ngx_http_cast_rstore_limit(ngx_http_cast_rstore_t *rs, redisReply *reply,
    ngx_str_t *topic)
{
    redisReply  *what, *n;

    if (reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_HTTP_CAST_FAILED;
    }

    what = reply->element[0];
    n = reply->element[1];

    if (what->len == 4 && ngx_strncmp(what->str, "subs", 4) == 0) {
        ngx_log_error(NGX_LOG_INFO, rs->log, 0,
                      "cast: %L subscriptions are held, the "
                      "cast_max_subscriptions limit: a subscription on "
                      "\"%V\" is refused", (int64_t) n->integer, topic);
        return NGX_HTTP_CAST_SUBS_FULL;
    }

    if (what->len == 5 && ngx_strncmp(what->str, "topic", 5) == 0) {
        ngx_log_error(NGX_LOG_INFO, rs->log, 0,
                      "cast: topic \"%V\" has %L subscriptions, the "
                      "cast_max_subscriptions_per_topic limit: one more is "
                      "refused", topic, (int64_t) n->integer);
        return NGX_HTTP_CAST_TOPIC_FULL;
    }

    return NGX_HTTP_CAST_FAILED;
}


static void
ngx_http_cast_rstore_failed_call(ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_result_t  res;

    if (done) {
        ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
        res.rc = NGX_HTTP_CAST_FAILED;
        done(data, &res);
    }
}


/* a call record: the caller's callback, and copies of what it needs */

static ngx_http_cast_rcall_t *
ngx_http_cast_rstore_call(ngx_http_cast_rstore_t *rs,
    ngx_http_cast_done_pt done, void *data, ngx_str_t *topic,
    ngx_str_t *reason)
{
    size_t                   tlen, rlen;
    ngx_http_cast_rcall_t   *call;
    ngx_http_cast_result_t   res;

    tlen = topic ? topic->len : 0;
    rlen = reason ? reason->len : 0;

    call = ngx_calloc(sizeof(ngx_http_cast_rcall_t) + tlen + rlen, rs->log);

    if (call == NULL) {
        if (done) {
            ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
            res.rc = NGX_HTTP_CAST_FAILED;
            done(data, &res);
        }

        return NULL;
    }

    call->rs = rs;
    call->done = done;
    call->data = data;

    call->topic.data = call->buf;
    call->topic.len = tlen;

    if (tlen) {
        ngx_memcpy(call->buf, topic->data, tlen);
    }

    call->reason.data = call->buf + tlen;
    call->reason.len = rlen;

    if (rlen) {
        ngx_memcpy(call->buf + tlen, reason->data, rlen);
    }

    return call;
}


/* the caller hears the result, and the call is freed */

static void
ngx_http_cast_rstore_finish(ngx_http_cast_rcall_t *call, ngx_uint_t rc,
    ngx_http_cast_record_t *record, ngx_uint_t removed, json_t *json)
{
    ngx_http_cast_rstore_answer(call, rc, record, removed, json);

    ngx_free(call);
}


static void
ngx_http_cast_rstore_answer(ngx_http_cast_rcall_t *call, ngx_uint_t rc,
    ngx_http_cast_record_t *record, ngx_uint_t removed, json_t *json)
{
    ngx_http_cast_done_pt    done;
    ngx_http_cast_result_t   res;

    done = call->done;
    call->done = NULL;

    if (done) {
        res.rc = rc;
        res.record = record;
        res.removed = removed;
        res.again = call->again;
        res.json = json;

        done(call->data, &res);
    }
}


/* a reply: NULL (connection lost) or an error is UNAVAILABLE, logged */

static ngx_uint_t
ngx_http_cast_rstore_failed(ngx_http_cast_rstore_t *rs, redisReply *reply)
{
    ngx_uint_t  i;

    if (reply == NULL) {
        return NGX_HTTP_CAST_UNAVAILABLE;
    }

    if (reply->type != REDIS_REPLY_ERROR) {
        return NGX_HTTP_CAST_DONE;
    }

    ngx_log_error(NGX_LOG_ERR, rs->log, 0,
                  "cast: redis answered an error: %*s", reply->len,
                  reply->str);

    /* scripts flushed (SCRIPT FLUSH, a failover): loaded again */

    if (reply->len >= 8 && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        for (i = 0; i < NGX_HTTP_CAST_SCRIPT_LAST; i++) {
            (void) ngx_http_cast_redis_commandf(rs->cmd,
                                                ngx_http_cast_rstore_logged,
                                                rs, "SCRIPT LOAD %s",
                                                ngx_http_cast_scripts[i].text);
        }
    }

    return NGX_HTTP_CAST_UNAVAILABLE;
}


/* a call's command; out of reach: UNAVAILABLE at once */

static void
ngx_http_cast_rstore_ask(ngx_http_cast_rcall_t *call, redisCallbackFn *fn,
    const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    rc = NGX_ERROR;

    if (!call->rs->too_old) {
        va_start(args, fmt);
        rc = ngx_http_cast_redis_vcommandf(call->rs->cmd, fn, call, fmt,
                                           args);
        va_end(args);
    }

    if (rc != NGX_OK) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_UNAVAILABLE, NULL, 0,
                                    NULL);
    }
}


/* a call's script; out of reach: UNAVAILABLE at once */

static void
ngx_http_cast_rstore_send(ngx_http_cast_rcall_t *call, ngx_uint_t script,
    ngx_http_cast_rargs_t *keys, ngx_http_cast_rargs_t *args,
    ngx_http_cast_rargs_t *more, redisCallbackFn *fn)
{
    if (ngx_http_cast_rstore_eval(call->rs, script, keys, args, more, fn,
                                  call)
        != NGX_OK)
    {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_UNAVAILABLE, NULL, 0,
                                    NULL);
    }
}


static ngx_int_t
ngx_http_cast_rstore_eval(ngx_http_cast_rstore_t *rs, ngx_uint_t script,
    ngx_http_cast_rargs_t *keys, ngx_http_cast_rargs_t *args,
    ngx_http_cast_rargs_t *more, redisCallbackFn *fn, void *privdata)
{
    u_char                 nkeys[NGX_INT_T_LEN];
    int                    i;
    ngx_http_cast_rargs_t  all;

    if (rs->too_old || !ngx_http_cast_redis_ready(rs->cmd)) {
        return NGX_ERROR;
    }

    all.argc = 0;
    ngx_http_cast_rargs_add(&all, "EVALSHA", 7);
    ngx_http_cast_rargs_add(&all, ngx_http_cast_scripts[script].sha, 40);
    ngx_http_cast_rargs_add(&all, nkeys,
                            ngx_sprintf(nkeys, "%d", keys->argc) - nkeys);

    for (i = 0; i < keys->argc; i++) {
        ngx_http_cast_rargs_add(&all, keys->argv[i], keys->argvlen[i]);
    }

    for (i = 0; i < args->argc; i++) {
        ngx_http_cast_rargs_add(&all, args->argv[i], args->argvlen[i]);
    }

    for (i = 0; more && i < more->argc; i++) {
        ngx_http_cast_rargs_add(&all, more->argv[i], more->argvlen[i]);
    }

    return ngx_http_cast_redis_command(rs->cmd, fn, privdata, all.argc,
                                       all.argv, all.argvlen);
}


static void
ngx_http_cast_rargs_add(ngx_http_cast_rargs_t *a, const void *p, size_t len)
{
    if (a->argc == NGX_HTTP_CAST_MAX_ARGS) {
        return;
    }

    a->argv[a->argc] = p;
    a->argvlen[a->argc] = len;
    a->argc++;
}


static void
ngx_http_cast_rargs_str(ngx_http_cast_rargs_t *a, ngx_str_t *s)
{
    ngx_http_cast_rargs_add(a, s->len ? (char *) s->data : "", s->len);
}


/* buf: at least NGX_HTTP_CAST_MAX_TOPIC + 32 bytes */

static void
ngx_http_cast_rargs_key(ngx_http_cast_rargs_t *a, u_char *buf,
    const char *prefix, ngx_str_t *name, const char *suffix)
{
    u_char  *p;

    p = ngx_slprintf(buf, buf + NGX_HTTP_CAST_MAX_TOPIC + 32, "%s%V%s",
                     prefix, name, suffix);

    ngx_http_cast_rargs_add(a, buf, p - buf);
}


static void
ngx_http_cast_rargs_num(ngx_http_cast_rargs_t *a, u_char *buf, int64_t n)
{
    ngx_http_cast_rargs_add(a, buf, ngx_sprintf(buf, "%L", n) - buf);
}


/* HGETALL's flat array into a record (strings in the reply) */

static ngx_int_t
ngx_http_cast_rstore_record(redisReply *reply, ngx_http_cast_record_t *rec)
{
    size_t       i, k;
    ngx_str_t    v;
    redisReply  *name, *value;

    static struct {
        ngx_str_t   name;
        size_t      offset;
    } fields[] = {
        { ngx_string("id"), offsetof(ngx_http_cast_record_t, id) },
        { ngx_string("topic"), offsetof(ngx_http_cast_record_t, topic) },
        { ngx_string("events"), offsetof(ngx_http_cast_record_t, events) },
        { ngx_string("endpoint"),
          offsetof(ngx_http_cast_record_t, endpoint) },
        { ngx_string("name"), offsetof(ngx_http_cast_record_t, name) },
        { ngx_string("callback"),
          offsetof(ngx_http_cast_record_t, callback) },
        { ngx_string("product_name"),
          offsetof(ngx_http_cast_record_t, product_name) },
        { ngx_string("product_version"),
          offsetof(ngx_http_cast_record_t, product_version) },
        { ngx_string("actors"), offsetof(ngx_http_cast_record_t, actors) },
        { ngx_string("client_info"),
          offsetof(ngx_http_cast_record_t, client_info) },
        { ngx_string("writable"),
          offsetof(ngx_http_cast_record_t, writable) },
        { ngx_string("latest"), offsetof(ngx_http_cast_record_t, latest) },
        { ngx_null_string, 0 }
    };

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2) {
        return NGX_ERROR;
    }

    ngx_memzero(rec, sizeof(ngx_http_cast_record_t));

    for (i = 0; i < reply->elements; i += 2) {
        name = reply->element[i];
        value = reply->element[i + 1];

        if (name->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            return NGX_ERROR;
        }

        v.data = (u_char *) value->str;
        v.len = value->len;

        for (k = 0; fields[k].name.len; k++) {
            if (fields[k].name.len == name->len
                && ngx_strncmp(fields[k].name.data, name->str, name->len)
                   == 0)
            {
                *(ngx_str_t *) ((u_char *) rec + fields[k].offset) = v;
                break;
            }
        }

        if (fields[k].name.len) {
            continue;
        }

        if (name->len == 7 && ngx_strncmp(name->str, "dialect", 7) == 0) {
            rec->dialect = (v.len == 1 && v.data[0] == '1')
                           ? NGX_HTTP_CAST_DIALECT_FHIRCAST
                           : NGX_HTTP_CAST_DIALECT_CAST;

        } else if (name->len == 5 && ngx_strncmp(name->str, "lease", 5) == 0)
        {
            rec->lease = ngx_atotm(v.data, v.len);

        } else if (name->len == 7
                   && ngx_strncmp(name->str, "expires", 7) == 0)
        {
            rec->expires = ngx_atoof(v.data, v.len);

        } else if (name->len == 7
                   && ngx_strncmp(name->str, "counted", 7) == 0)
        {
            rec->counted = (v.len == 1 && v.data[0] == '1');

        } else if (name->len == 4 && ngx_strncmp(name->str, "auth", 4) == 0)
        {
            rec->auth = (v.len == 1 && v.data[0] == '1');
        }
    }

    if (rec->topic.len == 0 || rec->events.len == 0
        || rec->lease == NGX_ERROR || rec->expires == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static json_t *
ngx_http_cast_rstore_parse_state(ngx_str_t *text)
{
    json_t  *state;

    if (text->len == 0) {
        return json_object();
    }

    state = json_loadb((char *) text->data, text->len, 0, NULL);

    if (!json_is_object(state)) {
        json_decref(state);
        return NULL;
    }

    return state;
}


/* the last state seen of a topic; the least recently used goes */

static void
ngx_http_cast_rstore_cache(ngx_http_cast_rstore_t *rs, ngx_str_t *topic,
    uint64_t version, json_t *state)
{
    ngx_queue_t             *q;
    ngx_http_cast_cached_t  *cached;

    cached = ngx_http_cast_rstore_cached(rs, topic);

    if (cached == NULL) {
        if (rs->ncache == NGX_HTTP_CAST_CACHE_MAX) {
            q = ngx_queue_last(&rs->cache_lru);
            cached = ngx_queue_data(q, ngx_http_cast_cached_t, lru);
            ngx_queue_remove(q);
            ngx_rbtree_delete(&rs->cache, &cached->sn.node);
            json_decref(cached->state);
            ngx_free(cached);
            rs->ncache--;
        }

        cached = ngx_alloc(sizeof(ngx_http_cast_cached_t) + topic->len,
                           rs->log);
        if (cached == NULL) {
            return;
        }

        ngx_memcpy(cached->name, topic->data, topic->len);
        cached->sn.str.data = cached->name;
        cached->sn.str.len = topic->len;
        cached->sn.node.key = ngx_crc32_long(topic->data, topic->len);
        cached->state = NULL;

        ngx_rbtree_insert(&rs->cache, &cached->sn.node);
        ngx_queue_insert_head(&rs->cache_lru, &cached->lru);
        rs->ncache++;
    }

    json_decref(cached->state);
    cached->state = json_incref(state);
    cached->version = version;
}


static ngx_http_cast_cached_t *
ngx_http_cast_rstore_cached(ngx_http_cast_rstore_t *rs, ngx_str_t *topic)
{
    ngx_http_cast_cached_t  *cached;

    cached = (ngx_http_cast_cached_t *)
                 ngx_str_rbtree_lookup(&rs->cache, topic,
                                       ngx_crc32_long(topic->data,
                                                      topic->len));
    if (cached) {
        ngx_queue_remove(&cached->lru);
        ngx_queue_insert_head(&rs->cache_lru, &cached->lru);
    }

    return cached;
}


/* the records of a topic and of "*", or of every topic */

static void
ngx_http_cast_rstore_records(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_uint_t max, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char                  kbuf[2][NGX_HTTP_CAST_MAX_TOPIC + 32];
    u_char                  nbuf[2][NGX_INT64_LEN];
    ngx_str_t               any;
    ngx_http_cast_rargs_t   keys, args;
    ngx_http_cast_rcall_t  *call;

    if (topic->len > NGX_HTTP_CAST_MAX_TOPIC) {
        ngx_http_cast_rstore_failed_call(done, data);
        return;
    }

    call = ngx_http_cast_rstore_call(rs, done, data, NULL, NULL);
    if (call == NULL) {
        return;
    }

    keys.argc = 0;

    if (topic->len == 0) {
        ngx_http_cast_rargs_literal(&keys, "cast:subs");

    } else {
        ngx_http_cast_rargs_key(&keys, kbuf[0], "cast:{", topic, "}:subs");

        if (!(topic->len == 1 && topic->data[0] == '*')) {
            ngx_str_set(&any, "*");
            ngx_http_cast_rargs_key(&keys, kbuf[1], "cast:{", &any,
                                    "}:subs");
        }
    }

    /* "topic" first: every record has it (records.lua) */

    args.argc = 0;
    ngx_http_cast_rargs_num(&args, nbuf[0], ngx_http_cast_now_ms());
    ngx_http_cast_rargs_num(&args, nbuf[1], (int64_t) max);
    ngx_http_cast_rargs_literal(&args, "topic");
    ngx_http_cast_rargs_literal(&args, "events");
    ngx_http_cast_rargs_literal(&args, "name");
    ngx_http_cast_rargs_literal(&args, "product_name");
    ngx_http_cast_rargs_literal(&args, "actors");
    ngx_http_cast_rargs_literal(&args, "client_info");
    ngx_http_cast_rargs_literal(&args, "bound");

    ngx_http_cast_rstore_send(call, NGX_HTTP_CAST_SCRIPT_RECORDS, &keys,
                              &args, NULL, ngx_http_cast_rstore_listed);
}


/* {id, topic, events, name, product_name, actors, client_info, bound} */

static void
ngx_http_cast_rstore_listed(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply             *reply = r;
    ngx_http_cast_rcall_t  *call = privdata;

    size_t       i, k;
    json_t      *out, *rec, *value;
    ngx_uint_t   rc;
    redisReply  *e;

    static const char  *names[] = {
        "id", "topic", "events", "name", "product_name", "actors",
        "client_info"
    };

#define NGX_HTTP_CAST_RECORD_VALUES  8

    rc = ngx_http_cast_rstore_failed(call->rs, reply);

    if (rc != NGX_HTTP_CAST_DONE || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_cast_rstore_finish(call,
                                    rc == NGX_HTTP_CAST_DONE
                                    ? NGX_HTTP_CAST_FAILED : rc,
                                    NULL, 0, NULL);
        return;
    }

    out = json_array();
    if (out == NULL) {
        ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_FAILED, NULL, 0,
                                    NULL);
        return;
    }

    for (i = 0; i + NGX_HTTP_CAST_RECORD_VALUES <= reply->elements;
         i += NGX_HTTP_CAST_RECORD_VALUES)
    {
        rec = json_object();
        if (rec == NULL) {
            break;
        }

        for (k = 0; k < NGX_HTTP_CAST_RECORD_VALUES - 1; k++) {
            e = reply->element[i + k];

            value = (e->type == REDIS_REPLY_STRING)
                    ? json_stringn(e->str, e->len) : json_string("");

            if (json_object_set_new(rec, names[k], value) != 0) {
                break;
            }
        }

        e = reply->element[i + k];

        if (k < NGX_HTTP_CAST_RECORD_VALUES - 1
            || json_object_set_new(rec, "bound",
                                   json_boolean(e->type == REDIS_REPLY_STRING
                                                && e->len == 1
                                                && e->str[0] == '1'))
               != 0)
        {
            json_decref(rec);
            continue;
        }

        (void) json_array_append_new(out, rec);
    }

#undef NGX_HTTP_CAST_RECORD_VALUES

    ngx_http_cast_rstore_finish(call, NGX_HTTP_CAST_DONE, NULL, 0, out);
    json_decref(out);
}


/* PUBLISH on the worker's channel, or on every worker's */

static void
ngx_http_cast_rstore_post(ngx_http_cast_store_t *store, ngx_str_t *to,
    ngx_str_t *text)
{
    ngx_http_cast_rstore_t *rs = (ngx_http_cast_rstore_t *) store;

    u_char     buf[sizeof(NGX_HTTP_CAST_NOTE_PREFIX) + NGX_HTTP_CAST_NONCE_LEN];
    ngx_str_t  channel;

    if (to->len > NGX_HTTP_CAST_NONCE_LEN) {
        return;
    }

    channel.data = buf;
    channel.len = to->len
                  ? (size_t) (ngx_sprintf(buf, NGX_HTTP_CAST_NOTE_PREFIX "%V",
                                          to)
                              - buf)
                  : (size_t) (ngx_cpymem(buf, NGX_HTTP_CAST_NOTE_ALL,
                                         sizeof(NGX_HTTP_CAST_NOTE_ALL) - 1)
                              - buf);

    if (rs->too_old
        || ngx_http_cast_redis_commandf(rs->cmd, ngx_http_cast_rstore_logged,
                                        rs, "PUBLISH %b %b", channel.data,
                                        channel.len, text->data, text->len)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, rs->log, 0,
                      "cast: a note to %s could not be sent: redis is out "
                      "of reach", to->len ? "a worker" : "every worker");
    }
}


/* the pub/sub connection (again): the two note channels */

static void
ngx_http_cast_rstore_notes(ngx_http_cast_rstore_t *rs)
{
    u_char  own[sizeof(NGX_HTTP_CAST_NOTE_PREFIX) + NGX_HTTP_CAST_NONCE_LEN];
    u_char *p;

    p = ngx_cpymem(own, NGX_HTTP_CAST_NOTE_PREFIX,
                   sizeof(NGX_HTTP_CAST_NOTE_PREFIX) - 1);
    p = ngx_cpymem(p, rs->address, NGX_HTTP_CAST_NONCE_LEN);

    (void) ngx_http_cast_redis_commandf(rs->pubsub,
                                        ngx_http_cast_rstore_note, rs,
                                        "SUBSCRIBE %s %b",
                                        NGX_HTTP_CAST_NOTE_ALL,
                                        own, (size_t) (p - own));
}


static void
ngx_http_cast_rstore_note(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply              *reply = r;
    ngx_http_cast_rstore_t  *rs = privdata;

    ngx_str_t    text;
    redisReply  *kind, *payload;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
    {
        return;
    }

    kind = reply->element[0];
    payload = reply->element[2];

    if (kind->type != REDIS_REPLY_STRING || kind->len != 7
        || ngx_strncmp(kind->str, "message", 7) != 0
        || payload->type != REDIS_REPLY_STRING
        || rs->store.hooks.posted == NULL)
    {
        return;
    }

    text.data = (u_char *) payload->str;
    text.len = payload->len;

    rs->store.hooks.posted(rs->store.hooks.hub, &text);
}


static int64_t
ngx_http_cast_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}
