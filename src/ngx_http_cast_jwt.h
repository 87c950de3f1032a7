
/*
 * ngx_http_cast_module: bearer tokens, a pure codec
 * (src/ngx_http_cast_jwt.c).
 *
 * JSON Web Tokens in the compact form (RFC 7519, RFC 7515) signed with
 * HS256, RS256 or ES256 (RFC 7518); JSON Web Keys (RFC 7517) for them;
 * the FHIRcast scopes "fhircast/<event>.<mode>" (SMART v1 read, write,
 * "*"; SMART v2 permission letters such as "rs" and "cud").  Nothing here
 * does I/O or reads a clock: the caller gives the bytes and "now".
 * Signatures are checked with OpenSSL's EVP interfaces.
 *
 * What a function allocates comes from the pool it is given, except the
 * JSON claims and the OpenSSL keys, which the caller releases with
 * ngx_http_cast_jwt_free() and ngx_http_cast_jwk_free().
 */


#ifndef _NGX_HTTP_CAST_JWT_H_INCLUDED_
#define _NGX_HTTP_CAST_JWT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <jansson.h>
#include <openssl/evp.h>


#define NGX_HTTP_CAST_JWT_HS256       1
#define NGX_HTTP_CAST_JWT_RS256       2
#define NGX_HTTP_CAST_JWT_ES256       3

/* a longer token is refused before it is decoded */
#define NGX_HTTP_CAST_JWT_MAX_LEN     16384

/* fhircast scopes kept per token; more is refused */
#define NGX_HTTP_CAST_JWT_MAX_SCOPES  256

/* an HS256 secret has at least the hash's 256 bits (RFC 7518 3.2) */
#define NGX_HTTP_CAST_JWT_MIN_SECRET  32

/* RSA keys below 2048 bits are refused (RFC 7518 3.3) */
#define NGX_HTTP_CAST_JWT_MIN_RSA     2048

#define NGX_HTTP_CAST_SCOPE_READ      1
#define NGX_HTTP_CAST_SCOPE_WRITE     2


typedef struct {
    ngx_uint_t                 alg;         /* NGX_HTTP_CAST_JWT_* */
    ngx_str_t                  kid;         /* empty: none */
    ngx_str_t                  secret;      /* HS256 */
    EVP_PKEY                  *pkey;        /* RS256, ES256 */
} ngx_http_cast_jwk_t;


typedef struct {
    ngx_uint_t                 alg;
    ngx_str_t                  kid;         /* empty: none */
    ngx_str_t                  input;       /* "header.payload" as sent */
    ngx_str_t                  signature;   /* decoded */
    json_t                    *claims;      /* the payload, an object */
} ngx_http_cast_jwt_t;


/* one fhircast scope: an event name (lowercase, or "*") and its modes */

typedef struct {
    ngx_str_t                  event;
    unsigned                   read:1;
    unsigned                   write:1;
} ngx_http_cast_scope_t;


typedef struct {
    ngx_http_cast_scope_t     *scope;
    ngx_uint_t                 n;
} ngx_http_cast_scopes_t;


/* what a valid token grants */

typedef struct {
    ngx_str_t                  topic;       /* empty: no topic claim */
    ngx_str_t                  subject;     /* "sub", for the log */
    ngx_str_t                  id;          /* "jti", for the log */
    time_t                     expires;     /* "exp"; 0: none known */
    ngx_http_cast_scopes_t     scopes;
} ngx_http_cast_grant_t;


/* what the configuration requires of a token's claims */

typedef struct {
    ngx_str_t                  issuer;      /* empty: any "iss" */
    ngx_str_t                  audience;    /* empty: any "aud" */
    ngx_str_t                  topic_claim;
    time_t                     leeway;      /* clock skew allowed */
    time_t                     now;
} ngx_http_cast_jwt_rules_t;


/*
 * A JWK Set ({"keys":[...]}) or a single JWK: the usable keys are
 * appended to keys[*n] ... keys[max - 1].  Keys of other types, other
 * curves, other algorithms or "use" other than "sig" are skipped and
 * counted in *skipped.  NGX_DECLINED with *err: the text is not a key
 * set, or a key of a supported type is malformed or too weak.
 */
ngx_int_t ngx_http_cast_jwks_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_jwk_t *keys, ngx_uint_t max, ngx_uint_t *n,
    ngx_uint_t *skipped, const char **err);

/* an HS256 secret (the bytes as given) with an optional key id */
ngx_int_t ngx_http_cast_jwk_secret(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *kid, ngx_http_cast_jwk_t *key, const char **err);

void ngx_http_cast_jwk_free(ngx_http_cast_jwk_t *key);

/*
 * The compact form split, its header checked (alg HS256, RS256 or ES256;
 * no "crit"), the payload a JSON object.  NGX_DECLINED with *err when the
 * token is malformed.  On NGX_OK jwt->claims must be released.
 */
ngx_int_t ngx_http_cast_jwt_decode(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_jwt_t *jwt, const char **err);

void ngx_http_cast_jwt_free(ngx_http_cast_jwt_t *jwt);

/*
 * The signature against the keys of the token's algorithm (and its "kid",
 * when it names one): NGX_OK, NGX_DECLINED (no key verifies it), or
 * NGX_ERROR (OpenSSL failed).
 */
ngx_int_t ngx_http_cast_jwt_verify(ngx_http_cast_jwt_t *jwt,
    ngx_http_cast_jwk_t *keys, ngx_uint_t n);

/*
 * An HS256 token in the compact form: the header {"alg":"HS256",
 * "typ":"JWT"} (and the key's "kid" when it has one), the claims (a JSON
 * object) as compact JSON, the signature by "key".  NGX_OK with *token
 * in the pool; NGX_DECLINED: not an HS256 key, the claims are not an
 * object, or the token would be longer than NGX_HTTP_CAST_JWT_MAX_LEN;
 * NGX_ERROR: out of memory, or OpenSSL failed.
 */
ngx_int_t ngx_http_cast_jwt_sign(ngx_pool_t *pool, ngx_http_cast_jwk_t *key,
    json_t *claims, ngx_str_t *token);

/*
 * The claims against the rules ("exp" required, "nbf", "iss", "aud"),
 * and what they grant (topic claim, "scope" or "scp", "sub", "jti").
 * NGX_DECLINED with *err: the token is not valid now or here.
 */
ngx_int_t ngx_http_cast_jwt_claims(ngx_pool_t *pool, ngx_http_cast_jwt_t *jwt,
    ngx_http_cast_jwt_rules_t *rules, ngx_http_cast_grant_t *grant,
    const char **err);

/*
 * A space-separated scope list: the fhircast scopes in it (others are
 * ignored, and so are fhircast scopes that grant no mode).  NGX_DECLINED:
 * more than NGX_HTTP_CAST_JWT_MAX_SCOPES fhircast scopes.
 */
ngx_int_t ngx_http_cast_scopes_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_scopes_t *scopes);

/* does a scope give "mode" for this lowercase event name ("*": all)? */
ngx_uint_t ngx_http_cast_scopes_allow(ngx_http_cast_scopes_t *scopes,
    ngx_str_t *event, ngx_uint_t mode);

/* does any scope give "mode" at all? */
ngx_uint_t ngx_http_cast_scopes_any(ngx_http_cast_scopes_t *scopes,
    ngx_uint_t mode);

/*
 * The events the scopes let a token publish, as a comma list of lowercase
 * names, "*" for every event, or empty for none.
 */
ngx_int_t ngx_http_cast_scopes_writable(ngx_pool_t *pool,
    ngx_http_cast_scopes_t *scopes, ngx_str_t *list);

/* is a lowercase event name in such a list? */
ngx_uint_t ngx_http_cast_scopes_listed(ngx_str_t *list, ngx_str_t *event);


#endif /* _NGX_HTTP_CAST_JWT_H_INCLUDED_ */
