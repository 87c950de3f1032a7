-- New events and lease for a record of "topic".  Returns its endpoint,
-- or nil when there is no such record.
-- KEYS: sub topic_subs all_subs topics ctl_log
-- ARGV: id topic events lease expires now minid

local h = redis.call('HMGET', sub, 'topic', 'bound', 'endpoint')

if not h[1] or h[1] ~= topic then
    return false
end

redis.call('HSET', sub, 'events', events, 'lease', lease,
           'expires', expires)

if h[2] == '1' then
    redis.call('PEXPIREAT', sub, tonumber(expires) + grace)
    cast_index(topic_subs, id, expires)
    cast_index(all_subs, id, expires)
    cast_topic_extend(topics, topic, expires)
    cast_control(ctl_log, minid, 'renew ' .. id .. ' ' .. expires .. ' '
                                 .. lease .. ' ' .. events)
else
    -- unbound: its bind timeout, or the new lease if that ends first
    local left = redis.call('PTTL', sub) - grace
    if left > 0 and tonumber(expires) < tonumber(now) + left then
        redis.call('PEXPIREAT', sub, tonumber(expires) + grace)
        cast_index(topic_subs, id, expires)
        cast_index(all_subs, id, expires)
    end
end

return h[3]
