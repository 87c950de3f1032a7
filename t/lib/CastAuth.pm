package CastAuth;

# Keys and bearer tokens for ngx_http_cast_module's authorization tests,
# made at test time: RSA and P-256 keys by the openssl command line
# (Debian: openssl), HS256 secrets from /dev/urandom, JWK Sets written as
# JSON, tokens signed with HMAC-SHA256 (core Perl's Digest::SHA) or with
# "openssl dgst -sign" (an ES256 signature is turned from DER into JWS's
# R || S).  Everything goes into a temporary directory, never into
# t/servroot.
#
#   use lib 't/lib';
#   use CastAuth;
#
#   my $keys = CastAuth->new;            # a fresh temporary directory
#   $keys->dir;                          # where the files are
#   $keys->rsa('r1');                    # makes an RSA 2048 key "r1"
#   $keys->ec('e1');                     # a P-256 key "e1"
#   $keys->secret('h1');                 # a 32-byte HS256 secret "h1"
#   $keys->jwks('jwks.json', 'r1', 'e1');    # their public JWK Set
#   $keys->secret_file('h1.key', 'h1');      # the secret, as a file
#   my $t = $keys->token('r1', {sub => 'u1', 'hub.topic' => 'T', ...},
#                        header => {...}, alg => 'RS256');
#   CastAuth::claims(topic => 'T', scope => '...', exp => +3600, ...)
#       the usual claims, "exp" and "nbf" relative to now
#
# Only core Perl and the openssl binary are used.

use strict;
use warnings;

use File::Temp ();
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64);
use JSON::PP ();

my $JSON = JSON::PP->new->utf8->canonical;

sub b64url {
    my $s = encode_base64($_[0], '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

sub new {
    my ($class, %opt) = @_;
    my $dir = File::Temp::tempdir('cast-auth-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);
    return bless { dir => $dir, keys => {} }, $class;
}

sub dir { $_[0]{dir} }

sub _run {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "CastAuth: \"$cmd\" failed: $out\n" if $?;
    return $out;
}

sub _slurp {
    my ($file) = @_;
    open my $in, '<:raw', $file or die "CastAuth: $file: $!\n";
    local $/;
    my $d = <$in>;
    close $in;
    return $d;
}

sub _spew {
    my ($file, $data) = @_;
    open my $out, '>:raw', "$file.tmp" or die "CastAuth: $file: $!\n";
    print $out $data;
    close $out;
    rename "$file.tmp", $file or die "CastAuth: rename $file: $!\n";
}

# an RSA key (bits: 2048 unless said)
sub rsa {
    my ($self, $kid, $bits) = @_;
    $bits ||= 2048;
    my $pem = "$self->{dir}/$kid.pem";
    _run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:$bits"
         . " -out '$pem'");
    my $mod = _run("openssl rsa -in '$pem' -noout -modulus");
    $mod =~ s/^Modulus=//;
    $mod =~ s/\s+//g;
    $self->{keys}{$kid} = {
        alg => 'RS256', pem => $pem,
        jwk => { kty => 'RSA', kid => $kid, use => 'sig', alg => 'RS256',
                 n => b64url(pack('H*', $mod)), e => 'AQAB' },
    };
    return $self;
}

# a P-256 key
sub ec {
    my ($self, $kid) = @_;
    my $pem = "$self->{dir}/$kid.pem";
    _run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
         . " -out '$pem'");
    _run("openssl pkey -in '$pem' -pubout -outform DER"
         . " -out '$self->{dir}/$kid.pub.der'");
    my $der = _slurp("$self->{dir}/$kid.pub.der");
    my $point = substr($der, -65);
    die "CastAuth: not an uncompressed P-256 point\n"
        if substr($point, 0, 1) ne "\x04";
    $self->{keys}{$kid} = {
        alg => 'ES256', pem => $pem,
        jwk => { kty => 'EC', kid => $kid, use => 'sig', crv => 'P-256',
                 x => b64url(substr($point, 1, 32)),
                 y => b64url(substr($point, 33, 32)) },
    };
    return $self;
}

# an HS256 secret: 32 random bytes shown as 64 hex characters
sub secret {
    my ($self, $kid, $text) = @_;
    if (!defined $text) {
        open my $r, '<:raw', '/dev/urandom' or die "/dev/urandom: $!\n";
        read($r, my $bytes, 32) == 32 or die "/dev/urandom: short read\n";
        close $r;
        $text = unpack('H*', $bytes);
    }
    $self->{keys}{$kid} = {
        alg => 'HS256', secret => $text,
        jwk => { kty => 'oct', kid => $kid, k => b64url($text) },
    };
    return $self;
}

sub jwk { $_[0]{keys}{$_[1]}{jwk} }

# writes a JWK Set of the named keys (atomically: a reload may read it)
sub jwks {
    my ($self, $file, @kids) = @_;
    my $path = "$self->{dir}/$file";
    _spew($path, $JSON->encode({ keys => [ map { $self->jwk($_) } @kids ] }));
    return $path;
}

sub secret_file {
    my ($self, $file, $kid) = @_;
    my $path = "$self->{dir}/$file";
    _spew($path, $self->{keys}{$kid}{secret} . "\n");
    return $path;
}

sub write_file {
    my ($self, $file, $data) = @_;
    my $path = "$self->{dir}/$file";
    _spew($path, $data);
    return $path;
}

# the usual claims; exp and nbf are seconds from now (undef: left out)
sub claims {
    my (%o) = @_;
    my $now = time;
    my %c = (iss => 'https://auth.example', aud => 'cast-hub',
             sub => 'user-1', jti => 'jti-' . int(rand(1e9)),
             iat => $now);
    $c{exp} = $now + (exists $o{exp} ? $o{exp} : 3600)
        if !exists $o{exp} || defined $o{exp};
    $c{nbf} = $now + $o{nbf} if defined $o{nbf};
    $c{'hub.topic'} = $o{topic} if defined $o{topic};
    $c{scope} = $o{scope} if defined $o{scope};
    for my $k (keys %o) {
        next if $k =~ /^(exp|nbf|topic|scope)$/;
        if (defined $o{$k}) { $c{$k} = $o{$k} } else { delete $c{$k} }
    }
    return \%c;
}

sub _sign {
    my ($self, $key, $alg, $input) = @_;
    if ($alg eq 'HS256') {
        return hmac_sha256($input, $key->{secret});
    }
    my $in = "$self->{dir}/input.$$";
    _spew($in, $input);
    my $sig = `openssl dgst -sha256 -sign '$key->{pem}' -binary '$in'`;
    die "CastAuth: openssl dgst -sign failed\n" if $?;
    unlink $in;
    return $alg eq 'ES256' ? der_to_jws($sig) : $sig;
}

# ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, 32 each
sub der_to_jws {
    my ($der) = @_;
    my @b = unpack('C*', $der);
    my $i = 0;
    die "CastAuth: not a DER sequence\n" if $b[$i++] != 0x30;
    my $len = $b[$i++];
    $i += ($len & 0x7f) if $len & 0x80;
    my $out = '';
    for (1 .. 2) {
        die "CastAuth: not a DER integer\n" if $b[$i++] != 0x02;
        my $n = $b[$i++];
        my $int = pack('C*', @b[$i .. $i + $n - 1]);
        $i += $n;
        $int =~ s/^\x00+//;
        $out .= ("\x00" x (32 - length $int)) . $int;
    }
    return $out;
}

# token($kid, \%claims, header => {...}, alg => ..., sign_with => $kid2)
sub token {
    my ($self, $kid, $claims, %o) = @_;
    my $key = $self->{keys}{$o{sign_with} || $kid}
        or die "CastAuth: no key $kid\n";
    my $alg = $o{alg} || $key->{alg};
    my %h = (alg => $alg, typ => 'JWT');
    $h{kid} = $kid if defined $kid && !$o{no_kid};
    %h = (%h, %{ $o{header} }) if $o{header};
    my $input = b64url($JSON->encode(\%h)) . '.'
                . b64url(ref $claims ? $JSON->encode($claims) : $claims);
    my $sig = $alg eq 'none' ? '' : $self->_sign($key, $alg, $input);
    return "$input." . b64url($sig);
}

1;
