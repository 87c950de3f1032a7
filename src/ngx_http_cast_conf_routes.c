
/*
 * ngx_http_cast_module: the HTTP routes of conferences (SPEC 2.6,
 * reference cast-seed-protocol.md 1.6): G2's under {base} of a cast_hub
 * location, and G1's where cast_conference and cast_topics put them.
 *
 *   GET    .../conference            the conferences
 *   POST   .../conference            create          {"hostTopic"|"user",
 *                                                     "title", "topics"}
 *   DELETE .../conference            end, or leave   {"hostTopic"|"user",
 *                                                     "leaveTopic"?}
 *   PATCH|POST .../conference/join   {"hostTopic", "joinTopic"|"topic"}
 *   PATCH|POST .../conference/lead   {"hostTopic", "sceneLeaderTopic"}
 *   PATCH|POST|DELETE .../conference/leave  {"hostTopic", "leaveTopic"}
 *   GET    {base}/conference-topics  [{"topic"}...]   (G2)
 *   GET    /topics (cast_topics)     ["<topic>"...]   (G1)
 *
 * Bodies are JSON objects.  With cast_auth, every route needs a valid
 * token, and a change the token of the topics it concerns (see
 * ngx_http_cast_conf_allowed()).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_auth.h"
#include "ngx_http_cast_conf_routes.h"
#include "ngx_http_cast_conference.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_reply.h"


typedef struct {
    ngx_uint_t                 route;       /* NGX_HTTP_CAST_CONF_ROUTE_* */
    ngx_uint_t                 op;          /* NGX_HTTP_CAST_CONF_* */
    ngx_http_cast_grant_t     *grant;
} ngx_http_cast_conf_ctx_t;


static void ngx_http_cast_conf_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_conf_ask(ngx_http_request_t *r,
    ngx_http_cast_conf_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_cast_conf_allowed(ngx_http_request_t *r,
    ngx_http_cast_conf_ctx_t *ctx, json_t *body, ngx_int_t *rc);
static ngx_int_t ngx_http_cast_conf_done(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data);
static ngx_int_t ngx_http_cast_conf_listed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data);
static ngx_int_t ngx_http_cast_conf_topics_reply(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data);
static ngx_int_t ngx_http_cast_conf_not_allowed(ngx_http_request_t *r,
    const char *allow);
static int ngx_http_cast_conf_cmp(const void *a, const void *b);


ngx_int_t
ngx_http_cast_conf_route(ngx_str_t *rest, ngx_uint_t *route)
{
    ngx_uint_t  i;

    static struct {
        ngx_str_t   path;
        ngx_uint_t  route;
    } routes[] = {
        { ngx_string("/conference"), NGX_HTTP_CAST_CONF_ROUTE_CONFERENCE },
        { ngx_string("/conference/"), NGX_HTTP_CAST_CONF_ROUTE_CONFERENCE },
        { ngx_string("/conference/join"), NGX_HTTP_CAST_CONF_ROUTE_JOIN },
        { ngx_string("/conference/lead"), NGX_HTTP_CAST_CONF_ROUTE_LEAD },
        { ngx_string("/conference/leave"), NGX_HTTP_CAST_CONF_ROUTE_LEAVE },
        { ngx_string("/conference-topics"), NGX_HTTP_CAST_CONF_ROUTE_TOPICS }
    };

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (rest->len == routes[i].path.len
            && ngx_strncmp(rest->data, routes[i].path.data, rest->len) == 0)
        {
            *route = routes[i].route;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_cast_conf_routes_handler(ngx_http_request_t *r, ngx_uint_t route)
{
    ngx_int_t                  rc, arc;
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_wait_t      *w;
    ngx_http_cast_conf_ctx_t  *ctx;
    ngx_http_cast_main_conf_t *cmcf;
    ngx_http_cast_loc_conf_t  *clcf;
    ngx_http_cast_reply_pt     reply;

    static const char  *allow[] = {
        "GET, HEAD, POST, DELETE, OPTIONS",
        "PATCH, POST, OPTIONS",
        "PATCH, POST, OPTIONS",
        "PATCH, POST, DELETE, OPTIONS",
        "GET, HEAD, OPTIONS",
        "GET, HEAD, OPTIONS"
    };

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);
    hub = cmcf->hub;

    if (hub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_conf_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_cast_module);

    ctx->route = route;

    if (r->method == NGX_HTTP_OPTIONS) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_cast_conf_not_allowed(r, allow[route]);
    }

    switch (route) {

    case NGX_HTTP_CAST_CONF_ROUTE_CONFERENCE:
        if (r->method == NGX_HTTP_POST) {
            ctx->op = NGX_HTTP_CAST_CONF_CREATE;

        } else if (r->method == NGX_HTTP_DELETE) {
            ctx->op = NGX_HTTP_CAST_CONF_END;
        }

        break;

    case NGX_HTTP_CAST_CONF_ROUTE_JOIN:
    case NGX_HTTP_CAST_CONF_ROUTE_LEAD:
    case NGX_HTTP_CAST_CONF_ROUTE_LEAVE:
        if (r->method == NGX_HTTP_PATCH || r->method == NGX_HTTP_POST
            || (r->method == NGX_HTTP_DELETE
                && route == NGX_HTTP_CAST_CONF_ROUTE_LEAVE))
        {
            ctx->op = (route == NGX_HTTP_CAST_CONF_ROUTE_JOIN)
                      ? NGX_HTTP_CAST_CONF_JOIN
                      : (route == NGX_HTTP_CAST_CONF_ROUTE_LEAD)
                        ? NGX_HTTP_CAST_CONF_LEAD
                        : NGX_HTTP_CAST_CONF_LEAVE;
            break;
        }

        (void) ngx_http_discard_request_body(r);
        return ngx_http_cast_conf_not_allowed(r, allow[route]);
    }

    rc = ngx_http_cast_auth_token(r, &ctx->grant, &arc);

    if (rc != NGX_OK) {
        (void) ngx_http_discard_request_body(r);
        return (rc == NGX_DONE) ? arc : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->op) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

        if (r->headers_in.content_length_n > (off_t) clcf->max_message_size)
        {
            (void) ngx_http_discard_request_body(r);
            return ngx_http_cast_send_too_large(r);
        }

        rc = ngx_http_read_client_request_body(r, ngx_http_cast_conf_body);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        (void) ngx_http_discard_request_body(r);
        return ngx_http_cast_conf_not_allowed(r, allow[route]);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    reply = (route == NGX_HTTP_CAST_CONF_ROUTE_CONFERENCE)
            ? ngx_http_cast_conf_listed : ngx_http_cast_conf_topics_reply;

    w = ngx_http_cast_wait(r, reply, ctx);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (route == NGX_HTTP_CAST_CONF_ROUTE_CONFERENCE) {
        ngx_http_cast_hub_conferences(hub, ngx_http_cast_wait_done, w);

    } else {
        ngx_http_cast_hub_topics(hub, ngx_http_cast_wait_done, w);
    }

    return NGX_DONE;
}


static void
ngx_http_cast_conf_body(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  body;
    ngx_http_cast_conf_ctx_t  *ctx;
    ngx_http_cast_loc_conf_t  *clcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_cast_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    rc = ngx_http_cast_read_body(r, clcf->max_message_size, &body);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_cast_send_too_large(r);

    } else if (rc == NGX_OK) {
        rc = ngx_http_cast_conf_ask(r, ctx, &body);
    }

    /* NGX_DONE: the hub holds the request and finalizes it */

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_cast_conf_ask(ngx_http_request_t *r,
    ngx_http_cast_conf_ctx_t *ctx, ngx_str_t *body)
{
    json_t                     *root;
    ngx_int_t                   rc;
    ngx_str_t                   err;
    ngx_http_cast_wait_t       *w;
    ngx_http_cast_main_conf_t  *cmcf;

    if (body->len == 0) {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "the body must be a JSON object");
    }

    if (ngx_http_cast_json_parse(r->pool, body->data, body->len, &root,
                                 &err)
        != NGX_OK)
    {
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST, "%V", &err);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return ngx_http_cast_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "the body must be a JSON object");
    }

    /* DELETE .../conference with a leaveTopic that is not the host's */

    if (ctx->op == NGX_HTTP_CAST_CONF_END
        && json_is_string(json_object_get(root, "leaveTopic")))
    {
        ctx->op = NGX_HTTP_CAST_CONF_LEAVE;
    }

    if (ngx_http_cast_conf_allowed(r, ctx, root, &rc) != NGX_OK) {
        json_decref(root);
        return rc;
    }

    w = ngx_http_cast_wait(r, ngx_http_cast_conf_done, ctx);
    if (w == NULL) {
        json_decref(root);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);

    ngx_http_cast_hub_conference(cmcf->hub, ctx->op, root,
                                 ngx_http_cast_wait_done, w);
    json_decref(root);

    return NGX_DONE;
}


/*
 * cast_auth (README, Authorization): a topic comes into a conference only
 * with its own token, its user's consent; so creating one takes the host's
 * token and no other topic (the others join), joining the joining topic's,
 * leaving the leaving topic's or the host's, and leading and ending the
 * host's.
 */

static ngx_int_t
ngx_http_cast_conf_allowed(ngx_http_request_t *r,
    ngx_http_cast_conf_ctx_t *ctx, json_t *body, ngx_int_t *rc)
{
    size_t       i;
    json_t      *value;
    ngx_str_t    topic, host;
    const char  *name;

    if (ctx->grant == NULL) {
        return NGX_OK;
    }

    value = json_object_get(body, "hostTopic");

    if (value == NULL) {
        value = json_object_get(body, "user");
    }

    host.data = (u_char *) json_string_value(value);
    host.len = host.data ? json_string_length(value) : 0;

    switch (ctx->op) {

    case NGX_HTTP_CAST_CONF_JOIN:
        name = json_object_get(body, "joinTopic") ? "joinTopic" : "topic";
        break;

    case NGX_HTTP_CAST_CONF_LEAVE:
        name = json_object_get(body, "leaveTopic") ? "leaveTopic" : "topic";
        break;

    default:
        name = NULL;
    }

    value = name ? json_object_get(body, name) : NULL;

    if (json_is_string(value)) {
        topic.data = (u_char *) json_string_value(value);
        topic.len = json_string_length(value);

        /* a leaver may be sent off by the host */

        if (ctx->op == NGX_HTTP_CAST_CONF_LEAVE
            && ctx->grant->topic.len == host.len && host.len
            && ngx_memcmp(ctx->grant->topic.data, host.data, host.len) == 0)
        {
            return NGX_OK;
        }

        return ngx_http_cast_auth_topic(r, ctx->grant, &topic, rc);
    }

    if (host.len == 0) {
        /* the hub answers 400 */
        return NGX_OK;
    }

    if (ngx_http_cast_auth_topic(r, ctx->grant, &host, rc) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ctx->op != NGX_HTTP_CAST_CONF_CREATE) {
        return NGX_OK;
    }

    json_array_foreach(json_object_get(body, "topics"), i, value) {
        if (!json_is_string(value)
            || ngx_strcmp(json_string_value(value), "*") == 0
            || (json_string_length(value) == host.len
                && ngx_memcmp(json_string_value(value), host.data,
                              host.len) == 0))
        {
            continue;
        }

        *rc = ngx_http_cast_send_error(r, NGX_HTTP_FORBIDDEN,
                                       "topic \"%s\" joins with its own "
                                       "token (PATCH .../conference/join)",
                                       json_string_value(value));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_conf_done(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *data)
{
    ngx_http_cast_conf_ctx_t *ctx = data;

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_refused(r, res->rc, &res->reason);
    }

    return ngx_http_cast_send_json(r,
                                   (ctx->op == NGX_HTTP_CAST_CONF_CREATE)
                                   ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                                   res->json);
}


static ngx_int_t
ngx_http_cast_conf_listed(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *data)
{
    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    return ngx_http_cast_send_json(r, NGX_HTTP_OK, res->json);
}


/* the topics, sorted: G1 strings, G2 {"topic"} objects; "*" is not one */

static ngx_int_t
ngx_http_cast_conf_topics_reply(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data)
{
    ngx_http_cast_conf_ctx_t *ctx = data;

    size_t       i, n;
    json_t      *list, *value, *item;
    const char **names;

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_send_failure(r, res->rc);
    }

    n = json_array_size(res->json);

    names = ngx_palloc(r->pool, (n + 1) * sizeof(const char *));
    if (names == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    json_array_foreach(res->json, i, value) {
        if (json_is_string(value)
            && json_string_value(value)[0] != '\x1f'
            && ngx_strcmp(json_string_value(value), "*") != 0)
        {
            names[n++] = json_string_value(value);
        }
    }

    ngx_qsort(names, n, sizeof(const char *), ngx_http_cast_conf_cmp);

    list = json_array();
    if (list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < n; i++) {
        item = (ctx->route == NGX_HTTP_CAST_CONF_ROUTE_TOPICS)
               ? json_pack("{s:s}", "topic", names[i])
               : json_string(names[i]);

        if (json_array_append_new(list, item) != 0) {
            json_decref(list);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_cast_send_json_new(r, NGX_HTTP_OK, list);
}


/* OPTIONS (204, CORS), or 405 for another method */

static ngx_int_t
ngx_http_cast_conf_not_allowed(ngx_http_request_t *r, const char *allow)
{
    ngx_str_t  methods;

    methods.data = (u_char *) allow;
    methods.len = ngx_strlen(allow);

    if (r->method == NGX_HTTP_OPTIONS) {
        return ngx_http_cast_send_preflight(r, &methods);
    }

    if (ngx_http_cast_add_header(r, "Allow", &methods) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method %V is not allowed here",
                                    &r->method_name);
}


static int
ngx_http_cast_conf_cmp(const void *a, const void *b)
{
    return ngx_strcmp(*(const char **) a, *(const char **) b);
}
