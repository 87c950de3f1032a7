
/*
 * ngx_http_cast_module: cast_status, the hub's counters as JSON (or
 * Prometheus text with ?format=prometheus).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"


static ngx_int_t ngx_http_cast_status_prometheus(ngx_http_request_t *r,
    ngx_http_cast_hub_t *hub);


ngx_int_t
ngx_http_cast_status_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    ngx_str_t             format;
    ngx_http_cast_hub_t  *hub;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    hub = ngx_http_cast_get_hub();
    if (hub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && format.len == 10
        && ngx_strncmp(format.data, "prometheus", 10) == 0)
    {
        return ngx_http_cast_status_prometheus(r, hub);
    }

    if (hub->bus != NULL && ngx_http_cast_bus_ready(hub->bus)) {
        /* with the other workers and hosts, from their reports in Redis */
        return ngx_http_cast_bus_status(r);
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK,
                                       ngx_http_cast_status_body(hub));
}


/* this worker's view; in local mode it is the whole hub */

json_t *
ngx_http_cast_status_body(ngx_http_cast_hub_t *hub)
{
    json_t  *worker, *body;

    worker = ngx_http_cast_status_worker(hub);
    if (worker == NULL) {
        return NULL;
    }

    body = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:[o]}",
                     "mode", hub->bus ? "redis" : "local",
                     "connections", (json_int_t) hub->nsockets,
                     "subscriptions", (json_int_t) hub->nsubs,
                     "topics", (json_int_t) hub->ntopics,
                     "events_in", (json_int_t) hub->events_in,
                     "events_out", (json_int_t) hub->events_out,
                     "workers", worker);
    if (body == NULL) {
        return NULL;
    }

    /* cast_redis: this worker's command and pubsub connections */

    if (hub->bus != NULL
        && json_object_set_new(body, "redis", json_string(
               ngx_http_cast_bus_ready(hub->bus)
               ? "connected" : "disconnected"))
           != 0)
    {
        json_decref(body);
        return NULL;
    }

    return body;
}


/* this worker's counters; Redis mode reports them every 2 s as well */

json_t *
ngx_http_cast_status_worker(ngx_http_cast_hub_t *hub)
{
    return json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s%}",
                     "pid", (int) ngx_pid,
                     "connections", (json_int_t) hub->nsockets,
                     "subscriptions", (json_int_t) hub->nsubs,
                     "topics", (json_int_t) hub->ntopics,
                     "events_in", (json_int_t) hub->events_in,
                     "events_out", (json_int_t) hub->events_out,
                     "dropped", (json_int_t) hub->dropped,
                     "acks", (json_int_t) hub->acks,
                     "host", (char *) ngx_cycle->hostname.data,
                     (size_t) ngx_cycle->hostname.len);
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
                     ngx_pid, hub->nsockets, ngx_pid, hub->nsubs,
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
