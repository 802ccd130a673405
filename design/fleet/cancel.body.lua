-- ARGV: member, weight, channel prefix. 0: left the line; 1: had been granted, released; -1: unknown
local now = now_ms()
local r = -1
if redis.call('ZREM', queue, ARGV[1]) == 1 then
  redis.call('ZREM', qexp, ARGV[1]); r = 0
elseif redis.call('ZREM', leases, ARGV[1]) == 1 then
  redis.call('HINCRBY', meta, 'held', -tonumber(ARGV[2])); r = 1
end
sweep(now)
local held, limit = grant(now, ARGV[3])
return {r, held, limit}
