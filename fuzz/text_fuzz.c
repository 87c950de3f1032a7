
/*
 * libFuzzer harness for the text checks (src/ngx_http_cast_text.c): the
 * UTF-8 validator, the field, topic and event-name checks and the
 * hub.events list parser, each against a reference written here.
 *
 * Input: byte 0 selects the check and its options, byte 1 a limit or a
 * chunk size; the rest is the text.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_text.h"
#include "ngx_http_cast_fuzz.h"


#define NGX_HTTP_CAST_FUZZ_NAMES  64


static ngx_uint_t
ngx_http_cast_fuzz_lower_eq(const u_char *a, const u_char *b, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ngx_tolower(a[i]) != ngx_tolower(b[i])) {
            return 0;
        }
    }

    return 1;
}


/* the first problem, in the order of the codes */

static ngx_uint_t
ngx_http_cast_fuzz_ref_field(const u_char *s, size_t n, size_t max,
    ngx_uint_t tabs)
{
    if (n > max) {
        return NGX_HTTP_CAST_TEXT_TOO_LONG;
    }

    if (ngx_http_cast_fuzz_controls(s, n, tabs)) {
        return NGX_HTTP_CAST_TEXT_CONTROL;
    }

    if (!ngx_http_cast_fuzz_utf8(s, n)) {
        return NGX_HTTP_CAST_TEXT_NOT_UTF8;
    }

    return NGX_HTTP_CAST_TEXT_OK;
}


static ngx_uint_t
ngx_http_cast_fuzz_ref_topic(const u_char *s, size_t n, size_t max)
{
    ngx_uint_t  rc;

    if (n == 0) {
        return NGX_HTTP_CAST_TEXT_EMPTY;
    }

    rc = ngx_http_cast_fuzz_ref_field(s, n, max, 0);
    if (rc != NGX_HTTP_CAST_TEXT_OK) {
        return rc;
    }

    return ngx_http_cast_fuzz_has(s, n, '/') ? NGX_HTTP_CAST_TEXT_SLASH
                                              : NGX_HTTP_CAST_TEXT_OK;
}


static ngx_uint_t
ngx_http_cast_fuzz_ref_event(const u_char *s, size_t n, size_t max)
{
    ngx_uint_t  rc;

    if (n == 0) {
        return NGX_HTTP_CAST_TEXT_EMPTY;
    }

    rc = ngx_http_cast_fuzz_ref_field(s, n, max, 0);
    if (rc != NGX_HTTP_CAST_TEXT_OK) {
        return rc;
    }

    if (ngx_http_cast_fuzz_has(s, n, ',')) {
        return NGX_HTTP_CAST_TEXT_COMMA;
    }

    if (s[0] == ' ' || s[n - 1] == ' ') {
        return NGX_HTTP_CAST_TEXT_BLANK;
    }

    return NGX_HTTP_CAST_TEXT_OK;
}


/* the list, split with strtok-like logic on a copy */

static void
ngx_http_cast_fuzz_events(const u_char *s, size_t n, u_char *opts)
{
    u_char                     *copy, *item, *end, *comma;
    size_t                      len, size;
    ngx_str_t                   names[NGX_HTTP_CAST_FUZZ_NAMES];
    ngx_str_t                   ref[NGX_HTTP_CAST_FUZZ_NAMES];
    ngx_int_t                   rc;
    ngx_uint_t                  i, k, nref, all, bad;
    const char                 *err;
    ngx_http_cast_text_list_t   list;

    list.names = names;
    list.max = 1 + opts[0] % NGX_HTTP_CAST_FUZZ_NAMES;
    list.max_name = 1 + opts[1] % 300;
    list.allow_all = opts[0] >> 7;

    err = NULL;
    rc = ngx_http_cast_text_events((u_char *) s, n, &list, &err);

    /* reference */

    copy = malloc(n + 1);
    if (copy == NULL) {
        abort();
    }

    memcpy(copy, s, n);
    copy[n] = ',';
    end = copy + n + 1;

    nref = 0;
    all = 0;
    bad = 0;
    size = 0;

    for (item = copy; item < end; item = comma + 1) {
        comma = memchr(item, ',', end - item);
        len = comma - item;

        while (len && (*item == ' ' || *item == '\t')) {
            item++;
            len--;
        }

        while (len && (item[len - 1] == ' ' || item[len - 1] == '\t')) {
            len--;
        }

        if (len == 0) {
            continue;
        }

        if (ngx_http_cast_fuzz_ref_event(item, len, list.max_name)
            != NGX_HTTP_CAST_TEXT_OK)
        {
            bad = 1;
            break;
        }

        if (len == 1 && *item == '*') {
            if (!list.allow_all) {
                bad = 1;
                break;
            }

            all = 1;
        }

        for (k = 0; k < nref; k++) {
            if (ref[k].len == len
                && ngx_http_cast_fuzz_lower_eq(ref[k].data, item, len))
            {
                break;
            }
        }

        if (k < nref) {
            continue;
        }

        if (nref == list.max) {
            bad = 1;
            break;
        }

        ref[nref].data = item;
        ref[nref].len = len;
        size += len;
        nref++;
    }

    if (nref == 0) {
        bad = 1;
    }

    if (bad) {
        ngx_http_cast_fuzz_check(rc == NGX_DECLINED);
        ngx_http_cast_fuzz_check(err != NULL && *err != '\0');

    } else {
        ngx_http_cast_fuzz_check(rc == NGX_OK);
        ngx_http_cast_fuzz_check(list.n == nref);
        ngx_http_cast_fuzz_check(list.all == all);
        ngx_http_cast_fuzz_check(list.size == size);

        for (i = 0; i < nref; i++) {
            /* the names point into the caller's list */
            ngx_http_cast_fuzz_check(names[i].data >= s
                                     && names[i].data + names[i].len
                                        <= s + n);
            ngx_http_cast_fuzz_check(names[i].len == ref[i].len
                                     && memcmp(names[i].data, ref[i].data,
                                               ref[i].len) == 0);
        }
    }

    free(copy);
}


/* whole, then in chunks: the same verdict */

static void
ngx_http_cast_fuzz_utf8_chunks(const u_char *s, size_t n, size_t chunk)
{
    size_t                 i, k;
    u_char                *piece;
    ngx_int_t              rc;
    ngx_uint_t             valid;
    ngx_http_cast_utf8_t   u;

    valid = ngx_http_cast_fuzz_utf8(s, n);

    ngx_http_cast_fuzz_check(ngx_http_cast_utf8_valid((u_char *) s, n)
                             == valid);

    ngx_http_cast_utf8_init(&u);
    rc = NGX_OK;

    for (i = 0; i < n; i += k) {
        k = ngx_min(chunk, n - i);

        piece = malloc(k);
        if (piece == NULL) {
            abort();
        }

        memcpy(piece, s + i, k);
        rc = ngx_http_cast_utf8_feed(&u, piece, k);
        free(piece);

        if (rc != NGX_OK) {
            break;
        }
    }

    ngx_http_cast_fuzz_check((rc == NGX_OK && ngx_http_cast_utf8_complete(&u))
                             == valid);

    /* a prefix of valid text never fails; trimmed, it is valid again */

    if (valid) {
        ngx_http_cast_fuzz_check(rc == NGX_OK);

        for (i = 0; i <= n; i++) {
            k = ngx_http_cast_utf8_trim((u_char *) s, i);
            ngx_http_cast_fuzz_check(k <= i && i - k <= 3);
            ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_utf8(s, k));
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *s, opts[2];
    size_t       n, max;
    ngx_uint_t   which, tabs;

    if (size < 3) {
        return 0;
    }

    which = data[0] & 7;
    tabs = (data[0] >> 3) & 1;
    opts[0] = data[0];
    opts[1] = data[1];
    max = data[1] * 4;

    n = size - 2;
    s = malloc(n ? n : 1);
    if (s == NULL) {
        abort();
    }

    memcpy(s, data + 2, n);

    switch (which) {

    case 0:
        ngx_http_cast_fuzz_check(ngx_http_cast_text_field(s, n, max,
                                     tabs ? NGX_HTTP_CAST_TEXT_TABS : 0)
                                 == ngx_http_cast_fuzz_ref_field(s, n, max,
                                                                 tabs));
        break;

    case 1:
        ngx_http_cast_fuzz_check(ngx_http_cast_text_topic(s, n, max)
                                 == ngx_http_cast_fuzz_ref_topic(s, n, max));
        break;

    case 2:
        ngx_http_cast_fuzz_check(ngx_http_cast_text_event(s, n, max)
                                 == ngx_http_cast_fuzz_ref_event(s, n, max));
        break;

    case 3:
    case 4:
        ngx_http_cast_fuzz_events(s, n, opts);
        break;

    default:
        ngx_http_cast_fuzz_utf8_chunks(s, n, 1 + data[1] % 17);
        break;
    }

    free(s);

    return 0;
}
