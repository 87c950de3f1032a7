
/*
 * libFuzzer harness for the bearer-token codec (jwt.c).
 *
 * Input: byte 0 chooses what is fuzzed (bits 0-1: 0 a token, 1 a JWK Set,
 * 2 a scope list, 3 claims to sign) and an allocation to fail (bits 2-7,
 * 0: none); the rest is the text.  Invariants, checked independently of
 * jwt.c:
 *   - a token verifies only if it is HS256 and its signature is the
 *     HMAC-SHA256 of "header.payload" under the secret (computed here with
 *     OpenSSL's HMAC()); RS256 and ES256 keys are made at start-up and
 *     their private halves are never used, so nothing verifies with them;
 *   - a decoded token's signing input is the input up to its last dot;
 *   - valid claims have an expiry not yet past (with the leeway), a topic
 *     of 1 to 1024 bytes or none, at most 256 scopes, event names in
 *     lowercase without space, comma or control bytes;
 *   - the writable list holds exactly the events a scope lets write, and
 *     listed() agrees with allow();
 *   - a JWK Set gives at most the room it was given, each key usable;
 *   - claims (a JSON object) signed give a token that passes the token
 *     invariants above, decodes to the same claims and verifies.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_cast_jwt.h"
#include "ngx_test_core.h"
#include "ngx_http_cast_fuzz.h"


#define NOW  1796278339


static ngx_http_cast_jwk_t  keys[3];
static u_char               secret[] = "0123456789abcdef0123456789abcdef";


int LLVMFuzzerInitialize(int *argc, char ***argv);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_test_core_init();

    keys[0].alg = NGX_HTTP_CAST_JWT_HS256;
    keys[0].secret.data = secret;
    keys[0].secret.len = 32;
    ngx_str_set(&keys[0].kid, "h1");

    keys[1].alg = NGX_HTTP_CAST_JWT_RS256;
    keys[1].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    ngx_str_set(&keys[1].kid, "r1");

    keys[2].alg = NGX_HTTP_CAST_JWT_ES256;
    keys[2].pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    ngx_http_cast_fuzz_check(keys[1].pkey && keys[2].pkey);

    return 0;
}


static void
ngx_http_cast_fuzz_scopes(ngx_pool_t *pool, ngx_http_cast_scopes_t *s)
{
    size_t                  k;
    ngx_str_t               list, item;
    ngx_uint_t              i, w;
    ngx_http_cast_scope_t  *sc;

    ngx_http_cast_fuzz_check(s->n <= NGX_HTTP_CAST_JWT_MAX_SCOPES);

    w = 0;

    for (i = 0; i < s->n; i++) {
        sc = &s->scope[i];

        ngx_http_cast_fuzz_check(sc->event.len > 0 && (sc->read || sc->write));

        for (k = 0; k < sc->event.len; k++) {
            ngx_http_cast_fuzz_check(sc->event.data[k] > 0x20
                                     && sc->event.data[k] != 0x7f
                                     && sc->event.data[k] != ','
                                     && !(sc->event.data[k] >= 'A'
                                          && sc->event.data[k] <= 'Z'));
        }

        ngx_http_cast_fuzz_check(ngx_http_cast_scopes_allow(s, &sc->event,
                                    sc->read ? NGX_HTTP_CAST_SCOPE_READ
                                             : NGX_HTTP_CAST_SCOPE_WRITE));
        w |= sc->write;
    }

    if (ngx_http_cast_scopes_writable(pool, s, &list) != NGX_OK) {
        return;
    }

    ngx_http_cast_fuzz_check(w ? list.len > 0 : list.len == 0);

    /* each listed event is writable; each writable scope is listed */

    if (list.len && !(list.len == 1 && list.data[0] == '*')) {
        item.data = list.data;

        for (k = 0; k <= list.len; k++) {
            if (k == list.len || list.data[k] == ',') {
                item.len = list.data + k - item.data;
                ngx_http_cast_fuzz_check(item.len > 0);
                ngx_http_cast_fuzz_check(ngx_http_cast_scopes_allow(s, &item,
                                            NGX_HTTP_CAST_SCOPE_WRITE));
                item.data = list.data + k + 1;
            }
        }
    }

    for (i = 0; i < s->n; i++) {
        if (s->scope[i].write) {
            ngx_http_cast_fuzz_check(ngx_http_cast_scopes_listed(&list,
                                                   &s->scope[i].event));
        }
    }
}


static void
ngx_http_cast_fuzz_token(ngx_pool_t *pool, u_char *p, size_t len)
{
    u_char                      mac[EVP_MAX_MD_SIZE], *dot;
    ngx_int_t                   rc;
    const char                 *err;
    unsigned int                mlen;
    ngx_http_cast_jwt_t         jwt;
    ngx_http_cast_grant_t       grant;
    ngx_http_cast_jwt_rules_t   rules;

    rc = ngx_http_cast_jwt_decode(pool, p, len, &jwt, &err);

    if (rc != NGX_OK) {
        ngx_http_cast_fuzz_check(rc == NGX_ERROR || err != NULL);
        return;
    }

    for (dot = p + len; dot[-1] != '.'; dot--) { /* void */ }

    ngx_http_cast_fuzz_check(jwt.input.data == p
                             && jwt.input.len == (size_t) (dot - 1 - p));
    ngx_http_cast_fuzz_check(jwt.alg >= NGX_HTTP_CAST_JWT_HS256
                             && jwt.alg <= NGX_HTTP_CAST_JWT_ES256);
    ngx_http_cast_fuzz_check(json_is_object(jwt.claims));

    rc = ngx_http_cast_jwt_verify(&jwt, keys, 3);

    if (rc == NGX_OK) {
        ngx_http_cast_fuzz_check(jwt.alg == NGX_HTTP_CAST_JWT_HS256);
        ngx_http_cast_fuzz_check(HMAC(EVP_sha256(), secret, 32,
                                      jwt.input.data, jwt.input.len, mac,
                                      &mlen)
                                 != NULL);
        ngx_http_cast_fuzz_check(mlen == jwt.signature.len
                                 && memcmp(mac, jwt.signature.data, mlen)
                                    == 0);
    }

    ngx_str_set(&rules.issuer, "https://auth.example");
    ngx_str_set(&rules.audience, "cast-hub");
    ngx_str_set(&rules.topic_claim, "hub.topic");
    rules.leeway = 30;
    rules.now = NOW;

    rc = ngx_http_cast_jwt_claims(pool, &jwt, &rules, &grant, &err);

    if (rc == NGX_OK) {
        ngx_http_cast_fuzz_check(grant.expires + 30 > NOW);
        ngx_http_cast_fuzz_check(grant.topic.len <= 1024);
        ngx_http_cast_fuzz_scopes(pool, &grant.scopes);
    }

    ngx_http_cast_jwt_free(&jwt);
}


/* a JSON object signed: the token round-trips and verifies */

static void
ngx_http_cast_fuzz_sign(ngx_pool_t *pool, u_char *p, size_t len)
{
    size_t                n;
    json_t               *claims;
    ngx_int_t             rc;
    ngx_str_t             token;
    ngx_uint_t            fail;
    const char           *err;
    ngx_http_cast_jwt_t   jwt;

    /* an allocation made to fail: the count goes down to 0 as they go */
    fail = ngx_test_alloc_fail;

    claims = json_loadb((char *) p, len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(claims)) {
        json_decref(claims);
        return;
    }

    rc = ngx_http_cast_jwt_sign(pool, &keys[0], claims, &token);

    if (rc == NGX_ERROR) {
        ngx_http_cast_fuzz_check(fail != 0);
        json_decref(claims);
        return;
    }

    if (rc == NGX_DECLINED) {
        /* only a token that would be too long (the header is short) */
        n = json_dumpb(claims, NULL, 0, JSON_COMPACT);
        ngx_http_cast_fuzz_check((n * 4 + 2) / 3
                                 > NGX_HTTP_CAST_JWT_MAX_LEN - 128);
        json_decref(claims);
        return;
    }

    ngx_http_cast_fuzz_check(token.len <= NGX_HTTP_CAST_JWT_MAX_LEN);

    ngx_http_cast_fuzz_token(pool, token.data, token.len);

    rc = ngx_http_cast_jwt_decode(pool, token.data, token.len, &jwt, &err);

    if (rc == NGX_ERROR) {
        ngx_http_cast_fuzz_check(fail != 0);
        json_decref(claims);
        return;
    }

    ngx_http_cast_fuzz_check(rc == NGX_OK);
    ngx_http_cast_fuzz_check(jwt.alg == NGX_HTTP_CAST_JWT_HS256);
    ngx_http_cast_fuzz_check(json_equal(jwt.claims, claims));
    ngx_http_cast_fuzz_check(ngx_http_cast_jwt_verify(&jwt, keys, 1)
                             == NGX_OK);

    ngx_http_cast_jwt_free(&jwt);
    json_decref(claims);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                  *copy;
    ngx_uint_t               i, n, skipped;
    ngx_pool_t              *pool;
    const char              *err;
    ngx_http_cast_jwk_t      parsed[4];
    ngx_http_cast_scopes_t   scopes;

    if (size < 1) {
        return 0;
    }

    /* a copy of exactly the input's size: ASan sees any overrun */

    copy = malloc(size - 1 ? size - 1 : 1);
    memcpy(copy, data + 1, size - 1);

    pool = ngx_create_pool(1024, NULL);
    ngx_test_alloc_fail = data[0] >> 2;

    switch (data[0] & 3) {

    case 0:
        ngx_http_cast_fuzz_token(pool, copy, size - 1);
        break;

    case 1:
        n = 0;
        skipped = 0;

        if (ngx_http_cast_jwks_parse(pool, copy, size - 1, parsed, 4, &n,
                                     &skipped, &err)
            == NGX_DECLINED)
        {
            ngx_http_cast_fuzz_check(err != NULL);
        }

        ngx_http_cast_fuzz_check(n <= 4);

        for (i = 0; i < n; i++) {
            ngx_http_cast_fuzz_check(
                parsed[i].alg == NGX_HTTP_CAST_JWT_HS256
                ? parsed[i].secret.len >= NGX_HTTP_CAST_JWT_MIN_SECRET
                : parsed[i].pkey != NULL);
            ngx_http_cast_jwk_free(&parsed[i]);
        }

        break;

    case 2:
        if (ngx_http_cast_scopes_parse(pool, copy, size - 1, &scopes)
            == NGX_OK)
        {
            ngx_http_cast_fuzz_scopes(pool, &scopes);
        }

        break;

    default:
        ngx_http_cast_fuzz_sign(pool, copy, size - 1);
        break;
    }

    ngx_test_alloc_fail = 0;
    ngx_destroy_pool(pool);
    free(copy);

    return 0;
}
