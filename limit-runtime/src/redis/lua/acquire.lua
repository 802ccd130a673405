-- ARGV[4..]: member, weight, enqueue (0|1), waiter_ttl_ms, channel prefix. The keys' expiry is
-- pushed back by `join` and by every renewal, not here: 4 commands fewer per call.
-- Returns {1 admitted | 0 busy (not queued) | 2 queued, fencing number (admitted), held,
-- limit, epoch}. Idempotent per member. While the fleet is quiet, nothing is admitted.
local member, w = ARGV[4], tonumber(ARGV[5])
local _, _, l = parse(member)
sweep(now)
local held, limit = grant(ARGV[8])
-- Asked again after an error whose effect was unknown: the same answer, counted once.
if redis.call('ZSCORE', leases, member) then
  return {1, tonumber(redis.call('HGET', fences, member) or '0'), held, limit, epoch}
end
if redis.call('ZSCORE', queue, member) then return {2, 0, held, limit, epoch} end
if not quiet and redis.call('ZCARD', queue) == 0 and held + w <= limit then
  local fence = lease(now, member, l)
  held = redis.call('HINCRBY', meta, 'held', w)
  return {1, fence, held, limit, epoch}
end
if ARGV[6] == '0' then return {0, 0, held, limit, epoch} end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('ZADD', queue, seq, member)
redis.call('ZADD', qexp, now + tonumber(ARGV[7]), member)
return {2, 0, held, limit, epoch}
