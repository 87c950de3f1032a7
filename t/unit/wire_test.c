
/*
 * Unit tests for what travels through Redis (src/ngx_http_cast_wire.c):
 * stream ids, "<stream id> <text>", events "<n>:<name><json>", control
 * messages "end <id> <reason>" / "renew <id> <expires> <lease> <events>",
 * and the event formatter, with a round trip format -> split -> event.
 *
 * Every input is copied into a heap block of exactly its length, so that
 * `make -C t/unit asan` sees a read past its end.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_wire.h"
#include "ngx_test_core.h"
#include "ngx_test_tap.h"


#define NGX_TEST_OK     1
#define NGX_TEST_FAIL   0


typedef struct {
    const char  *name;
    const char  *text;
    size_t       len;           /* 0: strlen(text) */
    ngx_uint_t   ok;
    uint64_t     a;             /* stream id: ms; event: name length */
    uint64_t     b;             /* stream id: seq */
} ngx_test_vec_t;


/* the input in a heap block of its own length */

static u_char *
ngx_test_copy(const char *text, size_t len)
{
    u_char  *p;

    p = malloc(len ? len : 1);
    if (p == NULL) {
        abort();
    }

    ngx_memcpy(p, text, len);

    return p;
}


static size_t
ngx_test_len(ngx_test_vec_t *v)
{
    return v->len ? v->len : strlen(v->text);
}


/* s lies within [p, p + len] */

static ngx_uint_t
ngx_test_inside(ngx_str_t *s, u_char *p, size_t len)
{
    return s->data >= p && s->data <= p + len
           && s->len <= (size_t) (p + len - s->data);
}


static void
ngx_test_stream_ids(void)
{
    u_char      *p;
    uint64_t     ms, seq;
    ngx_int_t    rc;
    ngx_uint_t   i;

    static ngx_test_vec_t  v[] = {
        { "0-0", "0-0", 0, NGX_TEST_OK, 0, 0 },
        { "a Redis id", "1700000000000-5", 0, NGX_TEST_OK,
          1700000000000ULL, 5 },
        { "19 digits each (the most taken)",
          "9999999999999999999-9999999999999999999", 0, NGX_TEST_OK,
          9999999999999999999ULL, 9999999999999999999ULL },
        { "leading zeros", "007-010", 0, NGX_TEST_OK, 7, 10 },
        { "20-digit ms (UINT64_MAX)", "18446744073709551615-0", 0,
          NGX_TEST_FAIL, 0, 0 },
        { "20-digit seq", "1-10000000000000000000", 0, NGX_TEST_FAIL, 0, 0 },
        { "20 digits with leading zeros", "00000000000000000001-1", 0,
          NGX_TEST_FAIL, 0, 0 },
        { "empty", "", 0, NGX_TEST_FAIL, 0, 0 },
        { "no dash", "1700000000000", 0, NGX_TEST_FAIL, 0, 0 },
        { "a dash only", "-", 0, NGX_TEST_FAIL, 0, 0 },
        { "no ms", "-5", 0, NGX_TEST_FAIL, 0, 0 },
        { "no seq", "5-", 0, NGX_TEST_FAIL, 0, 0 },
        { "two dashes", "1-2-3", 0, NGX_TEST_FAIL, 0, 0 },
        { "double dash", "1--2", 0, NGX_TEST_FAIL, 0, 0 },
        { "sign", "+1-2", 0, NGX_TEST_FAIL, 0, 0 },
        { "leading space", " 1-2", 0, NGX_TEST_FAIL, 0, 0 },
        { "trailing space", "1-2 ", 0, NGX_TEST_FAIL, 0, 0 },
        { "letter in ms", "1a-2", 0, NGX_TEST_FAIL, 0, 0 },
        { "hex seq", "1-0x2", 0, NGX_TEST_FAIL, 0, 0 },
        { "NUL in ms", "1\0-2", 3, NGX_TEST_FAIL, 0, 0 },
        { "NUL after seq", "1-2\0", 4, NGX_TEST_FAIL, 0, 0 },
        { "byte 0xff", "1-\xff", 0, NGX_TEST_FAIL, 0, 0 },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        p = ngx_test_copy(v[i].text, ngx_test_len(&v[i]));
        ms = 12345;
        seq = 12345;

        rc = ngx_http_cast_wire_stream_id(p, ngx_test_len(&v[i]), &ms, &seq);

        if (v[i].ok) {
            ngx_test_ok(rc == NGX_OK && ms == v[i].a && seq == v[i].b,
                        "stream id: %s (rc %ld, %llu-%llu)", v[i].name,
                        (long) rc, (unsigned long long) ms,
                        (unsigned long long) seq);

        } else {
            ngx_test_ok(rc == NGX_ERROR, "stream id: %s refused", v[i].name);
        }

        free(p);
    }

    /* the length is obeyed: what follows it is not read */

    p = ngx_test_copy("12-3", 4);
    ngx_test_ok(ngx_http_cast_wire_stream_id(p, 3, &ms, &seq) == NGX_ERROR,
                "stream id: \"12-\" of \"12-3\" refused (length obeyed)");
    ngx_test_ok(ngx_http_cast_wire_stream_id(p, 2, &ms, &seq) == NGX_ERROR,
                "stream id: \"12\" of \"12-3\" refused (no dash within)");
    ngx_test_ok(ngx_http_cast_wire_stream_id(p, 0, &ms, &seq) == NGX_ERROR,
                "stream id: length 0 refused");
    free(p);

    p = ngx_test_copy("1-23", 4);
    ngx_test_ok(ngx_http_cast_wire_stream_id(p, 3, &ms, &seq) == NGX_OK
                && ms == 1 && seq == 2,
                "stream id: \"1-2\" of \"1-23\" is 1-2");
    free(p);
}


static void
ngx_test_splits(void)
{
    u_char                *p;
    size_t                 len;
    ngx_int_t              rc;
    ngx_http_cast_wire_t   w;

    static struct {
        const char  *name;
        const char  *in;
        ngx_uint_t   ok;
        uint64_t     ms;
        uint64_t     seq;
        const char  *text;
    } v[] = {
        { "id and text", "1700000000000-0 5:hello{}", 1, 1700000000000ULL, 0,
          "5:hello{}" },
        { "empty text", "1-2 ", 1, 1, 2, "" },
        { "the text keeps its spaces", "1-2  a b ", 1, 1, 2, " a b " },
        { "a control text", "3-4 end abc lease expired", 1, 3, 4,
          "end abc lease expired" },
        { "text with a newline", "3-4 a\nb", 1, 3, 4, "a\nb" },
        { "empty", "", 0, 0, 0, NULL },
        { "no space", "1-2", 0, 0, 0, NULL },
        { "no space, a newline", "1-2\nx", 0, 0, 0, NULL },
        { "no id", " 5:hello{}", 0, 0, 0, NULL },
        { "a space only", " ", 0, 0, 0, NULL },
        { "no dash in the id", "12 5:hello{}", 0, 0, 0, NULL },
        { "the id ends at the first space", "1 2-3 x", 0, 0, 0, NULL },
        { "a tab is no separator", "1-2\tx", 0, 0, 0, NULL },
        { "20-digit ms", "18446744073709551615-0 x", 0, 0, 0, NULL },
    };

    ngx_uint_t  i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        len = strlen(v[i].in);
        p = ngx_test_copy(v[i].in, len);
        ngx_memzero(&w, sizeof(ngx_http_cast_wire_t));

        rc = ngx_http_cast_wire_split(p, len, &w);

        if (!v[i].ok) {
            ngx_test_ok(rc == NGX_ERROR, "split: %s refused", v[i].name);
            free(p);
            continue;
        }

        ngx_test_ok(rc == NGX_OK && w.ms == v[i].ms && w.seq == v[i].seq,
                    "split: %s: rc and id", v[i].name);

        if (rc == NGX_OK) {
            ngx_test_str(&w.text, v[i].text, v[i].name);
            ngx_test_ok(ngx_test_inside(&w.text, p, len)
                        && w.text.data + w.text.len == p + len,
                        "split: %s: the text is the input's tail",
                        v[i].name);
        }

        free(p);
    }

    /* a space past the length does not count */

    p = ngx_test_copy("1-2 x", 5);
    ngx_test_ok(ngx_http_cast_wire_split(p, 3, &w) == NGX_ERROR,
                "split: \"1-2\" of \"1-2 x\" refused (length obeyed)");
    ngx_test_ok(ngx_http_cast_wire_split(p, 4, &w) == NGX_OK
                && w.text.len == 0 && w.text.data == p + 4,
                "split: \"1-2 \" of \"1-2 x\": empty text at its end");
    free(p);
}


static void
ngx_test_events(void)
{
    u_char                   *p;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_str_t                 text;
    ngx_uint_t                i;
    ngx_http_cast_message_t   m;

    static struct {
        const char  *name;
        const char  *in;
        size_t       len;          /* 0: strlen(in) */
        ngx_uint_t   ok;
        const char  *ev;
        size_t       ev_len;       /* 0: strlen(ev) */
        const char  *json;
    } v[] = {
        { "name and JSON", "5:hello{\"a\":1}", 0, 1, "hello", 0,
          "{\"a\":1}" },
        { "FHIRcast name", "12:patient-open{}", 0, 1, "patient-open", 0,
          "{}" },
        { "empty name", "0:{}", 0, 1, "", 0, "{}" },
        { "empty JSON", "5:hello", 0, 1, "hello", 0, "" },
        { "both empty", "0:", 0, 1, "", 0, "" },
        { "':' inside the name", "3:a:b{}", 0, 1, "a:b", 0, "{}" },
        { "':' only", "1:::", 0, 1, ":", 0, ":" },
        { "newline inside the name", "3:a\nb{}", 0, 1, "a\nb", 0, "{}" },
        { "space inside the name", "3:a b{}", 0, 1, "a b", 0, "{}" },
        { "NUL inside the name", "3:a\0b{}", 7, 1, "a\0b", 3, "{}" },
        { "digits inside the name", "2:12:3", 0, 1, "12", 0, ":3" },
        { "the name takes part of the JSON", "6:hello{}", 0, 1, "hello{", 0,
          "}" },
        { "n is the rest exactly", "7:hello{}", 0, 1, "hello{}", 0, "" },
        { "leading zeros in n", "005:hello{}", 0, 1, "hello", 0, "{}" },
        { "19-digit n of 0", "0000000000000000000:{}", 0, 1, "", 0, "{}" },
        { "n one larger than the rest", "8:hello{}", 0, 0, NULL, 0, NULL },
        { "n much larger than the rest", "9999:hello{}", 0, 0, NULL, 0,
          NULL },
        { "19-digit n (no overflow)", "9999999999999999999:x", 0, 0, NULL, 0,
          NULL },
        { "20-digit n", "00000000000000000001:x", 0, 0, NULL, 0, NULL },
        { "n near 2^64 (wraps if not refused)", "18446744073709551617:x", 0,
          0, NULL, 0, NULL },
        { "empty", "", 0, 0, NULL, 0, NULL },
        { "no colon", "5hello{}", 0, 0, NULL, 0, NULL },
        { "no number", ":hello{}", 0, 0, NULL, 0, NULL },
        { "a colon only", ":", 0, 0, NULL, 0, NULL },
        { "negative n", "-1:hello", 0, 0, NULL, 0, NULL },
        { "plus sign", "+5:hello", 0, 0, NULL, 0, NULL },
        { "space before n", " 5:hello", 0, 0, NULL, 0, NULL },
        { "space after n", "5 :hello", 0, 0, NULL, 0, NULL },
        { "a name where n should be", "hello:{}", 0, 0, NULL, 0, NULL },
        { "a control text", "end abc lease expired", 0, 0, NULL, 0, NULL },
        { "NUL in n", "1\0:ab", 5, 0, NULL, 0, NULL },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        len = v[i].len ? v[i].len : strlen(v[i].in);
        p = ngx_test_copy(v[i].in, len);
        text.data = p;
        text.len = len;
        ngx_memset(&m, 0x5a, sizeof(ngx_http_cast_message_t));

        rc = ngx_http_cast_wire_event(&text, &m);

        if (!v[i].ok) {
            ngx_test_ok(rc == NGX_ERROR, "event: %s refused", v[i].name);
            free(p);
            continue;
        }

        ngx_test_ok(rc == NGX_OK && m.kind == NGX_HTTP_CAST_WIRE_EVENT,
                    "event: %s: taken", v[i].name);

        if (rc != NGX_OK) {
            free(p);
            continue;
        }

        if (v[i].ev_len) {
            ngx_test_ok(m.name.len == v[i].ev_len
                        && memcmp(m.name.data, v[i].ev, v[i].ev_len) == 0,
                        "event: %s: name", v[i].name);

        } else {
            ngx_test_str(&m.name, v[i].ev, v[i].name);
        }

        ngx_test_str(&m.json, v[i].json, v[i].name);

        ngx_test_ok(ngx_test_inside(&m.name, p, len)
                    && ngx_test_inside(&m.json, p, len)
                    && m.name.data + m.name.len == m.json.data
                    && m.json.data + m.json.len == p + len,
                    "event: %s: name then JSON, to the input's end",
                    v[i].name);

        ngx_test_ok(m.id.len == 0 && m.reason.len == 0 && m.events.len == 0
                    && m.expires == 0 && m.lease == 0,
                    "event: %s: the control fields are cleared", v[i].name);

        free(p);
    }

    /* the length is obeyed */

    p = ngx_test_copy("5:hello{}", 9);
    text.data = p;
    text.len = 6;
    ngx_test_ok(ngx_http_cast_wire_event(&text, &m) == NGX_ERROR,
                "event: \"5:hell\" of \"5:hello{}\" refused (length obeyed)");
    text.len = 7;
    ngx_test_ok(ngx_http_cast_wire_event(&text, &m) == NGX_OK
                && m.name.len == 5 && m.json.len == 0,
                "event: \"5:hello\" of \"5:hello{}\": no JSON");
    text.len = 1;
    ngx_test_ok(ngx_http_cast_wire_event(&text, &m) == NGX_ERROR,
                "event: \"5\" of \"5:hello{}\" refused (no colon within)");
    free(p);
}


static void
ngx_test_controls(void)
{
    u_char                   *p;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_str_t                 text;
    ngx_uint_t                i;
    ngx_http_cast_message_t   m;

    static struct {
        const char  *name;
        const char  *in;
        ngx_uint_t   kind;         /* 0: refused */
        const char  *id;
        const char  *reason;
        int64_t      expires;
        time_t       lease;
        const char  *events;
    } v[] = {
        { "end", "end 0123abcd lease expired", NGX_HTTP_CAST_WIRE_END,
          "0123abcd", "lease expired", 0, 0, NULL },
        { "end, empty reason", "end abc ", NGX_HTTP_CAST_WIRE_END, "abc", "",
          0, 0, NULL },
        { "end, reason with spaces and a newline", "end a  b\nc",
          NGX_HTTP_CAST_WIRE_END, "a", " b\nc", 0, 0, NULL },
        { "end, one-byte id", "end x y", NGX_HTTP_CAST_WIRE_END, "x", "y", 0,
          0, NULL },
        { "end without reason", "end abc", 0, NULL, NULL, 0, 0, NULL },
        { "end without id", "end ", 0, NULL, NULL, 0, 0, NULL },
        { "end, empty id", "end  reason", 0, NULL, NULL, 0, 0, NULL },
        { "\"end\" alone", "end", 0, NULL, NULL, 0, 0, NULL },
        { "\"End\"", "End abc x", 0, NULL, NULL, 0, 0, NULL },
        { "\"endx\"", "endx abc x", 0, NULL, NULL, 0, 0, NULL },
        { "\"end\" and a tab", "end\tabc x", 0, NULL, NULL, 0, 0, NULL },
        { "leading space", " end abc x", 0, NULL, NULL, 0, 0, NULL },

        { "renew", "renew 0123abcd 1700000000000 3600 patient-open,"
          "patient-close", NGX_HTTP_CAST_WIRE_RENEW, "0123abcd", NULL,
          1700000000000LL, 3600, "patient-open,patient-close" },
        { "renew, empty events", "renew a 1 2 ", NGX_HTTP_CAST_WIRE_RENEW,
          "a", NULL, 1, 2, "" },
        { "renew, events with spaces", "renew a 1 2 x, y z",
          NGX_HTTP_CAST_WIRE_RENEW, "a", NULL, 1, 2, "x, y z" },
        { "renew, zeros", "renew a 0 0 *", NGX_HTTP_CAST_WIRE_RENEW, "a",
          NULL, 0, 0, "*" },
        { "renew, INT64_MAX expires and INT32_MAX lease",
          "renew a 9223372036854775807 2147483647 e",
          NGX_HTTP_CAST_WIRE_RENEW, "a", NULL, 9223372036854775807LL,
          2147483647, "e" },
        { "renew, expires INT64_MAX + 1",
          "renew a 9223372036854775808 1 e", 0, NULL, NULL, 0, 0, NULL },
        { "renew, 19-digit expires above INT64_MAX",
          "renew a 9999999999999999999 1 e", 0, NULL, NULL, 0, 0, NULL },
        { "renew, 20-digit expires", "renew a 00000000000000000001 1 e", 0,
          NULL, NULL, 0, 0, NULL },
        { "renew, lease INT32_MAX + 1", "renew a 1 2147483648 e", 0, NULL,
          NULL, 0, 0, NULL },
        { "renew, negative expires", "renew a -1 2 e", 0, NULL, NULL, 0, 0,
          NULL },
        { "renew, negative lease", "renew a 1 -2 e", 0, NULL, NULL, 0, 0,
          NULL },
        { "renew, letters in expires", "renew a 1x 2 e", 0, NULL, NULL, 0, 0,
          NULL },
        { "renew, letters in lease", "renew a 1 two e", 0, NULL, NULL, 0, 0,
          NULL },
        { "renew without events", "renew a 1 2", 0, NULL, NULL, 0, 0, NULL },
        { "renew without lease", "renew a 1 ", 0, NULL, NULL, 0, 0, NULL },
        { "renew without lease and events", "renew a 1", 0, NULL, NULL, 0, 0,
          NULL },
        { "renew, id only", "renew a", 0, NULL, NULL, 0, 0, NULL },
        { "renew, id and space", "renew a ", 0, NULL, NULL, 0, 0, NULL },
        { "renew alone", "renew ", 0, NULL, NULL, 0, 0, NULL },
        { "\"renew\" without space", "renew", 0, NULL, NULL, 0, 0, NULL },
        { "renew, empty id", "renew  1 2 e", 0, NULL, NULL, 0, 0, NULL },
        { "renew, empty expires", "renew a  2 e", 0, NULL, NULL, 0, 0, NULL },
        { "renew, empty lease", "renew a 1  e", 0, NULL, NULL, 0, 0, NULL },
        { "\"Renew\"", "Renew a 1 2 e", 0, NULL, NULL, 0, 0, NULL },

        { "empty", "", 0, NULL, NULL, 0, 0, NULL },
        { "an event text", "5:hello{}", 0, NULL, NULL, 0, 0, NULL },
        { "an unknown word", "drop a b", 0, NULL, NULL, 0, 0, NULL },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        len = strlen(v[i].in);
        p = ngx_test_copy(v[i].in, len);
        text.data = p;
        text.len = len;

        rc = ngx_http_cast_wire_control(&text, &m);

        if (v[i].kind == 0) {
            ngx_test_ok(rc == NGX_ERROR, "control: %s refused", v[i].name);
            free(p);
            continue;
        }

        ngx_test_ok(rc == NGX_OK && m.kind == v[i].kind,
                    "control: %s: taken (rc %ld, kind %lu)", v[i].name,
                    (long) rc, (unsigned long) m.kind);

        if (rc != NGX_OK) {
            free(p);
            continue;
        }

        ngx_test_str(&m.id, v[i].id, v[i].name);
        ngx_test_ok(ngx_test_inside(&m.id, p, len) && m.name.len == 0
                    && m.json.len == 0,
                    "control: %s: id inside, no event fields", v[i].name);

        if (m.kind == NGX_HTTP_CAST_WIRE_END) {
            ngx_test_str(&m.reason, v[i].reason, v[i].name);
            ngx_test_ok(m.reason.data + m.reason.len == p + len
                        && m.events.len == 0 && m.expires == 0
                        && m.lease == 0,
                        "control: %s: the reason ends the input", v[i].name);

        } else {
            ngx_test_str(&m.events, v[i].events, v[i].name);
            ngx_test_ok(m.expires == v[i].expires && m.lease == v[i].lease,
                        "control: %s: expires %lld, lease %lld", v[i].name,
                        (long long) m.expires, (long long) m.lease);
            ngx_test_ok(m.events.data + m.events.len == p + len
                        && m.reason.len == 0,
                        "control: %s: the events end the input", v[i].name);
        }

        free(p);
    }

    /* the length is obeyed */

    p = ngx_test_copy("end abc x", 9);
    text.data = p;
    text.len = 7;
    ngx_test_ok(ngx_http_cast_wire_control(&text, &m) == NGX_ERROR,
                "control: \"end abc\" of \"end abc x\" refused");
    free(p);

    p = ngx_test_copy("renew a 1 2 e", 13);
    text.data = p;
    text.len = 11;
    ngx_test_ok(ngx_http_cast_wire_control(&text, &m) == NGX_ERROR,
                "control: \"renew a 1 2\" of \"renew a 1 2 e\" refused");
    text.len = 12;
    ngx_test_ok(ngx_http_cast_wire_control(&text, &m) == NGX_OK
                && m.events.len == 0 && m.lease == 2,
                "control: \"renew a 1 2 \" of \"renew a 1 2 e\": no events");
    free(p);
}


/* format -> split -> event, and the size the header promises */

static ngx_uint_t
ngx_test_round_trip(const char *sid, u_char *name, size_t name_len,
    u_char *json, size_t json_len, uint64_t ms, uint64_t seq)
{
    u_char                   *buf, *end;
    size_t                    size, want;
    ngx_str_t                 id, n, j;
    ngx_uint_t                ok;
    ngx_http_cast_wire_t      w;
    ngx_http_cast_message_t   m;
    u_char                    digits[NGX_INT_T_LEN + 1];

    id.data = (u_char *) sid;
    id.len = strlen(sid);
    n.data = name;
    n.len = name_len;
    j.data = json;
    j.len = json_len;

    size = id.len + n.len + j.len + NGX_INT_T_LEN + 2;
    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    end = ngx_http_cast_wire_format_event(buf, &id, &n, &j);

    want = id.len + 1 + snprintf((char *) digits, sizeof(digits), "%zu",
                                 name_len)
           + 1 + name_len + json_len;

    ok = end > buf && end <= buf + size && (size_t) (end - buf) == want;

    if (ok) {
        ok = ngx_http_cast_wire_split(buf, end - buf, &w) == NGX_OK
             && w.ms == ms && w.seq == seq
             && ngx_http_cast_wire_event(&w.text, &m) == NGX_OK
             && m.name.len == name_len && m.json.len == json_len
             && (name_len == 0 || memcmp(m.name.data, name, name_len) == 0)
             && (json_len == 0 || memcmp(m.json.data, json, json_len) == 0)
             && m.json.data + m.json.len == end;
    }

    free(buf);

    return ok;
}


static void
ngx_test_format(void)
{
    u_char      *buf, *end, *big;
    size_t       i, k, nl, jl;
    uint32_t     r;
    ngx_str_t    id, name, json, got;
    ngx_uint_t   ok;
    u_char       rname[64], rjson[64];
    char         sid[48];

    ngx_str_set(&id, "1700000000000-7");
    ngx_str_set(&name, "patient-open");
    ngx_str_set(&json, "{\"a\":1}");

    buf = malloc(id.len + name.len + json.len + NGX_INT_T_LEN + 2);
    if (buf == NULL) {
        abort();
    }

    end = ngx_http_cast_wire_format_event(buf, &id, &name, &json);
    got.data = buf;
    got.len = end - buf;
    ngx_test_str(&got, "1700000000000-7 12:patient-open{\"a\":1}",
                 "format: an event");

    ngx_str_set(&name, "");
    ngx_str_set(&json, "");
    end = ngx_http_cast_wire_format_event(buf, &id, &name, &json);
    got.len = end - buf;
    ngx_test_str(&got, "1700000000000-7 0:", "format: empty name and JSON");

    ngx_str_set(&name, "a:b c\nd");
    ngx_str_set(&json, "{}");
    end = ngx_http_cast_wire_format_event(buf, &id, &name, &json);
    got.len = end - buf;
    ngx_test_str(&got, "1700000000000-7 7:a:b c\nd{}",
                 "format: ':', ' ' and newline in the name are counted");

    free(buf);

    /* round trips */

    ngx_test_ok(ngx_test_round_trip("1-2", (u_char *) "patient-open", 12,
                                    (u_char *) "{\"x\":[1,2]}", 11, 1, 2),
                "round trip: a FHIRcast event");
    ngx_test_ok(ngx_test_round_trip("0-0", (u_char *) "", 0, (u_char *) "",
                                    0, 0, 0),
                "round trip: empty name and JSON");
    ngx_test_ok(ngx_test_round_trip("1-2", (u_char *) "a:b", 3,
                                    (u_char *) "{}", 2, 1, 2),
                "round trip: ':' in the name");
    ngx_test_ok(ngx_test_round_trip("1-2", (u_char *) "a\nb", 3,
                                    (u_char *) "{}", 2, 1, 2),
                "round trip: newline in the name");
    ngx_test_ok(ngx_test_round_trip("1-2", (u_char *) "a b", 3,
                                    (u_char *) "{}", 2, 1, 2),
                "round trip: space in the name");
    ngx_test_ok(ngx_test_round_trip("1-2", (u_char *) "12:", 3,
                                    (u_char *) "34:x", 4, 1, 2),
                "round trip: a name that looks like a length");
    ngx_test_ok(ngx_test_round_trip("1-2", (u_char *) "a\0b", 3,
                                    (u_char *) "\0", 1, 1, 2),
                "round trip: NUL in name and JSON");
    ngx_test_ok(ngx_test_round_trip("9999999999999999999-9999999999999999999",
                                    (u_char *) "x", 1, (u_char *) "y", 1,
                                    9999999999999999999ULL,
                                    9999999999999999999ULL),
                "round trip: the largest stream id taken");

    /* a 1 MB name and JSON: a 7-digit length */

    big = malloc(2 * 1048576);
    if (big == NULL) {
        abort();
    }

    for (i = 0; i < 2 * 1048576; i++) {
        big[i] = (u_char) (i * 7 + (i >> 8));
    }

    ngx_test_ok(ngx_test_round_trip("5-6", big, 1048576, big + 1048576,
                                    1048576, 5, 6),
                "round trip: 1 MB of arbitrary bytes as name and as JSON");
    free(big);

    /* arbitrary bytes, fixed seed */

    ok = 1;
    r = 2463534242U;

    for (k = 0; k < 20000 && ok; k++) {
        r ^= r << 13; r ^= r >> 17; r ^= r << 5;
        nl = r % sizeof(rname);
        r ^= r << 13; r ^= r >> 17; r ^= r << 5;
        jl = r % sizeof(rjson);

        for (i = 0; i < nl; i++) {
            r ^= r << 13; r ^= r >> 17; r ^= r << 5;
            rname[i] = (u_char) r;
        }

        for (i = 0; i < jl; i++) {
            r ^= r << 13; r ^= r >> 17; r ^= r << 5;
            rjson[i] = (u_char) (r % 5 == 0 ? ':' : r % 7 == 0 ? ' ' : r);
        }

        snprintf(sid, sizeof(sid), "%u-%zu", r, k);

        ok = ngx_test_round_trip(sid, rname, nl, rjson, jl, r, k);
    }

    ngx_test_ok(ok, "round trip: 20000 names and JSON of arbitrary bytes"
                " (stopped at %zu)", k);
}


/* what renew.lua and cast_end() write, as the workers read it */

static void
ngx_test_control_round_trip(void)
{
    u_char                   *p;
    size_t                    len;
    ngx_str_t                 text;
    ngx_http_cast_wire_t      w;
    ngx_http_cast_message_t   m;

    static const char  renew[] = "1700000000123-0 renew "
                                 "c0ffee0123456789abcdef0123456789 "
                                 "1700003600123 3600 patient-open,"
                                 "patient-close";
    static const char  end[] = "1700000000123-1 end "
                               "c0ffee0123456789abcdef0123456789 "
                               "no socket was bound in time";

    len = sizeof(renew) - 1;
    p = ngx_test_copy(renew, len);

    ngx_test_ok(ngx_http_cast_wire_split(p, len, &w) == NGX_OK
                && w.ms == 1700000000123ULL && w.seq == 0
                && ngx_http_cast_wire_control(&w.text, &m) == NGX_OK
                && m.kind == NGX_HTTP_CAST_WIRE_RENEW
                && m.expires == 1700003600123LL && m.lease == 3600,
                "control round trip: a renew message");
    ngx_test_str(&m.id, "c0ffee0123456789abcdef0123456789",
                 "control round trip: renew id");
    ngx_test_str(&m.events, "patient-open,patient-close",
                 "control round trip: renew events");
    free(p);

    len = sizeof(end) - 1;
    p = ngx_test_copy(end, len);

    ngx_test_ok(ngx_http_cast_wire_split(p, len, &w) == NGX_OK
                && w.seq == 1
                && ngx_http_cast_wire_control(&w.text, &m) == NGX_OK
                && m.kind == NGX_HTTP_CAST_WIRE_END,
                "control round trip: an end message");
    ngx_test_str(&m.reason, "no socket was bound in time",
                 "control round trip: end reason");

    text = w.text;
    ngx_test_ok(ngx_http_cast_wire_event(&text, &m) == NGX_ERROR,
                "control round trip: an end message is no event");
    free(p);
}


int
main(void)
{
    ngx_test_core_init();

    ngx_test_stream_ids();
    ngx_test_splits();
    ngx_test_events();
    ngx_test_controls();
    ngx_test_format();
    ngx_test_control_round_trip();

    return ngx_test_done();
}
