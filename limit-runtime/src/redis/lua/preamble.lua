-- Shared by every script of the fleet (see `scripts.rs`, which prefixes each body with this).
-- KEYS[1] meta (HASH: limit, held, seq, expired, epoch, since, quiet_until, fence), KEYS[2]
-- leases (ZSET member -> expiry in ms, by the server's clock), KEYS[3] queue (ZSET member ->
-- server sequence number: FIFO), KEYS[4] qexp (ZSET member -> the waiter's expiry in ms, by
-- the server's clock), KEYS[5] fences (HASH member -> the fencing number of its grant).
-- A member is "<fleet>:<n>:<weight>:<lease_ms>": it carries all that a script run by another
-- process needs to grant or sweep it. Every time is the server's (`TIME`); no client clock is
-- ever sent or compared.
-- ARGV[1..3], the same for every script: the epoch the calling process last saw (0 if none),
-- its lease in ms (the quiet period after a restart), and the limit to store if the server
-- has none (the fleet's limit as the process last learned it). Each script's own ARGV follow.
local meta, leases, queue, qexp, fences = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local known, quiet_for, restore = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
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
    redis.call('HDEL', fences, unpack(dead))
    redis.call('HINCRBY', meta, 'held', -freed)
    redis.call('HINCRBY', meta, 'expired', #dead)
  end
  local gone = redis.call('ZRANGEBYSCORE', qexp, '-inf', now, 'LIMIT', 0, 256)
  if #gone > 0 then
    redis.call('ZREM', qexp, unpack(gone))
    redis.call('ZREM', queue, unpack(gone))
  end
end
-- The epoch: when the server's copy of this limiter began (its `TIME` in ms, or one more than
-- the epoch the creating process knew, whichever is larger, so epochs grow across restarts
-- while the server's clock does). Missing, the keys were lost (a restart without the data,
-- or a flush): a process that knew an epoch has found such a restart, and the fleet admits
-- nothing new for one lease (`quiet_until`), while every process re-registers the leases of
-- its running calls (`renew.lua`). A process that knew none cannot tell a restart from a
-- first start, and starts no quiet period: every first deployment would wait a lease. A
-- process that knew another epoch learns of a restart found first by someone else, and
-- makes sure the quiet period lasts a lease from the restart's discovery (`since`).
-- Returns the epoch, and whether the fleet is quiet.
local function open(now)
  local epoch = tonumber(redis.call('HGET', meta, 'epoch') or '0')
  local quiet_until = tonumber(redis.call('HGET', meta, 'quiet_until') or '0')
  if epoch == 0 then
    epoch = math.max(now, known + 1)
    quiet_until = 0
    if known > 0 then quiet_until = now + quiet_for end
    redis.call('HSET', meta, 'epoch', epoch, 'since', now, 'quiet_until', quiet_until)
  elseif known > 0 and known ~= epoch then
    local since = tonumber(redis.call('HGET', meta, 'since') or '0')
    if now < since + quiet_for and quiet_until < since + quiet_for then
      quiet_until = since + quiet_for
      redis.call('HSET', meta, 'quiet_until', quiet_until)
    end
  end
  redis.call('HSETNX', meta, 'limit', restore)
  return epoch, now < quiet_until
end
-- Grants `member` its lease now, and returns its fencing number: one more than the last
-- grant's of this epoch.
local function lease(now, member, l)
  redis.call('ZADD', leases, now + l, member)
  local n = redis.call('HINCRBY', meta, 'fence', 1)
  redis.call('HSET', fences, member, n)
  return n
end
local now = now_ms()
local epoch, quiet = open(now)
-- Hands free permits to the head of the line, strictly in order (a heavy head is not
-- overtaken), and tells each grantee's process on its channel ("member epoch number": its
-- fencing token). The grantee holds the lease when the message is sent: it needs no round
-- trip of its own. Nothing while the fleet is quiet.
local function grant(chan)
  local limit = tonumber(redis.call('HGET', meta, 'limit') or '0')
  local held = tonumber(redis.call('HGET', meta, 'held') or '0')
  local n = 0
  while n < 256 and not quiet do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then break end
    local f, w, l = parse(head)
    if held + w > limit then break end
    redis.call('ZREM', queue, head)
    redis.call('ZREM', qexp, head)
    local fence = lease(now, head, l)
    held = held + w
    redis.call('PUBLISH', chan .. f, head .. ' ' .. epoch .. ' ' .. fence)
    n = n + 1
  end
  redis.call('HSET', meta, 'held', held)
  return held, limit
end
-- An abandoned limiter's keys disappear; a live one's are all kept alive together.
local function touch(ttl)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end
