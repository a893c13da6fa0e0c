package spec

// Gate declares the gate tool.
func Gate() Tool {
	return Tool{
		Name:        "gate",
		Title:       "Run lint and tests, enforce thresholds, publish the results natively",
		Description: "Run lint and test commands, read their JUnit, coverage and lint reports, enforce thresholds and publish annotations, a summary and GitLab reports; skip when nothing relevant changed.",
		Stage:       "test",
		Icon:        "check-circle",
		Color:       "green",
		Inputs: append([]Input{
			{Name: "run", Type: Lines, Description: "Commands to run with `sh -c` in the workspace, in order. `name: command` names one, for `score-run` and the log. Each runs in its own log group; exit codes are recorded."},
			{Name: "continue-on-failure", Type: Boolean, Default: "false", Description: "Keep going after a command fails: later commands run and the thresholds alone decide. Without it a failing command fails the gate and the commands after it do not run; the reports are still read and published."},
			{Name: "junit", Type: List, Description: "JUnit XML reports to read (globs relative to the workspace, `**` allowed): pytest, gotestsum/go-junit-report, jest-junit, Maven Surefire and others. A glob that matches nothing fails the gate."},
			{Name: "go-test-json", Type: List, Description: "`go test -json` output files to read (globs). A package that fails to build is a failed test."},
			{Name: "coverage", Type: List, Description: "Coverage reports (globs): Cobertura XML, Go coverprofile, LCOV or JaCoCo XML, detected from the content. Several are merged. Go profiles are measured by statements, the others by lines."},
			{Name: "lint", Type: List, Description: "Lint reports (globs): SARIF 2.1.0, checkstyle XML or GitLab code quality JSON, detected from the content."},
			{Name: "score", Type: String, Description: "A regular expression with one capture group around a number, matched against the commands' output; the last match is the score. Pylint: `rated at ([0-9.]+)/10`."},
			{Name: "score-run", Type: String, Description: "Name of the run (`name: command` in `run`) whose output `score` reads. Default: every run's."},
			{Name: "max-failures", Type: Number, Default: "0", Description: "Most failed or errored tests allowed; -1 for no limit."},
			{Name: "min-tests", Type: Number, Default: "1", Description: "Fewest tests that must have run when `junit` or `go-test-json` is given: with the default a gate whose test reports hold no test fails."},
			{Name: "min-coverage", Type: Number, Description: "Lowest coverage allowed, in percent (0 to 100). Unset: no limit."},
			{Name: "max-findings", Type: List, Description: "Most lint findings allowed: a total (`10`) and/or per severity (`error=0`, `warning=20`, `note=100`). Unset: no limit."},
			{Name: "min-score", Type: Number, Description: "Lowest score allowed (with `score`). Unset: no limit."},
			{Name: "paths", Type: List, Description: "Run only when a file matching one of these globs (`src/**`, `**/*.py`) changed since `base`; otherwise the gate is skipped: nothing runs, `skipped` is true, the job passes. A glob starting with `!` excludes, and the last glob that matches a file decides, as in GitHub's `on.push.paths` (`**`, `!docs/**`, `!**/*.md`: anything but documentation). Unset: always run."},
			{Name: "base", Type: String, Default: "auto", Description: "What `paths` compares HEAD with: a commit, branch or tag, or `auto`: the pull/merge request's base (from the merge base), else the commit a push moved the branch from, else the default branch. Needs the history: `fetch-depth: 0` on GitHub, `GIT_DEPTH: 0` on GitLab."},
			{Name: "on-no-base", Type: String, Default: "run", Options: []string{"run", "skip"}, Description: "With `paths`, what to do when there is nothing to compare with (tag, scheduled and manual pipelines, a base missing from a shallow clone): `run`, as GitLab's `rules:changes` does, or `skip`."},
			{Name: "junit-report", Type: String, GitLabDefault: "gate-reports/junit.xml", AzureDefault: "gate-reports/junit.xml", Description: "Write the merged test results here as JUnit XML (relative to the workspace). The GitLab component declares it under `artifacts:reports:junit` (and keeps `gate-reports/` as artifacts); on Azure Pipelines it is published to the run's Tests tab. Unset: not written."},
			{Name: "codequality-report", Type: String, GitLabDefault: "gate-reports/gl-code-quality-report.json", Description: "Write the lint findings here as a GitLab code quality report (Code Climate JSON with stable fingerprints). The GitLab component declares it under `artifacts:reports:codequality`. Unset: not written."},
			{Name: "coverage-report", Type: String, GitLabDefault: "gate-reports/coverage.xml", AzureDefault: "gate-reports/coverage.xml", Description: "Write the merged coverage here as Cobertura XML, whatever the input format. The GitLab component declares it under `artifacts:reports:coverage_report`; on Azure Pipelines it is published to the run's Code Coverage tab. Unset: not written."},
		}, OutputInputs()...),
		Outputs: []Output{
			{Name: "passed", Description: "`true` when the gate passed or was skipped, else `false`."},
			{Name: "skipped", Description: "`true` when the gate was skipped because nothing under `paths` changed."},
			{Name: "tests", Description: "Number of tests read."},
			{Name: "failures", Description: "Number of failed or errored tests."},
			{Name: "skipped-tests", Description: "Number of skipped tests."},
			{Name: "coverage", Description: "Coverage in percent with two decimals (`83.40`), empty without a coverage report."},
			{Name: "findings", Description: "Number of lint findings."},
			{Name: "score", Description: "The score read by `score`, empty without one."},
		},
	}
}
