-- ARGV[4..]: member, channel prefix. A call that gave up: it leaves the line (0), or gives
-- back the lease it was granted meanwhile (1), or was neither (-1). Idempotent.
-- Returns {r, held, limit, epoch}.
local member = ARGV[4]
local r = -1
if redis.call('ZREM', queue, member) == 1 then
  redis.call('ZREM', qexp, member); r = 0
elseif redis.call('ZREM', leases, member) == 1 then
  local _, w = parse(member)
  redis.call('HDEL', fences, member)
  redis.call('HINCRBY', meta, 'held', -w); r = 1
end
sweep(now)
local held, limit = grant(ARGV[5])
return {r, held, limit, epoch}
