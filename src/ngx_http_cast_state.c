
/*
 * ngx_http_cast_module: the topic state function (see the header).
 *
 * Cast keeps the last non-empty "context" and clears it on any event
 * whose name contains "close".  FHIRcast keeps every "<type>-open" not
 * yet closed, keyed by anchor type and resource id; the last one opened
 * is current until it is closed.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_state.h"
#include "ngx_http_cast_text.h"


#define NGX_HTTP_CAST_CONTEXT_KEEP      0
#define NGX_HTTP_CAST_CONTEXT_SET       1
#define NGX_HTTP_CAST_CONTEXT_CLEAR     2

#define NGX_HTTP_CAST_ANCHOR_NONE       0
#define NGX_HTTP_CAST_ANCHOR_OPEN       1
#define NGX_HTTP_CAST_ANCHOR_CLOSE      2
#define NGX_HTTP_CAST_ANCHOR_UPDATE     3

typedef struct {
    ngx_str_t                  type;
    ngx_str_t                  name;        /* lowercase */
    const char                *event;       /* as sent */
} ngx_http_cast_derivable_t;


/* members of "event" the hub writes (content sharing) */
#define NGX_HTTP_CAST_VERSION_KEY       "context.versionId"
#define NGX_HTTP_CAST_PRIOR_KEY         "context.priorVersionId"


/* what an event does to its topic's state */

typedef struct {
    ngx_uint_t                 context;
    ngx_uint_t                 anchor;
    ngx_str_t                  type;        /* "ImagingStudy" */
    ngx_str_t                  id;          /* anchor resource id or "" */
} ngx_http_cast_effect_t;


static void ngx_http_cast_state_effect(ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect);
static void ngx_http_cast_anchor_key(ngx_str_t *type, ngx_str_t *key);
static void ngx_http_cast_anchor_id(json_t *context, ngx_str_t *type,
    ngx_str_t *id);
static ngx_int_t ngx_http_cast_state_open(json_t *opens,
    ngx_http_cast_event_t *ev, ngx_http_cast_effect_t *effect,
    json_t *earlier, ngx_http_cast_outcome_t *out);
static ngx_int_t ngx_http_cast_state_update(json_t *state,
    ngx_http_cast_event_t *ev, ngx_http_cast_effect_t *effect,
    ngx_http_cast_outcome_t *out);
static ngx_int_t ngx_http_cast_update_anchor(json_t *context,
    ngx_str_t *type, ngx_str_t *id);
static ngx_int_t ngx_http_cast_update_content(json_t *open,
    json_t *bundle, json_t *content, ngx_http_cast_outcome_t *out);
static ngx_int_t ngx_http_cast_open_has(json_t *open, ngx_str_t *key);
static ngx_int_t ngx_http_cast_ref_split(const char *ref, size_t len,
    ngx_str_t *type, ngx_str_t *id);
static ngx_int_t ngx_http_cast_state_rewrite(ngx_http_cast_event_t *ev,
    json_t *members, ngx_http_cast_outcome_t *out);
static size_t ngx_http_cast_opens_size(json_t *opens, json_t *except);
static json_t *ngx_http_cast_state_bundle(json_t *open);
static ngx_int_t ngx_http_cast_refuse(ngx_http_cast_outcome_t *out,
    ngx_uint_t code, const char *fmt, ...);
static ngx_uint_t ngx_http_cast_seen(ngx_str_t *seen, ngx_uint_t n,
    ngx_str_t *type);
static ngx_int_t ngx_http_cast_json_caseeq(json_t *value, ngx_str_t *s);
static ngx_int_t ngx_http_cast_str_caseeq(ngx_str_t *a, ngx_str_t *b);


ngx_int_t
ngx_http_cast_state_apply(json_t *state, ngx_http_cast_event_t *ev,
    ngx_http_cast_outcome_t *out)
{
    size_t                   i;
    json_t                  *opens, *open, *value, *earlier;
    ngx_int_t                changed, rc;
    ngx_http_cast_effect_t   effect;

    ngx_http_cast_outcome_free(out);

    out->json = ev->json;
    out->refused = 0;
    out->reason.len = 0;
    out->reason.data = out->buf;

    ngx_http_cast_state_effect(ev, &effect);

    changed = NGX_DECLINED;

    /* what may be refused is checked before anything changes */

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_OPEN && ev->max_context
        && ev->json.len > ev->max_context)
    {
        /* a context that could not be kept (or replayed) is not opened */
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_TOO_LARGE,
                                    "the context exceeds "
                                    "cast_max_context_size (%uz bytes)",
                                    ev->max_context);
    }

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_UPDATE) {
        rc = ngx_http_cast_state_update(state, ev, &effect, out);
        if (rc != NGX_OK) {
            return rc;
        }

        changed = NGX_OK;
    }

    if (effect.context == NGX_HTTP_CAST_CONTEXT_CLEAR) {
        if (json_object_del(state, "context") == 0) {
            changed = NGX_OK;
        }

    } else if (effect.context == NGX_HTTP_CAST_CONTEXT_SET) {
        if (json_object_set(state, "context", ev->context) != 0) {
            return NGX_ERROR;
        }

        changed = NGX_OK;
    }

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_NONE
        || effect.anchor == NGX_HTTP_CAST_ANCHOR_UPDATE)
    {
        return changed;
    }

    opens = json_object_get(state, "opens");

    if (!json_is_array(opens)) {
        if (effect.anchor == NGX_HTTP_CAST_ANCHOR_CLOSE) {
            return changed;
        }

        opens = json_array();
        if (opens == NULL || json_object_set_new(state, "opens", opens)) {
            return NGX_ERROR;
        }
    }

    /*
     * The anchor's earlier open goes, whether it is reopened or closed;
     * reopened, it keeps its content (reference 5.6).
     */

    earlier = NULL;

    for (i = json_array_size(opens); i--; /* void */) {
        open = json_array_get(opens, i);

        value = json_object_get(open, "id");

        if (ngx_http_cast_json_caseeq(json_object_get(open, "type"),
                                      &effect.type)
            && json_is_string(value)
            && json_string_length(value) == effect.id.len
            && ngx_strncmp(json_string_value(value), effect.id.data,
                           effect.id.len) == 0)
        {
            earlier = json_incref(open);

            if (json_array_remove(opens, i) != 0) {
                json_decref(earlier);
                return NGX_ERROR;
            }

            changed = NGX_OK;
            break;
        }
    }

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_OPEN) {
        rc = ngx_http_cast_state_open(opens, ev, &effect, earlier, out);
        json_decref(earlier);
        return rc;
    }

    /* closed: its content goes with it (reference 5.2.5) */

    json_decref(earlier);

    /* no open context left: no trace of them in the state */

    if (json_array_size(opens) == 0) {
        (void) json_object_del(state, "opens");
    }

    return changed;
}


void
ngx_http_cast_outcome_free(ngx_http_cast_outcome_t *out)
{
    if (out->alloc) {
        ngx_free(out->alloc);
        out->alloc = NULL;
    }
}


/*
 * An open context keeps the event's text as subscribers got it (not its
 * parsed tree, which costs many times more), and its lowercase name for
 * the replay's matching.  With content sharing, what subscribers get
 * carries the open's new context.versionId.  The oldest go while the
 * topic keeps more than NGX_HTTP_CAST_MAX_OPENS of them or more than
 * ev->max_context bytes.
 */

static ngx_int_t
ngx_http_cast_state_open(json_t *opens, ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect, json_t *earlier,
    ngx_http_cast_outcome_t *out)
{
    u_char   version[NGX_HTTP_CAST_UUID_LEN];
    u_char   bundle[NGX_HTTP_CAST_UUID_LEN];
    u_char  *at;
    size_t   i, size;
    json_t  *open, *value, *members;

    if (ngx_http_cast_new_uuid(version) != NGX_OK) {
        return NGX_ERROR;
    }

    at = NULL;

    if (ev->content_sharing) {
        members = json_pack("{s:s%}", NGX_HTTP_CAST_VERSION_KEY,
                            (char *) version, sizeof(version));
        if (members == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_cast_state_rewrite(ev, members, out) != NGX_OK) {
            json_decref(members);
            return NGX_ERROR;
        }

        json_decref(members);

        /* a fresh UUID: found where the hub wrote it, and only there */
        at = ngx_strlcasestrn(out->json.data,
                              out->json.data + out->json.len, version,
                              sizeof(version) - 1);
    }

    size = out->json.len + ngx_http_cast_opens_size(opens, NULL);

    if (earlier) {
        size += json_integer_value(json_object_get(earlier, "csize"));
    }

    while (json_array_size(opens)
           && (json_array_size(opens) >= NGX_HTTP_CAST_MAX_OPENS
               || (ev->max_context && size > ev->max_context)))
    {
        value = json_array_get(opens, 0);
        size -= json_string_length(json_object_get(value, "text"))
                + json_integer_value(json_object_get(value, "csize"));

        if (json_array_remove(opens, 0) != 0) {
            return NGX_ERROR;
        }
    }

    /* one current open: the last one opened */

    json_array_foreach(opens, i, value) {
        (void) json_object_del(value, "current");
    }

    open = json_pack("{s:s%,s:s%,s:s%,s:s%,s:s%,s:b}",
                     "type", (char *) effect->type.data, effect->type.len,
                     "id", (char *) effect->id.data, effect->id.len,
                     "version", (char *) version, sizeof(version),
                     "name", (char *) ev->lowercase.data, ev->lowercase.len,
                     "text", (char *) out->json.data, out->json.len,
                     "current", 1);
    if (open == NULL) {
        return NGX_ERROR;
    }

    if (json_array_append_new(opens, open) != 0) {
        return NGX_ERROR;
    }

    if (!ev->content_sharing) {
        return NGX_OK;
    }

    if (at
        && json_object_set_new(open, "vat",
                               json_integer(at - out->json.data)) != 0)
    {
        return NGX_ERROR;
    }

    /* reopened while open: the same content and Bundle */

    value = earlier ? json_object_get(earlier, "bundle") : NULL;

    if (json_is_string(value)) {
        if (json_object_set(open, "bundle", value) != 0) {
            return NGX_ERROR;
        }

        value = json_object_get(earlier, "content");

        if (value
            && (json_object_set(open, "content", value) != 0
                || json_object_set(open, "csize",
                                   json_object_get(earlier, "csize"))
                   != 0))
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_cast_new_uuid(bundle) != NGX_OK
        || json_object_set_new(open, "bundle",
                               json_stringn((char *) bundle, sizeof(bundle)))
           != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "<Type>-update" (reference 5.2, 5.3): against the anchor's current
 * context.versionId, its Bundle applied all or nothing; the anchor gets
 * a new version, and subscribers get the event with context.versionId
 * the new one and context.priorVersionId the one it was made against.
 * Nothing changes unless everything is accepted.
 */

static ngx_int_t
ngx_http_cast_state_update(json_t *state, ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect, ngx_http_cast_outcome_t *out)
{
    u_char      version[NGX_HTTP_CAST_UUID_LEN];
    u_char     *text;
    size_t      i, size, n, len;
    json_t     *event, *given, *opens, *open, *current, *updates, *entry;
    json_t     *content, *members, *value, *vat;
    ngx_int_t   rc;
    ngx_str_t   type, id, key;

    event = json_object_get(ev->root, "event");
    given = json_object_get(event, NGX_HTTP_CAST_VERSION_KEY);

    if (!json_is_string(given)) {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                    "event[\"" NGX_HTTP_CAST_VERSION_KEY
                                    "\"] must be a string: the version "
                                    "the update was made against");
    }

    ngx_http_cast_anchor_key(&effect->type, &key);

    if (ngx_http_cast_update_anchor(ev->context, &effect->type, &id)
        != NGX_OK)
    {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                    "the update names no %V: a context "
                                    "entry \"%V\" with a reference "
                                    "\"%V/<id>\" is required",
                                    &effect->type, &key, &effect->type);
    }

    /* the one "updates" Bundle, a transaction */

    updates = NULL;
    n = 0;

    json_array_foreach(ev->context, i, entry) {
        value = json_object_get(entry, "key");

        if (json_is_string(value)
            && ngx_strcmp(json_string_value(value), "updates") == 0)
        {
            updates = json_object_get(entry, "resource");
            n++;
        }
    }

    if (n != 1 || !json_is_object(updates)
        || !json_is_string(json_object_get(updates, "resourceType"))
        || ngx_strcmp(json_string_value(json_object_get(updates,
                                                        "resourceType")),
                      "Bundle") != 0)
    {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                    "the update must carry exactly one "
                                    "context entry \"updates\" with a "
                                    "Bundle resource");
    }

    value = json_object_get(updates, "type");

    if (!json_is_string(value)
        || ngx_strcmp(json_string_value(value), "transaction") != 0)
    {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                    "the \"updates\" Bundle must be of "
                                    "type \"transaction\"");
    }

    /* the anchor: open, and the current context */

    opens = json_object_get(state, "opens");
    open = NULL;
    current = NULL;

    json_array_foreach(opens, i, value) {
        if (json_is_true(json_object_get(value, "current"))) {
            current = value;
        }

        type.data = (u_char *) json_string_value(json_object_get(value, "id"));

        if (type.data == NULL
            || !ngx_http_cast_json_caseeq(json_object_get(value, "type"),
                                          &effect->type))
        {
            continue;
        }

        type.len = json_string_length(json_object_get(value, "id"));

        if (type.len == id.len && ngx_strncmp(type.data, id.data, id.len) == 0)
        {
            open = value;
        }
    }

    if (open == NULL) {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_CONFLICT,
                                    "%V/%V is not open on this topic",
                                    &effect->type, &id);
    }

    if (open != current) {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_CONFLICT,
                                    "%V/%V is not the current context "
                                    "(updates of other contexts are not "
                                    "supported)", &effect->type, &id);
    }

    value = json_object_get(open, "version");

    if (!json_is_string(value) || !json_equal(value, given)) {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_CONFLICT,
                                    "context.versionId \"%s\" is not the "
                                    "current version \"%s\" of %V/%V",
                                    json_string_value(given),
                                    json_is_string(value)
                                    ? json_string_value(value) : "",
                                    &effect->type, &id);
    }

    /* the Bundle applied to a copy of the content */

    value = json_object_get(open, "content");
    content = value ? json_copy(value) : json_object();
    if (content == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_cast_update_content(open, updates, content, out);
    if (rc != NGX_OK) {
        json_decref(content);
        return rc;
    }

    size = json_object_size(content)
           ? json_dumpb(content, NULL, 0, JSON_COMPACT) : 0;

    if (ev->max_context
        && ngx_http_cast_opens_size(opens, open)
           + json_string_length(json_object_get(open, "text")) + size
           > ev->max_context)
    {
        json_decref(content);
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_TOO_LARGE,
                                    "the topic's contexts and content "
                                    "would exceed cast_max_context_size "
                                    "(%uz bytes)", ev->max_context);
    }

    /* accepted: what subscribers get, then the new state */

    if (ngx_http_cast_new_uuid(version) != NGX_OK) {
        json_decref(content);
        return NGX_ERROR;
    }

    members = json_pack("{s:s%,s:O}",
                        NGX_HTTP_CAST_VERSION_KEY,
                        (char *) version, sizeof(version),
                        NGX_HTTP_CAST_PRIOR_KEY,
                        json_object_get(open, "version"));

    if (members == NULL
        || ngx_http_cast_state_rewrite(ev, members, out) != NGX_OK)
    {
        json_decref(members);
        json_decref(content);
        return NGX_ERROR;
    }

    json_decref(members);

    if (json_object_set_new(open, "version",
                            json_stringn((char *) version, sizeof(version)))
        != 0)
    {
        json_decref(content);
        return NGX_ERROR;
    }

    if (size == 0) {
        json_decref(content);
        (void) json_object_del(open, "content");
        (void) json_object_del(open, "csize");

    } else if (json_object_set_new(open, "content", content) != 0
               || json_object_set_new(open, "csize", json_integer(size))
                  != 0)
    {
        return NGX_ERROR;
    }

    /* the open, as a subscriber that binds now gets it: the new version */

    vat = json_object_get(open, "vat");
    value = json_object_get(open, "text");
    len = json_string_length(value);

    if (json_is_integer(vat) && json_integer_value(vat) >= 0
        && (size_t) json_integer_value(vat) + sizeof(version) <= len)
    {
        text = ngx_alloc(len, ngx_cycle->log);
        if (text == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(text, json_string_value(value), len);
        ngx_memcpy(text + json_integer_value(vat), version, sizeof(version));

        rc = json_object_set_new(open, "text",
                                 json_stringn((char *) text, len));
        ngx_free(text);

        if (rc != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the anchor's id in an update: a reference "Type/id" (or a resource) */

static ngx_int_t
ngx_http_cast_update_anchor(json_t *context, ngx_str_t *type, ngx_str_t *id)
{
    size_t      i;
    json_t     *entry, *value, *resource;
    ngx_str_t   key, s, t;

    ngx_http_cast_anchor_key(type, &key);

    json_array_foreach(context, i, entry) {
        value = json_object_get(entry, "key");

        if (!json_is_string(value)) {
            continue;
        }

        s.data = (u_char *) json_string_value(value);
        s.len = json_string_length(value);

        if (!ngx_http_cast_str_caseeq(&s, &key)) {
            continue;
        }

        value = json_object_get(json_object_get(entry, "reference"),
                                "reference");

        if (json_is_string(value)) {
            if (ngx_http_cast_ref_split(json_string_value(value),
                                        json_string_length(value), &t, id)
                != NGX_OK
                || !ngx_http_cast_str_caseeq(&t, type))
            {
                return NGX_DECLINED;
            }

            return NGX_OK;
        }

        resource = json_object_get(entry, "resource");
        value = json_object_get(resource, "id");

        if (ngx_http_cast_json_caseeq(json_object_get(resource,
                                                      "resourceType"), type)
            && json_is_string(value) && json_string_length(value))
        {
            id->data = (u_char *) json_string_value(value);
            id->len = json_string_length(value);
            return NGX_OK;
        }

        return NGX_DECLINED;
    }

    return NGX_DECLINED;
}


/*
 * The Bundle's entries into "content" (by "Type/id"): PUT adds or
 * replaces a resource, DELETE (of its "fullUrl") removes one.  Refused:
 * another method, a PUT without resourceType and id, a DELETE without a
 * fullUrl naming a resource of the content, a resource of the open
 * context deleted, a resource twice.
 */

static ngx_int_t
ngx_http_cast_update_content(json_t *open, json_t *bundle, json_t *content,
    ngx_http_cast_outcome_t *out)
{
    u_char      buf[512];
    size_t      i;
    json_t     *entries, *entry, *method, *resource, *value, *seen;
    ngx_int_t   rc;
    ngx_str_t   type, id, key, m;

    entries = json_object_get(bundle, "entry");

    if (entries == NULL) {
        return NGX_OK;
    }

    if (!json_is_array(entries)) {
        return ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                    "the \"updates\" Bundle's \"entry\" "
                                    "must be an array");
    }

    seen = json_object();
    if (seen == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    json_array_foreach(entries, i, entry) {

        method = json_object_get(json_object_get(entry, "request"),
                                 "method");

        if (!json_is_string(method)) {
            rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                      "entry %uz of the \"updates\" Bundle "
                                      "has no request.method", i);
            break;
        }

        m.data = (u_char *) json_string_value(method);
        m.len = json_string_length(method);

        if (m.len == 3 && ngx_strncmp(m.data, "PUT", 3) == 0) {
            resource = json_object_get(entry, "resource");
            value = json_object_get(resource, "id");

            if (!json_is_string(json_object_get(resource, "resourceType"))
                || !json_is_string(value) || json_string_length(value) == 0
                || json_string_length(json_object_get(resource,
                                                      "resourceType")) == 0)
            {
                rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                          "entry %uz of the \"updates\" "
                                          "Bundle: a PUT needs a resource "
                                          "with resourceType and id", i);
                break;
            }

            type.data = (u_char *) json_string_value(
                                   json_object_get(resource, "resourceType"));
            type.len = json_string_length(json_object_get(resource,
                                                          "resourceType"));
            id.data = (u_char *) json_string_value(value);
            id.len = json_string_length(value);

        } else if (m.len == 6 && ngx_strncmp(m.data, "DELETE", 6) == 0) {
            value = json_object_get(entry, "fullUrl");
            resource = NULL;

            if (!json_is_string(value)
                || ngx_http_cast_ref_split(json_string_value(value),
                                           json_string_length(value),
                                           &type, &id)
                   != NGX_OK)
            {
                rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                          "entry %uz of the \"updates\" "
                                          "Bundle: a DELETE needs a "
                                          "fullUrl \"<Type>/<id>\"", i);
                break;
            }

        } else {
            rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                      "entry %uz of the \"updates\" Bundle: "
                                      "request.method \"%V\" is not PUT or "
                                      "DELETE", i, &m);
            break;
        }

        if (type.len + id.len + 2 > sizeof(buf)) {
            rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                      "entry %uz of the \"updates\" Bundle: "
                                      "the resource type and id are too "
                                      "long", i);
            break;
        }

        key.data = buf;
        key.len = ngx_sprintf(buf, "%V/%V%Z", &type, &id) - buf - 1;

        if (json_object_get(seen, (char *) buf)) {
            rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                      "entry %uz of the \"updates\" Bundle: "
                                      "%V appears twice", i, &key);
            break;
        }

        if (json_object_set_new(seen, (char *) buf, json_true()) != 0) {
            rc = NGX_ERROR;
            break;
        }

        if (resource) {
            value = json_deep_copy(resource);

            if (value == NULL
                || json_object_set_new(content, (char *) buf, value) != 0)
            {
                rc = NGX_ERROR;
                break;
            }

            continue;
        }

        rc = ngx_http_cast_open_has(open, &key);

        if (rc == NGX_ERROR) {
            break;
        }

        if (rc == NGX_OK) {
            rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                      "entry %uz of the \"updates\" Bundle: "
                                      "%V is in the opened context and "
                                      "cannot be deleted", i, &key);
            break;
        }

        if (json_object_del(content, (char *) buf) != 0) {
            rc = ngx_http_cast_refuse(out, NGX_HTTP_CAST_INVALID,
                                      "entry %uz of the \"updates\" Bundle: "
                                      "%V is not in the shared content",
                                      i, &key);
            break;
        }

        rc = NGX_OK;
    }

    json_decref(seen);

    return rc;
}


/* NGX_OK: the open event's context has the resource "Type/id" */

static ngx_int_t
ngx_http_cast_open_has(json_t *open, ngx_str_t *key)
{
    size_t      i;
    json_t     *text, *root, *entry, *resource, *type, *id;
    ngx_int_t   rc;

    text = json_object_get(open, "text");
    if (!json_is_string(text)) {
        return NGX_DECLINED;
    }

    root = json_loadb(json_string_value(text), json_string_length(text), 0,
                      NULL);
    if (root == NULL) {
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;

    json_array_foreach(json_object_get(json_object_get(root, "event"),
                                       "context"), i, entry)
    {
        resource = json_object_get(entry, "resource");
        type = json_object_get(resource, "resourceType");
        id = json_object_get(resource, "id");

        if (json_is_string(type) && json_is_string(id)
            && json_string_length(type) + 1 + json_string_length(id)
               == key->len
            && ngx_strncmp(key->data, json_string_value(type),
                           json_string_length(type)) == 0
            && key->data[json_string_length(type)] == '/'
            && ngx_strncmp(key->data + json_string_length(type) + 1,
                           json_string_value(id), json_string_length(id))
               == 0)
        {
            rc = NGX_OK;
            break;
        }
    }

    json_decref(root);

    return rc;
}


/* "Type/id", or an absolute URL ending so ("http://x/fhir/Type/id") */

static ngx_int_t
ngx_http_cast_ref_split(const char *ref, size_t len, ngx_str_t *type,
    ngx_str_t *id)
{
    u_char  *p, *end, *slash;

    p = (u_char *) ref;
    end = p + len;

    slash = end;

    while (slash > p && *(slash - 1) != '/') {
        slash--;
    }

    if (slash == p || slash == end) {
        return NGX_DECLINED;
    }

    id->data = slash;
    id->len = end - slash;

    end = slash - 1;
    slash = end;

    while (slash > p && *(slash - 1) != '/') {
        slash--;
    }

    if (slash == end) {
        return NGX_DECLINED;
    }

    type->data = slash;
    type->len = end - slash;

    return NGX_OK;
}


/*
 * What subscribers get: the event's text with "members" (context.
 * versionId...) first in "event", any the publisher sent replaced; when
 * the text is not in the shape the splicer expects, the event serialized.
 */

static ngx_int_t
ngx_http_cast_state_rewrite(ngx_http_cast_event_t *ev, json_t *members,
    ngx_http_cast_outcome_t *out)
{
    u_char     *buf, *end;
    char       *text;
    size_t      len;
    json_t     *copy, *event;
    ngx_str_t   insert, drop[2];

    ngx_str_set(&drop[0], NGX_HTTP_CAST_VERSION_KEY);
    ngx_str_set(&drop[1], NGX_HTTP_CAST_PRIOR_KEY);

    /* {"k":v,...} without its braces */

    text = json_dumps(members, JSON_COMPACT);
    if (text == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(text);

    insert.data = (u_char *) text + 1;
    insert.len = len - 2;

    buf = ngx_alloc(ev->json.len + insert.len + 1, ngx_cycle->log);
    if (buf == NULL) {
        free(text);
        return NGX_ERROR;
    }

    end = ngx_http_cast_json_event_rewrite(&ev->json, drop, 2, &insert,
                                           buf);
    free(text);

    if (end) {
        ngx_http_cast_outcome_free(out);
        out->alloc = buf;
        out->json.data = buf;
        out->json.len = end - buf;
        return NGX_OK;
    }

    ngx_free(buf);

    copy = json_deep_copy(ev->root);
    event = json_object_get(copy, "event");

    if (event == NULL) {
        json_decref(copy);
        return NGX_ERROR;
    }

    (void) json_object_del(event, NGX_HTTP_CAST_VERSION_KEY);
    (void) json_object_del(event, NGX_HTTP_CAST_PRIOR_KEY);

    if (json_object_update(event, members) != 0) {
        json_decref(copy);
        return NGX_ERROR;
    }

    text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);

    if (text == NULL) {
        return NGX_ERROR;
    }

    ngx_http_cast_outcome_free(out);
    out->alloc = (u_char *) text;
    out->json.data = (u_char *) text;
    out->json.len = ngx_strlen(text);

    return NGX_OK;
}


/* the bytes the open contexts keep: their texts and content */

static size_t
ngx_http_cast_opens_size(json_t *opens, json_t *except)
{
    size_t   i, size;
    json_t  *open;

    size = 0;

    json_array_foreach(opens, i, open) {
        if (open == except) {
            continue;
        }

        size += json_string_length(json_object_get(open, "text"))
                + json_integer_value(json_object_get(open, "csize"));
    }

    return size;
}


static ngx_int_t
ngx_http_cast_refuse(ngx_http_cast_outcome_t *out, ngx_uint_t code,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    out->reason.len = ngx_vslprintf(out->buf, out->buf + sizeof(out->buf),
                                    fmt, args)
                      - out->buf;
    va_end(args);

    /* it may quote the publisher's text: not cut inside a character */
    out->reason.len = ngx_http_cast_utf8_trim(out->buf, out->reason.len);

    out->reason.data = out->buf;
    out->refused = code;

    return NGX_ABORT;
}


static void
ngx_http_cast_state_effect(ngx_http_cast_event_t *ev,
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
        effect->context = NGX_HTTP_CAST_CONTEXT_CLEAR;

    } else if (ngx_http_cast_json_nonempty(ev->context)) {
        effect->context = NGX_HTTP_CAST_CONTEXT_SET;
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

    } else if (len > sizeof("-update") - 1
               && ngx_strncmp(lowercase->data + len - 7, "-update", 7) == 0
               && ev->content_sharing
               && json_is_array(ev->context)
               && (ev->dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST
                   || json_object_get(json_object_get(ev->root, "event"),
                                      NGX_HTTP_CAST_VERSION_KEY)))
    {
        /*
         * content sharing: any "*-update" in fhircast; in cast only one
         * made against a version (Cast's own "annotation-update" and
         * the like are forwarded as they are)
         */
        effect->anchor = NGX_HTTP_CAST_ANCHOR_UPDATE;
        effect->type.data = ev->name.data;
        effect->type.len = len - 7;
        return;

    } else {
        return;
    }

    ngx_http_cast_anchor_id(ev->context, &effect->type, &effect->id);
}


/* the context key of an anchor type: "study", "report", else lowercase */

static void
ngx_http_cast_anchor_key(ngx_str_t *type, ngx_str_t *key)
{
    ngx_uint_t  i;

    static ngx_str_t  keys[][2] = {
        { ngx_string("imagingstudy"), ngx_string("study") },
        { ngx_string("diagnosticreport"), ngx_string("report") },
        { ngx_null_string, ngx_null_string }
    };

    *key = *type;

    for (i = 0; keys[i][0].len; i++) {
        if (ngx_http_cast_str_caseeq(&keys[i][0], type)) {
            *key = keys[i][1];
            return;
        }
    }
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

    id->len = 0;
    id->data = (u_char *) "";

    if (context == NULL || !json_is_array(context)) {
        return;
    }

    ngx_http_cast_anchor_key(type, &key);

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
ngx_http_cast_state_context(json_t *state, ngx_uint_t dialect)
{
    size_t   i;
    json_t  *obj, *opens, *open, *current, *event, *context, *text, *root;
    json_t  *bundle;

    if (dialect == NGX_HTTP_CAST_DIALECT_CAST) {
        context = json_object_get(state, "context");
        return context ? json_incref(context) : json_object();
    }

    current = NULL;
    opens = json_object_get(state, "opens");

    json_array_foreach(opens, i, open) {
        if (json_is_true(json_object_get(open, "current"))) {
            current = open;
        }
    }

    if (current == NULL) {
        return json_pack("{s:s,s:[]}", "context.type", "", "context");
    }

    /* the open event as it was published: its context */

    text = json_object_get(current, "text");
    root = json_is_string(text)
           ? json_loadb(json_string_value(text), json_string_length(text), 0,
                        NULL)
           : NULL;

    event = json_object_get(root, "event");
    context = json_object_get(event, "context");

    context = json_is_array(context) ? json_copy(context)
              : context ? json_incref(context) : json_array();

    obj = json_pack("{s:O,s:O,s:o}",
                    "context.type", json_object_get(current, "type"),
                    "context.versionId", json_object_get(current, "version"),
                    "context", context);
    json_decref(root);

    /* content sharing: the current content as one Bundle (reference 4.4) */

    if (obj && json_is_array(context)
        && json_is_string(json_object_get(current, "bundle")))
    {
        bundle = ngx_http_cast_state_bundle(current);

        if (bundle == NULL
            || json_array_append_new(context,
                                     json_pack("{s:s,s:o}",
                                               "key", "content",
                                               "resource", bundle))
               != 0)
        {
            json_decref(obj);
            return NULL;
        }
    }

    return obj;
}


/* {"resourceType":"Bundle","id","type":"collection","entry":[...]} */

static json_t *
ngx_http_cast_state_bundle(json_t *open)
{
    json_t      *bundle, *entries, *resource;
    const char  *key;

    bundle = json_pack("{s:s,s:O,s:s}",
                       "resourceType", "Bundle",
                       "id", json_object_get(open, "bundle"),
                       "type", "collection");
    if (bundle == NULL) {
        return NULL;
    }

    if (json_object_size(json_object_get(open, "content")) == 0) {
        return bundle;
    }

    entries = json_array();

    if (entries == NULL
        || json_object_set_new(bundle, "entry", entries) != 0)
    {
        json_decref(bundle);
        return NULL;
    }

    json_object_foreach(json_object_get(open, "content"), key, resource) {
        if (json_array_append_new(entries,
                                  json_pack("{s:O}", "resource", resource))
            != 0)
        {
            json_decref(bundle);
            return NULL;
        }
    }

    return bundle;
}


/*
 * What a socket that binds gets: of the open contexts, the latest per
 * anchor type, oldest first, if "wants" takes it.  With "derived" (an
 * array the caller owns), an open it does not take may stand for the
 * opens it implies (reference 3.3.3), as it did live.
 */

ngx_uint_t
ngx_http_cast_state_replay(json_t *state, ngx_http_cast_wants_pt wants,
    void *data, json_t *derived, ngx_http_cast_replay_t *replay,
    ngx_uint_t max)
{
    size_t                   i;
    json_t                  *opens, *open, *name, *text, *type;
    ngx_str_t                t, nm, tx, seen[NGX_HTTP_CAST_MAX_OPENS + 4];
    ngx_uint_t               k, j, n, nd, nseen;
    ngx_http_cast_replay_t   r, d[NGX_HTTP_CAST_DERIVABLE];

    opens = json_object_get(state, "opens");
    n = 0;
    nseen = 0;

    for (i = json_array_size(opens); i-- && n < max; /* void */) {
        open = json_array_get(opens, i);

        type = json_object_get(open, "type");
        name = json_object_get(open, "name");
        text = json_object_get(open, "text");

        if (!json_is_string(type) || !json_is_string(name)
            || !json_is_string(text) || nseen >= NGX_HTTP_CAST_MAX_OPENS)
        {
            continue;
        }

        t.data = (u_char *) json_string_value(type);
        t.len = json_string_length(type);

        if (ngx_http_cast_seen(seen, nseen, &t)) {
            continue;
        }

        seen[nseen++] = t;

        nm.data = (u_char *) json_string_value(name);
        nm.len = json_string_length(name);
        tx.data = (u_char *) json_string_value(text);
        tx.len = json_string_length(text);

        if (wants(data, &nm)) {
            replay[n].name = nm;
            replay[n].text = tx;
            n++;
            continue;
        }

        if (derived == NULL) {
            continue;
        }

        nd = ngx_http_cast_state_derive(&tx, wants, data, derived, d,
                                        NGX_HTTP_CAST_DERIVABLE);

        for (j = 0; j < nd && n < max; j++) {

            /* the type: the name without "-open" */
            t.data = d[j].name.data;
            t.len = d[j].name.len - 5;

            if (ngx_http_cast_seen(seen, nseen, &t)) {
                continue;
            }

            seen[nseen++] = t;
            replay[n++] = d[j];
        }
    }

    /* newest first so far */

    for (k = 0; k < n / 2; k++) {
        r = replay[k];
        replay[k] = replay[n - 1 - k];
        replay[n - 1 - k] = r;
    }

    return n;
}


static ngx_uint_t
ngx_http_cast_seen(ngx_str_t *seen, ngx_uint_t n, ngx_str_t *type)
{
    ngx_uint_t  k;

    for (k = 0; k < n; k++) {
        if (ngx_http_cast_str_caseeq(&seen[k], type)) {
            return 1;
        }
    }

    return 0;
}


/*
 * Derived open events (reference 3.3.3): an "<X>-open" whose context
 * holds a Patient, an Encounter or an ImagingStudy (other than X) stands
 * for "Patient-open", "Encounter-open", "ImagingStudy-open" too, for
 * subscriptions that listed those and not X's.  Each gets a new id and
 * the original timestamp; its context is that resource's entry, and the
 * patient's (the events' required keys).  Only those "wants" takes; their
 * texts are kept in "derived" (JSON strings), out[] points into them.
 */

static ngx_http_cast_derivable_t  ngx_http_cast_derivable[] = {
    { ngx_string("Patient"), ngx_string("patient-open"), "Patient-open" },
    { ngx_string("Encounter"), ngx_string("encounter-open"),
      "Encounter-open" },
    { ngx_string("ImagingStudy"), ngx_string("imagingstudy-open"),
      "ImagingStudy-open" }
};


ngx_uint_t
ngx_http_cast_state_derive(ngx_str_t *json, ngx_http_cast_wants_pt wants,
    void *data, json_t *derived, ngx_http_cast_replay_t *out,
    ngx_uint_t max)
{
    u_char                      id[NGX_HTTP_CAST_UUID_LEN];
    char                       *text;
    size_t                      i;
    json_t                     *root, *event, *context, *entry, *type;
    json_t                     *found[NGX_HTTP_CAST_DERIVABLE], *patient;
    json_t                     *ctx, *ev, *value;
    ngx_str_t                   name, source;
    ngx_uint_t                  k, n, want;
    ngx_http_cast_derivable_t  *dv;

    /* an "*-open" (not Home-open) of another type, wanted by someone */

    want = 0;

    for (k = 0; k < NGX_HTTP_CAST_DERIVABLE; k++) {
        want |= wants(data, &ngx_http_cast_derivable[k].name) ? 1 << k : 0;
    }

    if (want == 0) {
        return 0;
    }

    root = json_loadb((char *) json->data, json->len, 0, NULL);
    event = json_object_get(root, "event");
    value = json_object_get(event, "hub.event");
    context = json_object_get(event, "context");

    if (!json_is_string(value) || !json_is_array(context)
        || json_string_length(value) <= 5
        || ngx_strncasecmp((u_char *) json_string_value(value)
                           + json_string_length(value) - 5,
                           (u_char *) "-open", 5) != 0)
    {
        json_decref(root);
        return 0;
    }

    source.data = (u_char *) json_string_value(value);
    source.len = json_string_length(value) - 5;

    ngx_memzero(found, sizeof(found));
    patient = NULL;

    json_array_foreach(context, i, entry) {
        type = json_object_get(json_object_get(entry, "resource"),
                               "resourceType");

        for (k = 0; k < NGX_HTTP_CAST_DERIVABLE; k++) {
            dv = &ngx_http_cast_derivable[k];

            if (found[k] == NULL
                && ngx_http_cast_json_caseeq(type, &dv->type))
            {
                found[k] = entry;
            }
        }
    }

    patient = found[0];
    n = 0;

    for (k = 0; k < NGX_HTTP_CAST_DERIVABLE && n < max; k++) {
        dv = &ngx_http_cast_derivable[k];

        if (!(want & (1 << k)) || found[k] == NULL
            || ngx_http_cast_str_caseeq(&source, &dv->type)
            || ngx_http_cast_new_uuid(id) != NGX_OK)
        {
            continue;
        }

        ctx = json_pack("[O]", found[k]);

        if (ctx && k != 0 && patient
            && json_array_append(ctx, patient) != 0)
        {
            json_decref(ctx);
            ctx = NULL;
        }

        ev = ctx ? json_pack("{s:O?,s:s%,s:{s:O?,s:s,s:o}}",
                             "timestamp", json_object_get(root, "timestamp"),
                             "id", (char *) id, sizeof(id),
                             "event",
                             "hub.topic", json_object_get(event, "hub.topic"),
                             "hub.event", dv->event,
                             "context", ctx)
                 : NULL;

        text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);

        if (text == NULL) {
            continue;
        }

        value = json_string(text);
        free(text);

        if (value == NULL || json_array_append_new(derived, value) != 0) {
            continue;
        }

        name = dv->name;

        out[n].name = name;
        out[n].text.data = (u_char *) json_string_value(value);
        out[n].text.len = json_string_length(value);
        n++;
    }

    json_decref(root);

    return n;
}


static ngx_int_t
ngx_http_cast_json_caseeq(json_t *value, ngx_str_t *s)
{
    ngx_str_t  v;

    if (!json_is_string(value)) {
        return 0;
    }

    v.data = (u_char *) json_string_value(value);
    v.len = json_string_length(value);

    return ngx_http_cast_str_caseeq(&v, s);
}


static ngx_int_t
ngx_http_cast_str_caseeq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_strncasecmp(a->data, b->data, a->len) == 0;
}
