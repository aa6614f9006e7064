-- refund.lua: give back the units that a committed check.lua call consumed, when another
-- Redis Cluster slot of the same request refused it afterwards.
--
-- Why a script: each refund must read and rewrite a state atomically, or it could undo a
-- concurrent check's use instead of its own. Only a check spread over several Cluster slots
-- ever needs it (see RedisStore::check_all); a check on one slot is atomic in check.lua. All
-- keys of a call share one slot, the slot check.lua committed to. Time comes from Redis.
--
-- KEYS[i]            the state of refund entry i
-- ARGV[3(i-1)+1..]   three values per entry i:
--                      "t", units * interval_us, ""   throttle TAT: move it back by that much;
--                                                      a TAT no longer in the future is deleted
--                                                      (an idle throttle, as in check.lua)
--                      "q", period id, units          quota hash: subtract units from `n` if
--                                                      `p` is still that period
--                      "u", day id YYYYMMDD, units    usage hash: subtract units from that
--                                                      day's field if it exists
-- Returns            the number of entries applied

local floor = math.floor
local time = redis.call('TIME')
local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
local applied = 0

for i = 1, #KEYS do
  local key = KEYS[i]
  local kind = ARGV[3 * (i - 1) + 1]
  local a = ARGV[3 * (i - 1) + 2]
  local b = ARGV[3 * (i - 1) + 3]
  if kind == 't' then
    local tat = tonumber(redis.call('GET', key) or nil)
    if tat ~= nil then
      local back = tat - tonumber(a)
      if back <= now_us then
        redis.call('DEL', key)
      else
        redis.call('SET', key, string.format('%d', back), 'PXAT', string.format('%d', floor(back / 1000) + 1))
      end
      applied = applied + 1
    end
  elseif kind == 'q' then
    local h = redis.call('HMGET', key, 'p', 'n')
    if h[1] == a then
      redis.call('HSET', key, 'n', string.format('%d', (tonumber(h[2]) or 0) - tonumber(b)))
      applied = applied + 1
    end
  elseif kind == 'u' then
    if redis.call('HEXISTS', key, a) == 1 then
      redis.call('HINCRBY', key, a, -tonumber(b))
      applied = applied + 1
    end
  end
end
return applied
