
/*
 * ngx_http_cast_module: request/response between apps, the hub core's
 * part (see ngx_http_cast_request.h).
 *
 * A request lists the records of its topic from the store, then sends
 * its message to each target: straight to the socket when the socket is
 * on this worker, else in a note to every worker (store->post()): the
 * worker that has the socket sends it, and remembers for the request's
 * time which worker waits for that socket's answers (a route).  An
 * answer that comes on a socket goes to the request if it waits here,
 * else along its route in a note to that worker alone.  Only a socket
 * the request was sent to answers it: an answer for no request known
 * here, or from another socket, is dropped (logged at info).
 *
 * Notes (JSON, between workers of every host in Redis mode):
 *   {"k":"q","to":<record id>,"from":<address>,"rid":<request id>,
 *    "ttl":<ms>,"m":<the message>}
 *   {"k":"a","rid":<request id>,"n":<name>,"p":<product>,"m":<answer>}
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_ask.h"
#include "ngx_http_cast_frame.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_request.h"


/* records one request looks at, at most */
#define NGX_HTTP_CAST_REQUEST_RECORDS  10000

/* routes a worker keeps per request it may wait on; their extra time */
#define NGX_HTTP_CAST_ROUTES_PER       4
#define NGX_HTTP_CAST_ROUTE_GRACE      1000

#define NGX_HTTP_CAST_MAX_ADDRESS      64

/* a route's key: "<record id> <request id>" */
#define NGX_HTTP_CAST_ROUTE_KEY                                              \
    (NGX_HTTP_CAST_ID_LEN + 1 + NGX_HTTP_CAST_ASK_MAX_ID)


typedef struct {
    ngx_http_cast_hub_t       *hub;
    ngx_log_t                 *log;
    ngx_rbtree_t               pending;     /* ngx_http_cast_request_t */
    ngx_rbtree_node_t          pending_sentinel;
    ngx_rbtree_t               routes;      /* ngx_http_cast_route_t */
    ngx_rbtree_node_t          routes_sentinel;
    ngx_queue_t                route_queue; /* the oldest first */
    ngx_uint_t                 npending;
    ngx_uint_t                 max;
    ngx_uint_t                 nroutes;
    ngx_uint_t                 max_routes;
    unsigned                   exiting:1;
} ngx_http_cast_requests_t;


struct ngx_http_cast_request_s {
    ngx_str_node_t             sn;          /* keyed by the request id */
    ngx_http_cast_requests_t  *rqs;
    ngx_http_cast_ask_t       *ask;
    ngx_http_cast_collate_t    coll;
    ngx_event_t                timer;
    ngx_http_cast_done_pt      done;
    void                      *data;
    unsigned                   listing:1;   /* store->records() pending */
    unsigned                   cancelled:1;
    unsigned                   starting:1;  /* in request_start() */
    unsigned                   finished:1;
    unsigned                   waiting:1;   /* in rqs->pending */
    u_char                     key[1];
};


/* which worker waits for a socket's answers to a request sent to it */

typedef struct {
    ngx_str_node_t             sn;          /* "<record id> <request id>" */
    ngx_queue_t                queue;
    ngx_event_t                timer;
    ngx_http_cast_requests_t  *rqs;
    ngx_str_t                  to;
    u_char                     address[NGX_HTTP_CAST_MAX_ADDRESS];
    u_char                     key[1];
} ngx_http_cast_route_t;


static void ngx_http_cast_request_listed(void *data,
    ngx_http_cast_result_t *res);
static void ngx_http_cast_request_dispatch(ngx_http_cast_request_t *rq);
static void ngx_http_cast_request_collect(ngx_http_cast_request_t *rq,
    json_t *root, ngx_str_t *name, ngx_str_t *product, ngx_log_t *log);
static void ngx_http_cast_request_finish(ngx_http_cast_request_t *rq,
    ngx_uint_t rc, ngx_uint_t timed_out);
static void ngx_http_cast_request_release(ngx_http_cast_request_t *rq);
static void ngx_http_cast_request_free(ngx_http_cast_request_t *rq);
static void ngx_http_cast_request_timeout(ngx_event_t *ev);
static void ngx_http_cast_request_posted(void *data, ngx_str_t *text);
static void ngx_http_cast_request_route(ngx_http_cast_requests_t *rqs,
    ngx_str_t *key, ngx_str_t *to, ngx_msec_t ttl);
static ngx_int_t ngx_http_cast_route_key(u_char *buf, ngx_str_t *id,
    ngx_str_t *rid, ngx_str_t *key);
static void ngx_http_cast_route_expired(ngx_event_t *ev);
static void ngx_http_cast_route_free(ngx_http_cast_route_t *route);
static ngx_int_t ngx_http_cast_request_post(ngx_http_cast_requests_t *rqs,
    ngx_str_t *to, json_t *note);
static ngx_int_t ngx_http_cast_request_send(ngx_http_cast_sub_t *sub,
    json_t *msg);
static ngx_http_cast_sub_t *ngx_http_cast_request_sub(
    ngx_http_cast_hub_t *hub, ngx_str_t *id);
static ngx_str_node_t *ngx_http_cast_request_lookup(ngx_rbtree_t *tree,
    ngx_str_t *key);
static ngx_int_t ngx_http_cast_request_str(json_t *obj, const char *key,
    ngx_str_t *s);
static void ngx_http_cast_request_fail(ngx_http_cast_done_pt done,
    void *data, ngx_uint_t rc);


/* this worker's requests (one hub per worker) */
static ngx_http_cast_requests_t  *ngx_http_cast_requests;


ngx_int_t
ngx_http_cast_request_init(ngx_cycle_t *cycle, ngx_http_cast_hub_t *hub,
    ngx_uint_t max)
{
    ngx_http_cast_requests_t  *rqs;

    rqs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_requests_t));
    if (rqs == NULL) {
        return NGX_ERROR;
    }

    rqs->hub = hub;
    rqs->log = cycle->log;
    rqs->max = max;
    rqs->max_routes = max * NGX_HTTP_CAST_ROUTES_PER;

    ngx_rbtree_init(&rqs->pending, &rqs->pending_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&rqs->routes, &rqs->routes_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&rqs->route_queue);

    hub->store->hooks.posted = ngx_http_cast_request_posted;

    ngx_http_cast_requests = rqs;

    return NGX_OK;
}


/*
 * Worker exit: the timers go (the requests' clients are closed by the
 * worker's exit); a late call finds nothing to do.
 */

void
ngx_http_cast_request_exit(void)
{
    ngx_queue_t               *q;
    ngx_rbtree_node_t         *node;
    ngx_http_cast_request_t   *rq;
    ngx_http_cast_requests_t  *rqs;

    rqs = ngx_http_cast_requests;

    if (rqs == NULL) {
        return;
    }

    rqs->exiting = 1;
    rqs->hub->store->hooks.posted = NULL;

    if (rqs->pending.root != rqs->pending.sentinel) {
        for (node = ngx_rbtree_min(rqs->pending.root, rqs->pending.sentinel);
             node;
             node = ngx_rbtree_next(&rqs->pending, node))
        {
            rq = (ngx_http_cast_request_t *) node;
            ngx_http_cast_event_cancel(&rq->timer);
        }
    }

    while (!ngx_queue_empty(&rqs->route_queue)) {
        q = ngx_queue_head(&rqs->route_queue);
        ngx_http_cast_route_free(
                        ngx_queue_data(q, ngx_http_cast_route_t, queue));
    }
}


ngx_http_cast_request_t *
ngx_http_cast_request_start(ngx_http_cast_hub_t *hub,
    ngx_http_cast_ask_t *ask, ngx_http_cast_done_pt done, void *data)
{
    ngx_str_t                  topic;
    ngx_http_cast_request_t   *rq;
    ngx_http_cast_requests_t  *rqs;

    rqs = ngx_http_cast_requests;

    if (rqs == NULL || rqs->exiting || ask->id.len == 0) {
        ngx_http_cast_request_fail(done, data, NGX_HTTP_CAST_FAILED);
        return NULL;
    }

    if (rqs->npending >= rqs->max) {
        ngx_log_error(NGX_LOG_WARN, rqs->log, 0,
                      "cast: %ui requests wait on this worker, the "
                      "cast_max_requests limit: \"%V\" is refused",
                      rqs->npending, &ask->id);
        ngx_http_cast_request_fail(done, data, NGX_HTTP_CAST_FULL);
        return NULL;
    }

    if (ngx_http_cast_request_lookup(&rqs->pending, &ask->id)) {
        ngx_http_cast_request_fail(done, data, NGX_HTTP_CAST_BOUND);
        return NULL;
    }

    rq = ngx_calloc(sizeof(ngx_http_cast_request_t) + ask->id.len, rqs->log);
    if (rq == NULL) {
        ngx_http_cast_request_fail(done, data, NGX_HTTP_CAST_FAILED);
        return NULL;
    }

    rq->rqs = rqs;
    rq->ask = ask;
    rq->done = done;
    rq->data = data;

    ngx_memcpy(rq->key, ask->id.data, ask->id.len);
    rq->sn.str.data = rq->key;
    rq->sn.str.len = ask->id.len;
    rq->sn.node.key = ngx_crc32_long(rq->key, ask->id.len);

    ngx_rbtree_insert(&rqs->pending, &rq->sn.node);
    rqs->npending++;
    rq->waiting = 1;

    /* not cancelable: a graceful exit waits for the requests to end */

    rq->timer.handler = ngx_http_cast_request_timeout;
    rq->timer.data = rq;
    rq->timer.log = rqs->log;
    ngx_add_timer(&rq->timer, ask->timeout);

    /* "*" asks every topic */

    topic = ask->topic;

    if (topic.len == 1 && topic.data[0] == '*') {
        topic.len = 0;
    }

    rq->starting = 1;
    rq->listing = 1;

    hub->store->records(hub->store, &topic, NGX_HTTP_CAST_REQUEST_RECORDS,
                        ngx_http_cast_request_listed, rq);

    rq->starting = 0;

    if (rq->finished) {
        ngx_http_cast_request_free(rq);
        return NULL;
    }

    return rq;
}


void
ngx_http_cast_request_cancel(ngx_http_cast_request_t *rq)
{
    if (rq->rqs->exiting || rq->finished) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rq->rqs->log, 0,
                   "cast request \"%V\": the client went", &rq->sn.str);

    ngx_http_cast_request_release(rq);

    if (rq->listing) {
        /* freed when the store answers */
        rq->cancelled = 1;
        return;
    }

    ngx_http_cast_request_free(rq);
}


/* the records of the request's topic: who is asked */

static void
ngx_http_cast_request_listed(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_request_t *rq = data;

    ngx_int_t  rc;

    rq->listing = 0;

    if (rq->cancelled) {
        ngx_http_cast_request_free(rq);
        return;
    }

    if (rq->rqs->exiting || rq->finished) {
        return;
    }

    if (res->rc != NGX_HTTP_CAST_DONE) {
        ngx_http_cast_request_finish(rq, res->rc, 0);
        return;
    }

    rc = ngx_http_cast_ask_begin(rq->ask, res->json, &rq->coll);

    if (rc == NGX_ERROR) {
        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_FAILED, 0);
        return;
    }

    if (rc == NGX_DONE) {
        ngx_log_error(NGX_LOG_INFO, rq->rqs->log, 0,
                      "cast: request \"%V\" (%V) was not sent: %s",
                      &rq->sn.str, &rq->ask->event, rq->coll.error);

        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_DONE, 0);
        return;
    }

    ngx_http_cast_request_dispatch(rq);
}


/* the message to each target, wherever its socket is */

static void
ngx_http_cast_request_dispatch(ngx_http_cast_request_t *rq)
{
    u_char                     uuid[NGX_HTTP_CAST_UUID_LEN];
    u_char                     ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    json_t                    *target, *msg, *note;
    size_t                     i;
    ngx_str_t                  id, all;
    ngx_uint_t                 sent, remote;
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_sub_t       *sub;
    ngx_http_cast_requests_t  *rqs;

    rqs = rq->rqs;
    hub = rqs->hub;
    sent = 0;
    remote = 0;

    ngx_str_null(&all);
    ngx_http_cast_timestamp(ts);

    json_array_foreach(rq->coll.targets, i, target) {

        if (ngx_http_cast_request_str(target, "id", &id) != NGX_OK
            || ngx_http_cast_new_uuid(uuid) != NGX_OK)
        {
            ngx_http_cast_ask_unsent(rq->ask, &rq->coll, target);
            continue;
        }

        msg = ngx_http_cast_ask_message(rq->ask, target, uuid, ts);
        if (msg == NULL) {
            ngx_http_cast_ask_unsent(rq->ask, &rq->coll, target);
            continue;
        }

        sub = ngx_http_cast_request_sub(hub, &id);

        if (sub) {
            if (ngx_http_cast_request_send(sub, msg) == NGX_OK) {
                sent++;

            } else {
                ngx_log_error(NGX_LOG_INFO, rqs->log, 0,
                              "cast: request \"%V\" could not be sent to "
                              "subscription %*s...", &rq->sn.str,
                              (size_t) 8, id.data);
                ngx_http_cast_ask_unsent(rq->ask, &rq->coll, target);
            }

            json_decref(msg);
            continue;
        }

        /* another worker's socket (or a host's): whoever has it sends */

        note = json_pack("{s:s,s:s%,s:s%,s:s%,s:I,s:o}",
                         "k", "q",
                         "to", (char *) id.data, id.len,
                         "from", (char *) hub->store->address.data,
                         hub->store->address.len,
                         "rid", (char *) rq->sn.str.data, rq->sn.str.len,
                         "ttl", (json_int_t) rq->ask->timeout,
                         "m", msg);

        if (note == NULL
            || ngx_http_cast_request_post(rqs, &all, note) != NGX_OK)
        {
            ngx_http_cast_ask_unsent(rq->ask, &rq->coll, target);

        } else {
            sent++;
            remote++;
        }

        json_decref(note);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, rqs->log, 0,
                   "cast request \"%V\": sent to %ui targets, %ui through "
                   "the store", &rq->sn.str, sent, remote);

    if (sent == 0) {
        rq->coll.error = "send-error";
        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_DONE, 0);
        return;
    }

    if (rq->coll.complete) {
        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_DONE, 0);
    }
}


ngx_int_t
ngx_http_cast_request_answer(ngx_http_cast_hub_t *hub,
    ngx_http_cast_sub_t *sub, json_t *root, ngx_log_t *log)
{
    u_char                     buf[NGX_HTTP_CAST_ROUTE_KEY];
    json_t                    *note;
    ngx_str_t                  rid, name, product, key;
    ngx_str_node_t            *sn;
    ngx_http_cast_route_t     *route;
    ngx_http_cast_request_t   *rq;
    ngx_http_cast_requests_t  *rqs;

    if (ngx_http_cast_ask_response(root, &rid) != NGX_OK) {
        return NGX_DECLINED;
    }

    rqs = ngx_http_cast_requests;

    if (rqs == NULL || rqs->exiting) {
        return NGX_OK;
    }

    if (rid.len == 0) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "cast: client sent a response without a request id "
                      "(context.id or context.requestId): dropped");
        return NGX_OK;
    }

    if (sub == NULL) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "cast: client sent a response to request \"%V\" on "
                      "a socket without a subscription: dropped", &rid);
        return NGX_OK;
    }

    name = sub->record.name;
    product = sub->record.product_name;

    sn = ngx_http_cast_request_lookup(&rqs->pending, &rid);

    if (sn) {
        rq = (ngx_http_cast_request_t *) sn;

        if (!rq->listing
            && ngx_http_cast_ask_asked(&rq->coll, &sub->record.id))
        {
            ngx_http_cast_request_collect(rq, root, &name, &product, log);
            return NGX_OK;
        }
    }

    if (ngx_http_cast_route_key(buf, &sub->record.id, &rid, &key)
        != NGX_OK)
    {
        return NGX_OK;
    }

    sn = ngx_http_cast_request_lookup(&rqs->routes, &key);

    if (sn) {
        route = (ngx_http_cast_route_t *)
                    ((u_char *) sn - offsetof(ngx_http_cast_route_t, sn));

        note = json_pack("{s:s,s:s%,s:s%,s:s%,s:O}",
                         "k", "a",
                         "rid", (char *) rid.data, rid.len,
                         "n", name.len ? (char *) name.data : "", name.len,
                         "p", product.len ? (char *) product.data : "",
                         product.len,
                         "m", root);

        if (note == NULL
            || ngx_http_cast_request_post(rqs, &route->to, note) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "cast: a response to request \"%V\" could not "
                          "be passed on", &rid);
        }

        json_decref(note);
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "cast: client sent a response to request \"%V\", which "
                  "no one waits for here (unknown, over, or not sent to "
                  "this socket): dropped", &rid);

    return NGX_OK;
}


static void
ngx_http_cast_request_collect(ngx_http_cast_request_t *rq, json_t *root,
    ngx_str_t *name, ngx_str_t *product, ngx_log_t *log)
{
    ngx_int_t  rc;

    rc = ngx_http_cast_ask_collect(rq->ask, &rq->coll, root, name, product);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "cast: a response to request \"%V\" was ignored: "
                      "a duplicate, or one too many", &rq->sn.str);
        return;
    }

    if (rc == NGX_ERROR) {
        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_FAILED, 0);
        return;
    }

    if (rq->coll.complete) {
        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_DONE, 0);
    }
}


static void
ngx_http_cast_request_timeout(ngx_event_t *ev)
{
    ngx_http_cast_request_t *rq = ev->data;

    ngx_log_error(NGX_LOG_INFO, rq->rqs->log, 0,
                  "cast: request \"%V\" (%V) timed out after %M ms with "
                  "%ui answers", &rq->sn.str, &rq->ask->event,
                  rq->ask->timeout, rq->coll.answers);

    if (rq->listing) {
        /* the store did not answer in time */
        ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_UNAVAILABLE, 0);
        return;
    }

    ngx_http_cast_request_finish(rq, NGX_HTTP_CAST_DONE, 1);
}


/* the caller hears the reply, then the request goes */

static void
ngx_http_cast_request_finish(ngx_http_cast_request_t *rq, ngx_uint_t rc,
    ngx_uint_t timed_out)
{
    ngx_http_cast_result_t  res;

    ngx_http_cast_request_release(rq);
    rq->finished = 1;

    ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
    res.rc = rc;

    if (rc == NGX_HTTP_CAST_DONE) {
        res.json = ngx_http_cast_ask_reply(rq->ask, &rq->coll, timed_out);

        if (res.json == NULL) {
            res.rc = NGX_HTTP_CAST_FAILED;
        }
    }

    rq->done(rq->data, &res);

    ngx_http_cast_ask_free(&rq->coll);

    if (rq->listing) {
        /* the store's answer frees it */
        rq->cancelled = 1;
        return;
    }

    if (!rq->starting) {
        ngx_http_cast_request_free(rq);
    }
}


/* no longer waits: out of the table, no timer */

static void
ngx_http_cast_request_release(ngx_http_cast_request_t *rq)
{
    ngx_http_cast_event_cancel(&rq->timer);

    if (rq->waiting) {
        ngx_rbtree_delete(&rq->rqs->pending, &rq->sn.node);
        rq->rqs->npending--;
        rq->waiting = 0;
    }
}


static void
ngx_http_cast_request_free(ngx_http_cast_request_t *rq)
{
    ngx_http_cast_request_release(rq);
    ngx_http_cast_ask_free(&rq->coll);
    ngx_free(rq);
}


/* a note from a worker (this one too) */

static void
ngx_http_cast_request_posted(void *data, ngx_str_t *text)
{
    ngx_http_cast_hub_t *hub = data;

    u_char                     buf[NGX_HTTP_CAST_ROUTE_KEY];
    json_t                    *note, *m, *ttl;
    ngx_str_t                  k, rid, to, from, name, product, key;
    ngx_str_node_t            *sn;
    ngx_http_cast_sub_t       *sub;
    ngx_http_cast_request_t   *rq;
    ngx_http_cast_requests_t  *rqs;

    rqs = ngx_http_cast_requests;

    if (rqs == NULL || rqs->exiting) {
        return;
    }

    note = json_loadb((char *) text->data, text->len, 0, NULL);
    m = json_object_get(note, "m");

    if (ngx_http_cast_request_str(note, "k", &k) != NGX_OK || k.len != 1
        || ngx_http_cast_request_str(note, "rid", &rid) != NGX_OK
        || rid.len == 0 || rid.len > NGX_HTTP_CAST_ASK_MAX_ID
        || !json_is_object(m))
    {
        ngx_log_error(NGX_LOG_ERR, rqs->log, 0,
                      "cast: an invalid note from another worker: \"%*s\"",
                      ngx_min(text->len, 64), text->data);
        json_decref(note);
        return;
    }

    if (k.data[0] == 'q') {
        /* a request for a socket: here? */

        ttl = json_object_get(note, "ttl");

        if (ngx_http_cast_request_str(note, "to", &to) != NGX_OK
            || ngx_http_cast_request_str(note, "from", &from) != NGX_OK
            || from.len == 0 || from.len > NGX_HTTP_CAST_MAX_ADDRESS
            || !json_is_integer(ttl))
        {
            json_decref(note);
            return;
        }

        sub = ngx_http_cast_request_sub(hub, &to);

        if (sub && ngx_http_cast_route_key(buf, &to, &rid, &key) == NGX_OK
            && ngx_http_cast_request_send(sub, m) == NGX_OK)
        {
            ngx_http_cast_request_route(rqs, &key, &from,
                                        (ngx_msec_t) ngx_min(ngx_max(
                                            json_integer_value(ttl), 0),
                                            NGX_HTTP_CAST_ASK_MAX_TIMEOUT));
        }

        json_decref(note);
        return;
    }

    if (k.data[0] == 'a') {
        /* an answer to a request that waits here, or waited */

        sn = ngx_http_cast_request_lookup(&rqs->pending, &rid);

        if (sn) {
            rq = (ngx_http_cast_request_t *) sn;

            if (!rq->listing) {
                if (ngx_http_cast_request_str(note, "n", &name) != NGX_OK) {
                    ngx_str_null(&name);
                }

                if (ngx_http_cast_request_str(note, "p", &product)
                    != NGX_OK)
                {
                    ngx_str_null(&product);
                }

                ngx_http_cast_request_collect(rq, m, &name, &product,
                                              rqs->log);
            }

        } else {
            ngx_log_error(NGX_LOG_INFO, rqs->log, 0,
                          "cast: a response to request \"%V\", which no "
                          "one waits for here (over): dropped", &rid);
        }
    }

    json_decref(note);
}


/* this worker sent a request to a socket: its answers go to "to" */

static void
ngx_http_cast_request_route(ngx_http_cast_requests_t *rqs, ngx_str_t *key,
    ngx_str_t *to, ngx_msec_t ttl)
{
    ngx_str_node_t         *sn;
    ngx_http_cast_route_t  *route;

    sn = ngx_http_cast_request_lookup(&rqs->routes, key);

    if (sn) {
        route = (ngx_http_cast_route_t *)
                    ((u_char *) sn - offsetof(ngx_http_cast_route_t, sn));

        ngx_queue_remove(&route->queue);

    } else {
        if (rqs->nroutes >= rqs->max_routes
            && !ngx_queue_empty(&rqs->route_queue))
        {
            ngx_http_cast_route_free(
                ngx_queue_data(ngx_queue_head(&rqs->route_queue),
                               ngx_http_cast_route_t, queue));
        }

        route = ngx_calloc(sizeof(ngx_http_cast_route_t) + key->len,
                           rqs->log);
        if (route == NULL) {
            return;
        }

        route->rqs = rqs;
        ngx_memcpy(route->key, key->data, key->len);
        route->sn.str.data = route->key;
        route->sn.str.len = key->len;
        route->sn.node.key = ngx_crc32_long(route->key, key->len);

        route->timer.handler = ngx_http_cast_route_expired;
        route->timer.data = route;
        route->timer.log = rqs->log;
        route->timer.cancelable = 1;

        ngx_rbtree_insert(&rqs->routes, &route->sn.node);
        rqs->nroutes++;
    }

    ngx_memcpy(route->address, to->data, to->len);
    route->to.data = route->address;
    route->to.len = to->len;

    ngx_queue_insert_tail(&rqs->route_queue, &route->queue);
    ngx_add_timer(&route->timer, ttl + NGX_HTTP_CAST_ROUTE_GRACE);
}


static ngx_int_t
ngx_http_cast_route_key(u_char *buf, ngx_str_t *id, ngx_str_t *rid,
    ngx_str_t *key)
{
    if (id->len > NGX_HTTP_CAST_ID_LEN || rid->len > NGX_HTTP_CAST_ASK_MAX_ID)
    {
        return NGX_DECLINED;
    }

    key->data = buf;
    key->len = ngx_sprintf(buf, "%V %V", id, rid) - buf;

    return NGX_OK;
}


static void
ngx_http_cast_route_expired(ngx_event_t *ev)
{
    ngx_http_cast_route_free(ev->data);
}


static void
ngx_http_cast_route_free(ngx_http_cast_route_t *route)
{
    ngx_http_cast_event_cancel(&route->timer);
    ngx_queue_remove(&route->queue);
    ngx_rbtree_delete(&route->rqs->routes, &route->sn.node);
    route->rqs->nroutes--;
    ngx_free(route);
}


static ngx_int_t
ngx_http_cast_request_post(ngx_http_cast_requests_t *rqs, ngx_str_t *to,
    json_t *note)
{
    size_t      len;
    ngx_str_t   text;

    len = json_dumpb(note, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    text.data = ngx_alloc(len, rqs->log);
    if (text.data == NULL) {
        return NGX_ERROR;
    }

    text.len = json_dumpb(note, (char *) text.data, len, JSON_COMPACT);

    if (text.len != len) {
        ngx_free(text.data);
        return NGX_ERROR;
    }

    rqs->hub->store->post(rqs->hub->store, to, &text);

    ngx_free(text.data);

    return NGX_OK;
}


/* a message to a socket of this worker */

static ngx_int_t
ngx_http_cast_request_send(ngx_http_cast_sub_t *sub, json_t *msg)
{
    size_t                  len;
    ngx_int_t               rc;
    ngx_http_cast_frame_t  *frame;

    if (sub->socket == NULL || sub->ended) {
        return NGX_ERROR;
    }

    len = json_dumpb(msg, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_TEXT, NULL, len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    if (json_dumpb(msg, (char *) frame->data + frame->len - len, len,
                   JSON_COMPACT) != len)
    {
        ngx_http_cast_frame_release(frame);
        return NGX_ERROR;
    }

    rc = sub->send(sub->socket, frame, 1);
    ngx_http_cast_frame_release(frame);

    if (rc == NGX_OK) {
        sub->hub->events_out++;

    } else {
        sub->hub->dropped++;
    }

    return rc;
}


/* the subscription of a socket of this worker, by its record's id */

static ngx_http_cast_sub_t *
ngx_http_cast_request_sub(ngx_http_cast_hub_t *hub, ngx_str_t *id)
{
    ngx_str_node_t  *sn;

    sn = ngx_http_cast_request_lookup(&hub->subs, id);
    if (sn == NULL) {
        return NULL;
    }

    return (ngx_http_cast_sub_t *)
               ((u_char *) sn - offsetof(ngx_http_cast_sub_t, sn));
}


static ngx_str_node_t *
ngx_http_cast_request_lookup(ngx_rbtree_t *tree, ngx_str_t *key)
{
    return ngx_str_rbtree_lookup(tree, key,
                                 ngx_crc32_long(key->data, key->len));
}


static ngx_int_t
ngx_http_cast_request_str(json_t *obj, const char *key, ngx_str_t *s)
{
    json_t  *value;

    value = json_object_get(obj, key);

    if (!json_is_string(value)) {
        return NGX_DECLINED;
    }

    s->data = (u_char *) json_string_value(value);
    s->len = json_string_length(value);

    return NGX_OK;
}


static void
ngx_http_cast_request_fail(ngx_http_cast_done_pt done, void *data,
    ngx_uint_t rc)
{
    ngx_http_cast_result_t  res;

    ngx_memzero(&res, sizeof(ngx_http_cast_result_t));
    res.rc = rc;

    done(data, &res);
}
