-- ARGV: limit, channel prefix. The fleet's new limit; a growth admits waiters at once, a
-- shrink revokes no lease. Returns {held, limit}.
local now = now_ms()
redis.call('HSET', meta, 'limit', ARGV[1])
sweep(now)
local held, limit = grant(now, ARGV[2])
return {held, limit}
