-- New events and lease for a record of "topic".  Returns its endpoint,
-- or nil when there is no such record.
-- KEYS: sub topic_subs all_subs topics ctl_log
-- ARGV: id topic events lease expires now minid grant
-- grant: "a<writable events>" for a record made with a token, "n" without

local h = redis.call('HMGET', sub, 'topic', 'bound', 'endpoint', 'bind_by',
                     'counted')

if not h[1] or h[1] ~= topic then
    return false
end

-- its time is up: the sweep ends it
local due = redis.call('ZSCORE', all_subs, id)
if not due or tonumber(due) <= tonumber(now) then
    return false
end

redis.call('HSET', sub, 'events', events, 'lease', lease,
           'expires', expires)

if string.sub(grant, 1, 1) == 'a' then
    redis.call('HSET', sub, 'auth', '1', 'writable', string.sub(grant, 2))
else
    redis.call('HDEL', sub, 'auth', 'writable')
end

if h[2] == '1' then
    redis.call('PEXPIREAT', sub, tonumber(expires) + grace)
    cast_index(topic_subs, id, expires)
    cast_index(all_subs, id, expires)
    cast_topic_extend(topics, topic, expires)
    cast_control(ctl_log, minid, 'renew ' .. id .. ' ' .. expires .. ' '
                                 .. lease .. ' ' .. grant .. ' ' .. events)
else
    -- unbound: its bind timeout, or the new lease if that ends first
    -- (a record without "bind_by": its time as it was, at the most)
    local due_at = tonumber(expires)
    local bind_by = h[4] or redis.call('ZSCORE', all_subs, id)
    if bind_by and tonumber(bind_by) < due_at then
        due_at = tonumber(bind_by)
    end
    redis.call('PEXPIREAT', sub, due_at + grace)
    cast_index(topic_subs, id, due_at)
    cast_index(all_subs, id, due_at)
    if h[5] == '1' then
        cast_topic_extend(topics, topic, due_at)
    end
end

return h[3]
