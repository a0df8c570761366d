-- openleads.lua sets people's open-lead counts in the rotation ledger to what the
-- portal counted. The Go side of this is Engine.SyncOpenLeads.
--
-- KEYS[1]  rotation ledger hash (keyspace.RoutingLedger)
-- ARGV     user ID, count on the portal, count in the ledger before the portal
--          counted, ...
--
-- Leads assigned while the portal counted moved the ledger's count past the one read
-- before; they are added to the portal's count, which may not have seen them yet.
-- Other fields of a person's entry are kept. Returns the number of counts changed.

local changed = 0
for i = 1, #ARGV, 3 do
  local f = 'u' .. ARGV[i]
  local v = redis.call('HGET', KEYS[1], f)
  local a, b, c, d, e = '0', '0', '0', '0', '0'
  if v then
    local pa, pb, pc, pd, pe = string.match(v, '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
    if pa then
      a, b, c, d, e = pa, pb, pc, pd, pe
    end
  end
  local since = tonumber(e) - tonumber(ARGV[i + 2])
  if since < 0 then
    since = 0
  end
  local n = tonumber(ARGV[i + 1]) + since
  if n ~= tonumber(e) then
    redis.call('HSET', KEYS[1], f, a .. ':' .. b .. ':' .. c .. ':' .. d .. ':' ..
      string.format('%d', n))
    changed = changed + 1
  end
end
return changed
