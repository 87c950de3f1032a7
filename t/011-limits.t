# cast_max_topics: a worker keeps at most that many topics; a publish or a
# subscribe that would create one more gets 503 and an error log line.

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
