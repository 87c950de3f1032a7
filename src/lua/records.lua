-- The records of the indexes given as KEYS whose time is not up, at most
-- "max" in all.  Returns {id, value, ..., id, value, ...}: each record's
-- id, then the values of "fields" in their order (false where a field is
-- missing).  The first field must be one every record has.
-- KEYS: index
-- ARGV: now max fields...

local out = {}
local n = 0
local limit = tonumber(max)

for _, key in ipairs(KEYS) do
    if n >= limit then
        break
    end

    local ids = redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf',
                           'LIMIT', 0, limit - n)

    for _, id in ipairs(ids) do
        local h = redis.call('HMGET', 'cast:sub:{' .. id .. '}',
                             unpack(ARGV, fields))
        if h[1] then
            out[#out + 1] = id
            for i = 1, #h do
                out[#out + 1] = h[i]
            end
            n = n + 1
        end
    end
end

return out
