
/*
 * ngx_http_cast_module: HTTP replies of the edges (JSON bodies, errors,
 * CORS headers), and requests that wait for the hub.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_reply.h"
#include "ngx_http_cast_text.h"


/* a request waiting for a hub operation; outlives it if need be */

struct ngx_http_cast_wait_s {
    ngx_http_request_t        *request;     /* NULL once it is gone */
    ngx_http_cleanup_t        *cleanup;
    ngx_http_cast_reply_pt     reply;
    ngx_http_cast_abandon_pt   abandon;     /* or NULL */
    void                      *ctx;
};


static void ngx_http_cast_wait_cleanup(void *data);


/*
 * The request is held (r->main->count) until the hub answers: at once in
 * local mode, later in Redis mode.  The caller returns NGX_DONE.
 */

ngx_http_cast_wait_t *
ngx_http_cast_wait(ngx_http_request_t *r, ngx_http_cast_reply_pt reply,
    void *ctx)
{
    ngx_http_cleanup_t    *cln;
    ngx_http_cast_wait_t  *w;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NULL;
    }

    w = ngx_alloc(sizeof(ngx_http_cast_wait_t), r->connection->log);
    if (w == NULL) {
        return NULL;
    }

    w->request = r;
    w->cleanup = cln;
    w->reply = reply;
    w->abandon = NULL;
    w->ctx = ctx;

    cln->handler = ngx_http_cast_wait_cleanup;
    cln->data = w;

    r->main->count++;

    return w;
}


void
ngx_http_cast_wait_abandon(ngx_http_cast_wait_t *w,
    ngx_http_cast_abandon_pt abandon)
{
    w->abandon = abandon;
}


/* the hub's callback: the reply, then the request is finalized */

void
ngx_http_cast_wait_done(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_wait_t *w = data;

    void                    *ctx;
    ngx_int_t                rc;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_cast_reply_pt   reply;

    r = w->request;
    reply = w->reply;
    ctx = w->ctx;

    if (r == NULL) {
        /* the request was terminated while it waited */

        if (w->abandon) {
            w->abandon(res);
        }

        ngx_free(w);
        return;
    }

    w->cleanup->handler = NULL;
    ngx_free(w);

    c = r->connection;
    ngx_http_set_log_request(c->log, r);

    rc = reply(r, res, ctx);
    ngx_http_finalize_request(r, rc);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_cast_wait_cleanup(void *data)
{
    ngx_http_cast_wait_t *w = data;

    w->request = NULL;
}


/* the store could not be reached, or failed: 503 or 500 */

ngx_int_t
ngx_http_cast_send_failure(ngx_http_request_t *r, ngx_uint_t rc)
{
    ngx_str_t                  retry;
    ngx_http_cast_loc_conf_t  *clcf;

    if (rc == NGX_HTTP_CAST_FULL) {
        return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the hub holds as many topics as "
                                        "it may (cast_max_topics)");
    }

    if (rc == NGX_HTTP_CAST_SUBS_FULL) {
        return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the hub holds as many "
                                        "subscriptions as it may "
                                        "(cast_max_subscriptions)");
    }

    if (rc == NGX_HTTP_CAST_TOPIC_FULL) {
        return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the topic has as many "
                                        "subscriptions as it may "
                                        "(cast_max_subscriptions_per_topic)");
    }

    if (rc == NGX_HTTP_CAST_CONTEXT_FULL) {
        return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the hub keeps as much context as "
                                        "it may (cast_max_context_total)");
    }

    if (rc == NGX_HTTP_CAST_TOO_LARGE) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

        return ngx_http_cast_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                        "the context exceeds "
                                        "cast_max_context_size (%uz bytes)",
                                        clcf->max_context);
    }

    if (rc == NGX_HTTP_CAST_CONFLICT) {
        return ngx_http_cast_send_error(r, NGX_HTTP_CONFLICT,
                                        "context.versionId is not the "
                                        "current version");
    }

    if (rc == NGX_HTTP_CAST_INVALID) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "the event was refused");
    }

    if (rc == NGX_HTTP_CAST_UNAVAILABLE) {
        ngx_str_set(&retry, "1");

        if (ngx_http_cast_add_header(r, "Retry-After", &retry) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_cast_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "the hub's Redis is unreachable, "
                                        "try again");
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* a publish refused by the topic's state says why; else as above */

ngx_int_t
ngx_http_cast_send_refused(ngx_http_request_t *r, ngx_uint_t rc,
    ngx_str_t *reason)
{
    ngx_uint_t  status;

    if (reason == NULL || reason->len == 0) {
        return ngx_http_cast_send_failure(r, rc);
    }

    switch (rc) {

    case NGX_HTTP_CAST_CONFLICT:
        status = NGX_HTTP_CONFLICT;
        break;

    case NGX_HTTP_CAST_INVALID:
        status = NGX_HTTP_BAD_REQUEST;
        break;

    case NGX_HTTP_CAST_TOO_LARGE:
        status = NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
        break;

    case NGX_HTTP_CAST_NOT_FOUND:
        status = NGX_HTTP_NOT_FOUND;
        break;

    case NGX_HTTP_CAST_FULL:
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        break;

    default:
        return ngx_http_cast_send_failure(r, rc);
    }

    return ngx_http_cast_send_error(r, status, "%V", reason);
}


ngx_int_t
ngx_http_cast_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_str_t  text;

    if (ngx_http_cast_json_dump(r->pool, body, &text) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_text(r, status, &text);
}


/* a body serialized already; "text" must outlive the request's output */

ngx_int_t
ngx_http_cast_send_json_text(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *text)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_cast_add_cors(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = text->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = text->data;
    b->last = text->data + text->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* the same, and the object is released; NULL (out of memory): 500 */

ngx_int_t
ngx_http_cast_send_json_new(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_int_t  rc;

    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_cast_send_json(r, status, body);
    json_decref(body);

    return rc;
}


/* an accepted event: cast 200 {"status":"received"}, fhircast 202 {} */

ngx_int_t
ngx_http_cast_send_published(ngx_http_request_t *r)
{
    ngx_http_cast_loc_conf_t  *clcf;

    /* the same every time: not built and serialized per event */

    static ngx_str_t  fhircast = ngx_string("{}");
    static ngx_str_t  cast = ngx_string("{\"status\":\"received\"}");

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (clcf->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
        return ngx_http_cast_send_json_text(r, NGX_HTTP_ACCEPTED, &fhircast);
    }

    return ngx_http_cast_send_json_text(r, NGX_HTTP_OK, &cast);
}


/* {"error":"..."} with a log line at info, like nginx's client errors */

ngx_int_t
ngx_http_cast_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    u_char     msg[1024], *last;
    json_t    *body, *reason;
    va_list    args;

    va_start(args, fmt);
    last = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: %ui %*s", status, (size_t) (last - msg), msg);

    body = json_object();
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the message may quote client bytes: invalid UTF-8 is replaced */

    reason = json_stringn((char *) msg,
                          ngx_http_cast_utf8_trim(msg, last - msg));
    if (reason == NULL) {
        reason = json_string("invalid request (the reason is not UTF-8)");
    }

    if (json_object_set_new(body, "error", reason) != 0) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_new(r, status, body);
}


ngx_int_t
ngx_http_cast_add_cors(ngx_http_request_t *r)
{
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (clcf->cors_origin.len == 0) {
        return NGX_OK;
    }

    return ngx_http_cast_add_header(r, "Access-Control-Allow-Origin",
                                    &clcf->cors_origin);
}


ngx_int_t
ngx_http_cast_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);

    h->value = *value;

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_send_too_large(ngx_http_request_t *r)
{
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    return ngx_http_cast_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "the request body exceeds "
                                    "cast_max_message_size (%uz bytes)",
                                    clcf->max_message_size);
}


/*
 * The body in one piece, from memory buffers or the temp file;
 * NGX_DECLINED when it is larger than cast_max_message_size.
 */

ngx_int_t
ngx_http_cast_read_body(ngx_http_request_t *r, size_t max, ngx_str_t *body)
{
    u_char       *p;
    off_t         size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        size += ngx_buf_size(cl->buf);
    }

    if (size > (off_t) max) {
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (size == 0) {
        return NGX_OK;
    }

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body->data = p;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "cast: could not read the request body "
                              "from \"%V\"", &b->file->name);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    body->len = p - body->data;

    return NGX_OK;
}


/* a CORS preflight (OPTIONS): 204 with the methods of the route */

ngx_int_t
ngx_http_cast_send_preflight(ngx_http_request_t *r, ngx_str_t *allow)
{
    ngx_str_t                  v;
    ngx_int_t                  rc;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (ngx_http_cast_add_header(r, "Allow", allow) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (clcf->cors_origin.len) {
        if (ngx_http_cast_add_cors(r) != NGX_OK
            || ngx_http_cast_add_header(r, "Access-Control-Allow-Methods",
                                        allow)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&v, "Origin, X-Requested-With, Content-Type, Accept, "
                        "Authorization");

        if (ngx_http_cast_add_header(r, "Access-Control-Allow-Headers", &v)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&v, "3600");

        if (ngx_http_cast_add_header(r, "Access-Control-Max-Age", &v)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    return NGX_OK;
}
