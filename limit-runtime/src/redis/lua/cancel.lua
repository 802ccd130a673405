-- ARGV: member, channel prefix. A call that gave up: it leaves the line (0), or gives back the
-- lease it was granted meanwhile (1), or was neither (-1). Idempotent.
-- Returns {r, held, limit}.
local now = now_ms()
local r = -1
if redis.call('ZREM', queue, ARGV[1]) == 1 then
  redis.call('ZREM', qexp, ARGV[1]); r = 0
elseif redis.call('ZREM', leases, ARGV[1]) == 1 then
  local _, w = parse(ARGV[1])
  redis.call('HINCRBY', meta, 'held', -w); r = 1
end
sweep(now)
local held, limit = grant(now, ARGV[2])
return {r, held, limit}
