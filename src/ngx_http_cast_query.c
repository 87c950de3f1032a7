
/*
 * ngx_http_cast_module: the HTTP routes that ask other apps (Cast
 * reference 1.8), under a cast_hub location {base}:
 *
 *   GET  {base}/cast-get?subscriber=NAME[&dataType=T][&topic=T][&actor=A]
 *   POST {base}/request      a JSON body
 *
 * A request waits for the hub core's reply (src/ngx_http_cast_request.c)
 * without holding the worker: the HTTP request is kept (r->main->count)
 * until the reply comes; a client that goes away meanwhile cancels it
 * (its timer and entry go with the request's pool).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_ask.h"
#include "ngx_http_cast_auth.h"
#include "ngx_http_cast_query.h"
#include "ngx_http_cast_reply.h"
#include "ngx_http_cast_request.h"
#include "ngx_http_cast_text.h"


#define NGX_HTTP_CAST_QUERY_GET      1
#define NGX_HTTP_CAST_QUERY_REQUEST  2


typedef struct {
    ngx_http_request_t        *request;
    ngx_http_cast_request_t   *pending;     /* while the hub core has it */
    ngx_http_cast_grant_t     *grant;       /* cast_auth; NULL: off */
    json_t                    *body;        /* G2 */
    json_t                    *actor;       /* G1 */
    ngx_http_cast_ask_t        ask;
    u_char                     id[NGX_HTTP_CAST_UUID_LEN];
} ngx_http_cast_query_t;


static ngx_uint_t ngx_http_cast_query_route(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_query_get(ngx_http_request_t *r,
    ngx_http_cast_query_t *q);
static void ngx_http_cast_query_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_query_post(ngx_http_request_t *r,
    ngx_http_cast_query_t *q);
static ngx_int_t ngx_http_cast_query_wait(ngx_http_request_t *r,
    ngx_http_cast_query_t *q);
static void ngx_http_cast_query_done(void *data, ngx_http_cast_result_t *res);
static ngx_int_t ngx_http_cast_query_reply(ngx_http_request_t *r,
    ngx_http_cast_query_t *q, ngx_http_cast_result_t *res);
static void ngx_http_cast_query_cleanup(void *data);
static ngx_int_t ngx_http_cast_query_arg(ngx_http_request_t *r,
    const char *name, size_t max, ngx_str_t *value, const char **why);
static ngx_int_t ngx_http_cast_query_not_allowed(ngx_http_request_t *r,
    ngx_str_t *allow);


ngx_int_t
ngx_http_cast_query_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc, arc;
    ngx_str_t                   allow;
    ngx_uint_t                  route;
    ngx_pool_cleanup_t         *cln;
    ngx_http_cast_query_t      *q;
    ngx_http_cast_loc_conf_t   *clcf;
    ngx_http_cast_main_conf_t  *cmcf;

    route = ngx_http_cast_query_route(r);

    if (route == 0) {
        return NGX_DECLINED;
    }

    if (route == NGX_HTTP_CAST_QUERY_GET) {
        ngx_str_set(&allow, "GET, OPTIONS");

    } else {
        ngx_str_set(&allow, "POST, OPTIONS");
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_cast_send_preflight(r, &allow);
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);
    if (cmcf->hub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* not HEAD: it would ask the app all the same */

    if (r->method != (route == NGX_HTTP_CAST_QUERY_GET ? NGX_HTTP_GET
                                                        : NGX_HTTP_POST))
    {
        return ngx_http_cast_query_not_allowed(r, &allow);
    }

    q = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_query_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (q == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->request = r;
    cln->handler = ngx_http_cast_query_cleanup;
    cln->data = q;

    ngx_http_set_ctx(r, q, ngx_http_cast_module);

    rc = ngx_http_cast_auth_token(r, &q->grant, &arc);

    if (rc != NGX_OK) {
        (void) ngx_http_discard_request_body(r);
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (route == NGX_HTTP_CAST_QUERY_GET) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_cast_query_get(r, q);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (r->headers_in.content_length_n > (off_t) clcf->max_message_size) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_cast_send_too_large(r);
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_cast_query_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* {base}/cast-get, {base}/request (either with a trailing "/") */

static ngx_uint_t
ngx_http_cast_query_route(ngx_http_request_t *r)
{
    size_t                     len;
    u_char                    *p;
    ngx_str_t                  base;
    ngx_http_core_loc_conf_t  *hclcf;

    hclcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    base = hclcf->name;

    if (base.len && base.data[base.len - 1] == '/') {
        base.len--;
    }

    if (r->uri.len <= base.len + 1
        || ngx_strncmp(r->uri.data, base.data, base.len) != 0
        || r->uri.data[base.len] != '/')
    {
        return 0;
    }

    p = r->uri.data + base.len + 1;
    len = r->uri.len - base.len - 1;

    if (p[len - 1] == '/') {
        len--;
    }

    if (len == sizeof("cast-get") - 1
        && ngx_strncmp(p, "cast-get", len) == 0)
    {
        return NGX_HTTP_CAST_QUERY_GET;
    }

    if (len == sizeof("request") - 1 && ngx_strncmp(p, "request", len) == 0)
    {
        return NGX_HTTP_CAST_QUERY_REQUEST;
    }

    return 0;
}


/* G1: GET {base}/cast-get?subscriber=...[&dataType=][&topic=][&actor=] */

static ngx_int_t
ngx_http_cast_query_get(ngx_http_request_t *r, ngx_http_cast_query_t *q)
{
    ngx_int_t    rc, arc;
    ngx_str_t    name, data_type, topic, actor, id, *value;
    ngx_uint_t   i, code;
    const char  *why;

    static struct {
        const char  *name;
        size_t       max;
    } args[] = {
        { "subscriber", NGX_HTTP_CAST_MAX_FIELD },
        { "dataType", NGX_HTTP_CAST_MAX_EVENT_NAME },
        { "topic", NGX_HTTP_CAST_MAX_TOPIC },
        { "actor", NGX_HTTP_CAST_MAX_FIELD }
    };

    ngx_str_t  *values[] = { &name, &data_type, &topic, &actor };

    for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        value = values[i];

        rc = ngx_http_cast_query_arg(r, args[i].name, args[i].max, value,
                                     &why);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "the \"%s\" parameter %s",
                                            args[i].name, why);
        }
    }

    if (name.len == 0) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "Missing 'subscriber' parameter");
    }

    if (topic.len) {
        code = ngx_http_cast_text_topic(topic.data, topic.len,
                                        NGX_HTTP_CAST_MAX_TOPIC);
        if (code != NGX_HTTP_CAST_TEXT_OK) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "the \"topic\" parameter %s",
                                            ngx_http_cast_text_reason(code));
        }
    }

    /* "actor": JSON as the clients send it, else the text itself */

    if (actor.len) {
        q->actor = json_loadb((char *) actor.data, actor.len,
                              JSON_DECODE_ANY, NULL);

        if (q->actor == NULL) {
            q->actor = json_stringn((char *) actor.data, actor.len);

            if (q->actor == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    /* cast_auth: the token's topic, and a read scope */

    rc = ngx_http_cast_auth_topic(r, q->grant, &topic, &arc);

    if (rc == NGX_OK) {
        rc = ngx_http_cast_auth_any(r, q->grant, NGX_HTTP_CAST_SCOPE_READ,
                                    &arc);
    }

    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_cast_new_uuid(q->id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    id.data = q->id;
    id.len = NGX_HTTP_CAST_UUID_LEN;

    ngx_http_cast_ask_get(&q->ask, &id, &name, &data_type, &topic, q->actor);

    return ngx_http_cast_query_wait(r, q);
}


static void
ngx_http_cast_query_body(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_cast_query_t  *q;

    q = ngx_http_get_module_ctx(r, ngx_http_cast_module);

    rc = ngx_http_cast_query_post(r, q);

    /* NGX_DONE: the hub core holds the request and finalizes it */

    ngx_http_finalize_request(r, rc);
}


/* G2: POST {base}/request */

static ngx_int_t
ngx_http_cast_query_post(ngx_http_request_t *r, ngx_http_cast_query_t *q)
{
    u_char                     lower[NGX_HTTP_CAST_MAX_EVENT_NAME];
    ngx_int_t                  rc, arc;
    ngx_str_t                  body, err, event;
    const char                *msg;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    rc = ngx_http_cast_read_body(r, clcf->max_message_size, &body);

    if (rc == NGX_DECLINED) {
        return ngx_http_cast_send_too_large(r);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_cast_json_parse(r->pool, body.data, body.len, &q->body,
                                  &err);
    if (rc == NGX_DECLINED) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V", &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_cast_ask_parse(q->body, &q->ask, &msg) != NGX_OK) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%s", msg);
    }

    /* cast_auth: the token's topic, and a write scope for the event */

    event.data = lower;
    event.len = q->ask.event.len;
    ngx_strlow(lower, q->ask.event.data, event.len);

    rc = ngx_http_cast_auth_topic(r, q->grant, &q->ask.topic, &arc);

    if (rc == NGX_OK) {
        rc = ngx_http_cast_auth_event(r, q->grant, &event,
                                      NGX_HTTP_CAST_SCOPE_WRITE, &arc);
    }

    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_query_wait(r, q);
}


/*
 * The request is held until the hub core answers; the client's going
 * away is noticed (ngx_http_test_reading) and cancels the wait.
 */

static ngx_int_t
ngx_http_cast_query_wait(ngx_http_request_t *r, ngx_http_cast_query_t *q)
{
    ngx_http_cast_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);

    r->main->count++;

    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    q->pending = ngx_http_cast_request_start(cmcf->hub, &q->ask,
                                             ngx_http_cast_query_done, q);
    return NGX_DONE;
}


static void
ngx_http_cast_query_done(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_query_t *q = data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = q->request;
    c = r->connection;

    q->pending = NULL;

    ngx_http_set_log_request(c->log, r);

    rc = ngx_http_cast_query_reply(r, q, res);
    ngx_http_finalize_request(r, rc);

    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_cast_query_reply(ngx_http_request_t *r, ngx_http_cast_query_t *q,
    ngx_http_cast_result_t *res)
{
    ngx_str_t  retry;

    switch (res->rc) {

    case NGX_HTTP_CAST_DONE:
        return ngx_http_cast_send_json(r, NGX_HTTP_OK, res->json);

    case NGX_HTTP_CAST_BOUND:
        return ngx_http_cast_send_error(r, NGX_HTTP_CONFLICT,
                                        "a request with the id \"%V\" "
                                        "waits already", &q->ask.id);

    case NGX_HTTP_CAST_FULL:
        ngx_str_set(&retry, "1");

        if (ngx_http_cast_add_header(r, "Retry-After", &retry) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "as many requests wait as the hub "
                                        "lets wait (cast_max_requests), "
                                        "try again");

    default:
        return ngx_http_cast_send_failure(r, res->rc);
    }
}


/* the request's pool goes: a wait still on is cancelled */

static void
ngx_http_cast_query_cleanup(void *data)
{
    ngx_http_cast_query_t *q = data;

    if (q->pending) {
        ngx_log_error(NGX_LOG_INFO, q->request->connection->log, 0,
                      "cast: the client went while its request \"%V\" "
                      "waited", &q->ask.id);

        ngx_http_cast_request_cancel(q->pending);
        q->pending = NULL;
    }

    json_decref(q->body);
    json_decref(q->actor);
}


/*
 * An argument of the query string, decoded ("+" is a space); an empty
 * value when absent.  NGX_DECLINED (*why says why) for a 400.
 */

static ngx_int_t
ngx_http_cast_query_arg(ngx_http_request_t *r, const char *name,
    size_t max, ngx_str_t *value, const char **why)
{
    u_char     *p, *dst, *src;
    size_t      i;
    ngx_str_t   raw;
    ngx_uint_t  code;

    value->len = 0;
    value->data = (u_char *) "";

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK
        || raw.len == 0)
    {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, raw.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < raw.len; i++) {
        p[i] = (raw.data[i] == '+') ? ' ' : raw.data[i];
    }

    src = p;
    dst = p;
    ngx_unescape_uri(&dst, &src, raw.len, 0);

    value->data = p;
    value->len = dst - p;

    code = ngx_http_cast_text_field(value->data, value->len, max, 0);

    if (code != NGX_HTTP_CAST_TEXT_OK) {
        *why = ngx_http_cast_text_reason(code);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_query_not_allowed(ngx_http_request_t *r, ngx_str_t *allow)
{
    (void) ngx_http_discard_request_body(r);

    if (ngx_http_cast_add_header(r, "Allow", allow) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method %V is not allowed here",
                                    &r->method_name);
}
