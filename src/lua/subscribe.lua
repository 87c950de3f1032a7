-- A new record, kept until "expires" (its bind timeout, or its lease);
-- also a bound record written again after Redis lost it (the fields
-- then say so; its limits are then 0: none).
-- Returns 1, 0 (the id exists), -1 - the number of topics (a new topic
-- past max_topics), {'subs', n} (n live records, max_subs) or
-- {'topic', n} (n live records on the topic, per_topic).
-- The first write may be refused when Redis is out of memory: nothing
-- is written before it.
-- KEYS: sub topic_subs all_subs topics
-- ARGV: id topic now expires max_topics counted max_subs per_topic fields...

if redis.call('EXISTS', sub) == 1 then
    return 0
end

if tonumber(max_subs) > 0 then
    local n = redis.call('ZCOUNT', all_subs, '(' .. now, '+inf')
    if n >= tonumber(max_subs) then
        return {'subs', n}
    end
end

if tonumber(per_topic) > 0 then
    local n = redis.call('ZCOUNT', topic_subs, '(' .. now, '+inf')
    if n >= tonumber(per_topic) then
        return {'topic', n}
    end
end

if counted == '1' and not cast_topic_live(topics, topic, now) then
    local n = redis.call('ZCOUNT', topics, '(' .. now, '+inf')
    if n >= tonumber(max_topics) then
        return -1 - n
    end
end

redis.call('HSET', sub, unpack(ARGV, fields))
redis.call('ZREMRANGEBYSCORE', topics, '-inf', now)
redis.call('PEXPIREAT', sub, tonumber(expires) + grace)
cast_index(topic_subs, id, expires)
cast_index(all_subs, id, expires)

if counted == '1' then
    cast_topic_extend(topics, topic, expires)
end

return 1
