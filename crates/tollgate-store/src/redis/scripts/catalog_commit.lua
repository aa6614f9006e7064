-- catalog_commit.lua: apply a batch of record changes if the catalog is still at the version
-- the caller validated them against, bump the version and announce it.
--
-- Why a script: the version check and the writes must be one atomic step. The caller has
-- checked the changed catalog as a whole (unique key values, one plan per key and API stage,
-- no dangling references) at version ARGV[1]; if another instance committed since, nothing is
-- written and the caller re-reads and re-validates. All keys share the hash tag {cat}, so
-- this is atomic on Redis Cluster too.
--
-- KEYS[1]  catalog version (string; missing = 0)
-- KEYS[2]  plans hash, KEYS[3] keys hash, KEYS[4] members hash
-- ARGV[1]  expected version
-- ARGV[2]  pub/sub channel to announce the new version on
-- ARGV[3..] triples (op, field, value), op = target and action:
--            target p (plans), k (keys) or m (members); action + (HSET field value)
--            or - (HDEL field; value ignored)
-- Returns  { 1, new version } when applied (an empty batch writes nothing and returns the
--          current version), or { 0, current version } when the catalog has moved on

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return { 0, current }
end
if #ARGV < 3 then
  return { 1, current }
end
local targets = { p = KEYS[2], k = KEYS[3], m = KEYS[4] }
-- Check every op before writing any, so a bad batch writes nothing.
for i = 3, #ARGV, 3 do
  local op = ARGV[i]
  local action = string.sub(op, 2, 2)
  if targets[string.sub(op, 1, 1)] == nil or (action ~= '+' and action ~= '-')
    or ARGV[i + 2] == nil then
    return redis.error_reply('catalog_commit: malformed op ' .. op)
  end
end
for i = 3, #ARGV, 3 do
  local key = targets[string.sub(ARGV[i], 1, 1)]
  if string.sub(ARGV[i], 2, 2) == '+' then
    redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', key, ARGV[i + 1])
  end
end
local version = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[2], version)
return { 1, version }
