
/*
 * ngx_http_cast_module: the HTTP routes of a cast_hub location {base}
 * (SPEC 2): subscribe / unsubscribe, publish, current context,
 * discovery, reset, CORS preflight.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_api.h"
#include "ngx_http_cast_auth.h"
#include "ngx_http_cast_conf_routes.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_query.h"
#include "ngx_http_cast_reply.h"
#include "ngx_http_cast_text.h"


#define NGX_HTTP_CAST_ROUTE_BASE       0
#define NGX_HTTP_CAST_ROUTE_TOPIC      1
#define NGX_HTTP_CAST_ROUTE_DISCOVERY  2
#define NGX_HTTP_CAST_ROUTE_CONFERENCE 3

#define NGX_HTTP_CAST_CT_NONE          0
#define NGX_HTTP_CAST_CT_FORM          1
#define NGX_HTTP_CAST_CT_JSON          2
#define NGX_HTTP_CAST_CT_OTHER         3


typedef struct {
    ngx_uint_t                 route;
    ngx_uint_t                 conference;  /* NGX_HTTP_CAST_CONF_ROUTE_* */
    ngx_str_t                  topic;       /* from the path */
    ngx_http_cast_grant_t     *grant;       /* cast_auth; NULL: off */
} ngx_http_cast_api_ctx_t;


static ngx_int_t ngx_http_cast_api_route(ngx_http_request_t *r,
    ngx_http_cast_api_ctx_t *ctx);
static void ngx_http_cast_api_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_api_post(ngx_http_request_t *r,
    ngx_http_cast_api_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_cast_api_subscription(ngx_http_request_t *r,
    ngx_http_cast_fields_t *f);
static ngx_int_t ngx_http_cast_api_subscribe(ngx_http_request_t *r,
    ngx_http_cast_fields_t *f);
static ngx_int_t ngx_http_cast_api_subscribed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static ngx_int_t ngx_http_cast_api_renewed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static ngx_int_t ngx_http_cast_api_unsubscribe(ngx_http_request_t *r,
    ngx_http_cast_fields_t *f);
static ngx_int_t ngx_http_cast_api_unsubscribed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static ngx_int_t ngx_http_cast_api_removed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static ngx_int_t ngx_http_cast_api_cleared(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static ngx_int_t ngx_http_cast_api_publish(ngx_http_request_t *r,
    json_t *root, ngx_str_t *path_topic, ngx_str_t *body);
static ngx_int_t ngx_http_cast_api_published(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static void ngx_http_cast_api_json_cleanup(void *data);
static ngx_int_t ngx_http_cast_api_reset(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_cast_api_context(ngx_http_request_t *r,
    ngx_http_cast_api_ctx_t *ctx);
static ngx_int_t ngx_http_cast_api_context_reply(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static ngx_int_t ngx_http_cast_api_discovery(ngx_http_request_t *r);
static ngx_http_cast_hub_t *ngx_http_cast_api_hub(ngx_http_request_t *r);
static ngx_http_cast_grant_t *ngx_http_cast_api_grant(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_api_granted(ngx_http_request_t *r,
    ngx_http_cast_record_t *record, ngx_str_t *endpoint);
static ngx_uint_t ngx_http_cast_content_type(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_endpoint_id(ngx_str_t *value, ngx_str_t *id);
static char *ngx_http_cast_topic_error(ngx_str_t *topic,
    ngx_uint_t dialect);
static ngx_int_t ngx_http_cast_endpoint_prefix(ngx_http_request_t *r,
    ngx_http_cast_loc_conf_t *clcf, ngx_str_t *out);
static json_t *ngx_http_cast_endpoint_reply(ngx_str_t *endpoint);
static int64_t ngx_http_cast_now_ms(void);
static ngx_str_t *ngx_http_cast_api_allow(ngx_http_request_t *r,
    ngx_http_cast_api_ctx_t *ctx);


/* the methods of each route, by NGX_HTTP_CAST_ROUTE_* */
static ngx_str_t  ngx_http_cast_allow[] = {
    ngx_string("POST, DELETE, OPTIONS"),
    ngx_string("GET, HEAD, POST, OPTIONS"),
    ngx_string("GET, HEAD, OPTIONS")
};

/* {base} where "cast_reset" is off: no DELETE */
static ngx_str_t  ngx_http_cast_allow_no_reset = ngx_string("POST, OPTIONS");


/*
 * Discovery (reference 8): the STU3 events; the content-sharing ones
 * only with cast_content_sharing; Cast's own in the cast dialect;
 * "heartbeat" goes to subscriptions that list it.
 */

static const char  *ngx_http_cast_events_stu3[] = {
    "Patient-open", "Patient-close", "Encounter-open", "Encounter-close",
    "ImagingStudy-open", "ImagingStudy-close",
    "DiagnosticReport-open", "DiagnosticReport-close",
    "DiagnosticReport-select",
    "Home-open", "SyncError", "UserLogout", "UserHibernate", "heartbeat",
    NULL
};

static const char  *ngx_http_cast_events_shared[] = {
    "DiagnosticReport-update", NULL
};

static const char  *ngx_http_cast_events_cast[] = {
    "annotation-update", "annotation-delete", "measurement-update",
    "scene-update", "status-update", NULL
};


ngx_int_t
ngx_http_cast_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc, arc;
    ngx_http_cast_api_ctx_t   *ctx;
    ngx_http_cast_loc_conf_t  *clcf;

    if (ngx_http_cast_api_hub(r) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* {base}/cast-get, {base}/request: asking other apps */

    rc = ngx_http_cast_query_handler(r);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_api_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_cast_module);

    if (ngx_http_cast_api_route(r, ctx) != NGX_OK) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "no cast route at \"%V\"", &r->uri);
    }

    if (ctx->route == NGX_HTTP_CAST_ROUTE_CONFERENCE) {
        return ngx_http_cast_conf_routes_handler(r, ctx->conference);
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_cast_send_preflight(r,
                                            ngx_http_cast_api_allow(r, ctx));
    }

    switch (r->method) {

    case NGX_HTTP_GET:
    case NGX_HTTP_HEAD:
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ctx->route == NGX_HTTP_CAST_ROUTE_DISCOVERY) {
            return ngx_http_cast_api_discovery(r);
        }

        if (ctx->route == NGX_HTTP_CAST_ROUTE_TOPIC) {
            rc = ngx_http_cast_auth_token(r, &ctx->grant, &arc);

            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (rc == NGX_DONE) {
                return arc;
            }

            return ngx_http_cast_api_context(r, ctx);
        }

        break;

    case NGX_HTTP_POST:
        if (ctx->route == NGX_HTTP_CAST_ROUTE_DISCOVERY) {
            break;
        }

        goto body;

    case NGX_HTTP_DELETE:
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

        if (ctx->route == NGX_HTTP_CAST_ROUTE_BASE && clcf->reset) {
            goto body;
        }

        break;
    }

    (void) ngx_http_discard_request_body(r);

    if (ngx_http_cast_add_header(r, "Allow", ngx_http_cast_api_allow(r, ctx))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method %V is not allowed here",
                                    &r->method_name);

body:

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    /*
     * subscribe, unsubscribe, publish: the bearer token first (DELETE
     * {base} is an admin route, left to nginx's access control)
     */

    if (r->method == NGX_HTTP_POST) {
        rc = ngx_http_cast_auth_token(r, &ctx->grant, &arc);

        if (rc != NGX_OK) {
            (void) ngx_http_discard_request_body(r);
            return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (r->headers_in.content_length_n > (off_t) clcf->max_message_size) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_cast_send_too_large(r);
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_cast_api_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* {base}, {base}/, {base}/{topic}, {base}/.well-known/... */

static ngx_int_t
ngx_http_cast_api_route(ngx_http_request_t *r, ngx_http_cast_api_ctx_t *ctx)
{
    u_char                    *p, *end;
    ngx_str_t                  base, rest;
    ngx_http_core_loc_conf_t  *hclcf;

    static ngx_str_t  well_known =
        ngx_string("/.well-known/fhircast-configuration");

    hclcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    base = hclcf->name;

    if (base.len && base.data[base.len - 1] == '/') {
        base.len--;
    }

    if (r->uri.len < base.len
        || ngx_strncmp(r->uri.data, base.data, base.len) != 0)
    {
        return NGX_DECLINED;
    }

    p = r->uri.data + base.len;
    end = r->uri.data + r->uri.len;

    if (p == end || (end - p == 1 && *p == '/')) {
        ctx->route = NGX_HTTP_CAST_ROUTE_BASE;
        return NGX_OK;
    }

    if (*p != '/') {
        return NGX_DECLINED;
    }

    if ((size_t) (end - p) == well_known.len
        && ngx_strncmp(p, well_known.data, well_known.len) == 0)
    {
        ctx->route = NGX_HTTP_CAST_ROUTE_DISCOVERY;
        return NGX_OK;
    }

    /* {base}/conference..., {base}/conference-topics (G2) */

    rest.data = p;
    rest.len = end - p;

    if (ngx_http_cast_conf_route(&rest, &ctx->conference) == NGX_OK) {
        ctx->route = NGX_HTTP_CAST_ROUTE_CONFERENCE;
        return NGX_OK;
    }

    p++;

    if (ngx_strlchr(p, end, '/') != NULL) {
        return NGX_DECLINED;
    }

    ctx->route = NGX_HTTP_CAST_ROUTE_TOPIC;
    ctx->topic.data = p;
    ctx->topic.len = end - p;

    return NGX_OK;
}


static void
ngx_http_cast_api_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  body;
    ngx_http_cast_api_ctx_t   *ctx;
    ngx_http_cast_loc_conf_t  *clcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_cast_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    rc = ngx_http_cast_read_body(r, clcf->max_message_size, &body);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_cast_send_too_large(r);

    } else if (rc == NGX_OK) {
        if (r->method == NGX_HTTP_DELETE) {
            rc = ngx_http_cast_api_reset(r, &body);

        } else {
            rc = ngx_http_cast_api_post(r, ctx, &body);
        }
    }

    /* NGX_DONE: a hub operation holds the request and finalizes it */

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_cast_api_post(ngx_http_request_t *r, ngx_http_cast_api_ctx_t *ctx,
    ngx_str_t *body)
{
    json_t                    *root;
    ngx_int_t                  rc;
    ngx_str_t                  err;
    ngx_uint_t                 ct;
    ngx_http_cast_fields_t     fields;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);
    ct = ngx_http_cast_content_type(r);

    if (ct == NGX_HTTP_CAST_CT_NONE
        && clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST
        && ctx->route == NGX_HTTP_CAST_ROUTE_BASE)
    {
        /* G1 and G2 parse anything that is not JSON as a form */
        ct = NGX_HTTP_CAST_CT_FORM;
    }

    if (ct == NGX_HTTP_CAST_CT_FORM) {

        if (ctx->route == NGX_HTTP_CAST_ROUTE_TOPIC) {
            return ngx_http_cast_send_error(r,
                                     NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "events must be sent as "
                                     "application/json");
        }

        rc = ngx_http_cast_form_parse(r->pool, body->data, body->len,
                                      &fields, &err);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V",
                                            &err);
        }

        return ngx_http_cast_api_subscription(r, &fields);
    }

    if (ct != NGX_HTTP_CAST_CT_JSON) {
        return ngx_http_cast_send_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "unsupported Content-Type: subscriptions "
                                 "are application/x-www-form-urlencoded, "
                                 "events application/json");
    }

    rc = ngx_http_cast_json_parse(r->pool, body->data, body->len, &root,
                                  &err);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V", &err);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "the request body must be a JSON "
                                        "object");
    }

    if (ctx->route == NGX_HTTP_CAST_ROUTE_BASE
        && json_object_get(root, "hub.mode") != NULL)
    {
        if (clcf->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
            json_decref(root);
            return ngx_http_cast_send_error(r,
                                     NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "subscription requests must be "
                                     "application/x-www-form-urlencoded");
        }

        rc = ngx_http_cast_fields_from_json(r->pool, root, &fields, &err);
        json_decref(root);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V",
                                            &err);
        }

        return ngx_http_cast_api_subscription(r, &fields);
    }

    if (ctx->route == NGX_HTTP_CAST_ROUTE_BASE
        && json_object_get(root, "event") == NULL)
    {
        json_decref(root);
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "expected \"hub.mode\" (subscribe, "
                                        "unsubscribe) or \"event\" "
                                        "(publish)");
    }

    /* the event's JSON goes with the request */

    return ngx_http_cast_api_publish(r, root,
                                     ctx->route == NGX_HTTP_CAST_ROUTE_TOPIC
                                     ? &ctx->topic : NULL, body);
}


static ngx_int_t
ngx_http_cast_api_subscription(ngx_http_request_t *r,
    ngx_http_cast_fields_t *f)
{
    ngx_str_t                 *mode, *type;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    mode = &f->value[NGX_HTTP_CAST_F_MODE];
    type = &f->value[NGX_HTTP_CAST_F_CHANNEL_TYPE];

    /* every field is UTF-8 without control characters (form.c) */

    if (mode->len == 0) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "missing hub.mode");
    }

    if (f->set[NGX_HTTP_CAST_F_CHANNEL_TYPE]) {
        if (type->len != sizeof("websocket") - 1
            || ngx_strncasecmp(type->data, (u_char *) "websocket",
                               type->len) != 0)
        {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "unsupported hub.channel.type \"%V\": "
                                     "only websocket is supported", type);
        }

    } else if (clcf->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "missing hub.channel.type");
    }

    if (mode->len == sizeof("subscribe") - 1
        && ngx_strncasecmp(mode->data, (u_char *) "subscribe", mode->len)
           == 0)
    {
        return ngx_http_cast_api_subscribe(r, f);
    }

    if (mode->len == sizeof("unsubscribe") - 1
        && ngx_strncasecmp(mode->data, (u_char *) "unsubscribe", mode->len)
           == 0)
    {
        return ngx_http_cast_api_unsubscribe(r, f);
    }

    return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                    "invalid hub.mode \"%V\": expected "
                                    "subscribe or unsubscribe", mode);
}


static ngx_int_t
ngx_http_cast_api_subscribe(ngx_http_request_t *r, ngx_http_cast_fields_t *f)
{
    u_char                    *p;
    char                      *msg;
    time_t                     lease;
    ngx_int_t                  rc, n, arc;
    ngx_str_t                 *topic, *value, prefix, err, granted;
    ngx_str_t                  writable, latest;
    ngx_http_cast_wait_t      *w;
    ngx_http_cast_grant_t     *grant;
    ngx_http_cast_events_t     events;
    ngx_http_cast_record_t    *record;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    topic = &f->value[NGX_HTTP_CAST_F_TOPIC];

    msg = ngx_http_cast_topic_error(topic, clcf->dialect);
    if (msg) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%s", msg);
    }

    /* cast_auth: the token's topic only */

    grant = ngx_http_cast_api_grant(r);

    rc = ngx_http_cast_auth_topic(r, grant, topic, &arc);
    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!f->set[NGX_HTTP_CAST_F_EVENTS]) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "missing hub.events");
    }

    lease = (clcf->lease_default != NGX_CONF_UNSET) ? clcf->lease_default
                                                    : 7200;

    if (f->set[NGX_HTTP_CAST_F_LEASE]) {
        value = &f->value[NGX_HTTP_CAST_F_LEASE];

        for (n = 0; (size_t) n < value->len; n++) {
            if (value->data[n] < '0' || value->data[n] > '9') {
                break;
            }
        }

        if (value->len == 0 || (size_t) n != value->len) {
            n = NGX_ERROR;

        } else if (value->len > 9) {
            /* a positive number beyond any lease: the maximum applies */
            n = clcf->lease_max;

        } else {
            n = ngx_atotm(value->data, value->len);
        }

        if (n == NGX_ERROR || n == 0) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "hub.lease_seconds must be a "
                                            "positive integer, not \"%V\"",
                                            value);
        }

        lease = n;
    }

    if (lease > clcf->lease_max) {
        lease = clcf->lease_max;
    }

    /*
     * latest-value events: the subscriber's list ("" for none), else the
     * location's (cast_latest_value); names only, no "*"
     */

    latest = clcf->latest;

    if (f->set[NGX_HTTP_CAST_F_LATEST]) {
        latest = f->value[NGX_HTTP_CAST_F_LATEST];
    }

    if (latest.len) {
        rc = ngx_http_cast_events_parse(&latest,
                                        NGX_HTTP_CAST_DIALECT_FHIRCAST,
                                        &events, &err);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "subscriber.latest_value: %V",
                                            &err);
        }

        ngx_http_cast_events_free(&events);
    }

    /* the events as they will be granted */

    rc = ngx_http_cast_events_parse(&f->value[NGX_HTTP_CAST_F_EVENTS],
                                    clcf->dialect, &events, &err);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V", &err);
    }

    /*
     * cast_auth: only the events the token may read are granted, the
     * lease ends with the token, and the record keeps what it may publish
     */

    granted = events.text;
    ngx_str_set(&writable, "");

    rc = ngx_http_cast_auth_subscribe(r, grant, &events, &granted,
                                      &writable, &lease, &arc);
    if (rc != NGX_OK) {
        ngx_http_cast_events_free(&events);
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    record = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_record_t));
    if (record == NULL) {
        ngx_http_cast_events_free(&events);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    record->events.len = granted.len;
    record->events.data = ngx_pstrdup(r->pool, &granted);
    ngx_http_cast_events_free(&events);

    if (record->events.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    record->auth = (grant != NULL);
    record->writable = writable;

    record->topic = *topic;
    record->dialect = clcf->dialect;
    record->lease = lease;
    record->expires = ngx_http_cast_now_ms() + (int64_t) lease * 1000;
    record->bind_timeout = clcf->bind_timeout;
    record->name = f->value[NGX_HTTP_CAST_F_NAME];
    record->callback = f->value[NGX_HTTP_CAST_F_CALLBACK];
    record->product_name = f->value[NGX_HTTP_CAST_F_PRODUCT_NAME];
    record->product_version = f->value[NGX_HTTP_CAST_F_PRODUCT_VERSION];
    record->actors = f->value[NGX_HTTP_CAST_F_ACTORS];
    record->client_info = f->value[NGX_HTTP_CAST_F_CLIENT_INFO];
    record->latest = latest;

    if (f->value[NGX_HTTP_CAST_F_ENDPOINT].len) {

        /* re-subscribe: new events, renewed lease, same endpoint */

        if (ngx_http_cast_endpoint_id(&f->value[NGX_HTTP_CAST_F_ENDPOINT],
                                      &record->id)
            != NGX_OK)
        {
            return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                     "unknown hub.channel.endpoint for "
                                     "topic \"%V\"", topic);
        }

        w = ngx_http_cast_wait(r, ngx_http_cast_api_renewed, record);
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_cast_hub_renew(ngx_http_cast_api_hub(r), record,
                                ngx_http_cast_wait_done, w);
        return NGX_DONE;
    }

    if (ngx_http_cast_endpoint_prefix(r, clcf, &prefix) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, prefix.len + NGX_HTTP_CAST_ID_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    record->endpoint.data = p;
    record->endpoint.len = prefix.len + NGX_HTTP_CAST_ID_LEN;
    record->id.data = ngx_cpymem(p, prefix.data, prefix.len);
    record->id.len = NGX_HTTP_CAST_ID_LEN;

    w = ngx_http_cast_wait(r, ngx_http_cast_api_subscribed, record);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_cast_hub_subscribe(ngx_http_cast_api_hub(r), record,
                                ngx_http_cast_wait_done, w);
    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_api_subscribed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx)
{
    ngx_http_cast_record_t *record = ctx;

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: subscription %*s... on topic \"%V\" created "
                  "for %T s, events \"%V\", subscriber \"%V\"", (size_t) 8,
                  record->id.data, &record->topic, record->lease,
                  &record->events, &record->name);

    return ngx_http_cast_api_granted(r, record, &record->endpoint);
}


static ngx_int_t
ngx_http_cast_api_renewed(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *ctx)
{
    ngx_http_cast_record_t *record = ctx;

    if (res->rc == NGX_HTTP_CAST_NOT_FOUND) {
        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown hub.channel.endpoint for "
                                        "topic \"%V\"", &record->topic);
    }

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: subscription %*s... on topic \"%V\" renewed "
                  "for %T s, events \"%V\"", (size_t) 8, record->id.data,
                  &record->topic, record->lease, &record->events);

    return ngx_http_cast_api_granted(r, record, &res->record->endpoint);
}


/*
 * The 202 of a subscription; made with a token (cast_auth), it says what
 * was granted: the events the token may read, the lease up to its end.
 */

static ngx_int_t
ngx_http_cast_api_granted(ngx_http_request_t *r,
    ngx_http_cast_record_t *record, ngx_str_t *endpoint)
{
    u_char                  who[192], *p, *w;
    size_t                  len;
    ngx_str_t               text;
    ngx_http_cast_grant_t  *grant;

    /* written as it goes out: a connect builds no JSON */

    len = sizeof("{\"hub.channel.endpoint\":}") - 1
          + ngx_http_cast_json_quoted_len(endpoint->data, endpoint->len);

    if (record->auth) {
        len += sizeof(",\"hub.events\":,\"hub.lease_seconds\":") - 1
               + ngx_http_cast_json_quoted_len(record->events.data,
                                               record->events.len)
               + NGX_TIME_T_LEN;
    }

    text.data = ngx_pnalloc(r->pool, len);
    if (text.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(text.data, "{\"hub.channel.endpoint\":",
                   sizeof("{\"hub.channel.endpoint\":") - 1);
    p = ngx_http_cast_json_quote(p, endpoint->data, endpoint->len);

    if (record->auth) {
        p = ngx_cpymem(p, ",\"hub.events\":",
                       sizeof(",\"hub.events\":") - 1);
        p = ngx_http_cast_json_quote(p, record->events.data,
                                     record->events.len);
        p = ngx_sprintf(p, ",\"hub.lease_seconds\":%T", record->lease);

        grant = ngx_http_cast_api_grant(r);

        if (grant) {
            w = ngx_http_cast_auth_who(who, sizeof(who), grant);

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "cast: subscription %*s... granted to the bearer "
                          "token of %*s", (size_t) 8, record->id.data,
                          (size_t) (w - who), who);
        }
    }

    *p++ = '}';
    text.len = p - text.data;

    return ngx_http_cast_send_json_text(r, NGX_HTTP_ACCEPTED, &text);
}


static ngx_int_t
ngx_http_cast_api_unsubscribe(ngx_http_request_t *r,
    ngx_http_cast_fields_t *f)
{
    char                      *msg;
    ngx_int_t                  rc, arc;
    ngx_str_t                 *topic, id;
    ngx_http_cast_wait_t      *w;
    ngx_http_cast_grant_t     *grant;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    topic = &f->value[NGX_HTTP_CAST_F_TOPIC];

    /*
     * cast_auth: only on the token's topic; an endpoint of another topic
     * is not found
     */

    grant = ngx_http_cast_api_grant(r);

    if (grant) {
        if (topic->len == 0) {
            topic = &grant->topic;
        }

        rc = ngx_http_cast_auth_topic(r, grant, topic, &arc);
        if (rc != NGX_OK) {
            return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (f->value[NGX_HTTP_CAST_F_ENDPOINT].len) {

        if (clcf->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
            msg = ngx_http_cast_topic_error(topic, clcf->dialect);
            if (msg) {
                return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                "%s", msg);
            }
        }

        if (ngx_http_cast_endpoint_id(&f->value[NGX_HTTP_CAST_F_ENDPOINT],
                                      &id)
            != NGX_OK)
        {
            return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "unknown hub.channel.endpoint");
        }

        w = ngx_http_cast_wait(r, ngx_http_cast_api_unsubscribed,
                               (void *) NGX_HTTP_ACCEPTED);
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_cast_hub_unsubscribe(ngx_http_cast_api_hub(r), &id, topic,
                                      "unsubscribed",
                                      ngx_http_cast_wait_done, w);
        return NGX_DONE;
    }

    if (clcf->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "missing hub.channel.endpoint");
    }

    /* Cast clients unsubscribe by hub.callback or subscriber.name */

    msg = ngx_http_cast_topic_error(topic, clcf->dialect);
    if (msg) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%s", msg);
    }

    if (f->value[NGX_HTTP_CAST_F_CALLBACK].len == 0
        && f->value[NGX_HTTP_CAST_F_NAME].len == 0)
    {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "unsubscribe needs "
                                        "hub.channel.endpoint, hub.callback "
                                        "or subscriber.name");
    }

    w = ngx_http_cast_wait(r, ngx_http_cast_api_removed,
                           (void *) NGX_HTTP_ACCEPTED);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (f->value[NGX_HTTP_CAST_F_CALLBACK].len) {
        ngx_http_cast_hub_unsubscribe_matching(ngx_http_cast_api_hub(r),
                                    topic, NGX_HTTP_CAST_MATCH_CALLBACK,
                                    &f->value[NGX_HTTP_CAST_F_CALLBACK],
                                    "unsubscribed",
                                    ngx_http_cast_wait_done, w);

    } else {
        ngx_http_cast_hub_unsubscribe_matching(ngx_http_cast_api_hub(r),
                                    topic, NGX_HTTP_CAST_MATCH_NAME,
                                    &f->value[NGX_HTTP_CAST_F_NAME],
                                    "unsubscribed",
                                    ngx_http_cast_wait_done, w);
    }

    return NGX_DONE;
}


/*
 * One subscription ended by its endpoint: unsubscribe (202, with the
 * endpoint; cast adds status and count) or reset (200, the count).
 */

static ngx_int_t
ngx_http_cast_api_unsubscribed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx)
{
    json_t                    *reply;
    ngx_uint_t                 status;
    ngx_http_cast_loc_conf_t  *clcf;

    status = (ngx_uint_t) ctx;

    if (res->rc == NGX_HTTP_CAST_NOT_FOUND) {
        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown hub.channel.endpoint");
    }

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    if (status == NGX_HTTP_OK) {
        return ngx_http_cast_api_removed(r, res, ctx);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    reply = ngx_http_cast_endpoint_reply(&res->record->endpoint);
    if (reply == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST
        && (json_object_set_new(reply, "status",
                                json_string("unsubscribed"))
            || json_object_set_new(reply, "removed", json_integer(1))))
    {
        json_decref(reply);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_ACCEPTED, reply);
}


/* {"status":"unsubscribed","removed":n}, 202 or (reset) 200 */

static ngx_int_t
ngx_http_cast_api_removed(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *ctx)
{
    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    return ngx_http_cast_send_json_new(r, (ngx_uint_t) ctx,
                                       json_pack("{s:s,s:I}",
                                                 "status", "unsubscribed",
                                                 "removed",
                                                 (json_int_t) res->removed));
}


static ngx_int_t
ngx_http_cast_api_cleared(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *ctx)
{
    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "cast: reset removed %ui subscriptions", res->removed);

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK,
                                       json_pack("{s:s,s:I}",
                                                 "status", "cleared",
                                                 "removed",
                                                 (json_int_t) res->removed));
}


/* the event and its JSON stay with the request until the hub answers */

static ngx_int_t
ngx_http_cast_api_publish(ngx_http_request_t *r, json_t *root,
    ngx_str_t *path_topic, ngx_str_t *body)
{
    ngx_int_t                  rc, arc;
    ngx_str_t                  err;
    ngx_pool_cleanup_t        *cln;
    ngx_http_cast_wait_t      *w;
    ngx_http_cast_event_t     *ev;
    ngx_http_cast_grant_t     *grant;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    ev = ngx_palloc(r->pool, sizeof(ngx_http_cast_event_t));

    if (cln == NULL || ev == NULL) {
        json_decref(root);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_cast_api_json_cleanup;
    cln->data = root;

    rc = ngx_http_cast_event_validate(r->pool, root, body, path_topic,
                                      clcf->dialect, ev, &err);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V", &err);
    }

    /* cast_auth: the token's topic, and a write scope for the event */

    grant = ngx_http_cast_api_grant(r);

    rc = ngx_http_cast_auth_topic(r, grant, &ev->topic, &arc);

    if (rc == NGX_OK) {
        rc = ngx_http_cast_auth_event(r, grant, &ev->lowercase,
                                      NGX_HTTP_CAST_SCOPE_WRITE, &arc);
    }

    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ev->max_context = clcf->max_context;
    ev->content_sharing = clcf->sharing;

    w = ngx_http_cast_wait(r, ngx_http_cast_api_published, NULL);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_cast_hub_publish(ngx_http_cast_api_hub(r), ev,
                              ngx_http_cast_wait_done, w);
    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_api_published(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx)
{
    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_refused(r, res->rc, &res->reason);
    }

    return ngx_http_cast_send_published(r);
}


static void
ngx_http_cast_api_json_cleanup(void *data)
{
    json_decref(data);
}


/*
 * DELETE {base}: with hub.channel.endpoint, or hub.callback + hub.topic,
 * removes those subscriptions; with no body, every subscription.
 */

static ngx_int_t
ngx_http_cast_api_reset(ngx_http_request_t *r, ngx_str_t *body)
{
    json_t                  *root;
    ngx_int_t                rc;
    ngx_str_t                err, id;
    ngx_uint_t               ct;
    ngx_http_cast_wait_t    *w;
    ngx_http_cast_fields_t   f;

    ngx_memzero(&f, sizeof(ngx_http_cast_fields_t));

    if (body->len) {
        ct = ngx_http_cast_content_type(r);

        if (ct == NGX_HTTP_CAST_CT_JSON) {
            rc = ngx_http_cast_json_parse(r->pool, body->data, body->len,
                                          &root, &err);
            if (rc == NGX_OK) {
                if (!json_is_object(root)) {
                    json_decref(root);
                    return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                                    "the request body must "
                                                    "be a JSON object");
                }

                rc = ngx_http_cast_fields_from_json(r->pool, root, &f, &err);
                json_decref(root);
            }

        } else if (ct == NGX_HTTP_CAST_CT_FORM
                   || ct == NGX_HTTP_CAST_CT_NONE)
        {
            rc = ngx_http_cast_form_parse(r->pool, body->data, body->len, &f,
                                          &err);

        } else {
            return ngx_http_cast_send_error(r,
                                     NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                     "unsupported Content-Type");
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V",
                                            &err);
        }
    }

    if (f.value[NGX_HTTP_CAST_F_ENDPOINT].len) {
        if (ngx_http_cast_endpoint_id(&f.value[NGX_HTTP_CAST_F_ENDPOINT],
                                      &id)
            != NGX_OK)
        {
            return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                            "unknown hub.channel.endpoint");
        }

        w = ngx_http_cast_wait(r, ngx_http_cast_api_unsubscribed,
                               (void *) NGX_HTTP_OK);
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_cast_hub_unsubscribe(ngx_http_cast_api_hub(r), &id,
                                      &f.value[NGX_HTTP_CAST_F_TOPIC],
                                      "reset", ngx_http_cast_wait_done, w);
        return NGX_DONE;
    }

    if (f.value[NGX_HTTP_CAST_F_CALLBACK].len) {
        if (f.value[NGX_HTTP_CAST_F_TOPIC].len == 0) {
            return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "hub.callback needs hub.topic");
        }

        w = ngx_http_cast_wait(r, ngx_http_cast_api_removed,
                               (void *) NGX_HTTP_OK);
        if (w == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_cast_hub_unsubscribe_matching(ngx_http_cast_api_hub(r),
                                    &f.value[NGX_HTTP_CAST_F_TOPIC],
                                    NGX_HTTP_CAST_MATCH_CALLBACK,
                                    &f.value[NGX_HTTP_CAST_F_CALLBACK],
                                    "reset", ngx_http_cast_wait_done, w);
        return NGX_DONE;
    }

    if (body->len) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "DELETE needs hub.channel.endpoint, "
                                        "or hub.callback and hub.topic; "
                                        "without a body it removes every "
                                        "subscription");
    }

    w = ngx_http_cast_wait(r, ngx_http_cast_api_cleared, NULL);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_cast_hub_reset(ngx_http_cast_api_hub(r),
                            ngx_http_cast_wait_done, w);
    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_api_context(ngx_http_request_t *r,
    ngx_http_cast_api_ctx_t *ctx)
{
    char                      *msg;
    ngx_int_t                  rc, arc;
    ngx_http_cast_wait_t      *w;
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    msg = ngx_http_cast_topic_error(&ctx->topic, clcf->dialect);
    if (msg) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%s", msg);
    }

    /* cast_auth: the token's topic, and a read scope */

    rc = ngx_http_cast_auth_topic(r, ctx->grant, &ctx->topic, &arc);

    if (rc == NGX_OK) {
        rc = ngx_http_cast_auth_any(r, ctx->grant, NGX_HTTP_CAST_SCOPE_READ,
                                    &arc);
    }

    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w = ngx_http_cast_wait(r, ngx_http_cast_api_context_reply, NULL);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_cast_hub_context(ngx_http_cast_api_hub(r), &ctx->topic,
                              clcf->dialect, ngx_http_cast_wait_done, w);
    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_api_context_reply(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx)
{
    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    return ngx_http_cast_send_json(r, NGX_HTTP_OK, res->json);
}


static ngx_int_t
ngx_http_cast_api_discovery(ngx_http_request_t *r)
{
    json_t                    *json, *events;
    ngx_uint_t                 i, k;
    const char               **lists[3];
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    lists[0] = ngx_http_cast_events_stu3;
    lists[1] = clcf->sharing ? ngx_http_cast_events_shared : NULL;
    lists[2] = (clcf->dialect == NGX_HTTP_CAST_DIALECT_CAST)
               ? ngx_http_cast_events_cast : NULL;

    events = json_array();
    if (events == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (k = 0; k < 3; k++) {
        for (i = 0; lists[k] && lists[k][i]; i++) {
            if (json_array_append_new(events, json_string(lists[k][i]))) {
                json_decref(events);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    json = json_pack("{s:o,s:b,s:b,s:s,s:s,s:b,s:{s:b,s:b}}",
                     "eventsSupported", events,
                     "websocketSupport", 1,
                     "webhookSupport", 0,
                     "fhircastVersion", "3.0.0",
                     "fhirVersion", "R4",
                     "getCurrentSupport", 1,
                     "capabilities",
                     "supportsGetCurrentContext", 1,
                     "supportsNonCurrentContextUpdates", 0);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK, json);
}


static ngx_uint_t
ngx_http_cast_content_type(ngx_http_request_t *r)
{
    u_char     *p, *end;
    ngx_str_t   type;

    if (r->headers_in.content_type == NULL) {
        return NGX_HTTP_CAST_CT_NONE;
    }

    type = r->headers_in.content_type->value;

    p = type.data;
    end = type.data + type.len;

    while (p < end && *p != ';') {
        p++;
    }

    while (p > type.data && (p[-1] == ' ' || p[-1] == '\t')) {
        p--;
    }

    type.len = p - type.data;

    if (type.len == sizeof("application/x-www-form-urlencoded") - 1
        && ngx_strncasecmp(type.data,
                           (u_char *) "application/x-www-form-urlencoded",
                           type.len) == 0)
    {
        return NGX_HTTP_CAST_CT_FORM;
    }

    if ((type.len == sizeof("application/json") - 1
         && ngx_strncasecmp(type.data, (u_char *) "application/json",
                            type.len) == 0)
        || (type.len == sizeof("application/fhir+json") - 1
            && ngx_strncasecmp(type.data, (u_char *) "application/fhir+json",
                               type.len) == 0))
    {
        return NGX_HTTP_CAST_CT_JSON;
    }

    return NGX_HTTP_CAST_CT_OTHER;
}


/* a hub.channel.endpoint value is a URL ".../bind/<id>" or the bare id */

static ngx_int_t
ngx_http_cast_endpoint_id(ngx_str_t *value, ngx_str_t *id)
{
    u_char  *p, *end;

    end = value->data + value->len;

    for (p = end; p > value->data && p[-1] != '/'; p--) {
        /* void */
    }

    id->data = p;
    id->len = end - p;

    return id->len == NGX_HTTP_CAST_ID_LEN ? NGX_OK : NGX_DECLINED;
}


/* what the request's bearer token grants (NULL: cast_auth is off) */

static ngx_http_cast_grant_t *
ngx_http_cast_api_grant(ngx_http_request_t *r)
{
    ngx_http_cast_api_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_cast_module);

    return ctx ? ctx->grant : NULL;
}


/* this worker's hub */

static ngx_http_cast_hub_t *
ngx_http_cast_api_hub(ngx_http_request_t *r)
{
    ngx_http_cast_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);

    return cmcf->hub;
}


static int64_t
ngx_http_cast_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


static char *
ngx_http_cast_topic_error(ngx_str_t *topic, ngx_uint_t dialect)
{
    switch (ngx_http_cast_text_topic(topic->data, topic->len,
                                     NGX_HTTP_CAST_MAX_TOPIC))
    {
    case NGX_HTTP_CAST_TEXT_OK:
        break;

    case NGX_HTTP_CAST_TEXT_EMPTY:
        return "missing hub.topic";

    case NGX_HTTP_CAST_TEXT_TOO_LONG:
        return "hub.topic is longer than 1024 bytes";

    case NGX_HTTP_CAST_TEXT_CONTROL:
        return "hub.topic holds a control character";

    case NGX_HTTP_CAST_TEXT_NOT_UTF8:
        return "hub.topic is not valid UTF-8";

    default:
        return "hub.topic holds a \"/\" (a topic must fit one path "
               "segment, {base}/{topic})";
    }

    if (topic->len == 1 && topic->data[0] == '*'
        && dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST)
    {
        return "hub.topic \"*\" is not allowed by FHIRcast "
               "(cast_dialect fhircast)";
    }

    return NULL;
}


/*
 * "ws://host[:port]/bind/" from cast_public_url (http and https become
 * ws and wss), else from the request's scheme and Host.
 */

static ngx_int_t
ngx_http_cast_endpoint_prefix(ngx_http_request_t *r,
    ngx_http_cast_loc_conf_t *clcf, ngx_str_t *out)
{
    u_char     *p, addr[NGX_SOCKADDR_STRLEN];
    ngx_str_t   url, scheme, host;

    if (clcf->public_url) {
        if (ngx_http_complex_value(r, clcf->public_url, &url) != NGX_OK) {
            return NGX_ERROR;
        }

        while (url.len && url.data[url.len - 1] == '/') {
            url.len--;
        }

        ngx_str_null(&scheme);

        if (url.len >= 8 && ngx_strncasecmp(url.data, (u_char *) "https://", 8)
                            == 0)
        {
            ngx_str_set(&scheme, "wss://");
            url.data += 8;
            url.len -= 8;

        } else if (url.len >= 7
                   && ngx_strncasecmp(url.data, (u_char *) "http://", 7) == 0)
        {
            ngx_str_set(&scheme, "ws://");
            url.data += 7;
            url.len -= 7;
        }

        host = url;

    } else {
#if (NGX_HTTP_SSL)
        if (r->connection->ssl) {
            ngx_str_set(&scheme, "wss://");
        } else
#endif
        {
            ngx_str_set(&scheme, "ws://");
        }

        if (r->headers_in.host) {
            host = r->headers_in.host->value;

        } else {
            host.data = addr;
            host.len = NGX_SOCKADDR_STRLEN;

            if (ngx_connection_local_sockaddr(r->connection, &host, 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    out->len = scheme.len + host.len + sizeof(NGX_HTTP_CAST_BIND_PATH) - 1;
    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, scheme.data, scheme.len);
    p = ngx_cpymem(p, host.data, host.len);
    ngx_memcpy(p, NGX_HTTP_CAST_BIND_PATH,
               sizeof(NGX_HTTP_CAST_BIND_PATH) - 1);

    return NGX_OK;
}


static json_t *
ngx_http_cast_endpoint_reply(ngx_str_t *endpoint)
{
    return json_pack("{s:o}", "hub.channel.endpoint",
                     ngx_http_cast_json_string(endpoint));
}


/* the methods of a route: DELETE {base} only where "cast_reset on" */

static ngx_str_t *
ngx_http_cast_api_allow(ngx_http_request_t *r, ngx_http_cast_api_ctx_t *ctx)
{
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (ctx->route == NGX_HTTP_CAST_ROUTE_BASE && !clcf->reset) {
        return &ngx_http_cast_allow_no_reset;
    }

    return &ngx_http_cast_allow[ctx->route];
}
