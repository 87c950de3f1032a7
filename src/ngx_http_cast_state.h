
/*
 * ngx_http_cast_module: a topic's state, and how an event changes it.
 *
 * Written once, run by both stores.  The state is a JSON object:
 *   "context"  the last non-empty "context" (Cast GET shape), until an
 *              event whose name holds "close";
 *   "opens"    the open contexts, oldest first, one per anchor (type and
 *              resource id): {"type", "id", "version", "name", "text"},
 *              "text" the event as subscribers got it, the current one
 *              marked "current": true.  With content sharing (reference
 *              fhircast-stu3.md 5) an open also has "bundle" (the id of
 *              its content Bundle), "vat" (where its version is in
 *              "text"), "content" (the resources its updates put, by
 *              "Type/id") and "csize" (their size as JSON).
 */


#ifndef _NGX_HTTP_CAST_STATE_H_INCLUDED_
#define _NGX_HTTP_CAST_STATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"


#define NGX_HTTP_CAST_STATE_REASON  384


/*
 * What apply() made of an event: the bytes subscribers get (the event's
 * own, or new ones with context.versionId: "alloc" is then set, and
 * freed by the next apply() on the same outcome or by outcome_free()),
 * and why it was refused.
 */

typedef struct {
    ngx_str_t                  json;
    u_char                    *alloc;
    ngx_uint_t                 refused;     /* NGX_HTTP_CAST_* */
    ngx_str_t                  reason;      /* in buf */
    u_char                     buf[NGX_HTTP_CAST_STATE_REASON];
} ngx_http_cast_outcome_t;


/*
 * NGX_OK: changed, NGX_DECLINED: unchanged, NGX_ABORT: refused (out->
 * refused and out->reason say why; the state is as it was), NGX_ERROR:
 * no memory.  "out" must be zeroed before its first use.
 */
ngx_int_t ngx_http_cast_state_apply(json_t *state,
    ngx_http_cast_event_t *ev, ngx_http_cast_outcome_t *out);
void ngx_http_cast_outcome_free(ngx_http_cast_outcome_t *out);

/* GET {base}/{topic} in a dialect's shape: a new reference */
json_t *ngx_http_cast_state_context(json_t *state, ngx_uint_t dialect);

/* an open context to replay: its lowercase name and its text (borrowed) */
typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  text;
} ngx_http_cast_replay_t;

/* does a subscription take events of this lowercase name */
typedef ngx_int_t (*ngx_http_cast_wants_pt)(void *data, ngx_str_t *name);

/* the types an open may imply opens of (Patient, Encounter, ImagingStudy) */
#define NGX_HTTP_CAST_DERIVABLE  3

/*
 * The latest open context per anchor type that "wants" takes, oldest
 * first; with "derived" (a JSON array the caller frees; texts of derived
 * opens are kept there), also the opens implied by those it does not.
 */
ngx_uint_t ngx_http_cast_state_replay(json_t *state,
    ngx_http_cast_wants_pt wants, void *data, json_t *derived,
    ngx_http_cast_replay_t *replay, ngx_uint_t max);

/*
 * The opens an "<X>-open" event implies (reference 3.3.3) that "wants"
 * takes, with new ids: at most NGX_HTTP_CAST_DERIVABLE; their texts are
 * appended to "derived".
 */
ngx_uint_t ngx_http_cast_state_derive(ngx_str_t *json,
    ngx_http_cast_wants_pt wants, void *data, json_t *derived,
    ngx_http_cast_replay_t *out, ngx_uint_t max);


#endif /* _NGX_HTTP_CAST_STATE_H_INCLUDED_ */
