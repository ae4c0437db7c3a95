package pyindex

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ToolWheelsDir is where `make setup` keeps real wheels of the tools envd
// fetches from a package index (uv), and pip for the benchmark's Dockerfiles;
// ENVD_TOOL_WHEELS overrides it.
func ToolWheelsDir() string {
	if d := os.Getenv("ENVD_TOOL_WHEELS"); d != "" {
		return d
	}
	return "/var/cache/envd-infra/wheels"
}

// AddToolWheels puts the tool wheels into dir, so an index over dir serves
// them beside the generated ones, as a real index would. It fails when
// there are none: envd would fall back to pip, and the tests would not
// test what users get.
func AddToolWheels(dir string) error {
	src := ToolWheelsDir()
	files, _ := filepath.Glob(filepath.Join(src, "*.whl"))
	if len(files) == 0 {
		return fmt.Errorf("pyindex: no tool wheels (uv) in %s: run `make setup`, or set ENVD_TOOL_WHEELS", src)
	}
	for _, f := range files {
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.Link(f, dst); err == nil {
			continue
		}
		if err := copyFile(f, dst); err != nil {
			return fmt.Errorf("pyindex: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
