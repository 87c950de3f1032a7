-- The data set's epoch: set by the first worker that asks after Redis
-- started empty (or was flushed).  A worker that sees it change knows
-- the records of its sockets are gone, and writes them again.
-- KEYS: epoch
-- ARGV: candidate

local e = redis.call('GET', epoch)

if not e then
    redis.call('SET', epoch, candidate)
    return candidate
end

return e
