-- Ends every record.  Returns {id, topic, bound, ...}.
-- KEYS: all_subs topics ctl_log
-- ARGV: reason now minid

local out = {}

for _, id in ipairs(redis.call('ZRANGE', all_subs, 0, -1)) do
    local h = redis.call('HMGET', 'cast:sub:{' .. id .. '}', 'topic',
                         'bound')
    if h[1] then
        local bound = h[2] or '0'
        cast_end(id, h[1], bound, reason, all_subs, topics, ctl_log,
                 minid, now)
        out[#out + 1] = id
        out[#out + 1] = h[1]
        out[#out + 1] = bound
    else
        redis.call('ZREM', all_subs, id)
    end
end

return out
