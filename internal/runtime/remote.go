package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"envd.dev/envd/internal/contract"
)

// RemoteDocker runs environments on a server's Docker, reached through
// ssh: nothing of this machine is visible there. The project is copied
// into a volume of the server's on the first start (envd sync moves
// changes), the secrets are copied into the container before it starts,
// its ports are published on the server's loopback and reached through
// ssh, and images are handed over on the server by the builder that runs
// there (DeliverRemote).
type RemoteDocker struct {
	*Docker
}

// remote is what a Docker needs to know when it is a server's.
type remote struct {
	host string // ssh://..., for messages and hints
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

var (
	_ Runtime   = (*RemoteDocker)(nil)
	_ Keeper    = (*RemoteDocker)(nil)
	_ Destroyer = (*RemoteDocker)(nil)
	_ Synced    = (*RemoteDocker)(nil)
)

// NewRemoteDocker wraps a client of the Docker on host; dial connects to an
// address as the server sees it (its 127.0.0.1).
func NewRemoteDocker(api *client.Client, host string, dial func(ctx context.Context, addr string) (net.Conn, error)) *RemoteDocker {
	return &RemoteDocker{&Docker{api: api, remote: &remote{host: host, dial: dial}}}
}

func (r *RemoteDocker) Kind() string              { return "ssh" }
func (r *RemoteDocker) Delivery() Delivery        { return DeliverRemote }
func (r *RemoteDocker) Project() ProjectTransport { return ProjectCopied }

// ProjectVolume holds the copied project of an environment on a server.
func ProjectVolume(name string) string { return "envd-" + name + "-project" }

// syncedVolume marks that the project was copied in: volumes' labels
// cannot change, and the mark must outlive the container (down keeps the
// work, and the next up must not copy over it).
func syncedVolume(name string) string { return ProjectVolume(name) + "-synced" }

// MarkSynced records that the project was copied into name's volume.
func (r *RemoteDocker) MarkSynced(ctx context.Context, name string) error {
	_, err := r.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: syncedVolume(name), Labels: map[string]string{LabelName: name}})
	return err
}

// Synced says whether the project was copied in already.
func (r *RemoteDocker) Synced(ctx context.Context, name string) (bool, error) {
	_, err := r.api.VolumeInspect(ctx, syncedVolume(name), client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Destroy removes the project's volume (down has removed the container);
// ErrNotFound when there is none.
func (r *RemoteDocker) Destroy(ctx context.Context, name string) error {
	found := false
	for _, v := range []string{ProjectVolume(name), syncedVolume(name)} {
		_, err := r.api.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true})
		switch {
		case err == nil:
			found = true
		case !cerrdefs.IsNotFound(err):
			return fmt.Errorf("removing the volume %s on %s: %w", v, r.remote.host, err)
		}
	}
	if !found {
		return ErrNotFound
	}
	return nil
}

// copySecrets puts the spec's secrets into the (created or stopped)
// container at contract.RunDir, 0600 and the dev user's: the agent reads
// them after it drops to that user (on a server it keeps the image's UID).
func (d *Docker) copySecrets(ctx context.Context, container string, s Spec) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := path.Base(contract.RunDir)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o700, ModTime: now, Uid: contract.DevUID, Gid: contract.DevUID}); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(s.Secrets)) {
		data := s.Secrets[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + name, Mode: 0o600, Size: int64(len(data)), ModTime: now, Uid: contract.DevUID, Gid: contract.DevUID}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := d.api.CopyToContainer(ctx, container, client.CopyToContainerOptions{DestinationPath: path.Dir(contract.RunDir), Content: &buf})
	if err != nil {
		return fmt.Errorf("copying the environment's keys into %s: %w", container, err)
	}
	return nil
}

// hidePorts reports a server's published ports as not published here.
func hidePorts(e *Env) {
	for i := range e.Ports {
		e.Ports[i].HostIP, e.Ports[i].HostPort = "", 0
	}
}
