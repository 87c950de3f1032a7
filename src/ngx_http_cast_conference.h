
/*
 * ngx_http_cast_module: conferences (SPEC 2.6), as topic state.
 *
 * Every conference lives in one registry, the state of a topic of the
 * hub's own (NGX_HTTP_CAST_CONF_TOPIC, a name no client can give):
 *   {"rev": <n>, "conferences": {<host topic>: <conference>}}
 * with a conference {"hostTopic", "title", "sceneLeaderTopic", "topics"
 * (the attendees), "hostUserName"?, "rev"}.  A change (create, join,
 * lead, leave, end) is an event appended to that topic: apply() computes
 * the next registry from the current one, in both stores, and the event
 * every worker gets says what changed and carries the "conference-*"
 * event the participants' sockets get:
 *   {"rev", "host", "conference": <conference> | null,
 *    "notify": [<topic>...], "event": {<the conference-* event>}}
 * Pure functions over JSON: no nginx state, no I/O.
 */


#ifndef _NGX_HTTP_CAST_CONFERENCE_H_INCLUDED_
#define _NGX_HTTP_CAST_CONFERENCE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"


/* the registry's topic: a control character, so never a client's topic */
#define NGX_HTTP_CAST_CONF_TOPIC      "\x1f" "conferences"

#define NGX_HTTP_CAST_CONF_CREATE     1
#define NGX_HTTP_CAST_CONF_JOIN       2
#define NGX_HTTP_CAST_CONF_LEAD       3
#define NGX_HTTP_CAST_CONF_LEAVE      4
#define NGX_HTTP_CAST_CONF_END        5

#define NGX_HTTP_CAST_CONF_MAX        1024   /* conferences */
#define NGX_HTTP_CAST_CONF_MAX_TOPICS 256    /* attendees of one */
#define NGX_HTTP_CAST_CONF_REASON     256


typedef struct {
    ngx_uint_t                 refused;     /* NGX_HTTP_CAST_* */
    ngx_uint_t                 status;      /* the HTTP status */
    json_t                    *reply;       /* the HTTP reply body */
    json_t                    *change;      /* what the workers get */
    ngx_str_t                  reason;      /* in buf */
    u_char                     buf[NGX_HTTP_CAST_CONF_REASON];
} ngx_http_cast_conf_outcome_t;


/*
 * A change asked with "body" (a JSON object) on the registry, in place:
 *   NGX_OK        changed: out->change and out->reply are set;
 *   NGX_DECLINED  nothing to change (out->reply is set);
 *   NGX_ABORT     refused: out->refused, out->status and out->reason;
 *   NGX_ERROR     no memory.
 * "event_id" and "timestamp" are those of the conference-* event.
 * out must be zeroed first; ngx_http_cast_conf_outcome_free() after.
 */
ngx_int_t ngx_http_cast_conf_apply(json_t *registry, ngx_uint_t op,
    json_t *body, const char *reason, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out);
void ngx_http_cast_conf_outcome_free(ngx_http_cast_conf_outcome_t *out);

/* GET {base}/conference: a new array of the conferences */
json_t *ngx_http_cast_conf_list(json_t *registry);

/* a new array of every conference's topics, each once */
json_t *ngx_http_cast_conf_all_topics(json_t *registry);

/*
 * Each listed conference gets "participants": the subscriber names of its
 * topics, host first, each once.  "names" maps a topic to the records the
 * store has of it (objects with "topic" and "name").
 */
ngx_int_t ngx_http_cast_conf_name(json_t *list, json_t *names);

/* a conference's topics, host first (borrowed from "conference") */
ngx_uint_t ngx_http_cast_conf_topics(json_t *conference, ngx_str_t *out,
    ngx_uint_t max);


#endif /* _NGX_HTTP_CAST_CONFERENCE_H_INCLUDED_ */
