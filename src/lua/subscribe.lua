-- A new record, kept until "expires" (its bind timeout, or its lease).
-- Returns 1, 0 (the id exists) or -1 (a new topic past max_topics).
-- KEYS: sub topic_subs all_subs topics
-- ARGV: id topic now expires max_topics counted fields...

redis.call('ZREMRANGEBYSCORE', topics, '-inf', now)

if redis.call('EXISTS', sub) == 1 then
    return 0
end

if counted == '1' and not redis.call('ZSCORE', topics, topic)
   and redis.call('ZCARD', topics) >= tonumber(max_topics)
then
    return -1
end

redis.call('HSET', sub, unpack(ARGV, fields))
redis.call('PEXPIREAT', sub, expires)
redis.call('ZADD', topic_subs, expires, id)
redis.call('ZADD', all_subs, expires, id)

if counted == '1' then
    cast_topic_extend(topics, topic, expires)
end

return 1
