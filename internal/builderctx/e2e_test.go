package builderctx

import (
	"context"
	"errors"
	"os"
	"testing"

	"envd.dev/envd/internal/buildkitd"
	"envd.dev/envd/internal/testing/daemontest"
)

// TestConnectReal connects to a real managed buildkitd, then to the same
// daemon as a unix:// context. Needs ENVD_E2E=1, root, runc and make
// build's envd as buildkitd (or ENVD_BUILDKITD=/path).
func TestConnectReal(t *testing.T) {
	if os.Getenv("ENVD_E2E") != "1" {
		t.Skip("set ENVD_E2E=1 to run against a real buildkitd")
	}
	daemontest.Buildkitd(t)
	dir, err := os.MkdirTemp("", "envd-bk") // short: the socket lives in it
	if err != nil {
		t.Fatal(err)
	}
	m := buildkitd.Options{Dir: dir, Logf: t.Logf}
	t.Cleanup(func() {
		if err := buildkitd.Stop(context.Background(), m); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		os.RemoveAll(dir)
	})
	ctx := context.Background()

	c, err := Connect(ctx, Context{Name: Default, Builder: Managed}, m)
	for _, skip := range []error{buildkitd.ErrNotRoot, buildkitd.ErrNoRunc, buildkitd.ErrNotFound} {
		if errors.Is(err, skip) {
			t.Skipf("cannot run the managed builder here: %v", err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	c, err = Connect(ctx, Context{Name: "sock", Builder: "unix://" + dir + "/buildkitd.sock"}, m)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := c.ListWorkers(ctx)
	c.Close()
	if err != nil || len(ws) == 0 {
		t.Fatalf("ListWorkers: %v, %d workers", err, len(ws))
	}
}
