# Subscription lifetime: cast_bind_timeout for sockets that never bind, and
# lease expiry (SPEC 2.1), with short values.  These blocks sleep ~1.5 s.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);
use CastMode;
use Time::HiRes ();

our $HubConfig = <<'_EOC_';
    location /api/hub { cast_hub; cast_reset on; }
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $HubConfig) if !defined $block->config;
});

sub form_post {
    my ($path, $body) = @_;
    my ($code, undef, $resp) = CastTest::http_request('POST', $path, $body,
        'Content-Type' => 'application/x-www-form-urlencoded');
    return ($code, $resp);
}

sub subscribe {
    my ($form) = @_;
    my ($code, $resp) = form_post('/api/hub', "hub.mode=subscribe&$form");
    Test::More::is($code, 202, "010 init: subscribe ($form) answers 202");
    my $d = eval { CastTest::json_decode($resp) };
    return ref $d eq 'HASH' ? $d->{'hub.channel.endpoint'} : '';
}

sub status {
    my (undef, undef, $body) = CastTest::http_request('GET', '/cast/status');
    return eval { CastTest::json_decode($body) } || {};
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a subscription whose socket never binds ends after cast_bind_timeout
--- http_config
    cast_bind_timeout 500ms;
--- init
main::subscribe('hub.topic=lease-t1&hub.events=a');
Test::More::is(main::status()->{subscriptions}, 1, '010 init: one subscription before the bind timeout');
Time::HiRes::sleep(0.9);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "lease-t1" ended: no socket was bound in time/
--- no_error_log
lease expired
[alert]
[crit]
[emerg]
signal



=== TEST 2: before cast_bind_timeout the subscription is still there
--- http_config
    cast_bind_timeout 1s;
--- init
main::subscribe('hub.topic=lease-t2&hub.events=a');
Time::HiRes::sleep(0.4);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- no_error_log
ended:
[alert]
[crit]
[emerg]
signal



=== TEST 3: the bind timeout of each subscription runs on its own
--- http_config
    cast_bind_timeout 800ms;
--- init
main::subscribe('hub.topic=lease-t3&hub.events=a');
Time::HiRes::sleep(0.5);
main::subscribe('hub.topic=lease-t3&hub.events=b');
Time::HiRes::sleep(0.5);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- grep_error_log eval
qr/ended: no socket was bound in time/
--- grep_error_log_out
ended: no socket was bound in time
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: hub.lease_seconds=1: the subscription ends when the lease expires; its endpoint is unknown afterwards
--- http_config
    cast_bind_timeout 30s;
--- init
my $ep = main::subscribe('hub.topic=lease-t4&hub.events=a&hub.lease_seconds=1');
Time::HiRes::sleep(1.5);
my ($code) = main::form_post('/api/hub', "hub.mode=unsubscribe&hub.channel.endpoint=$ep");
Test::More::is($code, 404, '010 init: unsubscribe after expiry is 404');
($code) = main::form_post('/api/hub', "hub.mode=subscribe&hub.topic=lease-t4&hub.events=a&hub.channel.endpoint=$ep");
Test::More::is($code, 404, '010 init: re-subscribe after expiry is 404');
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- error_log eval
qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "lease-t4" ended: lease expired/
--- no_error_log
no socket was bound in time
[alert]
[crit]
[emerg]
signal



=== TEST 5: lease expiry seen with --- wait after the subscribe request
--- http_config
    cast_bind_timeout 30s;
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=lease-t5&hub.events=a&hub.lease=1
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- wait: 1.5
--- error_log
on topic "lease-t5" created for 1 s
on topic "lease-t5" ended: lease expired
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: cast_lease_default applies without a lease, cast_lease_max caps a long one; both expire
--- http_config
    cast_bind_timeout 30s;
    cast_lease_default 1s;
    cast_lease_max 1s;
--- init
main::subscribe('hub.topic=lease-t6&hub.events=a');
main::subscribe('hub.topic=lease-t6b&hub.events=a&hub.lease_seconds=3600');
Time::HiRes::sleep(1.5);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- error_log
on topic "lease-t6" created for 1 s
on topic "lease-t6b" created for 1 s
on topic "lease-t6" ended: lease expired
on topic "lease-t6b" ended: lease expired
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: a re-subscribe renews the lease
--- http_config
    cast_bind_timeout 30s;
--- init
my $ep = main::subscribe('hub.topic=lease-t7&hub.events=a&hub.lease_seconds=1');
Time::HiRes::sleep(0.7);
my ($code) = main::form_post('/api/hub', "hub.mode=subscribe&hub.topic=lease-t7&hub.events=a&hub.lease_seconds=2&hub.channel.endpoint=$ep");
Test::More::is($code, 202, '010 init: re-subscribe 202');
Time::HiRes::sleep(0.6);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":1,"topics":1,
--- error_log
on topic "lease-t7" renewed for 2 s
--- no_error_log
ended: lease expired
[alert]
[crit]
[emerg]
signal



=== TEST 8: unsubscribed and reset subscriptions do not fire their timers later
--- http_config
    cast_bind_timeout 500ms;
--- init
my $ep = main::subscribe('hub.topic=lease-t8&hub.events=a&hub.lease_seconds=1');
my ($code) = main::form_post('/api/hub', "hub.mode=unsubscribe&hub.channel.endpoint=$ep");
Test::More::is($code, 202, '010 init: unsubscribe 202');
main::subscribe('hub.topic=lease-t8b&hub.events=a&hub.lease_seconds=1');
main::subscribe('hub.topic=lease-t8c&hub.events=a&hub.lease_seconds=1');
($code) = CastTest::http_request('DELETE', '/api/hub');
Test::More::is($code, 200, '010 init: reset 200');
Time::HiRes::sleep(1.3);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,
--- error_log
on topic "lease-t8" ended: unsubscribed
on topic "lease-t8b" ended: reset
on topic "lease-t8c" ended: reset
--- no_error_log
lease expired
no socket was bound in time
[alert]
[crit]
[emerg]
signal
