
/*
 * Unit tests for the topic state function (src/ngx_http_cast_state.c):
 * content sharing's versions and content, its refusals (the state is left
 * as it was), the bytes subscribers get, GET's shape, the replay and the
 * derived opens.  Events are made by the event validator (json.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_state.h"
#include "ngx_test_core.h"
#include "ngx_test_tap.h"


#define NGX_TEST_FHIRCAST  NGX_HTTP_CAST_DIALECT_FHIRCAST


typedef struct {
    ngx_pool_t                *pool;
    json_t                    *root;
    ngx_http_cast_event_t      ev;
} ngx_test_ev_t;


static ngx_test_ev_t *
ngx_test_ev(const char *body, ngx_uint_t sharing, size_t max)
{
    ngx_str_t       raw, err;
    ngx_test_ev_t  *t;

    t = calloc(1, sizeof(ngx_test_ev_t));
    t->pool = ngx_create_pool(1024, NULL);

    raw.len = strlen(body);
    raw.data = ngx_pnalloc(t->pool, raw.len);
    memcpy(raw.data, body, raw.len);

    if (ngx_http_cast_json_parse(t->pool, raw.data, raw.len, &t->root, &err)
        != NGX_OK
        || ngx_http_cast_event_validate(t->pool, t->root, &raw, NULL,
                                        NGX_TEST_FHIRCAST, &t->ev, &err)
           != NGX_OK)
    {
        printf("# bad test event: %.*s\n", (int) err.len, err.data);
        exit(2);
    }

    t->ev.content_sharing = sharing;
    t->ev.max_context = max;

    return t;
}


static void
ngx_test_ev_free(ngx_test_ev_t *t)
{
    json_decref(t->root);
    ngx_destroy_pool(t->pool);
    free(t);
}


/* apply(): its rc, and the outcome's bytes parsed */

static ngx_int_t
ngx_test_apply(json_t *state, const char *body, ngx_uint_t sharing,
    size_t max, ngx_http_cast_outcome_t *out, json_t **sent)
{
    ngx_int_t       rc;
    ngx_test_ev_t  *t;

    t = ngx_test_ev(body, sharing, max);

    rc = ngx_http_cast_state_apply(state, &t->ev, out);

    if (sent) {
        *sent = json_loadb((char *) out->json.data, out->json.len,
                           JSON_REJECT_DUPLICATES, NULL);
    }

    if (rc != NGX_ABORT && out->alloc == NULL) {
        ngx_test_ok(out->json.data == t->ev.json.data,
                    "unchanged: the event's own bytes");
    }

    ngx_test_ev_free(t);

    return rc;
}


static const char *
ngx_test_version(json_t *sent, const char *key)
{
    return json_string_value(json_object_get(json_object_get(sent, "event"),
                                             key));
}


#define DR_OPEN(r)                                                           \
    "{\"id\":\"o-" r "\",\"timestamp\":\"t\",\"event\":{\"hub.topic\":\"T\"," \
    "\"hub.event\":\"DiagnosticReport-open\",\"context\":["                  \
    "{\"key\":\"report\",\"resource\":{\"resourceType\":\"DiagnosticReport\"," \
    "\"id\":\"" r "\"}},{\"key\":\"patient\",\"resource\":{\"resourceType\":" \
    "\"Patient\",\"id\":\"p1\"}}]}}"

#define DR_CLOSE(r)                                                          \
    "{\"id\":\"c-" r "\",\"timestamp\":\"t\",\"event\":{\"hub.topic\":\"T\"," \
    "\"hub.event\":\"DiagnosticReport-close\",\"context\":["                 \
    "{\"key\":\"report\",\"resource\":{\"resourceType\":\"DiagnosticReport\"," \
    "\"id\":\"" r "\"}}]}}"


static char *
ngx_test_update(const char *r, const char *version, const char *entries)
{
    static char  buf[4096];

    snprintf(buf, sizeof(buf),
             "{\"id\":\"u\",\"timestamp\":\"t\",\"event\":{\"hub.topic\":"
             "\"T\",\"hub.event\":\"DiagnosticReport-update\","
             "\"context.versionId\":\"%s\",\"context\":[{\"key\":\"report\","
             "\"reference\":{\"reference\":\"DiagnosticReport/%s\"}},"
             "{\"key\":\"updates\",\"resource\":{\"resourceType\":\"Bundle\","
             "\"id\":\"b1\",\"type\":\"transaction\",\"entry\":[%s]}}]}}",
             version, r, entries);

    return buf;
}


#define PUT(id)                                                              \
    "{\"request\":{\"method\":\"PUT\"},\"resource\":{\"resourceType\":"      \
    "\"Observation\",\"id\":\"" id "\"}}"
#define DEL(url)                                                             \
    "{\"fullUrl\":\"" url "\",\"request\":{\"method\":\"DELETE\"}}"


static void
ngx_test_content(void)
{
    char                     v0[64], v1[64];
    json_t                  *state, *sent, *before, *get, *bundle;
    ngx_int_t                rc;
    ngx_http_cast_outcome_t  out;

    ngx_memzero(&out, sizeof(out));
    state = json_object();

    rc = ngx_test_apply(state, DR_OPEN("r1"), 1, 0, &out, &sent);
    ngx_test_ok(rc == NGX_OK, "open: changed");
    ngx_test_ok(out.alloc != NULL, "open: new bytes");
    ngx_test_ok(ngx_test_version(sent, "context.versionId") != NULL
                && strlen(ngx_test_version(sent, "context.versionId")) == 36,
                "open: a UUID context.versionId");
    snprintf(v0, sizeof(v0), "%s", ngx_test_version(sent, "context.versionId"));
    json_decref(sent);

    /* stale, invalid, too large: refused, the state as it was */

    before = json_deep_copy(state);

    rc = ngx_test_apply(state, ngx_test_update("r1", "old", PUT("o1")), 1, 0,
                        &out, NULL);
    ngx_test_ok(rc == NGX_ABORT && out.refused == NGX_HTTP_CAST_CONFLICT,
                "update against another version: conflict");
    ngx_test_ok(json_equal(state, before), "... the state unchanged");

    rc = ngx_test_apply(state, ngx_test_update("r1", v0,
                                               PUT("o1") "," DEL("Patient/p1")),
                        1, 0, &out, NULL);
    ngx_test_ok(rc == NGX_ABORT && out.refused == NGX_HTTP_CAST_INVALID,
                "a DELETE of the opened patient: invalid");
    {
        ngx_str_t  want;

        want = out.reason;
        want.len = ngx_min(want.len, sizeof("entry 1 of the") - 1);
        ngx_test_str(&want, "entry 1 of the", "... saying why");
    }
    ngx_test_ok(json_equal(state, before), "... the state unchanged");

    rc = ngx_test_apply(state, ngx_test_update("r2", v0, PUT("o1")), 1, 0,
                        &out, NULL);
    ngx_test_ok(rc == NGX_ABORT && out.refused == NGX_HTTP_CAST_CONFLICT,
                "an update of a report not open: conflict");

    rc = ngx_test_apply(state, ngx_test_update("r1", v0, PUT("o1")), 1, 300,
                        &out, NULL);
    ngx_test_ok(rc == NGX_ABORT && out.refused == NGX_HTTP_CAST_TOO_LARGE,
                "past max_context: too large");
    ngx_test_ok(json_equal(state, before), "... the state unchanged");
    json_decref(before);

    /* accepted */

    rc = ngx_test_apply(state,
                        ngx_test_update("r1", v0, PUT("o1") "," PUT("o2")),
                        1, 0, &out, &sent);
    ngx_test_ok(rc == NGX_OK, "update against the current version: changed");
    ngx_test_ok(ngx_strcmp(ngx_test_version(sent, "context.priorVersionId"), v0)
                == 0, "... priorVersionId: the version before");
    snprintf(v1, sizeof(v1), "%s", ngx_test_version(sent, "context.versionId"));
    ngx_test_ok(strlen(v1) == 36 && strcmp(v1, v0) != 0,
                "... a new context.versionId");
    json_decref(sent);

    /* the stored open carries the new version, for the replay */

    ngx_test_ok(strstr(json_string_value(json_object_get(json_array_get(
                    json_object_get(state, "opens"), 0), "text")), v1)
                != NULL, "the stored open text has the new version");

    get = ngx_http_cast_state_context(state, NGX_TEST_FHIRCAST);
    ngx_test_ok(ngx_strcmp(json_string_value(json_object_get(get,
                                             "context.versionId")), v1) == 0,
                "GET: the new version");
    bundle = json_object_get(json_array_get(json_object_get(get, "context"),
                                            2), "resource");
    ngx_test_ok(json_array_size(json_object_get(bundle, "entry")) == 2,
                "GET: two resources in the content Bundle");
    ngx_test_ok(ngx_strcmp(json_string_value(json_object_get(bundle, "type")),
                           "collection") == 0, "GET: a collection");
    json_decref(get);

    rc = ngx_test_apply(state, ngx_test_update("r1", v1, DEL("Observation/o1")),
                        1, 0, &out, NULL);
    ngx_test_ok(rc == NGX_OK, "a DELETE of the content: changed");

    rc = ngx_test_apply(state, DR_CLOSE("r1"), 1, 0, &out, NULL);
    ngx_test_ok(rc == NGX_OK && json_object_get(state, "opens") == NULL,
                "close: no open left, its content gone");

    ngx_http_cast_outcome_free(&out);
    json_decref(state);
}


static void
ngx_test_sharing_off(void)
{
    json_t                  *state, *open;
    ngx_int_t                rc;
    ngx_http_cast_outcome_t  out;

    ngx_memzero(&out, sizeof(out));
    state = json_object();

    rc = ngx_test_apply(state, DR_OPEN("r1"), 0, 0, &out, NULL);
    ngx_test_ok(rc == NGX_OK && out.alloc == NULL,
                "sharing off: an open keeps its bytes");

    open = json_array_get(json_object_get(state, "opens"), 0);
    ngx_test_ok(json_object_get(open, "bundle") == NULL
                && json_object_get(open, "vat") == NULL,
                "sharing off: no Bundle, no version in the text");

    rc = ngx_test_apply(state, ngx_test_update("r1", "x", PUT("o1")), 0, 0,
                        &out, NULL);
    ngx_test_ok(rc != NGX_ABORT, "sharing off: an update is any event");

    ngx_http_cast_outcome_free(&out);
    json_decref(state);
}


static ngx_int_t
ngx_test_wants_patient(void *data, ngx_str_t *name)
{
    return name->len == 12 && ngx_strncmp(name->data, "patient-open", 12) == 0;
}


static void
ngx_test_derived(void)
{
    json_t                  *state, *derived, *e;
    ngx_str_t                text;
    ngx_uint_t               n;
    ngx_http_cast_outcome_t  out;
    ngx_http_cast_replay_t   d[NGX_HTTP_CAST_DERIVABLE], r[8];

    ngx_str_set(&text, DR_OPEN("r1"));

    derived = json_array();
    n = ngx_http_cast_state_derive(&text, ngx_test_wants_patient, NULL,
                                   derived, d, NGX_HTTP_CAST_DERIVABLE);
    ngx_test_ok(n == 1, "derive: one open implied and wanted");

    e = n ? json_loadb((char *) d[0].text.data, d[0].text.len, 0, NULL)
          : NULL;
    ngx_test_ok(e && ngx_strcmp(json_string_value(json_object_get(
                    json_object_get(e, "event"), "hub.event")),
                                "Patient-open") == 0,
                "derive: a Patient-open");
    ngx_test_ok(json_array_size(json_object_get(json_object_get(e, "event"),
                                                "context")) == 1,
                "derive: its context: the patient");
    ngx_test_ok(ngx_strcmp(json_string_value(json_object_get(e, "timestamp")),
                           "t") == 0, "derive: the original timestamp");
    json_decref(e);
    json_decref(derived);

    /* the replay: derived, then a newer explicit Patient-open wins */

    ngx_memzero(&out, sizeof(out));
    state = json_object();
    (void) ngx_test_apply(state, DR_OPEN("r1"), 1, 0, &out, NULL);

    derived = json_array();
    n = ngx_http_cast_state_replay(state, ngx_test_wants_patient, NULL,
                                   derived, r, 8);
    ngx_test_ok(n == 1 && r[0].name.len == 12,
                "replay: the derived Patient-open");
    json_decref(derived);

    n = ngx_http_cast_state_replay(state, ngx_test_wants_patient, NULL, NULL,
                                   r, 8);
    ngx_test_ok(n == 0, "replay without derived opens: nothing");

    ngx_http_cast_outcome_free(&out);
    json_decref(state);
}


int
main(void)
{
    ngx_test_core_init();

    ngx_test_content();
    ngx_test_sharing_off();
    ngx_test_derived();

    return ngx_test_done();
}
