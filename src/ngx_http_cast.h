
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


#define NGX_HTTP_CAST_DIALECT_CAST      0
#define NGX_HTTP_CAST_DIALECT_FHIRCAST  1

/* what a location serves */
#define NGX_HTTP_CAST_HUB               1
#define NGX_HTTP_CAST_WEBSOCKET         2
#define NGX_HTTP_CAST_STATUS            3

/* 128 random bits, hex */
#define NGX_HTTP_CAST_ID_LEN            32
#define NGX_HTTP_CAST_UUID_LEN          36
#define NGX_HTTP_CAST_TIMESTAMP_LEN     24

#define NGX_HTTP_CAST_MAX_TOPIC         1024
#define NGX_HTTP_CAST_MAX_EVENT_NAME    256
#define NGX_HTTP_CAST_MAX_EVENTS        256
#define NGX_HTTP_CAST_MAX_FIELD         65536

/* open contexts kept per topic; the oldest goes first */
#define NGX_HTTP_CAST_MAX_OPENS         64

#define NGX_HTTP_CAST_BIND_PATH         "/bind/"


typedef struct ngx_http_cast_hub_s    ngx_http_cast_hub_t;
typedef struct ngx_http_cast_topic_s  ngx_http_cast_topic_t;
typedef struct ngx_http_cast_sub_s    ngx_http_cast_sub_t;
typedef struct ngx_http_cast_ws_s     ngx_http_cast_ws_t;
typedef struct ngx_http_cast_bus_s    ngx_http_cast_bus_t;

/* cast_redis: defined in src/ngx_http_cast_redis.h */
typedef struct ngx_http_cast_redis_conf_s  ngx_http_cast_redis_conf_t;
typedef struct ngx_http_cast_redis_s       ngx_http_cast_redis_t;


typedef struct {
    ngx_http_cast_hub_t       *hub;         /* this worker's hub */
    ngx_flag_t                 used;        /* any cast location */
    ngx_uint_t                 max_topics;

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
    size_t                     send_queue;
    ngx_msec_t                 ping_interval;
    size_t                     ws_max_message;
    ngx_msec_t                 ws_message_timeout;
    ngx_http_complex_value_t  *public_url;
    ngx_str_t                  cors_origin;  /* empty: no CORS headers */
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
    NGX_HTTP_CAST_F_LAST
} ngx_http_cast_field_e;


typedef struct {
    ngx_str_t                  value[NGX_HTTP_CAST_F_LAST];
    ngx_uint_t                 set[NGX_HTTP_CAST_F_LAST];
} ngx_http_cast_fields_t;


/* one open context of a topic: the last "<type>-open" per anchor */

typedef struct {
    ngx_queue_t                queue;
    ngx_str_t                  type;        /* "ImagingStudy" */
    ngx_str_t                  id;          /* anchor resource id or "" */
    json_t                    *event;       /* the published object */
    u_char                     version[NGX_HTTP_CAST_UUID_LEN];
} ngx_http_cast_open_t;


struct ngx_http_cast_topic_s {
    ngx_str_node_t             sn;          /* keyed by name */
    ngx_queue_t                subs;        /* ngx_http_cast_sub_t */
    ngx_queue_t                opens;       /* oldest first */
    ngx_uint_t                 nopens;
    ngx_http_cast_open_t      *current;     /* NULL after its close */
    json_t                    *last_context;  /* Cast GET shape */
    uint64_t                   events_in;

    /* Redis mode: the last event delivered here, by its stream id */
    uint64_t                   last_ms;
    uint64_t                   last_seq;
    ngx_uint_t                 catchup;     /* NGX_HTTP_CAST_CATCHUP_* */
    ngx_queue_t                held;        /* events during a catch-up */
    ngx_uint_t                 nheld;

    u_char                     name[1];
};


#define NGX_HTTP_CAST_CATCHUP_NONE      0
#define NGX_HTTP_CAST_CATCHUP_WANTED    1   /* after a pub/sub reconnect */
#define NGX_HTTP_CAST_CATCHUP_SENT      2   /* XRANGE on its way */


/* an event received while its topic catches up, kept in arrival order */

typedef struct {
    ngx_queue_t                queue;
    size_t                     len;
    u_char                     data[1];     /* "<id>\n<name>\n<json>" */
} ngx_http_cast_held_t;


struct ngx_http_cast_sub_s {
    ngx_str_node_t             sn;          /* keyed by endpoint id */
    ngx_queue_t                link;        /* in topic->subs or wildcard */
    ngx_queue_t                all;         /* in hub->subs_all */
    ngx_http_cast_topic_t     *topic;       /* NULL: topic "*" */
    ngx_pool_t                *pool;        /* strings of this record */

    ngx_str_t                  topic_name;
    ngx_str_t                  endpoint;    /* the absolute URL */
    ngx_str_t                  name;
    ngx_str_t                  callback;
    ngx_str_t                  product_name;
    ngx_str_t                  product_version;
    ngx_str_t                  actors;
    ngx_str_t                  client_info;

    /* granted events: one ngx_alloc()ed block, replaced on re-subscribe */
    void                      *events_block;
    ngx_str_t                 *events;      /* lowercase, for matching */
    ngx_uint_t                 nevents;
    ngx_str_t                  events_text; /* as granted, comma list */
    unsigned                   all_events:1;
    unsigned                   dialect:1;
    unsigned                   remote_ended:1;  /* Redis knows already */
    unsigned                   replaying:1;     /* sending the replay */

    time_t                     lease;       /* granted, seconds */
    time_t                     expires;
    ngx_event_t                lease_ev;
    ngx_event_t                bind_ev;

    ngx_http_cast_ws_t        *ws;          /* the bound socket or NULL */
    ngx_http_cast_hub_t       *hub;
};


/*
 * An accepted event on its way to subscribers.  The frame holding its
 * bytes is built once and shared by every subscriber's queue.
 */

typedef struct {
    ngx_uint_t                 refs;
    size_t                     len;
    u_char                    *data;       /* ws header + JSON text */
} ngx_http_cast_frame_t;


typedef struct {
    json_t                    *root;        /* the object to deliver */
    ngx_str_t                  topic;
    ngx_str_t                  name;        /* hub.event as published */
    ngx_str_t                  lowercase;   /* hub.event, for matching */
    json_t                    *context;     /* borrowed from root */
    ngx_str_t                  json;        /* root serialized once */
    u_char                     lower[NGX_HTTP_CAST_MAX_EVENT_NAME];
} ngx_http_cast_event_t;


/* what an event does to its topic's stored context */

#define NGX_HTTP_CAST_CONTEXT_KEEP      0
#define NGX_HTTP_CAST_CONTEXT_SET       1
#define NGX_HTTP_CAST_CONTEXT_CLEAR     2

#define NGX_HTTP_CAST_ANCHOR_NONE       0
#define NGX_HTTP_CAST_ANCHOR_OPEN       1
#define NGX_HTTP_CAST_ANCHOR_CLOSE      2

typedef struct {
    ngx_uint_t                 last_context;
    ngx_uint_t                 anchor;
    ngx_str_t                  type;        /* "ImagingStudy" */
    ngx_str_t                  id;          /* anchor resource id or "" */
} ngx_http_cast_effect_t;


/* which local subscriptions get an event */
#define NGX_HTTP_CAST_DELIVER_TOPIC     1
#define NGX_HTTP_CAST_DELIVER_WILDCARD  2
#define NGX_HTTP_CAST_DELIVER_ALL       3


struct ngx_http_cast_hub_s {
    ngx_rbtree_t               topics;
    ngx_rbtree_node_t          topics_sentinel;
    ngx_rbtree_t               subs;
    ngx_rbtree_node_t          subs_sentinel;
    ngx_queue_t                subs_all;
    ngx_queue_t                wildcard;    /* subscriptions to "*" */
    ngx_queue_t                sockets;     /* ngx_http_cast_ws_t */
    ngx_event_t                heartbeat_ev;
    ngx_http_cast_bus_t       *bus;         /* Redis mode, else NULL */
    ngx_log_t                 *log;

    ngx_uint_t                 ntopics;
    ngx_uint_t                 max_topics;
    ngx_uint_t                 nsubs;
    ngx_uint_t                 nsockets;
    uint64_t                   events_in;
    uint64_t                   events_out;
    uint64_t                   dropped;
    uint64_t                   acks;
};


extern ngx_module_t  ngx_http_cast_module;


/* ngx_http_cast_module.c */
ngx_http_cast_hub_t *ngx_http_cast_get_hub(void);
void ngx_http_cast_event_cancel(ngx_event_t *ev);

/* ngx_http_cast_api.c: the {base} routes */
ngx_int_t ngx_http_cast_api_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_http_cast_send_json_new(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
ngx_int_t ngx_http_cast_send_published(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...);

/* ngx_http_cast_status.c */
ngx_int_t ngx_http_cast_status_handler(ngx_http_request_t *r);
json_t *ngx_http_cast_status_body(ngx_http_cast_hub_t *hub);
json_t *ngx_http_cast_status_worker(ngx_http_cast_hub_t *hub);

/* ngx_http_cast_form.c: application/x-www-form-urlencoded */
ngx_int_t ngx_http_cast_form_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_fields_t *f, ngx_str_t *err);
ngx_int_t ngx_http_cast_fields_from_json(ngx_pool_t *pool, json_t *obj,
    ngx_http_cast_fields_t *f, ngx_str_t *err);
const char *ngx_http_cast_field_name(ngx_uint_t field);

/* ngx_http_cast_json.c: event validation and JSON helpers */
ngx_int_t ngx_http_cast_json_parse(ngx_pool_t *pool, u_char *p, size_t len,
    json_t **out, ngx_str_t *err);
ngx_int_t ngx_http_cast_event_validate(ngx_pool_t *pool, json_t *root,
    ngx_str_t *raw, ngx_str_t *path_topic, ngx_uint_t dialect,
    ngx_http_cast_event_t *ev, ngx_str_t *err);
ngx_int_t ngx_http_cast_json_dump(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);
json_t *ngx_http_cast_json_string(ngx_str_t *s);
ngx_int_t ngx_http_cast_random(u_char *buf, size_t len);
void ngx_http_cast_uuid(u_char *out, u_char *random16);
ngx_int_t ngx_http_cast_new_uuid(u_char *out);
void ngx_http_cast_timestamp(u_char *out);
ngx_int_t ngx_http_cast_json_nonempty(json_t *json);

/* ngx_http_cast_hub.c: topics, subscriptions, context, fan-out */
ngx_http_cast_hub_t *ngx_http_cast_hub_create(ngx_cycle_t *cycle);
void ngx_http_cast_hub_destroy(ngx_http_cast_hub_t *hub);
ngx_http_cast_topic_t *ngx_http_cast_topic_find(ngx_http_cast_hub_t *hub,
    ngx_str_t *name);
ngx_uint_t ngx_http_cast_hub_full(ngx_http_cast_hub_t *hub, ngx_str_t *topic);
ngx_http_cast_sub_t *ngx_http_cast_sub_find(ngx_http_cast_hub_t *hub,
    ngx_str_t *id);
ngx_http_cast_sub_t *ngx_http_cast_sub_create(ngx_http_cast_hub_t *hub,
    ngx_http_cast_fields_t *f, ngx_http_cast_loc_conf_t *clcf, time_t lease,
    ngx_str_t *endpoint_prefix, ngx_str_t *id, ngx_pool_t *pool,
    ngx_str_t *err);
ngx_int_t ngx_http_cast_events_normalize(ngx_http_cast_hub_t *hub,
    ngx_str_t *list, ngx_uint_t dialect, ngx_pool_t *pool, ngx_str_t *out,
    ngx_str_t *err);
ngx_int_t ngx_http_cast_sub_set_events(ngx_http_cast_sub_t *sub,
    ngx_str_t *list, ngx_pool_t *pool, ngx_str_t *err);
void ngx_http_cast_sub_renew(ngx_http_cast_sub_t *sub, time_t lease);
void ngx_http_cast_sub_renew_until(ngx_http_cast_sub_t *sub,
    int64_t expires_ms);
void ngx_http_cast_sub_confirm(ngx_http_cast_sub_t *sub);
void ngx_http_cast_sub_remove(ngx_http_cast_sub_t *sub, const char *reason);
ngx_uint_t ngx_http_cast_sub_matches(ngx_http_cast_sub_t *sub,
    ngx_str_t *lowercase_event);
ngx_int_t ngx_http_cast_hub_publish(ngx_http_cast_hub_t *hub,
    ngx_http_cast_event_t *ev, ngx_log_t *log);
void ngx_http_cast_hub_deliver(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic, ngx_str_t *lowercase, ngx_str_t *json,
    ngx_uint_t which, ngx_log_t *log);
void ngx_http_cast_event_effect(ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect);
json_t *ngx_http_cast_hub_context(ngx_http_cast_hub_t *hub, ngx_str_t *topic,
    ngx_uint_t dialect);
json_t *ngx_http_cast_sub_confirmation(ngx_http_cast_sub_t *sub,
    const char *mode, const char *reason);
ngx_int_t ngx_http_cast_sub_replay(ngx_http_cast_sub_t *sub);
ngx_int_t ngx_http_cast_sub_replay_events(ngx_http_cast_sub_t *sub,
    json_t **events, ngx_uint_t n);

/* ngx_http_cast_bus.c: Redis mode */
ngx_int_t ngx_http_cast_bus_init(ngx_cycle_t *cycle, ngx_http_cast_hub_t *hub,
    ngx_http_cast_redis_conf_t *conf);
void ngx_http_cast_bus_exit(ngx_http_cast_hub_t *hub);
ngx_uint_t ngx_http_cast_bus_ready(ngx_http_cast_bus_t *bus);
void ngx_http_cast_bus_topic(ngx_http_cast_hub_t *hub, ngx_str_t *topic,
    ngx_uint_t on);
void ngx_http_cast_bus_wildcard(ngx_http_cast_hub_t *hub, ngx_uint_t on);
ngx_int_t ngx_http_cast_bus_subscribe(ngx_http_request_t *r,
    ngx_http_cast_fields_t *f, ngx_str_t *events, time_t lease,
    ngx_str_t *prefix);
ngx_int_t ngx_http_cast_bus_renew(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *topic, ngx_str_t *events, time_t lease);
ngx_int_t ngx_http_cast_bus_unsubscribe(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *topic, const char *reason);
ngx_int_t ngx_http_cast_bus_unsubscribe_matching(ngx_http_request_t *r,
    ngx_str_t *topic, const char *field, ngx_str_t *value,
    const char *reason);
ngx_int_t ngx_http_cast_bus_reset(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_bus_publish(ngx_http_request_t *r,
    ngx_http_cast_event_t *ev, ngx_pool_t *pool);
ngx_int_t ngx_http_cast_bus_context(ngx_http_request_t *r, ngx_str_t *topic);
ngx_int_t ngx_http_cast_bus_bind(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *key);
void ngx_http_cast_bus_replay(ngx_http_cast_sub_t *sub);
ngx_int_t ngx_http_cast_bus_status(ngx_http_request_t *r);
void ngx_http_cast_bus_ended(ngx_http_cast_sub_t *sub);

/* ngx_http_cast_ws.c: the WebSocket channel */
ngx_int_t ngx_http_cast_ws_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_ws_start(ngx_http_request_t *r,
    ngx_http_cast_sub_t *sub, ngx_str_t *key);
ngx_int_t ngx_http_cast_ws_send_json(ngx_http_cast_ws_t *ws, json_t *json);
ngx_int_t ngx_http_cast_ws_send_frame(ngx_http_cast_ws_t *ws,
    ngx_http_cast_frame_t *frame);
void ngx_http_cast_ws_close(ngx_http_cast_ws_t *ws, ngx_uint_t code,
    const char *reason);
ngx_http_cast_frame_t *ngx_http_cast_frame_create(u_char *data, size_t len);
void ngx_http_cast_frame_release(ngx_http_cast_frame_t *frame);
void ngx_http_cast_ws_shutdown_all(ngx_http_cast_hub_t *hub);


#endif /* _NGX_HTTP_CAST_H_INCLUDED_ */
