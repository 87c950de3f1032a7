package CastFhir;

# Helpers for the FHIRcast suites (t/050-t/053): subscriptions and sockets
# on a {base}, publishing, GET context, "what did a socket receive"
# (sync), and the events of content sharing.  Package main of a suite
# gets them with "use CastFhir;".  Core Perl only; works under the
# project's runner and the real Test::Nginx.
#
#   subscribe($topic, $events, %form)  -> {path, endpoint, code, body, ...}
#   subscribe_ok(...)                  as subscribe, and asserts the 202
#   connect_ready($sub)                -> CastTest::WS past its first frames
#   publish($body [, $path])           -> ($code, $body) (POST {base})
#   context($topic)                    -> GET {base}/{topic}, decoded
#   sync($ws)                          -> [text frames received so far]
#   ack($ws, $id, $status)             an ack, read by the hub on return
#   events($frames)                    -> [decoded frames]
#   open_ev / update_ev / close_ev / put / del   event bodies (JSON text)
#
# $CastFhir::Base is the {base} (default /fhircast/hub); a hash argument
# "-base" overrides it per call.  $CastFhir::Port the port (default the
# suite's server port).

use strict;
use warnings;

use Exporter ();
use Time::HiRes ();
use Test::More ();
use CastTest ();

our @ISA = ('Exporter');
our @EXPORT = qw(
    subscribe subscribe_ok connect_ready publish context sync events
    open_ev update_ev close_ev put del uuid_re form hub_form ack
);

our $Base = '/fhircast/hub';
our $Port;
our $SyncN = 0;

sub uuid_re () {
    qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
}

sub _port { $Port ? (-port => $Port) : () }

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
    my $base = delete $f{-base} || $Base;
    my ($code, undef, $body) = CastTest::http_request('POST', $base, form(%f),
        'Content-Type' => 'application/x-www-form-urlencoded', _port());
    return ($code, $body);
}

sub subscribe {
    my ($topic, $events, %extra) = @_;
    my %f = ('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
             'hub.topic' => $topic, 'hub.events' => $events,
             'hub.lease_seconds' => 3600, %extra);
    delete $f{$_} for grep { !defined $f{$_} } keys %f;
    my ($code, $body) = hub_form(%f);
    my $j = eval { CastTest::json_decode($body) } || {};
    my ($path) = ($j->{'hub.channel.endpoint'} || '')
                 =~ m{^wss?://[^/]+(/bind/[0-9a-f]{32})$};
    return { topic => $topic, events => $events, path => $path || '/bind/none',
             endpoint => $j->{'hub.channel.endpoint'}, code => $code,
             body => $body, name => $extra{'subscriber.name'} };
}

sub subscribe_ok {
    my $s = subscribe(@_);
    Test::More::is($s->{code}, 202, "subscribe $s->{topic} ($s->{events}): 202")
        or Test::More::diag($s->{body});
    return $s;
}

# fhircast: the confirmation only; cast: connection.established first
sub connect_ready {
    my ($s, %o) = @_;
    my $url = $Port ? "ws://127.0.0.1:$Port$s->{path}" : $s->{path};
    my $ws = eval { CastTest::WS->connect($url) };
    if (!$ws) {
        Test::More::fail("connect $s->{topic}: $@");
        return;
    }
    if ($o{cast}) {
        my $hello = $ws->recv_json(3);
        Test::More::is($hello && $hello->{type}, 'connection.established',
                       "$s->{topic}: connection.established first");
    }
    my $conf = $ws->recv_json(3);
    Test::More::is($conf && $conf->{'hub.mode'}, 'subscribe',
                   "$s->{topic}: the confirmation");
    return $ws;
}

sub publish {
    my ($json, $path) = @_;
    $json = CastTest::json_encode($json) if ref $json;
    my ($code, undef, $body) = CastTest::http_request('POST', $path || $Base,
        $json, 'Content-Type' => 'application/json', _port());
    return wantarray ? ($code, $body) : $code;
}

sub context {
    my ($topic, $base) = @_;
    my (undef, undef, $body) = CastTest::http_request('GET',
        ($base || $Base) . "/$topic", undef, _port());
    return eval { CastTest::json_decode($body) } || { error => $body };
}

# the raw text frames received before the pong of a fresh ping (in Redis
# mode after twice CastTest::settle_time() of silence first)
sub sync {
    my ($ws, $settle) = @_;
    my $tag = 'sync-' . ++$SyncN;
    my @got = @{ delete $ws->{cast_pending} || [] };
    # Redis mode: an event reaches another worker's socket through Redis;
    # on a loaded machine 0.3 s of silence is not always enough
    $settle = CastTest::settle_time() ? CastTest::settle_time() * 2 : 0
        if !defined $settle;
    while ($settle) {
        my ($op, $p) = $ws->recv_frame($settle);
        last if !defined $op;
        next if $op == 9 || $op == 10;
        push @got, $op == 1 ? $p : $op == 8 ? 'close ' . unpack('n', $p) : "opcode $op";
        last if $op == 8;
    }
    return \@got if @got && $got[-1] =~ /^close/;
    $ws->send_ping($tag);
    while (1) {
        my ($op, $p) = $ws->recv_frame(3);
        if (!defined $op) { push @got, '<no pong>'; last }
        last if $op == 10 && $p eq $tag;
        next if $op == 9 || $op == 10;
        push @got, $op == 1 ? $p : $op == 8 ? 'close ' . unpack('n', $p) : "opcode $op";
        last if $op == 8;
    }
    return \@got;
}

# an ack {"id","status"}, and the pong of a ping sent after it: the hub
# has read the ack when ack() returns (what the socket got meanwhile is
# kept for the next sync)
sub ack {
    my ($ws, $id, $status) = @_;
    $ws->send_text(CastTest::json_encode({ id => $id, status => $status }));
    my $got = sync($ws, 0);
    $ws->{cast_pending} = $got;
}

sub events {
    my ($frames) = @_;
    return [map { my $j = eval { CastTest::json_decode($_) }; $j || { raw => $_ } } @$frames];
}

my $Seq = 0;

sub _ev {
    my ($topic, $name, $context, %o) = @_;
    my $e = { timestamp => $o{timestamp} || '2026-12-04T10:00:00.000Z',
              id => $o{id} || "$name-" . ++$Seq . "-$$",
              event => { 'hub.topic' => $topic, 'hub.event' => $name,
                         context => $context } };
    $e->{event}{'context.versionId'} = $o{version} if defined $o{version};
    return CastTest::json_encode($e);
}

# DiagnosticReport-open of report $r (patient p-$r), or $type-open
sub open_ev {
    my ($topic, $r, %o) = @_;
    my $type = $o{type} || 'DiagnosticReport';
    my $key = $type eq 'DiagnosticReport' ? 'report'
            : $type eq 'ImagingStudy' ? 'study' : lc $type;
    my @ctx = ({ key => $key, resource => { resourceType => $type, id => $r,
                                           status => 'preliminary' } });
    push @ctx, { key => 'patient', resource => { resourceType => 'Patient',
                                                id => "p-$r" } }
        if $type ne 'Patient';
    return _ev($topic, "$type-open", \@ctx, %o);
}

sub close_ev {
    my ($topic, $r, %o) = @_;
    my $type = $o{type} || 'DiagnosticReport';
    my $key = $type eq 'DiagnosticReport' ? 'report' : lc $type;
    return _ev($topic, "$type-close",
               [{ key => $key, resource => { resourceType => $type, id => $r } }], %o);
}

# DiagnosticReport-update of report $r made against $version
sub update_ev {
    my ($topic, $r, $version, $entries, %o) = @_;
    my $bundle = { resourceType => 'Bundle', id => $o{bundle} || "b-$r",
                   type => $o{bundle_type} || 'transaction', entry => $entries };
    delete $bundle->{type} if $o{no_type};
    my @ctx = ({ key => 'report',
                 reference => { reference => "DiagnosticReport/$r" } },
               { key => 'patient', reference => { reference => "Patient/p-$r" } },
               { key => 'updates', resource => $bundle });
    return _ev($topic, $o{name} || 'DiagnosticReport-update', \@ctx,
               version => $version, %o);
}

sub put {
    my ($type, $id, %fields) = @_;
    return { request => { method => 'PUT' },
             resource => { resourceType => $type, id => $id, %fields } };
}

sub del {
    my ($full) = @_;
    return { fullUrl => $full, request => { method => 'DELETE' } };
}

1;
