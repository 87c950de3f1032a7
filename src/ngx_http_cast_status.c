
/*
 * ngx_http_cast_module: cast_status, the hub's counters as JSON (or
 * Prometheus text with ?format=prometheus).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_reply.h"
#include "ngx_http_cast_status.h"


static ngx_int_t ngx_http_cast_status_reply(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static json_int_t ngx_http_cast_status_sum(json_t *peers, const char *name,
    json_t *self);
static ngx_int_t ngx_http_cast_status_peers(json_t *body, json_t *peers);
static ngx_int_t ngx_http_cast_status_prometheus(ngx_http_request_t *r,
    ngx_http_cast_hub_t *hub);


ngx_int_t
ngx_http_cast_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   format;
    ngx_http_cast_hub_t        *hub;
    ngx_http_cast_wait_t       *w;
    ngx_http_cast_main_conf_t  *cmcf;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);
    hub = cmcf->hub;

    if (hub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && format.len == 10
        && ngx_strncmp(format.data, "prometheus", 10) == 0)
    {
        return ngx_http_cast_status_prometheus(r, hub);
    }

    w = ngx_http_cast_wait(r, ngx_http_cast_status_reply, hub);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_cast_hub_status(hub, ngx_http_cast_wait_done, w);

    return NGX_DONE;
}


/*
 * This worker's counters, the hub's records and topics as the store
 * counts them, and (Redis mode) "peers", every worker of every host as
 * reported in the last seconds, and "hub", their sums.  Without the
 * store's answer, this worker's view.
 */

static ngx_int_t
ngx_http_cast_status_reply(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *ctx)
{
    ngx_http_cast_hub_t *hub = ctx;

    json_t      *body, *worker, *peers, *v;
    json_int_t   n[5];
    ngx_uint_t   i;
    const char  *health;

    static const char  *names[] = {
        "connections", "subscriptions", "topics", "events_in", "events_out"
    };

    worker = ngx_http_cast_hub_counters(hub);
    if (worker == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* this worker's view, or the store's where the store counts */

    peers = (res->rc == NGX_HTTP_CAST_DONE)
            ? json_object_get(res->json, "peers") : NULL;

    for (i = 0; i < 5; i++) {
        n[i] = json_integer_value(json_object_get(worker, names[i]));

        v = (res->rc == NGX_HTTP_CAST_DONE)
            ? json_object_get(res->json, names[i]) : NULL;

        if (!json_is_integer(v)) {
            continue;
        }

        n[i] = json_integer_value(v);

        /* one worker holds the whole hub (local mode) */

        if (!json_is_array(peers)
            && json_object_set(worker, names[i], v) != 0)
        {
            json_decref(worker);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (json_is_array(peers)) {
        /* every worker's deliveries: their reports, this one's now */
        n[4] = ngx_http_cast_status_sum(peers, "events_out", worker);
    }

    body = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:[o]}",
                     "mode", hub->store->mode,
                     "connections", n[0],
                     "subscriptions", n[1],
                     "topics", n[2],
                     "events_in", n[3],
                     "events_out", n[4],
                     "workers", worker);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    health = hub->store->health(hub->store);

    if ((health
         && json_object_set_new(body, "redis", json_string(health)) != 0)
        || (json_is_array(peers)
            && ngx_http_cast_status_peers(body, peers) != NGX_OK))
    {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK, body);
}


/* a counter over the reports of every worker, this one's live */

static json_int_t
ngx_http_cast_status_sum(json_t *peers, const char *name, json_t *self)
{
    size_t       i;
    json_t      *peer;
    json_int_t   sum, pid;

    pid = json_integer_value(json_object_get(self, "pid"));
    sum = json_integer_value(json_object_get(self, name));

    json_array_foreach(peers, i, peer) {
        if (json_integer_value(json_object_get(peer, "pid")) == pid
            && json_equal(json_object_get(peer, "host"),
                          json_object_get(self, "host")))
        {
            continue;
        }

        sum += json_integer_value(json_object_get(peer, name));
    }

    return sum;
}


static ngx_int_t
ngx_http_cast_status_peers(json_t *body, json_t *peers)
{
    size_t   i, k;
    json_t  *sums, *sum, *peer, *v;

    static const char  *counted[] = {
        "connections", "subscriptions", "events_in", "events_out",
        "dropped", NULL
    };

    sums = json_object();
    if (sums == NULL) {
        return NGX_ERROR;
    }

    for (k = 0; counted[k]; k++) {
        if (json_object_set_new(sums, counted[k], json_integer(0)) != 0) {
            json_decref(sums);
            return NGX_ERROR;
        }
    }

    json_array_foreach(peers, i, peer) {
        for (k = 0; counted[k]; k++) {
            v = json_object_get(peer, counted[k]);
            sum = json_object_get(sums, counted[k]);

            if (json_is_integer(v)) {
                json_integer_set(sum, json_integer_value(sum)
                                      + json_integer_value(v));
            }
        }
    }

    if (json_object_set_new(sums, "workers",
                            json_integer((json_int_t) json_array_size(peers)))
        != 0
        || json_object_set_new(body, "hub", sums) != 0
        || json_object_set(body, "peers", peers) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_status_prometheus(ngx_http_request_t *r,
    ngx_http_cast_hub_t *hub)
{
    u_char       *p;
    size_t        size;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    size = 1024;

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_slprintf(b->last, b->end,
                     "# TYPE cast_connections gauge\n"
                     "cast_connections{pid=\"%P\"} %ui\n"
                     "# TYPE cast_subscriptions gauge\n"
                     "cast_subscriptions{pid=\"%P\"} %ui\n"
                     "# TYPE cast_topics gauge\n"
                     "cast_topics{pid=\"%P\"} %ui\n"
                     "# TYPE cast_events_in_total counter\n"
                     "cast_events_in_total{pid=\"%P\"} %uL\n"
                     "# TYPE cast_events_out_total counter\n"
                     "cast_events_out_total{pid=\"%P\"} %uL\n"
                     "# TYPE cast_dropped_total counter\n"
                     "cast_dropped_total{pid=\"%P\"} %uL\n",
                     ngx_pid, hub->nsubs, ngx_pid, hub->nsubs,
                     ngx_pid, hub->ntopics, ngx_pid, hub->events_in,
                     ngx_pid, hub->events_out, ngx_pid, hub->dropped);

    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
