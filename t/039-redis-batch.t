# Redis mode: a topic's appends leave a worker in batches (one script call
# for the events that waited behind the one on its way), and workers of
# two hosts conflict on the topic's state version.  Across the runner's
# nginx (A, 2 workers) and a second one started by t/lib/CastCluster.pm
# (B: port TEST_NGINX_SERVER_PORT + 1, prefix <servroot>2, 2 workers, the
# same private redis-server): many concurrent publishers on one topic get
# 200 for every event, every socket on both hosts gets every event once,
# in one identical order, each publisher's in its order, a retried event
# (same id) once; and content-sharing updates raced from both hosts, two
# per worker, still get exactly one 202 per version.
#
# Ports: TEST_NGINX_REDIS_PORT (6439), TEST_NGINX_SERVER_PORT + 1 (B).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT json_encode json_decode);
use CastRedis;
use CastCluster ();
use CastFhir;
use IO::Socket::INET ();
use IO::Select ();
use POSIX ();
use Time::HiRes ();

master_on();
workers(2);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6439;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

our $Locations = <<'_EOC_';
    location /api/hub { cast_hub; }
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

our ($Redis, $B) = CastCluster::two_hosts($Locations, "[alert]\n[crit]\n[error]\nsignal\n");
our $HOLD;

sub pa () { server_port() }
sub pb () { $main::B->port }

sub ready () {
    CastCluster::two_hosts_ready($main::Redis);
    $main::Redis->command('CONFIG', 'RESETSTAT');
}

sub on { my ($port, $code) = @_; local $CastFhir::Port = $port; $code->() }

sub b_log_clean () {
    my @bad = CastCluster::log_grep($main::B->error_log,
                                    qr/\[alert\]|\[crit\]|\[error\]|signal/);
    Test::More::is(join('', @bad), '',
        'host B: no [alert], [crit], [error] or signal in its error.log');
}

sub first_bad (@) { join "\n", @_[0 .. ($#_ > 4 ? 4 : $#_)] }

# a MONITOR connection to the test's Redis
sub monitor {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_REDIS_PORT},
                                  Proto => 'tcp', Timeout => 5)
        or die "monitor: $!";
    syswrite($s, "MONITOR\r\n");
    return $s;
}

# what it saw: what is there, for at most 3 s (workers sweep meanwhile)
sub monitored {
    my $s = shift;
    my ($all, $sel) = ('', IO::Select->new($s));
    my $until = Time::HiRes::time() + 3;
    while (Time::HiRes::time() < $until && $sel->can_read(0.5)) {
        my $n = sysread($s, my $buf, 1 << 20);
        last if !$n;
        $all .= $buf;
    }
    close $s;
    return $all;
}

# POSTs written to every port before any answer is read; their statuses
# [port, body]: POSTs to /fhircast/hub at once
sub race { CastCluster::race(map { [$_->[0], '/fhircast/hub', $_->[1]] } @_) }

run_tests();

$B->stop;

__DATA__

=== TEST 1: 12 publishers on one topic, 6 per host, at once: every event once, one order on both hosts, each publisher's in its order, a retry once
--- config
--- init
package main;
ready();
my @ws;
for my $i (1 .. 8) {
    my $sub_on = $i % 2 ? pa() : pb();
    my $bind_on = $i % 4 < 2 ? pa() : pb();
    my (undef, $path) = CastCluster::subscribe($sub_on, 'b1');
    push @ws, CastCluster::bind_ws($bind_on, $path);
}
my ($n, $per) = (12, 25);
my $mon = monitor();
my @kids;
for my $k (1 .. $n) {
    my $port = $k % 2 ? pa() : pb();
    my $pid = fork;
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        my $bad = 0;
        eval {
            my $c = CastCluster::ka_open($port);
            for my $i (1 .. $per) {
                my $body = CastCluster::ev_body('b1',
                                                sprintf 'p%02d-%02d', $k, $i);
                my ($code) = CastCluster::ka_request($c, 'POST',
                                                     '/api/hub/b1', $body);
                $bad++ if $code ne '200';
                next if $i != 10;
                # a publisher retrying an event whose 200 it did not read
                ($code) = CastCluster::ka_request($c, 'POST', '/api/hub/b1',
                                                  $body);
                $bad++ if $code ne '200';
            }
        };
        POSIX::_exit($bad || $@ ? 1 : 0);
    }
    push @kids, $pid;
}
my @rc = map { waitpid($_, 0); $? >> 8 } @kids;
is(join(' ', grep { $_ } @rc), '',
   "the $n publishers got 200 for their events and retries");
my (@seqs, @bad);
for my $i (0 .. $#ws) {
    my ($ids) = CastCluster::read_events($ws[$i], $n * $per + 1, 3);
    my %seen;
    my @dup = grep { $seen{$_}++ } @$ids;
    push @bad, "socket $i: " . scalar(@$ids) . ' events'
               . (@dup ? ", twice: @dup" : '')
        if @$ids != $n * $per || @dup;
    push @seqs, join ',', @$ids;
}
is(first_bad(@bad), '',
   'every socket got the ' . $n * $per . ' events, each once');
my @first = split /,/, $seqs[0];
my @order;
for my $k (1 .. $n) {
    my $p = sprintf 'p%02d-', $k;
    push @order, $k if join(',', grep { /^\Q$p\E/ } @first)
                       ne join(',', map { sprintf '%s%02d', $p, $_ } 1 .. $per);
}
is("@order", '', "each publisher's events in its order");
my @wrong = grep { $seqs[$_] ne $seqs[0] } 1 .. $#seqs;
is(scalar @wrong, 0, 'the 8 sockets on the two hosts saw one identical order')
    or diag("socket $wrong[0]: $seqs[$wrong[0]]\nsocket 0: $seqs[0]");
is($main::Redis->command('XLEN', 'cast:{b1}:log'), $n * $per,
   'the log holds each event once');
# the append script's calls for b1: their events (name "tick", 4 args each)
my @calls = map { scalar(() = /"tick"/g) }
            grep { /"EVALSHA"/ && /"cast:\{b1\}:ids"/ }
            split /\n/, monitored($mon);
my ($most) = sort { $b <=> $a } @calls;
cmp_ok($most || 0, '>', 1, 'events went in batches: ' . scalar(@calls)
       . ' script calls (conflicts too), at most ' . ($most || 0)
       . ' events in one');
b_log_clean();
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"redis":"connected"



=== TEST 2: content sharing: 4 updates of one version raced from each host: exactly one 202 per round, the accepted ones chained
--- config
--- init
package main;
ready();
my $sa = on(pa(), sub { subscribe_ok('x1', 'DiagnosticReport-update') });
my $wa = on(pb(), sub { connect_ready($sa) });
is(on(pa(), sub { publish(open_ev('x1', 'r1')) }), 202,
   'DiagnosticReport-open on A: 202');
my @bad;
for my $round (1 .. 12) {
    my $v = on($round % 2 ? pa() : pb(),
               sub { context('x1')->{'context.versionId'} });
    my @codes = race(map { [$_ % 2 ? pa() : pb(),
                            update_ev('x1', 'r1', $v,
                                      [put('Observation', "o$round-$_")])] }
                     1 .. 8);
    push @bad, "round $round: @codes"
        if join(',', sort @codes) ne '202,409,409,409,409,409,409,409';
}
is(scalar @bad, 0, '12 rounds of 8: each time one 202 and seven 409')
    or diag(join "\n", @bad);
my $ga = events(sync($wa, 1));
is(scalar @$ga, 12, 'the socket got 12 updates');
my $chain = 1;
for my $i (1 .. $#$ga) {
    $chain = 0 if $ga->[$i]{event}{'context.priorVersionId'}
                  ne $ga->[$i - 1]{event}{'context.versionId'};
}
ok($chain,
   'each accepted update was made against the version the one before made');
my ($ca, $cb) = (on(pa(), sub { context('x1') }),
                 on(pb(), sub { context('x1') }));
is_deeply($ca, $cb,
          'GET on A and on B: the same context, version and content');
my ($bundle) = grep { $_->{key} eq 'content' } @{ $ca->{context} };
is(scalar @{ $bundle->{resource}{entry} || [] }, 12,
   '12 resources in the content, one per round');
b_log_clean();
$main::HOLD = [$wa];
--- response_body_like: "mode":"redis",
