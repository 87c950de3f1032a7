-- Undoes a bind whose answer did not reach its worker (the client was
-- told it failed): the record can be bound again.  Returns 1 if undone.
-- KEYS: sub
-- ARGV: nonce

if redis.call('HGET', sub, 'binder') ~= nonce then
    return 0
end

redis.call('HSET', sub, 'bound', '0')
redis.call('HINCRBY', 'cast:counters', 'connections', -1)
redis.call('HDEL', sub, 'binder')

return 1
