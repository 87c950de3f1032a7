
/*
 * A TAP stream for the unit tests built against nginx's headers: one
 * "ok N - name" line per check, a final "N passed, M failed" line, and an
 * exit status that is non-zero on any failure.
 */


#ifndef _NGX_TEST_TAP_H_INCLUDED_
#define _NGX_TEST_TAP_H_INCLUDED_


#include <stdio.h>
#include <stdarg.h>


static ngx_uint_t  ngx_test_n;
static ngx_uint_t  ngx_test_failed;


static void ngx_test_ok(ngx_uint_t ok, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));


static void
ngx_test_ok(ngx_uint_t ok, const char *fmt, ...)
{
    va_list  args;

    ngx_test_n++;

    if (!ok) {
        ngx_test_failed++;
    }

    printf("%sok %lu - ", ok ? "" : "not ", (unsigned long) ngx_test_n);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");
}


/* prints "got" for a failed check of a string result */

static void
ngx_test_str(ngx_str_t *got, const char *want, const char *name)
{
    ngx_uint_t  ok;

    ok = got->len == strlen(want) && memcmp(got->data, want, got->len) == 0;

    ngx_test_ok(ok, "%s", name);

    if (!ok) {
        printf("#   got:  \"%.*s\"\n#   want: \"%s\"\n",
               (int) got->len, got->data, want);
    }
}


static int
ngx_test_done(void)
{
    printf("1..%lu\n%lu passed, %lu failed\n", (unsigned long) ngx_test_n,
           (unsigned long) (ngx_test_n - ngx_test_failed),
           (unsigned long) ngx_test_failed);

    return ngx_test_failed ? 1 : 0;
}


#endif /* _NGX_TEST_TAP_H_INCLUDED_ */
