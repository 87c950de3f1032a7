# Request/response between apps (Cast reference 1.8), in local and in
# Redis mode: G1 GET {base}/cast-get (a "get-request" to one subscriber,
# answered by its "get-response", matched by context.requestId) and G2
# POST {base}/request (a "*-request" to every target, the "*-response"
# messages collated, matched by context.id); validation, every outcome
# of the reply, timeouts, duplicates, answers for no request, clients
# that go away, the per-worker limit, many requests at once, and in Redis
# mode targets on another worker and on another host.
#
# Ports: TEST_NGINX_SERVER_PORT (+ 1 for the second host in Redis mode).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode cast_mode);
use CastMode;
use CastCluster ();
use CastAuth;
use IO::Socket::INET ();
use IO::Select ();
use Time::HiRes ();

no_shuffle();
repeat_each(1);
log_level('info');

our $Keys = CastAuth->new;
$Keys->secret('h1');
$Keys->secret_file('h1.key', 'h1');
$ENV{TEST_NGINX_AUTH_DIR} = $Keys->dir;

sub bearer {
    my ($topic, $scope) = @_;
    return (Authorization => 'Bearer ' . $Keys->token('h1',
        CastAuth::claims(topic => $topic, scope => $scope)));
}

our $Locations = <<'_EOC_';
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . $main::Locations);
    $block->set_value('request', "GET /cast/status\n")
        if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log',
                          "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

our $N = 0;

sub enc {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub nw { cast_mode() eq 'redis' ? 2 : 1 }

# an app: a subscription (bound to a socket unless unbound => 1)
sub app {
    my (%o) = @_;
    my $port = $o{port} || server_port();
    my %f = ('subscriber.name' => enc($o{name}),
             'hub.events' => enc(defined $o{events} ? $o{events} : '*'));
    $f{'subscriber.actors'} = enc($o{actors}) if defined $o{actors};
    $f{'subscriber.product.name'} = enc($o{product}) if defined $o{product};
    my ($code, $path, $body) =
        CastCluster::subscribe($port, enc($o{topic}), %f);
    die "subscribe $o{name}: $code $body\n" if $code != 202 || !$path;
    return $path if $o{unbound};
    my $ws = $o{ka} ? CastCluster::ws_upgrade($o{ka}, $path)
                    : CastCluster::bind_ws($port, $path);
    $ws->{name} = $o{name};
    return $ws;
}

# an HTTP request written now, its answer read later (req_end)
sub req_start {
    my ($method, $path, $body, %o) = @_;
    my $c = $o{ka};
    if (!$c) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $o{port} || server_port(),
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        binmode $s;
        $c = { sock => $s, buf => '' };
    }
    $body = json_encode($body) if ref $body;
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n";
    $req .= "Connection: close\r\n" if !$o{ka};
    $req .= "Content-Type: application/json\r\nContent-Length: "
            . length($body) . "\r\n" if defined $body;
    $req .= "\r\n" . (defined $body ? $body : '');
    CastTest::_write_all($c->{sock}, $req) or die "write: $!";
    return { c => $c, t0 => Time::HiRes::time() };
}

# -> ($status, $decoded or raw body, $seconds waited)
sub req_end {
    my ($h, $secs) = @_;
    my $c = $h->{c};
    my $sel = IO::Select->new($c->{sock});
    my $deadline = Time::HiRes::time() + ($secs || 10);
    while (1) {
        if ($c->{buf} =~ /\A(HTTP\/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n)/s) {
            my ($hl, $code, $hd) = (length $1, $2, $3);
            my ($len) = $hd =~ /^Content-Length:\s*(\d+)/mi;
            $len = 0 if !defined $len;
            if (length($c->{buf}) >= $hl + $len) {
                my $b = substr($c->{buf}, $hl, $len);
                substr($c->{buf}, 0, $hl + $len) = '';
                my $d = eval { json_decode($b) };
                return ($code, defined $d ? $d : $b,
                        Time::HiRes::time() - $h->{t0});
            }
        }
        my $left = $deadline - Time::HiRes::time();
        return ('timeout', undef, undef)
            if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf});
        return ('closed', undef, undef) if !$n;
    }
}

sub ask {
    my ($body, %o) = @_;
    return req_end(req_start('POST', '/api/hub/request', $body, %o),
                   $o{wait});
}

# a G2 request body
sub g2 {
    my (%o) = @_;
    my $b = { 'subscriber.name' => $o{from},
              id => $o{id} || 'req-' . ++$N . "-$$",
              timestamp => '2026-12-05T10:00:00.000Z',
              event => { 'hub.event' => $o{event} || 'status-request',
                         context => $o{context} || {} } };
    $b->{event}{'hub.topic'} = $o{topic} if defined $o{topic};
    for my $k (qw(target.actor target.product.name subscriber.actor
                  subscriber.product.name))
    {
        $b->{$k} = $o{$k} if exists $o{$k};
    }
    return $b;
}

# the next message with an "event" a socket gets (or undef)
sub next_msg {
    my ($ws, $secs) = @_;
    my $deadline = Time::HiRes::time() + (defined $secs ? $secs : 5);
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        my $m = $ws->recv_json($left) or return undef;
        next if !exists $m->{event};
        return $m;
    }
    return undef;
}

# what a socket got meanwhile (events only)
sub quiet {
    my ($ws, $secs) = @_;
    my @got;
    while (my $m = next_msg($ws, defined $secs ? $secs : 0.5)) {
        push @got, $m;
    }
    return \@got;
}

# a G2 answer to the request message $req
sub respond {
    my ($ws, $req, %o) = @_;
    my $ev = $req->{event};
    (my $name = $ev->{'hub.event'}) =~ s/-request$/-response/i;
    my $r = { timestamp => '2026-12-05T10:00:01.000Z',
              id => $o{id} || 'ans-' . ++$N . "-$$",
              event => { 'hub.topic' => $ev->{'hub.topic'},
                         'hub.event' => $o{event} || $name,
                         context => { id => exists $o{rid} ? $o{rid}
                                                           : $ev->{context}{id},
                                      dataType => $ev->{context}{dataType},
                                      data => exists $o{data} ? $o{data}
                                              : { from => $ws->{name} } } } };
    $r->{'subscriber.name'} = $ws->{name} if !$o{anonymous};
    $r->{'subscriber.product.name'} = $o{product} if $o{product};
    $r->{actor} = $o{actor} if $o{actor};
    $ws->send_json($r);
    return $r;
}

sub names { join ',', map { defined $_ ? $_ : 'null' } @{ $_[0] || [] } }

run_tests();

__DATA__

=== TEST 1: G2 validation: 400 with a reason for every malformed request, logged at info
--- config
--- init
package main;
my @bad = (
    [ '{"id":"x"', qr/invalid JSON/, 'malformed JSON' ],
    [ '[1,2]', qr/JSON object/, 'not an object' ],
    [ json_encode({ id => 'x', event => { 'hub.event' => 'status-request' } }),
      qr/subscriber\.name/, 'no subscriber.name' ],
    [ json_encode({ 'subscriber.name' => '  ', id => 'x',
                    event => { 'hub.event' => 'status-request' } }),
      qr/subscriber\.name/, 'a blank subscriber.name' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x',
                    event => { 'hub.event' => 'status-update' } }),
      qr/-request/, 'hub.event not a request' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x',
                    event => { 'hub.event' => '-request' } }),
      qr/-request/, 'hub.event "-request" alone' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x', event => 'status-request' }),
      qr/-request/, 'event not an object' ],
    [ json_encode({ 'subscriber.name' => 'R',
                    event => { 'hub.event' => 'status-request' } }),
      qr/"id"/, 'no id' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 7,
                    event => { 'hub.event' => 'status-request' } }),
      qr/"id"/, 'id not a string' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x' x 257,
                    event => { 'hub.event' => 'status-request' } }),
      qr/256 bytes/, 'id too long' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x',
                    event => { 'hub.event' => 'status-request',
                               context => { timeoutSeconds => { a => 1 } } } }),
      qr/timeoutSeconds/, 'timeoutSeconds an object' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x',
                    event => { 'hub.event' => 'status-request',
                               context => { timeoutSeconds => '2 s' } } }),
      qr/timeoutSeconds/, 'timeoutSeconds not a number' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x', 'target.actor' => 5,
                    event => { 'hub.event' => 'status-request' } }),
      qr/target\.actor/, 'target.actor a number' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x', 'target.actor' => ['A', 1],
                    event => { 'hub.event' => 'status-request' } }),
      qr/target\.actor/, 'target.actor a list with a number' ],
    [ json_encode({ 'subscriber.name' => 'R', id => 'x',
                    event => { 'hub.event' => 'status-request', 'hub.topic' => [] } }),
      qr/hub\.topic/, 'hub.topic not a string' ],
);
for my $b (@bad) {
    my ($code, $body) = ask($b->[0]);
    is($code, 400, "$b->[2]: 400");
    like(ref $body ? $body->{error} : $body, $b->[1], "$b->[2]: the reason");
}
--- error_log
cast: 400 missing "subscriber.name"
cast: 400 event.hub.event must be a *-request event name
cast: 400 missing "id" on the request body



=== TEST 2: routes: G1 without subscriber is 400; wrong methods are 405 with Allow; a preflight as {base}'s
--- config
    cast_cors_origin *;
--- init
package main;
my ($code, $h, $body) = http_request('GET', '/api/hub/cast-get');
is($code, 400, 'cast-get without subscriber: 400');
like($body, qr/Missing 'subscriber' parameter/, 'cast-get: the G1 reason');
($code, $h, $body) = http_request('GET', '/api/hub/cast-get?subscriber=');
is($code, 400, 'cast-get with an empty subscriber: 400');
($code, $h, $body) = http_request('GET', '/api/hub/cast-get?subscriber=A%01');
is($code, 400, 'cast-get: a control character: 400');
like($body, qr/subscriber\W{1,2} parameter/, 'cast-get: which parameter');
($code, $h, $body) = http_request('GET', '/api/hub/cast-get?subscriber=A&topic=a%2Fb');
is($code, 400, 'cast-get: a topic with "/": 400');
($code, $h) = http_request('POST', '/api/hub/cast-get', '{}');
is($code, 405, 'POST cast-get: 405');
is($h->{allow}, 'GET, OPTIONS', 'cast-get: Allow');
($code, $h) = http_request('GET', '/api/hub/request');
is($code, 405, 'GET request: 405');
is($h->{allow}, 'POST, OPTIONS', 'request: Allow');
($code, $h) = http_request('DELETE', '/api/hub/request/');
is($code, 405, 'DELETE request/: 405');
($code, $h) = http_request('OPTIONS', '/api/hub/request',  undef,
                           Origin => 'http://x', 'Access-Control-Request-Method' => 'POST');
is($code, 204, 'preflight: 204');
($code) = http_request('POST', '/api/hub/request/', '{}');
is($code, 400, 'request/ with a trailing slash is the route too');



=== TEST 3: G2 outcomes without a dispatch: requester-not-found, -not-connected, target-not-found, -not-connected (always 200)
--- config
--- init
package main;
my ($code, $r) = ask(g2(from => 'REQ', topic => 'T3'));
is($code, 200, 'nobody: 200');
is($r->{ok}, JSON::PP::false, 'ok false');
is($r->{error}, 'requester-not-found', 'requester-not-found');
is($r->{exists}, JSON::PP::false, 'exists false');
is($r->{timedOut}, JSON::PP::false, 'not timed out');
is_deeply($r->{responses}, [], 'no responses');
is($r->{topic}, 'T3', 'topic');
is($r->{requestedTopic}, 'T3', 'requestedTopic');
ok(exists $r->{endpoint} && !defined $r->{endpoint}, 'endpoint null');

my $req_path = app(name => 'REQ', topic => 'T3', unbound => 1);
($code, $r) = ask(g2(from => 'REQ', topic => 'T3'));
is($r->{error}, 'requester-not-connected', 'requester-not-connected');
is($r->{exists}, JSON::PP::true, 'exists');
is($r->{connected}, JSON::PP::false, 'not connected');

my $req = CastCluster::bind_ws(server_port(), $req_path);
($code, $r) = ask(g2(from => 'REQ', topic => 'T3'));
is($r->{error}, 'target-not-found', 'target-not-found (the requester is not a target)');
is($r->{connected}, JSON::PP::true, 'connected');
is($r->{targetExists}, JSON::PP::false, 'targetExists false');

my $o1 = app(name => 'OTHER', topic => 'T3', events => 'patient-open');
my $o2 = app(name => 'ELSEWHERE', topic => 'T3b');
($code, $r) = ask(g2(from => 'REQ', topic => 'T3'));
is($r->{error}, 'target-not-found', 'not by events, not on another topic');

app(name => 'W', topic => 'T3', events => 'status-request', unbound => 1);
($code, $r) = ask(g2(from => 'REQ', topic => 'T3'));
is($r->{error}, 'target-not-connected', 'target-not-connected');
is($r->{targetExists}, JSON::PP::true, 'targetExists');
is($r->{targetConnected}, JSON::PP::false, 'targetConnected false');
is_deeply($r->{expected}, [], 'expected: none connected');
is_deeply(quiet($req, 0.3), [], 'the requester got nothing');
--- error_log
was not sent: requester-not-found



=== TEST 4: G2: the targets get the request (context.id, dataType), answer; the reply collates; nothing is broadcast
--- config
--- init
package main;
my $req = app(name => 'REQ-1', topic => 'U4', actors => '["ID"]', product => 'OHIF');
my $w = app(name => 'WKLST-AB12CD', topic => 'U4', events => 'status-request,patient-open',
            actors => '["WORKLIST_CLIENT","WATCHER"]', product => 'WKLST');
my $v = app(name => 'VIEW-1', topic => 'U4', actors => '["VIEWER"]', product => 'OHIF');
my $any = app(name => 'ANY-1', topic => '*', actors => '["OTHER"]');
my $h = req_start('POST', '/api/hub/request',
                  g2(from => 'REQ-1', topic => 'U4', id => 'r4-1',
                     'target.actor' => 'WORKLIST_CLIENT', 'subscriber.actor' => 'ID',
                     'subscriber.product.name' => 'OHIF',
                     context => { dataType => 'STATUS', extra => [1, 2] }));
my $m = next_msg($w);
ok($m, 'the worklist got the request');
is($m->{event}{'hub.event'}, 'status-request', 'hub.event');
is($m->{event}{'hub.topic'}, 'U4', 'hub.topic');
is($m->{event}{context}{id}, 'r4-1', 'context.id is the request id');
is($m->{event}{context}{dataType}, 'STATUS', 'context.dataType');
is_deeply($m->{event}{context}{extra}, [1, 2], 'the rest of the context');
is($m->{'subscriber.name'}, 'REQ-1', 'subscriber.name: the requester');
is($m->{'subscriber.actor'}, 'ID', 'subscriber.actor');
is($m->{'subscriber.product.name'}, 'OHIF', 'subscriber.product.name');
is($m->{'target.actor'}, 'WORKLIST_CLIENT', 'target.actor');
like($m->{id}, qr/^[0-9a-f-]{36}$/, 'a fresh uuid id');
ok($m->{timestamp}, 'a timestamp');
my $ans = respond($w, $m, data => { studies => 3 }, actor => 'WORKLIST_CLIENT');
my ($code, $r, $secs) = req_end($h);
is($code, 200, 'status 200');
is($r->{ok}, JSON::PP::true, 'ok');
ok(!exists $r->{error}, 'no error');
is($r->{id}, 'r4-1', 'id');
is($r->{'subscriber.name'}, 'REQ-1', 'subscriber.name');
is($r->{dataType}, 'STATUS', 'dataType');
is($r->{'subscriber.actor'}, 'ID', 'subscriber.actor');
is($r->{'target.actor'}, 'WORKLIST_CLIENT', 'target.actor');
is($r->{exists}, JSON::PP::true, 'exists');
is($r->{connected}, JSON::PP::true, 'connected');
is($r->{targetExists}, JSON::PP::true, 'targetExists');
is($r->{targetConnected}, JSON::PP::true, 'targetConnected');
is_deeply($r->{expected}, ['WKLST-AB12CD'], 'expected');
is_deeply($r->{missing}, [], 'missing');
is($r->{timedOut}, JSON::PP::false, 'timedOut');
is_deeply($r->{responses},
          [{ id => $ans->{id}, subscriber => 'WKLST-AB12CD', actor => 'WORKLIST_CLIENT',
             productName => 'WKLST', data => { studies => 3 } }], 'responses');
ok($secs < 1.5, "answered when every target had answered ($secs s)");
is_deeply(quiet($v, 0.5), [], 'another actor was not asked');
is_deeply(quiet($any), [], 'the "*" subscription of another actor was not asked');
is_deeply(quiet($req, 0.1), [], 'the requester got neither the request nor the response');

# the product filter, the "*" topic subscription, the derived dataType
$h = req_start('POST', '/api/hub/request',
               g2(from => 'REQ-1', topic => 'U4', id => 'r4-2',
                  'target.product.name' => 'ohif', event => 'PNGThumbnail-request'));
$m = next_msg($v);
ok($m, 'OHIF (product, case-insensitive) asked');
is($m->{event}{context}{dataType}, 'PNGTHUMBNAIL', 'the derived dataType, upper-cased');
is_deeply(quiet($w, 0.3), [], 'not the worklist');
is_deeply(quiet($any, 0.1), [], 'not the "*" one (no product)');
respond($v, $m, anonymous => 1);
($code, $r) = req_end($h);
is($r->{ok}, JSON::PP::true, 'ok');
is($r->{dataType}, 'PNGTHUMBNAIL', 'reply dataType: the derived one');
is($r->{'target.product.name'}, 'ohif', 'target.product.name echoed');
is($r->{responses}[0]{subscriber}, 'VIEW-1', 'an answer without subscriber.name: its subscription');
is($r->{responses}[0]{productName}, 'OHIF', 'productName: the target\'s');

# every actor: the "*" topic subscription too; it answers as "ANY-1"
$h = req_start('POST', '/api/hub/request',
               g2(from => 'REQ-1', topic => 'U4', id => 'r4-3', 'target.actor' => '*'));
my %asked;
for my $ws ($w, $v, $any) {
    my $msg = next_msg($ws);
    $asked{$ws->{name}} = $msg;
}
is(join(',', sort grep { $asked{$_} } keys %asked), 'ANY-1,VIEW-1,WKLST-AB12CD',
   'target.actor "*": everyone but the requester');
is($asked{'ANY-1'}{event}{'hub.topic'}, 'U4', 'the "*" subscription gets the request topic');
respond($_, $asked{$_->{name}}) for $w, $v, $any;
($code, $r) = req_end($h);
is($r->{ok}, JSON::PP::true, 'all three answered: ok');
is(names([sort map { $_->{subscriber} } @{ $r->{responses} }]), 'ANY-1,VIEW-1,WKLST-AB12CD',
   'three responses');
is_deeply($r->{expected}, ['ANY-1', 'VIEW-1', 'WKLST-AB12CD'], 'expected, sorted');
is_deeply(quiet($req, 0.2), [], 'the requester still got nothing');



=== TEST 5: G2 timeout (context.timeoutSeconds), partial answers, duplicates ignored, late answers dropped
--- config
--- init
package main;
my $req = app(name => 'REQ', topic => 'U5');
my $a = app(name => 'A', topic => 'U5', events => 'status-request');
my $b = app(name => 'B', topic => 'U5', events => 'status-request');
my $h = req_start('POST', '/api/hub/request',
                  g2(from => 'REQ', topic => 'U5', id => 'r5',
                     context => { timeoutSeconds => 1 }));
my $ma = next_msg($a);
my $mb = next_msg($b);
ok($ma && $mb, 'both asked');
my $ans = respond($a, $ma);
respond($a, $ma, id => $ans->{id});   # the same envelope again
my ($code, $r, $secs) = req_end($h);
is($code, 200, 'status 200');
is($r->{ok}, JSON::PP::false, 'not ok');
is($r->{error}, 'timeout', 'error timeout');
is($r->{timedOut}, JSON::PP::true, 'timedOut');
is(scalar @{ $r->{responses} }, 1, 'one response (the duplicate envelope ignored)');
is($r->{responses}[0]{subscriber}, 'A', 'from A');
is_deeply($r->{missing}, ['B'], 'B missing');
is_deeply($r->{expected}, ['A', 'B'], 'expected A, B');
ok($secs >= 0.9 && $secs < 3, "after about 1 s ($secs)");
respond($b, $mb);   # too late
is_deeply(quiet($req, 0.3), [], 'the late answer is not broadcast');
ok(!$b->is_closed, 'the late socket stays open');

# the default: 2 s
$h = req_start('POST', '/api/hub/request', g2(from => 'REQ', topic => 'U5', id => 'r5b'));
next_msg($a); next_msg($b);
($code, $r, $secs) = req_end($h);
is($r->{error}, 'timeout', 'default timeout');
ok($secs >= 1.9 && $secs < 4, "after about 2 s ($secs)");

# a huge timeoutSeconds is 300 s at most, and still waits for the answers
$h = req_start('POST', '/api/hub/request',
               g2(from => 'REQ', topic => 'U5', id => 'r5c',
                  context => { timeoutSeconds => 1e300 }));
$ma = next_msg($a); $mb = next_msg($b);
Time::HiRes::sleep(2.2);
respond($a, $ma); respond($b, $mb);
($code, $r, $secs) = req_end($h);
is($r->{ok}, JSON::PP::true, 'timeoutSeconds 1e300: answers after 2.2 s still taken');
is(scalar @{ $r->{responses} }, 2, 'two responses');

# a string number, and zero (the default)
$h = req_start('POST', '/api/hub/request',
               g2(from => 'REQ', topic => 'U5', id => 'r5d',
                  context => { timeoutSeconds => '0.5' }));
next_msg($a); next_msg($b);
($code, $r, $secs) = req_end($h);
ok($r->{timedOut} && $secs < 1.5, "timeoutSeconds \"0.5\": after $secs s");
--- error_log
which no one waits for here
was ignored: a duplicate, or one too many
timed out after 1000 ms



=== TEST 6: answers for no request: unknown id, no id: dropped (info), never broadcast, the socket stays
--- config
--- init
package main;
my $a = app(name => 'A', topic => 'U6');
my $b = app(name => 'B', topic => 'U6');
$a->send_json({ id => 'x1', event => { 'hub.topic' => 'U6', 'hub.event' => 'status-response',
                                       context => { id => 'nope', data => 1 } } });
$a->send_json({ id => 'x2', event => { 'hub.topic' => 'U6', 'hub.event' => 'get-response',
                                       context => { requestId => 'nope2' } } });
$a->send_json({ id => 'x3', event => { 'hub.topic' => 'U6', 'hub.event' => 'status-response',
                                       context => { data => 1 } } });
$a->send_json({ id => 'x4', event => { 'hub.topic' => 'U6', 'hub.event' => 'status-response',
                                       context => 'text' } });
is_deeply(quiet($b, 0.5), [], 'B got none of them');
is_deeply(quiet($a, 0.1), [], 'A got none back');
ok(!$a->is_closed, 'A is still open');
# an ordinary event is still published
my ($code) = http_request('POST', '/api/hub', json_encode({ id => 'e1',
    event => { 'hub.topic' => 'U6', 'hub.event' => 'patient-open', context => [] } }),
    'Content-Type' => 'application/json');
is($code, 200, 'publish');
is((next_msg($b) || {})->{id}, 'e1', 'and delivered');
--- error_log
a response to request "nope", which no one waits for here
a response to request "nope2", which no one waits for here
a response without a request id



=== TEST 7: G1 cast-get: the get-request, the whole get-response, not found, not connected
--- config
--- init
package main;
my ($code, $h, $body) = http_request('GET', '/api/hub/cast-get?subscriber=NOBODY&dataType=SCENEVIEW');
is($code, 200, 'not found: 200');
my $r = json_decode($body);
is($r->{exists}, JSON::PP::false, 'exists false');
is($r->{connected}, JSON::PP::false, 'connected false');
is($r->{subscriber}, 'NOBODY', 'subscriber');
is($r->{dataType}, 'SCENEVIEW', 'dataType');
is_deeply($r->{response}, { error => 'Subscriber not found' }, 'response: the error');

my $path = app(name => 'OHIF-X', topic => 'USER-7', unbound => 1);
($code, $h, $body) = http_request('GET', '/api/hub/cast-get?subscriber=OHIF-X');
$r = json_decode($body);
is($r->{exists}, JSON::PP::true, 'unbound: exists');
is($r->{connected}, JSON::PP::false, 'unbound: not connected');
is($r->{topic}, 'USER-7', 'its topic');
is_deeply($r->{response}, { error => 'Subscriber not connected' }, 'response: not connected');

my $ws = CastCluster::bind_ws(server_port(), $path);
my $other = app(name => 'OTHER', topic => 'USER-7');
my $q = req_start('GET', '/api/hub/cast-get?subscriber=OHIF-X&dataType=SCENEVIEW&topic=USER-7'
                         . '&actor=' . enc('{"role":"ID"}'));
my $m = next_msg($ws);
ok($m, 'the get-request came');
is($m->{event}{'hub.event'}, 'get-request', 'hub.event get-request');
is($m->{event}{'hub.topic'}, 'USER-7', 'hub.topic: its topic');
like($m->{event}{context}{requestId}, qr/^[0-9a-f-]{36}$/, 'context.requestId: a uuid');
is($m->{event}{context}{dataType}, 'SCENEVIEW', 'context.dataType');
is_deeply($m->{actor}, { role => 'ID' }, 'actor (JSON as given)');
my $resp = { timestamp => '2026-12-05T10:00:00Z', id => 'OHIF-1',
             event => { 'hub.topic' => 'USER-7', 'hub.event' => 'get-response',
                        context => { requestId => $m->{event}{context}{requestId},
                                     data => { scene => [1, 2, 3] } } } };
$ws->send_json($resp);
($code, $r) = req_end($q);
is($code, 200, 'status 200');
is_deeply($r->{response}, $resp, 'response: the whole envelope');
is($r->{exists}, JSON::PP::true, 'exists');
is($r->{connected}, JSON::PP::true, 'connected');
is($r->{topic}, 'USER-7', 'topic');
is($r->{requestedTopic}, 'USER-7', 'requestedTopic');
like($r->{endpoint}, qr/^[0-9a-f]{32}$/, 'endpoint: the subscription id');
is($path, "/bind/$r->{endpoint}", 'the one bound at /bind/<endpoint>');
is_deeply($r->{actor}, { role => 'ID' }, 'actor');
is_deeply(quiet($other, 0.3), [], 'the get-response is not broadcast');

# a plain-text actor; another topic does not match
$q = req_start('GET', '/api/hub/cast-get?subscriber=OHIF-X&topic=USER-8&actor=ID+1');
($code, $r) = req_end($q);
is($r->{exists}, JSON::PP::false, 'another topic: not found');
is($r->{actor}, 'ID 1', 'a text actor, "+" decoded');



=== TEST 8: G1 timeout: 5 s, then {"error":"Timeout waiting for response"}; the answer after is dropped
--- config
--- init
package main;
my $ws = app(name => 'SLOW', topic => 'U8');
my $q = req_start('GET', '/api/hub/cast-get?subscriber=SLOW');
my $m = next_msg($ws);
ok($m, 'asked');
my ($code, $r, $secs) = req_end($q, 10);
is($code, 200, 'status 200');
is_deeply($r->{response}, { error => 'Timeout waiting for response' }, 'the timeout response');
ok($secs >= 4.9 && $secs < 7, "after 5 s ($secs)");
$ws->send_json({ id => 'late', event => { 'hub.event' => 'get-response',
                 context => { requestId => $m->{event}{context}{requestId} } } });
Time::HiRes::sleep(0.3);
ok(!$ws->is_closed, 'a late answer: the socket stays');
--- error_log
which no one waits for here



=== TEST 9: the worker is not held: while requests wait, other requests are served at once
--- config
--- init
package main;
my $req = app(name => 'REQ', topic => 'U9');
my $a = app(name => 'A', topic => 'U9', events => 'status-request');
my @h = map { req_start('POST', '/api/hub/request',
                        g2(from => 'REQ', topic => 'U9', context => { timeoutSeconds => 2 })) } 1 .. 5;
my $t0 = Time::HiRes::time();
my ($code) = http_request('GET', '/cast/status');
my $dt = Time::HiRes::time() - $t0;
is($code, 200, 'status while 5 requests wait');
ok($dt < 0.5, "answered at once ($dt s)");
my ($c2, $h2, $b2) = http_request('GET', '/api/hub/cast-get?subscriber=NOBODY');
is($c2, 200, 'cast-get answered meanwhile');
my @codes = map { (req_end($_))[0] } @h;
is(join(',', @codes), '200,200,200,200,200', 'the five end with 200');



=== TEST 10: a client that goes away releases its request: logged, the id is free again
--- config
--- init
package main;
my $req = app(name => 'REQ', topic => 'U10');
my $a = app(name => 'A', topic => 'U10', events => 'status-request');
my $h = req_start('POST', '/api/hub/request',
                  g2(from => 'REQ', topic => 'U10', id => 'r10', context => { timeoutSeconds => 30 }));
ok(next_msg($a), 'asked');
close $h->{c}{sock};
Time::HiRes::sleep(0.3);
$h = req_start('POST', '/api/hub/request',
               g2(from => 'REQ', topic => 'U10', id => 'r10', context => { timeoutSeconds => 5 }));
my $m = next_msg($a);
ok($m, 'the same id again: asked');
respond($a, $m);
my ($code, $r) = req_end($h);
is($code, 200, 'the same id again: 200 (the first was released)');
is($r->{ok}, JSON::PP::true, 'ok');
# G1 too
my $q = req_start('GET', '/api/hub/cast-get?subscriber=A');
ok(next_msg($a), 'cast-get asked');
close $q->{c}{sock};
Time::HiRes::sleep(0.3);
my ($c) = http_request('GET', '/cast/status');
is($c, 200, 'the worker is fine');
--- error_log
the client went while its request "r10" waited
--- no_error_log
[alert]
[crit]
[emerg]
signal
a request with the id



=== TEST 11: two requests with one id at once: 409 for the second (on one worker)
--- config
--- init
package main;
my $req = app(name => 'REQ', topic => 'U11');
my $a = app(name => 'A', topic => 'U11', events => 'status-request');
my $by = CastCluster::ka_spread(server_port(), nw(), 2);
my ($pid) = keys %$by;
my ($k1, $k2) = @{ $by->{$pid} };
my $h1 = req_start('POST', '/api/hub/request',
                   g2(from => 'REQ', topic => 'U11', id => 'same', context => { timeoutSeconds => 3 }),
                   ka => $k1);
ok(next_msg($a), 'the first is asked');
my ($code, $r) = ask(g2(from => 'REQ', topic => 'U11', id => 'same'), ka => $k2);
is($code, 409, 'the second: 409');
like($r->{error}, qr/waits already/, 'why');
($code) = req_end($h1);
is($code, 200, 'the first ends as usual');



=== TEST 12: cast_max_requests: past it, 503 with Retry-After; room again once they end
--- http_config
    cast_max_requests 2;
--- config
--- init
package main;
my $req = app(name => 'REQ', topic => 'U12');
my $a = app(name => 'A', topic => 'U12', events => 'status-request');
my $by = CastCluster::ka_spread(server_port(), nw(), 3);
my ($pid) = grep { @{ $by->{$_} } >= 3 } keys %$by;
my ($k1, $k2, $k3) = @{ $by->{$pid} };
my @h = map { req_start('POST', '/api/hub/request',
                        g2(from => 'REQ', topic => 'U12', context => { timeoutSeconds => 2 }),
                        ka => $_) } $k1, $k2;
next_msg($a) for 1 .. 2;
my $h3 = req_start('POST', '/api/hub/request', g2(from => 'REQ', topic => 'U12'), ka => $k3);
my ($code, $r) = req_end($h3);
is($code, 503, 'the third on that worker: 503');
like($r->{error}, qr/cast_max_requests/, 'why');
is(join(',', map { (req_end($_))[0] } @h), '200,200', 'the two end with 200');
($code, $r) = req_end(req_start('POST', '/api/hub/request',
                                g2(from => 'REQ', topic => 'U12', context => { timeoutSeconds => 0.3 }),
                                ka => $k3));
is($code, 200, 'then one more is taken');
--- error_log
the cast_max_requests limit



=== TEST 13: many requests at once, every one answered (both workers in Redis mode)
--- config
--- init
package main;
my $req = app(name => 'REQ', topic => 'U13');
my @apps = map { app(name => "APP$_", topic => 'U13', events => 'status-request') } 1 .. 4;
my @h = map { req_start('POST', '/api/hub/request',
                        g2(from => 'REQ', topic => 'U13', id => "m$_",
                           context => { timeoutSeconds => 10 })) } 1 .. 40;
# each app answers every request it gets
my $answered = 0;
for my $ws (@apps) {
    for (1 .. 40) {
        my $m = next_msg($ws) or last;
        respond($ws, $m);
        $answered++;
    }
}
is($answered, 160, 'every app got every request');
my ($ok, $n) = (0, 0);
for my $h (@h) {
    my ($code, $r) = req_end($h, 15);
    $ok++ if $code eq '200' && $r->{ok} && @{ $r->{responses} } == 4;
    $n++;
}
is($ok, 40, 'forty replies with four responses each');



=== TEST 14: Redis mode: the target's socket on one worker, the waiting request on the other (G2 and G1), both ways
--- config
--- init
package main;
my $nw = nw();
my $by = CastCluster::ka_spread(server_port(), $nw, 4);
my @pids = sort keys %$by;
is(scalar @pids, $nw, "$nw worker(s) hold connections");
my ($p1, $p2) = ($pids[0], $pids[-1]);
my $req = app(name => 'REQ', topic => 'U14', ka => $by->{$p1}[0]);
my $t1 = app(name => 'T1', topic => 'U14', events => 'status-request', ka => $by->{$p1}[1]);
my $t2 = app(name => 'T2', topic => 'U14', events => 'status-request', ka => $by->{$p2}[3]);
isnt($p1, $p2, 'the targets are on two workers') if cast_mode() eq 'redis';
for my $via ($p1, $p2) {
    my $h = req_start('POST', '/api/hub/request',
                      g2(from => 'REQ', topic => 'U14', context => { timeoutSeconds => 5 }),
                      ka => $by->{$via}[2]);
    my $m1 = next_msg($t1);
    my $m2 = next_msg($t2);
    ok($m1 && $m2, "request via worker $via: both targets asked");
    respond($t1, $m1);
    respond($t2, $m2);
    my ($code, $r, $secs) = req_end($h);
    is($code, 200, "via $via: 200");
    is($r->{ok}, JSON::PP::true, "via $via: ok") or Test::More::diag(Test::More::explain($r));
    is(names([sort map { $_->{subscriber} } @{ $r->{responses} }]), 'T1,T2',
       "via $via: both answers, one from another worker");
    ok($secs < 2, "via $via: as soon as both answered ($secs s)");
    # G1 to the target on the other worker
    my $other = $via eq $p1 ? $t2 : $t1;
    $h = req_start('GET', "/api/hub/cast-get?subscriber=$other->{name}&dataType=X",
                   undef, ka => $by->{$via}[2]);
    my $m = next_msg($other);
    ok($m, "cast-get via $via: asked");
    $other->send_json({ id => 'g', event => { 'hub.event' => 'get-response',
                        context => { requestId => $m->{event}{context}{requestId}, data => 7 } } });
    ($code, $r) = req_end($h);
    is($r->{response}{event}{context}{data}, 7, "cast-get via $via: the answer came back");
}
is_deeply(quiet($req, 0.3), [], 'no response was broadcast');



=== TEST 15: Redis mode: two hosts on one Redis: targets and requesters on either host (G2 and G1)
--- config
--- init
package main;
SKIP: {
Test::More::skip('two hosts share a hub in Redis mode only', 1) if cast_mode() ne 'redis';
$ENV{TEST_NGINX_SERVROOT} ||= server_root();
my $b = CastCluster::Nginx->new(
    port => server_port() + 1,
    prefix => $ENV{TEST_NGINX_SERVROOT} . '2',
    workers => 2,
    http_config => "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_CAST_REDIS_PORT};\n",
    config => $main::Locations)->start;
for my $kind ('command', 'pubsub') {
    CastRedis::wait_for_log($b->error_log, qr/cast: redis $kind connection to \S+ ready/, 2, 10) >= 2
        or die "host B: its $kind connections are not ready\n";
}
my ($pa, $pb) = (server_port(), $b->port);
my $ra = app(name => 'REQ-A', topic => 'H15', port => $pa);
my $rb = app(name => 'REQ-B', topic => 'H15', port => $pb);
my $ta = app(name => 'T-A', topic => 'H15', events => 'status-request', port => $pa);
my $tb = app(name => 'T-B', topic => 'H15', events => 'status-request', port => $pb);
for my $c (['REQ-A', $pa, 'A'], ['REQ-B', $pb, 'B'], ['REQ-B', $pa, 'A for a requester on B']) {
    my ($from, $port, $what) = @$c;
    my $h = req_start('POST', '/api/hub/request',
                      g2(from => $from, topic => 'H15', context => { timeoutSeconds => 5 }),
                      port => $port);
    my %got;
    for my $t ($ta, $tb, $from eq 'REQ-A' ? $rb : $ra) {
        my $m = next_msg($t, 3);
        $got{$t->{name}} = $m;
        respond($t, $m) if $m;
    }
    my ($code, $r, $secs) = req_end($h);
    is($code, 200, "asked on $what: 200");
    is($r->{ok}, JSON::PP::true, "asked on $what: ok") or Test::More::diag(Test::More::explain($r));
    my $other = $from eq 'REQ-A' ? 'REQ-B' : 'REQ-A';
    is(names([sort map { $_->{subscriber} } @{ $r->{responses} }]),
       join(',', sort($other, 'T-A', 'T-B')), "asked on $what: every host answered");
    ok($secs < 2.5, "asked on $what: at once ($secs s)");
}
for my $c ([$pa, $tb, 'A asks B'], [$pb, $ta, 'B asks A']) {
    my ($port, $t, $what) = @$c;
    my $h = req_start('GET', "/api/hub/cast-get?subscriber=$t->{name}&topic=H15", undef,
                      port => $port);
    my $m = next_msg($t);
    ok($m, "cast-get, $what: asked");
    $t->send_json({ id => 'g', event => { 'hub.event' => 'get-response', 'hub.topic' => 'H15',
                    context => { requestId => $m->{event}{context}{requestId}, data => $what } } });
    my ($code, $r) = req_end($h);
    is($r->{response}{event}{context}{data}, $what, "cast-get, $what: answered");
    is($r->{connected}, JSON::PP::true, "cast-get, $what: connected");
}
my @bad = CastCluster::log_grep($b->error_log, qr/\[alert\]|\[crit\]|signal/);
is(join('', @bad), '', 'host B: no [alert], [crit] or signal');
$_->close for $ra, $rb, $ta, $tb;
$b->stop;
}



=== TEST 16: only a socket the request was sent to answers it; a body past cast_max_message_size is 413
--- config
    cast_max_message_size 2k;
--- init
package main;
my $req = app(name => 'REQ', topic => 'U16');
my $a = app(name => 'A', topic => 'U16', events => 'status-request');
my $x = app(name => 'X', topic => 'U16', events => 'patient-open');
my $h = req_start('POST', '/api/hub/request',
                  g2(from => 'REQ', topic => 'U16', id => 'r16', context => { timeoutSeconds => 3 }));
my $m = next_msg($a);
ok($m, 'A asked');
respond($x, $m, id => 'from-x');     # X was not asked
respond($req, $m, id => 'from-req'); # nor the requester
Time::HiRes::sleep(0.3);
respond($a, $m, id => 'from-a');
my ($code, $r, $secs) = req_end($h);
is($r->{ok}, JSON::PP::true, 'ok');
is(join(',', map { $_->{id} } @{ $r->{responses} }), 'from-a', 'only A\'s answer');
ok($secs < 2, "as soon as A answered ($secs s)");
($code, $r) = ask(g2(from => 'REQ', topic => 'U16', context => { pad => 'x' x 3000 }));
is($code, 413, 'a body past cast_max_message_size: 413');
like($r->{error}, qr/cast_max_message_size/, 'why');
--- error_log
not sent to this socket



=== TEST 17: cast_auth: a request names its token's topic and needs the event's write scope; cast-get the token's topic and a read scope
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
my $rw = 'fhircast/*.read fhircast/*.write';
my $body = json_encode({ 'subscriber.name' => 'REQ', id => 'auth-1',
                         event => { 'hub.event' => 'status-request', 'hub.topic' => 'T',
                                    context => { timeoutSeconds => 1 } } });
my @json = ('Content-Type' => 'application/json');
my ($c, undef, $b) = http_request('POST', '/secure/api/hub/request', $body, @json);
is($c, 401, 'request without a token: 401');
($c) = http_request('POST', '/secure/api/hub/request', $body, @json, bearer('U', $rw));
is($c, 403, "request with another topic's token: 403");
($c) = http_request('POST', '/secure/api/hub/request', $body, @json, bearer('T', 'fhircast/*.read'));
is($c, 403, 'request without the write scope: 403');
($c, undef, $b) = http_request('POST', '/secure/api/hub/request', $body, @json, bearer('T', $rw));
is($c, 200, "request with its topic's token: 200");
my $d = eval { json_decode($b) } || {};
is($d->{id}, 'auth-1', '... the reply for it');
($c) = http_request('GET', '/secure/api/hub/cast-get?subscriber=X&topic=T');
is($c, 401, 'cast-get without a token: 401');
($c) = http_request('GET', '/secure/api/hub/cast-get?subscriber=X&topic=U', undef, bearer('T', $rw));
is($c, 403, "cast-get naming another topic: 403");
($c, undef, $b) = http_request('GET', '/secure/api/hub/cast-get?subscriber=X&topic=T', undef, bearer('T', 'fhircast/*.read'));
is($c, 200, "cast-get with its topic's token and a read scope: 200");
--- error_code: 200

