# WebSocket channel: one independent check with a strict third-party
# client, Debian's python3-websockets (RFC 6455 handshake validation,
# masking, close handshake), driven by t/ws_client.py.  /usr/bin/python3 on
# purpose: the python3 on PATH may be another installation without it.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request);
use CastMode;
use File::Spec ();

no_shuffle();
repeat_each(1);

our $PY = '/usr/bin/python3';
our $SCRIPT = File::Spec->rel2abs('t/ws_client.py');

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

# runs the client and turns each of its lines into an assertion
sub run_client {
    my ($topic) = @_;
    SKIP: {
        my $have = -x $PY && system($PY, '-c', 'import websockets') == 0;
        Test::More::skip("$PY has no websockets module (apt-get install python3-websockets)", 1)
            if !$have;
        my $port = CastTest::server_port();
        my $out = `$PY $SCRIPT $port $topic 2>&1`;
        my $rc = $? >> 8;
        my @lines = split /\n/, $out;
        my $n = 0;
        for my $l (@lines) {
            if ($l =~ /^ok (.*)/) { pass("python: $1"); $n++ }
            elsif ($l =~ /^not ok (.*)/) { fail("python: $1"); $n++ }
        }
        ok($n >= 20, "python: $n checks reported");
        is($lines[-1], 'done', 'python: ran to the end') or diag($out);
        is($rc, 0, 'python: exit status 0') or diag($out);
        my (undef, undef, $st) = http_request('GET', '/cast/status');
        # its two sockets' closes publish subscription-removed (no one
        # listed it: not delivered)
        like($st, qr/"connections":0,"subscriptions":0,"topics":\d+,"events_in":4,"events_out":2,/,
             'status after the client: 2 events and 2 subscription-removed in, 2 out, nothing left open');
    }
}

run_tests();

__DATA__

=== TEST 1: python3-websockets: hello frames, HTTP and socket publish, ping, error frame, unsubscribe -> denial + 1000, client close
--- config
--- init
package main;
run_client('py-topic');
--- response_body_like: "connections":0,"subscriptions":0,
--- timeout: 10
