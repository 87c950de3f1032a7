
/*
 * Minimal stand-in for nginx's <ngx_config.h>, used only to build the frame
 * codec outside nginx (unit tests, fuzzer).  Defines exactly the types the
 * codec takes from nginx.
 */


#ifndef _NGX_CONFIG_H_INCLUDED_
#define _NGX_CONFIG_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


typedef intptr_t        ngx_int_t;
typedef uintptr_t       ngx_uint_t;
typedef unsigned char   u_char;

#define ngx_inline      inline


#endif /* _NGX_CONFIG_H_INCLUDED_ */
