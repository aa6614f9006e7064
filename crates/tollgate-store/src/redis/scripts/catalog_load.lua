-- catalog_load.lua: read every control-plane record as one consistent snapshot.
--
-- Why a script: the version and the three hashes must be read at one instant, or a commit
-- landing between the reads would pair new records with an old version. All four keys share
-- the hash tag {cat}, so this runs unchanged on Redis Cluster.
--
-- KEYS[1]  catalog version (string; missing = 0)
-- KEYS[2]  plans hash: plan id -> JSON record
-- KEYS[3]  keys hash: API key id -> JSON record
-- KEYS[4]  members hash: "<plan id>:<key id>" -> "1"
-- Returns  { version, plans as a flat field/value list, keys likewise, member fields }

return {
  redis.call('GET', KEYS[1]) or '0',
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HKEYS', KEYS[4]),
}
