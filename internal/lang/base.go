package lang

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"envd.dev/envd/internal/ir"
)

// articleBase tells the article's positional base("ubuntu22.04", "python3")
// from envd v1's base("ubuntu:22.04", True): the first argument is an os
// name, or close enough to one to be a misspelling, or the second is a string.
func articleBase(pos starlark.Tuple) bool {
	if len(pos) > 1 {
		if _, ok := pos[1].(starlark.String); ok {
			return true
		}
	}
	if len(pos) == 0 {
		return false
	}
	s, ok := starlark.AsString(pos[0])
	if !ok {
		return false
	}
	if _, err := ir.LookupOS(s); err == nil {
		return true
	}
	return !strings.ContainsAny(s, ":/@") && nearest(s, ir.OSNames()) != ""
}

// base chooses the image. Two forms: the article's base(os="ubuntu20.04",
// language="python3"), a development environment; and envd v1's
// base(image="ubuntu:22.04", dev=False), where base() alone is
// ubuntu:22.04 without dev, as in the original envd.
func base(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	osName, image, lang := a.str("os", ""), a.str("image", ""), a.str("language", "")
	b := ir.Base{OS: osName, Language: lang, Pos: c.pos}
	switch {
	case osName != "" && image != "":
		return c.errorf(`use base(os="ubuntu22.04") or base(image="ubuntu:22.04"), not both`, "base: give os or image, not both")
	case image != "":
		if _, err := ir.LookupOS(image); err == nil {
			return c.errorf(fmt.Sprintf(`write base(os=%q), or an image such as base(image="ubuntu:22.04")`, image),
				"base: image %q is an os name, not an image", image)
		}
		b.Image = ir.NormalizeImage(image)
	case osName != "":
		d, err := ir.LookupOS(osName)
		if err != nil {
			hint := ""
			if near := nearest(osName, ir.OSNames()); near != "" {
				hint = fmt.Sprintf("did you mean %q?", near)
			}
			return c.errorf(hint, "base: %v", err)
		}
		b.Image = d.Image
	default:
		b.Image = ir.DefaultImage
	}
	// The article's form (os= or language=, without image=) means an
	// environment to work in; v1's image= and bare base() mean an image.
	b.Dev = a.boolean("dev", image == "" && (osName != "" || lang != ""))
	c.s.env.Base = b

	if lang == "" {
		return nil
	}
	version, ok := pythonLanguage(lang)
	switch {
	case ok && version == "":
		c.implyPython()
		return nil
	case ok:
		return c.setPython(version)
	case lang == "r":
		c.r() // like install.r_lang()
		return nil
	case lang == "julia":
		c.julia()
		return nil
	}
	return c.errorf(`use "python", "python3" or "python3.11"; for R or Julia, "r" or "julia"`, "base: unknown language %q", lang)
}

// pythonLanguage reads language="python3.9" as Python "3.9"; "python" and
// "python3" mean the distribution's python3.
func pythonLanguage(lang string) (version string, ok bool) {
	l := strings.ToLower(lang)
	switch {
	case l == "python" || l == "python3":
		return "", true
	case strings.HasPrefix(l, "python3."):
		return strings.TrimPrefix(l, "python"), true
	}
	return "", false
}

var shells = []string{"base", "bash", "fish", "zsh"}

// shell chooses the interactive shell; "base" is the image's own.
func shell(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	name := a.str("name", "base")
	for _, s := range shells {
		if name == s {
			c.s.env.Shell = name
			return nil
		}
	}
	msg := fmt.Sprintf("shell: unknown shell %q", name)
	if near := nearest(name, shells); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	return c.errorf("use one of "+quoteAll(shells), "%s", msg)
}

// run adds a build step: the commands run with sh -c, in order.
func run(c *call, a args) error {
	c.s.env.Steps = append(c.s.env.Steps, ir.Step{
		Run: &ir.RunStep{Commands: a.strs("commands"), MountHost: a.boolean("mount_host", false)},
		Pos: c.pos,
	})
	return nil
}

func gitConfig(c *call, a args) error {
	if err := c.once(); err != nil {
		return err
	}
	c.s.env.GitConfig = &ir.GitConfig{
		Name:   a.str("name", ""),
		Email:  a.str("email", ""),
		Editor: a.str("editor", ""),
		Pos:    c.pos,
	}
	return nil
}
