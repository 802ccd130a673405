-- ARGV[4]: key_ttl_ms. A process joins: the first sharer's limit (ARGV[3]) is stored, and
-- every later one learns it. Returns {held, limit, epoch}.
sweep(now)
touch(tonumber(ARGV[4]))
local held = tonumber(redis.call('HGET', meta, 'held') or '0')
return {held, tonumber(redis.call('HGET', meta, 'limit')), epoch}
