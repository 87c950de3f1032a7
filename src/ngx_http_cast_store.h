
/*
 * ngx_http_cast_module: what a store is.
 *
 * The hub core keeps its subscription records and its topics' state and
 * events in a store: the local store (in the worker) or the Redis store
 * (shared by every worker of every host).  Both are driven through this
 * table and complete every operation through the caller's callback: the
 * local store at once, the Redis store when Redis answered.  A store
 * knows nothing of Cast or FHIRcast: a topic's state is an opaque JSON
 * value that the hub core's state function computes, and the store only
 * keeps it in step with the topic's ordered log of events.
 *
 * What happens elsewhere comes back through the hooks the hub set:
 * events to deliver here, subscriptions ended or renewed anywhere.
 */


#ifndef _NGX_HTTP_CAST_STORE_H_INCLUDED_
#define _NGX_HTTP_CAST_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"


/* what the hub core hears from its store */

typedef struct {
    void                      *hub;

    /*
     * An accepted event of "topic", in the topic's one order, for this
     * worker's sockets on the topic, on "*", or both ("which"); "name"
     * is its lowercase hub.event.
     */
    void                     (*event)(void *hub, ngx_str_t *topic,
                                      ngx_str_t *name, ngx_str_t *json,
                                      ngx_uint_t which);

    /*
     * A subscription ended: on the worker that ended it (once per
     * record, "bound" tells whether a socket had it), and on every
     * worker when it was bound (bound 1).
     */
    void                     (*ended)(void *hub, ngx_str_t *id,
                                      ngx_str_t *topic, ngx_str_t *reason,
                                      ngx_uint_t bound);

    /* a subscription was renewed (events, lease), wherever */
    void                     (*renewed)(void *hub,
                                        ngx_http_cast_record_t *record);

    /* this worker's counters, for the status of every worker */
    json_t                  *(*counters)(void *hub);

    /* each record this worker has a socket for (to write them again) */
    void                     (*bound)(void *hub,
                                      void (*each)(void *data,
                                              ngx_http_cast_record_t *r),
                                      void *data);

    /* a note post() sent here (NULL: notes are dropped) */
    void                     (*posted)(void *hub, ngx_str_t *text);
} ngx_http_cast_store_hooks_t;


/*
 * One event on its way into a topic's log.  The store calls apply() with
 * the topic's current state (a JSON object it may change in place):
 *   NGX_OK        the state changed: keep the new one with the event;
 *   NGX_DECLINED  the state did not change;
 *   NGX_ABORT     the event is refused (a->refused says why: an
 *                 NGX_HTTP_CAST_* code), nothing is appended;
 *   NGX_ERROR     out of memory.
 * The Redis store calls it again, on a fresh copy, when another worker
 * changed the topic first (a bounded number of times).
 */

typedef struct ngx_http_cast_append_s  ngx_http_cast_append_t;

typedef ngx_int_t (*ngx_http_cast_apply_pt)(ngx_http_cast_append_t *a,
    json_t *state);

struct ngx_http_cast_append_s {
    ngx_str_t                  topic;
    ngx_str_t                  log;         /* the log (and channel) the
                                               event goes to; empty: the
                                               topic's own */
    ngx_str_t                  name;        /* lowercase hub.event */
    ngx_str_t                  json;        /* what subscribers get */
    ngx_str_t                  id;          /* the event's id */
    ngx_uint_t                 counted;     /* see the record's */
    ngx_uint_t                 keep;        /* its state does not expire
                                               (cast_context_ttl): the
                                               hub's own, ended by it */
    ngx_uint_t                 refused;     /* set by apply() */
    ngx_http_cast_apply_pt     apply;
    void                      *event;       /* for apply() */
    ngx_http_cast_done_pt      done;
    void                      *data;
};


struct ngx_http_cast_store_s {
    const char                *mode;        /* "local", "redis" */
    ngx_http_cast_store_hooks_t  hooks;
    ngx_str_t                  address;     /* this worker's, for post() */

    /* a new record; FULL when its topic would pass cast_max_topics */
    void                     (*create)(ngx_http_cast_store_t *store,
                                       ngx_http_cast_record_t *record,
                                       ngx_http_cast_done_pt done,
                                       void *data);

    /* new events and lease of record->id on record->topic */
    void                     (*renew)(ngx_http_cast_store_t *store,
                                      ngx_http_cast_record_t *record,
                                      ngx_http_cast_done_pt done,
                                      void *data);

    /* ends a record (topic empty: any topic); done may be NULL */
    void                     (*remove)(ngx_http_cast_store_t *store,
                                       ngx_str_t *id, ngx_str_t *topic,
                                       ngx_str_t *reason,
                                       ngx_http_cast_done_pt done,
                                       void *data);

    /* ends the records of a topic whose "callback" or "name" matches */
    void                     (*remove_matching)(ngx_http_cast_store_t *store,
                                       ngx_str_t *topic, ngx_uint_t field,
                                       ngx_str_t *value, ngx_str_t *reason,
                                       ngx_http_cast_done_pt done,
                                       void *data);

    /* ends every record */
    void                     (*reset)(ngx_http_cast_store_t *store,
                                      ngx_http_cast_done_pt done,
                                      void *data);

    /* a socket binds: BOUND if it has one, NOT_FOUND if gone */
    void                     (*bind)(ngx_http_cast_store_t *store,
                                     ngx_str_t *id,
                                     ngx_http_cast_done_pt done, void *data);

    /* worker exit: a bound record may be bound again (no answer) */
    void                     (*unbind)(ngx_http_cast_store_t *store,
                                       ngx_str_t *id);

    /* an event into its topic's log, with the state apply() computes */
    void                     (*append)(ngx_http_cast_store_t *store,
                                       ngx_http_cast_append_t *a);

    /* a topic's state (res->json: an object; empty for a new topic) */
    void                     (*state)(ngx_http_cast_store_t *store,
                                      ngx_str_t *topic,
                                      ngx_http_cast_done_pt done,
                                      void *data);

    /* res->removed: the live records of a topic */
    void                     (*count)(ngx_http_cast_store_t *store,
                                      ngx_str_t *topic,
                                      ngx_http_cast_done_pt done,
                                      void *data);

    /* res->json: the topics with live records or a state (an array) */
    void                     (*topics)(ngx_http_cast_store_t *store,
                                       ngx_http_cast_done_pt done,
                                       void *data);

    /* this worker has sockets on a topic ("*": on every topic), or not */
    void                     (*listen)(ngx_http_cast_store_t *store,
                                       ngx_str_t *topic, ngx_uint_t on);

    /* res->json: {"mode", "workers": [counters...], ...} */
    void                     (*status)(ngx_http_cast_store_t *store,
                                       ngx_http_cast_done_pt done,
                                       void *data);

    /* this worker's counters changed (for the status of every worker) */
    void                     (*changed)(ngx_http_cast_store_t *store);

    /*
     * res->json: the live records of "topic" and of "*" (topic empty:
     * every record), at most "max", as an array of objects: "id",
     * "topic", "events", "name", "product_name", "actors",
     * "client_info" (strings) and "bound" (a socket has it, somewhere).
     */
    void                     (*records)(ngx_http_cast_store_t *store,
                                        ngx_str_t *topic, ngx_uint_t max,
                                        ngx_http_cast_done_pt done,
                                        void *data);

    /*
     * A note to the worker at address "to", or to every worker (this
     * one too) when "to" is empty; heard there through hooks.posted.
     * Sent at most once and kept nowhere: a worker out of reach misses
     * it.
     */
    void                     (*post)(ngx_http_cast_store_t *store,
                                     ngx_str_t *to, ngx_str_t *text);

    /* "connected", "disconnected" or NULL (local) */
    const char              *(*health)(ngx_http_cast_store_t *store);

    /* worker exit: what must reach the store is sent, then all is freed */
    void                     (*exit)(ngx_http_cast_store_t *store);

    /*
     * The first claim of "key" is DONE; CLAIMED while the key is held
     * (for ttl ms after that claim), by whichever worker of whichever
     * host asks.  FULL: the local store holds as many as it may.
     */
    void                     (*claim)(ngx_http_cast_store_t *store,
                                      ngx_str_t *key, ngx_msec_t ttl,
                                      ngx_http_cast_done_pt done,
                                      void *data);

    /* a counter "key" shared the same way, plus one: res->value */
    void                     (*incr)(ngx_http_cast_store_t *store,
                                     ngx_str_t *key,
                                     ngx_http_cast_done_pt done,
                                     void *data);
};


/* which of this worker's sockets get an event */
#define NGX_HTTP_CAST_DELIVER_TOPIC     1
#define NGX_HTTP_CAST_DELIVER_WILDCARD  2
#define NGX_HTTP_CAST_DELIVER_ALL       3

/* the fields remove_matching() compares */
#define NGX_HTTP_CAST_MATCH_CALLBACK  1
#define NGX_HTTP_CAST_MATCH_NAME      2


#endif /* _NGX_HTTP_CAST_STORE_H_INCLUDED_ */
