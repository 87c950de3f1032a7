# Hostile JSON bodies (SPEC 2.2 limits): every one is a 400 with the
# parser's reason and position; nothing crashes, nothing is published.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);
use CastMode;

our $HubConfig = <<'_EOC_';
    location /api/hub { cast_hub; }
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $HubConfig) if !defined $block->config;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: truncated JSON
--- request
POST /api/hub/js-t1
{"event":{"hub.event":"x","context":[
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"error":"invalid JSON: .* at line 1, column \d+"\}$
--- error_log
cast: 400 invalid JSON:
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: trailing garbage after the object
--- request
POST /api/hub/js-t2
{"event":{"hub.event":"x"}} {"event":{"hub.event":"y"}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: end of file expected.* at line 1, column \d+"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: the line and column point at the fault (line 3)
--- request eval
"POST /api/hub/js-t3\n{\n\"event\": {\n  \"hub.event\": x\n}}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .* at line 3, column \d+"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: invalid UTF-8 in a string (0xff, an overlong "/", a lone continuation byte)
--- request eval
["POST /api/hub/js-t4\n{\"event\":{\"hub.event\":\"a\xffb\"}}",
 "POST /api/hub/js-t4\n{\"event\":{\"hub.event\":\"a\xc0\xafb\"}}",
 "POST /api/hub/js-t4\n{\"event\":{\"hub.event\":\"a\x80b\"}}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[('^\{"error":"invalid JSON: .* at line 1, column \d+"\}$') x 3]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 5: a NUL escape \u0000 in a string
--- request
POST /api/hub/js-t5
{"event":{"hub.event":"Patient\u0000-open"}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .*u0000.* at line 1, column \d+"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: a NUL escape in a JSON subscription (cast)
--- request
POST /api/hub
{"hub.mode":"subscribe","hub.topic":"js\u0000t6","hub.events":"a"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .*u0000.*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: a raw control character and a raw NUL byte inside a string
--- request eval
["POST /api/hub/js-t7\n{\"event\":{\"hub.event\":\"a\x01b\"}}",
 "POST /api/hub/js-t7\n{\"event\":{\"hub.event\":\"a\x00b\"}}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400]
--- response_body_like eval
[('^\{"error":"invalid JSON: .* at line 1, column \d+"\}$') x 2]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: a lone UTF-16 surrogate escape
--- request
POST /api/hub/js-t8
{"event":{"hub.event":"\ud800"}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: duplicate keys (top level and nested)
--- request eval
['POST /api/hub/js-t9
{"event":{"hub.event":"x"},"event":{"hub.event":"y"}}',
'POST /api/hub/js-t9
{"event":{"hub.event":"x","hub.event":"y"}}']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400]
--- response_body_like eval
[('^\{"error":"invalid JSON: duplicate object key.* at line 1, column \d+"\}$') x 2]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: 10,000 nested arrays
--- request eval
"POST /api/hub/js-t10\n" . ("[" x 10000) . ("]" x 10000)
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: maximum parsing depth reached.* at line 1, column \d+"\}$
--- error_log
maximum parsing depth reached
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: 10,000 nested objects inside an event
--- request eval
"POST /api/hub/js-t11\n{\"event\":{\"hub.event\":\"x\",\"context\":" . ('{"a":' x 10000) . '1' . ('}' x 10000) . "}}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: maximum parsing depth reached.*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 12: an unterminated 10,000-deep nesting
--- request eval
"POST /api/hub/js-t12\n" . ('{"a":[' x 5000)
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 13: a deep but legal context (1,000 levels) is accepted and kept
--- request eval
["POST /api/hub/js-t13\n{\"event\":{\"hub.event\":\"x\",\"context\":" . ('{"a":[' x 500) . '1' . (']}' x 500) . "}}",
 "GET /api/hub/js-t13"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
['^\{"status":"received"\}$', '^(\{"a":\[){500}1(\]\}){500}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 14: numbers out of range: 1e400, -1e400, 99999999999999999999999
--- request eval
[map { "POST /api/hub/js-t14\n{\"event\":{\"hub.event\":\"x\",\"n\":$_}}" } '1e400', '-1e400', '99999999999999999999999']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['^\{"error":"invalid JSON: real number overflow.*"\}$',
 '^\{"error":"invalid JSON: real number overflow.*"\}$',
 '^\{"error":"invalid JSON: too big integer.*"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 15: NaN, Infinity, single quotes, comments, trailing commas are not JSON
--- request eval
[map { "POST /api/hub/js-t15\n$_" }
 '{"event":{"hub.event":"x","n":NaN}}',
 '{"event":{"hub.event":"x","n":Infinity}}',
 "{'event':{'hub.event':'x'}}",
 '{"event":{"hub.event":"x"} /* c */}',
 '{"event":{"hub.event":"x",}}']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"invalid JSON: .* at line 1, column \d+"\}$') x 5]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 16: a JSON array at {base}/{topic} and at {base}
--- request eval
['POST /api/hub/js-t16
[{"event":{"hub.event":"x"}}]',
'POST /api/hub
[]']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400]
--- response_body_like eval
['^\{"error":"[^"]*must be a JSON object"\}$',
 '^\{"error":"[^"]*must be a JSON object"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 17: JSON scalars (a string, a number, null, true) are "not an object"
--- request eval
[map { "POST /api/hub/js-t17\n$_" } '"x"', '1', 'null', 'true']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"[^"]*must be a JSON object"\}$') x 4]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 18: an empty JSON body (Content-Length: 0)
--- request
POST /api/hub/js-t18
--- more_headers
Content-Type: application/json
Content-Length: 0
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .* at line 1, column \d+"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 19: a JSON body without Content-Length
--- request
POST /api/hub/js-t19
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"invalid JSON: .* at line 1, column \d+"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 20: the error message quoting invalid UTF-8 is still valid JSON
--- request eval
"POST /api/hub/\xff\xfe\n{\"event\":{\"hub.topic\":\"b\",\"hub.event\":\"x\"}}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_filters eval
sub { my $d = eval { CastTest::json_decode($_[0]) }; ($d && defined $d->{error} ? "valid JSON error" : "not JSON: $_[0]") . "\n" }
--- response_body
valid JSON error
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 21: nothing hostile was counted as published
--- request eval
['POST /api/hub/js-t21
{"event":{"hub.event":"x"},"event":{"hub.event":"y"}}',
"POST /api/hub/js-t21\n" . ("[" x 10000) . ("]" x 10000),
'POST /api/hub/js-t21
{"event":{"hub.event":"x","n":1e400}}',
'GET /cast/status']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 200]
--- response_body_like eval
['^\{"error":"invalid JSON', '^\{"error":"invalid JSON', '^\{"error":"invalid JSON',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 22: fhircast dialect: the same parser errors
--- request eval
['POST /fhircast/hub/js-t22
{"id":"1","timestamp":"t","event":{"hub.event":"x","context":[]}',
"POST /fhircast/hub/js-t22\n" . ("[" x 10000) . ("]" x 10000)]
--- more_headers
Content-Type: application/fhir+json
--- error_code eval
[400, 400]
--- response_body_like eval
['^\{"error":"invalid JSON: .* at line 1, column \d+"\}$',
 '^\{"error":"invalid JSON: maximum parsing depth reached.*"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 23: escaped control characters in names: 400; \u0000 is invalid JSON already; nothing published
--- request eval
["POST /api/hub/js-t23\n{\"event\":{\"hub.event\":\"a\\u0000\"}}",
 "POST /api/hub/js-t23\n{\"event\":{\"hub.event\":\"a\\u001b[31m\"}}",
 "POST /api/hub\n{\"event\":{\"hub.event\":\"a\",\"hub.topic\":\"t\\u0085\\u007f\"}}",
 "POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"js-t23\",\"hub.events\":\"a\",\"subscriber.name\":\"\\u001b]0;x\\u0007\"}",
 "GET /cast/status"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_like eval
['^\{"error":"invalid JSON: .* at line 1, column \d+"\}$',
 '^\{"error":"event\[\\\\"hub\.event\\\\"\] holds a control character"\}$',
 '^\{"error":"event\[\\\\"hub\.topic\\\\"\] holds a control character"\}$',
 '^\{"error":"subscriber\.name holds a control character"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":0,']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 24: a JSON subscription with four 1 MB-class fields is refused at once (it pinned memory for the bind timeout)
--- request eval
"POST /api/hub
{\"hub.mode\":\"subscribe\",\"hub.topic\":\"js-t24\",\"hub.events\":\"a\",\"hub.callback\":\"" . ("c" x 250000) . "\",\"subscriber.actors\":\"" . ("a" x 250000) . "\",\"subscriber.client_info\":\"" . ("i" x 250000) . "\",\"subscriber.name\":\"" . ("n" x 250000) . "\"}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.callback\\" is too long"\}$
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal
