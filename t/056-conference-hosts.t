# Conferences across two nginx hosts on one Redis (SPEC 2.6 and 5): the
# runner's nginx (A, 2 workers) and a second one started by
# t/lib/CastCluster.pm (B: port TEST_NGINX_SERVER_PORT + 1, prefix
# <servroot>2, 2 workers, the same module and the same redis-server).  A
# conference made on one host is the same from the other; three users,
# two apps each, with their sockets on both hosts, publish on both hosts
# at once: every app sees every annotation-update once and in one order.
#
# Ports: TEST_NGINX_REDIS_PORT (6436), TEST_NGINX_SERVER_PORT + 1 (B).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastRedis;
use CastCluster ();
use CastFhir;
use IO::Socket::INET ();
use IO::Select ();

master_on();
workers(2);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6436;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

$CastFhir::Base = '/api/hub';

our $Locations = <<'_EOC_';
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

our ($Redis, $B) = CastCluster::two_hosts($Locations);
our $HOLD;

sub pa () { server_port() }
sub pb () { $main::B->port }

sub ready () {
    CastCluster::two_hosts_ready($main::Redis);
}

sub on { my ($port, $code) = @_; local $CastFhir::Port = $port; $code->() }

sub j {
    my ($port, $method, $path, $body) = @_;
    my ($code, undef, $b) = http_request($method, $path,
        defined $body ? json_encode($body) : undef,
        defined $body ? ('Content-Type' => 'application/json') : (), -port => $port);
    return ($code, eval { json_decode($b) } || { raw => $b });
}

sub b_log_clean () {
    my @bad = CastCluster::log_grep($main::B->error_log, qr/\[alert\]|\[crit\]|signal/);
    Test::More::is(join('', @bad), '', 'host B: no [alert], [crit] or signal in its error.log');
}

sub ev {
    my ($topic, $id) = @_;
    return json_encode({ id => $id, timestamp => '2026-12-05T10:00:00.000Z',
                         event => { 'hub.topic' => $topic, 'hub.event' => 'annotation-update',
                                    context => [{ key => 'annotation',
                                                  resource => { uid => 'a1', rev => $id } }] } });
}

# POSTs written to every host before any answer is read; their statuses
sub race { CastCluster::race(@_) }   # [port, path, body]

run_tests();

$B->stop;

__DATA__

=== TEST 1: a conference made on A is the same from B; three users with apps on both hosts, publishing on both at once, see every update once, in one order
--- config
--- init
package main;
ready();
my %apps;
for my $u (1 .. 3) {
    for my $host ([pa(), 'A'], [pb(), 'B']) {
        # subscribed on one host, bound on the other
        my $other = $host->[0] == pa() ? pb() : pa();
        my $s = on($other, sub { subscribe_ok("U$u", 'annotation-update',
                                              'subscriber.name' => "U$u-$host->[1]") });
        $apps{"U$u-$host->[1]"} = on($host->[0], sub { connect_ready($s, cast => 1) });
    }
}
my ($c, $b) = j(pa(), 'POST', '/api/hub/conference', { hostTopic => 'U1', title => 'Tumor board', topics => ['U2'] });
is($c, 201, 'create on A');
($c, $b) = j(pb(), 'GET', '/api/hub/conference');
is_deeply([map { $_->{hostTopic} } @$b], ['U1'], 'B lists it');
($c, $b) = j(pb(), 'PATCH', '/api/hub/conference/join', { hostTopic => 'U1', joinTopic => 'U3' });
is($c, 200, 'U3 joins on B');
is_deeply($b->{conference}{topics}, ['U2', 'U3'], '... both attendees');
($c, $b) = j(pa(), 'GET', '/api/hub/conference');
is_deeply([sort @{ $b->[0]{participants} }], [sort keys %apps],
          "A lists the six apps' subscriber names");
is_deeply([map { /^(U\d)/ } @{ $b->[0]{participants} }[0, 1]], ['U1', 'U1'], '... the host\'s first');
for my $n (sort keys %apps) {
    my @s = map { $_->{event}{'hub.event'} } grep { ref $_->{event} } @{ events(sync($apps{$n}, 1)) };
    ok(scalar(grep { $_ eq 'conference-start' } @s) >= 1, "$n: conference-start") or diag("@s");
}
my (@ids, @codes);
for my $round (1 .. 10) {
    my @req;
    for my $u (1 .. 3) {
        my $id = "U$u-r$round";
        push @ids, $id;
        push @req, [$u % 2 ? pa() : pb(), "/api/hub/U$u", ev("U$u", $id)];
    }
    push @codes, race(@req);
}
is(scalar(grep { $_ ne '200' } @codes), 0, 'the 30 publishes on both hosts: 200 each') or diag("@codes");
my %orders;
for my $n (sort keys %apps) {
    my @got = map { $_->{id} } grep { ref $_->{event} && $_->{event}{'hub.event'} eq 'annotation-update' }
              @{ events(sync($apps{$n}, 1)) };
    is(scalar @got, 30, "$n: every update");
    my %once; $once{$_}++ for @got;
    is(scalar(grep { $once{$_} != 1 } keys %once), 0, "$n: each once");
    $orders{join ',', @got}++;
}
is(scalar keys %orders, 1, 'all six apps, on two hosts, saw one order') or diag(explain(\%orders));
($c, $b) = j(pb(), 'DELETE', '/api/hub/conference', { hostTopic => 'U1' });
is($c, 200, 'ended on B');
for my $n (sort keys %apps) {
    my @s = map { $_->{event}{'hub.event'} } grep { ref $_->{event} } @{ events(sync($apps{$n}, 1)) };
    is("@s", 'conference-end', "$n: conference-end");
}
($c, $b) = j(pa(), 'GET', '/api/hub/conference');
is_deeply($b, [], 'A lists none');
b_log_clean();
--- error_code: 200
