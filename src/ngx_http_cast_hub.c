
/*
 * ngx_http_cast_module: the per-worker hub.  Topics, subscriptions and
 * their timers, event matching, the context store (SPEC 2.3) and fan-out.
 *
 * Cost of a publish: one topic lookup, one walk over that topic's
 * subscriptions (plus the "*" ones), one frame built for all of them.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_frame.h"
#include "ngx_http_cast_text.h"


/* the app-level heartbeat event (STU3 ballot), in seconds */
#define NGX_HTTP_CAST_HEARTBEAT  10


static ngx_http_cast_topic_t *ngx_http_cast_topic_get(
    ngx_http_cast_hub_t *hub, ngx_str_t *name);
static void ngx_http_cast_topic_release(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic);
static void ngx_http_cast_topic_store(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic, ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect);
static void ngx_http_cast_anchor_id(json_t *context, ngx_str_t *type,
    ngx_str_t *id);
static ngx_http_cast_open_t *ngx_http_cast_open_find(
    ngx_http_cast_topic_t *topic, ngx_str_t *type, ngx_str_t *id);
static void ngx_http_cast_open_free(ngx_http_cast_topic_t *topic,
    ngx_http_cast_open_t *open);
static ngx_uint_t ngx_http_cast_fan_out(ngx_http_cast_hub_t *hub,
    ngx_queue_t *subs, ngx_str_t *lowercase, ngx_str_t *json,
    ngx_http_cast_frame_t **frame);
static void ngx_http_cast_heartbeat_handler(ngx_event_t *ev);
static void ngx_http_cast_lease_handler(ngx_event_t *ev);
static void ngx_http_cast_bind_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_cast_str_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_cast_str_caseeq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_cast_copy(ngx_pool_t *pool, ngx_str_t *dst,
    ngx_str_t *src);


ngx_http_cast_hub_t *
ngx_http_cast_hub_create(ngx_cycle_t *cycle)
{
    ngx_http_cast_hub_t        *hub;
    ngx_http_cast_main_conf_t  *cmcf;

    hub = ngx_pcalloc(cycle->pool, sizeof(ngx_http_cast_hub_t));
    if (hub == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&hub->topics, &hub->topics_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&hub->subs, &hub->subs_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&hub->subs_all);
    ngx_queue_init(&hub->wildcard);
    ngx_queue_init(&hub->sockets);

    hub->log = cycle->log;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_cast_module);
    hub->max_topics = cmcf->max_topics;

    hub->heartbeat_ev.handler = ngx_http_cast_heartbeat_handler;
    hub->heartbeat_ev.data = hub;
    hub->heartbeat_ev.log = cycle->log;
    hub->heartbeat_ev.cancelable = 1;
    ngx_add_timer(&hub->heartbeat_ev, NGX_HTTP_CAST_HEARTBEAT * 1000);

    return hub;
}


/* worker exit: sockets are closed with 1001, everything is freed */

void
ngx_http_cast_hub_destroy(ngx_http_cast_hub_t *hub)
{
    ngx_queue_t            *q;
    ngx_rbtree_node_t      *node;
    ngx_http_cast_sub_t    *sub;
    ngx_http_cast_topic_t  *topic;

    ngx_http_cast_event_cancel(&hub->heartbeat_ev);

    ngx_http_cast_ws_shutdown_all(hub);

    while (!ngx_queue_empty(&hub->subs_all)) {
        q = ngx_queue_head(&hub->subs_all);
        sub = ngx_queue_data(q, ngx_http_cast_sub_t, all);
        ngx_http_cast_sub_remove(sub, NULL);
    }

    while (hub->topics.root != hub->topics.sentinel) {
        node = ngx_rbtree_min(hub->topics.root, hub->topics.sentinel);
        topic = (ngx_http_cast_topic_t *) node;

        while (!ngx_queue_empty(&topic->opens)) {
            q = ngx_queue_head(&topic->opens);
            ngx_http_cast_open_free(topic,
                                    ngx_queue_data(q, ngx_http_cast_open_t,
                                                   queue));
        }

        if (topic->last_context) {
            json_decref(topic->last_context);
            topic->last_context = NULL;
        }

        ngx_http_cast_topic_release(hub, topic);
    }
}


ngx_http_cast_topic_t *
ngx_http_cast_topic_find(ngx_http_cast_hub_t *hub, ngx_str_t *name)
{
    return (ngx_http_cast_topic_t *)
               ngx_str_rbtree_lookup(&hub->topics, name,
                                     ngx_crc32_long(name->data, name->len));
}


/* a new topic would pass cast_max_topics: refused, not stored */

ngx_uint_t
ngx_http_cast_hub_full(ngx_http_cast_hub_t *hub, ngx_str_t *topic)
{
    if (hub->ntopics < hub->max_topics) {
        return 0;
    }

    if (topic->len == 1 && topic->data[0] == '*') {
        return 0;
    }

    if (ngx_http_cast_topic_find(hub, topic) != NULL) {
        return 0;
    }

    ngx_log_error(NGX_LOG_ERR, hub->log, 0,
                  "cast: %ui topics are stored, the cast_max_topics limit: "
                  "\"%V\" is refused", hub->ntopics, topic);

    return 1;
}


static ngx_http_cast_topic_t *
ngx_http_cast_topic_get(ngx_http_cast_hub_t *hub, ngx_str_t *name)
{
    ngx_http_cast_topic_t  *topic;

    topic = ngx_http_cast_topic_find(hub, name);
    if (topic) {
        return topic;
    }

    topic = ngx_alloc(sizeof(ngx_http_cast_topic_t) + name->len, hub->log);
    if (topic == NULL) {
        return NULL;
    }

    ngx_memzero(topic, sizeof(ngx_http_cast_topic_t));
    ngx_memcpy(topic->name, name->data, name->len);

    topic->sn.str.data = topic->name;
    topic->sn.str.len = name->len;
    topic->sn.node.key = ngx_crc32_long(name->data, name->len);

    ngx_queue_init(&topic->subs);
    ngx_queue_init(&topic->opens);
    ngx_queue_init(&topic->held);

    ngx_rbtree_insert(&hub->topics, &topic->sn.node);
    hub->ntopics++;

    return topic;
}


/* a topic with no subscription and no stored context is forgotten */

static void
ngx_http_cast_topic_release(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic)
{
    ngx_queue_t  *q;

    if (!ngx_queue_empty(&topic->subs)
        || !ngx_queue_empty(&topic->opens)
        || topic->last_context)
    {
        return;
    }

    ngx_rbtree_delete(&hub->topics, &topic->sn.node);
    hub->ntopics--;

    while (!ngx_queue_empty(&topic->held)) {
        q = ngx_queue_head(&topic->held);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_cast_held_t, queue));
    }

    ngx_free(topic);
}


ngx_http_cast_sub_t *
ngx_http_cast_sub_find(ngx_http_cast_hub_t *hub, ngx_str_t *id)
{
    return (ngx_http_cast_sub_t *)
               ngx_str_rbtree_lookup(&hub->subs, id,
                                     ngx_crc32_long(id->data, id->len));
}


/*
 * Creates a subscription from validated fields.  Returns NULL with
 * err->len set when the request is at fault, with err->len 0 on an
 * internal failure.
 */

ngx_http_cast_sub_t *
ngx_http_cast_sub_create(ngx_http_cast_hub_t *hub, ngx_http_cast_fields_t *f,
    ngx_http_cast_loc_conf_t *clcf, time_t lease, ngx_str_t *endpoint_prefix,
    ngx_str_t *id, ngx_pool_t *pool, ngx_str_t *err)
{
    u_char                 *p, random[16];
    ngx_str_t              *topic_name;
    ngx_pool_t             *sp;
    ngx_http_cast_sub_t    *sub;
    ngx_http_cast_topic_t  *topic;

    err->len = 0;

    sp = ngx_create_pool(1024, hub->log);
    if (sp == NULL) {
        return NULL;
    }

    sub = ngx_pcalloc(sp, sizeof(ngx_http_cast_sub_t));
    if (sub == NULL) {
        goto failed;
    }

    sub->pool = sp;
    sub->hub = hub;
    sub->dialect = clcf->dialect;

    if (ngx_http_cast_sub_set_events(sub, &f->value[NGX_HTTP_CAST_F_EVENTS],
                                     pool, err)
        != NGX_OK)
    {
        goto failed;
    }

    /* an id is 128 bits from the OS CSPRNG; a repeat is retried */

    p = ngx_pnalloc(sp, endpoint_prefix->len + NGX_HTTP_CAST_ID_LEN);
    if (p == NULL) {
        goto failed;
    }

    sub->endpoint.data = p;
    sub->endpoint.len = endpoint_prefix->len + NGX_HTTP_CAST_ID_LEN;
    p = ngx_cpymem(p, endpoint_prefix->data, endpoint_prefix->len);

    sub->sn.str.data = p;
    sub->sn.str.len = NGX_HTTP_CAST_ID_LEN;

    if (id) {
        /* Redis mode: the id was drawn when the subscription was made */
        ngx_memcpy(p, id->data, NGX_HTTP_CAST_ID_LEN);

    } else {
        do {
            if (ngx_http_cast_random(random, sizeof(random)) != NGX_OK) {
                goto failed;
            }

            (void) ngx_hex_dump(p, random, sizeof(random));

        } while (ngx_http_cast_sub_find(hub, &sub->sn.str) != NULL);
    }

    sub->sn.node.key = ngx_crc32_long(sub->sn.str.data, sub->sn.str.len);

    topic_name = &f->value[NGX_HTTP_CAST_F_TOPIC];

    if (ngx_http_cast_copy(sp, &sub->topic_name, topic_name) != NGX_OK
        || ngx_http_cast_copy(sp, &sub->name, &f->value[NGX_HTTP_CAST_F_NAME])
           != NGX_OK
        || ngx_http_cast_copy(sp, &sub->callback,
                              &f->value[NGX_HTTP_CAST_F_CALLBACK]) != NGX_OK
        || ngx_http_cast_copy(sp, &sub->product_name,
                              &f->value[NGX_HTTP_CAST_F_PRODUCT_NAME])
           != NGX_OK
        || ngx_http_cast_copy(sp, &sub->product_version,
                              &f->value[NGX_HTTP_CAST_F_PRODUCT_VERSION])
           != NGX_OK
        || ngx_http_cast_copy(sp, &sub->actors,
                              &f->value[NGX_HTTP_CAST_F_ACTORS]) != NGX_OK
        || ngx_http_cast_copy(sp, &sub->client_info,
                              &f->value[NGX_HTTP_CAST_F_CLIENT_INFO])
           != NGX_OK)
    {
        goto failed;
    }

    if (topic_name->len == 1 && topic_name->data[0] == '*') {
        if (ngx_queue_empty(&hub->wildcard)) {
            ngx_http_cast_bus_wildcard(hub, 1);
        }

        ngx_queue_insert_tail(&hub->wildcard, &sub->link);

    } else {
        topic = ngx_http_cast_topic_get(hub, topic_name);
        if (topic == NULL) {
            goto failed;
        }

        if (ngx_queue_empty(&topic->subs)) {
            ngx_http_cast_bus_topic(hub, &topic->sn.str, 1);
        }

        sub->topic = topic;
        ngx_queue_insert_tail(&topic->subs, &sub->link);
    }

    ngx_rbtree_insert(&hub->subs, &sub->sn.node);
    ngx_queue_insert_tail(&hub->subs_all, &sub->all);
    hub->nsubs++;

    sub->lease_ev.handler = ngx_http_cast_lease_handler;
    sub->lease_ev.data = sub;
    sub->lease_ev.log = hub->log;
    sub->lease_ev.cancelable = 1;

    sub->bind_ev.handler = ngx_http_cast_bind_handler;
    sub->bind_ev.data = sub;
    sub->bind_ev.log = hub->log;
    sub->bind_ev.cancelable = 1;

    ngx_http_cast_sub_renew(sub, lease);
    ngx_add_timer(&sub->bind_ev, clcf->bind_timeout);

    return sub;

failed:

    if (sub && sub->events_block) {
        ngx_free(sub->events_block);
    }

    ngx_destroy_pool(sp);

    return NULL;
}


/*
 * Parses a hub.events list: trimmed, empty items skipped, duplicates
 * collapsed case-insensitively (the first spelling is kept), "*" means
 * every event (cast dialect only).
 */

ngx_int_t
ngx_http_cast_sub_set_events(ngx_http_cast_sub_t *sub, ngx_str_t *list,
    ngx_pool_t *pool, ngx_str_t *err)
{
    u_char                     *p, *block, *text, *lower;
    size_t                      size;
    ngx_str_t                  *tokens, *t;
    ngx_uint_t                  n, i, all;
    const char                 *msg;
    ngx_http_cast_text_list_t   names;

    tokens = ngx_palloc(pool, NGX_HTTP_CAST_MAX_EVENTS * sizeof(ngx_str_t));
    if (tokens == NULL) {
        return NGX_ERROR;
    }

    names.names = tokens;
    names.max = NGX_HTTP_CAST_MAX_EVENTS;
    names.max_name = NGX_HTTP_CAST_MAX_EVENT_NAME;
    names.allow_all = (sub->dialect != NGX_HTTP_CAST_DIALECT_FHIRCAST);

    if (ngx_http_cast_text_events(list->data, list->len, &names, &msg)
        != NGX_OK)
    {
        err->data = (u_char *) msg;
        err->len = ngx_strlen(msg);
        return NGX_DECLINED;
    }

    n = names.n;
    all = names.all;

    /* the text "a,b,c" (the names and n - 1 commas), then the lowercase */
    size = 2 * names.size + n;

    block = ngx_alloc(n * sizeof(ngx_str_t) + size, sub->hub->log);
    if (block == NULL) {
        return NGX_ERROR;
    }

    t = (ngx_str_t *) block;
    text = block + n * sizeof(ngx_str_t);

    /* text: "a,b,c" (size of the names plus n - 1 commas) */

    p = text;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, tokens[i].data, tokens[i].len);
    }

    lower = p;

    for (i = 0; i < n; i++) {
        t[i].data = lower;
        t[i].len = tokens[i].len;
        ngx_strlow(lower, tokens[i].data, tokens[i].len);
        lower += tokens[i].len;
    }

    if (sub->events_block) {
        ngx_free(sub->events_block);
    }

    sub->events_block = block;
    sub->events = t;
    sub->nevents = n;
    sub->events_text.data = text;
    sub->events_text.len = p - text;
    sub->all_events = all;

    return NGX_OK;
}


void
ngx_http_cast_sub_renew(ngx_http_cast_sub_t *sub, time_t lease)
{
    sub->lease = lease;
    sub->expires = ngx_time() + lease;

    ngx_add_timer(&sub->lease_ev, (ngx_msec_t) lease * 1000);
}


/* Redis mode: a lease renewed on another worker or host */

void
ngx_http_cast_sub_renew_until(ngx_http_cast_sub_t *sub, int64_t expires_ms)
{
    int64_t      left;
    ngx_time_t  *tp;

    tp = ngx_timeofday();
    left = expires_ms - ((int64_t) tp->sec * 1000 + tp->msec);

    sub->expires = (time_t) (expires_ms / 1000);
    sub->lease = (time_t) ((ngx_max(left, 0) + 999) / 1000);

    ngx_add_timer(&sub->lease_ev, (ngx_msec_t) ngx_max(left, 1));
}


/* a fresh confirmation on a live socket, after a re-subscribe */

void
ngx_http_cast_sub_confirm(ngx_http_cast_sub_t *sub)
{
    json_t  *confirmation;

    if (sub->ws == NULL) {
        return;
    }

    confirmation = ngx_http_cast_sub_confirmation(sub, "subscribe", NULL);
    if (confirmation) {
        (void) ngx_http_cast_ws_send_json(sub->ws, confirmation);
        json_decref(confirmation);
    }
}


/* hub.events as they would be granted, for a record kept elsewhere */

ngx_int_t
ngx_http_cast_events_normalize(ngx_http_cast_hub_t *hub, ngx_str_t *list,
    ngx_uint_t dialect, ngx_pool_t *pool, ngx_str_t *out, ngx_str_t *err)
{
    ngx_int_t            rc;
    ngx_http_cast_sub_t  sub;

    ngx_memzero(&sub, sizeof(ngx_http_cast_sub_t));
    sub.hub = hub;
    sub.dialect = dialect;

    rc = ngx_http_cast_sub_set_events(&sub, list, pool, err);
    if (rc != NGX_OK) {
        return rc;
    }

    out->len = sub.events_text.len;
    out->data = ngx_pnalloc(pool, out->len);

    if (out->data) {
        ngx_memcpy(out->data, sub.events_text.data, out->len);
    }

    ngx_free(sub.events_block);

    return out->data ? NGX_OK : NGX_ERROR;
}


ngx_uint_t
ngx_http_cast_sub_matches(ngx_http_cast_sub_t *sub, ngx_str_t *lowercase)
{
    ngx_uint_t  i;

    if (sub->all_events) {
        return 1;
    }

    for (i = 0; i < sub->nevents; i++) {
        if (ngx_http_cast_str_eq(&sub->events[i], lowercase)) {
            return 1;
        }
    }

    return 0;
}


/*
 * Ends a subscription.  A bound socket gets the denial and Close 1000;
 * "reason" NULL is a worker shutdown: Close 1001, no denial.
 */

void
ngx_http_cast_sub_remove(ngx_http_cast_sub_t *sub, const char *reason)
{
    json_t               *denial;
    ngx_http_cast_ws_t   *ws;
    ngx_http_cast_hub_t  *hub;

    hub = sub->hub;

    ngx_log_error(NGX_LOG_INFO, hub->log, 0,
                  "cast: subscription %*s... on topic \"%V\" ended: %s",
                  (size_t) 8, sub->sn.str.data, &sub->topic_name,
                  reason ? reason : "worker exit");

    ws = sub->ws;

    if (ws) {
        sub->ws = NULL;

        if (reason) {
            denial = ngx_http_cast_sub_confirmation(sub, "denied", reason);
            if (denial) {
                (void) ngx_http_cast_ws_send_json(ws, denial);
                json_decref(denial);
            }

            ngx_http_cast_ws_close(ws, 1000, reason);

        } else {
            ngx_http_cast_ws_close(ws, 1001, "going away");
        }
    }

    ngx_http_cast_event_cancel(&sub->lease_ev);

    ngx_http_cast_event_cancel(&sub->bind_ev);



    if (hub->bus) {
        ngx_http_cast_bus_ended(sub);
    }

    ngx_queue_remove(&sub->link);
    ngx_queue_remove(&sub->all);
    ngx_rbtree_delete(&hub->subs, &sub->sn.node);
    hub->nsubs--;

    if (sub->topic) {
        if (ngx_queue_empty(&sub->topic->subs)) {
            ngx_http_cast_bus_topic(hub, &sub->topic->sn.str, 0);
        }

        ngx_http_cast_topic_release(hub, sub->topic);

    } else if (ngx_queue_empty(&hub->wildcard)) {
        ngx_http_cast_bus_wildcard(hub, 0);
    }

    if (sub->events_block) {
        ngx_free(sub->events_block);
    }

    ngx_destroy_pool(sub->pool);
}


/*
 * Every 10 s, the "heartbeat" event to the bound subscriptions that list
 * it by name ("*" does not ask for it).
 */

static void
ngx_http_cast_heartbeat_handler(ngx_event_t *ev)
{
    u_char                id[NGX_HTTP_CAST_UUID_LEN];
    u_char                ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    json_t               *event;
    ngx_str_t             name;
    ngx_uint_t            i;
    ngx_queue_t          *q;
    ngx_http_cast_sub_t  *sub;
    ngx_http_cast_hub_t  *hub;

    hub = ev->data;

    ngx_str_set(&name, "heartbeat");
    ngx_http_cast_timestamp(ts);

    for (q = ngx_queue_head(&hub->subs_all);
         q != ngx_queue_sentinel(&hub->subs_all);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_cast_sub_t, all);

        if (sub->ws == NULL) {
            continue;
        }

        for (i = 0; i < sub->nevents; i++) {
            if (ngx_http_cast_str_eq(&sub->events[i], &name)) {
                break;
            }
        }

        if (i == sub->nevents || ngx_http_cast_new_uuid(id) != NGX_OK) {
            continue;
        }

        event = json_pack("{s:s%,s:s%,s:{s:s%,s:s,s:[{s:s,s:s}]}}",
                          "timestamp", (char *) ts, sizeof(ts),
                          "id", (char *) id, sizeof(id),
                          "event",
                          "hub.topic", (char *) sub->topic_name.data,
                          sub->topic_name.len,
                          "hub.event", "heartbeat",
                          "context", "key", "period", "decimal", "10");
        if (event == NULL) {
            continue;
        }

        (void) ngx_http_cast_ws_send_json(sub->ws, event);
        json_decref(event);
    }

    ngx_add_timer(&hub->heartbeat_ev, NGX_HTTP_CAST_HEARTBEAT * 1000);
}


static void
ngx_http_cast_lease_handler(ngx_event_t *ev)
{
    ngx_http_cast_sub_remove(ev->data, "lease expired");
}


static void
ngx_http_cast_bind_handler(ngx_event_t *ev)
{
    ngx_http_cast_sub_remove(ev->data, "no socket was bound in time");
}


/* the STU3 confirmation ("subscribe") or denial ("denied") object */

json_t *
ngx_http_cast_sub_confirmation(ngx_http_cast_sub_t *sub, const char *mode,
    const char *reason)
{
    time_t   left;
    json_t  *obj;

    left = sub->expires - ngx_time();
    if (left < 0) {
        left = 0;
    }

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    if (json_object_set_new(obj, "hub.mode", json_string(mode))
        || json_object_set_new(obj, "hub.topic",
                               ngx_http_cast_json_string(&sub->topic_name))
        || json_object_set_new(obj, "hub.events",
                               ngx_http_cast_json_string(&sub->events_text))
        || (reason == NULL
            && json_object_set_new(obj, "hub.lease_seconds",
                                   json_integer(left)))
        || (reason
            && json_object_set_new(obj, "hub.reason", json_string(reason))))
    {
        json_decref(obj);
        return NULL;
    }

    return obj;
}


/*
 * After a socket binds (local mode): the topic's open contexts.
 */

ngx_int_t
ngx_http_cast_sub_replay(ngx_http_cast_sub_t *sub)
{
    json_t                *events[NGX_HTTP_CAST_MAX_OPENS];
    ngx_uint_t             n;
    ngx_queue_t           *q;
    ngx_http_cast_open_t  *open;

    if (sub->topic == NULL) {
        return NGX_OK;
    }

    n = 0;

    for (q = ngx_queue_head(&sub->topic->opens);
         q != ngx_queue_sentinel(&sub->topic->opens)
         && n < NGX_HTTP_CAST_MAX_OPENS;
         q = ngx_queue_next(q))
    {
        open = ngx_queue_data(q, ngx_http_cast_open_t, queue);
        events[n++] = open->event;
    }

    return ngx_http_cast_sub_replay_events(sub, events, n);
}


/*
 * Of the open events given oldest first: the latest per anchor type that
 * the subscription matches, sent oldest first, as originally published.
 */

ngx_int_t
ngx_http_cast_sub_replay_events(ngx_http_cast_sub_t *sub, json_t **events,
    ngx_uint_t n)
{
    u_char      name[NGX_HTTP_CAST_MAX_EVENT_NAME];
    json_t     *event, *value, *replay[NGX_HTTP_CAST_MAX_OPENS];
    ngx_str_t   lowercase, type, seen[NGX_HTTP_CAST_MAX_OPENS];
    ngx_uint_t  i, k, nseen, nreplay;

    nseen = 0;
    nreplay = 0;

    while (n-- && nseen < NGX_HTTP_CAST_MAX_OPENS) {

        event = json_object_get(events[n], "event");
        value = json_object_get(event, "hub.event");

        if (!json_is_string(value)
            || json_string_length(value) > NGX_HTTP_CAST_MAX_EVENT_NAME
            || json_string_length(value) <= sizeof("-open") - 1)
        {
            continue;
        }

        type.data = (u_char *) json_string_value(value);
        type.len = json_string_length(value) - (sizeof("-open") - 1);

        for (k = 0; k < nseen; k++) {
            if (ngx_http_cast_str_caseeq(&seen[k], &type)) {
                break;
            }
        }

        if (k < nseen) {
            continue;
        }

        seen[nseen++] = type;

        lowercase.len = json_string_length(value);
        lowercase.data = name;
        ngx_strlow(name, (u_char *) json_string_value(value), lowercase.len);

        if (ngx_http_cast_sub_matches(sub, &lowercase)) {
            replay[nreplay++] = events[n];
        }
    }

    for (i = nreplay; i-- && sub->ws; /* void */) {
        if (ngx_http_cast_ws_send_json(sub->ws, replay[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Local mode: the topic's context store first, then every matching
 * subscription with a bound socket gets the same frame.
 */

ngx_int_t
ngx_http_cast_hub_publish(ngx_http_cast_hub_t *hub, ngx_http_cast_event_t *ev,
    ngx_log_t *log)
{
    ngx_http_cast_topic_t   *topic;
    ngx_http_cast_effect_t   effect;

    if (ngx_http_cast_hub_full(hub, &ev->topic)) {
        return NGX_DECLINED;
    }

    topic = ngx_http_cast_topic_get(hub, &ev->topic);
    if (topic == NULL) {
        return NGX_ERROR;
    }

    hub->events_in++;
    topic->events_in++;

    ngx_http_cast_event_effect(ev, &effect);
    ngx_http_cast_topic_store(hub, topic, ev, &effect);

    ngx_http_cast_hub_deliver(hub, topic, &ev->lowercase, &ev->json,
                              NGX_HTTP_CAST_DELIVER_ALL, log);

    ngx_http_cast_topic_release(hub, topic);

    return NGX_OK;
}


/*
 * Hands an accepted event's bytes to the local sockets: the topic's
 * subscriptions (topic may be NULL: none here), the subscriptions to "*",
 * or both.
 */

void
ngx_http_cast_hub_deliver(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic, ngx_str_t *lowercase, ngx_str_t *json,
    ngx_uint_t which, ngx_log_t *log)
{
    ngx_uint_t              delivered;
    ngx_http_cast_frame_t  *frame;

    frame = NULL;
    delivered = 0;

    if (topic && (which & NGX_HTTP_CAST_DELIVER_TOPIC)) {
        delivered = ngx_http_cast_fan_out(hub, &topic->subs, lowercase, json,
                                          &frame);
    }

    if (which & NGX_HTTP_CAST_DELIVER_WILDCARD) {
        delivered += ngx_http_cast_fan_out(hub, &hub->wildcard, lowercase,
                                           json, &frame);
    }

    if (frame) {
        ngx_http_cast_frame_release(frame);
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, log, 0,
                   "cast deliver: \"%V\" on \"%*s\", %uz bytes, "
                   "%ui deliveries", lowercase,
                   topic ? topic->sn.str.len : 1,
                   topic ? topic->name : (u_char *) "*", json->len,
                   delivered);
}


static ngx_uint_t
ngx_http_cast_fan_out(ngx_http_cast_hub_t *hub, ngx_queue_t *subs,
    ngx_str_t *lowercase, ngx_str_t *json, ngx_http_cast_frame_t **frame)
{
    ngx_uint_t            n;
    ngx_queue_t          *q;
    ngx_http_cast_sub_t  *sub;

    n = 0;

    for (q = ngx_queue_head(subs);
         q != ngx_queue_sentinel(subs);
         q = ngx_queue_next(q))
    {
        sub = ngx_queue_data(q, ngx_http_cast_sub_t, link);

        if (sub->ws == NULL || !ngx_http_cast_sub_matches(sub, lowercase)) {
            continue;
        }

        if (*frame == NULL) {
            *frame = ngx_http_cast_frame_create(json->data, json->len);
            if (*frame == NULL) {
                hub->dropped++;
                return n;
            }
        }

        /* a socket never leaves its queue from here: safe to go on */

        if (ngx_http_cast_ws_send_frame(sub->ws, *frame) == NGX_OK) {
            hub->events_out++;
            n++;

        } else {
            hub->dropped++;
        }
    }

    return n;
}


/*
 * What an event does to its topic's stored context.  Cast keeps the last
 * non-empty "context" and clears it on any event whose name contains
 * "close".  FHIRcast keeps every "<type>-open" not yet closed, keyed by
 * anchor type and resource id; the last one opened is current.
 */

void
ngx_http_cast_event_effect(ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect)
{
    size_t      len;
    ngx_str_t  *lowercase;

    ngx_memzero(effect, sizeof(ngx_http_cast_effect_t));

    lowercase = &ev->lowercase;
    len = lowercase->len;

    if (ngx_strlcasestrn(lowercase->data, lowercase->data + len,
                         (u_char *) "close", sizeof("close") - 2)
        != NULL)
    {
        effect->last_context = NGX_HTTP_CAST_CONTEXT_CLEAR;

    } else if (ngx_http_cast_json_nonempty(ev->context)) {
        effect->last_context = NGX_HTTP_CAST_CONTEXT_SET;
    }

    if (len > sizeof("-open") - 1
        && ngx_strncmp(lowercase->data + len - 5, "-open", 5) == 0)
    {
        /* Home-open has no anchor: it changes no stored context */

        if (len - 5 == 4 && ngx_strncmp(lowercase->data, "home", 4) == 0) {
            return;
        }

        effect->anchor = NGX_HTTP_CAST_ANCHOR_OPEN;
        effect->type.data = ev->name.data;
        effect->type.len = len - 5;

    } else if (len > sizeof("-close") - 1
               && ngx_strncmp(lowercase->data + len - 6, "-close", 6) == 0)
    {
        effect->anchor = NGX_HTTP_CAST_ANCHOR_CLOSE;
        effect->type.data = ev->name.data;
        effect->type.len = len - 6;

    } else {
        return;
    }

    ngx_http_cast_anchor_id(ev->context, &effect->type, &effect->id);
}


static void
ngx_http_cast_topic_store(ngx_http_cast_hub_t *hub,
    ngx_http_cast_topic_t *topic, ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect)
{
    ngx_queue_t           *q;
    ngx_http_cast_open_t  *open;

    if (effect->last_context == NGX_HTTP_CAST_CONTEXT_CLEAR) {
        if (topic->last_context) {
            json_decref(topic->last_context);
            topic->last_context = NULL;
        }

    } else if (effect->last_context == NGX_HTTP_CAST_CONTEXT_SET) {
        if (topic->last_context) {
            json_decref(topic->last_context);
        }

        topic->last_context = json_incref(ev->context);
    }

    if (effect->anchor == NGX_HTTP_CAST_ANCHOR_NONE) {
        return;
    }

    open = ngx_http_cast_open_find(topic, &effect->type, &effect->id);
    if (open) {
        ngx_http_cast_open_free(topic, open);
    }

    if (effect->anchor == NGX_HTTP_CAST_ANCHOR_CLOSE) {
        return;
    }

    if (topic->nopens == NGX_HTTP_CAST_MAX_OPENS) {
        q = ngx_queue_head(&topic->opens);
        ngx_http_cast_open_free(topic,
                                ngx_queue_data(q, ngx_http_cast_open_t,
                                               queue));
    }

    open = ngx_alloc(sizeof(ngx_http_cast_open_t) + effect->type.len
                     + effect->id.len, hub->log);
    if (open == NULL) {
        return;
    }

    open->type.data = (u_char *) &open[1];
    open->type.len = effect->type.len;
    ngx_memcpy(open->type.data, effect->type.data, effect->type.len);

    open->id.data = open->type.data + effect->type.len;
    open->id.len = effect->id.len;
    ngx_memcpy(open->id.data, effect->id.data, effect->id.len);

    if (ngx_http_cast_new_uuid(open->version) != NGX_OK) {
        ngx_free(open);
        return;
    }

    open->event = json_incref(ev->root);

    ngx_queue_insert_tail(&topic->opens, &open->queue);
    topic->nopens++;
    topic->current = open;
}


static ngx_http_cast_open_t *
ngx_http_cast_open_find(ngx_http_cast_topic_t *topic, ngx_str_t *type,
    ngx_str_t *id)
{
    ngx_queue_t           *q;
    ngx_http_cast_open_t  *open;

    for (q = ngx_queue_last(&topic->opens);
         q != ngx_queue_sentinel(&topic->opens);
         q = ngx_queue_prev(q))
    {
        open = ngx_queue_data(q, ngx_http_cast_open_t, queue);

        if (ngx_http_cast_str_caseeq(&open->type, type)
            && ngx_http_cast_str_eq(&open->id, id))
        {
            return open;
        }
    }

    return NULL;
}


static void
ngx_http_cast_open_free(ngx_http_cast_topic_t *topic,
    ngx_http_cast_open_t *open)
{
    if (topic->current == open) {
        topic->current = NULL;
    }

    ngx_queue_remove(&open->queue);
    topic->nopens--;
    json_decref(open->event);
    ngx_free(open);
}


/*
 * The anchor's resource id: the context entry whose resource has the
 * anchor's resourceType, or whose key is the anchor's key ("patient",
 * "encounter", "study", "report", else the lowercase type).  An object
 * context (Cast) has no anchor id: one open per type.
 */

static void
ngx_http_cast_anchor_id(json_t *context, ngx_str_t *type, ngx_str_t *id)
{
    size_t       i;
    json_t      *entry, *resource, *value;
    ngx_str_t    key, s;

    static ngx_str_t  keys[][2] = {
        { ngx_string("imagingstudy"), ngx_string("study") },
        { ngx_string("diagnosticreport"), ngx_string("report") },
        { ngx_null_string, ngx_null_string }
    };

    id->len = 0;
    id->data = (u_char *) "";

    if (context == NULL || !json_is_array(context)) {
        return;
    }

    key = *type;

    for (i = 0; keys[i][0].len; i++) {
        if (ngx_http_cast_str_caseeq(&keys[i][0], type)) {
            key = keys[i][1];
            break;
        }
    }

    json_array_foreach(context, i, entry) {

        resource = json_object_get(entry, "resource");
        if (!json_is_object(resource)) {
            continue;
        }

        value = json_object_get(resource, "resourceType");

        if (json_is_string(value)) {
            s.data = (u_char *) json_string_value(value);
            s.len = json_string_length(value);

            if (!ngx_http_cast_str_caseeq(&s, type)) {
                value = json_object_get(entry, "key");

                if (!json_is_string(value)) {
                    continue;
                }

                s.data = (u_char *) json_string_value(value);
                s.len = json_string_length(value);

                if (!ngx_http_cast_str_caseeq(&s, &key)) {
                    continue;
                }
            }
        }

        value = json_object_get(resource, "id");

        if (json_is_string(value)) {
            id->data = (u_char *) json_string_value(value);
            id->len = json_string_length(value);
        }

        return;
    }
}


/* GET {base}/{topic}: a new reference, per dialect (SPEC 1) */

json_t *
ngx_http_cast_hub_context(ngx_http_cast_hub_t *hub, ngx_str_t *name,
    ngx_uint_t dialect)
{
    json_t                 *obj, *event, *context;
    ngx_http_cast_open_t   *open;
    ngx_http_cast_topic_t  *topic;

    topic = ngx_http_cast_topic_find(hub, name);

    if (dialect == NGX_HTTP_CAST_DIALECT_CAST) {
        if (topic == NULL || topic->last_context == NULL) {
            return json_object();
        }

        return json_incref(topic->last_context);
    }

    open = topic ? topic->current : NULL;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    if (open == NULL) {
        if (json_object_set_new(obj, "context.type", json_string(""))
            || json_object_set_new(obj, "context", json_array()))
        {
            json_decref(obj);
            return NULL;
        }

        return obj;
    }

    event = json_object_get(open->event, "event");
    context = json_object_get(event, "context");

    if (json_object_set_new(obj, "context.type",
                            ngx_http_cast_json_string(&open->type))
        || json_object_set_new(obj, "context.versionId",
                               json_stringn((char *) open->version,
                                            NGX_HTTP_CAST_UUID_LEN))
        || json_object_set_new(obj, "context",
                               context ? json_incref(context) : json_array()))
    {
        json_decref(obj);
        return NULL;
    }

    return obj;
}


static ngx_int_t
ngx_http_cast_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_strncmp(a->data, b->data, a->len) == 0;
}


static ngx_int_t
ngx_http_cast_str_caseeq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_strncasecmp(a->data, b->data, a->len) == 0;
}


static ngx_int_t
ngx_http_cast_copy(ngx_pool_t *pool, ngx_str_t *dst, ngx_str_t *src)
{
    dst->len = src->len;

    if (src->len == 0) {
        dst->data = (u_char *) "";
        return NGX_OK;
    }

    dst->data = ngx_pnalloc(pool, src->len);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src->data, src->len);

    return NGX_OK;
}
