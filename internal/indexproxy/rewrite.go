package indexproxy

import (
	"bytes"
	"encoding/json"
	"html"
	"net/url"
	"path"
	"regexp"
	"strings"
)

var (
	// Tags, with quoted attribute values allowed to hold '>' (some indexes write data-requires-python=">=3.8").
	anchorRE = regexp.MustCompile(`(?i)<a\s(?:[^>"']|"[^"]*"|'[^']*')*>`)
	baseRE   = regexp.MustCompile(`(?i)<base\s(?:[^>"']|"[^"]*"|'[^']*')*>`)
	// One attribute inside a tag: name, and the value with its quotes if it has one.
	attrRE = regexp.MustCompile(`([^\s"'<>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?`)
)

// metadataAttrs say "metadata available" in both spellings uv reads (PEP 658 and PEP 714); "true" needs no hash.
const metadataAttrs = ` data-dist-info-metadata="true" data-core-metadata="true"`

// linker turns the links of one upstream's pages into links to the proxy.
type linker struct {
	index  *url.URL                              // the upstream's simple-API root
	prefix string                                // the proxy path standing for it: "/i/<n>/"
	record func(fileURL string, advertised bool) // told, for every file linked, whether upstream offers its metadata
}

// target returns the proxy href for the upstream URL u: a page under the index becomes /i/<n>/..., a file
// /f/<token>/<name> (then key is its URL without fragment, and name its file name). The fragment (a hash) is kept.
func (l *linker) target(u *url.URL) (href, key, name string) {
	clean := *u
	clean.User = nil // credentials go in headers, never in URLs the proxy hands out
	clean.Fragment, clean.RawFragment = "", ""
	fragment := ""
	if u.Fragment != "" {
		fragment = "#" + u.EscapedFragment()
	}
	if clean.Path == "" || strings.HasSuffix(clean.Path, "/") {
		// A page, such as a project on the index root.
		if origin(&clean) == origin(l.index) && strings.HasPrefix(clean.EscapedPath(), l.index.EscapedPath()) {
			href = l.prefix + strings.TrimPrefix(clean.EscapedPath(), l.index.EscapedPath())
			if clean.RawQuery != "" {
				href += "?" + clean.RawQuery
			}
			return href + fragment, "", ""
		}
		return clean.String() + fragment, "", "" // elsewhere: absolute, as the proxy's own paths are not its base
	}
	key = clean.String()
	name = path.Base(clean.Path)
	// uv takes a wheel's name and version from the last path segment, so that stays the real file name.
	return "/f/" + token(key) + "/" + url.PathEscape(name) + fragment, key, name
}

// attr is one attribute of a tag.
type attr struct {
	name       string // lower case
	value      string // HTML-unescaped
	start, end int    // the value's place in the tag, quotes included; -1 when it has none
}

// parseAttrs returns the attributes of tag, whose name ends before offset from.
func parseAttrs(tag string, from int) []attr {
	var as []attr
	inner := tag[from : len(tag)-1]
	for _, m := range attrRE.FindAllStringSubmatchIndex(inner, -1) {
		a := attr{name: strings.ToLower(inner[m[2]:m[3]]), start: -1, end: -1}
		if m[4] >= 0 {
			v := inner[m[4]:m[5]]
			if v[0] == '"' || v[0] == '\'' {
				v = v[1 : len(v)-1]
			}
			a.value = html.UnescapeString(v)
			a.start, a.end = from+m[4], from+m[5]
		}
		as = append(as, a)
	}
	return as
}

func findAttr(as []attr, name string) (attr, bool) {
	for _, a := range as {
		if a.name == name {
			return a, true
		}
	}
	return attr{}, false
}

// rewriteHTML points every link of a PEP 503 page at the proxy and marks every wheel without metadata as
// having some. The rest of the page is kept byte for byte, except a <base href>: it would send the proxy's
// links back to upstream, so it only serves to resolve links and is dropped.
func (l *linker) rewriteHTML(page []byte, pageURL *url.URL) []byte {
	s := string(page)
	base := pageURL
	if loc := baseRE.FindStringIndex(s); loc != nil {
		if a, ok := findAttr(parseAttrs(s[loc[0]:loc[1]], len("<base")), "href"); ok && a.start >= 0 {
			if b, err := pageURL.Parse(strings.TrimSpace(a.value)); err == nil {
				base = b
				s = s[:loc[0]] + s[loc[1]:]
			}
		}
	}
	s = anchorRE.ReplaceAllStringFunc(s, func(tag string) string { return l.rewriteAnchor(tag, base) })
	return []byte(s)
}

func (l *linker) rewriteAnchor(tag string, base *url.URL) string {
	as := parseAttrs(tag, len("<a"))
	href, ok := findAttr(as, "href")
	if !ok || href.start < 0 {
		return tag
	}
	u, err := base.Parse(strings.TrimSpace(href.value))
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return tag // mailto: and the like
	}
	target, key, name := l.target(u)
	out := tag[:href.start] + `"` + html.EscapeString(target) + `"` + tag[href.end:]
	if key == "" {
		return out
	}
	_, dist := findAttr(as, "data-dist-info-metadata")
	_, core := findAttr(as, "data-core-metadata")
	advertised := dist || core
	if l.record != nil {
		l.record(key, advertised)
	}
	if advertised || !isWheel(name) {
		return out
	}
	end := len(out) - 1 // before '>', or before "/>"
	if strings.HasSuffix(out, "/>") {
		end--
	}
	return out[:end] + metadataAttrs + out[end:]
}

// rewriteJSON does for a PEP 691 page what rewriteHTML does for a PEP 503 one. Fields are kept, though not
// their order or spacing.
func (l *linker) rewriteJSON(page []byte, pageURL *url.URL) ([]byte, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(page))
	dec.UseNumber() // sizes stay exactly as they were
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	files, _ := doc["files"].([]any)
	for _, f := range files {
		file, ok := f.(map[string]any)
		if !ok {
			continue
		}
		raw, ok := file["url"].(string)
		if !ok {
			continue
		}
		u, err := pageURL.Parse(raw)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" {
			continue
		}
		target, key, name := l.target(u)
		if key == "" {
			continue
		}
		file["url"] = target
		advertised := offered(file["core-metadata"]) || offered(file["dist-info-metadata"])
		if l.record != nil {
			l.record(key, advertised)
		}
		if isWheel(name) && !advertised {
			file["core-metadata"] = true
			file["dist-info-metadata"] = true
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// offered reads a PEP 691 metadata field: absent or false means none, true or a hash dict means some.
func offered(v any) bool {
	return v != nil && v != false
}
