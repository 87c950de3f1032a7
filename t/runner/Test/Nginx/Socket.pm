package Test::Nginx::Socket;

# ===========================================================================
# ngx_http_cast_module's own Test::Nginx::Socket-compatible test runner.
#
# The project's t/*.t files must run unchanged both under this runner
#     prove -I t/runner -r t/
# and under OpenResty's real Test::Nginx (CPAN Test-Nginx 0.3x)
#     prove -r t/            # with Test::Nginx installed
# This is an independent implementation of the documented format (a
# Test::Base subclass: "=== TEST n: title" blocks, "--- section" values
# with Test::Base filters such as eval/chomp/chop).  Only the subset the
# project uses is implemented; see "Supported" below.
#
# ---------------------------------------------------------------------------
# PATTERN: must_die + error_log (configuration error tests)
# ---------------------------------------------------------------------------
#
#   === TEST 7: cast_hub needs an argument
#   --- config
#       location = /hub { cast_hub; }
#   --- must_die
#   --- error_log
#   invalid number of arguments in "cast_hub" directive
#
# Semantics (same as the real Test::Nginx): nginx is started with the
# block's config; "--- must_die" passes when the start command exits
# non-zero ("--- must_die: 1" compares the exit code instead).  No request
# is sent, so "--- request" is optional and response sections are
# ignored.  Then "--- error_log"/"--- no_error_log"/"--- grep_error_log"
# are checked against t/servroot/logs/error.log (plain strings are
# substring matches; use "--- error_log eval" with qr/.../ for regexes).
# Write the message text WITHOUT the "[emerg]" prefix or the
# "in .../nginx.conf:NN" suffix (line numbers differ between runners).
# Each must_die block produces 1 + (number of error_log/no_error_log
# patterns) assertions.  As in the real one, a "WARNING: ... [emerg] ..."
# line is printed to stderr unless some pattern contains "[emerg"; that is
# expected noise.
#
# Why error.log sees the [emerg]: configuration-parse errors are logged to
# nginx's *startup* log, which is <prefix>/logs/error.log for a default
# build but STDERR for Debian's nginx (--error-log-path=stderr).  This
# runner passes "-e <servroot>/logs/error.log" (nginx >= 1.19.5; older
# stderr-logging builds get their stderr appended to error.log), so the
# pattern works with any nginx.  Under the REAL Test::Nginx with a
# stderr-logging build (Debian/Ubuntu packages) point TEST_NGINX_BINARY at
# the wrapper shipped here, which adds the same "-e logs/error.log":
#     TEST_NGINX_BINARY=$PWD/t/runner/nginx-errlog prove -r t/
# (NGINX_REAL_BINARY selects the nginx it runs; default: nginx in PATH,
# then /usr/sbin/nginx).  Self-built/OpenResty nginx needs nothing.
#
# ---------------------------------------------------------------------------
# Supported
# ---------------------------------------------------------------------------
# Functions (exported): run_tests plan blocks repeat_each no_shuffle
#   no_long_string master_on master_off master_process_enabled workers
#   worker_connections log_level no_root_location add_block_preprocessor
#   add_cleanup_handler add_response_body_check env_to_nginx server_port
#   server_port_for_client server_root html_dir server_addr server_name
#   timeout bail_out config_preamble check_accum_error_log is_str
#   + everything Test::Base exports (is isnt like unlike ok pass fail diag
#   is_deeply skip ... ).  Like the real module, the variables $ServerPort,
#   $ServRoot, $ServerAddr ... are NOT exported to test files: use
#   server_port()/server_root()/html_dir() or $Test::Nginx::Util::ServerPort.
# Sections: config http_config main_config post_main_config server_name
#   request (string, "eval" string, array ref = several requests each on
#   its own connection, [[packet, {value=>..., delay_before=>s}]] packets)
#   raw_request (string or array of packets) raw_request_middle_delay
#   pipelined_requests more_headers (string or array) error_code
#   error_code_like response_body response_body_like response_body_unlike
#   response_body_filters response_headers ("!Name" = absent)
#   response_headers_like raw_response_headers_like/unlike error_log
#   no_error_log grep_error_log grep_error_log_out access_log
#   no_access_log timeout (e.g. 1.5, 50ms) abort shutdown wait init
#   must_die log_level user_files skip_eval skip_nginx todo ignore_response
#   server_addr_for_client; Test::Base meta sections ONLY SKIP LAST.
# Env: TEST_NGINX_BINARY (default nginx in PATH, else /usr/sbin/nginx)
#   TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT (1984) TEST_NGINX_CLIENT_PORT
#   TEST_NGINX_SERVROOT (t/servroot) TEST_NGINX_LOAD_MODULES (space
#   separated .so paths -> load_module lines at the top of nginx.conf)
#   TEST_NGINX_LOG_LEVEL (debug) TEST_NGINX_NO_SHUFFLE TEST_NGINX_TIMEOUT (3)
#   TEST_NGINX_USE_VALGRIND TEST_NGINX_VERBOSE TEST_NGINX_MASTER_PROCESS
#   TEST_NGINX_CHECK_ACCUM_ERR_LOG TEST_NGINX_NO_CLEAN TEST_NGINX_SLEEP.
#   $TEST_NGINX_* in config/http_config/main_config/user_files are replaced
#   by the environment values (a missing one bails out, like the real one).
#   TEST_NGINX_SERVER_PORT is always set by run_tests(); this runner also
#   defaults TEST_NGINX_HTML_DIR and TEST_NGINX_SERVROOT, the real one
#   does NOT (t/lib/CastTest.pm sets all three for tests that load it).
#
# Client behaviour (as in the real one): "Host: localhost" and
# "Connection: close" are added unless given in more_headers; a request
# body gets its leading/trailing whitespace trimmed and a Content-Length
# (unless more_headers has Content-Length or chunked Transfer-Encoding).
# The response is read until the server closes the connection.  The
# timeout applies between two I/O events; when it expires the socket is
# closed, what was read so far is used as the response AND an extra
# failing assertion "ERROR: client socket timed out - ..." is emitted,
# unless the block has "--- abort".  For "101 Switching Protocols"
# everything after the header block is the body (chunked/Content-Length
# decoding is skipped), so a WebSocket test either makes the server close
# the connection (send a close frame) or uses "--- abort" with a short
# "--- timeout".  With no error_code section the status must be 200.
#
# Differences from the real one: nginx listens on 127.0.0.1 only; temp
# paths are kept inside the server root; nginx.conf line numbers differ;
# worker_connections defaults to 1024; a failed nginx start fails the block
# (with stderr/error.log as diagnostics) instead of bailing out the whole
# run; TEST_NGINX_USE_VALGRIND runs nginx in the foreground under valgrind
# (memcheck, --leak-check=full; valgrind.suppress at the repo root is used
# if present, plus t/runner/valgrind-nginx-core.suppress for nginx core's
# own one-off allocations), stops it after each block and FAILS the block
# (one extra failing assertion) on reported errors/definite leaks; the real
# one only prints valgrind's output.  A block without "--- config" reuses
# the previous block's running nginx (as in the real one), so give every
# block a "--- config" (it may be empty) since blocks run shuffled.
# Not supported: HUP reload mode, stap, check-leak/benchmark modes,
# http2/http3/curl, tcp_listen/udp_listen mock servers, shutdown_error_log.
# ===========================================================================

use v5.10.1;
use strict;
use warnings;

use Test::Base -base;

our $VERSION = '0.33_cast';

use Time::HiRes qw(sleep time);
use IO::Socket::INET ();
use POSIX qw(EAGAIN EINTR EWOULDBLOCK);
use List::Util qw(min);
use Digest::MD5 ();
use Digest::SHA ();
use HTTP::Response ();
use Test::LongString ();

use Test::Nginx::Util;

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections master_process_enabled
    no_long_string workers master_on master_off log_level no_shuffle
    no_root_location server_name server_addr server_root html_dir
    server_port server_port_for_client timeout check_accum_error_log
    add_block_preprocessor bail_out add_cleanup_handler
    add_response_body_check
);

our @ResponseBodyChecks;

$RunTestHelper = \&run_test_helper;
$CheckErrorLog = \&check_error_log;

sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}

sub run_test ($) {
    Test::Nginx::Util::run_test(shift);
}

sub tb_no_ending () {
    Test::More->builder->no_ending(1);
}

# ---------------------------------------------------------------------------
# building requests
# ---------------------------------------------------------------------------

sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $h (split /\n+/, $in) {
        next if $h =~ /^\s*#/;
        next if $h !~ /\S/;
        my ($k, $v) = split /:\s*/, $h, 2;
        $v = '' if !defined $v;
        $v =~ s/\r$//;
        $is_chunked = 1 if lc($k) eq 'transfer-encoding' && lc($v) eq 'chunked';
        $out .= "$k: $v\r\n";
    }
    return ($out, $is_chunked);
}

# A request spec is "METHOD [URI [VERSION]]\n[body]".  $packets is the
# spec split into the pieces that are written separately.  Returns the
# list of wire packets.
sub build_request ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn, $packets) = @_;

    my @bits = map { ref $_ ? $_ : { value => $_ } } @$packets;
    my $spec = join '', map { $_->{value} } @bits;

    if ($spec !~ /\A([^\n]*)(?:\n(.*))?\z/s) {
        Test::Nginx::Util::bail_out("$name - cannot parse the request");
    }
    my ($first, $content) = ($1, $2);
    my $first_len = length($first) + (defined $content ? 1 : 0);
    if ($first !~ /^\s*(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?\s*$/) {
        Test::Nginx::Util::bail_out("$name - Request line is not valid. Should be "
            . "'meth [url [version]]' but got \"$first\".");
    }
    my ($meth, $uri, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    $content = '' if !defined $content;

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/i)
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = 'Content-Length: ' . length($content) . "\r\n";
    }

    my $headers = '';
    $headers .= "Host: $ServerName\r\n" if $more_headers !~ /(?:^|\n)Host:/i;
    $headers .= "Connection: $conn\r\n" if $more_headers !~ /(?:^|\n)Connection/i;
    $headers .= "$more_headers$len_header\r\n";

    my $head = "$meth $uri $ver\r\n$headers";

    if (@bits == 1) {
        return [{ %{ $bits[0] }, value => $head . $content }];
    }

    # keep the user's packet boundaries inside the body: the first packets
    # covering the request line are merged with the generated head
    my @out;
    my $consumed = 0;
    my $body_off = 0;   # offset into (possibly trimmed) $content
    my $orig_body_start = $first_len;
    my $orig_content = substr($spec, $orig_body_start);
    my $lead = 0;
    if ($len_header ne '') {
        ($lead) = $orig_content =~ /^(\s*)/;
        $lead = length $lead;
    }
    my $first_packet = 1;
    for my $b (@bits) {
        my $v = $b->{value};
        my $start = $consumed;
        my $end = $consumed + length $v;
        $consumed = $end;
        next if $end <= $orig_body_start && !($first_packet && $end == length $spec);
        my $from = $start < $orig_body_start ? 0 : $start - $orig_body_start;
        my $to = $end - $orig_body_start;
        $from -= $lead; $to -= $lead;
        $from = 0 if $from < 0;
        $to = length $content if $to > length $content;
        my $piece = $to > $from ? substr($content, $from, $to - $from) : '';
        if ($first_packet) {
            push @out, { %$b, value => $head . $piece };
            $first_packet = 0;
        } else {
            push @out, { %$b, value => $piece };
        }
    }
    push @out, { value => $head . $content } if !@out;
    return \@out;
}

sub headers_for ($$$) {
    my ($more_headers, $i, $name) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $h = $more_headers->[$i];
        if (!defined $h) {
            Test::Nginx::Util::bail_out("$name - --- more_headers lacks data for request $i");
        }
        return parse_more_headers($h);
    }
    return parse_more_headers($more_headers);
}

# returns a list of requests; each request is an array of packets
# ({value => ..., delay_before => ...})
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;
    my @reqs;

    if (defined(my $raw = $block->raw_request)) {
        if (ref $raw eq 'ARRAY') {
            push @reqs, [map { ref $_ ? $_ : { value => $_ } } @$raw];
        } else {
            push @reqs, [{ value => $raw }];
        }
        return \@reqs;
    }

    my $more_headers = $block->more_headers;
    $more_headers = '' if !defined $more_headers;

    if (defined(my $pl = $block->pipelined_requests)) {
        if (ref $pl ne 'ARRAY') {
            Test::Nginx::Util::bail_out("$name - invalid entries in --- pipelined_requests");
        }
        my $all = '';
        for my $i (0 .. $#$pl) {
            my ($hdr, $chunked) = headers_for($more_headers, $i, $name);
            my $conn = $i == $#$pl ? 'close' : 'keep-alive';
            my $r = build_request($name, $hdr, $chunked, $conn, [$pl->[$i]]);
            $all .= $r->[0]{value};
        }
        push @reqs, [{ value => $all }];
        return \@reqs;
    }

    my $request = $block->request;
    if (!defined $request) {
        Test::Nginx::Util::bail_out("$name - no --- request section (or an empty one)");
    }

    if (!ref $request) {
        1 while $request =~ s/^\s*#[^\n]+\s+|^\s+//s;
        if ($request eq '') {
            Test::Nginx::Util::bail_out("$name - Request line should be non-empty");
        }
        my ($hdr, $chunked) = headers_for($more_headers, 0, $name);
        push @reqs, build_request($name, $hdr, $chunked, 'close', [$request]);
        return \@reqs;
    }

    if (ref $request ne 'ARRAY') {
        Test::Nginx::Util::bail_out("$name - invalid --- request: MUST be string or array of requests");
    }

    my $i = 0;
    for my $one (@$request) {
        my ($hdr, $chunked) = headers_for($more_headers, $i, $name);
        if (!ref $one) {
            push @reqs, build_request($name, $hdr, $chunked, 'close', [$one]);
        } elsif (ref $one eq 'ARRAY') {
            for my $p (@$one) {
                if (ref $p && ref $p ne 'HASH') {
                    Test::Nginx::Util::bail_out("$name - Invalid syntax. $p should be a string or hash with value.");
                }
            }
            push @reqs, build_request($name, $hdr, $chunked, 'close', $one);
        } else {
            Test::Nginx::Util::bail_out("$name - Invalid syntax. $one should be a string or an array of packets.");
        }
        $i++;
    }
    return \@reqs;
}

# ---------------------------------------------------------------------------
# the socket client
# ---------------------------------------------------------------------------

sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;

    my $head_req = (join '', map { $_->{value} } @$packets) =~ /^\s*HEAD\s+/ ? 1 : 0;

    my $addr = $block->server_addr_for_client;
    $addr = $ServerAddr if !defined $addr;
    my $port = server_port_for_client();

    my $sock;
    my $deadline = time + ($Test::Nginx::Util::UseValgrind ? 30 : 5);
    while (1) {
        $sock = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port,
                                      Proto => 'tcp', Timeout => $timeout);
        last if $sock;
        my $err = $!;
        if (time > $deadline) {
            tb_no_ending();
            Test::More::fail("$name - Can't connect to $addr:$port: $err (aborted)");
            return ('', $head_req);
        }
        sleep 0.02;
    }

    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);
    $sock->autoflush(1);

    my @queue = @$packets;
    my $cur = shift @queue;
    my $buf = defined $cur ? $cur->{value} : undef;
    if (defined $cur && $cur->{delay_before}) {
        sleep $cur->{delay_before};
    }
    my $off = 0;
    my $writing = defined $buf;
    my $resp = '';
    my $fd = fileno $sock;

    while (1) {
        my $rin = '';
        vec($rin, $fd, 1) = 1;
        my $win = $writing ? $rin : undef;
        my ($rout, $wout) = ($rin, $win);
        my $n = select($rout, $wout, undef, $timeout);
        if (!defined $n || $n < 0) {
            next if $! == EINTR;
            warn "WARNING: $name - select() failed: $!\n";
            last;
        }
        if ($n == 0) {
            close $sock;
            undef $sock;
            if (!defined $block->abort) {
                tb_no_ending();
                Test::More::fail("ERROR: client socket timed out - $name\n");
            } else {
                sleep 0.005;
            }
            last;
        }

        if ($writing && vec($wout, $fd, 1)) {
            while ($writing) {
                my $rest = length($buf) - $off;
                if ($rest > 0) {
                    my $w = syswrite($sock, $buf, $rest, $off);
                    if (!defined $w) {
                        last if $! == EAGAIN || $! == EWOULDBLOCK;
                        warn "WARNING: $name - write failed: $!\n";
                        $writing = 0;
                        last;
                    }
                    $off += $w;
                    next;
                }
                my $next = shift @queue;
                if (!defined $next) {
                    $writing = 0;
                    my $shutdown = $block->shutdown;
                    if (defined $shutdown) {
                        $shutdown = 1 if $shutdown !~ /\S/;
                        shutdown($sock, $shutdown);
                    }
                    last;
                }
                my $delay = defined $next->{delay_before}
                            ? $next->{delay_before} : $middle_delay;
                sleep $delay if $delay;
                ($buf, $off) = ($next->{value}, 0);
            }
        }

        if (vec($rout, $fd, 1)) {
            my $r = sysread($sock, my $chunk, 65536);
            if (!defined $r) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                warn "WARNING: $name - HTTP response read failure: $!\n"
                    if !$!{ECONNRESET} || $resp eq '';
                last;
            }
            last if $r == 0;
            $resp .= $chunk;
        }
    }

    close $sock if $sock;
    return ($resp, $head_req);
}

# ---------------------------------------------------------------------------
# response parsing
# ---------------------------------------------------------------------------

sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;
    my $left;

    my $raw_headers = '';
    if ($raw =~ /(.*?\r\n)\r\n/s) {
        $raw_headers = $1;
    }

    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        $res->code(undef);
        $code = undef;
    }

    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $enc && lc $enc eq 'chunked') {
        my $body = $res->content;
        $body = '' if !defined $body;
        my $decoded = '';
        my $pos = 0;
        while (1) {
            if (substr($body, $pos) =~ /\A0[ \t]*(?:;[^\r\n]*)?\r\n((?:[^\r\n]+\r\n)*)\r\n/) {
                my $after = $pos + length($&);
                $left = substr($body, $after) if $after < length $body;
                last;
            }
            if (substr($body, $pos) =~ /\A[ \t]*([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r\n/) {
                my $size = hex $1;
                $pos += length $&;
                if (length($body) - $pos < $size) {
                    tb_no_ending();
                    Test::More::fail("$name - invalid chunked data received "
                                     . "(not enough octets for the data section)");
                    return;
                }
                $decoded .= substr($body, $pos, $size);
                $pos += $size;
                if (substr($body, $pos, 2) ne "\r\n") {
                    tb_no_ending();
                    Test::More::fail("$name - invalid chunked data received (expected CRLF).");
                    return;
                }
                $pos += 2;
                next;
            }
            tb_no_ending();
            if ($pos < length $body) {
                Test::More::fail("$name - invalid chunked body received: "
                                 . substr($body, $pos));
            } else {
                Test::More::fail("$name - no last chunk found - $body");
            }
            return;
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\s*(\d+)\s*$/) {
        $len = $1;
        my $body = $res->content;
        $body = '' if !defined $body;
        if ($head_req) {
            $left = $body if length $body;
            $res->content('');
        } elsif (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, but got ",
                 length $body, "\n";
        } elsif (length $body > $len) {
            $left = substr($body, $len);
            $res->content(substr($body, 0, $len));
        }
    }

    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------------
# per-block request cycle
# ---------------------------------------------------------------------------

sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    if ($need_array) {
        if (ref $value && ref $value eq 'ARRAY') {
            return $value->[$req_idx];
        }
        Test::Nginx::Util::bail_out("$name - You asked for many requests, the expected "
                                    . "results should be arrays as well.");
    }
    if (ref $value && ref $value eq 'ARRAY') {
        return $value->[0];
    }
    return $value;
}

sub run_test_helper ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    if (!@$reqs) {
        Test::Nginx::Util::bail_out("$name - request empty");
    }

    my $timeout = parse_time($block->timeout);
    $timeout = timeout() if !defined $timeout;

    my ($res, $n, $need_array);
    my $req_idx = 0;

    for my $one (@$reqs) {
        my ($raw, $head_req) = send_request($one, $block->raw_request_middle_delay,
                                            $timeout, $block);
        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }

      again:
        vwarn("!!! resp: [$raw]\n");
        $raw = '' if !defined $raw;
        my ($raw_headers, $left);

        if (!defined $block->ignore_response) {
            ($res, $raw_headers, $left) = parse_response($name, $raw, $head_req);
        }

        if (!$n) {
            if (defined $left && length $left) {
                (my $l = $left) =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after last chunk in ",
                     "response: \"$l\"\n";
            }
        } else {
            $raw = $left;
            $n--;
        }

        if (!defined $block->ignore_response) {
            check_error_code($block, $res, $dry_run, $req_idx, $need_array);
            check_raw_response_headers($block, $raw_headers, $dry_run, $req_idx, $need_array);
            check_response_headers($block, $res, $raw_headers, $dry_run, $req_idx, $need_array);
            transform_response_body($block, $res, $req_idx);
            check_response_body($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array);
        }

        if ($n || $req_idx < @$reqs - 1) {
            sleep $block->wait if $block->wait;
            check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
            check_access_log($block, $dry_run, $repeated_req_idx)
                if !defined $block->ignore_response;
        }

        $req_idx++;
        goto again if $n;
    }

    sleep $block->wait if $block->wait;

    check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
    check_access_log($block, $dry_run, $repeated_req_idx)
        if !defined $block->ignore_response;
}

sub vwarn { warn @_ if $Test::Nginx::Util::Verbose }

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';
    SKIP: {
        Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
        if (defined $block->error_code_like) {
            my $pat = get_indexed_value($name, $block->error_code_like, $req_idx, $need_array);
            Test::More::like($got, qr/$pat/sm, "$name - status code ok");
        } elsif (defined $block->error_code) {
            Test::More::is($got,
                           get_indexed_value($name, $block->error_code, $req_idx, $need_array),
                           "$name - status code ok");
        } else {
            Test::More::is($got, 200, "$name - status code ok");
        }
    }
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers = '' if !defined $raw_headers;
    if (defined $block->raw_response_headers_like) {
        SKIP: {
            Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
            my $pat = get_indexed_value($name, $block->raw_response_headers_like,
                                        $req_idx, $need_array);
            Test::More::like($raw_headers, qr/$pat/s, "$name - raw resp headers like");
        }
    }
    if (defined $block->raw_response_headers_unlike) {
        SKIP: {
            Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
            my $pat = get_indexed_value($name, $block->raw_response_headers_unlike,
                                        $req_idx, $need_array);
            Test::More::unlike($raw_headers, qr/$pat/s, "$name - raw resp headers unlike");
        }
    }
}

sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers = '' if !defined $raw_headers;

    if (defined $block->response_headers) {
        my $pairs = parse_headers(get_indexed_value($name, $block->response_headers,
                                                    $req_idx, $need_array));
        for my $p (@$pairs) {
            my ($key, $val) = @$p;
            SKIP: {
                Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
                if (!defined $val) {
                    Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                                       "$name - header $key not present in the raw headers");
                } else {
                    $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
                    $val =~ s/\$ServerPort\b/$ServerPort/g;
                    my $actual = $res ? $res->header($key) : undef;
                    $actual = '' if !defined $actual;
                    Test::More::is($actual, $val, "$name - header $key ok");
                }
            }
        }
    } elsif (defined $block->response_headers_like) {
        my $pairs = parse_headers(get_indexed_value($name, $block->response_headers_like,
                                                    $req_idx, $need_array));
        for my $p (@$pairs) {
            my ($key, $val) = @$p;
            $val = '' if !defined $val;
            my $actual = $res ? $res->header($key) : undef;
            $actual = '' if !defined $actual;
            SKIP: {
                Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
                Test::More::like($actual, qr/^$val$/, "$name - header $key like ok");
            }
        }
    }
}

sub run_filter_helper ($$$) {
    my ($block, $filter, $content) = @_;
    my $name = $block->name;
    if (ref $filter && ref $filter eq 'CODE') {
        return $filter->($content);
    }
    if (ref $filter) {
        Test::Nginx::Util::bail_out("$name - the --- response_body_filters section only "
                                    . "supports subroutine reference values and string values");
    }
    my %builtin = (
        md5_hex  => sub { Digest::MD5::md5_hex($_[0]) },
        sha1_hex => sub { Digest::SHA::sha1_hex($_[0]) },
        uc       => sub { uc $_[0] },
        lc       => sub { lc $_[0] },
        ucfirst  => sub { ucfirst $_[0] },
        lcfirst  => sub { lcfirst $_[0] },
        length   => sub { length $_[0] },
    );
    my $f = $builtin{$filter}
        or Test::Nginx::Util::bail_out("$name - unknown filter, \"$filter\", specified "
                                       . "in the --- response_body_filters section");
    return $f->($content);
}

sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;
    return if !defined $res;
    my $content = $res->content;
    return if !defined $content;

    my $filters = $block->response_body_filters;
    return if !defined $filters;
    my $name = $block->name;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }

    my $filter = $filters;
    if (@$filters && ref $filters->[0] eq 'ARRAY') {
        for my $e (@$filters) {
            if (ref $e ne 'ARRAY') {
                Test::Nginx::Util::bail_out("$name - the --- response_body_filters two-dimensional "
                                            . "array can only be like [[uc], [lc]]");
            }
        }
        $filter = $filters->[$req_idx];
        if (!defined $filter) {
            Test::Nginx::Util::bail_out("$name - the --- response_body_filters two-dimensional "
                                        . "array does not match the request ($req_idx)");
        }
    }

    my $new = $content;
    for my $f (@$filter) {
        $new = run_filter_helper($block, $f, $new);
    }
    $res->content($new);
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_body) {
        my $content = $res ? $res->content : undef;
        my $expected = get_indexed_value($name, $block->response_body, $req_idx, $need_array);
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
        }
        SKIP: {
            Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
            my $desc = "$name - response_body - response is expected "
                       . "(repeated req $repeated_req_idx, req $req_idx)";
            if (ref $expected) {
                Test::More::like($content, $expected,
                    "$name - response_body - like (repeated req $repeated_req_idx, req $req_idx)");
            } elsif ($NoLongString) {
                Test::More::is($content, $expected, $desc);
            } else {
                Test::LongString::is_string($content, $expected, $desc);
            }
        }

    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my ($patterns, $type, $cmp) = defined $block->response_body_like
            ? ($block->response_body_like, 'like', \&Test::More::like)
            : ($block->response_body_unlike, 'unlike', \&Test::More::unlike);
        my $content = $res ? $res->content : undef;
        my $pat = get_indexed_value($name, $patterns, $req_idx, $need_array);
        $pat = '' if !defined $pat;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        my $summary = trim($content);
        $summary = '' if !defined $summary;
        SKIP: {
            Test::More::skip("$name - tests skipped due to $dry_run", 1) if $dry_run;
            $cmp->($content, qr/$pat/s,
                   "$name - response_body_$type - response is expected ($summary)");
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $res ? $res->content : undef, $req_idx, $repeated_req_idx, $dry_run);
    }
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub value_contains {
    my ($val, $pat) = @_;
    if (!ref $val || ref $val eq 'Regexp') {
        return $val =~ /\Q$pat\E/;
    }
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if value_contains($v, $pat);
        }
    }
    return undef;
}

sub to_patterns ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
}

# "must appear" / "must not appear" checks shared by error_log and access_log
sub check_log_patterns ($$$$$$$$) {
    my ($name, $what, $file, $pats, $negate, $lines, $dry_run, $repeated_req_idx) = @_;
    $pats = to_patterns($pats);
    my $tag = $negate ? "no_$what" : $what;

    if (!$negate) {
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next if !defined $pat;
                if (line_matches($line, $pat)) {
                    SKIP: {
                        Test::More::skip("$name - $tag - tests skipped due to $dry_run", 1) if $dry_run;
                        Test::More::pass("$name - pattern \"$pat\" matches a line in $file "
                                         . "(req $repeated_req_idx)");
                    }
                    undef $pat;
                }
            }
        }
        for my $pat (@$pats) {
            next if !defined $pat;
            SKIP: {
                Test::More::skip("$name - $tag - tests skipped due to $dry_run", 1) if $dry_run;
                Test::More::fail("$name - pattern \"$pat\" should match a line in $file "
                                 . "(req $repeated_req_idx)");
            }
        }
        return;
    }

    my %found;
    for my $i (0 .. $#$lines) {
        my $line = $lines->[$i];
        for my $pat (@$pats) {
            next if !defined $pat;
            next if !line_matches($line, $pat);
            if ($found{$pat}++) {
                tb_no_ending();
            }
            SKIP: {
                Test::More::skip("$name - $tag - tests skipped due to $dry_run", 1) if $dry_run;
                my ($ln, $p) = (fmt_str($line), fmt_str($pat));
                my @more = @$lines[$i + 1 .. min($i + 9, $#$lines)];
                Test::More::fail("$name - pattern \"$p\" should not match any line in $file "
                                 . "but matches line \"$ln\" (req $repeated_req_idx)\n"
                                 . join '', @more);
            }
        }
    }
    for my $pat (@$pats) {
        next if !defined $pat || $found{$pat};
        SKIP: {
            Test::More::skip("$name - $tag - tests skipped due to $dry_run", 1) if $dry_run;
            my $p = fmt_str($pat);
            Test::More::pass("$name - pattern \"$p\" does not match a line in $file "
                             . "(req $repeated_req_idx)");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;
    my $lines;
    if (defined $block->access_log) {
        $lines ||= access_log_data();
        check_log_patterns($name, 'access_log', 'access.log', $block->access_log, 0,
                           $lines, $dry_run, $repeated_req_idx);
    }
    if (defined $block->no_access_log) {
        $lines ||= access_log_data();
        check_log_patterns($name, 'access_log', 'access.log', $block->no_access_log, 1,
                           $lines, $dry_run, $repeated_req_idx);
    }
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $lines;

    my %warn_on = (alert => 1, crit => 1, emerg => 1);

    my $grep_pat;
    my $grep_pats = $block->grep_error_log;
    if (defined $grep_pats) {
        $grep_pat = ref $grep_pats eq 'ARRAY' ? $grep_pats->[$repeated_req_idx] : $grep_pats;
    } elsif (defined $block->grep_error_log_out) {
        Test::Nginx::Util::bail_out("$name - No --- grep_error_log defined but "
                                    . "--- grep_error_log_out is defined");
    }

    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        if (!defined $expected) {
            Test::Nginx::Util::bail_out("$name - No --- grep_error_log_out defined but "
                                        . "--- grep_error_log is defined");
        }
        $expected = $expected->[$repeated_req_idx] if ref $expected eq 'ARRAY';
        SKIP: {
            Test::More::skip("$name - error_log - tests skipped due to $dry_run", 1) if $dry_run;
            $lines ||= error_log_data();
            my $matched = '';
            for my $line (@$lines) {
                if (ref $grep_pat ? $line =~ /$grep_pat/ : $line =~ /\Q$grep_pat\E/) {
                    my $m = $&;
                    $matched .= "$m\n" if $m !~ /\n/;
                }
            }
            if (ref $expected eq 'Regexp') {
                Test::More::like($matched, $expected,
                                 "$name - grep_error_log_out (req $repeated_req_idx)");
            } else {
                is_str($matched, $expected, "$name - grep_error_log_out (req $repeated_req_idx)");
            }
        }
    }

    for my $sec (qw(error_log no_error_log)) {
        my $pats = $block->$sec;
        next if !defined $pats;
        for my $lvl (keys %warn_on) {
            delete $warn_on{$lvl} if value_contains($pats, "[$lvl");
        }
    }

    if (defined $block->error_log) {
        $lines ||= error_log_data();
        check_log_patterns($name, 'error_log', 'error.log', $block->error_log, 0,
                           $lines, $dry_run, $repeated_req_idx);
    }

    if (defined $block->no_error_log) {
        $lines ||= error_log_data();
        check_log_patterns($name, 'error_log', 'error.log', $block->no_error_log, 1,
                           $lines, $dry_run, $repeated_req_idx);
    }

    if (!$dry_run && %warn_on) {
        $lines ||= error_log_data();
        for my $line (@$lines) {
            for my $lvl (sort keys %warn_on) {
                if ($line =~ /\[$lvl\]/) {
                    warn "WARNING: $name - " . fmt_str($line) . "\n";
                }
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            tb_no_ending();
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

1;
