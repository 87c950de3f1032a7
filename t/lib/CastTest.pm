package CastTest;

# Shared helpers for ngx_http_cast_module's tests: WebSocket frame
# encoding/decoding for Test::Nginx blocks, and a tiny blocking HTTP and
# WebSocket client for interactive scenarios (--- init, or plain Perl).
#
# Works under both the project's runner (prove -I t/runner) and the real
# Test::Nginx: only core Perl is used.
#
#   use Test::Nginx::Socket 'no_plan';
#   use lib 't/lib';
#   use CastTest;
#
# In "--- xxx eval" sections the code is compiled in package
# Test::Base::Filter; CastTest makes its exported functions visible there
# too, so both spellings work:
#
#   --- raw_request eval
#   ws_handshake('/ws') . ws_text('hi') . ws_close(1000)
#   --- response_body_filters eval
#   \&CastTest::ws_body_filter
#   --- response_body
#   text hi
#   close 1000
#
# ws_decode_frames() line formats: "text <payload>", "binary <len>",
# "ping <payload>", "pong <payload>", "close <code> <reason>" ("close
# <code>" with an empty reason, "close" without a code), "cont <payload>"
# (continuation), "opcode<N> <len>" (unknown opcode) and a final "partial"
# when incomplete bytes remain.  Flags are appended to the keyword when
# unusual: "(fin=0)", "(rsv=N)", "(masked)", e.g. "text(fin=0) hel".
#
# Loading CastTest after Test::Nginx::Socket also defaults the env vars
# TEST_NGINX_SERVER_PORT, TEST_NGINX_HTML_DIR and TEST_NGINX_SERVROOT (so
# $TEST_NGINX_HTML_DIR etc. work in config sections under both runners).

use strict;
use warnings;

use Exporter ();
use IO::Socket::INET ();
use IO::Select ();
use MIME::Base64 qw(encode_base64);
use Digest::SHA qw(sha1_base64);
use JSON::PP ();
use Time::HiRes qw(time sleep);
use POSIX qw(EAGAIN EINTR EWOULDBLOCK);

our @ISA = ('Exporter');
our @EXPORT = qw(
    ws_frame ws_text ws_binary ws_close ws_ping ws_pong ws_handshake
    ws_decode_frames ws_body_filter
);
our @EXPORT_OK = qw(http_request ws_accept_key server_port json_encode json_decode
                    ka_open ka_post cast_mode);

our $DefaultKey = 'dGhlIHNhbXBsZSBub25jZQ==';   # RFC 6455 sample nonce
our $WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

our %OPCODES = (cont => 0, continuation => 0, text => 1, binary => 2,
                close => 8, ping => 9, pong => 10);
our %OPNAMES = (0 => 'cont', 1 => 'text', 2 => 'binary', 8 => 'close',
                9 => 'ping', 10 => 'pong');

our $ws_body_filter = \&ws_body_filter;

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

sub import {
    my $class = shift;
    # make the functions usable in "--- section eval" code
    no strict 'refs';
    for my $f (@EXPORT) {
        *{"Test::Base::Filter::$f"} = \&{"CastTest::$f"}
            if !defined &{"Test::Base::Filter::$f"};
    }
    _default_env();
    local $Exporter::ExportLevel = $Exporter::ExportLevel + 1;
    $class->Exporter::import(@_);
}

sub _default_env {
    no warnings 'once';
    return if !defined $Test::Nginx::Util::ServRoot;
    $ENV{TEST_NGINX_SERVER_PORT} = $Test::Nginx::Util::ServerPort
        if !defined $ENV{TEST_NGINX_SERVER_PORT} && defined $Test::Nginx::Util::ServerPort;
    $ENV{TEST_NGINX_HTML_DIR} = $Test::Nginx::Util::HtmlDir
        if !defined $ENV{TEST_NGINX_HTML_DIR} && defined $Test::Nginx::Util::HtmlDir;
    $ENV{TEST_NGINX_SERVROOT} = $Test::Nginx::Util::ServRoot
        if !defined $ENV{TEST_NGINX_SERVROOT};
}

sub server_port {
    no warnings 'once';
    return $ENV{TEST_NGINX_SERVER_PORT} || $Test::Nginx::Util::ServerPort
           || $ENV{TEST_NGINX_PORT} || 1984;
}

# 'local' or 'redis': the mode t/lib/CastMode.pm runs this suite in
sub cast_mode {
    no warnings 'once';
    return $CastMode::Active ? 'redis' : 'local';
}

# How long a socket must stay silent before "every event published so far
# has arrived" holds: 0 in local mode (the one worker queues an event to
# its sockets before it answers the publish); in Redis mode an event
# reaches another worker's sockets through Redis after the publish was
# answered (TEST_NGINX_CAST_SETTLE seconds, default 0.3).
sub settle_time {
    return cast_mode() eq 'redis' ? ($ENV{TEST_NGINX_CAST_SETTLE} || 0.3) : 0;
}

sub json_encode { $JSON->encode($_[0]) }
sub json_decode { $JSON->decode($_[0]) }

# ---------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------

sub _bytes {
    my $s = shift;
    $s = '' if !defined $s;
    utf8::encode($s) if utf8::is_utf8($s);
    return $s;
}

# ws_frame($opcode, $payload, mask => 0|1, fin => 0|1, rsv => 0..7,
#          len64 => 1, len16 => 1, mask_key => "4 bytes", len => N)
# $opcode: number or name (text binary close ping pong cont).
# len => N lies about the payload length in the header (for error tests).
sub ws_frame {
    my ($opcode, $payload, %o) = @_;
    $opcode = $OPCODES{$opcode} if defined $opcode && exists $OPCODES{$opcode};
    die "ws_frame: bad opcode\n" if !defined $opcode || $opcode !~ /^\d+$/;
    $payload = _bytes($payload);

    my $fin  = exists $o{fin} ? ($o{fin} ? 1 : 0) : 1;
    my $rsv  = $o{rsv} || 0;
    my $mask = exists $o{mask} ? $o{mask} : 1;
    my $len  = defined $o{len} ? $o{len} : length $payload;

    my $frame = chr(($fin << 7) | (($rsv & 7) << 4) | ($opcode & 0x0f));
    my $mbit = $mask ? 0x80 : 0;
    if ($o{len64} || $len > 0xffff) {
        $frame .= chr($mbit | 127) . pack('NN', int($len / 2**32), $len % 2**32);
    } elsif ($o{len16} || $len > 125) {
        $frame .= chr($mbit | 126) . pack('n', $len);
    } else {
        $frame .= chr($mbit | $len);
    }

    if ($mask) {
        my $key = defined $o{mask_key} ? $o{mask_key}
                                       : pack('C4', map { int rand 256 } 1 .. 4);
        die "ws_frame: mask_key must be 4 bytes\n" if length $key != 4;
        my $rep = $key x (int(length($payload) / 4) + 1);
        $frame .= $key . ($payload ^ substr($rep, 0, length $payload));
    } else {
        $frame .= $payload;
    }
    return $frame;
}

sub ws_text   { my ($p, %o) = @_; ws_frame(1, $p, %o) }
sub ws_binary { my ($p, %o) = @_; ws_frame(2, $p, %o) }
sub ws_ping   { my ($p, %o) = @_; ws_frame(9, $p, %o) }
sub ws_pong   { my ($p, %o) = @_; ws_frame(10, $p, %o) }

sub ws_close {
    my ($code, $reason, %o) = @_;
    my $payload = '';
    if (defined $code) {
        $payload = pack('n', $code) . _bytes($reason);
    }
    return ws_frame(8, $payload, %o);
}

sub ws_accept_key {
    my $key = shift;
    my $d = sha1_base64($key . $WS_GUID);
    $d .= '=' while length($d) % 4;
    return $d;
}

# ws_handshake($path, Header => value, ...): a header given with undef is
# left out; default headers can be overridden (case-insensitively).
sub ws_handshake {
    my ($path, @h) = @_;
    $path = '/' if !defined $path;
    my @order = ('Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key',
                 'Sec-WebSocket-Version');
    my %val = ('host' => 'localhost', 'upgrade' => 'websocket',
               'connection' => 'Upgrade', 'sec-websocket-key' => $DefaultKey,
               'sec-websocket-version' => '13');
    my %name = map { (lc $_ => $_) } @order;
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        my $lk = lc $k;
        if (!exists $name{$lk}) {
            push @order, $k;
            $name{$lk} = $k;
        }
        $val{$lk} = $v;
    }
    my $req = "GET $path HTTP/1.1\r\n";
    for my $k (@order) {
        my $v = $val{lc $k};
        next if !defined $v;
        $req .= "$k: $v\r\n";
    }
    return "$req\r\n";
}

# Parses one frame at the start of $buf; returns undef when incomplete,
# else a hash: opcode fin rsv masked payload size (bytes consumed).
sub _parse_frame {
    my $buf = shift;
    return undef if length $buf < 2;
    my ($b0, $b1) = unpack 'CC', $buf;
    my $len = $b1 & 0x7f;
    my $off = 2;
    if ($len == 126) {
        return undef if length $buf < 4;
        $len = unpack 'n', substr($buf, 2, 2);
        $off = 4;
    } elsif ($len == 127) {
        return undef if length $buf < 10;
        my ($hi, $lo) = unpack 'NN', substr($buf, 2, 8);
        $len = $hi * 2**32 + $lo;
        $off = 10;
    }
    my $masked = $b1 & 0x80;
    my $key;
    if ($masked) {
        return undef if length $buf < $off + 4;
        $key = substr($buf, $off, 4);
        $off += 4;
    }
    return undef if length($buf) < $off + $len;
    my $payload = substr($buf, $off, $len);
    if ($masked) {
        my $rep = $key x (int($len / 4) + 1);
        $payload ^= substr($rep, 0, $len);
    }
    return { opcode => $b0 & 0x0f, fin => ($b0 >> 7) & 1, rsv => ($b0 >> 4) & 7,
             masked => $masked ? 1 : 0, payload => $payload, size => $off + $len };
}

sub ws_decode_frames {
    my $buf = shift;
    $buf = '' if !defined $buf;
    my @lines;
    while (length $buf) {
        my $f = _parse_frame($buf);
        if (!$f) {
            push @lines, 'partial';
            last;
        }
        substr($buf, 0, $f->{size}) = '';
        my $op = $f->{opcode};
        my $kw = exists $OPNAMES{$op} ? $OPNAMES{$op} : "opcode$op";
        $kw .= '(fin=0)' if !$f->{fin};
        $kw .= "(rsv=$f->{rsv})" if $f->{rsv};
        $kw .= '(masked)' if $f->{masked};
        my $p = $f->{payload};
        if ($op == 1 || $op == 0 || $op == 9 || $op == 10) {
            push @lines, "$kw $p";
        } elsif ($op == 2) {
            push @lines, "$kw " . length $p;
        } elsif ($op == 8) {
            if (length $p >= 2) {
                my $code = unpack 'n', substr($p, 0, 2);
                my $reason = substr($p, 2);
                push @lines, length $reason ? "$kw $code $reason" : "$kw $code";
            } elsif (length $p == 1) {
                push @lines, "$kw <1 byte>";
            } else {
                push @lines, $kw;
            }
        } else {
            push @lines, "$kw " . length $p;
        }
    }
    return @lines;
}

# usable directly as a --- response_body_filters code ref; called without
# arguments it returns itself (so "ws_body_filter" and "\&ws_body_filter"
# both work in an eval section)
sub ws_body_filter {
    return \&ws_body_filter if !@_;
    my @l = ws_decode_frames($_[0]);
    return @l ? join("\n", @l) . "\n" : '';
}

# ---------------------------------------------------------------------------
# blocking HTTP client
# ---------------------------------------------------------------------------

sub _connect {
    my ($host, $port, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout || 3)
        or die "CastTest: cannot connect to $host:$port: $!\n";
    binmode $s;
    $s->autoflush(1);
    return $s;
}

sub _write_all {
    my ($s, $data) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $data) {
        my $w = syswrite($s, $data, length($data) - $off, $off);
        if (!defined $w) {
            next if $! == EINTR || $! == EAGAIN;
            return 0;
        }
        $off += $w;
    }
    return 1;
}

sub _parse_head {
    my $head = shift;
    my @lines = split /\r\n/, $head;
    my $status_line = shift @lines;
    my ($code) = ($status_line || '') =~ m{^HTTP/\d\.\d\s+(\d{3})};
    my %h;
    for my $l (@lines) {
        my ($k, $v) = split /:\s*/, $l, 2;
        next if !defined $k;
        $k = lc $k;
        $v = '' if !defined $v;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }
    return ($code, \%h);
}

sub _dechunk {
    my $b = shift;
    my $out = '';
    while ($b =~ s/\A([0-9A-Fa-f]+)[^\r\n]*\r\n//) {
        my $n = hex $1;
        last if $n == 0;
        $out .= substr($b, 0, $n);
        substr($b, 0, $n + 2) = '';
    }
    return $out;
}

# http_request($method, $path, $body, Header => value, ...)
#   -> ($status, {lowercased-header => value}, $body)
# Options among the headers: -timeout => secs (default 5), -port => N.
sub http_request {
    my ($method, $path, $body, @h) = @_;
    my ($timeout, $port) = (5, undef);
    my $hdrs = '';
    my %seen;
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        if ($k eq '-timeout') { $timeout = $v; next }
        if ($k eq '-port')    { $port = $v; next }
        $seen{lc $k} = 1;
        $hdrs .= "$k: $v\r\n" if defined $v;
    }
    $port ||= server_port();
    my $req = "$method $path HTTP/1.1\r\n";
    $req .= "Host: localhost\r\n" if !$seen{host};
    $req .= "Connection: close\r\n" if !$seen{connection};
    if (defined $body) {
        $body = _bytes($body);
        $req .= 'Content-Length: ' . length($body) . "\r\n"
            if !$seen{'content-length'} && !$seen{'transfer-encoding'};
    }
    $req .= "$hdrs\r\n";
    $req .= $body if defined $body;

    my $s = _connect('127.0.0.1', $port, $timeout);
    _write_all($s, $req);
    my $resp = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + $timeout;
    while (1) {
        my $left = $deadline - time;
        last if $left <= 0;
        last if !$sel->can_read($left);
        my $r = sysread($s, my $buf, 65536);
        last if !$r;
        $resp .= $buf;
        # stop early once a Content-Length delimited response is complete
        if ($resp =~ /\A(.*?\r\n)\r\n/s) {
            my $hl = length($1) + 2;
            my (undef, $hh) = _parse_head($1);
            if (defined $hh->{'content-length'} && !defined $hh->{'transfer-encoding'}
                && length($resp) - $hl >= $hh->{'content-length'})
            {
                last;
            }
            last if $method eq 'HEAD';
        }
    }
    close $s;

    my ($head, $rbody) = split /\r\n\r\n/, $resp, 2;
    my ($code, $headers) = _parse_head(defined $head ? $head : '');
    $rbody = '' if !defined $rbody;
    if (($headers->{'transfer-encoding'} || '') =~ /chunked/i) {
        $rbody = _dechunk($rbody);
    } elsif (defined $headers->{'content-length'}
             && length($rbody) > $headers->{'content-length'})
    {
        $rbody = substr($rbody, 0, $headers->{'content-length'});
    }
    return ($code, $headers, $rbody);
}

# ---------------------------------------------------------------------------
# blocking WebSocket client
# ---------------------------------------------------------------------------

# a keep-alive HTTP/1.1 connection for publishers that send many events
sub ka_open {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => server_port(),
                                  Proto => 'tcp', Timeout => 5) or die "connect: $!";
    binmode $s;
    return { sock => $s, buf => '' };
}

# one request on a keep-alive connection; returns the status code.  When
# nginx ends the connection (keepalive_requests), the next call reconnects.
sub ka_post {
    my ($c, $path, $body) = @_;
    if (!$c->{sock}) {
        %$c = %{ ka_open() };
    }
    my $req = "POST $path HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    _write_all($c->{sock}, $req) or return 'write failed';
    while (1) {
        if ($c->{buf} =~ /\A(HTTP\/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n)/s) {
            my ($hl, $code, $h) = (length $1, $2, $3);
            my ($len) = $h =~ /^Content-Length:\s*(\d+)/mi;
            $len = 0 if !defined $len;
            if (length($c->{buf}) >= $hl + $len) {
                substr($c->{buf}, 0, $hl + $len) = '';
                if ($h =~ /^Connection:\s*close/mi) {
                    close $c->{sock};
                    ($c->{sock}, $c->{buf}) = (undef, '');
                }
                return $code;
            }
        }
        my $n = sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf});
        return 'connection closed' if !$n;
    }
}


package CastTest::WS;

use strict;
use warnings;
use Time::HiRes qw(time);
use IO::Select ();
use POSIX qw(EAGAIN EINTR EWOULDBLOCK);

# CastTest::WS->connect('/path' | 'ws://host:port/path', Header => value,
#                       -timeout => secs)
# dies with "WebSocket handshake failed: status NNN ..." unless 101
sub connect {
    my ($class, $url, @h) = @_;
    my ($host, $port, $path) = ('127.0.0.1', CastTest::server_port(), '/');
    if ($url =~ m{^wss?://([^/:]+)(?::(\d+))?(/.*)?$}) {
        $host = $1;
        $port = $2 if $2;
        $path = defined $3 ? $3 : '/';
        $host = '127.0.0.1' if $host eq 'localhost';
    } elsif (defined $url) {
        $path = $url;
    }
    my $timeout = 5;
    my @hdrs;
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        if ($k eq '-timeout') { $timeout = $v; next }
        push @hdrs, $k, $v;
    }
    my $key = MIME::Base64::encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $sock = CastTest::_connect($host, $port, $timeout);
    CastTest::_write_all($sock, CastTest::ws_handshake($path, 'Sec-WebSocket-Key' => $key, @hdrs));

    my $self = bless { sock => $sock, buf => '', closed => 0, eof => 0,
                       close_code => undef, close_reason => undef }, $class;

    my $deadline = time + $timeout;
    while ($self->{buf} !~ /\r\n\r\n/) {
        my $left = $deadline - time;
        if ($left <= 0 || !$self->_fill($left)) {
            CORE::close($sock);
            my ($code) = $self->{buf} =~ m{^HTTP/\d\.\d\s+(\d{3})};
            die "WebSocket handshake failed: status " . ($code || 'none')
                . " (no complete response header)\n";
        }
    }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    $self->{buf} = defined $rest ? $rest : '';
    my ($code, $headers) = CastTest::_parse_head($head);
    $self->{status} = $code;
    $self->{headers} = $headers;
    if (!defined $code || $code != 101) {
        my $body = $self->{buf};
        CORE::close($sock);
        die "WebSocket handshake failed: status " . (defined $code ? $code : 'none')
            . ($body ne '' ? " body: $body" : '') . "\n";
    }
    my $accept = $headers->{'sec-websocket-accept'};
    if (!defined $accept || $accept ne CastTest::ws_accept_key($key)) {
        CORE::close($sock);
        die "WebSocket handshake failed: status 101 with a bad Sec-WebSocket-Accept\n";
    }
    return $self;
}

sub status  { $_[0]{status} }
sub headers { $_[0]{headers} }
sub close_code   { $_[0]{close_code} }
sub close_reason { $_[0]{close_reason} }

# reads more bytes into the buffer; false on timeout/EOF
sub _fill {
    my ($self, $timeout) = @_;
    return 0 if $self->{eof};
    my $sel = IO::Select->new($self->{sock});
    while (1) {
        my @r = $sel->can_read($timeout);
        return 0 if !@r;
        my $n = sysread($self->{sock}, my $chunk, 65536);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN || $! == EWOULDBLOCK;
            $self->{eof} = 1;
            return 0;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            return 0;
        }
        $self->{buf} .= $chunk;
        return 1;
    }
}

sub send_raw {
    my ($self, $bytes) = @_;
    return CastTest::_write_all($self->{sock}, $bytes);
}

sub send_text   { my ($self, $s, %o) = @_; $self->send_raw(CastTest::ws_text($s, %o)) }
sub send_binary { my ($self, $s, %o) = @_; $self->send_raw(CastTest::ws_binary($s, %o)) }
sub send_ping   { my ($self, $s) = @_; $self->send_raw(CastTest::ws_ping($s)) }
sub send_pong   { my ($self, $s) = @_; $self->send_raw(CastTest::ws_pong($s)) }
sub send_json   { my ($self, $d) = @_; $self->send_raw(CastTest::ws_text(CastTest::json_encode($d))) }

# -> ($opcode, $payload, $fin) or () on timeout / connection closed
sub recv_frame {
    my ($self, $timeout) = @_;
    $timeout = 3 if !defined $timeout;
    my $deadline = time + $timeout;
    while (1) {
        my $f = CastTest::_parse_frame($self->{buf});
        if ($f) {
            substr($self->{buf}, 0, $f->{size}) = '';
            if ($f->{opcode} == 8) {
                $self->{closed} = 1;
                if (length $f->{payload} >= 2) {
                    $self->{close_code} = unpack 'n', substr($f->{payload}, 0, 2);
                    $self->{close_reason} = substr($f->{payload}, 2);
                }
            }
            return ($f->{opcode}, $f->{payload}, $f->{fin});
        }
        my $left = $deadline - time;
        return () if $left <= 0;
        if (!$self->_fill($left)) {
            $self->{closed} = 1 if $self->{eof};
            return ();
        }
    }
}

# next text message decoded as JSON; pings are answered and skipped, pongs
# skipped, fragmented messages reassembled.  () on timeout/close/other frame
# types (binary returns () too).  Dies on invalid JSON.
sub recv_json {
    my ($self, $timeout) = @_;
    $timeout = 3 if !defined $timeout;
    my $deadline = time + $timeout;
    my $msg;
    while (1) {
        my $left = $deadline - time;
        $left = 0 if $left < 0;
        my ($op, $payload, $fin) = $self->recv_frame($left);
        return () if !defined $op;
        if ($op == 9) { $self->send_pong($payload); next }
        next if $op == 10;
        return () if $op == 8;
        if ($op == 1 || ($op == 0 && defined $msg)) {
            $msg = '' if $op == 1;
            $msg .= $payload;
            next if !$fin;
            my $data = eval { CastTest::json_decode($msg) };
            die "CastTest::WS::recv_json: invalid JSON text frame: $msg\n" if $@;
            return $data;
        }
        return ();
    }
}

# sends a close frame (default code 1000), waits briefly for the server's
# close frame, then closes the socket
sub close {
    my ($self, $code, $reason) = @_;
    return if !$self->{sock};
    $code = 1000 if !defined $code;
    if (!$self->{closed}) {
        $self->send_raw(CastTest::ws_close($code, $reason));
        my $deadline = time + 1;
        while (!$self->{closed}) {
            my $left = $deadline - time;
            last if $left <= 0;
            my @f = $self->recv_frame($left);
            last if !@f;
        }
    }
    CORE::close($self->{sock});
    $self->{sock} = undef;
    $self->{closed} = 1;
}

sub is_closed {
    my $self = shift;
    return 1 if $self->{closed} || !$self->{sock};
    # a pending close frame or EOF counts as closed
    if ($self->{buf} eq '') {
        my $sel = IO::Select->new($self->{sock});
        if ($sel->can_read(0)) {
            $self->_fill(0);
        }
    }
    my $f = CastTest::_parse_frame($self->{buf});
    return 1 if $f && $f->{opcode} == 8;
    return $self->{eof} ? 1 : 0;
}

sub DESTROY {
    my $self = shift;
    CORE::close($self->{sock}) if $self->{sock};
}

1;
