-- check.lua: evaluate every limit of one check, then commit all of them or none.
--
-- Why a script: the limits of one API key must be read, decided and written in one atomic
-- step, or two tollgate instances could both admit the last unit of a quota. Every key a
-- call touches is declared in KEYS, and all of them must hash to one Redis Cluster slot: the
-- limits of one API key share one hash tag, and a check spread over several slots (an Envoy
-- request whose descriptors count under different tags) is split by the caller into one call
-- per slot. Time comes from Redis (TIME), never from instance clocks.
--
-- This is the twin of tollgate_core::batch::evaluate_all and evaluate_batch (and of gcra.rs,
-- quota.rs and calendar.rs): the same steps with Lua numbers. All values stay below 2^53, so
-- doubles hold them exactly. The store's behavioural tests hold both to the same results.
--
-- A call evaluates B >= 1 batches in order. A batch is the limits of one request under one
-- hash tag; it admits when all of its limits admit, and it sees the pending use of the
-- earlier batches that admitted. The call admits when every batch not in shadow mode admits;
-- then every batch that admitted commits its writes, and nothing else is written. What was
-- not written is reported as it stands: a batch that refused shows its limits as it found
-- them, and a call that refused shows every limit as stored, never with a cost taken.
--
-- ARGV[1]            seconds a quota record outlives its period
-- ARGV[2]            1 to commit; 0 to evaluate only and write nothing (the first phase of a
--                    check spread over several Cluster slots)
-- ARGV[3]            B: number of batches
-- ARGV[4]            D: a Unix day (days since 1970-01-01) the caller names the periods of
-- ARGV[5]            the usage-day id (YYYYMMDD) of day D
-- ARGV[6..]          per batch, in order, 4 + 7 n values:
--                      cost         units to consume; 0 reads only (answers as for cost 1)
--                      n            number of limits of the batch
--                      usage_days   usage retention in days; 0 records no usage
--                      shadow       1 if the batch's refusal blocks nothing, else 0
--                    then seven values per limit:
--                      "t", interval_us, burst, "", "", "", ""           (GCRA throttle)
--                      "q", limit, period (d|w|m|y), offset, anchor_s, id, end_s
--                                                                      (calendar quota)
--                    where id and end_s name the period of that kind holding day D
-- The day D values spare Redis the date arithmetic (about a tenth of its work per call):
-- they are used only when Redis's TIME falls on day D, and otherwise the script works the
-- periods out itself, so a caller whose clock is off costs time, never a wrong answer.
-- KEYS               per batch, in order: the state of each of its n limits, a string
--                    (throttle TAT, Unix us) or a hash {p = period id, n = units used,
--                    g = units an operator added to the period's limit} (quota); then its daily usage hash (field YYYYMMDD -> units) if
--                    usage_days > 0
-- Returns            one string of 64-bit little-endian signed integers (struct.pack
--                    '<i8'): admitted (0|1), now_us, then per limit of every batch, in
--                    order: allowed (0|1), limit, remaining, retry_after_us,
--                    reset_after_us, used. Packed because the client parses one string
--                    much faster than an array of 2 + 6 n replies (see script_call.rs),
--                    and because in Redis's Lua every number written as text is a
--                    sprintf, which cost more than the rest of the reply.

local floor = math.floor
local pack = struct.pack

local function civil_from_days(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m
  if mp < 10 then m = mp + 3 else m = mp - 9 end
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp
  if m > 2 then mp = m - 3 else mp = m + 9 end
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- The period of kind `code` holding Unix second `t`: id, first second, first second after.
local function period_window(code, t)
  local days = floor(t / 86400)
  if code == 'd' then
    local y, m, d = civil_from_days(days)
    return string.format('d%04d%02d%02d', y, m, d), days * 86400, (days + 1) * 86400
  elseif code == 'w' then
    local monday = days - ((days + 3) % 7)
    local iso_year = civil_from_days(monday + 3)
    local week = floor((monday + 3 - days_from_civil(iso_year, 1, 1)) / 7) + 1
    return string.format('w%04dW%02d', iso_year, week), monday * 86400, (monday + 7) * 86400
  elseif code == 'm' then
    local y, m = civil_from_days(days)
    local ny, nm = y, m + 1
    if m == 12 then ny, nm = y + 1, 1 end
    return string.format('m%04d%02d', y, m), days_from_civil(y, m, 1) * 86400,
      days_from_civil(ny, nm, 1) * 86400
  else
    local y = civil_from_days(days)
    return string.format('y%04d', y), days_from_civil(y, 1, 1) * 86400,
      days_from_civil(y + 1, 1, 1) * 86400
  end
end

local function day_id(t)
  local y, m, d = civil_from_days(floor(t / 86400))
  return string.format('%04d%02d%02d', y, m, d)
end

local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_us = now_s * 1000000 + tonumber(time[2])

local commit = ARGV[2] == '1'
local batches = tonumber(ARGV[3])
-- now_s % 86400 is arithmetic in the VM; floor() would be a call out of it
local hinted = (now_s - now_s % 86400) / 86400 == tonumber(ARGV[4])

local out = { '' }   -- out[1] is set last: admitted, now_us; then one packed row per limit
local pending = {}   -- key -> TAT or units used, from the batches that admitted so far
-- quota key -> a grant an operator added to this period's limit (set_remaining.lua); made
-- only when a key has one, since most have none and an admitted call should build nothing
-- it does not need
local grants = nil
local commits = {}   -- per batch that admitted: { writes, cost, usage_days, usage key }
local admitted = true
local fresh = {}     -- quota keys whose record starts a new period in this call
local a = 5          -- ARGV index of the last value read
local k = 0          -- KEYS index of the last key read

local ROW = '<i8i8i8i8i8i8'
local refusals = false  -- whether any batch refused
local shadow_before = nil  -- batch number -> { key -> pending use then }: see the end

for b = 1, batches do
  local cost = tonumber(ARGV[a + 1])
  local n = tonumber(ARGV[a + 2])
  local usage_days = tonumber(ARGV[a + 3])
  local shadow = ARGV[a + 4] == '1'
  a = a + 4
  local need = cost
  if need < 1 then need = 1 end
  local mine = {}    -- this batch's pending use, kept only if the batch admits
  local writes = {}
  local batch_ok = true
  local o0 = #out

  for i = 1, n do
    local key = KEYS[k + i]
    local at = a + (i - 1) * 7
    local kind = ARGV[at + 1]
    local allowed, limit, remaining, retry, reset, used
    if kind == 't' then
      local interval = tonumber(ARGV[at + 2])
      local burst = tonumber(ARGV[at + 3])
      local window = interval * burst
      local tat = mine[key]
      if tat == nil then tat = pending[key] end
      if tat == nil then tat = tonumber(redis.call('GET', key) or nil) end
      if tat == nil or tat < now_us then tat = now_us end
      limit, used = burst, 0
      local new_tat = tat + need * interval
      local at_tat = tat  -- the TAT the answer reports from
      if need > burst then
        -- No wait lets this cost pass: no retry time (see gcra.rs).
        allowed, retry = false, 0
      elseif now_us < new_tat - window then
        allowed, retry = false, new_tat - window - now_us
      else
        if cost > 0 then
          at_tat = new_tat
          mine[key] = new_tat
          writes[#writes + 1] = { 't', key, new_tat }
        end
        allowed, retry = true, 0
      end
      reset = at_tat - now_us
      -- floor(left / interval) with VM arithmetic (floor() is a call out of the VM)
      local left = window - reset
      if left > 0 then remaining = (left - left % interval) / interval else remaining = 0 end
    else
      local id, end_s
      if hinted then
        id, end_s = ARGV[at + 6], tonumber(ARGV[at + 7])
      else
        local _
        id, _, end_s = period_window(ARGV[at + 3], now_s)
      end
      local plan_limit = tonumber(ARGV[at + 2])
      limit = plan_limit
      if ARGV[at + 4] ~= '0' and period_window(ARGV[at + 3], tonumber(ARGV[at + 5])) == id then
        limit = limit - tonumber(ARGV[at + 4])
        if limit < 0 then limit = 0 end
      end
      used = mine[key]
      if used == nil then used = pending[key] end
      if used == nil then
        local h = redis.call('HMGET', key, 'p', 'n', 'g')
        if h[1] == id then
          used = tonumber(h[2]) or 0
          local grant = tonumber(h[3])
          if grant ~= nil and grant ~= 0 then
            if grants == nil then grants = {} end
            grants[key] = grant
          end
        else
          used = 0
          -- A new period; a grant left from the last one must go when it is written.
          fresh[key] = h[3] and 'g' or true
        end
      end
      -- The operator's grant (set_remaining.lua) moves this period's limit, not the use.
      if grants ~= nil and grants[key] ~= nil then
        limit = limit + grants[key]
        if limit < 0 then limit = 0 end
      end
      allowed = used + need <= limit
      if allowed and cost > 0 then
        used = used + cost
        mine[key] = used
        writes[#writes + 1] = { 'q', key, id, used, end_s }
      end
      remaining = limit - used
      if remaining < 0 then remaining = 0 end
      reset = end_s * 1000000 - now_us
      -- A cost above the plan's limit fails in every period: no retry time (see quota.rs).
      if allowed or need > plan_limit then retry = 0 else retry = reset end
    end
    if not allowed then batch_ok = false end
    out[o0 + i] = pack(ROW, allowed and 1 or 0, limit, remaining, retry, reset, used)
  end

  if batch_ok then
    for key, v in pairs(mine) do pending[key] = v end
    local ukey = nil
    if usage_days > 0 then ukey = KEYS[k + n + 1] end
    commits[#commits + 1] = { writes, cost, usage_days, ukey }
  else
    refusals = true
    if shadow then
      -- Its refusal blocks nothing, so the call may still write: keep what the batches
      -- before it left of its limits, which is what it found and reports.
      local before = {}
      for i = 1, n do before[KEYS[k + i]] = pending[KEYS[k + i]] end
      if shadow_before == nil then shadow_before = {} end
      shadow_before[b] = before
    else
      admitted = false
    end
  end
  a = a + 7 * n
  k = k + n
  if usage_days > 0 then k = k + 1 end
end

-- What was not written is reported as it stands, with nothing taken (batch.rs, `as_is`):
-- a call that refused, or only evaluated (the first phase of a check spread over several
-- slots, whose answer is shown only if the check is refused), shows every limit as stored;
-- a call that writes shows a shadow batch that refused as the batches before it left it.
-- The stored state is read again, as nothing is written yet. Written out rather than as a
-- function: a closure is made on every call, and an admitted call should pay for none.
if refusals or not commit then
  local wrote = admitted and commit
  local a0, k0, o0 = 5, 0, 1
  for b = 1, batches do
    local n, usage_days = tonumber(ARGV[a0 + 2]), tonumber(ARGV[a0 + 3])
    a0 = a0 + 4
    local before = nil
    if wrote then before = shadow_before and shadow_before[b] end
    if not wrote or before ~= nil then
      for i = 1, n do
        local key, at = KEYS[k0 + i], a0 + (i - 1) * 7
        local allowed, limit, _, retry, reset = struct.unpack(ROW, out[o0 + i])
        local remaining, used = 0, 0
        local state = nil
        if before ~= nil then state = before[key] end
        if ARGV[at + 1] == 't' then
          local interval = tonumber(ARGV[at + 2])
          local tat = state
          if tat == nil then tat = tonumber(redis.call('GET', key) or nil) end
          if tat == nil or tat < now_us then tat = now_us end
          reset = tat - now_us
          local left = interval * tonumber(ARGV[at + 3]) - reset
          if left > 0 then remaining = (left - left % interval) / interval end
        else
          used = state
          if used == nil then
            local id
            if hinted then id = ARGV[at + 6] else id = period_window(ARGV[at + 3], now_s) end
            local h = redis.call('HMGET', key, 'p', 'n')
            if h[1] == id then used = tonumber(h[2]) or 0 else used = 0 end
          end
          remaining = limit - used
          if remaining < 0 then remaining = 0 end
        end
        out[o0 + i] = pack(ROW, allowed, limit, remaining, retry, reset, used)
      end
    end
    a0, k0, o0 = a0 + 7 * n, k0 + n, o0 + n
    if usage_days > 0 then k0 = k0 + 1 end
  end
end

if admitted and commit then
  for _, c in ipairs(commits) do
    local cost, usage_days, ukey = c[2], c[3], c[4]
    if cost > 0 then
      for _, w in ipairs(c[1]) do
        if w[1] == 't' then
          -- Past its TAT a throttle is idle, which is what a missing key means.
          redis.call('SET', w[2], string.format('%d', w[3]), 'PXAT', string.format('%d', floor(w[3] / 1000) + 1))
        else
          -- A record's expiry depends only on its period, and whoever wrote the period (this
          -- script or set_remaining.lua) set it then: within a period only the count moves.
          -- Every call Redis does not make is CPU of the one Redis a whole fleet shares.
          if fresh[w[2]] then
            if fresh[w[2]] == 'g' then
              redis.call('HSET', w[2], 'p', w[3], 'n', string.format('%d', w[4]), 'g', '0')
            else
              redis.call('HSET', w[2], 'p', w[3], 'n', string.format('%d', w[4]))
            end
            redis.call('EXPIREAT', w[2], string.format('%d', w[5] + tonumber(ARGV[1])))
          else
            redis.call('HSET', w[2], 'n', string.format('%d', w[4]))
          end
        end
      end
      if usage_days > 0 then
        local today
        if hinted then today = ARGV[5] else today = day_id(now_s) end
        local total = redis.call('HINCRBY', ukey, today, cost)
        if total == cost then
          -- First use of a new day: the record lives `usage_days` past the end of this day,
          -- set once a day rather than on every call.
          redis.call('EXPIREAT', ukey, string.format('%d', (floor(now_s / 86400) + 1 + usage_days) * 86400))
          -- And days past the retention go (fields sort as dates).
          local cutoff = day_id(now_s - usage_days * 86400)
          for _, field in ipairs(redis.call('HKEYS', ukey)) do
            if field < cutoff then redis.call('HDEL', ukey, field) end
          end
        end
      end
    end
  end
end
out[1] = pack('<i8i8', admitted and 1 or 0, now_us)
return table.concat(out)
