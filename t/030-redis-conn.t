# cast_redis: the Redis connection layer (src/ngx_http_cast_redis.c).
#
# Each worker opens a "command" and a "pubsub" connection; these tests
# drive them against private redis-server instances (t/lib/CastRedis.pm):
# connect, AUTH, SELECT, failures, loss and reconnect, command timeouts,
# and the directive's configuration errors.  Host names (one with several
# addresses, independent of /etc/hosts): t/036-redis-addresses.t.
#
# Ports: TEST_NGINX_REDIS_PORT (6390) and the two after it.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;
use Time::HiRes qw(time sleep);

$ENV{TEST_NGINX_REDIS_PORT} ||= 6390;
$ENV{TEST_NGINX_REDIS_AUTH_PORT} ||= $ENV{TEST_NGINX_REDIS_PORT} + 1;
$ENV{TEST_NGINX_REDIS_DEAD_PORT} ||= $ENV{TEST_NGINX_REDIS_PORT} + 2;

our $Slow = $ENV{TEST_NGINX_USE_VALGRIND} ? 6 : 1;

our $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT},
                            unixsocket => 1)->start;
our $AuthRedis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_AUTH_PORT},
                                password => 'cast-secret')->start;

$ENV{TEST_NGINX_REDIS_SOCKET} = $Redis->socket_path;
$ENV{TEST_NGINX_REDIS_NO_SOCKET} = $Redis->dir . '/missing.sock';

# the "dead" port must have no listener
if (eval { CastRedis->new(port => $ENV{TEST_NGINX_REDIS_DEAD_PORT})
                    ->command('PING') })
{
    die "port $ENV{TEST_NGINX_REDIS_DEAD_PORT} is in use; "
        . "set TEST_NGINX_REDIS_PORT\n";
}

sub errlog () { $Test::Nginx::Util::ErrLogFile }

# waits until error.log has $count lines matching $re
sub wait_log ($$;$) {
    my ($re, $count, $seconds) = @_;
    return CastRedis::wait_for_log(errlog(), $re, $count,
                                   ($seconds || 10) * $Slow);
}

sub ready_re ($;$) {
    my ($name, $addr) = @_;
    $addr ||= "127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}";
    return qr/\[info\] .*cast: redis $name connection to \Q$addr\E ready/;
}

our $AnyReady = qr/cast: redis (?:command|pubsub) connection to \S+ ready/;
our $AnyLost = qr/cast: redis (?:command|pubsub) connection to \S+ lost: /;

# every block that runs nginx: nothing alarming in error.log
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->must_die && !defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\nsignal\n");
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: both connections become ready, status says connected
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    main::ready_re('command'),
    main::ready_re('pubsub'),
]



=== TEST 2: db=3 is selected, connections are named
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=3;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
my $list = $main::Redis->client_list;
my @cast = grep { /\bname=cast:(?:command|pubsub):\d+\b/ } split /\n/, $list;
Test::More::is(scalar(@cast), 2, "two cast connections in CLIENT LIST")
    or Test::More::diag($list);
Test::More::is(scalar(grep { /\bdb=3\b/ } @cast), 2,
               "both cast connections use db 3");
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    main::ready_re('command'),
    main::ready_re('pubsub'),
]



=== TEST 3: nothing listens: failed lines, nginx keeps serving, disconnected
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_DEAD_PORT connect_timeout=1s;
--- config
    location = /status { cast_status; }
--- init
main::wait_log(qr/connection to \S+ failed: /, 4);
--- request
GET /status
--- response_body_like: "redis":"disconnected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to 127\.0\.0\.1:\d+ failed: Connection refused/,
    qr/\[error\] .*cast: redis pubsub connection to 127\.0\.0\.1:\d+ failed: Connection refused/,
    qr/\[info\] .*cast: redis command connection to 127\.0\.0\.1:\d+: reconnecting in \d+ms/,
]
--- no_error_log eval
[
    qr/cast: redis \w+ connection to \S+ ready/,
    '[alert]',
    '[crit]',
    'signal',
]



=== TEST 4: wrong password: the error text from Redis
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT password=not-the-secret;
--- config
    location = /status { cast_status; }
--- init
main::wait_log(qr/connection to \S+ failed: /, 2);
--- request
GET /status
--- response_body_like: "redis":"disconnected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to \S+ failed: AUTH: (?:WRONGPASS|ERR invalid password)/,
    qr/\[error\] .*cast: redis pubsub connection to \S+ failed: AUTH: (?:WRONGPASS|ERR invalid password)/,
]
--- no_error_log eval
[
    qr/cast: redis \w+ connection to \S+ ready/,
    '[alert]',
    '[crit]',
    'signal',
    'not-the-secret',
]



=== TEST 5: right password
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT password=cast-secret db=1;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    main::ready_re('command', "127.0.0.1:$ENV{TEST_NGINX_REDIS_AUTH_PORT}"),
    main::ready_re('pubsub', "127.0.0.1:$ENV{TEST_NGINX_REDIS_AUTH_PORT}"),
]
--- no_error_log
cast-secret
[alert]
[crit]
signal



=== TEST 6: ACL form: user=default password=...
--- skip_eval: 4: $main::Redis->server_version < 6
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT user=default password=cast-secret;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    main::ready_re('command', "127.0.0.1:$ENV{TEST_NGINX_REDIS_AUTH_PORT}"),
]



=== TEST 7: no password for a server that needs one: NOAUTH
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_AUTH_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log(qr/connection to \S+ failed: /, 2);
--- request
GET /status
--- response_body_like: "redis":"disconnected"
--- error_log eval
qr/\[error\] .*cast: redis command connection to \S+ failed: SELECT 0: NOAUTH/
--- no_error_log eval
[
    qr/cast: redis \w+ connection to \S+ ready/,
    '[alert]',
    '[crit]',
    'signal',
]



=== TEST 8: redis killed and restarted: lost, then ready again
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
$main::Redis->kill;
main::wait_log($main::AnyLost, 2);
main::wait_log(qr/failed: Connection refused/, 1);
$main::Redis->start;
main::wait_log($main::AnyReady, 4);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- grep_error_log eval
qr/cast: redis command connection to \S+ \K(?:ready|lost)/
--- grep_error_log_out
ready
lost
ready
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to \S+ lost: /,
    qr/\[error\] .*cast: redis pubsub connection to \S+ lost: /,
    qr/\[info\] .*cast: redis pubsub connection to \S+: reconnecting in \d+ms/,
]



=== TEST 9: redis stops answering (SIGSTOP): command timeout, then back
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT command_timeout=500ms ping_interval=200ms connect_timeout=1s;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
my $t0 = time;
$main::Redis->pause;
my $n = main::wait_log($main::AnyLost, 2);
my $took = time - $t0;
$main::Redis->resume;
Test::More::is($n, 2, "both connections declared lost");
Test::More::cmp_ok($took, '<', 2 * $main::Slow,
                   "lost within ping_interval + command_timeout");
main::wait_log($main::AnyReady, 4, 15);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to \S+ lost: command timed out \(500ms\)/,
    qr/\[error\] .*cast: redis pubsub connection to \S+ lost: command timed out \(500ms\)/,
]



=== TEST 10: DEBUG SLEEP 3: lost on the timeout, ready when redis wakes up
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT command_timeout=500ms ping_interval=200ms connect_timeout=1s;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
my $sock = $main::Redis->send_command('DEBUG', 'SLEEP', '3');
Test::More::is(main::wait_log($main::AnyLost, 2, 2.5), 2,
               "lost while redis sleeps");
main::wait_log($main::AnyReady, 4, 15);
close $sock;
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
qr/lost: command timed out \(500ms\)/



=== TEST 11: unix socket
--- http_config
    cast_redis unix:$TEST_NGINX_REDIS_SOCKET;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
main::ready_re('command', "unix:$ENV{TEST_NGINX_REDIS_SOCKET}")



=== TEST 12: unix socket that does not exist
--- http_config
    cast_redis unix:$TEST_NGINX_REDIS_NO_SOCKET;
--- config
    location = /status { cast_status; }
--- init
main::wait_log(qr/failed: /, 2);
--- request
GET /status
--- response_body_like: "redis":"disconnected"
--- error_log eval
qr/\[error\] .*cast: redis command connection to unix:\S+ failed: No such file or directory/



=== TEST 14: no cast_redis: no "redis" in the status
--- config
    location = /status { cast_status; }
--- request
GET /status
--- response_body_unlike: "redis"
--- no_error_log
cast: redis
[alert]
[crit]



=== TEST 15: bad port
--- http_config
    cast_redis 127.0.0.1:99999;
--- config
--- must_die
--- error_log
invalid address "127.0.0.1:99999" in "cast_redis": invalid port



=== TEST 16: an address with a path
--- http_config
    cast_redis 127.0.0.1:6379/1;
--- config
--- must_die
--- error_log
invalid address "127.0.0.1:6379/1" in "cast_redis"



=== TEST 17: empty unix path
--- http_config
    cast_redis unix:;
--- config
--- must_die
--- error_log
invalid address "unix:" in "cast_redis": expected "unix:/absolute/path"



=== TEST 18: unknown parameter
--- http_config
    cast_redis 127.0.0.1 timeout=1s;
--- config
--- must_die
--- error_log
invalid parameter "timeout=1s" in "cast_redis"



=== TEST 19: bad db
--- http_config
    cast_redis 127.0.0.1 db=one;
--- config
--- must_die
--- error_log
invalid database number "db=one" in "cast_redis"



=== TEST 20: negative db
--- http_config
    cast_redis 127.0.0.1 db=-1;
--- config
--- must_die
--- error_log
invalid database number "db=-1" in "cast_redis"



=== TEST 21: bad connect_timeout
--- http_config
    cast_redis 127.0.0.1 connect_timeout=soon;
--- config
--- must_die
--- error_log
invalid time "connect_timeout=soon" in "cast_redis"



=== TEST 22: zero command_timeout
--- http_config
    cast_redis 127.0.0.1 command_timeout=0;
--- config
--- must_die
--- error_log
invalid time "command_timeout=0" in "cast_redis"



=== TEST 23: bad ping_interval
--- http_config
    cast_redis 127.0.0.1 ping_interval=-5s;
--- config
--- must_die
--- error_log
invalid time "ping_interval=-5s" in "cast_redis"



=== TEST 24: duplicate directive
--- http_config
    cast_redis 127.0.0.1;
    cast_redis 127.0.0.2;
--- config
--- must_die
--- error_log
"cast_redis" directive is duplicate



=== TEST 25: duplicate parameter
--- http_config
    cast_redis 127.0.0.1 db=1 db=2;
--- config
--- must_die
--- error_log
duplicate parameter "db=2" in "cast_redis"



=== TEST 26: user= without password=
--- http_config
    cast_redis 127.0.0.1 user=cast;
--- config
--- must_die
--- error_log
"user=" requires "password=" in "cast_redis"



=== TEST 27: empty password=
--- http_config
    cast_redis 127.0.0.1 password=;
--- config
--- must_die
--- error_log
empty "password=" in "cast_redis"



=== TEST 28: not allowed in server{}
--- config
    cast_redis 127.0.0.1;
--- must_die
--- error_log
"cast_redis" directive is not allowed here



=== TEST 29: no address
--- http_config
    cast_redis;
--- config
--- must_die
--- error_log
invalid number of arguments in "cast_redis" directive



=== TEST 30: Redis mode: hostile names are refused before Redis (non-UTF-8 path topic: 400, not 500; newline in hub.event; "/" and non-UTF-8 topics)
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
--- config
    location /api/hub { cast_hub; }
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request eval
["POST /api/hub/%E2%82
{\"event\":{\"hub.event\":\"patient-open\",\"context\":[]}}",
"POST /api/hub/t30
{\"event\":{\"hub.event\":\"patient-open\\nNOT JSON <script>\",\"context\":[]}}",
"POST /api/hub
hub.mode=subscribe&hub.topic=bad%FFtopic&hub.events=a",
"POST /api/hub
hub.mode=subscribe&hub.topic=a%2Fb&hub.events=a",
"GET /status"]
--- more_headers eval
[("Content-Type: application/json") x 2,
 ("Content-Type: application/x-www-form-urlencoded") x 2,
 ""]
--- error_code eval
[400, 400, 400, 400, 200]
--- response_body_like eval
['^\{"error":"the topic in the path is not valid UTF-8"\}$',
 '^\{"error":"event\[\\\\"hub\.event\\\\"\] holds a control character"\}$',
 '^\{"error":"hub\.topic is not valid UTF-8"\}$',
 '^\{"error":"hub\.topic holds a \\\\"/\\\\" \(a topic must fit one path segment, \{base\}/\{topic\}\)"\}$',
 '"mode":"redis",.*"subscriptions":0,.*"events_in":0,.*"redis":"connected"']
