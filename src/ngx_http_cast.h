
/*
 * ngx_http_cast_module: a Cast / FHIRcast hub inside nginx.
 *
 * The umbrella header: shared types (configuration, hub, topic,
 * subscription, event, socket) and the functions one file calls in another.
 */


#ifndef _NGX_HTTP_CAST_H_INCLUDED_
#define _NGX_HTTP_CAST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_cast_util.h"


#define NGX_HTTP_CAST_DIALECT_CAST      0
#define NGX_HTTP_CAST_DIALECT_FHIRCAST  1

/* what a location serves */
#define NGX_HTTP_CAST_HUB               1
#define NGX_HTTP_CAST_WEBSOCKET         2
#define NGX_HTTP_CAST_STATUS            3
#define NGX_HTTP_CAST_CONFERENCE        4   /* G1's /conference */
#define NGX_HTTP_CAST_TOPICS            5   /* G1's /topics */
#define NGX_HTTP_CAST_OAUTH             6   /* cast_oauth */

/* 128 random bits, hex */
#define NGX_HTTP_CAST_ID_LEN            32

#define NGX_HTTP_CAST_MAX_TOPIC         1024
#define NGX_HTTP_CAST_MAX_EVENT_NAME    256
#define NGX_HTTP_CAST_MAX_EVENTS        256
#define NGX_HTTP_CAST_MAX_FIELD         65536

/* open contexts kept per topic; the oldest goes first */
#define NGX_HTTP_CAST_MAX_OPENS         64

#define NGX_HTTP_CAST_BIND_PATH         "/bind/"

/* cast_auth */
#define NGX_HTTP_CAST_AUTH_OFF          0
#define NGX_HTTP_CAST_AUTH_JWT          1
#define NGX_HTTP_CAST_AUTH_REQUEST      2


typedef struct ngx_http_cast_hub_s    ngx_http_cast_hub_t;
typedef struct ngx_http_cast_sub_s    ngx_http_cast_sub_t;
typedef struct ngx_http_cast_store_s  ngx_http_cast_store_t;

/* cast_oauth: defined in src/ngx_http_cast_oauth.h */
typedef struct ngx_http_cast_oauth_conf_s  ngx_http_cast_oauth_conf_t;

/* cast_redis: defined in src/ngx_http_cast_redis.h */
typedef struct ngx_http_cast_redis_conf_s  ngx_http_cast_redis_conf_t;
typedef struct ngx_http_cast_redis_s       ngx_http_cast_redis_t;


typedef struct {
    ngx_http_cast_hub_t       *hub;         /* this worker's hub */
    ngx_flag_t                 used;        /* any cast location */
    ngx_uint_t                 max_topics;
    ngx_uint_t                 max_requests;  /* waiting, per worker */
    ngx_uint_t                 max_subs;     /* cast_max_subscriptions */
    ngx_uint_t                 max_topic_subs;  /* ..._per_topic */
    size_t                     max_context_total;  /* local mode */
    ngx_msec_t                 context_ttl;  /* cast_context_ttl */
    ngx_flag_t                 io_uring;     /* cast_io_uring */

    /* cast_redis (src/ngx_http_cast_redis.c); NULL: local mode */
    ngx_http_cast_redis_conf_t  *redis;
} ngx_http_cast_main_conf_t;


typedef struct {
    ngx_uint_t                 handler;     /* NGX_HTTP_CAST_HUB, ... */
    ngx_uint_t                 dialect;
    time_t                     lease_default;
    time_t                     lease_max;
    ngx_msec_t                 bind_timeout;
    size_t                     max_message_size;
    size_t                     max_context;  /* open contexts per topic */
    size_t                     send_queue;
    ngx_msec_t                 ping_interval;
    size_t                     ws_max_message;
    ngx_msec_t                 ws_message_timeout;
    ngx_http_complex_value_t  *public_url;
    ngx_str_t                  cors_origin;  /* empty: no CORS headers */
    ngx_flag_t                 reset;        /* DELETE {base} allowed */

    /* cast_auth and its keys and rules (src/ngx_http_cast_auth.c) */
    ngx_uint_t                 auth;         /* NGX_HTTP_CAST_AUTH_* */
    ngx_array_t               *auth_keys;    /* ngx_http_cast_jwk_t */
    ngx_str_t                  auth_issuer;  /* empty: any */
    ngx_str_t                  auth_audience;
    ngx_str_t                  auth_topic_claim;
    time_t                     auth_leeway;
    ngx_http_complex_value_t  *auth_topic;   /* cast_auth request ... */
    ngx_http_complex_value_t  *auth_scope;
    ngx_http_complex_value_t  *auth_expires;
    ngx_http_complex_value_t  *auth_subject;
    ngx_flag_t                 content_sharing;  /* as configured */
    ngx_flag_t                 sharing;      /* in effect: by default in
                                                the fhircast dialect */
    ngx_msec_t                 ack_timeout;  /* 0: off */
    ngx_flag_t                 json_ping;    /* {"type":"ping"} frames */
    ngx_str_t                  latest;       /* cast_latest_value: comma
                                                list, "" off, NULL unset */

    /* cast_oauth and its key (src/ngx_http_cast_oauth.c) */
    ngx_http_cast_oauth_conf_t  *oauth;
} ngx_http_cast_loc_conf_t;


/* the fields of a subscribe / unsubscribe / reset request */

typedef enum {
    NGX_HTTP_CAST_F_MODE = 0,
    NGX_HTTP_CAST_F_CHANNEL_TYPE,
    NGX_HTTP_CAST_F_TOPIC,
    NGX_HTTP_CAST_F_EVENTS,
    NGX_HTTP_CAST_F_LEASE,
    NGX_HTTP_CAST_F_ENDPOINT,
    NGX_HTTP_CAST_F_CALLBACK,
    NGX_HTTP_CAST_F_NAME,
    NGX_HTTP_CAST_F_PRODUCT_NAME,
    NGX_HTTP_CAST_F_PRODUCT_VERSION,
    NGX_HTTP_CAST_F_ACTORS,
    NGX_HTTP_CAST_F_CLIENT_INFO,
    NGX_HTTP_CAST_F_LATEST,
    NGX_HTTP_CAST_F_LAST
} ngx_http_cast_field_e;


typedef struct {
    ngx_str_t                  value[NGX_HTTP_CAST_F_LAST];
    ngx_uint_t                 set[NGX_HTTP_CAST_F_LAST];
} ngx_http_cast_fields_t;


typedef struct {
    json_t                    *root;        /* the object to deliver */
    ngx_str_t                  topic;
    ngx_str_t                  name;        /* hub.event as published */
    ngx_str_t                  lowercase;   /* hub.event, for matching */
    json_t                    *context;     /* borrowed from root */
    ngx_str_t                  json;        /* root serialized once */
    size_t                     max_context; /* cast_max_context_size */
    ngx_uint_t                 dialect;
    ngx_flag_t                 content_sharing;  /* cast_content_sharing */
    u_char                     lower[NGX_HTTP_CAST_MAX_EVENT_NAME];
} ngx_http_cast_event_t;




/*
 * A subscription record: what subscribe made, wherever it is kept (the
 * local store, Redis).  Strings belong to whoever filled the record.
 */

typedef struct {
    ngx_str_t                  id;          /* 32 hex characters */
    ngx_str_t                  topic;
    ngx_str_t                  events;      /* as granted, comma list */
    ngx_str_t                  endpoint;    /* the absolute URL */
    ngx_str_t                  name;
    ngx_str_t                  callback;
    ngx_str_t                  product_name;
    ngx_str_t                  product_version;
    ngx_str_t                  actors;
    ngx_str_t                  client_info;
    ngx_uint_t                 dialect;
    time_t                     lease;       /* granted, seconds */
    int64_t                    expires;     /* lease end, ms since epoch */
    ngx_msec_t                 bind_timeout;
    ngx_uint_t                 counted;     /* its topic is a topic ("*"
                                               is not): cast_max_topics */

    /*
     * Made with a bearer token (cast_auth): its socket publishes only on
     * its topic, and only the events of "writable" (lowercase names,
     * comma list; "*": every event).  The lease ends with the token.
     */
    ngx_uint_t                 auth;
    ngx_str_t                  writable;

    /*
     * Latest-value events (comma list, "": none): a frame of one of these
     * still queued for the socket is replaced by the newer one of the same
     * event and topic.
     */
    ngx_str_t                  latest;
} ngx_http_cast_record_t;


/* how a hub operation ended (ngx_http_cast_result_t.rc) */

#define NGX_HTTP_CAST_DONE          0   /* done as asked */
#define NGX_HTTP_CAST_NOT_FOUND     1   /* no such subscription */
#define NGX_HTTP_CAST_BOUND         2   /* it has a socket already */
#define NGX_HTTP_CAST_FULL          3   /* cast_max_topics */
#define NGX_HTTP_CAST_UNAVAILABLE   4   /* the store is out of reach */
#define NGX_HTTP_CAST_FAILED        5   /* internal error */
#define NGX_HTTP_CAST_TOO_LARGE     6   /* past cast_max_context_size */
#define NGX_HTTP_CAST_CONFLICT      7   /* a stale context.versionId */
#define NGX_HTTP_CAST_INVALID       8   /* refused by the topic's state */
#define NGX_HTTP_CAST_CLAIMED       9   /* claim: claimed before */
#define NGX_HTTP_CAST_SUBS_FULL     10  /* cast_max_subscriptions */
#define NGX_HTTP_CAST_TOPIC_FULL    11  /* ..._subscriptions_per_topic */
#define NGX_HTTP_CAST_CONTEXT_FULL  12  /* cast_max_context_total */


typedef struct {
    ngx_uint_t                 rc;
    ngx_http_cast_record_t    *record;      /* subscribe, renew, bind... */
    ngx_uint_t                 removed;     /* unsubscribe, reset */
    ngx_uint_t                 again;       /* publish: a retry, not
                                               appended again */
    json_t                    *json;        /* state, status (borrowed) */
    ngx_str_t                  reason;      /* publish: why it was refused
                                               (valid during the call) */
    uint64_t                   value;       /* incr: the new value */
} ngx_http_cast_result_t;


/*
 * Every hub and store operation completes through one of these: at once
 * in local mode, when Redis answered in Redis mode.  The result is valid
 * during the call only.
 */

typedef void (*ngx_http_cast_done_pt)(void *data,
    ngx_http_cast_result_t *res);


extern ngx_module_t  ngx_http_cast_module;


/* a field of a form of its own (the token endpoints) */

typedef struct {
    ngx_str_t                  name;
    size_t                     max;         /* decoded bytes */
    ngx_str_t                  value;       /* decoded, trimmed */
    ngx_uint_t                 set;
} ngx_http_cast_form_field_t;


/* ngx_http_cast_form.c: application/x-www-form-urlencoded */
ngx_int_t ngx_http_cast_form_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_fields_t *f, ngx_str_t *err);
ngx_int_t ngx_http_cast_fields_from_json(ngx_pool_t *pool, json_t *obj,
    ngx_http_cast_fields_t *f, ngx_str_t *err);
const char *ngx_http_cast_field_name(ngx_uint_t field);
/*
 * The named fields of a form (other names are skipped), into fields[]
 * as set already: a field given twice, here or before (a query string
 * and a body), is refused like a malformed one.
 */
ngx_int_t ngx_http_cast_form_fields(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_form_field_t *fields, ngx_uint_t n, ngx_str_t *err);

/* ngx_http_cast_json.c: event validation and JSON helpers */
ngx_int_t ngx_http_cast_json_parse(ngx_pool_t *pool, u_char *p, size_t len,
    json_t **out, ngx_str_t *err);
ngx_int_t ngx_http_cast_event_validate(ngx_pool_t *pool, json_t *root,
    ngx_str_t *raw, ngx_str_t *path_topic, ngx_uint_t dialect,
    ngx_http_cast_event_t *ev, ngx_str_t *err);
ngx_int_t ngx_http_cast_json_dump(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);
u_char *ngx_http_cast_json_event_rewrite(ngx_str_t *raw, ngx_str_t *drop,
    ngx_uint_t ndrop, ngx_str_t *insert, u_char *out);
ngx_int_t ngx_http_cast_json_event_id(ngx_str_t *raw, ngx_str_t *id,
    ngx_str_t *name);
json_t *ngx_http_cast_json_string(ngx_str_t *s);
size_t ngx_http_cast_json_quoted_len(u_char *s, size_t len);
u_char *ngx_http_cast_json_quote(u_char *dst, u_char *s, size_t len);
ngx_int_t ngx_http_cast_json_nonempty(json_t *json);


#endif /* _NGX_HTTP_CAST_H_INCLUDED_ */
