# WebSocket channel: event delivery (SPEC 1, 2.1, 2.2, 3.2, 4).
#
# Scenarios run in "--- init" (after nginx started) with CastTest::WS and
# Test::More asserts; the block's request then checks /cast/status.
# "What did a socket receive" is answered without sleeping: sync() sends a
# ping and collects the text frames that arrive before its pong (the hub
# has a single worker here and queues an event before answering the
# publish request, so everything published earlier is in front of the pong;
# in Redis mode sync() first waits for CastTest::settle_time() of silence).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use Time::HiRes ();

no_shuffle();
repeat_each(1);

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; cast_reset on; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

sub form {
    my %f = @_;
    my @p;
    for my $k (sort keys %f) {
        (my $v = $f{$k}) =~ s/([^A-Za-z0-9._~*-])/sprintf('%%%02X', ord $1)/ge;
        push @p, "$k=$v";
    }
    return join '&', @p;
}

sub hub_form {
    my (%f) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub', form(%f),
        'Content-Type' => 'application/x-www-form-urlencoded');
    return ($code, $body);
}

# subscribe(topic, events, extra form fields) -> {topic, path, endpoint, code, body}
sub subscribe {
    my ($topic, $events, %extra) = @_;
    my %f = ('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
             'hub.topic' => $topic, 'hub.events' => $events,
             'hub.lease_seconds' => 3600, 'subscriber.name' => 'delivery', %extra);
    delete $f{$_} for grep { !defined $f{$_} } keys %f;
    my ($code, $body) = hub_form(%f);
    my $j = eval { json_decode($body) } || {};
    my ($path) = ($j->{'hub.channel.endpoint'} || '') =~ m{^wss?://[^/]+(/bind/[0-9a-f]{32})$};
    return { topic => $topic, events => $events, path => $path || '/bind/none',
             endpoint => $j->{'hub.channel.endpoint'}, code => $code, body => $body };
}

sub subscribe_ok {
    my $s = subscribe(@_);
    is($s->{code}, 202, "subscribe $s->{topic} ($s->{events}): 202") or diag($s->{body});
    return $s;
}

sub unsubscribe {
    my ($s) = @_;
    my ($code) = hub_form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
                          'hub.topic' => $s->{topic}, 'hub.channel.endpoint' => $s->{endpoint});
    return $code;
}

# connects, checks the hello frames; returns (socket, [frames after them
# up to a sync point]) in list context
sub connect_ready {
    my ($s, %o) = @_;
    my $ws = eval { CastTest::WS->connect($s->{path}) };
    if (!$ws) {
        fail("connect $s->{topic}: $@");
        return;
    }
    if (!$o{fhircast}) {
        my $hello = $ws->recv_json(3);
        is($hello && $hello->{type}, 'connection.established', "$s->{topic}: connection.established first");
    }
    my $conf = $ws->recv_json(3);
    is($conf && $conf->{'hub.mode'}, 'subscribe', "$s->{topic}: then the confirmation");
    return $ws;
}

sub publish {
    my ($path, $json) = @_;
    $json = json_encode($json) if ref $json;
    my ($code, undef, $body) = http_request('POST', $path, $json,
                                            'Content-Type' => 'application/json');
    return wantarray ? ($code, $body) : $code;
}

sub status {
    my (undef, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

my $SyncN = 0;

# the raw text frames received before the pong of a fresh ping
sub sync {
    my ($ws) = @_;
    my $tag = 'sync-' . ++$SyncN;
    my @got;
    # Redis mode: what other workers published arrives after a delay
    my $settle = CastTest::settle_time();
    while ($settle) {
        my ($op, $p) = $ws->recv_frame($settle);
        last if !defined $op;
        next if $op == 9 || $op == 10;
        push @got, $op == 1 ? $p : $op == 8 ? 'close ' . unpack('n', $p) : "opcode $op";
        last if $op == 8;
    }
    $ws->send_ping($tag);
    while (1) {
        my ($op, $p) = $ws->recv_frame(3);
        if (!defined $op) { push @got, '<no pong>'; last }
        last if $op == 10 && $p eq $tag;
        next if $op == 9 || $op == 10;
        push @got, $op == 1 ? $p : $op == 8 ? 'close ' . unpack('n', $p) : "opcode $op";
    }
    return \@got;
}

# the hub.event names of the received events, in order
sub names {
    my ($frames) = @_;
    return join ',', map { my $j = eval { json_decode($_) }; $j && $j->{event} ? $j->{event}{'hub.event'} : $_ } @$frames;
}

# the top-level ids of the received events, in order
sub ids {
    my ($frames) = @_;
    return join ',', map { my $j = eval { json_decode($_) }; $j && defined $j->{id} ? $j->{id} : $_ } @$frames;
}

sub ev {
    my ($topic, $name, %o) = @_;
    my $e = { event => { 'hub.event' => $name, context => $o{context} || [] } };
    $e->{event}{'hub.topic'} = $topic if defined $topic;
    $e->{id} = $o{id} if $o{id};
    $e->{timestamp} = $o{timestamp} if $o{timestamp};
    return json_encode($e);
}

sub patient_ctx { [{ key => 'patient', resource => { resourceType => 'Patient', id => $_[0] } }] }
sub study_ctx { [{ key => 'study', resource => { resourceType => 'ImagingStudy', id => $_[0] } }] }

# the next frames are the denial with $reason and a Close 1000, then EOF
sub expect_denial {
    my ($ws, $s, $reason, $events) = @_;
    my ($op, $p) = $ws->recv_frame(4);
    my $d = defined $op && $op == 1 ? eval { json_decode($p) } : undef;
    is_deeply($d, { 'hub.mode' => 'denied', 'hub.topic' => $s->{topic},
                    'hub.events' => defined $events ? $events : $s->{events},
                    'hub.reason' => $reason }, "denial '$reason'")
        or diag(defined $op ? "opcode $op: $p" : 'nothing');
    ($op, $p) = $ws->recv_frame(3);
    is($op, 8, "$reason: then a close frame");
    is(defined $p && length $p >= 2 ? unpack('n', $p) : undef, 1000, "$reason: close code 1000");
    is(defined $p ? substr($p, 2) : undef, $reason, "$reason: close reason");
    my @more = $ws->recv_frame(3);
    ok(!@more && $ws->{eof}, "$reason: the hub closes the TCP connection");
}

run_tests();

__DATA__

=== TEST 1: an event published over HTTP reaches every matching subscriber of the topic and no other
--- config
--- init
package main;
my $a = subscribe_ok('d1', 'patient-open');
my $b = subscribe_ok('d1', 'patient-open,patient-close');
my $c = subscribe_ok('d1', 'imagingstudy-open');
my $d = subscribe_ok('d1-other', 'patient-open');
my %ws = map { $_->[0] => connect_ready($_->[1]) } (['a', $a], ['b', $b], ['c', $c], ['d', $d]);
my ($code, $body) = publish('/api/hub/d1', ev(undef, 'patient-open', context => patient_ctx('p1')));
is($code, 200, 'publish: 200');
is($body, '{"status":"received"}', 'publish: {"status":"received"}');
my %got = map { $_ => sync($ws{$_}) } sort keys %ws;
is(scalar @{ $got{a} }, 1, 'a (patient-open) gets it');
is(scalar @{ $got{b} }, 1, 'b (patient-open,patient-close) gets it');
is(scalar @{ $got{c} }, 0, 'c (imagingstudy-open) does not');
is(scalar @{ $got{d} }, 0, 'd (other topic) does not');
is($got{a}[0], $got{b}[0], 'a and b get the same bytes');
my $e = eval { json_decode($got{a}[0] || '') } || {};
is($e->{event}{'hub.topic'}, 'd1', 'hub.topic from the path is written into the event');
is($e->{event}{'hub.event'}, 'patient-open', 'hub.event');
is_deeply($e->{event}{context}, patient_ctx('p1'), 'context unchanged');
like($e->{id} || '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'cast adds a UUIDv4 id');
like($e->{timestamp} || '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'cast adds a timestamp with milliseconds');
$main::HOLD = [values %ws];
--- response_body_like: "connections":4,"subscriptions":4,"topics":\d+,"events_in":1,"events_out":2,



=== TEST 2: the publisher's object is forwarded byte for byte when the hub adds nothing (key order, spacing, extra keys)
--- config
--- init
package main;
my $s = subscribe_ok('d2', 'patient-open');
my $ws = connect_ready($s);
my $body = qq'{ "extra" : {"x":[1, 2,3]},\n  "event" : {"hub.topic":"d2",  "hub.event":"Patient-Open","context":[]} ,"timestamp":"2020-01-01T00:00:00.000Z", "id":"same-bytes-1"}';
is(publish('/api/hub', $body), 200, 'publish to {base}: 200');
is_deeply(sync($ws), [$body], 'the same bytes arrive');
# another event (ids are unique: the same id again is a retry, taken once)
(my $body2 = $body) =~ s/same-bytes-1/same-bytes-2/;
is(publish('/api/hub/d2', $body2), 200, 'publish to {base}/{topic} with the same topic in the body: 200');
is_deeply(sync($ws), [$body2], 'its bytes arrive as they were sent');
is(publish('/api/hub/d2', $body2), 200, 'the same event again (a retry): 200, as the first was');
is_deeply(sync($ws), [], 'a retry is not delivered twice');
$main::HOLD = $ws;
--- response_body_like: "events_in":2,"events_out":2,



=== TEST 3: an event published over the socket reaches the other subscribers and the publisher's own subscription
--- config
--- init
package main;
my $a = subscribe_ok('d3', 'patient-open');
my $b = subscribe_ok('d3', 'patient-open');
my $c = subscribe_ok('d3', 'patient-close');
my ($wa, $wb, $wc) = map { connect_ready($_) } ($a, $b, $c);
my $msg = ev('d3', 'patient-open', id => 'sock-1', timestamp => '2024-01-01T00:00:00.000Z', context => patient_ctx('p1'));
$wa->send_text($msg);
is_deeply(sync($wa), [$msg], 'the publishing socket gets its own event');
is_deeply(sync($wb), [$msg], 'the other subscriber gets the same bytes');
is_deeply(sync($wc), [], 'the non-matching subscriber gets nothing');
# without id and timestamp: the hub fills them, every receiver sees the same frame
$wb->send_text(ev('d3', 'patient-open'));
my ($ga, $gb) = (sync($wa), sync($wb));
is(scalar @$ga, 1, 'filled-in event delivered to a');
is_deeply($gb, $ga, 'b gets the same bytes as a');
like($ga->[0] || '', qr/"id":"[0-9a-f-]{36}"/, 'with an id added');
# the socket publishes to another topic: delivered there, not here
my $o = subscribe_ok('d3-other', 'patient-open');
my $wo = connect_ready($o);
my $other = ev('d3-other', 'patient-open', id => 'sock-2', timestamp => '2024-01-01T00:00:00.000Z');
$wa->send_text($other);
is_deeply(sync($wo), [$other], 'an event for another topic reaches that topic');
is_deeply(sync($wa), [], 'and not the publisher (subscribed to d3)');
$main::HOLD = [$wa, $wb, $wc, $wo];
--- response_body_like: "connections":4,"subscriptions":4,"topics":\d+,"events_in":3,"events_out":5,



=== TEST 4: topics are isolated and case-sensitive
--- config
--- init
package main;
my @s = map { subscribe_ok($_, 'patient-open') } ('Dr.Who', 'dr.who', 'dr.who2');
my @w = map { connect_ready($_) } @s;
is(publish('/api/hub/Dr.Who', ev(undef, 'patient-open', id => 'iso-1')), 200, 'publish to Dr.Who');
is(publish('/api/hub/dr.who', ev(undef, 'patient-open', id => 'iso-2')), 200, 'publish to dr.who');
my @got = map { ids(sync($_)) } @w;
is_deeply(\@got, ['iso-1', 'iso-2', ''], 'each topic gets only its own event');
$main::HOLD = \@w;
--- response_body_like: "events_in":2,"events_out":2,



=== TEST 5: event names match case-insensitively, token by token; the publisher's spelling is forwarded
--- config
--- init
package main;
my $a = subscribe_ok('d5', 'Patient-Open, ImagingStudy-open ');
my $b = subscribe_ok('d5', 'patient-open-extra,open,patient');
my ($wa, $wb) = map { connect_ready($_) } ($a, $b);
for my $name ('PATIENT-OPEN', 'patient-open', 'imagingstudy-OPEN', 'patient-close', 'patient-ope', 'patient-open-extra2') {
    is(publish('/api/hub/d5', ev(undef, $name)), 200, "publish $name");
}
is(names(sync($wa)), 'PATIENT-OPEN,patient-open,imagingstudy-OPEN', 'a: the matching names, as spelled by the publisher');
is(names(sync($wb)), '', 'b: no token is a prefix/substring match');
$main::HOLD = [$wa, $wb];
--- response_body_like: "events_in":6,"events_out":3,



=== TEST 6: cast dialect: "*" in hub.events matches every event; a "*" topic subscription receives every topic
--- config
--- init
package main;
my $all = subscribe_ok('d6', '*');
my $mon = subscribe_ok('*', '*');
my $monp = subscribe_ok('*', 'patient-open');
my $one = subscribe_ok('d6', 'patient-open');
my ($wall, $wmon, $wmonp, $wone) = map { connect_ready($_) } ($all, $mon, $monp, $one);
is(publish('/api/hub/d6', ev(undef, 'patient-open')), 200, 'publish d6 patient-open');
is(publish('/api/hub/d6', ev(undef, 'annotation-update')), 200, 'publish d6 annotation-update');
is(publish('/api/hub/elsewhere', ev(undef, 'patient-open')), 200, 'publish elsewhere patient-open');
is(publish('/api/hub/elsewhere', ev(undef, 'scene-update')), 200, 'publish elsewhere scene-update');
is(names(sync($wall)), 'patient-open,annotation-update', 'd6 "*": every event of d6');
is(names(sync($wmon)), 'patient-open,annotation-update,patient-open,scene-update', 'topic "*", events "*": everything');
is(names(sync($wmonp)), 'patient-open,patient-open', 'topic "*", events patient-open: that event on every topic');
is(names(sync($wone)), 'patient-open', 'd6 patient-open: only that');
$main::HOLD = [$wall, $wmon, $wmonp, $wone];
--- response_body_like: "events_in":4,"events_out":9,



=== TEST 7: fhircast dialect: "*" events and "*" topic are refused; the confirmation comes alone; publish answers 202 {}
--- config
cast_dialect fhircast;
--- init
package main;
my $bad = subscribe('d7', '*');
is($bad->{code}, 400, 'fhircast: hub.events "*" -> 400');
$bad = subscribe('d7', 'Patient-open,*');
is($bad->{code}, 400, 'fhircast: "*" among other events -> 400');
$bad = subscribe('*', 'Patient-open');
is($bad->{code}, 400, 'fhircast: topic "*" -> 400');
my $s = subscribe_ok('d7', 'Patient-open');
my $ws = eval { CastTest::WS->connect($s->{path}) };
my $conf = $ws && $ws->recv_json(3);
$conf->{'hub.lease_seconds'}++ if $conf && ($conf->{'hub.lease_seconds'} || 0) == 3599;   # lease left, whole seconds
is_deeply($conf, { 'hub.mode' => 'subscribe', 'hub.topic' => 'd7', 'hub.events' => 'Patient-open',
                   'hub.lease_seconds' => 3600 }, 'first frame: the STU3 confirmation');
my $body = '{"timestamp":"2024-01-01T00:00:00.000Z","id":"fc-1","event":{"hub.topic":"d7","hub.event":"patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p1"}}]}}';
my ($code, $resp) = publish('/api/hub', $body);
is($code, 202, 'fhircast publish: 202');
is($resp, '{}', 'fhircast publish: {}');
# fhircast: content sharing adds the open's context.versionId, first in "event"
my $got = sync($ws);
my ($v) = ($got->[0] || '') =~ /"context\.versionId":"([-0-9a-f]{36})"/;
(my $want = $body) =~ s/"event":\{/"event":{"context.versionId":"@{[ $v || 'none' ]}",/;
is_deeply($got, [$want], 'delivered case-insensitively, byte for byte but for the versionId the hub adds');
# status below: events_out 1, or 0 in Redis mode when the event came in the
# socket's replay (the state's answer raced the publish): replays are not
# counted as fan-out
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,"topics":\d+,"events_in":1,"events_out":[01],



=== TEST 8: re-subscribe with the endpoint: same endpoint, a fresh confirmation on the live socket, the new event set applies
--- config
--- init
package main;
my $s = subscribe_ok('d8', 'patient-open');
my $ws = connect_ready($s);
my $r = subscribe('d8', 'imagingstudy-open,Patient-Close', 'hub.channel.endpoint' => $s->{endpoint},
                  'hub.lease_seconds' => 600);
is($r->{code}, 202, 're-subscribe: 202');
is($r->{endpoint}, $s->{endpoint}, 're-subscribe: same endpoint');
my $conf = $ws->recv_json(3);
$conf->{'hub.lease_seconds'}++ if $conf && ($conf->{'hub.lease_seconds'} || 0) == 599;   # lease left, whole seconds
is_deeply($conf, { 'hub.mode' => 'subscribe', 'hub.topic' => 'd8',
                   'hub.events' => 'imagingstudy-open,Patient-Close', 'hub.lease_seconds' => 600 },
          'a fresh confirmation with the new events and lease');
publish('/api/hub/d8', ev(undef, $_)) for qw(patient-open imagingstudy-open patient-close);
is(names(sync($ws)), 'imagingstudy-open,patient-close', 'only the new event set is delivered');
is(status()->{subscriptions}, 1, 'still one subscription');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 9: replay on connect: the latest open context per anchor type, oldest first, original id and timestamp
--- config
--- init
package main;
my @pub = (
    ev(undef, 'patient-open', id => 'rp-p1', timestamp => '2024-01-01T00:00:01.000Z', context => patient_ctx('p1')),
    ev(undef, 'imagingstudy-open', id => 'rp-s1', timestamp => '2024-01-01T00:00:02.000Z', context => study_ctx('s1')),
    ev(undef, 'patient-open', id => 'rp-p2', timestamp => '2024-01-01T00:00:03.000Z', context => patient_ctx('p2')),
);
is(publish('/api/hub/d9', $_), 200, 'publish before anyone connects') for @pub;
my $s = subscribe_ok('d9', 'patient-open,imagingstudy-open');
my $ws = eval { CastTest::WS->connect($s->{path}) };
my @f = map { scalar $ws->recv_json(3) } 1 .. 2;
is($f[0] && $f[0]{type}, 'connection.established', 'connection.established');
is($f[1] && $f[1]{'hub.mode'}, 'subscribe', 'confirmation');
my $replay = sync($ws);
is(ids($replay), 'rp-s1,rp-p2',
   'replay: the study, then the latest patient (oldest first)');
my %want = ('rp-s1' => 2, 'rp-p2' => 3);
for my $f (@$replay) {
    my $j = eval { json_decode($f) } || {};
    my $i = $want{ $j->{id} || '' } || 0;
    is($j->{timestamp}, "2024-01-01T00:00:0$i.000Z", "replayed $j->{id}: original timestamp");
    is($j->{event}{'hub.topic'}, 'd9', "replayed $j->{id}: hub.topic");
}
# a subscription matching only the study gets only the study
my $s2 = subscribe_ok('d9', 'ImagingStudy-Open');
my $w2 = connect_ready($s2);
is(ids(sync($w2)), 'rp-s1', 'filtered replay');
# a subscription to other events gets no replay
my $s3 = subscribe_ok('d9', 'annotation-update');
my $w3 = connect_ready($s3);
is_deeply(sync($w3), [], 'no replay for a subscription that matches no open context');
$main::HOLD = [$ws, $w2, $w3];
--- response_body_like: "connections":3,"subscriptions":3,



=== TEST 10: replay skips closed contexts: close p2 -> p1 is current again; close the study -> no study replay
--- config
--- init
package main;
publish('/api/hub/d10', $_) for (
    ev(undef, 'patient-open', id => 'c-p1', context => patient_ctx('p1')),
    ev(undef, 'imagingstudy-open', id => 'c-s1', context => study_ctx('s1')),
    ev(undef, 'patient-open', id => 'c-p2', context => patient_ctx('p2')),
    ev(undef, 'patient-close', id => 'c-p2x', context => patient_ctx('p2')),
    ev(undef, 'imagingstudy-close', id => 'c-s1x', context => study_ctx('s1')),
);
my $s = subscribe_ok('d10', '*');
my $ws = connect_ready($s);
is(ids(sync($ws)), 'c-p1', 'only the still open patient p1 is replayed');
publish('/api/hub/d10', ev(undef, 'patient-close', id => 'c-p1x', context => patient_ctx('p1')));
is(names(sync($ws)), 'patient-close', 'live close delivered');
my $s2 = subscribe_ok('d10', '*');
my $w2 = connect_ready($s2);
is_deeply(sync($w2), [], 'everything closed: no replay');
$main::HOLD = [$ws, $w2];
--- response_body_like: "connections":2,"subscriptions":2,



=== TEST 11: unsubscribe -> denial "unsubscribed", Close 1000, subscription gone; again -> 404
--- config
--- init
package main;
my $s = subscribe_ok('d11', 'patient-open,patient-close');
my $keep = subscribe_ok('d11', 'patient-open');
my $ws = connect_ready($s);
my $wk = connect_ready($keep);
is(status()->{subscriptions}, 2, 'two subscriptions');
is(unsubscribe($s), 202, 'unsubscribe: 202');
expect_denial($ws, $s, 'unsubscribed');
is(unsubscribe($s), 404, 'unsubscribe again: 404');
is(publish('/api/hub/d11', ev(undef, 'patient-open')), 200, 'publish');
is(names(sync($wk)), 'patient-open', 'the other subscriber is unaffected');
$main::HOLD = $wk;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "d11" ended: unsubscribed/



=== TEST 12: reset (DELETE {base}) -> every socket gets denial "reset" and Close 1000
--- config
--- init
package main;
my @s = (subscribe_ok('d12a', 'patient-open'), subscribe_ok('d12b', 'patient-open,imagingstudy-open'));
my @w = map { connect_ready($_) } @s;
my ($code) = http_request('DELETE', '/api/hub');
is($code, 200, 'DELETE {base}: 200');
expect_denial($w[$_], $s[$_], 'reset') for 0 .. 1;
--- response_body_like: "connections":0,"subscriptions":0,



=== TEST 13: lease expiry (2 s) -> denial "lease expired" and Close 1000
--- config
--- init
package main;
my $s = subscribe_ok('d13', 'patient-open', 'hub.lease_seconds' => 2);
my $long = subscribe_ok('d13', 'patient-open', 'hub.lease_seconds' => 60);
my $ws = eval { CastTest::WS->connect($s->{path}) };
my @f = map { scalar $ws->recv_json(3) } 1 .. 2;
like(json_encode($f[1] || {}), qr/"hub\.lease_seconds":[12][,}]/, 'the confirmation has hub.lease_seconds 2 (or 1 s later), a JSON number');
my $wl = connect_ready($long);
my $t0 = Time::HiRes::time();
is_deeply(sync($ws), [], 'nothing before the lease ends');
expect_denial($ws, $s, 'lease expired');
my $dt = Time::HiRes::time() - $t0;
ok($dt > 1.0 && $dt < 3.5, "the lease ended after about 2 s ($dt)");
is(publish('/api/hub/d13', ev(undef, 'patient-open')), 200, 'publish');
is(names(sync($wl)), 'patient-open', 'the 60 s subscriber still receives');
$main::HOLD = $wl;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "d13" ended: lease expired/



=== TEST 14: duplicates in hub.events collapse (also case variants, spaces): one confirmation entry, one delivery
--- config
--- init
package main;
my $s = subscribe_ok('d14', 'patient-open, patient-open,Patient-Open,patient-close,patient-open');
my $ws = eval { CastTest::WS->connect($s->{path}) };
my @f = map { scalar $ws->recv_json(3) } 1 .. 2;
is($f[1] && $f[1]{'hub.events'}, 'patient-open,patient-close', 'confirmation: duplicates collapsed');
publish('/api/hub/d14', ev(undef, 'patient-open'));
is(names(sync($ws)), 'patient-open', 'one delivery');
$main::HOLD = $ws;
--- response_body_like: "events_in":1,"events_out":1,



=== TEST 15: a socket that closes ends its subscription (and publishes subscription-removed); publishing afterwards reaches nobody and does not fail
--- config
--- init
package main;
my $s = subscribe_ok('d15', 'patient-open');
my $ws = connect_ready($s);
$ws->close(1000);
for (1 .. 40) { last if !status()->{subscriptions}; Time::HiRes::sleep(0.05) }
is(status()->{subscriptions}, 0, 'the subscription ended with the socket');
is(publish('/api/hub/d15', ev(undef, 'patient-open')), 200, 'publish with no subscriber: 200');
my $r = eval { CastTest::WS->connect($s->{path}); 1 } ? 'connected' : $@;
like($r, qr/status 404/, 'the endpoint cannot be bound again');
--- response_body_like: "connections":0,"subscriptions":0,"topics":\d+,"events_in":2,"events_out":0,



=== TEST 16: unsubscribing the only subscriber of one topic leaves another topic's socket alone
--- config
--- init
package main;
my $s1 = subscribe_ok('d16a', 'patient-open');
my $s2 = subscribe_ok('d16b', 'patient-open');
my ($w1, $w2) = map { connect_ready($_) } ($s1, $s2);
is(unsubscribe($s1), 202, 'unsubscribe d16a');
expect_denial($w1, $s1, 'unsubscribed');
is_deeply(sync($w2), [], 'd16b got nothing');
publish('/api/hub/d16b', ev(undef, 'patient-open'));
is(names(sync($w2)), 'patient-open', 'd16b still receives');
$main::HOLD = $w2;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 17: reset naming one endpoint (DELETE {base} with a JSON body) closes only that socket
--- config
--- init
package main;
my $s1 = subscribe_ok('d17', 'patient-open');
my $s2 = subscribe_ok('d17', 'patient-open');
my ($w1, $w2) = map { connect_ready($_) } ($s1, $s2);
my ($code) = http_request('DELETE', '/api/hub', json_encode({ 'hub.channel.endpoint' => $s1->{endpoint} }),
                          'Content-Type' => 'application/json');
is($code, 200, 'DELETE {base} {"hub.channel.endpoint"}: 200');
expect_denial($w1, $s1, 'reset');
is_deeply(sync($w2), [], 'the other socket got nothing');
publish('/api/hub/d17', ev(undef, 'patient-open'));
is(names(sync($w2)), 'patient-open', 'and still receives');
$main::HOLD = $w2;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 18: cast: unsubscribe by subscriber.name (no endpoint) closes that subscriber's socket
--- config
--- init
package main;
my $s1 = subscribe_ok('d18', 'patient-open', 'subscriber.name' => 'viewer-1');
my $s2 = subscribe_ok('d18', 'patient-open', 'subscriber.name' => 'viewer-2');
my ($w1, $w2) = map { connect_ready($_) } ($s1, $s2);
my ($code) = hub_form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
                      'hub.topic' => 'd18', 'subscriber.name' => 'viewer-1');
is($code, 202, 'unsubscribe by name: 202');
expect_denial($w1, $s1, 'unsubscribed');
is_deeply(sync($w2), [], 'viewer-2 got nothing');
$main::HOLD = $w2;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 19: the dialect is the one of the hub location the subscription was made at (one /bind/ for both)
--- config
    location /fhir/hub { cast_hub; cast_dialect fhircast; }
--- init
package main;
my $c = subscribe_ok('d19', 'patient-open');
my ($code, undef, $body) = http_request('POST', '/fhir/hub',
    form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'd19',
         'hub.events' => 'patient-open', 'hub.lease_seconds' => 3600),
    'Content-Type' => 'application/x-www-form-urlencoded');
is($code, 202, 'subscribe at the fhircast hub: 202');
my ($fpath) = $body =~ m{(/bind/[0-9a-f]{32})};
my $wc = eval { CastTest::WS->connect($c->{path}) } or diag($@);
my $first = $wc && $wc->recv_json(3);
is($first && $first->{type}, 'connection.established', 'cast subscription: connection.established first');
my $wf = eval { CastTest::WS->connect($fpath || '/bind/none') } or diag($@);
$first = $wf && $wf->recv_json(3);
is($first && $first->{'hub.mode'}, 'subscribe', 'fhircast subscription: the confirmation first');
is_deeply($wf ? sync($wf) : ['no socket'], [], 'and nothing else');
$main::HOLD = [$wc, $wf];
--- response_body_like: "connections":2,"subscriptions":2,



=== TEST 20: what the hub adds goes into the publisher's own text; an escaped "event" key still works
--- config
--- init
package main;
my $s = subscribe_ok('d20', 'patient-open');
my $ws = connect_ready($s);
my $orig = '{ "pad" : [1, {"x": "}\"event\""}] ,  "event" : { "hub.event" : "patient-open" , "context": [] } , "tail": "\\"event\\"" }';
is(publish('/api/hub/d20', $orig), 200, 'publish with odd spacing: 200');
my $got = sync($ws);
is(scalar @$got, 1, 'one event arrives');
my $f = $got->[0] // '';
ok(eval { json_decode($f); 1 }, 'it is valid JSON');
like($f, qr/^\{"id":"[0-9a-f-]{36}","timestamp":"[^"]+", "pad"/, 'id and timestamp first in the object');
(my $rest = $f) =~ s/^\{"id":"[^"]+","timestamp":"[^"]+",/{/;
$rest =~ s/"event" : \{"hub\.topic":"d20",/"event" : {/;
is($rest, $orig, 'everything else is the publisher\'s text, byte for byte');
is(publish('/api/hub/d20', '{"\u0065vent":{"hub.event":"patient-open","context":[]},"id":"esc-1"}'), 200, 'escaped key: 200');
$got = sync($ws);
my $e = eval { json_decode($got->[0] // '') } || {};
is($e->{id}, 'esc-1', 'escaped key: delivered');
is($e->{event}{'hub.topic'}, 'd20', 'escaped key: hub.topic added');
like($e->{timestamp} // '', qr/^\d{4}-/, 'escaped key: timestamp added');
$main::HOLD = [$ws];
--- response_body_like: "connections":1,"subscriptions":1,
