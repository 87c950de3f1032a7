# Local mode (no cast_redis) keeps the hub in one worker's memory: a cast
# location with worker_processes > 1 must stop nginx.  Test::Nginx writes
# worker_processes itself, hence workers(2) in a file of its own.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);

workers(2);

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

=== TEST 1: cast_hub with two workers in local mode
--- must_die
--- error_log
cast: local mode (no "cast_redis") works with one worker only, but "worker_processes" is 2



=== TEST 2: cast_websocket alone with two workers
--- config
    location /bind/ { cast_websocket; }
--- must_die
--- error_log
local mode (no "cast_redis") works with one worker only



=== TEST 3: cast_status alone with two workers
--- config
    location = /cast/status { cast_status; }
--- must_die
--- error_log
local mode (no "cast_redis") works with one worker only



=== TEST 4: two workers without any cast location start normally
--- config
    location = /t { return 200 "no cast here\n"; }
--- request
GET /t
--- response_body
no cast here
--- no_error_log
local mode
[alert]
[crit]
[emerg]
signal
