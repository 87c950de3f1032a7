-- The live records and topics, and the workers' reports newer than
-- "oldest" ("<ms> <json>" per worker; older ones are removed).
-- Returns {records, topics, sockets, events in, report, report, ...}.
-- KEYS: stats all_subs topics
-- ARGV: oldest now

redis.call('ZREMRANGEBYSCORE', topics, '-inf', now)

-- records whose time is up wait for the sweep: not counted
local c = redis.call('HMGET', 'cast:counters', 'connections', 'events_in')
local out = {redis.call('ZCOUNT', all_subs, '(' .. now, '+inf'),
             redis.call('ZCARD', topics),
             tonumber(c[1] or '0'), tonumber(c[2] or '0')}
local h = redis.call('HGETALL', stats)

for i = 1, #h, 2 do
    local t = string.match(h[i + 1], '^(%d+) ')
    if t and tonumber(t) >= tonumber(oldest) then
        out[#out + 1] = string.sub(h[i + 1], #t + 2)
    else
        redis.call('HDEL', stats, h[i])
    end
end

return out
