-- KEYS[1] meta (HASH: limit, held, seq, lost), KEYS[2] leases (ZSET member -> expiry ms, server clock),
-- KEYS[3] queue (ZSET member -> server sequence), KEYS[4] qexp (ZSET member -> waiter expiry ms).
-- A member is "<fleet>:<n>:<weight>:<lease_ms>".
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function parse(m)
  local f, w, l = string.match(m, '^(.+):%d+:(%d+):(%d+)$')
  return f, tonumber(w), tonumber(l)
end
local function sweep(now)
  local dead = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 256)
  if #dead > 0 then
    local freed = 0
    for _, m in ipairs(dead) do local _, w = parse(m); freed = freed + w end
    redis.call('ZREM', leases, unpack(dead))
    redis.call('HINCRBY', meta, 'held', -freed)
    redis.call('HINCRBY', meta, 'expired', #dead)
  end
  local gone = redis.call('ZRANGEBYSCORE', qexp, '-inf', now, 'LIMIT', 0, 256)
  if #gone > 0 then
    redis.call('ZREM', qexp, unpack(gone))
    redis.call('ZREM', queue, unpack(gone))
  end
end
-- Hands free permits to the head of the line, strictly in order, and tells each grantee's process.
local function grant(now, chan)
  local limit = tonumber(redis.call('HGET', meta, 'limit'))
  local held = tonumber(redis.call('HGET', meta, 'held') or '0')
  local n = 0
  while n < 256 do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then break end
    local f, w, l = parse(head)
    if held + w > limit then break end
    redis.call('ZREM', queue, head)
    redis.call('ZREM', qexp, head)
    redis.call('ZADD', leases, now + l, head)
    held = held + w
    redis.call('PUBLISH', chan .. f, head)
    n = n + 1
  end
  redis.call('HSET', meta, 'held', held)
  return held, limit
end
local function touch(ttl)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
