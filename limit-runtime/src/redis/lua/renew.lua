-- ARGV: waiter_ttl_ms, channel prefix, key_ttl_ms, n_leases, lease members..., waiter members...
-- Renews one process's leases and waiters of one limiter, after granting what is free (so a
-- grant whose message was lost shows up here). Returns {held, limit, lost leases, granted
-- waiters, gone waiters}.
local now = now_ms()
local qttl = tonumber(ARGV[1])
sweep(now)
grant(now, ARGV[2])
local nl = tonumber(ARGV[4])
local lost, granted, gone = {}, {}, {}
for i = 5, 4 + nl do
  local m = ARGV[i]
  if redis.call('ZSCORE', leases, m) then
    local _, _, l = parse(m)
    redis.call('ZADD', leases, now + l, m)
  else
    table.insert(lost, m)
  end
end
for i = 5 + nl, #ARGV do
  local m = ARGV[i]
  if redis.call('ZSCORE', qexp, m) then
    redis.call('ZADD', qexp, now + qttl, m)
  elseif redis.call('ZSCORE', leases, m) then
    local _, _, l = parse(m)
    redis.call('ZADD', leases, now + l, m)
    table.insert(granted, m)
  else
    table.insert(gone, m)
  end
end
if redis.call('ZCARD', leases) == 0 then redis.call('HSET', meta, 'held', 0) end
local held, limit = grant(now, ARGV[2])
touch(tonumber(ARGV[3]))
return {held, limit, lost, granted, gone}
