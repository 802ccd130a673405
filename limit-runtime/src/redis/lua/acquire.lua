-- ARGV: member, weight, enqueue (0|1), waiter_ttl_ms, local_limit, channel prefix. The keys'
-- expiry is pushed back by `join` and by every renewal, not here: 4 commands fewer per call.
-- Returns {1 admitted | 0 busy (not queued) | 2 queued, held, limit}. Idempotent per member.
local member, w = ARGV[1], tonumber(ARGV[2])
local _, _, lease = parse(member)
local now = now_ms()
redis.call('HSETNX', meta, 'limit', ARGV[5])
sweep(now)
local held, limit = grant(now, ARGV[6])
-- Asked again after an error whose effect was unknown: the same answer, counted once.
if redis.call('ZSCORE', leases, member) then return {1, held, limit} end
if redis.call('ZSCORE', queue, member) then return {2, held, limit} end
if redis.call('ZCARD', queue) == 0 and held + w <= limit then
  redis.call('ZADD', leases, now + lease, member)
  held = redis.call('HINCRBY', meta, 'held', w)
  return {1, held, limit}
end
if ARGV[3] == '0' then return {0, held, limit} end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('ZADD', queue, seq, member)
redis.call('ZADD', qexp, now + tonumber(ARGV[4]), member)
return {2, held, limit}
