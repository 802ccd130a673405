-- ARGV: member, weight, lease_ms, enqueue (0|1), queue_ttl_ms, local_limit, channel prefix, key_ttl_ms
local member, w, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
redis.call('HSETNX', meta, 'limit', ARGV[6])
sweep(now)
local held, limit = grant(now, ARGV[7])
touch(tonumber(ARGV[8]))
if limit > 0 and w > limit then return {-1, held, limit} end  -- limit 0 pauses, refuses nobody
if redis.call('ZCARD', queue) == 0 and held + w <= limit then
  redis.call('ZADD', leases, now + lease, member)
  held = redis.call('HINCRBY', meta, 'held', w)
  return {1, held, limit}
end
if ARGV[4] == '0' then return {0, held, limit} end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('ZADD', queue, seq, member)
redis.call('ZADD', qexp, now + tonumber(ARGV[5]), member)
-- a relative hint (server clock): when the earliest lease runs out, for the waiter's re-check timer
local first = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
local hint = first[2] and (tonumber(first[2]) - now) or -1
return {2, held, limit, hint}
