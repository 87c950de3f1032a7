# Conferences (SPEC 2.6; reference cast-seed-protocol.md 1.6 and 4) and
# G2's subscription-removed (reference 3.6), in local and in Redis mode:
# the G2 routes under {base} and G1's /conference and /topics, their
# status codes and bodies; conference-start / -lead / -end to every
# participant socket whatever its filter; forwarding of events between
# participant topics (once per subscription, hub.topic unchanged, the
# receiver's filter applied); a conference ends with its host's last
# subscription; three users with two apps each see every
# annotation-update once and in one order.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use CastFhir;
use CastAuth;

no_shuffle();
repeat_each(1);

$CastFhir::Base = '/api/hub';

our $Keys = CastAuth->new;
$Keys->secret('h1');
$Keys->secret_file('h1.key', 'h1');
$ENV{TEST_NGINX_AUTH_DIR} = $Keys->dir;

sub tok {
    my ($topic) = @_;
    return 'Bearer ' . $Keys->token('h1', CastAuth::claims(topic => $topic,
        scope => 'fhircast/*.read fhircast/*.write'));
}

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /conference { cast_conference; }
    location = /topics { cast_topics; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# a JSON request: (code, decoded body or {raw})
sub j {
    my ($method, $path, $body, @h) = @_;
    my ($code, $h, $b) = http_request($method, $path,
        defined $body ? (ref $body ? json_encode($body) : $body) : undef,
        defined $body ? ('Content-Type' => 'application/json') : (), @h);
    my $d = eval { json_decode($b) };
    return ($code, defined $d ? $d : { raw => $b }, $h);
}

# what a socket got since the last look: [[topic, event, id, context]...]
sub got {
    my ($ws) = @_;
    return [map { [$_->{event}{'hub.topic'}, $_->{event}{'hub.event'},
                   $_->{id}, $_->{event}{context}] }
            grep { ref $_->{event} } @{ events(sync($ws)) }];
}

sub names { join ' ', map { $_->[1] } @{ $_[0] } }

sub ev {
    my ($topic, $name, $id) = @_;
    return json_encode({ id => $id, timestamp => '2026-12-05T10:00:00.000Z',
                         event => { 'hub.topic' => $topic, 'hub.event' => $name,
                                    context => [{ key => 'annotation',
                                                  resource => { uid => $id } }] } });
}

run_tests();

__DATA__

=== TEST 1: the routes, their codes and bodies (G2 under {base}, G1 /conference and /topics)
--- config
--- init
package main;
my ($c, $b, $h);
subscribe_ok('T1', '*', 'subscriber.name' => 'A');
subscribe_ok('T2', '*', 'subscriber.name' => 'B');

($c, $b) = j('POST', '/api/hub/conference', { title => 'x' });
is($c, 400, 'create without hostTopic: 400');
like($b->{error}, qr/hostTopic is required/, '... it says so');
($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1' });
is($c, 400, 'create without title: 400');
like($b->{error}, qr/title is required/, '... it says so');
($c, $b) = j('POST', '/api/hub/conference', '{"hostTopic":');
is($c, 400, 'invalid JSON: 400');
($c, $b) = j('POST', '/api/hub/conference', '[1]');
is($c, 400, 'not an object: 400');
($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1', title => 't', topics => 'T2' });
is($c, 400, 'topics not an array: 400');
($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1', title => 't', topics => ["a\x01b"] });
is($c, 400, 'a topic with a control character: 400');
($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1', title => 't', topics => [map { "U$_" } 1 .. 300] });
is($c, 400, 'more than 256 topics: 400');
($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1', title => 't', topics => ['T2'], sceneLeaderTopic => 'T9' });
is($c, 400, 'a leader that is not a participant: 400');

($c, $b, $h) = j('POST', '/api/hub/conference',
                 { hostTopic => 'T1', title => 'Tumor board', topics => ['T2', 'T1', '*', 'T2', 'T3'] });
is($c, 201, 'create: 201');
is_deeply($b, { status => 'created',
                conference => { hostTopic => 'T1', title => 'Tumor board',
                                sceneLeaderTopic => 'T1', topics => ['T2', 'T3'] } },
          'create: the stored conference (attendees de-duplicated, no "*", no host)');
like($h->{'content-type'} || $h->{'Content-Type'} || '', qr{application/json}, 'JSON');

($c, $b) = j('GET', '/api/hub/conference');
is($c, 200, 'list: 200');
is_deeply($b, [{ hostTopic => 'T1', user => 'T1', title => 'Tumor board', sceneLeaderTopic => 'T1',
                 topics => ['T2', 'T3'], participants => ['T1', 'T2', 'T3'] }], 'list: the conference');
($c, my $g1) = j('GET', '/conference');
is_deeply($g1, $b, 'G1 GET /conference: the same list');

($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T4', title => 'other', topics => ['T2'] });
is($c, 409, 'a topic already in a conference: 409');
like($b->{error}, qr/"T2" is in the conference of "T1"/, '... it says where');

($c, $b) = j('PATCH', '/api/hub/conference/join', { hostTopic => 'T9', joinTopic => 'T4' });
is($c, 404, 'join a conference that does not exist: 404');
($c, $b) = j('PATCH', '/api/hub/conference/join', { hostTopic => 'T1', joinTopic => 'T1' });
is($c, 400, 'join with the host topic: 400');
($c, $b) = j('PATCH', '/api/hub/conference/join', { hostTopic => 'T1', joinTopic => 'T4' });
is($c, 200, 'join: 200');
is($b->{status}, 'joined', 'join: status joined');
is_deeply($b->{conference}{topics}, ['T2', 'T3', 'T4'], 'join: the topic is an attendee');
($c, $b) = j('PATCH', '/api/hub/conference/join', { hostTopic => 'T1', topic => 'T4' });
is($c, 200, 'join again ("topic"): 200, nothing changes');
is_deeply($b->{conference}{topics}, ['T2', 'T3', 'T4'], '... the same attendees');

($c, $b) = j('PATCH', '/api/hub/conference/lead', { hostTopic => 'T1', sceneLeaderTopic => 'T7' });
is($c, 400, 'lead by a non-participant: 400');
($c, $b) = j('PATCH', '/api/hub/conference/lead', { hostTopic => 'T1', leadTopic => 'T3' });
is($c, 200, 'lead ("leadTopic"): 200');
is($b->{status}, 'updated', 'lead: status updated');
is($b->{conference}{sceneLeaderTopic}, 'T3', 'lead: the new leader');

($c, $b) = j('DELETE', '/api/hub/conference', { hostTopic => 'T1', leaveTopic => 'T3' });
is($c, 200, 'DELETE with leaveTopic: 200');
is_deeply([@$b{qw(removed updated)}], [0, 1], 'leave: {"removed":0,"updated":1}');
($c, $b) = j('GET', '/api/hub/conference');
is_deeply($b->[0]{topics}, ['T2', 'T4'], 'the leaver is gone');
is($b->[0]{sceneLeaderTopic}, 'T1', 'the leader left: the host leads');
($c, $b) = j('POST', '/api/hub/conference/leave', { hostTopic => 'T1', leaveTopic => 'T3' });
is($c, 404, 'leave again: 404');

($c, $b) = j('GET', '/topics');
is_deeply($b, ['T1', 'T2'], 'G1 /topics: the topics, sorted');
($c, $b) = j('GET', '/api/hub/conference-topics');
is_deeply($b, [{ topic => 'T1' }, { topic => 'T2' }], 'G2 conference-topics: objects');

($c, $b) = j('PUT', '/api/hub/conference', { hostTopic => 'T1' });
is($c, 405, 'PUT: 405');
($c, $b) = j('GET', '/api/hub/conference/join');
is($c, 405, 'GET join: 405');
my ($oc, $oh) = http_request('OPTIONS', '/api/hub/conference/join');
is($oc, 204, 'OPTIONS: 204');
like($oh->{allow} || $oh->{Allow} || '', qr/PATCH/, 'OPTIONS: Allow names PATCH');

($c, $b) = j('DELETE', '/conference', { user => 'T1' });
is($c, 200, 'G1 DELETE /conference {"user"}: 200');
is($b->{removed}, 1, '... removed 1');
($c, $b) = j('DELETE', '/conference', { user => 'T1' });
is_deeply([$c, $b->{removed}], [200, 0], 'again: 200, removed 0');
($c, $b) = j('GET', '/api/hub/conference');
is_deeply($b, [], 'no conference left');
($c, $b) = j('POST', '/conference', { user => 'T2', title => 'G1', topics => ['T1'] });
is($c, 201, 'G1 POST /conference {"user"}: 201');
($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T2', title => 'again', topics => ['T5'] });
is($c, 201, 'create again on the same host: replaces it');
is_deeply($b->{conference}{topics}, ['T5'], '... with the new attendees');
--- error_code: 200



=== TEST 2: conference-start/-lead/-end reach every participant socket, whatever its filter; events cross once, hub.topic unchanged, filters applied
--- config
--- init
package main;
my ($c, $b);
my $a1 = connect_ready(subscribe_ok('T1', '*', 'subscriber.name' => 'A1'), cast => 1);
my $a2 = connect_ready(subscribe_ok('T1', 'patient-open', 'subscriber.name' => 'A2'), cast => 1);
my $b1 = connect_ready(subscribe_ok('T2', 'annotation-update', 'subscriber.name' => 'B1'), cast => 1);
my $c1 = connect_ready(subscribe_ok('T3', '*', 'subscriber.name' => 'C1'), cast => 1);

($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1', title => 'TB', topics => ['T2'] });
is($c, 201, 'create');
for ([$a1, 'A1'], [$a2, 'A2'], [$b1, 'B1']) {
    my $g = got($_->[0]);
    is(names($g), 'conference-start', "$_->[1]: conference-start");
    is($g->[0][0], 'T1', "$_->[1]: hub.topic is the host");
    is_deeply($g->[0][3]{participants}, ['T1', 'T2'], "$_->[1]: context.participants");
    is($g->[0][3]{title}, 'TB', "$_->[1]: context.title");
    is($g->[0][3]{hostTopic}, 'T1', "$_->[1]: context.hostTopic");
    like($g->[0][2], uuid_re(), "$_->[1]: a fresh UUID id");
}
is(names(got($c1)), '', 'T3 (not in it): nothing');

is(publish(ev('T2', 'annotation-update', 'u1')), 200, 'T2 publishes');
is(publish(ev('T1', 'annotation-update', 'u2')), 200, 'T1 publishes');
is(publish(ev('T1', 'patient-open', 'p1')), 200, 'T1 patient-open');
my $g = got($a1);
is_deeply([map { "$_->[0]:$_->[2]" } @$g], ['T2:u1', 'T1:u2', 'T1:p1'], 'A1 (*): all three, hub.topic unchanged');
is_deeply([map { $_->[2] } @{ got($a2) }], ['p1'], 'A2 (patient-open): its filter applies');
is_deeply([map { "$_->[0]:$_->[2]" } @{ got($b1) }], ['T2:u1', 'T1:u2'], 'B1 (annotation-update): once each');
is(names(got($c1)), '', 'T3: nothing crossed');
is(context('T2')->[0]{resource}{uid}, 'u1', 'GET context stays per topic (T2)');
is(context('T1')->[0]{resource}{uid}, 'p1', 'GET context stays per topic (T1)');

($c, $b) = j('PATCH', '/api/hub/conference/join', { hostTopic => 'T1', joinTopic => 'T3', joinUserName => 'Carol' });
is($c, 200, 'T3 joins');
for ([$a1, 'A1'], [$b1, 'B1'], [$c1, 'C1']) {
    my $g = got($_->[0]);
    is(names($g), 'conference-start', "$_->[1]: conference-start on join");
    is($g->[0][3]{joinedTopic}, 'T3', "$_->[1]: context.joinedTopic");
}
is(publish(ev('T3', 'annotation-update', 'u3')), 200, 'T3 publishes');
is_deeply([map { $_->[2] } @{ got($b1) }], ['u3'], 'B1 gets the new attendee\'s event');
is(names(got($a2)), 'conference-start', 'A2 (patient-open only): the join too');
got($_) for $a1, $c1;

($c, $b) = j('PATCH', '/api/hub/conference/lead', { hostTopic => 'T1', sceneLeaderTopic => 'T2' });
is($c, 200, 'lead');
$g = got($a2);
is(names($g), 'conference-lead', 'A2 (patient-open only): conference-lead');
is($g->[0][3]{sceneLeaderTopic}, 'T2', 'conference-lead: sceneLeaderTopic');
got($_) for $a1, $b1, $c1;

($c, $b) = j('DELETE', '/api/hub/conference', { hostTopic => 'T1', leaveTopic => 'T2' });
is($c, 200, 'T2 leaves');
for ([$a1, 'A1'], [$b1, 'B1'], [$c1, 'C1']) {
    my $g = got($_->[0]);
    is(names($g), 'conference-end', "$_->[1]: conference-end");
    is($g->[0][3]{reason}, 'attendee-left', "$_->[1]: reason attendee-left");
    is($g->[0][3]{leaveTopic}, 'T2', "$_->[1]: leaveTopic");
}
is(publish(ev('T2', 'annotation-update', 'u4')), 200, 'T2 publishes after leaving');
is_deeply([map { $_->[2] } @{ got($b1) }], ['u4'], 'T2 still gets its own event');
is(names(got($a1)), '', 'T1 does not');
is(publish(ev('T3', 'annotation-update', 'u5')), 200, 'T3 (still in) publishes');
is_deeply([map { $_->[2] } @{ got($a1) }], ['u5'], 'T1 gets it');
is_deeply([map { $_->[2] } @{ got($c1) }], ['u5'], 'T3 gets its own');

($c, $b) = j('DELETE', '/api/hub/conference', { hostTopic => 'T1', leaveTopic => 'T3' });
is($c, 200, 'the last attendee leaves');
$g = got($a1);
is($g->[0][3]{reason}, 'empty', 'host: reason empty');
$g = got($c1);
is($g->[0][3]{reason}, 'empty', 'leaver: reason empty');
($c, $b) = j('GET', '/api/hub/conference');
is_deeply($b, [], 'the empty conference is gone');

($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'T1', title => 'again', topics => ['T2', 'T3'] });
got($_) for $a1, $a2, $b1, $c1;
($c, $b) = j('DELETE', '/api/hub/conference', { hostTopic => 'T1' });
is($c, 200, 'the host ends it');
for ([$a2, 'A2'], [$b1, 'B1'], [$c1, 'C1']) {
    my $g = got($_->[0]);
    is(names($g), 'conference-end', "$_->[1]: conference-end");
    is($g->[0][3]{reason}, 'host-ended', "$_->[1]: reason host-ended");
}
--- error_code: 200



=== TEST 3: a conference ends with its host topic's last subscription
--- config
--- init
package main;
my $h1 = connect_ready(subscribe_ok('H', '*', 'subscriber.name' => 'H1'), cast => 1);
my $h2 = connect_ready(subscribe_ok('H', '*', 'subscriber.name' => 'H2'), cast => 1);
my $x = connect_ready(subscribe_ok('X', 'annotation-update', 'subscriber.name' => 'X1'), cast => 1);
my ($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'H', title => 'T', topics => ['X'] });
is($c, 201, 'create');
got($_) for $h1, $h2, $x;
$h1->close;
is(names(got($x)), '', 'one host socket goes: the conference stays');
($c, $b) = j('GET', '/api/hub/conference');
is(scalar @$b, 1, '... listed');
$h2->close;
my $g = got($x);
$g = got($x) if !@$g;
is(names($g), 'conference-end', 'the last host socket goes: conference-end');
is($g->[0][3]{reason}, 'host-left', '... reason host-left');
($c, $b) = j('GET', '/api/hub/conference');
is_deeply($b, [], 'no conference left');
--- error_code: 200
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 4: subscription-removed (G2) to the topic's subscriptions that listed it
--- config
--- init
package main;
my $w = connect_ready(subscribe_ok('S', 'subscription-removed', 'subscriber.name' => 'WATCH'), cast => 1);
my $all = connect_ready(subscribe_ok('S', '*', 'subscriber.name' => 'ALL'), cast => 1);
my $other = connect_ready(subscribe_ok('S', 'patient-open', 'subscriber.name' => 'OTHER'), cast => 1);
my $gone = subscribe_ok('S', 'patient-open', 'subscriber.name' => 'GONE',
                        'subscriber.product.name' => 'OHIF', 'subscriber.actors' => '["ID"]');
my $gws = connect_ready($gone, cast => 1);
my ($code) = hub_form('hub.mode' => 'unsubscribe', 'hub.topic' => 'S',
                      'hub.channel.endpoint' => $gone->{endpoint});
is($code, 202, 'unsubscribe');
my $g = events(sync($w));
my @r = grep { ref $_->{event} } @$g;
is(scalar @r, 1, 'WATCH: one subscription-removed');
is($r[0]{event}{'hub.event'}, 'subscription-removed', '... named so');
is($r[0]{event}{'hub.topic'}, 'S', '... on the topic');
is($r[0]{event}{context}{reason}, 'unsubscribe', '... reason unsubscribe');
is($r[0]{event}{context}{subscriber}, 'GONE', '... context.subscriber');
is($r[0]{'subscriber.name'}, 'GONE', '... subscriber.name');
is($r[0]{'subscriber.product.name'}, 'OHIF', '... subscriber.product.name');
is_deeply($r[0]{'subscriber.actor'}, ['ID'], '... subscriber.actor');
like($r[0]{id}, uuid_re(), '... a UUID id');
is(names(got($all)), 'subscription-removed', 'ALL (*): it too');
is(names(got($other)), '', 'OTHER (patient-open): not for it');
$other->close;
$g = got($w);
$g = got($w) if !@$g;
is(names($g), 'subscription-removed', 'a socket closes: WATCH hears it');
is($g->[0][3]{reason}, 'websocket-disconnect', '... reason websocket-disconnect');
is($g->[0][3]{subscriber}, 'OTHER', '... which one');
--- error_code: 200



=== TEST 5: three users (two apps each) in one conference edit one annotation: every app sees every update once, all in one order
--- config
--- init
package main;
my %apps;
for my $u (1 .. 3) {
    for my $app ('OHIF', 'SLICER') {
        $apps{"U$u-$app"} = connect_ready(subscribe_ok("U$u", 'annotation-update,conference-start',
                                                        'subscriber.name' => "U$u-$app"), cast => 1);
    }
}
my ($c, $b) = j('POST', '/api/hub/conference', { hostTopic => 'U1', title => 'Tumor board', topics => ['U2', 'U3'] });
is($c, 201, 'the conference');
for my $n (sort keys %apps) {
    is(names(got($apps{$n})), 'conference-start', "$n: conference-start");
}
# every user publishes at once, round after round, over its own
# keep-alive connection: the three requests of a round are all sent before
# any answer is read
my @ids;
my @ka = map { CastTest::ka_open() } 1 .. 3;
my $ok = 0;
for my $round (1 .. 10) {
    for my $u (1 .. 3) {
        my $id = "U$u-r$round";
        push @ids, $id;
        my $body = ev("U$u", 'annotation-update', $id);
        CastTest::_write_all($ka[$u - 1]{sock}, "POST /api/hub/U$u HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body");
    }
    for my $u (1 .. 3) {
        my $c = $ka[$u - 1];
        while ($c->{buf} !~ /\r\n\r\n/ || length($c->{buf}) < length($`) + 4
                                           + (($` =~ /Content-Length:\s*(\d+)/i)[0] || 0)) {
            sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf}) or last;
        }
        $ok++ if $c->{buf} =~ s{\AHTTP/1\.1 200 [^\r]*\r\n(.*?)\r\n\r\n}{}s
                 && do { my ($len) = $1 =~ /Content-Length:\s*(\d+)/i; substr($c->{buf}, 0, $len || 0) = ''; 1 };
    }
}
is($ok, 30, 'the 30 publishes: 200 each');
my %seen;
for my $n (sort keys %apps) {
    my $g = got($apps{$n});
    $g = [@$g, @{ got($apps{$n}) }] if @$g < @ids;
    my @got = map { $_->[2] } @$g;
    is(scalar @got, scalar @ids, "$n: every update (@{[scalar @ids]})");
    my %once; $once{$_}++ for @got;
    is(scalar(grep { $once{$_} != 1 } keys %once), 0, "$n: each once");
    $seen{join ',', @got}++;
}
is(scalar keys %seen, 1, 'all six apps saw one order') or diag(explain(\%seen));
--- error_code: 200



=== TEST 6: cast_json_ping: G1's {"type":"ping"} message with every ping, for the clients that want it; a {"type":"pong"} answer is ignored
--- config
    cast_ping_interval 1s;
    cast_json_ping on;
--- init
package main;
my $ws = connect_ready(subscribe_ok('P', 'patient-open'), cast => 1);
my ($json, $ping) = (0, 0);
my $end = Time::HiRes::time() + 2.6;
while (Time::HiRes::time() < $end) {
    my ($op, $p) = $ws->recv_frame(0.3);
    next if !defined $op;
    if ($op == 9) { $ping++; $ws->send_pong($p); next }
    if ($op == 1) {
        my $m = eval { json_decode($p) } || {};
        if (($m->{type} || '') eq 'ping') {
            $json++;
            like($m->{timestamp} || '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/, 'ping: a timestamp') if $json == 1;
            $ws->send_text(json_encode({ type => 'pong', timestamp => $m->{timestamp} }));
        }
    }
}
# the window may end between a ping and its message
my $more = Time::HiRes::time() + 1;
while ($json < $ping && Time::HiRes::time() < $more) {
    my ($op, $p) = $ws->recv_frame(0.3);
    next if !defined $op || $op != 1;
    $json++ if (eval { json_decode($p) } || {})->{type} eq 'ping';
}
ok($ping >= 2, "protocol pings ($ping)");
is($json, $ping, 'one {"type":"ping"} with each');
is(publish(ev('P', 'patient-open', 'p1')), 200, 'publish');
is_deeply([map { $_->[2] } @{ got($ws) }], ['p1'], 'the socket is open and gets events');
--- error_code: 200



=== TEST 7: no {"type":"ping"} message by default
--- config
    cast_ping_interval 1s;
--- init
package main;
my $ws = connect_ready(subscribe_ok('P', 'patient-open'), cast => 1);
my ($json, $ping) = (0, 0);
my $end = Time::HiRes::time() + 2.3;
while (Time::HiRes::time() < $end) {
    my ($op, $p) = $ws->recv_frame(0.3);
    next if !defined $op;
    if ($op == 9) { $ping++; $ws->send_pong($p); next }
    $json++ if $op == 1;
}
ok($ping >= 1, "protocol pings ($ping)");
is($json, 0, 'no text frame');
--- error_code: 200



=== TEST 8: with cast_auth, a topic comes in only with its own token: create with the host's, join with the joiner's, leave with the leaver's or the host's, lead and end with the host's
--- config
    location /secure/api/hub {
        cast_hub;
        cast_auth jwt;
        cast_auth_secret $TEST_NGINX_AUTH_DIR/h1.key kid=h1;
        cast_auth_issuer https://auth.example;
        cast_auth_audience cast-hub;
    }
--- init
package main;
my $base = '/secure/api/hub/conference';
my ($c, $b);
($c) = j('GET', $base);
is($c, 401, 'list without a token: 401');
($c) = j('GET', $base, undef, Authorization => tok('H'));
is($c, 200, 'list with a token: 200');
($c, $b) = j('POST', $base, { hostTopic => 'H', title => 't' }, Authorization => tok('X'));
is($c, 403, "create with another topic's token: 403");
($c, $b) = j('POST', $base, { hostTopic => 'H', title => 't', topics => ['X'] }, Authorization => tok('H'));
is($c, 403, 'create naming another topic: 403');
like($b->{error}, qr/"X" joins with its own token/, '... it says how');
($c, $b) = j('POST', $base, { hostTopic => 'H', title => 't', topics => ['H', '*'] }, Authorization => tok('H'));
is($c, 201, "create with the host's token: 201");
($c) = j('PATCH', "$base/join", { hostTopic => 'H', joinTopic => 'X' }, Authorization => tok('H'));
is($c, 403, "join with the host's token: 403");
($c) = j('PATCH', "$base/join", { hostTopic => 'H', joinTopic => 'X' }, Authorization => tok('X'));
is($c, 200, "join with the joiner's token: 200");
($c) = j('PATCH', "$base/join", { hostTopic => 'H', joinTopic => 'Y' }, Authorization => tok('Y'));
is($c, 200, 'another joins: 200');
($c) = j('PATCH', "$base/lead", { hostTopic => 'H', sceneLeaderTopic => 'X' }, Authorization => tok('X'));
is($c, 403, "lead with an attendee's token: 403");
($c) = j('PATCH', "$base/lead", { hostTopic => 'H', sceneLeaderTopic => 'X' }, Authorization => tok('H'));
is($c, 200, "lead with the host's token: 200");
($c) = j('DELETE', $base, { hostTopic => 'H', leaveTopic => 'X' }, Authorization => tok('Y'));
is($c, 403, "leave with a third topic's token: 403");
($c) = j('DELETE', $base, { hostTopic => 'H', leaveTopic => 'X' }, Authorization => tok('X'));
is($c, 200, "leave with the leaver's token: 200");
($c) = j('DELETE', $base, { hostTopic => 'H', leaveTopic => 'Y' }, Authorization => tok('H'));
is($c, 200, 'the host sends one off: 200');
($c) = j('POST', $base, { hostTopic => 'H', title => 't' }, Authorization => tok('H'));
($c) = j('DELETE', $base, { hostTopic => 'H' }, Authorization => tok('X'));
is($c, 403, "end with another token: 403");
($c, $b) = j('DELETE', $base, { hostTopic => 'H' }, Authorization => tok('H'));
is_deeply([$c, $b->{removed}], [200, 1], "end with the host's token: 200");
--- error_code: 200
