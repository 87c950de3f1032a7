
/*
 * Shared by every harness (nginx's real headers or the unit-test shim): the
 * invariant check and reference checks written independently of the
 * module's code (a harness must not judge the module by the module).
 */


#ifndef _NGX_HTTP_CAST_FUZZ_H_INCLUDED_
#define _NGX_HTTP_CAST_FUZZ_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>


#define ngx_http_cast_fuzz_check(cond)                                       \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s: invariant failed: %s (line %d)\n",          \
                    __FILE__, #cond, __LINE__);                              \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* strict RFC 3629 by decoding code points */

static ngx_inline ngx_uint_t
ngx_http_cast_fuzz_utf8(const u_char *s, size_t n)
{
    size_t      i, k, need;
    uint32_t    cp, min;

    for (i = 0; i < n; i += need) {

        if (s[i] < 0x80) {
            need = 1;
            continue;
        }

        if ((s[i] & 0xe0) == 0xc0) {
            need = 2;
            cp = s[i] & 0x1f;
            min = 0x80;

        } else if ((s[i] & 0xf0) == 0xe0) {
            need = 3;
            cp = s[i] & 0x0f;
            min = 0x800;

        } else if ((s[i] & 0xf8) == 0xf0) {
            need = 4;
            cp = s[i] & 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (n - i < need) {
            return 0;
        }

        for (k = 1; k < need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = (cp << 6) | (s[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


/* bytes below 0x20 or 0x7f, tabs excepted if "tabs" */

static ngx_inline ngx_uint_t
ngx_http_cast_fuzz_controls(const u_char *s, size_t n, ngx_uint_t tabs)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if ((s[i] < 0x20 || s[i] == 0x7f) && !(tabs && s[i] == '\t')) {
            return 1;
        }
    }

    return 0;
}


static ngx_inline ngx_uint_t
ngx_http_cast_fuzz_has(const u_char *s, size_t n, u_char c)
{
    return n && memchr(s, c, n) != NULL;
}


#endif /* _NGX_HTTP_CAST_FUZZ_H_INCLUDED_ */
