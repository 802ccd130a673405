-- ARGV: lease_ms, queue_ttl_ms, channel prefix, key_ttl_ms, n_leases, lease members..., waiter members...
-- Returns {held, limit, lost leases, granted waiters, lost waiters}
local now = now_ms()
local lease, qttl = tonumber(ARGV[1]), tonumber(ARGV[2])
sweep(now)
grant(now, ARGV[3])
local nl = tonumber(ARGV[5])
local lost, granted, gone = {}, {}, {}
for i = 6, 5 + nl do
  if redis.call('ZADD', leases, 'XX', 'CH', now + lease, ARGV[i]) == 0 and not redis.call('ZSCORE', leases, ARGV[i]) then
    table.insert(lost, ARGV[i])
  end
end
for i = 6 + nl, #ARGV do
  local m = ARGV[i]
  if redis.call('ZSCORE', qexp, m) then
    redis.call('ZADD', qexp, now + qttl, m)
  elseif redis.call('ZSCORE', leases, m) then
    redis.call('ZADD', leases, now + lease, m)
    table.insert(granted, m)
  else
    table.insert(gone, m)
  end
end
if redis.call('ZCARD', leases) == 0 then redis.call('HSET', meta, 'held', 0) end
local held, limit = grant(now, ARGV[3])
touch(tonumber(ARGV[4]))
return {held, limit, lost, granted, gone}
