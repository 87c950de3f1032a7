-- Ends the records of a topic whose "field" equals "value".  Returns
-- {id, bound, id, bound, ...}.
-- KEYS: topic_subs all_subs topics ctl_log
-- ARGV: topic field value reason now minid

local out = {}

redis.call('ZREMRANGEBYSCORE', topic_subs, '-inf', now)

for _, id in ipairs(redis.call('ZRANGE', topic_subs, 0, -1)) do
    local h = redis.call('HMGET', 'cast:sub:{' .. id .. '}', field,
                         'bound')
    if not h[1] then
        redis.call('ZREM', topic_subs, id)
    elseif h[1] == value then
        local bound = h[2] or '0'
        cast_end(id, topic, bound, reason, all_subs, topics, ctl_log,
                 minid, now)
        out[#out + 1] = id
        out[#out + 1] = bound
    end
end

return out
