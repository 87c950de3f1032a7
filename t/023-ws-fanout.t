# WebSocket channel: fan-out and topic order (SPEC 2.2 "Topic order").
#
# 300 sockets on one topic; every subscriber must get every event, byte
# for byte, in one and the same order, also with concurrent publishers.
# The real Test::Nginx defaults to worker_connections 64: raise it.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode ka_open ka_post);
use CastMode;
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

no_shuffle();
repeat_each(1);
worker_connections(1024);

our $HOLD;
our $N_SUBS = 300;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

sub subscribe {
    my ($topic, $events) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic&hub.events=$events"
        . "&hub.lease_seconds=3600&subscriber.name=fanout",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    return $code == 202 ? $path : undef;
}

# n subscriptions + sockets on $topic, hello frames consumed; asserts once
sub open_many {
    my ($topic, $n) = @_;
    my (@ws, @bad);
    for my $i (1 .. $n) {
        my $path = subscribe($topic, 'patient-open,patient-close');
        my $ws = $path && eval { CastTest::WS->connect($path) };
        if (!$ws) {
            push @bad, "subscriber $i: " . ($@ || 'subscribe failed');
            next;
        }
        push @ws, $ws;
    }
    for my $ws (@ws) {
        my $h = $ws->recv_json(5);
        my $c = $ws->recv_json(5);
        push @bad, 'hello frames missing' if !$h || !$c || ($c->{'hub.mode'} || '') ne 'subscribe';
    }
    is(scalar @ws, $n, "$n sockets open on $topic");
    is(join("\n", @bad[0 .. ($#bad > 4 ? 4 : $#bad)]), '', 'every socket got its hello frames');
    return @ws;
}

sub ev {
    my ($id) = @_;
    return '{"timestamp":"2024-01-01T00:00:00.000Z","id":"' . $id
           . '","event":{"hub.topic":"fan","hub.event":"patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"' . $id . '"}}]}}';
}

# reads $n text frames from every socket; returns ([id lists], [problems])
sub read_all {
    my ($ws, $n, $bodies) = @_;
    my (@seqs, @bad);
    for my $i (0 .. $#$ws) {
        my @ids;
        while (@ids < $n) {
            my ($op, $p) = $ws->[$i]->recv_frame(10);
            if (!defined $op) {
                push @bad, "socket $i: only " . scalar(@ids) . " frames";
                last;
            }
            if ($op == 9) { $ws->[$i]->send_pong($p); next }
            next if $op == 10;
            if ($op != 1) {
                push @bad, "socket $i: opcode $op";
                last;
            }
            my ($id) = $p =~ /"id":"([^"]+)"/;
            push @bad, "socket $i: frame for $id differs from the published bytes"
                if $bodies && (!defined $id || !defined $bodies->{$id} || $bodies->{$id} ne $p);
            push @ids, $id;
        }
        push @seqs, join ',', @ids;
    }
    return (\@seqs, \@bad);
}

run_tests();

__DATA__

=== TEST 1: 300 subscribers on one topic each get 100 events, byte for byte, in publish order
--- config
--- init
package main;
my @ws = open_many('fan', $main::N_SUBS);
my $c = ka_open();
my (%bodies, @order, @codes);
for my $i (1 .. 100) {
    my $id = sprintf 'e%03d', $i;
    $bodies{$id} = ev($id);
    push @order, $id;
    push @codes, ka_post($c, '/api/hub', $bodies{$id});
}
is(join(',', grep { $_ ne '200' } @codes), '', 'every publish answered 200');
my ($seqs, $bad) = read_all(\@ws, 100, \%bodies);
is(join("\n", @$bad[0 .. ($#$bad > 4 ? 4 : $#$bad)]), '', 'no missing or altered frame');
my $want = join ',', @order;
my @wrong = grep { $seqs->[$_] ne $want } 0 .. $#$seqs;
is(scalar @wrong, 0, 'every subscriber saw the 100 events in publish order')
    or diag("first bad: $seqs->[$wrong[0]]");
for my $ws (@ws) {
    my @f = $ws->recv_frame(0);
    if (@f) { fail('a frame after the 100 events'); last }
}
$main::HOLD = \@ws;
--- response_body_like: "connections":300,"subscriptions":300,"topics":\d+,"events_in":100,"events_out":30000,.*"dropped":0,
--- timeout: 10



=== TEST 2: two concurrent keep-alive publishers: all 300 subscribers see one identical order
--- config
--- init
package main;
my @ws = open_many('fan', $main::N_SUBS);
my %bodies;
for my $p ('a', 'b') {
    $bodies{"$p$_"} = ev("$p$_") for map { sprintf '%03d', $_ } 1 .. 100;
}
my @pids;
for my $p ('a', 'b') {
    my $pid = fork;
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        my $ok = 1;
        eval {
            my $c = ka_open();
            for my $i (map { sprintf '%03d', $_ } 1 .. 100) {
                $ok = 0 if ka_post($c, '/api/hub/fan', $bodies{"$p$i"}) ne '200';
            }
        };
        POSIX::_exit($ok && !$@ ? 0 : 1);
    }
    push @pids, $pid;
}
my @rc = map { waitpid($_, 0); $? >> 8 } @pids;
is("@rc", '0 0', 'both publishers got 200 for all their events');
my ($seqs, $bad) = read_all(\@ws, 200, \%bodies);
is(join("\n", @$bad[0 .. ($#$bad > 4 ? 4 : $#$bad)]), '', 'no missing or altered frame');
my $first = $seqs->[0];
my @ids = split /,/, $first;
is(scalar(keys %{{ map { $_ => 1 } @ids }}), 200, 'the first subscriber got 200 distinct events');
is(join(',', grep { /^a/ } @ids), join(',', map { sprintf 'a%03d', $_ } 1 .. 100), "publisher a's events in its order");
is(join(',', grep { /^b/ } @ids), join(',', map { sprintf 'b%03d', $_ } 1 .. 100), "publisher b's events in its order");
my @wrong = grep { $seqs->[$_] ne $first } 0 .. $#$seqs;
is(scalar @wrong, 0, 'all 300 subscribers saw the same order') or diag("subscriber $wrong[0] differs");
my $mixed = 0;
for my $i (1 .. $#ids) { $mixed++ if substr($ids[$i], 0, 1) ne substr($ids[$i - 1], 0, 1) }
Test::More::note("publisher switches in the order: $mixed");
$main::HOLD = \@ws;
--- response_body_like: "connections":300,"subscriptions":300,"topics":\d+,"events_in":200,"events_out":60000,.*"dropped":0,
--- timeout: 10



=== TEST 3: publishers over HTTP and over two sockets at once: every subscriber sees the same order
--- config
--- init
package main;
my @ws = open_many('fan', 100);
my %bodies;
for my $p ('h', 's', 't') {
    $bodies{"$p$_"} = ev("$p$_") for map { sprintf '%03d', $_ } 1 .. 50;
}
my $c = ka_open();
my @codes;
for my $i (map { sprintf '%03d', $_ } 1 .. 50) {
    $ws[0]->send_text($bodies{"s$i"});
    push @codes, ka_post($c, '/api/hub', $bodies{"h$i"});
    $ws[1]->send_text($bodies{"t$i"});
}
is(join(',', grep { $_ ne '200' } @codes), '', 'HTTP publishes: 200');
my ($seqs, $bad) = read_all(\@ws, 150, \%bodies);
is(join("\n", @$bad[0 .. ($#$bad > 4 ? 4 : $#$bad)]), '', 'no missing or altered frame');
my @ids = split /,/, $seqs->[0];
for my $p ('h', 's', 't') {
    is(join(',', grep { /^$p/ } @ids), join(',', map { sprintf "$p%03d", $_ } 1 .. 50), "publisher $p: in its order");
}
my @wrong = grep { $seqs->[$_] ne $seqs->[0] } 0 .. $#$seqs;
is(scalar @wrong, 0, 'all 100 subscribers (the two publishing sockets included) saw the same order');
$main::HOLD = \@ws;
--- response_body_like: "connections":100,"subscriptions":100,"topics":\d+,"events_in":150,"events_out":15000,.*"dropped":0,
--- timeout: 10
