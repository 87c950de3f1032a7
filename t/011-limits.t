# cast_max_topics: a worker keeps at most that many topics; a publish or a
# subscribe that would create one more gets 503 and an error log line.
# cast_max_subscriptions, cast_max_subscriptions_per_topic: a subscribe
# past either gets 503 naming the limit (in Redis mode, across the hub);
# cast_max_context_total bounds a worker's context bytes (local mode);
# cast_context_ttl forgets a context unchanged that long, in both modes.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastMode;

our $HubConfig = <<'_EOC_';
    location /api/hub { cast_hub; }
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

=== TEST 1: publishes create topics up to the limit, then 503; known topics still work
--- http_config
cast_max_topics 2;
--- init
package main;
for my $t (qw(lim-1 lim-2)) {
    my ($code) = CastTest::http_request('POST', "/api/hub/$t",
        '{"event":{"hub.event":"x-open","context":{"a":1}}}',
        'Content-Type' => 'application/json');
    Test::More::is($code, 200, "011 init: publish on $t answers 200");
}
--- request eval
["POST /api/hub/lim-3\n{\"event\":{\"hub.event\":\"x-open\",\"context\":{\"a\":3}}}"]
--- more_headers
Content-Type: application/json
--- error_code: 503
--- response_body_like: ^\{"error":".*cast_max_topics.*"\}$
--- error_log
cast: 2 topics are stored, the cast_max_topics limit: "lim-3" is refused
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: known topics still take events at the limit; GET of a refused topic is {}
--- http_config
cast_max_topics 1;
--- request eval
["POST /api/hub/lim-1\n{\"event\":{\"hub.event\":\"x-open\",\"context\":{\"a\":1}}}",
 "POST /api/hub/lim-2\n{\"event\":{\"hub.event\":\"x-open\",\"context\":{\"a\":2}}}",
 "POST /api/hub/lim-1\n{\"event\":{\"hub.event\":\"x-update\",\"context\":{\"a\":4}}}",
 "GET /api/hub/lim-2",
 "GET /cast/status"]
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 503, 200, 200, 200]
--- response_body_like eval
['^\{"status":"received"\}$',
 '^\{"error":".*cast_max_topics.*"\}$',
 '^\{"status":"received"\}$',
 '^\{\}$',
 '"topics":1,"events_in":2,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: a subscribe on a new topic past the limit is refused too; "*" is not a topic
--- http_config
cast_max_topics 1;
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.topic=lim-a&hub.events=e",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=lim-b&hub.events=e",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=lim-a&hub.events=f",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=*&hub.events=*"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 503, 202, 202]
--- response_body_like eval
['^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"error":".*cast_max_topics.*"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$',
 '^\{"hub\.channel\.endpoint":"ws://localhost/bind/[0-9a-f]{32}"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: cast_max_topics 0 is refused
--- http_config
cast_max_topics 0;
--- must_die
--- error_log
value must be between 1 and 2147483647



=== TEST 5: cast_max_topics belongs to the http block
--- config
    location /api/hub { cast_hub; cast_max_topics 5; }
--- must_die
--- error_log
"cast_max_topics" directive is not allowed here



=== TEST 6: cast_max_subscriptions_per_topic: the next subscribe on the topic gets 503; other topics and "*" are not affected
--- http_config
cast_max_subscriptions_per_topic 2;
--- init
package main;
my @form = ('Content-Type' => 'application/x-www-form-urlencoded');
for my $t (qw(pt-a pt-a pt-b * pt-b)) {
    my ($code) = CastTest::http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.topic=$t&hub.events=e", @form);
    Test::More::is($code, 202, "011 init: subscribe on $t");
}
my ($code) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=pt-b&hub.events=e', @form);
Test::More::is($code, 503, '011 init: a third one on pt-b is refused');
(undef, undef, my $body) = CastTest::http_request('GET', '/cast/status');
Test::More::like($body, qr/"subscriptions":5,/,
                 '011 init: 5 subscriptions are held');
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=pt-a&hub.events=g
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 503
--- response_body_like: ^\{"error":"the topic has as many subscriptions as it may \(cast_max_subscriptions_per_topic\)"\}$
--- error_log eval
[qr/\[info\] .*cast: topic "pt-a" has 2 subscriptions, the cast_max_subscriptions_per_topic limit: one more is refused/,
 qr/\[info\] .*cast: 503 the topic has as many subscriptions as it may/]
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 7: cast_max_subscriptions: the next subscribe anywhere gets 503 naming the limit
--- http_config
cast_max_subscriptions 3;
--- init
package main;
my @form = ('Content-Type' => 'application/x-www-form-urlencoded');
for my $t (qw(ms-a ms-b ms-a)) {
    my ($code) = CastTest::http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.topic=$t&hub.events=e", @form);
    Test::More::is($code, 202, "011 init: subscribe on $t");
}
my ($code, undef, $body) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=*&hub.events=*', @form);
Test::More::is($code, 503, '011 init: "*" is refused too');
Test::More::like($body // '', qr/cast_max_subscriptions\)/,
                 '011 init: naming the limit');
(undef, undef, $body) = CastTest::http_request('GET', '/cast/status');
Test::More::like($body, qr/"subscriptions":3,/,
                 '011 init: 3 subscriptions are held');
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=ms-c&hub.events=e
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 503
--- response_body_like: ^\{"error":"the hub holds as many subscriptions as it may \(cast_max_subscriptions\)"\}$
--- error_log eval
[qr/\[info\] .*cast: 3 subscriptions are held, the cast_max_subscriptions limit: a subscription on "ms-c" is refused/,
 qr/\[info\] .*cast: 503 the hub holds as many subscriptions as it may/]
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 8: a subscription that ended (unsubscribe, bind timeout) frees its place
--- http_config
cast_max_subscriptions_per_topic 1;
cast_max_subscriptions 2;
--- config
    location /api/hub { cast_hub; cast_bind_timeout 1s; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
--- init
package main;
my @form = ('Content-Type' => 'application/x-www-form-urlencoded');
my ($code, undef, $body) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=fr-a&hub.events=e', @form);
Test::More::is($code, 202, '011 init: subscribe on fr-a');
my ($ep) = ($body // '') =~ m{"(ws://[^"]+)"};
($code) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=fr-a&hub.events=e', @form);
Test::More::is($code, 503, '011 init: a second one on fr-a is refused');
($code) = CastTest::http_request('POST', '/api/hub',
    "hub.mode=unsubscribe&hub.topic=fr-a&hub.channel.endpoint=$ep", @form);
Test::More::is($code, 202, '011 init: unsubscribe');
($code) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=fr-a&hub.events=e', @form);
Test::More::is($code, 202, '011 init: fr-a takes one again');
($code) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=fr-b&hub.events=e', @form);
Test::More::is($code, 202, '011 init: fr-b');
($code) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=fr-c&hub.events=e', @form);
Test::More::is($code, 503, '011 init: fr-c is past cast_max_subscriptions');
# nobody binds: both end with their bind timeout
select(undef, undef, undef, 2.5);
--- request eval
["POST /api/hub\nhub.mode=subscribe&hub.topic=fr-c&hub.events=e",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=fr-a&hub.events=e",
 "POST /api/hub\nhub.mode=subscribe&hub.topic=fr-a&hub.events=e"]
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code eval
[202, 202, 503]
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: cast_context_ttl: a context unchanged that long is forgotten (and its topic no longer counts)
--- http_config
cast_context_ttl 1500ms;
--- init
package main;
my @json = ('Content-Type' => 'application/json');
my ($code) = CastTest::http_request('POST', '/api/hub/ttl-a',
    '{"event":{"hub.event":"x-open","context":{"a":1}}}', @json);
Test::More::is($code, 200, '011 init: publish on ttl-a');
($code) = CastTest::http_request('POST', '/api/hub/ttl-b',
    '{"event":{"hub.event":"x-open","context":{"b":1}}}', @json);
Test::More::is($code, 200, '011 init: publish on ttl-b');
select(undef, undef, undef, 1.0);
# a change keeps ttl-b another 1.5 s
($code) = CastTest::http_request('POST', '/api/hub/ttl-b',
    '{"event":{"hub.event":"x-open","context":{"b":2}}}', @json);
Test::More::is($code, 200, '011 init: ttl-b changes');
my (undef, undef, $body) = CastTest::http_request('GET', '/api/hub/ttl-a');
Test::More::is($body, '{"a":1}', '011 init: ttl-a is kept before its ttl');
select(undef, undef, undef, 1.0);
--- request eval
["GET /api/hub/ttl-a",
 "GET /api/hub/ttl-b",
 "GET /cast/status"]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['^\{\}$',
 '^\{"b":2\}$',
 '"topics":1,']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 10: cast_context_ttl: after it, nothing is left (status counts no topic)
--- http_config
cast_context_ttl 1s;
--- init
package main;
my ($code) = CastTest::http_request('POST', '/api/hub/ttl-c',
    '{"event":{"hub.event":"x-open","context":{"c":1}}}',
    'Content-Type' => 'application/json');
Test::More::is($code, 200, '011 init: publish on ttl-c');
select(undef, undef, undef, 1.6);
--- request eval
["GET /api/hub/ttl-c",
 "GET /cast/status"]
--- error_code eval
[200, 200]
--- response_body_like eval
['^\{\}$',
 '"subscriptions":0,"topics":0,']
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 11: cast_context_ttl does not apply to the hub's conferences: they go with their host's last subscription
--- http_config
cast_context_ttl 1s;
--- init
package main;
my @form = ('Content-Type' => 'application/x-www-form-urlencoded');
my @json = ('Content-Type' => 'application/json');
my ($code) = CastTest::http_request('POST', '/api/hub',
    'hub.mode=subscribe&hub.topic=host-1&hub.events=e', @form);
Test::More::is($code, 202, '011 init: the host subscribes');
($code) = CastTest::http_request('POST', '/api/hub/conference',
    '{"hostTopic":"host-1","title":"board","topics":["guest-1"]}', @json);
Test::More::is($code, 201, '011 init: a conference');
($code) = CastTest::http_request('POST', '/api/hub/ctx-1',
    '{"event":{"hub.event":"x-select","context":{"a":1}}}', @json);
Test::More::is($code, 200, '011 init: a context on ctx-1');
select(undef, undef, undef, 1.8);
my (undef, undef, $body) = CastTest::http_request('GET', '/api/hub/ctx-1');
Test::More::is($body, '{}', '011 init: the context of ctx-1 expired');
--- request
GET /api/hub/conference
--- response_body_like: ^\[\{"hostTopic":"host-1",.*"title":"board",.*"guest-1".*\}\]$
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 12: cast_max_context_total: past it a publish that adds context gets 503, one that clears context is taken
--- cast_local_only: the worker's own memory; in Redis mode the contexts are in Redis (its maxmemory bounds them)
--- http_config
cast_max_context_total 3k;
--- init
package main;
# the block is skipped in Redis mode, but its init runs
return if CastTest::cast_mode() ne 'local';
my $ctx = '"' . ('x' x 1200) . '"';
my @json = ('Content-Type' => 'application/json');
my $open = sub {
    my ($t, $c) = @_;
    my ($code, undef, $body) = CastTest::http_request('POST', "/api/hub/$t",
        qq({"event":{"hub.event":"x-select","context":$c}}), @json);
    return ($code, $body // '');
};
for my $t (qw(tot-a tot-b)) {
    my ($code) = $open->($t, qq({"v":$ctx}));
    Test::More::is($code, 200, "011 init: 1.2 KB of context on $t");
}
my ($code, $body) = $open->('tot-c', qq({"v":$ctx}));
Test::More::is($code, 503, '011 init: a third is past 3k');
Test::More::like($body, qr/cast_max_context_total/,
                 '011 init: naming the limit');
($code) = CastTest::http_request('POST', '/api/hub/tot-a',
    '{"event":{"hub.event":"x-close","context":{}}}', @json);
Test::More::is($code, 200, '011 init: a close is taken');
($code) = $open->('tot-c', qq({"v":$ctx}));
Test::More::is($code, 200, '011 init: now tot-c fits');
(undef, undef, $body) = CastTest::http_request('GET', '/api/hub/tot-c');
Test::More::is($body, qq({"v":$ctx}), '011 init: tot-c is kept');
--- request eval
my $ctx = '"' . ('x' x 1200) . '"';
"POST /api/hub/tot-b\n{\"event\":{\"hub.event\":\"x-select\",\"context\":{\"v\":$ctx,\"w\":$ctx}}}"
--- more_headers
Content-Type: application/json
--- error_code: 503
--- response_body_like: ^\{"error":"the hub keeps as much context as it may \(cast_max_context_total\)"\}$
--- error_log eval
[qr/\[info\] .*past cast_max_context_total \(3072\): an event on "tot-b" is refused/]
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 13: cast_max_context_total: a refused change leaves the topic's context as it was
--- cast_local_only: the worker's own memory; in Redis mode the contexts are in Redis (its maxmemory bounds them)
--- http_config
cast_max_context_total 3k;
--- init
package main;
# the block is skipped in Redis mode, but its init runs
return if CastTest::cast_mode() ne 'local';
my $ctx = '"' . ('x' x 1200) . '"';
my @json = ('Content-Type' => 'application/json');
for my $c (qq({"v":$ctx}), qq({"v":$ctx,"w":$ctx,"y":$ctx})) {
    my ($code) = CastTest::http_request('POST', '/api/hub/keep-a',
        qq({"event":{"hub.event":"x-select","context":$c}}), @json);
    Test::More::is($code, length $c < 2000 ? 200 : 503,
                   '011 init: publish ' . length($c) . ' bytes');
}
--- request
GET /api/hub/keep-a
--- response_body_like: ^\{"v":"x{1200}"\}$
--- no_error_log
[error]
[alert]
[crit]
[emerg]
signal



=== TEST 14: the new limits are numbers from 1, times above 0, in the http block
--- http_config
cast_max_subscriptions 0;
--- must_die
--- error_log
value must be between 1 and 2147483647



=== TEST 15: cast_max_subscriptions_per_topic 0 is refused
--- http_config
cast_max_subscriptions_per_topic 0;
--- must_die
--- error_log
value must be between 1 and 2147483647



=== TEST 16: cast_context_ttl 0 is refused
--- http_config
cast_context_ttl 0;
--- must_die
--- error_log
value is too small, the minimum is 1ms



=== TEST 17: cast_max_subscriptions_per_topic belongs to the http block
--- config
    location /api/hub { cast_hub; cast_max_subscriptions_per_topic 5; }
--- must_die
--- error_log
"cast_max_subscriptions_per_topic" directive is not allowed here
