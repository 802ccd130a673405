-- Shared by every script of the fleet (see `scripts.rs`, which prefixes each body with this).
-- KEYS[1] meta (HASH: limit, held, seq, expired), KEYS[2] leases (ZSET member -> expiry in ms,
-- by the server's clock), KEYS[3] queue (ZSET member -> server sequence number: FIFO),
-- KEYS[4] qexp (ZSET member -> the waiter's expiry in ms, by the server's clock).
-- A member is "<fleet>:<n>:<weight>:<lease_ms>": it carries all that a script run by another
-- process needs to grant or sweep it. Every time is the server's (`TIME`); no client clock is
-- ever sent or compared.
local meta, leases, queue, qexp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function parse(m)
  local f, w, l = string.match(m, '^(%d+):%d+:(%d+):(%d+)$')
  return f, tonumber(w), tonumber(l)
end
-- Leases past their expiry (a crashed or paused holder) free their permits; waiters past
-- theirs (a dead process) leave the line.
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
-- Hands free permits to the head of the line, strictly in order (a heavy head is not
-- overtaken), and tells each grantee's process on its channel. The grantee holds the lease
-- when the message is sent: it needs no round trip of its own.
local function grant(now, chan)
  local limit = tonumber(redis.call('HGET', meta, 'limit') or '0')
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
-- An abandoned limiter's keys disappear; a live one's are all kept alive together.
local function touch(ttl)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
