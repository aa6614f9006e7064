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

local rows = {}       -- per limit of every batch: what to answer, packed once admission is known
local pending = {}   -- key -> TAT or units used, from the batches that admitted so far
local raw = {}       -- key -> TAT (false if none) or units used this period, as stored
local grants = {}    -- quota key -> the operator's grant to this period's limit, as stored
local commits = {}   -- per batch that admitted: { writes, cost, usage_days, usage key }
local admitted = true
local fresh = {}     -- quota keys whose record starts a new period in this call
local a = 5          -- ARGV index of the last value read
local k = 0          -- KEYS index of the last key read

for _ = 1, batches do
  local cost = tonumber(ARGV[a + 1])
  local n = tonumber(ARGV[a + 2])
  local usage_days = tonumber(ARGV[a + 3])
  local shadow = ARGV[a + 4] == '1'
  a = a + 4
  local need = cost
  if need < 1 then need = 1 end
  local mine = {}    -- this batch's pending use, kept only if the batch admits
  local before = {}  -- key -> the state this batch found, before its own use
  local writes = {}
  local batch_ok = true
  local batch_rows = {}

  for i = 1, n do
    local key = KEYS[k + i]
    local at = a + (i - 1) * 7
    local kind = ARGV[at + 1]
    local allowed, limit, remaining, retry, reset, used
    local row
    if kind == 't' then
      local interval = tonumber(ARGV[at + 2])
      local burst = tonumber(ARGV[at + 3])
      local window = interval * burst
      local tat = mine[key]
      if tat == nil then
        tat = pending[key]
        if tat == nil then
          if raw[key] == nil then raw[key] = tonumber(redis.call('GET', key) or nil) or false end
          tat = raw[key] or nil
        end
        if before[key] == nil then before[key] = tat or false end
      end
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
      row = { allowed, limit, remaining, retry, reset, used, key, interval, window }
    else
      local period = ARGV[at + 3]
      local id, end_s
      if hinted then
        id, end_s = ARGV[at + 6], tonumber(ARGV[at + 7])
      else
        id, _, end_s = period_window(period, now_s)
      end
      local plan_limit = tonumber(ARGV[at + 2])
      limit = plan_limit
      if ARGV[at + 4] ~= '0' and period_window(period, tonumber(ARGV[at + 5])) == id then
        limit = limit - tonumber(ARGV[at + 4])
        if limit < 0 then limit = 0 end
      end
      used = mine[key]
      if used == nil then
        used = pending[key]
        if used == nil then
          if raw[key] == nil then
            local h = redis.call('HMGET', key, 'p', 'n', 'g')
            if h[1] == id then
              raw[key], grants[key] = tonumber(h[2]) or 0, tonumber(h[3]) or 0
            else
              raw[key], grants[key] = 0, 0
              fresh[key] = true
            end
          end
          used = raw[key]
        end
        if before[key] == nil then before[key] = used end
      end
      -- The operator's grant (set_remaining.lua) moves this period's limit, not the use.
      limit = limit + (grants[key] or 0)
      if limit < 0 then limit = 0 end
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
      row = { allowed, limit, remaining, retry, reset, used, key }
    end
    if not allowed then batch_ok = false end
    batch_rows[i] = row
  end
  a = a + 7 * n
  k = k + n
  local ukey = nil
  if usage_days > 0 then
    k = k + 1
    ukey = KEYS[k]
  end

  if batch_ok then
    for key, v in pairs(mine) do pending[key] = v end
    commits[#commits + 1] = { writes, cost, usage_days, ukey }
  elseif not shadow then
    admitted = false
  end
  rows[#rows + 1] = { batch_ok, before, batch_rows }
end

-- A row as its limit stands in `state` (a TAT or false, or units used) with nothing taken:
-- what a refused batch reports, since it consumed nothing (batch.rs, `as_is`).
local function as_is(row, state)
  if row[8] then
    local interval, window = row[8], row[9]
    local tat = state or now_us
    if tat < now_us then tat = now_us end
    local reset = tat - now_us
    local left = window - reset
    local remaining = 0
    if left > 0 then remaining = (left - left % interval) / interval end
    return row[1], row[2], remaining, row[4], reset, 0
  end
  local remaining = row[2] - state
  if remaining < 0 then remaining = 0 end
  return row[1], row[2], remaining, row[4], row[5], state
end

local out = { '' }  -- out[1] is set last: admitted, now_us
-- An evaluate-only call writes nothing either, so it too reports every limit as stored (its
-- answer is shown only when the request spread over several slots is refused).
local wrote = admitted and commit
for _, b in ipairs(rows) do
  local batch_ok, before, batch_rows = b[1], b[2], b[3]
  for _, row in ipairs(batch_rows) do
    local allowed, limit, remaining, retry, reset, used
    if wrote and batch_ok then
      allowed, limit, remaining, retry, reset, used = row[1], row[2], row[3], row[4], row[5], row[6]
    elseif wrote then
      -- A refused shadow batch: as the earlier batches that commit left its limits.
      allowed, limit, remaining, retry, reset, used = as_is(row, before[row[7]])
    else
      -- A refused (or evaluate-only) call writes nothing: every limit as stored.
      allowed, limit, remaining, retry, reset, used = as_is(row, raw[row[7]])
    end
    out[#out + 1] = pack('<i8i8i8i8i8i8', allowed and 1 or 0, limit, remaining, retry, reset,
      used)
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
            redis.call('HSET', w[2], 'p', w[3], 'n', string.format('%d', w[4]), 'g', '0')
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
