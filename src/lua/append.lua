-- Events into a log (their topic's, or the one the worker sends them
-- to), in order, with the topic's new state, if the state is still at
-- "version"; else {0, version, state} for the worker to compute again.
-- The events follow the fixed arguments, four each: op name json
-- event_id.  An op says what the event did to the state the worker
-- computed from "version" and the events before it: 'keep' (nothing),
-- 'set', 'clear' (only as the last event); 'refuse': the worker refused
-- the event on that state, and it stands ({3}, nothing appended).
-- state_text is the state after all of them (when the last change is a
-- 'set').
-- Answers {1, new version, result...}, one result per event:
--   {1, stream id}  appended: published as
--                   "<stream id> <name length>:<name><json>";
--   {2}             its id and name were appended to the topic in the
--                   last "ids_keep" ms: not again (a publisher retrying
--                   after a 503 whose command had run after all);
--   {3}             refused;
--   {-1, topics}    the topic is new and max_topics are kept;
--   {0}             not tried: the event before did not change the
--                   state as computed; compute again from the new one.
-- {5, n}: nothing done, only the first n events would change the state
-- as computed; send them alone.
-- A writer whose events were computed again too often claims the next
-- turn ("claim" 1) when it finds the version changed: for "turn_ms" ms,
-- or until its events go, the others' are answered {6} (nothing done,
-- send them again) unless their version is stale.
-- A state is kept "state_ttl" ms after its last change; with 0, until
-- the worker clears it (the hub's own).
-- KEYS: state log topics ids turn
-- ARGV: topic version now max_topics counted state_ttl minid log_ttl channel ids_keep state_text writer claim turn_ms events...

local have = redis.call('HMGET', state, 'v', 's')
local v = have[1] or '0'
local held = redis.call('GET', turn)

if v ~= version then
    if claim == '1' and not held then
        redis.call('SET', turn, writer, 'PX', turn_ms)
    end
    return {0, v, have[2] or ''}
end

if held and held ~= writer then
    return {6}
end

local n = (#ARGV - events + 1) / 4
local res = {}
local batch = {}
local live = nil
local last = 'keep'
local sets = 0
local had_ids = false

-- first, without writing: what each event does

for i = 1, n do
    local at = events + (i - 1) * 4
    local op, name, event_id = ARGV[at], ARGV[at + 1], ARGV[at + 3]
    local r = nil

    if op == 'clear' and i < n then
        return {5, i}
    end

    if event_id ~= '' then
        had_ids = true
        -- name and id, the name length-prefixed: an event name may hold
        -- spaces and an id any byte, so no separator can tell them apart
        local seen = #name .. ':' .. name .. event_id
        local t = redis.call('ZSCORE', ids, seen)
        if batch[seen]
           or (t and tonumber(t) > tonumber(now) - tonumber(ids_keep))
        then
            r = {2}
        end
        batch[seen] = true
    end

    if not r and op == 'refuse' then
        r = {3}
    end

    if not r and counted == '1' then
        if live == nil then
            live = cast_topic_live(topics, topic, now)
        end
        if not live then
            local k = redis.call('ZCOUNT', topics, '(' .. now, '+inf')
            if k >= tonumber(max_topics) then
                r = {-1, k}
            end
        end
    end

    if r and (op == 'set' or op == 'clear') then
        -- the states computed after it are not what they will be
        if i > 1 then
            return {5, i - 1}
        end
        local out = {1, v, r}
        for j = 2, n do
            out[j + 2] = {0}
        end
        return out
    end

    res[i] = r or false

    if not r then
        if op == 'set' then
            sets = sets + 1
            live = true
            last = op
        elseif op == 'clear' then
            last = op
        end
    end
end

-- then, in order: the first write may be refused when Redis is out of
-- memory, before anything was written

local appended = 0

for i = 1, n do
    if not res[i] then
        local at = events + (i - 1) * 4
        local name, json, event_id = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
        local id = redis.call('XADD', log, 'MINID', '~', minid, '*',
                              'n', name, 'j', json)
        if event_id ~= '' then
            redis.call('ZADD', ids, now, #name .. ':' .. name .. event_id)
        end
        redis.call('PUBLISH', channel, id .. ' ' .. #name .. ':' .. name
                                       .. json)
        res[i] = {1, id}
        appended = appended + 1
    end
end

if appended > 0 then
    redis.call('PEXPIRE', log, log_ttl)
    redis.call('ZREMRANGEBYSCORE', topics, '-inf', now)
    if had_ids then
        redis.call('ZREMRANGEBYSCORE', ids, '-inf',
                   tonumber(now) - ids_keep)
        redis.call('PEXPIRE', ids, ids_keep)
    end
    redis.call('HINCRBY', 'cast:counters', 'events_in', appended)
end

if held then
    redis.call('DEL', turn)
end

if last == 'set' then
    v = tostring(tonumber(v) + sets)
    redis.call('HSET', state, 'v', v, 's', state_text)
    if state_ttl == '0' then
        -- the hub's own state: it ends it
        redis.call('PERSIST', state)
    else
        redis.call('PEXPIRE', state, state_ttl)
    end
    if counted == '1' then
        cast_topic_extend(topics, topic, tonumber(now) + tonumber(state_ttl))
    end
elseif last == 'clear' then
    v = '0'
    redis.call('DEL', state)
    cast_topic_settle(topics, topic, now)
end

local out = {1, v}
for i = 1, n do
    out[i + 2] = res[i]
end
return out
