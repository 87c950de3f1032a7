# Redis mode (SPEC 5): issue 13, items 3-6, one block each (item 6 has
# two: a flush and a restart).  2 workers under a master share one hub
# through a private redis-server (t/lib/CastRedis.pm); every block starts
# from an empty Redis.
#
#  3. a bind that timed out (redis-server stopped with SIGSTOP past
#     command_timeout) answers 503, and once Redis is back the endpoint can
#     be bound again: 101, never 409
#  4. a publish answered 503 whose command ran when Redis came back: the
#     retry with the same event id and name is answered 2xx and the event
#     reaches each subscriber once; a subscribe answered 503 that ran leaves
#     no record after cast_bind_timeout
#  5. five reloads (HUP) under a steady publish load, Redis healthy: every
#     publish answered 2xx, no "[alert]" (open socket ... left in
#     connection) from the old workers.  At each reload Redis takes 300 ms
#     to answer (DEBUG SLEEP, well within command_timeout), so that the old
#     workers certainly have publishes waiting for Redis as they quit
#  6. after FLUSHALL (TEST 4) and after a redis-server restart that starts
#     empty (TEST 5) the records of the open sockets exist again within
#     about 2 s; unsubscribe (202) and reset (DELETE {base}) reach them
#
# "Paused" is SIGSTOP, not CLIENT PAUSE: a paused redis-server still has
# the commands the workers wrote in its sockets, and runs them when it gets
# SIGCONT, after the workers gave up on them (what makes a 503 a lie).
# The assertions are on behaviour (HTTP codes, frames, what Redis holds),
# not on the module's key names: a record is "there" when a key names its
# subscription id.
#
# Ports: TEST_NGINX_REDIS_PORT (6438).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;
use CastCluster;
use CastMode ();
use IO::Select ();
use MIME::Base64 ();
use File::Temp ();
use Time::HiRes qw(time sleep);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6438;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

# scratch files live outside the servroot, which Test::Nginx must be able
# to remove between blocks
our $Scratch = File::Temp::tempdir('cast-scratch-XXXXXX', TMPDIR => 1,
                                   CLEANUP => 1);

our $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
our $HOLD;
our $Unreachable = '{"error":"the hub\'s Redis is unreachable, try again"}';

our $HubConfig = <<'_EOC_';
    location /api/hub { cast_hub; cast_reset on; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = defined $block->http_config ? $block->http_config : '';
    $hc .= "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n"
        if $hc !~ /\bcast_redis\b/;
    $block->set_value('http_config', $hc);
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . $main::HubConfig);
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nexited on signal\n")
        if !defined $block->no_error_log;
    # the previous block's nginx first, then what it left in Redis (a
    # block that failed half-way may have left it stopped or paused)
    CastMode::stop_nginx();
    $main::Redis->resume;
    $main::Redis->start if !$main::Redis->is_running;
    $main::Redis->command('FLUSHALL');
});

sub port () { server_port() }
sub errlog () { $Test::Nginx::Util::ErrLogFile }
sub master () { master_pid($Test::Nginx::Util::PidFile) }

# $n Redis connections of each kind have been ready (2 workers: 2) ->
# true; a failed test otherwise (no die: that would end the file)
sub ready (;$) {
    my $n = shift || 2;
    my @short;
    for my $kind ('command', 'pubsub') {
        my $got = CastRedis::wait_for_log(errlog(),
            qr/cast: redis $kind connection to \S+ ready/, $n, 10);
        push @short, "$got of $n $kind connections ready" if $got < $n;
    }
    return 1 if !@short;
    Test::More::fail("Redis connections: @short");
    return 0;
}

sub first_bad (@) { join "\n", @_[0 .. ($#_ > 4 ? 4 : $#_)] }

# keep-alive connections, $per on each of the 2 workers -> ($x, $y, $by)
sub workers_conns ($) {
    my $per = shift;
    my $by = ka_spread(port(), 2, $per);
    my @pids = sort keys %$by;
    die "keep-alive connections reach " . scalar(@pids) . " worker(s), not 2\n"
        if @pids != 2;
    return (@pids, $by);
}

# a new keep-alive connection served by worker $pid (or undef)
sub conn_on ($) {
    my $pid = shift;
    for (1 .. 100) {
        my $c = eval { ka_open(port()) } or next;
        my $p = ka_pid($c);
        return $c if defined $p && $p == $pid;
        close $c->{sock};
    }
    return undef;
}

# subscribes (any worker) and binds over keep-alive connection $c (so on
# $c's worker); the socket knows its topic, path and endpoint
sub sub_on ($$;%) {
    my ($c, $topic, %form) = @_;
    my ($code, $path, $body) = subscribe(port(), $topic, %form);
    die "subscribe $topic: $code $body\n" if $code != 202 || !$path;
    my $ws = ws_upgrade($c, $path);
    $ws->{topic} = $topic;
    $ws->{endpoint} = "ws://localhost$path";
    return $ws;
}

# POST {base}/{topic} over keep-alive connection $c -> code
sub ka_publish ($$$;$) {
    my ($c, $topic, $id, $event) = @_;
    my ($code) = ka_request($c, 'POST', "/api/hub/$topic", ev_body($topic, $id, $event));
    return $code;
}

# --- binding with the answer, whatever it is --------------------------------

# writes the handshake for $path on connection $c ({ sock, buf, port })
sub bind_send ($$) {
    my ($c, $path) = @_;
    $c->{key} = MIME::Base64::encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    $c->{path} = $path;
    return CastTest::_write_all($c->{sock},
        CastTest::ws_handshake($path, 'Sec-WebSocket-Key' => $c->{key}));
}

# reads the answer to bind_send -> { code, retry_after, body, at, ws }:
# code 101 with ws (after its greeting and confirmation), or the status
# and body of a refusal; 'timeout' / 'closed' when there was none
sub bind_recv ($;$) {
    my ($c, $secs) = @_;
    my $deadline = time + ($secs || 5);
    my $sel = IO::Select->new($c->{sock});
    my %r;
    while (1) {
        if ($c->{buf} =~ /\A(.*?)\r\n\r\n/s) {
            my $hl = length($1) + 4;
            my ($code, $h) = CastTest::_parse_head($1);
            my $len = $h->{'content-length'} || 0;
            if ($code && $code ne '101' && length($c->{buf}) >= $hl + $len) {
                %r = (code => $code, retry_after => $h->{'retry-after'},
                      body => substr($c->{buf}, $hl, $len));
                substr($c->{buf}, 0, $hl + $len) = '';
                last;
            }
            if ($code && $code eq '101') {
                my $ws = bless { sock => $c->{sock}, buf => substr($c->{buf}, $hl),
                                 closed => 0, eof => 0, close_code => undef,
                                 close_reason => undef }, 'CastTest::WS';
                $c->{sock} = undef;
                $c->{buf} = '';
                $ws = eval { CastCluster::_hellos($ws, $c->{port}, $c->{path}) };
                %r = $ws ? (code => 101, ws => $ws) : (code => "101, then: $@");
                if ($ws) {
                    $ws->{endpoint} = "ws://localhost$c->{path}";
                }
                last;
            }
        }
        my $left = $deadline - time;
        if ($left <= 0 || !$sel->can_read($left)) { %r = (code => 'timeout'); last }
        my $n = sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf});
        if (!$n) { %r = (code => 'closed'); last }
    }
    $r{at} = time;
    return \%r;
}

# binds $path on a new connection (any worker) -> bind_recv's answer
sub bind_any ($) {
    my $path = shift;
    my $c = eval { ka_open(port()) } or return { code => "connect: $@" };
    bind_send($c, $path) or return { code => 'write failed' };
    return bind_recv($c);
}

# --- frames ------------------------------------------------------------------

# every text frame until $secs of silence or the close:
# -> { ids => [event ids], denied => reason, close => 'close N'|'eof'|undef }
sub frames ($$) {
    my ($ws, $secs) = @_;
    my %r = (ids => []);
    while (1) {
        my ($op, $p) = $ws->recv_frame($secs);
        if (!defined $op) {
            $r{close} = 'eof' if $ws->{eof};
            last;
        }
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op != 1 && $op != 8;
        if ($op == 8) {
            $r{close} = 'close ' . (defined $ws->close_code ? $ws->close_code : '');
            last;
        }
        my $d = eval { CastTest::json_decode($p) };
        next if ref $d ne 'HASH';
        if (($d->{'hub.mode'} || '') eq 'denied') { $r{denied} = $d->{'hub.reason'}; next }
        next if exists $d->{'hub.mode'} || exists $d->{type};
        push @{ $r{ids} }, defined $d->{id} ? $d->{id} : '<no id>';
    }
    return \%r;
}

# --- what Redis holds --------------------------------------------------------

# members of all sets and sorted sets, and the number of keys
sub index_size () {
    my $s = $main::Redis->session;
    my ($cursor, $n) = (0, 0);
    do {
        my $r = $s->command('SCAN', $cursor, 'COUNT', 1000);
        ($cursor, my $keys) = @$r;
        for my $k (@$keys) {
            my $type = $s->command('TYPE', $k);
            $n += $s->command('SCARD', $k) if $type eq 'set';
            $n += $s->command('ZCARD', $k) if $type eq 'zset';
        }
    } while ($cursor ne '0');
    my $keys = $s->command('DBSIZE');
    $s->close;
    return ($n, $keys);
}

# the ids among @ids that no key name holds (their records are not there)
sub no_record (@) {
    my @ids = @_;
    my $s = $main::Redis->session;
    my %named;
    my $cursor = 0;
    do {
        my $r = $s->command('SCAN', $cursor, 'COUNT', 1000);
        ($cursor, my $keys) = @$r;
        for my $k (@$keys) {
            $named{$1} = 1 while $k =~ /([0-9a-f]{32})/g;
        }
    } while ($cursor ne '0');
    $s->close;
    return grep { !$named{$_} } @ids;
}

# polls until every id has its record again (at most $secs) -> (the ids
# still without one, seconds waited)
sub records_back ($@) {
    my ($secs, @ids) = @_;
    my $t0 = time;
    my @missing = @ids;
    while (1) {
        @missing = no_record(@ids);
        last if !@missing || time - $t0 > $secs;
        sleep 0.05;
    }
    return (\@missing, time - $t0);
}

run_tests();

__DATA__

=== TEST 1: item 3: a bind that timed out (Redis stopped past command_timeout) answers 503; after Redis is back the endpoint binds again (101, never 409) within 2 s, and receives
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connect_timeout=300ms command_timeout=300ms;
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(1);
my ($ca, $pa) = subscribe(port(), 'tb');
my ($cb, $pb) = subscribe(port(), 'tb');
is("$ca $cb", '202 202', 'two subscriptions to bind');
# A is bound through worker X, B through worker Y, both while Redis is
# stopped: both binds are written to Redis before either times out
$main::Redis->pause;
my $paused_at = time;
bind_send($by->{$x}[0], $pa);
bind_send($by->{$y}[0], $pb);
my $ra = bind_recv($by->{$x}[0], 3);
my $rb = bind_recv($by->{$y}[0], 3);
sleep 0.1 while time < $paused_at + 0.9;
$main::Redis->resume;
my $resumed_at = time;
is(join(' ', map { "$_->{code} " . ($_->{retry_after} // '-') . " $_->{body}" } $ra, $rb),
   "503 1 $main::Unreachable 503 1 $main::Unreachable",
   'both binds while Redis is stopped: 503, Retry-After: 1');
ok($ra->{at} - $paused_at < 1.5 && $rb->{at} - $paused_at < 1.5,
   sprintf('answered within 1.5 s (command_timeout=300ms): %.2f s, %.2f s',
           $ra->{at} - $paused_at, $rb->{at} - $paused_at));
# A again, at once and every 100 ms, on the worker whose bind timed out
my (@codes_a, $wa);
while (time < $resumed_at + 2) {
    my $c = conn_on($x);
    next if !$c;
    bind_send($c, $pa);
    my $r = bind_recv($c, 3);
    push @codes_a, $r->{code};
    if ($r->{ws}) { $wa = $r->{ws}; last }
    last if $r->{code} ne '503';
    sleep 0.1;
}
is($codes_a[-1], 101, sprintf('A bound again through worker X within 2 s of the resume (%.2f s)',
                              time - $resumed_at));
is(join(',', grep { $_ ne '503' && $_ ne '101' } @codes_a), '',
   'no answer but 503 (Redis not reached yet) and 101, never 409: ' . join(',', @codes_a));
# B as a client would: after Retry-After, on any worker
sleep 0.05 while time < $resumed_at + 1;
my (@codes_b, $wb);
while (time < $resumed_at + 2) {
    my $r = bind_any($pb);
    push @codes_b, $r->{code};
    if ($r->{ws}) { $wb = $r->{ws}; last }
    last if $r->{code} ne '503';
    sleep 0.1;
}
is(join(',', @codes_b), '101', 'B bound again on any worker after Retry-After: 101 at once');
my ($pc) = publish(port(), 'tb', 'tb-1');
is($pc, 200, 'a publish on the topic');
is(join(' ', map { $_ ? join(',', @{ frames($_, 1.5)->{ids} }) : 'not bound' } $wa, $wb),
   'tb-1 tb-1', 'both rebound sockets receive it');
my $again = bind_any($pa);
is($again->{code}, 409, 'binding A a second time (it has its socket): 409');
$main::HOLD = [$wa, $wb];
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to 127\.0\.0\.1:\d+ lost: .*timed out/,
]



=== TEST 2: item 4: a publish answered 503 that ran when Redis came back: the retry (same id and name) is answered 200 and each subscriber has the event once, a new id is delivered; a subscribe answered 503 leaves no record after cast_bind_timeout
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT connect_timeout=300ms command_timeout=300ms;
    cast_bind_timeout 2s;
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(2);
my @ws = (sub_on($by->{$x}[0], 'lie'), sub_on($by->{$y}[0], 'lie'));
is(ka_publish($by->{$x}[1], 'lie', 'lie-0'), 200, 'lie-0 published');
is(join(' ', map { join ',', @{ frames($_, 1)->{ids} } } @ws), 'lie-0 lie-0',
   'both subscribers (workers X and Y) got lie-0');
# the publish whose command Redis runs only after the worker gave up
$main::Redis->pause;
my $paused_at = time;
my ($c1, $h1, $b1) = ka_request($by->{$x}[1], 'POST', '/api/hub/lie', ev_body('lie', 'lie-1'));
my $took = time - $paused_at;
sleep 0.1 while time < $paused_at + 0.9;
$main::Redis->resume;
my $resumed_at = time;
is("$c1 " . ($h1->{'retry-after'} // '-') . " $b1", "503 1 $main::Unreachable",
   sprintf('lie-1 while Redis is stopped: 503, Retry-After: 1 (%.2f s)', $took));
my $early = frames($ws[0], 0.5);
my $early_y = frames($ws[1], 0.1);
ok(scalar(grep { $_ eq 'lie-1' } @{ $early->{ids} }) <= 1
   && scalar(grep { $_ eq 'lie-1' } @{ $early_y->{ids} }) <= 1,
   'after the resume each subscriber got lie-1 at most once: '
   . join(',', @{ $early->{ids} }) . ' / ' . join(',', @{ $early_y->{ids} }));
Test::More::note('lie-1 ran when Redis resumed: '
   . (grep({ $_ eq 'lie-1' } @{ $early->{ids} }) ? 'yes' : 'not seen yet'));
# the publisher retries until it is answered (first while the workers
# reconnect: 503)
my @codes;
while (time < $resumed_at + 3) {
    my ($c) = publish(port(), 'lie', 'lie-1');
    push @codes, $c;
    last if $c ne '503';
    sleep 0.1;
}
is($codes[-1], 200, 'the retry of lie-1 (same id, same event name): 200');
is(join(',', grep { $_ ne '503' && $_ ne '200' } @codes), '',
   'no answer but 503 (Redis not reached yet) and 200: ' . join(',', @codes));
my @again = map { (publish(port(), 'lie', 'lie-1'))[0] } 1 .. 2;
is("@again", '200 200', 'lie-1 retried twice more (any worker): 200');
is(ka_publish($by->{$y}[1], 'lie', 'lie-2'), 200, 'lie-2 (a new id): 200');
my @rest = map { frames($_, 1) } @ws;
my @all = ([ @{ $early->{ids} }, @{ $rest[0]{ids} } ],
           [ @{ $early_y->{ids} }, @{ $rest[1]{ids} } ]);
is(join(' ', map { join ',', @$_ } @all), 'lie-1,lie-2 lie-1,lie-2',
   'each subscriber (X, Y) got lie-1 once, then lie-2');
# a subscribe whose command Redis runs only after the worker gave up
my ($n0, $k0) = index_size();
$main::Redis->pause;
$paused_at = time;
my ($sc, undef, $sb, $sh) = subscribe(port(), 'lie');
sleep 0.1 while time < $paused_at + 0.9;
$main::Redis->resume;
$resumed_at = time;
is("$sc " . ($sh->{'retry-after'} // '-') . " $sb", "503 1 $main::Unreachable",
   'a subscribe while Redis is stopped: 503, Retry-After: 1');
my ($max_n, $max_k) = ($n0, $k0);
while (time < $resumed_at + 0.8) {
    my ($n, $k) = index_size();
    $max_n = $n if $n > $max_n;
    $max_k = $k if $k > $max_k;
    sleep 0.05;
}
ok($max_n > $n0 && $max_k > $k0,
   "it ran when Redis resumed (the 503 was a lie): index members $n0 -> $max_n, keys $k0 -> $max_k");
my ($n, $k);
while (1) {
    ($n, $k) = index_size();
    last if ($n == $n0 && $k == $k0) || time > $resumed_at + 2 + 1.5;
    sleep 0.1;
}
is("$n $k", "$n0 $k0", sprintf('its record is gone after cast_bind_timeout (2 s): index members '
   . 'and keys back to %d, %d (%.2f s after the resume)', $n0, $k0, time - $resumed_at));
is(join(' ', map { join ',', @{ frames($_, 0.2)->{ids} } } @ws), ' ', 'no event since');
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to 127\.0\.0\.1:\d+ lost: .*timed out/,
]



=== TEST 3: item 5: five reloads (HUP) under a steady publish load, Redis healthy (each time 300 ms slow to answer, well within command_timeout): every publish answered 2xx (none 503), no "[alert]" (open socket ... left in connection)
--- config
--- init
package main;
ready();
my $m = master();
my @pubs = map { publisher_start(port => port(), topic => 'hup', prefix => "p$_-",
                                 interval => 0.005, file => "$main::Scratch/publisher$_.txt") } 1 .. 3;
sleep 0.5;
my @slow;
for my $round (1 .. 5) {
    my @old = worker_pids($m);
    # Redis answers nothing for 300 ms (well within command_timeout, 2 s):
    # the old workers certainly have publishes waiting for Redis when they
    # are told to quit
    my $sleeper = $main::Redis->send_command('DEBUG', 'SLEEP', '0.3');
    sleep 0.1;
    my $t0 = time;
    kill 'HUP', $m;
    my ($left, @now);
    while (time < $t0 + 10) {
        my %now = map { $_ => 1 } @now = worker_pids($m);
        $left = grep { $now{$_} } @old;
        last if !$left && @now == 2;
        sleep 0.02;
    }
    push @slow, sprintf('reload %d: %d old workers left, %d workers after %.1f s',
                        $round, $left, scalar @now, time - $t0)
        if $left || @now != 2;
    ready(2 * ($round + 1));
    close $sleeper;
    sleep 0.3;
}
is(join('; ', @slow), '', 'after each of the 5 reloads the 2 old workers exited and 2 new ones run');
sleep 0.3;
my @r = map { publisher_stop($_) } @pubs;
ok(@r >= 150, scalar(@r) . ' publishes during the reloads');
my @bad = grep { $_->{code} !~ /^2\d\d$/ } @r;
my %by_code;
$by_code{ $_->{code} }++ for @bad;
is(scalar @bad, 0, 'every publish answered 2xx (' . scalar(@r) . ' publishes)')
    or diag('not 2xx: ' . join(', ', map { "$_ x $by_code{$_}" } sort keys %by_code)
            . "\n" . first_bad(map { "$_->{id} $_->{code} $_->{body}" } @bad));
is(scalar(grep { $_->{code} eq '503' } @r), 0, 'none answered 503');
my @alerts = log_grep(errlog(), qr/\[alert\]|open socket/);
is(first_bad(@alerts), '', 'no [alert] in error.log (open socket ... left in connection, aborting)');
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- no_error_log
[alert]
[crit]
[emerg]
exited on signal
open socket
aborting



=== TEST 4: item 6: FLUSHALL (three times) while sockets are bound on both workers: the records are back within 2 s each time; then unsubscribe (202) reaches its socket (denial, Close 1000) and DELETE {base} the others
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(2);
my @ws = (sub_on($by->{$x}[0], 'fl'), sub_on($by->{$x}[1], 'fl'),
          sub_on($by->{$y}[0], 'fl'), sub_on($by->{$y}[1], 'fl'));
my @ids = map { $_->{cast_id} } @ws;
is(join(' ', no_record(@ids)), '', 'the 4 records are in Redis');
for my $round (1 .. 3) {
    $main::Redis->command('FLUSHALL');
    my ($missing, $secs) = records_back(2, @ids);
    is(join(' ', map { substr($_, 0, 8) } @$missing), '',
       sprintf('FLUSHALL #%d: every socket\'s record is back within 2 s (%.2f s)', $round, $secs));
}
my ($pc) = publish(port(), 'fl', 'fl-1');
is($pc, 200, 'a publish');
is(join(' ', map { join ',', @{ frames($_, 1)->{ids} } } @ws), 'fl-1 fl-1 fl-1 fl-1',
   'every socket receives it');
my ($uc) = unsubscribe(port(), 'fl', $ws[0]{cast_path});
is($uc, 202, "unsubscribe of a socket on worker X: 202");
my $r = frames($ws[0], 2);
is(($r->{denied} // 'none') . ' / ' . ($r->{close} // 'open'), 'unsubscribed / close 1000',
   'that socket: denial "unsubscribed", Close 1000');
my ($dc) = CastTest::http_request('DELETE', '/api/hub');
is($dc, 200, 'DELETE {base}: 200');
for my $i (1 .. 3) {
    my $f = frames($ws[$i], 2);
    is(($f->{denied} // 'none') . ' / ' . ($f->{close} // 'open') . ' / ' . join(',', @{ $f->{ids} }),
       'reset / close 1000 / ', "socket $i (worker " . ($i < 2 ? 'X' : 'Y')
       . '): denial "reset", Close 1000, no event');
}
($uc) = unsubscribe(port(), 'fl', $ws[1]{cast_path});
is($uc, 404, 'after the reset its endpoint is unknown: 404');
--- response_body_like: "mode":"redis",.*"redis":"connected"



=== TEST 5: item 6: redis-server restarted empty (three times) while sockets are bound on both workers: the records are back within 3 s of the start each time; then unsubscribe (202) reaches its socket (denial, Close 1000) and DELETE {base} the others
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(2);
my @ws = (sub_on($by->{$x}[0], 'rs'), sub_on($by->{$x}[1], 'rs'),
          sub_on($by->{$y}[0], 'rs'), sub_on($by->{$y}[1], 'rs'));
my @ids = map { $_->{cast_id} } @ws;
is(join(' ', no_record(@ids)), '', 'the 4 records are in Redis');
for my $round (1 .. 3) {
    $main::Redis->restart;
    my ($missing, $secs) = records_back(3, @ids);
    is(join(' ', map { substr($_, 0, 8) } @$missing), '',
       sprintf('restart #%d: every socket\'s record is back within 3 s of the start (%.2f s)',
               $round, $secs));
}
ok(wait_connected(port(), 2, 5), 'both workers connected');
my @codes;
my $t0 = time;
while (time < $t0 + 3) {
    my ($c) = publish(port(), 'rs', 'rs-1');
    push @codes, $c;
    last if $c ne '503';
    sleep 0.1;
}
is($codes[-1], 200, 'a publish: 200 (' . join(',', @codes) . ')');
is(join(' ', map { join ',', @{ frames($_, 1)->{ids} } } @ws), 'rs-1 rs-1 rs-1 rs-1',
   'every socket receives it once');
my ($uc) = unsubscribe(port(), 'rs', $ws[2]{cast_path});
is($uc, 202, "unsubscribe of a socket on worker Y: 202");
my $r = frames($ws[2], 2);
is(($r->{denied} // 'none') . ' / ' . ($r->{close} // 'open'), 'unsubscribed / close 1000',
   'that socket: denial "unsubscribed", Close 1000');
my ($dc) = CastTest::http_request('DELETE', '/api/hub');
is($dc, 200, 'DELETE {base}: 200');
for my $i (0, 1, 3) {
    my $f = frames($ws[$i], 2);
    is(($f->{denied} // 'none') . ' / ' . ($f->{close} // 'open') . ' / ' . join(',', @{ $f->{ids} }),
       'reset / close 1000 / ', "socket $i (worker " . ($i < 2 ? 'X' : 'Y')
       . '): denial "reset", Close 1000, no event');
}
--- response_body_like: "mode":"redis",.*"redis":"connected"
