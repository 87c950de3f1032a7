
/*
 * The few nginx core functions that the module's pure files (form.c,
 * json.c) call, for building them outside nginx against nginx's real
 * headers (t/unit, fuzz).  Pools hand out one malloc() block per
 * allocation, so that AddressSanitizer sees every overrun.
 */


#ifndef _NGX_TEST_CORE_H_INCLUDED_
#define _NGX_TEST_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * 0: allocations succeed; n > 0: the n-th allocation from now fails (and
 * only that one), to reach the out-of-memory paths.
 */
extern ngx_uint_t  ngx_test_alloc_fail;

/* allocations made since the process started */
extern ngx_uint_t  ngx_test_allocs;

/* log lines written through ngx_log_error() since the start */
extern ngx_uint_t  ngx_test_log_lines;

void ngx_test_core_init(void);


#endif /* _NGX_TEST_CORE_H_INCLUDED_ */
