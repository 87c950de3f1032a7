-- Ends the records whose time is up (at most "max" at a time): an
-- unbound record when its bind timeout or its lease passed, a bound one
-- when its lease passed.  The worker that sweeps logs the unbound ones;
-- a bound one's socket is told through the control channel.  (Records
-- also expire by themselves a minute later, should no worker sweep.)
-- Returns {id, topic, bound, reason, ...}.
-- KEYS: all_subs topics ctl_log
-- ARGV: now max minid

local out = {}
local ids = redis.call('ZRANGEBYSCORE', all_subs, '-inf', now,
                       'LIMIT', 0, tonumber(max))

for _, id in ipairs(ids) do
    local h = redis.call('HMGET', 'cast:sub:{' .. id .. '}', 'topic',
                         'bound', 'expires')
    if h[1] then
        local bound = h[2] or '0'
        local reason = 'lease expired'
        if bound ~= '1' and tonumber(h[3]) > tonumber(now) then
            reason = 'no socket was bound in time'
        end
        cast_end(id, h[1], bound, reason, all_subs, topics, ctl_log,
                 minid, now)
        out[#out + 1] = id
        out[#out + 1] = h[1]
        out[#out + 1] = bound
        out[#out + 1] = reason
    else
        redis.call('ZREM', all_subs, id)
    end
end

return out
