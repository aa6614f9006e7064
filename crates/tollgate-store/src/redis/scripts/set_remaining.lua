-- set_remaining.lua: set a quota so that `remaining` units are left in its current period
-- (AWS UpdateUsage). The twin of tollgate_core::quota::state_with_remaining.
--
-- Why a script: the current period comes from Redis TIME, as in check.lua, so the state
-- written belongs to the period that checks count in, whatever an instance's clock says, and
-- the period lookup and the write are one step. The calendar (period_window) is check.lua's
-- own: the store runs this file with check.lua's function block (everything above its
-- `local time = redis.call('TIME')` line) in front, so there is one Lua calendar, not two.
--
-- KEYS[1]  the quota state hash {p = period id, n = units used, g = units added to the
--          period's limit} (a check's limit `q`)
-- ARGV[1]  limit per period
-- ARGV[2]  period code (d|w|m|y)
-- ARGV[3]  offset, subtracted from the limit in the anchor's period
-- ARGV[4]  anchor_s: a Unix second inside the quota's first period
-- ARGV[5]  remaining: units to leave in the current period
-- ARGV[6]  seconds a quota record outlives its period
-- Returns  { used, grant, limit, now_us }: the units used this period (kept: the usage
--          report counts them), the grant that leaves `remaining` (negative when it takes
--          units away), the plan's limit in force this period, and Redis's clock

local now = redis.call('TIME')
local now_s = tonumber(now[1])
local now_us = now_s * 1000000 + tonumber(now[2])
local limit = tonumber(ARGV[1])
local period = ARGV[2]
local offset = tonumber(ARGV[3])
local id, _, end_s = period_window(period, now_s)
if offset > 0 and period_window(period, tonumber(ARGV[4])) == id then
  limit = limit - offset
  if limit < 0 then limit = 0 end
end
local h = redis.call('HMGET', KEYS[1], 'p', 'n')
local used = 0
if h[1] == id then used = tonumber(h[2]) or 0 end
local grant = tonumber(ARGV[5]) + used - limit
redis.call('HSET', KEYS[1], 'p', id, 'n', string.format('%d', used), 'g', string.format('%d', grant))
redis.call('EXPIREAT', KEYS[1], string.format('%d', end_s + tonumber(ARGV[6])))
return { used, grant, limit, now_us }
