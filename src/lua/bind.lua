-- A socket binds a record: it is kept for the rest of its lease.
-- Returns the record (HGETALL), 0 when there is none, -1 when it has a
-- socket already.
-- "nonce" names this bind: a worker that was not told the answer (a
-- timeout) undoes it with unbind.lua.
-- KEYS: sub all_subs topics
-- ARGV: id now nonce

local h = redis.call('HGETALL', sub)

if #h == 0 then
    return 0
end

local rec = {}
for i = 1, #h, 2 do
    rec[h[i]] = h[i + 1]
end

-- its time is up (the sweep has not ended it yet)
local due = redis.call('ZSCORE', all_subs, id)
if not due or tonumber(due) <= tonumber(now) then
    return 0
end

if rec.bound == '1' then
    return -1
end

redis.call('HSET', sub, 'bound', '1', 'binder', nonce)
redis.call('HINCRBY', 'cast:counters', 'connections', 1)
redis.call('PEXPIREAT', sub, tonumber(rec.expires) + grace)
cast_index(all_subs, id, rec.expires)
cast_index(cast_topic_subs(rec.topic), id, rec.expires)
if rec.counted == '1' then
    cast_topic_extend(topics, rec.topic, rec.expires)
end

return h
