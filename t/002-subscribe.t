# POST {base} subscribe (SPEC 2.1): form and JSON bodies, both dialects,
# every validation error, endpoints, re-subscribe.

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

# helpers for "--- init" scenarios (init code runs in another package)
sub form_post {
    my ($path, $body) = @_;
    my ($code, undef, $resp) = CastTest::http_request('POST', $path, $body,
        'Content-Type' => 'application/x-www-form-urlencoded');
    return ($code, $resp);
}

sub endpoint_of {
    my $d = eval { CastTest::json_decode($_[0]) };
    return ref $d eq 'HASH' ? $d->{'hub.channel.endpoint'} : undef;
}

our $EP = qr{^ws://localhost/bind/[0-9a-f]{32}$};

no_shuffle();
run_tests();

__DATA__

=== TEST 1: subscribe with a form: 202 and a ws:// endpoint built from Host
--- config
    location /api/hub { cast_hub; cast_cors_origin *; }
--- request
POST /api/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=sub-t1&hub.events=Patient-open,Patient-close&subscriber.name=app1
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_headers
Content-Type: application/json
Access-Control-Allow-Origin: *
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "sub-t1" created for 7200 s, events "Patient-open,Patient-close", subscriber "app1"/
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: the endpoint keeps the Host header (with its port)
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t2&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
Host: hub.example:8443
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://hub\.example:8443/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: cast_public_url https://... gives wss:// endpoints under its path
--- config
    location /api/hub { cast_hub; cast_public_url https://hub.example.org/prefix; }
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t3&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"wss://hub\.example\.org/prefix/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: cast_public_url http://... (trailing slash) gives ws:// endpoints
--- config
    location /api/hub { cast_hub; cast_public_url http://hub.example.org:8080/; }
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t4&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://hub\.example\.org:8080/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 5: cast dialect: a body without Content-Type is parsed as a form
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t5&hub.events=a
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: form Content-Type with a charset parameter, POST {base}/
--- request
POST /api/hub/
hub.mode=subscribe&hub.topic=sub-t6&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded; charset=UTF-8
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: cast dialect: a JSON subscription, lease as a number
--- request
POST /api/hub
{"hub.mode":"subscribe","hub.topic":"sub-t7","hub.events":"a,b","hub.lease_seconds":60,"subscriber.name":"json-app","extra":{"ignored":true}}
--- more_headers
Content-Type: application/json
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "sub-t7" created for 60 s, events "a,b", subscriber "json-app"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: hub.mode and hub.channel.type are compared case-insensitively
--- request
POST /api/hub
hub.mode=SubScribe&hub.channel.type=WebSocket&hub.topic=sub-t8&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: cast dialect: topic "*" and events "*" are accepted
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=*&hub.events=*
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "*" created for 7200 s, events "*"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: values are URL-decoded ("+" and %XX) and whitespace-trimmed
--- request
POST /api/hub
hub.mode=+subscribe+&hub.topic=+my%20topic%3Ax+&hub.events=%20a%2Cb%20&subscriber.name=%20Dr+Who%20
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "my topic:x" created for 7200 s, events "a,b", subscriber "Dr Who"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: events are trimmed, empty items skipped, duplicates collapsed (first spelling kept)
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t11&hub.events=+Patient-open+,,patient-OPEN,%09b%09,B,Patient-open,
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "sub-t11" created for 7200 s, events "Patient-open,b"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 12: unknown fields (and empty pairs) are ignored; G2 extras are accepted
--- request
POST /api/hub
&foo=bar&hub.mode=subscribe&&hub.topic=sub-t12&hub.events=a&subscriber.product.name=Slicer&subscriber.product.version=5.6&subscriber.actors=viewer&subscriber.client_info=x&hub.secret=s&novalue
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 13: hub.lease_seconds is granted as asked below cast_lease_max
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t13&hub.events=a&hub.lease_seconds=30
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- error_log
on topic "sub-t13" created for 30 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 14: hub.lease is an alias of hub.lease_seconds
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t14&hub.events=a&hub.lease=45
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- error_log
on topic "sub-t14" created for 45 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 15: a lease above cast_lease_max (default 86400) is capped
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t15&hub.events=a&hub.lease_seconds=999999
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "sub-t15" created for 86400 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 16: a 20-digit lease is capped too (no overflow)
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t16&hub.events=a&hub.lease_seconds=99999999999999999999
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "sub-t16" created for 86400 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 17: cast_lease_default applies without hub.lease_seconds
--- http_config
    cast_lease_default 60s;
    cast_lease_max 2m;
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t16b&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "sub-t16b" created for 60 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 18: cast_lease_max caps a requested lease
--- http_config
    cast_lease_default 60s;
    cast_lease_max 2m;
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t16c&hub.events=a&hub.lease_seconds=500
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "sub-t16c" created for 120 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 19: each subscribe gets a new 128-bit id, even with the same fields
--- init
my (@ids, %seen);
for (1 .. 5) {
    my ($code, $body) = main::form_post('/api/hub', 'hub.mode=subscribe&hub.topic=sub-t17&hub.events=a&subscriber.name=same');
    Test::More::is($code, 202, "002-subscribe init: subscribe $_ answers 202");
    my $ep = main::endpoint_of($body);
    Test::More::like($ep, $main::EP, "002-subscribe init: subscribe $_ endpoint format");
    $seen{$ep}++ if defined $ep;
}
Test::More::is(scalar(keys %seen), 5, "002-subscribe init: five distinct endpoints");
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":5,"topics":1,
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 20: re-subscribe with the endpoint URL: same endpoint, events replaced, lease renewed
--- init
my ($code, $body) = main::form_post('/api/hub', 'hub.mode=subscribe&hub.topic=sub-t18&hub.events=a&hub.lease_seconds=100');
Test::More::is($code, 202, '002-subscribe init: subscribe 202');
my $ep = main::endpoint_of($body);
($code, $body) = main::form_post('/api/hub', "hub.mode=subscribe&hub.topic=sub-t18&hub.events=c,d&hub.lease_seconds=200&hub.channel.endpoint=$ep");
Test::More::is($code, 202, '002-subscribe init: re-subscribe 202');
Test::More::is(main::endpoint_of($body), $ep, '002-subscribe init: re-subscribe keeps the endpoint');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "sub-t18" renewed for 200 s, events "c,d"/
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 21: re-subscribe with the bare id (and a URL of another host) is accepted too
--- init
my ($code, $body) = main::form_post('/api/hub', 'hub.mode=subscribe&hub.topic=sub-t19&hub.events=a');
my $ep = main::endpoint_of($body);
my ($id) = $ep =~ m{/bind/([0-9a-f]{32})$};
($code, $body) = main::form_post('/api/hub', "hub.mode=subscribe&hub.topic=sub-t19&hub.events=b&hub.channel.endpoint=$id");
Test::More::is($code, 202, '002-subscribe init: re-subscribe by bare id 202');
Test::More::is(main::endpoint_of($body), $ep, '002-subscribe init: same endpoint (bare id)');
($code, $body) = main::form_post('/api/hub', "hub.mode=subscribe&hub.topic=sub-t19&hub.events=e&hub.channel.endpoint=wss%3A%2F%2Felsewhere%2Fbind%2F$id");
Test::More::is($code, 202, '002-subscribe init: re-subscribe by another URL 202');
Test::More::is(main::endpoint_of($body), $ep, '002-subscribe init: same endpoint (other URL)');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- error_log
on topic "sub-t19" renewed for 7200 s, events "b"
on topic "sub-t19" renewed for 7200 s, events "e"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 22: re-subscribe with an endpoint of another topic: 404, nothing changed
--- init
my ($code, $body) = main::form_post('/api/hub', 'hub.mode=subscribe&hub.topic=sub-t20&hub.events=a');
my $ep = main::endpoint_of($body);
($code, $body) = main::form_post('/api/hub', "hub.mode=subscribe&hub.topic=other&hub.events=b&hub.channel.endpoint=$ep");
Test::More::is($code, 404, '002-subscribe init: other topic 404');
Test::More::like($body, qr/^\{"error":"unknown hub\.channel\.endpoint.*"\}$/, '002-subscribe init: error body');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- error_log
cast: 404 unknown hub.channel.endpoint
--- no_error_log
renewed for
[alert]
[crit]
[emerg]
signal



=== TEST 23: re-subscribe with an unknown endpoint: 404
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t21&hub.events=a&hub.channel.endpoint=ws://localhost/bind/0123456789abcdef0123456789abcdef
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 404
--- response_body_like: ^\{"error":"unknown hub\.channel\.endpoint.*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 24: fhircast dialect: a complete form subscription
--- request
POST /fhircast/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=sub-t22&hub.events=Patient-open,Patient-close&hub.lease_seconds=3600
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 25: a topic of exactly 1024 bytes, 256 event names, a 256-byte event name
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.events=a&hub.topic=" . ("t" x 1024),
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t23&hub.events=" . CORE::join(",", map { "e$_" } 1 .. 256),
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t23&hub.events=" . ("n" x 256)]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 202]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 26: missing hub.mode
--- request
POST /api/hub
hub.topic=sub-t24&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"error":"missing hub\.mode"\}$
--- error_log
cast: 400 missing hub.mode
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 27: empty body: missing hub.mode
--- request
POST /api/hub
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.mode"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 28: invalid hub.mode
--- request
POST /api/hub
hub.mode=publish&hub.topic=sub-t26&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"invalid hub\.mode \\"publish\\": expected subscribe or unsubscribe"\}$
--- error_log
cast: 400 invalid hub.mode "publish"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 29: hub.channel.type webhook is not supported
--- request
POST /api/hub
hub.mode=subscribe&hub.channel.type=webhook&hub.callback=https://app.example/cb&hub.topic=sub-t27&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"unsupported hub\.channel\.type \\"webhook\\": only websocket is supported"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 30: fhircast dialect: missing hub.channel.type
--- request
POST /fhircast/hub
hub.mode=subscribe&hub.topic=sub-t28&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.channel\.type"\}$
--- error_log
cast: 400 missing hub.channel.type
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 31: missing hub.topic
--- request
POST /api/hub
hub.mode=subscribe&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.topic"\}$
--- error_log
cast: 400 missing hub.topic
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 32: empty (all blanks) hub.topic
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=+%20+&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.topic"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 33: hub.topic longer than 1024 bytes
--- request eval
"POST /api/hub
hub.mode=subscribe&hub.events=a&hub.topic=" . ("t" x 1025)
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"hub\.topic [^"]*1024[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 34: hub.topic with a control character
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=a%01b&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"hub\.topic [^"]*control character"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 35: fhircast dialect: hub.topic "*" is refused
--- request
POST /fhircast/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=*&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"hub\.topic \\"\*\\" is not allowed[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 36: missing hub.events
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t34
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.events"\}$
--- error_log
cast: 400 missing hub.events
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 37: empty hub.events lists: "", ",,", " , "
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=sub-t35&hub.events=",
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t35&hub.events=,,",
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t35&hub.events=+,+"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['^\{"error":"hub\.events is empty"\}$',
 '^\{"error":"hub\.events is empty"\}$',
 '^\{"error":"hub\.events is empty"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 38: fhircast dialect: "*" in hub.events is refused
--- request
POST /fhircast/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=sub-t36&hub.events=Patient-open,*
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"\\"\*\\" in hub\.events is not allowed[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 39: more than 256 event names
--- request eval
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t37&hub.events=" . CORE::join(",", map { "e$_" } 1 .. 257)
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"hub\.events [^"]*too many[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 40: an event name longer than 256 bytes
--- request eval
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t38&hub.events=a," . ("n" x 257)
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"[^"]*event name in hub\.events is too long"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 41: an event name with a control character
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t39&hub.events=a%0Bb
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"hub\.events [^"]*control character"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 42: hub.lease_seconds that is not a positive integer: abc, -5, 1.5, 0, empty, 1e3
--- request eval
[map { "POST /api/hub
hub.mode=subscribe&hub.topic=sub-t40&hub.events=a&hub.lease_seconds=$_" } qw(abc -5 1.5 0), '', '1e3']
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400, 400, 400, 400, 400]
--- response_body_like eval
[map { '^\{"error":"hub\.lease_seconds must be a positive integer, not .*"\}$' } 1 .. 6]
--- error_log
cast: 400 hub.lease_seconds must be a positive integer, not
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 43: a field given twice
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t41&hub.events=a&hub.topic=other
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.topic\\" is given more than once"\}$
--- error_log
cast: 400 "hub.topic" is given more than once
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 44: hub.lease and hub.lease_seconds both given are a duplicate
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t42&hub.events=a&hub.lease_seconds=10&hub.lease=20
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.lease\\" is given more than once[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 45: an empty duplicate still counts as given twice
--- request
POST /api/hub
hub.mode=subscribe&hub.mode=&hub.topic=sub-t43&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.mode\\" is given more than once"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 46: malformed percent-escapes in a value: %ZZ, a short %2, a trailing %
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=t%ZZ&hub.events=a",
"POST /api/hub
hub.mode=subscribe&hub.events=a&hub.topic=t%2",
"POST /api/hub
hub.mode=subscribe&hub.topic=t&hub.events=a%"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['^\{"error":"malformed percent-encoding in \\\\"hub\.topic\\\\""\}$',
 '^\{"error":"malformed percent-encoding in \\\\"hub\.topic\\\\""\}$',
 '^\{"error":"malformed percent-encoding in \\\\"hub\.events\\\\""\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 47: a malformed percent-escape in a field name
--- request
POST /api/hub
hub.mode=subscribe&hub.to%ZZpic=x&hub.topic=t&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"malformed percent-encoding[^"]*name"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 48: a form value longer than 64 KiB
--- request eval
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t46&hub.events=a&hub.callback=" . ("c" x 70000)
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.callback\\" is too long"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 49: a percent-encoded field name is decoded before the lookup
--- request
POST /api/hub
hub%2Emode=subscribe&hub.topic=sub-t47&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 50: text/plain is not a subscription body (415)
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=sub-t48&hub.events=a
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- response_body_like: ^\{"error":"unsupported Content-Type[^"]*"\}$
--- error_log
cast: 415 unsupported Content-Type
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 51: fhircast dialect: a subscription without Content-Type is 415
--- request
POST /fhircast/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=sub-t49&hub.events=a
--- error_code: 415
--- response_body_like: ^\{"error":"unsupported Content-Type[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 52: fhircast dialect: a JSON subscription is 415
--- request
POST /fhircast/hub
{"hub.mode":"subscribe","hub.channel.type":"websocket","hub.topic":"sub-t50","hub.events":"a"}
--- more_headers
Content-Type: application/json
--- error_code: 415
--- response_body_like: ^\{"error":"subscription[^"]*x-www-form-urlencoded"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 53: JSON subscription: values of other types than string are 400
--- request eval
['POST /api/hub
{"hub.mode":"subscribe","hub.topic":true,"hub.events":"a"}',
'POST /api/hub
{"hub.mode":"subscribe","hub.topic":"t","hub.events":["a","b"]}',
'POST /api/hub
{"hub.mode":"subscribe","hub.topic":"t","hub.events":"a","hub.lease_seconds":1.5}',
'POST /api/hub
{"hub.mode":"subscribe","hub.topic":null,"hub.events":"a"}',
'POST /api/hub
{"hub.mode":{"x":1},"hub.topic":"t","hub.events":"a"}']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
['^\{"error":"\\\\"hub\.topic\\\\" must be a string"\}$',
 '^\{"error":"\\\\"hub\.events\\\\" must be a string"\}$',
 '^\{"error":"\\\\"hub\.lease_seconds\\\\" must be a string"\}$',
 '^\{"error":"\\\\"hub\.topic\\\\" must be a string"\}$',
 '^\{"error":"\\\\"hub\.mode\\\\" must be a string"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 54: JSON subscription: a number is accepted for hub.lease_seconds only
--- request
POST /api/hub
{"hub.mode":"subscribe","hub.topic":12345,"hub.events":"a"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.topic\\" must be a string"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 55: JSON subscription: negative and zero lease numbers
--- request eval
['POST /api/hub
{"hub.mode":"subscribe","hub.topic":"t","hub.events":"a","hub.lease_seconds":-3}',
'POST /api/hub
{"hub.mode":"subscribe","hub.topic":"t","hub.events":"a","hub.lease_seconds":0}']
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400]
--- response_body_like eval
['^\{"error":"hub\.lease_seconds must be a positive integer, not .*"\}$',
 '^\{"error":"hub\.lease_seconds must be a positive integer, not .*"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 56: JSON subscription: hub.lease and hub.lease_seconds both given
--- request
POST /api/hub
{"hub.mode":"subscribe","hub.topic":"t","hub.events":"a","hub.lease_seconds":10,"hub.lease":"20"}
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"\\"hub\.lease[_a-z]*\\" is given more than once[^"]*"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 57: JSON subscription: validation is the form's (missing hub.events)
--- request
POST /api/hub
{"hub.mode":"subscribe","hub.topic":"sub-t55"}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.events"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 58: a topic that is not UTF-8 is refused at subscribe (it failed later, at bind), logged at info
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=%E2%82&hub.events=a",
"POST /api/hub
hub.mode=subscribe&hub.topic=bad%FFtopic&hub.events=a",
"POST /api/hub
hub.mode=subscribe&hub.topic=%ED%A0%80&hub.events=a",
"POST /fhircast/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=%C0%AF&hub.events=a"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400, 400, 400]
--- response_headers eval
[("Content-Type: application/json") x 4]
--- response_body_like eval
[('^\{"error":"hub\.topic is not valid UTF-8"\}$') x 4]
--- error_log eval
qr/\[info\] .*cast: 400 hub\.topic is not valid UTF-8/
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 59: a topic holding "/" is refused at subscribe ({base}/{topic} could never address it), form and JSON
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=a%2Fb&hub.events=a",
"POST /api/hub
hub.mode=subscribe&hub.topic=/&hub.events=a",
"POST /api/hub
{\"hub.mode\":\"subscribe\",\"hub.topic\":\"a/b\",\"hub.events\":\"a\"}"]
--- more_headers eval
["Content-Type: application/x-www-form-urlencoded",
 "Content-Type: application/x-www-form-urlencoded",
 "Content-Type: application/json"]
--- error_code eval
[400, 400, 400]
--- response_body_like eval
[('^\{"error":"hub\.topic holds a \\\\"/\\\\" \(a topic must fit one path segment, \{base\}/\{topic\}\)"\}$') x 3]
--- error_log eval
qr/\[info\] .*cast: 400 hub\.topic holds a "\/"/
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 60: every subscription field must be UTF-8 (form)
--- request eval
[map { "POST /api/hub\nhub.mode=subscribe&hub.topic=sub-t60&hub.events=a&$_" }
 'subscriber.name=%FF', 'hub.callback=%80', 'subscriber.product.name=%C3',
 'subscriber.product.version=%F4%90%80%80', 'subscriber.actors=%ED%A0%80',
 'subscriber.client_info=%E2%82', 'hub.channel.type=%FE']
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400, 400, 400, 400, 400, 400]
--- response_body_like eval
['^\{"error":"subscriber\.name is not valid UTF-8"\}$',
 '^\{"error":"hub\.callback is not valid UTF-8"\}$',
 '^\{"error":"subscriber\.product\.name is not valid UTF-8"\}$',
 '^\{"error":"subscriber\.product\.version is not valid UTF-8"\}$',
 '^\{"error":"subscriber\.actors is not valid UTF-8"\}$',
 '^\{"error":"subscriber\.client_info is not valid UTF-8"\}$',
 '^\{"error":"hub\.channel\.type is not valid UTF-8"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 61: hub.events that is not UTF-8 is refused; UTF-8 names are accepted
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=sub-t61&hub.events=a,b%E2%82",
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t61&hub.events=%C3%A9v%C3%A9nement-open"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 202]
--- response_body_like eval
['^\{"error":"hub\.events is not valid UTF-8"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 62: malformed percent-encoding is refused (%\x10\x11 was decoded through "| 0x20")
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.events=a&hub.topic=%\x10\x11",
 "POST /api/hub\nhub.mode=subscribe&hub.events=a&hub.topic=%1\x19",
 "POST /api/hub\nhub.mode=subscribe&hub.events=a&hub.topic=%0G",
 "POST /api/hub\nhub.mode=subscribe&hub.events=a&subscriber.name=x%",
 "POST /api/hub\nhub.mode=subscribe&hub.events=a&hub.topic=t&hub%\x12\x13=1"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
['^\{"error":"malformed percent-encoding in \\\\"hub\.topic\\\\""\}$',
 '^\{"error":"malformed percent-encoding in \\\\"hub\.topic\\\\""\}$',
 '^\{"error":"malformed percent-encoding in \\\\"hub\.topic\\\\""\}$',
 '^\{"error":"malformed percent-encoding in \\\\"subscriber\.name\\\\""\}$',
 '^\{"error":"malformed percent-encoding in a form field name"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 63: JSON subscribe: a 1 MB subscriber.name is refused like the form's (it got 202)
--- request eval
"POST /api/hub
{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t63\",\"hub.events\":\"a\",\"subscriber.name\":\"" . ("n" x 1000000) . "\"}"
--- more_headers
Content-Type: application/json
--- error_code: 400
--- response_body_like: ^\{"error":"\\"subscriber\.name\\" is too long"\}$
--- error_log eval
qr/\[info\] .*cast: 400 "subscriber\.name" is too long/
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 64: names and product fields: 1024 bytes accepted, 1025 refused, on the form and the JSON path
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.topic=sub-t64&hub.events=a&subscriber.name=" . ("n" x 1024),
 "POST /api/hub\nhub.mode=subscribe&hub.topic=sub-t64&hub.events=a&subscriber.name=" . ("n" x 1025),
 "POST /api/hub\nhub.mode=subscribe&hub.topic=sub-t64&hub.events=a&subscriber.name=" . ("%41" x 1025),
 "POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t64\",\"hub.events\":\"a\",\"subscriber.product.name\":\"" . ("p" x 1024) . "\"}",
 "POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t64\",\"hub.events\":\"a\",\"subscriber.product.name\":\"" . ("p" x 1025) . "\"}",
 "POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t64\",\"hub.events\":\"a\",\"subscriber.product.version\":\"" . ("v" x 1025) . "\"}",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=sub-t64&hub.events=a&subscriber.product.version=" . ("v" x 1025)]
--- more_headers eval
[("Content-Type: application/x-www-form-urlencoded") x 3,
 ("Content-Type: application/json") x 3,
 "Content-Type: application/x-www-form-urlencoded"]
--- error_code eval
[202, 400, 400, 202, 400, 400, 400]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"error":"\\\\"subscriber\.name\\\\" is too long"\}$',
 '^\{"error":"\\\\"subscriber\.name\\\\" is too long"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"error":"\\\\"subscriber\.product\.name\\\\" is too long"\}$',
 '^\{"error":"\\\\"subscriber\.product\.version\\\\" is too long"\}$',
 '^\{"error":"\\\\"subscriber\.product\.version\\\\" is too long"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 65: URLs and the G2 extras: 4096 bytes accepted, 4097 refused, on both paths
--- request eval
["POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t65\",\"hub.events\":\"a\",\"subscriber.client_info\":\"" . ("c" x 4096) . "\"}",
 "POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t65\",\"hub.events\":\"a\",\"hub.callback\":\"" . ("c" x 4097) . "\"}",
 "POST /api/hub\n{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t65\",\"hub.events\":\"a\",\"subscriber.actors\":\"" . ("a" x 4097) . "\"}",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=sub-t65&hub.events=a&subscriber.client_info=" . ("c" x 4097)]
--- more_headers eval
[("Content-Type: application/json") x 3,
 "Content-Type: application/x-www-form-urlencoded"]
--- error_code eval
[202, 400, 400, 400]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"error":"\\\\"hub\.callback\\\\" is too long"\}$',
 '^\{"error":"\\\\"subscriber\.actors\\\\" is too long"\}$',
 '^\{"error":"\\\\"subscriber\.client_info\\\\" is too long"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 66: hub.lease and hub.lease_seconds both given: the whole message (it overran its buffer)
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=sub-t66&hub.events=a&hub.lease=1&hub.lease_seconds=2",
"POST /api/hub
hub.mode=subscribe&hub.topic=sub-t66&hub.events=a&hub.lease_seconds=2&hub.lease=1"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400]
--- response_body_like eval
['^\{"error":"\\\\"hub\.lease_seconds\\\\" is given more than once \(hub\.lease and hub\.lease_seconds are one field\)"\}$',
 '^\{"error":"\\\\"hub\.lease\\\\" is given more than once \(hub\.lease and hub\.lease_seconds are one field\)"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 67: JSON subscribe: control characters in a field are refused like the form's
--- request eval
["POST /api/hub
{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t67\",\"hub.events\":\"a\",\"subscriber.name\":\"a\\u0001b\"}",
"POST /api/hub
{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub-t67\",\"hub.events\":\"a\",\"hub.callback\":\"x\\ny\"}",
"POST /api/hub
{\"hub.mode\":\"subscribe\",\"hub.topic\":\"sub\\u007f\",\"hub.events\":\"a\"}"]
--- more_headers
Content-Type: application/json
--- error_code eval
[400, 400, 400]
--- response_body_like eval
['^\{"error":"subscriber\.name holds a control character"\}$',
 '^\{"error":"hub\.callback holds a control character"\}$',
 '^\{"error":"hub\.topic holds a control character"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 68: unsubscribe and DELETE check their fields too
--- config
    location /api/hub { cast_hub; cast_reset on; }
--- request eval
["POST /api/hub
hub.mode=unsubscribe&hub.topic=%FF&hub.channel.endpoint=ws://x/bind/0",
"DELETE /api/hub
hub.callback=%E2%82&hub.topic=t"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[400, 400]
--- response_body_like eval
['^\{"error":"hub\.topic is not valid UTF-8"\}$',
 '^\{"error":"hub\.callback is not valid UTF-8"\}$']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal
