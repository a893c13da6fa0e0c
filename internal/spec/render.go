package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// RootActionTool is the tool whose action is the repository's root
// action.yml (uses: hoist-ci/hoist@v0).
const RootActionTool = "build-push"

// Render returns every file generated from Tools(), path (slash-separated,
// relative to the repository root) → desired content. repo is the
// repository; existing files are read only to splice the generated regions
// into their hand-written parts. Writing the result is the caller's job.
func Render(repo fs.FS) (map[string][]byte, error) {
	return render(repo, Tools())
}

func render(repo fs.FS, tools []Tool) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, t := range tools {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		action, err := ActionYAML(t)
		if err != nil {
			return nil, err
		}
		files[path.Join("actions", t.Name, "action.yml")] = action
		if files[HostActionPath(t)], err = HostActionYAML(t); err != nil {
			return nil, err
		}
		if files[AzureTemplatePath(t)], err = AzureTemplate(t); err != nil {
			return nil, err
		}
		if t.Name == RootActionTool {
			files["action.yml"] = action
		}

		tmplPath := path.Join("templates", t.Name+".yml")
		tmpl, err := readOr(repo, tmplPath, TemplateStub(t))
		if err != nil {
			return nil, err
		}
		if files[tmplPath], err = SpliceTemplate(tmpl, t); err != nil {
			return nil, fmt.Errorf("%s: %w", tmplPath, err)
		}

		docPath := path.Join("docs", t.Name+".md")
		doc, err := readOr(repo, docPath, DocStub(t))
		if err != nil {
			return nil, err
		}
		if files[docPath], err = SpliceMarkdown(doc, tools); err != nil {
			return nil, fmt.Errorf("%s: %w", docPath, err)
		}
	}
	readme, err := fs.ReadFile(repo, "README.md")
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading README.md: %w", err)
	default:
		if files["README.md"], err = SpliceMarkdown(readme, tools); err != nil {
			return nil, fmt.Errorf("README.md: %w", err)
		}
	}
	return files, nil
}

// readOr reads name from repo, or returns stub when it does not exist.
func readOr(repo fs.FS, name string, stub []byte) ([]byte, error) {
	b, err := fs.ReadFile(repo, name)
	if errors.Is(err, fs.ErrNotExist) {
		return stub, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return b, nil
}

// Stale lists, sorted, the paths of files whose content in repo differs from
// the rendered one (missing files included).
func Stale(repo fs.FS, files map[string][]byte) ([]string, error) {
	var stale []string
	for name, want := range files {
		got, err := fs.ReadFile(repo, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			stale = append(stale, name)
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", name, err)
		case !bytes.Equal(got, want):
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	return stale, nil
}
