
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


#define NGX_HTTP_CAST_CONTEXT_KEEP      0
#define NGX_HTTP_CAST_CONTEXT_SET       1
#define NGX_HTTP_CAST_CONTEXT_CLEAR     2

#define NGX_HTTP_CAST_ANCHOR_NONE       0
#define NGX_HTTP_CAST_ANCHOR_OPEN       1
#define NGX_HTTP_CAST_ANCHOR_CLOSE      2


/* what an event does to its topic's state */

typedef struct {
    ngx_uint_t                 context;
    ngx_uint_t                 anchor;
    ngx_str_t                  type;        /* "ImagingStudy" */
    ngx_str_t                  id;          /* anchor resource id or "" */
} ngx_http_cast_effect_t;


static void ngx_http_cast_state_effect(ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect);
static void ngx_http_cast_anchor_id(json_t *context, ngx_str_t *type,
    ngx_str_t *id);
static ngx_int_t ngx_http_cast_state_open(json_t *opens,
    ngx_http_cast_event_t *ev, ngx_http_cast_effect_t *effect);
static ngx_int_t ngx_http_cast_json_caseeq(json_t *value, ngx_str_t *s);
static ngx_int_t ngx_http_cast_str_caseeq(ngx_str_t *a, ngx_str_t *b);


ngx_int_t
ngx_http_cast_state_apply(json_t *state, ngx_http_cast_event_t *ev)
{
    size_t                   i;
    json_t                  *opens, *open, *value;
    ngx_int_t                changed;
    ngx_http_cast_effect_t   effect;

    ngx_http_cast_state_effect(ev, &effect);

    changed = NGX_DECLINED;

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

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_NONE) {
        return changed;
    }

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_OPEN && ev->max_context
        && ev->json.len > ev->max_context)
    {
        /* a context that could not be kept (or replayed) is not opened */
        return NGX_ABORT;
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

    /* the anchor's earlier open goes, whether it is reopened or closed */

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
            if (json_array_remove(opens, i) != 0) {
                return NGX_ERROR;
            }

            changed = NGX_OK;
            break;
        }
    }

    if (effect.anchor == NGX_HTTP_CAST_ANCHOR_OPEN) {
        return ngx_http_cast_state_open(opens, ev, &effect);
    }

    /* no open context left: no trace of them in the state */

    if (json_array_size(opens) == 0) {
        (void) json_object_del(state, "opens");
    }

    return changed;
}


/*
 * An open context keeps the event's text as subscribers got it (not its
 * parsed tree, which costs many times more), and its lowercase name for
 * the replay's matching.  The oldest go while the topic keeps more than
 * NGX_HTTP_CAST_MAX_OPENS of them or more than ev->max_context bytes.
 */

static ngx_int_t
ngx_http_cast_state_open(json_t *opens, ngx_http_cast_event_t *ev,
    ngx_http_cast_effect_t *effect)
{
    u_char   version[NGX_HTTP_CAST_UUID_LEN];
    size_t   i, size;
    json_t  *open, *value;

    if (ngx_http_cast_new_uuid(version) != NGX_OK) {
        return NGX_ERROR;
    }

    size = ev->json.len;

    json_array_foreach(opens, i, value) {
        size += json_string_length(json_object_get(value, "text"));
    }

    while (json_array_size(opens)
           && (json_array_size(opens) >= NGX_HTTP_CAST_MAX_OPENS
               || (ev->max_context && size > ev->max_context)))
    {
        size -= json_string_length(json_object_get(json_array_get(opens, 0),
                                                   "text"));

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
                     "text", (char *) ev->json.data, ev->json.len,
                     "current", 1);
    if (open == NULL) {
        return NGX_ERROR;
    }

    if (json_array_append_new(opens, open) != 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
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

    } else {
        return;
    }

    ngx_http_cast_anchor_id(ev->context, &effect->type, &effect->id);
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
ngx_http_cast_state_context(json_t *state, ngx_uint_t dialect)
{
    size_t   i;
    json_t  *obj, *opens, *open, *current, *event, *context, *text, *root;

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

    obj = json_pack("{s:O,s:O,s:o}",
                    "context.type", json_object_get(current, "type"),
                    "context.versionId", json_object_get(current, "version"),
                    "context", context ? json_incref(context)
                                       : json_array());
    json_decref(root);

    return obj;
}


/*
 * What a socket that binds gets: of the open contexts, the latest per
 * anchor type, oldest first.
 */

ngx_uint_t
ngx_http_cast_state_replay(json_t *state, ngx_http_cast_replay_t *replay,
    ngx_uint_t max)
{
    size_t                   i;
    json_t                  *opens, *open, *name, *text, *type;
    ngx_str_t                t, seen[NGX_HTTP_CAST_MAX_OPENS];
    ngx_uint_t               k, n, nseen;
    ngx_http_cast_replay_t   r;

    opens = json_object_get(state, "opens");
    n = 0;
    nseen = 0;

    for (i = json_array_size(opens); i-- && n < max; /* void */) {
        open = json_array_get(opens, i);

        type = json_object_get(open, "type");
        name = json_object_get(open, "name");
        text = json_object_get(open, "text");

        if (!json_is_string(type) || !json_is_string(name)
            || !json_is_string(text) || nseen == NGX_HTTP_CAST_MAX_OPENS)
        {
            continue;
        }

        t.data = (u_char *) json_string_value(type);
        t.len = json_string_length(type);

        for (k = 0; k < nseen; k++) {
            if (ngx_http_cast_str_caseeq(&seen[k], &t)) {
                break;
            }
        }

        if (k < nseen) {
            continue;
        }

        seen[nseen++] = t;

        replay[n].name.data = (u_char *) json_string_value(name);
        replay[n].name.len = json_string_length(name);
        replay[n].text.data = (u_char *) json_string_value(text);
        replay[n].text.len = json_string_length(text);
        n++;
    }

    /* newest first so far */

    for (k = 0; k < n / 2; k++) {
        r = replay[k];
        replay[k] = replay[n - 1 - k];
        replay[n - 1 - k] = r;
    }

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
