# POST {base} unsubscribe (SPEC 2.1) in both dialects, and DELETE {base}
# reset (SPEC 2.5).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);
use CastMode;

our $HubConfig = <<'_EOC_';
    location /api/hub { cast_hub; cast_reset on; }
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $HubConfig) if !defined $block->config;
});

# helpers for "--- init" scenarios (init code runs in another package)
sub req {
    my ($method, $path, $body, $type) = @_;
    my ($code, undef, $resp) = CastTest::http_request($method, $path, $body,
        defined $body ? ('Content-Type' => $type || 'application/x-www-form-urlencoded') : ());
    return ($code, $resp);
}

# subscribes; returns the endpoint URL
sub subscribe {
    my ($path, $form) = @_;
    my ($code, $resp) = req('POST', $path, "hub.mode=subscribe&$form");
    Test::More::is($code, 202, "003 init: subscribe ($form) answers 202");
    my $d = eval { CastTest::json_decode($resp) };
    return ref $d eq 'HASH' ? $d->{'hub.channel.endpoint'} : '';
}

sub id_of { my ($id) = $_[0] =~ m{/bind/([0-9a-f]{32})$}; $id }

no_shuffle();
run_tests();

__DATA__

=== TEST 1: cast: unsubscribe with the endpoint URL: 202 with status and removed
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t1&hub.events=a');
my ($code, $resp) = main::req('POST', '/api/hub', "hub.mode=unsubscribe&hub.channel.endpoint=$ep");
Test::More::is($code, 202, '003 init: unsubscribe 202');
Test::More::is($resp, qq({"hub.channel.endpoint":"$ep","status":"unsubscribed","removed":1}), '003 init: unsubscribe reply');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "uns-t1" ended: unsubscribed/
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: cast: unsubscribe with the bare id and the right hub.topic
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t2&hub.events=a');
main::subscribe('/api/hub', 'hub.topic=uns-t2&hub.events=b');
my $id = main::id_of($ep);
my ($code, $resp) = main::req('POST', '/api/hub', "hub.mode=unsubscribe&hub.topic=uns-t2&hub.channel.endpoint=$id");
Test::More::is($code, 202, '003 init: unsubscribe by id 202');
Test::More::like($resp, qr/^\{"hub\.channel\.endpoint":"\Q$ep\E","status":"unsubscribed","removed":1\}$/, '003 init: reply names the full endpoint');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: an endpoint can be unsubscribed once; the second time is 404
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t3&hub.events=a');
my ($code, $resp) = main::req('POST', '/api/hub', "hub.mode=unsubscribe&hub.channel.endpoint=$ep");
Test::More::is($code, 202, '003 init: first unsubscribe 202');
($code, $resp) = main::req('POST', '/api/hub', "hub.mode=unsubscribe&hub.channel.endpoint=$ep");
Test::More::is($code, 404, '003 init: second unsubscribe 404');
Test::More::like($resp, qr/^\{"error":"unknown hub\.channel\.endpoint.*"\}$/, '003 init: 404 body');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,
--- error_log
cast: 404 unknown hub.channel.endpoint
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: unsubscribe naming another topic than the endpoint's: 404, nothing removed
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t4&hub.events=a');
my ($code, $resp) = main::req('POST', '/api/hub', "hub.mode=unsubscribe&hub.topic=someone-else&hub.channel.endpoint=$ep");
Test::More::is($code, 404, '003 init: other topic 404');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,
--- no_error_log
ended: unsubscribed
[alert]
[crit]
[emerg]
signal



=== TEST 5: unsubscribe an unknown endpoint (cast)
--- request
POST /api/hub
hub.mode=unsubscribe&hub.channel.endpoint=ws://localhost/bind/0123456789abcdef0123456789abcdef
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 404
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"error":"unknown hub\.channel\.endpoint"\}$
--- error_log
cast: 404 unknown hub.channel.endpoint
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: unsubscribe an endpoint that is not even an id (cast)
--- request
POST /api/hub
hub.mode=unsubscribe&hub.channel.endpoint=ws://localhost/bind/nope
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 404
--- response_body_like: ^\{"error":"unknown hub\.channel\.endpoint"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: fhircast: unsubscribe with topic and endpoint: 202 {"hub.channel.endpoint"} only
--- init
my $ep = main::subscribe('/fhircast/hub', 'hub.channel.type=websocket&hub.topic=uns-t7&hub.events=Patient-open');
my ($code, $resp) = main::req('POST', '/fhircast/hub', "hub.mode=unsubscribe&hub.channel.type=websocket&hub.topic=uns-t7&hub.events=Patient-open&hub.channel.endpoint=$ep");
Test::More::is($code, 202, '003 init: fhircast unsubscribe 202');
Test::More::is($resp, qq({"hub.channel.endpoint":"$ep"}), '003 init: fhircast unsubscribe reply');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- error_log
on topic "uns-t7" ended: unsubscribed
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: fhircast: unsubscribe without hub.topic is 400 (nothing removed)
--- init
main::subscribe('/fhircast/hub', 'hub.channel.type=websocket&hub.topic=uns-t8&hub.events=a');
--- request eval
["POST /fhircast/hub
hub.mode=unsubscribe&hub.channel.type=websocket&hub.channel.endpoint=ws://localhost/bind/0123456789abcdef0123456789abcdef",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 200]
--- response_body_like eval
['^\{"error":"missing hub\.topic"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: fhircast: unsubscribe without hub.channel.endpoint is 400
--- request
POST /fhircast/hub
hub.mode=unsubscribe&hub.channel.type=websocket&hub.topic=uns-t9&hub.callback=cb
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.channel\.endpoint"\}$
--- error_log
cast: 400 missing hub.channel.endpoint
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: fhircast: unsubscribe an unknown endpoint is 404
--- request
POST /fhircast/hub
hub.mode=unsubscribe&hub.channel.type=websocket&hub.topic=uns-t10&hub.channel.endpoint=0123456789abcdef0123456789abcdef
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 404
--- response_body_like: ^\{"error":"unknown hub\.channel\.endpoint"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: cast: unsubscribe by subscriber.name removes that topic's matches only
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t11&hub.events=a&subscriber.name=alice",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t11&hub.events=b&subscriber.name=alice",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t11&hub.events=a&subscriber.name=bob",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t11-other&hub.events=a&subscriber.name=alice",
"POST /api/hub
hub.mode=unsubscribe&hub.topic=uns-t11&subscriber.name=alice",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 202, 202, 202, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"status":"unsubscribed","removed":2\}$',
 '^\{"mode":"local","connections":0,"subscriptions":2,"topics":2,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 12: cast: hub.callback wins over subscriber.name
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t12&hub.events=a&subscriber.name=x&hub.callback=cb1",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t12&hub.events=a&subscriber.name=x&hub.callback=cb2",
"POST /api/hub
hub.mode=unsubscribe&hub.topic=uns-t12&subscriber.name=x&hub.callback=cb1",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 202, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"status":"unsubscribed","removed":1\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 13: cast: removing every subscription of a topic frees the topic
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t13&hub.events=a&subscriber.name=n",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t13&hub.events=b&subscriber.name=n",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t13&hub.events=c&subscriber.name=n",
"POST /api/hub
hub.mode=unsubscribe&hub.topic=uns-t13&subscriber.name=n",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 202, 202, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"status":"unsubscribed","removed":3\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 14: cast: unsubscribe by name that matches nothing: 202 removed 0
--- request
POST /api/hub
hub.mode=unsubscribe&hub.topic=uns-t14&subscriber.name=nobody
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"status":"unsubscribed","removed":0\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 15: cast: the "*" topic's subscriptions can be removed by name
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=*&hub.events=*&subscriber.name=monitor",
"POST /api/hub
hub.mode=unsubscribe&hub.topic=*&subscriber.name=monitor",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"status":"unsubscribed","removed":1\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 16: cast: unsubscribe with neither endpoint, callback nor name is 400
--- request
POST /api/hub
hub.mode=unsubscribe&hub.topic=uns-t16
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"unsubscribe needs hub\.channel\.endpoint, hub\.callback or subscriber\.name"\}$
--- error_log
cast: 400 unsubscribe needs
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 17: cast: unsubscribe by name without hub.topic is 400
--- request
POST /api/hub
hub.mode=unsubscribe&subscriber.name=alice
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.topic"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 18: cast: unsubscribe with a JSON body
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t18&hub.events=a');
my ($code, $resp) = main::req('POST', '/api/hub', qq({"hub.mode":"unsubscribe","hub.channel.endpoint":"$ep"}), 'application/json');
Test::More::is($code, 202, '003 init: JSON unsubscribe 202');
Test::More::like($resp, qr/"status":"unsubscribed","removed":1\}$/, '003 init: JSON unsubscribe reply');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 19: hub.mode unsubscribe is case-insensitive, hub.channel.type websocket is accepted
--- request
POST /api/hub
hub.mode=UNSUBSCRIBE&hub.channel.type=websocket&hub.topic=uns-t19&hub.callback=cb
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"status":"unsubscribed","removed":0\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 20: reset: DELETE {base} without a body removes every subscription
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t20a&hub.events=a",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t20b&hub.events=a",
"POST /fhircast/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=uns-t20c&hub.events=a",
"DELETE /api/hub",
"GET /cast/status"]
--- more_headers eval
[("Content-Type: application/x-www-form-urlencoded") x 3, "", ""]
--- error_code eval
[202, 202, 202, 200, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"status":"cleared","removed":3\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 21: reset of an empty hub: removed 0, logged at notice
--- request
DELETE /api/hub/
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"status":"cleared","removed":0\}$
--- error_log
cast: reset removed 0 subscriptions
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 22: reset with a form body naming hub.channel.endpoint removes that one
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t22&hub.events=a');
main::subscribe('/api/hub', 'hub.topic=uns-t22&hub.events=b');
my ($code, $resp) = main::req('DELETE', '/api/hub', "hub.channel.endpoint=$ep");
Test::More::is($code, 200, '003 init: DELETE endpoint 200');
Test::More::is($resp, '{"status":"unsubscribed","removed":1}', '003 init: DELETE endpoint reply');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- error_log eval
qr/on topic "uns-t22" ended: reset/
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 23: reset with a JSON body naming hub.channel.endpoint (bare id)
--- init
my $ep = main::subscribe('/api/hub', 'hub.topic=uns-t23&hub.events=a');
my ($code, $resp) = main::req('DELETE', '/api/hub', '{"hub.channel.endpoint":"' . main::id_of($ep) . '"}', 'application/json');
Test::More::is($code, 200, '003 init: DELETE JSON endpoint 200');
Test::More::is($resp, '{"status":"unsubscribed","removed":1}', '003 init: DELETE JSON endpoint reply');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 24: reset naming an unknown endpoint is 404
--- request
DELETE /api/hub
hub.channel.endpoint=0123456789abcdef0123456789abcdef
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 404
--- response_body_like: ^\{"error":"unknown hub\.channel\.endpoint"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 25: reset with hub.callback + hub.topic removes the matches only
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t25&hub.events=a&hub.callback=cbA",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t25&hub.events=a&hub.callback=cbA",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t25&hub.events=a&hub.callback=cbB",
"POST /api/hub
hub.mode=subscribe&hub.topic=uns-t25-other&hub.events=a&hub.callback=cbA",
"DELETE /api/hub
hub.callback=cbA&hub.topic=uns-t25",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 202, 202, 200, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"status":"unsubscribed","removed":2\}$',
 '^\{"mode":"local","connections":0,"subscriptions":2,"topics":2,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 26: reset with hub.callback but no hub.topic is 400
--- request
DELETE /api/hub
hub.callback=cbA
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"hub\.callback needs hub\.topic"\}$
--- error_log
cast: 400 hub.callback needs hub.topic
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 27: reset with a text/plain body is 415
--- request
DELETE /api/hub
everything please
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- response_body_like: ^\{"error":"unsupported Content-Type.*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 28: reset with invalid JSON or a JSON array is 400, nothing removed
--- init
main::subscribe('/api/hub', 'hub.topic=uns-t28&hub.events=a');
--- request eval
['DELETE /api/hub
{"hub.channel.endpoint":',
'DELETE /api/hub
["hub.channel.endpoint"]',
'GET /cast/status']
--- more_headers eval
["Content-Type: application/json", "Content-Type: application/json", ""]
--- error_code eval
[400, 400, 200]
--- response_body_like eval
['^\{"error":"invalid JSON: .* at line 1, column \d+"\}$',
 '^\{"error":"[^"]*must be a JSON object"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 29: reset with a malformed form body is 400
--- request
DELETE /api/hub
hub.channel.endpoint=%G0
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"malformed percent-encoding.*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 30: a chunked reset body above cast_max_message_size is refused (413) and removes nothing
--- http_config
    cast_max_message_size 1k;
--- init
main::subscribe('/api/hub', 'hub.topic=uns-t30&hub.events=a');
--- request eval
my $body = 'hub.channel.endpoint=0123456789abcdef0123456789abcdef&pad=' . ('x' x 2000);
["DELETE /api/hub\n" . sprintf("%x\r\n%s\r\n", length $body, $body) . "0\r\n\r\n",
 "GET /cast/status"]
--- more_headers eval
["Content-Type: application/x-www-form-urlencoded\nTransfer-Encoding: chunked", ""]
--- error_code eval
[413, 200]
--- response_body_like eval
['^\{"error":"the request body exceeds cast_max_message_size \(1024 bytes\)"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,']
--- no_error_log
ended: reset
header already sent
[alert]
[crit]
[emerg]
signal



=== TEST 31: reset is off unless configured: DELETE {base} is 405, Allow has no DELETE, nothing removed
--- config
    location /api/hub { cast_hub; }
    location = /cast/status { cast_status; }
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t31&hub.events=a&hub.callback=cb31",
"DELETE /api/hub",
"DELETE /api/hub/
hub.callback=cb31&hub.topic=uns-t31",
"GET /cast/status"]
--- more_headers eval
["Content-Type: application/x-www-form-urlencoded", "",
 "Content-Type: application/x-www-form-urlencoded", ""]
--- error_code eval
[202, 405, 405, 200]
--- response_headers eval
["", "Allow: POST, OPTIONS\nContent-Type: application/json",
 "Allow: POST, OPTIONS\nContent-Type: application/json", ""]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"error":"method DELETE is not allowed here"\}$',
 '^\{"error":"method DELETE is not allowed here"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,']
--- no_error_log
ended: reset
cast: reset removed
[alert]
[crit]
[emerg]
signal



=== TEST 32: cast_reset on at server level is inherited; a location can turn it off
--- config
    cast_reset on;
    location /api/hub { cast_hub; }
    location /quiet/hub { cast_hub; cast_reset off; }
    location = /cast/status { cast_status; }
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t32&hub.events=a",
"DELETE /quiet/hub",
"GET /cast/status",
"DELETE /api/hub",
"GET /cast/status"]
--- more_headers eval
["Content-Type: application/x-www-form-urlencoded", "", "", "", ""]
--- error_code eval
[202, 405, 200, 200, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"error":"method DELETE is not allowed here"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,',
 '^\{"status":"cleared","removed":1\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 33: cast_reset takes on or off
--- config
    location /api/hub { cast_hub; cast_reset yes; }
--- must_die
--- error_log
invalid value "yes" in "cast_reset" directive, it must be "on" or "off"



=== TEST 34: limit_except keeps the cast handler: an allowed client resets, others get 403
--- config
    location /api/hub {
        cast_hub;
        cast_reset on;
        limit_except GET POST OPTIONS { allow 127.0.0.1; deny all; }
    }
    location /closed/hub {
        cast_hub;
        cast_reset on;
        limit_except GET POST OPTIONS { deny all; }
    }
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=uns-t34&hub.events=a",
"DELETE /closed/hub",
"DELETE /api/hub",
"POST /closed/hub
hub.mode=subscribe&hub.topic=uns-t34&hub.events=a"]
--- more_headers eval
["Content-Type: application/x-www-form-urlencoded", "", "",
 "Content-Type: application/x-www-form-urlencoded"]
--- error_code eval
[202, 403, 200, 202]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '403 Forbidden',
 '^\{"status":"cleared","removed":1\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal
