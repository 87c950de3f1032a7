# Discovery (SPEC 2.4), CORS and preflight (SPEC 2), unknown routes (404)
# and wrong methods (405).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);
use CastMode;

# CORS is off unless configured (TEST 22-24 check that default); most
# tests here configure "*" for the whole server
our $HubConfig = <<'_EOC_';
    cast_cors_origin *;
    location /api/hub { cast_hub; }
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $HubConfig) if !defined $block->config;
});

# the discovery document reduced to its checkable facts
sub discovery_facts {
    my $d = CastTest::json_decode($_[0]);
    my %ev = map { $_ => 1 } @{ $d->{eventsSupported} || [] };
    return CORE::join("\n",
        'keys=' . CORE::join(',', sort keys %$d),
        'websocketSupport=' . ($d->{websocketSupport} ? 'true' : 'false'),
        'webhookSupport=' . ($d->{webhookSupport} ? 'true' : 'false'),
        'fhircastVersion=' . $d->{fhircastVersion},
        'getCurrentSupport=' . ($d->{getCurrentSupport} ? 'true' : 'false'),
        'supportsGetCurrentContext=' . ($d->{capabilities}{supportsGetCurrentContext} ? 'true' : 'false'),
        'Patient-open=' . ($ev{'Patient-open'} ? 1 : 0),
        'Patient-close=' . ($ev{'Patient-close'} ? 1 : 0),
        'ImagingStudy-open=' . ($ev{'ImagingStudy-open'} ? 1 : 0),
        'DiagnosticReport-update=' . ($ev{'DiagnosticReport-update'} ? 1 : 0),
    ) . "\n";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: discovery document
--- request
GET /api/hub/.well-known/fhircast-configuration
--- response_headers
Content-Type: application/json
Access-Control-Allow-Origin: *
--- response_body_filters eval
\&main::discovery_facts
--- response_body
keys=capabilities,eventsSupported,fhirVersion,fhircastVersion,getCurrentSupport,webhookSupport,websocketSupport
websocketSupport=true
webhookSupport=false
fhircastVersion=3.0.0
getCurrentSupport=true
supportsGetCurrentContext=true
Patient-open=1
Patient-close=1
ImagingStudy-open=1
DiagnosticReport-update=0
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: discovery document, raw shape
--- request
GET /fhircast/hub/.well-known/fhircast-configuration
--- response_body_like: ^\{"eventsSupported":\["Patient-open",[^\]]*\],"websocketSupport":true,"webhookSupport":false,"fhircastVersion":"3\.0\.0","fhirVersion":"R4","getCurrentSupport":true,"capabilities":\{"supportsGetCurrentContext":true[^{}]*\}\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: HEAD on the discovery document
--- request
HEAD /api/hub/.well-known/fhircast-configuration
--- response_headers
Content-Type: application/json
--- response_body
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: POST to the discovery document is 405 with Allow
--- request
POST /api/hub/.well-known/fhircast-configuration
{"event":{"hub.event":"x"}}
--- more_headers
Content-Type: application/json
--- error_code: 405
--- response_headers_like
Allow: .*GET.*
Content-Type: application/json
Access-Control-Allow-Origin: \*
--- response_body_like: ^\{"error":"method POST is not allowed here"\}$
--- error_log
cast: 405 method POST is not allowed here
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 5: preflight on {base}
--- request
OPTIONS /api/hub
--- more_headers
Origin: https://viewer.example
Access-Control-Request-Method: POST
Access-Control-Request-Headers: content-type
--- error_code: 204
--- response_headers
Allow: POST, OPTIONS
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: POST, OPTIONS
Access-Control-Allow-Headers: Origin, X-Requested-With, Content-Type, Accept, Authorization
Access-Control-Max-Age: 3600
--- response_body
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: preflight on {base}/{topic} and on discovery, in both dialects
--- request eval
["OPTIONS /api/hub/some-topic", "OPTIONS /fhircast/hub/some-topic",
 "OPTIONS /api/hub/.well-known/fhircast-configuration"]
--- error_code eval
[204, 204, 204]
--- response_headers eval
[("Access-Control-Allow-Origin: *\nAccess-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\nAccess-Control-Max-Age: 3600") x 2,
 "Access-Control-Allow-Origin: *\nAccess-Control-Allow-Methods: GET, HEAD, OPTIONS\nAccess-Control-Max-Age: 3600"]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: a preflight with a body is still 204
--- request
OPTIONS /api/hub
{"ignored":true}
--- more_headers
Content-Type: application/json
--- error_code: 204
--- response_headers
Access-Control-Allow-Origin: *
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: cast_cors_origin with one origin
--- config
    location /api/hub { cast_hub; cast_cors_origin https://viewer.example; }
--- request eval
["OPTIONS /api/hub", "GET /api/hub/x", "GET /api/hub/a/b"]
--- error_code eval
[204, 200, 404]
--- response_headers eval
[("Access-Control-Allow-Origin: https://viewer.example") x 3]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: cast_cors_origin off: no CORS headers; the preflight keeps Allow
--- config
    location /api/hub { cast_hub; cast_cors_origin off; }
--- request
OPTIONS /api/hub
--- error_code: 204
--- response_headers
Allow: POST, OPTIONS
!Access-Control-Allow-Origin
!Access-Control-Allow-Methods
!Access-Control-Allow-Headers
!Access-Control-Max-Age
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: cast_cors_origin off: no Access-Control-Allow-Origin on answers and errors
--- config
    location /api/hub { cast_hub; cast_cors_origin off; }
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.topic=cors-t10&hub.events=a",
 "POST /api/hub\nhub.mode=nope",
 "GET /api/hub/cors-t10"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 400, 200]
--- response_headers eval
[("Content-Type: application/json\n!Access-Control-Allow-Origin") x 3]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: cast_cors_origin set at http level is inherited
--- http_config
    cast_cors_origin https://inherited.example;
--- config
    location /api/hub { cast_hub; }
    location /quiet/hub { cast_hub; cast_cors_origin off; }
--- request
GET /api/hub/cors-t11
--- response_headers
Access-Control-Allow-Origin: https://inherited.example
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 12: ... and a location can turn it off
--- http_config
    cast_cors_origin https://inherited.example;
--- config
    location /api/hub { cast_hub; }
    location /quiet/hub { cast_hub; cast_cors_origin off; }
--- request
GET /quiet/hub/cors-t12
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 13: every answer carries Access-Control-Allow-Origin: 202, 200, 400, 404, 405, 413, 415
--- http_config
    cast_max_message_size 128;
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.topic=cors-t12&hub.events=a",
 "GET /api/hub/cors-t12",
 "POST /api/hub\nhub.topic=cors-t12",
 "GET /api/hub/a/b",
 "GET /api/hub",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=cors-t12&hub.events=" . ("e" x 200),
 "POST /api/hub/cors-t12\nhub.event=x"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 200, 400, 404, 405, 413, 415]
--- response_headers eval
[("Content-Type: application/json\nAccess-Control-Allow-Origin: *") x 7]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 14: an unknown sub-path is 404
--- request
GET /api/hub/a/b
--- error_code: 404
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error":"no cast route at \\"/api/hub/a/b\\""\}$
--- error_log
cast: 404 no cast route at "/api/hub/a/b"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 15: a path that only starts like {base} is 404
--- request
POST /api/hubx
hub.mode=subscribe&hub.topic=t&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 404
--- response_body_like: ^\{"error":"no cast route at \\"/api/hubx\\""\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 16: other .well-known documents, a trailing slash after a topic, deeper paths are 404
--- request eval
["GET /api/hub/.well-known/other",
 "GET /api/hub/.well-known/fhircast-configuration/x",
 "GET /api/hub/topic/",
 "POST /api/hub/topic/extra\n{\"event\":{\"hub.event\":\"x\"}}",
 "DELETE /api/hub/a/b"]
--- more_headers
Content-Type: application/json
--- error_code eval
[404, 404, 404, 404, 404]
--- response_body_like eval
[('^\{"error":"no cast route at .*"\}$') x 5]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 17: GET {base} is 405 with Allow
--- request
GET /api/hub
--- error_code: 405
--- response_headers
Allow: POST, OPTIONS
Content-Type: application/json
Access-Control-Allow-Origin: *
--- response_body_like: ^\{"error":"method GET is not allowed here"\}$
--- error_log
cast: 405 method GET is not allowed here
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 18: PUT and PATCH are 405 on every route
--- request eval
["PUT /api/hub\nx=1", "PUT /api/hub/t17\n{}", "PATCH /api/hub/t17\n{}",
 "PUT /api/hub/.well-known/fhircast-configuration\n{}"]
--- error_code eval
[405, 405, 405, 405]
--- response_headers_like eval
[("Allow: .+") x 4]
--- response_body_like eval
['^\{"error":"method PUT is not allowed here"\}$', '^\{"error":"method PUT is not allowed here"\}$',
 '^\{"error":"method PATCH is not allowed here"\}$', '^\{"error":"method PUT is not allowed here"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 19: DELETE {base}/{topic} is 405
--- request
DELETE /api/hub/t18
--- error_code: 405
--- response_headers_like
Allow: .+
--- response_body_like: ^\{"error":"method DELETE is not allowed here"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 20: the Allow of a 405 on {base}/{topic} does not offer the refused DELETE
--- request
DELETE /api/hub/t19
--- error_code: 405
--- response_headers_like
Allow: (?!.*DELETE).*GET.*
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 21: the Allow of a 405 on the discovery document does not offer the refused POST
--- request
POST /api/hub/.well-known/fhircast-configuration
--- error_code: 405
--- response_headers_like
Allow: (?!.*POST).*GET.*
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 22: no cast_cors_origin: no CORS header on any answer (202, 200, 400, 404, 405, 413, 415)
--- config
    location /api/hub { cast_hub; }
--- http_config
    cast_max_message_size 128;
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.topic=cors-t22&hub.events=a",
 "GET /api/hub/cors-t22",
 "POST /api/hub\nhub.topic=cors-t22",
 "GET /api/hub/a/b",
 "GET /api/hub",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=cors-t22&hub.events=" . ("e" x 200),
 "POST /api/hub/cors-t22\nhub.event=x",
 "GET /api/hub/.well-known/fhircast-configuration"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
Origin: https://evil.example
--- error_code eval
[202, 200, 400, 404, 405, 413, 415, 200]
--- response_headers eval
[("Content-Type: application/json\n!Access-Control-Allow-Origin\n!Access-Control-Allow-Methods") x 8]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 23: no cast_cors_origin: a cross-origin preflight gets Allow but no Access-Control-* header
--- config
    location /api/hub { cast_hub; }
--- request eval
["OPTIONS /api/hub", "OPTIONS /api/hub/some-topic",
 "OPTIONS /api/hub/.well-known/fhircast-configuration"]
--- more_headers
Origin: https://evil.example
Access-Control-Request-Method: DELETE
--- error_code eval
[204, 204, 204]
--- response_headers eval
[map { "Allow: $_\n!Access-Control-Allow-Origin\n!Access-Control-Allow-Methods\n!Access-Control-Allow-Headers\n!Access-Control-Max-Age" }
 "POST, OPTIONS", "GET, HEAD, POST, OPTIONS", "GET, HEAD, OPTIONS"]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 24: cast_status sends no CORS header either
--- config
    location = /cast/status { cast_status; }
--- request
GET /cast/status
--- more_headers
Origin: https://evil.example
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 25: with cast_reset on, Allow and the preflight's Allow-Methods offer DELETE on {base} only
--- config
    location /api/hub { cast_hub; cast_reset on; cast_cors_origin https://admin.example; }
--- request eval
["OPTIONS /api/hub", "OPTIONS /api/hub/t25", "GET /api/hub"]
--- error_code eval
[204, 204, 405]
--- response_headers eval
["Allow: POST, DELETE, OPTIONS\nAccess-Control-Allow-Origin: https://admin.example\nAccess-Control-Allow-Methods: POST, DELETE, OPTIONS",
 "Allow: GET, HEAD, POST, OPTIONS\nAccess-Control-Allow-Methods: GET, HEAD, POST, OPTIONS",
 "Allow: POST, DELETE, OPTIONS"]
--- no_error_log
[alert]
[crit]
[emerg]
signal
