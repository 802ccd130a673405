-- ARGV: local_limit, key_ttl_ms. A process joins: the first sharer's limit is stored, and
-- every later one learns it. Returns {held, limit}.
redis.call('HSETNX', meta, 'limit', ARGV[1])
sweep(now_ms())
touch(tonumber(ARGV[2]))
return {tonumber(redis.call('HGET', meta, 'held') or '0'), tonumber(redis.call('HGET', meta, 'limit'))}
