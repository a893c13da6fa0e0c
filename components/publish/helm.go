package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
	"helm.sh/helm/v4/pkg/strvals"

	"github.com/hoist-ci/hoist/internal/bucket"
)

// ChartDir is where helm-output helmrelease puts the chart in the content.
const ChartDir = "chart"

// HelmRequest asks for a chart rendered to plain manifests.
type HelmRequest struct {
	// Chart is the chart's directory.
	Chart string
	// Out is the directory the manifests are written to, one file per
	// template as `helm template --output-dir` lays them out.
	Out       string
	Release   string
	Namespace string
	// Values are the user's values (files merged, set lines applied); the
	// chart's own values.yaml is below them.
	Values map[string]any
}

// HelmRenderer renders Helm charts. The Helm template engine links the
// Kubernetes client libraries (about 28 MB of binary and 40 ms of start-up),
// so publish keeps it out of its own binary: ExecHelm runs it in the
// publish-helm binary only when a chart is rendered.
type HelmRenderer interface {
	RenderChart(ctx context.Context, req HelmRequest) error
}

// ExecHelm runs the publish-helm binary at Path.
type ExecHelm struct{ Path string }

// HelmBinary is the name of the binary that renders Helm charts.
const HelmBinary = "publish-helm"

// RenderChart runs `publish-helm --chart ... --out ...` with the values as
// JSON on its standard input.
func (e ExecHelm) RenderChart(ctx context.Context, req HelmRequest) error {
	values, err := json.Marshal(req.Values)
	if err != nil {
		return fmt.Errorf("encoding the values for %s: %w", HelmBinary, err)
	}
	cmd := exec.CommandContext(ctx, e.Path, "--chart", req.Chart, "--out", req.Out, "--release", req.Release, "--namespace", req.Namespace)
	cmd.Stdin = bytes.NewReader(values)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return nil
}

// FindHelm looks for publish-helm beside the running binary, then on PATH.
func FindHelm() (HelmRenderer, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), HelmBinary)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return ExecHelm{Path: p}, nil
		}
	}
	p, err := exec.LookPath(HelmBinary)
	if err != nil {
		return nil, fmt.Errorf("render: helm with helm-output: manifests needs the %s binary beside publish or on PATH: hoist's image leaves it out to stay small; put it on the job's PATH (go build ./actions/%s), or write helm-output: helmrelease to let Flux render the chart", HelmBinary, HelmBinary)
	}
	return ExecHelm{Path: p}, nil
}

// chartMeta is what publish reads of Chart.yaml.
type chartMeta struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
}

func readChart(dir, input string) (chartMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return chartMeta{}, fmt.Errorf("input \"path\": %s has no Chart.yaml, so render: helm has no chart to render", input)
	}
	if err != nil {
		return chartMeta{}, err
	}
	var m chartMeta
	if err := yaml.Unmarshal(b, &m); err != nil {
		return chartMeta{}, fmt.Errorf("%s%w", filepath.Join(input, "Chart.yaml"), yamlError(err))
	}
	if m.Name == "" {
		return chartMeta{}, fmt.Errorf("%s: the chart has no name", filepath.Join(input, "Chart.yaml"))
	}
	return m, nil
}

// helmValues merges the values files in order (maps merged key by key,
// anything else replaced, as `helm -f a.yaml -f b.yaml`) and applies the
// set lines with Helm's own parser (as `--set`).
func helmValues(opts Options) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range opts.Values {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(opts.Workspace, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("input \"values\": %w", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("input \"values\": %s%w", f, yamlError(err))
		}
		base = mergeValues(base, m)
	}
	for _, line := range opts.Set {
		if err := strvals.ParseInto(line, base); err != nil {
			return nil, fmt.Errorf("input \"set\": %q: %w (write key=value, a.b=c, list[0]=x)", line, err)
		}
	}
	return base, nil
}

func mergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeValues(am, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// renderHelm renders the chart at src to manifests, or keeps it beside a
// HelmRelease carrying the values.
func renderHelm(ctx context.Context, opts Options, src, stage string) (string, error) {
	chart, err := readChart(src, opts.Path)
	if err != nil {
		return "", err
	}
	values, err := helmValues(opts)
	if err != nil {
		return "", err
	}
	release := opts.ReleaseName
	if release == "" {
		release = chart.Name
	}
	dir := filepath.Join(stage, "content")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	if opts.HelmOutput == HelmHelmRelease {
		return dir, helmRelease(opts, src, dir, release, values)
	}
	if opts.Helm == nil {
		return "", fmt.Errorf("render: helm with helm-output: manifests needs the %s binary (not in hoist's image: go build ./actions/%s onto PATH); helm-output: helmrelease needs none", HelmBinary, HelmBinary)
	}
	ns := opts.Namespace
	if ns == "" {
		ns = "default"
	}
	if err := opts.Helm.RenderChart(ctx, HelmRequest{Chart: src, Out: dir, Release: release, Namespace: ns, Values: values}); err != nil {
		return "", fmt.Errorf("helm template %s (chart %s %s): %w", opts.Path, chart.Name, chart.Version, err)
	}
	opts.Log.Info("helm template", "chart", chart.Name, "version", chart.Version, "release", release, "namespace", ns)
	return dir, nil
}

// helmRelease writes chart/ (the chart as it is), helmrelease.yaml and a
// kustomization.yaml that applies only the HelmRelease.
func helmRelease(opts Options, src, dir, release string, values map[string]any) error {
	sourceRef, err := helmSourceRef(opts, release)
	if err != nil {
		return err
	}
	if err := os.CopyFS(filepath.Join(dir, ChartDir), os.DirFS(src)); err != nil {
		return fmt.Errorf("copying the chart %s: %w", opts.Path, err)
	}
	chartPath := "./" + ChartDir
	if sourceRef["kind"] == "Bucket" && opts.Bucket != "" {
		// A Bucket's artifact holds the objects under their full keys.
		if loc, err := bucket.ParseURL(opts.Bucket); err == nil && loc.Prefix != "" {
			chartPath = "./" + loc.Prefix + "/" + ChartDir
		}
	}
	spec := map[string]any{
		"interval":    "10m",
		"releaseName": release,
		"chart": map[string]any{"spec": map[string]any{
			"chart":             chartPath,
			"reconcileStrategy": "Revision",
			"sourceRef":         sourceRef,
		}},
	}
	if opts.Namespace != "" {
		spec["targetNamespace"] = opts.Namespace
	}
	if len(values) > 0 {
		spec["values"] = values
	}
	hr := yamlDoc(
		"apiVersion", "helm.toolkit.fluxcd.io/v2",
		"kind", "HelmRelease",
		"metadata", map[string]any{"name": release},
		"spec", spec,
	)
	kust := yamlDoc(
		"apiVersion", "kustomize.config.k8s.io/v1beta1",
		"kind", "Kustomization",
		"resources", []any{"helmrelease.yaml"},
	)
	for name, node := range map[string]*yaml.Node{"helmrelease.yaml": hr, "kustomization.yaml": kust} {
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(node); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	opts.Log.Info("HelmRelease with the chart", "release", release, "source", fmt.Sprintf("%s/%s", sourceRef["kind"], sourceRef["name"]))
	return nil
}

// yamlDoc is a mapping with its keys in the given order (nested maps are
// written with sorted keys).
func yamlDoc(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		var k, v yaml.Node
		_ = k.Encode(kv[i])
		_ = v.Encode(kv[i+1])
		m.Content = append(m.Content, &k, &v)
	}
	return m
}

func helmSourceRef(opts Options, release string) (map[string]any, error) {
	s := opts.HelmSource
	if s == "" {
		if opts.Bucket == "" {
			return nil, errors.New(`helm-output: helmrelease needs "helm-source": the Flux source the HelmRelease reads the chart from (Bucket/NAME or GitRepository/NAME); with "bucket" it defaults to Bucket/<release-name>`)
		}
		s = "Bucket/" + release
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("input \"helm-source\": %q: write Kind/name or Kind/namespace/name (Bucket/app-config)", s)
	}
	switch parts[0] {
	case "Bucket", "GitRepository":
	default:
		return nil, fmt.Errorf("input \"helm-source\": kind %q: a HelmRelease reads a chart directory from a Bucket or a GitRepository", parts[0])
	}
	ref := map[string]any{"kind": parts[0], "name": parts[len(parts)-1]}
	if len(parts) == 3 {
		ref["namespace"] = parts[1]
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("input \"helm-source\": %q has an empty part", s)
		}
	}
	return ref, nil
}
