-- Undoes a bind: one whose answer did not reach its worker (the client
-- was told it failed; "nonce" names it), or any (nonce ''), when the
-- socket's worker exits.  The record can be bound again.  Returns 1 if
-- undone.
-- KEYS: sub
-- ARGV: nonce

local h = redis.call('HMGET', sub, 'bound', 'binder')

if h[1] ~= '1' or (nonce ~= '' and h[2] ~= nonce) then
    return 0
end

redis.call('HSET', sub, 'bound', '0')
redis.call('HDEL', sub, 'binder')
redis.call('HINCRBY', 'cast:counters', 'connections', -1)

return 1
