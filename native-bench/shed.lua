-- POST /charge with a valid body and a fresh key: against a gateway whose
-- admission limit is held, every one of these is parsed, validated and shed.
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/charge", { ["Content-Type"] = "application/json", ["Idempotency-Key"] = "shed-" .. counter }, '{"amount":1000,"currency":"USD","source":"tok_visa"}')
end
