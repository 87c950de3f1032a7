# Publish (SPEC 2.2): POST {base} with a JSON "event", POST {base}/{topic};
# both dialects; every validation error; size limits.

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

# a JSON event body of exactly $len bytes (padding in an extra key)
sub event_of_size {
    my ($len, $topic) = @_;
    my $head = qq({"event":{"hub.topic":"$topic","hub.event":"e"},"pad":");
    my $tail = qq("});
    return $head . ('x' x ($len - length($head) - length($tail))) . $tail;
}

# a publish body whose hub.event holds a JSON-escaped control character
our @CTL = ('\n', '\r', '\t', '\u0000', '\u001f', '\u007f');

sub ctl_event {
    my ($esc, $topic) = @_;
    return '{"timestamp":"2026-12-03T06:12:19.123Z","id":"ev-ctl","event":{'
           . (defined $topic ? qq("hub.topic":"$topic",) : '')
           . qq("hub.event":"patient-open${esc}NOT JSON","context":)
           . '[{"key":"patient","resource":{"resourceType":"Patient","id":"p1"}}]}}';
}

# the 400 body: names hub.event (a NUL is already refused by the JSON parser)
sub ctl_error {
    my ($esc) = @_;
    return $esc eq '\u0000' ? '^\{"error":"invalid JSON: .*"\}$'
                             : '^\{"error":".*hub\.event.*"\}$';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: cast: POST {base} with an event: 200 {"status":"received"}
--- request
POST /api/hub
{"timestamp":"2026-12-03T06:12:19.123Z","id":"ev-1","event":{"hub.topic":"pub-t1","hub.event":"Patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p1"}}]}}
--- more_headers
Content-Type: application/json
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: cast: POST {base}/{topic}, no id, no timestamp, no context
--- request
POST /api/hub/pub-t2
{"event":{"hub.event":"annotation-update"}}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: accepted events are counted in events_in
--- request eval
['POST /api/hub
{"event":{"hub.topic":"pub-t3","hub.event":"a"}}',
'POST /api/hub/pub-t3
{"event":{"hub.event":"b"}}',
'POST /api/hub/pub-t3
{"event":{"hub.event":""}}',
'GET /cast/status']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 400, 200]
--- response_body_like eval
['^\{"status":"received"\}$',
 '^\{"status":"received"\}$',
 '^\{"error":".*hub\.event.*"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":2,"events_out":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: application/fhir+json with a charset parameter
--- request
POST /api/hub/pub-t4
{"event":{"hub.event":"Patient-close","context":[]}}
--- more_headers
Content-Type: application/fhir+json; charset=utf-8
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 5: application/json with a charset parameter and odd case
--- request
POST /api/hub/pub-t5
{"event":{"hub.event":"x","context":{"k":"v"}}}
--- more_headers
Content-Type: Application/JSON ; charset=UTF-8
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: the path topic and the same event["hub.topic"]
--- request
POST /api/hub/pub-t6
{"event":{"hub.topic":"pub-t6","hub.event":"x"}}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: a context of null counts as absent; extra keys are fine
--- request
POST /api/hub/pub-t7
{"event":{"hub.event":"x","context":null,"extra":[1,2,3]},"other":{"a":true}}
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: fhircast: a complete event: 202 {}
--- request
POST /fhircast/hub
{"timestamp":"2026-12-03T06:12:19.123Z","id":"ev-8","event":{"hub.topic":"pub-t8","hub.event":"Patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p1"}}]}}
--- more_headers
Content-Type: application/json
--- error_code: 202
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: fhircast: POST {base}/{topic}
--- request
POST /fhircast/hub/pub-t9
{"timestamp":"2026-12-03T06:12:19.123Z","id":"ev-9","event":{"hub.event":"Patient-close","context":[]}}
--- more_headers
Content-Type: application/fhir+json
--- error_code: 202
--- response_body_like: ^\{\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: a JSON body at {base} with neither hub.mode nor event
--- request
POST /api/hub
{"hub.topic":"pub-t10","hub.event":"x"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"expected \\"hub\.mode\\" \(subscribe, unsubscribe\) or \\"event\\" \(publish\)"\}$
--- error_log
cast: 400 expected "hub.mode"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: missing "event" at {base}/{topic}
--- request
POST /api/hub/pub-t11
{"hub.event":"x"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"missing \\"event\\""\}$
--- error_log
cast: 400 missing "event"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 12: "event" that is not an object: string, array, null, number
--- request eval
[map { "POST /api/hub/pub-t12\n{\"event\":$_}" } '"Patient-open"', '[]', 'null', '1']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"\\\\"event\\\\" must be a JSON object"\}$') x 4]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 13: missing event["hub.event"]
--- request
POST /api/hub/pub-t13
{"event":{"hub.topic":"pub-t13","context":{}}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"missing event\[\\"hub\.event\\"\]"\}$
--- error_log
cast: 400 missing event["hub.event"]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 14: event["hub.event"] empty, not a string, or longer than 256 bytes
--- request eval
[map { "POST /api/hub/pub-t14\n{\"event\":{\"hub.event\":$_}}" } '""', '5', 'null', '["a"]', '"' . ("n" x 257) . '"']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"event\[\\\\"hub\.event\\\\"\] must be a non-empty string of at most 256 bytes"\}$') x 5]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 15: a 256-byte event name is accepted
--- request eval
"POST /api/hub/pub-t15\n{\"event\":{\"hub.event\":\"" . ("n" x 256) . "\"}}"
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 16: the path topic differs from event["hub.topic"]
--- request
POST /api/hub/alice
{"event":{"hub.topic":"bob","hub.event":"x"}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"the topic in the path \\"alice\\" differs from event\[\\"hub\.topic\\"\] \\"bob\\""\}$
--- error_log
cast: 400 the topic in the path "alice" differs from event["hub.topic"] "bob"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 17: no topic at all (POST {base})
--- request
POST /api/hub
{"event":{"hub.event":"x"}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"missing event\[\\"hub\.topic\\"\]"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 18: event["hub.topic"] empty, not a string, longer than 1024 bytes
--- request eval
[map { "POST /api/hub\n{\"event\":{\"hub.event\":\"x\",\"hub.topic\":$_}}" } '""', '7', '"' . ("t" x 1025) . '"']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[('^\{"error":"event\[\\\\"hub\.topic\\\\"\] must be a non-empty string of at most 1024 bytes"\}$') x 3]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 19: events cannot be published to the topic "*" (body or path)
--- request eval
['POST /api/hub
{"event":{"hub.topic":"*","hub.event":"x"}}',
'POST /api/hub/*
{"event":{"hub.event":"x"}}']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400]
--- response_body_like eval
['^\{"error":"[^"]*topic \\\\"\*\\\\""\}$',
 '^\{"error":"[^"]*topic \\\\"\*\\\\""\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 20: cast: a context that is neither object nor array of objects
--- request eval
[map { "POST /api/hub/pub-t20\n{\"event\":{\"hub.event\":\"x\",\"context\":$_}}" } '"patient"', '42', 'true', '[1,"x",null]', '[{},[]]']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"event\[\\\\"context\\\\"\] must be an object or an array of objects"\}$') x 5]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 21: fhircast: the context must be an array of objects (object, missing, string, array of strings)
--- request eval
[map { "POST /fhircast/hub/pub-t21\n{\"id\":\"1\",\"timestamp\":\"2026-12-03T06:12:19.123Z\",\"event\":{\"hub.event\":\"x\"$_}}" } ',"context":{}', '', ',"context":"p"', ',"context":["p"]']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"event\[\\\\"context\\\\"\] must be an array of objects"\}$') x 4]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 22: fhircast: missing "id"
--- request
POST /fhircast/hub/pub-t22
{"timestamp":"2026-12-03T06:12:19.123Z","event":{"hub.event":"x","context":[]}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"missing \\"id\\""\}$
--- error_log
cast: 400 missing "id"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 23: fhircast: missing "timestamp"
--- request
POST /fhircast/hub/pub-t23
{"id":"ev-23","event":{"hub.event":"x","context":[]}}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"missing \\"timestamp\\""\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 24: "id" and "timestamp" must be non-empty strings (both dialects)
--- request eval
['POST /api/hub/pub-t24
{"id":"","event":{"hub.event":"x"}}',
'POST /api/hub/pub-t24
{"id":17,"event":{"hub.event":"x"}}',
'POST /api/hub/pub-t24
{"timestamp":"","event":{"hub.event":"x"}}',
'POST /fhircast/hub/pub-t24
{"id":"1","timestamp":false,"event":{"hub.event":"x","context":[]}}',
'POST /fhircast/hub/pub-t24
{"id":null,"timestamp":"t","event":{"hub.event":"x","context":[]}}']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
['^\{"error":"\\\\"id\\\\" must be a non-empty string"\}$',
 '^\{"error":"\\\\"id\\\\" must be a non-empty string"\}$',
 '^\{"error":"\\\\"timestamp\\\\" must be a non-empty string"\}$',
 '^\{"error":"\\\\"timestamp\\\\" must be a non-empty string"\}$',
 '^\{"error":"\\\\"id\\\\" must be a non-empty string"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 25: a form body to {base}/{topic} is 415
--- request
POST /api/hub/pub-t25
hub.event=x
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 415
--- response_body_like: ^\{"error":"events must be sent as application/json"\}$
--- error_log
cast: 415 events must be sent as application/json
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 26: text/plain is 415 at {base} and at {base}/{topic}; no Content-Type at {base}/{topic} too
--- request eval
['POST /api/hub
{"event":{"hub.topic":"pub-t26","hub.event":"x"}}',
'POST /api/hub/pub-t26
{"event":{"hub.event":"x"}}',
'POST /api/hub/pub-t26
{"event":{"hub.event":"x"}}',
'POST /fhircast/hub/pub-t26
{"event":{"hub.event":"x"}}']
--- more_headers eval
["Content-Type: text/plain", "Content-Type: text/plain", "", "Content-Type: application/xml"]
--- error_code eval
[415, 415, 415, 415]
--- response_body_like eval
[('^\{"error":"unsupported Content-Type.*"\}$') x 4]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 27: a body above cast_max_message_size (Content-Length): 413 JSON
--- http_config
    cast_max_message_size 1k;
--- request eval
"POST /api/hub/pub-t27\n" . main::event_of_size(1025, 'pub-t27')
--- more_headers
Content-Type: application/json
--- error_code: 413
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"error":"the request body exceeds cast_max_message_size \(1024 bytes\)"\}$
--- error_log
cast: 413 the request body exceeds cast_max_message_size (1024 bytes)
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 28: a body of exactly cast_max_message_size is accepted
--- http_config
    cast_max_message_size 1k;
--- request eval
"POST /api/hub/pub-t28\n" . main::event_of_size(1024, 'pub-t28')
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 29: a chunked body above cast_max_message_size: 413 JSON
--- http_config
    cast_max_message_size 1k;
--- request eval
my $body = main::event_of_size(1500, 'pub-t29');
"POST /api/hub/pub-t29\n" . sprintf("%x\r\n%s\r\n", 700, substr($body, 0, 700))
    . sprintf("%x\r\n%s\r\n", 800, substr($body, 700)) . "0\r\n\r\n"
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- error_code: 413
--- response_body_like: ^\{"error":"the request body exceeds cast_max_message_size \(1024 bytes\)"\}$
--- no_error_log
cast: 400
header already sent
[alert]
[crit]
[emerg]
signal



=== TEST 30: a chunked body below the limit is accepted
--- request eval
my $body = '{"event":{"hub.topic":"pub-t30","hub.event":"chunked"}}';
"POST /api/hub\n" . sprintf("%x\r\n%s\r\n", 10, substr($body, 0, 10))
    . sprintf("%x\r\n%s\r\n", length($body) - 10, substr($body, 10)) . "0\r\n\r\n"
--- more_headers
Content-Type: application/json
Transfer-Encoding: chunked
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 31: cast_max_message_size applies to subscriptions too
--- http_config
    cast_max_message_size 128;
--- request eval
"POST /api/hub\nhub.mode=subscribe&hub.topic=pub-t31&hub.events=a&subscriber.name=" . ("n" x 200)
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 413
--- response_body_like: ^\{"error":"the request body exceeds cast_max_message_size \(128 bytes\)"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 32: nginx's smaller client_max_body_size answers first (nginx's own 413)
--- config
    location /api/hub { cast_hub; client_max_body_size 1k; }
--- request eval
"POST /api/hub/pub-t32\n" . main::event_of_size(2048, 'pub-t32')
--- more_headers
Content-Type: application/json
--- error_code: 413
--- response_body_like: <html>.*413
--- error_log
client intended to send too large body
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 33: a large event (1 MiB, buffered to a temp file) is accepted
--- request eval
"POST /api/hub/pub-t33\n" . main::event_of_size(1024 * 1024, 'pub-t33')
--- more_headers
Content-Type: application/json
--- response_body_like: ^\{"status":"received"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 34: a path topic longer than 1024 bytes is refused like a body topic (nothing stored)
--- request eval
["POST /api/hub/" . ("t" x 1025) . "\n{\"event\":{\"hub.event\":\"x\",\"context\":{\"a\":1}}}",
 "GET /cast/status"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 200]
--- response_body_like eval
['^\{"error":".*hub\.topic.*1024.*"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 35: control characters in hub.event are refused (event names are tokens, SPEC 4), logged at info
--- request eval
[map { "POST /api/hub/pub-t35\n{\"event\":{\"hub.event\":\"$_\",\"context\":{}}}" }
 'patient-open\\nNOT JSON', 'a\\u0001', 'a\\u001f', 'a\\u007f', 'a\\tb', '\\r']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[('^\{"error":"event\[\\\\"hub\.event\\\\"\] holds a control character"\}$') x 6]
--- error_log eval
qr/\[info\] .*cast: 400 event\["hub\.event"\] holds a control character/
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 36: a comma or an edge space in hub.event is refused; an inner space is accepted
--- request eval
[map { "POST /api/hub/pub-t36\n{\"event\":{\"hub.event\":\"$_\",\"context\":{}}}" }
 'a,b', ' a', 'a ', 'patient open']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 200]
--- response_body_like eval
['^\{"error":"event\[\\\\"hub\.event\\\\"\] holds a comma \(an event name is one item of a hub\.events list\)"\}$',
 '^\{"error":"event\[\\\\"hub\.event\\\\"\] begins or ends with a space"\}$',
 '^\{"error":"event\[\\\\"hub\.event\\\\"\] begins or ends with a space"\}$',
 '^\{"status":"received"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 37: a path topic that is not UTF-8 is a 400 with the JSON error body, not nginx's 500 page (issue 13.7)
--- request eval
["POST /api/hub/%E2%82
{\"event\":{\"hub.event\":\"patient-open\",\"context\":[]}}",
"POST /api/hub/%FF
{\"event\":{\"hub.event\":\"patient-open\",\"hub.topic\":\"x\",\"context\":[]}}",
"POST /fhircast/hub/%E2%82
{\"id\":\"1\",\"timestamp\":\"2026-12-03T06:12:19.123Z\",\"event\":{\"hub.event\":\"patient-open\",\"context\":[]}}",
"GET /cast/status"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 200]
--- response_headers eval
[("Content-Type: application/json") x 4]
--- response_body_like eval
[('^\{"error":"the topic in the path is not valid UTF-8"\}$') x 3,
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":0,']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 38: GET {base}/{topic} with a topic that is not UTF-8: 400
--- request eval
["GET /api/hub/%E2%82", "GET /fhircast/hub/bad%FFtopic"]
--- error_code eval
[400, 400]
--- response_body_like eval
[('^\{"error":"hub\.topic is not valid UTF-8"\}$') x 2]
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 39: topics hold no "/": a body topic with "/" is refused, and {base}/a%2Fb is not a topic route
--- request eval
["POST /api/hub
{\"event\":{\"hub.event\":\"x\",\"hub.topic\":\"a/b\",\"context\":{}}}",
"POST /api/hub/a%2Fb
{\"event\":{\"hub.event\":\"x\",\"context\":{}}}",
"GET /api/hub/a%2Fb"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 404, 404]
--- response_body_like eval
['^\{"error":"event\[\\\\"hub\.topic\\\\"\] holds a \\\\"/\\\\" \(a topic must fit one path segment, \{base\}/\{topic\}\)"\}$',
 '^\{"error":"no cast route at \\\\"/api/hub/a/b\\\\""\}$',
 '^\{"error":"no cast route at \\\\"/api/hub/a/b\\\\""\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 40: cast: a context that is not an object or an array of objects is neither stored nor replayed
--- request eval
["POST /api/hub/pub-t40
{\"event\":{\"hub.event\":\"patient-open\",\"context\":[{\"key\":\"patient\"}]}}",
"POST /api/hub/pub-t40
{\"event\":{\"hub.event\":\"patient-open\",\"context\":[1,\"x\",null]}}",
"GET /api/hub/pub-t40"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 400, 200]
--- response_body_like eval
['^\{"status":"received"\}$',
 '^\{"error":"event\[\\\\"context\\\\"\] must be an object or an array of objects"\}$',
 '^\[\{"key":"patient"\}\]$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 41: a control character in hub.event is refused 400 in both dialects (event names are tokens); nothing is stored
--- request eval
[(map { "POST /api/hub/pub-t35\n" . main::ctl_event($_) } @main::CTL),
 (map { "POST /fhircast/hub\n" . main::ctl_event($_, 'pub-t35') } @main::CTL),
 "GET /api/hub/pub-t35"]
--- more_headers
Content-Type: application/json
--- error_code eval
[(400) x (2 * @main::CTL), 200]
--- response_body_like eval
[(map { main::ctl_error($_) } @main::CTL, @main::CTL), '^\{\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 42: an error quoting a long multibyte topic is cut between characters (it lost its reason)
--- request eval
"POST /api/hub/x\n{\"event\":{\"hub.event\":\"x\",\"hub.topic\":\"" . ("\xc3\xa9" x 300) . "\"}}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"the topic in the path \\"x\\" differs from event\[\\"hub\.topic\\"\] \\"(\xc3\xa9)+\\?"\}$
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal
