-- catalog_restore.lua: put a whole catalog back, for an instance that found the stored one
-- behind the records it enforces (Redis restarted without its data, was flushed, or failed
-- over to a replica that missed writes).
--
-- Why a script: the version check, the removal of what is stored and the writes must be
-- one atomic step, so that of several instances finding the loss at once only the first
-- restores and the others see its version. All keys share the hash tag {cat}, so this is
-- atomic on Redis Cluster too.
--
-- KEYS[1]  catalog version (string; missing = 0)
-- KEYS[2]  plans hash, KEYS[3] keys hash, KEYS[4] members hash
-- ARGV[1]  expected version (the one the caller found)
-- ARGV[2]  version to set
-- ARGV[3]  pub/sub channel to announce the new version on
-- ARGV[4..] triples (op, field, value) as in catalog_commit.lua, all with the action +
-- Returns  { 1, new version } when restored, or { 0, current version } when the catalog
--          has moved on since the caller read it

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return { 0, current }
end
local targets = { p = KEYS[2], k = KEYS[3], m = KEYS[4] }
-- Check every op before writing any, so a bad batch leaves the store as it was.
for i = 4, #ARGV, 3 do
  local op = ARGV[i]
  if targets[string.sub(op, 1, 1)] == nil or string.sub(op, 2, 2) ~= '+'
    or ARGV[i + 2] == nil then
    return redis.error_reply('catalog_restore: malformed op ' .. op)
  end
end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
for i = 4, #ARGV, 3 do
  redis.call('HSET', targets[string.sub(ARGV[i], 1, 1)], ARGV[i + 1], ARGV[i + 2])
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return { 1, tonumber(ARGV[2]) }
