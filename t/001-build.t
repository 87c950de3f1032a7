# The module loads, a cast location answers, /cast/status has its JSON shape.
#
# Runs under the project's runner (prove -I t/runner) and the real
# Test::Nginx (CPAN 0.3x).  Every block restarts nginx, so blocks do not
# share hub state.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);

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

# "key,key,..." of the top level, then of workers[0]: the shape, not the values
sub status_shape {
    my $d = CastTest::json_decode($_[0]);
    return join(',', sort keys %$d) . "\n"
           . 'workers=' . scalar(@{ $d->{workers} }) . ' '
           . join(',', sort keys %{ $d->{workers}[0] }) . "\n";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: the module loads and cast_status answers with zero counters
--- request
GET /cast/status
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":0,"events_out":0,"workers":\[\{"pid":[1-9]\d*,[^\]]*\}\]\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: status JSON shape (top-level keys and one worker object)
--- request
GET /cast/status
--- response_body_filters eval
\&main::status_shape
--- response_body
connections,events_in,events_out,mode,subscriptions,topics,workers
workers=1 acks,connections,dropped,events_in,events_out,host,pid,subscriptions,topics
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: the worker pid in the status is a live process
--- request
GET /cast/status
--- response_body_filters eval
sub { my $d = CastTest::json_decode($_[0]); my $pid = $d->{workers}[0]{pid}; (kill(0, $pid) ? "alive" : "dead") . "\n" }
--- response_body
alive
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: a cast_hub location answers (discovery document)
--- request
GET /api/hub/.well-known/fhircast-configuration
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{"eventsSupported":\[.*\],"websocketSupport":true,.*"fhircastVersion":"3\.0\.0"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 5: a subscription and a topic show up in the status counters
--- request eval
["POST /api/hub
hub.mode=subscribe&hub.topic=build-t5&hub.events=Patient-open",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,"events_in":0,"events_out":0,"workers":\[\{.*"subscriptions":1,"topics":1,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: HEAD /cast/status: headers, no body
--- request
HEAD /cast/status
--- response_headers
Content-Type: application/json
--- response_body
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: POST /cast/status is not allowed
--- request
POST /cast/status
x=1
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 405
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: Prometheus text format of the status
--- request
GET /cast/status?format=prometheus
--- response_headers_like
Content-Type: text/plain.*
--- response_body_like: (?m)^cast_subscriptions\{pid="\d+"\} 0$.*^cast_events_in_total\{pid="\d+"\} 0$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: the module loaded without any cast location: nginx serves normally
--- config
    location = /t { return 200 "plain nginx\n"; }
--- request
GET /t
--- response_body
plain nginx
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: a cast_hub prefix location written with a trailing slash
--- config
    location /hub/ { cast_hub; }
    location /bind/ { cast_websocket; }
--- request
POST /hub/
hub.mode=subscribe&hub.topic=build-t10&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: two hub locations in one server share one hub (one worker)
--- config
    location /a/hub { cast_hub; }
    location /b/hub { cast_hub; }
    location = /cast/status { cast_status; }
--- request eval
["POST /a/hub
hub.mode=subscribe&hub.topic=build-t11&hub.events=a",
"POST /b/hub
hub.mode=subscribe&hub.topic=build-t11&hub.events=a",
"GET /cast/status"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 200]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":2,"topics":1,']
--- no_error_log
[alert]
[crit]
[emerg]
signal
