-- POST one Open Inference Protocol request body, over and over, on every connection.
--
-- Environment:
--   BENCH_BODY    path of the JSON request body to send (read once per wrk thread)
--   BENCH_RESULT  path where `done` writes the run's numbers as one JSON object
--
-- Latencies are in microseconds, as wrk measures them. No `response` callback is defined, so
-- wrk does not parse response bodies; non-2xx answers are still counted in errors.status.

local function read_file(path)
  local handle = assert(io.open(path, "rb"), "BENCH_BODY: cannot open " .. tostring(path))
  local text = handle:read("*a")
  handle:close()
  return text
end

local body_path = os.getenv("BENCH_BODY")
assert(body_path and body_path ~= "", "BENCH_BODY is not set; it names the request body file")

wrk.method = "POST"
wrk.body = read_file(body_path)
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local result_path = os.getenv("BENCH_RESULT")
  assert(result_path and result_path ~= "", "BENCH_RESULT is not set")
  local errors = summary.errors
  local parts = {
    string.format('"requests": %d', summary.requests),
    string.format('"duration_us": %d', summary.duration),
    string.format('"bytes": %d', summary.bytes),
    string.format(
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
      errors.connect, errors.read, errors.write, errors.status, errors.timeout
    ),
    string.format('"latency_us": {"min": %d, "mean": %.1f, "max": %d, "stdev": %.1f, '
      .. '"p50": %d, "p90": %d, "p99": %d, "p99_9": %d}',
      latency.min, latency.mean, latency.max, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)),
  }
  local handle = assert(io.open(result_path, "w"), "BENCH_RESULT: cannot write " .. result_path)
  handle:write("{" .. table.concat(parts, ", ") .. "}\n")
  handle:close()
end
