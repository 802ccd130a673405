-- ARGV: channel prefix, members... Ends each member's lease; one that expired already (or
-- was never granted) frees nothing, so a release never creates permits.
-- Returns {released, held, limit}.
local now = now_ms()
local released = 0
for i = 2, #ARGV do
  if redis.call('ZREM', leases, ARGV[i]) == 1 then
    local _, w = parse(ARGV[i])
    redis.call('HINCRBY', meta, 'held', -w)
    released = released + 1
  end
end
sweep(now)
local held, limit = grant(now, ARGV[1])
return {released, held, limit}
