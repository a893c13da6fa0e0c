package manifests

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// DuplicateKeyError is a mapping that holds one key twice. YAML forbids
// it, yet parsers accept it and disagree on which value counts (Go's
// and kubectl's keep the last, others the first): editing one of the two
// could leave the deployed value unchanged, so bump refuses the file.
type DuplicateKeyError struct {
	Key         string
	Line, First int
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate mapping key %q (first at line %d): YAML parsers disagree on which of the two counts "+
		"(kubectl and Argo CD take the last), so bump edits neither; remove one of them", e.Key, e.First)
}

// duplicateKey returns the first duplicate mapping key under n, in
// document order. Aliases are not followed; merge keys (<<) may repeat.
func duplicateKey(n *yaml.Node) *DuplicateKeyError {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.MappingNode {
		first := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				continue
			}
			if line, ok := first[k.Value]; ok {
				return &DuplicateKeyError{Key: k.Value, Line: k.Line, First: line}
			}
			first[k.Value] = k.Line
		}
	}
	for _, c := range n.Content {
		if e := duplicateKey(c); e != nil {
			return e
		}
	}
	return nil
}
