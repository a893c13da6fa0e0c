#!/bin/sh
echo "************* Module app"
echo "src/app.py:4:0: C0116: Missing function or method docstring (missing-function-docstring)"
echo "Your code has been rated at 8.75/10"
printf '{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"pylint"}},"results":[{"ruleId":"C0116","level":"note","message":{"text":"Missing function or method docstring"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/app.py"},"region":{"startLine":4}}}]}]}]}\n' > reports/lint.sarif
