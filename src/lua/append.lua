-- An event into a log (its topic's, or the one the worker sends it to),
-- with the topic's new state, if the state is still at "version"; else
-- {0, version, state} for the worker to compute again.  {-1, topics}
-- when the topic is new and max_topics are kept.  {1, stream id} when
-- appended: the event is published as "<stream id> <name length>:<name><json>".
-- op: 'keep' (state unchanged), 'set' (state_text), 'clear'; 'refuse':
-- {3} when the state is still at "version" (nothing is appended).
-- An event whose id and name were appended to the topic in the last
-- "ids_keep" ms is not appended again: {2} (a publisher retrying after a
-- 503 whose command had run after all).
-- A state is kept "state_ttl" ms after its last change; with 0, until
-- the worker clears it (the hub's own).
-- KEYS: state log topics ids
-- ARGV: topic version op state_text name json now max_topics counted state_ttl minid log_ttl channel event_id ids_keep

-- name and id, the name length-prefixed: an event name may hold spaces
-- and an id any byte, so no separator can tell them apart
local seen = #name .. ':' .. name .. event_id

if event_id ~= '' then
    -- appended when?  (an older entry waits for the next append's cleanup)
    local at = redis.call('ZSCORE', ids, seen)
    if at and tonumber(at) > tonumber(now) - tonumber(ids_keep) then
        return {2}
    end
end

local have = redis.call('HMGET', state, 'v', 's')
local v = have[1] or '0'

if v ~= version then
    return {0, v, have[2] or ''}
end

-- the worker refused the event on the state at "version": it stands
if op == 'refuse' then
    return {3}
end

if counted == '1' and not cast_topic_live(topics, topic, now) then
    local n = redis.call('ZCOUNT', topics, '(' .. now, '+inf')
    if n >= tonumber(max_topics) then
        return {-1, n}
    end
end

-- the first write may be refused when Redis is out of memory
local id = redis.call('XADD', log, 'MINID', '~', minid, '*',
                      'n', name, 'j', json)
redis.call('PEXPIRE', log, log_ttl)
redis.call('ZREMRANGEBYSCORE', topics, '-inf', now)

if event_id ~= '' then
    redis.call('ZADD', ids, now, seen)
    redis.call('ZREMRANGEBYSCORE', ids, '-inf', tonumber(now) - ids_keep)
    redis.call('PEXPIRE', ids, ids_keep)
end

if op == 'set' then
    redis.call('HSET', state, 'v', tonumber(v) + 1, 's', state_text)
    if state_ttl == '0' then
        -- the hub's own state: it ends it
        redis.call('PERSIST', state)
    else
        redis.call('PEXPIRE', state, state_ttl)
    end
    if counted == '1' then
        cast_topic_extend(topics, topic, tonumber(now) + tonumber(state_ttl))
    end
elseif op == 'clear' then
    redis.call('DEL', state)
    cast_topic_settle(topics, topic, now)
end

redis.call('HINCRBY', 'cast:counters', 'events_in', 1)
redis.call('PUBLISH', channel, id .. ' ' .. #name .. ':' .. name .. json)

return {1, id}
