-- decide.lua picks the responsible person for one lead and records the turn, in one
-- atomic step. It mirrors ledger.decide in ledger.go line for line; change both.
--
-- KEYS[1]  routing settings hash (keyspace.RoutingSettings); only field "head" is read
-- KEYS[2]  rotation ledger hash (keyspace.RoutingLedger)
-- KEYS[3]  the lead's decision string (keyspace.RoutingDecision)
-- ARGV[1]  the plan as JSON (type plan in plan.go): lead, now (Unix ms), ver (settings
--          version), ttl (seconds), g (re-route round), ps (a pass after a missed
--          deadline, copied to the result), rule, hold, steps[{k, t, s, ms, r,
--          m[{id, w, dc, oc, day, skip, a}]}]
--
-- Returns {result, state}. state 0: decided now, result is the outcome as JSON (type
-- result in plan.go), stored in KEYS[3] for ttl seconds when somebody was assigned.
-- state 1: the lead was decided in this round (or a later one) before; result is the
-- stored outcome and nothing changed. state 2: the settings changed since the plan was
-- built; result is empty, nothing changed, and the caller rebuilds the plan.
--
-- A plan of a later round than the stored decision decides again; when it assigns the
-- lead, the previous owner's open lead is counted down first (unless it was released).
-- Everything after the round check mirrors ledger.decide.

local plan = cjson.decode(ARGV[1])
local round = plan.g or 0
local prior
local stored = redis.call('GET', KEYS[3])
if stored then
  prior = cjson.decode(stored)
  if (prior.g or 0) >= round then
    return {stored, 1}
  end
end
local head = tonumber(redis.call('HGET', KEYS[1], 'head') or '0')
if head ~= plan.ver then
  return {'', 2}
end

local function int(n)
  return string.format('%d', n)
end

-- Read every ledger field the plan may touch with one HMGET (in slices of 1000 fields,
-- below Lua's limit on unpacked values, for very large chains).
local fields, seen = {}, {}
local function want(f)
  if not seen[f] then
    seen[f] = true
    fields[#fields + 1] = f
  end
end
for _, st in ipairs(plan.steps) do
  for _, m in ipairs(st.m) do
    want('u' .. int(m.id))
  end
  if st.t then
    want('rr' .. st.t)
    want('st' .. st.t)
  end
end
local prior_field
if prior and prior.id and not prior.rel then
  prior_field = 'u' .. int(prior.id)
  want(prior_field)
end
local state = {}
for from = 1, #fields, 1000 do
  local to = math.min(from + 999, #fields)
  local vals = redis.call('HMGET', KEYS[2], unpack(fields, from, to))
  for i = from, to do
    state[fields[i]] = vals[i - from + 1]
  end
end
local changed = {}
local function put(f, v)
  state[f] = v
  changed[f] = v
end

local function parse(v)
  local r = {c = 0, last = 0, day = 0, n = 0, open = 0}
  if v then
    local a, b, c, d, e = string.match(v, '^(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+):(%-?%d+)$')
    if a then
      r.c, r.last, r.day, r.n, r.open =
        tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(e)
    end
  end
  return r
end
local function format(r)
  return int(r.c) .. ':' .. int(r.last) .. ':' .. int(r.day) .. ':' .. int(r.n) .. ':' ..
    int(r.open)
end

-- The lead leaves its previous owner: one open lead fewer, never below zero. Like
-- every change, this is stored only when the new decision assigns the lead.
if prior_field then
  local r = parse(state[prior_field])
  if r.open > 0 then
    r.open = r.open - 1
    put(prior_field, format(r))
  end
end

local function clamp(c, total)
  if c < -total then return -total end
  if c > total then return total end
  return c
end

local function round_robin(st, eligible)
  local n = #st.m
  local start = 0
  local ptr = state['rr' .. st.t]
  if ptr then
    local uid, idx = string.match(ptr, '^(%d+):(%d+)$')
    start = tonumber(idx) or 0
    for i, m in ipairs(st.m) do
      if int(m.id) == uid then
        start = i
        break
      end
    end
  end
  local ok = {}
  for _, i in ipairs(eligible) do ok[i] = true end
  for k = 0, n - 1 do
    local i = (start + k) % n + 1
    if ok[i] then
      put('rr' .. st.t, int(st.m[i].id) .. ':' .. int(i - 1))
      return i, 'round_robin', k + 1
    end
  end
  return eligible[1], 'round_robin', 1
end

local function total_weight(st, eligible)
  local total = 0
  for _, i in ipairs(eligible) do total = total + st.m[i].w end
  return total
end

local function weighted(st, recs, eligible)
  local total = total_weight(st, eligible)
  local best, best_num, best_w = nil, 0, 0
  for pass = 0, 1 do
    if best then break end
    for _, i in ipairs(eligible) do
      local w = st.m[i].w
      local c = clamp(recs[i].c, total) + w
      if not (pass == 0 and c <= 0) then
        local num = total + w - c
        if not best or num * best_w < best_num * w then
          best, best_num, best_w = i, num, w
        end
      end
    end
  end
  return best
end

local function random_pick(st, eligible)
  local total = total_weight(st, eligible)
  local target = (st.r or 0) * total
  local sum = 0
  for _, i in ipairs(eligible) do
    sum = sum + st.m[i].w
    if target < sum then return i end
  end
  return eligible[#eligible]
end

local function least_loaded(st, recs, eligible)
  local streak_user, streak = 0, 0
  local v = state['st' .. st.t]
  if v then
    local u, n = string.match(v, '^(%d+):(%d+)$')
    streak_user, streak = tonumber(u) or 0, tonumber(n) or 0
  end
  local best
  for _, i in ipairs(eligible) do
    local passed = #eligible > 1 and streak >= st.ms and st.m[i].id == streak_user
    if not passed then
      if not best or recs[i].open < recs[best].open or
          (recs[i].open == recs[best].open and recs[i].last < recs[best].last) then
        best = i
      end
    end
  end
  if st.m[best].id == streak_user then
    streak = streak + 1
  else
    streak = 1
  end
  put('st' .. st.t, int(st.m[best].id) .. ':' .. int(streak))
  return best
end

local function pick(st, recs, eligible)
  if st.k == 'owner' then return eligible[1], 'existing_owner', 0 end
  if st.k == 'person' then return eligible[1], 'fixed_person', 0 end
  if st.s == 'round_robin' then return round_robin(st, eligible) end
  if st.s == 'weighted' then return weighted(st, recs, eligible), 'weighted', 0 end
  if st.s == 'random' then return random_pick(st, eligible), 'random', 0 end
  if st.s == 'least_loaded' then return least_loaded(st, recs, eligible), 'least_loaded', 0 end
  if st.s == 'longest_waiting' then
    local best = eligible[1]
    for k = 2, #eligible do
      local i = eligible[k]
      if recs[i].last < recs[best].last then best = i end
    end
    return best, 'longest_waiting', 0
  end
  return eligible[1], 'first_available', eligible[1]
end

local res = {o = 'held', rule = plan.rule, ver = plan.ver}
if round > 0 then res.g = round end
if plan.ps then res.ps = true end
local path, skips = {}, {}
for si, st in ipairs(plan.steps) do
  path[#path + 1] = {k = st.k, t = st.t}
  local recs, eligible = {}, {}
  for i, m in ipairs(st.m) do
    recs[i] = parse(state['u' .. int(m.id)])
    if m.skip then
      skips[#skips + 1] = {step = si - 1, id = m.id, code = m.skip, a = m.a}
    else
      local count = recs[i].n
      if recs[i].day ~= m.day then count = 0 end
      if m.dc and m.dc > 0 and count >= m.dc then
        skips[#skips + 1] = {step = si - 1, id = m.id, code = 'daily_cap', n = count, cap = m.dc}
      elseif m.oc and m.oc > 0 and recs[i].open >= m.oc then
        skips[#skips + 1] = {step = si - 1, id = m.id, code = 'open_cap', n = recs[i].open,
          cap = m.oc}
      else
        eligible[#eligible + 1] = i
      end
    end
  end
  if #eligible > 0 then
    local chosen, how, pos = pick(st, recs, eligible)
    local m, r = st.m[chosen], recs[chosen]
    res.o, res.id, res.step, res.how = 'assigned', m.id, si - 1, how
    if pos > 0 then res.pos = pos end
    if r.open > 0 then res.open = r.open end
    if r.last > 0 then res.since = r.last end
    if r.day ~= m.day then
      r.day, r.n = m.day, 0
    end
    r.n = r.n + 1
    r.open = r.open + 1
    if st.k == 'team' then r.last = plan.now end
    if st.s == 'weighted' then
      local total = total_weight(st, eligible)
      for _, i in ipairs(eligible) do
        local e = recs[i]
        e.c = clamp(e.c, total) + st.m[i].w
        if i == chosen then e.c = e.c - total end
        put('u' .. int(st.m[i].id), format(e))
      end
    end
    put('u' .. int(m.id), format(r))
    break
  end
end
res.path = path
if #skips > 0 then res.skips = skips end
if res.o == 'held' then
  res.step = 0
  res.hold = plan.hold
  return {cjson.encode(res), 0}
end

local args = {}
for f, v in pairs(changed) do
  args[#args + 1] = f
  args[#args + 1] = v
end
redis.call('HSET', KEYS[2], unpack(args))
local out = cjson.encode(res)
redis.call('SET', KEYS[3], out, 'EX', plan.ttl)
return {out, 0}
