package buildkitd

import (
	"reflect"
	"strings"
	"testing"
)

func TestMountsBelow(t *testing.T) {
	info := strings.Join([]string{
		`22 1 0:21 / /proc rw - proc proc rw`,
		`30 1 8:1 / /var/lib/envd/buildkit rw - ext4 /dev/sda1 rw`,
		`31 30 0:50 / /var/lib/envd/buildkit/root/runc-overlayfs/executor/abc/rootfs rw - overlay overlay rw`,
		`32 31 0:51 / /var/lib/envd/buildkit/root/runc-overlayfs/executor/abc/rootfs/dev/shm rw - tmpfs shm rw`,
		`33 1 0:52 / /var/lib/envd/buildkit/root2/x rw - tmpfs tmpfs rw`,
		`34 1 0:53 / /var/lib/envd/buildkit/root/with\040space rw - tmpfs tmpfs rw`,
		`35 1 0:54 / /var/lib/envd/buildkit/root rw - tmpfs tmpfs rw`,
	}, "\n")
	got := mountsBelow(strings.NewReader(info), "/var/lib/envd/buildkit/root")
	want := []string{
		"/var/lib/envd/buildkit/root/runc-overlayfs/executor/abc/rootfs/dev/shm",
		"/var/lib/envd/buildkit/root/runc-overlayfs/executor/abc/rootfs",
		"/var/lib/envd/buildkit/root/with space",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsBelow = %q\nwant %q", got, want)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/tab\011x\134`: "/tab\tx\\",
		`/end\04`:       `/end\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
