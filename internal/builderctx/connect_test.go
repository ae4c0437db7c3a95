package builderctx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	apitypes "github.com/moby/buildkit/api/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"envd.dev/envd/internal/buildkitd"
)

// fakeControl answers ListWorkers like a buildkitd with the given workers.
type fakeControl struct {
	controlapi.UnimplementedControlServer
	workers int
}

func (f fakeControl) ListWorkers(context.Context, *controlapi.ListWorkersRequest) (*controlapi.ListWorkersResponse, error) {
	r := &controlapi.ListWorkersResponse{}
	for range f.workers {
		r.Record = append(r.Record, &apitypes.WorkerRecord{ID: "fake"})
	}
	return r, nil
}

func serve(t *testing.T, l net.Listener, workers int, opts ...grpc.ServerOption) {
	srv := grpc.NewServer(opts...)
	controlapi.RegisterControlServer(srv, fakeControl{workers: workers})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
}

// pki writes a CA, a server certificate for 127.0.0.1 and "buildkitd.test",
// and a client certificate, all signed by the CA.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T) pki {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			DNSNames: []string{"buildkitd.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p := pki{ca: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func TestConnect(t *testing.T) {
	tmp, err := os.MkdirTemp("", "bctx") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })

	// A plain builder on a unix socket, one with no workers, and an mTLS one on tcp.
	sock := filepath.Join(tmp, "bk.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, 1)
	empty := filepath.Join(tmp, "empty.sock")
	l, _ = net.Listen("unix", empty)
	serve(t, l, 0)

	p := newPKI(t)
	serverCert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(p.ca)
	pool.AppendCertsFromPEM(caPEM)
	l, _ = net.Listen("tcp", "127.0.0.1:0")
	serve(t, l, 1, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})))
	tlsAddr := "tcp://" + l.Addr().String()

	// Nothing listens here.
	l, _ = net.Listen("tcp", "127.0.0.1:0")
	closedAddr := "tcp://" + l.Addr().String()
	l.Close()

	// docker-container:// runs `docker exec`; a fake docker that fails.
	bin := filepath.Join(tmp, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/sh\necho 'Error: No such container: bk' >&2\nexit 1\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	mtls := &TLS{CACert: p.ca, Cert: p.clientCert, Key: p.clientKey}
	tests := []struct {
		name   string
		c      Context
		errHas string // "" = connects
	}{
		{"unix", Context{Name: "sock", Builder: "unix://" + sock}, ""},
		{"tcp mtls", Context{Name: "ci", Builder: tlsAddr, TLS: mtls}, ""},
		{"tcp mtls by server name", Context{Name: "ci", Builder: tlsAddr,
			TLS: &TLS{CACert: p.ca, Cert: p.clientCert, Key: p.clientKey, ServerName: "buildkitd.test"}}, ""},
		{"no workers", Context{Name: "e", Builder: "unix://" + empty}, "no workers"},
		{"unix nothing there", Context{Name: "gone", Builder: "unix://" + filepath.Join(tmp, "none.sock")},
			`cannot reach builder unix://` + filepath.Join(tmp, "none.sock") + ` (context "gone")`},
		{"tcp refused", Context{Name: "ci", Builder: closedAddr}, "envd context use default"},
		{"tls without client cert", Context{Name: "ci", Builder: tlsAddr, TLS: &TLS{CACert: p.ca}}, "cannot reach builder " + tlsAddr},
		{"plain tcp to tls", Context{Name: "ci", Builder: tlsAddr}, "cannot reach builder " + tlsAddr},
		{"wrong server name", Context{Name: "ci", Builder: tlsAddr,
			TLS: &TLS{CACert: p.ca, Cert: p.clientCert, Key: p.clientKey, ServerName: "other.test"}}, "cannot reach builder"},
		{"tls file gone", Context{Name: "ci", Builder: tlsAddr,
			TLS: &TLS{CACert: filepath.Join(tmp, "gone.pem")}}, "could not read ca certificate"},
		{"docker-container", Context{Name: "dc", Builder: "docker-container://bk"}, "cannot reach builder docker-container://bk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := Connect(ctx, tt.c, buildkitd.Options{})
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("connected, want an error")
			}
			if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), "hint:") {
				t.Fatalf("err = %v\nwant ErrConnect containing %q and a hint", err, tt.errHas)
			}
			t.Log(err)
		})
	}
}

func TestConnectManagedError(t *testing.T) {
	// Whatever stops the managed builder here (not root, no runc, no
	// buildkitd) comes back as the buildkitd package's own error.
	t.Setenv("PATH", t.TempDir())
	_, err := Connect(context.Background(), Context{Name: Default, Builder: Managed},
		buildkitd.Options{Dir: t.TempDir(), Binary: "/nonexistent/buildkitd"})
	var e *buildkitd.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a *buildkitd.Error", err)
	}
}
