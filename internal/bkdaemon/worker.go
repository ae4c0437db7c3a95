//go:build linux

package bkdaemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/plugins/snapshots/native"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay"
	"github.com/containerd/containerd/v2/plugins/snapshots/overlay/overlayutils"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/executor/oci"
	"github.com/moby/buildkit/util/archutil"
	"github.com/moby/buildkit/util/disk"
	"github.com/moby/buildkit/util/network/cniprovider"
	"github.com/moby/buildkit/util/network/netproviders"
	"github.com/moby/buildkit/worker"
	"github.com/moby/buildkit/worker/base"
	"github.com/moby/buildkit/worker/runc"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/semaphore"
)

// newWorker makes the OCI worker: runc runs the steps, on overlayfs where
// the state directory's file system allows it, else on copies (native).
func newWorker(ctx context.Context, cfg *config.Config, hosts docker.RegistryHosts, info Info) (worker.Worker, error) {
	oc := cfg.Workers.OCI
	if oc.ProxySnapshotterPath != "" {
		return nil, errors.New("[worker.oci] proxySnapshotterPath: envd as buildkitd has the overlayfs and native snapshotters only")
	}
	if oc.UserRemapUnsupported != "" {
		return nil, errors.New("[worker.oci] userRemapUnsupported is not supported by envd as buildkitd")
	}
	sn, err := snapshotter(cfg.Root, oc.Snapshotter)
	if err != nil {
		return nil, err
	}
	processMode := oci.ProcessSandbox
	if oc.NoProcessSandbox {
		if !oc.Rootless {
			return nil, errors.New("[worker.oci] noProcessSandbox needs rootless = true")
		}
		processMode = oci.NoProcessSandbox
	}
	var dns *oci.DNSConfig
	if d := cfg.DNS; d != nil {
		dns = &oci.DNSConfig{Nameservers: d.Nameservers, Options: d.Options, SearchDomains: d.SearchDomains}
	}
	network := netproviders.Opt{
		Mode: oc.Mode,
		CNI: cniprovider.Opt{
			Root:         cfg.Root,
			ConfigPath:   oc.CNIConfigPath,
			BinaryDir:    oc.CNIBinaryPath,
			PoolSize:     oc.CNIPoolSize,
			BridgeName:   oc.BridgeName,
			BridgeSubnet: oc.BridgeSubnet,
		},
	}
	var parallelism *semaphore.Weighted
	if oc.MaxParallelism > 0 {
		parallelism = semaphore.NewWeighted(int64(oc.MaxParallelism))
	}
	// No CDI manager: envd's steps ask for no devices (GPUs are the
	// runtime's, not the builder's).
	opt, err := runc.NewWorkerOpt(cfg.Root, sn, oc.Rootless, processMode, oc.Labels, nil, network, dns,
		oc.Binary, oc.ApparmorProfile, oc.SELinux, parallelism, "", oc.DefaultCgroupParent, nil)
	if err != nil {
		return nil, err
	}
	opt.GCPolicy = gcPolicy(oc.GCConfig, cfg.Root)
	opt.BuildkitVersion = client.BuildkitVersion{
		Package:  "github.com/moby/buildkit",
		Version:  info.BuildKit,
		Revision: "envd " + info.Envd,
	}
	opt.RegistryHosts = hosts
	if len(oc.Platforms) > 0 {
		ps := make([]ocispecs.Platform, 0, len(oc.Platforms))
		for _, s := range oc.Platforms {
			p, err := platforms.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("[worker.oci] platforms: %w", err)
			}
			ps = append(ps, platforms.Normalize(p))
		}
		opt.Platforms = ps
	} else {
		opt.Platforms = archutil.SupportedPlatforms(false)
	}
	return base.NewWorker(ctx, opt)
}

// snapshotter picks the snapshotter by name; "auto" is overlayfs where it
// works on root, else native (buildkitd would try fuse-overlayfs between).
func snapshotter(root, name string) (runc.SnapshotterFactory, error) {
	if name == "auto" {
		name = "native"
		if err := overlayutils.Supported(root); err == nil {
			name = "overlayfs"
		} else {
			logrus.Infof("overlayfs is not available for %s, using native: %v", root, err)
		}
	}
	f := runc.SnapshotterFactory{Name: name}
	switch name {
	case "overlayfs":
		f.New = func(root string) (snapshots.Snapshotter, error) {
			return overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
		}
	case "native":
		f.New = native.NewSnapshotter
	default:
		return f, fmt.Errorf("[worker.oci] snapshotter %q: envd as buildkitd has overlayfs and native (and auto, which picks one)", name)
	}
	return f, nil
}

// gcPolicy turns the configuration's GC rules into the worker's, with
// BuildKit's defaults when there are none.
func gcPolicy(gc config.GCConfig, root string) []client.PruneInfo {
	if gc.GC != nil && !*gc.GC {
		return nil
	}
	dstat, _ := disk.GetDiskStat(root)
	rules := gc.GCPolicy
	if len(rules) == 0 {
		rules = config.DefaultGCPolicy(gc, dstat)
	}
	out := make([]client.PruneInfo, 0, len(rules))
	for _, r := range rules {
		reserved := r.ReservedSpace
		if reserved == (config.DiskSpace{}) {
			reserved = r.KeepBytes //nolint:staticcheck // the older name of the same limit
		}
		out = append(out, client.PruneInfo{
			Filter:        r.Filters,
			All:           r.All,
			KeepDuration:  r.KeepDuration.Duration,
			ReservedSpace: reserved.AsBytes(dstat),
			MaxUsedSpace:  r.MaxUsedSpace.AsBytes(dstat),
			MinFreeSpace:  r.MinFreeSpace.AsBytes(dstat),
		})
	}
	return out
}
