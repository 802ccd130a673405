-- ARGV[4..]: channel prefix, members... Ends each member's lease; one that expired already
-- (or was never granted) frees nothing, so a release never creates permits.
-- Returns {released, held, limit, epoch}.
local released = 0
for i = 5, #ARGV do
  if redis.call('ZREM', leases, ARGV[i]) == 1 then
    local _, w = parse(ARGV[i])
    redis.call('HDEL', fences, ARGV[i])
    redis.call('HINCRBY', meta, 'held', -w)
    released = released + 1
  end
end
sweep(now)
local held, limit = grant(ARGV[4])
return {released, held, limit, epoch}
