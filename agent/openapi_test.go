package agent

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The committed OpenAPI document and the server agree: the same paths,
// the same methods, every schema referenced defined, every problem code
// the server maps documented somewhere in the document.
func TestOpenAPIMatchesServer(t *testing.T) {
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	table := (&Server{}).table()
	for path, rt := range table {
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("the document lacks %s", path)
			continue
		}
		var want, got []string
		for m := range rt.handlers {
			want = append(want, strings.ToLower(m))
		}
		for m := range ops {
			got = append(got, m)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: the server takes %v, the document says %v", path, want, got)
		}
	}
	for path := range doc.Paths {
		if table[path] == nil {
			t.Errorf("the document lists %s, which the server does not serve", path)
		}
	}
	text := string(OpenAPI)
	for _, ref := range strings.Split(text, `"$ref": "#/components/schemas/`)[1:] {
		name := ref[:strings.IndexByte(ref, '"')]
		if doc.Components.Schemas[name] == nil {
			t.Errorf("schema %s is referenced and not defined", name)
		}
	}
	spec, err := os.ReadFile("../SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	for code := range httpStatus {
		if !strings.Contains(string(spec), "`"+code+"`") {
			t.Errorf("problem code %s is not in SPEC.md's table (§9.4)", code)
		}
	}
}
