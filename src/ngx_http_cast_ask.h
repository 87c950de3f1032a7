
/*
 * ngx_http_cast_module: what request/response between apps means (Cast
 * reference 1.8), written once for both hub generations:
 *
 *   G1  GET {base}/cast-get?subscriber=NAME: a "get-request" to the first
 *       subscription of that name, answered by its "get-response"
 *       (matched by context.requestId);
 *   G2  POST {base}/request: a "<type>-request" to every connected
 *       subscription the request targets, answered by the collated
 *       "<type>-response" messages (matched by context.id).
 *
 * The request checked, its targets among the records the store lists,
 * the message each target gets, the answers collated into the reply.
 * Pure functions over JSON values (jansson): no I/O, no timers, no hub
 * (t/unit/ask_test.c).  The waiting itself is the hub core's
 * (src/ngx_http_cast_request.c).
 */


#ifndef _NGX_HTTP_CAST_ASK_H_INCLUDED_
#define _NGX_HTTP_CAST_ASK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"


#define NGX_HTTP_CAST_ASK_GET          1    /* G1 cast-get */
#define NGX_HTTP_CAST_ASK_REQUEST      2    /* G2 request */

/* how long a request waits (ms) */
#define NGX_HTTP_CAST_ASK_GET_TIMEOUT  5000
#define NGX_HTTP_CAST_ASK_TIMEOUT      2000     /* G2 default */
#define NGX_HTTP_CAST_ASK_MAX_TIMEOUT  300000   /* context.timeoutSeconds */
#define NGX_HTTP_CAST_ASK_IDC_TIMEOUT  180000   /* idc-claude-request */

/* a request id is at most this long */
#define NGX_HTTP_CAST_ASK_MAX_ID       256

/* answers one request takes beyond one per target */
#define NGX_HTTP_CAST_ASK_EXTRA        16
#define NGX_HTTP_CAST_ASK_MAX_ANSWERS  1024


/*
 * A request.  Strings and values are borrowed: from the G2 body, or
 * from the G1 request's pool; they outlive the request's wait.
 */

typedef struct {
    ngx_uint_t                 kind;        /* NGX_HTTP_CAST_ASK_* */
    ngx_str_t                  id;          /* G2: "id"; G1: requestId */
    ngx_str_t                  name;        /* G1: whom to ask; G2: who
                                               asks (subscriber.name) */
    ngx_str_t                  topic;       /* empty: any topic */
    ngx_str_t                  event;       /* G2: hub.event as sent */
    ngx_str_t                  data_type;   /* empty: none */
    ngx_str_t                  target_product;  /* G2; empty: any */
    json_t                    *body;        /* G2: the request */
    json_t                    *actor;       /* G1 "actor", G2
                                               "subscriber.actor"; NULL */
    json_t                    *target_actor;    /* G2; NULL: any */
    ngx_msec_t                 timeout;
    u_char                     type[NGX_HTTP_CAST_MAX_EVENT_NAME];
} ngx_http_cast_ask_t;


/* one request's answers, as they come */

typedef struct {
    json_t                    *reply;       /* the HTTP reply, built up */
    json_t                    *targets;     /* records to send it to */
    json_t                    *missing;     /* G2: names not answered yet */
    json_t                    *products;    /* G2: target name -> product */
    json_t                    *seen;        /* G2: envelope ids taken */
    const char                *error;       /* why nothing was sent */
    ngx_uint_t                 answers;
    ngx_uint_t                 max_answers;
    unsigned                   complete:1;  /* every target answered */
} ngx_http_cast_collate_t;


/*
 * G2: the body of POST {base}/request checked and read into *ask;
 * NGX_DECLINED with *err (static text) for a 400.
 */
ngx_int_t ngx_http_cast_ask_parse(json_t *body, ngx_http_cast_ask_t *ask,
    const char **err);

/*
 * G1: the query's values read into *ask (kind, timeout, the dataType
 * as given); id is the requestId the caller made.
 */
void ngx_http_cast_ask_get(ngx_http_cast_ask_t *ask, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *data_type, ngx_str_t *topic, json_t *actor);

/*
 * The records the store listed (ngx_http_cast_store_t.records): who is
 * asked.  NGX_OK: c->targets to send the request to; NGX_DONE: nothing
 * to send (c->error says why, the reply is final); NGX_ERROR.
 * ngx_http_cast_ask_free() releases *c in every case.
 */
ngx_int_t ngx_http_cast_ask_begin(ngx_http_cast_ask_t *ask, json_t *records,
    ngx_http_cast_collate_t *c);

/* the message a target record gets ("id": uuid, "timestamp": ts) */
json_t *ngx_http_cast_ask_message(ngx_http_cast_ask_t *ask, json_t *target,
    u_char *uuid, u_char *ts);

/* 1 if the record "id" is one of the request's targets */
ngx_uint_t ngx_http_cast_ask_asked(ngx_http_cast_collate_t *c,
    ngx_str_t *id);

/* the message did not reach a target: its answer is not awaited */
void ngx_http_cast_ask_unsent(ngx_http_cast_ask_t *ask,
    ngx_http_cast_collate_t *c, json_t *target);

/*
 * A message with an "event" from a socket: NGX_DECLINED unless its
 * hub.event is a response ("get-response" or "*-response"); else NGX_OK
 * with *id its correlation id (empty when it has none; borrowed).
 */
ngx_int_t ngx_http_cast_ask_response(json_t *root, ngx_str_t *id);

/*
 * An answer to this request: NGX_OK taken (c->complete when every
 * target answered), NGX_DECLINED ignored (a duplicate envelope id, too
 * many answers), NGX_ERROR.  "name" and "product": the answering
 * socket's subscription, for an answer that does not say who it is.
 */
ngx_int_t ngx_http_cast_ask_collect(ngx_http_cast_ask_t *ask,
    ngx_http_cast_collate_t *c, json_t *root, ngx_str_t *name,
    ngx_str_t *product);

/* the reply, complete (borrowed from *c) */
json_t *ngx_http_cast_ask_reply(ngx_http_cast_ask_t *ask,
    ngx_http_cast_collate_t *c, ngx_uint_t timed_out);

void ngx_http_cast_ask_free(ngx_http_cast_collate_t *c);


#endif /* _NGX_HTTP_CAST_ASK_H_INCLUDED_ */
