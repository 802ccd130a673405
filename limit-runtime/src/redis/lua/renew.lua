-- ARGV[4..]: waiter_ttl_ms, channel prefix, key_ttl_ms, n_leases, lease members..., waiter
-- members... Renews one process's leases and waiters of one limiter, after granting what is
-- free (so a grant whose message was lost shows up here). A lease the server does not have
-- was lost, unless the fleet is quiet: then the server lost it in a restart, and it is
-- registered again, with its weight, before anyone else is admitted.
-- Returns {held, limit, epoch, lost leases, granted waiters (member, fencing number, ...),
-- gone waiters, leases registered again}.
local qttl = tonumber(ARGV[4])
sweep(now)
grant(ARGV[5])
local nl = tonumber(ARGV[7])
local lost, granted, gone, again = {}, {}, {}, 0
for i = 8, 7 + nl do
  local m = ARGV[i]
  local _, w, l = parse(m)
  if redis.call('ZSCORE', leases, m) then
    redis.call('ZADD', leases, now + l, m)
  elseif quiet then
    redis.call('ZADD', leases, now + l, m)
    redis.call('HINCRBY', meta, 'held', w)
    again = again + 1
  else
    table.insert(lost, m)
  end
end
for i = 8 + nl, #ARGV do
  local m = ARGV[i]
  if redis.call('ZSCORE', qexp, m) then
    redis.call('ZADD', qexp, now + qttl, m)
  elseif redis.call('ZSCORE', leases, m) then
    local _, _, l = parse(m)
    redis.call('ZADD', leases, now + l, m)
    table.insert(granted, m)
    table.insert(granted, redis.call('HGET', fences, m) or '0')
  else
    table.insert(gone, m)
  end
end
if redis.call('ZCARD', leases) == 0 then redis.call('HSET', meta, 'held', 0) end
local held, limit = grant(ARGV[5])
touch(tonumber(ARGV[6]))
return {held, limit, epoch, lost, granted, gone, again}
