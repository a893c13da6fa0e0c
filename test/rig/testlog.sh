#!/usr/bin/env bash
# Reads `go test -json` on stdin and prints, as they end, each package's result
# (ok/FAIL/skip and its time) and each failed test with its output — the log a
# person reads while `make test` runs; the counts come from gate afterwards.
awk '
  function field(name,   re, m) {
    re = "\"" name "\":\"([^\"\\\\]|\\\\.)*\""
    if (match($0, re)) { m = substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 5); return m }
    return ""
  }
  {
    action = field("Action"); pkg = field("Package"); test = field("Test")
    if (action == "output" && test != "") { out[pkg SUBSEP test] = out[pkg SUBSEP test] field("Output") }
    else if (action == "output" && test == "") { pout[pkg] = pout[pkg] field("Output") }
    else if (test != "" && (action == "pass" || action == "skip")) { delete out[pkg SUBSEP test] }
    else if (test != "" && action == "fail") {
      printf "--- FAIL: %s (%s)\n", test, pkg
      s = out[pkg SUBSEP test]; gsub(/\\n/, "\n", s); gsub(/\\t/, "\t", s); gsub(/\\"/, "\"", s); printf "%s", s
      delete out[pkg SUBSEP test]
    }
    else if (test == "" && (action == "pass" || action == "fail" || action == "skip")) {
      el = ""; if (match($0, /"Elapsed":[0-9.]+/)) el = sprintf("%.1fs", substr($0, RSTART + 10, RLENGTH - 10))
      printf "%-4s %s %s\n", (action == "pass" ? "ok" : (action == "fail" ? "FAIL" : "skip")), pkg, el
      if (action == "fail") { s = pout[pkg]; gsub(/\\n/, "\n", s); gsub(/\\t/, "\t", s); gsub(/\\"/, "\"", s); printf "%s", s }
      delete pout[pkg]
    }
    fflush()
  }
'
