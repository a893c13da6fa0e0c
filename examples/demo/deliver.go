package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// deliverImages are examples/deliver's images: NAME → CONTEXT, as the
// deliver component's `images` input lists them.
var deliverImages = []struct{ name, context string }{{"api", "services/api"}, {"web", "web"}}

// deliverPaths is the component's default `paths`: anything but docs.
const deliverPaths = "**,!docs/**,!**/*.md"

// deliverRow is one line of the table: a job of a pipeline and what it did.
type deliverRow struct{ pipeline, job, result string }

// deliverDemo runs examples/deliver through the pipelines of
// templates/deliver.yml on GitLab — a push to main, the tag v1.4.2, a merge
// request, a documentation-only push — with the jobs each pipeline's rules
// select, each one a real binary in the environment GitLab gives the job
// (the component's INPUT_* variables, its ref-files and dotenv reports),
// and prints what every job did.
type deliverDemo struct {
	ctx            context.Context
	bin, src, host string
	base, prefix   string
	gitops         string
	log            io.Writer // the tools' own output, kept for the secret check
	rows           []deliverRow
}

func runDeliver(ctx context.Context, out, log io.Writer, bin, work, host, base string) error {
	d := &deliverDemo{ctx: ctx, bin: bin, host: host, base: base, prefix: host + "/deliver", log: log}
	if err := d.setUp(work); err != nil {
		return err
	}
	mainSHA, err := d.commitAll("the app")
	if err != nil {
		return err
	}
	gl := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"GITLAB_CI": "true", "CI_PROJECT_DIR": d.src, "CI_DEFAULT_BRANCH": "main",
			"CI_SERVER_URL": "https://gitlab.example.com", "CI_PROJECT_PATH": "acme/shop",
			"INPUT_INSECURE_REGISTRIES": host, "SOURCE_DATE_EPOCH": "1700000000",
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	push := func(sha, before string) map[string]string {
		return gl(map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main",
			"CI_COMMIT_SHA": sha, "CI_COMMIT_SHORT_SHA": sha[:8], "CI_COMMIT_BEFORE_SHA": before})
	}

	if err := d.branchPipeline("main "+mainSHA[:8], push(mainSHA, "0000000000000000000000000000000000000000"), true); err != nil {
		return err
	}
	tag := gl(map[string]string{"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.4.2", "CI_COMMIT_REF_NAME": "v1.4.2",
		"CI_COMMIT_SHA": mainSHA, "CI_COMMIT_SHORT_SHA": mainSHA[:8]})
	if err := d.tagPipeline("tag v1.4.2", tag); err != nil {
		return err
	}
	if _, err := git(ctx, d.src, "checkout", "--quiet", "-b", "feature"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.src, "services", "api", "main.sh"), []byte("#!/bin/sh\necho api v2\n"), 0o755); err != nil {
		return err
	}
	mrSHA, err := d.commitAll("api v2")
	if err != nil {
		return err
	}
	mr := gl(map[string]string{"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7",
		"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
		"CI_MERGE_REQUEST_DIFF_BASE_SHA": mainSHA, "CI_COMMIT_REF_NAME": "feature",
		"CI_COMMIT_SHA": mrSHA, "CI_COMMIT_SHORT_SHA": mrSHA[:8]})
	if err := d.branchPipeline("merge request !7", mr, false); err != nil {
		return err
	}
	if _, err := git(ctx, d.src, "checkout", "--quiet", "main"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.src, "docs", "guide.md"), []byte("# Guide\n\nBetter words.\n"), 0o644); err != nil {
		return err
	}
	docsSHA, err := d.commitAll("docs")
	if err != nil {
		return err
	}
	if err := d.branchPipeline("main "+docsSHA[:8]+" (docs)", push(docsSHA, mainSHA), true); err != nil {
		return err
	}

	// What the table says, checked: the GitOps repository ends on the
	// release, the docs-only commit was not built.
	for _, img := range deliverImages {
		got, err := git(ctx, "", "--git-dir", d.gitops, "show", "main:apps/"+img.name+".yaml")
		if err != nil {
			return err
		}
		if !strings.Contains(got, d.prefix+"/"+img.name+":1.4.2@sha256:") {
			return fmt.Errorf("the GitOps repository does not pin %s to 1.4.2 by digest:\n%s", img.name, got)
		}
		if _, err := digestOf(ctx, d.prefix+"/"+img.name+":"+docsSHA[:8]); err == nil {
			return fmt.Errorf("the docs-only commit %s was built", docsSHA[:8])
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tJOB\tWHAT IT DID")
	for _, r := range d.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.pipeline, r.job, r.result)
	}
	return tw.Flush()
}

// setUp copies examples/deliver into a git repository and its GitOps
// manifests into a bare repository, both naming the demo's registry.
func (d *deliverDemo) setUp(work string) error {
	root, err := filepath.Abs(filepath.Join("examples", "deliver"))
	if err != nil {
		return err
	}
	d.src = filepath.Join(work, "deliver-src")
	seed := filepath.Join(work, "deliver-gitops")
	for _, sub := range []string{"services", "web", "docs"} {
		if err := os.CopyFS(filepath.Join(d.src, sub), os.DirFS(filepath.Join(root, sub))); err != nil {
			return fmt.Errorf("copying examples/deliver/%s: %w", sub, err)
		}
	}
	if err := os.CopyFS(seed, os.DirFS(filepath.Join(root, "gitops"))); err != nil {
		return fmt.Errorf("copying examples/deliver/gitops: %w", err)
	}
	for _, app := range deliverImages {
		p := filepath.Join(seed, "apps", app.name+".yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "registry.example.com/acme", d.prefix)), 0o644); err != nil {
			return err
		}
	}
	d.gitops = filepath.Join(work, "deliver-gitops.git")
	for _, args := range [][]string{
		{"init", "--quiet", "--bare", "--initial-branch", "main", d.gitops},
		{"-C", seed, "init", "--quiet", "--initial-branch", "main"},
		{"-C", seed, "add", "-A"},
		{"-C", seed, "-c", "user.name=platform team", "-c", "user.email=platform@acme.invalid", "commit", "--quiet", "-m", "the GitOps repository"},
		{"-C", seed, "push", "--quiet", d.gitops, "main"},
		{"-C", d.src, "init", "--quiet", "--initial-branch", "main"},
	} {
		if _, err := git(d.ctx, "", args...); err != nil {
			return err
		}
	}
	// What the jobs leave in the workspace is not the project's.
	return os.WriteFile(filepath.Join(d.src, ".gitignore"), []byte(".hoist/\n*.env\ngate-reports/\n"), 0o644)
}

func (d *deliverDemo) commitAll(msg string) (string, error) {
	if _, err := git(d.ctx, d.src, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := git(d.ctx, d.src, "-c", "user.name=dev", "-c", "user.email=dev@acme.invalid", "commit", "--quiet", "-m", msg); err != nil {
		return "", err
	}
	sha, err := git(d.ctx, d.src, "rev-parse", "HEAD")
	return strings.TrimSpace(sha), err
}

// job runs one tool as a job of the component: a fresh workspace state
// (the ref-files and reports of earlier pipelines removed, as a new clone
// would be), the job's variables, and its dotenv report read back.
func (d *deliverDemo) job(tool, jobName string, env map[string]string, inputs map[string]string) (map[string]string, error) {
	all := map[string]string{"CI_JOB_NAME": jobName}
	for k, v := range env {
		all[k] = v
	}
	for k, v := range inputs {
		all[k] = v
	}
	if err := runTool(d.ctx, d.log, filepath.Join(d.bin, tool), d.src, nil, all); err != nil {
		return nil, err
	}
	return readDotenv(filepath.Join(d.src, tool+".env"))
}

func (d *deliverDemo) clean() error {
	for _, p := range []string{".hoist", "gate.env", "build-push.env", "retag.env", "bump.env", "gate-reports"} {
		if err := os.RemoveAll(filepath.Join(d.src, p)); err != nil {
			return err
		}
	}
	return nil
}

// branchPipeline: deliver-gate, then deliver-build for every image unless
// the gate found nothing under paths, then on the default branch
// deliver-bump.
func (d *deliverDemo) branchPipeline(title string, env map[string]string, deploy bool) error {
	if err := d.clean(); err != nil {
		return err
	}
	gate, err := d.job("gate", "deliver-gate", env, map[string]string{"INPUT_PATHS": deliverPaths, "INPUT_OUTPUT_PREFIX": "DELIVER_GATE"})
	if err != nil {
		return err
	}
	if gate["DELIVER_GATE_SKIPPED"] == "true" {
		d.rows = append(d.rows, deliverRow{title, "deliver-gate", "skipped: no change under " + deliverPaths})
		for _, img := range deliverImages {
			d.rows = append(d.rows, deliverRow{title, "deliver-build: [" + img.name + "]", "not built"})
		}
		if deploy {
			d.rows = append(d.rows, deliverRow{title, "deliver-bump", "nothing to deploy"})
		}
		return nil
	}
	d.rows = append(d.rows, deliverRow{title, "deliver-gate", "passed"})
	for _, img := range deliverImages {
		upper := strings.ToUpper(img.name)
		outs, err := d.job("build-push", "deliver-build: ["+img.name+", "+img.context+"]", env, map[string]string{
			"INPUT_CONTEXT": img.context, "INPUT_IMAGE": d.prefix + "/" + img.name,
			"INPUT_BUILD_ARGS": "BASE=" + d.base, "INPUT_REF_FILE": ".hoist/refs/" + img.name, "INPUT_OUTPUT_PREFIX": img.name,
		})
		if err != nil {
			return err
		}
		d.rows = append(d.rows, deliverRow{title, "deliver-build: [" + img.name + "]",
			"pushed " + shortTags(outs[upper+"_TAGS"]) + " " + shortDigest(outs[upper+"_DIGEST"])})
	}
	if deploy {
		return d.bump(title, env)
	}
	return nil
}

// tagPipeline: deliver-release (retag, no build) for every image, then
// deliver-bump to the version.
func (d *deliverDemo) tagPipeline(title string, env map[string]string) error {
	if err := d.clean(); err != nil {
		return err
	}
	for _, img := range deliverImages {
		upper := strings.ToUpper(img.name)
		outs, err := d.job("retag", "deliver-release: ["+img.name+", "+img.context+"]", env, map[string]string{
			"INPUT_IMAGE": d.prefix + "/" + img.name, "INPUT_REF_FILE": ".hoist/refs/" + img.name, "INPUT_OUTPUT_PREFIX": img.name,
		})
		if err != nil {
			return err
		}
		d.rows = append(d.rows, deliverRow{title, "deliver-release: [" + img.name + "]",
			"retagged " + shortTags(outs[upper+"_TAGS"]) + " " + shortDigest(outs[upper+"_DIGEST"]) + " (no build)"})
	}
	return d.bump(title, env)
}

func (d *deliverDemo) bump(title string, env map[string]string) error {
	outs, err := d.job("bump", "deliver-bump", env, map[string]string{
		"INPUT_IMAGES_FROM": ".hoist/refs/*", "INPUT_REPOSITORY": d.gitops, "INPUT_BRANCH": "main",
		"INPUT_PATHS": "apps", "INPUT_OUTPUT_PREFIX": "DELIVER_BUMP", "INPUT_AUTHOR": "hoist demo <demo@hoist.invalid>",
		"INPUT_MESSAGE": "chore(deploy): {{.Image}} {{.Version}}",
	})
	if err != nil {
		return err
	}
	d.rows = append(d.rows, deliverRow{title, "deliver-bump", fmt.Sprintf("GitOps commit %.8s: %s", outs["DELIVER_BUMP_COMMIT"], outs["DELIVER_BUMP_FILES"])})
	return nil
}

// shortTags turns "reg/acme/api:latest,reg/acme/api:1a2b3c4d" into "latest, 1a2b3c4d".
func shortTags(tags string) string {
	var out []string
	for _, t := range strings.Split(tags, ",") {
		if i := strings.LastIndex(t, ":"); i >= 0 && !strings.Contains(t[i:], "/") {
			t = t[i+1:]
		}
		if t != "" {
			out = append(out, t)
		}
	}
	return strings.Join(out, ", ")
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return "@" + d[:len("sha256:")+12] + "…"
	}
	return d
}

// readDotenv reads a dotenv report (NAME=value lines); a missing file is
// no outputs.
func readDotenv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok {
			out[k] = v
		}
	}
	return out, s.Err()
}
