
/*
 * ngx_http_cast_module: the local store (no cast_redis).
 *
 * Records and topic state in the worker's memory; every operation
 * completes at once.  Correct with one worker only, which `nginx -t`
 * enforces.  An unbound record ends when its bind timeout passes; a
 * bound one when the hub ends it (lease, socket close).
 *
 * A topic's state is kept as its JSON text, as Redis keeps it (a parsed
 * tree costs many times more), and parsed for the call that needs it.
 *
 * Bounds: cast_max_subscriptions records, cast_max_subscriptions_per_topic
 * on a topic; cast_max_context_total bytes of state text, and a state is
 * forgotten cast_context_ttl after its last change, as Redis expires it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_store.h"
#include "ngx_http_cast_store_local.h"


typedef struct ngx_http_cast_local_s        ngx_http_cast_local_t;
typedef struct ngx_http_cast_local_topic_s  ngx_http_cast_local_topic_t;


typedef struct {
    ngx_str_node_t                sn;       /* keyed by id */
    ngx_queue_t                   link;     /* in its topic's records */
    ngx_queue_t                   all;
    ngx_pool_t                   *pool;     /* a renewal's strings, or
                                               NULL */
    ngx_http_cast_record_t        record;   /* strings after the struct */
    ngx_http_cast_local_topic_t  *topic;
    ngx_http_cast_local_t        *ls;
    ngx_event_t                  *bind_ev;  /* until a socket binds:
                                               ngx_alloc()ed, or NULL */
    ngx_msec_t                    bind_by;  /* ngx_current_msec */
    unsigned                      bound:1;
} ngx_http_cast_local_record_t;


struct ngx_http_cast_local_topic_s {
    ngx_str_node_t                sn;       /* keyed by name */
    ngx_queue_t                   records;
    ngx_uint_t                    nrecords;
    u_char                       *state;    /* JSON text (json_dumps'),
                                               NULL: empty */
    size_t                        bytes;    /* its length */
    ngx_event_t                   expire;   /* cast_context_ttl */
    ngx_http_cast_local_t        *ls;
    ngx_uint_t                    counted;
    u_char                        name[1];
};


/*
 * A claimed key (until "expires") or a counter (never expires): keys are
 * few and short, claims at most NGX_HTTP_CAST_LOCAL_CLAIMS at a time.
 */

#define NGX_HTTP_CAST_LOCAL_CLAIMS    65536
#define NGX_HTTP_CAST_LOCAL_MAX_KEY   1024

typedef struct {
    ngx_str_node_t                sn;       /* keyed by name */
    ngx_queue_t                   queue;    /* claims, by expiry */
    ngx_msec_t                    expires;  /* ngx_current_msec */
    uint64_t                      value;    /* a counter's */
    unsigned                      counter:1;
    u_char                        name[1];
} ngx_http_cast_local_key_t;


/*
 * Events appended lately, by a hash of topic, name and id: the same event
 * again within NGX_HTTP_CAST_LOCAL_IDS_KEEP is taken once, as the Redis
 * store does (a slot may be taken by a newer event before then).
 */

#define NGX_HTTP_CAST_LOCAL_IDS       4096
#define NGX_HTTP_CAST_LOCAL_IDS_KEEP  300000


/* a record's strings, copied after it in one block */

static size_t  ngx_http_cast_local_fields[] = {
    offsetof(ngx_http_cast_record_t, id),
    offsetof(ngx_http_cast_record_t, topic),
    offsetof(ngx_http_cast_record_t, events),
    offsetof(ngx_http_cast_record_t, endpoint),
    offsetof(ngx_http_cast_record_t, name),
    offsetof(ngx_http_cast_record_t, callback),
    offsetof(ngx_http_cast_record_t, product_name),
    offsetof(ngx_http_cast_record_t, product_version),
    offsetof(ngx_http_cast_record_t, actors),
    offsetof(ngx_http_cast_record_t, client_info),
    offsetof(ngx_http_cast_record_t, writable),
    offsetof(ngx_http_cast_record_t, latest)
};

#define NGX_HTTP_CAST_LOCAL_NFIELDS                                          \
    (sizeof(ngx_http_cast_local_fields) / sizeof(size_t))

typedef struct {
    uint64_t                      hash;
    ngx_msec_t                    at;
} ngx_http_cast_local_seen_t;


struct ngx_http_cast_local_s {
    ngx_http_cast_store_t         store;    /* first: the public part */
    ngx_rbtree_t                  records;
    ngx_rbtree_node_t             records_sentinel;
    ngx_queue_t                   all;
    ngx_rbtree_t                  topics;
    ngx_rbtree_node_t             topics_sentinel;
    ngx_uint_t                    nrecords;
    ngx_uint_t                    ntopics;
    ngx_uint_t                    max_topics;
    ngx_uint_t                    max_subs;
    ngx_uint_t                    max_topic_subs;
    size_t                        max_bytes;  /* 0: no limit */
    size_t                        bytes;      /* of every topic's state */
    ngx_msec_t                    ttl;
    ngx_log_t                    *log;
    ngx_http_cast_local_seen_t    seen[NGX_HTTP_CAST_LOCAL_IDS];

    /* claims (by expiry) and counters */
    ngx_rbtree_t                  keys;
    ngx_rbtree_node_t             keys_sentinel;
    ngx_queue_t                   claims;
    ngx_uint_t                    nclaims;

    /*
     * The state of the topic appended to last, parsed: a topic's events
     * come in runs, and its next event then starts from a copy of the
     * tree rather than from parsing the text again.  Never changed; only
     * kept for a text of at most NGX_HTTP_CAST_LOCAL_PARSED bytes.
     */
    ngx_http_cast_local_topic_t  *parsed_topic;
    json_t                       *parsed;
};


#define NGX_HTTP_CAST_LOCAL_PARSED    16384

/* a state's text is written here first: one allocation of its size */
#define NGX_HTTP_CAST_LOCAL_DUMP      4096


static void ngx_http_cast_local_create(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_renew(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_remove(ngx_http_cast_store_t *store,
    ngx_str_t *id, ngx_str_t *topic, ngx_str_t *reason,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_remove_matching(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t field, ngx_str_t *value, ngx_str_t *reason,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_reset(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_bind(ngx_http_cast_store_t *store,
    ngx_str_t *id, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_unbind(ngx_http_cast_store_t *store,
    ngx_str_t *id);
static void ngx_http_cast_local_append(ngx_http_cast_store_t *store,
    ngx_http_cast_append_t *a);
static void ngx_http_cast_local_state(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_count(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_topics(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_listen(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t on);
static void ngx_http_cast_local_status(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data);
static const char *ngx_http_cast_local_health(ngx_http_cast_store_t *store);
static void ngx_http_cast_local_changed(ngx_http_cast_store_t *store);
static void ngx_http_cast_local_exit(ngx_http_cast_store_t *store);
static void ngx_http_cast_local_claim(ngx_http_cast_store_t *store,
    ngx_str_t *key, ngx_msec_t ttl, ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_local_incr(ngx_http_cast_store_t *store,
    ngx_str_t *key, ngx_http_cast_done_pt done, void *data);
static ngx_http_cast_local_key_t *ngx_http_cast_local_key(
    ngx_http_cast_local_t *ls, ngx_str_t *name);
static void ngx_http_cast_local_keys_expire(ngx_http_cast_local_t *ls,
    ngx_uint_t all);
static void ngx_http_cast_local_records(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t max, ngx_http_cast_done_pt done,
    void *data);
static ngx_uint_t ngx_http_cast_local_list(json_t *out, ngx_queue_t *records,
    ngx_uint_t all, ngx_uint_t max);
static void ngx_http_cast_local_post(ngx_http_cast_store_t *store,
    ngx_str_t *to, ngx_str_t *text);

static ngx_http_cast_local_record_t *ngx_http_cast_local_find(
    ngx_http_cast_local_t *ls, ngx_str_t *id);
static ngx_http_cast_local_topic_t *ngx_http_cast_local_topic(
    ngx_http_cast_local_t *ls, ngx_str_t *name, ngx_uint_t create,
    ngx_uint_t counted);
static void ngx_http_cast_local_topic_release(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic);
static ngx_int_t ngx_http_cast_local_apply(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic, ngx_http_cast_append_t *a,
    json_t **state);
static json_t *ngx_http_cast_local_parse(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic);
static u_char *ngx_http_cast_local_text(ngx_http_cast_local_t *ls,
    json_t *state, size_t *size);
static void ngx_http_cast_local_unparse(ngx_http_cast_local_t *ls);
static void ngx_http_cast_local_forget(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic);
static void ngx_http_cast_local_expired(ngx_event_t *ev);
static ngx_uint_t ngx_http_cast_local_limit(ngx_http_cast_local_t *ls,
    ngx_http_cast_record_t *record);
static void ngx_http_cast_local_end(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_record_t *lr, ngx_str_t *reason);
static void ngx_http_cast_local_bind_expired(ngx_event_t *ev);
static ngx_int_t ngx_http_cast_local_bind_event(
    ngx_http_cast_local_record_t *lr, ngx_http_cast_local_t *ls);
static void ngx_http_cast_local_bind_event_free(
    ngx_http_cast_local_record_t *lr);
static void ngx_http_cast_local_unbound_timer(
    ngx_http_cast_local_record_t *lr);
static ngx_uint_t ngx_http_cast_local_full(ngx_http_cast_local_t *ls);
static ngx_uint_t ngx_http_cast_local_seen(ngx_http_cast_local_t *ls,
    ngx_http_cast_append_t *a);
static uint32_t ngx_http_cast_local_crc(ngx_http_cast_append_t *a);
static ngx_uint_t ngx_http_cast_local_slot(ngx_http_cast_append_t *a);
static ngx_int_t ngx_http_cast_local_copy(ngx_pool_t *pool, ngx_str_t *dst,
    ngx_str_t *src);
static void ngx_http_cast_local_reply(ngx_http_cast_done_pt done,
    void *data, ngx_uint_t rc, ngx_http_cast_record_t *record,
    ngx_uint_t removed, json_t *json);


ngx_http_cast_store_t *
ngx_http_cast_store_local_create(ngx_cycle_t *cycle,
    ngx_http_cast_main_conf_t *cmcf)
{
    ngx_http_cast_local_t  *ls;

    ls = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_local_t));
    if (ls == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&ls->records, &ls->records_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&ls->topics, &ls->topics_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&ls->all);
    ngx_rbtree_init(&ls->keys, &ls->keys_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&ls->claims);

    ls->max_topics = cmcf->max_topics;
    ls->max_subs = cmcf->max_subs;
    ls->max_topic_subs = cmcf->max_topic_subs;
    ls->max_bytes = cmcf->max_context_total;
    ls->ttl = cmcf->context_ttl;
    ls->log = cycle->log;

    ls->store.mode = "local";
    ls->store.create = ngx_http_cast_local_create;
    ls->store.renew = ngx_http_cast_local_renew;
    ls->store.remove = ngx_http_cast_local_remove;
    ls->store.remove_matching = ngx_http_cast_local_remove_matching;
    ls->store.reset = ngx_http_cast_local_reset;
    ls->store.bind = ngx_http_cast_local_bind;
    ls->store.unbind = ngx_http_cast_local_unbind;
    ls->store.append = ngx_http_cast_local_append;
    ls->store.state = ngx_http_cast_local_state;
    ls->store.count = ngx_http_cast_local_count;
    ls->store.topics = ngx_http_cast_local_topics;
    ls->store.listen = ngx_http_cast_local_listen;
    ls->store.status = ngx_http_cast_local_status;
    ls->store.health = ngx_http_cast_local_health;
    ls->store.changed = ngx_http_cast_local_changed;
    ls->store.exit = ngx_http_cast_local_exit;
    ls->store.claim = ngx_http_cast_local_claim;
    ls->store.incr = ngx_http_cast_local_incr;
    ls->store.records = ngx_http_cast_local_records;
    ls->store.post = ngx_http_cast_local_post;
    ngx_str_set(&ls->store.address, "local");

    return &ls->store;
}


static void
ngx_http_cast_local_create(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    u_char                        *p;
    size_t                         size;
    ngx_str_t                     *dst, *src;
    ngx_uint_t                     i, rc;
    ngx_http_cast_record_t        *r;
    ngx_http_cast_local_topic_t   *topic;
    ngx_http_cast_local_record_t  *lr;

    if (ngx_http_cast_local_find(ls, &record->id)) {
        /* 128 random bits twice: the caller draws again */
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_BOUND, NULL, 0,
                                  NULL);
        return;
    }

    rc = ngx_http_cast_local_limit(ls, record);
    if (rc != NGX_HTTP_CAST_DONE) {
        ngx_http_cast_local_reply(done, data, rc, NULL, 0, NULL);
        return;
    }

    topic = ngx_http_cast_local_topic(ls, &record->topic, 1,
                                      record->counted);
    if (topic == NULL) {
        ngx_http_cast_local_reply(done, data,
                                  ngx_http_cast_local_full(ls)
                                  ? NGX_HTTP_CAST_FULL : NGX_HTTP_CAST_FAILED,
                                  NULL, 0, NULL);
        return;
    }

    /*
     * One block sized to the record and its strings (a record lives as
     * long as its subscription: an idle subscriber costs what it holds,
     * not a pool); a renewal's strings go to a pool made then.
     */

    size = sizeof(ngx_http_cast_local_record_t);

    for (i = 0; i < NGX_HTTP_CAST_LOCAL_NFIELDS; i++) {
        size += ((ngx_str_t *) ((u_char *) record
                               + ngx_http_cast_local_fields[i]))->len;
    }

    lr = ngx_calloc(size, ls->log);
    if (lr == NULL) {
        goto failed;
    }

    if (ngx_http_cast_local_bind_event(lr, ls) != NGX_OK) {
        ngx_free(lr);
        goto failed;
    }

    r = &lr->record;
    *r = *record;

    p = (u_char *) (lr + 1);

    for (i = 0; i < NGX_HTTP_CAST_LOCAL_NFIELDS; i++) {
        src = (ngx_str_t *) ((u_char *) record
                             + ngx_http_cast_local_fields[i]);
        dst = (ngx_str_t *) ((u_char *) r + ngx_http_cast_local_fields[i]);

        dst->len = src->len;

        if (src->len == 0) {
            dst->data = (u_char *) "";
            continue;
        }

        dst->data = p;
        p = ngx_cpymem(p, src->data, src->len);
    }

    lr->sn.str = r->id;
    lr->sn.node.key = ngx_crc32_long(r->id.data, r->id.len);
    lr->topic = topic;
    lr->ls = ls;

    ngx_rbtree_insert(&ls->records, &lr->sn.node);
    ngx_queue_insert_tail(&topic->records, &lr->link);
    ngx_queue_insert_tail(&ls->all, &lr->all);
    topic->nrecords++;
    ls->nrecords++;

    /* unbound, it ends with its bind timeout or its lease, if sooner */

    lr->bind_by = ngx_current_msec + record->bind_timeout;
    ngx_http_cast_local_unbound_timer(lr);

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, r, 0, NULL);
    return;

failed:

    ngx_http_cast_local_topic_release(ls, topic);
    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL, 0,
                              NULL);
}


static void
ngx_http_cast_local_renew(ngx_http_cast_store_t *store,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_http_cast_record_t        *r;
    ngx_http_cast_local_record_t  *lr;

    lr = ngx_http_cast_local_find(ls, &record->id);

    if (lr == NULL
        || lr->record.topic.len != record->topic.len
        || ngx_strncmp(lr->record.topic.data, record->topic.data,
                       record->topic.len) != 0)
    {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_NOT_FOUND, NULL,
                                  0, NULL);
        return;
    }

    r = &lr->record;

    /* the old events text stays until the record goes */

    if (lr->pool == NULL) {
        lr->pool = ngx_create_pool(256, ls->log);
        if (lr->pool == NULL) {
            ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL,
                                      0, NULL);
            return;
        }
    }

    if (ngx_http_cast_local_copy(lr->pool, &r->events, &record->events)
        != NGX_OK)
    {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL, 0,
                                  NULL);
        return;
    }

    r->lease = record->lease;
    r->expires = record->expires;

    /* cast_auth: the renewing token's grant replaces the old one */

    if (ngx_http_cast_local_copy(lr->pool, &r->writable, &record->writable)
        != NGX_OK)
    {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL, 0,
                                  NULL);
        return;
    }

    r->auth = record->auth;

    if (!lr->bound) {
        if (lr->bind_ev == NULL
            && ngx_http_cast_local_bind_event(lr, ls) != NGX_OK)
        {
            ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL,
                                      0, NULL);
            return;
        }

        ngx_http_cast_local_unbound_timer(lr);
    }

    if (lr->bound) {
        store->hooks.renewed(store->hooks.hub, r);
    }

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, r, 0, NULL);
}


static void
ngx_http_cast_local_remove(ngx_http_cast_store_t *store, ngx_str_t *id,
    ngx_str_t *topic, ngx_str_t *reason, ngx_http_cast_done_pt done,
    void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_http_cast_result_t         res;
    ngx_http_cast_local_record_t  *lr;

    lr = ngx_http_cast_local_find(ls, id);

    if (lr == NULL
        || (topic->len
            && (lr->record.topic.len != topic->len
                || ngx_strncmp(lr->record.topic.data, topic->data,
                               topic->len) != 0)))
    {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_NOT_FOUND, NULL,
                                  0, NULL);
        return;
    }

    /* the reply may quote the record: it goes after the answer */

    if (done) {
        ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
        res.rc = NGX_HTTP_CAST_DONE;
        res.record = &lr->record;
        res.removed = 1;
        done(data, &res);
    }

    ngx_http_cast_local_end(ls, lr, reason);
}


static void
ngx_http_cast_local_remove_matching(ngx_http_cast_store_t *store,
    ngx_str_t *topic, ngx_uint_t field, ngx_str_t *value, ngx_str_t *reason,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_str_t                     *have;
    ngx_uint_t                     removed, last;
    ngx_queue_t                   *q, *next, *records;
    ngx_http_cast_local_topic_t   *t;
    ngx_http_cast_local_record_t  *lr;

    removed = 0;

    t = ngx_http_cast_local_topic(ls, topic, 0, 0);
    if (t == NULL) {
        goto done;
    }

    records = &t->records;

    /* ending the last record may free the topic: stop there */

    for (q = ngx_queue_head(records); q != ngx_queue_sentinel(records);
         q = next)
    {
        next = ngx_queue_next(q);
        last = (next == ngx_queue_sentinel(records));

        lr = ngx_queue_data(q, ngx_http_cast_local_record_t, link);

        have = (field == NGX_HTTP_CAST_MATCH_CALLBACK) ? &lr->record.callback
                                                       : &lr->record.name;

        if (have->len == value->len
            && ngx_strncmp(have->data, value->data, value->len) == 0)
        {
            removed++;
            ngx_http_cast_local_end(ls, lr, reason);
        }

        if (last) {
            break;
        }
    }

done:

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, NULL, removed,
                              NULL);
}


static void
ngx_http_cast_local_reset(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_str_t                      reason;
    ngx_uint_t                     removed;
    ngx_queue_t                   *q;
    ngx_http_cast_local_record_t  *lr;

    ngx_str_set(&reason, "reset");
    removed = 0;

    while (!ngx_queue_empty(&ls->all)) {
        q = ngx_queue_head(&ls->all);
        lr = ngx_queue_data(q, ngx_http_cast_local_record_t, all);
        ngx_http_cast_local_end(ls, lr, &reason);
        removed++;
    }

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, NULL, removed,
                              NULL);
}


static void
ngx_http_cast_local_bind(ngx_http_cast_store_t *store, ngx_str_t *id,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_http_cast_local_record_t  *lr;

    lr = ngx_http_cast_local_find(ls, id);

    if (lr == NULL) {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_NOT_FOUND, NULL,
                                  0, NULL);
        return;
    }

    if (lr->bound) {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_BOUND, NULL, 0,
                                  NULL);
        return;
    }

    lr->bound = 1;
    ngx_http_cast_local_bind_event_free(lr);

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, &lr->record,
                              0, NULL);
}


/* the records go with the worker anyway */

static void
ngx_http_cast_local_unbind(ngx_http_cast_store_t *store, ngx_str_t *id)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_http_cast_local_record_t  *lr;

    lr = ngx_http_cast_local_find(ls, id);

    if (lr) {
        lr->bound = 0;
    }
}


/* the state function runs on the topic's state, parsed for it */

static void
ngx_http_cast_local_append(ngx_http_cast_store_t *store,
    ngx_http_cast_append_t *a)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    json_t                       *state;
    ngx_int_t                     rc;
    ngx_http_cast_result_t        res;
    ngx_http_cast_local_topic_t  *topic;

    topic = ngx_http_cast_local_topic(ls, &a->topic, 1, a->counted);
    if (topic == NULL) {
        ngx_http_cast_local_reply(a->done, a->data,
                                  ngx_http_cast_local_full(ls)
                                  ? NGX_HTTP_CAST_FULL : NGX_HTTP_CAST_FAILED,
                                  NULL, 0, NULL);
        return;
    }

    if (ngx_http_cast_local_seen(ls, a)) {
        /* a retry of an event appended before: answered the same */
        ngx_log_error(NGX_LOG_INFO, ls->log, 0,
                      "cast: event \"%V\" on topic \"%V\" was published "
                      "before: not again", &a->id, &a->topic);

        ngx_http_cast_local_topic_release(ls, topic);

        ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
        res.rc = NGX_HTTP_CAST_DONE;
        res.again = 1;
        a->done(a->data, &res);
        return;
    }

    /* what apply() computed may refer to the state until the answer */

    state = NULL;
    rc = ngx_http_cast_local_apply(ls, topic, a, &state);

    if (rc == NGX_ERROR || rc == NGX_ABORT || rc == NGX_BUSY) {
        /* not appended: the same id may come again */
        if (a->id.len) {
            ls->seen[ngx_http_cast_local_slot(a)].at = 0;
        }

        ngx_http_cast_local_topic_release(ls, topic);

        if (rc == NGX_BUSY) {
            ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
            res.rc = NGX_HTTP_CAST_CONTEXT_FULL;
            ngx_str_set(&res.reason, "the hub keeps as much context as it "
                                     "may (cast_max_context_total)");
            a->done(a->data, &res);

        } else {
            ngx_http_cast_local_reply(a->done, a->data,
                                      rc == NGX_ABORT ? a->refused
                                                      : NGX_HTTP_CAST_FAILED,
                                      NULL, 0, NULL);
        }

        json_decref(state);
        return;
    }

    store->hooks.event(store->hooks.hub, a->log.len ? &a->log : &a->topic,
                       &a->name, &a->json, NGX_HTTP_CAST_DELIVER_ALL);

    ngx_http_cast_local_topic_release(ls, topic);

    ngx_http_cast_local_reply(a->done, a->data, NGX_HTTP_CAST_DONE, NULL, 0,
                              NULL);

    json_decref(state);
}


static void
ngx_http_cast_local_state(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    json_t                       *state;
    ngx_http_cast_local_topic_t  *t;

    t = ngx_http_cast_local_topic(ls, topic, 0, 0);

    state = t ? ngx_http_cast_local_parse(ls, t) : json_object();

    ngx_http_cast_local_reply(done, data,
                              state ? NGX_HTTP_CAST_DONE
                                    : NGX_HTTP_CAST_FAILED,
                              NULL, 0, state);
    json_decref(state);
}


static void
ngx_http_cast_local_count(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_uint_t                    n;
    ngx_http_cast_local_topic_t  *t;

    t = ngx_http_cast_local_topic(ls, topic, 0, 0);
    n = t ? t->nrecords : 0;

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, NULL, n, NULL);
}


/* the counted topics (not the hub's own) with records or a state */

static void
ngx_http_cast_local_topics(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    json_t                       *list, *name;
    ngx_rbtree_node_t            *node, *root, *sentinel;
    ngx_http_cast_local_topic_t  *t;

    list = json_array();
    if (list == NULL) {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL, 0,
                                  NULL);
        return;
    }

    root = ls->topics.root;
    sentinel = ls->topics.sentinel;

    for (node = (root == sentinel) ? NULL : ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&ls->topics, node))
    {
        t = (ngx_http_cast_local_topic_t *) node;

        if (!t->counted
            || (ngx_queue_empty(&t->records)
                && t->bytes == 0))
        {
            continue;
        }

        name = ngx_http_cast_json_string(&t->sn.str);

        if (name == NULL || json_array_append_new(list, name) != 0) {
            json_decref(list);
            ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL,
                                      0, NULL);
            return;
        }
    }

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, NULL, 0, list);
    json_decref(list);
}


static void
ngx_http_cast_local_listen(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_uint_t on)
{
    /* every event is delivered here anyway */
}


/* one worker: res->json NULL, the hub's own counters are the status */

static void
ngx_http_cast_local_status(ngx_http_cast_store_t *store,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    json_t  *json;

    json = json_pack("{s:I,s:I}",
                     "subscriptions", (json_int_t) ls->nrecords,
                     "topics", (json_int_t) ls->ntopics);

    ngx_http_cast_local_reply(done, data,
                              json ? NGX_HTTP_CAST_DONE
                                   : NGX_HTTP_CAST_FAILED,
                              NULL, 0, json);
    json_decref(json);
}


static const char *
ngx_http_cast_local_health(ngx_http_cast_store_t *store)
{
    return NULL;
}


/* the status reads this worker's counters directly */

static void
ngx_http_cast_local_changed(ngx_http_cast_store_t *store)
{
}


static void
ngx_http_cast_local_exit(ngx_http_cast_store_t *store)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_queue_t                   *q;
    ngx_rbtree_node_t             *node;
    ngx_http_cast_local_topic_t   *topic;
    ngx_http_cast_local_record_t  *lr;

    while (!ngx_queue_empty(&ls->all)) {
        q = ngx_queue_head(&ls->all);
        lr = ngx_queue_data(q, ngx_http_cast_local_record_t, all);
        ngx_http_cast_local_end(ls, lr, NULL);
    }

    while (ls->topics.root != ls->topics.sentinel) {
        node = ngx_rbtree_min(ls->topics.root, ls->topics.sentinel);
        topic = (ngx_http_cast_local_topic_t *) node;

        ngx_http_cast_local_forget(ls, topic);
        ngx_http_cast_local_topic_release(ls, topic);
    }

    ngx_http_cast_local_keys_expire(ls, 1);
}


/* claims and counters: one worker, so this worker's memory is the truth */

static void
ngx_http_cast_local_claim(ngx_http_cast_store_t *store, ngx_str_t *key,
    ngx_msec_t ttl, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_uint_t                  rc;
    ngx_queue_t                *q;
    ngx_http_cast_local_key_t  *k, *prev;

    ngx_http_cast_local_keys_expire(ls, 0);

    k = (ngx_http_cast_local_key_t *)
            ngx_str_rbtree_lookup(&ls->keys, key,
                                  ngx_crc32_short(key->data, key->len));

    if (k) {
        rc = NGX_HTTP_CAST_CLAIMED;
        goto done;
    }

    if (ls->nclaims >= NGX_HTTP_CAST_LOCAL_CLAIMS) {
        ngx_log_error(NGX_LOG_WARN, ls->log, 0,
                      "cast: %ui claims are held, the limit: a claim is "
                      "refused", ls->nclaims);
        rc = NGX_HTTP_CAST_FULL;
        goto done;
    }

    k = ngx_http_cast_local_key(ls, key);
    if (k == NULL) {
        rc = NGX_HTTP_CAST_FAILED;
        goto done;
    }

    k->expires = ngx_current_msec + ttl;
    ls->nclaims++;

    /* in expiry order: usually the last */

    for (q = ngx_queue_last(&ls->claims);
         q != ngx_queue_sentinel(&ls->claims);
         q = ngx_queue_prev(q))
    {
        prev = ngx_queue_data(q, ngx_http_cast_local_key_t, queue);

        if ((ngx_msec_int_t) (prev->expires - k->expires) <= 0) {
            break;
        }
    }

    ngx_queue_insert_after(q, &k->queue);

    rc = NGX_HTTP_CAST_DONE;

done:

    ngx_http_cast_local_reply(done, data, rc, NULL, 0, NULL);
}


static void
ngx_http_cast_local_incr(ngx_http_cast_store_t *store, ngx_str_t *key,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    ngx_http_cast_result_t      res;
    ngx_http_cast_local_key_t  *k;

    ngx_memzero(&res, sizeof(ngx_http_cast_result_t));

    k = (ngx_http_cast_local_key_t *)
            ngx_str_rbtree_lookup(&ls->keys, key,
                                  ngx_crc32_short(key->data, key->len));

    if (k == NULL) {
        k = ngx_http_cast_local_key(ls, key);

        if (k) {
            k->counter = 1;
            ngx_queue_init(&k->queue);
        }

    } else if (!k->counter) {
        /* a claimed key is not a counter */
        k = NULL;
    }

    if (k == NULL) {
        res.rc = NGX_HTTP_CAST_FAILED;

    } else {
        res.rc = NGX_HTTP_CAST_DONE;
        res.value = ++k->value;
    }

    done(data, &res);
}


static ngx_http_cast_local_key_t *
ngx_http_cast_local_key(ngx_http_cast_local_t *ls, ngx_str_t *name)
{
    ngx_http_cast_local_key_t  *k;

    if (name->len == 0 || name->len > NGX_HTTP_CAST_LOCAL_MAX_KEY) {
        return NULL;
    }

    k = ngx_calloc(sizeof(ngx_http_cast_local_key_t) + name->len, ls->log);
    if (k == NULL) {
        return NULL;
    }

    ngx_memcpy(k->name, name->data, name->len);
    k->sn.str.data = k->name;
    k->sn.str.len = name->len;
    k->sn.node.key = ngx_crc32_short(name->data, name->len);

    ngx_rbtree_insert(&ls->keys, &k->sn.node);

    return k;
}


/* claims whose time is up go (all: every key, at exit) */

static void
ngx_http_cast_local_keys_expire(ngx_http_cast_local_t *ls, ngx_uint_t all)
{
    ngx_queue_t                *q;
    ngx_rbtree_node_t          *node;
    ngx_http_cast_local_key_t  *k;

    while (!ngx_queue_empty(&ls->claims)) {
        q = ngx_queue_head(&ls->claims);
        k = ngx_queue_data(q, ngx_http_cast_local_key_t, queue);

        if (!all && (ngx_msec_int_t) (k->expires - ngx_current_msec) > 0) {
            break;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ls->keys, &k->sn.node);
        ls->nclaims--;
        ngx_free(k);
    }

    while (all && ls->keys.root != ls->keys.sentinel) {
        node = ngx_rbtree_min(ls->keys.root, ls->keys.sentinel);
        ngx_rbtree_delete(&ls->keys, node);
        ngx_free(node);
    }
}


/* the records of a topic and of "*", or every record, as JSON */

static void
ngx_http_cast_local_records(ngx_http_cast_store_t *store, ngx_str_t *topic,
    ngx_uint_t max, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_local_t *ls = (ngx_http_cast_local_t *) store;

    json_t                       *out;
    ngx_str_t                     any;
    ngx_uint_t                    n;
    ngx_http_cast_local_topic_t  *t;

    out = json_array();
    if (out == NULL) {
        ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_FAILED, NULL, 0,
                                  NULL);
        return;
    }

    n = 0;

    if (topic->len == 0) {
        (void) ngx_http_cast_local_list(out, &ls->all, 1, max);

    } else {
        t = ngx_http_cast_local_topic(ls, topic, 0, 0);

        if (t) {
            n = ngx_http_cast_local_list(out, &t->records, 0, max);
        }

        ngx_str_set(&any, "*");

        if (n < max
            && !(topic->len == 1 && topic->data[0] == '*')
            && (t = ngx_http_cast_local_topic(ls, &any, 0, 0)))
        {
            (void) ngx_http_cast_local_list(out, &t->records, 0, max - n);
        }
    }

    ngx_http_cast_local_reply(done, data, NGX_HTTP_CAST_DONE, NULL, 0, out);
    json_decref(out);
}


static ngx_uint_t
ngx_http_cast_local_list(json_t *out, ngx_queue_t *records, ngx_uint_t all,
    ngx_uint_t max)
{
    json_t                        *rec;
    ngx_uint_t                     n;
    ngx_queue_t                   *q;
    ngx_http_cast_record_t        *r;
    ngx_http_cast_local_record_t  *lr;

    n = 0;

    for (q = ngx_queue_head(records);
         q != ngx_queue_sentinel(records) && n < max;
         q = ngx_queue_next(q))
    {
        lr = all ? ngx_queue_data(q, ngx_http_cast_local_record_t, all)
                 : ngx_queue_data(q, ngx_http_cast_local_record_t, link);
        r = &lr->record;

        rec = json_pack("{s:s%,s:s%,s:s%,s:s%,s:s%,s:s%,s:s%,s:b}",
                        "id", (char *) r->id.data, r->id.len,
                        "topic", (char *) r->topic.data, r->topic.len,
                        "events", (char *) r->events.data, r->events.len,
                        "name", (char *) r->name.data, r->name.len,
                        "product_name", (char *) r->product_name.data,
                        r->product_name.len,
                        "actors", (char *) r->actors.data, r->actors.len,
                        "client_info", (char *) r->client_info.data,
                        r->client_info.len,
                        "bound", (int) lr->bound);

        if (rec == NULL || json_array_append_new(out, rec) != 0) {
            continue;
        }

        n++;
    }

    return n;
}


/* one worker: a note is for this one */

static void
ngx_http_cast_local_post(ngx_http_cast_store_t *store, ngx_str_t *to,
    ngx_str_t *text)
{
    if (store->hooks.posted == NULL
        || (to->len
            && (to->len != store->address.len
                || ngx_strncmp(to->data, store->address.data, to->len) != 0)))
    {
        return;
    }

    store->hooks.posted(store->hooks.hub, text);
}


static ngx_http_cast_local_record_t *
ngx_http_cast_local_find(ngx_http_cast_local_t *ls, ngx_str_t *id)
{
    return (ngx_http_cast_local_record_t *)
               ngx_str_rbtree_lookup(&ls->records, id,
                                     ngx_crc32_long(id->data, id->len));
}


/* NULL when missing (create 0), full or out of memory */

static ngx_http_cast_local_topic_t *
ngx_http_cast_local_topic(ngx_http_cast_local_t *ls, ngx_str_t *name,
    ngx_uint_t create, ngx_uint_t counted)
{
    uint32_t                      hash;
    ngx_http_cast_local_topic_t  *topic;

    hash = ngx_crc32_long(name->data, name->len);

    topic = (ngx_http_cast_local_topic_t *)
                ngx_str_rbtree_lookup(&ls->topics, name, hash);

    if (topic || !create) {
        return topic;
    }

    if (counted && ls->ntopics >= ls->max_topics) {
        ngx_log_error(NGX_LOG_INFO, ls->log, 0,
                      "cast: %ui topics are stored, the cast_max_topics "
                      "limit: \"%V\" is refused", ls->ntopics, name);
        return NULL;
    }

    topic = ngx_alloc(sizeof(ngx_http_cast_local_topic_t) + name->len,
                      ls->log);
    if (topic == NULL) {
        return NULL;
    }

    ngx_memzero(topic, sizeof(ngx_http_cast_local_topic_t));

    topic->expire.handler = ngx_http_cast_local_expired;
    topic->expire.data = topic;
    topic->expire.log = ls->log;
    topic->expire.cancelable = 1;
    topic->ls = ls;

    ngx_memcpy(topic->name, name->data, name->len);
    topic->sn.str.data = topic->name;
    topic->sn.str.len = name->len;
    topic->sn.node.key = hash;
    ngx_queue_init(&topic->records);

    ngx_rbtree_insert(&ls->topics, &topic->sn.node);
    topic->counted = counted;
    ls->ntopics += counted;

    return topic;
}


/* a topic with no record and an empty state is forgotten */

static void
ngx_http_cast_local_topic_release(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic)
{
    if (!ngx_queue_empty(&topic->records) || topic->bytes != 0) {
        return;
    }

    ngx_http_cast_event_cancel(&topic->expire);

    if (topic == ls->parsed_topic) {
        ngx_http_cast_local_unparse(ls);
    }

    ngx_rbtree_delete(&ls->topics, &topic->sn.node);
    ls->ntopics -= topic->counted;

    ngx_free(topic);
}


/*
 * The event applied to the topic's state, parsed into *state (the
 * caller releases it).  NGX_OK: the state changed, its new text is kept
 * for cast_context_ttl; NGX_BUSY: the new text would take the worker
 * past cast_max_context_total, the old one stays.
 */

static ngx_int_t
ngx_http_cast_local_apply(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic, ngx_http_cast_append_t *a,
    json_t **state)
{
    u_char     *text;
    size_t      size;
    ngx_int_t   rc;

    *state = ngx_http_cast_local_parse(ls, topic);
    if (*state == NULL) {
        return NGX_ERROR;
    }

    rc = a->apply(a, *state);

    if (rc != NGX_OK) {
        return rc;
    }

    text = NULL;
    size = 0;

    if (json_object_size(*state)) {
        text = ngx_http_cast_local_text(ls, *state, &size);
        if (text == NULL) {
            return NGX_ERROR;
        }
    }

    if (ls->max_bytes && size > topic->bytes
        && ls->bytes - topic->bytes + size > ls->max_bytes)
    {
        ngx_log_error(NGX_LOG_INFO, ls->log, 0,
                      "cast: the topics' context would take %uz bytes, "
                      "past cast_max_context_total (%uz): an event on "
                      "\"%V\" is refused", ls->bytes - topic->bytes + size,
                      ls->max_bytes, &a->topic);
        ngx_free(text);
        return NGX_BUSY;
    }

    if (topic->state) {
        ngx_free(topic->state);
    }

    ls->bytes = ls->bytes - topic->bytes + size;
    topic->state = text;
    topic->bytes = size;

    /* the caller changes the tree no more: it is the text's, parsed */

    ngx_http_cast_local_unparse(ls);

    if (size <= NGX_HTTP_CAST_LOCAL_PARSED) {
        ls->parsed_topic = topic;
        ls->parsed = json_incref(*state);
    }

    /* a timer set moves (nginx leaves it if the move is small) */

    if (size && !a->keep) {
        ngx_add_timer(&topic->expire, ls->ttl);

    } else {
        ngx_http_cast_event_cancel(&topic->expire);
    }

    return NGX_OK;
}


/* the state, parsed: a new reference (an empty object when empty) */

static json_t *
ngx_http_cast_local_parse(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic)
{
    json_t        *state;
    json_error_t   err;

    if (topic == ls->parsed_topic) {
        return json_deep_copy(ls->parsed);
    }

    if (topic->state == NULL) {
        return json_object();
    }

    state = json_loadb((char *) topic->state, topic->bytes, 0, &err);

    if (!json_is_object(state)) {
        ngx_log_error(NGX_LOG_ALERT, ls->log, 0,
                      "cast: the state of topic \"%V\" does not parse: %s",
                      &topic->sn.str, err.text);
        json_decref(state);
        return NULL;
    }

    return state;
}


/* the compact text of a state, allocated to its size; NULL: failed */

static u_char *
ngx_http_cast_local_text(ngx_http_cast_local_t *ls, json_t *state,
    size_t *size)
{
    u_char   buf[NGX_HTTP_CAST_LOCAL_DUMP];
    u_char  *text;
    size_t   n;

    n = json_dumpb(state, (char *) buf, sizeof(buf), JSON_COMPACT);

    if (n == 0) {
        return NULL;
    }

    if (n > sizeof(buf)) {
        /* jansson's own allocation (malloc) is kept */
        text = (u_char *) json_dumps(state, JSON_COMPACT);
        *size = text ? ngx_strlen(text) : 0;
        return text;
    }

    text = ngx_alloc(n + 1, ls->log);
    if (text == NULL) {
        return NULL;
    }

    ngx_memcpy(text, buf, n);
    text[n] = '\0';
    *size = n;

    return text;
}


static void
ngx_http_cast_local_unparse(ngx_http_cast_local_t *ls)
{
    json_decref(ls->parsed);
    ls->parsed = NULL;
    ls->parsed_topic = NULL;
}


/* the state text goes: the topic's state is empty */

static void
ngx_http_cast_local_forget(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_topic_t *topic)
{
    if (topic == ls->parsed_topic) {
        ngx_http_cast_local_unparse(ls);
    }

    ngx_http_cast_event_cancel(&topic->expire);

    if (topic->state) {
        ngx_free(topic->state);
        topic->state = NULL;
    }

    ls->bytes -= topic->bytes;
    topic->bytes = 0;
}


/* a state unchanged for cast_context_ttl is forgotten, as Redis does */

static void
ngx_http_cast_local_expired(ngx_event_t *ev)
{
    ngx_http_cast_local_topic_t  *topic;

    topic = ev->data;

    ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                  "cast: the context of topic \"%V\" expired "
                  "(cast_context_ttl)", &topic->sn.str);

    ngx_http_cast_local_forget(topic->ls, topic);
    ngx_http_cast_local_topic_release(topic->ls, topic);
}


/* cast_max_subscriptions, then cast_max_subscriptions_per_topic */

static ngx_uint_t
ngx_http_cast_local_limit(ngx_http_cast_local_t *ls,
    ngx_http_cast_record_t *record)
{
    ngx_http_cast_local_topic_t  *t;

    if (ls->nrecords >= ls->max_subs) {
        ngx_log_error(NGX_LOG_INFO, ls->log, 0,
                      "cast: %ui subscriptions are held, the "
                      "cast_max_subscriptions limit: a subscription on "
                      "\"%V\" is refused", ls->nrecords, &record->topic);
        return NGX_HTTP_CAST_SUBS_FULL;
    }

    t = ngx_http_cast_local_topic(ls, &record->topic, 0, 0);

    if (t && t->nrecords >= ls->max_topic_subs) {
        ngx_log_error(NGX_LOG_INFO, ls->log, 0,
                      "cast: topic \"%V\" has %ui subscriptions, the "
                      "cast_max_subscriptions_per_topic limit: one more is "
                      "refused", &record->topic, t->nrecords);
        return NGX_HTTP_CAST_TOPIC_FULL;
    }

    return NGX_HTTP_CAST_DONE;
}


/* reason NULL: worker exit, nobody is told */

static void
ngx_http_cast_local_end(ngx_http_cast_local_t *ls,
    ngx_http_cast_local_record_t *lr, ngx_str_t *reason)
{
    ngx_http_cast_local_topic_t  *topic;

    ngx_http_cast_local_bind_event_free(lr);

    ngx_rbtree_delete(&ls->records, &lr->sn.node);
    ngx_queue_remove(&lr->link);
    ngx_queue_remove(&lr->all);
    ls->nrecords--;

    topic = lr->topic;
    topic->nrecords--;

    if (reason) {
        ls->store.hooks.ended(ls->store.hooks.hub, &lr->record.id,
                              &lr->record.topic, reason, lr->bound);
    }

    if (lr->pool) {
        ngx_destroy_pool(lr->pool);
    }

    ngx_free(lr);

    ngx_http_cast_local_topic_release(ls, topic);
}


static void
ngx_http_cast_local_bind_expired(ngx_event_t *ev)
{
    ngx_str_t                      reason;
    ngx_http_cast_local_record_t  *lr;

    lr = ev->data;

    if ((ngx_msec_int_t) (lr->bind_by - ngx_current_msec) > 0) {
        ngx_str_set(&reason, "lease expired");

    } else {
        ngx_str_set(&reason, "no socket was bound in time");
    }

    ngx_http_cast_local_end(lr->ls, lr, &reason);
}


/*
 * A bound record needs no timer (its socket's subscription has the
 * lease): the event is made while it waits for a socket only.
 */

static ngx_int_t
ngx_http_cast_local_bind_event(ngx_http_cast_local_record_t *lr,
    ngx_http_cast_local_t *ls)
{
    ngx_event_t  *ev;

    ev = ngx_calloc(sizeof(ngx_event_t), ls->log);
    if (ev == NULL) {
        return NGX_ERROR;
    }

    ev->handler = ngx_http_cast_local_bind_expired;
    ev->data = lr;
    ev->log = ls->log;
    ev->cancelable = 1;

    lr->bind_ev = ev;

    return NGX_OK;
}


static void
ngx_http_cast_local_bind_event_free(ngx_http_cast_local_record_t *lr)
{
    if (lr->bind_ev) {
        ngx_http_cast_event_cancel(lr->bind_ev);
        ngx_free(lr->bind_ev);
        lr->bind_ev = NULL;
    }
}


/* the bind timeout or the lease, whichever ends first */

static void
ngx_http_cast_local_unbound_timer(ngx_http_cast_local_record_t *lr)
{
    ngx_msec_t      lease;
    ngx_msec_int_t  bind;

    bind = (ngx_msec_int_t) (lr->bind_by - ngx_current_msec);
    lease = (ngx_msec_t) lr->record.lease * 1000;

    ngx_add_timer(lr->bind_ev, ngx_min((ngx_msec_t) ngx_max(bind, 1),
                                       lease));
}


static uint32_t
ngx_http_cast_local_crc(ngx_http_cast_append_t *a)
{
    uint32_t  crc;

    ngx_crc32_init(crc);
    ngx_crc32_update(&crc, a->topic.data, a->topic.len);
    ngx_crc32_update(&crc, (u_char *) " ", 1);
    ngx_crc32_update(&crc, a->name.data, a->name.len);
    ngx_crc32_update(&crc, (u_char *) " ", 1);
    ngx_crc32_update(&crc, a->id.data, a->id.len);
    ngx_crc32_final(crc);

    return crc;
}


static ngx_uint_t
ngx_http_cast_local_slot(ngx_http_cast_append_t *a)
{
    return ngx_http_cast_local_crc(a) % NGX_HTTP_CAST_LOCAL_IDS;
}


/* 1: appended lately; else it is remembered now (an event with an id) */

static ngx_uint_t
ngx_http_cast_local_seen(ngx_http_cast_local_t *ls, ngx_http_cast_append_t *a)
{
    uint32_t                     h1, h2;
    uint64_t                     hash;
    ngx_http_cast_local_seen_t  *seen;

    if (a->id.len == 0) {
        return 0;
    }

    h1 = ngx_http_cast_local_crc(a);

    h2 = ngx_murmur_hash2(a->id.data, a->id.len)
         ^ ngx_murmur_hash2(a->topic.data, a->topic.len)
         ^ ngx_murmur_hash2(a->name.data, a->name.len) * 31;

    hash = ((uint64_t) h1 << 32) | h2;
    seen = &ls->seen[h1 % NGX_HTTP_CAST_LOCAL_IDS];

    if (seen->hash == hash && seen->at
        && ngx_current_msec - seen->at < NGX_HTTP_CAST_LOCAL_IDS_KEEP)
    {
        return 1;
    }

    seen->hash = hash;
    seen->at = ngx_current_msec ? ngx_current_msec : 1;

    return 0;
}


static ngx_uint_t
ngx_http_cast_local_full(ngx_http_cast_local_t *ls)
{
    return ls->ntopics >= ls->max_topics;
}


static ngx_int_t
ngx_http_cast_local_copy(ngx_pool_t *pool, ngx_str_t *dst, ngx_str_t *src)
{
    u_char  *p;

    if (src->len == 0) {
        dst->len = 0;
        dst->data = (u_char *) "";
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, src->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, src->data, src->len);
    dst->data = p;
    dst->len = src->len;

    return NGX_OK;
}


static void
ngx_http_cast_local_reply(ngx_http_cast_done_pt done, void *data,
    ngx_uint_t rc, ngx_http_cast_record_t *record, ngx_uint_t removed,
    json_t *json)
{
    ngx_http_cast_result_t  res;

    if (done == NULL) {
        return;
    }

    res.rc = rc;
    res.record = record;
    res.removed = removed;
    res.again = 0;
    res.json = json;

    done(data, &res);
}
