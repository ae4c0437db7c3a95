//go:build linux

// Package bkdaemon is BuildKit's daemon as envd runs it: the packages
// buildkitd is made of (its controller, the runc worker, the registry, local
// and inline cache transports, the gateway frontend), put together here so
// envd can be its own builder and a lone envd binary builds. Run as
// `buildkitd` (a link of that name, or envd's managed builder, which starts
// envd under that name when there is no buildkitd to run) envd is this.
//
// It serves what envd asks of a builder, and is configured by the same
// buildkitd.toml: one OCI (runc) worker with the overlayfs or native
// snapshotter, unix sockets. Not here, and refused when a configuration asks
// for them: the containerd worker, the Dockerfile frontend, TCP and TLS
// listeners, the gha, s3 and azblob caches, tracing. The real buildkitd
// (ENVD_BUILDKITD, or beside envd) is the answer for those.
package bkdaemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/sys"
	"github.com/moby/buildkit/cache/remotecache"
	inlineremotecache "github.com/moby/buildkit/cache/remotecache/inline"
	localremotecache "github.com/moby/buildkit/cache/remotecache/local"
	registryremotecache "github.com/moby/buildkit/cache/remotecache/registry"
	"github.com/moby/buildkit/cmd/buildkitd/config"
	"github.com/moby/buildkit/control"
	"github.com/moby/buildkit/frontend"
	"github.com/moby/buildkit/frontend/gateway"
	"github.com/moby/buildkit/session"
	sessionauth "github.com/moby/buildkit/session/auth"
	"github.com/moby/buildkit/solver"
	"github.com/moby/buildkit/solver/bboltcachestorage"
	"github.com/moby/buildkit/util/apicaps"
	"github.com/moby/buildkit/util/appdefaults"
	"github.com/moby/buildkit/util/archutil"
	"github.com/moby/buildkit/util/db/boltutil"
	"github.com/moby/buildkit/util/grpcerrors"
	_ "github.com/moby/buildkit/util/grpcutil/encoding/proto" // BuildKit's wire codec
	"github.com/moby/buildkit/util/resolver"
	"github.com/moby/buildkit/util/resolver/limited"
	"github.com/moby/buildkit/version"
	"github.com/moby/buildkit/worker"
	"github.com/moby/sys/userns"
	"github.com/sirupsen/logrus"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthv1 "google.golang.org/grpc/health/grpc_health_v1"
)

// programName is the name envd answers to as this daemon (internal/multicall
// dispatches on it; the managed builder starts envd under it).
const programName = "buildkitd"

// Info is what the daemon says about itself to clients (ListWorkers).
type Info struct {
	BuildKit string // the BuildKit module version it is made of
	Envd     string // envd's version
}

// settings are the command line: buildkitd's flags that envd passes.
type settings struct {
	configPath string
	root       string
	addrs      []string
	debug      bool
}

// Main runs the daemon with buildkitd's command line (the subset envd uses:
// --config, --root, --addr, --debug) and returns its exit code.
func Main(args []string, stderr io.Writer, info Info) int {
	s, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "buildkitd: %v\n", err)
		return 2
	}
	cfg, err := loadConfig(s)
	if err != nil {
		fmt.Fprintf(stderr, "buildkitd: %v\n", err)
		return 1
	}
	// Under its own name in ps and /proc/PID/comm, though the file is envd.
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte(programName + "\x00")[0])), 0, 0, 0)
	// What it tells registries (User-Agent) and clients, as a release's
	// buildkitd has it stamped at link time.
	if info.BuildKit != "" && info.BuildKit != "unknown" && strings.HasPrefix(version.Version, "v0.0.0+") {
		version.Version = info.BuildKit
	}
	logrus.SetOutput(stderr)
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	if cfg.Debug || cfg.Log.Level == "debug" { //nolint:staticcheck // Debug is buildkitd.toml's own
		logrus.SetLevel(logrus.DebugLevel)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, info); err != nil {
		fmt.Fprintf(stderr, "buildkitd: %v\n", err)
		return 1
	}
	return 0
}

type addrFlag []string

func (a *addrFlag) String() string     { return strings.Join(*a, ",") }
func (a *addrFlag) Set(v string) error { *a = append(*a, v); return nil }

func parseFlags(args []string, stderr io.Writer) (settings, error) {
	var s settings
	var addrs addrFlag
	fs := flag.NewFlagSet(programName, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: buildkitd [--config FILE] [--root DIR] [--addr unix://PATH]... [--debug]")
		fmt.Fprintln(stderr, "This is envd as BuildKit's daemon (one runc worker); the real buildkitd has the other flags.")
	}
	fs.StringVar(&s.configPath, "config", "", "buildkitd.toml (default "+filepath.Join(appdefaults.ConfigDir, "buildkitd.toml")+" if it exists)")
	fs.StringVar(&s.root, "root", "", "state directory (default: the config's root, else "+appdefaults.Root+")")
	fs.Var(&addrs, "addr", "listening address, unix://PATH (repeatable)")
	fs.BoolVar(&s.debug, "debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q: this is envd as buildkitd, which takes only --config, --root, --addr and --debug", fs.Arg(0))
	}
	s.addrs = addrs
	return s, nil
}

// loadConfig reads the configuration file and applies the command line and
// buildkitd's defaults to it.
func loadConfig(s settings) (config.Config, error) {
	path, must := s.configPath, true
	if path == "" {
		path, must = filepath.Join(appdefaults.ConfigDir, "buildkitd.toml"), false
	}
	// LoadFile takes a missing file for an empty one: fine for the
	// default path, not for one named on the command line.
	if _, err := os.Stat(path); err != nil && must {
		return config.Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if s.root != "" {
		cfg.Root = s.root
	}
	if len(s.addrs) > 0 {
		cfg.GRPC.Address = s.addrs
	}
	if s.debug {
		cfg.Log.Level = "debug"
	}
	return cfg, withDefaults(&cfg)
}

// withDefaults fills in what buildkitd would, and refuses what this daemon
// does not have, so a configuration never means something else here.
func withDefaults(cfg *config.Config) error {
	if cfg.Root == "" {
		cfg.Root = appdefaults.Root
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return err
	}
	cfg.Root = root
	if len(cfg.GRPC.Address) == 0 {
		cfg.GRPC.Address = []string{appdefaults.Address}
	}
	for _, a := range cfg.GRPC.Address {
		if !strings.HasPrefix(a, "unix://") || a == "unix://" {
			return fmt.Errorf("address %q: envd as buildkitd listens on unix://PATH only; run the real buildkitd for tcp:// or fd://", a)
		}
	}
	if cfg.GRPC.TLS.Cert != "" || cfg.GRPC.TLS.Key != "" || cfg.GRPC.TLS.CA != "" {
		return errors.New("[grpc.tls]: envd as buildkitd has no TLS (its sockets are unix sockets); run the real buildkitd for TLS")
	}
	if e := cfg.Workers.Containerd.Enabled; e != nil && *e {
		return errors.New("[worker.containerd] is enabled: envd as buildkitd has the OCI (runc) worker only; run the real buildkitd for the containerd worker")
	}
	if e := cfg.Workers.OCI.Enabled; e != nil && !*e {
		return errors.New("[worker.oci] is disabled, and it is the only worker envd as buildkitd has")
	}
	for _, unsupported := range []struct {
		set  bool
		what string
	}{
		{cfg.GRPC.DebugAddress != "", "[grpc] debugAddress"},
		{cfg.Compaction.Enabled, "[compaction]"},
		{cfg.ProvenanceEnvDir != "", "provenanceEnvDir"},
		{cfg.Cache.GHA != nil, "[cache.gha]"},
		{len(cfg.CDI.SpecDirs) > 0, "[cdi] specDirs"},
		{cfg.Frontends.Dockerfile.Enabled != nil && *cfg.Frontends.Dockerfile.Enabled, "[frontend.\"dockerfile.v0\"]"},
	} {
		if unsupported.set {
			return fmt.Errorf("%s: envd as buildkitd does not have it; run the real buildkitd (ENVD_BUILDKITD) for it", unsupported.what)
		}
	}
	if cfg.GRPC.UID == nil {
		uid := os.Getuid()
		cfg.GRPC.UID = &uid
	}
	if cfg.GRPC.GID == nil {
		gid := os.Getgid()
		cfg.GRPC.GID = &gid
	}
	oci := &cfg.Workers.OCI
	// In a user namespace (rootless Podman, rootless Docker) runc cannot
	// set up cgroups or devices as real root does: buildkitd defaults to
	// its rootless mode there, whatever the file says, and so does this.
	if userns.RunningInUserNS() {
		oci.Rootless = true
	}
	if oci.Snapshotter == "" {
		oci.Snapshotter = "auto"
	}
	if oci.Binary == "" {
		oci.Binary = "runc"
	}
	if oci.Mode == "" {
		oci.Mode = "auto"
	}
	if oci.CNIConfigPath == "" {
		oci.CNIConfigPath = appdefaults.DefaultCNIConfigPath
	}
	if oci.CNIBinaryPath == "" {
		oci.CNIBinaryPath = appdefaults.DefaultCNIBinDir
	}
	if oci.BridgeName == "" {
		oci.BridgeName = appdefaults.BridgeName
	}
	if oci.BridgeSubnet == "" {
		oci.BridgeSubnet = appdefaults.BridgeSubnet
	}
	return nil
}

// serve runs the daemon until ctx ends.
func serve(ctx context.Context, cfg config.Config, info Info) error {
	apicaps.ExportedProduct = "buildkit"
	if sc := cfg.System; sc != nil {
		if v := sc.PlatformsCacheMaxAge; v != nil {
			archutil.CacheMaxAge = v.Duration
		}
		if v := sc.MaxRegistryConcurrency; v != nil {
			if *v <= 0 {
				return fmt.Errorf("[system] maxRegistryConcurrency must be greater than zero, not %d", *v)
			}
			limited.SetMaxConcurrency(int64(*v))
		}
		if v := sc.SessionAuthTimeout; v != nil {
			sessionauth.SessionAuthTimeout = v.Duration
		}
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return err
	}
	unlock, err := lockRoot(cfg.Root)
	if err != nil {
		return err
	}
	defer unlock()

	// Listen before the worker starts: a client that finds the socket
	// waits for an answer rather than failing to connect.
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, a := range cfg.GRPC.Address {
		l, err := sys.GetLocalListener(strings.TrimPrefix(a, "unix://"), *cfg.GRPC.UID, *cfg.GRPC.GID)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", a, err)
		}
		listeners = append(listeners, l)
	}

	controller, err := newController(ctx, &cfg, info)
	if err != nil {
		return err
	}
	defer controller.Close()

	server := grpc.NewServer(
		grpc.ChainUnaryInterceptor(grpcerrors.UnaryServerInterceptor),
		grpc.StreamInterceptor(grpcerrors.StreamServerInterceptor),
		grpc.MaxRecvMsgSize(defaults.DefaultMaxRecvMsgSize),
		grpc.MaxSendMsgSize(defaults.DefaultMaxSendMsgSize),
	)
	healthv1.RegisterHealthServer(server, health.NewServer())
	controller.Register(server)

	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		logrus.Infof("running server on %s", l.Addr())
		go func(l net.Listener) { errs <- server.Serve(l) }(l)
	}
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	logrus.Info("stopping server")
	server.GracefulStop()
	return err
}

// lockRoot holds ROOT/buildkitd.lock for as long as the daemon runs, so
// two daemons never share a state directory.
func lockRoot(root string) (func(), error) {
	path := filepath.Join(root, "buildkitd.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("could not lock %s, another instance running? (%v)", path, err)
	}
	return func() { f.Close(); os.Remove(path) }, nil
}

// newController puts BuildKit's controller together around one worker.
func newController(ctx context.Context, cfg *config.Config, info Info) (*control.Controller, error) {
	sm, err := session.NewManager()
	if err != nil {
		return nil, err
	}
	hosts := resolver.NewRegistryConfig(cfg.Registries)
	w, err := newWorker(ctx, cfg, hosts, info)
	if err != nil {
		return nil, err
	}
	wc := &worker.Controller{}
	if err := wc.Add(w); err != nil {
		return nil, err
	}
	logrus.Infof("found worker %q, platforms=%v", w.ID(), w.Platforms(false))

	frontends := map[string]frontend.Frontend{}
	if e := cfg.Frontends.Gateway.Enabled; e == nil || *e {
		gw, err := gateway.NewGatewayFrontend(wc.Infos(), cfg.Frontends.Gateway.AllowedRepositories)
		if err != nil {
			return nil, err
		}
		frontends["gateway.v0"] = gw
	}

	cacheStorage, err := bboltcachestorage.NewStore(filepath.Join(cfg.Root, "cache.db"))
	if err != nil {
		return nil, err
	}
	historyDB, err := boltutil.SafeOpen(filepath.Join(cfg.Root, "history.db"), 0o600, &bolt.Options{
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		return nil, err
	}
	return control.NewController(control.Opt{
		SessionManager:   sm,
		WorkerController: wc,
		Frontends:        frontends,
		ResolveCacheExporterFuncs: map[string]remotecache.ResolveCacheExporterFunc{
			"registry": registryremotecache.ResolveCacheExporterFunc(sm, hosts),
			"local":    localremotecache.ResolveCacheExporterFunc(sm),
			"inline":   inlineremotecache.ResolveCacheExporterFunc(),
		},
		ResolveCacheImporterFuncs: map[string]remotecache.ResolveCacheImporterFunc{
			"registry": registryremotecache.ResolveCacheImporterFunc(sm, w.ContentStore(), hosts),
			"local":    localremotecache.ResolveCacheImporterFunc(sm),
		},
		CacheManager:   solver.NewCacheManager(ctx, "local", cacheStorage, worker.NewCacheResultStorage(wc)),
		Entitlements:   cfg.Entitlements,
		HistoryDB:      historyDB,
		CacheStore:     cacheStorage,
		LeaseManager:   w.LeaseManager(),
		ContentStore:   w.ContentStore(),
		HistoryConfig:  cfg.History,
		ProxyNetwork:   cfg.ProxyNetwork,
		GarbageCollect: w.GarbageCollect,
		GracefulStop:   ctx.Done(),
	})
}
