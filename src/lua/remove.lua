-- Ends one record (of "topic" unless it is empty).  Returns
-- {endpoint, topic, bound}, or nil when there is no such record.
-- KEYS: sub all_subs topics ctl_log
-- ARGV: id topic reason now minid

local h = redis.call('HMGET', sub, 'topic', 'endpoint', 'bound')

if not h[1] or (topic ~= '' and h[1] ~= topic) then
    return false
end

-- its time is up: the sweep ends it (and says why)
local due = redis.call('ZSCORE', all_subs, id)
if not due or tonumber(due) <= tonumber(now) then
    return false
end

local bound = h[3] or '0'

cast_end(id, h[1], bound, reason, all_subs, topics, ctl_log, minid, now)

return {h[2], h[1], bound}
