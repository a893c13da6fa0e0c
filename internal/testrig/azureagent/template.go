package azureagent

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template expansion: the part of Azure Pipelines' template language hoist's
// step templates and examples use — typed parameters with defaults and
// allowed values, ${{ parameters.x }} / ${{ parameters['x'] }} (a whole value
// keeps its type; inside a string, booleans read True/False), conditional
// insertion with ${{ if }}, ${{ elseif }}, ${{ else }} (eq, ne, and, or, not;
// string comparisons ignore case), and ${{ each pair in parameters.x }} over
// a mapping. Anything else is an error, so a template that drifts beyond
// what is emulated fails its test instead of passing untested.

// Parameter is a template parameter's declaration.
type Parameter struct {
	Name, Type string
	Default    any
	HasDefault bool
	Values     []string
}

// ExpandTemplate reads a template, binds args to its typed parameters and
// returns its expanded document (parameters removed).
func ExpandTemplate(src []byte, args map[string]any) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("parsing the template: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("the template is not one YAML document")
	}
	var raw map[string]any
	if err := doc.Content[0].Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding the template: %w", err)
	}
	decls, err := Parameters(raw["parameters"])
	if err != nil {
		return nil, err
	}
	params, err := bind(decls, args)
	if err != nil {
		return nil, err
	}
	delete(raw, "parameters")
	out, err := expand(raw, scope{"parameters": params})
	if err != nil {
		return nil, err
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the expanded template is not a mapping")
	}
	return m, nil
}

// Parameters reads the parameters: sequence of a template.
func Parameters(v any) ([]Parameter, error) {
	list, ok := v.([]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("parameters: want a sequence of {name, type, default}")
	}
	var out []Parameter
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parameters: an entry is not a mapping")
		}
		p := Parameter{Type: "string"}
		p.Name, _ = m["name"].(string)
		if p.Name == "" {
			return nil, fmt.Errorf("parameters: an entry has no name")
		}
		if t, ok := m["type"].(string); ok {
			p.Type = t
		}
		p.Default, p.HasDefault = m["default"]
		if vals, ok := m["values"].([]any); ok {
			for _, v := range vals {
				p.Values = append(p.Values, fmt.Sprint(v))
			}
		}
		if p.HasDefault {
			if _, err := p.check(p.Default); err != nil {
				return nil, fmt.Errorf("parameter %s: its default: %w", p.Name, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// check converts a value to the parameter's type as Azure does, or says
// why it cannot.
func (p Parameter) check(v any) (any, error) {
	switch p.Type {
	case "string":
		switch v.(type) {
		case string, bool, int, float64:
			s := Stringify(v)
			if len(p.Values) > 0 && !containsFold(p.Values, s) {
				return nil, fmt.Errorf("%q is not one of the allowed values %v", s, p.Values)
			}
			return s, nil
		}
		return nil, fmt.Errorf("%v is not a string", v)
	case "boolean":
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			if strings.EqualFold(b, "true") || strings.EqualFold(b, "false") {
				return strings.EqualFold(b, "true"), nil
			}
		}
		return nil, fmt.Errorf("%v is not a boolean", v)
	case "number":
		switch n := v.(type) {
		case int, float64:
			return n, nil
		case string:
			if f, err := strconv.ParseFloat(n, 64); err == nil {
				return f, nil
			}
		}
		return nil, fmt.Errorf("%v is not a number", v)
	case "object", "step", "stepList", "job", "jobList", "stage", "stageList":
		return v, nil
	}
	return nil, fmt.Errorf("type %q is not emulated", p.Type)
}

func bind(decls []Parameter, args map[string]any) (map[string]any, error) {
	out := map[string]any{}
	known := map[string]bool{}
	for _, p := range decls {
		known[p.Name] = true
		v, given := args[p.Name]
		if !given {
			if !p.HasDefault {
				return nil, fmt.Errorf("a value for the '%s' parameter must be provided", p.Name)
			}
			v = p.Default
		}
		c, err := p.check(v)
		if err != nil {
			return nil, fmt.Errorf("the '%s' parameter: %w", p.Name, err)
		}
		out[p.Name] = c
	}
	for k := range args {
		if !known[k] {
			return nil, fmt.Errorf("unexpected parameter '%s'", k)
		}
	}
	return out, nil
}

// Stringify renders a value as Azure does when it becomes text.
func Stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

type scope map[string]any

var exprPattern = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

func expand(v any, sc scope) (any, error) {
	switch x := v.(type) {
	case string:
		return expandString(x, sc)
	case []any:
		return expandSequence(x, sc)
	case map[string]any:
		return expandMapping(x, sc)
	}
	return v, nil
}

func expandString(s string, sc scope) (any, error) {
	if m := exprPattern.FindStringSubmatchIndex(s); m != nil && m[0] == 0 && m[1] == len(s) {
		return eval(s[m[2]:m[3]], sc)
	}
	var err error
	out := exprPattern.ReplaceAllStringFunc(s, func(e string) string {
		v, eerr := eval(exprPattern.FindStringSubmatch(e)[1], sc)
		if eerr != nil && err == nil {
			err = eerr
		}
		return Stringify(v)
	})
	return out, err
}

// directive reads a key such as "${{ if eq(a, b) }}".
func directive(key string) (kind, arg string, ok bool) {
	m := exprPattern.FindStringSubmatch(key)
	if m == nil || m[0] != key {
		return "", "", false
	}
	body := m[1]
	for _, k := range []string{"if ", "elseif ", "each "} {
		if strings.HasPrefix(body, k) {
			return strings.TrimSpace(k), strings.TrimSpace(body[len(k):]), true
		}
	}
	if body == "else" {
		return "else", "", true
	}
	return "", "", false
}

func expandSequence(items []any, sc scope) (any, error) {
	out := []any{}
	taken := false // a branch of the current if/elseif/else chain was taken
	for _, item := range items {
		if m, ok := item.(map[string]any); ok && len(m) == 1 {
			var key string
			var body any
			for k, v := range m {
				key, body = k, v
			}
			if kind, arg, ok := directive(key); ok {
				var take bool
				switch kind {
				case "if":
					c, err := evalBool(arg, sc)
					if err != nil {
						return nil, err
					}
					take, taken = c, c
				case "elseif":
					c, err := evalBool(arg, sc)
					if err != nil {
						return nil, err
					}
					take = !taken && c
					taken = taken || c
				case "else":
					take, taken = !taken, true
				default:
					return nil, fmt.Errorf("%s in a sequence is not emulated", key)
				}
				if !take {
					continue
				}
				e, err := expand(body, sc)
				if err != nil {
					return nil, err
				}
				if list, ok := e.([]any); ok {
					out = append(out, list...)
				} else if e != nil {
					out = append(out, e)
				}
				continue
			}
		}
		e, err := expand(item, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func expandMapping(m map[string]any, sc scope) (any, error) {
	out := map[string]any{}
	// A mapping's keys come unordered here, so an if/elseif/else chain
	// among them is not emulated: a lone ${{ if }} is.
	for _, k := range sortedKeys(m) {
		v := m[k]
		if kind, arg, ok := directive(k); ok {
			switch kind {
			case "elseif", "else":
				return nil, fmt.Errorf("%s in a mapping is not emulated", k)
			case "if":
				take, err := evalBool(arg, sc)
				if err != nil {
					return nil, err
				}
				if !take {
					continue
				}
				e, err := expand(v, sc)
				if err != nil {
					return nil, err
				}
				if err := merge(out, e, k); err != nil {
					return nil, err
				}
			case "each":
				name, in, ok := strings.Cut(arg, " in ")
				if !ok {
					return nil, fmt.Errorf("%s: want each <name> in <expression>", k)
				}
				coll, err := eval(strings.TrimSpace(in), sc)
				if err != nil {
					return nil, err
				}
				cm, ok := coll.(map[string]any)
				if !ok {
					if coll == nil {
						continue
					}
					return nil, fmt.Errorf("%s: only a mapping is emulated", k)
				}
				for _, ck := range sortedKeys(cm) {
					inner := scope{}
					for sk, sv := range sc {
						inner[sk] = sv
					}
					inner[strings.TrimSpace(name)] = map[string]any{"key": ck, "value": cm[ck]}
					e, err := expand(v, inner)
					if err != nil {
						return nil, err
					}
					if err := merge(out, e, k); err != nil {
						return nil, err
					}
				}
			}
			continue
		}
		ek, err := expandString(k, sc)
		if err != nil {
			return nil, err
		}
		e, err := expand(v, sc)
		if err != nil {
			return nil, err
		}
		out[Stringify(ek)] = e
	}
	return out, nil
}

func merge(out map[string]any, e any, key string) error {
	em, ok := e.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: the inserted value is not a mapping", key)
	}
	for k, v := range em {
		out[k] = v
	}
	return nil
}

func evalBool(expr string, sc scope) (bool, error) {
	v, err := eval(expr, sc)
	if err != nil {
		return false, err
	}
	return truthy(v), nil
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int:
		return x != 0
	case float64:
		return x != 0
	}
	return true
}

// eval evaluates the emulated expression language.
func eval(expr string, sc scope) (any, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, fmt.Errorf("empty expression")
	}
	if strings.HasPrefix(expr, "'") && strings.HasSuffix(expr, "'") && len(expr) >= 2 {
		return strings.ReplaceAll(expr[1:len(expr)-1], "''", "'"), nil
	}
	switch expr {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if f, err := strconv.ParseFloat(expr, 64); err == nil {
		return f, nil
	}
	if open := strings.IndexByte(expr, '('); open > 0 && strings.HasSuffix(expr, ")") && isIdent(expr[:open]) {
		fn := strings.ToLower(expr[:open])
		args, err := splitArgs(expr[open+1 : len(expr)-1])
		if err != nil {
			return nil, err
		}
		var vals []any
		for _, a := range args {
			v, err := eval(a, sc)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		}
		switch {
		case fn == "eq" && len(vals) == 2:
			return equal(vals[0], vals[1]), nil
		case fn == "ne" && len(vals) == 2:
			return !equal(vals[0], vals[1]), nil
		case fn == "not" && len(vals) == 1:
			return !truthy(vals[0]), nil
		case fn == "and" && len(vals) >= 2:
			for _, v := range vals {
				if !truthy(v) {
					return false, nil
				}
			}
			return true, nil
		case fn == "or" && len(vals) >= 2:
			for _, v := range vals {
				if truthy(v) {
					return true, nil
				}
			}
			return false, nil
		}
		return nil, fmt.Errorf("function %s with %d arguments is not emulated", fn, len(vals))
	}
	return lookup(expr, sc)
}

// lookup resolves a.b['c'].d against the scope; an unknown name is an
// error (a template referring to a parameter it does not declare).
func lookup(expr string, sc scope) (any, error) {
	var cur any = map[string]any(sc)
	rest := expr
	for i := 0; rest != ""; i++ {
		var key string
		switch {
		case strings.HasPrefix(rest, "['"):
			end := strings.Index(rest, "']")
			if end < 0 {
				return nil, fmt.Errorf("%s: unterminated index", expr)
			}
			key, rest = rest[2:end], rest[end+2:]
		default:
			if i > 0 {
				if !strings.HasPrefix(rest, ".") {
					return nil, fmt.Errorf("%s does not parse", expr)
				}
				rest = rest[1:]
			}
			j := strings.IndexAny(rest, ".[")
			if j < 0 {
				j = len(rest)
			}
			key, rest = rest[:j], rest[j:]
			if !isIdent(key) {
				return nil, fmt.Errorf("%s does not parse", expr)
			}
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a mapping", expr, key)
		}
		v, found := m[key]
		if !found {
			return nil, fmt.Errorf("%s: unknown name %q", expr, key)
		}
		cur = v
	}
	return cur, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

func splitArgs(s string) ([]string, error) {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if quoted || depth != 0 {
		return nil, fmt.Errorf("(%s) does not parse", s)
	}
	if strings.TrimSpace(s[start:]) != "" || len(out) > 0 {
		out = append(out, strings.TrimSpace(s[start:]))
	}
	return out, nil
}

// equal compares as Azure's eq: strings without regard to case, a string
// and a boolean or number after converting the string.
func equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.EqualFold(x, y)
		}
		return strings.EqualFold(x, Stringify(b))
	case bool:
		return truthy(b) == x
	case float64, int:
		return Stringify(a) == Stringify(b)
	}
	return a == nil && b == nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
