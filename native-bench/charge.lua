-- wrk script: POST /charge with a fresh Idempotency-Key per request (closed
-- loop), for charge-path throughput:
--   wrk -t1 -c64 -d10s --latency -s native-bench/charge.lua http://127.0.0.1:8080/charge
local counter = 0
local prefix = ""
init = function(args)
  prefix = (args[1] or "wrk") .. "-" .. tostring(math.random(1, 1e9)) .. "-"
end
request = function()
  counter = counter + 1
  return wrk.format("POST", "/charge", { ["Content-Type"] = "application/json", ["Idempotency-Key"] = prefix .. counter }, '{"amount":1000,"currency":"USD","source":"tok_visa"}')
end
done = function(summary, latency, requests)
  io.write(string.format("STATUS non2xx=%d timeout=%d\n", summary.errors.status, summary.errors.timeout))
end
