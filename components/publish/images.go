package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hoist-ci/hoist/internal/manifests"
)

// writeImages writes the images entries into the rendered content with
// bump's editor (byte-exact, every edit verified by parsing the result).
// For render none the directory is copied first: the checkout is never
// changed.
func writeImages(opts Options, src, dir, stage string) (string, error) {
	var updates []manifests.Update
	for _, e := range opts.Images {
		e, err := manifests.Entry(e)
		if err != nil {
			return "", fmt.Errorf("input \"images\": %w", err)
		}
		u, err := manifests.ParseUpdate(e, manifests.PinAuto)
		if err != nil {
			return "", fmt.Errorf("input \"images\": %w", err)
		}
		updates = append(updates, u)
	}
	if dir == src {
		copyDir := filepath.Join(stage, "content")
		if err := os.CopyFS(copyDir, os.DirFS(src)); err != nil {
			return "", fmt.Errorf("copying %s to write the images into it: %w", opts.Path, err)
		}
		dir = copyDir
	}
	used := map[string]int{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		ext := strings.ToLower(path.Ext(rel))
		if (ext != ".yaml" && ext != ".yml") || (opts.renderMode() == RenderHelm && opts.HelmOutput == HelmHelmRelease && strings.HasPrefix(rel, ChartDir+"/")) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out, changes, err := manifests.Edit(rel, data, manifests.Options{Updates: updates})
		var perr *manifests.ParseError
		if errors.As(err, &perr) {
			return nil // validation reports it with its line
		}
		if err != nil {
			return fmt.Errorf("input \"images\": %w", err)
		}
		for _, c := range changes {
			used[c.Image]++
			opts.Log.Info("image written", "file", rel, "line", c.Line, "field", c.Field, "old", c.Old, "new", c.New)
		}
		if out != nil {
			return os.WriteFile(p, out, 0o644)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, u := range updates {
		if used[u.Name] == 0 && !mentions(dir, u) {
			return "", fmt.Errorf("input \"images\": %q matches no image reference in the content of %s (kustomization images:, workloads, Helm values): check the repository name", u.Entry, opts.Path)
		}
	}
	return dir, nil
}

// mentions reports whether some file of the content names the update's
// repository: an entry whose references already hold the new value (a
// rerun) changes nothing, yet is no typo.
func mentions(dir string, u manifests.Update) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && (strings.Contains(string(b), u.Name) || (u.NewRepo != "" && strings.Contains(string(b), u.NewRepo))) {
			found = true
		}
		return nil
	})
	return found
}
