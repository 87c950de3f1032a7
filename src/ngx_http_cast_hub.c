
/*
 * ngx_http_cast_module: the hub core (see ngx_http_cast_hub.h).
 *
 * Cost of a delivery: one topic lookup, one walk over that topic's
 * subscriptions on this worker (plus the "*" ones), one frame built for
 * all of them.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_conference.h"
#include "ngx_http_cast_state.h"
#include "ngx_http_cast_text.h"


/* the app-level heartbeat event (STU3 ballot), in seconds */
#define NGX_HTTP_CAST_HEARTBEAT  10

/* subscriber names listed per conference topic (GET .../conference) */
#define NGX_HTTP_CAST_CONF_NAMES  256

/* events held for a socket while its replay is on its way */
#define NGX_HTTP_CAST_MAX_HELD   1024

/* context changes a topic remembers for acks; a socket waits for at most */
#define NGX_HTTP_CAST_SENT_KEEP  16
#define NGX_HTTP_CAST_MAX_UNACKED  256
#define NGX_HTTP_CAST_MAX_ACK_ID   256


/*
 * A context change (an "*-open" or "*-close") delivered on this worker:
 * an ack names it by id; a syncerror names its id and hub.event.
 */

typedef struct {
    ngx_uint_t                 refs;
    ngx_str_t                  id;
    ngx_str_t                  name;        /* hub.event as published */
    ngx_str_t                  lowercase;
    u_char                     data[1];
} ngx_http_cast_sent_t;


/* a context change a socket has not acknowledged yet (cast_ack_timeout) */

typedef struct {
    ngx_queue_t                queue;       /* in sub->unacked */
    ngx_http_cast_sent_t      *sent;
    ngx_msec_t                 deadline;
} ngx_http_cast_unacked_t;


struct ngx_http_cast_topic_s {
    ngx_str_node_t             sn;          /* keyed by name */
    ngx_queue_t                subs;        /* ngx_http_cast_sub_t */
    ngx_http_cast_sent_t      *sent[NGX_HTTP_CAST_SENT_KEEP];  /* a ring */
    ngx_uint_t                 next;
    ngx_uint_t                 pins;        /* conferences listening here */
    u_char                     name[1];
};


/*
 * A conference as this worker knows it: its events come through the
 * host topic's log, which this worker listens to ("pinned") while it has
 * sockets on any of its topics.
 */

typedef struct {
    ngx_str_node_t             sn;          /* keyed by host topic */
    int64_t                    rev;
    ngx_uint_t                 ntopics;
    ngx_str_t                 *topics;      /* host first */
    ngx_http_cast_topic_t     *pinned;
    u_char                     data[1];
} ngx_http_cast_conf_t;


typedef struct {
    ngx_str_node_t             sn;          /* keyed by topic */
    ngx_http_cast_conf_t      *conf;
} ngx_http_cast_member_t;


/*
 * An event of a topic in a conference goes to the host's log; its name
 * there says whose it is: "<name>" NGX_HTTP_CAST_ORIGIN_SEP "<topic>"
 * (no event name, id or topic has a control character).
 */
#define NGX_HTTP_CAST_ORIGIN_SEP  '\x1f'


/*
 * The store carries an event's "name" without looking at it; the hub
 * gives it the lowercase hub.event, and for an event one subscription
 * must not get (a syncerror about it) ",<its id>" after it: no event
 * name has a comma.
 */
#define NGX_HTTP_CAST_KEY_SEP    ','


/* an operation whose result the hub shapes before the caller sees it */

typedef struct {
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_done_pt      done;
    void                      *data;
    ngx_uint_t                 dialect;
    u_char                    *key;         /* publish: name and log */
    ngx_http_cast_append_t     append;
    ngx_http_cast_sub_t       *sub;
    ngx_http_cast_outcome_t    outcome;     /* publish: apply()'s */
} ngx_http_cast_hub_op_t;


/* an event the hub makes (syncerror), on its way through the store */

typedef struct {
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_append_t     append;
    u_char                     id[NGX_HTTP_CAST_UUID_LEN];
    u_char                     data[1];     /* topic, JSON, name, log */
} ngx_http_cast_made_t;


typedef struct {
    ngx_queue_t                queue;
    ngx_http_cast_frame_t     *frame;
} ngx_http_cast_held_t;


/* one event's way to this worker's sockets */

typedef struct {
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_topic_t     *topic;       /* NULL: the "*" sockets */
    ngx_str_t                 *name;        /* lowercase hub.event */
    ngx_str_t                 *key_topic;   /* the frame's key: the topic
                                               the store named */
    ngx_str_t                 *json;
    ngx_str_t                 *except;      /* a subscription id, or "" */
    ngx_http_cast_frame_t    **frame;       /* built once, if sent */
    ngx_http_cast_sent_t      *sent;        /* remembered, for acks */
    ngx_uint_t                 track;       /* a context change */
    ngx_str_t                 *source;      /* a derived open: its
                                               source's name */
    ngx_uint_t                 all;         /* every socket: filters do
                                               not apply */
} ngx_http_cast_fan_t;


/*
 * Work the hub must not do inside a store's call (a store's hook: its
 * records or topics may be half changed): run from the posted events,
 * in order.  "data" is an ngx_alloc()ed block, freed with the job.
 */

typedef struct {
    ngx_queue_t                queue;
    void                     (*run)(ngx_http_cast_hub_t *hub, void *data);
    void                      *data;
} ngx_http_cast_job_t;


/* a conference change on its way through the registry topic */

typedef struct {
    ngx_http_cast_hub_t       *hub;
    ngx_uint_t                 op;
    json_t                    *body;
    const char                *reason;
    char                      *text;        /* the change, as appended */
    ngx_http_cast_done_pt      done;
    void                      *data;
    ngx_http_cast_append_t     append;
    ngx_http_cast_conf_outcome_t  outcome;
    u_char                     id[NGX_HTTP_CAST_UUID_LEN];
    u_char                     ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
} ngx_http_cast_conf_op_t;


static ngx_http_cast_hub_op_t *ngx_http_cast_hub_op(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data);
static void ngx_http_cast_hub_fail(ngx_http_cast_done_pt done, void *data,
    ngx_uint_t rc);
static ngx_int_t ngx_http_cast_hub_apply(ngx_http_cast_append_t *a,
    json_t *state);
static void ngx_http_cast_hub_published(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_hub_context_state(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_hub_replay(void *data, ngx_http_cast_result_t *res);
static void ngx_http_cast_hub_on_event(void *data, ngx_str_t *topic,
    ngx_str_t *name, ngx_str_t *json, ngx_uint_t which);
static void ngx_http_cast_hub_on_ended(void *data, ngx_str_t *id,
    ngx_str_t *topic, ngx_str_t *reason, ngx_uint_t bound);
static void ngx_http_cast_hub_on_renewed(void *data,
    ngx_http_cast_record_t *record);
static json_t *ngx_http_cast_hub_on_counters(void *data);
static void ngx_http_cast_hub_on_bound(void *data,
    void (*each)(void *data, ngx_http_cast_record_t *r), void *each_data);
static void ngx_http_cast_conf_ask(ngx_http_cast_hub_t *hub, ngx_uint_t op,
    json_t *body, const char *reason, ngx_http_cast_done_pt done,
    void *data);
static ngx_int_t ngx_http_cast_conf_op_apply(ngx_http_cast_append_t *a,
    json_t *state);
static void ngx_http_cast_conf_op_done(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_conf_listed(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_conf_names(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_conf_need(ngx_http_cast_hub_t *hub);
static void ngx_http_cast_conf_loaded(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_conf_changed(ngx_http_cast_hub_t *hub,
    ngx_str_t *json);
static ngx_int_t ngx_http_cast_conf_set(ngx_http_cast_hub_t *hub,
    ngx_str_t *host, json_t *conference, int64_t rev);
static void ngx_http_cast_conf_pin(ngx_http_cast_hub_t *hub,
    ngx_http_cast_conf_t *conf);
static void ngx_http_cast_conf_member_pin(ngx_http_cast_hub_t *hub,
    ngx_str_t *topic);
static ngx_http_cast_conf_t *ngx_http_cast_conf_find(ngx_http_cast_hub_t *hub,
    ngx_str_t *host);
static ngx_http_cast_member_t *ngx_http_cast_member_find(
    ngx_http_cast_hub_t *hub, ngx_str_t *topic);
static ngx_uint_t ngx_http_cast_conf_fan_out(ngx_http_cast_fan_t *fan,
    ngx_http_cast_conf_t *conf, ngx_str_t *origin);
static void ngx_http_cast_host_gone(ngx_http_cast_hub_t *hub,
    ngx_str_t *topic);
static void ngx_http_cast_host_counted(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_host_ended(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_removed_event(ngx_http_cast_sub_t *sub,
    ngx_str_t *reason);
static void ngx_http_cast_made_send(ngx_http_cast_hub_t *hub,
    ngx_str_t *topic, json_t *event, u_char *id, const char *name,
    ngx_str_t *except, ngx_uint_t follow);
static void ngx_http_cast_job_add(ngx_http_cast_hub_t *hub,
    void (*run)(ngx_http_cast_hub_t *hub, void *data), void *data);
static void ngx_http_cast_jobs_handler(ngx_event_t *ev);
static void ngx_http_cast_made_run(ngx_http_cast_hub_t *hub, void *data);
static void ngx_http_cast_host_run(ngx_http_cast_hub_t *hub, void *data);
static ngx_http_cast_topic_t *ngx_http_cast_topic_find(
    ngx_http_cast_hub_t *hub, ngx_str_t *name);
static ngx_http_cast_topic_t *ngx_http_cast_topic_get(
    ngx_http_cast_hub_t *hub, ngx_str_t *name);
static void ngx_http_cast_topic_release(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic);
static ngx_http_cast_sub_t *ngx_http_cast_sub_find(ngx_http_cast_hub_t *hub,
    ngx_str_t *id);
static ngx_http_cast_sub_t *ngx_http_cast_sub_alloc(
    ngx_http_cast_record_t *record, ngx_log_t *log);
static ngx_uint_t ngx_http_cast_sub_latest(ngx_http_cast_sub_t *sub,
    ngx_http_cast_frame_t *frame);
static ngx_int_t ngx_http_cast_sub_matches(ngx_http_cast_sub_t *sub,
    ngx_str_t *lowercase);
static ngx_int_t ngx_http_cast_sub_send_json(ngx_http_cast_sub_t *sub,
    json_t *json, ngx_uint_t live);
static ngx_int_t ngx_http_cast_sub_send_hello(ngx_http_cast_sub_t *sub,
    u_char *ts);
static ngx_int_t ngx_http_cast_sub_send_confirmation(ngx_http_cast_sub_t *sub,
    const char *mode, const char *reason);
static ngx_msec_t ngx_http_cast_sub_lease_at(ngx_http_cast_sub_t *sub);
static void ngx_http_cast_sub_lease(ngx_http_cast_sub_t *sub);
static void ngx_http_cast_sub_heartbeat(ngx_http_cast_sub_t *sub);
static void ngx_http_cast_sub_drop_replayed(ngx_http_cast_sub_t *sub);
static void ngx_http_cast_sub_free_latest(ngx_http_cast_sub_t *sub);
static ngx_int_t ngx_http_cast_sub_was_replayed(ngx_http_cast_sub_t *sub,
    ngx_http_cast_frame_t *frame);
static void ngx_http_cast_sub_release_held(ngx_http_cast_sub_t *sub,
    ngx_uint_t send);
static void ngx_http_cast_sub_end(ngx_http_cast_sub_t *sub,
    const char *reason, ngx_str_t *reason_str);
static void ngx_http_cast_sub_free(ngx_http_cast_sub_t *sub);
static ngx_uint_t ngx_http_cast_fan_out(ngx_http_cast_fan_t *fan,
    ngx_queue_t *subs);
static ngx_uint_t ngx_http_cast_context_change(ngx_str_t *lowercase);
static ngx_uint_t ngx_http_cast_derive(ngx_http_cast_fan_t *fan,
    ngx_str_t *json);
static ngx_uint_t ngx_http_cast_sub_derives(ngx_http_cast_sub_t *sub,
    ngx_str_t *source);
static ngx_int_t ngx_http_cast_topic_wants(void *data, ngx_str_t *name);
static ngx_int_t ngx_http_cast_sub_wants(void *data, ngx_str_t *name);
static ngx_http_cast_sent_t *ngx_http_cast_sent_add(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic, ngx_str_t *json);
static void ngx_http_cast_sent_release(ngx_http_cast_sent_t *sent);
static void ngx_http_cast_sub_unacked(ngx_http_cast_sub_t *sub,
    ngx_http_cast_sent_t *sent);
static void ngx_http_cast_sub_unacked_free(ngx_http_cast_sub_t *sub);
static void ngx_http_cast_sub_timer_handler(ngx_event_t *ev);
static void ngx_http_cast_sub_timer(ngx_http_cast_sub_t *sub);
static void ngx_http_cast_ack_expired(ngx_http_cast_sub_t *sub,
    ngx_http_cast_unacked_t *u);
static void ngx_http_cast_syncerror(ngx_http_cast_hub_t *hub,
    ngx_http_cast_sub_t *sub, ngx_http_cast_sent_t *sent, const char *why);
static ngx_int_t ngx_http_cast_made_apply(ngx_http_cast_append_t *a,
    json_t *state);
static void ngx_http_cast_made_done(void *data, ngx_http_cast_result_t *res);
static void ngx_http_cast_heartbeat_handler(ngx_event_t *ev);
static void ngx_http_cast_lease_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_cast_topic_counted(ngx_str_t *topic);
static ngx_int_t ngx_http_cast_str_eq(ngx_str_t *a, ngx_str_t *b);


ngx_http_cast_hub_t *
ngx_http_cast_hub_create(ngx_cycle_t *cycle, ngx_http_cast_store_t *store)
{
    ngx_str_t             registry;
    ngx_http_cast_hub_t  *hub;

    hub = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_hub_t));
    if (hub == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&hub->topics, &hub->topics_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&hub->subs, &hub->subs_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&hub->conferences, &hub->conferences_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&hub->members, &hub->members_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&hub->wildcard);
    ngx_queue_init(&hub->heartbeats);
    ngx_queue_init(&hub->jobs);

    hub->log = cycle->log;
    hub->store = store;

    hub->jobs_ev.handler = ngx_http_cast_jobs_handler;
    hub->jobs_ev.data = hub;
    hub->jobs_ev.log = cycle->log;

    store->hooks.hub = hub;
    store->hooks.event = ngx_http_cast_hub_on_event;
    store->hooks.ended = ngx_http_cast_hub_on_ended;
    store->hooks.renewed = ngx_http_cast_hub_on_renewed;
    store->hooks.counters = ngx_http_cast_hub_on_counters;
    store->hooks.bound = ngx_http_cast_hub_on_bound;

    hub->heartbeat_ev.handler = ngx_http_cast_heartbeat_handler;
    hub->heartbeat_ev.data = hub;
    hub->heartbeat_ev.log = cycle->log;
    hub->heartbeat_ev.cancelable = 1;
    ngx_add_timer(&hub->heartbeat_ev, NGX_HTTP_CAST_HEARTBEAT * 1000);

    /* every worker follows the conferences: they decide where events go */

    ngx_str_set(&registry, NGX_HTTP_CAST_CONF_TOPIC);
    store->listen(store, &registry, 1);

    return hub;
}


/*
 * Worker exit: sockets are closed with 1001 and their records unbound
 * (after a reload the clients bind them again), then the store goes.
 */

void
ngx_http_cast_hub_destroy(ngx_http_cast_hub_t *hub)
{
    ngx_queue_t          *q;
    ngx_rbtree_node_t    *node;
    ngx_http_cast_sub_t  *sub;
    ngx_http_cast_job_t  *job;

    ngx_http_cast_event_cancel(&hub->heartbeat_ev);

    while (hub->subs.root != hub->subs.sentinel) {
        node = ngx_rbtree_min(hub->subs.root, hub->subs.sentinel);
        sub = (ngx_http_cast_sub_t *)
                  ((u_char *) node - offsetof(ngx_http_cast_sub_t, sn));

        /* Close 1001, no denial: the client binds again, elsewhere */
        ngx_http_cast_sub_end(sub, NULL, NULL);

        hub->store->unbind(hub->store, &sub->record.id);

        if (!sub->replaying) {
            ngx_http_cast_sub_free(sub);
        }
    }

    /* the worker exits: what waited is dropped */

    if (hub->jobs_ev.posted) {
        ngx_delete_posted_event(&hub->jobs_ev);
    }

    while (!ngx_queue_empty(&hub->jobs)) {
        q = ngx_queue_head(&hub->jobs);
        ngx_queue_remove(q);
        job = ngx_queue_data(q, ngx_http_cast_job_t, queue);
        ngx_free(job->data);
        ngx_free(job);
    }

    while (hub->conferences.root != hub->conferences.sentinel) {
        node = ngx_rbtree_min(hub->conferences.root,
                              hub->conferences.sentinel);
        (void) ngx_http_cast_conf_set(hub, &((ngx_str_node_t *) node)->str,
                                      NULL, 0);
    }

    hub->store->exit(hub->store);
}


/*
 * A hub.events list (split and checked by ngx_http_cast_text_events()):
 * the names as granted and in lowercase, for matching; "*" means every
 * event (cast dialect only).
 */

ngx_int_t
ngx_http_cast_events_parse(ngx_str_t *list, ngx_uint_t dialect,
    ngx_http_cast_events_t *events, ngx_str_t *err)
{
    u_char                     *p, *block, *text, *lower;
    size_t                      size;
    ngx_str_t                  *t;
    ngx_uint_t                  n, i;
    const char                 *msg;
    ngx_http_cast_text_list_t   names;

    /*
     * The split names point into the list: a scratch array on the stack,
     * not 4 KB of the subscription's pool for as long as it lives.
     */

    ngx_str_t                   tokens[NGX_HTTP_CAST_MAX_EVENTS];

    ngx_memzero(events, sizeof(ngx_http_cast_events_t));

    names.names = tokens;
    names.max = NGX_HTTP_CAST_MAX_EVENTS;
    names.max_name = NGX_HTTP_CAST_MAX_EVENT_NAME;
    names.allow_all = (dialect != NGX_HTTP_CAST_DIALECT_FHIRCAST);

    if (ngx_http_cast_text_events(list->data, list->len, &names, &msg)
        != NGX_OK)
    {
        err->data = (u_char *) msg;
        err->len = ngx_strlen(msg);
        return NGX_DECLINED;
    }

    n = names.n;

    /* the text "a,b,c" (the names and n - 1 commas), then the lowercase */
    size = 2 * names.size + n;

    block = ngx_alloc(n * sizeof(ngx_str_t) + size, ngx_cycle->log);
    if (block == NULL) {
        return NGX_ERROR;
    }

    t = (ngx_str_t *) block;
    text = block + n * sizeof(ngx_str_t);

    p = text;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, tokens[i].data, tokens[i].len);
    }

    lower = p;

    for (i = 0; i < n; i++) {
        t[i].data = lower;
        t[i].len = tokens[i].len;
        ngx_strlow(lower, tokens[i].data, tokens[i].len);
        lower += tokens[i].len;
    }

    events->block = block;
    events->names = t;
    events->n = n;
    events->text.data = text;
    events->text.len = p - text;
    events->all = names.all;

    return NGX_OK;
}


void
ngx_http_cast_events_free(ngx_http_cast_events_t *events)
{
    if (events->block) {
        ngx_free(events->block);
        events->block = NULL;
    }
}


void
ngx_http_cast_hub_subscribe(ngx_http_cast_hub_t *hub,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data)
{
    u_char  random[16];

    /* an id is 128 bits from the OS CSPRNG */

    if (record->id.len != NGX_HTTP_CAST_ID_LEN) {
        ngx_http_cast_hub_fail(done, data, NGX_HTTP_CAST_FAILED);
        return;
    }

    if (ngx_http_cast_random(random, sizeof(random)) != NGX_OK) {
        ngx_http_cast_hub_fail(done, data, NGX_HTTP_CAST_FAILED);
        return;
    }

    (void) ngx_hex_dump(record->id.data, random, sizeof(random));

    record->counted = ngx_http_cast_topic_counted(&record->topic);

    hub->store->create(hub->store, record, done, data);
}


void
ngx_http_cast_hub_renew(ngx_http_cast_hub_t *hub,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data)
{
    hub->store->renew(hub->store, record, done, data);
}


void
ngx_http_cast_hub_unsubscribe(ngx_http_cast_hub_t *hub, ngx_str_t *id,
    ngx_str_t *topic, const char *reason, ngx_http_cast_done_pt done,
    void *data)
{
    ngx_str_t  r;

    r.data = (u_char *) reason;
    r.len = ngx_strlen(reason);

    hub->store->remove(hub->store, id, topic, &r, done, data);
}


void
ngx_http_cast_hub_unsubscribe_matching(ngx_http_cast_hub_t *hub,
    ngx_str_t *topic, ngx_uint_t field, ngx_str_t *value,
    const char *reason, ngx_http_cast_done_pt done, void *data)
{
    ngx_str_t  r;

    r.data = (u_char *) reason;
    r.len = ngx_strlen(reason);

    hub->store->remove_matching(hub->store, topic, field, value, &r, done,
                                data);
}


void
ngx_http_cast_hub_reset(ngx_http_cast_hub_t *hub, ngx_http_cast_done_pt done,
    void *data)
{
    hub->store->reset(hub->store, done, data);
}


/*
 * The store appends the event to its topic with the state the state
 * function computes, and hands it to every worker's sockets (this one's
 * too) in the topic's order.  The event must stay valid until done.
 */

void
ngx_http_cast_hub_publish(ngx_http_cast_hub_t *hub, ngx_http_cast_event_t *ev,
    ngx_http_cast_done_pt done, void *data)
{
    u_char                  *p;
    json_t                  *value;
    ngx_str_t               *host;
    ngx_http_cast_hub_op_t  *op;
    ngx_http_cast_member_t  *member;

    op = ngx_http_cast_hub_op(hub, done, data);
    if (op == NULL) {
        return;
    }

    op->append.topic = ev->topic;
    op->append.name = ev->lowercase;
    op->append.json = ev->json;

    /*
     * A topic in a conference: its events go to the host topic's log,
     * where all of the conference's events take one order.
     */

    ngx_http_cast_conf_need(hub);

    member = ngx_http_cast_member_find(hub, &ev->topic);
    host = member ? &member->conf->sn.str : NULL;

    if (host && !ngx_http_cast_str_eq(host, &ev->topic)) {
        op->key = ngx_alloc(ev->lowercase.len + 1 + ev->topic.len
                            + host->len, hub->log);
        if (op->key == NULL) {
            ngx_free(op);
            ngx_http_cast_hub_fail(done, data, NGX_HTTP_CAST_FAILED);
            return;
        }

        op->append.name.data = op->key;
        p = ngx_sprintf(op->key, "%V%c%V", &ev->lowercase,
                        NGX_HTTP_CAST_ORIGIN_SEP, &ev->topic);
        op->append.name.len = p - op->key;

        op->append.log.data = p;
        op->append.log.len = host->len;
        (void) ngx_cpymem(p, host->data, host->len);
    }

    value = json_object_get(ev->root, "id");

    if (json_is_string(value)) {
        op->append.id.data = (u_char *) json_string_value(value);
        op->append.id.len = json_string_length(value);
    }
    op->append.counted = ngx_http_cast_topic_counted(&ev->topic);
    op->append.apply = ngx_http_cast_hub_apply;
    op->append.event = ev;
    op->append.done = ngx_http_cast_hub_published;
    op->append.data = op;

    hub->store->append(hub->store, &op->append);
}


/*
 * The state function, on the state the store has: it may refuse the
 * event, or change what subscribers get (content sharing's versions):
 * the store publishes a->json as apply() left it.
 */

static ngx_int_t
ngx_http_cast_hub_apply(ngx_http_cast_append_t *a, json_t *state)
{
    ngx_int_t                rc;
    ngx_http_cast_hub_op_t  *op;

    op = a->data;

    rc = ngx_http_cast_state_apply(state, a->event, &op->outcome);

    a->json = op->outcome.json;

    if (rc == NGX_ABORT) {
        a->refused = op->outcome.refused;
    }

    return rc;
}


static void
ngx_http_cast_hub_published(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_hub_op_t *op = data;

    if (res->rc == NGX_HTTP_CAST_DONE && !res->again) {
        op->hub->events_in++;
        ngx_str_null(&res->reason);

    } else {
        res->reason = op->outcome.reason;
    }

    op->done(op->data, res);

    ngx_http_cast_outcome_free(&op->outcome);

    if (op->key) {
        ngx_free(op->key);
    }

    ngx_free(op);
}


void
ngx_http_cast_hub_context(ngx_http_cast_hub_t *hub, ngx_str_t *topic,
    ngx_uint_t dialect, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_hub_op_t  *op;

    op = ngx_http_cast_hub_op(hub, done, data);
    if (op == NULL) {
        return;
    }

    op->dialect = dialect;

    hub->store->state(hub->store, topic, ngx_http_cast_hub_context_state, op);
}


static void
ngx_http_cast_hub_context_state(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_hub_op_t *op = data;

    json_t  *context;

    context = NULL;

    if (res->rc == NGX_HTTP_CAST_DONE) {
        context = ngx_http_cast_state_context(res->json, op->dialect);
        res->json = context;

        if (context == NULL) {
            res->rc = NGX_HTTP_CAST_FAILED;
        }
    }

    op->done(op->data, res);

    json_decref(context);
    ngx_free(op);
}


void
ngx_http_cast_hub_bind(ngx_http_cast_hub_t *hub, ngx_str_t *id,
    ngx_http_cast_done_pt done, void *data)
{
    hub->store->bind(hub->store, id, done, data);
}


void
ngx_http_cast_hub_status(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data)
{
    hub->store->status(hub->store, done, data);
}


void
ngx_http_cast_hub_claim(ngx_http_cast_hub_t *hub, ngx_str_t *key,
    ngx_msec_t ttl, ngx_http_cast_done_pt done, void *data)
{
    hub->store->claim(hub->store, key, ttl, done, data);
}


void
ngx_http_cast_hub_incr(ngx_http_cast_hub_t *hub, ngx_str_t *key,
    ngx_http_cast_done_pt done, void *data)
{
    hub->store->incr(hub->store, key, done, data);
}


/*
 * An ack (reference 2.6): a 4xx or 5xx one of a context change this
 * socket was sent makes the topic's other "syncerror" subscriptions hear
 * of it; any ack ends the wait for it (cast_ack_timeout).
 */

void
ngx_http_cast_hub_ack(ngx_http_cast_hub_t *hub, ngx_http_cast_sub_t *sub,
    ngx_str_t *id, ngx_uint_t status)
{
    ngx_uint_t                i;
    ngx_queue_t              *q;
    ngx_http_cast_sent_t     *sent;
    ngx_http_cast_topic_t    *topic;
    ngx_http_cast_unacked_t  *u;

    hub->acks++;
    hub->store->changed(hub->store);

    if (sub == NULL || sub->ended || sub->topic == NULL) {
        return;
    }

    for (q = ngx_queue_head(&sub->unacked);
         q != ngx_queue_sentinel(&sub->unacked);
         q = ngx_queue_next(q))
    {
        u = ngx_queue_data(q, ngx_http_cast_unacked_t, queue);

        if (ngx_http_cast_str_eq(&u->sent->id, id)) {
            ngx_queue_remove(q);
            sub->nunacked--;
            ngx_http_cast_sent_release(u->sent);
            ngx_free(u);
            break;
        }
    }

    if (status < 400 || status > 599) {
        return;
    }

    topic = sub->topic;
    sent = NULL;

    for (i = 0; i < NGX_HTTP_CAST_SENT_KEEP; i++) {
        if (topic->sent[i] && ngx_http_cast_str_eq(&topic->sent[i]->id, id)
            && ngx_http_cast_sub_matches(sub, &topic->sent[i]->lowercase))
        {
            sent = topic->sent[i];
            break;
        }
    }

    if (sent == NULL) {
        /* not a context change it was sent lately: no syncerror */
        ngx_log_error(NGX_LOG_INFO, sub->log ? sub->log : hub->log, 0,
                      "cast: subscription %*s... acknowledged \"%V\" with "
                      "%ui, not a context change it was sent lately",
                      (size_t) 8, sub->record.id.data, id, status);
        return;
    }

    ngx_http_cast_syncerror(hub, sub, sent,
                            status < 500 ? "refused to follow context"
                                         : "failed to follow context");
}


/*
 * The syncerror of reference 3.4, published on the topic like any event
 * (every worker and host delivers it), to every "syncerror" subscription
 * but the failing one.
 */

static void
ngx_http_cast_syncerror(ngx_http_cast_hub_t *hub, ngx_http_cast_sub_t *sub,
    ngx_http_cast_sent_t *sent, const char *why)
{
    u_char                 id[NGX_HTTP_CAST_UUID_LEN];
    u_char                 ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    u_char                 label[sizeof("subscription ...") + 8];
    u_char                *diag;
    size_t                 len;
    json_t                *event;
    ngx_str_t             *who, anon, *topic;

    if (ngx_http_cast_new_uuid(id) != NGX_OK) {
        return;
    }

    ngx_http_cast_timestamp(ts);

    who = sub->record.name.len ? &sub->record.name
          : sub->record.product_name.len ? &sub->record.product_name
          : NULL;

    if (who == NULL) {
        anon.data = label;
        anon.len = ngx_sprintf(label, "subscription %*s...", (size_t) 8,
                               sub->record.id.data)
                   - label;
        who = &anon;
    }

    /* "<who> refused to follow context" */

    len = who->len + 1 + ngx_strlen(why);

    diag = ngx_alloc(len, hub->log);
    if (diag == NULL) {
        return;
    }

    (void) ngx_sprintf(diag, "%V %s", who, why);

    topic = &sub->record.topic;

    event = json_pack("{s:s%,s:s%,s:{s:s%,s:s,s:[{s:s,s:{s:s,s:[{"
                      "s:s,s:s,s:s%,s:{s:[{s:s,s:s%},{s:s,s:s%},"
                      "{s:s,s:s%}]}}]}}]}}",
                      "timestamp", (char *) ts, sizeof(ts),
                      "id", (char *) id, sizeof(id),
                      "event",
                      "hub.topic", (char *) topic->data, topic->len,
                      "hub.event", "syncerror",
                      "context",
                      "key", "operationoutcome",
                      "resource",
                      "resourceType", "OperationOutcome",
                      "issue",
                      "severity", "warning",
                      "code", "processing",
                      "diagnostics", (char *) diag, len,
                      "details", "coding",
                      "system",
                      "https://fhircast.hl7.org/events/syncerror/eventid",
                      "code", (char *) sent->id.data, sent->id.len,
                      "system",
                      "https://fhircast.hl7.org/events/syncerror/eventname",
                      "code", (char *) sent->name.data, sent->name.len,
                      "system",
                      "https://fhircast.hl7.org/events/syncerror/"
                      "subscribername",
                      "code", (char *) who->data, who->len);
    ngx_free(diag);

    if (event == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, sub->log ? sub->log : hub->log, 0,
                  "cast: syncerror on topic \"%V\": %V %s (event \"%V\" "
                  "%V)", topic, who, why, &sent->name, &sent->id);

    /* the subscription that refused does not get it */

    ngx_http_cast_made_send(hub, topic, event, id, "syncerror",
                            &sub->record.id, 0);
}


/*
 * An event the hub makes, into "topic" (with "follow", as a client's
 * event would go: to its conference's log if it is in one); "except":
 * the subscription that must not get it.  The event's reference is
 * taken.
 */

static void
ngx_http_cast_made_send(ngx_http_cast_hub_t *hub, ngx_str_t *topic,
    json_t *event, u_char *id, const char *name, ngx_str_t *except,
    ngx_uint_t follow)
{
    u_char                  *p;
    size_t                   len, klen;
    ngx_str_t               *log;
    ngx_http_cast_made_t    *made;
    ngx_http_cast_member_t  *member;

    log = NULL;

    if (follow) {
        member = ngx_http_cast_member_find(hub, topic);

        if (member && !ngx_http_cast_str_eq(&member->conf->sn.str, topic)) {
            log = &member->conf->sn.str;
        }
    }

    len = json_dumpb(event, NULL, 0, JSON_COMPACT);

    klen = ngx_strlen(name) + (except ? 1 + except->len : 0)
           + (log ? 1 + topic->len + log->len : 0);

    made = (len == 0) ? NULL
           : ngx_calloc(sizeof(ngx_http_cast_made_t) + topic->len + len
                        + klen, hub->log);
    if (made == NULL) {
        json_decref(event);
        return;
    }

    p = ngx_cpymem(made->data, topic->data, topic->len);

    if (json_dumpb(event, (char *) p, len, JSON_COMPACT) != len) {
        json_decref(event);
        ngx_free(made);
        return;
    }

    json_decref(event);

    made->hub = hub;

    made->append.topic.data = made->data;
    made->append.topic.len = topic->len;
    made->append.json.data = p;
    made->append.json.len = len;

    p += len;
    made->append.name.data = p;
    p = ngx_cpymem(p, name, ngx_strlen(name));

    if (except) {
        p = ngx_sprintf(p, "%c%V", NGX_HTTP_CAST_KEY_SEP, except);
    }

    if (log) {
        p = ngx_sprintf(p, "%c%V", NGX_HTTP_CAST_ORIGIN_SEP, topic);
        made->append.name.len = p - made->append.name.data;

        made->append.log.data = p;
        made->append.log.len = log->len;
        p = ngx_cpymem(p, log->data, log->len);

    } else {
        made->append.name.len = p - made->append.name.data;
    }

    ngx_memcpy(made->id, id, NGX_HTTP_CAST_UUID_LEN);
    made->append.id.data = made->id;
    made->append.id.len = NGX_HTTP_CAST_UUID_LEN;
    made->append.counted = 1;
    made->append.apply = ngx_http_cast_made_apply;
    made->append.done = ngx_http_cast_made_done;
    made->append.data = made;

    /* often made in a store's hook (a subscription ended) */
    ngx_http_cast_job_add(hub, ngx_http_cast_made_run, made);
}


static void
ngx_http_cast_made_run(ngx_http_cast_hub_t *hub, void *data)
{
    ngx_http_cast_made_t *made = data;

    hub->store->append(hub->store, &made->append);
}


/* a syncerror changes no state */

static ngx_int_t
ngx_http_cast_made_apply(ngx_http_cast_append_t *a, json_t *state)
{
    return NGX_DECLINED;
}


static void
ngx_http_cast_made_done(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_made_t *made = data;

    if (res->rc == NGX_HTTP_CAST_DONE) {
        made->hub->events_in++;

    } else {
        ngx_log_error(NGX_LOG_WARN, made->hub->log, 0,
                      "cast: a \"%V\" event on topic \"%V\" could not be "
                      "published (%ui)", &made->append.name,
                      &made->append.topic, res->rc);
    }

    ngx_free(made);
}


ngx_http_cast_sub_t *
ngx_http_cast_hub_attach(ngx_http_cast_hub_t *hub,
    ngx_http_cast_record_t *record, void *socket, ngx_log_t *log,
    ngx_http_cast_send_pt send, ngx_http_cast_close_pt close,
    ngx_msec_t ack_timeout)
{
    u_char                  ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    ngx_str_t               err, none, reason;
    ngx_http_cast_sub_t    *sub;
    ngx_http_cast_topic_t  *topic;

    /* one block: the subscription and its record's strings */

    sub = ngx_http_cast_sub_alloc(record, hub->log);
    if (sub == NULL) {
        goto failed;
    }

    sub->hub = hub;
    sub->socket = socket;
    sub->log = log;
    sub->send = send;
    sub->close = close;
    ngx_queue_init(&sub->held);
    ngx_queue_init(&sub->heartbeat);
    ngx_queue_init(&sub->unacked);

    sub->ack_timeout = ack_timeout;
    sub->timer_ev.handler = ngx_http_cast_sub_timer_handler;
    sub->timer_ev.data = sub;
    sub->timer_ev.log = hub->log;
    sub->timer_ev.cancelable = 1;
    sub->lease_at = ngx_http_cast_sub_lease_at(sub);

    if (ngx_http_cast_events_parse(&sub->record.events, sub->record.dialect,
                                   &sub->events, &err)
        != NGX_OK)
    {
        ngx_free(sub);
        goto failed;
    }

    /* latest-value events: names only, checked at subscribe */

    if (sub->record.latest.len) {
        sub->latest = ngx_calloc(sizeof(ngx_http_cast_events_t), log);

        if (sub->latest == NULL
            || ngx_http_cast_events_parse(&sub->record.latest,
                                          NGX_HTTP_CAST_DIALECT_FHIRCAST,
                                          sub->latest, &err)
               != NGX_OK)
        {
            if (sub->latest) {
                ngx_free(sub->latest);
            }

            ngx_http_cast_events_free(&sub->events);
            ngx_free(sub);
            goto failed;
        }
    }

    sub->sn.str = sub->record.id;
    sub->sn.node.key = ngx_crc32_long(sub->sn.str.data, sub->sn.str.len);

    if (sub->record.topic.len == 1 && sub->record.topic.data[0] == '*') {
        if (ngx_queue_empty(&hub->wildcard)) {
            hub->store->listen(hub->store, &sub->record.topic, 1);
        }

        ngx_queue_insert_tail(&hub->wildcard, &sub->link);

    } else {
        topic = ngx_http_cast_topic_get(hub, &sub->record.topic);
        if (topic == NULL) {
            ngx_http_cast_events_free(&sub->events);
            ngx_http_cast_sub_free_latest(sub);
            ngx_free(sub);
            goto failed;
        }

        sub->topic = topic;
        ngx_queue_insert_tail(&topic->subs, &sub->link);

        /* in a conference: its log is listened to as well */
        ngx_http_cast_conf_need(hub);
        ngx_http_cast_conf_member_pin(hub, &topic->sn.str);
    }

    ngx_rbtree_insert(&hub->subs, &sub->sn.node);
    hub->nsubs++;

    ngx_http_cast_sub_lease(sub);
    ngx_http_cast_sub_heartbeat(sub);

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "cast: socket bound to subscription %*s... on topic "
                  "\"%V\"", (size_t) 8, sub->record.id.data,
                  &sub->record.topic);

    /* SPEC 3.2: connection.established (cast), confirmation, replay */

    if (sub->record.dialect == NGX_HTTP_CAST_DIALECT_CAST) {
        ngx_http_cast_timestamp(ts);

        if (ngx_http_cast_sub_send_hello(sub, ts) != NGX_OK) {
            goto internal;
        }
    }

    if (ngx_http_cast_sub_send_confirmation(sub, "subscribe", NULL)
        != NGX_OK)
    {
        goto internal;
    }

    if (sub->topic == NULL) {
        return sub;
    }

    /* live events wait behind the replay (Redis mode: a round trip) */

    sub->replaying = 1;
    hub->store->state(hub->store, &sub->record.topic,
                      ngx_http_cast_hub_replay, sub);

    return sub;

internal:

    /* the socket closes itself with 1001 */
    ngx_http_cast_hub_detach(sub, "internal error");
    return NULL;

failed:

    ngx_str_null(&none);
    ngx_str_set(&reason, "internal error");
    hub->store->remove(hub->store, &record->id, &none, &reason, NULL, NULL);

    return NULL;
}


static void
ngx_http_cast_hub_replay(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_sub_t *sub = data;

    json_t                 *derived;
    ngx_uint_t              i, n;
    ngx_http_cast_sent_t   *sent;
    ngx_http_cast_frame_t  *frame;
    ngx_http_cast_replay_t  replay[NGX_HTTP_CAST_MAX_OPENS];

    sub->replaying = 0;

    if (sub->ended) {
        /* the socket went while the state was on its way */
        ngx_http_cast_sub_free(sub);
        return;
    }

    if (res->rc == NGX_HTTP_CAST_DONE) {
        /* as originally published, if the subscription wants them */

        /* fhircast: derived opens too (reference 3.3.3) */

        derived = (sub->record.dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST)
                  ? json_array() : NULL;

        n = ngx_http_cast_state_replay(res->json, ngx_http_cast_sub_wants,
                                       sub, derived, replay,
                                       NGX_HTTP_CAST_MAX_OPENS);

        for (i = 0; i < n && sub->socket; i++) {
            frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_TEXT,
                                               replay[i].text.data,
                                               replay[i].text.len);
            if (frame == NULL) {
                break;
            }

            (void) sub->send(sub->socket, frame, 0);

            if (sub->replayed == NULL) {
                sub->replayed = ngx_calloc(sizeof(ngx_http_cast_replayed_t),
                                           sub->hub->log);
            }

            if (sub->replayed && sub->replayed->n < 4) {
                sub->replayed->frames[sub->replayed->n++] = frame;
                sub->replayed->at = ngx_current_msec;

            } else {
                ngx_http_cast_frame_release(frame);
            }

            /* a replay is acknowledged as any event (reference 2.4) */

            sent = ngx_http_cast_sent_add(sub->hub, sub->topic,
                                          &replay[i].text);

            if (sent && sub->ack_timeout) {
                ngx_http_cast_sub_unacked(sub, sent);
            }
        }

        json_decref(derived);


    } else {
        ngx_log_error(NGX_LOG_INFO, sub->hub->log, 0,
                      "cast: no replay for subscription %*s...: the store "
                      "did not answer", (size_t) 8, sub->record.id.data);
    }

    ngx_http_cast_sub_release_held(sub, 1);
}


/* the frames just replayed to a socket, held a while */

static void
ngx_http_cast_sub_drop_replayed(ngx_http_cast_sub_t *sub)
{
    ngx_http_cast_replayed_t  *rp;

    rp = sub->replayed;

    if (rp == NULL) {
        return;
    }

    while (rp->n) {
        ngx_http_cast_frame_release(rp->frames[--rp->n]);
    }

    ngx_free(rp);
    sub->replayed = NULL;
}


static void
ngx_http_cast_sub_free_latest(ngx_http_cast_sub_t *sub)
{
    if (sub->latest) {
        ngx_http_cast_events_free(sub->latest);
        ngx_free(sub->latest);
        sub->latest = NULL;
    }
}


/*
 * A live frame that is one just replayed (the same bytes) within 5 s:
 * the socket has it.
 */

static ngx_int_t
ngx_http_cast_sub_was_replayed(ngx_http_cast_sub_t *sub,
    ngx_http_cast_frame_t *frame)
{
    ngx_uint_t                 i;
    ngx_http_cast_replayed_t  *rp;

    rp = sub->replayed;

    if (ngx_current_msec - rp->at > 5000) {
        ngx_http_cast_sub_drop_replayed(sub);
        return 0;
    }

    for (i = 0; i < rp->n; i++) {
        if (rp->frames[i]->len == frame->len
            && ngx_memcmp(rp->frames[i]->data, frame->data, frame->len)
               == 0)
        {
            ngx_http_cast_frame_release(rp->frames[i]);
            rp->frames[i] = rp->frames[--rp->n];

            if (rp->n == 0) {
                ngx_http_cast_sub_drop_replayed(sub);
            }

            return 1;
        }
    }

    return 0;
}


static void
ngx_http_cast_sub_release_held(ngx_http_cast_sub_t *sub, ngx_uint_t send)
{
    ngx_queue_t           *q;
    ngx_http_cast_held_t  *held;

    while (!ngx_queue_empty(&sub->held)) {
        q = ngx_queue_head(&sub->held);
        ngx_queue_remove(q);
        held = ngx_queue_data(q, ngx_http_cast_held_t, queue);
        sub->nheld--;

        if (send && sub->socket
            && !(sub->replayed
                 && ngx_http_cast_sub_was_replayed(sub, held->frame)))
        {
            if (sub->send(sub->socket, held->frame,
                          NGX_HTTP_CAST_SEND_LIVE
                          |ngx_http_cast_sub_latest(sub, held->frame))
                == NGX_OK)
            {
                sub->hub->events_out++;

            } else {
                sub->hub->dropped++;
            }
        }

        ngx_http_cast_frame_release(held->frame);
        ngx_free(held);
    }
}


/* the socket went: its subscription ends everywhere */

void
ngx_http_cast_hub_detach(ngx_http_cast_sub_t *sub, const char *reason)
{
    ngx_str_t             r, none;
    ngx_http_cast_hub_t  *hub;

    hub = sub->hub;

    ngx_str_null(&none);
    sub->socket = NULL;

    if (reason == NULL) {
        ngx_str_set(&r, "worker exit");
        ngx_http_cast_sub_end(sub, NULL, &r);
        hub->store->unbind(hub->store, &sub->record.id);

    } else {
        r.data = (u_char *) reason;
        r.len = ngx_strlen(reason);

        ngx_http_cast_sub_end(sub, NULL, &r);
        hub->store->remove(hub->store, &sub->record.id, &none, &r, NULL,
                           NULL);
    }

    if (!sub->replaying) {
        ngx_http_cast_sub_free(sub);
    }
}


/*
 * A subscription of this worker ends: it leaves the hub at once.  A
 * socket still attached gets the denial and Close 1000, or with neither
 * reason (worker exit) Close 1001.  The memory goes in sub_free(), after
 * a replay on its way if any.
 */

static void
ngx_http_cast_sub_end(ngx_http_cast_sub_t *sub, const char *reason,
    ngx_str_t *reason_str)
{
    ngx_str_t             text;
    ngx_http_cast_hub_t  *hub;

    if (sub->ended) {
        return;
    }

    hub = sub->hub;
    sub->ended = 1;

    if (reason_str) {
        text = *reason_str;

    } else if (reason) {
        text.data = (u_char *) reason;
        text.len = ngx_strlen(reason);

    } else {
        ngx_str_set(&text, "worker exit");
    }

    ngx_log_error(NGX_LOG_INFO, sub->log ? sub->log : hub->log, 0,
                  "cast: subscription %*s... on topic \"%V\" ended: %V",
                  (size_t) 8, sub->record.id.data, &sub->record.topic,
                  &text);

    if (sub->socket) {
        ngx_http_cast_sub_release_held(sub, 0);

        if (reason) {
            (void) ngx_http_cast_sub_send_confirmation(sub, "denied",
                                                       reason);

            sub->close(sub->socket, NGX_HTTP_CAST_WS_NORMAL, reason);

        } else {
            sub->close(sub->socket, NGX_HTTP_CAST_WS_GOING_AWAY,
                       "going away");
        }

        sub->socket = NULL;
    }

    /* the connection and its log may go now */
    sub->log = NULL;

    ngx_http_cast_event_cancel(&sub->timer_ev);
    ngx_http_cast_sub_unacked_free(sub);

    if (!ngx_queue_empty(&sub->heartbeat)) {
        ngx_queue_remove(&sub->heartbeat);
        ngx_queue_init(&sub->heartbeat);
    }

    ngx_queue_remove(&sub->link);
    ngx_rbtree_delete(&hub->subs, &sub->sn.node);
    hub->nsubs--;

    if (sub->topic) {
        ngx_http_cast_topic_release(hub, sub->topic);
        sub->topic = NULL;
        ngx_http_cast_conf_member_pin(hub, &sub->record.topic);

        /* G2: the topic's other subscriptions hear that it went */
        ngx_http_cast_removed_event(sub, &text);

    } else if (ngx_queue_empty(&hub->wildcard)) {
        hub->store->listen(hub->store, &sub->record.topic, 0);
    }
}


static void
ngx_http_cast_sub_free(ngx_http_cast_sub_t *sub)
{
    ngx_http_cast_sub_release_held(sub, 0);
    ngx_http_cast_sub_drop_replayed(sub);
    ngx_http_cast_events_free(&sub->events);
    ngx_http_cast_sub_free_latest(sub);

    if (sub->writable) {
        ngx_free(sub->writable);
    }

    ngx_free(sub);
}


/* the store's news: an event for this worker's sockets */

static void
ngx_http_cast_hub_on_event(void *data, ngx_str_t *topic_name,
    ngx_str_t *name, ngx_str_t *json, ngx_uint_t which)
{
    ngx_http_cast_hub_t *hub = data;

    u_char                 *comma, *sep;
    ngx_str_t               except, lowercase, origin;
    ngx_uint_t              delivered;
    ngx_http_cast_conf_t   *conf;
    ngx_http_cast_frame_t  *frame;
    ngx_http_cast_topic_t  *topic;
    ngx_http_cast_fan_t     fan;

    if (topic_name->len == sizeof(NGX_HTTP_CAST_CONF_TOPIC) - 1
        && ngx_strncmp(topic_name->data, NGX_HTTP_CAST_CONF_TOPIC,
                       topic_name->len) == 0)
    {
        ngx_http_cast_conf_changed(hub, json);
        return;
    }

    frame = NULL;
    delivered = 0;

    /* "<name>\x1f<topic>": an event of <topic>, in a conference's log */

    lowercase = *name;
    ngx_str_null(&origin);

    sep = ngx_strlchr(name->data, name->data + name->len,
                      NGX_HTTP_CAST_ORIGIN_SEP);
    if (sep) {
        lowercase.len = sep - name->data;
        origin.data = sep + 1;
        origin.len = name->data + name->len - origin.data;
    }

    /* "<name>,<id>": the subscription <id> does not get it */

    name = &lowercase;
    ngx_str_null(&except);

    comma = ngx_strlchr(name->data, name->data + name->len,
                        NGX_HTTP_CAST_KEY_SEP);
    if (comma) {
        except.data = comma + 1;
        except.len = name->data + name->len - except.data;
        lowercase.len = comma - name->data;
    }

    fan.hub = hub;
    fan.name = name;
    fan.key_topic = topic_name;
    fan.json = json;
    fan.except = &except;
    fan.frame = &frame;
    fan.sent = NULL;
    fan.track = ngx_http_cast_context_change(name);
    fan.source = NULL;
    fan.all = 0;

    conf = (which & NGX_HTTP_CAST_DELIVER_TOPIC)
           ? ngx_http_cast_conf_find(hub, topic_name) : NULL;

    if (conf) {
        /* a conference's log: every participant topic's sockets */
        delivered = ngx_http_cast_conf_fan_out(&fan, conf, &origin);
        topic = NULL;

    } else if (which & NGX_HTTP_CAST_DELIVER_TOPIC) {
        topic = ngx_http_cast_topic_find(hub, topic_name);

        /* the conference ended while the event was on its way */

        if (origin.len && !ngx_http_cast_str_eq(&origin, topic_name)) {
            fan.topic = ngx_http_cast_topic_find(hub, &origin);

            if (fan.topic) {
                delivered = ngx_http_cast_fan_out(&fan, &fan.topic->subs);
            }
        }

    } else {
        topic = NULL;
    }

    if (topic) {
        fan.topic = topic;
        delivered = ngx_http_cast_fan_out(&fan, &topic->subs);

        if (name->len > 5
            && ngx_strncmp(name->data + name->len - 5, "-open", 5) == 0)
        {
            delivered += ngx_http_cast_derive(&fan, json);
        }
    }

    if (which & NGX_HTTP_CAST_DELIVER_WILDCARD) {
        fan.topic = NULL;
        delivered += ngx_http_cast_fan_out(&fan, &hub->wildcard);
    }

    if (frame) {
        ngx_http_cast_frame_release(frame);
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, hub->log, 0,
                   "cast deliver: \"%V\" on \"%V\", %uz bytes, "
                   "%ui deliveries", name, topic_name, json->len, delivered);
}


static ngx_uint_t
ngx_http_cast_fan_out(ngx_http_cast_fan_t *fan, ngx_queue_t *subs)
{
    ngx_uint_t              n;
    ngx_str_t              *json;
    ngx_queue_t            *q;
    ngx_http_cast_hub_t    *hub;
    ngx_http_cast_sub_t    *sub;
    ngx_http_cast_held_t   *held;
    ngx_http_cast_frame_t **frame;

    n = 0;
    hub = fan->hub;
    json = fan->json;
    frame = fan->frame;

    for (q = ngx_queue_head(subs);
         q != ngx_queue_sentinel(subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_cast_sub_t, link);

        if (sub->socket == NULL
            || (!fan->all && !ngx_http_cast_sub_matches(sub, fan->name))
            || (fan->except->len
                && ngx_http_cast_str_eq(&sub->record.id, fan->except))
            || (fan->source && !ngx_http_cast_sub_derives(sub, fan->source)))
        {
            continue;
        }

        /* a context change on a topic: remembered for acks */

        if (fan->track && fan->topic) {
            if (fan->sent == NULL) {
                fan->sent = ngx_http_cast_sent_add(hub, fan->topic, json);
                fan->track = (fan->sent != NULL);
            }

            if (fan->sent && sub->ack_timeout) {
                ngx_http_cast_sub_unacked(sub, fan->sent);
            }
        }

        if (*frame == NULL) {
            *frame = ngx_http_cast_frame_create_keyed(NGX_HTTP_CAST_WS_TEXT,
                                                      json->data, json->len,
                                   fan->key_topic ? fan->name : NULL,
                                   fan->key_topic);
            if (*frame == NULL) {
                hub->dropped++;
                return n;
            }
        }

        if (sub->replaying) {
            held = (sub->nheld < NGX_HTTP_CAST_MAX_HELD)
                   ? ngx_alloc(sizeof(ngx_http_cast_held_t), hub->log)
                   : NULL;

            if (held == NULL) {
                hub->dropped++;
                continue;
            }

            held->frame = *frame;
            (*frame)->refs++;
            ngx_queue_insert_tail(&sub->held, &held->queue);
            sub->nheld++;
            continue;
        }

        if (sub->replayed && ngx_http_cast_sub_was_replayed(sub, *frame)) {
            continue;
        }

        /* a socket never leaves its queue from here: safe to go on */

        if (sub->send(sub->socket, *frame,
                      NGX_HTTP_CAST_SEND_LIVE
                      |ngx_http_cast_sub_latest(sub, *frame))
            == NGX_OK)
        {
            hub->events_out++;
            n++;

        } else {
            hub->dropped++;
        }
    }

    return n;
}


/*
 * Derived opens (reference 3.3.3): an "<X>-open" delivered here stands
 * for the Patient-, Encounter- and ImagingStudy-open its context implies,
 * for this worker's fhircast subscriptions that listed those and not
 * X-open.  Each worker derives for its own sockets (new ids, the source's
 * timestamp), right after the source: the topic's order holds.
 */

static ngx_uint_t
ngx_http_cast_derive(ngx_http_cast_fan_t *fan, ngx_str_t *json)
{
    json_t                  *derived;
    ngx_uint_t               i, n, delivered;
    ngx_http_cast_fan_t      df;
    ngx_http_cast_frame_t   *frame;
    ngx_http_cast_replay_t   d[NGX_HTTP_CAST_DERIVABLE];

    derived = json_array();
    if (derived == NULL) {
        return 0;
    }

    n = ngx_http_cast_state_derive(json, ngx_http_cast_topic_wants, fan,
                                   derived, d, NGX_HTTP_CAST_DERIVABLE);
    delivered = 0;

    for (i = 0; i < n; i++) {
        frame = NULL;

        df = *fan;
        df.name = &d[i].name;
        df.json = &d[i].text;
        df.frame = &frame;
        df.sent = NULL;
        df.track = 1;
        df.source = fan->name;

        delivered += ngx_http_cast_fan_out(&df, &fan->topic->subs);

        if (frame) {
            ngx_http_cast_frame_release(frame);
        }
    }

    json_decref(derived);

    return delivered;
}


/* a fhircast subscription that did not take the source event */

static ngx_uint_t
ngx_http_cast_sub_derives(ngx_http_cast_sub_t *sub, ngx_str_t *source)
{
    return sub->record.dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST
           && !ngx_http_cast_sub_matches(sub, source);
}


/* someone here takes the derived open "name" */

static ngx_int_t
ngx_http_cast_topic_wants(void *data, ngx_str_t *name)
{
    ngx_http_cast_fan_t *fan = data;

    ngx_queue_t          *q;
    ngx_http_cast_sub_t  *sub;

    for (q = ngx_queue_head(&fan->topic->subs);
         q != ngx_queue_sentinel(&fan->topic->subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_cast_sub_t, link);

        if (sub->socket && ngx_http_cast_sub_derives(sub, fan->name)
            && ngx_http_cast_sub_matches(sub, name)
            && !(fan->except->len
                 && ngx_http_cast_str_eq(&sub->record.id, fan->except)))
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_cast_sub_wants(void *data, ngx_str_t *name)
{
    return ngx_http_cast_sub_matches(data, name);
}


/* acks are followed for "*-open" and "*-close" (reference 3.3.4) */

static ngx_uint_t
ngx_http_cast_context_change(ngx_str_t *lowercase)
{
    size_t   len;
    u_char  *p;

    len = lowercase->len;
    p = lowercase->data;

    return (len > 5 && ngx_strncmp(p + len - 5, "-open", 5) == 0)
           || (len > 6 && ngx_strncmp(p + len - 6, "-close", 6) == 0);
}


/* a context change delivered on a topic: its id and name, kept a while */

static ngx_http_cast_sent_t *
ngx_http_cast_sent_add(ngx_http_cast_hub_t *hub, ngx_http_cast_topic_t *topic,
    ngx_str_t *json)
{
    json_t                *root, *value;
    ngx_str_t              id, name;
    ngx_uint_t             i;
    ngx_http_cast_sent_t  *sent;

    root = NULL;

    if (ngx_http_cast_json_event_id(json, &id, &name) != NGX_OK) {

        /* escaped: as jansson reads it */

        root = json_loadb((char *) json->data, json->len, 0, NULL);
        value = json_object_get(root, "id");

        if (!json_is_string(value)) {
            json_decref(root);
            return NULL;
        }

        id.data = (u_char *) json_string_value(value);
        id.len = json_string_length(value);

        value = json_object_get(json_object_get(root, "event"), "hub.event");

        if (!json_is_string(value)) {
            json_decref(root);
            return NULL;
        }

        name.data = (u_char *) json_string_value(value);
        name.len = json_string_length(value);
    }

    /* already here (a replay of an event sent live) */

    for (i = 0; i < NGX_HTTP_CAST_SENT_KEEP; i++) {
        sent = topic->sent[i];

        if (sent && ngx_http_cast_str_eq(&sent->id, &id)
            && ngx_http_cast_str_eq(&sent->name, &name))
        {
            json_decref(root);
            return sent;
        }
    }

    sent = NULL;

    if (id.len && id.len <= NGX_HTTP_CAST_MAX_ACK_ID
        && name.len <= NGX_HTTP_CAST_MAX_EVENT_NAME)
    {
        sent = ngx_alloc(sizeof(ngx_http_cast_sent_t) + id.len
                         + 2 * name.len, hub->log);
    }

    if (sent == NULL) {
        json_decref(root);
        return NULL;
    }

    sent->refs = 1;
    sent->id.data = sent->data;
    sent->id.len = id.len;
    sent->name.data = ngx_cpymem(sent->data, id.data, id.len);
    sent->name.len = name.len;
    sent->lowercase.data = ngx_cpymem(sent->name.data, name.data, name.len);
    sent->lowercase.len = name.len;
    ngx_strlow(sent->lowercase.data, name.data, name.len);

    json_decref(root);

    if (topic->sent[topic->next]) {
        ngx_http_cast_sent_release(topic->sent[topic->next]);
    }

    topic->sent[topic->next] = sent;
    topic->next = (topic->next + 1) % NGX_HTTP_CAST_SENT_KEEP;

    return sent;
}


static void
ngx_http_cast_sent_release(ngx_http_cast_sent_t *sent)
{
    if (--sent->refs == 0) {
        ngx_free(sent);
    }
}


/*
 * cast_ack_timeout: the socket owes an ack of this context change.  The
 * waits end in the order they began (one timeout): one timer, for the
 * oldest.
 */

static void
ngx_http_cast_sub_unacked(ngx_http_cast_sub_t *sub,
    ngx_http_cast_sent_t *sent)
{
    ngx_http_cast_unacked_t  *u;

    if (sub->nunacked >= NGX_HTTP_CAST_MAX_UNACKED) {
        /* the oldest times out first anyway */
        return;
    }

    u = ngx_alloc(sizeof(ngx_http_cast_unacked_t), sub->hub->log);
    if (u == NULL) {
        return;
    }

    u->sent = sent;
    sent->refs++;
    u->deadline = ngx_current_msec + sub->ack_timeout;

    ngx_queue_insert_tail(&sub->unacked, &u->queue);
    sub->nunacked++;

    /* the oldest decides: a later one only waits behind it */

    if (sub->nunacked == 1) {
        ngx_http_cast_sub_timer(sub);
    }
}


static void
ngx_http_cast_sub_unacked_free(ngx_http_cast_sub_t *sub)
{
    ngx_queue_t              *q;
    ngx_http_cast_unacked_t  *u;

    while (!ngx_queue_empty(&sub->unacked)) {
        q = ngx_queue_head(&sub->unacked);
        ngx_queue_remove(q);

        u = ngx_queue_data(q, ngx_http_cast_unacked_t, queue);
        ngx_http_cast_sent_release(u->sent);
        ngx_free(u);
    }

    sub->nunacked = 0;
}


/*
 * The oldest context change still not acknowledged: when its time is up
 * the subscription is unresponsive (reference 2.10): the others hear of
 * it, and it is unsubscribed.
 */

static void
ngx_http_cast_sub_timer_handler(ngx_event_t *ev)
{
    ngx_http_cast_sub_t      *sub;
    ngx_http_cast_unacked_t  *u;

    sub = ev->data;

    if ((ngx_msec_int_t) (ngx_current_msec - sub->lease_at) >= 0) {
        ngx_http_cast_lease_handler(ev);
        return;
    }

    if (!ngx_queue_empty(&sub->unacked)) {
        u = ngx_queue_data(ngx_queue_head(&sub->unacked),
                           ngx_http_cast_unacked_t, queue);

        if ((ngx_msec_int_t) (u->deadline - ngx_current_msec) <= 0) {
            ngx_http_cast_ack_expired(sub, u);
            return;
        }
    }

    ngx_http_cast_sub_timer(sub);
}


/* the timer, for the lease or the oldest unacknowledged change */

static void
ngx_http_cast_sub_timer(ngx_http_cast_sub_t *sub)
{
    ngx_msec_int_t            left, ack;
    ngx_http_cast_unacked_t  *u;

    left = (ngx_msec_int_t) (sub->lease_at - ngx_current_msec);

    if (!ngx_queue_empty(&sub->unacked)) {
        u = ngx_queue_data(ngx_queue_head(&sub->unacked),
                           ngx_http_cast_unacked_t, queue);

        ack = (ngx_msec_int_t) (u->deadline - ngx_current_msec);
        left = ngx_min(left, ack);
    }

    ngx_add_timer(&sub->timer_ev, (ngx_msec_t) ngx_max(left, 1));
}


static void
ngx_http_cast_ack_expired(ngx_http_cast_sub_t *sub,
    ngx_http_cast_unacked_t *u)
{
    ngx_str_t             none, reason;
    ngx_http_cast_hub_t  *hub;

    hub = sub->hub;

    ngx_http_cast_syncerror(hub, sub, u->sent,
                            "did not acknowledge the event in time "
                            "(cast_ack_timeout)");

    ngx_str_null(&none);
    ngx_str_set(&reason, "unresponsive");

    ngx_http_cast_sub_end(sub, "unresponsive", NULL);

    hub->store->remove(hub->store, &sub->record.id, &none, &reason, NULL,
                       NULL);

    if (!sub->replaying) {
        ngx_http_cast_sub_free(sub);
    }
}


/*
 * The store's news: a subscription ended.  Its socket, if here, is
 * closed; an unbound record is logged by the worker that ended it.
 */

static void
ngx_http_cast_hub_on_ended(void *data, ngx_str_t *id, ngx_str_t *topic,
    ngx_str_t *reason, ngx_uint_t bound)
{
    ngx_http_cast_hub_t *hub = data;

    ngx_uint_t            i;
    ngx_http_cast_sub_t  *sub;

    /* the socket keeps the reason past this call: one of ours, static */

    static const char  *reasons[] = {
        "unsubscribed", "reset", "lease expired", "socket closed",
        "no socket was bound in time", "worker exit", "unresponsive",
        NULL
    };

    /* a conference ends with its host's last subscription */

    if (ngx_http_cast_conf_find(hub, topic)) {
        ngx_http_cast_host_gone(hub, topic);
    }

    sub = ngx_http_cast_sub_find(hub, id);

    if (sub) {
        for (i = 0; reasons[i]; i++) {
            if (reason->len == ngx_strlen(reasons[i])
                && ngx_strncmp(reason->data, reasons[i], reason->len) == 0)
            {
                break;
            }
        }

        ngx_http_cast_sub_end(sub, reasons[i] ? reasons[i] : "ended", NULL);

        if (!sub->replaying) {
            ngx_http_cast_sub_free(sub);
        }

        return;
    }

    if (!bound) {
        ngx_log_error(NGX_LOG_INFO, hub->log, 0,
                      "cast: subscription %*s... on topic \"%V\" ended: %V",
                      (size_t) 8, id->data, topic, reason);
    }
}


/* the store's news: new events and lease for a subscription */

static void
ngx_http_cast_hub_on_renewed(void *data, ngx_http_cast_record_t *record)
{
    ngx_http_cast_hub_t *hub = data;

    ngx_str_t                err, writable;
    ngx_http_cast_sub_t     *sub;
    ngx_http_cast_events_t   events;

    sub = ngx_http_cast_sub_find(hub, &record->id);
    if (sub == NULL) {
        return;
    }

    if (ngx_http_cast_events_parse(&record->events, sub->record.dialect,
                                   &events, &err)
        != NGX_OK)
    {
        return;
    }

    /* cast_auth: the renewing token's grant replaces the old one */

    writable.len = record->writable.len;
    writable.data = ngx_alloc(writable.len + 1, sub->hub->log);

    if (writable.data == NULL) {
        ngx_http_cast_events_free(&events);
        return;
    }

    ngx_memcpy(writable.data, record->writable.data, writable.len);
    writable.data[writable.len] = '\0';

    if (sub->writable) {
        ngx_free(sub->writable);
    }

    sub->writable = writable.data;

    sub->record.auth = record->auth;
    sub->record.writable = writable;

    ngx_http_cast_events_free(&sub->events);
    sub->events = events;
    sub->record.events = events.text;
    sub->record.lease = record->lease;
    sub->record.expires = record->expires;

    ngx_http_cast_sub_lease(sub);
    ngx_http_cast_sub_heartbeat(sub);

    (void) ngx_http_cast_sub_send_confirmation(sub, "subscribe", NULL);
}


static json_t *
ngx_http_cast_hub_on_counters(void *data)
{
    return ngx_http_cast_hub_counters(data);
}


static void
ngx_http_cast_hub_on_bound(void *data,
    void (*each)(void *data, ngx_http_cast_record_t *r), void *each_data)
{
    ngx_http_cast_hub_t *hub = data;

    ngx_rbtree_node_t    *node;
    ngx_http_cast_sub_t  *sub;

    if (hub->subs.root == hub->subs.sentinel) {
        return;
    }

    for (node = ngx_rbtree_min(hub->subs.root, hub->subs.sentinel);
         node;
         node = ngx_rbtree_next(&hub->subs, node))
    {
        sub = (ngx_http_cast_sub_t *)
                  ((u_char *) node - offsetof(ngx_http_cast_sub_t, sn));

        each(each_data, &sub->record);
    }
}


/* this worker's counters */

json_t *
ngx_http_cast_hub_counters(ngx_http_cast_hub_t *hub)
{
    return json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s%}",
                     "pid", (int) ngx_pid,
                     "connections", (json_int_t) hub->nsubs,
                     "subscriptions", (json_int_t) hub->nsubs,
                     "topics", (json_int_t) hub->ntopics,
                     "events_in", (json_int_t) hub->events_in,
                     "events_out", (json_int_t) hub->events_out,
                     "dropped", (json_int_t) hub->dropped,
                     "acks", (json_int_t) hub->acks,
                     "host", (char *) ngx_cycle->hostname.data,
                     (size_t) ngx_cycle->hostname.len);
}


static ngx_msec_t
ngx_http_cast_sub_lease_at(ngx_http_cast_sub_t *sub)
{
    int64_t      left;
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    left = sub->record.expires - ((int64_t) tp->sec * 1000 + tp->msec);

    return ngx_current_msec + (ngx_msec_t) ngx_max(left, 1);
}


static void
ngx_http_cast_sub_lease(ngx_http_cast_sub_t *sub)
{
    sub->lease_at = ngx_http_cast_sub_lease_at(sub);

    ngx_http_cast_sub_timer(sub);
}


/* subscriptions that list "heartbeat" by name ("*" does not ask for it) */

static void
ngx_http_cast_sub_heartbeat(ngx_http_cast_sub_t *sub)
{
    ngx_str_t   name;
    ngx_uint_t  i;

    ngx_str_set(&name, "heartbeat");

    for (i = 0; i < sub->events.n; i++) {
        if (ngx_http_cast_str_eq(&sub->events.names[i], &name)) {
            break;
        }
    }

    if (i < sub->events.n) {
        if (ngx_queue_empty(&sub->heartbeat)) {
            ngx_queue_insert_tail(&sub->hub->heartbeats, &sub->heartbeat);
        }

    } else if (!ngx_queue_empty(&sub->heartbeat)) {
        ngx_queue_remove(&sub->heartbeat);
        ngx_queue_init(&sub->heartbeat);
    }
}


/* every 10 s, the "heartbeat" event to the subscriptions that want it */

static void
ngx_http_cast_heartbeat_handler(ngx_event_t *ev)
{
    u_char                id[NGX_HTTP_CAST_UUID_LEN];
    u_char                ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    json_t               *event;
    ngx_queue_t          *q;
    ngx_http_cast_sub_t  *sub;
    ngx_http_cast_hub_t  *hub;

    hub = ev->data;

    ngx_http_cast_timestamp(ts);

    for (q = ngx_queue_head(&hub->heartbeats);
         q != ngx_queue_sentinel(&hub->heartbeats);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_cast_sub_t, heartbeat);

        if (sub->socket == NULL || ngx_http_cast_new_uuid(id) != NGX_OK) {
            continue;
        }

        event = json_pack("{s:s%,s:s%,s:{s:s%,s:s,s:[{s:s,s:s}]}}",
                          "timestamp", (char *) ts, sizeof(ts),
                          "id", (char *) id, sizeof(id),
                          "event",
                          "hub.topic", (char *) sub->record.topic.data,
                          sub->record.topic.len,
                          "hub.event", "heartbeat",
                          "context", "key", "period", "decimal", "10");

        (void) ngx_http_cast_sub_send_json(sub, event, 1);
        json_decref(event);
    }

    ngx_add_timer(&hub->heartbeat_ev, NGX_HTTP_CAST_HEARTBEAT * 1000);
}


static void
ngx_http_cast_lease_handler(ngx_event_t *ev)
{
    ngx_str_t             none, reason;
    ngx_http_cast_sub_t  *sub;
    ngx_http_cast_hub_t  *hub;

    sub = ev->data;
    hub = sub->hub;

    ngx_str_null(&none);
    ngx_str_set(&reason, "lease expired");

    ngx_http_cast_sub_end(sub, "lease expired", NULL);

    hub->store->remove(hub->store, &sub->record.id, &none, &reason, NULL,
                       NULL);

    if (!sub->replaying) {
        ngx_http_cast_sub_free(sub);
    }
}


/*
 * The fixed-shape messages a socket gets (SPEC 3.2) are written straight
 * into their frame: no JSON tree, no serialization per subscriber.
 */

/* {"type":"connection.established","endpoint":"..","timestamp":".."} */

static ngx_int_t
ngx_http_cast_sub_send_hello(ngx_http_cast_sub_t *sub, u_char *ts)
{
    u_char                 *p;
    size_t                  len;
    ngx_int_t               rc;
    ngx_str_t              *id;
    ngx_http_cast_frame_t  *frame;

    static u_char  type[] = "{\"type\":\"connection.established\","
                            "\"endpoint\":";
    static u_char  stamp[] = ",\"timestamp\":\"";

    if (sub->socket == NULL) {
        return NGX_ERROR;
    }

    id = &sub->record.id;

    len = sizeof(type) - 1
          + ngx_http_cast_json_quoted_len(id->data, id->len)
          + sizeof(stamp) - 1 + NGX_HTTP_CAST_TIMESTAMP_LEN + 2;

    frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_TEXT, NULL, len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    p = frame->data + frame->len - len;
    p = ngx_cpymem(p, type, sizeof(type) - 1);
    p = ngx_http_cast_json_quote(p, id->data, id->len);
    p = ngx_cpymem(p, stamp, sizeof(stamp) - 1);
    p = ngx_cpymem(p, ts, NGX_HTTP_CAST_TIMESTAMP_LEN);
    *p++ = '"';
    *p = '}';

    rc = sub->send(sub->socket, frame, 0);
    ngx_http_cast_frame_release(frame);

    return rc;
}


/*
 * The STU3 confirmation ("subscribe") or denial ("denied"):
 * {"hub.mode":"..","hub.topic":"..","hub.events":"..",
 *  "hub.lease_seconds":N} or, with a reason, "hub.reason":".." instead
 * of the lease
 */

static ngx_int_t
ngx_http_cast_sub_send_confirmation(ngx_http_cast_sub_t *sub,
    const char *mode, const char *reason)
{
    u_char                  buf[512], *text, *p;
    size_t                  len, mlen, rlen;
    int64_t                 left;
    ngx_int_t               rc;
    ngx_str_t              *topic, *events;
    ngx_time_t             *tp;
    ngx_http_cast_frame_t  *frame;

    static u_char  k_mode[] = "{\"hub.mode\":";
    static u_char  k_topic[] = ",\"hub.topic\":";
    static u_char  k_events[] = ",\"hub.events\":";
    static u_char  k_lease[] = ",\"hub.lease_seconds\":";
    static u_char  k_reason[] = ",\"hub.reason\":";

    if (sub->socket == NULL) {
        return NGX_ERROR;
    }

    tp = ngx_timeofday();
    left = (sub->record.expires - ((int64_t) tp->sec * 1000 + tp->msec)
            + 999) / 1000;

    if (left < 0) {
        left = 0;
    }

    if (left > sub->record.lease) {
        left = sub->record.lease;
    }

    topic = &sub->record.topic;
    events = &sub->events.text;
    mlen = ngx_strlen(mode);
    rlen = reason ? ngx_strlen(reason) : 0;

    len = sizeof(k_mode) - 1
          + ngx_http_cast_json_quoted_len((u_char *) mode, mlen)
          + sizeof(k_topic) - 1
          + ngx_http_cast_json_quoted_len(topic->data, topic->len)
          + sizeof(k_events) - 1
          + ngx_http_cast_json_quoted_len(events->data, events->len)
          + (reason ? sizeof(k_reason) - 1
                      + ngx_http_cast_json_quoted_len((u_char *) reason,
                                                      rlen)
                    : sizeof(k_lease) - 1 + NGX_INT64_LEN)
          + 1;

    /*
     * Written first, then copied into a frame of its size: the lease's
     * digits are known once written (a small message; on the stack
     * unless a long topic or events list needs more).
     */

    text = (len <= sizeof(buf)) ? buf : ngx_alloc(len, sub->log);
    if (text == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(text, k_mode, sizeof(k_mode) - 1);
    p = ngx_http_cast_json_quote(p, (u_char *) mode, mlen);
    p = ngx_cpymem(p, k_topic, sizeof(k_topic) - 1);
    p = ngx_http_cast_json_quote(p, topic->data, topic->len);
    p = ngx_cpymem(p, k_events, sizeof(k_events) - 1);
    p = ngx_http_cast_json_quote(p, events->data, events->len);

    if (reason) {
        p = ngx_cpymem(p, k_reason, sizeof(k_reason) - 1);
        p = ngx_http_cast_json_quote(p, (u_char *) reason, rlen);

    } else {
        p = ngx_cpymem(p, k_lease, sizeof(k_lease) - 1);
        p = ngx_sprintf(p, "%L", left);
    }

    *p++ = '}';

    frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_TEXT, text,
                                       p - text);
    if (text != buf) {
        ngx_free(text);
    }

    if (frame == NULL) {
        return NGX_ERROR;
    }

    rc = sub->send(sub->socket, frame, 0);
    ngx_http_cast_frame_release(frame);

    return rc;
}


static ngx_int_t
ngx_http_cast_sub_send_json(ngx_http_cast_sub_t *sub, json_t *json,
    ngx_uint_t live)
{
    u_char                  buf[1024];
    size_t                  len;
    ngx_int_t               rc;
    ngx_http_cast_frame_t  *frame;

    if (json == NULL || sub->socket == NULL) {
        return NGX_ERROR;
    }

    /* one serialization when it fits the stack buffer, else two */

    len = json_dumpb(json, (char *) buf, sizeof(buf), JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_TEXT,
                                       len <= sizeof(buf) ? buf : NULL, len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    if (len > sizeof(buf)
        && json_dumpb(json, (char *) frame->data + frame->len - len, len,
                      JSON_COMPACT) != len)
    {
        ngx_http_cast_frame_release(frame);
        return NGX_ERROR;
    }

    rc = sub->send(sub->socket, frame, live);
    ngx_http_cast_frame_release(frame);

    return rc;
}


/*
 * NGX_HTTP_CAST_SEND_LATEST when the subscription wants the frame's event
 * latest-value (its key's name is one of record.latest), else 0
 */

static ngx_uint_t
ngx_http_cast_sub_latest(ngx_http_cast_sub_t *sub,
    ngx_http_cast_frame_t *frame)
{
    ngx_uint_t  i;

    if (sub->latest == NULL || sub->latest->n == 0 || frame->key.len == 0) {
        return 0;
    }

    for (i = 0; i < sub->latest->n; i++) {
        if (sub->latest->names[i].len == frame->name_len
            && ngx_memcmp(sub->latest->names[i].data, frame->key.data,
                          frame->name_len) == 0)
        {
            return NGX_HTTP_CAST_SEND_LATEST;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_cast_sub_matches(ngx_http_cast_sub_t *sub, ngx_str_t *lowercase)
{
    ngx_uint_t  i;

    if (sub->events.all) {
        return 1;
    }

    for (i = 0; i < sub->events.n; i++) {
        if (ngx_http_cast_str_eq(&sub->events.names[i], lowercase)) {
            return 1;
        }
    }

    return 0;
}


/*
 * A subscription and copies of its record's strings, NUL-terminated, in
 * one zeroed block (an idle subscriber costs what it holds, not a pool).
 */

static ngx_http_cast_sub_t *
ngx_http_cast_sub_alloc(ngx_http_cast_record_t *record, ngx_log_t *log)
{
    u_char                  *p;
    size_t                   i, size;
    ngx_str_t               *dst, *src;
    ngx_http_cast_sub_t     *sub;
    ngx_http_cast_record_t  *r;

    static size_t  fields[] = {
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

    size = sizeof(ngx_http_cast_sub_t);

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        src = (ngx_str_t *) ((u_char *) record + fields[i]);
        size += src->len + 1;
    }

    sub = ngx_calloc(size, log);
    if (sub == NULL) {
        return NULL;
    }

    r = &sub->record;
    *r = *record;

    p = (u_char *) (sub + 1);

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        src = (ngx_str_t *) ((u_char *) record + fields[i]);
        dst = (ngx_str_t *) ((u_char *) r + fields[i]);

        dst->len = src->len;
        dst->data = p;

        p = ngx_cpymem(p, src->data, src->len);
        *p++ = '\0';
    }

    return sub;
}


static ngx_http_cast_topic_t *
ngx_http_cast_topic_find(ngx_http_cast_hub_t *hub, ngx_str_t *name)
{
    return (ngx_http_cast_topic_t *)
               ngx_str_rbtree_lookup(&hub->topics, name,
                                     ngx_crc32_long(name->data, name->len));
}


static ngx_http_cast_topic_t *
ngx_http_cast_topic_get(ngx_http_cast_hub_t *hub, ngx_str_t *name)
{
    ngx_http_cast_topic_t  *topic;

    topic = ngx_http_cast_topic_find(hub, name);
    if (topic) {
        return topic;
    }

    topic = ngx_alloc(sizeof(ngx_http_cast_topic_t) + name->len, hub->log);
    if (topic == NULL) {
        return NULL;
    }

    ngx_memzero(topic, sizeof(ngx_http_cast_topic_t));
    ngx_memcpy(topic->name, name->data, name->len);

    topic->sn.str.data = topic->name;
    topic->sn.str.len = name->len;
    topic->sn.node.key = ngx_crc32_long(name->data, name->len);

    ngx_queue_init(&topic->subs);

    ngx_rbtree_insert(&hub->topics, &topic->sn.node);
    hub->ntopics++;

    hub->store->listen(hub->store, &topic->sn.str, 1);

    return topic;
}


static void
ngx_http_cast_topic_release(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic)
{
    ngx_uint_t  i;

    if (!ngx_queue_empty(&topic->subs) || topic->pins) {
        return;
    }

    hub->store->listen(hub->store, &topic->sn.str, 0);

    ngx_rbtree_delete(&hub->topics, &topic->sn.node);
    hub->ntopics--;

    for (i = 0; i < NGX_HTTP_CAST_SENT_KEEP; i++) {
        if (topic->sent[i]) {
            ngx_http_cast_sent_release(topic->sent[i]);
        }
    }

    ngx_free(topic);
}


static ngx_http_cast_sub_t *
ngx_http_cast_sub_find(ngx_http_cast_hub_t *hub, ngx_str_t *id)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ngx_str_rbtree_lookup(&hub->subs, id,
                                     ngx_crc32_long(id->data, id->len));
    if (node == NULL) {
        return NULL;
    }

    return (ngx_http_cast_sub_t *)
               ((u_char *) node - offsetof(ngx_http_cast_sub_t, sn));
}


static ngx_http_cast_hub_op_t *
ngx_http_cast_hub_op(ngx_http_cast_hub_t *hub, ngx_http_cast_done_pt done,
    void *data)
{
    ngx_http_cast_hub_op_t  *op;

    op = ngx_calloc(sizeof(ngx_http_cast_hub_op_t), hub->log);
    if (op == NULL) {
        ngx_http_cast_hub_fail(done, data, NGX_HTTP_CAST_FAILED);
        return NULL;
    }

    op->hub = hub;
    op->done = done;
    op->data = data;

    return op;
}


static void
ngx_http_cast_hub_fail(ngx_http_cast_done_pt done, void *data,
    ngx_uint_t rc)
{
    ngx_http_cast_result_t  res;

    ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
    res.rc = rc;

    done(data, &res);
}


/* "*" (every topic, cast dialect) is not a topic of its own */

static ngx_uint_t
ngx_http_cast_topic_counted(ngx_str_t *topic)
{
    return !(topic->len == 1 && topic->data[0] == '*');
}


static ngx_int_t
ngx_http_cast_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_strncmp(a->data, b->data, a->len) == 0;
}


/*
 * Conferences (SPEC 2.6).  A change is an event of the registry topic:
 * the store appends it with the registry apply() computes, and every
 * worker (listening to that topic since it started) learns from it where
 * the participants' events go and tells its participants' sockets.
 */

void
ngx_http_cast_hub_conference(ngx_http_cast_hub_t *hub, ngx_uint_t op,
    json_t *body, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_conf_ask(hub, op, body, NULL, done, data);
}


/* "reason": a conference-end's, when the hub ends it */

static void
ngx_http_cast_conf_ask(ngx_http_cast_hub_t *hub, ngx_uint_t op, json_t *body,
    const char *reason, ngx_http_cast_done_pt done, void *data)
{
    ngx_http_cast_conf_op_t  *cop;

    cop = ngx_calloc(sizeof(ngx_http_cast_conf_op_t), hub->log);
    if (cop == NULL) {
        ngx_http_cast_hub_fail(done, data, NGX_HTTP_CAST_FAILED);
        return;
    }

    if (ngx_http_cast_new_uuid(cop->id) != NGX_OK) {
        ngx_free(cop);
        ngx_http_cast_hub_fail(done, data, NGX_HTTP_CAST_FAILED);
        return;
    }

    ngx_http_cast_timestamp(cop->ts);

    cop->hub = hub;
    cop->op = op;
    cop->reason = reason;
    cop->body = json_incref(body);
    cop->done = done;
    cop->data = data;

    ngx_str_set(&cop->append.topic, NGX_HTTP_CAST_CONF_TOPIC);
    ngx_str_set(&cop->append.name, "conference");
    cop->append.id.data = cop->id;
    cop->append.id.len = NGX_HTTP_CAST_UUID_LEN;
    cop->append.counted = 0;

    /* the registry goes with the last conference, not with a ttl */
    cop->append.keep = 1;
    cop->append.apply = ngx_http_cast_conf_op_apply;
    cop->append.done = ngx_http_cast_conf_op_done;
    cop->append.data = cop;

    ngx_http_cast_conf_need(hub);

    hub->store->append(hub->store, &cop->append);
}


/* the registry's next state; run again on a fresh copy after a conflict */

static ngx_int_t
ngx_http_cast_conf_op_apply(ngx_http_cast_append_t *a, json_t *state)
{
    ngx_http_cast_conf_op_t *cop = a->data;

    ngx_int_t  rc;

    /* a batch sends a refused change too: not with the text freed here */

    free(cop->text);
    cop->text = NULL;
    ngx_str_null(&a->json);

    rc = ngx_http_cast_conf_apply(state, cop->op, cop->body, cop->reason,
                                  cop->id, cop->ts, &cop->outcome);

    switch (rc) {

    case NGX_OK:
        cop->text = json_dumps(cop->outcome.change, JSON_COMPACT);
        if (cop->text == NULL) {
            return NGX_ERROR;
        }

        a->json.data = (u_char *) cop->text;
        a->json.len = ngx_strlen(cop->text);
        return NGX_OK;

    case NGX_DECLINED:
        /* nothing to change: answered, nothing appended */
        a->refused = NGX_HTTP_CAST_DONE;
        return NGX_ABORT;

    case NGX_ABORT:
        a->refused = cop->outcome.refused;
        return NGX_ABORT;

    default:
        return NGX_ERROR;
    }
}


static void
ngx_http_cast_conf_op_done(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_conf_op_t *cop = data;

    if (res->rc == NGX_HTTP_CAST_DONE) {
        res->json = cop->outcome.reply;

        if (res->json == NULL) {
            /* a retry of a change made before */
            res->rc = NGX_HTTP_CAST_FAILED;
        }

    } else {
        res->reason = cop->outcome.reason;
    }

    cop->done(cop->data, res);

    ngx_http_cast_conf_outcome_free(&cop->outcome);
    json_decref(cop->body);
    free(cop->text);
    ngx_free(cop);
}


void
ngx_http_cast_hub_conferences(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data)
{
    ngx_str_t                registry;
    ngx_http_cast_hub_op_t  *op;

    op = ngx_http_cast_hub_op(hub, done, data);
    if (op == NULL) {
        return;
    }

    ngx_str_set(&registry, NGX_HTTP_CAST_CONF_TOPIC);

    hub->store->state(hub->store, &registry, ngx_http_cast_conf_listed, op);
}


/*
 * The list, then the records of each participant topic, one topic after
 * the other, for the subscriber names (SPEC 2.6: "participants").
 */

typedef struct {
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_done_pt      done;
    void                      *data;
    json_t                    *list;
    json_t                    *topics;      /* to ask the store about */
    json_t                    *names;       /* topic: its records */
    size_t                     next;
    unsigned                   asking:1;
    unsigned                   answered:1;
} ngx_http_cast_conf_list_t;


static void
ngx_http_cast_conf_listed(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_hub_op_t *op = data;

    ngx_http_cast_conf_list_t  *cl;

    cl = NULL;

    if (res->rc == NGX_HTTP_CAST_DONE) {
        cl = ngx_calloc(sizeof(ngx_http_cast_conf_list_t), op->hub->log);
    }

    if (cl) {
        cl->hub = op->hub;
        cl->done = op->done;
        cl->data = op->data;
        cl->list = ngx_http_cast_conf_list(res->json);
        cl->topics = ngx_http_cast_conf_all_topics(res->json);
        cl->names = json_object();
    }

    if (cl == NULL || cl->list == NULL || cl->topics == NULL
        || cl->names == NULL)
    {
        if (res->rc == NGX_HTTP_CAST_DONE) {
            res->rc = NGX_HTTP_CAST_FAILED;
        }

        op->done(op->data, res);
        ngx_free(op);

        if (cl) {
            json_decref(cl->list);
            json_decref(cl->topics);
            json_decref(cl->names);
            ngx_free(cl);
        }

        return;
    }

    ngx_free(op);

    ngx_http_cast_conf_names(cl, NULL);
}


/* a topic's records came (res NULL: none asked yet); the next is asked */

static void
ngx_http_cast_conf_names(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_conf_list_t *cl = data;

    json_t                  *topic;
    ngx_str_t                name;
    ngx_http_cast_result_t   out;

    if (res && res->rc == NGX_HTTP_CAST_DONE && json_is_array(res->json)) {
        topic = json_array_get(cl->topics, cl->next - 1);

        (void) json_object_set(cl->names, json_string_value(topic),
                               res->json);
    }

    if (cl->asking) {
        /* answered at once (local store): the loop below goes on */
        cl->answered = 1;
        return;
    }

    while (cl->next < json_array_size(cl->topics)) {
        topic = json_array_get(cl->topics, cl->next++);

        name.data = (u_char *) json_string_value(topic);
        name.len = json_string_length(topic);

        cl->asking = 1;
        cl->answered = 0;

        cl->hub->store->records(cl->hub->store, &name,
                                NGX_HTTP_CAST_CONF_NAMES,
                                ngx_http_cast_conf_names, cl);
        cl->asking = 0;

        if (!cl->answered) {
            /* the answer calls this again */
            return;
        }
    }

    ngx_memzero(&out, sizeof(ngx_http_cast_result_t));
    out.rc = NGX_HTTP_CAST_DONE;
    out.json = cl->list;

    if (ngx_http_cast_conf_name(cl->list, cl->names) != NGX_OK) {
        out.rc = NGX_HTTP_CAST_FAILED;
        out.json = NULL;
    }

    cl->done(cl->data, &out);

    json_decref(cl->list);
    json_decref(cl->topics);
    json_decref(cl->names);
    ngx_free(cl);
}


void
ngx_http_cast_hub_topics(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data)
{
    hub->store->topics(hub->store, done, data);
}


/* the registry, read once (and again until it is as new as its events) */

static void
ngx_http_cast_conf_need(ngx_http_cast_hub_t *hub)
{
    ngx_str_t  registry;

    if (hub->conf_loaded || hub->conf_loading) {
        return;
    }

    hub->conf_loading = 1;

    ngx_str_set(&registry, NGX_HTTP_CAST_CONF_TOPIC);

    hub->store->state(hub->store, &registry, ngx_http_cast_conf_loaded,
                      hub);
}


static void
ngx_http_cast_conf_loaded(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_hub_t *hub = data;

    json_t                *conferences, *conference;
    int64_t                rev;
    ngx_str_t              host;
    const char            *key;
    ngx_rbtree_node_t     *node, *next, *sentinel;
    ngx_http_cast_conf_t  *conf;

    hub->conf_loading = 0;

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return;
    }

    rev = json_integer_value(json_object_get(res->json, "rev"));

    if (rev < hub->conf_rev) {
        /* older than the changes heard meanwhile: read again later */
        return;
    }

    conferences = json_object_get(res->json, "conferences");

    /* those the registry no longer has */

    sentinel = hub->conferences.sentinel;
    node = (hub->conferences.root == sentinel) ? NULL
           : ngx_rbtree_min(hub->conferences.root, sentinel);

    while (node) {
        next = ngx_rbtree_next(&hub->conferences, node);
        conf = (ngx_http_cast_conf_t *) node;

        host = conf->sn.str;

        if (json_object_getn(conferences, (char *) host.data, host.len)
            == NULL)
        {
            (void) ngx_http_cast_conf_set(hub, &host, NULL, rev);
        }

        node = next;
    }

    json_object_foreach(conferences, key, conference) {
        host.data = (u_char *) key;
        host.len = ngx_strlen(key);

        conf = ngx_http_cast_conf_find(hub, &host);

        if (conf == NULL
            || conf->rev != json_integer_value(json_object_get(conference,
                                                                "rev")))
        {
            (void) ngx_http_cast_conf_set(hub, &host, conference,
                            json_integer_value(json_object_get(conference,
                                                               "rev")));
        }
    }

    hub->conf_rev = rev;
    hub->conf_loaded = 1;
}


/*
 * A change of the registry, in its one order: the conference is as it
 * says, and its "conference-*" event goes to this worker's sockets of
 * the topics it names, whatever their filters (SPEC 2.6).
 */

static void
ngx_http_cast_conf_changed(ngx_http_cast_hub_t *hub, ngx_str_t *json)
{
    size_t                  i;
    char                   *text;
    json_t                 *change, *event, *value;
    int64_t                 rev;
    ngx_str_t               host, topic, name, except, out;
    json_error_t            error;
    ngx_http_cast_fan_t     fan;
    ngx_http_cast_frame_t  *frame;

    change = json_loadb((char *) json->data, json->len, 0, &error);

    if (!json_is_object(change)
        || !json_is_string(json_object_get(change, "host")))
    {
        ngx_log_error(NGX_LOG_ERR, hub->log, 0,
                      "cast: an invalid conference change: %s", error.text);
        json_decref(change);
        return;
    }

    value = json_object_get(change, "host");
    host.data = (u_char *) json_string_value(value);
    host.len = json_string_length(value);

    rev = json_integer_value(json_object_get(change, "rev"));

    if (rev > hub->conf_rev) {
        value = json_object_get(change, "conference");

        (void) ngx_http_cast_conf_set(hub, &host,
                                      json_is_object(value) ? value : NULL,
                                      rev);
        hub->conf_rev = rev;
    }

    event = json_object_get(change, "event");
    text = json_is_object(event) ? json_dumps(event, JSON_COMPACT) : NULL;

    if (text == NULL) {
        json_decref(change);
        return;
    }

    out.data = (u_char *) text;
    out.len = ngx_strlen(text);

    name.data = (u_char *) json_string_value(json_object_get(
                              json_object_get(event, "event"), "hub.event"));
    name.len = name.data ? ngx_strlen(name.data) : 0;
    ngx_str_null(&except);

    frame = NULL;

    fan.hub = hub;
    fan.name = &name;
    fan.key_topic = NULL;       /* never replaced */
    fan.json = &out;
    fan.except = &except;
    fan.frame = &frame;
    fan.track = 0;
    fan.source = NULL;
    fan.all = 1;

    json_array_foreach(json_object_get(change, "notify"), i, value) {
        if (!json_is_string(value)) {
            continue;
        }

        topic.data = (u_char *) json_string_value(value);
        topic.len = json_string_length(value);

        fan.topic = ngx_http_cast_topic_find(hub, &topic);
        fan.sent = NULL;

        if (fan.topic) {
            (void) ngx_http_cast_fan_out(&fan, &fan.topic->subs);
        }
    }

    if (frame) {
        ngx_http_cast_frame_release(frame);
    }

    free(text);
    json_decref(change);
}


/* this worker's copy of one conference (NULL: it ended) */

static ngx_int_t
ngx_http_cast_conf_set(ngx_http_cast_hub_t *hub, ngx_str_t *host,
    json_t *conference, int64_t rev)
{
    u_char                  *p;
    size_t                   size;
    uint32_t                 hash;
    ngx_str_t                topics[NGX_HTTP_CAST_CONF_MAX_TOPICS + 1];
    ngx_uint_t               i, n;
    ngx_http_cast_conf_t    *conf;
    ngx_http_cast_topic_t   *pinned;
    ngx_http_cast_member_t  *member;

    /* the conference as it was goes first */

    pinned = NULL;
    conf = ngx_http_cast_conf_find(hub, host);

    if (conf) {
        for (i = 0; i < conf->ntopics; i++) {
            member = ngx_http_cast_member_find(hub, &conf->topics[i]);

            if (member && member->conf == conf) {
                ngx_rbtree_delete(&hub->members, &member->sn.node);
                ngx_free(member);
            }
        }

        /* kept pinned across the change: no needless UNSUBSCRIBE */
        pinned = conf->pinned;

        ngx_rbtree_delete(&hub->conferences, &conf->sn.node);
        ngx_free(conf);
    }

    conf = NULL;

    if (conference) {
        n = ngx_http_cast_conf_topics(conference, topics,
                                      NGX_HTTP_CAST_CONF_MAX_TOPICS + 1);

        size = sizeof(ngx_http_cast_conf_t) + n * sizeof(ngx_str_t);

        for (i = 0; i < n; i++) {
            size += topics[i].len;
        }

        conf = (n && topics[0].len == host->len
                && ngx_strncmp(topics[0].data, host->data, host->len) == 0)
               ? ngx_alloc(size, hub->log) : NULL;
    }

    if (conf) {
        ngx_memzero(conf, sizeof(ngx_http_cast_conf_t));

        conf->rev = rev;
        conf->ntopics = n;
        conf->topics = (ngx_str_t *) conf->data;
        p = conf->data + n * sizeof(ngx_str_t);

        for (i = 0; i < n; i++) {
            conf->topics[i].data = p;
            conf->topics[i].len = topics[i].len;
            p = ngx_cpymem(p, topics[i].data, topics[i].len);
        }

        conf->sn.str = conf->topics[0];
        conf->sn.node.key = ngx_crc32_long(host->data, host->len);
        conf->pinned = pinned;
        pinned = NULL;

        ngx_rbtree_insert(&hub->conferences, &conf->sn.node);

        for (i = 0; i < n; i++) {
            hash = ngx_crc32_long(conf->topics[i].data, conf->topics[i].len);

            member = ngx_http_cast_member_find(hub, &conf->topics[i]);

            if (member) {
                /* an older conference's: this one holds it now */
                member->conf = conf;
                continue;
            }

            member = ngx_alloc(sizeof(ngx_http_cast_member_t), hub->log);
            if (member == NULL) {
                continue;
            }

            member->sn.str = conf->topics[i];
            member->sn.node.key = hash;
            member->conf = conf;

            ngx_rbtree_insert(&hub->members, &member->sn.node);
        }

        ngx_http_cast_conf_pin(hub, conf);

    } else if (conference) {
        ngx_log_error(NGX_LOG_ALERT, hub->log, 0,
                      "cast: the conference of \"%V\" is not kept here",
                      host);
    }

    if (pinned) {
        pinned->pins--;
        ngx_http_cast_topic_release(hub, pinned);
    }

    return conf ? NGX_OK : NGX_DECLINED;
}


/*
 * The host topic's log is listened to while this worker has sockets on
 * a topic of the conference.
 */

static void
ngx_http_cast_conf_pin(ngx_http_cast_hub_t *hub, ngx_http_cast_conf_t *conf)
{
    ngx_uint_t              i, need;
    ngx_http_cast_topic_t  *topic;

    need = 0;

    for (i = 1; i < conf->ntopics && !need; i++) {
        topic = ngx_http_cast_topic_find(hub, &conf->topics[i]);
        need = (topic && !ngx_queue_empty(&topic->subs));
    }

    if (need && conf->pinned == NULL) {
        conf->pinned = ngx_http_cast_topic_get(hub, &conf->sn.str);

        if (conf->pinned) {
            conf->pinned->pins++;
        }

    } else if (!need && conf->pinned) {
        topic = conf->pinned;
        conf->pinned = NULL;
        topic->pins--;
        ngx_http_cast_topic_release(hub, topic);
    }
}


static void
ngx_http_cast_conf_member_pin(ngx_http_cast_hub_t *hub, ngx_str_t *topic)
{
    ngx_http_cast_member_t  *member;

    member = ngx_http_cast_member_find(hub, topic);

    if (member) {
        ngx_http_cast_conf_pin(hub, member->conf);
    }
}


static ngx_http_cast_conf_t *
ngx_http_cast_conf_find(ngx_http_cast_hub_t *hub, ngx_str_t *host)
{
    return (ngx_http_cast_conf_t *)
               ngx_str_rbtree_lookup(&hub->conferences, host,
                                     ngx_crc32_long(host->data, host->len));
}


static ngx_http_cast_member_t *
ngx_http_cast_member_find(ngx_http_cast_hub_t *hub, ngx_str_t *topic)
{
    return (ngx_http_cast_member_t *)
               ngx_str_rbtree_lookup(&hub->members, topic,
                                     ngx_crc32_long(topic->data,
                                                    topic->len));
}


/*
 * An event of a conference's log: to the sockets of every topic of the
 * conference here, each once (and to its own topic's, should that have
 * left meanwhile), the receivers' filters applied (SPEC 2.6).
 */

static ngx_uint_t
ngx_http_cast_conf_fan_out(ngx_http_cast_fan_t *fan,
    ngx_http_cast_conf_t *conf, ngx_str_t *origin)
{
    ngx_uint_t  i, n, member;

    n = 0;
    member = (origin->len == 0);

    for (i = 0; i < conf->ntopics; i++) {
        if (!member && ngx_http_cast_str_eq(&conf->topics[i], origin)) {
            member = 1;
        }

        fan->topic = ngx_http_cast_topic_find(fan->hub, &conf->topics[i]);
        fan->sent = NULL;

        if (fan->topic) {
            n += ngx_http_cast_fan_out(fan, &fan->topic->subs);
        }
    }

    if (!member) {
        fan->topic = ngx_http_cast_topic_find(fan->hub, origin);
        fan->sent = NULL;

        if (fan->topic) {
            n += ngx_http_cast_fan_out(fan, &fan->topic->subs);
        }
    }

    return n;
}


/* a host's subscription ended: was it the last one? */

typedef struct {
    ngx_http_cast_hub_t       *hub;
    size_t                     len;
    u_char                     topic[1];
} ngx_http_cast_host_check_t;


static void
ngx_http_cast_host_gone(ngx_http_cast_hub_t *hub, ngx_str_t *topic)
{
    ngx_http_cast_host_check_t  *check;

    check = ngx_alloc(sizeof(ngx_http_cast_host_check_t) + topic->len,
                      hub->log);
    if (check == NULL) {
        return;
    }

    check->hub = hub;
    check->len = topic->len;
    ngx_memcpy(check->topic, topic->data, topic->len);

    ngx_http_cast_job_add(hub, ngx_http_cast_host_run, check);
}


static void
ngx_http_cast_host_run(ngx_http_cast_hub_t *hub, void *data)
{
    ngx_http_cast_host_check_t *check = data;

    ngx_str_t  topic;

    topic.data = check->topic;
    topic.len = check->len;

    hub->store->count(hub->store, &topic, ngx_http_cast_host_counted, check);
}


static void
ngx_http_cast_host_counted(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_host_check_t *check = data;

    json_t               *body;
    ngx_http_cast_hub_t  *hub;

    hub = check->hub;

    if (res->rc == NGX_HTTP_CAST_DONE && res->removed == 0) {
        body = json_pack("{s:s%}", "hostTopic", (char *) check->topic,
                         check->len);

        if (body) {
            ngx_log_error(NGX_LOG_INFO, hub->log, 0,
                          "cast: the conference of \"%*s\" ends: its "
                          "host has no subscription left", check->len,
                          check->topic);

            ngx_http_cast_conf_ask(hub, NGX_HTTP_CAST_CONF_END, body,
                                   "host-left", ngx_http_cast_host_ended,
                                   hub);
            json_decref(body);
        }
    }

    ngx_free(check);
}


static void
ngx_http_cast_host_ended(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_hub_t *hub = data;

    if (res->rc != NGX_HTTP_CAST_DONE) {
        ngx_log_error(NGX_LOG_WARN, hub->log, 0,
                      "cast: a conference could not be ended (%ui)",
                      res->rc);
    }
}


/*
 * G2's "subscription-removed" (reference 3.6): to the topic's other
 * subscriptions (and its conference's) that listed it, when a socket's
 * subscription ends for its client's sake, not the hub's (reset, exit).
 */

static void
ngx_http_cast_removed_event(ngx_http_cast_sub_t *sub, ngx_str_t *reason)
{
    u_char                   id[NGX_HTTP_CAST_UUID_LEN];
    u_char                   ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    json_t                  *event, *actors;
    ngx_str_t               *name;
    const char              *why;
    ngx_http_cast_hub_t     *hub;
    ngx_http_cast_record_t  *r;

    static ngx_str_t  unsubscribed = ngx_string("unsubscribed");
    static ngx_str_t  closed = ngx_string("socket closed");
    static ngx_str_t  lease = ngx_string("lease expired");
    static ngx_str_t  overflow = ngx_string("send queue overflow");
    static ngx_str_t  unresponsive = ngx_string("unresponsive");

    hub = sub->hub;
    r = &sub->record;

    if (r->dialect != NGX_HTTP_CAST_DIALECT_CAST) {
        /* not an STU3 event */
        return;
    }

    if (ngx_http_cast_str_eq(reason, &unsubscribed)) {
        why = "unsubscribe";

    } else if (ngx_http_cast_str_eq(reason, &closed)) {
        why = "websocket-disconnect";

    } else if (ngx_http_cast_str_eq(reason, &lease)) {
        why = "lease-expired";

    } else if (ngx_http_cast_str_eq(reason, &overflow)
               || ngx_http_cast_str_eq(reason, &unresponsive))
    {
        why = "send-failure";

    } else {
        /* reset, worker exit, the hub's own failures */
        return;
    }

    if (ngx_http_cast_new_uuid(id) != NGX_OK) {
        return;
    }

    ngx_http_cast_timestamp(ts);

    name = r->name.len ? &r->name : &r->id;

    event = json_pack("{s:s%,s:s%,s:s%,s:{s:s%,s:s,s:{s:s,s:s%}}}",
                      "timestamp", (char *) ts, sizeof(ts),
                      "id", (char *) id, sizeof(id),
                      "subscriber.name", (char *) name->data, name->len,
                      "event",
                      "hub.topic", (char *) r->topic.data, r->topic.len,
                      "hub.event", "subscription-removed",
                      "context",
                      "reason", why,
                      "subscriber", (char *) name->data, name->len);
    if (event == NULL) {
        return;
    }

    if (r->product_name.len
        && json_object_set_new(event, "subscriber.product.name",
                               ngx_http_cast_json_string(&r->product_name)))
    {
        json_decref(event);
        return;
    }

    if (r->actors.len) {
        /* a JSON list as G2 clients send it, or a bare name */
        actors = json_loadb((char *) r->actors.data, r->actors.len, 0, NULL);

        if (actors == NULL) {
            actors = ngx_http_cast_json_string(&r->actors);
        }

        if (json_object_set_new(event, "subscriber.actor", actors) != 0) {
            json_decref(event);
            return;
        }
    }

    ngx_http_cast_made_send(hub, &r->topic, event, id,
                            "subscription-removed", NULL, 1);
}


static void
ngx_http_cast_job_add(ngx_http_cast_hub_t *hub,
    void (*run)(ngx_http_cast_hub_t *hub, void *data), void *data)
{
    ngx_http_cast_job_t  *job;

    job = ngx_alloc(sizeof(ngx_http_cast_job_t), hub->log);
    if (job == NULL) {
        ngx_free(data);
        return;
    }

    job->run = run;
    job->data = data;
    ngx_queue_insert_tail(&hub->jobs, &job->queue);

    if (!hub->jobs_ev.posted) {
        ngx_post_event(&hub->jobs_ev, &ngx_posted_events);
    }
}


static void
ngx_http_cast_jobs_handler(ngx_event_t *ev)
{
    ngx_http_cast_hub_t *hub = ev->data;

    void                 *data;
    ngx_queue_t          *q;
    ngx_http_cast_job_t  *job;
    void                (*run)(ngx_http_cast_hub_t *hub, void *data);

    while (!ngx_queue_empty(&hub->jobs)) {
        q = ngx_queue_head(&hub->jobs);
        ngx_queue_remove(q);

        job = ngx_queue_data(q, ngx_http_cast_job_t, queue);
        run = job->run;
        data = job->data;
        ngx_free(job);

        /* data is run's now (freed when its store call completes) */
        run(hub, data);
    }
}
