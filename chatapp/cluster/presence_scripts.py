"""Presence's Lua: each change of a user's status is made, and published, atomically.

Redis runs one script at a time, so a status changes in exactly one script
run, on exactly one node, and that run publishes the `PresenceChanged` on the
bus channel itself (origin `*`, see `envelope`): the change and its event
cannot be separated by a crash, and every node hears the changes in the order
Redis made them.

The scripts build the per-user keys from prefixes passed in (ARGV), so they
assume one Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

# The event as `EventCodec` encodes `PresenceChanged`; a test decodes it with the codec.
_PRESENCE_CHANGED = """
local function presence_changed(channel, prefix, user_id, status, last_active_at)
  redis.call('PUBLISH', channel, prefix ..
    '{"type":"PresenceChanged","event":{"user_id":' .. user_id ..
    ',"status":"' .. status .. '","last_active_at":' .. last_active_at .. '}}')
end
"""

# KEYS: deadlines, devices:<user>, user:<user>, revoked:<user>:<device>
# ARGV: member, device_id, now, deadline, persist_interval, channel, prefix, user_id
# -> {came_online, persist, last_active_at}
HEARTBEAT = (
    _PRESENCE_CHANGED
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then return {0, 0, '0'} end
redis.call('ZADD', KEYS[1], 'GT', ARGV[4], ARGV[1])
local now = tonumber(ARGV[3])
local last_active_at = ARGV[3]
local before = redis.call('HGET', KEYS[3], 'last_active_at')
if before and tonumber(before) > now then
  last_active_at = before
else
  redis.call('HSET', KEYS[3], 'last_active_at', ARGV[3])
end
local came_online = 0
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 and redis.call('SCARD', KEYS[2]) == 1 then
  came_online = 1
  presence_changed(ARGV[6], ARGV[7], ARGV[8], 'online', last_active_at)
end
local persist = came_online
if persist == 0 then
  local persisted_at = tonumber(redis.call('HGET', KEYS[3], 'persisted_at') or '0')
  if now - persisted_at >= tonumber(ARGV[5]) then persist = 1 end
end
if persist == 1 then redis.call('HSET', KEYS[3], 'persisted_at', ARGV[3]) end
return {came_online, persist, last_active_at}
"""
)

# KEYS: deadlines, devices:<user>, user:<user>, revoked:<user>:<device>
# ARGV: member, device_id, tombstone_ms, channel, prefix, user_id
# -> {went_offline, last_active_at}
DEVICE_GONE = (
    _PRESENCE_CHANGED
    + """
redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('SREM', KEYS[2], ARGV[2]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then
  local last_active_at = redis.call('HGET', KEYS[3], 'last_active_at') or '0'
  presence_changed(ARGV[4], ARGV[5], ARGV[6], 'offline', last_active_at)
  return {1, last_active_at}
end
return {0, '0'}
"""
)

# KEYS: deadlines
# ARGV: now, limit, devices_prefix, user_prefix, channel, prefix
# -> {expired, user_id, last_active_at, user_id, last_active_at, ...}
# A due device is popped by exactly one run of this script, whichever node
# runs it: every node may sweep, and each expiry happens once.
EXPIRE_DUE = (
    _PRESENCE_CHANGED
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local answer = {#due}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local colon = string.find(member, ':', 1, true)
  local user_id = string.sub(member, 1, colon - 1)
  local devices = ARGV[3] .. user_id
  if redis.call('SREM', devices, string.sub(member, colon + 1)) == 1
      and redis.call('SCARD', devices) == 0 then
    local last_active_at = redis.call('HGET', ARGV[4] .. user_id, 'last_active_at') or '0'
    presence_changed(ARGV[5], ARGV[6], user_id, 'offline', last_active_at)
    table.insert(answer, user_id)
    table.insert(answer, last_active_at)
  end
end
return answer
"""
)

# KEYS: connections:<user>
# ARGV: now, nodes, node_prefix
# -> 1 while a connection's node is live in the registry (this run of it), else 0.
# Entries of a node run that left the registry for good are deleted on the way.
HAS_LIVE_CONNECTION = """
local entries = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local live = 0
for i = 1, #entries, 2 do
  local owner = entries[i + 1]
  local space = string.find(owner, ' ', 1, true)
  local instance = string.sub(owner, 1, space - 1)
  local node_id = string.sub(owner, space + 1)
  if redis.call('HGET', ARGV[3] .. node_id, 'instance') ~= instance then
    redis.call('HDEL', KEYS[1], entries[i])
  elseif tonumber(redis.call('ZSCORE', ARGV[2], node_id) or '0') > now then
    live = 1
  end
end
return live
"""
