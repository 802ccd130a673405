-- ARGV: member, weight, channel prefix
local now = now_ms()
local removed = redis.call('ZREM', leases, ARGV[1])
if removed == 1 then redis.call('HINCRBY', meta, 'held', -tonumber(ARGV[2])) end
sweep(now)
local held, limit = grant(now, ARGV[3])
return {removed, held, limit}
