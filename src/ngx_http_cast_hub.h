
/*
 * ngx_http_cast_module: the hub core, the one interface of the edges.
 *
 * The HTTP routes and the socket code call these operations the same way
 * in local and Redis mode; each completes through the caller's callback
 * (at once in local mode, when Redis answered in Redis mode).  The hub
 * keeps this worker's bound subscriptions and their topics, delivers
 * events to them, and runs their leases and heartbeats; records and
 * topic state live in the store.
 *
 * A socket is reached only through the callbacks it gives at attach
 * time: the hub never names the socket code.
 */


#ifndef _NGX_HTTP_CAST_HUB_H_INCLUDED_
#define _NGX_HTTP_CAST_HUB_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_frame.h"
#include "ngx_http_cast_store.h"


/*
 * What the hub asks of a socket.  A frame that is not "live" (greeting,
 * confirmation, replay, denial) is not refused by the bound on live
 * traffic (cast_send_queue).  A live frame marked "latest" (an event the
 * subscription wants latest-value, frame->key set) replaces the queued
 * frame of the same key that is not started yet: that one is dropped,
 * the new one goes last.
 */

#define NGX_HTTP_CAST_SEND_LIVE     0x01
#define NGX_HTTP_CAST_SEND_LATEST   0x02

typedef ngx_int_t (*ngx_http_cast_send_pt)(void *socket,
    ngx_http_cast_frame_t *frame, ngx_uint_t flags);
typedef void (*ngx_http_cast_close_pt)(void *socket, ngx_uint_t code,
    const char *reason);


/* frames just replayed to a socket (ngx_alloc()ed while there are any) */

typedef struct {
    ngx_http_cast_frame_t     *frames[4];
    ngx_uint_t                 n;
    ngx_msec_t                 at;
} ngx_http_cast_replayed_t;


/* hub.events parsed: lowercase names for matching, the text as granted */

typedef struct {
    void                      *block;       /* ngx_alloc()ed, or NULL */
    ngx_str_t                 *names;
    ngx_uint_t                 n;
    ngx_str_t                  text;
    unsigned                   all:1;       /* "*" */
} ngx_http_cast_events_t;


typedef struct ngx_http_cast_topic_s  ngx_http_cast_topic_t;


/* a subscription with a socket on this worker */

struct ngx_http_cast_sub_s {
    ngx_str_node_t             sn;          /* keyed by endpoint id */
    ngx_queue_t                link;        /* topic->subs or wildcard */
    ngx_queue_t                heartbeat;   /* hub->heartbeats, or empty */
    ngx_http_cast_topic_t     *topic;       /* NULL: topic "*" */
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_record_t     record;      /* strings after the struct */
    ngx_http_cast_events_t     events;
    ngx_http_cast_events_t    *latest;      /* record.latest parsed, or
                                               NULL: none */
    u_char                    *writable;    /* a renewal's grant, or NULL */
    /*
     * One timer: the lease's end (lease_at), or the oldest context change
     * still not acknowledged (cast_ack_timeout), whichever comes first.
     */
    ngx_event_t                timer_ev;
    ngx_msec_t                 lease_at;    /* ngx_current_msec */

    void                      *socket;
    ngx_log_t                 *log;         /* the socket's */
    ngx_http_cast_send_pt      send;
    ngx_http_cast_close_pt     close;

    ngx_queue_t                held;        /* events before the replay */
    ngx_uint_t                 nheld;

    /* cast_ack_timeout: context changes sent here, not acknowledged yet */
    ngx_msec_t                 ack_timeout; /* 0: off */
    ngx_queue_t                unacked;
    ngx_uint_t                 nunacked;

    /*
     * Replayed frames, for a while: in Redis mode the state may answer
     * before the same event comes live (two connections), which then
     * is not sent again.
     */
    ngx_http_cast_replayed_t  *replayed;    /* or NULL */

    unsigned                   replaying:1;
    unsigned                   ended:1;
};


struct ngx_http_cast_hub_s {
    ngx_http_cast_store_t     *store;
    ngx_log_t                 *log;

    ngx_rbtree_t               topics;      /* with local subscriptions */
    ngx_rbtree_node_t          topics_sentinel;
    ngx_rbtree_t               subs;
    ngx_rbtree_node_t          subs_sentinel;
    ngx_queue_t                wildcard;    /* subscriptions to "*" */
    ngx_queue_t                heartbeats;  /* that listed "heartbeat" */
    ngx_event_t                heartbeat_ev;

    /* conferences, as the registry topic's events said (conference.h) */
    ngx_rbtree_t               conferences; /* by host topic */
    ngx_rbtree_node_t          conferences_sentinel;
    ngx_rbtree_t               members;     /* by participant topic */
    ngx_rbtree_node_t          members_sentinel;
    int64_t                    conf_rev;

    /* what waits for the store to be out of its call (posted) */
    ngx_queue_t                jobs;
    ngx_event_t                jobs_ev;

    unsigned                   conf_loaded:1;
    unsigned                   conf_loading:1;

    ngx_uint_t                 ntopics;
    ngx_uint_t                 nsubs;
    uint64_t                   events_in;
    uint64_t                   events_out;
    uint64_t                   dropped;
    uint64_t                   acks;
};


ngx_http_cast_hub_t *ngx_http_cast_hub_create(ngx_cycle_t *cycle,
    ngx_http_cast_store_t *store);
void ngx_http_cast_hub_destroy(ngx_http_cast_hub_t *hub);

/*
 * hub.events: NGX_DECLINED with *err when the list is invalid.  The
 * block is freed with ngx_http_cast_events_free().
 */
ngx_int_t ngx_http_cast_events_parse(ngx_str_t *list, ngx_uint_t dialect,
    ngx_http_cast_events_t *events, ngx_str_t *err);
void ngx_http_cast_events_free(ngx_http_cast_events_t *events);

/* record->id empty: a new id is drawn (res->record has it) */
void ngx_http_cast_hub_subscribe(ngx_http_cast_hub_t *hub,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data);
void ngx_http_cast_hub_renew(ngx_http_cast_hub_t *hub,
    ngx_http_cast_record_t *record, ngx_http_cast_done_pt done, void *data);
void ngx_http_cast_hub_unsubscribe(ngx_http_cast_hub_t *hub, ngx_str_t *id,
    ngx_str_t *topic, const char *reason, ngx_http_cast_done_pt done,
    void *data);
void ngx_http_cast_hub_unsubscribe_matching(ngx_http_cast_hub_t *hub,
    ngx_str_t *topic, ngx_uint_t field, ngx_str_t *value,
    const char *reason, ngx_http_cast_done_pt done, void *data);
void ngx_http_cast_hub_reset(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data);
void ngx_http_cast_hub_publish(ngx_http_cast_hub_t *hub,
    ngx_http_cast_event_t *ev, ngx_http_cast_done_pt done, void *data);
/* res->json: the reply of GET {base}/{topic} in the dialect's shape */
void ngx_http_cast_hub_context(ngx_http_cast_hub_t *hub, ngx_str_t *topic,
    ngx_uint_t dialect, ngx_http_cast_done_pt done, void *data);
/* res->record: the bound record; then attach() the socket */
void ngx_http_cast_hub_bind(ngx_http_cast_hub_t *hub, ngx_str_t *id,
    ngx_http_cast_done_pt done, void *data);
/* res->json: the status of every worker the store knows */
void ngx_http_cast_hub_status(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data);

/*
 * A socket for a bound record: the hub sends the greeting, the
 * confirmation and the replay through send(), then live events.  NULL:
 * out of memory (the record is ended).
 */
ngx_http_cast_sub_t *ngx_http_cast_hub_attach(ngx_http_cast_hub_t *hub,
    ngx_http_cast_record_t *record, void *socket, ngx_log_t *log,
    ngx_http_cast_send_pt send, ngx_http_cast_close_pt close,
    ngx_msec_t ack_timeout);
/*
 * The socket went (closed, failed): its subscription ends.  With no
 * reason (the worker exits), the record stays, to be bound again.
 */
void ngx_http_cast_hub_detach(ngx_http_cast_sub_t *sub, const char *reason);
/*
 * An acknowledgement {"id", "status"} received on a socket (sub NULL:
 * not bound yet): a 4xx or 5xx one of a context change makes the hub
 * send a "syncerror" to the topic's other subscriptions (SPEC 3.3).
 */
void ngx_http_cast_hub_ack(ngx_http_cast_hub_t *hub,
    ngx_http_cast_sub_t *sub, ngx_str_t *id, ngx_uint_t status);

json_t *ngx_http_cast_hub_counters(ngx_http_cast_hub_t *hub);

/*
 * Conferences (SPEC 2.6): a change (NGX_HTTP_CAST_CONF_* of
 * ngx_http_cast_conference.h) asked with a JSON object; res->json is the
 * reply, res->rc NGX_HTTP_CAST_DONE or why it was refused (res->reason).
 */
void ngx_http_cast_hub_conference(ngx_http_cast_hub_t *hub, ngx_uint_t op,
    json_t *body, ngx_http_cast_done_pt done, void *data);
/* res->json: the conferences (GET {base}/conference) */
void ngx_http_cast_hub_conferences(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data);
/* res->json: the topics with subscriptions or a state, sorted */
void ngx_http_cast_hub_topics(ngx_http_cast_hub_t *hub,
    ngx_http_cast_done_pt done, void *data);

/*
 * A one-time claim of "key" across every worker and host: DONE for the
 * first claimer, CLAIMED for every later one while the key is held (ttl
 * ms).  The token endpoints redeem their codes with it.
 */
void ngx_http_cast_hub_claim(ngx_http_cast_hub_t *hub, ngx_str_t *key,
    ngx_msec_t ttl, ngx_http_cast_done_pt done, void *data);

/* a counter shared by every worker and host: res->value, its new value */
void ngx_http_cast_hub_incr(ngx_http_cast_hub_t *hub, ngx_str_t *key,
    ngx_http_cast_done_pt done, void *data);


#endif /* _NGX_HTTP_CAST_HUB_H_INCLUDED_ */
