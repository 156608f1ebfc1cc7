-- wrk script: POST the JSON body in $BENCH_BODY (with $BENCH_AUTH as a bearer token, when set) and print
-- one machine-readable summary line that bench/load.py parses.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
-- $BENCH_AUTH may list several keys (comma-separated): requests then rotate through them.
local keys = {}
for key in string.gmatch(os.getenv("BENCH_AUTH") or "", "[^,]+") do
  table.insert(keys, key)
end
if #keys == 1 then
  wrk.headers["Authorization"] = "Bearer " .. keys[1]
elseif #keys > 1 then
  local turn = 0
  request = function()
    turn = turn % #keys + 1
    return wrk.format(nil, nil, {["Content-Type"] = "application/json",
                                 ["Authorization"] = "Bearer " .. keys[turn]}, nil)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
