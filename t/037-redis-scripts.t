# The Redis scripts (src/lua/*.lua) by themselves, without nginx: each is
# built as the module gets it (src/lua/embed.sh: prelude.lua, then Lua
# locals named after the "-- KEYS:" and "-- ARGV:" header comments, then
# the script) and run with EVAL against a private redis-server, with keys
# and arguments shaped as src/ngx_http_cast_store_redis.c sends them.  The
# checks are on the answers and on the keys each script leaves behind:
# index members and scores, TTLs, counters, control messages, published
# payloads (in the wire format of src/ngx_http_cast_wire.h).
#
# KEYS and ARGV are passed by name: their positions come from the
# NGX_HTTP_CAST_LUA_<SCRIPT>_K_* / _A_* lines that embed.sh generates, and
# a name the header comment does not list fails the test.
#
# Port: TEST_NGINX_REDIS_PORT (6446).

use strict;
use warnings;

use Test::More;
use lib 't/lib';
use CastRedis;
use File::Temp ();
use Time::HiRes qw(time);

$ENV{TEST_NGINX_REDIS_PORT} ||= 6446;

my $Tolerance = 3000;       # ms, for TTLs against the clock (noisy box)

# --- the scripts, as embed.sh builds them -----------------------------------

my $Tmp = File::Temp::tempdir('cast-lua-XXXXXX', TMPDIR => 1, CLEANUP => 1);

system('sh', 'src/lua/embed.sh', 'src/lua', "$Tmp/lua.h") == 0
    or BAIL_OUT("src/lua/embed.sh failed");

my %Script;     # name => { text, nkeys, nargs, K => {NAME => pos}, A => {} }

{
    open my $in, '<', "$Tmp/lua.h" or BAIL_OUT("$Tmp/lua.h: $!");
    my ($name, $in_text);

    while (my $l = <$in>) {
        if ($l =~ m{^/\* (\w+)\.lua \*/$}) {
            $name = $1;
            $Script{$name} = { text => '', K => {}, A => {} };
            next;
        }

        next if !defined $name;

        if ($in_text) {
            if ($l =~ /^    ;$/) {
                $in_text = 0;
                next;
            }

            $l =~ /^    "(.*)\\n"$/
                or BAIL_OUT("lua.h: not a script line: $l");
            (my $s = $1) =~ s/\\(["\\])/$1/g;
            $Script{$name}{text} .= "$s\n";
            next;
        }

        my $prefix = 'NGX_HTTP_CAST_LUA_' . uc($name) . '_';

        if ($l =~ /^#define \Q$prefix\E(K|A)_(\w+)  (\d+)$/) {
            $Script{$name}{$1}{lc $2} = $3;

        } elsif ($l =~ /^#define \Q$prefix\E(NKEYS|NARGS)  (\d+)$/) {
            $Script{$name}{lc $1} = $2;

        } elsif ($l =~ /^static const char  ngx_http_cast_lua_\Q$name\E\[\]/) {
            $in_text = 1;
        }
    }
}

my @Names = qw(append bind epoch records remove remove_matching renew reset
               status subscribe sweep unbind);

is_deeply([sort keys %Script], \@Names, 'embed.sh: one script per file');

{
    local $/;
    open my $p, '<', 'src/lua/prelude.lua' or die "prelude.lua: $!";
    my $prelude = <$p>;

    for my $name (@Names) {
        open my $f, '<', "src/lua/$name.lua" or die "$name.lua: $!";
        my $body = <$f>;
        my $text = $Script{$name}{text};

        ok(index($text, $prelude) == 0 && index($text, $body) > 0
           && substr($text, -length $body) eq $body,
           "embed.sh: $name: the prelude, then the script, unchanged");
    }
}

# --- Redis ------------------------------------------------------------------

my $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
my $R = $Redis->session;

sub R { my $r = $R->command(@_); return $r }

sub now_ms { int(time * 1000) }

for my $name (@Names) {
    my $sha = R('SCRIPT', 'LOAD', $Script{$name}{text});
    ok(!ref $sha && $sha =~ /^[0-9a-f]{40}$/, "$name: Redis compiles it")
        or diag("$sha");
}

# EVAL by names: run($script, {key => ...}, {arg => ...}, @more)

sub run {
    my ($name, $keys, $args, @more) = @_;
    my $s = $Script{$name} or die "no script $name\n";
    my (@k, @a);

    for my $kind (['K', $keys, \@k, 'nkeys'], ['A', $args, \@a, 'nargs']) {
        my ($K, $given, $out, $n) = @$kind;
        for my $field (keys %$given) {
            die "$name: no $K $field in its header comment\n"
                if !exists $s->{$K}{$field};
            $out->[$s->{$K}{$field}] = $given->{$field};
        }
        die "$name: $n is $s->{$n}, given " . scalar(keys %$given) . "\n"
            if keys %$given != $s->{$n};
    }

    my $r = R('EVAL', $s->{text}, scalar @k, @k, @a, @more);
    die "$name: $$r\n" if ref $r eq 'CastRedis::Error';
    return $r;
}

sub near {
    my ($got, $want, $name) = @_;
    my $ok = defined $got && $got =~ /^-?\d+$/
             && abs($got - $want) <= $Tolerance;
    ok($ok, $name) or diag('got ' . ($got // 'undef') . ", want $want");
}

sub hash_of { my $a = shift; return ref $a eq 'ARRAY' ? {@$a} : {} }

sub sub_key  { "cast:sub:{$_[0]}" }
sub subs_key { "cast:{$_[0]}:subs" }

# a record as ngx_http_cast_rstore_create() writes it: "until" is when
# the index lets it go (bind timeout or lease end), "expires" its lease end

sub subscribe {
    my %o = @_;
    my @fields = (topic => $o{topic},
                  events => $o{events} // 'patient-open',
                  endpoint => $o{endpoint} // "ep-$o{id}",
                  name => $o{name} // '',
                  callback => $o{callback} // '',
                  product_name => '', product_version => '', actors => '',
                  client_info => '', dialect => 1,
                  lease => $o{lease} // 3600,
                  expires => $o{expires},
                  counted => $o{counted} // 1);
    push @fields, bound => 1 if $o{bound};

    return run('subscribe',
               { sub => sub_key($o{id}), topic_subs => subs_key($o{topic}),
                 all_subs => 'cast:subs', topics => 'cast:topics' },
               { id => $o{id}, topic => $o{topic}, now => $o{now},
                 expires => $o{until}, max_topics => $o{max_topics} // 100,
                 counted => $o{counted} // 1,
                 max_subs => $o{max_subs} // 0,
                 per_topic => $o{per_topic} // 0 },
               @fields);
}

sub bind_ {
    my ($id, $now, $nonce) = @_;
    return run('bind',
               { sub => sub_key($id), all_subs => 'cast:subs',
                 topics => 'cast:topics' },
               { id => $id, now => $now, nonce => $nonce });
}

sub ctl_log {
    my $r = R('XRANGE', 'cast:ctl:log', '-', '+');
    return [ map { hash_of($_->[1])->{m} } @$r ];
}

sub connections { R('HGET', 'cast:counters', 'connections') }

# a connection subscribed to channels; next_message() gives the payload
# of the next message (undef after the timeout)

my $Sub = $Redis->session;

sub next_message {
    my $m = eval {
        local $Sub->{conn}{timeout} = 2;
        CastRedis::_read_reply($Sub->{conn});
    };
    return undef if !$m;
    return next_message() if $m->[0] ne 'message';
    return $m->[2];
}

$Sub->command('SUBSCRIBE', 'cast:ctl');
$Sub->command('SUBSCRIBE', 'cast:ev:t1');

# the wire grammar of src/ngx_http_cast_wire.h, written again here

sub wire_event {
    my $p = shift;
    return undef if !defined $p;
    $p =~ /\A(\d{1,19})-(\d{1,19}) (\d{1,19}):/ or return undef;
    my ($id, $n) = ("$1-$2", $3);
    my $rest = substr($p, $+[0]);
    return undef if $n > length $rest;
    return [$id, substr($rest, 0, $n), substr($rest, $n)];
}

# --- subscribe.lua -------------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    is(subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
                 expires => $n + 3600000, max_topics => 2),
       1, 'subscribe: a new record: 1');

    my $h = hash_of(R('HGETALL', sub_key('A')));
    is_deeply([@$h{qw(topic events endpoint dialect lease expires counted)}],
              ['t1', 'patient-open', 'ep-A', 1, 3600, $n + 3600000, 1],
              'subscribe: the record holds the fields as given');
    ok(!exists $h->{bound}, 'subscribe: an unbound record has no "bound"');
    near(R('PTTL', sub_key('A')), 70000,
         'subscribe: the record expires a minute after its bind timeout');
    is(R('ZSCORE', subs_key('t1'), 'A'), $n + 10000,
       'subscribe: the topic index scores it by its bind timeout');
    is(R('ZSCORE', 'cast:subs', 'A'), $n + 10000,
       'subscribe: so does the index of all records');
    near(R('PTTL', subs_key('t1')), 70000,
         'subscribe: the topic index expires a minute after its last record');
    near(R('PTTL', 'cast:subs'), 70000,
         'subscribe: so does the index of all records');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 10000,
       'subscribe: the topic is counted until the bind timeout');
    near(R('PTTL', 'cast:topics'), 10000,
         'subscribe: cast:topics expires with its last topic');

    is(subscribe(id => 'A', topic => 't1', now => $n, until => $n + 20000,
                 expires => $n + 3600000, endpoint => 'other'),
       0, 'subscribe: an id that exists: 0');
    is(R('HGET', sub_key('A'), 'endpoint'), 'ep-A',
       'subscribe: ... and the record is not written');
    is(R('ZSCORE', 'cast:subs', 'A'), $n + 10000,
       'subscribe: ... nor its index entries');

    is(subscribe(id => 'B', topic => 't1', now => $n, until => $n + 20000,
                 expires => $n + 3600000),
       1, 'subscribe: a second record of the topic');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 20000,
       'subscribe: the topic is counted longer');
    near(R('PTTL', subs_key('t1')), 80000,
         'subscribe: the topic index lives as long as its last record');

    is(subscribe(id => 'C', topic => 't1', now => $n, until => $n + 5000,
                 expires => $n + 5000),
       1, 'subscribe: a record that ends sooner');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 20000,
       'subscribe: ... does not shorten the topic');
    near(R('PTTL', subs_key('t1')), 80000,
         '... nor its index');
    is(R('ZCARD', subs_key('t1')), 3, 'subscribe: 3 records in the topic');

    # max_topics

    is(subscribe(id => 'D', topic => 't2', now => $n, until => $n + 10000,
                 expires => $n + 10000, max_topics => 2),
       1, 'subscribe: a second topic, max_topics 2');
    is(subscribe(id => 'E', topic => 't3', now => $n, until => $n + 10000,
                 expires => $n + 10000, max_topics => 2),
       -3, 'subscribe: a third topic past max_topics 2: -1 - 2 topics');
    is(R('EXISTS', sub_key('E')), 0, 'subscribe: ... no record written');
    is(R('EXISTS', subs_key('t3')), 0, 'subscribe: ... no topic index');
    is(R('ZSCORE', 'cast:subs', 'E'), undef, 'subscribe: ... not indexed');
    is(R('ZSCORE', 'cast:topics', 't3'), undef,
       'subscribe: ... not counted');

    is(subscribe(id => 'F', topic => 't1', now => $n, until => $n + 10000,
                 expires => $n + 10000, max_topics => 1),
       1, 'subscribe: a counted topic is taken past max_topics');

    is(subscribe(id => 'G', topic => 't3', now => $n, until => $n + 10000,
                 expires => $n + 10000, max_topics => 1, counted => 0),
       1, 'subscribe: an uncounted record is taken past max_topics');
    is(R('ZSCORE', 'cast:topics', 't3'), undef,
       'subscribe: ... and its topic is not counted');
    is(R('ZSCORE', subs_key('t3'), 'G'), $n + 10000,
       'subscribe: ... but indexed');

    # later: t2 (until n + 10000) is no longer counted

    my $later = $n + 15000;
    is(subscribe(id => 'H', topic => 't4', now => $later,
                 until => $later + 10000, expires => $later + 10000,
                 max_topics => 2),
       1, 'subscribe: a topic whose time is up is not counted');
    is(R('ZSCORE', 'cast:topics', 't2'), undef,
       'subscribe: ... and is dropped from cast:topics');
    is(R('ZCARD', 'cast:topics'), 2, 'subscribe: t1 and t4 are counted');

    is(subscribe(id => 'I', topic => 't5', now => $n, until => $n + 10000,
                 expires => $n + 10000, bound => 1),
       1, 'subscribe: a bound record written again');
    is(R('HGET', sub_key('I'), 'bound'), '1', 'subscribe: ... is bound');
}

# subscribe.lua: max_subs (live records of the hub), per_topic (of a topic)

{
    R('FLUSHALL');
    my $n = now_ms();
    my %at = (now => $n, until => $n + 10000, expires => $n + 10000);

    is(subscribe(id => 'A', topic => 'p1', %at, per_topic => 2), 1,
       'subscribe: per_topic 2: the first');
    is(subscribe(id => 'B', topic => 'p1', %at, per_topic => 2), 1,
       'subscribe: per_topic 2: the second');
    is_deeply(subscribe(id => 'C', topic => 'p1', %at, per_topic => 2),
              ['topic', 2], 'subscribe: per_topic 2: the third: {topic, 2}');
    is(R('EXISTS', sub_key('C')), 0, 'subscribe: ... no record written');
    is(R('ZSCORE', 'cast:subs', 'C'), undef, 'subscribe: ... not indexed');
    is(subscribe(id => 'C', topic => 'p2', %at, per_topic => 2), 1,
       'subscribe: ... another topic takes it');

    is_deeply(subscribe(id => 'D', topic => 'p3', %at, max_subs => 3),
              ['subs', 3], 'subscribe: max_subs 3: the fourth: {subs, 3}');
    is(R('EXISTS', sub_key('D')), 0, 'subscribe: ... no record written');
    is(subscribe(id => 'D', topic => 'p3', %at, max_subs => 4), 1,
       'subscribe: max_subs 4: taken');

    # records whose time is up are not counted (before any sweep)

    my $later = $n + 15000;
    is(subscribe(id => 'E', topic => 'p1', now => $later,
                 until => $later + 10000, expires => $later + 10000,
                 per_topic => 1, max_subs => 1), 1,
       'subscribe: records whose time is up count for neither limit');

    is(subscribe(id => 'F', topic => 'p1', now => $later,
                 until => $later + 10000, expires => $later + 10000,
                 per_topic => 0, max_subs => 0, bound => 1), 1,
       'subscribe: 0: no limit (a bound record written again)');
}

# --- bind.lua and unbind.lua ---------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    is(bind_('A', $n, 'n1'), 0, 'bind: no record: 0');

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);

    my $r = bind_('A', $n + 1, 'n1');
    my $h = hash_of($r);
    is_deeply([@$h{qw(topic endpoint expires)}], ['t1', 'ep-A', $n + 3600000],
              'bind: the answer is the record');
    ok(!exists $h->{bound}, 'bind: ... as it was before the bind');
    is(R('HGET', sub_key('A'), 'bound'), '1', 'bind: the record is bound');
    is(R('HGET', sub_key('A'), 'binder'), 'n1', 'bind: ... by its nonce');
    is(connections(), 1, 'bind: 1 connection');
    near(R('PTTL', sub_key('A')), 3660000,
         'bind: the record is kept for the rest of its lease');
    is(R('ZSCORE', 'cast:subs', 'A'), $n + 3600000,
       'bind: indexed by its lease end');
    is(R('ZSCORE', subs_key('t1'), 'A'), $n + 3600000,
       'bind: ... in the topic index too');
    near(R('PTTL', subs_key('t1')), 3660000,
         'bind: the topic index lives as long');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 3600000,
       'bind: the topic is counted until the lease end');

    is(bind_('A', $n + 2, 'n2'), -1, 'bind: bound already: -1');
    is(connections(), 1, 'bind: ... still 1 connection');
    is(R('HGET', sub_key('A'), 'binder'), 'n1', 'bind: ... same binder');

    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    is(bind_('B', $n + 10000, 'n3'), 0,
       'bind: a record whose bind timeout is up: 0');
    is(R('HGET', sub_key('B'), 'bound'), undef, 'bind: ... not bound');

    subscribe(id => 'C', topic => 't2', now => $n, until => $n + 10000,
              expires => $n + 3600000, counted => 0);
    ok(ref bind_('C', $n, 'n4'), 'bind: an uncounted record');
    is(R('ZSCORE', 'cast:topics', 't2'), undef,
       'bind: ... its topic is not counted');
    is(connections(), 2, 'bind: 2 connections');

    R('ZREM', 'cast:subs', 'B');
    is(bind_('B', $n, 'n5'), 0, 'bind: a record that is not indexed: 0');

    # unbind

    my $unbind = sub {
        my ($id, $nonce) = @_;
        return run('unbind', { sub => sub_key($id) }, { nonce => $nonce });
    };

    is($unbind->('A', 'n0'), 0, 'unbind: another nonce: 0');
    is(R('HGET', sub_key('A'), 'bound'), '1', 'unbind: ... still bound');
    is(connections(), 2, 'unbind: ... 2 connections');

    is($unbind->('A', 'n1'), 1, 'unbind: its nonce: 1');
    is(R('HGET', sub_key('A'), 'bound'), '0', 'unbind: ... not bound');
    is(R('HEXISTS', sub_key('A'), 'binder'), 0, 'unbind: ... no binder');
    is(connections(), 1, 'unbind: ... 1 connection');

    is($unbind->('A', 'n1'), 0, 'unbind: again: 0');
    is(connections(), 1, 'unbind: ... still 1 connection');

    ok(ref bind_('A', $n + 5, 'n6'), 'unbind: the record can be bound again');
    is(connections(), 2, 'unbind: ... 2 connections');

    is($unbind->('Z', 'n1'), 0, 'unbind: no record: 0');
    is(R('EXISTS', sub_key('Z')), 0, 'unbind: ... and none is made');
}

# --- renew.lua -----------------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    my $renew = sub {
        my %o = @_;
        return run('renew',
                   { sub => sub_key($o{id}), topic_subs => subs_key($o{topic}),
                     all_subs => 'cast:subs', topics => 'cast:topics',
                     ctl_log => 'cast:ctl:log' },
                   { id => $o{id}, topic => $o{topic},
                     events => $o{events} // 'patient-open',
                     lease => $o{lease} // 60, expires => $o{expires},
                     now => $o{now}, minid => $o{now} - 60000,
                     grant => $o{grant} // 'n' });
    };

    is($renew->(id => 'A', topic => 't1', expires => $n + 60000, now => $n),
       undef, 'renew: no record: nil');
    is(R('EXISTS', sub_key('A')), 0, 'renew: ... and none is made');

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);

    is($renew->(id => 'A', topic => 't2', expires => $n + 60000, now => $n),
       undef, 'renew: a record of another topic: nil');
    is(R('HGET', sub_key('A'), 'lease'), 3600, 'renew: ... not renewed');

    is($renew->(id => 'A', topic => 't1', events => 'a,b', lease => 7200,
                expires => $n + 7200000, now => $n),
       'ep-A', 'renew: an unbound record: its endpoint');
    is_deeply(R('HMGET', sub_key('A'), 'events', 'lease', 'expires'),
              ['a,b', 7200, $n + 7200000], 'renew: ... new fields');
    near(R('PTTL', sub_key('A')), 70000,
         'renew: ... still ends with its bind timeout');
    is(R('ZSCORE', 'cast:subs', 'A'), $n + 10000,
       'renew: ... indexed as before');
    is(R('EXISTS', 'cast:ctl:log'), 0, 'renew: ... no control message');

    is($renew->(id => 'A', topic => 't1', expires => $n + 5000, now => $n),
       'ep-A', 'renew: an unbound record, lease shorter than the bind timeout');
    near(R('PTTL', sub_key('A')), 65000, 'renew: ... ends with the lease');
    is(R('ZSCORE', 'cast:subs', 'A'), $n + 5000,
       'renew: ... indexed by the lease end');
    is(R('ZSCORE', subs_key('t1'), 'A'), $n + 5000,
       'renew: ... in the topic index too');

    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 60000);
    bind_('B', $n, 'nb');

    is($renew->(id => 'B', topic => 't1', events => 'x, y', lease => 7200,
                expires => $n + 7200000, now => $n),
       'ep-B', 'renew: a bound record: its endpoint');
    near(R('PTTL', sub_key('B')), 7260000,
         'renew: ... kept for the new lease');
    is(R('ZSCORE', 'cast:subs', 'B'), $n + 7200000,
       'renew: ... indexed by the new lease end');
    is(R('ZSCORE', subs_key('t1'), 'B'), $n + 7200000,
       'renew: ... in the topic index too');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 7200000,
       'renew: ... the topic is counted as long');
    is_deeply(ctl_log(), ['renew B ' . ($n + 7200000) . ' 7200 n x, y'],
              'renew: ... "renew <id> <expires> <lease> <events>" logged');
    near(R('PTTL', 'cast:ctl:log'), 120000,
         'renew: ... the control log is kept 2 minutes');

    my $m = next_message();
    like($m // '', qr/^\d+-\d+ renew B \d+ 7200 n x, y\z/,
         'renew: ... and published on cast:ctl');
    my ($sid) = ($m // '') =~ /^(\S+)/;
    is($sid, R('XRANGE', 'cast:ctl:log', '-', '+')->[0][0],
       'renew: ... under the id of its log entry');
}

# --- remove.lua ----------------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    my $remove = sub {
        my ($id, $topic, $reason, $now) = @_;
        return run('remove',
                   { sub => sub_key($id), all_subs => 'cast:subs',
                     topics => 'cast:topics', ctl_log => 'cast:ctl:log' },
                   { id => $id, topic => $topic, reason => $reason,
                     now => $now, minid => $now - 60000 });
    };

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    bind_('B', $n, 'nb');
    subscribe(id => 'C', topic => 't2', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    R('HSET', 'cast:{t2}:state', 'v', 1, 's', '{"a":1}');

    is($remove->('Z', '', 'r', $n), undef, 'remove: no record: nil');
    is($remove->('A', 't2', 'r', $n), undef,
       'remove: a record of another topic: nil');
    is(R('EXISTS', sub_key('A')), 1, 'remove: ... it stays');

    is_deeply($remove->('A', 't1', 'unsubscribed', $n), ['ep-A', 't1', '0'],
              'remove: an unbound record: {endpoint, topic, "0"}');
    is(R('EXISTS', sub_key('A')), 0, 'remove: ... its hash is gone');
    is(R('ZSCORE', 'cast:subs', 'A'), undef, 'remove: ... not indexed');
    is(R('ZSCORE', subs_key('t1'), 'A'), undef,
       'remove: ... not in the topic index');
    ok(defined R('ZSCORE', 'cast:topics', 't1'),
       'remove: ... the topic is counted while B lives');
    is(R('EXISTS', 'cast:ctl:log'), 0, 'remove: ... no control message');

    is_deeply($remove->('B', '', 'unsubscribed', $n), ['ep-B', 't1', '1'],
              'remove: a bound record, any topic: {endpoint, topic, "1"}');
    is(connections(), 0, 'remove: ... 0 connections');
    is(R('EXISTS', subs_key('t1')), 0, 'remove: ... the topic index is gone');
    is(R('ZSCORE', 'cast:topics', 't1'), undef,
       'remove: ... the topic is not counted');
    is_deeply(ctl_log(), ['end B unsubscribed'],
              'remove: ... "end <id> <reason>" logged');
    like(next_message() // '', qr/^\d+-\d+ end B unsubscribed\z/,
         'remove: ... and published on cast:ctl');

    is($remove->('B', '', 'unsubscribed', $n), undef,
       'remove: the same record again: nil');
    is(connections(), 0, 'remove: ... still 0 connections');

    is_deeply($remove->('C', 't2', 'r', $n), ['ep-C', 't2', '0'],
              'remove: the last record of a topic with a state');
    ok(defined R('ZSCORE', 'cast:topics', 't2'),
       'remove: ... the topic is still counted');
    is(R('EXISTS', 'cast:subs'), 0, 'remove: no record is indexed');
    is_deeply([sort @{ R('KEYS', 'cast:*') }],
              ['cast:counters', 'cast:ctl:log', 'cast:topics',
               'cast:{t2}:state'],
              'remove: nothing else is left');
}

# --- remove_matching.lua -------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    my $match = sub {
        my ($topic, $field, $value, $now) = @_;
        return run('remove_matching',
                   { topic_subs => subs_key($topic), all_subs => 'cast:subs',
                     topics => 'cast:topics', ctl_log => 'cast:ctl:log' },
                   { topic => $topic, field => $field, value => $value,
                     reason => 'removed', now => $now,
                     minid => $now - 60000 });
    };

    for (['A', 't1', 'X', 'cbA'], ['B', 't1', 'X', 'cbB'],
         ['C', 't1', 'Y', 'cbC'], ['D', 't2', 'X', 'cbD'])
    {
        my ($id, $topic, $name, $cb) = @$_;
        subscribe(id => $id, topic => $topic, now => $n, until => $n + 10000,
                  expires => $n + 3600000, name => $name, callback => $cb);
    }
    bind_('B', $n, 'nb');
    R('ZADD', subs_key('t1'), $n + 10000, 'ghost');
    R('ZADD', subs_key('t1'), $n - 1, 'old');

    my $r = $match->('t1', 'name', 'X', $n);
    is(scalar @$r, 4, 'remove_matching: 2 records of name X in t1');
    is_deeply(hash_of($r), { A => '0', B => '1' },
              'remove_matching: ... {id, bound, ...}');
    is(R('EXISTS', sub_key('A')) + R('EXISTS', sub_key('B')), 0,
       'remove_matching: ... gone');
    is(R('EXISTS', sub_key('D')), 1,
       'remove_matching: a record of another topic stays');
    is_deeply(R('ZRANGE', subs_key('t1'), 0, -1), ['C'],
              'remove_matching: the topic index keeps C only (a member '
              . 'without record and one whose time is up are dropped)');
    is_deeply([sort @{ R('ZRANGE', 'cast:subs', 0, -1) }], ['C', 'D'],
              'remove_matching: all records: C and D');
    is(connections(), 0, 'remove_matching: 0 connections');
    is_deeply(ctl_log(), ['end B removed'],
              'remove_matching: the bound one is told');
    like(next_message() // '', qr/^\d+-\d+ end B removed\z/,
         'remove_matching: ... on cast:ctl');

    is_deeply($match->('t1', 'callback', 'cbC', $n), ['C', '0'],
              'remove_matching: by callback');
    is(R('EXISTS', subs_key('t1')), 0,
       'remove_matching: ... the topic index is gone');
    is(R('ZSCORE', 'cast:topics', 't1'), undef,
       'remove_matching: ... the topic is not counted');

    is_deeply($match->('t2', 'name', 'nobody', $n), [],
              'remove_matching: no match: {}');
    is(R('EXISTS', sub_key('D')), 1, 'remove_matching: ... D stays');
}

# --- reset.lua -----------------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    my $reset = sub {
        my $now = shift;
        return run('reset',
                   { all_subs => 'cast:subs', topics => 'cast:topics',
                     ctl_log => 'cast:ctl:log' },
                   { reason => 'reset', now => $now, minid => $now - 60000 });
    };

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    bind_('B', $n, 'nb');
    subscribe(id => 'C', topic => 't2', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    R('ZADD', 'cast:subs', $n + 10000, 'ghost');

    my $r = $reset->($n);
    my %got;
    for (my $i = 0; $i + 2 < @$r; $i += 3) {
        $got{ $r->[$i] } = [ $r->[$i + 1], $r->[$i + 2] ];
    }
    is(scalar @$r, 9, 'reset: 3 records');
    is_deeply(\%got, { A => ['t1', '0'], B => ['t1', '1'], C => ['t2', '0'] },
              'reset: ... {id, topic, bound, ...}');
    is_deeply([sort @{ R('KEYS', 'cast:*') }],
              ['cast:counters', 'cast:ctl:log'],
              'reset: no record, index or topic is left');
    is(connections(), 0, 'reset: 0 connections');
    is_deeply(ctl_log(), ['end B reset'], 'reset: the bound one is told');
    like(next_message() // '', qr/^\d+-\d+ end B reset\z/,
         'reset: ... on cast:ctl');
    is_deeply($reset->($n), [], 'reset: again: {}');
}

# --- append.lua ----------------------------------------------------------

my %AppendDefaults = (topic => 't1', version => '0', state_text => '',
                      max_topics => 100, counted => 1,
                      state_ttl => 86400000, log_ttl => 120000,
                      ids_keep => 300000, writer => 'w1', claim => 0,
                      turn_ms => 50);

my %EventDefaults = (op => 'keep', name => 'patient-open',
                     json => '{"a":1}', event_id => '');

# a batch: events => [{op, name, json, event_id}, ...]; the raw answer

sub append_batch {
    my %o = (%AppendDefaults, @_);
    my $t = $o{topic};
    my @more = map { my %e = (%EventDefaults, %$_);
                     @e{qw(op name json event_id)} } @{ $o{events} };
    return run('append',
               { state => "cast:{$t}:state", log => "cast:{$t}:log",
                 topics => 'cast:topics', ids => "cast:{$t}:ids",
                 turn => "cast:{$t}:turn" },
               { map({ $_ => $o{$_} } keys %AppendDefaults),
                 now => $o{now}, minid => $o{now} - 60000,
                 channel => "cast:ev:$t" },
               @more);
}

# one event: its result ({1, id}, {2}...), or the batch's {0, v, s}

sub append {
    my %o = @_;
    my %e;
    for my $f (keys %EventDefaults) {
        $e{$f} = delete $o{$f} if exists $o{$f};
    }
    my $r = append_batch(%o, events => [\%e]);
    return $r if $r->[0] != 1;
    is(scalar @$r, 3, 'append: one event, one result') if @$r != 3;
    return $r->[2];
}

sub events_in { R('HGET', 'cast:counters', 'events_in') // 0 }

{
    R('FLUSHALL');
    my $n = now_ms();

    my $r = append(now => $n);
    is($r->[0], 1, 'append: version 0 of a new topic: {1, id}');
    like($r->[1], qr/^\d+-\d+\z/, 'append: ... a stream id');
    my $log = R('XRANGE', 'cast:{t1}:log', '-', '+');
    is_deeply($log, [[$r->[1], ['n', 'patient-open', 'j', '{"a":1}']]],
              'append: ... logged under that id: n, j');
    near(R('PTTL', 'cast:{t1}:log'), 120000, 'append: ... the log expires');
    is(events_in(), 1, 'append: ... events_in 1');
    is(R('EXISTS', 'cast:{t1}:state'), 0, 'append: keep: no state');
    is(R('ZSCORE', 'cast:topics', 't1'), undef,
       'append: keep: the topic is not counted');
    is(next_message(), "$r->[1] 12:patient-open{\"a\":1}",
       'append: published as "<id> <n>:<name><json>"');

    is_deeply(append(now => $n, version => '1'), ['0', '0', ''],
              'append: version 1 of a topic without state: {0, "0", ""}');
    is(R('XLEN', 'cast:{t1}:log'), 1, 'append: ... nothing logged');
    is(events_in(), 1, 'append: ... events_in 1');

    $r = append(now => $n, op => 'set', state_text => '{"s":1}');
    is($r->[0], 1, 'append: set at version 0: {1, id}');
    is_deeply(hash_of(R('HGETALL', 'cast:{t1}:state')),
              { v => 1, s => '{"s":1}' }, 'append: ... state at version 1');
    near(R('PTTL', 'cast:{t1}:state'), 86400000,
         'append: ... the state expires after state_ttl');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 86400000,
       'append: ... the topic is counted as long');
    near(R('PTTL', 'cast:topics'), 86400000,
         'append: ... and cast:topics lives as long');
    is(wire_event(next_message())->[0], $r->[1],
       'append: ... published under its id');

    is_deeply(append(now => $n, version => '0', op => 'set',
                     state_text => '{"s":2}'),
              [0, '1', '{"s":1}'],
              'append: a stale version: {0, version, state}');
    is(R('HGET', 'cast:{t1}:state', 's'), '{"s":1}',
       'append: ... the state is unchanged');
    is(R('XLEN', 'cast:{t1}:log'), 2, 'append: ... nothing logged');

    is(append(now => $n, version => '1', op => 'keep')->[0], 1,
       'append: keep at version 1');
    is(R('HGET', 'cast:{t1}:state', 'v'), '1', 'append: ... still version 1');
    next_message();

    is(append(now => $n, version => '1', op => 'set',
              state_text => '{"s":3}')->[0], 1, 'append: set at version 1');
    is_deeply(R('HMGET', 'cast:{t1}:state', 'v', 's'), ['2', '{"s":3}'],
              'append: ... version 2');
    next_message();

    is(append(now => $n, version => '2', op => 'clear')->[0], 1,
       'append: clear');
    is(R('EXISTS', 'cast:{t1}:state'), 0, 'append: ... no state');
    is(R('ZSCORE', 'cast:topics', 't1'), undef,
       'append: ... the topic (no records) is not counted');
    is(events_in(), 5, 'append: 5 events in');
    next_message();

    # names the length prefix carries

    for (["a:b c\nd", 'a name with ":", " " and a newline'],
         ["5:x", 'a name that looks like a length'],
         ["\xc3\xa9v\xc3\xa9nement", 'a UTF-8 name (bytes are counted)'],
         ['', 'an empty name'])
    {
        my ($name, $what) = @$_;
        my $json = '{"k":"v: 1 2"}';
        $r = append(now => $n, name => $name, json => $json);
        my $m = next_message();
        my $e = wire_event($m);
        is_deeply($e, [$r->[1], $name, $json],
                  "append: $what: published as given")
            or diag(explain($m));
    }
}

# the retry dedupe

{
    R('FLUSHALL');
    my $n = now_ms();

    my $r = append(now => $n, name => 'n1', event_id => 'e1');
    is($r->[0], 1, 'append dedupe: an event with an id: {1, id}');
    is(R('ZSCORE', 'cast:{t1}:ids', '2:n1e1'), $n,
       'append dedupe: ... remembered by name (length-prefixed) and id');
    near(R('PTTL', 'cast:{t1}:ids'), 300000,
         'append dedupe: ... for ids_keep');
    next_message();

    is_deeply(append(now => $n + 1000, name => 'n1', event_id => 'e1'), [2],
              'append dedupe: the same name and id again: {2}');
    is_deeply(append(now => $n + 1000, name => 'n1', event_id => 'e1',
                     op => 'set', state_text => '{}'),
              [2], 'append dedupe: ... whatever the op');
    is_deeply(append(now => $n + 1000, name => 'n1', event_id => 'e1',
                     version => '7'),
              [0, '0', ''], 'append dedupe: ... after the version check');
    is(R('EXISTS', 'cast:{t1}:state'), 0, 'append dedupe: ... no state set');
    is(R('XLEN', 'cast:{t1}:log'), 1, 'append dedupe: ... logged once');
    is(events_in(), 1, 'append dedupe: ... events_in 1');

    $r = append(now => $n + 2000, name => 'n2', event_id => 'e1');
    is($r->[0], 1, 'append dedupe: the same id, another name: appended');
    is(wire_event(next_message())->[0], $r->[1],
       'append dedupe: ... the next message published (none for the retries)');
    is(append(now => $n + 2000, name => 'n1', event_id => 'e2')->[0], 1,
       'append dedupe: the same name, another id: appended');
    next_message();
    is(append(now => $n + 2000, name => 'n1', event_id => '')->[0], 1,
       'append dedupe: no id: appended');
    is(append(now => $n + 2000, name => 'n1', event_id => '')->[0], 1,
       'append dedupe: no id again: appended again');
    next_message() for 1 .. 2;
    is(R('ZCARD', 'cast:{t1}:ids'), 3, 'append dedupe: 3 (name, id) kept');

    is(append(now => $n + 1000, topic => 't2', name => 'n1',
              event_id => 'e1')->[0], 1,
       'append dedupe: the same name and id on another topic: appended');

    # an entry older than ids_keep is dropped by the next append with an id
    $r = append(now => $n + 300001, name => 'n3', event_id => 'e3');
    is(R('ZSCORE', 'cast:{t1}:ids', '2:n1e1'), undef,
       'append dedupe: an entry older than ids_keep is dropped');
    is(append(now => $n + 300002, name => 'n1', event_id => 'e1')->[0], 1,
       'append dedupe: ... and its event is taken again');
    next_message() for 1 .. 2;
}

# the dedupe window is ids_keep, as in local mode (store_local.c: taken
# once while now - at < ids_keep), whether or not another event with an id
# came between; a name and an id are told apart whatever bytes they hold

{
    R('FLUSHALL');
    my $n = now_ms();

    is(append(now => $n, name => 'n1', event_id => 'e1')->[0], 1,
       'append window: an event with an id');
    is_deeply(append(now => $n + 299999, name => 'n1', event_id => 'e1'),
              [2], 'append window: again 1 ms before ids_keep: {2}');
    is(append(now => $n + 300000, name => 'n1', event_id => 'e1')->[0], 1,
       'append window: again at ids_keep, no append between: appended');
    is_deeply(append(now => $n + 300001, name => 'n1', event_id => 'e1'),
              [2], 'append window: ... and remembered from then on');
    next_message() for 1 .. 2;

    is(append(now => $n, name => 'a b', event_id => 'c')->[0], 1,
       'append ids: name "a b", id "c"');
    is(append(now => $n, name => 'a', event_id => 'b c')->[0], 1,
       'append ids: name "a", id "b c": another event, appended');
    is(append(now => $n, name => 'x:', event_id => 'y')->[0], 1,
       'append ids: name "x:", id "y"');
    is(append(now => $n, name => 'x', event_id => ':y')->[0], 1,
       'append ids: name "x", id ":y": another event, appended');
    is_deeply(append(now => $n, name => 'a', event_id => 'b c'), [2],
              'append ids: name "a", id "b c" again: {2}');
    is(R('ZCARD', 'cast:{t1}:ids'), 5, 'append ids: 5 (name, id) kept');
    next_message() for 1 .. 4;
}

# max_topics

{
    R('FLUSHALL');
    my $n = now_ms();

    R('ZADD', 'cast:topics', $n + 60000, 'ta', $n + 60000, 'tb', $n - 1,
      'tc');

    is_deeply(append(now => $n, max_topics => 2, event_id => 'e1'), [-1, 2],
              'append: a new topic past max_topics 2: {-1, 2}');
    is(R('EXISTS', 'cast:{t1}:log'), 0, 'append: ... nothing logged');
    is(R('EXISTS', 'cast:{t1}:ids'), 0, 'append: ... the id not kept');
    is(events_in(), 0, 'append: ... events_in 0');
    is_deeply(append(now => $n, max_topics => 2, op => 'set',
                     state_text => '{}'),
              [-1, 2], 'append: ... with a state to set too');
    is(R('EXISTS', 'cast:{t1}:state'), 0, 'append: ... no state');

    is_deeply(append(now => $n, max_topics => 2, version => '3'),
              [0, '0', ''], 'append: the version is checked first');

    is(append(now => $n, max_topics => 2, counted => 0)->[0], 1,
       'append: an uncounted topic past max_topics: appended');
    is(append(now => $n, max_topics => 2, topic => 'ta')->[0], 1,
       'append: a counted topic past max_topics: appended');
    is(R('ZSCORE', 'cast:topics', 'tc'), undef,
       'append: ... a topic whose time is up is dropped from cast:topics');
    is(append(now => $n, max_topics => 3, op => 'set',
              state_text => '{"a":1}')->[0], 1,
       'append: a third topic, max_topics 3: appended');
    is(R('ZCARD', 'cast:topics'), 3, 'append: ... 3 topics counted');
    is_deeply(append(now => $n, max_topics => 3, topic => 'td'), [-1, 3],
              'append: a fourth: {-1, 3}');
    next_message() for 1 .. 2;
}

# batches: the events in order, one script call

{
    R('FLUSHALL');
    my $n = now_ms();

    my $r = append_batch(now => $n, state_text => '{"s":3}', events => [
        { name => 'e1', event_id => 'a' },
        { op => 'set', name => 'e2', json => '{"b":2}' },
        { op => 'set', name => 'e3', event_id => 'c' },
        { name => 'e4' }]);
    is(scalar @$r, 6, 'append batch: 4 events: {1, version, 4 results}');
    is($r->[0], 1, 'append batch: ... went');
    is($r->[1], '2', 'append batch: ... version 2 (two sets)');
    is_deeply([map { $_->[0] } @$r[2 .. 5]], [1, 1, 1, 1],
              'append batch: ... each appended');
    my @ids = map { $_->[1] } @$r[2 .. 5];
    is_deeply([map { $_->[0] } @{ R('XRANGE', 'cast:{t1}:log', '-', '+') }],
              \@ids, 'append batch: ... logged in order under their ids');
    is_deeply([map { my $e = wire_event(next_message()); "$e->[0] $e->[1]" }
               1 .. 4],
              [map { "$ids[$_] e" . ($_ + 1) } 0 .. 3],
              'append batch: ... published in order');
    is_deeply(R('HMGET', 'cast:{t1}:state', 'v', 's'), ['2', '{"s":3}'],
              'append batch: ... the state given, at version 2');
    is(R('ZSCORE', 'cast:topics', 't1'), $n + 86400000,
       'append batch: ... the topic counted');
    is(events_in(), 4, 'append batch: ... events_in 4');
    is(R('ZCARD', 'cast:{t1}:ids'), 2, 'append batch: ... 2 ids kept');

    $r = append_batch(now => $n, version => '2', events => [
        { name => 'r1' }, { op => 'refuse', name => 'r2' },
        { name => 'r3', event_id => 'x' }, { name => 'r3', event_id => 'x' },
        { name => 'e1', event_id => 'a' }]);
    is_deeply([map { $_->[0] } @$r[2 .. 6]], [1, 3, 1, 2, 2],
              'append batch: refused, twice in one batch, seen before: '
              . '{3}, {2}, {2}');
    is($r->[1], '2', 'append batch: ... no set: version 2');
    is(R('XLEN', 'cast:{t1}:log'), 6, 'append batch: ... 2 more logged');
    is(events_in(), 6, 'append batch: ... events_in 6');
    next_message() for 1 .. 2;

    is_deeply(append_batch(now => $n, version => '1', events => [
                  { name => 'z1' }, { op => 'set', name => 'z2' }]),
              [0, '2', '{"s":3}'],
              'append batch: a stale version: {0, version, state}');

    # a set that will not be (seen before): the states after it are wrong

    is_deeply(append_batch(now => $n, version => '2', state_text => '{}',
                           events => [
                  { name => 'y1', event_id => 'y' },
                  { op => 'set', name => 'e3', event_id => 'c' },
                  { name => 'y3' }]),
              [5, 1], 'append batch: a set seen before as second: {5, 1}');
    is(R('XLEN', 'cast:{t1}:log'), 6, 'append batch: ... nothing logged');
    is(R('ZSCORE', 'cast:{t1}:ids', '2:y1y'), undef,
       'append batch: ... no id kept');
    is_deeply(append_batch(now => $n, version => '2', state_text => '{}',
                           events => [
                  { op => 'set', name => 'e3', event_id => 'c' },
                  { name => 'y2' }, { op => 'set', name => 'y3' }]),
              [1, '2', [2], [0], [0]],
              'append batch: ... as first: {2}, the others not tried');
    is(R('XLEN', 'cast:{t1}:log'), 6, 'append batch: ... nothing logged');
    is_deeply(R('HMGET', 'cast:{t1}:state', 'v', 's'), ['2', '{"s":3}'],
              'append batch: ... the state unchanged');

    # a clear only last

    is_deeply(append_batch(now => $n, version => '2', events => [
                  { op => 'set' }, { op => 'clear' }, { name => 'k' }]),
              [5, 2], 'append batch: a clear before the last: {5, 2}');
    $r = append_batch(now => $n, version => '2', state_text => '{"s":4}',
                      events => [{ op => 'set' }, { op => 'clear' }]);
    is_deeply([$r->[0], $r->[1], map { $_->[0] } @$r[2 .. 3]],
              [1, '0', 1, 1], 'append batch: a set, then a clear');
    is(R('EXISTS', 'cast:{t1}:state'), 0, 'append batch: ... no state');
    is(R('ZSCORE', 'cast:topics', 't1'), undef,
       'append batch: ... the topic not counted');
    next_message() for 1 .. 2;
    is(events_in(), 8, 'append batch: ... events_in 8');

    # max_topics: a keep goes on, a set stops the batch

    R('ZADD', 'cast:topics', $n + 60000, 'ta');
    is_deeply(append_batch(now => $n, max_topics => 1, events => [
                  { name => 'f1' }, { name => 'f2' }]),
              [1, '0', [-1, 1], [-1, 1]],
              'append batch: past max_topics: each {-1, topics}');
    is_deeply(append_batch(now => $n, max_topics => 1, state_text => '{}',
                           events => [
                  { op => 'set', name => 'f1' }, { name => 'f2' }]),
              [1, '0', [-1, 1], [0]],
              'append batch: ... a set first: the others not tried');
    is_deeply(append_batch(now => $n, max_topics => 2, state_text => '{}',
                           events => [
                  { op => 'set', name => 'f1' }, { name => 'f2' }])->[1],
              '1', 'append batch: under max_topics: the set counts it');
    is(R('XLEN', 'cast:{t1}:log'), 10, 'append batch: ... 2 logged');
    next_message() for 1 .. 2;
}

# turns: a writer computed again too often claims the next one

{
    R('FLUSHALL');
    my $n = now_ms();

    is(append(now => $n, op => 'set', state_text => '{"s":1}')->[0], 1,
       'append turn: version 1');
    next_message();
    is_deeply(append_batch(now => $n, version => '0', writer => 'w2',
                           events => [{}]),
              [0, '1', '{"s":1}'],
              'append turn: stale, no claim: {0, version, state}');
    is(R('EXISTS', 'cast:{t1}:turn'), 0, 'append turn: ... no turn');
    is_deeply(append_batch(now => $n, version => '0', writer => 'w2',
                           claim => 1, events => [{}]),
              [0, '1', '{"s":1}'], 'append turn: stale, a claim: {0, ...}');
    is(R('GET', 'cast:{t1}:turn'), 'w2', 'append turn: ... w2 has the turn');
    my $ttl = R('PTTL', 'cast:{t1}:turn');
    ok($ttl > 0 && $ttl <= 50, "append turn: ... for turn_ms ($ttl ms)");
    is_deeply(append_batch(now => $n, version => '1', events => [{}]), [6],
              'append turn: another writer, current: {6}');
    is(R('XLEN', 'cast:{t1}:log'), 1, 'append turn: ... nothing logged');
    is_deeply(append_batch(now => $n, version => '0', claim => 1,
                           events => [{}]),
              [0, '1', '{"s":1}'],
              'append turn: another writer, stale: {0, ...}');
    is(R('GET', 'cast:{t1}:turn'), 'w2',
       'append turn: ... its claim does not take the turn');
    my $r = append_batch(now => $n, version => '1', writer => 'w2',
                         state_text => '{"s":2}',
                         events => [{ op => 'set' }]);
    is_deeply([$r->[0], $r->[1], $r->[2][0]], [1, '2', 1],
              'append turn: the writer whose turn it is: appended');
    is(R('EXISTS', 'cast:{t1}:turn'), 0, 'append turn: ... the turn ends');
    next_message();
    is(append(now => $n, version => '2')->[0], 1,
       'append turn: ... the others go again');
    next_message();
}

# --- sweep.lua -----------------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    my $sweep = sub {
        my ($now, $max) = @_;
        return run('sweep',
                   { all_subs => 'cast:subs', topics => 'cast:topics',
                     ctl_log => 'cast:ctl:log' },
                   { now => $now, max => $max, minid => $now - 60000 });
    };

    # A: unbound, bind timeout up, lease not; B: bound, lease up;
    # C: unbound, lease up before the bind timeout; D: not due

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 3600000);
    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 20000);
    bind_('B', $n, 'nb');
    subscribe(id => 'C', topic => 't2', now => $n, until => $n + 15000,
              expires => $n + 15000);
    subscribe(id => 'D', topic => 't2', now => $n, until => $n + 100000,
              expires => $n + 100000);
    R('ZADD', 'cast:subs', $n + 1, 'ghost');

    is_deeply($sweep->($n + 5000, 100), [], 'sweep: no record due: {}');
    is(R('ZSCORE', 'cast:subs', 'ghost'), undef,
       'sweep: ... a due member without record is dropped');

    my $r = $sweep->($n + 30000, 100);
    my %got;
    for (my $i = 0; $i + 3 < @$r; $i += 4) {
        $got{ $r->[$i] } = [ @$r[$i + 1 .. $i + 3] ];
    }
    is(scalar @$r, 12, 'sweep: 3 records due');
    is_deeply(\%got,
              { A => ['t1', '0', 'no socket was bound in time'],
                B => ['t1', '1', 'lease expired'],
                C => ['t2', '0', 'lease expired'] },
              'sweep: ... {id, topic, bound, reason, ...}');
    is(R('EXISTS', sub_key('A')) + R('EXISTS', sub_key('B'))
       + R('EXISTS', sub_key('C')), 0, 'sweep: ... their hashes are gone');
    is_deeply(R('ZRANGE', 'cast:subs', 0, -1), ['D'],
              'sweep: ... D is left');
    is(R('EXISTS', subs_key('t1')), 0, 'sweep: ... t1 has no index');
    is_deeply(R('ZRANGE', subs_key('t2'), 0, -1), ['D'],
              'sweep: ... t2 has D');
    is(connections(), 0, 'sweep: ... 0 connections');
    is_deeply(ctl_log(), ['end B lease expired'],
              'sweep: ... the bound one is told');
    like(next_message() // '', qr/^\d+-\d+ end B lease expired\z/,
         'sweep: ... on cast:ctl');

    is_deeply($sweep->($n + 30000, 100), [], 'sweep: again: {}');

    # at most "max" at a time

    R('FLUSHALL');
    for my $id (qw(E F G)) {
        subscribe(id => $id, topic => 't3', now => $n, until => $n + 10000,
                  expires => $n + 10000);
    }
    is(scalar @{ $sweep->($n + 30000, 2) }, 8, 'sweep: max 2: 2 records');
    is(R('ZCARD', 'cast:subs'), 1, 'sweep: ... 1 left');
    is(scalar @{ $sweep->($n + 30000, 2) }, 4, 'sweep: then the last');
    is_deeply(R('KEYS', 'cast:*'), [], 'sweep: nothing is left')
        or diag(explain(R('KEYS', 'cast:*')));
}

# --- epoch.lua -----------------------------------------------------------

{
    R('FLUSHALL');
    my $epoch = sub {
        run('epoch', { epoch => 'cast:epoch' }, { candidate => $_[0] });
    };

    is($epoch->('c1'), 'c1', 'epoch: the first candidate is taken');
    is(R('GET', 'cast:epoch'), 'c1', 'epoch: ... and kept');
    is(R('PTTL', 'cast:epoch'), -1, 'epoch: ... without expiry');
    is($epoch->('c2'), 'c1', 'epoch: a later candidate gets the first');
    R('FLUSHALL');
    is($epoch->('c3'), 'c3', 'epoch: after a flush, a new one');
}

# --- status.lua ----------------------------------------------------------

{
    R('FLUSHALL');
    my $n = now_ms();

    my $status = sub {
        my ($oldest, $now) = @_;
        return run('status',
                   { stats => 'cast:stats', all_subs => 'cast:subs',
                     topics => 'cast:topics' },
                   { oldest => $oldest, now => $now });
    };

    is_deeply($status->($n - 10000, $n), [0, 0, 0, 0],
              'status: an empty data set: {0, 0, 0, 0}');

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 10000);
    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 5000,
              expires => $n + 5000);
    R('ZADD', 'cast:topics', $n - 1, 'tx');
    R('HSET', 'cast:counters', 'connections', 3, 'events_in', 7);
    R('HSET', 'cast:stats', 'w1', ($n + 5000) . ' {"w":1}',
      'w2', ($n - 100000) . ' {"w":2}', 'w3', 'garbage', 'w4',
      ($n - 10000) . ' {"w":4}');

    my $r = $status->($n - 10000, $n + 6000);
    is_deeply([@$r[0 .. 3]], [1, 1, 3, 7],
              'status: {records (A; B is due), topics, sockets, events in}');
    is_deeply([sort @$r[4 .. $#$r]], ['{"w":1}', '{"w":4}'],
              'status: ... the reports from "oldest" on');
    is_deeply([sort @{ R('HKEYS', 'cast:stats') }], ['w1', 'w4'],
              'status: ... an older report and a malformed one are removed');
    is(R('ZSCORE', 'cast:topics', 'tx'), undef,
       'status: ... a topic whose time is up is dropped');
    is(R('ZCARD', 'cast:subs'), 2, 'status: ... records are left to the '
       . 'sweep');
}

# --- records.lua ---------------------------------------------------------

our $RecordsHeader = 0;

{
    R('FLUSHALL');
    my $n = now_ms();
    my @fields = qw(topic events name product_name actors client_info bound);

    my $records = sub {
        my ($keys, $max, $now) = @_;
        my $s = $Script{records};
        is($s->{A}{now} . ',' . $s->{A}{max} . ',' . $s->{nkeys}, '0,1,1',
           'records: ARGV now, max, then the fields; one KEY named')
            if !$main::RecordsHeader++;
        my $r = R('EVAL', $s->{text}, scalar @$keys, @$keys, $now // $n,
                  $max, @fields);
        die "records: $$r\n" if ref $r eq 'CastRedis::Error';
        my @out;
        while (@$r) {
            my ($id, @v) = splice @$r, 0, 1 + @fields;
            push @out, [$id, @v];
        }
        return \@out;
    };

    subscribe(id => 'A', topic => 't1', now => $n, until => $n + 10000,
              expires => $n + 10000, name => 'app-a', bound => 1);
    subscribe(id => 'B', topic => 't1', now => $n, until => $n + 5000,
              expires => $n + 5000, name => 'app-b');
    subscribe(id => 'S', topic => '*', now => $n, until => $n + 10000,
              expires => $n + 10000, name => 'star', counted => 0);
    subscribe(id => 'C', topic => 't2', now => $n, until => $n + 10000,
              expires => $n + 10000, name => 'app-c');

    my $r = $records->([subs_key('t1'), subs_key('*')], 100);
    is(join(',', map { $_->[0] } @$r), 'B,A,S',
       'records: a topic\'s and "*"\'s, by index order');
    is_deeply($r->[1], ['A', 't1', 'patient-open', 'app-a', '', '', '', 1],
              'records: the fields asked for, in their order');
    ok(!defined $r->[0][7], 'records: a missing field is nil (B not bound)');

    $r = $records->([subs_key('t1'), subs_key('*')], 100, $n + 6000);
    is(join(',', map { $_->[0] } @$r), 'A,S',
       'records: a record whose time is up is left out');

    $r = $records->(['cast:subs'], 2);
    is(scalar @$r, 2, 'records: at most "max" in all');
    $r = $records->([subs_key('t1'), subs_key('*')], 1);
    is(join(',', map { $_->[0] } @$r), 'B',
       'records: "max" counts across the indexes');

    R('DEL', sub_key('C'));
    $r = $records->(['cast:subs'], 100);
    is(join(',', sort map { $_->[0] } @$r), 'A,B,S',
       'records: an id whose record is gone is left out');
    is(scalar @{ $records->([subs_key('none')], 100) }, 0,
       'records: an empty index');
}

# append.lua: state_ttl 0 (the hub's own state, kept until it is cleared)

{
    R('FLUSHALL');
    my $n = now_ms();
    my %o = (topic => 'tz', now => $n, op => 'set', counted => 0);

    is(append(%o, version => '0', state_text => '{"s":1}')->[0], 1,
       'append: a state with a state_ttl');
    near(R('PTTL', 'cast:{tz}:state'), 86400000, 'append: ... expires');
    is(append(%o, version => '1', state_text => '{"s":2}', state_ttl => 0)
           ->[0], 1, 'append: state_ttl 0: set');
    is(R('PTTL', 'cast:{tz}:state'), -1,
       'append: ... the state does not expire');
    is(R('HGET', 'cast:{tz}:state', 's'), '{"s":2}', 'append: ... is set');
    is(append(%o, version => '2', state_text => '{"s":3}')->[0], 1,
       'append: a state_ttl again');
    near(R('PTTL', 'cast:{tz}:state'), 86400000,
         'append: ... the state expires again');
}

$Sub->close;
$R->close;

done_testing();
