-- Health of a playersessions GameSessionPlacement (game.playersessions.dev), from its Ready and Stalled conditions.
-- FULFILLED is Healthy; PENDING Progressing; CANCELLED, TIMED_OUT and FAILED (ended without a game session) Degraded.
local hs = {status = "Progressing", message = "Waiting for the operator to observe the placement"}
if obj.status == nil or obj.status.observedGeneration == nil or obj.metadata.generation == nil
    or obj.status.observedGeneration < obj.metadata.generation or obj.status.conditions == nil then
  return hs
end
local state = obj.status.status or "unknown"
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    return {status = "Degraded", message = state .. ": " .. (c.reason or "") .. ": " .. (c.message or "")}
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      return {status = "Healthy", message = state .. ": " .. (c.message or "")}
    end
    return {status = "Progressing", message = state .. ": " .. (c.message or "")}
  end
end
return hs
