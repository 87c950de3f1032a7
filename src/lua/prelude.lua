-- Shared by every script (prepended at build time).  Nothing here knows
-- Cast or FHIRcast: records, indexes, a topic's versioned state and
-- ordered log, and control messages for the workers.

-- records are ended by the workers' sweep (sweep.lua) when their time is
-- up; Redis expires them this much later (ms), should no worker sweep
local grace = 60000

-- a control message: kept a while in the control log (for workers whose
-- pub/sub connection was lost) and published; payload "<id> <text>"
local function cast_control(ctl_log, minid, text)
    local id = redis.call('XADD', ctl_log, 'MINID', '~', minid, '*',
                          'm', text)
    redis.call('PEXPIRE', ctl_log, 120000)
    redis.call('PUBLISH', 'cast:ctl', id .. ' ' .. text)
end

-- an id in a record index, scored by when the record's time is up; the
-- index itself expires with its last record
local function cast_index(index, id, expires)
    redis.call('ZADD', index, expires, id)
    local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', index, tonumber(last[2]) + grace)
end

-- the key of a topic's record index
local function cast_topic_subs(topic)
    return 'cast:{' .. topic .. '}:subs'
end

-- a topic is counted while it has live records or a state
local function cast_topic_settle(topics, topic, now)
    local subs = cast_topic_subs(topic)
    redis.call('ZREMRANGEBYSCORE', subs, '-inf', now)
    if redis.call('ZCARD', subs) == 0
       and redis.call('EXISTS', 'cast:{' .. topic .. '}:state') == 0
    then
        redis.call('ZREM', topics, topic)
    end
end

-- the topic is counted now (its score is when it stops being counted)
local function cast_topic_live(topics, topic, now)
    local score = redis.call('ZSCORE', topics, topic)
    return score and tonumber(score) > tonumber(now)
end

-- the topic lives at least until "ms"
local function cast_topic_extend(topics, topic, ms)
    local old = redis.call('ZSCORE', topics, topic)
    if not old or tonumber(old) < tonumber(ms) then
        redis.call('ZADD', topics, ms, topic)
        local last = redis.call('ZRANGE', topics, -1, -1, 'WITHSCORES')
        redis.call('PEXPIREAT', topics, last[2])
    end
end

-- a record ends: gone from its indexes; its socket's worker is told
local function cast_end(id, topic, bound, reason, all_subs, topics,
                        ctl_log, minid, now)
    redis.call('DEL', 'cast:sub:{' .. id .. '}')
    redis.call('ZREM', all_subs, id)
    redis.call('ZREM', cast_topic_subs(topic), id)
    cast_topic_settle(topics, topic, now)
    if bound == '1' then
        redis.call('HINCRBY', 'cast:counters', 'connections', -1)
        cast_control(ctl_log, minid,
                     'end ' .. id .. ' ' .. reason)
    end
end
