package lang

import "envd.dev/envd/internal/ir"

// ioModule is io.*: files from the host. copy's parameters were
// host_path/envd_path in envd v1 and src/dest in v0; all are accepted.
var ioModule = newModule("io",
	member{"copy", ioCopy, []string{"source|host_path|src:str", "target|envd_path|dest:str"}},
	member{"mount", runtimeMount, []string{"host_path|src:str", "envd_path|dest:str"}}, // envd v0's place for mount
	member{"http", nil, []string{"url:str", "checksum?:str|none", "filename?:str|none"}},
)

// ioCopy adds a build step copying from the build context into the image.
func ioCopy(c *call, a args) error {
	c.s.env.Steps = append(c.s.env.Steps, ir.Step{
		Copy: &ir.CopyStep{Source: a.str("source", ""), Target: a.str("target", "")},
		Pos:  c.pos,
	})
	return nil
}
