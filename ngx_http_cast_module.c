
/*
 * ngx_http_cast_module: a Cast / FHIRcast hub inside nginx.
 *
 * Module wiring only: directives, configuration create/merge, the
 * worker hooks.  The protocol lives in src/.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_api.h"
#include "ngx_http_cast_auth.h"     /* cast_auth */
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_oauth.h"    /* cast_oauth */
#include "ngx_http_cast_redis.h"    /* cast_redis */
#include "ngx_http_cast_request.h"  /* request/response between apps */
#include "ngx_http_cast_conf_routes.h"
#include "ngx_http_cast_status.h"
#include "ngx_http_cast_store_local.h"
#include "ngx_http_cast_store_redis.h"
#include "ngx_http_cast_ws.h"


/*
 * cast_io_uring's default; a test build may make it on (CAST_CFLAGS=
 * -DNGX_HTTP_CAST_IO_URING_DEFAULT=1) to run every suite through io_uring
 */
#ifndef NGX_HTTP_CAST_IO_URING_DEFAULT
#define NGX_HTTP_CAST_IO_URING_DEFAULT  0
#endif


typedef struct {
    ngx_conf_post_handler_pt   post_handler;
    ngx_uint_t                 type;
    ngx_uint_t                 min;
    ngx_uint_t                 max;
} ngx_http_cast_bounds_t;

#define NGX_HTTP_CAST_BOUNDS_SEC   0
#define NGX_HTTP_CAST_BOUNDS_MSEC  1
#define NGX_HTTP_CAST_BOUNDS_SIZE  2


static char *ngx_http_cast_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cast_oauth_location(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_cast_cors_origin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cast_check_bounds(ngx_conf_t *cf, void *post,
    void *data);
static ngx_int_t ngx_http_cast_check_workers(ngx_cycle_t *cycle,
    ngx_conf_t *cf);
static char *ngx_http_cast_latest_value(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_cast_ack_timeout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_cast_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_conference_location(ngx_http_request_t *r);
static char *ngx_http_cast_io_uring(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_cast_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_cast_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_cast_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_cast_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_cast_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_cast_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_cast_init_process(ngx_cycle_t *cycle);
static void ngx_http_cast_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_cast_dialects[] = {
    { ngx_string("cast"), NGX_HTTP_CAST_DIALECT_CAST },
    { ngx_string("fhircast"), NGX_HTTP_CAST_DIALECT_FHIRCAST },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_cast_topics_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_MAX_INT32_VALUE
};

static ngx_conf_num_bounds_t  ngx_http_cast_requests_bounds = {
    ngx_conf_check_num_bounds, 1, 1000000
};


static ngx_http_cast_bounds_t  ngx_http_cast_lease_bounds = {
    ngx_http_cast_check_bounds, NGX_HTTP_CAST_BOUNDS_SEC, 1, 0
};

static ngx_http_cast_bounds_t  ngx_http_cast_timeout_bounds = {
    ngx_http_cast_check_bounds, NGX_HTTP_CAST_BOUNDS_MSEC, 1, 0
};

static ngx_http_cast_bounds_t  ngx_http_cast_message_bounds = {
    ngx_http_cast_check_bounds, NGX_HTTP_CAST_BOUNDS_SIZE, 128,
    1024 * 1024 * 1024
};

static ngx_http_cast_bounds_t  ngx_http_cast_queue_bounds = {
    ngx_http_cast_check_bounds, NGX_HTTP_CAST_BOUNDS_SIZE, 1024, 0
};


static ngx_command_t  ngx_http_cast_commands[] = {

    { ngx_string("cast_hub"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cast_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_websocket"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cast_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cast_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_conference"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cast_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_topics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_cast_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_dialect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, dialect),
      &ngx_http_cast_dialects },

    { ngx_string("cast_lease_default"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, lease_default),
      &ngx_http_cast_lease_bounds },

    { ngx_string("cast_lease_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, lease_max),
      &ngx_http_cast_lease_bounds },

    { ngx_string("cast_bind_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, bind_timeout),
      &ngx_http_cast_timeout_bounds },

    { ngx_string("cast_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, max_message_size),
      &ngx_http_cast_message_bounds },

    { ngx_string("cast_max_context_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, max_context),
      &ngx_http_cast_message_bounds },

    { ngx_string("cast_send_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, send_queue),
      &ngx_http_cast_queue_bounds },

    { ngx_string("cast_ping_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, ping_interval),
      &ngx_http_cast_timeout_bounds },

    { ngx_string("cast_ws_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, ws_max_message),
      &ngx_http_cast_message_bounds },

    { ngx_string("cast_ws_message_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, ws_message_timeout),
      &ngx_http_cast_timeout_bounds },

    { ngx_string("cast_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, public_url),
      NULL },

    { ngx_string("cast_cors_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cast_cors_origin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_reset"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, reset),
      NULL },

    /* cast_auth: src/ngx_http_cast_auth.c */
    { ngx_string("cast_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_cast_auth_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_auth_jwks"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cast_auth_jwks_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_auth_secret"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_cast_auth_secret_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_auth_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, auth_issuer),
      NULL },

    { ngx_string("cast_auth_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, auth_audience),
      NULL },

    { ngx_string("cast_auth_topic_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, auth_topic_claim),
      NULL },

    { ngx_string("cast_auth_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, auth_leeway),
      NULL },

    { ngx_string("cast_json_ping"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, json_ping),
      NULL },

    { ngx_string("cast_latest_value"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_cast_latest_value,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_content_sharing"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, content_sharing),
      NULL },

    { ngx_string("cast_ack_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cast_ack_timeout,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_loc_conf_t, ack_timeout),
      NULL },

    /* the WebSocket fan-out through io_uring (built with liburing) */
    { ngx_string("cast_io_uring"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_cast_io_uring,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, io_uring),
      NULL },

    { ngx_string("cast_max_topics"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, max_topics),
      &ngx_http_cast_topics_bounds },

    /* requests to apps that wait at once, per worker */
    { ngx_string("cast_max_requests"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, max_requests),
      &ngx_http_cast_requests_bounds },

    { ngx_string("cast_max_subscriptions"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, max_subs),
      &ngx_http_cast_topics_bounds },

    { ngx_string("cast_max_subscriptions_per_topic"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, max_topic_subs),
      &ngx_http_cast_topics_bounds },

    { ngx_string("cast_max_context_total"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, max_context_total),
      NULL },

    { ngx_string("cast_context_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_cast_main_conf_t, context_ttl),
      &ngx_http_cast_timeout_bounds },

    /* cast_redis: src/ngx_http_cast_redis.c */
    { ngx_string("cast_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_cast_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* cast_oauth: src/ngx_http_cast_oauth.c */
    { ngx_string("cast_oauth"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cast_oauth_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_oauth_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_cast_oauth_key_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_oauth_single_user"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_cast_oauth_single_user_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_cast_oauth_conf_t, single_user),
      NULL },

    { ngx_string("cast_oauth_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cast_oauth_ttl_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("cast_oauth_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_cast_oauth_issuer_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_cast_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_cast_postconfiguration,       /* postconfiguration */

    ngx_http_cast_create_main_conf,        /* create main configuration */
    ngx_http_cast_init_main_conf,          /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_cast_create_loc_conf,         /* create location configuration */
    ngx_http_cast_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_cast_module = {
    NGX_MODULE_V1,
    &ngx_http_cast_module_ctx,             /* module context */
    ngx_http_cast_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_cast_init_module,             /* init module */
    ngx_http_cast_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_cast_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_http_cast_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    ngx_http_cast_main_conf_t  *cmcf;
    ngx_http_core_loc_conf_t   *hclcf;

    if (clcf->handler != 0) {
        return "is duplicate: a location serves one cast role";
    }

    switch (cmd->name.data[sizeof("cast_") - 1]) {

    case 'h':
        clcf->handler = NGX_HTTP_CAST_HUB;
        break;

    case 'w':
        clcf->handler = NGX_HTTP_CAST_WEBSOCKET;
        break;

    case 'c':
        clcf->handler = NGX_HTTP_CAST_CONFERENCE;
        break;

    case 't':
        clcf->handler = NGX_HTTP_CAST_TOPICS;
        break;

    default: /* 's' */
        clcf->handler = NGX_HTTP_CAST_STATUS;
        break;
    }

    hclcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* routes and endpoint ids are found after the location's prefix */

    if ((clcf->handler == NGX_HTTP_CAST_HUB
         || clcf->handler == NGX_HTTP_CAST_WEBSOCKET)
        && (hclcf->named
#if (NGX_PCRE)
            || hclcf->regex
#endif
            || hclcf->exact_match))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" requires a prefix location, "
                           "like \"location /api/hub\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    hclcf->handler = ngx_http_cast_handler;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_cast_module);
    cmcf->used = 1;

    return NGX_CONF_OK;
}


/* cast_oauth token | authorize | off: the location serves the endpoint */

static char *
ngx_http_cast_oauth_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    char                       *rv;
    ngx_uint_t                  on;
    ngx_http_cast_main_conf_t  *cmcf;
    ngx_http_core_loc_conf_t   *hclcf;

    if (clcf->handler != 0) {
        return "is duplicate: a location serves one cast role";
    }

    on = 0;

    rv = ngx_http_cast_oauth_directive(cf, cmd, conf, &on);

    if (rv != NGX_CONF_OK || !on) {
        return rv;
    }

    clcf->handler = NGX_HTTP_CAST_OAUTH;

    hclcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    hclcf->handler = ngx_http_cast_handler;

    /* the hub (its store) is made in every worker */

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_cast_module);
    cmcf->used = 1;

    return NGX_CONF_OK;
}


/* cast_ack_timeout off | time */

/* cast_latest_value off | <event> ...: the list subscriptions get */

static char *
ngx_http_cast_latest_value(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    u_char      *p;
    size_t       len;
    ngx_str_t   *value;
    ngx_uint_t   i, j;

    if (clcf->latest.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && ngx_strcmp(value[1].data, "off") == 0)
    {
        ngx_str_set(&clcf->latest, "");
        return NGX_CONF_OK;
    }

    len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 0
            || value[i].len > NGX_HTTP_CAST_MAX_EVENT_NAME
            || cf->args->nelts - 1 > NGX_HTTP_CAST_MAX_EVENTS)
        {
            goto invalid;
        }

        for (j = 0; j < value[i].len; j++) {
            if (value[i].data[j] <= ' ' || value[i].data[j] == ','
                || value[i].data[j] == '*' || value[i].data[j] >= 0x7f)
            {
                goto invalid;
            }
        }

        len += value[i].len + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf->latest.data = p;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ',';
        }

        ngx_strlow(p, value[i].data, value[i].len);
        p += value[i].len;
    }

    clcf->latest.len = p - clcf->latest.data;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid event name \"%V\" in \"%V\"",
                       &value[i], &cmd->name);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_cast_ack_timeout(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    ngx_str_t  *value;

    if (clcf->ack_timeout != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->ack_timeout = 0;
        return NGX_CONF_OK;
    }

    clcf->ack_timeout = ngx_parse_time(&value[1], 0);

    if (clcf->ack_timeout == (ngx_msec_t) NGX_ERROR
        || clcf->ack_timeout == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"cast_ack_timeout\" \"%V\": a time "
                           "above 0, or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_cast_cors_origin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    ngx_str_t  *value;

    if (clcf->cors_origin.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"cast_cors_origin\": use \"off\" to "
                           "send no CORS headers");
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&clcf->cors_origin, "");
        return NGX_CONF_OK;
    }

    clcf->cors_origin = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_cast_check_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_http_cast_bounds_t *b = post;

    ngx_uint_t  v;

    switch (b->type) {

    case NGX_HTTP_CAST_BOUNDS_SEC:
        v = (ngx_uint_t) *(time_t *) data;
        break;

    case NGX_HTTP_CAST_BOUNDS_MSEC:
        v = *(ngx_msec_t *) data;
        break;

    default: /* NGX_HTTP_CAST_BOUNDS_SIZE */
        v = *(size_t *) data;
        break;
    }

    if (v < b->min) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "value is too small, the minimum is %ui%s",
                           b->min,
                           b->type == NGX_HTTP_CAST_BOUNDS_SEC ? "s"
                           : b->type == NGX_HTTP_CAST_BOUNDS_MSEC ? "ms"
                           : " bytes");
        return NGX_CONF_ERROR;
    }

    if (b->max && v > b->max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "value is too large, the maximum is %ui bytes",
                           b->max);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_cast_io_uring(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char                       *rv;
    ngx_http_cast_main_conf_t  *cmcf = conf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

#if !(NGX_HTTP_CAST_IO_URING)
    if (cmcf->io_uring) {
        return "is not supported: the module was built without liburing "
               "(apt-get install liburing-dev, then build again)";
    }
#else
    (void) cmcf;
#endif

    return NGX_CONF_OK;
}


static void *
ngx_http_cast_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_cast_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_cast_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->hub = NULL;
     *     cmcf->used = 0;
     *     cmcf->redis = NULL;
     */

    cmcf->max_topics = NGX_CONF_UNSET_UINT;
    cmcf->max_requests = NGX_CONF_UNSET_UINT;
    cmcf->max_subs = NGX_CONF_UNSET_UINT;
    cmcf->max_topic_subs = NGX_CONF_UNSET_UINT;
    cmcf->max_context_total = NGX_CONF_UNSET_SIZE;
    cmcf->context_ttl = NGX_CONF_UNSET_MSEC;
    cmcf->io_uring = NGX_CONF_UNSET;

    return cmcf;
}


static char *
ngx_http_cast_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_cast_main_conf_t *cmcf = conf;

    ngx_conf_init_uint_value(cmcf->max_topics, 100000);
    ngx_conf_init_uint_value(cmcf->max_requests, 1024);
    ngx_conf_init_uint_value(cmcf->max_subs, 100000);
    ngx_conf_init_uint_value(cmcf->max_topic_subs, 10000);
    ngx_conf_init_size_value(cmcf->max_context_total, 64 * 1024 * 1024);

    /* as long as the Redis store always kept a topic's state: a day */
    ngx_conf_init_msec_value(cmcf->context_ttl, 86400000);
    ngx_conf_init_value(cmcf->io_uring, NGX_HTTP_CAST_IO_URING_DEFAULT);

    return NGX_CONF_OK;
}


static void *
ngx_http_cast_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_cast_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     clcf->handler = 0;
     *     clcf->public_url = NULL;
     *     clcf->cors_origin = { 0, NULL };
     *     clcf->latest = { 0, NULL };
     *     clcf->auth_keys = NULL;
     *     clcf->auth_issuer = { 0, NULL };
     *     clcf->auth_audience = { 0, NULL };
     *     clcf->auth_topic_claim = { 0, NULL };
     *     clcf->auth_topic = NULL;
     *     clcf->auth_scope = NULL;
     *     clcf->auth_expires = NULL;
     *     clcf->auth_subject = NULL;
     */

    clcf->dialect = NGX_CONF_UNSET_UINT;
    clcf->lease_default = NGX_CONF_UNSET;
    clcf->lease_max = NGX_CONF_UNSET;
    clcf->bind_timeout = NGX_CONF_UNSET_MSEC;
    clcf->max_message_size = NGX_CONF_UNSET_SIZE;
    clcf->max_context = NGX_CONF_UNSET_SIZE;
    clcf->send_queue = NGX_CONF_UNSET_SIZE;
    clcf->ping_interval = NGX_CONF_UNSET_MSEC;
    clcf->reset = NGX_CONF_UNSET;
    clcf->content_sharing = NGX_CONF_UNSET;
    clcf->json_ping = NGX_CONF_UNSET;
    clcf->ack_timeout = NGX_CONF_UNSET_MSEC;
    clcf->ws_max_message = NGX_CONF_UNSET_SIZE;
    clcf->ws_message_timeout = NGX_CONF_UNSET_MSEC;
    clcf->auth = NGX_CONF_UNSET_UINT;
    clcf->auth_leeway = NGX_CONF_UNSET;

    clcf->oauth = ngx_http_cast_oauth_create_conf(cf);
    if (clcf->oauth == NULL) {
        return NULL;
    }

    return clcf;
}


static char *
ngx_http_cast_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_cast_loc_conf_t *prev = parent;
    ngx_http_cast_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *hclcf;

    /*
     * "limit_except" gives the methods it limits a configuration of its
     * own: they are still served by the location's cast handler
     */

    hclcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (hclcf->lmt_excpt && conf->handler == 0 && prev->handler != 0) {
        conf->handler = prev->handler;
        conf->oauth->mode = prev->oauth->mode;
        hclcf->handler = ngx_http_cast_handler;
    }

    ngx_conf_merge_uint_value(conf->dialect, prev->dialect,
                              NGX_HTTP_CAST_DIALECT_CAST);
    ngx_conf_merge_sec_value(conf->lease_max, prev->lease_max, 86400);

    /*
     * cast_lease_default stays unset unless configured: then the built-in
     * 7200s applies, capped by cast_lease_max (ngx_http_cast_lease()).
     */

    if (conf->lease_default == NGX_CONF_UNSET) {
        conf->lease_default = prev->lease_default;
    }
    ngx_conf_merge_msec_value(conf->bind_timeout, prev->bind_timeout, 60000);
    ngx_conf_merge_size_value(conf->max_context, prev->max_context,
                              4 * 1024 * 1024);
    ngx_conf_merge_size_value(conf->max_message_size, prev->max_message_size,
                              16 * 1024 * 1024);
    ngx_conf_merge_size_value(conf->send_queue, prev->send_queue,
                              4 * 1024 * 1024);
    ngx_conf_merge_msec_value(conf->ping_interval, prev->ping_interval,
                              20000);
    ngx_conf_merge_size_value(conf->ws_max_message, prev->ws_max_message,
                              1024 * 1024);
    ngx_conf_merge_msec_value(conf->ws_message_timeout,
                              prev->ws_message_timeout, 30000);

    if (conf->public_url == NULL) {
        conf->public_url = prev->public_url;
    }

    /* safe defaults: no CORS headers, no reset, unless configured */

    ngx_conf_merge_str_value(conf->cors_origin, prev->cors_origin, "");
    ngx_conf_merge_value(conf->reset, prev->reset, 0);
    /* content sharing: on in the fhircast dialect unless configured */

    ngx_conf_merge_value(conf->content_sharing, prev->content_sharing,
                         NGX_CONF_UNSET);

    conf->sharing = (conf->content_sharing != NGX_CONF_UNSET)
                    ? conf->content_sharing
                    : (conf->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST);

    /* G1's keepalive message, for the clients that want it */
    ngx_conf_merge_value(conf->json_ping, prev->json_ping, 0);

    /* latest-value delivery: none unless configured */
    ngx_conf_merge_str_value(conf->latest, prev->latest, "");

    /* off by default: Cast clients never acknowledge */
    ngx_conf_merge_msec_value(conf->ack_timeout, prev->ack_timeout, 0);

    /*
     * cast_auth: off unless configured; "cast_auth request" brings its
     * variables, and keys and rules are inherited like any value
     */

    if (conf->auth == NGX_CONF_UNSET_UINT) {
        conf->auth = prev->auth;
        conf->auth_topic = prev->auth_topic;
        conf->auth_scope = prev->auth_scope;
        conf->auth_expires = prev->auth_expires;
        conf->auth_subject = prev->auth_subject;
    }

    ngx_conf_merge_uint_value(conf->auth, prev->auth,
                              NGX_HTTP_CAST_AUTH_OFF);

    if (conf->auth_keys == NULL) {
        conf->auth_keys = prev->auth_keys;
    }

    ngx_conf_merge_str_value(conf->auth_issuer, prev->auth_issuer, "");
    ngx_conf_merge_str_value(conf->auth_audience, prev->auth_audience, "");
    ngx_conf_merge_str_value(conf->auth_topic_claim, prev->auth_topic_claim,
                             "hub.topic");
    ngx_conf_merge_sec_value(conf->auth_leeway, prev->auth_leeway, 30);

    if (conf->handler == NGX_HTTP_CAST_HUB
        && conf->auth == NGX_HTTP_CAST_AUTH_JWT
        && (conf->auth_keys == NULL || conf->auth_keys->nelts == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cast_auth jwt\" needs keys: "
                           "\"cast_auth_jwks\" or \"cast_auth_secret\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_cast_oauth_merge_conf(cf, prev->oauth, conf->oauth)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->lease_default != NGX_CONF_UNSET
        && conf->lease_default > conf->lease_max)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cast_lease_default\" %T is greater than "
                           "\"cast_lease_max\" %T",
                           conf->lease_default, conf->lease_max);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_cast_handler(ngx_http_request_t *r)
{
    ngx_http_cast_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    switch (clcf->handler) {

    case NGX_HTTP_CAST_HUB:
        return ngx_http_cast_api_handler(r);

    case NGX_HTTP_CAST_WEBSOCKET:
        return ngx_http_cast_ws_handler(r);

    case NGX_HTTP_CAST_CONFERENCE:
        return ngx_http_cast_conference_location(r);

    case NGX_HTTP_CAST_TOPICS:
        return ngx_http_cast_conf_routes_handler(r,
                                         NGX_HTTP_CAST_CONF_ROUTE_G1_TOPICS);

    case NGX_HTTP_CAST_OAUTH:
        return ngx_http_cast_oauth_handler(r);

    default: /* NGX_HTTP_CAST_STATUS */
        return ngx_http_cast_status_handler(r);
    }
}


/*
 * cast_conference (G1's /conference): what follows the location's name
 * is the route, as after "{base}/conference".
 */

static ngx_int_t
ngx_http_cast_conference_location(ngx_http_request_t *r)
{
    u_char                    *p;
    ngx_str_t                  name, rest;
    ngx_uint_t                 route;
    ngx_http_core_loc_conf_t  *hclcf;

    hclcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    name = hclcf->name;

    if (name.len && name.data[name.len - 1] == '/') {
        name.len--;
    }

    if (r->uri.len < name.len || r->uri.len - name.len > 16) {
        return NGX_HTTP_NOT_FOUND;
    }

    p = ngx_pnalloc(r->pool, sizeof("/conference") - 1 + 16);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rest.data = p;
    p = ngx_cpymem(p, "/conference", sizeof("/conference") - 1);
    p = ngx_cpymem(p, r->uri.data + name.len, r->uri.len - name.len);
    rest.len = p - rest.data;

    if (ngx_http_cast_conf_route(&rest, &route) != NGX_OK
        || route == NGX_HTTP_CAST_CONF_ROUTE_TOPICS)
    {
        (void) ngx_http_discard_request_body(r);
        return NGX_HTTP_NOT_FOUND;
    }

    return ngx_http_cast_conf_routes_handler(r, route);
}


/*
 * Local mode keeps every topic in one worker's memory, so it is correct
 * only with a single worker.
 */

static ngx_int_t
ngx_http_cast_check_workers(ngx_cycle_t *cycle, ngx_conf_t *cf)
{
    ngx_core_conf_t            *ccf;
    ngx_http_cast_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cast_module);
    if (cmcf == NULL || !cmcf->used || cmcf->redis) {
        /* Redis mode spreads the hub over any number of workers */
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ccf->worker_processes == NGX_CONF_UNSET
        || ccf->worker_processes <= 1)
    {
        return NGX_OK;
    }

    if (cf) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cast: local mode (no \"cast_redis\") works with "
                           "one worker only, but \"worker_processes\" is "
                           "%i: set \"worker_processes 1;\"",
                           ccf->worker_processes);

    } else {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "cast: local mode (no \"cast_redis\") works with "
                      "one worker only, but \"worker_processes\" is "
                      "%i: set \"worker_processes 1;\"",
                      ccf->worker_processes);
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_cast_postconfiguration(ngx_conf_t *cf)
{
    return ngx_http_cast_check_workers(cf->cycle, cf);
}


static ngx_int_t
ngx_http_cast_init_module(ngx_cycle_t *cycle)
{
    /* catches "worker_processes" written after the http block */
    return ngx_http_cast_check_workers(cycle, NULL);
}


static ngx_int_t
ngx_http_cast_init_process(ngx_cycle_t *cycle)
{
    ngx_http_cast_store_t      *store;
    ngx_http_cast_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cast_module);
    if (cmcf == NULL || !cmcf->used) {
        return NGX_OK;
    }

    /* the store decides the mode; nothing above it knows which it is */

    if (cmcf->redis) {
        store = ngx_http_cast_store_redis_create(cycle, cmcf->redis, cmcf);

    } else {
        store = ngx_http_cast_store_local_create(cycle, cmcf);
    }

    if (store == NULL) {
        return NGX_ERROR;
    }

    cmcf->hub = ngx_http_cast_hub_create(cycle, store);
    if (cmcf->hub == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_cast_request_init(cycle, cmcf->hub, cmcf->max_requests)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_cast_ws_init_process(cycle, cmcf->io_uring) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_cast_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_cast_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cast_module);
    if (cmcf == NULL || cmcf->hub == NULL) {
        return;
    }

    /*
     * Sockets first (Close 1001), then the hub releases their records
     * and the store sends what it must before it goes.
     */

    ngx_http_cast_ws_shutdown_all();
    ngx_http_cast_request_exit();
    ngx_http_cast_hub_destroy(cmcf->hub);
    cmcf->hub = NULL;
}
