# cast_redis with a host name that resolves to several addresses: a
# connect failure moves on to the next address at once; when every
# address has failed, the connection backs off and starts over.
#
# The names come from a hosts file of this test, not from /etc/hosts:
# nginx runs with nss_wrapper preloaded (Debian: libnss-wrapper,
# installed by scripts/install-deps.sh), so the result is the same on a
# fresh Debian 12, where "localhost" is ::1 first, and here.  The
# addresses are tried in the resolver's order.
#
# Redis instances: TEST_NGINX_REDIS_PORT (6432) on ::1 only, the next
# port on 127.0.0.1 only; nothing listens on the port after that.

# before Test::Nginx loads: it keeps the LD_PRELOAD it finds then
our $Scratch;
BEGIN {
    require File::Temp;

    # the test's own names (outside t/servroot: Test::Nginx owns that)
    $Scratch = File::Temp::tempdir('cast-hosts-XXXXXX', TMPDIR => 1,
                                   CLEANUP => 1);
    open my $h, '>', "$Scratch/hosts" or die "$Scratch/hosts: $!\n";
    print $h <<'_EOH_';
::1         v6first.cast.test
127.0.0.1   v6first.cast.test
127.0.0.1   v4first.cast.test
::1         v4first.cast.test
127.0.0.2   two-v4.cast.test
127.0.0.1   two-v4.cast.test
_EOH_
    close $h;

    $ENV{NSS_WRAPPER_HOSTS} = "$Scratch/hosts";
    $ENV{LD_PRELOAD} = join ' ', grep { length } 'libnss_wrapper.so',
                                                 $ENV{LD_PRELOAD} // '';

    # the wrapper must work, or every block below would test /etc/hosts
    my $probe = `getent ahosts v6first.cast.test 2>&1`;
    die "nss_wrapper does not resolve the test's names (install "
        . "libnss-wrapper: scripts/install-deps.sh); getent said: $probe\n"
        if $probe !~ /^::1\s/m || $probe !~ /^127\.0\.0\.1\s/m;
}

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;

$ENV{TEST_NGINX_REDIS_PORT} ||= 6432;
$ENV{TEST_NGINX_REDIS_V4_PORT} ||= $ENV{TEST_NGINX_REDIS_PORT} + 1;
$ENV{TEST_NGINX_REDIS_DEAD_PORT} ||= $ENV{TEST_NGINX_REDIS_PORT} + 2;

our $Slow = $ENV{TEST_NGINX_USE_VALGRIND} ? 6 : 1;

our $V6 = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT},
                         bind => '::1')->start;
our $V4 = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_V4_PORT})->start;

sub errlog () { $Test::Nginx::Util::ErrLogFile }

sub wait_log ($$;$) {
    my ($re, $count, $seconds) = @_;
    return CastRedis::wait_for_log(errlog(), $re, $count,
                                   ($seconds || 10) * $Slow);
}

sub ready_re ($$) {
    my ($name, $addr) = @_;
    return qr/\[info\] .*cast: redis $name connection to \Q$addr\E ready/;
}

our $AnyReady = qr/cast: redis (?:command|pubsub) connection to \S+ ready/;

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\nsignal\n");
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: ::1 first, Redis on 127.0.0.1 only (localhost on a fresh Debian 12): ::1 is refused, 127.0.0.1 is used
--- http_config
    cast_redis v6first.cast.test:$TEST_NGINX_REDIS_V4_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    qr/\[info\] .*cast: redis command connection to \[::1\]:\d+ failed: Connection refused; trying 127\.0\.0\.1:\d+/,
    qr/\[info\] .*cast: redis pubsub connection to \[::1\]:\d+ failed: Connection refused; trying 127\.0\.0\.1:\d+/,
    main::ready_re('command', "127.0.0.1:$ENV{TEST_NGINX_REDIS_V4_PORT}"),
    main::ready_re('pubsub', "127.0.0.1:$ENV{TEST_NGINX_REDIS_V4_PORT}"),
]
--- no_error_log eval
[
    qr/\[error\] .*cast: redis/,
    '[alert]',
    '[crit]',
    'signal',
]



=== TEST 2: 127.0.0.1 first, Redis on ::1 only: 127.0.0.1 is refused, ::1 is used
--- http_config
    cast_redis v4first.cast.test:$TEST_NGINX_REDIS_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    qr/\[info\] .*cast: redis command connection to 127\.0\.0\.1:\d+ failed: Connection refused; trying \[::1\]:\d+/,
    main::ready_re('command', "[::1]:$ENV{TEST_NGINX_REDIS_PORT}"),
    main::ready_re('pubsub', "[::1]:$ENV{TEST_NGINX_REDIS_PORT}"),
]
--- no_error_log eval
[
    qr/\[error\] .*cast: redis/,
    '[alert]',
    '[crit]',
    'signal',
]



=== TEST 3: the first address answers: used at once, nothing else is tried
--- http_config
    cast_redis v6first.cast.test:$TEST_NGINX_REDIS_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    main::ready_re('command', "[::1]:$ENV{TEST_NGINX_REDIS_PORT}"),
    main::ready_re('pubsub', "[::1]:$ENV{TEST_NGINX_REDIS_PORT}"),
]
--- no_error_log eval
[
    qr/cast: redis \w+ connection to \S+ failed/,
    '[alert]',
    '[crit]',
    'signal',
]



=== TEST 4: two IPv4 addresses in the resolver's order: 127.0.0.2 is refused, 127.0.0.1 is used
--- http_config
    cast_redis two-v4.cast.test:$TEST_NGINX_REDIS_V4_PORT;
--- config
    location = /status { cast_status; }
--- init
main::wait_log($main::AnyReady, 2);
--- request
GET /status
--- response_body_like: "redis":"connected"
--- error_log eval
[
    qr/\[info\] .*cast: redis \w+ connection to 127\.0\.0\.2:\d+ failed: Connection refused; trying 127\.0\.0\.1:\d+/,
    main::ready_re('command', "127.0.0.1:$ENV{TEST_NGINX_REDIS_V4_PORT}"),
]



=== TEST 5: no address answers: each is tried, then one error per round, a backoff, and the next round
--- http_config
    cast_redis v6first.cast.test:$TEST_NGINX_REDIS_DEAD_PORT connect_timeout=1s;
--- config
    location = /status { cast_status; }
--- init
# two rounds of the command connection: the second after the backoff
# (the error of a round repeated within 5 s is logged at info)
main::wait_log(qr/cast: redis command connection .* \(every address failed\)/, 2);
--- request
GET /status
--- response_body_like: "redis":"disconnected"
--- error_log eval
[
    qr/\[info\] .*cast: redis command connection to \[::1\]:\d+ failed: Connection refused; trying 127\.0\.0\.1:\d+/,
    qr/\[error\] .*cast: redis command connection to 127\.0\.0\.1:\d+ failed: Connection refused \(every address failed\)/,
    qr/\[info\] .*cast: redis command connection to \[::1\]:\d+: reconnecting in \d+ms/,
]
--- no_error_log eval
[
    qr/cast: redis \w+ connection to \S+ ready/,
    '[alert]',
    '[crit]',
    'signal',
]



=== TEST 6: the rounds are spaced by the backoff, not a busy loop
--- http_config
    cast_redis v6first.cast.test:$TEST_NGINX_REDIS_DEAD_PORT;
--- config
    location = /status { cast_status; }
--- init
Time::HiRes::sleep(1.5);
my $n = CastRedis::count_log(main::errlog(),
    qr/cast: redis command connection to \S+ failed: /);
# rounds 100, 200, 400, 800 ms ... apart: a handful of rounds of 2
# addresses since the worker started (more under valgrind, which starts
# slowly); a loop without the backoff would make thousands
Test::More::cmp_ok($n, '>=', 4, "036 init: at least two rounds ($n attempts)");
Test::More::cmp_ok($n, '<=', 40, "036 init: no busy loop ($n attempts)");
--- request
GET /status
--- response_body_like: "redis":"disconnected"
