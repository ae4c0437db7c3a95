package indexproxy

import (
	"encoding/json"
	"maps"
	"net/url"
	"testing"
)

func testLinker(t *testing.T, records map[string]bool) *linker {
	t.Helper()
	index, err := url.Parse("http://up.example/simple/")
	if err != nil {
		t.Fatal(err)
	}
	return &linker{index: index, prefix: "/i/0/", record: func(u string, adv bool) { records[u] = adv }}
}

func TestRewriteHTML(t *testing.T) {
	const (
		project = "http://up.example/simple/alpha/"
		meta    = ` data-dist-info-metadata="true" data-core-metadata="true"`
	)
	alpha := "http://up.example/files/alpha-1.0-py3-none-any.whl"
	tests := []struct {
		name    string
		pageURL string
		in      string
		want    string
		records map[string]bool
	}{{
		name:    "relative href, fragment kept",
		pageURL: project,
		in:      `<a href="../../files/alpha-1.0-py3-none-any.whl#sha256=abc">alpha-1.0-py3-none-any.whl</a><br>`,
		want:    `<a href="/f/` + token(alpha) + `/alpha-1.0-py3-none-any.whl#sha256=abc"` + meta + `>alpha-1.0-py3-none-any.whl</a><br>`,
		records: map[string]bool{alpha: false},
	}, {
		name:    "absolute href to another host",
		pageURL: project,
		in:      `<a href="https://files.example/packages/ab/beta-2.0-py3-none-any.whl">beta</a>`,
		want: `<a href="/f/` + token("https://files.example/packages/ab/beta-2.0-py3-none-any.whl") +
			`/beta-2.0-py3-none-any.whl"` + meta + `>beta</a>`,
		records: map[string]bool{"https://files.example/packages/ab/beta-2.0-py3-none-any.whl": false},
	}, {
		name:    "escaped ampersand",
		pageURL: project,
		in:      `<a href="/dl/alpha-1.0-py3-none-any.whl?a=1&amp;b=2">x</a>`,
		want: `<a href="/f/` + token("http://up.example/dl/alpha-1.0-py3-none-any.whl?a=1&b=2") +
			`/alpha-1.0-py3-none-any.whl"` + meta + `>x</a>`,
		records: map[string]bool{"http://up.example/dl/alpha-1.0-py3-none-any.whl?a=1&b=2": false},
	}, {
		name:    "metadata already advertised",
		pageURL: project,
		in:      `<a href="/files/alpha-1.0-py3-none-any.whl#sha256=abc" data-dist-info-metadata="sha256=def">x</a>`,
		want:    `<a href="/f/` + token(alpha) + `/alpha-1.0-py3-none-any.whl#sha256=abc" data-dist-info-metadata="sha256=def">x</a>`,
		records: map[string]bool{alpha: true},
	}, {
		name:    "PEP 714 name alone",
		pageURL: project,
		in:      `<a data-core-metadata="sha256=def" href="/files/alpha-1.0-py3-none-any.whl">x</a>`,
		want:    `<a data-core-metadata="sha256=def" href="/f/` + token(alpha) + `/alpha-1.0-py3-none-any.whl">x</a>`,
		records: map[string]bool{alpha: true},
	}, {
		name:    "sdist gets no metadata attribute",
		pageURL: project,
		in:      `<a href="/files/alpha-1.0.tar.gz#sha256=abc" data-requires-python="&gt;=3.8">alpha-1.0.tar.gz</a>`,
		want: `<a href="/f/` + token("http://up.example/files/alpha-1.0.tar.gz") +
			`/alpha-1.0.tar.gz#sha256=abc" data-requires-python="&gt;=3.8">alpha-1.0.tar.gz</a>`,
		records: map[string]bool{"http://up.example/files/alpha-1.0.tar.gz": false},
	}, {
		name:    "upper case, single quotes, unescaped > in a value",
		pageURL: project,
		in:      `<A data-requires-python=">=3.8" HREF='alpha-1.0-py3-none-any.whl'>x</A>`,
		want: `<A data-requires-python=">=3.8" HREF="/f/` + token("http://up.example/simple/alpha/alpha-1.0-py3-none-any.whl") +
			`/alpha-1.0-py3-none-any.whl"` + meta + `>x</A>`,
		records: map[string]bool{"http://up.example/simple/alpha/alpha-1.0-py3-none-any.whl": false},
	}, {
		name:    "credentials in a link are dropped",
		pageURL: project,
		in:      `<a href="http://u:pw@up.example/files/alpha-1.0-py3-none-any.whl">x</a>`,
		want:    `<a href="/f/` + token(alpha) + `/alpha-1.0-py3-none-any.whl"` + meta + `>x</a>`,
		records: map[string]bool{alpha: false},
	}, {
		name:    "project link on the index root stays a page",
		pageURL: "http://up.example/simple/",
		in:      `<a href="/simple/alpha/">alpha</a><br>`,
		want:    `<a href="/i/0/alpha/">alpha</a><br>`,
		records: map[string]bool{},
	}, {
		name:    "base href resolves links and is dropped",
		pageURL: project,
		in:      `<base href="https://mirror.example/pkgs/"><a href="alpha-1.0-py3-none-any.whl">x</a>`,
		want: `<a href="/f/` + token("https://mirror.example/pkgs/alpha-1.0-py3-none-any.whl") +
			`/alpha-1.0-py3-none-any.whl"` + meta + `>x</a>`,
		records: map[string]bool{"https://mirror.example/pkgs/alpha-1.0-py3-none-any.whl": false},
	}, {
		name:    "not http is left alone",
		pageURL: project,
		in:      `<a href="mailto:ops@example.com">ops</a><a name="top">`,
		want:    `<a href="mailto:ops@example.com">ops</a><a name="top">`,
		records: map[string]bool{},
	}}
	// Everything around the links must come back byte for byte.
	const head = "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links &amp; more</title></head><body>\n"
	const tail = "\n<abbr title=\"x\">y</abbr></body></html>\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records := map[string]bool{}
			pageURL, err := url.Parse(tt.pageURL)
			if err != nil {
				t.Fatal(err)
			}
			got := string(testLinker(t, records).rewriteHTML([]byte(head+tt.in+tail), pageURL))
			if want := head + tt.want + tail; got != want {
				t.Errorf("rewritten:\n got %s\nwant %s", got, want)
			}
			if !maps.Equal(records, tt.records) {
				t.Errorf("recorded %v, want %v", records, tt.records)
			}
		})
	}
}

func TestRewriteJSON(t *testing.T) {
	page := `{"meta":{"api-version":"1.1","_last-serial":7},"name":"alpha","versions":["1.0"],"files":[
		{"filename":"alpha-1.0-py3-none-any.whl","url":"../../files/alpha-1.0-py3-none-any.whl","hashes":{"sha256":"abc"},"size":12345678901234},
		{"filename":"alpha-1.0-cp311-none-any.whl","url":"https://files.example/a/alpha-1.0-cp311-none-any.whl","hashes":{},"core-metadata":{"sha256":"def"}},
		{"filename":"alpha-1.0-cp312-none-any.whl","url":"/files/alpha-1.0-cp312-none-any.whl","hashes":{},"core-metadata":false,"dist-info-metadata":false},
		{"filename":"alpha-1.0.tar.gz","url":"/files/alpha-1.0.tar.gz","hashes":{"sha256":"ghi"},"yanked":"broken"}
	]}`
	records := map[string]bool{}
	pageURL, _ := url.Parse("http://up.example/simple/alpha/")
	out, err := testLinker(t, records).rewriteJSON([]byte(page), pageURL)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Meta     map[string]any   `json:"meta"`
		Name     string           `json:"name"`
		Versions []string         `json:"versions"`
		Files    []map[string]any `json:"files"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if doc.Name != "alpha" || len(doc.Versions) != 1 || doc.Meta["api-version"] != "1.1" || doc.Meta["_last-serial"] != 7.0 {
		t.Errorf("page fields changed: %s", out)
	}
	if len(doc.Files) != 4 {
		t.Fatalf("files: %s", out)
	}
	upstream := []string{
		"http://up.example/files/alpha-1.0-py3-none-any.whl",
		"https://files.example/a/alpha-1.0-cp311-none-any.whl",
		"http://up.example/files/alpha-1.0-cp312-none-any.whl",
		"http://up.example/files/alpha-1.0.tar.gz",
	}
	for i, f := range doc.Files {
		if want := "/f/" + token(upstream[i]) + "/" + f["filename"].(string); f["url"] != want {
			t.Errorf("files[%d].url = %v, want %s", i, f["url"], want)
		}
	}
	for _, i := range []int{0, 2} {
		if doc.Files[i]["core-metadata"] != true || doc.Files[i]["dist-info-metadata"] != true {
			t.Errorf("files[%d]: metadata not offered: %v", i, doc.Files[i])
		}
	}
	if m, ok := doc.Files[1]["core-metadata"].(map[string]any); !ok || m["sha256"] != "def" {
		t.Errorf("files[1]: upstream's core-metadata not kept: %v", doc.Files[1])
	}
	if _, ok := doc.Files[1]["dist-info-metadata"]; ok {
		t.Errorf("files[1]: dist-info-metadata added beside upstream's core-metadata: %v", doc.Files[1])
	}
	if _, ok := doc.Files[3]["core-metadata"]; ok || doc.Files[3]["yanked"] != "broken" {
		t.Errorf("files[3] (sdist): %v", doc.Files[3])
	}
	if doc.Files[0]["size"] != 12345678901234.0 || doc.Files[0]["hashes"].(map[string]any)["sha256"] != "abc" {
		t.Errorf("files[0] fields changed: %v", doc.Files[0])
	}
	want := map[string]bool{upstream[0]: false, upstream[1]: true, upstream[2]: false, upstream[3]: false}
	if !maps.Equal(records, want) {
		t.Errorf("recorded %v, want %v", records, want)
	}
}

func TestPageKind(t *testing.T) {
	for ct, want := range map[string]string{
		"text/html":                                  "html",
		"text/html; charset=utf-8":                   "html",
		"application/vnd.pypi.simple.v1+html":        "html",
		"application/vnd.pypi.simple.v1+json":        "json",
		"Application/Vnd.Pypi.Simple.V1+JSON; q=1.0": "json",
		"application/octet-stream":                   "",
		"":                                           "",
	} {
		if got := pageKind(ct); got != want {
			t.Errorf("pageKind(%q) = %q, want %q", ct, got, want)
		}
	}
}
