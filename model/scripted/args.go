package scripted

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// argNode is a compiled tool-call arguments value. Structured arguments are
// precompiled into a tree whose constant parts are already encoded JSON, so
// rendering writes bytes and executes only the templated leaves.
type argNode struct {
	raw  []byte   // constant JSON for this whole subtree, when it has no template
	tmpl *tmpl    // a templated string leaf
	keys [][]byte // encoded object keys (with quotes), in sorted order
	kids []*argNode
	arr  bool
}

// compiledArgs renders the arguments of one tool call.
type compiledArgs struct {
	// jsonTmpl is set for string-form arguments: the rendered text must be
	// JSON.
	jsonTmpl *tmpl
	tree     *argNode
	path     string
}

var emptyObject = []byte("{}")

func compileArgs(path string, v any) (*compiledArgs, error) {
	if v == nil {
		return &compiledArgs{tree: &argNode{raw: emptyObject}, path: path}, nil
	}
	if s, ok := v.(string); ok {
		t, err := compileTemplate(path, s)
		if err != nil {
			return nil, err
		}
		if t.isLiteral() {
			var c bytes.Buffer
			if err := json.Compact(&c, []byte(s)); err != nil {
				return nil, fmt.Errorf("%s: %q is not valid JSON (%v); write the arguments as a YAML mapping, or as a JSON string", path, truncate(s, 60), err)
			}
			return &compiledArgs{tree: &argNode{raw: c.Bytes()}, path: path}, nil
		}
		return &compiledArgs{jsonTmpl: t, path: path}, nil
	}
	n, err := compileArgNode(path, v, 0)
	if err != nil {
		return nil, err
	}
	return &compiledArgs{tree: n, path: path}, nil
}

func compileArgNode(path string, v any, depth int) (*argNode, error) {
	if depth > 64 {
		return nil, fmt.Errorf("%s: arguments are nested too deeply", path)
	}
	switch v := v.(type) {
	case string:
		t, err := compileTemplate(path, v)
		if err != nil {
			return nil, err
		}
		if t.isLiteral() {
			b, err := marshal(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			return &argNode{raw: b}, nil
		}
		return &argNode{tmpl: t}, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		return compileObject(path, keys, func(k string) any { return v[k] }, depth)
	case map[any]any:
		keys := make([]string, 0, len(v))
		byKey := make(map[string]any, len(v))
		for k, x := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("%s: object keys must be strings, got %v; quote the key", path, k)
			}
			keys = append(keys, ks)
			byKey[ks] = x
		}
		return compileObject(path, keys, func(k string) any { return byKey[k] }, depth)
	case []any:
		n := &argNode{arr: true}
		for i, x := range v {
			kid, err := compileArgNode(fmt.Sprintf("%s[%d]", path, i), x, depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		return n.fold(), nil
	default:
		b, err := marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return &argNode{raw: b}, nil
	}
}

func compileObject(path string, keys []string, get func(string) any, depth int) (*argNode, error) {
	sort.Strings(keys) // JSON objects are unordered; sorting keeps output stable
	n := &argNode{}
	for _, k := range keys {
		kb, err := marshal(k)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		kid, err := compileArgNode(path+"."+k, get(k), depth+1)
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, kb)
		n.kids = append(n.kids, kid)
	}
	return n.fold(), nil
}

// fold turns a container with no templated leaf into constant JSON.
func (n *argNode) fold() *argNode {
	for _, k := range n.kids {
		if k.raw == nil {
			return n
		}
	}
	var b bytes.Buffer
	n.write(&b, nil) // cannot fail: no templates below
	return &argNode{raw: b.Bytes()}
}

func (n *argNode) write(b *bytes.Buffer, d *Data) error {
	if n.raw != nil {
		b.Write(n.raw)
		return nil
	}
	if n.tmpl != nil {
		s, err := n.tmpl.render(d)
		if err != nil {
			return err
		}
		q, err := marshal(s)
		if err != nil {
			return err
		}
		b.Write(q)
		return nil
	}
	if n.arr {
		b.WriteByte('[')
	} else {
		b.WriteByte('{')
	}
	for i, k := range n.kids {
		if i > 0 {
			b.WriteByte(',')
		}
		if !n.arr {
			b.Write(n.keys[i])
			b.WriteByte(':')
		}
		if err := k.write(b, d); err != nil {
			return err
		}
	}
	if n.arr {
		b.WriteByte(']')
	} else {
		b.WriteByte('}')
	}
	return nil
}

func (a *compiledArgs) render(d *Data) ([]byte, error) {
	if a.jsonTmpl != nil {
		s, err := a.jsonTmpl.render(d)
		if err != nil {
			return nil, err
		}
		var c bytes.Buffer
		if err := json.Compact(&c, []byte(s)); err != nil {
			return nil, fmt.Errorf("%s: rendered %q, which is not valid JSON (%v); quote inserted values with {{json ...}}", a.path, truncate(strings.TrimSpace(s), 80), err)
		}
		return c.Bytes(), nil
	}
	if a.tree.raw != nil {
		// Shared constant: callers get their own copy so they may keep or
		// modify it.
		return bytes.Clone(a.tree.raw), nil
	}
	var b bytes.Buffer
	if err := a.tree.write(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
