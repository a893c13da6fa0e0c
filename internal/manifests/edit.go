package manifests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options say what to change.
type Options struct {
	// Updates are the parsed `images` entries; the first that matches a
	// reference wins.
	Updates []Update
	// ValuePaths are explicit Helm value paths (global.image.tag).
	ValuePaths []ValuePath
	// Referenced, when set, is called with an update's Name each time a
	// value of that image is found, whether or not it changes (an image
	// already at its new reference is referenced). Files are planned in
	// parallel: it must be safe for concurrent use.
	Referenced func(name string)
}

// Change is one scalar edited (or a key added or removed).
type Change struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Image is the images entry's name.
	Image string `json:"image"`
	// Field says what was edited: "image", "newTag", "marker", a value path...
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// ValuePath is one `value-paths` entry: [image=]dotted.path[:part].
type ValuePath struct {
	Entry string
	// Image names the images entry; empty means the only one.
	Image string
	Path  []string
	// Part is ref, name, tag or digest.
	Part string
}

// ParseValuePath parses [image=]dotted.path[:ref|:name|:tag|:digest]. With
// no part, the last key decides: tag, digest, repository/name/registry-less
// names, anything else a full reference.
func ParseValuePath(entry string) (ValuePath, error) {
	vp := ValuePath{Entry: entry}
	s := strings.TrimSpace(entry)
	if img, rest, ok := strings.Cut(s, "="); ok {
		vp.Image, s = strings.TrimSpace(img), strings.TrimSpace(rest)
	}
	if p, part, ok := strings.Cut(s, ":"); ok {
		switch part {
		case "ref", "name", "tag", "digest":
		default:
			return vp, fmt.Errorf("value-paths entry %q: part %q: want ref, name, tag or digest", entry, part)
		}
		vp.Part, s = part, p
	}
	if s == "" {
		return vp, fmt.Errorf("value-paths entry %q: no path; write e.g. global.image.tag", entry)
	}
	vp.Path = strings.Split(s, ".")
	for _, k := range vp.Path {
		if k == "" {
			return vp, fmt.Errorf("value-paths entry %q: empty key in %q", entry, s)
		}
	}
	if vp.Part == "" {
		switch strings.ToLower(vp.Path[len(vp.Path)-1]) {
		case "tag":
			vp.Part = "tag"
		case "digest":
			vp.Part = "digest"
		case "repository", "name", "repo":
			vp.Part = "name"
		default:
			vp.Part = "ref"
		}
	}
	return vp, nil
}

// ParseError is a file that is not valid YAML.
type ParseError struct {
	File string
	Err  error
}

func (e *ParseError) Error() string {
	if d, ok := e.Err.(*DuplicateKeyError); ok {
		return fmt.Sprintf("%s:%d: %v", e.File, d.Line, d)
	}
	return fmt.Sprintf("%s: not valid YAML: %v", e.File, e.Err)
}
func (e *ParseError) Unwrap() error { return e.Err }

func parseDocs(file string, src []byte) ([]*yaml.Node, error) { return parseDocsAt(file, src, 1) }

// parseDocsAt parses the documents of src, whose first line is line of
// the file: node lines and error messages count from there.
func parseDocsAt(file string, src []byte, line int) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var docs []*yaml.Node
	for {
		var d yaml.Node
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, &ParseError{File: file, Err: shiftErrorLines(err, line-1)}
		}
		if line > 1 {
			shiftLines(&d, line-1)
		}
		if dup := duplicateKey(&d); dup != nil {
			return nil, &ParseError{File: file, Err: dup}
		}
		docs = append(docs, &d)
	}
}

type opKind int

const (
	opSet opKind = iota
	opInsert
	opDelete
)

type op struct {
	kind   opKind
	node   *yaml.Node // the scalar (set) or the mapping (insert, delete)
	key    string
	value  string
	change Change
}

type planner struct {
	file      string
	kustFile  bool
	opts      Options
	ops       []*op
	setOps    map[*yaml.Node]*op
	marked    map[*yaml.Node]bool
	parents   map[*yaml.Node]*yaml.Node
	errs      []error
	flux      []marker
	hoistMark []marker
	plain     plainMemo
}

// Edit plans and applies the edits to one file's bytes. It returns the new
// bytes (nil when nothing changes) and the changes. Every edit is checked
// by parsing the result: on any difference other than the intended one it
// returns an error and no bytes.
//
// A file of several documents is edited one document at a time (split at
// its "---" lines, which YAML forbids inside any scalar): the parsed nodes
// of one document are all that is held besides the bytes, so a large
// manifest bundle costs a few times its size, not the size of its whole
// node tree.
func Edit(file string, src []byte, opts Options) ([]byte, []Change, error) {
	s := newSource(src)
	var (
		out     []byte // nil until a document changes
		changes []Change
		errs    []error
		done    int // bytes of src accounted for in out
	)
	for _, c := range splitDocuments(src) {
		chunkOut, ch, err := editChunk(file, src[c.start:c.end], s, c, opts)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return nil, nil, err
			}
			errs = append(errs, err)
			continue
		}
		if chunkOut == nil {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(src)+len(src)/64)
		}
		out = append(out, src[done:c.start]...)
		out = append(out, chunkOut...)
		done = c.end
		changes = append(changes, ch...)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if out == nil {
		return nil, nil, nil
	}
	return append(out, src[done:]...), changes, nil
}

// editChunk edits the documents in src[c.start:c.end] (b), whose lines
// start at c.line of the file; s indexes the whole file.
func editChunk(file string, b []byte, s *source, c chunk, opts Options) ([]byte, []Change, error) {
	docs, err := parseDocsAt(file, b, c.line)
	if err != nil {
		return nil, nil, err
	}
	base := path.Base(strings.ReplaceAll(file, "\\", "/"))
	p := &planner{
		file:     file,
		kustFile: base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization",
		opts:     opts,
		setOps:   map[*yaml.Node]*op{},
		marked:   map[*yaml.Node]bool{},
		parents:  map[*yaml.Node]*yaml.Node{},
		plain:    s.plain,
	}
	for _, d := range docs {
		p.index(d, nil)
	}
	for _, d := range docs {
		p.collectMarkers(d)
	}
	p.applyMarkers()
	for _, d := range docs {
		p.document(d)
	}
	if len(p.errs) > 0 {
		return nil, nil, errors.Join(p.errs...)
	}
	if len(p.ops) == 0 {
		return nil, nil, nil
	}
	spans, err := p.spans(s)
	if err != nil {
		return nil, nil, err
	}
	for i := range spans {
		spans[i].start -= c.start
		spans[i].end -= c.start
	}
	out, err := apply(b, spans)
	if err != nil {
		return nil, nil, err
	}
	if err := p.verify(docs, out, c.line); err != nil {
		return nil, nil, fmt.Errorf("%s: the edited file does not read back as intended, nothing written: %w", file, err)
	}
	changes := make([]Change, len(p.ops))
	for i, o := range p.ops {
		changes[i] = o.change
	}
	return out, changes, nil
}

func (p *planner) index(n, parent *yaml.Node) {
	if _, seen := p.parents[n]; seen {
		return
	}
	p.parents[n] = parent
	for _, c := range n.Content {
		p.index(c, n)
	}
}

func (p *planner) errorf(n *yaml.Node, format string, a ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.file, line, fmt.Sprintf(format, a...)))
}

func (p *planner) inFlow(n *yaml.Node) bool {
	for a := p.parents[n]; a != nil; a = p.parents[a] {
		if a.Style&yaml.FlowStyle != 0 {
			return true
		}
	}
	return false
}

// set plans a scalar's new value. Scalars claimed by a marker comment are
// only edited through it.
func (p *planner) set(n *yaml.Node, value string, u Update, field string, viaMarker bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return
	}
	p.referenced(u)
	if p.marked[n] && !viaMarker {
		return
	}
	if prev, ok := p.setOps[n]; ok {
		if prev.value != value {
			p.errorf(n, "two images entries want different values here (%q from %q, %q from %q)", prev.value, prev.change.Image, value, u.Entry)
		}
		return
	}
	if n.Value == value {
		return
	}
	o := &op{kind: opSet, node: n, value: value, change: Change{File: p.file, Line: n.Line, Image: u.Name, Field: field, Old: n.Value, New: value}}
	p.setOps[n] = o
	p.ops = append(p.ops, o)
}

func (p *planner) insert(m *yaml.Node, key, value string, u Update, field string) {
	p.referenced(u)
	if value == "" {
		return
	}
	line := m.Line
	if len(m.Content) > 0 {
		line = m.Content[len(m.Content)-1].Line
	}
	p.ops = append(p.ops, &op{kind: opInsert, node: m, key: key, value: value, change: Change{File: p.file, Line: line + 1, Image: u.Name, Field: field, New: value}})
}

func (p *planner) remove(m *yaml.Node, key string, u Update, field string) {
	p.referenced(u)
	_, v := get(m, key)
	p.ops = append(p.ops, &op{kind: opDelete, node: m, key: key, change: Change{File: p.file, Line: v.Line, Image: u.Name, Field: field, Old: v.Value}})
}

// referenced reports that a value of u's image was found.
func (p *planner) referenced(u Update) {
	if p.opts.Referenced != nil {
		p.opts.Referenced(u.Name)
	}
}

// get returns a mapping's key and value nodes.
func get(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func val(m *yaml.Node, key string) *yaml.Node {
	_, v := get(m, key)
	return v
}

// lookup is val that also looks into mappings merged with `<<: *anchor`.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if v := val(m, key); v != nil {
		return v
	}
	merge := val(m, "<<")
	if merge == nil {
		return nil
	}
	sources := []*yaml.Node{merge}
	if merge.Kind == yaml.SequenceNode {
		sources = merge.Content
	}
	for _, s := range sources {
		if s.Kind == yaml.AliasNode && s.Alias != nil {
			if v := val(s.Alias, key); v != nil {
				return v
			}
		}
	}
	return nil
}

func scalar(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func (p *planner) match(repo string) (Update, bool) {
	for _, u := range p.opts.Updates {
		if u.Matches(repo) {
			return u, true
		}
	}
	return Update{}, false
}

// fullRef edits a scalar holding a whole reference (repo:tag@digest).
func (p *planner) fullRef(n *yaml.Node, field string) {
	s, ok := scalar(n)
	if !ok || p.marked[n] {
		return
	}
	r, err := ParseRef(s)
	if err != nil {
		return
	}
	u, ok := p.match(r.Repo())
	if !ok {
		return
	}
	p.set(n, u.Apply(r).String(), u, field, false)
}

var workloadPodSpec = map[string][]string{
	"Pod":         {"spec"},
	"Deployment":  {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"Rollout":     {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
}

func walk(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = val(n, k)
		if n == nil {
			return nil
		}
	}
	return n
}

func (p *planner) document(d *yaml.Node) {
	if len(d.Content) == 0 {
		return
	}
	root := d.Content[0]
	if root.Kind != yaml.MappingNode {
		return
	}
	kind, _ := scalar(val(root, "kind"))
	api, _ := scalar(val(root, "apiVersion"))
	switch {
	case kind == "Kustomization" && strings.HasPrefix(api, "kustomize.config.k8s.io"),
		p.kustFile && (kind == "" || kind == "Kustomization" && !strings.Contains(api, "fluxcd.io")):
		p.kustomization(root)
	case workloadPodSpec[kind] != nil && kind != "" && api != "":
		spec := walk(root, workloadPodSpec[kind]...)
		for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
			seq := val(spec, list)
			if seq == nil || seq.Kind != yaml.SequenceNode {
				continue
			}
			for _, c := range seq.Content {
				p.fullRef(val(c, "image"), list+".image")
			}
		}
	case kind == "OCIRepository" && strings.HasPrefix(api, "source.toolkit.fluxcd.io"):
		p.ociRepository(root)
	case kind == "HelmRelease" && strings.Contains(api, "fluxcd.io"):
		if v := walk(root, "spec", "values"); v != nil {
			p.values(v)
			p.valuePaths(v)
		}
	case (kind == "Application" || kind == "ApplicationSet") && strings.HasPrefix(api, "argoproj.io"):
		spec := val(root, "spec")
		if kind == "ApplicationSet" {
			spec = walk(spec, "template", "spec")
		}
		if src := val(spec, "source"); src != nil {
			p.argoSource(src)
		}
		if srcs := val(spec, "sources"); srcs != nil && srcs.Kind == yaml.SequenceNode {
			for _, src := range srcs.Content {
				p.argoSource(src)
			}
		}
	case kind == "" && api == "":
		p.values(root)
		p.valuePaths(root)
	}
}

// kustomization edits images: entries (name, newName, newTag, digest).
func (p *planner) kustomization(root *yaml.Node) {
	imgs := val(root, "images")
	if imgs == nil || imgs.Kind != yaml.SequenceNode {
		return
	}
	for _, it := range imgs.Content {
		name, ok := scalar(val(it, "name"))
		if !ok {
			continue
		}
		newNameN, newTagN, digestN := val(it, "newName"), val(it, "newTag"), val(it, "digest")
		effective := name
		if s, ok := scalar(newNameN); ok && s != "" {
			effective = s
		}
		u, ok := p.match(effective)
		if !ok {
			if u, ok = p.match(name); !ok {
				continue
			}
		}
		if u.NewRepo != "" && u.NewRepo != effective {
			if newNameN != nil {
				p.set(newNameN, u.NewRepo, u, "newName", false)
			} else if u.NewRepo != name {
				p.insert(it, "newName", u.NewRepo, u, "newName")
			}
		}
		if u.Tag != "" {
			if newTagN != nil {
				p.set(newTagN, u.Tag, u, "newTag", false)
			} else {
				p.insert(it, "newTag", u.Tag, u, "newTag")
			}
		}
		switch {
		case u.Digest != "" && digestN != nil:
			p.set(digestN, u.Digest, u, "digest", false)
		case u.Digest != "":
			p.insert(it, "digest", u.Digest, u, "digest")
		case digestN != nil && digestN.Value != "":
			// A digest left in place would win over the new tag.
			p.remove(it, "digest", u, "digest")
		}
	}
}

func isImageKey(k string) bool {
	return strings.Contains(strings.ToLower(k), "image")
}

// values edits Helm values: mappings with repository (+registry, tag,
// digest), and image-named keys holding whole references.
func (p *planner) values(n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		if _, ok := scalar(lookup(n, "repository")); ok {
			p.imageObject(n)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode {
				if isImageKey(k.Value) {
					p.fullRef(v, k.Value)
				}
				continue
			}
			p.values(v)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			p.values(c)
		}
	}
}

func (p *planner) imageObject(m *yaml.Node) {
	repoN, regN := lookup(m, "repository"), lookup(m, "registry")
	tagN, digestN := val(m, "tag"), val(m, "digest")
	effective := repoN.Value
	if reg, ok := scalar(regN); ok && reg != "" {
		effective = reg + "/" + effective
	}
	r, err := ParseRef(effective)
	if err != nil || r.Tag != "" || r.Digest != "" {
		return
	}
	u, ok := p.match(effective)
	if !ok {
		return
	}
	if u.NewRepo != "" && u.NewRepo != effective {
		nr, _ := ParseRef(u.NewRepo)
		if regN != nil && regN.Kind == yaml.ScalarNode && nr.Domain != "" {
			p.set(regN, nr.Domain, u, "registry", false)
			p.set(repoN, nr.Path, u, "repository", false)
		} else {
			p.set(repoN, u.NewRepo, u, "repository", false)
		}
	}
	if u.Tag != "" {
		if tagN != nil {
			p.set(tagN, u.Tag, u, "tag", false)
		} else {
			p.insert(m, "tag", u.Tag, u, "tag")
		}
	}
	switch {
	case u.Digest != "" && digestN != nil:
		p.set(digestN, u.Digest, u, "digest", false)
	case u.Digest != "" && (u.Tag == "" || u.Pin == PinTagAndDigest):
		p.errorf(repoN, "image %q has no digest key to pin %q to; add `digest: \"\"` next to repository, or use value-paths", effective, u.Digest)
	case digestN != nil && digestN.Value != "" && u.Digest == "":
		p.set(digestN, "", u, "digest", false)
	}
}

// argoSource edits an Argo CD Application source: helm.parameters,
// helm.valuesObject and kustomize.images.
func (p *planner) argoSource(src *yaml.Node) {
	helm := val(src, "helm")
	if params := val(helm, "parameters"); params != nil && params.Kind == yaml.SequenceNode {
		byName := map[string]*yaml.Node{}
		for _, it := range params.Content {
			if name, ok := scalar(val(it, "name")); ok {
				byName[name] = val(it, "value")
			}
		}
		for _, it := range params.Content {
			name, _ := scalar(val(it, "name"))
			v := val(it, "value")
			last := name[strings.LastIndexByte(name, '.')+1:]
			switch {
			case last == "repository":
				p.argoRepositoryParam(name[:len(name)-len(last)], byName)
			case isImageKey(last):
				p.fullRef(v, "helm.parameters."+name)
			}
			for _, vp := range p.opts.ValuePaths {
				if strings.Join(vp.Path, ".") == name {
					p.valuePath(vp, v)
				}
			}
		}
	}
	if vo := val(helm, "valuesObject"); vo != nil {
		p.values(vo)
		p.valuePaths(vo)
	}
	if imgs := val(val(src, "kustomize"), "images"); imgs != nil && imgs.Kind == yaml.SequenceNode {
		for _, n := range imgs.Content {
			s, ok := scalar(n)
			if !ok || p.marked[n] {
				continue
			}
			alias, ref, hasAlias := strings.Cut(s, "=")
			if !hasAlias {
				ref = s
			}
			r, err := ParseRef(ref)
			if err != nil {
				continue
			}
			u, ok := p.match(r.Repo())
			if !ok && hasAlias {
				u, ok = p.match(alias)
			}
			if !ok {
				continue
			}
			nv := u.Apply(r).String()
			if hasAlias {
				nv = alias + "=" + nv
			}
			p.set(n, nv, u, "kustomize.images", false)
		}
	}
}

func (p *planner) argoRepositoryParam(prefix string, byName map[string]*yaml.Node) {
	repoN := byName[prefix+"repository"]
	effective, ok := scalar(repoN)
	if !ok {
		return
	}
	regN := byName[prefix+"registry"]
	if reg, ok := scalar(regN); ok && reg != "" {
		effective = reg + "/" + effective
	}
	u, ok := p.match(effective)
	if !ok {
		return
	}
	if u.NewRepo != "" && u.NewRepo != effective {
		nr, _ := ParseRef(u.NewRepo)
		if regN != nil && nr.Domain != "" {
			p.set(regN, nr.Domain, u, "helm.parameters."+prefix+"registry", false)
			p.set(repoN, nr.Path, u, "helm.parameters."+prefix+"repository", false)
		} else {
			p.set(repoN, u.NewRepo, u, "helm.parameters."+prefix+"repository", false)
		}
	}
	if tagN := byName[prefix+"tag"]; tagN != nil && u.Tag != "" {
		p.set(tagN, u.Tag, u, "helm.parameters."+prefix+"tag", false)
	}
	if digestN := byName[prefix+"digest"]; digestN != nil && (u.Digest != "" || digestN.Value != "") {
		p.set(digestN, u.Digest, u, "helm.parameters."+prefix+"digest", false)
	}
}

func (p *planner) updateFor(image, what string, at *yaml.Node) (Update, bool) {
	if image == "" {
		if len(p.opts.Updates) == 1 {
			return p.opts.Updates[0], true
		}
		p.errorf(at, "%s names no image and there are %d images entries; write image=path", what, len(p.opts.Updates))
		return Update{}, false
	}
	for _, u := range p.opts.Updates {
		if u.Name == image || u.Matches(image) {
			return u, true
		}
	}
	return Update{}, false
}

// valuePaths edits the explicit value paths below a values root.
func (p *planner) valuePaths(root *yaml.Node) {
	for _, vp := range p.opts.ValuePaths {
		if n := walk(root, vp.Path...); n != nil {
			p.valuePath(vp, n)
		}
	}
}

func (p *planner) valuePath(vp ValuePath, n *yaml.Node) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return
	}
	u, ok := p.updateFor(vp.Image, fmt.Sprintf("value-paths entry %q", vp.Entry), n)
	if !ok {
		return
	}
	p.setPart(n, vp.Part, u, strings.Join(vp.Path, "."), false)
}

// setPart edits a scalar that holds one part of a reference.
func (p *planner) setPart(n *yaml.Node, part string, u Update, field string, viaMarker bool) {
	switch part {
	case "tag":
		if u.Tag != "" {
			p.set(n, u.Tag, u, field, viaMarker)
		}
	case "digest":
		p.set(n, u.Digest, u, field, viaMarker)
	case "name":
		if u.NewRepo != "" {
			p.set(n, u.NewRepo, u, field, viaMarker)
		}
	default:
		r, err := ParseRef(n.Value)
		if err != nil {
			r, _ = ParseRef(u.Label())
		}
		p.set(n, u.Apply(r).String(), u, field, viaMarker)
	}
}

// marker is a `# {"$imagepolicy": "ns:name[:part]"}` or `# hoist:image=name[:part]` comment.
type marker struct {
	node *yaml.Node
	key  string // policy ns:name, or image name
	part string // ref, name, tag, digest
}

func markerPart(s string) (string, string) {
	for _, part := range []string{"tag", "name", "digest"} {
		if strings.HasSuffix(s, ":"+part) {
			return strings.TrimSuffix(s, ":"+part), part
		}
	}
	return s, "ref"
}

func (p *planner) collectMarkers(n *yaml.Node) {
	consider := func(v *yaml.Node, comments ...string) {
		if v.Kind != yaml.ScalarNode {
			return
		}
		for _, c := range comments {
			if c == "" {
				continue
			}
			if i := strings.Index(c, "hoist:image="); i >= 0 {
				rest := c[i+len("hoist:image="):]
				if j := strings.IndexAny(rest, " \t\n"); j >= 0 {
					rest = rest[:j]
				}
				name, part := markerPart(rest)
				p.marked[v] = true
				p.hoistMark = append(p.hoistMark, marker{node: v, key: name, part: part})
				return
			}
			if i := strings.Index(c, `"$imagepolicy"`); i >= 0 {
				start := strings.LastIndex(c[:i], "{")
				end := strings.Index(c[i:], "}")
				if start < 0 || end < 0 {
					continue
				}
				var m map[string]string
				if json.Unmarshal([]byte(c[start:i+end+1]), &m) != nil {
					continue
				}
				policy, part := markerPart(m["$imagepolicy"])
				if strings.Count(policy, ":") != 1 {
					continue
				}
				p.marked[v] = true
				p.flux = append(p.flux, marker{node: v, key: policy, part: part})
				return
			}
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			p.collectMarkers(c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			consider(v, v.LineComment, k.LineComment)
			p.collectMarkers(v)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			consider(c, c.LineComment)
			p.collectMarkers(c)
		}
	}
}

// applyMarkers edits marked scalars. A hoist marker names its image; a Flux
// policy is tied to an images entry by a marked full reference or name
// that matches it, else by the policy's name equal to the image's last
// path component.
func (p *planner) applyMarkers() {
	for _, m := range p.hoistMark {
		for _, u := range p.opts.Updates {
			if u.Matches(m.key) {
				p.setPart(m.node, m.part, u, "hoist:image="+m.key, true)
				break
			}
		}
	}
	policies := map[string]Update{}
	for _, m := range p.flux {
		if m.part != "ref" && m.part != "name" {
			continue
		}
		r, err := ParseRef(m.node.Value)
		if err != nil {
			continue
		}
		if u, ok := p.match(r.Repo()); ok {
			if _, seen := policies[m.key]; !seen {
				policies[m.key] = u
			}
		}
	}
	for _, m := range p.flux {
		u, ok := policies[m.key]
		if !ok {
			_, name, _ := strings.Cut(m.key, ":")
			for _, cand := range p.opts.Updates {
				if path.Base(cand.Name) == name || (cand.NewRepo != "" && path.Base(cand.NewRepo) == name) {
					u, ok = cand, true
					break
				}
			}
		}
		if ok {
			p.setPart(m.node, m.part, u, `$imagepolicy `+m.key, true)
		}
	}
}
