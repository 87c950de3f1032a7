# The demo page (conf-examples/demo/) in a real browser: headless Chromium
# (Debian's chromium) driven over the DevTools protocol by t/demo_browser.py
# (/usr/bin/python3 with python3-websockets).  nginx serves the page from
# the repository, the hub, its sockets and the token endpoint; two pages log
# in (two topics), subscribe, page A starts a conference with B's topic,
# both publish, each must show the other's events, and after the end B no
# longer gets A's events.  Every step of the driver is one assertion here.
#
# Screenshots of both pages: build/artifacts/demo-<mode>-A.png and -B.png
# (outside t/servroot; <mode> is local or redis).  A missing chromium or
# websockets module fails the test (scripts/install-deps.sh installs both).
#
# Environment: TEST_NGINX_CHROMIUM_PORT, Chromium's remote-debugging port
# (default 0: Chromium picks a free one).  Runs unchanged under the real
# Test::Nginx 0.33.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request);
use CastMode;
use File::Spec ();
use File::Temp ();

no_shuffle();
repeat_each(1);

our $PY = '/usr/bin/python3';
our $DRIVER = File::Spec->rel2abs('t/demo_browser.py');
our $ARTIFACTS = File::Spec->rel2abs('build/artifacts');

# the page, served from the repository as conf-examples/local.conf does
$ENV{TEST_NGINX_DEMO_DIR} = File::Spec->rel2abs('conf-examples/demo');

# the token key: a fresh secret per run, outside t/servroot
our $KEYDIR = File::Temp::tempdir('cast-demo-key-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
{
    open my $in, '<:raw', '/dev/urandom' or die "/dev/urandom: $!\n";
    read($in, my $raw, 32) == 32 or die "/dev/urandom: short read\n";
    open my $out, '>', "$KEYDIR/oauth.key" or die "$KEYDIR/oauth.key: $!\n";
    print $out unpack('H*', $raw), "\n";
    close $out or die "$KEYDIR/oauth.key: $!\n";
    chmod 0600, "$KEYDIR/oauth.key";
}
$ENV{TEST_NGINX_OAUTH_KEY} = "$KEYDIR/oauth.key";

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# runs the driver and turns each of its lines into an assertion
sub run_browser {
    my $port = CastTest::server_port();
    my $slow = $ENV{TEST_NGINX_USE_VALGRIND} ? 4 : 1;
    my $mode = CastTest::cast_mode();

    for my $f (['/demo/', qr{^text/html}],
               ['/demo/demo.js', qr{javascript}],
               ['/demo/demo.css', qr{^text/css}])
    {
        my ($code, $h, $body) = http_request('GET', $f->[0]);
        is($code, 200, "GET $f->[0]: 200");
        like($h->{'content-type'} // '', $f->[1],
             "GET $f->[0]: Content-Type " . ($h->{'content-type'} // '-'));
        unlike($body, qr{(?:\b(?:src|href)\s*=\s*|\burl\(\s*|\@import\s+)
                         ["']?(?:https?:|wss?:)?//}xi,
               "GET $f->[0]: loads nothing from another host");
    }

    ok(-x $PY, "$PY exists");
    # coreutils timeout: SIGTERM (the driver then stops the browser), and
    # SIGKILL 10 s later if it is still there
    my $limit = 180 * $slow;
    my $cmd = "timeout -k 10 $limit $PY $DRIVER --port $port --slow $slow"
              . " --tag $mode --artifacts '$ARTIFACTS'";
    my $out = `$cmd 2>&1`;
    my $rc = $? >> 8;
    my @lines = split /\n/, $out;
    my $n = 0;
    for my $l (@lines) {
        if ($l =~ /^ok (.*)/) { pass("browser: $1"); $n++ }
        elsif ($l =~ /^not ok (.*)/) { fail("browser: $1"); $n++ }
    }
    ok($n >= 30, "browser: $n checks reported") or diag($out);
    is($lines[-1] // '', 'done', 'browser: the driver ran to the end')
        or diag($out);
    is($rc, 0, 'browser: driver exit status 0') or diag($out);
    ok(-s "$ARTIFACTS/demo-$mode-B.png",
       "screenshot $ARTIFACTS/demo-$mode-B.png kept");
}

run_tests();

__DATA__

=== TEST 1: demo page in headless Chromium: two users log in, subscribe, confer, publish, see each other's events
--- http_config
    client_max_body_size 16m;
--- config
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /oauth/token {
        cast_oauth      token;
        cast_oauth_key  $TEST_NGINX_OAUTH_KEY;
    }
    location /demo/ {
        alias $TEST_NGINX_DEMO_DIR/;
        types {
            text/html               html;
            text/css                css;
            application/javascript  js;
        }
    }
    location = /cast/status { cast_status; }
--- init
package main;
run_browser();
--- request
GET /demo/
--- response_body_like: <title>Cast hub demo</title>
--- timeout: 10
