-- release.lua counts one open lead of a person down when the lead was closed or given
-- to somebody else. The Go side of this is Engine.Release.
--
-- KEYS[1]  rotation ledger hash (keyspace.RoutingLedger)
-- KEYS[2]  the lead's decision string (keyspace.RoutingDecision)
-- ARGV[1]  the user ID
--
-- While the decision is remembered, only the person it assigned the lead to is counted
-- down, and only once (the decision is marked released, keeping its TTL). After it
-- expired, the count goes down but never below zero.
-- Returns 1 when a lead was counted down, 0 otherwise.

local d = redis.call('GET', KEYS[2])
if d then
  local res = cjson.decode(d)
  if res.rel or string.format('%d', res.id or 0) ~= ARGV[1] then
    return 0
  end
  res.rel = true
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then
    redis.call('SET', KEYS[2], cjson.encode(res), 'PX', ttl)
  end
end
local f = 'u' .. ARGV[1]
local v = redis.call('HGET', KEYS[1], f)
if not v then
  return 0
end
local a, b, c, dd, e = string.match(v, '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
if not a or tonumber(e) <= 0 then
  return 0
end
redis.call('HSET', KEYS[1], f, a .. ':' .. b .. ':' .. c .. ':' .. dd .. ':' ..
  string.format('%d', tonumber(e) - 1))
return 1
