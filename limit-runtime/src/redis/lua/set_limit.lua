-- ARGV[4..]: limit, channel prefix. The fleet's new limit; a growth admits waiters at once, a
-- shrink revokes no lease. Returns {held, limit, epoch}.
redis.call('HSET', meta, 'limit', ARGV[4])
sweep(now)
local held, limit = grant(ARGV[5])
return {held, limit, epoch}
