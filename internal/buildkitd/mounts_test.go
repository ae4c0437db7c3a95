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

func TestRootBelow(t *testing.T) {
	root := "/var/lib/envd/buildkit/root"
	for _, tc := range []struct {
		info string
		want bool
	}{
		{`134 77 0:52 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/envd/buildkit/root/s/2/fs,upperdir=/var/lib/envd/buildkit/root/s/3/fs,workdir=/var/lib/envd/buildkit/root/s/3/work
135 134 0:59 / /proc rw - proc proc rw`, true},
		// Another builder's step, a Docker container, the host.
		{`134 77 0:52 / / rw - overlay overlay rw,lowerdir=/other/root/s/2/fs,upperdir=/other/root/s/3/fs,workdir=/other/root/s/3/work`, false},
		{`134 77 0:52 / / rw - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work`, false},
		{`21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw`, false},
		// Only the root mount counts.
		{`21 1 8:1 / / rw - ext4 /dev/vda rw
31 21 0:50 / /var/lib/envd/buildkit/root/x/rootfs rw - overlay overlay rw,upperdir=/var/lib/envd/buildkit/root/s/3/fs`, false},
	} {
		if got := rootBelow(strings.NewReader(tc.info), root); got != tc.want {
			t.Errorf("rootBelow(%q) = %v, want %v", tc.info, got, tc.want)
		}
	}
}
