# Redis mode (SPEC 5): the store problems of issue 7, one block each.
# 2 workers under a master share one hub through a private redis-server
# (t/lib/CastRedis.pm); every block starts from an empty Redis.
#
#  1. control characters in hub.event: 400; subscribers only get JSON
#  2. unsubscribe, reset and renew made (through another worker) while the
#     socket's worker has lost its pub/sub connection reach the socket once
#     it is back (4 blocks)
#  3. events published while a worker's pub/sub connection is down arrive
#     there after the reconnect, on topics with and without earlier events,
#     in order, exactly once
#  4. after a reload (HUP), and after another host stopped (QUIT), the
#     endpoints of the closed sockets can be bound again (2 blocks)
#  5. expired subscriptions leave no id in any Redis key or index
#  6. cast_max_topics applies in Redis mode
#  7. a Redis older than 6.2 is refused at connect, with a log line
#
# "Pub/sub down" for worker X: its connection in Redis's subscribed state
# (found through CLIENT LIST and /proc, not by name) is killed with CLIENT
# KILL ID while maxclients is lowered to the connections that stay, so X's
# reconnects are refused until it is raised again.  Its command connection
# and the other worker Y keep working; requests go through Y.  The assertions
# are on behaviour (HTTP codes, frames, Redis contents, log lines), not on
# the module's key or channel names.
#
# Ports: TEST_NGINX_REDIS_PORT (6430), TEST_NGINX_OLD_REDIS_PORT (the port
# after it: a proxy to that Redis that says it is 6.0.16), and
# TEST_NGINX_SERVER_PORT + 1 for a second nginx host.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;
use CastCluster;
use CastMode ();
use IO::Socket::INET ();
use IO::Select ();
use POSIX ();
use Time::HiRes qw(time sleep);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6430;
$ENV{TEST_NGINX_OLD_REDIS_PORT} ||= $ENV{TEST_NGINX_REDIS_PORT} + 1;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

our $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
our $HOLD;

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
    # the previous block's nginx first, then what it left in Redis
    CastMode::stop_nginx();
    $main::Redis->command('CONFIG', 'SET', 'maxclients', 10000);
    $main::Redis->command('FLUSHALL');
});

sub port () { server_port() }
sub errlog () { $Test::Nginx::Util::ErrLogFile }
sub master () { master_pid($Test::Nginx::Util::PidFile) }

# $n Redis connections of each kind are ready (2 workers: 2)
sub ready (;$) {
    my $n = shift || 2;
    for my $kind ('command', 'pubsub') {
        my $got = CastRedis::wait_for_log(errlog(),
            qr/cast: redis $kind connection to \S+ ready/, $n, 10);
        die "only $got of $n $kind connections ready\n" if $got < $n;
    }
}

sub first_bad (@) { join "\n", @_[0 .. ($#_ > 4 ? 4 : $#_)] }

sub form (%) {
    my %f = @_;
    my @p;
    for my $k (sort keys %f) {
        (my $v = $f{$k}) =~ s/([^A-Za-z0-9._~*-])/sprintf('%%%02X', ord $1)/ge;
        push @p, "$k=$v";
    }
    return join '&', @p;
}

# keep-alive connections, $per on each of the 2 workers -> ($x, $y, $by)
sub workers_conns ($) {
    my $per = shift;
    my $by = ka_spread(port(), 2, $per);
    my @pids = sort keys %$by;
    die "keep-alive connections reach " . scalar(@pids) . " worker(s), not 2\n"
        if @pids != 2;
    return (@pids, $by);
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

# every text frame until $secs of silence or the close:
# -> { ids => [event ids], conf => [confirmations], denied => reason,
#      bad => [texts that are not JSON objects], close => 'close N'|'eof'|undef }
sub frames ($$) {
    my ($ws, $secs) = @_;
    my %r = (ids => [], conf => [], bad => []);
    while (1) {
        my ($op, $p) = $ws->recv_frame($secs);
        if (!defined $op) {
            $r{close} = 'eof' if $ws->{eof};
            last;
        }
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op == 10;
        if ($op == 8) {
            $r{close} = 'close ' . (defined $ws->close_code ? $ws->close_code : '');
            last;
        }
        if ($op != 1) { push @{ $r{bad} }, "opcode $op"; next }
        my $d = eval { CastTest::json_decode($p) };
        if (ref $d ne 'HASH') { push @{ $r{bad} }, $p; next }
        my $mode = $d->{'hub.mode'} || '';
        if ($mode eq 'subscribe') { push @{ $r{conf} }, $d; next }
        if ($mode eq 'denied') { $r{denied} = $d->{'hub.reason'}; next }
        next if exists $d->{'hub.mode'} || exists $d->{type};
        push @{ $r{ids} }, defined $d->{id} ? $d->{id} : '<no id>';
    }
    return \%r;
}

# --- one worker's pub/sub connection down and up again ----------------------

sub subscribed (@) { grep { /\b(?:sub|psub|ssub)=[1-9]/ } @_ }

# the CLIENT LIST lines of worker $pid's connections (matched through the
# TCP ports: CLIENT LIST's addr= is the worker's end of the connection)
sub worker_clients ($$) {
    my ($s, $pid) = @_;
    my %mine;
    for my $fd (glob "/proc/$pid/fd/*") {
        my $l = readlink $fd;
        $mine{$1} = 1 if defined $l && $l =~ /^socket:\[(\d+)\]$/;
    }
    my %inode;      # local port of a connection to our Redis -> inode
    my $rport = sprintf '%04X', $ENV{TEST_NGINX_REDIS_PORT};
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        while (my $l = <$in>) {
            my @f = split ' ', $l;
            next if @f < 10 || $f[2] !~ /:$rport$/ || $f[1] !~ /:([0-9A-F]{4})$/;
            $inode{hex $1} = $f[9];
        }
        close $in;
    }
    return grep { /\baddr=[^ ]*:(\d+) / && $inode{$1} && $mine{ $inode{$1} } }
           split /\n/, $s->command('CLIENT', 'LIST');
}

# kills worker $pid's pub/sub connection; its reconnects are refused (the
# other connections stay) until pubsub_up; -> the Redis session to pass on
sub pubsub_down ($) {
    my $pid = shift;
    my $s = $main::Redis->session;
    my ($killed, $left) = (0, 0);
    for (1 .. 10) {
        my @ids = map { /\bid=(\d+)/ } subscribed(worker_clients($s, $pid));
        my @all = split /\n/, $s->command('CLIENT', 'LIST');
        $s->command('CONFIG', 'SET', 'maxclients', @all - @ids);
        $killed += $s->command('CLIENT', 'KILL', 'ID', $_) for @ids;
        sleep 0.2;
        $left = subscribed(worker_clients($s, $pid));
        last if !$left;
    }
    Test::More::ok($killed >= 1 && !$left,
        "worker ${pid}'s pub/sub connection is down ($killed killed, reconnects refused)");
    return $s;
}

sub pubsub_up ($$) {
    my ($s, $pid) = @_;
    $s->command('CONFIG', 'SET', 'maxclients', 10000);
    my $n = 0;
    my $deadline = time + 15;
    while (time < $deadline) {
        $n = subscribed(worker_clients($s, $pid));
        last if $n;
        sleep 0.05;
    }
    $s->close;
    Test::More::ok($n, "worker ${pid}'s pub/sub connection is back");
}

# a request over keep-alive connection $c with a form body -> code
sub ka_form ($$%) {
    my ($c, $method, %f) = @_;
    my ($code) = ka_request($c, $method, '/api/hub', form(%f), 'application/x-www-form-urlencoded');
    return $code;
}

# --- what Redis still knows about subscription ids -------------------------

# -> { id => [where it is named] }: key names, and the members, fields and
# values of sets, sorted sets, lists and hashes (streams are logs, not
# indexes)
sub redis_refs (@) {
    my @ids = @_;
    my $s = $main::Redis->session;
    my %refs = map { $_ => [] } @ids;
    my $re = join '|', map { quotemeta } @ids;
    my ($cursor, %seen) = (0);
    do {
        my $r = $s->command('SCAN', $cursor, 'COUNT', 1000);
        ($cursor, my $keys) = @$r;
        for my $k (@$keys) {
            next if $seen{$k}++;
            my $type = $s->command('TYPE', $k);
            my @vals;
            if ($type eq 'set') {
                @vals = @{ $s->command('SMEMBERS', $k) || [] };
            } elsif ($type eq 'zset') {
                @vals = @{ $s->command('ZRANGE', $k, 0, -1) || [] };
            } elsif ($type eq 'list') {
                @vals = @{ $s->command('LRANGE', $k, 0, -1) || [] };
            } elsif ($type eq 'hash') {
                @vals = @{ $s->command('HGETALL', $k) || [] };
            }
            for my $text ($k, @vals) {
                next if !defined $text;
                while ($text =~ /($re)/g) {
                    push @{ $refs{$1} }, $text eq $k ? "key $k" : "$type $k";
                }
            }
        }
    } while ($cursor ne '0');
    $s->close;
    return \%refs;
}

# members of all sets and sorted sets (for the diagnostics)
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
    $s->close;
    return $n;
}

# --- a Redis that says it is 6.0.16 ---------------------------------------
#
# A proxy to $Redis (so everything works through it) that rewrites the
# server's version in every reply (INFO's redis_version, HELLO's version)
# to a 6.0 version of the same length: RESP lengths stay right.  Replies
# are forwarded up to their last CRLF, so a version is never split.

our $RealVersion = ($Redis->command('INFO', 'server') =~ /redis_version:(\S+)/)[0]
    or die "no redis_version in INFO\n";
our $OldVersion = length($RealVersion) == 6 ? '6.0.16'
                                            : '6.0.' . ('1' x (length($RealVersion) - 4));
our $OldPid = start_old_redis();
add_cleanup_handler(sub {
    if ($OldPid) { kill 'KILL', $OldPid; waitpid $OldPid, 0; undef $OldPid }
});

sub start_old_redis {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $ENV{TEST_NGINX_OLD_REDIS_PORT},
                                    Listen => 64, ReuseAddr => 1)
        or die "cannot listen on $ENV{TEST_NGINX_OLD_REDIS_PORT}: $!\n";
    my $pid = fork;
    die "fork: $!\n" if !defined $pid;
    if ($pid) {
        close $srv;
        return $pid;
    }
    my $parent = getppid();
    $SIG{ALRM} = sub { POSIX::_exit(0) };
    alarm 600;
    $SIG{PIPE} = 'IGNORE';
    my $sel = IO::Select->new($srv);
    my (%other, %from_redis);
    my $drop = sub {
        for my $fh (@_) {
            next if !$fh;
            delete $other{fileno $fh};
            delete $from_redis{fileno $fh};
            $sel->remove($fh);
            close $fh;
        }
    };
    while (1) {
        POSIX::_exit(0) if getppid() != $parent;     # the test is gone
        for my $fh ($sel->can_read(1)) {
            if ($fh == $srv) {
                my $c = $srv->accept or next;
                my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $ENV{TEST_NGINX_REDIS_PORT});
                if (!$u) { close $c; next }
                binmode $_ for $c, $u;
                $other{fileno $c} = $u;
                $other{fileno $u} = $c;
                $from_redis{fileno $u} = '';
                $sel->add($c, $u);
                next;
            }
            my $to = $other{fileno $fh};
            my $n = sysread($fh, my $buf, 65536);
            if (!$n) { $drop->($fh, $to); next }
            if (exists $from_redis{fileno $fh}) {
                $from_redis{fileno $fh} .= $buf;
                my $cut = rindex($from_redis{fileno $fh}, "\r\n");
                next if $cut < 0;
                $buf = substr($from_redis{fileno $fh}, 0, $cut + 2, '');
                $buf =~ s/\Q$RealVersion\E/$OldVersion/g;
            }
            $drop->($fh, $to) if !CastTest::_write_all($to, $buf);
        }
    }
}

run_tests();

__DATA__

=== TEST 1: control characters in hub.event: every publish is refused 400 (HTTP and socket, both workers); subscribers only ever get JSON
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(3);
my @subs = (sub_on($by->{$x}[0], 'nl', 'hub.events' => 'patient-open'),
            sub_on($by->{$y}[0], 'nl', 'hub.events' => 'patient-open'),
            sub_on($by->{$x}[1], 'nl', 'hub.events' => '*'));
my $publisher = sub_on($by->{$y}[1], 'nl-pub', 'hub.events' => 'patient-open');
my @http = ($by->{$x}[2], $by->{$y}[2]);
my @bad;
my $i = 0;
for my $ctl ('\n', '\r', '\t', '\u0000', '\u001f', '\u007f') {
    $i++;
    my $body = '{"id":"ctl-' . $i . '","event":{"hub.topic":"nl","hub.event":"patient-open'
               . $ctl . 'NOT JSON","context":[{"key":"patient","resource":'
               . '{"resourceType":"Patient","id":"p' . $i . '"}}]}}';
    for my $c (@http) {
        my ($code, undef, $resp) = ka_request($c, 'POST', '/api/hub/nl', $body);
        push @bad, "HTTP $ctl: $code $resp"
            if $code ne '400' || $resp !~ /^\{"error":"(?:.*hub\.event.*|invalid JSON: .*)"\}$/
               || ($ctl ne '\u0000' && $resp !~ /hub\.event/);
    }
    $publisher->send_text($body);
    my ($op, $p) = $publisher->recv_frame(3);
    my $e = defined $op && $op == 1 ? eval { CastTest::json_decode($p) } : undef;
    # a NUL is refused by the JSON parser already: no id then
    my ($want_id, $want_error) = $ctl eq '\u0000' ? (undef, qr/^invalid JSON: /)
                                                  : ("ctl-$i", qr/hub\.event/);
    push @bad, "socket $ctl: " . (defined $op ? "opcode $op: $p" : 'no answer')
        if ref $e ne 'HASH' || ($e->{id} // '<null>') ne ($want_id // '<null>')
           || ($e->{error} // '') !~ $want_error;
}
is(first_bad(@bad), '', 'every event name with a control character: 400 over HTTP (both workers), an error frame over the socket');
is(ka_publish($http[1], 'nl', 'ok-1', 'patient-open'), 200, 'a valid event afterwards: 200');
for my $n (0 .. $#subs) {
    my $r = frames($subs[$n], 1.5);
    is(join(' | ', @{ $r->{bad} }), '', "subscriber $n: every text frame is a JSON object");
    is(join(',', @{ $r->{ids} }), 'ok-1', "subscriber $n: only the valid event");
}
my ($context) = (CastTest::http_request('GET', '/api/hub/nl'))[2];
unlike($context, qr/"id":"p\d"/, 'no refused event is in the stored context');
$main::HOLD = [@subs, $publisher];
--- response_body_like: "mode":"redis"



=== TEST 2: unsubscribe through worker Y while worker X's pub/sub is down: after X reconnects its socket gets the denial and Close 1000, never another event
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(3);
my $gone = sub_on($by->{$x}[0], 'ud', 'hub.events' => 'tick');
my @kept = (sub_on($by->{$x}[1], 'ud', 'hub.events' => 'tick'), sub_on($by->{$y}[0], 'ud', 'hub.events' => 'tick'));
my $cy = $by->{$y}[2];
is(ka_publish($cy, 'ud', 'u0'), 200, 'u0 published');
is(join(' ', map { join ',', @{ frames($_, 0.5)->{ids} } } $gone, @kept), 'u0 u0 u0', 'every socket got u0');
my $down = pubsub_down($x);
is(ka_form($cy, 'POST', 'hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
           'hub.topic' => 'ud', 'hub.channel.endpoint' => $gone->{endpoint}),
   202, "unsubscribe of X's socket through Y while X's pub/sub is down: 202");
is(ka_publish($cy, 'ud', 'u1'), 200, 'u1 published meanwhile');
pubsub_up($down, $x);
is(ka_publish($cy, 'ud', 'u2'), 200, 'u2 published after the reconnect');
my $r = frames($gone, 3);
is($r->{denied}, 'unsubscribed', 'the unsubscribed socket: denial "unsubscribed"');
is($r->{close}, 'close 1000', 'the unsubscribed socket: Close 1000');
is(join(',', @{ $r->{ids} }), '', 'the unsubscribed socket: no event after the unsubscribe');
is(join(' ', map { join ',', @{ frames($_, 1)->{ids} } } @kept), 'u1,u2 u1,u2',
   'the other sockets (X, Y): u1 and u2');
is(ka_form($cy, 'POST', 'hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
           'hub.topic' => 'ud', 'hub.channel.endpoint' => $gone->{endpoint}),
   404, 'unsubscribe again: 404');
$main::HOLD = [$gone, @kept];
--- response_body_like: "mode":"redis"



=== TEST 3: reset naming an endpoint, through worker Y while worker X's pub/sub is down: after X reconnects that socket gets the denial "reset" and Close 1000, never another event
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(3);
my $gone = sub_on($by->{$x}[0], 'rs', 'hub.events' => 'tick');
my @kept = (sub_on($by->{$x}[1], 'rs', 'hub.events' => 'tick'), sub_on($by->{$y}[0], 'rs', 'hub.events' => 'tick'));
my $cy = $by->{$y}[2];
is(ka_publish($cy, 'rs', 'r0'), 200, 'r0 published');
is(join(' ', map { join ',', @{ frames($_, 0.5)->{ids} } } $gone, @kept), 'r0 r0 r0', 'every socket got r0');
my $down = pubsub_down($x);
my ($code) = ka_request($cy, 'DELETE', '/api/hub',
                        CastTest::json_encode({ 'hub.channel.endpoint' => $gone->{endpoint} }));
is($code, 200, "reset of X's socket through Y while X's pub/sub is down: 200");
is(ka_publish($cy, 'rs', 'r1'), 200, 'r1 published meanwhile');
pubsub_up($down, $x);
is(ka_publish($cy, 'rs', 'r2'), 200, 'r2 published after the reconnect');
my $r = frames($gone, 3);
is($r->{denied}, 'reset', 'the reset socket: denial "reset"');
is($r->{close}, 'close 1000', 'the reset socket: Close 1000');
is(join(',', @{ $r->{ids} }), '', 'the reset socket: no event after the reset');
is(join(' ', map { join ',', @{ frames($_, 1)->{ids} } } @kept), 'r1,r2 r1,r2',
   'the other sockets (X, Y): r1 and r2');
$main::HOLD = [$gone, @kept];
--- response_body_like: "mode":"redis"



=== TEST 4: reset of the whole hub through worker Y while worker X's pub/sub is down: after X reconnects every socket (X and Y, two topics) got the denial "reset" and Close 1000, no event
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(3);
my @ws = (sub_on($by->{$x}[0], 'ra', 'hub.events' => 'tick'), sub_on($by->{$x}[1], 'rb', 'hub.events' => 'tick'),
          sub_on($by->{$y}[0], 'ra', 'hub.events' => 'tick'), sub_on($by->{$y}[1], 'rb', 'hub.events' => 'tick'));
my $cy = $by->{$y}[2];
my $down = pubsub_down($x);
my ($code) = ka_request($cy, 'DELETE', '/api/hub');
is($code, 200, "DELETE {base} through Y while X's pub/sub is down: 200");
is(join(' ', map { ka_publish($cy, $_, "$_-1") } 'ra', 'rb'), '200 200', 'an event on each topic meanwhile');
pubsub_up($down, $x);
for my $n (0 .. $#ws) {
    my $r = frames($ws[$n], 3);
    is(($r->{denied} // 'none') . ' / ' . ($r->{close} // 'open') . ' / ' . join(',', @{ $r->{ids} }),
       'reset / close 1000 / ', "socket $n ($ws[$n]{topic}, worker " . ($n < 2 ? 'X' : 'Y')
       . '): denial "reset", Close 1000, no event');
}
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis"



=== TEST 5: renew (re-subscribe with the endpoint) through worker Y while worker X's pub/sub is down: after X reconnects its socket gets the fresh confirmation and only the new event set
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(2);
my $ws = sub_on($by->{$x}[0], 'rn', 'hub.events' => 'patient-open');
my $other = sub_on($by->{$y}[0], 'rn', 'hub.events' => 'patient-open,patient-close');
my $cy = $by->{$y}[1];
is(ka_publish($cy, 'rn', 'o0', 'patient-open'), 200, 'o0 published');
is(join(' ', map { join ',', @{ frames($_, 0.5)->{ids} } } $ws, $other), 'o0 o0', 'both sockets got o0');
my $down = pubsub_down($x);
my ($code, undef, $body) = ka_request($cy, 'POST', '/api/hub',
    form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'rn',
         'hub.events' => 'patient-close', 'hub.lease_seconds' => 600,
         'hub.channel.endpoint' => $ws->{endpoint}),
    'application/x-www-form-urlencoded');
is($code, 202, "re-subscribe of X's socket through Y while X's pub/sub is down: 202");
like($body, qr/\Q$ws->{cast_path}\E/, 'same endpoint');
is(ka_publish($cy, 'rn', 'o1', 'patient-open'), 200, 'o1 (old event set) published meanwhile');
is(ka_publish($cy, 'rn', 'c1', 'patient-close'), 200, 'c1 (new event set) published meanwhile');
pubsub_up($down, $x);
is(ka_publish($cy, 'rn', 'o2', 'patient-open'), 200, 'o2 (old event set) published after the reconnect');
is(ka_publish($cy, 'rn', 'c2', 'patient-close'), 200, 'c2 (new event set) published after the reconnect');
my $r = frames($ws, 3);
is(join(',', map { ($_->{'hub.events'} // '') . '/' . (($_->{'hub.lease_seconds'} // 0) > 590 ? 600 : $_->{'hub.lease_seconds'} // '') } @{ $r->{conf} }),
   'patient-close/600', "X's socket: one fresh confirmation (patient-close, 600 s)");
is(join(',', @{ $r->{ids} }), 'c1,c2', "X's socket: only the new event set (c1 caught up, c2), not o1, o2");
ok(!$r->{close}, "X's socket: still open");
is(join(',', @{ frames($other, 0.5)->{ids} }), 'o1,c1,o2,c2', "Y's socket: every event");
$main::HOLD = [$ws, $other];
--- response_body_like: "mode":"redis"



=== TEST 6: events published through worker Y while worker X's pub/sub is down reach X's sockets after the reconnect: on a topic without earlier events and on one with, in order, exactly once
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(3);
my @on_x = (sub_on($by->{$x}[0], 'cu-new'), sub_on($by->{$x}[1], 'cu-old'));
my @on_y = (sub_on($by->{$y}[0], 'cu-new'), sub_on($by->{$y}[1], 'cu-old'));
my $cy = $by->{$y}[2];
is(ka_publish($cy, 'cu-old', 'e0'), 200, 'e0 on cu-old before the outage');
is(join(' ', map { join ',', @{ frames($_, 0.5)->{ids} } } @on_x, @on_y), ' e0  e0',
   'the cu-old sockets got e0, the cu-new sockets nothing yet');
my $down = pubsub_down($x);
is(join(' ', ka_publish($cy, 'cu-new', 'a1'), ka_publish($cy, 'cu-old', 'b1'),
             ka_publish($cy, 'cu-old', 'b2'), ka_publish($cy, 'cu-new', 'a2')),
   '200 200 200 200', "a1, b1, b2, a2 published through Y while X's pub/sub is down");
pubsub_up($down, $x);
my $new_x = frames($on_x[0], 3);
my $old_x = frames($on_x[1], 1);
is(join(',', @{ $new_x->{ids} }), 'a1,a2', "X's cu-new socket (no event before the outage): a1,a2");
is(join(',', @{ $old_x->{ids} }), 'b1,b2', "X's cu-old socket: b1,b2 (e0 not again)");
is(join(' ', map { join ',', @{ frames($_, 0.5)->{ids} } } @on_y), 'a1,a2 b1,b2', "Y's sockets: the same");
is(join(' ', ka_publish($cy, 'cu-new', 'a3'), ka_publish($cy, 'cu-old', 'b3')), '200 200',
   'a3, b3 published after the reconnect');
is(join(' ', map { join ',', @{ frames($_, 1)->{ids} } } @on_x, @on_y), 'a3 b3 a3 b3',
   'then a3 and b3, once each');
$main::HOLD = [@on_x, @on_y];
--- response_body_like: "mode":"redis"



=== TEST 7: after a reload (HUP) the endpoints of the closed sockets can be bound again (no 409), and receive
--- config
--- init
package main;
ready();
my $m = master();
my @old = worker_pids($m);
my ($x, $y, $by) = workers_conns(1);
my @ws = (sub_on($by->{$x}[0], 'rl'), sub_on($by->{$y}[0], 'rl'));
kill 'HUP', $m;
my $left;
my $deadline = time + 10;
while (time < $deadline) {
    my %now = map { $_ => 1 } worker_pids($m);
    $left = grep { $now{$_} } @old;
    last if !$left;
    sleep 0.02;
}
is($left, 0, 'the old workers exited');
is(join(' ', map { (frames($_, 2)->{close} // 'open') =~ /^(?:close 1001|eof)$/ ? 'closed' : 'open' } @ws),
   'closed closed', 'their sockets were closed');
ready(4);
my @again;
for my $w (@ws) {
    my $ws = eval { bind_ws(port(), $w->{cast_path}) };
    push @again, $ws if $ws;
    is($ws ? 'bound' : ($@ =~ /(status \d+)/)[0] // $@, 'bound', "binding $w->{cast_path} again");
}
my ($code) = publish(port(), 'rl', 'after-reload');
is($code, 200, 'publish after the reload');
is(join(' ', map { join ',', @{ frames($_, 2)->{ids} } } @again), 'after-reload after-reload',
   'the rebound sockets receive');
$main::HOLD = \@again;
--- response_body_like: "mode":"redis"
--- no_error_log
[alert]
[crit]
[emerg]
exited on signal



=== TEST 8: after another host stopped (QUIT), the endpoints of its closed sockets can be bound here (no 409), and receive
--- config
--- init
package main;
ready();
my $b = CastCluster::Nginx->new(port => port() + 1, prefix => "$ENV{TEST_NGINX_SERVROOT}2",
    http_config => "cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};",
    config => $main::HubConfig, workers => 1);
$b->start;
my $n = CastRedis::wait_for_log($b->error_log, qr/cast: redis pubsub connection to \S+ ready/, 1, 10);
is($n, 1, 'the other host is connected');
my @ws = map { subscriber(port() + 1, 'sd') } 1 .. 2;
$b->stop;
is(join(' ', map { (frames($_, 2)->{close} // 'open') =~ /^(?:close 1001|eof)$/ ? 'closed' : 'open' } @ws),
   'closed closed', "the other host's sockets were closed");
my @again;
for my $w (@ws) {
    my $ws = eval { bind_ws(port(), $w->{cast_path}) };
    push @again, $ws if $ws;
    is($ws ? 'bound' : ($@ =~ /(status \d+)/)[0] // $@, 'bound', "binding $w->{cast_path} here");
}
my ($code) = publish(port(), 'sd', 'after-stop');
is($code, 200, 'publish here');
is(join(' ', map { join ',', @{ frames($_, 2)->{ids} } } @again), 'after-stop after-stop',
   'the rebound sockets receive');
$main::HOLD = \@again;
--- response_body_like: "mode":"redis"



=== TEST 9: expired subscriptions (never bound: cast_bind_timeout 1s; bound: a 1 s lease) leave no id in any Redis key or index
--- http_config
    cast_bind_timeout 1s;
--- config
--- init
package main;
ready();
my (@ids, @paths);
for my $i (1 .. 20) {
    my ($code, $path) = subscribe(port(), $i % 2 ? 'ix-a' : 'ix-b');
    push @paths, $path;
}
is(scalar(grep { defined } @paths), 20, '20 unbound subscriptions');
my @ws = map { subscriber(port(), 'ix-c', 'hub.lease_seconds' => 1) } 1 .. 2;
push @paths, map { $_->{cast_path} } @ws;
@ids = map { m{/bind/(\w+)} ? $1 : () } grep { defined } @paths;
my $refs = redis_refs(@ids);
my @unseen = grep { !@{ $refs->{$_} } } @ids;
is(scalar @unseen, 0, 'Redis names each of the 22 subscriptions somewhere (the check can see them)')
    or diag("not found: @unseen");
my $before = index_size();
my @left;
my $deadline = time + 12;
while (time < $deadline) {
    sleep 0.5;
    $refs = redis_refs(@ids);
    @left = grep { @{ $refs->{$_} } } @ids;
    last if !@left;
}
is(scalar @left, 0, 'after expiry no key, set, sorted set, list or hash names an expired subscription')
    or diag(join "\n", map { "$_: @{ $refs->{$_} }" } @left[0 .. ($#left > 3 ? 3 : $#left)]);
diag("members of sets and sorted sets: $before with the 22 subscriptions, "
     . index_size() . ' after expiry') if @left;
is(join(' ', map { frames($_, 1)->{close} // 'open' } @ws), 'close 1000 close 1000',
   'the bound ones were closed at the end of their lease');
my ($code) = unsubscribe(port(), 'ix-a', $paths[0]);
is($code, 404, 'an expired endpoint is unknown');
--- response_body_like: "mode":"redis"
--- timeout: 20



=== TEST 10: cast_max_topics applies in Redis mode: a subscribe or publish on one more topic is refused 503 through either worker; known topics still work
--- http_config
    cast_max_topics 2;
--- config
--- init
package main;
ready();
my ($x, $y, $by) = workers_conns(1);
my ($cx, $cy) = ($by->{$x}[0], $by->{$y}[0]);
my $sub = sub {
    my ($c, $topic) = @_;
    my ($code, undef, $body) = ka_request($c, 'POST', '/api/hub',
        form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => $topic,
             'hub.events' => 'tick', 'hub.lease_seconds' => 3600),
        'application/x-www-form-urlencoded');
    return ($code, $body);
};
is(($sub->($cx, 'lim-a'))[0], 202, 'lim-a: 202');
is(($sub->($cx, 'lim-b'))[0], 202, 'lim-b: 202');
my ($code, $body) = $sub->($cx, 'lim-c');
is($code, 503, 'one more topic (same worker): 503');
like($body, qr/^\{"error":".*cast_max_topics.*"\}$/, 'with the cast_max_topics error');
($code, $body) = $sub->($cy, 'lim-c');
is($code, 503, 'one more topic through the other worker: 503 (the limit is the hub\'s)');
my ($pc, undef, $pb) = ka_request($cy, 'POST', '/api/hub/lim-d', ev_body('lim-d', 'd1', 'tick'));
is($pc, 503, 'a publish creating one more topic: 503');
like($pb, qr/^\{"error":".*cast_max_topics.*"\}$/, 'with the cast_max_topics error');
is(($sub->($cy, 'lim-a'))[0], 202, 'a known topic through the other worker: 202');
is(ka_publish($cy, 'lim-b', 'b1', 'tick'), 200, 'a publish on a known topic: 200');
--- response_body_like: "mode":"redis"
--- error_log eval
qr/cast: 2 topics are stored, the cast_max_topics limit: "lim-c" is refused/



=== TEST 11: a Redis older than 6.2 is refused at connect with a clear log line; requests get 503
--- http_config
    cast_redis 127.0.0.1:$TEST_NGINX_OLD_REDIS_PORT;
--- config
--- init
package main;
my $n = CastRedis::wait_for_log(errlog(), qr/redis .*\Q$main::OldVersion\E.* 6\.2/, 1, 10);
ok($n >= 1, "error.log says Redis $main::OldVersion is too old (6.2 or later is required)");
my @codes;
for my $i (1 .. 4) {
    push @codes, (publish(port(), 'old', "o$i"))[0];
    push @codes, (subscribe(port(), 'old'))[0];
}
is("@codes", '503 503 503 503 503 503 503 503', 'publishes and subscribes: 503');
--- response_body_like: "mode":"redis"
--- error_log eval
[qr/redis .*\Q$main::OldVersion\E.* 6\.2/]
--- no_error_log
[alert]
exited on signal
