
/*
 * Unit tests for the text checks (src/ngx_http_cast_text.c): subscription
 * fields, topics, event names, hub.events lists.  The UTF-8 validator
 * itself is tested in frame_test.c, where the frame codec uses it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_text.h"
#include "ngx_test_tap.h"


typedef struct {
    const char  *name;
    const char  *text;
    size_t       len;          /* 0: strlen(text) */
    ngx_uint_t   want;
} ngx_test_vec_t;


#define ngx_test_s(s)   (u_char *) s, sizeof(s) - 1


static size_t
ngx_test_len(ngx_test_vec_t *v)
{
    return v->len ? v->len : strlen(v->text);
}


static void
ngx_test_fields(void)
{
    ngx_uint_t  i, rc;

    static ngx_test_vec_t  v[] = {
        { "empty field", "", 0, NGX_HTTP_CAST_TEXT_OK },
        { "ASCII", "Dr Who", 0, NGX_HTTP_CAST_TEXT_OK },
        { "UTF-8 (2, 3, 4 bytes)", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0,
          NGX_HTTP_CAST_TEXT_OK },
        { "truncated 3-byte sequence (%E2%82)", "\xe2\x82", 0,
          NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "byte FF", "a\xff", 0, NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "overlong \"/\"", "\xc0\xaf", 0, NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "surrogate U+D800", "\xed\xa0\x80", 0,
          NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "above U+10FFFF", "\xf4\x90\x80\x80", 0,
          NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "NUL", "a\0b", 3, NGX_HTTP_CAST_TEXT_CONTROL },
        { "newline", "a\nb", 0, NGX_HTTP_CAST_TEXT_CONTROL },
        { "DEL", "a\x7f", 0, NGX_HTTP_CAST_TEXT_CONTROL },
        { "tab", "a\tb", 0, NGX_HTTP_CAST_TEXT_CONTROL },
        { "a control character comes before UTF-8", "\x01\xff", 0,
          NGX_HTTP_CAST_TEXT_CONTROL },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        rc = ngx_http_cast_text_field((u_char *) v[i].text, ngx_test_len(&v[i]),
                                      16, 0);
        ngx_test_ok(rc == v[i].want, "field: %s (got %lu)", v[i].name,
                    (unsigned long) rc);
    }

    ngx_test_ok(ngx_http_cast_text_field(ngx_test_s("a\tb"), 16,
                                         NGX_HTTP_CAST_TEXT_TABS)
                == NGX_HTTP_CAST_TEXT_OK,
                "field: a tab where tabs are allowed");

    ngx_test_ok(ngx_http_cast_text_field(ngx_test_s("0123456789abcdef"), 16,
                                         0)
                == NGX_HTTP_CAST_TEXT_OK,
                "field: exactly the limit");

    ngx_test_ok(ngx_http_cast_text_field(ngx_test_s("0123456789abcdefg"), 16,
                                         0)
                == NGX_HTTP_CAST_TEXT_TOO_LONG,
                "field: one byte over the limit");

    ngx_test_ok(ngx_http_cast_text_field(ngx_test_s("0123456789abcdef\xff"),
                                         16, 0)
                == NGX_HTTP_CAST_TEXT_TOO_LONG,
                "field: too long comes before not UTF-8");
}


static void
ngx_test_topics(void)
{
    ngx_uint_t  i, rc;

    static ngx_test_vec_t  v[] = {
        { "empty", "", 0, NGX_HTTP_CAST_TEXT_EMPTY },
        { "plain", "DrXRay", 0, NGX_HTTP_CAST_TEXT_OK },
        { "UTF-8", "J\xc3\xbcrgen", 0, NGX_HTTP_CAST_TEXT_OK },
        { "\"*\" (the caller decides)", "*", 0, NGX_HTTP_CAST_TEXT_OK },
        { "spaces and punctuation", "my topic:x?y#z", 0,
          NGX_HTTP_CAST_TEXT_OK },
        { "slash", "a/b", 0, NGX_HTTP_CAST_TEXT_SLASH },
        { "leading slash", "/", 0, NGX_HTTP_CAST_TEXT_SLASH },
        { "not UTF-8 (%E2%82)", "\xe2\x82", 0, NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "not UTF-8 (%FF)", "bad\xfftopic", 0,
          NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "control character", "a\x01", 0, NGX_HTTP_CAST_TEXT_CONTROL },
        { "control character before slash", "a/\x01", 0,
          NGX_HTTP_CAST_TEXT_CONTROL },
        { "too long before anything", "0123456789abcdef/\xff", 0,
          NGX_HTTP_CAST_TEXT_TOO_LONG },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        rc = ngx_http_cast_text_topic((u_char *) v[i].text, ngx_test_len(&v[i]),
                                      16);
        ngx_test_ok(rc == v[i].want, "topic: %s (got %lu)", v[i].name,
                    (unsigned long) rc);
    }
}


static void
ngx_test_events(void)
{
    ngx_uint_t  i, rc;

    static ngx_test_vec_t  v[] = {
        { "empty", "", 0, NGX_HTTP_CAST_TEXT_EMPTY },
        { "FHIRcast name", "Patient-open", 0, NGX_HTTP_CAST_TEXT_OK },
        { "inner space", "patient open", 0, NGX_HTTP_CAST_TEXT_OK },
        { "UTF-8", "\xc3\xa9v\xc3\xa9nement", 0, NGX_HTTP_CAST_TEXT_OK },
        { "newline (the F2 payload)", "open\nNOT JSON", 0,
          NGX_HTTP_CAST_TEXT_CONTROL },
        { "tab", "a\tb", 0, NGX_HTTP_CAST_TEXT_CONTROL },
        { "DEL", "a\x7f", 0, NGX_HTTP_CAST_TEXT_CONTROL },
        { "comma", "a,b", 0, NGX_HTTP_CAST_TEXT_COMMA },
        { "leading space", " a", 0, NGX_HTTP_CAST_TEXT_BLANK },
        { "trailing space", "a ", 0, NGX_HTTP_CAST_TEXT_BLANK },
        { "not UTF-8", "a\xc3", 0, NGX_HTTP_CAST_TEXT_NOT_UTF8 },
        { "too long", "0123456789abcdefg", 0, NGX_HTTP_CAST_TEXT_TOO_LONG },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        rc = ngx_http_cast_text_event((u_char *) v[i].text, ngx_test_len(&v[i]),
                                      16);
        ngx_test_ok(rc == v[i].want, "event name: %s (got %lu)", v[i].name,
                    (unsigned long) rc);
    }

    for (i = NGX_HTTP_CAST_TEXT_OK; i <= NGX_HTTP_CAST_TEXT_BLANK + 1; i++) {
        ngx_test_ok(ngx_http_cast_text_reason(i) != NULL
                    && *ngx_http_cast_text_reason(i) != '\0',
                    "reason %lu: \"%s\"", (unsigned long) i,
                    ngx_http_cast_text_reason(i));
    }
}


/* the names as "a|b|c", or the error */

static void
ngx_test_list(const char *list, ngx_uint_t max, ngx_uint_t allow_all,
    const char *want, ngx_uint_t want_all)
{
    u_char                     *p, buf[1024];
    ngx_str_t                   names[8], got;
    ngx_uint_t                  i;
    const char                 *err;
    ngx_http_cast_text_list_t   l;

    l.names = names;
    l.max = max;
    l.max_name = 16;
    l.allow_all = allow_all;

    err = NULL;
    p = buf;

    if (ngx_http_cast_text_events((u_char *) list, strlen(list), &l, &err)
        != NGX_OK)
    {
        p = (u_char *) stpcpy((char *) p, err);

    } else {
        for (i = 0; i < l.n; i++) {
            if (i) {
                *p++ = '|';
            }

            p = ngx_cpymem(p, names[i].data, names[i].len);
        }

        if (l.all != want_all) {
            p = (u_char *) stpcpy((char *) p, " (all is wrong)");
        }
    }

    got.data = buf;
    got.len = p - buf;

    snprintf((char *) buf + 512, 512, "hub.events \"%s\"", list);
    ngx_test_str(&got, want, (char *) buf + 512);
}


static void
ngx_test_lists(void)
{
    ngx_test_list("a", 8, 1, "a", 0);
    ngx_test_list(" a , b\t,\tc ", 8, 1, "a|b|c", 0);
    ngx_test_list(",,a,,", 8, 1, "a", 0);
    ngx_test_list("Patient-open,patient-OPEN,b,B", 8, 1, "Patient-open|b", 0);
    ngx_test_list("a b,a  b", 8, 1, "a b|a  b", 0);
    ngx_test_list("*,a", 8, 1, "*|a", 1);
    ngx_test_list("*", 8, 0, "\"*\" in hub.events is not allowed by FHIRcast "
                  "(cast_dialect fhircast)", 0);
    ngx_test_list("", 8, 1, "hub.events is empty", 0);
    ngx_test_list(" , ,\t", 8, 1, "hub.events is empty", 0);
    ngx_test_list("a,b,c", 2, 1, "hub.events lists too many events", 0);
    ngx_test_list("a,b,a,b", 2, 1, "a|b", 0);
    ngx_test_list("0123456789abcdefg", 8, 1,
                  "an event name in hub.events is too long", 0);
    ngx_test_list("0123456789abcdef", 8, 1, "0123456789abcdef", 0);
    ngx_test_list("a,b\x01", 8, 1, "hub.events holds a control character",
                  0);
    ngx_test_list("a,b\xe2\x82", 8, 1, "hub.events is not valid UTF-8", 0);
    ngx_test_list("a,\xc3\xa9", 8, 1, "a|\xc3\xa9", 0);
}


static void
ngx_test_trim(void)
{
    size_t      i, n;
    ngx_uint_t  ok;

    /* "a", U+00E9, U+20AC, U+1F600: 1 + 2 + 3 + 4 bytes */
    static u_char  s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    static size_t  want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10 };

    ok = 1;

    for (i = 0; i <= sizeof(s) - 1; i++) {
        n = ngx_http_cast_utf8_trim(s, i);

        if (n != want[i]) {
            printf("#   cut at %zu: got %zu, want %zu\n", i, n, want[i]);
            ok = 0;
        }
    }

    ngx_test_ok(ok, "utf8 trim: a cut inside a character is dropped, whole "
                "characters are kept");

    ngx_test_ok(ngx_http_cast_utf8_trim((u_char *) "a\x80\x80\x80\x80", 5)
                == 5, "utf8 trim: stray continuation bytes are left alone");
}


int
main(void)
{
    ngx_test_fields();
    ngx_test_topics();
    ngx_test_events();
    ngx_test_lists();
    ngx_test_trim();

    return ngx_test_done();
}
